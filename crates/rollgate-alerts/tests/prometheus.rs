//! `firing` against a real Prometheus evaluating alerting rules (`for: 0s`, every second) over
//! gauges served by rollgate-promtest's metrics server, and sending its alerts to a real
//! Alertmanager (to check that both sources agree on an alert's identity).

use crate::common;

use common::{firing_until, names};
use jiff::{SignedDuration, Timestamp};
use rollgate_alerts::{AlertQuery, FiringAlert, Matcher, SourceKind, firing};
use rollgate_api::matcher::fingerprint;
use rollgate_promtest::{
    AlertmanagerConfig, MetricsServer, ScrapeConfig, TestAlertmanager, TestPrometheus,
};

const RULES: &str = r#"
groups:
  - name: rollgate-alerts-test
    rules:
      - alert: HighErrorRate
        expr: rollgate_test_errors > 0
        for: 0s
        labels:
          severity: page
      - alert: SlowBurn
        expr: rollgate_test_errors > 0
        for: 1h
        labels:
          severity: ticket
      - alert: LowDisk
        expr: rollgate_test_disk > 0
        for: 0s
        labels:
          severity: warning
"#;

/// A label value that needs escaping in PromQL and in the exposition format.
const ODD: &str = "a\"b\\c";

fn query(address: &str, kind: SourceKind, matchers: &[&str]) -> AlertQuery {
    let mut query = AlertQuery::new(kind, address);
    for text in matchers {
        let matcher: Matcher = text.parse().unwrap_or_else(|e| panic!("{e}"));
        query = query.matcher(matcher);
    }
    query
}

async fn names_for(prometheus: &TestPrometheus, matchers: &[&str]) -> Vec<String> {
    let alerts = firing(&query(
        &prometheus.address(),
        SourceKind::Prometheus,
        matchers,
    ))
    .await
    .unwrap_or_else(|e| panic!("{matchers:?}: {e}"));
    alerts.into_iter().map(|a| a.name).collect()
}

#[tokio::test]
async fn prometheus_reports_firing_alerts() {
    let metrics = MetricsServer::start()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let gauges = metrics.handle();
    let series = [("revision", "abc123"), ("odd", ODD)];
    gauges.set_gauge("rollgate_test_disk", &[], 0.0);
    let before = Timestamp::now();
    gauges.set_gauge("rollgate_test_errors", &series, 1.0);

    let alertmanager = TestAlertmanager::start(AlertmanagerConfig::new())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let prometheus = TestPrometheus::start(
        ScrapeConfig::new()
            .target(metrics.target())
            .rule_file(RULES)
            .alertmanager(alertmanager.target())
            .arg("--rules.alert.resend-delay=1s"),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let address = prometheus.address();
    let all = query(&address, SourceKind::Prometheus, &[]);

    // Fires with the rule's and the series' labels; the pending SlowBurn is left out.
    let alerts = firing_until(&all, "HighErrorRate fires", |a| !a.is_empty()).await;
    assert_eq!(names(&alerts), ["HighErrorRate"]);
    prometheus
        .wait_for_data(
            r#"ALERTS{alertname="SlowBurn", alertstate="pending"}"#,
            common::PATIENCE,
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        names(&firing(&all).await.unwrap_or_else(|e| panic!("{e}"))),
        ["HighErrorRate"]
    );
    let high = &alerts[0];
    let expected_labels: Vec<(&str, String)> = vec![
        ("alertname", "HighErrorRate".into()),
        ("instance", metrics.target()),
        ("job", "promtest".into()),
        ("odd", ODD.into()),
        ("revision", "abc123".into()),
        ("severity", "page".into()),
    ];
    let actual: Vec<(&str, String)> = high
        .labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.clone()))
        .collect();
    assert_eq!(actual, expected_labels);
    assert_eq!(high.fingerprint, fingerprint(&high.labels));

    // startsAt is ALERTS_FOR_STATE's value: when the alert became active, in whole seconds.
    let for_state = prometheus
        .query_json(r#"ALERTS_FOR_STATE{alertname="HighErrorRate"}"#, None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let value = for_state["result"][0]["value"][1]
        .as_str()
        .and_then(|v| v.parse::<i64>().ok());
    assert_eq!(value, Some(high.starts_at.as_second()), "{for_state}");
    let floor = before
        .checked_sub(SignedDuration::from_secs(1))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        floor <= high.starts_at && high.starts_at <= Timestamp::now(),
        "started {} outside [{floor}, now]",
        high.starts_at
    );

    // Alertmanager, fed by this Prometheus, shows the same alert with the same fingerprint.
    let in_alertmanager = firing_until(
        &query(
            &alertmanager.address(),
            SourceKind::Alertmanager,
            &[r#"alertname="HighErrorRate""#],
        ),
        "Alertmanager receives HighErrorRate from Prometheus",
        |a| a.len() == 1,
    )
    .await;
    let relayed: &FiringAlert = &in_alertmanager[0];
    assert_eq!(relayed.labels, high.labels);
    assert_eq!(relayed.fingerprint, high.fingerprint);
    assert_eq!(relayed.starts_at.as_second(), high.starts_at.as_second());

    // Matchers go into the PromQL selectors, escaping included.
    assert_eq!(
        names_for(&prometheus, &[r#"odd="a\"b\\c""#]).await,
        ["HighErrorRate"]
    );
    assert_eq!(
        names_for(&prometheus, &[r#"severity=~"pa.*""#]).await,
        ["HighErrorRate"]
    );
    assert_eq!(
        names_for(&prometheus, &[r#"severity=~"pa""#]).await,
        Vec::<String>::new()
    );
    assert_eq!(
        names_for(&prometheus, &[r#"severity="warning""#]).await,
        Vec::<String>::new()
    );

    // A second alert; matchers tell them apart.
    gauges.set_gauge("rollgate_test_disk", &[], 1.0);
    firing_until(&all, "LowDisk fires too", |a| a.len() == 2).await;
    assert_eq!(
        names_for(&prometheus, &[r#"severity!="page""#]).await,
        ["LowDisk"]
    );
    assert_eq!(
        names_for(&prometheus, &[r#"alertname=~"High.*|Low.*""#]).await,
        ["HighErrorRate", "LowDisk"]
    );
    assert_eq!(
        names_for(&prometheus, &[r#"alertname!~"High.*""#]).await,
        ["LowDisk"]
    );
    assert_eq!(
        names_for(&prometheus, &[r#"revision="""#]).await,
        ["LowDisk"]
    );

    // Resolved: the series disappears, and so does the alert.
    gauges.set_gauge("rollgate_test_errors", &series, 0.0);
    let left = firing_until(&all, "HighErrorRate resolves", |a| a.len() == 1).await;
    assert_eq!(names(&left), ["LowDisk"]);
}

#[tokio::test]
async fn a_stopped_prometheus_is_an_error_not_an_empty_list() {
    let mut prometheus = TestPrometheus::start(ScrapeConfig::new().rule_file(RULES))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let all = query(&prometheus.address(), SourceKind::Prometheus, &[]);
    assert_eq!(firing(&all).await, Ok(vec![]));
    prometheus.stop();
    let down = firing(&all).await;
    assert!(
        matches!(&down, Err(e) if e.kind() == "unreachable" && e.server() == SourceKind::Prometheus),
        "{down:?}"
    );
}
