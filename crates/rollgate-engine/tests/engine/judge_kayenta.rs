//! The Kayenta-style fixed-horizon judge: classification steps, test statistics against values
//! worked out by hand, scoring rules and the horizon helper.

use std::collections::BTreeMap;

use rollgate_engine::judge::kayenta::{
    Classification, ConfigError, Direction, ErrorReason, Interval, Kind, MetricConfig, NanStrategy,
    PowerError, ScoreError, ScoreReason, Shortcut, Side, SideStats, Thresholds, Verdict, classify,
    horizon_for_ratio, is_critical_failure, outlier_fences, percentile, prob_superiority_normal,
    sample_size_for_power, score,
};
use statrs::stats_tests::Alternative;
use statrs::stats_tests::mannwhitneyu::{MannWhitneyUMethod, mannwhitneyu};

fn close(actual: f64, expected: f64, tolerance: f64) -> bool {
    (actual - expected).abs() <= tolerance
}

#[track_caller]
fn assert_close(actual: Option<f64>, expected: f64, tolerance: f64) {
    let Some(actual) = actual else {
        panic!("expected {expected}, got none");
    };
    assert!(
        close(actual, expected, tolerance),
        "expected {expected} ± {tolerance}, got {actual}"
    );
}

fn config(direction: Direction) -> MetricConfig {
    MetricConfig {
        direction,
        ..MetricConfig::new("latency")
    }
}

// ---------------------------------------------------------------------------------------------
// The test statistics, by hand
// ---------------------------------------------------------------------------------------------

/// baseline [1, 2, 2, 3], canary [2, 3, 4, 5].
/// Pooled ranks: 1 -> 1; the three 2s -> 3; the two 3s -> 5.5; 4 -> 7; 5 -> 8.
/// Canary rank sum 3 + 5.5 + 7 + 8 = 23.5, U = 23.5 - 4·5/2 = 13.5 (by pairs: 2 beats 1 and ties
/// two 2s: 2; 3 beats 1, 2, 2 and ties 3: 3.5; 4: 4; 5: 4).
/// mn/2 = 8; continuity: 13.5 - 8 - 0.5 = 5.
/// Ties: t = 3 (24) and t = 2 (6), Σ(t³ - t) = 30; σ² = 16/12 · (9 - 30/56) = 11.285714.
/// z = 5 / 3.359422 = 1.488351; p = 2·(1 - Φ(z)) = 0.136658.
/// Pairwise differences canary - baseline, sorted: -1, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3,
/// 3, 4: Hodges-Lehmann = (1 + 2) / 2 = 1.5.
#[test]
fn u_p_and_estimate_with_ties_match_the_hand_computation() {
    let baseline = [1.0, 2.0, 2.0, 3.0];
    let canary = [2.0, 3.0, 4.0, 5.0];
    let c = classify(&config(Direction::Either), &baseline, &canary);
    assert_eq!(c.shortcut, None);
    assert_eq!(c.u, Some(13.5));
    assert_close(c.p_value, 0.136658, 1e-6);
    assert_eq!(c.hodges_lehmann, Some(1.5));
    // Too few samples for a 98% interval to clear the band.
    assert_eq!(c.kind, Kind::Pass);
    // Means 3.5 / 2.
    assert_eq!(c.effect_size, Some(1.75));
    assert_eq!(
        c.baseline,
        SideStats {
            count: 4,
            median: Some(2.0),
            mean: Some(2.0)
        }
    );
    assert_eq!(
        c.canary,
        SideStats {
            count: 4,
            median: Some(3.5),
            mean: Some(3.5)
        }
    );

    // statrs' test (normal approximation with tie and continuity correction) agrees.
    let (u, p) = mannwhitneyu(
        &canary,
        &baseline,
        MannWhitneyUMethod::AsymptoticInclContinuityCorrection,
        Alternative::TwoSided,
    )
    .expect("statrs computes the test");
    assert_eq!(u, 13.5);
    assert_close(c.p_value, p, 1e-12);
}

