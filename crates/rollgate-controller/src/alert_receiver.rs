//! Alertmanager webhook receiver: the push path of alert-driven rollbacks.
//!
//! Alertmanager posts notifications (webhook payload version `"4"`) to [`router`]'s `POST /`
//! and `POST /alerts`. Every alert occurrence not seen before is sent once, as a
//! [`DeliveredAlert`], to the channel given to [`router`]; the controller uses it to wake the
//! matching rollouts at once. It is an accelerator only: pulling alerts stays the source of
//! truth, so nothing here has to be remembered across restarts.
//!
//! HTTP answers, chosen for Alertmanager's delivery rules (2xx is done, **only 5xx is retried**,
//! 4xx is logged and dropped):
//!
//! | answer | when |
//! | --- | --- |
//! | 200 | any well-formed payload, even one whose alerts match nothing or were all seen before |
//! | 400 | the body is not JSON, not `version: "4"`, or an alert lacks what rollgate reads |
//! | 401 | missing or wrong `Authorization: Bearer` token (nothing is sent) |
//! | 413 | the body is larger than [`ReceiverConfig::max_body_bytes`] |
//! | 503 | the channel is full (the controller is behind) or closed (it is stopping), or this replica does not lead ([`ReceiverConfig::only_while`]): Alertmanager retries, and the occurrences not sent yet are sent then |
//!
//! An *occurrence* is an alert's `fingerprint` plus its `startsAt`, firing or resolved.
//! Alertmanager repeats a firing group every `repeat_interval`, retries failed deliveries, and
//! each peer of an HA cluster delivers the same notification: all of them reach the channel
//! once. The memory of seen occurrences is bounded ([`ReceiverConfig::dedupe_capacity`];
//! resolved occurrences are also forgotten after [`ReceiverConfig::resolved_retention`]).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use k8s_openapi::jiff::Timestamp;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::mpsc;

/// Default bound of a request body: 1 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

/// Default number of occurrences remembered for deduplication.
pub const DEFAULT_DEDUPE_CAPACITY: usize = 10_000;

/// Default time a resolved occurrence is remembered after it was last delivered (late
/// retries and HA duplicates of the resolution arrive well within it).
pub const DEFAULT_RESOLVED_RETENTION: Duration = Duration::from_secs(60 * 60);

/// The only webhook payload version understood.
const PAYLOAD_VERSION: &str = "4";

/// One alert as delivered by Alertmanager (only what rollgate uses).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveredAlert {
    /// The `alertname` label (empty when the alert has none).
    pub name: String,
    /// All labels of the alert, `alertname` included.
    pub labels: BTreeMap<String, String>,
    /// When the alert became active (`startsAt`).
    pub starts_at: Timestamp,
    /// True for a firing alert, false for a resolved one.
    pub firing: bool,
    /// Alertmanager's fingerprint of the alert's labels.
    pub fingerprint: String,
}

/// How callers must authenticate.
#[derive(Clone)]
enum Auth {
    /// `Authorization: Bearer <token>`.
    Bearer(SecretString),
    /// Anyone may post (tests and development only).
    Insecure,
}

/// Settings of the receiver. Build it with [`ReceiverConfig::from_token_file`],
/// [`ReceiverConfig::with_token`] or, for tests and development, [`ReceiverConfig::insecure`]:
/// a receiver without a token cannot be built any other way.
#[derive(Clone)]
pub struct ReceiverConfig {
    auth: Auth,
    /// Largest accepted request body in bytes (larger: 413).
    pub max_body_bytes: usize,
    /// Most occurrences remembered; the oldest resolved, then the oldest firing, are forgotten
    /// first. At least 1 is used.
    pub dedupe_capacity: usize,
    /// How long a resolved occurrence is remembered after its last delivery.
    pub resolved_retention: Duration,
    /// Deliveries are taken only while this is true (see [`ReceiverConfig::only_while`]).
    accepting: Option<Accepting>,
}

/// Whether a receiver takes deliveries now.
type Accepting = Arc<dyn Fn() -> bool + Send + Sync>;

impl std::fmt::Debug for ReceiverConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let auth = match self.auth {
            Auth::Bearer(_) => "bearer token (redacted)",
            Auth::Insecure => "none (insecure)",
        };
        f.debug_struct("ReceiverConfig")
            .field("auth", &auth)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("dedupe_capacity", &self.dedupe_capacity)
            .field("resolved_retention", &self.resolved_retention)
            .field("gated", &self.accepting.is_some())
            .finish()
    }
}

