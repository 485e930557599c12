//! Blue/green analysis gates: the pre-promotion analysis before the switch and the
//! post-promotion analysis after it, each outcome (Successful, Failed, Error, Inconclusive),
//! their arguments and run names.
//!
//! Each `World::step` also checks the traffic invariant, consistency and idempotence (see
//! `support`), so every test below exercises those too.

use crate::support;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use rollgate_api::labels::{ANALYSIS_KIND, ATTEMPT, POD_TEMPLATE_HASH, ROLLOUT_NAME};
use rollgate_api::{AnalysisPhase, RolloutAnalysisRunStatus, RolloutPhase};
use rollgate_engine::{Action, AnalysisKind, DeadlineChange};
use serde_json::json;
use support::{
    ACTIVE, World, analysis, bg_status, deadline, labels, owner, pause, reasons, requeue, rs_name,
    run_name, scale, scale_to_zero, summary, switch,
};

use AnalysisKind::{PostPromotion, PrePromotion};

fn run_status(name: &str, phase: &str, message: Option<&str>) -> Option<RolloutAnalysisRunStatus> {
    Some(RolloutAnalysisRunStatus {
        name: name.into(),
        status: phase.into(),
        message: message.map(str::to_string),
    })
}

// ----- pre-promotion analysis -----

#[test]
fn pre_promotion_analysis_starts_only_when_the_preview_is_fully_ready() {
    let (mut w, v1) = World::deployed(
        json!({}),
        json!({"previewReplicaCount": 2, "prePromotionAnalysis": analysis()}),
    );
    let v2 = w.set_image("app:2");
    w.step();
    w.set_ready(&v2, 1);
    let d = w.step();
    assert!(d.actions.is_empty());
    assert!(
        w.observed.analysis_runs.is_empty(),
        "not with 1/2 preview pods"
    );
    assert_eq!(
        w.message(),
        format!("Waiting for preview ReplicaSet web-{v2}: 1/2 pods available")
    );

    w.make_ready(&v2);
    let d = w.step();
    let run1 = run_name(&v2, PrePromotion, 1);
    assert_eq!(summary(&d), [format!("create run {run1}")]);
    assert_eq!(reasons(&d), ["AnalysisRunCreated"]);
    assert_eq!(
        d.events[0].note,
        format!("Started pre-promotion analysis {run1}")
    );
    let Action::CreateAnalysisRun(run) = &d.actions[0] else {
        unreachable!()
    };
    assert_eq!(run.metadata.namespace.as_deref(), Some("shop"));
    assert_eq!(
        run.metadata.labels,
        Some(labels(&[
            (ROLLOUT_NAME, "web"),
            (POD_TEMPLATE_HASH, &v2),
            (ANALYSIS_KIND, "pre-promotion"),
            // The second release attempt of the rollout (the first deploy was the first).
            (ATTEMPT, "2"),
        ]))
    );
    assert_eq!(run.metadata.owner_references, Some(vec![owner()]));
    assert_eq!(run.spec.metrics.len(), 1);
    assert_eq!(run.spec.metrics[0].name, "errors");
    assert_eq!(w.phase(), Some(RolloutPhase::Progressing));
    assert_eq!(
        w.message(),
        format!("Waiting for pre-promotion analysis {run1} (Pending)")
    );
    assert_eq!(
        w.cond("Progressing"),
        ("True".into(), "AnalysisRunning".into())
    );
    assert_eq!(
        bg_status(&w).pre_promotion_analysis_run_status,
        run_status(&run1, "Pending", None)
    );
    assert_eq!(
        d.requeue_after, None,
        "no progress deadline while analysing"
    );

    w.set_run_phase(PrePromotion, AnalysisPhase::Running);
    w.advance(3600);
    let d = w.step();
    assert!(d.actions.is_empty());
    assert_eq!(
        w.message(),
        format!("Waiting for pre-promotion analysis {run1} (Running)")
    );
    assert_eq!(w.active(), Some(v1));
    assert_eq!(w.rs(&v2).replicas, 2);
    assert_eq!(w.observed.analysis_runs.len(), 1);
}

