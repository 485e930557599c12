//! A promotion pipeline in a scenario: what the runner prints of it (its Events, each
//! release's phase per stage, its stages' state), what it records for `expect.pipeline`, and
//! the people's actions on it (approvals, pausing the line).

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::events::v1::Event;
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::{ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use rollgate_api::pipeline::{GateKind, StagePhase, Verdict};
use rollgate_api::{Approval, ApprovalSpec, PromotionPipeline, PromotionPipelineStatus, Release};
use rollgate_engine::pipeline::{PIPELINE_LABEL, rollout_images};
use rollgate_local::Stack;

use crate::ScenarioError;
use crate::file::ApproveEntry;

/// What came out of a pipeline.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PipelineOutcome {
    /// The pipeline's name.
    pub name: String,
    /// Its status at the end.
    pub status: PromotionPipelineStatus,
    /// Its releases at the end, oldest first.
    pub releases: Vec<Release>,
    /// Reasons of the Events recorded on it, in order.
    pub events: Vec<String>,
    /// (release number, stage): the release's images were seen in the stage's Rollout, or it
    /// was seen promoted there (Promoting or any later phase).
    pub promoted: BTreeSet<(i64, String)>,
    /// Images of each stage's Rollout at the end (stages in this cluster), by stage name.
    pub stage_images: BTreeMap<String, BTreeMap<String, String>>,
    /// The first stage's name (where releases enter).
    pub entry_stage: String,
}

impl PipelineOutcome {
    /// The release numbered `number`.
    pub fn release(&self, number: i64) -> Option<&Release> {
        self.releases.iter().find(|r| r.spec.number == number)
    }

    /// The number of the release named `name`.
    pub fn number_of(&self, name: &str) -> Option<i64> {
        self.releases
            .iter()
            .find(|r| r.metadata.name.as_deref() == Some(name))
            .map(|r| r.spec.number)
    }

    /// The images a release gives `stage`'s Rollout: as CI wrote them in the first stage,
    /// pinned by digest elsewhere.
    pub fn images_for<'a>(
        &self,
        release: &'a Release,
        stage: &str,
    ) -> &'a BTreeMap<String, String> {
        if stage == self.entry_stage {
            &release.spec.source_images
        } else {
            &release.spec.images
        }
    }
}

/// How long after a soak or window gate's `until` the run still waits for the controller.
const GRACE: std::time::Duration = std::time::Duration::from_secs(15);

/// Follows one pipeline through a run.
pub struct PipelineWatch {
    ns: String,
    seen_events: BTreeSet<String>,
    phases: BTreeMap<(String, String), (StagePhase, Vec<GateKind>)>,
    verdicts: BTreeMap<String, Verdict>,
    stage_lines: BTreeMap<String, String>,
    /// What it recorded so far.
    pub outcome: PipelineOutcome,
}

/// Phases in which a release moves by itself (the run is not over).
const MOVING: [StagePhase; 3] = [
    StagePhase::Promoting,
    StagePhase::Progressing,
    StagePhase::Verifying,
];

impl PipelineWatch {
    /// Follows pipeline `ns/name`.
    pub fn new(ns: String, name: String) -> Self {
        Self {
            ns,
            seen_events: BTreeSet::new(),
            phases: BTreeMap::new(),
            verdicts: BTreeMap::new(),
            stage_lines: BTreeMap::new(),
            outcome: PipelineOutcome {
                name,
                ..Default::default()
            },
        }
    }

    /// Whether something in the pipeline is still on its way at `now`: a release moving in a
    /// stage, or a soak or window gate that opens later or opened less than [`GRACE`] ago
    /// (status times are whole seconds; the controller looks again within its poll).
    pub fn busy(&self, now: Timestamp) -> bool {
        let now = now.checked_sub(GRACE).unwrap_or(now);
        self.outcome.releases.iter().any(|r| {
            r.status.iter().flat_map(|s| &s.stages).any(|st| {
                MOVING.contains(&st.phase)
                    || st.blocked.iter().any(|g| {
                        matches!(g.kind, GateKind::Soak | GateKind::Window)
                            && g.until.as_ref().is_some_and(|t| t.0 > now)
                    })
            })
        })
    }

    /// One line for the end of the run.
    pub fn summary(&self) -> String {
        let st = &self.outcome.status;
        let newest = st
            .newest_release
            .as_deref()
            .and_then(|n| self.outcome.number_of(n))
            .map_or("-".into(), |n| n.to_string());
        format!(
            "{}: {} (newest release {newest})",
            self.outcome.name,
            st.summary.as_deref().unwrap_or("-")
        )
    }

