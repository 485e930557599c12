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
        "event StableServiceSwitched",
        "! event RolloutAborted         Aborted: ProgressDeadlineExceeded",
        "alert HighErrorRate fires on revision 4",
        "! event RolloutAborted         AlertFiring inside the guard window",
        "an alert inside its guard window sent traffic back to v2.0",
        "Rollout web is Degraded : AlertFiring",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
}

#[test]
fn the_blue_green_demo_is_the_default_and_its_analysis_decides() {
    let out = demo(&[]);
    assert!(out.contains("event ActiveServiceSwitched"), "{out}");
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
    if rollgate_promtest::is_installed() {
        assert!(
            out.contains("Prometheus is running on http://127.0.0.1:"),
            "{out}"
        );
    }
}
