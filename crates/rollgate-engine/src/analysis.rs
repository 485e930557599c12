//! Analysis points: building AnalysisRuns from templates and following their outcome.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use rollgate_api::labels::{ANALYSIS_KIND, POD_TEMPLATE_HASH, ROLLOUT_NAME, STEP_INDEX};
use rollgate_api::{
    AnalysisArg, AnalysisPhase, AnalysisRun, AnalysisRunSpec, RolloutAnalysis,
    RolloutAnalysisRunStatus,
};

use crate::action::Action;
use crate::context::Ctx;
use crate::observed::{AnalysisKind, Observed};
use crate::replicasets::owner_reference;

/// Merges the referenced templates and the rollout's arguments into an AnalysisRun spec.
/// Rollout arguments override template arguments of the same name; `podTemplateHashValue`
/// is resolved to the stable or latest hash. Templates are looked up in `observed` (validation
/// has already reported missing ones).
pub fn build_run_spec(
    analysis: &RolloutAnalysis,
    observed: &Observed,
    stable_hash: Option<&str>,
    latest_hash: &str,
) -> AnalysisRunSpec {
    let mut spec = AnalysisRunSpec::default();
    let mut args: BTreeMap<String, AnalysisArg> = BTreeMap::new();
    for t in &analysis.templates {
        let key = (t.cluster_scope.unwrap_or(false), t.template_name.clone());
        if let Some(template) = observed.templates.get(&key) {
            spec.metrics.extend(template.metrics.iter().cloned());
            spec.dry_run.extend(template.dry_run.iter().cloned());
            spec.measurement_retention
                .extend(template.measurement_retention.iter().cloned());
            for a in &template.args {
                args.entry(a.name.clone()).or_insert_with(|| a.clone());
            }
        }
    }
    for a in &analysis.args {
        args.insert(a.name.clone(), a.clone());
    }
    spec.dry_run.extend(analysis.dry_run.iter().cloned());
    spec.measurement_retention
        .extend(analysis.measurement_retention.iter().cloned());
    spec.args = args
        .into_values()
        .map(|mut a| {
            let hash = a
                .value_from
                .as_ref()
                .and_then(|v| v.pod_template_hash_value.as_deref())
                .map(|which| match which {
                    "Stable" => stable_hash.unwrap_or(latest_hash).to_string(),
                    _ => latest_hash.to_string(),
                });
            if let Some(hash) = hash {
                a.value = Some(hash);
                a.value_from = None;
            }
            a
        })
        .collect();
    spec
}

/// Follows (or starts) the AnalysisRun of one analysis point for the current revision and
/// returns its phase. `slot` is the status field that remembers the run's name; `step` is the
/// canary step index of an `analysis` step.
pub fn follow(
    cx: &mut Ctx<'_>,
    kind: AnalysisKind,
    step: Option<i32>,
    analysis: &RolloutAnalysis,
    hash: &str,
    slot: &mut Option<RolloutAnalysisRunStatus>,
) -> (AnalysisPhase, String) {
    // `rollgate retry` after an analysis that could not measure: a new run measures again.
    if cx.retry
        && let Some(pos) = cx
            .status
            .pause_conditions
            .iter()
            .position(|p| p.reason == crate::release::PAUSE_ANALYSIS_ERROR)
        && slot
            .as_ref()
            .is_some_and(|s| s.status == AnalysisPhase::Error.to_string())
    {
        cx.status.pause_conditions.remove(pos);
        if cx.status.pause_conditions.is_empty() {
            cx.status.controller_pause = None;
        }
        let old = slot.take().map(|s| s.name).unwrap_or_default();
        cx.event(
            false,
            "AnalysisRetried",
            format!("Measuring again: {old} could not measure"),
        );
    }
    let runs = &cx.observed.analysis_runs;
    let known = slot
        .as_ref()
        .and_then(|s| runs.iter().find(|r| r.name == s.name))
        .or_else(|| {
            runs.iter().find(|r| {
                r.kind == kind
                    && r.step == step
                    && r.hash == hash
                    && !r.phase.is_completed()
                    && !r.terminating
            })
        })
        .cloned();
    if let Some(run) = known {
        *slot = Some(RolloutAnalysisRunStatus {
            name: run.name.clone(),
            status: run.phase.to_string(),
            message: run.message.clone(),
        });
        return (run.phase, run.name);
    }
    // One more than the highest number in use: counting the runs would reuse the name of a
    // run that still exists once an older one was deleted.
    let point = match step {
        Some(i) => format!("{}-{i}", kind.as_str()),
        None => kind.as_str().to_string(),
    };
    let prefix = format!("{}-{hash}-{point}-", cx.name());
    let n = runs
        .iter()
        .filter_map(|r| r.name.strip_prefix(&prefix)?.parse::<usize>().ok())
        .max()
        .unwrap_or(0)
        + 1;
    let name = format!("{prefix}{n}");
    let spec = build_run_spec(analysis, cx.observed, cx.status.stable_rs.as_deref(), hash);
    let mut labels: BTreeMap<String, String> = [
        (ROLLOUT_NAME.to_string(), cx.name().to_string()),
        (POD_TEMPLATE_HASH.to_string(), hash.to_string()),
        (ANALYSIS_KIND.to_string(), kind.as_str().to_string()),
    ]
    .into();
    if let Some(i) = step {
        labels.insert(STEP_INDEX.to_string(), i.to_string());
    }
    let run = AnalysisRun {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: cx.rollout.metadata.namespace.clone(),
            labels: Some(labels),
            owner_references: Some(vec![owner_reference(cx.rollout)]),
            ..Default::default()
        },
        spec,
        status: None,
    };
    cx.event(
        false,
        "AnalysisRunCreated",
        format!("Started {} analysis {name}", point),
    );
    cx.actions.push(Action::CreateAnalysisRun(Box::new(run)));
    *slot = Some(RolloutAnalysisRunStatus {
        name: name.clone(),
        status: AnalysisPhase::Pending.to_string(),
        message: None,
    });
    (AnalysisPhase::Pending, name)
}

/// Asks every unfinished run not in `keep` to terminate.
pub fn terminate_others(cx: &mut Ctx<'_>, keep: &[&str]) {
    let stale: Vec<String> = cx
        .observed
        .analysis_runs
        .iter()
        .filter(|r| !r.phase.is_completed() && !r.terminating && !keep.contains(&r.name.as_str()))
        .map(|r| r.name.clone())
        .collect();
    for name in stale {
        cx.actions.push(Action::TerminateAnalysisRun { name });
    }
}
