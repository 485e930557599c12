//! Canary traffic: replica-ratio weights at small replica counts and the actual weight they
//! give, `maxSurge` / `maxUnavailable` bounds at every step, superseding a release, and Gateway
//! API weights (only once the canary has the pods, abort, completion, `dynamicStableScale`).
//!
//! Every `World::step` also checks that route weights sum to 100 and that the route never gives
//! the canary Service a weight while its ReplicaSet has no ready pod, consistency and
//! idempotence (see `support`).

use crate::support;

use rollgate_api::RolloutPhase;
use rollgate_engine::{Action, DeadlineChange};
use serde_json::{Value, json};
use support::{Bounds, CANARY_SVC, STABLE_SVC, World, reasons, requeue, route_routing, rs_name};

/// Index of the first action matching `f` in `actions`.
fn position(actions: &[Action], what: &str, f: impl Fn(&Action) -> bool) -> usize {
    actions
        .iter()
        .position(f)
        .unwrap_or_else(|| panic!("no {what} in {actions:?}"))
}

fn is_route_to(a: &Action, weight: i32) -> bool {
    matches!(a, Action::SetRouteWeights { canary_weight, .. } if *canary_weight == weight)
}

fn is_scale(a: &Action, hash: &str, to: i32) -> bool {
    matches!(a, Action::UpdateReplicaSet { name, replicas: Some(r), .. } if *name == rs_name(hash) && *r == to)
}

fn scales_of(actions: &[Action], hash: &str) -> usize {
    actions
        .iter()
        .filter(|a| matches!(a, Action::UpdateReplicaSet { name, replicas: Some(_), .. } if *name == rs_name(hash)))
        .count()
}

// ----- weights by replica counts -----

#[test]
fn weights_round_up_to_a_pod_at_small_replica_counts() {
    // (replicas, setWeight, canary pods, stable pods, actual weight). Default maxSurge 25%
    // (rounded up: 1 pod for 1-4 replicas, 3 for 10) bounds canary + stable.
    let cases = [
        (1, 10, 1, 1, 50),
        (1, 50, 1, 1, 50),
        (1, 90, 1, 1, 50),
        (2, 10, 1, 2, 33),
        (2, 50, 1, 1, 50),
        (2, 75, 2, 1, 67),
        (3, 10, 1, 3, 25),
        (3, 34, 2, 2, 50),
        (3, 50, 2, 2, 50),
        (3, 67, 3, 1, 75),
        (10, 5, 1, 10, 9),
        (10, 25, 3, 8, 27),
        (10, 33, 4, 7, 36),
        (10, 50, 5, 5, 50),
        (10, 95, 10, 1, 91),
    ];
    for (replicas, weight, canary, stable, actual) in cases {
        let (mut w, v1) = World::canary_deployed(
            json!({"replicas": replicas}),
            json!({"steps": [{"setWeight": weight}, {"pause": {}}], "scaleDownDelaySeconds": 0}),
        );
        let v2 = w.set_image("app:2");
        w.run_until_settled();
        let case = format!("{replicas} replicas, setWeight {weight}");
        assert_eq!(w.step_index(), 1, "{case}: {}", w.message());
        assert_eq!((w.size(&v2), w.size(&v1)), (canary, stable), "{case}");
        assert_eq!(
            (w.ready_of(&v2), w.ready_of(&v1)),
            (canary, stable),
            "{case}"
        );
        assert_eq!(w.canary_weights(), (weight, actual), "{case}");
        let s = w.status();
        assert_eq!(s.replicas, Some(canary + stable), "{case}");
        assert_eq!(s.updated_replicas, Some(canary), "{case}");
        assert_eq!(s.available_replicas, Some(canary + stable), "{case}");
        // And the release completes from there.
        w.promote();
        w.run_until_settled();
        assert_eq!(w.status().stable_rs, Some(v2.clone()), "{case}");
        assert_eq!((w.size(&v2), w.size(&v1)), (replicas, 0), "{case}");
        assert_eq!(w.canary_weights(), (100, 100), "{case}");
    }
}

