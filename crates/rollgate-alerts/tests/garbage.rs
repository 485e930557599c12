//! Answers that are not what the APIs return, unreachable and silent servers: every one is an
//! error (the alerts are unknown), never an empty list.

use crate::common;

use std::time::Duration;

use common::{FakeServer, closed_address};
use rollgate_alerts::{AlertQuery, AlertsError, Auth, Matcher, SourceKind, firing};

const BOTH: [SourceKind; 2] = [SourceKind::Alertmanager, SourceKind::Prometheus];

async fn ask(
    kind: SourceKind,
    address: &str,
) -> Result<Vec<rollgate_alerts::FiringAlert>, AlertsError> {
    firing(&AlertQuery::new(kind, address)).await
}

fn kind_of<T: std::fmt::Debug>(result: &Result<T, AlertsError>) -> &'static str {
    match result {
        Ok(value) => panic!("expected an error, got {value:?}"),
        Err(e) => e.kind(),
    }
}

#[tokio::test]
async fn html_is_an_unreadable_answer() {
    let server = FakeServer::answering("200 OK", "text/html", b"<html>all good</html>").await;
    for kind in BOTH {
        let result = ask(kind, &server.address).await;
        assert_eq!(kind_of(&result), "decode", "{kind}: {result:?}");
        assert!(
            result.is_err_and(|e| e.to_string().starts_with(&format!(
                "unreadable answer from {kind} at {}",
                server.address
            ))),
            "{kind}"
        );
    }
}

