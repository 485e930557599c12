//! `spec.replicas: 0`, as in Argo Rollouts, where scaling a Rollout to zero is ordinary (its
//! `kubectl argo rollouts` / `kubectl scale` users and HPAs do it): the spec is valid (Argo only
//! refuses `maxSurge` and `maxUnavailable` both written as 0, "MaxSurge and MaxUnavailable both
//! can not be zero"), a Rollout at 0 replicas is Healthy (Argo's phase calculation: no replica
//! left to update or to become available), a new revision at 0 replicas completes, scaling back
//! up works, and the Services keep selecting the stable revision.
//!
//! Each `World::step` also checks the traffic invariant, consistency and idempotence (see
//! `support`).

use crate::support;

use rollgate_api::RolloutPhase;
use serde_json::json;
use support::{ACTIVE, CANARY_SVC, PREVIEW, STABLE_SVC, World, manual, route_routing};

use RolloutPhase::{Degraded, Healthy, Paused};

fn steps() -> serde_json::Value {
    json!([{"setWeight": 20}, {"pause": {"duration": 30}}, {"setWeight": 50}])
}

fn set_replicas(w: &mut World, n: i32) {
    w.edit_spec(|s| s.replicas = Some(n));
}

#[test]
fn a_canary_at_zero_replicas_is_valid_and_healthy() {
    let mut w = World::canary(json!({"replicas": 0}), json!({"steps": steps()}));
    let v1 = w.hash_of("app:1");
    w.run_until_settled();
    let s = w.status();
    assert_eq!(s.phase, Some(Healthy), "{}", w.message());
    assert_eq!(s.stable_rs, Some(v1.clone()));
    assert_eq!(w.size(&v1), 0);
    assert_eq!(w.selects(STABLE_SVC), Some(v1.clone()));
    assert_eq!(w.selects(CANARY_SVC), Some(v1));
    assert!(!w.has_condition("InvalidSpec"));
    assert_eq!(w.cond("Available").0, "True", "0 of 0 pods are available");
}

#[test]
fn a_new_canary_revision_at_zero_replicas_completes() {
    for routed in [false, true] {
        let mut canary = json!({"steps": steps()});
        if routed {
            canary["trafficRouting"] = route_routing();
        }
        let (mut w, v1) = World::canary_deployed(json!({"replicas": 0}), canary);
        let v2 = w.set_image("app:2");
        w.run_until_settled();
        assert_eq!(w.phase(), Some(Paused), "the timed pause step still pauses");
        if routed {
            assert_eq!(w.route_weights(), (0, 100), "no pod carries a weight");
        }
        w.advance(30);
        w.run_until_settled();
        let s = w.status();
        assert_eq!(s.phase, Some(Healthy), "routed {routed}: {}", w.message());
        assert_eq!(s.stable_rs, Some(v2.clone()));
        assert_eq!(w.selects(STABLE_SVC), Some(v2.clone()));
        assert_eq!(w.selects(CANARY_SVC), Some(v2.clone()));
        assert_eq!((w.size(&v1), w.size(&v2)), (0, 0));
        if routed {
            assert_eq!(w.route_weights(), (0, 100));
        }
    }
}

#[test]
fn a_canary_scales_to_zero_and_back_keeping_its_services() {
    let (mut w, v1) = World::canary_deployed(json!({"replicas": 4}), json!({"steps": steps()}));
    set_replicas(&mut w, 0);
    w.run_until_settled();
    assert_eq!(w.phase(), Some(Healthy), "{}", w.message());
    assert_eq!(w.size(&v1), 0);
    assert_eq!(
        w.selects(STABLE_SVC),
        Some(v1.clone()),
        "selector kept at 0 pods"
    );
    assert_eq!(w.selects(CANARY_SVC), Some(v1.clone()));

    set_replicas(&mut w, 4);
    w.step();
    assert_eq!(w.phase(), Some(RolloutPhase::Progressing));
    w.run_until_settled();
    assert_eq!(w.phase(), Some(Healthy));
    assert_eq!(w.size(&v1), 4);
    assert_eq!(w.ready_of(&v1), 4);
    assert_eq!(w.selects(STABLE_SVC), Some(v1));
}

#[test]
fn both_sizes_written_as_zero_stay_invalid_at_zero_replicas() {
    for (surge, unavailable) in [(json!(0), json!(0)), (json!("0%"), json!(0))] {
        let mut w = World::canary(
            json!({"replicas": 0}),
            json!({"maxSurge": surge, "maxUnavailable": unavailable}),
        );
        let d = w.step();
        assert!(d.actions.is_empty());
        assert_eq!(w.phase(), Some(Degraded));
        assert_eq!(
            w.message(),
            "InvalidSpec: spec.strategy.canary.maxUnavailable: maxSurge and maxUnavailable \
             resolve to 0 pods each for 0 replicas: at least one must allow a pod, or the \
             release could never move"
        );
    }
}

#[test]
fn a_blue_green_rollout_at_zero_replicas_is_healthy_and_releases() {
    let mut bg = manual();
    bg["previewReplicaCount"] = json!(1);
    let mut w = World::new(json!({"replicas": 0}), bg);
    let v1 = w.hash_of("app:1");
    w.run_until_settled();
    assert_eq!(w.phase(), Some(Healthy), "{}", w.message());
    assert_eq!(w.status().stable_rs, Some(v1.clone()));
    assert_eq!(w.active(), Some(v1.clone()));

    let v2 = w.set_image("app:2");
    w.run_until_settled();
    assert_eq!(
        w.phase(),
        Some(Paused),
        "the manual promotion pause still applies"
    );
    assert_eq!(w.preview(), Some(v2.clone()));
    w.promote();
    w.run_until_settled();
    assert_eq!(w.phase(), Some(Healthy), "{}", w.message());
    assert_eq!(w.status().stable_rs, Some(v2.clone()));
    assert_eq!(w.active(), Some(v2.clone()));
    assert_eq!(w.preview(), Some(v2.clone()));

    // Back up: the active Service keeps selecting the revision while its pods come up (the
    // traffic invariant is about switching; the ReplicaSet it selects grows here).
    w.check_invariant = false;
    set_replicas(&mut w, 3);
    w.run_until_settled();
    w.check_invariant = true;
    w.step();
    assert_eq!(w.phase(), Some(Healthy));
    assert_eq!(w.size(&v2), 3);
    assert_eq!(w.active(), Some(v2.clone()));

    // And down to zero again.
    set_replicas(&mut w, 0);
    w.run_until_settled();
    assert_eq!(w.phase(), Some(Healthy));
    assert_eq!(w.size(&v2), 0);
    assert_eq!(w.active(), Some(v2.clone()));
    assert_eq!(
        w.observed
            .services
            .get(PREVIEW)
            .and_then(|s| s.selected_hash.clone()),
        Some(v2.clone())
    );
    assert!(w.observed.services.contains_key(ACTIVE));
}
