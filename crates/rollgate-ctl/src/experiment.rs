//! The canary `experiment` step as rollgate-ctl sees it: telling an experiment's ReplicaSets
//! and AnalysisRuns from a revision's, grouping them by experiment for the tree of
//! `rollgate get rollout`, and the header lines of the running experiment.
//!
//! An experiment's ReplicaSets carry the label [`EXPERIMENT_TEMPLATE`], the hash of the release
//! that ran them ([`EXPERIMENT_RELEASE`]) and the experiment's name ([`EXPERIMENT`], an
//! annotation). They run copies of the stable or the release's pod template but are never
//! revisions of the rollout: nothing that lists revisions (the tree, `undo`) may count them.
//! An experiment's AnalysisRuns carry the release's pod-template hash, the analysis kind
//! `experiment` and the analysis's name ([`EXPERIMENT_ANALYSIS`]).

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use rollgate_api::labels::{
    ANALYSIS_KIND, EXPERIMENT, EXPERIMENT_ANALYSIS, EXPERIMENT_RELEASE, EXPERIMENT_TEMPLATE,
    POD_TEMPLATE_HASH, STEP_INDEX,
};
use rollgate_api::{AnalysisPhase, AnalysisRun, ExperimentStatus, Rollout, RolloutExperimentStep};

/// The [`ANALYSIS_KIND`] label value of an experiment's AnalysisRuns.
const EXPERIMENT_KIND: &str = "experiment";

/// True for a ReplicaSet of an `experiment` step (labelled [`EXPERIMENT_TEMPLATE`]): never a
/// revision of the rollout.
pub(crate) fn is_experiment_replica_set(rs: &ReplicaSet) -> bool {
    rs.labels().contains_key(EXPERIMENT_TEMPLATE)
}

/// True for an AnalysisRun of an `experiment` step.
pub(crate) fn is_experiment_run(run: &AnalysisRun) -> bool {
    run.labels()
        .get(ANALYSIS_KIND)
        .is_some_and(|k| k == EXPERIMENT_KIND)
        || run.labels().contains_key(EXPERIMENT_ANALYSIS)
}

/// An experiment's phase as the status writes it, if it is one.
pub(crate) fn phase_of(text: &str) -> Option<AnalysisPhase> {
    serde_json::from_value(serde_json::Value::String(text.to_string())).ok()
}

/// One experiment: its ReplicaSets and AnalysisRuns, and where it belongs.
#[derive(Debug)]
pub(crate) struct Group<'a> {
    /// The experiment's name.
    pub name: String,
    /// The revision of the release that ran it, when known.
    pub revision: Option<i64>,
    /// Its ReplicaSets, by name.
    pub replica_sets: Vec<&'a ReplicaSet>,
    /// Its AnalysisRuns, oldest first.
    pub runs: Vec<&'a AnalysisRun>,
    /// The status of the current `experiment` step, when this is its experiment.
    pub current: Option<&'a ExperimentStatus>,
    /// Hash of the release that ran it.
    release: Option<String>,
    /// Index of its step.
    step: Option<i32>,
    /// When its first ReplicaSet was created.
    created: Option<Timestamp>,
}

/// `(revision, step)` from an experiment name `<rollout>-<release>-<revision>-<step>[-<attempt>]`.
fn parse_name(rollout: &str, release: &str, name: &str) -> Option<(i64, i32)> {
    let rest = name.strip_prefix(&format!("{rollout}-{release}-"))?;
    let mut parts = rest.split('-');
    let revision = parts.next()?.parse().ok()?;
    let step = parts.next()?.parse().ok()?;
    Some((revision, step))
}

/// The experiment an experiment ReplicaSet belongs to: its [`EXPERIMENT`] annotation, else its
/// name without `-<template>`.
fn experiment_of(rs: &ReplicaSet) -> String {
    if let Some(name) = rs.annotations().get(EXPERIMENT) {
        return name.clone();
    }
    let name = rs.name_any();
    match rs.labels().get(EXPERIMENT_TEMPLATE) {
        Some(t) => name
            .strip_suffix(&format!("-{t}"))
            .map_or_else(|| name.clone(), str::to_string),
        None => name,
    }
}

