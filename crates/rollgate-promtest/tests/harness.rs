//! The harness against the real Prometheus: start-up, backfill, scraping the metrics server,
//! stop/restart on the same port and data, clean-up on drop.

use std::time::Duration;

use rollgate_promtest::{
    MetricsServer, PromTestError, ScrapeConfig, TestPrometheus, install_crypto_provider,
    is_installed, wait_for_data,
};

async fn start(config: ScrapeConfig) -> TestPrometheus {
    match TestPrometheus::start(config).await {
        Ok(prometheus) => prometheus,
        Err(e) => panic!("cannot start the test Prometheus: {e}"),
    }
}

#[test]
fn prometheus_is_installed() {
    assert!(is_installed(), "{}", PromTestError::NotInstalled);
    assert!(
        PromTestError::NotInstalled
            .to_string()
            .contains("apt-get install -y --no-install-recommends prometheus")
    );
}

#[tokio::test]
async fn metrics_server_serves_the_text_format() {
    install_crypto_provider();
    let metrics = MetricsServer::start().await.expect("metrics server");
    let handle = metrics.handle();
    handle.add("v1", "aaa", 7, 2);
    handle.set_traffic("v2", "bbb", 0.0, 0.0);

    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let response = client
        .get(metrics.url())
        .send()
        .await
        .expect("GET /metrics");
    assert_eq!(response.status(), 200);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let page = response.text().await.expect("body");
    for line in [
        "http_requests_total{version=\"v1\",pod_template_hash=\"aaa\"} 7",
        "http_request_errors_total{version=\"v1\",pod_template_hash=\"aaa\"} 2",
        "http_requests_total{version=\"v2\",pod_template_hash=\"bbb\"} 0",
        "http_request_errors_total{version=\"v2\",pod_template_hash=\"bbb\"} 0",
    ] {
        assert!(
            page.lines().any(|l| l == line),
            "missing {line:?} in\n{page}"
        );
    }

    let missing = client
        .get(format!("http://{}/other", metrics.target()))
        .send()
        .await
        .expect("GET /other");
    assert_eq!(missing.status(), 404);

    // Dropping the server also ends kept-alive connections: scrapes fail at once.
    let url = metrics.url();
    drop(metrics);
    tokio::task::yield_now().await;
    let after = client.get(&url).send().await;
    assert!(after.is_err(), "{after:?}");
}

#[tokio::test]
async fn backfilled_data_is_queryable_at_its_time() {
    let prom = start(ScrapeConfig::new().backfill(
        "# TYPE old_value gauge\nold_value{k=\"v\"} 1 1600000000\nold_value{k=\"v\"} 2 1600000060\n",
    ))
    .await;
    let data = prom
        .query_json("old_value", Some("1600000090"))
        .await
        .expect("query");
    assert_eq!(data["resultType"], "vector");
    assert_eq!(data["result"][0]["metric"]["k"], "v");
    assert_eq!(data["result"][0]["value"][1], "2");
}

#[tokio::test]
async fn backfill_mistakes_are_refused() {
    for (text, expected) in [
        ("m 1 1600000000000\n", "milliseconds"),
        ("m 1\n", "needs a timestamp"),
        ("m 1 20\nm 2 10\n", "ascending"),
    ] {
        let result = TestPrometheus::start(ScrapeConfig::new().backfill(text)).await;
        match result {
            Err(PromTestError::Config(message)) => {
                assert!(message.contains(expected), "{message}")
            }
            Err(other) => panic!("expected a config error for {text:?}, got {other}"),
            Ok(_) => panic!("expected a config error for {text:?}"),
        }
    }
}

#[tokio::test]
async fn scraped_data_survives_a_restart_on_the_same_port() {
    let metrics = MetricsServer::start().await.expect("metrics server");
    metrics.handle().set_traffic("v1", "aaa", 10.0, 0.1);
    let mut prom = start(
        ScrapeConfig::new()
            .target(metrics.target())
            .interval(Duration::from_millis(500)),
    )
    .await;
    let port = prom.port();
    wait_for_data(&prom, "http_requests_total")
        .await
        .expect("scraped data");

    prom.stop();
    assert!(!prom.is_running());
    let down = prom.query_json("http_requests_total", None).await;
    assert!(matches!(down, Err(PromTestError::Query { .. })), "{down:?}");

    prom.restart().await.expect("restart");
    assert!(prom.is_running());
    assert_eq!(prom.port(), port);
    // The samples scraped before the stop come back from the WAL.
    let data = prom
        .wait_for_data(
            "count_over_time(http_requests_total[1h])",
            Duration::from_secs(10),
        )
        .await
        .expect("data after restart");
    assert_eq!(data["result"][0]["metric"]["version"], "v1");
}

#[tokio::test]
async fn drop_kills_prometheus_and_removes_its_directory() {
    let prom = start(ScrapeConfig::new()).await;
    let dir = prom.dir().to_path_buf();
    let port = prom.port();
    assert!(dir.join("prometheus.yml").is_file());
    assert!(!prom.log().is_empty());
    drop(prom);
    assert!(!dir.exists(), "{} still exists", dir.display());
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "port {port} still answers"
    );
}

#[tokio::test]
async fn wait_for_data_reports_the_last_answer() {
    let prom = start(ScrapeConfig::new()).await;
    let result = prom
        .wait_for_data("absent_metric", Duration::from_millis(300))
        .await;
    match result {
        Err(PromTestError::NoData { last, .. }) => {
            assert!(last.contains("\"result\":[]"), "{last}")
        }
        other => panic!("expected NoData, got {other:?}"),
    }
}
