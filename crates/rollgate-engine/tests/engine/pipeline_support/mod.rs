//! A world for pipeline decisions: each stage's Rollout (whose status the test sets as the
//! Rollout controller would), Releases, Approvals and verification runs, with the pipeline
//! engine's actions applied after every step and its invariants checked:
//! - a release is written into a stage only if every `after` stage verified that release,
//!   unless it is the stage's last good release restored after a failure;
//! - a Bad release is never written anywhere;
//! - the same state decides the same (determinism) and, once applied, records nothing twice.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use rollgate_api::pipeline::{Decision, StagePhase, Verdict};
use rollgate_api::{
    AbortReason, AnalysisPhase, Approval, ApprovalSpec, PromotionPipeline, Release, Rollout,
    RolloutPhase,
};
use rollgate_engine::pipeline::{
    ObservedStage, PipelineAction, PipelineDecision, PipelineInput, StageView, VerificationRun,
    reconcile,
};
use serde_json::{Value, json};

pub const T0: &str = "2026-11-23T08:00:00Z";

pub fn digest(n: u32) -> String {
    format!("sha256:{n:064x}")
}

pub struct World {
    pub pipeline: PromotionPipeline,
    pub releases: Vec<Release>,
    pub approvals: Vec<Approval>,
    pub rollouts: BTreeMap<String, Rollout>,
    pub runs: BTreeMap<String, Vec<VerificationRun>>,
    pub digests: BTreeMap<String, BTreeMap<String, String>>,
    pub unreachable: BTreeSet<String>,
    pub claims: BTreeMap<String, String>,
    pub now: Timestamp,
    pub last: PipelineDecision,
    pub writes: Vec<(String, BTreeMap<String, String>)>,
}

fn rollout(name: &str, namespace: &str, image: &str) -> Rollout {
    let mut r: Rollout = serde_json::from_value(json!({
        "apiVersion": "rollgate.dev/v1alpha1", "kind": "Rollout",
        "metadata": {"name": name, "namespace": namespace, "generation": 1},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [
                                  {"name": "web", "image": image},
                                  {"name": "proxy", "image": "envoy:1"}]}},
                 "strategy": {"canary": {"steps": [{"setWeight": 50}]}}}
    }))
    .expect("rollout");
    set_healthy(&mut r);
    r
}

fn set_healthy(r: &mut Rollout) {
    let g = r.metadata.generation;
    let hash = format!("h{}", g.unwrap_or(0));
    r.status = Some(
        serde_json::from_value(json!({
            "observedGeneration": g, "phase": "Healthy",
            "currentPodHash": hash, "stableRS": hash, "message": "Healthy"
        }))
        .expect("status"),
    );
}

impl World {
    /// A pipeline `web` in `shop` over `stages` (merged over the defaults: staging then
    /// production, both Rollouts `web`, running `shop/web@digest(0)`... as released before).
    pub fn new(spec: Value) -> Self {
        let mut p = json!({
            "apiVersion": "rollgate.dev/v1alpha1", "kind": "PromotionPipeline",
            "metadata": {"name": "web", "namespace": "shop", "uid": "p-uid", "generation": 1},
            "spec": {"containers": ["web"], "stages": [
                {"name": "staging", "rollout": {"name": "web", "namespace": "shop-staging"}},
                {"name": "production", "rollout": {"name": "web", "namespace": "shop-prod"}}]}
        });
        rollgate_test_support::merge(&mut p["spec"], spec);
        let pipeline: PromotionPipeline = serde_json::from_value(p).expect("pipeline");
        let mut rollouts = BTreeMap::new();
        for s in &pipeline.spec.stages {
            let ns = s.rollout.namespace.clone().unwrap_or_default();
            rollouts.insert(s.name.clone(), rollout(&s.rollout.name, &ns, "shop/web:0"));
        }
        World {
            pipeline,
            releases: Vec::new(),
            approvals: Vec::new(),
            rollouts,
            runs: BTreeMap::new(),
            digests: BTreeMap::new(),
            unreachable: BTreeSet::new(),
            claims: BTreeMap::new(),
            now: T0.parse().expect("time"),
            last: PipelineDecision::default(),
            writes: Vec::new(),
        }
    }

    pub fn stage_names(&self) -> Vec<String> {
        self.pipeline
            .spec
            .stages
            .iter()
            .map(|s| s.name.clone())
            .collect()
    }

    fn input_stages(&self) -> BTreeMap<String, ObservedStage> {
        self.stage_names()
            .into_iter()
            .map(|s| {
                let o = if self.unreachable.contains(&s) {
                    ObservedStage::Unreachable("connection refused".into())
                } else {
                    ObservedStage::Read(Box::new(StageView {
                        rollout: self.rollouts.get(&s).cloned(),
                        running_digests: self.digests.get(&s).cloned().unwrap_or_default(),
                        runs: self.runs.get(&s).cloned().unwrap_or_default(),
                        templates: BTreeMap::new(),
                    }))
                };
                (s, o)
            })
            .collect()
    }

