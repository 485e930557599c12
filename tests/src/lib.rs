//! Harness for the end-to-end tests: a [`Stack`] with a running controller, reads and waits on
//! what it does, and an invariant monitor that checks production traffic every virtual second.
//! The objects the tests apply come from `rollgate-test-support`, which the engine's tests
//! share.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::Api;
use kube::api::{ApiResource, DynamicObject, ListParams};
use rollgate_api::labels::{POD_TEMPLATE_HASH, ROLLOUT_NAME};
use rollgate_api::{Rollout, RolloutPhase};
pub use rollgate_local::Stack;
use rollgate_sim::SimConfig;

/// Namespace of every fixture.
pub const NS: &str = "default";

/// Starts a stack (pods ready after 5 s) with one controller running.
pub async fn stack() -> anyhow::Result<Stack> {
    let mut stack = Stack::new(SimConfig {
        default_ready_delay: Duration::from_secs(5),
        ..Default::default()
    })
    .await?;
    stack.start_controller("controller-1");
    Ok(stack)
}

/// Names of the live (not terminating) pods labelled `app=<app>`, sorted.
pub async fn pod_names(stack: &Stack, app: &str) -> anyhow::Result<Vec<String>> {
    let pods = Api::<Pod>::namespaced(stack.client.clone(), NS)
        .list(&ListParams::default().labels(&format!("app={app}")))
        .await?;
    let mut names: Vec<String> = pods
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter_map(|p| p.metadata.name)
        .collect();
    names.sort();
    Ok(names)
}

/// The pod-template hash a Service selects.
pub async fn selected(stack: &Stack, service: &str) -> anyhow::Result<Option<String>> {
    let svc = Api::<Service>::namespaced(stack.client.clone(), NS)
        .get(service)
        .await?;
    Ok(svc
        .spec
        .and_then(|s| s.selector)
        .and_then(|s| s.get(POD_TEMPLATE_HASH).cloned()))
}

/// The ReplicaSets of a rollout as `(hash, spec.replicas, ready)`.
pub async fn replica_sets(stack: &Stack, name: &str) -> anyhow::Result<Vec<(String, i32, i32)>> {
    let list = Api::<ReplicaSet>::namespaced(stack.client.clone(), NS)
        .list(&ListParams::default().labels(&format!("{ROLLOUT_NAME}={name}")))
        .await?;
    Ok(list
        .items
        .into_iter()
        .map(|rs| {
            let hash = rs
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(POD_TEMPLATE_HASH).cloned())
                .unwrap_or_default();
            let ready = rs.status.and_then(|s| s.ready_replicas).unwrap_or(0);
            (hash, rs.spec.replicas.unwrap_or(0), ready)
        })
        .collect())
}

/// Phase of a rollout, once the status describes the current generation.
pub fn phase(r: &Rollout) -> Option<RolloutPhase> {
    let s = r.status.as_ref()?;
    (s.observed_generation == r.metadata.generation)
        .then_some(s.phase)
        .flatten()
}

/// Status message of a rollout.
pub fn message(r: &Rollout) -> String {
    r.status
        .as_ref()
        .and_then(|s| s.message.clone())
        .unwrap_or_default()
}

/// A simulated cluster whose pods are ready 200 ms after they start, with one controller
/// (`controller-1`) whose analyses query the real Prometheus their templates name.
pub async fn prometheus_stack() -> anyhow::Result<Stack> {
    let mut stack = Stack::new(rollgate_sim::SimConfig {
        default_ready_delay: Duration::from_millis(200),
        ..Default::default()
    })
    .await?;
    stack.start_controller_with(
        "controller-1",
        Some(std::sync::Arc::new(
            rollgate_controller::metrics_source::PrometheusSource,
        )),
    );
    Ok(stack)
}

