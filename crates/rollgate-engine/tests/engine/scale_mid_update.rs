//! `spec.replicas` changed in the middle of an update. Argo Rollouts resizes both sides at once
//! to the new total, keeping the step's weight (rollout/canary.go and bluegreen.go scale the
//! ReplicaSets to the new `spec.replicas` while the step is held): 8 -> 4 at setWeight 50 gives
//! 2 canary + 2 stable pods, not 8.
//!
//! Every `World::step` also checks the traffic invariant, consistency and idempotence.

use crate::support;

use rollgate_api::RolloutPhase;
use serde_json::json;
use support::{World, route_routing};

#[test]
fn a_canary_scaled_from_8_to_4_at_a_pause_keeps_its_weight_with_4_pods() {
    let (mut w, v1) = World::canary_deployed(
        json!({"replicas": 8}),
        json!({"steps": [{"setWeight": 50}, {"pause": {}}]}),
    );
    let v2 = w.set_image("app:2");
    for _ in 0..20 {
        w.make_all_ready();
        w.step();
    }
    assert_eq!(w.phase(), Some(RolloutPhase::Paused));
    assert_eq!((w.size(&v2), w.size(&v1)), (4, 4));
    w.edit_spec(|s| s.replicas = Some(4));
    for _ in 0..20 {
        w.make_all_ready();
        w.step();
    }
    assert_eq!(
        (w.size(&v2), w.size(&v1)),
        (2, 2),
        "4 pods in all, weight 50"
    );
    assert_eq!(w.phase(), Some(RolloutPhase::Paused));
    // And back up.
    w.edit_spec(|s| s.replicas = Some(10));
    for _ in 0..20 {
        w.make_all_ready();
        w.step();
    }
    assert_eq!((w.size(&v2), w.size(&v1)), (5, 5));
}

#[test]
fn a_routed_canary_scaled_down_mid_update_shrinks_both_sides() {
    let (mut w, v1) = World::canary_deployed(
        json!({"replicas": 8}),
        json!({"trafficRouting": route_routing(), "steps": [{"setWeight": 25}, {"pause": {}}]}),
    );
    let v2 = w.set_image("app:2");
    for _ in 0..20 {
        w.make_all_ready();
        w.step();
    }
    assert_eq!((w.size(&v2), w.size(&v1)), (2, 8));
    w.edit_spec(|s| s.replicas = Some(4));
    for _ in 0..20 {
        w.make_all_ready();
        w.step();
    }
    assert_eq!((w.size(&v2), w.size(&v1)), (1, 4));
    assert_eq!(w.route_weights(), (25, 75));
}

#[test]
fn a_blue_green_scaled_down_while_waiting_for_promotion_shrinks_preview_and_active() {
    let (mut w, v1) = World::deployed(
        json!({"replicas": 8}),
        json!({"autoPromotionEnabled": false}),
    );
    let v2 = w.set_image("app:2");
    for _ in 0..5 {
        w.make_all_ready();
        w.step();
    }
    assert_eq!((w.size(&v2), w.size(&v1)), (8, 8));
    w.edit_spec(|s| s.replicas = Some(4));
    for _ in 0..5 {
        w.make_all_ready();
        w.step();
    }
    assert_eq!((w.size(&v2), w.size(&v1)), (4, 4));
    assert_eq!(w.phase(), Some(RolloutPhase::Paused));
}