/// baseline j = 0..9, canary 100 + 10k, k = 0..9: the differences 100 + 10k - j are every
/// integer from 91 to 190 once, so D(r) = 90 + r, with no ties between them.
/// σ = √(100/12 · 21) = √175 = 13.228757; z(0.99) = 2.326348; with the shift between D(r) and
/// D(r+1), U = 100 - r and z = (50 - r - 0.5)/σ, which drops to z(0.99) or below from r = 19
/// (50 - 0.5 - 30.7743 = 18.73): lower = D(19) = 109; symmetrically upper = D(82) = 172.
/// Hodges-Lehmann = (D(50) + D(51)) / 2 = 140.5 (= 145 - 4.5, the difference of the means).
/// U = 100 (every canary value is higher); p = 2·(1 - Φ(49.5/σ)) = 1.826718e-4.
#[test]
fn interval_and_p_of_a_clear_increase_match_the_hand_computation() {
    let baseline: Vec<f64> = (0..10).map(f64::from).collect();
    let canary: Vec<f64> = (0..10).map(|k| 100.0 + 10.0 * f64::from(k)).collect();
    let c = classify(&config(Direction::Either), &baseline, &canary);
    assert_eq!(c.u, Some(100.0));
    assert_close(c.p_value, 1.826718e-4, 1e-9);
    assert_eq!(c.hodges_lehmann, Some(140.5));
    let Some(Interval { lower, upper }) = c.ci else {
        panic!("no interval: {c:?}")
    };
    assert!(close(lower, 109.0, 1e-9), "lower {lower}");
    assert!(close(upper, 172.0, 1e-9), "upper {upper}");
    // 109 > 0.25 · 140.5.
    assert_eq!(c.kind, Kind::High);

    let (_, p) = mannwhitneyu(
        &canary,
        &baseline,
        MannWhitneyUMethod::AsymptoticInclContinuityCorrection,
        Alternative::TwoSided,
    )
    .expect("statrs computes the test");
    assert_close(c.p_value, p, 1e-12);
}

/// The same layout with canary 0.5 + 10k: D(r) = -9.5 + r, so the interval is [9.5, 72.5] and
/// the estimate (40.5 + 41.5)/2 = 41. U = #{D > 0} = 91, p = 2·(1 - Φ(40.5/σ)) = 0.002202: a
/// significant increase, but the interval's lower end 9.5 stays inside the band 0.25 · 41 =
/// 10.25, so it passes. With 2 + 10k (interval [11, 74], estimate 42.5, band 10.625) it is High.
#[test]
fn a_significant_increase_inside_the_tolerance_band_passes() {
    let baseline: Vec<f64> = (0..10).map(f64::from).collect();
    let shifted = |s: f64| -> Vec<f64> { (0..10).map(|k| s + 10.0 * f64::from(k)).collect() };

    let c = classify(&config(Direction::Increase), &baseline, &shifted(0.5));
    assert_eq!(c.u, Some(91.0));
    assert_close(c.p_value, 0.0022022, 1e-7);
    assert_eq!(c.hodges_lehmann, Some(41.0));
    let Some(Interval { lower, upper }) = c.ci else {
        panic!("no interval: {c:?}")
    };
    assert!(
        close(lower, 9.5, 1e-9) && close(upper, 72.5, 1e-9),
        "{lower}..{upper}"
    );
    assert_eq!(c.kind, Kind::Pass);

    let c = classify(&config(Direction::Increase), &baseline, &shifted(2.0));
    assert_eq!(c.hodges_lehmann, Some(42.5));
    let Some(Interval { lower, .. }) = c.ci else {
        panic!("no interval: {c:?}")
    };
    assert!(close(lower, 11.0, 1e-9), "lower {lower}");
    assert_eq!(c.kind, Kind::High);
}

// ---------------------------------------------------------------------------------------------
// Classification
// ---------------------------------------------------------------------------------------------

/// 20 baseline values 100..110 in a fixed pattern, the canary 50% higher: every canary value
/// is above every baseline value.
fn regression() -> (Vec<f64>, Vec<f64>) {
    let baseline: Vec<f64> = (0..20).map(|i| 100.0 + f64::from((i * 7) % 11)).collect();
    let canary = baseline.iter().map(|v| v * 1.5).collect();
    (baseline, canary)
}

