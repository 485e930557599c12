//! `run` against the simulated API server: each command's patch lands on the stored object,
//! with the CLI's field manager and the resourceVersion it read; 409s are retried.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use rollgate_api::Rollout;
use rollgate_ctl::{Command, CtlError, FIELD_MANAGER, MAX_ATTEMPTS, Timestamp, run};
use rollgate_sim::{SimCluster, SimConfig};
use serde_json::{Value, json};

type R = anyhow::Result<()>;

const NS: &str = "default";

fn now() -> Timestamp {
    "2025-03-01T12:00:00Z".parse().expect("timestamp")
}

fn template(image: &str) -> Value {
    json!({
        "metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [{"name": "web", "image": image}]}
    })
}

/// A simulated cluster serving rollgate's resources.
fn cluster() -> (SimCluster, Client) {
    let sim = SimCluster::new(SimConfig::default());
    for crd in rollgate_api::crds::all() {
        sim.register_crd(&crd);
    }
    let client = sim.client();
    (sim, client)
}

fn rollouts(client: &Client) -> Api<Rollout> {
    Api::namespaced(client.clone(), NS)
}

/// Creates Rollout `web` (`strategy`, image web:2) and writes `status` through the status
/// subresource, as the controller would.
async fn create(client: &Client, strategy: Value, status: Value) -> anyhow::Result<Rollout> {
    let r: Rollout = serde_json::from_value(json!({
        "apiVersion": "rollgate.dev/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": template("web:2"),
            "strategy": strategy
        }
    }))?;
    let api = rollouts(client);
    api.create(&PostParams::default(), &r).await?;
    Ok(api
        .patch_status(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": status })),
        )
        .await?)
}

fn bluegreen() -> Value {
    json!({"blueGreen": {"activeService": "web-active"}})
}

fn in_flight(extra: Value) -> Value {
    let mut s = json!({"currentPodHash": "new", "stableRS": "old", "currentRevision": 2,
                       "phase": "Progressing", "message": "kept"});
    if let (Some(s), Value::Object(e)) = (s.as_object_mut(), extra) {
        s.extend(e);
    }
    s
}

async fn ctl(client: &Client, cmd: Command) -> Result<String, CtlError> {
    run(client, NS, "web", &cmd, now()).await
}

async fn stored(client: &Client) -> anyhow::Result<Rollout> {
    Ok(rollouts(client).get("web").await?)
}

/// The mutating requests that reached the Rollout `web`: (method, path ends with /status, code,
/// field manager).
fn rollout_writes(sim: &SimCluster) -> Vec<(String, bool, u16, Option<String>)> {
    sim.audit_log()
        .into_iter()
        .filter(|e| e.path.contains("/rollouts/web"))
        .map(|e| {
            (
                e.method,
                e.path.ends_with("/status"),
                e.code,
                e.field_manager,
            )
        })
        .collect()
}

#[tokio::test]
async fn promote_clears_pause_conditions_and_keeps_the_rest_of_the_status() -> R {
    let (sim, client) = cluster();
    create(
        &client,
        bluegreen(),
        in_flight(json!({"controllerPause": true,
            "pauseConditions": [{"reason": "BlueGreenPause", "startTime": "2025-03-01T11:00:00Z"}]})),
    )
    .await?;
    let before = stored(&client).await?;
    sim.clear_audit_log();

    let msg = ctl(&client, Command::Promote { full: false }).await?;
    assert_eq!(msg, "rollout 'default/web' promoted (BlueGreenPause ended)");

    let after = stored(&client).await?;
    let status = after.status.clone().unwrap_or_default();
    assert!(status.pause_conditions.is_empty(), "{status:?}");
    assert_eq!(status.controller_pause, Some(true));
    assert_eq!(status.message.as_deref(), Some("kept"));
    assert_eq!(after.spec, before.spec);
    assert_ne!(
        after.metadata.resource_version,
        before.metadata.resource_version
    );
    assert_eq!(
        rollout_writes(&sim),
        [("PATCH".into(), true, 200, Some(FIELD_MANAGER.into()))]
    );

    // Promoting again: nothing is paused any more.
    let e = ctl(&client, Command::Promote { full: false })
        .await
        .expect_err("not paused");
    assert!(matches!(e, CtlError::NotPaused { .. }), "{e:?}");
    Ok(())
}

