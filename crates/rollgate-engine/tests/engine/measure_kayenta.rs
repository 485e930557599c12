//! `kayenta` metrics: validation naming each field, the rendered canary and baseline queries,
//! samples accumulating until the horizon, the judgement there (pass, marginal, fail, a
//! critical metric), errors that add no sample, NaN handling, and a restart from the
//! serialized status that continues towards the same horizon.

use k8s_openapi::jiff::Timestamp;
use rollgate_api::{AnalysisPhase, AnalysisRunSpec, AnalysisRunStatus, AnalysisTemplateSpec};
use rollgate_engine::measure::{MetricValue, Outcome, SamplePair, plan};
use rollgate_engine::measure::{sample_reading, validate_template};
use rollgate_engine::observed::Observed;
use serde_json::{Value, json};

use crate::measure_support::{last_metadata, phase};

const CANARY: &str = "c4n4ry";
const STABLE: &str = "st4bl3";

fn t(secs: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + secs).expect("time")
}

/// The query of the judged metric `name` (`-` in names are `_` in series names).
fn query(name: &str) -> String {
    let name = name.replace('-', "_");
    format!("sum(rate({name}{{pod_template_hash=\"{{{{args.hash}}}}\"}}[1m]))")
}

/// The judged metric `name` with `extra` merged over it.
fn judged(name: &str, extra: Value) -> Value {
    let mut m = json!({"name": name, "query": query(name)});
    if let (Some(base), Value::Object(extra)) = (m.as_object_mut(), extra) {
        base.extend(extra);
    }
    m
}

/// The `canary-score` metric judging `metrics` over a horizon of `count`; `extra` merged over
/// the metric (`kayenta` merged over its own).
fn metric(count: i64, metrics: Value, extra: Value) -> Value {
    let mut m = json!({"name": "canary-score", "interval": "1m", "count": count,
        "provider": {"prometheus": {"address": "http://127.0.0.1:9090",
            "headers": [{"key": "X-Scope-OrgID", "value": "{{args.tenant}}"}]}},
        "kayenta": {"metrics": metrics}});
    if let (Some(base), Value::Object(extra)) = (m.as_object_mut(), extra) {
        for (k, v) in extra {
            match (base.get_mut(&k), v) {
                (Some(Value::Object(b)), Value::Object(e)) if k == "kayenta" => b.extend(e),
                (_, v) => {
                    base.insert(k, v);
                }
            }
        }
    }
    m
}

/// One error-ratio metric, increase only, with an effect-size bound of 1.2.
fn errors_only() -> Value {
    json!([judged(
        "error-ratio",
        json!({"direction": "increase", "allowedIncrease": 1.2})
    )])
}

/// A run of the metric as the engine builds it.
fn spec(metric: Value) -> AnalysisRunSpec {
    serde_json::from_value(json!({
        "metrics": [metric],
        "args": [{"name": "hash", "value": CANARY}, {"name": "tenant", "value": "t1"}],
        "baselineArgs": [{"name": "hash", "value": STABLE}]
    }))
    .expect("spec")
}

/// A deterministic noisy value around `level`: ±10% following `seed` and the sample `i`.
fn noisy(level: f64, seed: u64, i: usize) -> f64 {
    let x = (i as u64)
        .wrapping_mul(6364136223846793005)
        .wrapping_add(seed.wrapping_mul(1442695040888963407));
    let u = ((x >> 33) % 1000) as f64 / 1000.0;
    level * (0.9 + 0.2 * u)
}

/// Measures once a minute, sample `i` of each metric being `readings(i)`, until the run is
/// decided or `looks` measurements were taken. Returns the status after each look.
fn run(
    s: &AnalysisRunSpec,
    looks: usize,
    readings: impl Fn(usize) -> Vec<SamplePair>,
) -> Vec<AnalysisRunStatus> {
    let mut status: Option<AnalysisRunStatus> = None;
    let mut out = Vec::new();
    for i in 0..looks {
        let (st, n) = step(
            s,
            status.as_ref(),
            t(60 * i as i64),
            &Outcome::Samples(readings(i)),
        );
        assert_eq!(n, 1, "one measurement due at every interval");
        out.push(st.clone());
        status = Some(st);
        if phase(&out[i]).is_completed() {
            break;
        }
    }
    out
}

