//! Argo Rollouts' names for what a release does, where rollgate has the same concept: the
//! Progressing reasons `NewReplicaSetCreated` / `FoundNewReplicaSet`, one reason per condition
//! type whatever its status, and the Events `RolloutNotCompleted`, `RolloutResumed`,
//! `AnalysisRun<Phase>`, `NewReplicaSetCreated` + `ScalingReplicaSet` and `SwitchService`.
//!
//! Where Argo does it (argoproj/argo-rollouts): `rollout/sync.go` (`createReplicaSet` sets
//! Progressing `NewReplicaSetCreated`; `syncReplicaSetRevision` sets `FoundNewReplicaSet` when
//! no Progressing condition is recorded; `calculateRolloutConditions` keeps one reason per type
//! and publishes `RolloutNotCompleted` when Completed turns False; `persistRolloutStatus`
//! publishes `RolloutResumed` when the pause conditions are gone without an abort),
//! `rollout/analysis.go` (`emitAnalysisRunStatusChanges`: `"AnalysisRun" + phase`, Warning for
//! Failed and Error) and `rollout/service.go` (`SwitchService` for every Service).
//!
//! Every `World::step` also checks the traffic invariant, consistency and idempotence (see
//! `support`).

use crate::support;

use rollgate_api::{AnalysisPhase, RolloutPhase};
use rollgate_engine::AnalysisKind::PrePromotion;
use serde_json::json;
use support::{World, analysis, reasons};

/// The ReplicaSet a release creates: Progressing `NewReplicaSetCreated` until the release
/// makes progress, then `ReplicaSetUpdated`, and `NewReplicaSetAvailable` once stable.
#[test]
fn a_created_replica_set_is_new_replica_set_created_until_it_makes_progress() {
    let (mut w, _) = World::canary_deployed(json!({}), json!({"steps": [{"setWeight": 50}]}));
    let v2 = w.set_image("app:2");
    w.step();
    assert_eq!(
        w.cond("Progressing"),
        ("True".into(), "NewReplicaSetCreated".into())
    );
    w.step();
    assert_eq!(
        w.cond("Progressing"),
        ("True".into(), "NewReplicaSetCreated".into()),
        "no progress yet: the reason stays"
    );
    w.set_ready(&v2, 1);
    w.step();
    assert_eq!(
        w.cond("Progressing"),
        ("True".into(), "ReplicaSetUpdated".into())
    );
    w.run_until_stable();
    assert_eq!(w.status().stable_rs, Some(v2));
    assert_eq!(
        w.cond("Progressing"),
        ("True".into(), "NewReplicaSetAvailable".into())
    );
}

/// A release whose ReplicaSet is already there when no Progressing condition is recorded (a
/// status lost, a Rollout taking over its ReplicaSet): `FoundNewReplicaSet`, as Argo.
#[test]
fn a_replica_set_found_without_a_recorded_condition_is_found_new_replica_set() {
    let mut w = World::new(json!({}), json!({}));
    w.step();
    let v1 = w.hash_of("app:1");
    assert!(w.has_rs(&v1));
    w.rollout.status = None;
    let d = w.step();
    assert!(
        !reasons(&d).contains(&"NewReplicaSetCreated"),
        "{:?}",
        reasons(&d)
    );
    assert_eq!(
        w.cond("Progressing"),
        ("True".into(), "FoundNewReplicaSet".into())
    );
    w.make_ready(&v1);
    w.run_until_settled();
    assert_eq!(
        w.cond("Progressing"),
        ("True".into(), "NewReplicaSetAvailable".into())
    );
}

/// Available, Paused, Completed and Healthy keep one reason whichever way their status is.
#[test]
fn conditions_keep_argo_s_one_reason_per_type_both_ways() {
    let (mut w, _) = World::deployed(json!({}), json!({"autoPromotionEnabled": false}));
    for (type_, status, reason) in [
        ("Available", "True", "AvailableReason"),
        ("Paused", "False", "RolloutPaused"),
        ("Completed", "True", "RolloutCompleted"),
        ("Healthy", "True", "RolloutHealthy"),
    ] {
        assert_eq!(w.cond(type_), (status.into(), reason.into()), "{type_}");
    }
    w.set_image("app:2");
    w.run_until_settled();
    assert_eq!(w.phase(), Some(RolloutPhase::Paused));
    for (type_, status, reason) in [
        ("Paused", "True", "RolloutPaused"),
        ("Completed", "False", "RolloutCompleted"),
        ("Healthy", "False", "RolloutHealthy"),
    ] {
        assert_eq!(w.cond(type_), (status.into(), reason.into()), "{type_}");
    }
    let fresh = {
        let mut w = World::new(json!({}), json!({}));
        w.step();
        w
    };
    assert_eq!(
        fresh.cond("Available"),
        ("False".into(), "AvailableReason".into())
    );
}

