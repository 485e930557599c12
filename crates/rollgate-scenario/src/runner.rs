//! Runs a scenario: the simulated cluster, the real controller measuring through the
//! scenario's metric source, the timeline applied second by second in virtual time, and a
//! line for every decision the controller makes.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, ListParams};
use kube::{Api, ResourceExt};
use rollgate_api::labels::{POD_TEMPLATE_HASH, REVISION, ROLLOUT_NAME};
use rollgate_api::{AnalysisRun, Rollout};
use rollgate_ctl::{Command as Ctl, ContainerImage};
use rollgate_local::Stack;
use rollgate_local::snapshot::{EventFeed, Snapshot};
use rollgate_sim::{ImageBehavior as SimImage, SimConfig};
use tokio::time::Instant;

use crate::ScenarioError;
use crate::alerts::ScenarioAlerts;
use crate::file::{Availability, Command, Dur, Scenario, TimelineEntry};
use crate::source::ScenarioMetrics;
use crate::ticker::Ticker;

/// How long the rollout must stay Healthy or Degraded, unchanged (two minutes), after the timeline is done
/// for the scenario to end before its `duration`.
const SETTLE: Duration = Duration::from_secs(120);

/// What came out of a scenario.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Outcome {
    /// Virtual time at the end.
    pub ended_at: Duration,
    /// Final phase (`-` when the rollout never got a status).
    pub phase: String,
    /// Final status message.
    pub message: String,
    /// Revision of the stable ReplicaSet at the end.
    pub stable_revision: Option<i64>,
    /// The newest revision at the end.
    pub latest_revision: Option<i64>,
    /// When a release was first seen aborted.
    pub first_abort: Option<Duration>,
    /// When the newest revision became stable (if it did).
    pub promoted_at: Option<Duration>,
    /// Highest canary step index of the newest revision's release.
    pub steps_reached: Option<i32>,
    /// Number of canary steps.
    pub steps: Option<usize>,
    /// Reasons of the Events recorded on the Rollout, in order.
    pub events: Vec<String>,
    /// Virtual seconds the clock had to be moved on by force because the controller never
    /// went idle (a controller bug; see [`crate::ticker`]): the run stops at the first.
    pub stalled_seconds: u32,
}

/// Runs `scenario` on a fresh current-thread runtime with tokio's clock paused (virtual
/// time), calling `out` with each line of the timeline.
pub fn run_blocking(
    scenario: &Scenario,
    out: &mut dyn FnMut(String),
) -> Result<Outcome, ScenarioError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .map_err(|e| ScenarioError::Run(format!("starting the tokio runtime: {e}")))?;
    runtime.block_on(run(scenario, out))
}

/// Runs `scenario`; expects tokio's clock to be paused (virtual time).
pub async fn run(
    scenario: &Scenario,
    out: &mut dyn FnMut(String),
) -> Result<Outcome, ScenarioError> {
    let (ns, name) = scenario.rollout().map_err(ScenarioError::Run)?;
    let ready_after = scenario.ready_after.map_or(Duration::from_secs(5), |d| d.0);
    let mut stack = Stack::new(SimConfig {
        default_ready_delay: ready_after,
        ..Default::default()
    })
    .await?;
    for (image, b) in &scenario.images {
        let behavior = if b.crash_loop {
            SimImage::CrashLoop
        } else {
            SimImage::Ready {
                after: b.ready_after.map_or(ready_after, |d| d.0),
            }
        };
        stack.sim.set_image_behavior(image, behavior);
    }
    let source = Arc::new(ScenarioMetrics::new(
        stack.sim.clone(),
        scenario.metrics.clone(),
    ));
    let alerts = Arc::new(ScenarioAlerts::new(stack.sim.clone()));
    stack.start_controller_with_sources(
        "rollgate-scenario",
        Some(source.clone()),
        Some(alerts.clone()),
        None,
    );
    let mut run = Run {
        stack: &stack,
        source: &source,
        alerts: &alerts,
        ns,
        name,
        start: Instant::now(),
        out,
        last: None,
        feed: EventFeed::default(),
        outcome: Outcome::default(),
        stable_changes: Vec::new(),
        release: None,
        measured: Default::default(),
        run_phases: Default::default(),
    };
    let result = run.drive(scenario).await;
    stack.stop_controllers().await;
    result
}