#[test]
fn a_canary_fifty_percent_higher_is_high_unless_the_direction_or_effect_size_allows_it() {
    let (baseline, canary) = regression();
    let c = classify(&config(Direction::Increase), &baseline, &canary);
    assert_eq!(c.kind, Kind::High);
    assert_eq!(c.u, Some(400.0));
    assert_close(c.effect_size, 1.5, 1e-12);
    let (Some(ci), Some(estimate)) = (c.ci, c.hodges_lehmann) else {
        panic!("{c:?}")
    };
    assert!(ci.lower > 0.25 * estimate && ci.lower <= estimate && estimate <= ci.upper);

    assert_eq!(
        classify(&config(Direction::Either), &baseline, &canary).kind,
        Kind::High
    );
    // Only a decrease matters.
    assert_eq!(
        classify(&config(Direction::Decrease), &baseline, &canary).kind,
        Kind::Pass
    );
    // The effect size gate: 1.5 < 2.
    let tolerant = MetricConfig {
        allowed_increase: 2.0,
        ..config(Direction::Increase)
    };
    assert_eq!(classify(&tolerant, &baseline, &canary).kind, Kind::Pass);
    // Just under the effect size (the means' ratio is 1.5 up to rounding).
    let gate = MetricConfig {
        allowed_increase: 1.49,
        ..config(Direction::Increase)
    };
    assert_eq!(classify(&gate, &baseline, &canary).kind, Kind::High);

    // Swapped: the canary is a third lower.
    assert_eq!(
        classify(&config(Direction::Decrease), &canary, &baseline).kind,
        Kind::Low
    );
    assert_eq!(
        classify(&config(Direction::Either), &canary, &baseline).kind,
        Kind::Low
    );
    assert_eq!(
        classify(&config(Direction::Increase), &canary, &baseline).kind,
        Kind::Pass
    );
    let tolerant = MetricConfig {
        allowed_decrease: 0.5,
        ..config(Direction::Decrease)
    };
    assert_eq!(classify(&tolerant, &canary, &baseline).kind, Kind::Pass);
}

#[test]
fn identical_data_passes_without_a_test() {
    let (baseline, _) = regression();
    let mut canary = baseline.clone();
    canary.reverse();
    let c = classify(&config(Direction::Either), &baseline, &canary);
    assert_eq!(c.kind, Kind::Pass);
    assert_eq!(c.shortcut, Some(Shortcut::Identical));
    assert_eq!(c.effect_size, Some(1.0));
    assert_eq!((c.u, c.p_value, c.ci), (None, None, None));
    assert_eq!(c.canary.count, 20);

    let c = classify(&config(Direction::Either), &[4.0, 4.0, 4.0], &[4.0, 4.0]);
    assert_eq!(c.kind, Kind::Pass);
    assert_eq!(c.shortcut, Some(Shortcut::SingleValue));
}

#[test]
fn an_all_nan_side_has_no_data_unless_nan_is_replaced() {
    let nan = [f64::NAN; 5];
    let some = [1.0, 2.0, 3.0];
    let c = classify(&config(Direction::Either), &some, &nan);
    assert_eq!(c.kind, Kind::NoData);
    assert_eq!(
        c.shortcut,
        Some(Shortcut::Empty {
            baseline: false,
            canary: true
        })
    );
    assert_eq!(c.baseline.count, 3);
    assert_eq!(c.canary, SideStats::default());
    let c = classify(&config(Direction::Either), &nan, &[]);
    assert_eq!(
        c.shortcut,
        Some(Shortcut::Empty {
            baseline: true,
            canary: true
        })
    );

    // NaN among values is dropped.
    let c = classify(
        &config(Direction::Either),
        &[1.0, f64::NAN, 2.0],
        &[2.0, 1.0],
    );
    assert_eq!(
        (c.kind, c.shortcut),
        (Kind::Pass, Some(Shortcut::Identical))
    );

    // Replaced by 0: no errors on both sides is identical data.
    let replace = MetricConfig {
        nan_strategy: NanStrategy::Replace,
        ..config(Direction::Increase)
    };
    let c = classify(&replace, &nan, &nan);
    assert_eq!(
        (c.kind, c.shortcut),
        (Kind::Pass, Some(Shortcut::Identical))
    );
}

/// Kayenta's example: an error count where the baseline has no series at all (NaN, replaced by
/// 0) and the canary has errors. The constant baseline gets tiny offsets; every canary value is
/// above it (U = 100), the effect size is undefined (baseline mean 0), so only the test decides:
/// High, and as a critical metric it fails the whole judgement.
#[test]
fn errors_against_a_baseline_without_any_are_high_with_an_undefined_effect_size() {
    let config = MetricConfig {
        nan_strategy: NanStrategy::Replace,
        critical: true,
        ..config(Direction::Increase)
    };
    let baseline = [f64::NAN; 10];
    let canary = [3.0, 4.0, 5.0, 6.0, 7.0, 3.0, 4.0, 5.0, 6.0, 7.0];
    let c = classify(&config, &baseline, &canary);
    assert_eq!(c.kind, Kind::High);
    assert_eq!(c.u, Some(100.0));
    assert_eq!(c.effect_size, None);
    assert_eq!(
        c.baseline,
        SideStats {
            count: 10,
            median: Some(0.0),
            mean: Some(0.0)
        }
    );
    assert!(is_critical_failure(&config, &c));
}

