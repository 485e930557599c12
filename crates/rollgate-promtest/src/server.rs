//! A Prometheus process of the test's own.

use std::fs::{self, File};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::config::ScrapeConfig;
use crate::error::PromTestError;
use crate::{install_crypto_provider, openmetrics, prometheus_path, promtool_path};

/// How long [`wait_for_data`] waits by default.
pub const DEFAULT_DATA_TIMEOUT: Duration = Duration::from_secs(60);

/// How long start-up may take before [`TestPrometheus::start`] gives up.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Pause between two polls of `/-/ready` or of a query.
const READY_POLL: Duration = Duration::from_millis(25);
const DATA_POLL: Duration = Duration::from_millis(250);

/// Lines of Prometheus' log quoted in errors.
const LOG_TAIL_LINES: usize = 40;

/// Attempts at finding a free port (another process may take the one we picked).
const PORT_ATTEMPTS: usize = 3;

/// Set to keep the temp directory (config, data, log) after the test, for debugging.
const KEEP_ENV: &str = "ROLLGATE_PROMTEST_KEEP";

/// A Prometheus server on `127.0.0.1`, with its own port, config and data directory.
///
/// Dropping it kills the process (SIGKILL) and removes the directory (unless the environment
/// variable `ROLLGATE_PROMTEST_KEEP` is set).
pub struct TestPrometheus {
    // Field order is drop order: the process dies before its directory is removed.
    process: Option<Process>,
    http: reqwest::Client,
    config: ScrapeConfig,
    port: u16,
    dir: TempDir,
}

