//! The canary `experiment` step (Argo Rollouts' experiment step), run by the rollout itself:
//! there is no Experiment object.
//!
//! Step `i` of the release of hash `H` runs the experiment `<rollout>-<H>-<revision>-<i>`
//! (`-<attempt>` after a retry): one ReplicaSet per template, `<experiment>-<template>`, of the
//! stable or the release's pod template with the template's metadata, its own pod-template
//! hash (so its pods are measured apart from the revisions' and no Service of the rollout
//! selects them) and the labels [`EXPERIMENT_TEMPLATE`] / [`EXPERIMENT_RELEASE`]. Once every
//! one is available (within `progressDeadlineSeconds`, like any wait for pods) the experiment
//! is Running: its analyses start, `{{templates.<name>.podTemplateHash}}` in their arguments
//! standing for the ReplicaSets' hashes, and `duration` counts. As Argo's Experiment, it
//! succeeds once every `requiredForCompletion` analysis has succeeded (whatever the
//! duration), else once the duration has passed; with neither it runs until a human promotes
//! past the step. An analysis that fails aborts the release; one that is inconclusive or
//! cannot measure pauses it (a promotion accepts the experiment, `rollgate retry` after an
//! error runs a new one).
//!
//! Experiment ReplicaSets that are not the running experiment's are scaled to zero; once
//! empty they are deleted, except while the release that ran them is still in flight (they
//! stay, at zero, to be looked at).

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetSpec};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use rollgate_api::labels::{
    EXPERIMENT, EXPERIMENT_RELEASE, EXPERIMENT_TEMPLATE, POD_TEMPLATE_HASH, ROLLOUT_NAME,
};
use rollgate_api::{
    AnalysisArg, AnalysisPhase, AnalysisTemplateRef, ConditionReason, EventReason,
    ExperimentAnalysisStatus, ExperimentStatus, ExperimentTemplateStatus, PauseReason, PodMetadata,
    RolloutAnalysis, RolloutExperimentAnalysis, RolloutExperimentStep, RolloutPhase,
};

use crate::action::{Action, DeadlineChange};
use crate::analysis;
use crate::context::Ctx;
use crate::hash::pod_template_hash;
use crate::message::{AbortCause, Msg, Point, Waiting};
use crate::release::{Flow, pause_started, promoted_by_user, waiting_for_pods};
use crate::replicasets::owner_reference;
use crate::time::add_secs;
use crate::validate::{CanarySpec, Problem, Step, parse_duration_secs, problem};

/// Whose pod template an experiment's ReplicaSet runs (`specRef`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecRef {
    /// The stable ReplicaSet's.
    Stable,
    /// The release's (`spec.template`).
    Canary,
}

/// A validated `experiment` step.
#[derive(Debug, Clone, PartialEq)]
pub struct ExperimentSpec {
    /// `duration` in seconds, counted from when every ReplicaSet is available.
    pub duration: Option<i64>,
    /// The ReplicaSets to run.
    pub templates: Vec<ExperimentTemplate>,
    /// The analyses.
    pub analyses: Vec<ExperimentAnalysis>,
}

/// One validated experiment template.
#[derive(Debug, Clone, PartialEq)]
pub struct ExperimentTemplate {
    /// Its name.
    pub name: String,
    /// Whose pod template it runs.
    pub spec_ref: SpecRef,
    /// Its pods.
    pub replicas: i32,
    /// Labels and annotations added to its pods.
    pub metadata: PodMetadata,
    /// Its own selector, if it has one (else the rollout's).
    pub selector: Option<LabelSelector>,
}

/// One validated experiment analysis.
#[derive(Debug, Clone, PartialEq)]
pub struct ExperimentAnalysis {
    /// Its name in the step.
    pub name: String,
    /// The run it starts (`{{templates...}}` placeholders not yet replaced).
    pub analysis: RolloutAnalysis,
    /// `requiredForCompletion`.
    pub required: bool,
}

/// The analysis an experiment analysis runs, as the other analysis points write it.
pub fn analysis_of(a: &RolloutExperimentAnalysis) -> RolloutAnalysis {
    RolloutAnalysis {
        templates: vec![AnalysisTemplateRef {
            template_name: a.template_name.clone().unwrap_or_default(),
            cluster_scope: a.cluster_scope,
        }],
        args: a.args.clone(),
        ..Default::default()
    }
}

