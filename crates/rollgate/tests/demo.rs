//! `rollgate demo` runs both strategies to the end and tells what happened.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_rollgate");

fn demo(args: &[&str]) -> String {
    let output = Command::new(BIN)
        .arg("demo")
        .args(args)
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[test]
fn the_canary_demo_promotes_one_release_aborts_the_crash_looping_one_and_guards_the_next() {
    let out = demo(&["--strategy", "canary"]);
    for expected in [
        "weight 20% (actual 20%)",
        "weight 50% (actual 50%)",
        "Paused at step 4/6 until promoted",
        "Pause at step 4/6 promoted",
        "weight 80% (actual 80%)",
        "event SwitchService          Switched stable Service",
        "! event RolloutAborted         Aborted: ProgressDeadlineExceeded",
        "alert HighErrorRate fires on revision 4",
        "! event RolloutAborted         AlertFiring inside the guard window",
        "an alert inside its guard window sent traffic back to v2.0",
        "Rollout web is Degraded : AlertFiring",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
}

/// The default demo: analysis decides two releases, then an alert inside the guard window of a
/// third, fully promoted one sends traffic back; from a real Prometheus rule and Alertmanager
/// when both are installed, from the scenario alert source otherwise (the demo says which).
#[test]
fn the_blue_green_demo_is_the_default_its_analysis_decides_and_an_alert_rolls_back() {
    let out = demo(&[]);
    assert!(
        out.contains("event SwitchService          Switched active Service"),
        "{out}"
    );
    assert!(out.contains("event AnalysisRunCreated"), "{out}");
    // v3.0 serves 30% errors: a success rate of 0.7, whichever metric source the demo used.
    assert!(
        out.contains("metric \"success-rate\" failed: value [0.7] did not meet successCondition"),
        "{out}"
    );
    assert!(
        out.contains("v3.0 failed it and was aborted automatically"),
        "{out}"
    );
    let real_prometheus = rollgate_promtest::is_installed();
    if real_prometheus {
        assert!(
            out.contains("Prometheus is running on http://127.0.0.1:"),
            "{out}"
        );
    }

    // Section 5: v4.0 is promoted, guarded, starts failing, and its alert sends traffic back.
    let section = out
        .split("== 5. ")
        .nth(1)
        .unwrap_or_else(|| panic!("no section 5 in:\n{out}"));
    for expected in [
        "is inside its guard window",
        "demo-app:4.0 starts failing 40% of its requests",
        "! event RolloutAborted         AlertFiring inside the guard window of",
        "then HighErrorRate fired inside its guard window",
        "and traffic went back to v2.0",
        "Rollout web is Degraded : AlertFiring inside the guard window",
    ] {
        assert!(
            section.contains(expected),
            "missing {expected:?} in:\n{out}"
        );
    }
    // The previous revision is active again: the last state line selects v2.0's hash.
    let v2 = out
        .split("v2.0 (")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .unwrap_or_else(|| panic!("no v2.0 hash in:\n{out}"));
    let last_state = section
        .lines()
        .rfind(|l| l.contains(" active="))
        .unwrap_or_else(|| panic!("no state line in section 5:\n{out}"));
    assert!(
        last_state.contains(&format!("Degraded    active={v2} ")),
        "{last_state}"
    );
    if real_prometheus && rollgate_promtest::is_alertmanager_installed() {
        for expected in [
            "Alertmanager is running on http://127.0.0.1:",
            ": rule HighErrorRate fires for pod_template_hash=",
            "HighErrorRate {app=web, pod_template_hash=",
            "(the real Alertmanager at http://127.0.0.1:",
        ] {
            assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
        }
    } else {
        assert!(
            out.contains("section 5's alert comes from a simulated alert source instead"),
            "{out}"
        );
    }
}

#[test]
fn the_pipeline_demo_promotes_a_verified_soaked_approved_release_and_stops_a_bad_one() {
    let out = demo(&["--strategy", "pipeline"]);
    for expected in [
        "release #2 in production Blocked: soak 10m left in staging; needs 1 approval (0 of 1)",
        "$ rollgate approve ",
        "pipeline ReleasePromoted   Promoted release ",
        "release #2 in production Verified",
        "! pipeline ReleaseFailed     Release ",
        "pipeline LastGoodRestored  Stage production gets its last good release ",
        "release #3 in production RolledBack",
        "release #3 (demo-app:3.0): Bad: failed in production (RolloutAborted: AnalysisFailed",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
    // Releases #2 and #3 were each promoted once (the restore of #2 is LastGoodRestored).
    assert_eq!(out.matches("ReleasePromoted").count(), 2, "{out}");
}
