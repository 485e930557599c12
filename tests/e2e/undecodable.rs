//! Rollouts the controller cannot decode (values a looser or older CRD let the API server
//! store: `replicas: 2147483648`, `setWeight: "50%"`, `paused: "yes"`, `steps: [null]`,
//! `template.spec: "oops"`, no `spec`) are reported one by one, InvalidSpec status and one
//! Warning Event each, while every other rollout is managed as usual: whether they are there
//! when the controller starts or arrive while it runs.

use std::time::Duration;

use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ApiResource, DynamicObject, ListParams, PostParams};
use kube::{Api, CustomResourceExt};
use rollgate_api::{Rollout, RolloutPhase};
use rollgate_e2e::*;
use rollgate_sim::SimConfig;
use rollgate_test_support::{blue_green_rollout, blue_green_services, canary_rollout, merge};
use serde_json::{Value, json};

type R = anyhow::Result<()>;

/// The Rollout CRD with an open schema, as an older CRD (or one without bounds) would serve
/// it: the API server stores whatever it is given.
fn loose_rollout_crd() -> anyhow::Result<CustomResourceDefinition> {
    let mut crd = serde_json::to_value(Rollout::crd())?;
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"] =
        json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true});
    Ok(serde_json::from_value(crd)?)
}

/// Creates `objects` while the API server serves Rollouts under the loose CRD, then serves the
/// real one again when `restore` (the objects stay stored as they are).
async fn store_under_loose_crd(stack: &Stack, objects: &[Value], restore: bool) -> R {
    stack.sim.register_crd(&loose_rollout_crd()?);
    let api = Api::<DynamicObject>::namespaced_with(
        stack.client.clone(),
        NS,
        &ApiResource::erase::<Rollout>(&()),
    );
    for obj in objects {
        api.create(
            &PostParams::default(),
            &serde_json::from_value(obj.clone())?,
        )
        .await?;
    }
    if restore {
        stack.sim.register_crd(&Rollout::crd());
    }
    Ok(())
}

/// A blue/green rollout `name` with `patch` merged over it (a `null` removes a member).
fn bad(name: &str, patch: Value) -> Value {
    let mut r = blue_green_rollout(name, "app:1", json!({}), json!({}));
    merge(&mut r, patch);
    r
}

/// A canary rollout `name` with `patch` merged over it.
fn bad_canary(name: &str, patch: Value) -> Value {
    let mut r = canary_rollout(
        name,
        "app:1",
        json!({}),
        json!({"steps": [{"setWeight": 50}]}),
    );
    merge(&mut r, patch);
    r
}

