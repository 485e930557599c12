//! Every blue/green transition of the engine, driven through the pure test world.

mod support;

use rollgate_api::{AnalysisPhase, RolloutPhase};
use rollgate_engine::{Action, AnalysisKind, DeadlineChange, ServiceRole};
use serde_json::json;
use support::World;

fn manual() -> serde_json::Value {
    json!({"autoPromotionEnabled": false})
}

#[test]
fn first_deploy_creates_the_replica_set_and_switches_both_services_at_once() {
    let mut w = World::new(json!({}), manual());
    let d = w.step();
    let h = w.template_hash("app:1");
    assert!(matches!(&d.actions[0], Action::CreateReplicaSet(rs) if rs.spec.replicas == Some(3)));
    assert_eq!(w.active(), Some(h.clone()));
    assert_eq!(w.preview(), Some(h.clone()));
    assert_eq!(w.phase(), Some(RolloutPhase::Progressing));
    assert!(w.message().contains("0/3"), "{}", w.message());
    assert_eq!(w.status().stable_rs, None);
    w.pods_ready();
    w.step();
    assert_eq!(w.phase(), Some(RolloutPhase::Healthy));
    assert_eq!(w.status().stable_rs, Some(h.clone()));
    assert_eq!(w.status().current_revision, Some(1));
    assert!(
        w.observed.analysis_runs.is_empty(),
        "no analysis on first deploy"
    );
    assert!(w.reasons().contains(&"RolloutCompleted"));
    let completed = w.condition("Completed").expect("condition");
    assert_eq!(completed.status, "True");
}

#[test]
fn new_revision_brings_up_a_preview_at_preview_replica_count() {
    let (mut w, v1) = World::deployed(
        json!({}),
        json!({"autoPromotionEnabled": false, "previewReplicaCount": 1}),
    );
    let v2 = w.set_image("app:2");
    let d = w.step();
    assert!(d.actions.iter().any(
        |a| matches!(a, Action::SwitchService { role: ServiceRole::Preview, to, .. } if to == &v2)
    ));
    assert_eq!(w.rs(&v2).replicas, 1);
    assert_eq!(w.rs(&v2).revision, 2);
    assert_eq!(w.active(), Some(v1.clone()));
    assert_eq!(w.preview(), Some(v2.clone()));
    assert!(w.message().contains("preview"), "{}", w.message());
    assert!(w.reasons().contains(&"RolloutUpdated"));
    w.pods_ready();
    w.step();
    assert_eq!(w.phase(), Some(RolloutPhase::Paused));
    assert_eq!(
        w.rs(&v2).replicas,
        1,
        "stays at previewReplicaCount while paused"
    );
    assert_eq!(w.status().controller_pause, Some(true));
    assert_eq!(w.status().pause_conditions[0].reason, "BlueGreenPause");
    w.promote();
    w.step();
    assert_eq!(w.rs(&v2).replicas, 3, "promotion scales to full size");
    assert_eq!(
        w.active(),
        Some(v1.clone()),
        "not switched before all pods are ready"
    );
    w.pods_ready();
    w.step();
    assert_eq!(w.active(), Some(v2.clone()));
    assert_eq!(w.status().stable_rs, Some(v2));
    assert_eq!(w.phase(), Some(RolloutPhase::Healthy));
}

#[test]
fn paused_rollout_waits_for_promotion_however_long() {
    let (mut w, v1) = World::deployed(json!({}), manual());
    w.set_image("app:2");
    w.settle();
    assert_eq!(w.phase(), Some(RolloutPhase::Paused));
    for _ in 0..5 {
        w.advance(3600);
        let d = w.step();
        assert!(d.actions.is_empty());
    }
    assert_eq!(w.active(), Some(v1));
    assert_eq!(w.phase(), Some(RolloutPhase::Paused));
}

