//! Canary steps, one kind at a time: `setWeight`, `pause` (timed and until promoted),
//! `analysis` (every outcome, and skipping it), `setCanaryScale`, background analysis and
//! `spec.paused`.
//!
//! Every `World::step` also checks the route invariant, consistency and idempotence (see
//! `support`).

use crate::support;

use rollgate_api::labels::{ANALYSIS_KIND, POD_TEMPLATE_HASH, ROLLOUT_NAME, STEP_INDEX};
use rollgate_api::{AnalysisPhase, RolloutPhase};
use rollgate_engine::{Action, AnalysisKind};
use serde_json::{Value, json};
use support::{
    CANARY_SVC, STABLE_SVC, World, analysis, reasons, requeue, route_routing, run_name,
    step_run_name,
};

/// A deployed canary world (app:1) releasing app:2 with `canary` as strategy; nothing stepped
/// yet. Returns the world, the stable hash and the canary hash.
fn releasing(canary: Value) -> (World, String, String) {
    let (mut w, v1) = World::canary_deployed(json!({}), canary);
    let v2 = w.set_image("app:2");
    (w, v1, v2)
}

fn pause_reasons(w: &World) -> Vec<String> {
    w.status()
        .pause_conditions
        .iter()
        .map(|p| p.reason.to_string())
        .collect()
}

// ----- setWeight -----

#[test]
fn set_weight_steps_move_pods_by_ratio_and_report_each_step() {
    let (mut w, v1, v2) = releasing(json!({
        "steps": [{"setWeight": 20}, {"setWeight": 50}, {"setWeight": 80}],
        "scaleDownDelaySeconds": 0
    }));
    let d = w.step();
    assert_eq!(w.size(&v2), 2, "20% of 10");
    assert_eq!(w.size(&v1), 8);
    assert_eq!(w.step_index(), 0);
    assert_eq!(w.phase(), Some(RolloutPhase::Progressing));
    assert_eq!(
        w.message(),
        format!("Step 1/3 setWeight 20: canary ReplicaSet web-{v2} 0/2 pods available, stable 8/8")
    );
    assert_eq!(w.canary_weights(), (20, 0), "no canary pod is ready yet");
    assert_eq!(reasons(&d)[0], "RolloutUpdated");
    assert_eq!(w.selects(CANARY_SVC), Some(v2.clone()));
    assert_eq!(w.selects(STABLE_SVC), Some(v1.clone()));
    assert_eq!(d.requeue_after, requeue(600), "progress deadline");

    w.make_all_ready();
    let d = w.step();
    assert_eq!(w.step_index(), 1);
    assert!(
        reasons(&d).contains(&"RolloutStepCompleted"),
        "{:?}",
        d.events
    );
    assert_eq!(
        w.notes("RolloutStepCompleted"),
        ["Step 1/3 done: now at step 2"]
    );
    w.run_until_settled();
    assert_eq!(w.status().stable_rs, Some(v2.clone()), "{}", w.message());
    assert_eq!(
        w.notes("RolloutStepCompleted"),
        [
            "Step 1/3 done: now at step 2",
            "Step 2/3 done: now at step 3"
        ]
    );
    assert_eq!((w.size(&v2), w.size(&v1)), (10, 0));
    assert_eq!(w.phase(), Some(RolloutPhase::Healthy));
    assert_eq!(w.canary_weights(), (100, 100));
    assert_eq!(w.step_index(), 3);
    assert_eq!(w.selects(STABLE_SVC), Some(v2.clone()));
    assert_eq!(w.selects(CANARY_SVC), Some(v2));
    assert_eq!(
        w.notes("RolloutCompleted").len(),
        2,
        "first deploy and this one"
    );
}

#[test]
fn every_set_weight_is_reached_with_ready_pods_before_the_next_one() {
    let (mut w, v1, v2) = releasing(json!({
        "steps": [{"setWeight": 20}, {"pause": {}}, {"setWeight": 50}, {"pause": {}},
                  {"setWeight": 80}, {"pause": {}}],
        "scaleDownDelaySeconds": 0
    }));
    for (index, canary, stable) in [(1, 2, 8), (3, 5, 5), (5, 8, 2)] {
        w.run_until_settled();
        assert_eq!(w.step_index(), index, "{}", w.message());
        assert_eq!((w.size(&v2), w.size(&v1)), (canary, stable));
        assert_eq!((w.ready_of(&v2), w.ready_of(&v1)), (canary, stable));
        assert_eq!(w.canary_weights(), (canary * 10, canary * 10));
        w.promote();
    }
    w.run_until_settled();
    assert_eq!(w.status().stable_rs, Some(v2));
}