#[test]
fn the_actual_weight_is_the_canary_share_of_available_pods_as_they_become_ready() {
    let (mut w, v1) = World::canary_deployed(
        json!({}),
        json!({"steps": [{"setWeight": 50}, {"pause": {}}], "maxSurge": 5, "maxUnavailable": 0}),
    );
    let v2 = w.set_image("app:2");
    w.step();
    // maxUnavailable 0: the stable side keeps its 10 pods until canary pods are ready.
    assert_eq!((w.size(&v2), w.size(&v1)), (5, 10));
    assert_eq!(w.canary_weights(), (50, 0));
    let mut seen = Vec::new();
    for _ in 0..5 {
        w.one_more_ready_of(&v2);
        w.step();
        seen.push((w.ready_of(&v2), w.ready_of(&v1), w.canary_weights().1));
    }
    // Each ready canary pod lets one stable pod go (maxUnavailable 0); the actual weight is
    // the canary's share of what stays available once the scale-down is applied.
    assert_eq!(
        seen,
        [(1, 9, 10), (2, 8, 20), (3, 7, 30), (4, 6, 40), (5, 5, 50)]
    );
    assert_eq!(w.step_index(), 1);
    assert_eq!(w.canary_weights(), (50, 50));
}

// ----- maxSurge / maxUnavailable -----

/// Releases app:2 through four setWeight steps with `maxSurge` / `maxUnavailable` resolving
/// to `expect` and checks the bounds at every step while pods become ready one at a time.
fn bounded_release(replicas: i32, surge: Value, unavailable: Value, expect: (i32, i32)) {
    let steps = json!([{"setWeight": 10}, {"setWeight": 30}, {"setWeight": 60},
                       {"setWeight": 90}]);
    let (mut w, v1) = World::canary_deployed(
        json!({"replicas": replicas}),
        json!({"steps": steps, "maxSurge": surge, "maxUnavailable": unavailable,
               "scaleDownDelaySeconds": 0}),
    );
    let (max_surge, max_unavailable) = expect;
    let bounds = Bounds {
        min_available: replicas - max_unavailable,
        max_total: Some(replicas + max_surge),
    };
    w.assert_bounds(bounds, "deployed");
    let v2 = w.set_image("app:2");
    w.run_bounded(bounds, 200);
    let case = format!("{replicas} replicas, maxSurge {surge}, maxUnavailable {unavailable}");
    assert_eq!(
        w.status().stable_rs,
        Some(v2.clone()),
        "{case}: {}",
        w.message()
    );
    assert_eq!((w.size(&v2), w.size(&v1)), (replicas, 0), "{case}");
}

#[test]
fn releases_stay_within_max_surge_and_max_unavailable_at_every_step() {
    // (replicas, maxSurge, maxUnavailable, resolved (surge, unavailable))
    let cases = [
        (10, json!(1), json!(0), (1, 0)),
        (10, json!(0), json!(1), (0, 1)),
        (10, json!(3), json!(2), (3, 2)),
        (10, json!("50%"), json!("0%"), (5, 0)),
        (10, json!("0%"), json!("30%"), (0, 3)),
        (10, json!("25%"), json!("25%"), (3, 2)),
        (5, json!("25%"), json!("25%"), (2, 1)),
        (4, json!("10%"), json!("10%"), (1, 0)),
        (3, json!(0), json!(1), (0, 1)),
        (2, json!(1), json!(0), (1, 0)),
        (1, json!(0), json!(1), (0, 1)),
        (1, json!(1), json!(0), (1, 0)),
        (12, json!("100%"), json!("100%"), (12, 12)),
    ];
    for (replicas, surge, unavailable, expect) in cases {
        bounded_release(replicas, surge, unavailable, expect);
    }
}

#[test]
fn the_surge_bound_is_used_but_not_exceeded() {
    let (mut w, v1) = World::canary_deployed(
        json!({}),
        json!({"steps": [{"setWeight": 50}, {"pause": {}}], "maxSurge": 2, "maxUnavailable": 0}),
    );
    let v2 = w.set_image("app:2");
    w.step();
    assert_eq!(
        (w.size(&v2), w.size(&v1)),
        (2, 10),
        "two surge pods, no stable pod lost"
    );
    w.make_all_ready();
    w.step();
    assert_eq!((w.size(&v2), w.size(&v1)), (4, 8));
    w.make_all_ready();
    w.step();
    assert_eq!((w.size(&v2), w.size(&v1)), (5, 6));
    w.make_all_ready();
    w.step();
    assert_eq!((w.size(&v2), w.size(&v1)), (5, 5));
}

