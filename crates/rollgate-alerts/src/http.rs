//! One bounded HTTP GET, with the query's credentials, TLS and timeout, its failures
//! classified.

use std::error::Error as StdError;

use base64::Engine as _;
use reqwest::header::{AUTHORIZATION, HeaderValue};
use reqwest::{Certificate, Url};

use crate::error::{AlertsError, one_line};
use crate::{AlertQuery, Auth, SourceKind};

/// What a GET returned: its status and its whole body (at most the query's limit).
pub(crate) struct Answer {
    /// The HTTP status code.
    pub status: u16,
    /// Whether the status is 2xx.
    pub success: bool,
    /// The body.
    pub body: Vec<u8>,
}

/// The address checked and without trailing `/` (`https://proxy/am/` would otherwise become
/// `/am//api/v2/alerts`), or why it cannot be used.
pub(crate) fn base_address(address: &str) -> Result<Url, String> {
    let trimmed = address.trim().trim_end_matches('/');
    if trimmed.is_empty() {
        return Err("the address is empty".into());
    }
    let url = Url::parse(trimmed).map_err(|e| format!("the address is not a URL: {e}"))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(format!(
            "the address must start with http:// or https://, not {}://",
            url.scheme()
        ));
    }
    if url.host().is_none() || url.cannot_be_a_base() {
        return Err("the address has no host".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("the address must not have a query (?...) or fragment (#...)".into());
    }
    Ok(url)
}

/// `address` as shown in errors: as given, unless it carries a password, which is hidden.
pub(crate) fn display_address(address: &str) -> String {
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

/// GETs `url` with the query's credentials, TLS and timeout and reads the answer, at most
/// [`AlertQuery::effective_max_answer_bytes`] of it.
pub(crate) async fn get(query: &AlertQuery, url: Url) -> Result<Answer, AlertsError> {
    let server = query.kind;
    let address = display_address(&query.address);
    let invalid = |reason: String| AlertsError::InvalidQuery {
        server,
        address: address.clone(),
        reason,
    };
    if query.timeout.is_zero() {
        return Err(invalid("the timeout must be greater than zero".into()));
    }
    let client = build_client(query).map_err(&invalid)?;
    let mut request = client
        .get(url)
        .header(reqwest::header::ACCEPT, "application/json");
    if let Some(value) = authorization(&query.auth).map_err(&invalid)? {
        request = request.header(AUTHORIZATION, value);
    }
    let mut response = request
        .send()
        .await
        .map_err(|e| classify(&e, query, &address))?;
    let status = response.status();
    let limit = query.effective_max_answer_bytes();
    let too_large = || AlertsError::TooLarge {
        server,
        address: address.clone(),
        limit,
    };
    let announced = response.content_length();
    if announced.is_some_and(|n| usize::try_from(n).map_or(true, |n| n > limit)) {
        return Err(too_large());
    }
    let mut body = Vec::with_capacity(
        announced
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(0)
            .min(limit),
    );
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| classify(&e, query, &address))?
    {
        if chunk.len() > limit - body.len() {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Answer {
        status: status.as_u16(),
        success: status.is_success(),
        body,
    })
}

/// A reqwest client for `query`: timeout and certificate verification. The reason of an
/// invalid configuration as `Err`.
fn build_client(query: &AlertQuery) -> Result<reqwest::Client, String> {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Err means another thread installed one meanwhile: fine either way.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    let mut builder = reqwest::Client::builder()
        .timeout(query.timeout)
        .user_agent(concat!("rollgate/", env!("CARGO_PKG_VERSION")));
    if query.tls.insecure {
        builder = builder.tls_danger_accept_invalid_certs(true);
    } else if let Some(pem) = &query.tls.ca_pem {
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

/// The `Authorization` header value for `auth`, marked sensitive.
fn authorization(auth: &Auth) -> Result<Option<HeaderValue>, String> {
    let text = match auth {
        Auth::None => return Ok(None),
        Auth::Bearer(token) => format!("Bearer {}", token.trim()),
        Auth::Basic { user, password } => {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
            )
        }
    };
    // The value is a secret: never echo it.
    let mut value = HeaderValue::from_str(&text)
        .map_err(|_| "the credentials contain characters not allowed in a header".to_string())?;
    value.set_sensitive(true);
    Ok(Some(value))
}

/// Classifies a transport error: timeout first (reqwest's timer fires whatever the phase),
/// then a TLS failure anywhere in the chain, then connect failures.
fn classify(e: &reqwest::Error, query: &AlertQuery, address: &str) -> AlertsError {
    let server: SourceKind = query.kind;
    let address = address.to_string();
    if e.is_timeout() {
        return AlertsError::Timeout {
            server,
            address,
            timeout: query.timeout,
        };
    }
    if let Some(tls) = find_rustls_error(e) {
        return AlertsError::Tls {
            server,
            address,
            message: one_line(&tls.to_string()),
        };
    }
    // The top-level message repeats the URL (with the filters): only the causes are kept.
    let causes = e.source().map(error_chain).unwrap_or_else(|| e.to_string());
    let message = one_line(&causes);
    if e.is_connect() {
        AlertsError::Unreachable {
            server,
            address,
            message,
        }
    } else if e.is_builder() {
        AlertsError::InvalidQuery {
            server,
            address,
            reason: message,
        }
    } else {
        AlertsError::Transport {
            server,
            address,
            message,
        }
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
fn error_chain(e: &(dyn StdError + 'static)) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_addresses() {
        assert_eq!(
            base_address("http://127.0.0.1:9093/").map(|u| u.to_string()),
            Ok("http://127.0.0.1:9093/".to_string())
        );
        assert_eq!(
            base_address("https://proxy/am/").map(|u| u.path().to_string()),
            Ok("/am".to_string())
        );
        for bad in [
            "",
            "  ",
            "127.0.0.1:9093",
            "ftp://host",
            "unix:/run/am.sock",
            "http://h/?x=1",
            "http://h/#f",
            "file:///etc/passwd",
        ] {
            assert!(base_address(bad).is_err(), "{bad:?} should be refused");
        }
        assert!(
            base_address("ftp://h")
                .is_err_and(|e| e.contains("must start with http:// or https://"))
        );
    }

    #[test]
    fn hides_passwords_in_addresses() {
        assert_eq!(
            display_address("http://u:secret@am:9093"),
            "http://u:xxxxx@am:9093/"
        );
        assert_eq!(display_address("http://am:9093"), "http://am:9093");
    }

    #[test]
    fn builds_authorization() -> Result<(), String> {
        let basic = authorization(&Auth::Basic {
            user: "alice".into(),
            password: "pw".into(),
        })?;
        assert_eq!(
            basic.as_ref().and_then(|v| v.to_str().ok()),
            Some("Basic YWxpY2U6cHc=")
        );
        assert!(basic.is_some_and(|v| v.is_sensitive()));
        assert!(authorization(&Auth::Bearer("a\nb".into())).is_err_and(|e| !e.contains("a\nb")));
        assert_eq!(authorization(&Auth::None)?, None);
        Ok(())
    }
}
