//! An Alertmanager process of the test's own.

use std::fmt;
use std::fs::{self, File};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use jiff::Timestamp;

use crate::error::PromTestError;
use crate::install_crypto_provider;
use crate::server::{Process, TempDir, error_text, free_port, write};

/// How long start-up may take before [`TestAlertmanager::start`] gives up.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Pause between two polls of `/-/ready`.
const READY_POLL: Duration = Duration::from_millis(25);

/// Lines of Alertmanager's log quoted in errors.
const LOG_TAIL_LINES: usize = 40;

/// Attempts at finding a free port (another process may take the one we picked).
const PORT_ATTEMPTS: usize = 3;

/// Longest answer body quoted in an [`PromTestError::AlertmanagerApi`] error.
const MAX_QUOTED_BODY: usize = 500;

/// Configuration of a [`TestAlertmanager`]: one route to one receiver, `default`.
///
/// The defaults notify fast, as tests want: `group_wait` 0 s, `group_interval` and
/// `repeat_interval` 1 s (Alertmanager requires both above zero; the effective repeat is
/// rounded up to a multiple of `group_interval`), alerts grouped by `alertname`.
///
/// ```
/// let config = rollgate_promtest::AlertmanagerConfig::new()
///     .webhook("http://127.0.0.1:8080/alerts", Some("s3cret"));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct AlertmanagerConfig {
    /// Where the `default` receiver sends its notifications; `None`: nowhere.
    pub webhook: Option<Webhook>,
    /// The route's `group_by` label names.
    pub group_by: Vec<String>,
    /// The route's `group_wait` (may be zero).
    pub group_wait: Duration,
    /// The route's `group_interval` (must not be zero).
    pub group_interval: Duration,
    /// The route's `repeat_interval` (must not be zero).
    pub repeat_interval: Duration,
    /// Extra command-line flags for Alertmanager.
    pub extra_args: Vec<String>,
}

impl Default for AlertmanagerConfig {
    fn default() -> Self {
        AlertmanagerConfig {
            webhook: None,
            group_by: vec!["alertname".into()],
            group_wait: Duration::ZERO,
            group_interval: Duration::from_secs(1),
            repeat_interval: Duration::from_secs(1),
            extra_args: Vec::new(),
        }
    }
}

/// A webhook receiver (`webhook_configs`), with `send_resolved: true`.
///
/// `Debug` hides the token.
#[derive(Clone, PartialEq)]
pub struct Webhook {
    /// The URL Alertmanager POSTs notifications to.
    pub url: String,
    /// Sent as `Authorization: Bearer TOKEN` (`http_config.authorization`).
    pub bearer_token: Option<String>,
}

