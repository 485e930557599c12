//! Controlling a canary by hand in every phase of a release (setWeight scaling, a pause, an
//! analysis, after an abort, healthy): promote (clearing `status.pauseConditions`), skipping a
//! step (`status.currentStepIndex` + 1, what `rollgate promote` does when nothing is paused),
//! promote --full, abort, retry and undo (re-applying an older template: a fast rollback). Also
//! the progress deadline and invalid canary specs.
//!
//! Every `World::step` also checks the route invariant, consistency and idempotence (see
//! `support`).

use crate::support;

use rollgate_api::{AnalysisPhase, RolloutPhase};
use rollgate_engine::{Action, AnalysisKind, Event};
use serde_json::{Value, json};
use support::{
    Bounds, CANARY_SVC, ROUTE, STABLE_SVC, World, analysis, reasons, requeue, route_routing,
    step_run_name,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// setWeight 50 asked, canary pods not ready.
    Scaling,
    /// At the `pause {}` step.
    Paused,
    /// At the analysis step, its run Running.
    Analysis,
    /// Aborted at the pause step and settled.
    Aborted,
    /// Nothing in flight.
    Healthy,
}

use Phase::{Aborted, Analysis, Healthy, Paused, Scaling};

const PHASES: [Phase; 5] = [Scaling, Paused, Analysis, Aborted, Healthy];

/// 10 replicas, default maxSurge 25% (3) and maxUnavailable 25% (2).
const BOUNDS: Bounds = Bounds {
    min_available: 8,
    max_total: Some(13),
};

fn steps() -> Value {
    json!({"steps": [{"setWeight": 50}, {"pause": {}}, {"analysis": analysis()},
                     {"setWeight": 80}],
           "scaleDownDelaySeconds": 0})
}

/// The bounds of `w`: behind a router nothing bounds the pods asked for.
fn bounds(w: &World) -> Bounds {
    let routed = w
        .rollout
        .spec
        .strategy
        .canary
        .as_ref()
        .is_some_and(|c| c.traffic_routing.is_some());
    Bounds {
        max_total: if routed { None } else { BOUNDS.max_total },
        ..BOUNDS
    }
}

/// Brings the release of `image` (over the deployed world `w`) to `phase`; returns its hash.
fn reach(w: &mut World, image: &str, phase: Phase) -> String {
    let bounds = bounds(w);
    let h = w.hash_of(image);
    if phase == Healthy {
        return h;
    }
    w.set_image(image);
    w.step();
    if phase == Scaling {
        assert_eq!(w.step_index(), 0);
        return h;
    }
    w.run_bounded(bounds, 100);
    assert_eq!(w.step_index(), 1, "{}", w.message());
    match phase {
        Paused => {}
        Analysis => {
            w.promote();
            w.run_bounded(bounds, 100);
            assert_eq!(w.step_index(), 2);
            w.set_run_phase(AnalysisKind::Step, AnalysisPhase::Running);
            w.step();
        }
        Aborted => {
            w.abort();
            w.run_bounded(bounds, 100);
            assert_eq!(w.phase(), Some(RolloutPhase::Degraded));
        }
        Scaling | Healthy => unreachable!(),
    }
    h
}

/// A deployed world (app:1) with app:2's release in `phase`: `(world, v1, v2)`.
fn in_phase(phase: Phase) -> (World, String, String) {
    let (mut w, v1) = World::canary_deployed(json!({}), steps());
    let v2 = reach(&mut w, "app:2", phase);
    (w, v1, v2)
}

/// The world settles to app:2 being stable and healthy, within the bounds.
fn assert_completes(w: &mut World, v1: &str, v2: &str, phase: Phase) {
    w.run_bounded(BOUNDS, 100);
    assert_eq!(
        w.status().stable_rs.as_deref(),
        Some(v2),
        "{phase:?}: {}",
        w.message()
    );
    assert_eq!(w.phase(), Some(RolloutPhase::Healthy), "{phase:?}");
    assert_eq!((w.size(v2), w.size(v1)), (10, 0), "{phase:?}");
    assert_eq!(w.status().promote_full, None, "{phase:?}");
    assert_eq!(w.step_index(), 4, "{phase:?}");
}

