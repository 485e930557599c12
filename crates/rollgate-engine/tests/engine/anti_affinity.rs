//! Blue/green `antiAffinity` (Argo Rollouts, features/anti-affinity): the new revision's pods
//! avoid the nodes of the stable revision's pods through a pod anti-affinity term on
//! `kubernetes.io/hostname` against the stable pod-template hash, preferred (with a weight) or
//! required. Only the new ReplicaSet's pod template carries it; the first revision has none.

use crate::support;

use rollgate_api::labels::POD_TEMPLATE_HASH;
use rollgate_engine::Action;
use serde_json::{Value, json};
use support::World;

/// The pod anti-affinity of the ReplicaSet created by `actions`, as JSON.
fn created_anti_affinity(actions: &[Action]) -> Value {
    let rs = actions
        .iter()
        .find_map(|a| match a {
            Action::CreateReplicaSet(rs) => Some(rs),
            _ => None,
        })
        .expect("a ReplicaSet is created");
    let affinity = rs
        .spec
        .template
        .as_ref()
        .and_then(|t| t.spec.as_ref())
        .and_then(|s| s.affinity.as_ref())
        .and_then(|a| a.pod_anti_affinity.as_ref());
    serde_json::to_value(affinity).expect("json")
}

#[test]
fn preferred_anti_affinity_against_the_stable_hash() {
    let mut w = World::new(
        json!({}),
        json!({"antiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": {"weight": 40}}}),
    );
    let d = w.step();
    assert_eq!(
        created_anti_affinity(&d.actions),
        Value::Null,
        "first revision: none"
    );
    w.run_until_settled();
    let v1 = w.status().stable_rs.expect("stable");
    w.set_image("app:2");
    let d = w.step();
    assert_eq!(
        created_anti_affinity(&d.actions),
        json!({"preferredDuringSchedulingIgnoredDuringExecution": [{
            "weight": 40,
            "podAffinityTerm": {
                "labelSelector": {"matchLabels": {POD_TEMPLATE_HASH: v1}},
                "topologyKey": "kubernetes.io/hostname"
            }
        }]})
    );
}

#[test]
fn required_anti_affinity_against_the_stable_hash() {
    let (mut w, v1) = World::deployed(
        json!({}),
        json!({"antiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {}}}),
    );
    w.set_image("app:2");
    let d = w.step();
    assert_eq!(
        created_anti_affinity(&d.actions),
        json!({"requiredDuringSchedulingIgnoredDuringExecution": [{
            "labelSelector": {"matchLabels": {POD_TEMPLATE_HASH: v1}},
            "topologyKey": "kubernetes.io/hostname"
        }]})
    );
}

#[test]
fn a_weight_out_of_range_is_invalid_naming_the_field() {
    let mut w = World::new(
        json!({}),
        json!({"antiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": {"weight": 0}}}),
    );
    let d = w.step();
    assert!(d.actions.is_empty());
    assert!(
        w.message().contains(
            "spec.strategy.blueGreen.antiAffinity.preferredDuringSchedulingIgnoredDuringExecution\
             .weight: expected a weight from 1 to 100, got 0"
        ),
        "{}",
        w.message()
    );
}