/// Waits up to `secs` for the rollout `web` in [`NS`] to satisfy `f` (`what` names it in the
/// error on time-out).
pub async fn wait_web(
    stack: &Stack,
    what: &str,
    secs: u64,
    f: impl Fn(&Rollout) -> bool,
) -> anyhow::Result<Rollout> {
    Ok(stack
        .wait_for(NS, "web", Duration::from_secs(secs), what, f)
        .await?)
}

/// A rollout's `status.stableRS`.
pub fn stable_rs(r: &Rollout) -> Option<String> {
    r.status.as_ref().and_then(|s| s.stable_rs.clone())
}

/// Waits (virtual time) until the rollout reaches `want`.
pub async fn wait_phase(
    stack: &Stack,
    name: &str,
    want: RolloutPhase,
    secs: u64,
) -> anyhow::Result<Rollout> {
    Ok(stack
        .wait_for(
            NS,
            name,
            Duration::from_secs(secs),
            &format!("{name} {want}"),
            |r| phase(r) == Some(want),
        )
        .await?)
}

/// Waits (virtual time) until the rollout recorded a done `restartAt` and is Healthy again.
pub async fn wait_restarted(stack: &Stack, name: &str, secs: u64) -> anyhow::Result<Rollout> {
    Ok(stack
        .wait_for(NS, name, Duration::from_secs(secs), "restartedAt", |r| {
            r.status
                .as_ref()
                .and_then(|s| s.restarted_at.as_ref())
                .is_some()
                && phase(r) == Some(RolloutPhase::Healthy)
        })
        .await?)
}

