//! Controlling a blue/green release by hand: promoting a pause (`autoPromotionEnabled: false`,
//! before `autoPromotionSeconds`), `spec.paused`, promote --full, abort in every stage of a
//! release, and retry.
//!
//! Each `World::step` also checks the traffic invariant, consistency and idempotence (see
//! `support`), so every test below exercises those too.

use crate::support;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use rollgate_api::{AnalysisPhase, RolloutPhase};
use rollgate_engine::{Action, AnalysisKind, DeadlineChange};
use serde_json::json;
use support::{
    ACTIVE, World, analysis, bg_status, deadline, manual, pause, reasons, requeue, rs_name,
    run_name, scale, scale_to_zero, summary, switch, terminate,
};

use AnalysisKind::{PostPromotion, PrePromotion};

// ----- promote and pause -----

#[test]
fn with_auto_promotion_disabled_the_release_pauses_until_promoted() {
    let (mut w, v1) = World::deployed(json!({}), manual());
    let v2 = w.set_image("app:2");
    w.step();
    w.make_ready(&v2);
    let t = w.now;
    let d = w.step();
    assert!(d.actions.is_empty());
    assert_eq!(reasons(&d), ["RolloutPaused"]);
    assert_eq!(d.events[0].note, "Rollout paused (BlueGreenPause)");
    let s = w.status();
    assert_eq!(s.phase, Some(RolloutPhase::Paused));
    assert_eq!(
        s.message,
        Some(format!(
            "Paused: preview {v2} is ready and waiting for promotion \
             (`rollgate promote web`)"
        ))
    );
    assert_eq!(s.pause_conditions, [pause("BlueGreenPause", t)]);
    assert_eq!(s.controller_pause, Some(true));
    assert_eq!(w.cond("Paused"), ("True".into(), "RolloutPaused".into()));
    assert_eq!(
        w.cond("Progressing"),
        // Argo Rollouts: Progressing is Unknown while paused.
        ("Unknown".into(), "RolloutPaused".into())
    );
    assert_eq!(d.requeue_after, None, "no timer: only a human promotes");

    for _ in 0..24 {
        w.advance(3600);
        let d = w.step();
        assert!(d.actions.is_empty() && d.events.is_empty());
    }
    assert_eq!(w.active(), Some(v1.clone()));
    assert_eq!(w.status().pause_conditions, [pause("BlueGreenPause", t)]);

    w.promote();
    let d = w.step();
    assert_eq!(
        d.actions,
        [switch(ACTIVE, Some(&v1), &v2), deadline(&v1, w.at(30))]
    );
    assert_eq!(
        reasons(&d),
        ["RolloutPromoted", "SwitchService", "RolloutCompleted"]
    );
    let s = w.status();
    assert_eq!(s.phase, Some(RolloutPhase::Healthy));
    assert_eq!(s.stable_rs, Some(v2));
    assert!(s.pause_conditions.is_empty());
    assert_eq!(s.controller_pause, None);
}

#[test]
fn a_human_may_promote_before_auto_promotion_seconds_elapse() {
    let (mut w, v1) = World::deployed(json!({}), json!({"autoPromotionSeconds": 600}));
    let v2 = w.set_image("app:2");
    w.step();
    w.make_ready(&v2);
    w.step();
    w.advance(10);
    w.promote();
    let d = w.step();
    assert_eq!(d.actions[0], switch(ACTIVE, Some(&v1), &v2));
    assert!(!reasons(&d).contains(&"AutoPromotion"));
    assert_eq!(w.status().stable_rs, Some(v2));
}