#[test]
fn aborting_keeps_max_unavailable_while_the_stable_side_comes_back() {
    let (mut w, v1) = World::canary_deployed(
        json!({}),
        json!({"steps": [{"setWeight": 60}, {"pause": {}}], "maxSurge": 1, "maxUnavailable": 1}),
    );
    let v2 = w.set_image("app:2");
    let bounds = Bounds {
        min_available: 9,
        max_total: Some(11),
    };
    w.run_bounded(bounds, 100);
    assert_eq!((w.size(&v2), w.size(&v1)), (6, 4));
    w.abort();
    // Going back to stable scales stable up at once (no surge bound), and the canary down
    // only as far as availability allows.
    let back = Bounds {
        min_available: 9,
        max_total: None,
    };
    w.run_bounded(back, 100);
    assert_eq!((w.size(&v2), w.size(&v1)), (0, 10));
    assert_eq!(w.phase(), Some(RolloutPhase::Degraded));
}

// ----- supersede -----

#[test]
fn a_new_image_mid_canary_supersedes_the_release_within_the_bounds() {
    let (mut w, v1) = World::canary_deployed(
        json!({}),
        json!({"steps": [{"setWeight": 50}, {"pause": {}}, {"setWeight": 80}],
               "maxSurge": 2, "maxUnavailable": 1}),
    );
    let bounds = Bounds {
        min_available: 9,
        max_total: Some(12),
    };
    let v2 = w.set_image("app:2");
    w.run_bounded(bounds, 100);
    assert_eq!(w.step_index(), 1);
    assert_eq!((w.size(&v2), w.size(&v1)), (5, 5));

    let v3 = w.set_image("app:3");
    let d = w.step();
    w.assert_bounds(bounds, "superseded");
    assert_eq!(reasons(&d)[0], "RolloutSuperseded");
    assert_eq!(
        w.notes("RolloutSuperseded"),
        [format!("Release of {v2} superseded by a newer revision")]
    );
    assert_eq!(w.notes("RolloutUpdated").len(), 2, "{:?}", w.reasons());
    assert_eq!(w.step_index(), 0, "the new release starts at step 0");
    assert_eq!(w.status().current_revision, Some(3));
    assert_eq!(w.selects(CANARY_SVC), Some(v3.clone()));
    assert_eq!(w.selects(STABLE_SVC), Some(v1.clone()));
    assert!(w.size(&v2) < 5, "the old canary goes down");
    w.run_bounded(bounds, 100);
    assert_eq!(w.step_index(), 1, "{}", w.message());
    assert_eq!((w.size(&v3), w.size(&v2), w.size(&v1)), (5, 0, 5));
    assert_eq!(w.canary_weights(), (50, 50));
    w.promote();
    w.run_bounded(bounds, 100);
    assert_eq!(w.status().stable_rs, Some(v3));
    assert_eq!(w.size(&v2), 0);
}

#[test]
fn a_superseded_canary_behind_a_router_loses_its_weight_before_its_pods_and_its_service() {
    let (mut w, v1) = World::canary_deployed(
        json!({}),
        json!({"trafficRouting": route_routing(),
               "steps": [{"setWeight": 30}, {"pause": {}}, {"setWeight": 60}]}),
    );
    let v2 = w.set_image("app:2");
    w.run_until_settled();
    assert_eq!(w.route_weights(), (30, 70));
    let v3 = w.set_image("app:3");
    let d = w.step();
    let route = position(&d.actions, "route to 0", |a| is_route_to(a, 0));
    let scale_down = position(&d.actions, "old canary to 0", |a| is_scale(a, &v2, 0));
    let switch = position(
        &d.actions,
        "canary Service switch",
        |a| matches!(a, Action::SwitchService { service, to, .. } if service == CANARY_SVC && *to == v3),
    );
    assert!(
        route < scale_down && route < switch,
        "the weight leaves the old canary first: {:?}",
        d.actions
    );
    assert_eq!(w.route_weights(), (0, 100));
    assert_eq!(w.selects(CANARY_SVC), Some(v3.clone()));
    assert!(reasons(&d).contains(&"RolloutSuperseded"));
    assert_eq!(w.step_index(), 0);
    assert_eq!(w.size(&v1), 10, "stable untouched");
    w.make_all_ready();
    w.step();
    assert_eq!(
        w.route_weights(),
        (30, 70),
        "the new canary gets the weight once ready"
    );
    w.run_until_settled();
    assert_eq!(w.step_index(), 1);
    assert_eq!((w.size(&v3), w.size(&v2)), (3, 0));
}