/// `RolloutNotCompleted` once when a release starts (Completed turns False), not again while
/// it runs; the first deploy publishes it too, as in Argo.
#[test]
fn rollout_not_completed_is_published_once_per_release() {
    let mut w = World::new(json!({}), json!({}));
    let d = w.step();
    assert!(reasons(&d).contains(&"RolloutNotCompleted"));
    w.run_until_settled();
    assert_eq!(w.status().stable_rs, Some(w.hash_of("app:1")));
    let before = w.notes("RolloutNotCompleted").len();
    assert_eq!(before, 1);
    let v2 = w.set_image("app:2");
    w.step();
    w.make_ready(&v2);
    w.run_until_settled();
    assert_eq!(
        w.notes("RolloutNotCompleted"),
        [
            format!(
                "Rollout not completed: update to revision 1 ({}) started",
                w.hash_of("app:1")
            ),
            format!("Rollout not completed: update to revision 2 ({v2}) started"),
        ]
    );
}

/// A timed canary pause that ends by itself publishes `RolloutResumed`; an abort that ends a
/// pause does not.
#[test]
fn rollout_resumed_when_a_pause_ends_but_not_when_an_abort_ends_it() {
    let (mut w, _) = World::canary_deployed(
        json!({}),
        json!({"steps": [{"setWeight": 20}, {"pause": {"duration": 60}}, {"setWeight": 40},
                         {"pause": {}}]}),
    );
    w.set_image("app:2");
    w.step();
    w.make_all_ready();
    w.step();
    assert_eq!(w.phase(), Some(RolloutPhase::Paused));
    assert!(w.notes("RolloutResumed").is_empty());
    w.advance(60);
    let d = w.step();
    assert!(reasons(&d).contains(&"RolloutResumed"), "{:?}", reasons(&d));
    w.make_all_ready();
    w.run_until_settled();
    assert_eq!(w.phase(), Some(RolloutPhase::Paused), "the second pause");
    w.abort();
    let d = w.step();
    assert!(reasons(&d).contains(&"RolloutAborted"));
    assert!(
        !reasons(&d).contains(&"RolloutResumed"),
        "{:?}",
        reasons(&d)
    );
    assert_eq!(w.notes("RolloutResumed").len(), 1);
}

/// Each phase an AnalysisRun of the release reaches is published once on the Rollout, as
/// `AnalysisRun<Phase>` (the reasons Argo's `on-analysis-run-*` triggers key on); Failed and
/// Error are Warnings.
#[test]
fn analysis_run_phases_are_published_once_each() {
    let (mut w, _) = World::deployed(json!({}), json!({"prePromotionAnalysis": analysis()}));
    let v2 = w.set_image("app:2");
    w.step();
    w.make_ready(&v2);
    let d = w.step();
    assert!(reasons(&d).contains(&"AnalysisRunCreated"));
    assert!(
        !reasons(&d)
            .iter()
            .any(|r| r.starts_with("AnalysisRunRunning"))
    );
    let run = w.set_run_phase(PrePromotion, AnalysisPhase::Running);
    let d = w.step();
    assert_eq!(reasons(&d), ["AnalysisRunRunning"]);
    assert_eq!(
        d.events[0].note,
        format!("pre-promotion analysis {run}: Running (was Pending)")
    );
    assert!(!d.events[0].warning);
    let d = w.step();
    assert!(d.events.is_empty(), "not again: {:?}", reasons(&d));
    w.set_run(PrePromotion, AnalysisPhase::Failed, Some("too many errors"));
    let d = w.step();
    assert_eq!(reasons(&d)[..2], ["AnalysisRunFailed", "RolloutAborted"]);
    assert!(d.events[0].warning);
    assert_eq!(w.notes("AnalysisRunRunning").len(), 1);
    assert_eq!(w.notes("AnalysisRunFailed").len(), 1);
}

/// A created ReplicaSet: `NewReplicaSetCreated`, then `ScalingReplicaSet` from 0, as Argo
/// (which creates it empty and scales it), so notifications on either keep working.
#[test]
fn a_created_replica_set_is_published_as_created_and_scaled() {
    let mut w = World::new(json!({}), json!({}));
    let d = w.step();
    let v1 = w.hash_of("app:1");
    assert_eq!(
        reasons(&d)[..2],
        ["NewReplicaSetCreated", "ScalingReplicaSet"]
    );
    assert_eq!(
        w.notes("ScalingReplicaSet"),
        [format!("Scaled up ReplicaSet web-{v1} from 0 to 3")]
    );
}
