//! Helpers shared by the integration tests: a real Prometheus, local listeners that capture
//! or stall requests, and test certificates.

#![allow(dead_code)]

use std::net::SocketAddr;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rollgate_promtest::{ScrapeConfig, TestPrometheus};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The answer of Prometheus to `1+1` at t=1.
pub const SCALAR_TWO: &str =
    r#"{"status":"success","data":{"resultType":"scalar","result":[1,"2"]}}"#;

/// Installs rustls' ring provider as the binary does (an Err means it is installed already).
pub fn install_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Starts a real Prometheus; fails the test (never skips) with the harness' explanation when
/// Prometheus is missing or does not start.
pub async fn prometheus(config: ScrapeConfig) -> TestPrometheus {
    install_provider();
    match TestPrometheus::start(config).await {
        Ok(prometheus) => prometheus,
        Err(e) => panic!("cannot start the test Prometheus: {e}"),
    }
}

/// A port on 127.0.0.1 where nothing listens (bound, then released).
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local address").port()
}

/// A server that accepts one connection, records the request head (request line and
/// headers, as sent), answers `status` with `content_type` and `body`, and closes.
pub struct Capture {
    /// `http://127.0.0.1:PORT`.
    pub address: String,
    head: oneshot::Receiver<String>,
}

impl Capture {
    /// Binds and serves one request in the background.
    pub async fn start(status: &str, content_type: &str, body: &str) -> Capture {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let address = format!("http://{}", listener.local_addr().expect("local address"));
        let response = format!(
            "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            body.len()
        );
        let (sender, head) = oneshot::channel();
        tokio::spawn(async move {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let head = read_head(&mut stream).await;
            let _ = stream.write_all(response.as_bytes()).await;
            let _ = stream.shutdown().await;
            let _ = sender.send(head);
        });
        Capture { address, head }
    }

    /// The request head the client sent.
    pub async fn request_head(self) -> String {
        self.head.await.expect("the capture server saw no request")
    }
}

async fn read_head(stream: &mut TcpStream) -> String {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buffer.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    }
    String::from_utf8_lossy(&buffer).into_owned()
}

/// A server that accepts connections and never answers (until dropped).
pub struct Stall {
    /// `http://127.0.0.1:PORT`.
    pub address: String,
    task: JoinHandle<()>,
}

impl Stall {
    /// Binds and starts accepting.
    pub async fn start() -> Stall {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let address: SocketAddr = listener.local_addr().expect("local address");
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
            }
        });
        Stall {
            address: format!("http://{address}"),
            task,
        }
    }
}

impl Drop for Stall {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A CA and a server certificate it signed for `127.0.0.1` and `localhost`, PEM.
pub struct TestCerts {
    /// The CA certificate (what a client trusts).
    pub ca_pem: String,
    /// The server certificate.
    pub cert_pem: String,
    /// The server's private key.
    pub key_pem: String,
}

/// Generates fresh [`TestCerts`].
pub fn test_certs() -> TestCerts {
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "rollgate test CA");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_key = KeyPair::generate().expect("CA key");
    let ca_cert = ca.self_signed(&ca_key).expect("CA certificate");
    let issuer = Issuer::new(ca, ca_key);

    let mut server = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .expect("server parameters");
    server
        .distinguished_name
        .push(DnType::CommonName, "127.0.0.1");
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    server.use_authority_key_identifier_extension = true;
    let server_key = KeyPair::generate().expect("server key");
    let server_cert = server
        .signed_by(&server_key, &issuer)
        .expect("server certificate");
    TestCerts {
        ca_pem: ca_cert.pem(),
        cert_pem: server_cert.pem(),
        key_pem: server_key.serialize_pem(),
    }
}

/// A server that answers every request `200 OK` with a JSON answer that never ends: the start
/// of a vector, then samples for as long as the client reads (no `Content-Length`, the body
/// ends only when the connection closes). Counts the bytes it managed to send.
pub struct Flood {
    /// `http://127.0.0.1:PORT`.
    pub address: String,
    sent: std::sync::Arc<std::sync::atomic::AtomicU64>,
    task: JoinHandle<()>,
}

impl Flood {
    /// Binds and starts serving.
    pub async fn start() -> Flood {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let address = format!("http://{}", listener.local_addr().expect("local address"));
        let sent = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counter = sent.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let counter = counter.clone();
                tokio::spawn(async move {
                    read_head(&mut stream).await;
                    let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                                Connection: close\r\n\r\n{\"status\":\"success\",\"data\":\
                                {\"resultType\":\"vector\",\"result\":[";
                    if stream.write_all(head.as_bytes()).await.is_err() {
                        return;
                    }
                    let sample = "{\"metric\":{\"pod\":\"p\"},\"value\":[1,\"1\"]},";
                    let chunk = sample.repeat(64 * 1024 / sample.len());
                    while stream.write_all(chunk.as_bytes()).await.is_ok() {
                        counter.fetch_add(chunk.len() as u64, std::sync::atomic::Ordering::Relaxed);
                    }
                });
            }
        });
        Flood {
            address,
            sent,
            task,
        }
    }

    /// Bytes of samples written so far.
    pub fn sent(&self) -> u64 {
        self.sent.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Drop for Flood {
    fn drop(&mut self) {
        self.task.abort();
    }
}