/// Nothing happens: no action, no event, the same phase and step.
fn assert_no_effect(w: &mut World, phase: Phase) {
    let before = w.status();
    let d = w.step();
    assert!(d.actions.is_empty(), "{phase:?}: {:?}", d.actions);
    assert!(d.events.is_empty(), "{phase:?}: {:?}", d.events);
    let after = w.status();
    assert_eq!(after.phase, before.phase, "{phase:?}");
    assert_eq!(after.message, before.message, "{phase:?}");
    assert_eq!(
        after.current_step_index, before.current_step_index,
        "{phase:?}"
    );
    assert_eq!(
        after.abort,
        before.abort.filter(|a| *a),
        "{phase:?}: only a pending abort stays"
    );
}

// ----- promote (clear pauseConditions) -----

#[test]
fn promote_continues_only_what_is_paused() {
    for phase in PHASES {
        let (mut w, v1, v2) = in_phase(phase);
        let events = w.events.len();
        w.promote();
        match phase {
            Paused => {
                let d = w.step();
                assert_eq!(reasons(&d)[0], "RolloutPromoted");
                assert_eq!(w.step_index(), 2, "on to the analysis");
                assert_eq!(w.run_names(), [step_run_name(&v2, 2, 1)]);
            }
            Scaling | Analysis | Aborted | Healthy => {
                assert_no_effect(&mut w, phase);
                assert!(
                    !w.reasons()[events..].contains(&"RolloutPromoted"),
                    "{phase:?}"
                );
            }
        }
        match phase {
            Aborted => assert_eq!((w.size(&v2), w.size(&v1)), (0, 10)),
            Healthy => assert_eq!(w.phase(), Some(RolloutPhase::Healthy)),
            _ => {}
        }
    }
}

#[test]
fn promote_continues_an_inconclusive_analysis() {
    let (mut w, _, _) = in_phase(Analysis);
    w.set_run_phase(AnalysisKind::Step, AnalysisPhase::Inconclusive);
    w.step();
    assert_eq!(w.phase(), Some(RolloutPhase::Paused));
    w.promote();
    w.step();
    assert_eq!(w.step_index(), 3);
}

// ----- skipping a step (rollgate promote with nothing paused) -----

#[test]
fn skipping_the_current_step_moves_on_in_every_phase_in_flight() {
    for phase in [Scaling, Analysis] {
        let (mut w, v1, v2) = in_phase(phase);
        let from = w.step_index();
        w.skip_step();
        let d = w.step();
        match phase {
            Scaling => {
                // setWeight 50 skipped: the pause step holds (at the weight of the last
                // setWeight, which the canary keeps moving towards).
                assert_eq!(w.step_index(), 1);
                assert_eq!(w.phase(), Some(RolloutPhase::Paused));
                assert_eq!(w.canary_weights().0, 50);
            }
            Analysis => {
                let run = step_run_name(&v2, 2, 1);
                assert!(
                    d.actions
                        .contains(&Action::TerminateAnalysisRun { name: run.clone() }),
                    "{:?}",
                    d.actions
                );
                assert!(w.run(&run).terminating);
                assert_eq!(w.step_index(), 3);
                assert_eq!(w.canary_weights().0, 80);
            }
            _ => unreachable!(),
        }
        assert_eq!(w.step_index(), from + 1);
        w.promote();
        w.run_bounded(BOUNDS, 100);
        if phase == Scaling {
            // The analysis step still runs.
            w.set_run_phase(AnalysisKind::Step, AnalysisPhase::Successful);
        }
        assert_completes(&mut w, &v1, &v2, phase);
        assert_eq!(w.run_names().len(), 1, "{phase:?}");
    }
}

// ----- promote --full -----

#[test]
fn promote_full_completes_a_release_in_flight_without_steps_or_analysis() {
    for phase in [Scaling, Paused, Analysis] {
        let (mut w, v1, v2) = in_phase(phase);
        let runs = w.run_names();
        let completed_steps = w.notes("RolloutStepCompleted").len();
        let events = w.events.len();
        w.promote_full();
        let d = w.step();
        assert_eq!(w.step_index(), 4, "{phase:?}: straight past the last step");
        assert_eq!(
            w.status().promote_full,
            Some(true),
            "{phase:?}: kept until completion"
        );
        assert!(w.status().pause_conditions.is_empty(), "{phase:?}");
        if phase == Analysis {
            assert!(
                d.actions.contains(&Action::TerminateAnalysisRun {
                    name: step_run_name(&v2, 2, 1)
                }),
                "{:?}",
                d.actions
            );
        }
        assert_completes(&mut w, &v1, &v2, phase);
        assert_eq!(w.run_names(), runs, "{phase:?}: no new analysis");
        assert_eq!(
            w.notes("RolloutStepCompleted").len(),
            completed_steps,
            "{phase:?}: no step walked"
        );
        assert!(
            !w.reasons()[events..].contains(&"RolloutPaused"),
            "{phase:?}: no pause: {:?}",
            &w.events[events..]
        );
        assert_eq!(w.canary_weights(), (100, 100));
    }
}