/// Waits (virtual time) until the stored Rollout `name` is Degraded; returns its status JSON.
async fn wait_degraded(stack: &Stack, name: &str) -> anyhow::Result<Value> {
    for _ in 0..120 {
        let obj = stack
            .sim
            .get_object("rollgate.dev/v1alpha1", "rollouts", Some(NS), name)
            .unwrap_or_default();
        if obj["status"]["phase"] == "Degraded" {
            return Ok(obj["status"].clone());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    anyhow::bail!("{name} never reported Degraded")
}

/// `(type, reason, note)` of the Events regarding `name`.
async fn events(stack: &Stack, name: &str) -> anyhow::Result<Vec<(String, String, String)>> {
    let list = Api::<Event>::namespaced(stack.client.clone(), NS)
        .list(&ListParams::default())
        .await?;
    Ok(list
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
        .map(|e| {
            (
                e.type_.unwrap_or_default(),
                e.reason.unwrap_or_default(),
                e.note.unwrap_or_default(),
            )
        })
        .collect())
}

/// Checks that `name` is reported InvalidSpec naming `field` (and `shown`), with exactly one
/// Warning Event, and that nothing else was done for it.
async fn assert_reported(stack: &Stack, name: &str, field: &str, shown: &str) -> R {
    let status = wait_degraded(stack, name).await?;
    let message = status["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with(&format!("InvalidSpec: {field}: ")) && message.contains(shown),
        "{name}: {message}"
    );
    let conditions = status["conditions"].as_array().cloned().unwrap_or_default();
    let invalid = conditions
        .iter()
        .find(|c| c["type"] == "InvalidSpec")
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        (&invalid["status"], &invalid["reason"]),
        (&json!("True"), &json!("InvalidSpec")),
        "{name}: {status}"
    );
    let events = events(stack, name).await?;
    assert_eq!(events.len(), 1, "{name}: {events:?}");
    let (type_, reason, note) = &events[0];
    assert_eq!(
        (type_.as_str(), reason.as_str()),
        ("Warning", "InvalidSpec")
    );
    assert!(note.starts_with(&format!("{field}: ")), "{name}: {note}");
    assert!(
        replica_sets(stack, name).await?.is_empty(),
        "{name}: no ReplicaSet"
    );
    // The only writes to the Rollout are its creation and status replaces.
    for entry in stack.sim.audit_log() {
        if entry.path.contains(&format!("/rollouts/{name}")) {
            assert!(
                entry.method == "PUT" && entry.path.ends_with("/status"),
                "{name}: {} {}",
                entry.method,
                entry.path
            );
        }
    }
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_controller_starting_beside_undecodable_rollouts_manages_the_others() -> R {
    let mut stack = Stack::new(SimConfig {
        default_ready_delay: Duration::from_secs(5),
        ..Default::default()
    })
    .await?;
    stack.apply_yaml(&blue_green_services("web"), NS).await?;
    stack
        .apply_yaml(
            &blue_green_rollout("web", "app:1", json!({}), json!({})).to_string(),
            NS,
        )
        .await?;
    store_under_loose_crd(
        &stack,
        &[
            bad("huge", json!({"spec": {"replicas": 2_147_483_648_i64}})),
            bad("oops", json!({"spec": {"template": {"spec": "oops"}}})),
            bad("nospec", json!({"spec": null})),
        ],
        true,
    )
    .await?;
    stack.start_controller("controller-1");

    wait_phase(&stack, "web", RolloutPhase::Healthy, 120).await?;
    assert!(stack.telemetry.is_ready(), "the initial list succeeded");
    assert_reported(&stack, "huge", "spec.replicas", "2147483648").await?;
    assert_reported(&stack, "oops", "spec.template.spec", "\"oops\"").await?;
    assert_reported(&stack, "nospec", "spec", "required").await?;

    // Reported once per generation: later resyncs and other changes add nothing.
    stack.set_image(NS, "web", "app", "app:2").await?;
    wait_phase(&stack, "web", RolloutPhase::Healthy, 300).await?;
    for name in ["huge", "oops", "nospec"] {
        assert_eq!(events(&stack, name).await?.len(), 1, "{name}");
    }
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn undecodable_rollouts_arriving_while_the_controller_runs_are_reported() -> R {
    let stack = stack().await?;
    stack.apply_yaml(&blue_green_services("web"), NS).await?;
    stack
        .apply_yaml(
            &blue_green_rollout("web", "app:1", json!({}), json!({})).to_string(),
            NS,
        )
        .await?;
    let first = wait_phase(&stack, "web", RolloutPhase::Healthy, 120).await?;

    // From now on the API server serves the loose CRD.
    store_under_loose_crd(
        &stack,
        &[
            bad_canary(
                "percent",
                json!({"spec": {"strategy": {"canary": {"steps": [{"setWeight": "50%"}]}}}}),
            ),
            bad("yes", json!({"spec": {"paused": "yes"}})),
            bad_canary(
                "nullstep",
                json!({"spec": {"strategy": {"canary": {"steps": [null]}}}}),
            ),
        ],
        false,
    )
    .await?;
    assert_reported(
        &stack,
        "percent",
        "spec.strategy.canary.steps[0].setWeight",
        "\"50%\"",
    )
    .await?;
    assert_reported(&stack, "yes", "spec.paused", "\"yes\"").await?;
    assert_reported(&stack, "nullstep", "spec.strategy.canary.steps[0]", "null").await?;

    // The good rollout is still managed.
    stack.set_image(NS, "web", "app", "app:2").await?;
    let second = wait_phase(&stack, "web", RolloutPhase::Healthy, 300).await?;
    let stable = |r: &Rollout| r.status.as_ref().and_then(|s| s.stable_rs.clone());
    assert_ne!(stable(&first), stable(&second), "app:2 was released");
    assert_eq!(
        stable(&second),
        selected(&stack, "web-active").await?,
        "the active Service serves app:2"
    );
    Ok(())
}
