//! Promotion pipelines end to end: the real controller on the simulated cluster, staging and
//! production in two namespaces (virtual time), and production in a second simulated cluster
//! served on 127.0.0.1 (real time).

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use rollgate_api::pipeline::{Decision, StagePhase, Verdict};
use rollgate_api::{Approval, ApprovalSpec, PromotionPipeline, Release, Rollout, RolloutPhase};
use rollgate_e2e::*;
use rollgate_sim::SimConfig;
use rollgate_test_support::canary_rollout;
use serde_json::{Value, json};

type R = anyhow::Result<()>;

const PIPELINE_NS: &str = "shop";
const STAGING: &str = "shop-staging";
const PROD: &str = "shop-prod";

fn pinned(image: &str) -> String {
    rollgate_sim::pinned_image(image)
}

/// A canary Rollout `web` of 2 pods running `image`, with `steps`; `spec` merged over it.
fn web(image: &str, steps: Value, spec: Value) -> String {
    let mut s = json!({"replicas": 2});
    rollgate_test_support::merge(&mut s, spec);
    canary_rollout(
        "web",
        image,
        s,
        json!({"canaryService": null, "stableService": null, "steps": steps}),
    )
    .to_string()
}

fn pipeline(production: Value) -> String {
    let mut prod = json!({"name": "production", "rollout": {"name": "web", "namespace": PROD}});
    rollgate_test_support::merge(&mut prod, production);
    json!({"apiVersion": "rollgate.dev/v1alpha1", "kind": "PromotionPipeline",
           "metadata": {"name": "web"},
           "spec": {"containers": ["app"], "stages": [
               {"name": "staging", "rollout": {"name": "web", "namespace": STAGING}},
               prod]}})
    .to_string()
}

async fn stack() -> anyhow::Result<Stack> {
    let mut stack = Stack::new(SimConfig {
        default_ready_delay: Duration::from_secs(2),
        ..Default::default()
    })
    .await?;
    for ns in [PIPELINE_NS, STAGING, PROD] {
        let yaml = format!("apiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}}}\n");
        stack.apply_yaml(&yaml, "default").await?;
    }
    stack.start_controller("controller-1");
    Ok(stack)
}

