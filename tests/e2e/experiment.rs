//! The canary `experiment` step end to end, against a real Prometheus (real time: pods are
//! ready 0.2 s after they start, Prometheus scrapes the test's metrics endpoint every second,
//! measurements are 1 s apart). Each test states what Argo Rollouts documents in
//! docs/features/experiment.md ("Integration With Rollouts"): the step runs ReplicaSets of the
//! stable and canary pod templates beside the release, with their own pod-template hashes,
//! starts the analyses once they are available, and the rollout goes on when the experiment
//! succeeds, is aborted when it fails, and pauses when it is inconclusive.
//!
//! The experiment's pods have hashes nobody knows before the step starts: a task reads them
//! from `status.canary.experiment.templates[].podTemplateHash` (what a user sees) and from
//! then on serves their requests on the metrics endpoint, with the error rate the test gives
//! each template.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::events::v1::Event;
use kube::Api;
use kube::api::ListParams;
use rollgate_api::labels::{ANALYSIS_KIND, EXPERIMENT_TEMPLATE, POD_TEMPLATE_HASH};
use rollgate_api::{
    AbortReason, AnalysisPhase, AnalysisRun, ExperimentStatus, Rollout, RolloutPhase,
};
use rollgate_e2e::*;
use rollgate_promtest::{MetricsServer, ScrapeConfig, TestPrometheus};
use rollgate_test_support::{
    analysis_template, canary_rollout, documents, image_hash, prometheus_metric, service,
};
use serde_json::{Value, json};

type R = anyhow::Result<()>;

/// The experiment's duration, in seconds.
const DURATION: i64 = 6;

/// Everything one test needs: a measuring stack, a metrics endpoint serving the experiment's
/// pods, a Prometheus scraping it, and a task watching what the Services select.
struct World {
    stack: Stack,
    _prom: TestPrometheus,
    _server: MetricsServer,
    _traffic: tokio::task::JoinHandle<()>,
    watch: ServiceWatch,
    /// The error rate of each experiment template's pods, read when they start serving.
    error_rates: ErrorRates,
}

/// Error rates by experiment template name.
type ErrorRates = Arc<Mutex<BTreeMap<String, f64>>>;

fn hash_of(image: &str) -> String {
    image_hash("web", image)
}

/// The error ratio of the pods of hash `{{args.hash}}` since they started (their counters
/// begin with them, so one scrape answers).
fn error_ratio() -> String {
    "sum(http_request_errors_total{pod_template_hash=\"{{args.hash}}\"}) / \
     sum(http_requests_total{pod_template_hash=\"{{args.hash}}\"})"
        .to_string()
}

/// The steps: setWeight 20, an experiment of `baseline` (stable) and `canary` (canary) for
/// [`DURATION`] compared by `compare` (the `error-rate` template on the experiment canary's
/// hash; not `requiredForCompletion`, so the duration decides when it succeeds, as Argo's
/// Experiment does), setWeight 100.
fn steps(template: &str) -> Value {
    json!({
        "scaleDownDelaySeconds": 0,
        "steps": [
            {"setWeight": 20},
            {"experiment": {
                "duration": format!("{DURATION}s"),
                "templates": [
                    {"name": "baseline", "specRef": "stable"},
                    {"name": "canary", "specRef": "canary"}
                ],
                "analyses": [{
                    "name": "compare",
                    "templateName": template,
                    "args": [{"name": "hash", "value": "{{templates.canary.podTemplateHash}}"}]
                }]
            }},
            {"setWeight": 100}
        ]
    })
}

/// Starts everything, deploys `web` (5 replicas of `app:1`, Services `web-stable` and
/// `web-canary`) with [`steps`] and releases `app:2`. The experiment's `baseline` pods fail 1%
/// of their requests and its `canary` pods `canary_errors`; the `error-rate` metric succeeds
/// below 0.05 and, with `fail_above`, fails above it (else any other value fails).
async fn world(canary_errors: f64, fail_above: Option<f64>) -> anyhow::Result<World> {
    world_with(canary_errors, fail_above, "error-rate").await
}

