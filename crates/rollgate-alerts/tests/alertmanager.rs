//! `firing` against a real Alertmanager (Debian's prometheus-alertmanager 0.25), started by
//! rollgate-promtest on loopback with its own config and storage.

use crate::common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{firing_until, names};
use jiff::Timestamp;
use rollgate_alerts::{AlertQuery, Matcher, SourceKind, firing};
use rollgate_api::matcher::fingerprint;
use rollgate_promtest::{
    AlertmanagerConfig, PromTestError, TestAlertmanager, is_alertmanager_installed,
};

async fn start() -> TestAlertmanager {
    match TestAlertmanager::start(AlertmanagerConfig::new()).await {
        Ok(alertmanager) => alertmanager,
        Err(e) => panic!("cannot start the test Alertmanager: {e}"),
    }
}

fn query(alertmanager: &TestAlertmanager, matchers: &[&str]) -> AlertQuery {
    let mut query = AlertQuery::new(SourceKind::Alertmanager, alertmanager.address());
    for text in matchers {
        let matcher: Matcher = text.parse().unwrap_or_else(|e| panic!("{e}"));
        query = query.matcher(matcher);
    }
    query
}

fn at(second: i64) -> Timestamp {
    Timestamp::from_second(second).unwrap_or_else(|e| panic!("{e}"))
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

async fn post(alertmanager: &TestAlertmanager, pairs: &[(&str, &str)], starts_at: Timestamp) {
    if let Err(e) = alertmanager.post_alert(pairs, starts_at, None).await {
        panic!("posting {pairs:?}: {e}");
    }
}

#[test]
fn alertmanager_is_installed() {
    assert!(
        is_alertmanager_installed(),
        "{}",
        PromTestError::AlertmanagerNotInstalled
    );
}

#[tokio::test]
async fn returns_firing_alerts_with_name_labels_start_and_fingerprint() {
    let alertmanager = start().await;
    let high = [
        ("alertname", "HighErrorRate"),
        ("severity", "page"),
        ("revision", "abc123"),
    ];
    let disk = [("alertname", "LowDisk"), ("severity", "warning")];
    post(&alertmanager, &high, at(1_700_000_000)).await;
    post(&alertmanager, &disk, at(1_700_000_100)).await;

    let all = query(&alertmanager, &[]);
    let alerts = firing_until(&all, "both alerts fire", |a| a.len() == 2).await;
    assert_eq!(names(&alerts), ["HighErrorRate", "LowDisk"]);
    assert_eq!(alerts[0].labels, labels(&high));
    assert_eq!(alerts[0].starts_at, at(1_700_000_000));
    assert_eq!(alerts[1].labels, labels(&disk));
    assert_eq!(alerts[1].starts_at, at(1_700_000_100));

    // The fingerprints are Alertmanager's, and the same as rollgate computes from the labels
    // (so an alert pulled from Prometheus gets the same identity).
    let raw = alertmanager
        .alerts()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    for alert in &alerts {
        let shown = raw
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| a["labels"]["alertname"] == alert.name.as_str())
            .and_then(|a| a["fingerprint"].as_str());
        assert_eq!(shown, Some(alert.fingerprint.as_str()), "{raw}");
        assert_eq!(alert.fingerprint, fingerprint(&alert.labels));
    }
}

