//! Argo Rollouts compatibility of AnalysisRuns: `{{args.NAME}}` in a metric's settings, and
//! the run's phase while it is measured.

use crate::support;

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use rollgate_api::{AnalysisPhase, AnalysisRunSpec, AnalysisRunStatus, AnalysisTemplateSpec};
use rollgate_engine::measure::{Outcome, plan, validate_settings, validate_template};
use rollgate_engine::{Action, Event};
use rollgate_test_support::merge;
use serde_json::{Value, json};

use crate::measure_support::v;
use support::{TEMPLATE, World};

fn t(secs: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + secs).expect("time")
}

/// A metric (`metric` merged over a valid one) with `args` as the run's arguments.
fn run_spec(metric: Value, args: Value) -> AnalysisRunSpec {
    let mut m = json!({"name": "error-rate", "successCondition": "result[0] < 0.05",
        "provider": {"prometheus": {"address": "http://127.0.0.1:9090",
            "query": "rate(errors[1m])"}}});
    merge(&mut m, metric);
    serde_json::from_value(json!({"metrics": [m], "args": args})).expect("spec")
}

fn template(metric: Value, args: Value) -> AnalysisTemplateSpec {
    let spec = run_spec(metric, args);
    AnalysisTemplateSpec {
        metrics: spec.metrics,
        args: spec.args,
        ..Default::default()
    }
}

/// Argo Rollouts substitutes a run's arguments into every field of a metric, so a template
/// may write its timing and limits as placeholders (Argo docs, "Analysis Template Arguments"
/// in features/analysis.md; Argo's own e2e template `sleep-job` writes
/// `count: "{{args.count}}"`, and `rollout-secret.yaml` its `interval` and `failureLimit`).
#[test]
fn count_interval_initial_delay_and_limits_take_the_run_arguments() {
    let s = run_spec(
        json!({"count": "{{args.count}}", "interval": "{{args.interval}}",
               "initialDelay": "{{ args.delay }}", "failureLimit": "{{args.failures}}",
               "inconclusiveLimit": "{{args.failures}}",
               "consecutiveErrorLimit": "{{args.errors}}"}),
        json!([{"name": "count", "value": "3"}, {"name": "interval", "value": "10s"},
               {"name": "delay", "value": "5s"}, {"name": "failures", "value": "1"},
               {"name": "errors", "value": "0"}]),
    );
    // initialDelay 5s: nothing before it.
    let (st, requeue, n) = step(&s, None, t(0), v(0.01));
    assert_eq!((n, requeue), (0, Some(Duration::from_secs(5))));
    // Then every interval (10s).
    let (st, requeue, n) = step(&s, Some(st), t(5), v(0.2));
    assert_eq!((n, requeue), (1, Some(Duration::from_secs(10))));
    // failureLimit 1 tolerates one failure.
    assert_eq!(st.phase, Some(AnalysisPhase::Running));
    let (st, _, n) = step(&s, Some(st), t(9), v(0.01));
    assert_eq!(n, 0, "not due before the interval");
    let (st, _, _) = step(&s, Some(st), t(15), v(0.01));
    assert_eq!(st.phase, Some(AnalysisPhase::Running));
    // count 3: the third measurement decides.
    let (st, requeue, _) = step(&s, Some(st), t(25), v(0.01));
    assert_eq!((st.phase, requeue), (Some(AnalysisPhase::Successful), None));
    assert_eq!(st.metric_results[0].count, 3);

    // consecutiveErrorLimit "{{args.errors}}" = 0: the first error ends the metric.
    let err = Outcome::ProviderError("Prometheus at http://127.0.0.1:9090 unreachable".into());
    let (st, _, _) = step(&s, None, t(0), err.clone());
    let (st, _, _) = step(&s, Some(st), t(5), err);
    assert_eq!(st.phase, Some(AnalysisPhase::Error));
    assert!(
        st.message
            .as_deref()
            .is_some_and(|m| m.contains("consecutiveErrorLimit 0")),
        "{:?}",
        st.message
    );
}

