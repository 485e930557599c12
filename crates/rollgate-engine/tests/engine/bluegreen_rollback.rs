//! A template change over a blue/green release: a newer revision supersedes the one in flight,
//! going back to the stable or to a kept older revision (undo) is a fast rollback, and revision
//! numbers never repeat.
//!
//! Each `World::step` also checks the traffic invariant, consistency and idempotence (see
//! `support`), so every test below exercises those too.

use crate::support;

use rollgate_api::{AnalysisPhase, RolloutPhase};
use rollgate_engine::{Action, AnalysisKind, DeadlineChange};
use serde_json::json;
use support::{
    ACTIVE, PREVIEW, World, analysis, bg_status, deadline, manual, reasons, rs_name, run_name,
    scale_to_zero, summary, switch, terminate,
};

use AnalysisKind::{PostPromotion, PrePromotion};

// ----- superseding -----

#[test]
fn a_newer_revision_supersedes_the_release_in_flight() {
    let (mut w, v1) = World::deployed(
        json!({}),
        json!({"autoPromotionEnabled": false, "prePromotionAnalysis": analysis()}),
    );
    let v2 = w.set_image("app:2");
    w.step();
    w.make_ready(&v2);
    w.step();
    let run1 = w.set_run_phase(PrePromotion, AnalysisPhase::Running);
    let v3 = w.set_image("app:3");
    let d = w.step();
    assert_eq!(
        summary(&d),
        [
            format!("{:?}", switch(PREVIEW, Some(&v2), &v3)),
            format!("create rs web-{v3} x3"),
            format!("{:?}", scale_to_zero(&v2, false)),
            format!("{:?}", terminate(&run1)),
        ]
    );
    assert_eq!(
        reasons(&d),
        [
            "RolloutSuperseded",
            "RolloutUpdated",
            "SwitchService",
            "NewReplicaSetCreated",
            "ScalingReplicaSet",
            "ScalingReplicaSet"
        ]
    );
    assert_eq!(
        d.events[0].note,
        format!("Release of {v2} superseded by a newer revision")
    );
    assert_eq!(
        d.events[5].note,
        format!(
            "Scaled down ReplicaSet web-{v2} from 3 to 0 (superseded, never served production traffic)"
        )
    );
    let s = w.status();
    assert_eq!(s.current_pod_hash, Some(v3.clone()));
    assert_eq!(s.current_revision, Some(3));
    assert_eq!(s.stable_rs, Some(v1.clone()));
    assert_eq!(bg_status(&w).pre_promotion_analysis_run_status, None);
    assert_eq!(w.active(), Some(v1));
    assert_eq!(w.preview(), Some(v3.clone()));
    w.make_ready(&v3);
    let d = w.step();
    assert_eq!(
        summary(&d),
        [format!("create run {}", run_name(&v3, PrePromotion, 1))]
    );
}

#[test]
fn superseding_after_the_switch_keeps_the_serving_revision_until_the_next_switch() {
    let (mut w, v1) = World::deployed(
        json!({}),
        json!({"postPromotionAnalysis": analysis(), "scaleDownDelaySeconds": 60}),
    );
    let v2 = w.set_image("app:2");
    w.step();
    w.make_ready(&v2);
    w.step();
    assert_eq!(w.active(), Some(v2.clone()));
    let post2 = run_name(&v2, PostPromotion, 1);

    let v3 = w.set_image("app:3");
    let d = w.step();
    assert_eq!(
        summary(&d),
        [
            format!("{:?}", switch(PREVIEW, Some(&v2), &v3)),
            format!("create rs web-{v3} x3"),
            format!("{:?}", terminate(&post2)),
        ]
    );
    assert_eq!(w.active(), Some(v2.clone()), "v2 keeps serving meanwhile");
    assert_eq!(w.rs(&v2).replicas, 3);
    assert_eq!(w.rs(&v1).replicas, 3, "the stable revision stays up");

    w.make_ready(&v3);
    let d = w.step();
    assert_eq!(
        summary(&d),
        [
            format!("{:?}", deadline(&v2, w.at(60))),
            format!("{:?}", switch(ACTIVE, Some(&v2), &v3)),
            format!("create run {}", run_name(&v3, PostPromotion, 1)),
        ]
    );
    w.set_run_phase(PostPromotion, AnalysisPhase::Successful);
    let d = w.step();
    assert_eq!(d.actions, [deadline(&v1, w.at(60))]);
    assert_eq!(
        d.events[1].note,
        format!("Revision {v3} is stable; previous revision {v1} scales down in 60s")
    );
    w.advance(60);
    let d = w.step();
    assert_eq!(
        d.actions,
        [scale_to_zero(&v1, true), scale_to_zero(&v2, true)]
    );
}