    fn decide(&self) -> PipelineDecision {
        let stages = self.input_stages();
        reconcile(PipelineInput {
            pipeline: &self.pipeline,
            releases: &self.releases,
            approvals: &self.approvals,
            stages: &stages,
            claims: &self.claims,
            now: self.now,
        })
    }

    /// One reconcile: decide, check, apply.
    pub fn step(&mut self) -> PipelineDecision {
        let d = self.decide();
        assert_eq!(d, self.decide(), "deterministic");
        self.check(&d);
        self.apply(&d);
        // Applied: a reconcile of the same state records nothing twice.
        let again = self.decide();
        for a in &again.actions {
            match a {
                PipelineAction::CreateRelease(r) => panic!("release recorded twice: {r:?}"),
                PipelineAction::CreateVerification { run, .. } => {
                    panic!("verification started twice: {:?}", run.metadata.name)
                }
                PipelineAction::SetImages { .. } => {}
            }
        }
        self.last = d.clone();
        d
    }

    /// Steps until nothing new is decided (at most 20).
    pub fn settle(&mut self) {
        for _ in 0..20 {
            let before = (self.releases.clone(), self.pipeline.status.clone());
            let d = self.step();
            let creates = d
                .actions
                .iter()
                .any(|a| !matches!(a, PipelineAction::SetImages { .. }));
            if !creates && before == (self.releases.clone(), self.pipeline.status.clone()) {
                return;
            }
        }
    }

    fn release_with_images(
        &self,
        d: &PipelineDecision,
        stage: &str,
        images: &BTreeMap<String, String>,
    ) -> Option<Release> {
        let first = self.stage_names().first().cloned().unwrap_or_default();
        let created = d.actions.iter().filter_map(|a| match a {
            PipelineAction::CreateRelease(r) => Some((**r).clone()),
            _ => None,
        });
        self.releases.iter().cloned().chain(created).find(|r| {
            if stage == first {
                r.spec.source_images == *images
            } else {
                r.spec.images == *images
            }
        })
    }

    fn check(&self, d: &PipelineDecision) {
        for a in &d.actions {
            let PipelineAction::SetImages { stage, images } = a else {
                continue;
            };
            let rel = self
                .release_with_images(d, stage, images)
                .unwrap_or_else(|| panic!("{stage} given images of no release: {images:?}"));
            let name = rel.metadata.name.clone().unwrap_or_default();
            let status = d.releases.get(&name).cloned().unwrap_or_default();
            assert_ne!(
                status.verdict,
                Some(Verdict::Bad),
                "Bad {name} written into {stage}"
            );
            let spec = self
                .pipeline
                .spec
                .stages
                .iter()
                .position(|s| &s.name == stage)
                .expect("stage");
            let restore = status
                .stages
                .iter()
                .find(|s| &s.name == stage)
                .is_some_and(|s| s.phase == StagePhase::Verified);
            let after: Vec<String> = match &self.pipeline.spec.stages[spec].after {
                Some(a) => a.clone(),
                None => vec![self.pipeline.spec.stages[spec - 1].name.clone()],
            };
            for a in after {
                let verified = status
                    .stages
                    .iter()
                    .find(|s| s.name == a)
                    .is_some_and(|s| s.phase == StagePhase::Verified);
                assert!(
                    verified || restore,
                    "{name} written into {stage} but {a} has not verified it: {status:?}"
                );
            }
        }
    }

    fn apply(&mut self, d: &PipelineDecision) {
        for a in &d.actions {
            match a {
                PipelineAction::CreateRelease(r) => {
                    let mut r = (**r).clone();
                    r.metadata.creation_timestamp = Some(Time(self.now));
                    self.releases.push(r);
                }
                PipelineAction::SetImages { stage, images } => {
                    self.writes.push((stage.clone(), images.clone()));
                    let r = self.rollouts.get_mut(stage).expect("stage rollout");
                    let before = rollgate_engine::pipeline::rollout_images(r, &[]);
                    if let Some(spec) = r.spec.template.as_mut().and_then(|t| t.spec.as_mut()) {
                        for c in &mut spec.containers {
                            if let Some(i) = images.get(&c.name) {
                                c.image = Some(i.clone());
                            }
                        }
                    }
                    if rollgate_engine::pipeline::rollout_images(r, &[]) != before {
                        r.metadata.generation = r.metadata.generation.map(|g| g + 1);
                    }
                }
                PipelineAction::CreateVerification { stage, run } => {
                    let labels = run.metadata.labels.clone().unwrap_or_default();
                    self.runs
                        .entry(stage.clone())
                        .or_default()
                        .push(VerificationRun {
                            name: run.metadata.name.clone().unwrap_or_default(),
                            release: labels
                                .get(rollgate_engine::pipeline::RELEASE_LABEL)
                                .cloned()
                                .unwrap_or_default(),
                            attempt: labels
                                .get(rollgate_engine::pipeline::ATTEMPT_LABEL)
                                .and_then(|a| a.parse().ok())
                                .unwrap_or(0),
                            phase: AnalysisPhase::Running,
                        });
                }
            }
        }
        for r in &mut self.releases {
            if let Some(s) = d
                .releases
                .get(r.metadata.name.as_deref().unwrap_or_default())
            {
                r.status = Some(s.clone());
            }
        }
        self.pipeline.status = Some(d.status.clone());
    }

