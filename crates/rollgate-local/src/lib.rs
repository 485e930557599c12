//! The local stack: a simulated cluster with rollgate's CRDs installed and the real controller
//! running in-process against it.
//!
//! This is what `rollgate demo`, the end-to-end tests and the benchmarks run. Under tokio's
//! paused clock everything (pod readiness, delays, deadlines) runs in virtual time.

pub mod kubeconfig;
pub mod simulated_metrics;
pub mod snapshot;

use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use rollgate_api::Rollout;
use rollgate_controller::Clock;
use rollgate_sim::{SimCluster, SimConfig};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Errors of the local stack.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// An API call to the simulated cluster failed.
    #[error("{what}: {source}")]
    Kube {
        /// What was being done.
        what: String,
        /// The client's error.
        #[source]
        source: kube::Error,
    },
    /// A manifest could not be read.
    #[error("manifest document {index}: {message}")]
    Manifest {
        /// 0-based document index in the stream.
        index: usize,
        /// What is wrong.
        message: String,
    },
    /// Waiting for a condition timed out (in virtual time).
    #[error("timed out after {0:?} waiting for {1}")]
    Timeout(Duration, String),
}

fn kube_err(what: impl Into<String>) -> impl FnOnce(kube::Error) -> LocalError {
    let what = what.into();
    move |source| LocalError::Kube { what, source }
}

/// A minimal Gateway API HTTPRoute CRD (open schema), installed by [`Stack::new`] so that
/// canaries can route through HTTPRoutes on the simulated cluster.
pub const HTTP_ROUTE_CRD: &str = include_str!("httproute-crd.yaml");

/// Field manager used when the stack applies manifests (as a user's CI would).
pub const APPLY_MANAGER: &str = "rollgate-local";

struct RunningController {
    name: String,
    telemetry: std::sync::Arc<rollgate_controller::telemetry::Telemetry>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

/// A simulated cluster with rollgate installed.
pub struct Stack {
    /// The simulated cluster.
    pub sim: SimCluster,
    /// A client for it (namespace `default`).
    pub client: Client,
    /// Metrics of every controller this stack starts.
    pub telemetry: std::sync::Arc<rollgate_controller::telemetry::Telemetry>,
    controllers: Vec<RunningController>,
}

impl Stack {
    /// Starts a simulated cluster and installs rollgate's CRDs (and a Gateway API HTTPRoute CRD)
    /// through its API. No controller
    /// runs yet: call [`Stack::start_controller`].
    pub async fn new(config: SimConfig) -> Result<Self, LocalError> {
        let sim = SimCluster::new(config);
        let client = sim.client();
        let crds = Api::<CustomResourceDefinition>::all(client.clone());
        for crd in rollgate_api::crds::all() {
            let name = crd.metadata.name.clone().unwrap_or_default();
            crds.create(&PostParams::default(), &crd)
                .await
                .map_err(kube_err(format!("installing CRD {name}")))?;
        }
        let route_crd: CustomResourceDefinition =
            serde_saphyr::from_str(HTTP_ROUTE_CRD).map_err(|e| LocalError::Manifest {
                index: 0,
                message: format!("HTTPRoute CRD: {e}"),
            })?;
        crds.create(&PostParams::default(), &route_crd)
            .await
            .map_err(kube_err("installing the HTTPRoute CRD"))?;
        Ok(Self {
            sim,
            client,
            telemetry: std::sync::Arc::default(),
            controllers: Vec::new(),
        })
    }

    /// Starts a controller instance named `instance` (several may run at once) that does not
    /// measure AnalysisRuns: their phases are set by the caller.
    pub fn start_controller(&mut self, instance: &str) {
        self.start_controller_with(instance, None);
    }

    /// Starts a controller instance that measures AnalysisRuns with `metric_source` (for
    /// example [`rollgate_controller::metrics_source::PrometheusSource`]).
    pub fn start_controller_with(
        &mut self,
        instance: &str,
        metric_source: Option<
            std::sync::Arc<dyn rollgate_controller::metrics_source::MetricSource>,
        >,
    ) {
        self.start_controller_with_sources(instance, metric_source, None, None);
    }

