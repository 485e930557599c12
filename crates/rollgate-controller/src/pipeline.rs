//! The pipeline controller: reads each stage (its Rollout, the digests its pods run, its
//! verification runs, in this cluster or another one reached through a kubeconfig Secret),
//! asks the pure engine ([`rollgate_engine::pipeline`]) what to do, and does it: records
//! Releases, writes images into stage Rollouts, starts verification runs, writes statuses and
//! publishes Events. It holds no promotion logic.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action as Requeue, Controller};
use kube::runtime::events::{Event as KubeEvent, EventType, Recorder};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Api, Client, Resource, ResourceExt};
use rollgate_api::labels::POD_TEMPLATE_HASH;
use rollgate_api::pipeline::StageCluster;
use rollgate_api::{
    AnalysisRun, AnalysisTemplate, Approval, ClusterAnalysisTemplate, PromotionPipeline, Release,
    Rollout,
};
use rollgate_engine::pipeline::{
    ATTEMPT_LABEL, FIELD_MANAGER, ObservedStage, PIPELINE_LABEL, PipelineAction, PipelineDecision,
    PipelineInput, RELEASE_LABEL, STAGE_LABEL, StageView, VerificationRun, digest_of_image_id,
};
use tracing::{debug, warn};

use crate::error::{Error, has_code};
use crate::run::Context;

/// Longest time between two reconciles of an unchanged pipeline.
const RESYNC: Duration = Duration::from_secs(5 * 60);

/// Clients of other clusters, one per kubeconfig Secret version.
#[derive(Default)]
pub struct Clusters {
    clients: Mutex<HashMap<(String, String, String), Client>>,
}

impl Clusters {
    /// The client of `cluster` (a kubeconfig in a Secret of `ns`), built once per version of
    /// the Secret.
    async fn client(
        &self,
        local: &Client,
        ns: &str,
        cluster: &StageCluster,
    ) -> Result<Client, String> {
        let secret_ref = &cluster.kubeconfig_secret;
        let key = secret_ref.key.clone().unwrap_or_else(|| "value".into());
        let secret = Api::<Secret>::namespaced(local.clone(), ns)
            .get_opt(&secret_ref.name)
            .await
            .map_err(|e| format!("reading Secret {ns}/{}: {e}", secret_ref.name))?
            .ok_or_else(|| format!("Secret {ns}/{} not found", secret_ref.name))?;
        let version = secret.resource_version().unwrap_or_default();
        let cache_key = (format!("{ns}/{}", secret_ref.name), key.clone(), version);
        if let Some(c) = self
            .clients
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&cache_key)
        {
            return Ok(c.clone());
        }
        let bytes = secret
            .data
            .as_ref()
            .and_then(|d| d.get(&key))
            .map(|b| b.0.clone())
            .ok_or_else(|| format!("Secret {ns}/{}: no key {key:?}", secret_ref.name))?;
        let text = String::from_utf8(bytes)
            .map_err(|_| format!("Secret {ns}/{} key {key}: not UTF-8", secret_ref.name))?;
        let kubeconfig = kube::config::Kubeconfig::from_yaml(&text).map_err(|e| {
            format!(
                "Secret {ns}/{} key {key}: not a kubeconfig: {e}",
                secret_ref.name
            )
        })?;
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .map_err(|e| format!("kubeconfig of Secret {ns}/{}: {e}", secret_ref.name))?;
        let client = Client::try_from(config)
            .map_err(|e| format!("client for Secret {ns}/{}: {e}", secret_ref.name))?;
        let mut clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        // Older versions of the same Secret are no longer used.
        clients.retain(|(s, k, _), _| (s, k) != (&cache_key.0, &cache_key.1));
        clients.insert(cache_key, client.clone());
        Ok(client)
    }
}

/// Shared state of the pipeline reconciler.
pub struct PipelineContext {
    /// The rollout controller's context (client, clock, reporter, telemetry).
    pub inner: Arc<Context>,
    /// Clients of other clusters.
    pub clusters: Clusters,
    /// Every PromotionPipeline, from the controller's watch.
    pub pipelines: kube::runtime::reflector::Store<PromotionPipeline>,
    /// Retry delays of the pipelines whose last reconcile failed.
    pub retries: crate::retry::Retries,
}