#[test]
fn spec_paused_holds_a_ready_preview_until_unpaused() {
    let (mut w, v1) = World::deployed(json!({}), json!({}));
    // Paused after the first deploy (a rollout created paused does not deploy at all: see
    // `paused_spec.rs`).
    w.edit_spec(|s| s.paused = Some(true));
    w.step();
    let v2 = w.set_image("app:2");
    let d = w.step();
    assert_eq!(summary(&d)[1], format!("create rs web-{v2} x3"));
    w.make_ready(&v2);
    for _ in 0..3 {
        let d = w.step();
        assert!(d.actions.is_empty());
        w.advance(3600);
    }
    let s = w.status();
    assert_eq!(s.phase, Some(RolloutPhase::Paused));
    assert_eq!(
        s.message.as_deref(),
        Some("Paused (spec.paused is true): set it to false to continue")
    );
    assert!(
        s.pause_conditions.is_empty(),
        "spec.paused is not a controller pause"
    );
    assert_eq!(w.cond("Paused"), ("True".into(), "RolloutPaused".into()));
    assert_eq!(w.active(), Some(v1.clone()));
    // A promote does not override spec.paused.
    w.promote();
    assert!(w.step().actions.is_empty());

    w.edit_spec(|s| s.paused = Some(false));
    let d = w.step();
    assert_eq!(d.actions[0], switch(ACTIVE, Some(&v1), &v2));
    assert_eq!(w.status().observed_generation, Some(4));
    assert_eq!(w.phase(), Some(RolloutPhase::Healthy));
}

// ----- promote --full -----

#[test]
fn promote_full_skips_analysis_and_the_pause() {
    let (mut w, v1) = World::deployed(
        json!({}),
        json!({"autoPromotionEnabled": false, "previewReplicaCount": 1,
               "prePromotionAnalysis": analysis(), "postPromotionAnalysis": analysis()}),
    );
    let v2 = w.set_image("app:2");
    w.step();
    w.make_ready(&v2);
    w.step();
    let pre = w.set_run_phase(PrePromotion, AnalysisPhase::Running);
    w.promote_full();
    let d = w.step();
    assert_eq!(d.actions, [scale(&v2, 3)]);
    assert_eq!(reasons(&d), ["RolloutPromoted", "ScalingReplicaSet"]);
    assert_eq!(w.active(), Some(v1.clone()));
    w.make_ready(&v2);
    let d = w.step();
    // The skipped run is stopped once the release is complete.
    assert_eq!(
        d.actions,
        [
            switch(ACTIVE, Some(&v1), &v2),
            deadline(&v1, w.at(30)),
            terminate(&pre)
        ]
    );
    let s = w.status();
    assert_eq!(s.stable_rs, Some(v2));
    assert_eq!(s.phase, Some(RolloutPhase::Healthy));
    assert_eq!(s.promote_full, None, "cleared once the release completed");
    assert!(s.pause_conditions.is_empty());
    assert_eq!(w.run_names(), [pre], "no post-promotion run");
}

#[test]
fn promote_full_during_post_promotion_analysis_completes_at_once() {
    let (mut w, v1) = World::deployed(json!({}), json!({"postPromotionAnalysis": analysis()}));
    let v2 = w.set_image("app:2");
    w.step();
    w.make_ready(&v2);
    w.step();
    let post = w.set_run_phase(PostPromotion, AnalysisPhase::Running);
    w.promote_full();
    let d = w.step();
    assert_eq!(d.actions, [deadline(&v1, w.at(30)), terminate(&post)]);
    assert_eq!(w.status().stable_rs, Some(v2));
    assert_eq!(w.status().promote_full, None);
}

/// Engine fix: `promote --full` given after an abort was kept in status while the rollout
/// stayed Degraded, then silently dropped by `retry`, and the analysis that had failed ran
/// again (argo-rollouts#2897). A full promotion now overrides an earlier abort, as Argo's own
/// design for `promoteFull` says (skip abort, pause and analysis).
#[test]
fn promote_full_after_an_abort_overrides_it_and_skips_analysis() {
    let (mut w, v1) = World::deployed(
        json!({}),
        json!({"prePromotionAnalysis": analysis(), "postPromotionAnalysis": analysis()}),
    );
    let v2 = w.set_image("app:2");
    w.step();
    w.make_ready(&v2);
    w.step();
    let pre1 = w.set_run_phase(PrePromotion, AnalysisPhase::Failed);
    w.step();
    assert_eq!(w.phase(), Some(RolloutPhase::Degraded));

    w.promote_full();
    let d = w.step();
    assert_eq!(
        d.actions,
        [
            Action::UpdateReplicaSet {
                name: rs_name(&v2),
                replicas: None,
                deadline: DeadlineChange::Clear,
                revision: None,
            },
            switch(ACTIVE, Some(&v1), &v2),
            deadline(&v1, w.at(30)),
        ]
    );
    assert_eq!(
        reasons(&d),
        [
            "RolloutRetry",
            "RolloutPromoted",
            "SwitchService",
            "RolloutCompleted"
        ]
    );
    assert_eq!(
        d.events[0].note,
        format!("Retrying the release of {v2} with full promotion (no analysis, no pause)")
    );
    let s = w.status();
    assert_eq!(s.phase, Some(RolloutPhase::Healthy));
    assert_eq!(s.stable_rs, Some(v2));
    assert_eq!((s.abort, s.aborted_at, s.promote_full), (None, None, None));
    assert_eq!(w.run_names(), [pre1], "no analysis ran again");
}