/// Why a [`ReceiverConfig`] cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum ReceiverConfigError {
    /// The token file cannot be read.
    #[error("alert receiver token file {}: {source}", path.display())]
    TokenFile {
        /// The file.
        path: PathBuf,
        /// Why it cannot be read.
        #[source]
        source: std::io::Error,
    },
    /// The token (from `origin`) is empty or not usable in an `Authorization` header.
    #[error("alert receiver token from {origin}: expected {expected}")]
    InvalidToken {
        /// Where the token came from (a file path or "the configuration").
        origin: String,
        /// What was expected of it.
        expected: &'static str,
    },
}

impl ReceiverConfig {
    /// Requires `Authorization: Bearer <token>` (the token is trimmed of surrounding
    /// whitespace), with the default limits.
    ///
    /// # Errors
    ///
    /// [`ReceiverConfigError::InvalidToken`] when the token is empty or holds whitespace or
    /// control characters.
    pub fn with_token(token: &str) -> Result<Self, ReceiverConfigError> {
        Self::checked_token(token, "the configuration")
    }

    /// Reads the bearer token from `path` (e.g. a mounted Secret key), trimmed of surrounding
    /// whitespace and newlines, with the default limits.
    ///
    /// # Errors
    ///
    /// [`ReceiverConfigError::TokenFile`] when the file cannot be read,
    /// [`ReceiverConfigError::InvalidToken`] when it holds no usable token.
    pub fn from_token_file(path: impl AsRef<Path>) -> Result<Self, ReceiverConfigError> {
        let path = path.as_ref();
        let token =
            std::fs::read_to_string(path).map_err(|source| ReceiverConfigError::TokenFile {
                path: path.to_path_buf(),
                source,
            })?;
        let token = SecretString::from(token);
        Self::checked_token(token.expose_secret(), &path.display().to_string())
    }

    /// No authentication at all: for tests and development only.
    pub fn insecure() -> Self {
        Self::with_auth(Auth::Insecure)
    }

    fn checked_token(token: &str, origin: &str) -> Result<Self, ReceiverConfigError> {
        let token = token.trim();
        let invalid = |expected| ReceiverConfigError::InvalidToken {
            origin: origin.to_string(),
            expected,
        };
        if token.is_empty() {
            return Err(invalid("a non-empty bearer token"));
        }
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(invalid(
                "a bearer token of visible ASCII characters (no spaces or control characters)",
            ));
        }
        Ok(Self::with_auth(Auth::Bearer(SecretString::from(token))))
    }

    /// Takes deliveries only while `accepting` returns true, and answers 503 otherwise (after
    /// the token check), so that Alertmanager retries: a standby replica, whose controller does
    /// not run, would otherwise accept alerts that nothing acts on.
    #[must_use]
    pub fn only_while(mut self, accepting: impl Fn() -> bool + Send + Sync + 'static) -> Self {
        self.accepting = Some(Arc::new(accepting));
        self
    }

    fn with_auth(auth: Auth) -> Self {
        Self {
            auth,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            dedupe_capacity: DEFAULT_DEDUPE_CAPACITY,
            resolved_retention: DEFAULT_RESOLVED_RETENTION,
            accepting: None,
        }
    }
}

/// Why a webhook payload is refused (answered 400).
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    /// The body is not JSON.
    #[error("payload: expected a JSON Alertmanager webhook payload: {0}")]
    NotJson(#[source] serde_json::Error),
    /// The payload's `version` is not `"4"`.
    #[error("payload.version: expected \"4\", found {found}")]
    Version {
        /// The version found (as JSON, `null` when absent).
        found: String,
    },
    /// A field is missing or has the wrong form.
    #[error("payload.{field}: expected {expected}, found {found}")]
    Field {
        /// The field, e.g. `alerts[2].startsAt`.
        field: String,
        /// What was expected.
        expected: &'static str,
        /// What was found (as JSON, `null` when absent).
        found: String,
    },
}

/// The fields of one webhook alert that rollgate reads (the others are ignored).
#[derive(Deserialize)]
struct RawAlert {
    status: serde_json::Value,
    #[serde(default)]
    labels: serde_json::Value,
    #[serde(rename = "startsAt", default)]
    starts_at: serde_json::Value,
    #[serde(default)]
    fingerprint: serde_json::Value,
}

