//! Faults lose nothing. The real controller drives a blue/green release, a canary with an
//! analysis that aborts a bad revision, and a pipeline promotion on the simulated cluster
//! (virtual time):
//! - under injected faults (conflicts, throttling, server errors, latency, cut watches, 410
//!   Gone, lost responses, and the server not answering for a while), and
//! - with the controller killed right after each of its API writes (and the analysis
//!   controller in the middle of each measurement), a new one taking over;
//!
//! checking every virtual second that production traffic only reaches ready pods and route
//! weights sum to 100, and that every run ends in the same state as the run without faults.
//!
//! `ROLLGATE_CHAOS_SEEDS=N` runs the fault tests with N seeds (default 8); `ROLLGATE_KILL_EVERY=1`
//! makes the kill tests try every write (the default tries every write too; set a larger
//! stride to shorten a local run).

mod harness;
mod scripts;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rollgate_controller::metrics_source::{BoxFuture, MetricSource, QueryFor};
use rollgate_local::Stack;
use rollgate_local::simulated_metrics::SimulatedMetrics;
use rollgate_prometheus::{QueryResult, Request};
use rollgate_sim::SimConfig;
use rollgate_sim::faults::{Fault, FaultPlan, FaultRule, Verb};

use crate::harness::{Final, Invariants, spawn_controller};
use crate::scripts::Script;

type R = anyhow::Result<()>;

/// The controller's identity in every run (the fault rules only hit its requests, not the
/// test's own reads and writes, which play the user).
const CONTROLLER: &str = "rollgate-controller";

async fn stack() -> anyhow::Result<Stack> {
    Ok(Stack::new(SimConfig {
        default_ready_delay: Duration::from_secs(2),
        ..Default::default()
    })
    .await?)
}

/// How a run ended.
struct Outcome {
    state: Final,
    violations: Vec<String>,
    samples: u64,
    /// Writes the first controller made.
    writes: u64,
    /// Measurements the first controller asked for.
    queries: usize,
    /// Faults injected.
    faults: rollgate_sim::faults::FaultCounts,
    /// Virtual time the script took.
    took: Duration,
}

/// Counts queries and, at the `hang_at`-th, cuts its controller off and never answers: a
/// process killed in the middle of a measurement.
struct Killable {
    inner: Arc<SimulatedMetrics>,
    queries: AtomicUsize,
    hang_at: Option<usize>,
    killed: Arc<tokio::sync::Notify>,
    sim: rollgate_sim::SimCluster,
}

impl MetricSource for Killable {
    fn query<'a>(
        &'a self,
        about: QueryFor<'a>,
        request: &'a Request,
    ) -> BoxFuture<'a, Result<QueryResult, String>> {
        let n = self.queries.fetch_add(1, Ordering::SeqCst) + 1;
        if self.hang_at == Some(n) {
            self.sim.set_partitioned(CONTROLLER, true);
            self.killed.notify_one();
            return Box::pin(std::future::pending());
        }
        self.inner.query(about, request)
    }
}

/// How the first controller of a run dies, if it does.
#[derive(Debug, Clone, Copy)]
enum Kill {
    Never,
    /// Right after its k-th successful write.
    AfterWrite(u64),
    /// In the middle of its m-th measurement.
    InQuery(usize),
}