/// An error ratio of 1% for the baseline and `ratio` times that for the canary, with noise.
fn error_ratio(ratio: f64) -> impl Fn(usize) -> Vec<SamplePair> {
    move |i| {
        vec![SamplePair {
            canary: noisy(0.01 * ratio, 7, i),
            baseline: noisy(0.01, 3, i),
        }]
    }
}

#[test]
fn plan_renders_each_query_for_the_canary_and_the_baseline() {
    let s = spec(metric(
        20,
        json!([
            judged("error-ratio", json!({})),
            judged("latency", json!({}))
        ]),
        json!({}),
    ));
    let p = plan(&s, None, t(0));
    assert_eq!(p.due.len(), 1);
    let q = p.due[0].samples.as_ref().expect("rendered queries");
    assert_eq!(q.len(), 2);
    for (q, name) in q.iter().zip(["error-ratio", "latency"]) {
        assert_eq!(q.name, name);
        assert_eq!(q.canary.query, query(name).replace("{{args.hash}}", CANARY));
        assert_eq!(
            q.baseline.query,
            query(name).replace("{{args.hash}}", STABLE)
        );
        for side in [&q.canary, &q.baseline] {
            assert_eq!(side.address, "http://127.0.0.1:9090");
            assert_eq!(side.headers, [("X-Scope-OrgID".into(), "t1".into())]);
            assert!(side.range.is_none());
        }
    }
    assert!(p.due[0].counters.is_none());
}

#[test]
fn a_run_without_baseline_arguments_cannot_measure_and_says_why() {
    let mut s = spec(metric(20, errors_only(), json!({})));
    s.baseline_args.clear();
    let p = plan(&s, None, t(0));
    assert!(p.due[0].samples.is_none());
    let e = p.due[0].query.clone().expect_err("no baseline");
    assert!(
        e.starts_with("kayenta.metrics[0].query: the baseline's query is the canary's"),
        "{e}"
    );
}

#[test]
fn samples_accumulate_until_the_horizon_then_a_bad_canary_fails() {
    let s = spec(metric(20, errors_only(), json!({})));
    let statuses = run(&s, 40, error_ratio(3.0));
    assert_eq!(statuses.len(), 20, "judged at the horizon, not before");
    for (i, st) in statuses[..19].iter().enumerate() {
        assert_eq!(phase(st), AnalysisPhase::Running, "look {i}");
        let m = st.metric_results[0].measurements.last().expect("measured");
        assert_eq!(m.phase, Some(AnalysisPhase::Successful), "look {i}");
        assert_eq!(m.value, None);
        assert_eq!(m.metadata["samples"], (i + 1).to_string());
        assert_eq!(m.metadata["horizon"], "20");
        assert!(!m.metadata.contains_key("score"), "{:?}", m.metadata);
    }
    let last = statuses.last().expect("measured");
    assert_eq!(phase(last), AnalysisPhase::Failed, "{last:?}");
    let r = &last.metric_results[0];
    assert_eq!((r.count, r.successful, r.failed), (20, 19, 1));
    let md = last_metadata(last);
    assert_eq!(md["samples"], "20");
    assert_eq!(md["score"], "0");
    assert_eq!(md["result"], "Fail");
    assert_eq!(md["error-ratio.classification"], "High");
    let effect: f64 = md["error-ratio.effectSize"].parse().expect("a number");
    assert!((2.5..3.5).contains(&effect), "{md:?}");
    let p: f64 = md["error-ratio.pValue"].parse().expect("a number");
    assert!(p < 0.02, "{md:?}");
    let m = r.measurements.last().expect("measured");
    assert_eq!(m.value.as_deref(), Some("0"), "the value is the score");
    let msg = last.message.clone().unwrap_or_default();
    assert!(
        msg.starts_with(
            "metric \"canary-score\" failed: the canary failed: score 0 < marginal 75; \
             error-ratio High (effect size "
        ),
        "{msg}"
    );
    assert!(!msg.contains("failureLimit"), "{msg}");
    // Decided: nothing more is due.
    assert!(plan(&s, Some(last), t(100_000)).due.is_empty());
}

