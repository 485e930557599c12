//! Runs a scenario: the simulated cluster, the real controller measuring through the
//! scenario's metric source, the timeline applied second by second in virtual time, and a
//! line for every decision the controller makes.

use std::collections::BTreeMap;
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
use crate::pipeline::{PipelineOutcome, PipelineWatch};
use crate::source::ScenarioMetrics;
use crate::ticker::Ticker;

/// How long the rollout must stay Healthy or Degraded, unchanged (two minutes), after the timeline is done
/// for the scenario to end before its `duration`.
const SETTLE: Duration = Duration::from_secs(120);

/// The wall-clock time at which every scenario starts: Monday 2026-01-05 09:00 UTC.
pub const START: k8s_openapi::jiff::Timestamp =
    k8s_openapi::jiff::Timestamp::constant(1_767_603_600, 0);

/// What came out of a scenario (about its Rollout, [`crate::Scenario::rollout`]).
#[derive(Debug, Clone, PartialEq, Default)]
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
    /// The same for every Rollout of the scenario, by `namespace/name` (empty in these).
    pub rollouts: BTreeMap<String, Outcome>,
    /// The promotion pipeline, when the scenario has one.
    pub pipeline: Option<PipelineOutcome>,
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
    let mut watched = vec![Watched::new(ns.clone(), name.clone())];
    for (ons, oname) in scenario.rollouts().map_err(ScenarioError::Run)? {
        if (&ons, &oname) != (&ns, &name) {
            watched.push(Watched::new(ons, oname));
        }
    }
    let ready_after = scenario.ready_after.map_or(Duration::from_secs(5), |d| d.0);
    let mut config = SimConfig {
        default_ready_delay: ready_after,
        // A fixed wall clock: times in messages, soaks and promotion windows come out the
        // same on every run.
        base_time: Some(START),
        ..Default::default()
    };
    for n in scenario.namespaces() {
        if !config.namespaces.contains(&n) {
            config.namespaces.push(n);
        }
    }
    let mut stack = Stack::new(config).await?;
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
    let pipeline = scenario
        .pipelines()
        .first()
        .map(|(pns, pname, _)| PipelineWatch::new(pns.clone(), pname.clone()));
    let mut run = Run {
        stack: &stack,
        source: &source,
        alerts: &alerts,
        ns,
        name,
        start: Instant::now(),
        out,
        watched,
        measured: Default::default(),
        run_phases: Default::default(),
        pipeline,
    };
    let result = run.drive(scenario).await;
    stack.stop_controllers().await;
    result
}

/// One Rollout followed through the run.
struct Watched {
    ns: String,
    name: String,
    last: Option<Snapshot>,
    feed: EventFeed,
    outcome: Outcome,
    /// (time, stable revision) whenever the stable revision changed.
    stable_changes: Vec<(Duration, Option<i64>)>,
    /// The newest revision and the highest step index seen for it.
    release: Option<(i64, i32)>,
}

impl Watched {
    fn new(ns: String, name: String) -> Self {
        Self {
            ns,
            name,
            last: None,
            feed: EventFeed::default(),
            outcome: Outcome::default(),
            stable_changes: Vec::new(),
            release: None,
        }
    }

    fn key(&self) -> String {
        format!("{}/{}", self.ns, self.name)
    }
}

struct Run<'a> {
    stack: &'a Stack,
    source: &'a ScenarioMetrics,
    alerts: &'a ScenarioAlerts,
    /// The scenario's Rollout (`watched[0]`).
    ns: String,
    name: String,
    start: Instant,
    out: &'a mut dyn FnMut(String),
    /// Every Rollout of the scenario, its own first.
    watched: Vec<Watched>,
    /// Per (namespace, run, metric): measurements already printed; per run: its phase printed.
    measured: BTreeMap<(String, String, String), i32>,
    run_phases: BTreeMap<(String, String), String>,
    /// The promotion pipeline, if any.
    pipeline: Option<PipelineWatch>,
}

