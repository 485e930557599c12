//! Firing alerts from Prometheus' `ALERTS` and `ALERTS_FOR_STATE` series.

use jiff::Timestamp;
use rollgate_api::matcher::fingerprint;
use rollgate_prometheus::{Labels, QueryResult, Request};

use crate::error::AlertsError;
use crate::http::display_address;
use crate::{AlertQuery, FiringAlert, Matcher, SourceKind};

/// Labels Prometheus sets on the alert series itself, not on the alert.
const SERIES_LABELS: [&str; 2] = ["__name__", "alertstate"];

/// The firing alerts matching the query's matchers.
pub(crate) async fn firing(query: &AlertQuery) -> Result<Vec<FiringAlert>, AlertsError> {
    let address = display_address(&query.address);
    let promql = promql(&query.matchers).map_err(|reason| AlertsError::InvalidQuery {
        server: SourceKind::Prometheus,
        address: address.clone(),
        reason,
    })?;
    if query.timeout.is_zero() {
        return Err(AlertsError::InvalidQuery {
            server: SourceKind::Prometheus,
            address,
            reason: "the timeout must be greater than zero".into(),
        });
    }
    let mut request = Request::new(query.address.clone(), promql);
    request.timeout = Some(query.timeout);
    request.auth = query.auth.clone();
    request.tls = query.tls.clone();
    request.max_answer_bytes = Some(query.effective_max_answer_bytes());
    let result = rollgate_prometheus::query(&request)
        .await
        .map_err(AlertsError::from_provider)?;
    decode(result).map_err(|message| AlertsError::Decode {
        server: SourceKind::Prometheus,
        address,
        message,
    })
}

/// `ALERTS_FOR_STATE{m} and ignoring(alertstate) ALERTS{alertstate="firing", m}`: the
/// active-since time of each firing alert. `and` compares label sets without `__name__`.
fn promql(matchers: &[Matcher]) -> Result<String, String> {
    if let Some(m) = matchers
        .iter()
        .find(|m| SERIES_LABELS.contains(&m.name.as_str()))
    {
        return Err(format!(
            "the matcher {m} names {}, a label of Prometheus' alert series and not of the \
             alerts: match on the alerts' own labels",
            m.name
        ));
    }
    let selectors: Vec<String> = matchers.iter().map(Matcher::to_promql).collect();
    let own = selectors.join(", ");
    let for_state = if own.is_empty() {
        "ALERTS_FOR_STATE".to_string()
    } else {
        format!("ALERTS_FOR_STATE{{{own}}}")
    };
    let alerts = if own.is_empty() {
        "ALERTS{alertstate=\"firing\"}".to_string()
    } else {
        format!("ALERTS{{alertstate=\"firing\", {own}}}")
    };
    Ok(format!("{for_state} and ignoring(alertstate) {alerts}"))
}

/// The alerts of the query's answer, or what is wrong with it.
fn decode(result: QueryResult) -> Result<Vec<FiringAlert>, String> {
    let QueryResult::Vector(series) = result else {
        return Err(format!("expected an instant vector, got {result:?}"));
    };
    series
        .into_iter()
        .map(|(labels, active_since)| alert(labels, active_since))
        .collect()
}

/// One `ALERTS_FOR_STATE` sample as an alert.
fn alert(mut labels: Labels, active_since: f64) -> Result<FiringAlert, String> {
    for name in SERIES_LABELS {
        labels.remove(name);
    }
    let name = labels
        .get("alertname")
        .cloned()
        .ok_or_else(|| format!("a series has no alertname label: {labels:?}"))?;
    let starts_at = if active_since.is_finite() {
        // Prometheus writes whole seconds; the cast saturates, `from_second` checks the range.
        Timestamp::from_second(active_since.trunc() as i64).ok()
    } else {
        None
    }
    .ok_or_else(|| {
        format!("alert {name}: ALERTS_FOR_STATE is {active_since}, not a Unix time in seconds")
    })?;
    Ok(FiringAlert {
        fingerprint: fingerprint(&labels),
        name,
        labels,
        starts_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matcher(text: &str) -> Matcher {
        text.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn joins_firing_alerts_with_their_active_since_time() -> Result<(), String> {
        assert_eq!(
            promql(&[])?,
            r#"ALERTS_FOR_STATE and ignoring(alertstate) ALERTS{alertstate="firing"}"#
        );
        assert_eq!(
            promql(&[
                matcher(r#"severity=~"page|critical""#),
                matcher(r#"rev!="a\"b""#)
            ])?,
            r#"ALERTS_FOR_STATE{severity=~"page|critical", rev!="a\"b"} and ignoring(alertstate) ALERTS{alertstate="firing", severity=~"page|critical", rev!="a\"b"}"#
        );
        for refused in [r#"alertstate="pending""#, r#"__name__="ALERTS""#] {
            assert!(
                promql(&[matcher(refused)]).is_err_and(|e| e.contains("alert series")),
                "{refused}"
            );
        }
        Ok(())
    }

    #[test]
    fn decodes_samples() -> Result<(), String> {
        let series = labels(&[
            ("__name__", "ALERTS_FOR_STATE"),
            ("alertname", "HighErrorRate"),
            ("severity", "page"),
        ]);
        let alerts = decode(QueryResult::Vector(vec![(series, 1_700_000_000.0)]))?;
        let expected_labels = labels(&[("alertname", "HighErrorRate"), ("severity", "page")]);
        assert_eq!(
            alerts,
            vec![FiringAlert {
                name: "HighErrorRate".into(),
                fingerprint: fingerprint(&expected_labels),
                labels: expected_labels,
                starts_at: Timestamp::from_second(1_700_000_000).map_err(|e| e.to_string())?,
            }]
        );
        assert_eq!(decode(QueryResult::Vector(vec![]))?, vec![]);
        Ok(())
    }

    #[test]
    fn refuses_unexpected_answers() {
        assert!(decode(QueryResult::Scalar(1.0)).is_err_and(|e| e.contains("instant vector")));
        let nameless = decode(QueryResult::Vector(vec![(labels(&[("a", "b")]), 1.0)]));
        assert!(nameless.is_err_and(|e| e.contains("no alertname")));
        for bad in [f64::NAN, f64::INFINITY, 1e300] {
            let result = decode(QueryResult::Vector(vec![(
                labels(&[("alertname", "A")]),
                bad,
            )]));
            assert!(
                result
                    .as_ref()
                    .is_err_and(|e| e.contains("not a Unix time")),
                "{bad}: {result:?}"
            );
        }
    }
}
