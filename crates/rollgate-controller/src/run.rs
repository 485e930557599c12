//! The kube-rs controller loop: watches, reconcile, error policy.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{PodTemplate, Service};
use kube::api::{ApiResource, DynamicObject, PartialObjectMeta, PostParams};
use kube::runtime::controller::{Action as Requeue, Controller};
use kube::runtime::events::{Event as KubeEvent, EventType, Recorder, Reporter};

use crate::event_budget::{BURST, REFILL, Verdict};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::reflector::store::Writer;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use rollgate_api::decode::{self, DecodeError};
use rollgate_api::labels::{FIELD_MANAGER, ROLLOUT_NAME};
use rollgate_api::{AnalysisRun, EventReason, Rollout, RolloutStatus};
use rollgate_engine::validate::Problem;
use rollgate_engine::{Decision, Input, Observed, WorkloadKind};
use tracing::{debug, info, warn};

use crate::analysis_run::{RunContext, reconcile_run};
use crate::clock::Clock;
use crate::error::{Error, has_code};
use crate::metrics_source::{MetricSource, PrometheusSource};
use crate::telemetry::Telemetry;
use crate::watch_health::WatchHealth;
use crate::{apply, observe};

/// Longest time between two reconciles of an unchanged rollout.
const RESYNC: Duration = Duration::from_secs(15 * 60);

/// The receiving end of the webhook receiver's channel, shareable by the controller
/// instances of one process (one takes it at a time).
pub type AlertInbox =
    Arc<tokio::sync::Mutex<tokio::sync::mpsc::Receiver<crate::alert_receiver::DeliveredAlert>>>;

/// Controller settings.
#[derive(Clone)]
pub struct Config {
    /// Only manage rollouts in this namespace (all namespaces when `None`).
    pub namespace: Option<String>,
    /// Source of "now".
    pub clock: Clock,
    /// Name of this controller instance, for events.
    pub instance: String,
    /// Where AnalysisRun measurements come from. `None`: this controller does not measure
    /// (the runs' phases are set by someone else, as in tests that drive them by hand).
    pub metric_source: Option<Arc<dyn MetricSource>>,
    /// Where the firing alerts of `spec.alerts` come from.
    pub alert_source: Arc<dyn crate::alert_source::AlertSource>,
    /// Alerts delivered by Alertmanager to the webhook receiver
    /// ([`crate::alert_receiver`]): each wakes the rollouts whose `spec.alerts` matchers it
    /// matches, whose reconcile then pulls the source to confirm.
    pub alert_deliveries: Option<AlertInbox>,
    /// The controller's own metrics (served by [`crate::telemetry::serve`]).
    pub telemetry: Arc<Telemetry>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("namespace", &self.namespace)
            .field("clock", &self.clock)
            .field("instance", &self.instance)
            .field("measures", &self.metric_source.is_some())
            .finish()
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            namespace: None,
            clock: Clock::system(),
            instance: "rollgate-controller".into(),
            metric_source: Some(Arc::new(PrometheusSource)),
            alert_source: Arc::new(crate::alert_source::PullSource),
            alert_deliveries: None,
            telemetry: Arc::new(Telemetry::new()),
        }
    }
}

/// Shared state of the reconcilers.
pub struct Context {
    /// API client.
    pub client: Client,
    /// Who publishes events.
    pub reporter: Reporter,
    /// Settings.
    pub config: Config,
    /// Event budget of each Rollout.
    pub event_budget: crate::event_budget::EventBudget,
    /// Retry delays of the Rollouts whose last reconcile failed.
    pub retries: crate::retry::Retries,
}

impl Context {
    /// A context for `client` and `config`.
    pub fn new(client: Client, config: Config) -> Self {
        let reporter = Reporter {
            controller: "rollgate".into(),
            instance: Some(config.instance.clone()),
        };
        Self {
            client,
            reporter,
            config,
            event_budget: Default::default(),
            retries: Default::default(),
        }
    }
}

/// What one reconcile did.
#[derive(Debug, Clone)]
pub struct Report {
    /// The engine's decision.
    pub decision: Decision,
    /// Whether the status was written.
    pub status_written: bool,
    /// Time the engine took to decide.
    pub decided_in: Duration,
}

