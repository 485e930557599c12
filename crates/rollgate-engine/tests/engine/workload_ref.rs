//! `spec.workloadRef`: a Rollout that takes its pod template from a Deployment, a ReplicaSet or
//! a PodTemplate, as in Argo Rollouts (docs "Migrating to Rollouts: Reference Deployment From
//! Rollout"; Argo's `templateref.go` reads the same three kinds): `spec.template` must then be
//! empty, the object's template drives the revisions, its selector is used when the rollout has
//! none (a PodTemplate has none), and `scaleDown` (`never` | `onsuccess` | `progressively`) says
//! what happens to a Deployment's or ReplicaSet's own pods (a PodTemplate runs none).

use crate::support;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use rollgate_api::{EventReason, RolloutPhase};
use rollgate_engine::{Action, Event, ObservedWorkload, WorkloadController, WorkloadKind};
use rollgate_test_support as fixtures;
use serde_json::{Value, json};
use support::World;

const DEPLOYMENT: &str = "web-deploy";

/// The Deployment `web-deploy`: `replicas` pods labelled `app=web` running `image`.
fn deployment(image: &str, replicas: i32) -> ObservedWorkload {
    ObservedWorkload {
        kind: WorkloadKind::Deployment,
        name: DEPLOYMENT.into(),
        template: serde_json::from_value(fixtures::pod_template("web", image))
            .expect("pod template"),
        selector: Some(LabelSelector {
            match_labels: Some(support::labels(&[("app", "web")])),
            ..LabelSelector::default()
        }),
        replicas,
        controller: None,
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
            Action::ScaleWorkload {
                kind: WorkloadKind::Deployment,
                name,
                replicas,
            } if name == DEPLOYMENT => Some(*replicas),
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
         from the referenced object)",
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
         Deployment, ReplicaSet or PodTemplate)",
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
        "spec.workloadRef.kind: one of Deployment (apps/v1), ReplicaSet (apps/v1), \
         PodTemplate (v1) expected, got \"StatefulSet\"; spec.workloadRef.name: required, \
         expected the name of the referenced object in the rollout's namespace; \
         spec.workloadRef.scaleDown: one of never, onsuccess, progressively expected, got \
         \"always\"",
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

const REPLICA_SET: &str = "web-legacy";
const POD_TEMPLATE: &str = "web-template";

/// The ReplicaSet `web-legacy` (not the rollout's): `replicas` pods labelled `app=web` running
/// `image`.
fn replica_set(image: &str, replicas: i32) -> ObservedWorkload {
    ObservedWorkload {
        kind: WorkloadKind::ReplicaSet,
        name: REPLICA_SET.into(),
        ..deployment(image, replicas)
    }
}

/// The PodTemplate `web-template`: a template labelled `app=web` running `image`, no selector,
/// no pods.
fn pod_template(image: &str) -> ObservedWorkload {
    ObservedWorkload {
        kind: WorkloadKind::PodTemplate,
        name: POD_TEMPLATE.into(),
        selector: None,
        replicas: 0,
        ..deployment(image, 0)
    }
}

/// A blue/green rollout (3 replicas) with no template of its own referring to `workload` by
/// `apiVersion`/`kind`, with `extra` merged into `spec`.
fn world_of(workload: &ObservedWorkload, scale_down: Option<&str>, extra: Value) -> World {
    let mut r = json!({"apiVersion": workload.kind.api_version(), "kind": workload.kind.as_str(),
                       "name": workload.name});
    if let Some(s) = scale_down {
        r["scaleDown"] = json!(s);
    }
    let mut spec = json!({"template": null, "selector": null, "workloadRef": r});
    fixtures::merge(&mut spec, extra);
    let mut w = World::new(spec, json!({}));
    w.observed.workload = Some(workload.clone());
    w
}

