//! What the fault tests share: controller processes that can be killed, an invariant monitor
//! that samples production traffic every virtual second, and the final state two runs are
//! compared by.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rollgate_api::labels::POD_TEMPLATE_HASH;
use rollgate_api::pipeline::Release;
use rollgate_api::{AnalysisRun, Rollout};
use rollgate_controller::metrics_source::MetricSource;
use rollgate_controller::{Clock, Config};
use rollgate_sim::SimCluster;
use serde_json::Value;

/// Starts a controller process that talks to `sim` as `identity` (its User-Agent, which the
/// simulated server's fault rules and write counts go by). Abort the task to kill it: nothing
/// is cleaned up.
pub fn spawn_controller(
    sim: &SimCluster,
    identity: &str,
    metrics: Option<Arc<dyn MetricSource>>,
) -> tokio::task::JoinHandle<()> {
    let config = Config {
        namespace: None,
        clock: Clock::starting_at(sim.now()),
        instance: identity.to_string(),
        metric_source: metrics,
        ..Default::default()
    };
    let client = sim.client_as(identity);
    tokio::spawn(async move {
        if let Err(e) = rollgate_controller::run(client, config, std::future::pending()).await {
            tracing::error!(error = %e, "controller stopped");
        }
    })
}

/// What the invariant monitor watches for one rollout.
#[derive(Debug, Clone)]
pub struct Watched {
    /// Namespace of the rollout.
    pub namespace: String,
    /// Name of the rollout (its ReplicaSets are `<name>-<hash>`).
    pub rollout: String,
    /// The Service production traffic goes through (active or stable), if any.
    pub service: Option<String>,
    /// Fewest ready pods the ReplicaSet that Service selects may have (replicas minus what
    /// maxUnavailable allows), once the first release is up.
    pub min_ready: i64,
    /// An HTTPRoute whose weights must sum to 100: `(route, canary Service, stable Service)`.
    pub route: Option<(String, String, String)>,
}

/// Samples the cluster every virtual second (straight from the simulated server's store, not
/// through the faulty API) and records every broken invariant.
pub struct Invariants {
    violations: Arc<Mutex<Vec<String>>>,
    samples: Arc<Mutex<u64>>,
    task: tokio::task::JoinHandle<()>,
}

fn ready_of(sim: &SimCluster, ns: &str, rollout: &str, hash: &str) -> Option<i64> {
    let rs = sim.get_object(
        "apps/v1",
        "replicasets",
        Some(ns),
        &format!("{rollout}-{hash}"),
    )?;
    Some(rs["status"]["readyReplicas"].as_i64().unwrap_or(0))
}

fn selected_hash(sim: &SimCluster, ns: &str, service: &str) -> Option<String> {
    let svc = sim.get_object("v1", "services", Some(ns), service)?;
    svc["spec"]["selector"][POD_TEMPLATE_HASH]
        .as_str()
        .map(String::from)
}

