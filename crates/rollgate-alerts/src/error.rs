//! Why the firing alerts are unknown.

use std::time::Duration;

use rollgate_prometheus::ProviderError;

use crate::SourceKind;

/// The firing alerts could not be read: they are unknown (never "none fire"). `Display` is a
/// single line naming the source and its address (with any password in it hidden).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AlertsError {
    /// The query itself is wrong: a bad address, timeout, credentials, CA bundle or matcher.
    #[error("invalid alert query to {server} at {address}: {reason}")]
    InvalidQuery {
        /// The kind of source.
        server: SourceKind,
        /// The source's address.
        address: String,
        /// What is wrong.
        reason: String,
    },
    /// No connection could be opened: refused, no route, unknown host.
    #[error("{server} at {address} is unreachable: {message}")]
    Unreachable {
        /// The kind of source.
        server: SourceKind,
        /// The source's address.
        address: String,
        /// The underlying cause.
        message: String,
    },
    /// The exchange did not complete within the timeout.
    #[error("{server} at {address} did not answer within {timeout:?}")]
    Timeout {
        /// The kind of source.
        server: SourceKind,
        /// The source's address.
        address: String,
        /// The timeout that applied.
        timeout: Duration,
    },
    /// The TLS handshake failed, e.g. an untrusted certificate.
    #[error("TLS with {server} at {address} failed: {message}")]
    Tls {
        /// The kind of source.
        server: SourceKind,
        /// The source's address.
        address: String,
        /// The underlying cause.
        message: String,
    },
    /// The connection failed after it was opened (reset, closed early).
    #[error("connection to {server} at {address} failed: {message}")]
    Transport {
        /// The kind of source.
        server: SourceKind,
        /// The source's address.
        address: String,
        /// The underlying cause.
        message: String,
    },
    /// An HTTP error status (e.g. 401 from an auth layer, 400 for a filter Alertmanager
    /// refused, 502 from a proxy).
    #[error("{server} at {address} answered HTTP {status}: {body}")]
    Http {
        /// The kind of source.
        server: SourceKind,
        /// The source's address.
        address: String,
        /// The HTTP status code.
        status: u16,
        /// The start of the response body, on one line.
        body: String,
    },
    /// Prometheus answered `status: error` to the query.
    #[error("{server} at {address} rejected the query ({error_type}): {message}")]
    Rejected {
        /// The kind of source.
        server: SourceKind,
        /// The source's address.
        address: String,
        /// Prometheus' `errorType`, e.g. `bad_data`.
        error_type: String,
        /// Prometheus' `error` text.
        message: String,
    },
    /// The answer was longer than the limit: reading stopped there, nothing of it is used.
    #[error("the answer of {server} at {address} exceeds {limit} bytes")]
    TooLarge {
        /// The kind of source.
        server: SourceKind,
        /// The source's address.
        address: String,
        /// The limit that applied, in bytes.
        limit: usize,
    },
    /// The answer is not what the API returns (not JSON, a missing field, a bad time).
    #[error("unreadable answer from {server} at {address}: {message}")]
    Decode {
        /// The kind of source.
        server: SourceKind,
        /// The source's address.
        address: String,
        /// What could not be read.
        message: String,
    },
}

impl AlertsError {
    /// The kind of source the error is about.
    pub fn server(&self) -> SourceKind {
        match self {
            AlertsError::InvalidQuery { server, .. }
            | AlertsError::Unreachable { server, .. }
            | AlertsError::Timeout { server, .. }
            | AlertsError::Tls { server, .. }
            | AlertsError::Transport { server, .. }
            | AlertsError::Http { server, .. }
            | AlertsError::Rejected { server, .. }
            | AlertsError::TooLarge { server, .. }
            | AlertsError::Decode { server, .. } => *server,
        }
    }

    /// The address the error is about (password hidden).
    pub fn address(&self) -> &str {
        match self {
            AlertsError::InvalidQuery { address, .. }
            | AlertsError::Unreachable { address, .. }
            | AlertsError::Timeout { address, .. }
            | AlertsError::Tls { address, .. }
            | AlertsError::Transport { address, .. }
            | AlertsError::Http { address, .. }
            | AlertsError::Rejected { address, .. }
            | AlertsError::TooLarge { address, .. }
            | AlertsError::Decode { address, .. } => address,
        }
    }

