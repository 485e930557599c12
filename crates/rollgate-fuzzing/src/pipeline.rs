//! `pipeline`: a PromotionPipeline validated (stages, gates, promotion windows) and decided
//! by the engine for a few rounds, from its Releases, Approvals and stage Rollouts.

use std::collections::BTreeMap;

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use rollgate_api::{AnalysisPhase, AnalysisRun, Approval, PromotionPipeline, Release, Rollout};
use rollgate_engine::pipeline::{
    ATTEMPT_LABEL, ObservedStage, PipelineAction, PipelineInput, RELEASE_LABEL, STAGE_LABEL,
    StageView, ValidPipeline, VerificationRun,
};
use serde_json::Value;

use crate::input::{documents, kind, now, text};

/// Pipeline decisions in a row.
const ROUNDS: usize = 3;

/// Instants the windows of each stage are evaluated at, from [`now`], in hours.
const WINDOW_PROBES: [i64; 4] = [0, 7, 30, 24 * 40];

/// The input: YAML documents or one JSON object. The first `PromotionPipeline` is decided
/// (the others only claim its stages); `Release`, `Approval`, `Rollout` (the stages') and
/// `AnalysisRun` documents (verification runs, by their rollgate labels) are what the
/// controller read. A stage in another cluster whose Rollout is not among the documents is
/// unreachable.
///
/// Between rounds the decision is applied: releases created, release and pipeline statuses
/// written (each must encode and decode again), images set in the stage Rollouts.
pub fn pipeline(data: &[u8]) {
    let Some(text) = text(data) else { return };
    let docs = documents(text);
    let all: Vec<PromotionPipeline> = of_kind(&docs, "PromotionPipeline");
    let Some(mut pipeline) = all.first().cloned() else {
        return;
    };
    if pipeline.metadata.namespace.is_none() {
        pipeline.metadata.namespace = Some("default".into());
    }
    let Ok(valid) = rollgate_engine::pipeline::validate(&pipeline) else {
        return;
    };
    for stage in &valid.stages {
        for hours in WINDOW_PROBES {
            let at = now()
                .checked_add(SignedDuration::from_hours(hours))
                .unwrap_or(Timestamp::MAX);
            let _ = stage.windows.state(at);
        }
    }
    let claims = rollgate_engine::pipeline::claims(&pipeline, &all);
    let mut releases: Vec<Release> = of_kind(&docs, "Release");
    let approvals: Vec<Approval> = of_kind(&docs, "Approval");
    let mut rollouts: Vec<Rollout> = of_kind(&docs, "Rollout");
    let runs: Vec<AnalysisRun> = of_kind(&docs, "AnalysisRun");
    let mut at = now();
    for _ in 0..ROUNDS {
        let stages = observe(&valid, &rollouts, &runs);
        let decision = rollgate_engine::pipeline::reconcile(PipelineInput {
            pipeline: &pipeline,
            releases: &releases,
            approvals: &approvals,
            stages: &stages,
            claims: &claims,
            now: at,
        });
        for action in decision.actions {
            match action {
                PipelineAction::CreateRelease(r) => releases.push(*r),
                PipelineAction::SetImages { stage, images } => {
                    set_images(&valid, &mut rollouts, &stage, &images);
                }
                PipelineAction::CreateVerification { .. } => {}
            }
        }
        for r in &mut releases {
            if let Some(s) = r
                .metadata
                .name
                .as_ref()
                .and_then(|n| decision.releases.get(n))
            {
                r.status = Some(round_trip(s, "a Release status"));
            }
        }
        pipeline.status = Some(round_trip(&decision.status, "a PromotionPipeline status"));
        let step = decision
            .requeue_after
            .and_then(|d| SignedDuration::try_from(d).ok())
            .unwrap_or(SignedDuration::from_mins(1));
        at = at.checked_add(step).unwrap_or(Timestamp::MAX);
    }
}

