//! `sequential` metrics: validation, the four rendered counter queries, the test run over
//! successive measurements (rejection, success at `count`, counter resets, errors, queries
//! without data, a run without evidence), and a restart from the serialized status that
//! continues the same test.

use std::collections::BTreeMap;

use k8s_openapi::jiff::Timestamp;
use rollgate_api::{AnalysisPhase, AnalysisRunSpec, AnalysisRunStatus, AnalysisTemplateSpec};
use rollgate_engine::judge::sequential::Readings;
use rollgate_engine::measure::{
    CounterReadings, MetricValue, Outcome, Sample, counter_reading, plan, validate_template,
};
use rollgate_engine::observed::Observed;
use serde_json::{Value, json};

use crate::measure_support::{last_metadata, phase};

const CANARY: &str = "c4n4ry";
const STABLE: &str = "st4bl3";

fn t(secs: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + secs).expect("time")
}

/// The `errors` metric: `extra` merged over it (`sequential` merged over its own).
fn metric(extra: Value) -> Value {
    let mut m = json!({"name": "errors", "interval": "15s",
        "provider": {"prometheus": {"address": "http://127.0.0.1:9090",
            "headers": [{"key": "X-Scope-OrgID", "value": "{{args.tenant}}"}]}},
        "sequential": {
            "events": "sum(http_request_errors_total{pod_template_hash=\"{{args.hash}}\"})",
            "requests": "sum(http_requests_total{pod_template_hash=\"{{args.hash}}\"})",
            "alpha": 0.01, "priorConcentration": 20, "direction": "increase"}});
    if let (Some(base), Value::Object(extra)) = (m.as_object_mut(), extra) {
        for (k, v) in extra {
            match (base.get_mut(&k), v) {
                (Some(Value::Object(b)), Value::Object(e)) if k == "sequential" => b.extend(e),
                (_, v) => {
                    base.insert(k, v);
                }
            }
        }
    }
    m
}

/// A run of the metric as the engine builds it: the canary's hash in `args`, the stable one
/// in `baselineArgs`.
fn spec(extra: Value) -> AnalysisRunSpec {
    serde_json::from_value(json!({
        "metrics": [metric(extra)],
        "args": [{"name": "hash", "value": CANARY}, {"name": "tenant", "value": "t1"}],
        "baselineArgs": [{"name": "hash", "value": STABLE}]
    }))
    .expect("spec")
}

/// Cumulative counters of both revisions.
#[derive(Debug, Clone, Copy, Default)]
struct Traffic {
    canary_requests: f64,
    canary_events: f64,
    baseline_requests: f64,
    baseline_events: f64,
}

impl Traffic {
    /// One interval: the canary serves `canary` requests of which `canary_errors` fail, the
    /// baseline `baseline` of which `baseline_errors`.
    fn add(&mut self, canary: f64, canary_errors: f64, baseline: f64, baseline_errors: f64) {
        self.canary_requests += canary;
        self.canary_events += canary_errors;
        self.baseline_requests += baseline;
        self.baseline_events += baseline_errors;
    }

    fn readings(&self) -> Outcome {
        Outcome::Counters(
            Readings {
                canary_events: self.canary_events,
                canary_requests: self.canary_requests,
                baseline_events: self.baseline_events,
                baseline_requests: self.baseline_requests,
            }
            .into(),
        )
    }

    /// [`Traffic::readings`] with the canary's events query returning no series.
    fn without_canary_events(&self) -> Outcome {
        Outcome::Counters(CounterReadings {
            canary_events: None,
            ..self.counter_readings()
        })
    }

    fn counter_readings(&self) -> CounterReadings {
        match self.readings() {
            Outcome::Counters(r) => r,
            _ => CounterReadings::default(),
        }
    }
}

