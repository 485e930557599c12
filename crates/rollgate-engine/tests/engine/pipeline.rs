//! Promotion pipelines: recording artifacts, following them through the stages, every gate
//! (upstream verification, soak, approvals, rejection, pause, in flight, hold, manual,
//! unreachable), failure and restore of the last good release, superseding, manual
//! promotion. Every `World::step` checks the invariants (see `pipeline_support`).

use crate::pipeline_support;

use pipeline_support::{World, digest};
use rollgate_api::pipeline::{Decision, GateKind, HoldReason, StagePhase, Verdict};
use rollgate_api::{AbortReason, AnalysisPhase};
use rollgate_engine::pipeline::PipelineAction;
use serde_json::json;

fn gates(w: &World, release: &str, stage: &str) -> Vec<GateKind> {
    w.release(release)
        .status
        .as_ref()
        .and_then(|s| s.stages.iter().find(|x| x.name == stage))
        .map(|s| s.blocked.iter().map(|g| g.kind).collect())
        .unwrap_or_default()
}

#[test]
fn a_tag_is_recorded_once_its_pods_report_the_digest_and_travels_pinned() {
    let mut w = World::new(json!({}));
    w.ci_apply("shop/web:2");
    w.step();
    assert!(w.releases.is_empty(), "a tag is not an artifact");
    w.healthy("staging");
    w.pods_run("staging", &digest(2));
    let d = w.step();
    assert_eq!(w.releases.len(), 1);
    let r = w.releases[0].clone();
    let pinned = format!("shop/web@{}", digest(2));
    assert_eq!(r.spec.images.get("web"), Some(&pinned));
    assert_eq!(
        r.spec.source_images.get("web").map(String::as_str),
        Some("shop/web:2")
    );
    assert!(
        !r.spec.images.contains_key("proxy"),
        "only the named containers travel"
    );
    assert_eq!(r.spec.entered, "staging");
    let name = r.metadata.name.clone().unwrap_or_default();
    assert_eq!(w.phase(&name, "staging"), StagePhase::Verified);
    // No gates: production gets only the image of `web`, pinned.
    assert!(d.actions.iter().any(|a| matches!(a,
        PipelineAction::SetImages { stage, images }
            if stage == "production" && images.len() == 1 && images["web"] == pinned)));
    assert_eq!(w.image("production"), pinned);
    assert_eq!(w.phase(&name, "production"), StagePhase::Promoting);
    w.step();
    assert_eq!(w.phase(&name, "production"), StagePhase::Progressing);
    w.healthy("production");
    w.step();
    assert_eq!(w.phase(&name, "production"), StagePhase::Verified);
    assert_eq!(w.verdict(&name), Some(Verdict::Good));
    let st = w.pipeline.status.clone().unwrap_or_default();
    assert_eq!(st.stages[1].last_good.as_deref(), Some(name.as_str()));
    assert_eq!(
        st.summary.as_deref(),
        Some("staging:Verified production:Verified")
    );
}

#[test]
fn an_image_pinned_by_digest_is_recorded_at_once() {
    let mut w = World::new(json!({}));
    w.ci_apply(&format!("shop/web@{}", digest(7)));
    let d = w.step();
    assert!(matches!(
        d.actions.first(),
        Some(PipelineAction::CreateRelease(_))
    ));
    assert_eq!(w.reasons(), ["ReleaseRecorded"]);
}

#[test]
fn verification_runs_per_attempt_and_its_failure_makes_the_release_bad() {
    let mut w = World::new(json!({"stages": [
        {"name": "staging", "rollout": {"name": "web", "namespace": "shop-staging"},
         "verification": {"templates": [{"templateName": "smoke"}]}},
        {"name": "production", "rollout": {"name": "web", "namespace": "shop-prod"}}]}));
    let r2 = w.release_n(2);
    assert_eq!(w.phase(&r2, "staging"), StagePhase::Verifying);
    let run = w.runs["staging"][0].clone();
    assert_eq!(run.name, format!("{r2}-staging-verify-1"));
    assert_eq!((run.release.as_str(), run.attempt), (r2.as_str(), 1));
    assert_eq!(w.writes_into("production"), 0, "not verified yet");
    w.set_run("staging", AnalysisPhase::Successful);
    w.step();
    assert_eq!(w.phase(&r2, "staging"), StagePhase::Verified);
    assert_eq!(w.writes_into("production"), 1);

    let r3 = w.release_n(3);
    assert_eq!(
        w.runs["staging"].len(),
        2,
        "its own run: never another release's"
    );
    w.set_run("staging", AnalysisPhase::Failed);
    w.step();
    assert_eq!(w.phase(&r3, "staging"), StagePhase::Failed);
    assert_eq!(w.verdict(&r3), Some(Verdict::Bad));
    let failure = w
        .release(&r3)
        .status
        .clone()
        .and_then(|s| s.failure)
        .expect("failure");
    assert_eq!(failure.stage, "staging");
    assert_eq!(failure.cause.as_str(), "VerificationFailed");
    w.settle();
    assert_eq!(
        w.image("production"),
        format!("shop/web@{}", digest(2)),
        "r3 never goes"
    );
}

