//! Analysis against a real Prometheus, end to end. These run in real time (Prometheus scrapes
//! on the wall clock): pods are ready 0.2 s after they start, Prometheus scrapes the test's
//! metrics endpoint every second, and measurements are 1 s apart.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::Api;
use kube::api::ListParams;
use rollgate_api::{AnalysisRun, RolloutPhase};
use rollgate_e2e::*;
use rollgate_promtest::{MetricsHandle, MetricsServer, ScrapeConfig, TestPrometheus};
use rollgate_test_support::{
    analysis_ref, analysis_template, blue_green_rollout, blue_green_services, image_hash, merge,
    prometheus_metric, rollout,
};
use serde_json::{Value, json};

type R = anyhow::Result<()>;

/// Everything one test needs: a measuring stack, a metrics endpoint and a Prometheus
/// scraping it.
struct World {
    stack: Stack,
    prom: TestPrometheus,
    metrics: MetricsHandle,
    _server: MetricsServer,
}

/// The pod-template hash the controller will give the revision running `image`.
fn hash_of(image: &str) -> String {
    image_hash("web", image)
}

fn error_ratio(hash: &str, window: &str) -> String {
    format!(
        "sum(rate(http_request_errors_total{{pod_template_hash=\"{hash}\"}}[{window}])) / \
         sum(rate(http_requests_total{{pod_template_hash=\"{hash}\"}}[{window}]))"
    )
}

/// Starts everything; `app:1` serves without errors and `app:2` with `v2_errors`, and waits
/// until Prometheus can answer the error ratio of `app:2`.
async fn world(v2_errors: f64) -> anyhow::Result<World> {
    world_with(v2_errors, None).await
}

/// [`world`], with Prometheus requiring basic auth when `auth` is given.
async fn world_with(v2_errors: f64, auth: Option<(&str, &str)>) -> anyhow::Result<World> {
    rollgate_promtest::install_crypto_provider();
    let server = MetricsServer::start().await?;
    let metrics = server.handle();
    metrics.set_traffic("1", &hash_of("app:1"), 100.0, 0.0);
    metrics.set_traffic("2", &hash_of("app:2"), 100.0, v2_errors);
    let mut config = ScrapeConfig::new()
        .target(server.target())
        .interval(Duration::from_secs(1));
    if let Some((user, password)) = auth {
        config = config.basic_auth(user, password);
    }
    let prom = TestPrometheus::start(config).await?;
    prom.wait_for_data(
        &error_ratio(&hash_of("app:2"), "5s"),
        Duration::from_secs(60),
    )
    .await?;
    let stack = prometheus_stack().await?;
    Ok(World {
        stack,
        prom,
        metrics,
        _server: server,
    })
}

/// The `error-rate` AnalysisTemplate against this world's Prometheus; `metric` is merged over
/// its one metric.
fn error_rate_template(w: &World, metric: Value) -> String {
    let mut m = prometheus_metric(
        "error-rate",
        &w.prom.address(),
        &error_ratio("{{args.hash}}", "5s"),
    );
    merge(
        &mut m,
        json!({"interval": "1s", "count": 3, "consecutiveErrorLimit": 1}),
    );
    merge(&mut m, metric);
    analysis_template(
        "error-rate",
        json!({"args": [{"name": "hash"}], "metrics": [m]}),
    )
    .to_string()
}

fn analysis(extra: Value) -> Value {
    let mut a = analysis_ref("error-rate");
    merge(
        &mut a,
        json!({"args": [{"name": "hash", "valueFrom": {"podTemplateHashValue": "Latest"}}]}),
    );
    merge(&mut a, extra);
    a
}

/// A canary Rollout `web` of 4 replicas (`app:1`) with `steps` and no Services.
fn canary_rollout(steps: Value) -> String {
    rollout(
        "web",
        "app:1",
        json!({"canary": {"steps": steps}}),
        json!({"replicas": 4}),
    )
    .to_string()
}