#[tokio::test]
async fn promote_of_a_canary_step_advances_the_stored_step_index() -> R {
    let (_sim, client) = cluster();
    let strategy = json!({"canary": {"steps": [
        {"setWeight": 20},
        {"analysis": {"templates": [{"templateName": "success-rate"}]}},
        {"setWeight": 60}
    ]}});
    create(&client, strategy, in_flight(json!({"currentStepIndex": 1}))).await?;
    let msg = ctl(&client, Command::Promote { full: false }).await?;
    assert_eq!(
        msg,
        "rollout 'default/web' promoted (analysis at step 2/3 skipped)"
    );
    let status = stored(&client).await?.status.unwrap_or_default();
    assert_eq!(status.current_step_index, Some(2));

    let msg = ctl(&client, Command::Promote { full: true }).await?;
    assert!(msg.contains("fully promoted"), "{msg}");
    let status = stored(&client).await?.status.unwrap_or_default();
    assert_eq!(status.promote_full, Some(true));
    assert_eq!(status.current_step_index, Some(2));
    Ok(())
}

#[tokio::test]
async fn abort_then_retry_flip_status_abort() -> R {
    let (sim, client) = cluster();
    create(&client, bluegreen(), in_flight(json!({}))).await?;
    sim.clear_audit_log();

    ctl(&client, Command::Abort).await?;
    assert_eq!(
        stored(&client).await?.status.unwrap_or_default().abort,
        Some(true)
    );

    let e = ctl(&client, Command::Abort).await.expect_err("already");
    assert!(matches!(e, CtlError::AlreadyAborted { .. }), "{e:?}");
    let e = ctl(&client, Command::Promote { full: false })
        .await
        .expect_err("aborted");
    assert!(matches!(e, CtlError::Aborted { .. }), "{e:?}");

    ctl(&client, Command::Retry).await?;
    assert_eq!(
        stored(&client).await?.status.unwrap_or_default().abort,
        Some(false)
    );
    let e = ctl(&client, Command::Retry).await.expect_err("not aborted");
    assert!(matches!(e, CtlError::NotAborted { .. }), "{e:?}");

    // Refused commands sent nothing.
    assert_eq!(rollout_writes(&sim).len(), 2, "{:?}", rollout_writes(&sim));
    Ok(())
}

#[tokio::test]
async fn pause_and_resume_write_spec_paused() -> R {
    let (sim, client) = cluster();
    let created = create(&client, bluegreen(), in_flight(json!({}))).await?;
    sim.clear_audit_log();

    assert_eq!(
        ctl(&client, Command::Pause).await?,
        "rollout 'default/web' paused"
    );
    let paused = stored(&client).await?;
    assert_eq!(paused.spec.paused, Some(true));
    assert_eq!(
        paused.metadata.generation,
        created.metadata.generation.map(|g| g + 1)
    );
    let e = ctl(&client, Command::Pause).await.expect_err("already");
    assert!(matches!(e, CtlError::AlreadyPaused { .. }), "{e:?}");
    let e = ctl(&client, Command::Promote { full: false })
        .await
        .expect_err("spec.paused");
    assert!(matches!(e, CtlError::PausedBySpec { .. }), "{e:?}");

    ctl(&client, Command::Resume).await?;
    assert_eq!(stored(&client).await?.spec.paused, Some(false));
    let e = ctl(&client, Command::Resume).await.expect_err("not paused");
    assert!(matches!(e, CtlError::NotPausedBySpec { .. }), "{e:?}");

    assert_eq!(
        rollout_writes(&sim),
        [
            ("PATCH".into(), false, 200, Some(FIELD_MANAGER.into())),
            ("PATCH".into(), false, 200, Some(FIELD_MANAGER.into()))
        ]
    );
    Ok(())
}

