//! Random operation sequences against the engine: the active Service never selects a
//! ReplicaSet without all its pods ready (after the first deploy), every reconcile is
//! idempotent, and nothing is created twice. `World::step` checks all three.

mod support;

use proptest::prelude::*;
use rollgate_api::AnalysisPhase;
use rollgate_engine::AnalysisKind;
use serde_json::json;
use support::World;

#[derive(Debug, Clone)]
enum Op {
    Image(usize),
    PodsReady,
    Advance(i64),
    Promote,
    Abort,
    Retry,
    Run(bool, usize),
    Step,
}

const IMAGES: [&str; 4] = ["app:1", "app:2", "app:3", "app:crash"];
const PHASES: [AnalysisPhase; 4] = [
    AnalysisPhase::Running,
    AnalysisPhase::Successful,
    AnalysisPhase::Failed,
    AnalysisPhase::Inconclusive,
];

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..IMAGES.len()).prop_map(Op::Image),
        Just(Op::PodsReady),
        prop_oneof![Just(1i64), Just(30), Just(700)].prop_map(Op::Advance),
        Just(Op::Promote),
        Just(Op::Abort),
        Just(Op::Retry),
        (any::<bool>(), 0..PHASES.len()).prop_map(|(pre, p)| Op::Run(pre, p)),
        Just(Op::Step),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn invariant_and_idempotence_hold_for_any_sequence(
        replicas in 0i32..6,
        preview in proptest::option::of(0i32..6),
        auto in any::<bool>(),
        auto_secs in proptest::option::of(0i32..120),
        analysis in any::<bool>(),
        ops in proptest::collection::vec(op(), 1..40),
    ) {
        let mut bg = json!({"autoPromotionEnabled": auto, "scaleDownDelaySeconds": 30});
        if let Some(p) = preview { bg["previewReplicaCount"] = json!(p); }
        if let Some(s) = auto_secs { bg["autoPromotionSeconds"] = json!(s); }
        if analysis {
            bg["prePromotionAnalysis"] = json!({"templates": [{"templateName": "rate"}]});
            bg["postPromotionAnalysis"] = json!({"templates": [{"templateName": "rate"}]});
        }
        let (mut w, _) = World::deployed(json!({"replicas": replicas, "progressDeadlineSeconds": 600}), bg);
        w.crash("app:crash");
        for op in ops {
            match op {
                Op::Image(i) => { w.set_image(IMAGES[i]); }
                Op::PodsReady => w.pods_ready(),
                Op::Advance(s) => w.advance(s),
                Op::Promote => w.promote(),
                Op::Abort => w.abort(),
                Op::Retry => w.retry(),
                Op::Run(pre, p) => {
                    let kind = if pre { AnalysisKind::PrePromotion } else { AnalysisKind::PostPromotion };
                    if w.observed.analysis_runs.iter().any(|r| r.kind == kind) {
                        w.set_run(kind, PHASES[p], "set by the test");
                    }
                }
                Op::Step => {}
            }
            w.step();
        }
    }
}