/// Argo resolves the arguments when the run is reconciled and ends a run whose resolved
/// metrics do not validate ("Analysis spec invalid"); rollgate does the same, naming the field.
#[test]
fn a_run_whose_substituted_setting_is_not_a_number_is_an_error_naming_the_field() {
    let s = run_spec(
        json!({"count": "{{args.count}}", "interval": "1s"}),
        json!([{"name": "count", "value": "abc"}]),
    );
    let (st, requeue, n) = step(&s, None, t(0), v(0.01));
    assert_eq!((n, requeue), (0, None), "nothing measured");
    assert_eq!(st.phase, Some(AnalysisPhase::Error));
    assert_eq!(
        st.message.as_deref(),
        Some(
            "metrics[0].count: expected an integer after substituting {{args.count}}, got \"abc\""
        )
    );
    // A duration, and an argument without a value.
    let s = run_spec(
        json!({"interval": "{{args.interval}}", "initialDelay": "{{args.delay}}"}),
        json!([{"name": "interval", "value": "often"}]),
    );
    let p = plan(&s, None, t(0));
    assert_eq!(p.status.phase, Some(AnalysisPhase::Error));
    assert_eq!(
        p.status.message.as_deref(),
        Some(
            "metrics[0].interval: expected seconds or a duration such as 30s, 5m or 1h30m after \
             substituting {{args.interval}}, got \"often\"; metrics[0].initialDelay: argument \
             \"delay\" has no value"
        )
    );
}

#[test]
fn templates_check_settings_with_their_default_values() {
    // A default that is not a number is refused before any run exists.
    assert_eq!(
        validate_template(&template(
            json!({"count": "{{args.count}}", "interval": "1m"}),
            json!([{"name": "count", "value": "abc"}])
        )),
        ["metrics[0].count: expected an integer after substituting {{args.count}}, got \"abc\""]
    );
    // Defaults are checked against each other as written values are.
    assert_eq!(
        validate_template(&template(
            json!({"count": "{{args.count}}", "failureLimit": "{{args.limit}}"}),
            json!([{"name": "count", "value": "3"}, {"name": "limit", "value": "-1"}])
        )),
        [
            "metrics[0].failureLimit: must be >= 0 after substituting {{args.limit}}, got -1",
            "metrics[0].interval: required when count is more than 1 (count 3 would query 3 \
             times back to back), expected a duration such as 30s"
        ]
    );
    // Without a default the Rollout gives the value: nothing to say yet.
    assert_eq!(
        validate_template(&template(
            json!({"count": "{{args.count}}", "interval": "{{args.interval}}",
                   "failureLimit": 5}),
            json!([{"name": "count"}, {"name": "interval"}])
        )),
        Vec::<String>::new()
    );
    // A placeholder must name a declared argument.
    assert_eq!(
        validate_template(&template(
            json!({"initialDelay": "{{args.delay}}"}),
            json!([])
        )),
        [
            "metrics[0].initialDelay: {{args.delay}} names no argument of the template, expected \
          one of args[].name (none declared)"
        ]
    );
}

#[test]
fn settings_are_checked_with_the_values_a_rollout_gives() {
    let t = template(
        json!({"count": "{{args.count}}", "interval": "{{args.interval}}",
               "failureLimit": "{{args.limit}}"}),
        json!([{"name": "count", "value": "5"}, {"name": "interval"},
               {"name": "limit", "value": "1"}]),
    );
    let known = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    assert_eq!(
        validate_settings(
            &t,
            &known(&[("count", "5"), ("interval", "30s"), ("limit", "1")])
        ),
        Vec::<String>::new()
    );
    assert_eq!(
        validate_settings(
            &t,
            &known(&[("count", "2"), ("interval", "soon"), ("limit", "1")])
        ),
        [
            "metrics[0].interval: expected seconds or a duration such as 30s, 5m or 1h30m after \
             substituting {{args.interval}}, got \"soon\""
        ]
    );
    assert_eq!(
        validate_settings(
            &t,
            &known(&[("count", "2"), ("interval", "1s"), ("limit", "2")])
        ),
        [
            "metrics[0].failureLimit: must be less than count (2), got 2: 2 measurements can \
             never exceed it, so the metric could never be Failed"
        ]
    );
}

/// The blue/green world of `support` whose pre-promotion analysis template takes `count` from
/// an argument (default 2), and whose Rollout passes `args`.
fn world_with_count_arg(args: Value) -> World {
    let mut analysis = support::analysis();
    merge(&mut analysis, json!({"args": args}));
    let mut w = World::new(json!({}), json!({"prePromotionAnalysis": analysis}));
    let key = (false, TEMPLATE.to_string());
    let mut t = serde_json::to_value(&w.observed.templates[&key]).expect("template json");
    merge(
        &mut t["metrics"][0],
        json!({"count": "{{args.count}}", "interval": "1m"}),
    );
    if let Some(list) = t["args"].as_array_mut() {
        list.push(json!({"name": "count", "value": "2"}));
    }
    w.observed
        .templates
        .insert(key, serde_json::from_value(t).expect("template"));
    w
}

