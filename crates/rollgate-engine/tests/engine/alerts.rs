//! `spec.alerts` and `spec.guard`: validation, attribution of firing alerts to a release, the
//! abort they cause in flight, and the guard window after full promotion.

use crate::support;

use std::collections::BTreeMap;

use rollgate_api::{AbortReason, RolloutPhase};
use rollgate_engine::{ObservedAlert, ObservedAlerts};
use serde_json::{Value, json};
use support::*;

fn alerts(extra: Value) -> Value {
    let mut a = json!({"alertmanager": {"address": "http://127.0.0.1:9093"},
                       "matchers": ["app=\"web\""]});
    rollgate_test_support::merge(&mut a, extra);
    a
}

/// A firing alert `name` started at `at`, with `hash` in `pod_template_hash` (none:
/// service-level).
fn alert(name: &str, hash: Option<&str>, at: k8s_openapi::jiff::Timestamp) -> ObservedAlert {
    let mut labels = BTreeMap::from([
        ("alertname".to_string(), name.to_string()),
        ("severity".to_string(), "critical".to_string()),
    ]);
    if let Some(h) = hash {
        labels.insert("pod_template_hash".into(), h.into());
    }
    ObservedAlert {
        name: name.into(),
        labels,
        starts_at: at,
        fingerprint: format!("fp-{name}-{}", hash.unwrap_or("service")),
    }
}

fn fire(w: &mut World, a: ObservedAlert) {
    w.observed.alerts = ObservedAlerts::Firing(vec![a]);
}

fn abort_reason(w: &World) -> Option<AbortReason> {
    w.status().abort_reason
}

// ----- validation -----

fn invalid_with(spec: Value, field: &str) {
    let mut w = World::canary(spec, json!({"steps": [{"setWeight": 50}]}));
    let d = w.step();
    assert!(d.actions.is_empty(), "{:?}", d.actions);
    assert_eq!(w.phase(), Some(RolloutPhase::Degraded));
    assert!(w.message().contains(field), "{field}: {}", w.message());
}

cases! { invalid_with;
    both_sources: (json!({"alerts": alerts(json!({"prometheus": {"address": "http://p:9090"}}))}), "spec.alerts"),
    no_source: (json!({"alerts": {"matchers": []}}), "spec.alerts"),
    unknown_policy: (json!({"alerts": alerts(json!({"serviceLevelAlerts": "Sometimes"}))}), "spec.alerts.serviceLevelAlerts"),
    bad_matcher: (json!({"alerts": alerts(json!({"matchers": ["app=\"web\"", "severity=~critical"]}))}), "spec.alerts.matchers[1]"),
    bad_interval: (json!({"alerts": alerts(json!({"interval": "soon"}))}), "spec.alerts.interval"),
    bad_address: (json!({"alerts": alerts(json!({"alertmanager": {"address": "alertmanager:9093"}}))}), "spec.alerts.alertmanager.address"),
    bad_revision_label: (json!({"alerts": alerts(json!({"revisionLabel": "pod-template-hash"}))}), "spec.alerts.revisionLabel"),
    guard_without_alerts: (json!({"guard": {"duration": "15m"}}), "spec.guard"),
    guard_without_duration: (json!({"alerts": alerts(json!({})), "guard": {}}), "spec.guard.duration"),
    guard_bad_duration: (json!({"alerts": alerts(json!({})), "guard": {"duration": "0s"}}), "spec.guard.duration"),
}

// ----- canary in flight -----

fn canary_release(extra: Value) -> (World, String, String) {
    let mut spec = json!({"alerts": alerts(json!({}))});
    rollgate_test_support::merge(&mut spec, extra);
    let (mut w, v1) = World::canary_deployed(
        spec,
        json!({"trafficRouting": route_routing(),
               "steps": [{"setWeight": 20}, {"pause": {}}, {"setWeight": 60}, {"pause": {}}]}),
    );
    let v2 = w.set_image("app:2");
    w.run_until_settled();
    assert_eq!(w.phase(), Some(RolloutPhase::Paused));
    assert_eq!(w.route_weights(), (20, 80));
    (w, v1, v2)
}

