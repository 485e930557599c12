//! Ephemeral metadata, as Argo Rollouts defines it (docs: features/ephemeral-metadata):
//! `blueGreen.previewMetadata` / `activeMetadata` and `canary.canaryMetadata` /
//! `stableMetadata` are labels and annotations the pods of a role carry only while they hold
//! it. The new ReplicaSet is created with its role's metadata in its pod template; when the
//! role changes (preview -> active on promotion, canary -> stable on completion) the pods are
//! updated in place, not recreated, and the ReplicaSet's pod template follows. Other labels
//! (the template's own, the pod-template hash) are never touched.
//!
//! The worlds here model pods (`World::model_pods`): every step is also checked for
//! idempotence once the ReplicaSet controller has created the pods it asked for.

use crate::support;

use rollgate_api::labels::POD_TEMPLATE_HASH;
use rollgate_api::{EventReason, RolloutPhase};
use rollgate_engine::{Action, ObservedPod};
use serde_json::{Value, json};
use support::World;

fn label<'a>(p: &'a ObservedPod, key: &str) -> Option<&'a str> {
    p.metadata.labels.get(key).map(String::as_str)
}

fn annotation<'a>(p: &'a ObservedPod, key: &str) -> Option<&'a str> {
    p.metadata.annotations.get(key).map(String::as_str)
}

fn names(pods: &[ObservedPod]) -> Vec<String> {
    pods.iter().map(|p| p.name.clone()).collect()
}

/// Every pod of `hash` carries `role` (or no `role` label for `None`), keeps `app=web` and
/// its pod-template hash.
fn assert_role(w: &World, hash: &str, role: Option<&str>) {
    let pods = w.pods_of(hash);
    assert!(!pods.is_empty(), "no pods of {hash}");
    for p in &pods {
        assert_eq!(label(p, "role"), role, "pod {}", p.name);
        assert_eq!(label(p, "app"), Some("web"), "pod {}", p.name);
        assert_eq!(label(p, POD_TEMPLATE_HASH), Some(hash), "pod {}", p.name);
    }
    let rs = w.rs(hash);
    assert_eq!(
        rs.template_metadata.labels.get("role").map(String::as_str),
        role,
        "template of {}",
        rs.name
    );
}

fn bg_world(bg: Value) -> World {
    let mut w = World::new(json!({}), bg);
    w.model_pods = true;
    w.run_until_settled();
    w
}

fn bg_metadata() -> Value {
    json!({
        "autoPromotionEnabled": false,
        "activeMetadata": {"labels": {"role": "active"}, "annotations": {"traffic": "live"}},
        "previewMetadata": {"labels": {"role": "preview", "preview": "yes"}},
    })
}

#[test]
fn blue_green_first_revision_carries_the_active_metadata() {
    // Argo: with no stable ReplicaSet yet (or the new one being the stable one) the rollout is
    // "fully rolled out" and the new ReplicaSet carries activeMetadata.
    let mut w = World::new(json!({}), bg_metadata());
    w.model_pods = true;
    let d = w.step();
    let Action::CreateReplicaSet(rs) = &d.actions[0] else {
        panic!("creates the ReplicaSet first: {:?}", d.actions)
    };
    let meta = rs
        .spec
        .template
        .as_ref()
        .and_then(|t| t.metadata.as_ref())
        .expect("template metadata");
    let labels = meta.labels.clone().unwrap_or_default();
    assert_eq!(labels.get("role").map(String::as_str), Some("active"));
    assert_eq!(labels.get("app").map(String::as_str), Some("web"));
    w.run_until_settled();
    let v1 = w.hash_of("app:1");
    assert_role(&w, &v1, Some("active"));
    // The pod-template hash comes from spec.template only: the metadata does not change it.
    assert_eq!(
        v1,
        rollgate_test_support::image_hash("web", "app:1"),
        "hash of the template without metadata"
    );
    for p in w.pods_of(&v1) {
        assert_eq!(annotation(&p, "traffic"), Some("live"));
        assert_eq!(label(&p, "preview"), None);
    }
}

