//! Argo Rollouts compatibility end to end (issue 15): the real controller on the simulated
//! cluster, in virtual time, doing what Argo Rollouts does for aborts, restarts, scaling in the
//! middle of an update, rollback windows and the scale-down of old canary ReplicaSets. Each
//! test names the Argo Rollouts doc or behaviour it states; the engine's tests
//! (`crates/rollgate-engine/tests/abort_semantics.rs`, `restart_paused.rs`,
//! `scale_mid_update.rs`, `rollback_window.rs`, `canary_cleanup.rs`) state the same decisions
//! one reconcile at a time.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams};
use rollgate_api::labels::POD_TEMPLATE_HASH;
use rollgate_api::{Rollout, RolloutPhase};
use rollgate_e2e::*;
use rollgate_test_support::{
    blue_green_rollout, blue_green_services, canary_rollout, documents, route_routing, service,
};
use serde_json::{Value, json};

type R = anyhow::Result<()>;

/// Services `web` (both versions), `web-canary`, `web-stable` and an HTTPRoute `web-route`
/// whose rule sends everything to the stable Service.
fn canary_fixtures() -> String {
    let route = json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": {"name": "web-route"},
        "spec": {"parentRefs": [{"name": "gateway"}], "rules": [{"backendRefs": [
            {"name": "web-stable", "port": 80, "weight": 100},
            {"name": "web-canary", "port": 80, "weight": 0}]}]}
    });
    documents(&[
        service("web", "web"),
        service("web-canary", "web"),
        service("web-stable", "web"),
        route,
    ])
}

/// Deploys the canary rollout `web` (`spec` merged over its spec, `canary` over
/// `strategy.canary`) and returns its stable hash once Healthy.
async fn deploy_canary(stack: &Stack, spec: Value, canary: Value) -> anyhow::Result<String> {
    stack.apply_yaml(&canary_fixtures(), NS).await?;
    stack
        .apply_yaml(
            &canary_rollout("web", "app:1", spec, canary).to_string(),
            NS,
        )
        .await?;
    let r = wait_phase(stack, "web", RolloutPhase::Healthy, 120).await?;
    Ok(stable_rs(&r))
}

/// Deploys the blue/green rollout `web` (`bg` merged over `strategy.blueGreen`) and returns
/// its stable hash once Healthy.
async fn deploy_blue_green(stack: &Stack, bg: Value) -> anyhow::Result<String> {
    stack.apply_yaml(&blue_green_services("web"), NS).await?;
    stack
        .apply_yaml(
            &blue_green_rollout("web", "app:1", json!({}), bg).to_string(),
            NS,
        )
        .await?;
    let r = wait_phase(stack, "web", RolloutPhase::Healthy, 120).await?;
    Ok(stable_rs(&r))
}

fn stable_rs(r: &Rollout) -> String {
    r.status
        .as_ref()
        .and_then(|s| s.stable_rs.clone())
        .unwrap_or_default()
}

fn current_hash(r: &Rollout) -> String {
    r.status
        .as_ref()
        .and_then(|s| s.current_pod_hash.clone())
        .unwrap_or_default()
}

/// Waits until `hash` is the stable revision of `web` and the rollout is Healthy.
async fn wait_stable(stack: &Stack, hash: &str, secs: u64) -> anyhow::Result<Rollout> {
    Ok(stack
        .wait_for(
            NS,
            "web",
            Duration::from_secs(secs),
            &format!("{hash} stable"),
            |r| stable_rs(r) == hash && phase(r) == Some(RolloutPhase::Healthy),
        )
        .await?)
}

/// Sets the image of `web` and returns the new revision's hash once the controller saw it.
async fn release(stack: &Stack, image: &str) -> anyhow::Result<String> {
    let before = current_hash(&stack.rollout(NS, "web").await?);
    stack.set_image(NS, "web", "app", image).await?;
    let r = stack
        .wait_for(NS, "web", Duration::from_secs(30), image, |r| {
            phase(r).is_some() && current_hash(r) != before
        })
        .await?;
    Ok(current_hash(&r))
}