#[test]
fn an_alert_on_the_canary_aborts_with_weight_0_in_the_same_reconcile() {
    let (mut w, _, v2) = canary_release(json!({}));
    let started = w.at(5);
    fire(&mut w, alert("HighErrorRate", Some(&v2), started));
    w.step();
    assert_eq!(w.route_weights(), (0, 100));
    assert_eq!(w.phase(), Some(RolloutPhase::Degraded));
    assert_eq!(abort_reason(&w), Some(AbortReason::AlertFiring));
    assert!(w.message().contains("HighErrorRate"), "{}", w.message());
    let recorded = w.status().alert.expect("status.alert");
    assert_eq!(recorded.name, "HighErrorRate");
    assert_eq!(recorded.revision, v2);
    assert!(w.reasons().contains(&"RolloutAborted"), "{:?}", w.reasons());
}

#[test]
fn an_alert_on_the_stable_revision_never_aborts() {
    let (mut w, v1, _) = canary_release(json!({}));
    let started = w.at(5);
    fire(&mut w, alert("HighErrorRate", Some(&v1), started));
    let d = w.step();
    assert!(d.actions.is_empty(), "{:?}", d.actions);
    assert_eq!(w.phase(), Some(RolloutPhase::Paused));
}

#[test]
fn a_service_level_alert_counts_only_if_it_started_during_the_release() {
    let (mut w, _, _) = canary_release(json!({}));
    // Started an hour before the release: maybe the incident this release fixes.
    let before = w.at(-3600);
    fire(&mut w, alert("SLOBurn", None, before));
    assert!(w.step().actions.is_empty());
    assert_eq!(w.phase(), Some(RolloutPhase::Paused));
    // Started after the release began.
    let after = w.at(1);
    fire(&mut w, alert("SLOBurn", None, after));
    w.step();
    assert_eq!(abort_reason(&w), Some(AbortReason::AlertFiring));
}

#[test]
fn with_ignore_service_level_alerts_never_abort() {
    let (mut w, _, _) = canary_release(json!({"alerts": {"serviceLevelAlerts": "Ignore"}}));
    let after = w.at(1);
    fire(&mut w, alert("SLOBurn", None, after));
    assert!(w.step().actions.is_empty());
    assert_eq!(w.phase(), Some(RolloutPhase::Paused));
}

#[test]
fn an_unknown_source_neither_aborts_nor_promotes() {
    let (mut w, _, _) = canary_release(json!({}));
    w.observed.alerts = ObservedAlerts::Unknown("connection refused".into());
    assert!(w.step().actions.is_empty());
    assert_eq!(w.phase(), Some(RolloutPhase::Paused));
    let c = w.condition("AlertSource");
    assert_eq!(
        (c.status.as_str(), c.reason.as_str()),
        ("False", "AlertSourceUnavailable")
    );
    assert!(c.message.contains("connection refused"), "{}", c.message);
    w.observed.alerts = ObservedAlerts::Firing(Vec::new());
    w.step();
    assert_eq!(w.condition("AlertSource").status, "True");
}

#[test]
fn a_resolved_alert_does_not_resume_and_retry_is_not_aborted_again_by_it() {
    let (mut w, _, v2) = canary_release(json!({}));
    let started = w.at(5);
    let a = alert("HighErrorRate", Some(&v2), started);
    fire(&mut w, a.clone());
    w.step();
    assert_eq!(abort_reason(&w), Some(AbortReason::AlertFiring));
    w.observed.alerts = ObservedAlerts::Firing(Vec::new());
    w.run_until_settled();
    assert_eq!(
        w.phase(),
        Some(RolloutPhase::Degraded),
        "resolved: still aborted"
    );
    // Retried while the same occurrence still fires: it acted once already.
    fire(&mut w, a);
    w.retry();
    w.run_until_settled();
    assert_eq!(abort_reason(&w), None, "{}", w.message());
    assert_eq!(w.phase(), Some(RolloutPhase::Paused));
    // A new occurrence (it resolved and fired again) aborts again.
    let again = w.at(30);
    fire(&mut w, alert("HighErrorRate", Some(&v2), again));
    w.step();
    assert_eq!(abort_reason(&w), Some(AbortReason::AlertFiring));
}

// ----- blue/green -----