#[test]
fn blue_green_preview_pods_become_active_in_place_on_promotion() {
    let mut w = bg_world(bg_metadata());
    let v1 = w.hash_of("app:1");
    let v2 = w.set_image("app:2");
    w.step();
    w.make_ready(&v2);
    w.step();
    assert_eq!(w.phase(), Some(RolloutPhase::Paused));
    // Argo: during the update the new ReplicaSet carries previewMetadata and the stable one
    // activeMetadata.
    assert_role(&w, &v2, Some("preview"));
    assert_role(&w, &v1, Some("active"));
    let preview_pods = names(&w.pods_of(&v2));
    for p in w.pods_of(&v2) {
        assert_eq!(label(&p, "preview"), Some("yes"));
        assert_eq!(annotation(&p, "traffic"), None);
    }

    w.promote();
    w.run_until_settled();
    assert_eq!(w.status().stable_rs.as_deref(), Some(v2.as_str()));
    // Argo: "the Pods of the ReplicaSet will then be updated in place": the same pods, now
    // with activeMetadata and without the preview-only keys.
    assert_eq!(names(&w.pods_of(&v2)), preview_pods, "pods were replaced");
    assert_role(&w, &v2, Some("active"));
    for p in w.pods_of(&v2) {
        assert_eq!(label(&p, "preview"), None, "pod {}", p.name);
        assert_eq!(annotation(&p, "traffic"), Some("live"), "pod {}", p.name);
    }
    assert!(
        !w.actions
            .iter()
            .any(|a| matches!(a, Action::DeletePod { .. })),
        "no pod deleted"
    );
    // The previous revision holds no role any more: its template (and any pod it still has)
    // loses the active metadata.
    let old = w.rs(&v1);
    assert!(!old.template_metadata.labels.contains_key("role"));
    assert!(old.ephemeral.labels.is_empty() && old.ephemeral.annotations.is_empty());
    for p in w.pods_of(&v1) {
        assert_eq!(label(&p, "role"), None, "pod {}", p.name);
        assert_eq!(annotation(&p, "traffic"), None, "pod {}", p.name);
    }
}

#[test]
fn blue_green_old_pods_lose_the_active_metadata_while_waiting_for_their_scale_down() {
    let mut w = bg_world(json!({
        "activeMetadata": {"labels": {"role": "active"}},
        "scaleDownDelaySeconds": 600,
    }));
    let v1 = w.hash_of("app:1");
    let v2 = w.set_image("app:2");
    w.run_until_settled();
    assert_eq!(w.active().as_deref(), Some(v2.as_str()));
    assert!(w.rs(&v1).replicas > 0, "old revision still up");
    assert_role(&w, &v1, None);
    assert_role(&w, &v2, Some("active"));
}

fn canary_world(canary: Value) -> World {
    let mut w = World::canary(json!({}), canary);
    w.model_pods = true;
    w.run_until_settled();
    w
}

#[test]
fn canary_pods_move_from_canary_to_stable_metadata_on_completion() {
    let mut w = canary_world(json!({
        "steps": [{"setWeight": 20}, {"pause": {}}],
        "canaryMetadata": {"labels": {"role": "canary", "track": "canary"},
                           "annotations": {"scrape": "canary"}},
        "stableMetadata": {"labels": {"role": "stable"}},
    }));
    let v1 = w.hash_of("app:1");
    assert_role(&w, &v1, Some("stable"));
    let v2 = w.set_image("app:2");
    w.run_until_settled();
    assert_eq!(w.phase(), Some(RolloutPhase::Paused));
    // Argo: the canary ReplicaSet is created with canaryMetadata in its pod template.
    assert_role(&w, &v2, Some("canary"));
    assert_role(&w, &v1, Some("stable"));
    for p in w.pods_of(&v2) {
        assert_eq!(label(&p, "track"), Some("canary"));
        assert_eq!(annotation(&p, "scrape"), Some("canary"));
    }
    let canary_pods = names(&w.pods_of(&v2));

    w.promote();
    w.run_until_settled();
    assert_eq!(w.status().stable_rs.as_deref(), Some(v2.as_str()));
    // The canary pods are still there (the scale-up only added pods), updated in place.
    let now = names(&w.pods_of(&v2));
    assert!(
        canary_pods.iter().all(|p| now.contains(p)),
        "canary pods {canary_pods:?} replaced: {now:?}"
    );
    assert_role(&w, &v2, Some("stable"));
    for p in w.pods_of(&v2) {
        assert_eq!(label(&p, "track"), None, "pod {}", p.name);
        assert_eq!(annotation(&p, "scrape"), None, "pod {}", p.name);
    }
    assert!(
        !w.actions
            .iter()
            .any(|a| matches!(a, Action::DeletePod { .. })),
        "no pod deleted"
    );
}

#[test]
fn an_aborted_canary_keeps_the_canary_metadata_and_stable_keeps_its_own() {
    let mut w = canary_world(json!({
        "steps": [{"setWeight": 20}, {"pause": {}}],
        "canaryMetadata": {"labels": {"role": "canary"}},
        "stableMetadata": {"labels": {"role": "stable"}},
    }));
    let v1 = w.hash_of("app:1");
    let v2 = w.set_image("app:2");
    w.run_until_settled();
    let canary_pods = names(&w.pods_of(&v2));
    assert!(!canary_pods.is_empty());
    w.abort();
    w.step();
    // Argo: the stable ReplicaSet is not the new one, so the new one stays the canary.
    assert_eq!(w.rs(&v2).template_metadata.labels["role"], "canary");
    for p in w.pods_of(&v2) {
        assert_eq!(label(&p, "role"), Some("canary"));
    }
    assert_role(&w, &v1, Some("stable"));
}

