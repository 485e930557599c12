//! What can go wrong in the harness.

use std::fmt;
use std::time::Duration;

/// A harness failure. `Debug` prints the same text as `Display`, so a test that returns it
/// (or `expect`s it) shows the explanation and Prometheus' log, not a struct dump.
#[derive(thiserror::Error)]
pub enum PromTestError {
    /// No Prometheus binary.
    #[error(
        "Prometheus is not installed: no /usr/bin/prometheus and no `prometheus` on PATH. \
         Install it (Debian: `apt-get install -y --no-install-recommends prometheus`); \
         the project's test script does this when it is missing"
    )]
    NotInstalled,
    /// No promtool binary, needed to backfill.
    #[error(
        "promtool is not installed: no /usr/bin/promtool and no `promtool` on PATH \
         (Debian package `prometheus`)"
    )]
    PromtoolNotInstalled,
    /// A file-system or process operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The configuration cannot be used (e.g. backfill data that promtool would mangle).
    #[error("invalid test configuration: {0}")]
    Config(String),
    /// `promtool tsdb create-blocks-from openmetrics` failed.
    #[error("promtool failed to backfill: {0}")]
    Promtool(String),
    /// Prometheus exited before it was ready.
    #[error("Prometheus exited before it was ready ({status}); its log:\n{log}")]
    Exited {
        /// The exit status.
        status: String,
        /// The end of Prometheus' log.
        log: String,
    },
    /// Prometheus did not answer `/-/ready` in time.
    #[error("Prometheus was not ready within {timeout:?} (last: {last}); its log:\n{log}")]
    NotReady {
        /// How long the harness waited.
        timeout: Duration,
        /// The last answer or error.
        last: String,
        /// The end of Prometheus' log.
        log: String,
    },
    /// No Alertmanager binary.
    #[error(
        "Alertmanager is not installed: no /usr/bin/prometheus-alertmanager and no \
         `prometheus-alertmanager` or `alertmanager` on PATH. Install it (Debian: \
         `apt-get install -y --no-install-recommends prometheus-alertmanager`); the project's \
         test script does this when it is missing"
    )]
    AlertmanagerNotInstalled,
    /// Alertmanager exited before it was ready.
    #[error("Alertmanager exited before it was ready ({status}); its log:\n{log}")]
    AlertmanagerExited {
        /// The exit status.
        status: String,
        /// The end of Alertmanager's log.
        log: String,
    },
    /// Alertmanager did not answer `/-/ready` in time.
    #[error("Alertmanager was not ready within {timeout:?} (last: {last}); its log:\n{log}")]
    AlertmanagerNotReady {
        /// How long the harness waited.
        timeout: Duration,
        /// The last answer or error.
        last: String,
        /// The end of Alertmanager's log.
        log: String,
    },
    /// A call to Alertmanager's API failed.
    #[error("Alertmanager API call `{call}` failed: {message}")]
    AlertmanagerApi {
        /// Method and path, e.g. `POST /api/v2/alerts`.
        call: String,
        /// Why: the HTTP status and body, or the transport error.
        message: String,
    },
    /// An operation that needs a running Prometheus was called after `stop`.
    #[error("Prometheus is stopped")]
    Stopped,
    /// A query failed.
    #[error("query `{query}` failed: {message}")]
    Query {
        /// The PromQL.
        query: String,
        /// Why.
        message: String,
    },
    /// A query stayed without data.
    #[error("query `{query}` returned no data within {timeout:?} (last answer: {last})")]
    NoData {
        /// The PromQL.
        query: String,
        /// How long the harness waited.
        timeout: Duration,
        /// The last `data` Prometheus returned, or the last error.
        last: String,
    },
}

impl fmt::Debug for PromTestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl PromTestError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        PromTestError::Io {
            context: context.into(),
            source,
        }
    }
}