#[test]
fn a_new_revision_after_an_abort_starts_a_fresh_release() {
    let (mut w, v1) = World::deployed(json!({}), manual());
    let v2 = w.set_image("app:2");
    w.step();
    w.abort();
    w.step();
    assert_eq!(w.phase(), Some(RolloutPhase::Degraded));
    let v3 = w.set_image("app:3");
    let d = w.step();
    assert_eq!(reasons(&d)[..2], ["RolloutSuperseded", "RolloutUpdated"]);
    let s = w.status();
    assert_eq!((s.abort, s.aborted_at), (None, None));
    assert_eq!(s.phase, Some(RolloutPhase::Progressing));
    assert_eq!(
        w.cond("Progressing"),
        ("True".into(), "NewReplicaSetCreated".into())
    );
    assert_eq!(w.preview(), Some(v3));
    assert_eq!(w.active(), Some(v1));
    assert_eq!(
        w.rs(&v2).scale_down_deadline,
        Some(w.at(30)),
        "the aborted one still goes"
    );
}

// ----- reverting and rolling back -----

#[test]
fn going_back_to_the_stable_template_mid_release_is_instant() {
    let (mut w, v1) = World::deployed(
        json!({}),
        json!({"autoPromotionEnabled": false, "prePromotionAnalysis": analysis()}),
    );
    let v2 = w.set_image("app:2");
    w.step();
    w.make_ready(&v2);
    w.step();
    let run1 = w.set_run_phase(PrePromotion, AnalysisPhase::Running);
    w.set_image("app:1");
    let d = w.step();
    assert_eq!(
        d.actions,
        [
            Action::UpdateReplicaSet {
                name: rs_name(&v1),
                replicas: None,
                deadline: DeadlineChange::Keep,
                revision: Some(3),
            },
            switch(PREVIEW, Some(&v2), &v1),
            scale_to_zero(&v2, false),
            terminate(&run1),
        ]
    );
    assert_eq!(
        reasons(&d),
        ["SkipSteps", "SwitchService", "ScalingReplicaSet"]
    );
    assert_eq!(
        d.events[0].note,
        format!(
            "Template matches the stable revision ({v1}): back to stable at once, \
             without steps or analysis"
        )
    );
    let s = w.status();
    assert_eq!(s.phase, Some(RolloutPhase::Healthy));
    assert_eq!(s.current_pod_hash, Some(v1.clone()));
    assert_eq!(s.current_revision, Some(3));
    assert!(s.pause_conditions.is_empty());
    assert_eq!(w.active(), Some(v1.clone()));
    assert_eq!(w.preview(), Some(v1));
    assert_eq!(w.run_names(), [run1], "no new analysis");
}

#[test]
fn returning_to_the_revision_that_serves_production_never_scales_it_down() {
    let (mut w, v1) = World::deployed(
        json!({}),
        json!({"autoPromotionEnabled": false, "previewReplicaCount": 1,
               "postPromotionAnalysis": analysis()}),
    );
    let v2 = w.set_image("app:2");
    w.step();
    w.make_ready(&v2);
    w.step();
    w.promote();
    w.step();
    w.make_ready(&v2);
    w.step();
    assert_eq!(w.active(), Some(v2.clone()));
    let v3 = w.set_image("app:3");
    w.step();
    // A GitOps revert: back to the revision the active Service selects.
    w.set_image("app:2");
    let d = w.step();
    assert_eq!(
        summary(&d),
        [
            format!("{:?}", switch(PREVIEW, Some(&v3), &v2)),
            format!(
                "{:?}",
                Action::UpdateReplicaSet {
                    name: rs_name(&v2),
                    replicas: None,
                    deadline: DeadlineChange::Keep,
                    revision: Some(4),
                }
            ),
            // Its ReplicaSet still exists: a fast rollback, so no post-promotion analysis.
            format!("{:?}", deadline(&v1, w.at(30))),
            format!("{:?}", scale_to_zero(&v3, false)),
        ]
    );
    assert!(w.reasons().contains(&"SkipSteps"));
    assert_eq!(w.rs(&v2).replicas, 3, "not back to previewReplicaCount");
    assert_eq!(w.active(), Some(v2.clone()));
    assert!(
        w.status().pause_conditions.is_empty(),
        "no pause before a switch already made"
    );
    assert_eq!(w.status().stable_rs, Some(v2));
    assert_eq!(w.phase(), Some(RolloutPhase::Healthy));
}

