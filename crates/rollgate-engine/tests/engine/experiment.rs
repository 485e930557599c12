//! The canary `experiment` step, as Argo Rollouts documents it (docs/features/experiment.md,
//! "Integration With Rollouts"): the step runs ReplicaSets of the stable and/or canary pod
//! template (one replica each unless told), waits until every one is available, then starts
//! its analyses and counts `duration`; the Rollout does not go on until the experiment
//! succeeds and aborts when it fails; once it is over its ReplicaSets are scaled to zero and
//! unfinished analyses terminated. The experiment's pods get their own pod-template hash, not
//! the revisions' (Argo: "The pod-hashes of the baseline/canary ReplicaSets created by the
//! Experiment, will have different values than the pod-hashes of the stable/canary
//! ReplicaSets created by the Rollout").
//!
//! Every `World::step` also checks the invariants, consistency and idempotence (see `support`).

use crate::support;

use rollgate_api::labels::{EXPERIMENT_ANALYSIS, EXPERIMENT_TEMPLATE, POD_TEMPLATE_HASH};
use rollgate_api::{AnalysisPhase, RolloutPhase};
use rollgate_engine::{Action, AnalysisKind, ObservedExperimentSet};
use serde_json::{Value, json};
use support::{TEMPLATE, World, reasons, requeue};

/// Steps: setWeight 20, the experiment `exp`, setWeight 60.
fn steps(exp: Value) -> Value {
    json!({
        "steps": [{"setWeight": 20}, {"experiment": exp}, {"setWeight": 60}],
        "scaleDownDelaySeconds": 0
    })
}

/// The usual experiment: baseline (stable) and canary (canary) for 60 s, compared by the
/// `compare` analysis, whose `hash` argument is the experiment canary's hash.
fn baseline_and_canary(duration: Value, required: bool) -> Value {
    json!({
        "duration": duration,
        "templates": [
            {"name": "baseline", "specRef": "stable"},
            {"name": "canary", "specRef": "canary", "replicas": 2,
             "metadata": {"labels": {"track": "experiment"}}}
        ],
        "analyses": [{
            "name": "compare",
            "templateName": TEMPLATE,
            "args": [{"name": "hash", "value": "{{templates.canary.podTemplateHash}}"}],
            "requiredForCompletion": required
        }]
    })
}

/// A deployed canary world releasing app:2 through `steps(exp)`, stepped to the experiment
/// step (ReplicaSets created, nothing ready). Returns the world, stable and canary hashes.
fn at_experiment(exp: Value) -> (World, String, String) {
    let (mut w, v1) = World::canary_deployed(json!({}), steps(exp));
    let v2 = w.set_image("app:2");
    w.step();
    w.make_all_ready();
    w.step();
    assert_eq!(w.step_index(), 1, "{}", w.message());
    (w, v1, v2)
}

fn set(w: &World, template: &str) -> ObservedExperimentSet {
    w.observed
        .experiment_sets
        .iter()
        .find(|s| s.template == template)
        .cloned()
        .unwrap_or_else(|| panic!("no experiment ReplicaSet {template}"))
}

fn created_set(w: &World, template: &str) -> k8s_openapi::api::apps::v1::ReplicaSet {
    w.actions
        .iter()
        .find_map(|a| match a {
            Action::CreateReplicaSet(rs)
                if rs
                    .metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(EXPERIMENT_TEMPLATE))
                    .is_some_and(|t| t == template) =>
            {
                Some((**rs).clone())
            }
            _ => None,
        })
        .unwrap_or_else(|| panic!("no experiment ReplicaSet {template} created"))
}

fn experiment_name(w: &World) -> String {
    w.status()
        .canary
        .and_then(|c| c.current_experiment)
        .expect("status.canary.currentExperiment")
}