struct Run<'a> {
    stack: &'a Stack,
    source: &'a ScenarioMetrics,
    alerts: &'a ScenarioAlerts,
    ns: String,
    name: String,
    start: Instant,
    out: &'a mut dyn FnMut(String),
    last: Option<Snapshot>,
    feed: EventFeed,
    outcome: Outcome,
    /// (time, stable revision) whenever the stable revision changed.
    stable_changes: Vec<(Duration, Option<i64>)>,
    /// The newest revision and the highest step index seen for it.
    release: Option<(i64, i32)>,
    /// Per (run, metric): measurements already printed; per run: its phase printed.
    measured: std::collections::BTreeMap<(String, String), i32>,
    run_phases: std::collections::BTreeMap<String, String>,
}

impl Run<'_> {
    fn now(&self) -> Dur {
        Dur(self.start.elapsed())
    }

    fn say(&mut self, line: String) {
        let now = self.now();
        (self.out)(format!("  {now}  {line}"));
    }

    async fn drive(&mut self, scenario: &Scenario) -> Result<Outcome, ScenarioError> {
        let stream = scenario
            .objects
            .iter()
            .map(serde_json::Value::to_string)
            .collect::<Vec<_>>()
            .join("\n---\n");
        let applied = self.stack.apply_yaml(&stream, &scenario.namespace).await?;
        self.say(format!("apply {}", applied.join(", ")));
        let mut pending: Vec<&TimelineEntry> = scenario.timeline.iter().collect();
        pending.sort_by_key(|e| e.at);
        let mut pending = pending.into_iter().peekable();
        let limit = scenario.max_duration();
        let mut unchanged_since = Duration::ZERO;
        let mut ticker = Ticker::start();
        loop {
            while let Some(entry) = pending.next_if(|e| e.at.0 <= self.start.elapsed()) {
                self.act(entry, &scenario.namespace).await?;
                // What happens next is the controller's answer: settle from here.
                unchanged_since = self.start.elapsed();
            }
            let changed = self.observe().await?;
            let elapsed = self.start.elapsed();
            if changed {
                unchanged_since = elapsed;
            }
            let settled = matches!(self.outcome.phase.as_str(), "Healthy" | "Degraded")
                && elapsed.saturating_sub(unchanged_since) >= SETTLE;
            if (pending.peek().is_none() && settled) || elapsed >= limit {
                break;
            }
            if ticker.sleep(Duration::from_secs(1)).await {
                // Every further second would take as long in real time: the run ends here
                // and fails (see `expect::check`).
                self.say(format!(
                    "stopped: virtual time stood still for {}s of real time (the controller \
                     never went idle)",
                    crate::ticker::STALL.as_secs()
                ));
                break;
            }
        }
        self.outcome.stalled_seconds = ticker.forced();
        self.finish();
        Ok(self.outcome.clone())
    }

    /// Carries out one timeline entry.
    async fn act(&mut self, entry: &TimelineEntry, namespace: &str) -> Result<(), ScenarioError> {
        let client = self.stack.client.clone();
        let now = self.stack.sim.now();
        let (ns, name) = (self.ns.clone(), self.name.clone());
        let ctl = |cmd: Ctl| {
            let (client, ns, name) = (client.clone(), ns.clone(), name.clone());
            async move {
                rollgate_ctl::run(&client, &ns, &name, &cmd, now)
                    .await
                    .unwrap_or_else(|e| format!("refused: {e}"))
            }
        };
        let line = if let Some(set) = &entry.set_image {
            let cmd = Ctl::SetImage {
                images: vec![ContainerImage {
                    container: set.container.clone(),
                    image: set.image.clone(),
                }],
            };
            let said = ctl(cmd).await;
            format!(
                "$ rollgate set image {} {}={}: {said}",
                self.name, set.container, set.image
            )
        } else if let Some(c) = entry.command {
            let (word, cmd) = match c {
                Command::Promote => ("promote", Ctl::Promote { full: false }),
                Command::PromoteFull => ("promote --full", Ctl::Promote { full: true }),
                Command::Abort => ("abort", Ctl::Abort),
                Command::Retry => ("retry", Ctl::Retry),
                Command::Pause => ("pause", Ctl::Pause),
                Command::Resume => ("resume", Ctl::Resume),
                Command::Undo => ("undo", Ctl::Undo { to_revision: None }),
                Command::Restart => ("restart", Ctl::Restart),
            };
            let said = ctl(cmd).await;
            format!("$ rollgate {word} {}: {said}", self.name)
        } else if let Some(obj) = &entry.apply {
            let applied = self.stack.apply_yaml(&obj.to_string(), namespace).await?;
            format!("apply {}", applied.join(", "))
        } else if let Some(a) = entry.prometheus {
            self.source.set_down(a == Availability::Down);
            match a {
                Availability::Down => "Prometheus goes down (queries are refused)".to_string(),
                Availability::Up => "Prometheus is back".to_string(),
            }
        } else if let Some(a) = &entry.alert {
            self.alerts.apply(a);
            let labels: Vec<String> = a.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            match (a.resolved, a.revision) {
                (true, _) => format!("alert {} resolves", a.name),
                (false, Some(r)) => format!(
                    "alert {} fires on revision {r} {{{}}}",
                    a.name,
                    labels.join(", ")
                ),
                (false, None) => {
                    format!(
                        "alert {} fires (service-level) {{{}}}",
                        a.name,
                        labels.join(", ")
                    )
                }
            }
        } else if let Some(d) = entry.delete_pods {
            let deleted = self.delete_pods(d.revision, d.count).await?;
            format!(
                "pods of revision {} deleted: {}",
                d.revision,
                deleted.join(", ")
            )
        } else {
            return Ok(());
        };
        self.say(line);
        Ok(())
    }

    async fn delete_pods(&self, revision: i64, count: usize) -> Result<Vec<String>, ScenarioError> {
        let Some(hash) = self.hash_of(revision) else {
            return Ok(Vec::new());
        };
        let pods = Api::<Pod>::namespaced(self.stack.client.clone(), &self.ns);
        let list = pods
            .list(&ListParams::default().labels(&format!("{POD_TEMPLATE_HASH}={hash}")))
            .await
            .map_err(|e| ScenarioError::Run(format!("listing pods of revision {revision}: {e}")))?;
        let mut deleted = Vec::new();
        for pod in list.items.iter().take(count) {
            let name = pod.name_any();
            pods.delete(&name, &DeleteParams::default())
                .await
                .map_err(|e| ScenarioError::Run(format!("deleting pod {name}: {e}")))?;
            deleted.push(name);
        }
        Ok(deleted)
    }

    /// The rollout's ReplicaSets as (hash, revision).
    fn revisions(&self) -> Vec<(String, i64)> {
        self.stack
            .sim
            .list_objects("apps/v1", "replicasets", Some(&self.ns))
            .into_iter()
            .filter(|rs| rs["metadata"]["labels"][ROLLOUT_NAME] == self.name.as_str())
            .filter_map(|rs| {
                let hash = rs["metadata"]["labels"][POD_TEMPLATE_HASH].as_str()?;
                let rev = rs["metadata"]["annotations"][REVISION]
                    .as_str()?
                    .parse()
                    .ok()?;
                Some((hash.to_string(), rev))
            })
            .collect()
    }

    fn hash_of(&self, revision: i64) -> Option<String> {
        self.revisions()
            .into_iter()
            .find(|(_, r)| *r == revision)
            .map(|(h, _)| h)
    }

    /// Reads the rollout, prints what changed; whether anything did.
    async fn observe(&mut self) -> Result<bool, ScenarioError> {
        let rollout: Rollout = self.stack.rollout(&self.ns, &self.name).await?;
        let snap = Snapshot::take(&self.stack.client, &self.ns, &self.name).await?;
        let mut changed = self.measurements().await?;
        for e in self
            .feed
            .next(&self.stack.client, &self.ns, &self.name)
            .await?
        {
            let mark = if e.type_ == "Warning" { "!" } else { " " };
            self.say(format!("{mark} event {:<22} {}", e.reason, e.note));
            self.outcome.events.push(e.reason);
            changed = true;
        }
        let status = rollout.status.clone().unwrap_or_default();
        let current = status.observed_generation == rollout.metadata.generation;
        if current && snap.phase != "-" && self.last.as_ref() != Some(&snap) {
            self.say(format!("  {snap}"));
            if self.last.as_ref().map(|l| &l.message) != Some(&snap.message)
                && !snap.message.is_empty()
            {
                self.say(format!("    message: {}", snap.message));
            }
            self.last = Some(snap.clone());
            changed = true;
        }
        let elapsed = self.start.elapsed();
        if status.abort == Some(true) && self.outcome.first_abort.is_none() {
            self.outcome.first_abort = Some(elapsed);
        }
        let revisions = self.revisions();
        let revision_of = |hash: &Option<String>| {
            hash.as_ref()
                .and_then(|h| revisions.iter().find(|(rh, _)| rh == h))
                .map(|(_, r)| *r)
        };
        let stable = revision_of(&status.stable_rs);
        if self.stable_changes.last().map(|(_, r)| *r) != Some(stable) {
            self.stable_changes.push((elapsed, stable));
        }
        let latest = revisions.iter().map(|(_, r)| *r).max();
        if let (Some(latest), Some(step)) = (latest, status.current_step_index) {
            let current_is_latest = revision_of(&status.current_pod_hash) == Some(latest);
            match self.release {
                Some((rev, max)) if rev == latest => {
                    self.release = Some((
                        rev,
                        if current_is_latest {
                            max.max(step)
                        } else {
                            max
                        },
                    ));
                }
                _ if current_is_latest => self.release = Some((latest, step)),
                _ => {}
            }
        }
        if current {
            self.outcome.phase = snap.phase.clone();
            self.outcome.message = snap.message.clone();
        }
        self.outcome.stable_revision = stable;
        self.outcome.latest_revision = latest;
        self.outcome.steps = rollout.spec.strategy.canary.as_ref().map(|c| c.steps.len());
        Ok(changed)
    }

    /// Prints each new measurement of the rollout's AnalysisRuns and each run that ends.
    async fn measurements(&mut self) -> Result<bool, ScenarioError> {
        let runs = Api::<AnalysisRun>::namespaced(self.stack.client.clone(), &self.ns)
            .list(&ListParams::default().labels(&format!("{ROLLOUT_NAME}={}", self.name)))
            .await
            .map_err(|e| ScenarioError::Run(format!("listing AnalysisRuns: {e}")))?;
        let mut lines = Vec::new();
        for run in runs.items {
            let run_name = run.name_any();
            let Some(status) = run.status else { continue };
            for m in &status.metric_results {
                let key = (run_name.clone(), m.name.clone());
                let seen = self.measured.get(&key).copied().unwrap_or(0);
                if m.count > seen {
                    self.measured.insert(key, m.count);
                    if let Some(last) = m.measurements.last() {
                        let phase = last.phase.map(|p| p.to_string()).unwrap_or_default();
                        let what = match (&last.value, &last.message) {
                            (Some(v), _) => format!("= {v}"),
                            (None, Some(msg)) => format!(": {msg}"),
                            (None, None) => ": no value".into(),
                        };
                        lines.push(format!(
                            "  measure {} {what} -> {phase}   ({run_name})",
                            m.name
                        ));
                    }
                }
            }
            if let Some(phase) = status.phase.filter(|p| p.is_completed()) {
                let phase = phase.to_string();
                if self.run_phases.get(&run_name) != Some(&phase) {
                    self.run_phases.insert(run_name.clone(), phase.clone());
                    let why = status.message.map(|m| format!(": {m}")).unwrap_or_default();
                    lines.push(format!("  analysis {run_name} {phase}{why}"));
                }
            }
        }
        let changed = !lines.is_empty();
        for line in lines {
            self.say(line);
        }
        Ok(changed)
    }

    fn finish(&mut self) {
        let o = &mut self.outcome;
        o.ended_at = self.start.elapsed();
        o.steps_reached = self
            .release
            .filter(|(rev, _)| Some(*rev) == o.latest_revision)
            .map(|(_, step)| step);
        o.promoted_at = match (o.stable_revision, o.latest_revision) {
            (Some(s), Some(l)) if s == l => self
                .stable_changes
                .iter()
                .rev()
                .take_while(|(_, r)| *r == Some(s))
                .last()
                .map(|(t, _)| *t),
            _ => None,
        };
        let end = Dur(o.ended_at);
        let summary = format!(
            "end at {end}: {} (stable revision {}, newest {}){}",
            o.phase,
            o.stable_revision.map_or("-".into(), |r| r.to_string()),
            o.latest_revision.map_or("-".into(), |r| r.to_string()),
            o.first_abort
                .map(|t| format!(", aborted at {}", Dur(t)))
                .unwrap_or_default()
        );
        (self.out)(summary);
    }
}