/// A Rollout's argument that makes a setting invalid stops the release before any traffic
/// moves (InvalidSpec naming the field), as `rollgate lint` reports it.
#[test]
fn a_rollout_argument_that_makes_count_invalid_is_an_invalid_spec() {
    let mut w = world_with_count_arg(json!([{"name": "count", "value": "abc"}]));
    let d = w.step();
    assert!(d.actions.is_empty(), "{:?}", d.actions);
    let text = "spec.strategy.blueGreen.prePromotionAnalysis.templates[0]: AnalysisTemplate \
                \"error-rate\": metrics[0].count: with this Rollout's arguments, expected an \
                integer after substituting {{args.count}}, got \"abc\"";
    assert_eq!(
        d.events,
        [Event {
            warning: true,
            reason: rollgate_api::EventReason::InvalidSpec,
            note: text.to_string(),
        }]
    );
}

/// The run a valid Rollout creates carries the argument's value; measuring substitutes it.
#[test]
fn the_run_a_rollout_creates_measures_the_count_the_rollout_gives() {
    let mut w = world_with_count_arg(json!([{"name": "count", "value": "3"}]));
    w.run_until_settled();
    w.set_image("app:2");
    let run = (0..10)
        .find_map(|_| {
            let d = w.step();
            w.make_all_ready();
            d.actions.into_iter().find_map(|a| match a {
                Action::CreateAnalysisRun(run) => Some(run),
                _ => None,
            })
        })
        .expect("a pre-promotion run is created");
    let count = run.spec.args.iter().find(|a| a.name == "count");
    assert_eq!(count.and_then(|a| a.value.as_deref()), Some("3"));
    let mut status = None;
    for i in 0..3 {
        let (st, _, n) = step(&run.spec, status, t(60 * i), v(0.01));
        assert_eq!(n, 1, "measurement {i}");
        status = Some(st);
    }
    let st = status.unwrap_or_default();
    assert_eq!(st.phase, Some(AnalysisPhase::Successful));
    assert_eq!(st.metric_results[0].count, 3);
}

/// Argo Rollouts' AnalysisRun phases: `Pending` until the analysis controller starts the run,
/// then `Running` (with `startedAt` set) until it is Successful, Failed, Error or
/// Inconclusive; a metric still waiting for its `initialDelay` keeps the run Running (the
/// AnalysisRun phase in Argo's API reference, `AnalysisPhase`; Argo docs, analysis/
/// cloudwatch.md show a run being measured as `phase: Running`).
#[test]
fn a_run_is_running_from_its_first_reconcile_until_decided() {
    let s = run_spec(
        json!({"interval": "10s", "count": 2, "initialDelay": "30s"}),
        json!([]),
    );
    // Waiting for initialDelay: started, Running.
    let p = plan(&s, None, t(0));
    assert!(p.due.is_empty());
    assert_eq!(p.status.phase, Some(AnalysisPhase::Running));
    assert!(p.status.started_at.is_some());
    let (st, _, _) = step(&s, None, t(0), v(0.01));
    assert_eq!(st.phase, Some(AnalysisPhase::Running));
    assert_eq!(st.metric_results[0].phase, Some(AnalysisPhase::Pending));
    // Measuring.
    let (st, _, n) = step(&s, Some(st), t(30), v(0.01));
    assert_eq!((n, st.phase), (1, Some(AnalysisPhase::Running)));
    let (st, _, _) = step(&s, Some(st), t(40), v(0.01));
    assert_eq!(st.phase, Some(AnalysisPhase::Successful));

    // Two metrics: one measured, one still in its initialDelay.
    let mut two = run_spec(json!({"interval": "10s", "count": 1}), json!([]));
    let mut late = two.metrics[0].clone();
    late.name = "latency".into();
    late.initial_delay = Some("1m".into());
    two.metrics.push(late);
    let (st, _, n) = step(&two, None, t(0), v(0.01));
    assert_eq!(n, 1);
    let phases: Vec<_> = st.metric_results.iter().map(|r| r.phase).collect();
    assert_eq!(
        phases,
        [
            Some(AnalysisPhase::Successful),
            Some(AnalysisPhase::Pending)
        ]
    );
    assert_eq!(st.phase, Some(AnalysisPhase::Running));
    assert_eq!(st.message, None);
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