/// Reads one stage.
async fn observe_stage(
    ctx: &PipelineContext,
    pipeline_ns: &str,
    pipeline: &str,
    stage: &rollgate_engine::pipeline::Stage,
) -> (ObservedStage, Option<Client>) {
    let local = &ctx.inner.client;
    let client = match &stage.cluster {
        None => local.clone(),
        Some(secret) => {
            let cluster = StageCluster {
                kubeconfig_secret: secret.clone(),
            };
            match ctx.clusters.client(local, pipeline_ns, &cluster).await {
                Ok(c) => c,
                Err(why) => return (ObservedStage::Unreachable(why), None),
            }
        }
    };
    match read_stage(&client, pipeline, stage).await {
        Ok(view) => (ObservedStage::Read(Box::new(view)), Some(client)),
        Err(why) => (ObservedStage::Unreachable(why), None),
    }
}

async fn read_stage(
    client: &Client,
    pipeline: &str,
    stage: &rollgate_engine::pipeline::Stage,
) -> Result<StageView, String> {
    let ns = stage.namespace.as_str();
    let rollout = Api::<Rollout>::namespaced(client.clone(), ns)
        .get_opt(&stage.rollout)
        .await
        .map_err(|e| format!("reading Rollout {ns}/{}: {e}", stage.rollout))?;
    let mut running_digests = BTreeMap::new();
    if stage.index == 0
        && let Some(hash) = rollout
            .as_ref()
            .and_then(|r| r.status.as_ref())
            .and_then(|s| s.current_pod_hash.clone())
    {
        let pods = Api::<Pod>::namespaced(client.clone(), ns)
            .list(&ListParams::default().labels(&format!("{POD_TEMPLATE_HASH}={hash}")))
            .await
            .map_err(|e| format!("listing pods in {ns}: {e}"))?;
        for pod in &pods.items {
            let ready = pod
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
            if !ready {
                continue;
            }
            for cs in pod
                .status
                .as_ref()
                .and_then(|s| s.container_statuses.as_ref())
                .into_iter()
                .flatten()
            {
                if let Some(d) = digest_of_image_id(&cs.image_id) {
                    running_digests.insert(cs.name.clone(), d);
                }
            }
        }
    }
    let runs = Api::<AnalysisRun>::namespaced(client.clone(), ns)
        .list(&ListParams::default().labels(&format!(
            "{PIPELINE_LABEL}={pipeline},{STAGE_LABEL}={}",
            stage.name
        )))
        .await
        .map_err(|e| format!("listing verification runs in {ns}: {e}"))?
        .items
        .into_iter()
        .map(|r| {
            let labels = r.metadata.labels.clone().unwrap_or_default();
            VerificationRun {
                name: r.name_any(),
                release: labels.get(RELEASE_LABEL).cloned().unwrap_or_default(),
                attempt: labels
                    .get(ATTEMPT_LABEL)
                    .and_then(|a| a.parse().ok())
                    .unwrap_or(0),
                phase: r
                    .status
                    .and_then(|s| s.phase)
                    .unwrap_or(rollgate_api::AnalysisPhase::Pending),
            }
        })
        .collect();
    let mut templates = BTreeMap::new();
    for t in stage.verification.iter().flat_map(|v| v.templates.iter()) {
        let cluster = t.cluster_scope.unwrap_or(false);
        let spec = if cluster {
            Api::<ClusterAnalysisTemplate>::all(client.clone())
                .get_opt(&t.template_name)
                .await
                .map(|o| o.map(|t| t.spec.template))
        } else {
            Api::<AnalysisTemplate>::namespaced(client.clone(), ns)
                .get_opt(&t.template_name)
                .await
                .map(|o| o.map(|t| t.spec))
        }
        .map_err(|e| format!("reading template {}: {e}", t.template_name))?;
        if let Some(spec) = spec {
            templates.insert((cluster, t.template_name.clone()), spec);
        }
    }
    Ok(StageView {
        rollout,
        running_digests,
        runs,
        templates,
    })
}

