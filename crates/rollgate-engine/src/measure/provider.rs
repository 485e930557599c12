//! A metric's Prometheus provider, parsed: the query (PromQL syntax checked), timeout,
//! headers, `rangeQuery` bounds and the Secret holding credentials. What is left for the
//! controller is I/O: reading that Secret and asking Prometheus.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use rollgate_api::{PrometheusMetric, RangeQuery};

use super::args::{render_plain, render_query, substitute_plain};
use super::promql;

/// A Prometheus query of a metric. In a [`super::MetricSpec`] the address, query and header
/// values may still hold `{{args.NAME}}` placeholders; in a [`super::Due`] measurement they
/// are substituted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrometheusQuery {
    /// Base URL of the Prometheus server.
    pub address: String,
    /// The PromQL query.
    pub query: String,
    /// Query timeout (`None`: the client's default).
    pub timeout: Option<Duration>,
    /// Extra HTTP headers, `(name, value)`.
    pub headers: Vec<(String, String)>,
    /// Skip TLS verification.
    pub insecure: bool,
    /// A range query over these bounds instead of an instant query.
    pub range: Option<RangeSpec>,
    /// Name of the Secret (in the run's namespace) holding credentials and a CA bundle.
    pub secret: Option<String>,
}

/// `rangeQuery` bounds, each as how long before the measurement it lies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RangeSpec {
    /// Start: this long before now.
    pub start_ago: Duration,
    /// End: this long before now (zero: now).
    pub end_ago: Duration,
    /// Resolution step, more than zero.
    pub step: Duration,
}

/// A range query's bounds at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    /// First instant.
    pub start: Timestamp,
    /// Last instant.
    pub end: Timestamp,
    /// Resolution step.
    pub step: Duration,
}

impl RangeSpec {
    /// The bounds for a measurement taken at `now`.
    pub fn at(&self, now: Timestamp) -> Result<TimeRange, String> {
        let ago = |d: Duration| {
            SignedDuration::try_from(d)
                .ok()
                .and_then(|d| now.checked_sub(d).ok())
                .ok_or_else(|| format!("rangeQuery: {d:?} before {now} is out of range"))
        };
        Ok(TimeRange {
            start: ago(self.start_ago)?,
            end: ago(self.end_ago)?,
            step: self.step,
        })
    }
}

/// Credentials for Prometheus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// None.
    None,
    /// `Authorization: Bearer TOKEN`.
    Bearer(String),
    /// HTTP basic authentication.
    Basic {
        /// User name.
        user: String,
        /// Password.
        password: String,
    },
}

/// What a credentials Secret holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretAuth {
    /// `token`, or `username` and `password`.
    pub credentials: Credentials,
    /// `ca.crt`: PEM certificates to trust.
    pub ca_pem: Option<Vec<u8>>,
}

/// Reads the data of the credentials Secret `name` (as `namespace/name`, for messages):
/// `token` (bearer), or `username` and `password` (basic), and optionally `ca.crt`.
pub fn secret_auth(name: &str, data: &BTreeMap<String, Vec<u8>>) -> Result<SecretAuth, String> {
    let text = |k: &str| {
        data.get(k)
            .map(|v| String::from_utf8_lossy(v).trim().to_string())
    };
    let credentials = match (text("token"), text("username"), text("password")) {
        (Some(token), _, _) => Credentials::Bearer(token),
        (None, Some(user), Some(password)) => Credentials::Basic { user, password },
        (None, Some(_), None) | (None, None, Some(_)) => {
            return Err(format!("Secret {name}: username and password go together"));
        }
        (None, None, None) => Credentials::None,
    };
    Ok(SecretAuth {
        credentials,
        ca_pem: data.get("ca.crt").cloned(),
    })
}