fn bg_spec(guard: Option<&str>) -> Value {
    let mut spec = json!({"alerts": alerts(json!({}))});
    if let Some(d) = guard {
        spec["guard"] = json!({"duration": d});
    }
    spec
}

#[test]
fn blue_green_before_the_switch_aborts_and_the_preview_never_gets_traffic() {
    let (mut w, v1) = World::deployed(bg_spec(None), json!({"autoPromotionEnabled": false}));
    let v2 = w.set_image("app:2");
    w.run_until_settled();
    assert_eq!(w.phase(), Some(RolloutPhase::Paused));
    let started = w.at(1);
    fire(&mut w, alert("HighLatency", Some(&v2), started));
    w.step();
    assert_eq!(w.active(), Some(v1));
    assert_eq!(abort_reason(&w), Some(AbortReason::AlertFiring));
}

#[test]
fn blue_green_after_the_switch_during_post_promotion_analysis_switches_back() {
    let (mut w, v1) = World::deployed(bg_spec(None), json!({"postPromotionAnalysis": analysis()}));
    let v2 = w.set_image("app:2");
    w.run_until_settled();
    assert_eq!(
        w.active(),
        Some(v2.clone()),
        "switched, post-promotion analysis running"
    );
    assert_eq!(w.status().stable_rs, Some(v1.clone()));
    let started = w.at(1);
    fire(&mut w, alert("HighErrorRate", Some(&v2), started));
    w.step();
    assert_eq!(
        w.active(),
        Some(v1.clone()),
        "back in the reconcile that sees it"
    );
    assert_eq!(w.status().stable_rs, Some(v1));
    assert_eq!(abort_reason(&w), Some(AbortReason::AlertFiring));
    assert_eq!(w.phase(), Some(RolloutPhase::Degraded));
}

#[test]
fn blue_green_inside_the_guard_window_goes_back_to_the_previous_revision_at_once() {
    let (mut w, v1) = World::deployed(bg_spec(Some("15m")), json!({}));
    let v2 = w.set_image("app:2");
    w.run_until_settled();
    assert_eq!(w.active(), Some(v2.clone()));
    assert_eq!(w.phase(), Some(RolloutPhase::Healthy));
    let guard = w.status().guard.expect("guard window open");
    assert_eq!(
        (guard.revision.as_str(), guard.previous.as_str()),
        (v2.as_str(), v1.as_str())
    );
    // The previous revision keeps its pods for the window, beyond scaleDownDelaySeconds.
    w.advance(600);
    w.run_until_settled();
    assert_eq!(
        w.size(&v1),
        3,
        "previous kept at full size inside the window"
    );
    let started = w.at(-10);
    fire(&mut w, alert("HighErrorRate", Some(&v2), started));
    w.step();
    assert_eq!(
        w.active(),
        Some(v1.clone()),
        "traffic back in the reconcile that sees it"
    );
    assert_eq!(w.status().stable_rs, Some(v1));
    assert_eq!(w.phase(), Some(RolloutPhase::Degraded));
    assert_eq!(abort_reason(&w), Some(AbortReason::AlertFiring));
    assert!(w.status().guard.is_none());
    assert!(w.message().contains("HighErrorRate"), "{}", w.message());
}

#[test]
fn after_the_guard_window_the_previous_revision_is_scaled_down() {
    let (mut w, v1) = World::deployed(bg_spec(Some("5m")), json!({}));
    let v2 = w.set_image("app:2");
    w.run_until_settled();
    assert!(w.status().guard.is_some());
    w.advance(301);
    w.run_until_settled();
    assert!(w.status().guard.is_none());
    assert!(w.reasons().contains(&"GuardPassed"), "{:?}", w.reasons());
    assert_eq!(w.size(&v1), 0);
    // An alert now is not the release's business any more.
    let started = w.at(0);
    fire(&mut w, alert("HighErrorRate", Some(&v2), started));
    assert!(w.step().actions.is_empty());
    assert_eq!(w.phase(), Some(RolloutPhase::Healthy));
}

