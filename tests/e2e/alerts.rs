//! Rolling back on firing alerts against a real Alertmanager (pulled with its API v2), end to
//! end and in real time: pods are ready 0.2 s after they start and alerts are pulled every
//! second.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use rollgate_api::{AbortReason, Rollout, RolloutPhase};
use rollgate_e2e::*;
use rollgate_promtest::{AlertmanagerConfig, TestAlertmanager};
use rollgate_sim::SimConfig;
use rollgate_test_support::{blue_green_rollout, blue_green_services, canary_rollout, image_hash};
use serde_json::{Value, json};

type R = anyhow::Result<()>;

struct World {
    stack: Stack,
    am: TestAlertmanager,
}

async fn world() -> anyhow::Result<World> {
    rollgate_promtest::install_crypto_provider();
    let am = TestAlertmanager::start(AlertmanagerConfig::default()).await?;
    let mut stack = Stack::new(SimConfig {
        default_ready_delay: Duration::from_millis(200),
        ..Default::default()
    })
    .await?;
    stack.start_controller("controller-1");
    Ok(World { stack, am })
}

fn alerts_spec(w: &World) -> Value {
    json!({"alertmanager": {"address": w.am.address()},
           "matchers": ["app=\"web\"", "severity=~\"critical|page\""],
           "interval": "1s"})
}

/// A paused canary of `app:2` over `app:1` (no router: replica ratio), with `spec.alerts`.
async fn paused_canary(w: &World) -> R {
    let rollout = canary_rollout(
        "web",
        "app:1",
        json!({"replicas": 2, "alerts": alerts_spec(w)}),
        json!({"canaryService": null, "stableService": null,
               "steps": [{"setWeight": 50}, {"pause": {}}]}),
    );
    w.stack.apply_yaml(&rollout.to_string(), NS).await?;
    wait_web(&w.stack, "first deploy", 30, |r| {
        phase(r) == Some(RolloutPhase::Healthy)
    })
    .await?;
    w.stack.set_image(NS, "web", "app", "app:2").await?;
    wait_web(&w.stack, "paused at 50%", 30, |r| {
        phase(r) == Some(RolloutPhase::Paused)
    })
    .await?;
    Ok(())
}

async fn fire(w: &World, name: &str, hash: &str) -> R {
    w.am.post_alert(
        &[
            ("alertname", name),
            ("app", "web"),
            ("severity", "critical"),
            ("pod_template_hash", hash),
        ],
        Timestamp::now(),
        None,
    )
    .await?;
    Ok(())
}

fn abort_reason(r: &Rollout) -> Option<AbortReason> {
    r.status.as_ref().and_then(|s| s.abort_reason)
}