    /// Reads the pipeline, its releases, Events and stage Rollouts; the lines to print.
    pub async fn observe(&mut self, stack: &Stack) -> Result<Vec<String>, ScenarioError> {
        let client = &stack.client;
        let name = self.outcome.name.clone();
        let run_err =
            |what: String| move |e: kube::Error| ScenarioError::Run(format!("{what}: {e}"));
        let Some(pipeline) = Api::<PromotionPipeline>::namespaced(client.clone(), &self.ns)
            .get_opt(&name)
            .await
            .map_err(run_err(format!(
                "reading PromotionPipeline {}/{name}",
                self.ns
            )))?
        else {
            return Ok(Vec::new());
        };
        let mut releases = Api::<Release>::namespaced(client.clone(), &self.ns)
            .list(&ListParams::default().labels(&format!("{PIPELINE_LABEL}={name}")))
            .await
            .map_err(run_err(format!("listing Releases in {}", self.ns)))?
            .items;
        releases.sort_by_key(|r| r.spec.number);
        self.outcome.releases = releases;
        self.outcome.status = pipeline.status.clone().unwrap_or_default();
        self.outcome.entry_stage = pipeline
            .spec
            .stages
            .first()
            .map(|s| s.name.clone())
            .unwrap_or_default();
        let mut lines = self.events(stack).await?;
        lines.extend(self.releases());
        lines.extend(self.stages());
        self.images(stack, &pipeline).await?;
        Ok(lines)
    }

    /// New Events on the pipeline.
    async fn events(&mut self, stack: &Stack) -> Result<Vec<String>, ScenarioError> {
        let mut events = Api::<Event>::namespaced(stack.client.clone(), &self.ns)
            .list(&ListParams::default())
            .await
            .map_err(|e| ScenarioError::Run(format!("listing Events in {}: {e}", self.ns)))?
            .items;
        events.retain(|e| {
            e.regarding.as_ref().is_some_and(|r| {
                r.kind.as_deref() == Some("PromotionPipeline")
                    && r.name.as_deref() == Some(self.outcome.name.as_str())
            })
        });
        events.sort_by_key(|e| {
            (
                e.event_time.as_ref().map(|t| t.0),
                e.metadata
                    .resource_version
                    .as_ref()
                    .and_then(|v| v.parse::<u64>().ok()),
            )
        });
        let mut lines = Vec::new();
        for e in events {
            if !self
                .seen_events
                .insert(e.metadata.name.clone().unwrap_or_default())
            {
                continue;
            }
            let reason = e.reason.unwrap_or_default();
            let mark = if e.type_.as_deref() == Some("Warning") {
                "!"
            } else {
                " "
            };
            lines.push(format!(
                "{mark} pipeline event {reason:<20} {}",
                e.note.unwrap_or_default()
            ));
            self.outcome.events.push(reason);
        }
        Ok(lines)
    }

    /// Verdict and per-stage phase changes of the releases.
    fn releases(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        for r in &self.outcome.releases {
            let rname = r.metadata.name.clone().unwrap_or_default();
            let n = r.spec.number;
            let Some(status) = &r.status else { continue };
            let verdict = status.verdict.unwrap_or(Verdict::Unknown);
            let before = self.verdicts.insert(rname.clone(), verdict);
            if before.is_some_and(|b| b != verdict)
                || (before.is_none() && verdict != Verdict::Unknown)
            {
                let why = status
                    .failure
                    .as_ref()
                    .map(|f| format!(" (failed in {}: {}: {})", f.stage, f.cause, f.message))
                    .unwrap_or_default();
                lines.push(format!("  release {n} verdict {verdict}{why}"));
            }
            for st in &status.stages {
                if st.phase != StagePhase::Waiting
                    && st.phase != StagePhase::Blocked
                    && st.phase != StagePhase::Superseded
                {
                    self.outcome.promoted.insert((n, st.name.clone()));
                }
                let kinds: Vec<GateKind> = st.blocked.iter().map(|g| g.kind).collect();
                let now = (st.phase, kinds);
                let key = (rname.clone(), st.name.clone());
                if self.phases.get(&key) != Some(&now) {
                    self.phases.insert(key, now);
                    let msg = st
                        .message
                        .as_deref()
                        .filter(|m| !m.is_empty())
                        .map(|m| format!(": {m}"))
                        .unwrap_or_default();
                    lines.push(format!("  release {n} in {}: {}{msg}", st.name, st.phase));
                }
            }
        }
        lines
    }

