//! Checking an outcome against a scenario's `expect`, and the report of each check.

use std::fmt;

use crate::file::{Dur, Expect, PipelineExpect};
use crate::pipeline::PipelineOutcome;
use crate::runner::Outcome;

/// One expectation and how it came out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// The `expect` field (`rollouts.NS/NAME.phase`, `pipeline.releases.2.verdict` for
    /// nested ones).
    pub field: String,
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
    let mut checks = check_rollout(expect, o);
    for (key, e) in &expect.rollouts {
        let missing = Outcome::default();
        let other = o.rollouts.get(key).unwrap_or(&missing);
        for mut c in check_rollout(e, other) {
            if c.field == "(idle)" {
                continue;
            }
            c.field = format!("rollouts.{key}.{}", c.field);
            checks.push(c);
        }
    }
    if let Some(p) = &expect.pipeline {
        match &o.pipeline {
            Some(po) => checks.extend(check_pipeline(p, po)),
            None => checks.push(Check {
                field: "pipeline".into(),
                expected: "a PromotionPipeline".into(),
                actual: "none followed".into(),
                ok: false,
            }),
        }
    }
    checks
}

/// The checks of one Rollout's expectations.
fn check_rollout(expect: &Expect, o: &Outcome) -> Vec<Check> {
    let mut checks = Vec::new();
    // Always checked: a controller that never goes idle stops virtual time (see
    // `crate::ticker`), which no scenario expects.
    if o.stalled_seconds > 0 {
        checks.push(Check {
            field: "(idle)".into(),
            expected: "the controller goes idle".into(),
            actual: format!("virtual time moved on by force for {}s", o.stalled_seconds),
            ok: false,
        });
    }
    if let Some(phase) = &expect.phase {
        checks.push(Check {
            field: "phase".into(),
            expected: phase.clone(),
            actual: o.phase.clone(),
            ok: &o.phase == phase,
        });
    }
    if let Some(rev) = expect.stable_revision {
        checks.push(Check {
            field: "stableRevision".into(),
            expected: rev.to_string(),
            actual: or_none(o.stable_revision),
            ok: o.stable_revision == Some(rev),
        });
    }
    if let Some(aborted) = expect.aborted {
        checks.push(Check {
            field: "aborted".into(),
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
            field: "abortedBy".into(),
            expected: format!("an abort by {by}"),
            actual: o
                .first_abort
                .map_or_else(|| "no abort".into(), |t| format!("abort at {}", Dur(t))),
            ok: o.first_abort.is_some_and(|t| t <= by.0),
        });
    }
    if let Some(by) = expect.promoted_by {
        checks.push(Check {
            field: "promotedBy".into(),
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
            field: "stepsReached".into(),
            expected: format!("{steps}{of}"),
            actual: format!("{}{of}", or_none(o.steps_reached)),
            ok: o.steps_reached == Some(steps),
        });
    }
    if let Some(text) = &expect.message_contains {
        checks.push(Check {
            field: "messageContains".into(),
            expected: format!("{text:?}"),
            actual: format!("{:?}", o.message),
            ok: o.message.contains(text.as_str()),
        });
    }
    for reason in &expect.events {
        let seen = o.events.iter().filter(|e| *e == reason).count();
        checks.push(Check {
            field: "events".into(),
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

/// Checks of `expect.pipeline`.
fn check_pipeline(p: &PipelineExpect, o: &PipelineOutcome) -> Vec<Check> {
    let mut checks = Vec::new();
    let mut push = |field: String, expected: String, actual: String, ok: bool| {
        checks.push(Check {
            field,
            expected,
            actual,
            ok,
        });
    };
    let num = |name: Option<&str>| {
        name.map_or_else(
            || "none".to_string(),
            |n| {
                o.number_of(n)
                    .map_or_else(|| n.to_string(), |x| format!("release {x}"))
            },
        )
    };
    for (stage, e) in &p.stages {
        let st = o.status.stages.iter().find(|s| &s.name == stage);
        let field = |f: &str| format!("pipeline.stages.{stage}.{f}");
        if let Some(want) = e.runs_release {
            let current = st.and_then(|s| s.current.as_deref());
            let named = current.and_then(|c| o.number_of(c)) == Some(want);
            let images = o.stage_images.get(stage);
            let carries = match (o.release(want), images) {
                (Some(r), Some(images)) => {
                    let wanted = o.images_for(r, stage);
                    !wanted.is_empty() && wanted.iter().all(|(c, i)| images.get(c) == Some(i))
                }
                // A stage in another cluster: only the status tells.
                (Some(_), None) => true,
                (None, _) => false,
            };
            let shown = images.map_or_else(String::new, |m| {
                let list: Vec<String> = m.iter().map(|(c, i)| format!("{c}={i}")).collect();
                format!(" with images {}", list.join(","))
            });
            push(
                field("runsRelease"),
                format!("release {want} (status and images)"),
                format!("{}{shown}", num(current)),
                named && carries,
            );
        }
        if let Some(want) = e.last_good {
            let got = st.and_then(|s| s.last_good.as_deref());
            push(
                field("lastGood"),
                format!("release {want}"),
                num(got),
                got.and_then(|g| o.number_of(g)) == Some(want),
            );
        }
        if let Some(want) = e.held {
            let hold = st.and_then(|s| s.hold.as_ref());
            push(
                field("held"),
                want.to_string(),
                hold.map_or_else(
                    || "false".into(),
                    |h| format!("true ({} by {})", h.reason, num(Some(&h.release))),
                ),
                hold.is_some() == want,
            );
        }
        if let Some(want) = e.reachable {
            let got = st.and_then(|s| s.reachable);
            push(
                field("reachable"),
                want.to_string(),
                format!(
                    "{}{}",
                    or_none(got),
                    st.and_then(|s| s.problem.as_deref())
                        .map(|p| format!(" ({p})"))
                        .unwrap_or_default()
                ),
                got == Some(want),
            );
        }
    }
    for (key, e) in &p.releases {
        let field = |f: &str| format!("pipeline.releases.{key}.{f}");
        let r = key.parse::<i64>().ok().and_then(|n| o.release(n));
        let status = r.and_then(|r| r.status.clone()).unwrap_or_default();
        let exists = if r.is_some() { "" } else { "no such release" };
        if let Some(want) = e.verdict {
            let got = status.verdict;
            push(
                field("verdict"),
                want.to_string(),
                if r.is_none() {
                    exists.into()
                } else {
                    or_none(got)
                },
                got == Some(want),
            );
        }
        if let Some(want) = &e.failed_in {
            let got = status.failure.as_ref();
            push(
                field("failedIn"),
                want.clone(),
                got.map_or_else(
                    || "not failed".into(),
                    |f| format!("{} ({}: {})", f.stage, f.cause, f.message),
                ),
                got.is_some_and(|f| &f.stage == want),
            );
        }
        let stage = |name: &str| status.stages.iter().find(|s| s.name == name);
        for (name, want) in &e.stages {
            let got = stage(name).map(|s| s.phase);
            push(
                field(&format!("stages.{name}")),
                want.to_string(),
                or_none(got),
                got == Some(*want),
            );
        }
        for (name, want) in &e.blocked {
            let got: Vec<String> = stage(name)
                .map(|s| s.blocked.iter().map(|g| g.kind.to_string()).collect())
                .unwrap_or_default();
            let wanted: Vec<String> = want.iter().map(ToString::to_string).collect();
            push(
                field(&format!("blocked.{name}")),
                format!("gates {}", wanted.join(", ")),
                if got.is_empty() {
                    "no gate closed".into()
                } else {
                    format!("gates {}", got.join(", "))
                },
                wanted.iter().all(|w| got.contains(w)),
            );
        }
        for (name, want) in &e.message_contains {
            let got = stage(name)
                .and_then(|s| s.message.clone())
                .unwrap_or_default();
            push(
                field(&format!("messageContains.{name}")),
                format!("{want:?}"),
                format!("{got:?}"),
                got.contains(want.as_str()),
            );
        }
    }
    for rs in &p.never_promoted {
        let promoted = o.promoted.contains(&(rs.release, rs.stage.clone()));
        push(
            "pipeline.neverPromoted".into(),
            format!("release {} never in {}", rs.release, rs.stage),
            if promoted {
                format!("promoted into {}", rs.stage)
            } else {
                "never promoted".into()
            },
            !promoted,
        );
    }
    for reason in &p.events {
        let seen = o.events.iter().filter(|e| *e == reason).count();
        push(
            "pipeline.events".into(),
            format!("event {reason}"),
            if seen == 0 {
                "not recorded".into()
            } else {
                format!("recorded {seen}x")
            },
            seen > 0,
        );
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
            ..Default::default()
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
            ..Default::default()
        };
        let checks = check(&expect, &outcome());
        let failed: Vec<&str> = checks
            .iter()
            .filter(|c| !c.ok)
            .map(|c| c.field.as_str())
            .collect();
        assert_eq!(failed, ["phase", "abortedBy", "promotedBy", "events"]);
        assert_eq!(checks.len(), 9);
        let lines: Vec<String> = checks.iter().map(ToString::to_string).collect();
        assert!(lines[0].starts_with("FAIL phase"), "{}", lines[0]);
        assert!(lines[0].contains("expected Healthy") && lines[0].ends_with("got Degraded"));
        assert!(lines[3].contains("an abort by 05:00") && lines[3].ends_with("abort at 05:12"));
        assert!(lines[5].contains("2 of 5") && lines[5].starts_with("ok"));
        assert!(lines[8].ends_with("not recorded"));
    }

    fn release(
        number: i64,
        image: &str,
        verdict: rollgate_api::pipeline::Verdict,
    ) -> rollgate_api::Release {
        use rollgate_api::pipeline::{ReleaseSpec, ReleaseStatus};
        let mut r = rollgate_api::Release::new(
            &format!("web-{number}"),
            ReleaseSpec {
                pipeline: "web".into(),
                images: [("app".to_string(), format!("app@{image}"))].into(),
                source_images: [("app".to_string(), image.to_string())].into(),
                entered: "staging".into(),
                number,
                created: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                    k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
                ),
            },
        );
        r.status = Some(ReleaseStatus {
            verdict: Some(verdict),
            ..Default::default()
        });
        r
    }

    #[test]
    fn pipeline_checks_compare_status_and_images() {
        use rollgate_api::pipeline::{PipelineStageStatus, Verdict};
        let text = "pipeline:\n  stages: {production: {runsRelease: 2, lastGood: 1, held: false}}\n  releases: {2: {verdict: Good}, 3: {verdict: Bad}}\n  neverPromoted: [{release: 2, stage: production}]\n  events: [ReleaseFailed]\n";
        let expect: Expect = serde_saphyr::from_str(text).expect("test data");
        let pipeline = PipelineOutcome {
            name: "web".into(),
            status: rollgate_api::PromotionPipelineStatus {
                stages: vec![PipelineStageStatus {
                    name: "production".into(),
                    current: Some("web-2".into()),
                    last_good: Some("web-1".into()),
                    ..Default::default()
                }],
                ..Default::default()
            },
            releases: vec![
                release(1, "app:1", Verdict::Good),
                release(2, "app:2", Verdict::Good),
            ],
            events: vec!["ReleaseRecorded".into()],
            promoted: [(2, "production".to_string())].into(),
            // The status names release 2 but the Rollout still runs release 1's image.
            stage_images: [(
                "production".to_string(),
                [("app".to_string(), "app@app:1".to_string())].into(),
            )]
            .into(),
            entry_stage: "staging".into(),
        };
        let o = Outcome {
            pipeline: Some(pipeline),
            ..outcome()
        };
        let checks = check(&expect, &o);
        let lines: Vec<String> = checks.iter().map(ToString::to_string).collect();
        let failed: Vec<&str> = checks
            .iter()
            .filter(|c| !c.ok)
            .map(|c| c.field.as_str())
            .collect();
        assert_eq!(
            failed,
            [
                "pipeline.stages.production.runsRelease",
                "pipeline.releases.3.verdict",
                "pipeline.neverPromoted",
                "pipeline.events"
            ],
            "{lines:#?}"
        );
        assert!(
            lines[0].ends_with("got release 2 with images app=app@app:1"),
            "{}",
            lines[0]
        );
        assert!(lines[4].ends_with("got no such release"), "{}", lines[4]);
        let none = check(&expect, &outcome());
        assert!(none.iter().any(|c| c.field == "pipeline" && !c.ok));
    }

    #[test]
    fn nothing_expected_nothing_checked() {
        assert!(check(&Expect::default(), &outcome()).is_empty());
    }
}
