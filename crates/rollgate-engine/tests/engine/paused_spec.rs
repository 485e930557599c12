//! `spec.paused`, at creation or later, for both strategies, as in Argo Rollouts.
//!
//! What Argo Rollouts does (docs, features/specification.md, field `paused`): "A rollout will
//! not advance through its steps while it is manually paused, but HPA auto-scaling will still
//! occur ... If true at initial creation of Rollout, replicas are not scaled up automatically
//! from zero unless manually promoted." Its status then reports phase `Paused` (message
//! "manually paused") whenever `spec.paused` is set and the rollout is not Degraded, the
//! `Paused` condition is True with reason `RolloutPaused`, and "progress will not be
//! estimated during the time a rollout is paused" (`progressDeadlineSeconds`). Setting it back
//! to false continues from where the rollout stopped.
//!
//! Each `World::step` also checks the traffic invariant, consistency and idempotence (see
//! `support`).

use crate::support;

use rollgate_api::RolloutPhase;
use serde_json::json;
use support::{
    ACTIVE, CANARY_SVC, PREVIEW, STABLE_SVC, World, manual, reasons, route_routing, scale, summary,
    switch,
};

use RolloutPhase::{Degraded, Healthy, Paused};

fn unpause(w: &mut World) {
    w.edit_spec(|s| s.paused = Some(false));
}

fn pause(w: &mut World) {
    w.edit_spec(|s| s.paused = Some(true));
}

// ----- created paused -----

/// Argo: "If true at initial creation of Rollout, replicas are not scaled up automatically
/// from zero": the ReplicaSet exists without pods, no Service moves, phase Paused.
#[test]
fn a_blue_green_rollout_created_paused_creates_its_replica_set_without_pods() {
    let mut w = World::new(json!({"paused": true}), json!({}));
    let v1 = w.hash_of("app:1");
    let d = w.step();
    assert_eq!(summary(&d), [format!("create rs web-{v1} x0")]);
    assert_eq!(d.requeue_after, None, "no progress deadline while paused");
    for _ in 0..3 {
        w.advance(3600);
        w.make_all_ready();
        let d = w.step();
        assert!(d.actions.is_empty(), "{:?}", d.actions);
    }
    let s = w.status();
    assert_eq!(s.phase, Some(Paused));
    assert_eq!(
        w.message(),
        format!(
            "Paused (spec.paused is true): the first revision's ReplicaSet web-{v1} stays at \
             0/3 pods until `rollgate resume web`"
        )
    );
    assert_eq!(w.cond("Paused"), ("True".into(), "RolloutPaused".into()));
    assert_eq!(w.cond("Healthy").0, "False");
    assert_eq!(s.stable_rs, None, "nothing becomes stable while paused");
    assert!(s.pause_conditions.is_empty(), "not a controller pause");
    assert_eq!(w.size(&v1), 0);
    assert_eq!(w.active(), None, "the active Service does not move");
    assert_eq!(w.preview(), None);

    // Argo: setting paused back to false continues.
    unpause(&mut w);
    let d = w.step();
    assert_eq!(d.actions[0], scale(&v1, 3));
    assert!(d.actions.contains(&switch(ACTIVE, None, &v1)));
    assert!(d.actions.contains(&switch(PREVIEW, None, &v1)));
    w.run_until_settled();
    assert_eq!(w.phase(), Some(Healthy));
    assert_eq!(w.status().stable_rs, Some(v1.clone()));
    assert_eq!(w.cond("Paused"), ("False".into(), "RolloutPaused".into()));
    assert_eq!(w.size(&v1), 3);
}

#[test]
fn a_canary_rollout_created_paused_creates_its_replica_set_without_pods() {
    let mut w = World::canary(
        json!({"paused": true}),
        json!({"steps": [{"setWeight": 20}, {"pause": {}}], "trafficRouting": route_routing()}),
    );
    let v1 = w.hash_of("app:1");
    let d = w.step();
    assert_eq!(summary(&d), [format!("create rs web-{v1} x0")]);
    assert_eq!(d.requeue_after, None);
    w.advance(3600);
    assert!(w.step().actions.is_empty());
    assert_eq!(w.phase(), Some(Paused));
    assert_eq!(w.cond("Paused"), ("True".into(), "RolloutPaused".into()));
    assert_eq!(w.status().stable_rs, None);
    assert_eq!(w.selects(CANARY_SVC), None, "no Service moves");
    assert_eq!(w.selects(STABLE_SVC), None);
    assert_eq!(w.route_weights(), (0, 100));

    unpause(&mut w);
    w.run_until_settled();
    assert_eq!(w.phase(), Some(Healthy));
    assert_eq!(w.status().stable_rs, Some(v1.clone()));
    assert_eq!(w.size(&v1), 10);
    assert_eq!(w.selects(STABLE_SVC), Some(v1.clone()));
    assert_eq!(w.selects(CANARY_SVC), Some(v1));
}

/// Paused in the middle of a first deploy: the pods asked for stay (nothing is scaled down),
/// but the revision does not become stable until the pause ends.
#[test]
fn paused_during_the_first_deploy_keeps_its_pods_and_waits() {
    let mut w = World::new(json!({}), json!({}));
    let v1 = w.hash_of("app:1");
    w.step();
    assert_eq!(w.size(&v1), 3);
    pause(&mut w);
    w.make_all_ready();
    assert!(w.step().actions.is_empty());
    assert_eq!(w.phase(), Some(Paused));
    assert_eq!(w.status().stable_rs, None);
    unpause(&mut w);
    w.run_until_settled();
    assert_eq!(w.phase(), Some(Healthy));
    assert_eq!(w.status().stable_rs, Some(v1));
}

