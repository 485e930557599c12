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
fn the_canary_demo_promotes_one_release_and_aborts_the_crash_looping_one() {
    let out = demo(&["--strategy", "canary"]);
    for expected in [
        "weight 20% (actual 20%)",
        "weight 50% (actual 50%)",
        "Paused at step 4/6 until promoted",
        "Pause at step 4/6 promoted",
        "weight 80% (actual 80%)",
        "event StableServiceSwitched",
        "! event RolloutAborted         Aborted: ProgressDeadlineExceeded",
        "Rollout web is Degraded",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
}

#[test]
fn the_blue_green_demo_is_the_default() {
    let out = demo(&[]);
    assert!(out.contains("event ActiveServiceSwitched"), "{out}");
    assert!(out.contains("v3.0 was aborted automatically"), "{out}");
}