    /// A short stable name of the variant (`unreachable`, `timeout`, `http`, ...), e.g. for a
    /// metric label.
    pub fn kind(&self) -> &'static str {
        match self {
            AlertsError::InvalidQuery { .. } => "invalid_query",
            AlertsError::Unreachable { .. } => "unreachable",
            AlertsError::Timeout { .. } => "timeout",
            AlertsError::Tls { .. } => "tls",
            AlertsError::Transport { .. } => "transport",
            AlertsError::Http { .. } => "http",
            AlertsError::Rejected { .. } => "rejected",
            AlertsError::TooLarge { .. } => "too_large",
            AlertsError::Decode { .. } => "decode",
        }
    }

    /// The Prometheus provider's error as ours.
    pub(crate) fn from_provider(e: ProviderError) -> AlertsError {
        let server = SourceKind::Prometheus;
        match e {
            ProviderError::InvalidRequest { address, reason } => AlertsError::InvalidQuery {
                server,
                address,
                reason,
            },
            ProviderError::Unreachable { address, message } => AlertsError::Unreachable {
                server,
                address,
                message,
            },
            ProviderError::Timeout { address, timeout } => AlertsError::Timeout {
                server,
                address,
                timeout,
            },
            ProviderError::Tls { address, message } => AlertsError::Tls {
                server,
                address,
                message,
            },
            ProviderError::Transport { address, message } => AlertsError::Transport {
                server,
                address,
                message,
            },
            ProviderError::Http {
                address,
                status,
                body,
            } => AlertsError::Http {
                server,
                address,
                status,
                body,
            },
            ProviderError::Query {
                address,
                error_type,
                message,
            } => AlertsError::Rejected {
                server,
                address,
                error_type,
                message,
            },
            ProviderError::TooLarge { address, limit } => AlertsError::TooLarge {
                server,
                address,
                limit,
            },
            ProviderError::Decode { address, message } => AlertsError::Decode {
                server,
                address,
                message,
            },
        }
    }
}

/// Longest text kept from a server's answer or an error chain.
const MAX_TEXT: usize = 300;

/// `text` on one line (whitespace runs collapsed) and at most [`MAX_TEXT`] characters.
pub(crate) fn one_line(text: &str) -> String {
    let mut out = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if out.chars().count() > MAX_TEXT {
        out = out.chars().take(MAX_TEXT).collect();
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_source_and_address() {
        let e = AlertsError::Http {
            server: SourceKind::Alertmanager,
            address: "http://am:9093".into(),
            status: 502,
            body: "bad gateway".into(),
        };
        assert_eq!(
            e.to_string(),
            "Alertmanager at http://am:9093 answered HTTP 502: bad gateway"
        );
        assert_eq!(
            (e.kind(), e.server(), e.address()),
            ("http", SourceKind::Alertmanager, "http://am:9093")
        );
    }

    #[test]
    fn provider_errors_keep_their_class() {
        let converted = AlertsError::from_provider(ProviderError::Query {
            address: "http://p:9090".into(),
            error_type: "bad_data".into(),
            message: "parse error".into(),
        });
        assert_eq!(converted.kind(), "rejected");
        assert_eq!(converted.server(), SourceKind::Prometheus);
        let unreachable = AlertsError::from_provider(ProviderError::Unreachable {
            address: "http://p:9090".into(),
            message: "connection refused".into(),
        });
        assert_eq!(
            unreachable.to_string(),
            "Prometheus at http://p:9090 is unreachable: connection refused"
        );
    }

    #[test]
    fn one_line_collapses_and_truncates() {
        assert_eq!(one_line("a\n  b\tc\r\n"), "a b c");
        let cut = one_line(&"é".repeat(MAX_TEXT + 5));
        assert_eq!(cut.chars().count(), MAX_TEXT + 1);
        assert!(cut.ends_with('…'));
    }
}