/// Watches the active Service of a rollout every virtual second and records every moment it
/// selects a ReplicaSet with fewer ready pods than `replicas` after the first deploy.
pub struct Monitor {
    violations: Arc<Mutex<Vec<String>>>,
    switches: Arc<Mutex<Vec<Option<String>>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Monitor {
    /// Starts monitoring `<name>-active` for a rollout of `replicas` pods.
    pub fn start(stack: &Stack, name: &str, replicas: i32) -> Self {
        let violations = Arc::new(Mutex::new(Vec::new()));
        let switches = Arc::new(Mutex::new(Vec::new()));
        let (v, sw) = (violations.clone(), switches.clone());
        let client = stack.client.clone();
        let name = name.to_string();
        let task = tokio::spawn(async move {
            let services = Api::<Service>::namespaced(client.clone(), NS);
            let sets = Api::<ReplicaSet>::namespaced(client.clone(), NS);
            let mut stable_seen = false;
            loop {
                let active = services
                    .get_opt(&format!("{name}-active"))
                    .await
                    .ok()
                    .flatten()
                    .and_then(|s| s.spec)
                    .and_then(|s| s.selector)
                    .and_then(|s| s.get(POD_TEMPLATE_HASH).cloned());
                if let Ok(mut sw) = sw.lock()
                    && sw.last() != Some(&active)
                {
                    sw.push(active.clone());
                }
                if let Some(hash) = &active {
                    let ready = sets
                        .get_opt(&format!("{name}-{hash}"))
                        .await
                        .ok()
                        .flatten()
                        .and_then(|rs| rs.status)
                        .and_then(|s| s.ready_replicas)
                        .unwrap_or(0);
                    if ready >= replicas {
                        stable_seen = true;
                    } else if stable_seen && let Ok(mut v) = v.lock() {
                        v.push(format!(
                            "active selects {hash} with {ready}/{replicas} ready"
                        ));
                    }
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
        Self {
            violations,
            switches,
            task,
        }
    }

    /// Stops and returns the invariant violations seen.
    pub fn violations(&self) -> Vec<String> {
        self.violations
            .lock()
            .map(|v| v.clone())
            .unwrap_or_default()
    }

    /// The successive hashes the active Service selected.
    pub fn switches(&self) -> Vec<Option<String>> {
        self.switches.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The live pods of `hash` as `(name, uid, labels, annotations)`, sorted by name.
pub type PodView = (
    String,
    String,
    std::collections::BTreeMap<String, String>,
    std::collections::BTreeMap<String, String>,
);

/// The live (not terminating) pods of `hash` in [`NS`].
pub async fn pods_of(stack: &Stack, hash: &str) -> anyhow::Result<Vec<PodView>> {
    let pods = Api::<Pod>::namespaced(stack.client.clone(), NS)
        .list(&ListParams::default().labels(&format!("{POD_TEMPLATE_HASH}={hash}")))
        .await?;
    let mut out: Vec<PodView> = pods
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .map(|p| {
            (
                p.metadata.name.unwrap_or_default(),
                p.metadata.uid.unwrap_or_default(),
                p.metadata.labels.unwrap_or_default(),
                p.metadata.annotations.unwrap_or_default(),
            )
        })
        .collect();
    out.sort();
    Ok(out)
}

/// Waits (virtual time, at most `secs`) until the pods of `hash` all carry the label
/// `role=ROLE`: exactly `n` of them when given, else at least one.
pub async fn wait_role(
    stack: &Stack,
    hash: &str,
    role: &str,
    n: Option<usize>,
    secs: u64,
) -> anyhow::Result<Vec<PodView>> {
    for _ in 0..secs {
        let pods = pods_of(stack, hash).await?;
        let count_ok = n.map_or(!pods.is_empty(), |n| pods.len() == n);
        if count_ok
            && pods
                .iter()
                .all(|p| p.2.get("role").map(String::as_str) == Some(role))
        {
            return Ok(pods);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    anyhow::bail!(
        "pods of {hash} never were {n:?} (None: any) with role={role}: {:?}",
        pods_of(stack, hash).await?
    )
}

/// The Gateway API HTTPRoutes of [`NS`] (the simulated cluster serves the CRD the stack
/// installs).
pub fn route_api(stack: &Stack) -> Api<DynamicObject> {
    let ar = ApiResource {
        group: "gateway.networking.k8s.io".into(),
        version: "v1".into(),
        api_version: "gateway.networking.k8s.io/v1".into(),
        kind: "HTTPRoute".into(),
        plural: "httproutes".into(),
    };
    Api::namespaced_with(stack.client.clone(), NS, &ar)
}

/// `(canary, stable)` weights of a route's first rule, for the Services `web-canary` and
/// `web-stable` (-1: backend missing).
pub fn weights_of(route: &DynamicObject) -> (i64, i64) {
    let refs = route.data["spec"]["rules"][0]["backendRefs"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let weight = |svc: &str| {
        refs.iter()
            .find(|b| b["name"] == svc)
            .and_then(|b| b["weight"].as_i64())
            .unwrap_or(-1)
    };
    (weight("web-canary"), weight("web-stable"))
}

/// `(canary, stable)` weights of `web-route`.
pub async fn route_weights(stack: &Stack) -> anyhow::Result<(i64, i64)> {
    Ok(weights_of(&route_api(stack).get("web-route").await?))
}

/// The rollout's current step index.
pub fn step_index(r: &Rollout) -> Option<i32> {
    r.status.as_ref().and_then(|s| s.current_step_index)
}

/// Waits (up to 300 s) until rollout `web` is at step `index` in `phase`.
pub async fn wait_step(stack: &Stack, index: i32, phase: RolloutPhase) -> anyhow::Result<Rollout> {
    Ok(stack
        .wait_for(
            NS,
            "web",
            Duration::from_secs(300),
            &format!("step index {index}, {phase}"),
            |r| step_index(r) == Some(index) && self::phase(r) == Some(phase),
        )
        .await?)
}

/// Promotes rollout `web` past its pause (clears `status.pauseConditions`, as
/// `rollgate promote` does).
pub async fn promote(stack: &Stack) -> anyhow::Result<()> {
    Ok(stack
        .patch_rollout_status(NS, "web", serde_json::json!({"pauseConditions": null}))
        .await?)
}
