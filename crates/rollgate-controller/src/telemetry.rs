//! The controller's own metrics (prometheus-client) and its HTTP endpoints: `/metrics`,
//! `/healthz` (the process serves) and `/readyz` (its controllers run).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use rollgate_api::{AbortReason, EventReason, RolloutStatus};
use rollgate_engine::{Action, Decision};

use crate::watch_health::{WatchHealth, Watches};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabels {
    phase: String,
    strategy: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RoleLabels {
    role: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RunPhaseLabels {
    phase: String,
}

/// Buckets of the analysis decision time: 1 s to about 4.5 hours.
fn decision_time_histogram() -> Histogram {
    Histogram::new(exponential_buckets(1.0, 2.0, 15))
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MeasurementLabels {
    metric: String,
    phase: String,
}

/// The controller's metrics. Cheap to share (`Arc`).
pub struct Telemetry {
    registry: Registry,
    rollouts: Family<PhaseLabels, Gauge>,
    phases: Mutex<BTreeMap<String, PhaseLabels>>,
    reconcile_seconds: Histogram,
    decision_seconds: Histogram,
    reconcile_errors: Family<KindLabels, Counter>,
    switches: Family<RoleLabels, Counter>,
    aborts: Family<ReasonLabels, Counter>,
    measurements: Family<MeasurementLabels, Counter>,
    time_to_decision: Family<RunPhaseLabels, Histogram, fn() -> Histogram>,
    leader: Gauge,
    ready: AtomicBool,
    /// The watches of the running controllers (ready only once they all listed).
    watches: Arc<Watches>,
    /// Reconciles (of Rollouts and AnalysisRuns) running now.
    in_flight: AtomicUsize,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry").finish_non_exhaustive()
    }
}

impl Default for Telemetry {
    fn default() -> Self {
        Self::new()
    }
}

impl Telemetry {
    /// A fresh registry with every rollgate metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("rollgate");
        let rollouts = Family::<PhaseLabels, Gauge>::default();
        registry.register(
            "rollouts",
            "Rollouts by phase and strategy",
            rollouts.clone(),
        );
        let reconcile_seconds = Histogram::new(exponential_buckets(0.0005, 2.0, 16));
        registry.register(
            "reconcile_duration_seconds",
            "Time of one rollout reconcile (reads, decision, writes)",
            reconcile_seconds.clone(),
        );
        let decision_seconds = Histogram::new(exponential_buckets(0.000_005, 2.0, 16));
        registry.register(
            "decision_duration_seconds",
            "Time the engine takes to decide one reconcile",
            decision_seconds.clone(),
        );
        let reconcile_errors = Family::<KindLabels, Counter>::default();
        registry.register(
            "reconcile_errors",
            "Failed reconciles by kind of error",
            reconcile_errors.clone(),
        );
        let switches = Family::<RoleLabels, Counter>::default();
        registry.register(
            "service_switches",
            "Service selector switches by role",
            switches.clone(),
        );
        let aborts = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "aborts",
            "Releases aborted (rolled back) by reason",
            aborts.clone(),
        );
        let measurements = Family::<MeasurementLabels, Counter>::default();
        registry.register(
            "analysis_measurements",
            "Analysis measurements by metric and phase",
            measurements.clone(),
        );
        let time_to_decision: Family<RunPhaseLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(decision_time_histogram);
        registry.register(
            "analysis_time_to_decision_seconds",
            "Time from the start of an AnalysisRun to its final phase, by that phase",
            time_to_decision.clone(),
        );
        let leader = Gauge::default();
        registry.register(
            "leader",
            "1 while this instance holds the leader Lease and reconciles (leader election)",
            leader.clone(),
        );
        Self {
            registry,
            rollouts,
            phases: Mutex::new(BTreeMap::new()),
            reconcile_seconds,
            decision_seconds,
            reconcile_errors,
            switches,
            aborts,
            measurements,
            time_to_decision,
            leader,
            ready: AtomicBool::new(false),
            watches: Arc::default(),
            in_flight: AtomicUsize::new(0),
        }
    }

    /// Records one reconcile of rollout `key` (`ns/name`): its decision and durations.
    pub fn reconciled(&self, key: &str, decision: &Decision, took: Duration, decided_in: Duration) {
        self.reconcile_seconds.observe(took.as_secs_f64());
        self.decision_seconds.observe(decided_in.as_secs_f64());
        for action in &decision.actions {
            if let Action::SwitchService { role, .. } = action {
                self.switches
                    .get_or_create(&RoleLabels {
                        role: role.as_str().to_string(),
                    })
                    .inc();
            }
        }
        // One `RolloutAborted` Event per abort; its reason is data in the status.
        for event in &decision.events {
            if event.reason == EventReason::RolloutAborted {
                let reason = decision
                    .status
                    .abort_reason
                    .map_or("Other", AbortReason::as_str);
                self.aborts
                    .get_or_create(&ReasonLabels {
                        reason: reason.to_string(),
                    })
                    .inc();
            }
        }
        self.set_phase(key, Some(&decision.status));
    }

    /// Records that an AnalysisRun reached its final `phase` `after` its start.
    pub fn analysis_decided(&self, phase: &str, after: Duration) {
        self.time_to_decision
            .get_or_create(&RunPhaseLabels {
                phase: phase.to_string(),
            })
            .observe(after.as_secs_f64());
    }

    /// Forgets a rollout that is gone.
    pub fn forget(&self, key: &str) {
        self.set_phase(key, None);
    }

    fn set_phase(&self, key: &str, status: Option<&RolloutStatus>) {
        let Ok(mut phases) = self.phases.lock() else {
            return;
        };
        match status {
            Some(s) => {
                phases.insert(
                    key.to_string(),
                    PhaseLabels {
                        phase: s.phase.map_or_else(|| "Unknown".into(), |p| p.to_string()),
                        strategy: s.strategy.clone().unwrap_or_else(|| "Unknown".into()),
                    },
                );
            }
            None => {
                phases.remove(key);
            }
        }
        let mut counts: BTreeMap<(String, String), i64> = BTreeMap::new();
        for l in phases.values() {
            *counts
                .entry((l.phase.clone(), l.strategy.clone()))
                .or_default() += 1;
        }
        // Zero the combinations seen before, then set the current counts.
        self.rollouts.clear();
        for ((phase, strategy), n) in counts {
            self.rollouts
                .get_or_create(&PhaseLabels { phase, strategy })
                .set(n);
        }
    }

    /// Records a failed reconcile.
    pub fn failed(&self, kind: &str) {
        self.reconcile_errors
            .get_or_create(&KindLabels {
                kind: kind.to_string(),
            })
            .inc();
    }

    /// Records one analysis measurement.
    pub fn measured(&self, metric: &str, phase: &str) {
        self.measurements
            .get_or_create(&MeasurementLabels {
                metric: metric.to_string(),
                phase: phase.to_string(),
            })
            .inc();
    }

    /// Sets whether this instance leads (and reconciles).
    pub fn set_leader(&self, leader: bool) {
        self.leader.set(i64::from(leader));
    }

    /// Whether this instance leads.
    pub fn is_leader(&self) -> bool {
        self.leader.get() == 1
    }

    /// Marks the controller ready (its controllers run, or it waits as a candidate for the
    /// leader Lease). `/readyz` also waits for the watches registered with
    /// [`Telemetry::watch`].
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    /// Counts a reconcile as running until the returned guard is dropped.
    pub fn reconcile_running(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight(self.clone())
    }

    /// Reconciles running now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// Registers a watch of a running controller: `/readyz` is not ready until it listed its
    /// objects, nor while it keeps failing, until the returned handle is dropped.
    pub fn watch(&self, name: &'static str) -> WatchHealth {
        self.watches.register(name)
    }

    /// Registered watches that have not listed their objects yet or keep failing.
    pub fn unready_watches(&self) -> Vec<&'static str> {
        self.watches.unready()
    }

    /// Whether `/readyz` answers 200: marked ready, and every registered watch listed its
    /// objects and is not failing.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed) && self.watches.unready().is_empty()
    }

    /// The metrics in the Prometheus text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

