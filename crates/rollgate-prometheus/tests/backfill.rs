//! Range and instant queries at explicit times over data backfilled with promtool.

use crate::common;

use std::time::Duration;

use rollgate_prometheus::{QueryResult, Range, Request, Timestamp, query};
use rollgate_promtest::ScrapeConfig;

use common::prometheus;

/// 2023-11-14T22:13:20Z.
const T0: i64 = 1_700_000_000;

/// Series `a` is 0, 1, 2, ... every 15 s for 2 minutes; `b` is NaN then +Inf.
fn openmetrics() -> String {
    let mut text = String::from("# TYPE backfill_value gauge\n");
    for i in 0..=8 {
        text.push_str(&format!(
            "backfill_value{{series=\"a\"}} {i} {}\n",
            T0 + 15 * i
        ));
    }
    text.push_str(&format!("backfill_value{{series=\"b\"}} NaN {T0}\n"));
    text.push_str(&format!(
        "backfill_value{{series=\"b\"}} +Inf {}\n",
        T0 + 60
    ));
    text.push_str("# EOF\n");
    text
}

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_second(seconds).expect("timestamp")
}

#[tokio::test]
async fn range_and_instant_queries_over_backfilled_data() {
    let prom = prometheus(ScrapeConfig::new().backfill(&openmetrics())).await;

    let mut range = Request::new(prom.address(), "backfill_value");
    range.range = Some(Range {
        start: at(T0),
        end: at(T0 + 120),
        step: Duration::from_secs(30),
    });
    let result = query(&range).await;
    let Ok(QueryResult::Matrix(mut series)) = result else {
        panic!("expected a matrix, got {result:?}")
    };
    series.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(series.len(), 2, "{series:?}");

    let (labels, points) = &series[0];
    assert_eq!(labels.get("series").map(String::as_str), Some("a"));
    assert_eq!(
        labels.get("__name__").map(String::as_str),
        Some("backfill_value")
    );
    let t0 = T0 as f64;
    assert_eq!(
        points,
        &vec![
            (t0, 0.0),
            (t0 + 30.0, 2.0),
            (t0 + 60.0, 4.0),
            (t0 + 90.0, 6.0),
            (t0 + 120.0, 8.0)
        ]
    );

    let (labels, points) = &series[1];
    assert_eq!(labels.get("series").map(String::as_str), Some("b"));
    assert!(points[0].1.is_nan(), "{points:?}");
    assert_eq!(points[2], (t0 + 60.0, f64::INFINITY));

    // An instant query at an explicit time sees the latest sample at or before it.
    let mut instant = Request::new(prom.address(), "backfill_value{series=\"a\"}");
    instant.time = Some(at(T0 + 45) + Duration::from_millis(500));
    let result = query(&instant).await;
    let Ok(QueryResult::Vector(series)) = result else {
        panic!("expected a vector, got {result:?}")
    };
    assert_eq!(series.len(), 1);
    assert_eq!(series[0].1, 3.0);

    // Without an explicit time the data is far older than the 5-minute lookback: no data.
    let now = query(&Request::new(prom.address(), "backfill_value")).await;
    assert_eq!(now, Ok(QueryResult::Vector(vec![])));
}