impl Invariants {
    /// Starts sampling.
    pub fn start(sim: &SimCluster, watched: Vec<Watched>) -> Self {
        let violations = Arc::new(Mutex::new(Vec::new()));
        let samples = Arc::new(Mutex::new(0));
        let (v, n) = (violations.clone(), samples.clone());
        let sim = sim.clone();
        let task = tokio::spawn(async move {
            let mut up = vec![false; watched.len()];
            loop {
                let at = sim.now();
                let mut found = Vec::new();
                for (w, up) in watched.iter().zip(up.iter_mut()) {
                    let ns = w.namespace.as_str();
                    if let Some(service) = &w.service
                        && let Some(hash) = selected_hash(&sim, ns, service)
                    {
                        match ready_of(&sim, ns, &w.rollout, &hash) {
                            Some(ready) if ready >= w.min_ready => *up = true,
                            Some(ready) if *up => found.push(format!(
                                "{at}: {ns}/{service} selects {hash} with {ready} ready (< {})",
                                w.min_ready
                            )),
                            None if *up => found.push(format!(
                                "{at}: {ns}/{service} selects {hash}, which has no ReplicaSet"
                            )),
                            _ => {}
                        }
                    }
                    if let Some((route, canary, stable)) = &w.route
                        && let Some(r) = sim.get_object(
                            "gateway.networking.k8s.io/v1",
                            "httproutes",
                            Some(ns),
                            route,
                        )
                    {
                        let refs = r["spec"]["rules"][0]["backendRefs"]
                            .as_array()
                            .cloned()
                            .unwrap_or_default();
                        let weight = |svc: &str| {
                            refs.iter()
                                .find(|b| b["name"] == svc)
                                .and_then(|b| b["weight"].as_i64())
                        };
                        let (c, s) = (weight(canary).unwrap_or(0), weight(stable).unwrap_or(0));
                        if c + s != 100 {
                            found.push(format!("{at}: {ns}/{route} weights {c} + {s} != 100"));
                        }
                        if c > 0 {
                            let ready = selected_hash(&sim, ns, canary)
                                .and_then(|h| ready_of(&sim, ns, &w.rollout, &h))
                                .unwrap_or(0);
                            if ready == 0 {
                                found.push(format!(
                                    "{at}: {ns}/{route} sends {c}% to {canary}, which has no ready pod"
                                ));
                            }
                        }
                    }
                }
                if let Ok(mut v) = v.lock() {
                    v.extend(found);
                }
                if let Ok(mut n) = n.lock() {
                    *n += 1;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
        Self {
            violations,
            samples,
            task,
        }
    }

    /// The invariants broken so far.
    pub fn violations(&self) -> Vec<String> {
        self.violations
            .lock()
            .map(|v| v.clone())
            .unwrap_or_default()
    }

    /// How many times the cluster was sampled.
    pub fn samples(&self) -> u64 {
        self.samples.lock().map(|n| *n).unwrap_or_default()
    }
}

impl Drop for Invariants {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What a run ends with, as two runs of the same script must agree on it: each rollout's
/// phase, abort reason, stable and current revision and step; which revision each Service
/// selects; each ReplicaSet's replicas; each route's weights; each AnalysisRun's phase; each
/// Release's verdict and stage phases. Times, messages and counters are left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Final(BTreeMap<String, String>);

impl Final {
    /// Reads the final state of `sim`, every namespace.
    pub fn read(sim: &SimCluster) -> Self {
        let mut m = BTreeMap::new();
        let key = |o: &Value| {
            format!(
                "{}/{}",
                o["metadata"]["namespace"].as_str().unwrap_or(""),
                o["metadata"]["name"].as_str().unwrap_or("")
            )
        };
        for o in sim.list_objects("rollgate.dev/v1alpha1", "rollouts", None) {
            if let Ok(r) = serde_json::from_value::<Rollout>(o.clone()) {
                let s = r.status.unwrap_or_default();
                m.insert(
                    format!("rollout {}", key(&o)),
                    format!(
                        "phase={:?} abort={:?} stable={:?} current={:?} step={:?} generation={:?}/{:?}",
                        s.phase,
                        s.abort_reason,
                        s.stable_rs,
                        s.current_pod_hash,
                        s.current_step_index,
                        s.observed_generation,
                        r.metadata.generation
                    ),
                );
            }
        }
        for o in sim.list_objects("v1", "services", None) {
            if let Some(hash) = o["spec"]["selector"][POD_TEMPLATE_HASH].as_str() {
                m.insert(format!("service {}", key(&o)), hash.to_string());
            }
        }
        for o in sim.list_objects("apps/v1", "replicasets", None) {
            m.insert(
                format!("replicaset {}", key(&o)),
                o["spec"]["replicas"].to_string(),
            );
        }
        for o in sim.list_objects("gateway.networking.k8s.io/v1", "httproutes", None) {
            m.insert(
                format!("httproute {}", key(&o)),
                o["spec"]["rules"][0]["backendRefs"]
                    .as_array()
                    .map(|refs| {
                        refs.iter()
                            .map(|b| format!("{}={}", b["name"], b["weight"]))
                            .collect::<Vec<_>>()
                            .join(",")
                    })
                    .unwrap_or_default(),
            );
        }
        for o in sim.list_objects("rollgate.dev/v1alpha1", "analysisruns", None) {
            if let Ok(r) = serde_json::from_value::<AnalysisRun>(o.clone()) {
                let phase = r.status.and_then(|s| s.phase);
                m.insert(format!("analysisrun {}", key(&o)), format!("{phase:?}"));
            }
        }
        for o in sim.list_objects("rollgate.dev/v1alpha1", "releases", None) {
            if let Ok(r) = serde_json::from_value::<Release>(o.clone()) {
                let s = r.status.unwrap_or_default();
                let stages: Vec<String> = s
                    .stages
                    .iter()
                    .map(|st| format!("{}:{:?}", st.name, st.phase))
                    .collect();
                m.insert(
                    format!("release {}", key(&o)),
                    format!("verdict={:?} {}", s.verdict, stages.join(" ")),
                );
            }
        }
        Self(m)
    }

    /// The entries where `self` and `other` differ, one line each.
    pub fn diff(&self, other: &Self) -> Vec<String> {
        let keys: std::collections::BTreeSet<&String> =
            self.0.keys().chain(other.0.keys()).collect();
        keys.into_iter()
            .filter(|k| self.0.get(*k) != other.0.get(*k))
            .map(|k| format!("{k}: {:?} vs {:?}", self.0.get(k), other.0.get(k)))
            .collect()
    }
}

/// Polls (virtual time, every second) until `done` holds for the Rollout, for at most `secs`.
pub async fn wait_rollout(
    sim: &SimCluster,
    ns: &str,
    name: &str,
    secs: u64,
    what: &str,
    done: impl Fn(&Rollout) -> bool,
) -> anyhow::Result<Rollout> {
    let until = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let r = sim
            .get_object("rollgate.dev/v1alpha1", "rollouts", Some(ns), name)
            .and_then(|o| serde_json::from_value::<Rollout>(o).ok());
        if let Some(r) = &r
            && done(r)
        {
            return Ok(r.clone());
        }
        if tokio::time::Instant::now() >= until {
            anyhow::bail!(
                "{what}: not within {secs}s; status: {:?}",
                r.and_then(|r| r.status)
            );
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
