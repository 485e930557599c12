//! Analysis points: building AnalysisRuns from templates and following their outcome.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use rollgate_api::labels::{
    ANALYSIS_KIND, ATTEMPT, EXPERIMENT_ANALYSIS, POD_TEMPLATE_HASH, ROLLOUT_NAME, STEP_INDEX,
};
use rollgate_api::{
    AnalysisArg, AnalysisPhase, AnalysisRun, AnalysisRunSpec, EventReason, PauseReason,
    RolloutAnalysis, RolloutAnalysisRunStatus,
};

use crate::action::Action;
use crate::context::Ctx;
use crate::measure::{ArgSource, HashSource};
use crate::message::Msg;
use crate::observed::{AnalysisKind, Observed};
use crate::replicasets::owner_reference;

/// Merges the referenced templates and the rollout's arguments into an AnalysisRun spec.
/// Rollout arguments override template arguments of the same name; `podTemplateHashValue`
/// is resolved to the stable or latest hash and `fieldRef` to the value of that field of the
/// Rollout (`metadata.name`, `metadata.labels['team']`, `spec.replicas`, ...); `secretKeyRef`
/// is left for the run's measurements to read (a Secret never goes into a run's spec).
/// Templates are looked up in `observed` (validation has already reported missing ones).
///
/// When a metric is `sequential` or `kayenta`, `baselineArgs` holds every argument resolved from
/// `podTemplateHashValue: Latest` once more, with the stable hash (the latest one while there
/// is no stable ReplicaSet): the baseline's rendering of its queries.
pub fn build_run_spec(
    analysis: &RolloutAnalysis,
    observed: &Observed,
    rollout: &rollgate_api::Rollout,
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
    let sequential = spec
        .metrics
        .iter()
        .any(|m| m.sequential.is_some() || m.kayenta.is_some());
    let mut baseline_args = Vec::new();
    spec.args = args
        .into_values()
        .map(|mut a| {
            // Validation has refused arguments that do not parse; one that still did not
            // would be left unresolved, and its measurements would fail naming it.
            let value = match crate::measure::arg_spec(&a.name, &a).map(|s| s.source) {
                Ok(ArgSource::PodTemplateHash(HashSource::Stable)) => {
                    Some(stable_hash.unwrap_or(latest_hash).to_string())
                }
                Ok(ArgSource::PodTemplateHash(HashSource::Latest)) => {
                    if sequential {
                        baseline_args.push(AnalysisArg {
                            name: a.name.clone(),
                            value: Some(stable_hash.unwrap_or(latest_hash).to_string()),
                            value_from: None,
                        });
                    }
                    Some(latest_hash.to_string())
                }
                Ok(ArgSource::FieldRef(path)) => field_value(rollout, &path),
                _ => None,
            };
            if let Some(value) = value {
                a.value = Some(value);
                a.value_from = None;
            }
            a
        })
        .collect();
    spec.baseline_args = baseline_args;
    spec
}

/// The value of a field of the Rollout named by a `fieldRef` path: dot-separated names, with
/// `['key']` for map keys (`metadata.labels['app.kubernetes.io/name']`). Strings as they are,
/// other scalars in their JSON form; `None` when absent or not a scalar.
pub fn field_value(rollout: &rollgate_api::Rollout, path: &str) -> Option<String> {
    let root = serde_json::to_value(rollout).ok()?;
    let mut node = &root;
    let mut rest = path.trim();
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("['") {
            let end = after.find("']")?;
            node = node.get(&after[..end])?;
            rest = &after[end + 2..];
        } else {
            rest = rest.strip_prefix('.').unwrap_or(rest);
            let end = rest.find(['.', '[']).unwrap_or(rest.len());
            node = node.get(&rest[..end])?;
            rest = &rest[end..];
        }
    }
    match node {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(_) | serde_json::Value::Bool(_) => Some(node.to_string()),
        _ => None,
    }
}

/// Follows (or starts) the AnalysisRun of one analysis point for the current revision and
/// returns its phase. `slot` is the status field that remembers the run's name; `step` is the
/// canary step index of an `analysis` step.
///
/// Without a slot (a new point, or the status write that named the run was lost), it takes
/// up the point's run still running, else the last one of this release attempt that already
/// finished (a run is never measured twice because a write was lost), else starts one.
pub fn follow(
    cx: &mut Ctx<'_>,
    kind: AnalysisKind,
    step: Option<i32>,
    analysis: &RolloutAnalysis,
    hash: &str,
    slot: &mut Option<RolloutAnalysisRunStatus>,
) -> (AnalysisPhase, String) {
    follow_with(cx, kind, step, None, analysis, hash, slot, true)
}

/// The analysis of a canary `experiment` step a run is for.
#[derive(Debug, Clone, Copy)]
pub struct ExperimentPoint<'a> {
    /// The analysis's name in the step.
    pub analysis: &'a str,
    /// The arguments as the baseline renders them (a `sequential` or `kayenta` metric's
    /// `baselineArgs`): those naming the experiment's canary templates, with the hash of its
    /// baseline (`specRef: stable`) template instead.
    pub baseline_args: &'a [AnalysisArg],
}