/// Writes `images` into the stage's Rollout: only the `image` of each named container, by a
/// JSON patch guarded by a test of the container's name at its index, under the field manager
/// `rollgate-promoter`. (A server-side apply of `containers` would own, and on a CRD whose pod
/// template schema is kept open, replace the whole list: every other field stays the
/// target's own this way.)
async fn set_images(
    client: &Client,
    ns: &str,
    name: &str,
    images: &BTreeMap<String, String>,
) -> Result<(), Error> {
    let api = Api::<Rollout>::namespaced(client.clone(), ns);
    let rollout = api
        .get(name)
        .await
        .map_err(|e| Error::kube(format!("reading Rollout {ns}/{name}"), e))?;
    let containers = rollout
        .spec
        .template
        .as_ref()
        .and_then(|t| t.spec.as_ref())
        .map(|s| s.containers.clone())
        .unwrap_or_default();
    let mut ops = Vec::new();
    for (i, c) in containers.iter().enumerate() {
        let Some(image) = images.get(&c.name) else {
            continue;
        };
        if c.image.as_deref() == Some(image.as_str()) {
            continue;
        }
        let path = format!("/spec/template/spec/containers/{i}");
        ops.push(
            serde_json::json!({"op": "test", "path": format!("{path}/name"), "value": c.name}),
        );
        ops.push(
            serde_json::json!({"op": "replace", "path": format!("{path}/image"), "value": image}),
        );
    }
    if ops.is_empty() {
        return Ok(());
    }
    let patch: json_patch::Patch =
        serde_json::from_value(serde_json::Value::Array(ops)).map_err(|source| {
            Error::Serialize {
                what: "image patch".into(),
                source,
            }
        })?;
    api.patch(
        name,
        &PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..Default::default()
        },
        &Patch::<()>::Json(patch),
    )
    .await
    .map_err(|e| Error::kube(format!("writing images into Rollout {ns}/{name}"), e))?;
    Ok(())
}

/// Reconciles one pipeline.
pub async fn reconcile_pipeline(
    ctx: &PipelineContext,
    ns: &str,
    name: &str,
) -> Result<Option<PipelineDecision>, Error> {
    let client = &ctx.inner.client;
    let pipelines = Api::<PromotionPipeline>::namespaced(client.clone(), ns);
    let Some(pipeline) = pipelines
        .get_opt(name)
        .await
        .map_err(|e| Error::kube(format!("reading PromotionPipeline {ns}/{name}"), e))?
    else {
        return Ok(None);
    };
    let releases_api = Api::<Release>::namespaced(client.clone(), ns);
    let releases = releases_api
        .list(&ListParams::default().labels(&format!("{PIPELINE_LABEL}={name}")))
        .await
        .map_err(|e| Error::kube(format!("listing Releases in {ns}"), e))?
        .items;
    let approvals = Api::<Approval>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
        .map_err(|e| Error::kube(format!("listing Approvals in {ns}"), e))?
        .items;
    // The other pipelines, as the controller's watch knows them (no list per reconcile).
    let all: Vec<PromotionPipeline> = ctx
        .pipelines
        .state()
        .iter()
        .map(|p| (**p).clone())
        .collect();
    let claims = rollgate_engine::pipeline::claims(&pipeline, &all);
    let mut stages = BTreeMap::new();
    let mut clients: BTreeMap<String, Client> = BTreeMap::new();
    if let Ok(valid) = rollgate_engine::pipeline::validate(&pipeline) {
        for stage in &valid.stages {
            let (observed, client) = observe_stage(ctx, ns, name, stage).await;
            if let ObservedStage::Unreachable(why) = &observed {
                warn!(pipeline = %format!("{ns}/{name}"), stage = %stage.name, %why,
                    "stage unreachable");
            }
            if let Some(c) = client {
                clients.insert(stage.name.clone(), c);
            }
            stages.insert(stage.name.clone(), observed);
        }
        let decision = rollgate_engine::pipeline::reconcile(PipelineInput {
            pipeline: &pipeline,
            releases: &releases,
            approvals: &approvals,
            stages: &stages,
            claims: &claims,
            now: ctx.inner.config.clock.now(),
        });
        for action in &decision.actions {
            debug!(pipeline = %format!("{ns}/{name}"), ?action, "applying");
            match action {
                PipelineAction::CreateRelease(r) => {
                    match releases_api.create(&PostParams::default(), r).await {
                        Ok(_) => {}
                        Err(e) if has_code(&e, 409) => {}
                        Err(e) => return Err(Error::kube(format!("creating Release in {ns}"), e)),
                    }
                }
                PipelineAction::SetImages { stage, images } => {
                    let (Some(s), Some(c)) = (
                        valid.stages.iter().find(|s| &s.name == stage),
                        clients.get(stage),
                    ) else {
                        continue;
                    };
                    set_images(c, &s.namespace, &s.rollout, images).await?;
                }
                PipelineAction::CreateVerification { stage, run } => {
                    let (Some(s), Some(c)) = (
                        valid.stages.iter().find(|s| &s.name == stage),
                        clients.get(stage),
                    ) else {
                        continue;
                    };
                    match Api::<AnalysisRun>::namespaced(c.clone(), &s.namespace)
                        .create(&PostParams::default(), run)
                        .await
                    {
                        Ok(_) => {}
                        Err(e) if has_code(&e, 409) => {}
                        Err(e) => {
                            return Err(Error::kube(
                                format!("creating verification run in {}", s.namespace),
                                e,
                            ));
                        }
                    }
                }
            }
        }
        write_statuses(&pipelines, &releases_api, &pipeline, &releases, &decision).await?;
        publish(ctx, &pipeline, &decision).await;
        return Ok(Some(decision));
    }
    // Invalid: the engine says why; nothing else is read or touched.
    let decision = rollgate_engine::pipeline::reconcile(PipelineInput {
        pipeline: &pipeline,
        releases: &releases,
        approvals: &approvals,
        stages: &stages,
        claims: &claims,
        now: ctx.inner.config.clock.now(),
    });
    write_statuses(&pipelines, &releases_api, &pipeline, &[], &decision).await?;
    Ok(Some(decision))
}