impl TestPrometheus {
    /// Writes the configuration, backfills, starts Prometheus and waits until `/-/ready`
    /// answers 200 (typically well under a second).
    ///
    /// # Errors
    ///
    /// [`PromTestError::NotInstalled`] without a Prometheus binary; otherwise whatever failed,
    /// with the end of Prometheus' log when it was started.
    pub async fn start(config: ScrapeConfig) -> Result<TestPrometheus, PromTestError> {
        let binary = prometheus_path().ok_or(PromTestError::NotInstalled)?;
        let mut dir = TempDir::create()?;
        fs::create_dir(dir.path().join("data"))
            .map_err(|e| PromTestError::io("creating the data directory", e))?;
        write(
            &dir.path().join("prometheus.yml"),
            &config.render_prometheus_yml(),
        )?;
        if config.needs_web_config() {
            write_web_config(&config, dir.path())?;
        }
        for (name, yaml) in config.rule_file_names().iter().zip(&config.rule_files) {
            write(&dir.path().join(name), yaml)?;
        }
        backfill(&config, dir.path())?;

        install_crypto_provider();
        let http = reqwest::Client::builder()
            .tls_danger_accept_invalid_certs(true)
            .timeout(Duration::from_secs(5))
            .no_proxy()
            .build()
            .map_err(|e| PromTestError::Config(format!("building the HTTP client: {e}")))?;

        let mut last_error = None;
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port()?;
            let mut prometheus = TestPrometheus {
                process: None,
                http: http.clone(),
                config: config.clone(),
                port,
                dir,
            };
            match prometheus.launch(&binary).await {
                Ok(()) => return Ok(prometheus),
                Err(PromTestError::Exited { status, log })
                    if log.contains("address already in use") =>
                {
                    last_error = Some(PromTestError::Exited { status, log });
                    dir = prometheus.take_dir();
                }
                Err(e) => return Err(e),
            }
        }
        Err(last_error.unwrap_or(PromTestError::Config("no free port".into())))
    }

    /// Base URL, e.g. `http://127.0.0.1:41234` (`https` with [`ScrapeConfig::tls`]).
    pub fn address(&self) -> String {
        let scheme = if self.config.tls.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// The port it listens on (kept across [`TestPrometheus::restart`]).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The temp directory: `prometheus.yml`, `web.yml`, `data/`, `prometheus.log`.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The configuration it was started with.
    pub fn config(&self) -> &ScrapeConfig {
        &self.config
    }

    /// Whether the process is running (not stopped, not exited).
    pub fn is_running(&mut self) -> bool {
        self.process
            .as_mut()
            .is_some_and(|p| matches!(p.0.try_wait(), Ok(None)))
    }

    /// Prometheus' log so far (stdout and stderr).
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// Kills the process (SIGKILL) and waits for it; the port then refuses connections. Data
    /// scraped so far is in the WAL and comes back on [`TestPrometheus::restart`].
    pub fn stop(&mut self) {
        self.process = None;
    }

    /// Stops if running, then starts again on the same port and data directory and waits for
    /// `/-/ready`.
    ///
    /// # Errors
    ///
    /// As [`TestPrometheus::start`].
    pub async fn restart(&mut self) -> Result<(), PromTestError> {
        self.stop();
        let binary = prometheus_path().ok_or(PromTestError::NotInstalled)?;
        self.launch(&binary).await
    }

    /// Runs an instant query (at `time`, RFC 3339 or Unix seconds, or now) and returns
    /// Prometheus' `data` object (`{"resultType": ..., "result": ...}`).
    ///
    /// # Errors
    ///
    /// [`PromTestError::Query`] when the request fails or Prometheus answers an error.
    pub async fn query_json(
        &self,
        query: &str,
        time: Option<&str>,
    ) -> Result<serde_json::Value, PromTestError> {
        let failed = |message: String| PromTestError::Query {
            query: query.to_string(),
            message,
        };
        let mut params = vec![("query", query)];
        if let Some(time) = time {
            params.push(("time", time));
        }
        let request = self
            .authorized(
                self.http
                    .get(format!("{}/api/v1/query", self.address()))
                    .query(&params),
            )
            .build()
            .map_err(|e| failed(e.to_string()))?;
        let response = self
            .http
            .execute(request)
            .await
            .map_err(|e| failed(error_text(&e)))?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| failed(e.to_string()))?;
        let mut json: serde_json::Value = serde_json::from_slice(&body).map_err(|_| {
            failed(format!(
                "HTTP {status}: {}",
                String::from_utf8_lossy(&body).trim()
            ))
        })?;
        if json["status"] != "success" {
            return Err(failed(format!("HTTP {status}: {json}")));
        }
        Ok(json["data"].take())
    }

    /// Polls `query` until it returns data (a scalar, or at least one series), at most
    /// `timeout`; returns the `data` object.
    ///
    /// # Errors
    ///
    /// [`PromTestError::NoData`] with the last answer.
    pub async fn wait_for_data(
        &self,
        query: &str,
        timeout: Duration,
    ) -> Result<serde_json::Value, PromTestError> {
        let deadline = Instant::now() + timeout;
        loop {
            let last = match self.query_json(query, None).await {
                Ok(data) if has_data(&data) => return Ok(data),
                Ok(data) => data.to_string(),
                Err(e) => e.to_string(),
            };
            if Instant::now() >= deadline {
                return Err(PromTestError::NoData {
                    query: query.to_string(),
                    timeout,
                    last,
                });
            }
            tokio::time::sleep(DATA_POLL).await;
        }
    }

    /// Spawns the process on `self.port` and waits until it is ready.
    async fn launch(&mut self, binary: &Path) -> Result<(), PromTestError> {
        let dir = self.dir.path();
        let log = File::create(dir.join("prometheus.log"))
            .map_err(|e| PromTestError::io("creating prometheus.log", e))?;
        let log_err = log
            .try_clone()
            .map_err(|e| PromTestError::io("creating prometheus.log", e))?;
        let mut command = Command::new(binary);
        command
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            // Retention counts back from the newest block: keep backfilled history whatever
            // its age (100y is Prometheus' maximum).
            .arg("--storage.tsdb.retention.time=100y")
            .arg(format!("--web.listen-address=127.0.0.1:{}", self.port))
            .args(&self.config.extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err))
            .current_dir(dir);
        if self.config.needs_web_config() {
            command.arg(format!(
                "--web.config.file={}",
                dir.join("web.yml").display()
            ));
        }
        let child = command
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
                return Err(PromTestError::Exited {
                    status: status.to_string(),
                    log: self.log_tail(),
                });
            }
            let last = match self.authorized(self.http.get(&url)).send().await {
                Ok(response) if response.status().is_success() => return Ok(()),
                Ok(response) => format!("HTTP {}", response.status()),
                Err(e) => error_text(&e),
            };
            if Instant::now() >= deadline {
                self.process = None;
                return Err(PromTestError::NotReady {
                    timeout: READY_TIMEOUT,
                    last,
                    log: self.log_tail(),
                });
            }
            tokio::time::sleep(READY_POLL).await;
        }
    }

    /// Adds the basic-auth credentials when configured.
    fn authorized(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.config.basic_auth {
            Some((user, password)) => request.basic_auth(user, Some(password)),
            None => request,
        }
    }

    fn log_tail(&self) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
    }

    /// Moves the directory out (for a retry on another port), leaving an empty guard.
    fn take_dir(&mut self) -> TempDir {
        self.process = None;
        std::mem::replace(&mut self.dir, TempDir(None))
    }
}