#[test]
fn promote_full_after_an_abort_retries_with_full_promotion() {
    let (mut w, v1, v2) = in_phase(Aborted);
    w.promote_full();
    let d = w.step();
    assert_eq!(reasons(&d)[0], "RolloutRetry");
    assert_eq!(
        w.notes("RolloutRetry"),
        [format!(
            "Retrying the release of {v2} with full promotion (no steps, no analysis)"
        )]
    );
    assert_eq!(w.status().abort, None);
    assert_completes(&mut w, &v1, &v2, Aborted);
    assert!(
        w.run_names().is_empty(),
        "the analysis step was never reached"
    );
}

#[test]
fn promote_full_when_healthy_is_cleared_and_changes_nothing() {
    let (mut w, v1, _) = in_phase(Healthy);
    w.promote_full();
    let d = w.step();
    assert!(d.actions.is_empty() && d.events.is_empty());
    assert_eq!(w.status().promote_full, None);
    assert_eq!(w.phase(), Some(RolloutPhase::Healthy));
    assert_eq!(w.status().stable_rs, Some(v1));
}

// ----- abort -----

#[test]
fn abort_goes_back_to_stable_in_every_phase_in_flight() {
    for phase in [Scaling, Paused, Analysis] {
        let (mut w, v1, v2) = in_phase(phase);
        w.abort();
        let d = w.step();
        assert_eq!(
            d.events
                .iter()
                .filter(|e| e.reason == "RolloutAborted")
                .cloned()
                .collect::<Vec<_>>(),
            [Event {
                warning: true,
                reason: rollgate_api::EventReason::RolloutAborted,
                note: format!(
                    "Aborted by user (status.abort): canary weight back to 0, traffic on stable \
                     revision {v1}"
                )
            }],
            "{phase:?}"
        );
        assert_eq!(w.phase(), Some(RolloutPhase::Degraded), "{phase:?}");
        assert_eq!(w.status().abort, Some(true));
        assert_eq!(w.status().aborted_at.map(|t| t.0), Some(w.now));
        assert!(w.status().pause_conditions.is_empty(), "{phase:?}");
        assert_eq!(w.status().controller_pause, None);
        assert_eq!(w.canary_weights().0, 0);
        if phase == Analysis {
            assert!(w.run(&step_run_name(&v2, 2, 1)).terminating);
        }
        w.run_bounded(
            Bounds {
                max_total: None,
                ..BOUNDS
            },
            100,
        );
        assert_eq!((w.size(&v2), w.size(&v1)), (0, 10), "{phase:?}");
        assert_eq!(w.phase(), Some(RolloutPhase::Degraded));
        assert_eq!(w.status().stable_rs, Some(v1.clone()));
        assert_eq!(w.selects(STABLE_SVC), Some(v1.clone()));
        assert_eq!(w.canary_weights(), (0, 0));
        assert_eq!(
            w.cond("Progressing"),
            ("False".into(), "RolloutAborted".into())
        );
        assert_eq!(
            w.cond("Available"),
            ("True".into(), "AvailableReason".into())
        );
        // Time passes: nothing moves, nothing is reported again.
        w.advance(3600);
        assert_no_effect(&mut w, phase);
        assert_eq!(w.notes("RolloutAborted").len(), 1);
    }
}

#[test]
fn abort_after_an_abort_or_when_healthy_changes_nothing() {
    for phase in [Aborted, Healthy] {
        let (mut w, v1, _) = in_phase(phase);
        let events = w.events.len();
        w.abort();
        let d = w.step();
        assert!(
            d.actions.is_empty() && d.events.is_empty(),
            "{phase:?}: {d:?}"
        );
        assert_eq!(w.events.len(), events);
        assert_eq!(w.status().stable_rs, Some(v1.clone()));
        match phase {
            Aborted => assert_eq!(w.status().abort, Some(true)),
            _ => {
                assert_eq!(w.status().abort, None, "cleared: nothing to abort");
                assert_eq!(w.phase(), Some(RolloutPhase::Healthy));
            }
        }
    }
}