#[test]
fn soak_blocks_with_the_time_left_and_a_degraded_upstream_restarts_the_clock() {
    let mut w = World::new(json!({"stages": [
        {"name": "staging", "rollout": {"name": "web", "namespace": "shop-staging"}},
        {"name": "production", "rollout": {"name": "web", "namespace": "shop-prod"},
         "soak": "30m"}]}));
    let r2 = w.release_n(2);
    assert_eq!(w.phase(&r2, "production"), StagePhase::Blocked);
    assert_eq!(w.message(&r2, "production"), "soak 30m left in staging");
    let d = w.last.clone();
    assert_eq!(
        d.requeue_after.map(|r| r.as_secs()),
        Some(1800),
        "woken when soaked"
    );
    w.advance(18 * 60);
    w.step();
    assert_eq!(w.message(&r2, "production"), "soak 12m left in staging");
    w.degraded("staging");
    w.step();
    assert_eq!(w.phase(&r2, "staging"), StagePhase::Progressing);
    w.healthy("staging");
    w.step();
    assert_eq!(
        w.message(&r2, "production"),
        "soak 30m left in staging",
        "clock restarted"
    );
    w.advance(30 * 60);
    w.step();
    assert_eq!(w.phase(&r2, "production"), StagePhase::Promoting);
}

#[test]
fn approvals_rejections_pause_and_manual_stages_are_gates_with_reasons() {
    let mut w = World::new(json!({"stages": [
        {"name": "staging", "rollout": {"name": "web", "namespace": "shop-staging"}},
        {"name": "production", "rollout": {"name": "web", "namespace": "shop-prod"},
         "approvals": 2}]}));
    let r2 = w.release_n(2);
    assert_eq!(gates(&w, &r2, "production"), [GateKind::Approvals]);
    assert_eq!(w.message(&r2, "production"), "needs 2 approvals (0 of 2)");
    w.approve(&r2, "production", "alice", Decision::Approve);
    w.approve(&r2, "staging", "bob", Decision::Approve);
    w.step();
    assert_eq!(w.message(&r2, "production"), "needs 1 approval (1 of 2)");
    w.approve(&r2, "production", "bob", Decision::Reject);
    w.step();
    assert_eq!(
        gates(&w, &r2, "production"),
        [GateKind::Rejected, GateKind::Approvals]
    );
    w.approve(&r2, "production", "bob", Decision::Approve);
    w.pipeline.spec.paused = true;
    w.step();
    assert_eq!(gates(&w, &r2, "production"), [GateKind::Paused]);
    assert_eq!(w.writes_into("production"), 0);
    w.pipeline.spec.paused = false;
    w.pipeline.spec.stages[1].auto_promote = Some(false);
    w.step();
    assert_eq!(gates(&w, &r2, "production"), [GateKind::Manual]);
    w.approve(&r2, "production", "carol", Decision::Promote);
    w.step();
    assert_eq!(w.phase(&r2, "production"), StagePhase::Promoting);
    assert_eq!(
        w.release(&r2).status.clone().unwrap_or_default().stages[1]
            .promoted_by
            .as_deref(),
        Some("a4")
    );
}

