//! The AnalysisRun state machine: timing, classification, limits, dry runs, retention.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use rollgate_api::{AnalysisPhase, AnalysisRunSpec, AnalysisRunStatus};
use rollgate_engine::measure::{
    Measured, MetricValue, Outcome, Sample, plan, record, validate_template,
};
use serde_json::{Value, json};

use crate::measure_support::v;

fn t(secs: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + secs).expect("time")
}

fn spec(metric: Value) -> AnalysisRunSpec {
    let mut m = json!({"name": "error-rate", "successCondition": "result[0] < 0.05",
        "provider": {"prometheus": {"address": "http://127.0.0.1:9090",
            "query": "rate(errors{hash=\"{{args.hash}}\"}[1m])"}}});
    if let (Some(base), Value::Object(extra)) = (m.as_object_mut(), metric) {
        base.extend(extra);
    }
    serde_json::from_value(json!({"metrics": [m], "args": [{"name": "hash", "value": "abc"}]}))
        .expect("spec")
}

fn phase(s: &AnalysisRunStatus) -> AnalysisPhase {
    s.phase.unwrap_or(AnalysisPhase::Pending)
}

#[test]
fn one_measurement_without_interval_decides() {
    let s = spec(json!({}));
    let p = plan(&s, None, t(0));
    assert_eq!(p.due.len(), 1);
    let q = p.due[0].query.as_ref().expect("rendered");
    assert_eq!(q.query, "rate(errors{hash=\"abc\"}[1m])");
    let (st, requeue, _) = step(&s, None, t(0), v(0.01));
    assert_eq!(phase(&st), AnalysisPhase::Successful);
    assert_eq!(requeue, None);
    let (st, _, _) = step(&s, None, t(0), v(0.31));
    assert_eq!(phase(&st), AnalysisPhase::Failed);
    assert_eq!(
        st.message.as_deref(),
        Some(
            "metric \"error-rate\" failed: value [0.31] did not meet successCondition \
             \"result[0] < 0.05\" (1 failed > failureLimit 0)"
        )
    );
}

#[test]
fn interval_count_and_initial_delay_set_the_timing() {
    let s = spec(json!({"interval": "10s", "count": 3, "initialDelay": "5s"}));
    let (st, requeue, n) = step(&s, None, t(0), v(0.01));
    assert_eq!((n, requeue), (0, Some(Duration::from_secs(5))));
    let (st, requeue, n) = step(&s, Some(st), t(5), v(0.01));
    assert_eq!((n, requeue), (1, Some(Duration::from_secs(10))));
    let (st, _, n) = step(&s, Some(st), t(9), v(0.01));
    assert_eq!(n, 0, "not due before the interval");
    let (st, _, _) = step(&s, Some(st), t(15), v(0.01));
    assert_eq!(phase(&st), AnalysisPhase::Running);
    let (st, requeue, _) = step(&s, Some(st), t(25), v(0.01));
    assert_eq!((phase(&st), requeue), (AnalysisPhase::Successful, None));
    assert_eq!(st.metric_results[0].count, 3);
}

#[test]
fn failure_limit_tolerates_that_many_failures() {
    let s = spec(json!({"interval": "1s", "count": 5, "failureLimit": 1}));
    let (st, _, _) = step(&s, None, t(0), v(0.2));
    assert_eq!(phase(&st), AnalysisPhase::Running);
    let (st, _, _) = step(&s, Some(st), t(1), v(0.2));
    assert_eq!(phase(&st), AnalysisPhase::Failed);
}

#[test]
fn no_data_follows_the_policy() {
    let empty = Outcome::Value(MetricValue::Vector(vec![]));
    for (policy, want) in [
        (None, AnalysisPhase::Inconclusive),
        (Some("Inconclusive"), AnalysisPhase::Inconclusive),
        (Some("Fail"), AnalysisPhase::Failed),
        (Some("Pass"), AnalysisPhase::Successful),
    ] {
        let s = spec(policy.map_or(json!({}), |p| json!({"noDataPolicy": p})));
        let (st, _, _) = step(&s, None, t(0), empty.clone());
        assert_eq!(phase(&st), want, "{policy:?}");
        let m = &st.metric_results[0].measurements[0];
        assert!(
            m.message
                .as_deref()
                .unwrap_or_default()
                .starts_with("no data")
        );
    }
}

#[test]
fn errors_retry_and_only_consecutive_errors_past_the_limit_end_the_run() {
    let s = spec(json!({"interval": "2s", "count": 3, "consecutiveErrorLimit": 2}));
    let err = Outcome::ProviderError("Prometheus at http://127.0.0.1:9090 unreachable".into());
    let (st, _, _) = step(&s, None, t(0), err.clone());
    let (st, _, _) = step(&s, Some(st), t(2), err.clone());
    // A success resets the streak.
    let (st, _, _) = step(&s, Some(st), t(4), v(0.01));
    assert_eq!(st.metric_results[0].consecutive_error, 0);
    let (st, _, _) = step(&s, Some(st), t(6), err.clone());
    let (st, _, _) = step(&s, Some(st), t(8), err.clone());
    assert_eq!(phase(&st), AnalysisPhase::Running);
    let (st, requeue, _) = step(&s, Some(st), t(10), err);
    assert_eq!((phase(&st), requeue), (AnalysisPhase::Error, None));
    assert!(
        st.message
            .as_deref()
            .unwrap_or_default()
            .contains("unreachable (3 errors in a row"),
        "{:?}",
        st.message
    );
}

