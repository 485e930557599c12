//! What the test Prometheus scrapes, holds and requires.

use std::path::Path;
use std::time::Duration;

/// Configuration of a [`TestPrometheus`](crate::TestPrometheus).
///
/// ```
/// # use std::time::Duration;
/// let config = rollgate_promtest::ScrapeConfig::new()
///     .target("127.0.0.1:8080")
///     .interval(Duration::from_millis(500));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct ScrapeConfig {
    /// `host:port` targets scraped at `/metrics` (job `promtest`).
    pub targets: Vec<String>,
    /// Scrape (and rule evaluation) interval; default 1 s.
    pub interval: Duration,
    /// OpenMetrics documents written into the data dir by promtool before start.
    pub backfill: Vec<String>,
    /// Basic auth required on every endpoint: user and (plain) password.
    pub basic_auth: Option<(String, String)>,
    /// TLS on the web endpoint: certificate chain and private key, PEM.
    pub tls: Option<(String, String)>,
    /// Extra command-line flags for Prometheus.
    pub extra_args: Vec<String>,
    /// Rule files (their YAML), written next to `prometheus.yml` as `rules-N.yml` and listed
    /// in its `rule_files`; evaluated every [`ScrapeConfig::interval`].
    pub rule_files: Vec<String>,
    /// `host:port` of the Alertmanagers Prometheus sends its alerts to
    /// (`alerting.alertmanagers`).
    pub alertmanagers: Vec<String>,
}

impl Default for ScrapeConfig {
    fn default() -> Self {
        ScrapeConfig {
            targets: Vec::new(),
            interval: Duration::from_secs(1),
            backfill: Vec::new(),
            basic_auth: None,
            tls: None,
            extra_args: Vec::new(),
            rule_files: Vec::new(),
            alertmanagers: Vec::new(),
        }
    }
}

impl ScrapeConfig {
    /// No targets, 1 s interval, no backfill, plain HTTP without auth.
    pub fn new() -> Self {
        ScrapeConfig::default()
    }

    /// Adds a `host:port` scrape target (e.g. [`MetricsServer::target`](crate::MetricsServer::target)).
    pub fn target(mut self, host_port: impl Into<String>) -> Self {
        self.targets.push(host_port.into());
        self
    }

    /// Sets the scrape interval.
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// Adds an OpenMetrics document to load with
    /// `promtool tsdb create-blocks-from openmetrics` before Prometheus starts.
    ///
    /// Every sample needs a timestamp in **seconds**, and the samples of a series must be in
    /// strictly ascending time order: [`TestPrometheus::start`](crate::TestPrometheus::start)
    /// refuses data that breaks these rules (promtool would silently misplace or drop it). The
    /// trailing `# EOF` is added when missing. Query such data at explicit times: an instant
    /// query only looks back 5 minutes.
    pub fn backfill(mut self, openmetrics: &str) -> Self {
        self.backfill.push(openmetrics.to_string());
        self
    }

    /// Requires HTTP basic auth with this user and password (Prometheus `--web.config.file`,
    /// `basic_auth_users`, bcrypt-hashed by the harness).
    pub fn basic_auth(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.basic_auth = Some((user.into(), password.into()));
        self
    }

    /// Serves HTTPS with this certificate (chain) and key, PEM (`tls_server_config`).
    pub fn tls(mut self, cert_pem: impl Into<String>, key_pem: impl Into<String>) -> Self {
        self.tls = Some((cert_pem.into(), key_pem.into()));
        self
    }

    /// Adds a Prometheus command-line flag, e.g. `--query.lookback-delta=1m`.
    pub fn arg(mut self, flag: impl Into<String>) -> Self {
        self.extra_args.push(flag.into());
        self
    }

    /// Adds a rule file, e.g. an alerting rule that fires at once:
    ///
    /// ```yaml
    /// groups:
    ///   - name: test
    ///     rules:
    ///       - alert: HighErrorRate
    ///         expr: errors > 0
    ///         for: 0s
    ///         labels: { severity: page }
    /// ```
    ///
    /// Prometheus refuses to start (and [`TestPrometheus::start`](crate::TestPrometheus::start)
    /// fails with its log) when the file is invalid.
    pub fn rule_file(mut self, yaml: impl Into<String>) -> Self {
        self.rule_files.push(yaml.into());
        self
    }

    /// Sends alerts to the Alertmanager at `host:port`, e.g.
    /// [`TestAlertmanager::target`](crate::TestAlertmanager::target). Prometheus sends each
    /// firing alert at most every `--rules.alert.resend-delay` (1 min by default; add
    /// `.arg("--rules.alert.resend-delay=1s")` in tests).
    pub fn alertmanager(mut self, host_port: impl Into<String>) -> Self {
        self.alertmanagers.push(host_port.into());
        self
    }