#[test]
fn auto_promotion_seconds_promotes_when_the_time_comes() {
    let (mut w, v1) = World::deployed(json!({}), json!({"autoPromotionSeconds": 60}));
    let v2 = w.set_image("app:2");
    w.step();
    w.pods_ready();
    let d = w.step();
    assert_eq!(w.phase(), Some(RolloutPhase::Paused));
    let wait = d
        .requeue_after
        .expect("requeue at the promotion time")
        .as_secs();
    assert!((59..=61).contains(&wait), "requeue after {wait}s");
    w.advance(30);
    w.step();
    assert_eq!(w.active(), Some(v1));
    w.advance(31);
    w.step();
    assert_eq!(w.active(), Some(v2.clone()));
    assert_eq!(w.status().stable_rs, Some(v2));
    assert!(w.reasons().contains(&"AutoPromotion"));
}

#[test]
fn auto_promotion_without_pause_promotes_as_soon_as_the_preview_is_ready() {
    let (mut w, _) = World::deployed(json!({}), json!({}));
    let v2 = w.set_image("app:2");
    w.step();
    w.pods_ready();
    w.step();
    assert_eq!(w.active(), Some(v2.clone()));
    assert_eq!(w.status().stable_rs, Some(v2));
}

#[test]
fn pre_promotion_analysis_starts_only_once_the_preview_is_ready() {
    let (mut w, v1) = World::deployed(
        json!({}),
        json!({"prePromotionAnalysis": {"templates": [{"templateName": "rate"}],
        "args": [{"name": "hash", "valueFrom": {"podTemplateHashValue": "Latest"}}]}}),
    );
    w.add_template("rate");
    let v2 = w.set_image("app:2");
    w.step();
    assert!(
        w.observed.analysis_runs.is_empty(),
        "not before preview pods are ready"
    );
    w.pods_ready();
    let d = w.step();
    let run = d
        .actions
        .iter()
        .find_map(|a| match a {
            Action::CreateAnalysisRun(r) => Some(r.clone()),
            _ => None,
        })
        .expect("run created");
    assert_eq!(run.spec.metrics.len(), 1);
    assert_eq!(
        run.spec.args[0].value.as_deref(),
        Some(v2.as_str()),
        "Latest hash resolved"
    );
    assert!(w.message().contains("pre-promotion"), "{}", w.message());
    w.set_run(AnalysisKind::PrePromotion, AnalysisPhase::Running, "");
    w.step();
    assert_eq!(w.active(), Some(v1));
    w.set_run(AnalysisKind::PrePromotion, AnalysisPhase::Successful, "");
    w.step();
    assert_eq!(w.active(), Some(v2.clone()));
    assert_eq!(w.status().stable_rs, Some(v2));
}

#[test]
fn failed_pre_promotion_analysis_aborts_in_the_same_reconcile() {
    let (mut w, v1) = World::deployed(
        json!({}),
        json!({"prePromotionAnalysis": {"templates": [{"templateName": "rate"}]}}),
    );
    w.add_template("rate");
    let v2 = w.set_image("app:2");
    w.step();
    w.pods_ready();
    w.step();
    let run = w.set_run(
        AnalysisKind::PrePromotion,
        AnalysisPhase::Failed,
        "errors 0.31 >= 0.05",
    );
    let d = w.step();
    assert_eq!(w.phase(), Some(RolloutPhase::Degraded));
    assert!(
        w.message().contains(&run) && w.message().contains("errors 0.31"),
        "{}",
        w.message()
    );
    assert_eq!(w.status().abort, Some(true));
    assert_eq!(w.active(), Some(v1.clone()));
    assert_eq!(w.preview(), Some(v1));
    let deadline = d.actions.iter().any(|a| matches!(a, Action::UpdateReplicaSet { name, deadline: DeadlineChange::Set(_), .. } if name.ends_with(&v2)));
    assert!(
        deadline,
        "preview scheduled for scale-down: {:?}",
        d.actions
    );
    assert_eq!(
        w.condition("Progressing").expect("cond").reason,
        "RolloutAborted"
    );
    assert!(
        w.events
            .iter()
            .any(|e| e.warning && e.reason == "RolloutAborted")
    );
}

