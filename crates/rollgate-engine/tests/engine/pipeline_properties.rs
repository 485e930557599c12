//! Property: whatever happens (CI applying new images, Rollouts going Healthy, Degraded or
//! aborted, verifications passing or failing, approvals, rejections, manual promotions,
//! pauses, an unreachable stage, time passing), a release is never written into a stage that
//! an `after` stage has not verified it for (except a stage's last good release restored), a
//! Bad release is never written anywhere and stays Bad, and every step is deterministic and
//! records nothing twice (checked by `World::step` after every action).

use crate::pipeline_support;

use pipeline_support::{World, digest};
use proptest::prelude::*;
use rollgate_api::pipeline::{Decision, Verdict};
use rollgate_api::{AbortReason, AnalysisPhase};
use serde_json::json;

#[derive(Debug, Clone)]
enum Op {
    Ci(u32),
    Pods(u32),
    Healthy(usize),
    Abort(usize),
    Degraded(usize),
    Run(usize, bool),
    Approve(usize, usize, Decision),
    Advance(i64),
    Unreachable(bool),
    Pause(bool),
}

const STAGES: [&str; 3] = ["staging", "canary", "production"];

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (1u32..5).prop_map(Op::Ci),
        2 => (1u32..5).prop_map(Op::Pods),
        4 => (0usize..3).prop_map(Op::Healthy),
        1 => (0usize..3).prop_map(Op::Abort),
        1 => (0usize..3).prop_map(Op::Degraded),
        2 => ((0usize..3), any::<bool>()).prop_map(|(s, ok)| Op::Run(s, ok)),
        2 => ((0usize..4), (1usize..3), prop_oneof![
                Just(Decision::Approve), Just(Decision::Reject), Just(Decision::Promote)])
            .prop_map(|(r, s, d)| Op::Approve(r, s, d)),
        2 => (0i64..1200).prop_map(Op::Advance),
        1 => any::<bool>().prop_map(Op::Unreachable),
        1 => any::<bool>().prop_map(Op::Pause),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn releases_are_promoted_only_where_verified_upstream_and_bad_ones_never(
        soak in prop_oneof![Just(None), Just(Some("5m"))],
        approvals in 0i32..2,
        verify in any::<bool>(),
        ops in proptest::collection::vec(op(), 1..60),
    ) {
        let mut staging = json!({"name": "staging",
                                 "rollout": {"name": "web", "namespace": "shop-staging"}});
        if verify {
            staging["verification"] = json!({"templates": [{"templateName": "smoke"}]});
        }
        let mut production = json!({"name": "production",
            "rollout": {"name": "web", "namespace": "shop-prod"},
            "after": ["canary"], "approvals": approvals});
        if let Some(s) = soak {
            production["soak"] = json!(s);
        }
        let mut w = World::new(json!({"stages": [
            staging,
            {"name": "canary", "rollout": {"name": "web", "namespace": "shop-canary"}},
            production]}));
        let mut bad: Vec<String> = Vec::new();
        for op in &ops {
            match op.clone() {
                Op::Ci(n) => w.ci_apply(&format!("shop/web:{n}")),
                Op::Pods(n) => w.pods_run("staging", &digest(n)),
                Op::Healthy(s) => w.healthy(STAGES[s]),
                Op::Abort(s) => w.abort(STAGES[s], AbortReason::AnalysisFailed),
                Op::Degraded(s) => w.degraded(STAGES[s]),
                Op::Run(s, ok) => w.set_run(
                    STAGES[s],
                    if ok { AnalysisPhase::Successful } else { AnalysisPhase::Failed },
                ),
                Op::Approve(r, s, d) => {
                    if let Some(name) = w.release_names().get(r).cloned() {
                        w.approve(&name, STAGES[s], "alice", d);
                    }
                }
                Op::Advance(secs) => w.advance(secs),
                Op::Unreachable(u) => {
                    if u {
                        w.unreachable.insert("production".into());
                    } else {
                        w.unreachable.clear();
                    }
                }
                Op::Pause(p) => w.pipeline.spec.paused = p,
            }
            w.step();
            // Bad is for good.
            for name in &bad {
                prop_assert_eq!(w.verdict(name), Some(Verdict::Bad), "{} no longer Bad", name);
            }
            bad = w
                .release_names()
                .into_iter()
                .filter(|n| w.verdict(n) == Some(Verdict::Bad))
                .collect();
        }
    }
}