#[test]
fn going_back_to_the_stable_template_mid_canary_needs_no_release() {
    for routed in [false, true] {
        let mut canary = json!({"steps": [{"setWeight": 30}, {"pause": {}}]});
        if routed {
            canary["trafficRouting"] = route_routing();
        }
        let (mut w, v1) = World::canary_deployed(json!({}), canary);
        let v2 = w.set_image("app:2");
        w.run_until_settled();
        w.set_image("app:1");
        let d = w.step();
        assert_eq!(reasons(&d)[0], "SkipSteps", "routed {routed}");
        assert_eq!(w.selects(CANARY_SVC), Some(v1.clone()));
        assert_eq!(w.route_weights(), (0, 100));
        w.run_until_settled();
        assert_eq!(w.phase(), Some(RolloutPhase::Healthy), "routed {routed}");
        assert_eq!((w.size(&v1), w.size(&v2)), (10, 0));
        // The stable revision's ReplicaSet is renumbered, as any template re-applied.
        assert_eq!(w.status().current_revision, Some(3));
        assert_eq!(w.rs(&v1).revision, 3);
        assert_eq!(w.canary_weights(), (100, 100));
    }
}

// ----- Gateway API -----

fn routed(extra: Value) -> (World, String) {
    let mut canary = json!({"trafficRouting": route_routing(),
                            "steps": [{"setWeight": 30}, {"pause": {}}, {"setWeight": 60},
                                      {"pause": {}}]});
    rollgate_test_support::merge(&mut canary, extra);
    World::canary_deployed(json!({}), canary)
}

#[test]
fn the_route_weight_rises_only_once_the_canary_has_the_ready_pods_for_it() {
    let (mut w, v1) = routed(json!({}));
    let v2 = w.set_image("app:2");
    w.step();
    assert_eq!(w.size(&v2), 3);
    for ready in 1..3 {
        w.set_ready(&v2, ready);
        let d = w.step();
        assert_eq!(w.route_weights(), (0, 100), "{ready}/3 ready");
        assert!(d.actions.is_empty());
        assert_eq!(w.canary_weights(), (30, 0));
        assert_eq!(
            w.message(),
            format!(
                "Step 1/4 setWeight 30: canary ReplicaSet web-{v2} {ready}/3 pods available, stable 10/10"
            )
        );
    }
    w.set_ready(&v2, 3);
    let d = w.step();
    assert_eq!(w.route_weights(), (30, 70));
    assert_eq!(
        w.notes("TrafficWeightUpdated"),
        [
            "HTTPRoute shop/web-route: canary web-canary weight 0 -> 30, stable web-stable weight 100 -> 70"
        ]
    );
    assert!(reasons(&d).contains(&"RolloutStepCompleted"));
    assert_eq!(w.canary_weights(), (30, 30));
    assert_eq!(w.step_index(), 1);
    w.promote();
    w.step();
    assert_eq!(w.size(&v2), 6);
    for ready in 4..6 {
        w.set_ready(&v2, ready);
        w.step();
        assert_eq!(w.route_weights(), (30, 70), "{ready}/6 ready");
        assert_eq!(w.step_index(), 2);
    }
    w.set_ready(&v2, 6);
    w.step();
    assert_eq!(w.route_weights(), (60, 40));
    assert_eq!(w.step_index(), 3);
    assert_eq!(w.size(&v1), 10, "stable keeps every pod behind a router");
}