/// Reconciles one rollout: fresh reads, engine, actions, events, status.
pub async fn reconcile_rollout(
    ctx: &Context,
    ns: &str,
    name: &str,
) -> Result<Option<Report>, Error> {
    let raw_api =
        Api::<DynamicObject>::namespaced_with(ctx.client.clone(), ns, &rollout_resource());
    let Some(raw) = raw_api
        .get_opt(name)
        .await
        .map_err(|e| Error::kube(format!("reading Rollout {ns}/{name}"), e))?
    else {
        ctx.event_budget.forget(&format!("{ns}/{name}"));
        return Ok(None);
    };
    if raw.metadata.deletion_timestamp.is_some() {
        return Ok(None);
    }
    // Decoded here, one object at a time: a Rollout the types cannot represent (stored under
    // a looser CRD, say) is reported on its own status instead of blinding the controller.
    let rollout = match decode_rollout(&raw) {
        Ok(rollout) => rollout,
        Err(problem) => {
            return report_undecodable(ctx, &raw_api, raw, problem)
                .await
                .map(Some);
        }
    };
    let api = Api::<Rollout>::namespaced(ctx.client.clone(), ns);
    let mut observed = observe::observe(&ctx.client, &rollout).await?;
    if rollgate_engine::alerts_wanted(&rollout)
        && let Some(spec) = rollout.spec.alerts.as_ref()
    {
        let about = crate::alert_source::AlertsFor {
            namespace: ns,
            rollout: name,
            spec,
        };
        observed.alerts = match ctx.config.alert_source.firing(&ctx.client, about).await {
            Ok(alerts) => rollgate_engine::ObservedAlerts::Firing(alerts),
            Err(why) => {
                warn!(rollout = %format!("{ns}/{name}"), %why, "alert source unavailable");
                rollgate_engine::ObservedAlerts::Unknown(why)
            }
        };
    }
    let started = std::time::Instant::now();
    let decision = rollgate_engine::reconcile(Input {
        rollout: &rollout,
        observed: &observed,
        now: ctx.config.clock.now(),
    });
    let decided_in = started.elapsed();
    for action in &decision.actions {
        debug!(rollout = %format!("{ns}/{name}"), ?action, "applying");
        apply::apply(&ctx.client, ns, name, action).await?;
    }
    // Events that report a change just made to another object go out now: it is done, and no
    // later reconcile decides it again. Events of a transition recorded in the status go out
    // once that status is written: if the write fails (409), the retry decides the same
    // transition again and publishes it then, so it is published once.
    let (done, transitions): (Vec<_>, Vec<_>) = decision
        .events
        .iter()
        .cloned()
        .partition(|e| e.reason.reports_action());
    let who = format!("{ns}/{name}");
    publish_events(ctx, &rollout, &done, &who).await;
    let current = rollout.status.clone().unwrap_or_default();
    let status_written = decision.status != current;
    if status_written {
        let mut updated = rollout.clone();
        updated.status = Some(decision.status.clone());
        // The object carries its resourceVersion: a concurrent change (a user's abort or
        // promote) makes this fail with 409 and the reconcile runs again on fresh data.
        api.replace_status(
            name,
            &PostParams {
                dry_run: false,
                field_manager: Some(FIELD_MANAGER.into()),
            },
            &updated,
        )
        .await
        .map_err(|e| Error::kube(format!("writing status of Rollout {ns}/{name}"), e))?;
    }
    publish_events(ctx, &rollout, &transitions, &who).await;
    Ok(Some(Report {
        decision,
        status_written,
        decided_in,
    }))
}

/// The API resource of Rollouts, for the untyped reads and watches.
pub fn rollout_resource() -> ApiResource {
    ApiResource::erase::<Rollout>(&())
}

/// The API resource of AnalysisRuns, for the untyped watch of the run controller.
fn run_resource() -> ApiResource {
    ApiResource::erase::<AnalysisRun>(&())
}

/// Decodes a Rollout read untyped; on failure, names the field that does not decode.
pub fn decode_rollout(raw: &DynamicObject) -> Result<Rollout, DecodeError> {
    let value = serde_json::to_value(raw).map_err(|e| DecodeError {
        field: String::new(),
        problem: e.to_string(),
    })?;
    decode::rollout(&value)
}

