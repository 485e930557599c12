//! The e2e harness plays the user as a real client would: its writes survive what a real API
//! server does to a client racing the controller.

use kube::Api;
use rollgate_api::{Rollout, RolloutPhase};
use rollgate_e2e::*;
use rollgate_test_support::{blue_green_rollout, blue_green_services};
use serde_json::json;

type R = anyhow::Result<()>;

/// `Stack::set_image` reads, changes and replaces the Rollout; when the controller wrote the
/// Rollout in between (its status bumps the resourceVersion), the replace is refused with 409
/// and must be tried again on a fresh read instead of failing the test (the chaos suite once
/// failed that way).
#[tokio::test(start_paused = true)]
async fn set_image_is_tried_again_when_the_controller_wrote_in_between() -> R {
    let stack = stack().await?;
    stack.apply_yaml(&blue_green_services("web"), NS).await?;
    stack
        .apply_yaml(
            &blue_green_rollout("web", "app:1", json!({}), json!({})).to_string(),
            NS,
        )
        .await?;
    wait_phase(&stack, "web", RolloutPhase::Healthy, 120).await?;
    stack.sim.conflict_once(
        http::Method::PUT,
        &format!("/apis/rollgate.dev/v1alpha1/namespaces/{NS}/rollouts/web"),
    );
    stack.set_image(NS, "web", "app", "app:2").await?;
    let rollout = Api::<Rollout>::namespaced(stack.client.clone(), NS)
        .get("web")
        .await?;
    let image = rollout
        .spec
        .template
        .and_then(|t| t.spec)
        .and_then(|s| s.containers.into_iter().next())
        .and_then(|c| c.image);
    assert_eq!(image.as_deref(), Some("app:2"));
    Ok(())
}