#[test]
fn error_run_aborts_too_and_inconclusive_pauses_for_a_human() {
    let (mut w, _) = World::deployed(
        json!({}),
        json!({"prePromotionAnalysis": {"templates": [{"templateName": "rate"}]}}),
    );
    w.add_template("rate");
    let v2 = w.set_image("app:2");
    w.step();
    w.pods_ready();
    w.step();
    w.set_run(
        AnalysisKind::PrePromotion,
        AnalysisPhase::Inconclusive,
        "no data",
    );
    w.step();
    assert_eq!(w.phase(), Some(RolloutPhase::Paused));
    assert_eq!(
        w.status().pause_conditions[0].reason,
        "InconclusiveAnalysis"
    );
    assert!(w.message().contains("inconclusive"), "{}", w.message());
    w.promote();
    w.step();
    assert_eq!(
        w.active(),
        Some(v2),
        "a human's promote continues after an inconclusive run"
    );

    let (mut w, v1) = World::deployed(
        json!({}),
        json!({"prePromotionAnalysis": {"templates": [{"templateName": "rate"}]}}),
    );
    w.add_template("rate");
    w.set_image("app:2");
    w.step();
    w.pods_ready();
    w.step();
    w.set_run(
        AnalysisKind::PrePromotion,
        AnalysisPhase::Error,
        "prometheus unreachable",
    );
    w.step();
    assert_eq!(w.phase(), Some(RolloutPhase::Degraded));
    assert_eq!(w.active(), Some(v1));
}

#[test]
fn post_promotion_success_makes_the_revision_stable() {
    let (mut w, v1) = World::deployed(
        json!({}),
        json!({"postPromotionAnalysis": {"templates": [{"templateName": "rate"}]}}),
    );
    w.add_template("rate");
    let v2 = w.set_image("app:2");
    w.step();
    w.pods_ready();
    w.step();
    assert_eq!(
        w.active(),
        Some(v2.clone()),
        "switched before post-promotion analysis"
    );
    assert_eq!(
        w.status().stable_rs,
        Some(v1.clone()),
        "not stable until the analysis passes"
    );
    assert_eq!(
        w.rs(&v1).replicas,
        3,
        "old stable kept at full size during the analysis"
    );
    w.advance(600);
    w.step();
    assert_eq!(w.rs(&v1).replicas, 3, "even past scaleDownDelaySeconds");
    w.set_run(AnalysisKind::PostPromotion, AnalysisPhase::Successful, "");
    w.step();
    assert_eq!(w.status().stable_rs, Some(v2));
    assert_eq!(w.phase(), Some(RolloutPhase::Healthy));
}

#[test]
fn post_promotion_failure_switches_active_back_in_the_same_reconcile() {
    let (mut w, v1) = World::deployed(
        json!({}),
        json!({"postPromotionAnalysis": {"templates": [{"templateName": "rate"}]}}),
    );
    w.add_template("rate");
    let v2 = w.set_image("app:2");
    w.step();
    w.pods_ready();
    w.step();
    assert_eq!(w.active(), Some(v2.clone()));
    w.set_run(
        AnalysisKind::PostPromotion,
        AnalysisPhase::Failed,
        "p99 2.3s",
    );
    let d = w.step();
    assert!(d.actions.iter().any(|a| matches!(a, Action::SwitchService { role: ServiceRole::Active, from: Some(f), to, .. } if f == &v2 && to == &v1)));
    assert_eq!(w.active(), Some(v1.clone()));
    assert_eq!(w.status().stable_rs, Some(v1));
    assert_eq!(w.phase(), Some(RolloutPhase::Degraded));
    let note = w
        .events
        .iter()
        .rev()
        .find(|e| e.reason == "ActiveServiceSwitched")
        .expect("event");
    assert!(
        note.note.contains(&v2) && note.note.contains("web-active"),
        "{}",
        note.note
    );
}