/// Parses one bound of `rangeQuery`: `now()`, `now() - DURATION`, or a `DURATION` meaning
/// that long ago; returns how long ago.
fn bound(field: &str, text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let ago = match t.strip_prefix("now()").map(str::trim) {
        Some("") => return Ok(Duration::ZERO),
        Some(rest) => rest.strip_prefix('-').map(str::trim),
        None => Some(t),
    };
    ago.and_then(|d| rollgate_api::duration::parse(d).ok())
        .ok_or_else(|| {
            format!(
                "{field}: expected now(), now() - DURATION or a DURATION ago such as 5m, got \
                 \"{text}\""
            )
        })
}

/// Parses `rangeQuery` (`field` is its path for messages).
pub fn range_spec(field: &str, rq: &RangeQuery) -> Result<RangeSpec, Vec<String>> {
    let mut problems = Vec::new();
    let start = if rq.start.trim().is_empty() {
        problems.push(format!("{field}.start: required, e.g. now() - 10m"));
        None
    } else {
        bound(&format!("{field}.start"), &rq.start)
            .map_err(|e| problems.push(e))
            .ok()
    };
    let end = if rq.end.trim().is_empty() {
        Some(Duration::ZERO)
    } else {
        bound(&format!("{field}.end"), &rq.end)
            .map_err(|e| problems.push(e))
            .ok()
    };
    let step = match rollgate_api::duration::parse(&rq.step) {
        Ok(d) if d.is_zero() => {
            problems.push(format!(
                "{field}.step: must be more than 0, got \"{}\"",
                rq.step
            ));
            None
        }
        Ok(d) => Some(d),
        Err(e) => {
            problems.push(format!("{field}.step: {e}"));
            None
        }
    };
    match (start, end, step) {
        (Some(start_ago), Some(end_ago), Some(step)) if problems.is_empty() => {
            if start_ago < end_ago {
                Err(vec![format!(
                    "{field}.start: must not be after end, got start \"{}\" and end \"{}\"",
                    rq.start, rq.end
                )])
            } else {
                Ok(RangeSpec {
                    start_ago,
                    end_ago,
                    step,
                })
            }
        }
        _ => Err(problems),
    }
}

/// An HTTP header name: a token of RFC 9110 (letters, digits and ``!#$%&'*+-.^_`|~``).
fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c))
}

/// Checks that `address` is an absolute `http://` or `https://` URL with a host (and a port of
/// digits, if any), without spaces or control characters.
pub fn check_address(address: &str) -> Result<(), String> {
    let bad = |why: &str| {
        Err(format!(
            "expected an absolute http:// or https:// URL such as http://prometheus:9090, got \"{address}\" ({why})"
        ))
    };
    if let Some(c) = address
        .chars()
        .find(|c| c.is_control() || c.is_whitespace())
    {
        return bad(&format!("it contains {c:?}"));
    }
    let Some((scheme, rest)) = address.split_once("://") else {
        return bad("no scheme");
    };
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return bad(&format!("scheme {scheme}"));
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = match host_port.strip_prefix('[') {
        // An IPv6 address: [::1]:9090.
        Some(v6) => match v6.split_once(']') {
            Some((h, rest)) => (h, rest.strip_prefix(':')),
            None => return bad("unclosed ["),
        },
        None => match host_port.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (host_port, None),
        },
    };
    if host.is_empty() {
        return bad("no host");
    }
    if port.is_some_and(|p| p.is_empty() || !p.chars().all(|c| c.is_ascii_digit())) {
        return bad("the port is not a number");
    }
    Ok(())
}

/// Checks that a header value holds no control character (CR and LF would end the header
/// and start another); a tab is allowed.
pub fn check_header_value(value: &str) -> Result<(), String> {
    match value.chars().find(|c| c.is_control() && *c != '\t') {
        Some(c) => Err(format!(
            "a header value cannot contain control characters, found {c:?}"
        )),
        None => Ok(()),
    }
}

/// Parses a Prometheus provider (`field` is its path for messages, e.g.
/// `metrics[0].provider.prometheus`).
pub fn prometheus_query(field: &str, p: &PrometheusMetric) -> Result<PrometheusQuery, Vec<String>> {
    parse(field, p, true)
}

