//! The replica counts and the selector of the status, with Argo Rollouts' meaning, for both
//! strategies. Argo's sources for each field:
//!
//! - `rollout/sync.go` `calculateBaseStatus`: `replicas` is the sum of the ReplicaSets'
//!   `status.replicas` (non-terminated pods, as the ReplicaSet controller reports them, not
//!   `spec.replicas`), `updatedReplicas` that of the new ReplicaSet, `readyReplicas` the sum of
//!   their `status.readyReplicas`;
//! - `rollout/bluegreen.go` `syncRolloutStatusBlueGreen`: once the active Service selects a
//!   ReplicaSet, `HPAReplicas`, `availableReplicas` and `readyReplicas` are that ReplicaSet's
//!   alone and `selector` is its selector (the rollout's plus the pod-template hash); before,
//!   every ReplicaSet counts and `selector` is the rollout's;
//! - `rollout/canary.go` `syncRolloutStatusCanary`: `availableReplicas` and `HPAReplicas` count
//!   every ReplicaSet and `selector` is the rollout's;
//! - the CRD's scale subresource reads `statusReplicasPath: .status.HPAReplicas` and
//!   `labelSelectorPath: .status.selector` (`pkg/apis/rollouts/v1alpha1/types.go`).
//!
//! Each `World::step` also checks that the status stays the same when the next reconcile
//! observes the step's result (see `support`).

use crate::support;

use rollgate_api::RolloutStatus;
use serde_json::json;
use support::{World, manual};

/// `(replicas, updatedReplicas, readyReplicas, availableReplicas, HPAReplicas)`.
fn counts(s: &RolloutStatus) -> (i32, i32, i32, i32, i32) {
    let n = |v: Option<i32>| v.expect("count set");
    (
        n(s.replicas),
        n(s.updated_replicas),
        n(s.ready_replicas),
        n(s.available_replicas),
        n(s.hpa_replicas),
    )
}

fn hashed(hash: &str) -> Option<String> {
    Some(format!("app=web,rollgate.dev/pod-template-hash={hash}"))
}

#[test]
fn blue_green_counts_the_active_replica_set_after_a_promotion_with_the_old_one_still_up() {
    // The case: old ReplicaSet kept up by scaleDownDelaySeconds after the switch.
    // Argo counts 3 ready (the active ReplicaSet), not 6 (every pod of every revision).
    let (mut w, v1) = World::deployed(json!({}), json!({"scaleDownDelaySeconds": 600}));
    assert_eq!(counts(&w.status()), (3, 3, 3, 3, 3));
    assert_eq!(w.status().selector, hashed(&v1));
    let v2 = w.set_image("app:2");
    w.step();
    w.make_ready(&v2);
    w.step();
    assert_eq!(w.active(), Some(v2.clone()));
    assert_eq!(
        w.rs(&v1).replicas,
        3,
        "the old revision waits for its delay"
    );
    let s = w.status();
    // 6 pods in all, 3 of them the new revision's; ready, available and HPA: the active 3.
    assert_eq!(counts(&s), (6, 3, 3, 3, 3));
    assert_eq!(s.selector, hashed(&v2));
}

#[test]
fn blue_green_before_the_switch_counts_the_revision_the_active_service_still_selects() {
    let (mut w, v1) = World::deployed(json!({}), manual());
    let v2 = w.set_image("app:2");
    w.step();
    w.make_ready(&v2);
    w.step();
    assert_eq!(w.active(), Some(v1.clone()), "paused before the switch");
    let s = w.status();
    // The preview's 3 ready pods are updated pods but receive no production traffic.
    assert_eq!(counts(&s), (6, 3, 3, 3, 3));
    assert_eq!(s.selector, hashed(&v1));

    w.promote();
    w.step();
    assert_eq!(w.active(), Some(v2.clone()));
    assert_eq!(w.status().selector, hashed(&v2));
}

#[test]
fn blue_green_first_deploy_selects_the_new_hash_at_once() {
    // The active Service points at the first ReplicaSet as it is created, which reports no
    // pod yet; Argo's activeRS is found, so its selector (with the hash) is used.
    let mut w = World::new(json!({}), json!({}));
    w.step();
    let v1 = w.active().expect("active selects the first revision");
    assert_eq!(counts(&w.status()), (0, 0, 0, 0, 0));
    assert_eq!(w.status().selector, hashed(&v1));
    w.make_ready(&v1);
    w.step();
    assert_eq!(counts(&w.status()), (3, 3, 3, 3, 3));
}

#[test]
fn status_replicas_are_the_pods_the_replica_sets_report_not_their_spec() {
    // Argo's calculateBaseStatus reads rs.Status.Replicas: a scale shows once the ReplicaSet
    // controller reports it.
    let (mut w, _) = World::deployed(json!({}), json!({}));
    w.check_invariant = false;
    w.edit_spec(|s| s.replicas = Some(5));
    w.step();
    assert_eq!(counts(&w.status()), (3, 3, 3, 3, 3));
    w.run_until_settled();
    assert_eq!(counts(&w.status()), (5, 5, 5, 5, 5));

    w.edit_spec(|s| s.replicas = Some(2));
    w.step();
    // The report still shows 5 pods; ready pods are counted only up to the 2 kept.
    assert_eq!(counts(&w.status()), (5, 5, 2, 2, 5));
    w.run_until_settled();
    assert_eq!(counts(&w.status()), (2, 2, 2, 2, 2));
}

#[test]
fn canary_counts_every_replica_set_with_the_rollouts_selector() {
    let (mut w, v1) = World::canary_deployed(
        json!({}),
        json!({"steps": [{"setWeight": 20}, {"pause": {}}]}),
    );
    assert_eq!(counts(&w.status()), (10, 10, 10, 10, 10));
    let v2 = w.set_image("app:2");
    w.run_until_settled();
    assert_eq!(w.step_index(), 1, "paused at the pause step");
    let (canary, stable) = (w.rs(&v2).pods, w.rs(&v1).pods);
    assert!(
        canary > 0 && stable > 0,
        "both revisions run: {canary} + {stable}"
    );
    let total = canary + stable;
    // Ready, available and HPA replicas count the stable and the canary pods alike.
    assert_eq!(counts(&w.status()), (total, canary, total, total, total));
    assert_eq!(w.status().selector.as_deref(), Some("app=web"));
}

#[test]
fn selector_keeps_match_expressions_in_kubernetes_string_form() {
    // metav1.FormatLabelSelector: requirements sorted by key, set values sorted.
    let (w, _) = World::canary_deployed(
        json!({"selector": {"matchLabels": {"app": "web"},
                            "matchExpressions": [
                                {"key": "tier", "operator": "In", "values": ["web", "edge"]},
                                {"key": "canary-only", "operator": "DoesNotExist"}]}}),
        json!({"steps": [{"setWeight": 20}]}),
    );
    assert_eq!(
        w.status().selector.as_deref(),
        Some("app=web,!canary-only,tier in (edge,web)")
    );
}