/// The analyses of every `experiment` step of a rollout (for the templates and Secrets the
/// controller reads).
pub fn analyses_of(rollout: &rollgate_api::Rollout) -> Vec<RolloutAnalysis> {
    rollout
        .spec
        .strategy
        .canary
        .iter()
        .flat_map(|c| c.steps.iter())
        .filter_map(|s| s.experiment.as_ref())
        .flat_map(|e| e.analyses.iter().map(analysis_of))
        .collect()
}

/// The `{{templates.<name>.<field>}}` placeholders of `text`, as `(name, field)`; `Err` with
/// the text after an unterminated `{{templates.`.
fn placeholders(text: &str) -> Result<Vec<(&str, &str)>, &str> {
    const OPEN: &str = "{{templates.";
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find(OPEN) {
        let after = &rest[at + OPEN.len()..];
        let Some(end) = after.find("}}") else {
            return Err(&rest[at..]);
        };
        let inner = &after[..end];
        let (name, field) = inner.rsplit_once('.').unwrap_or((inner, ""));
        out.push((name, field));
        rest = &after[end + 2..];
    }
    Ok(out)
}

/// Replaces `{{templates.<name>.podTemplateHash}}` by the hashes in `hashes`.
fn substitute(text: &str, hashes: &BTreeMap<String, String>) -> String {
    let mut out = text.to_string();
    for (name, hash) in hashes {
        out = out.replace(&format!("{{{{templates.{name}.podTemplateHash}}}}"), hash);
    }
    out
}

