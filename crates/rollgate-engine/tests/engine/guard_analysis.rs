//! `spec.guard.analysis`: an analysis run against the fully promoted revision inside its guard
//! window. A failed run sends traffic back to the previous revision at once
//! (`GuardAnalysisFailed`), an undecided one rolls nothing back, an unfinished one is
//! terminated when the window ends, and a blamed alert still acts while it runs.
//!
//! Each `World::step` also checks the traffic invariant, consistency and idempotence (see
//! `support`), so every test below exercises those too.

use crate::support;

use std::collections::BTreeMap;

use rollgate_api::labels::POD_TEMPLATE_HASH;
use rollgate_api::{AbortReason, AnalysisPhase, RolloutPhase};
use rollgate_engine::{AnalysisKind, ObservedAlert, ObservedAlerts};
use serde_json::{Value, json};
use support::*;

fn guard(duration: &str) -> Value {
    json!({"duration": duration, "analysis": analysis()})
}

fn alerts() -> Value {
    json!({"alertmanager": {"address": "http://127.0.0.1:9093"}, "matchers": ["app=\"web\""]})
}

/// A blue/green `web` guarded for `duration` by an analysis only, released from `app:1` to
/// `app:2` and fully promoted. Returns the world and both hashes.
fn promoted_blue_green(spec: Value) -> (World, String, String) {
    let (mut w, v1) = World::deployed(spec, json!({}));
    let v2 = w.set_image("app:2");
    w.run_until_settled();
    assert_eq!(w.active(), Some(v2.clone()));
    assert_eq!(w.status().stable_rs, Some(v2.clone()));
    (w, v1, v2)
}

fn guard_runs(w: &World) -> Vec<String> {
    w.observed
        .analysis_runs
        .iter()
        .filter(|r| r.kind == AnalysisKind::Guard)
        .map(|r| r.name.clone())
        .collect()
}

#[test]
fn a_guard_with_only_an_analysis_is_valid_and_one_with_neither_is_not() {
    let (mut w, _) = World::deployed(json!({"guard": guard("10m")}), json!({}));
    w.step();
    assert_eq!(w.phase(), Some(RolloutPhase::Healthy));

    let mut w = World::new(json!({"guard": {"duration": "10m"}}), json!({}));
    let d = w.step();
    assert!(d.actions.is_empty(), "{:?}", d.actions);
    assert_eq!(w.phase(), Some(RolloutPhase::Degraded));
    assert!(
        w.message()
            .contains("spec.guard: spec.alerts or spec.guard.analysis expected"),
        "{}",
        w.message()
    );
}

#[test]
fn a_guard_analysis_on_a_missing_template_is_an_invalid_spec_before_anything_moves() {
    let spec = json!({"guard": {"duration": "10m",
                                "analysis": {"templates": [{"templateName": "nope"}]}}});
    let mut w = World::new(spec, json!({}));
    let d = w.step();
    assert!(d.actions.is_empty(), "{:?}", d.actions);
    assert_eq!(w.phase(), Some(RolloutPhase::Degraded));
    assert!(
        w.message()
            .contains("spec.guard.analysis.templates[0].templateName: AnalysisTemplate \"nope\""),
        "{}",
        w.message()
    );
}

#[test]
fn the_guard_analysis_starts_at_full_promotion_against_the_promoted_revision() {
    let (w, _, v2) = promoted_blue_green(json!({"guard": guard("10m")}));
    let runs: Vec<_> = w
        .created_runs()
        .into_iter()
        .filter(|r| {
            r.metadata
                .name
                .as_deref()
                .is_some_and(|n| n.contains("-guard-"))
        })
        .collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(
        runs[0].metadata.name.as_deref(),
        Some(run_name(&v2, AnalysisKind::Guard, 1).as_str())
    );
    let labels = runs[0].metadata.labels.clone().unwrap_or_default();
    assert_eq!(
        labels.get(POD_TEMPLATE_HASH).map(String::as_str),
        Some(v2.as_str())
    );
    let g = w.status().guard.expect("guard window open");
    assert_eq!(
        g.analysis_run.map(|r| r.name),
        Some(run_name(&v2, AnalysisKind::Guard, 1))
    );
    assert_eq!(w.phase(), Some(RolloutPhase::Healthy));
}

#[test]
fn a_failed_guard_analysis_sends_traffic_back_to_the_previous_revision_at_once() {
    let (mut w, v1, v2) = promoted_blue_green(json!({"guard": guard("10m")}));
    w.advance(120);
    w.run_until_settled();
    assert_eq!(
        w.size(&v1),
        3,
        "previous kept at full size inside the window"
    );
    let run = w.set_run(
        AnalysisKind::Guard,
        AnalysisPhase::Failed,
        Some("5% errors"),
    );
    let d = w.step();
    assert_eq!(
        w.active(),
        Some(v1.clone()),
        "traffic back in the reconcile that sees it"
    );
    assert!(reasons(&d).contains(&"RolloutAborted"), "{:?}", reasons(&d));
    let s = w.status();
    assert_eq!(s.stable_rs, Some(v1.clone()));
    assert_eq!(s.abort_reason, Some(AbortReason::GuardAnalysisFailed));
    assert_eq!(s.phase, Some(RolloutPhase::Degraded));
    assert!(s.guard.is_none());
    assert!(s.alert.is_none());
    let message = w.message();
    assert!(
        message.contains("GuardAnalysisFailed") && message.contains(&run),
        "{message}"
    );
    // abortScaleDownDelaySeconds (30 s by default) later, the guarded revision's pods go.
    w.advance(31);
    w.run_until_settled();
    assert_eq!(w.size(&v1), 3);
    assert_eq!(w.size(&v2), 0);
    assert_eq!(w.phase(), Some(RolloutPhase::Degraded));
}