/// Parses a webhook payload (version `"4"`) into its alerts, in payload order.
///
/// # Errors
///
/// [`PayloadError`] naming the first field that is not as expected.
pub fn parse_payload(body: &[u8]) -> Result<Vec<DeliveredAlert>, PayloadError> {
    let payload: serde_json::Value = serde_json::from_slice(body).map_err(PayloadError::NotJson)?;
    let version = payload.get("version").unwrap_or(&serde_json::Value::Null);
    if version.as_str() != Some(PAYLOAD_VERSION) {
        return Err(PayloadError::Version {
            found: version.to_string(),
        });
    }
    let alerts = payload.get("alerts").unwrap_or(&serde_json::Value::Null);
    let Some(alerts) = alerts.as_array() else {
        return Err(PayloadError::Field {
            field: "alerts".into(),
            expected: "an array of alerts",
            found: alerts.to_string(),
        });
    };
    alerts
        .iter()
        .enumerate()
        .map(|(i, alert)| parse_alert(i, alert))
        .collect()
}

fn parse_alert(index: usize, alert: &serde_json::Value) -> Result<DeliveredAlert, PayloadError> {
    let field = |name: &str| {
        if name.is_empty() {
            format!("alerts[{index}]")
        } else {
            format!("alerts[{index}].{name}")
        }
    };
    let raw = RawAlert::deserialize(alert).map_err(|e| PayloadError::Field {
        field: field(""),
        expected: "an alert object with status, labels, startsAt and fingerprint",
        found: e.to_string(),
    })?;
    let firing = match raw.status.as_str() {
        Some("firing") => true,
        Some("resolved") => false,
        _ => {
            return Err(PayloadError::Field {
                field: field("status"),
                expected: "\"firing\" or \"resolved\"",
                found: raw.status.to_string(),
            });
        }
    };
    let labels: BTreeMap<String, String> =
        serde_json::from_value(raw.labels.clone()).map_err(|_| PayloadError::Field {
            field: field("labels"),
            expected: "an object of string labels",
            found: raw.labels.to_string(),
        })?;
    let starts_at = raw
        .starts_at
        .as_str()
        .and_then(|s| s.parse::<Timestamp>().ok())
        .ok_or_else(|| PayloadError::Field {
            field: field("startsAt"),
            expected: "an RFC 3339 time",
            found: raw.starts_at.to_string(),
        })?;
    let fingerprint = match raw.fingerprint.as_str() {
        Some(f) if !f.is_empty() => f.to_string(),
        _ => {
            return Err(PayloadError::Field {
                field: field("fingerprint"),
                expected: "a non-empty string",
                found: raw.fingerprint.to_string(),
            });
        }
    };
    Ok(DeliveredAlert {
        name: labels.get("alertname").cloned().unwrap_or_default(),
        labels,
        starts_at,
        firing,
        fingerprint,
    })
}

/// An occurrence: fingerprint and `startsAt`.
type Key = (String, Timestamp);

/// What is remembered of one occurrence.
struct Seen {
    /// Whether its resolution was forwarded.
    resolved: bool,
    /// Its position in `firing` or `resolved` (larger = delivered more recently).
    seq: u64,
    /// When it was last delivered.
    at: Instant,
}

/// What to do with one delivered alert.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// Not seen before: forward it.
    New,
    /// Seen before (repeat, retry, HA duplicate, or a firing copy arriving after the
    /// resolution of the same occurrence): drop it.
    Duplicate,
}

/// Bounded memory of the occurrences forwarded so far.
///
/// Each occurrence sits in one of two recency queues (firing, resolved); a delivery moves it
/// to the back of its queue. Above the capacity the front of the resolved queue goes first,
/// then the front of the firing queue; resolved occurrences also leave after the retention.
struct Dedupe {
    capacity: usize,
    resolved_retention: Duration,
    seen: HashMap<Key, Seen>,
    firing: BTreeMap<u64, Key>,
    resolved: BTreeMap<u64, Key>,
    next_seq: u64,
}

impl Dedupe {
    fn new(capacity: usize, resolved_retention: Duration) -> Self {
        Self {
            capacity: capacity.max(1),
            resolved_retention,
            seen: HashMap::new(),
            firing: BTreeMap::new(),
            resolved: BTreeMap::new(),
            next_seq: 0,
        }
    }

    /// Whether `alert` is new, without remembering it (see [`Dedupe::record`]).
    fn check(&self, alert: &DeliveredAlert) -> Verdict {
        let key = (alert.fingerprint.clone(), alert.starts_at);
        match self.seen.get(&key) {
            None => Verdict::New,
            Some(seen) if alert.firing || seen.resolved => Verdict::Duplicate,
            Some(_) => Verdict::New,
        }
    }

