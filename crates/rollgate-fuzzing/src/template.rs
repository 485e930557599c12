//! `analysis_template`: templates validated as the controller and `rollgate lint` validate
//! them (durations, CEL conditions, PromQL, `rangeQuery`, enum-like fields), then measured as
//! an AnalysisRun is: which measurements are due, with `{{args}}` rendered into the query, and
//! what the answers add up to (CEL evaluated on them).

use std::collections::BTreeMap;

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use rollgate_api::{
    AnalysisArg, AnalysisRun, AnalysisRunSpec, AnalysisRunStatus, AnalysisTemplate,
    AnalysisTemplateSpec, ClusterAnalysisTemplate,
};
use rollgate_engine::measure::{self, Measured, MetricValue, Outcome, Sample, Series};
use serde_json::Value;

use crate::input::{documents, kind, now, text};

/// Rounds of measuring per run.
const ROUNDS: usize = 4;

/// The input: YAML documents or one JSON object. Each `AnalysisTemplate`,
/// `ClusterAnalysisTemplate` (or a bare template spec, a document with `metrics`) is validated
/// and, its arguments given a value where they have none, measured as a run; each
/// `AnalysisRun` is measured from its own spec and status. An optional `Answers` document
/// lists what the provider answers, in turn: numbers (a scalar), lists of numbers (a vector),
/// lists of lists (a matrix), anything else a provider error.
///
/// Checks that nothing panics and that each status recorded encodes and decodes again (the
/// controller writes it and reads it back).
pub fn analysis_template(data: &[u8]) {
    let Some(text) = text(data) else { return };
    let docs = documents(text);
    let answers = answers(&docs);
    for d in &docs {
        match kind(d) {
            "AnalysisTemplate" => {
                if let Ok(t) = rollgate_api::decode::decode::<AnalysisTemplate>(d) {
                    template(&t.spec, &answers);
                }
            }
            "ClusterAnalysisTemplate" => {
                if let Ok(t) = rollgate_api::decode::decode::<ClusterAnalysisTemplate>(d) {
                    template(&t.spec.template, &answers);
                }
            }
            "AnalysisRun" => {
                if let Ok(r) = rollgate_api::decode::decode::<AnalysisRun>(d) {
                    run(&r.spec, r.status.as_ref(), &answers);
                }
            }
            "" if d.get("metrics").is_some() => {
                if let Ok(t) = rollgate_api::decode::decode::<AnalysisTemplateSpec>(d) {
                    template(&t, &answers);
                }
            }
            _ => {}
        }
    }
}

/// Validates a template and measures a run made of it.
fn template(t: &AnalysisTemplateSpec, answers: &[Outcome]) {
    let _ = measure::validate_template(t);
    let spec = AnalysisRunSpec {
        metrics: t.metrics.clone(),
        args: t
            .args
            .iter()
            .map(|a| AnalysisArg {
                value: Some(
                    a.value
                        .clone()
                        .unwrap_or_else(|| format!("{}-value", a.name)),
                ),
                value_from: None,
                ..a.clone()
            })
            .collect(),
        dry_run: t.dry_run.clone(),
        measurement_retention: t.measurement_retention.clone(),
        terminate: None,
        baseline_args: Vec::new(),
    };
    run(&spec, None, answers);
}

/// Measures a run for a few rounds, answering each due measurement in turn from `answers`.
fn run(spec: &AnalysisRunSpec, status: Option<&AnalysisRunStatus>, answers: &[Outcome]) {
    let mut status = status.cloned();
    let mut at = now();
    let mut next = answers.iter().cycle();
    for _ in 0..ROUNDS {
        let plan = measure::plan(spec, status.as_ref(), at);
        for due in &plan.due {
            if let Ok(q) = &due.query {
                let _ = q.placeholders();
            }
        }
        let finished = at.checked_add(SignedDuration::from_secs(1)).unwrap_or(at);
        let measured = plan
            .due
            .iter()
            .filter_map(|due| {
                Some(Measured {
                    metric: due.metric.clone(),
                    outcome: next.next()?.clone(),
                    started_at: at,
                    finished_at: finished,
                })
            })
            .collect();
        let decision = measure::record(spec, Some(&plan.status), measured, finished);
        let encoded = match serde_json::to_value(&decision.status) {
            Ok(v) => v,
            Err(e) => panic!("a recorded AnalysisRun status does not encode: {e}"),
        };
        if let Err(e) = rollgate_api::decode::decode::<AnalysisRunStatus>(&encoded) {
            panic!("a recorded AnalysisRun status does not decode again: {e}");
        }
        status = Some(decision.status);
        let Some(after) = decision.requeue_after else {
            break;
        };
        let step = SignedDuration::try_from(after).unwrap_or(SignedDuration::MAX);
        at = finished.checked_add(step).unwrap_or(Timestamp::MAX);
    }
}

/// The provider's answers: the `Answers` document's, else a few of each shape.
fn answers(docs: &[Value]) -> Vec<Outcome> {
    let given: Vec<Outcome> = docs
        .iter()
        .filter(|d| kind(d) == "Answers")
        .flat_map(|d| d["answers"].as_array().cloned().unwrap_or_default())
        .map(|a| answer(&a))
        .collect();
    if !given.is_empty() {
        return given;
    }
    vec![
        Outcome::Value(MetricValue::Scalar(0.99)),
        Outcome::Value(MetricValue::Vector(vec![sample(0.5), sample(f64::NAN)])),
        Outcome::Value(MetricValue::Vector(Vec::new())),
        Outcome::Value(MetricValue::Matrix(vec![Series {
            labels: BTreeMap::new(),
            points: vec![(1.0, 2.0), (2.0, f64::INFINITY)],
        }])),
        Outcome::ProviderError("connection refused".into()),
    ]
}

fn sample(value: f64) -> Sample {
    Sample {
        labels: BTreeMap::from([("pod".to_string(), "web-1".to_string())]),
        value,
    }
}

fn answer(a: &Value) -> Outcome {
    let numbers = |v: &Value| -> Option<Vec<f64>> {
        v.as_array()?
            .iter()
            .map(Value::as_f64)
            .collect::<Option<_>>()
    };
    if let Some(n) = a.as_f64() {
        return Outcome::Value(MetricValue::Scalar(n));
    }
    if let Some(ns) = numbers(a) {
        return Outcome::Value(MetricValue::Vector(ns.into_iter().map(sample).collect()));
    }
    if let Some(series) = a
        .as_array()
        .and_then(|rows| rows.iter().map(numbers).collect::<Option<Vec<_>>>())
    {
        let series = series
            .into_iter()
            .map(|points| Series {
                labels: BTreeMap::new(),
                #[allow(clippy::cast_precision_loss)]
                points: points
                    .into_iter()
                    .enumerate()
                    .map(|(i, p)| (i as f64, p))
                    .collect(),
            })
            .collect();
        return Outcome::Value(MetricValue::Matrix(series));
    }
    Outcome::ProviderError(a.to_string())
}