/// Offsets on a constant side split its ties with the other side evenly: baseline [0, 0, 0]
/// becomes [-s/3, 0, s/3], so each canary 0 beats one baseline value and ties one (1.5), as
/// with plain ties (3 × 0.5); the canary 1 beats all three. U = 1.5 + 1.5 + 3 = 6.
#[test]
fn offsets_on_a_constant_side_keep_u_as_with_ties() {
    let c = classify(
        &config(Direction::Either),
        &[0.0, 0.0, 0.0],
        &[0.0, 0.0, 1.0],
    );
    assert_eq!(c.shortcut, None);
    assert_eq!(c.u, Some(6.0));
    assert_eq!(c.kind, Kind::Pass);
    // Statistics are reported on the values before the offsets.
    assert_eq!(c.baseline.median, Some(0.0));
}

/// 0..9, twenty times each (200 values), plus one 1000. n = 201: Q1 and Q3 lie within [0, 9]
/// so Q3 + 3·IQR <= 36; P99 sits at position 0.99 · 202 = 199.98, between the 199th and 200th
/// values, both 9. The fence is at most 36: 1000 goes, nothing else.
#[test]
fn outliers_are_removed_only_when_asked() {
    let regular: Vec<f64> = (0..200).map(|i| f64::from(i % 10)).collect();
    let mut with_outlier = regular.clone();
    with_outlier.push(1000.0);

    let removing = MetricConfig {
        remove_outliers: true,
        ..config(Direction::Either)
    };
    let c = classify(&removing, &regular, &with_outlier);
    assert_eq!(c.canary.count, 200);
    assert_eq!(
        (c.kind, c.shortcut),
        (Kind::Pass, Some(Shortcut::Identical))
    );

    let c = classify(&config(Direction::Either), &regular, &with_outlier);
    assert_eq!(c.canary.count, 201);
    assert_eq!(c.shortcut, None);

    // Below 100 samples P1 and P99 are the minimum and the maximum: nothing is ever removed.
    // Here Q1 = 2.75 (position 2.75), Q3 = 8.25 (position 8.25), IQR 5.5: the IQR fences are
    // [-13.75, 24.75], the upper one widened to P99 = 1000.
    let small = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 1000.0];
    assert_eq!(outlier_fences(&small), (-13.75, 1000.0));
}

/// Percentiles at position p/100 · (n + 1) with interpolation, clamped: for [1, 2, 3, 4],
/// P25 at 1.25 -> 1.25, P75 at 3.75 -> 3.75, P1 at 0.05 -> 1, P99 at 4.95 -> 4.
#[test]
fn percentiles_interpolate_at_n_plus_one_positions() {
    let v = [1.0, 2.0, 3.0, 4.0];
    assert_eq!(percentile(&v, 25.0), 1.25);
    assert_eq!(percentile(&v, 75.0), 3.75);
    assert_eq!(percentile(&v, 1.0), 1.0);
    assert_eq!(percentile(&v, 99.0), 4.0);
    // IQR 2.5: fences 1.25 - 7.5 and 3.75 + 7.5.
    assert_eq!(outlier_fences(&v), (-6.25, 11.25));
}

#[test]
fn invalid_configuration_and_infinite_samples_are_errors() {
    let bad = MetricConfig {
        allowed_increase: 0.5,
        ..config(Direction::Either)
    };
    let c = classify(&bad, &[1.0], &[2.0]);
    assert_eq!(
        c.kind,
        Kind::Error(ErrorReason::InvalidConfig(ConfigError::AllowedIncrease(
            0.5
        )))
    );

    let c = classify(&config(Direction::Either), &[1.0], &[2.0, f64::INFINITY]);
    assert_eq!(
        c.kind,
        Kind::Error(ErrorReason::InfiniteValue {
            side: Side::Canary,
            index: 1
        })
    );
    let Kind::Error(reason) = c.kind else {
        unreachable!()
    };
    assert_eq!(
        reason.to_string(),
        "canary sample 1: expected a finite value or NaN, got an infinity"
    );
}

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