    /// Changes of the pipeline's stages (what runs there, last good, hold, reachability).
    fn stages(&mut self) -> Vec<String> {
        let num = |n: &Option<String>| {
            n.as_deref()
                .map(|n| {
                    self.outcome
                        .number_of(n)
                        .map_or_else(|| n.to_string(), |x| x.to_string())
                })
                .unwrap_or_else(|| "-".into())
        };
        let mut lines = Vec::new();
        let mut next = BTreeMap::new();
        for st in &self.outcome.status.stages {
            let mut line = format!(
                "runs release {}, last good {}",
                num(&st.current),
                num(&st.last_good)
            );
            if let Some(h) = &st.hold {
                line.push_str(&format!(
                    ", automatic promotion held ({} by release {})",
                    h.reason,
                    num(&Some(h.release.clone()))
                ));
            }
            if st.reachable == Some(false) {
                line.push_str(", unreachable");
            }
            if let Some(p) = &st.problem {
                line.push_str(&format!(": {p}"));
            }
            next.insert(st.name.clone(), line);
        }
        for (stage, line) in &next {
            if self.stage_lines.get(stage) != Some(line) {
                lines.push(format!("  pipeline stage {stage}: {line}"));
            }
        }
        self.stage_lines = next;
        lines
    }

    /// Images of the stages' Rollouts in this cluster: which releases they carry.
    async fn images(&mut self, stack: &Stack, p: &PromotionPipeline) -> Result<(), ScenarioError> {
        for stage in &p.spec.stages {
            if stage.rollout.cluster.is_some() {
                continue;
            }
            let ns = stage.rollout.namespace.as_deref().unwrap_or(&self.ns);
            let Some(rollout) = Api::<rollgate_api::Rollout>::namespaced(stack.client.clone(), ns)
                .get_opt(&stage.rollout.name)
                .await
                .map_err(|e| {
                    ScenarioError::Run(format!("reading Rollout {ns}/{}: {e}", stage.rollout.name))
                })?
            else {
                continue;
            };
            let images = rollout_images(&rollout, &p.spec.containers);
            for r in &self.outcome.releases {
                let want = self.outcome.images_for(r, &stage.name);
                if !want.is_empty() && want.iter().all(|(c, i)| images.get(c) == Some(i)) {
                    self.outcome
                        .promoted
                        .insert((r.spec.number, stage.name.clone()));
                }
            }
            self.outcome.stage_images.insert(stage.name.clone(), images);
        }
        Ok(())
    }
}

/// Creates an Approval for release number `a.release` of pipeline `ns/name`; the line to
/// print (a refusal when the release does not exist).
pub async fn approve(
    stack: &Stack,
    ns: &str,
    pipeline: &str,
    a: &ApproveEntry,
) -> Result<String, ScenarioError> {
    let approver = a.approver.clone().unwrap_or_else(|| "alice".into());
    let what = format!(
        "{approver}: Approval {} of release {} for {}",
        a.decision, a.release, a.stage
    );
    let releases = Api::<Release>::namespaced(stack.client.clone(), ns)
        .list(&ListParams::default().labels(&format!("{PIPELINE_LABEL}={pipeline}")))
        .await
        .map_err(|e| ScenarioError::Run(format!("listing Releases in {ns}: {e}")))?
        .items;
    let Some(release) = releases
        .iter()
        .find(|r| r.spec.number == a.release)
        .and_then(|r| r.metadata.name.clone())
    else {
        return Ok(format!(
            "{what}: refused: pipeline {pipeline} has no release {}",
            a.release
        ));
    };
    let approval = Approval {
        metadata: ObjectMeta {
            generate_name: Some(format!("{release}-")),
            ..Default::default()
        },
        spec: ApprovalSpec {
            release: release.clone(),
            stage: a.stage.clone(),
            decision: a.decision,
            approver,
            comment: None,
        },
    };
    let said = match Api::<Approval>::namespaced(stack.client.clone(), ns)
        .create(&PostParams::default(), &approval)
        .await
    {
        Ok(created) => format!("created {}", created.metadata.name.unwrap_or_default()),
        Err(e) => format!("refused: {e}"),
    };
    Ok(format!("{what} ({release}): {said}"))
}

/// Sets `spec.paused` of pipeline `ns/name`; the line to print.
pub async fn set_paused(
    stack: &Stack,
    ns: &str,
    name: &str,
    paused: bool,
) -> Result<String, ScenarioError> {
    let body = serde_json::json!({"spec": {"paused": paused}});
    let said = match Api::<PromotionPipeline>::namespaced(stack.client.clone(), ns)
        .patch(name, &PatchParams::default(), &Patch::Merge(&body))
        .await
    {
        Ok(_) => "patched".to_string(),
        Err(e) => format!("refused: {e}"),
    };
    let verb = if paused { "stop" } else { "restart" };
    Ok(format!(
        "{verb} the line: pipeline {ns}/{name} spec.paused={paused}: {said}"
    ))
}
