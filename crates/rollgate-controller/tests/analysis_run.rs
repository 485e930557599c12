//! Measuring an AnalysisRun on the simulated cluster: when measurements start and finish, and
//! where conditions are evaluated.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Api;
use kube::api::PostParams;
use rollgate_api::{AnalysisPhase, AnalysisRun};
use rollgate_controller::analysis_run::{RunContext, off_reactor, reconcile_run};
use rollgate_controller::clock::Clock;
use rollgate_controller::metrics_source::{BoxFuture, MetricSource, QueryFor};
use rollgate_controller::telemetry::Telemetry;
use rollgate_prometheus::{QueryResult, Request};
use rollgate_sim::{SimCluster, SimConfig};
use serde_json::json;

/// Answers `[0.01]` after `delay` (tokio time).
struct Slow {
    delay: Duration,
}

impl MetricSource for Slow {
    fn query<'a>(
        &'a self,
        _about: QueryFor<'a>,
        _request: &'a Request,
    ) -> BoxFuture<'a, Result<QueryResult, String>> {
        Box::pin(async move {
            tokio::time::sleep(self.delay).await;
            Ok(QueryResult::Vector(vec![(Default::default(), 0.01)]))
        })
    }
}

async fn cluster(base: Timestamp) -> anyhow::Result<SimCluster> {
    let sim = SimCluster::new(SimConfig {
        base_time: Some(base),
        ..SimConfig::default()
    });
    let crds = Api::<CustomResourceDefinition>::all(sim.client());
    for crd in rollgate_api::crds::all() {
        crds.create(&PostParams::default(), &crd).await?;
    }
    Ok(sim)
}

#[tokio::test(start_paused = true)]
async fn a_measurement_starts_when_the_query_is_sent_and_finishes_when_it_is_answered()
-> anyhow::Result<()> {
    let base: Timestamp = "2026-11-23T10:00:00Z".parse()?;
    let sim = cluster(base).await?;
    let runs = Api::<AnalysisRun>::namespaced(sim.client(), "default");
    let run: AnalysisRun = serde_json::from_value(json!({
        "apiVersion": "rollgate.dev/v1alpha1", "kind": "AnalysisRun",
        "metadata": {"name": "run-1", "namespace": "default"},
        "spec": {"metrics": [{"name": "error-rate", "successCondition": "result[0] < 0.05",
            "interval": "1m", "count": 2,
            "provider": {"prometheus": {"address": "http://prometheus:9090",
                "query": "sum(rate(errors[1m]))"}}}]}
    }))?;
    runs.create(&PostParams::default(), &run).await?;
    let ctx = RunContext {
        client: sim.client(),
        clock: Clock::starting_at(base),
        source: Arc::new(Slow {
            delay: Duration::from_secs(30),
        }),
        telemetry: Arc::new(Telemetry::new()),
        retries: Arc::default(),
    };
    let started = ctx.clock.now();
    let requeue = reconcile_run(&ctx, "default", "run-1").await?;
    let status = runs.get("run-1").await?.status.unwrap_or_default();
    let m = &status.metric_results[0].measurements[0];
    assert_eq!(m.phase, Some(AnalysisPhase::Successful));
    let at = |t: &Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>| {
        t.as_ref().map(|t| t.0.duration_since(started))
    };
    assert_eq!(
        at(&m.started_at),
        Some(SignedDuration::ZERO),
        "sent at once"
    );
    assert_eq!(
        at(&m.finished_at),
        Some(SignedDuration::from_secs(30)),
        "answered 30 s later"
    );
    assert_eq!(
        requeue,
        Some(Duration::from_secs(60)),
        "an interval after the answer"
    );
    Ok(())
}

#[tokio::test(flavor = "current_thread")]
async fn work_off_the_reactor_runs_on_another_thread() -> anyhow::Result<()> {
    let reactor = std::thread::current().id();
    let worker = off_reactor(|| std::thread::current().id()).await?;
    assert_ne!(worker, reactor);
    // While it blocks, the runtime's only thread keeps running other tasks: the blocking
    // closure waits for a message that a task on that thread sends.
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let blocked = off_reactor(move || rx.recv_timeout(Duration::from_secs(60)).is_ok());
    let other = tokio::spawn(async move { tx.send(()).is_ok() });
    assert!(
        blocked.await?,
        "the other task ran while the closure blocked"
    );
    assert!(other.await?);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn observe_reads_which_named_secrets_exist_and_their_keys_only() -> anyhow::Result<()> {
    use k8s_openapi::api::core::v1::Secret;
    use rollgate_api::{AnalysisTemplate, Rollout};

    let sim = cluster("2026-11-23T10:00:00Z".parse()?).await?;
    let client = sim.client();
    let template: AnalysisTemplate = serde_json::from_value(json!({
        "apiVersion": "rollgate.dev/v1alpha1", "kind": "AnalysisTemplate",
        "metadata": {"name": "error-rate", "namespace": "default"},
        "spec": {"args": [{"name": "window",
                "valueFrom": {"secretKeyRef": {"name": "limits", "key": "window"}}}],
            "metrics": [{"name": "errors", "successCondition": "result[0] < 0.05",
                "provider": {"prometheus": {"address": "http://prometheus:9090",
                    "query": "rate(errors[{{args.window}}])",
                    "authentication": {"secretName": "prom-auth"}}}}]}
    }))?;
    Api::<AnalysisTemplate>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &template)
        .await?;
    let secret: Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "limits", "namespace": "default"},
        "stringData": {"window": "5m"}, "data": {"other": "c2VjcmV0"}
    }))?;
    Api::<Secret>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &secret)
        .await?;
    let rollout: Rollout = serde_json::from_value(json!({
        "apiVersion": "rollgate.dev/v1alpha1", "kind": "Rollout",
        "metadata": {"name": "web", "namespace": "default", "uid": "u1"},
        "spec": {"strategy": {"blueGreen": {"activeService": "web-active",
            "prePromotionAnalysis": {"templates": [{"templateName": "error-rate"}]}}}}
    }))?;
    let observed = rollgate_controller::observe::observe(&client, &rollout).await?;
    let keys: Vec<&str> = observed
        .secrets
        .get("limits")
        .map(|k| k.iter().map(String::as_str).collect())
        .unwrap_or_default();
    assert!(keys.contains(&"window"), "{:?}", observed.secrets);
    assert!(
        !observed.secrets.contains_key("prom-auth"),
        "a missing Secret is absent"
    );
    let text = format!("{:?}", observed.secrets);
    assert!(
        !text.contains("5m") && !text.contains("secret"),
        "no value: {text}"
    );
    Ok(())
}
