//! Invalid Argo Rollouts fields (an `antiAffinity` with both forms, or a weight out of range),
//! containers without an image, and the decision for a Rollout known to be invalid without validation
//! (`validate::reject`): Degraded, an InvalidSpec condition naming the field, one Warning
//! Event per generation, and no action.

use crate::support;

use rollgate_api::{EventReason, Rollout, RolloutPhase};
use rollgate_engine::validate::{Problem, reject};
use rollgate_engine::{Event, Input, Observed};
use serde_json::{Value, json};
use support::{World, ts};

/// Checks that the new rollout of `w` is reported invalid with exactly `text`, touching
/// nothing, and reported once.
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
    assert_eq!(w.message(), format!("InvalidSpec: {text}"));
    let c = w.condition("InvalidSpec");
    assert_eq!(
        (c.status.as_str(), c.reason.as_str()),
        ("True", "InvalidSpec")
    );
    assert!(w.observed.replica_sets.is_empty());
    w.advance(600);
    let d = w.step();
    assert!(d.actions.is_empty() && d.events.is_empty(), "{text}");
}

#[test]
fn an_anti_affinity_with_both_forms_is_invalid_and_pod_metadata_is_supported() {
    // activeMetadata is supported (tests/ephemeral_metadata.rs), antiAffinity too
    // (tests/anti_affinity.rs); only an antiAffinity with both forms is named.
    assert_invalid(
        World::new(
            json!({}),
            json!({"activeMetadata": {"labels": {"role": "active"}}, "antiAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": {"weight": 10},
                "requiredDuringSchedulingIgnoredDuringExecution": {}}}),
        ),
        "spec.strategy.blueGreen.antiAffinity: expected exactly one of \
         preferredDuringSchedulingIgnoredDuringExecution and \
         requiredDuringSchedulingIgnoredDuringExecution",
    );
}

#[test]
fn an_invalid_field_added_mid_life_stops_everything() {
    let (mut w, _v1) = World::deployed(json!({}), json!({}));
    w.edit_spec(|s| {
        if let Some(bg) = s.strategy.blue_green.as_mut() {
            bg.anti_affinity = serde_json::from_value(json!({
                "preferredDuringSchedulingIgnoredDuringExecution": {"weight": 0}}))
            .expect("antiAffinity");
        }
    });
    w.set_template_image("app:2");
    let d = w.step();
    assert!(d.actions.is_empty(), "{:?}", d.actions);
    assert_eq!(w.phase(), Some(RolloutPhase::Degraded));
    assert!(
        w.message()
            .contains("spec.strategy.blueGreen.antiAffinity.preferredDuringSchedulingIgnoredDuringExecution.weight"),
        "{}",
        w.message()
    );
}

#[test]
fn a_container_without_an_image_is_invalid() {
    for image in [Value::Null, json!(""), json!(" ")] {
        let mut container = json!({"name": "app"});
        if !image.is_null() {
            container["image"] = image;
        }
        assert_invalid(
            World::new(
                json!({"template": {"spec": {"containers": [container]}}}),
                json!({}),
            ),
            "spec.template.spec.containers[0].image: required, expected a container image for \
             container \"app\"",
        );
    }
}

#[test]
fn an_init_container_without_an_image_is_invalid() {
    assert_invalid(
        World::new(
            json!({"template": {"spec": {"initContainers": [{"name": "migrate"}]}}}),
            json!({}),
        ),
        "spec.template.spec.initContainers[0].image: required, expected a container image for \
         container \"migrate\"",
    );
}

#[test]
fn a_rejected_rollout_is_reported_once_per_generation_and_nothing_moves() {
    let mut rollout: Rollout = serde_json::from_value(json!({
        "apiVersion": "rollgate.dev/v1alpha1", "kind": "Rollout",
        "metadata": {"name": "web", "namespace": "shop", "generation": 3},
        "spec": {}
    }))
    .expect("rollout");
    let problems = [Problem {
        field: "spec.replicas".into(),
        expected: "invalid value: integer `2147483648`, expected i32".into(),
    }];
    let observed = Observed::default();
    let now = ts(support::T0);
    let d = reject(
        Input {
            rollout: &rollout,
            observed: &observed,
            now,
        },
        &problems,
    );
    let text = "spec.replicas: invalid value: integer `2147483648`, expected i32";
    assert!(d.actions.is_empty());
    assert_eq!(d.requeue_after, None);
    assert_eq!(
        d.events,
        [Event {
            warning: true,
            reason: EventReason::InvalidSpec,
            note: text.into()
        }]
    );
    assert_eq!(d.status.phase, Some(RolloutPhase::Degraded));
    assert_eq!(
        d.status.message.as_deref(),
        Some(&*format!("InvalidSpec: {text}"))
    );
    assert_eq!(d.status.observed_generation, Some(3));
    assert!(
        d.status
            .conditions
            .iter()
            .any(|c| c.type_ == "InvalidSpec" && c.status == "True" && c.message == text)
    );
    // Once the status is written, the same generation is not reported again...
    rollout.status = Some(d.status.clone());
    let input = Input {
        rollout: &rollout,
        observed: &observed,
        now,
    };
    let again = reject(input, &problems);
    assert!(again.events.is_empty() && again.actions.is_empty());
    assert_eq!(again.status, d.status);
    // ...but a new generation is.
    rollout.metadata.generation = Some(4);
    let input = Input {
        rollout: &rollout,
        observed: &observed,
        now,
    };
    assert_eq!(reject(input, &problems).events.len(), 1);
}
