//! `spec.workloadRef`: a Rollout that takes its pod template from a Deployment, as in Argo
//! Rollouts (docs "Migrating to Rollouts: Reference Deployment From Rollout"): `spec.template`
//! must then be empty, the Deployment's template drives the revisions, its selector is used when
//! the rollout has none, and `scaleDown` (`never` | `onsuccess` | `progressively`) says what
//! happens to the Deployment's own pods.

use crate::support;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use rollgate_api::{EventReason, RolloutPhase};
use rollgate_engine::{Action, Event, ObservedWorkload};
use rollgate_test_support as fixtures;
use serde_json::{Value, json};
use support::World;

const DEPLOYMENT: &str = "web-deploy";

/// The Deployment `web-deploy`: `replicas` pods labelled `app=web` running `image`.
fn deployment(image: &str, replicas: i32) -> ObservedWorkload {
    ObservedWorkload {
        name: DEPLOYMENT.into(),
        template: serde_json::from_value(fixtures::pod_template("web", image))
            .expect("pod template"),
        selector: Some(LabelSelector {
            match_labels: Some(support::labels(&[("app", "web")])),
            ..LabelSelector::default()
        }),
        replicas,
    }
}

fn workload_ref(scale_down: Option<&str>) -> Value {
    let mut r = json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": DEPLOYMENT});
    if let Some(s) = scale_down {
        r["scaleDown"] = json!(s);
    }
    r
}

/// A blue/green rollout (3 replicas) with no template and no selector of its own, referring
/// to `web-deploy` (3 pods of `app:1`).
fn world(scale_down: Option<&str>) -> World {
    let mut w = World::new(
        json!({"template": null, "selector": null, "workloadRef": workload_ref(scale_down)}),
        json!({}),
    );
    w.observed.workload = Some(deployment("app:1", 3));
    w
}

/// The Deployment's `spec.replicas` as the world holds it.
fn deployment_replicas(w: &World) -> i32 {
    w.observed.workload.as_ref().expect("deployment").replicas
}

fn scales(w: &World) -> Vec<i32> {
    w.actions
        .iter()
        .filter_map(|a| match a {
            Action::ScaleWorkload { name, replicas } if name == DEPLOYMENT => Some(*replicas),
            _ => None,
        })
        .collect()
}

/// The rollout is reported invalid with exactly `text` and nothing is touched.
fn assert_invalid(mut w: World, text: &str) {
    let d = w.step();
    assert!(d.actions.is_empty(), "{text}: {:?}", d.actions);
    assert_eq!(
        d.events,
        [Event {
            warning: true,
            reason: EventReason::InvalidSpec,
            note: text.to_string()
        }]
    );
    assert_eq!(w.phase(), Some(RolloutPhase::Degraded));
    assert_eq!(w.condition("InvalidSpec").status, "True");
    assert!(w.observed.replica_sets.is_empty());
}

#[test]
fn a_template_beside_a_workload_ref_is_invalid_naming_spec_template() {
    // Argo: "template must be empty for workload reference rollout".
    let mut w = World::new(json!({"workloadRef": workload_ref(None)}), json!({}));
    w.observed.workload = Some(deployment("app:1", 3));
    assert_invalid(
        w,
        "spec.template: must be empty when spec.workloadRef is set (the pod template comes \
         from the referenced Deployment)",
    );
}

#[test]
fn an_empty_template_beside_a_workload_ref_is_valid() {
    let mut w = World::new(json!({"workloadRef": workload_ref(None)}), json!({}));
    // Argo: an empty template (`template: {}`) counts as no template.
    w.rollout.spec.template = Some(serde_json::from_value(json!({})).expect("template"));
    w.observed.workload = Some(deployment("app:1", 3));
    w.run_until_settled();
    assert_eq!(w.phase(), Some(RolloutPhase::Healthy), "{}", w.message());
}

