//! What an abort leaves behind, as Argo Rollouts does it (docs: "Scaledown New Replicaset on
//! Aborted Rollout", features/scaledown-aborted-rs; blue/green and canary feature pages):
//! - blue/green: the active Service goes back to stable, the preview Service stays on the
//!   aborted revision (it can still be inspected), whose ReplicaSet is scaled down after
//!   `abortScaleDownDelaySeconds` (30 by default; 0: never);
//! - canary behind a router: weight 0, the canary Service selects the stable hash, the canary
//!   ReplicaSet is scaled down after `abortScaleDownDelaySeconds` (0: never);
//! - canary without a router: rolled back to stable (the delay does not apply).
//!
//! Every `World::step` also checks the traffic invariant, consistency and idempotence.

use crate::support;

use rollgate_api::RolloutPhase;
use serde_json::{Value, json};
use support::{CANARY_SVC, STABLE_SVC, World, route_routing};

fn blue_green(bg: Value) -> (World, String, String) {
    let mut strategy = json!({"autoPromotionEnabled": false});
    rollgate_test_support::merge(&mut strategy, bg);
    let (mut w, v1) = World::deployed(json!({}), strategy);
    let v2 = w.set_image("app:2");
    w.step();
    w.make_ready(&v2);
    w.step();
    assert_eq!(w.preview(), Some(v2.clone()));
    (w, v1, v2)
}

#[test]
fn a_blue_green_abort_leaves_the_preview_on_the_aborted_revision_until_a_new_one() {
    let (mut w, v1, v2) = blue_green(json!({}));
    w.abort();
    w.step();
    assert_eq!(w.phase(), Some(RolloutPhase::Degraded));
    assert_eq!(w.active(), Some(v1.clone()));
    assert_eq!(
        w.preview(),
        Some(v2.clone()),
        "preview stays on the aborted revision"
    );
    // Scaled down after the default 30 s; the preview still selects it (no pods), and the
    // ReplicaSet is kept, not pruned, while it does.
    w.advance(30);
    w.run_until_settled();
    assert_eq!(w.size(&v2), 0);
    assert_eq!(w.preview(), Some(v2.clone()));
    assert!(w.has_rs(&v2));
    // A new revision takes the preview.
    let v3 = w.set_image("app:3");
    w.step();
    assert_eq!(w.preview(), Some(v3));
    assert_eq!(w.active(), Some(v1));
}

#[test]
fn a_blue_green_abort_scale_down_delay_of_0_keeps_the_aborted_pods_for_good() {
    let (mut w, v1, v2) = blue_green(json!({"abortScaleDownDelaySeconds": 0}));
    w.abort();
    w.step();
    for _ in 0..5 {
        w.advance(3600);
        w.run_until_settled();
    }
    assert_eq!(w.size(&v2), 3, "never scaled down");
    assert_eq!(w.rs(&v2).scale_down_deadline, None);
    assert_eq!(w.active(), Some(v1));
    // A retry finds its pods still there.
    w.retry();
    w.step();
    assert_eq!(w.phase(), Some(RolloutPhase::Paused));
}

#[test]
fn a_blue_green_abort_scale_down_delay_of_n_waits_n_seconds() {
    let (mut w, _, v2) = blue_green(json!({"abortScaleDownDelaySeconds": 90}));
    w.abort();
    w.step();
    assert_eq!(w.rs(&v2).scale_down_deadline, Some(w.at(90)));
    w.advance(89);
    w.run_until_settled();
    assert_eq!(w.size(&v2), 3);
    w.advance(1);
    w.run_until_settled();
    assert_eq!(w.size(&v2), 0);
}

fn routed_canary(extra: Value) -> (World, String, String) {
    let mut canary = json!({"trafficRouting": route_routing(),
                            "steps": [{"setWeight": 30}, {"pause": {}}]});
    rollgate_test_support::merge(&mut canary, extra);
    let (mut w, v1) = World::canary_deployed(json!({}), canary);
    let v2 = w.set_image("app:2");
    w.step();
    w.make_ready(&v2);
    w.run_until_settled();
    assert_eq!(w.route_weights(), (30, 70));
    assert_eq!(w.selects(CANARY_SVC), Some(v2.clone()));
    (w, v1, v2)
}

#[test]
fn a_routed_canary_abort_points_the_canary_service_at_stable() {
    let (mut w, v1, v2) = routed_canary(json!({}));
    w.abort();
    w.step();
    assert_eq!(w.route_weights(), (0, 100));
    assert_eq!(
        w.selects(CANARY_SVC),
        Some(v1.clone()),
        "canary Service on stable"
    );
    assert_eq!(w.selects(STABLE_SVC), Some(v1.clone()));
    assert_eq!(w.rs(&v2).scale_down_deadline, Some(w.at(30)));
    w.advance(30);
    w.run_until_settled();
    assert_eq!(w.size(&v2), 0);
    // A retry moves the canary Service back to the canary before any weight goes to it.
    w.retry();
    w.step();
    w.make_ready(&v2);
    w.run_until_settled();
    assert_eq!(w.selects(CANARY_SVC), Some(v2));
    assert_eq!(w.route_weights(), (30, 70));
}

#[test]
fn a_routed_canary_abort_scale_down_delay_of_0_keeps_the_canary_pods_for_good() {
    let (mut w, v1, v2) = routed_canary(json!({"abortScaleDownDelaySeconds": 0}));
    let pods = w.size(&v2);
    w.abort();
    w.step();
    for _ in 0..5 {
        w.advance(3600);
        w.run_until_settled();
    }
    assert_eq!(w.size(&v2), pods, "never scaled down");
    assert_eq!(w.route_weights(), (0, 100));
    assert_eq!(w.selects(CANARY_SVC), Some(v1));
}

#[test]
fn a_canary_abort_without_a_router_rolls_back_whatever_the_delay() {
    let (mut w, v1) = World::canary_deployed(
        json!({}),
        json!({"abortScaleDownDelaySeconds": 0, "steps": [{"setWeight": 30}, {"pause": {}}]}),
    );
    let v2 = w.set_image("app:2");
    w.step();
    w.make_ready(&v2);
    w.run_until_settled();
    assert!(w.size(&v2) > 0);
    w.abort();
    w.make_ready(&v1);
    w.run_until_settled();
    assert_eq!(
        w.size(&v2),
        0,
        "its pods are traffic: rolled back to stable"
    );
    assert_eq!(w.selects(CANARY_SVC), Some(v1));
}
