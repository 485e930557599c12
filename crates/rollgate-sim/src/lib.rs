//! An in-memory Kubernetes API server for rollgate's demo, end-to-end tests and benchmarks.
//!
//! [`SimCluster`] serves the Kubernetes HTTP API as a `tower::Service` that kube's `Client`
//! uses directly (no socket), or over plain HTTP/1.1 for kubectl ([`SimCluster::serve`]),
//! with what a client depends on: resourceVersions and 409 conflicts, generations, status
//! and scale subresources, list/watch with resumption, bookmarks and 410 Gone, label and
//! field selectors, merge/JSON/strategic patches and server-side apply with field
//! ownership, discovery, finalizers and owner-reference garbage collection.
//!
//! It also does what a cluster does on its own: a ReplicaSet controller whose pods become
//! ready after a delay chosen per image (or never, for crash-looping images). All timers
//! are tokio timers and object timestamps follow tokio's clock, so under a paused tokio
//! clock a 30-minute rollout runs in milliseconds.
//!
//! It fails as a real cluster does when asked to ([`faults`]): conflicts, 429/500/503
//! answers, latency, dropped watch connections, 410 on resume and lost responses, by rate
//! and per verb, resource and client, from a seed; a server that stops answering
//! ([`SimCluster::set_unresponsive`]); and a client killed right after its k-th write
//! ([`SimCluster::kill_after_writes`]).

pub mod apply;
pub mod clock;
pub mod convert;
pub mod decode;
mod defaults;
pub mod discovery;
pub mod error;
pub mod faults;
pub mod gc;
mod http;
mod kubelet;
pub mod patch;
mod proto;
pub mod registry;
mod replicaset;
pub mod schema;
pub mod selector;
pub mod store;
pub mod table;
mod watch;
pub mod write;

/// `image` pinned by the digest the simulated registry resolves it to: a tag resolves to the
/// SHA-256 of the reference (the same tag, the same digest); a pinned image to its own digest.
/// Pods report it in `imageID` (with a runtime prefix), as a kubelet does.
pub fn pinned_image(image: &str) -> String {
    use sha2::{Digest, Sha256};
    if image.contains('@') {
        return image.to_string();
    }
    let name_start = image.rfind('/').map_or(0, |i| i + 1);
    let repo = match image[name_start..].rfind(':') {
        Some(colon) => &image[..name_start + colon],
        None => image,
    };
    let hex: String = Sha256::digest(image.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{repo}@sha256:{hex}")
}

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use tokio::sync::broadcast;

pub use error::ApiError;
pub use faults::{Fault, FaultCounts, FaultPlan, FaultPlanError, FaultRule, Verb};
pub use store::AuditEntry;

use crate::clock::Clock;
use crate::convert::from_storage;
use crate::store::{Store, type_key};
use crate::write::WriteCtx;

/// Settings of a simulated cluster.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// How long a pod takes to become ready unless its image says otherwise (default 5 s).
    pub default_ready_delay: Duration,
    /// Wall-clock time at start (default: now).
    pub base_time: Option<Timestamp>,
    /// Changes kept for watch resumption; older resourceVersions get 410 Gone
    /// (default 20,000).
    pub watch_history: usize,
    /// Namespaces that exist from the start (default `default`, `kube-system`,
    /// `kube-public`).
    pub namespaces: Vec<String>,
    /// Most pods the cluster holds, as a pod quota would allow (default 20,000): a pod
    /// created beyond it is refused with 403 Forbidden, and a ReplicaSet that cannot create
    /// its pods says so in a `ReplicaFailure` condition and retries every second.
    pub max_pods: usize,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            default_ready_delay: Duration::from_secs(5),
            base_time: None,
            watch_history: 20_000,
            namespaces: ["default", "kube-system", "kube-public"]
                .map(String::from)
                .to_vec(),
            max_pods: 20_000,
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
    /// Never ready: the container keeps crashing (restarts with back-off).
    CrashLoop,
}