/// [`follow`] for an analysis of the canary `experiment` step `step`: one point per analysis
/// of the step. A retry is the experiment's to decide (it starts a new experiment).
pub fn follow_experiment(
    cx: &mut Ctx<'_>,
    step: i32,
    point: ExperimentPoint<'_>,
    analysis: &RolloutAnalysis,
    hash: &str,
    slot: &mut Option<RolloutAnalysisRunStatus>,
) -> (AnalysisPhase, String) {
    follow_with(
        cx,
        AnalysisKind::Experiment,
        Some(step),
        Some(point),
        analysis,
        hash,
        slot,
        true,
    )
}

/// [`follow`] for a point whose finished run was accepted and must be followed by a fresh
/// one (a background analysis promoted past its inconclusive result): a finished run is
/// never taken up, a running one is (the fresh run a lost write did not record).
pub fn follow_fresh(
    cx: &mut Ctx<'_>,
    kind: AnalysisKind,
    step: Option<i32>,
    analysis: &RolloutAnalysis,
    hash: &str,
    slot: &mut Option<RolloutAnalysisRunStatus>,
) -> (AnalysisPhase, String) {
    follow_with(cx, kind, step, None, analysis, hash, slot, false)
}

fn run_number(name: &str) -> usize {
    name.rsplit_once('-')
        .and_then(|(_, n)| n.parse().ok())
        .unwrap_or(0)
}

