//! The anytime-valid sequential judge: the reference's check values, the martingale property,
//! counters, state round trips, and seeded simulations of null and bad canaries.

use rollgate_engine::judge::sequential::{
    Counter, Counters, Decision, Direction, Error, Interval, ReadingProblem, Readings, Series,
    Settings, State, Verdict, counter_increase, log_bayes_factor, one_sided_log_bayes_factor,
};

// ---------------------------------------------------------------------------------------------
// Closed forms

/// The six check values of the reference (two-sided, canary share 0.1, counts (baseline, canary)).
#[test]
fn two_sided_log_bayes_factor_matches_the_reference_check_values() {
    let cases = [
        (10.0, 70, 30, 12.607603),
        (10.0, 90, 10, -1.273276),
        (20.0, 85, 15, -0.044336),
        (20.0, 0, 5, 2.647331),
        (100.0, 70, 30, 8.240110),
        (100.0, 100, 0, 3.314196),
    ];
    for (k, baseline, canary, want) in cases {
        let got = log_bayes_factor(k, 0.1, canary, baseline).expect("valid");
        assert!(
            (got - want).abs() < 1e-5,
            "k={k} ({baseline},{canary}): got {got}, want {want}"
        );
    }
}

#[test]
fn one_sided_factor_is_the_two_sided_one_reweighted_by_the_side() {
    // Either is the two-sided factor.
    let two = log_bayes_factor(20.0, 0.1, 15, 85).expect("valid");
    let either = one_sided_log_bayes_factor(20.0, 0.1, 15, 85, Direction::Either).expect("valid");
    assert_eq!(two, either);
    // No data: every factor is 1.
    for direction in [Direction::Increase, Direction::Decrease, Direction::Either] {
        let v = one_sided_log_bayes_factor(20.0, 0.1, 0, 0, direction).expect("valid");
        assert!(v.abs() < 1e-12, "{direction}: {v}");
    }
    // The two halves of the prior average back to the two-sided factor:
    // BF = P(up) BF_up + P(down) BF_down.
    let up_mass = 1.0 - statrs::function::beta::beta_reg(2.0, 18.0, 0.1);
    for (c, b) in [(30, 70), (10, 90), (15, 85), (5, 0), (0, 100)] {
        let up = one_sided_log_bayes_factor(20.0, 0.1, c, b, Direction::Increase).expect("up");
        let down = one_sided_log_bayes_factor(20.0, 0.1, c, b, Direction::Decrease).expect("down");
        let two = log_bayes_factor(20.0, 0.1, c, b).expect("two");
        let mix = (up_mass * up.exp() + (1.0 - up_mass) * down.exp()).ln();
        assert!((mix - two).abs() < 1e-9, "({c},{b}): {mix} vs {two}");
    }
    // Excess canary events favour Increase over the two-sided factor, a deficit the reverse.
    let up = one_sided_log_bayes_factor(10.0, 0.1, 30, 70, Direction::Increase).expect("up");
    assert!(up > 12.607603, "{up}");
    let up = one_sided_log_bayes_factor(20.0, 0.1, 0, 100, Direction::Increase).expect("up");
    let down = one_sided_log_bayes_factor(20.0, 0.1, 0, 100, Direction::Decrease).expect("down");
    assert!(up < 0.0 && down > 0.0, "{up} {down}");
}