/// Measures every 15 s with the canary at 10% of 1000 requests per interval, the baseline
/// failing 1% and the canary `canary_rate`, until the run is decided or `looks` measurements
/// were taken. Returns the status after each look.
fn run(s: &AnalysisRunSpec, canary_rate: f64, looks: usize) -> Vec<AnalysisRunStatus> {
    let mut traffic = Traffic::default();
    let mut status: Option<AnalysisRunStatus> = None;
    let mut out = Vec::new();
    for i in 0..looks {
        if i > 0 {
            traffic.add(100.0, (100.0 * canary_rate).round(), 900.0, 9.0);
        }
        let (st, n) = step(s, status.as_ref(), t(15 * i as i64), &traffic.readings());
        assert_eq!(n, 1, "one measurement due at every interval");
        out.push(st.clone());
        status = Some(st);
        if phase(&out[i]).is_completed() {
            break;
        }
    }
    out
}

#[test]
fn plan_renders_events_and_requests_for_the_canary_and_the_baseline() {
    let s = spec(json!({}));
    let p = plan(&s, None, t(0));
    assert_eq!(p.due.len(), 1);
    let c = p.due[0].counters.as_ref().expect("four queries");
    assert_eq!(
        c.canary_events.query,
        format!("sum(http_request_errors_total{{pod_template_hash=\"{CANARY}\"}})")
    );
    assert_eq!(
        c.canary_requests.query,
        format!("sum(http_requests_total{{pod_template_hash=\"{CANARY}\"}})")
    );
    assert_eq!(
        c.baseline_events.query,
        format!("sum(http_request_errors_total{{pod_template_hash=\"{STABLE}\"}})")
    );
    assert_eq!(
        c.baseline_requests.query,
        format!("sum(http_requests_total{{pod_template_hash=\"{STABLE}\"}})")
    );
    for (_, q) in c.all() {
        assert_eq!(q.address, "http://127.0.0.1:9090");
        assert_eq!(q.headers, [("X-Scope-OrgID".into(), "t1".into())]);
        assert!(q.range.is_none());
    }
}

#[test]
fn a_run_without_baseline_arguments_cannot_measure_and_says_why() {
    let mut s = spec(json!({"consecutiveErrorLimit": 0}));
    s.baseline_args.clear();
    let p = plan(&s, None, t(0));
    assert!(p.due[0].counters.is_none());
    let e = p.due[0].query.clone().expect_err("no baseline");
    assert!(e.contains("the baseline's queries are the canary's"), "{e}");
    let (st, _) = step(&s, None, t(0), &Outcome::ProviderError(e));
    assert_eq!(phase(&st), AnalysisPhase::Error);
}

#[test]
fn a_canary_with_three_times_the_errors_fails_after_a_few_looks() {
    let s = spec(json!({}));
    let statuses = run(&s, 0.03, 40);
    let last = statuses.last().expect("measured");
    assert_eq!(phase(last), AnalysisPhase::Failed, "{last:?}");
    let looks = last.metric_results[0].count;
    // 3 canary errors against 9 baseline errors per interval: the evidence builds up within a
    // handful of intervals, far from the 40 allowed.
    assert!((3..=15).contains(&looks), "rejected after {looks} looks");
    let r = &last.metric_results[0];
    assert_eq!((r.failed, r.successful), (1, looks - 1), "{r:?}");
    let md = last_metadata(last);
    let e_value: f64 = md["eValue"].parse().expect("a number");
    assert!(e_value >= 100.0, "{md:?}");
    let ratio: f64 = md["rateRatio"].parse().expect("a number");
    assert!((ratio - 3.0).abs() < 1e-9, "{md:?}");
    assert_eq!(md["canaryRequests"], ((looks - 1) * 100).to_string());
    assert_eq!(md["canaryEvents"], ((looks - 1) * 3).to_string());
    assert_eq!(md["baselineEvents"], ((looks - 1) * 9).to_string());
    let p: f64 = md["pValue"].parse().expect("a number");
    assert!(p <= 0.01, "{md:?}");
    assert_eq!(
        r.measurements.last().and_then(|m| m.value.clone()),
        Some(md["eValue"].clone()),
        "the value is the e-value"
    );
    // Earlier measurements continued: Successful, e-value below 1/alpha.
    for m in &r.measurements[..r.measurements.len() - 1] {
        assert_eq!(m.phase, Some(AnalysisPhase::Successful));
        let e: f64 = m.metadata["eValue"].parse().expect("a number");
        assert!(e < 100.0, "{m:?}");
    }
    let msg = last.message.clone().unwrap_or_default();
    assert!(
        !msg.contains("failureLimit"),
        "a sequential test has no failure limit: {msg}"
    );
    assert!(
        msg.starts_with("metric \"errors\" failed: the canary has more events"),
        "{msg}"
    );
    for part in [
        format!("e-value {}", md["eValue"]),
        ">= 1/alpha 100".to_string(),
        "rate ratio 3".to_string(),
        format!(
            "canary {} events in {} requests",
            md["canaryEvents"], md["canaryRequests"]
        ),
        format!(
            "baseline {} events in {} requests",
            md["baselineEvents"], md["baselineRequests"]
        ),
    ] {
        assert!(msg.contains(&part), "{part} in {msg}");
    }
    // Decided: nothing more is due.
    assert!(plan(&s, Some(last), t(10_000)).due.is_empty());
}