/// The rollout's experiments, newest first: from the experiment ReplicaSets of `replica_sets`
/// and the status's current experiment, each with its AnalysisRuns of `runs`.
/// `revision_of_hash` gives the revision of a release's pod-template hash. Experiment runs that
/// belong to no experiment found (its ReplicaSets deleted) are left out of every group.
pub(crate) fn groups<'a>(
    rollout: &'a Rollout,
    replica_sets: &'a [ReplicaSet],
    runs: &'a [AnalysisRun],
    revision_of_hash: impl Fn(&str) -> Option<i64>,
) -> Vec<Group<'a>> {
    let rollout_name = rollout.name_any();
    let status = rollout.status.as_ref();
    let current = status
        .and_then(|s| s.canary.as_ref())
        .and_then(|c| c.experiment.as_ref());
    let mut by_name: BTreeMap<String, Group<'a>> = BTreeMap::new();
    let empty = |name: &str| Group {
        name: name.to_string(),
        revision: None,
        replica_sets: Vec::new(),
        runs: Vec::new(),
        current: None,
        release: None,
        step: None,
        created: None,
    };
    for rs in replica_sets
        .iter()
        .filter(|rs| is_experiment_replica_set(rs))
    {
        let name = experiment_of(rs);
        let g = by_name.entry(name.clone()).or_insert_with(|| empty(&name));
        if g.release.is_none() {
            g.release = rs.labels().get(EXPERIMENT_RELEASE).cloned();
        }
        let created = rs.metadata.creation_timestamp.as_ref().map(|t| t.0);
        g.created = match (g.created, created) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        g.replica_sets.push(rs);
    }
    if let Some(x) = current {
        let g = by_name
            .entry(x.name.clone())
            .or_insert_with(|| empty(&x.name));
        g.current = Some(x);
        g.step = Some(x.step);
        if g.release.is_none() {
            g.release = status.and_then(|s| s.current_pod_hash.clone());
        }
    }
    let mut groups: Vec<Group<'a>> = by_name.into_values().collect();
    for g in &mut groups {
        g.replica_sets.sort_by_key(|rs| rs.name_any());
        let parsed = g
            .release
            .as_deref()
            .and_then(|release| parse_name(&rollout_name, release, &g.name));
        g.revision = g
            .release
            .as_deref()
            .and_then(&revision_of_hash)
            .or(parsed.map(|(rev, _)| rev));
        g.step = g.step.or(parsed.map(|(_, step)| step));
    }
    // The runs: the current experiment's by name, the others by release and step (the latest
    // experiment created before the run, when a retry ran several).
    let named: BTreeSet<&str> = current
        .iter()
        .flat_map(|x| x.analysis_runs.iter().map(|r| r.run.name.as_str()))
        .collect();
    for run in runs.iter().filter(|r| is_experiment_run(r)) {
        let run_name = run.name_any();
        let found = if named.contains(run_name.as_str()) {
            groups.iter().position(|g| g.current.is_some())
        } else {
            let hash = run.labels().get(POD_TEMPLATE_HASH);
            let step = run
                .labels()
                .get(STEP_INDEX)
                .and_then(|s| s.parse::<i32>().ok());
            let run_created = run.metadata.creation_timestamp.as_ref().map(|t| t.0);
            let candidates: Vec<usize> = groups
                .iter()
                .enumerate()
                .filter(|(_, g)| g.release.as_ref() == hash && g.step.is_some() && g.step == step)
                .map(|(i, _)| i)
                .collect();
            let before = candidates
                .iter()
                .copied()
                .filter(|&i| match (groups[i].created, run_created) {
                    (Some(g), Some(r)) => g <= r,
                    _ => true,
                })
                .max_by_key(|&i| (groups[i].created, groups[i].name.clone()));
            before.or_else(|| candidates.first().copied())
        };
        if let Some(i) = found {
            groups[i].runs.push(run);
        }
    }
    for g in &mut groups {
        g.runs.sort_by_key(|r| {
            (
                r.metadata.creation_timestamp.as_ref().map(|t| t.0),
                r.name_any(),
            )
        });
    }
    groups.sort_by(|a, b| (b.created, &b.name).cmp(&(a.created, &a.name)));
    groups
}

/// The `experiment` step the status's current experiment runs, from the spec.
fn step_spec(rollout: &Rollout, step: i32) -> Option<&RolloutExperimentStep> {
    let i = usize::try_from(step).ok()?;
    rollout
        .spec
        .strategy
        .canary
        .as_ref()?
        .steps
        .get(i)?
        .experiment
        .as_ref()
}

/// `duration` as written in the spec.
fn duration_text(d: &IntOrString) -> String {
    match d {
        IntOrString::Int(s) => format!("{s}s"),
        IntOrString::String(s) => s.clone(),
    }
}

/// `duration` in seconds, when it parses.
fn duration_secs(d: &IntOrString) -> Option<i64> {
    match d {
        IntOrString::Int(s) => Some(i64::from(*s)),
        IntOrString::String(s) => rollgate_api::duration::parse(s)
            .ok()
            .and_then(|d| i64::try_from(d.as_secs()).ok()),
    }
}

/// Rows of cells, each column padded to its widest cell; the last column unpadded.
fn columns(rows: &[Vec<String>]) -> Vec<String> {
    let n = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..n)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    rows.iter()
        .map(|r| {
            let mut out = String::new();
            for (i, c) in r.iter().enumerate() {
                if i + 1 == r.len() {
                    out.push_str(c);
                } else {
                    let pad = widths[i].saturating_sub(c.chars().count());
                    out.push_str(&format!("{c}{}  ", " ".repeat(pad)));
                }
            }
            out.trim_end().to_string()
        })
        .collect()
}

