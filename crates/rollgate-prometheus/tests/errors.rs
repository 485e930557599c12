//! Failure classification without Prometheus: closed port, a server that never answers,
//! HTTP errors, unreadable answers and invalid requests.

use crate::common;

use std::time::Duration;

use rollgate_prometheus::{
    Auth, DEFAULT_MAX_ANSWER_BYTES, ProviderError, Range, Request, Timestamp, Tls, query,
};

use common::{Capture, Flood, Stall, closed_port, install_provider};

#[tokio::test]
async fn closed_port_is_unreachable() {
    install_provider();
    let address = format!("http://127.0.0.1:{}", closed_port());
    let result = query(&Request::new(&address, "up")).await;
    let Err(error) = result else {
        panic!("expected an error, got {result:?}")
    };
    assert!(
        matches!(&error, ProviderError::Unreachable { .. }),
        "{error:?}"
    );
    let text = error.to_string();
    assert!(
        text.starts_with(&format!("Prometheus at {address} is unreachable: ")),
        "{text}"
    );
    assert!(text.contains("refused"), "{text}");
    assert!(!text.contains('\n'), "{text}");
}

#[tokio::test]
async fn server_that_never_answers_times_out() {
    install_provider();
    let stall = Stall::start().await;
    let mut request = Request::new(&stall.address, "up");
    request.timeout = Some(Duration::from_millis(300));
    // A server that never answers: without the timeout this would hang (and nextest's
    // slow-test limit, .config/nextest.toml, would end it), so the Timeout error is the whole
    // check.
    let result = query(&request).await;
    assert_eq!(
        result,
        Err(ProviderError::Timeout {
            address: stall.address.clone(),
            timeout: Duration::from_millis(300),
        })
    );
}

#[tokio::test]
async fn http_error_without_prometheus_document() {
    install_provider();
    let capture = Capture::start("502 Bad Gateway", "text/plain", "upstream\nis down").await;
    let result = query(&Request::new(&capture.address, "up")).await;
    assert_eq!(
        result,
        Err(ProviderError::Http {
            address: capture.address.clone(),
            status: 502,
            body: "upstream is down".into(),
        })
    );
}

#[tokio::test]
async fn unreadable_answers_are_decode_errors() {
    install_provider();
    let garbage = Capture::start("200 OK", "application/json", "{not json").await;
    let result = query(&Request::new(&garbage.address, "up")).await;
    assert!(
        matches!(&result, Err(ProviderError::Decode { .. })),
        "{result:?}"
    );

    let html = Capture::start("200 OK", "text/html", "<html>login</html>").await;
    let result = query(&Request::new(&html.address, "up")).await;
    assert!(
        matches!(&result, Err(ProviderError::Decode { message, .. }) if message.contains("<html>login</html>")),
        "{result:?}"
    );
}

#[tokio::test]
async fn invalid_requests_are_refused_before_sending() {
    install_provider();
    let invalid =
        |r: &Result<_, ProviderError>| matches!(r, Err(ProviderError::InvalidRequest { .. }));

    for address in ["", "localhost:9090", "ftp://127.0.0.1/", "http://"] {
        let result = query(&Request::new(address, "up")).await;
        assert!(invalid(&result), "{address:?}: {result:?}");
    }

    let base = format!("http://127.0.0.1:{}", closed_port());
    let mut bad_header = Request::new(&base, "up");
    bad_header.headers = vec![("bad header".into(), "x".into())];
    assert!(invalid(&query(&bad_header).await));

    let mut bad_value = Request::new(&base, "up");
    bad_value.headers = vec![("X-Secret".into(), "line\nbreak-secret".into())];
    let result = query(&bad_value).await;
    assert!(invalid(&result), "{result:?}");
    assert!(
        !format!("{result:?}").contains("break-secret"),
        "{result:?}"
    );

    let mut bad_token = Request::new(&base, "up");
    bad_token.auth = Auth::Bearer("a\nb".into());
    assert!(invalid(&query(&bad_token).await));

    let mut bad_ca = Request::new(&base, "up");
    bad_ca.tls = Tls {
        insecure: false,
        ca_pem: Some(b"not a certificate".to_vec()),
    };
    assert!(invalid(&query(&bad_ca).await));

    let now = Timestamp::now();
    let mut zero_step = Request::new(&base, "up");
    zero_step.range = Some(Range {
        start: now,
        end: now,
        step: Duration::ZERO,
    });
    assert!(invalid(&query(&zero_step).await));
}

#[tokio::test]
async fn password_in_the_address_is_hidden() {
    install_provider();
    let address = format!("http://user:hunter2@127.0.0.1:{}", closed_port());
    let result = query(&Request::new(&address, "up")).await;
    let text = result.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(text.contains("user:xxxxx@127.0.0.1"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
}

#[tokio::test]
async fn an_endless_answer_stops_at_the_limit() {
    install_provider();
    let flood = Flood::start().await;
    let mut request = Request::new(&flood.address, "up");
    request.max_answer_bytes = Some(256 * 1024);
    // Generous: the limit, not the timeout, must end the exchange.
    request.timeout = Some(Duration::from_secs(20));
    let result = query(&request).await;
    assert_eq!(
        result,
        Err(ProviderError::TooLarge {
            address: flood.address.clone(),
            limit: 256 * 1024,
        })
    );
    let error = result.err().map(|e| e.to_string()).unwrap_or_default();
    assert_eq!(
        error,
        format!(
            "the answer of Prometheus at {} exceeds 262144 bytes",
            flood.address
        )
    );
    assert!(flood.sent() > 256 * 1024, "the server did stream past it");
}

#[tokio::test]
async fn the_default_limit_bounds_an_endless_answer() {
    install_provider();
    let flood = Flood::start().await;
    let mut request = Request::new(&flood.address, "up");
    request.timeout = Some(Duration::from_secs(30));
    assert_eq!(request.effective_max_answer_bytes(), 10 * 1024 * 1024);
    let result = query(&request).await;
    assert_eq!(
        result,
        Err(ProviderError::TooLarge {
            address: flood.address.clone(),
            limit: DEFAULT_MAX_ANSWER_BYTES,
        })
    );
    assert_eq!(result.err().map(|e| e.kind()), Some("too_large"));
}

#[tokio::test]
async fn an_announced_length_over_the_limit_is_refused_and_one_within_is_read() {
    install_provider();
    let body = r#"{"status":"success","data":{"resultType":"scalar","result":[1,"2"]}}"#;
    let capture = Capture::start("200 OK", "application/json", body).await;
    let mut request = Request::new(&capture.address, "up");
    request.max_answer_bytes = Some(body.len() - 1);
    assert_eq!(
        query(&request).await,
        Err(ProviderError::TooLarge {
            address: capture.address.clone(),
            limit: body.len() - 1,
        })
    );
    let capture = Capture::start("200 OK", "application/json", body).await;
    let mut request = Request::new(&capture.address, "up");
    request.max_answer_bytes = Some(body.len());
    assert_eq!(
        query(&request).await,
        Ok(rollgate_prometheus::QueryResult::Scalar(2.0))
    );
}
