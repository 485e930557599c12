//! The `ReplicaFailure` condition of a Rollout, as Argo Rollouts sets it (`rollout/sync.go`,
//! `calculateRolloutConditions` and `getReplicaFailures`, copied from the Deployment
//! controller): when the Kubernetes ReplicaSet controller cannot create or delete pods (a
//! ResourceQuota, an admission webhook refusal) it puts a `ReplicaFailure` condition on the
//! ReplicaSet (reason `FailedCreate` / `FailedDelete`); the rollout copies the new
//! ReplicaSet's, else an older one's, with the same status, reason and message, and removes
//! its own once none has one. The condition reports; it decides nothing (the phase, the
//! actions and the Events stay what they would be without it).
//!
//! Each `World::step` also checks the traffic invariant, consistency, idempotence and wording
//! independence (see `support`).

use crate::support;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use rollgate_api::{ConditionReason, RolloutPhase};
use rollgate_engine::{ConditionStatus, ObservedReplicaSet, ReplicaFailure};
use serde_json::json;
use support::{World, reasons};

const QUOTA: &str = "pods \"web-abc-\" is forbidden: exceeded quota: pods, requested: pods=1, \
                     used: pods=3, limited: pods=3";
const WEBHOOK: &str = "admission webhook \"deny.example.com\" denied the request: no";

/// The ReplicaSet controller reports a `ReplicaFailure` condition on the ReplicaSet of `hash`.
fn fail(w: &mut World, hash: &str, reason: ConditionReason, message: &str) {
    set_failure(
        w,
        hash,
        Some(ReplicaFailure {
            status: ConditionStatus::True,
            reason: Some(reason),
            message: message.into(),
            since: Some(support::ts("2026-11-22T09:59:30Z")),
        }),
    );
}

fn set_failure(w: &mut World, hash: &str, failure: Option<ReplicaFailure>) {
    let rs = w
        .observed
        .replica_sets
        .iter_mut()
        .find(|r| r.hash == hash)
        .unwrap_or_else(|| panic!("no ReplicaSet for {hash}"));
    rs.failure = failure;
}

/// `(status, reason, message)` of the rollout's ReplicaFailure condition, if it has one.
fn failure(w: &World) -> Option<(String, String, String)> {
    w.status()
        .conditions
        .into_iter()
        .find(|c| c.type_ == "ReplicaFailure")
        .map(|c| (c.status, c.reason, c.message))
}

fn failed(reason: &str, message: &str) -> Option<(String, String, String)> {
    Some(("True".into(), reason.into(), message.into()))
}

#[test]
fn a_new_replica_set_that_cannot_create_pods_puts_its_failure_on_the_rollout() {
    let (mut w, v1) = World::deployed(json!({}), json!({}));
    assert_eq!(failure(&w), None, "no ReplicaSet reports a failure");
    let v2 = w.set_image("app:2");
    w.step();
    assert!(w.has_rs(&v2));
    fail(&mut w, &v2, ConditionReason::FailedCreate, QUOTA);
    w.step();
    assert_eq!(failure(&w), failed("FailedCreate", QUOTA));
    // It reports, nothing more: the release is still in progress, the active Service stays.
    assert_eq!(w.phase(), Some(RolloutPhase::Progressing));
    assert_eq!(w.active(), Some(v1));
    // Argo copies the ReplicaSet condition's transition time into both times.
    let c = w.condition("ReplicaFailure");
    let at = Some(Time(support::ts("2026-11-22T09:59:30Z")));
    assert_eq!(c.last_transition_time, at);
    assert_eq!(c.last_update_time, at);
}

#[test]
fn the_condition_goes_away_once_the_replica_set_recovers() {
    let (mut w, _) = World::deployed(json!({}), json!({}));
    let v2 = w.set_image("app:2");
    w.step();
    fail(&mut w, &v2, ConditionReason::FailedCreate, QUOTA);
    w.step();
    assert_eq!(failure(&w), failed("FailedCreate", QUOTA));
    // The quota is raised: the ReplicaSet controller creates the pods and drops its condition.
    set_failure(&mut w, &v2, None);
    w.step();
    assert_eq!(failure(&w), None);
    assert!(!w.has_condition("ReplicaFailure"));
    w.run_until_settled();
    assert_eq!(w.phase(), Some(RolloutPhase::Healthy));
    assert_eq!(w.active(), Some(v2));
    assert_eq!(failure(&w), None);
}

#[test]
fn an_old_replica_set_failure_is_copied_when_the_new_one_has_none() {
    let (mut w, v1) = World::deployed(json!({}), json!({}));
    let v2 = w.set_image("app:2");
    w.step();
    // The old revision cannot delete a pod (say a webhook refuses it); the new one is fine.
    fail(&mut w, &v1, ConditionReason::FailedDelete, WEBHOOK);
    w.step();
    assert_eq!(failure(&w), failed("FailedDelete", WEBHOOK));
    // Once the new ReplicaSet reports one too, the new one's is the rollout's.
    fail(&mut w, &v2, ConditionReason::FailedCreate, QUOTA);
    w.step();
    assert_eq!(failure(&w), failed("FailedCreate", QUOTA));
    // The new one recovers: back to the old one's.
    set_failure(&mut w, &v2, None);
    w.step();
    assert_eq!(failure(&w), failed("FailedDelete", WEBHOOK));
    set_failure(&mut w, &v1, None);
    w.step();
    assert_eq!(failure(&w), None);
}

