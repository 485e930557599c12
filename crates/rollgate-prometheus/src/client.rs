//! Building the HTTP client for a request, sending the query and reading the answer.

use std::error::Error as StdError;
use std::time::Duration;

use base64::Engine as _;
use prometheus_http_query::reqwest::header::{
    AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue,
};
use prometheus_http_query::reqwest::{self, Certificate, Url};
use prometheus_http_query::response::Data;
use serde::Deserialize;

use crate::error::{ProviderError, one_line};
use crate::request::{Auth, Request};
use crate::result::{Labels, QueryResult};

/// Runs `req` against Prometheus and returns its value.
///
/// An instant query (`/api/v1/query`, at [`Request::time`] or the server's now) unless
/// [`Request::range`] is set (`/api/v1/query_range`). A vector or matrix without series is
/// `Ok` and empty.
///
/// # Errors
///
/// A [`ProviderError`] classifying the failure; see its variants.
pub async fn query(req: &Request) -> Result<QueryResult, ProviderError> {
    let address = display_address(&req.address);
    let timeout = req.effective_timeout();
    let invalid = |reason: String| ProviderError::InvalidRequest {
        address: address.clone(),
        reason,
    };

    // `https://proxy/prometheus/` would otherwise become `/prometheus//api/v1/query`.
    let base = req.address.trim().trim_end_matches('/');
    check_address(base).map_err(invalid)?;
    if let Some(range) = &req.range {
        if range.step.is_zero() {
            return Err(invalid("the range step must be greater than zero".into()));
        }
        if range.end < range.start {
            return Err(invalid(format!(
                "the range ends ({}) before it starts ({})",
                range.end, range.start
            )));
        }
    }
    let headers = request_headers(req).map_err(&invalid)?;
    let client = build_client(req).map_err(&invalid)?;
    let prometheus =
        prometheus_http_query::Client::from(client, base).map_err(|e| invalid(e.to_string()))?;

    // Headers go on the request, not into the client's defaults: reqwest keeps only one value
    // per name from the defaults, and a name may repeat here.
    let sent = match &req.range {
        Some(range) => {
            let mut builder = prometheus.query_range(
                &req.query,
                range.start.as_second(),
                range.end.as_second(),
                range.step.as_secs_f64(),
            );
            for (name, value) in &headers {
                builder = builder.header(name.clone(), value.clone());
            }
            builder.get_raw().await
        }
        None => {
            let mut instant = prometheus.query(&req.query);
            for (name, value) in &headers {
                instant = instant.header(name.clone(), value.clone());
            }
            if let Some(time) = req.time {
                // RFC 3339 keeps sub-second precision, which the library's `at` (whole
                // seconds) would drop.
                instant = instant.query("time", time);
            }
            instant.get_raw().await
        }
    };
    let response = sent.map_err(|e| from_library_error(&e, &address, timeout))?;

    let status = response.status();
    let json = is_json(response.headers());
    let body = read_body(
        response,
        req.effective_max_answer_bytes(),
        &address,
        timeout,
    )
    .await?;
    decode(status.as_u16(), status.is_success(), json, &body, &address)
}

