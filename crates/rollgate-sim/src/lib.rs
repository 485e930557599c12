//! An in-memory Kubernetes API server for rollgate's demo, end-to-end tests and benchmarks.
//!
//! [`SimCluster`] serves the Kubernetes HTTP API as a `tower::Service` that kube's `Client`
//! uses directly (no socket), with what a client depends on: resourceVersions and 409
//! conflicts, generations, status subresources, list/watch with resumption and 410 Gone,
//! label and field selectors, merge/JSON/strategic/apply patches, discovery, finalizers and
//! owner-reference garbage collection. It also does what a cluster does on its own: a
//! ReplicaSet controller whose pods become ready after a delay chosen per image (or never,
//! for crash-looping images). All timers are tokio timers, so under a paused tokio clock a
//! 30-minute rollout runs in milliseconds.

mod api;
pub mod clock;
pub mod error;
mod ops;
pub mod patch;
pub mod registry;
mod replicaset;
pub mod selector;
pub mod store;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::jiff::Timestamp;
use tokio::sync::broadcast;

pub use store::AuditEntry;

use crate::clock::Clock;
use crate::store::{Store, type_key};

/// Settings of a simulated cluster.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// How long a pod takes to become ready unless its image says otherwise (default 5 s).
    pub default_ready_delay: Duration,
    /// Wall-clock time at start (default: now).
    pub base_time: Option<Timestamp>,
    /// Changes kept for watch resumption; older resourceVersions get 410 Gone (default 20,000).
    pub watch_history: usize,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            default_ready_delay: Duration::from_secs(5),
            base_time: None,
            watch_history: 20_000,
        }
    }
}

/// How pods running an image behave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageBehavior {
    /// Ready this long after the pod starts.
    Ready {
        /// Delay before readiness.
        after: Duration,
    },
    /// Never ready: the container keeps crashing.
    CrashLoop,
}

pub(crate) struct Inner {
    store: Mutex<Store>,
    clock: Clock,
    config: SimConfig,
    images: Mutex<HashMap<String, ImageBehavior>>,
}

impl Inner {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Behaviour of an image: configured, else crash-looping when its tag says `crashloop`
    /// or `fail`, else ready after the default delay.
    pub(crate) fn image_behavior(&self, image: &str) -> ImageBehavior {
        let images = self.images.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(b) = images.get(image) {
            return *b;
        }
        let tag = image.rsplit_once(':').map_or("", |(_, t)| t);
        if tag.contains("crashloop") || tag.contains("fail") {
            ImageBehavior::CrashLoop
        } else {
            ImageBehavior::Ready {
                after: self.config.default_ready_delay,
            }
        }
    }
}

/// A simulated Kubernetes cluster. Cheap to clone (shared state).
#[derive(Clone)]
pub struct SimCluster {
    inner: Arc<Inner>,
}

impl SimCluster {
    /// Starts an empty cluster with namespace `default`. Must run inside a tokio runtime.
    pub fn new(config: SimConfig) -> Self {
        let (tx, _) = broadcast::channel(65_536);
        let clock = Clock::new(config.base_time.unwrap_or_else(Timestamp::now));
        let store = Store::new(config.watch_history, tx);
        let inner = Arc::new(Inner {
            store: Mutex::new(store),
            clock,
            config,
            images: Mutex::new(HashMap::new()),
        });
        {
            let mut st = inner.lock();
            let now = inner.clock.stamp();
            if let Some(rt) = st.registry.get("", "v1", "namespaces").cloned() {
                let ns = serde_json::json!({"metadata": {"name": "default"}});
                let _ = ops::create(&mut st, &rt, "", ns, &now);
            }
        }
        Self { inner }
    }

    /// A kube client talking to this cluster in-process (default namespace `default`).
    pub fn client(&self) -> kube::Client {
        kube::Client::new(api::service(self.inner.clone()), "default")
    }

    /// The cluster's current time (virtual under a paused tokio clock).
    pub fn now(&self) -> Timestamp {
        self.inner.clock.now()
    }

    /// Serves a CustomResourceDefinition's resources (as creating it through the API does).
    pub fn register_crd(&self, crd: &CustomResourceDefinition) {
        if let Ok(v) = serde_json::to_value(crd) {
            self.inner.lock().registry.register_crd(&v);
        }
    }

    /// Sets how pods running `image` behave (for pods started from now on).
    pub fn set_image_behavior(&self, image: &str, behavior: ImageBehavior) {
        self.inner
            .images
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(image.to_string(), behavior);
    }

    /// Reads an object as JSON.
    pub fn get_object(
        &self,
        api_version: &str,
        plural: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<serde_json::Value> {
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let st = self.inner.lock();
        let rt = st.registry.get(group, version, plural)?;
        st.get(&type_key(rt), namespace.unwrap_or_default(), name)
            .cloned()
    }

    /// Lists objects as JSON.
    pub fn list_objects(
        &self,
        api_version: &str,
        plural: &str,
        namespace: Option<&str>,
    ) -> Vec<serde_json::Value> {
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let st = self.inner.lock();
        let Some(rt) = st.registry.get(group, version, plural) else {
            return Vec::new();
        };
        st.list(&type_key(rt), namespace)
            .into_iter()
            .cloned()
            .collect()
    }

    /// Every mutating request received since the last [`SimCluster::clear_audit_log`].
    pub fn audit_log(&self) -> Vec<AuditEntry> {
        self.inner.lock().audit.clone()
    }

    /// Forgets the audit log.
    pub fn clear_audit_log(&self) {
        self.inner.lock().audit.clear();
    }
}