#[test]
fn dry_run_metrics_never_decide_and_retention_bounds_measurements() {
    let mut s = spec(json!({"interval": "1s", "count": 20}));
    s.dry_run = vec![serde_json::from_value(json!({"metricName": "error-rate"})).expect("dry")];
    s.measurement_retention =
        vec![serde_json::from_value(json!({"metricName": "error-rate", "limit": 3})).expect("r")];
    let mut st = None;
    for i in 0..20 {
        st = Some(step(&s, st, t(i), v(0.9)).0);
    }
    let st = st.expect("status");
    assert_eq!(
        phase(&st),
        AnalysisPhase::Successful,
        "a dry-run failure decides nothing"
    );
    assert_eq!(st.metric_results[0].phase, Some(AnalysisPhase::Failed));
    assert_eq!(st.metric_results[0].dry_run, Some(true));

    let mut s = spec(json!({"interval": "1s", "count": 20}));
    s.measurement_retention =
        vec![serde_json::from_value(json!({"metricName": "error-rate", "limit": 3})).expect("r")];
    let mut st = None;
    for i in 0..20 {
        st = Some(step(&s, st, t(i), v(0.01)).0);
    }
    let st = st.expect("status");
    assert_eq!(st.metric_results[0].count, 20);
    assert_eq!(
        st.metric_results[0].measurements.len(),
        3,
        "retention keeps the last 3"
    );
}

#[test]
fn terminate_ends_the_run_with_what_it_has() {
    let mut s = spec(json!({"interval": "1s"}));
    let (st, _, _) = step(&s, None, t(0), v(0.01));
    s.terminate = Some(true);
    let p = plan(&s, Some(&st), t(1));
    assert!(p.due.is_empty());
    assert_eq!(phase(&p.status), AnalysisPhase::Successful);
    // What the controller writes: the plan's status through `record` (nothing measured).
    let (st, requeue, measured) = step(&s, Some(st), t(5), v(0.01));
    assert_eq!(measured, 0);
    assert_eq!(phase(&st), AnalysisPhase::Successful, "{st:?}");
    assert_eq!(requeue, None, "a terminated run is not looked at again");
}

#[test]
fn failure_and_inconclusive_conditions() {
    let s = spec(json!({"successCondition": "result[0] < 0.05",
                        "failureCondition": "result[0] > 0.2"}));
    let (st, _, _) = step(&s, None, t(0), v(0.1));
    assert_eq!(phase(&st), AnalysisPhase::Inconclusive);
    let (st, _, _) = step(&s, None, t(0), v(0.3));
    assert_eq!(phase(&st), AnalysisPhase::Failed);
    // An evaluation error (index out of range) is an Error measurement, not a pass.
    let s = spec(json!({"successCondition": "result[2] < 0.05", "consecutiveErrorLimit": 0}));
    let (st, _, _) = step(&s, None, t(0), v(0.01));
    assert_eq!(phase(&st), AnalysisPhase::Error);
}

#[test]
fn a_missing_argument_is_an_error_measurement() {
    let mut s = spec(json!({"consecutiveErrorLimit": 0}));
    s.args.clear();
    let p = plan(&s, None, t(0));
    assert_eq!(
        p.due[0].query.as_ref().err().map(String::as_str),
        Some("argument \"hash\" has no value")
    );
}

