//! The simulated cluster served over a real socket (plain HTTP/1.1), as kubectl sees it.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{ListParams, PostParams, WatchEvent, WatchParams};
use kube::{Api, Client, Config};
use rollgate_sim::{SimCluster, SimConfig};
use serde_json::json;

#[tokio::test]
async fn a_kube_client_over_http_lists_creates_and_watches() -> anyhow::Result<()> {
    let sim = SimCluster::new(SimConfig::default());
    let (addr, server) = sim.serve("127.0.0.1:0".parse()?).await?;
    assert_ne!(addr.port(), 0);
    let client = Client::try_from(Config::new(format!("http://{addr}").parse()?))?;

    let version = client.apiserver_version().await?;
    assert_eq!(
        (version.major.as_str(), version.minor.as_str()),
        ("1", "32")
    );

    let namespaces: Vec<String> = Api::<Namespace>::all(client.clone())
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    assert_eq!(namespaces, ["default", "kube-public", "kube-system"]);

    let cms = Api::<ConfigMap>::namespaced(client.clone(), "default");
    let cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "c"}, "data": {"k": "v"}}))?;
    let created = cms.create(&PostParams::default(), &cm).await?;
    let rv = created.metadata.resource_version.clone().expect("rv");

    // A streamed watch over the socket delivers a later change.
    let mut stream = cms
        .watch(&WatchParams::default().timeout(30), &rv)
        .await?
        .boxed();
    let cm2: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "d"}}))?;
    cms.create(&PostParams::default(), &cm2).await?;
    let ev = tokio::time::timeout(Duration::from_secs(5), stream.try_next())
        .await??
        .expect("an event");
    match ev {
        WatchEvent::Added(o) => assert_eq!(o.metadata.name.as_deref(), Some("d")),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(
        sim.get_object("v1", "configmaps", Some("default"), "c")
            .expect("stored")["data"]["k"],
        "v"
    );

    // Errors keep their Status body over HTTP.
    let err = cms.get("missing").await.expect_err("404");
    match err {
        kube::Error::Api(s) => assert_eq!((s.code, s.reason.as_str()), (404, "NotFound")),
        other => panic!("unexpected {other:?}"),
    }
    server.abort();
    Ok(())
}

#[tokio::test]
async fn discovery_and_openapi_over_http() -> anyhow::Result<()> {
    let sim = SimCluster::new(SimConfig::default());
    let (addr, server) = sim.serve("127.0.0.1:0".parse()?).await?;
    let client = Client::try_from(Config::new(format!("http://{addr}").parse()?))?;
    let get = |path: &str| {
        let client = client.clone();
        let path = path.to_string();
        async move {
            let req = http::Request::get(path).body(Vec::new())?;
            anyhow::Ok(client.request::<serde_json::Value>(req).await?)
        }
    };
    let core = get("/api/v1").await?;
    let pods = core["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .find(|r| r["name"] == "pods")
        .expect("pods");
    assert_eq!(pods["shortNames"], json!(["po"]));
    assert_eq!(pods["namespaced"], true);
    let apps = get("/apis/apps").await?;
    assert_eq!(apps["preferredVersion"]["groupVersion"], "apps/v1");
    let index = get("/openapi/v3").await?;
    let url = index["paths"]["apis/apps/v1"]["serverRelativeURL"]
        .as_str()
        .expect("apps/v1 document");
    let doc = get(url).await?;
    let patch = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/replicasets/{name}"]["patch"];
    assert_eq!(
        patch["x-kubernetes-group-version-kind"]["kind"],
        "ReplicaSet"
    );
    assert!(
        patch["parameters"]
            .as_array()
            .expect("parameters")
            .iter()
            .any(|p| p["name"] == "fieldValidation")
    );
    server.abort();
    Ok(())
}