/// The provider of a `sequential` metric: its address, timeout, headers, TLS and credentials;
/// its queries come from `sequential`, so `query` and `rangeQuery` must not be set.
pub fn counter_provider(field: &str, p: &PrometheusMetric) -> Result<PrometheusQuery, Vec<String>> {
    judge_provider(
        field,
        p,
        "a sequential metric (its queries are sequential.events and sequential.requests)",
        "a sequential metric (it reads counters with instant queries)",
    )
}

/// The provider of a `kayenta` metric: its address, timeout, headers, TLS and credentials;
/// its queries come from `kayenta.metrics[].query`, so `query` and `rangeQuery` must not be
/// set.
pub fn sample_provider(field: &str, p: &PrometheusMetric) -> Result<PrometheusQuery, Vec<String>> {
    judge_provider(
        field,
        p,
        "a kayenta metric (its queries are kayenta.metrics[].query)",
        "a kayenta metric (it reads one sample per revision with instant queries)",
    )
}

/// A judge's provider: `query` and `rangeQuery` refused with the reasons given.
fn judge_provider(
    field: &str,
    p: &PrometheusMetric,
    query_unused: &str,
    range_unused: &str,
) -> Result<PrometheusQuery, Vec<String>> {
    let mut problems = Vec::new();
    if !p.query.trim().is_empty() {
        problems.push(format!(
            "{field}.query: not used by {query_unused}, expected none"
        ));
    }
    if p.range_query.is_some() {
        problems.push(format!(
            "{field}.rangeQuery: not used by {range_unused}, expected none"
        ));
    }
    let parsed = parse(
        field,
        &PrometheusMetric {
            query: String::new(),
            range_query: None,
            ..p.clone()
        },
        false,
    );
    match parsed {
        Ok(q) if problems.is_empty() => Ok(q),
        Ok(_) => Err(problems),
        Err(more) => {
            problems.extend(more);
            Err(problems)
        }
    }
}

fn parse(
    field: &str,
    p: &PrometheusMetric,
    query_required: bool,
) -> Result<PrometheusQuery, Vec<String>> {
    let mut problems = Vec::new();
    // Placeholders are checked for their form only; their values come with each run.
    let placeholders = |text: &str| substitute_plain(text, |_| Ok(String::new()));
    if p.address.trim().is_empty() {
        problems.push(format!("{field}.address: required"));
    } else if let Err(e) = placeholders(&p.address) {
        problems.push(format!("{field}.address: {e}"));
    } else {
        // What placeholders stand for is only known per run: they are read as a word here, and
        // an address whose scheme comes from one is checked once its value is known.
        let scheme_known = p
            .address
            .find("{{")
            .is_none_or(|i| p.address[..i].contains("://"));
        let neutral = substitute_plain(&p.address, |_| Ok("1".to_string()));
        if let (true, Ok(text)) = (scheme_known, neutral)
            && let Err(e) = check_address(text.trim())
        {
            problems.push(format!("{field}.address: {e}"));
        }
    }
    if p.query.trim().is_empty() {
        if query_required {
            problems.push(format!("{field}.query: required"));
        }
    } else if let Err(e) = promql::check(&p.query) {
        problems.push(format!("{field}.query: {e}"));
    }
    let timeout = match p.timeout {
        None => None,
        Some(t) if t > 0 => u64::try_from(t).ok().map(Duration::from_secs),
        Some(t) => {
            problems.push(format!("{field}.timeout: expected seconds > 0, got {t}"));
            None
        }
    };
    for (i, h) in p.headers.iter().enumerate() {
        if !is_header_name(&h.key) {
            problems.push(format!(
                "{field}.headers[{i}].key: expected an HTTP header name, got \"{}\"",
                h.key
            ));
        }
        if let Err(e) = placeholders(&h.value).and_then(|_| check_header_value(&h.value)) {
            problems.push(format!("{field}.headers[{i}].value: {e}"));
        }
    }
    let range = match &p.range_query {
        None => None,
        Some(rq) => range_spec(&format!("{field}.rangeQuery"), rq)
            .map_err(|p| problems.extend(p))
            .ok(),
    };
    let secret = match &p.authentication {
        None => None,
        Some(a) if a.secret_name.trim().is_empty() => {
            problems.push(format!(
                "{field}.authentication.secretName: required, expected the name of a Secret"
            ));
            None
        }
        Some(a) => Some(a.secret_name.trim().to_string()),
    };
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(PrometheusQuery {
        address: p.address.clone(),
        query: p.query.clone(),
        timeout,
        headers: p
            .headers
            .iter()
            .map(|h| (h.key.clone(), h.value.clone()))
            .collect(),
        insecure: p.insecure.unwrap_or(false),
        range,
        secret,
    })
}