#[tokio::test]
async fn set_image_and_restart_write_the_spec() -> R {
    let (_sim, client) = cluster();
    create(&client, bluegreen(), json!({})).await?;

    let msg = ctl(
        &client,
        Command::SetImage {
            images: vec!["web=web:3".parse()?],
        },
    )
    .await?;
    assert_eq!(msg, "rollout 'default/web' image updated: web=web:3");
    let r = stored(&client).await?;
    let pod = r.spec.template.and_then(|t| t.spec).unwrap_or_default();
    assert_eq!(pod.containers.len(), 1);
    assert_eq!(pod.containers[0].image.as_deref(), Some("web:3"));

    let e = ctl(
        &client,
        Command::SetImage {
            images: vec!["nginx=nginx:1".parse()?],
        },
    )
    .await
    .expect_err("unknown container");
    assert_eq!(
        e.to_string(),
        "rollout default/web has no container 'nginx'; its containers are: web"
    );

    ctl(&client, Command::Restart).await?;
    let r = stored(&client).await?;
    assert_eq!(r.spec.restart_at.map(|t| t.0), Some(now()));
    Ok(())
}

/// ReplicaSet `web-<hash>` of revision `revision`, as the controller creates it.
fn replica_set(
    rollout: &str,
    hash: &str,
    revision: i64,
    image: &str,
) -> anyhow::Result<ReplicaSet> {
    let mut t = template(image);
    t["metadata"]["labels"]["rollgate.dev/pod-template-hash"] = json!(hash);
    // As the controller creates it: the template as sent kept in an annotation (the simulated
    // API server, like a real one, fills pod defaults into the ReplicaSet's own template).
    let sent = serde_json::to_string(&serde_json::from_value::<PodTemplateSpec>(template(image))?)?;
    Ok(serde_json::from_value(json!({
        "metadata": {
            "name": format!("{rollout}-{hash}"),
            "labels": {"rollgate.dev/rollout": rollout, "rollgate.dev/pod-template-hash": hash},
            "annotations": {"rollgate.dev/revision": revision.to_string(),
                            "rollgate.dev/template": sent}
        },
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": "web", "rollgate.dev/pod-template-hash": hash}},
            "template": t
        }
    }))?)
}

#[tokio::test]
async fn undo_writes_the_template_of_the_previous_revision() -> R {
    let (_sim, client) = cluster();
    create(
        &client,
        bluegreen(),
        json!({"currentPodHash": "bbb", "stableRS": "bbb", "currentRevision": 2}),
    )
    .await?;
    let sets = Api::<ReplicaSet>::namespaced(client.clone(), NS);
    for rs in [
        replica_set("web", "aaa", 1, "web:1")?,
        replica_set("web", "bbb", 2, "web:2")?,
        // Another rollout's ReplicaSet: never a candidate.
        replica_set("api", "ccc", 1, "api:1")?,
    ] {
        sets.create(&PostParams::default(), &rs).await?;
    }

    let msg = ctl(&client, Command::Undo { to_revision: None }).await?;
    assert_eq!(
        msg,
        "rollout 'default/web' rolled back to revision 1 (ReplicaSet web-aaa, image web:1)"
    );
    let written = stored(&client).await?.spec.template.expect("template");
    assert_eq!(serde_json::to_value(&written)?, template("web:1"));

    let e = ctl(
        &client,
        Command::Undo {
            to_revision: Some(1),
        },
    )
    .await
    .expect_err("already the template");
    assert!(matches!(e, CtlError::AlreadyCurrent { .. }), "{e:?}");
    let e = ctl(
        &client,
        Command::Undo {
            to_revision: Some(7),
        },
    )
    .await
    .expect_err("no revision 7");
    assert_eq!(
        e.to_string(),
        "rollout default/web has no revision 7; revisions available: 1, 2"
    );

    ctl(
        &client,
        Command::Undo {
            to_revision: Some(2),
        },
    )
    .await?;
    let written = stored(&client).await?.spec.template.expect("template");
    assert_eq!(serde_json::to_value(&written)?, template("web:2"));
    Ok(())
}

#[tokio::test]
async fn a_missing_rollout_is_not_found_by_namespace_and_name() -> R {
    let (_sim, client) = cluster();
    let e = run(&client, "kube-system", "nope", &Command::Abort, now())
        .await
        .expect_err("missing");
    assert!(matches!(e, CtlError::NotFound { .. }), "{e:?}");
    assert_eq!(e.to_string(), "rollout kube-system/nope not found");
    Ok(())
}

