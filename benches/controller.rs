//! Controller cost with 1,000 blue/green Rollouts on the simulated cluster: CPU per reconcile
//! and resident memory per managed rollout (process-wide: the simulated cluster's store is in
//! the same process, so the memory figure is an upper bound for the controller).

use std::time::{Duration, Instant};

use rollgate_api::{Rollout, RolloutPhase};
use rollgate_local::Stack;
use rollgate_sim::SimConfig;
use serde_json::json;

const ROLLOUTS: usize = 1_000;

fn manifest(i: usize) -> String {
    let name = format!("app-{i}");
    let svc = |role: &str| {
        json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": format!("{name}-{role}")},
        "spec": {"selector": {"app": name}, "ports": [{"port": 80}]}})
        .to_string()
    };
    let rollout = json!({"apiVersion": "rollgate.dev/v1alpha1", "kind": "Rollout",
        "metadata": {"name": name},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "app", "image": "app:1"}]}},
                 "strategy": {"blueGreen": {"activeService": format!("{name}-active"),
                                            "previewService": format!("{name}-preview")}}}});
    format!(
        "{}\n---\n{}\n---\n{}\n",
        svc("active"),
        svc("preview"),
        rollout
    )
}

async fn count_healthy(
    stack: &Stack,
    stable_differs_from: Option<&[Option<String>]>,
) -> anyhow::Result<(usize, Vec<Option<String>>)> {
    let list = kube::Api::<Rollout>::namespaced(stack.client.clone(), "default")
        .list(&Default::default())
        .await?;
    let mut n = 0;
    let mut stables = Vec::new();
    for (i, r) in list.items.iter().enumerate() {
        let s = r.status.clone().unwrap_or_default();
        let healthy = s.phase == Some(RolloutPhase::Healthy)
            && s.observed_generation == r.metadata.generation;
        let moved = stable_differs_from.is_none_or(|old| old.get(i) != Some(&s.stable_rs));
        if healthy && moved {
            n += 1;
        }
        stables.push(s.stable_rs);
    }
    Ok((n, stables))
}

async fn wait_all(
    stack: &Stack,
    old: Option<&[Option<String>]>,
) -> anyhow::Result<Vec<Option<String>>> {
    loop {
        let (n, stables) = count_healthy(stack, old).await?;
        if n == ROLLOUTS {
            return Ok(stables);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let rss_start = rollgate_benches::resident_bytes();
        let mut stack = Stack::new(SimConfig { default_ready_delay: Duration::from_millis(200), watch_history: 5_000, ..Default::default() }).await?;
        for i in 0..ROLLOUTS {
            stack.apply_yaml(&manifest(i), "default").await?;
        }
        let rss_objects = rollgate_benches::resident_bytes();
        stack.start_controller("bench");
        let (cpu0, wall0) = (rollgate_benches::cpu_time(), Instant::now());
        let stables = wait_all(&stack, None).await?;
        let (cpu1, wall1) = (rollgate_benches::cpu_time(), wall0.elapsed());
        let rss_deployed = rollgate_benches::resident_bytes();
        // A full blue/green release of every rollout (auto-promotion).
        for i in 0..ROLLOUTS {
            stack.set_image("default", &format!("app-{i}"), "app", "app:2").await?;
        }
        let (cpu2, wall2) = (rollgate_benches::cpu_time(), Instant::now());
        wait_all(&stack, Some(&stables)).await?;
        let (cpu3, wall3) = (rollgate_benches::cpu_time(), wall2.elapsed());
        let rss_end = rollgate_benches::resident_bytes();
        let reconciles = stack.sim.audit_log().iter().filter(|e| e.path.ends_with("/status") && e.path.contains("/rollouts/")).count();
        let mb = |b: u64| b as f64 / (1024.0 * 1024.0);
        println!("controller on the simulated cluster, {ROLLOUTS} blue/green rollouts x 2 replicas (2 worker threads)");
        println!("  first deploy of all:     wall {:>6.2} s, CPU {:>6.2} s ({:.2} ms CPU per rollout)", wall1.as_secs_f64(), (cpu1 - cpu0).as_secs_f64(), (cpu1 - cpu0).as_secs_f64() * 1e3 / ROLLOUTS as f64);
        println!("  release of all (v1->v2): wall {:>6.2} s, CPU {:>6.2} s ({:.2} ms CPU per rollout release)", wall3.as_secs_f64(), (cpu3 - cpu2).as_secs_f64(), (cpu3 - cpu2).as_secs_f64() * 1e3 / ROLLOUTS as f64);
        println!("  status writes (≈ reconciles that changed something): {reconciles}");
        println!("  resident memory: start {:.1} MiB, objects stored {:.1} MiB, all deployed {:.1} MiB, after release {:.1} MiB", mb(rss_start), mb(rss_objects), mb(rss_deployed), mb(rss_end));
        println!("  memory per managed rollout (controller + its share of the simulated cluster): {:.1} KiB", (rss_end.saturating_sub(rss_start)) as f64 / 1024.0 / ROLLOUTS as f64);
        println!("  memory per managed rollout added by running the controller: {:.1} KiB", (rss_deployed.saturating_sub(rss_objects)) as f64 / 1024.0 / ROLLOUTS as f64);
        stack.stop_controllers().await;
        Ok(())
    })
}
