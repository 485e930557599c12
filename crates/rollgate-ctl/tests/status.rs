//! `rollgate list rollouts` and `rollgate get` beside a Rollout the types cannot decode (stored
//! under a looser CRD): the list shows every rollout, the bad one as `invalid: FIELD: ...`;
//! reading the bad one is an error naming the field.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::CustomResourceExt;
use kube::api::{ApiResource, DynamicObject, PostParams};
use rollgate_api::Rollout;
use rollgate_ctl::{CtlError, list, read_rollout};
use rollgate_sim::{SimCluster, SimConfig};
use serde_json::{Value, json};

type R = anyhow::Result<()>;

/// The Rollout CRD with an open schema: the API server stores whatever it is given.
fn loose_rollout_crd() -> anyhow::Result<CustomResourceDefinition> {
    let mut crd = serde_json::to_value(Rollout::crd())?;
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"] =
        json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true});
    Ok(serde_json::from_value(crd)?)
}

fn rollout(name: &str, replicas: Value) -> Value {
    json!({
        "apiVersion": "rollgate.dev/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                         "spec": {"containers": [{"name": "app", "image": "app:1"}]}},
            "strategy": {"blueGreen": {"activeService": format!("{name}-active")}}
        }
    })
}

/// A cluster holding `good` (2 replicas) and `bad` (`replicas: 2147483648`).
async fn cluster() -> anyhow::Result<SimCluster> {
    let sim = SimCluster::new(SimConfig::default());
    sim.register_crd(&loose_rollout_crd()?);
    let api = Api::<DynamicObject>::namespaced_with(
        sim.client(),
        "default",
        &ApiResource::erase::<Rollout>(&()),
    );
    for obj in [
        rollout("bad", json!(2_147_483_648_i64)),
        rollout("good", json!(2)),
    ] {
        api.create(&PostParams::default(), &serde_json::from_value(obj)?)
            .await?;
    }
    Ok(sim)
}

#[tokio::test]
async fn list_shows_every_rollout_and_the_undecodable_one_as_invalid() -> R {
    let sim = cluster().await?;
    let rows = list(&sim.client(), Some("default")).await?;
    let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["bad", "good"]);
    assert_eq!(rows[1].ready, "0/2");
    assert_eq!(rows[1].strategy, "BlueGreen");
    let bad = &rows[0];
    assert!(
        bad.message
            .starts_with("invalid: spec.replicas: invalid value: integer `2147483648`"),
        "{bad:?}"
    );
    assert_eq!((bad.phase.as_str(), bad.ready.as_str()), ("-", "-"));
    let all = list(&sim.client(), None).await?;
    assert_eq!(all.len(), 2);
    Ok(())
}

#[tokio::test]
async fn reading_the_undecodable_rollout_names_the_field() -> R {
    let sim = cluster().await?;
    let client = sim.client();
    assert_eq!(
        read_rollout(&client, "default", "good")
            .await?
            .spec
            .replicas,
        Some(2)
    );
    for err in [
        read_rollout(&client, "default", "bad").await.err(),
        rollgate_ctl::tree::fetch(&client, "default", "bad")
            .await
            .err(),
    ] {
        let Some(err) = err else {
            panic!("the bad rollout was read");
        };
        assert!(matches!(err, CtlError::Undecodable { .. }), "{err:?}");
        let text = err.to_string();
        assert!(
            text.starts_with(
                "rollout default/bad cannot be read: spec.replicas: invalid value: integer \
                 `2147483648`, expected i32"
            ),
            "{text}"
        );
    }
    Ok(())
}