#[test]
fn a_canary_like_the_baseline_passes_at_the_horizon() {
    let s = spec(metric(20, errors_only(), json!({})));
    let statuses = run(&s, 40, error_ratio(1.0));
    assert_eq!(statuses.len(), 20);
    let last = statuses.last().expect("measured");
    assert_eq!(phase(last), AnalysisPhase::Successful, "{last:?}");
    let r = &last.metric_results[0];
    assert_eq!((r.count, r.successful, r.failed), (20, 20, 0));
    let md = last_metadata(last);
    assert_eq!(md["score"], "100");
    assert_eq!(md["result"], "Pass");
    assert_eq!(md["error-ratio.classification"], "Pass");
    let msg = r.message.clone().unwrap_or_default();
    assert!(
        msg.starts_with(
            "metric \"canary-score\" passed: the canary passed: score 100 >= pass 95; \
             error-ratio Pass"
        ),
        "{msg}"
    );
}

/// Five metrics of one group; the canary's `error-ratio` is three times the baseline's, the
/// others alike. `error-ratio` gets `extra`.
fn five(extra: Value) -> Value {
    let mut metrics = vec![judged(
        "error-ratio",
        merge(json!({"direction": "increase"}), extra),
    )];
    for name in ["p50", "p90", "p99", "cpu"] {
        metrics.push(judged(name, json!({})));
    }
    Value::Array(metrics)
}

fn merge(mut a: Value, b: Value) -> Value {
    if let (Some(a), Value::Object(b)) = (a.as_object_mut(), b) {
        a.extend(b);
    }
    a
}

fn five_readings(i: usize) -> Vec<SamplePair> {
    let mut v = vec![SamplePair {
        canary: noisy(0.03, 7, i),
        baseline: noisy(0.01, 3, i),
    }];
    for seed in 1..=4 {
        let same = noisy(100.0 * seed as f64, seed, i);
        v.push(SamplePair {
            canary: same,
            baseline: same,
        });
    }
    v
}

#[test]
fn a_score_between_the_thresholds_is_inconclusive() {
    // 4 of 5 pass: 80, between marginal 75 and pass 95.
    let s = spec(metric(10, five(json!({})), json!({})));
    let statuses = run(&s, 20, five_readings);
    let last = statuses.last().expect("measured");
    assert_eq!(statuses.len(), 10);
    assert_eq!(phase(last), AnalysisPhase::Inconclusive, "{last:?}");
    let r = &last.metric_results[0];
    assert_eq!((r.count, r.successful, r.inconclusive), (10, 9, 1));
    let md = last_metadata(last);
    assert_eq!(
        (md["score"].as_str(), md["result"].as_str()),
        ("80", "Marginal")
    );
    assert_eq!(md["error-ratio.classification"], "High");
    assert_eq!(md["p99.classification"], "Pass");
    let msg = last.message.clone().unwrap_or_default();
    assert!(
        msg.starts_with(
            "metric \"canary-score\" inconclusive: the canary is marginal: score 80 < pass 95 \
             and >= marginal 75; error-ratio High"
        ),
        "{msg}"
    );
    assert!(!msg.contains("inconclusiveLimit"), "{msg}");
    // The same judgement with lower thresholds passes.
    let s = spec(metric(
        10,
        five(json!({})),
        json!({"kayenta": {"scoreThresholds": {"pass": 80, "marginal": 50}}}),
    ));
    let last = run(&s, 20, five_readings).pop().expect("measured");
    assert_eq!(phase(&last), AnalysisPhase::Successful, "{last:?}");
}

#[test]
fn a_critical_metric_fails_the_run_whatever_the_others_score() {
    let s = spec(metric(10, five(json!({"critical": true})), json!({})));
    let last = run(&s, 20, five_readings).pop().expect("measured");
    assert_eq!(phase(&last), AnalysisPhase::Failed, "{last:?}");
    let md = last_metadata(&last);
    assert_eq!((md["score"].as_str(), md["result"].as_str()), ("0", "Fail"));
    let msg = last.message.clone().unwrap_or_default();
    assert!(
        msg.contains("(critical metric \"error-ratio\" failed: the score is 0)"),
        "{msg}"
    );
    // A critical bound above the canary's effect size: only a High, scored 80.
    let s = spec(metric(
        10,
        five(json!({"critical": true, "criticalIncrease": 5.0})),
        json!({}),
    ));
    let last = run(&s, 20, five_readings).pop().expect("measured");
    assert_eq!(phase(&last), AnalysisPhase::Inconclusive, "{last:?}");
}

