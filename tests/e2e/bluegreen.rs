//! Blue/green end to end: the real controller on the simulated cluster, in virtual time.

use std::time::Duration;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::events::v1::Event;
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams};
use rollgate_api::{AnalysisRun, RolloutPhase};
use rollgate_controller::run::{Context, reconcile_rollout};
use rollgate_e2e::*;
use rollgate_sim::ImageBehavior;
use rollgate_test_support::{blue_green_rollout, blue_green_services};
use serde_json::json;

type R = anyhow::Result<()>;

async fn deploy(stack: &Stack, name: &str, bg: serde_json::Value) -> anyhow::Result<String> {
    stack.apply_yaml(&blue_green_services(name), NS).await?;
    stack
        .apply_yaml(
            &blue_green_rollout(name, "app:1", json!({}), bg).to_string(),
            NS,
        )
        .await?;
    let r = wait_phase(stack, name, RolloutPhase::Healthy, 120).await?;
    Ok(r.status.and_then(|s| s.stable_rs).unwrap_or_default())
}

async fn new_image(stack: &Stack, name: &str, image: &str) -> R {
    stack.set_image(NS, name, "app", image).await?;
    Ok(())
}

async fn promote(stack: &Stack, name: &str) -> R {
    Ok(stack
        .patch_rollout_status(NS, name, json!({"pauseConditions": null}))
        .await?)
}

async fn events(stack: &Stack, name: &str) -> anyhow::Result<Vec<(String, String)>> {
    let list = Api::<Event>::namespaced(stack.client.clone(), NS)
        .list(&ListParams::default())
        .await?;
    Ok(list
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
        .map(|e| (e.reason.unwrap_or_default(), e.note.unwrap_or_default()))
        .collect())
}

async fn current_hash(stack: &Stack, name: &str) -> anyhow::Result<String> {
    let r = stack
        .wait_for(NS, name, Duration::from_secs(30), "current hash", |r| {
            r.status.as_ref().and_then(|s| s.observed_generation) == r.metadata.generation
        })
        .await?;
    Ok(r.status
        .and_then(|s| s.current_pod_hash)
        .unwrap_or_default())
}

