//! Following releases through the stages, and promoting them.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use k8s_openapi::jiff::Timestamp;
use rollgate_api::pipeline::{
    Decision, FailureCause, Gate, GateKind, HoldReason, PipelineStageStatus, ReleaseFailure,
    ReleaseStageStatus, StageHold, StagePhase, Verdict,
};
use rollgate_api::{
    AnalysisPhase, AnalysisRun, EventReason, PromotionPipelineStatus, Release, ReleaseSpec,
    ReleaseStatus,
};

use super::gates::{self, gate};
use super::spec::{Stage, ValidPipeline};
use super::{
    ATTEMPT_LABEL, ObservedStage, PIPELINE_LABEL, POLL, PipelineAction, PipelineDecision,
    PipelineEvent, PipelineInput, RELEASE_LABEL, RolloutState, STAGE_LABEL, StageView, artifact,
    rollout_images, rollout_state,
};
use crate::time::add_secs;

/// A release as this reconcile sees it.
struct Rel {
    name: String,
    spec: ReleaseSpec,
    status: ReleaseStatus,
}

/// The working state of one pipeline reconcile.
pub(super) struct State<'a> {
    valid: &'a ValidPipeline,
    input: PipelineInput<'a>,
    /// Oldest first.
    rels: Vec<Rel>,
    stages: Vec<PipelineStageStatus>,
    wake: Option<Timestamp>,
    busy: bool,
}

fn phase_in(rel: &Rel, stage: &str) -> StagePhase {
    rel.status
        .stages
        .iter()
        .find(|s| s.name == stage)
        .map_or(StagePhase::Waiting, |s| s.phase)
}

impl<'a> State<'a> {
    pub(super) fn new(valid: &'a ValidPipeline, input: PipelineInput<'a>) -> Self {
        let mut rels: Vec<Rel> = input
            .releases
            .iter()
            .filter(|r| r.spec.pipeline == input.pipeline.metadata.name.clone().unwrap_or_default())
            .map(|r| Rel {
                name: r.metadata.name.clone().unwrap_or_default(),
                spec: r.spec.clone(),
                status: r.status.clone().unwrap_or_default(),
            })
            .collect();
        rels.sort_by(|a, b| (a.spec.number, &a.name).cmp(&(b.spec.number, &b.name)));
        let previous = input.pipeline.status.clone().unwrap_or_default();
        let stages = valid
            .stages
            .iter()
            .map(|s| {
                let mut st = previous
                    .stages
                    .iter()
                    .find(|p| p.name == s.name)
                    .cloned()
                    .unwrap_or_default();
                st.name = s.name.clone();
                match input.stages.get(&s.name) {
                    Some(ObservedStage::Read(_)) => {
                        st.reachable = Some(true);
                        st.problem = None;
                    }
                    Some(ObservedStage::Unreachable(why)) => {
                        st.reachable = Some(false);
                        st.problem = Some(why.clone());
                    }
                    None => {
                        st.reachable = Some(false);
                        st.problem = Some("not read".into());
                    }
                }
                st
            })
            .collect();
        State {
            valid,
            input,
            rels,
            stages,
            wake: None,
            busy: false,
        }
    }

    fn now(&self) -> Timestamp {
        self.input.now
    }

