//! Where measurements come from: a Prometheus server (the real provider), or any other
//! [`MetricSource`] (the demo's simulated one), and how one measurement's request is built:
//! credentials and CA from a Secret, `rangeQuery` bounds, timeout.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::{Api, Client};
use rollgate_api::{AnalysisArg, PrometheusMetric, RangeQuery};
use rollgate_prometheus::{Auth, QueryResult, Range, Request, Tls};

/// A boxed future, as [`MetricSource`] returns.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What one query measures: the AnalysisRun and the metric it belongs to.
#[derive(Debug, Clone, Copy)]
pub struct QueryFor<'a> {
    /// Namespace of the run.
    pub namespace: &'a str,
    /// Name of the run.
    pub run: &'a str,
    /// Labels of the run (the rollout, the pod-template hash it analyses, ...).
    pub labels: &'a BTreeMap<String, String>,
    /// Name of the metric in the run.
    pub metric: &'a str,
}

/// Answers measurement queries.
pub trait MetricSource: Send + Sync {
    /// Runs one query for `about`; the error is a one-line message for the measurement.
    fn query<'a>(
        &'a self,
        about: QueryFor<'a>,
        request: &'a Request,
    ) -> BoxFuture<'a, Result<QueryResult, String>>;
}

/// The real provider: asks the Prometheus server named by the request.
#[derive(Debug, Clone, Copy, Default)]
pub struct PrometheusSource;

impl MetricSource for PrometheusSource {
    fn query<'a>(
        &'a self,
        _about: QueryFor<'a>,
        request: &'a Request,
    ) -> BoxFuture<'a, Result<QueryResult, String>> {
        Box::pin(async move {
            rollgate_prometheus::query(request)
                .await
                .map_err(|e| e.to_string())
        })
    }
}

/// Reads the data of a Secret, as strings.
async fn secret_data(
    client: &Client,
    ns: &str,
    name: &str,
) -> Result<BTreeMap<String, Vec<u8>>, String> {
    let secret = Api::<Secret>::namespaced(client.clone(), ns)
        .get_opt(name)
        .await
        .map_err(|e| format!("reading Secret {ns}/{name}: {e}"))?
        .ok_or_else(|| format!("Secret {ns}/{name} not found"))?;
    let mut data: BTreeMap<String, Vec<u8>> = secret
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect();
    for (k, v) in secret.string_data.unwrap_or_default() {
        data.insert(k, v.into_bytes());
    }
    Ok(data)
}

/// Resolves `valueFrom.secretKeyRef` arguments by reading their Secrets (never stored in the
/// run's spec). Other arguments are returned as they are.
pub async fn resolve_secret_args(
    client: &Client,
    ns: &str,
    args: &[AnalysisArg],
) -> Result<Vec<AnalysisArg>, String> {
    let mut out = Vec::with_capacity(args.len());
    for a in args {
        let mut a = a.clone();
        if a.value.is_none()
            && let Some(r) = a.value_from.as_ref().and_then(|v| v.secret_key_ref.clone())
        {
            let data = secret_data(client, ns, &r.name).await?;
            let value = data.get(&r.key).ok_or_else(|| {
                format!(
                    "argument {}: Secret {ns}/{} has no key {}",
                    a.name, r.name, r.key
                )
            })?;
            a.value = Some(String::from_utf8_lossy(value).into_owned());
            a.value_from = None;
        }
        out.push(a);
    }
    Ok(out)
}

