//! One bounded HTTP GET, with the query's credentials, TLS and timeout, its failures
//! classified.

use reqwest::Url;
use reqwest::header::AUTHORIZATION;
use rollgate_prometheus::transport::{
    self, BodyError, Failure, authorization, build_client, read_body,
};

pub(crate) use rollgate_prometheus::transport::display_address;

use crate::error::AlertsError;
use crate::{AlertQuery, SourceKind};

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
    let client = build_client(query.timeout, &query.tls).map_err(&invalid)?;
    let mut request = client
        .get(url)
        .header(reqwest::header::ACCEPT, "application/json");
    if let Some(value) = authorization(&query.auth).map_err(&invalid)? {
        request = request.header(AUTHORIZATION, value);
    }
    let response = request
        .send()
        .await
        .map_err(|e| classify(&e, query, &address))?;
    let status = response.status();
    let limit = query.effective_max_answer_bytes();
    let body = read_body(response, limit).await.map_err(|e| match e {
        BodyError::TooLarge => AlertsError::TooLarge {
            server,
            address: address.clone(),
            limit,
        },
        BodyError::Read(e) => classify(&e, query, &address),
    })?;
    Ok(Answer {
        status: status.as_u16(),
        success: status.is_success(),
        body,
    })
}

/// Classifies a transport error of a pull from `address`.
fn classify(e: &reqwest::Error, query: &AlertQuery, address: &str) -> AlertsError {
    let server: SourceKind = query.kind;
    let address = address.to_string();
    match transport::classify(e) {
        Failure::Timeout => AlertsError::Timeout {
            server,
            address,
            timeout: query.timeout,
        },
        Failure::Tls(message) => AlertsError::Tls {
            server,
            address,
            message,
        },
        Failure::Unreachable(message) => AlertsError::Unreachable {
            server,
            address,
            message,
        },
        Failure::InvalidRequest(reason) => AlertsError::InvalidQuery {
            server,
            address,
            reason,
        },
        Failure::Transport(message) => AlertsError::Transport {
            server,
            address,
            message,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Auth;

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
