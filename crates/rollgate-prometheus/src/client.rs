//! Building the HTTP client for a request, sending the query and reading the answer.

use std::time::Duration;

use prometheus_http_query::reqwest::header::{
    AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue,
};
use prometheus_http_query::reqwest::{self, Url};
use prometheus_http_query::response::Data;
use serde::Deserialize;

use crate::error::{ProviderError, one_line};
use crate::request::Request;
use crate::result::{Labels, QueryResult};
use crate::transport::{
    BodyError, Failure, authorization, build_client, classify, display_address, error_chain,
    read_body,
};

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
    let client = build_client(req.effective_timeout(), &req.tls).map_err(&invalid)?;
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
    let limit = req.effective_max_answer_bytes();
    let body = read_body(response, limit).await.map_err(|e| match e {
        BodyError::TooLarge => ProviderError::TooLarge {
            address: address.clone(),
            limit,
        },
        BodyError::Read(e) => from_reqwest_error(&e, &address, timeout),
    })?;
    decode(status.as_u16(), status.is_success(), json, &body, &address)
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

/// Classifies a transport error of a query to `address`.
fn from_reqwest_error(e: &reqwest::Error, address: &str, timeout: Duration) -> ProviderError {
    let address = address.to_string();
    match classify(e) {
        Failure::Timeout => ProviderError::Timeout { address, timeout },
        Failure::Tls(message) => ProviderError::Tls { address, message },
        Failure::Unreachable(message) => ProviderError::Unreachable { address, message },
        Failure::InvalidRequest(reason) => ProviderError::InvalidRequest { address, reason },
        Failure::Transport(message) => ProviderError::Transport { address, message },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::Auth;

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