#[test]
fn errors_add_no_sample_and_never_fail_the_judgement() {
    let s = spec(metric(
        5,
        errors_only(),
        json!({"consecutiveErrorLimit": 2}),
    ));
    let bad = error_ratio(3.0);
    let down = Outcome::ProviderError("Prometheus at http://127.0.0.1:9090 unreachable".into());
    let (st, _) = step(&s, None, t(0), &Outcome::Samples(bad(0)));
    let before = st.metric_results[0].kayenta.clone();
    assert!(
        before.is_some(),
        "the samples are stored in the metric's result"
    );
    let (st, _) = step(&s, Some(&st), t(60), &down);
    let r = &st.metric_results[0];
    assert_eq!((r.count, r.error, r.consecutive_error), (1, 1, 1));
    assert_eq!(r.kayenta, before, "an error adds no sample");
    assert_eq!(phase(&st), AnalysisPhase::Running);
    // A reading for another number of metrics is an error too.
    let (st, _) = step(&s, Some(&st), t(120), &Outcome::Samples(vec![]));
    let r = &st.metric_results[0];
    assert_eq!(r.kayenta, before);
    let msg = r.measurements.last().and_then(|m| m.message.clone());
    assert_eq!(
        msg.as_deref(),
        Some("metric \"canary-score\": expected a reading of each of the 1 metrics, got 0")
    );
    // Four more samples reach the horizon of 5: the errors did not count towards it.
    let mut st = st;
    for i in 1..5 {
        st = step(
            &s,
            Some(&st),
            t(180 + 60 * i as i64),
            &Outcome::Samples(bad(i)),
        )
        .0;
    }
    assert_eq!(phase(&st), AnalysisPhase::Failed, "{st:?}");
    let r = &st.metric_results[0];
    assert_eq!((r.count, r.error, r.failed), (5, 2, 1));
    assert_eq!(last_metadata(&st)["samples"], "5");
    // Errors in a row beyond consecutiveErrorLimit: the run is an Error, never Failed.
    let (mut st, _) = step(&s, None, t(0), &Outcome::Samples(bad(0)));
    for i in 1..=3 {
        st = step(&s, Some(&st), t(60 * i), &down).0;
    }
    assert_eq!(phase(&st), AnalysisPhase::Error);
    assert_eq!(st.metric_results[0].failed, 0);
}

#[test]
fn a_value_or_counters_for_a_kayenta_metric_and_samples_for_another_are_errors() {
    let s = spec(metric(5, errors_only(), json!({})));
    let (st, _) = step(&s, None, t(0), &Outcome::Value(MetricValue::Scalar(1.0)));
    let m = st.metric_results[0].measurements[0].clone();
    assert_eq!(m.phase, Some(AnalysisPhase::Error));
    assert!(st.metric_results[0].kayenta.is_none());
    let plain: AnalysisRunSpec = serde_json::from_value(json!({"metrics": [{"name": "m",
        "successCondition": "result[0] < 1",
        "provider": {"prometheus": {"address": "http://p:9090", "query": "up"}}}]}))
    .expect("spec");
    let (st, _) = step(&plain, None, t(0), &Outcome::Samples(error_ratio(1.0)(0)));
    let m = st.metric_results[0].measurements[0].clone();
    assert_eq!(m.phase, Some(AnalysisPhase::Error));
    assert!(
        m.message
            .unwrap_or_default()
            .contains("kayenta samples recorded for a metric that is not kayenta")
    );
}

