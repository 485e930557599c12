//! Rolling back on firing alerts, with nothing injected: a real Prometheus scrapes the test
//! app's metrics (counters labelled with the pod-template hash), evaluates real alerting rules
//! every second and sends what fires to a real Alertmanager, which delivers it to the
//! controller's webhook receiver and answers its pulls; or the controller pulls Prometheus'
//! `ALERTS` itself. Real time: pods are ready 0.2 s after they start, rules are evaluated every
//! second and re-sent every second (`--rules.alert.resend-delay=1s`), Alertmanager notifies
//! with `group_wait: 0s` and `group_interval: 1s`.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Client;
use rollgate_api::{AbortReason, Rollout, RolloutPhase};
use rollgate_controller::alert_receiver::{ReceiverConfig, router};
use rollgate_controller::alert_source::{AlertSource, AlertsFor, PullSource};
use rollgate_controller::metrics_source::BoxFuture;
use rollgate_e2e::*;
use rollgate_engine::ObservedAlert;
use rollgate_engine::alerts::CLOCK_SKEW_GRACE_SECS;
use rollgate_promtest::{
    AlertmanagerConfig, MetricsHandle, MetricsServer, ScrapeConfig, TestAlertmanager,
    TestPrometheus,
};
use rollgate_sim::SimConfig;
use rollgate_test_support::{canary_rollout, image_hash};
use serde_json::{Value, json};

type R = anyhow::Result<()>;

/// Bearer token between Alertmanager and the controller's webhook receiver.
const TOKEN: &str = "alert-rules-token";

/// Error ratio above which `HighErrorRate` fires (v2 serves twice that when it breaks).
const PER_REVISION_THRESHOLD: f64 = 0.1;

/// Error ratio a broken revision serves.
const BROKEN: f64 = 0.2;

/// `HighErrorRate`: the error ratio of each revision, grouped by its pod-template hash, one
/// rule for every release; `for_` is the rule's `for`.
fn high_error_rate_rule(for_: &str) -> String {
    format!(
        "groups:
  - name: web
    rules:
      - alert: HighErrorRate
        expr: |
          sum by (pod_template_hash) (rate(http_request_errors_total[5s]))
            / sum by (pod_template_hash) (rate(http_requests_total[5s])) > {PER_REVISION_THRESHOLD}
        for: {for_}
        labels: {{app: web, severity: critical}}
"
    )
}

/// `ServiceErrorRate`: the error ratio of the whole service, without a revision label.
fn service_error_rate_rule() -> String {
    "groups:
  - name: web-service
    rules:
      - alert: ServiceErrorRate
        expr: |
          sum(rate(http_request_errors_total[5s])) / sum(rate(http_requests_total[5s])) > 0.05
        for: 0s
        labels: {app: web, severity: critical, scope: service}
"
    .to_string()
}

/// Where the controller pulls alerts from.
#[derive(Clone, Copy, PartialEq)]
enum Source {
    /// Alertmanager's API v2; Prometheus sends its alerts there and Alertmanager delivers
    /// them to the controller's webhook receiver.
    Alertmanager,
    /// Prometheus' `ALERTS`; no Alertmanager.
    Prometheus,
}

/// What one pull answered: the alerts (name and labels) or the error.
type Pull = Result<Vec<(String, BTreeMap<String, String>)>, String>;

/// The real pull source, recording what each pull answered: lets a test wait for pulls that
/// saw an alert instead of for some time.
#[derive(Default)]
struct Recorder {
    pulls: Mutex<Vec<Pull>>,
}

impl Recorder {
    fn pulls(&self) -> Vec<Pull> {
        self.pulls.lock().map(|p| p.clone()).unwrap_or_default()
    }
}

impl AlertSource for Recorder {
    fn firing<'a>(
        &'a self,
        client: &'a Client,
        about: AlertsFor<'a>,
    ) -> BoxFuture<'a, Result<Vec<ObservedAlert>, String>> {
        Box::pin(async move {
            let answer = PullSource.firing(client, about).await;
            let seen = match &answer {
                Ok(alerts) => Ok(alerts
                    .iter()
                    .map(|a| (a.name.clone(), a.labels.clone()))
                    .collect()),
                Err(e) => Err(e.clone()),
            };
            if let Ok(mut pulls) = self.pulls.lock() {
                pulls.push(seen);
            }
            answer
        })
    }
}