#[test]
fn old_revision_scales_down_only_after_scale_down_delay() {
    let (mut w, v1) = World::deployed(json!({}), json!({"scaleDownDelaySeconds": 120}));
    let v2 = w.set_image("app:2");
    w.step();
    w.pods_ready();
    let d = w.step();
    assert_eq!(w.status().stable_rs, Some(v2));
    assert_eq!(w.rs(&v1).replicas, 3);
    assert!(w.rs(&v1).scale_down_deadline.is_some());
    let wait = d.requeue_after.expect("requeue at the deadline").as_secs();
    assert!((119..=121).contains(&wait), "{wait}");
    w.advance(100);
    w.step();
    assert_eq!(w.rs(&v1).replicas, 3);
    w.advance(21);
    w.step();
    assert_eq!(w.rs(&v1).replicas, 0);
    assert_eq!(w.rs(&v1).scale_down_deadline, None);
}

#[test]
fn scale_down_delay_revision_limit_bounds_old_revisions_kept_up() {
    let (mut w, v1) = World::deployed(
        json!({}),
        json!({"scaleDownDelaySeconds": 600, "scaleDownDelayRevisionLimit": 1}),
    );
    let v2 = w.set_image("app:2");
    w.settle();
    assert_eq!(w.rs(&v1).replicas, 3);
    let v3 = w.set_image("app:3");
    w.settle();
    assert_eq!(w.status().stable_rs, Some(v3));
    assert_eq!(w.rs(&v2).replicas, 3, "newest old revision kept");
    assert_eq!(w.rs(&v1).replicas, 0, "beyond the limit: scaled down now");
}

#[test]
fn revision_history_limit_prunes_the_oldest_idle_replica_sets() {
    let (mut w, v1) = World::deployed(
        json!({"revisionHistoryLimit": 2}),
        json!({"scaleDownDelaySeconds": 0}),
    );
    for image in ["app:2", "app:3", "app:4"] {
        w.set_image(image);
        w.settle();
        w.advance(1);
        w.settle();
    }
    let idle: Vec<_> = w
        .observed
        .replica_sets
        .iter()
        .filter(|r| r.replicas == 0)
        .map(|r| r.revision)
        .collect();
    assert_eq!(idle.len(), 2, "{idle:?}");
    assert!(w.observed.replica_set(&v1).is_none(), "oldest pruned");
    assert!(w.reasons().contains(&"ReplicaSetPruned"));
}

#[test]
fn user_abort_returns_to_stable_and_scales_the_preview_down_after_the_delay() {
    let (mut w, v1) = World::deployed(
        json!({}),
        json!({"autoPromotionEnabled": false, "abortScaleDownDelaySeconds": 45}),
    );
    let v2 = w.set_image("app:2");
    w.settle();
    w.abort();
    w.step();
    assert_eq!(w.phase(), Some(RolloutPhase::Degraded));
    assert!(w.message().contains("Aborted by user"), "{}", w.message());
    assert!(w.status().aborted_at.is_some());
    assert_eq!(w.active(), Some(v1.clone()));
    assert_eq!(w.preview(), Some(v1));
    assert_eq!(w.rs(&v2).replicas, 3);
    w.advance(46);
    w.step();
    assert_eq!(w.rs(&v2).replicas, 0);
    assert_eq!(
        w.phase(),
        Some(RolloutPhase::Degraded),
        "stays degraded until retried"
    );
}

