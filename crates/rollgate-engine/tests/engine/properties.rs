//! Random operation sequences against the engine. `World::step` checks, after every reconcile,
//! the traffic invariant (the active Service never selects a ReplicaSet with fewer ready pods
//! than `spec.replicas` once a stable revision exists), consistency (status selectors match the
//! Services, no action targets a missing object, nothing is created twice) and idempotence (a
//! second reconcile of the result acts, reports and changes nothing). This file adds a few
//! whole-world checks on top.

use crate::support;

use proptest::prelude::*;
use rollgate_api::{AnalysisPhase, RolloutPhase};
use rollgate_engine::AnalysisKind;
use serde_json::json;
use support::World;

#[derive(Debug, Clone)]
enum Op {
    /// Release an image (the last one never becomes ready).
    Image(usize),
    /// Every pod of one image's ReplicaSet becomes ready.
    Ready(usize),
    /// One more pod of one image's ReplicaSet becomes ready.
    OnePod(usize),
    /// The cluster catches up everywhere.
    AllReady,
    Advance(i64),
    Promote,
    PromoteFull,
    Abort,
    Retry,
    /// Set the newest pre- (true) or post-promotion run's phase.
    Run(bool, usize),
    /// Set `spec.paused`.
    SpecPaused(bool),
    /// Just reconcile again.
    Nothing,
}

const IMAGES: [&str; 4] = ["app:1", "app:2", "app:3", "app:crash"];
const PHASES: [AnalysisPhase; 5] = [
    AnalysisPhase::Running,
    AnalysisPhase::Successful,
    AnalysisPhase::Failed,
    AnalysisPhase::Error,
    AnalysisPhase::Inconclusive,
];

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..IMAGES.len()).prop_map(Op::Image),
        3 => (0..IMAGES.len()).prop_map(Op::Ready),
        2 => (0..IMAGES.len()).prop_map(Op::OnePod),
        2 => Just(Op::AllReady),
        3 => prop_oneof![Just(1i64), Just(29), Just(31), Just(60), Just(700)].prop_map(Op::Advance),
        2 => Just(Op::Promote),
        1 => Just(Op::PromoteFull),
        1 => Just(Op::Abort),
        1 => Just(Op::Retry),
        3 => (any::<bool>(), 0..PHASES.len()).prop_map(|(pre, p)| Op::Run(pre, p)),
        1 => any::<bool>().prop_map(Op::SpecPaused),
        1 => Just(Op::Nothing),
    ]
}

#[derive(Debug, Clone)]
struct Settings {
    replicas: i32,
    preview: Option<i32>,
    auto: Option<bool>,
    auto_secs: Option<i32>,
    pre: bool,
    post: bool,
    delay: i32,
    abort_delay: i32,
    delay_limit: Option<i32>,
    history: i32,
    deadline_abort: bool,
}

fn settings() -> impl Strategy<Value = Settings> {
    (
        (
            0i32..6,
            proptest::option::of(0i32..6),
            proptest::option::of(any::<bool>()),
            proptest::option::of(0i32..90),
            any::<bool>(),
            any::<bool>(),
        ),
        (
            prop_oneof![Just(0i32), Just(30)],
            prop_oneof![Just(0i32), Just(30)],
            proptest::option::of(0i32..3),
            0i32..3,
            any::<bool>(),
        ),
    )
        .prop_map(
            |(
                (replicas, preview, auto, auto_secs, pre, post),
                (delay, abort_delay, delay_limit, history, deadline_abort),
            )| Settings {
                replicas,
                preview,
                auto,
                auto_secs,
                pre,
                post,
                delay,
                abort_delay,
                delay_limit,
                history,
                deadline_abort,
            },
        )
}

fn world(s: &Settings) -> World {
    let mut bg =
        json!({"scaleDownDelaySeconds": s.delay, "abortScaleDownDelaySeconds": s.abort_delay});
    if let Some(p) = s.preview {
        bg["previewReplicaCount"] = json!(p);
    }
    if let Some(a) = s.auto {
        bg["autoPromotionEnabled"] = json!(a);
    }
    if let Some(secs) = s.auto_secs {
        bg["autoPromotionSeconds"] = json!(secs);
    }
    if let Some(l) = s.delay_limit {
        bg["scaleDownDelayRevisionLimit"] = json!(l);
    }
    if s.pre {
        bg["prePromotionAnalysis"] = support::analysis();
    }
    if s.post {
        bg["postPromotionAnalysis"] = support::analysis();
    }
    let spec = json!({
        "replicas": s.replicas,
        "revisionHistoryLimit": s.history,
        "progressDeadlineSeconds": 600,
        "progressDeadlineAbort": s.deadline_abort,
    });
    let (mut w, _) = World::deployed(spec, bg);
    w.crash("app:crash");
    w
}