async fn write_statuses(
    pipelines: &Api<PromotionPipeline>,
    releases_api: &Api<Release>,
    pipeline: &PromotionPipeline,
    releases: &[Release],
    decision: &PipelineDecision,
) -> Result<(), Error> {
    let params = PatchParams {
        field_manager: Some(rollgate_api::labels::FIELD_MANAGER.into()),
        ..Default::default()
    };
    for (name, status) in &decision.releases {
        let known = releases
            .iter()
            .find(|r| r.metadata.name.as_deref() == Some(name.as_str()));
        if known.and_then(|r| r.status.as_ref()) == Some(status) {
            continue;
        }
        let body = serde_json::json!({"status": status});
        match releases_api
            .patch_status(name, &params, &Patch::Merge(&body))
            .await
        {
            Ok(_) => {}
            // Created by this reconcile a moment ago and not visible yet: the next one writes.
            Err(e) if has_code(&e, 404) => {}
            Err(e) => return Err(Error::kube(format!("writing status of Release {name}"), e)),
        }
    }
    if pipeline.status.as_ref() != Some(&decision.status) {
        let name = pipeline.name_any();
        let body = serde_json::json!({"status": decision.status});
        pipelines
            .patch_status(&name, &params, &Patch::Merge(&body))
            .await
            .map_err(|e| Error::kube(format!("writing status of PromotionPipeline {name}"), e))?;
    }
    Ok(())
}

async fn publish(ctx: &PipelineContext, pipeline: &PromotionPipeline, decision: &PipelineDecision) {
    if decision.events.is_empty() {
        return;
    }
    let recorder = Recorder::new(ctx.inner.client.clone(), ctx.inner.reporter.clone());
    let reference = pipeline.object_ref(&());
    for e in &decision.events {
        let published = recorder
            .publish(
                &KubeEvent {
                    type_: if e.reason.is_warning() {
                        EventType::Warning
                    } else {
                        EventType::Normal
                    },
                    reason: e.reason.to_string(),
                    note: Some(e.note.chars().take(1000).collect()),
                    action: e.reason.to_string(),
                    secondary: None,
                },
                &reference,
            )
            .await;
        if let Err(err) = published {
            warn!(pipeline = %pipeline.name_any(), error = %err, "publishing event failed");
        }
    }
}

