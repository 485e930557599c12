//! The Alertmanager webhook receiver, driven through its axum Router (no network), and once
//! against a real `prometheus-alertmanager` on loopback.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use k8s_openapi::jiff::Timestamp;
use rollgate_controller::alert_receiver::{DeliveredAlert, ReceiverConfig, router};
use tokio::sync::mpsc;
use tower::ServiceExt;

const TOKEN: &str = "s3cret-token";

fn app(capacity: usize) -> (Router, mpsc::Receiver<DeliveredAlert>) {
    let (tx, rx) = mpsc::channel(capacity);
    let config = ReceiverConfig::with_token(TOKEN).expect("valid token");
    (router(config, tx), rx)
}

fn alert_json(fingerprint: &str, starts_at: &str, status: &str) -> serde_json::Value {
    let ends_at = if status == "firing" {
        "0001-01-01T00:00:00Z"
    } else {
        "2026-03-01T12:30:00Z"
    };
    serde_json::json!({
        "status": status,
        "labels": {"alertname": "HighErrorRate", "rollouts_pod_template_hash": "6f9c7d8b5"},
        "annotations": {"summary": "errors"},
        "startsAt": starts_at,
        "endsAt": ends_at,
        "generatorURL": "http://prometheus/graph",
        "fingerprint": fingerprint,
    })
}