/// The `ScaleWorkload` actions taken so far, as `(kind, name, replicas)`.
fn workload_scales(w: &World) -> Vec<(WorkloadKind, String, i32)> {
    w.actions
        .iter()
        .filter_map(|a| match a {
            Action::ScaleWorkload {
                kind,
                name,
                replicas,
            } => Some((*kind, name.clone(), *replicas)),
            _ => None,
        })
        .collect()
}

/// The notes of the `ScalingWorkload` Events published so far.
fn scaling_notes(w: &World) -> Vec<String> {
    w.events
        .iter()
        .filter(|e| e.reason == EventReason::ScalingWorkload)
        .map(|e| e.note.clone())
        .collect()
}

#[test]
fn references_name_the_kind_of_an_accepted_workload_ref_only() {
    let refs = |r: Value| {
        let w = World::new(json!({"template": null, "workloadRef": r}), json!({}));
        rollgate_engine::references(&w.rollout).workload
    };
    assert_eq!(
        refs(json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs"})),
        Some((WorkloadKind::ReplicaSet, "rs".to_string()))
    );
    assert_eq!(
        refs(json!({"apiVersion": "v1", "kind": "PodTemplate", "name": "pt"})),
        Some((WorkloadKind::PodTemplate, "pt".to_string()))
    );
    assert_eq!(
        refs(json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": "d"})),
        Some((WorkloadKind::Deployment, "d".to_string()))
    );
    // A pair that is not accepted is not read.
    assert_eq!(
        refs(json!({"apiVersion": "v1", "kind": "ReplicaSet", "name": "rs"})),
        None
    );
    assert_eq!(
        refs(json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "s"})),
        None
    );
}

#[test]
fn a_kind_with_the_wrong_api_version_is_invalid_naming_the_expected_one() {
    for (api_version, kind, text) in [
        (
            "v1",
            "ReplicaSet",
            "spec.workloadRef.apiVersion: apps/v1 expected for kind ReplicaSet, got \"v1\"",
        ),
        (
            "apps/v1",
            "PodTemplate",
            "spec.workloadRef.apiVersion: v1 expected for kind PodTemplate, got \"apps/v1\"",
        ),
        (
            "extensions/v1beta1",
            "Deployment",
            "spec.workloadRef.apiVersion: apps/v1 expected for kind Deployment, got \
             \"extensions/v1beta1\"",
        ),
    ] {
        let mut w = World::new(
            json!({"template": null, "workloadRef": {"apiVersion": api_version, "kind": kind,
                   "name": "x"}}),
            json!({}),
        );
        w.observed.workload = Some(deployment("app:1", 3));
        assert_invalid(w, text);
    }
}

#[test]
fn a_workload_of_another_kind_with_the_name_is_not_found() {
    // The Deployment `web-deploy` exists, the rollout refers to a ReplicaSet of that name.
    let mut w = World::new(
        json!({"template": null, "selector": null, "workloadRef": {"apiVersion": "apps/v1",
               "kind": "ReplicaSet", "name": DEPLOYMENT}}),
        json!({}),
    );
    w.observed.workload = Some(deployment("app:1", 3));
    assert_invalid(
        w,
        "spec.workloadRef.name: ReplicaSet \"web-deploy\" not found in the rollout's namespace",
    );
}

#[test]
fn a_replica_set_ref_deploys_its_template_with_its_selector_in_a_replica_set_of_its_own() {
    let mut w = world_of(&replica_set("app:1", 3), None, json!({}));
    w.run_until_settled();
    let v1 = fixtures::image_hash("web", "app:1");
    assert_eq!(w.phase(), Some(RolloutPhase::Healthy), "{}", w.message());
    assert_eq!(w.status().stable_rs.as_deref(), Some(v1.as_str()));
    assert_eq!(w.active().as_deref(), Some(v1.as_str()));
    // The rollout runs its own ReplicaSet; the referenced one is only read.
    let names: Vec<String> = w
        .observed
        .replica_sets
        .iter()
        .map(|rs| rs.name.clone())
        .collect();
    assert_eq!(names, [support::rs_name(&v1)]);
    assert!(!names.contains(&REPLICA_SET.to_string()));
    assert_eq!(w.observed.workload.as_ref().map(|r| r.replicas), Some(3));
    assert!(workload_scales(&w).is_empty(), "scaleDown never");
    // A new image in the referenced ReplicaSet is a new release.
    let v2 = fixtures::image_hash("web", "app:2");
    w.observed.workload = Some(replica_set("app:2", 3));
    w.step();
    assert!(w.has_rs(&v2));
    assert_eq!(w.status().current_pod_hash.as_deref(), Some(v2.as_str()));
}