#[test]
fn an_experiment_runs_stable_and_canary_templates_then_the_release_goes_on() {
    let (mut w, v1, v2) = at_experiment(baseline_and_canary(json!("60s"), false));
    let name = experiment_name(&w);
    assert_eq!(
        name,
        format!("web-{v2}-2-1"),
        "Argo: rollout, pod hash, revision, step"
    );
    // Argo: one ReplicaSet per template named <experiment>-<template>.
    let (baseline, canary) = (set(&w, "baseline"), set(&w, "canary"));
    assert_eq!(baseline.name, format!("{name}-baseline"));
    assert_eq!(canary.name, format!("{name}-canary"));
    assert_eq!(
        (baseline.replicas, canary.replicas),
        (1, 2),
        "replicas default to 1"
    );
    for s in [&baseline, &canary] {
        assert_eq!(s.release, v2);
        assert_ne!(
            s.hash, v1,
            "an experiment's pods are told apart from the revisions'"
        );
        assert_ne!(s.hash, v2);
    }
    assert_ne!(baseline.hash, canary.hash);
    // specRef: the stable template, the canary template, with the template's metadata.
    let image = |rs: &k8s_openapi::api::apps::v1::ReplicaSet| {
        rs.spec
            .template
            .as_ref()
            .and_then(|t| t.spec.as_ref())
            .map(|s| s.containers[0].image.clone())
    };
    let (b, c) = (created_set(&w, "baseline"), created_set(&w, "canary"));
    assert_eq!(image(&b), Some(Some("app:1".to_string())));
    assert_eq!(image(&c), Some(Some("app:2".to_string())));
    let labels = c
        .spec
        .template
        .as_ref()
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    assert_eq!(labels.get("track").map(String::as_str), Some("experiment"));
    assert_eq!(labels.get("app").map(String::as_str), Some("web"));
    assert_eq!(labels.get(POD_TEMPLATE_HASH), Some(&canary.hash));
    assert_eq!(
        c.spec
            .selector
            .match_labels
            .as_ref()
            .and_then(|l| l.get(POD_TEMPLATE_HASH)),
        Some(&canary.hash),
        "the ReplicaSet selects only its own pods"
    );
    assert_eq!(
        w.notes("ExperimentCreated"),
        [format!(
            "Experiment {name} started: ReplicaSets {name}-baseline, {name}-canary"
        )]
    );
    // Pending: the revisions' counts do not include the experiment's pods.
    assert_eq!(w.phase(), Some(RolloutPhase::Progressing));
    assert_eq!(
        w.message(),
        format!("Step 2/3 experiment {name}: 0/3 pods available")
    );
    assert_eq!(w.status().replicas, Some(10));
    assert!(
        w.observed.analysis_runs.is_empty(),
        "analyses wait for available pods"
    );
    let exp = w
        .status()
        .canary
        .and_then(|c| c.experiment)
        .expect("experiment status");
    assert_eq!(exp.phase, "Pending");
    assert_eq!(exp.templates.len(), 2);

    // Running once every ReplicaSet is available: the analysis starts with the hash filled in.
    w.make_all_ready();
    let d = w.step();
    assert!(reasons(&d).contains(&"ExperimentRunning"), "{:?}", d.events);
    let run = w.observed.analysis_runs.last().cloned().expect("a run");
    assert_eq!(run.kind, AnalysisKind::Experiment);
    assert_eq!(run.step, Some(1));
    assert_eq!(run.experiment_analysis.as_deref(), Some("compare"));
    let spec = w
        .actions
        .iter()
        .find_map(|a| match a {
            Action::CreateAnalysisRun(r) => Some(r.clone()),
            _ => None,
        })
        .expect("run created");
    assert_eq!(
        spec.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(EXPERIMENT_ANALYSIS))
            .map(String::as_str),
        Some("compare")
    );
    let hash_arg = spec
        .spec
        .args
        .iter()
        .find(|a| a.name == "hash")
        .and_then(|a| a.value.clone());
    assert_eq!(
        hash_arg,
        Some(canary.hash.clone()),
        "{{{{templates.canary.podTemplateHash}}}}"
    );
    assert_eq!(d.requeue_after, requeue(60), "the duration's end");
    assert!(
        w.message()
            .starts_with(&format!("Step 2/3: experiment {name} runs until ")),
        "{}",
        w.message()
    );
    assert_eq!(w.cond("Progressing").1, "ExperimentRunning");

    // The analysis succeeds before the duration ends: still running.
    w.set_run_phase(AnalysisKind::Experiment, AnalysisPhase::Successful);
    w.advance(30);
    w.step();
    assert_eq!(w.step_index(), 1);
    // The duration ends: the step is done, the experiment's ReplicaSets go to zero.
    w.advance(30);
    let d = w.step();
    assert!(
        reasons(&d).contains(&"ExperimentSuccessful"),
        "{:?}",
        d.events
    );
    assert_eq!(w.step_index(), 2);
    assert_eq!(w.status().canary.and_then(|c| c.current_experiment), None);
    assert_eq!(
        (set(&w, "baseline").replicas, set(&w, "canary").replicas),
        (0, 0)
    );
    w.run_until_settled();
    assert_eq!(w.status().stable_rs, Some(v2), "{}", w.message());
    assert!(
        w.observed.experiment_sets.is_empty(),
        "deleted once the release completed"
    );
}