/// The other half of the fix: an abort after `promote --full` wins (argo-rollouts#4461) and
/// clears it, so a later `retry` starts a normal release with its analysis.
#[test]
fn an_abort_after_promote_full_wins_and_a_retry_starts_a_normal_release() {
    let (mut w, v1) = World::deployed(json!({}), json!({"prePromotionAnalysis": analysis()}));
    let v2 = w.set_image("app:2");
    w.step();
    w.promote_full();
    w.step();
    w.abort();
    let d = w.step();
    assert_eq!(d.actions, [deadline(&v2, w.at(30))]);
    let s = w.status();
    assert_eq!(s.phase, Some(RolloutPhase::Degraded));
    assert_eq!((s.abort, s.promote_full), (Some(true), None));
    w.advance(3600);
    let d = w.step();
    assert_eq!(d.actions, [scale_to_zero(&v2, true)], "stays aborted");
    assert_eq!(w.phase(), Some(RolloutPhase::Degraded));

    w.retry();
    w.step();
    w.make_ready(&v2);
    let d = w.step();
    assert_eq!(
        summary(&d),
        [format!("create run {}", run_name(&v2, PrePromotion, 1))]
    );
    assert_eq!(w.active(), Some(v1));
}

// ----- abort -----

#[test]
fn user_abort_keeps_traffic_on_stable_degrades_and_scales_the_preview_down_after_the_delay() {
    let (mut w, v1) = World::deployed(
        json!({}),
        json!({"autoPromotionEnabled": false, "abortScaleDownDelaySeconds": 45,
               "prePromotionAnalysis": analysis()}),
    );
    let v2 = w.set_image("app:2");
    w.step();
    w.make_ready(&v2);
    w.step();
    let run1 = w.set_run_phase(PrePromotion, AnalysisPhase::Running);
    w.step();
    let t = w.now;
    w.abort();
    let d = w.step();
    assert_eq!(d.actions, [deadline(&v2, w.at(45)), terminate(&run1),]);
    let message =
        format!("Aborted by user (status.abort): production traffic stays on stable revision {v1}");
    assert_eq!(reasons(&d), ["RolloutAborted"]);
    assert!(d.events[0].warning);
    assert_eq!(d.events[0].note, message);
    let s = w.status();
    assert_eq!(s.phase, Some(RolloutPhase::Degraded));
    assert_eq!(s.message, Some(message.clone()));
    assert_eq!(s.abort, Some(true));
    assert_eq!(s.aborted_at, Some(Time(t)));
    assert!(s.pause_conditions.is_empty());
    assert_eq!(
        w.cond("Progressing"),
        ("False".into(), "RolloutAborted".into())
    );
    assert_eq!(w.cond("Healthy"), ("False".into(), "RolloutHealthy".into()));
    assert_eq!(w.active(), Some(v1.clone()));
    assert_eq!(d.requeue_after, requeue(45));
    assert!(w.run(&run1).terminating);

    w.advance(44);
    let d = w.step();
    assert!(d.actions.is_empty());
    assert_eq!(w.rs(&v2).replicas, 3);
    w.advance(1);
    let d = w.step();
    assert_eq!(d.actions, [scale_to_zero(&v2, true)]);
    assert_eq!(
        w.phase(),
        Some(RolloutPhase::Degraded),
        "until retried or superseded"
    );
    assert_eq!(w.message(), message);
    assert_eq!(w.status().aborted_at, Some(Time(t)));
    assert_eq!(w.notes("RolloutAborted").len(), 1, "reported once");
}

