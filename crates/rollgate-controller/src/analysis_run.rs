//! Measuring AnalysisRuns: the imperative side of analysis.
//!
//! Each reconcile of a run asks the pure analysis engine ([`rollgate_engine::measure::plan`]) which
//! measurements are due, with their queries rendered; performs them against the run's
//! [`MetricSource`] (concurrently; a `sequential` metric's four counter queries too, each read
//! as one counter by [`measure::counter_reading`], and a `kayenta` metric's canary and
//! baseline queries, each read as one sample by [`measure::sample_reading`]), noting when each
//! query was sent and when its answer came;
//! hands the outcomes to [`rollgate_engine::measure::record`], which decides the measurement
//! and metric phases and the run's phase, on the blocking pool (it evaluates CEL conditions:
//! CPU work that must not stall other reconciles); and writes the status,
//! guarded by the `resourceVersion` read. The Rollout controller owns the runs, so a changed
//! run status wakes the rollout that waits for it.

use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use kube::api::PostParams;
use kube::{Api, Client};
use rollgate_api::AnalysisRun;
use rollgate_api::labels::FIELD_MANAGER;
use rollgate_api::{AnalysisRunSpec, AnalysisRunStatus};
use rollgate_engine::measure::{
    self, CounterQueries, CounterReadings, Measured, MetricValue, Outcome, PrometheusQuery,
    RunDecision, Sample, SamplePair, SampleQueries, SampleSide, Series,
};
use rollgate_prometheus::QueryResult;
use tracing::debug;

use crate::clock::Clock;
use crate::error::Error;
use crate::metrics_source::{MetricSource, QueryFor, build_request, resolve_secret_args};

/// What the run reconciler needs.
#[derive(Clone)]
pub struct RunContext {
    /// API client.
    pub client: Client,
    /// Source of "now".
    pub clock: Clock,
    /// Where measurements come from.
    pub source: Arc<dyn MetricSource>,
    /// Where measurements are counted.
    pub telemetry: Arc<crate::telemetry::Telemetry>,
    /// Retry delays of the runs whose last reconcile failed.
    pub retries: Arc<crate::retry::Retries>,
}

/// Converts a provider's answer into the analysis engine's value.
pub fn to_metric_value(result: QueryResult) -> MetricValue {
    match result {
        QueryResult::Scalar(v) => MetricValue::Scalar(v),
        QueryResult::Vector(samples) => MetricValue::Vector(
            samples
                .into_iter()
                .map(|(labels, value)| Sample { labels, value })
                .collect(),
        ),
        QueryResult::Matrix(series) => MetricValue::Matrix(
            series
                .into_iter()
                .map(|(labels, points)| Series { labels, points })
                .collect(),
        ),
    }
}

/// How long [`record_off_reactor`] waits for the conditions to be evaluated. Their cost is
/// bounded before evaluation ([`measure::MAX_CONDITION_COST`]); this is the backstop should
/// an evaluation still run long: its measurements become Error measurements.
pub const RECORD_DEADLINE: Duration = Duration::from_secs(10);

/// Runs `f` on tokio's blocking pool, off the threads that drive every other reconcile: a
/// CPU-bound computation there cannot hold up an unrelated release.
pub async fn off_reactor<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, tokio::task::JoinError> {
    tokio::task::spawn_blocking(f).await
}

/// Answers with at most this many values in all are recorded without [`off_reactor`].
pub const INLINE_VALUES: usize = 1_000;

/// Number of values in an outcome (what its conditions iterate over).
fn outcome_values(outcome: &Outcome) -> usize {
    match outcome {
        Outcome::Value(MetricValue::Scalar(_)) => 1,
        Outcome::Value(MetricValue::Vector(samples)) => samples.len(),
        Outcome::Value(MetricValue::Matrix(series)) => series.iter().map(|s| s.points.len()).sum(),
        _ => 0,
    }
}