#[test]
fn a_failed_experiment_analysis_aborts_the_release_and_scales_the_experiment_down() {
    let (mut w, v1, _) = at_experiment(baseline_and_canary(json!("10m"), false));
    w.make_all_ready();
    w.step();
    let run = w.set_run(
        AnalysisKind::Experiment,
        AnalysisPhase::Failed,
        Some("error rate 0.3"),
    );
    let d = w.step();
    let name = set(&w, "canary").experiment;
    assert!(reasons(&d).contains(&"ExperimentFailed"), "{:?}", d.events);
    assert!(reasons(&d).contains(&"RolloutAborted"), "{:?}", d.events);
    assert_eq!(
        w.status().abort_reason.map(|r| r.to_string()).as_deref(),
        Some("AnalysisFailed")
    );
    assert_eq!(
        w.notes("ExperimentFailed"),
        [format!(
            "Experiment {name} failed: analysis \"compare\" (AnalysisRun {run})"
        )]
    );
    assert!(
        w.message().contains("experiment's \"compare\""),
        "{}",
        w.message()
    );
    w.run_until_settled();
    assert_eq!(w.status().stable_rs, Some(v1));
    assert_eq!(
        (set(&w, "baseline").replicas, set(&w, "canary").replicas),
        (0, 0),
        "kept at zero while the aborted release is the rollout's (to be looked at)"
    );
    assert_eq!(w.status().canary.and_then(|c| c.experiment), None);
    // A new release: the old experiment's ReplicaSets go.
    w.set_image("app:3");
    w.run_until_settled();
    assert!(
        w.observed
            .experiment_sets
            .iter()
            .all(|s| s.experiment != name)
    );
}

#[test]
fn a_required_analysis_holds_the_experiment_past_its_duration_and_others_are_terminated() {
    let mut exp = baseline_and_canary(json!(30), true);
    exp["analyses"].as_array_mut().expect("list").push(json!({
        "name": "watch", "templateName": TEMPLATE,
        "args": [{"name": "hash", "value": "{{templates.baseline.podTemplateHash}}"}]
    }));
    let (mut w, _, _) = at_experiment(exp);
    w.make_all_ready();
    w.step();
    assert_eq!(w.observed.analysis_runs.len(), 2);
    w.advance(45);
    w.step();
    assert_eq!(w.step_index(), 1, "compare is required");
    assert!(
        w.message().ends_with("until analyses \"compare\" succeed"),
        "{}",
        w.message()
    );
    let compare = w
        .observed
        .analysis_runs
        .iter_mut()
        .find(|r| r.experiment_analysis.as_deref() == Some("compare"))
        .expect("compare");
    compare.phase = AnalysisPhase::Successful;
    let d = w.step();
    assert_eq!(w.step_index(), 2);
    let watch = w
        .observed
        .analysis_runs
        .iter()
        .find(|r| r.experiment_analysis.as_deref() == Some("watch"))
        .expect("watch")
        .name
        .clone();
    assert!(
        d.actions
            .contains(&Action::TerminateAnalysisRun { name: watch }),
        "{:?}",
        d.actions
    );
}