#[test]
fn a_replica_set_ref_with_scale_down_onsuccess_scales_it_to_zero_with_an_event() {
    let mut w = world_of(&replica_set("app:1", 3), Some("onsuccess"), json!({}));
    w.run_until_settled();
    assert_eq!(w.phase(), Some(RolloutPhase::Healthy), "{}", w.message());
    assert_eq!(
        workload_scales(&w),
        [(WorkloadKind::ReplicaSet, REPLICA_SET.to_string(), 0)]
    );
    assert_eq!(
        scaling_notes(&w),
        [
            "Scaled down ReplicaSet web-legacy from 3 to 0 (spec.workloadRef.scaleDown: \
          onsuccess)"
        ]
    );
    // A ReplicaSet of the rollout's own was never scaled for it.
    let v1 = fixtures::image_hash("web", "app:1");
    assert_eq!(w.rs(&v1).replicas, 3);
}

#[test]
fn scale_down_progressively_publishes_one_event_per_scale_of_the_deployment() {
    let mut w = world(Some("progressively"));
    let v1 = fixtures::image_hash("web", "app:1");
    w.step();
    w.set_ready(&v1, 1);
    let d = w.step();
    assert_eq!(
        d.events
            .iter()
            .filter(|e| e.reason == EventReason::ScalingWorkload)
            .map(|e| (e.warning, e.note.as_str()))
            .collect::<Vec<_>>(),
        [(
            false,
            "Scaled down Deployment web-deploy from 3 to 2 (spec.workloadRef.scaleDown: \
             progressively)"
        )]
    );
    w.run_until_settled();
    assert_eq!(
        scaling_notes(&w),
        [
            "Scaled down Deployment web-deploy from 3 to 2 (spec.workloadRef.scaleDown: \
             progressively)",
            "Scaled down Deployment web-deploy from 2 to 0 (spec.workloadRef.scaleDown: \
             progressively)",
        ]
    );
    assert_eq!(scales(&w), [2, 0]);
}

#[test]
fn scale_down_never_publishes_no_scaling_event() {
    let mut w = world(Some("never"));
    w.run_until_settled();
    assert!(scaling_notes(&w).is_empty());
    assert!(
        w.events
            .iter()
            .all(|e| e.reason != EventReason::ScalingWorkload)
    );
}

#[test]
fn a_pod_template_ref_needs_the_rollout_selector() {
    // Argo: a PodTemplate has no selector path; the rollout's own selector is required.
    assert_invalid(
        world_of(&pod_template("app:1"), None, json!({})),
        "spec.selector: required, expected a label selector (a PodTemplate named by \
         spec.workloadRef has none)",
    );
}

#[test]
fn a_pod_template_ref_deploys_its_template_and_scale_down_scales_nothing() {
    for scale_down in [
        None,
        Some("never"),
        Some("onsuccess"),
        Some("progressively"),
    ] {
        let mut w = world_of(
            &pod_template("app:1"),
            scale_down,
            json!({"selector": {"matchLabels": {"app": "web"}}}),
        );
        w.run_until_settled();
        let v1 = fixtures::image_hash("web", "app:1");
        assert_eq!(
            w.phase(),
            Some(RolloutPhase::Healthy),
            "{scale_down:?}: {}",
            w.message()
        );
        assert_eq!(w.active().as_deref(), Some(v1.as_str()));
        assert_eq!(w.rs(&v1).replicas, 3);
        // A PodTemplate runs no pods: nothing to scale, no Event.
        assert!(workload_scales(&w).is_empty(), "{scale_down:?}");
        assert!(scaling_notes(&w).is_empty(), "{scale_down:?}");
        // Its template changing is a new release.
        let v2 = fixtures::image_hash("web", "app:2");
        w.observed.workload = Some(pod_template("app:2"));
        w.step();
        assert!(w.has_rs(&v2), "{scale_down:?}");
    }
}

