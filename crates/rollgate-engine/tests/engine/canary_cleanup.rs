//! A routed canary's old stable ReplicaSets after completion: scaled down after
//! `scaleDownDelaySeconds`, and at most `scaleDownDelayRevisionLimit` of them waiting at once
//! (Argo Rollouts, canary feature page: the oldest beyond the limit are scaled down at once).
//!
//! Every `World::step` also checks the traffic invariant, consistency and idempotence.

use crate::support;

use serde_json::{Value, json};
use support::{World, route_routing};

fn release(w: &mut World, image: &str) -> String {
    let h = w.set_image(image);
    for _ in 0..20 {
        w.make_all_ready();
        w.step();
    }
    assert_eq!(w.status().stable_rs, Some(h.clone()), "{image} completed");
    h
}

fn routed(extra: Value) -> (World, String) {
    let mut canary = json!({"trafficRouting": route_routing(), "steps": [{"setWeight": 50}],
                            "scaleDownDelaySeconds": 600});
    rollgate_test_support::merge(&mut canary, extra);
    World::canary_deployed(json!({}), canary)
}

#[test]
fn old_stables_wait_for_the_delay_then_go() {
    let (mut w, v1) = routed(json!({}));
    release(&mut w, "app:2");
    assert_eq!(w.size(&v1), 10, "kept for scaleDownDelaySeconds");
    w.advance(600);
    w.run_until_settled();
    assert_eq!(w.size(&v1), 0);
}

#[test]
fn beyond_the_revision_limit_the_oldest_waiting_stable_goes_at_once() {
    let (mut w, v1) = routed(json!({"scaleDownDelayRevisionLimit": 1}));
    let v2 = release(&mut w, "app:2");
    assert_eq!(w.size(&v1), 10);
    release(&mut w, "app:3");
    assert_eq!(w.size(&v2), 10, "the newest old stable waits");
    assert_eq!(w.size(&v1), 0, "beyond scaleDownDelayRevisionLimit: 1");
}

#[test]
fn a_revision_limit_of_0_scales_old_stables_down_at_once() {
    let (mut w, v1) = routed(json!({"scaleDownDelayRevisionLimit": 0}));
    release(&mut w, "app:2");
    w.run_until_settled();
    assert_eq!(w.size(&v1), 0);
}