// ----- pause -----

#[test]
fn timed_pauses_accept_seconds_and_duration_strings() {
    for (duration, secs) in [
        (json!("30s"), 30),
        (json!("1m"), 60),
        (json!(45), 45),
        (json!("90"), 90),
        (json!("1h30m"), 5400),
    ] {
        let (mut w, _, v2) = releasing(json!({
            "steps": [{"setWeight": 20}, {"pause": {"duration": duration}}, {"setWeight": 40}]
        }));
        let d = w.run_until_settled();
        assert_eq!(w.step_index(), 1, "{duration}");
        assert_eq!(w.phase(), Some(RolloutPhase::Paused), "{duration}");
        let at = w.at(secs);
        assert_eq!(
            w.message(),
            format!(
                "Paused at step 2/3 for {secs}s: continuing at {at} (`rollgate promote web` \
                 continues now)"
            )
        );
        assert_eq!(d.requeue_after, requeue(secs.unsigned_abs()), "{duration}");
        assert_eq!(pause_reasons(&w), ["CanaryPauseStep"]);
        assert_eq!(w.status().controller_pause, Some(true));
        assert_eq!(w.cond("Paused"), ("True".into(), "RolloutPaused".into()));
        assert_eq!(
            w.notes("RolloutPaused"),
            ["Rollout paused (CanaryPauseStep)"]
        );

        // One second early: still paused, and the timer is one second away.
        w.advance(secs - 1);
        let d = w.step();
        assert!(d.actions.is_empty() && d.events.is_empty(), "{duration}");
        assert_eq!(w.step_index(), 1);
        assert_eq!(d.requeue_after, requeue(1));

        // On time: the next step starts.
        w.advance(1);
        let d = w.step();
        assert_eq!(w.step_index(), 2, "{duration}");
        assert!(reasons(&d).contains(&"RolloutStepCompleted"));
        assert!(w.status().pause_conditions.is_empty());
        assert_eq!(w.status().controller_pause, None);
        assert_eq!(w.size(&v2), 4, "setWeight 40");
        w.run_until_settled();
        assert_eq!(w.status().stable_rs, Some(v2), "{duration}");
    }
}

#[test]
fn a_timed_pause_started_while_reconciling_late_still_counts_from_its_start() {
    let (mut w, _, _) = releasing(json!({
        "steps": [{"setWeight": 20}, {"pause": {"duration": "30s"}}, {"setWeight": 40}]
    }));
    w.run_until_settled();
    let start = w.status().pause_conditions[0].start_time.0;
    assert_eq!(start, w.now);
    // The controller comes back much later: the pause is over at once.
    w.advance(3600);
    w.step();
    assert_eq!(w.step_index(), 2);
}

#[test]
fn a_pause_without_duration_waits_until_promoted() {
    let (mut w, _, v2) = releasing(json!({
        "steps": [{"setWeight": 20}, {"pause": {}}, {"setWeight": 40}]
    }));
    let d = w.run_until_settled();
    assert_eq!(w.step_index(), 1);
    assert_eq!(w.phase(), Some(RolloutPhase::Paused));
    assert_eq!(
        w.message(),
        "Paused at step 2/3 until promoted: `rollgate promote web` to continue, \
         `rollgate abort web` to go back to stable"
    );
    assert_eq!(d.requeue_after, None, "no timer");
    w.advance(86_400);
    let d = w.step();
    assert!(d.actions.is_empty() && d.events.is_empty());
    assert_eq!(w.step_index(), 1, "a day later, still paused");

    w.promote();
    let d = w.step();
    assert_eq!(
        reasons(&d)[..2],
        ["RolloutPromoted", "RolloutStepCompleted"],
        "{:?}",
        d.events
    );
    assert_eq!(w.notes("RolloutPromoted"), ["Pause at step 2/3 promoted"]);
    assert_eq!(w.step_index(), 2);
    assert_eq!(w.status().controller_pause, None);
    assert_eq!(w.size(&v2), 4);
    w.run_until_settled();
    assert_eq!(w.status().stable_rs, Some(v2));
}