#[test]
fn a_pod_template_without_an_image_is_invalid_naming_its_template_path() {
    let mut t = pod_template("app:1");
    if let Some(c) = t
        .template
        .spec
        .as_mut()
        .and_then(|s| s.containers.first_mut())
    {
        c.image = None;
    }
    assert_invalid(
        world_of(
            &t,
            None,
            json!({"selector": {"matchLabels": {"app": "web"}}}),
        ),
        "spec.workloadRef.name: PodTemplate \"web-template\": template.spec.containers[0].image: \
         required, expected a container image for container \"app\"",
    );
}

#[test]
fn a_replica_set_the_rollout_controls_is_not_a_workload_ref() {
    // The referenced ReplicaSet says it is controlled by this Rollout (owner reference).
    let own = ObservedWorkload {
        controller: Some(WorkloadController {
            kind: "Rollout".into(),
            name: "web".into(),
        }),
        ..replica_set("app:1", 3)
    };
    assert_invalid(
        world_of(&own, Some("onsuccess"), json!({})),
        "spec.workloadRef.name: ReplicaSet \"web-legacy\" is one of this rollout's own \
         ReplicaSets, expected an object the rollout does not manage",
    );
}

#[test]
fn a_replica_set_among_the_rollout_own_is_not_a_workload_ref_and_is_never_scaled() {
    // Deployed from a ReplicaSet of its own making, the rollout is then pointed at its own
    // ReplicaSet (found among `replica_sets`, owner references aside).
    let mut w = world_of(&replica_set("app:1", 3), None, json!({}));
    w.run_until_settled();
    let v1 = fixtures::image_hash("web", "app:1");
    let own = support::rs_name(&v1);
    let active = w.active();
    w.rollout.spec.workload_ref = Some(rollgate_api::WorkloadRef {
        api_version: Some("apps/v1".into()),
        kind: Some("ReplicaSet".into()),
        name: Some(own.clone()),
        scale_down: Some("onsuccess".into()),
    });
    w.observed.workload = Some(ObservedWorkload {
        name: own.clone(),
        ..replica_set("app:1", 3)
    });
    let d = w.step();
    assert!(d.actions.is_empty(), "{:?}", d.actions);
    assert_eq!(w.phase(), Some(RolloutPhase::Degraded));
    assert!(
        w.message().contains(&format!(
            "spec.workloadRef.name: ReplicaSet \"{own}\" is one of this rollout's own \
             ReplicaSets"
        )),
        "{}",
        w.message()
    );
    assert_eq!(w.rs(&v1).replicas, 3);
    assert_eq!(w.active(), active);
}

#[test]
fn scale_down_of_a_replica_set_another_controller_sizes_is_invalid() {
    let owned = ObservedWorkload {
        controller: Some(WorkloadController {
            kind: "Deployment".into(),
            name: "web-old".into(),
        }),
        ..replica_set("app:1", 3)
    };
    assert_invalid(
        world_of(&owned, Some("progressively"), json!({})),
        "spec.workloadRef.scaleDown: never expected: ReplicaSet \"web-legacy\" is controlled \
         by Deployment \"web-old\", which would undo its scale (or refer to the Deployment)",
    );
    // Read only (scaleDown never), its template is fine.
    let mut w = world_of(&owned, Some("never"), json!({}));
    w.run_until_settled();
    assert_eq!(w.phase(), Some(RolloutPhase::Healthy), "{}", w.message());
    assert!(workload_scales(&w).is_empty());
}