#[test]
fn a_falling_weight_leaves_the_pods_before_they_go() {
    let (mut w, v1) = World::canary_deployed(
        json!({}),
        json!({"trafficRouting": route_routing(),
               "steps": [{"setWeight": 60}, {"pause": {}}, {"setWeight": 20}, {"pause": {}}]}),
    );
    let v2 = w.set_image("app:2");
    w.run_until_settled();
    assert_eq!(w.route_weights(), (60, 40));
    w.promote();
    let d = w.step();
    let route = position(&d.actions, "route to 20", |a| is_route_to(a, 20));
    let scale = position(&d.actions, "canary to 2", |a| is_scale(a, &v2, 2));
    assert!(route < scale, "route first: {:?}", d.actions);
    assert_eq!(w.route_weights(), (20, 80));
    w.run_until_settled();
    assert_eq!(w.step_index(), 3);
    assert_eq!((w.size(&v2), w.size(&v1)), (2, 10));
}

#[test]
fn abort_puts_the_route_at_zero_at_once_and_leaves_stable_alone() {
    let (mut w, v1) = routed(json!({"abortScaleDownDelaySeconds": 45}));
    let v2 = w.set_image("app:2");
    w.run_until_settled();
    w.promote();
    w.step();
    w.set_ready(&v2, 4);
    w.step();
    assert_eq!(w.route_weights(), (30, 70), "scaling towards 60");
    w.abort();
    let d = w.step();
    assert_eq!(w.route_weights(), (0, 100));
    assert_eq!(
        scales_of(&d.actions, &v1),
        0,
        "stable untouched: {:?}",
        d.actions
    );
    assert_eq!(
        scales_of(&d.actions, &v2),
        0,
        "the canary stays for the abort delay"
    );
    assert!(d.actions.contains(&Action::UpdateReplicaSet {
        name: rs_name(&v2),
        replicas: None,
        deadline: DeadlineChange::Set(w.at(45)),
        revision: None,
    }));
    assert_eq!(d.requeue_after, requeue(45));
    assert_eq!(w.phase(), Some(RolloutPhase::Degraded));
    assert_eq!(w.canary_weights(), (0, 0));
    assert_eq!(
        w.message(),
        format!(
            "Aborted by user (status.abort): canary weight back to 0, traffic on stable revision {v1}"
        )
    );
    assert_eq!(w.selects(STABLE_SVC), Some(v1.clone()));
    w.make_all_ready();
    w.advance(44);
    w.step();
    assert_eq!(w.size(&v2), 6);
    w.advance(1);
    w.run_until_settled();
    assert_eq!((w.size(&v2), w.size(&v1)), (0, 10));
    assert_eq!(w.route_weights(), (0, 100));
}

#[test]
fn completion_switches_the_stable_service_then_puts_the_route_back_on_it() {
    let (mut w, v1) = routed(json!({"scaleDownDelaySeconds": 20}));
    let v2 = w.set_image("app:2");
    w.run_until_settled();
    w.promote();
    w.run_until_settled();
    assert_eq!(w.route_weights(), (60, 40));
    w.promote();
    w.step();
    assert_eq!(w.size(&v2), 10, "finishing: canary at full size");
    assert_eq!(w.route_weights(), (60, 40), "not before the pods are ready");
    w.set_ready(&v2, 9);
    w.step();
    assert_eq!(w.status().stable_rs, Some(v1.clone()));
    w.set_ready(&v2, 10);
    let d = w.step();
    assert_eq!(w.status().stable_rs, Some(v2.clone()));
    let switch = position(
        &d.actions,
        "stable Service switch",
        |a| matches!(a, Action::SwitchService { service, to, .. } if service == STABLE_SVC && *to == v2),
    );
    let route = position(&d.actions, "route to 0", |a| is_route_to(a, 0));
    assert!(switch < route, "{:?}", d.actions);
    assert_eq!(w.route_weights(), (0, 100));
    assert_eq!(w.selects(STABLE_SVC), Some(v2.clone()));
    assert_eq!(w.selects(CANARY_SVC), Some(v2.clone()));
    assert_eq!(w.phase(), Some(RolloutPhase::Healthy));
    assert_eq!(w.canary_weights(), (100, 100));
    assert_eq!(
        w.notes("RolloutCompleted").last().cloned(),
        Some(format!(
            "Revision {v2} is stable; previous revision {v1} scales down in 20s"
        ))
    );
    assert_eq!(
        d.requeue_after,
        requeue(20),
        "wakes for the previous stable's scale-down"
    );
    assert_eq!(w.size(&v1), 10);
    w.advance(20);
    w.run_until_settled();
    assert_eq!(w.size(&v1), 0);
    assert_eq!(w.phase(), Some(RolloutPhase::Healthy));
}