#[test]
fn a_failure_in_production_restores_the_last_good_release_and_holds_auto_promotion() {
    let mut w = World::new(json!({}));
    let r2 = w.release_n(2);
    w.healthy("production");
    w.step();
    assert_eq!(w.verdict(&r2), Some(Verdict::Good));
    let r3 = w.release_n(3);
    assert_eq!(w.phase(&r3, "production"), StagePhase::Promoting);
    w.step();
    w.abort("production", AbortReason::AlertFiring);
    let d = w.step();
    assert_eq!(w.verdict(&r3), Some(Verdict::Bad));
    assert_eq!(w.phase(&r3, "production"), StagePhase::RolledBack);
    let failure = w
        .release(&r3)
        .status
        .clone()
        .and_then(|s| s.failure)
        .expect("failure");
    assert!(
        failure.message.starts_with("AlertFiring"),
        "{}",
        failure.message
    );
    assert!(d.actions.iter().any(|a| matches!(a,
        PipelineAction::SetImages { stage, images }
            if stage == "production" && images["web"] == format!("shop/web@{}", digest(2)))));
    assert_eq!(w.image("production"), format!("shop/web@{}", digest(2)));
    let hold = w.pipeline.status.clone().unwrap_or_default().stages[1]
        .hold
        .clone();
    assert_eq!(
        hold.map(|h| (h.reason, h.release)),
        Some((HoldReason::Restored, r3.clone()))
    );
    w.step();
    assert_eq!(w.phase(&r2, "production"), StagePhase::Progressing);
    assert_eq!(
        w.verdict(&r2),
        Some(Verdict::Good),
        "stays Good while restored"
    );
    w.healthy("production");
    w.step();
    assert_eq!(
        w.phase(&r2, "production"),
        StagePhase::Verified,
        "r2 runs there again"
    );
    // r3 is never promoted again; r4 waits for a person.
    w.settle();
    assert_eq!(w.writes_into("production"), 3);
    let r4 = w.release_n(4);
    assert_eq!(gates(&w, &r4, "production"), [GateKind::Held]);
    w.approve(&r3, "production", "alice", Decision::Promote);
    w.step();
    assert_eq!(
        w.image("production"),
        format!("shop/web@{}", digest(2)),
        "Bad: ignored"
    );
    w.approve(&r4, "production", "alice", Decision::Promote);
    w.step();
    assert_eq!(w.image("production"), format!("shop/web@{}", digest(4)));
    let hold = w.pipeline.status.clone().unwrap_or_default().stages[1]
        .hold
        .clone();
    assert_eq!(
        hold, None,
        "the newest was promoted by a person: the hold is over"
    );
}

#[test]
fn a_newer_release_supersedes_one_waiting_on_gates() {
    let mut w = World::new(json!({"stages": [
        {"name": "staging", "rollout": {"name": "web", "namespace": "shop-staging"}},
        {"name": "production", "rollout": {"name": "web", "namespace": "shop-prod"},
         "soak": "10m"}]}));
    let r2 = w.release_n(2);
    assert_eq!(w.phase(&r2, "production"), StagePhase::Blocked);
    w.advance(60);
    let r3 = w.release_n(3);
    assert_eq!(w.phase(&r2, "production"), StagePhase::Superseded);
    assert_eq!(w.message(&r3, "production"), "soak 10m left in staging");
    w.advance(600);
    w.step();
    assert_eq!(w.image("production"), format!("shop/web@{}", digest(3)));
    assert_eq!(w.writes_into("production"), 1, "r2 never went");
}

#[test]
fn one_promotion_at_a_time_into_a_stage() {
    let mut w = World::new(json!({}));
    let r2 = w.release_n(2);
    w.step();
    assert_eq!(w.phase(&r2, "production"), StagePhase::Progressing);
    let r3 = w.release_n(3);
    assert_eq!(gates(&w, &r3, "production"), [GateKind::InFlight]);
    assert_eq!(
        w.message(&r3, "production"),
        format!("{r2} is being promoted there")
    );
    w.healthy("production");
    w.step();
    assert_eq!(w.phase(&r3, "production"), StagePhase::Promoting);
}

#[test]
fn an_unreachable_stage_blocks_promotion_and_changes_no_verdict() {
    let mut w = World::new(json!({}));
    w.unreachable.insert("production".into());
    let r2 = w.release_n(2);
    assert_eq!(gates(&w, &r2, "production"), [GateKind::Unreachable]);
    assert_eq!(w.verdict(&r2), Some(Verdict::Unknown));
    let st = w.pipeline.status.clone().unwrap_or_default();
    assert_eq!(st.stages[1].reachable, Some(false));
    assert_eq!(st.stages[1].problem.as_deref(), Some("connection refused"));
    assert_eq!(w.last.requeue_after.map(|r| r.as_secs()), Some(10));
    w.unreachable.clear();
    w.step();
    assert_eq!(w.phase(&r2, "production"), StagePhase::Promoting);
}

