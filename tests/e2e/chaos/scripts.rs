//! The releases the fault tests drive, each as a user would: apply, change the image, wait.
//! Every script ends with a quiet minute (virtual) so that delayed scale-downs are done
//! before the final state is read.

use std::sync::Arc;
use std::time::Duration;

use kube::Api;
use kube::api::ListParams;
use rollgate_api::pipeline::{PromotionPipeline, Release, StagePhase, Verdict};
use rollgate_api::{AbortReason, Rollout, RolloutPhase};
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

/// A release to drive: prepared (first revision up), one release, then (in the fault runs)
/// the releases after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Script {
    /// Blue/green `web` (3 pods): app:1; app:2 promoted automatically; then app:3 (pods never
    /// ready: aborted at the progress deadline) and app:4.
    BlueGreen,
    /// Canary `api` (4 pods) behind a Gateway API route with an analysis step: app:1; app:2
    /// (good, promoted); then app:3 (bad metrics: aborted by its analysis) and app:4 (good).
    Canary,
    /// A pipeline `web` from `shop-staging` to `shop-prod`: release 1 verified; release 2
    /// promoted to production.
    Pipeline,
}

const STAGING: &str = "shop-staging";
const PROD: &str = "shop-prod";
const PIPELINE_NS: &str = "shop";

/// Quiet time at the end of every script (longer than every scale-down delay).
const SETTLE: Duration = Duration::from_secs(60);

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

    /// The objects and the first revision deployed (a pipeline's first release verified).
    pub async fn prepare(self, stack: &Stack) -> R {
        match self {
            Self::BlueGreen => blue_green_first(stack).await,
            Self::Canary => canary_first(stack).await,
            Self::Pipeline => pipeline_first(stack).await,
        }
    }

    /// One release to its end: blue/green app:2 promoted, canary app:2 through its analysis
    /// step, the pipeline's release 2 promoted to production.
    pub async fn release(self, stack: &Stack) -> R {
        match self {
            Self::BlueGreen => {
                set_image(stack, "web", "app:2").await?;
                healthy(stack, "web", "app:2").await
            }
            Self::Canary => {
                set_image(stack, "api", "app:2").await?;
                healthy(stack, "api", "app:2").await
            }
            Self::Pipeline => pipeline_release(stack).await,
        }
    }

    /// The releases after it: a bad revision aborted (pods never ready; failed analysis),
    /// then a good one.
    pub async fn more(self, stack: &Stack) -> R {
        match self {
            Self::BlueGreen => {
                set_image(stack, "web", "app:3-crashloop").await?;
                aborted(stack, "web", AbortReason::ProgressDeadline, "app:2").await?;
                set_image(stack, "web", "app:4").await?;
                healthy(stack, "web", "app:4").await
            }
            Self::Canary => {
                set_image(stack, "api", "app:3").await?;
                aborted(stack, "api", AbortReason::AnalysisFailed, "app:2").await?;
                set_image(stack, "api", "app:4").await?;
                healthy(stack, "api", "app:4").await
            }
            Self::Pipeline => Ok(()),
        }
    }

    /// Waits until delayed scale-downs are done.
    pub async fn settle(self) {
        tokio::time::sleep(SETTLE).await;
    }
}

async fn set_image(stack: &Stack, rollout: &str, image: &str) -> R {
    Ok(stack.set_image(NS, rollout, "app", image).await?)
}

/// Waits until `rollout` is Healthy with `image` stable.
async fn healthy(stack: &Stack, rollout: &str, image: &str) -> R {
    let hash = image_hash(rollout, image);
    let what = format!("{rollout} {image} Healthy");
    wait_rollout(&stack.sim, NS, rollout, 1800, &what, move |r| {
        phase(r) == Some(RolloutPhase::Healthy)
            && r.status.as_ref().and_then(|s| s.stable_rs.as_deref()) == Some(hash.as_str())
    })
    .await?;
    Ok(())
}

/// Waits until `rollout` is Degraded, aborted for `reason`, with `stable` still stable.
async fn aborted(stack: &Stack, rollout: &str, reason: AbortReason, stable: &str) -> R {
    let hash = image_hash(rollout, stable);
    let what = format!("{rollout} aborted ({reason})");
    wait_rollout(&stack.sim, NS, rollout, 1800, &what, move |r| {
        let s = r.status.clone().unwrap_or_default();
        phase(r) == Some(RolloutPhase::Degraded)
            && s.abort_reason == Some(reason)
            && s.stable_rs.as_deref() == Some(hash.as_str())
    })
    .await?;
    Ok(())
}

async fn blue_green_first(stack: &Stack) -> R {
    stack.apply_yaml(&blue_green_services("web"), NS).await?;
    let rollout = blue_green_rollout(
        "web",
        "app:1",
        json!({"progressDeadlineSeconds": 30}),
        json!({"scaleDownDelaySeconds": 10}),
    );
    stack.apply_yaml(&rollout.to_string(), NS).await?;
    healthy(stack, "web", "app:1").await
}

async fn canary_first(stack: &Stack) -> R {
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
    healthy(stack, "api", "app:1").await
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
        if tokio::time::Instant::now() >= until {
            anyhow::bail!(
                "{what}: not within 1800s; releases: {:?}; {}",
                releases.iter().map(|r| &r.status).collect::<Vec<_>>(),
                pipeline_state(stack).await
            );
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// What the pipeline and its stages' Rollouts say, for a failure message: the pipeline's
/// status and each stage Rollout's phase and message.
async fn pipeline_state(stack: &Stack) -> String {
    let pipeline = Api::<PromotionPipeline>::namespaced(stack.client.clone(), PIPELINE_NS)
        .get_opt("web")
        .await
        .map(|p| format!("{:?}", p.and_then(|p| p.status)));
    let mut out = format!("pipeline status: {pipeline:?}");
    for ns in [STAGING, PROD] {
        let r = Api::<Rollout>::namespaced(stack.client.clone(), ns)
            .get_opt("web")
            .await;
        let said = r.map(|r| {
            r.and_then(|r| r.status)
                .map(|s| (s.phase, s.message, s.stable_rs, s.current_pod_hash))
        });
        out.push_str(&format!("; rollout {ns}/web: {said:?}"));
    }
    out
}

async fn pipeline_first(stack: &Stack) -> R {
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
    wait_release(stack, "app:1", "release 1 verified in production", verified).await
}

async fn pipeline_release(stack: &Stack) -> R {
    stack.set_image(STAGING, "web", "app", "app:2").await?;
    wait_release(stack, "app:2", "release 2 Good", |r| {
        r.status.as_ref().and_then(|s| s.verdict) == Some(Verdict::Good)
    })
    .await
}
