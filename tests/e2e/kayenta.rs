//! The Kayenta-style judge (a `kayenta` metric) against a real Prometheus, end to end. Real
//! time: a task adds whole requests and errors to both revisions' counters every 100 ms (the
//! canary serving 10% of the requests), Prometheus scrapes them every second, and the metric
//! samples each revision's error ratio every second until its fixed horizon of 8 samples,
//! where it judges the canary's samples against the stable revision's once.

use std::time::Duration;

use kube::Api;
use kube::api::ListParams;
use rollgate_api::{AnalysisPhase, AnalysisRun, RolloutPhase};
use rollgate_e2e::*;
use rollgate_promtest::{MetricsHandle, MetricsServer, ScrapeConfig, TestPrometheus};
use rollgate_test_support::{analysis_ref, analysis_template, image_hash, merge, rollout};
use serde_json::json;

type R = anyhow::Result<()>;

/// The horizon: samples of each revision judged at once.
const HORIZON: i32 = 8;

struct World {
    stack: Stack,
    _prom: TestPrometheus,
    _traffic: tokio::task::JoinHandle<()>,
    _server: MetricsServer,
}

fn hash_of(image: &str) -> String {
    image_hash("web", image)
}

/// Every 100 ms the stable revision (`app:1`) serves 900 requests of which 9 fail (1%), and
/// the canary (`app:2`) 100 requests of which `canary_errors` fail.
fn drive(metrics: MetricsHandle, canary_errors: u64) -> tokio::task::JoinHandle<()> {
    let (stable, canary) = (hash_of("app:1"), hash_of("app:2"));
    tokio::spawn(async move {
        loop {
            metrics.add("1", &stable, 900, 9);
            metrics.add("2", &canary, 100, canary_errors);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
}

fn counter(name: &str, hash: &str) -> String {
    format!("sum({name}{{pod_template_hash=\"{hash}\"}})")
}

/// The error ratio of the revision `{{args.hash}}` over the last 5 seconds.
fn error_ratio() -> String {
    let rate =
        |name: &str| format!("sum(rate({name}{{pod_template_hash=\"{{{{args.hash}}}}\"}}[5s]))");
    format!(
        "{} / {}",
        rate("http_request_errors_total"),
        rate("http_requests_total")
    )
}

/// A Rollout whose canary step at 10% runs a kayenta metric judging the error ratio, released
/// from `app:1` to `app:2`, whose canary fails `canary_errors` of every 100 requests.
async fn world(canary_errors: u64) -> anyhow::Result<World> {
    rollgate_promtest::install_crypto_provider();
    let server = MetricsServer::start().await?;
    let traffic = drive(server.handle(), canary_errors);
    let prom = TestPrometheus::start(
        ScrapeConfig::new()
            .target(server.target())
            .interval(Duration::from_secs(1)),
    )
    .await?;
    prom.wait_for_data(
        &counter("http_requests_total", &hash_of("app:2")),
        Duration::from_secs(60),
    )
    .await?;
    let stack = prometheus_stack().await?;
    let m = json!({
        "name": "score", "interval": "1s", "count": HORIZON,
        "provider": {"prometheus": {"address": prom.address()}},
        "kayenta": {
            "metrics": [{"name": "error-ratio", "query": error_ratio(),
                         "direction": "increase", "nanStrategy": "remove",
                         "allowedIncrease": 1.2, "critical": true}],
            "scoreThresholds": {"pass": 95, "marginal": 75}}});
    stack
        .apply_yaml(
            &analysis_template("score", json!({"args": [{"name": "hash"}], "metrics": [m]}))
                .to_string(),
            NS,
        )
        .await?;
    let mut analysis = analysis_ref("score");
    merge(
        &mut analysis,
        json!({"args": [{"name": "hash", "valueFrom": {"podTemplateHashValue": "Latest"}}]}),
    );
    stack
        .apply_yaml(
            &rollout(
                "web",
                "app:1",
                json!({"canary": {"steps": [{"setWeight": 10}, {"analysis": analysis},
                                            {"setWeight": 50}]}}),
                json!({"replicas": 10}),
            )
            .to_string(),
            NS,
        )
        .await?;
    let w = World {
        stack,
        _prom: prom,
        _traffic: traffic,
        _server: server,
    };
    wait_web(&w.stack, "first deploy", 30, |r| {
        phase(r) == Some(RolloutPhase::Healthy)
    })
    .await?;
    w.stack.set_image(NS, "web", "app", "app:2").await?;
    Ok(w)
}

async fn the_run(w: &World) -> anyhow::Result<AnalysisRun> {
    let runs = Api::<AnalysisRun>::namespaced(w.stack.client.clone(), NS)
        .list(&ListParams::default())
        .await?
        .items;
    anyhow::ensure!(runs.len() == 1, "one run expected, got {}", runs.len());
    Ok(runs.into_iter().next().expect("one run"))
}

#[tokio::test]
async fn a_canary_with_three_times_the_errors_fails_at_the_horizon() -> R {
    let w = world(3).await?;
    let aborted = wait_web(&w.stack, "rolled back", 90, |r| {
        phase(r) == Some(RolloutPhase::Degraded)
    })
    .await?;
    assert_eq!(stable_rs(&aborted), Some(hash_of("app:1")));
    let msg = message(&aborted);
    assert!(
        msg.contains("metric \"score\" failed: the canary failed: score 0 < marginal 75"),
        "{msg}"
    );
    assert!(msg.contains("error-ratio High (effect size"), "{msg}");
    let run = the_run(&w).await?;
    assert_eq!(
        run.spec.baseline_args.first().and_then(|a| a.value.clone()),
        Some(hash_of("app:1")),
        "the baseline's queries take the stable hash"
    );
    let status = run.status.unwrap_or_default();
    assert_eq!(status.phase, Some(AnalysisPhase::Failed));
    let m = &status.metric_results[0];
    // Judged once, at the horizon: every measurement before it was Successful.
    assert_eq!(
        (m.count, m.successful, m.failed),
        (HORIZON, HORIZON - 1, 1),
        "{m:?}"
    );
    assert!(m.kayenta.is_some(), "the samples are in the status");
    let last = m.measurements.last().cloned().unwrap_or_default();
    assert_eq!(last.phase, Some(AnalysisPhase::Failed));
    assert_eq!(last.metadata["samples"], HORIZON.to_string());
    assert_eq!(last.metadata["error-ratio.classification"], "High");
    let effect: f64 = last.metadata["error-ratio.effectSize"].parse()?;
    assert!((2.0..4.5).contains(&effect), "{:?}", last.metadata);
    Ok(())
}

#[tokio::test]
async fn a_canary_as_good_as_the_stable_revision_passes() -> R {
    let w = world(1).await?;
    let v2 = hash_of("app:2");
    wait_web(&w.stack, "v2 stable", 90, |r| {
        phase(r) == Some(RolloutPhase::Healthy) && stable_rs(r).as_deref() == Some(v2.as_str())
    })
    .await?;
    let status = the_run(&w).await?.status.unwrap_or_default();
    assert_eq!(status.phase, Some(AnalysisPhase::Successful));
    let m = &status.metric_results[0];
    assert_eq!(
        (m.count, m.successful, m.failed),
        (HORIZON, HORIZON, 0),
        "{m:?}"
    );
    let last = m.measurements.last().cloned().unwrap_or_default();
    assert_eq!(last.metadata["result"], "Pass", "{:?}", last.metadata);
    assert_eq!(last.metadata["score"], "100", "{:?}", last.metadata);
    assert_eq!(last.metadata["error-ratio.classification"], "Pass");
    let message = m.message.clone().unwrap_or_default();
    assert!(
        message.starts_with("metric \"score\" passed: the canary passed: score 100 >= pass 95"),
        "{message}"
    );
    Ok(())
}
