//! TLS to a real Prometheus serving a certificate from a test CA: trusted through the CA
//! bundle, accepted when insecure, refused otherwise.

use crate::common;

use rollgate_prometheus::{Auth, ProviderError, QueryResult, Request, Tls, query};
use rollgate_promtest::ScrapeConfig;

use common::{prometheus, test_certs};

#[tokio::test]
async fn tls_with_ca_bundle_insecure_and_untrusted() {
    let certs = test_certs();
    let prom = prometheus(
        ScrapeConfig::new()
            .tls(&certs.cert_pem, &certs.key_pem)
            .basic_auth("alice", "wonderland"),
    )
    .await;
    let address = prom.address();
    assert!(address.starts_with("https://127.0.0.1:"), "{address}");
    let request = |tls: Tls| {
        let mut request = Request::new(&address, "1+1");
        request.tls = tls;
        request.auth = Auth::Basic {
            user: "alice".into(),
            password: "wonderland".into(),
        };
        request
    };

    let trusted = request(Tls {
        insecure: false,
        ca_pem: Some(certs.ca_pem.clone().into_bytes()),
    });
    assert_eq!(query(&trusted).await, Ok(QueryResult::Scalar(2.0)));

    let insecure = request(Tls {
        insecure: true,
        ca_pem: None,
    });
    assert_eq!(query(&insecure).await, Ok(QueryResult::Scalar(2.0)));

    let untrusted = query(&request(Tls::default())).await;
    let Err(error) = untrusted else {
        panic!("expected a TLS error, got {untrusted:?}")
    };
    assert!(matches!(&error, ProviderError::Tls { .. }), "{error:?}");
    let text = error.to_string();
    assert!(
        text.starts_with(&format!("TLS with Prometheus at {address} failed: ")),
        "{text}"
    );
    assert!(text.contains("UnknownIssuer"), "{text}");

    let other_ca = test_certs();
    let wrong_ca = query(&request(Tls {
        insecure: false,
        ca_pem: Some(other_ca.ca_pem.into_bytes()),
    }))
    .await;
    assert!(
        matches!(&wrong_ca, Err(ProviderError::Tls { .. })),
        "{wrong_ca:?}"
    );

    // Plain HTTP to the HTTPS port: Go answers 400.
    let plain = query(&Request::new(address.replacen("https", "http", 1), "1+1")).await;
    assert!(
        matches!(&plain, Err(ProviderError::Http { status: 400, .. })),
        "{plain:?}"
    );
}

#[tokio::test]
async fn https_to_a_plain_http_server_is_a_tls_error() {
    let prom = prometheus(ScrapeConfig::new()).await;
    let address = prom.address().replacen("http", "https", 1);
    let result = query(&Request::new(&address, "1+1")).await;
    assert!(
        matches!(&result, Err(ProviderError::Tls { .. })),
        "{result:?}"
    );
}
