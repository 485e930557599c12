//! Test harness around a real Prometheus, for rollgate's tests and demo.
//!
//! * [`TestPrometheus`] runs `/usr/bin/prometheus` (or `prometheus` on `PATH`) on
//!   `127.0.0.1` with its own port, config file and data directory under the system temp dir,
//!   optionally with basic auth and TLS ([`ScrapeConfig::basic_auth`], [`ScrapeConfig::tls`])
//!   and with data backfilled by `promtool` before start ([`ScrapeConfig::backfill`]). It
//!   waits for `/-/ready`; dropping it kills the process and removes the directory.
//!   [`TestPrometheus::stop`] and [`TestPrometheus::restart`] simulate an outage.
//! * [`MetricsServer`] serves `/metrics` with `http_requests_total` and
//!   `http_request_errors_total` per `version` and `pod_template_hash`, driven through a
//!   [`MetricsHandle`]: counters that follow a traffic rate and error rate over real time, or
//!   plain increments; and a request-duration histogram (`http_request_duration_seconds`,
//!   buckets [`DURATION_BUCKETS`]) per series given durations.
//! * [`wait_for_data`] polls a query until it returns something: a freshly started Prometheus
//!   needs ~5-6 s before the first scraped sample is queryable, `rate()` a few seconds more.
//!
//! * [`TestAlertmanager`] runs Alertmanager (`/usr/bin/prometheus-alertmanager`, Debian's
//!   `prometheus-alertmanager` 0.25) the same way: `127.0.0.1`, own port, config and storage
//!   directory, clustering off (`--cluster.listen-address=`), fast grouping timings, an optional
//!   webhook receiver with a bearer token ([`AlertmanagerConfig`]). It posts alerts and
//!   silences through the API v2. A [`TestPrometheus`] sends its alerts to it with
//!   [`ScrapeConfig::alertmanager`] and evaluates rules given with [`ScrapeConfig::rule_file`].
//!
//! Nothing here skips silently: when Prometheus is not installed, [`TestPrometheus::start`]
//! fails with [`PromTestError::NotInstalled`], whose message says how to install it.
//! [`is_installed`] lets a caller check first; likewise [`TestAlertmanager::start`],
//! [`PromTestError::AlertmanagerNotInstalled`] and [`is_alertmanager_installed`].

mod alertmanager;
mod config;
mod error;
mod metrics;
mod openmetrics;
mod server;

use std::path::PathBuf;

pub use alertmanager::{AlertmanagerConfig, TestAlertmanager, Webhook};
pub use config::ScrapeConfig;
pub use error::PromTestError;
pub use metrics::{DURATION_BUCKETS, MetricsHandle, MetricsServer};
pub use server::{DEFAULT_DATA_TIMEOUT, TestPrometheus, wait_for_data};

/// Whether a Prometheus binary can be found ([`prometheus_path`]).
pub fn is_installed() -> bool {
    prometheus_path().is_some()
}

/// The Prometheus binary: `/usr/bin/prometheus`, else `prometheus` on `PATH`.
pub fn prometheus_path() -> Option<PathBuf> {
    find_binary("prometheus")
}

/// The promtool binary: `/usr/bin/promtool`, else `promtool` on `PATH`.
pub fn promtool_path() -> Option<PathBuf> {
    find_binary("promtool")
}

/// Whether an Alertmanager binary can be found ([`alertmanager_path`]).
pub fn is_alertmanager_installed() -> bool {
    alertmanager_path().is_some()
}

/// The Alertmanager binary: `/usr/bin/prometheus-alertmanager` (Debian's name), else
/// `prometheus-alertmanager` or `alertmanager` on `PATH`.
pub fn alertmanager_path() -> Option<PathBuf> {
    find_binary("prometheus-alertmanager").or_else(|| find_binary("alertmanager"))
}

/// Installs rustls' `ring` provider as the process default unless one is installed already
/// (the workspace builds reqwest without a provider of its own).
pub fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Err: another thread won the race, which is just as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

fn find_binary(name: &str) -> Option<PathBuf> {
    let usr_bin = PathBuf::from("/usr/bin").join(name);
    if usr_bin.is_file() {
        return Some(usr_bin);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}