#[test]
fn analysis_arguments_resolve_hashes_and_rollout_arguments_override_the_template() {
    let (mut w, v1) = World::deployed(
        json!({}),
        json!({"prePromotionAnalysis": {"templates": [{"templateName": "error-rate"}],
            "args": [{"name": "hash", "valueFrom": {"podTemplateHashValue": "Stable"}},
                     {"name": "latest", "valueFrom": {"podTemplateHashValue": "Latest"}},
                     {"name": "window", "value": "10m"}]}}),
    );
    let v2 = w.set_image("app:2");
    w.step();
    w.make_ready(&v2);
    let d = w.step();
    let Some(Action::CreateAnalysisRun(run)) = d.actions.first() else {
        panic!("{:?}", d.actions)
    };
    let args: Vec<(String, Option<String>, bool)> = run
        .spec
        .args
        .iter()
        .map(|a| (a.name.clone(), a.value.clone(), a.value_from.is_some()))
        .collect();
    assert_eq!(
        args,
        [
            ("hash".into(), Some(v1), false),
            ("latest".into(), Some(v2), false),
            ("window".into(), Some("10m".into()), false),
        ]
    );
}

#[test]
fn successful_pre_promotion_analysis_lets_the_release_continue() {
    let (mut w, v1) = World::deployed(
        json!({}),
        json!({"previewReplicaCount": 1, "prePromotionAnalysis": analysis()}),
    );
    let v2 = w.set_image("app:2");
    w.step();
    w.make_ready(&v2);
    w.step();
    let run1 = w.set_run(
        PrePromotion,
        AnalysisPhase::Successful,
        Some("all 5 measurements passed"),
    );
    let d = w.step();
    assert_eq!(d.actions, [scale(&v2, 3)]);
    assert_eq!(
        reasons(&d),
        [
            "AnalysisRunSuccessful",
            "RolloutPromoted",
            "ScalingReplicaSet"
        ]
    );
    assert_eq!(
        d.events[0].note,
        format!("pre-promotion analysis {run1}: Successful (was Pending)")
    );
    assert_eq!(
        d.events[1].note,
        format!("Promoting {v2}: scaling to 3 pods, then switching the active Service")
    );
    assert_eq!(
        bg_status(&w).pre_promotion_analysis_run_status,
        run_status(&run1, "Successful", Some("all 5 measurements passed"))
    );
    assert_eq!(bg_status(&w).scale_up_preview_check_point, Some(true));
    assert_eq!(w.active(), Some(v1.clone()));
    w.make_ready(&v2);
    let d = w.step();
    assert_eq!(
        d.actions,
        [switch(ACTIVE, Some(&v1), &v2), deadline(&v1, w.at(30))]
    );
    assert_eq!(w.status().stable_rs, Some(v2));
    assert_eq!(w.observed.analysis_runs.len(), 1);
    assert!(
        !w.run(&run1).terminating,
        "a finished run is not terminated"
    );
}