struct World {
    stack: Stack,
    prom: TestPrometheus,
    am: Option<TestAlertmanager>,
    metrics: MetricsHandle,
    recorder: Arc<Recorder>,
    _server: MetricsServer,
}

fn v1() -> String {
    image_hash("web", "app:1")
}

fn v2() -> String {
    image_hash("web", "app:2")
}

/// Starts the test app's metrics (`app:1` serving `v1_errors`, `app:2` no errors, 100
/// requests/s each), a Prometheus evaluating `rules` over them and, for
/// [`Source::Alertmanager`], an Alertmanager it sends its alerts to, delivering to the
/// controller's webhook receiver; then the stack and its controller, which pulls through a
/// [`Recorder`] when `record` (else through the default pull source).
async fn world(rules: &str, source: Source, v1_errors: f64, record: bool) -> anyhow::Result<World> {
    rollgate_promtest::install_crypto_provider();
    let server = MetricsServer::start().await?;
    let metrics = server.handle();
    metrics.set_traffic("1", &v1(), 100.0, v1_errors);
    metrics.set_traffic("2", &v2(), 100.0, 0.0);
    let mut scrape = ScrapeConfig::new()
        .target(server.target())
        .interval(Duration::from_secs(1))
        .rule_file(rules)
        .arg("--rules.alert.resend-delay=1s");
    let mut inbox = None;
    let mut am = None;
    if source == Source::Alertmanager {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let receiver = listener.local_addr()?;
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let app = router(ReceiverConfig::with_token(TOKEN)?, tx);
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        inbox = Some(Arc::new(tokio::sync::Mutex::new(rx)));
        let started = TestAlertmanager::start(
            AlertmanagerConfig::new()
                .webhook(format!("http://{receiver}/"), Some(TOKEN))
                .timings(
                    Duration::ZERO,
                    Duration::from_secs(1),
                    Duration::from_secs(1),
                ),
        )
        .await?;
        scrape = scrape.alertmanager(started.target());
        am = Some(started);
    }
    let prom = TestPrometheus::start(scrape).await?;
    let mut stack = Stack::new(SimConfig {
        default_ready_delay: Duration::from_millis(200),
        ..Default::default()
    })
    .await?;
    let recorder = Arc::new(Recorder::default());
    let alert_source: Option<Arc<dyn AlertSource>> = record.then(|| recorder.clone() as _);
    stack.start_controller_with_sources("controller-1", None, alert_source, inbox);
    Ok(World {
        stack,
        prom,
        am,
        metrics,
        recorder,
        _server: server,
    })
}

