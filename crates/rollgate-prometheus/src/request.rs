//! What to ask Prometheus, and how to reach it.

use std::fmt;
use std::time::Duration;

use jiff::Timestamp;

/// Timeout of a query whose [`Request::timeout`] is `None`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Largest answer read from Prometheus when [`Request::max_answer_bytes`] is `None`: 10 MiB.
///
/// The body is read piece by piece and the exchange stops as soon as it grows past the limit
/// (an answer that announces a larger `Content-Length` is refused before its body is read), so
/// a server streaming an endless answer costs at most this much memory per query. A real
/// answer of that size is a query returning far more series than a condition can judge.
pub const DEFAULT_MAX_ANSWER_BYTES: usize = 10 * 1024 * 1024;

/// One query to run against one Prometheus server.
///
/// `Debug` hides header values and credentials.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Request {
    /// Base URL of the Prometheus server, e.g. `http://prometheus.monitoring:9090` (a path
    /// prefix such as `https://proxy/prometheus` is kept).
    pub address: String,
    /// The PromQL expression.
    pub query: String,
    /// Limit on the whole exchange (connect, send, answer); `None` means [`DEFAULT_TIMEOUT`].
    pub timeout: Option<Duration>,
    /// Extra HTTP headers sent with the query, in order (a name may repeat).
    pub headers: Vec<(String, String)>,
    /// Credentials; they replace an `Authorization` header given in [`Request::headers`].
    pub auth: Auth,
    /// Certificate verification for `https` addresses.
    pub tls: Tls,
    /// Run a range query over these bounds instead of an instant query.
    pub range: Option<Range>,
    /// Evaluation time of an instant query; `None` means the server's now. Ignored for a range
    /// query.
    pub time: Option<Timestamp>,
    /// Largest answer body read, in bytes; `None` means [`DEFAULT_MAX_ANSWER_BYTES`]. A longer
    /// answer is a [`crate::ProviderError::TooLarge`].
    pub max_answer_bytes: Option<usize>,
}

impl Request {
    /// An instant query of `query` at the server's current time, with the defaults.
    pub fn new(address: impl Into<String>, query: impl Into<String>) -> Self {
        Request {
            address: address.into(),
            query: query.into(),
            ..Request::default()
        }
    }

    /// The timeout that applies: [`Request::timeout`] or [`DEFAULT_TIMEOUT`].
    pub fn effective_timeout(&self) -> Duration {
        self.timeout.unwrap_or(DEFAULT_TIMEOUT)
    }

    /// The answer size limit that applies: [`Request::max_answer_bytes`] or
    /// [`DEFAULT_MAX_ANSWER_BYTES`].
    pub fn effective_max_answer_bytes(&self) -> usize {
        self.max_answer_bytes.unwrap_or(DEFAULT_MAX_ANSWER_BYTES)
    }
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(name, _)| (name.as_str(), "<redacted>"))
            .collect();
        f.debug_struct("Request")
            .field("address", &self.address)
            .field("query", &self.query)
            .field("timeout", &self.timeout)
            .field("headers", &headers)
            .field("auth", &self.auth)
            .field("tls", &self.tls)
            .field("range", &self.range)
            .field("time", &self.time)
            .field("max_answer_bytes", &self.max_answer_bytes)
            .finish()
    }
}

/// Credentials sent in the `Authorization` header.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub enum Auth {
    /// No credentials.
    #[default]
    None,
    /// `Authorization: Bearer TOKEN`.
    Bearer(String),
    /// `Authorization: Basic base64(user:password)`.
    Basic {
        /// User name.
        user: String,
        /// Password.
        password: String,
    },
}

impl fmt::Debug for Auth {
    /// Never prints the secret itself.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::None => f.write_str("None"),
            Auth::Bearer(_) => f.write_str("Bearer(<redacted>)"),
            Auth::Basic { user, .. } => f
                .debug_struct("Basic")
                .field("user", user)
                .field("password", &"<redacted>")
                .finish(),
        }
    }
}

/// How the server's certificate is checked on an `https` address.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Tls {
    /// Accept any certificate (no verification at all). Takes precedence over `ca_pem`.
    pub insecure: bool,
    /// Extra trusted root certificates, PEM (one or several `CERTIFICATE` blocks), trusted in
    /// addition to the system's roots.
    pub ca_pem: Option<Vec<u8>>,
}

impl fmt::Debug for Tls {
    /// Shows the size of the CA bundle, not its bytes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls")
            .field("insecure", &self.insecure)
            .field(
                "ca_pem",
                &self
                    .ca_pem
                    .as_ref()
                    .map(|pem| format!("<{} bytes>", pem.len())),
            )
            .finish()
    }
}

/// Bounds and resolution of a range query.
///
/// Prometheus' range API is called with whole seconds: `start` and `end` are truncated to the
/// second; `step` keeps its fraction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Range {
    /// First evaluation time.
    pub start: Timestamp,
    /// Last possible evaluation time.
    pub end: Timestamp,
    /// Time between two evaluations; must not be zero.
    pub step: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_secrets() {
        let mut request = Request::new("http://p:9090", "up");
        request.headers = vec![("X-Api-Key".into(), "k3y".into())];
        request.auth = Auth::Basic {
            user: "alice".into(),
            password: "pw-secret".into(),
        };
        request.tls.ca_pem = Some(vec![1, 2, 3]);
        let text = format!("{request:?}");
        assert!(text.contains("X-Api-Key"), "{text}");
        assert!(text.contains("<3 bytes>"), "{text}");
        assert!(
            !text.contains("k3y") && !text.contains("pw-secret"),
            "{text}"
        );
        assert!(format!("{:?}", Auth::Bearer("t0ken".into())).contains("redacted"));
        assert_eq!(request.effective_timeout(), DEFAULT_TIMEOUT);
    }
}
