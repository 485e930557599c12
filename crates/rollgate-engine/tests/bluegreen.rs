//! Every blue/green transition of the engine, driven through the pure test world.
//!
//! Each `World::step` also checks the traffic invariant, consistency and idempotence (see
//! `support`), so every test below exercises those too.

mod support;

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{OwnerReference, Time};
use rollgate_api::labels::{ANALYSIS_KIND, POD_TEMPLATE_HASH, REVISION, ROLLOUT_NAME};
use rollgate_api::{AnalysisPhase, PauseCondition, RolloutAnalysisRunStatus, RolloutPhase};
use rollgate_engine::{Action, AnalysisKind, DeadlineChange, ServiceRole};
use serde_json::json;
use support::{
    ACTIVE, PREVIEW, World, analysis, deadline, reasons, requeue, rs_name, run_name, scale,
    summary, switch,
};

use AnalysisKind::{PostPromotion, PrePromotion};

fn manual() -> serde_json::Value {
    json!({"autoPromotionEnabled": false})
}

fn owner() -> OwnerReference {
    OwnerReference {
        api_version: "rollgate.dev/v1alpha1".into(),
        kind: "Rollout".into(),
        name: "web".into(),
        uid: "6f1c0d2e-uid".into(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect()
}

fn scale_to_zero(hash: &str, clear: bool) -> Action {
    Action::UpdateReplicaSet {
        name: rs_name(hash),
        replicas: Some(0),
        deadline: if clear {
            DeadlineChange::Clear
        } else {
            DeadlineChange::Keep
        },
        revision: None,
    }
}

fn terminate(name: &str) -> Action {
    Action::TerminateAnalysisRun { name: name.into() }
}

fn pause(reason: &str, at: k8s_openapi::jiff::Timestamp) -> PauseCondition {
    PauseCondition {
        reason: reason.parse().expect("a pause reason"),
        start_time: Time(at),
    }
}

fn run_status(name: &str, phase: &str, message: Option<&str>) -> Option<RolloutAnalysisRunStatus> {
    Some(RolloutAnalysisRunStatus {
        name: name.into(),
        status: phase.into(),
        message: message.map(str::to_string),
    })
}

fn bg_status(w: &World) -> rollgate_api::BlueGreenStatus {
    w.status().blue_green.expect("blueGreen status")
}

// ----- first deploy -----

#[test]
fn first_deploy_creates_the_replica_set_at_full_size_and_points_both_services_at_it() {
    let mut w = World::new(json!({}), json!({}));
    let v1 = w.hash_of("app:1");
    let d = w.step();

    let Action::CreateReplicaSet(rs) = &d.actions[0] else {
        panic!("first action creates the ReplicaSet: {:?}", d.actions)
    };
    assert_eq!(rs.metadata.name.as_deref(), Some(rs_name(&v1).as_str()));
    assert_eq!(rs.metadata.namespace.as_deref(), Some("shop"));
    assert_eq!(
        rs.metadata.labels,
        Some(labels(&[(POD_TEMPLATE_HASH, &v1), (ROLLOUT_NAME, "web")]))
    );
    assert_eq!(rs.metadata.annotations, Some(labels(&[(REVISION, "1")])));
    assert_eq!(rs.metadata.owner_references, Some(vec![owner()]));
    assert_eq!(rs.spec.replicas, Some(3));
    assert_eq!(rs.spec.min_ready_seconds, Some(0));
    assert_eq!(
        rs.spec.selector.match_labels,
        Some(labels(&[("app", "web"), (POD_TEMPLATE_HASH, &v1)]))
    );
    let template_labels = rs
        .spec
        .template
        .as_ref()
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.clone());
    assert_eq!(
        template_labels,
        Some(labels(&[("app", "web"), (POD_TEMPLATE_HASH, &v1)]))
    );
    assert_eq!(
        d.actions[1..],
        [switch(ACTIVE, None, &v1), switch(PREVIEW, None, &v1)]
    );
    assert_eq!(
        reasons(&d),
        [
            "ScalingReplicaSet",
            "ActiveServiceSwitched",
            "PreviewServiceSwitched"
        ]
    );
    assert_eq!(
        d.events[0].note,
        format!("Created ReplicaSet web-{v1} (revision 1) with 3 replicas")
    );
    // Nothing else could serve: the active Service points at the new pods before they are
    // ready (the one exception to the invariant), and the rollout is not stable yet.
    assert_eq!(w.active(), Some(v1.clone()));
    assert_eq!(w.preview(), Some(v1.clone()));
    let s = w.status();
    assert_eq!(s.phase, Some(RolloutPhase::Progressing));
    assert_eq!(
        s.message.as_deref(),
        Some(format!("First deploy: waiting for ReplicaSet web-{v1}: 0/3 pods available").as_str())
    );
    assert_eq!(s.stable_rs, None);
    assert_eq!(s.current_pod_hash, Some(v1.clone()));
    assert_eq!(s.current_revision, Some(1));
    assert_eq!(s.strategy.as_deref(), Some("BlueGreen"));
    assert_eq!(s.observed_generation, Some(1));
    assert_eq!(
        w.cond("Progressing"),
        ("True".into(), "ReplicaSetUpdated".into())
    );
    assert_eq!(w.cond("Available"), ("False".into(), "NotAvailable".into()));
    assert_eq!(d.requeue_after, requeue(600));

    w.set_ready(&v1, 2);
    let d = w.step();
    assert!(d.actions.is_empty());
    assert_eq!(
        w.message(),
        format!("First deploy: waiting for ReplicaSet web-{v1}: 2/3 pods available")
    );
    assert_eq!(w.status().stable_rs, None);

    w.make_ready(&v1);
    let d = w.step();
    assert!(d.actions.is_empty(), "{:?}", d.actions);
    assert_eq!(reasons(&d), ["RolloutCompleted"]);
    assert_eq!(
        d.events[0].note,
        format!("First revision ({v1}) is available with 3 pods")
    );
    let s = w.status();
    assert_eq!(s.phase, Some(RolloutPhase::Healthy));
    assert_eq!(
        s.message.as_deref(),
        Some(format!("Healthy: revision {v1} serves with 3/3 pods").as_str())
    );
    assert_eq!(s.stable_rs, Some(v1.clone()));
    assert_eq!(
        (
            s.replicas,
            s.updated_replicas,
            s.ready_replicas,
            s.available_replicas
        ),
        (Some(3), Some(3), Some(3), Some(3))
    );
    assert_eq!(s.selector.as_deref(), Some("app=web"));
    for (type_, status, reason) in [
        ("Progressing", "True", "NewReplicaSetAvailable"),
        ("Available", "True", "AvailableReason"),
        ("Paused", "False", "RolloutResumed"),
        ("Completed", "True", "RolloutCompleted"),
        ("Healthy", "True", "RolloutHealthy"),
    ] {
        assert_eq!(w.cond(type_), (status.into(), reason.into()), "{type_}");
    }
    assert!(!w.has_condition("InvalidSpec"));
    assert_eq!(d.requeue_after, None);
    assert!(
        w.observed.analysis_runs.is_empty(),
        "no analysis on a first deploy"
    );
}

#[test]
fn first_deploy_ignores_analysis_and_pause_settings() {
    let mut w = World::new(
        json!({}),
        json!({"autoPromotionEnabled": false, "prePromotionAnalysis": analysis(),
               "postPromotionAnalysis": analysis(), "previewReplicaCount": 1}),
    );
    let v1 = w.hash_of("app:1");
    let d = w.step();
    assert_eq!(summary(&d)[0], format!("create rs web-{v1} x3"));
    w.make_ready(&v1);
    w.step();
    assert_eq!(w.phase(), Some(RolloutPhase::Healthy));
    assert_eq!(w.status().stable_rs, Some(v1));
    assert!(w.observed.analysis_runs.is_empty());
    assert!(w.status().pause_conditions.is_empty());
}

#[test]
fn first_deploy_of_zero_replicas_is_healthy_at_once() {
    let mut w = World::new(json!({"replicas": 0}), json!({}));
    let v1 = w.hash_of("app:1");
    let d = w.step();
    assert_eq!(summary(&d)[0], format!("create rs web-{v1} x0"));
    assert_eq!(w.phase(), Some(RolloutPhase::Healthy));
    assert_eq!(w.status().stable_rs, Some(v1.clone()));
    assert_eq!(
        w.message(),
        format!("Healthy: revision {v1} serves with 0/0 pods")
    );
    assert_eq!(
        w.cond("Available"),
        ("True".into(), "AvailableReason".into())
    );
}

#[test]
fn a_first_deploy_that_never_becomes_ready_is_reported_but_not_aborted() {
    let mut w = World::new(json!({"progressDeadlineSeconds": 60}), json!({}));
    let v1 = w.crash("app:1");
    w.step();
    w.advance(60);
    let d = w.step();
    let waiting = format!("First deploy: waiting for ReplicaSet web-{v1}: 0/3 pods available");
    assert!(
        d.actions.is_empty(),
        "nothing to fall back to: {:?}",
        d.actions
    );
    assert_eq!(reasons(&d), ["ProgressDeadlineExceeded"]);
    assert_eq!(d.events[0].note, format!("No progress for 60s: {waiting}"));
    let s = w.status();
    assert_eq!(s.phase, Some(RolloutPhase::Degraded));
    assert_eq!(
        s.message,
        Some(format!("ProgressDeadlineExceeded: {waiting}"))
    );
    assert_eq!(s.abort, None);
    assert_eq!(w.active(), Some(v1));
}

#[test]
fn scaling_a_healthy_rollout_resizes_the_stable_replica_set_in_place() {
    let (mut w, v1) = World::deployed(json!({}), json!({}));
    // More replicas than ready pods is the request itself, not a switch: no invariant here.
    w.check_invariant = false;
    w.edit_spec(|s| s.replicas = Some(5));
    let d = w.step();
    assert_eq!(d.actions, [scale(&v1, 5)]);
    assert_eq!(w.phase(), Some(RolloutPhase::Progressing));
    assert_eq!(
        w.message(),
        format!("Waiting for stable ReplicaSet web-{v1}: 3/5 pods available")
    );
    assert_eq!(w.cond("Available"), ("False".into(), "NotAvailable".into()));
    w.make_ready(&v1);
    w.step();
    w.check_invariant = true;
    assert_eq!(w.phase(), Some(RolloutPhase::Healthy));
    w.edit_spec(|s| s.replicas = Some(2));
    let d = w.step();
    assert_eq!(d.actions, [scale(&v1, 2)]);
    assert_eq!(w.phase(), Some(RolloutPhase::Healthy));
    assert_eq!(
        w.message(),
        format!("Healthy: revision {v1} serves with 2/2 pods")
    );
}

// ----- a new revision -----

#[test]
fn new_revision_starts_a_preview_at_preview_replica_count_behind_the_preview_service() {
    let (mut w, v1) = World::deployed(
        json!({}),
        json!({"autoPromotionEnabled": false, "previewReplicaCount": 1}),
    );
    let v2 = w.set_image("app:2");
    let d = w.step();
    assert_eq!(
        summary(&d),
        [
            format!("{:?}", switch(PREVIEW, Some(&v1), &v2)),
            format!("create rs web-{v2} x1"),
        ]
    );
    assert_eq!(
        reasons(&d),
        [
            "RolloutUpdated",
            "PreviewServiceSwitched",
            "ScalingReplicaSet"
        ]
    );
    assert_eq!(
        d.events[0].note,
        format!("New revision 2 (pod-template-hash {v2}): starting blue/green release")
    );
    assert_eq!(w.rs(&v2).replicas, 1);
    assert_eq!(w.rs(&v2).revision, 2);
    assert_eq!(w.rs(&v1).replicas, 3);
    assert_eq!(w.rs(&v1).scale_down_deadline, None);
    assert_eq!(w.active(), Some(v1.clone()));
    assert_eq!(w.preview(), Some(v2.clone()));
    let s = w.status();
    assert_eq!(s.phase, Some(RolloutPhase::Progressing));
    assert_eq!(
        s.message.as_deref(),
        Some(format!("Waiting for preview ReplicaSet web-{v2}: 0/1 pods available").as_str())
    );
    assert_eq!(s.current_pod_hash, Some(v2.clone()));
    assert_eq!(s.current_revision, Some(2));
    assert_eq!(s.stable_rs, Some(v1.clone()));
    assert_eq!(s.observed_generation, Some(2));
    assert_eq!(
        (s.replicas, s.updated_replicas, s.ready_replicas),
        (Some(4), Some(1), Some(3))
    );
    assert_eq!(
        w.cond("Progressing"),
        ("True".into(), "ReplicaSetUpdated".into())
    );
    assert_eq!(
        w.cond("Available"),
        ("True".into(), "AvailableReason".into())
    );
    assert_eq!(
        w.cond("Completed"),
        ("False".into(), "RolloutNotCompleted".into())
    );
    assert_eq!(d.requeue_after, requeue(600));

    // It waits for the preview pods, whatever the time.
    w.advance(120);
    let d = w.step();
    assert!(d.actions.is_empty() && d.events.is_empty());
    assert_eq!(w.phase(), Some(RolloutPhase::Progressing));
    assert_eq!(
        w.rs(&v2).replicas,
        1,
        "not scaled beyond previewReplicaCount"
    );
    assert_eq!(
        d.requeue_after,
        requeue(480),
        "deadline counted from the last progress"
    );

    w.make_ready(&v2);
    w.step();
    assert_eq!(w.phase(), Some(RolloutPhase::Paused));
    assert_eq!(w.rs(&v2).replicas, 1, "still 1 while paused");
    assert_eq!(w.active(), Some(v1));
}

#[test]
fn preview_replica_count_defaults_to_full_size_and_is_capped_at_replicas() {
    for bg in [json!({}), json!({"previewReplicaCount": 7})] {
        let (mut w, _) = World::deployed(json!({}), bg);
        let v2 = w.set_image("app:2");
        let d = w.step();
        assert_eq!(summary(&d)[1], format!("create rs web-{v2} x3"));
    }
}

#[test]
fn a_rollout_without_preview_service_releases_through_the_active_service_only() {
    let (mut w, v1) = World::deployed(json!({}), json!({"previewService": null}));
    assert_eq!(w.preview(), None, "the preview Service is left alone");
    let v2 = w.set_image("app:2");
    let d = w.step();
    assert_eq!(summary(&d), [format!("create rs web-{v2} x3")]);
    w.make_ready(&v2);
    let d = w.step();
    assert_eq!(
        d.actions,
        [switch(ACTIVE, Some(&v1), &v2), deadline(&v1, w.at(30))]
    );
    assert_eq!(w.preview(), None);
    assert_eq!(w.status().stable_rs, Some(v2));
    assert_eq!(bg_status(&w).preview_selector, None);
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
            (ANALYSIS_KIND, "pre-promotion")
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
    assert_eq!(reasons(&d), ["RolloutPromoted", "ScalingReplicaSet"]);
    assert_eq!(
        d.events[0].note,
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
    assert_eq!(
        d.actions,
        [deadline(&v2, w.at(30)), switch(PREVIEW, Some(&v2), &v1)]
    );
    assert_eq!(reasons(&d), ["RolloutAborted", "PreviewServiceSwitched"]);
    assert!(d.events[0].warning);
    assert_eq!(d.events[0].note, message);
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
    assert_eq!(w.preview(), Some(v1.clone()));
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
    assert_eq!(reasons(&d), ["RolloutPaused"]);
    assert_eq!(d.events[0].note, "Rollout paused (InconclusiveAnalysis)");
    let s = w.status();
    assert_eq!(s.phase, Some(RolloutPhase::Paused));
    assert_eq!(
        s.message,
        Some(format!(
            "Paused: pre-promotion analysis {run1} is inconclusive: no data: \
             `rollgate promote web` to continue, `rollgate abort web` to go back"
        ))
    );
    assert_eq!(s.pause_conditions, [pause("InconclusiveAnalysis", t)]);
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
    assert_eq!(w.cond("Paused"), ("False".into(), "RolloutResumed".into()));
}

#[test]
fn inconclusive_analysis_can_be_aborted_instead() {
    let (mut w, v1) = World::deployed(json!({}), json!({"prePromotionAnalysis": analysis()}));
    let v2 = w.set_image("app:2");
    w.step();
    w.make_ready(&v2);
    w.step();
    w.set_run(PrePromotion, AnalysisPhase::Inconclusive, Some("no data"));
    w.step();
    w.abort();
    let d = w.step();
    assert_eq!(
        d.actions,
        [deadline(&v2, w.at(30)), switch(PREVIEW, Some(&v2), &v1)]
    );
    let s = w.status();
    assert_eq!(s.phase, Some(RolloutPhase::Degraded));
    assert!(s.pause_conditions.is_empty());
    assert_eq!(s.controller_pause, None);
}

// ----- pauses and promotion -----

#[test]
fn with_auto_promotion_disabled_the_release_pauses_until_promoted() {
    let (mut w, v1) = World::deployed(json!({}), manual());
    let v2 = w.set_image("app:2");
    w.step();
    w.make_ready(&v2);
    let t = w.now;
    let d = w.step();
    assert!(d.actions.is_empty());
    assert_eq!(reasons(&d), ["RolloutPaused"]);
    assert_eq!(d.events[0].note, "Rollout paused (BlueGreenPause)");
    let s = w.status();
    assert_eq!(s.phase, Some(RolloutPhase::Paused));
    assert_eq!(
        s.message,
        Some(format!(
            "Paused: preview {v2} is ready and waiting for promotion \
             (`rollgate promote web`)"
        ))
    );
    assert_eq!(s.pause_conditions, [pause("BlueGreenPause", t)]);
    assert_eq!(s.controller_pause, Some(true));
    assert_eq!(w.cond("Paused"), ("True".into(), "RolloutPaused".into()));
    assert_eq!(
        w.cond("Progressing"),
        ("True".into(), "RolloutPaused".into())
    );
    assert_eq!(d.requeue_after, None, "no timer: only a human promotes");

    for _ in 0..24 {
        w.advance(3600);
        let d = w.step();
        assert!(d.actions.is_empty() && d.events.is_empty());
    }
    assert_eq!(w.active(), Some(v1.clone()));
    assert_eq!(w.status().pause_conditions, [pause("BlueGreenPause", t)]);

    w.promote();
    let d = w.step();
    assert_eq!(
        d.actions,
        [switch(ACTIVE, Some(&v1), &v2), deadline(&v1, w.at(30))]
    );
    assert_eq!(
        reasons(&d),
        [
            "RolloutPromoted",
            "ActiveServiceSwitched",
            "RolloutCompleted"
        ]
    );
    let s = w.status();
    assert_eq!(s.phase, Some(RolloutPhase::Healthy));
    assert_eq!(s.stable_rs, Some(v2));
    assert!(s.pause_conditions.is_empty());
    assert_eq!(s.controller_pause, None);
}

#[test]
fn auto_promotion_seconds_promotes_on_time_and_requeues_for_it() {
    let (mut w, v1) = World::deployed(json!({}), json!({"autoPromotionSeconds": 60}));
    let v2 = w.set_image("app:2");
    w.step();
    w.make_ready(&v2);
    let t = w.now;
    let d = w.step();
    let s = w.status();
    assert_eq!(s.phase, Some(RolloutPhase::Paused));
    assert_eq!(s.pause_conditions, [pause("BlueGreenPause", t)]);
    assert_eq!(
        s.message,
        Some(format!(
            "Paused: preview {v2} is ready; promoting automatically at {} \
             (autoPromotionSeconds: 60), or now with `rollgate promote web`",
            w.at(60)
        ))
    );
    assert_eq!(d.requeue_after, requeue(60));

    w.advance(59);
    let d = w.step();
    assert!(d.actions.is_empty());
    assert_eq!(d.requeue_after, requeue(1));
    assert_eq!(w.active(), Some(v1.clone()));

    w.advance(1);
    let d = w.step();
    assert_eq!(
        d.actions,
        [switch(ACTIVE, Some(&v1), &v2), deadline(&v1, w.at(30))]
    );
    assert_eq!(
        reasons(&d),
        [
            "AutoPromotion",
            "RolloutPromoted",
            "ActiveServiceSwitched",
            "RolloutCompleted"
        ]
    );
    assert_eq!(
        d.events[0].note,
        "autoPromotionSeconds (60s) elapsed: promoting"
    );
    assert_eq!(w.status().stable_rs, Some(v2));
    assert_eq!(
        d.requeue_after,
        requeue(30),
        "next: the old revision's scale-down"
    );
}

#[test]
fn a_human_may_promote_before_auto_promotion_seconds_elapse() {
    let (mut w, v1) = World::deployed(json!({}), json!({"autoPromotionSeconds": 600}));
    let v2 = w.set_image("app:2");
    w.step();
    w.make_ready(&v2);
    w.step();
    w.advance(10);
    w.promote();
    let d = w.step();
    assert_eq!(d.actions[0], switch(ACTIVE, Some(&v1), &v2));
    assert!(!reasons(&d).contains(&"AutoPromotion"));
    assert_eq!(w.status().stable_rs, Some(v2));
}

/// Rollgate pauses when `autoPromotionEnabled` is false *or* `autoPromotionSeconds` is set,
/// and the timer promotes in both cases. (Argo Rollouts ignores the timer when
/// `autoPromotionEnabled` is false, argo-rollouts#2000; this pins rollgate's documented
/// field semantics: "Promote automatically this many seconds after the pause starts".)
#[test]
fn auto_promotion_seconds_also_ends_the_pause_of_a_manual_rollout() {
    let (mut w, v1) = World::deployed(
        json!({}),
        json!({"autoPromotionEnabled": false, "autoPromotionSeconds": 120}),
    );
    let v2 = w.set_image("app:2");
    w.step();
    w.make_ready(&v2);
    let d = w.step();
    assert_eq!(w.phase(), Some(RolloutPhase::Paused));
    assert_eq!(d.requeue_after, requeue(120));
    w.advance(119);
    w.step();
    assert_eq!(w.active(), Some(v1));
    w.advance(1);
    w.step();
    assert_eq!(w.active(), Some(v2.clone()));
    assert_eq!(w.status().stable_rs, Some(v2));
}

#[test]
fn promotion_scales_to_full_size_and_switches_only_when_every_pod_is_ready() {
    let (mut w, v1) = World::deployed(
        json!({}),
        json!({"autoPromotionEnabled": false, "previewReplicaCount": 1}),
    );
    let v2 = w.set_image("app:2");
    w.step();
    w.make_ready(&v2);
    w.step();
    assert_eq!(w.phase(), Some(RolloutPhase::Paused));

    w.promote();
    let d = w.step();
    assert_eq!(d.actions, [scale(&v2, 3)]);
    assert_eq!(reasons(&d), ["RolloutPromoted", "ScalingReplicaSet"]);
    assert_eq!(
        d.events[1].note,
        format!("Scaled up ReplicaSet web-{v2} from 1 to 3")
    );
    assert_eq!(w.active(), Some(v1.clone()));
    assert_eq!(w.phase(), Some(RolloutPhase::Progressing));
    assert_eq!(
        w.message(),
        format!(
            "Promoting: waiting for ReplicaSet web-{v2}: 1/3 pods available before \
             switching the active Service"
        )
    );
    assert_eq!(bg_status(&w).scale_up_preview_check_point, Some(true));
    assert!(w.status().pause_conditions.is_empty());
    assert_eq!(w.status().controller_pause, None);

    w.set_ready(&v2, 2);
    let d = w.step();
    assert!(
        d.actions.is_empty(),
        "2/3 ready is not enough: {:?}",
        d.actions
    );
    assert_eq!(w.active(), Some(v1.clone()));
    assert!(
        w.message().contains("2/3 pods available"),
        "{}",
        w.message()
    );

    w.make_ready(&v2);
    let d = w.step();
    assert_eq!(
        d.actions,
        [switch(ACTIVE, Some(&v1), &v2), deadline(&v1, w.at(30))]
    );
    assert_eq!(reasons(&d), ["ActiveServiceSwitched", "RolloutCompleted"]);
    assert_eq!(
        d.events[1].note,
        format!("Revision {v2} is stable; previous revision {v1} scales down in 30s")
    );
    let s = w.status();
    assert_eq!(s.phase, Some(RolloutPhase::Healthy));
    assert_eq!(s.stable_rs, Some(v2.clone()));
    assert_eq!(bg_status(&w).scale_up_preview_check_point, None);
    assert_eq!(
        w.cond("Completed"),
        ("True".into(), "RolloutCompleted".into())
    );
}

#[test]
fn a_preview_whose_pods_are_available_but_not_all_ready_is_not_promoted() {
    let (mut w, v1) = World::deployed(json!({}), json!({}));
    let v2 = w.set_image("app:2");
    w.step();
    w.make_ready(&v2);
    w.observed
        .replica_sets
        .iter_mut()
        .filter(|r| r.hash == v2)
        .for_each(|r| r.available = 2);
    let d = w.step();
    assert!(d.actions.is_empty());
    assert_eq!(w.active(), Some(v1));
    assert_eq!(
        w.message(),
        format!("Waiting for preview ReplicaSet web-{v2}: 2/3 pods available")
    );
}

#[test]
fn spec_paused_holds_a_ready_preview_until_unpaused() {
    let (mut w, v1) = World::deployed(json!({"paused": true}), json!({}));
    let v2 = w.set_image("app:2");
    let d = w.step();
    assert_eq!(summary(&d)[1], format!("create rs web-{v2} x3"));
    w.make_ready(&v2);
    for _ in 0..3 {
        let d = w.step();
        assert!(d.actions.is_empty());
        w.advance(3600);
    }
    let s = w.status();
    assert_eq!(s.phase, Some(RolloutPhase::Paused));
    assert_eq!(
        s.message.as_deref(),
        Some("Paused (spec.paused is true): set it to false to continue")
    );
    assert!(
        s.pause_conditions.is_empty(),
        "spec.paused is not a controller pause"
    );
    assert_eq!(w.cond("Paused"), ("True".into(), "RolloutPaused".into()));
    assert_eq!(w.active(), Some(v1.clone()));
    // A promote does not override spec.paused.
    w.promote();
    assert!(w.step().actions.is_empty());

    w.edit_spec(|s| s.paused = Some(false));
    let d = w.step();
    assert_eq!(d.actions[0], switch(ACTIVE, Some(&v1), &v2));
    assert_eq!(w.status().observed_generation, Some(3));
    assert_eq!(w.phase(), Some(RolloutPhase::Healthy));
}

#[test]
fn promote_full_skips_analysis_and_the_pause() {
    let (mut w, v1) = World::deployed(
        json!({}),
        json!({"autoPromotionEnabled": false, "previewReplicaCount": 1,
               "prePromotionAnalysis": analysis(), "postPromotionAnalysis": analysis()}),
    );
    let v2 = w.set_image("app:2");
    w.step();
    w.make_ready(&v2);
    w.step();
    let pre = w.set_run_phase(PrePromotion, AnalysisPhase::Running);
    w.promote_full();
    let d = w.step();
    assert_eq!(d.actions, [scale(&v2, 3)]);
    assert_eq!(reasons(&d), ["RolloutPromoted", "ScalingReplicaSet"]);
    assert_eq!(w.active(), Some(v1.clone()));
    w.make_ready(&v2);
    let d = w.step();
    // The skipped run is stopped once the release is complete.
    assert_eq!(
        d.actions,
        [
            switch(ACTIVE, Some(&v1), &v2),
            deadline(&v1, w.at(30)),
            terminate(&pre)
        ]
    );
    let s = w.status();
    assert_eq!(s.stable_rs, Some(v2));
    assert_eq!(s.phase, Some(RolloutPhase::Healthy));
    assert_eq!(s.promote_full, None, "cleared once the release completed");
    assert!(s.pause_conditions.is_empty());
    assert_eq!(w.run_names(), [pre], "no post-promotion run");
}

#[test]
fn promote_full_during_post_promotion_analysis_completes_at_once() {
    let (mut w, v1) = World::deployed(json!({}), json!({"postPromotionAnalysis": analysis()}));
    let v2 = w.set_image("app:2");
    w.step();
    w.make_ready(&v2);
    w.step();
    let post = w.set_run_phase(PostPromotion, AnalysisPhase::Running);
    w.promote_full();
    let d = w.step();
    assert_eq!(d.actions, [deadline(&v1, w.at(30)), terminate(&post)]);
    assert_eq!(w.status().stable_rs, Some(v2));
    assert_eq!(w.status().promote_full, None);
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
    assert_eq!(reasons(&d), ["RolloutCompleted"]);
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
        [
            deadline(&v2, w.at(30)),
            switch(ACTIVE, Some(&v2), &v1),
            switch(PREVIEW, Some(&v2), &v1),
        ]
    );
    assert_eq!(
        reasons(&d),
        [
            "RolloutAborted",
            "ActiveServiceSwitched",
            "PreviewServiceSwitched"
        ]
    );
    assert_eq!(
        d.events[1].note,
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
fn an_abort_after_the_switch_waits_for_the_stable_pods_before_switching_back() {
    let (mut w, v1) = World::deployed(json!({}), json!({"postPromotionAnalysis": analysis()}));
    let v2 = w.set_image("app:2");
    w.step();
    w.make_ready(&v2);
    w.step();
    // The old stable pods were evicted meanwhile.
    w.set_ready(&v1, 1);
    w.abort();
    let d = w.step();
    assert_eq!(
        d.actions,
        [
            deadline(&v2, w.at(30)),
            switch(PREVIEW, Some(&v2), &v1),
            terminate(&run_name(&v2, PostPromotion, 1)),
        ]
    );
    assert_eq!(w.active(), Some(v2.clone()), "never onto 1/3 ready pods");
    let base =
        format!("Aborted by user (status.abort): production traffic stays on stable revision {v1}");
    assert_eq!(
        w.message(),
        format!("{base} (waiting for stable pods to be ready before switching back)")
    );
    // The serving revision is not scaled down while it still serves.
    w.advance(60);
    let d = w.step();
    assert!(d.actions.is_empty(), "{:?}", d.actions);
    assert_eq!(w.rs(&v2).replicas, 3);

    w.make_ready(&v1);
    let d = w.step();
    assert_eq!(
        d.actions,
        [switch(ACTIVE, Some(&v2), &v1), scale_to_zero(&v2, true)]
    );
    assert_eq!(w.message(), base);
}

// ----- scale-down of old revisions -----

#[test]
fn old_revision_is_scaled_down_only_after_scale_down_delay_seconds() {
    let (mut w, v1) = World::deployed(json!({}), json!({"scaleDownDelaySeconds": 120}));
    let v2 = w.set_image("app:2");
    w.step();
    w.make_ready(&v2);
    let d = w.step();
    assert_eq!(
        d.actions,
        [switch(ACTIVE, Some(&v1), &v2), deadline(&v1, w.at(120))]
    );
    assert_eq!(w.rs(&v1).scale_down_deadline, Some(w.at(120)));
    assert_eq!(d.requeue_after, requeue(120));
    assert_eq!(
        d.events[2].note,
        format!("Revision {v2} is stable; previous revision {v1} scales down in 120s")
    );

    w.advance(119);
    let d = w.step();
    assert!(d.actions.is_empty());
    assert_eq!(d.requeue_after, requeue(1));
    assert_eq!(w.rs(&v1).replicas, 3);

    w.advance(1);
    let d = w.step();
    assert_eq!(d.actions, [scale_to_zero(&v1, true)]);
    assert_eq!(
        d.events[0].note,
        format!("Scaled down ReplicaSet web-{v1} from 3 to 0 (scale-down delay passed)")
    );
    assert_eq!(d.requeue_after, None);
    assert_eq!(w.rs(&v1).scale_down_deadline, None);
    assert_eq!(w.phase(), Some(RolloutPhase::Healthy));
    assert_eq!(w.active(), Some(v2));
}

#[test]
fn scale_down_delay_revision_limit_caps_the_old_revisions_kept_up() {
    let (mut w, v1) = World::deployed(
        json!({}),
        json!({"scaleDownDelaySeconds": 600, "scaleDownDelayRevisionLimit": 1}),
    );
    let v2 = w.set_image("app:2");
    w.run_until_settled();
    assert_eq!(w.rs(&v1).replicas, 3, "one old revision may wait");
    let v3 = w.set_image("app:3");
    w.step();
    w.make_ready(&v3);
    let d = w.step();
    assert_eq!(
        d.actions,
        [
            switch(ACTIVE, Some(&v2), &v3),
            deadline(&v2, w.at(600)),
            scale_to_zero(&v1, true),
        ]
    );
    assert_eq!(
        d.events.last().map(|e| e.note.clone()),
        Some(format!(
            "Scaled down ReplicaSet web-{v1} from 3 to 0 (beyond scaleDownDelayRevisionLimit)"
        ))
    );
    assert_eq!(w.rs(&v2).replicas, 3, "the newest old revision waits");
    assert_eq!(w.rs(&v1).replicas, 0);
    assert_eq!(w.rs(&v1).scale_down_deadline, None);
    assert_eq!(d.requeue_after, requeue(600));
}

#[test]
fn scale_down_delay_revision_limit_zero_scales_the_old_revision_down_at_the_switch() {
    let (mut w, v1) = World::deployed(json!({}), json!({"scaleDownDelayRevisionLimit": 0}));
    let v2 = w.set_image("app:2");
    w.step();
    w.make_ready(&v2);
    let d = w.step();
    assert_eq!(
        d.actions,
        [
            switch(ACTIVE, Some(&v1), &v2),
            deadline(&v1, w.at(30)),
            scale_to_zero(&v1, true),
        ]
    );
    assert_eq!(
        w.rs(&v1).scale_down_deadline,
        None,
        "no deadline left behind"
    );
    assert_eq!(d.requeue_after, None, "nothing is waiting");
}

#[test]
fn zero_scale_down_delay_scales_the_old_revision_down_at_the_switch() {
    let (mut w, v1) = World::deployed(json!({}), json!({"scaleDownDelaySeconds": 0}));
    let v2 = w.set_image("app:2");
    w.step();
    w.make_ready(&v2);
    let d = w.step();
    assert_eq!(
        d.actions,
        [
            switch(ACTIVE, Some(&v1), &v2),
            deadline(&v1, w.now),
            scale_to_zero(&v1, true),
        ]
    );
    assert_eq!(w.rs(&v1).replicas, 0);
    assert_eq!(w.rs(&v1).scale_down_deadline, None);
}

#[test]
fn revision_history_limit_deletes_the_oldest_idle_replica_sets() {
    let (mut w, v1) = World::deployed(
        json!({"revisionHistoryLimit": 1}),
        json!({"scaleDownDelaySeconds": 0}),
    );
    let v2 = w.set_image("app:2");
    w.run_until_settled();
    assert_eq!(w.rs(&v1).replicas, 0, "one idle revision is kept");
    let v3 = w.set_image("app:3");
    w.step();
    w.make_ready(&v3);
    let d = w.step();
    assert_eq!(
        d.actions,
        [
            switch(ACTIVE, Some(&v2), &v3),
            deadline(&v2, w.now),
            scale_to_zero(&v2, true),
            Action::DeleteReplicaSet { name: rs_name(&v1) },
        ]
    );
    assert_eq!(
        w.notes("ReplicaSetPruned"),
        [format!(
            "Deleted ReplicaSet web-{v1} (revision 1) beyond revisionHistoryLimit 1"
        )]
    );
    let v4 = w.set_image("app:4");
    w.run_until_settled();
    let left: Vec<(String, i64, i32)> = w
        .observed
        .replica_sets
        .iter()
        .map(|r| (r.hash.clone(), r.revision, r.replicas))
        .collect();
    assert_eq!(left, [(v3, 3, 0), (v4, 4, 3)]);
}

// ----- abort and retry -----

#[test]
fn user_abort_keeps_traffic_on_stable_degrades_and_scales_the_preview_down_after_the_delay() {
    let (mut w, v1) = World::deployed(
        json!({}),
        json!({"autoPromotionEnabled": false, "abortScaleDownDelaySeconds": 45,
               "prePromotionAnalysis": analysis()}),
    );
    let v2 = w.set_image("app:2");
    w.step();
    w.make_ready(&v2);
    w.step();
    let run1 = w.set_run_phase(PrePromotion, AnalysisPhase::Running);
    w.step();
    let t = w.now;
    w.abort();
    let d = w.step();
    assert_eq!(
        d.actions,
        [
            deadline(&v2, w.at(45)),
            switch(PREVIEW, Some(&v2), &v1),
            terminate(&run1),
        ]
    );
    let message =
        format!("Aborted by user (status.abort): production traffic stays on stable revision {v1}");
    assert_eq!(reasons(&d), ["RolloutAborted", "PreviewServiceSwitched"]);
    assert!(d.events[0].warning);
    assert_eq!(d.events[0].note, message);
    let s = w.status();
    assert_eq!(s.phase, Some(RolloutPhase::Degraded));
    assert_eq!(s.message, Some(message.clone()));
    assert_eq!(s.abort, Some(true));
    assert_eq!(s.aborted_at, Some(Time(t)));
    assert!(s.pause_conditions.is_empty());
    assert_eq!(
        w.cond("Progressing"),
        ("False".into(), "RolloutAborted".into())
    );
    assert_eq!(
        w.cond("Healthy"),
        ("False".into(), "RolloutNotHealthy".into())
    );
    assert_eq!(w.active(), Some(v1.clone()));
    assert_eq!(d.requeue_after, requeue(45));
    assert!(w.run(&run1).terminating);

    w.advance(44);
    let d = w.step();
    assert!(d.actions.is_empty());
    assert_eq!(w.rs(&v2).replicas, 3);
    w.advance(1);
    let d = w.step();
    assert_eq!(d.actions, [scale_to_zero(&v2, true)]);
    assert_eq!(
        w.phase(),
        Some(RolloutPhase::Degraded),
        "until retried or superseded"
    );
    assert_eq!(w.message(), message);
    assert_eq!(w.status().aborted_at, Some(Time(t)));
    assert_eq!(w.notes("RolloutAborted").len(), 1, "reported once");
}

#[test]
fn abort_without_a_release_in_flight_is_ignored() {
    let (mut w, v1) = World::deployed(json!({}), json!({}));
    w.abort();
    let d = w.step();
    assert!(d.actions.is_empty() && d.events.is_empty());
    assert_eq!(w.status().abort, None);
    assert_eq!(w.phase(), Some(RolloutPhase::Healthy));
    assert_eq!(w.active(), Some(v1));
}

#[test]
fn retry_restarts_the_release_with_a_new_analysis_run() {
    let (mut w, v1) = World::deployed(json!({}), json!({"prePromotionAnalysis": analysis()}));
    let v2 = w.set_image("app:2");
    w.step();
    w.make_ready(&v2);
    w.step();
    let run1 = w.set_run_phase(PrePromotion, AnalysisPhase::Failed);
    w.step();
    w.advance(30);
    w.step();
    w.make_all_ready();
    assert_eq!((w.rs(&v2).replicas, w.rs(&v2).ready), (0, 0));

    w.retry();
    let d = w.step();
    assert_eq!(d.actions, [switch(PREVIEW, Some(&v1), &v2), scale(&v2, 3)]);
    assert_eq!(
        reasons(&d),
        [
            "RolloutRetried",
            "PreviewServiceSwitched",
            "ScalingReplicaSet"
        ]
    );
    assert_eq!(d.events[0].note, format!("Retrying the release of {v2}"));
    let s = w.status();
    assert_eq!(s.phase, Some(RolloutPhase::Progressing));
    assert_eq!(
        s.message,
        Some(format!(
            "Waiting for preview ReplicaSet web-{v2}: 0/3 pods available"
        ))
    );
    assert_eq!((s.abort, s.aborted_at.clone()), (None, None));
    assert_eq!(
        w.cond("Progressing"),
        ("True".into(), "ReplicaSetUpdated".into())
    );
    assert_eq!(bg_status(&w).pre_promotion_analysis_run_status, None);

    w.make_ready(&v2);
    let d = w.step();
    let run2 = run_name(&v2, PrePromotion, 2);
    assert_eq!(summary(&d), [format!("create run {run2}")]);
    assert_ne!(run1, run2);
    w.set_run_phase(PrePromotion, AnalysisPhase::Successful);
    w.step();
    assert_eq!(w.status().stable_rs, Some(v2.clone()));
    assert_eq!(w.active(), Some(v2));
}

#[test]
fn retry_right_after_the_abort_scale_down_does_not_trust_pods_that_are_going_away() {
    // The ReplicaSet status lags a scale-down: the engine sees `replicas: 0` with 3 ready pods.
    let (mut w, v1) = World::deployed(json!({}), json!({"postPromotionAnalysis": analysis()}));
    let v2 = w.set_image("app:2");
    w.step();
    w.make_ready(&v2);
    w.step();
    w.set_run_phase(PostPromotion, AnalysisPhase::Failed);
    w.step();
    w.advance(30);
    w.step();
    assert_eq!((w.rs(&v2).replicas, w.rs(&v2).ready), (0, 3));

    w.retry();
    let d = w.step();
    assert_eq!(d.actions, [switch(PREVIEW, Some(&v1), &v2), scale(&v2, 3)]);
    assert_eq!(
        w.active(),
        Some(v1.clone()),
        "never switched to pods being replaced"
    );
    assert_eq!(
        w.message(),
        format!("Waiting for preview ReplicaSet web-{v2}: 0/3 pods available")
    );
    w.make_ready(&v2);
    let d = w.step();
    assert_eq!(d.actions[0], switch(ACTIVE, Some(&v1), &v2));
    assert_eq!(
        summary(&d)[1],
        format!("create run {}", run_name(&v2, PostPromotion, 2))
    );
}

#[test]
fn a_new_analysis_run_never_reuses_the_name_of_one_that_still_exists() {
    let (mut w, v1) = World::deployed(json!({}), json!({"prePromotionAnalysis": analysis()}));
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
            format!("{:?}", switch(PREVIEW, Some(&v1), &v2)),
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

// ----- superseding, reverting, rolling back -----

#[test]
fn a_newer_revision_supersedes_the_release_in_flight() {
    let (mut w, v1) = World::deployed(
        json!({}),
        json!({"autoPromotionEnabled": false, "prePromotionAnalysis": analysis()}),
    );
    let v2 = w.set_image("app:2");
    w.step();
    w.make_ready(&v2);
    w.step();
    let run1 = w.set_run_phase(PrePromotion, AnalysisPhase::Running);
    let v3 = w.set_image("app:3");
    let d = w.step();
    assert_eq!(
        summary(&d),
        [
            format!("{:?}", switch(PREVIEW, Some(&v2), &v3)),
            format!("create rs web-{v3} x3"),
            format!("{:?}", scale_to_zero(&v2, false)),
            format!("{:?}", terminate(&run1)),
        ]
    );
    assert_eq!(
        reasons(&d),
        [
            "RolloutSuperseded",
            "RolloutUpdated",
            "PreviewServiceSwitched",
            "ScalingReplicaSet",
            "ScalingReplicaSet"
        ]
    );
    assert_eq!(
        d.events[0].note,
        format!("Release of {v2} superseded by a newer revision")
    );
    assert_eq!(
        d.events[4].note,
        format!(
            "Scaled down ReplicaSet web-{v2} from 3 to 0 (superseded, never served production traffic)"
        )
    );
    let s = w.status();
    assert_eq!(s.current_pod_hash, Some(v3.clone()));
    assert_eq!(s.current_revision, Some(3));
    assert_eq!(s.stable_rs, Some(v1.clone()));
    assert_eq!(bg_status(&w).pre_promotion_analysis_run_status, None);
    assert_eq!(w.active(), Some(v1));
    assert_eq!(w.preview(), Some(v3.clone()));
    w.make_ready(&v3);
    let d = w.step();
    assert_eq!(
        summary(&d),
        [format!("create run {}", run_name(&v3, PrePromotion, 1))]
    );
}

#[test]
fn superseding_after_the_switch_keeps_the_serving_revision_until_the_next_switch() {
    let (mut w, v1) = World::deployed(
        json!({}),
        json!({"postPromotionAnalysis": analysis(), "scaleDownDelaySeconds": 60}),
    );
    let v2 = w.set_image("app:2");
    w.step();
    w.make_ready(&v2);
    w.step();
    assert_eq!(w.active(), Some(v2.clone()));
    let post2 = run_name(&v2, PostPromotion, 1);

    let v3 = w.set_image("app:3");
    let d = w.step();
    assert_eq!(
        summary(&d),
        [
            format!("{:?}", switch(PREVIEW, Some(&v2), &v3)),
            format!("create rs web-{v3} x3"),
            format!("{:?}", terminate(&post2)),
        ]
    );
    assert_eq!(w.active(), Some(v2.clone()), "v2 keeps serving meanwhile");
    assert_eq!(w.rs(&v2).replicas, 3);
    assert_eq!(w.rs(&v1).replicas, 3, "the stable revision stays up");

    w.make_ready(&v3);
    let d = w.step();
    assert_eq!(
        summary(&d),
        [
            format!("{:?}", deadline(&v2, w.at(60))),
            format!("{:?}", switch(ACTIVE, Some(&v2), &v3)),
            format!("create run {}", run_name(&v3, PostPromotion, 1)),
        ]
    );
    w.set_run_phase(PostPromotion, AnalysisPhase::Successful);
    let d = w.step();
    assert_eq!(d.actions, [deadline(&v1, w.at(60))]);
    assert_eq!(
        d.events[0].note,
        format!("Revision {v3} is stable; previous revision {v1} scales down in 60s")
    );
    w.advance(60);
    let d = w.step();
    assert_eq!(
        d.actions,
        [scale_to_zero(&v1, true), scale_to_zero(&v2, true)]
    );
}

#[test]
fn returning_to_the_revision_that_serves_production_never_scales_it_down() {
    let (mut w, v1) = World::deployed(
        json!({}),
        json!({"autoPromotionEnabled": false, "previewReplicaCount": 1,
               "postPromotionAnalysis": analysis()}),
    );
    let v2 = w.set_image("app:2");
    w.step();
    w.make_ready(&v2);
    w.step();
    w.promote();
    w.step();
    w.make_ready(&v2);
    w.step();
    assert_eq!(w.active(), Some(v2.clone()));
    let v3 = w.set_image("app:3");
    w.step();
    // A GitOps revert: back to the revision the active Service selects.
    w.set_image("app:2");
    let d = w.step();
    assert_eq!(
        summary(&d),
        [
            format!("{:?}", switch(PREVIEW, Some(&v3), &v2)),
            format!(
                "{:?}",
                Action::UpdateReplicaSet {
                    name: rs_name(&v2),
                    replicas: None,
                    deadline: DeadlineChange::Keep,
                    revision: Some(4),
                }
            ),
            // Its ReplicaSet still exists: a fast rollback, so no post-promotion analysis.
            format!("{:?}", deadline(&v1, w.at(30))),
            format!("{:?}", scale_to_zero(&v3, false)),
        ]
    );
    assert!(w.reasons().contains(&"RollbackToRevision"));
    assert_eq!(w.rs(&v2).replicas, 3, "not back to previewReplicaCount");
    assert_eq!(w.active(), Some(v2.clone()));
    assert!(
        w.status().pause_conditions.is_empty(),
        "no pause before a switch already made"
    );
    assert_eq!(w.status().stable_rs, Some(v2));
    assert_eq!(w.phase(), Some(RolloutPhase::Healthy));
}

#[test]
fn retry_before_traffic_could_return_to_stable_keeps_the_serving_revision_up() {
    let (mut w, v1) = World::deployed(
        json!({}),
        json!({"previewReplicaCount": 1, "postPromotionAnalysis": analysis()}),
    );
    let v2 = w.set_image("app:2");
    w.step();
    w.make_ready(&v2);
    w.step();
    w.make_ready(&v2);
    w.step();
    w.set_ready(&v1, 1);
    w.abort();
    w.step();
    assert_eq!(
        w.active(),
        Some(v2.clone()),
        "stable not ready: still on v2"
    );
    w.retry();
    let d = w.step();
    assert_eq!(
        summary(&d),
        [
            format!("{:?}", switch(PREVIEW, Some(&v1), &v2)),
            format!(
                "{:?}",
                Action::UpdateReplicaSet {
                    name: rs_name(&v2),
                    replicas: None,
                    deadline: DeadlineChange::Clear,
                    revision: None,
                }
            ),
            format!("create run {}", run_name(&v2, PostPromotion, 2)),
        ]
    );
    assert_eq!(w.rs(&v2).replicas, 3);
    assert_eq!(
        w.rs(&v2).scale_down_deadline,
        None,
        "the abort's scale-down is cancelled"
    );
    assert_eq!(w.phase(), Some(RolloutPhase::Progressing));
}

#[test]
fn a_new_revision_after_an_abort_starts_a_fresh_release() {
    let (mut w, v1) = World::deployed(json!({}), manual());
    let v2 = w.set_image("app:2");
    w.step();
    w.abort();
    w.step();
    assert_eq!(w.phase(), Some(RolloutPhase::Degraded));
    let v3 = w.set_image("app:3");
    let d = w.step();
    assert_eq!(reasons(&d)[..2], ["RolloutSuperseded", "RolloutUpdated"]);
    let s = w.status();
    assert_eq!((s.abort, s.aborted_at), (None, None));
    assert_eq!(s.phase, Some(RolloutPhase::Progressing));
    assert_eq!(
        w.cond("Progressing"),
        ("True".into(), "ReplicaSetUpdated".into())
    );
    assert_eq!(w.preview(), Some(v3));
    assert_eq!(w.active(), Some(v1));
    assert_eq!(
        w.rs(&v2).scale_down_deadline,
        Some(w.at(30)),
        "the aborted one still goes"
    );
}

#[test]
fn going_back_to_the_stable_template_mid_release_is_instant() {
    let (mut w, v1) = World::deployed(
        json!({}),
        json!({"autoPromotionEnabled": false, "prePromotionAnalysis": analysis()}),
    );
    let v2 = w.set_image("app:2");
    w.step();
    w.make_ready(&v2);
    w.step();
    let run1 = w.set_run_phase(PrePromotion, AnalysisPhase::Running);
    w.set_image("app:1");
    let d = w.step();
    assert_eq!(
        d.actions,
        [
            Action::UpdateReplicaSet {
                name: rs_name(&v1),
                replicas: None,
                deadline: DeadlineChange::Keep,
                revision: Some(3),
            },
            switch(PREVIEW, Some(&v2), &v1),
            scale_to_zero(&v2, false),
            terminate(&run1),
        ]
    );
    assert_eq!(
        reasons(&d),
        [
            "RollbackToStable",
            "PreviewServiceSwitched",
            "ScalingReplicaSet"
        ]
    );
    assert_eq!(
        d.events[0].note,
        format!(
            "Template matches the stable revision ({v1}): back to stable at once, \
             without steps or analysis"
        )
    );
    let s = w.status();
    assert_eq!(s.phase, Some(RolloutPhase::Healthy));
    assert_eq!(s.current_pod_hash, Some(v1.clone()));
    assert_eq!(s.current_revision, Some(3));
    assert!(s.pause_conditions.is_empty());
    assert_eq!(w.active(), Some(v1.clone()));
    assert_eq!(w.preview(), Some(v1));
    assert_eq!(w.run_names(), [run1], "no new analysis");
}

#[test]
fn rollback_to_an_older_revision_reuses_its_replica_set_and_bumps_its_revision() {
    let (mut w, v1) = World::deployed(json!({}), json!({"scaleDownDelaySeconds": 0}));
    let v2 = w.set_image("app:2");
    w.run_until_settled();
    assert_eq!(w.rs(&v1).replicas, 0);
    w.set_image("app:1");
    let d = w.step();
    assert_eq!(
        d.actions,
        [
            switch(PREVIEW, Some(&v2), &v1),
            Action::UpdateReplicaSet {
                name: rs_name(&v1),
                replicas: Some(3),
                deadline: DeadlineChange::Keep,
                revision: Some(3),
            },
        ]
    );
    assert_eq!(
        d.events[0].note,
        format!(
            "Template matches revision 1 ({v1}), whose ReplicaSet still exists: fast rollback \
             as revision 3, without steps or analysis"
        )
    );
    assert_eq!(w.rs(&v1).revision, 3);
    assert_eq!(w.status().current_revision, Some(3));
    w.make_ready(&v1);
    w.step();
    assert_eq!(w.status().stable_rs, Some(v1.clone()));
    assert_eq!(w.active(), Some(v1));
    assert_eq!(w.observed.replica_sets.len(), 2, "no third ReplicaSet");
}

#[test]
fn rollback_to_a_revision_still_up_within_its_scale_down_delay_is_instant() {
    let (mut w, v1) = World::deployed(json!({}), json!({"scaleDownDelaySeconds": 300}));
    let v2 = w.set_image("app:2");
    w.run_until_settled();
    assert_eq!(w.rs(&v1).scale_down_deadline, Some(w.at(300)));
    w.advance(10);
    w.set_image("app:1");
    let d = w.step();
    assert_eq!(
        d.actions,
        [
            switch(PREVIEW, Some(&v2), &v1),
            Action::UpdateReplicaSet {
                name: rs_name(&v1),
                replicas: None,
                deadline: DeadlineChange::Clear,
                revision: Some(3),
            },
            switch(ACTIVE, Some(&v2), &v1),
            deadline(&v2, w.at(300)),
        ]
    );
    assert_eq!(w.status().stable_rs, Some(v1));
    assert_eq!(w.phase(), Some(RolloutPhase::Healthy));
}

// ----- progress deadline -----

#[test]
fn a_crash_looping_revision_is_aborted_at_the_progress_deadline_and_never_receives_traffic() {
    let (mut w, v1) = World::deployed(json!({"progressDeadlineSeconds": 300}), json!({}));
    let bad = w.crash("app:bad");
    w.set_image("app:bad");
    let d = w.step();
    assert_eq!(d.requeue_after, requeue(300));
    w.advance(299);
    w.make_all_ready();
    let d = w.step();
    assert!(d.actions.is_empty());
    assert_eq!(w.phase(), Some(RolloutPhase::Progressing));
    assert_eq!(d.requeue_after, requeue(1));

    w.advance(1);
    let d = w.step();
    let message = format!(
        "Aborted: ProgressDeadlineExceeded: no progress for 300s (Waiting for preview \
         ReplicaSet web-{bad}: 0/3 pods available); production traffic returned to stable \
         revision {v1}"
    );
    assert_eq!(
        d.actions,
        [deadline(&bad, w.at(30)), switch(PREVIEW, Some(&bad), &v1)]
    );
    assert_eq!(reasons(&d), ["RolloutAborted", "PreviewServiceSwitched"]);
    let s = w.status();
    assert_eq!(s.phase, Some(RolloutPhase::Degraded));
    assert_eq!(s.message, Some(message));
    assert_eq!(s.abort, Some(true));
    assert_eq!(
        w.cond("Progressing"),
        ("False".into(), "RolloutAborted".into())
    );

    w.advance(30);
    let d = w.step();
    assert_eq!(d.actions, [scale_to_zero(&bad, true)]);
    assert!(!w.actions.iter().any(|a| matches!(
        a,
        Action::SwitchService { role: ServiceRole::Active, to, .. } if to == &bad
    )));
    assert_eq!(w.active(), Some(v1));
}

#[test]
fn the_progress_deadline_counts_from_the_last_progress() {
    let (mut w, _) = World::deployed(json!({"progressDeadlineSeconds": 100}), json!({}));
    let v2 = w.set_image("app:2");
    w.step();
    for ready in 1..=2 {
        w.advance(90);
        w.set_ready(&v2, ready);
        let d = w.step();
        assert_eq!(
            w.phase(),
            Some(RolloutPhase::Progressing),
            "at {ready} pods"
        );
        assert_eq!(d.requeue_after, requeue(100));
    }
    w.advance(100);
    w.step();
    assert_eq!(w.phase(), Some(RolloutPhase::Degraded));
    assert!(
        w.message().contains("2/3 pods available"),
        "{}",
        w.message()
    );
}

#[test]
fn the_progress_deadline_also_covers_the_scale_up_after_promotion() {
    let (mut w, v1) = World::deployed(
        json!({"progressDeadlineSeconds": 120}),
        json!({"previewReplicaCount": 1}),
    );
    let v2 = w.set_image("app:2");
    w.step();
    w.make_ready(&v2);
    w.step();
    assert_eq!(w.rs(&v2).replicas, 3);
    w.advance(120);
    w.step();
    assert_eq!(w.phase(), Some(RolloutPhase::Degraded));
    assert_eq!(
        w.message(),
        format!(
            "Aborted: ProgressDeadlineExceeded: no progress for 120s (Promoting: waiting for \
             ReplicaSet web-{v2}: 1/3 pods available before switching the active Service); \
             production traffic returned to stable revision {v1}"
        )
    );
    assert_eq!(w.active(), Some(v1));
}

#[test]
fn waiting_for_a_human_or_an_analysis_never_hits_the_progress_deadline() {
    let (mut w, v1) = World::deployed(
        json!({"progressDeadlineSeconds": 60}),
        json!({"autoPromotionEnabled": false, "prePromotionAnalysis": analysis()}),
    );
    let v2 = w.set_image("app:2");
    w.step();
    w.make_ready(&v2);
    w.step();
    w.advance(3600);
    w.step();
    assert_eq!(
        w.phase(),
        Some(RolloutPhase::Progressing),
        "analysis running"
    );
    w.set_run_phase(PrePromotion, AnalysisPhase::Successful);
    w.step();
    w.advance(3600);
    w.step();
    assert_eq!(w.phase(), Some(RolloutPhase::Paused));
    assert_eq!(w.active(), Some(v1));
}

#[test]
fn without_progress_deadline_abort_the_release_is_degraded_and_recovers_when_pods_become_ready() {
    let (mut w, v1) = World::deployed(
        json!({"progressDeadlineSeconds": 300, "progressDeadlineAbort": false}),
        json!({}),
    );
    let slow = w.crash("app:slow");
    w.set_image("app:slow");
    w.step();
    w.advance(300);
    let d = w.step();
    assert!(
        d.actions.is_empty(),
        "nothing is rolled back: {:?}",
        d.actions
    );
    let waiting = format!("Waiting for preview ReplicaSet web-{slow}: 0/3 pods available");
    assert_eq!(reasons(&d), ["ProgressDeadlineExceeded"]);
    assert!(d.events[0].warning);
    assert_eq!(d.events[0].note, format!("No progress for 300s: {waiting}"));
    let s = w.status();
    assert_eq!(s.phase, Some(RolloutPhase::Degraded));
    assert_eq!(
        s.message,
        Some(format!("ProgressDeadlineExceeded: {waiting}"))
    );
    assert_eq!(s.abort, None);
    assert_eq!(
        w.cond("Progressing"),
        ("False".into(), "ProgressDeadlineExceeded".into())
    );
    assert_eq!(
        w.preview(),
        Some(slow.clone()),
        "the preview stays for debugging"
    );
    assert_eq!(w.rs(&slow).replicas, 3);

    w.advance(3600);
    let d = w.step();
    assert!(d.events.is_empty(), "reported once");

    w.crashing.remove(&slow);
    w.set_ready(&slow, 1);
    let d = w.step();
    assert_eq!(w.phase(), Some(RolloutPhase::Progressing));
    assert_eq!(
        w.cond("Progressing"),
        ("True".into(), "ReplicaSetUpdated".into())
    );
    assert_eq!(d.requeue_after, requeue(300));
    w.make_ready(&slow);
    let d = w.step();
    assert_eq!(d.actions[0], switch(ACTIVE, Some(&v1), &slow));
    assert_eq!(w.phase(), Some(RolloutPhase::Healthy));
    assert_eq!(w.status().stable_rs, Some(slow));
}

// ----- bookkeeping -----

#[test]
fn observed_generation_tracks_the_generation_the_status_describes() {
    let (mut w, _) = World::deployed(json!({}), json!({}));
    assert_eq!(w.status().observed_generation, Some(1));
    w.edit_spec(|_| {});
    assert_eq!(w.rollout.metadata.generation, Some(1), "no-op edit");
    w.set_image("app:2");
    assert_eq!(w.rollout.metadata.generation, Some(2));
    assert_eq!(
        w.status().observed_generation,
        Some(1),
        "stale until reconciled"
    );
    w.step();
    assert_eq!(w.status().observed_generation, Some(2));
    w.abort();
    w.step();
    assert_eq!(
        w.rollout.metadata.generation,
        Some(2),
        "status edits are no spec change"
    );
    assert_eq!(w.status().observed_generation, Some(2));
}

#[test]
fn switch_events_name_the_service_and_both_hashes() {
    let (mut w, v1) = World::deployed(json!({}), json!({}));
    assert_eq!(
        w.notes("ActiveServiceSwitched"),
        [format!(
            "Switched active Service web-active from <none> to {v1}"
        )]
    );
    let v2 = w.set_image("app:2");
    w.run_until_settled();
    assert_eq!(
        w.notes("ActiveServiceSwitched")[1..],
        [format!(
            "Switched active Service web-active from {v1} to {v2}"
        )]
    );
    assert_eq!(
        w.notes("PreviewServiceSwitched"),
        [
            format!("Switched preview Service web-preview from <none> to {v1}"),
            format!("Switched preview Service web-preview from {v1} to {v2}"),
        ]
    );
}

#[test]
fn references_list_the_services_and_templates_the_spec_names() {
    let w = World::new(
        json!({}),
        json!({"prePromotionAnalysis": analysis(),
               "postPromotionAnalysis": {"templates": [{"templateName": "latency", "clusterScope": true},
                                                        {"templateName": "error-rate"}]}}),
    );
    let refs = rollgate_engine::references(&w.rollout);
    assert_eq!(refs.services, ["web-active", "web-preview"]);
    assert_eq!(
        refs.templates,
        [
            (false, "error-rate".to_string()),
            (true, "latency".to_string())
        ]
    );
}

// ----- edges found while reviewing (each pins an engine fix or an untested transition) -----

#[test]
fn abort_during_the_first_deploy_is_ignored() {
    let mut w = World::new(json!({}), json!({}));
    let v1 = w.hash_of("app:1");
    w.step();
    w.abort();
    let d = w.step();
    assert!(d.actions.is_empty() && d.events.is_empty());
    let s = w.status();
    assert_eq!(s.abort, None, "nothing to return to: the flag is dropped");
    assert_eq!(s.phase, Some(RolloutPhase::Progressing));
    assert_eq!(
        s.message,
        Some(format!(
            "First deploy: waiting for ReplicaSet web-{v1}: 0/3 pods available"
        ))
    );
    w.make_ready(&v1);
    w.step();
    assert_eq!(w.phase(), Some(RolloutPhase::Healthy));
    assert_eq!(w.status().stable_rs, Some(v1));
}

#[test]
fn a_release_of_zero_replicas_completes_in_one_reconcile() {
    let (mut w, v1) = World::deployed(json!({"replicas": 0}), json!({}));
    let v2 = w.set_template_image("app:2");
    let d = w.step();
    assert_eq!(
        summary(&d),
        [
            format!("{:?}", switch(PREVIEW, Some(&v1), &v2)),
            format!("create rs web-{v2} x0"),
            format!("{:?}", switch(ACTIVE, Some(&v1), &v2)),
        ]
    );
    let s = w.status();
    assert_eq!(s.stable_rs, Some(v2.clone()));
    assert_eq!(s.phase, Some(RolloutPhase::Healthy));
    assert_eq!(
        s.message,
        Some(format!("Healthy: revision {v2} serves with 0/0 pods"))
    );
    assert_eq!(d.requeue_after, None, "nothing to scale down");
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
    assert_eq!(reasons(&d), ["RolloutPaused"]);
    let s = w.status();
    assert_eq!(s.phase, Some(RolloutPhase::Paused));
    assert_eq!(
        s.message,
        Some(format!(
            "Paused: post-promotion analysis {post1} is inconclusive: no data: \
             `rollgate promote web` to continue, `rollgate abort web` to go back"
        ))
    );
    assert_eq!(s.pause_conditions, [pause("InconclusiveAnalysis", t)]);
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

#[test]
fn abort_during_the_promotion_scale_up_keeps_traffic_on_stable() {
    let (mut w, v1) = World::deployed(json!({}), json!({"previewReplicaCount": 1}));
    let v2 = w.set_image("app:2");
    w.step();
    w.make_ready(&v2);
    let d = w.step();
    assert_eq!(d.actions, [scale(&v2, 3)], "promoted: scaling up");
    w.set_ready(&v2, 2);
    w.abort();
    let d = w.step();
    assert_eq!(
        d.actions,
        [deadline(&v2, w.at(30)), switch(PREVIEW, Some(&v2), &v1)]
    );
    assert_eq!(w.active(), Some(v1.clone()), "never switched");
    assert_eq!(w.phase(), Some(RolloutPhase::Degraded));
    assert_eq!(
        w.cond("Progressing"),
        ("False".into(), "RolloutAborted".into())
    );
    // Pods that become ready after the abort change nothing.
    w.make_ready(&v2);
    assert!(w.step().actions.is_empty());
    assert_eq!(w.active(), Some(v1.clone()));
    w.advance(30);
    let d = w.step();
    assert_eq!(d.actions, [scale_to_zero(&v2, true)]);
    assert_eq!(w.active(), Some(v1));
}

/// Engine fix: revision numbers came from the observed ReplicaSets only, so once the newest one
/// was pruned (an aborted release with `revisionHistoryLimit: 0`) the next release reused its
/// number and `status.currentRevision` went backwards (3, then 2).
#[test]
fn revision_numbers_never_repeat_after_the_newest_replica_set_was_pruned() {
    let (mut w, v1) = World::deployed(
        json!({"revisionHistoryLimit": 0}),
        json!({"autoPromotionEnabled": false, "abortScaleDownDelaySeconds": 0}),
    );
    let v2 = w.set_image("app:2");
    w.step();
    assert_eq!(w.status().current_revision, Some(2));
    w.abort();
    let d = w.step();
    assert_eq!(
        d.actions,
        [
            deadline(&v2, w.now),
            switch(PREVIEW, Some(&v2), &v1),
            scale_to_zero(&v2, true),
            Action::DeleteReplicaSet { name: rs_name(&v2) },
        ]
    );
    assert!(!w.has_rs(&v2));

    let v3 = w.set_image("app:3");
    let d = w.step();
    assert_eq!(
        d.events[1].note,
        format!("New revision 3 (pod-template-hash {v3}): starting blue/green release")
    );
    assert_eq!(w.status().current_revision, Some(3));
    assert_eq!(w.rs(&v3).revision, 3);
}

/// Same fix, other path: returning to the stable template after the newest ReplicaSet was
/// pruned bumps the stable ReplicaSet's revision instead of moving `currentRevision` back to 1.
#[test]
fn returning_to_stable_after_the_newest_replica_set_was_pruned_bumps_the_revision() {
    let (mut w, v1) = World::deployed(
        json!({"revisionHistoryLimit": 0}),
        json!({"autoPromotionEnabled": false, "abortScaleDownDelaySeconds": 0}),
    );
    w.set_image("app:2");
    w.step();
    w.abort();
    w.step();
    w.set_image("app:1");
    let d = w.step();
    assert_eq!(
        d.actions,
        [Action::UpdateReplicaSet {
            name: rs_name(&v1),
            replicas: None,
            deadline: DeadlineChange::Keep,
            revision: Some(3),
        }]
    );
    assert_eq!(reasons(&d), ["RollbackToStable"]);
    assert_eq!(w.status().current_revision, Some(3));
    assert_eq!(w.phase(), Some(RolloutPhase::Healthy));
}

/// Engine fix: `promote --full` given after an abort was kept in status while the rollout
/// stayed Degraded, then silently dropped by `retry`, and the analysis that had failed ran
/// again (argo-rollouts#2897). A full promotion now overrides an earlier abort, as Argo's own
/// design for `promoteFull` says (skip abort, pause and analysis).
#[test]
fn promote_full_after_an_abort_overrides_it_and_skips_analysis() {
    let (mut w, v1) = World::deployed(
        json!({}),
        json!({"prePromotionAnalysis": analysis(), "postPromotionAnalysis": analysis()}),
    );
    let v2 = w.set_image("app:2");
    w.step();
    w.make_ready(&v2);
    w.step();
    let pre1 = w.set_run_phase(PrePromotion, AnalysisPhase::Failed);
    w.step();
    assert_eq!(w.phase(), Some(RolloutPhase::Degraded));

    w.promote_full();
    let d = w.step();
    assert_eq!(
        d.actions,
        [
            switch(PREVIEW, Some(&v1), &v2),
            Action::UpdateReplicaSet {
                name: rs_name(&v2),
                replicas: None,
                deadline: DeadlineChange::Clear,
                revision: None,
            },
            switch(ACTIVE, Some(&v1), &v2),
            deadline(&v1, w.at(30)),
        ]
    );
    assert_eq!(
        reasons(&d),
        [
            "RolloutRetried",
            "PreviewServiceSwitched",
            "RolloutPromoted",
            "ActiveServiceSwitched",
            "RolloutCompleted"
        ]
    );
    assert_eq!(
        d.events[0].note,
        format!("Retrying the release of {v2} with full promotion (no analysis, no pause)")
    );
    let s = w.status();
    assert_eq!(s.phase, Some(RolloutPhase::Healthy));
    assert_eq!(s.stable_rs, Some(v2));
    assert_eq!((s.abort, s.aborted_at, s.promote_full), (None, None, None));
    assert_eq!(w.run_names(), [pre1], "no analysis ran again");
}

/// The other half of the fix: an abort after `promote --full` wins (argo-rollouts#4461) and
/// clears it, so a later `retry` starts a normal release with its analysis.
#[test]
fn an_abort_after_promote_full_wins_and_a_retry_starts_a_normal_release() {
    let (mut w, v1) = World::deployed(json!({}), json!({"prePromotionAnalysis": analysis()}));
    let v2 = w.set_image("app:2");
    w.step();
    w.promote_full();
    w.step();
    w.abort();
    let d = w.step();
    assert_eq!(
        d.actions,
        [deadline(&v2, w.at(30)), switch(PREVIEW, Some(&v2), &v1)]
    );
    let s = w.status();
    assert_eq!(s.phase, Some(RolloutPhase::Degraded));
    assert_eq!((s.abort, s.promote_full), (Some(true), None));
    w.advance(3600);
    let d = w.step();
    assert_eq!(d.actions, [scale_to_zero(&v2, true)], "stays aborted");
    assert_eq!(w.phase(), Some(RolloutPhase::Degraded));

    w.retry();
    w.step();
    w.make_ready(&v2);
    let d = w.step();
    assert_eq!(
        summary(&d),
        [format!("create run {}", run_name(&v2, PrePromotion, 1))]
    );
    assert_eq!(w.active(), Some(v1));
}

/// With the fix above, a full promotion of a revision whose pods never become ready is still
/// aborted at the progress deadline, once, and stays aborted (no abort/retry loop).
#[test]
fn a_full_promotion_of_a_crash_looping_revision_is_aborted_at_the_deadline_for_good() {
    let (mut w, v1) = World::deployed(
        json!({"progressDeadlineSeconds": 60}),
        json!({"prePromotionAnalysis": analysis()}),
    );
    let bad = w.crash("app:bad");
    w.set_image("app:bad");
    w.step();
    w.promote_full();
    w.step();
    w.advance(60);
    let d = w.step();
    assert_eq!(reasons(&d), ["RolloutAborted", "PreviewServiceSwitched"]);
    let s = w.status();
    assert_eq!(s.phase, Some(RolloutPhase::Degraded));
    assert_eq!((s.abort, s.promote_full), (Some(true), None));
    for _ in 0..3 {
        w.advance(60);
        let d = w.step();
        assert!(
            !reasons(&d).contains(&"RolloutRetried"),
            "{:?}",
            reasons(&d)
        );
    }
    assert_eq!(w.rs(&bad).replicas, 0);
    assert_eq!(w.active(), Some(v1));
    assert_eq!(w.notes("RolloutAborted").len(), 1);
}

/// Engine fix: when the active Service already selected the new revision (switched by hand, or
/// by a controller that crashed before writing status), the engine skipped the readiness check,
/// made the revision stable with 0/3 pods ready and scheduled the scale-down of the only ready
/// one. Now it waits for the pods, and the progress deadline switches back to stable.
#[test]
fn a_revision_the_active_service_was_pointed_at_by_hand_becomes_stable_only_when_ready() {
    let (mut w, v1) = World::deployed(
        json!({"progressDeadlineSeconds": 120}),
        json!({"autoPromotionEnabled": false, "previewReplicaCount": 1}),
    );
    // Someone else breaks the traffic invariant here, not the engine.
    w.check_invariant = false;
    let v2 = w.set_image("app:2");
    w.step();
    if let Some(svc) = w.observed.services.get_mut(ACTIVE) {
        svc.selected_hash = Some(v2.clone());
    }
    let d = w.step();
    assert_eq!(d.actions, [scale(&v2, 3)]);
    let s = w.status();
    assert_eq!(s.stable_rs, Some(v1.clone()), "not stable with 0/3 ready");
    assert_eq!(s.phase, Some(RolloutPhase::Progressing));
    assert_eq!(
        s.message,
        Some(format!(
            "Waiting for ReplicaSet web-{v2}, which the active Service selects: 0/3 pods available"
        ))
    );
    assert_eq!(w.rs(&v1).scale_down_deadline, None, "the fallback stays");
    assert_eq!(w.cond("Available"), ("False".into(), "NotAvailable".into()));

    // Either the pods become ready and the release completes...
    let mut ready = w.clone();
    ready.make_ready(&v2);
    let d = ready.step();
    assert_eq!(d.actions, [deadline(&v1, ready.at(30))]);
    assert_eq!(ready.status().stable_rs, Some(v2.clone()));
    assert_eq!(ready.phase(), Some(RolloutPhase::Healthy));

    // ...or the progress deadline returns traffic to the stable revision.
    w.advance(120);
    let d = w.step();
    assert_eq!(
        d.actions,
        [
            deadline(&v2, w.at(30)),
            switch(ACTIVE, Some(&v2), &v1),
            switch(PREVIEW, Some(&v2), &v1),
        ]
    );
    w.check_invariant = true;
    w.assert_invariant();
    assert_eq!(w.phase(), Some(RolloutPhase::Degraded));
    assert_eq!(w.status().stable_rs, Some(v1));
}

#[test]
fn run_until_stable_releases_a_new_image_end_to_end() {
    let (mut w, v1) = World::deployed(
        json!({}),
        json!({"previewReplicaCount": 1, "scaleDownDelaySeconds": 0}),
    );
    let v2 = w.set_template_image("app:2");
    let d = w.run_until_stable();
    assert!(d.actions.is_empty());
    let s = w.status();
    assert_eq!(s.stable_rs, Some(v2.clone()));
    assert_eq!(s.phase, Some(RolloutPhase::Healthy));
    assert_eq!(w.active(), Some(v2.clone()));
    assert_eq!(w.preview(), Some(v2.clone()));
    assert_eq!((w.rs(&v1).replicas, w.rs(&v2).replicas), (0, 3));
    assert_eq!(
        w.reasons()
            .iter()
            .filter(|r| **r == "ActiveServiceSwitched")
            .count(),
        2,
        "first deploy and this release"
    );
}
