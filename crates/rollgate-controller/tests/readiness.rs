//! `/readyz` follows the controller's watches: not ready before their initial lists succeeded
//! (CRDs missing, API server unreachable), ready once they did.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use rollgate_controller::telemetry::Telemetry;
use rollgate_controller::{Clock, Config, run};
use rollgate_sim::{SimCluster, SimConfig};
use tokio::sync::oneshot;

/// Starts a controller on `client` that reports into the returned telemetry; stops when the
/// sender is dropped.
fn start(sim: &SimCluster, client: kube::Client) -> (Arc<Telemetry>, oneshot::Sender<()>) {
    let telemetry = Arc::new(Telemetry::new());
    let config = Config {
        namespace: None,
        clock: Clock::starting_at(sim.now()),
        instance: "readiness".into(),
        metric_source: None,
        telemetry: telemetry.clone(),
        ..Default::default()
    };
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = run(client, config, async move {
            let _ = stopped.await;
        })
        .await;
    });
    (telemetry, stop)
}

async fn install_crds(sim: &SimCluster) -> anyhow::Result<()> {
    let api = Api::<CustomResourceDefinition>::all(sim.client());
    for crd in rollgate_api::crds::all() {
        api.create(&Default::default(), &crd).await?;
    }
    Ok(())
}

/// Waits (virtual time) until the controller is ready; false after a minute.
async fn becomes_ready(telemetry: &Telemetry) -> bool {
    for _ in 0..600 {
        if telemetry.is_ready() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test(start_paused = true)]
async fn not_ready_until_the_rollouts_can_be_listed() -> anyhow::Result<()> {
    // No CRDs: listing Rollouts fails (404) at every retry.
    let sim = SimCluster::new(SimConfig::default());
    let (telemetry, _stop) = start(&sim, sim.client());
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert!(!telemetry.is_ready(), "ready without a Rollout list");
    assert!(
        telemetry.unready_watches().contains(&"rollouts"),
        "{:?}",
        telemetry.unready_watches()
    );
    install_crds(&sim).await?;
    assert!(
        becomes_ready(&telemetry).await,
        "{:?}",
        telemetry.unready_watches()
    );
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn not_ready_while_the_api_server_is_unreachable() -> anyhow::Result<()> {
    let sim = SimCluster::new(SimConfig::default());
    install_crds(&sim).await?;
    sim.set_partitioned("cut-off", true);
    let (telemetry, _stop) = start(&sim, sim.client_as("cut-off"));
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert!(!telemetry.is_ready(), "ready while every request fails");
    let mut unready = telemetry.unready_watches();
    unready.sort_unstable();
    assert_eq!(
        unready,
        [
            "analysisruns",
            "deployments",
            "podtemplates",
            "replicasets",
            "replicasets (workloadRef)",
            "rollouts",
            "services"
        ]
    );
    sim.set_partitioned("cut-off", false);
    assert!(
        becomes_ready(&telemetry).await,
        "{:?}",
        telemetry.unready_watches()
    );
    Ok(())
}