/// Reports a Rollout that cannot be decoded as the engine reports an invalid spec: Degraded
/// and an `InvalidSpec` condition naming the field (the status is written into the object as
/// read, guarded by its resourceVersion), one Warning Event per generation. Nothing else is
/// touched.
async fn report_undecodable(
    ctx: &Context,
    api: &Api<DynamicObject>,
    raw: DynamicObject,
    problem: DecodeError,
) -> Result<Report, Error> {
    let ns = raw.namespace().unwrap_or_default();
    let name = raw.name_any();
    let who = format!("{ns}/{name}");
    // The status may still decode (the controller wrote it); the engine keeps its conditions
    // and reports the problem once per generation.
    let status = raw
        .data
        .get("status")
        .and_then(|s| decode::decode::<RolloutStatus>(s).ok())
        .unwrap_or_default();
    let shell = Rollout {
        metadata: raw.metadata.clone(),
        spec: Default::default(),
        status: Some(status),
    };
    let problems = [Problem {
        field: problem.field.clone(),
        expected: problem.problem.clone(),
    }];
    let started = std::time::Instant::now();
    let decision = rollgate_engine::validate::reject(
        Input {
            rollout: &shell,
            observed: &Observed::default(),
            now: ctx.config.clock.now(),
        },
        &problems,
    );
    let decided_in = started.elapsed();
    let current = shell.status.clone().unwrap_or_default();
    let status_written = decision.status != current;
    if status_written {
        warn!(rollout = %who, problem = %problem, "cannot decode the Rollout: reported as InvalidSpec");
        let mut updated = raw.clone();
        updated.data["status"] =
            serde_json::to_value(&decision.status).map_err(|source| Error::Serialize {
                what: format!("the status of Rollout {who}"),
                source,
            })?;
        api.replace_status(
            &name,
            &PostParams {
                dry_run: false,
                field_manager: Some(FIELD_MANAGER.into()),
            },
            &updated,
        )
        .await
        .map_err(|e| Error::kube(format!("writing status of Rollout {who}"), e))?;
    } else {
        debug!(rollout = %who, problem = %problem, "cannot decode the Rollout (reported already)");
    }
    publish_events(ctx, &shell, &decision.events, &who).await;
    Ok(Report {
        decision,
        status_written,
        decided_in,
    })
}

/// Publishes the engine's events on the Rollout. Best effort: the status carries the same facts.
///
/// kube's `Recorder` folds events with the same reason and action into one series (keeping the
/// first note), so each reconcile uses a fresh recorder and repeated reasons get distinct
/// actions: every transition stays a separate, readable event.
async fn publish_events(
    ctx: &Context,
    rollout: &Rollout,
    events: &[rollgate_engine::Event],
    who: &str,
) {
    if events.is_empty() {
        return;
    }
    let recorder = Recorder::new(ctx.client.clone(), ctx.reporter.clone());
    let reference = rollout.object_ref(&());
    let mut seen: std::collections::BTreeMap<EventReason, usize> =
        std::collections::BTreeMap::new();
    let mut queue: Vec<rollgate_engine::Event> = Vec::with_capacity(events.len());
    for event in events {
        info!(rollout = %who, reason = event.reason.as_str(), "{}", event.note);
        if event.warning {
            queue.push(event.clone());
            continue;
        }
        match ctx.event_budget.take(who, ctx.config.clock.now()) {
            Verdict::Drop => {}
            Verdict::Publish { dropped } => {
                if dropped > 0 {
                    queue.push(rollgate_engine::Event {
                        reason: EventReason::EventsThrottled,
                        warning: false,
                        note: format!(
                            "{dropped} Events of this rollout were not published (more than \
                             {BURST} at once, then one per {}s); its status shows where it is",
                            REFILL.as_secs()
                        ),
                    });
                }
                queue.push(event.clone());
            }
        }
    }
    for event in &queue {
        let n = seen.entry(event.reason).or_default();
        *n += 1;
        let action = if *n == 1 {
            event.reason.to_string()
        } else {
            format!("{}-{n}", event.reason)
        };
        let published = recorder
            .publish(
                &KubeEvent {
                    type_: if event.warning {
                        EventType::Warning
                    } else {
                        EventType::Normal
                    },
                    reason: event.reason.to_string(),
                    note: Some(event.note.chars().take(1000).collect()),
                    action,
                    secondary: None,
                },
                &reference,
            )
            .await;
        if let Err(e) = published {
            warn!(rollout = %who, error = %e, "publishing event failed");
        }
    }
}