    /// Remembers that `alert` was delivered at `now` (forwarded or not).
    fn record(&mut self, alert: &DeliveredAlert, now: Instant) {
        let key = (alert.fingerprint.clone(), alert.starts_at);
        let seq = self.next_seq;
        self.next_seq += 1;
        let resolved = match self.seen.remove(&key) {
            Some(old) => {
                self.queue(old.resolved).remove(&old.seq);
                // A resolution stays a resolution: a late firing copy does not undo it.
                old.resolved || !alert.firing
            }
            None => !alert.firing,
        };
        self.queue(resolved).insert(seq, key.clone());
        self.seen.insert(
            key,
            Seen {
                resolved,
                seq,
                at: now,
            },
        );
        self.trim(now);
    }

    fn queue(&mut self, resolved: bool) -> &mut BTreeMap<u64, Key> {
        if resolved {
            &mut self.resolved
        } else {
            &mut self.firing
        }
    }

    /// Forgets resolved occurrences older than the retention, then the oldest ones above the
    /// capacity.
    fn trim(&mut self, now: Instant) {
        while let Some(entry) = self.resolved.first_entry() {
            let expired = self
                .seen
                .get(entry.get())
                .is_none_or(|s| now.saturating_duration_since(s.at) > self.resolved_retention);
            if !expired {
                break;
            }
            let key = entry.remove();
            self.seen.remove(&key);
        }
        while self.seen.len() > self.capacity {
            let oldest = match self.resolved.pop_first() {
                Some((_, key)) => Some(key),
                None => self.firing.pop_first().map(|(_, key)| key),
            };
            match oldest {
                Some(key) => {
                    self.seen.remove(&key);
                }
                None => break,
            }
        }
    }

    fn len(&self) -> usize {
        self.seen.len()
    }
}

/// The receiver's shared state.
struct Receiver {
    /// SHA-256 of the expected token (`None`: insecure). Comparing digests in constant time
    /// hides the token's length as well as its content.
    token_digest: Option<[u8; 32]>,
    max_body_bytes: usize,
    dedupe: Mutex<Dedupe>,
    tx: mpsc::Sender<DeliveredAlert>,
    accepting: Option<Accepting>,
}

/// The axum Router serving `POST /` (and `POST /alerts`) that parses the payload and sends
/// every newly seen occurrence to `tx` (see the [module documentation](self) for the answers).
pub fn router(config: ReceiverConfig, tx: mpsc::Sender<DeliveredAlert>) -> Router {
    let token_digest = match &config.auth {
        Auth::Bearer(token) => Some(digest(token.expose_secret().as_bytes())),
        Auth::Insecure => None,
    };
    let receiver = Arc::new(Receiver {
        token_digest,
        max_body_bytes: config.max_body_bytes,
        dedupe: Mutex::new(Dedupe::new(
            config.dedupe_capacity,
            config.resolved_retention,
        )),
        tx,
        accepting: config.accepting.clone(),
    });
    Router::new()
        .route("/", post(receive))
        .route("/alerts", post(receive))
        .with_state(receiver)
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Whether the request carries the expected bearer token.
fn authorized(expected: &[u8; 32], headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return false;
    };
    let value = value.as_bytes();
    // The scheme is case-insensitive (RFC 9110 section 11.1).
    let Some((scheme, token)) = value.split_at_checked(7) else {
        return false;
    };
    if !scheme.eq_ignore_ascii_case(b"bearer ") {
        return false;
    }
    bool::from(digest(token.trim_ascii()).ct_eq(expected))
}

fn text(status: StatusCode, body: impl Into<String>) -> Response {
    (status, body.into()).into_response()
}

async fn receive(State(receiver): State<Arc<Receiver>>, request: Request) -> Response {
    if let Some(expected) = &receiver.token_digest
        && !authorized(expected, request.headers())
    {
        tracing::warn!("alert receiver: request without a valid bearer token refused");
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer realm=\"rollgate\"")],
            "expected header Authorization: Bearer <token>",
        )
            .into_response();
    }
    if receiver
        .accepting
        .as_ref()
        .is_some_and(|accepting| !accepting())
    {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            "this replica does not lead: retry (another replica takes deliveries)",
        );
    }
    let body = match read_body(request.into_body(), receiver.max_body_bytes).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let alerts = match parse_payload(&body) {
        Ok(alerts) => alerts,
        Err(e) => {
            tracing::warn!(error = %e, "alert receiver: payload refused");
            return text(StatusCode::BAD_REQUEST, e.to_string());
        }
    };
    forward(&receiver, alerts)
}