#[test]
fn abort_without_a_release_in_flight_is_ignored() {
    let (mut w, v1) = World::deployed(json!({}), json!({}));
    w.abort();
    let d = w.step();
    assert!(d.actions.is_empty() && d.events.is_empty());
    assert_eq!(w.status().abort, None);
    assert_eq!(w.phase(), Some(RolloutPhase::Healthy));
    assert_eq!(w.active(), Some(v1));
}

#[test]
fn abort_during_the_first_deploy_is_ignored() {
    let mut w = World::new(json!({}), json!({}));
    let v1 = w.hash_of("app:1");
    w.step();
    w.abort();
    let d = w.step();
    assert!(d.actions.is_empty() && d.events.is_empty());
    let s = w.status();
    assert_eq!(s.abort, None, "nothing to return to: the flag is dropped");
    assert_eq!(s.phase, Some(RolloutPhase::Progressing));
    assert_eq!(
        s.message,
        Some(format!(
            "First deploy: waiting for ReplicaSet web-{v1}: 0/3 pods available"
        ))
    );
    w.make_ready(&v1);
    w.step();
    assert_eq!(w.phase(), Some(RolloutPhase::Healthy));
    assert_eq!(w.status().stable_rs, Some(v1));
}

#[test]
fn abort_during_the_promotion_scale_up_keeps_traffic_on_stable() {
    let (mut w, v1) = World::deployed(json!({}), json!({"previewReplicaCount": 1}));
    let v2 = w.set_image("app:2");
    w.step();
    w.make_ready(&v2);
    let d = w.step();
    assert_eq!(d.actions, [scale(&v2, 3)], "promoted: scaling up");
    w.set_ready(&v2, 2);
    w.abort();
    let d = w.step();
    assert_eq!(d.actions, [deadline(&v2, w.at(30))]);
    assert_eq!(w.active(), Some(v1.clone()), "never switched");
    assert_eq!(w.phase(), Some(RolloutPhase::Degraded));
    assert_eq!(
        w.cond("Progressing"),
        ("False".into(), "RolloutAborted".into())
    );
    // Pods that become ready after the abort change nothing.
    w.make_ready(&v2);
    assert!(w.step().actions.is_empty());
    assert_eq!(w.active(), Some(v1.clone()));
    w.advance(30);
    let d = w.step();
    assert_eq!(d.actions, [scale_to_zero(&v2, true)]);
    assert_eq!(w.active(), Some(v1));
}

#[test]
fn an_abort_after_the_switch_waits_for_the_stable_pods_before_switching_back() {
    let (mut w, v1) = World::deployed(json!({}), json!({"postPromotionAnalysis": analysis()}));
    let v2 = w.set_image("app:2");
    w.step();
    w.make_ready(&v2);
    w.step();
    // The old stable pods were evicted meanwhile.
    w.set_ready(&v1, 1);
    w.abort();
    let d = w.step();
    assert_eq!(
        d.actions,
        [
            deadline(&v2, w.at(30)),
            terminate(&run_name(&v2, PostPromotion, 1)),
        ]
    );
    assert_eq!(w.active(), Some(v2.clone()), "never onto 1/3 ready pods");
    let base =
        format!("Aborted by user (status.abort): production traffic stays on stable revision {v1}");
    assert_eq!(
        w.message(),
        format!("{base} (waiting for stable pods to be ready before switching back)")
    );
    // The serving revision is not scaled down while it still serves.
    w.advance(60);
    let d = w.step();
    assert!(d.actions.is_empty(), "{:?}", d.actions);
    assert_eq!(w.rs(&v2).replicas, 3);

    w.make_ready(&v1);
    let d = w.step();
    assert_eq!(
        d.actions,
        [switch(ACTIVE, Some(&v2), &v1), scale_to_zero(&v2, true)]
    );
    assert_eq!(w.message(), base);
}

// ----- retry -----