#[test]
fn validate_names_the_field_and_what_was_expected() {
    let base = MetricConfig::new("errors");
    assert_eq!(base.validate(), Ok(()));
    let cases: Vec<(MetricConfig, ConfigError, &str)> = vec![
        (
            MetricConfig {
                name: " ".into(),
                ..base.clone()
            },
            ConfigError::EmptyName,
            "name: expected a non-empty metric name",
        ),
        (
            MetricConfig {
                group: String::new(),
                ..base.clone()
            },
            ConfigError::EmptyGroup,
            "group: expected a non-empty group name",
        ),
        (
            MetricConfig {
                allowed_increase: 0.9,
                ..base.clone()
            },
            ConfigError::AllowedIncrease(0.9),
            "allowedIncrease: expected a finite ratio >= 1, got 0.9",
        ),
        (
            MetricConfig {
                allowed_decrease: 1.1,
                ..base.clone()
            },
            ConfigError::AllowedDecrease(1.1),
            "allowedDecrease: expected a finite ratio in (0, 1], got 1.1",
        ),
        (
            MetricConfig {
                allowed_decrease: f64::NAN,
                ..base.clone()
            },
            ConfigError::AllowedDecrease(f64::NAN),
            "allowedDecrease: expected a finite ratio in (0, 1], got NaN",
        ),
        (
            MetricConfig {
                allowed_increase: 1.5,
                critical_increase: Some(1.2),
                ..base.clone()
            },
            ConfigError::CriticalIncrease {
                value: 1.2,
                allowed: 1.5,
            },
            "criticalIncrease: expected a finite ratio >= allowedIncrease (1.5), got 1.2",
        ),
        (
            MetricConfig {
                critical_decrease: Some(0.0),
                ..base.clone()
            },
            ConfigError::CriticalDecrease {
                value: 0.0,
                allowed: 1.0,
            },
            "criticalDecrease: expected a finite ratio in (0, allowedDecrease (1)], got 0",
        ),
        (
            MetricConfig {
                weight: Some(120.0),
                ..base.clone()
            },
            ConfigError::Weight(120.0),
            "weight: expected a finite percentage in [0, 100], got 120",
        ),
    ];
    for (config, error, message) in cases {
        let got = config.validate().expect_err("invalid");
        // NaN != NaN: compare the field and the message.
        assert_eq!(got.field(), error.field());
        assert_eq!(got.to_string(), message);
        assert!(message.starts_with(got.field()));
    }
}