/// The documents of `kind` that decode as `T`.
fn of_kind<T: serde::de::DeserializeOwned>(docs: &[Value], want: &str) -> Vec<T> {
    docs.iter()
        .filter(|d| kind(d) == want)
        .filter_map(|d| rollgate_api::decode::decode(d).ok())
        .collect()
}

/// `value` encoded and decoded again, as a status is written and read back.
fn round_trip<T: serde::Serialize + serde::de::DeserializeOwned>(value: &T, what: &str) -> T {
    let encoded = match serde_json::to_value(value) {
        Ok(v) => v,
        Err(e) => panic!("{what} does not encode: {e}"),
    };
    match rollgate_api::decode::decode(&encoded) {
        Ok(v) => v,
        Err(e) => panic!("{what} written by the engine does not decode again: {e}"),
    }
}

/// Each stage as the controller would read it.
fn observe(
    valid: &ValidPipeline,
    rollouts: &[Rollout],
    runs: &[AnalysisRun],
) -> BTreeMap<String, ObservedStage> {
    valid
        .stages
        .iter()
        .map(|stage| {
            let rollout = find(rollouts, &stage.namespace, &stage.rollout).cloned();
            let observed = if rollout.is_none() && stage.cluster.is_some() {
                ObservedStage::Unreachable("cannot reach the stage's cluster".into())
            } else {
                let running_digests = rollout
                    .as_ref()
                    .map(|r| {
                        rollgate_engine::pipeline::rollout_images(r, &valid.containers)
                            .into_iter()
                            .filter_map(|(c, image)| {
                                let (_, digest) = image.split_once('@')?;
                                Some((c, digest.to_string()))
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                ObservedStage::Read(Box::new(StageView {
                    rollout,
                    running_digests,
                    runs: verification_runs(runs, &stage.name),
                    templates: BTreeMap::new(),
                }))
            };
            (stage.name.clone(), observed)
        })
        .collect()
}

fn find<'r>(rollouts: &'r [Rollout], namespace: &str, name: &str) -> Option<&'r Rollout> {
    rollouts.iter().find(|r| {
        r.metadata.name.as_deref() == Some(name)
            && r.metadata.namespace.as_deref().unwrap_or(namespace) == namespace
    })
}

/// The verification runs of a stage, by their labels.
fn verification_runs(runs: &[AnalysisRun], stage: &str) -> Vec<VerificationRun> {
    runs.iter()
        .filter_map(|r| {
            let labels = r.metadata.labels.as_ref()?;
            if labels.get(STAGE_LABEL).map(String::as_str) != Some(stage) {
                return None;
            }
            Some(VerificationRun {
                name: r.metadata.name.clone().unwrap_or_default(),
                release: labels.get(RELEASE_LABEL)?.clone(),
                attempt: labels.get(ATTEMPT_LABEL)?.parse().ok()?,
                phase: r
                    .status
                    .as_ref()
                    .and_then(|s| s.phase)
                    .unwrap_or(AnalysisPhase::Pending),
            })
        })
        .collect()
}

/// Writes `images` into the stage's Rollout, as the promoter's image patch does.
fn set_images(
    valid: &ValidPipeline,
    rollouts: &mut [Rollout],
    stage: &str,
    images: &BTreeMap<String, String>,
) {
    let Some(stage) = valid.stages.iter().find(|s| s.name == stage) else {
        return;
    };
    let Some(rollout) = rollouts.iter_mut().find(|r| {
        r.metadata.name.as_deref() == Some(stage.rollout.as_str())
            && r.metadata.namespace.as_deref().unwrap_or(&stage.namespace) == stage.namespace
    }) else {
        return;
    };
    let containers = rollout
        .spec
        .template
        .as_mut()
        .and_then(|t| t.spec.as_mut())
        .map(|s| s.containers.iter_mut());
    for c in containers.into_iter().flatten() {
        if let Some(image) = images.get(&c.name) {
            c.image = Some(image.clone());
        }
    }
}