/// The HTTP endpoints.
pub fn router(telemetry: Arc<Telemetry>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(telemetry)
}

async fn metrics(State(t): State<Arc<Telemetry>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        t.encode(),
    )
}

async fn readyz(State(t): State<Arc<Telemetry>>) -> impl IntoResponse {
    if !t.ready.load(Ordering::Relaxed) {
        return (StatusCode::SERVICE_UNAVAILABLE, "starting".to_string());
    }
    let unready = t.unready_watches();
    if unready.is_empty() {
        (StatusCode::OK, "ready".to_string())
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("watches not listed yet or failing: {}", unready.join(", ")),
        )
    }
}

/// Serves the endpoints on `addr` until the task is dropped; returns the bound address.
pub async fn serve(
    addr: SocketAddr,
    telemetry: Arc<Telemetry>,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let app = router(telemetry);
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((bound, task))
}

/// A running reconcile (see [`Telemetry::reconcile_running`]).
pub struct InFlight(Arc<Telemetry>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// After a stop was asked of `controller`: waits until it ends, or until no reconcile is
/// running any more (reconciles not started yet are left to the next controller), or `until`.
/// True when it ended or went idle, false at `until`.
pub async fn drain<F: std::future::Future + Unpin>(
    controller: &mut F,
    telemetry: &Telemetry,
    until: tokio::time::Instant,
) -> bool {
    let idle = async {
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if telemetry.in_flight() == 0 {
                return;
            }
        }
    };
    tokio::select! {
        _ = controller => true,
        () = idle => true,
        () = tokio::time::sleep_until(until) => false,
    }
}