#[tokio::test]
async fn json_of_the_wrong_shape_is_an_unreadable_answer() {
    let cases: [(SourceKind, &[u8]); 5] = [
        (SourceKind::Alertmanager, b"null"),
        (SourceKind::Alertmanager, br#"{"data":[]}"#),
        (
            SourceKind::Alertmanager,
            br#"[{"labels":{"alertname":"A"},"status":{"state":"active"}}]"#,
        ),
        (
            SourceKind::Prometheus,
            br#"{"status":"success","data":{"resultType":"scalar","result":[1,"1"]}}"#,
        ),
        (
            SourceKind::Prometheus,
            br#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"alertname":"A"},"value":[1,"NaN"]}]}}"#,
        ),
    ];
    for (kind, body) in cases {
        let server = FakeServer::answering("200 OK", "application/json", body).await;
        let result = ask(kind, &server.address).await;
        assert_eq!(
            kind_of(&result),
            "decode",
            "{kind} {}: {result:?}",
            String::from_utf8_lossy(body)
        );
    }
}

#[tokio::test]
async fn http_error_statuses_are_errors() {
    let server = FakeServer::answering(
        "503 Service Unavailable",
        "text/plain",
        b"down for\nmaintenance",
    )
    .await;
    for kind in BOTH {
        let result = ask(kind, &server.address).await;
        assert!(
            matches!(&result, Err(AlertsError::Http { status: 503, body, .. })
                if body == "down for maintenance"),
            "{kind}: {result:?}"
        );
    }
    let rejected = FakeServer::answering(
        "400 Bad Request",
        "application/json",
        br#"{"status":"error","errorType":"bad_data","error":"parse error"}"#,
    )
    .await;
    let result = ask(SourceKind::Prometheus, &rejected.address).await;
    assert_eq!(kind_of(&result), "rejected", "{result:?}");
}

#[tokio::test]
async fn answers_over_the_limit_are_too_large() {
    let big = format!("[{}]", "0,".repeat(4096) + "0").into_bytes();
    // Announced by Content-Length, and not announced (read until the connection closes).
    let announced = FakeServer::answering("200 OK", "application/json", &big).await;
    let mut unannounced_bytes =
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n".to_vec();
    unannounced_bytes.extend_from_slice(&big);
    let unannounced = FakeServer::start(Some(unannounced_bytes)).await;
    for server in [&announced, &unannounced] {
        for kind in BOTH {
            let mut query = AlertQuery::new(kind, &server.address);
            query.max_answer_bytes = Some(1024);
            let result = firing(&query).await;
            assert!(
                matches!(&result, Err(AlertsError::TooLarge { limit: 1024, .. })),
                "{kind}: {result:?}"
            );
        }
    }
}

#[tokio::test]
async fn a_silent_server_times_out() {
    let server = FakeServer::start(None).await;
    for kind in BOTH {
        let mut query = AlertQuery::new(kind, &server.address);
        query.timeout = Duration::from_millis(300);
        let result = firing(&query).await;
        assert!(
            matches!(&result, Err(AlertsError::Timeout { timeout, .. })
                if *timeout == Duration::from_millis(300)),
            "{kind}: {result:?}"
        );
    }
}

#[tokio::test]
async fn nothing_listening_is_unreachable() {
    let address = closed_address();
    for kind in BOTH {
        let result = ask(kind, &address).await;
        assert_eq!(kind_of(&result), "unreachable", "{kind}: {result:?}");
    }
}

#[tokio::test]
async fn invalid_queries_are_refused_before_sending() {
    for kind in BOTH {
        for address in ["ftp://127.0.0.1:1", "127.0.0.1:9093", ""] {
            let result = ask(kind, address).await;
            assert_eq!(
                kind_of(&result),
                "invalid_query",
                "{kind} {address:?}: {result:?}"
            );
        }
        let mut zero = AlertQuery::new(kind, "http://127.0.0.1:1");
        zero.timeout = Duration::ZERO;
        assert_eq!(kind_of(&firing(&zero).await), "invalid_query");
        let mut bad_token = AlertQuery::new(kind, "http://127.0.0.1:1");
        bad_token.auth = Auth::Bearer("line\nbreak".into());
        let result = firing(&bad_token).await;
        assert_eq!(kind_of(&result), "invalid_query", "{kind}: {result:?}");
        assert!(!format!("{result:?}").contains("line\nbreak"));
    }
    let matcher: Matcher = r#"alertstate="pending""#.parse().unwrap_or_else(|e| panic!("{e}"));
    let result =
        firing(&AlertQuery::new(SourceKind::Prometheus, "http://127.0.0.1:1").matcher(matcher))
            .await;
    assert!(
        matches!(&result, Err(AlertsError::InvalidQuery { reason, .. }) if reason.contains("alertstate")),
        "{result:?}"
    );
}

#[tokio::test]
async fn alertmanager_gets_the_filters_and_the_credentials() {
    let server = FakeServer::answering("200 OK", "application/json", b"[]").await;
    let matcher: Matcher = r#"revision=~"a b|\"c\"""#.parse().unwrap_or_else(|e| panic!("{e}"));
    let mut query = AlertQuery::new(SourceKind::Alertmanager, format!("{}/am/", server.address))
        .matcher(matcher);
    query.auth = Auth::Bearer("t0ken".into());
    assert_eq!(firing(&query).await, Ok(vec![]));
    let heads = server.heads();
    assert_eq!(heads.len(), 1, "{heads:?}");
    let head = heads[0].to_ascii_lowercase();
    assert!(
        head.starts_with(
            "get /am/api/v2/alerts?active=true&silenced=false&inhibited=false&unprocessed=false\
             &filter=revision%3d%7e%22a+b%7c%5c%22c%5c%22%22 http/1.1\r\n"
        ),
        "{head}"
    );
    assert!(
        head.contains("\r\nauthorization: bearer t0ken\r\n"),
        "{head}"
    );

    let prometheus = FakeServer::answering(
        "200 OK",
        "application/json",
        br#"{"status":"success","data":{"resultType":"vector","result":[]}}"#,
    )
    .await;
    let mut query = AlertQuery::new(SourceKind::Prometheus, &prometheus.address);
    query.auth = Auth::Basic {
        user: "alice".into(),
        password: "pw".into(),
    };
    assert_eq!(firing(&query).await, Ok(vec![]));
    let heads = prometheus.heads();
    assert!(
        heads.first().is_some_and(|h| h.contains("/api/v1/query")
            && h.to_ascii_lowercase()
                .contains("authorization: basic ywxpy2u6chc=")),
        "{heads:?}"
    );
}