#[test]
fn of_several_old_replica_sets_the_newest_revision_wins_whatever_the_listing_order() {
    let (mut w, v1) = World::deployed(json!({}), json!({"scaleDownDelaySeconds": 600}));
    let v2 = w.set_image("app:2");
    w.run_until_settled();
    assert_eq!(w.status().stable_rs, Some(v2.clone()));
    let v3 = w.set_image("app:3");
    w.step();
    assert!(w.has_rs(&v1) && w.has_rs(&v2) && w.has_rs(&v3));
    fail(&mut w, &v1, ConditionReason::FailedDelete, "first");
    fail(&mut w, &v2, ConditionReason::FailedDelete, "second");
    w.step();
    assert_eq!(failure(&w), failed("FailedDelete", "second"));
    w.observed.replica_sets.reverse();
    w.step();
    assert_eq!(failure(&w), failed("FailedDelete", "second"));
}

#[test]
fn a_canary_copies_the_failure_of_its_canary_replica_set() {
    let (mut w, v1) = World::canary_deployed(
        json!({"replicas": 4}),
        json!({"steps": [{"setWeight": 50}, {"pause": {}}]}),
    );
    let v2 = w.set_image("app:2");
    w.step();
    assert!(w.has_rs(&v2));
    fail(&mut w, &v2, ConditionReason::FailedCreate, QUOTA);
    w.step();
    assert_eq!(failure(&w), failed("FailedCreate", QUOTA));
    set_failure(&mut w, &v2, None);
    w.step();
    assert_eq!(failure(&w), None);
    assert_eq!(w.status().stable_rs, Some(v1));
}

#[test]
fn the_status_and_an_unknown_reason_are_copied_as_they_are() {
    let (mut w, _) = World::deployed(json!({}), json!({}));
    let v2 = w.set_image("app:2");
    w.step();
    set_failure(
        &mut w,
        &v2,
        Some(ReplicaFailure {
            status: ConditionStatus::False,
            reason: None,
            message: String::new(),
            since: None,
        }),
    );
    w.step();
    assert_eq!(
        failure(&w),
        Some(("False".into(), String::new(), String::new()))
    );
}

/// Decisions never read the copied message: two worlds that differ only in it decide the same
/// actions and Events, and statuses that differ only in that condition's message.
#[test]
fn the_message_decides_nothing() {
    let (mut w, _) = World::deployed(json!({}), json!({}));
    let v2 = w.set_image("app:2");
    w.step();
    let mut other = w.clone();
    fail(&mut w, &v2, ConditionReason::FailedCreate, QUOTA);
    fail(&mut other, &v2, ConditionReason::FailedCreate, WEBHOOK);
    for _ in 0..3 {
        let (a, b) = (w.step(), other.step());
        assert_eq!(a.actions, b.actions);
        assert_eq!(reasons(&a), reasons(&b));
        assert_eq!(a.requeue_after, b.requeue_after);
        let mut sa = a.status.clone();
        for c in &mut sa.conditions {
            if c.type_ == "ReplicaFailure" {
                c.message = WEBHOOK.into();
            }
        }
        assert_eq!(sa, b.status);
        w.make_all_ready();
        other.make_all_ready();
    }
}

#[test]
fn the_condition_is_read_from_the_replica_set_status() {
    let rs: ReplicaSet = serde_json::from_value(json!({
        "metadata": {"name": "web-abc", "labels": {"rollgate.dev/pod-template-hash": "abc"}},
        "spec": {"replicas": 3, "selector": {}},
        "status": {"replicas": 0, "conditions": [
            {"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate",
             "message": QUOTA, "lastTransitionTime": "2026-11-22T10:00:00Z"}
        ]}
    }))
    .expect("ReplicaSet json");
    let o = ObservedReplicaSet::from_replica_set(&rs).expect("hash label");
    assert_eq!(
        o.failure,
        Some(ReplicaFailure {
            status: ConditionStatus::True,
            reason: Some(ConditionReason::FailedCreate),
            message: QUOTA.into(),
            since: Some(support::ts("2026-11-22T10:00:00Z")),
        })
    );
    // Another reason than the ReplicaSet controller's two is kept as none of ours.
    let mut other = rs.clone();
    if let Some(c) = other
        .status
        .as_mut()
        .and_then(|s| s.conditions.as_mut())
        .and_then(|c| c.first_mut())
    {
        c.reason = Some("RolloutAborted".into());
    }
    let o = ObservedReplicaSet::from_replica_set(&other).expect("hash label");
    assert_eq!(o.failure.map(|f| f.reason), Some(None));
    // No condition, no failure.
    let mut none = rs;
    none.status = None;
    let o = ObservedReplicaSet::from_replica_set(&none).expect("hash label");
    assert_eq!(o.failure, None);
}
