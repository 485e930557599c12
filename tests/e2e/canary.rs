//! Canary end to end: the real controller on the simulated cluster, in virtual time.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::events::v1::Event;
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams};
use rollgate_api::labels::ROLLOUT_NAME;
use rollgate_api::{AnalysisRun, Rollout, RolloutPhase};
use rollgate_controller::run::{Context, reconcile_rollout};
use rollgate_e2e::*;
use rollgate_sim::ImageBehavior;
use rollgate_test_support::{
    analysis_ref, analysis_template, canary_rollout, documents, prometheus_metric, route_routing,
    service,
};
use serde_json::{Value, json};

type R = anyhow::Result<()>;

/// Services `<name>` (both versions), `<name>-canary`, `<name>-stable` and an HTTPRoute
/// `<name>-route` whose rule sends everything to the stable Service.
fn canary_fixtures(name: &str) -> String {
    let route = json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": {"name": format!("{name}-route")},
        "spec": {"parentRefs": [{"name": "gateway"}], "rules": [{"backendRefs": [
            {"name": format!("{name}-stable"), "port": 80, "weight": 100},
            {"name": format!("{name}-canary"), "port": 80, "weight": 0}]}]}
    });
    documents(&[
        service(name, name),
        service(&format!("{name}-canary"), name),
        service(&format!("{name}-stable"), name),
        route,
    ])
}

fn routed() -> Value {
    route_routing("web-route")
}

async fn deploy(stack: &Stack, canary: Value) -> anyhow::Result<String> {
    stack.apply_yaml(&canary_fixtures("web"), NS).await?;
    stack
        .apply_yaml(
            &canary_rollout("web", "app:1", json!({}), canary).to_string(),
            NS,
        )
        .await?;
    let r = wait_phase(stack, "web", RolloutPhase::Healthy, 120).await?;
    Ok(r.status.and_then(|s| s.stable_rs).unwrap_or_default())
}

fn weights(r: &Rollout) -> Option<(i32, i32)> {
    let w = r.status.as_ref()?.canary.as_ref()?.weights.as_ref()?;
    Some((w.set_weight, w.actual_weight))
}

