//! Which alerts are firing: the I/O side of rolling back on alerts.
//!
//! [`firing`] takes an [`AlertQuery`] (the kind of source, its address, label [`Matcher`]s,
//! credentials, TLS, a timeout) and returns the [`FiringAlert`]s that match every matcher,
//! sorted by name then fingerprint:
//!
//! * **Alertmanager** (API v2): `GET {address}/api/v2/alerts?active=true&silenced=false&
//!   inhibited=false&unprocessed=false` with one `filter=` per matcher. Alertmanager knows the
//!   silences and inhibitions, so a silenced or inhibited alert is not returned: an operator
//!   silences an alert to stop an automatic rollback. Only alerts whose `status.state` is
//!   `active` are kept. The name is the `alertname` label, `startsAt` and `fingerprint` are
//!   Alertmanager's.
//! * **Prometheus**: one instant query,
//!   `ALERTS_FOR_STATE{<matchers>} and ignoring(alertstate) ALERTS{alertstate="firing", <matchers>}`:
//!   the firing alerts (pending ones are left out), each with the value of its
//!   `ALERTS_FOR_STATE` series, the Unix time it became active, as `starts_at`. Asking both
//!   series in one query reads them at the same instant, so an alert cannot be in one and not
//!   the other. The labels are the series' without `__name__` and `alertstate`; the
//!   fingerprint is [`rollgate_api::matcher::fingerprint`] of them, the one Alertmanager
//!   shows for the same label set. Matchers on `__name__` or `alertstate` are refused.
//!
//! The matchers are also checked on the answer, so an alert that does not match them is never
//! returned even by a server that ignored a filter.
//!
//! Every failure is an [`AlertsError`] naming the source and address; it means "unknown",
//! never "no alerts": an unreachable source, an HTTP error status, an answer that is not what
//! the API returns, an answer larger than [`AlertQuery::max_answer_bytes`] (default
//! [`DEFAULT_MAX_ANSWER_BYTES`], 10 MiB, read piece by piece and cut off there) or a timeout.
//! Only `http` and `https` addresses are accepted.
//!
//! Prometheus is queried through [`rollgate_prometheus::query`]; Alertmanager through a
//! `reqwest` client built for each call the same way (rustls with `ring`, the given CA bundle
//! or no verification at all, `Authorization` from [`Auth`]).

mod alertmanager;
mod error;
mod http;
mod prometheus;

use std::fmt;
use std::time::Duration;

pub use error::AlertsError;
pub use rollgate_api::matcher::{FiringAlert, MatchOp, Matcher};
pub use rollgate_prometheus::{Auth, DEFAULT_MAX_ANSWER_BYTES, Tls};

/// Timeout of an [`AlertQuery`] made with [`AlertQuery::new`].
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the alerts come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SourceKind {
    /// Alertmanager's API v2: silences and inhibitions apply.
    Alertmanager,
    /// Prometheus' `ALERTS` and `ALERTS_FOR_STATE` series.
    Prometheus,
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SourceKind::Alertmanager => "Alertmanager",
            SourceKind::Prometheus => "Prometheus",
        })
    }
}

/// One question: which alerts matching these matchers fire at this source?
///
/// `Debug` hides credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertQuery {
    /// Alertmanager or Prometheus.
    pub kind: SourceKind,
    /// Base URL, `http://` or `https://`, e.g. `http://alertmanager.monitoring:9093` (a path
    /// prefix such as `https://proxy/alertmanager` is kept).
    pub address: String,
    /// The alerts must match all of them; none: every firing alert.
    pub matchers: Vec<Matcher>,
    /// Credentials sent in the `Authorization` header.
    pub auth: Auth,
    /// Certificate verification for `https` addresses.
    pub tls: Tls,
    /// Limit on the whole exchange (connect, send, answer); must be above zero.
    pub timeout: Duration,
    /// Largest answer read, in bytes; `None` means [`DEFAULT_MAX_ANSWER_BYTES`].
    pub max_answer_bytes: Option<usize>,
}

impl AlertQuery {
    /// All firing alerts of the source at `address`, without credentials, with
    /// [`DEFAULT_TIMEOUT`].
    pub fn new(kind: SourceKind, address: impl Into<String>) -> Self {
        AlertQuery {
            kind,
            address: address.into(),
            matchers: Vec::new(),
            auth: Auth::None,
            tls: Tls::default(),
            timeout: DEFAULT_TIMEOUT,
            max_answer_bytes: None,
        }
    }

    /// Adds a matcher.
    pub fn matcher(mut self, matcher: Matcher) -> Self {
        self.matchers.push(matcher);
        self
    }

    /// The answer size limit that applies.
    pub fn effective_max_answer_bytes(&self) -> usize {
        self.max_answer_bytes.unwrap_or(DEFAULT_MAX_ANSWER_BYTES)
    }
}

/// The firing alerts that match every matcher of `query`, sorted by name then fingerprint.
/// An empty list means the source answered that none fires.
///
/// # Errors
///
/// An [`AlertsError`] when the answer is unknown; see its variants.
pub async fn firing(query: &AlertQuery) -> Result<Vec<FiringAlert>, AlertsError> {
    let mut alerts = match query.kind {
        SourceKind::Alertmanager => alertmanager::firing(query).await?,
        SourceKind::Prometheus => prometheus::firing(query).await?,
    };
    alerts.retain(|alert| query.matchers.iter().all(|m| m.matches(&alert.labels)));
    alerts.sort_by(|a, b| (&a.name, &a.fingerprint).cmp(&(&b.name, &b.fingerprint)));
    Ok(alerts)
}
