//! Queries against a real Prometheus: scalars and special values, empty results, PromQL
//! errors, vectors scraped from the metrics server, and an outage.

use crate::common;

use std::time::Duration;

use rollgate_prometheus::{ProviderError, QueryResult, Request, Timestamp, query};
use rollgate_promtest::{MetricsServer, ScrapeConfig, wait_for_data};

use common::prometheus;

fn scalar(result: &Result<QueryResult, ProviderError>) -> f64 {
    match result {
        Ok(QueryResult::Scalar(v)) => *v,
        other => panic!("expected a scalar, got {other:?}"),
    }
}

#[tokio::test]
async fn scalars_and_special_values() {
    let prom = prometheus(ScrapeConfig::new()).await;
    let address = prom.address();
    assert_eq!(scalar(&query_at(&address, "1+1").await), 2.0);
    assert_eq!(
        scalar(&query_at(&address, "scalar(vector(0.5))").await),
        0.5
    );
    assert!(scalar(&query_at(&address, "NaN").await).is_nan());
    assert_eq!(scalar(&query_at(&address, "+Inf").await), f64::INFINITY);
    assert_eq!(scalar(&query_at(&address, "-Inf").await), f64::NEG_INFINITY);

    let vector = query_at(&address, "vector(0.25)").await;
    match &vector {
        Ok(QueryResult::Vector(series)) => {
            assert_eq!(series.len(), 1);
            assert!(series[0].0.is_empty(), "{series:?}");
            assert_eq!(series[0].1, 0.25);
        }
        other => panic!("expected a vector, got {other:?}"),
    }

    // The evaluation time is sent with its fraction of a second.
    let time: Timestamp = "2024-01-01T00:00:00.5Z".parse().expect("timestamp");
    let mut at = Request::new(&address, "time()");
    at.time = Some(time);
    assert_eq!(scalar(&query(&at).await), 1_704_067_200.5);
}

async fn query_at(address: &str, q: &str) -> Result<QueryResult, ProviderError> {
    query(&Request::new(address, q)).await
}

#[tokio::test]
async fn unknown_metric_is_empty_not_an_error() {
    let prom = prometheus(ScrapeConfig::new()).await;
    let result = query(&Request::new(prom.address(), "no_such_metric_total")).await;
    assert_eq!(result, Ok(QueryResult::Vector(vec![])));
    assert!(result.is_ok_and(|r| r.is_empty()));

    let mut range = Request::new(prom.address(), "rate(no_such_metric_total[1m])");
    let now = Timestamp::now();
    range.range = Some(rollgate_prometheus::Range {
        start: now - Duration::from_secs(300),
        end: now,
        step: Duration::from_secs(30),
    });
    assert_eq!(query(&range).await, Ok(QueryResult::Matrix(vec![])));
}

#[tokio::test]
async fn promql_syntax_error_is_a_query_error() {
    let prom = prometheus(ScrapeConfig::new()).await;
    let result = query(&Request::new(prom.address(), "sum(rate(x[5m])")).await;
    let Err(error) = result else {
        panic!("expected an error, got {result:?}")
    };
    match &error {
        ProviderError::Query {
            error_type,
            message,
            ..
        } => {
            assert_eq!(error_type, "bad_data");
            assert!(message.contains("parse error"), "{message}");
        }
        other => panic!("expected a query error, got {other:?}"),
    }
    let text = error.to_string();
    assert!(text.contains(&prom.address()), "{text}");
    assert!(text.contains("bad_data"), "{text}");
    assert!(!text.contains('\n'), "{text}");
}

#[tokio::test]
async fn vectors_and_error_ratio_from_scraped_counters() {
    let metrics = MetricsServer::start().await.expect("metrics server");
    let traffic = metrics.handle();
    traffic.set_traffic("v1", "stable", 50.0, 0.0);
    traffic.set_traffic("v2", "canary", 50.0, 0.2);
    let prom = prometheus(ScrapeConfig::new().target(metrics.target())).await;

    let ratio = "sum(rate(http_request_errors_total{pod_template_hash=\"canary\"}[5s])) \
                 / sum(rate(http_requests_total{pod_template_hash=\"canary\"}[5s]))";
    // rate() needs two samples in the window: this is the slow part (~7 s).
    wait_for_data(&prom, ratio).await.expect("scraped data");

    let by_version = query(&Request::new(
        prom.address(),
        "sum by (version, pod_template_hash) (http_requests_total)",
    ))
    .await;
    match &by_version {
        Ok(QueryResult::Vector(series)) => {
            assert_eq!(series.len(), 2, "{series:?}");
            let versions: Vec<(&str, &str)> = series
                .iter()
                .map(|(labels, _)| {
                    (
                        labels.get("version").map_or("", String::as_str),
                        labels.get("pod_template_hash").map_or("", String::as_str),
                    )
                })
                .collect();
            assert!(versions.contains(&("v1", "stable")), "{versions:?}");
            assert!(versions.contains(&("v2", "canary")), "{versions:?}");
            assert!(series.iter().all(|(_, v)| *v > 0.0), "{series:?}");
        }
        other => panic!("expected a vector, got {other:?}"),
    }

    let canary = query(&Request::new(prom.address(), ratio)).await;
    match &canary {
        Ok(QueryResult::Vector(series)) => {
            assert_eq!(series.len(), 1, "{series:?}");
            assert!((series[0].1 - 0.2).abs() < 0.01, "{series:?}");
        }
        other => panic!("expected a vector, got {other:?}"),
    }
}

#[tokio::test]
async fn outage_is_unreachable_then_recovers() {
    let mut prom = prometheus(ScrapeConfig::new()).await;
    let request = Request::new(prom.address(), "1+1");
    assert_eq!(query(&request).await, Ok(QueryResult::Scalar(2.0)));

    prom.stop();
    assert!(!prom.is_running());
    let down = query(&request).await;
    assert!(
        matches!(&down, Err(ProviderError::Unreachable { address, .. }) if *address == prom.address()),
        "{down:?}"
    );

    prom.restart().await.expect("restart");
    assert_eq!(query(&request).await, Ok(QueryResult::Scalar(2.0)));
}