#[test]
fn a_canary_as_good_as_the_baseline_passes_at_count() {
    let s = spec(json!({"count": 12}));
    let statuses = run(&s, 0.01, 40);
    assert_eq!(statuses.len(), 12);
    let last = statuses.last().expect("measured");
    assert_eq!(phase(last), AnalysisPhase::Successful, "{last:?}");
    let r = &last.metric_results[0];
    assert_eq!((r.count, r.successful, r.failed), (12, 12, 0));
    let md = last_metadata(last);
    let e: f64 = md["eValue"].parse().expect("a number");
    assert!(e < 1.0, "no evidence against a good canary: {md:?}");
    assert_eq!(md["rateRatio"], "1");
}

#[test]
fn a_restarted_controller_continues_the_same_test_from_the_status() {
    let s = spec(json!({}));
    let straight = run(&s, 0.03, 40);
    let decided_at = straight.len();
    assert!(decided_at > 3, "needs a few looks to restart in between");
    // The same run, with the status written to the API server (JSON) and read back by a new
    // controller after every look.
    let mut traffic = Traffic::default();
    let mut status: Option<AnalysisRunStatus> = None;
    for (i, want) in straight.iter().enumerate() {
        if i > 0 {
            traffic.add(100.0, 3.0, 900.0, 9.0);
        }
        let stored = status
            .as_ref()
            .map(|st| serde_json::to_string(st).expect("serializable"));
        let read: Option<AnalysisRunStatus> =
            stored.map(|text| serde_json::from_str(&text).expect("deserializable"));
        assert!(
            read.as_ref()
                .is_none_or(|st| st.metric_results[0].sequential.is_some()),
            "the test's state is stored in the metric's result"
        );
        let (st, _) = step(&s, read.as_ref(), t(15 * i as i64), &traffic.readings());
        assert_eq!(phase(&st), phase(want), "look {i}");
        let got = st.metric_results[0].measurements.last().cloned();
        let expected = want.metric_results[0].measurements.last().cloned();
        assert_eq!(
            got.map(|m| (m.phase, m.value, m.metadata)),
            expected.map(|m| (m.phase, m.value, m.metadata)),
            "look {i}"
        );
        status = Some(st);
    }
    // Without its stored state a new test would start again: the first look only sets the
    // counters' base, so the same readings would not reject.
    let mut fresh = status.clone().expect("measured");
    fresh.metric_results[0].sequential = None;
    fresh.metric_results[0].phase = Some(AnalysisPhase::Running);
    fresh.metric_results[0].failed = 0;
    fresh.phase = Some(AnalysisPhase::Running);
    let (st, _) = step(
        &s,
        Some(&fresh),
        t(15 * decided_at as i64 + 60),
        &traffic.readings(),
    );
    assert_eq!(phase(&st), AnalysisPhase::Running);
}