#[tokio::test(start_paused = true)]
async fn first_deploy_goes_straight_to_stable() -> R {
    let stack = stack().await?;
    let stable = deploy(&stack, "web", json!({"autoPromotionEnabled": false})).await?;
    assert_eq!(
        selected(&stack, "web-active").await?.as_deref(),
        Some(stable.as_str())
    );
    assert_eq!(
        selected(&stack, "web-preview").await?.as_deref(),
        Some(stable.as_str())
    );
    assert_eq!(
        replica_sets(&stack, "web").await?,
        vec![(stable.clone(), 3, 3)]
    );
    let reasons: Vec<String> = events(&stack, "web")
        .await?
        .into_iter()
        .map(|e| e.0)
        .collect();
    assert!(
        reasons.contains(&"SwitchService".to_string()),
        "{reasons:?}"
    );
    assert!(
        reasons.contains(&"RolloutCompleted".to_string()),
        "{reasons:?}"
    );
    let runs = Api::<AnalysisRun>::namespaced(stack.client.clone(), NS)
        .list(&ListParams::default())
        .await?;
    assert!(runs.items.is_empty(), "first deploy runs no analysis");
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn manual_promotion_switches_active_only_when_preview_is_ready() -> R {
    let stack = stack().await?;
    let v1 = deploy(&stack, "web", json!({"autoPromotionEnabled": false})).await?;
    let monitor = Monitor::start(&stack, "web", 3);
    new_image(&stack, "web", "app:2").await?;
    let paused = wait_phase(&stack, "web", RolloutPhase::Paused, 120).await?;
    let v2 = paused
        .status
        .as_ref()
        .and_then(|s| s.current_pod_hash.clone())
        .unwrap_or_default();
    assert_ne!(v1, v2);
    assert_eq!(selected(&stack, "web-active").await?, Some(v1.clone()));
    assert_eq!(selected(&stack, "web-preview").await?, Some(v2.clone()));
    // Paused stays paused.
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert_eq!(
        phase(&stack.rollout(NS, "web").await?),
        Some(RolloutPhase::Paused)
    );
    assert_eq!(selected(&stack, "web-active").await?, Some(v1.clone()));

    promote(&stack, "web").await?;
    let done = stack
        .wait_for(NS, "web", Duration::from_secs(120), "v2 stable", |r| {
            r.status.as_ref().and_then(|s| s.stable_rs.as_deref()) == Some(v2.as_str())
        })
        .await?;
    assert_eq!(phase(&done), Some(RolloutPhase::Healthy));
    assert_eq!(selected(&stack, "web-active").await?, Some(v2.clone()));
    tokio::time::sleep(Duration::from_secs(2)).await; // let the monitor take its next look
    assert!(
        monitor.violations().is_empty(),
        "{:?}",
        monitor.violations()
    );
    assert_eq!(monitor.switches(), vec![Some(v1.clone()), Some(v2.clone())]);
    let notes: Vec<String> = events(&stack, "web")
        .await?
        .into_iter()
        .map(|e| e.1)
        .collect();
    assert!(
        notes
            .iter()
            .any(|n| n.contains(&v1) && n.contains(&v2) && n.contains("web-active")),
        "switch event names both hashes: {notes:?}"
    );
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn auto_promotion_seconds_promotes_after_the_pause() -> R {
    let stack = stack().await?;
    deploy(&stack, "web", json!({"autoPromotionSeconds": 120})).await?;
    new_image(&stack, "web", "app:2").await?;
    let paused = wait_phase(&stack, "web", RolloutPhase::Paused, 120).await?;
    let v2 = paused
        .status
        .as_ref()
        .and_then(|s| s.current_pod_hash.clone())
        .unwrap_or_default();
    let paused_at = tokio::time::Instant::now();
    let done = stack
        .wait_for(NS, "web", Duration::from_secs(600), "auto promotion", |r| {
            r.status.as_ref().and_then(|s| s.stable_rs.as_deref()) == Some(v2.as_str())
        })
        .await?;
    let waited = paused_at.elapsed().as_secs();
    assert!(
        (115..=140).contains(&waited),
        "promoted after {waited}s, expected ~120s"
    );
    assert_eq!(phase(&done), Some(RolloutPhase::Healthy));
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn abort_returns_traffic_and_retry_continues() -> R {
    let stack = stack().await?;
    let v1 = deploy(
        &stack,
        "web",
        json!({"autoPromotionEnabled": false, "abortScaleDownDelaySeconds": 60}),
    )
    .await?;
    new_image(&stack, "web", "app:2").await?;
    wait_phase(&stack, "web", RolloutPhase::Paused, 120).await?;
    let v2 = current_hash(&stack, "web").await?;
    stack
        .patch_rollout_status(NS, "web", json!({"abort": true}))
        .await?;
    let aborted = wait_phase(&stack, "web", RolloutPhase::Degraded, 30).await?;
    assert!(
        message(&aborted).contains("Aborted by user"),
        "{}",
        message(&aborted)
    );
    assert_eq!(selected(&stack, "web-active").await?, Some(v1.clone()));
    // Argo Rollouts leaves the preview Service on the aborted revision, to inspect it; its
    // pods stay up for abortScaleDownDelaySeconds, then go.
    assert_eq!(selected(&stack, "web-preview").await?, Some(v2.clone()));
    let sets = replica_sets(&stack, "web").await?;
    assert!(sets.contains(&(v2.clone(), 3, 3)), "{sets:?}");
    tokio::time::sleep(Duration::from_secs(70)).await;
    let sets = replica_sets(&stack, "web").await?;
    assert!(sets.iter().any(|(h, r, _)| h == &v2 && *r == 0), "{sets:?}");

    stack
        .patch_rollout_status(NS, "web", json!({"abort": false}))
        .await?;
    wait_phase(&stack, "web", RolloutPhase::Paused, 120).await?;
    promote(&stack, "web").await?;
    stack
        .wait_for(
            NS,
            "web",
            Duration::from_secs(120),
            "v2 stable after retry",
            |r| r.status.as_ref().and_then(|s| s.stable_rs.as_deref()) == Some(v2.as_str()),
        )
        .await?;
    assert_eq!(selected(&stack, "web-active").await?, Some(v2));
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn newer_revision_supersedes_the_one_in_flight() -> R {
    let stack = stack().await?;
    let v1 = deploy(&stack, "web", json!({"autoPromotionEnabled": false})).await?;
    new_image(&stack, "web", "app:2").await?;
    wait_phase(&stack, "web", RolloutPhase::Paused, 120).await?;
    let v2 = current_hash(&stack, "web").await?;
    new_image(&stack, "web", "app:3").await?;
    let paused = wait_phase(&stack, "web", RolloutPhase::Paused, 120).await?;
    let v3 = paused
        .status
        .and_then(|s| s.current_pod_hash)
        .unwrap_or_default();
    assert_ne!(v3, v2);
    assert_eq!(selected(&stack, "web-active").await?, Some(v1.clone()));
    assert_eq!(selected(&stack, "web-preview").await?, Some(v3.clone()));
    let sets = replica_sets(&stack, "web").await?;
    assert!(
        sets.iter().any(|(h, r, _)| h == &v2 && *r == 0),
        "superseded preview scaled down: {sets:?}"
    );
    assert!(sets.contains(&(v1.clone(), 3, 3)), "{sets:?}");
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn crash_looping_version_is_aborted_at_the_deadline_without_traffic() -> R {
    let stack = stack().await?;
    let v1 = deploy(&stack, "web", json!({})).await?;
    let monitor = Monitor::start(&stack, "web", 3);
    stack
        .sim
        .set_image_behavior("app:broken", ImageBehavior::CrashLoop);
    let started = tokio::time::Instant::now();
    new_image(&stack, "web", "app:broken").await?;
    let aborted = wait_phase(&stack, "web", RolloutPhase::Degraded, 900).await?;
    let after = started.elapsed().as_secs();
    assert!(
        (590..=640).contains(&after),
        "aborted after {after}s, deadline is 600s"
    );
    assert!(
        message(&aborted).contains("ProgressDeadlineExceeded"),
        "{}",
        message(&aborted)
    );
    assert_eq!(aborted.status.as_ref().and_then(|s| s.abort), Some(true));
    assert_eq!(selected(&stack, "web-active").await?, Some(v1.clone()));
    assert_eq!(monitor.switches(), vec![Some(v1)]);
    assert!(
        monitor.violations().is_empty(),
        "{:?}",
        monitor.violations()
    );
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn going_back_to_the_stable_template_is_instant() -> R {
    let stack = stack().await?;
    let v1 = deploy(&stack, "web", json!({"autoPromotionEnabled": false})).await?;
    new_image(&stack, "web", "app:2").await?;
    wait_phase(&stack, "web", RolloutPhase::Paused, 120).await?;
    let before = tokio::time::Instant::now();
    new_image(&stack, "web", "app:1").await?;
    let healthy = wait_phase(&stack, "web", RolloutPhase::Healthy, 30).await?;
    assert!(
        before.elapsed().as_secs() <= 3,
        "took {:?}",
        before.elapsed()
    );
    assert_eq!(healthy.status.and_then(|s| s.stable_rs), Some(v1.clone()));
    assert_eq!(selected(&stack, "web-active").await?, Some(v1.clone()));
    assert_eq!(selected(&stack, "web-preview").await?, Some(v1));
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn old_revisions_scale_down_after_the_delay_and_history_is_pruned() -> R {
    let stack = stack().await?;
    let v1 = deploy(&stack, "web", json!({"scaleDownDelaySeconds": 60})).await?;
    stack
        .apply_yaml(
            &blue_green_rollout(
                "web",
                "app:1",
                json!({"revisionHistoryLimit": 1}),
                json!({"scaleDownDelaySeconds": 60}),
            )
            .to_string(),
            NS,
        )
        .await?;
    new_image(&stack, "web", "app:2").await?;
    let v2 = current_hash(&stack, "web").await?;
    stack
        .wait_for(NS, "web", Duration::from_secs(120), "v2 stable", |r| {
            r.status.as_ref().and_then(|s| s.stable_rs.as_deref()) == Some(v2.as_str())
        })
        .await?;
    let switched = tokio::time::Instant::now();
    // The old revision keeps its pods for scaleDownDelaySeconds.
    tokio::time::sleep(Duration::from_secs(50)).await;
    assert!(
        replica_sets(&stack, "web")
            .await?
            .contains(&(v1.clone(), 3, 3))
    );
    stack
        .wait_for(
            NS,
            "web",
            Duration::from_secs(60),
            "old scaled down",
            |_| true,
        )
        .await?;
    tokio::time::sleep(Duration::from_secs(15)).await;
    let sets = replica_sets(&stack, "web").await?;
    assert!(
        sets.iter().any(|(h, r, _)| h == &v1 && *r == 0),
        "{sets:?} after {:?}",
        switched.elapsed()
    );
    // Two more revisions: with revisionHistoryLimit 1 only one idle ReplicaSet remains.
    for image in ["app:3", "app:4"] {
        new_image(&stack, "web", image).await?;
        let h = current_hash(&stack, "web").await?;
        stack
            .wait_for(NS, "web", Duration::from_secs(200), "stable", |r| {
                r.status.as_ref().and_then(|s| s.stable_rs.as_deref()) == Some(h.as_str())
            })
            .await?;
        tokio::time::sleep(Duration::from_secs(70)).await;
    }
    let sets = replica_sets(&stack, "web").await?;
    let idle = sets.iter().filter(|(_, r, _)| *r == 0).count();
    assert_eq!(idle, 1, "{sets:?}");
    assert!(
        !sets.iter().any(|(h, _, _)| h == &v1),
        "oldest pruned: {sets:?}"
    );
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_new_controller_continues_from_status_without_moving_traffic() -> R {
    let mut stack = stack().await?;
    let v1 = deploy(&stack, "web", json!({"autoPromotionEnabled": false})).await?;
    new_image(&stack, "web", "app:2").await?;
    wait_phase(&stack, "web", RolloutPhase::Paused, 120).await?;
    let v2 = current_hash(&stack, "web").await?;
    stack.stop_controllers().await;
    stack.sim.clear_audit_log();
    stack.start_controller("controller-2");
    tokio::time::sleep(Duration::from_secs(30)).await;
    let services_written = stack
        .sim
        .audit_log()
        .iter()
        .filter(|e| e.path.contains("/services/"))
        .count();
    assert_eq!(services_written, 0, "a restart moves no traffic");
    assert_eq!(
        phase(&stack.rollout(NS, "web").await?),
        Some(RolloutPhase::Paused)
    );
    assert_eq!(selected(&stack, "web-active").await?, Some(v1));
    promote(&stack, "web").await?;
    stack
        .wait_for(NS, "web", Duration::from_secs(120), "v2 stable", |r| {
            r.status.as_ref().and_then(|s| s.stable_rs.as_deref()) == Some(v2.as_str())
        })
        .await?;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_reconcile_twice_changes_nothing_the_second_time() -> R {
    let mut stack = stack().await?;
    deploy(&stack, "web", json!({"autoPromotionEnabled": false})).await?;
    new_image(&stack, "web", "app:2").await?;
    wait_phase(&stack, "web", RolloutPhase::Paused, 120).await?;
    stack.stop_controllers().await;
    let ctx = Context::new(
        stack.client.clone(),
        rollgate_controller::Config {
            clock: rollgate_controller::Clock::starting_at(stack.sim.now()),
            ..Default::default()
        },
    );
    reconcile_rollout(&ctx, NS, "web").await?;
    stack.sim.clear_audit_log();
    let report = reconcile_rollout(&ctx, NS, "web")
        .await?
        .expect("rollout exists");
    assert!(
        report.decision.actions.is_empty(),
        "{:?}",
        report.decision.actions
    );
    assert!(!report.status_written);
    assert!(
        stack.sim.audit_log().is_empty(),
        "{:?}",
        stack.sim.audit_log()
    );
    Ok(())
}

async fn assert_invalid_touches_nothing(
    spec: serde_json::Value,
    bg: serde_json::Value,
    field: &str,
) -> R {
    let stack = stack().await?;
    stack.apply_yaml(&blue_green_services("bad"), NS).await?;
    stack.sim.clear_audit_log();
    stack
        .apply_yaml(
            &blue_green_rollout("bad", "app:1", spec, bg).to_string(),
            NS,
        )
        .await?;
    let r = wait_phase(&stack, "bad", RolloutPhase::Degraded, 30).await?;
    let status = r.status.clone().unwrap_or_default();
    let invalid = status
        .conditions
        .iter()
        .find(|c| c.type_ == "InvalidSpec")
        .expect("InvalidSpec condition");
    assert!(
        invalid.message.contains(field),
        "{} should name {field}",
        invalid.message
    );
    assert!(message(&r).contains(field));
    let reasons: Vec<String> = events(&stack, "bad")
        .await?
        .into_iter()
        .map(|e| e.0)
        .collect();
    assert!(reasons.contains(&"InvalidSpec".to_string()), "{reasons:?}");
    let touched: Vec<String> = stack
        .sim
        .audit_log()
        .iter()
        .filter(|e| e.path.contains("/replicasets") || e.path.contains("/services/"))
        .map(|e| format!("{} {}", e.method, e.path))
        .collect();
    // Only the test's own Service apply is allowed (it happened before the log was cleared).
    assert!(touched.is_empty(), "{touched:?}");
    let services = Api::<Service>::namespaced(stack.client.clone(), NS);
    let active = services.get("bad-active").await?;
    assert!(active.metadata.annotations.unwrap_or_default().is_empty());
    let sets = Api::<ReplicaSet>::namespaced(stack.client.clone(), NS)
        .list(&ListParams::default())
        .await?;
    assert!(sets.items.is_empty());
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn invalid_both_strategies() -> R {
    assert_invalid_touches_nothing(
        json!({"strategy": {"canary": {"steps": []}}}),
        json!({}),
        "spec.strategy",
    )
    .await
}

#[tokio::test(start_paused = true)]
async fn invalid_missing_active_service() -> R {
    // The CRD schema requires it: the API server refuses the object, naming the field.
    let stack = stack().await?;
    let bad = blue_green_rollout("bad", "app:1", json!({}), json!({"activeService": null}));
    let refused = stack
        .apply_yaml(&bad.to_string(), NS)
        .await
        .expect_err("a Rollout without activeService is refused");
    let text = refused.to_string();
    assert!(text.contains("422") || text.contains("Invalid"), "{text}");
    assert!(
        text.contains("spec.strategy.blueGreen.activeService"),
        "{text}"
    );
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn invalid_service_that_does_not_exist() -> R {
    assert_invalid_touches_nothing(
        json!({}),
        json!({"previewService": "nope"}),
        "spec.strategy.blueGreen.previewService",
    )
    .await
}

#[tokio::test(start_paused = true)]
async fn restart_at_replaces_the_active_pods_one_at_a_time() -> R {
    let stack = stack().await?;
    let v1 = deploy(&stack, "web", json!({})).await?;
    let monitor = Monitor::start(&stack, "web", 2);
    let before = pod_names(&stack, "web").await?;
    assert_eq!(before.len(), 3);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let at = stack.sim.now();
    Api::<rollgate_api::Rollout>::namespaced(stack.client.clone(), NS)
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"restartAt": at.to_string()}})),
        )
        .await?;
    wait_restarted(&stack, "web", 120).await?;
    let after = pod_names(&stack, "web").await?;
    assert_eq!(after.len(), 3);
    assert!(
        after.iter().all(|p| !before.contains(p)),
        "{before:?} -> {after:?}"
    );
    assert_eq!(selected(&stack, "web-active").await?, Some(v1));
    // One pod at a time: the active Service never had fewer than 2 ready pods.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(monitor.violations(), Vec::<String>::new());
    Ok(())
}

/// Switching the strategy to a canary without Services hands the active and preview Services
/// back to their plain selector: once the canary completes and the old revision is scaled
/// down, a Service still pinned to it would select nothing (an outage).
#[tokio::test(start_paused = true)]
async fn switching_to_canary_releases_the_blue_green_services() -> R {
    let stack = stack().await?;
    let old = deploy(&stack, "web", json!({})).await?;
    assert_eq!(selected(&stack, "web-active").await?, Some(old.clone()));
    // What `kubectl apply` of the canary manifest sends: blueGreen removed, canary added.
    let patch = json!({"spec": {
        "strategy": {"blueGreen": null, "canary": {
            "steps": [{"setWeight": 50}, {"pause": {"duration": "10s"}}]}},
        "template": {"spec": {"containers": [{"name": "app", "image": "app:2"}]}}}});
    Api::<rollgate_api::Rollout>::namespaced(stack.client.clone(), NS)
        .patch("web", &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    stack
        .wait_for(NS, "web", Duration::from_secs(300), "new stable", |r| {
            r.status.as_ref().and_then(|s| s.stable_rs.as_deref()) != Some(old.as_str())
                && phase(r) == Some(RolloutPhase::Healthy)
        })
        .await?;
    for svc in ["web-active", "web-preview"] {
        assert_eq!(selected(&stack, svc).await?, None, "{svc} selector");
        let s = Api::<Service>::namespaced(stack.client.clone(), NS)
            .get(svc)
            .await?;
        let labels = s.metadata.labels.unwrap_or_default();
        assert!(
            !labels.contains_key(rollgate_api::labels::ROLLOUT_NAME),
            "{svc} keeps no rollgate mark: {labels:?}"
        );
    }
    let names: Vec<String> = events(&stack, "web")
        .await?
        .into_iter()
        .map(|e| e.0)
        .collect();
    assert_eq!(
        names.iter().filter(|r| *r == "ServiceReleased").count(),
        2,
        "{names:?}"
    );
    Ok(())
}

/// Argo Rollouts (docs, features/specification.md, `paused`): "If true at initial creation of
/// Rollout, replicas are not scaled up automatically from zero unless manually promoted"; its
/// phase is `Paused` meanwhile. Setting `spec.paused: false` deploys the revision.
#[tokio::test(start_paused = true)]
async fn a_rollout_created_paused_is_not_scaled_up_until_resumed() -> R {
    let stack = stack().await?;
    stack.apply_yaml(&blue_green_services("web"), NS).await?;
    stack
        .apply_yaml(
            &blue_green_rollout("web", "app:1", json!({"paused": true}), json!({})).to_string(),
            NS,
        )
        .await?;
    let paused = wait_phase(&stack, "web", RolloutPhase::Paused, 60).await?;
    let v1 = paused
        .status
        .as_ref()
        .and_then(|s| s.current_pod_hash.clone())
        .unwrap_or_default();
    assert!(!v1.is_empty());
    // Longer than the progress deadline (600 s): still paused, nothing aborted.
    tokio::time::sleep(Duration::from_secs(900)).await;
    let r = stack.rollout(NS, "web").await?;
    assert_eq!(phase(&r), Some(RolloutPhase::Paused), "{}", message(&r));
    assert_eq!(r.status.as_ref().and_then(|s| s.stable_rs.clone()), None);
    assert_eq!(replica_sets(&stack, "web").await?, vec![(v1.clone(), 0, 0)]);
    assert_eq!(selected(&stack, "web-active").await?, None);
    assert_eq!(selected(&stack, "web-preview").await?, None);

    Api::<rollgate_api::Rollout>::namespaced(stack.client.clone(), NS)
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"paused": false}})),
        )
        .await?;
    let done = wait_phase(&stack, "web", RolloutPhase::Healthy, 120).await?;
    assert_eq!(
        done.status.as_ref().and_then(|s| s.stable_rs.clone()),
        Some(v1.clone())
    );
    assert_eq!(replica_sets(&stack, "web").await?, vec![(v1.clone(), 3, 3)]);
    assert_eq!(selected(&stack, "web-active").await?, Some(v1));
    Ok(())
}

/// Argo Rollouts (docs: features/ephemeral-metadata): preview pods carry `previewMetadata`,
/// and on promotion the same pods (same names and uids, not recreated) carry `activeMetadata`
/// instead, while the ReplicaSet's pod template follows and the other labels stay.
#[tokio::test(start_paused = true)]
async fn preview_pods_carry_the_preview_metadata_and_become_active_in_place() -> R {
    let stack = stack().await?;
    let bg = json!({
        "autoPromotionEnabled": false,
        "activeMetadata": {"labels": {"role": "active"}, "annotations": {"traffic": "live"}},
        "previewMetadata": {"labels": {"role": "preview", "preview": "yes"}},
    });
    let v1 = deploy(&stack, "web", bg).await?;
    wait_role(&stack, &v1, "active", None, 30).await?;
    new_image(&stack, "web", "app:2").await?;
    wait_phase(&stack, "web", RolloutPhase::Paused, 120).await?;
    let v2 = current_hash(&stack, "web").await?;
    let preview = wait_role(&stack, &v2, "preview", None, 30).await?;
    assert_eq!(preview.len(), 3);
    for (name, _, labels, annotations) in &preview {
        assert_eq!(
            labels.get("preview").map(String::as_str),
            Some("yes"),
            "{name}"
        );
        assert_eq!(labels.get("app").map(String::as_str), Some("web"), "{name}");
        assert!(!annotations.contains_key("traffic"), "{name}");
    }
    wait_role(&stack, &v1, "active", None, 30).await?;

    promote(&stack, "web").await?;
    stack
        .wait_for(NS, "web", Duration::from_secs(120), "v2 stable", |r| {
            r.status.as_ref().and_then(|s| s.stable_rs.as_deref()) == Some(v2.as_str())
        })
        .await?;
    let active = wait_role(&stack, &v2, "active", None, 30).await?;
    let ids = |pods: &[PodView]| -> Vec<(String, String)> {
        pods.iter().map(|p| (p.0.clone(), p.1.clone())).collect()
    };
    assert_eq!(ids(&active), ids(&preview), "the same pods, not recreated");
    for (name, _, labels, annotations) in &active {
        assert!(!labels.contains_key("preview"), "{name}: {labels:?}");
        assert_eq!(labels.get("app").map(String::as_str), Some("web"), "{name}");
        assert_eq!(
            labels.get(rollgate_api::labels::POD_TEMPLATE_HASH),
            Some(&v2),
            "{name}"
        );
        assert_eq!(
            annotations.get("traffic").map(String::as_str),
            Some("live"),
            "{name}"
        );
    }
    let rs = Api::<ReplicaSet>::namespaced(stack.client.clone(), NS)
        .get(&format!("web-{v2}"))
        .await?;
    let template_labels = rs
        .spec
        .template
        .and_then(|t| t.metadata)
        .and_then(|m| m.labels)
        .unwrap_or_default();
    assert_eq!(
        template_labels.get("role").map(String::as_str),
        Some("active")
    );
    assert!(!template_labels.contains_key("preview"));
    Ok(())
}
