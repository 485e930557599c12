//! The scenario file: what it holds, how it is read and checked before anything runs.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::ScenarioError;

/// A scenario: the objects a user would apply, the metric values Prometheus would answer,
/// a timeline of things that happen, and what should come out of it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Scenario {
    /// Short name, printed in the report.
    pub name: String,
    /// What the scenario shows, in a sentence or two.
    #[serde(default)]
    pub description: String,
    /// Namespace of the objects that do not name one (default `default`).
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// Manifests applied at time 0, in order: exactly one Rollout, its Services,
    /// AnalysisTemplates, HTTPRoutes... With a PromotionPipeline, one Rollout per stage (each
    /// in the namespace its `metadata.namespace` names; every namespace used is created first).
    pub objects: Vec<Value>,
    /// How pods of an image behave (by image), when not ready after [`Scenario::ready_after`].
    #[serde(default)]
    pub images: BTreeMap<String, ImageBehavior>,
    /// How long a pod takes to become ready (default 5s).
    #[serde(default)]
    pub ready_after: Option<Dur>,
    /// What the metric source answers, by metric name (as in the AnalysisTemplates; for a
    /// `kayenta` metric, the names of the metrics it judges).
    #[serde(default)]
    pub metrics: BTreeMap<String, MetricValues>,
    /// Things that happen, by time since the start.
    #[serde(default)]
    pub timeline: Vec<TimelineEntry>,
    /// The longest the scenario runs (virtual time, default 30m). It ends earlier once the
    /// timeline is done and the rollout has been Healthy or Degraded, unchanged, for two minutes.
    #[serde(default)]
    pub duration: Option<Dur>,
    /// What must hold at the end; without it the scenario only reports.
    #[serde(default)]
    pub expect: Option<Expect>,
}

fn default_namespace() -> String {
    "default".into()
}

/// A duration written as `90s`, `5m`, `1h30m` (or a number of seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Dur(pub Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Secs(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Secs(s) => Ok(Dur(Duration::from_secs(s))),
            Raw::Text(t) => parse_duration(&t)
                .map(Dur)
                .map_err(serde::de::Error::custom),
        }
    }
}

/// Parses `90s`, `5m`, `1h30m` or a number of seconds ([`rollgate_api::duration::parse`]);
/// negative durations are refused.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    rollgate_api::duration::parse(text).map_err(|e| e.to_string())
}

impl fmt::Display for Dur {
    /// `mm:ss` (or `h:mm:ss` past an hour), as the timeline prints times.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0.as_secs();
        if s >= 3600 {
            write!(f, "{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
        } else {
            write!(f, "{:02}:{:02}", s / 60, s % 60)
        }
    }
}

/// How pods of one image behave.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImageBehavior {
    /// The container keeps crashing: never ready.
    #[serde(default)]
    pub crash_loop: bool,
    /// Ready this long after the pod starts.
    #[serde(default)]
    pub ready_after: Option<Dur>,
}

/// The values of one metric.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MetricValues {
    /// Values for revisions not listed in `revisions` (none: no data).
    #[serde(default)]
    pub default: Option<Series>,
    /// Values per revision number (`"2"`: the second revision of the Rollout).
    #[serde(default)]
    pub revisions: BTreeMap<String, Series>,
    /// Values per pipeline release number (`"3"`: `Release.spec.number` 3), for runs of the
    /// stage Rollout revision that runs the release's images and for its verification runs,
    /// in whichever stage (`revisions` win when both match).
    #[serde(default)]
    pub releases: BTreeMap<String, Series>,
    /// For a `sequential` metric: the requests per second all revisions of the rollout serve
    /// together, split between them by their ready pods. The series are then each revision's
    /// fraction of requests that are events (errors), and the metric source answers the
    /// counters (whole numbers) of events and requests that this traffic adds up to.
    #[serde(default)]
    pub requests_per_second: Option<f64>,
}

/// Values over time.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Series {
    /// The same value all the time.
    Constant(f64),
    /// `noData`: the query returns an empty result.
    Keyword(String),
    /// A value from each point's time on (no data before the first point; a point without
    /// `value` means no data from then on).
    Points(Vec<Point>),
    /// A baseline with noise and a regression.
    Generator(Generator),
}

/// One point of a stepwise series.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Point {
    /// From this time since the start of the scenario.
    pub at: Dur,
    /// The value (none: no data).
    #[serde(default)]
    pub value: Option<f64>,
}