    /// [`Stack::start_controller_with`], pulling alerts from `alert_source` (default: the
    /// Alertmanager or Prometheus each rollout names) and woken by the alerts of
    /// `alert_deliveries` (a webhook receiver's inbox).
    pub fn start_controller_with_sources(
        &mut self,
        instance: &str,
        metric_source: Option<
            std::sync::Arc<dyn rollgate_controller::metrics_source::MetricSource>,
        >,
        alert_source: Option<std::sync::Arc<dyn rollgate_controller::alert_source::AlertSource>>,
        alert_deliveries: Option<rollgate_controller::run::AlertInbox>,
    ) {
        let (stop, stopped) = oneshot::channel::<()>();
        let mut config = rollgate_controller::Config {
            namespace: None,
            clock: Clock::starting_at(self.sim.now()),
            instance: instance.to_string(),
            metric_source,
            telemetry: self.telemetry.clone(),
            ..Default::default()
        };
        if let Some(source) = alert_source {
            config.alert_source = source;
        }
        config.alert_deliveries = alert_deliveries;
        let client = self.client.clone();
        let task = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.await;
            };
            if let Err(e) = rollgate_controller::run(client, config, shutdown).await {
                tracing::error!(error = %e, "controller stopped");
            }
        });
        self.controllers.push(RunningController {
            name: instance.to_string(),
            telemetry: self.telemetry.clone(),
            stop,
            task,
        });
    }

    /// Starts a controller instance that reconciles only while it holds the leader Lease
    /// (`settings.identity` is replaced by `instance`). Its requests carry
    /// `User-Agent: instance`, so the audit log tells the instances' writes apart.
    pub fn start_elected_controller(
        &mut self,
        instance: &str,
        settings: rollgate_controller::LeaderSettings,
        metric_source: Option<
            std::sync::Arc<dyn rollgate_controller::metrics_source::MetricSource>,
        >,
    ) {
        let (stop, stopped) = oneshot::channel::<()>();
        let telemetry = std::sync::Arc::<rollgate_controller::telemetry::Telemetry>::default();
        let config = rollgate_controller::Config {
            namespace: None,
            clock: Clock::starting_at(self.sim.now()),
            instance: instance.to_string(),
            metric_source,
            telemetry: telemetry.clone(),
            ..Default::default()
        };
        let settings = rollgate_controller::LeaderSettings {
            identity: instance.to_string(),
            ..settings
        };
        let client = self.sim.client_as(instance);
        let task = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.await;
            };
            if let Err(e) =
                rollgate_controller::run_elected(client, config, settings, shutdown).await
            {
                tracing::error!(error = %e, "elected controller stopped");
            }
        });
        self.controllers.push(RunningController {
            name: instance.to_string(),
            telemetry,
            stop,
            task,
        });
    }

    /// Whether controller `instance` (started with [`Stack::start_elected_controller`])
    /// leads and reconciles right now.
    pub fn is_leading(&self, instance: &str) -> bool {
        self.controllers
            .iter()
            .any(|c| c.name == instance && c.telemetry.is_leader())
    }

    /// Stops controller `instance` gracefully (an elected one releases its Lease). False
    /// when no such instance runs.
    pub async fn stop_controller(&mut self, instance: &str) -> bool {
        let Some(i) = self.controllers.iter().position(|c| c.name == instance) else {
            return false;
        };
        let c = self.controllers.remove(i);
        let _ = c.stop.send(());
        let _ = c.task.await;
        true
    }

    /// Kills controller `instance` as a crash would: its task is aborted, nothing is
    /// released. False when no such instance runs.
    pub async fn crash_controller(&mut self, instance: &str) -> bool {
        let Some(i) = self.controllers.iter().position(|c| c.name == instance) else {
            return false;
        };
        let c = self.controllers.remove(i);
        c.task.abort();
        let _ = c.task.await;
        true
    }

    /// Stops every running controller and waits until they are gone.
    pub async fn stop_controllers(&mut self) {
        for c in self.controllers.drain(..) {
            let _ = c.stop.send(());
            let _ = c.task.await;
        }
    }

    /// Applies a multi-document YAML stream with server-side apply, as `kubectl apply
    /// --server-side` would. Returns `kind/name` of each object.
    pub async fn apply_yaml(&self, yaml: &str, namespace: &str) -> Result<Vec<String>, LocalError> {
        let docs: Vec<serde_json::Value> =
            serde_saphyr::from_multiple(yaml).map_err(|e| LocalError::Manifest {
                index: 0,
                message: e.to_string(),
            })?;
        let mut applied = Vec::new();
        for (index, doc) in docs.into_iter().enumerate() {
            if doc.is_null() {
                continue;
            }
            let bad = |message: &str| LocalError::Manifest {
                index,
                message: message.to_string(),
            };
            let api_version = doc["apiVersion"]
                .as_str()
                .ok_or_else(|| bad("apiVersion (string) expected"))?;
            let kind = doc["kind"]
                .as_str()
                .ok_or_else(|| bad("kind (string) expected"))?;
            let name = doc["metadata"]["name"]
                .as_str()
                .ok_or_else(|| bad("metadata.name (string) expected"))?
                .to_string();
            let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
            let gvk = GroupVersionKind::gvk(group, version, kind);
            let resource = ApiResource::from_gvk(&gvk);
            let api: Api<DynamicObject> = if CLUSTER_SCOPED.contains(&kind) {
                Api::all_with(self.client.clone(), &resource)
            } else {
                let ns = doc["metadata"]["namespace"].as_str().unwrap_or(namespace);
                Api::namespaced_with(self.client.clone(), ns, &resource)
            };
            api.patch(
                &name,
                &PatchParams::apply(APPLY_MANAGER).force(),
                &Patch::Apply(&doc),
            )
            .await
            .map_err(kube_err(format!("applying {kind}/{name}")))?;
            applied.push(format!("{kind}/{name}"));
        }
        Ok(applied)
    }

    /// Reads a Rollout.
    pub async fn rollout(&self, namespace: &str, name: &str) -> Result<Rollout, LocalError> {
        Api::<Rollout>::namespaced(self.client.clone(), namespace)
            .get(name)
            .await
            .map_err(kube_err(format!("reading Rollout {namespace}/{name}")))
    }

    /// Polls a Rollout every (virtual) second until `done` holds, for at most `timeout`.
    pub async fn wait_for(
        &self,
        namespace: &str,
        name: &str,
        timeout: Duration,
        what: &str,
        mut done: impl FnMut(&Rollout) -> bool,
    ) -> Result<Rollout, LocalError> {
        let start = tokio::time::Instant::now();
        loop {
            let r = self.rollout(namespace, name).await?;
            if done(&r) {
                return Ok(r);
            }
            if start.elapsed() >= timeout {
                return Err(LocalError::Timeout(timeout, what.to_string()));
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// Merge-patches a Rollout's status, as `rollgate promote/abort/retry` do.
    pub async fn patch_rollout_status(
        &self,
        namespace: &str,
        name: &str,
        status: serde_json::Value,
    ) -> Result<(), LocalError> {
        Api::<Rollout>::namespaced(self.client.clone(), namespace)
            .patch_status(
                name,
                &PatchParams::default(),
                &Patch::Merge(&serde_json::json!({ "status": status })),
            )
            .await
            .map(drop)
            .map_err(kube_err(format!(
                "patching status of Rollout {namespace}/{name}"
            )))
    }

    /// Sets the image of a Rollout's container: a new revision. Read, change, replace: a
    /// replace refused with 409 because the controller wrote the Rollout (its status) in
    /// between is tried again on a fresh read, as a user's `kubectl edit` would be.
    pub async fn set_image(
        &self,
        namespace: &str,
        name: &str,
        container: &str,
        image: &str,
    ) -> Result<(), LocalError> {
        const ATTEMPTS: usize = 20;
        let api = Api::<Rollout>::namespaced(self.client.clone(), namespace);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut rollout = api
                .get(name)
                .await
                .map_err(kube_err(format!("reading Rollout {namespace}/{name}")))?;
            let containers = rollout
                .spec
                .template
                .as_mut()
                .and_then(|t| t.spec.as_mut())
                .map(|s| &mut s.containers);
            let Some(c) = containers.and_then(|cs| cs.iter_mut().find(|c| c.name == container))
            else {
                return Err(LocalError::Manifest {
                    index: 0,
                    message: format!("Rollout {name} has no container {container}"),
                });
            };
            c.image = Some(image.to_string());
            match api.replace(name, &PostParams::default(), &rollout).await {
                Ok(_) => return Ok(()),
                Err(kube::Error::Api(e)) if e.code == 409 && attempt < ATTEMPTS => continue,
                Err(e) => {
                    return Err(kube_err(format!("updating Rollout {namespace}/{name}"))(e));
                }
            }
        }
    }
}

/// Kinds the stack applies without a namespace.
const CLUSTER_SCOPED: &[&str] = &[
    "ClusterAnalysisTemplate",
    "CustomResourceDefinition",
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
];