/// Validates an `experiment` step at `field` (`spec.strategy.canary.steps[i].experiment`).
/// `selected`: the label keys of the rollout's selector, which template metadata must not set.
pub(crate) fn validate(
    field: &str,
    e: &RolloutExperimentStep,
    rollout: &rollgate_api::Rollout,
    observed: &crate::observed::Observed,
    selected: &BTreeSet<&str>,
    problems: &mut Vec<Problem>,
) -> Option<Step> {
    let before = problems.len();
    let duration = match e.duration.as_ref().map(parse_duration_secs) {
        None => None,
        Some(Ok(secs)) if secs > 0 => Some(secs),
        Some(Ok(secs)) => {
            problems.push(problem(
                format!("{field}.duration"),
                format!("expected a duration above zero, got {secs}s"),
            ));
            None
        }
        Some(Err(why)) => {
            problems.push(problem(format!("{field}.duration"), why));
            None
        }
    };
    if e.templates.is_empty() {
        problems.push(problem(
            format!("{field}.templates"),
            "at least one template expected",
        ));
    }
    let mut templates = Vec::new();
    let mut names: BTreeSet<&str> = BTreeSet::new();
    for (j, t) in e.templates.iter().enumerate() {
        let f = format!("{field}.templates[{j}]");
        let name = t.name.as_deref().unwrap_or_default();
        check_name(&format!("{f}.name"), name, "template", &mut names, problems);
        let spec_ref = match t.spec_ref.as_deref() {
            Some("stable") => Some(SpecRef::Stable),
            Some("canary") => Some(SpecRef::Canary),
            Some(other) => {
                problems.push(problem(
                    format!("{f}.specRef"),
                    format!("expected stable or canary, got {other:?}"),
                ));
                None
            }
            None => {
                problems.push(problem(
                    format!("{f}.specRef"),
                    "required, expected stable or canary",
                ));
                None
            }
        };
        let replicas = t.replicas.unwrap_or(1);
        if replicas < 0 {
            problems.push(problem(
                format!("{f}.replicas"),
                format!("must be >= 0, got {replicas}"),
            ));
        }
        if t.weight.is_some() {
            problems.push(problem(
                format!("{f}.weight"),
                "traffic to experiment pods is not supported: Argo Rollouts routes it only \
                 through its SMI and ALB routers, rollgate routes through the Gateway API",
            ));
        }
        if t.service.is_some() {
            problems.push(problem(
                format!("{f}.service"),
                "a Service for experiment pods is not supported (Argo Rollouts makes one only \
                 for weighted experiments, see weight)",
            ));
        }
        let metadata = t.metadata.clone().unwrap_or_default();
        crate::metadata::check(&format!("{f}.metadata"), &metadata, selected, problems);
        if let Some(s) = &t.selector {
            let mut labels = rollout
                .spec
                .template
                .as_ref()
                .and_then(|t| t.metadata.as_ref())
                .and_then(|m| m.labels.clone())
                .unwrap_or_default();
            labels.extend(metadata.labels.clone());
            if s.match_expressions.as_ref().is_some_and(|e| !e.is_empty()) {
                problems.push(problem(
                    format!("{f}.selector.matchExpressions"),
                    "not supported: only matchLabels",
                ));
            }
            let wanted = s.match_labels.clone().unwrap_or_default();
            if wanted.is_empty() {
                problems.push(problem(
                    format!("{f}.selector"),
                    "a non-empty selector expected (it would select every pod)",
                ));
            }
            for (k, v) in &wanted {
                if labels.get(k) != Some(v) {
                    problems.push(problem(
                        format!("{f}.selector.matchLabels"),
                        format!(
                            "{k}={v} must also be a label of the template's pods \
                             (spec.template.metadata.labels and {f}.metadata.labels)"
                        ),
                    ));
                }
            }
        }
        if let Some(spec_ref) = spec_ref {
            templates.push(ExperimentTemplate {
                name: name.to_string(),
                spec_ref,
                replicas: replicas.max(0),
                metadata,
                selector: t.selector.clone(),
            });
        }
    }
    let mut analyses = Vec::new();
    let mut analysis_names: BTreeSet<&str> = BTreeSet::new();
    for (j, a) in e.analyses.iter().enumerate() {
        let f = format!("{field}.analyses[{j}]");
        let name = a.name.as_deref().unwrap_or_default();
        check_name(
            &format!("{f}.name"),
            name,
            "analysis",
            &mut analysis_names,
            problems,
        );
        if a.template_name.as_deref().is_none_or(str::is_empty) {
            problems.push(problem(
                format!("{f}.templateName"),
                "required, expected an AnalysisTemplate name",
            ));
        }
        for (k, arg) in a.args.iter().enumerate() {
            let Some(value) = arg.value.as_deref() else {
                continue;
            };
            match placeholders(value) {
                Err(rest) => problems.push(problem(
                    format!("{f}.args[{k}].value"),
                    format!("unterminated placeholder {rest:?}"),
                )),
                Ok(found) => {
                    for (t, what) in found {
                        if what != "podTemplateHash" || !names.contains(t) {
                            problems.push(problem(
                                format!("{f}.args[{k}].value"),
                                format!(
                                    "{{{{templates.{t}.{what}}}}}: expected \
                                     {{{{templates.<name>.podTemplateHash}}}} naming a template \
                                     of the step ({})",
                                    names.iter().copied().collect::<Vec<_>>().join(", ")
                                ),
                            ));
                        }
                    }
                }
            }
        }
        let analysis = analysis_of(a);
        // A judge that compares against a baseline needs the step's baseline template and an
        // argument naming a canary template (what the baseline's rendering replaces).
        let judged = observed
            .templates
            .get(&(
                a.cluster_scope.unwrap_or(false),
                a.template_name.clone().unwrap_or_default(),
            ))
            .is_some_and(|t| {
                t.metrics
                    .iter()
                    .any(|m| m.sequential.is_some() || m.kayenta.is_some())
            });
        let canary_named = a.args.iter().filter_map(|x| x.value.as_deref()).any(|v| {
            placeholders(v).is_ok_and(|found| {
                found.iter().any(|(t, _)| {
                    e.templates.iter().any(|x| {
                        x.name.as_deref() == Some(*t) && x.spec_ref.as_deref() == Some("canary")
                    })
                })
            })
        });
        let has_baseline = e
            .templates
            .iter()
            .any(|x| x.spec_ref.as_deref() == Some("stable"));
        if judged && !(canary_named && has_baseline) {
            problems.push(problem(
                format!("{f}.templateName"),
                "its sequential or kayenta metrics compare the canary with a baseline: the step \
                 needs a template with specRef: stable (the baseline) and an argument naming \
                 {{templates.<a specRef: canary template>.podTemplateHash}}",
            ));
        }
        // Template and argument checks, as for any analysis; the template reference is the
        // step's own `templateName`.
        let mut found = Vec::new();
        crate::validate::analysis_refs(&f, Some(&analysis), rollout, observed, &mut found);
        for mut p in found {
            p.field = p.field.replace(&format!("{f}.templates[0]"), &f);
            problems.push(p);
        }
        analyses.push(ExperimentAnalysis {
            name: name.to_string(),
            analysis,
            required: a.required_for_completion == Some(true),
        });
    }
    (problems.len() == before).then(|| {
        Step::Experiment(Box::new(ExperimentSpec {
            duration,
            templates,
            analyses,
        }))
    })
}