/// A generated series: `baseline` plus uniform noise in `[-noise, +noise]` (never below 0),
/// and from `regression.at` on `regression.to` instead of the baseline.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Generator {
    /// The usual value.
    pub baseline: f64,
    /// Half-width of the noise around the value.
    #[serde(default)]
    pub noise: f64,
    /// A step change at some time.
    #[serde(default)]
    pub regression: Option<Regression>,
}

/// A step change of a generated series.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Regression {
    /// When it starts (since the start of the scenario).
    pub at: Dur,
    /// The value from then on (noise still applies).
    pub to: f64,
}

/// One thing that happens at a time. Exactly one of the action fields is set.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TimelineEntry {
    /// When (since the start of the scenario).
    pub at: Dur,
    /// A new image for a container: a new revision (`rollgate set image`).
    #[serde(default)]
    pub set_image: Option<SetImage>,
    /// A person decides on a pipeline's release for one stage (creates an `Approval`).
    #[serde(default)]
    pub approve: Option<ApproveEntry>,
    /// A person aborts the release in flight of a Rollout (`rollgate abort`).
    #[serde(default)]
    pub abort: Option<RolloutRef>,
    /// A change to a pipeline's spec (stop or restart the line).
    #[serde(default)]
    pub pipeline: Option<PipelineChange>,
    /// A manual command, as `rollgate COMMAND` would send it.
    #[serde(default)]
    pub command: Option<Command>,
    /// A manifest applied with server-side apply (a changed template, a new Rollout spec).
    #[serde(default)]
    pub apply: Option<Value>,
    /// Prometheus stops answering (`down`) or answers again (`up`).
    #[serde(default)]
    pub prometheus: Option<Availability>,
    /// Pods of a revision are deleted (their ReplicaSet makes new ones).
    #[serde(default)]
    pub delete_pods: Option<DeletePods>,
    /// An alert fires or resolves (the scenario's alert source stands in for Alertmanager).
    #[serde(default)]
    pub alert: Option<AlertEvent>,
}

/// An alert of a [`TimelineEntry`].
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AlertEvent {
    /// `alertname`.
    pub name: String,
    /// The revision whose pod-template hash the alert carries in the rollout's
    /// `spec.alerts.revisionLabel`; none: a service-level alert.
    #[serde(default)]
    pub revision: Option<i64>,
    /// Further labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// True: the alert named `name` resolves.
    #[serde(default)]
    pub resolved: bool,
}

/// The image change of a [`TimelineEntry`].
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SetImage {
    /// Container name.
    pub container: String,
    /// The new image.
    pub image: String,
    /// The Rollout (default: the scenario's Rollout; with a pipeline, its first stage's).
    #[serde(default)]
    pub rollout: Option<String>,
    /// Its namespace (default: the scenario's `namespace`).
    #[serde(default)]
    pub namespace: Option<String>,
}

/// An Approval of a [`TimelineEntry`]: its release is named by number, the runner looks the
/// Release up.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApproveEntry {
    /// The release's number in its pipeline (`Release.spec.number`).
    pub release: i64,
    /// The stage the decision is for.
    pub stage: String,
    /// `Approve`, `Reject` or `Promote`.
    pub decision: rollgate_api::pipeline::Decision,
    /// Who decides (default `alice`).
    #[serde(default)]
    pub approver: Option<String>,
    /// The pipeline (default: the scenario's only one).
    #[serde(default)]
    pub pipeline: Option<String>,
}

/// A Rollout named in a [`TimelineEntry`].
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RolloutRef {
    /// Rollout name.
    pub rollout: String,
    /// Its namespace (default: the scenario's `namespace`).
    #[serde(default)]
    pub namespace: Option<String>,
}

/// A change to a pipeline's spec.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PipelineChange {
    /// The pipeline (default: the scenario's only one).
    #[serde(default)]
    pub name: Option<String>,
    /// `spec.paused`: true stops the line, false starts it again.
    pub paused: bool,
}

/// Manual commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Command {
    /// `rollgate promote`.
    Promote,
    /// `rollgate promote --full`.
    PromoteFull,
    /// `rollgate abort`.
    Abort,
    /// `rollgate retry`.
    Retry,
    /// `rollgate pause`.
    Pause,
    /// `rollgate resume`.
    Resume,
    /// `rollgate undo`.
    Undo,
    /// `rollgate restart`.
    Restart,
}

