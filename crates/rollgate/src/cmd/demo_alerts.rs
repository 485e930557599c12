//! The alerting stack of `rollgate demo`'s guard-window section: a real Alertmanager fed by the
//! demo's real Prometheus, which evaluates the alerting rule [`RULES`] every second, when both
//! are installed; otherwise the scenario alert source (a stand-in for Alertmanager), said so on
//! screen.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use rollgate_api::labels::{POD_TEMPLATE_HASH, REVISION};
use rollgate_controller::alert_source::AlertSource;
use rollgate_promtest::{AlertmanagerConfig, ScrapeConfig, TestAlertmanager, TestPrometheus};
use rollgate_scenario::alerts::ScenarioAlerts;
use rollgate_scenario::file::AlertEvent;
use rollgate_sim::SimCluster;
use serde_json::{Value, json};

/// The demo's alerting rule: a revision failing more than 10% of its requests over 5 s, one
/// alert per pod-template hash (the label rollgate blames a revision by), firing at once.
const RULES: &str = r#"
groups:
  - name: rollgate-demo
    rules:
      - alert: HighErrorRate
        expr: |
          sum by (pod_template_hash) (rate(http_request_errors_total[5s]))
            / sum by (pod_template_hash) (rate(http_requests_total[5s])) > 0.1
        for: 0s
        labels:
          app: web
          severity: critical
        annotations:
          summary: "{{ $labels.pod_template_hash }} fails {{ $value | humanizePercentage }} of its requests"
"#;

/// The alert's name, as [`RULES`] spells it.
const ALERT: &str = "HighErrorRate";

/// How long each stage of an alert (rule firing, Alertmanager holding it) may take.
const ALERT_PATIENCE: Duration = Duration::from_secs(60);

/// Pause between two looks at Alertmanager.
const POLL: Duration = Duration::from_millis(250);

/// Where the guard-window section's alert comes from.
pub(super) enum DemoAlerts {
    /// Prometheus evaluates [`RULES`] and sends firing alerts to this Alertmanager, which the
    /// controller pulls (its default alert source, at the address in `spec.alerts`).
    Real(Box<TestAlertmanager>),
    /// The scenario alert source, fired by the demo itself.
    Simulated(Arc<ScenarioAlerts>),
}

impl DemoAlerts {
    /// Starts a private Alertmanager when both it and Prometheus are installed; otherwise (or
    /// when it fails to start) says why not, in words for the demo's notice.
    pub(super) async fn start_alertmanager() -> Result<TestAlertmanager, String> {
        if !rollgate_promtest::is_installed() {
            return Err("prometheus is not installed".into());
        }
        if !rollgate_promtest::is_alertmanager_installed() {
            return Err(
                "prometheus-alertmanager is not installed (Debian: apt-get install \
                 prometheus-alertmanager)"
                    .into(),
            );
        }
        rollgate_promtest::install_crypto_provider();
        TestAlertmanager::start(AlertmanagerConfig::new())
            .await
            // The first line: the error's log tail would not fit the demo's one-line notice.
            .map_err(|e| {
                let e = e.to_string();
                let first = e.lines().next().unwrap_or_default();
                format!("could not start prometheus-alertmanager ({first})")
            })
    }

    /// Prometheus' part: evaluate [`RULES`] every scrape interval and send firing alerts to
    /// `alertmanager` every second (not the default minute).
    pub(super) fn prometheus_config(
        config: ScrapeConfig,
        alertmanager: &TestAlertmanager,
    ) -> ScrapeConfig {
        config
            .rule_file(RULES)
            .alertmanager(alertmanager.target())
            .arg("--rules.alert.resend-delay=1s")
    }

    /// The real stack when Alertmanager runs and Prometheus, evaluating the rule, too
    /// (`prometheus_runs`); the scenario source of `sim` otherwise, saying so in one line.
    pub(super) fn choose(
        alertmanager: Result<TestAlertmanager, String>,
        prometheus_runs: bool,
        sim: &SimCluster,
    ) -> Self {
        let why_not = match (alertmanager, prometheus_runs) {
            // Prometheus was started with the rule and this Alertmanager (`prometheus_config`).
            (Ok(am), true) => {
                println!(
                    "  Alertmanager is running on {} (its own data dir); Prometheus evaluates the \
                     alerting rule {ALERT} (error ratio > 10% per pod_template_hash) every second \
                     and sends firing alerts there.",
                    am.address()
                );
                return Self::Real(Box::new(am));
            }
            (Ok(_), false) => "Prometheus is not running to evaluate the alerting rule".into(),
            (Err(why), _) => why,
        };
        println!("  {why_not}: section 5's alert comes from a simulated alert source instead.");
        Self::Simulated(Arc::new(ScenarioAlerts::new(sim.clone())))
    }