/// Checks the name of a template or an analysis of the step at `field`: present, a lower-case
/// DNS label (it goes into object names and label values), and not one of `names` (the
/// `kind`'s names so far, which it joins).
fn check_name<'a>(
    field: &str,
    name: &'a str,
    kind: &str,
    names: &mut BTreeSet<&'a str>,
    problems: &mut Vec<Problem>,
) {
    if name.is_empty() {
        problems.push(problem(
            field,
            "required, expected a name (a lower-case DNS label)",
        ));
    } else if !crate::validate::is_dns_label(name) {
        problems.push(problem(
            field,
            format!(
                "{name:?}: a lower-case DNS label expected (at most 63 of a-z, 0-9 and '-', \
                 starting and ending with a letter or digit)"
            ),
        ));
    } else if !names.insert(name) {
        problems.push(problem(
            field,
            format!("{name:?} is used by another {kind} of the step"),
        ));
    }
}

/// The name of a new experiment for step `i` of the release of `hash`: Argo's
/// `<rollout>-<hash>-<revision>-<step>`, unless an earlier experiment of that name is over (a
/// retry, or the step reached again after an abort and a retry): then `-<attempt>` is added,
/// as Argo adds a collision count. An experiment of that name still running is the one a lost
/// status write did not record: it is taken up.
fn new_name(cx: &Ctx<'_>, hash: &str, i: usize, retried: bool) -> String {
    let revision = cx.status.current_revision.unwrap_or(0);
    let base = format!("{}-{hash}-{revision}-{i}", cx.name());
    let mut sets = cx
        .observed
        .experiment_sets
        .iter()
        .filter(|s| s.experiment == base)
        .peekable();
    let free = sets.peek().is_none() || sets.any(|s| s.replicas > 0);
    if free && !retried {
        base
    } else {
        format!("{base}-{}", cx.status.attempt.unwrap_or(0))
    }
}

/// The ReplicaSet of template `t` of the experiment `experiment` of the release `release`,
/// made from `base`, and its pod-template hash.
fn build(
    cx: &Ctx<'_>,
    spec: &CanarySpec,
    experiment: &str,
    release: &str,
    t: &ExperimentTemplate,
    base: PodTemplateSpec,
) -> (ReplicaSet, String) {
    let mut template = base;
    let meta = template.metadata.get_or_insert_with(Default::default);
    let labels = meta.labels.get_or_insert_with(Default::default);
    labels.extend(t.metadata.labels.clone());
    labels.insert(EXPERIMENT_TEMPLATE.into(), t.name.clone());
    let annotations = meta.annotations.get_or_insert_with(Default::default);
    annotations.extend(t.metadata.annotations.clone());
    annotations.insert(EXPERIMENT.into(), experiment.into());
    let hash = pod_template_hash(&template);
    if let Some(l) = template.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
        l.insert(POD_TEMPLATE_HASH.into(), hash.clone());
    }
    let mut selector = t
        .selector
        .clone()
        .unwrap_or_else(|| spec.common.selector.clone());
    selector
        .match_labels
        .get_or_insert_with(Default::default)
        .insert(POD_TEMPLATE_HASH.into(), hash.clone());
    let rs = ReplicaSet {
        metadata: ObjectMeta {
            name: Some(format!("{experiment}-{}", t.name)),
            namespace: cx.rollout.metadata.namespace.clone(),
            labels: Some(
                [
                    (POD_TEMPLATE_HASH.to_string(), hash.clone()),
                    (ROLLOUT_NAME.to_string(), cx.name().to_string()),
                    (EXPERIMENT_TEMPLATE.to_string(), t.name.clone()),
                    (EXPERIMENT_RELEASE.to_string(), release.to_string()),
                ]
                .into(),
            ),
            annotations: Some([(EXPERIMENT.to_string(), experiment.to_string())].into()),
            owner_references: Some(vec![owner_reference(cx.rollout)]),
            ..Default::default()
        },
        spec: ReplicaSetSpec {
            replicas: Some(t.replicas),
            min_ready_seconds: Some(spec.common.min_ready_seconds),
            selector,
            template: Some(template),
        },
        status: None,
    };
    (rs, hash)
}

