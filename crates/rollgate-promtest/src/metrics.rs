//! A tiny `/metrics` endpoint with request and error counters and a request-duration
//! histogram per version.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

use crate::error::PromTestError;

/// The content type of Prometheus' text exposition format.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The upper bounds (`le`, in seconds) of the buckets of `http_request_duration_seconds`, in
/// increasing order; a last bucket `le="+Inf"` holds every request.
pub const DURATION_BUCKETS: [f64; 5] = [0.05, 0.1, 0.3, 1.0, 2.5];

/// The name of the request-duration histogram.
const DURATION: &str = "http_request_duration_seconds";

/// An HTTP server on `127.0.0.1` (random port) serving `/metrics` in Prometheus' text format:
///
/// ```text
/// http_requests_total{version="v2",pod_template_hash="abc"} 120
/// http_request_errors_total{version="v2",pod_template_hash="abc"} 6
/// ```
///
/// plus any gauges set with [`MetricsHandle::set_gauge`]. Both counters are exposed for every
/// known series, the error counter at 0 when there were no errors, so that an error ratio is 0
/// rather than no data. A series given request durations with
/// [`MetricsHandle::observe_durations`] also has a classic histogram with the buckets
/// [`DURATION_BUCKETS`]:
///
/// ```text
/// http_request_duration_seconds_bucket{version="v2",pod_template_hash="abc",le="0.3"} 97
/// http_request_duration_seconds_bucket{version="v2",pod_template_hash="abc",le="+Inf"} 100
/// http_request_duration_seconds_sum{version="v2",pod_template_hash="abc"} 6.35
/// http_request_duration_seconds_count{version="v2",pod_template_hash="abc"} 100
/// ```
///
/// The server stops when this value is dropped.
pub struct MetricsServer {
    address: SocketAddr,
    handle: MetricsHandle,
    task: JoinHandle<()>,
}

impl MetricsServer {
    /// Binds `127.0.0.1:0` and serves on the current tokio runtime.
    ///
    /// # Errors
    ///
    /// When the listener cannot be bound.
    pub async fn start() -> Result<MetricsServer, PromTestError> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| PromTestError::io("binding the metrics server", e))?;
        let address = listener
            .local_addr()
            .map_err(|e| PromTestError::io("binding the metrics server", e))?;
        let handle = MetricsHandle::default();
        let task = tokio::spawn(serve(listener, handle.clone()));
        Ok(MetricsServer {
            address,
            handle,
            task,
        })
    }

    /// The socket address it listens on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// `127.0.0.1:PORT`, for [`ScrapeConfig::target`](crate::ScrapeConfig::target).
    pub fn target(&self) -> String {
        self.address.to_string()
    }

    /// The URL of the metrics page.
    pub fn url(&self) -> String {
        format!("http://{}/metrics", self.address)
    }

    /// A handle to drive the counters (cheap to clone, usable from any thread).
    pub fn handle(&self) -> MetricsHandle {
        self.handle.clone()
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Drives the counters of a [`MetricsServer`].
#[derive(Clone, Debug, Default)]
pub struct MetricsHandle {
    state: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    /// Keyed by (version, pod_template_hash).
    traffic: BTreeMap<(String, String), Traffic>,
    /// Keyed by (name, rendered labels).
    gauges: BTreeMap<(String, String), f64>,
    /// Request durations, keyed by (version, pod_template_hash).
    durations: BTreeMap<(String, String), Histogram>,
}

/// A classic histogram: requests per bucket of [`DURATION_BUCKETS`] (not cumulative; the last
/// slot counts those slower than every bound), and the sum of their durations.
#[derive(Debug, Default)]
struct Histogram {
    buckets: [u64; DURATION_BUCKETS.len() + 1],
    sum: f64,
}

impl Histogram {
    fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }
}

#[derive(Debug)]
struct Traffic {
    requests: f64,
    errors: f64,
    requests_per_second: f64,
    error_rate: f64,
    updated: Instant,
}