/// Checks every virtual second that the rollout's available pods stay at or above `min` once it
/// first got there, and that the route's weights sum to 100.
struct CanaryMonitor {
    violations: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl CanaryMonitor {
    fn start(stack: &Stack, min: i32) -> Self {
        let violations = Arc::new(Mutex::new(Vec::new()));
        let v = violations.clone();
        let sets = Api::<ReplicaSet>::namespaced(stack.client.clone(), NS);
        let routes = route_api(stack);
        let task = tokio::spawn(async move {
            let lp = ListParams::default().labels(&format!("{ROLLOUT_NAME}=web"));
            let mut reached = false;
            loop {
                if let Ok(list) = sets.list(&lp).await {
                    let available: i32 = list
                        .items
                        .iter()
                        .filter_map(|rs| rs.status.as_ref()?.available_replicas)
                        .sum();
                    if available >= min {
                        reached = true;
                    } else if reached && let Ok(mut v) = v.lock() {
                        v.push(format!("{available} available pods < {min}"));
                    }
                }
                if let Ok(Some(route)) = routes.get_opt("web-route").await {
                    let sum: i64 = route.data["spec"]["rules"][0]["backendRefs"]
                        .as_array()
                        .map(|refs| refs.iter().filter_map(|b| b["weight"].as_i64()).sum())
                        .unwrap_or(0);
                    if sum != 100
                        && let Ok(mut v) = v.lock()
                    {
                        v.push(format!("route weights sum to {sum}"));
                    }
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
        Self { violations, task }
    }

    fn violations(&self) -> Vec<String> {
        self.violations
            .lock()
            .map(|v| v.clone())
            .unwrap_or_default()
    }
}

impl Drop for CanaryMonitor {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[tokio::test(start_paused = true)]
async fn a_five_step_replica_canary_completes_within_its_availability_bounds() -> R {
    let stack = stack().await?;
    let v1 = deploy(
        &stack,
        json!({"steps": [{"setWeight": 20}, {"pause": {"duration": "30s"}}, {"setWeight": 50},
                         {"pause": {}}, {"setWeight": 80}],
               "maxSurge": 2, "maxUnavailable": 1}),
    )
    .await?;
    // maxUnavailable 1 of 10: at least 9 pods available at every moment.
    let monitor = CanaryMonitor::start(&stack, 9);
    stack.set_image(NS, "web", "app", "app:2").await?;
    let at_pause = wait_step(&stack, 1, RolloutPhase::Paused).await?;
    assert_eq!(weights(&at_pause), Some((20, 20)));
    let v2 = at_pause
        .status
        .as_ref()
        .and_then(|s| s.current_pod_hash.clone())
        .unwrap_or_default();
    assert_eq!(selected(&stack, "web-canary").await?, Some(v2.clone()));
    assert_eq!(selected(&stack, "web-stable").await?, Some(v1.clone()));
    let mut sets = replica_sets(&stack, "web").await?;
    sets.sort();
    let mut expected = vec![(v1.clone(), 8, 8), (v2.clone(), 2, 2)];
    expected.sort();
    assert_eq!(sets, expected);

    // The timed pause ends by itself; the next one waits for a human.
    let paused = wait_step(&stack, 3, RolloutPhase::Paused).await?;
    assert_eq!(weights(&paused), Some((50, 50)));
    tokio::time::sleep(Duration::from_secs(300)).await;
    assert_eq!(step_index(&stack.rollout(NS, "web").await?), Some(3));
    promote(&stack).await?;
    let done = wait_phase(&stack, "web", RolloutPhase::Healthy, 300).await?;
    let s = done.status.clone().unwrap_or_default();
    assert_eq!(s.stable_rs, Some(v2.clone()));
    assert_eq!(s.current_step_index, Some(5));
    assert_eq!(selected(&stack, "web-stable").await?, Some(v2.clone()));
    let sets = replica_sets(&stack, "web").await?;
    assert!(sets.contains(&(v2.clone(), 10, 10)), "{sets:?}");
    assert!(sets.contains(&(v1.clone(), 0, 0)), "{sets:?}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(monitor.violations(), Vec::<String>::new());
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn gateway_api_weights_follow_each_step_and_abort_at_step_3_returns_them_at_once() -> R {
    let mut stack = stack().await?;
    let v1 = deploy(
        &stack,
        json!({"trafficRouting": routed(),
               "steps": [{"setWeight": 10}, {"pause": {"duration": 20}}, {"setWeight": 40},
                         {"pause": {}}, {"setWeight": 70}]}),
    )
    .await?;
    assert_eq!(route_weights(&stack).await?, (0, 100));
    let monitor = CanaryMonitor::start(&stack, 10);
    stack.set_image(NS, "web", "app", "app:2").await?;
    // The route gets 10% only once the canary's pod is ready (5 s in this cluster).
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(route_weights(&stack).await?, (0, 100));
    let r = wait_step(&stack, 1, RolloutPhase::Paused).await?;
    assert_eq!(route_weights(&stack).await?, (10, 90));
    assert_eq!(weights(&r), Some((10, 10)));
    let r = wait_step(&stack, 3, RolloutPhase::Paused).await?;
    assert_eq!(route_weights(&stack).await?, (40, 60));
    assert_eq!(weights(&r), Some((40, 40)));
    let v2 = r
        .status
        .as_ref()
        .and_then(|s| s.current_pod_hash.clone())
        .unwrap_or_default();
    let mut sets = replica_sets(&stack, "web").await?;
    sets.sort();
    let mut expected = vec![(v1.clone(), 10, 10), (v2.clone(), 4, 4)];
    expected.sort();
    assert_eq!(sets, expected, "stable keeps every pod behind a router");

    // Abort: one reconcile puts the weight back to 0 and leaves stable alone.
    stack.stop_controllers().await;
    stack
        .patch_rollout_status(NS, "web", json!({"abort": true}))
        .await?;
    let ctx = Context::new(
        stack.client.clone(),
        rollgate_controller::Config {
            clock: rollgate_controller::Clock::starting_at(stack.sim.now()),
            ..Default::default()
        },
    );
    stack.sim.clear_audit_log();
    let report = reconcile_rollout(&ctx, NS, "web")
        .await?
        .expect("rollout exists");
    assert_eq!(route_weights(&stack).await?, (0, 100));
    let audit = stack.sim.audit_log();
    let stable_rs = format!("web-{v1}");
    assert!(
        audit.iter().all(|e| !format!("{e:?}").contains(&stable_rs)),
        "stable ReplicaSet untouched: {audit:?}"
    );
    assert_eq!(
        report.decision.status.phase,
        Some(RolloutPhase::Degraded),
        "{:?}",
        report.decision.status.message
    );
    stack.start_controller("controller-2");
    let aborted = wait_phase(&stack, "web", RolloutPhase::Degraded, 30).await?;
    assert!(
        message(&aborted).contains("Aborted by user"),
        "{}",
        message(&aborted)
    );
    // The canary goes after abortScaleDownDelaySeconds (30 s by default).
    tokio::time::sleep(Duration::from_secs(40)).await;
    let sets = replica_sets(&stack, "web").await?;
    assert!(sets.contains(&(v2.clone(), 0, 0)), "{sets:?}");
    assert!(sets.contains(&(v1.clone(), 10, 10)), "{sets:?}");
    assert_eq!(monitor.violations(), Vec::<String>::new());
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_routed_canary_completes_and_the_route_returns_to_the_stable_backend() -> R {
    let stack = stack().await?;
    let v1 = deploy(
        &stack,
        json!({"trafficRouting": routed(), "scaleDownDelaySeconds": 60,
               "steps": [{"setWeight": 50}, {"pause": {"duration": "10s"}}]}),
    )
    .await?;
    stack.set_image(NS, "web", "app", "app:2").await?;
    let done = stack
        .wait_for(NS, "web", Duration::from_secs(300), "v2 stable", |r| {
            phase(r) == Some(RolloutPhase::Healthy)
                && r.status.as_ref().and_then(|s| s.stable_rs.as_deref()) != Some(v1.as_str())
        })
        .await?;
    let v2 = done
        .status
        .as_ref()
        .and_then(|s| s.stable_rs.clone())
        .unwrap_or_default();
    assert_eq!(route_weights(&stack).await?, (0, 100));
    assert_eq!(selected(&stack, "web-stable").await?, Some(v2.clone()));
    assert_eq!(selected(&stack, "web-canary").await?, Some(v2.clone()));
    // The previous stable stays up for scaleDownDelaySeconds, then goes.
    let sets = replica_sets(&stack, "web").await?;
    assert!(sets.contains(&(v1.clone(), 10, 10)), "{sets:?}");
    tokio::time::sleep(Duration::from_secs(70)).await;
    let sets = replica_sets(&stack, "web").await?;
    assert!(sets.contains(&(v1.clone(), 0, 0)), "{sets:?}");
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_crash_looping_canary_is_aborted_at_the_progress_deadline() -> R {
    let stack = stack().await?;
    let v1 = deploy(
        &stack,
        json!({"steps": [{"setWeight": 20}, {"pause": {}}], "maxUnavailable": 0}),
    )
    .await?;
    let monitor = CanaryMonitor::start(&stack, 10);
    stack
        .sim
        .set_image_behavior("app:broken", ImageBehavior::CrashLoop);
    let started = tokio::time::Instant::now();
    stack.set_image(NS, "web", "app", "app:broken").await?;
    let aborted = wait_phase(&stack, "web", RolloutPhase::Degraded, 900).await?;
    let after = started.elapsed().as_secs();
    assert!(
        (590..=640).contains(&after),
        "aborted after {after}s, deadline is 600s"
    );
    assert!(
        message(&aborted).contains("ProgressDeadlineExceeded"),
        "{}",
        message(&aborted)
    );
    let settled = stack
        .wait_for(NS, "web", Duration::from_secs(60), "canary gone", |r| {
            r.status.as_ref().and_then(|s| s.ready_replicas) == Some(10)
        })
        .await?;
    assert_eq!(weights(&settled), Some((0, 0)));
    let sets = replica_sets(&stack, "web").await?;
    assert!(sets.contains(&(v1.clone(), 10, 10)), "{sets:?}");
    assert_eq!(selected(&stack, "web-stable").await?, Some(v1));
    assert_eq!(monitor.violations(), Vec::<String>::new());
    Ok(())
}

/// Applies an example, releases a new image, promotes every indefinite pause, and checks that
/// the release completes.
async fn release_example(yaml: &str) -> R {
    let stack = stack().await?;
    stack.apply_yaml(yaml, NS).await?;
    let first = wait_phase(&stack, "web", RolloutPhase::Healthy, 120).await?;
    let v1 = first.status.and_then(|s| s.stable_rs).unwrap_or_default();
    stack
        .set_image(NS, "web", "web", "ghcr.io/rollgate/demo-app:2.0")
        .await?;
    for _ in 0..600 {
        let r = stack.rollout(NS, "web").await?;
        let s = r.status.clone().unwrap_or_default();
        if phase(&r) == Some(RolloutPhase::Healthy)
            && s.stable_rs.as_deref().is_some_and(|h| h != v1)
        {
            return Ok(());
        }
        assert_ne!(phase(&r), Some(RolloutPhase::Degraded), "{}", message(&r));
        if phase(&r) == Some(RolloutPhase::Paused) && message(&r).contains("until promoted") {
            promote(&stack).await?;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    anyhow::bail!("the example's release did not complete")
}

#[tokio::test(start_paused = true)]
async fn the_canary_example_releases_a_new_image() -> R {
    release_example(include_str!("../../manifests/examples/canary.yaml")).await
}

#[tokio::test(start_paused = true)]
async fn the_gateway_api_example_releases_a_new_image() -> R {
    release_example(include_str!(
        "../../manifests/examples/canary-gateway-api.yaml"
    ))
    .await
}

#[tokio::test(start_paused = true)]
async fn restart_at_replaces_every_pod_within_max_unavailable() -> R {
    let stack = stack().await?;
    deploy(
        &stack,
        json!({"steps": [{"setWeight": 50}], "maxUnavailable": 2}),
    )
    .await?;
    let before = pod_names(&stack, "web").await?;
    assert_eq!(before.len(), 10);
    let monitor = CanaryMonitor::start(&stack, 8);
    tokio::time::sleep(Duration::from_secs(10)).await;
    let at = stack.sim.now();
    Api::<Rollout>::namespaced(stack.client.clone(), NS)
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"restartAt": at.to_string()}})),
        )
        .await?;
    let done = wait_restarted(&stack, "web", 300).await?;
    let after = pod_names(&stack, "web").await?;
    assert_eq!(after.len(), 10);
    assert!(
        after.iter().all(|p| !before.contains(p)),
        "every pod replaced: {before:?} -> {after:?}"
    );
    assert_eq!(
        done.status
            .and_then(|s| s.restarted_at)
            .map(|t| t.0.as_second()),
        Some(at.as_second())
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(monitor.violations(), Vec::<String>::new());
    Ok(())
}

/// How many fast rollbacks rollout `web` had: `SkipSteps` Events (Argo's name) whose note says
/// so (the others are returns to the stable revision).
async fn rollback_events(stack: &Stack) -> anyhow::Result<usize> {
    Ok(Api::<Event>::namespaced(stack.client.clone(), NS)
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("web"))
        .filter(|e| e.reason.as_deref() == Some("SkipSteps"))
        .filter(|e| {
            e.note
                .as_deref()
                .is_some_and(|n| n.contains("fast rollback"))
        })
        .count())
}

/// Runs a `rollgate` manual-control command through the CLI's own code.
async fn ctl(stack: &Stack, cmd: rollgate_ctl::Command) -> Result<String, rollgate_ctl::CtlError> {
    rollgate_ctl::run(&stack.client, NS, "web", &cmd, stack.sim.now()).await
}

#[tokio::test(start_paused = true)]
async fn the_cli_drives_a_canary_through_every_manual_control() -> R {
    use rollgate_ctl::{Command, ContainerImage, CtlError};
    let stack = stack().await?;
    // No metric source measures in this stack: the analysis step is skipped before it could.
    let template = analysis_template(
        "error-rate",
        json!({"metrics": [prometheus_metric("m", "http://127.0.0.1:9", "vector(0)")]}),
    );
    stack.apply_yaml(&template.to_string(), NS).await?;
    let v1 = deploy(
        &stack,
        json!({"steps": [{"setWeight": 30}, {"analysis": analysis_ref("error-rate")},
                         {"pause": {}}, {"setWeight": 70}],
               "scaleDownDelaySeconds": 0}),
    )
    .await?;
    let image = |i: &str| Command::SetImage {
        images: vec![ContainerImage {
            container: "app".into(),
            image: i.into(),
        }],
    };

    // set image starts a release; promote skips the analysis step (its run is terminated).
    ctl(&stack, image("app:2")).await?;
    wait_step(&stack, 1, RolloutPhase::Progressing).await?;
    let said = ctl(&stack, Command::Promote { full: false }).await?;
    assert!(said.contains("analysis at step 2/4 skipped"), "{said}");
    wait_step(&stack, 2, RolloutPhase::Paused).await?;
    let runs = Api::<AnalysisRun>::namespaced(stack.client.clone(), NS);
    let run = runs.list(&ListParams::default()).await?.items;
    assert_eq!(run.len(), 1);
    assert_eq!(
        run[0].spec.terminate,
        Some(true),
        "the skipped step's run is terminated"
    );

    // abort, then abort again is refused; retry starts from the first step.
    ctl(&stack, Command::Abort).await?;
    let aborted = wait_phase(&stack, "web", RolloutPhase::Degraded, 30).await?;
    assert_eq!(weights(&aborted).map(|w| w.0), Some(0));
    assert!(matches!(
        ctl(&stack, Command::Abort).await,
        Err(CtlError::AlreadyAborted { .. })
    ));
    assert!(matches!(
        ctl(&stack, Command::Promote { full: false }).await,
        Err(CtlError::Aborted { .. })
    ));
    ctl(&stack, Command::Retry).await?;
    wait_step(&stack, 1, RolloutPhase::Progressing).await?;

    // promote --full: every remaining step and the analysis skipped.
    ctl(&stack, Command::Promote { full: true }).await?;
    let done = stack
        .wait_for(NS, "web", Duration::from_secs(120), "v2 stable", |r| {
            phase(r) == Some(RolloutPhase::Healthy)
                && r.status.as_ref().and_then(|s| s.stable_rs.as_deref()) != Some(v1.as_str())
        })
        .await?;
    let v2 = done.status.and_then(|s| s.stable_rs).unwrap_or_default();
    assert!(matches!(
        ctl(&stack, Command::Retry).await,
        Err(CtlError::NotAborted { .. })
    ));

    // undo: back to revision 1, whose ReplicaSet still exists: no steps, no analysis. The
    // API server filled pod defaults into that ReplicaSet's template (as a real one does), so
    // undo must write back the template as the Rollout had it, or the hash differs and a new
    // release starts instead of the fast rollback.
    let sets = Api::<ReplicaSet>::namespaced(stack.client.clone(), NS);
    let kept = sets.get(&format!("web-{v1}")).await?;
    let served = serde_json::to_value(&kept.spec.template)?;
    assert_eq!(
        served["spec"]["containers"][0]["imagePullPolicy"], "IfNotPresent",
        "the server defaults ReplicaSet templates"
    );
    let mut hashes_before: Vec<String> = replica_sets(&stack, "web")
        .await?
        .into_iter()
        .map(|(h, _, _)| h)
        .collect();
    hashes_before.sort();
    let rollbacks_before = rollback_events(&stack).await?;
    let runs_before = runs.list(&ListParams::default()).await?.items.len();
    let started = tokio::time::Instant::now();
    let said = ctl(&stack, Command::Undo { to_revision: None }).await?;
    assert!(!said.contains("warning"), "{said}");
    let back = stack
        .wait_for(NS, "web", Duration::from_secs(120), "v1 stable", |r| {
            phase(r) == Some(RolloutPhase::Healthy)
                && r.status.as_ref().and_then(|s| s.stable_rs.as_deref()) == Some(v1.as_str())
        })
        .await?;
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "fast rollback: only the pods' start-up, took {:?}",
        started.elapsed()
    );
    assert_eq!(
        runs.list(&ListParams::default()).await?.items.len(),
        runs_before
    );
    assert_eq!(step_index(&back), Some(4));
    assert_eq!(selected(&stack, "web-stable").await?, Some(v1.clone()));
    assert_ne!(v1, v2);
    let mut hashes_after: Vec<String> = replica_sets(&stack, "web")
        .await?
        .into_iter()
        .map(|(h, _, _)| h)
        .collect();
    hashes_after.sort();
    assert_eq!(hashes_after, hashes_before, "no new ReplicaSet");
    assert_eq!(
        rollback_events(&stack).await?,
        rollbacks_before + 1,
        "an Event says fast rollback"
    );

    // pause holds a new release at its first step until resumed.
    ctl(&stack, Command::Pause).await?;
    assert!(matches!(
        ctl(&stack, Command::Pause).await,
        Err(CtlError::AlreadyPaused { .. })
    ));
    ctl(&stack, image("app:3")).await?;
    wait_step(&stack, 0, RolloutPhase::Paused).await?;
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(step_index(&stack.rollout(NS, "web").await?), Some(0));
    ctl(&stack, Command::Resume).await?;
    wait_step(&stack, 1, RolloutPhase::Progressing).await?;

    // restart: once healthy again, every pod of the stable revision is replaced.
    ctl(&stack, Command::Promote { full: true }).await?;
    stack
        .wait_for(NS, "web", Duration::from_secs(120), "v3 stable", |r| {
            phase(r) == Some(RolloutPhase::Healthy)
                && r.status
                    .as_ref()
                    .and_then(|s| s.current_pod_hash.as_deref())
                    == r.status.as_ref().and_then(|s| s.stable_rs.as_deref())
        })
        .await?;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let before = pod_names(&stack, "web").await?;
    ctl(&stack, Command::Restart).await?;
    wait_restarted(&stack, "web", 300).await?;
    let after = pod_names(&stack, "web").await?;
    assert_eq!(after.len(), 10);
    assert!(
        after.iter().all(|p| !before.contains(p)),
        "{before:?} -> {after:?}"
    );
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn status_waits_for_the_verdict_of_the_release_a_ci_script_just_applied() -> R {
    let stack = stack().await?;
    deploy(
        &stack,
        json!({"steps": [{"setWeight": 50}, {"pause": {"duration": "2m"}}]}),
    )
    .await?;
    let wait = |timeout| rollgate_ctl::wait_status(&stack.client, NS, "web", timeout, |_| {});
    stack.set_image(NS, "web", "app", "app:2").await?;
    let verdict = wait(Duration::from_secs(600)).await?;
    assert!(
        matches!(verdict, rollgate_ctl::Verdict::Healthy(_)),
        "{verdict:?}"
    );
    assert_eq!(verdict.exit_code(), 0);

    stack
        .sim
        .set_image_behavior("app:broken", ImageBehavior::CrashLoop);
    stack.set_image(NS, "web", "app", "app:broken").await?;
    let verdict = wait(Duration::from_secs(60)).await?;
    assert_eq!(
        verdict.exit_code(),
        2,
        "still progressing after a minute: {verdict:?}"
    );
    let verdict = wait(Duration::from_secs(900)).await?;
    assert_eq!(verdict.exit_code(), 1, "{verdict:?}");
    let rollgate_ctl::Verdict::Degraded(message) = verdict else {
        anyhow::bail!("Degraded expected");
    };
    assert!(message.contains("ProgressDeadlineExceeded"), "{message}");
    Ok(())
}

/// `GET path` on `addr` (HTTP/1.0, no keep-alive): status code and body.
async fn http_get(addr: std::net::SocketAddr, path: &str) -> anyhow::Result<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes())
        .await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let code = response
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((code, body))
}

#[tokio::test(start_paused = true)]
async fn the_controller_serves_its_metrics_and_health() -> R {
    let stack = stack().await?;
    let (addr, _server) =
        rollgate_controller::telemetry::serve("127.0.0.1:0".parse()?, stack.telemetry.clone())
            .await?;
    deploy(&stack, json!({"steps": [{"setWeight": 50}, {"pause": {}}]})).await?;
    stack.set_image(NS, "web", "app", "app:2").await?;
    wait_step(&stack, 1, RolloutPhase::Paused).await?;
    stack
        .patch_rollout_status(NS, "web", json!({"abort": true}))
        .await?;
    wait_phase(&stack, "web", RolloutPhase::Degraded, 30).await?;

    assert_eq!(http_get(addr, "/healthz").await?, (200, "ok".to_string()));
    assert_eq!(http_get(addr, "/readyz").await?, (200, "ready".to_string()));
    let (code, metrics) = http_get(addr, "/metrics").await?;
    assert_eq!(code, 200);
    for expected in [
        "rollgate_rollouts{phase=\"Degraded\",strategy=\"Canary\"} 1",
        "rollgate_aborts_total{reason=\"User\"} 1",
        "rollgate_service_switches_total{role=\"canary\"}",
        "rollgate_service_switches_total{role=\"stable\"}",
        "rollgate_reconcile_duration_seconds_count",
        "rollgate_decision_duration_seconds_bucket",
    ] {
        assert!(
            metrics.contains(expected),
            "missing {expected} in:\n{metrics}"
        );
    }
    Ok(())
}

/// `replicas: 0` is valid, as in Argo Rollouts where scaling a Rollout to zero is ordinary: at
/// 0 replicas the rollout is Healthy, a new revision completes, the Services keep selecting
/// the stable revision, and scaling back up works.
#[tokio::test(start_paused = true)]
async fn a_canary_at_zero_replicas_releases_and_scales_back_up() -> R {
    let stack = stack().await?;
    stack.apply_yaml(&canary_fixtures("web"), NS).await?;
    let canary = json!({"steps": [{"setWeight": 50}, {"pause": {"duration": "10s"}}],
                        "trafficRouting": routed()});
    stack
        .apply_yaml(
            &canary_rollout("web", "app:1", json!({"replicas": 0}), canary).to_string(),
            NS,
        )
        .await?;
    let r = wait_phase(&stack, "web", RolloutPhase::Healthy, 120).await?;
    let v1 = r.status.and_then(|s| s.stable_rs).unwrap_or_default();
    assert_eq!(replica_sets(&stack, "web").await?, vec![(v1.clone(), 0, 0)]);
    assert_eq!(selected(&stack, "web-stable").await?, Some(v1.clone()));

    stack.set_image(NS, "web", "app", "app:2").await?;
    let done = stack
        .wait_for(NS, "web", Duration::from_secs(120), "app:2 stable", |r| {
            r.status.as_ref().and_then(|s| s.stable_rs.as_deref()) != Some(v1.as_str())
                && phase(r) == Some(RolloutPhase::Healthy)
        })
        .await?;
    let v2 = done.status.and_then(|s| s.stable_rs).unwrap_or_default();
    assert_eq!(selected(&stack, "web-stable").await?, Some(v2.clone()));
    assert_eq!(selected(&stack, "web-canary").await?, Some(v2.clone()));
    assert_eq!(route_weights(&stack).await?, (0, 100));

    Api::<Rollout>::namespaced(stack.client.clone(), NS)
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 4}})),
        )
        .await?;
    stack
        .wait_for(
            NS,
            "web",
            Duration::from_secs(120),
            "4 pods available",
            |r| {
                r.status.as_ref().and_then(|s| s.available_replicas) == Some(4)
                    && phase(r) == Some(RolloutPhase::Healthy)
            },
        )
        .await?;
    let sets = replica_sets(&stack, "web").await?;
    assert!(sets.contains(&(v2.clone(), 4, 4)), "{sets:?}");
    assert_eq!(selected(&stack, "web-stable").await?, Some(v2));
    Ok(())
}