#[test]
fn failed_pre_promotion_analysis_aborts_in_the_same_reconcile() {
    let (mut w, v1) = World::deployed(json!({}), json!({"prePromotionAnalysis": analysis()}));
    let v2 = w.set_image("app:2");
    w.step();
    w.make_ready(&v2);
    w.step();
    let t = w.now;
    let run1 = w.set_run(
        PrePromotion,
        AnalysisPhase::Failed,
        Some("errors 0.31 >= 0.05"),
    );
    let d = w.step();
    let message = format!(
        "Aborted: pre-promotion analysis {run1} Failed: errors 0.31 >= 0.05; \
         production traffic returned to stable revision {v1}"
    );
    assert_eq!(d.actions, [deadline(&v2, w.at(30))]);
    assert_eq!(reasons(&d), ["AnalysisRunFailed", "RolloutAborted"]);
    assert!(d.events[0].warning && d.events[1].warning);
    assert_eq!(d.events[1].note, message);
    let s = w.status();
    assert_eq!(s.phase, Some(RolloutPhase::Degraded));
    assert_eq!(s.message, Some(message.clone()));
    assert_eq!(s.abort, Some(true));
    assert_eq!(s.aborted_at, Some(Time(t)));
    assert_eq!(s.stable_rs, Some(v1.clone()));
    assert_eq!(w.condition("Progressing").status, "False");
    assert_eq!(w.condition("Progressing").reason, "RolloutAborted");
    assert_eq!(w.condition("Progressing").message, message);
    assert_eq!(
        w.cond("Available"),
        ("True".into(), "AvailableReason".into())
    );
    assert_eq!(w.active(), Some(v1.clone()));
    assert_eq!(
        w.preview(),
        Some(v2.clone()),
        "Argo: the preview stays on the aborted one"
    );
    assert_eq!(d.requeue_after, requeue(30));

    w.advance(30);
    let d = w.step();
    assert_eq!(d.actions, [scale_to_zero(&v2, true)]);
    assert_eq!(
        d.events[0].note,
        format!("Scaled down ReplicaSet web-{v2} from 3 to 0 (scale-down delay passed)")
    );
    assert_eq!(w.phase(), Some(RolloutPhase::Degraded));
    assert_eq!(w.message(), message, "the abort reason stays visible");
    assert_eq!(
        w.observed.analysis_runs.len(),
        1,
        "no new run while aborted"
    );
}

#[test]
fn error_pre_promotion_analysis_aborts_with_error_policy_abort() {
    let mut a = analysis();
    a["errorPolicy"] = json!("Abort");
    let (mut w, v1) = World::deployed(json!({}), json!({"prePromotionAnalysis": a}));
    let v2 = w.set_image("app:2");
    w.step();
    w.make_ready(&v2);
    w.step();
    let run1 = w.set_run(
        PrePromotion,
        AnalysisPhase::Error,
        Some("prometheus unreachable"),
    );
    w.step();
    assert_eq!(w.phase(), Some(RolloutPhase::Degraded));
    assert_eq!(
        w.message(),
        format!(
            "Aborted: pre-promotion analysis {run1} could not measure (errorPolicy: Abort): \
             prometheus unreachable; production traffic returned to stable revision {v1}"
        )
    );
    assert_eq!(w.active(), Some(v1));
}

#[test]
fn inconclusive_pre_promotion_analysis_pauses_until_a_human_promotes() {
    let (mut w, v1) = World::deployed(json!({}), json!({"prePromotionAnalysis": analysis()}));
    let v2 = w.set_image("app:2");
    w.step();
    w.make_ready(&v2);
    w.step();
    let t = w.now;
    let run1 = w.set_run(PrePromotion, AnalysisPhase::Inconclusive, Some("no data"));
    let d = w.step();
    assert!(d.actions.is_empty());
    assert_eq!(reasons(&d), ["AnalysisRunInconclusive", "RolloutPaused"]);
    assert_eq!(d.events[1].note, "Rollout paused (InconclusiveAnalysisRun)");
    let s = w.status();
    assert_eq!(s.phase, Some(RolloutPhase::Paused));
    assert_eq!(
        s.message,
        Some(format!(
            "Paused: pre-promotion analysis {run1} is inconclusive: no data: \
             `rollgate promote web` to continue, `rollgate abort web` to go back"
        ))
    );
    assert_eq!(s.pause_conditions, [pause("InconclusiveAnalysisRun", t)]);
    assert_eq!(s.controller_pause, Some(true));
    assert_eq!(w.cond("Paused"), ("True".into(), "RolloutPaused".into()));
    assert_eq!(d.requeue_after, None);

    for _ in 0..3 {
        w.advance(3600);
        let d = w.step();
        assert!(d.actions.is_empty() && d.events.is_empty());
    }
    assert_eq!(w.active(), Some(v1.clone()));

    w.promote();
    let d = w.step();
    assert_eq!(
        d.actions,
        [switch(ACTIVE, Some(&v1), &v2), deadline(&v1, w.at(30))]
    );
    assert_eq!(reasons(&d)[0], "RolloutPromoted");
    let s = w.status();
    assert_eq!(s.stable_rs, Some(v2));
    assert_eq!(s.phase, Some(RolloutPhase::Healthy));
    assert!(s.pause_conditions.is_empty());
    assert_eq!(s.controller_pause, None);
    assert_eq!(w.cond("Paused"), ("False".into(), "RolloutPaused".into()));
}

