//! The canary strategy: steps, replica-ratio and Gateway API traffic, finish, abort.

use crate::support;

use rollgate_api::{AnalysisPhase, RolloutPhase};
use rollgate_engine::AnalysisKind;
use serde_json::json;
use support::{CANARY_SVC, STABLE_SVC, World, analysis, route_routing};

#[test]
fn first_deploy_is_healthy_with_both_services_on_the_first_revision() {
    let (w, v1) = World::canary_deployed(json!({}), json!({"steps": [{"setWeight": 20}]}));
    assert_eq!(w.phase(), Some(RolloutPhase::Healthy));
    assert_eq!(w.selects(CANARY_SVC), Some(v1.clone()));
    assert_eq!(w.selects(STABLE_SVC), Some(v1.clone()));
    assert_eq!(w.rs(&v1).replicas, 10);
    assert_eq!(w.canary_weights(), (100, 100));
    assert_eq!(w.status().strategy.as_deref(), Some("Canary"));
}

#[test]
fn a_five_step_replica_canary_completes() {
    let (mut w, v1) = World::canary_deployed(
        json!({}),
        json!({"steps": [{"setWeight": 20}, {"pause": {"duration": "1m"}}, {"setWeight": 50},
                         {"pause": {}}, {"setWeight": 80}],
               "scaleDownDelaySeconds": 0}),
    );
    let v2 = w.set_image("app:2");
    w.run_until_settled();
    // setWeight 20 reached (2 canary, 8 stable), now pausing for a minute.
    assert_eq!(w.rs(&v2).replicas, 2);
    assert_eq!(w.rs(&v1).replicas, 8);
    assert_eq!(w.step_index(), 1);
    assert_eq!(w.phase(), Some(RolloutPhase::Paused));
    assert_eq!(w.canary_weights(), (20, 20));
    assert_eq!(w.selects(CANARY_SVC), Some(v2.clone()));
    assert_eq!(w.selects(STABLE_SVC), Some(v1.clone()));
    w.advance(61);
    w.run_until_settled();
    assert_eq!(w.step_index(), 3, "{}", w.message());
    assert_eq!((w.rs(&v2).replicas, w.rs(&v1).replicas), (5, 5));
    assert_eq!(w.phase(), Some(RolloutPhase::Paused));
    w.promote();
    w.run_until_settled();
    assert_eq!(w.status().stable_rs, Some(v2.clone()), "{}", w.message());
    assert_eq!(w.phase(), Some(RolloutPhase::Healthy));
    assert_eq!(w.rs(&v2).replicas, 10);
    assert_eq!(w.rs(&v1).replicas, 0);
    assert_eq!(w.selects(STABLE_SVC), Some(v2));
}

#[test]
fn gateway_weights_follow_the_steps_once_pods_are_ready() {
    let (mut w, v1) = World::canary_deployed(
        json!({}),
        json!({"trafficRouting": route_routing(),
               "steps": [{"setWeight": 30}, {"pause": {}}, {"setWeight": 60}, {"pause": {}}]}),
    );
    assert_eq!(w.route_weights(), (0, 100));
    let v2 = w.set_image("app:2");
    w.step();
    assert_eq!(
        w.route_weights(),
        (0, 100),
        "no weight before pods are ready"
    );
    assert_eq!(w.rs(&v2).replicas, 3);
    assert_eq!(
        w.rs(&v1).replicas,
        10,
        "stable keeps every pod behind a router"
    );
    w.make_all_ready();
    w.step();
    assert_eq!(w.route_weights(), (30, 70));
    w.run_until_settled();
    assert_eq!(w.step_index(), 1);
    w.promote();
    w.run_until_settled();
    assert_eq!(w.route_weights(), (60, 40));
    assert_eq!(w.canary_weights(), (60, 60));
    // Abort: weight back to 0 in the same reconcile, stable untouched.
    w.abort();
    let d = w.step();
    assert_eq!(w.route_weights(), (0, 100));
    assert_eq!(w.rs(&v1).replicas, 10);
    assert_eq!(w.phase(), Some(RolloutPhase::Degraded));
    assert!(
        d.actions
            .iter()
            .all(|a| !matches!(a, rollgate_engine::Action::UpdateReplicaSet { name, replicas: Some(_), .. } if name.ends_with(&v1)))
    );
    // The canary goes after abortScaleDownDelaySeconds (30).
    assert_eq!(w.rs(&v2).replicas, 6);
    w.advance(31);
    w.run_until_settled();
    assert_eq!(w.rs(&v2).replicas, 0);
}