impl World {
    fn am(&self) -> anyhow::Result<&TestAlertmanager> {
        self.am
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("this world has no Alertmanager"))
    }

    /// `spec.alerts` pulling this world's Alertmanager or Prometheus every `interval`.
    fn alerts_spec(&self, source: Source, interval: &str) -> anyhow::Result<Value> {
        let matchers = json!(["app=\"web\"", "severity=\"critical\""]);
        Ok(match source {
            Source::Alertmanager => json!({"alertmanager": {"address": self.am()?.address()},
                                           "matchers": matchers, "interval": interval}),
            Source::Prometheus => json!({"prometheus": {"address": self.prom.address()},
                                         "matchers": matchers, "interval": interval}),
        })
    }

    async fn wait(
        &self,
        what: &str,
        secs: u64,
        f: impl Fn(&Rollout) -> bool,
    ) -> anyhow::Result<Rollout> {
        Ok(self
            .stack
            .wait_for(NS, "web", Duration::from_secs(secs), what, f)
            .await?)
    }

    /// Deploys `app:1` (2 replicas, no router) with `spec` merged over the spec and `steps`,
    /// and waits until it is Healthy.
    async fn deploy(&self, spec: Value, steps: Value) -> R {
        let mut s = json!({"replicas": 2});
        rollgate_test_support::merge(&mut s, spec);
        let rollout = canary_rollout(
            "web",
            "app:1",
            s,
            json!({"canaryService": null, "stableService": null, "steps": steps}),
        );
        self.stack.apply_yaml(&rollout.to_string(), NS).await?;
        self.wait("first deploy", 30, |r| {
            phase(r) == Some(RolloutPhase::Healthy)
        })
        .await?;
        Ok(())
    }

    /// [`World::deploy`] with steps `setWeight 50` and an indefinite pause, then releases
    /// `app:2` and waits until it is paused at 50%.
    async fn paused_canary(&self, spec: Value) -> R {
        self.deploy(spec, json!([{"setWeight": 50}, {"pause": {}}]))
            .await?;
        self.stack.set_image(NS, "web", "app", "app:2").await?;
        self.wait("paused at 50%", 30, |r| {
            phase(r) == Some(RolloutPhase::Paused)
        })
        .await?;
        Ok(())
    }

    /// Waits until Alertmanager holds an active alert `name` whose labels include `labels`;
    /// returns it.
    async fn am_alert(&self, name: &str, labels: &[(&str, &str)]) -> anyhow::Result<Value> {
        let am = self.am()?;
        poll(
            &format!("{name} {labels:?} active in Alertmanager"),
            90,
            || async {
                let alerts = am.alerts().await?;
                Ok(alerts.as_array().and_then(|all| {
                    all.iter()
                        .find(|a| {
                            a["labels"]["alertname"] == name
                                && a["status"]["state"] == "active"
                                && labels.iter().all(|(k, v)| a["labels"][*k] == *v)
                        })
                        .cloned()
                }))
            },
        )
        .await
    }

    /// Waits until `n` more pulls than `since` happened, or the rollout was aborted; returns
    /// the rollout then and the pulls after `since`.
    async fn pulls_after(&self, since: usize, n: usize) -> anyhow::Result<(Rollout, Vec<Pull>)> {
        poll(
            &format!("{n} pulls after the first {since}"),
            30,
            || async {
                let r = self.stack.rollout(NS, "web").await?;
                let pulls = self.recorder.pulls();
                Ok((pulls.len() >= since + n || abort_reason(&r).is_some())
                    .then(|| (r, pulls[since..].to_vec())))
            },
        )
        .await
    }

    /// Waits until the ReplicaSet of `hash` has `replicas` replicas, all ready.
    async fn replica_set_at(&self, hash: &str, replicas: i32) -> R {
        poll(
            &format!("ReplicaSet {hash} at {replicas} ready"),
            30,
            || async {
                let sets = replica_sets(&self.stack, "web").await?;
                Ok(sets
                    .iter()
                    .any(|(h, n, ready)| h == hash && *n == replicas && *ready == replicas)
                    .then_some(()))
            },
        )
        .await
    }
}

