//! Leader election: two controller replicas against one simulated cluster, in real time with
//! short leases (2 s claims renewed 1 s before they end). Only the Lease holder writes;
//! a crashed leader is replaced once its claim has run out; a leader cut off from the API
//! server stops reconciling before its claim ends.

use std::time::{Duration, SystemTime};

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use rollgate_api::RolloutPhase;
use rollgate_controller::LeaderSettings;
use rollgate_e2e::{NS, phase};
use rollgate_local::Stack;
use rollgate_sim::SimConfig;
use rollgate_test_support::{blue_green_rollout, blue_green_services};
use serde_json::json;

type R = anyhow::Result<()>;

const LEASE: &str = "rollgate-controller";

fn settings() -> LeaderSettings {
    LeaderSettings {
        duration_secs: 2,
        grace_secs: 1,
        ..LeaderSettings::new("set-by-the-stack", NS)
    }
}

async fn stack() -> anyhow::Result<Stack> {
    Ok(Stack::new(SimConfig {
        default_ready_delay: Duration::from_millis(300),
        ..Default::default()
    })
    .await?)
}

async fn lease(stack: &Stack) -> anyhow::Result<Option<Lease>> {
    Ok(Api::<Lease>::namespaced(stack.client.clone(), NS)
        .get_opt(LEASE)
        .await?)
}

async fn holder(stack: &Stack) -> anyhow::Result<Option<String>> {
    Ok(lease(stack).await?.and_then(|l| l.spec?.holder_identity))
}