#[test]
fn inconclusive_analysis_can_be_aborted_instead() {
    let (mut w, _v1) = World::deployed(json!({}), json!({"prePromotionAnalysis": analysis()}));
    let v2 = w.set_image("app:2");
    w.step();
    w.make_ready(&v2);
    w.step();
    w.set_run(PrePromotion, AnalysisPhase::Inconclusive, Some("no data"));
    w.step();
    w.abort();
    let d = w.step();
    assert_eq!(d.actions, [deadline(&v2, w.at(30))]);
    let s = w.status();
    assert_eq!(s.phase, Some(RolloutPhase::Degraded));
    assert!(s.pause_conditions.is_empty());
    assert_eq!(s.controller_pause, None);
}

// ----- post-promotion analysis -----

#[test]
fn post_promotion_analysis_runs_after_the_switch_and_its_success_makes_the_revision_stable() {
    let (mut w, v1) = World::deployed(json!({}), json!({"postPromotionAnalysis": analysis()}));
    let v2 = w.set_image("app:2");
    w.step();
    w.make_ready(&v2);
    let d = w.step();
    let post1 = run_name(&v2, PostPromotion, 1);
    assert_eq!(
        summary(&d),
        [
            format!("{:?}", switch(ACTIVE, Some(&v1), &v2)),
            format!("create run {post1}")
        ]
    );
    assert_eq!(w.active(), Some(v2.clone()));
    let s = w.status();
    assert_eq!(
        s.stable_rs,
        Some(v1.clone()),
        "not stable until the analysis passes"
    );
    assert_eq!(s.phase, Some(RolloutPhase::Progressing));
    assert_eq!(
        s.message,
        Some(format!(
            "Waiting for post-promotion analysis {post1} (Pending)"
        ))
    );
    assert_eq!(w.rs(&v1).replicas, 3, "old stable kept up to switch back");
    assert_eq!(w.rs(&v1).scale_down_deadline, None);

    w.set_run_phase(PostPromotion, AnalysisPhase::Running);
    w.advance(600);
    let d = w.step();
    assert!(d.actions.is_empty());
    assert_eq!(w.rs(&v1).replicas, 3, "even past scaleDownDelaySeconds");

    w.set_run_phase(PostPromotion, AnalysisPhase::Successful);
    let d = w.step();
    assert_eq!(d.actions, [deadline(&v1, w.at(30))]);
    assert_eq!(reasons(&d), ["AnalysisRunSuccessful", "RolloutCompleted"]);
    let s = w.status();
    assert_eq!(s.stable_rs, Some(v2));
    assert_eq!(s.phase, Some(RolloutPhase::Healthy));
    assert_eq!(
        bg_status(&w).post_promotion_analysis_run_status,
        run_status(&post1, "Successful", None)
    );
}

#[test]
fn post_promotion_failure_returns_traffic_to_the_old_stable_in_the_same_reconcile() {
    let (mut w, v1) = World::deployed(json!({}), json!({"postPromotionAnalysis": analysis()}));
    let v2 = w.set_image("app:2");
    w.step();
    w.make_ready(&v2);
    w.step();
    assert_eq!(w.active(), Some(v2.clone()));
    let post1 = w.set_run(PostPromotion, AnalysisPhase::Failed, Some("p99 2.3s > 1s"));
    let d = w.step();
    assert_eq!(
        d.actions,
        [deadline(&v2, w.at(30)), switch(ACTIVE, Some(&v2), &v1),]
    );
    assert_eq!(
        reasons(&d),
        ["AnalysisRunFailed", "RolloutAborted", "SwitchService"]
    );
    assert_eq!(
        d.events[2].note,
        format!("Switched active Service web-active from {v2} to {v1}")
    );
    let message = format!(
        "Aborted: post-promotion analysis {post1} Failed: p99 2.3s > 1s; \
         production traffic returned to stable revision {v1}"
    );
    let s = w.status();
    assert_eq!(s.message, Some(message));
    assert_eq!(s.phase, Some(RolloutPhase::Degraded));
    assert_eq!(s.stable_rs, Some(v1.clone()));
    assert_eq!(s.abort, Some(true));
    assert_eq!(
        w.cond("Progressing"),
        ("False".into(), "RolloutAborted".into())
    );
    assert_eq!(
        w.cond("Available"),
        ("True".into(), "AvailableReason".into())
    );
    assert_eq!(w.active(), Some(v1));
}