#[test]
fn no_data_is_a_nan_sample_removed_or_replaced_by_zero() {
    // The canary's errors have no series (no error at all) every other interval.
    let readings = |i: usize| {
        vec![SamplePair {
            canary: if i.is_multiple_of(2) { f64::NAN } else { 0.0 },
            baseline: 0.0,
        }]
    };
    let removed = spec(metric(6, errors_only(), json!({})));
    let last = run(&removed, 10, readings).pop().expect("measured");
    assert_eq!(phase(&last), AnalysisPhase::Successful, "{last:?}");
    let md = last_metadata(&last);
    assert_eq!(md["samples"], "6", "NaN samples count towards the horizon");
    // Removed: 3 canary zeros against 6 baseline zeros, one value in all.
    assert_eq!(md["error-ratio.classification"], "Pass");
    // Every canary sample without data: NoData, which a metric that must have data fails.
    let missing = |_: usize| {
        vec![SamplePair {
            canary: f64::NAN,
            baseline: 0.01,
        }]
    };
    let must = spec(metric(
        4,
        json!([judged("error-ratio", json!({"mustHaveData": true}))]),
        json!({}),
    ));
    let last = run(&must, 10, missing).pop().expect("measured");
    assert_eq!(phase(&last), AnalysisPhase::Failed, "{last:?}");
    let md = last_metadata(&last);
    assert_eq!(md["error-ratio.classification"], "NoData");
    assert!(
        last.message
            .clone()
            .unwrap_or_default()
            .contains("error-ratio NoData (no canary data)"),
        "{last:?}"
    );
    // Replaced by 0: the canary's zeros against the baseline's 1%: Low, which `either` fails.
    let replaced = spec(metric(
        4,
        json!([judged("error-ratio", json!({"nanStrategy": "replace"}))]),
        json!({}),
    ));
    let last = run(&replaced, 10, missing).pop().expect("measured");
    let md = last_metadata(&last);
    assert_eq!(md["error-ratio.classification"], "Low", "{md:?}");
    assert_eq!(phase(&last), AnalysisPhase::Failed);
}

#[test]
fn a_restarted_controller_continues_towards_the_same_horizon() {
    let s = spec(metric(12, errors_only(), json!({})));
    let readings = error_ratio(3.0);
    let straight = run(&s, 40, &readings);
    assert_eq!(straight.len(), 12);
    // The same run, with the status written to the API server (JSON) and read back by a new
    // controller after every look.
    let mut status: Option<AnalysisRunStatus> = None;
    for (i, want) in straight.iter().enumerate() {
        let read: Option<AnalysisRunStatus> = status.as_ref().map(|st| {
            let text = serde_json::to_string(st).expect("serializable");
            serde_json::from_str(&text).expect("deserializable")
        });
        let (st, _) = step(
            &s,
            read.as_ref(),
            t(60 * i as i64),
            &Outcome::Samples(readings(i)),
        );
        assert_eq!(st, *want, "look {i}");
        status = Some(st);
    }
    let last = status.expect("measured");
    assert_eq!(phase(&last), AnalysisPhase::Failed);
    assert_eq!(last_metadata(&last)["samples"], "12");
    // The judgement used every stored sample: without them, the last measurement alone would
    // be judged (and one sample per side gives no p-value below 0.02).
    let md = last_metadata(&last);
    let p: f64 = md["error-ratio.pValue"].parse().expect("a number");
    assert!(p < 0.02, "{md:?}");
}

#[test]
fn answers_are_read_as_one_number_each() {
    assert!(sample_reading(&MetricValue::Vector(vec![])).is_ok_and(f64::is_nan));
    assert!(sample_reading(&MetricValue::Scalar(f64::NEG_INFINITY)).is_err());
}

/// The problems of a template holding `metric`.
fn problems(metric: Value) -> Vec<String> {
    let t: AnalysisTemplateSpec = serde_json::from_value(json!({
        "metrics": [metric],
        "args": [{"name": "hash"}, {"name": "tenant", "value": "t1"}]
    }))
    .expect("template");
    validate_template(&t)
}

#[test]
fn the_example_metric_is_valid() {
    assert_eq!(
        problems(metric(20, errors_only(), json!({}))),
        Vec::<String>::new()
    );
    assert_eq!(
        problems(metric(
            20,
            five(json!({"critical": true, "group": "errors", "weight": 60})),
            json!({"kayenta": {"scoreThresholds": {"pass": 90, "marginal": 70}}})
        )),
        Vec::<String>::new()
    );
}