#[test]
fn a_successful_guard_analysis_lets_the_window_pass_and_the_previous_revision_go() {
    let (mut w, v1, _) = promoted_blue_green(json!({"guard": guard("5m")}));
    w.set_run_phase(AnalysisKind::Guard, AnalysisPhase::Successful);
    w.run_until_settled();
    assert!(w.status().guard.is_some(), "the window lasts its duration");
    assert_eq!(w.size(&v1), 3);
    w.advance(301);
    w.run_until_settled();
    assert!(w.status().guard.is_none());
    assert!(w.reasons().contains(&"GuardPassed"), "{:?}", w.reasons());
    assert_eq!(w.size(&v1), 0);
    assert_eq!(w.phase(), Some(RolloutPhase::Healthy));
    assert!(w.terminated_runs().is_empty(), "{:?}", w.terminated_runs());
}

#[test]
fn an_unfinished_guard_analysis_is_terminated_when_the_window_ends() {
    let (mut w, _, _) = promoted_blue_green(json!({"guard": guard("5m")}));
    let runs = guard_runs(&w);
    assert_eq!(runs.len(), 1);
    w.advance(120);
    w.run_until_settled();
    assert!(
        w.terminated_runs().is_empty(),
        "kept while the window is open"
    );
    w.advance(181);
    w.run_until_settled();
    assert!(w.status().guard.is_none());
    assert_eq!(w.terminated_runs(), runs);
    assert_eq!(w.phase(), Some(RolloutPhase::Healthy));
}

#[test]
fn an_undecided_guard_analysis_rolls_nothing_back_and_says_so_once() {
    let (mut w, v1, v2) = promoted_blue_green(json!({"guard": guard("10m")}));
    w.set_run(
        AnalysisKind::Guard,
        AnalysisPhase::Inconclusive,
        Some("between thresholds"),
    );
    w.run_until_settled();
    w.advance(30);
    w.run_until_settled();
    let warnings = w
        .reasons()
        .into_iter()
        .filter(|r| *r == "GuardAnalysisInconclusive")
        .count();
    assert_eq!(warnings, 1, "{:?}", w.reasons());
    assert_eq!(w.active(), Some(v2.clone()));
    assert_eq!(w.status().stable_rs, Some(v2));
    assert_eq!(w.status().abort_reason, None);
    assert_eq!(
        w.size(&v1),
        3,
        "the window still keeps the previous revision"
    );
}

#[test]
fn a_blamed_alert_acts_while_the_guard_analysis_runs_and_the_run_is_terminated() {
    let spec = json!({"alerts": alerts(), "guard": guard("10m")});
    let (mut w, v1, v2) = promoted_blue_green(spec);
    let runs = guard_runs(&w);
    let started = w.at(-5);
    w.observed.alerts = ObservedAlerts::Firing(vec![ObservedAlert {
        name: "HighErrorRate".into(),
        labels: BTreeMap::from([
            ("alertname".to_string(), "HighErrorRate".to_string()),
            ("pod_template_hash".to_string(), v2.clone()),
        ]),
        starts_at: started,
        fingerprint: "fp-1".into(),
    }]);
    w.step();
    assert_eq!(w.active(), Some(v1.clone()));
    assert_eq!(w.status().abort_reason, Some(AbortReason::AlertFiring));
    w.run_until_settled();
    assert_eq!(w.terminated_runs(), runs);
    assert_eq!(w.status().stable_rs, Some(v1));
}

#[test]
fn a_routed_canary_whose_guard_analysis_fails_routes_back_to_the_previous_revision() {
    let (mut w, v1) = World::canary_deployed(
        json!({"guard": guard("10m")}),
        json!({"trafficRouting": route_routing(), "steps": [{"setWeight": 50}]}),
    );
    let v2 = w.set_image("app:2");
    w.run_until_settled();
    assert_eq!(w.status().stable_rs, Some(v2.clone()));
    assert_eq!(w.route_weights(), (0, 100));
    assert_eq!(guard_runs(&w).len(), 1);
    w.set_run_phase(AnalysisKind::Guard, AnalysisPhase::Failed);
    w.step();
    assert_eq!(w.status().stable_rs, Some(v1.clone()));
    assert_eq!(w.selects(STABLE_SVC), Some(v1));
    assert_eq!(w.route_weights(), (0, 100));
    assert_eq!(
        w.status().abort_reason,
        Some(AbortReason::GuardAnalysisFailed)
    );
}

#[test]
fn a_guard_analysis_without_alerts_wakes_only_at_the_end_of_the_window() {
    let (mut w, _, _) = promoted_blue_green(json!({"guard": guard("10m")}));
    w.set_run_phase(AnalysisKind::Guard, AnalysisPhase::Successful);
    let d = w.step();
    let until = w.status().guard.map(|g| g.until.0).expect("window open");
    let left = until.duration_since(w.now).as_secs();
    assert_eq!(
        d.requeue_after.map(|r| r.as_secs() as i64),
        Some(left),
        "no pull interval without an alert source"
    );
}