#[test]
fn promoting_a_timed_pause_continues_before_its_time() {
    let (mut w, _, _) = releasing(json!({
        "steps": [{"setWeight": 20}, {"pause": {"duration": "1h"}}, {"setWeight": 40}]
    }));
    w.run_until_settled();
    assert_eq!(w.step_index(), 1);
    w.advance(10);
    w.promote();
    w.step();
    assert_eq!(w.step_index(), 2);
    assert_eq!(w.notes("RolloutPromoted"), ["Pause at step 2/3 promoted"]);
}

#[test]
fn consecutive_pauses_each_wait() {
    let (mut w, _, v2) = releasing(json!({
        "steps": [{"setWeight": 20}, {"pause": {"duration": 10}}, {"pause": {}}, {"pause": {"duration": 10}}]
    }));
    w.run_until_settled();
    assert_eq!(w.step_index(), 1);
    w.advance(10);
    w.run_until_settled();
    assert_eq!(w.step_index(), 2, "the second pause waits for a promote");
    assert_eq!(w.phase(), Some(RolloutPhase::Paused));
    w.promote();
    w.run_until_settled();
    assert_eq!(w.step_index(), 3, "the third pause starts its own timer");
    let start = w.status().pause_conditions[0].start_time.0;
    assert_eq!(start, w.now);
    w.advance(10);
    w.run_until_settled();
    assert_eq!(w.status().stable_rs, Some(v2));
}

// ----- analysis -----

fn analysis_release() -> (World, String, String) {
    let (mut w, v1, v2) = releasing(json!({
        "steps": [{"setWeight": 20}, {"analysis": analysis()}, {"setWeight": 50}, {"pause": {}}]
    }));
    w.run_until_settled();
    (w, v1, v2)
}

#[test]
fn an_analysis_step_creates_a_labelled_run_and_waits_for_it() {
    let (mut w, _, v2) = analysis_release();
    assert_eq!(w.step_index(), 1);
    let name = step_run_name(&v2, 1, 1);
    assert_eq!(w.run_names(), std::slice::from_ref(&name));
    let runs = w.created_runs();
    assert_eq!(runs.len(), 1);
    let labels = runs[0].metadata.labels.clone().expect("labels");
    assert_eq!(labels.get(ANALYSIS_KIND).map(String::as_str), Some("step"));
    assert_eq!(labels.get(STEP_INDEX).map(String::as_str), Some("1"));
    assert_eq!(labels.get(POD_TEMPLATE_HASH), Some(&v2));
    assert_eq!(labels.get(ROLLOUT_NAME).map(String::as_str), Some("web"));
    assert_eq!(
        w.notes("AnalysisRunCreated"),
        [format!("Started step-1 analysis {name}")]
    );
    let run = w.run(&name);
    assert_eq!((run.kind, run.step), (AnalysisKind::Step, Some(1)));
    assert_eq!(w.phase(), Some(RolloutPhase::Progressing));
    assert_eq!(
        w.message(),
        format!("Waiting for step 2/4 analysis {name} (Pending)")
    );
    let slot = w
        .status()
        .canary
        .and_then(|c| c.current_step_analysis_run_status)
        .expect("run in status");
    assert_eq!(
        (slot.name.as_str(), slot.status.as_str()),
        (name.as_str(), "Pending")
    );

    w.set_run_phase(AnalysisKind::Step, AnalysisPhase::Running);
    let d = w.step();
    assert!(d.actions.is_empty());
    assert_eq!(
        w.message(),
        format!("Waiting for step 2/4 analysis {name} (Running)")
    );
    w.advance(3600);
    w.step();
    assert_eq!(
        w.step_index(),
        1,
        "a running analysis has no deadline of its own"
    );
    assert_eq!(w.size(&v2), 2, "the canary keeps its weight meanwhile");
}