#[test]
fn failed_step_analysis_aborts_and_a_retry_starts_from_the_first_step() {
    let (mut w, v1) = World::canary_deployed(
        json!({}),
        json!({"steps": [{"setWeight": 20}, {"analysis": analysis()}, {"setWeight": 50}]}),
    );
    let v2 = w.set_image("app:2");
    w.run_until_settled();
    assert_eq!(w.step_index(), 1);
    w.set_run_phase(AnalysisKind::Step, AnalysisPhase::Failed);
    w.step();
    assert_eq!(w.phase(), Some(RolloutPhase::Degraded));
    assert_eq!(
        w.rs(&v2).replicas,
        0,
        "canary pods are traffic: removed at once"
    );
    assert_eq!(w.rs(&v1).replicas, 10);
    w.run_until_settled();
    w.retry();
    w.run_until_settled();
    assert_eq!(w.step_index(), 1);
    assert_eq!(w.phase(), Some(RolloutPhase::Progressing));
    w.set_run_phase(AnalysisKind::Step, AnalysisPhase::Successful);
    w.run_until_settled();
    assert_eq!(w.status().stable_rs, Some(v2));
}

/// Pods every ReplicaSet of the world asks for.
fn pods_asked(w: &World) -> i32 {
    w.observed.replica_sets.iter().map(|rs| rs.replicas).sum()
}

/// Steps, applying actions one by one, and returns the most pods asked for at any point.
fn step_peak(w: &mut World) -> i32 {
    let mut replay = w.clone();
    let d = w.step();
    let mut peak = pods_asked(&replay);
    for a in &d.actions {
        replay.apply(a);
        peak = peak.max(pods_asked(&replay));
    }
    peak
}

#[test]
fn an_abort_without_a_router_stays_within_the_surge() {
    // 4 replicas, maxSurge 1, maxUnavailable 0: never more than 5 pods.
    let (mut w, _) = World::canary_deployed(
        json!({"replicas": 4}),
        json!({"canaryService": null, "stableService": null, "maxSurge": 1,
               "maxUnavailable": 0, "steps": [{"setWeight": 50}, {"pause": {}}]}),
    );
    w.set_image("app:2");
    let mut peak = 0;
    for _ in 0..12 {
        peak = peak.max(step_peak(&mut w));
        w.one_more_ready();
    }
    assert_eq!(
        w.phase(),
        Some(rollgate_api::RolloutPhase::Paused),
        "{}",
        w.message()
    );
    w.abort();
    for _ in 0..12 {
        peak = peak.max(step_peak(&mut w));
        w.one_more_ready();
    }
    assert!(
        peak <= 5,
        "{peak} pods asked for with maxSurge 1 on 4 replicas"
    );
    assert_eq!(w.size(&w.hash_of("app:1")), 4);
    assert_eq!(w.size(&w.hash_of("app:2")), 0);
}

#[test]
fn a_second_revision_before_the_first_is_ready_is_not_a_second_first_deploy() {
    let mut w = World::canary(
        json!({"replicas": 4}),
        json!({"maxSurge": 1, "maxUnavailable": 0, "steps": [{"setWeight": 50}]}),
    );
    w.crash("app:1");
    w.step();
    w.make_all_ready();
    w.crash("app:2");
    w.set_image("app:2");
    let mut peak = 0;
    for _ in 0..6 {
        peak = peak.max(step_peak(&mut w));
        w.make_all_ready();
    }
    assert!(
        peak <= 5,
        "{peak} pods asked for with maxSurge 1 on 4 replicas"
    );
}