#[test]
fn retry_after_abort_starts_the_release_again_with_a_new_analysis_run() {
    let (mut w, _) = World::deployed(
        json!({}),
        json!({"prePromotionAnalysis": {"templates": [{"templateName": "rate"}]}}),
    );
    w.add_template("rate");
    let v2 = w.set_image("app:2");
    w.step();
    w.pods_ready();
    w.step();
    let first = w.set_run(AnalysisKind::PrePromotion, AnalysisPhase::Failed, "bad");
    w.step();
    w.advance(60);
    w.step();
    assert_eq!(w.rs(&v2).replicas, 0);
    w.retry();
    w.step();
    assert!(w.reasons().contains(&"RolloutRetried"));
    assert_eq!(w.rs(&v2).replicas, 3, "preview back up");
    assert_eq!(w.rs(&v2).scale_down_deadline, None);
    assert_eq!(w.phase(), Some(RolloutPhase::Progressing));
    w.pods_ready();
    w.step();
    let second = &w.observed.analysis_runs.last().expect("run").name;
    assert_ne!(second, &first, "a new run for the retry");
    w.set_run(AnalysisKind::PrePromotion, AnalysisPhase::Successful, "");
    w.step();
    assert_eq!(w.status().stable_rs, Some(v2));
}

#[test]
fn a_newer_revision_supersedes_the_release_in_flight() {
    let (mut w, v1) = World::deployed(
        json!({}),
        json!({"autoPromotionEnabled": false, "prePromotionAnalysis": {"templates": [{"templateName": "rate"}]}}),
    );
    w.add_template("rate");
    let v2 = w.set_image("app:2");
    w.step();
    w.pods_ready();
    w.step();
    let run = w.observed.analysis_runs[0].name.clone();
    let v3 = w.set_image("app:3");
    let d = w.step();
    assert!(
        d.actions
            .contains(&Action::TerminateAnalysisRun { name: run })
    );
    assert_eq!(w.rs(&v2).replicas, 0, "superseded preview scaled down");
    assert_eq!(w.preview(), Some(v3.clone()));
    assert_eq!(w.active(), Some(v1));
    assert_eq!(w.status().current_pod_hash, Some(v3));
    assert!(w.reasons().contains(&"RolloutSuperseded"));
}

#[test]
fn crash_looping_revision_is_aborted_at_the_progress_deadline_and_never_active() {
    let (mut w, v1) = World::deployed(json!({"progressDeadlineSeconds": 300}), json!({}));
    w.crash("app:bad");
    let bad = w.set_image("app:bad");
    let d = w.step();
    assert!(d.requeue_after.is_some());
    for _ in 0..5 {
        w.advance(50);
        w.pods_ready();
        w.step();
        assert_eq!(w.phase(), Some(RolloutPhase::Progressing));
    }
    w.advance(51);
    w.step();
    assert_eq!(w.phase(), Some(RolloutPhase::Degraded));
    assert!(
        w.message().contains("ProgressDeadlineExceeded"),
        "{}",
        w.message()
    );
    assert_eq!(w.status().abort, Some(true));
    assert_eq!(w.active(), Some(v1));
    assert!(!w.actions.iter().any(
        |a| matches!(a, Action::SwitchService { role: ServiceRole::Active, to, .. } if to == &bad)
    ));
}

#[test]
fn progress_counts_from_the_last_change_not_the_start() {
    let (mut w, _) = World::deployed(json!({"progressDeadlineSeconds": 100}), json!({}));
    let v2 = w.set_image("app:2");
    w.step();
    for ready in 1..=2 {
        w.advance(90);
        w.observed
            .replica_sets
            .iter_mut()
            .filter(|r| r.hash == v2)
            .for_each(|r| {
                r.ready = ready;
                r.available = ready;
            });
        w.step();
        assert_eq!(
            w.phase(),
            Some(RolloutPhase::Progressing),
            "progress at {ready} pods"
        );
    }
}