#[test]
fn a_counter_reset_counts_the_new_reading_as_the_increase() {
    let s = spec(json!({}));
    let mut traffic = Traffic::default();
    traffic.add(1000.0, 10.0, 9000.0, 90.0);
    let (st, _) = step(&s, None, t(0), &traffic.readings());
    traffic.add(100.0, 1.0, 900.0, 9.0);
    let (st, _) = step(&s, Some(&st), t(15), &traffic.readings());
    let md = last_metadata(&st);
    assert_eq!(
        (md["canaryRequests"].as_str(), md["canaryEvents"].as_str()),
        ("100", "1")
    );
    // The canary's process restarts: its counters start again from 0 and reach 50 requests
    // and 1 error by the next scrape.
    traffic.canary_requests = 50.0;
    traffic.canary_events = 1.0;
    traffic.baseline_requests += 450.0;
    traffic.baseline_events += 4.0;
    let (st, _) = step(&s, Some(&st), t(30), &traffic.readings());
    assert_eq!(phase(&st), AnalysisPhase::Running);
    let md = last_metadata(&st);
    assert_eq!(
        (md["canaryRequests"].as_str(), md["canaryEvents"].as_str()),
        ("150", "2")
    );
    assert_eq!(
        (
            md["baselineRequests"].as_str(),
            md["baselineEvents"].as_str()
        ),
        ("1350", "13")
    );
}

#[test]
fn unusable_readings_and_provider_errors_are_errors_that_leave_the_test_as_it_was() {
    let s = spec(json!({"consecutiveErrorLimit": 2}));
    let mut traffic = Traffic::default();
    traffic.add(1000.0, 10.0, 9000.0, 90.0);
    let (st, _) = step(&s, None, t(0), &traffic.readings());
    let before = st.metric_results[0].sequential.clone();
    assert!(before.is_some());
    // A fractional counter (a rate() instead of a counter) and an unreachable Prometheus.
    let bad = Outcome::Counters(
        Readings {
            canary_events: 10.5,
            canary_requests: 1100.0,
            baseline_events: 90.0,
            baseline_requests: 9900.0,
        }
        .into(),
    );
    let (st, _) = step(&s, Some(&st), t(15), &bad);
    let r = &st.metric_results[0];
    assert_eq!((r.error, r.count, r.consecutive_error), (1, 1, 1));
    let m = r.measurements.last().cloned().unwrap_or_default();
    assert_eq!(m.phase, Some(AnalysisPhase::Error));
    let msg = m.message.unwrap_or_default();
    assert!(
        msg.contains("canary events") && msg.contains("not a whole number"),
        "{msg}"
    );
    assert_eq!(r.sequential, before, "the test is left as it was");
    let down = Outcome::ProviderError("Prometheus at http://127.0.0.1:9090 unreachable".into());
    let (st, _) = step(&s, Some(&st), t(30), &down);
    assert_eq!(st.metric_results[0].sequential, before);
    assert_eq!(phase(&st), AnalysisPhase::Running);
    // Readable again: the increase is counted from the last good reading.
    traffic.add(200.0, 2.0, 1800.0, 18.0);
    let (st, _) = step(&s, Some(&st), t(45), &traffic.readings());
    let md = last_metadata(&st);
    assert_eq!(md["canaryRequests"], "200");
    assert_eq!(st.metric_results[0].consecutive_error, 0);
    // Three errors in a row exceed consecutiveErrorLimit 2: the run is an Error, never Failed.
    let mut st = st;
    for i in 0..3 {
        st = step(&s, Some(&st), t(60 + 15 * i), &down).0;
    }
    assert_eq!(phase(&st), AnalysisPhase::Error);
    assert_eq!(st.metric_results[0].failed, 0);
}

#[test]
fn a_single_value_for_a_sequential_metric_or_counters_for_another_are_errors() {
    let s = spec(json!({}));
    let one = Outcome::Value(MetricValue::Scalar(1.0));
    let (st, _) = step(&s, None, t(0), &one);
    let m = st.metric_results[0].measurements[0].clone();
    assert_eq!(m.phase, Some(AnalysisPhase::Error));
    assert!(
        m.message
            .unwrap_or_default()
            .contains("records four counter readings"),
    );
    let plain: AnalysisRunSpec = serde_json::from_value(json!({"metrics": [{"name": "m",
        "successCondition": "result[0] < 1",
        "provider": {"prometheus": {"address": "http://p:9090", "query": "up"}}}]}))
    .expect("spec");
    let (st, _) = step(&plain, None, t(0), &Traffic::default().readings());
    assert_eq!(
        st.metric_results[0].measurements[0].phase,
        Some(AnalysisPhase::Error)
    );
}