/// [`world`] whose experiment analysis runs the AnalysisTemplate `template`: `error-rate`, or
/// `judge` (a `sequential` metric on the errors and requests of `{{args.hash}}`, measured
/// every second, which the baseline template's pods are the baseline of).
async fn world_with(
    canary_errors: f64,
    fail_above: Option<f64>,
    template_name: &str,
) -> anyhow::Result<World> {
    rollgate_promtest::install_crypto_provider();
    let server = MetricsServer::start().await?;
    let metrics = server.handle();
    // The revisions serve too, so that Prometheus has data before any experiment exists.
    metrics.set_traffic("1", &hash_of("app:1"), 100.0, 0.01);
    metrics.set_traffic("2", &hash_of("app:2"), 100.0, 0.01);
    let prom = TestPrometheus::start(
        ScrapeConfig::new()
            .target(server.target())
            .interval(Duration::from_secs(1)),
    )
    .await?;
    prom.wait_for_data(
        &format!(
            "sum(http_requests_total{{pod_template_hash=\"{}\"}})",
            hash_of("app:1")
        ),
        Duration::from_secs(60),
    )
    .await?;
    let stack = prometheus_stack().await?;

    let mut metric = prometheus_metric("error-rate", &prom.address(), &error_ratio());
    // The first measurement once the experiment's pods have been scraped (should a slow
    // scrape leave it without data, that one Inconclusive is tolerated); one more after it.
    let mut extra = json!({"interval": "1s", "initialDelay": "3s", "count": 2,
                           "inconclusiveLimit": 1});
    if let Some(limit) = fail_above {
        extra["failureCondition"] = json!(format!("result[0] > {limit}"));
    }
    rollgate_test_support::merge(&mut metric, extra);
    let template = analysis_template(
        "error-rate",
        json!({"args": [{"name": "hash"}], "metrics": [metric]}),
    );
    stack
        .apply_yaml(
            &documents(&[
                service("web-stable", "web"),
                service("web-canary", "web"),
                template,
                judge_template(&prom.address()),
            ]),
            NS,
        )
        .await?;
    stack
        .apply_yaml(
            &canary_rollout("web", "app:1", json!({"replicas": 5}), steps(template_name))
                .to_string(),
            NS,
        )
        .await?;
    wait_phase(&stack, "web", RolloutPhase::Healthy, 60).await?;

    let error_rates: ErrorRates = Arc::new(Mutex::new(BTreeMap::from([
        ("baseline".to_string(), 0.01),
        ("canary".to_string(), canary_errors),
    ])));
    let traffic = serve_experiment(&stack, metrics, error_rates.clone());
    let watch = ServiceWatch::start(&stack);
    stack.set_image(NS, "web", "app", "app:2").await?;
    Ok(World {
        stack,
        _prom: prom,
        _server: server,
        _traffic: traffic,
        watch,
        error_rates,
    })
}

/// The AnalysisTemplate `judge`: a `sequential` metric, errors against requests of
/// `{{args.hash}}`, every second (a few seconds after the pods start, once scraped).
fn judge_template(address: &str) -> Value {
    let counter = |name: &str| format!("sum({name}{{pod_template_hash=\"{{{{args.hash}}}}\"}})");
    analysis_template(
        "judge",
        json!({"args": [{"name": "hash"}], "metrics": [{
            "name": "errors", "interval": "1s", "initialDelay": "3s", "count": 20,
            "provider": {"prometheus": {"address": address}},
            "sequential": {
                "events": counter("http_request_errors_total"),
                "requests": counter("http_requests_total"),
                "alpha": 0.01, "priorConcentration": 20, "direction": "increase"}}]}),
    )
}

/// The running experiment of rollout `web`, if any.
fn experiment(r: &Rollout) -> Option<ExperimentStatus> {
    r.status
        .as_ref()
        .and_then(|s| s.canary.as_ref())
        .and_then(|c| c.experiment.clone())
}