impl Run<'_> {
    fn now(&self) -> Dur {
        Dur(self.start.elapsed())
    }

    fn say(&mut self, line: String) {
        let now = self.now();
        (self.out)(format!("  {now}  {line}"));
    }

    /// Several Rollouts: lines about one name it.
    fn multi(&self) -> bool {
        self.watched.len() > 1
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
                self.act(entry, scenario).await?;
                // What happens next is the controller's answer: settle from here.
                unchanged_since = self.start.elapsed();
            }
            let changed = self.observe().await?;
            let elapsed = self.start.elapsed();
            if changed {
                unchanged_since = elapsed;
            }
            let at_rest = self
                .watched
                .iter()
                .all(|w| matches!(w.outcome.phase.as_str(), "Healthy" | "Degraded"))
                && self
                    .pipeline
                    .as_ref()
                    .is_none_or(|p| !p.busy(self.stack.sim.now()));
            let settled = at_rest && elapsed.saturating_sub(unchanged_since) >= SETTLE;
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
        let stalled = ticker.forced();
        self.finish(stalled);
        Ok(self.outcome())
    }

    /// The outcome: the scenario's Rollout's, with every Rollout's and the pipeline's.
    fn outcome(&self) -> Outcome {
        let mut o = self.watched[0].outcome.clone();
        if self.multi() || self.pipeline.is_some() {
            o.rollouts = self
                .watched
                .iter()
                .map(|w| (w.key(), w.outcome.clone()))
                .collect();
        }
        o.pipeline = self.pipeline.as_ref().map(|p| p.outcome.clone());
        o
    }

    /// Carries out one timeline entry.
    async fn act(
        &mut self,
        entry: &TimelineEntry,
        scenario: &Scenario,
    ) -> Result<(), ScenarioError> {
        let namespace = scenario.namespace.as_str();
        let client = self.stack.client.clone();
        let now = self.stack.sim.now();
        let ctl = |ns: String, name: String, cmd: Ctl| {
            let client = client.clone();
            async move {
                rollgate_ctl::run(&client, &ns, &name, &cmd, now)
                    .await
                    .unwrap_or_else(|e| format!("refused: {e}"))
            }
        };
        let (ns, name) = (self.ns.clone(), self.name.clone());
        let line = if let Some(set) = &entry.set_image {
            let target_ns = set.namespace.clone().unwrap_or_else(|| {
                if set.rollout.is_some() {
                    namespace.to_string()
                } else {
                    ns.clone()
                }
            });
            let target = set.rollout.clone().unwrap_or_else(|| name.clone());
            let cmd = Ctl::SetImage {
                images: vec![ContainerImage {
                    container: set.container.clone(),
                    image: set.image.clone(),
                }],
            };
            let said = ctl(target_ns.clone(), target.clone(), cmd).await;
            let who = if self.multi() {
                format!("-n {target_ns} {target}")
            } else {
                target
            };
            format!(
                "$ rollgate set image {who} {}={}: {said}",
                set.container, set.image
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
            let said = ctl(ns, name.clone(), cmd).await;
            format!("$ rollgate {word} {name}: {said}")
        } else if let Some(a) = &entry.abort {
            let target_ns = a.namespace.clone().unwrap_or_else(|| namespace.to_string());
            let said = ctl(target_ns.clone(), a.rollout.clone(), Ctl::Abort).await;
            format!("$ rollgate abort -n {target_ns} {}: {said}", a.rollout)
        } else if let Some(a) = &entry.approve {
            let (pns, pname) = scenario
                .pipeline(a.pipeline.as_deref())
                .map_err(ScenarioError::Run)?;
            crate::pipeline::approve(self.stack, &pns, &pname, a).await?
        } else if let Some(p) = &entry.pipeline {
            let (pns, pname) = scenario
                .pipeline(p.name.as_deref())
                .map_err(ScenarioError::Run)?;
            crate::pipeline::set_paused(self.stack, &pns, &pname, p.paused).await?
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
        let Some(hash) = self.hash_of(&self.ns, &self.name, revision) else {
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

    /// A rollout's ReplicaSets as (hash, revision).
    fn revisions(&self, ns: &str, name: &str) -> Vec<(String, i64)> {
        self.stack
            .sim
            .list_objects("apps/v1", "replicasets", Some(ns))
            .into_iter()
            .filter(|rs| rs["metadata"]["labels"][ROLLOUT_NAME] == name)
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

    fn hash_of(&self, ns: &str, name: &str, revision: i64) -> Option<String> {
        self.revisions(ns, name)
            .into_iter()
            .find(|(_, r)| *r == revision)
            .map(|(h, _)| h)
    }

    /// Reads every rollout and the pipeline, prints what changed; whether anything did.
    async fn observe(&mut self) -> Result<bool, ScenarioError> {
        let mut changed = self.measurements().await?;
        for i in 0..self.watched.len() {
            changed |= self.observe_rollout(i).await?;
        }
        if let Some(mut p) = self.pipeline.take() {
            let lines = p.observe(self.stack).await;
            self.pipeline = Some(p);
            let lines = lines?;
            changed |= !lines.is_empty();
            for line in lines {
                self.say(line);
            }
        }
        Ok(changed)
    }

    /// Reads rollout `watched[i]`, prints what changed; whether anything did.
    async fn observe_rollout(&mut self, i: usize) -> Result<bool, ScenarioError> {
        let (ns, name) = (self.watched[i].ns.clone(), self.watched[i].name.clone());
        let who = if self.multi() {
            format!("{ns}/{name} ")
        } else {
            String::new()
        };
        let rollout: Rollout = self.stack.rollout(&ns, &name).await?;
        let snap = Snapshot::take(&self.stack.client, &ns, &name).await?;
        let mut changed = false;
        let events = self.watched[i]
            .feed
            .next(&self.stack.client, &ns, &name)
            .await?;
        for e in events {
            let mark = if e.type_ == "Warning" { "!" } else { " " };
            self.say(format!("{mark} {who}event {:<22} {}", e.reason, e.note));
            // An abort the controller undid within the second (a fast rollback) is only
            // seen in its Event.
            let o = &mut self.watched[i].outcome;
            if e.reason == rollgate_api::EventReason::RolloutAborted.as_str()
                && o.first_abort.is_none()
            {
                o.first_abort = Some(self.start.elapsed());
            }
            o.events.push(e.reason);
            changed = true;
        }
        let status = rollout.status.clone().unwrap_or_default();
        let current = status.observed_generation == rollout.metadata.generation;
        if current && snap.phase != "-" && self.watched[i].last.as_ref() != Some(&snap) {
            self.say(format!("  {who}{snap}"));
            if self.watched[i].last.as_ref().map(|l| &l.message) != Some(&snap.message)
                && !snap.message.is_empty()
            {
                self.say(format!("    {who}message: {}", snap.message));
            }
            self.watched[i].last = Some(snap.clone());
            changed = true;
        }
        let elapsed = self.start.elapsed();
        let revisions = self.revisions(&ns, &name);
        let w = &mut self.watched[i];
        if status.abort == Some(true) && w.outcome.first_abort.is_none() {
            w.outcome.first_abort = Some(elapsed);
        }
        let revision_of = |hash: &Option<String>| {
            hash.as_ref()
                .and_then(|h| revisions.iter().find(|(rh, _)| rh == h))
                .map(|(_, r)| *r)
        };
        let stable = revision_of(&status.stable_rs);
        if w.stable_changes.last().map(|(_, r)| *r) != Some(stable) {
            w.stable_changes.push((elapsed, stable));
        }
        let latest = revisions.iter().map(|(_, r)| *r).max();
        if let (Some(latest), Some(step)) = (latest, status.current_step_index) {
            let current_is_latest = revision_of(&status.current_pod_hash) == Some(latest);
            match w.release {
                Some((rev, max)) if rev == latest => {
                    w.release = Some((
                        rev,
                        if current_is_latest {
                            max.max(step)
                        } else {
                            max
                        },
                    ));
                }
                _ if current_is_latest => w.release = Some((latest, step)),
                _ => {}
            }
        }
        if current {
            w.outcome.phase = snap.phase.clone();
            w.outcome.message = snap.message.clone();
        }
        w.outcome.stable_revision = stable;
        w.outcome.latest_revision = latest;
        w.outcome.steps = rollout.spec.strategy.canary.as_ref().map(|c| c.steps.len());
        Ok(changed)
    }

    /// Prints each new measurement of the AnalysisRuns in the rollouts' namespaces (their
    /// own and pipeline verifications) and each run that ends.
    async fn measurements(&mut self) -> Result<bool, ScenarioError> {
        let namespaces: std::collections::BTreeSet<String> =
            self.watched.iter().map(|w| w.ns.clone()).collect();
        let mut lines = Vec::new();
        for ns in namespaces {
            let mut params = ListParams::default();
            if !self.multi() && self.pipeline.is_none() {
                params = params.labels(&format!("{ROLLOUT_NAME}={}", self.name));
            }
            let runs = Api::<AnalysisRun>::namespaced(self.stack.client.clone(), &ns)
                .list(&params)
                .await
                .map_err(|e| ScenarioError::Run(format!("listing AnalysisRuns in {ns}: {e}")))?;
            let prefix = if self.multi() {
                format!("{ns}/")
            } else {
                String::new()
            };
            for run in runs.items {
                let run_name = run.name_any();
                let Some(status) = run.status else { continue };
                for m in &status.metric_results {
                    let key = (ns.clone(), run_name.clone(), m.name.clone());
                    let seen = self.measured.get(&key).copied().unwrap_or(0);
                    if m.count > seen {
                        self.measured.insert(key, m.count);
                        if let Some(last) = m.measurements.last() {
                            let phase = last.phase.map(|p| p.to_string()).unwrap_or_default();
                            let what = match (&last.value, &last.message) {
                                (Some(v), _) => format!("= {v}"),
                                (None, Some(msg)) => format!(": {msg}"),
                                // A kayenta metric before its horizon: samples taken so far.
                                (None, None) => match (
                                    last.metadata.get("samples"),
                                    last.metadata.get("horizon"),
                                ) {
                                    (Some(n), Some(h)) => format!(": samples {n}/{h}"),
                                    _ => ": no value".into(),
                                },
                            };
                            lines.push(format!(
                                "  measure {} {what} -> {phase}   ({prefix}{run_name})",
                                m.name
                            ));
                        }
                    }
                }
                if let Some(phase) = status.phase.filter(|p| p.is_completed()) {
                    let phase = phase.to_string();
                    let key = (ns.clone(), run_name.clone());
                    if self.run_phases.get(&key) != Some(&phase) {
                        self.run_phases.insert(key, phase.clone());
                        let why = status.message.map(|m| format!(": {m}")).unwrap_or_default();
                        lines.push(format!("  analysis {prefix}{run_name} {phase}{why}"));
                    }
                }
            }
        }
        let changed = !lines.is_empty();
        for line in lines {
            self.say(line);
        }
        Ok(changed)
    }

    fn finish(&mut self, stalled: u32) {
        let ended_at = self.start.elapsed();
        for w in &mut self.watched {
            let o = &mut w.outcome;
            o.ended_at = ended_at;
            o.stalled_seconds = stalled;
            o.steps_reached = w
                .release
                .filter(|(rev, _)| Some(*rev) == o.latest_revision)
                .map(|(_, step)| step);
            o.promoted_at = match (o.stable_revision, o.latest_revision) {
                (Some(s), Some(l)) if s == l => w
                    .stable_changes
                    .iter()
                    .rev()
                    .take_while(|(_, r)| *r == Some(s))
                    .last()
                    .map(|(t, _)| *t),
                _ => None,
            };
        }
        let end = Dur(ended_at);
        let summary = |o: &Outcome| {
            format!(
                "{} (stable revision {}, newest {}){}",
                o.phase,
                o.stable_revision.map_or("-".into(), |r| r.to_string()),
                o.latest_revision.map_or("-".into(), |r| r.to_string()),
                o.first_abort
                    .map(|t| format!(", aborted at {}", Dur(t)))
                    .unwrap_or_default()
            )
        };
        let mut line = format!("end at {end}: {}", summary(&self.watched[0].outcome));
        if self.multi() {
            let all: Vec<String> = self
                .watched
                .iter()
                .map(|w| format!("{}: {}", w.key(), summary(&w.outcome)))
                .collect();
            line = format!("end at {end}: {}", all.join("; "));
        }
        if let Some(p) = &self.pipeline {
            line.push_str(&format!("; pipeline {}", p.summary()));
        }
        (self.out)(line);
    }
}