#[test]
fn answers_are_read_as_one_counter_each() {
    let sample = |v| Sample {
        labels: BTreeMap::new(),
        value: v,
    };
    assert_eq!(
        counter_reading(&MetricValue::Vector(vec![sample(12.0)])),
        Ok(Some(12.0))
    );
    // No series: read by the engine with what the run saw of the series before.
    assert_eq!(counter_reading(&MetricValue::Vector(vec![])), Ok(None));
    let e = counter_reading(&MetricValue::Vector(vec![sample(1.0), sample(2.0)]))
        .expect_err("two series");
    assert!(e.contains("2 series"), "{e}");
}

#[test]
fn a_counter_not_created_yet_reads_as_zero_until_its_first_value() {
    // A healthy canary: its error counter does not exist until its first error.
    let s = spec(json!({"count": 8}));
    let mut traffic = Traffic::default();
    traffic.add(1000.0, 0.0, 9000.0, 90.0);
    let mut status: Option<AnalysisRunStatus> = None;
    for i in 0..4 {
        if i > 0 {
            traffic.add(100.0, 0.0, 900.0, 9.0);
        }
        let (st, _) = step(
            &s,
            status.as_ref(),
            t(15 * i),
            &traffic.without_canary_events(),
        );
        let m = st.metric_results[0].measurements.last().cloned();
        assert_eq!(
            m.as_ref().and_then(|m| m.phase),
            Some(AnalysisPhase::Successful),
            "look {i}: {m:?}"
        );
        status = Some(st);
    }
    let st = status.expect("measured");
    let md = last_metadata(&st);
    assert_eq!(
        (md["canaryEvents"].as_str(), md["canaryRequests"].as_str()),
        ("0", "300")
    );
    assert_eq!(st.metric_results[0].error, 0);
    // The first error creates the counter at 2: two events since the last measurement.
    traffic.add(100.0, 2.0, 900.0, 9.0);
    let (st, _) = step(&s, Some(&st), t(60), &traffic.readings());
    let md = last_metadata(&st);
    assert_eq!(
        (md["canaryEvents"].as_str(), md["canaryRequests"].as_str()),
        ("2", "400")
    );
    assert_eq!(phase(&st), AnalysisPhase::Running);
}

#[test]
fn a_series_missing_after_a_value_is_an_error_and_its_return_is_no_jump() {
    let s = spec(json!({"consecutiveErrorLimit": 3}));
    let mut traffic = Traffic::default();
    traffic.add(1000.0, 10.0, 9000.0, 90.0);
    let (st, _) = step(&s, None, t(0), &traffic.readings());
    traffic.add(100.0, 1.0, 900.0, 9.0);
    let (st, _) = step(&s, Some(&st), t(15), &traffic.readings());
    let before = st.metric_results[0].sequential.clone();
    // A scrape gap: the canary's events series is missing for two measurements.
    traffic.add(100.0, 1.0, 900.0, 9.0);
    let (st, _) = step(&s, Some(&st), t(30), &traffic.without_canary_events());
    let r = &st.metric_results[0];
    assert_eq!((r.error, r.consecutive_error, r.count), (1, 1, 2), "{r:?}");
    let m = r.measurements.last().cloned().unwrap_or_default();
    assert_eq!(m.phase, Some(AnalysisPhase::Error));
    let msg = m.message.unwrap_or_default();
    assert!(
        msg.starts_with(
            "metric \"errors\": canary events: no data, though the query returned a value earlier"
        ),
        "{msg}"
    );
    assert_eq!(r.sequential, before, "the test is left as it was");
    traffic.add(100.0, 1.0, 900.0, 9.0);
    let (st, _) = step(&s, Some(&st), t(45), &traffic.without_canary_events());
    assert_eq!(st.metric_results[0].sequential, before);
    assert_eq!(phase(&st), AnalysisPhase::Running);
    // Back: the increase since the last good reading, not the whole counter.
    traffic.add(100.0, 1.0, 900.0, 9.0);
    let (st, _) = step(&s, Some(&st), t(60), &traffic.readings());
    let md = last_metadata(&st);
    assert_eq!(
        (md["canaryEvents"].as_str(), md["canaryRequests"].as_str()),
        ("4", "400")
    );
    assert_eq!(st.metric_results[0].consecutive_error, 0);
}