impl fmt::Debug for Webhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Webhook")
            .field("url", &self.url)
            .field(
                "bearer_token",
                &self.bearer_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl AlertmanagerConfig {
    /// No receiver, fast timings (see [`AlertmanagerConfig`]).
    pub fn new() -> Self {
        AlertmanagerConfig::default()
    }

    /// Sends notifications to `url`, with `Authorization: Bearer TOKEN` when a token is given.
    pub fn webhook(mut self, url: impl Into<String>, bearer_token: Option<&str>) -> Self {
        self.webhook = Some(Webhook {
            url: url.into(),
            bearer_token: bearer_token.map(str::to_string),
        });
        self
    }

    /// Sets the route's `group_by` label names.
    pub fn group_by(mut self, labels: &[&str]) -> Self {
        self.group_by = labels.iter().map(|l| l.to_string()).collect();
        self
    }

    /// Sets `group_wait`, `group_interval` and `repeat_interval`.
    pub fn timings(mut self, wait: Duration, interval: Duration, repeat: Duration) -> Self {
        self.group_wait = wait;
        self.group_interval = interval;
        self.repeat_interval = repeat;
        self
    }

    /// Adds an Alertmanager command-line flag, e.g. `--log.level=debug`.
    pub fn arg(mut self, flag: impl Into<String>) -> Self {
        self.extra_args.push(flag.into());
        self
    }

    /// `alertmanager.yml`, or why the configuration cannot be used.
    pub(crate) fn render(&self) -> Result<String, PromTestError> {
        if self.group_interval.is_zero() || self.repeat_interval.is_zero() {
            return Err(PromTestError::Config(format!(
                "Alertmanager's group_interval and repeat_interval must be above zero, got \
                 {:?} and {:?}",
                self.group_interval, self.repeat_interval
            )));
        }
        let group_by: Vec<String> = self.group_by.iter().map(|l| quote(l)).collect();
        let mut yml = format!(
            "route:\n  receiver: default\n  group_by: [{}]\n  group_wait: {}\n  \
             group_interval: {}\n  repeat_interval: {}\nreceivers:\n  - name: default\n",
            group_by.join(", "),
            duration(self.group_wait),
            duration(self.group_interval),
            duration(self.repeat_interval),
        );
        if let Some(webhook) = &self.webhook {
            yml.push_str(&format!(
                "    webhook_configs:\n      - url: {}\n        send_resolved: true\n",
                quote(&webhook.url)
            ));
            if let Some(token) = &webhook.bearer_token {
                yml.push_str(&format!(
                    "        http_config:\n          authorization:\n            type: Bearer\n\
                     \x20           credentials: {}\n",
                    quote(token)
                ));
            }
        }
        Ok(yml)
    }
}

/// An Alertmanager (0.25, Debian's `prometheus-alertmanager`) on `127.0.0.1`, with its own
/// port, config file and storage directory, clustering disabled.
///
/// Dropping it kills the process (SIGKILL) and removes the directory (unless the environment
/// variable `ROLLGATE_PROMTEST_KEEP` is set).
pub struct TestAlertmanager {
    // Field order is drop order: the process dies before its directory is removed.
    process: Option<Process>,
    http: reqwest::Client,
    config: AlertmanagerConfig,
    port: u16,
    dir: TempDir,
}

impl TestAlertmanager {
    /// Writes the configuration, starts Alertmanager and waits until `/-/ready` answers 200.
    ///
    /// # Errors
    ///
    /// [`PromTestError::AlertmanagerNotInstalled`] without the binary; otherwise whatever
    /// failed, with the end of Alertmanager's log when it was started.
    pub async fn start(config: AlertmanagerConfig) -> Result<TestAlertmanager, PromTestError> {
        let binary = crate::alertmanager_path().ok_or(PromTestError::AlertmanagerNotInstalled)?;
        let yml = config.render()?;
        let mut dir = TempDir::create()?;
        fs::create_dir(dir.path().join("data"))
            .map_err(|e| PromTestError::io("creating the storage directory", e))?;
        write(&dir.path().join("alertmanager.yml"), &yml)?;

        install_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .no_proxy()
            .build()
            .map_err(|e| PromTestError::Config(format!("building the HTTP client: {e}")))?;

        let mut last_error = None;
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port()?;
            let mut alertmanager = TestAlertmanager {
                process: None,
                http: http.clone(),
                config: config.clone(),
                port,
                dir,
            };
            match alertmanager.launch(&binary).await {
                Ok(()) => return Ok(alertmanager),
                Err(PromTestError::AlertmanagerExited { status, log })
                    if log.contains("address already in use") =>
                {
                    last_error = Some(PromTestError::AlertmanagerExited { status, log });
                    alertmanager.process = None;
                    dir = alertmanager.dir.take();
                }
                Err(e) => return Err(e),
            }
        }
        Err(last_error.unwrap_or(PromTestError::Config("no free port".into())))
    }

    /// Base URL, e.g. `http://127.0.0.1:41234`.
    pub fn address(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `127.0.0.1:PORT`, for [`ScrapeConfig::alertmanager`](crate::ScrapeConfig::alertmanager).
    pub fn target(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The port it listens on (kept across [`TestAlertmanager::restart`]).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The temp directory: `alertmanager.yml`, `data/`, `alertmanager.log`.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The configuration it was started with.
    pub fn config(&self) -> &AlertmanagerConfig {
        &self.config
    }

    /// Whether the process is running (not stopped, not exited).
    pub fn is_running(&mut self) -> bool {
        self.process
            .as_mut()
            .is_some_and(|p| matches!(p.0.try_wait(), Ok(None)))
    }

    /// Alertmanager's log so far (stdout and stderr).
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("alertmanager.log")).unwrap_or_default()
    }

    /// Kills the process (SIGKILL) and waits for it; the port then refuses connections.
    pub fn stop(&mut self) {
        self.process = None;
    }

    /// Stops if running, then starts again on the same port and storage directory (alerts
    /// and silences are kept in its snapshots only at shutdown, so a killed instance may
    /// lose recent ones) and waits for `/-/ready`.
    ///
    /// # Errors
    ///
    /// As [`TestAlertmanager::start`].
    pub async fn restart(&mut self) -> Result<(), PromTestError> {
        self.stop();
        let binary = crate::alertmanager_path().ok_or(PromTestError::AlertmanagerNotInstalled)?;
        self.launch(&binary).await
    }

    /// Posts one alert (`POST /api/v2/alerts`) with these labels (`alertname` among them, as
    /// Alertmanager requires a non-empty label set) and no annotations. Without `ends_at`
    /// it fires until Alertmanager's `resolve_timeout` (5 min) unless posted again; an
    /// `ends_at` in the past resolves it (Alertmanager refuses an `ends_at` before
    /// `starts_at`).
    ///
    /// # Errors
    ///
    /// [`PromTestError::AlertmanagerApi`] when the call fails or is refused.
    pub async fn post_alert(
        &self,
        labels: &[(&str, &str)],
        starts_at: Timestamp,
        ends_at: Option<Timestamp>,
    ) -> Result<(), PromTestError> {
        let labels: serde_json::Map<String, serde_json::Value> = labels
            .iter()
            .map(|(name, value)| (name.to_string(), serde_json::Value::from(*value)))
            .collect();
        let mut alert = serde_json::json!({
            "labels": labels,
            "annotations": {},
            "startsAt": starts_at.to_string(),
        });
        if let Some(ends_at) = ends_at {
            alert["endsAt"] = serde_json::Value::from(ends_at.to_string());
        }
        self.call(
            reqwest::Method::POST,
            "/api/v2/alerts",
            Some(serde_json::json!([alert])),
        )
        .await
        .map(drop)
    }

    /// Silences, from now for `duration`, the alerts whose labels equal all these
    /// `(name, value)` pairs (`POST /api/v2/silences`); returns the silence's ID.
    ///
    /// # Errors
    ///
    /// [`PromTestError::AlertmanagerApi`] when the call fails or is refused (e.g. no
    /// matchers), or its answer has no `silenceID`.
    pub async fn silence(
        &self,
        matchers: &[(&str, &str)],
        duration: Duration,
    ) -> Result<String, PromTestError> {
        let call = "POST /api/v2/silences";
        let failed = |message: String| PromTestError::AlertmanagerApi {
            call: call.into(),
            message,
        };
        let now = Timestamp::now();
        let ends_at = jiff::SignedDuration::try_from(duration)
            .ok()
            .and_then(|d| now.checked_add(d).ok())
            .ok_or_else(|| failed(format!("the duration {duration:?} is too long")))?;
        let matchers: Vec<serde_json::Value> = matchers
            .iter()
            .map(|(name, value)| {
                serde_json::json!({
                    "name": name, "value": value, "isRegex": false, "isEqual": true,
                })
            })
            .collect();
        let body = serde_json::json!({
            "matchers": matchers,
            "startsAt": now.to_string(),
            "endsAt": ends_at.to_string(),
            "createdBy": "rollgate-promtest",
            "comment": "silenced by a test",
        });
        let answer = self
            .call(reqwest::Method::POST, "/api/v2/silences", Some(body))
            .await?;
        answer["silenceID"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| failed(format!("no silenceID in the answer {answer}")))
    }

    /// Expires a silence now (`DELETE /api/v2/silence/{id}`).
    ///
    /// # Errors
    ///
    /// [`PromTestError::AlertmanagerApi`] when the call fails or is refused.
    pub async fn expire_silence(&self, id: &str) -> Result<(), PromTestError> {
        self.call(
            reqwest::Method::DELETE,
            &format!("/api/v2/silence/{id}"),
            None,
        )
        .await
        .map(drop)
    }

    /// Every alert Alertmanager knows (`GET /api/v2/alerts`, silenced and inhibited ones
    /// included), as its JSON array.
    ///
    /// # Errors
    ///
    /// [`PromTestError::AlertmanagerApi`] when the call fails.
    pub async fn alerts(&self) -> Result<serde_json::Value, PromTestError> {
        self.call(reqwest::Method::GET, "/api/v2/alerts", None)
            .await
    }

    /// One API call; its JSON answer (`null` for an empty one).
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<serde_json::Value, PromTestError> {
        let failed = |message: String| PromTestError::AlertmanagerApi {
            call: format!("{method} {path}"),
            message,
        };
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.address()));
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_string());
        }
        let response = request.send().await.map_err(|e| failed(error_text(&e)))?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| failed(error_text(&e)))?;
        let text = String::from_utf8_lossy(&bytes);
        if !status.is_success() {
            let quoted: String = text.trim().chars().take(MAX_QUOTED_BODY).collect();
            return Err(failed(format!("HTTP {status}: {quoted}")));
        }
        if text.trim().is_empty() {
            return Ok(serde_json::Value::Null);
        }
        serde_json::from_str(&text).map_err(|e| failed(format!("unreadable answer: {e}")))
    }

    /// Spawns the process on `self.port` and waits until it is ready.
    async fn launch(&mut self, binary: &Path) -> Result<(), PromTestError> {
        let dir = self.dir.path();
        let log = File::create(dir.join("alertmanager.log"))
            .map_err(|e| PromTestError::io("creating alertmanager.log", e))?;
        let log_err = log
            .try_clone()
            .map_err(|e| PromTestError::io("creating alertmanager.log", e))?;
        let child = Command::new(binary)
            .arg(format!(
                "--config.file={}",
                dir.join("alertmanager.yml").display()
            ))
            .arg(format!("--storage.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{}", self.port))
            // Empty: no cluster listener, no gossip with other instances.
            .arg("--cluster.listen-address=")
            .args(&self.config.extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err))
            .current_dir(dir)
            .spawn()
            .map_err(|e| PromTestError::io(format!("starting {}", binary.display()), e))?;
        self.process = Some(Process(child));
        self.wait_ready().await
    }

    /// Polls `/-/ready` until 200, the process exits, or [`READY_TIMEOUT`].
    async fn wait_ready(&mut self) -> Result<(), PromTestError> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let url = format!("{}/-/ready", self.address());
        loop {
            if let Some(process) = self.process.as_mut()
                && let Ok(Some(status)) = process.0.try_wait()
            {
                self.process = None;
                return Err(PromTestError::AlertmanagerExited {
                    status: status.to_string(),
                    log: self.log_tail(),
                });
            }
            let last = match self.http.get(&url).send().await {
                Ok(response) if response.status().is_success() => return Ok(()),
                Ok(response) => format!("HTTP {}", response.status()),
                Err(e) => error_text(&e),
            };
            if Instant::now() >= deadline {
                self.process = None;
                return Err(PromTestError::AlertmanagerNotReady {
                    timeout: READY_TIMEOUT,
                    last,
                    log: self.log_tail(),
                });
            }
            tokio::time::sleep(READY_POLL).await;
        }
    }

    fn log_tail(&self) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
    }
}

