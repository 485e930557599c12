//! Why a query produced no value.

use std::time::Duration;

/// A failed query. `Display` is a single line that names the Prometheus address (with any
/// password in it hidden), fit for an AnalysisRun's status.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// The request itself is wrong: a bad address, header, CA bundle or range.
    #[error("invalid request to Prometheus at {address}: {reason}")]
    InvalidRequest {
        /// The Prometheus address.
        address: String,
        /// What is wrong.
        reason: String,
    },
    /// No connection could be opened: refused, no route, unknown host.
    #[error("Prometheus at {address} is unreachable: {message}")]
    Unreachable {
        /// The Prometheus address.
        address: String,
        /// The underlying cause.
        message: String,
    },
    /// The exchange did not complete within the timeout.
    #[error("Prometheus at {address} did not answer within {timeout:?}")]
    Timeout {
        /// The Prometheus address.
        address: String,
        /// The timeout that applied.
        timeout: Duration,
    },
    /// The TLS handshake failed, e.g. an untrusted certificate.
    #[error("TLS with Prometheus at {address} failed: {message}")]
    Tls {
        /// The Prometheus address.
        address: String,
        /// The underlying cause.
        message: String,
    },
    /// The connection failed after it was opened (reset, closed early).
    #[error("connection to Prometheus at {address} failed: {message}")]
    Transport {
        /// The Prometheus address.
        address: String,
        /// The underlying cause.
        message: String,
    },
    /// An HTTP error status without a Prometheus error document (e.g. 401 from an auth layer,
    /// 502 from a proxy).
    #[error("Prometheus at {address} answered HTTP {status}: {body}")]
    Http {
        /// The Prometheus address.
        address: String,
        /// The HTTP status code.
        status: u16,
        /// The start of the response body, on one line.
        body: String,
    },
    /// Prometheus answered `status: error`, e.g. `bad_data` for a PromQL syntax error.
    #[error("Prometheus at {address} rejected the query ({error_type}): {message}")]
    Query {
        /// The Prometheus address.
        address: String,
        /// Prometheus' `errorType`: `bad_data`, `execution`, `timeout`, `canceled`, ...
        error_type: String,
        /// Prometheus' `error` text.
        message: String,
    },
    /// The answer was longer than the limit ([`crate::Request::max_answer_bytes`]): reading
    /// stopped there, nothing of it is used.
    #[error("the answer of Prometheus at {address} exceeds {limit} bytes")]
    TooLarge {
        /// The Prometheus address.
        address: String,
        /// The limit that applied, in bytes.
        limit: usize,
    },
    /// The answer could not be understood (not JSON, unexpected shape, unknown result type).
    #[error("unreadable answer from Prometheus at {address}: {message}")]
    Decode {
        /// The Prometheus address.
        address: String,
        /// What could not be read.
        message: String,
    },
}

impl ProviderError {
    /// The Prometheus address the error is about (password hidden).
    pub fn address(&self) -> &str {
        match self {
            ProviderError::InvalidRequest { address, .. }
            | ProviderError::Unreachable { address, .. }
            | ProviderError::Timeout { address, .. }
            | ProviderError::Tls { address, .. }
            | ProviderError::Transport { address, .. }
            | ProviderError::Http { address, .. }
            | ProviderError::Query { address, .. }
            | ProviderError::TooLarge { address, .. }
            | ProviderError::Decode { address, .. } => address,
        }
    }

    /// A short stable name of the variant (`unreachable`, `timeout`, `http`, ...), e.g. for a
    /// metric label.
    pub fn kind(&self) -> &'static str {
        match self {
            ProviderError::InvalidRequest { .. } => "invalid_request",
            ProviderError::Unreachable { .. } => "unreachable",
            ProviderError::Timeout { .. } => "timeout",
            ProviderError::Tls { .. } => "tls",
            ProviderError::Transport { .. } => "transport",
            ProviderError::Http { .. } => "http",
            ProviderError::Query { .. } => "query",
            ProviderError::TooLarge { .. } => "too_large",
            ProviderError::Decode { .. } => "decode",
        }
    }
}

/// Longest text kept from a server's answer or an error chain.
const MAX_TEXT: usize = 300;

/// `text` on one line (whitespace runs collapsed) and at most [`MAX_TEXT`] characters.
pub(crate) fn one_line(text: &str) -> String {
    let mut out = String::new();
    for (i, word) in text.split_whitespace().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(word);
    }
    if out.chars().count() > MAX_TEXT {
        let mut cut: String = out.chars().take(MAX_TEXT).collect();
        cut.push('…');
        cut
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_collapses_and_truncates() {
        assert_eq!(one_line("a\n  b\tc\r\n"), "a b c");
        let long = "x".repeat(MAX_TEXT + 10);
        let cut = one_line(&long);
        assert_eq!(cut.chars().count(), MAX_TEXT + 1);
        assert!(cut.ends_with('…'));
        let multibyte = "é".repeat(MAX_TEXT + 1);
        assert_eq!(one_line(&multibyte).chars().count(), MAX_TEXT + 1);
    }

    #[test]
    fn display_is_one_line_with_address() {
        let e = ProviderError::Query {
            address: "http://p:9090".into(),
            error_type: "bad_data".into(),
            message: "parse error".into(),
        };
        assert_eq!(
            e.to_string(),
            "Prometheus at http://p:9090 rejected the query (bad_data): parse error"
        );
        let t = ProviderError::Timeout {
            address: "http://p:9090".into(),
            timeout: Duration::from_millis(250),
        };
        assert_eq!(
            t.to_string(),
            "Prometheus at http://p:9090 did not answer within 250ms"
        );
        assert_eq!(t.kind(), "timeout");
        assert_eq!(t.address(), "http://p:9090");
    }
}
