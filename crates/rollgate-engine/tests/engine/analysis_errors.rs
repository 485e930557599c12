//! An analysis that cannot measure (run phase Error) never promotes: by default the release
//! pauses where it is until a human retries (a new run), promotes or aborts; with
//! `errorPolicy: Abort` it aborts.

use crate::support;

use rollgate_api::{AnalysisPhase, RolloutPhase};
use rollgate_engine::AnalysisKind;
use serde_json::json;
use support::{World, analysis};

fn with_policy(policy: Option<&str>) -> serde_json::Value {
    let mut a = analysis();
    if let Some(p) = policy {
        a["errorPolicy"] = json!(p);
    }
    a
}

#[test]
fn a_canary_step_analysis_error_pauses_and_retry_measures_again() {
    let (mut w, v1) = World::canary_deployed(
        json!({}),
        json!({"steps": [{"setWeight": 20}, {"analysis": with_policy(None)}, {"setWeight": 50}]}),
    );
    let v2 = w.set_image("app:2");
    w.run_until_settled();
    let first = w.set_run(
        AnalysisKind::Step,
        AnalysisPhase::Error,
        Some("metric \"errors\": Prometheus at http://prometheus:9090 unreachable"),
    );
    w.run_until_settled();
    assert_eq!(w.phase(), Some(RolloutPhase::Paused));
    assert!(w.message().contains("could not measure"), "{}", w.message());
    assert!(w.message().contains("unreachable"), "{}", w.message());
    assert!(w.reasons().contains(&"RolloutPaused"));
    // Traffic stays where it is: 20%, stable untouched.
    assert_eq!((w.rs(&v2).replicas, w.rs(&v1).replicas), (2, 8));
    assert_eq!(w.status().abort, None);
    // Time passes: nothing moves.
    w.advance(3600);
    w.run_until_settled();
    assert_eq!(w.phase(), Some(RolloutPhase::Paused));
    assert_eq!(w.status().current_step_index, Some(1));

    w.retry();
    w.run_until_settled();
    let runs = w.run_names();
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert_ne!(runs[1], first);
    assert!(w.reasons().contains(&"AnalysisRetried"));
    assert_eq!(w.phase(), Some(RolloutPhase::Progressing));
    assert!(w.status().pause_conditions.is_empty());
    w.set_run_phase(AnalysisKind::Step, AnalysisPhase::Successful);
    w.run_until_settled();
    assert_eq!(w.status().stable_rs, Some(v2));
}

#[test]
fn error_policy_abort_aborts_on_an_analysis_error() {
    let (mut w, v1) = World::canary_deployed(
        json!({}),
        json!({"steps": [{"setWeight": 20}, {"analysis": with_policy(Some("Abort"))}]}),
    );
    let v2 = w.set_image("app:2");
    w.run_until_settled();
    w.set_run(AnalysisKind::Step, AnalysisPhase::Error, Some("timeout"));
    w.step();
    assert_eq!(w.phase(), Some(RolloutPhase::Degraded));
    assert!(
        w.message().contains("errorPolicy: Abort"),
        "{}",
        w.message()
    );
    assert_eq!(w.rs(&v2).replicas, 0);
    assert_eq!(w.rs(&v1).replicas, 10);
}

#[test]
fn a_blue_green_pre_promotion_error_pauses_without_switching() {
    let (mut w, v1) = World::deployed(
        json!({}),
        json!({"prePromotionAnalysis": with_policy(None)}),
    );
    w.set_image("app:2");
    w.run_until_settled();
    w.set_run_phase(AnalysisKind::PrePromotion, AnalysisPhase::Error);
    w.run_until_settled();
    assert_eq!(w.phase(), Some(RolloutPhase::Paused));
    assert_eq!(w.active(), Some(v1));
    w.retry();
    w.run_until_settled();
    assert_eq!(w.run_names().len(), 2);
}

#[test]
fn an_unknown_error_policy_is_invalid() {
    let mut w = World::canary(
        json!({}),
        json!({"steps": [{"analysis": with_policy(Some("Ignore"))}]}),
    );
    w.step();
    assert_eq!(w.phase(), Some(RolloutPhase::Degraded));
    assert_eq!(
        w.message(),
        "InvalidSpec: spec.strategy.canary.steps[0].analysis.errorPolicy: expected Pause or Abort, got \"Ignore\""
    );
}