/// Polls every 50 ms until `done` holds, for at most `secs` (real time).
async fn until<F: std::future::Future<Output = anyhow::Result<bool>>>(
    secs: u64,
    what: &str,
    mut done: impl FnMut() -> F,
) -> R {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !done().await? {
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

async fn rollout_phase(stack: &Stack, name: &str) -> anyhow::Result<Option<RolloutPhase>> {
    Ok(phase(&stack.rollout(NS, name).await?))
}

/// The writers of successful non-Lease writes made by controllers, in order, with the
/// audit index of each.
fn controller_writes(stack: &Stack) -> Vec<(usize, String)> {
    stack
        .sim
        .audit_log()
        .into_iter()
        .enumerate()
        .filter(|(_, e)| e.code < 400 && !e.path.contains("/leases"))
        .filter_map(|(i, e)| Some((i, e.user_agent?)))
        .filter(|(_, ua)| ua.starts_with("ctl-"))
        .collect()
}

/// The distinct writers, in the order they took turns.
fn turns(writes: &[(usize, String)]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (_, w) in writes {
        if out.last() != Some(w) {
            out.push(w.clone());
        }
    }
    out
}

#[tokio::test]
async fn only_the_leader_writes_and_a_crashed_leader_is_replaced() -> R {
    let mut stack = stack().await?;
    stack.start_elected_controller("ctl-a", settings(), None);
    until(10, "ctl-a holds the Lease", || async {
        Ok(holder(&stack).await?.as_deref() == Some("ctl-a") && stack.is_leading("ctl-a"))
    })
    .await?;
    stack.start_elected_controller("ctl-b", settings(), None);
    stack.apply_yaml(&blue_green_services("web"), NS).await?;
    let manual = json!({"autoPromotionEnabled": false});
    stack
        .apply_yaml(
            &blue_green_rollout("web", "web:1", json!({}), manual.clone()).to_string(),
            NS,
        )
        .await?;
    until(20, "first revision Healthy", || async {
        Ok(rollout_phase(&stack, "web").await? == Some(RolloutPhase::Healthy))
    })
    .await?;
    // A release that waits for a promotion: the leader is busy with it when it crashes.
    stack
        .apply_yaml(
            &blue_green_rollout("web", "web:2", json!({}), manual).to_string(),
            NS,
        )
        .await?;
    until(20, "release paused for promotion", || async {
        Ok(rollout_phase(&stack, "web").await? == Some(RolloutPhase::Paused))
    })
    .await?;
    assert!(!stack.is_leading("ctl-b"), "one leader at a time");
    let before_crash = stack.sim.audit_log().len();
    let crashed_at = tokio::time::Instant::now();
    assert!(stack.crash_controller("ctl-a").await);
    until(10, "ctl-b takes the Lease over", || async {
        Ok(holder(&stack).await?.as_deref() == Some("ctl-b") && stack.is_leading("ctl-b"))
    })
    .await?;
    let took = crashed_at.elapsed();
    // Not before the crashed leader's claim (2 s) has run out; soon after.
    assert!(
        took >= Duration::from_millis(500),
        "took over after {took:?}"
    );
    rollgate_ctl::run(
        &stack.client,
        NS,
        "web",
        &rollgate_ctl::Command::Promote { full: false },
        stack.sim.now(),
    )
    .await?;
    until(20, "release done by the new leader", || async {
        let r = stack.rollout(NS, "web").await?;
        Ok(phase(&r) == Some(RolloutPhase::Healthy)
            && r.status.and_then(|s| s.current_revision) == Some(2))
    })
    .await?;

    let writes = controller_writes(&stack);
    assert_eq!(turns(&writes), ["ctl-a", "ctl-b"], "{writes:?}");
    assert!(
        writes
            .iter()
            .all(|(i, w)| (w == "ctl-a") == (*i < before_crash)),
        "ctl-a wrote only before its crash, ctl-b only after: {writes:?}"
    );
    stack.stop_controllers().await;
    Ok(())
}

#[tokio::test]
async fn a_stopped_leader_releases_the_lease() -> R {
    let mut stack = stack().await?;
    stack.start_elected_controller("ctl-a", settings(), None);
    until(10, "ctl-a leads", || async {
        Ok(stack.is_leading("ctl-a"))
    })
    .await?;
    stack.start_elected_controller("ctl-b", settings(), None);
    assert!(stack.stop_controller("ctl-a").await);
    // Released: no holder (or already ctl-b), never ctl-a again.
    assert_ne!(holder(&stack).await?.as_deref(), Some("ctl-a"));
    until(10, "ctl-b leads", || async {
        Ok(stack.is_leading("ctl-b") && holder(&stack).await?.as_deref() == Some("ctl-b"))
    })
    .await?;
    stack.apply_yaml(&blue_green_services("web"), NS).await?;
    stack
        .apply_yaml(
            &blue_green_rollout("web", "web:1", json!({}), json!({})).to_string(),
            NS,
        )
        .await?;
    until(20, "Healthy under ctl-b", || async {
        Ok(rollout_phase(&stack, "web").await? == Some(RolloutPhase::Healthy))
    })
    .await?;
    assert_eq!(turns(&controller_writes(&stack)), ["ctl-b"]);
    stack.stop_controllers().await;
    Ok(())
}

#[tokio::test]
async fn a_leader_cut_off_from_the_api_stops_before_its_claim_ends() -> R {
    let mut stack = stack().await?;
    stack.start_elected_controller("ctl-a", settings(), None);
    until(10, "ctl-a leads", || async {
        Ok(stack.is_leading("ctl-a"))
    })
    .await?;
    stack.start_elected_controller("ctl-b", settings(), None);
    stack.sim.set_partitioned("ctl-a", true);
    // The last renewal that reached the server: the claim ends `duration` after it.
    let last = lease(&stack)
        .await?
        .and_then(|l| l.spec?.renew_time)
        .map(|t| SystemTime::from(t.0))
        .ok_or_else(|| anyhow::anyhow!("no renewTime"))?;
    let claim_end = last + Duration::from_secs(2);
    until(10, "ctl-a steps down", || async {
        Ok(!stack.is_leading("ctl-a"))
    })
    .await?;
    let stepped_down = SystemTime::now();
    assert!(
        stepped_down < claim_end,
        "stepped down {:?} after its claim ended",
        stepped_down.duration_since(claim_end).unwrap_or_default()
    );
    until(10, "ctl-b takes over", || async {
        Ok(stack.is_leading("ctl-b") && holder(&stack).await?.as_deref() == Some("ctl-b"))
    })
    .await?;
    assert!(!stack.is_leading("ctl-a"));
    // Reconnected, ctl-a finds the Lease taken and stays a candidate.
    stack.sim.set_partitioned("ctl-a", false);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(!stack.is_leading("ctl-a") && stack.is_leading("ctl-b"));
    stack.stop_controllers().await;
    Ok(())
}