/// Calls `f` every 100 ms until it answers `Some`, at most `secs` seconds.
async fn poll<T, F, Fut>(what: &str, secs: u64, mut f: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let last = match f().await {
            Ok(Some(t)) => return Ok(t),
            Ok(None) => "nothing yet".to_string(),
            Err(e) => e.to_string(),
        };
        if Instant::now() >= deadline {
            anyhow::bail!("timed out after {secs} s waiting for {what}: {last}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn abort_reason(r: &Rollout) -> Option<AbortReason> {
    r.status.as_ref().and_then(|s| s.abort_reason)
}

fn stable(r: &Rollout) -> Option<String> {
    r.status.as_ref().and_then(|s| s.stable_rs.clone())
}

/// Whether a pull saw the alert `name` carrying `label=value`.
fn saw(pull: &Pull, name: &str, label: &str, value: &str) -> bool {
    pull.as_ref().is_ok_and(|alerts| {
        alerts
            .iter()
            .any(|(n, l)| n == name && l.get(label).map(String::as_str) == Some(value))
    })
}

/// Checks that the rollout was aborted by `HighErrorRate` on `app:2`.
fn assert_blamed_on_v2(r: &Rollout) {
    let s = r.status.clone().unwrap_or_default();
    assert_eq!(s.abort_reason, Some(AbortReason::AlertFiring), "{s:?}");
    let alert = s.alert.expect("status.alert");
    assert_eq!(alert.name, "HighErrorRate");
    assert_eq!(
        alert.labels.get("pod_template_hash"),
        Some(&v2()),
        "{alert:?}"
    );
    assert_eq!(
        alert.labels.get("severity").map(String::as_str),
        Some("critical")
    );
}

/// Push path: Prometheus' rule fires on the canary's hash, Alertmanager delivers it to the
/// webhook receiver and the paused canary (pulled only every ten minutes) is aborted.
#[tokio::test]
async fn a_rule_firing_on_the_canary_hash_is_pushed_and_aborts_the_release() -> R {
    let w = world(
        &high_error_rate_rule("0s"),
        Source::Alertmanager,
        0.0,
        false,
    )
    .await?;
    w.paused_canary(json!({"alerts": w.alerts_spec(Source::Alertmanager, "10m")?}))
        .await?;
    w.metrics.set_traffic("2", &v2(), 100.0, BROKEN);
    let r = w
        .wait("aborted by HighErrorRate", 60, |r| {
            abort_reason(r) == Some(AbortReason::AlertFiring)
        })
        .await?;
    assert_blamed_on_v2(&r);
    // Without a router the aborted canary's pods are traffic: they go.
    w.replica_set_at(&v2(), 0).await?;
    Ok(())
}

/// The same rule firing on the stable hash is not the release's fault.
#[tokio::test]
async fn a_rule_firing_on_the_stable_hash_is_not_acted_on() -> R {
    let w = world(&high_error_rate_rule("0s"), Source::Alertmanager, 0.0, true).await?;
    w.paused_canary(json!({"alerts": w.alerts_spec(Source::Alertmanager, "1s")?}))
        .await?;
    w.metrics.set_traffic("1", &v1(), 100.0, BROKEN);
    let v1 = v1();
    w.am_alert("HighErrorRate", &[("pod_template_hash", &v1)])
        .await?;
    // A pull saw it, and three more pulls (so three more reconciles) followed.
    poll("a pull that saw HighErrorRate on v1", 30, || async {
        Ok(w.recorder
            .pulls()
            .iter()
            .any(|p| saw(p, "HighErrorRate", "pod_template_hash", &v1))
            .then_some(()))
    })
    .await?;
    let (r, pulls) = w.pulls_after(w.recorder.pulls().len(), 3).await?;
    assert_eq!(abort_reason(&r), None, "{:?}", r.status);
    assert_eq!(phase(&r), Some(RolloutPhase::Paused), "{:?}", r.status);
    assert_eq!(r.status.and_then(|s| s.alert), None);
    assert!(
        pulls
            .iter()
            .all(|p| saw(p, "HighErrorRate", "pod_template_hash", &v1)),
        "the alert kept firing: {pulls:?}"
    );
    Ok(())
}

/// A service-level alert (no revision label) that fired before the release began may be the
/// incident the release fixes: the release completes.
#[tokio::test]
async fn a_service_level_alert_older_than_the_release_is_ignored() -> R {
    let w = world(
        &service_error_rate_rule(),
        Source::Alertmanager,
        BROKEN,
        true,
    )
    .await?;
    w.deploy(
        json!({"alerts": w.alerts_spec(Source::Alertmanager, "1s")?}),
        json!([{"setWeight": 50}, {"pause": {"duration": "3s"}}]),
    )
    .await?;
    let alert = w
        .am_alert("ServiceErrorRate", &[("scope", "service")])
        .await?;
    assert!(
        alert["labels"].get("pod_template_hash").is_none(),
        "{alert}"
    );
    let starts_at: Timestamp = alert["startsAt"]
        .as_str()
        .unwrap_or_default()
        .parse()
        .map_err(|e| anyhow::anyhow!("startsAt of {alert}: {e}"))?;
    // Older than the release by more than the clock-skew grace.
    let old_enough = starts_at + SignedDuration::from_secs(CLOCK_SKEW_GRACE_SECS + 2);
    poll("the alert older than the grace", 60, || async {
        Ok((Timestamp::now() > old_enough).then_some(()))
    })
    .await?;
    let since = w.recorder.pulls().len();
    w.stack.set_image(NS, "web", "app", "app:2").await?;
    let v2 = v2();
    let r = w
        .wait("v2 promoted (or aborted)", 60, |r| {
            abort_reason(r).is_some()
                || (phase(r) == Some(RolloutPhase::Healthy)
                    && stable(r).as_deref() == Some(v2.as_str()))
        })
        .await?;
    assert_eq!(abort_reason(&r), None, "{:?}", r.status);
    assert_eq!(phase(&r), Some(RolloutPhase::Healthy));
    // The release saw the alert and still went on.
    let pulls = w.recorder.pulls();
    assert!(
        pulls[since..]
            .iter()
            .any(|p| saw(p, "ServiceErrorRate", "scope", "service")),
        "{pulls:?}"
    );
    w.am_alert("ServiceErrorRate", &[("scope", "service")])
        .await?;
    Ok(())
}

/// `spec.alerts.prometheus`: the controller pulls `ALERTS` itself, no Alertmanager.
#[tokio::test]
async fn a_rule_firing_on_the_canary_hash_pulled_from_prometheus_aborts_the_release() -> R {
    let w = world(&high_error_rate_rule("0s"), Source::Prometheus, 0.0, false).await?;
    w.paused_canary(json!({"alerts": w.alerts_spec(Source::Prometheus, "1s")?}))
        .await?;
    w.metrics.set_traffic("2", &v2(), 100.0, BROKEN);
    let r = w
        .wait("aborted by HighErrorRate", 60, |r| {
            abort_reason(r) == Some(AbortReason::AlertFiring)
        })
        .await?;
    assert_blamed_on_v2(&r);
    w.replica_set_at(&v2(), 0).await?;
    Ok(())
}

/// A pending alert (`for: 1h`) is not firing: Prometheus has it as
/// `ALERTS{alertstate="pending"}`, and the release stays paused.
#[tokio::test]
async fn a_pending_alert_never_acts() -> R {
    let w = world(&high_error_rate_rule("1h"), Source::Prometheus, 0.0, true).await?;
    w.paused_canary(json!({"alerts": w.alerts_spec(Source::Prometheus, "1s")?}))
        .await?;
    w.metrics.set_traffic("2", &v2(), 100.0, BROKEN);
    let v2 = v2();
    let pending = format!(
        "ALERTS{{alertname=\"HighErrorRate\", alertstate=\"pending\", pod_template_hash=\"{v2}\"}}"
    );
    w.prom
        .wait_for_data(&pending, Duration::from_secs(60))
        .await?;
    let (r, pulls) = w.pulls_after(w.recorder.pulls().len(), 3).await?;
    assert_eq!(abort_reason(&r), None, "{:?}", r.status);
    assert_eq!(phase(&r), Some(RolloutPhase::Paused), "{:?}", r.status);
    assert!(
        pulls.iter().all(|p| p.as_ref().is_ok_and(Vec::is_empty)),
        "pulls answered nothing firing: {pulls:?}"
    );
    // Still pending, after those pulls.
    w.prom
        .wait_for_data(&pending, Duration::from_secs(5))
        .await?;
    Ok(())
}

/// Inside the guard window after full promotion, the rule firing on the new (now stable)
/// revision sends the rollout back to the previous one, scaled back up.
#[tokio::test]
async fn a_rule_firing_inside_the_guard_window_sends_the_canary_back() -> R {
    let w = world(
        &high_error_rate_rule("0s"),
        Source::Alertmanager,
        0.0,
        false,
    )
    .await?;
    w.deploy(
        json!({"alerts": w.alerts_spec(Source::Alertmanager, "1s")?,
               "guard": {"duration": "10m"}}),
        json!([{"setWeight": 50}, {"pause": {"duration": "2s"}}]),
    )
    .await?;
    let (v1, v2) = (v1(), v2());
    w.stack.set_image(NS, "web", "app", "app:2").await?;
    let r = w
        .wait("v2 promoted and guarded", 60, |r| {
            phase(r) == Some(RolloutPhase::Healthy)
                && stable(r).as_deref() == Some(v2.as_str())
                && r.status.as_ref().is_some_and(|s| s.guard.is_some())
        })
        .await?;
    let guard = r.status.and_then(|s| s.guard).expect("status.guard");
    assert_eq!(
        (guard.revision.as_str(), guard.previous.as_str()),
        (v2.as_str(), v1.as_str())
    );
    w.metrics.set_traffic("2", &v2, 100.0, BROKEN);
    let r = w
        .wait("back on v1", 60, |r| {
            stable(r).as_deref() == Some(v1.as_str())
                && abort_reason(r) == Some(AbortReason::AlertFiring)
        })
        .await?;
    assert_blamed_on_v2(&r);
    w.replica_set_at(&v1, 2).await?;
    Ok(())
}