/// The status write that named a step's run was lost (the controller crashed, or the answer
/// never came): the run finished meanwhile. The next reconcile takes up that finished run of
/// this release attempt instead of measuring the step again.
#[test]
fn a_finished_run_whose_status_write_was_lost_is_taken_up_not_measured_again() {
    for (phase, index) in [(AnalysisPhase::Successful, 3), (AnalysisPhase::Failed, 1)] {
        let (mut w, _, v2) = releasing(json!({
            "steps": [{"setWeight": 20}, {"analysis": analysis()}, {"setWeight": 50}, {"pause": {}}]
        }));
        // Up to the reconcile that creates the step's run, whose status write is then lost.
        while w.run_names().is_empty() {
            let before = w.rollout.status.clone();
            let d = w.decide();
            for a in &d.actions {
                w.apply(a);
            }
            if w.run_names().is_empty() {
                w.rollout.status = Some(d.status);
                w.make_all_ready();
            } else {
                w.rollout.status = before;
            }
        }
        let name = step_run_name(&v2, 1, 1);
        assert_eq!(w.run_names(), std::slice::from_ref(&name));
        w.set_run_phase(AnalysisKind::Step, phase);
        w.run_until_settled();
        assert_eq!(
            w.run_names(),
            std::slice::from_ref(&name),
            "{phase:?}: measured again"
        );
        assert_eq!(w.step_index(), index, "{phase:?}");
        if phase == AnalysisPhase::Failed {
            assert_eq!(w.phase(), Some(RolloutPhase::Degraded));
        }
    }
}

/// A finished run of an earlier attempt (before a retry) is never taken for this attempt's.
#[test]
fn a_retry_measures_again_even_without_a_slot() {
    let (mut w, _, v2) = analysis_release();
    w.set_run_phase(AnalysisKind::Step, AnalysisPhase::Failed);
    w.run_until_settled();
    assert_eq!(w.phase(), Some(RolloutPhase::Degraded));
    w.retry();
    w.run_until_settled();
    assert_eq!(
        w.run_names(),
        [step_run_name(&v2, 1, 1), step_run_name(&v2, 1, 2)],
        "the retried release measures its analysis step again"
    );
    assert_eq!(w.step_index(), 1);
}

#[test]
fn a_successful_analysis_step_advances() {
    let (mut w, _, v2) = analysis_release();
    w.set_run_phase(AnalysisKind::Step, AnalysisPhase::Successful);
    let d = w.step();
    assert_eq!(w.step_index(), 2);
    assert!(reasons(&d).contains(&"RolloutStepCompleted"));
    assert_eq!(
        w.status()
            .canary
            .and_then(|c| c.current_step_analysis_run_status),
        None,
        "the finished step's run leaves the status"
    );
    assert_eq!(w.size(&v2), 5);
    w.run_until_settled();
    assert_eq!(w.step_index(), 3);
    assert_eq!(w.run_names().len(), 1, "no second run");
    assert!(
        w.terminated_runs().is_empty(),
        "a finished run is not terminated"
    );
}

#[test]
fn a_failed_analysis_step_aborts() {
    // An Error run pauses by default (tests/analysis_errors.rs); only Failed aborts here.
    {
        let phase = AnalysisPhase::Failed;
        let (mut w, v1, v2) = analysis_release();
        let name = w.set_run(AnalysisKind::Step, phase, Some("error rate 0.2 > 0.05"));
        let d = w.step();
        assert_eq!(w.phase(), Some(RolloutPhase::Degraded), "{phase}");
        assert_eq!(w.status().abort, Some(true));
        assert!(w.status().aborted_at.is_some());
        let message = format!(
            "Aborted: step 2/4 analysis {name} {phase}: error rate 0.2 > 0.05; canary weight \
             back to 0, traffic on stable revision {v1}"
        );
        assert_eq!(
            w.message(),
            format!("{message} (waiting for the stable ReplicaSet to be fully available)"),
            "stable scales back up from 8"
        );
        assert!(
            d.events
                .iter()
                .any(|e| e.warning && e.reason == "RolloutAborted")
        );
        assert_eq!(
            w.cond("Progressing"),
            ("False".into(), "RolloutAborted".into())
        );
        assert_eq!((w.size(&v2), w.size(&v1)), (0, 10));
        assert_eq!(w.canary_weights(), (0, 0));
        w.run_until_settled();
        assert_eq!(w.phase(), Some(RolloutPhase::Degraded));
        assert_eq!(w.message(), message);
        assert_eq!(w.status().stable_rs, Some(v1));
        assert_eq!(w.run_names().len(), 1, "no new run while aborted");
        assert_eq!(w.notes("RolloutAborted").len(), 1, "reported once");
    }
}