// ----- retry -----

#[test]
fn retry_restarts_an_aborted_release_from_the_first_step() {
    let (mut w, v1, v2) = in_phase(Aborted);
    w.retry();
    let d = w.step();
    assert_eq!(reasons(&d)[0], "RolloutRetry");
    assert_eq!(
        w.notes("RolloutRetry"),
        [format!("Retrying the release of {v2} from the first step")]
    );
    assert_eq!(w.step_index(), 0);
    assert_eq!(w.status().abort, None);
    assert_eq!(w.status().aborted_at, None);
    assert_eq!(w.phase(), Some(RolloutPhase::Progressing));
    assert_eq!(
        (w.size(&v2), w.size(&v1)),
        (5, 8),
        "scaling up again within maxSurge and maxUnavailable"
    );
    w.run_bounded(BOUNDS, 100);
    assert_eq!(w.step_index(), 1);
    assert_eq!(w.phase(), Some(RolloutPhase::Paused));
    assert_eq!((w.size(&v2), w.size(&v1)), (5, 5));
}

#[test]
fn retry_without_an_abort_changes_nothing() {
    for phase in [Scaling, Paused, Analysis, Healthy] {
        let (mut w, _, _) = in_phase(phase);
        w.retry();
        assert_no_effect(&mut w, phase);
        assert_eq!(w.status().abort, None, "{phase:?}: the request is cleared");
        assert!(!w.reasons().contains(&"RolloutRetry"));
    }
}

// ----- undo: a fast rollback to an older revision -----

/// app:1 deployed, app:2 released and stable (app:1's ReplicaSet kept at 0 pods), app:3's
/// release in `phase`: `(world, v1, v2, v3)`.
fn undo_world(phase: Phase, routed: bool) -> (World, String, String, String) {
    let mut canary = steps();
    if routed {
        canary["trafficRouting"] = route_routing();
    }
    let (mut w, v1) = World::canary_deployed(json!({}), canary);
    let v2 = w.set_image("app:2");
    w.step();
    w.promote_full();
    w.run_until_settled();
    assert_eq!(w.status().stable_rs, Some(v2.clone()));
    assert!(w.has_rs(&v1));
    assert_eq!(w.size(&v1), 0);
    let v3 = reach(&mut w, "app:3", phase);
    (w, v1, v2, v3)
}

#[test]
fn undo_to_an_older_revision_is_a_fast_rollback_in_every_phase() {
    for routed in [false, true] {
        for phase in PHASES {
            let case = format!("{phase:?}, routed {routed}");
            let (mut w, v1, v2, v3) = undo_world(phase, routed);
            let runs = w.run_names();
            let latest = w.status().current_revision.expect("revision");
            let events = w.events.len();
            w.set_image("app:1");
            let d = w.step();
            let r = reasons(&d);
            assert!(r.contains(&"SkipSteps"), "{case}: {r:?}");
            assert_eq!(
                r.contains(&"RolloutSuperseded"),
                phase != Healthy,
                "{case}: {r:?}"
            );
            assert!(!r.contains(&"RolloutUpdated"), "{case}");
            assert_eq!(
                w.status().promote_full,
                Some(true),
                "{case}: set by the engine"
            );
            assert_eq!(w.status().current_revision, Some(latest + 1), "{case}");
            assert_eq!(w.status().abort, None, "{case}");
            assert_eq!(w.step_index(), 4, "{case}: no steps");
            assert_eq!(
                w.notes("SkipSteps"),
                [format!(
                    "Template matches revision 1 ({v1}), whose ReplicaSet still exists: fast \
                     rollback as revision {}, without steps or analysis",
                    latest + 1
                )],
                "{case}"
            );
            if routed {
                assert_eq!(w.selects(CANARY_SVC), Some(v1.clone()), "{case}");
                assert_eq!(
                    w.route_weights(),
                    (0, 100),
                    "{case}: v1 has no ready pod yet"
                );
            }
            w.run_bounded(bounds(&w), 100);
            assert_eq!(
                w.status().stable_rs,
                Some(v1.clone()),
                "{case}: {}",
                w.message()
            );
            // An aborted canary behind a router waits for abortScaleDownDelaySeconds.
            w.advance(30);
            w.run_bounded(bounds(&w), 100);
            assert_eq!(w.phase(), Some(RolloutPhase::Healthy), "{case}");
            assert_eq!(
                (w.size(&v1), w.size(&v2), w.size(&v3)),
                (10, 0, 0),
                "{case}"
            );
            assert_eq!(w.status().promote_full, None, "{case}");
            assert_eq!(w.run_names(), runs, "{case}: no analysis");
            let after: Vec<_> = w.reasons()[events..].to_vec();
            assert!(
                !after.contains(&"RolloutStepCompleted") && !after.contains(&"RolloutPaused"),
                "{case}: no step walked: {after:?}"
            );
            assert_eq!(w.selects(STABLE_SVC), Some(v1.clone()));
            assert_eq!(w.route_weights(), (0, 100));
        }
    }
}