    /// The file names of the rule files, relative to `prometheus.yml`.
    pub(crate) fn rule_file_names(&self) -> Vec<String> {
        (0..self.rule_files.len())
            .map(|index| format!("rules-{index}.yml"))
            .collect()
    }

    /// Whether a `--web.config.file` is needed.
    pub(crate) fn needs_web_config(&self) -> bool {
        self.basic_auth.is_some() || self.tls.is_some()
    }

    /// `prometheus.yml`.
    pub(crate) fn render_prometheus_yml(&self) -> String {
        let interval = prometheus_duration(self.interval);
        let timeout = prometheus_duration(self.interval.min(Duration::from_secs(10)));
        let mut yml = format!(
            "global:\n  scrape_interval: {interval}\n  scrape_timeout: {timeout}\n  \
             evaluation_interval: {interval}\n"
        );
        if self.targets.is_empty() {
            yml.push_str("scrape_configs: []\n");
        } else {
            yml.push_str(
                "scrape_configs:\n  - job_name: promtest\n    static_configs:\n      - targets:\n",
            );
            for target in &self.targets {
                yml.push_str(&format!("          - {}\n", quote(target)));
            }
        }
        if !self.rule_files.is_empty() {
            yml.push_str("rule_files:\n");
            for name in self.rule_file_names() {
                yml.push_str(&format!("  - {}\n", quote(&name)));
            }
        }
        if !self.alertmanagers.is_empty() {
            yml.push_str(
                "alerting:\n  alertmanagers:\n    - static_configs:\n        - targets:\n",
            );
            for target in &self.alertmanagers {
                yml.push_str(&format!("            - {}\n", quote(target)));
            }
        }
        yml
    }

    /// `web.yml`, given the bcrypt hash of the password and where the TLS files are.
    pub(crate) fn render_web_yml(
        &self,
        password_hash: Option<&str>,
        cert_file: &Path,
        key_file: &Path,
    ) -> String {
        let mut yml = String::new();
        if self.tls.is_some() {
            yml.push_str(&format!(
                "tls_server_config:\n  cert_file: {}\n  key_file: {}\n",
                quote(&cert_file.to_string_lossy()),
                quote(&key_file.to_string_lossy())
            ));
        }
        if let (Some((user, _)), Some(hash)) = (&self.basic_auth, password_hash) {
            yml.push_str(&format!(
                "basic_auth_users:\n  {}: {}\n",
                quote(user),
                quote(hash)
            ));
        }
        yml
    }
}

/// A Prometheus duration in whole milliseconds (at least 1 ms).
fn prometheus_duration(d: Duration) -> String {
    format!("{}ms", d.as_millis().max(1))
}

/// A YAML double-quoted scalar (JSON string syntax is valid YAML).
fn quote(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_scrape_config() {
        let yml = ScrapeConfig::new()
            .target("127.0.0.1:1234")
            .interval(Duration::from_millis(500))
            .render_prometheus_yml();
        assert!(yml.contains("scrape_interval: 500ms"), "{yml}");
        assert!(yml.contains("scrape_timeout: 500ms"), "{yml}");
        assert!(yml.contains("- \"127.0.0.1:1234\""), "{yml}");
        assert!(
            ScrapeConfig::new()
                .render_prometheus_yml()
                .contains("scrape_configs: []")
        );
    }

    #[test]
    fn renders_rules_and_alertmanagers() {
        let yml = ScrapeConfig::new()
            .rule_file("groups: []")
            .rule_file("groups: []")
            .alertmanager("127.0.0.1:9093")
            .render_prometheus_yml();
        assert!(
            yml.contains("rule_files:\n  - \"rules-0.yml\"\n  - \"rules-1.yml\"\n"),
            "{yml}"
        );
        assert!(
            yml.contains(
                "alerting:\n  alertmanagers:\n    - static_configs:\n        - targets:\n            \
                 - \"127.0.0.1:9093\"\n"
            ),
            "{yml}"
        );
        let plain = ScrapeConfig::new().render_prometheus_yml();
        assert!(!plain.contains("rule_files") && !plain.contains("alerting"));
    }

    #[test]
    fn renders_web_config() {
        let config = ScrapeConfig::new()
            .basic_auth("alice", "pw")
            .tls("CERT", "KEY");
        assert!(config.needs_web_config());
        let yml = config.render_web_yml(
            Some("$2b$04$abc"),
            Path::new("/d/cert.pem"),
            Path::new("/d/key.pem"),
        );
        assert!(yml.contains("cert_file: \"/d/cert.pem\""), "{yml}");
        assert!(yml.contains("\"alice\": \"$2b$04$abc\""), "{yml}");
        assert!(!ScrapeConfig::new().needs_web_config());
    }
}