#[test]
fn a_manual_promotion_of_an_older_good_release_holds_until_the_newest_is_promoted() {
    let mut w = World::new(json!({}));
    let r2 = w.release_n(2);
    w.healthy("production");
    w.step();
    let r3 = w.release_n(3);
    w.healthy("production");
    w.step();
    assert_eq!(w.verdict(&r3), Some(Verdict::Good));
    w.approve(&r2, "production", "alice", Decision::Promote);
    w.step();
    assert_eq!(w.image("production"), format!("shop/web@{}", digest(2)));
    let hold = w.pipeline.status.clone().unwrap_or_default().stages[1]
        .hold
        .clone();
    assert_eq!(hold.map(|h| h.reason), Some(HoldReason::ManualPromotion));
    w.healthy("production");
    w.settle();
    assert_eq!(
        w.image("production"),
        format!("shop/web@{}", digest(2)),
        "held"
    );
    w.approve(&r3, "production", "alice", Decision::Promote);
    w.step();
    assert_eq!(w.image("production"), format!("shop/web@{}", digest(3)));
    assert_eq!(
        w.pipeline.status.clone().unwrap_or_default().stages[1].hold,
        None
    );
}

#[test]
fn an_invalid_pipeline_names_every_field_and_moves_nothing() {
    let mut w = World::new(json!({"stages": [
        {"name": "staging", "rollout": {"name": "web", "namespace": "shop-staging"},
         "soak": "5m"},
        {"name": "staging", "rollout": {"name": "web", "namespace": "shop-prod"},
         "after": ["qa"], "soak": "soon", "approvals": -1}]}));
    w.ci_apply(&format!("shop/web@{}", digest(1)));
    let d = w.step();
    assert!(d.actions.is_empty(), "{:?}", d.actions);
    let message = d.status.message.unwrap_or_default();
    for field in [
        "spec.stages[0].soak",
        "spec.stages[1].name",
        "spec.stages[1].after[0]",
        "spec.stages[1].soak",
        "spec.stages[1].approvals",
    ] {
        assert!(message.contains(field), "{field}: {message}");
    }
}

#[test]
fn a_container_missing_in_the_target_is_an_error_in_status() {
    let mut w = World::new(json!({}));
    if let Some(spec) = w
        .rollouts
        .get_mut("production")
        .and_then(|r| r.spec.template.as_mut())
        .and_then(|t| t.spec.as_mut())
    {
        spec.containers.retain(|c| c.name != "web");
    }
    let r2 = w.release_n(2);
    assert_eq!(gates(&w, &r2, "production"), [GateKind::MissingContainer]);
    assert_eq!(
        w.message(&r2, "production"),
        "the stage's Rollout has no container web"
    );
    let st = w.pipeline.status.clone().unwrap_or_default();
    assert!(
        st.stages[1]
            .problem
            .as_deref()
            .is_some_and(|p| p.contains("shop-prod/web has no container web")),
        "{:?}",
        st.stages[1].problem
    );
    assert_eq!(w.writes_into("production"), 0);
}

#[test]
fn outside_its_promotion_windows_a_stage_waits_for_the_next_opening() {
    let mut w = World::new(json!({"stages": [
        {"name": "staging", "rollout": {"name": "web", "namespace": "shop-staging"}},
        {"name": "production", "rollout": {"name": "web", "namespace": "shop-prod"},
         "windows": [{"kind": "Allow", "schedule": "0 10 * * 1-5", "duration": "1h"},
                     {"kind": "Deny", "schedule": "30 10 * * 1", "duration": "1h",
                      "timeZone": "Europe/Paris"}]}]}));
    // Monday 2026-11-23 08:00 UTC: the Allow window opens at 10:00 UTC, but the Deny window
    // (10:30-11:30 in Paris = 09:30-10:30 UTC) holds it shut until 10:30 UTC.
    let r2 = w.release_n(2);
    assert_eq!(gates(&w, &r2, "production"), [GateKind::Window]);
    assert_eq!(
        w.message(&r2, "production"),
        "window opens 2026-11-23T10:30:00Z (2h30m from now)"
    );
    let wake = w.last.requeue_after.map(|d| d.as_secs());
    assert_eq!(wake, Some(9000), "woken when it opens");
    w.advance(8990);
    w.step();
    assert_eq!(w.phase(&r2, "production"), StagePhase::Blocked);
    w.advance(10);
    w.step();
    assert_eq!(w.phase(&r2, "production"), StagePhase::Promoting);
}

