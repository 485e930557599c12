//! What a query returned.

use std::collections::BTreeMap;

/// The labels of one series, including `__name__` when Prometheus returns it.
pub type Labels = BTreeMap<String, String>;

/// The value of a successful query.
///
/// Values are `f64`; Prometheus' `"NaN"`, `"+Inf"` and `"-Inf"` become `f64::NAN`,
/// `f64::INFINITY` and `f64::NEG_INFINITY`. An empty `Vector` or `Matrix` means no data.
#[derive(Clone, Debug, PartialEq)]
pub enum QueryResult {
    /// A scalar (`resultType: scalar`), e.g. from `1 + 1` or `scalar(...)`.
    Scalar(f64),
    /// An instant vector: one value per series, at the evaluation time.
    Vector(Vec<(Labels, f64)>),
    /// A range matrix: per series, `(timestamp in seconds since the epoch, value)` pairs in
    /// ascending time order.
    Matrix(Vec<(Labels, Vec<(f64, f64)>)>),
}

impl QueryResult {
    /// True for a vector or matrix without any series (a scalar is never empty).
    pub fn is_empty(&self) -> bool {
        match self {
            QueryResult::Scalar(_) => false,
            QueryResult::Vector(v) => v.is_empty(),
            QueryResult::Matrix(m) => m.is_empty(),
        }
    }
}
