//! Every scenario under `scenarios/` runs against the real controller and meets its `expect`.

use std::path::{Path, PathBuf};

use rollgate_scenario::{Scenario, check, run_blocking};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios")
}

/// Runs one scenario file and fails with its timeline and every failed check.
fn passes(file: &str) {
    let scenario = Scenario::load(&dir().join(file)).expect("test data");
    let expect = scenario
        .expect
        .clone()
        .expect("every shipped scenario has an expect");
    let mut timeline = Vec::new();
    let outcome = run_blocking(&scenario, &mut |line| timeline.push(line)).expect("test data");
    let checks = check(&expect, &outcome);
    assert!(!checks.is_empty(), "{file}: expect checks nothing");
    let failed: Vec<String> = checks
        .iter()
        .filter(|c| !c.ok)
        .map(ToString::to_string)
        .collect();
    assert!(
        failed.is_empty(),
        "{file}:\n{}\nfailed:\n{}",
        timeline.join("\n"),
        failed.join("\n")
    );
}

macro_rules! scenarios {
    ($($test:ident => $file:literal),+ $(,)?) => {
        $(#[test] fn $test() { passes($file); })+

        /// The list above is the whole directory: a new scenario file cannot be forgotten.
        #[test]
        fn every_file_is_run() {
            let mut listed = vec![$($file),+];
            listed.sort_unstable();
            let mut found: Vec<String> = std::fs::read_dir(dir())
                .expect("test data")
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| n.ends_with(".yaml"))
                .collect();
            found.sort();
            assert_eq!(found, listed);
            assert!(found.len() >= 10, "at least ten scenarios ship");
        }
    };
}

scenarios! {
    bluegreen_alert_before_switch => "bluegreen-alert-before-switch.yaml",
    bluegreen_failing_prepromotion => "bluegreen-failing-prepromotion.yaml",
    bluegreen_guard_rollback => "bluegreen-guard-rollback.yaml",
    bluegreen_guard_analysis_rollback => "bluegreen-guard-analysis-rollback.yaml",
    bluegreen_manual_promote => "bluegreen-manual-promote.yaml",
    bluegreen_postpromotion_rollback => "bluegreen-postpromotion-rollback.yaml",
    bluegreen_success => "bluegreen-success.yaml",
    canary_alert_rollback => "canary-alert-rollback.yaml",
    canary_crash_loop => "canary-crash-loop.yaml",
    canary_experiment_rollback => "canary-experiment-rollback.yaml",
    canary_experiment_success => "canary-experiment-success.yaml",
    canary_gateway_api_abort => "canary-gateway-api-abort.yaml",
    canary_guard_rollback => "canary-guard-rollback.yaml",
    canary_manual_promote => "canary-manual-promote.yaml",
    canary_no_data => "canary-no-data.yaml",
    canary_prometheus_outage => "canary-prometheus-outage.yaml",
    canary_regression_rollback => "canary-regression-rollback.yaml",
    canary_sequential_rollback => "canary-sequential-rollback.yaml",
    canary_sequential_latency_rollback => "canary-sequential-latency-rollback.yaml",
    canary_sequential_success => "canary-sequential-success.yaml",
    canary_kayenta_rollback => "canary-kayenta-rollback.yaml",
    canary_kayenta_success => "canary-kayenta-success.yaml",
    canary_success => "canary-success.yaml",
    canary_supersede => "canary-supersede.yaml",
    template_fix_and_retry => "template-fix-and-retry.yaml",
    pipeline_approval_gate => "pipeline-approval-gate.yaml",
    pipeline_closed_window => "pipeline-closed-window.yaml",
    pipeline_bad_release_never_promoted => "pipeline-bad-release-never-promoted.yaml",
    pipeline_production_failure_restores_last_good =>
        "pipeline-production-failure-restores-last-good.yaml",
    pipeline_promotion_after_soak => "pipeline-promotion-after-soak.yaml",
    pipeline_remote_cluster_unreachable => "pipeline-remote-cluster-unreachable.yaml",
    pipeline_superseding_release => "pipeline-superseding-release.yaml",
}

/// The same scenario gives the same timeline: noise is seeded, time is virtual.
#[test]
fn runs_are_deterministic() {
    for (file, want) in [
        ("canary-success.yaml", "measure error-rate"),
        (
            "pipeline-approval-gate.yaml",
            "Approval Reject of release 2",
        ),
    ] {
        let scenario = Scenario::load(&dir().join(file)).expect("test data");
        let run = || {
            let mut lines = Vec::new();
            run_blocking(&scenario, &mut |l| lines.push(l)).expect("test data");
            lines
        };
        let (a, b) = (run(), run());
        assert!(a.iter().any(|l| l.contains(want)), "{file}");
        assert_eq!(a, b, "{file}");
    }
}