/// Up or down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Availability {
    /// Answers queries.
    Up,
    /// Refuses connections.
    Down,
}

/// Pods to delete.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeletePods {
    /// The revision whose pods go.
    pub revision: i64,
    /// How many (default 1).
    #[serde(default = "one")]
    pub count: usize,
}

fn one() -> usize {
    1
}

/// What must hold when the scenario ends. Each field set is one check.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Expect {
    /// Final phase: Healthy, Progressing, Paused or Degraded.
    #[serde(default)]
    pub phase: Option<String>,
    /// Revision of the stable ReplicaSet at the end.
    #[serde(default)]
    pub stable_revision: Option<i64>,
    /// Whether any release was aborted (by analysis, deadline or a person).
    #[serde(default)]
    pub aborted: Option<bool>,
    /// An abort happened no later than this.
    #[serde(default)]
    pub aborted_by: Option<Dur>,
    /// The last revision became stable no later than this.
    #[serde(default)]
    pub promoted_by: Option<Dur>,
    /// Highest canary step index the last release reached (the number of steps once all
    /// are done).
    #[serde(default)]
    pub steps_reached: Option<i32>,
    /// The final status message contains this text.
    #[serde(default)]
    pub message_contains: Option<String>,
    /// Event reasons that must have been recorded on the Rollout.
    #[serde(default)]
    pub events: Vec<String>,
    /// The same checks for other Rollouts, by `namespace/name` (not nested further).
    #[serde(default)]
    pub rollouts: BTreeMap<String, Expect>,
    /// Checks of the promotion pipeline.
    #[serde(default)]
    pub pipeline: Option<PipelineExpect>,
}

/// What must hold for a promotion pipeline at the end. Releases are named by number
/// (`Release.spec.number`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PipelineExpect {
    /// The pipeline (default: the scenario's only one).
    #[serde(default)]
    pub name: Option<String>,
    /// By stage name.
    #[serde(default)]
    pub stages: BTreeMap<String, StageExpect>,
    /// By release number.
    #[serde(default)]
    pub releases: BTreeMap<String, ReleaseExpect>,
    /// Releases whose images never reached a stage's Rollout.
    #[serde(default)]
    pub never_promoted: Vec<ReleaseStage>,
    /// Event reasons that must have been recorded on the pipeline.
    #[serde(default)]
    pub events: Vec<String>,
}

/// What must hold for one stage of the pipeline.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StageExpect {
    /// The release the stage runs: the pipeline's status names it and the stage's Rollout
    /// carries its images.
    #[serde(default)]
    pub runs_release: Option<i64>,
    /// The stage's last good release.
    #[serde(default)]
    pub last_good: Option<i64>,
    /// Whether automatic promotion into the stage is held.
    #[serde(default)]
    pub held: Option<bool>,
    /// Whether the stage's cluster and Rollout could be read at the last look.
    #[serde(default)]
    pub reachable: Option<bool>,
}

/// What must hold for one release.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReleaseExpect {
    /// Its verdict.
    #[serde(default)]
    pub verdict: Option<rollgate_api::pipeline::Verdict>,
    /// The stage it failed in (it is Bad).
    #[serde(default)]
    pub failed_in: Option<String>,
    /// Its phase per stage.
    #[serde(default)]
    pub stages: BTreeMap<String, rollgate_api::pipeline::StagePhase>,
    /// Per stage, gates that must be among those closed.
    #[serde(default)]
    pub blocked: BTreeMap<String, Vec<rollgate_api::pipeline::GateKind>>,
    /// Per stage, text its stage message contains.
    #[serde(default)]
    pub message_contains: BTreeMap<String, String>,
}

/// A release and a stage.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReleaseStage {
    /// Release number.
    pub release: i64,
    /// Stage name.
    pub stage: String,
}

/// The phases a rollout can be in.
pub const PHASES: [&str; 4] = ["Healthy", "Progressing", "Paused", "Degraded"];