#[test]
fn neither_template_nor_workload_ref_is_invalid_naming_both() {
    assert_invalid(
        World::new(json!({"template": null}), json!({})),
        "spec.template: required, expected a pod template (or spec.workloadRef naming a \
         Deployment)",
    );
}

#[test]
fn a_missing_deployment_is_invalid_naming_the_workload_ref_and_touches_nothing() {
    let mut w = world(Some("onsuccess"));
    w.observed.workload = None;
    assert_invalid(
        w,
        "spec.workloadRef.name: Deployment \"web-deploy\" not found in the rollout's namespace",
    );
}

#[test]
fn a_missing_deployment_after_the_first_deploy_switches_no_traffic() {
    let mut w = world(None);
    w.run_until_settled();
    let active = w.active();
    w.observed.workload = None;
    let d = w.step();
    assert!(d.actions.is_empty(), "{:?}", d.actions);
    assert_eq!(w.phase(), Some(RolloutPhase::Degraded));
    assert_eq!(w.active(), active);
}

#[test]
fn wrong_workload_ref_fields_are_named() {
    let mut w = World::new(
        json!({"template": null, "workloadRef": {"apiVersion": "apps/v1beta1",
               "kind": "StatefulSet", "scaleDown": "always"}}),
        json!({}),
    );
    w.observed.workload = Some(deployment("app:1", 3));
    assert_invalid(
        w,
        "spec.workloadRef.apiVersion: apps/v1 expected, got \"apps/v1beta1\"; \
         spec.workloadRef.kind: Deployment expected (the only kind rollgate reads), got \
         \"StatefulSet\"; spec.workloadRef.name: required, expected the name of a Deployment \
         in the rollout's namespace; spec.workloadRef.scaleDown: one of never, onsuccess, \
         progressively expected, got \"always\"",
    );
}

#[test]
fn a_deployment_template_without_an_image_is_invalid_naming_the_deployment() {
    let mut w = world(None);
    let mut d = deployment("app:1", 3);
    if let Some(c) = d
        .template
        .spec
        .as_mut()
        .and_then(|s| s.containers.first_mut())
    {
        c.image = None;
    }
    w.observed.workload = Some(d);
    assert_invalid(
        w,
        "spec.workloadRef.name: Deployment \"web-deploy\": spec.template.spec.containers[0].image: \
         required, expected a container image for container \"app\"",
    );
}

#[test]
fn the_rollout_deploys_the_deployment_template_with_its_selector() {
    let mut w = world(None);
    w.run_until_settled();
    let v1 = fixtures::image_hash("web", "app:1");
    assert_eq!(w.phase(), Some(RolloutPhase::Healthy), "{}", w.message());
    assert_eq!(w.status().stable_rs.as_deref(), Some(v1.as_str()));
    assert_eq!(w.active().as_deref(), Some(v1.as_str()));
    let created = w
        .actions
        .iter()
        .find_map(|a| match a {
            Action::CreateReplicaSet(rs) => Some(rs.clone()),
            _ => None,
        })
        .expect("a ReplicaSet");
    let spec = created.spec;
    let image = spec
        .template
        .and_then(|t| t.spec)
        .and_then(|s| s.containers.first().and_then(|c| c.image.clone()));
    assert_eq!(image.as_deref(), Some("app:1"));
    // The selector is the Deployment's (Argo: used when the rollout has none) plus the hash.
    let labels = spec.selector.match_labels.unwrap_or_default();
    assert_eq!(labels.get("app").map(String::as_str), Some("web"));
}