#[test]
fn a_routed_canary_inside_its_guard_window_routes_back_to_the_previous_revision() {
    let (mut w, v1) = World::canary_deployed(
        json!({"alerts": alerts(json!({})), "guard": {"duration": "10m"}}),
        json!({"trafficRouting": route_routing(), "steps": [{"setWeight": 50}]}),
    );
    let v2 = w.set_image("app:2");
    w.run_until_settled();
    assert_eq!(w.status().stable_rs, Some(v2.clone()));
    assert_eq!(w.selects(STABLE_SVC), Some(v2.clone()));
    w.advance(120);
    w.run_until_settled();
    assert_eq!(
        w.size(&v1),
        10,
        "previous stable kept at full size inside the window"
    );
    let started = w.at(-5);
    fire(&mut w, alert("HighErrorRate", Some(&v2), started));
    w.step();
    assert_eq!(w.status().stable_rs, Some(v1.clone()));
    assert_eq!(w.selects(STABLE_SVC), Some(v1));
    assert_eq!(w.route_weights(), (0, 100));
    assert_eq!(abort_reason(&w), Some(AbortReason::AlertFiring));
}

#[test]
fn a_canary_without_a_router_goes_back_within_the_surge_inside_its_guard_window() {
    let (mut w, v1) = World::canary_deployed(
        json!({"replicas": 4, "alerts": alerts(json!({})), "guard": {"duration": "10m"}}),
        json!({"canaryService": null, "stableService": null, "maxSurge": 1,
               "maxUnavailable": 0, "steps": [{"setWeight": 50}]}),
    );
    let v2 = w.set_image("app:2");
    w.run_until_settled();
    assert_eq!(w.status().stable_rs, Some(v2.clone()));
    assert!(w.status().guard.is_some());
    assert_eq!(w.size(&v1), 0, "its pods would be traffic");
    let started = w.at(-5);
    fire(&mut w, alert("HighErrorRate", Some(&v2), started));
    w.step();
    assert_eq!(w.status().stable_rs, Some(v1.clone()));
    assert_eq!(abort_reason(&w), Some(AbortReason::AlertFiring));
    for _ in 0..12 {
        let total: i32 = w.observed.replica_sets.iter().map(|rs| rs.replicas).sum();
        assert!(total <= 5, "{total} pods with maxSurge 1 on 4 replicas");
        w.one_more_ready();
        w.step();
    }
    assert_eq!(w.size(&v1), 4);
    assert_eq!(w.size(&v2), 0);
    assert_eq!(w.phase(), Some(RolloutPhase::Degraded));
}

/// With dynamicStableScale the previous stable has no pods left at promotion: the guard window
/// scales it back to full size, and a blamed alert sends traffic back only once it has ready
/// pods (never to pods that cannot serve).
#[test]
fn a_dynamically_scaled_canary_gets_its_previous_revision_back_before_traffic_returns() {
    let (mut w, v1) = World::canary_deployed(
        json!({"replicas": 1, "alerts": alerts(json!({})), "guard": {"duration": "10m"}}),
        json!({"trafficRouting": route_routing(), "dynamicStableScale": true,
               "maxSurge": 1, "maxUnavailable": 0,
               "steps": [{"setWeight": 100}, {"pause": {}}]}),
    );
    let v2 = w.set_image("app:2");
    w.step();
    w.make_all_ready();
    w.step();
    w.make_all_ready();
    w.step();
    assert_eq!(
        w.size(&v1),
        0,
        "dynamicStableScale: the stable side has no pods at 100%"
    );
    w.promote_full();
    w.step();
    assert_eq!(w.status().stable_rs, Some(v2.clone()));
    assert!(w.status().guard.is_some());
    assert_eq!(w.size(&v1), 1, "previous back to full size for the window");
    let started = w.at(-5);
    fire(&mut w, alert("HighErrorRate", Some(&v2), started));
    w.step();
    assert_eq!(
        w.status().stable_rs,
        Some(v2.clone()),
        "v1 has no ready pod yet"
    );
    assert_eq!(w.selects(STABLE_SVC), Some(v2.clone()));
    w.make_all_ready();
    w.step();
    assert_eq!(w.status().stable_rs, Some(v1.clone()));
    assert_eq!(w.selects(STABLE_SVC), Some(v1));
    assert_eq!(abort_reason(&w), Some(AbortReason::AlertFiring));
}