// ----- paused later -----

/// Argo reports phase Paused for a paused rollout even with nothing in flight; the stable
/// revision keeps serving (and scaling: "HPA auto-scaling will still occur").
#[test]
fn a_healthy_rollout_paused_reports_paused_and_still_scales() {
    let (mut w, v1) = World::deployed(json!({}), json!({}));
    pause(&mut w);
    let d = w.step();
    assert!(d.actions.is_empty());
    assert_eq!(w.phase(), Some(Paused));
    assert_eq!(
        w.message(),
        format!(
            "Paused (spec.paused is true): revision {v1} serves with 3/3 pods; no new revision \
             is released until `rollgate resume web`"
        )
    );
    assert_eq!(w.cond("Paused"), ("True".into(), "RolloutPaused".into()));
    assert_eq!(
        w.cond("Completed").0,
        "True",
        "the stable revision is complete"
    );
    assert_eq!(
        w.cond("Healthy").0,
        "False",
        "Argo: not Healthy while paused"
    );

    // Scaling down while paused happens.
    w.edit_spec(|s| s.replicas = Some(2));
    w.run_until_settled();
    assert_eq!(w.size(&v1), 2);
    assert_eq!(w.phase(), Some(Paused));

    unpause(&mut w);
    w.step();
    assert_eq!(w.phase(), Some(Healthy));
}

/// A new revision of a paused blue/green rollout: the preview comes up, but past
/// `progressDeadlineSeconds` without ready pods the release is not aborted (Argo: no progress
/// is estimated while paused).
#[test]
fn a_paused_blue_green_release_waiting_for_preview_pods_runs_no_deadline() {
    let (mut w, v1) = World::deployed(json!({"progressDeadlineSeconds": 60}), json!({}));
    pause(&mut w);
    w.step();
    let v2 = w.crash("app:2");
    w.set_image("app:2");
    let d = w.step();
    assert_eq!(summary(&d)[1], format!("create rs web-{v2} x3"));
    assert_eq!(d.requeue_after, None, "no deadline timer while paused");
    for _ in 0..3 {
        w.advance(600);
        w.make_all_ready();
        let d = w.step();
        assert!(d.actions.is_empty(), "{:?}", reasons(&d));
    }
    assert_eq!(w.phase(), Some(Paused));
    assert_eq!(w.status().abort_reason, None);
    assert_eq!(w.active(), Some(v1));
    assert_eq!(w.preview(), Some(v2));
}

/// Paused after the promotion started (a manual pause promoted, the new revision scaling to
/// full): the active Service does not move until the pause ends.
#[test]
fn paused_after_the_promotion_started_holds_the_active_switch() {
    let mut bg = manual();
    bg["previewReplicaCount"] = json!(1);
    let (mut w, v1) = World::deployed(json!({}), bg);
    let v2 = w.set_image("app:2");
    w.step();
    w.make_ready(&v2);
    w.step();
    assert_eq!(w.phase(), Some(Paused));
    w.promote();
    w.step();
    assert_eq!(w.size(&v2), 3, "promoted: scaling to full");
    pause(&mut w);
    w.make_all_ready();
    for _ in 0..2 {
        let d = w.step();
        assert!(d.actions.is_empty(), "{:?}", d.actions);
    }
    assert_eq!(w.active(), Some(v1.clone()), "held while paused");
    assert_eq!(w.phase(), Some(Paused));
    assert_eq!(
        w.message(),
        "Paused (spec.paused is true): set it to false to continue"
    );

    unpause(&mut w);
    let d = w.step();
    assert_eq!(d.actions[0], switch(ACTIVE, Some(&v1), &v2));
    assert_eq!(w.status().stable_rs, Some(v2));
    assert_eq!(w.phase(), Some(Healthy));
}

/// Argo: Degraded (an abort) takes precedence over a manual pause.
#[test]
fn an_abort_of_a_paused_release_goes_back_to_stable() {
    let (mut w, v1) = World::deployed(json!({}), json!({}));
    pause(&mut w);
    w.step();
    let v2 = w.set_image("app:2");
    w.step();
    w.make_ready(&v2);
    w.step();
    assert_eq!(w.phase(), Some(Paused));
    w.abort();
    w.step();
    assert_eq!(w.phase(), Some(Degraded));
    assert_eq!(w.active(), Some(v1));
    // Argo Rollouts leaves the preview Service on the aborted revision.
    assert_eq!(w.preview(), Some(v2));
}

/// A canary paused with nothing in flight, then given a new revision: the release starts at
/// its first step and stays there; unpaused it walks the steps.
#[test]
fn a_paused_canary_holds_a_new_revision_at_its_first_step() {
    let (mut w, v1) = World::canary_deployed(
        json!({}),
        json!({"steps": [{"setWeight": 20}, {"pause": {"duration": 10}}, {"setWeight": 50}]}),
    );
    pause(&mut w);
    w.step();
    assert_eq!(w.phase(), Some(Paused));
    let v2 = w.set_image("app:2");
    w.run_until_settled();
    w.advance(3600);
    w.run_until_settled();
    assert_eq!(w.phase(), Some(Paused));
    assert_eq!(w.status().current_step_index, Some(0));
    assert_eq!(w.size(&v2), 2, "the first step's weight");
    assert_eq!(w.status().stable_rs, Some(v1));

    unpause(&mut w);
    w.run_until_settled();
    w.advance(10);
    w.run_until_settled();
    assert_eq!(w.phase(), Some(Healthy));
    assert_eq!(w.status().stable_rs, Some(v2.clone()));
    assert_eq!(w.size(&v2), 10);
}