    // ----- what happens outside -----

    /// CI applies `image` to the first stage's Rollout.
    pub fn ci_apply(&mut self, image: &str) {
        let first = self.stage_names()[0].clone();
        let r = self.rollouts.get_mut(&first).expect("first");
        if let Some(c) = r
            .spec
            .template
            .as_mut()
            .and_then(|t| t.spec.as_mut())
            .and_then(|s| s.containers.first_mut())
        {
            c.image = Some(image.into());
        }
        r.metadata.generation = r.metadata.generation.map(|g| g + 1);
    }

    /// The stage's Rollout controller made its current template Healthy.
    pub fn healthy(&mut self, stage: &str) {
        set_healthy(self.rollouts.get_mut(stage).expect("stage"));
    }

    /// The stage's Rollout aborted its release.
    pub fn abort(&mut self, stage: &str, reason: AbortReason) {
        let r = self.rollouts.get_mut(stage).expect("stage");
        let g = r.metadata.generation;
        r.status = Some(
            serde_json::from_value(json!({
                "observedGeneration": g, "phase": "Degraded", "abort": true,
                "abortReason": reason, "message": "aborted: error-rate 0.2 > 0.05",
                "currentPodHash": format!("h{}", g.unwrap_or(0)), "stableRS": "h1"
            }))
            .expect("status"),
        );
    }

    /// The stage's Rollout is Degraded (pods unavailable) without an abort.
    pub fn degraded(&mut self, stage: &str) {
        let r = self.rollouts.get_mut(stage).expect("stage");
        if let Some(s) = r.status.as_mut() {
            s.phase = Some(RolloutPhase::Degraded);
        }
    }

    /// The ready pods of the first stage's current revision run `digest`.
    pub fn pods_run(&mut self, stage: &str, digest: &str) {
        self.digests.insert(
            stage.into(),
            [("web".to_string(), digest.to_string())].into(),
        );
    }

    pub fn set_run(&mut self, stage: &str, phase: AnalysisPhase) {
        if let Some(r) = self.runs.get_mut(stage).and_then(|r| r.last_mut()) {
            r.phase = phase;
        }
    }

    pub fn approve(&mut self, release: &str, stage: &str, who: &str, decision: Decision) {
        let n = self.approvals.len();
        self.approvals.push(Approval {
            metadata: ObjectMeta {
                name: Some(format!("a{n}")),
                namespace: Some("shop".into()),
                creation_timestamp: Some(Time(self.now)),
                ..Default::default()
            },
            spec: ApprovalSpec {
                release: release.into(),
                stage: stage.into(),
                decision,
                approver: who.into(),
                comment: None,
            },
        });
    }

    pub fn advance(&mut self, secs: i64) {
        self.now = self
            .now
            .checked_add(SignedDuration::from_secs(secs))
            .expect("time");
    }

    // ----- reading -----

    pub fn release_names(&self) -> Vec<String> {
        self.releases
            .iter()
            .filter_map(|r| r.metadata.name.clone())
            .collect()
    }

    pub fn release(&self, name: &str) -> &Release {
        self.releases
            .iter()
            .find(|r| r.metadata.name.as_deref() == Some(name))
            .expect("release")
    }

    pub fn phase(&self, release: &str, stage: &str) -> StagePhase {
        self.release(release)
            .status
            .as_ref()
            .and_then(|s| s.stages.iter().find(|x| x.name == stage))
            .map_or(StagePhase::Waiting, |s| s.phase)
    }

    pub fn message(&self, release: &str, stage: &str) -> String {
        self.release(release)
            .status
            .as_ref()
            .and_then(|s| s.stages.iter().find(|x| x.name == stage))
            .and_then(|s| s.message.clone())
            .unwrap_or_default()
    }

    pub fn verdict(&self, release: &str) -> Option<Verdict> {
        self.release(release)
            .status
            .as_ref()
            .and_then(|s| s.verdict)
    }

    /// The `web` image a stage's Rollout runs.
    pub fn image(&self, stage: &str) -> String {
        rollgate_engine::pipeline::rollout_images(&self.rollouts[stage], &["web".into()])
            .get("web")
            .cloned()
            .unwrap_or_default()
    }

    pub fn writes_into(&self, stage: &str) -> usize {
        self.writes.iter().filter(|(s, _)| s == stage).count()
    }

    pub fn reasons(&self) -> Vec<String> {
        self.last
            .events
            .iter()
            .map(|e| e.reason.to_string())
            .collect()
    }

    /// Records release N: CI applies `shop/web:N`, its pods run `digest(N)`, staging goes
    /// Healthy. Returns the release's name.
    pub fn release_n(&mut self, n: u32) -> String {
        self.ci_apply(&format!("shop/web:{n}"));
        self.step();
        self.healthy("staging");
        self.pods_run("staging", &digest(n));
        self.step();
        self.releases
            .last()
            .and_then(|r| r.metadata.name.clone())
            .expect("a release recorded")
    }
}
