//! The Alertmanager harness against the real Alertmanager: start-up on loopback, alerts and
//! silences through the API, notifications to the configured webhook with its bearer token,
//! stop and restart on the same port.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use rollgate_promtest::{AlertmanagerConfig, PromTestError, TestAlertmanager};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Bound on waiting for a notification (against hanging, not a timing assertion).
const PATIENCE: Duration = Duration::from_secs(60);

/// A webhook receiver on 127.0.0.1 that records each request (head and body) and answers 200.
async fn receiver() -> (String, Arc<Mutex<Vec<(String, serde_json::Value)>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/alerts", listener.local_addr().expect("address"));
    let received = Arc::new(Mutex::new(Vec::new()));
    let seen = received.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut data = Vec::new();
            let mut buf = [0u8; 8192];
            // Read the head, then as many body bytes as Content-Length says.
            let (head, body) = loop {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => break (String::new(), Vec::new()),
                    Ok(n) => data.extend_from_slice(&buf[..n]),
                }
                let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") else {
                    continue;
                };
                let head = String::from_utf8_lossy(&data[..end]).to_ascii_lowercase();
                let length = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                if data.len() >= end + 4 + length {
                    break (head, data[end + 4..end + 4 + length].to_vec());
                }
            };
            let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
            seen.lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((head, json));
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                .await;
        }
    });
    (url, received)
}

/// Waits until a notification with `status` for `alertname` arrived; returns its head.
async fn notification(
    received: &Mutex<Vec<(String, serde_json::Value)>>,
    alertname: &str,
    status: &str,
) -> String {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let found = received
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|(_, json)| {
                json["status"] == status
                    && json["alerts"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|a| a["labels"]["alertname"] == alertname && a["status"] == status)
            })
            .map(|(head, _)| head.clone());
        if let Some(head) = found {
            return head;
        }
        let got = received.lock().unwrap_or_else(|p| p.into_inner()).clone();
        assert!(
            Instant::now() < deadline,
            "no {status} notification for {alertname} within {PATIENCE:?}; got {got:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn notifies_the_webhook_with_its_bearer_token() -> Result<(), PromTestError> {
    let (url, received) = receiver().await;
    let alertmanager =
        TestAlertmanager::start(AlertmanagerConfig::new().webhook(&url, Some("hook-t0ken")))
            .await?;
    // A minute ago, so that an end "a second ago" comes after the start.
    let starts_at = Timestamp::now()
        .checked_sub(SignedDuration::from_secs(60))
        .map_err(|e| PromTestError::Config(e.to_string()))?;
    let labels = [("alertname", "HighErrorRate"), ("revision", "abc")];
    alertmanager.post_alert(&labels, starts_at, None).await?;
    let head = notification(&received, "HighErrorRate", "firing").await;
    assert!(head.starts_with("post /alerts http/1.1"), "{head}");
    assert!(
        head.contains("\r\nauthorization: bearer hook-t0ken"),
        "{head}"
    );

    // An endsAt in the past resolves it; send_resolved is on.
    let past = Timestamp::now()
        .checked_sub(SignedDuration::from_secs(1))
        .map_err(|e| PromTestError::Config(e.to_string()))?;
    alertmanager
        .post_alert(&labels, starts_at, Some(past))
        .await?;
    notification(&received, "HighErrorRate", "resolved").await;
    Ok(())
}

#[tokio::test]
async fn silences_and_restarts() -> Result<(), PromTestError> {
    let mut alertmanager = TestAlertmanager::start(AlertmanagerConfig::new()).await?;
    let port = alertmanager.port();
    assert!(alertmanager.is_running());
    assert!(
        alertmanager.log().contains("Listening"),
        "{}",
        alertmanager.log()
    );

    alertmanager
        .post_alert(&[("alertname", "A")], Timestamp::now(), None)
        .await?;
    let id = alertmanager
        .silence(&[("alertname", "A")], Duration::from_secs(600))
        .await?;
    assert!(!id.is_empty());
    let alerts = alertmanager.alerts().await?;
    let silenced_by = alerts[0]["status"]["silencedBy"].clone();
    assert_eq!(silenced_by, serde_json::json!([id]), "{alerts}");
    alertmanager.expire_silence(&id).await?;
    // No matchers: refused by Alertmanager (422), reported with its answer.
    let refused = alertmanager.silence(&[], Duration::from_secs(60)).await;
    assert!(
        matches!(&refused, Err(PromTestError::AlertmanagerApi { call, message })
            if call == "POST /api/v2/silences" && message.contains("HTTP 422")),
        "{refused:?}"
    );

    alertmanager.stop();
    assert!(!alertmanager.is_running());
    assert!(matches!(
        alertmanager.alerts().await,
        Err(PromTestError::AlertmanagerApi { .. })
    ));
    alertmanager.restart().await?;
    assert_eq!(alertmanager.port(), port);
    assert!(alertmanager.alerts().await?.is_array());
    Ok(())
}