async fn release_v2(w: &World) -> R {
    wait_web(&w.stack, "first deploy", 30, |r| {
        phase(r) == Some(RolloutPhase::Healthy)
    })
    .await?;
    w.stack.set_image(NS, "web", "app", "app:2").await?;
    Ok(())
}

async fn runs(w: &World) -> anyhow::Result<Vec<AnalysisRun>> {
    Ok(Api::<AnalysisRun>::namespaced(w.stack.client.clone(), NS)
        .list(&ListParams::default())
        .await?
        .items)
}

/// Every distinct (phase, measurements taken) seen of the started AnalysisRuns.
type PhasesSeen = Arc<Mutex<Vec<(String, i32)>>>;

/// Records every distinct (phase, measurements taken) of the AnalysisRuns of the namespace
/// once they are started (`startedAt` set), reading them every 100 ms until stopped.
fn record_run_phases(w: &World) -> (PhasesSeen, tokio::task::JoinHandle<()>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let api = Api::<AnalysisRun>::namespaced(w.stack.client.clone(), NS);
    let out = seen.clone();
    let task = tokio::spawn(async move {
        loop {
            for run in api
                .list(&ListParams::default())
                .await
                .map(|l| l.items)
                .unwrap_or_default()
            {
                let Some(st) = run.status.filter(|s| s.started_at.is_some()) else {
                    continue;
                };
                let phase = st.phase.map_or_else(|| "-".to_string(), |p| p.to_string());
                let taken = st.metric_results.iter().map(|r| r.count + r.error).sum();
                if let Ok(mut seen) = out.lock()
                    && !seen.contains(&(phase.clone(), taken))
                {
                    seen.push((phase, taken));
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    (seen, task)
}

#[tokio::test]
async fn a_canary_whose_error_rate_stays_low_is_promoted() -> R {
    let w = world(0.01).await?;
    w.stack
        .apply_yaml(&error_rate_template(&w, json!({"initialDelay": "2s"})), NS)
        .await?;
    w.stack
        .apply_yaml(
            &canary_rollout(json!([{"setWeight": 50}, {"analysis": analysis(json!({}))}])),
            NS,
        )
        .await?;
    let (phases, recorder) = record_run_phases(&w);
    release_v2(&w).await?;
    let v2 = hash_of("app:2");
    wait_web(&w.stack, "v2 stable", 60, |r| {
        phase(r) == Some(RolloutPhase::Healthy) && stable_rs(r).as_deref() == Some(v2.as_str())
    })
    .await?;
    recorder.abort();
    // As in Argo Rollouts, a started run is Running until decided: while it waits for its
    // initialDelay (no measurement yet) and between its measurements; never Pending.
    let phases = phases.lock().map(|p| p.clone()).unwrap_or_default();
    let running = |taken: i32| phases.contains(&("Running".to_string(), taken));
    assert!(running(0) && running(1) && running(2), "{phases:?}");
    assert!(
        phases
            .iter()
            .all(|(p, _)| p == "Running" || p == "Successful"),
        "{phases:?}"
    );
    let runs = runs(&w).await?;
    assert_eq!(runs.len(), 1);
    let status = runs[0].status.clone().unwrap_or_default();
    assert_eq!(status.phase, Some(rollgate_api::AnalysisPhase::Successful));
    let m = &status.metric_results[0];
    assert_eq!((m.count, m.successful), (3, 3), "{m:?}");
    let value = m.measurements[0].value.clone().unwrap_or_default();
    assert!(
        value.starts_with("[0.01"),
        "a real ratio near 0.01: {value}"
    );
    let metrics = w.stack.telemetry.encode();
    assert!(
        metrics.contains(
            "rollgate_analysis_measurements_total{metric=\"error-rate\",phase=\"Successful\"} 3"
        ),
        "{metrics}"
    );
    // One run decided, after its three measurements (at least two intervals).
    assert!(
        metrics
            .contains("rollgate_analysis_time_to_decision_seconds_count{phase=\"Successful\"} 1"),
        "{metrics}"
    );
    Ok(())
}

#[tokio::test]
async fn a_canary_whose_error_rate_rises_at_step_2_is_rolled_back_with_the_value() -> R {
    let w = world(0.0).await?;
    w.stack
        .apply_yaml(&error_rate_template(&w, json!({})), NS)
        .await?;
    w.stack
        .apply_yaml(
            &canary_rollout(json!([{"setWeight": 25}, {"analysis": analysis(json!({}))},
                                   {"setWeight": 50}, {"pause": {}}])),
            NS,
        )
        .await?;
    release_v2(&w).await?;
    // The new version starts failing while its analysis runs.
    w.metrics.set_traffic("2", &hash_of("app:2"), 100.0, 0.4);
    let aborted = wait_web(&w.stack, "rolled back", 60, |r| {
        phase(r) == Some(RolloutPhase::Degraded)
    })
    .await?;
    let msg = message(&aborted);
    assert!(msg.contains("metric \"error-rate\" failed"), "{msg}");
    assert!(
        msg.contains("did not meet successCondition \"result[0] < 0.05\""),
        "{msg}"
    );
    assert!(msg.contains("value [0."), "{msg}");
    assert_eq!(stable_rs(&aborted), Some(hash_of("app:1")));
    let weights = aborted
        .status
        .and_then(|s| s.canary)
        .and_then(|c| c.weights);
    assert_eq!(weights.map(|w| w.set_weight), Some(0));
    Ok(())
}

/// A blue/green Rollout `web` of 2 replicas (`app:1`); `bg` is merged over the strategy.
fn bg_rollout(bg: Value) -> String {
    blue_green_rollout("web", "app:1", json!({"replicas": 2}), bg).to_string()
}

#[tokio::test]
async fn blue_green_with_a_failing_pre_promotion_analysis_never_switches() -> R {
    let w = world(0.5).await?;
    w.stack.apply_yaml(&blue_green_services("web"), NS).await?;
    w.stack
        .apply_yaml(&error_rate_template(&w, json!({})), NS)
        .await?;
    w.stack
        .apply_yaml(
            &bg_rollout(json!({"prePromotionAnalysis": analysis(json!({}))})),
            NS,
        )
        .await?;
    let monitor = Monitor::start(&w.stack, "web", 2);
    release_v2(&w).await?;
    let aborted = wait_web(&w.stack, "aborted", 60, |r| {
        phase(r) == Some(RolloutPhase::Degraded)
    })
    .await?;
    assert!(
        message(&aborted).contains("pre-promotion analysis"),
        "{}",
        message(&aborted)
    );
    assert_eq!(
        selected(&w.stack, "web-active").await?,
        Some(hash_of("app:1"))
    );
    let switches: Vec<_> = monitor.switches().into_iter().flatten().collect();
    assert_eq!(switches, vec![hash_of("app:1")], "active never left v1");
    Ok(())
}

#[tokio::test]
async fn blue_green_with_a_failing_post_promotion_analysis_switches_back() -> R {
    let w = world(0.5).await?;
    w.stack.apply_yaml(&blue_green_services("web"), NS).await?;
    w.stack
        .apply_yaml(&error_rate_template(&w, json!({})), NS)
        .await?;
    w.stack
        .apply_yaml(
            &bg_rollout(json!({"postPromotionAnalysis": analysis(json!({}))})),
            NS,
        )
        .await?;
    release_v2(&w).await?;
    let aborted = wait_web(&w.stack, "switched back", 60, |r| {
        phase(r) == Some(RolloutPhase::Degraded)
    })
    .await?;
    assert!(
        message(&aborted).contains("post-promotion analysis"),
        "{}",
        message(&aborted)
    );
    assert_eq!(
        selected(&w.stack, "web-active").await?,
        Some(hash_of("app:1"))
    );
    // The switches, from the Events: to v1 (first deploy), to v2, back to v1.
    let events = Api::<k8s_openapi::api::events::v1::Event>::namespaced(w.stack.client.clone(), NS)
        .list(&ListParams::default())
        .await?;
    let mut switches: Vec<(Option<k8s_openapi::jiff::Timestamp>, String)> = events
        .items
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some("SwitchService"))
        .filter(|e| {
            e.note
                .as_deref()
                .is_some_and(|n| n.starts_with("Switched active Service"))
        })
        .map(|e| (e.event_time.map(|t| t.0), e.note.unwrap_or_default()))
        .collect();
    switches.sort();
    let to: Vec<String> = switches
        .iter()
        .filter_map(|(_, n)| n.rsplit(" to ").next().map(str::to_string))
        .collect();
    assert_eq!(
        to,
        [hash_of("app:1"), hash_of("app:2"), hash_of("app:1")],
        "{switches:?}"
    );
    Ok(())
}

/// `spec.guard.analysis` against the real Prometheus: v2 is promoted while it serves no
/// errors, and its guard analysis (no count: it measures until the window ends) sees the error
/// rate rise after full promotion and sends traffic back to v1, which the window kept.
#[tokio::test]
async fn a_guard_analysis_that_fails_after_full_promotion_switches_back() -> R {
    let w = world(0.0).await?;
    w.stack.apply_yaml(&blue_green_services("web"), NS).await?;
    w.stack
        .apply_yaml(
            &error_rate_template(&w, json!({"count": null, "consecutiveErrorLimit": 1})),
            NS,
        )
        .await?;
    let rollout = blue_green_rollout(
        "web",
        "app:1",
        json!({"replicas": 2, "guard": {"duration": "10m", "analysis": analysis(json!({}))}}),
        json!({"scaleDownDelaySeconds": 1}),
    );
    w.stack.apply_yaml(&rollout.to_string(), NS).await?;
    release_v2(&w).await?;
    let v1 = hash_of("app:1");
    let v2 = hash_of("app:2");
    let guarded = wait_web(
        &w.stack,
        "v2 stable and guarded by a running analysis",
        60,
        |r| {
            stable_rs(r).as_deref() == Some(v2.as_str())
                && r.status
                    .as_ref()
                    .and_then(|s| s.guard.as_ref())
                    .is_some_and(|g| g.analysis_run.is_some())
        },
    )
    .await?;
    assert_eq!(phase(&guarded), Some(RolloutPhase::Healthy));
    assert_eq!(selected(&w.stack, "web-active").await?, Some(v2.clone()));
    // After full promotion, v2 starts failing.
    w.metrics.set_traffic("2", &v2, 100.0, 0.4);
    let back = wait_web(&w.stack, "back on v1", 60, |r| {
        stable_rs(r).as_deref() == Some(v1.as_str())
    })
    .await?;
    let s = back.status.clone().unwrap_or_default();
    assert_eq!(
        s.abort_reason,
        Some(rollgate_api::AbortReason::GuardAnalysisFailed)
    );
    assert!(
        message(&back).contains("GuardAnalysisFailed"),
        "{}",
        message(&back)
    );
    assert_eq!(selected(&w.stack, "web-active").await?, Some(v1));
    let runs = runs(&w).await?;
    let guard_run = runs
        .iter()
        .find(|r| {
            r.metadata
                .name
                .as_deref()
                .is_some_and(|n| n.contains("-guard-"))
        })
        .expect("a guard run");
    assert_eq!(
        guard_run.status.as_ref().and_then(|s| s.phase),
        Some(rollgate_api::AnalysisPhase::Failed)
    );
    Ok(())
}

#[tokio::test]
async fn prometheus_down_mid_analysis_pauses_and_retry_continues_once_it_is_back() -> R {
    let mut w = world(0.0).await?;
    w.stack
        .apply_yaml(&error_rate_template(&w, json!({"count": 4})), NS)
        .await?;
    w.stack
        .apply_yaml(
            &canary_rollout(json!([{"setWeight": 25}, {"analysis": analysis(json!({}))}])),
            NS,
        )
        .await?;
    release_v2(&w).await?;
    // Once the analysis has measured, Prometheus goes away.
    for _ in 0..100 {
        let measured = runs(&w).await?.iter().any(|r| {
            r.status
                .as_ref()
                .is_some_and(|s| s.metric_results.iter().any(|m| m.count >= 1))
        });
        if measured {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    w.prom.stop();
    let paused = wait_web(&w.stack, "paused", 30, |r| {
        phase(r) == Some(RolloutPhase::Paused)
    })
    .await?;
    assert!(
        message(&paused).contains("could not measure"),
        "{}",
        message(&paused)
    );
    // It stays paused, the stable version untouched, for as long as nobody acts.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let still = w.stack.rollout(NS, "web").await?;
    assert_eq!(phase(&still), Some(RolloutPhase::Paused));
    assert_eq!(stable_rs(&still), Some(hash_of("app:1")));

    w.prom.restart().await?;
    w.prom
        .wait_for_data(
            &error_ratio(&hash_of("app:2"), "5s"),
            Duration::from_secs(60),
        )
        .await?;
    let said = rollgate_ctl::run(
        &w.stack.client,
        NS,
        "web",
        &rollgate_ctl::Command::Retry,
        w.stack.sim.now(),
    )
    .await?;
    assert!(said.contains("runs again"), "{said}");
    let v2 = hash_of("app:2");
    wait_web(&w.stack, "v2 stable after retry", 60, |r| {
        phase(r) == Some(RolloutPhase::Healthy) && stable_rs(r).as_deref() == Some(v2.as_str())
    })
    .await?;
    assert_eq!(runs(&w).await?.len(), 2, "retry started a second run");
    Ok(())
}

#[tokio::test]
async fn with_error_policy_abort_an_outage_aborts() -> R {
    let mut w = world(0.0).await?;
    w.stack
        .apply_yaml(&error_rate_template(&w, json!({})), NS)
        .await?;
    w.stack
        .apply_yaml(
            &canary_rollout(json!([{"setWeight": 25},
                                   {"analysis": analysis(json!({"errorPolicy": "Abort"}))}])),
            NS,
        )
        .await?;
    wait_web(&w.stack, "first deploy", 30, |r| {
        phase(r) == Some(RolloutPhase::Healthy)
    })
    .await?;
    w.prom.stop();
    w.stack.set_image(NS, "web", "app", "app:2").await?;
    let aborted = wait_web(&w.stack, "aborted", 60, |r| {
        phase(r) == Some(RolloutPhase::Degraded)
    })
    .await?;
    assert!(
        message(&aborted).contains("errorPolicy: Abort"),
        "{}",
        message(&aborted)
    );
    assert_eq!(stable_rs(&aborted), Some(hash_of("app:1")));
    Ok(())
}

#[tokio::test]
async fn an_unknown_metric_is_inconclusive_and_a_promql_syntax_error_an_invalid_spec() -> R {
    let w = world(0.0).await?;
    let template = |query: &str| {
        analysis_template(
            "error-rate",
            json!({"metrics": [{"name": "bad-query", "successCondition": "result[0] < 1.0",
                "consecutiveErrorLimit": 0,
                "provider": {"prometheus": {"address": w.prom.address(), "query": query}}}]}),
        )
        .to_string()
    };
    w.stack
        .apply_yaml(&template("no_such_metric_total"), NS)
        .await?;
    w.stack
        .apply_yaml(
            &canary_rollout(json!([{"setWeight": 25},
                {"analysis": analysis_ref("error-rate")}])),
            NS,
        )
        .await?;
    release_v2(&w).await?;
    // An unknown metric answers with no data: inconclusive by default, a pause for a human.
    let paused = wait_web(&w.stack, "inconclusive", 30, |r| {
        phase(r) == Some(RolloutPhase::Paused) && message(r).contains("inconclusive")
    })
    .await?;
    assert!(message(&paused).contains("no data"), "{}", message(&paused));

    // A query that is not PromQL is refused before anything moves: no ReplicaSet for app:3.
    w.stack.apply_yaml(&template("sum(rate(("), NS).await?;
    w.stack.set_image(NS, "web", "app", "app:3").await?;
    let invalid = wait_web(&w.stack, "invalid", 30, |r| {
        phase(r) == Some(RolloutPhase::Degraded)
    })
    .await?;
    let msg = message(&invalid);
    assert!(
        msg.contains(
            "AnalysisTemplate \"error-rate\": metrics[0].provider.prometheus.query: invalid PromQL"
        ),
        "{msg}"
    );
    let v3 = hash_of("app:3");
    assert!(
        replica_sets(&w.stack, "web")
            .await?
            .iter()
            .all(|(hash, _, _)| *hash != v3),
        "nothing of app:3 deployed"
    );
    Ok(())
}

#[tokio::test]
async fn an_invalid_cel_condition_is_an_invalid_spec_before_any_traffic_moves() -> R {
    let w = world(0.0).await?;
    w.stack
        .apply_yaml(
            &error_rate_template(&w, json!({"successCondition": "result[0] <"})),
            NS,
        )
        .await?;
    w.stack
        .apply_yaml(
            &canary_rollout(json!([{"setWeight": 25}, {"analysis": analysis(json!({}))}])),
            NS,
        )
        .await?;
    let r = wait_web(&w.stack, "invalid", 30, |r| {
        phase(r) == Some(RolloutPhase::Degraded)
    })
    .await?;
    let msg = message(&r);
    assert!(
        msg.contains("AnalysisTemplate \"error-rate\": metrics[0].successCondition: invalid CEL expression \"result[0] <\""),
        "{msg}"
    );
    assert!(
        replica_sets(&w.stack, "web").await?.is_empty(),
        "nothing deployed"
    );
    Ok(())
}

#[tokio::test]
async fn credentials_and_arguments_come_from_secrets() -> R {
    let w = world_with(0.01, Some(("rollgate", "s3cret"))).await?;
    let secrets = json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "prometheus-auth"},
        "stringData": {"username": "rollgate", "password": "s3cret"}})
    .to_string()
        + "\n---\n"
        + &json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "thresholds"},
                  "stringData": {"window": "5s"}})
        .to_string();
    w.stack.apply_yaml(&secrets, NS).await?;
    let template = analysis_template(
        "error-rate",
        json!({"args": [{"name": "hash"}, {"name": "window"}],
            "metrics": [{"name": "error-rate", "interval": "1s", "count": 2,
                "successCondition": "result[0] < 0.05", "consecutiveErrorLimit": 0,
                "provider": {"prometheus": {"address": w.prom.address(),
                    "authentication": {"secretName": "prometheus-auth"},
                    "query": error_ratio("{{args.hash}}", "{{args.window}}")}}}]}),
    );
    w.stack.apply_yaml(&template.to_string(), NS).await?;
    let a = analysis(json!({"args": [
        {"name": "hash", "valueFrom": {"podTemplateHashValue": "Latest"}},
        {"name": "window", "valueFrom": {"secretKeyRef": {"name": "thresholds", "key": "window"}}}]}));
    w.stack
        .apply_yaml(
            &canary_rollout(json!([{"setWeight": 50}, {"analysis": a}])),
            NS,
        )
        .await?;
    release_v2(&w).await?;
    let v2 = hash_of("app:2");
    wait_web(&w.stack, "v2 stable", 60, |r| {
        phase(r) == Some(RolloutPhase::Healthy) && stable_rs(r).as_deref() == Some(v2.as_str())
    })
    .await?;
    // The Secret's value was used to measure but never written into the run.
    let run = runs(&w).await?.remove(0);
    let window = run.spec.args.iter().find(|a| a.name == "window").cloned();
    assert_eq!(
        window.and_then(|a| a.value),
        None,
        "no secret in the run's spec"
    );
    Ok(())
}
