//! Time from a failing measurement being observed to the rollback patch being sent.
//!
//! The real controller (rollout and AnalysisRun controllers) runs on the simulated cluster in
//! real time. Its metric source answers every query with a failing value and notes the instant
//! it did; a watch on the canary's ReplicaSet notes the instant its scale-down to 0 (the
//! rollback: without a router the canary's pods are its traffic) reaches the API server. The
//! path in between: AnalysisRun status write, the rollout controller's wake-up on that change,
//! fresh reads, the engine's decision, the patches.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rollgate_api::RolloutPhase;
use rollgate_benches::ScaledToZero;
use rollgate_controller::metrics_source::{BoxFuture, MetricSource, QueryFor};
use rollgate_local::Stack;
use rollgate_prometheus::{QueryResult, Request};
use rollgate_sim::SimConfig;
use serde_json::json;

const RELEASES: usize = 30;

/// Answers 0.5 to everything and remembers when it last did.
#[derive(Default)]
struct Failing {
    answered: Mutex<Option<Instant>>,
}

impl MetricSource for Failing {
    fn query<'a>(
        &'a self,
        _: QueryFor<'a>,
        _: &'a Request,
    ) -> BoxFuture<'a, Result<QueryResult, String>> {
        if let Ok(mut a) = self.answered.lock() {
            *a = Some(Instant::now());
        }
        Box::pin(async { Ok(QueryResult::Vector(vec![(Default::default(), 0.5)])) })
    }
}

fn manifests() -> String {
    let template = json!({"apiVersion": "rollgate.dev/v1alpha1", "kind": "AnalysisTemplate",
        "metadata": {"name": "errors"},
        "spec": {"metrics": [{"name": "errors", "successCondition": "result[0] < 0.05",
            "provider": {"prometheus": {"address": "http://127.0.0.1:9", "query": "x"}}}]}});
    let rollout = json!({"apiVersion": "rollgate.dev/v1alpha1", "kind": "Rollout",
        "metadata": {"name": "web"},
        "spec": {"replicas": 4, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                         "spec": {"containers": [{"name": "app", "image": "app:0"}]}},
            "strategy": {"canary": {"steps": [{"setWeight": 25},
                {"analysis": {"templates": [{"templateName": "errors"}]}}]}}}});
    format!("{template}\n---\n{rollout}\n")
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let source = Arc::new(Failing::default());
    let mut stack = Stack::new(SimConfig {
        default_ready_delay: Duration::from_millis(10),
        ..Default::default()
    })
    .await?;
    stack.start_controller_with("bench", Some(source.clone()));
    stack.apply_yaml(&manifests(), "default").await?;
    stack
        .wait_for(
            "default",
            "web",
            Duration::from_secs(30),
            "first deploy",
            |r| r.status.as_ref().and_then(|s| s.phase) == Some(RolloutPhase::Healthy),
        )
        .await?;

    // Every scale of a ReplicaSet to 0, as the API server publishes it.
    let scaled_to_zero = ScaledToZero::watch(stack.client.clone(), "default");

    let mut latencies = Vec::new();
    for i in 1..=RELEASES {
        stack
            .set_image("default", "web", "app", &format!("app:{i}"))
            .await?;
        let r = stack
            .wait_for("default", "web", Duration::from_secs(30), "rollback", |r| {
                r.metadata.generation == r.status.as_ref().and_then(|s| s.observed_generation)
                    && r.status.as_ref().and_then(|s| s.phase) == Some(RolloutPhase::Degraded)
            })
            .await?;
        let hash = r
            .status
            .and_then(|s| s.current_pod_hash)
            .unwrap_or_default();
        let canary = format!("web-{hash}");
        let patched = scaled_to_zero
            .wait_for(&canary, Duration::from_secs(1))
            .await;
        let observed = source.answered.lock().ok().and_then(|a| *a);
        if let (Some(p), Some(o)) = (patched, observed) {
            latencies.push(p.saturating_duration_since(o));
        }
    }
    latencies.sort();
    let pct = |q: f64| {
        let i = ((latencies.len() as f64 - 1.0) * q).round() as usize;
        latencies.get(i).copied().unwrap_or_default()
    };
    println!(
        "failing measurement observed -> rollback patch (canary ReplicaSet scaled to 0) sent, \
         {} releases, real time on the simulated cluster:",
        latencies.len()
    );
    println!(
        "  min {:.1} ms, median {:.1} ms, p95 {:.1} ms, max {:.1} ms",
        pct(0.0).as_secs_f64() * 1e3,
        pct(0.5).as_secs_f64() * 1e3,
        pct(0.95).as_secs_f64() * 1e3,
        pct(1.0).as_secs_f64() * 1e3
    );
    stack.stop_controllers().await;
    Ok(())
}