async fn reconcile(rollout: Arc<DynamicObject>, ctx: Arc<Context>) -> Result<Requeue, Error> {
    let _running = ctx.config.telemetry.reconcile_running();
    let ns = rollout.namespace().ok_or(Error::MissingIdentity)?;
    let name = rollout.name_any();
    let key = format!("{ns}/{name}");
    let started = std::time::Instant::now();
    let span = tracing::info_span!("reconcile", rollout = %key);
    let result = tracing::Instrument::instrument(reconcile_rollout(&ctx, &ns, &name), span).await?;
    ctx.retries.succeeded(&key);
    let telemetry = &ctx.config.telemetry;
    match result {
        Some(report) => {
            telemetry.reconciled(&key, &report.decision, started.elapsed(), report.decided_in);
            Ok(Requeue::requeue(
                report.decision.requeue_after.unwrap_or(RESYNC).min(RESYNC),
            ))
        }
        None => {
            telemetry.forget(&key);
            Ok(Requeue::await_change())
        }
    }
}

fn error_policy(rollout: Arc<DynamicObject>, error: &Error, ctx: Arc<Context>) -> Requeue {
    ctx.config.telemetry.failed(error.label());
    let who = format!(
        "{}/{}",
        rollout.namespace().unwrap_or_default(),
        rollout.name_any()
    );
    let after = ctx.retries.failed(&who, error);
    if error.is_conflict() || matches!(error, Error::Kube { source, .. } if has_code(source, 404)) {
        debug!(rollout = %who, error = %error, ?after, "retrying after conflict");
    } else {
        warn!(rollout = %who, error = %error, kind = error.label(), ?after, "reconcile failed");
    }
    Requeue::requeue(after)
}

