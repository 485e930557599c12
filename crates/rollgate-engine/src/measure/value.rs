//! The shape of a measured value, and how it reads in CEL and in a status.

use std::collections::BTreeMap;
use std::sync::Arc;

/// One sample of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Its value.
    pub value: f64,
}

/// One series of a range matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// `(timestamp in seconds, value)` points.
    pub points: Vec<(f64, f64)>,
}

/// A provider's answer.
#[derive(Debug, Clone, PartialEq)]
pub enum MetricValue {
    /// A single number: `result` is that number.
    Scalar(f64),
    /// An instant vector: `result` is the list of its values.
    Vector(Vec<Sample>),
    /// A range matrix: `result` is a list of series, each a list of values.
    Matrix(Vec<Series>),
}

impl MetricValue {
    /// An empty vector or matrix: the query matched nothing (no data).
    pub fn is_empty(&self) -> bool {
        match self {
            Self::Scalar(_) => false,
            Self::Vector(v) => v.is_empty(),
            Self::Matrix(m) => m.is_empty(),
        }
    }

    /// The value bound to `result` in conditions.
    pub fn to_cel(&self) -> cel::Value {
        let list = |values: Vec<cel::Value>| cel::Value::List(Arc::new(values));
        match self {
            Self::Scalar(v) => cel::Value::Float(*v),
            Self::Vector(samples) => {
                list(samples.iter().map(|s| cel::Value::Float(s.value)).collect())
            }
            Self::Matrix(series) => list(
                series
                    .iter()
                    .map(|s| list(s.points.iter().map(|p| cel::Value::Float(p.1)).collect()))
                    .collect(),
            ),
        }
    }

    /// Short text for a measurement's `value`: `0.5`, `[0.031]`, `[[1, 2], [3]]`.
    pub fn display(&self) -> String {
        let join = |values: Vec<String>| format!("[{}]", values.join(", "));
        match self {
            Self::Scalar(v) => number(*v),
            Self::Vector(samples) => join(samples.iter().map(|s| number(s.value)).collect()),
            Self::Matrix(series) => join(
                series
                    .iter()
                    .map(|s| join(s.points.iter().map(|p| number(p.1)).collect()))
                    .collect(),
            ),
        }
    }
}

/// A number with at most 4 decimals (rates carry float noise nobody wants to read).
pub fn number(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    let text = format!("{v:.4}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" {
        "0".into()
    } else {
        text.to_string()
    }
}