impl Traffic {
    fn new() -> Traffic {
        Traffic {
            requests: 0.0,
            errors: 0.0,
            requests_per_second: 0.0,
            error_rate: 0.0,
            updated: Instant::now(),
        }
    }

    /// Adds what the current rates produced since the last update.
    fn advance(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        let requests = self.requests_per_second * elapsed;
        self.requests += requests;
        self.errors += requests * self.error_rate;
        self.updated = now;
    }
}

impl MetricsHandle {
    /// From now on, the series `(version, pod_template_hash)` serves `requests_per_second`
    /// (clamped to >= 0), of which the fraction `error_rate` (clamped to 0..=1) fails; the
    /// counters grow accordingly over real time. Creates the series (at 0) when new.
    pub fn set_traffic(
        &self,
        version: &str,
        pod_template_hash: &str,
        requests_per_second: f64,
        error_rate: f64,
    ) {
        let now = Instant::now();
        let mut state = self.lock();
        let traffic = state
            .traffic
            .entry((version.to_string(), pod_template_hash.to_string()))
            .or_insert_with(Traffic::new);
        traffic.advance(now);
        traffic.requests_per_second = non_negative(requests_per_second);
        traffic.error_rate = non_negative(error_rate).min(1.0);
    }

    /// Adds `requests` and `errors` to the series' counters at once (creating it at 0).
    pub fn add(&self, version: &str, pod_template_hash: &str, requests: u64, errors: u64) {
        let now = Instant::now();
        let mut state = self.lock();
        let traffic = state
            .traffic
            .entry((version.to_string(), pod_template_hash.to_string()))
            .or_insert_with(Traffic::new);
        traffic.advance(now);
        traffic.requests += requests as f64;
        traffic.errors += errors as f64;
    }

    /// The series' current `(requests, errors)` counters, if it exists.
    pub fn counters(&self, version: &str, pod_template_hash: &str) -> Option<(f64, f64)> {
        let now = Instant::now();
        let mut state = self.lock();
        let traffic = state
            .traffic
            .get_mut(&(version.to_string(), pod_template_hash.to_string()))?;
        traffic.advance(now);
        Some((traffic.requests, traffic.errors))
    }

    /// Adds requests to the series' request-duration histogram (creating it, all buckets at
    /// 0), all at once (a scrape sees all or none of them): `(seconds, requests)` per entry,
    /// `requests` requests that took `seconds` each (clamped to >= 0). E.g. with an SLO of
    /// 0.3 s, `observe_durations(v, h, &[(0.05, 97), (0.5, 3)])`: 100 requests of which 3 are
    /// slower than the bucket `le="0.3"`. A request lands in the first bucket whose bound is at
    /// least its duration, as Prometheus' client libraries count them.
    pub fn observe_durations(
        &self,
        version: &str,
        pod_template_hash: &str,
        requests: &[(f64, u64)],
    ) {
        let mut state = self.lock();
        let histogram = state
            .durations
            .entry((version.to_string(), pod_template_hash.to_string()))
            .or_default();
        for &(seconds, n) in requests {
            let seconds = non_negative(seconds);
            let slot = DURATION_BUCKETS
                .iter()
                .position(|le| seconds <= *le)
                .unwrap_or(DURATION_BUCKETS.len());
            histogram.buckets[slot] = histogram.buckets[slot].saturating_add(n);
            histogram.sum += seconds * n as f64;
        }
    }

    /// The series' request-duration histogram as `(count, requests slower than le)` for the
    /// bucket bound `le` (one of [`DURATION_BUCKETS`]), if the series has one.
    pub fn durations(&self, version: &str, pod_template_hash: &str, le: f64) -> Option<(u64, u64)> {
        let state = self.lock();
        let histogram = state
            .durations
            .get(&(version.to_string(), pod_template_hash.to_string()))?;
        let within: u64 = DURATION_BUCKETS
            .iter()
            .zip(&histogram.buckets)
            .filter(|(bound, _)| **bound <= le)
            .map(|(_, n)| n)
            .sum();
        let count = histogram.count();
        Some((count, count - within))
    }