#[test]
fn without_progress_deadline_abort_the_release_is_degraded_and_recovers() {
    let (mut w, _) = World::deployed(
        json!({"progressDeadlineSeconds": 60, "progressDeadlineAbort": false}),
        json!({}),
    );
    let slow = w.crash("app:slow");
    w.set_image("app:slow");
    w.step();
    w.advance(61);
    w.step();
    assert_eq!(w.phase(), Some(RolloutPhase::Degraded));
    assert_eq!(w.status().abort, None);
    assert_eq!(
        w.condition("Progressing").expect("cond").reason,
        "ProgressDeadlineExceeded"
    );
    assert!(
        w.message().starts_with("ProgressDeadlineExceeded"),
        "{}",
        w.message()
    );
    w.crashing.remove(&slow);
    w.pods_ready();
    w.step();
    assert_eq!(w.status().stable_rs, Some(slow));
    assert_eq!(w.phase(), Some(RolloutPhase::Healthy));
}

#[test]
fn going_back_to_the_stable_template_is_instant() {
    let (mut w, v1) = World::deployed(
        json!({}),
        json!({"autoPromotionEnabled": false, "prePromotionAnalysis": {"templates": [{"templateName": "rate"}]}}),
    );
    w.add_template("rate");
    let v2 = w.set_image("app:2");
    w.step();
    w.pods_ready();
    w.step();
    let runs_before = w.observed.analysis_runs.len();
    w.set_image("app:1");
    w.step();
    assert_eq!(w.phase(), Some(RolloutPhase::Healthy));
    assert_eq!(w.active(), Some(v1.clone()));
    assert_eq!(w.preview(), Some(v1));
    assert_eq!(w.rs(&v2).replicas, 0);
    assert_eq!(
        w.observed.analysis_runs.len(),
        runs_before,
        "no new analysis"
    );
    assert!(w.observed.analysis_runs.iter().all(|r| r.terminating));
    assert!(w.reasons().contains(&"RollbackToStable"));
}

#[test]
fn spec_paused_holds_the_release_before_promotion() {
    let (mut w, v1) = World::deployed(json!({"paused": true}), json!({}));
    w.set_image("app:2");
    w.settle();
    assert_eq!(w.phase(), Some(RolloutPhase::Paused));
    assert!(w.message().contains("spec.paused"));
    assert_eq!(w.active(), Some(v1));
    w.rollout.spec.paused = Some(false);
    w.bump_generation();
    w.settle();
    assert_eq!(w.phase(), Some(RolloutPhase::Healthy));
}

#[test]
fn promote_full_skips_analysis_and_pauses() {
    let (mut w, _) = World::deployed(
        json!({}),
        json!({"autoPromotionEnabled": false, "prePromotionAnalysis": {"templates": [{"templateName": "rate"}]},
        "postPromotionAnalysis": {"templates": [{"templateName": "rate"}]}}),
    );
    w.add_template("rate");
    let v2 = w.set_image("app:2");
    w.step();
    w.rollout
        .status
        .get_or_insert_with(Default::default)
        .promote_full = Some(true);
    w.settle();
    assert_eq!(w.status().stable_rs, Some(v2));
    assert!(w.observed.analysis_runs.is_empty());
    assert_eq!(w.status().promote_full, None, "cleared once done");
}

#[test]
fn rollback_to_an_older_revision_bumps_its_revision_number() {
    let (mut w, v1) = World::deployed(json!({}), json!({"scaleDownDelaySeconds": 0}));
    w.set_image("app:2");
    w.settle();
    w.advance(1);
    w.settle();
    assert_eq!(w.rs(&v1).replicas, 0);
    w.set_image("app:1");
    w.settle();
    assert_eq!(w.rs(&v1).revision, 3);
    assert_eq!(w.status().current_revision, Some(3));
    assert_eq!(w.status().stable_rs, Some(v1));
}

#[test]
fn switch_events_name_the_service_and_both_hashes() {
    let (mut w, v1) = World::deployed(json!({}), json!({}));
    let v2 = w.set_image("app:2");
    w.settle();
    let e = w
        .events
        .iter()
        .rev()
        .find(|e| e.reason == "ActiveServiceSwitched")
        .expect("event");
    assert_eq!(
        e.note,
        format!("Switched active Service web-active from {v1} to {v2}")
    );
}