#[test]
fn an_inconclusive_analysis_step_pauses_until_promoted() {
    let (mut w, _, v2) = analysis_release();
    let name = w.set_run(
        AnalysisKind::Step,
        AnalysisPhase::Inconclusive,
        Some("no data"),
    );
    let d = w.step();
    assert!(d.actions.is_empty(), "{:?}", d.actions);
    assert_eq!(w.phase(), Some(RolloutPhase::Paused));
    assert_eq!(
        w.message(),
        format!(
            "Paused: step 2/4 analysis {name} is inconclusive: no data: \
             `rollgate promote web` to continue, `rollgate abort web` to go back"
        )
    );
    assert_eq!(pause_reasons(&w), ["InconclusiveAnalysisRun"]);
    w.advance(3600);
    w.step();
    assert_eq!(w.step_index(), 1);

    w.promote();
    w.step();
    assert_eq!(w.step_index(), 2, "{}", w.message());
    assert!(w.status().pause_conditions.is_empty());
    assert_eq!(w.status().controller_pause, None);
    w.run_until_settled();
    assert_eq!(w.step_index(), 3);
    assert_eq!(w.size(&v2), 5);
}

#[test]
fn skipping_a_running_analysis_step_terminates_its_run() {
    // `rollgate promote` with nothing paused bumps status.currentStepIndex.
    let (mut w, _, v2) = analysis_release();
    let name = step_run_name(&v2, 1, 1);
    w.set_run_phase(AnalysisKind::Step, AnalysisPhase::Running);
    w.step();
    w.skip_step();
    let d = w.step();
    assert_eq!(w.step_index(), 2);
    assert!(
        d.actions
            .contains(&Action::TerminateAnalysisRun { name: name.clone() }),
        "{:?}",
        d.actions
    );
    assert!(w.run(&name).terminating);
    assert_eq!(
        w.status()
            .canary
            .and_then(|c| c.current_step_analysis_run_status),
        None
    );
    w.run_until_settled();
    assert_eq!(w.step_index(), 3);
    assert_eq!(w.size(&v2), 5);
    assert_eq!(w.run_names(), [name]);
}

#[test]
fn skipping_from_one_analysis_step_to_another_starts_the_next_run() {
    let (mut w, _, v2) = releasing(json!({
        "steps": [{"setWeight": 20}, {"analysis": analysis()}, {"analysis": analysis()}]
    }));
    w.run_until_settled();
    let first = step_run_name(&v2, 1, 1);
    assert_eq!(w.run_names(), std::slice::from_ref(&first));
    w.skip_step();
    let d = w.step();
    let second = step_run_name(&v2, 2, 1);
    assert_eq!(w.step_index(), 2);
    assert_eq!(w.run_names(), [first.clone(), second.clone()]);
    assert!(
        d.actions
            .contains(&Action::TerminateAnalysisRun { name: first })
    );
    assert_eq!(w.run(&second).step, Some(2));
    w.set_run_phase(AnalysisKind::Step, AnalysisPhase::Successful);
    w.run_until_settled();
    assert_eq!(w.status().stable_rs, Some(v2));
}

#[test]
fn a_retried_release_starts_a_fresh_run_of_the_same_step() {
    let (mut w, _, v2) = analysis_release();
    w.set_run_phase(AnalysisKind::Step, AnalysisPhase::Failed);
    w.run_until_settled();
    w.retry();
    w.run_until_settled();
    assert_eq!(w.step_index(), 1);
    assert_eq!(
        w.run_names(),
        [step_run_name(&v2, 1, 1), step_run_name(&v2, 1, 2)]
    );
    assert_eq!(
        w.message(),
        format!(
            "Waiting for step 2/4 analysis {} (Pending)",
            step_run_name(&v2, 1, 2)
        )
    );
}

// ----- setCanaryScale -----