#[test]
fn validation_names_each_field_of_a_kayenta_metric() {
    assert_eq!(
        problems(metric(20, json!([]), json!({}))),
        ["metrics[0].kayenta.metrics: expected at least one metric (a name and a query)"]
    );
    assert_eq!(
        problems(metric(
            20,
            json!([
                judged("a", json!({"direction": "up", "nanStrategy": "zero"})),
                judged("a", json!({"query": ""})),
                judged("b", json!({"query": "sum(rate(x[5m]) by ("})),
                judged("c", json!({"query": "sum(errors_total)"})),
                judged(
                    "d",
                    json!({"query": "errors_total{h=\"{{args.hash}}\"}[5m]"})
                ),
                judged("e", json!({"allowedIncrease": 0.5})),
                judged(
                    "f",
                    json!({"criticalDecrease": 0.9, "allowedDecrease": 0.8})
                ),
                judged("", json!({}))
            ]),
            json!({})
        )),
        [
            "metrics[0].kayenta.metrics[0].direction: expected increase, decrease or either, \
             got \"up\""
                .to_string(),
            "metrics[0].kayenta.metrics[0].nanStrategy: expected remove or replace, got \"zero\""
                .to_string(),
            "metrics[0].kayenta.metrics[1].name: \"a\" is used twice".to_string(),
            "metrics[0].kayenta.metrics[1].query: required, expected a PromQL query returning \
             one number such as \
             sum(rate(http_requests_total{code=~\"5..\",pod_template_hash=\"{{args.hash}}\"}[1m]))"
                .to_string(),
            format!(
                "metrics[0].kayenta.metrics[2].query: {}",
                rollgate_engine::measure::check_promql("sum(rate(x[5m]) by (")
                    .expect_err("invalid")
            ),
            "metrics[0].kayenta.metrics[3].query: expected an {{args.NAME}} placeholder that \
             selects the revision (e.g. pod_template_hash=\"{{args.hash}}\" with \
             podTemplateHashValue: Latest), found none: the canary and the baseline would read \
             the same value"
                .to_string(),
            "metrics[0].kayenta.metrics[4].query: expected a query returning one number (a \
             scalar or a one-sample vector), got a range vector"
                .to_string(),
            "metrics[0].kayenta.metrics[5].allowedIncrease: expected a finite ratio >= 1, got 0.5"
                .to_string(),
            "metrics[0].kayenta.metrics[6].criticalDecrease: expected a finite ratio in (0, \
             allowedDecrease (0.8)], got 0.9"
                .to_string(),
            "metrics[0].kayenta.metrics[7].name: expected a non-empty metric name".to_string(),
        ]
    );
    assert_eq!(
        problems(metric(
            20,
            errors_only(),
            json!({"kayenta": {"scoreThresholds": {"pass": 70, "marginal": 80}}})
        )),
        [
            "metrics[0].kayenta.scoreThresholds: expected 0 <= marginal <= pass <= 100, got \
             marginal 80 and pass 70"
        ]
    );
    assert_eq!(
        problems(metric(
            20,
            json!([
                judged("a", json!({"group": "errors", "weight": 60})),
                judged("b", json!({"group": "errors", "weight": 50}))
            ]),
            json!({})
        )),
        [
            "metrics[0].kayenta.metrics[1].weight: expected one weight for group \"errors\", its \
             metrics give 60 and 50"
        ]
    );
    assert_eq!(
        problems(metric(
            20,
            json!([
                judged("a", json!({"group": "errors", "weight": 60})),
                judged("b", json!({"group": "latency", "weight": 50}))
            ]),
            json!({})
        )),
        [
            "metrics[0].kayenta.metrics[].weight: expected group weights summing to 100 when \
             every group has a weight, got 110"
        ]
    );
    assert_eq!(
        problems(metric(
            20,
            json!([judged("a", json!({"query": "sum(e{h=\"{{args.nope}}\"})"}))]),
            json!({})
        )),
        [
            "metrics[0].kayenta.metrics[0].query: {{args.nope}} names no argument of the \
             template, expected one of args[].name (hash, tenant)"
        ]
    );
}

#[test]
fn the_horizons_the_readme_gives_are_the_judges() {
    use rollgate_engine::judge::kayenta::horizon_for_ratio;
    // README, "Comparing the canary with the stable revision": 80% power.
    for (ratio, cv, n) in [
        (1.5, 0.25, 15),
        (1.5, 0.5, 39),
        (2.0, 0.5, 15),
        (1.5, 1.0, 136),
    ] {
        assert_eq!(
            horizon_for_ratio(ratio, cv, 0.8),
            Ok(n),
            "{ratio}x, cv {cv}"
        );
    }
    assert_eq!(horizon_for_ratio(2.0, 1.0, 0.8), Ok(39));
}