#[test]
fn without_a_duration_the_experiment_ends_with_its_required_analyses() {
    let mut exp = baseline_and_canary(Value::Null, true);
    exp.as_object_mut().expect("object").remove("duration");
    let (mut w, _, _) = at_experiment(exp);
    w.make_all_ready();
    let d = w.step();
    assert_eq!(d.requeue_after, None, "nothing timed");
    w.set_run_phase(AnalysisKind::Experiment, AnalysisPhase::Successful);
    w.step();
    assert_eq!(w.step_index(), 2);
}

#[test]
fn an_inconclusive_experiment_pauses_with_argos_reason_and_a_promotion_accepts_it() {
    let (mut w, _, _) = at_experiment(baseline_and_canary(json!("10m"), false));
    w.make_all_ready();
    w.step();
    w.set_run_phase(AnalysisKind::Experiment, AnalysisPhase::Inconclusive);
    let d = w.step();
    assert!(
        reasons(&d).contains(&"ExperimentInconclusive"),
        "{:?}",
        d.events
    );
    assert_eq!(w.phase(), Some(RolloutPhase::Paused));
    let pauses: Vec<String> = w
        .status()
        .pause_conditions
        .iter()
        .map(|p| p.reason.to_string())
        .collect();
    assert_eq!(
        pauses,
        ["InconclusiveExperiment"],
        "Argo: PauseReasonInconclusiveExperiment"
    );
    w.promote();
    let d = w.step();
    assert!(
        reasons(&d).contains(&"ExperimentSuccessful"),
        "{:?}",
        d.events
    );
    assert_eq!(w.step_index(), 2);
    assert!(w.status().pause_conditions.is_empty());
}

#[test]
fn an_experiment_that_cannot_measure_pauses_and_a_retry_runs_a_new_experiment() {
    let (mut w, _, v2) = at_experiment(baseline_and_canary(json!("10m"), false));
    w.make_all_ready();
    w.step();
    let first = experiment_name(&w);
    w.set_run_phase(AnalysisKind::Experiment, AnalysisPhase::Error);
    let d = w.step();
    assert!(reasons(&d).contains(&"ExperimentError"), "{:?}", d.events);
    assert_eq!(
        w.phase(),
        Some(RolloutPhase::Paused),
        "an unreachable metric source never aborts"
    );
    assert!(w.status().abort_reason.is_none());
    w.retry();
    let d = w.step();
    assert!(reasons(&d).contains(&"AnalysisRetried"), "{:?}", d.events);
    let second = experiment_name(&w);
    let attempt = w.status().attempt.expect("attempt");
    assert_eq!(
        second,
        format!("web-{v2}-2-1-{attempt}"),
        "a new attempt, a new experiment (Argo adds a collision count)"
    );
    assert!(
        w.observed
            .experiment_sets
            .iter()
            .filter(|s| s.experiment == first)
            .all(|s| s.replicas == 0)
    );
    w.make_all_ready();
    w.step();
    assert!(
        w.observed
            .analysis_runs
            .iter()
            .any(|r| r.kind == AnalysisKind::Experiment && !r.phase.is_completed())
    );
    w.set_run_phase(AnalysisKind::Experiment, AnalysisPhase::Successful);
    w.advance(600);
    w.step();
    assert_eq!(w.step_index(), 2);
}