#[allow(clippy::too_many_arguments)]
fn follow_with(
    cx: &mut Ctx<'_>,
    kind: AnalysisKind,
    step: Option<i32>,
    experiment: Option<ExperimentPoint<'_>>,
    analysis: &RolloutAnalysis,
    hash: &str,
    slot: &mut Option<RolloutAnalysisRunStatus>,
    take_finished: bool,
) -> (AnalysisPhase, String) {
    let exp_analysis = experiment.map(|e| e.analysis);
    // `rollgate retry` after an analysis that could not measure: a new run measures again.
    if cx.release.retry_asked
        && exp_analysis.is_none()
        && cx.release.pause(PauseReason::AnalysisError).is_some()
        && slot
            .as_ref()
            .is_some_and(|s| s.status == AnalysisPhase::Error.to_string())
    {
        cx.release
            .pauses
            .retain(|p| p.reason != PauseReason::AnalysisError);
        cx.release.promoted = false;
        // A new attempt: the run that could not measure is not taken up again.
        cx.status.attempt = Some(cx.status.attempt.unwrap_or(0) + 1);
        let run = slot.take().map(|s| s.name).unwrap_or_default();
        cx.event(EventReason::AnalysisRetried, Msg::AnalysisRetried { run });
    }
    let runs = &cx.observed.analysis_runs;
    let attempt = cx.status.attempt;
    // The run of this point, when the status does not name it (the write that would have was
    // lost): a running one, or the last one of this attempt that already finished.
    let of_point = || {
        runs.iter().filter(|r| {
            r.kind == kind
                && r.step == step
                && r.hash == hash
                && r.experiment_analysis.as_deref() == exp_analysis
                && !r.terminating
        })
    };
    let known = slot
        .as_ref()
        .and_then(|s| runs.iter().find(|r| r.name == s.name))
        .or_else(|| of_point().find(|r| !r.phase.is_completed()))
        .or_else(|| {
            of_point()
                .filter(|r| take_finished && r.attempt.is_some() && r.attempt == attempt)
                .max_by_key(|r| run_number(&r.name))
        })
        .cloned();
    if let Some(run) = known {
        // As Argo (`rollout/analysis.go`): an Event when the run the status names (or a run
        // it names for the first time) has another phase than the status recorded.
        let previous = slot.as_ref().map(|s| (s.name.clone(), s.status.clone()));
        let changed = match &previous {
            None => true,
            Some((name, phase)) => *name == run.name && *phase != run.phase.to_string(),
        };
        if let (true, Some(reason)) = (changed, phase_event(run.phase)) {
            cx.event(
                reason,
                Msg::AnalysisPhaseChanged {
                    kind,
                    step,
                    run: run.name.clone(),
                    phase: run.phase,
                    previous: previous.map(|(_, phase)| phase),
                },
            );
        }
        *slot = Some(RolloutAnalysisRunStatus {
            name: run.name.clone(),
            status: run.phase.to_string(),
            message: run.message.clone(),
        });
        return (run.phase, run.name);
    }
    // One more than the highest number in use: counting the runs would reuse the name of a
    // run that still exists once an older one was deleted.
    let point = match (step, exp_analysis) {
        (Some(i), Some(a)) => format!("{}-{i}-{a}", kind.as_str()),
        (Some(i), None) => format!("{}-{i}", kind.as_str()),
        (None, _) => kind.as_str().to_string(),
    };
    let prefix = format!("{}-{hash}-{point}-", cx.name());
    let n = runs
        .iter()
        .filter_map(|r| r.name.strip_prefix(&prefix)?.parse::<usize>().ok())
        .max()
        .unwrap_or(0)
        + 1;
    let name = format!("{prefix}{n}");
    let mut spec = build_run_spec(
        analysis,
        cx.observed,
        cx.rollout,
        cx.status.stable_rs.as_deref(),
        hash,
    );
    // An experiment's baseline is its `specRef: stable` template, not the stable revision.
    if let Some(e) = experiment
        && spec
            .metrics
            .iter()
            .any(|m| m.sequential.is_some() || m.kayenta.is_some())
    {
        spec.baseline_args = e.baseline_args.to_vec();
    }
    let mut labels: BTreeMap<String, String> = [
        (ROLLOUT_NAME.to_string(), cx.name().to_string()),
        (POD_TEMPLATE_HASH.to_string(), hash.to_string()),
        (ANALYSIS_KIND.to_string(), kind.as_str().to_string()),
    ]
    .into();
    if let Some(i) = step {
        labels.insert(STEP_INDEX.to_string(), i.to_string());
    }
    if let Some(n) = attempt {
        labels.insert(ATTEMPT.to_string(), n.to_string());
    }
    if let Some(a) = exp_analysis {
        labels.insert(EXPERIMENT_ANALYSIS.to_string(), a.to_string());
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
    cx.created_runs
        .push((name.clone(), cx.actions.len(), cx.events.len()));
    cx.event(
        EventReason::AnalysisRunCreated,
        Msg::AnalysisStarted {
            kind,
            step,
            run: name.clone(),
        },
    );
    cx.actions.push(Action::CreateAnalysisRun(Box::new(run)));
    *slot = Some(RolloutAnalysisRunStatus {
        name: name.clone(),
        status: AnalysisPhase::Pending.to_string(),
        message: None,
    });
    (AnalysisPhase::Pending, name)
}

/// The Event Argo publishes on the Rollout when one of its AnalysisRuns reaches `phase`
/// (`"AnalysisRun" + phase`); none for Pending.
fn phase_event(phase: AnalysisPhase) -> Option<EventReason> {
    match phase {
        AnalysisPhase::Pending => None,
        AnalysisPhase::Running => Some(EventReason::AnalysisRunRunning),
        AnalysisPhase::Successful => Some(EventReason::AnalysisRunSuccessful),
        AnalysisPhase::Failed => Some(EventReason::AnalysisRunFailed),
        AnalysisPhase::Error => Some(EventReason::AnalysisRunError),
        AnalysisPhase::Inconclusive => Some(EventReason::AnalysisRunInconclusive),
    }
}

/// Takes back the creation of every run this reconcile started that is not in `keep` (its
/// action and its Event), so that the next reconcile does not have to terminate it: a release
/// that completed or aborted later in the same reconcile no longer follows it.
pub fn drop_created_except(cx: &mut Ctx<'_>, keep: &[&str]) {
    let dropped: Vec<(usize, usize)> = cx
        .created_runs
        .iter()
        .filter(|(name, _, _)| !keep.contains(&name.as_str()))
        .map(|(_, action, event)| (*action, *event))
        .collect();
    if dropped.is_empty() {
        return;
    }
    let mut i = 0;
    cx.actions.retain(|_| {
        i += 1;
        !dropped.iter().any(|(a, _)| *a == i - 1)
    });
    let mut i = 0;
    cx.events.retain(|_| {
        i += 1;
        !dropped.iter().any(|(_, e)| *e == i - 1)
    });
    cx.created_runs
        .retain(|(name, _, _)| keep.contains(&name.as_str()));
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

#[cfg(test)]
mod tests {
    use super::field_value;
    use rollgate_api::Rollout;

    #[test]
    fn field_refs_read_scalars_of_the_rollout() {
        let r: Rollout = serde_json::from_value(serde_json::json!({
            "apiVersion": "rollgate.dev/v1alpha1", "kind": "Rollout",
            "metadata": {"name": "web", "namespace": "shop",
                         "labels": {"app.kubernetes.io/name": "web-app", "team": "pay"}},
            "spec": {"replicas": 4, "strategy": {}}
        }))
        .expect("rollout");
        assert_eq!(field_value(&r, "metadata.name").as_deref(), Some("web"));
        assert_eq!(
            field_value(&r, "metadata.labels['app.kubernetes.io/name']").as_deref(),
            Some("web-app")
        );
        assert_eq!(
            field_value(&r, "metadata.labels.team").as_deref(),
            Some("pay")
        );
        assert_eq!(field_value(&r, "spec.replicas").as_deref(), Some("4"));
        assert_eq!(field_value(&r, "metadata.labels['missing']"), None);
        assert_eq!(field_value(&r, "metadata.labels"), None, "not a scalar");
        assert_eq!(field_value(&r, "metadata.labels['unterminated"), None);
    }
}
