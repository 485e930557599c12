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

    /// How many numbers it holds (a scalar: 1; a matrix: its points).
    pub fn len(&self) -> usize {
        match self {
            Self::Scalar(_) => 1,
            Self::Vector(v) => v.len(),
            Self::Matrix(m) => m.iter().map(|s| s.points.len()).sum(),
        }
    }

    /// Short text for a measurement's `value`: `0.5`, `[0.031]`, `[[1, 2], [3]]`. At most
    /// [`MAX_VALUE_TEXT`] characters of it, then `…` and how many values there are in all, so
    /// that a huge answer never makes a huge status.
    pub fn display(&self) -> String {
        let mut out = Bounded::default();
        match self {
            Self::Scalar(v) => out.push(&number(*v)),
            Self::Vector(samples) => {
                out.push("[");
                for (i, s) in samples.iter().enumerate() {
                    if i > 0 {
                        out.push(", ");
                    }
                    out.push(&number(s.value));
                    if out.full {
                        break;
                    }
                }
                out.push("]");
            }
            Self::Matrix(series) => {
                out.push("[");
                'series: for (i, s) in series.iter().enumerate() {
                    out.push(if i > 0 { ", [" } else { "[" });
                    for (j, p) in s.points.iter().enumerate() {
                        if j > 0 {
                            out.push(", ");
                        }
                        out.push(&number(p.1));
                        if out.full {
                            break 'series;
                        }
                    }
                    out.push("]");
                }
                out.push("]");
            }
        }
        if out.full {
            format!("{}… ({} values in all)", out.text, self.len())
        } else {
            out.text
        }
    }
}

/// Longest text of a measured value kept in a status or message, in characters (before the
/// `… (N values in all)` marker of a longer one).
pub const MAX_VALUE_TEXT: usize = 200;

/// Text that stops growing at [`MAX_VALUE_TEXT`] characters.
#[derive(Default)]
struct Bounded {
    text: String,
    chars: usize,
    full: bool,
}

impl Bounded {
    fn push(&mut self, piece: &str) {
        for c in piece.chars() {
            if self.chars >= MAX_VALUE_TEXT {
                self.full = true;
                return;
            }
            self.text.push(c);
            self.chars += 1;
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
