//! Where measurements come from: a Prometheus server (the real provider), or any other
//! [`MetricSource`] (the demo's simulated one), and the I/O of one measurement's request:
//! reading the Secrets of credentials and arguments. What a template means (its `rangeQuery`,
//! timeout, headers, what a credentials Secret holds) is parsed by the engine's template
//! validation ([`rollgate_engine::measure`]).

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::Timestamp;
use kube::{Api, Client};
use rollgate_api::AnalysisArg;
use rollgate_engine::measure::{self, CounterSeries, Credentials, PrometheusQuery, SampleSide};
use rollgate_prometheus::{Auth, QueryResult, Range, Request, Tls};

/// A boxed future, as [`MetricSource`] returns.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What one query measures: the AnalysisRun and the metric it belongs to.
#[derive(Debug, Clone, Copy)]
pub struct QueryFor<'a> {
    /// Namespace of the run.
    pub namespace: &'a str,
    /// Name of the run.
    pub run: &'a str,
    /// Labels of the run (the rollout, the pod-template hash it analyses, ...).
    pub labels: &'a BTreeMap<String, String>,
    /// Name of the metric in the run.
    pub metric: &'a str,
    /// For a `sequential` metric, which of its four counters this query reads (the canary's
    /// or the baseline's events or requests); `None` for other metrics.
    pub counter: Option<CounterSeries>,
    /// For a `kayenta` metric, which of its metrics (by name) and which revision (the canary
    /// or the baseline) this query reads; `None` for other metrics.
    pub sample: Option<(&'a str, SampleSide)>,
}

/// Answers measurement queries.
pub trait MetricSource: Send + Sync {
    /// Runs one query for `about`; the error is a one-line message for the measurement.
    fn query<'a>(
        &'a self,
        about: QueryFor<'a>,
        request: &'a Request,
    ) -> BoxFuture<'a, Result<QueryResult, String>>;
}

/// The real provider: asks the Prometheus server named by the request.
#[derive(Debug, Clone, Copy, Default)]
pub struct PrometheusSource;

impl MetricSource for PrometheusSource {
    fn query<'a>(
        &'a self,
        _about: QueryFor<'a>,
        request: &'a Request,
    ) -> BoxFuture<'a, Result<QueryResult, String>> {
        Box::pin(async move {
            rollgate_prometheus::query(request)
                .await
                .map_err(|e| e.to_string())
        })
    }
}

/// Reads the data of a Secret, as strings.
pub(crate) async fn secret_data(
    client: &Client,
    ns: &str,
    name: &str,
) -> Result<BTreeMap<String, Vec<u8>>, String> {
    let secret = Api::<Secret>::namespaced(client.clone(), ns)
        .get_opt(name)
        .await
        .map_err(|e| format!("reading Secret {ns}/{name}: {e}"))?
        .ok_or_else(|| format!("Secret {ns}/{name} not found"))?;
    let mut data: BTreeMap<String, Vec<u8>> = secret
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect();
    for (k, v) in secret.string_data.unwrap_or_default() {
        data.insert(k, v.into_bytes());
    }
    Ok(data)
}

/// Resolves `valueFrom.secretKeyRef` arguments by reading their Secrets (never stored in the
/// run's spec). Other arguments are returned as they are.
pub async fn resolve_secret_args(
    client: &Client,
    ns: &str,
    args: &[AnalysisArg],
) -> Result<Vec<AnalysisArg>, String> {
    let mut out = Vec::with_capacity(args.len());
    for a in args {
        let mut a = a.clone();
        if a.value.is_none()
            && let Some(r) = a.value_from.as_ref().and_then(|v| v.secret_key_ref.clone())
        {
            let data = secret_data(client, ns, &r.name).await?;
            let value = data.get(&r.key).ok_or_else(|| {
                format!(
                    "argument {}: Secret {ns}/{} has no key {}",
                    a.name, r.name, r.key
                )
            })?;
            a.value = Some(String::from_utf8_lossy(value).into_owned());
            a.value_from = None;
        }
        out.push(a);
    }
    Ok(out)
}

/// Builds the request of one measurement (its query already parsed by template validation
/// and rendered by [`rollgate_engine::measure::plan`]): reads credentials and a CA bundle from
/// the Secret named by `authentication.secretName`, and places `rangeQuery` at `now`.
pub async fn build_request(
    client: &Client,
    ns: &str,
    metric: &PrometheusQuery,
    now: Timestamp,
) -> Result<Request, String> {
    let mut req = Request::new(metric.address.clone(), metric.query.clone());
    req.timeout = metric.timeout;
    req.headers = metric.headers.clone();
    req.tls = Tls {
        insecure: metric.insecure,
        ca_pem: None,
    };
    if let Some(secret) = &metric.secret {
        let data = secret_data(client, ns, secret).await?;
        let auth = measure::secret_auth(&format!("{ns}/{secret}"), &data)?;
        req.auth = match auth.credentials {
            Credentials::None => Auth::None,
            Credentials::Bearer(token) => Auth::Bearer(token),
            Credentials::Basic { user, password } => Auth::Basic { user, password },
        };
        req.tls.ca_pem = auth.ca_pem;
    }
    match &metric.range {
        Some(range) => {
            let r = range.at(now)?;
            req.range = Some(Range {
                start: r.start,
                end: r.end,
                step: r.step,
            });
        }
        None => req.time = Some(now),
    }
    Ok(req)
}