async fn reconcile(
    pipeline: Arc<PromotionPipeline>,
    ctx: Arc<PipelineContext>,
) -> Result<Requeue, Error> {
    let ns = pipeline.namespace().ok_or(Error::MissingIdentity)?;
    let name = pipeline.name_any();
    let decision = reconcile_pipeline(&ctx, &ns, &name).await?;
    ctx.retries.succeeded(&format!("{ns}/{name}"));
    match decision {
        Some(d) => Ok(Requeue::requeue(
            d.requeue_after.unwrap_or(RESYNC).min(RESYNC),
        )),
        None => Ok(Requeue::await_change()),
    }
}

fn error_policy(
    pipeline: Arc<PromotionPipeline>,
    error: &Error,
    ctx: Arc<PipelineContext>,
) -> Requeue {
    let who = format!(
        "{}/{}",
        pipeline.namespace().unwrap_or_default(),
        pipeline.name_any()
    );
    let after = ctx.retries.failed(&who, error);
    if !error.is_conflict() {
        // Infrastructure (a write refused, a cluster gone): retried, never a verdict.
        warn!(pipeline = %who, error = %error, ?after, "pipeline reconcile failed");
    }
    Requeue::requeue(after)
}

/// Runs the pipeline controller until `shutdown` resolves: PromotionPipelines, woken by their
/// Releases, Approvals naming their releases, and Rollouts of their stages in this cluster
/// (stages elsewhere are polled).
pub async fn run(ctx: Arc<Context>, shutdown: impl Future<Output = ()> + Send + Sync + 'static) {
    let client = ctx.client.clone();
    let ns = ctx.config.namespace.clone();
    let (pipelines, releases, approvals, rollouts) = match ns.as_deref() {
        Some(ns) => (
            Api::<PromotionPipeline>::namespaced(client.clone(), ns),
            Api::<Release>::namespaced(client.clone(), ns),
            Api::<Approval>::namespaced(client.clone(), ns),
            Api::<Rollout>::all(client.clone()),
        ),
        None => (
            Api::<PromotionPipeline>::all(client.clone()),
            Api::<Release>::all(client.clone()),
            Api::<Approval>::all(client.clone()),
            Api::<Rollout>::all(client.clone()),
        ),
    };
    let controller = Controller::new(pipelines, watcher::Config::default());
    let store = controller.store();
    let by_release = store.clone();
    let by_approval = store.clone();
    let by_rollout = store.clone();
    let pctx = Arc::new(PipelineContext {
        inner: ctx,
        clusters: Clusters::default(),
        pipelines: store.clone(),
        retries: Default::default(),
    });
    controller
        .watches(releases, watcher::Config::default(), move |r: Release| {
            let ns = r.namespace();
            by_release
                .state()
                .into_iter()
                .filter(|p| p.namespace() == ns && p.name_any() == r.spec.pipeline)
                .map(|p| ObjectRef::from_obj(&*p))
                .collect::<Vec<_>>()
        })
        .watches(approvals, watcher::Config::default(), move |a: Approval| {
            // Release names start with their pipeline's name.
            let ns = a.namespace();
            by_approval
                .state()
                .into_iter()
                .filter(|p| {
                    p.namespace() == ns && a.spec.release.starts_with(&format!("{}-", p.name_any()))
                })
                .map(|p| ObjectRef::from_obj(&*p))
                .collect::<Vec<_>>()
        })
        .watches(rollouts, watcher::Config::default(), move |r: Rollout| {
            let ns = r.namespace().unwrap_or_default();
            let name = r.name_any();
            by_rollout
                .state()
                .into_iter()
                .filter(|p| {
                    let pns = p.namespace().unwrap_or_default();
                    p.spec.stages.iter().any(|s| {
                        s.rollout.cluster.is_none()
                            && s.rollout.name == name
                            && s.rollout.namespace.clone().unwrap_or_else(|| pns.clone()) == ns
                    })
                })
                .map(|p| ObjectRef::from_obj(&*p))
                .collect::<Vec<_>>()
        })
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, pctx)
        .for_each(|res| async move {
            if let Err(e) = res {
                debug!(error = %e, "pipeline controller event");
            }
        })
        .await;
}
