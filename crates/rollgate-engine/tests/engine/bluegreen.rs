//! Blue/green releases that go their normal way: the first deploy, a new revision behind the
//! preview Service, automatic and timed promotion (scale-up to full size, then the switch), and
//! the bookkeeping around them (observedGeneration, Events, references).
//!
//! Each `World::step` also checks the traffic invariant, consistency and idempotence (see
//! `support`), so every test below exercises those too.

use crate::support;

use rollgate_api::RolloutPhase;
use rollgate_api::labels::{POD_TEMPLATE_HASH, REVISION, ROLLOUT_NAME, TEMPLATE};
use rollgate_engine::Action;
use serde_json::json;
use support::{
    ACTIVE, PREVIEW, World, analysis, bg_status, deadline, labels, owner, pause, reasons, requeue,
    rs_name, scale, summary, switch,
};

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
    // The Rollout's template as it stores it, for `undo` (the server defaults the ReplicaSet's).
    let sent =
        serde_json::to_string(w.rollout.spec.template.as_ref().expect("template")).expect("json");
    assert_eq!(
        rs.metadata.annotations,
        Some(labels(&[(REVISION, "1"), (TEMPLATE, &sent)]))
    );
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
            "NewReplicaSetCreated",
            "ScalingReplicaSet",
            "SwitchService",
            "SwitchService",
            "RolloutNotCompleted"
        ]
    );
    assert_eq!(
        d.events[0].note,
        format!("Created ReplicaSet web-{v1} (revision 1) with 3 replicas")
    );
    // As Argo, which creates the ReplicaSet empty and then scales it.
    assert_eq!(
        d.events[1].note,
        format!("Scaled up ReplicaSet web-{v1} from 0 to 3")
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
    // Argo's reason while the ReplicaSet just created has made no progress yet.
    assert_eq!(
        w.cond("Progressing"),
        ("True".into(), "NewReplicaSetCreated".into())
    );
    assert_eq!(
        w.cond("Available"),
        ("False".into(), "AvailableReason".into())
    );
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
    // Argo (rollout/bluegreen.go syncRolloutStatusBlueGreen): the active ReplicaSet's selector.
    assert_eq!(
        s.selector,
        Some(format!("app=web,rollgate.dev/pod-template-hash={v1}"))
    );
    for (type_, status, reason) in [
        ("Progressing", "True", "NewReplicaSetAvailable"),
        ("Available", "True", "AvailableReason"),
        ("Paused", "False", "RolloutPaused"),
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
    assert_eq!(
        w.cond("Available"),
        ("False".into(), "AvailableReason".into())
    );
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
            "SwitchService",
            "NewReplicaSetCreated",
            "ScalingReplicaSet",
            "RolloutNotCompleted"
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
    // Pods the ReplicaSets report (Argo's calculateBaseStatus): the new one has none yet.
    assert_eq!(
        (s.replicas, s.updated_replicas, s.ready_replicas),
        (Some(3), Some(0), Some(3))
    );
    assert_eq!(
        w.cond("Progressing"),
        ("True".into(), "NewReplicaSetCreated".into())
    );
    assert_eq!(
        w.cond("Available"),
        ("True".into(), "AvailableReason".into())
    );
    assert_eq!(
        w.cond("Completed"),
        ("False".into(), "RolloutCompleted".into())
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
    for (case, bg) in [
        ("unset", json!({})),
        ("above replicas", json!({"previewReplicaCount": 7})),
    ] {
        let (mut w, _) = World::deployed(json!({}), bg);
        let v2 = w.set_image("app:2");
        let d = w.step();
        assert_eq!(summary(&d)[1], format!("create rs web-{v2} x3"), "{case}");
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

// ----- promotion -----

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
            "SwitchService",
            "RolloutCompleted",
            "RolloutResumed"
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
    assert_eq!(reasons(&d), ["SwitchService", "RolloutCompleted"]);
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
    assert_eq!(
        w.cond("Available"),
        ("False".into(), "AvailableReason".into())
    );

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
        [deadline(&v2, w.at(30)), switch(ACTIVE, Some(&v2), &v1),]
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
        w.notes("SwitchService")
            .iter()
            .filter(|n| n.starts_with("Switched active Service"))
            .count(),
        2,
        "first deploy and this release"
    );
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
    // One Event reason for every Service, as Argo's `SwitchService`: the note names the role.
    let of = |w: &World, role: &str| -> Vec<String> {
        w.notes("SwitchService")
            .into_iter()
            .filter(|n| n.starts_with(&format!("Switched {role} Service")))
            .collect()
    };
    let (mut w, v1) = World::deployed(json!({}), json!({}));
    assert_eq!(
        of(&w, "active"),
        [format!(
            "Switched active Service web-active from <none> to {v1}"
        )]
    );
    let v2 = w.set_image("app:2");
    w.run_until_settled();
    assert_eq!(
        of(&w, "active")[1..],
        [format!(
            "Switched active Service web-active from {v1} to {v2}"
        )]
    );
    assert_eq!(
        of(&w, "preview"),
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