#[test]
fn experiment_pods_that_never_get_ready_hit_the_progress_deadline() {
    let (mut w, v1, _) = at_experiment(baseline_and_canary(json!("1m"), false));
    w.crashing_experiments = true;
    w.make_all_ready();
    w.step();
    w.advance(601);
    let d = w.step();
    assert!(reasons(&d).contains(&"RolloutAborted"), "{:?}", d.events);
    assert_eq!(
        w.status().abort_reason.map(|r| r.to_string()).as_deref(),
        Some("ProgressDeadline")
    );
    w.run_until_settled();
    assert_eq!(w.status().stable_rs, Some(v1));
    assert!(w.observed.experiment_sets.iter().all(|s| s.replicas == 0));
}

#[test]
fn a_full_promotion_skips_the_experiment() {
    let (mut w, _, v2) = at_experiment(baseline_and_canary(json!("1h"), false));
    w.make_all_ready();
    w.step();
    let run = w.observed.analysis_runs.last().expect("run").name.clone();
    w.promote_full();
    let d = w.step();
    assert!(
        d.actions
            .contains(&Action::TerminateAnalysisRun { name: run }),
        "{:?}",
        d.actions
    );
    w.run_until_settled();
    assert_eq!(w.status().stable_rs, Some(v2));
    assert!(w.observed.experiment_sets.is_empty());
}

#[test]
fn invalid_experiment_steps_name_the_field() {
    let cases = [
        (
            json!({"templates": []}),
            "spec.strategy.canary.steps[1].experiment.templates: at least one template expected",
        ),
        (
            json!({"duration": "1m", "templates": [{"name": "b", "specRef": "baseline"}]}),
            "spec.strategy.canary.steps[1].experiment.templates[0].specRef: expected stable or canary, got \"baseline\"",
        ),
        (
            json!({"duration": "1m", "templates": [{"name": "Bad_Name", "specRef": "stable"}]}),
            "spec.strategy.canary.steps[1].experiment.templates[0].name: \"Bad_Name\": a lower-case DNS label expected",
        ),
        (
            json!({"duration": "1m", "templates": [{"name": "b", "specRef": "stable", "weight": 5}]}),
            "spec.strategy.canary.steps[1].experiment.templates[0].weight: traffic to experiment pods is not supported",
        ),
        (
            json!({"duration": "1m", "templates": [{"name": "b", "specRef": "stable", "service": {}}]}),
            "spec.strategy.canary.steps[1].experiment.templates[0].service: a Service for experiment pods is not supported",
        ),
        (
            json!({"duration": "soon", "templates": [{"name": "b", "specRef": "stable"}]}),
            "spec.strategy.canary.steps[1].experiment.duration: ",
        ),
        (
            json!({"duration": "1m", "templates": [{"name": "b", "specRef": "stable"}],
                "analyses": [{"name": "a", "templateName": TEMPLATE,
                              "args": [{"name": "hash", "value": "{{templates.c.podTemplateHash}}"}]}]}),
            "spec.strategy.canary.steps[1].experiment.analyses[0].args[0].value: {{templates.c.podTemplateHash}}: expected {{templates.<name>.podTemplateHash}} naming a template of the step (b)",
        ),
        (
            json!({"duration": "1m", "templates": [{"name": "b", "specRef": "stable"}],
                "analyses": [{"name": "a", "templateName": "missing"}]}),
            "spec.strategy.canary.steps[1].experiment.analyses[0].templateName: AnalysisTemplate \"missing\" not found",
        ),
        (
            json!({"duration": "1m", "templates": [{"name": "b", "specRef": "stable",
                "metadata": {"labels": {"app": "other"}}}]}),
            "spec.strategy.canary.steps[1].experiment.templates[0].metadata.labels: must not set app",
        ),
    ];
    for (exp, text) in cases {
        let mut w = World::canary(json!({}), steps(exp.clone()));
        let d = w.step();
        assert!(
            d.actions.is_empty(),
            "{exp}: touches nothing: {:?}",
            d.actions
        );
        let msg = w.status().message.unwrap_or_default();
        assert!(msg.contains(text), "{exp}:\n  {msg}\n  expected {text}");
        assert_eq!(w.status().phase, Some(RolloutPhase::Degraded));
    }
}