fn payload(alerts: Vec<serde_json::Value>) -> String {
    let status = if alerts.iter().any(|a| a["status"] == "firing") {
        "firing"
    } else {
        "resolved"
    };
    serde_json::json!({
        "version": "4",
        "groupKey": "{}:{alertname=\"HighErrorRate\"}",
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "rollgate",
        "groupLabels": {"alertname": "HighErrorRate"},
        "commonLabels": {"alertname": "HighErrorRate"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": alerts,
    })
    .to_string()
}

async fn post(app: &Router, path: &str, token: Option<&str>, body: impl Into<Body>) -> StatusCode {
    let mut request = Request::post(path).header(header::CONTENT_TYPE, "application/json");
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let request = request.body(body.into()).expect("request");
    app.clone()
        .oneshot(request)
        .await
        .expect("infallible router")
        .status()
}

/// Everything sent so far (the router has answered: nothing is in flight).
fn drain(rx: &mut mpsc::Receiver<DeliveredAlert>) -> Vec<DeliveredAlert> {
    let mut out = Vec::new();
    while let Ok(alert) = rx.try_recv() {
        out.push(alert);
    }
    out
}

const T0: &str = "2026-03-01T12:00:00.123456789Z";
const T1: &str = "2026-03-01T12:10:00Z";

#[tokio::test]
async fn missing_or_wrong_token_is_401_and_sends_nothing() {
    let (app, mut rx) = app(8);
    let body = payload(vec![alert_json("fp1", T0, "firing")]);
    assert_eq!(
        post(&app, "/", None, body.clone()).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        post(&app, "/", Some("wrong"), body.clone()).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        post(&app, "/alerts", Some("s3cret-token-and-more"), body.clone()).await,
        StatusCode::UNAUTHORIZED
    );
    assert!(drain(&mut rx).is_empty());
    // The same payload with the token goes through (so the 401s were about the token).
    assert_eq!(post(&app, "/", Some(TOKEN), body).await, StatusCode::OK);
    assert_eq!(drain(&mut rx).len(), 1);
}

#[tokio::test]
async fn garbage_is_400() {
    let (app, mut rx) = app(8);
    assert_eq!(
        post(&app, "/", Some(TOKEN), "not json at all").await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        post(
            &app,
            "/",
            Some(TOKEN),
            r#"{"version":"4","alerts":[{"status":"firing"}]}"#
        )
        .await,
        StatusCode::BAD_REQUEST
    );
    assert!(drain(&mut rx).is_empty());
}

#[tokio::test]
async fn wrong_version_is_400() {
    let (app, mut rx) = app(8);
    let body = payload(vec![alert_json("fp1", T0, "firing")])
        .replace("\"version\":\"4\"", "\"version\":\"3\"");
    assert!(body.contains("\"version\":\"3\""));
    assert_eq!(
        post(&app, "/", Some(TOKEN), body).await,
        StatusCode::BAD_REQUEST
    );
    assert!(drain(&mut rx).is_empty());
}

#[tokio::test]
async fn too_big_is_413() {
    let (tx, mut rx) = mpsc::channel(8);
    let mut config = ReceiverConfig::with_token(TOKEN).expect("valid token");
    config.max_body_bytes = 1024;
    let app = router(config, tx);
    let small = payload(vec![alert_json("fp1", T0, "firing")]);
    assert!(small.len() <= 1024);
    assert_eq!(post(&app, "/", Some(TOKEN), small).await, StatusCode::OK);
    let big = payload(
        (0..20)
            .map(|i| alert_json(&format!("fp{i}"), T0, "firing"))
            .collect(),
    );
    assert!(big.len() > 1024);
    assert_eq!(
        post(&app, "/", Some(TOKEN), big).await,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    assert_eq!(drain(&mut rx).len(), 1);
}

#[tokio::test]
async fn default_limit_is_one_mebibyte() {
    let (app, mut rx) = app(8);
    let mut body = payload(vec![alert_json("fp1", T0, "firing")]);
    // Valid JSON padded with whitespace to just over 1 MiB.
    body.push_str(&" ".repeat(1024 * 1024 + 1 - body.len()));
    assert_eq!(
        post(&app, "/", Some(TOKEN), body).await,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    assert!(drain(&mut rx).is_empty());
}

#[tokio::test]
async fn a_firing_alert_is_200_and_one_message() {
    let (app, mut rx) = app(8);
    let body = payload(vec![alert_json("fp1", T0, "firing")]);
    assert_eq!(post(&app, "/", Some(TOKEN), body).await, StatusCode::OK);
    let sent = drain(&mut rx);
    let expected = DeliveredAlert {
        name: "HighErrorRate".into(),
        labels: BTreeMap::from([
            ("alertname".to_string(), "HighErrorRate".to_string()),
            (
                "rollouts_pod_template_hash".to_string(),
                "6f9c7d8b5".to_string(),
            ),
        ]),
        starts_at: T0.parse().expect("time"),
        firing: true,
        fingerprint: "fp1".into(),
    };
    assert_eq!(sent, vec![expected]);
}

/// A standby replica (not leading) answers 503 so that Alertmanager retries, forwards nothing
/// and forgets nothing: once it leads, the retry is taken.
#[tokio::test]
async fn a_receiver_that_does_not_lead_answers_503_until_it_does() {
    let leading = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (tx, mut rx) = mpsc::channel(8);
    let flag = leading.clone();
    let config = ReceiverConfig::with_token(TOKEN)
        .expect("valid token")
        .only_while(move || flag.load(Ordering::SeqCst));
    let app = router(config, tx);
    let body = payload(vec![alert_json("fp1", T0, "firing")]);
    assert_eq!(
        post(&app, "/", None, body.clone()).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        post(&app, "/", Some(TOKEN), body.clone()).await,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert!(drain(&mut rx).is_empty());
    leading.store(true, Ordering::SeqCst);
    assert_eq!(post(&app, "/", Some(TOKEN), body).await, StatusCode::OK);
    assert_eq!(drain(&mut rx).len(), 1);
}

#[tokio::test]
async fn duplicates_are_forwarded_once() {
    let (app, mut rx) = app(8);
    let body = payload(vec![alert_json("fp1", T0, "firing")]);
    // Repeat interval, retry, HA peer: the same occurrence three times, on both paths.
    for path in ["/", "/alerts", "/"] {
        assert_eq!(
            post(&app, path, Some(TOKEN), body.clone()).await,
            StatusCode::OK
        );
    }
    assert_eq!(drain(&mut rx).len(), 1);
}

#[tokio::test]
async fn a_new_starts_at_is_forwarded_again() {
    let (app, mut rx) = app(8);
    let first = payload(vec![alert_json("fp1", T0, "firing")]);
    let again = payload(vec![alert_json("fp1", T1, "firing")]);
    assert_eq!(post(&app, "/", Some(TOKEN), first).await, StatusCode::OK);
    assert_eq!(
        post(&app, "/", Some(TOKEN), again.clone()).await,
        StatusCode::OK
    );
    assert_eq!(post(&app, "/", Some(TOKEN), again).await, StatusCode::OK);
    let sent = drain(&mut rx);
    let starts: Vec<Timestamp> = sent.iter().map(|a| a.starts_at).collect();
    assert_eq!(
        starts,
        vec![
            T0.parse::<Timestamp>().expect("time"),
            T1.parse().expect("time")
        ]
    );
}

#[tokio::test]
async fn resolved_is_forwarded_once() {
    let (app, mut rx) = app(8);
    let firing = payload(vec![alert_json("fp1", T0, "firing")]);
    let resolved = payload(vec![alert_json("fp1", T0, "resolved")]);
    assert_eq!(post(&app, "/", Some(TOKEN), firing).await, StatusCode::OK);
    for _ in 0..3 {
        assert_eq!(
            post(&app, "/", Some(TOKEN), resolved.clone()).await,
            StatusCode::OK
        );
    }
    let firing_flags: Vec<bool> = drain(&mut rx).iter().map(|a| a.firing).collect();
    assert_eq!(firing_flags, vec![true, false]);
}

#[tokio::test]
async fn an_empty_alert_list_is_200_and_sends_nothing() {
    let (app, mut rx) = app(8);
    assert_eq!(
        post(&app, "/", Some(TOKEN), payload(Vec::new())).await,
        StatusCode::OK
    );
    assert!(drain(&mut rx).is_empty());
}

#[tokio::test]
async fn a_full_channel_is_503_and_the_retry_sends_the_rest() {
    let (app, mut rx) = app(1);
    let body = payload(vec![
        alert_json("fp1", T0, "firing"),
        alert_json("fp2", T0, "firing"),
    ]);
    assert_eq!(
        post(&app, "/", Some(TOKEN), body.clone()).await,
        StatusCode::SERVICE_UNAVAILABLE
    );
    let first = drain(&mut rx);
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].fingerprint, "fp1");
    // Alertmanager retries the whole notification: only what was not queued is sent.
    assert_eq!(post(&app, "/", Some(TOKEN), body).await, StatusCode::OK);
    let rest = drain(&mut rx);
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].fingerprint, "fp2");
}

