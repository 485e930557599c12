//! Events and status writes: a transition is published once even when writing the status that
//! records it fails with a conflict and the reconcile runs again.

use k8s_openapi::api::events::v1::Event;
use kube::Api;
use kube::api::ListParams;
use rollgate_api::{AbortReason, RolloutPhase};
use rollgate_e2e::*;
use rollgate_test_support::{blue_green_rollout, blue_green_services};
use serde_json::json;

type R = anyhow::Result<()>;

/// Reasons of the Events published on the Rollout `name`, oldest first.
async fn reasons(stack: &Stack, name: &str) -> anyhow::Result<Vec<String>> {
    let list = Api::<Event>::namespaced(stack.client.clone(), NS)
        .list(&ListParams::default())
        .await?;
    Ok(list
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
        .filter_map(|e| e.reason)
        .collect())
}

/// Notes of the Events with `reason` published on the Rollout `name`.
async fn notes(stack: &Stack, name: &str, reason: &str) -> anyhow::Result<Vec<String>> {
    let list = Api::<Event>::namespaced(stack.client.clone(), NS)
        .list(&ListParams::default())
        .await?;
    Ok(list
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
        .filter(|e| e.reason.as_deref() == Some(reason))
        .filter_map(|e| e.note)
        .collect())
}

#[tokio::test(start_paused = true)]
async fn an_abort_is_published_once_when_its_status_write_conflicts() -> R {
    let stack = stack().await?;
    stack.apply_yaml(&blue_green_services("web"), NS).await?;
    stack
        .apply_yaml(
            &blue_green_rollout(
                "web",
                "app:1",
                json!({}),
                json!({"autoPromotionEnabled": false}),
            )
            .to_string(),
            NS,
        )
        .await?;
    wait_phase(&stack, "web", RolloutPhase::Healthy, 120).await?;
    stack.set_image(NS, "web", "app", "app:2").await?;
    wait_phase(&stack, "web", RolloutPhase::Paused, 120).await?;

    // The controller's next status write (a replace, PUT) is refused once with 409, as when
    // someone else changed the Rollout in between; the user's abort itself is a merge patch.
    stack.sim.conflict_once(
        http::Method::PUT,
        &format!("/apis/rollgate.dev/v1alpha1/namespaces/{NS}/rollouts/web/status"),
    );
    stack
        .patch_rollout_status(NS, "web", json!({"abort": true}))
        .await?;
    let aborted = wait_phase(&stack, "web", RolloutPhase::Degraded, 30).await?;
    assert_eq!(
        aborted.status.as_ref().and_then(|s| s.abort_reason),
        Some(AbortReason::User)
    );
    let reasons = reasons(&stack, "web").await?;
    let aborts = reasons.iter().filter(|r| *r == "RolloutAborted").count();
    assert_eq!(aborts, 1, "{reasons:?}");
    assert_eq!(stack.sim.armed_conflicts(), 0, "the conflict was answered");
    // The preview Service stays on the aborted revision (Argo Rollouts): first deploy and v2,
    // each reported once, none for the abort.
    let switches = notes(&stack, "web", "SwitchService")
        .await?
        .iter()
        .filter(|n| n.starts_with("Switched preview Service"))
        .count();
    assert_eq!(switches, 2, "{reasons:?}");
    Ok(())
}

/// A release through a thousand zero-length pauses does not write thousands of Events: past
/// the Rollout's Event budget they are counted, and one `EventsThrottled` Event says so.
#[tokio::test(start_paused = true)]
async fn a_flood_of_steps_stays_within_the_event_budget() -> R {
    use rollgate_controller::event_budget::{BURST, REFILL};
    let stack = stack().await?;
    let steps: Vec<serde_json::Value> = (0..1000)
        .map(|_| json!({"pause": {"duration": "0s"}}))
        .collect();
    let rollout = rollgate_test_support::canary_rollout(
        "web",
        "app:1",
        json!({"replicas": 2}),
        json!({"canaryService": null, "stableService": null, "steps": steps}),
    );
    stack.apply_yaml(&rollout.to_string(), NS).await?;
    wait_phase(&stack, "web", RolloutPhase::Healthy, 120).await?;
    let start = tokio::time::Instant::now();
    stack.set_image(NS, "web", "app", "app:2").await?;
    stack
        .wait_for(
            NS,
            "web",
            std::time::Duration::from_secs(600),
            "v2 stable",
            |r| {
                r.status.as_ref().and_then(|s| s.current_revision) == Some(2)
                    && phase(r) == Some(RolloutPhase::Healthy)
            },
        )
        .await?;
    let elapsed = start.elapsed();
    let reasons = reasons(&stack, "web").await?;
    let refills = u32::try_from(elapsed.as_secs() / REFILL.as_secs()).unwrap_or(u32::MAX);
    assert!(
        u32::try_from(reasons.len()).unwrap_or(u32::MAX) <= BURST + refills + 5,
        "{} Events in {elapsed:?}",
        reasons.len()
    );
    assert!(
        reasons.iter().any(|r| r == "EventsThrottled"),
        "{reasons:?}"
    );
    Ok(())
}