#[test]
fn dynamic_stable_scale_follows_the_route_down_and_comes_back_on_abort() {
    let (mut w, v1) = routed(json!({"dynamicStableScale": true}));
    let v2 = w.set_image("app:2");
    w.step();
    assert_eq!(w.size(&v1), 10, "no weight yet: stable keeps its pods");
    w.make_all_ready();
    let d = w.step();
    assert_eq!(w.route_weights(), (30, 70));
    assert_eq!(w.size(&v1), 7, "stable follows the route");
    let route = position(&d.actions, "route to 30", |a| is_route_to(a, 30));
    let shrink = position(&d.actions, "stable to 7", |a| is_scale(a, &v1, 7));
    assert!(
        route < shrink,
        "traffic leaves the stable pods first: {:?}",
        d.actions
    );
    w.run_until_settled();
    w.promote();
    w.run_until_settled();
    assert_eq!(w.route_weights(), (60, 40));
    assert_eq!((w.size(&v2), w.size(&v1)), (6, 4));
    assert_eq!(w.available_pods(), 10);

    // Abort: stable back to full size at once; the route gives it back only what its ready
    // pods carry (4 of 10: 40%), the rest as they come up.
    w.abort();
    let d = w.step();
    assert!(
        d.actions.iter().any(|a| is_scale(a, &v1, 10)),
        "stable back to full size at once: {:?}",
        d.actions
    );
    assert_eq!(w.route_weights(), (60, 40));
    assert_eq!(w.phase(), Some(RolloutPhase::Degraded));
    assert_eq!(
        w.message(),
        format!(
            "Aborted by user (status.abort): canary weight back to 0, traffic on stable revision \
             {v1} (waiting for the stable ReplicaSet to be fully available)"
        )
    );
    w.set_ready(&v1, 7);
    w.step();
    assert_eq!(w.route_weights(), (30, 70));
    assert_eq!(w.canary_weights(), (0, 30));
    w.set_ready(&v1, 10);
    let d = w.step();
    assert_eq!(w.route_weights(), (0, 100));
    assert!(!w.message().contains("waiting"), "{}", w.message());
    // The canary kept its pods while it had weight; its scale-down delay starts now.
    assert_eq!(w.size(&v2), 6);
    assert_eq!(d.requeue_after, requeue(30));
    w.advance(30);
    w.run_until_settled();
    assert_eq!((w.size(&v2), w.size(&v1)), (0, 10));
}

#[test]
fn dynamic_stable_scale_never_routes_to_a_stable_side_without_pods() {
    let (mut w, v1) = World::canary_deployed(
        json!({}),
        json!({"trafficRouting": route_routing(), "dynamicStableScale": true,
               "steps": [{"setWeight": 100}, {"pause": {}}]}),
    );
    let v2 = w.set_image("app:2");
    w.run_until_settled();
    assert_eq!(w.step_index(), 1);
    assert_eq!(w.route_weights(), (100, 0));
    assert_eq!(
        (w.size(&v2), w.size(&v1)),
        (10, 0),
        "the stable side has no pod left"
    );
    w.abort();
    w.step();
    assert_eq!(
        w.route_weights(),
        (100, 0),
        "no traffic to a stable side without pods"
    );
    assert_eq!(w.size(&v1), 10);
    for ready in [1, 5, 10] {
        w.set_ready(&v1, ready);
        w.step();
        assert_eq!(w.route_weights(), (100 - ready * 10, ready * 10));
    }
    // Retried: the first step's weight is reached again, the stable side shrinking after it.
    w.retry();
    w.step();
    w.make_all_ready();
    w.step();
    assert_eq!(w.route_weights(), (100, 0));
    assert_eq!(w.size(&v1), 0);
    // Abort again, then retry before the stable side is back: the weight falls to the
    // first step's only as the stable pods come up.
    w.abort();
    w.step();
    w.retry();
    w.step();
    assert_eq!(w.route_weights(), (100, 0));
}