async fn abort(stack: &Stack) -> R {
    Ok(stack
        .patch_rollout_status(NS, "web", json!({"abort": true}))
        .await?)
}

async fn patch_spec(stack: &Stack, spec: Value) -> R {
    Api::<Rollout>::namespaced(stack.client.clone(), NS)
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": spec })),
        )
        .await?;
    Ok(())
}

/// `spec.replicas` of the ReplicaSet of `hash` (`None`: no such ReplicaSet).
async fn size(stack: &Stack, hash: &str) -> anyhow::Result<Option<i32>> {
    Ok(replica_sets(stack, "web")
        .await?
        .into_iter()
        .find(|(h, _, _)| h == hash)
        .map(|(_, replicas, _)| replicas))
}

/// A sample: the canary weight of `web-route` and the hash `web-canary` selects.
type RouteSample = (i64, Option<String>);

/// Samples every virtual second the canary weight of `web-route` and the hash `web-canary`
/// selects, recording each change.
struct RouteSampler {
    seen: Arc<Mutex<Vec<RouteSample>>>,
    task: tokio::task::JoinHandle<()>,
}

impl RouteSampler {
    fn start(stack: &Stack) -> Self {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let routes = route_api(stack);
        let services = Api::<Service>::namespaced(stack.client.clone(), NS);
        let task = tokio::spawn(async move {
            loop {
                let weight = routes
                    .get_opt("web-route")
                    .await
                    .ok()
                    .flatten()
                    .map_or(-1, |r| weights_of(&r).0);
                let canary = services
                    .get_opt("web-canary")
                    .await
                    .ok()
                    .flatten()
                    .and_then(|s| s.spec)
                    .and_then(|s| s.selector)
                    .and_then(|s| s.get(POD_TEMPLATE_HASH).cloned());
                if let Ok(mut s) = s.lock()
                    && s.last() != Some(&(weight, canary.clone()))
                {
                    s.push((weight, canary));
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
        Self { seen, task }
    }

    fn seen(&self) -> Vec<RouteSample> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

impl Drop for RouteSampler {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Argo Rollouts (docs: features/canary, "Traffic routing" with `canaryService` and
/// `stableService`; features/scaledown-aborted-rs): on an abort the route gives the canary
/// weight 0 and the canary Service is pointed back to the stable ReplicaSet, so nothing sent to
/// the canary Service reaches the aborted revision. The canary Service never selects the
/// stable hash while the canary still has weight.
#[tokio::test(start_paused = true)]
async fn a_routed_canary_abort_points_the_canary_service_at_the_stable_hash() -> R {
    let stack = stack().await?;
    let v1 = deploy_canary(
        &stack,
        json!({}),
        json!({"trafficRouting": route_routing("web-route"),
               "steps": [{"setWeight": 30}, {"pause": {}}]}),
    )
    .await?;
    let v2 = release(&stack, "app:2").await?;
    wait_step(&stack, 1, RolloutPhase::Paused).await?;
    assert_eq!(route_weights(&stack).await?, (30, 70));
    assert_eq!(selected(&stack, "web-canary").await?, Some(v2.clone()));
    assert_eq!(selected(&stack, "web-stable").await?, Some(v1.clone()));

    let sampler = RouteSampler::start(&stack);
    abort(&stack).await?;
    wait_phase(&stack, "web", RolloutPhase::Degraded, 30).await?;
    assert_eq!(route_weights(&stack).await?, (0, 100));
    assert_eq!(
        selected(&stack, "web-canary").await?,
        Some(v1.clone()),
        "the canary Service carries the stable hash after the abort"
    );
    assert_eq!(selected(&stack, "web-stable").await?, Some(v1.clone()));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let seen = sampler.seen();
    assert!(
        seen.iter()
            .all(|(weight, canary)| *weight == 0 || canary.as_deref() == Some(v2.as_str())),
        "the canary Service moved to stable only once its weight was 0: {seen:?}"
    );
    assert_eq!(seen.last(), Some(&(0, Some(v1.clone()))), "{seen:?}");
    Ok(())
}

/// Argo Rollouts (docs: features/bluegreen, `abortScaleDownDelaySeconds`; features/
/// scaledown-aborted-rs): "If set to 0, the ReplicaSet is not scaled down" after an abort. The
/// aborted revision keeps its pods long after the 30 s default, the preview Service still on
/// it, the active one back on stable.
#[tokio::test(start_paused = true)]
async fn a_blue_green_abort_scale_down_delay_of_0_never_scales_the_aborted_revision_down() -> R {
    let stack = stack().await?;
    let v1 = deploy_blue_green(
        &stack,
        json!({"autoPromotionEnabled": false, "abortScaleDownDelaySeconds": 0}),
    )
    .await?;
    let v2 = release(&stack, "app:2").await?;
    wait_phase(&stack, "web", RolloutPhase::Paused, 120).await?;
    abort(&stack).await?;
    wait_phase(&stack, "web", RolloutPhase::Degraded, 30).await?;
    assert_eq!(selected(&stack, "web-active").await?, Some(v1.clone()));
    // Well past the 30 s default (and any requeue): still every pod.
    tokio::time::sleep(Duration::from_secs(600)).await;
    let sets = replica_sets(&stack, "web").await?;
    assert!(
        sets.contains(&(v2.clone(), 3, 3)),
        "never scaled down: {sets:?}"
    );
    assert!(sets.contains(&(v1.clone(), 3, 3)), "{sets:?}");
    assert_eq!(selected(&stack, "web-active").await?, Some(v1));
    assert_eq!(selected(&stack, "web-preview").await?, Some(v2));
    assert_eq!(
        phase(&stack.rollout(NS, "web").await?),
        Some(RolloutPhase::Degraded)
    );
    Ok(())
}

/// Argo Rollouts (docs: features/bluegreen, `abortScaleDownDelaySeconds`): with a delay of N
/// the aborted ReplicaSet is scaled down N seconds after the abort, not before.
#[tokio::test(start_paused = true)]
async fn a_blue_green_abort_scale_down_delay_of_5_scales_the_aborted_revision_down_after_5s() -> R {
    let stack = stack().await?;
    let v1 = deploy_blue_green(
        &stack,
        json!({"autoPromotionEnabled": false, "abortScaleDownDelaySeconds": 5}),
    )
    .await?;
    let v2 = release(&stack, "app:2").await?;
    wait_phase(&stack, "web", RolloutPhase::Paused, 120).await?;
    let aborted_at = tokio::time::Instant::now();
    abort(&stack).await?;
    wait_phase(&stack, "web", RolloutPhase::Degraded, 30).await?;
    assert_eq!(size(&stack, &v2).await?, Some(3), "kept for the delay");
    let mut waited = None;
    for _ in 0..60 {
        if size(&stack, &v2).await? == Some(0) {
            waited = Some(aborted_at.elapsed().as_secs());
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let waited = waited.ok_or_else(|| anyhow::anyhow!("{v2} never scaled down"))?;
    assert!(
        (5..=7).contains(&waited),
        "scaled down {waited} s after the abort, the delay is 5 s"
    );
    assert_eq!(size(&stack, &v1).await?, Some(3));
    Ok(())
}

/// Argo Rollouts (docs: features/canary with traffic routing, `abortScaleDownDelaySeconds`:
/// "If set to 0, the ReplicaSet is not scaled down"): a routed canary's aborted pods stay up,
/// with weight 0 and the canary Service on stable.
#[tokio::test(start_paused = true)]
async fn a_routed_canary_abort_scale_down_delay_of_0_keeps_the_canary_pods() -> R {
    let stack = stack().await?;
    let v1 = deploy_canary(
        &stack,
        json!({}),
        json!({"trafficRouting": route_routing("web-route"), "abortScaleDownDelaySeconds": 0,
               "steps": [{"setWeight": 30}, {"pause": {}}]}),
    )
    .await?;
    let v2 = release(&stack, "app:2").await?;
    wait_step(&stack, 1, RolloutPhase::Paused).await?;
    assert_eq!(size(&stack, &v2).await?, Some(3));
    abort(&stack).await?;
    wait_phase(&stack, "web", RolloutPhase::Degraded, 30).await?;
    tokio::time::sleep(Duration::from_secs(600)).await;
    let sets = replica_sets(&stack, "web").await?;
    assert!(
        sets.contains(&(v2.clone(), 3, 3)),
        "never scaled down: {sets:?}"
    );
    assert!(sets.contains(&(v1.clone(), 10, 10)), "{sets:?}");
    assert_eq!(route_weights(&stack).await?, (0, 100));
    assert_eq!(selected(&stack, "web-canary").await?, Some(v1));
    Ok(())
}

/// The live pods of `hash` as `(name, creationTimestamp)`.
async fn pod_times(stack: &Stack, hash: &str) -> anyhow::Result<Vec<(String, Option<Timestamp>)>> {
    let pods = Api::<Pod>::namespaced(stack.client.clone(), NS)
        .list(&ListParams::default().labels(&format!("{POD_TEMPLATE_HASH}={hash}")))
        .await?;
    Ok(pods
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .map(|p| {
            (
                p.metadata.name.unwrap_or_default(),
                p.metadata.creation_timestamp.map(|t| t.0),
            )
        })
        .collect())
}

/// Argo Rollouts (docs: features/restart, "Rollout Pod Restarts"): `spec.restartAt` restarts
/// the pods of every ReplicaSet whatever the rollout is doing, also while a canary update is
/// paused: the stable and the canary pods are all replaced (created after `restartAt`), the
/// rollout stays Paused at its step, and `status.restartedAt` is set once no pod is older.
#[tokio::test(start_paused = true)]
async fn restart_at_while_paused_mid_update_replaces_stable_and_canary_pods() -> R {
    let stack = stack().await?;
    let v1 = deploy_canary(
        &stack,
        json!({}),
        json!({"maxUnavailable": 2, "steps": [{"setWeight": 20}, {"pause": {}}]}),
    )
    .await?;
    let v2 = release(&stack, "app:2").await?;
    wait_step(&stack, 1, RolloutPhase::Paused).await?;
    tokio::time::sleep(Duration::from_secs(10)).await;
    let mut sets = replica_sets(&stack, "web").await?;
    sets.sort();
    let mut expected = vec![(v1.clone(), 8, 8), (v2.clone(), 2, 2)];
    expected.sort();
    assert_eq!(sets, expected);
    let done = restart_while_paused(&stack, [&v1, &v2], 10).await?;
    assert_eq!(step_index(&done), Some(1));
    assert_eq!(pod_times(&stack, &v1).await?.len(), 8);
    assert_eq!(pod_times(&stack, &v2).await?.len(), 2);
    tokio::time::sleep(Duration::from_secs(30)).await;
    let r = stack.rollout(NS, "web").await?;
    assert_eq!(phase(&r), Some(RolloutPhase::Paused));
    assert_eq!(step_index(&r), Some(1));
    Ok(())
}

/// Argo Rollouts (docs: features/restart) while `web` is paused with the `pods` pods of
/// `hashes`: sets `restartAt` to now and waits for `status.restartedAt`, then checks that it is
/// the time asked, that the rollout was Paused all along, and that every pod of each hash is a
/// new one created at or after it. Returns the rollout as it was then.
async fn restart_while_paused(
    stack: &Stack,
    hashes: [&str; 2],
    pods: usize,
) -> anyhow::Result<Rollout> {
    let mut before = Vec::new();
    for hash in hashes {
        before.extend(pod_times(stack, hash).await?.into_iter().map(|p| p.0));
    }
    assert_eq!(before.len(), pods);
    let at = stack.sim.now();
    patch_spec(stack, json!({"restartAt": at.to_string()})).await?;
    let mut phases = Vec::new();
    let done = stack
        .wait_for(NS, "web", Duration::from_secs(300), "restartedAt", |r| {
            if let Some(p) = phase(r)
                && phases.last() != Some(&p)
            {
                phases.push(p);
            }
            r.status
                .as_ref()
                .and_then(|s| s.restarted_at.as_ref())
                .is_some()
        })
        .await?;
    assert_eq!(
        done.status
            .as_ref()
            .and_then(|s| s.restarted_at.as_ref())
            .map(|t| t.0.as_second()),
        Some(at.as_second())
    );
    assert_eq!(phases, vec![RolloutPhase::Paused], "paused all along");
    for hash in hashes {
        for (name, created) in pod_times(stack, hash).await? {
            assert!(
                created.is_some_and(|c| c >= at),
                "{name} of {hash} created {created:?}, before restartAt {at}"
            );
            assert!(!before.contains(&name), "{name} was not replaced");
        }
    }
    Ok(done)
}

/// The `(stable, canary)` sizes of `web` once they are `want` (at most `secs` of virtual
/// time), else an error with what they were.
async fn wait_sizes(stack: &Stack, stable: &str, canary: &str, want: (i32, i32), secs: u64) -> R {
    let mut last = (None, None);
    for _ in 0..secs {
        last = (size(stack, stable).await?, size(stack, canary).await?);
        if last == (Some(want.0), Some(want.1)) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    anyhow::bail!("(stable, canary) sizes never were {want:?}: last {last:?}")
}

/// Argo Rollouts (rollout/canary.go scales both ReplicaSets to the new `spec.replicas` while a
/// step is held; docs: features/canary, "the canary's replica count is the weight's share of
/// spec.replicas" without traffic routing): `spec.replicas` 8 -> 4 at `setWeight: 25` gives 1
/// canary + 3 stable pods (2 + 6 before), still paused at the step, every pod ready.
#[tokio::test(start_paused = true)]
async fn a_canary_scaled_from_8_to_4_at_set_weight_25_resizes_to_1_canary_and_3_stable() -> R {
    let stack = stack().await?;
    let v1 = deploy_canary(
        &stack,
        json!({"replicas": 8}),
        json!({"steps": [{"setWeight": 25}, {"pause": {}}]}),
    )
    .await?;
    let v2 = release(&stack, "app:2").await?;
    wait_step(&stack, 1, RolloutPhase::Paused).await?;
    wait_sizes(&stack, &v1, &v2, (6, 2), 60).await?;
    patch_spec(&stack, json!({"replicas": 4})).await?;
    wait_sizes(&stack, &v1, &v2, (3, 1), 120).await?;
    let r = stack
        .wait_for(NS, "web", Duration::from_secs(60), "4 ready", |r| {
            phase(r).is_some() && r.status.as_ref().and_then(|s| s.ready_replicas) == Some(4)
        })
        .await?;
    assert_eq!(phase(&r), Some(RolloutPhase::Paused));
    assert_eq!(step_index(&r), Some(1));
    let mut sets = replica_sets(&stack, "web").await?;
    sets.sort();
    let mut expected = vec![(v1, 3, 3), (v2, 1, 1)];
    expected.sort();
    assert_eq!(sets, expected);
    Ok(())
}

/// The same with a router (Argo Rollouts, docs: features/canary, traffic routing: the stable
/// ReplicaSet stays at 100% of `spec.replicas`, the canary gets the weight's share): 8 -> 4 at
/// `setWeight: 25` gives 1 canary + 4 stable pods (2 + 8 before), the route still at 25/75.
#[tokio::test(start_paused = true)]
async fn a_routed_canary_scaled_from_8_to_4_at_set_weight_25_shrinks_both_sides() -> R {
    let stack = stack().await?;
    let v1 = deploy_canary(
        &stack,
        json!({"replicas": 8}),
        json!({"trafficRouting": route_routing("web-route"),
               "steps": [{"setWeight": 25}, {"pause": {}}]}),
    )
    .await?;
    let v2 = release(&stack, "app:2").await?;
    wait_step(&stack, 1, RolloutPhase::Paused).await?;
    wait_sizes(&stack, &v1, &v2, (8, 2), 60).await?;
    patch_spec(&stack, json!({"replicas": 4})).await?;
    wait_sizes(&stack, &v1, &v2, (4, 1), 120).await?;
    assert_eq!(route_weights(&stack).await?, (25, 75));
    let r = stack.rollout(NS, "web").await?;
    assert_eq!(phase(&r), Some(RolloutPhase::Paused));
    assert_eq!(step_index(&r), Some(1));
    Ok(())
}

/// How many `SkipSteps` Events (Argo's name for a rollback that skips steps) rollout `web` has.
async fn skip_steps_events(stack: &Stack) -> anyhow::Result<usize> {
    Ok(Api::<Event>::namespaced(stack.client.clone(), NS)
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("web"))
        .filter(|e| e.reason.as_deref() == Some("SkipSteps"))
        .count())
}

/// Argo Rollouts (docs: features/rollback-windows, "Rollback Windows"): with
/// `rollbackWindow.revisions: 1`, going back to the revision just before the newest skips the
/// steps (a fast rollback: no pause); going back to an older one, outside the window, is
/// released like a new revision and stops at its first pause.
#[tokio::test(start_paused = true)]
async fn a_rollback_window_makes_only_recent_revisions_fast_rollbacks() -> R {
    let stack = stack().await?;
    let v1 = deploy_canary(
        &stack,
        json!({"rollbackWindow": {"revisions": 1}}),
        json!({"steps": [{"setWeight": 50}, {"pause": {}}]}),
    )
    .await?;
    let mut hashes = Vec::new();
    for image in ["app:2", "app:3"] {
        let h = release(&stack, image).await?;
        wait_step(&stack, 1, RolloutPhase::Paused).await?;
        promote(&stack).await?;
        wait_stable(&stack, &h, 300).await?;
        hashes.push(h);
    }
    let [v2, _v3] = <[String; 2]>::try_from(hashes)
        .map_err(|h| anyhow::anyhow!("two releases expected: {h:?}"))?;
    assert_eq!(
        stack
            .rollout(NS, "web")
            .await?
            .status
            .and_then(|s| s.current_revision),
        Some(3)
    );

    // app:2 is revision 2, inside the window of 1 below revision 3: no pause, no step.
    let skips = skip_steps_events(&stack).await?;
    let mut paused = false;
    stack.set_image(NS, "web", "app", "app:2").await?;
    stack
        .wait_for(NS, "web", Duration::from_secs(120), "v2 stable", |r| {
            paused |= phase(r) == Some(RolloutPhase::Paused);
            stable_rs(r) == v2 && phase(r) == Some(RolloutPhase::Healthy)
        })
        .await?;
    assert!(!paused, "a fast rollback walks no step");
    assert_eq!(skip_steps_events(&stack).await?, skips + 1);

    // app:2 is now revision 4; app:1 (revision 1) is outside the window: a normal release
    // that stops at the pause of its steps.
    let skips = skip_steps_events(&stack).await?;
    stack.set_image(NS, "web", "app", "app:1").await?;
    let r = wait_step(&stack, 1, RolloutPhase::Paused).await?;
    assert_eq!(current_hash(&r), v1);
    assert_eq!(stable_rs(&r), v2);
    assert_eq!(skip_steps_events(&stack).await?, skips);
    tokio::time::sleep(Duration::from_secs(60)).await;
    let r = stack.rollout(NS, "web").await?;
    assert_eq!(
        (phase(&r), step_index(&r), stable_rs(&r)),
        (Some(RolloutPhase::Paused), Some(1), v2),
        "held at the pause until promoted"
    );
    Ok(())
}

/// Argo Rollouts (docs: features/canary, `scaleDownDelaySeconds` and
/// `scaleDownDelayRevisionLimit`, with traffic routing): the previous stable ReplicaSet waits
/// `scaleDownDelaySeconds` before it is scaled down, and at most `scaleDownDelayRevisionLimit`
/// old ReplicaSets wait at once: the older ones are scaled to 0 at once.
#[tokio::test(start_paused = true)]
async fn a_canary_scale_down_delay_revision_limit_of_1_scales_older_revisions_down_at_once() -> R {
    let stack = stack().await?;
    let v1 = deploy_canary(
        &stack,
        json!({}),
        json!({"trafficRouting": route_routing("web-route"), "steps": [{"setWeight": 50}],
               "scaleDownDelaySeconds": 600, "scaleDownDelayRevisionLimit": 1}),
    )
    .await?;
    let v2 = release(&stack, "app:2").await?;
    wait_stable(&stack, &v2, 120).await?;
    assert_eq!(size(&stack, &v1).await?, Some(10), "v1 waits for the delay");

    let v3 = release(&stack, "app:3").await?;
    wait_stable(&stack, &v3, 120).await?;
    assert_eq!(
        size(&stack, &v2).await?,
        Some(10),
        "the newest old stable waits"
    );
    assert_eq!(
        size(&stack, &v1).await?,
        Some(0),
        "beyond the limit of 1: at once"
    );

    let v4 = release(&stack, "app:4").await?;
    wait_stable(&stack, &v4, 120).await?;
    assert_eq!(
        size(&stack, &v3).await?,
        Some(10),
        "the newest old stable waits"
    );
    assert_eq!(
        size(&stack, &v2).await?,
        Some(0),
        "beyond the limit of 1: at once"
    );
    assert_eq!(size(&stack, &v1).await?, Some(0));

    // v3 goes once its delay is over, not before.
    tokio::time::sleep(Duration::from_secs(300)).await;
    assert_eq!(size(&stack, &v3).await?, Some(10));
    tokio::time::sleep(Duration::from_secs(310)).await;
    assert_eq!(size(&stack, &v3).await?, Some(0));
    assert_eq!(size(&stack, &v4).await?, Some(10));
    Ok(())
}

/// The same for a blue/green release waiting for promotion (Argo Rollouts, docs:
/// features/restart: every ReplicaSet's pods older than `restartAt` are restarted): the active
/// (stable) and the preview pods are all replaced, the rollout stays Paused with the active
/// Service on stable and the preview Service on the new revision.
#[tokio::test(start_paused = true)]
async fn restart_at_while_waiting_for_promotion_replaces_active_and_preview_pods() -> R {
    let stack = stack().await?;
    let v1 = deploy_blue_green(&stack, json!({"autoPromotionEnabled": false})).await?;
    let v2 = release(&stack, "app:2").await?;
    wait_phase(&stack, "web", RolloutPhase::Paused, 120).await?;
    tokio::time::sleep(Duration::from_secs(10)).await;
    restart_while_paused(&stack, [&v1, &v2], 6).await?;
    for hash in [&v1, &v2] {
        let pods = pod_times(&stack, hash).await?;
        assert_eq!(pods.len(), 3, "{hash}: {pods:?}");
    }
    assert_eq!(selected(&stack, "web-active").await?, Some(v1));
    assert_eq!(selected(&stack, "web-preview").await?, Some(v2));
    assert_eq!(
        phase(&stack.rollout(NS, "web").await?),
        Some(RolloutPhase::Paused)
    );
    Ok(())
}