#[test]
fn a_deny_window_beats_an_allow_window_and_a_manual_promotion_ignores_both() {
    let mut w = World::new(json!({"stages": [
        {"name": "staging", "rollout": {"name": "web", "namespace": "shop-staging"}},
        {"name": "production", "rollout": {"name": "web", "namespace": "shop-prod"},
         "windows": [{"kind": "Allow", "schedule": "0 8 * * *", "duration": "8h"},
                     {"kind": "Deny", "schedule": "0 9 * * 1", "duration": "2h",
                      "timeZone": "Europe/Paris"}]}]}));
    // 08:00 UTC is 09:00 in Paris on a Monday: the freeze holds until 10:00 UTC.
    let r2 = w.release_n(2);
    assert_eq!(
        w.message(&r2, "production"),
        "window opens 2026-11-23T10:00:00Z (2h from now)"
    );
    w.approve(&r2, "production", "alice", Decision::Promote);
    w.step();
    assert_eq!(w.phase(&r2, "production"), StagePhase::Promoting);
}

#[test]
fn a_bad_window_is_an_invalid_spec_naming_its_field() {
    let mut w = World::new(json!({"stages": [
        {"name": "staging", "rollout": {"name": "web", "namespace": "shop-staging"}},
        {"name": "production", "rollout": {"name": "web", "namespace": "shop-prod"},
         "windows": [{"kind": "Maybe", "schedule": "0 9 * *", "duration": "0s",
                      "timeZone": "Mars/Olympus"}]}]}));
    let d = w.step();
    let message = d.status.message.unwrap_or_default();
    for field in ["kind", "schedule", "duration", "timeZone"] {
        assert!(
            message.contains(&format!("spec.stages[1].windows[0].{field}")),
            "{field}: {message}"
        );
    }
}

#[test]
fn a_stage_another_pipeline_drives_is_never_written() {
    let mut w = World::new(json!({}));
    w.claims.insert("production".into(), "shop/web-eu".into());
    let r2 = w.release_n(2);
    assert_eq!(gates(&w, &r2, "production"), [GateKind::Claimed]);
    assert_eq!(
        w.message(&r2, "production"),
        "pipeline shop/web-eu drives this Rollout (it was there first)"
    );
    w.approve(&r2, "production", "alice", Decision::Promote);
    w.settle();
    assert_eq!(w.writes_into("production"), 0, "not even by hand");
    let st = w.pipeline.status.clone().unwrap_or_default();
    assert!(
        st.stages[1]
            .problem
            .as_deref()
            .is_some_and(|p| p.contains("shop/web-eu"))
    );
}

#[test]
fn a_restored_release_that_fails_too_is_not_rolled_back_again() {
    let mut w = World::new(json!({}));
    let r2 = w.release_n(2);
    w.healthy("production");
    w.step();
    let r3 = w.release_n(3);
    w.healthy("production");
    w.step();
    let r4 = w.release_n(4);
    w.step();
    w.abort("production", AbortReason::AnalysisFailed);
    w.step();
    assert_eq!(w.verdict(&r4), Some(Verdict::Bad));
    assert_eq!(
        w.image("production"),
        format!("shop/web@{}", digest(3)),
        "r3 restored"
    );
    // The restored release fails as well: Bad, and no second rollback (to r2).
    w.step();
    w.abort("production", AbortReason::AlertFiring);
    w.step();
    assert_eq!(w.verdict(&r3), Some(Verdict::Bad));
    assert_eq!(w.image("production"), format!("shop/web@{}", digest(3)));
    assert_eq!(w.verdict(&r2), Some(Verdict::Good));
}

/// A stage's Rollout paused (`spec.paused`) once its release is deployed reports phase Paused,
/// as Argo Rollouts does, with the current template stable: the release is deployed there.
#[test]
fn a_stage_paused_with_its_release_stable_counts_as_deployed() {
    let mut w = World::new(json!({}));
    let name = w.release_n(2);
    w.step();
    assert_eq!(w.phase(&name, "production"), StagePhase::Progressing);
    w.healthy("production");
    if let Some(s) = w
        .rollouts
        .get_mut("production")
        .and_then(|r| r.status.as_mut())
    {
        s.phase = Some(rollgate_api::RolloutPhase::Paused);
    }
    w.step();
    assert_eq!(w.phase(&name, "production"), StagePhase::Verified);
    assert_eq!(w.verdict(&name), Some(Verdict::Good));
}