pub(crate) struct Inner {
    store: Mutex<Store>,
    clock: Clock,
    config: SimConfig,
    images: Mutex<HashMap<String, ImageBehavior>>,
    /// Pending ReplicaSet re-checks (namespace, name) -> due time.
    rechecks: Mutex<HashMap<(String, String), tokio::time::Instant>>,
    /// Last capped burst of pod creations per ReplicaSet (namespace, name).
    bursts: Mutex<HashMap<(String, String), tokio::time::Instant>>,
    /// ReplicaSets (namespace, name) whose sync is queued (see `replicaset::enqueue`).
    queued: Mutex<std::collections::HashSet<(String, String)>>,
    pod_ips: AtomicU64,
    /// User agents cut off from the server (requests answered 503, never handled).
    partitioned: Mutex<std::collections::HashSet<String>>,
    /// Injected conflicts: (method, path) of writes to answer 409 once each, not handled.
    conflicts: Mutex<Vec<(::http::Method, String)>>,
    /// The fault plan in force (see [`SimCluster::set_faults`]).
    faults: Mutex<faults::Injector>,
    /// Successful writes per client and kill budgets (see [`SimCluster::kill_after_writes`]).
    /// Held across the handling of each write, so that counting it and cutting its client
    /// off happen together.
    book: Mutex<faults::WriteBook>,
    /// Whether the server answers, watched by pending requests and open watch streams.
    net: tokio::sync::watch::Sender<faults::NetState>,
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
        let tag = image
            .rsplit_once(':')
            .filter(|(_, t)| !t.contains('/'))
            .map_or("", |(_, t)| t);
        if tag.contains("crashloop") || tag.contains("fail") {
            ImageBehavior::CrashLoop
        } else {
            ImageBehavior::Ready {
                after: self.config.default_ready_delay,
            }
        }
    }

    /// Takes an injected conflict for this request, if one is armed (see
    /// [`SimCluster::conflict_once`]).
    pub(crate) fn take_conflict(&self, method: &::http::Method, path: &str) -> bool {
        let mut armed = self.conflicts.lock().unwrap_or_else(|p| p.into_inner());
        match armed.iter().position(|(m, p)| m == method && p == path) {
            Some(i) => {
                armed.remove(i);
                true
            }
            None => false,
        }
    }

    /// Whether the request's `User-Agent` is cut off (see [`SimCluster::set_partitioned`]).
    pub(crate) fn is_partitioned(&self, headers: &::http::HeaderMap) -> bool {
        let set = self.partitioned.lock().unwrap_or_else(|p| p.into_inner());
        !set.is_empty()
            && headers
                .get(::http::header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|ua| set.contains(ua))
    }

    /// A fresh pod IP.
    pub(crate) fn next_pod_ip(&self) -> String {
        let n = self.pod_ips.fetch_add(1, Ordering::Relaxed);
        format!("10.244.{}.{}", (n / 250) % 250, n % 250 + 2)
    }

    /// The fault plan in force and its random source.
    pub(crate) fn injector(&self) -> MutexGuard<'_, faults::Injector> {
        self.faults.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Successful writes per client and kill budgets.
    pub(crate) fn book(&self) -> MutexGuard<'_, faults::WriteBook> {
        self.book.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether `agent` was cut off by [`SimCluster::kill_after_writes`].
    pub(crate) fn is_killed(&self, agent: &str) -> bool {
        self.book().killed.contains(agent)
    }

    /// Cuts `agent` off as [`SimCluster::set_partitioned`] does and tells its open watches to
    /// end. The caller holds the write book (`book`), which marked it killed.
    pub(crate) fn cut_off_killed(&self, agent: &str) {
        self.partitioned
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(agent.to_string());
        self.net.send_modify(|n| n.epoch += 1);
    }
}

/// A simulated Kubernetes cluster. Cheap to clone (shared state).
#[derive(Clone)]
pub struct SimCluster {
    inner: Arc<Inner>,
}

impl SimCluster {
    /// Starts a cluster with the configured namespaces. Must run inside a tokio runtime.
    pub fn new(config: SimConfig) -> Self {
        let (tx, _) = broadcast::channel(65_536);
        let clock = Clock::new(config.base_time.unwrap_or_else(Timestamp::now));
        let mut store = Store::new(config.watch_history, tx);
        store.max_pods = config.max_pods;
        let inner = Arc::new(Inner {
            store: Mutex::new(store),
            clock,
            config,
            images: Mutex::new(HashMap::new()),
            rechecks: Mutex::new(HashMap::new()),
            bursts: Mutex::new(HashMap::new()),
            queued: Mutex::default(),
            pod_ips: AtomicU64::new(0),
            partitioned: Mutex::default(),
            conflicts: Mutex::default(),
            faults: Mutex::default(),
            book: Mutex::default(),
            net: tokio::sync::watch::Sender::new(faults::NetState::default()),
        });
        {
            let mut st = inner.lock();
            let now = inner.clock.stamp();
            let ctx = WriteCtx::internal(&now);
            if let Some(rt) = st.registry.get("", "v1", "namespaces").cloned() {
                for ns in &inner.config.namespaces {
                    let obj = serde_json::json!({"metadata": {"name": ns}});
                    if let Err(e) = write::create(&mut st, &rt, "", obj, &ctx) {
                        tracing::warn!(namespace = %ns, error = %e, "cannot create namespace");
                    }
                }
            }
        }
        Self { inner }
    }