/// A client that, before each of the first `times` PATCH requests, changes the Rollout
/// through `inner` (as the controller writing its status would), so the PATCH carries a
/// stale resourceVersion.
fn interfering(inner: Client, times: usize) -> Client {
    let left = Arc::new(AtomicUsize::new(times));
    let service = tower::service_fn(move |req: http::Request<kube::client::Body>| {
        let inner = inner.clone();
        let left = left.clone();
        async move {
            let interfere = req.method() == http::Method::PATCH
                && left
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok();
            if interfere {
                let n = left.load(Ordering::SeqCst);
                Api::<Rollout>::namespaced(inner.clone(), NS)
                    .patch_status(
                        "web",
                        &PatchParams::default(),
                        &Patch::Merge(
                            json!({"status": {"message": format!("controller write {n}")}}),
                        ),
                    )
                    .await?;
            }
            inner.send(req).await
        }
    });
    Client::new(service, NS)
}

#[tokio::test]
async fn a_conflict_is_read_planned_and_sent_again() -> R {
    let (sim, client) = cluster();
    create(
        &client,
        bluegreen(),
        in_flight(json!({"controllerPause": true,
            "pauseConditions": [{"reason": "BlueGreenPause", "startTime": "2025-03-01T11:00:00Z"}]})),
    )
    .await?;
    sim.clear_audit_log();

    let racing = interfering(client.clone(), 2);
    let msg = run(&racing, NS, "web", &Command::Promote { full: false }, now()).await?;
    assert!(msg.contains("promoted"), "{msg}");

    let status = stored(&client).await?.status.unwrap_or_default();
    assert!(status.pause_conditions.is_empty(), "{status:?}");
    // The concurrent writes were kept, not overwritten.
    assert_eq!(status.message.as_deref(), Some("controller write 0"));
    let codes: Vec<(Option<String>, u16)> = rollout_writes(&sim)
        .into_iter()
        .map(|(_, _, code, manager)| (manager, code))
        .collect();
    let cli = Some(FIELD_MANAGER.to_string());
    assert_eq!(
        codes,
        [
            (None, 200),
            (cli.clone(), 409),
            (None, 200),
            (cli.clone(), 409),
            (cli, 200)
        ]
    );
    Ok(())
}

#[tokio::test]
async fn conflicts_on_every_attempt_give_up_after_max_attempts() -> R {
    let (sim, client) = cluster();
    create(&client, bluegreen(), in_flight(json!({}))).await?;
    sim.clear_audit_log();

    let racing = interfering(client.clone(), usize::MAX);
    let e = run(&racing, NS, "web", &Command::Abort, now())
        .await
        .expect_err("always stale");
    assert!(
        matches!(e, CtlError::Conflict { attempts, .. } if attempts == MAX_ATTEMPTS),
        "{e:?}"
    );
    assert!(e.to_string().contains("default/web"), "{e}");
    let conflicts = rollout_writes(&sim)
        .iter()
        .filter(|(_, _, code, m)| *code == 409 && m.as_deref() == Some(FIELD_MANAGER))
        .count();
    assert_eq!(conflicts, MAX_ATTEMPTS);
    assert_eq!(
        stored(&client).await?.status.unwrap_or_default().abort,
        None
    );
    Ok(())
}

#[tokio::test]
async fn a_patch_planned_from_a_stale_read_is_refused_by_the_server() -> R {
    let (_sim, client) = cluster();
    let old = create(&client, bluegreen(), in_flight(json!({}))).await?;
    let plan = rollout_plan(&old)?;
    assert_eq!(
        plan.patch["metadata"]["resourceVersion"],
        json!(old.metadata.resource_version)
    );
    // The Rollout changes after it was read.
    rollouts(&client)
        .patch_status(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"message": "newer"}})),
        )
        .await?;
    let e = rollouts(&client)
        .patch_status("web", &PatchParams::default(), &Patch::Merge(&plan.patch))
        .await
        .expect_err("stale resourceVersion");
    assert!(matches!(&e, kube::Error::Api(s) if s.code == 409), "{e:?}");
    assert_eq!(
        stored(&client).await?.status.unwrap_or_default().abort,
        None
    );
    Ok(())
}

fn rollout_plan(r: &Rollout) -> Result<rollgate_ctl::Plan, CtlError> {
    rollgate_ctl::plan(&Command::Abort, r, &[], now())
}