/// Every 100 ms reads the experiment's templates from the rollout's status and, for each new
/// pod-template hash, starts serving 100 requests a second (10 whole requests each 100 ms)
/// with the template's error rate at that moment (whole errors: a counter counts whole events).
fn serve_experiment(
    stack: &Stack,
    metrics: rollgate_promtest::MetricsHandle,
    error_rates: ErrorRates,
) -> tokio::task::JoinHandle<()> {
    let rollouts = Api::<Rollout>::namespaced(stack.client.clone(), NS);
    tokio::spawn(async move {
        // Per hash: its series' version label, error rate, requests and errors served.
        let mut serving: BTreeMap<String, (String, f64, u64, u64)> = BTreeMap::new();
        loop {
            if let Ok(r) = rollouts.get("web").await {
                for t in experiment(&r).map(|e| e.templates).unwrap_or_default() {
                    serving
                        .entry(t.pod_template_hash.clone())
                        .or_insert_with(|| {
                            let rate = error_rates
                                .lock()
                                .map(|r| r.get(&t.name).copied().unwrap_or(0.0))
                                .unwrap_or(0.0);
                            (format!("experiment-{}", t.name), rate, 0, 0)
                        });
                }
            }
            for (hash, (label, rate, requests, errors)) in &mut serving {
                *requests += 10;
                // Whole errors, `rate` of the requests so far (truncated).
                #[allow(
                    clippy::cast_possible_truncation,
                    clippy::cast_sign_loss,
                    clippy::cast_precision_loss
                )]
                let due = (*requests as f64 * *rate) as u64;
                metrics.add(label, hash, 10, due.saturating_sub(*errors));
                *errors = due.max(*errors);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
}

/// The hashes each Service selected.
type Selections = Arc<Mutex<BTreeMap<&'static str, BTreeSet<Option<String>>>>>;

/// Every 100 ms records the hashes the Services `web-stable` and `web-canary` select.
struct ServiceWatch {
    seen: Selections,
    task: tokio::task::JoinHandle<()>,
}

impl ServiceWatch {
    fn start(stack: &Stack) -> Self {
        let seen: Selections = Arc::default();
        let record = seen.clone();
        let client = stack.client.clone();
        let task = tokio::spawn(async move {
            let services = Api::<k8s_openapi::api::core::v1::Service>::namespaced(client, NS);
            loop {
                for name in ["web-stable", "web-canary"] {
                    if let Ok(svc) = services.get(name).await {
                        let hash = svc
                            .spec
                            .and_then(|s| s.selector)
                            .and_then(|s| s.get(POD_TEMPLATE_HASH).cloned());
                        if let Ok(mut seen) = record.lock() {
                            seen.entry(name).or_default().insert(hash);
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        Self { seen, task }
    }

    /// The hashes `service` selected so far.
    fn seen(&self, service: &str) -> BTreeSet<Option<String>> {
        self.seen
            .lock()
            .map(|s| s.get(service).cloned().unwrap_or_default())
            .unwrap_or_default()
    }
}

impl Drop for ServiceWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Waits until the experiment is Running and returns it.
async fn wait_running(w: &World) -> anyhow::Result<ExperimentStatus> {
    let r = wait_web(&w.stack, "experiment Running", 60, |r| {
        experiment(r).is_some_and(|e| e.phase == "Running")
    })
    .await?;
    experiment(&r).ok_or_else(|| anyhow::anyhow!("no experiment in the status"))
}

/// The experiment ReplicaSets as `(name, hash, spec.replicas)`, sorted.
async fn experiment_sets(w: &World) -> anyhow::Result<Vec<(String, String, i32)>> {
    let list = Api::<ReplicaSet>::namespaced(w.stack.client.clone(), NS)
        .list(&ListParams::default().labels(EXPERIMENT_TEMPLATE))
        .await?;
    let mut out: Vec<(String, String, i32)> = list
        .items
        .into_iter()
        .map(|rs| {
            let hash = rs
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(POD_TEMPLATE_HASH).cloned())
                .unwrap_or_default();
            (
                rs.metadata.name.unwrap_or_default(),
                hash,
                rs.spec.replicas.unwrap_or(0),
            )
        })
        .collect();
    out.sort();
    Ok(out)
}

/// Waits (at most 30 s) until the experiment ReplicaSets satisfy `f`; returns them.
async fn wait_sets(
    w: &World,
    what: &str,
    f: impl Fn(&[(String, String, i32)]) -> bool,
) -> anyhow::Result<Vec<(String, String, i32)>> {
    for _ in 0..300 {
        let sets = experiment_sets(w).await?;
        if f(&sets) {
            return Ok(sets);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!(
        "experiment ReplicaSets never {what}: {:?}",
        experiment_sets(w).await?
    )
}

/// The experiment's AnalysisRun (the only one: the steps have no other analysis).
async fn the_run(w: &World) -> anyhow::Result<AnalysisRun> {
    let runs = Api::<AnalysisRun>::namespaced(w.stack.client.clone(), NS)
        .list(&ListParams::default().labels(&format!("{ANALYSIS_KIND}=experiment")))
        .await?
        .items;
    anyhow::ensure!(runs.len() == 1, "one run expected, got {}", runs.len());
    runs.into_iter()
        .next()
        .ok_or_else(|| anyhow::anyhow!("no run"))
}

impl World {
    /// The experiment's run, checked to measure the experiment canary's hash `canary`.
    async fn the_run_checked(&self, canary: &str) -> anyhow::Result<AnalysisRun> {
        let run = the_run(self).await?;
        assert_eq!(
            hash_arg(&run).as_deref(),
            Some(canary),
            "{{{{templates.canary.podTemplateHash}}}} is the experiment canary's hash"
        );
        Ok(run)
    }
}

/// Reasons of the Events published on rollout `web`.
async fn reasons(w: &World) -> anyhow::Result<Vec<String>> {
    Ok(Api::<Event>::namespaced(w.stack.client.clone(), NS)
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("web"))
        .filter_map(|e| e.reason)
        .collect())
}

/// The `hash` argument of a run.
fn hash_arg(run: &AnalysisRun) -> Option<String> {
    run.spec
        .args
        .iter()
        .find(|a| a.name == "hash")
        .and_then(|a| a.value.clone())
}

/// Argo (experiment.md): "If the Experiment fails, the Rollout will be aborted" — here the
/// experiment canary's pods fail half their requests, its analysis fails, the release is
/// aborted, production traffic never leaves the stable revision and the experiment's
/// ReplicaSets are scaled to zero.
#[tokio::test]
async fn experiment_with_a_failing_canary_aborts_the_release() -> R {
    let w = world(0.5, None).await?;
    let (v1, v2) = (hash_of("app:1"), hash_of("app:2"));
    let running = wait_running(&w).await?;
    let canary = running
        .templates
        .iter()
        .find(|t| t.name == "canary")
        .map(|t| t.pod_template_hash.clone())
        .ok_or_else(|| anyhow::anyhow!("no canary template in {running:?}"))?;

    let aborted = wait_web(&w.stack, "aborted", 60, |r| {
        phase(r) == Some(RolloutPhase::Degraded)
    })
    .await?;
    let status = aborted.status.clone().unwrap_or_default();
    assert_eq!(
        status.abort_reason,
        Some(AbortReason::AnalysisFailed),
        "{}",
        message(&aborted)
    );
    assert_eq!(stable_rs(&aborted), Some(v1.clone()));
    assert!(
        message(&aborted).contains("experiment's \"compare\""),
        "{}",
        message(&aborted)
    );
    let run = w.the_run_checked(&canary).await?;
    let run_status = run.status.unwrap_or_default();
    assert_eq!(run_status.phase, Some(AnalysisPhase::Failed));
    let value = run_status.metric_results[0]
        .measurements
        .last()
        .and_then(|m| m.value.clone())
        .unwrap_or_default();
    assert!(
        value.starts_with("[0.5"),
        "the canary's real ratio: {value}"
    );

    // The experiment's ReplicaSets stay, at zero, while the aborted release is the rollout's.
    let sets = wait_sets(&w, "scaled to zero", |s| {
        s.len() == 2 && s.iter().all(|(_, _, n)| *n == 0)
    })
    .await?;
    assert!(
        sets.iter()
            .all(|(name, _, _)| name.starts_with(&running.name)),
        "{sets:?}"
    );
    for (name, hash, _) in &sets {
        let pods = pods_of(&w.stack, hash).await?;
        assert!(pods.is_empty(), "{name} still has pods: {pods:?}");
    }
    assert!(
        reasons(&w).await?.iter().any(|r| r == "ExperimentFailed"),
        "{:?}",
        reasons(&w).await?
    );
    assert_eq!(
        w.watch.seen("web-stable"),
        BTreeSet::from([Some(v1.clone())]),
        "production traffic never left the stable revision"
    );
    let canary_selected = w.watch.seen("web-canary");
    assert!(
        canary_selected.is_subset(&BTreeSet::from([Some(v1), Some(v2)])),
        "the canary Service never selected an experiment's pods: {canary_selected:?}"
    );
    Ok(())
}

/// Argo (experiment.md): the experiment's ReplicaSets run the stable and canary pod templates
/// with pod hashes of their own ("will have different values than the pod-hashes of the
/// stable/canary ReplicaSets created by the Rollout"); the Rollout goes on once the experiment
/// has run its duration and its analysis succeeded, and the ReplicaSets are gone after.
#[tokio::test]
async fn experiment_with_a_good_canary_runs_its_duration_and_the_release_completes() -> R {
    let w = world(0.01, None).await?;
    let (v1, v2) = (hash_of("app:1"), hash_of("app:2"));
    let running = wait_running(&w).await?;
    assert_eq!(running.step, 1);
    let hashes: BTreeMap<String, String> = running
        .templates
        .iter()
        .map(|t| (t.name.clone(), t.pod_template_hash.clone()))
        .collect();
    assert_eq!(
        hashes.keys().map(String::as_str).collect::<Vec<_>>(),
        ["baseline", "canary"]
    );
    // Argo's experiment status lists its AnalysisRuns while it runs; the Progressing
    // condition says why the rollout waits.
    let r = wait_web(&w.stack, "the experiment's analysis listed", 30, |r| {
        experiment(r).is_some_and(|e| e.analysis_runs.iter().any(|a| a.analysis == "compare"))
    })
    .await?;
    let progressing = r
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Progressing"))
        .map(|c| c.reason.clone());
    assert_eq!(progressing.as_deref(), Some("ExperimentRunning"));
    let experiment_hashes: BTreeSet<String> = hashes.values().cloned().collect();
    assert_eq!(experiment_hashes.len(), 2, "{hashes:?}");
    assert!(
        !experiment_hashes.contains(&v1) && !experiment_hashes.contains(&v2),
        "the experiment's pods have hashes of their own: {hashes:?}"
    );
    // While it runs: one pod per template, of that template's image, next to the revisions'.
    for (template, image) in [("baseline", "app:1"), ("canary", "app:2")] {
        let pods = pods_of(&w.stack, &hashes[template]).await?;
        assert_eq!(pods.len(), 1, "{template}: {pods:?}");
        let pod = Api::<k8s_openapi::api::core::v1::Pod>::namespaced(w.stack.client.clone(), NS)
            .get(&pods[0].0)
            .await?;
        let got = pod
            .spec
            .and_then(|s| s.containers.first().and_then(|c| c.image.clone()));
        assert_eq!(got.as_deref(), Some(image), "{template}");
    }
    assert_eq!(selected(&w.stack, "web-stable").await?, Some(v1.clone()));
    assert_eq!(selected(&w.stack, "web-canary").await?, Some(v2.clone()));
    let available_at = running
        .available_at
        .clone()
        .ok_or_else(|| anyhow::anyhow!("a Running experiment has availableAt"))?;

    let done = wait_web(&w.stack, "v2 stable", 90, |r| {
        phase(r) == Some(RolloutPhase::Healthy) && stable_rs(r).as_deref() == Some(v2.as_str())
    })
    .await?;
    assert_eq!(
        done.status
            .as_ref()
            .and_then(|s| s.canary.as_ref())
            .and_then(|c| c.current_experiment.clone()),
        None
    );
    let run = w.the_run_checked(&hashes["canary"]).await?;
    assert_eq!(
        run.status.unwrap_or_default().phase,
        Some(AnalysisPhase::Successful)
    );
    // The experiment's ReplicaSets are deleted once the release completed.
    wait_sets(&w, "deleted", <[_]>::is_empty).await?;
    let reasons = reasons(&w).await?;
    for expected in [
        "ExperimentCreated",
        "ExperimentRunning",
        "ExperimentSuccessful",
    ] {
        assert!(
            reasons.iter().any(|r| r == expected),
            "no {expected} Event in {reasons:?}"
        );
    }
    // It ran its duration: it succeeded no earlier than `availableAt` + duration.
    let succeeded = Api::<Event>::namespaced(w.stack.client.clone(), NS)
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some("ExperimentSuccessful"))
        .filter_map(|e| e.event_time.map(|t| t.0))
        .next()
        .ok_or_else(|| anyhow::anyhow!("ExperimentSuccessful has an eventTime"))?;
    let earliest = available_at.0 + k8s_openapi::jiff::SignedDuration::from_secs(DURATION);
    assert!(
        succeeded >= earliest,
        "succeeded at {succeeded}, before availableAt {} + {DURATION}s",
        available_at.0
    );
    assert!(
        w.watch
            .seen("web-stable")
            .iter()
            .chain(w.watch.seen("web-canary").iter())
            .all(|h| h.as_ref().is_none_or(|h| !experiment_hashes.contains(h))),
        "no Service of the rollout selected an experiment's pods"
    );
    Ok(())
}

/// Runs the installed kubectl against `server` (no kubeconfig), off the runtime's thread;
/// returns whether it succeeded and what it printed.
async fn kubectl(server: &str, cache: &std::path::Path, args: &[&str]) -> (bool, String) {
    let mut cmd = std::process::Command::new("kubectl");
    cmd.arg(format!("--server={server}"))
        .arg(format!("--cache-dir={}", cache.display()))
        .args(args)
        .env("KUBECONFIG", cache.join("none"))
        .stdin(std::process::Stdio::null());
    match tokio::task::spawn_blocking(move || cmd.output()).await {
        Ok(Ok(out)) => (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        ),
        Ok(Err(e)) => (false, format!("kubectl did not start: {e}")),
        Err(e) => (false, format!("kubectl's thread failed: {e}")),
    }
}

fn kubectl_installed() -> bool {
    std::process::Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Argo (experiment.md, and `PauseReasonInconclusiveExperiment` in its types.go): an
/// experiment whose analysis is Inconclusive pauses the Rollout with the reason
/// `InconclusiveExperiment`, which a release script waits on with kubectl; a promotion accepts
/// the experiment and the release goes on. Here the canary's error ratio 0.2 meets neither
/// the successCondition (< 0.05) nor the failureCondition (> 0.5), twice (over the
/// inconclusiveLimit of 1); the installed kubectl talks
/// to the simulated cluster over HTTP (skipped when kubectl is missing).
#[tokio::test]
async fn inconclusive_experiment_pauses_for_kubectl_wait_and_a_promotion_goes_on() -> R {
    if !kubectl_installed() {
        eprintln!("kubectl not installed: skipping");
        return Ok(());
    }
    let w = world(0.2, Some(0.5)).await?;
    let v2 = hash_of("app:2");
    let (addr, server) = w.stack.sim.serve("127.0.0.1:0".parse()?).await?;
    let url = format!("http://{addr}");
    let cache = std::env::temp_dir().join(format!("rollgate-e2e-experiment-{}", addr.port()));
    // What a release script runs; `--timeout` bounds a hang, it measures nothing.
    let (ok, out) = kubectl(
        &url,
        &cache,
        &[
            "wait",
            "-n",
            NS,
            "rollout/web",
            "--for=jsonpath={.status.pauseConditions[0].reason}=InconclusiveExperiment",
            "--timeout=90s",
        ],
    )
    .await;
    assert!(ok, "kubectl wait failed:\n{out}");
    assert!(
        out.contains("rollout.rollgate.dev/web condition met"),
        "{out}"
    );
    let (ok, name) = kubectl(
        &url,
        &cache,
        &[
            "get",
            "rollout",
            "web",
            "-n",
            NS,
            "-o",
            "jsonpath={.status.canary.currentExperiment}",
        ],
    )
    .await;
    assert!(ok, "{name}");
    let paused = w.stack.rollout(NS, "web").await?;
    assert_eq!(phase(&paused), Some(RolloutPhase::Paused));
    let exp = experiment(&paused).ok_or_else(|| anyhow::anyhow!("no experiment"))?;
    assert_eq!(name.trim(), exp.name, "Argo's currentExperiment");
    assert_eq!(exp.phase, "Inconclusive");
    let run = the_run(&w).await?.status.unwrap_or_default();
    assert_eq!(run.phase, Some(AnalysisPhase::Inconclusive));
    let value = run.metric_results[0]
        .measurements
        .last()
        .and_then(|m| m.value.clone())
        .unwrap_or_default();
    assert!(
        value.starts_with("[0.2"),
        "inconclusive on a real value, not for want of data: {value}"
    );
    assert!(
        reasons(&w)
            .await?
            .iter()
            .any(|r| r == "ExperimentInconclusive"),
        "{:?}",
        reasons(&w).await?
    );

    // `rollgate promote`.
    rollgate_ctl::run(
        &w.stack.client,
        NS,
        "web",
        &rollgate_ctl::Command::Promote { full: false },
        w.stack.sim.now(),
    )
    .await?;
    let done = wait_web(&w.stack, "v2 stable", 60, |r| {
        phase(r) == Some(RolloutPhase::Healthy) && stable_rs(r).as_deref() == Some(v2.as_str())
    })
    .await?;
    assert!(
        done.status
            .as_ref()
            .is_some_and(|s| s.pause_conditions.is_empty())
    );
    assert!(
        reasons(&w)
            .await?
            .iter()
            .any(|r| r == "ExperimentSuccessful"),
        "a promotion accepts the experiment: {:?}",
        reasons(&w).await?
    );
    wait_sets(&w, "deleted", <[_]>::is_empty).await?;
    let (ok, out) = kubectl(
        &url,
        &cache,
        &[
            "wait",
            "-n",
            NS,
            "rollout/web",
            "--for=jsonpath={.status.phase}=Healthy",
            "--timeout=30s",
        ],
    )
    .await;
    assert!(ok, "kubectl wait failed:\n{out}");
    server.abort();
    let _ = std::fs::remove_dir_all(&cache);
    Ok(())
}

/// Argo (rollback/retry of an aborted Rollout: `kubectl argo rollouts retry rollout` starts
/// the release's steps again): a retry after a failed experiment runs a new experiment, with
/// new ReplicaSets and pods (Argo appends a collision count to the experiment's name), while
/// the failed one's stay at zero; once the release completes, every experiment ReplicaSet of
/// it is deleted.
#[tokio::test]
async fn experiment_retried_after_a_failure_runs_anew_and_both_are_cleaned_up() -> R {
    let w = world(0.5, None).await?;
    let v2 = hash_of("app:2");
    let first = wait_running(&w).await?;
    wait_web(&w.stack, "aborted", 60, |r| {
        phase(r) == Some(RolloutPhase::Degraded)
    })
    .await?;
    // The fix is in: the next experiment's canary pods serve as well as the baseline's.
    if let Ok(mut rates) = w.error_rates.lock() {
        rates.insert("canary".to_string(), 0.01);
    }
    rollgate_ctl::run(
        &w.stack.client,
        NS,
        "web",
        &rollgate_ctl::Command::Retry,
        w.stack.sim.now(),
    )
    .await?;
    let second = wait_web(&w.stack, "a new experiment Running", 60, |r| {
        experiment(r).is_some_and(|e| e.phase == "Running" && e.name != first.name)
    })
    .await?;
    let second = experiment(&second).ok_or_else(|| anyhow::anyhow!("no experiment"))?;
    assert!(
        second.name.starts_with(&format!("{}-", first.name)),
        "{} after {}",
        second.name,
        first.name
    );
    let hashes = |e: &ExperimentStatus| -> BTreeSet<String> {
        e.templates
            .iter()
            .map(|t| t.pod_template_hash.clone())
            .collect()
    };
    assert!(
        hashes(&first).is_disjoint(&hashes(&second)),
        "new pods to measure: {first:?} {second:?}"
    );
    let sets = experiment_sets(&w).await?;
    for (name, _, replicas) in &sets {
        let want = if name.starts_with(&second.name) { 1 } else { 0 };
        assert_eq!(*replicas, want, "{name}: {sets:?}");
    }
    assert_eq!(sets.len(), 4, "{sets:?}");

    wait_web(&w.stack, "v2 stable", 90, |r| {
        phase(r) == Some(RolloutPhase::Healthy) && stable_rs(r).as_deref() == Some(v2.as_str())
    })
    .await?;
    wait_sets(&w, "deleted", <[_]>::is_empty).await?;
    let reasons = reasons(&w).await?;
    let count = |reason: &str| reasons.iter().filter(|r| *r == reason).count();
    assert_eq!(
        (
            count("ExperimentCreated"),
            count("ExperimentFailed"),
            count("ExperimentSuccessful")
        ),
        (2, 1, 1),
        "{reasons:?}"
    );
    Ok(())
}

/// The Kayenta-style use of Argo's experiment step (experiment.md: "run two versions ... a
/// baseline and a canary ... to enable Kayenta-style analysis"): a `sequential` judge compares
/// the experiment canary's pods with the experiment baseline's, not with the stable revision,
/// and a canary with 20x the baseline's errors fails it and aborts the release.
#[tokio::test]
async fn a_sequential_judge_compares_the_experiment_canary_with_its_baseline() -> R {
    let w = world_with(0.2, None, "judge").await?;
    let v1 = hash_of("app:1");
    let running = wait_running(&w).await?;
    let hash = |name: &str| {
        running
            .templates
            .iter()
            .find(|t| t.name == name)
            .map(|t| t.pod_template_hash.clone())
            .ok_or_else(|| anyhow::anyhow!("no {name} template in {running:?}"))
    };
    let (baseline, canary) = (hash("baseline")?, hash("canary")?);
    let aborted = match wait_web(&w.stack, "aborted by the judge", 40, |r| {
        phase(r) == Some(RolloutPhase::Degraded)
    })
    .await
    {
        Ok(r) => r,
        Err(e) => {
            let run = the_run(&w).await?;
            let r = Api::<Rollout>::namespaced(w.stack.client.clone(), NS)
                .get("web")
                .await?;
            panic!(
                "{e}: {}\nrun: {}",
                message(&r),
                serde_json::to_string_pretty(&run.status)?
            );
        }
    };
    assert_eq!(
        aborted.status.as_ref().and_then(|s| s.abort_reason),
        Some(AbortReason::AnalysisFailed),
        "{}",
        message(&aborted)
    );
    assert_eq!(stable_rs(&aborted), Some(v1));
    let run = w.the_run_checked(&canary).await?;
    let baseline_args: Vec<(String, Option<String>)> = run
        .spec
        .baseline_args
        .iter()
        .map(|a| (a.name.clone(), a.value.clone()))
        .collect();
    assert_eq!(baseline_args, [("hash".to_string(), Some(baseline))]);
    assert_eq!(
        run.status.and_then(|s| s.phase),
        Some(AnalysisPhase::Failed)
    );
    Ok(())
}
