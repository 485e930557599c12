//! Firing alerts from Alertmanager's API v2.

use std::collections::BTreeMap;

use jiff::Timestamp;
use reqwest::Url;
use serde::Deserialize;

use crate::error::{AlertsError, one_line};
use crate::http::{self, base_address, display_address};
use crate::{AlertQuery, FiringAlert, SourceKind};

/// The state Alertmanager gives an alert that is neither silenced nor inhibited.
const ACTIVE: &str = "active";

/// One alert of `GET /api/v2/alerts` (`gettableAlert`), the fields rollgate reads.
#[derive(Deserialize)]
struct GettableAlert {
    labels: BTreeMap<String, String>,
    #[serde(rename = "startsAt")]
    starts_at: String,
    fingerprint: String,
    status: AlertStatus,
}

/// `alertStatus`.
#[derive(Deserialize)]
struct AlertStatus {
    state: String,
}

/// The active alerts matching the query's matchers.
pub(crate) async fn firing(query: &AlertQuery) -> Result<Vec<FiringAlert>, AlertsError> {
    let address = display_address(&query.address);
    let url = alerts_url(query).map_err(|reason| AlertsError::InvalidQuery {
        server: SourceKind::Alertmanager,
        address: address.clone(),
        reason,
    })?;
    let answer = http::get(query, url).await?;
    if !answer.success {
        return Err(AlertsError::Http {
            server: SourceKind::Alertmanager,
            address,
            status: answer.status,
            body: one_line(&String::from_utf8_lossy(&answer.body)),
        });
    }
    decode(&answer.body).map_err(|message| AlertsError::Decode {
        server: SourceKind::Alertmanager,
        address,
        message,
    })
}

/// `{address}/api/v2/alerts?active=true&silenced=false&inhibited=false&unprocessed=false`
/// and one `filter` per matcher.
fn alerts_url(query: &AlertQuery) -> Result<Url, String> {
    let mut url = base_address(&query.address)?;
    let path = format!("{}/api/v2/alerts", url.path().trim_end_matches('/'));
    url.set_path(&path);
    {
        let mut pairs = url.query_pairs_mut();
        pairs
            .append_pair("active", "true")
            .append_pair("silenced", "false")
            .append_pair("inhibited", "false")
            .append_pair("unprocessed", "false");
        for matcher in &query.matchers {
            pairs.append_pair("filter", &matcher.to_alertmanager_filter());
        }
    }
    Ok(url)
}

/// The active alerts of an answer, or what is wrong with it.
fn decode(body: &[u8]) -> Result<Vec<FiringAlert>, String> {
    let alerts: Vec<GettableAlert> = serde_json::from_slice(body).map_err(|e| {
        format!(
            "expected a JSON array of alerts with labels, startsAt, fingerprint and \
             status.state: {} (answer: {})",
            one_line(&e.to_string()),
            one_line(&String::from_utf8_lossy(body))
        )
    })?;
    let mut firing = Vec::new();
    for (index, alert) in alerts.into_iter().enumerate() {
        if alert.status.state != ACTIVE {
            continue;
        }
        let name = alert.labels.get("alertname").cloned().ok_or_else(|| {
            format!(
                "alert {index} ({}) has no alertname label",
                alert.fingerprint
            )
        })?;
        let starts_at: Timestamp = alert.starts_at.parse().map_err(|_| {
            format!(
                "alert {index} ({}): startsAt {:?} is not an RFC 3339 time",
                alert.fingerprint,
                one_line(&alert.starts_at)
            )
        })?;
        if alert.fingerprint.trim().is_empty() {
            return Err(format!("alert {index} ({name}) has an empty fingerprint"));
        }
        firing.push(FiringAlert {
            name,
            labels: alert.labels,
            starts_at,
            fingerprint: alert.fingerprint,
        });
    }
    Ok(firing)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Matcher;

    fn matcher(text: &str) -> Matcher {
        text.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn url_has_the_state_flags_and_one_filter_per_matcher() -> Result<(), String> {
        let query = AlertQuery::new(SourceKind::Alertmanager, "https://proxy/am/")
            .matcher(matcher(r#"severity=~"page|critical""#))
            .matcher(matcher(r#"revision="a\"b""#));
        let url = alerts_url(&query)?;
        assert_eq!(url.path(), "/am/api/v2/alerts");
        let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        let expected: Vec<(String, String)> = [
            ("active", "true"),
            ("silenced", "false"),
            ("inhibited", "false"),
            ("unprocessed", "false"),
            ("filter", r#"severity=~"page|critical""#),
            ("filter", r#"revision="a\"b""#),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(pairs, expected);
        let root = alerts_url(&AlertQuery::new(
            SourceKind::Alertmanager,
            "http://127.0.0.1:9093",
        ))?;
        assert_eq!(root.path(), "/api/v2/alerts");
        Ok(())
    }

    #[test]
    fn decodes_active_alerts_only() -> Result<(), String> {
        let body = br#"[
          {"annotations":{},"endsAt":"2026-12-05T11:50:28.376Z","fingerprint":"a95a76968dc9254d",
           "receivers":[{"name":"hook"}],"startsAt":"2024-01-01T00:00:00.000Z",
           "status":{"inhibitedBy":[],"silencedBy":[],"state":"active"},
           "updatedAt":"2026-12-05T11:45:28.376Z","labels":{"alertname":"A","sev":"x"}},
          {"fingerprint":"1","startsAt":"2024-01-01T00:00:00Z",
           "status":{"state":"suppressed"},"labels":{"alertname":"B"}},
          {"fingerprint":"2","startsAt":"2024-01-01T00:00:00Z",
           "status":{"state":"unprocessed"},"labels":{"alertname":"C"}}
        ]"#;
        let alerts = decode(body)?;
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].name, "A");
        assert_eq!(alerts[0].fingerprint, "a95a76968dc9254d");
        assert_eq!(alerts[0].labels.get("sev").map(String::as_str), Some("x"));
        assert_eq!(alerts[0].starts_at.as_second(), 1_704_067_200);
        assert_eq!(decode(b"[]")?, vec![]);
        Ok(())
    }

    #[test]
    fn refuses_what_the_api_does_not_return() {
        let cases: [(&[u8], &str); 7] = [
            (b"<html>ok</html>", "expected a JSON array"),
            (b"null", "expected a JSON array"),
            (b"{}", "expected a JSON array"),
            (
                br#"[{"labels":{"alertname":"A"},"startsAt":"2024-01-01T00:00:00Z","status":{"state":"active"}}]"#,
                "missing field `fingerprint`",
            ),
            (
                br#"[{"labels":{"x":"y"},"startsAt":"2024-01-01T00:00:00Z","fingerprint":"f","status":{"state":"active"}}]"#,
                "has no alertname label",
            ),
            (
                br#"[{"labels":{"alertname":"A"},"startsAt":"yesterday","fingerprint":"f","status":{"state":"active"}}]"#,
                "startsAt \"yesterday\" is not an RFC 3339 time",
            ),
            (
                br#"[{"labels":{"alertname":"A"},"startsAt":"2024-01-01T00:00:00Z","fingerprint":" ","status":{"state":"active"}}]"#,
                "empty fingerprint",
            ),
        ];
        for (body, expected) in cases {
            let result = decode(body);
            assert!(
                result.as_ref().is_err_and(|e| e.contains(expected)),
                "{}: {result:?}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