#[test]
fn set_canary_scale_sizes_the_canary_apart_from_its_weight() {
    let (mut w, v1, v2) = releasing(json!({
        "trafficRouting": route_routing(),
        "steps": [
            {"setCanaryScale": {"replicas": 2}}, {"pause": {}},
            {"setWeight": 50}, {"pause": {}},
            {"setCanaryScale": {"weight": 80}}, {"pause": {}},
            {"setCanaryScale": {"matchTrafficWeight": true}}, {"pause": {}},
            {"setWeight": 70}, {"pause": {}},
        ]
    }));
    // (step index, canary pods, route weight)
    for (index, pods, weight) in [(1, 2, 0), (3, 2, 50), (5, 8, 50), (7, 5, 50), (9, 7, 70)] {
        w.run_until_settled();
        assert_eq!(w.step_index(), index, "{}", w.message());
        assert_eq!(w.size(&v2), pods, "step {index}");
        assert_eq!(w.route_weights(), (weight, 100 - weight), "step {index}");
        assert_eq!(w.canary_weights(), (weight, weight), "step {index}");
        assert_eq!(w.size(&v1), 10, "stable keeps every pod behind a router");
        w.promote();
    }
    w.run_until_settled();
    assert_eq!(w.status().stable_rs, Some(v2.clone()));
    assert_eq!(w.size(&v2), 10);
}

#[test]
fn set_canary_scale_replicas_may_exceed_the_weight_share_and_be_zero() {
    let (mut w, _, v2) = releasing(json!({
        "trafficRouting": route_routing(),
        "steps": [{"setWeight": 10}, {"setCanaryScale": {"replicas": 4}}, {"pause": {}},
                  {"setCanaryScale": {"replicas": 0}}, {"setWeight": 0}, {"pause": {}}]
    }));
    w.run_until_settled();
    assert_eq!(w.step_index(), 2);
    assert_eq!(w.size(&v2), 4);
    assert_eq!(w.route_weights(), (10, 90));
    w.promote();
    w.run_until_settled();
    assert_eq!(w.step_index(), 5, "{}", w.message());
    assert_eq!(w.size(&v2), 0);
    assert_eq!(w.route_weights(), (0, 100));
}

// ----- background analysis -----

fn background_release(starting_step: i32) -> (World, String, String) {
    let mut bg = analysis();
    bg["startingStep"] = json!(starting_step);
    releasing(json!({
        "analysis": bg,
        "steps": [{"setWeight": 20}, {"pause": {}}, {"setWeight": 40}, {"pause": {}},
                  {"setWeight": 60}, {"pause": {}}]
    }))
}

#[test]
fn background_analysis_starts_at_its_starting_step() {
    let (mut w, _, v2) = background_release(2);
    w.run_until_settled();
    assert_eq!(w.step_index(), 1);
    assert!(w.run_names().is_empty(), "not before step 2");
    w.promote();
    w.run_until_settled();
    assert_eq!(w.step_index(), 3);
    let name = run_name(&v2, AnalysisKind::Background, 1);
    assert_eq!(w.run_names(), std::slice::from_ref(&name));
    let labels = w.created_runs()[0].metadata.labels.clone().expect("labels");
    assert_eq!(
        labels.get(ANALYSIS_KIND).map(String::as_str),
        Some("background")
    );
    assert_eq!(labels.get(STEP_INDEX), None);
    assert_eq!(
        w.status()
            .canary
            .and_then(|c| c.current_background_analysis_run_status)
            .map(|s| s.name),
        Some(name)
    );
    assert_eq!(
        w.phase(),
        Some(RolloutPhase::Paused),
        "steps go on while it runs"
    );
}

#[test]
fn background_analysis_starting_at_a_step_reached_in_the_same_reconcile_is_started_at_once() {
    let (mut w, _, v2) = background_release(1);
    w.step();
    w.make_all_ready();
    // Step 0 completes and step 1 (a pause) is reached in this one reconcile: the background
    // run must start now, not on the next reconcile (which must change nothing).
    w.step();
    assert_eq!(w.step_index(), 1);
    assert_eq!(w.run_names(), [run_name(&v2, AnalysisKind::Background, 1)]);
}

#[test]
fn a_failed_background_analysis_aborts() {
    let (mut w, v1, v2) = background_release(0);
    w.run_until_settled();
    let name = run_name(&v2, AnalysisKind::Background, 1);
    assert_eq!(w.run_names(), std::slice::from_ref(&name));
    w.set_run(
        AnalysisKind::Background,
        AnalysisPhase::Failed,
        Some("p99 too high"),
    );
    w.step();
    assert_eq!(w.phase(), Some(RolloutPhase::Degraded));
    let message = format!(
        "Aborted: background analysis {name} Failed: p99 too high; canary weight back to 0, \
         traffic on stable revision {v1}"
    );
    assert_eq!(
        w.message(),
        format!("{message} (waiting for the stable ReplicaSet to be fully available)")
    );
    assert_eq!(w.status().abort, Some(true));
    w.run_until_settled();
    assert_eq!(w.message(), message);
    assert_eq!((w.size(&v2), w.size(&v1)), (0, 10));
    assert!(w.run(&name).phase == AnalysisPhase::Failed && !w.run(&name).terminating);
}