#[test]
fn rollback_to_an_older_revision_reuses_its_replica_set_and_bumps_its_revision() {
    let (mut w, v1) = World::deployed(json!({}), json!({"scaleDownDelaySeconds": 0}));
    let v2 = w.set_image("app:2");
    w.run_until_settled();
    assert_eq!(w.rs(&v1).replicas, 0);
    w.set_image("app:1");
    let d = w.step();
    assert_eq!(
        d.actions,
        [
            switch(PREVIEW, Some(&v2), &v1),
            Action::UpdateReplicaSet {
                name: rs_name(&v1),
                replicas: Some(3),
                deadline: DeadlineChange::Keep,
                revision: Some(3),
            },
        ]
    );
    assert_eq!(
        d.events[0].note,
        format!(
            "Template matches revision 1 ({v1}), whose ReplicaSet still exists: fast rollback \
             as revision 3, without steps or analysis"
        )
    );
    assert_eq!(w.rs(&v1).revision, 3);
    assert_eq!(w.status().current_revision, Some(3));
    w.make_ready(&v1);
    w.step();
    assert_eq!(w.status().stable_rs, Some(v1.clone()));
    assert_eq!(w.active(), Some(v1));
    assert_eq!(w.observed.replica_sets.len(), 2, "no third ReplicaSet");
}

#[test]
fn rollback_to_a_revision_still_up_within_its_scale_down_delay_is_instant() {
    let (mut w, v1) = World::deployed(json!({}), json!({"scaleDownDelaySeconds": 300}));
    let v2 = w.set_image("app:2");
    w.run_until_settled();
    assert_eq!(w.rs(&v1).scale_down_deadline, Some(w.at(300)));
    w.advance(10);
    w.set_image("app:1");
    let d = w.step();
    assert_eq!(
        d.actions,
        [
            switch(PREVIEW, Some(&v2), &v1),
            Action::UpdateReplicaSet {
                name: rs_name(&v1),
                replicas: None,
                deadline: DeadlineChange::Clear,
                revision: Some(3),
            },
            switch(ACTIVE, Some(&v2), &v1),
            deadline(&v2, w.at(300)),
        ]
    );
    assert_eq!(w.status().stable_rs, Some(v1));
    assert_eq!(w.phase(), Some(RolloutPhase::Healthy));
}

// ----- revision numbers -----

/// Engine fix: revision numbers came from the observed ReplicaSets only, so once the newest one
/// was pruned (an aborted release with `revisionHistoryLimit: 0`) the next release reused its
/// number and `status.currentRevision` went backwards (3, then 2). Without a preview Service
/// (which would keep selecting the aborted revision and so keep it from being pruned).
#[test]
fn revision_numbers_never_repeat_after_the_newest_replica_set_was_pruned() {
    let (mut w, _) = World::deployed(
        json!({"revisionHistoryLimit": 0}),
        json!({"autoPromotionEnabled": false, "abortScaleDownDelaySeconds": 1,
               "previewService": null}),
    );
    let v2 = w.set_image("app:2");
    w.step();
    assert_eq!(w.status().current_revision, Some(2));
    w.abort();
    let d = w.step();
    assert_eq!(d.actions, [deadline(&v2, w.at(1))]);
    w.advance(1);
    let d = w.step();
    assert_eq!(
        d.actions,
        [
            scale_to_zero(&v2, true),
            Action::DeleteReplicaSet { name: rs_name(&v2) },
        ]
    );
    assert!(!w.has_rs(&v2));

    let v3 = w.set_image("app:3");
    let d = w.step();
    assert_eq!(
        d.events[1].note,
        format!("New revision 3 (pod-template-hash {v3}): starting blue/green release")
    );
    assert_eq!(w.status().current_revision, Some(3));
    assert_eq!(w.rs(&v3).revision, 3);
}

/// Same fix, other path: returning to the stable template after the newest ReplicaSet was
/// pruned bumps the stable ReplicaSet's revision instead of moving `currentRevision` back to 1.
#[test]
fn returning_to_stable_after_the_newest_replica_set_was_pruned_bumps_the_revision() {
    let (mut w, v1) = World::deployed(
        json!({"revisionHistoryLimit": 0}),
        json!({"autoPromotionEnabled": false, "abortScaleDownDelaySeconds": 1,
               "previewService": null}),
    );
    let v2 = w.set_image("app:2");
    w.step();
    w.abort();
    w.step();
    w.advance(1);
    w.step();
    assert!(!w.has_rs(&v2));
    w.set_image("app:1");
    let d = w.step();
    assert_eq!(
        d.actions,
        [Action::UpdateReplicaSet {
            name: rs_name(&v1),
            replicas: None,
            deadline: DeadlineChange::Keep,
            revision: Some(3),
        }]
    );
    assert_eq!(reasons(&d), ["SkipSteps"]);
    assert_eq!(w.status().current_revision, Some(3));
    assert_eq!(w.phase(), Some(RolloutPhase::Healthy));
}