#[test]
fn the_horizon_must_be_chosen_in_advance_and_fit_in_the_status() {
    let mut m = metric(20, errors_only(), json!({}));
    m.as_object_mut().map(|o| o.remove("count"));
    let p = problems(m);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].starts_with(
            "metrics[0].count: required for a kayenta metric, expected the fixed horizon"
        ),
        "{p:?}"
    );
    assert!(p[0].contains("README"), "{p:?}");
    assert_eq!(
        problems(metric(0, errors_only(), json!({}))),
        [
            "metrics[0].count: expected a horizon of at least 1 measurement for a kayenta metric, \
          got 0"
        ]
    );
    let many: Vec<Value> = (0..5)
        .map(|i| judged(&format!("m{i}"), json!({})))
        .collect();
    assert_eq!(
        problems(metric(1000, Value::Array(many), json!({}))),
        [
            "metrics[0].count: expected count × the 5 kayenta metrics to be at most 4000 (every \
             sample is kept in the run's status until the horizon), got count 1000"
        ]
    );
}

#[test]
fn validation_refuses_what_a_kayenta_metric_does_not_use() {
    let p = problems(metric(
        20,
        errors_only(),
        json!({"successCondition": "result[0] < 1", "failureLimit": 1, "noDataPolicy": "Pass",
            "sequential": {"events": query("e"), "requests": query("r")},
            "provider": {"prometheus": {"address": "http://127.0.0.1:9090", "query": "up",
                "rangeQuery": {"start": "now() - 5m", "step": "1m"}}}}),
    ));
    let fields: Vec<&str> = p
        .iter()
        .map(|p| p.split(':').next().unwrap_or_default())
        .collect();
    assert_eq!(
        fields,
        [
            // As a sequential metric (which takes a noDataPolicy), then as a kayenta one.
            "metrics[0].successCondition",
            "metrics[0].failureLimit",
            "metrics[0].kayenta",
            "metrics[0].successCondition",
            "metrics[0].failureLimit",
            "metrics[0].noDataPolicy",
            "metrics[0].provider.prometheus.query",
            "metrics[0].provider.prometheus.rangeQuery"
        ],
        "{p:?}"
    );
    assert!(
        p[2].contains("expected sequential or kayenta, found both"),
        "{p:?}"
    );
    assert!(p[4].contains("not used by a kayenta metric"), "{p:?}");
    // Without sequential: the provider's query is refused as a kayenta metric's.
    let p = problems(metric(
        20,
        errors_only(),
        json!({"provider": {"prometheus": {"address": "http://127.0.0.1:9090", "query": "up"}}}),
    ));
    assert_eq!(
        p,
        [
            "metrics[0].provider.prometheus.query: not used by a kayenta metric (its queries \
             are kayenta.metrics[].query), expected none"
        ]
    );
}

#[test]
fn a_run_built_for_a_kayenta_metric_takes_the_stable_hash_for_the_baseline() {
    let template: AnalysisTemplateSpec = serde_json::from_value(json!({
        "metrics": [metric(20, errors_only(), json!({}))],
        "args": [{"name": "hash"}, {"name": "tenant", "value": "t1"}]
    }))
    .expect("template");
    let mut observed = Observed::default();
    observed
        .templates
        .insert((false, "score".to_string()), template);
    let rollout: rollgate_api::Rollout = serde_json::from_value(rollgate_test_support::rollout(
        "web",
        "app:2",
        json!({"canary": {}}),
        json!({}),
    ))
    .expect("rollout");
    let analysis: rollgate_api::RolloutAnalysis = serde_json::from_value(json!({
        "templates": [{"templateName": "score"}],
        "args": [{"name": "hash", "valueFrom": {"podTemplateHashValue": "Latest"}}]
    }))
    .expect("analysis");
    let run = rollgate_engine::analysis::build_run_spec(
        &analysis,
        &observed,
        &rollout,
        Some(STABLE),
        CANARY,
    );
    let baseline: Vec<(String, Option<String>)> = run
        .baseline_args
        .iter()
        .map(|a| (a.name.clone(), a.value.clone()))
        .collect();
    assert_eq!(baseline, [("hash".to_string(), Some(STABLE.to_string()))]);
    let p = plan(&run, None, t(0));
    let q = p.due[0].samples.as_ref().expect("rendered");
    assert!(q[0].baseline.query.contains(STABLE), "{q:?}");
}

/// One reconcile at `now`: every due measurement gets `outcome`. Returns the status and how
/// many were due.
fn step(
    s: &AnalysisRunSpec,
    status: Option<&AnalysisRunStatus>,
    now: Timestamp,
    outcome: &Outcome,
) -> (AnalysisRunStatus, usize) {
    let (status, _, n) = crate::measure_support::measure_due(s, status, now, outcome);
    (status, n)
}