/// Reads the body of `response` piece by piece, stopping with
/// [`ProviderError::TooLarge`] as soon as it grows past `limit` bytes (or at once when its
/// `Content-Length` says it will), so memory stays bounded whatever the server sends.
async fn read_body(
    mut response: reqwest::Response,
    limit: usize,
    address: &str,
    timeout: Duration,
) -> Result<Vec<u8>, ProviderError> {
    let too_large = || ProviderError::TooLarge {
        address: address.to_string(),
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
        .map_err(|e| from_reqwest_error(&e, address, timeout))?
    {
        if chunk.len() > limit - body.len() {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The headers of `req`: its extra headers in order, then its credentials, which replace any
/// `Authorization` among them. The reason of an invalid header as `Err`.
fn request_headers(req: &Request) -> Result<HeaderMap, String> {
    let mut headers = HeaderMap::new();
    for (name, value) in &req.headers {
        let header_name = HeaderName::from_bytes(name.trim().as_bytes())
            .map_err(|_| format!("invalid header name {name:?}"))?;
        // The value may be a secret: never echo it.
        let header_value = HeaderValue::from_str(value)
            .map_err(|_| format!("invalid value for header {name:?}"))?;
        headers.append(header_name, header_value);
    }
    if let Some(value) = authorization(&req.auth)? {
        headers.insert(AUTHORIZATION, value);
    }
    Ok(headers)
}

/// A reqwest client for `req`: timeout and certificate verification. The reason of an invalid
/// configuration as `Err`.
fn build_client(req: &Request) -> Result<reqwest::Client, String> {
    ensure_crypto_provider();

    let mut builder = reqwest::Client::builder()
        .timeout(req.effective_timeout())
        .user_agent(concat!("rollgate/", env!("CARGO_PKG_VERSION")));
    if req.tls.insecure {
        builder = builder.tls_danger_accept_invalid_certs(true);
    } else if let Some(pem) = &req.tls.ca_pem {
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

/// reqwest is built without a default crypto provider: make sure rustls has one, `ring`
/// (kube's), unless the process installed one already.
fn ensure_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Err means another thread installed one meanwhile: fine either way.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

/// An `http`/`https` URL with a host, or why not.
fn check_address(address: &str) -> Result<(), String> {
    if address.trim().is_empty() {
        return Err("the address is empty".into());
    }
    let url = Url::parse(address).map_err(|e| format!("the address is not a URL: {e}"))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(format!(
            "the address must start with http:// or https://, not {}://",
            url.scheme()
        ));
    }
    if url.host().is_none() || url.cannot_be_a_base() {
        return Err("the address has no host".into());
    }
    Ok(())
}

/// `address` as shown in errors: as given, unless it carries a password, which is hidden.
fn display_address(address: &str) -> String {
    match Url::parse(address) {
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

/// Whether the response says it is JSON.
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"))
}

/// Classifies an error of `prometheus-http-query`'s request sending.
fn from_library_error(
    e: &prometheus_http_query::Error,
    address: &str,
    timeout: Duration,
) -> ProviderError {
    match e {
        prometheus_http_query::Error::Client(client) => match client.inner() {
            Some(inner) => from_reqwest_error(inner, address, timeout),
            None => ProviderError::Transport {
                address: address.to_string(),
                message: one_line(&e.to_string()),
            },
        },
        prometheus_http_query::Error::ParseUrl(_) => ProviderError::InvalidRequest {
            address: address.to_string(),
            reason: one_line(&error_chain(e)),
        },
        _ => ProviderError::Transport {
            address: address.to_string(),
            message: one_line(&error_chain(e)),
        },
    }
}

/// Classifies a transport error: timeout first (reqwest's timer fires whatever the phase),
/// then a TLS failure anywhere in the chain, then connect failures.
fn from_reqwest_error(e: &reqwest::Error, address: &str, timeout: Duration) -> ProviderError {
    let address = address.to_string();
    if e.is_timeout() {
        return ProviderError::Timeout { address, timeout };
    }
    if let Some(tls) = find_rustls_error(e) {
        return ProviderError::Tls {
            address,
            message: one_line(&tls.to_string()),
        };
    }
    // The top-level message repeats the URL (with the query): only the causes are kept.
    let causes = e.source().map(error_chain).unwrap_or_else(|| e.to_string());
    let message = one_line(&causes);
    if e.is_connect() {
        ProviderError::Unreachable { address, message }
    } else if e.is_builder() {
        ProviderError::InvalidRequest {
            address,
            reason: message,
        }
    } else {
        ProviderError::Transport { address, message }
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

/// The envelope of Prometheus' query API answers.
#[derive(Deserialize)]
struct Envelope {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

/// Turns an HTTP answer into a value or an error.
fn decode(
    status: u16,
    success: bool,
    json: bool,
    body: &[u8],
    address: &str,
) -> Result<QueryResult, ProviderError> {
    let address = address.to_string();
    let text = || one_line(&String::from_utf8_lossy(body));
    if !json {
        return Err(if success {
            ProviderError::Decode {
                address,
                message: format!("expected JSON, got: {}", text()),
            }
        } else {
            ProviderError::Http {
                address,
                status,
                body: text(),
            }
        });
    }
    let envelope: Envelope = match serde_json::from_slice(body) {
        Ok(envelope) => envelope,
        Err(_) if !success => {
            return Err(ProviderError::Http {
                address,
                status,
                body: text(),
            });
        }
        Err(e) => {
            return Err(ProviderError::Decode {
                address,
                message: one_line(&e.to_string()),
            });
        }
    };
    match (envelope.status.as_str(), envelope.data) {
        ("error", _) => Err(ProviderError::Query {
            address,
            error_type: envelope.error_type.unwrap_or_else(|| "unknown".into()),
            message: one_line(&envelope.error.unwrap_or_default()),
        }),
        ("success", Some(data)) if success => Ok(convert(data)),
        ("success", None) if success => Err(ProviderError::Decode {
            address,
            message: "the answer has no data".into(),
        }),
        _ if !success => Err(ProviderError::Http {
            address,
            status,
            body: text(),
        }),
        (other, _) => Err(ProviderError::Decode {
            address,
            message: format!("unknown status {:?}", one_line(other)),
        }),
    }
}

/// The library's result as ours.
fn convert(data: Data) -> QueryResult {
    match data {
        Data::Scalar(sample) => QueryResult::Scalar(sample.value()),
        Data::Vector(series) => QueryResult::Vector(
            series
                .into_iter()
                .map(|s| {
                    let (metric, sample) = s.into_inner();
                    (metric.into_iter().collect::<Labels>(), sample.value())
                })
                .collect(),
        ),
        Data::Matrix(series) => QueryResult::Matrix(
            series
                .into_iter()
                .map(|s| {
                    let (metric, samples) = s.into_inner();
                    let points = samples.iter().map(|p| (p.timestamp(), p.value())).collect();
                    (metric.into_iter().collect::<Labels>(), points)
                })
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "http://p:9090";

    fn ok(body: &str) -> Result<QueryResult, ProviderError> {
        decode(200, true, true, body.as_bytes(), A)
    }

    #[test]
    fn decodes_the_three_shapes_and_special_values() {
        assert_eq!(
            ok(r#"{"status":"success","data":{"resultType":"scalar","result":[1.5,"2"]}}"#),
            Ok(QueryResult::Scalar(2.0))
        );
        let vector = ok(
            r#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"a":"1"},"value":[1.5,"+Inf"]},
            {"metric":{},"value":[1.5,"-Inf"]}]}}"#,
        );
        let Ok(QueryResult::Vector(v)) = vector else {
            panic!("{vector:?}")
        };
        assert_eq!(v[0].0.get("a").map(String::as_str), Some("1"));
        assert_eq!(v[0].1, f64::INFINITY);
        assert_eq!(v[1].1, f64::NEG_INFINITY);
        let matrix = ok(
            r#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{"x":"y"},"values":[[10,"NaN"],[20,"3"]]}]}}"#,
        );
        let Ok(QueryResult::Matrix(m)) = matrix else {
            panic!("{matrix:?}")
        };
        assert!(m[0].1[0].1.is_nan());
        assert_eq!(m[0].1[1], (20.0, 3.0));
        assert_eq!(
            ok(r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#),
            Ok(QueryResult::Vector(vec![]))
        );
    }

    #[test]
    fn classifies_bad_answers() {
        let q = decode(
            400,
            false,
            true,
            br#"{"status":"error","errorType":"bad_data","error":"parse error"}"#,
            A,
        );
        assert!(
            matches!(&q, Err(ProviderError::Query { error_type, message, .. })
                if error_type == "bad_data" && message == "parse error"),
            "{q:?}"
        );
        let h = decode(502, false, false, b"bad\ngateway", A);
        assert!(
            matches!(&h, Err(ProviderError::Http { status: 502, body, .. }) if body == "bad gateway"),
            "{h:?}"
        );
        assert!(matches!(
            decode(200, true, false, b"<html>", A),
            Err(ProviderError::Decode { .. })
        ));
        assert!(matches!(
            ok(r#"{"status":"success","data":{"resultType":"string","result":[1,"x"]}}"#),
            Err(ProviderError::Decode { .. })
        ));
        assert!(matches!(ok("{"), Err(ProviderError::Decode { .. })));
    }

    #[test]
    fn checks_addresses() {
        assert!(check_address("http://127.0.0.1:9090").is_ok());
        assert!(check_address("http:").is_err());
        assert!(check_address("https://proxy/prometheus").is_ok());
        assert!(check_address("").is_err());
        assert!(check_address("127.0.0.1:9090").is_err());
        assert!(check_address("ftp://host").is_err());
        assert!(check_address("localhost:9090").is_err());
    }

    #[test]
    fn hides_passwords_in_addresses() {
        assert_eq!(
            display_address("http://u:secret@p:9090"),
            "http://u:xxxxx@p:9090/"
        );
        assert_eq!(display_address(A), A);
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
        assert!(authorization(&Auth::Bearer("a\nb".into())).is_err());
        assert_eq!(authorization(&Auth::None)?, None);
        Ok(())
    }
}