#[test]
fn switching_to_blue_green_mid_experiment_scales_the_experiment_down() {
    let (mut w, _, _) = at_experiment(baseline_and_canary(json!("1h"), false));
    w.make_all_ready();
    w.step();
    assert!(w.observed.experiment_sets.iter().all(|s| s.replicas > 0));
    w.add_service("web-active");
    let strategy: rollgate_api::RolloutStrategy =
        serde_json::from_value(json!({"blueGreen": {"activeService": "web-active"}}))
            .expect("blue/green strategy");
    w.edit_spec(|s| s.strategy = strategy);
    w.step();
    assert!(
        w.observed.experiment_sets.iter().all(|s| s.replicas == 0),
        "{:?}",
        w.observed.experiment_sets
    );
    w.run_until_settled();
    assert!(w.observed.experiment_sets.is_empty());
    assert!(
        w.observed
            .analysis_runs
            .iter()
            .all(|r| r.phase.is_completed() || r.terminating)
    );
}

#[test]
fn required_analyses_end_the_experiment_before_its_duration() {
    // Argo's Experiment: once every required analysis succeeded the experiment is Successful,
    // while its templates still run (experiment.go, calculateStatus).
    let (mut w, _, _) = at_experiment(baseline_and_canary(json!("1h"), true));
    w.make_all_ready();
    w.step();
    assert!(
        w.message().ends_with("until analyses \"compare\" succeed"),
        "{}",
        w.message()
    );
    w.set_run_phase(AnalysisKind::Experiment, AnalysisPhase::Successful);
    w.advance(5);
    w.step();
    assert_eq!(w.step_index(), 2, "{}", w.message());
}

#[test]
fn without_duration_or_required_analyses_it_runs_until_promoted_past() {
    // Argo's examples/rollout-baseline-vs-canary.yaml: templates only. Argo's Experiment runs
    // until terminated; a `promote` of the Rollout skips the step.
    let (mut w, _, v2) = at_experiment(json!({
        "templates": [{"name": "baseline", "specRef": "stable"},
                      {"name": "canary", "specRef": "canary"}]
    }));
    w.make_all_ready();
    let d = w.step();
    assert_eq!(d.requeue_after, None, "nothing timed");
    let name = experiment_name(&w);
    assert_eq!(
        w.message(),
        format!(
            "Step 2/3: experiment {name} runs until promoted: `rollgate promote web` goes to \
             the next step"
        )
    );
    w.advance(86_400);
    w.step();
    assert_eq!(w.step_index(), 1, "still running a day later");
    w.skip_step();
    w.step();
    assert_eq!(w.step_index(), 2);
    assert!(w.observed.experiment_sets.iter().all(|s| s.replicas == 0));
    w.run_until_settled();
    assert_eq!(w.status().stable_rs, Some(v2));
    assert!(w.observed.experiment_sets.is_empty());
}

/// A `sequential` template `judge` in the world: errors of `{{args.hash}}` against its
/// requests.
fn add_sequential_template(w: &mut World) {
    let template: rollgate_api::AnalysisTemplateSpec = serde_json::from_value(json!({
        "args": [{"name": "hash"}],
        "metrics": [{"name": "errors", "interval": "15s",
            "provider": {"prometheus": {"address": "http://127.0.0.1:9090"}},
            "sequential": {
                "events": "sum(http_request_errors_total{pod_template_hash=\"{{args.hash}}\"})",
                "requests": "sum(http_requests_total{pod_template_hash=\"{{args.hash}}\"})"}}]
    }))
    .expect("template");
    w.observed
        .templates
        .insert((false, "judge".into()), template);
}