/// Argo Rollouts (docs: features/ephemeral-metadata): the canary ReplicaSet is created with
/// `canaryMetadata`; when the rollout is fully promoted it becomes the stable one and its pods
/// are updated in place (not recreated) to `stableMetadata`, the canary-only keys removed.
#[tokio::test(start_paused = true)]
async fn canary_pods_carry_the_canary_metadata_then_the_stable_metadata_in_place() -> R {
    let stack = stack().await?;
    let canary = json!({
        "trafficRouting": routed(),
        "steps": [{"setWeight": 20}, {"pause": {}}],
        "canaryMetadata": {"labels": {"role": "canary", "track": "canary"},
                           "annotations": {"scrape": "canary"}},
        "stableMetadata": {"labels": {"role": "stable"}},
    });
    let v1 = deploy(&stack, canary).await?;
    wait_role(&stack, &v1, "stable", Some(10), 30).await?;
    stack.set_image(NS, "web", "app", "app:2").await?;
    wait_phase(&stack, "web", RolloutPhase::Paused, 120).await?;
    let r = stack.rollout(NS, "web").await?;
    let v2 = r
        .status
        .and_then(|s| s.current_pod_hash)
        .unwrap_or_default();
    assert_ne!(v1, v2);
    let canary_pods = wait_role(&stack, &v2, "canary", Some(2), 30).await?;
    for (name, _, labels, annotations) in &canary_pods {
        assert_eq!(
            labels.get("track").map(String::as_str),
            Some("canary"),
            "{name}"
        );
        assert_eq!(
            annotations.get("scrape").map(String::as_str),
            Some("canary"),
            "{name}"
        );
    }
    wait_role(&stack, &v1, "stable", Some(10), 30).await?;

    promote(&stack).await?;
    stack
        .wait_for(NS, "web", Duration::from_secs(300), "v2 stable", |r| {
            r.status.as_ref().and_then(|s| s.stable_rs.as_deref()) == Some(v2.as_str())
        })
        .await?;
    let stable = wait_role(&stack, &v2, "stable", Some(10), 60).await?;
    for (name, uid, _, _) in &canary_pods {
        assert!(
            stable.iter().any(|p| &p.0 == name && &p.1 == uid),
            "canary pod {name} was recreated"
        );
    }
    for (name, _, labels, annotations) in &stable {
        assert!(!labels.contains_key("track"), "{name}: {labels:?}");
        assert!(
            !annotations.contains_key("scrape"),
            "{name}: {annotations:?}"
        );
        assert_eq!(labels.get("app").map(String::as_str), Some("web"), "{name}");
    }
    Ok(())
}