fn api<K>(client: &Client, ns: Option<&str>) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match ns {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

fn dynamic_api(client: &Client, ns: Option<&str>, resource: &ApiResource) -> Api<DynamicObject> {
    match ns {
        Some(ns) => Api::namespaced_with(client.clone(), ns, resource),
        None => Api::all_with(client.clone(), resource),
    }
}

/// Reports every item of a watcher's stream to `health` (the stream owns it: dropping the
/// stream unregisters the watch), and waits before retrying after an error with kube's
/// watcher backoff (exponential with jitter, 0.8 s to 30 s, as client-go), so that a failing
/// API server is not asked again at once, in a loop.
fn tracked<K>(
    events: impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send,
    health: WatchHealth,
) -> impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send {
    events
        .default_backoff()
        .inspect(move |event| health.saw(event))
}

/// Runs the controller until `shutdown` resolves.
///
/// Rollouts and AnalysisRuns are watched untyped (`DynamicObject`) and decoded one by one in
/// reconcile, so that an object the types cannot represent is reported on its own instead of
/// failing the list of all of them. `/readyz` follows the watches: ready once each one listed
/// its objects, not while one keeps failing.
pub async fn run(
    client: Client,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) -> Result<(), Error> {
    let ns = config.namespace.clone();
    let telemetry = config.telemetry.clone();
    let owned = watcher::Config::default().labels(ROLLOUT_NAME);
    let rollout_type = rollout_resource();
    let writer = Writer::<DynamicObject>::new(rollout_type.clone());
    let rollouts = writer.as_reader();
    let rollout_events = tracked(
        watcher(
            dynamic_api(&client, ns.as_deref(), &rollout_type),
            watcher::Config::default(),
        ),
        telemetry.watch("rollouts"),
    )
    .reflect(writer)
    .applied_objects();
    let replica_set_events = tracked(
        watcher(
            api::<PartialObjectMeta<ReplicaSet>>(&client, ns.as_deref()),
            owned.clone(),
        ),
        telemetry.watch("replicasets"),
    )
    .touched_objects();
    let owned_run_events = tracked(
        watcher(
            api::<PartialObjectMeta<AnalysisRun>>(&client, ns.as_deref()),
            owned,
        ),
        telemetry.watch("analysisruns"),
    )
    .touched_objects();
    let service_events = tracked(
        watcher(
            api::<Service>(&client, ns.as_deref()),
            watcher::Config::default(),
        ),
        telemetry.watch("services"),
    )
    .touched_objects();
    // Deployments, ReplicaSets and PodTemplates named by a `spec.workloadRef` (Argo Rollouts):
    // a change of one (its template, its size) wakes the rollouts that refer to it. Metadata
    // is enough to be woken. (The rollouts' own ReplicaSets are watched above, by label; a
    // referenced one carries no rollout label, so it needs a watch of its own.)
    let deployment_events = tracked(
        watcher(
            api::<PartialObjectMeta<Deployment>>(&client, ns.as_deref()),
            watcher::Config::default(),
        ),
        telemetry.watch("deployments"),
    )
    .touched_objects();
    let referenced_replica_set_events = tracked(
        watcher(
            api::<PartialObjectMeta<ReplicaSet>>(&client, ns.as_deref()),
            watcher::Config::default(),
        ),
        telemetry.watch("replicasets (workloadRef)"),
    )
    .touched_objects();
    let pod_template_events = tracked(
        watcher(
            api::<PartialObjectMeta<PodTemplate>>(&client, ns.as_deref()),
            watcher::Config::default(),
        ),
        telemetry.watch("podtemplates"),
    )
    .touched_objects();
    let runs = config.metric_source.clone().map(|source| {
        let run_ctx = Arc::new(RunContext {
            client: client.clone(),
            clock: config.clock,
            source,
            telemetry: config.telemetry.clone(),
            retries: Arc::default(),
        });
        let run_type = run_resource();
        let writer = Writer::<DynamicObject>::new(run_type.clone());
        let reader = writer.as_reader();
        let events = tracked(
            watcher(
                dynamic_api(&client, ns.as_deref(), &run_type),
                watcher::Config::default(),
            ),
            telemetry.watch("analysisruns (measuring)"),
        )
        .reflect(writer)
        .applied_objects();
        Controller::for_stream_with(events, reader, run_type)
            .run(reconcile_analysis_run, run_error_policy, run_ctx)
            .for_each(|res| async move {
                if let Err(e) = res {
                    debug!(error = %e, "analysis run controller event");
                }
            })
    });
    let wakeups = alert_wakeups(
        config.alert_deliveries.clone(),
        rollouts.clone(),
        rollout_type.clone(),
    );
    let ctx = Arc::new(Context::new(client.clone(), config));
    // Promotion pipelines: stopped with the rollout controller (below).
    let pipelines = crate::pipeline::run(ctx.clone(), std::future::pending());
    telemetry.set_ready(true);
    let mapper_type = rollout_type.clone();
    let workload_rollouts = rollouts.clone();
    let workload_type = rollout_type.clone();
    let rollouts_done = Controller::for_stream_with(rollout_events, rollouts.clone(), rollout_type)
        .owns_stream(replica_set_events)
        .owns_stream(owned_run_events)
        .watches_stream(service_events, move |svc: Service| {
            let svc_ns = svc.namespace();
            let svc_name = svc.name_any();
            rollouts
                .state()
                .into_iter()
                .filter(|r| r.namespace() == svc_ns)
                .filter(|r| {
                    // A Rollout that does not decode names no Service it could be woken for.
                    decode_rollout(r)
                        .is_ok_and(|r| rollgate_engine::references(&r).services.contains(&svc_name))
                })
                .map(|r| ObjectRef::from_obj_with(&*r, mapper_type.clone()))
                .collect::<Vec<_>>()
        })
        .watches_stream(
            deployment_events,
            referrers(
                WorkloadKind::Deployment,
                workload_rollouts.clone(),
                workload_type.clone(),
            ),
        )
        .watches_stream(
            referenced_replica_set_events,
            referrers(
                WorkloadKind::ReplicaSet,
                workload_rollouts.clone(),
                workload_type.clone(),
            ),
        )
        .watches_stream(
            pod_template_events,
            referrers(WorkloadKind::PodTemplate, workload_rollouts, workload_type),
        )
        .reconcile_on(wakeups)
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|res| async move {
            if let Err(e) = res {
                debug!(error = %e, "controller event");
            }
        });
    match runs {
        // The run and pipeline controllers stop with the rollout controller (on shutdown).
        Some(runs) => {
            tokio::select! {
                () = rollouts_done => {}
                () = runs => {}
                () = pipelines => {}
            }
        }
        None => {
            tokio::select! {
                () = rollouts_done => {}
                () = pipelines => {}
            }
        }
    }
    telemetry.set_ready(false);
    Ok(())
}