#[test]
fn a_sequential_judge_compares_the_experiment_canary_with_its_baseline() {
    // The Kayenta-style use of Argo's experiment step (docs/features/experiment.md): a
    // baseline of the stable template beside a canary, compared. The baseline of a judge is
    // the experiment's baseline template, not the stable revision.
    let mut w = World::canary(
        json!({}),
        steps(json!({
            "duration": "10m",
            "templates": [{"name": "baseline", "specRef": "stable"},
                          {"name": "canary", "specRef": "canary"}],
            "analyses": [{"name": "judge", "templateName": "judge",
                          "args": [{"name": "hash",
                                    "value": "{{templates.canary.podTemplateHash}}"}]}]
        })),
    );
    add_sequential_template(&mut w);
    w.run_until_settled();
    let v1 = w.status().stable_rs.expect("deployed");
    w.set_image("app:2");
    w.step();
    w.make_all_ready();
    w.step();
    w.make_all_ready();
    w.step();
    let (baseline, canary) = (set(&w, "baseline").hash, set(&w, "canary").hash);
    let run = w
        .actions
        .iter()
        .find_map(|a| match a {
            Action::CreateAnalysisRun(r) => Some(r.clone()),
            _ => None,
        })
        .expect("the judge's run");
    let values = |args: &[rollgate_api::AnalysisArg]| -> Vec<(String, Option<String>)> {
        args.iter()
            .map(|a| (a.name.clone(), a.value.clone()))
            .collect()
    };
    assert_eq!(values(&run.spec.args), [("hash".to_string(), Some(canary))]);
    assert_eq!(
        values(&run.spec.baseline_args),
        [("hash".to_string(), Some(baseline.clone()))]
    );
    assert_ne!(
        baseline, v1,
        "the baseline template's pods, not the stable revision's"
    );
}

#[test]
fn a_judge_without_a_baseline_template_is_invalid() {
    let mut w = World::canary(
        json!({}),
        steps(json!({
            "duration": "10m",
            "templates": [{"name": "canary", "specRef": "canary"}],
            "analyses": [{"name": "judge", "templateName": "judge",
                          "args": [{"name": "hash",
                                    "value": "{{templates.canary.podTemplateHash}}"}]}]
        })),
    );
    add_sequential_template(&mut w);
    let d = w.step();
    assert!(d.actions.is_empty());
    let msg = w.status().message.unwrap_or_default();
    assert!(
        msg.contains(
            "spec.strategy.canary.steps[1].experiment.analyses[0].templateName: its sequential \
             or kayenta metrics compare the canary with a baseline"
        ),
        "{msg}"
    );
}

#[test]
fn an_analysis_that_cannot_measure_holds_an_experiment_past_its_duration() {
    // rollgate's rule beyond Argo's: a non-required analysis that cannot measure when the
    // duration ends (an unreachable Prometheus) is no evidence: the experiment waits for it.
    let (mut w, _, _) = at_experiment(baseline_and_canary(json!("1m"), false));
    w.make_all_ready();
    w.step();
    let run = w
        .observed
        .analysis_runs
        .iter_mut()
        .find(|r| r.kind == AnalysisKind::Experiment)
        .expect("the run");
    run.phase = AnalysisPhase::Running;
    run.measuring_errors = true;
    w.advance(90);
    let d = w.step();
    assert_eq!(w.step_index(), 1, "held: {}", w.message());
    assert_eq!(d.requeue_after, None, "the run's next measurement wakes it");
    assert!(
        w.message().ends_with(
            "runs on: it is over but its analysis \"compare\" cannot measure; it ends once that \
             analysis measures again"
        ),
        "{}",
        w.message()
    );
    // The metric source answers again.
    for r in &mut w.observed.analysis_runs {
        r.measuring_errors = false;
    }
    w.step();
    assert_eq!(w.step_index(), 2, "{}", w.message());
}
