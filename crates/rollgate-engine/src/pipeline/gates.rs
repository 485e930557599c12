//! The gates between stages, and how they read.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use rollgate_api::Approval;
use rollgate_api::pipeline::{Decision, Gate, GateKind};

/// A gate of `kind` with no details.
pub fn gate(kind: GateKind) -> Gate {
    Gate {
        kind,
        stage: None,
        until: None,
        needed: None,
        have: None,
        by: None,
    }
}

/// The approval gate of `release` for `stage`: the newest decision of each approver counts;
/// `Reject` closes it, `needed` distinct `Approve`s open it.
pub fn approvals(approvals: &[Approval], release: &str, stage: &str, needed: i32) -> Vec<Gate> {
    let mut newest: BTreeMap<&str, (&Approval, Decision)> = BTreeMap::new();
    for a in approvals
        .iter()
        .filter(|a| a.spec.release == release && a.spec.stage == stage)
        .filter(|a| a.spec.decision != Decision::Promote)
    {
        let created = a.metadata.creation_timestamp.as_ref().map(|t| t.0);
        let name = a.metadata.name.as_deref().unwrap_or_default();
        let newer = newest.get(a.spec.approver.as_str()).is_none_or(|(b, _)| {
            let theirs = b.metadata.creation_timestamp.as_ref().map(|t| t.0);
            (created, name) > (theirs, b.metadata.name.as_deref().unwrap_or_default())
        });
        if newer {
            newest.insert(a.spec.approver.as_str(), (a, a.spec.decision));
        }
    }
    let mut gates = Vec::new();
    for (approver, (_, decision)) in &newest {
        if *decision == Decision::Reject {
            gates.push(Gate {
                by: Some((*approver).to_string()),
                ..gate(GateKind::Rejected)
            });
        }
    }
    let have = newest
        .values()
        .filter(|(_, d)| *d == Decision::Approve)
        .count();
    let have = i32::try_from(have).unwrap_or(i32::MAX);
    if have < needed {
        gates.push(Gate {
            needed: Some(needed),
            have: Some(have),
            ..gate(GateKind::Approvals)
        });
    }
    gates
}

/// Seconds as `1h2m`, `12m`, `40s`.
pub fn span(secs: i64) -> String {
    let secs = secs.max(0);
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    match (h, m, s) {
        (0, 0, s) => format!("{s}s"),
        (0, m, 0) => format!("{m}m"),
        (0, m, s) => format!("{m}m{s}s"),
        (h, 0, _) => format!("{h}h"),
        (h, m, _) => format!("{h}h{m}m"),
    }
}

fn left(until: Option<&Time>, now: Timestamp) -> String {
    until.map_or_else(String::new, |t| {
        span(t.0.as_second().saturating_sub(now.as_second()))
    })
}

/// One gate as a person reads it, with the time left from `now`.
pub fn render(g: &Gate, now: Timestamp) -> String {
    let stage = g.stage.as_deref().unwrap_or("?");
    match g.kind {
        GateKind::Upstream => format!("waits for {stage} to verify it"),
        GateKind::Soak => format!("soak {} left in {stage}", left(g.until.as_ref(), now)),
        GateKind::Approvals => {
            let needed = g.needed.unwrap_or(0);
            let have = g.have.unwrap_or(0);
            let missing = needed - have;
            let s = if missing == 1 { "" } else { "s" };
            format!("needs {missing} approval{s} ({have} of {needed})")
        }
        GateKind::Rejected => format!("rejected by {}", g.by.as_deref().unwrap_or("?")),
        GateKind::Window => match &g.until {
            Some(t) => format!("window opens {} ({} from now)", t.0, left(Some(t), now)),
            None => "no promotion window opens within a year".into(),
        },
        GateKind::Paused => "the pipeline is paused".into(),
        GateKind::InFlight => format!(
            "{} is being promoted there",
            g.by.as_deref().unwrap_or("another release")
        ),
        GateKind::Held => "automatic promotion is held until a person promotes".into(),
        GateKind::Manual => "autoPromote is false: rollgate promote".into(),
        GateKind::Unreachable => "the stage cannot be reached".into(),
        GateKind::Claimed => format!(
            "pipeline {} drives this Rollout (it was there first)",
            g.by.as_deref().unwrap_or("?")
        ),
        GateKind::MissingContainer => format!(
            "the stage's Rollout has no container {}",
            g.by.as_deref().unwrap_or("?")
        ),
    }
}

/// All gates, joined.
pub fn render_all(gates: &[Gate], now: Timestamp) -> String {
    gates
        .iter()
        .map(|g| render(g, now))
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use rollgate_api::ApprovalSpec;

    fn approval(name: &str, approver: &str, decision: Decision, at: i64) -> Approval {
        Approval {
            metadata: ObjectMeta {
                name: Some(name.into()),
                creation_timestamp: Some(Time(
                    Timestamp::from_second(1_800_000_000 + at).unwrap_or(Timestamp::UNIX_EPOCH),
                )),
                ..Default::default()
            },
            spec: ApprovalSpec {
                release: "web-r2".into(),
                stage: "production".into(),
                decision,
                approver: approver.into(),
                comment: None,
            },
        }
    }

    #[test]
    fn distinct_approvers_count_and_the_newest_decision_of_each_wins() {
        let a = [
            approval("a1", "alice", Decision::Approve, 0),
            approval("a2", "alice", Decision::Approve, 5),
        ];
        let g = approvals(&a, "web-r2", "production", 2);
        assert_eq!(
            render_all(&g, Timestamp::UNIX_EPOCH),
            "needs 1 approval (1 of 2)"
        );
        let a = [
            approval("a1", "alice", Decision::Approve, 0),
            approval("b1", "bob", Decision::Approve, 1),
        ];
        assert!(approvals(&a, "web-r2", "production", 2).is_empty());
        assert_eq!(
            approvals(&a, "web-r2", "staging", 1).len(),
            1,
            "other stage"
        );
        assert_eq!(
            approvals(&a, "web-r3", "production", 1).len(),
            1,
            "other release"
        );
        let a = [
            approval("b1", "bob", Decision::Approve, 1),
            approval("b2", "bob", Decision::Reject, 2),
        ];
        let g = approvals(&a, "web-r2", "production", 1);
        assert_eq!(
            render_all(&g, Timestamp::UNIX_EPOCH),
            "rejected by bob; needs 1 approval (0 of 1)"
        );
        let a = [
            approval("b2", "bob", Decision::Reject, 2),
            approval("b3", "bob", Decision::Approve, 3),
        ];
        assert!(
            approvals(&a, "web-r2", "production", 1).is_empty(),
            "changed mind"
        );
    }

    #[test]
    fn spans_read_short() {
        assert_eq!(span(40), "40s");
        assert_eq!(span(720), "12m");
        assert_eq!(span(750), "12m30s");
        assert_eq!(span(3600), "1h");
        assert_eq!(span(3900), "1h5m");
        assert_eq!(span(-3), "0s");
    }
}
