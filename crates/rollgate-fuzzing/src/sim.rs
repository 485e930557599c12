//! `sim_request`: HTTP requests answered by the simulated API server, in process and
//! synchronously (no socket), one after the other on one fresh cluster.

use std::sync::OnceLock;

use bytes::Bytes;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use rollgate_sim::{SimCluster, SimConfig};

use crate::input::{now, text};

/// A line holding only this separates two requests.
pub const SEPARATOR: &str = "=====";

/// Most requests answered per input.
pub const MAX_REQUESTS: usize = 32;

/// The input: requests separated by lines `=====`, each written as on the wire: a line
/// `METHOD TARGET` (`GET /api/v1/namespaces/default/pods?labelSelector=app%3Dweb`), header
/// lines `Name: value`, an empty line, and the body. A request the `http` crate cannot
/// represent (bad method, target or header) is skipped. The cluster starts with the default
/// namespaces and every rollgate CRD, under a paused clock.
///
/// Checks that no request makes the server panic.
pub fn sim_request(data: &[u8]) {
    let Some(text) = text(data) else { return };
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
    else {
        return;
    };
    let _entered = runtime.enter();
    let sim = SimCluster::new(SimConfig {
        base_time: Some(now()),
        ..SimConfig::default()
    });
    for crd in crds() {
        sim.register_crd(crd);
    }
    for request in requests(text).into_iter().take(MAX_REQUESTS) {
        let _ = sim.respond(request);
    }
}

/// Every rollgate CRD, built once.
fn crds() -> &'static [CustomResourceDefinition] {
    static CRDS: OnceLock<Vec<CustomResourceDefinition>> = OnceLock::new();
    CRDS.get_or_init(rollgate_api::crds::all)
}

/// The requests of the input that the `http` crate can represent.
pub fn requests(text: &str) -> Vec<http::Request<Bytes>> {
    let mut blocks = vec![String::new()];
    for line in text.split_inclusive('\n') {
        if line.trim_end_matches(['\r', '\n']) == SEPARATOR {
            blocks.push(String::new());
        } else if let Some(b) = blocks.last_mut() {
            b.push_str(line);
        }
    }
    blocks.iter().filter_map(|b| request(b)).collect()
}

fn request(block: &str) -> Option<http::Request<Bytes>> {
    let (head, body) = match block.split_once("\n\n") {
        Some((head, body)) => (head, body),
        None => (block.trim_end_matches('\n'), ""),
    };
    let mut lines = head.lines();
    let (method, target) = lines.next()?.trim().split_once(' ')?;
    let mut builder = http::Request::builder().method(method).uri(target.trim());
    for line in lines {
        let (name, value) = line.split_once(':')?;
        builder = builder.header(name.trim(), value.trim());
    }
    builder.body(Bytes::from(body.to_string())).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_read_as_written_on_the_wire() {
        let r = requests(
            "POST /api/v1/namespaces/default/configmaps?fieldManager=me\n\
             Content-Type: application/json\n\n{\"a\": 1}\n=====\nGET /version\n",
        );
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].method(), http::Method::POST);
        assert_eq!(r[0].uri().query(), Some("fieldManager=me"));
        assert_eq!(r[0].headers()["content-type"], "application/json");
        assert_eq!(r[0].body().as_ref(), b"{\"a\": 1}\n");
        assert_eq!(r[1].uri().path(), "/version");
        assert!(r[1].body().is_empty());
    }

    #[test]
    fn the_server_answers_a_request_in_process() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("runtime");
        let _entered = runtime.enter();
        let sim = SimCluster::new(SimConfig::default());
        let mut r = requests(
            "POST /api/v1/namespaces/default/configmaps\nContent-Type: application/json\n\n\
             {\"metadata\": {\"name\": \"c\"}, \"data\": {\"k\": \"v\"}}\n=====\n\
             GET /api/v1/namespaces/default/configmaps/c\n=====\nGET /api/v1/nowhere\n",
        )
        .into_iter()
        .map(|r| sim.respond(r));
        assert_eq!(
            r.next().map(|r| r.status()),
            Some(http::StatusCode::CREATED)
        );
        let got = r.next().expect("a response");
        let body: serde_json::Value = serde_json::from_slice(got.body()).expect("JSON");
        assert_eq!(body["data"]["k"], "v");
        assert_eq!(
            r.next().map(|r| r.status()),
            Some(http::StatusCode::NOT_FOUND)
        );
    }
}
