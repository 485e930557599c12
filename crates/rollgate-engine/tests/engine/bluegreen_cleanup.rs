//! Old blue/green revisions after a switch: `scaleDownDelaySeconds`,
//! `scaleDownDelayRevisionLimit` and `revisionHistoryLimit`.
//!
//! Each `World::step` also checks the traffic invariant, consistency and idempotence (see
//! `support`), so every test below exercises those too.

use crate::support;

use rollgate_api::RolloutPhase;
use rollgate_engine::Action;
use serde_json::{Value, json};
use support::{ACTIVE, World, cases, deadline, requeue, rs_name, scale_to_zero, switch};

#[test]
fn old_revision_is_scaled_down_only_after_scale_down_delay_seconds() {
    let (mut w, v1) = World::deployed(json!({}), json!({"scaleDownDelaySeconds": 120}));
    let v2 = w.set_image("app:2");
    w.step();
    w.make_ready(&v2);
    let d = w.step();
    assert_eq!(
        d.actions,
        [switch(ACTIVE, Some(&v1), &v2), deadline(&v1, w.at(120))]
    );
    assert_eq!(w.rs(&v1).scale_down_deadline, Some(w.at(120)));
    assert_eq!(d.requeue_after, requeue(120));
    assert_eq!(
        d.events[2].note,
        format!("Revision {v2} is stable; previous revision {v1} scales down in 120s")
    );

    w.advance(119);
    let d = w.step();
    assert!(d.actions.is_empty());
    assert_eq!(d.requeue_after, requeue(1));
    assert_eq!(w.rs(&v1).replicas, 3);

    w.advance(1);
    let d = w.step();
    assert_eq!(d.actions, [scale_to_zero(&v1, true)]);
    assert_eq!(
        d.events[0].note,
        format!("Scaled down ReplicaSet web-{v1} from 3 to 0 (scale-down delay passed)")
    );
    assert_eq!(d.requeue_after, None);
    assert_eq!(w.rs(&v1).scale_down_deadline, None);
    assert_eq!(w.phase(), Some(RolloutPhase::Healthy));
    assert_eq!(w.active(), Some(v2));
}

#[test]
fn scale_down_delay_revision_limit_caps_the_old_revisions_kept_up() {
    let (mut w, v1) = World::deployed(
        json!({}),
        json!({"scaleDownDelaySeconds": 600, "scaleDownDelayRevisionLimit": 1}),
    );
    let v2 = w.set_image("app:2");
    w.run_until_settled();
    assert_eq!(w.rs(&v1).replicas, 3, "one old revision may wait");
    let v3 = w.set_image("app:3");
    w.step();
    w.make_ready(&v3);
    let d = w.step();
    assert_eq!(
        d.actions,
        [
            switch(ACTIVE, Some(&v2), &v3),
            deadline(&v2, w.at(600)),
            scale_to_zero(&v1, true),
        ]
    );
    assert_eq!(
        d.events.last().map(|e| e.note.clone()),
        Some(format!(
            "Scaled down ReplicaSet web-{v1} from 3 to 0 (beyond scaleDownDelayRevisionLimit)"
        ))
    );
    assert_eq!(w.rs(&v2).replicas, 3, "the newest old revision waits");
    assert_eq!(w.rs(&v1).replicas, 0);
    assert_eq!(w.rs(&v1).scale_down_deadline, None);
    assert_eq!(d.requeue_after, requeue(600));
}

/// With `bg`, the old revision is scaled down in the reconcile that switches: the scale-down
/// deadline the switch sets (`delay` seconds on) is cleared at once.
fn old_revision_scaled_down_at_the_switch(bg: Value, delay: i64) {
    let (mut w, v1) = World::deployed(json!({}), bg);
    let v2 = w.set_image("app:2");
    w.step();
    w.make_ready(&v2);
    let d = w.step();
    assert_eq!(
        d.actions,
        [
            switch(ACTIVE, Some(&v1), &v2),
            deadline(&v1, w.at(delay)),
            scale_to_zero(&v1, true),
        ]
    );
    assert_eq!(w.rs(&v1).replicas, 0);
    assert_eq!(
        w.rs(&v1).scale_down_deadline,
        None,
        "no deadline left behind"
    );
    assert_eq!(d.requeue_after, None, "nothing is waiting");
}

cases! {
    old_revision_scaled_down_at_the_switch;
    scale_down_delay_revision_limit_zero_scales_the_old_revision_down_at_the_switch:
        (json!({"scaleDownDelayRevisionLimit": 0}), 30),
    zero_scale_down_delay_scales_the_old_revision_down_at_the_switch:
        (json!({"scaleDownDelaySeconds": 0}), 0),
}

#[test]
fn revision_history_limit_deletes_the_oldest_idle_replica_sets() {
    let (mut w, v1) = World::deployed(
        json!({"revisionHistoryLimit": 1}),
        json!({"scaleDownDelaySeconds": 0}),
    );
    let v2 = w.set_image("app:2");
    w.run_until_settled();
    assert_eq!(w.rs(&v1).replicas, 0, "one idle revision is kept");
    let v3 = w.set_image("app:3");
    w.step();
    w.make_ready(&v3);
    let d = w.step();
    assert_eq!(
        d.actions,
        [
            switch(ACTIVE, Some(&v2), &v3),
            deadline(&v2, w.now),
            scale_to_zero(&v2, true),
            Action::DeleteReplicaSet { name: rs_name(&v1) },
        ]
    );
    assert_eq!(
        w.notes("ReplicaSetPruned"),
        [format!(
            "Deleted ReplicaSet web-{v1} (revision 1) beyond revisionHistoryLimit 1"
        )]
    );
    let v4 = w.set_image("app:4");
    w.run_until_settled();
    let left: Vec<(String, i64, i32)> = w
        .observed
        .replica_sets
        .iter()
        .map(|r| (r.hash.clone(), r.revision, r.replicas))
        .collect();
    assert_eq!(left, [(v3, 3, 0), (v4, 4, 3)]);
}