/// The whole body, at most `max` bytes.
async fn read_body(body: Body, max: usize) -> Result<axum::body::Bytes, Response> {
    let too_large = || {
        text(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("body: expected at most {max} bytes"),
        )
    };
    match Limited::new(body, max).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(too_large()),
        Err(e) => Err(text(
            StatusCode::BAD_REQUEST,
            format!("body: expected a readable request body: {e}"),
        )),
    }
}

/// Sends the new occurrences of `alerts`, remembering only those sent.
fn forward(receiver: &Receiver, alerts: Vec<DeliveredAlert>) -> Response {
    // One lock for the whole payload: concurrent HA duplicates cannot both pass the check.
    let mut dedupe = receiver
        .dedupe
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    // Read under the lock, so that times follow the recency order.
    let now = Instant::now();
    let total = alerts.len();
    let mut sent = 0usize;
    for alert in alerts {
        if dedupe.check(&alert) == Verdict::Duplicate {
            dedupe.record(&alert, now);
            continue;
        }
        let pending = alert.clone();
        match receiver.tx.try_send(pending) {
            Ok(()) => {
                dedupe.record(&alert, now);
                sent += 1;
            }
            Err(e) => {
                let why = match e {
                    mpsc::error::TrySendError::Full(_) => "the controller is behind",
                    mpsc::error::TrySendError::Closed(_) => "the controller is stopping",
                };
                tracing::warn!(
                    sent,
                    total,
                    why,
                    "alert receiver: cannot queue an alert, asking Alertmanager to retry"
                );
                return text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("{why}: {sent} of {total} alerts queued, retry later"),
                );
            }
        }
    }
    tracing::debug!(
        sent,
        total,
        remembered = dedupe.len(),
        "alert receiver: payload handled"
    );
    text(
        StatusCode::OK,
        format!("{sent} of {total} alerts forwarded"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(fingerprint: &str, starts_secs: i64, firing: bool) -> DeliveredAlert {
        DeliveredAlert {
            name: "HighErrorRate".into(),
            labels: BTreeMap::new(),
            starts_at: Timestamp::from_second(1_800_000_000 + starts_secs).expect("time"),
            firing,
            fingerprint: fingerprint.into(),
        }
    }

    /// Checks and, like the receiver, records: true when it would be forwarded.
    fn deliver(d: &mut Dedupe, a: &DeliveredAlert, now: Instant) -> bool {
        let new = d.check(a) == Verdict::New;
        d.record(a, now);
        new
    }

    #[test]
    fn an_occurrence_is_forwarded_once_firing_and_once_resolved() {
        let mut d = Dedupe::new(10, Duration::from_secs(60));
        let t = Instant::now();
        assert!(deliver(&mut d, &alert("a", 0, true), t));
        assert!(!deliver(&mut d, &alert("a", 0, true), t));
        assert!(deliver(&mut d, &alert("a", 0, false), t));
        assert!(!deliver(&mut d, &alert("a", 0, false), t));
        // A late firing copy of the resolved occurrence does not revive it.
        assert!(!deliver(&mut d, &alert("a", 0, true), t));
        assert!(!deliver(&mut d, &alert("a", 0, false), t));
        // A new startsAt is a new occurrence.
        assert!(deliver(&mut d, &alert("a", 5, true), t));
    }

    #[test]
    fn resolved_occurrences_age_out_after_the_retention() {
        let retention = Duration::from_secs(60);
        let mut d = Dedupe::new(10, retention);
        let t = Instant::now();
        deliver(&mut d, &alert("r", 0, false), t);
        deliver(&mut d, &alert("f", 0, true), t);
        assert_eq!(d.len(), 2);
        // Within the retention: still remembered.
        deliver(&mut d, &alert("x", 0, true), t + retention);
        assert_eq!(d.len(), 3);
        assert_eq!(d.check(&alert("r", 0, false)), Verdict::Duplicate);
        // Past it: the resolved one is gone, the firing ones stay.
        deliver(&mut d, &alert("y", 0, true), t + retention * 2);
        assert_eq!(d.len(), 3);
        assert_eq!(d.check(&alert("r", 0, false)), Verdict::New);
        assert_eq!(d.check(&alert("f", 0, true)), Verdict::Duplicate);
    }

    #[test]
    fn the_memory_is_bounded_and_forgets_resolved_then_least_recent_firing_first() {
        let mut d = Dedupe::new(3, Duration::from_secs(3600));
        let t = Instant::now();
        deliver(&mut d, &alert("f1", 0, true), t);
        deliver(&mut d, &alert("f2", 0, true), t);
        deliver(&mut d, &alert("r1", 0, false), t);
        // Full: the resolved one goes first, although it is the most recent.
        deliver(&mut d, &alert("f3", 0, true), t);
        assert_eq!(d.len(), 3);
        assert_eq!(d.check(&alert("r1", 0, false)), Verdict::New);
        // f1 repeats (Alertmanager's repeat_interval): it becomes the most recent firing one.
        assert!(!deliver(&mut d, &alert("f1", 0, true), t));
        deliver(&mut d, &alert("f4", 0, true), t);
        assert_eq!(d.len(), 3);
        assert_eq!(d.check(&alert("f2", 0, true)), Verdict::New);
        assert_eq!(d.check(&alert("f1", 0, true)), Verdict::Duplicate);
        // Many more occurrences never grow it past the capacity.
        for i in 0..1000 {
            deliver(&mut d, &alert(&format!("n{i}"), i, i % 2 == 0), t);
            assert!(d.len() <= 3);
        }
        assert_eq!(d.firing.len() + d.resolved.len(), d.len());
    }

    #[test]
    fn payload_errors_name_the_field() {
        let err = |body: &str| parse_payload(body.as_bytes()).expect_err(body).to_string();
        assert!(err("nope").starts_with("payload: expected a JSON"));
        assert_eq!(
            err(r#"{"version":"3","alerts":[]}"#),
            "payload.version: expected \"4\", found \"3\""
        );
        assert_eq!(
            err(r#"{"alerts":[]}"#),
            "payload.version: expected \"4\", found null"
        );
        assert_eq!(
            err(r#"{"version":"4"}"#),
            "payload.alerts: expected an array of alerts, found null"
        );
        let one = |alert: &str| format!(r#"{{"version":"4","alerts":[{alert}]}}"#);
        assert_eq!(
            err(&one(
                r#"{"status":"pending","labels":{},"startsAt":"2026-01-01T00:00:00Z","fingerprint":"f"}"#
            )),
            "payload.alerts[0].status: expected \"firing\" or \"resolved\", found \"pending\""
        );
        assert_eq!(
            err(&one(
                r#"{"status":"firing","labels":{},"startsAt":"yesterday","fingerprint":"f"}"#
            )),
            "payload.alerts[0].startsAt: expected an RFC 3339 time, found \"yesterday\""
        );
        assert_eq!(
            err(&one(
                r#"{"status":"firing","labels":{"a":1},"startsAt":"2026-01-01T00:00:00Z","fingerprint":"f"}"#
            )),
            "payload.alerts[0].labels: expected an object of string labels, found {\"a\":1}"
        );
        assert_eq!(
            err(&one(
                r#"{"status":"firing","labels":{},"startsAt":"2026-01-01T00:00:00Z"}"#
            )),
            "payload.alerts[0].fingerprint: expected a non-empty string, found null"
        );
    }

    #[test]
    fn tokens_are_trimmed_and_checked() {
        assert!(ReceiverConfig::with_token("  \n").is_err());
        assert!(ReceiverConfig::with_token("two words").is_err());
        let config = ReceiverConfig::with_token(" s3cret\n").expect("valid token");
        let Auth::Bearer(token) = &config.auth else {
            panic!("expected a bearer token");
        };
        assert_eq!(token.expose_secret(), "s3cret");
        assert!(!format!("{config:?}").contains("s3cret"));
    }

    #[test]
    fn bearer_scheme_is_case_insensitive_and_token_exact() {
        let expected = digest(b"tok");
        let headers = |value: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::AUTHORIZATION, value.parse().expect("header value"));
            h
        };
        assert!(authorized(&expected, &headers("Bearer tok")));
        assert!(authorized(&expected, &headers("bearer tok")));
        assert!(!authorized(&expected, &headers("Bearer tok2")));
        assert!(!authorized(&expected, &headers("Bearer to")));
        assert!(!authorized(&expected, &headers("Basic tok")));
        assert!(!authorized(&expected, &headers("Bearer")));
        assert!(!authorized(&expected, &HeaderMap::new()));
    }
}