/// Builds the request of one measurement of `metric` (its query and address already
/// rendered), reading credentials and a CA bundle from `authentication.secretName`.
pub async fn build_request(
    client: &Client,
    ns: &str,
    metric: &PrometheusMetric,
    now: Timestamp,
) -> Result<Request, String> {
    let mut req = Request::new(metric.address.clone(), metric.query.clone());
    req.timeout = metric
        .timeout
        .filter(|t| *t > 0)
        .and_then(|t| u64::try_from(t).ok())
        .map(Duration::from_secs);
    req.headers = metric
        .headers
        .iter()
        .map(|h| (h.key.clone(), h.value.clone()))
        .collect();
    req.tls = Tls {
        insecure: metric.insecure.unwrap_or(false),
        ca_pem: None,
    };
    if let Some(auth) = &metric.authentication {
        let data = secret_data(client, ns, &auth.secret_name).await?;
        let text = |k: &str| {
            data.get(k)
                .map(|v| String::from_utf8_lossy(v).trim().to_string())
        };
        req.auth = match (text("token"), text("username"), text("password")) {
            (Some(token), _, _) => Auth::Bearer(token),
            (None, Some(user), Some(password)) => Auth::Basic { user, password },
            (None, Some(_), None) | (None, None, Some(_)) => {
                return Err(format!(
                    "Secret {ns}/{}: username and password go together",
                    auth.secret_name
                ));
            }
            (None, None, None) => Auth::None,
        };
        req.tls.ca_pem = data.get("ca.crt").cloned();
    }
    match &metric.range_query {
        Some(rq) => req.range = Some(range(rq, now)?),
        None => req.time = Some(now),
    }
    Ok(req)
}

/// Evaluates `rangeQuery` bounds: `now()`, `now() - 5m`, or a duration meaning "that long
/// ago" (`5m`); the step is a duration (`30s`).
pub fn range(rq: &RangeQuery, now: Timestamp) -> Result<Range, String> {
    let point = |what: &str, text: &str| -> Result<Timestamp, String> {
        let t = text.trim();
        let ago = if let Some(rest) = t.strip_prefix("now()") {
            let rest = rest.trim();
            if rest.is_empty() {
                return Ok(now);
            }
            rest.strip_prefix('-')
                .ok_or_else(|| {
                    format!("rangeQuery.{what}: expected now() - DURATION, got \"{text}\"")
                })?
                .trim()
        } else {
            t
        };
        let d =
            parse_duration(ago).map_err(|e| format!("rangeQuery.{what}: {e}, got \"{text}\""))?;
        now.checked_sub(d)
            .map_err(|_| format!("rangeQuery.{what}: out of range, got \"{text}\""))
    };
    let start = point("start", &rq.start)?;
    let end = if rq.end.trim().is_empty() {
        now
    } else {
        point("end", &rq.end)?
    };
    if start > end {
        return Err(format!(
            "rangeQuery: start ({}) is after end ({})",
            rq.start, rq.end
        ));
    }
    let step = parse_duration(&rq.step)
        .map_err(|e| format!("rangeQuery.step: {e}, got \"{}\"", rq.step))?;
    let step = Duration::try_from(step).map_err(|_| "rangeQuery.step: negative".to_string())?;
    if step.is_zero() {
        return Err("rangeQuery.step: must be more than 0".into());
    }
    Ok(Range { start, end, step })
}

fn parse_duration(text: &str) -> Result<SignedDuration, String> {
    let t = text.trim();
    if let Ok(secs) = t.parse::<i64>() {
        return Ok(SignedDuration::from_secs(secs));
    }
    t.parse::<SignedDuration>()
        .map_err(|_| "expected a duration such as 30s, 5m or 1h".to_string())
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

    #[test]
    fn range_bounds_are_relative_to_now() {
        let now: Timestamp = "2026-11-23T10:00:00Z".parse().expect("time");
        let r = range(&rq("now() - 5m", "now()", "30s"), now).expect("range");
        assert_eq!(r.start.to_string(), "2026-11-23T09:55:00Z");
        assert_eq!(r.end, now);
        assert_eq!(r.step, Duration::from_secs(30));
        let r = range(&rq("1h", "", "1m"), now).expect("range");
        assert_eq!(r.start.to_string(), "2026-11-23T09:00:00Z");
        assert!(range(&rq("now() + 5m", "now()", "30s"), now).is_err());
        assert!(range(&rq("now() - 5m", "now() - 10m", "30s"), now).is_err());
        assert!(range(&rq("now() - 5m", "now()", "0s"), now).is_err());
        assert_eq!(
            range(&rq("yesterday", "now()", "30s"), now)
                .err()
                .as_deref(),
            Some("rangeQuery.start: expected a duration such as 30s, 5m or 1h, got \"yesterday\"")
        );
    }
}
