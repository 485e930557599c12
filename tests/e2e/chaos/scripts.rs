//! The releases the fault tests drive, each as a user would: apply, change the image, wait.
//! Every script ends with a quiet two minutes (virtual) so that delayed scale-downs are done
//! before the final state is read.

use std::sync::Arc;
use std::time::Duration;

use kube::Api;
use kube::api::ListParams;
use rollgate_api::pipeline::{Release, StagePhase, Verdict};
use rollgate_api::{AbortReason, RolloutPhase};
use rollgate_e2e::{NS, phase};
use rollgate_local::Stack;
use rollgate_local::simulated_metrics::SimulatedMetrics;
use rollgate_test_support::{
    analysis_template, blue_green_rollout, blue_green_services, canary_rollout, documents,
    image_hash, merge, route_routing, service,
};
use serde_json::json;

use crate::harness::{Watched, wait_rollout};

type R = anyhow::Result<()>;

/// A release to drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Script {
    /// Blue/green `web` (3 pods): app:1, app:2 promoted automatically, app:3 (pods never
    /// ready: aborted at the progress deadline), app:4.
    BlueGreen,
    /// Canary `api` (4 pods) behind a Gateway API route with an analysis step: app:1, app:2
    /// (good, promoted), app:3 (bad metrics: aborted by its analysis), app:4 (good).
    Canary,
    /// A pipeline `web` from `shop-staging` to `shop-prod`: release 1, then release 2.
    Pipeline,
}

const STAGING: &str = "shop-staging";
const PROD: &str = "shop-prod";
const PIPELINE_NS: &str = "shop";

/// Quiet time at the end of every script.
const SETTLE: Duration = Duration::from_secs(120);

impl Script {
    /// What the invariant monitor watches.
    pub fn watched(self) -> Vec<Watched> {
        match self {
            Self::BlueGreen => vec![Watched {
                namespace: NS.into(),
                rollout: "web".into(),
                service: Some("web-active".into()),
                min_ready: 3,
                route: None,
            }],
            Self::Canary => vec![Watched {
                namespace: NS.into(),
                rollout: "api".into(),
                service: Some("api-stable".into()),
                min_ready: 4,
                route: Some(("api-route".into(), "api-canary".into(), "api-stable".into())),
            }],
            // The stage Rollouts have no Services: nothing selects their pods.
            Self::Pipeline => Vec::new(),
        }
    }

    /// The metric values the analysis answers (per revision).
    pub fn metrics(self) -> Arc<SimulatedMetrics> {
        let m = SimulatedMetrics::default();
        if self == Self::Canary {
            m.set(&image_hash("api", "app:1"), 0.0);
            m.set(&image_hash("api", "app:2"), 0.01);
            m.set(&image_hash("api", "app:3"), 0.5);
            m.set(&image_hash("api", "app:4"), 0.0);
        }
        Arc::new(m)
    }

    /// Drives the release to its end.
    pub async fn run(self, stack: &Stack) -> R {
        match self {
            Self::BlueGreen => blue_green(stack).await,
            Self::Canary => canary(stack).await,
            Self::Pipeline => pipeline(stack).await,
        }?;
        tokio::time::sleep(SETTLE).await;
        Ok(())
    }
}

fn healthy_on(hash: String) -> impl Fn(&rollgate_api::Rollout) -> bool {
    move |r| {
        phase(r) == Some(RolloutPhase::Healthy)
            && r.status.as_ref().and_then(|s| s.stable_rs.as_deref()) == Some(hash.as_str())
    }
}

async fn blue_green(stack: &Stack) -> R {
    stack.apply_yaml(&blue_green_services("web"), NS).await?;
    let rollout = blue_green_rollout(
        "web",
        "app:1",
        json!({"progressDeadlineSeconds": 30}),
        json!({"scaleDownDelaySeconds": 10}),
    );
    stack.apply_yaml(&rollout.to_string(), NS).await?;
    let h = |image: &str| image_hash("web", image);
    wait_rollout(
        &stack.sim,
        NS,
        "web",
        900,
        "app:1 Healthy",
        healthy_on(h("app:1")),
    )
    .await?;
    stack.set_image(NS, "web", "app", "app:2").await?;
    wait_rollout(
        &stack.sim,
        NS,
        "web",
        1800,
        "app:2 Healthy",
        healthy_on(h("app:2")),
    )
    .await?;
    // Pods that never become ready: aborted at the progress deadline, app:2 stays active.
    stack.set_image(NS, "web", "app", "app:3-crashloop").await?;
    let stable = h("app:2");
    wait_rollout(&stack.sim, NS, "web", 1800, "app:3 aborted", move |r| {
        let s = r.status.clone().unwrap_or_default();
        phase(r) == Some(RolloutPhase::Degraded)
            && s.abort_reason == Some(AbortReason::ProgressDeadline)
            && s.stable_rs.as_deref() == Some(stable.as_str())
    })
    .await?;
    stack.set_image(NS, "web", "app", "app:4").await?;
    wait_rollout(
        &stack.sim,
        NS,
        "web",
        1800,
        "app:4 Healthy",
        healthy_on(h("app:4")),
    )
    .await?;
    Ok(())
}