#[tokio::test]
async fn only_post_is_served() {
    let (app, _rx) = app(8);
    let request = Request::get("/").body(Body::empty()).expect("request");
    let status = app.oneshot(request).await.expect("router").status();
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
}

#[test]
fn the_token_file_is_read_and_trimmed_and_an_empty_one_refused() {
    let dir = TempDir::new("token");
    let file = dir.path().join("token");
    std::fs::write(&file, format!("  {TOKEN}\n")).expect("write");
    assert!(ReceiverConfig::from_token_file(&file).is_ok());
    std::fs::write(&file, "\n").expect("write");
    let err = ReceiverConfig::from_token_file(&file)
        .expect_err("empty token")
        .to_string();
    assert!(err.contains(&file.display().to_string()), "{err}");
    assert!(err.contains("expected a non-empty bearer token"), "{err}");
    let missing = dir.path().join("missing");
    let err = ReceiverConfig::from_token_file(&missing)
        .expect_err("missing file")
        .to_string();
    assert!(err.contains(&missing.display().to_string()), "{err}");
}

#[tokio::test]
async fn the_token_from_the_file_is_the_one_required() {
    let dir = TempDir::new("token-router");
    let file = dir.path().join("token");
    std::fs::write(&file, "from-file\n").expect("write");
    let (tx, mut rx) = mpsc::channel(8);
    let app = router(ReceiverConfig::from_token_file(&file).expect("token"), tx);
    let body = payload(vec![alert_json("fp1", T0, "firing")]);
    assert_eq!(
        post(&app, "/", Some("from-fil"), body.clone()).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        post(&app, "/", Some("from-file"), body).await,
        StatusCode::OK
    );
    assert_eq!(drain(&mut rx).len(), 1);
}

