//! The blue/green progress deadline: crash-looping revisions (first deploy, preview, promotion
//! scale-up, full promotion), what counts as progress, waits that never time out, and
//! `progressDeadlineAbort: false`.
//!
//! Each `World::step` also checks the traffic invariant, consistency and idempotence (see
//! `support`), so every test below exercises those too.

use crate::support;

use rollgate_api::{AnalysisPhase, RolloutPhase};
use rollgate_engine::{Action, AnalysisKind, ServiceRole};
use serde_json::json;
use support::{ACTIVE, World, analysis, deadline, reasons, requeue, scale_to_zero, switch};

use AnalysisKind::PrePromotion;

#[test]
fn a_first_deploy_that_never_becomes_ready_is_reported_but_not_aborted() {
    let mut w = World::new(json!({"progressDeadlineSeconds": 60}), json!({}));
    let v1 = w.crash("app:1");
    w.step();
    w.advance(60);
    let d = w.step();
    let waiting = format!("First deploy: waiting for ReplicaSet web-{v1}: 0/3 pods available");
    assert!(
        d.actions.is_empty(),
        "nothing to fall back to: {:?}",
        d.actions
    );
    assert_eq!(reasons(&d), ["ProgressDeadlineExceeded"]);
    assert_eq!(d.events[0].note, format!("No progress for 60s: {waiting}"));
    let s = w.status();
    assert_eq!(s.phase, Some(RolloutPhase::Degraded));
    assert_eq!(
        s.message,
        Some(format!("ProgressDeadlineExceeded: {waiting}"))
    );
    assert_eq!(s.abort, None);
    assert_eq!(w.active(), Some(v1));
}

#[test]
fn a_crash_looping_revision_is_aborted_at_the_progress_deadline_and_never_receives_traffic() {
    let (mut w, v1) = World::deployed(json!({"progressDeadlineSeconds": 300}), json!({}));
    let bad = w.crash("app:bad");
    w.set_image("app:bad");
    let d = w.step();
    assert_eq!(d.requeue_after, requeue(300));
    w.advance(299);
    w.make_all_ready();
    let d = w.step();
    assert!(d.actions.is_empty());
    assert_eq!(w.phase(), Some(RolloutPhase::Progressing));
    assert_eq!(d.requeue_after, requeue(1));

    w.advance(1);
    let d = w.step();
    let message = format!(
        "Aborted: ProgressDeadlineExceeded: no progress for 300s (Waiting for preview \
         ReplicaSet web-{bad}: 0/3 pods available); production traffic returned to stable \
         revision {v1}"
    );
    assert_eq!(d.actions, [deadline(&bad, w.at(30))]);
    assert_eq!(reasons(&d), ["RolloutAborted"]);
    let s = w.status();
    assert_eq!(s.phase, Some(RolloutPhase::Degraded));
    assert_eq!(s.message, Some(message));
    assert_eq!(s.abort, Some(true));
    assert_eq!(
        w.cond("Progressing"),
        ("False".into(), "RolloutAborted".into())
    );

    w.advance(30);
    let d = w.step();
    assert_eq!(d.actions, [scale_to_zero(&bad, true)]);
    assert!(!w.actions.iter().any(|a| matches!(
        a,
        Action::SwitchService { role: ServiceRole::Active, to, .. } if to == &bad
    )));
    assert_eq!(w.active(), Some(v1));
}

#[test]
fn the_progress_deadline_counts_from_the_last_progress() {
    let (mut w, _) = World::deployed(json!({"progressDeadlineSeconds": 100}), json!({}));
    let v2 = w.set_image("app:2");
    w.step();
    for ready in 1..=2 {
        w.advance(90);
        w.set_ready(&v2, ready);
        let d = w.step();
        assert_eq!(
            w.phase(),
            Some(RolloutPhase::Progressing),
            "at {ready} pods"
        );
        assert_eq!(d.requeue_after, requeue(100));
    }
    w.advance(100);
    w.step();
    assert_eq!(w.phase(), Some(RolloutPhase::Degraded));
    assert!(
        w.message().contains("2/3 pods available"),
        "{}",
        w.message()
    );
}

#[test]
fn the_progress_deadline_also_covers_the_scale_up_after_promotion() {
    let (mut w, v1) = World::deployed(
        json!({"progressDeadlineSeconds": 120}),
        json!({"previewReplicaCount": 1}),
    );
    let v2 = w.set_image("app:2");
    w.step();
    w.make_ready(&v2);
    w.step();
    assert_eq!(w.rs(&v2).replicas, 3);
    w.advance(120);
    w.step();
    assert_eq!(w.phase(), Some(RolloutPhase::Degraded));
    assert_eq!(
        w.message(),
        format!(
            "Aborted: ProgressDeadlineExceeded: no progress for 120s (Promoting: waiting for \
             ReplicaSet web-{v2}: 1/3 pods available before switching the active Service); \
             production traffic returned to stable revision {v1}"
        )
    );
    assert_eq!(w.active(), Some(v1));
}