/// Runs the metric (`extra` merged over it) to its `count` of 4 with the canary's requests
/// counter never created (no traffic reached it) and the baseline serving.
fn run_without_canary_traffic(extra: Value) -> AnalysisRunStatus {
    let s = spec(extra);
    let mut traffic = Traffic::default();
    let mut status: Option<AnalysisRunStatus> = None;
    for i in 0..4 {
        traffic.add(0.0, 0.0, 900.0, 9.0);
        let none = Outcome::Counters(CounterReadings {
            canary_events: None,
            canary_requests: None,
            ..traffic.counter_readings()
        });
        status = Some(step(&s, status.as_ref(), t(15 * i), &none).0);
    }
    status.expect("measured")
}

#[test]
fn a_run_without_evidence_ends_by_its_no_data_policy_never_passing_by_itself() {
    let st = run_without_canary_traffic(json!({"count": 4}));
    assert_eq!(phase(&st), AnalysisPhase::Inconclusive, "{st:?}");
    let r = &st.metric_results[0];
    assert_eq!(
        (r.count, r.successful, r.inconclusive, r.error),
        (4, 3, 1, 0),
        "{r:?}"
    );
    let m = r.measurements.last().cloned().unwrap_or_default();
    assert_eq!(m.phase, Some(AnalysisPhase::Inconclusive));
    assert_eq!(m.metadata["canaryRequests"], "0");
    let msg = m.message.unwrap_or_default();
    assert!(
        msg.starts_with("no evidence: the test counted no request of the canary in 4 measurements")
            && msg.contains("noDataPolicy Inconclusive"),
        "{msg}"
    );
    let st = run_without_canary_traffic(json!({"count": 4, "noDataPolicy": "Fail"}));
    assert_eq!(phase(&st), AnalysisPhase::Failed, "{st:?}");
    assert!(
        st.message
            .clone()
            .unwrap_or_default()
            .contains("noDataPolicy Fail"),
        "{st:?}"
    );
    let st = run_without_canary_traffic(json!({"count": 4, "noDataPolicy": "Pass"}));
    assert_eq!(phase(&st), AnalysisPhase::Successful, "{st:?}");
    // Canary requests counted in the run: evidence, the run passes at count as before.
    let s = spec(json!({"count": 4}));
    let statuses = run(&s, 0.0, 10);
    assert_eq!(statuses.len(), 4);
    assert_eq!(phase(&statuses[3]), AnalysisPhase::Successful);
}

/// The problems of a template holding the metric with `extra` merged over it.
fn problems(extra: Value) -> Vec<String> {
    let t: AnalysisTemplateSpec = serde_json::from_value(json!({
        "metrics": [metric(extra)],
        "args": [{"name": "hash"}, {"name": "tenant", "value": "t1"}]
    }))
    .expect("template");
    validate_template(&t)
}

#[test]
fn the_example_template_is_valid() {
    assert_eq!(problems(json!({})), Vec::<String>::new());
}

#[test]
fn validation_names_each_field_of_a_sequential_metric() {
    assert_eq!(
        problems(json!({"sequential": {"events": "", "requests": "sum(rate(x[5m]) by ("}})),
        [
            "metrics[0].sequential.events: required, expected a PromQL counter query such as \
             sum(http_requests_total{pod_template_hash=\"{{args.hash}}\"})"
                .to_string(),
            format!(
                "metrics[0].sequential.requests: {}",
                rollgate_engine::measure::check_promql("sum(rate(x[5m]) by (")
                    .expect_err("invalid")
            )
        ]
    );
    assert_eq!(
        problems(json!({"sequential": {"alpha": 1.0, "priorConcentration": 0,
            "direction": "up", "minEvents": -1}})),
        [
            "metrics[0].sequential.direction: expected increase, decrease or either, got \"up\"",
            "metrics[0].sequential.minEvents: expected a number of events >= 0, got -1",
            "metrics[0].sequential.alpha: expected a number strictly between 0 and 1, got 1",
            "metrics[0].sequential.priorConcentration: expected a number greater than 0 and at \
             most 1000, got 0"
        ]
    );
    assert_eq!(
        problems(json!({"sequential": {"events": "sum(errors_total)",
            "requests": "requests_total{hash=\"{{args.hash}}\"}[5m]"}})),
        [
            "metrics[0].sequential.events: expected an {{args.NAME}} placeholder that selects \
             the revision (e.g. pod_template_hash=\"{{args.hash}}\" with podTemplateHashValue: \
             Latest), found none: the canary and the baseline would read the same counter",
            "metrics[0].sequential.requests: expected a query returning one number (a scalar or \
             a one-sample vector), got a range vector"
        ]
    );
    assert_eq!(
        problems(json!({"sequential": {"events": "sum(e{h=\"{{args.nope}}\"})"}})),
        [
            "metrics[0].sequential.events: {{args.nope}} names no argument of the template, \
             expected one of args[].name (hash, tenant)"
        ]
    );
}