#[tokio::test]
async fn matchers_filter_on_the_server() {
    let alertmanager = start().await;
    post(
        &alertmanager,
        &[
            ("alertname", "HighErrorRate"),
            ("severity", "page"),
            ("revision", "a\"b\\c"),
        ],
        at(1_700_000_000),
    )
    .await;
    post(
        &alertmanager,
        &[("alertname", "HighLatency"), ("severity", "critical")],
        at(1_700_000_000),
    )
    .await;
    post(
        &alertmanager,
        &[("alertname", "LowDisk"), ("severity", "warning")],
        at(1_700_000_000),
    )
    .await;
    firing_until(&query(&alertmanager, &[]), "three alerts fire", |a| {
        a.len() == 3
    })
    .await;

    let cases: [(&[&str], &[&str]); 8] = [
        (&[r#"severity="page""#], &["HighErrorRate"]),
        (&[r#"severity!="page""#], &["HighLatency", "LowDisk"]),
        (
            &[r#"severity=~"page|critical""#],
            &["HighErrorRate", "HighLatency"],
        ),
        // Anchored: "crit" alone matches nothing.
        (&[r#"severity=~"crit""#], &[]),
        (&[r#"alertname!~"High.*""#], &["LowDisk"]),
        (
            &[r#"alertname=~"High.*""#, r#"severity!="page""#],
            &["HighLatency"],
        ),
        // Escaped quotes and backslashes reach Alertmanager intact.
        (&[r#"revision="a\"b\\c""#], &["HighErrorRate"]),
        // An absent label is the empty string.
        (&[r#"revision="""#], &["HighLatency", "LowDisk"]),
    ];
    for (matchers, expected) in cases {
        let alerts = firing(&query(&alertmanager, matchers))
            .await
            .unwrap_or_else(|e| panic!("{matchers:?}: {e}"));
        assert_eq!(names(&alerts), expected, "{matchers:?}");
    }
}

#[tokio::test]
async fn silenced_alerts_are_not_returned() {
    let alertmanager = start().await;
    post(
        &alertmanager,
        &[("alertname", "HighErrorRate"), ("revision", "abc")],
        at(1_700_000_000),
    )
    .await;
    post(
        &alertmanager,
        &[("alertname", "LowDisk")],
        at(1_700_000_000),
    )
    .await;
    let all = query(&alertmanager, &[]);
    firing_until(&all, "both alerts fire", |a| a.len() == 2).await;

    let silence = alertmanager
        .silence(&[("alertname", "HighErrorRate")], Duration::from_secs(3600))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let alerts = firing_until(&all, "the silenced alert is left out", |a| a.len() == 1).await;
    assert_eq!(names(&alerts), ["LowDisk"]);
    // Alertmanager still has it, silenced: only the query leaves it out.
    let raw = alertmanager
        .alerts()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        raw.as_array()
            .into_iter()
            .flatten()
            .any(|a| a["labels"]["alertname"] == "HighErrorRate"
                && a["status"]["state"] == "suppressed"),
        "{raw}"
    );

    alertmanager
        .expire_silence(&silence)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let back = firing_until(&all, "the alert is back once the silence expired", |a| {
        a.len() == 2
    })
    .await;
    assert_eq!(names(&back), ["HighErrorRate", "LowDisk"]);
}

#[tokio::test]
async fn a_resolved_alert_disappears() {
    let alertmanager = start().await;
    let pairs = [("alertname", "HighErrorRate"), ("revision", "abc")];
    post(&alertmanager, &pairs, at(1_700_000_000)).await;
    post(
        &alertmanager,
        &[("alertname", "LowDisk")],
        at(1_700_000_000),
    )
    .await;
    let all = query(&alertmanager, &[]);
    firing_until(&all, "both alerts fire", |a| a.len() == 2).await;

    let past = Timestamp::now()
        .checked_sub(jiff::SignedDuration::from_secs(1))
        .unwrap_or_else(|e| panic!("{e}"));
    alertmanager
        .post_alert(&pairs, at(1_700_000_000), Some(past))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let alerts = firing_until(&all, "the resolved alert disappears", |a| a.len() == 1).await;
    assert_eq!(names(&alerts), ["LowDisk"]);
}

#[tokio::test]
async fn a_stopped_alertmanager_is_an_error_not_an_empty_list() {
    let mut alertmanager = start().await;
    let all = query(&alertmanager, &[]);
    assert_eq!(firing(&all).await, Ok(vec![]));
    alertmanager.stop();
    let down = firing(&all).await;
    assert!(
        matches!(&down, Err(e) if e.kind() == "unreachable"
            && e.to_string().starts_with(&format!("Alertmanager at {} is unreachable", alertmanager.address()))),
        "{down:?}"
    );
}