#[test]
fn waiting_for_a_human_or_an_analysis_never_hits_the_progress_deadline() {
    let (mut w, v1) = World::deployed(
        json!({"progressDeadlineSeconds": 60}),
        json!({"autoPromotionEnabled": false, "prePromotionAnalysis": analysis()}),
    );
    let v2 = w.set_image("app:2");
    w.step();
    w.make_ready(&v2);
    w.step();
    w.advance(3600);
    w.step();
    assert_eq!(
        w.phase(),
        Some(RolloutPhase::Progressing),
        "analysis running"
    );
    w.set_run_phase(PrePromotion, AnalysisPhase::Successful);
    w.step();
    w.advance(3600);
    w.step();
    assert_eq!(w.phase(), Some(RolloutPhase::Paused));
    assert_eq!(w.active(), Some(v1));
}

#[test]
fn without_progress_deadline_abort_the_release_is_degraded_and_recovers_when_pods_become_ready() {
    let (mut w, v1) = World::deployed(
        json!({"progressDeadlineSeconds": 300, "progressDeadlineAbort": false}),
        json!({}),
    );
    let slow = w.crash("app:slow");
    w.set_image("app:slow");
    w.step();
    w.advance(300);
    let d = w.step();
    assert!(
        d.actions.is_empty(),
        "nothing is rolled back: {:?}",
        d.actions
    );
    let waiting = format!("Waiting for preview ReplicaSet web-{slow}: 0/3 pods available");
    assert_eq!(reasons(&d), ["ProgressDeadlineExceeded"]);
    assert!(d.events[0].warning);
    assert_eq!(d.events[0].note, format!("No progress for 300s: {waiting}"));
    let s = w.status();
    assert_eq!(s.phase, Some(RolloutPhase::Degraded));
    assert_eq!(
        s.message,
        Some(format!("ProgressDeadlineExceeded: {waiting}"))
    );
    assert_eq!(s.abort, None);
    assert_eq!(
        w.cond("Progressing"),
        ("False".into(), "ProgressDeadlineExceeded".into())
    );
    assert_eq!(
        w.preview(),
        Some(slow.clone()),
        "the preview stays for debugging"
    );
    assert_eq!(w.rs(&slow).replicas, 3);

    w.advance(3600);
    let d = w.step();
    assert!(d.events.is_empty(), "reported once");

    w.crashing.remove(&slow);
    w.set_ready(&slow, 1);
    let d = w.step();
    assert_eq!(w.phase(), Some(RolloutPhase::Progressing));
    assert_eq!(
        w.cond("Progressing"),
        ("True".into(), "ReplicaSetUpdated".into())
    );
    assert_eq!(d.requeue_after, requeue(300));
    w.make_ready(&slow);
    let d = w.step();
    assert_eq!(d.actions[0], switch(ACTIVE, Some(&v1), &slow));
    assert_eq!(w.phase(), Some(RolloutPhase::Healthy));
    assert_eq!(w.status().stable_rs, Some(slow));
}

/// With the fix above, a full promotion of a revision whose pods never become ready is still
/// aborted at the progress deadline, once, and stays aborted (no abort/retry loop).
#[test]
fn a_full_promotion_of_a_crash_looping_revision_is_aborted_at_the_deadline_for_good() {
    let (mut w, v1) = World::deployed(
        json!({"progressDeadlineSeconds": 60}),
        json!({"prePromotionAnalysis": analysis()}),
    );
    let bad = w.crash("app:bad");
    w.set_image("app:bad");
    w.step();
    w.promote_full();
    w.step();
    w.advance(60);
    let d = w.step();
    assert_eq!(reasons(&d), ["RolloutAborted"]);
    let s = w.status();
    assert_eq!(s.phase, Some(RolloutPhase::Degraded));
    assert_eq!((s.abort, s.promote_full), (Some(true), None));
    for _ in 0..3 {
        w.advance(60);
        let d = w.step();
        assert!(!reasons(&d).contains(&"RolloutRetry"), "{:?}", reasons(&d));
    }
    assert_eq!(w.rs(&bad).replicas, 0);
    assert_eq!(w.active(), Some(v1));
    assert_eq!(w.notes("RolloutAborted").len(), 1);
}