#[test]
fn an_inconclusive_background_analysis_pauses_until_promoted_then_a_fresh_run_watches() {
    let (mut w, _, v2) = background_release(0);
    w.run_until_settled();
    w.promote();
    // Step 3 (setWeight 40) is scaling when the background analysis turns inconclusive.
    w.step();
    assert_eq!(w.step_index(), 2);
    let first = w.set_run(
        AnalysisKind::Background,
        AnalysisPhase::Inconclusive,
        Some("no data"),
    );
    w.step();
    assert_eq!(w.phase(), Some(RolloutPhase::Paused));
    assert_eq!(pause_reasons(&w), ["InconclusiveAnalysisRun"]);
    assert_eq!(
        w.message(),
        format!(
            "Paused: background analysis {first} is inconclusive: no data: \
             `rollgate promote web` to continue, `rollgate abort web` to go back"
        )
    );
    w.make_all_ready();
    w.step();
    assert_eq!(w.step_index(), 2, "held while inconclusive");
    assert_eq!(w.phase(), Some(RolloutPhase::Paused));

    w.promote();
    w.step();
    let second = run_name(&v2, AnalysisKind::Background, 2);
    assert_eq!(
        w.run_names(),
        [first, second.clone()],
        "a fresh run watches the rest"
    );
    assert_eq!(w.step_index(), 3, "{}", w.message());
    assert_eq!(
        pause_reasons(&w),
        ["CanaryPauseStep"],
        "the next pause step still waits"
    );
    assert_eq!(
        w.status()
            .canary
            .and_then(|c| c.current_background_analysis_run_status)
            .map(|s| s.name),
        Some(second)
    );
    w.run_until_settled();
    assert_eq!(w.step_index(), 3);
    // The fresh run decides like the first.
    w.set_run_phase(AnalysisKind::Background, AnalysisPhase::Failed);
    w.step();
    assert_eq!(w.phase(), Some(RolloutPhase::Degraded));
}

#[test]
fn promoting_an_inconclusive_background_analysis_at_a_pause_step_promotes_both() {
    let (mut w, _, v2) = background_release(0);
    w.run_until_settled();
    assert_eq!(w.step_index(), 1);
    w.set_run_phase(AnalysisKind::Background, AnalysisPhase::Inconclusive);
    w.step();
    assert_eq!(
        pause_reasons(&w),
        ["CanaryPauseStep", "InconclusiveAnalysisRun"]
    );
    // `rollgate promote` clears both pause conditions: the pause step ends too.
    w.promote();
    w.run_until_settled();
    assert_eq!(w.step_index(), 3);
    assert_eq!(pause_reasons(&w), ["CanaryPauseStep"]);
    assert_eq!(w.run_names().len(), 2);
    assert_eq!(
        w.notes("RolloutPromoted"),
        ["Pause at step 2/6 promoted"],
        "{:?}",
        w.reasons()
    );
    let _ = v2;
}

#[test]
fn background_analysis_is_terminated_when_the_release_completes() {
    let (mut w, _, v2) = background_release(0);
    w.run_until_settled();
    let name = run_name(&v2, AnalysisKind::Background, 1);
    w.set_run_phase(AnalysisKind::Background, AnalysisPhase::Running);
    for _ in 0..3 {
        w.promote();
        w.run_until_settled();
    }
    assert_eq!(w.status().stable_rs, Some(v2));
    assert_eq!(w.terminated_runs(), std::slice::from_ref(&name));
    assert!(w.run(&name).terminating);
    assert_eq!(
        w.status()
            .canary
            .and_then(|c| c.current_background_analysis_run_status),
        None
    );
    assert_eq!(w.run_names().len(), 1);
}

#[test]
fn a_successful_background_analysis_lets_the_release_go_on() {
    let (mut w, _, v2) = background_release(0);
    w.run_until_settled();
    w.set_run_phase(AnalysisKind::Background, AnalysisPhase::Successful);
    for _ in 0..3 {
        w.promote();
        w.run_until_settled();
    }
    assert_eq!(w.status().stable_rs, Some(v2));
    assert_eq!(
        w.run_names().len(),
        1,
        "a finished background run is not restarted"
    );
}