    /// A kube client talking to this cluster in-process (default namespace `default`).
    pub fn client(&self) -> kube::Client {
        kube::Client::new(http::service(self.inner.clone()), "default")
    }

    /// A client like [`SimCluster::client`] whose requests carry `User-Agent: identity`, so
    /// the audit log tells its writes apart (one per controller instance, say).
    pub fn client_as(&self, identity: &str) -> kube::Client {
        let agent = ::http::HeaderValue::from_str(identity)
            .unwrap_or_else(|_| ::http::HeaderValue::from_static("invalid-identity"));
        let service = tower::ServiceBuilder::new()
            .map_request(move |mut req: ::http::Request<kube::client::Body>| {
                req.headers_mut()
                    .insert(::http::header::USER_AGENT, agent.clone());
                req
            })
            .service(http::service(self.inner.clone()));
        kube::Client::new(service, "default")
    }

    /// Answers one request in process and synchronously, as the in-process client's service
    /// does (partitions and injected conflicts included), with the part of the response body
    /// that is ready at once: all of it, except for a watch, whose events so far are returned
    /// and whose stream is then dropped. Must run inside a tokio runtime (writes start the
    /// simulated kubelet and ReplicaSet controller).
    pub fn respond(
        &self,
        request: ::http::Request<bytes::Bytes>,
    ) -> ::http::Response<bytes::Bytes> {
        use futures::FutureExt;
        use http_body_util::BodyExt;
        let (parts, body) = request.into_parts();
        if self.inner.is_partitioned(&parts.headers) {
            let e = ApiError::unavailable("connection refused (partitioned)");
            let mut response = ::http::Response::new(bytes::Bytes::from(
                serde_json::to_vec(&e.to_status()).unwrap_or_default(),
            ));
            *response.status_mut() = ::http::StatusCode::from_u16(e.code)
                .unwrap_or(::http::StatusCode::SERVICE_UNAVAILABLE);
            return response;
        }
        let (parts, mut body) = http::handle(&self.inner, &parts, &body).into_parts();
        let mut ready = Vec::new();
        while let Some(Some(Ok(frame))) = body.frame().now_or_never() {
            if let Ok(data) = frame.into_data() {
                ready.extend_from_slice(&data);
            }
        }
        ::http::Response::from_parts(parts, bytes::Bytes::from(ready))
    }

    /// Answers the next `method` request to `path` (for example `PUT` to
    /// `/apis/rollgate.dev/v1alpha1/namespaces/ns/rollouts/web/status`) with 409 Conflict without
    /// handling it, as a real API server does when the object changed since the client read it.
    pub fn conflict_once(&self, method: ::http::Method, path: &str) {
        self.inner
            .conflicts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((method, path.to_string()));
    }

    /// Injected conflicts not answered yet.
    pub fn armed_conflicts(&self) -> usize {
        self.inner
            .conflicts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }

    /// Cuts the clients of `identity` (see [`SimCluster::client_as`]) off from the server, or
    /// reconnects them: while cut off, every request they send fails with 503 and is neither
    /// handled nor audited, as in a network partition. Watches already open keep streaming.
    /// (See also [`SimCluster::conflict_once`].)
    pub fn set_partitioned(&self, identity: &str, partitioned: bool) {
        let mut set = self
            .inner
            .partitioned
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if partitioned {
            set.insert(identity.to_string());
        } else {
            set.remove(identity);
            drop(set);
            self.inner.book().killed.remove(identity);
        }
    }

    /// Puts a fault plan in force (replacing any other), with its random source seeded afresh
    /// from `plan.seed` and the [`SimCluster::fault_counts`] reset. Faults hit the requests of
    /// clients, in-process and over HTTP, never the cluster's own ReplicaSet controller and
    /// kubelet; requests that address no resource (discovery, `/version`) are not faulted.
    /// See [`faults`] for how rules are drawn.
    pub fn set_faults(&self, plan: FaultPlan) -> Result<(), FaultPlanError> {
        plan.validate()?;
        self.inner.injector().set(plan);
        Ok(())
    }