/// Polls the pipeline's releases until `f` holds for the one running `image` in staging.
async fn wait_release(
    stack: &Stack,
    image: &str,
    what: &str,
    secs: u64,
    f: impl Fn(&Release) -> bool,
) -> anyhow::Result<Release> {
    let api = Api::<Release>::namespaced(stack.client.clone(), PIPELINE_NS);
    let until = tokio::time::Instant::now() + Duration::from_secs(secs);
    let mut last = Vec::new();
    while tokio::time::Instant::now() < until {
        last = api.list(&ListParams::default()).await?.items;
        if let Some(r) = last
            .iter()
            .find(|r| r.spec.source_images.get("app").map(String::as_str) == Some(image))
            && f(r)
        {
            return Ok(r.clone());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let seen: Vec<_> = last
        .iter()
        .map(|r| (r.spec.source_images.clone(), r.status.clone()))
        .collect();
    anyhow::bail!("{what}: not within {secs}s; releases: {seen:?}")
}

/// The Secret `prod-cluster` (key `value`) in the pipeline's namespace: a kubeconfig for the
/// API server at `server`.
async fn prod_cluster_secret(stack: &Stack, server: &str) -> R {
    let kubeconfig = rollgate_local::kubeconfig::Kubeconfig::new("prod", server).render();
    Api::<Secret>::namespaced(stack.client.clone(), PIPELINE_NS)
        .create(
            &PostParams::default(),
            &Secret {
                metadata: kube::api::ObjectMeta {
                    name: Some("prod-cluster".into()),
                    ..Default::default()
                },
                data: Some(BTreeMap::from([(
                    "value".to_string(),
                    ByteString(kubeconfig.into_bytes()),
                )])),
                ..Default::default()
            },
        )
        .await?;
    Ok(())
}

fn phase_in(r: &Release, stage: &str) -> StagePhase {
    r.status
        .as_ref()
        .and_then(|s| s.stages.iter().find(|x| x.name == stage))
        .map_or(StagePhase::Waiting, |s| s.phase)
}

fn message_in(r: &Release, stage: &str) -> String {
    r.status
        .as_ref()
        .and_then(|s| s.stages.iter().find(|x| x.name == stage))
        .and_then(|s| s.message.clone())
        .unwrap_or_default()
}

async fn rollout(stack: &Stack, ns: &str) -> anyhow::Result<Rollout> {
    Ok(stack.rollout(ns, "web").await?)
}

fn image(r: &Rollout) -> String {
    rollgate_engine::pipeline::rollout_images(r, &["app".into()])
        .get("app")
        .cloned()
        .unwrap_or_default()
}

async fn approve(stack: &Stack, release: &str, decision: Decision) -> R {
    Api::<Approval>::namespaced(stack.client.clone(), PIPELINE_NS)
        .create(
            &PostParams::default(),
            &Approval {
                metadata: kube::api::ObjectMeta {
                    generate_name: Some(format!("{release}-")),
                    ..Default::default()
                },
                spec: ApprovalSpec {
                    release: release.into(),
                    stage: "production".into(),
                    decision,
                    approver: "alice".into(),
                    comment: Some("looks good".into()),
                },
            },
        )
        .await?;
    Ok(())
}

/// Staging and production (with its own replicas and env), the pipeline, and release 1
/// (`app:1`) verified in both.
async fn deployed(stack: &Stack, production: Value) -> R {
    stack
        .apply_yaml(
            &web(
                "app:1",
                json!([{"setWeight": 50}, {"pause": {"duration": "2s"}}]),
                json!({}),
            ),
            STAGING,
        )
        .await?;
    stack
        .apply_yaml(
            &web(
                "app:0",
                json!([{"setWeight": 50}, {"pause": {"duration": "2s"}}]),
                json!({"replicas": 3, "template": {"spec": {"containers": [
                    {"name": "app", "image": "app:0", "env": [{"name": "REGION", "value": "eu"}]}]}}}),
            ),
            PROD,
        )
        .await?;
    stack.apply_yaml(&pipeline(production), PIPELINE_NS).await?;
    wait_release(
        stack,
        "app:1",
        "release 1 verified in production",
        1200,
        |r| phase_in(r, "production") == StagePhase::Verified,
    )
    .await?;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_release_travels_from_staging_to_production_with_only_its_image() -> R {
    let stack = stack().await?;
    deployed(&stack, json!({})).await?;
    stack.set_image(STAGING, "web", "app", "app:2").await?;
    let r2 = wait_release(&stack, "app:2", "release 2 Good", 120, |r| {
        r.status.as_ref().and_then(|s| s.verdict) == Some(Verdict::Good)
    })
    .await?;
    assert_eq!(r2.spec.images.get("app"), Some(&pinned("app:2")));
    assert_eq!(r2.spec.number, 2);
    let prod = rollout(&stack, PROD).await?;
    assert_eq!(
        image(&prod),
        pinned("app:2"),
        "the same artifact, by digest"
    );
    assert_eq!(
        prod.spec.replicas,
        Some(3),
        "production keeps its own replicas"
    );
    let env = prod
        .spec
        .template
        .as_ref()
        .and_then(|t| t.spec.as_ref())
        .and_then(|s| s.containers[0].env.clone())
        .unwrap_or_default();
    assert_eq!(env.len(), 1, "and its own env");
    let p = Api::<PromotionPipeline>::namespaced(stack.client.clone(), PIPELINE_NS)
        .get("web")
        .await?;
    let st = p.status.unwrap_or_default();
    let name = r2.metadata.name.clone().unwrap_or_default();
    assert_eq!(st.stages[1].last_good.as_deref(), Some(name.as_str()));
    assert_eq!(
        st.summary.as_deref(),
        Some("staging:Verified production:Verified")
    );
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_failure_in_production_makes_the_release_bad_and_restores_the_last_good() -> R {
    let stack = stack().await?;
    deployed(&stack, json!({})).await?;
    // Production's next release waits at an indefinite pause, where a person aborts it.
    let steps =
        json!({"spec": {"strategy": {"canary": {"steps": [{"setWeight": 50}, {"pause": {}}]}}}});
    Api::<Rollout>::namespaced(stack.client.clone(), PROD)
        .patch("web", &PatchParams::default(), &Patch::Merge(&steps))
        .await?;
    stack.set_image(STAGING, "web", "app", "app:2").await?;
    wait_release(
        &stack,
        "app:2",
        "release 2 progressing in production",
        120,
        |r| phase_in(r, "production") == StagePhase::Progressing,
    )
    .await?;
    stack
        .wait_for(PROD, "web", Duration::from_secs(60), "paused", |r| {
            phase(r) == Some(RolloutPhase::Paused)
        })
        .await?;
    stack
        .patch_rollout_status(PROD, "web", json!({"abort": true}))
        .await?;
    let r2 = wait_release(&stack, "app:2", "release 2 Bad", 120, |r| {
        r.status.as_ref().and_then(|s| s.verdict) == Some(Verdict::Bad)
    })
    .await?;
    let failure = r2.status.clone().and_then(|s| s.failure).expect("failure");
    assert_eq!(failure.stage, "production");
    assert!(failure.message.starts_with("User"), "{}", failure.message);
    // Production is back on release 1, Healthy (fast rollback to the kept ReplicaSet).
    stack
        .wait_for(
            PROD,
            "web",
            Duration::from_secs(60),
            "back on release 1",
            |r| image(r) == pinned("app:1") && phase(r) == Some(RolloutPhase::Healthy),
        )
        .await?;
    let p = Api::<PromotionPipeline>::namespaced(stack.client.clone(), PIPELINE_NS)
        .get("web")
        .await?;
    let hold = p.status.unwrap_or_default().stages[1].hold.clone();
    assert!(hold.is_some(), "automatic promotion held");
    // Release 3 waits for a person; release 2 is never promoted again.
    stack.set_image(STAGING, "web", "app", "app:3").await?;
    let r3 = wait_release(&stack, "app:3", "release 3 held", 120, |r| {
        message_in(r, "production").contains("held")
    })
    .await?;
    approve(
        &stack,
        r3.metadata.name.as_deref().unwrap_or_default(),
        Decision::Promote,
    )
    .await?;
    stack
        .wait_for(
            PROD,
            "web",
            Duration::from_secs(60),
            "release 3 promoted by hand",
            |r| image(r) == pinned("app:3"),
        )
        .await?;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn the_approval_gate_holds_until_someone_approves() -> R {
    let stack = stack().await?;
    stack
        .apply_yaml(
            &web("app:1", json!([{"setWeight": 50}]), json!({})),
            STAGING,
        )
        .await?;
    stack
        .apply_yaml(&web("app:0", json!([{"setWeight": 50}]), json!({})), PROD)
        .await?;
    stack
        .apply_yaml(
            &pipeline(json!({"approvals": 1, "soak": "5m"})),
            PIPELINE_NS,
        )
        .await?;
    let r1 = wait_release(&stack, "app:1", "blocked on soak and approval", 120, |r| {
        phase_in(r, "production") == StagePhase::Blocked
    })
    .await?;
    let msg = message_in(&r1, "production");
    assert!(
        msg.contains("soak") && msg.contains("needs 1 approval (0 of 1)"),
        "{msg}"
    );
    let name = r1.metadata.name.clone().unwrap_or_default();
    approve(&stack, &name, Decision::Approve).await?;
    // The soak is derived from status: a controller restarted in the middle continues it.
    let mut stack = stack;
    tokio::time::sleep(Duration::from_secs(60)).await;
    stack.crash_controller("controller-1").await;
    stack.start_controller("controller-2");
    let r1 = wait_release(&stack, "app:1", "soak left", 60, |r| {
        message_in(r, "production").starts_with("soak ")
    })
    .await?;
    assert!(
        !message_in(&r1, "production").contains("soak 5m left"),
        "the soak clock did not restart: {}",
        message_in(&r1, "production")
    );
    wait_release(&stack, "app:1", "promoted after soak", 600, |r| {
        phase_in(r, "production") == StagePhase::Verified
    })
    .await?;
    assert_eq!(image(&rollout(&stack, PROD).await?), pinned("app:1"));
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn an_unreachable_cluster_blocks_promotion_without_marking_anything_bad() -> R {
    let stack = stack().await?;
    stack
        .apply_yaml(
            &web("app:1", json!([{"setWeight": 50}]), json!({})),
            STAGING,
        )
        .await?;
    prod_cluster_secret(&stack, "http://127.0.0.1:9").await?;
    stack
        .apply_yaml(
            &pipeline(
                json!({"rollout": {"cluster": {"kubeconfigSecret": {"name": "prod-cluster"}}}}),
            ),
            PIPELINE_NS,
        )
        .await?;
    let r1 = wait_release(&stack, "app:1", "blocked: unreachable", 120, |r| {
        message_in(r, "production").contains("cannot be reached")
    })
    .await?;
    assert_eq!(
        r1.status.as_ref().and_then(|s| s.verdict),
        Some(Verdict::Unknown)
    );
    let p = Api::<PromotionPipeline>::namespaced(stack.client.clone(), PIPELINE_NS)
        .get("web")
        .await?;
    let st = p.status.unwrap_or_default();
    assert_eq!(st.stages[1].reachable, Some(false));
    assert!(
        st.stages[1]
            .problem
            .as_deref()
            .is_some_and(|p| p.contains("Rollout shop-prod/web")),
        "{:?}",
        st.stages[1].problem
    );
    Ok(())
}

/// Production in a second simulated cluster served on 127.0.0.1, reached through a kubeconfig
/// Secret (real time: the clusters talk over HTTP).
#[tokio::test]
async fn production_in_another_cluster_gets_the_release_through_its_kubeconfig() -> R {
    let mut staging = Stack::new(SimConfig {
        default_ready_delay: Duration::from_millis(200),
        ..Default::default()
    })
    .await?;
    let mut production = Stack::new(SimConfig {
        default_ready_delay: Duration::from_millis(200),
        ..Default::default()
    })
    .await?;
    for (stack, names) in [
        (&staging, [PIPELINE_NS, STAGING]),
        (&production, [PROD, PROD]),
    ] {
        for ns in names {
            let yaml = format!("apiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}}}\n");
            stack.apply_yaml(&yaml, "default").await?;
        }
    }
    let (addr, _server) = production.sim.serve("127.0.0.1:0".parse()?).await?;
    staging.start_controller("staging-controller");
    production.start_controller("production-controller");
    prod_cluster_secret(&staging, &format!("http://{addr}")).await?;
    staging
        .apply_yaml(
            &web("app:1", json!([{"setWeight": 50}]), json!({})),
            STAGING,
        )
        .await?;
    production
        .apply_yaml(
            &web("app:0", json!([{"setWeight": 50}]), json!({"replicas": 3})),
            PROD,
        )
        .await?;
    staging
        .apply_yaml(
            &pipeline(
                json!({"rollout": {"cluster": {"kubeconfigSecret": {"name": "prod-cluster"}}}}),
            ),
            PIPELINE_NS,
        )
        .await?;
    let r1 = wait_release(
        &staging,
        "app:1",
        "release 1 verified in the other cluster",
        60,
        |r| phase_in(r, "production") == StagePhase::Verified,
    )
    .await?;
    assert_eq!(r1.spec.images.get("app"), Some(&pinned("app:1")));
    let prod = production.rollout(PROD, "web").await?;
    assert_eq!(image(&prod), pinned("app:1"));
    assert_eq!(prod.spec.replicas, Some(3));
    assert_eq!(phase(&prod), Some(RolloutPhase::Healthy));
    let p = Api::<PromotionPipeline>::namespaced(staging.client.clone(), PIPELINE_NS)
        .get("web")
        .await?;
    assert_eq!(p.status.unwrap_or_default().stages[1].reachable, Some(true));
    staging.stop_controllers().await;
    production.stop_controllers().await;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_closed_window_blocks_until_a_person_promotes() -> R {
    let stack = stack().await?;
    stack
        .apply_yaml(
            &web("app:1", json!([{"setWeight": 50}]), json!({})),
            STAGING,
        )
        .await?;
    stack
        .apply_yaml(&web("app:0", json!([{"setWeight": 50}]), json!({})), PROD)
        .await?;
    // Open one hour a year, on the 1st of January.
    stack
        .apply_yaml(
            &pipeline(
                json!({"windows": [{"kind": "Allow", "schedule": "0 0 1 1 *", "duration": "1h"}]}),
            ),
            PIPELINE_NS,
        )
        .await?;
    let r1 = wait_release(&stack, "app:1", "blocked by the window", 120, |r| {
        phase_in(r, "production") == StagePhase::Blocked
    })
    .await?;
    let msg = message_in(&r1, "production");
    assert!(
        msg.starts_with("window opens ") && msg.contains("-01-01T00:00:00Z"),
        "{msg}"
    );
    assert_eq!(image(&rollout(&stack, PROD).await?), "app:0");
    approve(
        &stack,
        r1.metadata.name.as_deref().unwrap_or_default(),
        Decision::Promote,
    )
    .await?;
    wait_release(&stack, "app:1", "promoted by hand", 120, |r| {
        phase_in(r, "production") == StagePhase::Verified
    })
    .await?;
    assert_eq!(image(&rollout(&stack, PROD).await?), pinned("app:1"));
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_newer_release_supersedes_one_still_soaking() -> R {
    let stack = stack().await?;
    deployed(&stack, json!({"soak": "10m"})).await?;
    stack.set_image(STAGING, "web", "app", "app:2").await?;
    wait_release(&stack, "app:2", "release 2 soaking", 120, |r| {
        message_in(r, "production").starts_with("soak ")
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(120)).await;
    stack.set_image(STAGING, "web", "app", "app:3").await?;
    wait_release(&stack, "app:2", "release 2 superseded", 120, |r| {
        phase_in(r, "production") == StagePhase::Superseded
    })
    .await?;
    wait_release(
        &stack,
        "app:3",
        "release 3 verified in production",
        1200,
        |r| phase_in(r, "production") == StagePhase::Verified,
    )
    .await?;
    // Production went from release 1 to release 3: release 2 was never written there.
    let events =
        Api::<k8s_openapi::api::events::v1::Event>::namespaced(stack.client.clone(), PIPELINE_NS)
            .list(&ListParams::default())
            .await?;
    let promoted: Vec<String> = events
        .items
        .iter()
        .filter(|e| e.reason.as_deref() == Some("ReleasePromoted"))
        .filter_map(|e| e.note.clone())
        .collect();
    assert!(
        promoted.iter().all(|n| !n.contains(&pinned("app:2"))),
        "{promoted:?}"
    );
    assert!(
        promoted.iter().any(|n| n.contains(&pinned("app:3"))),
        "{promoted:?}"
    );
    Ok(())
}