/// Maps a changed object of `kind` to the rollouts whose `spec.workloadRef` names it (same
/// namespace, kind and name).
fn referrers<K: Resource + ResourceExt>(
    kind: WorkloadKind,
    rollouts: kube::runtime::reflector::Store<DynamicObject>,
    rollout_type: ApiResource,
) -> impl Fn(K) -> Vec<ObjectRef<DynamicObject>> + Send + Sync + 'static {
    move |obj: K| {
        let obj_ns = obj.namespace();
        let named = Some((kind, obj.name_any()));
        rollouts
            .state()
            .into_iter()
            .filter(|r| r.namespace() == obj_ns)
            .filter(|r| {
                // A Rollout that does not decode names no object it could be woken for.
                decode_rollout(r).is_ok_and(|r| rollgate_engine::references(&r).workload == named)
            })
            .map(|r| ObjectRef::from_obj_with(&*r, rollout_type.clone()))
            .collect()
    }
}

/// The rollouts each delivered firing alert concerns: those whose `spec.alerts` matchers all
/// match its labels (resolved alerts wake nothing: a resolved alert never resumes a release).
fn alert_wakeups(
    inbox: Option<AlertInbox>,
    rollouts: kube::runtime::reflector::Store<DynamicObject>,
    rollout_type: ApiResource,
) -> impl futures::Stream<Item = ObjectRef<DynamicObject>> + Send + 'static {
    futures::stream::unfold(inbox, |inbox| async move {
        let inbox = inbox?;
        let next = inbox.lock().await.recv().await?;
        Some((next, Some(inbox)))
    })
    .flat_map(move |alert| {
        let woken: Vec<ObjectRef<DynamicObject>> = if alert.firing {
            rollouts
                .state()
                .into_iter()
                .filter(|raw| {
                    decode_rollout(raw).is_ok_and(|r| {
                        r.spec.alerts.as_ref().is_some_and(|a| {
                            a.matchers.iter().all(|m| {
                                m.parse::<rollgate_api::matcher::Matcher>()
                                    .is_ok_and(|m| m.matches(&alert.labels))
                            })
                        })
                    })
                })
                .map(|raw| ObjectRef::from_obj_with(&*raw, rollout_type.clone()))
                .collect()
        } else {
            Vec::new()
        };
        if !woken.is_empty() {
            debug!(alert = %alert.name, rollouts = woken.len(), "delivered alert wakes rollouts");
        }
        futures::stream::iter(woken)
    })
}

async fn reconcile_analysis_run(
    run: Arc<DynamicObject>,
    ctx: Arc<RunContext>,
) -> Result<Requeue, Error> {
    let _running = ctx.telemetry.reconcile_running();
    let ns = run.namespace().ok_or(Error::MissingIdentity)?;
    let name = run.name_any();
    // One run the types cannot represent is left alone (its rollout waits for a phase that
    // does not come: its own progress deadline applies); the others are measured.
    let decoded = serde_json::to_value(&*run)
        .map_err(|e| e.to_string())
        .and_then(|v| decode::decode::<AnalysisRun>(&v).map_err(|e| e.to_string()));
    if let Err(problem) = decoded {
        warn!(run = %format!("{ns}/{name}"), %problem, "cannot decode the AnalysisRun: not measured");
        return Ok(Requeue::await_change());
    }
    let next = reconcile_run(&ctx, &ns, &name).await?;
    ctx.retries.succeeded(&format!("{ns}/{name}"));
    match next {
        Some(after) => Ok(Requeue::requeue(after)),
        None => Ok(Requeue::await_change()),
    }
}

fn run_error_policy(run: Arc<DynamicObject>, error: &Error, ctx: Arc<RunContext>) -> Requeue {
    let who = format!("{}/{}", run.namespace().unwrap_or_default(), run.name_any());
    let after = ctx.retries.failed(&who, error);
    if error.is_conflict() {
        debug!(run = %who, error = %error, ?after, "retrying after conflict");
    } else {
        warn!(run = %who, error = %error, kind = error.label(), ?after, "measuring failed");
    }
    Requeue::requeue(after)
}
