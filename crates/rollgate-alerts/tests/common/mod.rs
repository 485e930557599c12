//! Shared by the integration tests: polling `firing` until a condition holds, and a fake HTTP
//! server that answers what a test wants.

// Each test binary uses a different part of this module.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rollgate_alerts::{AlertQuery, AlertsError, FiringAlert, firing};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// How long a condition on the firing alerts may take to come true (Prometheus scrapes and
/// evaluates every second here; this is a bound against hanging, not a timing assertion).
pub const PATIENCE: Duration = Duration::from_secs(90);

/// Calls `firing(query)` until `done` holds for its answer; returns that answer. Panics with
/// the last answer when [`PATIENCE`] runs out.
pub async fn firing_until(
    query: &AlertQuery,
    what: &str,
    done: impl Fn(&[FiringAlert]) -> bool,
) -> Vec<FiringAlert> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let last: Result<Vec<FiringAlert>, AlertsError> = firing(query).await;
        if let Ok(alerts) = &last
            && done(alerts)
        {
            return alerts.clone();
        }
        assert!(
            Instant::now() < deadline,
            "{what}: still not the case after {PATIENCE:?}; last answer: {last:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The names of `alerts`, in order.
pub fn names(alerts: &[FiringAlert]) -> Vec<&str> {
    alerts.iter().map(|a| a.name.as_str()).collect()
}

/// An HTTP server on 127.0.0.1 that answers every request with the same raw bytes (status
/// line, headers, body) and then closes the connection, or never answers when `answer` is
/// `None`. Records the head (request line and headers) of every request.
pub struct FakeServer {
    /// `http://127.0.0.1:PORT`.
    pub address: String,
    /// The heads of the requests received so far.
    pub requests: Arc<Mutex<Vec<String>>>,
    task: JoinHandle<()>,
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeServer {
    /// Starts the server on the current runtime.
    pub async fn start(answer: Option<Vec<u8>>) -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = format!("http://{}", listener.local_addr().expect("local address"));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                seen.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(String::from_utf8_lossy(&head).into_owned());
                match &answer {
                    Some(bytes) => {
                        let _ = stream.write_all(bytes).await;
                        let _ = stream.shutdown().await;
                    }
                    // Keep the connection open and silent.
                    None => held.push(stream),
                }
            }
        });
        FakeServer {
            address,
            requests,
            task,
        }
    }

    /// A server answering `status` with `content_type` and `body` (with a Content-Length).
    pub async fn answering(status: &str, content_type: &str, body: &[u8]) -> FakeServer {
        let mut bytes = format!(
            "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\
             connection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        bytes.extend_from_slice(body);
        FakeServer::start(Some(bytes)).await
    }

    /// The heads of the requests received so far.
    pub fn heads(&self) -> Vec<String> {
        self.requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// An address where nothing listens (a port that was just free).
pub fn closed_address() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("local address").port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}