    /// Stops injecting faults (the counts stay readable).
    pub fn clear_faults(&self) {
        self.inner.injector().clear();
    }

    /// How many of each fault were injected since the last [`SimCluster::set_faults`].
    pub fn fault_counts(&self) -> FaultCounts {
        self.inner.injector().counts()
    }

    /// Stops the server answering, or lets it answer again. While it is unresponsive, every
    /// request (from any client) waits without an answer, and every open watch stream
    /// delivers nothing (its events wait). When it answers again, the requests still waiting
    /// are handled and answered normally, and the watch streams deliver what they held back,
    /// as a server that was stalled (not restarted) does. A client that gave up meanwhile
    /// (dropped its request) had nothing handled. The cluster itself (ReplicaSets, pods)
    /// keeps running.
    pub fn set_unresponsive(&self, unresponsive: bool) {
        self.inner
            .net
            .send_modify(|n| n.unresponsive = unresponsive);
    }

    /// Lets the clients of `identity` (see [`SimCluster::client_as`]) land `k` more
    /// successful writes (mutating requests answered below 400, counted as handled even when
    /// the answer is then lost): right after the k-th, under the same lock, they are cut off
    /// as by [`SimCluster::set_partitioned`], and their open watch streams end. Writes from
    /// that identity are handled one at a time, so no (k+1)-th can slip in. It models a
    /// controller process killed right after its k-th write; `k = 0` cuts it off now.
    /// `set_partitioned(identity, false)` lets it back in (a restarted process).
    pub fn kill_after_writes(&self, identity: &str, k: u64) {
        let mut book = self.inner.book();
        if k == 0 {
            book.kill_at.remove(identity);
            book.killed.insert(identity.to_string());
            self.inner.cut_off_killed(identity);
            return;
        }
        let done = book.writes.get(identity).copied().unwrap_or(0);
        book.kill_at
            .insert(identity.to_string(), done.saturating_add(k));
    }

    /// Successful (code below 400) mutating requests handled from `identity` since the
    /// cluster started (lost answers included).
    pub fn writes_by(&self, identity: &str) -> u64 {
        self.inner.book().writes.get(identity).copied().unwrap_or(0)
    }

    /// Serves the API over plain HTTP/1.1 on `addr` (port 0 picks a free port). Returns the
    /// bound address and the server task (abort it to stop serving).
    pub async fn serve(
        &self,
        addr: SocketAddr,
    ) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
        http::serve(self.inner.clone(), addr).await
    }

    /// The cluster's current time (virtual under a paused tokio clock).
    pub fn now(&self) -> Timestamp {
        self.inner.clock.now()
    }

    /// Serves a CustomResourceDefinition's resources without storing the definition (creating
    /// it through the API does both).
    pub fn register_crd(&self, crd: &CustomResourceDefinition) {
        if let Ok(v) = serde_json::to_value(crd) {
            self.inner.lock().registry.register_crd(&v);
        }
    }

    /// Sets (`Some`) or lifts (`None`) a pod quota on `namespace`, as a ResourceQuota with
    /// `pods: limit` would: creating a pod there while it holds `limit` pods or more is refused
    /// with 403 Forbidden (`exceeded quota`), and so are the pods its ReplicaSets create, which
    /// then carry a `ReplicaFailure` condition (reason `FailedCreate`) until their pods can be
    /// created again (they retry every second). Pods already there stay.
    pub fn set_pod_quota(&self, namespace: &str, limit: Option<usize>) {
        let mut st = self.inner.lock();
        match limit {
            Some(limit) => st.pod_quotas.insert(namespace.to_string(), limit),
            None => st.pod_quotas.remove(namespace),
        };
    }

    /// Sets how pods running `image` behave (for pods started from now on).
    pub fn set_image_behavior(&self, image: &str, behavior: ImageBehavior) {
        self.inner
            .images
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(image.to_string(), behavior);
    }

    /// Reads an object as JSON (`api_version` like `v1` or `apps/v1`; `namespace` `None` for
    /// cluster-scoped types).
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
        let ns = if rt.namespaced {
            namespace.unwrap_or_default()
        } else {
            ""
        };
        st.get(&type_key(rt), ns, name).map(|o| from_storage(rt, o))
    }

    /// Lists objects as JSON, in (namespace, name) order (`namespace` `None`: all).
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
        let ns = if rt.namespaced { namespace } else { None };
        st.list(&type_key(rt), ns)
            .into_iter()
            .map(|o| from_storage(rt, o))
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