    /// Removes a series (its pods are gone: Prometheus marks it stale at the next scrape),
    /// with its request-duration histogram.
    pub fn remove(&self, version: &str, pod_template_hash: &str) {
        let key = (version.to_string(), pod_template_hash.to_string());
        let mut state = self.lock();
        state.traffic.remove(&key);
        state.durations.remove(&key);
    }

    /// Sets a gauge `name{labels} value`, exposed next to the counters (e.g. a latency).
    pub fn set_gauge(&self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.lock()
            .gauges
            .insert((name.to_string(), render_labels(labels)), value);
    }

    /// The page `/metrics` serves right now.
    pub fn render(&self) -> String {
        let now = Instant::now();
        let mut state = self.lock();
        for traffic in state.traffic.values_mut() {
            traffic.advance(now);
        }
        let mut page = String::new();
        let counters = [
            (
                "http_requests_total",
                "Requests served, per version.",
                false,
            ),
            (
                "http_request_errors_total",
                "Requests that failed, per version.",
                true,
            ),
        ];
        for (name, help, errors) in counters {
            let _ = writeln!(page, "# HELP {name} {help}\n# TYPE {name} counter");
            for ((version, hash), traffic) in &state.traffic {
                let labels = render_labels(&[("version", version), ("pod_template_hash", hash)]);
                let value = if errors {
                    traffic.errors
                } else {
                    traffic.requests
                };
                let _ = writeln!(page, "{name}{labels} {}", format_value(value));
            }
        }
        if !state.durations.is_empty() {
            let _ = writeln!(
                page,
                "# HELP {DURATION} Request durations, per version.\n# TYPE {DURATION} histogram"
            );
        }
        for ((version, hash), histogram) in &state.durations {
            let series = [("version", version.as_str()), ("pod_template_hash", hash)];
            let mut cumulative = 0u64;
            let bounds = DURATION_BUCKETS.iter().copied().chain([f64::INFINITY]);
            for (le, n) in bounds.zip(histogram.buckets) {
                cumulative = cumulative.saturating_add(n);
                let le = format_value(le);
                let mut labels = series.to_vec();
                labels.push(("le", &le));
                let labels = render_labels(&labels);
                let _ = writeln!(page, "{DURATION}_bucket{labels} {cumulative}");
            }
            let labels = render_labels(&series);
            let _ = writeln!(
                page,
                "{DURATION}_sum{labels} {}\n{DURATION}_count{labels} {}",
                format_value(histogram.sum),
                histogram.count()
            );
        }
        let mut typed = None;
        for ((name, labels), value) in &state.gauges {
            if typed != Some(name) {
                let _ = writeln!(page, "# TYPE {name} gauge");
                typed = Some(name);
            }
            let _ = writeln!(page, "{name}{labels} {}", format_value(*value));
        }
        page
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent numbers: keep serving them.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn non_negative(x: f64) -> f64 {
    if x.is_finite() && x > 0.0 { x } else { 0.0 }
}

/// `{a="x",b="y"}` with the values escaped, or nothing without labels.
fn render_labels(labels: &[(&str, &str)]) -> String {
    if labels.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = labels
        .iter()
        .map(|(name, value)| {
            let escaped = value
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            format!("{name}=\"{escaped}\"")
        })
        .collect();
    format!("{{{}}}", parts.join(","))
}

/// A sample value as the text format writes it.
fn format_value(value: f64) -> String {
    if value.is_nan() {
        "NaN".into()
    } else if value == f64::INFINITY {
        "+Inf".into()
    } else if value == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        value.to_string()
    }
}

/// Accepts connections until aborted; aborting it also ends the open connections (they live
/// in its `JoinSet`), so a dropped server stops answering scrapes at once.
async fn serve(listener: TcpListener, handle: MetricsHandle) {
    let mut connections = JoinSet::new();
    loop {
        let accepted = listener.accept().await;
        // Reap finished connections.
        while connections.try_join_next().is_some() {}
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(_) => {
                // Out of file descriptors or similar: try again shortly.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let handle = handle.clone();
        connections.spawn(async move {
            let service = service_fn(move |request: hyper::Request<Incoming>| {
                let handle = handle.clone();
                async move { Ok::<_, Infallible>(respond(&request, &handle)) }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn respond(request: &hyper::Request<Incoming>, handle: &MetricsHandle) -> Response<Full<Bytes>> {
    let (status, content_type, body) = if request.uri().path() == "/metrics" {
        (StatusCode::OK, TEXT_FORMAT, handle.render())
    } else {
        (
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "not found\n".to_string(),
        )
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_gauges() {
        let handle = MetricsHandle::default();
        handle.add("v1", "abc", 10, 1);
        handle.set_gauge("latency_seconds", &[("version", "v\"1")], 0.25);
        let page = handle.render();
        assert!(
            page.contains("http_requests_total{version=\"v1\",pod_template_hash=\"abc\"} 10\n"),
            "{page}"
        );
        assert!(
            page.contains(
                "http_request_errors_total{version=\"v1\",pod_template_hash=\"abc\"} 1\n"
            ),
            "{page}"
        );
        assert!(
            page.contains("# TYPE http_requests_total counter"),
            "{page}"
        );
        assert!(
            page.contains("latency_seconds{version=\"v\\\"1\"} 0.25\n"),
            "{page}"
        );
    }

    #[test]
    fn renders_a_cumulative_duration_histogram_per_series() {
        let handle = MetricsHandle::default();
        handle.observe_durations("v2", "abc", &[(0.05, 95), (0.3, 2), (0.5, 3)]);
        handle.observe_durations("v2", "abc", &[(30.0, 1)]);
        let page = handle.render();
        assert!(
            page.contains("# TYPE http_request_duration_seconds histogram\n"),
            "{page}"
        );
        let series = "version=\"v2\",pod_template_hash=\"abc\"";
        for (le, n) in [
            ("0.05", 95),
            ("0.1", 95),
            ("0.3", 97),
            ("1", 100),
            ("2.5", 100),
            ("+Inf", 101),
        ] {
            let line =
                format!("http_request_duration_seconds_bucket{{{series},le=\"{le}\"}} {n}\n");
            assert!(page.contains(&line), "{line} in {page}");
        }
        assert!(
            page.contains(&format!(
                "http_request_duration_seconds_count{{{series}}} 101\n"
            )),
            "{page}"
        );
        let sum = 0.05 * 95.0 + 0.3 * 2.0 + 0.5 * 3.0 + 30.0;
        assert!(
            page.contains(&format!(
                "http_request_duration_seconds_sum{{{series}}} {}\n",
                format_value(sum)
            )),
            "{page}"
        );
        // Exactly 0.3 s is within le="0.3": 4 requests are slower.
        assert_eq!(handle.durations("v2", "abc", 0.3), Some((101, 4)));
        assert_eq!(handle.durations("v1", "abc", 0.3), None);
        // A series without durations has no histogram lines.
        handle.add("v1", "def", 10, 0);
        assert!(!handle.render().contains("pod_template_hash=\"def\",le="));
        handle.remove("v2", "abc");
        assert!(!handle.render().contains("http_request_duration_seconds"));
    }

    #[test]
    fn counters_follow_traffic() {
        let handle = MetricsHandle::default();
        handle.set_traffic("v2", "def", 1000.0, 0.5);
        std::thread::sleep(Duration::from_millis(20));
        let (requests, errors) = handle.counters("v2", "def").unwrap_or_default();
        assert!(requests >= 20.0 * 0.9, "{requests}");
        assert!(
            (errors - requests / 2.0).abs() < 1e-6,
            "{errors} {requests}"
        );
        handle.set_traffic("v2", "def", 0.0, 0.0);
        let frozen = handle.counters("v2", "def").unwrap_or_default();
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(handle.counters("v2", "def").unwrap_or_default(), frozen);
        handle.remove("v2", "def");
        assert_eq!(handle.counters("v2", "def"), None);
        assert_eq!(non_negative(f64::NAN), 0.0);
    }
}