// ----- progress deadline -----

#[test]
fn a_crash_looping_canary_is_aborted_after_the_progress_deadline() {
    for (case, deadline, spec) in [
        ("default deadline", 600i64, json!({})),
        (
            "progressDeadlineSeconds",
            120,
            json!({"progressDeadlineSeconds": 120}),
        ),
    ] {
        let (mut w, v1) = World::canary_deployed(spec, steps());
        let v2 = w.crash("app:2");
        w.set_image("app:2");
        let d = w.step();
        assert_eq!(d.requeue_after, requeue(deadline.unsigned_abs()), "{case}");
        w.make_all_ready();
        w.advance(deadline - 1);
        let d = w.step();
        assert!(d.actions.is_empty(), "{case}");
        assert_eq!(w.phase(), Some(RolloutPhase::Progressing), "{case}");
        assert_eq!(d.requeue_after, requeue(1), "{case}");
        w.advance(1);
        let d = w.step();
        assert_eq!(w.phase(), Some(RolloutPhase::Degraded), "{case}");
        assert_eq!(w.status().abort, Some(true), "{case}");
        let msg = w.message();
        assert!(
            msg.starts_with(&format!(
                "Aborted: ProgressDeadlineExceeded: no progress for {deadline}s (Step 1/4 \
                 setWeight 50: canary ReplicaSet web-{v2} 0/5 pods available"
            )),
            "{case}: {msg}"
        );
        assert!(reasons(&d).contains(&"RolloutAborted"), "{case}");
        assert_eq!(
            w.size(&v2),
            0,
            "{case}: pods that never became ready go at once"
        );
        w.run_until_settled();
        assert_eq!((w.size(&v2), w.size(&v1)), (0, 10), "{case}");
        assert_eq!(w.phase(), Some(RolloutPhase::Degraded), "{case}");
    }
}

#[test]
fn progress_resets_the_deadline() {
    let (mut w, _) = World::canary_deployed(
        json!({}),
        json!({"steps": [{"setWeight": 50}, {"pause": {}}], "maxSurge": 5, "maxUnavailable": 0}),
    );
    let v2 = w.set_image("app:2");
    w.step();
    for ready in 1..5 {
        w.advance(500);
        w.set_ready(&v2, ready);
        let d = w.step();
        assert_eq!(
            w.phase(),
            Some(RolloutPhase::Progressing),
            "{}",
            w.message()
        );
        assert_eq!(d.requeue_after, requeue(600));
    }
    w.advance(599);
    w.step();
    assert_eq!(w.phase(), Some(RolloutPhase::Progressing));
}