/// An Alertmanager duration in whole milliseconds (`0ms` allowed).
fn duration(d: Duration) -> String {
    format!("{}ms", d.as_millis())
}

/// A YAML double-quoted scalar (JSON string syntax is valid YAML).
fn quote(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_route_and_receiver() -> Result<(), PromTestError> {
        let plain = AlertmanagerConfig::new().render()?;
        assert!(plain.contains("group_wait: 0ms\n"), "{plain}");
        assert!(plain.contains("group_interval: 1000ms\n"), "{plain}");
        assert!(plain.contains("repeat_interval: 1000ms\n"), "{plain}");
        assert!(plain.contains("group_by: [\"alertname\"]\n"), "{plain}");
        assert!(plain.ends_with("  - name: default\n"), "{plain}");

        let hooked = AlertmanagerConfig::new()
            .webhook("http://127.0.0.1:9/hook", Some("t\"k"))
            .group_by(&["alertname", "revision"])
            .render()?;
        assert!(
            hooked.contains("      - url: \"http://127.0.0.1:9/hook\"\n"),
            "{hooked}"
        );
        assert!(
            hooked.contains(
                "          authorization:\n            type: Bearer\n            \
                 credentials: \"t\\\"k\"\n"
            ),
            "{hooked}"
        );
        assert!(hooked.contains("group_by: [\"alertname\", \"revision\"]"));
        let no_token = AlertmanagerConfig::new()
            .webhook("http://h/", None)
            .render()?;
        assert!(!no_token.contains("authorization"), "{no_token}");
        Ok(())
    }

    #[test]
    fn refuses_zero_intervals() {
        let zero = AlertmanagerConfig::new()
            .timings(Duration::ZERO, Duration::ZERO, Duration::from_secs(1))
            .render();
        assert!(matches!(zero, Err(PromTestError::Config(m)) if m.contains("group_interval")));
    }

    #[test]
    fn debug_hides_the_token() {
        let config = AlertmanagerConfig::new().webhook("http://h/", Some("s3cret"));
        let text = format!("{config:?}");
        assert!(
            !text.contains("s3cret") && text.contains("redacted"),
            "{text}"
        );
    }
}