#[test]
fn validation_refuses_what_a_sequential_metric_does_not_use() {
    let p = problems(
        json!({"interval": null, "successCondition": "result[0] < 1",
        "inconclusiveLimit": 0, "noDataPolicy": "Pass",
        "provider": {"prometheus": {"address": "http://127.0.0.1:9090", "query": "up",
            "rangeQuery": {"start": "now() - 5m", "step": "1m"}}}}),
    );
    let fields: Vec<&str> = p
        .iter()
        .map(|p| p.split(':').next().unwrap_or_default())
        .collect();
    assert_eq!(
        fields,
        [
            "metrics[0].successCondition",
            "metrics[0].inconclusiveLimit",
            "metrics[0].interval",
            "metrics[0].provider.prometheus.query",
            "metrics[0].provider.prometheus.rangeQuery"
        ],
        "{p:?}"
    );
    assert!(p[0].contains("not used by a sequential metric"), "{p:?}");
    assert!(p[2].contains("required for a sequential metric"), "{p:?}");
    // noDataPolicy decides a metric that ends without evidence: accepted, and checked.
    assert_eq!(
        problems(json!({"noDataPolicy": "Fail"})),
        Vec::<String>::new()
    );
    assert_eq!(
        problems(json!({"noDataPolicy": "Maybe"})),
        ["metrics[0].noDataPolicy: expected Inconclusive, Fail or Pass, got \"Maybe\""]
    );
}

#[test]
fn a_run_built_for_a_sequential_metric_takes_the_stable_hash_for_the_baseline() {
    let template: AnalysisTemplateSpec = serde_json::from_value(json!({
        "metrics": [metric(json!({}))],
        "args": [{"name": "hash"}, {"name": "tenant", "value": "t1"},
                 {"name": "stable", "valueFrom": {"podTemplateHashValue": "Stable"}}]
    }))
    .expect("template");
    let mut observed = Observed::default();
    observed
        .templates
        .insert((false, "errors".to_string()), template.clone());
    let rollout: rollgate_api::Rollout = serde_json::from_value(rollgate_test_support::rollout(
        "web",
        "app:2",
        json!({"canary": {}}),
        json!({}),
    ))
    .expect("rollout");
    let analysis: rollgate_api::RolloutAnalysis = serde_json::from_value(json!({
        "templates": [{"templateName": "errors"}],
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
    let values = |args: &[rollgate_api::AnalysisArg]| -> Vec<(String, Option<String>)> {
        args.iter()
            .map(|a| (a.name.clone(), a.value.clone()))
            .collect()
    };
    assert_eq!(
        values(&run.args),
        [
            ("hash".to_string(), Some(CANARY.to_string())),
            ("stable".to_string(), Some(STABLE.to_string())),
            ("tenant".to_string(), Some("t1".to_string()))
        ]
    );
    assert_eq!(
        values(&run.baseline_args),
        [("hash".to_string(), Some(STABLE.to_string()))]
    );
    // A template without sequential metrics gets no baselineArgs (runs as before).
    let mut plain = template;
    plain.metrics[0].sequential = None;
    observed
        .templates
        .insert((false, "errors".to_string()), plain);
    let run = rollgate_engine::analysis::build_run_spec(
        &analysis,
        &observed,
        &rollout,
        Some(STABLE),
        CANARY,
    );
    assert!(run.baseline_args.is_empty());
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