/// Runs the `experiment` step `i` (of `n`) of the release of `hash` over `stable`: `None` once
/// it succeeded (the step is done), else what the release does meanwhile.
pub(crate) fn run(
    cx: &mut Ctx<'_>,
    spec: &CanarySpec,
    e: &ExperimentSpec,
    i: usize,
    hash: &str,
    stable: &str,
) -> Option<Flow> {
    let n = spec.steps.len();
    let no = i + 1;
    let step = i32::try_from(i).unwrap_or(i32::MAX);
    let previous = cx
        .status
        .canary
        .as_mut()
        .and_then(|c| c.experiment.take())
        .filter(|x| x.step == step && x.name.starts_with(&format!("{}-{hash}-", cx.name())));
    // `rollgate retry` after an analysis that could not measure: a new experiment.
    let mut retried = false;
    if cx.release.retry_asked
        && cx.release.pause(PauseReason::AnalysisError).is_some()
        && let Some(p) = previous.as_ref()
        && let Some(failed) = p
            .analysis_runs
            .iter()
            .find(|r| r.run.status == AnalysisPhase::Error.to_string())
    {
        let run = failed.run.name.clone();
        cx.release
            .pauses
            .retain(|p| p.reason != PauseReason::AnalysisError);
        cx.release.promoted = false;
        cx.status.attempt = Some(cx.status.attempt.unwrap_or(0) + 1);
        cx.event(EventReason::AnalysisRetried, Msg::AnalysisRetried { run });
        retried = true;
    }
    let mut st = match previous.filter(|_| !retried) {
        Some(p) => p,
        None => ExperimentStatus {
            name: new_name(cx, hash, i, retried),
            step,
            phase: AnalysisPhase::Pending.to_string(),
            ..Default::default()
        },
    };
    let name = st.name.clone();
    let before = st.phase.clone();

    let sets = replica_sets(cx, spec, e, &mut st, hash, stable);
    let keep = |cx: &mut Ctx<'_>, st: ExperimentStatus| {
        if let Some(c) = cx.status.canary.as_mut() {
            c.current_experiment = Some(st.name.clone());
            c.experiment = Some(st);
        }
    };

    // Pending: every ReplicaSet available first.
    let available_at = match st.available_at.as_ref().map(|t| t.0) {
        Some(at) => at,
        None if sets.missing => {
            keep(cx, st);
            let waiting = Waiting::Experiment {
                no,
                of: n,
                experiment: name,
                ready: sets.ready,
                replicas: sets.wanted,
            };
            return Some(waiting_for_pods(cx, &spec.common, waiting, true));
        }
        None => {
            let at = Timestamp::from_second(cx.now.as_second()).unwrap_or(cx.now);
            st.available_at = Some(Time(at));
            at
        }
    };

    // Running: the analyses.
    let promoted = promoted_by_user(cx);
    let Verdicts {
        failed,
        error,
        inconclusive,
        required,
        blind,
    } = analyses(cx, e, &mut st, &sets.hashes, step, hash);
    let set_phase = |cx: &mut Ctx<'_>,
                     st: &mut ExperimentStatus,
                     phase: AnalysisPhase,
                     by: Option<(String, String)>| {
        st.phase = phase.to_string();
        if before != st.phase {
            let reason = match phase {
                AnalysisPhase::Pending | AnalysisPhase::Running => EventReason::ExperimentRunning,
                AnalysisPhase::Successful => EventReason::ExperimentSuccessful,
                AnalysisPhase::Failed => EventReason::ExperimentFailed,
                AnalysisPhase::Error => EventReason::ExperimentError,
                AnalysisPhase::Inconclusive => EventReason::ExperimentInconclusive,
            };
            cx.event(
                reason,
                Msg::ExperimentPhase {
                    experiment: st.name.clone(),
                    phase,
                    by,
                },
            );
        }
    };

    if let Some((analysis, run, detail)) = failed {
        set_phase(
            cx,
            &mut st,
            AnalysisPhase::Failed,
            Some((analysis.clone(), run.clone())),
        );
        keep(cx, st);
        return Some(Flow::Abort(AbortCause::Analysis {
            point: Point::Experiment {
                no,
                of: n,
                analysis,
            },
            run,
            phase: AnalysisPhase::Failed,
            detail,
        }));
    }
    let held = match (error, inconclusive) {
        (Some(who), _) => Some((AnalysisPhase::Error, who)),
        (None, Some(who)) => Some((AnalysisPhase::Inconclusive, who)),
        (None, None) => None,
    };
    if let Some((phase, (analysis, run, detail))) = held {
        if promoted {
            // A human accepted the experiment as it is.
            set_phase(cx, &mut st, AnalysisPhase::Successful, None);
            forget(cx);
            return None;
        }
        set_phase(cx, &mut st, phase, Some((analysis.clone(), run.clone())));
        let point = Point::Experiment {
            no,
            of: n,
            analysis,
        };
        let rollout = cx.name().to_string();
        let msg = if phase == AnalysisPhase::Error {
            pause_started(cx, PauseReason::AnalysisError);
            Msg::AnalysisErrorPause {
                point,
                run,
                detail,
                rollout,
            }
        } else {
            pause_started(cx, PauseReason::InconclusiveExperiment);
            Msg::InconclusivePause {
                point,
                run,
                detail,
                rollout,
            }
        };
        keep(cx, st);
        cx.set_outcome(RolloutPhase::Paused, msg, ConditionReason::RolloutPaused);
        return Some(Flow::Wait);
    }
    // Argo: the required analyses decide when there are any; else the duration; else a human.
    let until = e.duration.map(|d| add_secs(available_at, d));
    let due = if e.analyses.iter().any(|a| a.required) {
        required.is_empty()
    } else {
        until.is_some_and(|u| cx.now >= u)
    };
    // rollgate's rule beyond Argo's: an analysis that cannot measure (an unreachable metric
    // source) is no evidence, so the experiment does not end on its duration while one of its
    // analyses is blind; that analysis measures again, or its run ends in Error (a pause).
    let done = due && blind.is_none();
    if done {
        set_phase(cx, &mut st, AnalysisPhase::Successful, None);
        forget(cx);
        return None;
    }
    set_phase(cx, &mut st, AnalysisPhase::Running, None);
    let waiting = until.filter(|_| required.is_empty() && !due);
    if let Some(at) = waiting {
        cx.wake_at(at);
    }
    keep(cx, st);
    cx.set_outcome(
        RolloutPhase::Progressing,
        Msg::ExperimentRunning {
            no,
            of: n,
            experiment: name,
            required,
            until: waiting,
            blind: blind.filter(|_| due),
            rollout: cx.name().to_string(),
        },
        ConditionReason::ExperimentRunning,
    );
    Some(Flow::Wait)
}

