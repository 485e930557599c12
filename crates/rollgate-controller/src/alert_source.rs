//! Where firing alerts come from: the Alertmanager or Prometheus named by `spec.alerts`
//! (pulled with `rollgate-alerts`), or any other [`AlertSource`] (the scenarios' simulated one).
//! The controller asks only when the engine says so ([`rollgate_engine::alerts_wanted`]); an
//! error is "unknown", which the engine never acts on.

use kube::Client;
use rollgate_alerts::{AlertQuery, Auth, Matcher, SourceKind, Tls};
use rollgate_api::AlertsSpec;
use rollgate_engine::ObservedAlert;
use rollgate_engine::measure::{self, Credentials};

use crate::metrics_source::BoxFuture;

/// What one pull is for: the rollout and its `spec.alerts`.
#[derive(Debug, Clone, Copy)]
pub struct AlertsFor<'a> {
    /// Namespace of the rollout.
    pub namespace: &'a str,
    /// Name of the rollout.
    pub rollout: &'a str,
    /// Its `spec.alerts`.
    pub spec: &'a AlertsSpec,
}

/// Answers "which alerts matching this rollout fire now?".
pub trait AlertSource: Send + Sync {
    /// The firing alerts; the error is a one-line reason for the `AlertSource` condition.
    fn firing<'a>(
        &'a self,
        client: &'a Client,
        about: AlertsFor<'a>,
    ) -> BoxFuture<'a, Result<Vec<ObservedAlert>, String>>;
}

/// The real source: pulls the Alertmanager or Prometheus of `spec.alerts`.
#[derive(Debug, Clone, Copy, Default)]
pub struct PullSource;

impl AlertSource for PullSource {
    fn firing<'a>(
        &'a self,
        client: &'a Client,
        about: AlertsFor<'a>,
    ) -> BoxFuture<'a, Result<Vec<ObservedAlert>, String>> {
        Box::pin(async move {
            let query = query(client, about).await?;
            let alerts = rollgate_alerts::firing(&query)
                .await
                .map_err(|e| e.to_string())?;
            Ok(alerts
                .into_iter()
                .map(|a| ObservedAlert {
                    name: a.name,
                    labels: a.labels,
                    starts_at: a.starts_at,
                    fingerprint: a.fingerprint,
                })
                .collect())
        })
    }
}

/// The pull request of `spec.alerts` (validated by the engine before anything asks for it).
async fn query(client: &Client, about: AlertsFor<'_>) -> Result<AlertQuery, String> {
    let spec = about.spec;
    let (kind, source) = match (&spec.alertmanager, &spec.prometheus) {
        (Some(s), _) => (SourceKind::Alertmanager, s),
        (None, Some(s)) => (SourceKind::Prometheus, s),
        (None, None) => return Err("spec.alerts names no source".into()),
    };
    let address = source.address.clone().unwrap_or_default();
    let mut q = AlertQuery::new(kind, address);
    for m in &spec.matchers {
        let matcher: Matcher = m
            .parse()
            .map_err(|e| format!("spec.alerts.matchers: {e}"))?;
        q = q.matcher(matcher);
    }
    if let Some(auth) = &spec.authentication {
        let ns = about.namespace;
        let data = crate::metrics_source::secret_data(client, ns, &auth.secret_name).await?;
        let creds = measure::secret_auth(&format!("{ns}/{}", auth.secret_name), &data)?;
        q.auth = match creds.credentials {
            Credentials::None => Auth::None,
            Credentials::Bearer(token) => Auth::Bearer(token),
            Credentials::Basic { user, password } => Auth::Basic { user, password },
        };
        q.tls = Tls {
            insecure: false,
            ca_pem: creds.ca_pem,
        };
    }
    Ok(q)
}