    fn view(&self, stage: &Stage) -> Option<&'a StageView> {
        match self.input.stages.get(&stage.name) {
            Some(ObservedStage::Read(v)) => Some(v),
            _ => None,
        }
    }

    fn pipeline_name(&self) -> String {
        self.input
            .pipeline
            .metadata
            .name
            .clone()
            .unwrap_or_default()
    }

    /// The images a stage must run for `rel` to be running there.
    fn wanted<'r>(stage: &Stage, rel: &'r Rel) -> &'r BTreeMap<String, String> {
        if stage.index == 0 {
            &rel.spec.source_images
        } else {
            &rel.spec.images
        }
    }

    /// Whether the stage's Rollout runs `rel` (its template has the release's images).
    fn runs(&self, stage: &Stage, rel: &Rel) -> bool {
        let Some(r) = self.view(stage).and_then(|v| v.rollout.as_ref()) else {
            return false;
        };
        let wanted = Self::wanted(stage, rel);
        let keys: Vec<String> = wanted.keys().cloned().collect();
        !wanted.is_empty() && rollout_images(r, &keys) == *wanted
    }

    fn event(d: &mut PipelineDecision, reason: EventReason, note: String) {
        d.events.push(PipelineEvent { reason, note });
    }

    fn wake_at(&mut self, at: Timestamp) {
        self.wake = Some(self.wake.map_or(at, |w| w.min(at)));
    }

    fn stage_status<'r>(rel: &'r mut Rel, stage: &str) -> &'r mut ReleaseStageStatus {
        if let Some(i) = rel.status.stages.iter().position(|s| s.name == stage) {
            return &mut rel.status.stages[i];
        }
        rel.status.stages.push(ReleaseStageStatus {
            name: stage.to_string(),
            ..Default::default()
        });
        let last = rel.status.stages.len() - 1;
        &mut rel.status.stages[last]
    }

    /// Records the artifact the first stage's Rollout releases, once its images are pinned
    /// (by the spec, or by the digests its ready pods run).
    pub(super) fn record_new_release(&mut self, d: &mut PipelineDecision) {
        let Some(first) = self.valid.stages.first() else {
            return;
        };
        let Some(view) = self.view(first) else {
            return;
        };
        let Some(rollout) = view.rollout.as_ref() else {
            return;
        };
        let source = rollout_images(rollout, &self.valid.containers);
        if source.is_empty() || self.rels.iter().any(|r| r.spec.source_images == source) {
            return;
        }
        // Tags are pinned from what the current revision's ready pods run: only once the
        // Rollout has observed this template.
        let observed = rollout
            .status
            .as_ref()
            .is_some_and(|s| s.observed_generation == rollout.metadata.generation);
        let running = if observed {
            view.running_digests.clone()
        } else {
            BTreeMap::new()
        };
        let Some(images) = artifact::pinned_images(&source, &running) else {
            self.busy = true;
            return;
        };
        let pipeline = self.pipeline_name();
        let name = artifact::release_name(&pipeline, &images);
        if self.rels.iter().any(|r| r.name == name) {
            return;
        }
        let spec = ReleaseSpec {
            pipeline: pipeline.clone(),
            images: images.clone(),
            source_images: source,
            entered: first.name.clone(),
            number: self.rels.iter().map(|r| r.spec.number).max().unwrap_or(0) + 1,
            created: Time(self.now()),
        };
        let release = Release {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: self.input.pipeline.metadata.namespace.clone(),
                labels: Some([(PIPELINE_LABEL.to_string(), pipeline.clone())].into()),
                owner_references: owner(self.input.pipeline).map(|o| vec![o]),
                ..Default::default()
            },
            spec: spec.clone(),
            status: None,
        };
        d.actions
            .push(PipelineAction::CreateRelease(Box::new(release)));
        Self::event(
            d,
            EventReason::ReleaseRecorded,
            format!(
                "Recorded release {name} ({}) from stage {}",
                images_text(&images),
                first.name
            ),
        );
        let mut rel = Rel {
            name,
            spec,
            status: ReleaseStatus::default(),
        };
        let st = Self::stage_status(&mut rel, &first.name);
        st.phase = StagePhase::Progressing;
        st.attempt = 1;
        st.promoted_at = Some(Time(self.now()));
        self.rels.push(rel);
    }

    /// Follows every release in every reachable stage: progress, verification, failure.
    pub(super) fn follow(&mut self, d: &mut PipelineDecision) {
        for si in 0..self.valid.stages.len() {
            let stage = &self.valid.stages[si];
            let Some(view) = self.view(stage) else {
                continue;
            };
            for ri in 0..self.rels.len() {
                let running = self.runs(stage, &self.rels[ri]);
                if running {
                    self.follow_running(d, stage, view, ri);
                } else {
                    self.follow_not_running(stage, ri);
                }
            }
        }
    }

    fn follow_not_running(&mut self, stage: &Stage, ri: usize) {
        let now = self.now();
        let rel = &mut self.rels[ri];
        let st = Self::stage_status(rel, &stage.name);
        match st.phase {
            StagePhase::Verified if st.left_at.is_none() => {
                st.left_at = Some(Time(now));
            }
            StagePhase::Progressing | StagePhase::Verifying => {
                st.phase = StagePhase::Superseded;
                st.verified_since = None;
            }
            _ => {}
        }
    }

    fn follow_running(
        &mut self,
        d: &mut PipelineDecision,
        stage: &Stage,
        view: &StageView,
        ri: usize,
    ) {
        let now = self.now();
        let Some(rollout) = view.rollout.as_ref() else {
            return;
        };
        let state = rollout_state(rollout);
        let name = self.rels[ri].name.clone();
        let bad = self.rels[ri].status.verdict == Some(Verdict::Bad);
        let st = Self::stage_status(&mut self.rels[ri], &stage.name);
        if matches!(st.phase, StagePhase::Failed | StagePhase::RolledBack) {
            return;
        }
        if matches!(
            st.phase,
            StagePhase::Waiting | StagePhase::Blocked | StagePhase::Superseded
        ) && stage.index == 0
        {
            // Back in the first stage (CI applied it again): a new attempt.
            st.attempt += 1;
            st.promoted_at = Some(Time(now));
        }
        if st.left_at.is_some() {
            // Running here again (restored, or promoted again).
            st.left_at = None;
            st.verified_since = None;
        }
        let message = rollout
            .status
            .as_ref()
            .and_then(|s| s.message.clone())
            .unwrap_or_default();
        match state {
            RolloutState::Aborted(reason) => {
                st.phase = StagePhase::Failed;
                st.verified_since = None;
                let why = reason.map_or_else(|| "aborted".to_string(), |r| r.to_string());
                let message = format!("{why}: {message}");
                self.fail(d, stage, ri, FailureCause::RolloutAborted, message);
            }
            RolloutState::Degraded | RolloutState::Progressing => {
                if st.phase != StagePhase::Promoting || state == RolloutState::Progressing {
                    st.phase = StagePhase::Progressing;
                }
                st.verified_since = None;
                self.busy = true;
            }
            RolloutState::Healthy => {
                let verification = stage.verification.as_ref();
                let attempt = st.attempt.max(1);
                st.attempt = attempt;
                let Some(analysis) = verification else {
                    if st.phase != StagePhase::Verified {
                        st.phase = StagePhase::Verified;
                        Self::event(
                            d,
                            EventReason::ReleaseVerified,
                            format!("Release {name} is Healthy in {}", stage.name),
                        );
                    }
                    if st.verified_since.is_none() {
                        st.verified_since = Some(Time(now));
                    }
                    return;
                };
                let run = view
                    .runs
                    .iter()
                    .find(|r| r.release == name && r.attempt == attempt);
                match run.map(|r| (r.name.clone(), r.phase)) {
                    None => {
                        if bad {
                            return;
                        }
                        let run_name = verification_name(&name, &stage.name, attempt);
                        let spec = crate::analysis::build_run_spec(
                            analysis,
                            &crate::Observed {
                                templates: view.templates.clone(),
                                ..Default::default()
                            },
                            rollout,
                            rollout.status.as_ref().and_then(|s| s.stable_rs.as_deref()),
                            rollout
                                .status
                                .as_ref()
                                .and_then(|s| s.current_pod_hash.as_deref())
                                .unwrap_or_default(),
                        );
                        let labels: BTreeMap<String, String> = [
                            (RELEASE_LABEL.to_string(), name.clone()),
                            (STAGE_LABEL.to_string(), stage.name.clone()),
                            (ATTEMPT_LABEL.to_string(), attempt.to_string()),
                            (PIPELINE_LABEL.to_string(), self.pipeline_name()),
                        ]
                        .into();
                        let run = AnalysisRun {
                            metadata: ObjectMeta {
                                name: Some(run_name.clone()),
                                namespace: Some(stage.namespace.clone()),
                                labels: Some(labels),
                                ..Default::default()
                            },
                            spec,
                            status: None,
                        };
                        d.actions.push(PipelineAction::CreateVerification {
                            stage: stage.name.clone(),
                            run: Box::new(run),
                        });
                        let st = Self::stage_status(&mut self.rels[ri], &stage.name);
                        st.phase = StagePhase::Verifying;
                        st.verification_run = Some(run_name);
                        self.busy = true;
                    }
                    Some((run_name, phase)) => {
                        st.verification_run = Some(run_name.clone());
                        match phase {
                            AnalysisPhase::Successful => {
                                if st.phase != StagePhase::Verified {
                                    st.phase = StagePhase::Verified;
                                    Self::event(
                                        d,
                                        EventReason::ReleaseVerified,
                                        format!(
                                            "Release {name} is Healthy and verified in {} \
                                             (AnalysisRun {run_name})",
                                            stage.name
                                        ),
                                    );
                                }
                                if st.verified_since.is_none() {
                                    st.verified_since = Some(Time(now));
                                }
                            }
                            AnalysisPhase::Failed => {
                                st.phase = StagePhase::Failed;
                                st.verified_since = None;
                                let message = format!("AnalysisRun {run_name} failed");
                                self.fail(d, stage, ri, FailureCause::VerificationFailed, message);
                            }
                            _ => {
                                st.phase = StagePhase::Verifying;
                                self.busy = true;
                            }
                        }
                    }
                }
            }
        }
    }

    /// `rels[ri]` failed in `stage`: it is Bad for good; a later stage gets its last good
    /// release back, and automatic promotion into it is held until a person acts.
    fn fail(
        &mut self,
        d: &mut PipelineDecision,
        stage: &Stage,
        ri: usize,
        cause: FailureCause,
        message: String,
    ) {
        let now = self.now();
        let name = self.rels[ri].name.clone();
        if self.rels[ri].status.verdict != Some(Verdict::Bad) {
            self.rels[ri].status.verdict = Some(Verdict::Bad);
            self.rels[ri].status.failure = Some(ReleaseFailure {
                stage: stage.name.clone(),
                cause,
                message: message.clone(),
                at: Time(now),
            });
            Self::event(
                d,
                EventReason::ReleaseFailed,
                format!(
                    "Release {name} failed in {}: {cause}: {message}",
                    stage.name
                ),
            );
        }
        if stage.index == 0 {
            // CI owns the first stage's Rollout; an aborted Rollout already serves its stable
            // revision.
            return;
        }
        let restoring = self
            .stages
            .get(stage.index)
            .and_then(|s| s.hold.as_ref())
            .is_some_and(|h| h.reason == HoldReason::Restored);
        if restoring {
            // The stage failed again while held after a restore (the restored release failed):
            // no second rollback; a person decides.
            return;
        }
        let Some(good) = self.last_good(stage, Some(&name)) else {
            return;
        };
        let images = self.rels[good].spec.images.clone();
        let good_name = self.rels[good].name.clone();
        d.actions.push(PipelineAction::SetImages {
            stage: stage.name.clone(),
            images,
        });
        Self::event(
            d,
            EventReason::LastGoodRestored,
            format!(
                "Stage {} gets its last good release {good_name} back after {name} failed; \
                 automatic promotion into it is held until a person promotes",
                stage.name
            ),
        );
        let st = Self::stage_status(&mut self.rels[ri], &stage.name);
        st.phase = StagePhase::RolledBack;
        if let Some(s) = self.stages.get_mut(stage.index) {
            s.hold = Some(StageHold {
                reason: HoldReason::Restored,
                release: name,
                since: Time(now),
            });
        }
    }

    /// The newest release verified in `stage` that is not Bad (nor `except`).
    fn last_good(&self, stage: &Stage, except: Option<&str>) -> Option<usize> {
        self.rels.iter().rposition(|r| {
            Some(r.name.as_str()) != except
                && r.status.verdict != Some(Verdict::Bad)
                && phase_in(r, &stage.name) == StagePhase::Verified
        })
    }

    /// Whether `rel` has been verified in stage `a`, and soaked `soak` seconds there; the
    /// gate that is closed otherwise.
    fn upstream_gate(&mut self, a: &Stage, ri: usize, soak: i64) -> Option<Gate> {
        let now = self.now();
        let st = self.rels[ri]
            .status
            .stages
            .iter()
            .find(|s| s.name == a.name)
            .cloned()
            .unwrap_or_default();
        let upstream = Gate {
            stage: Some(a.name.clone()),
            ..gate(GateKind::Upstream)
        };
        if st.phase != StagePhase::Verified {
            return Some(upstream);
        }
        let Some(since) = st.verified_since.map(|t| t.0) else {
            return Some(upstream);
        };
        let soaked = match &st.left_at {
            Some(left) => left.0.as_second() - since.as_second(),
            None => now.as_second() - since.as_second(),
        };
        if soaked >= soak {
            return None;
        }
        if st.left_at.is_some() {
            // It left before soaking long enough: it never will.
            return Some(upstream);
        }
        let until = add_secs(since, soak);
        self.wake_at(until);
        Some(Gate {
            stage: Some(a.name.clone()),
            until: Some(Time(until)),
            ..gate(GateKind::Soak)
        })
    }

    /// Promotes into every later stage what its gates let through, and says why the others
    /// wait.
    pub(super) fn promote(&mut self, d: &mut PipelineDecision) {
        for si in 1..self.valid.stages.len() {
            let stage = self.valid.stages[si].clone();
            self.promote_into(d, &stage);
        }
    }

    fn promote_into(&mut self, d: &mut PipelineDecision, stage: &Stage) {
        let now = self.now();
        let reachable = self.view(stage).is_some_and(|v| v.rollout.is_some());
        if let Some(other) = self.input.claims.get(&stage.name) {
            let claimed = Gate {
                by: Some(other.clone()),
                ..gate(GateKind::Claimed)
            };
            if let Some(s) = self.stages.get_mut(stage.index) {
                s.problem = Some(format!(
                    "Rollout {}/{} is also a stage of pipeline {other}, created first: this \
                     pipeline writes nothing into it",
                    stage.namespace, stage.rollout
                ));
            }
            if let Some(ri) = (0..self.rels.len()).rev().find(|&ri| {
                matches!(
                    phase_in(&self.rels[ri], &stage.name),
                    StagePhase::Waiting | StagePhase::Blocked
                )
            }) {
                let st = Self::stage_status(&mut self.rels[ri], &stage.name);
                st.phase = StagePhase::Blocked;
                st.message = Some(gates::render(&claimed, now));
                st.blocked = vec![claimed];
            }
            return;
        }
        // What the stage runs now, and whether a promotion into it is in flight.
        let current = (0..self.rels.len()).rfind(|&ri| self.runs(stage, &self.rels[ri]));
        let in_flight = self.rels.iter().position(|r| {
            matches!(
                phase_in(r, &stage.name),
                StagePhase::Promoting | StagePhase::Progressing | StagePhase::Verifying
            )
        });
        // A promotion written earlier whose images the Rollout does not show yet: write again
        // (the same server-side apply; idempotent).
        if let Some(ri) = in_flight
            && phase_in(&self.rels[ri], &stage.name) == StagePhase::Promoting
            && Some(ri) != current
            && reachable
        {
            d.actions.push(PipelineAction::SetImages {
                stage: stage.name.clone(),
                images: self.rels[ri].spec.images.clone(),
            });
            self.busy = true;
        }
        // A person's `Promote`, not acted upon yet.
        if let Some((ri, approval)) = self.manual_promotion(stage) {
            let mut closed = Vec::new();
            for &a in &stage.after {
                let a = self.valid.stages[a].clone();
                if let Some(g) = self.upstream_gate(&a, ri, 0) {
                    closed.push(g);
                }
            }
            if !reachable {
                closed.push(gate(GateKind::Unreachable));
            }
            if closed.is_empty() {
                let newer_verified = (ri + 1..self.rels.len()).any(|o| {
                    self.rels[o].status.verdict != Some(Verdict::Bad)
                        && stage.after.iter().all(|&a| {
                            phase_in(&self.rels[o], &self.valid.stages[a].name)
                                == StagePhase::Verified
                        })
                });
                self.write(d, stage, ri, Some(approval.clone()));
                if let Some(s) = self.stages.get_mut(stage.index) {
                    s.last_promote = Some(approval);
                    s.hold = newer_verified.then(|| StageHold {
                        reason: HoldReason::ManualPromotion,
                        release: self.rels[ri].name.clone(),
                        since: Time(now),
                    });
                }
                return;
            }
            let st = Self::stage_status(&mut self.rels[ri], &stage.name);
            st.message = Some(format!(
                "promotion by {approval} waits: {}",
                gates::render_all(&closed, now)
            ));
        }
        // The newest release that is not Bad and waits to come here; older waiting ones are
        // superseded by it.
        let Some(candidate) = (0..self.rels.len()).rev().find(|&ri| {
            self.rels[ri].status.verdict != Some(Verdict::Bad)
                && Some(ri) != current
                && matches!(
                    phase_in(&self.rels[ri], &stage.name),
                    StagePhase::Waiting | StagePhase::Blocked
                )
        }) else {
            return;
        };
        for older in 0..candidate {
            let st = Self::stage_status(&mut self.rels[older], &stage.name);
            if matches!(st.phase, StagePhase::Waiting | StagePhase::Blocked) {
                st.phase = StagePhase::Superseded;
                st.blocked.clear();
                st.message = None;
            }
        }
        let mut closed = Vec::new();
        for &a in &stage.after {
            let a = self.valid.stages[a].clone();
            if let Some(g) = self.upstream_gate(&a, candidate, stage.soak_secs) {
                closed.push(g);
            }
        }
        let waiting = closed.iter().any(|g| g.kind == GateKind::Upstream);
        closed.extend(gates::approvals(
            self.input.approvals,
            &self.rels[candidate].name,
            &stage.name,
            stage.approvals,
        ));
        if let crate::window::WindowState::Closed { opens } = stage.windows.state(now) {
            if let Some(at) = opens {
                self.wake_at(at);
            }
            closed.push(Gate {
                until: opens.map(Time),
                ..gate(GateKind::Window)
            });
        }
        if self.valid.paused {
            closed.push(gate(GateKind::Paused));
        }
        if let Some(ri) = in_flight
            && ri != candidate
        {
            closed.push(Gate {
                by: Some(self.rels[ri].name.clone()),
                ..gate(GateKind::InFlight)
            });
        }
        if self
            .stages
            .get(stage.index)
            .is_some_and(|s| s.hold.is_some())
        {
            closed.push(gate(GateKind::Held));
        }
        if !stage.auto_promote {
            closed.push(gate(GateKind::Manual));
        }
        if !reachable {
            closed.push(gate(GateKind::Unreachable));
        }
        if let Some(missing) = self.missing_containers(stage, candidate) {
            if let Some(s) = self.stages.get_mut(stage.index) {
                s.problem = Some(format!(
                    "Rollout {}/{} has no container {missing}: the release cannot be promoted \
                     into it",
                    stage.namespace, stage.rollout
                ));
            }
            closed.push(Gate {
                by: Some(missing),
                ..gate(GateKind::MissingContainer)
            });
        }
        if closed.is_empty() {
            self.write(d, stage, candidate, None);
            return;
        }
        let st = Self::stage_status(&mut self.rels[candidate], &stage.name);
        st.phase = if waiting {
            StagePhase::Waiting
        } else {
            StagePhase::Blocked
        };
        st.message = Some(gates::render_all(&closed, now));
        st.blocked = closed;
    }

    /// The containers of `rels[ri]` the stage's Rollout lacks, joined (none missing: `None`).
    fn missing_containers(&self, stage: &Stage, ri: usize) -> Option<String> {
        let r = self.view(stage).and_then(|v| v.rollout.as_ref())?;
        let present = rollout_images(r, &[]);
        let missing: Vec<&str> = self.rels[ri]
            .spec
            .images
            .keys()
            .filter(|c| !present.contains_key(*c))
            .map(String::as_str)
            .collect();
        (!missing.is_empty()).then(|| missing.join(", "))
    }

    /// The oldest `Promote` Approval for `stage` not acted upon (after the last one acted
    /// upon, in creation order): its release and name. One naming a Bad release is skipped.
    fn manual_promotion(&self, stage: &Stage) -> Option<(usize, String)> {
        let mut promotes: Vec<_> = self
            .input
            .approvals
            .iter()
            .filter(|a| a.spec.stage == stage.name && a.spec.decision == Decision::Promote)
            .collect();
        promotes.sort_by_key(|a| {
            (
                a.metadata.creation_timestamp.as_ref().map(|t| t.0),
                a.metadata.name.clone(),
            )
        });
        let last = self
            .stages
            .get(stage.index)
            .and_then(|s| s.last_promote.clone());
        let start = last
            .and_then(|l| {
                promotes
                    .iter()
                    .position(|a| a.metadata.name.as_ref() == Some(&l))
            })
            .map_or(0, |i| i + 1);
        promotes.into_iter().skip(start).find_map(|a| {
            let ri = self.rels.iter().position(|r| r.name == a.spec.release)?;
            (self.rels[ri].status.verdict != Some(Verdict::Bad))
                .then(|| (ri, a.metadata.name.clone().unwrap_or_default()))
        })
    }

    /// Writes `rels[ri]`'s images into `stage`.
    fn write(&mut self, d: &mut PipelineDecision, stage: &Stage, ri: usize, by: Option<String>) {
        let now = self.now();
        let images = self.rels[ri].spec.images.clone();
        let name = self.rels[ri].name.clone();
        d.actions.push(PipelineAction::SetImages {
            stage: stage.name.clone(),
            images: images.clone(),
        });
        let how = by
            .as_ref()
            .map_or_else(String::new, |a| format!(" by hand (Approval {a})"));
        Self::event(
            d,
            EventReason::ReleasePromoted,
            format!(
                "Promoted release {name} into {}{how}: {}",
                stage.name,
                images_text(&images)
            ),
        );
        let st = Self::stage_status(&mut self.rels[ri], &stage.name);
        st.phase = StagePhase::Promoting;
        st.attempt += 1;
        st.promoted_at = Some(Time(now));
        st.promoted_by = by;
        st.verified_since = None;
        st.left_at = None;
        st.verification_run = None;
        st.blocked.clear();
        st.message = None;
        self.busy = true;
    }

    /// Statuses, summaries, verdicts and when to look again.
    pub(super) fn finish(mut self, d: &mut PipelineDecision) {
        let now = self.now();
        for rel in &mut self.rels {
            // Every stage listed, in pipeline order.
            let mut stages = Vec::new();
            for s in &self.valid.stages {
                let mut st = rel
                    .status
                    .stages
                    .iter()
                    .find(|x| x.name == s.name)
                    .cloned()
                    .unwrap_or_else(|| ReleaseStageStatus {
                        name: s.name.clone(),
                        ..Default::default()
                    });
                if !matches!(st.phase, StagePhase::Waiting | StagePhase::Blocked) {
                    st.blocked.clear();
                    if st.phase != StagePhase::Promoting {
                        st.message = None;
                    }
                }
                if st.phase == StagePhase::Verifying
                    && let Some(run) = &st.verification_run
                {
                    st.message = Some(format!("verification {run} runs"));
                }
                if matches!(st.phase, StagePhase::Waiting | StagePhase::Blocked)
                    && !st.blocked.is_empty()
                {
                    st.message = Some(gates::render_all(&st.blocked, now));
                }
                stages.push(st);
            }
            rel.status.stages = stages;
            if rel.status.verdict != Some(Verdict::Bad) {
                let all = rel
                    .status
                    .stages
                    .iter()
                    .all(|s| s.phase == StagePhase::Verified);
                // Good once verified in every stage; it stays Good while it is released again
                // somewhere (a restore, a manual promotion), until it fails (Bad).
                let good = all || rel.status.verdict == Some(Verdict::Good);
                rel.status.verdict = Some(if good {
                    Verdict::Good
                } else {
                    Verdict::Unknown
                });
            }
            rel.status.summary = Some(
                rel.status
                    .stages
                    .iter()
                    .map(|s| format!("{}:{}", s.name, s.phase))
                    .collect::<Vec<_>>()
                    .join(" "),
            );
            rel.status.images_text = Some(images_text(&rel.spec.images));
        }
        for (si, stage) in self.valid.stages.iter().enumerate() {
            let current = self
                .rels
                .iter()
                .rposition(|r| {
                    let st = r.status.stages.iter().find(|s| s.name == stage.name);
                    st.is_some_and(|s| {
                        matches!(
                            s.phase,
                            StagePhase::Promoting
                                | StagePhase::Progressing
                                | StagePhase::Verifying
                                | StagePhase::Verified
                                | StagePhase::Failed
                        ) && s.left_at.is_none()
                    })
                })
                .map(|ri| self.rels[ri].name.clone());
            let last_good = self
                .last_good(stage, None)
                .map(|ri| self.rels[ri].name.clone());
            if let Some(s) = self.stages.get_mut(si) {
                s.current = current;
                s.last_good = last_good;
            }
        }
        let newest = self.rels.last().map(|r| r.name.clone());
        let summary = self
            .stages
            .iter()
            .map(|s| {
                let phase = newest
                    .as_ref()
                    .and_then(|n| self.rels.iter().find(|r| &r.name == n))
                    .map_or(StagePhase::Waiting, |r| phase_in(r, &s.name));
                format!("{}:{phase}", s.name)
            })
            .collect::<Vec<_>>()
            .join(" ");
        let message = match self.rels.last() {
            None => "no release yet: apply the first stage's Rollout".to_string(),
            Some(r) => {
                let waits: Vec<String> = r
                    .status
                    .stages
                    .iter()
                    .filter_map(|s| s.message.as_ref().map(|m| format!("{}: {m}", s.name)))
                    .collect();
                let verdict = r.status.verdict.unwrap_or(Verdict::Unknown);
                if waits.is_empty() {
                    format!("{} {verdict}", r.name)
                } else {
                    format!("{} {verdict}; {}", r.name, waits.join("; "))
                }
            }
        };
        let unreachable = self.stages.iter().any(|s| s.reachable == Some(false));
        d.status = PromotionPipelineStatus {
            observed_generation: None,
            summary: Some(summary),
            message: Some(message),
            newest_release: newest,
            stages: self.stages,
            conditions: Vec::new(),
        };
        d.releases = self.rels.into_iter().map(|r| (r.name, r.status)).collect();
        let poll = (self.busy || unreachable).then(|| add_secs(now, POLL.as_secs() as i64));
        let wake = match (self.wake, poll) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        d.requeue_after = wake.map(|w| {
            Duration::from_secs(
                u64::try_from(w.as_second().saturating_sub(now.as_second()))
                    .unwrap_or(0)
                    .max(1),
            )
        });
    }
}

/// `name` of the verification run of `release` in `stage`, attempt `attempt`.
pub fn verification_name(release: &str, stage: &str, attempt: i32) -> String {
    let stage: String = stage.chars().take(40).collect();
    format!("{release}-{stage}-verify-{attempt}")
}

fn images_text(images: &BTreeMap<String, String>) -> String {
    images
        .iter()
        .map(|(c, i)| format!("{c}={i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn owner(p: &rollgate_api::PromotionPipeline) -> Option<OwnerReference> {
    Some(OwnerReference {
        api_version: format!("{}/{}", rollgate_api::GROUP, rollgate_api::VERSION),
        kind: "PromotionPipeline".into(),
        name: p.metadata.name.clone()?,
        uid: p.metadata.uid.clone()?,
        controller: Some(true),
        block_owner_deletion: Some(true),
    })
}