impl Scenario {
    /// Reads and checks a scenario file.
    pub fn load(path: &Path) -> Result<Self, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|e| ScenarioError::Read {
            path: path.display().to_string(),
            source: e,
        })?;
        Self::parse(&text).map_err(|message| ScenarioError::Invalid {
            path: path.display().to_string(),
            message,
        })
    }

    /// Parses and checks scenario text; the error names the field and what was expected.
    pub fn parse(text: &str) -> Result<Self, String> {
        let scenario: Scenario = serde_saphyr::from_str(text).map_err(|e| e.to_string())?;
        scenario.check()?;
        Ok(scenario)
    }

    /// The Rollout the scenario is about, with its namespace and name: the only Rollout among
    /// the objects, or, with a PromotionPipeline, its first stage's (where CI sets images).
    /// Top-level `expect` fields, `command`s, `deletePods` and `setImage` without a Rollout
    /// are about it.
    pub fn rollout(&self) -> Result<(String, String), String> {
        let rollouts = self.rollouts()?;
        if let [one] = rollouts.as_slice() {
            return Ok(one.clone());
        }
        if let Some((ns, _, pipeline)) = self.pipelines().into_iter().next() {
            let first = &pipeline["spec"]["stages"][0]["rollout"];
            let name = first["name"].as_str().ok_or(
                "objects: the PromotionPipeline's spec.stages[0].rollout.name: a string expected",
            )?;
            let ns = first["namespace"].as_str().unwrap_or(&ns).to_string();
            let found = (ns, name.to_string());
            return if rollouts.contains(&found) {
                Ok(found)
            } else {
                Err(format!(
                    "objects: the pipeline's first stage names Rollout {}/{}, which is not \
                     among the objects",
                    found.0, found.1
                ))
            };
        }
        Err(format!(
            "objects: exactly one Rollout expected (or a PromotionPipeline with one per stage), \
             found {}",
            rollouts.len()
        ))
    }

    /// Every Rollout among the objects, as (namespace, name), in order.
    pub fn rollouts(&self) -> Result<Vec<(String, String)>, String> {
        self.objects
            .iter()
            .enumerate()
            .filter(|(_, o)| o["kind"] == "Rollout")
            .map(|(i, o)| {
                let name = o["metadata"]["name"]
                    .as_str()
                    .ok_or(format!("objects[{i}].metadata.name: a string expected"))?;
                Ok((self.namespace_of(o), name.to_string()))
            })
            .collect()
    }

    /// The PromotionPipelines among the objects, as (namespace, name, manifest).
    pub fn pipelines(&self) -> Vec<(String, String, &Value)> {
        self.objects
            .iter()
            .filter(|o| o["kind"] == "PromotionPipeline")
            .filter_map(|o| {
                let name = o["metadata"]["name"].as_str()?;
                Some((self.namespace_of(o), name.to_string(), o))
            })
            .collect()
    }

    /// The namespace an object goes to: its own, else the scenario's.
    pub fn namespace_of(&self, object: &Value) -> String {
        object["metadata"]["namespace"]
            .as_str()
            .unwrap_or(&self.namespace)
            .to_string()
    }

    /// Every namespace the scenario uses (created before anything is applied): the
    /// scenario's, the objects' and applied manifests', and the pipeline stages'.
    pub fn namespaces(&self) -> std::collections::BTreeSet<String> {
        let mut out = std::collections::BTreeSet::from([self.namespace.clone()]);
        for o in self
            .objects
            .iter()
            .chain(self.timeline.iter().filter_map(|e| e.apply.as_ref()))
        {
            if let Some(ns) = o["metadata"]["namespace"].as_str() {
                out.insert(ns.to_string());
            }
        }
        for (ns, _, p) in self.pipelines() {
            for stage in p["spec"]["stages"].as_array().into_iter().flatten() {
                if stage["rollout"]["cluster"].is_null() {
                    let ns = stage["rollout"]["namespace"].as_str().unwrap_or(&ns);
                    out.insert(ns.to_string());
                }
            }
        }
        out
    }

    /// The pipeline `name` names, or the only one.
    pub fn pipeline(&self, name: Option<&str>) -> Result<(String, String), String> {
        let all = self.pipelines();
        let found: Vec<_> = all
            .iter()
            .filter(|(_, n, _)| name.is_none_or(|want| want == n))
            .collect();
        match (found.as_slice(), name) {
            ([(ns, n, _)], _) => Ok((ns.clone(), n.clone())),
            ([], Some(want)) => Err(format!("no PromotionPipeline {want} among the objects")),
            ([], None) => Err("no PromotionPipeline among the objects".into()),
            (_, _) => Err("several PromotionPipelines: name one".into()),
        }
    }

    /// Longest run time.
    pub fn max_duration(&self) -> Duration {
        self.duration.map_or(Duration::from_secs(30 * 60), |d| d.0)
    }

    fn check(&self) -> Result<(), String> {
        if self.name.trim().is_empty() {
            return Err("name: a non-empty name expected".into());
        }
        if let Some(expect) = &self.expect {
            self.check_expect(expect)?;
        }
        for (i, o) in self.objects.iter().enumerate() {
            for field in ["apiVersion", "kind"] {
                if !o[field].is_string() {
                    return Err(format!("objects[{i}].{field}: a string expected"));
                }
            }
            if !o["metadata"]["name"].is_string() {
                return Err(format!("objects[{i}].metadata.name: a string expected"));
            }
        }
        self.rollout()?;
        let template_metrics = self.template_metrics();
        for (metric, values) in &self.metrics {
            if !template_metrics.iter().any(|m| m == metric) {
                return Err(format!(
                    "metrics.{metric}: no AnalysisTemplate in objects has a metric named {metric} \
                     (templates have: {})",
                    template_metrics.join(", ")
                ));
            }
            if let Some(s) = &values.default {
                check_series(s, &format!("metrics.{metric}.default"))?;
            }
            if let Some(rps) = values.requests_per_second
                && !(rps.is_finite() && rps > 0.0)
            {
                return Err(format!(
                    "metrics.{metric}.requestsPerSecond: a number of requests per second > 0 \
                     expected, got {rps}"
                ));
            }
            for (rev, s) in &values.revisions {
                let field = format!("metrics.{metric}.revisions.{rev}");
                if !rev.parse::<i64>().is_ok_and(|r| r > 0) {
                    return Err(format!("{field}: a revision number (1, 2, ...) expected"));
                }
                check_series(s, &field)?;
            }
            for (rel, s) in &values.releases {
                let field = format!("metrics.{metric}.releases.{rel}");
                if !rel.parse::<i64>().is_ok_and(|r| r > 0) {
                    return Err(format!("{field}: a release number (1, 2, ...) expected"));
                }
                check_series(s, &field)?;
            }
        }
        for (i, e) in self.timeline.iter().enumerate() {
            let set = [
                e.set_image.is_some(),
                e.command.is_some(),
                e.apply.is_some(),
                e.prometheus.is_some(),
                e.delete_pods.is_some(),
                e.alert.is_some(),
                e.approve.is_some(),
                e.abort.is_some(),
                e.pipeline.is_some(),
            ]
            .iter()
            .filter(|s| **s)
            .count();
            if set != 1 {
                return Err(format!(
                    "timeline[{i}]: exactly one of setImage, command, apply, prometheus, \
                     deletePods, alert, approve, abort, pipeline expected, found {set}"
                ));
            }
            if let Some(a) = &e.approve {
                if a.release < 1 {
                    return Err(format!(
                        "timeline[{i}].approve.release: a release number (1, 2, ...) expected"
                    ));
                }
                self.pipeline(a.pipeline.as_deref())
                    .map_err(|m| format!("timeline[{i}].approve.pipeline: {m}"))?;
            }
            if let Some(p) = &e.pipeline {
                self.pipeline(p.name.as_deref())
                    .map_err(|m| format!("timeline[{i}].pipeline.name: {m}"))?;
            }
            if let Some(a) = &e.alert {
                if a.name.trim().is_empty() {
                    return Err(format!("timeline[{i}].alert.name: an alert name expected"));
                }
                if a.revision.is_some_and(|r| r < 1) {
                    return Err(format!(
                        "timeline[{i}].alert.revision: a revision number (1, 2, ...) expected"
                    ));
                }
            }
            if let Some(obj) = &e.apply
                && (!obj["kind"].is_string() || !obj["metadata"]["name"].is_string())
            {
                return Err(format!(
                    "timeline[{i}].apply: a manifest with kind and metadata.name expected"
                ));
            }
        }
        check_phase(
            self.expect.as_ref().and_then(|e| e.phase.as_deref()),
            "expect.phase",
        )
    }

    fn check_expect(&self, expect: &Expect) -> Result<(), String> {
        check_events(&expect.events, "expect.events")?;
        let rollouts = self.rollouts()?;
        for (key, e) in &expect.rollouts {
            let field = format!("expect.rollouts.{key}");
            let found = key
                .split_once('/')
                .is_some_and(|(ns, n)| rollouts.iter().any(|r| r.0 == ns && r.1 == n));
            if !found {
                let names: Vec<String> =
                    rollouts.iter().map(|(ns, n)| format!("{ns}/{n}")).collect();
                return Err(format!(
                    "{field}: a Rollout among the objects as namespace/name expected (have: {})",
                    names.join(", ")
                ));
            }
            if !e.rollouts.is_empty() || e.pipeline.is_some() {
                return Err(format!(
                    "{field}: rollouts and pipeline only at the top of expect"
                ));
            }
            check_events(&e.events, &format!("{field}.events"))?;
            check_phase(e.phase.as_deref(), &format!("{field}.phase"))?;
        }
        if let Some(p) = &expect.pipeline {
            self.pipeline(p.name.as_deref())
                .map_err(|m| format!("expect.pipeline.name: {m}"))?;
            check_events(&p.events, "expect.pipeline.events")?;
            for key in p.releases.keys() {
                if !key.parse::<i64>().is_ok_and(|r| r > 0) {
                    return Err(format!(
                        "expect.pipeline.releases.{key}: a release number (1, 2, ...) expected"
                    ));
                }
            }
        }
        Ok(())
    }

    /// Names of the metrics of every AnalysisTemplate/ClusterAnalysisTemplate in the file.
    fn template_metrics(&self) -> Vec<String> {
        let templates = self
            .objects
            .iter()
            .chain(self.timeline.iter().filter_map(|e| e.apply.as_ref()));
        templates
            .filter(|o| o["kind"] == "AnalysisTemplate" || o["kind"] == "ClusterAnalysisTemplate")
            .filter_map(|o| o["spec"]["metrics"].as_array())
            .flatten()
            .flat_map(|m| {
                // A kayenta metric's values are given per metric it judges.
                let judged = m["kayenta"]["metrics"].as_array().into_iter().flatten();
                std::iter::once(m).chain(judged)
            })
            .filter_map(|m| m["name"].as_str().map(String::from))
            .collect()
    }
}