/// The header lines (key, value) of the current `experiment` step: its name and phase, when it
/// became available and how long it runs, each template's ReplicaSet with ready/desired pods
/// and each analysis with its run and phase. `with_ages: false` leaves out the time left.
/// Empty when no experiment runs.
pub(crate) fn header(
    rollout: &Rollout,
    replica_sets: &[ReplicaSet],
    now: Timestamp,
    with_ages: bool,
) -> Vec<(String, String)> {
    let canary = rollout.status.as_ref().and_then(|s| s.canary.as_ref());
    let Some(x) = canary.and_then(|c| c.experiment.as_ref()) else {
        return canary
            .and_then(|c| c.current_experiment.as_ref())
            .map(|name| vec![("  Experiment:".to_string(), name.clone())])
            .unwrap_or_default();
    };
    let spec = step_spec(rollout, x.step);
    let mut out = vec![(
        "  Experiment:".to_string(),
        format!("{} ({})", x.name, x.phase),
    )];
    if let Some(at) = &x.available_at {
        out.push(("    Available:".into(), at.0.to_string()));
    }
    let duration = spec.and_then(|s| s.duration.as_ref());
    let required = spec.is_some_and(|s| {
        s.analyses
            .iter()
            .any(|a| a.required_for_completion == Some(true))
    });
    // As Argo's Experiment: required analyses decide when there are any, else the duration,
    // else a promotion past the step.
    let mut timing = match (duration, &x.available_at) {
        (None, _) if required => "none".to_string(),
        (None, _) => "none (runs until promoted past the step)".to_string(),
        (Some(d), None) => format!(
            "{} (counts once every ReplicaSet is available)",
            duration_text(d)
        ),
        (Some(d), Some(at)) => match duration_secs(d).and_then(|s| {
            at.0.checked_add(k8s_openapi::jiff::SignedDuration::from_secs(s))
                .ok()
        }) {
            Some(end) => {
                let left = if !with_ages {
                    String::new()
                } else if end > now {
                    format!(", {} left", crate::tree::age(end, Some(now)))
                } else {
                    ", over".to_string()
                };
                format!("{}, until {end}{left}", duration_text(d))
            }
            None => duration_text(d),
        },
    };
    if required {
        timing.push_str("; ends once the required analyses succeed");
    }
    out.push(("    Duration:".into(), timing));
    // Templates: the status's, else the spec's (names as the engine makes them).
    let mut templates: Vec<(String, String)> = x
        .templates
        .iter()
        .map(|t| (t.name.clone(), t.replica_set.clone()))
        .collect();
    if templates.is_empty() {
        templates = spec
            .iter()
            .flat_map(|s| &s.templates)
            .filter_map(|t| t.name.clone())
            .map(|t| (t.clone(), format!("{}-{t}", x.name)))
            .collect();
    }
    let template_rows: Vec<Vec<String>> = templates
        .iter()
        .map(|(t, rs_name)| {
            let spec_ref = spec
                .iter()
                .flat_map(|s| &s.templates)
                .find(|s| s.name.as_deref() == Some(t.as_str()))
                .and_then(|s| s.spec_ref.clone())
                .map_or_else(|| t.clone(), |r| format!("{t} ({r})"));
            let pods = replica_sets
                .iter()
                .find(|rs| rs.name_any() == *rs_name)
                .map_or_else(
                    || "not created".to_string(),
                    |rs| {
                        let ready = rs
                            .status
                            .as_ref()
                            .and_then(|s| s.ready_replicas)
                            .unwrap_or(0);
                        format!("{ready}/{} ready", rs.spec.replicas.unwrap_or(0))
                    },
                );
            vec![spec_ref, rs_name.clone(), pods]
        })
        .collect();
    for (i, row) in columns(&template_rows).into_iter().enumerate() {
        let key = if i == 0 { "    Templates:" } else { "" };
        out.push((key.into(), row));
    }
    // Analyses: every one of the spec, with its run once started.
    let mut analyses: Vec<(String, bool)> = spec
        .iter()
        .flat_map(|s| &s.analyses)
        .filter_map(|a| Some((a.name.clone()?, a.required_for_completion.unwrap_or(false))))
        .collect();
    for r in &x.analysis_runs {
        if !analyses.iter().any(|(a, _)| *a == r.analysis) {
            analyses.push((r.analysis.clone(), false));
        }
    }
    let analysis_rows: Vec<Vec<String>> = analyses
        .iter()
        .map(|(a, required)| {
            let name = if *required {
                format!("{a} (required)")
            } else {
                a.clone()
            };
            match x.analysis_runs.iter().find(|r| r.analysis == *a) {
                Some(r) => {
                    let mut phase = r.run.status.clone();
                    if let Some(m) = r.run.message.as_deref().filter(|m| !m.is_empty()) {
                        phase.push_str(&format!(": {m}"));
                    }
                    vec![name, r.run.name.clone(), phase]
                }
                None => vec![name, "-".into(), "not started".into()],
            }
        })
        .collect();
    for (i, row) in columns(&analysis_rows).into_iter().enumerate() {
        let key = if i == 0 { "    Analyses:" } else { "" };
        out.push((key.into(), row));
    }
    out
}
