//! The sequential judge (a `sequential` metric) against a real Prometheus, end to end. Real
//! time: a task adds whole requests, errors and request durations to both revisions' counters
//! and histograms every 100 ms (the canary serving 10% of the requests), Prometheus scrapes
//! them every second, and the metric measures every second, comparing the canary's counters
//! with the stable revision's: errors, or requests slower than an SLO bucket.

use std::time::Duration;

use kube::Api;
use kube::api::ListParams;
use rollgate_api::{AnalysisPhase, AnalysisRun, RolloutPhase};
use rollgate_e2e::*;
use rollgate_promtest::{MetricsHandle, MetricsServer, ScrapeConfig, TestPrometheus};
use rollgate_test_support::{analysis_ref, analysis_template, image_hash, merge, rollout};
use serde_json::json;

type R = anyhow::Result<()>;

struct World {
    stack: Stack,
    prom: TestPrometheus,
    _traffic: tokio::task::JoinHandle<()>,
    _server: MetricsServer,
}

fn hash_of(image: &str) -> String {
    image_hash("web", image)
}

/// What the canary does wrong per 100 requests.
#[derive(Debug, Clone, Copy)]
struct Canary {
    /// Requests that fail.
    errors: u64,
    /// Requests slower than the SLO bucket (0.5 s against `le="0.3"`; the others take 0.05 s).
    slow: u64,
}

