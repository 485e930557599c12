//! Who wrote: the audit log records each client's User-Agent, and a client can be cut off.

use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::PostParams;
use rollgate_sim::{SimCluster, SimConfig};

fn config_map(name: &str) -> ConfigMap {
    serde_json::from_value(serde_json::json!({"metadata": {"name": name}})).expect("valid")
}

#[tokio::test]
async fn the_audit_log_names_the_writer_and_a_partition_cuts_it_off() {
    let sim = SimCluster::new(SimConfig::default());
    let a = Api::<ConfigMap>::namespaced(sim.client_as("ctl-a"), "default");
    let b = Api::<ConfigMap>::namespaced(sim.client_as("ctl-b"), "default");
    a.create(&PostParams::default(), &config_map("one"))
        .await
        .expect("a writes");
    b.create(&PostParams::default(), &config_map("two"))
        .await
        .expect("b writes");
    let writers: Vec<Option<String>> = sim.audit_log().into_iter().map(|e| e.user_agent).collect();
    assert_eq!(writers, [Some("ctl-a".into()), Some("ctl-b".into())]);

    sim.set_partitioned("ctl-a", true);
    let err = a
        .create(&PostParams::default(), &config_map("three"))
        .await
        .expect_err("cut off");
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 503),
        "{err}"
    );
    assert!(a.get_opt("one").await.is_err(), "reads fail too");
    assert!(b.get_opt("one").await.expect("b still reads").is_some());
    assert_eq!(sim.audit_log().len(), 2, "nothing reached the server");
    sim.set_partitioned("ctl-a", false);
    a.create(&PostParams::default(), &config_map("three"))
        .await
        .expect("back");
}