/// [`measure::record`] (which evaluates each measurement's CEL conditions) run with
/// [`off_reactor`] and at most [`RECORD_DEADLINE`]: past it (or should it panic), the
/// measurements are recorded as errors, without their conditions.
pub async fn record_off_reactor(
    spec: &AnalysisRunSpec,
    status: &AnalysisRunStatus,
    taken: Vec<Measured>,
    now: k8s_openapi::jiff::Timestamp,
) -> RunDecision {
    // Small answers (the usual case: a handful of values) are evaluated in place: their
    // conditions cost next to nothing, and a blocking thread would make runs under tokio's
    // paused clock (scenarios, tests) depend on thread scheduling.
    let values: usize = taken.iter().map(|m| outcome_values(&m.outcome)).sum();
    if values <= INLINE_VALUES {
        return measure::record(spec, Some(status), taken, now);
    }
    let (owned_spec, owned_status, owned_taken) = (spec.clone(), status.clone(), taken.clone());
    let job =
        off_reactor(move || measure::record(&owned_spec, Some(&owned_status), owned_taken, now));
    let why = match tokio::time::timeout(RECORD_DEADLINE, job).await {
        Ok(Ok(decision)) => return decision,
        Ok(Err(e)) => format!("evaluating its conditions failed: {e}"),
        Err(_) => format!("its conditions took longer than {RECORD_DEADLINE:?} to evaluate"),
    };
    let failed = taken
        .into_iter()
        .map(|m| Measured {
            outcome: Outcome::ProviderError(format!("metric \"{}\": {why}; not used", m.metric)),
            ..m
        })
        .collect();
    measure::record(spec, Some(status), failed, now)
}

/// Performs one query of a measurement: builds its request (credentials, range) and asks the
/// source.
async fn query_one(
    ctx: &RunContext,
    ns: &str,
    about: QueryFor<'_>,
    query: &PrometheusQuery,
    now: k8s_openapi::jiff::Timestamp,
) -> Result<rollgate_prometheus::QueryResult, String> {
    let req = build_request(&ctx.client, ns, query, now).await?;
    ctx.source.query(about, &req).await
}

/// Reads the four counters of a sequential metric concurrently. Every answer must be one
/// counter or no series ([`measure::counter_reading`]; the engine decides what no series
/// means); the first that is neither, or a failed query, makes the measurement an error naming
/// that query.
async fn read_counters(
    ctx: &RunContext,
    ns: &str,
    about: QueryFor<'_>,
    queries: &CounterQueries,
    now: k8s_openapi::jiff::Timestamp,
) -> Outcome {
    let answers = join_all(queries.all().into_iter().map(|(series, q)| async move {
        let about = QueryFor {
            counter: Some(series),
            ..about
        };
        let reading = query_one(ctx, ns, about, q, now)
            .await
            .and_then(|r| measure::counter_reading(&to_metric_value(r)))
            .map_err(|e| format!("{series} query \"{}\": {e}", q.query));
        (series, reading)
    }))
    .await;
    let mut readings = CounterReadings::default();
    for (series, answer) in answers {
        match answer {
            Ok(v) => readings.set(series, v),
            Err(e) => {
                return Outcome::ProviderError(format!("metric \"{}\": {e}", about.metric));
            }
        }
    }
    Outcome::Counters(readings)
}

/// Reads the canary and the baseline query of each metric of a kayenta metric, all
/// concurrently. Every answer must be one number or no data ([`measure::sample_reading`]);
/// the first that is not, or a failed query, makes the measurement an error naming that
/// query (and it adds no sample).
async fn read_samples(
    ctx: &RunContext,
    ns: &str,
    about: QueryFor<'_>,
    queries: &[SampleQueries],
    now: k8s_openapi::jiff::Timestamp,
) -> Outcome {
    let reads = queries.iter().flat_map(|q| {
        [
            (SampleSide::Canary, &q.canary),
            (SampleSide::Baseline, &q.baseline),
        ]
        .map(|(side, query)| async move {
            let about = QueryFor {
                sample: Some((q.name.as_str(), side)),
                ..about
            };
            let side_name = match side {
                SampleSide::Canary => "canary",
                SampleSide::Baseline => "baseline",
            };
            query_one(ctx, ns, about, query, now)
                .await
                .and_then(|r| measure::sample_reading(&to_metric_value(r)))
                .map_err(|e| {
                    format!(
                        "kayenta metric \"{}\" {side_name} query \"{}\": {e}",
                        q.name, query.query
                    )
                })
        })
    });
    let answers = join_all(reads).await;
    let mut values = Vec::with_capacity(answers.len());
    for answer in answers {
        match answer {
            Ok(v) => values.push(v),
            Err(e) => {
                return Outcome::ProviderError(format!("metric \"{}\": {e}", about.metric));
            }
        }
    }
    Outcome::Samples(
        values
            .chunks_exact(2)
            .map(|pair| SamplePair {
                canary: pair[0],
                baseline: pair[1],
            })
            .collect(),
    )
}

