//! `spec.rollbackWindow.revisions`. Argo Rollouts (docs: features/rollback-windows, "Rollback
//! Windows"): going back to one of the last N revisions skips steps and analysis; a revision
//! outside the window is released like any new one. Without a window rollgate rolls back fast
//! to every revision whose ReplicaSet is kept (a deliberate difference, see README).
//!
//! Every `World::step` also checks the traffic invariant, consistency and idempotence.

use crate::support;

use serde_json::{Value, json};
use support::{World, reasons};

/// A canary with steps, revisions app:1 .. app:3 released and completed.
fn three_revisions(spec: Value) -> World {
    let (mut w, _) =
        World::canary_deployed(spec, json!({"steps": [{"setWeight": 50}, {"pause": {}}]}));
    for image in ["app:2", "app:3"] {
        w.set_image(image);
        for _ in 0..10 {
            w.make_all_ready();
            w.step();
            w.promote();
        }
        w.make_all_ready();
        w.run_until_settled();
    }
    assert_eq!(w.status().current_revision, Some(3));
    w
}

#[test]
fn within_the_window_going_back_is_a_fast_rollback() {
    let mut w = three_revisions(json!({"rollbackWindow": {"revisions": 1}}));
    w.set_image("app:2");
    let d = w.step();
    assert!(reasons(&d).contains(&"SkipSteps"), "{:?}", reasons(&d));
    assert_eq!(w.status().promote_full, Some(true));
}

#[test]
fn outside_the_window_going_back_is_a_normal_release_with_its_steps() {
    let mut w = three_revisions(json!({"rollbackWindow": {"revisions": 1}}));
    w.set_image("app:1");
    let d = w.step();
    let r = reasons(&d);
    assert!(r.contains(&"RolloutUpdated"), "{r:?}");
    assert!(!r.contains(&"SkipSteps"), "{r:?}");
    assert_eq!(w.status().promote_full, None);
    w.make_all_ready();
    w.run_until_settled();
    assert_eq!(
        w.step_index(),
        1,
        "stops at the pause step like a new revision"
    );
}

#[test]
fn without_a_window_every_kept_revision_is_a_fast_rollback() {
    let mut w = three_revisions(json!({}));
    w.set_image("app:1");
    let d = w.step();
    assert!(reasons(&d).contains(&"SkipSteps"));
}

#[test]
fn a_window_of_0_releases_every_rollback_normally() {
    let mut w = three_revisions(json!({"rollbackWindow": {"revisions": 0}}));
    w.set_image("app:2");
    let d = w.step();
    assert!(reasons(&d).contains(&"RolloutUpdated"));
    assert_eq!(w.status().promote_full, None);
}