#[test]
fn observed_generation_follows_the_generation() {
    let (mut w, _) = World::deployed(json!({}), json!({}));
    assert_eq!(w.status().observed_generation, Some(1));
    w.set_image("app:2");
    w.step();
    assert_eq!(w.status().observed_generation, Some(2));
}

fn assert_invalid(
    spec: serde_json::Value,
    bg: serde_json::Value,
    field: &str,
    remove_services: &[&str],
) {
    let mut w = World::new(spec, bg);
    for s in remove_services {
        w.observed.services.remove(*s);
    }
    let d = w.step();
    assert!(
        d.actions.is_empty(),
        "an invalid rollout touches nothing: {:?}",
        d.actions
    );
    assert_eq!(w.phase(), Some(RolloutPhase::Degraded));
    let c = w.condition("InvalidSpec").expect("InvalidSpec condition");
    assert!(
        c.message.contains(field),
        "{} should name {field}",
        c.message
    );
    assert!(w.message().starts_with("InvalidSpec"));
    assert_eq!(d.events.len(), 1);
    assert!(d.events[0].warning && d.events[0].reason == "InvalidSpec");
    let again = w.step();
    assert!(again.events.is_empty(), "not repeated");
}

#[test]
fn invalid_specs_are_reported_with_the_field_and_touch_nothing() {
    assert_invalid(
        json!({"strategy": {"canary": {}}}),
        json!({}),
        "spec.strategy: exactly one of blueGreen or canary expected, found both",
        &[],
    );
    assert_invalid(
        json!({"strategy": {"blueGreen": null}}),
        json!({}),
        "found neither",
        &[],
    );
    assert_invalid(
        json!({}),
        json!({"activeService": null}),
        "spec.strategy.blueGreen.activeService: required",
        &[],
    );
    assert_invalid(
        json!({}),
        json!({"previewService": "web-active"}),
        "spec.strategy.blueGreen.previewService: must differ",
        &[],
    );
    assert_invalid(
        json!({}),
        json!({}),
        "Service \"web-active\" not found",
        &["web-active"],
    );
    assert_invalid(
        json!({"template": null}),
        json!({}),
        "spec.template: required",
        &[],
    );
    assert_invalid(
        json!({"selector": {"matchLabels": {"app": "other"}}}),
        json!({}),
        "spec.selector.matchLabels",
        &[],
    );
    assert_invalid(
        json!({"replicas": -1}),
        json!({}),
        "spec.replicas: must be >= 0, got -1",
        &[],
    );
    assert_invalid(
        json!({}),
        json!({"prePromotionAnalysis": {"templates": [{"templateName": "missing"}]}}),
        "AnalysisTemplate \"missing\" not found",
        &[],
    );
}

#[test]
fn fixing_an_invalid_spec_clears_the_condition() {
    let mut w = World::new(json!({}), json!({}));
    w.observed.services.remove("web-active");
    w.step();
    assert!(w.condition("InvalidSpec").is_some());
    w.observed.services.insert(
        "web-active".into(),
        rollgate_engine::ObservedService {
            name: "web-active".into(),
            selected_hash: None,
        },
    );
    w.settle();
    assert!(w.condition("InvalidSpec").is_none());
    assert_eq!(w.phase(), Some(RolloutPhase::Healthy));
}

#[test]
fn an_invalid_spec_mid_release_freezes_traffic_where_it_is() {
    let (mut w, v1) = World::deployed(json!({}), manual());
    let v2 = w.set_image("app:2");
    w.settle();
    w.observed.services.remove("web-preview");
    let d = w.step();
    assert!(d.actions.is_empty());
    assert_eq!(w.status().stable_rs, Some(v1));
    assert_eq!(w.rs(&v2).replicas, 3);
}