/// Measures what is due of one AnalysisRun and writes its status. Returns when to look again
/// (`None`: the run is finished or gone).
pub async fn reconcile_run(
    ctx: &RunContext,
    ns: &str,
    name: &str,
) -> Result<Option<Duration>, Error> {
    let api = Api::<AnalysisRun>::namespaced(ctx.client.clone(), ns);
    let Some(run) = api
        .get_opt(name)
        .await
        .map_err(|e| Error::kube(format!("reading AnalysisRun {ns}/{name}"), e))?
    else {
        return Ok(None);
    };
    if run
        .status
        .as_ref()
        .and_then(|s| s.phase)
        .is_some_and(|p| p.is_completed())
    {
        return Ok(None);
    }
    let now = ctx.clock.now();
    let mut spec = run.spec.clone();
    let args = resolve_secret_args(&ctx.client, ns, &spec.args).await;
    let args_error = match args {
        Ok(args) => {
            spec.args = args;
            None
        }
        Err(e) => Some(e),
    };
    let plan = measure::plan(&spec, run.status.as_ref(), now);
    let no_labels = std::collections::BTreeMap::new();
    let labels = run.metadata.labels.as_ref().unwrap_or(&no_labels);
    let measurements = plan.due.iter().map(|due| {
        let args_error = args_error.clone();
        let about = QueryFor {
            namespace: ns,
            run: name,
            labels,
            metric: &due.metric,
            counter: None,
            sample: None,
        };
        async move {
            let judged = (&due.counters, &due.samples);
            let (outcome, started_at) = match (&due.query, judged, args_error) {
                (_, _, Some(e)) => (Outcome::ProviderError(e), ctx.clock.now()),
                (_, (Some(counters), _), None) => {
                    let sent = ctx.clock.now();
                    (read_counters(ctx, ns, about, counters, now).await, sent)
                }
                (_, (None, Some(samples)), None) => {
                    let sent = ctx.clock.now();
                    (read_samples(ctx, ns, about, samples, now).await, sent)
                }
                (Err(e), (None, None), None) => {
                    (Outcome::ProviderError(e.to_string()), ctx.clock.now())
                }
                (Ok(metric), (None, None), None) => {
                    match build_request(&ctx.client, ns, metric, now).await {
                        Err(e) => (Outcome::ProviderError(e), ctx.clock.now()),
                        Ok(req) => {
                            // From the moment the query is sent to the moment its answer came.
                            let sent = ctx.clock.now();
                            let outcome = match ctx.source.query(about, &req).await {
                                Ok(result) => Outcome::Value(to_metric_value(result)),
                                Err(e) => Outcome::ProviderError(e),
                            };
                            (outcome, sent)
                        }
                    }
                }
            };
            Measured {
                metric: due.metric.clone(),
                outcome,
                started_at,
                finished_at: ctx.clock.now(),
            }
        }
    });
    let taken = join_all(measurements).await;
    let measured: Vec<String> = taken.iter().map(|m| m.metric.clone()).collect();
    let decision = record_off_reactor(&spec, &plan.status, taken, ctx.clock.now()).await;
    for metric in &measured {
        let phase = decision
            .status
            .metric_results
            .iter()
            .find(|r| &r.name == metric)
            .and_then(|r| r.measurements.last())
            .and_then(|m| m.phase)
            .map_or_else(|| "Unknown".to_string(), |p| p.to_string());
        ctx.telemetry.measured(metric, &phase);
    }
    if run.status.as_ref() != Some(&decision.status) {
        let mut updated = run.clone();
        updated.status = Some(decision.status.clone());
        api.replace_status(
            name,
            &PostParams {
                dry_run: false,
                field_manager: Some(FIELD_MANAGER.to_string()),
            },
            &updated,
        )
        .await
        .map_err(|e| Error::kube(format!("writing the status of AnalysisRun {ns}/{name}"), e))?;
        debug!(run = %format!("{ns}/{name}"), phase = ?decision.status.phase, "analysis run measured");
        // Recorded once: the write that completes a run succeeds once, completed runs are
        // not measured again.
        if let Some(phase) = decision.status.phase.filter(|p| p.is_completed())
            && let Some(created) = run.metadata.creation_timestamp.as_ref()
        {
            let after = ctx.clock.now().duration_since(created.0);
            ctx.telemetry.analysis_decided(
                &phase.to_string(),
                Duration::try_from(after).unwrap_or_default(),
            );
        }
    }
    Ok(decision.requeue_after)
}