/// Every 100 ms the stable revision (`app:1`) serves 900 requests of which 9 fail (1%) and 9
/// are slower than the SLO bucket, and the canary (`app:2`) 100 requests of which
/// `canary.errors` fail and `canary.slow` are slow.
fn drive(metrics: MetricsHandle, canary: Canary) -> tokio::task::JoinHandle<()> {
    let (stable, canary_hash) = (hash_of("app:1"), hash_of("app:2"));
    let slow = |n: u64, of: u64| [(0.05, of.saturating_sub(n)), (0.5, n)];
    tokio::spawn(async move {
        loop {
            metrics.add("1", &stable, 900, 9);
            metrics.observe_durations("1", &stable, &slow(9, 900));
            metrics.add("2", &canary_hash, 100, canary.errors);
            metrics.observe_durations("2", &canary_hash, &slow(canary.slow, 100));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
}

fn counter(name: &str, hash: &str) -> String {
    format!("sum({name}{{pod_template_hash=\"{hash}\"}})")
}

/// The requests slower than the SLO bucket `le="0.3"`, from the duration histogram: all
/// requests minus those within the bucket.
fn slow_requests(hash: &str) -> String {
    format!(
        "sum(http_request_duration_seconds_count{{pod_template_hash=\"{hash}\"}}) - \
         sum(http_request_duration_seconds_bucket{{le=\"0.3\",pod_template_hash=\"{hash}\"}})"
    )
}

/// The metric `latency` over the duration histogram: slow requests against all requests.
fn latency_metric() -> serde_json::Value {
    json!({"name": "latency", "sequential": {
        "requests": counter("http_request_duration_seconds_count", "{{args.hash}}")}})
}

/// The metric `errors` on a canary with `canary_errors` errors per 100 requests (and as few
/// slow requests as the stable revision).
async fn world(canary_errors: u64) -> anyhow::Result<World> {
    world_with(
        Canary {
            errors: canary_errors,
            slow: 1,
        },
        &counter("http_request_errors_total", "{{args.hash}}"),
        json!({}),
    )
    .await
}

/// [`world`] with another canary, another `events` query, and `metric` merged over the
/// metric.
async fn world_with(
    canary: Canary,
    events: &str,
    metric: serde_json::Value,
) -> anyhow::Result<World> {
    rollgate_promtest::install_crypto_provider();
    let server = MetricsServer::start().await?;
    let traffic = drive(server.handle(), canary);
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
    let w = World {
        stack,
        prom,
        _traffic: traffic,
        _server: server,
    };
    let mut m = json!({
        "name": "errors", "interval": "1s", "count": 8,
        "provider": {"prometheus": {"address": w.prom.address()}},
        "sequential": {
            "events": events,
            "requests": counter("http_requests_total", "{{args.hash}}"),
            "alpha": 0.01, "priorConcentration": 20, "direction": "increase"}});
    merge(&mut m, metric);
    w.stack
        .apply_yaml(
            &analysis_template(
                "errors",
                json!({"args": [{"name": "hash"}], "metrics": [m]}),
            )
            .to_string(),
            NS,
        )
        .await?;
    let mut analysis = analysis_ref("errors");
    merge(
        &mut analysis,
        json!({"args": [{"name": "hash", "valueFrom": {"podTemplateHashValue": "Latest"}}]}),
    );
    w.stack
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
async fn a_canary_with_three_times_the_errors_is_rolled_back_after_a_few_scrapes() -> R {
    let w = world(3).await?;
    let aborted = wait_web(&w.stack, "rolled back", 60, |r| {
        phase(r) == Some(RolloutPhase::Degraded)
    })
    .await?;
    assert_eq!(stable_rs(&aborted), Some(hash_of("app:1")));
    let msg = message(&aborted);
    assert!(
        msg.contains("metric \"errors\" failed: the canary has more events"),
        "{msg}"
    );
    assert!(
        msg.contains("e-value") && msg.contains("rate ratio"),
        "{msg}"
    );
    let run = the_run(&w).await?;
    assert_eq!(
        run.spec.baseline_args.first().and_then(|a| a.value.clone()),
        Some(hash_of("app:1")),
        "the baseline's queries take the stable hash"
    );
    let status = run.status.unwrap_or_default();
    assert_eq!(status.phase, Some(AnalysisPhase::Failed));
    let m = &status.metric_results[0];
    // The first measurement sets the counters' base; a few more suffice, long before count.
    assert!(
        m.count <= 5,
        "rejected after {} measurements: {m:?}",
        m.count
    );
    assert!(m.sequential.is_some(), "the test's state is in the status");
    let last = m.measurements.last().cloned().unwrap_or_default();
    assert_eq!(last.phase, Some(AnalysisPhase::Failed));
    let e: f64 = last.metadata["eValue"].parse()?;
    assert!(e >= 100.0, "{:?}", last.metadata);
    let ratio: f64 = last.metadata["rateRatio"].parse()?;
    assert!((2.0..4.5).contains(&ratio), "{:?}", last.metadata);
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
    assert_eq!((m.count, m.successful, m.failed), (8, 8, 0), "{m:?}");
    let last = m.measurements.last().cloned().unwrap_or_default();
    let requests: u64 = last.metadata["canaryRequests"].parse()?;
    assert!(requests > 0, "{:?}", last.metadata);
    let e: f64 = last.metadata["eValue"].parse()?;
    assert!(e < 100.0, "{:?}", last.metadata);
    Ok(())
}

#[tokio::test]
async fn a_query_returning_several_series_is_an_error_naming_it_never_a_failure() -> R {
    // Both counters of the revision: two series where one counter is expected.
    let events = "{__name__=~\"http_.*_total\", pod_template_hash=\"{{args.hash}}\"}";
    let w = world_with(
        Canary { errors: 3, slow: 1 },
        events,
        json!({"consecutiveErrorLimit": 1}),
    )
    .await?;
    let paused = wait_web(&w.stack, "paused on the analysis error", 60, |r| {
        phase(r) == Some(RolloutPhase::Paused)
    })
    .await?;
    assert_eq!(stable_rs(&paused), Some(hash_of("app:1")));
    let status = the_run(&w).await?.status.unwrap_or_default();
    assert_eq!(status.phase, Some(AnalysisPhase::Error));
    let m = &status.metric_results[0];
    assert_eq!((m.failed, m.error), (0, 2), "{m:?}");
    let msg = m
        .measurements
        .last()
        .and_then(|x| x.message.clone())
        .unwrap_or_default();
    let rendered = events.replace("{{args.hash}}", &hash_of("app:2"));
    assert!(
        msg.contains(&format!("canary events query \"{rendered}\"")),
        "{msg}"
    );
    assert!(msg.contains("returned 2 series"), "{msg}");
    Ok(())
}

#[tokio::test]
async fn a_canary_with_three_times_the_slow_requests_is_rolled_back_after_a_few_scrapes() -> R {
    // As many errors as the stable revision, three times its requests above the SLO bucket.
    let canary = Canary { errors: 1, slow: 3 };
    let w = world_with(canary, &slow_requests("{{args.hash}}"), latency_metric()).await?;
    let aborted = wait_web(&w.stack, "rolled back", 60, |r| {
        phase(r) == Some(RolloutPhase::Degraded)
    })
    .await?;
    assert_eq!(stable_rs(&aborted), Some(hash_of("app:1")));
    let msg = message(&aborted);
    assert!(
        msg.contains("metric \"latency\" failed: the canary has more events"),
        "{msg}"
    );
    let status = the_run(&w).await?.status.unwrap_or_default();
    assert_eq!(status.phase, Some(AnalysisPhase::Failed));
    let m = &status.metric_results[0];
    assert!(
        m.count <= 5,
        "rejected after {} measurements: {m:?}",
        m.count
    );
    assert_eq!(
        m.error, 0,
        "the histogram query reads one counter each time: {m:?}"
    );
    let last = m.measurements.last().cloned().unwrap_or_default();
    assert_eq!(last.phase, Some(AnalysisPhase::Failed));
    let e: f64 = last.metadata["eValue"].parse()?;
    assert!(e >= 100.0, "{:?}", last.metadata);
    let ratio: f64 = last.metadata["rateRatio"].parse()?;
    assert!((2.0..4.5).contains(&ratio), "{:?}", last.metadata);
    // The query counts the slow requests: about 3 in 100 of the canary's.
    let events: f64 = last.metadata["canaryEvents"].parse()?;
    let requests: f64 = last.metadata["canaryRequests"].parse()?;
    assert!(
        requests > 0.0 && (0.02..0.045).contains(&(events / requests)),
        "{:?}",
        last.metadata
    );
    Ok(())
}

#[tokio::test]
async fn a_canary_as_fast_as_the_stable_revision_passes_the_latency_test() -> R {
    let canary = Canary { errors: 1, slow: 1 };
    let w = world_with(canary, &slow_requests("{{args.hash}}"), latency_metric()).await?;
    let v2 = hash_of("app:2");
    wait_web(&w.stack, "v2 stable", 90, |r| {
        phase(r) == Some(RolloutPhase::Healthy) && stable_rs(r).as_deref() == Some(v2.as_str())
    })
    .await?;
    let status = the_run(&w).await?.status.unwrap_or_default();
    assert_eq!(status.phase, Some(AnalysisPhase::Successful));
    let m = &status.metric_results[0];
    assert_eq!(
        (m.count, m.successful, m.failed, m.error),
        (8, 8, 0, 0),
        "{m:?}"
    );
    let last = m.measurements.last().cloned().unwrap_or_default();
    let events: f64 = last.metadata["canaryEvents"].parse()?;
    let requests: f64 = last.metadata["canaryRequests"].parse()?;
    assert!(
        requests > 0.0 && events > 0.0 && events / requests < 0.02,
        "{:?}",
        last.metadata
    );
    let e: f64 = last.metadata["eValue"].parse()?;
    assert!(e < 100.0, "{:?}", last.metadata);
    Ok(())
}
