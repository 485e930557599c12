//! The I/O side of rollgate's analysis: one measurement query against Prometheus.
//!
//! [`query()`] takes a [`Request`] (address, PromQL, timeout, extra headers, [`Auth`], [`Tls`],
//! and either an evaluation [`Request::time`] or a [`Range`]) and returns a [`QueryResult`]:
//! a scalar, an instant vector or a range matrix, with `NaN` and `±Inf` values as `f64`. An
//! empty vector or matrix is returned as such: "no data" is for the analysis to judge, not an
//! error.
//!
//! Failures are a [`ProviderError`] whose variant says what went wrong (unreachable, timed out,
//! TLS, an HTTP error status, a query Prometheus rejected, an unreadable answer, an answer
//! larger than [`Request::max_answer_bytes`], by default [`DEFAULT_MAX_ANSWER_BYTES`]) and whose
//! `Display` is one line naming the address, fit for a status field.
//!
//! The HTTP client is `reqwest` (through `prometheus-http-query`), built for each request from
//! its configuration. It uses rustls with the `ring` provider only, as kube does in this
//! workspace; if no process-wide rustls provider is installed yet, the first query installs
//! `ring`'s (the binary installs it at start-up anyway).

mod client;
mod error;
mod request;
mod result;
pub mod transport;

pub use client::query;
pub use error::ProviderError;
pub use jiff::Timestamp;
pub use request::{Auth, DEFAULT_MAX_ANSWER_BYTES, DEFAULT_TIMEOUT, Range, Request, Tls};
pub use result::{Labels, QueryResult};