#[tokio::test]
async fn an_alert_on_the_canary_revision_aborts_the_release() -> R {
    let w = world().await?;
    paused_canary(&w).await?;
    fire(&w, "HighErrorRate", &image_hash("web", "app:2")).await?;
    let r = wait_web(&w.stack, "aborted by the alert", 30, |r| {
        abort_reason(r) == Some(AbortReason::AlertFiring)
    })
    .await?;
    let s = r.status.clone().unwrap_or_default();
    assert_eq!(
        s.alert.as_ref().map(|a| a.name.as_str()),
        Some("HighErrorRate")
    );
    assert!(
        s.message.as_deref().unwrap_or("").contains("HighErrorRate"),
        "{:?}",
        s.message
    );
    // Without a router the aborted canary's pods are traffic: they go.
    let v2 = image_hash("web", "app:2");
    let mut sets = Vec::new();
    for _ in 0..100 {
        sets = replica_sets(&w.stack, "web").await?;
        if sets.iter().any(|(h, n, _)| *h == v2 && *n == 0) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("the aborted canary kept its pods: {sets:?}")
}

#[tokio::test]
async fn an_alert_on_the_stable_revision_or_a_silenced_one_is_not_acted_on() -> R {
    let w = world().await?;
    paused_canary(&w).await?;
    fire(&w, "HighErrorRate", &image_hash("web", "app:1")).await?;
    // Silenced before it is ever pulled: an operator stops the automatic rollback.
    let v2 = image_hash("web", "app:2");
    w.am.silence(
        &[("alertname", "Flaky"), ("pod_template_hash", &v2)],
        Duration::from_secs(600),
    )
    .await?;
    fire(&w, "Flaky", &v2).await?;
    // Several pulls later the release still waits at its pause.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let r = wait_web(&w.stack, "still paused", 5, |_| true).await?;
    assert_eq!(phase(&r), Some(RolloutPhase::Paused), "{:?}", r.status);
    assert_eq!(abort_reason(&r), None);
    let c = r
        .status
        .as_ref()
        .and_then(|s| {
            s.conditions
                .iter()
                .find(|c| c.type_ == "AlertSource")
                .cloned()
        })
        .expect("AlertSource condition");
    assert_eq!(c.status, "True");
    Ok(())
}

#[tokio::test]
async fn a_stopped_alertmanager_rolls_nothing_back_and_the_condition_says_so() -> R {
    let mut w = world().await?;
    paused_canary(&w).await?;
    w.am.stop();
    let r = wait_web(&w.stack, "AlertSource False", 30, |r| {
        r.status.as_ref().is_some_and(|s| {
            s.conditions
                .iter()
                .any(|c| c.type_ == "AlertSource" && c.status == "False")
        })
    })
    .await?;
    assert_eq!(phase(&r), Some(RolloutPhase::Paused));
    assert_eq!(abort_reason(&r), None);
    Ok(())
}

#[tokio::test]
async fn a_blue_green_release_alerting_inside_its_guard_window_goes_back() -> R {
    let w = world().await?;
    w.stack.apply_yaml(&blue_green_services("web"), NS).await?;
    let rollout = blue_green_rollout(
        "web",
        "app:1",
        json!({"alerts": alerts_spec(&w), "guard": {"duration": "10m"}}),
        json!({"autoPromotionEnabled": true, "scaleDownDelaySeconds": 1}),
    );
    w.stack.apply_yaml(&rollout.to_string(), NS).await?;
    wait_web(&w.stack, "first deploy", 30, |r| {
        phase(r) == Some(RolloutPhase::Healthy)
    })
    .await?;
    let v1 = image_hash("web", "app:1");
    let v2 = image_hash("web", "app:2");
    w.stack.set_image(NS, "web", "app", "app:2").await?;
    let r = wait_web(&w.stack, "v2 promoted and guarded", 30, |r| {
        r.status
            .as_ref()
            .is_some_and(|s| s.stable_rs.as_deref() == Some(v2.as_str()) && s.guard.is_some())
    })
    .await?;
    assert_eq!(phase(&r), Some(RolloutPhase::Healthy));
    // Past scaleDownDelaySeconds, the previous revision still has its pods.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(selected(&w.stack, "web-active").await?, Some(v2.clone()));
    let sets = replica_sets(&w.stack, "web").await?;
    assert!(sets.iter().any(|(h, n, _)| *h == v1 && *n == 3), "{sets:?}");
    fire(&w, "HighErrorRate", &v2).await?;
    wait_web(&w.stack, "back on v1", 30, |r| {
        r.status
            .as_ref()
            .is_some_and(|s| s.stable_rs.as_deref() == Some(v1.as_str()))
            && abort_reason(r) == Some(AbortReason::AlertFiring)
    })
    .await?;
    assert_eq!(selected(&w.stack, "web-active").await?, Some(v1));
    Ok(())
}

/// The push path: Alertmanager delivers the alert to the controller's webhook receiver, which
/// wakes the paused rollout at once (its pull interval is ten minutes, so only the push can
/// make it act within the test); a delivery without the token is refused and changes nothing.
#[tokio::test]
async fn a_webhook_delivery_wakes_the_rollout_at_once() -> R {
    rollgate_promtest::install_crypto_provider();
    let token = "s3cret-token";
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let receiver_addr = listener.local_addr()?;
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    let app = rollgate_controller::alert_receiver::router(
        rollgate_controller::alert_receiver::ReceiverConfig::with_token(token)?,
        tx,
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let am = TestAlertmanager::start(AlertmanagerConfig {
        webhook: Some(rollgate_promtest::Webhook {
            url: format!("http://{receiver_addr}/"),
            bearer_token: Some(token.into()),
        }),
        ..Default::default()
    })
    .await?;
    let mut stack = Stack::new(SimConfig {
        default_ready_delay: Duration::from_millis(200),
        ..Default::default()
    })
    .await?;
    stack.start_controller_with_sources(
        "controller-1",
        None,
        None,
        Some(std::sync::Arc::new(tokio::sync::Mutex::new(rx))),
    );
    let w = World { stack, am };
    let mut spec = alerts_spec(&w);
    spec["interval"] = json!("10m");
    let rollout = canary_rollout(
        "web",
        "app:1",
        json!({"replicas": 2, "alerts": spec}),
        json!({"canaryService": null, "stableService": null,
               "steps": [{"setWeight": 50}, {"pause": {}}]}),
    );
    w.stack.apply_yaml(&rollout.to_string(), NS).await?;
    wait_web(&w.stack, "first deploy", 30, |r| {
        phase(r) == Some(RolloutPhase::Healthy)
    })
    .await?;
    w.stack.set_image(NS, "web", "app", "app:2").await?;
    wait_web(&w.stack, "paused at 50%", 30, |r| {
        phase(r) == Some(RolloutPhase::Paused)
    })
    .await?;

    // Without the token: 401, nothing happens.
    let forged = json!({"version": "4", "status": "firing", "alerts": [{
        "status": "firing", "labels": {"alertname": "Forged", "app": "web"},
        "startsAt": Timestamp::now().to_string(), "endsAt": "0001-01-01T00:00:00Z",
        "fingerprint": "0123456789abcdef"}]});
    let refused = reqwest::Client::new()
        .post(format!("http://{receiver_addr}/"))
        .header("content-type", "application/json")
        .body(forged.to_string())
        .send()
        .await?;
    assert_eq!(refused.status().as_u16(), 401);

    fire(&w, "HighErrorRate", &image_hash("web", "app:2")).await?;
    let r = wait_web(&w.stack, "aborted by the pushed alert", 30, |r| {
        abort_reason(r) == Some(AbortReason::AlertFiring)
    })
    .await?;
    assert_eq!(
        r.status.and_then(|s| s.alert).map(|a| a.name),
        Some("HighErrorRate".to_string())
    );
    Ok(())
}

/// Blue/green waiting for promotion: an alert on the preview aborts the release and the
/// active Service never selects it.
#[tokio::test]
async fn a_blue_green_preview_alerting_before_the_switch_never_gets_active_traffic() -> R {
    let w = world().await?;
    w.stack.apply_yaml(&blue_green_services("web"), NS).await?;
    let rollout = blue_green_rollout(
        "web",
        "app:1",
        json!({"alerts": alerts_spec(&w)}),
        json!({"autoPromotionEnabled": false}),
    );
    w.stack.apply_yaml(&rollout.to_string(), NS).await?;
    wait_web(&w.stack, "first deploy", 30, |r| {
        phase(r) == Some(RolloutPhase::Healthy)
    })
    .await?;
    let v1 = image_hash("web", "app:1");
    let v2 = image_hash("web", "app:2");
    w.stack.set_image(NS, "web", "app", "app:2").await?;
    wait_web(&w.stack, "waiting for promotion", 30, |r| {
        phase(r) == Some(RolloutPhase::Paused)
    })
    .await?;
    assert_eq!(selected(&w.stack, "web-preview").await?, Some(v2.clone()));
    fire(&w, "HighErrorRate", &v2).await?;
    wait_web(&w.stack, "aborted by the alert", 30, |r| {
        abort_reason(r) == Some(AbortReason::AlertFiring)
    })
    .await?;
    assert_eq!(selected(&w.stack, "web-active").await?, Some(v1));
    Ok(())
}

/// Blue/green after the switch, while its post-promotion analysis runs (its measurements are
/// far apart: it is still running when the alert fires): switched back.
#[tokio::test]
async fn a_blue_green_release_alerting_after_the_switch_is_switched_back() -> R {
    let w = world().await?;
    w.stack.apply_yaml(&blue_green_services("web"), NS).await?;
    let mut metric =
        rollgate_test_support::prometheus_metric("slow", "http://127.0.0.1:9", "vector(0)");
    rollgate_test_support::merge(
        &mut metric,
        json!({"interval": "10m", "count": 2, "initialDelay": "10m"}),
    );
    let template = rollgate_test_support::analysis_template("slow", json!({"metrics": [metric]}));
    w.stack.apply_yaml(&template.to_string(), NS).await?;
    let rollout = blue_green_rollout(
        "web",
        "app:1",
        json!({"alerts": alerts_spec(&w)}),
        json!({"autoPromotionEnabled": true,
               "postPromotionAnalysis": rollgate_test_support::analysis_ref("slow")}),
    );
    w.stack.apply_yaml(&rollout.to_string(), NS).await?;
    wait_web(&w.stack, "first deploy", 30, |r| {
        phase(r) == Some(RolloutPhase::Healthy)
    })
    .await?;
    let v1 = image_hash("web", "app:1");
    let v2 = image_hash("web", "app:2");
    w.stack.set_image(NS, "web", "app", "app:2").await?;
    let mut switched = false;
    for _ in 0..150 {
        if selected(&w.stack, "web-active").await? == Some(v2.clone()) {
            switched = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(switched, "the active Service never selected v2");
    let r = wait_web(&w.stack, "post-promotion analysis running", 5, |_| true).await?;
    assert_eq!(
        r.status.as_ref().and_then(|s| s.stable_rs.clone()),
        Some(v1.clone()),
        "v2 is not stable before its post-promotion analysis ends"
    );
    fire(&w, "HighErrorRate", &v2).await?;
    wait_web(&w.stack, "switched back", 30, |r| {
        abort_reason(r) == Some(AbortReason::AlertFiring)
    })
    .await?;
    assert_eq!(selected(&w.stack, "web-active").await?, Some(v1));
    Ok(())
}