#[test]
fn templates_are_validated_with_the_field_and_the_cause() {
    let t: rollgate_api::AnalysisTemplateSpec = serde_json::from_value(json!({"metrics": [
        {"name": "a", "interval": "often", "successCondition": "result[0] <",
         "noDataPolicy": "Ignore", "provider": {"prometheus": {"address": "", "query": "up"}}},
        {"name": "a", "provider": {}}],
        "dryRun": [{"metricName": "b"}]}))
    .expect("template");
    let problems = validate_template(&t);
    let text = problems.join("\n");
    for expected in [
        "metrics[0].interval: expected seconds or a duration such as 30s, 5m or 1h30m, got \"often\"",
        "metrics[0].noDataPolicy: expected Inconclusive, Fail or Pass, got \"Ignore\"",
        "metrics[0].successCondition: invalid CEL expression \"result[0] <\"",
        "metrics[0].provider.prometheus.address: required",
        "metrics[1].name: \"a\" is used twice",
        "metrics[1].provider: expected prometheus",
        "dryRun[0].metricName: no metric \"b\"",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
}

#[test]
fn more_than_one_measurement_needs_an_interval() {
    let template = |metric: Value| -> rollgate_api::AnalysisTemplateSpec {
        let mut m = json!({"name": "rate", "successCondition": "result[0] >= 0.95",
            "provider": {"prometheus": {"address": "http://127.0.0.1:9090", "query": "up"}}});
        if let (Some(m), Some(extra)) = (m.as_object_mut(), metric.as_object()) {
            m.extend(extra.clone());
        }
        serde_json::from_value(json!({"metrics": [m]})).expect("template")
    };
    for (case, metric) in [
        ("no interval", json!({"count": 1000})),
        ("interval 0s", json!({"interval": "0s", "count": 1000})),
    ] {
        let problems = validate_template(&template(metric));
        assert_eq!(
            problems,
            [
                "metrics[0].interval: required when count is more than 1 (count 1000 would query \
              1000 times back to back), expected a duration such as 30s"
            ],
            "{case}"
        );
    }
    for ok in [
        json!({"count": 1}),
        json!({"interval": "30s", "count": 3}),
        json!({"interval": "30s"}),
    ] {
        assert_eq!(
            validate_template(&template(ok.clone())),
            Vec::<String>::new(),
            "{ok}"
        );
    }
}

#[test]
fn a_huge_answer_makes_a_bounded_status() {
    // 1,000,000 samples (~50 MB as Prometheus JSON), measured more often than retention keeps.
    let huge = Outcome::Value(MetricValue::Vector(
        (0..1_000_000)
            .map(|i| Sample {
                labels: Default::default(),
                value: 0.123_456 + f64::from(i),
            })
            .collect(),
    ));
    let mut s = spec(json!({"interval": "1s", "count": 200,
        "successCondition": "result[0] < 1.0"}));
    s.measurement_retention =
        vec![serde_json::from_value(json!({"metricName": "*", "limit": 1000})).expect("r")];
    let mut st = None;
    for i in 0..25 {
        st = Some(step(&s, st, t(i), huge.clone()).0);
    }
    let st = st.expect("status");
    let r = &st.metric_results[0];
    assert_eq!(r.count, 25);
    assert_eq!(
        r.measurements.len(),
        rollgate_engine::measure::MAX_RETENTION,
        "at most MAX_RETENTION kept, whatever measurementRetention asks"
    );
    let value = r.measurements[0].value.clone().unwrap_or_default();
    assert!(
        value.starts_with("[0.1235, 1.1235, 2.1235")
            && value.ends_with("… (1000000 values in all)"),
        "{value}"
    );
    assert!(value.chars().count() < 300, "{value}");
    let bytes = serde_json::to_vec(&st).expect("json").len();
    assert!(bytes < 64 * 1024, "status of {bytes} bytes");
}

#[test]
fn a_long_provider_error_is_cut() {
    let s = spec(json!({"interval": "1s", "count": 3}));
    let error = Outcome::ProviderError("x".repeat(100_000));
    let (st, _, _) = step(&s, None, t(0), error);
    let message = st.metric_results[0].measurements[0]
        .message
        .clone()
        .unwrap_or_default();
    assert_eq!(
        message.chars().count(),
        rollgate_engine::measure::MAX_MESSAGE + 1
    );
    assert!(message.ends_with('…'));
}

#[test]
fn a_measurement_spans_from_the_query_to_the_answer() {
    let s = spec(json!({"interval": "1m", "count": 2}));
    let p = plan(&s, None, t(0));
    let d = record(
        &s,
        Some(&p.status),
        vec![Measured {
            metric: "error-rate".into(),
            outcome: v(0.01),
            started_at: t(0),
            finished_at: t(30),
        }],
        t(30),
    );
    let m = &d.status.metric_results[0].measurements[0];
    assert_eq!(m.started_at.as_ref().map(|x| x.0), Some(t(0)));
    assert_eq!(m.finished_at.as_ref().map(|x| x.0), Some(t(30)));
    // The next measurement is an interval after the answer came.
    assert_eq!(d.requeue_after, Some(Duration::from_secs(60)));
}

#[test]
fn an_over_budget_condition_is_an_error_measurement_naming_the_metric() {
    let s = spec(json!({"interval": "1s", "count": 3,
        "successCondition": "all(result, x, all(result, y, x <= y + 1.0))"}));
    let big = Outcome::Value(MetricValue::Vector(vec![
        Sample {
            labels: Default::default(),
            value: 0.5,
        };
        20_000
    ]));
    let (st, _, _) = step(&s, None, t(0), big);
    let m = &st.metric_results[0].measurements[0];
    assert_eq!(m.phase, Some(AnalysisPhase::Error));
    let message = m.message.clone().unwrap_or_default();
    assert!(
        message.starts_with(
            "metric \"error-rate\": \"all(result, x, all(result, y, x <= y + 1.0))\" is too \
             expensive for a result of 20000 values"
        ),
        "{message}"
    );
    assert_eq!(st.metric_results[0].error, 1);
    assert_eq!(st.metric_results[0].count, 0, "not a success nor a failure");
}

/// One reconcile of the run at `now`, every due metric measured with `outcome`.
fn step(
    s: &AnalysisRunSpec,
    status: Option<AnalysisRunStatus>,
    now: Timestamp,
    outcome: Outcome,
) -> (AnalysisRunStatus, Option<Duration>, usize) {
    crate::measure_support::measure_due(s, status.as_ref(), now, &outcome)
}