fn check_phase(phase: Option<&str>, field: &str) -> Result<(), String> {
    match phase {
        Some(p) if !PHASES.contains(&p) => Err(format!(
            "{field}: one of {} expected, got {p:?}",
            PHASES.join(", ")
        )),
        _ => Ok(()),
    }
}

fn check_events(reasons: &[String], field: &str) -> Result<(), String> {
    for (i, reason) in reasons.iter().enumerate() {
        reason
            .parse::<rollgate_api::EventReason>()
            .map_err(|e| format!("{field}[{i}]: {e}"))?;
    }
    Ok(())
}

fn check_series(s: &Series, field: &str) -> Result<(), String> {
    let value_ok = |v: f64| v.is_finite();
    match s {
        Series::Constant(v) if !value_ok(*v) => Err(format!("{field}: a finite number expected")),
        Series::Keyword(k) if k != "noData" => Err(format!(
            "{field}: a number, `noData`, a list of {{at, value}} points or \
             {{baseline, noise, regression}} expected, got {k:?}"
        )),
        Series::Points(points) => {
            for (i, p) in points.iter().enumerate() {
                if p.value.is_some_and(|v| !value_ok(v)) {
                    return Err(format!("{field}[{i}].value: a finite number expected"));
                }
                if i > 0 && points[i - 1].at > p.at {
                    return Err(format!(
                        "{field}[{i}].at: points in time order expected ({} after {})",
                        p.at,
                        points[i - 1].at
                    ));
                }
            }
            Ok(())
        }
        Series::Generator(g) => {
            if !value_ok(g.baseline) || !value_ok(g.noise) || g.noise < 0.0 {
                return Err(format!(
                    "{field}: a finite baseline and a non-negative noise expected"
                ));
            }
            if g.regression.as_ref().is_some_and(|r| !value_ok(r.to)) {
                return Err(format!("{field}.regression.to: a finite number expected"));
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
name: t
objects:
  - apiVersion: rollgate.dev/v1alpha1
    kind: AnalysisTemplate
    metadata: {name: error-rate}
    spec:
      metrics:
        - name: error-rate
          provider: {prometheus: {address: "http://p:9090", query: "1"}}
  - apiVersion: rollgate.dev/v1alpha1
    kind: Rollout
    metadata: {name: web}
    spec: {}
"#;

    fn with(extra: &str) -> Result<Scenario, String> {
        Scenario::parse(&format!("{BASE}{extra}"))
    }

    #[test]
    fn reads_every_kind_of_series_and_entry() {
        let s = with(
            r#"
metrics:
  error-rate:
    default: 0.01
    revisions:
      2: {baseline: 0.01, noise: 0.005, regression: {at: 4m, to: 0.2}}
      3: [{at: 0s, value: 0.01}, {at: 90s}]
      4: noData
timeline:
  - {at: 1m, setImage: {container: web, image: "web:2"}}
  - {at: 2m, command: promoteFull}
  - {at: 3m, prometheus: down}
  - {at: 4m, deletePods: {revision: 2}}
expect: {phase: Healthy, abortedBy: 6m, events: [RolloutCompleted]}
duration: 1h
"#,
        )
        .expect("test data");
        let m = &s.metrics["error-rate"];
        assert_eq!(m.default, Some(Series::Constant(0.01)));
        assert!(matches!(m.revisions["2"], Series::Generator(_)));
        assert!(matches!(&m.revisions["3"], Series::Points(p) if p[1].value.is_none()));
        assert_eq!(m.revisions["4"], Series::Keyword("noData".into()));
        assert_eq!(s.timeline[1].command, Some(Command::PromoteFull));
        assert_eq!(s.timeline[3].delete_pods.map(|d| d.count), Some(1));
        assert_eq!(
            s.expect.as_ref().expect("test data").aborted_by,
            Some(Dur(Duration::from_secs(360)))
        );
        assert_eq!(s.max_duration(), Duration::from_secs(3600));
        assert_eq!(
            s.rollout().expect("test data"),
            ("default".into(), "web".into())
        );
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (
                "metrics: {latency: {default: 1}}",
                "metrics.latency: no AnalysisTemplate in objects has a metric named latency",
            ),
            (
                "metrics: {error-rate: {revisions: {two: 1}}}",
                "metrics.error-rate.revisions.two: a revision number",
            ),
            (
                "metrics: {error-rate: {default: lots}}",
                "metrics.error-rate.default: a number, `noData`",
            ),
            (
                "metrics: {error-rate: {default: [{at: 2m, value: 1}, {at: 1m, value: 2}]}}",
                "metrics.error-rate.default[1].at: points in time order expected",
            ),
            (
                "timeline: [{at: 1m, alert: {name: ' ', revision: 2}}]",
                "timeline[0].alert.name: an alert name expected",
            ),
            (
                "timeline: [{at: 1m, alert: {name: HighErrorRate, revision: 0}}]",
                "timeline[0].alert.revision: a revision number (1, 2, ...) expected",
            ),
            (
                "timeline: [{at: 1m}]",
                "timeline[0]: exactly one of setImage, command, apply, prometheus, deletePods, alert, approve, abort, pipeline expected, found 0",
            ),
            (
                "timeline: [{at: 1m, command: promote, prometheus: up}]",
                "found 2",
            ),
            ("expect: {phase: Done}", "expect.phase: one of Healthy"),
            (
                "timeline: [{at: soon, command: promote}]",
                "expected seconds or a duration such as 30s, 5m or 1h30m, got \"soon\"",
            ),
            ("timeline: [{at: 1m, command: launch}]", "launch"),
            ("expect: {phse: Healthy}", "phse"),
            (
                "expect: {events: [RolloutCompleted, RolloutDone]}",
                "expect.events[1]: unknown EventReason \"RolloutDone\": expected one of RolloutUpdated,",
            ),
        ];
        for (extra, want) in cases {
            let err = with(extra).expect_err("should fail");
            assert!(err.contains(want), "{extra}: {err}");
        }
        let two = Scenario::parse(&format!(
            "{BASE}  - {{apiVersion: rollgate.dev/v1alpha1, kind: Rollout, metadata: {{name: b}}}}\n"
        ))
        .expect_err("should fail");
        assert!(
            two.contains(
                "exactly one Rollout expected (or a PromotionPipeline with one per stage), found 2"
            ),
            "{two}"
        );
    }

    const PIPELINE: &str = r#"
name: p
namespace: shop
objects:
  - {apiVersion: rollgate.dev/v1alpha1, kind: Rollout, metadata: {name: web, namespace: prod}}
  - {apiVersion: rollgate.dev/v1alpha1, kind: Rollout, metadata: {name: web, namespace: stg}}
  - apiVersion: rollgate.dev/v1alpha1
    kind: PromotionPipeline
    metadata: {name: web}
    spec:
      stages:
        - {name: staging, rollout: {name: web, namespace: stg}}
        - {name: production, rollout: {name: web, namespace: prod}}
        - {name: edge, rollout: {name: web, namespace: far, cluster: {kubeconfigSecret: {name: s}}}}
"#;

    #[test]
    fn a_pipeline_scenario_is_about_its_first_stage_and_creates_its_namespaces() {
        let s = Scenario::parse(&format!(
            "{PIPELINE}timeline:\n  - {{at: 1m, approve: {{release: 1, stage: production, decision: Promote}}}}\n  - {{at: 2m, abort: {{rollout: web, namespace: prod}}}}\n  - {{at: 3m, pipeline: {{paused: true}}}}\nexpect:\n  rollouts: {{prod/web: {{phase: Healthy}}}}\n  pipeline: {{releases: {{2: {{verdict: Bad, stages: {{production: RolledBack}}}}}}, neverPromoted: [{{release: 2, stage: production}}]}}\n"
        ))
        .expect("test data");
        assert_eq!(
            s.rollout().expect("test data"),
            ("stg".into(), "web".into())
        );
        assert_eq!(s.rollouts().expect("test data").len(), 2);
        let namespaces: Vec<String> = s.namespaces().into_iter().collect();
        assert_eq!(
            namespaces,
            ["prod", "shop", "stg"],
            "not the other cluster's"
        );
        assert_eq!(
            s.timeline[0].approve.as_ref().map(|a| a.decision),
            Some(rollgate_api::pipeline::Decision::Promote)
        );
        assert_eq!(
            s.pipeline(None).expect("test data"),
            ("shop".into(), "web".into())
        );
    }

    #[test]
    fn pipeline_errors_name_the_field() {
        let cases = [
            (
                "timeline: [{at: 1m, approve: {release: 0, stage: production, decision: Approve}}]",
                "timeline[0].approve.release: a release number (1, 2, ...) expected",
            ),
            (
                "timeline: [{at: 1m, pipeline: {name: other, paused: true}}]",
                "timeline[0].pipeline.name: no PromotionPipeline other among the objects",
            ),
            (
                "timeline: [{at: 1m, approve: {release: 1, stage: production, decision: Maybe}}]",
                "Maybe",
            ),
            (
                "expect: {rollouts: {web: {phase: Healthy}}}",
                "expect.rollouts.web: a Rollout among the objects as namespace/name expected (have: prod/web, stg/web)",
            ),
            (
                "expect: {rollouts: {prod/web: {phase: Done}}}",
                "expect.rollouts.prod/web.phase: one of Healthy",
            ),
            (
                "expect: {pipeline: {releases: {two: {verdict: Good}}}}",
                "expect.pipeline.releases.two: a release number (1, 2, ...) expected",
            ),
            (
                "expect: {pipeline: {events: [ReleaseDone]}}",
                "expect.pipeline.events[0]: unknown EventReason \"ReleaseDone\"",
            ),
            (
                "expect: {pipeline: {releases: {2: {verdict: Fine}}}}",
                "Fine",
            ),
        ];
        for (extra, want) in cases {
            let err = Scenario::parse(&format!("{PIPELINE}{extra}\n")).expect_err("should fail");
            assert!(err.contains(want), "{extra}: {err}");
        }
        let no_pipeline =
            with("timeline: [{at: 1m, pipeline: {paused: true}}]").expect_err("fails");
        assert!(
            no_pipeline
                .contains("timeline[0].pipeline.name: no PromotionPipeline among the objects"),
            "{no_pipeline}"
        );
        let bad = with("metrics: {error-rate: {releases: {first: 1}}}").expect_err("fails");
        assert!(
            bad.contains("metrics.error-rate.releases.first: a release number"),
            "{bad}"
        );
    }

    #[test]
    fn durations_print_as_clock_times() {
        assert_eq!(Dur(Duration::from_secs(75)).to_string(), "01:15");
        assert_eq!(Dur(Duration::from_secs(3725)).to_string(), "1:02:05");
        assert!(parse_duration("-5m").is_err());
    }
}