/// What the experiment's ReplicaSets look like after [`replica_sets`].
struct Sets {
    /// Pod-template hash per template name.
    hashes: BTreeMap<String, String>,
    /// Pods available (up to each template's replicas).
    ready: i32,
    /// Pods wanted.
    wanted: i32,
    /// True while a ReplicaSet is missing, resized or not fully available.
    missing: bool,
}

/// Creates (or resizes) the experiment's ReplicaSets and records them in `st`.
fn replica_sets(
    cx: &mut Ctx<'_>,
    spec: &CanarySpec,
    e: &ExperimentSpec,
    st: &mut ExperimentStatus,
    hash: &str,
    stable: &str,
) -> Sets {
    let name = st.name.clone();
    let mut created = Vec::new();
    let mut hashes = BTreeMap::new();
    let mut templates = Vec::new();
    let (mut ready, mut wanted, mut missing) = (0, 0, false);
    for t in &e.templates {
        let base = match t.spec_ref {
            SpecRef::Canary => Some(spec.common.template.clone()),
            SpecRef::Stable => cx
                .observed
                .replica_set(stable)
                .and_then(|rs| rs.template.as_deref().cloned()),
        };
        let Some(base) = base else {
            // The stable ReplicaSet is gone: nothing to copy (waits, within the deadline).
            missing = true;
            wanted += t.replicas;
            continue;
        };
        let (rs, h) = build(cx, spec, &name, hash, t, base);
        let rs_name = rs.metadata.name.clone().unwrap_or_default();
        hashes.insert(t.name.clone(), h.clone());
        templates.push(ExperimentTemplateStatus {
            name: t.name.clone(),
            replica_set: rs_name.clone(),
            pod_template_hash: h,
        });
        wanted += t.replicas;
        let observed = cx.observed;
        match observed.experiment_sets.iter().find(|s| s.name == rs_name) {
            None => {
                missing = true;
                created.push(rs_name);
                cx.actions.push(Action::CreateReplicaSet(Box::new(rs)));
            }
            Some(s) => {
                ready += s.ready.min(s.available).min(t.replicas);
                if !s.is_available() {
                    missing = true;
                }
                if s.replicas != t.replicas {
                    missing = true;
                    cx.event(
                        EventReason::ScalingReplicaSet,
                        Msg::ReplicaSetScaled {
                            rs: s.name.clone(),
                            from: s.replicas,
                            to: t.replicas,
                        },
                    );
                    cx.actions.push(Action::UpdateReplicaSet {
                        name: s.name.clone(),
                        replicas: Some(t.replicas),
                        deadline: DeadlineChange::Keep,
                        revision: None,
                    });
                }
            }
        }
    }
    st.templates = templates;
    if !created.is_empty() {
        cx.event(
            EventReason::ExperimentCreated,
            Msg::ExperimentCreated {
                experiment: name.clone(),
                replica_sets: created,
            },
        );
    }
    Sets {
        hashes,
        ready,
        wanted,
        missing,
    }
}

