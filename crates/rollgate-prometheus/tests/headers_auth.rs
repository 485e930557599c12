//! What goes on the wire (headers, bearer and basic credentials, path prefix, time), and
//! basic auth against a real Prometheus.

use crate::common;

use rollgate_prometheus::{Auth, ProviderError, QueryResult, Request, Timestamp, query};
use rollgate_promtest::ScrapeConfig;

use common::{Capture, SCALAR_TWO, install_provider, prometheus};

#[tokio::test]
async fn custom_headers_and_bearer_token_are_sent() {
    install_provider();
    let capture = Capture::start("200 OK", "application/json", SCALAR_TWO).await;
    let mut request = Request::new(&capture.address, "sum(up{job=\"a b\"})");
    request.headers = vec![
        ("X-Scope-OrgID".into(), "tenant-a".into()),
        ("X-Extra".into(), "one".into()),
        ("X-Extra".into(), "two".into()),
    ];
    request.auth = Auth::Bearer("s3cret-token".into());
    request.time = Some("2025-03-01T12:00:00Z".parse::<Timestamp>().expect("time"));
    assert_eq!(query(&request).await, Ok(QueryResult::Scalar(2.0)));

    let head = capture.request_head().await;
    let lower = head.to_ascii_lowercase();
    let request_line = head.lines().next().unwrap_or_default();
    assert!(request_line.starts_with("GET /api/v1/query?"), "{head}");
    assert!(
        request_line.contains("query=sum%28up%7Bjob%3D%22a+b%22%7D%29"),
        "{head}"
    );
    assert!(
        request_line.contains("time=2025-03-01T12%3A00%3A00Z"),
        "{head}"
    );
    assert!(lower.contains("\r\nx-scope-orgid: tenant-a\r\n"), "{head}");
    assert!(lower.contains("\r\nx-extra: one\r\n"), "{head}");
    assert!(lower.contains("\r\nx-extra: two\r\n"), "{head}");
    assert!(
        head.contains("\r\nauthorization: Bearer s3cret-token\r\n")
            || head.contains("\r\nAuthorization: Bearer s3cret-token\r\n"),
        "{head}"
    );
}

#[tokio::test]
async fn basic_credentials_replace_an_authorization_header_and_prefix_is_kept() {
    install_provider();
    let capture = Capture::start("200 OK", "application/json", SCALAR_TWO).await;
    let mut request = Request::new(format!("{}/prometheus/", capture.address), "up");
    request.headers = vec![("Authorization".into(), "Bearer stale".into())];
    request.auth = Auth::Basic {
        user: "alice".into(),
        password: "pw".into(),
    };
    assert_eq!(query(&request).await, Ok(QueryResult::Scalar(2.0)));

    let head = capture.request_head().await;
    assert!(
        head.starts_with("GET /prometheus/api/v1/query?query=up HTTP/1.1\r\n"),
        "{head}"
    );
    let lower = head.to_ascii_lowercase();
    assert!(
        lower.contains("\r\nauthorization: basic ywxpy2u6chc=\r\n"),
        "{head}"
    );
    assert!(!lower.contains("stale"), "{head}");
    assert_eq!(lower.matches("authorization:").count(), 1, "{head}");
}

#[tokio::test]
async fn basic_auth_against_prometheus() {
    let prom = prometheus(ScrapeConfig::new().basic_auth("alice", "wonderland")).await;

    let mut request = Request::new(prom.address(), "1+1");
    request.auth = Auth::Basic {
        user: "alice".into(),
        password: "wonderland".into(),
    };
    assert_eq!(query(&request).await, Ok(QueryResult::Scalar(2.0)));

    let anonymous = query(&Request::new(prom.address(), "1+1")).await;
    assert!(
        matches!(&anonymous, Err(ProviderError::Http { status: 401, .. })),
        "{anonymous:?}"
    );

    request.auth = Auth::Basic {
        user: "alice".into(),
        password: "looking-glass".into(),
    };
    let wrong = query(&request).await;
    assert!(
        matches!(&wrong, Err(ProviderError::Http { status: 401, .. })),
        "{wrong:?}"
    );
    let text = wrong.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(text.contains("HTTP 401"), "{text}");
    assert!(!text.contains("looking-glass"), "{text}");
}
