//! The HTTP plumbing every pull from a monitoring server shares (Prometheus queries here,
//! Alertmanager and Prometheus alerts in `rollgate-alerts`): the client for a timeout and TLS
//! settings, the `Authorization` header, a bounded body read, and the classification of a
//! transport failure into words fit for a status field.

use std::error::Error as StdError;
use std::time::Duration;

use base64::Engine as _;
use prometheus_http_query::reqwest::header::HeaderValue;
use prometheus_http_query::reqwest::{self, Certificate, Url};

use crate::error::one_line;
use crate::request::{Auth, Tls};

/// reqwest is built without a default crypto provider: make sure rustls has one, `ring`
/// (kube's), unless the process installed one already.
fn ensure_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Err means another thread installed one meanwhile: fine either way.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

/// A reqwest client with `timeout` and the certificate verification of `tls`. The reason of
/// an invalid configuration as `Err`.
pub fn build_client(timeout: Duration, tls: &Tls) -> Result<reqwest::Client, String> {
    ensure_crypto_provider();
    let mut builder = reqwest::Client::builder()
        .timeout(timeout)
        .user_agent(concat!("rollgate/", env!("CARGO_PKG_VERSION")));
    if tls.insecure {
        builder = builder.tls_danger_accept_invalid_certs(true);
    } else if let Some(pem) = &tls.ca_pem {
        let certs = Certificate::from_pem_bundle(pem)
            .map_err(|e| format!("the CA bundle is not valid PEM: {}", error_chain(&e)))?;
        if certs.is_empty() {
            return Err("the CA bundle contains no PEM certificate".into());
        }
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {}", error_chain(&e)))
}

/// The `Authorization` header value for `auth`, marked sensitive (never echoed).
pub fn authorization(auth: &Auth) -> Result<Option<HeaderValue>, String> {
    let text = match auth {
        Auth::None => return Ok(None),
        Auth::Bearer(token) => format!("Bearer {}", token.trim()),
        Auth::Basic { user, password } => format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        ),
    };
    let mut value = HeaderValue::from_str(&text)
        .map_err(|_| "the credentials contain characters not allowed in a header".to_string())?;
    value.set_sensitive(true);
    Ok(Some(value))
}

/// `address` as shown in errors: as given, unless it carries a password, which is hidden.
pub fn display_address(address: &str) -> String {
    match Url::parse(address.trim()) {
        Ok(mut url) if url.password().is_some() => {
            if url.set_password(Some("xxxxx")).is_ok() {
                url.to_string()
            } else {
                "<address with credentials>".into()
            }
        }
        _ => address.to_string(),
    }
}

/// Why a body could not be read whole.
#[derive(Debug)]
pub enum BodyError {
    /// It is (or announced to be) larger than the limit.
    TooLarge,
    /// The transfer failed.
    Read(reqwest::Error),
}

/// Reads the body of `response` piece by piece, stopping as soon as it grows past `limit`
/// bytes (or at once when its `Content-Length` says it will), so memory stays bounded
/// whatever the server sends.
pub async fn read_body(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, BodyError> {
    let announced = response.content_length();
    if announced.is_some_and(|n| usize::try_from(n).map_or(true, |n| n > limit)) {
        return Err(BodyError::TooLarge);
    }
    let mut body = Vec::with_capacity(
        announced
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(0)
            .min(limit),
    );
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Read)? {
        if chunk.len() > limit - body.len() {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A transport failure, classified; the texts are one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The request's timer fired.
    Timeout,
    /// TLS failed (certificate, handshake).
    Tls(String),
    /// No connection.
    Unreachable(String),
    /// The request could not be built.
    InvalidRequest(String),
    /// Anything else on the way.
    Transport(String),
}

/// Classifies `e`: timeout first (reqwest's timer fires whatever the phase), then a TLS
/// failure anywhere in the chain, then connect failures.
pub fn classify(e: &reqwest::Error) -> Failure {
    if e.is_timeout() {
        return Failure::Timeout;
    }
    if let Some(tls) = find_rustls_error(e) {
        return Failure::Tls(one_line(&tls.to_string()));
    }
    // The top-level message repeats the URL (with the query): only the causes are kept.
    let causes = e.source().map(error_chain).unwrap_or_else(|| e.to_string());
    let message = one_line(&causes);
    if e.is_connect() {
        Failure::Unreachable(message)
    } else if e.is_builder() {
        Failure::InvalidRequest(message)
    } else {
        Failure::Transport(message)
    }
}

/// The first `rustls::Error` in `e`'s chain, looking inside `io::Error`s too (their `source`
/// skips the error they wrap).
fn find_rustls_error<'a>(e: &'a (dyn StdError + 'static)) -> Option<&'a rustls::Error> {
    let mut current = Some(e);
    while let Some(err) = current {
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        if let Some(inner) = err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| find_rustls_error(inner))
        {
            return Some(inner);
        }
        current = err.source();
    }
    None
}

/// `e` and its causes, joined with `: `, without repeating a message already included.
pub fn error_chain(e: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current = Some(e);
    while let Some(err) = current {
        let text = err.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        current = err.source();
    }
    parts.join(": ")
}