// ----- spec.paused -----

#[test]
fn spec_paused_holds_the_current_step() {
    let (mut w, _, v2) = releasing(json!({
        "steps": [{"setWeight": 20}, {"pause": {"duration": 30}}, {"setWeight": 50}]
    }));
    w.run_until_settled();
    assert_eq!(w.step_index(), 1);
    w.edit_spec(|s| s.paused = Some(true));
    w.advance(60);
    let d = w.run_until_settled();
    assert_eq!(
        w.step_index(),
        1,
        "the elapsed pause does not end while spec.paused"
    );
    assert_eq!(w.phase(), Some(RolloutPhase::Paused));
    assert_eq!(
        w.message(),
        "Paused at step 2/3 (spec.paused is true): `rollgate resume web` to continue"
    );
    assert_eq!(d.requeue_after, None);
    assert_eq!(w.size(&v2), 2);

    w.edit_spec(|s| s.paused = None);
    w.step();
    assert_eq!(w.step_index(), 2, "resumed: the pause is over");
    w.run_until_settled();
    assert_eq!(w.status().stable_rs, Some(v2));
}

#[test]
fn spec_paused_before_a_set_weight_holds_it() {
    let (mut w, _, v2) = releasing(json!({
        "steps": [{"setWeight": 20}, {"pause": {}}, {"setWeight": 50}, {"pause": {}}]
    }));
    w.run_until_settled();
    w.edit_spec(|s| s.paused = Some(true));
    w.promote();
    w.run_until_settled();
    assert_eq!(w.step_index(), 1, "{}", w.message());
    assert_eq!(w.size(&v2), 2, "setWeight 50 not started");
    assert_eq!(w.phase(), Some(RolloutPhase::Paused));
    w.edit_spec(|s| s.paused = Some(false));
    w.run_until_settled();
    assert_eq!(w.step_index(), 3);
    assert_eq!(w.size(&v2), 5);
}

#[test]
fn a_run_restarted_by_a_retry_in_a_reconcile_that_aborts_is_not_created() {
    let mut bg = analysis();
    bg["startingStep"] = json!(0);
    let (mut w, _, v2) = releasing(json!({
        "analysis": bg,
        "steps": [{"setWeight": 20}, {"analysis": analysis()}]
    }));
    w.run_until_settled();
    assert_eq!(w.step_index(), 1);
    // The background analysis cannot measure: paused. The step analysis fails meanwhile.
    w.set_run_phase(AnalysisKind::Background, AnalysisPhase::Error);
    w.step();
    assert_eq!(w.phase(), Some(RolloutPhase::Paused));
    w.set_run_phase(AnalysisKind::Step, AnalysisPhase::Failed);
    w.step();
    // `rollgate retry` measures the background analysis again, but the failed step aborts the
    // release in the same reconcile: the new background run is not started at all (the next
    // reconcile, checked by `World::step`, would only terminate it).
    w.retry();
    let d = w.step();
    assert!(reasons(&d).contains(&"RolloutAborted"), "{:?}", d.events);
    assert!(
        !reasons(&d).contains(&"AnalysisRunCreated"),
        "{:?}",
        d.events
    );
    assert_eq!(
        w.run_names(),
        [
            run_name(&v2, AnalysisKind::Background, 1),
            step_run_name(&v2, 1, 1)
        ]
    );
    assert_eq!(w.phase(), Some(RolloutPhase::Degraded));
}

#[test]
fn a_completed_release_terminates_its_background_run() {
    let mut bg = analysis();
    bg["startingStep"] = json!(0);
    let (mut w, _, v2) = releasing(json!({
        "analysis": bg,
        "steps": [{"setWeight": 20}, {"pause": {"duration": "10s"}}, {"setWeight": 60}]
    }));
    w.step();
    let run = w
        .observed
        .analysis_runs
        .iter()
        .find(|r| r.kind == AnalysisKind::Background)
        .map(|r| r.name.clone())
        .expect("background run");
    w.set_run_phase(AnalysisKind::Background, AnalysisPhase::Running);
    for _ in 0..20 {
        w.make_all_ready();
        w.advance(11);
        w.step();
    }
    assert_eq!(w.status().stable_rs, Some(v2));
    assert!(w.run(&run).terminating, "the background run is terminated");
}