    /// The controller's alert source: `None` (its default, pulling the Alertmanager
    /// `spec.alerts` names) for the real stack.
    pub(super) fn source(&self) -> Option<Arc<dyn AlertSource>> {
        match self {
            Self::Real(_) => None,
            Self::Simulated(s) => Some(s.clone() as Arc<dyn AlertSource>),
        }
    }

    /// Where the alerts are pulled from, in words.
    pub(super) fn describe(&self) -> String {
        match self {
            Self::Real(am) => format!("the real Alertmanager at {}", am.address()),
            Self::Simulated(_) => {
                "a simulated alert source, the one `rollgate simulate` uses".into()
            }
        }
    }

    /// `spec.alerts`: alerts labelled `app="web"`, pulled every second.
    pub(super) fn spec(&self) -> Value {
        let address = match self {
            Self::Real(am) => am.address(),
            // The scenario source answers whatever the address.
            Self::Simulated(_) => "http://alertmanager.monitoring:9093".into(),
        };
        json!({"alertmanager": {"address": address},
               "matchers": ["app=\"web\""],
               "interval": "1s"})
    }

    /// `HighErrorRate` fires for the revision `hash`, which has just started failing: with the
    /// real stack, waits until Prometheus' rule fires and Alertmanager holds the alert,
    /// printing each stage at `clock()`; with the scenario source, fires it there.
    pub(super) async fn fire(
        &self,
        sim: &SimCluster,
        prometheus: Option<&TestPrometheus>,
        hash: &str,
        clock: impl Fn() -> String,
    ) -> anyhow::Result<()> {
        match self {
            Self::Real(am) => {
                let prom = prometheus.context("the demo's Prometheus, evaluating the rule")?;
                let query = format!(
                    "ALERTS{{alertname=\"{ALERT}\", alertstate=\"firing\", \
                     {POD_TEMPLATE_LABEL}=\"{hash}\"}}"
                );
                prom.wait_for_data(&query, ALERT_PATIENCE).await?;
                println!(
                    "  {}    Prometheus {}: rule {ALERT} fires for {POD_TEMPLATE_LABEL}={hash} \
                     and is sent to Alertmanager",
                    clock(),
                    prom.address()
                );
                wait_in_alertmanager(am, hash).await?;
                println!(
                    "  {}    Alertmanager {}: {ALERT} {{app=web, {POD_TEMPLATE_LABEL}={hash}, \
                     severity=critical}} is active; the controller pulls it every second",
                    clock(),
                    am.address()
                );
            }
            Self::Simulated(alerts) => {
                let revision = revision_of(sim, hash)
                    .with_context(|| format!("the revision of ReplicaSet hash {hash}"))?;
                println!(
                    "  {}    alert {ALERT} fires on revision {revision} ({hash}) {{app=web, \
                     severity=critical}} in the simulated alert source",
                    clock()
                );
                alerts.apply(&AlertEvent {
                    name: ALERT.into(),
                    revision: Some(revision),
                    labels: [
                        ("app".to_string(), "web".to_string()),
                        ("severity".to_string(), "critical".to_string()),
                    ]
                    .into(),
                    resolved: false,
                });
            }
        }
        Ok(())
    }
}

/// The label the demo app's counters, and so the rule's alerts, carry the hash in (the
/// default `spec.alerts.revisionLabel`).
const POD_TEMPLATE_LABEL: &str = "pod_template_hash";

/// Polls Alertmanager until it holds an active `HighErrorRate` for `hash`.
async fn wait_in_alertmanager(am: &TestAlertmanager, hash: &str) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + ALERT_PATIENCE;
    loop {
        let alerts = am.alerts().await?;
        let held = alerts.as_array().is_some_and(|list| {
            list.iter().any(|a| {
                a["labels"]["alertname"] == ALERT
                    && a["labels"][POD_TEMPLATE_LABEL] == hash
                    && a["status"]["state"] == "active"
            })
        });
        if held {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            bail!(
                "Alertmanager {} did not receive {ALERT} for {hash} within {ALERT_PATIENCE:?}; \
                 it holds: {alerts}",
                am.address()
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The revision number (annotation) of the ReplicaSet whose pod-template hash is `hash`.
fn revision_of(sim: &SimCluster, hash: &str) -> Option<i64> {
    sim.list_objects("apps/v1", "replicasets", None)
        .into_iter()
        .find(|rs| rs["metadata"]["labels"][POD_TEMPLATE_HASH] == hash)
        .and_then(|rs| {
            rs["metadata"]["annotations"][REVISION]
                .as_str()
                .and_then(|r| r.parse().ok())
        })
}
