//! Injected faults as kube's client sees them: error answers with real Status bodies, latency,
//! cut watches, 410 on resume, lost responses, an unresponsive server and a client killed
//! after its k-th write; scoped by verb, resource and client, and reproducible from a seed.

use std::collections::BTreeSet;
use std::time::Duration;

use futures::{FutureExt, StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use kube::api::{ListParams, PostParams, WatchEvent, WatchParams};
use kube::runtime::watcher;
use kube::{Api, Client, Config, ResourceExt};
use rollgate_sim::{Fault, FaultPlan, FaultRule, SimCluster, SimConfig, Verb};
use serde_json::json;

type R = anyhow::Result<()>;

fn cm(name: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}, "data": {"k": "v"}})).expect("cm")
}

fn secret(name: &str) -> Secret {
    serde_json::from_value(json!({"metadata": {"name": name}})).expect("secret")
}

fn replica_set(name: &str, replicas: i32) -> ReplicaSet {
    serde_json::from_value(json!({"metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"rs": name}},
                 "template": {"metadata": {"labels": {"rs": name}},
                              "spec": {"containers": [{"name": "c", "image": "web:1"}]}}}}))
    .expect("rs")
}

/// `(code, reason)` of an API error.
fn api_error<T: std::fmt::Debug>(r: Result<T, kube::Error>) -> (u16, String) {
    match r {
        Err(kube::Error::Api(s)) => (s.code, s.reason.clone()),
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn configmaps(client: Client) -> Api<ConfigMap> {
    Api::namespaced(client, "default")
}

fn always(fault: Fault) -> FaultRule {
    FaultRule::new(fault, 1.0)
}

fn plan(rule: FaultRule) -> FaultPlan {
    FaultPlan::new(1).rule(rule)
}

#[tokio::test]
async fn a_conflict_answers_a_write_409_unhandled_and_audited() -> R {
    let sim = SimCluster::new(SimConfig::default());
    let api = configmaps(sim.client_as("ctl"));
    api.create(&PostParams::default(), &cm("a")).await?;
    sim.set_faults(plan(always(Fault::Conflict).resources(["configmaps"])))?;

    let err = api.replace("a", &PostParams::default(), &cm("a")).await;
    assert_eq!(api_error(err), (409, "Conflict".into()));
    assert_eq!(
        api_error(api.create(&PostParams::default(), &cm("b")).await).0,
        409
    );
    assert!(
        api.get_opt("b").await?.is_none(),
        "the create was not handled"
    );
    assert!(
        api.get_opt("a").await?.is_some(),
        "reads are never conflicts"
    );

    let codes: Vec<u16> = sim.audit_log().iter().map(|e| e.code).collect();
    assert_eq!(codes, [201, 409, 409]);
    assert_eq!(sim.fault_counts().conflict, 2);
    assert_eq!(sim.writes_by("ctl"), 1, "a refused write is no write");
    Ok(())
}

#[tokio::test]
async fn too_many_requests_says_when_to_retry() -> R {
    let sim = SimCluster::new(SimConfig::default());
    let client = sim.client();
    sim.set_faults(plan(always(Fault::TooManyRequests {
        retry_after: Duration::from_millis(1500),
    })))?;

    let request = http::Request::get("/api/v1/namespaces/default/configmaps")
        .body(kube::client::Body::from(Vec::new()))?;
    let response = client.send(request).await?;
    assert_eq!(response.status(), http::StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        response.headers().get(http::header::RETRY_AFTER),
        Some(&http::HeaderValue::from_static("2")),
        "whole seconds, rounded up"
    );

    match configmaps(client).list(&ListParams::default()).await {
        Err(kube::Error::Api(s)) => {
            assert_eq!((s.code, s.reason.as_str()), (429, "TooManyRequests"));
            let details = s.details.expect("details");
            assert_eq!(details.retry_after_seconds, 2);
        }
        other => panic!("expected 429, got {other:?}"),
    }
    assert_eq!(sim.fault_counts().too_many_requests, 2);
    Ok(())
}

#[tokio::test]
async fn internal_errors_and_unavailability_are_status_answers_scoped_by_verb() -> R {
    let sim = SimCluster::new(SimConfig::default());
    let api = configmaps(sim.client());
    api.create(&PostParams::default(), &cm("a")).await?;
    sim.set_faults(
        FaultPlan::new(3)
            .rule(always(Fault::InternalError).verbs([Verb::List]))
            .rule(always(Fault::Unavailable).verbs([Verb::Get])),
    )?;
    assert_eq!(
        api_error(api.list(&ListParams::default()).await),
        (500, "InternalError".into())
    );
    assert_eq!(
        api_error(api.get("a").await),
        (503, "ServiceUnavailable".into())
    );
    api.create(&PostParams::default(), &cm("b")).await?;
    let counts = sim.fault_counts();
    assert_eq!((counts.internal_error, counts.unavailable), (1, 1));
    assert_eq!(counts.total(), 2);

    sim.clear_faults();
    assert_eq!(api.list(&ListParams::default()).await?.items.len(), 2);
    assert_eq!(
        sim.fault_counts().total(),
        2,
        "the counts stay after clearing"
    );
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn latency_delays_the_answer_in_virtual_time() -> R {
    let sim = SimCluster::new(SimConfig::default());
    let api = configmaps(sim.client());
    sim.set_faults(plan(always(Fault::Latency(Duration::from_secs(5)))))?;
    let start = tokio::time::Instant::now();
    api.create(&PostParams::default(), &cm("a")).await?;
    assert_eq!(start.elapsed(), Duration::from_secs(5));
    assert!(
        sim.get_object("v1", "configmaps", Some("default"), "a")
            .is_some()
    );
    assert_eq!(sim.fault_counts().latency, 1);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_cut_watch_ends_cleanly_and_the_watcher_rewatches_without_missing_a_change() -> R {
    let sim = SimCluster::new(SimConfig::default());
    let api = configmaps(sim.client());
    sim.set_faults(plan(
        always(Fault::CutWatch {
            after: Duration::from_secs(10),
        })
        .resources(["configmaps"]),
    ))?;

    // A raw watch ends (no error) when the connection drops, long before its timeout.
    let mut raw = api
        .watch(&WatchParams::default().timeout(290), "0")
        .await?
        .boxed();
    assert!(raw.try_next().await?.is_none(), "the stream closed");
    assert_eq!(sim.fault_counts().cut_watch, 1);

    // kube's watcher watches again from where it was and sees every change.
    let mut events = watcher(api.clone(), watcher::Config::default()).boxed();
    let mut lists = 0;
    loop {
        match events.try_next().await? {
            Some(watcher::Event::Init) => lists += 1,
            Some(watcher::Event::InitDone) => break,
            _ => {}
        }
    }
    let writer = {
        let api = api.clone();
        tokio::spawn(async move {
            for i in 0..6 {
                tokio::time::sleep(Duration::from_secs(7)).await;
                api.create(&PostParams::default(), &cm(&format!("c{i}")))
                    .await?;
            }
            anyhow::Ok(())
        })
    };
    let mut seen = BTreeSet::new();
    while seen.len() < 6 {
        match events.try_next().await? {
            Some(watcher::Event::Apply(o)) => {
                seen.insert(o.name_any());
            }
            Some(watcher::Event::Init) => lists += 1,
            Some(_) => {}
            None => panic!("the watcher ended"),
        }
    }
    writer.await??;
    assert_eq!(lists, 1, "a cut watch needs no relist");
    assert!(
        sim.fault_counts().cut_watch >= 4,
        "{:?}",
        sim.fault_counts()
    );
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn gone_on_resume_makes_the_watcher_relist_and_converge() -> R {
    let sim = SimCluster::new(SimConfig::default());
    let api = configmaps(sim.client());
    api.create(&PostParams::default(), &cm("a")).await?;
    api.create(&PostParams::default(), &cm("b")).await?;
    sim.set_faults(plan(always(Fault::GoneOnResume).resources(["configmaps"])))?;

    // A list asking for a resourceVersion gets 410 Expired; one from the current state does not.
    let rv = api
        .list(&ListParams::default())
        .await?
        .metadata
        .resource_version;
    let rv = rv.expect("a list has a resourceVersion");
    let exact = ListParams::default()
        .at(&rv)
        .matching(kube::api::VersionMatch::Exact);
    assert_eq!(api_error(api.list(&exact).await), (410, "Expired".into()));

    // The watcher's watch from the listed version gets 410: it lists again, and its view
    // converges on the current state.
    let mut events = watcher(api.clone(), watcher::Config::default()).boxed();
    let mut lists = 0;
    let mut errors = 0;
    let mut building = BTreeSet::new();
    let mut state = BTreeSet::new();
    let mut wrote = false;
    for round in 0.. {
        assert!(round < 1000, "the watcher did not converge");
        match events.next().await {
            Some(Ok(watcher::Event::Init)) => {
                lists += 1;
                building.clear();
            }
            Some(Ok(watcher::Event::InitApply(o))) => {
                building.insert(o.name_any());
            }
            Some(Ok(watcher::Event::InitDone)) => {
                state = std::mem::take(&mut building);
                if !wrote {
                    api.create(&PostParams::default(), &cm("c")).await?;
                    api.delete("a", &Default::default()).await?;
                    wrote = true;
                } else if state == BTreeSet::from(["b".to_string(), "c".to_string()]) {
                    break;
                }
            }
            Some(Ok(watcher::Event::Apply(o))) => {
                state.insert(o.name_any());
            }
            Some(Ok(watcher::Event::Delete(o))) => {
                state.remove(&o.name_any());
            }
            Some(Err(_)) => {
                errors += 1;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            None => panic!("the watcher ended"),
        }
    }
    assert!(lists >= 2, "relisted: {lists}");
    assert!(errors >= 1);
    assert!(sim.fault_counts().gone_on_resume >= 2);
    Ok(())
}

#[tokio::test]
async fn a_lost_response_leaves_the_write_applied() -> R {
    let sim = SimCluster::new(SimConfig::default());
    let api = configmaps(sim.client_as("ctl"));
    sim.set_faults(plan(always(Fault::LostResponse).verbs([Verb::Create])))?;

    let err = api.create(&PostParams::default(), &cm("a")).await;
    assert_eq!(api_error(err), (504, "Timeout".into()));
    sim.clear_faults();
    assert!(api.get_opt("a").await?.is_some(), "written all the same");
    // The client's retry meets its own write.
    let again = api.create(&PostParams::default(), &cm("a")).await;
    assert_eq!(api_error(again), (409, "AlreadyExists".into()));

    let codes: Vec<u16> = sim.audit_log().iter().map(|e| e.code).collect();
    assert_eq!(
        codes,
        [201, 409],
        "audited with the code the server answered"
    );
    assert_eq!(sim.writes_by("ctl"), 1);
    assert_eq!(sim.fault_counts().lost_response, 1);
    Ok(())
}

#[tokio::test]
async fn rate_zero_never_faults_and_rate_one_always_does() -> R {
    let sim = SimCluster::new(SimConfig::default());
    let api = configmaps(sim.client());
    api.create(&PostParams::default(), &cm("a")).await?;
    sim.set_faults(FaultPlan::new(5).rule(FaultRule::new(Fault::Unavailable, 0.0)))?;
    for _ in 0..40 {
        api.get("a").await?;
    }
    assert_eq!(sim.fault_counts().total(), 0);
    sim.set_faults(FaultPlan::new(5).rule(FaultRule::new(Fault::Unavailable, 1.0)))?;
    for _ in 0..40 {
        assert_eq!(api_error(api.get("a").await).0, 503);
    }
    assert_eq!(sim.fault_counts().unavailable, 40);

    let refused = sim.set_faults(FaultPlan::new(5).rule(FaultRule::new(Fault::Conflict, 1.5)));
    assert_eq!(
        refused.map_err(|e| e.to_string()),
        Err("rules[0].rate: expected a number from 0 to 1, got 1.5".into())
    );
    Ok(())
}

#[tokio::test]
async fn rules_are_scoped_by_verb_resource_subresource_and_agent() -> R {
    let sim = SimCluster::new(SimConfig::default());
    let a = configmaps(sim.client_as("ctl-a"));
    let b = configmaps(sim.client_as("ctl-b"));
    let a_secrets = Api::<Secret>::namespaced(sim.client_as("ctl-a"), "default");
    let a_sets = Api::<ReplicaSet>::namespaced(sim.client_as("ctl-a"), "default");
    a.create(&PostParams::default(), &cm("x")).await?;
    a_secrets
        .create(&PostParams::default(), &secret("s"))
        .await?;
    let rs = a_sets
        .create(&PostParams::default(), &replica_set("web", 0))
        .await?;
    sim.set_faults(
        FaultPlan::new(9)
            .rule(
                always(Fault::Unavailable)
                    .verbs([Verb::Update])
                    .resources(["configmaps"])
                    .agents(["ctl-a"]),
            )
            .rule(always(Fault::Conflict).resources(["replicasets/status"])),
    )?;

    assert_eq!(
        api_error(a.replace("x", &PostParams::default(), &cm("x")).await).0,
        503
    );
    b.replace("x", &PostParams::default(), &cm("x")).await?;
    a.create(&PostParams::default(), &cm("y")).await?;
    a_secrets
        .replace("s", &PostParams::default(), &secret("s"))
        .await?;
    let current = a_sets.get("web").await?;
    assert_eq!(
        api_error(
            a_sets
                .replace_status("web", &PostParams::default(), &current)
                .await
        ),
        (409, "Conflict".into())
    );
    a_sets
        .replace("web", &PostParams::default(), &current)
        .await?;
    assert_ne!(
        a_sets.get("web").await?.resource_version(),
        rs.resource_version()
    );
    let counts = sim.fault_counts();
    assert_eq!((counts.unavailable, counts.conflict), (1, 1));
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn the_clusters_own_writes_are_never_faulted() -> R {
    let sim = SimCluster::new(SimConfig::default());
    Api::<ReplicaSet>::namespaced(sim.client(), "default")
        .create(&PostParams::default(), &replica_set("web", 2))
        .await?;
    sim.set_faults(plan(always(Fault::InternalError)))?;
    // The kubelet marks the pods ready and the ReplicaSet controller counts them meanwhile.
    tokio::time::sleep(Duration::from_secs(30)).await;
    let rs = sim
        .get_object("apps/v1", "replicasets", Some("default"), "web")
        .expect("rs");
    assert_eq!(rs["status"]["readyReplicas"], 2);
    assert_eq!(sim.fault_counts().total(), 0);
    Ok(())
}

/// The answer codes of 40 reads under `Unavailable` at rate 0.5 with `seed`.
async fn codes_with_seed(seed: u64) -> anyhow::Result<Vec<u16>> {
    let sim = SimCluster::new(SimConfig::default());
    let api = configmaps(sim.client());
    api.create(&PostParams::default(), &cm("a")).await?;
    sim.set_faults(FaultPlan::new(seed).rule(FaultRule::new(Fault::Unavailable, 0.5)))?;
    let mut codes = Vec::new();
    for _ in 0..40 {
        codes.push(match api.get("a").await {
            Ok(_) => 200,
            Err(kube::Error::Api(s)) => s.code,
            Err(e) => return Err(e.into()),
        });
    }
    Ok(codes)
}

#[tokio::test]
async fn the_same_seed_injects_the_same_faults() -> R {
    let first = codes_with_seed(7).await?;
    assert_eq!(first, codes_with_seed(7).await?);
    assert!(first.contains(&200) && first.contains(&503), "{first:?}");
    assert_ne!(first, codes_with_seed(8).await?);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn kill_after_writes_stops_exactly_after_k_writes_and_ends_its_watches() -> R {
    let sim = SimCluster::new(SimConfig::default());
    let ctl = configmaps(sim.client_as("ctl"));
    let other = configmaps(sim.client_as("other"));
    let mut watch = ctl.watch(&WatchParams::default(), "0").await?.boxed();
    sim.kill_after_writes("ctl", 3);
    // Every create is on its way (past the client's cut-off check) before the first lands.
    sim.set_faults(plan(
        always(Fault::Latency(Duration::from_secs(1))).verbs([Verb::Create]),
    ))?;

    // Ten concurrent creates: exactly three land.
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let ctl = ctl.clone();
            tokio::spawn(async move {
                ctl.create(&PostParams::default(), &cm(&format!("c{i}")))
                    .await
            })
        })
        .collect();
    let mut landed = 0;
    for t in tasks {
        match t.await? {
            Ok(_) => landed += 1,
            Err(kube::Error::Api(s)) => assert_eq!(s.code, 503),
            Err(e) => return Err(e.into()),
        }
    }
    assert_eq!(landed, 3);
    assert_eq!(sim.writes_by("ctl"), 3);
    assert_eq!(
        sim.list_objects("v1", "configmaps", Some("default")).len(),
        3
    );
    let audited = sim
        .audit_log()
        .iter()
        .filter(|e| e.user_agent.as_deref() == Some("ctl"))
        .count();
    assert_eq!(audited, 3, "the refused writes never reached the server");

    // Its open watch ended: it does not see a later change.
    other.create(&PostParams::default(), &cm("later")).await?;
    let mut names = Vec::new();
    while let Some(ev) = watch.try_next().await? {
        if let WatchEvent::Added(o) = ev {
            names.push(o.name_any());
        }
    }
    assert!(!names.contains(&"later".to_string()), "{names:?}");

    // A restarted process (same identity) is let back in.
    sim.set_partitioned("ctl", false);
    ctl.create(&PostParams::default(), &cm("again")).await?;
    assert_eq!(sim.writes_by("ctl"), 4);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn an_unresponsive_server_answers_nothing_until_it_recovers() -> R {
    let sim = SimCluster::new(SimConfig::default());
    let cms = configmaps(sim.client());
    let pods = Api::<Pod>::namespaced(sim.client(), "default");
    Api::<ReplicaSet>::namespaced(sim.client(), "default")
        .create(&PostParams::default(), &replica_set("web", 1))
        .await?;
    let mut pod_events = pods.watch(&WatchParams::default(), "0").await?.boxed();
    // The pod as created.
    assert!(matches!(
        pod_events.try_next().await?,
        Some(WatchEvent::Added(_))
    ));

    sim.set_unresponsive(true);
    let read = tokio::spawn({
        let cms = cms.clone();
        async move { cms.list(&ListParams::default()).await }
    });
    let write = tokio::spawn({
        let cms = cms.clone();
        async move { cms.create(&PostParams::default(), &cm("a")).await }
    });
    // Meanwhile the pod becomes ready (the cluster keeps running), but nobody hears of it.
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert!(!read.is_finished() && !write.is_finished());
    assert!(
        sim.get_object("v1", "configmaps", Some("default"), "a")
            .is_none()
    );
    assert!(
        pod_events.next().now_or_never().is_none(),
        "the watch stream is held back"
    );
    let pod = sim.list_objects("v1", "pods", Some("default"));
    assert_eq!(pod.len(), 1);

    sim.set_unresponsive(false);
    write.await??;
    read.await?.expect("answered normally after the outage");
    match pod_events.try_next().await? {
        Some(WatchEvent::Modified(_)) => {}
        other => panic!("expected the held-back change, got {other:?}"),
    }
    Ok(())
}

#[tokio::test]
async fn faults_and_partitions_apply_over_http_too() -> R {
    let sim = SimCluster::new(SimConfig::default());
    let (addr, server) = sim.serve("127.0.0.1:0".parse()?).await?;
    let mut config = Config::new(format!("http://{addr}").parse()?);
    // See the first answer, not kube's retries of 429/503/504.
    config.default_retry = false;
    let client = Client::try_from(config)?;
    let api = configmaps(client.clone());
    sim.set_faults(plan(always(Fault::Conflict)))?;
    assert_eq!(
        api_error(api.create(&PostParams::default(), &cm("a")).await),
        (409, "Conflict".into())
    );
    sim.set_faults(plan(always(Fault::TooManyRequests {
        retry_after: Duration::from_secs(3),
    })))?;
    let request = http::Request::get("/api/v1/namespaces/default/configmaps")
        .body(kube::client::Body::from(Vec::new()))?;
    let response = client.send(request).await?;
    assert_eq!(response.status(), http::StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        response.headers().get(http::header::RETRY_AFTER),
        Some(&http::HeaderValue::from_static("3"))
    );
    sim.clear_faults();

    // A client over HTTP with an identity of its own can be cut off too.
    let mut config = Config::new(format!("http://{addr}").parse()?);
    config.default_retry = false;
    config.headers.push((
        http::header::USER_AGENT,
        http::HeaderValue::from_static("ctl-http"),
    ));
    let cut = configmaps(Client::try_from(config)?);
    cut.create(&PostParams::default(), &cm("b")).await?;
    sim.set_partitioned("ctl-http", true);
    assert_eq!(api_error(cut.get("b").await).0, 503);
    assert!(api.get_opt("b").await?.is_some(), "others still reach it");
    sim.set_partitioned("ctl-http", false);
    assert!(cut.get_opt("b").await?.is_some());
    server.abort();
    Ok(())
}