#[tokio::test]
async fn insecure_accepts_without_token() {
    let (tx, mut rx) = mpsc::channel(8);
    let app = router(ReceiverConfig::insecure(), tx);
    let body = payload(vec![alert_json("fp1", T0, "firing")]);
    assert_eq!(post(&app, "/", None, body).await, StatusCode::OK);
    assert_eq!(drain(&mut rx).len(), 1);
}

// ---------------------------------------------------------------------------------------------
// A real Alertmanager.

const ALERTMANAGER: &str = "/usr/bin/prometheus-alertmanager";

/// Bounded waits (not assertions on speed): start-up, and deliveries at a 1 s group interval.
const READY_WAIT: Duration = Duration::from_secs(60);
const DELIVERY_WAIT: Duration = Duration::from_secs(90);
const POLL: Duration = Duration::from_millis(100);

/// Deliveries (POSTs reaching the router) to wait for before asserting that the repeats of
/// one firing occurrence were not forwarded again.
const DELIVERIES_BEFORE_CHECK: usize = 3;

/// A directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(what: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let path = std::env::temp_dir().join(format!(
            "rollgate-alert-receiver-{what}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&path).expect("create temp dir");
        Self(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The Alertmanager process, killed by its PID on drop (before its directory is removed).
struct Alertmanager {
    child: Child,
    log: PathBuf,
}

impl Alertmanager {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        // `Child::kill` signals exactly this process id.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

fn alertmanager_yml(receiver: SocketAddr) -> String {
    format!(
        r#"route:
  receiver: rollgate
  group_by: ['alertname']
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1s
receivers:
  - name: rollgate
    webhook_configs:
      - url: http://{receiver}/alerts
        send_resolved: true
        http_config:
          authorization:
            type: Bearer
            credentials: {TOKEN}
"#
    )
}

fn start_alertmanager(dir: &Path, receiver: SocketAddr) -> (Alertmanager, u16) {
    let config = dir.join("alertmanager.yml");
    std::fs::write(&config, alertmanager_yml(receiver)).expect("write config");
    let storage = dir.join("data");
    std::fs::create_dir_all(&storage).expect("storage dir");
    let log = dir.join("alertmanager.log");
    let port = free_port();
    let out = std::fs::File::create(&log).expect("log file");
    let err = out.try_clone().expect("log file");
    let child = Command::new(ALERTMANAGER)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.path={}", storage.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--cluster.listen-address=")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .unwrap_or_else(|e| panic!("starting {ALERTMANAGER}: {e}"));
    (Alertmanager { child, log }, port)
}

async fn wait_ready(am: &mut Alertmanager, http: &reqwest::Client, base: &str) {
    let deadline = tokio::time::Instant::now() + READY_WAIT;
    loop {
        if let Ok(Some(status)) = am.child.try_wait() {
            panic!(
                "Alertmanager exited ({status}) before it was ready:\n{}",
                am.log()
            );
        }
        if let Ok(response) = http.get(format!("{base}/-/ready")).send().await
            && response.status().is_success()
        {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "Alertmanager not ready after {READY_WAIT:?}:\n{}",
            am.log()
        );
        tokio::time::sleep(POLL).await;
    }
}

async fn post_alert(http: &reqwest::Client, base: &str, alert: serde_json::Value) {
    let response = http
        .post(format!("{base}/api/v2/alerts"))
        .header(header::CONTENT_TYPE.as_str(), "application/json")
        .body(serde_json::Value::Array(vec![alert]).to_string())
        .send()
        .await
        .expect("POST /api/v2/alerts");
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    assert!(status.is_success(), "POST /api/v2/alerts: {status}: {text}");
}

/// Polls `rx` until `until` holds for everything received so far, or fails after `wait`.
async fn receive_until(
    rx: &mut mpsc::Receiver<DeliveredAlert>,
    received: &mut Vec<DeliveredAlert>,
    am: &Alertmanager,
    what: &str,
    until: impl Fn(&[DeliveredAlert]) -> bool,
) {
    let deadline = tokio::time::Instant::now() + DELIVERY_WAIT;
    loop {
        received.extend(drain(rx));
        if until(received) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "waited {DELIVERY_WAIT:?} for {what}; received {received:?}; Alertmanager log:\n{}",
            am.log()
        );
        tokio::time::sleep(POLL).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_alertmanager_delivers_to_the_router() {
    assert!(
        Path::new(ALERTMANAGER).is_file(),
        "{ALERTMANAGER} is missing: this test needs a real Alertmanager and does not skip. \
         Install it with `apt-get install prometheus-alertmanager` (Debian bookworm, 0.25)."
    );
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Err: another test installed one first, which is just as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("HTTP client");

    // The router on loopback, counting every request that reaches it.
    let (tx, mut rx) = mpsc::channel(64);
    let deliveries = Arc::new(AtomicUsize::new(0));
    let counted = deliveries.clone();
    let app = router(ReceiverConfig::with_token(TOKEN).expect("token"), tx).layer(
        tower::util::MapRequestLayer::new(move |request: Request<Body>| {
            counted.fetch_add(1, Ordering::SeqCst);
            request
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the receiver");
    let receiver_addr = listener.local_addr().expect("receiver address");
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });

    let dir = TempDir::new("alertmanager");
    let (mut am, port) = start_alertmanager(dir.path(), receiver_addr);
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(&mut am, &http, &base).await;

    // Whole seconds: what goes through Alertmanager's API comes back exactly.
    let starts_at = Timestamp::from_second(Timestamp::now().as_second()).expect("now");
    let labels = serde_json::json!({
        "alertname": "RollgateAlertReceiverTest",
        "rollouts_pod_template_hash": "6f9c7d8b5",
        "severity": "page",
    });
    post_alert(
        &http,
        &base,
        serde_json::json!({"labels": labels, "startsAt": starts_at.to_string()}),
    )
    .await;

    let mut received = Vec::new();
    receive_until(&mut rx, &mut received, &am, "the firing alert", |r| {
        !r.is_empty()
    })
    .await;
    // Wait until Alertmanager has repeated the notification (repeat_interval 1s) a few times,
    // then check that the repeats were not forwarded again.
    let deadline = tokio::time::Instant::now() + DELIVERY_WAIT;
    while deliveries.load(Ordering::SeqCst) < DELIVERIES_BEFORE_CHECK {
        assert!(
            tokio::time::Instant::now() < deadline,
            "waited {DELIVERY_WAIT:?} for {DELIVERIES_BEFORE_CHECK} deliveries, got {}; log:\n{}",
            deliveries.load(Ordering::SeqCst),
            am.log()
        );
        tokio::time::sleep(POLL).await;
    }
    received.extend(drain(&mut rx));
    assert_eq!(received.len(), 1, "forwarded more than once: {received:?}");
    let firing = received[0].clone();
    assert!(firing.firing);
    assert_eq!(firing.name, "RollgateAlertReceiverTest");
    assert_eq!(
        firing
            .labels
            .get("rollouts_pod_template_hash")
            .map(String::as_str),
        Some("6f9c7d8b5")
    );
    assert_eq!(firing.starts_at, starts_at);
    assert!(!firing.fingerprint.is_empty());

    // Resolve it (an endsAt in the past): the resolution arrives, for the same occurrence.
    let ends_at = Timestamp::now() - k8s_openapi::jiff::SignedDuration::from_secs(1);
    post_alert(
        &http,
        &base,
        serde_json::json!({
            "labels": labels,
            "startsAt": starts_at.to_string(),
            "endsAt": ends_at.to_string(),
        }),
    )
    .await;
    receive_until(&mut rx, &mut received, &am, "the resolution", |r| {
        r.iter().any(|a| !a.firing)
    })
    .await;
    let resolved: Vec<&DeliveredAlert> = received.iter().filter(|a| !a.firing).collect();
    assert_eq!(resolved.len(), 1, "{received:?}");
    assert_eq!(resolved[0].fingerprint, firing.fingerprint);
    assert_eq!(resolved[0].starts_at, starts_at);

    drop(am);
    server.abort();
}