#[test]
fn metadata_removed_from_the_spec_comes_off_the_pods() {
    // rollgate records what it put on (annotation rollgate.dev/ephemeral-metadata) and takes
    // it off when the spec no longer asks for it (Argo leaves such keys behind).
    let mut w = bg_world(json!({"activeMetadata": {"labels": {"role": "active"}}}));
    let v1 = w.hash_of("app:1");
    assert_role(&w, &v1, Some("active"));
    w.edit_spec(|s| {
        if let Some(bg) = s.strategy.blue_green.as_mut() {
            bg.active_metadata = None;
        }
    });
    let d = w.step();
    assert!(
        d.actions
            .iter()
            .any(|a| matches!(a, Action::SetPodMetadata { .. })),
        "{:?}",
        d.actions
    );
    assert_role(&w, &v1, None);
    assert!(w.rs(&v1).ephemeral.labels.is_empty());
}

#[test]
fn a_changed_value_is_updated_on_the_pods_in_place() {
    let mut w = bg_world(json!({"activeMetadata": {"labels": {"role": "active"}}}));
    let v1 = w.hash_of("app:1");
    let before = names(&w.pods_of(&v1));
    w.edit_spec(|s| {
        if let Some(m) = s
            .strategy
            .blue_green
            .as_mut()
            .and_then(|b| b.active_metadata.as_mut())
        {
            m.labels.insert("role".into(), "live".into());
        }
    });
    w.step();
    assert_role(&w, &v1, Some("live"));
    assert_eq!(names(&w.pods_of(&v1)), before);
    assert_eq!(w.hash_of("app:1"), v1, "metadata is not part of the hash");
}

#[test]
fn without_metadata_no_pod_or_replica_set_is_touched() {
    let mut w = bg_world(json!({}));
    let v2 = w.set_image("app:2");
    w.run_until_settled();
    assert_eq!(w.active().as_deref(), Some(v2.as_str()));
    assert!(!w.actions.iter().any(|a| matches!(
        a,
        Action::SetPodMetadata { .. } | Action::SetReplicaSetMetadata { .. }
    )));
}

fn assert_invalid(mut w: World, text: &str) {
    let d = w.step();
    assert!(d.actions.is_empty(), "{:?}", d.actions);
    assert_eq!(d.events.len(), 1);
    assert_eq!(d.events[0].reason, EventReason::InvalidSpec);
    assert_eq!(d.events[0].note, text);
    assert_eq!(w.phase(), Some(RolloutPhase::Degraded));
}

#[test]
fn metadata_may_not_set_a_selector_label() {
    assert_invalid(
        World::canary(
            json!({}),
            json!({"steps": [{"setWeight": 20}],
                   "canaryMetadata": {"labels": {"app": "other"}}}),
        ),
        "spec.strategy.canary.canaryMetadata.labels: must not set app, a label of \
         spec.selector (the pods would leave their ReplicaSet)",
    );
}

#[test]
fn metadata_may_not_set_the_pod_template_hash() {
    assert_invalid(
        World::new(
            json!({}),
            json!({"previewMetadata": {"labels": {POD_TEMPLATE_HASH: "x"}}}),
        ),
        "spec.strategy.blueGreen.previewMetadata.labels: must not set \
         rollgate.dev/pod-template-hash, the label rollgate tells revisions apart by",
    );
}

#[test]
fn metadata_labels_must_be_valid_label_keys_and_values() {
    // The API server would refuse the patch of every pod: refused up front, naming the field.
    assert_invalid(
        World::new(
            json!({}),
            json!({"activeMetadata": {"labels": {"role": "not ok!"},
                                      "annotations": {"bad key": "x"}}}),
        ),
        "spec.strategy.blueGreen.activeMetadata.labels.role: \"not ok!\": a label value \
         expected (at most 63 characters: letters, digits, '-', '_' or '.', starting and ending \
         with a letter or digit); spec.strategy.blueGreen.activeMetadata.annotations: key \
         \"bad key\": a qualified name expected (NAME or PREFIX/NAME: NAME at most 63 \
         characters of letters, digits, '-', '_' or '.', starting and ending with a letter or \
         digit; PREFIX a lowercase DNS subdomain)",
    );
}