#[test]
fn closed_forms_name_the_invalid_argument() {
    assert_eq!(
        log_bayes_factor(0.0, 0.1, 1, 1),
        Err(Error::PriorConcentration(0.0))
    );
    assert_eq!(
        log_bayes_factor(20.0, 1.0, 1, 1),
        Err(Error::CanaryShare(1.0))
    );
    let err = log_bayes_factor(20.0, f64::NAN, 1, 1).expect_err("NaN share");
    assert!(matches!(err, Error::CanaryShare(v) if v.is_nan()));
    assert!(err.to_string().starts_with("rhoC"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// The grid mixture against the closed form

fn settings(direction: Direction, k: f64) -> Settings {
    Settings {
        alpha: 0.05,
        prior_concentration: k,
        direction,
        min_events: 0,
    }
}

/// Feeds `(canary, baseline)` events at a constant share `rho` (split over a few intervals)
/// and returns the last verdict.
fn feed_constant(s: &Settings, rho_percent: u64, canary: u64, baseline: u64) -> Verdict {
    let mut state = State::default();
    let mut verdict = None;
    let parts = 4;
    for i in 0..parts {
        let part = |n: u64| n / parts + u64::from(i < n % parts);
        let interval = Interval {
            canary_events: part(canary),
            baseline_events: part(baseline),
            canary_requests: rho_percent * 10,
            baseline_requests: (100 - rho_percent) * 10,
        };
        verdict = Some(state.update(s, interval).expect("update"));
    }
    verdict.expect("at least one interval")
}

/// With a constant share the grid mixture approximates the closed-form directed factor.
///
/// Achieved: where the closed-form log factor is at least 1 (evidence building up towards a
/// rejection at `ln(1/alpha)`), the log e-values agree to within 2e-3 up to a thousand events and
/// 1e-2 at five thousand. Below that (no evidence, or evidence the other way) the grid's point at
/// `u = 0` keeps its e-value from falling as far as the continuous mixture's: never more than 1e-2
/// below it, often far above.
#[test]
fn grid_mixture_with_a_constant_share_matches_the_closed_form() {
    let (mut worst_small, mut worst_large, mut checked_below): (f64, f64, usize) = (0.0, 0.0, 0);
    for direction in [Direction::Increase, Direction::Decrease, Direction::Either] {
        for k in [10.0, 20.0, 100.0] {
            for rho in [5, 10, 50] {
                for (c, b) in [
                    (30, 70),
                    (10, 90),
                    (15, 85),
                    (5, 0),
                    (0, 100),
                    (0, 5),
                    (3, 2),
                    (130, 870),
                    (140, 1860),
                    (60, 440),
                    (700, 4300),
                    (330, 4670),
                ] {
                    let s = settings(direction, k);
                    let got = feed_constant(&s, rho, c, b).log_e_value;
                    let want = one_sided_log_bayes_factor(k, rho as f64 / 100.0, c, b, direction)
                        .expect("closed form");
                    let case = format!("{direction} k={k} rho={rho}% ({c},{b})");
                    if want >= 1.0 {
                        let diff = (got - want).abs();
                        let (tolerance, worst) = if c + b <= 1000 {
                            (2e-3, &mut worst_small)
                        } else {
                            (1e-2, &mut worst_large)
                        };
                        *worst = worst.max(diff);
                        assert!(diff < tolerance, "{case}: grid {got}, closed form {want}");
                    } else {
                        checked_below += 1;
                        assert!(got >= want - 1e-2, "{case}: grid {got}, closed form {want}");
                    }
                }
            }
        }
    }
    println!(
        "worst |grid - closed form| of the log e-value where it is >= 1: {worst_small:.1e} \
         (<= 1000 events), {worst_large:.1e} (5000 events); {checked_below} cases below 1"
    );
    assert!(worst_small > 0.0 && worst_large > 0.0 && checked_below > 0);
}

// ---------------------------------------------------------------------------------------------
// The martingale property, exactly

fn binomial_pmf(n: u64, x: u64, p: f64) -> f64 {
    let ln_choose = statrs::function::factorial::ln_binomial(n, x);
    (ln_choose + x as f64 * p.ln() + (n - x) as f64 * (1.0 - p).ln()).exp()
}

/// Under the null the expected next e-value is the current one, whatever the share of the
/// next interval: E[M_2 | first interval] = M_1 (and E[M_1] = 1).
#[test]
fn the_e_value_is_a_martingale_under_the_null() {
    for direction in [Direction::Increase, Direction::Decrease, Direction::Either] {
        let s = settings(direction, 20.0);
        let mut first = State::default();
        let m1 = first
            .update(
                &s,
                Interval {
                    canary_events: 3,
                    baseline_events: 5,
                    canary_requests: 50,
                    baseline_requests: 950,
                },
            )
            .expect("first")
            .e_value;
        for (n_events, q_c, q_b) in [(12, 250, 750), (7, 500, 500), (1, 1, 19)] {
            let q = q_c as f64 / (q_c + q_b) as f64;
            let mut expected = 0.0;
            for x in 0..=n_events {
                let mut next = first.clone();
                let m2 = next
                    .update(
                        &s,
                        Interval {
                            canary_events: x,
                            baseline_events: n_events - x,
                            canary_requests: q_c,
                            baseline_requests: q_b,
                        },
                    )
                    .expect("next")
                    .e_value;
                expected += binomial_pmf(n_events, x, q) * m2;
            }
            assert!(
                (expected - m1).abs() < 1e-9 * m1,
                "{direction} E={n_events} q={q}: E[M2] = {expected}, M1 = {m1}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Counters

#[test]
fn counter_increases_handle_first_readings_and_resets() {
    assert_eq!(counter_increase(None, 42.0), Ok(0));
    assert_eq!(counter_increase(Some(40.0), 42.0), Ok(2));
    assert_eq!(counter_increase(Some(42.0), 42.0), Ok(0));
    // Reset: the process restarted and counted 7 since.
    assert_eq!(counter_increase(Some(42.0), 7.0), Ok(7));
    assert_eq!(counter_increase(Some(42.0), 0.0), Ok(0));

    let mut c = Counter::default();
    assert_eq!(c.observe(100.0), Ok(0));
    assert_eq!(c.observe(130.0), Ok(30));
    assert_eq!(c.observe(5.0), Ok(5));
    assert_eq!(c.observe(9.0), Ok(4));
    assert_eq!(c.last(), Some(9.0));
}

#[test]
fn unusable_counter_readings_are_typed_errors_and_change_nothing() {
    let cases = [
        (f64::NAN, ReadingProblem::NotFinite),
        (f64::INFINITY, ReadingProblem::NotFinite),
        (-1.0, ReadingProblem::Negative),
        (2.5, ReadingProblem::Fractional),
        (1e17, ReadingProblem::TooLarge),
    ];
    for (value, problem) in cases {
        let mut c = Counter::default();
        c.observe(3.0).expect("base");
        let err = c.observe(value).expect_err("unusable");
        assert_eq!(err.problem, problem, "{value}");
        assert_eq!(c.last(), Some(3.0), "{value}: the counter moved");
        // A bad stored previous reading is caught too.
        let err = counter_increase(Some(value), 3.0).expect_err("bad previous");
        assert_eq!(err.problem, problem);
    }

    let mut counters = Counters::default();
    let good = Readings {
        canary_events: 1.0,
        canary_requests: 10.0,
        baseline_events: 2.0,
        baseline_requests: 90.0,
    };
    counters.observe(good).expect("base");
    let before = counters;
    let bad = Readings {
        baseline_requests: 90.5,
        canary_events: 4.0,
        ..good
    };
    let err = counters.observe(bad).expect_err("fractional");
    assert!(matches!(
        err,
        Error::Reading {
            series: Series::BaselineRequests,
            ..
        }
    ));
    assert!(err.to_string().starts_with("baseline requests: "), "{err}");
    assert_eq!(counters, before, "a failed observation moved the counters");
}

#[test]
fn state_observe_turns_readings_into_intervals() {
    let s = Settings::default();
    let mut state = State::default();
    let at = |ce: f64, cr: f64, be: f64, br: f64| Readings {
        canary_events: ce,
        canary_requests: cr,
        baseline_events: be,
        baseline_requests: br,
    };
    // The first scrape sets the base only.
    let v = state
        .observe(&s, at(100.0, 1000.0, 500.0, 9000.0))
        .expect("first");
    assert_eq!((v.canary_events, v.baseline_events), (0, 0));
    assert_eq!(v.e_value, 1.0);
    let v = state
        .observe(&s, at(104.0, 1100.0, 509.0, 9900.0))
        .expect("second");
    assert_eq!(
        (
            v.canary_events,
            v.baseline_events,
            v.canary_requests,
            v.baseline_requests
        ),
        (4, 9, 100, 900)
    );
    // The canary restarted: its counters start again from zero.
    let v = state
        .observe(&s, at(2.0, 50.0, 512.0, 10800.0))
        .expect("reset");
    assert_eq!(
        (
            v.canary_events,
            v.baseline_events,
            v.canary_requests,
            v.baseline_requests
        ),
        (6, 12, 150, 1800)
    );
    // A bad reading is an error and changes nothing.
    let before = serde_json::to_string(&state).expect("json");
    state
        .observe(&s, at(3.0, f64::NAN, 513.0, 10900.0))
        .expect_err("NaN");
    assert_eq!(serde_json::to_string(&state).expect("json"), before);
}

// ---------------------------------------------------------------------------------------------
// Settings and the update rules

#[test]
fn settings_validation_names_the_field() {
    assert_eq!(Settings::default().validate(), Ok(()));
    let d = Settings::default();
    assert_eq!((d.alpha, d.prior_concentration), (0.05, 20.0));
    assert_eq!(d.direction, Direction::Increase);
    for alpha in [0.0, 1.0, -0.5, f64::NAN] {
        let err = Settings { alpha, ..d }.validate().expect_err("bad alpha");
        assert!(matches!(err, Error::Alpha(_)), "{alpha}");
        assert!(err.to_string().starts_with("alpha: expected"), "{err}");
    }
    for k in [0.0, -1.0, f64::NAN, f64::INFINITY, 1e5] {
        let err = Settings {
            prior_concentration: k,
            ..d
        }
        .validate()
        .expect_err("bad k");
        assert!(matches!(err, Error::PriorConcentration(_)), "{k}");
        assert!(
            err.to_string().starts_with("priorConcentration: expected"),
            "{err}"
        );
    }
    // Invalid settings are refused by update too, before anything changes.
    let mut state = State::default();
    let err = state
        .update(&Settings { alpha: 2.0, ..d }, Interval::default())
        .expect_err("bad alpha");
    assert_eq!(err, Error::Alpha(2.0));
}

#[test]
fn settings_cannot_change_mid_test() {
    let s = Settings::default();
    let mut state = State::default();
    let i = Interval {
        canary_events: 1,
        baseline_events: 9,
        canary_requests: 100,
        baseline_requests: 900,
    };
    state.update(&s, i).expect("first");
    for (changed, field) in [
        (Settings { alpha: 0.01, ..s }, "alpha"),
        (
            Settings {
                prior_concentration: 50.0,
                ..s
            },
            "priorConcentration",
        ),
        (
            Settings {
                direction: Direction::Either,
                ..s
            },
            "direction",
        ),
    ] {
        let err = state.update(&changed, i).expect_err("changed");
        assert!(
            matches!(err, Error::SettingChanged { field: f, .. } if f == field),
            "{err}"
        );
    }
    // minEvents may change.
    let v = state
        .update(&Settings { min_events: 5, ..s }, i)
        .expect("minEvents");
    assert_eq!(v.canary_events, 2);
}

#[test]
fn intervals_without_requests_on_a_side_or_without_events_change_no_evidence() {
    let s = Settings::default();
    let mut state = State::default();
    let v0 = state
        .update(
            &s,
            Interval {
                canary_events: 4,
                baseline_events: 6,
                canary_requests: 100,
                baseline_requests: 900,
            },
        )
        .expect("first");
    assert!(v0.e_value > 1.0);
    // No canary requests: ignored entirely.
    let v = state
        .update(
            &s,
            Interval {
                canary_events: 5,
                baseline_events: 6,
                canary_requests: 0,
                baseline_requests: 900,
            },
        )
        .expect("no canary requests");
    assert_eq!(v, v0);
    assert_eq!(state.ignored_intervals(), 1);
    // No events: the requests count, the evidence does not move.
    let v = state
        .update(
            &s,
            Interval {
                canary_events: 0,
                baseline_events: 0,
                canary_requests: 100,
                baseline_requests: 900,
            },
        )
        .expect("no events");
    assert_eq!(v.e_value, v0.e_value);
    assert_eq!(v.p_value, v0.p_value);
    assert_eq!(
        (v.canary_requests, v.baseline_requests),
        (200, 1800),
        "requests of an interval without events still count"
    );
    // An empty interval (e.g. the first scrape) is not an ignored one.
    state.update(&s, Interval::default()).expect("empty");
    assert_eq!(state.ignored_intervals(), 1);
}

#[test]
fn rate_ratio_and_p_value_follow_the_counts() {
    let s = Settings::default();
    let mut state = State::default();
    let v = state.update(&s, Interval::default()).expect("empty");
    assert_eq!(v.rate_ratio, None);
    assert_eq!((v.e_value, v.p_value), (1.0, 1.0));
    let v = state
        .update(
            &s,
            Interval {
                canary_events: 3,
                baseline_events: 0,
                canary_requests: 100,
                baseline_requests: 900,
            },
        )
        .expect("no baseline events");
    assert_eq!(v.rate_ratio, None, "undefined without baseline events");
    let v = state
        .update(
            &s,
            Interval {
                canary_events: 3,
                baseline_events: 18,
                canary_requests: 100,
                baseline_requests: 900,
            },
        )
        .expect("both");
    // (6 / 200) / (18 / 1800) = 3.
    let ratio = v.rate_ratio.expect("defined");
    assert!((ratio - 3.0).abs() < 1e-12, "{ratio}");
    // The previous look (3 canary events, none on the baseline) was stronger evidence.
    assert!(v.p_value <= (1.0 / v.e_value).min(1.0));
    assert!((v.e_value.ln() - v.log_e_value).abs() < 1e-12);

    // The p-value keeps the best evidence so far when the e-value falls back.
    let best = v.p_value;
    let v = state
        .update(
            &s,
            Interval {
                canary_events: 0,
                baseline_events: 60,
                canary_requests: 100,
                baseline_requests: 900,
            },
        )
        .expect("good news");
    assert!(v.e_value < 1.0 / best, "{} vs {}", v.e_value, 1.0 / best);
    assert_eq!(v.p_value, best);
}

fn one_step(state: &mut State, s: &Settings, canary: u64, baseline: u64) -> Verdict {
    state
        .update(
            s,
            Interval {
                canary_events: canary,
                baseline_events: baseline,
                canary_requests: 100,
                baseline_requests: 900,
            },
        )
        .expect("update")
}

#[test]
fn rejection_needs_the_threshold_the_direction_and_min_events() {
    // 20 canary and 20 baseline events at a 10% share: overwhelming evidence of an increase.
    let inc = settings(Direction::Increase, 20.0);
    let v = one_step(&mut State::default(), &inc, 20, 20);
    assert!(v.e_value >= 20.0 && v.decision == Decision::Reject, "{v:?}");
    // The same data with minEvents 41: not yet.
    let strict = Settings {
        min_events: 41,
        ..inc
    };
    let mut state = State::default();
    assert_eq!(
        one_step(&mut state, &strict, 20, 20).decision,
        Decision::Continue
    );
    assert_eq!(
        one_step(&mut state, &strict, 1, 0).decision,
        Decision::Reject
    );

    // Fewer canary events than expected never fail an Increase test, however many.
    let mut state = State::default();
    for _ in 0..50 {
        assert_eq!(
            one_step(&mut state, &inc, 0, 30).decision,
            Decision::Continue
        );
    }
    // ... but do fail a Decrease or an Either test.
    for direction in [Direction::Decrease, Direction::Either] {
        let s = settings(direction, 20.0);
        let mut state = State::default();
        let looks = (1..=50)
            .find(|_| one_step(&mut state, &s, 0, 30).decision == Decision::Reject)
            .expect("detected");
        println!("{direction}: no canary events for 30 x {looks} baseline events: rejected");
    }
    // A Decrease test ignores an increase.
    let s = settings(Direction::Decrease, 20.0);
    let mut state = State::default();
    for _ in 0..20 {
        assert_eq!(
            one_step(&mut state, &s, 20, 20).decision,
            Decision::Continue
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Restart: the state round-trips through JSON and the test goes on

#[test]
fn a_restored_state_continues_the_same_test() {
    let s = settings(Direction::Increase, 20.0);
    let mut rng = Rng(7);
    let intervals: Vec<Interval> = (0..80)
        .map(|j| {
            let (n_c, n_b) = shares(j, 80);
            Interval {
                canary_events: rng.poisson(n_c as f64 * 0.02),
                baseline_events: rng.poisson(n_b as f64 * 0.01),
                canary_requests: n_c,
                baseline_requests: n_b,
            }
        })
        .collect();
    let mut original = State::default();
    for i in &intervals[..30] {
        original.update(&s, *i).expect("update");
    }
    let json = serde_json::to_value(&original).expect("serialize");
    // camelCase and small.
    assert!(json.get("logLikelihood").is_some() && json.get("maxLogEValue").is_some());
    assert!(json.to_string().len() < 4000, "{}", json.to_string().len());
    let mut restored: State = serde_json::from_value(json).expect("deserialize");
    let mut rejected = false;
    for i in &intervals[30..] {
        let a = original.update(&s, *i).expect("original");
        let b = restored.update(&s, *i).expect("restored");
        assert_eq!(a.decision, b.decision);
        assert_eq!(
            (
                a.canary_events,
                a.baseline_events,
                a.canary_requests,
                a.baseline_requests
            ),
            (
                b.canary_events,
                b.baseline_events,
                b.canary_requests,
                b.baseline_requests
            )
        );
        assert!((a.log_e_value - b.log_e_value).abs() < 1e-9, "{a:?} {b:?}");
        assert!((a.p_value - b.p_value).abs() <= 1e-9 * a.p_value);
        rejected |= a.decision == Decision::Reject;
    }
    assert!(
        rejected,
        "a doubled error rate is detected within 80 looks here"
    );
    // Settings still bind the restored test.
    let err = restored
        .update(&Settings { alpha: 0.01, ..s }, intervals[0])
        .expect_err("changed");
    assert!(matches!(err, Error::SettingChanged { field: "alpha", .. }));
}

#[test]
fn a_tampered_state_is_an_error_not_a_panic() {
    let s = Settings::default();
    let mut state = State::default();
    one_step(&mut state, &s, 1, 9);
    let mut json = serde_json::to_value(&state).expect("serialize");
    json["logLikelihood"] = serde_json::json!([0.0, 1.0]);
    let mut bad: State = serde_json::from_value(json.clone()).expect("deserialize");
    assert!(matches!(
        bad.update(&s, Interval::default()),
        Err(Error::State {
            field: "logLikelihood",
            ..
        })
    ));
    json = serde_json::to_value(&state).expect("serialize");
    json["referenceShare"] = serde_json::json!(1.5);
    let mut bad: State = serde_json::from_value(json).expect("deserialize");
    assert!(matches!(
        bad.update(&s, Interval::default()),
        Err(Error::State {
            field: "referenceShare",
            ..
        })
    ));
}

// ---------------------------------------------------------------------------------------------
// Simulations (seeded)

/// SplitMix64: small, deterministic, good enough for simulations.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Poisson by multiplying uniforms (Knuth); fine for the small means used here.
    fn poisson(&mut self, mean: f64) -> u64 {
        assert!(mean < 60.0, "mean {mean} too large for this sampler");
        let limit = (-mean).exp();
        let mut k = 0;
        let mut p = self.uniform();
        while p > limit {
            k += 1;
            p *= self.uniform();
        }
        k
    }
}

/// Requests of look `j` of `looks`: the canary's share goes 5% -> 25% -> 50% in three steps,
/// the load follows a daily-like wave.
fn shares(j: usize, looks: usize) -> (u64, u64) {
    let load = 1.0 + 0.6 * (j as f64 / 9.0).sin();
    let total = (load * 50.0).round() as u64 * 20; // a multiple of 20: the shares are exact
    let share_percent = match 3 * j / looks {
        0 => 5,
        1 => 25,
        _ => 50,
    };
    let canary = total * share_percent / 100;
    (canary, total - canary)
}

/// Simulates `reps` good canaries (the same error rate per request as the baseline, a rate that
/// itself drifts with time) under changing shares, 100 looks each, and checks that the fraction
/// ever rejected stays <= alpha (plus three binomial standard deviations).
fn null_false_alarms(direction: Direction, reps: u32, seed: u64) {
    let looks = 100;
    let mut rng = Rng(seed);
    let s = settings(direction, 20.0);
    let mut rejected: u32 = 0;
    let mut events = 0;
    for _ in 0..reps {
        let mut state = State::default();
        for j in 0..looks {
            let (n_c, n_b) = shares(j, looks);
            // Error rate per request between 0.5% and 1.5%, the same for both versions.
            let rate = 0.01 * (1.0 + 0.5 * (j as f64 / 5.0).cos());
            let v = state
                .update(
                    &s,
                    Interval {
                        canary_events: rng.poisson(n_c as f64 * rate),
                        baseline_events: rng.poisson(n_b as f64 * rate),
                        canary_requests: n_c,
                        baseline_requests: n_b,
                    },
                )
                .expect("update");
            if v.decision == Decision::Reject {
                rejected += 1;
                break;
            }
            if j == looks - 1 {
                events += v.canary_events + v.baseline_events;
            }
        }
    }
    let rate = f64::from(rejected) / f64::from(reps);
    let bound = 0.05 + 3.0 * (0.05 * 0.95 / f64::from(reps)).sqrt();
    println!(
        "{direction}: {rejected}/{reps} null canaries rejected ({rate:.4}) over {looks} looks, \
         ~{} events each",
        events / u64::from(reps - rejected).max(1)
    );
    assert!(
        rate <= bound,
        "{direction}: false-alarm rate {rate} > {bound}"
    );
}

/// Good canaries are rarely rejected however often one looks: the one-sided test.
#[test]
fn null_canaries_are_rarely_rejected_however_often_one_looks() {
    null_false_alarms(Direction::Increase, 2000, 2024);
}

/// The same for the two-sided test (fewer canaries: its grid is twice as large).
#[test]
fn null_canaries_are_rarely_rejected_by_the_two_sided_test() {
    null_false_alarms(Direction::Either, 1000, 2025);
}

/// Bad canaries at a constant 10% share with 3x the error rate: the median number of events
/// (both versions) at rejection is close to the reference's 49.
#[test]
fn a_threefold_error_rate_is_detected_after_about_fifty_events() {
    let s = settings(Direction::Increase, 20.0);
    let mut rng = Rng(99);
    let mut detected_at: Vec<u64> = (0..400)
        .map(|_| {
            let mut state = State::default();
            loop {
                // About 2 events per look in all.
                let v = state
                    .update(
                        &s,
                        Interval {
                            canary_events: rng.poisson(0.1 * 3.0 * 1.6),
                            baseline_events: rng.poisson(0.9 * 1.6),
                            canary_requests: 100,
                            baseline_requests: 900,
                        },
                    )
                    .expect("update");
                if v.decision == Decision::Reject {
                    break v.canary_events + v.baseline_events;
                }
                assert!(
                    v.canary_events + v.baseline_events < 100_000,
                    "never detected"
                );
            }
        })
        .collect();
    detected_at.sort_unstable();
    let median = detected_at[detected_at.len() / 2];
    let p90 = detected_at[detected_at.len() * 9 / 10];
    println!(
        "ratio 3, share 10%, alpha 0.05, k 20: median {median} events, p90 {p90} (reference: 49)"
    );
    assert!((25..120).contains(&median), "median {median}");
}