impl PrometheusQuery {
    /// The query with every placeholder of its address, query and header values substituted
    /// (values in the query escaped for where they stand).
    /// An address that is not an absolute http(s) URL, or a header value with a control
    /// character, once substituted, is an error naming the field.
    pub fn render(&self, args: &BTreeMap<String, String>) -> Result<Self, String> {
        let mut out = self.clone();
        out.query = render_query(&self.query, args)?;
        out.address = render_plain(&self.address, args)?;
        check_address(out.address.trim()).map_err(|e| format!("address: {e}"))?;
        for (name, value) in &mut out.headers {
            *value = render_plain(value, args)?;
            check_header_value(value).map_err(|e| format!("header {name}: {e}"))?;
        }
        Ok(out)
    }

    /// The names of the arguments its address, query and header values use.
    pub fn placeholders(&self) -> Vec<String> {
        let mut names = Vec::new();
        let mut collect = |name: &str| {
            if !names.iter().any(|n| n == name) {
                names.push(name.to_string());
            }
            Ok(String::new())
        };
        let _ = substitute_plain(&self.address, &mut collect);
        let _ = substitute_plain(&self.query, &mut collect);
        for (_, value) in &self.headers {
            let _ = substitute_plain(value, &mut collect);
        }
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rq(start: &str, end: &str, step: &str) -> RangeQuery {
        RangeQuery {
            start: start.into(),
            end: end.into(),
            step: step.into(),
        }
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn range_bounds_are_relative_to_now() {
        let spec = range_spec("rangeQuery", &rq("now() - 5m", "now()", "30s")).expect("valid");
        assert_eq!(
            spec,
            RangeSpec {
                start_ago: secs(300),
                end_ago: secs(0),
                step: secs(30)
            }
        );
        let now: Timestamp = "2026-11-23T10:00:00Z".parse().expect("time");
        let r = spec.at(now).expect("bounds");
        assert_eq!(r.start.to_string(), "2026-11-23T09:55:00Z");
        assert_eq!(r.end, now);
        assert_eq!(r.step, secs(30));
        let spec = range_spec("rangeQuery", &rq("1h", "", "1m")).expect("valid");
        assert_eq!((spec.start_ago, spec.end_ago), (secs(3600), secs(0)));
        let spec = range_spec("rangeQuery", &rq("now()-10m", "now() - 5m", "60")).expect("valid");
        assert_eq!((spec.start_ago, spec.end_ago), (secs(600), secs(300)));
    }

    #[test]
    fn bad_range_queries_name_the_field() {
        let problems = |start, end, step| {
            range_spec("m.rangeQuery", &rq(start, end, step))
                .err()
                .unwrap_or_default()
        };
        assert_eq!(
            problems("yesterday", "now()", "30s"),
            [
                "m.rangeQuery.start: expected now(), now() - DURATION or a DURATION ago such as \
              5m, got \"yesterday\""
            ]
        );
        assert_eq!(problems("now() + 5m", "", "30s").len(), 1);
        assert_eq!(
            problems("now() - 5m", "now() - 10m", "30s"),
            [
                "m.rangeQuery.start: must not be after end, got start \"now() - 5m\" and end \
              \"now() - 10m\""
            ]
        );
        assert_eq!(
            problems("now() - 5m", "now()", "0s"),
            ["m.rangeQuery.step: must be more than 0, got \"0s\""]
        );
        assert_eq!(
            problems("", "soon", ""),
            [
                "m.rangeQuery.start: required, e.g. now() - 10m",
                "m.rangeQuery.end: expected now(), now() - DURATION or a DURATION ago such as \
                 5m, got \"soon\"",
                "m.rangeQuery.step: expected seconds or a duration such as 30s, 5m or 1h30m, \
                 got \"\""
            ]
        );
    }

    #[test]
    fn credentials_come_from_token_or_username_and_password() {
        let data = |pairs: &[(&str, &str)]| -> BTreeMap<String, Vec<u8>> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
                .collect()
        };
        assert_eq!(
            secret_auth("ns/s", &data(&[("token", " t0k \n")])),
            Ok(SecretAuth {
                credentials: Credentials::Bearer("t0k".into()),
                ca_pem: None
            })
        );
        assert_eq!(
            secret_auth(
                "ns/s",
                &data(&[("username", "u"), ("password", "p"), ("ca.crt", "PEM")])
            ),
            Ok(SecretAuth {
                credentials: Credentials::Basic {
                    user: "u".into(),
                    password: "p".into()
                },
                ca_pem: Some(b"PEM".to_vec())
            })
        );
        assert_eq!(
            secret_auth("ns/s", &data(&[("username", "u")])),
            Err("Secret ns/s: username and password go together".into())
        );
        assert_eq!(
            secret_auth("ns/s", &data(&[])).map(|a| a.credentials),
            Ok(Credentials::None)
        );
    }

    #[test]
    fn providers_are_parsed_once_and_rendered_per_run() {
        let p: PrometheusMetric = serde_json::from_value(serde_json::json!({
            "address": "http://{{args.host}}:9090",
            "query": "rate(x{hash=\"{{args.hash}}\"}[5m]) > {{args.limit}}",
            "timeout": 5,
            "headers": [{"key": "X-Scope-OrgID", "value": "{{args.tenant}}"}],
            "authentication": {"secretName": "prom"},
            "rangeQuery": {"start": "now() - 10m", "step": "1m"}
        }))
        .expect("provider");
        let q = prometheus_query("p", &p).expect("valid");
        assert_eq!(q.timeout, Some(secs(5)));
        assert_eq!(q.secret.as_deref(), Some("prom"));
        assert_eq!(q.range.map(|r| r.start_ago), Some(secs(600)));
        let args: BTreeMap<String, String> = [
            ("host", "prom"),
            ("hash", "a\"b"),
            ("limit", "0.5"),
            ("tenant", "t1"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let r = q.render(&args).expect("rendered");
        assert_eq!(r.address, "http://prom:9090");
        assert_eq!(r.query, "rate(x{hash=\"a\\\"b\"}[5m]) > 0.5");
        assert_eq!(r.headers, [("X-Scope-OrgID".into(), "t1".into())]);
    }

    #[test]
    fn bad_providers_name_each_field() {
        let p: PrometheusMetric = serde_json::from_value(serde_json::json!({
            "address": "http://{{host}}",
            "query": "sum(rate(x[5m]) by (",
            "timeout": 0,
            "headers": [{"key": "Bad Header", "value": "v"}],
            "authentication": {"secretName": " "},
            "rangeQuery": {"start": "now() - 5m", "step": "-1m"}
        }))
        .expect("provider");
        let problems = prometheus_query("p", &p).err().unwrap_or_default();
        let fields: Vec<&str> = problems
            .iter()
            .map(|p| p.split(':').next().unwrap_or_default())
            .collect();
        assert_eq!(
            fields,
            [
                "p.address",
                "p.query",
                "p.timeout",
                "p.headers[0].key",
                "p.rangeQuery.step",
                "p.authentication.secretName"
            ],
            "{problems:?}"
        );
        assert!(
            problems[1].starts_with("p.query: invalid PromQL: "),
            "{problems:?}"
        );
    }
}