/// The analyses' outcome: the first one Failed, in Error, Inconclusive (name, run, message),
/// and the required ones not done yet.
struct Verdicts {
    failed: Option<(String, String, Option<String>)>,
    error: Option<(String, String, Option<String>)>,
    inconclusive: Option<(String, String, Option<String>)>,
    required: Vec<String>,
    /// An unfinished analysis whose latest measurements could not measure.
    blind: Option<String>,
}

/// Follows (or starts) every analysis of the experiment, `{{templates.<name>.podTemplateHash}}`
/// replaced by `hashes`, and records the runs in `st`.
fn analyses(
    cx: &mut Ctx<'_>,
    e: &ExperimentSpec,
    st: &mut ExperimentStatus,
    hashes: &BTreeMap<String, String>,
    step: i32,
    hash: &str,
) -> Verdicts {
    let mut failed = None;
    let mut blind = None;
    let mut error = None;
    let mut inconclusive = None;
    let mut required = Vec::new();
    // The baseline's rendering: the canary templates' hashes replaced by the (first)
    // baseline template's, for `sequential` and `kayenta` metrics.
    let baseline_hashes: Option<BTreeMap<String, String>> = e
        .templates
        .iter()
        .find(|t| t.spec_ref == SpecRef::Stable)
        .and_then(|b| hashes.get(&b.name))
        .map(|b| {
            let mut h = hashes.clone();
            for t in e.templates.iter().filter(|t| t.spec_ref == SpecRef::Canary) {
                h.insert(t.name.clone(), b.clone());
            }
            h
        });
    for a in &e.analyses {
        let mut analysis = a.analysis.clone();
        let mut baseline_args = Vec::new();
        for arg in &mut analysis.args {
            if let Some(v) = arg.value.as_mut() {
                let canary = substitute(v, hashes);
                if let Some(b) = &baseline_hashes {
                    let baseline = substitute(v, b);
                    if baseline != canary {
                        baseline_args.push(AnalysisArg {
                            name: arg.name.clone(),
                            value: Some(baseline),
                            value_from: None,
                        });
                    }
                }
                *v = canary;
            }
        }
        let point = analysis::ExperimentPoint {
            analysis: &a.name,
            baseline_args: &baseline_args,
        };
        let mut slot = st
            .analysis_runs
            .iter()
            .find(|r| r.analysis == a.name)
            .map(|r| r.run.clone());
        let (phase, run) = analysis::follow_experiment(cx, step, point, &analysis, hash, &mut slot);
        let detail = slot.as_ref().and_then(|s| s.message.clone());
        if !phase.is_completed()
            && blind.is_none()
            && cx
                .observed
                .analysis_runs
                .iter()
                .any(|r| r.name == run && r.measuring_errors)
        {
            blind = Some(a.name.clone());
        }
        st.analysis_runs.retain(|r| r.analysis != a.name);
        if let Some(s) = slot {
            st.analysis_runs.push(ExperimentAnalysisStatus {
                analysis: a.name.clone(),
                run: s,
            });
        }
        let who = (a.name.clone(), run, detail);
        match phase {
            AnalysisPhase::Failed => {
                failed.get_or_insert(who);
            }
            AnalysisPhase::Error => {
                error.get_or_insert(who);
            }
            AnalysisPhase::Inconclusive => {
                inconclusive.get_or_insert(who);
            }
            AnalysisPhase::Successful => {}
            AnalysisPhase::Pending | AnalysisPhase::Running => {
                if a.required {
                    required.push(a.name.clone());
                }
            }
        }
    }
    st.analysis_runs.sort_by(|x, y| x.analysis.cmp(&y.analysis));

    Verdicts {
        failed,
        error,
        inconclusive,
        required,
        blind,
    }
}

