//! `rollgate simulate FILE...`: the timeline, the outcome, and the exit code of the checks.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_rollgate");

fn scenario(name: &str) -> String {
    format!("{}/../../scenarios/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn simulate(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(BIN)
        .arg("simulate")
        .args(args)
        .output()
        .expect("runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_passing_scenario_prints_its_decisions_and_exits_0() {
    let (code, out, err) = simulate(&[&scenario("bluegreen-failing-prepromotion.yaml")]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    for want in [
        "== ",
        "$ rollgate set image web web=web:2",
        "event AnalysisRunCreated",
        "measure error-rate = [0.1",
        "-> Failed",
        "! event RolloutAborted",
        "end at ",
        "ok   phase            expected Degraded",
        "PASS ",
        "1 passed, 0 failed, 0 could not run",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
}

#[test]
fn a_kayenta_metric_prints_its_samples_until_the_horizon_then_the_verdict() {
    let (code, out, err) = simulate(&[&scenario("canary-kayenta-rollback.yaml")]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    for want in [
        "measure canary-score : samples 1/10 -> Successful",
        "measure canary-score : samples 9/10 -> Successful",
        "measure canary-score = 0 -> Failed",
        "error-ratio High (effect size",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
}

/// An experiment step: its ReplicaSets are marked with their template in the pods, its phase
/// follows them, and each experiment pod is measured with its revision's values (the stable
/// one's for the baseline, the new one's for the canary).
#[test]
fn an_experiment_prints_its_replica_sets_phase_and_measurements() {
    let (code, out, err) = simulate(&[
        &scenario("canary-experiment-success.yaml"),
        &scenario("canary-experiment-rollback.yaml"),
    ]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    for want in [
        "event ExperimentCreated      Experiment web-",
        "-baseline, web-",
        "0/1 (experiment baseline), ",
        "0/1 (experiment canary)] experiment Pending",
        "1/1 (experiment canary)] experiment Running",
        "measure baseline-error-rate = [0.01",
        "measure canary-error-rate = [0.02",
        "event ExperimentSuccessful   Experiment web-",
        "measure canary-error-rate = [0.19",
        "! event ExperimentFailed",
        "2 passed, 0 failed, 0 could not run",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
    assert!(!out.contains("measure baseline-error-rate = [0.2"), "{out}");
}

#[test]
fn a_pipeline_scenario_prints_the_pipeline_and_every_rollout() {
    let (code, out, err) = simulate(&[&scenario(
        "pipeline-production-failure-restores-last-good.yaml",
    )]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    for want in [
        "$ rollgate set image -n shop-staging web app=app:2",
        "pipeline event ReleaseRecorded",
        "release 2 in production: Progressing",
        "$ rollgate abort -n shop-prod web: rollout 'shop-prod/web' aborted",
        "! shop-prod/web event RolloutAborted",
        "! pipeline event ReleaseFailed",
        "pipeline event LastGoodRestored",
        "release 2 verdict Bad (failed in production: RolloutAborted",
        "pipeline stage production: runs release 1, last good 1, automatic promotion held (Restored by release 2)",
        "ok   pipeline.releases.2.verdict expected Bad",
        "PASS ",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
}

#[test]
fn a_wrong_expect_exits_1_with_a_diff() {
    let dir = std::env::temp_dir().join(format!("rollgate-simulate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("test data");
    let text = std::fs::read_to_string(scenario("canary-manual-promote.yaml")).expect("test data");
    let wrong = dir.join("wrong.yaml");
    std::fs::write(
        &wrong,
        text.replace("stableRevision: 2", "stableRevision: 1")
            .replace("stepsReached: 3", "stepsReached: 2"),
    )
    .expect("test data");
    let (code, out, _) = simulate(&["-q", wrong.to_str().expect("test data")]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("FAIL stableRevision   expected 1"), "{out}");
    assert!(out.contains("got 2"), "{out}");
    assert!(
        out.contains("FAIL stepsReached     expected 2 of 3"),
        "{out}"
    );
    assert!(
        out.contains("ok   phase"),
        "the checks that held are listed too:\n{out}"
    );
    assert!(out.contains("2 of 5 expectations did not hold"), "{out}");
    // -q: no timeline.
    assert!(!out.contains("$ rollgate promote"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_invalid_scenario_exits_2_naming_the_field() {
    let dir = std::env::temp_dir().join(format!("rollgate-simulate-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("test data");
    let text = std::fs::read_to_string(scenario("canary-success.yaml")).expect("test data");
    let bad = dir.join("bad.yaml");
    std::fs::write(
        &bad,
        text.replace("  error-rate:\n    default", "  latency:\n    default"),
    )
    .expect("test data");
    let (code, out, err) = simulate(&[
        bad.to_str().expect("test data"),
        &scenario("canary-no-data.yaml"),
    ]);
    assert_eq!(code, Some(2), "{out}\n{err}");
    assert!(
        err.contains(
            "bad.yaml: metrics.latency: no AnalysisTemplate in objects has a metric named latency"
        ),
        "{err}"
    );
    // The other file still ran.
    assert!(out.contains("1 passed, 0 failed, 1 could not run"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}