#[test]
fn retry_restarts_the_release_with_a_new_analysis_run() {
    let (mut w, _v1) = World::deployed(json!({}), json!({"prePromotionAnalysis": analysis()}));
    let v2 = w.set_image("app:2");
    w.step();
    w.make_ready(&v2);
    w.step();
    let run1 = w.set_run_phase(PrePromotion, AnalysisPhase::Failed);
    w.step();
    w.advance(30);
    w.step();
    w.make_all_ready();
    assert_eq!((w.rs(&v2).replicas, w.rs(&v2).ready), (0, 0));

    w.retry();
    let d = w.step();
    assert_eq!(d.actions, [scale(&v2, 3)]);
    assert_eq!(reasons(&d), ["RolloutRetry", "ScalingReplicaSet"]);
    assert_eq!(d.events[0].note, format!("Retrying the release of {v2}"));
    let s = w.status();
    assert_eq!(s.phase, Some(RolloutPhase::Progressing));
    assert_eq!(
        s.message,
        Some(format!(
            "Waiting for preview ReplicaSet web-{v2}: 0/3 pods available"
        ))
    );
    assert_eq!((s.abort, s.aborted_at.clone()), (None, None));
    assert_eq!(
        w.cond("Progressing"),
        ("True".into(), "ReplicaSetUpdated".into())
    );
    assert_eq!(bg_status(&w).pre_promotion_analysis_run_status, None);

    w.make_ready(&v2);
    let d = w.step();
    let run2 = run_name(&v2, PrePromotion, 2);
    assert_eq!(summary(&d), [format!("create run {run2}")]);
    assert_ne!(run1, run2);
    w.set_run_phase(PrePromotion, AnalysisPhase::Successful);
    w.step();
    assert_eq!(w.status().stable_rs, Some(v2.clone()));
    assert_eq!(w.active(), Some(v2));
}

#[test]
fn retry_right_after_the_abort_scale_down_does_not_trust_pods_that_are_going_away() {
    // The ReplicaSet status lags a scale-down: the engine sees `replicas: 0` with 3 ready pods.
    let (mut w, v1) = World::deployed(json!({}), json!({"postPromotionAnalysis": analysis()}));
    let v2 = w.set_image("app:2");
    w.step();
    w.make_ready(&v2);
    w.step();
    w.set_run_phase(PostPromotion, AnalysisPhase::Failed);
    w.step();
    w.advance(30);
    w.step();
    assert_eq!((w.rs(&v2).replicas, w.rs(&v2).ready), (0, 3));

    w.retry();
    let d = w.step();
    assert_eq!(d.actions, [scale(&v2, 3)]);
    assert_eq!(
        w.active(),
        Some(v1.clone()),
        "never switched to pods being replaced"
    );
    assert_eq!(
        w.message(),
        format!("Waiting for preview ReplicaSet web-{v2}: 0/3 pods available")
    );
    w.make_ready(&v2);
    let d = w.step();
    assert_eq!(d.actions[0], switch(ACTIVE, Some(&v1), &v2));
    assert_eq!(
        summary(&d)[1],
        format!("create run {}", run_name(&v2, PostPromotion, 2))
    );
}

#[test]
fn retry_before_traffic_could_return_to_stable_keeps_the_serving_revision_up() {
    let (mut w, v1) = World::deployed(
        json!({}),
        json!({"previewReplicaCount": 1, "postPromotionAnalysis": analysis()}),
    );
    let v2 = w.set_image("app:2");
    w.step();
    w.make_ready(&v2);
    w.step();
    w.make_ready(&v2);
    w.step();
    w.set_ready(&v1, 1);
    w.abort();
    w.step();
    assert_eq!(
        w.active(),
        Some(v2.clone()),
        "stable not ready: still on v2"
    );
    w.retry();
    let d = w.step();
    assert_eq!(
        summary(&d),
        [
            format!(
                "{:?}",
                Action::UpdateReplicaSet {
                    name: rs_name(&v2),
                    replicas: None,
                    deadline: DeadlineChange::Clear,
                    revision: None,
                }
            ),
            format!("create run {}", run_name(&v2, PostPromotion, 2)),
        ]
    );
    assert_eq!(w.rs(&v2).replicas, 3);
    assert_eq!(
        w.rs(&v2).scale_down_deadline,
        None,
        "the abort's scale-down is cancelled"
    );
    assert_eq!(w.phase(), Some(RolloutPhase::Progressing));
}