fn apply(w: &mut World, op: &Op) {
    match *op {
        Op::Image(i) => {
            w.set_image(IMAGES[i]);
        }
        Op::Ready(i) => {
            let h = w.hash_of(IMAGES[i]);
            if w.has_rs(&h) {
                w.make_ready(&h);
            }
        }
        Op::OnePod(i) => {
            let h = w.hash_of(IMAGES[i]);
            if w.has_rs(&h) && !w.crashing.contains(&h) {
                let rs = w.rs(&h);
                let ready = rs.ready.min(rs.available);
                if ready < rs.replicas {
                    w.set_ready(&h, ready + 1);
                }
            }
        }
        Op::AllReady => w.make_all_ready(),
        Op::Advance(s) => w.advance(s),
        Op::Promote => w.promote(),
        Op::PromoteFull => w.promote_full(),
        Op::Abort => w.abort(),
        Op::Retry => w.retry(),
        Op::Run(pre, p) => {
            let kind = if pre {
                AnalysisKind::PrePromotion
            } else {
                AnalysisKind::PostPromotion
            };
            if w.observed.analysis_runs.iter().any(|r| r.kind == kind) {
                w.set_run_phase(kind, PHASES[p]);
            }
        }
        Op::SpecPaused(p) => w.edit_spec(|s| s.paused = Some(p)),
        Op::Nothing => {}
    }
}

/// Once every scale-down delay has passed (checked on a copy of the world), at most one
/// ReplicaSet that is neither stable, current nor active still has pods: the one a switch in
/// that very reconcile has just put on its delay.
fn check_lingering(w: &World, s: &Settings) {
    let mut w = w.clone();
    w.advance(i64::from(s.delay.max(s.abort_delay)) + 1);
    w.step();
    let st = w.status();
    let active = w.active();
    let lingering: Vec<_> = w
        .observed
        .replica_sets
        .iter()
        .filter(|rs| {
            rs.replicas > 0
                && Some(&rs.hash) != st.stable_rs.as_ref()
                && Some(&rs.hash) != st.current_pod_hash.as_ref()
                && Some(&rs.hash) != active.as_ref()
        })
        .collect();
    assert!(
        lingering.len() <= 1,
        "several old ReplicaSets keep pods past their delays: {lingering:?}"
    );
    for rs in lingering {
        assert!(
            rs.scale_down_deadline.is_some_and(|t| t > w.now),
            "{} keeps {} pods with no pending deadline",
            rs.name,
            rs.replicas
        );
    }
}

/// Checks beyond those of `World::step`.
fn check(w: &World, crash: &str) {
    let s = w.status();
    assert!(s.phase.is_some(), "a phase is always reported");
    assert_eq!(s.observed_generation, w.rollout.metadata.generation);
    let stable = s.stable_rs.clone().expect("stable after the first deploy");
    assert!(w.has_rs(&stable), "the stable ReplicaSet is never deleted");
    if w.replicas() > 0 {
        assert_ne!(stable, crash, "a never-ready revision never becomes stable");
        assert_ne!(w.active().as_deref(), Some(crash), "nor receives traffic");
    }
    if s.phase == Some(RolloutPhase::Healthy) {
        assert_eq!(s.current_pod_hash, Some(stable.clone()));
        assert_eq!(w.active(), Some(stable));
    }
    // Only the revisions that serve or are being released keep pods without a deadline.
    let current = s.current_pod_hash.unwrap_or_default();
    for rs in &w.observed.replica_sets {
        let serving = Some(&rs.hash) == w.active().as_ref()
            || Some(&rs.hash) == s.stable_rs.as_ref()
            || rs.hash == current;
        if !serving && rs.replicas > 0 {
            assert!(
                rs.scale_down_deadline.is_some(),
                "{} keeps {} pods with no deadline",
                rs.name,
                rs.replicas
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn invariant_and_idempotence_hold_for_any_sequence(
        s in settings(),
        ops in proptest::collection::vec(op(), 1..40),
    ) {
        let mut w = world(&s);
        let crash = w.hash_of("app:crash");
        for op in &ops {
            apply(&mut w, op);
            w.step();
            check(&w, &crash);
            check_lingering(&w, &s);
        }
        // Whatever happened, a release of a good image with every pod ready completes once
        // promoted fully (and retried if it was aborted).
        let h = w.set_image("app:3");
        w.edit_spec(|s| s.paused = None);
        w.step();
        w.retry();
        w.step();
        w.promote_full();
        w.run_until_settled();
        let st = w.status();
        prop_assert_eq!(st.stable_rs.as_ref(), Some(&h));
        prop_assert_eq!(st.phase, Some(RolloutPhase::Healthy));
        prop_assert_eq!(w.active(), Some(h));
    }
}