/// A wrong expectation is reported, not hidden: the outcome differs from the `expect`.
#[test]
fn a_wrong_expect_fails_with_what_happened() {
    let text =
        std::fs::read_to_string(dir().join("canary-regression-rollback.yaml")).expect("test data");
    let wrong = text.replace("phase: Degraded", "phase: Healthy");
    let scenario = Scenario::parse(&wrong).expect("test data");
    let outcome = run_blocking(&scenario, &mut |_| {}).expect("test data");
    let checks = check(scenario.expect.as_ref().expect("test data"), &outcome);
    let failed: Vec<String> = checks
        .iter()
        .filter(|c| !c.ok)
        .map(ToString::to_string)
        .collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(failed[0].starts_with("FAIL phase"), "{}", failed[0]);
    assert!(failed[0].contains("expected Healthy") && failed[0].ends_with("got Degraded"));
}

/// A wrong pipeline expectation is reported with what happened, and the timeline shows the
/// pipeline's Events and each release's phase per stage.
#[test]
fn a_wrong_pipeline_expect_fails_with_what_happened() {
    let text =
        std::fs::read_to_string(dir().join("pipeline-approval-gate.yaml")).expect("test data");
    let wrong = text
        .replace(
            "production: {runsRelease: 1, lastGood: 1}",
            "production: {runsRelease: 2, lastGood: 1}",
        )
        .replace(
            "neverPromoted: [{release: 2, stage: production}]",
            "neverPromoted: [{release: 1, stage: production}]",
        );
    assert_ne!(wrong, text);
    let scenario = Scenario::parse(&wrong).expect("test data");
    let mut timeline = Vec::new();
    let outcome = run_blocking(&scenario, &mut |l| timeline.push(l)).expect("test data");
    let checks = check(scenario.expect.as_ref().expect("test data"), &outcome);
    let failed: Vec<String> = checks
        .iter()
        .filter(|c| !c.ok)
        .map(ToString::to_string)
        .collect();
    assert_eq!(failed.len(), 2, "{failed:?}");
    assert!(
        failed[0].starts_with("FAIL pipeline.stages.production.runsRelease")
            && failed[0].contains("expected release 2")
            && failed[0].contains("got release 1 with images app=app@sha256:"),
        "{}",
        failed[0]
    );
    assert!(
        failed[1].starts_with("FAIL pipeline.neverPromoted")
            && failed[1].ends_with("got promoted into production"),
        "{}",
        failed[1]
    );
    let text = timeline.join("\n");
    for want in [
        "pipeline event ReleaseRecorded",
        "release 1 in production: Blocked: needs 1 approval (0 of 1)",
        "alice: Approval Approve of release 1 for production (web-",
        "pipeline event ReleasePromoted",
        "bob: Approval Reject of release 2 for production",
        "release 2 in production: Blocked: rejected by bob",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
}

/// Whatever the metrics say, a scenario ends by its `duration` with the controller idle: here
/// every shipped canary scenario with a background analysis, its regressions removed
/// (constant metrics), and again with its first `pause` step removed. The background run of a
/// release that succeeded stayed Running forever and kept the controller busy, so virtual
/// time never reached the end.
#[test]
fn with_constant_metrics_every_scenario_ends_idle() {
    let files: Vec<PathBuf> = std::fs::read_dir(dir())
        .expect("test data")
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    for path in files {
        let mut scenario = Scenario::load(&path).expect("test data");
        let background = scenario
            .objects
            .iter()
            .any(|o| o.pointer("/spec/strategy/canary/analysis").is_some());
        if !background {
            continue;
        }
        for values in scenario.metrics.values_mut() {
            for series in values
                .default
                .iter_mut()
                .chain(values.revisions.values_mut())
            {
                if let rollgate_scenario::file::Series::Generator(g) = series {
                    g.regression = None;
                }
            }
        }
        for variant in 0..2 {
            if variant == 1 {
                let Some(steps) = scenario
                    .objects
                    .iter_mut()
                    .filter_map(|o| o.pointer_mut("/spec/strategy/canary/steps"))
                    .find_map(|s| s.as_array_mut())
                else {
                    continue;
                };
                let Some(i) = steps.iter().position(|s| s.get("pause").is_some()) else {
                    continue;
                };
                steps.remove(i);
            }
            let mut timeline = Vec::new();
            let outcome =
                run_blocking(&scenario, &mut |line| timeline.push(line)).expect("test data");
            assert!(
                outcome.ended_at <= scenario.max_duration(),
                "{}: ended at {:?}",
                path.display(),
                outcome.ended_at
            );
            assert_eq!(
                outcome.stalled_seconds,
                0,
                "{} (variant {variant}): the controller never went idle:\n{}",
                path.display(),
                timeline.join("\n")
            );
        }
    }
}
