//! Checking an outcome against a scenario's `expect`, and the report of each check.

use std::fmt;

use crate::file::{Dur, Expect};
use crate::runner::Outcome;

/// One expectation and how it came out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// The `expect` field.
    pub field: &'static str,
    /// What the scenario asked for, in words.
    pub expected: String,
    /// What happened, in words.
    pub actual: String,
    /// Whether it held.
    pub ok: bool,
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mark = if self.ok { "ok  " } else { "FAIL" };
        write!(
            f,
            "{mark} {:<16} expected {:<28} got {}",
            self.field, self.expected, self.actual
        )
    }
}

fn or_none<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "none".to_string(), |v| v.to_string())
}

/// Every check `expect` asks for, in the order of its fields.
pub fn check(expect: &Expect, o: &Outcome) -> Vec<Check> {
    let mut checks = Vec::new();
    // Always checked: a controller that never goes idle stops virtual time (see
    // `crate::ticker`), which no scenario expects.
    if o.stalled_seconds > 0 {
        checks.push(Check {
            field: "(idle)",
            expected: "the controller goes idle".into(),
            actual: format!("virtual time moved on by force for {}s", o.stalled_seconds),
            ok: false,
        });
    }
    if let Some(phase) = &expect.phase {
        checks.push(Check {
            field: "phase",
            expected: phase.clone(),
            actual: o.phase.clone(),
            ok: &o.phase == phase,
        });
    }
    if let Some(rev) = expect.stable_revision {
        checks.push(Check {
            field: "stableRevision",
            expected: rev.to_string(),
            actual: or_none(o.stable_revision),
            ok: o.stable_revision == Some(rev),
        });
    }
    if let Some(aborted) = expect.aborted {
        checks.push(Check {
            field: "aborted",
            expected: aborted.to_string(),
            actual: match o.first_abort {
                Some(t) => format!("true (at {})", Dur(t)),
                None => "false".into(),
            },
            ok: o.first_abort.is_some() == aborted,
        });
    }
    if let Some(by) = expect.aborted_by {
        checks.push(Check {
            field: "abortedBy",
            expected: format!("an abort by {by}"),
            actual: o
                .first_abort
                .map_or_else(|| "no abort".into(), |t| format!("abort at {}", Dur(t))),
            ok: o.first_abort.is_some_and(|t| t <= by.0),
        });
    }
    if let Some(by) = expect.promoted_by {
        checks.push(Check {
            field: "promotedBy",
            expected: format!("revision {} stable by {by}", or_none(o.latest_revision)),
            actual: o.promoted_at.map_or_else(
                || "never stable".into(),
                |t| format!("stable at {}", Dur(t)),
            ),
            ok: o.promoted_at.is_some_and(|t| t <= by.0),
        });
    }
    if let Some(steps) = expect.steps_reached {
        let of = o.steps.map(|n| format!(" of {n}")).unwrap_or_default();
        checks.push(Check {
            field: "stepsReached",
            expected: format!("{steps}{of}"),
            actual: format!("{}{of}", or_none(o.steps_reached)),
            ok: o.steps_reached == Some(steps),
        });
    }
    if let Some(text) = &expect.message_contains {
        checks.push(Check {
            field: "messageContains",
            expected: format!("{text:?}"),
            actual: format!("{:?}", o.message),
            ok: o.message.contains(text.as_str()),
        });
    }
    for reason in &expect.events {
        let seen = o.events.iter().filter(|e| *e == reason).count();
        checks.push(Check {
            field: "events",
            expected: format!("event {reason}"),
            actual: if seen == 0 {
                "not recorded".into()
            } else {
                format!("recorded {seen}x")
            },
            ok: seen > 0,
        });
    }
    checks
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn outcome() -> Outcome {
        Outcome {
            ended_at: Duration::from_secs(600),
            phase: "Degraded".into(),
            message: "analysis failed: error-rate".into(),
            stable_revision: Some(1),
            latest_revision: Some(2),
            first_abort: Some(Duration::from_secs(312)),
            promoted_at: None,
            steps_reached: Some(2),
            steps: Some(5),
            events: vec!["RolloutUpdated".into(), "RolloutAborted".into()],
            stalled_seconds: 0,
        }
    }

    #[test]
    fn a_controller_that_never_went_idle_fails_the_scenario() {
        let expect = Expect::default();
        assert!(check(&expect, &outcome()).is_empty());
        let stalled = Outcome {
            stalled_seconds: 3,
            ..outcome()
        };
        let checks = check(&expect, &stalled);
        assert_eq!(checks.len(), 1);
        assert!(!checks[0].ok, "{}", checks[0]);
    }

    #[test]
    fn every_field_is_checked_and_reported() {
        let expect = Expect {
            phase: Some("Healthy".into()),
            stable_revision: Some(1),
            aborted: Some(true),
            aborted_by: Some(Dur(Duration::from_secs(300))),
            promoted_by: Some(Dur(Duration::from_secs(900))),
            steps_reached: Some(2),
            message_contains: Some("error-rate".into()),
            events: vec!["RolloutAborted".into(), "RolloutCompleted".into()],
        };
        let checks = check(&expect, &outcome());
        let failed: Vec<&str> = checks.iter().filter(|c| !c.ok).map(|c| c.field).collect();
        assert_eq!(failed, ["phase", "abortedBy", "promotedBy", "events"]);
        assert_eq!(checks.len(), 9);
        let lines: Vec<String> = checks.iter().map(ToString::to_string).collect();
        assert!(lines[0].starts_with("FAIL phase"), "{}", lines[0]);
        assert!(lines[0].contains("expected Healthy") && lines[0].ends_with("got Degraded"));
        assert!(lines[3].contains("an abort by 05:00") && lines[3].ends_with("abort at 05:12"));
        assert!(lines[5].contains("2 of 5") && lines[5].starts_with("ok"));
        assert!(lines[8].ends_with("not recorded"));
    }

    #[test]
    fn nothing_expected_nothing_checked() {
        assert!(check(&Expect::default(), &outcome()).is_empty());
    }
}