async fn canary(stack: &Stack) -> R {
    let route = json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": {"name": "api-route"},
        "spec": {"parentRefs": [{"name": "gateway"}], "rules": [{"backendRefs": [
            {"name": "api-stable", "port": 80, "weight": 100},
            {"name": "api-canary", "port": 80, "weight": 0}]}]}
    });
    let template = analysis_template(
        "errors",
        json!({"args": [{"name": "hash"}], "metrics": [{
            "name": "error-rate", "interval": "5s", "count": 2,
            "successCondition": "result[0] < 0.05",
            "provider": {"prometheus": {"address": "http://127.0.0.1:9090",
                "query": "errors{hash=\"{{args.hash}}\"}"}}}]}),
    );
    stack
        .apply_yaml(
            &documents(&[
                service("api", "api"),
                service("api-canary", "api"),
                service("api-stable", "api"),
                route,
                template,
            ]),
            NS,
        )
        .await?;
    let mut canary = json!({
        "trafficRouting": route_routing("api-route"),
        "steps": [
            {"setWeight": 25},
            {"analysis": {"templates": [{"templateName": "errors"}],
                "args": [{"name": "hash", "valueFrom": {"podTemplateHashValue": "Latest"}}]}},
            {"setWeight": 50},
            {"pause": {"duration": "10s"}},
        ],
    });
    merge(&mut canary, json!({"abortScaleDownDelaySeconds": 5}));
    let rollout = canary_rollout("api", "app:1", json!({"replicas": 4}), canary);
    stack.apply_yaml(&rollout.to_string(), NS).await?;
    let h = |image: &str| image_hash("api", image);
    wait_rollout(
        &stack.sim,
        NS,
        "api",
        900,
        "app:1 Healthy",
        healthy_on(h("app:1")),
    )
    .await?;
    stack.set_image(NS, "api", "app", "app:2").await?;
    wait_rollout(
        &stack.sim,
        NS,
        "api",
        1800,
        "app:2 Healthy",
        healthy_on(h("app:2")),
    )
    .await?;
    stack.set_image(NS, "api", "app", "app:3").await?;
    let stable = h("app:2");
    wait_rollout(&stack.sim, NS, "api", 1800, "app:3 aborted", move |r| {
        let s = r.status.clone().unwrap_or_default();
        phase(r) == Some(RolloutPhase::Degraded)
            && s.abort_reason == Some(AbortReason::AnalysisFailed)
            && s.stable_rs.as_deref() == Some(stable.as_str())
    })
    .await?;
    stack.set_image(NS, "api", "app", "app:4").await?;
    wait_rollout(
        &stack.sim,
        NS,
        "api",
        1800,
        "app:4 Healthy",
        healthy_on(h("app:4")),
    )
    .await?;
    Ok(())
}

/// A canary Rollout `web` of 2 pods running `image` without Services (a pipeline stage).
fn stage_rollout(image: &str) -> String {
    canary_rollout(
        "web",
        image,
        json!({"replicas": 2}),
        json!({"canaryService": null, "stableService": null,
               "steps": [{"setWeight": 50}, {"pause": {"duration": "2s"}}]}),
    )
    .to_string()
}

async fn wait_release(stack: &Stack, image: &str, what: &str, f: impl Fn(&Release) -> bool) -> R {
    let api = Api::<Release>::namespaced(stack.client.clone(), PIPELINE_NS);
    let until = tokio::time::Instant::now() + Duration::from_secs(1800);
    loop {
        let releases = api.list(&ListParams::default()).await?.items;
        if releases
            .iter()
            .any(|r| r.spec.source_images.get("app").map(String::as_str) == Some(image) && f(r))
        {
            return Ok(());
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < until,
            "{what}: not within 1800s; releases: {:?}",
            releases.iter().map(|r| &r.status).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn pipeline(stack: &Stack) -> R {
    for ns in [PIPELINE_NS, STAGING, PROD] {
        let yaml = format!("apiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}}}\n");
        stack.apply_yaml(&yaml, "default").await?;
    }
    stack.apply_yaml(&stage_rollout("app:1"), STAGING).await?;
    stack.apply_yaml(&stage_rollout("app:0"), PROD).await?;
    let pipeline = json!({"apiVersion": "rollgate.dev/v1alpha1", "kind": "PromotionPipeline",
        "metadata": {"name": "web"},
        "spec": {"containers": ["app"], "stages": [
            {"name": "staging", "rollout": {"name": "web", "namespace": STAGING}},
            {"name": "production", "rollout": {"name": "web", "namespace": PROD},
             "soak": "30s"}]}});
    stack.apply_yaml(&pipeline.to_string(), PIPELINE_NS).await?;
    let verified = |r: &Release| {
        r.status
            .as_ref()
            .and_then(|s| s.stages.iter().find(|x| x.name == "production"))
            .is_some_and(|s| s.phase == StagePhase::Verified)
    };
    wait_release(stack, "app:1", "release 1 verified in production", verified).await?;
    stack.set_image(STAGING, "web", "app", "app:2").await?;
    wait_release(stack, "app:2", "release 2 Good", |r| {
        r.status.as_ref().and_then(|s| s.verdict) == Some(Verdict::Good)
    })
    .await?;
    Ok(())
}