#[test]
fn without_progress_deadline_abort_the_deadline_is_only_reported() {
    let (mut w, v1) = World::canary_deployed(json!({"progressDeadlineAbort": false}), steps());
    let v2 = w.crash("app:2");
    w.set_image("app:2");
    w.step();
    w.make_all_ready();
    w.step();
    w.advance(600);
    let d = w.step();
    assert_eq!(w.phase(), Some(RolloutPhase::Degraded));
    assert_eq!(w.status().abort, None, "not aborted");
    assert_eq!(
        w.cond("Progressing"),
        ("False".into(), "ProgressDeadlineExceeded".into())
    );
    assert!(
        w.message()
            .starts_with("ProgressDeadlineExceeded: Step 1/4 setWeight 50"),
        "{}",
        w.message()
    );
    assert!(
        d.events
            .iter()
            .any(|e| e.warning && e.reason == "ProgressDeadlineExceeded")
    );
    assert!(!reasons(&d).contains(&"RolloutAborted"));
    assert_eq!(w.size(&v2), 5, "the canary stays");
    assert_eq!(w.selects(CANARY_SVC), Some(v2.clone()));
    w.advance(3600);
    let d = w.step();
    assert!(d.events.is_empty(), "reported once: {:?}", d.events);
    // The pods come up after all: the release goes on.
    w.crashing.clear();
    w.run_until_settled();
    assert_eq!(w.step_index(), 1, "{}", w.message());
    assert_eq!(w.phase(), Some(RolloutPhase::Paused));
    assert_eq!((w.size(&v2), w.size(&v1)), (5, 5));
}

#[test]
fn a_crash_looping_canary_behind_a_router_never_gets_weight() {
    let mut canary = steps();
    canary["trafficRouting"] = route_routing();
    let (mut w, v1) = World::canary_deployed(json!({}), canary);
    let v2 = w.crash("app:2");
    w.set_image("app:2");
    w.step();
    w.make_all_ready();
    w.step();
    assert_eq!(w.route_weights(), (0, 100));
    w.advance(600);
    w.step();
    assert_eq!(w.phase(), Some(RolloutPhase::Degraded));
    assert!(
        w.message().contains("ProgressDeadlineExceeded"),
        "{}",
        w.message()
    );
    assert_eq!(w.route_weights(), (0, 100));
    assert_eq!(w.size(&v1), 10);
    w.advance(30);
    w.run_until_settled();
    assert_eq!(w.size(&v2), 0);
}

// ----- invalid specs -----