#[test]
fn configuration_reads_camel_case_with_kayenta_defaults() {
    let config: MetricConfig = serde_json::from_str(
        r#"{"name": "errors", "direction": "increase", "nanStrategy": "replace",
            "removeOutliers": true, "allowedIncrease": 1.2, "criticalIncrease": 2.0,
            "critical": true, "mustHaveData": true, "group": "errors", "weight": 60}"#,
    )
    .expect("valid configuration");
    assert_eq!(
        config,
        MetricConfig {
            name: "errors".into(),
            direction: Direction::Increase,
            nan_strategy: NanStrategy::Replace,
            remove_outliers: true,
            allowed_increase: 1.2,
            allowed_decrease: 1.0,
            critical_increase: Some(2.0),
            critical_decrease: None,
            critical: true,
            must_have_data: true,
            group: "errors".into(),
            weight: Some(60.0),
        }
    );
    let minimal: MetricConfig = serde_json::from_str(r#"{"name": "cpu"}"#).expect("valid");
    assert_eq!(minimal, MetricConfig::new("cpu"));
    assert_eq!(minimal.direction, Direction::Either);
    assert_eq!(minimal.group, "default");
    let wrong: Result<MetricConfig, _> =
        serde_json::from_str(r#"{"name": "cpu", "direction": "up"}"#);
    assert!(wrong.is_err());
}

// ---------------------------------------------------------------------------------------------
// Scoring
// ---------------------------------------------------------------------------------------------

fn judged(kind: Kind, effect_size: Option<f64>) -> Classification {
    Classification {
        kind,
        shortcut: None,
        u: None,
        p_value: None,
        ci: None,
        hodges_lehmann: None,
        effect_size,
        baseline: SideStats::default(),
        canary: SideStats::default(),
    }
}

fn metric(name: &str, group: &str) -> MetricConfig {
    MetricConfig {
        group: group.into(),
        ..MetricConfig::new(name)
    }
}

fn weights(pairs: &[(&str, f64)]) -> BTreeMap<String, f64> {
    pairs.iter().map(|(g, w)| (g.to_string(), *w)).collect()
}

/// latency (weight 50): Pass, High -> 50. errors and saturation share the other 50: errors
/// Pass -> 100; saturation Pass and NoData (left out) -> 100.
/// Summary 50·0.5 + 100·0.25 + 100·0.25 = 75: Marginal. 1 of 5 without data.
#[test]
fn group_scores_are_weighted_and_unweighted_groups_share_the_rest() {
    let metrics = vec![
        (metric("p99", "latency"), judged(Kind::Pass, Some(1.0))),
        (metric("p50", "latency"), judged(Kind::High, Some(1.3))),
        (metric("5xx", "errors"), judged(Kind::Pass, Some(1.0))),
        (metric("cpu", "saturation"), judged(Kind::Pass, Some(1.0))),
        (metric("mem", "saturation"), judged(Kind::NoData, None)),
    ];
    let s = score(
        &metrics,
        Thresholds::default(),
        &weights(&[("latency", 50.0)]),
    )
    .expect("scored");
    let groups: Vec<(&str, f64, f64)> = s
        .groups
        .iter()
        .map(|g| (g.name.as_str(), g.score, g.weight))
        .collect();
    assert_eq!(
        groups,
        vec![
            ("latency", 50.0, 50.0),
            ("errors", 100.0, 25.0),
            ("saturation", 100.0, 25.0)
        ]
    );
    assert_eq!(s.groups[2].no_data, 1);
    assert_eq!(s.summary, 75.0);
    assert_eq!(s.result, Verdict::Marginal);
    assert_eq!(s.reason, ScoreReason::Scored);

    // Without weights the three groups share 100: (50 + 100 + 100) / 3 = 83.3: Marginal.
    let s = score(&metrics, Thresholds::default(), &BTreeMap::new()).expect("scored");
    assert!(close(s.summary, 250.0 / 3.0, 1e-9), "{}", s.summary);
    // Thresholds are inclusive: marginal at exactly 75 above; pass at 80 here.
    let s = score(
        &metrics,
        Thresholds {
            pass: 80.0,
            marginal: 50.0,
        },
        &BTreeMap::new(),
    )
    .expect("scored");
    assert_eq!(s.result, Verdict::Pass);
    let s = score(
        &metrics,
        Thresholds {
            pass: 90.0,
            marginal: 85.0,
        },
        &BTreeMap::new(),
    )
    .expect("scored");
    assert_eq!(s.result, Verdict::Fail);
}

#[test]
fn missing_data_counts_as_a_failure_only_when_the_metric_must_have_data() {
    let must = MetricConfig {
        must_have_data: true,
        ..metric("mem", "saturation")
    };
    let metrics = vec![
        (metric("cpu", "saturation"), judged(Kind::Pass, Some(1.0))),
        (metric("disk", "saturation"), judged(Kind::Pass, Some(1.0))),
        (must, judged(Kind::NoData, None)),
    ];
    // 2 / (2 + 1) · 100.
    let s = score(&metrics, Thresholds::default(), &BTreeMap::new()).expect("scored");
    assert!(close(s.summary, 200.0 / 3.0, 1e-9), "{}", s.summary);
    assert_eq!(s.groups[0].no_data_fail, 1);
    assert_eq!(s.result, Verdict::Fail);
}

#[test]
fn a_failed_critical_metric_forces_the_score_to_zero() {
    let critical = MetricConfig {
        critical: true,
        ..metric("5xx", "errors")
    };
    let passing = || {
        (1..=9)
            .map(|i| {
                (
                    metric(&format!("m{i}"), "other"),
                    judged(Kind::Pass, Some(1.0)),
                )
            })
            .collect::<Vec<_>>()
    };
    let mut metrics = passing();
    metrics.push((critical.clone(), judged(Kind::High, Some(1.1))));
    let s = score(&metrics, Thresholds::default(), &BTreeMap::new()).expect("scored");
    assert_eq!(s.summary, 0.0);
    assert_eq!(s.result, Verdict::Fail);
    assert_eq!(
        s.reason,
        ScoreReason::CriticalMetricFailed {
            metric: "5xx".into()
        }
    );

    // No data and errors on a critical metric fail it too.
    for kind in [
        Kind::NoData,
        Kind::Error(ErrorReason::InfiniteValue {
            side: Side::Baseline,
            index: 0,
        }),
    ] {
        let mut metrics = passing();
        metrics.push((critical.clone(), judged(kind, None)));
        let s = score(&metrics, Thresholds::default(), &BTreeMap::new()).expect("scored");
        assert_eq!(
            s.reason,
            ScoreReason::CriticalMetricFailed {
                metric: "5xx".into()
            }
        );
    }

    // Below the critical bound, a High only costs its group: errors 0, other 100, halves.
    let bounded = MetricConfig {
        critical_increase: Some(1.5),
        ..critical.clone()
    };
    let mut metrics = passing();
    metrics.push((bounded.clone(), judged(Kind::High, Some(1.2))));
    let s = score(&metrics, Thresholds::default(), &BTreeMap::new()).expect("scored");
    assert_eq!((s.summary, s.reason), (50.0, ScoreReason::Scored));
    // At the bound, or with an undefined effect size, it fails the whole judgement.
    for effect in [Some(1.5), None] {
        assert!(is_critical_failure(&bounded, &judged(Kind::High, effect)));
    }
    assert!(!is_critical_failure(&bounded, &judged(Kind::Pass, None)));
    // A non-critical metric never does.
    assert!(!is_critical_failure(
        &metric("x", "g"),
        &judged(Kind::NoData, None)
    ));
}

#[test]
fn half_of_the_metrics_without_data_forces_the_score_to_zero() {
    let metrics = |no_data: usize| {
        (0..4)
            .map(|i| {
                let kind = if i < no_data {
                    Kind::NoData
                } else {
                    Kind::Pass
                };
                (metric(&format!("m{i}"), "g"), judged(kind, None))
            })
            .collect::<Vec<_>>()
    };
    // 1 of 4: the NoData metric is left out, the group scores 100.
    let s = score(&metrics(1), Thresholds::default(), &BTreeMap::new()).expect("scored");
    assert_eq!(
        (s.summary, s.result, s.reason),
        (100.0, Verdict::Pass, ScoreReason::Scored)
    );
    // 2 of 4 is half.
    let s = score(&metrics(2), Thresholds::default(), &BTreeMap::new()).expect("scored");
    assert_eq!(s.summary, 0.0);
    assert_eq!(s.result, Verdict::Fail);
    assert_eq!(
        s.reason,
        ScoreReason::TooMuchNoData {
            no_data: 2,
            total: 4
        }
    );
}

#[test]
fn weights_declared_on_metrics_apply_when_the_call_gives_none() {
    let metrics = vec![
        (
            MetricConfig {
                weight: Some(80.0),
                ..metric("p99", "latency")
            },
            judged(Kind::High, None),
        ),
        (metric("5xx", "errors"), judged(Kind::Pass, None)),
    ];
    // latency 0 · 0.8 + errors 100 · 0.2.
    let s = score(&metrics, Thresholds::default(), &BTreeMap::new()).expect("scored");
    assert_eq!(s.summary, 20.0);
    // The call's weight wins: 0 · 0.3 + 100 · 0.7.
    let s = score(
        &metrics,
        Thresholds::default(),
        &weights(&[("latency", 30.0)]),
    )
    .expect("scored");
    assert_eq!(s.summary, 70.0);
}

#[test]
fn invalid_scoring_inputs_are_errors() {
    let one = vec![(metric("a", "g"), judged(Kind::Pass, None))];
    let t = Thresholds::default();
    assert_eq!(score(&[], t, &BTreeMap::new()), Err(ScoreError::NoMetrics));
    let inverted = Thresholds {
        pass: 70.0,
        marginal: 80.0,
    };
    assert_eq!(
        score(&one, inverted, &BTreeMap::new()),
        Err(ScoreError::Thresholds(inverted))
    );

    let two = vec![
        (metric("a", "g"), judged(Kind::Pass, None)),
        (metric("b", "h"), judged(Kind::Pass, None)),
    ];
    let err = score(&two, t, &weights(&[("g", 70.0), ("h", 40.0)])).expect_err("sum 110");
    assert_eq!(
        err,
        ScoreError::WeightSum {
            sum: 110.0,
            unweighted_groups: false
        }
    );
    assert_eq!(
        err.to_string(),
        "group weights: expected a sum of 100 when every group has a weight, got 110"
    );
    let err = score(&two, t, &weights(&[("g", 60.0), ("h", 30.0)])).expect_err("sum 90");
    assert_eq!(
        err,
        ScoreError::WeightSum {
            sum: 90.0,
            unweighted_groups: false
        }
    );
    let err = score(&two, t, &weights(&[("g", 101.0)])).expect_err("weight over 100");
    assert_eq!(
        err,
        ScoreError::Weight {
            group: "g".into(),
            weight: 101.0
        }
    );
    // A weight for a group without metrics is ignored.
    let s = score(&two, t, &weights(&[("g", 60.0), ("absent", 30.0)])).expect("scored");
    assert_eq!(s.groups[1].weight, 40.0);

    let conflicting = vec![
        (
            MetricConfig {
                weight: Some(40.0),
                ..metric("a", "g")
            },
            judged(Kind::Pass, None),
        ),
        (
            MetricConfig {
                weight: Some(50.0),
                ..metric("b", "g")
            },
            judged(Kind::Pass, None),
        ),
    ];
    let err = score(&conflicting, t, &BTreeMap::new()).expect_err("conflict");
    assert_eq!(
        err,
        ScoreError::ConflictingWeights {
            group: "g".into(),
            first: 40.0,
            second: 50.0
        }
    );
    assert!(score(&conflicting, t, &weights(&[("g", 100.0)])).is_ok());
}

// ---------------------------------------------------------------------------------------------
// Horizon
// ---------------------------------------------------------------------------------------------

/// Plain test, alpha 0.05, power 0.8, P(canary > baseline) = 0.6:
/// (1.959964 + 0.841621)² / (6 · 0.1²) = 7.848879 / 0.06 = 130.81 -> 131.
/// With this judge's band (alpha 0.02, z = 2.326348 / 0.75 = 3.101797):
/// (3.101797 + 0.841621)² / 0.06 = 259.18 -> 260.
/// Ratio 1.5 at cv 1: p = Φ(0.5/√2) = 0.638163, n = 15.55055 / (6 · 0.138163²) = 135.77 -> 136.
#[test]
fn sample_sizes_match_noethers_formula() {
    assert_eq!(sample_size_for_power(0.6, 0.8, 0.05, 0.0), Ok(131));
    assert_eq!(sample_size_for_power(0.4, 0.8, 0.05, 0.0), Ok(131));
    assert_eq!(sample_size_for_power(0.6, 0.8, 0.02, 0.25), Ok(260));
    assert_close(prob_superiority_normal(1.5, 1.0).ok(), 0.638163, 1e-6);
    assert_eq!(horizon_for_ratio(1.5, 1.0, 0.8), Ok(136));

    assert_eq!(
        sample_size_for_power(0.5, 0.8, 0.05, 0.0),
        Err(PowerError::ProbSuperiority(0.5))
    );
    assert_eq!(
        sample_size_for_power(0.6, 1.0, 0.05, 0.0),
        Err(PowerError::Power(1.0))
    );
    assert_eq!(
        sample_size_for_power(0.6, 0.8, 0.0, 0.0),
        Err(PowerError::Alpha(0.0))
    );
    assert_eq!(
        sample_size_for_power(0.6, 0.8, 0.05, 1.0),
        Err(PowerError::ToleranceFraction(1.0))
    );
    assert_eq!(
        prob_superiority_normal(1.0, 1.0),
        Err(PowerError::Ratio(1.0))
    );
    assert_eq!(prob_superiority_normal(1.5, 0.0), Err(PowerError::Cv(0.0)));
    assert_eq!(
        PowerError::Cv(0.0).to_string(),
        "cv: expected a finite positive coefficient of variation, got 0"
    );
}

/// A seeded generator (xorshift64*), so the simulation below is the same on every run.
struct Rng(u64);

impl Rng {
    fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let x = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D);
        // In (0, 1).
        ((x >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// Box-Muller.
    fn normal(&mut self, mean: f64, sd: f64) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        mean + sd * (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

/// At the horizon for a 1.5x shift (cv 1, 80% power), simulated canaries 1.5x higher are
/// classified High about 80% of the time, and unchanged canaries almost never.
#[test]
fn the_horizon_gives_about_the_power_asked_for() {
    let n = horizon_for_ratio(1.5, 1.0, 0.8).expect("valid");
    let config = config(Direction::Increase);
    let mut rng = Rng(0x5EED_CAFE_F00D_1234);
    let trials = 300;
    let mut high_bad = 0;
    let mut high_good = 0;
    for _ in 0..trials {
        let baseline: Vec<f64> = (0..n).map(|_| rng.normal(100.0, 100.0)).collect();
        let bad: Vec<f64> = (0..n).map(|_| rng.normal(150.0, 100.0)).collect();
        let good: Vec<f64> = (0..n).map(|_| rng.normal(100.0, 100.0)).collect();
        high_bad += usize::from(classify(&config, &baseline, &bad).kind == Kind::High);
        high_good += usize::from(classify(&config, &baseline, &good).kind == Kind::High);
    }
    let power = high_bad as f64 / trials as f64;
    assert!((0.7..=0.9).contains(&power), "power {power}");
    assert!(
        high_good <= trials / 50,
        "false Highs {high_good} of {trials}"
    );
}
