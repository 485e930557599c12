//! Time from an alert reaching Alertmanager to the rollback being written: the canary's
//! ReplicaSet scaled to 0 (without a router the canary's pods are its traffic), as the API
//! server publishes it.
//!
//! A real Alertmanager (`prometheus-alertmanager`, started on 127.0.0.1 with `group_wait: 0s`)
//! and the real controller on the simulated cluster, in real time. Push path: Alertmanager
//! delivers to the controller's webhook receiver, which wakes the rollout (its pull interval is
//! ten minutes, so nothing else can); the reconcile confirms with one pull. Pull path: no
//! receiver, the default interval (15 s).

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::jiff::Timestamp;
use rollgate_api::RolloutPhase;
use rollgate_benches::ScaledToZero;
use rollgate_controller::alert_receiver::{ReceiverConfig, router};
use rollgate_local::Stack;
use rollgate_promtest::{AlertmanagerConfig, TestAlertmanager, Webhook};
use rollgate_sim::SimConfig;
use serde_json::json;

const PUSH_RELEASES: usize = 10;
const PULL_RELEASES: usize = 3;
const TOKEN: &str = "bench-token";

fn rollout(am: &str, interval: Option<&str>) -> String {
    let mut alerts = json!({"alertmanager": {"address": am}, "matchers": ["app=\"web\""]});
    if let Some(i) = interval {
        alerts["interval"] = json!(i);
    }
    json!({"apiVersion": "rollgate.dev/v1alpha1", "kind": "Rollout",
        "metadata": {"name": "web"},
        "spec": {"replicas": 4, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                         "spec": {"containers": [{"name": "app", "image": "app:0"}]}},
            "alerts": alerts,
            "strategy": {"canary": {"steps": [{"setWeight": 25}, {"pause": {}}]}}}})
    .to_string()
}

/// Releases `n` revisions; for each, fires an alert on it once it is paused and measures
/// until its ReplicaSet is scaled to 0.
async fn measure(stack: &Stack, am: &TestAlertmanager, n: usize) -> anyhow::Result<Vec<Duration>> {
    let scaled_to_zero = ScaledToZero::watch(stack.client.clone(), "default");
    let mut latencies = Vec::new();
    for i in 1..=n {
        // The controller writes the Rollout's status meanwhile: retry a conflicting update.
        let mut attempt = 0;
        while let Err(e) = stack
            .set_image("default", "web", "app", &format!("app:{i}"))
            .await
        {
            attempt += 1;
            if attempt == 10 {
                return Err(e.into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let r = stack
            .wait_for("default", "web", Duration::from_secs(60), "paused", |r| {
                r.metadata.generation == r.status.as_ref().and_then(|s| s.observed_generation)
                    && r.status.as_ref().and_then(|s| s.phase) == Some(RolloutPhase::Paused)
            })
            .await?;
        let hash = r
            .status
            .and_then(|s| s.current_pod_hash)
            .unwrap_or_default();
        let fired = Instant::now();
        am.post_alert(
            &[
                ("alertname", "HighErrorRate"),
                ("app", "web"),
                ("pod_template_hash", &hash),
            ],
            Timestamp::now(),
            None,
        )
        .await?;
        let canary = format!("web-{hash}");
        let written = scaled_to_zero
            .wait_for(&canary, Duration::from_secs(30))
            .await;
        match written {
            Some(t) => latencies.push(t.saturating_duration_since(fired)),
            None => anyhow::bail!("release {i}: no rollback within 30 s"),
        }
    }
    latencies.sort();
    Ok(latencies)
}

fn report(what: &str, latencies: &[Duration]) {
    let pct = |q: f64| {
        let i = ((latencies.len() as f64 - 1.0) * q).round() as usize;
        latencies.get(i).copied().unwrap_or_default()
    };
    println!("{what}, {} releases:", latencies.len());
    println!(
        "  min {:.0} ms, median {:.0} ms, max {:.0} ms",
        pct(0.0).as_secs_f64() * 1e3,
        pct(0.5).as_secs_f64() * 1e3,
        pct(1.0).as_secs_f64() * 1e3
    );
}

async fn stack() -> anyhow::Result<Stack> {
    Ok(Stack::new(SimConfig {
        default_ready_delay: Duration::from_millis(10),
        ..Default::default()
    })
    .await?)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    rollgate_promtest::install_crypto_provider();

    // Push: Alertmanager -> webhook receiver -> wake-up -> one pull -> abort.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (tx, rx) = tokio::sync::mpsc::channel(1024);
    let app = router(ReceiverConfig::with_token(TOKEN)?, tx);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let am = TestAlertmanager::start(AlertmanagerConfig {
        webhook: Some(Webhook {
            url: format!("http://{addr}/"),
            bearer_token: Some(TOKEN.into()),
        }),
        // `...`: every alert is its own group, sent after `group_wait` (0s), instead of
        // waiting for the next flush of a group already open (`group_interval`).
        group_by: vec!["...".into()],
        ..Default::default()
    })
    .await?;
    let mut push = stack().await?;
    push.start_controller_with_sources(
        "bench-push",
        None,
        None,
        Some(Arc::new(tokio::sync::Mutex::new(rx))),
    );
    push.apply_yaml(&rollout(&am.address(), Some("10m")), "default")
        .await?;
    push.wait_for(
        "default",
        "web",
        Duration::from_secs(30),
        "first deploy",
        |r| r.status.as_ref().and_then(|s| s.phase) == Some(RolloutPhase::Healthy),
    )
    .await?;
    let pushed = measure(&push, &am, PUSH_RELEASES).await?;
    push.stop_controllers().await;
    drop(am);

    // Pull at the default interval: no receiver.
    let am = TestAlertmanager::start(AlertmanagerConfig::default()).await?;
    let mut pull = stack().await?;
    pull.start_controller("bench-pull");
    pull.apply_yaml(&rollout(&am.address(), None), "default")
        .await?;
    pull.wait_for(
        "default",
        "web",
        Duration::from_secs(30),
        "first deploy",
        |r| r.status.as_ref().and_then(|s| s.phase) == Some(RolloutPhase::Healthy),
    )
    .await?;
    let pulled = measure(&pull, &am, PULL_RELEASES).await?;
    pull.stop_controllers().await;

    println!("alert posted to Alertmanager -> rollback written (canary ReplicaSet scaled to 0):");
    report("  push (webhook receiver)", &pushed);
    report("  pull (default interval 15s)", &pulled);
    Ok(())
}