/// One invalid canary spec: the case, `spec` merged over the rollout's spec and `canary` over
/// its strategy (as [`World::canary`] does), and the exact text it is reported with.
type Invalid = (&'static str, Value, Value, String);

/// Every case's new canary rollout is invalid with exactly its text: Degraded, one warning
/// Event, no action, now and later. A failure names the case.
fn assert_invalid(cases: impl IntoIterator<Item = Invalid>) {
    for (case, spec, canary, text) in cases {
        assert_invalid_in(case, World::canary(spec, canary), &text);
    }
}

fn assert_invalid_in(case: &str, mut w: World, text: &str) {
    let d = w.step();
    assert!(d.actions.is_empty(), "{case}: {text}: {:?}", d.actions);
    assert_eq!(
        d.events,
        [Event {
            warning: true,
            reason: rollgate_api::EventReason::InvalidSpec,
            note: text.to_string()
        }],
        "{case}"
    );
    let s = w.status();
    assert_eq!(s.phase, Some(RolloutPhase::Degraded), "{case}: {text}");
    assert_eq!(s.message, Some(format!("InvalidSpec: {text}")), "{case}");
    assert_eq!(
        w.cond("InvalidSpec"),
        ("True".into(), "InvalidSpec".into()),
        "{case}"
    );
    assert_eq!(d.requeue_after, None, "{case}");
    assert!(w.observed.replica_sets.is_empty(), "{case}");
    w.advance(3600);
    let d = w.step();
    assert!(
        d.actions.is_empty() && d.events.is_empty(),
        "{case}: {text}"
    );
}

const F: &str = "spec.strategy.canary";

#[test]
fn a_step_with_two_members_is_invalid() {
    assert_invalid([
        (
            "two members",
            json!({}),
            json!({"steps": [{"setWeight": 20}, {"setWeight": 40, "pause": {}}]}),
            format!(
                "{F}.steps[1]: exactly one of setWeight, pause, analysis, setCanaryScale, \
                 experiment, setHeaderRoute or setMirrorRoute expected"
            ),
        ),
        (
            "no member",
            json!({}),
            json!({"steps": [{}]}),
            format!(
                "{F}.steps[0]: exactly one of setWeight, pause, analysis, setCanaryScale, \
                 experiment, setHeaderRoute or setMirrorRoute expected"
            ),
        ),
    ]);
}

#[test]
fn a_weight_above_100_is_invalid() {
    assert_invalid([
        (
            "above 100",
            json!({}),
            json!({"steps": [{"setWeight": 120}]}),
            format!("{F}.steps[0].setWeight: expected a percentage between 0 and 100, got 120"),
        ),
        (
            "negative",
            json!({}),
            json!({"steps": [{"setWeight": -5}]}),
            format!("{F}.steps[0].setWeight: expected a percentage between 0 and 100, got -5"),
        ),
    ]);
}

#[test]
fn an_unparsable_pause_duration_is_invalid() {
    assert_invalid([
        (
            "not a duration",
            json!({}),
            json!({"steps": [{"setWeight": 20}, {"pause": {"duration": "soon"}}]}),
            format!(
                "{F}.steps[1].pause.duration: expected seconds or a duration such as 30s, 5m or \
                 1h30m, got \"soon\""
            ),
        ),
        (
            "negative",
            json!({}),
            json!({"steps": [{"pause": {"duration": -3}}]}),
            format!("{F}.steps[0].pause.duration: must be >= 0, got -3"),
        ),
    ]);
}

#[test]
fn set_canary_scale_without_traffic_routing_is_invalid() {
    assert_invalid([
        (
            "without a router",
            json!({}),
            json!({"steps": [{"setCanaryScale": {"replicas": 2}}]}),
            format!(
                "{F}.steps[0].setCanaryScale: requires trafficRouting: without a router the \
                 canary's share of pods is its traffic weight"
            ),
        ),
        (
            "two members",
            json!({}),
            json!({"trafficRouting": route_routing(),
                   "steps": [{"setCanaryScale": {"replicas": 2, "weight": 20}}]}),
            format!(
                "{F}.steps[0].setCanaryScale: exactly one of replicas, weight or \
                 matchTrafficWeight: true expected"
            ),
        ),
    ]);
}

#[test]
fn traffic_routing_without_both_services_is_invalid() {
    let required = "required with trafficRouting: the route's backends are the canary and \
                    stable Services";
    assert_invalid([
        (
            "no canary Service",
            json!({}),
            json!({"canaryService": null, "trafficRouting": route_routing(), "steps": []}),
            format!("{F}.canaryService: {required}"),
        ),
        (
            "neither Service",
            json!({}),
            json!({"canaryService": null, "stableService": null,
                   "trafficRouting": route_routing(), "steps": []}),
            format!("{F}.canaryService: {required}; {F}.stableService: {required}"),
        ),
    ]);
}

#[test]
fn a_missing_http_route_is_invalid() {
    assert_invalid([
        (
            "unknown route",
            json!({}),
            json!({"trafficRouting": {"gatewayAPI": {"httpRoute": "other"}}}),
            format!(
                "{F}.trafficRouting.gatewayAPI.httpRoute: HTTPRoute shop/other \
                 (gateway.networking.k8s.io/v1) not found"
            ),
        ),
        (
            "route in another namespace",
            json!({}),
            json!({"trafficRouting": {"gatewayAPI": {"httpRoute": ROUTE, "namespace": "edge"}}}),
            format!(
                "{F}.trafficRouting.gatewayAPI.httpRoute: HTTPRoute edge/{ROUTE} \
                 (gateway.networking.k8s.io/v1) not found"
            ),
        ),
        (
            "no route name",
            json!({}),
            json!({"trafficRouting": {"gatewayAPI": {}}}),
            format!(
                "{F}.trafficRouting.gatewayAPI.httpRoute: required, expected the name of an \
                 HTTPRoute"
            ),
        ),
        (
            "no router",
            json!({}),
            json!({"trafficRouting": {}}),
            format!(
                "{F}.trafficRouting: expected gatewayAPI (the only router this rollgate version \
                 supports)"
            ),
        ),
    ]);
}

#[test]
fn a_route_without_backends_for_both_services_is_invalid() {
    let mut w = World::canary(json!({}), json!({"trafficRouting": route_routing()}));
    if let Some(r) = w.observed.route.as_mut() {
        r.rules = vec![
            vec![(STABLE_SVC.into(), Some(100))],
            vec![(CANARY_SVC.into(), Some(100))],
        ];
    }
    assert_invalid_in(
        "one backend per rule",
        w,
        &format!(
            "{F}.trafficRouting.gatewayAPI.httpRoute: HTTPRoute shop/{ROUTE} has no rule with \
             backendRefs to both \"{CANARY_SVC}\" and \"{STABLE_SVC}\""
        ),
    );
}

#[test]
fn a_starting_step_out_of_range_is_invalid() {
    assert_invalid(
        [("past the last step", 3), ("negative", -1)].map(|(case, start)| {
            let mut bg = analysis();
            bg["startingStep"] = json!(start);
            (
                case,
                json!({}),
                json!({"analysis": bg, "steps": [{"setWeight": 20}, {"pause": {}}]}),
                format!(
                    "{F}.analysis.startingStep: expected a step index between 0 and 2, got \
                     {start}"
                ),
            )
        }),
    );
}

#[test]
fn dynamic_stable_scale_without_routing_is_invalid() {
    assert_invalid([(
        "without a router",
        json!({}),
        json!({"dynamicStableScale": true}),
        format!(
            "{F}.dynamicStableScale: only meaningful with trafficRouting (without a router the \
             stable ReplicaSet is always scaled down as the canary's share of pods grows)"
        ),
    )]);
}

#[test]
fn unparsable_or_zero_surge_and_unavailability_are_invalid() {
    let zero = |replicas: i32| {
        format!(
            "{F}.maxUnavailable: maxSurge and maxUnavailable resolve to 0 pods each for \
             {replicas} replicas: at least one must allow a pod, or the release could never move"
        )
    };
    assert_invalid([
        (
            "maxSurge not a quantity",
            json!({}),
            json!({"maxSurge": "abc"}),
            format!(
                "{F}.maxSurge: expected a number of pods or a percentage between 0% and 100%, \
                 got \"abc\""
            ),
        ),
        (
            "maxUnavailable above 100%",
            json!({}),
            json!({"maxUnavailable": "150%"}),
            format!(
                "{F}.maxUnavailable: expected a number of pods or a percentage between 0% and \
                 100%, got \"150%\""
            ),
        ),
        (
            "negative maxSurge",
            json!({}),
            json!({"maxSurge": -1}),
            format!("{F}.maxSurge: must be >= 0, got -1"),
        ),
        (
            "both 0",
            json!({}),
            json!({"maxSurge": 0, "maxUnavailable": 0}),
            zero(10),
        ),
        // Percentages resolve against replicas: 20% of 4 rounds down to 0 unavailable pods.
        (
            "both 0 once resolved",
            json!({"replicas": 4}),
            json!({"maxSurge": "0%", "maxUnavailable": "20%"}),
            zero(4),
        ),
    ]);
}

#[test]
fn canary_and_stable_services_must_exist_and_differ() {
    assert_invalid([
        (
            "the same Service",
            json!({}),
            json!({"stableService": CANARY_SVC}),
            format!("{F}.canaryService: must differ from stableService"),
        ),
        (
            "unknown Service",
            json!({}),
            json!({"canaryService": "nope"}),
            format!("{F}.canaryService: Service \"nope\" not found in the rollout's namespace"),
        ),
    ]);
}

#[test]
fn an_invalid_edit_mid_canary_freezes_everything() {
    let (mut w, v1, v2) = in_phase(Paused);
    let before = w.observed.clone();
    w.edit_spec(|s| {
        if let Some(c) = s.strategy.canary.as_mut() {
            c.steps[2].set_weight = Some(120);
            c.steps[2].analysis = None;
        }
    });
    w.promote();
    let d = w.step();
    assert!(d.actions.is_empty(), "{:?}", d.actions);
    assert_eq!(reasons(&d), ["InvalidSpec"]);
    assert_eq!(
        w.message(),
        format!(
            "InvalidSpec: {F}.steps[2].setWeight: expected a percentage between 0 and 100, got 120"
        )
    );
    w.advance(3600);
    w.make_all_ready();
    let d = w.step();
    assert!(d.actions.is_empty() && d.events.is_empty());
    assert_eq!(w.observed.replica_sets, before.replica_sets);
    assert_eq!((w.size(&v2), w.size(&v1)), (5, 5));
    // Fixed: the release goes on where it was (the promote still counts).
    w.edit_spec(|s| {
        if let Some(c) = s.strategy.canary.as_mut() {
            c.steps[2].set_weight = Some(60);
        }
    });
    w.run_until_settled();
    assert!(!w.has_condition("InvalidSpec"));
    assert_eq!(w.status().stable_rs, Some(v2), "{}", w.message());
}