#[test]
fn dynamic_stable_scale_completes_and_scales_the_old_stable_down_after_the_delay() {
    let (mut w, v1) = routed(json!({"dynamicStableScale": true, "scaleDownDelaySeconds": 10}));
    let v2 = w.set_image("app:2");
    for _ in 0..2 {
        w.run_until_settled();
        w.promote();
    }
    w.step();
    let mut d = w.step();
    while w.status().stable_rs.as_deref() != Some(v2.as_str()) {
        w.one_more_ready_of(&v2);
        d = w.step();
    }
    // The previous stable serves until the stable Service and the route have moved.
    assert!(
        d.actions.iter().all(|a| !is_scale(a, &v1, 0)),
        "{:?}",
        d.actions
    );
    assert_eq!(w.size(&v1), 4);
    assert_eq!(d.requeue_after, requeue(10));
    assert_eq!(w.route_weights(), (0, 100));
    assert_eq!(w.selects(STABLE_SVC), Some(v2.clone()));
    w.advance(10);
    w.run_until_settled();
    assert_eq!((w.size(&v2), w.size(&v1)), (10, 0));
    assert_eq!(w.phase(), Some(RolloutPhase::Healthy));
}

#[test]
fn a_lower_weight_held_back_by_a_short_stable_side_keeps_the_canary_pods() {
    let (mut w, v1) = World::canary_deployed(
        json!({"replicas": 6}),
        json!({"trafficRouting": route_routing(), "dynamicStableScale": true,
               "maxSurge": 0, "maxUnavailable": 1,
               "steps": [{"setWeight": 17}, {"pause": {}}, {"setWeight": 0}, {"pause": {}}]}),
    );
    let v2 = w.set_image("app:2");
    w.run_until_settled();
    assert_eq!(w.route_weights(), (17, 83));
    assert_eq!((w.size(&v2), w.size(&v1)), (2, 5));
    w.promote();
    let d = w.step();
    // 5 stable pods of 6 carry 83%: the canary keeps 17% and the pods for it until the stable
    // side has grown back.
    assert_eq!(w.route_weights(), (17, 83));
    assert_eq!(w.size(&v2), 2, "{:?}", d.actions);
    assert_eq!(w.size(&v1), 6);
    assert_eq!(w.step_index(), 2);
    w.make_ready(&v1);
    let d = w.step();
    let route = position(&d.actions, "route to 0", |a| is_route_to(a, 0));
    let scale = position(&d.actions, "canary to 0", |a| is_scale(a, &v2, 0));
    assert!(route < scale, "{:?}", d.actions);
    assert_eq!(w.route_weights(), (0, 100));
    w.run_until_settled();
    assert_eq!(w.step_index(), 3);
    assert_eq!((w.size(&v2), w.size(&v1)), (0, 6));
}

#[test]
fn a_fast_rollback_completing_at_once_moves_the_route_before_scaling_the_superseded_canary() {
    let (mut w, v1) = World::canary_deployed(
        json!({"replicas": 1}),
        json!({"trafficRouting": route_routing(), "maxSurge": 1, "maxUnavailable": 0,
               "steps": [{"setWeight": 1}, {"pause": {}}]}),
    );
    // app:3 is released and aborted: its ReplicaSet keeps its pod for the abort delay.
    let v3 = w.set_image("app:3");
    w.step();
    w.abort();
    w.step();
    // app:2 supersedes it and gets 1% once ready.
    let v2 = w.set_image("app:2");
    w.step();
    w.make_all_ready();
    w.step();
    assert_eq!(w.route_weights(), (1, 99));
    assert_eq!(w.selects(CANARY_SVC), Some(v2.clone()));
    // Back to app:3, whose ReplicaSet still exists with a ready pod: a fast rollback that
    // completes in this very reconcile.
    w.set_image("app:3");
    let d = w.step();
    assert!(reasons(&d).contains(&"SkipSteps"));
    assert_eq!(w.status().stable_rs, Some(v3.clone()), "{}", w.message());
    let route = position(&d.actions, "route to 0", |a| is_route_to(a, 0));
    let scale = position(&d.actions, "app:2 to 0", |a| is_scale(a, &v2, 0));
    assert!(
        route < scale,
        "the weight leaves app:2 before its pod: {:?}",
        d.actions
    );
    assert_eq!(w.route_weights(), (0, 100));
    assert_eq!(w.selects(STABLE_SVC), Some(v3));
    w.advance(30);
    w.run_until_settled();
    assert_eq!((w.size(&v1), w.size(&v2)), (0, 0));
}