/// Runs `script` once: under `faults` (with a 20 s outage of the whole server, starting 5 to
/// 40 s in depending on the seed) when given, and with the first controller killed as `kill`
/// says (a second one then starts). Fault runs drive every release of the script; kill runs
/// drive one release, the kill armed once the first revision is up.
async fn run(script: Script, faults: Option<FaultPlan>, kill: Kill) -> anyhow::Result<Outcome> {
    let stack = stack().await?;
    let sim = stack.sim.clone();
    let values = script.metrics();
    let killed = Arc::new(tokio::sync::Notify::new());
    let first = Arc::new(Killable {
        inner: values.clone(),
        queries: AtomicUsize::new(0),
        hang_at: match kill {
            Kill::InQuery(m) => Some(m),
            _ => None,
        },
        killed: killed.clone(),
        sim: sim.clone(),
    });
    let outage = faults
        .as_ref()
        .map(|p| Duration::from_secs(5 + p.seed % 36));
    if let Some(plan) = faults {
        sim.set_faults(plan)?;
    }
    let invariants = Invariants::start(&sim, script.watched());
    let controller = spawn_controller(&sim, CONTROLLER, Some(first.clone()));
    let chaos = outage.map(|at| {
        let sim = sim.clone();
        tokio::spawn(async move {
            tokio::time::sleep(at).await;
            sim.set_unresponsive(true);
            tokio::time::sleep(Duration::from_secs(20)).await;
            sim.set_unresponsive(false);
        })
    });
    let started = tokio::time::Instant::now();
    let prepared = script.prepare(&stack).await;
    // The writes of the release (the kill counts from here).
    let before = sim.writes_by(CONTROLLER);
    let single = matches!(kill, Kill::AfterWrite(_));
    if let Kill::AfterWrite(k) = kill {
        sim.kill_after_writes(CONTROLLER, k);
    }
    let supervisor = {
        let sim = sim.clone();
        let killed = killed.clone();
        let values: Arc<dyn MetricSource> = values.clone();
        tokio::spawn(async move {
            match kill {
                Kill::Never => {
                    let _ = controller.await;
                    return;
                }
                Kill::AfterWrite(k) => {
                    while sim.writes_by(CONTROLLER) < before.saturating_add(k) {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
                Kill::InQuery(_) => killed.notified().await,
            }
            controller.abort();
            let _ = controller.await;
            // A new process, a moment later, under another name (a new pod).
            tokio::time::sleep(Duration::from_secs(1)).await;
            let _ = spawn_controller(&sim, "rollgate-controller-2", Some(values)).await;
        })
    };
    let result = async {
        prepared?;
        script.release(&stack).await?;
        if !single {
            script.more(&stack).await?;
        }
        script.settle().await;
        anyhow::Ok(())
    }
    .await;
    let took = started.elapsed();
    supervisor.abort();
    if let Some(c) = chaos {
        c.abort();
    }
    sim.clear_faults();
    sim.set_unresponsive(false);
    result?;
    Ok(Outcome {
        state: Final::read(&sim),
        violations: invariants.violations(),
        samples: invariants.samples(),
        writes: sim.writes_by(CONTROLLER) - before,
        queries: first.queries.load(Ordering::SeqCst),
        faults: sim.fault_counts(),
        took,
    })
}

/// About one request in ten fails or is slowed, of every kind a real cluster produces.
fn chaos(seed: u64) -> FaultPlan {
    let writes = [Verb::Create, Verb::Update, Verb::Patch, Verb::Delete];
    let rule = |fault, rate| FaultRule::new(fault, rate).agents([CONTROLLER]);
    FaultPlan::new(seed)
        .rule(rule(Fault::Conflict, 0.02).verbs(writes))
        .rule(rule(
            Fault::TooManyRequests {
                retry_after: Duration::from_secs(1),
            },
            0.02,
        ))
        .rule(rule(Fault::InternalError, 0.02))
        .rule(rule(Fault::Unavailable, 0.02))
        .rule(rule(Fault::LostResponse, 0.02).verbs(writes))
        .rule(rule(Fault::Latency(Duration::from_millis(500)), 0.05))
        .rule(
            rule(
                Fault::CutWatch {
                    after: Duration::from_secs(15),
                },
                0.1,
            )
            .verbs([Verb::Watch]),
        )
        .rule(rule(Fault::GoneOnResume, 0.1).verbs([Verb::Watch]))
}

/// Seeds of the fault runs: `ROLLGATE_CHAOS_SEEDS` of them (default 8; each run takes well
/// under a second).
fn seeds() -> Vec<u64> {
    let n = std::env::var("ROLLGATE_CHAOS_SEEDS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(8);
    (1..=n.max(1)).collect()
}

/// The script converges under faults to the fault-free final state, never breaking the
/// traffic invariants.
async fn converges_under_faults(script: Script) -> R {
    let clean = run(script, None, Kill::Never).await?;
    assert!(clean.violations.is_empty(), "{:#?}", clean.violations);
    assert!(clean.samples > 60, "sampled {} times", clean.samples);
    eprintln!(
        "{script:?} without faults: {} writes, {} queries, {:?} virtual",
        clean.writes, clean.queries, clean.took
    );
    let mut all = rollgate_sim::faults::FaultCounts::default();
    for seed in seeds() {
        let faulty = run(script, Some(chaos(seed)), Kill::Never).await?;
        eprintln!(
            "{script:?} seed {seed}: {} writes, {:?} virtual, faults {:?}",
            faulty.writes, faulty.took, faulty.faults
        );
        assert!(
            faulty.violations.is_empty(),
            "seed {seed}: {:#?}",
            faulty.violations
        );
        let diff = clean.state.diff(&faulty.state);
        assert!(
            diff.is_empty(),
            "seed {seed}: final states differ: {diff:#?}"
        );
        let f = faulty.faults;
        all.conflict += f.conflict;
        all.too_many_requests += f.too_many_requests;
        all.internal_error += f.internal_error;
        all.unavailable += f.unavailable;
        all.latency += f.latency;
        all.cut_watch += f.cut_watch;
        all.gone_on_resume += f.gone_on_resume;
        all.lost_response += f.lost_response;
    }
    // Every kind of fault really happened (the plan is not a no-op).
    for fault in [
        Fault::Conflict,
        Fault::TooManyRequests {
            retry_after: Duration::ZERO,
        },
        Fault::InternalError,
        Fault::Unavailable,
        Fault::Latency(Duration::ZERO),
        Fault::CutWatch {
            after: Duration::ZERO,
        },
        Fault::GoneOnResume,
        Fault::LostResponse,
    ] {
        assert!(all.of(&fault) > 0, "{fault:?} never injected: {all:?}");
    }
    Ok(())
}

/// For every k, the controller killed right after its k-th write and a new one started: the
/// invariants hold and the final state is the fault-free one.
async fn survives_a_kill_after_every_write(script: Script) -> R {
    // The same release without a kill (armed past its last write).
    let clean = run(script, None, Kill::AfterWrite(u64::MAX)).await?;
    assert!(clean.writes > 10, "{} writes", clean.writes);
    let stride = std::env::var("ROLLGATE_KILL_EVERY")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    eprintln!("{script:?}: {} writes in the release", clean.writes);
    for k in (1..=clean.writes).step_by(stride) {
        let killed = run(script, None, Kill::AfterWrite(k)).await?;
        assert_eq!(
            killed.writes, k,
            "the first controller died after write {k}"
        );
        assert!(
            killed.violations.is_empty(),
            "killed after write {k}: {:#?}",
            killed.violations
        );
        let diff = clean.state.diff(&killed.state);
        assert!(
            diff.is_empty(),
            "killed after write {k}: final states differ: {diff:#?}"
        );
    }
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn blue_green_converges_under_faults() -> R {
    converges_under_faults(Script::BlueGreen).await
}

#[tokio::test(start_paused = true)]
async fn canary_with_analysis_and_abort_converges_under_faults() -> R {
    converges_under_faults(Script::Canary).await
}

#[tokio::test(start_paused = true)]
async fn pipeline_promotion_converges_under_faults() -> R {
    converges_under_faults(Script::Pipeline).await
}

#[tokio::test(start_paused = true)]
async fn blue_green_survives_a_kill_after_every_write() -> R {
    survives_a_kill_after_every_write(Script::BlueGreen).await
}

#[tokio::test(start_paused = true)]
async fn canary_survives_a_kill_after_every_write() -> R {
    survives_a_kill_after_every_write(Script::Canary).await
}

#[tokio::test(start_paused = true)]
async fn pipeline_survives_a_kill_after_every_write() -> R {
    survives_a_kill_after_every_write(Script::Pipeline).await
}

#[tokio::test(start_paused = true)]
async fn analysis_survives_a_kill_in_the_middle_of_every_measurement() -> R {
    let clean = run(Script::Canary, None, Kill::Never).await?;
    assert!(clean.queries >= 3, "{} queries", clean.queries);
    eprintln!("Canary: {} queries", clean.queries);
    for m in 1..=clean.queries {
        let killed = run(Script::Canary, None, Kill::InQuery(m)).await?;
        assert_eq!(killed.queries, m, "the first controller died in query {m}");
        assert!(
            killed.violations.is_empty(),
            "killed in query {m}: {:#?}",
            killed.violations
        );
        let diff = clean.state.diff(&killed.state);
        assert!(
            diff.is_empty(),
            "killed in query {m}: final states differ: {diff:#?}"
        );
    }
    Ok(())
}