#[test]
fn inconclusive_post_promotion_analysis_pauses_after_the_switch_until_promoted() {
    let (mut w, v1) = World::deployed(json!({}), json!({"postPromotionAnalysis": analysis()}));
    let v2 = w.set_image("app:2");
    w.step();
    w.make_ready(&v2);
    w.step();
    let t = w.now;
    let post1 = w.set_run(PostPromotion, AnalysisPhase::Inconclusive, Some("no data"));
    let d = w.step();
    assert!(d.actions.is_empty(), "{:?}", d.actions);
    assert_eq!(reasons(&d), ["AnalysisRunInconclusive", "RolloutPaused"]);
    let s = w.status();
    assert_eq!(s.phase, Some(RolloutPhase::Paused));
    assert_eq!(
        s.message,
        Some(format!(
            "Paused: post-promotion analysis {post1} is inconclusive: no data: \
             `rollgate promote web` to continue, `rollgate abort web` to go back"
        ))
    );
    assert_eq!(s.pause_conditions, [pause("InconclusiveAnalysisRun", t)]);
    assert_eq!(s.controller_pause, Some(true));
    assert_eq!(s.stable_rs, Some(v1.clone()), "not stable while in doubt");
    assert_eq!(w.active(), Some(v2.clone()));
    assert_eq!(
        w.rs(&v1).replicas,
        3,
        "the old stable stays up to return to"
    );
    assert_eq!(w.rs(&v1).scale_down_deadline, None);

    w.advance(3600);
    assert!(w.step().actions.is_empty());
    w.promote();
    let d = w.step();
    assert_eq!(d.actions, [deadline(&v1, w.at(30))]);
    assert_eq!(reasons(&d), ["RolloutCompleted"]);
    let s = w.status();
    assert_eq!(s.stable_rs, Some(v2));
    assert_eq!(s.phase, Some(RolloutPhase::Healthy));
    assert!(s.pause_conditions.is_empty());
    assert_eq!(s.controller_pause, None);
}

// ----- run names -----

#[test]
fn a_new_analysis_run_never_reuses_the_name_of_one_that_still_exists() {
    let (mut w, _v1) = World::deployed(json!({}), json!({"prePromotionAnalysis": analysis()}));
    let v2 = w.set_image("app:2");
    w.step();
    w.make_ready(&v2);
    w.step();
    w.set_run_phase(PrePromotion, AnalysisPhase::Failed);
    w.step();
    w.retry();
    w.step();
    let run2 = w.set_run_phase(PrePromotion, AnalysisPhase::Failed);
    w.step();
    assert_eq!(
        w.run_names(),
        [run_name(&v2, PrePromotion, 1), run2.clone()]
    );
    // Someone cleans up the oldest run, then retries.
    w.observed.analysis_runs.remove(0);
    w.retry();
    let d = w.step();
    let run3 = run_name(&v2, PrePromotion, 3);
    assert_eq!(
        summary(&d),
        [
            format!("create run {run3}"),
            format!(
                "{:?}",
                Action::UpdateReplicaSet {
                    name: rs_name(&v2),
                    replicas: None,
                    deadline: DeadlineChange::Clear,
                    revision: None,
                }
            ),
        ]
    );
    assert_eq!(
        w.phase(),
        Some(RolloutPhase::Progressing),
        "not run 2's verdict again"
    );
    assert_eq!(
        w.message(),
        format!("Waiting for pre-promotion analysis {run3} (Pending)")
    );
}