/// Polls `query` on `prometheus` until it returns data, at most [`DEFAULT_DATA_TIMEOUT`].
/// See [`TestPrometheus::wait_for_data`].
///
/// # Errors
///
/// [`PromTestError::NoData`] with the last answer.
pub async fn wait_for_data(
    prometheus: &TestPrometheus,
    query: &str,
) -> Result<serde_json::Value, PromTestError> {
    prometheus.wait_for_data(query, DEFAULT_DATA_TIMEOUT).await
}

/// Whether a query's `data` holds a value.
fn has_data(data: &serde_json::Value) -> bool {
    match data["resultType"].as_str() {
        Some("scalar") | Some("string") => true,
        _ => data["result"].as_array().is_some_and(|r| !r.is_empty()),
    }
}

/// A reqwest error with its causes, on one line.
pub(crate) fn error_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The child process; dropping it kills (SIGKILL) and reaps it.
pub(crate) struct Process(pub(crate) Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A fresh directory under the system temp dir, removed on drop.
pub(crate) struct TempDir(Option<PathBuf>);

impl TempDir {
    pub(crate) fn create() -> Result<TempDir, PromTestError> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let name = format!(
            "rollgate-promtest-{}-{}-{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let path = std::env::temp_dir().join(name);
        fs::create_dir_all(std::env::temp_dir())
            .and_then(|()| fs::create_dir(&path))
            .map_err(|e| PromTestError::io(format!("creating {}", path.display()), e))?;
        Ok(TempDir(Some(path)))
    }

    pub(crate) fn path(&self) -> &Path {
        self.0.as_deref().unwrap_or(Path::new(""))
    }

    /// Moves the directory out (for a retry on another port), leaving an empty guard.
    pub(crate) fn take(&mut self) -> TempDir {
        TempDir(self.0.take())
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Some(path) = self.0.take()
            && std::env::var_os(KEEP_ENV).is_none()
        {
            let _ = fs::remove_dir_all(path);
        }
    }
}

/// A port that was free a moment ago on 127.0.0.1.
pub(crate) fn free_port() -> Result<u16, PromTestError> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(|e| PromTestError::io("finding a free port", e))
}

pub(crate) fn write(path: &Path, contents: &str) -> Result<(), PromTestError> {
    fs::write(path, contents)
        .map_err(|e| PromTestError::io(format!("writing {}", path.display()), e))
}

/// `web.yml` and the TLS files.
fn write_web_config(config: &ScrapeConfig, dir: &Path) -> Result<(), PromTestError> {
    let cert_file = dir.join("tls-cert.pem");
    let key_file = dir.join("tls-key.pem");
    if let Some((cert, key)) = &config.tls {
        write(&cert_file, cert)?;
        write(&key_file, key)?;
    }
    let hash = match &config.basic_auth {
        // Cost 4, bcrypt's minimum: the hash only has to be valid, not strong.
        Some((_, password)) => Some(
            bcrypt::hash(password, 4)
                .map_err(|e| PromTestError::Config(format!("hashing the password: {e}")))?,
        ),
        None => None,
    };
    write(
        &dir.join("web.yml"),
        &config.render_web_yml(hash.as_deref(), &cert_file, &key_file),
    )
}

/// Loads each backfill document into `dir/data` with promtool.
fn backfill(config: &ScrapeConfig, dir: &Path) -> Result<(), PromTestError> {
    if config.backfill.is_empty() {
        return Ok(());
    }
    let promtool = promtool_path().ok_or(PromTestError::PromtoolNotInstalled)?;
    for (index, text) in config.backfill.iter().enumerate() {
        let prepared = openmetrics::prepare(text)
            .map_err(|e| PromTestError::Config(format!("backfill document {index}: {e}")))?;
        let file = dir.join(format!("backfill-{index}.om"));
        write(&file, &prepared)?;
        let output = Command::new(&promtool)
            .args(["tsdb", "create-blocks-from", "openmetrics"])
            .arg(&file)
            .arg(dir.join("data"))
            .stdin(Stdio::null())
            .output()
            .map_err(|e| PromTestError::io(format!("running {}", promtool.display()), e))?;
        if !output.status.success() {
            return Err(PromTestError::Promtool(format!(
                "document {index}: {}: {}{}",
                output.status,
                String::from_utf8_lossy(&output.stdout).trim(),
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
    }
    Ok(())
}