/// The names of the runs of the running experiment (kept; every other run is terminated).
pub(crate) fn runs(cx: &Ctx<'_>) -> Vec<String> {
    cx.status
        .canary
        .as_ref()
        .and_then(|c| c.experiment.as_ref())
        .map(|x| x.analysis_runs.iter().map(|r| r.run.name.clone()).collect())
        .unwrap_or_default()
}

/// Experiment ReplicaSets that are not the running experiment's: scaled to zero, and deleted
/// once they have no pod, unless the release of `hash` that ran them is still in flight (then
/// they stay, at zero).
pub(crate) fn clean_up(cx: &mut Ctx<'_>, hash: &str) {
    let running = cx
        .status
        .canary
        .as_ref()
        .and_then(|c| c.experiment.as_ref())
        .map(|x| x.name.clone());
    let in_flight = cx.status.stable_rs.as_deref() != Some(hash);
    let observed = cx.observed;
    for s in &observed.experiment_sets {
        if running.as_deref() == Some(s.experiment.as_str()) {
            continue;
        }
        let kept = in_flight && s.release == hash;
        if s.pods == 0 && !kept {
            cx.actions.push(Action::DeleteReplicaSet {
                name: s.name.clone(),
            });
        } else if s.replicas > 0 {
            cx.event(
                EventReason::ScalingReplicaSet,
                Msg::ReplicaSetScaled {
                    rs: s.name.clone(),
                    from: s.replicas,
                    to: 0,
                },
            );
            cx.actions.push(Action::UpdateReplicaSet {
                name: s.name.clone(),
                replicas: Some(0),
                deadline: DeadlineChange::Keep,
                revision: None,
            });
        }
    }
}

/// Drops the experiment from the status (its step is over, or the release is not going on).
pub(crate) fn forget(cx: &mut Ctx<'_>) {
    if let Some(c) = cx.status.canary.as_mut() {
        c.experiment = None;
        c.current_experiment = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_found_and_replaced() {
        let text = "{{templates.baseline.podTemplateHash}}|{{templates.canary.podTemplateHash}}";
        assert_eq!(
            placeholders(text),
            Ok(vec![
                ("baseline", "podTemplateHash"),
                ("canary", "podTemplateHash")
            ])
        );
        assert_eq!(placeholders("x {{templates.a"), Err("{{templates.a"));
        assert_eq!(placeholders("{{args.x}}"), Ok(vec![]));
        let hashes: BTreeMap<String, String> = [
            ("baseline".to_string(), "b1".to_string()),
            ("canary".to_string(), "c1".to_string()),
        ]
        .into();
        assert_eq!(substitute(text, &hashes), "b1|c1");
    }
}
