//! A short version of the canary-judge quality benchmark (`benches/judge_quality.rs`): robust
//! facts only (false rollbacks bounded, the sequential judge faster on a large regression),
//! never timings of the machine.

use rollgate_benches::judge_quality::{
    Class, Config, Metric, Report, Row, SEQUENTIAL, TARGET_FALSE_ROLLBACKS, run,
};

fn short_run() -> Report {
    let config = Config {
        good: 200,
        bad: 100,
        calibration: 200,
        seed: 7,
        calibration_seed: 70,
    };
    let classes = [
        Class {
            metric: Metric::Errors,
            ratio: 1.0,
        },
        Class {
            metric: Metric::Errors,
            ratio: 10.0,
        },
    ];
    run(config, &classes)
}

fn row(report: &Report, ratio: f64) -> &Row {
    report
        .rows
        .iter()
        .find(|r| r.class.ratio == ratio)
        .unwrap_or_else(|| panic!("no row for ratio {ratio}"))
}

#[test]
fn the_sequential_judge_bounds_false_rollbacks_and_catches_a_tenfold_regression_first() {
    let report = short_run();
    println!("{}", report.render());

    // Good canaries: the sequential judge rolls back at most alpha of them (plus three binomial
    // standard deviations of 200 canaries), however many looks it took.
    let good = row(&report, 1.0);
    let alpha = SEQUENTIAL.alpha;
    let margin = 3.0 * (alpha * (1.0 - alpha) / good.sequential.canaries as f64).sqrt();
    assert!(
        good.sequential.rate() <= alpha + margin,
        "sequential false rollbacks {} > {}",
        good.sequential.rate(),
        alpha + margin
    );
    // The threshold rule was calibrated on other good canaries: it stays near its target.
    assert!(
        good.threshold.rate() <= TARGET_FALSE_ROLLBACKS + 0.03,
        "threshold false rollbacks {}",
        good.threshold.rate()
    );

    // 10x the error rate: the sequential judge catches nearly all, and its median time to
    // rollback is shorter than the threshold rule's (which cannot fail before its
    // failureLimit + 1 = 4th failing minute) and than Kayenta's fixed horizon.
    let bad = row(&report, 10.0);
    assert!(
        bad.sequential.rate() >= 0.9,
        "sequential detected {}",
        bad.sequential.rate()
    );
    let median = |o: &rollgate_benches::judge_quality::Outcome| o.quantile(0.5);
    assert!(
        median(&bad.sequential) < median(&bad.threshold),
        "sequential median {} vs threshold {}",
        median(&bad.sequential),
        median(&bad.threshold)
    );
    assert!(
        median(&bad.sequential) < median(&bad.kayenta),
        "sequential median {} vs Kayenta {}",
        median(&bad.sequential),
        median(&bad.kayenta)
    );
}

#[test]
fn the_same_configuration_gives_the_same_report() {
    let config = Config {
        good: 20,
        bad: 20,
        calibration: 40,
        seed: 5,
        calibration_seed: 50,
    };
    let classes = [Class {
        metric: Metric::Latency,
        ratio: 5.0,
    }];
    assert_eq!(run(config, &classes), run(config, &classes));
}