#[test]
fn a_change_of_the_deployment_template_starts_a_release() {
    let mut w = world(None);
    w.run_until_settled();
    let v1 = fixtures::image_hash("web", "app:1");
    let v2 = fixtures::image_hash("web", "app:2");
    w.observed.workload = Some(deployment("app:2", 3));
    w.step();
    assert!(w.has_rs(&v2), "a ReplicaSet of the new template");
    assert_eq!(w.status().current_pod_hash.as_deref(), Some(v2.as_str()));
    assert_ne!(w.phase(), Some(RolloutPhase::Healthy));
    // Production traffic stays on the stable revision until promotion.
    assert_eq!(w.active().as_deref(), Some(v1.as_str()));
    w.run_until_settled();
    w.promote();
    w.run_until_settled();
    assert_eq!(w.active().as_deref(), Some(v2.as_str()));
    assert_eq!(w.phase(), Some(RolloutPhase::Healthy), "{}", w.message());
}

#[test]
fn scale_down_never_leaves_the_deployment_alone() {
    for scale_down in [None, Some("never")] {
        let mut w = world(scale_down);
        w.run_until_settled();
        assert_eq!(w.phase(), Some(RolloutPhase::Healthy), "{}", w.message());
        assert_eq!(scales(&w), Vec::<i32>::new(), "{scale_down:?}");
        assert_eq!(deployment_replicas(&w), 3);
    }
}

#[test]
fn scale_down_onsuccess_scales_the_deployment_to_zero_once_healthy() {
    let mut w = world(Some("onsuccess"));
    w.step();
    let v1 = fixtures::image_hash("web", "app:1");
    w.set_ready(&v1, 2);
    w.step();
    assert_ne!(w.phase(), Some(RolloutPhase::Healthy));
    assert_eq!(
        deployment_replicas(&w),
        3,
        "untouched before the rollout is Healthy"
    );
    w.run_until_settled();
    assert_eq!(w.phase(), Some(RolloutPhase::Healthy), "{}", w.message());
    assert_eq!(scales(&w), [0]);
    assert_eq!(deployment_replicas(&w), 0);
}

#[test]
fn scale_down_progressively_follows_the_rollout_available_pods() {
    let mut w = world(Some("progressively"));
    let v1 = fixtures::image_hash("web", "app:1");
    w.step();
    assert_eq!(deployment_replicas(&w), 3, "no rollout pod available yet");
    w.set_ready(&v1, 1);
    w.step();
    assert_eq!(deployment_replicas(&w), 2);
    w.set_ready(&v1, 2);
    w.step();
    assert_eq!(deployment_replicas(&w), 1);
    // A pod that stops being available before the rollout is Healthy: the Deployment grows
    // back (Argo: "if the rollout fails, the Deployment is scaled back up").
    w.set_ready(&v1, 1);
    w.step();
    assert_eq!(deployment_replicas(&w), 2);
    w.run_until_settled();
    assert_eq!(w.phase(), Some(RolloutPhase::Healthy), "{}", w.message());
    assert_eq!(deployment_replicas(&w), 0);
    assert_eq!(scales(&w), [2, 1, 2, 0]);
}

#[test]
fn a_canary_with_a_workload_ref_scales_the_deployment_on_success() {
    let mut w = World::canary(
        json!({"replicas": 4, "workloadRef": workload_ref(Some("onsuccess"))}),
        json!({"steps": [{"setWeight": 50}, {"pause": {}}]}),
    );
    // (The fixture merges `spec` twice, so a `null` there would not remove these.)
    w.rollout.spec.template = None;
    w.rollout.spec.selector = None;
    w.observed.workload = Some(deployment("app:1", 4));
    w.run_until_settled();
    assert_eq!(w.phase(), Some(RolloutPhase::Healthy), "{}", w.message());
    assert_eq!(deployment_replicas(&w), 0);
    // A new Deployment template is a canary release like a new spec.template.
    let v2 = fixtures::image_hash("web", "app:2");
    w.observed.workload = Some(deployment("app:2", 0));
    w.run_until_settled();
    assert!(w.has_rs(&v2));
    assert_eq!(w.phase(), Some(RolloutPhase::Paused), "{}", w.message());
    assert_eq!(scales(&w), [0], "the Deployment is scaled once");
}
