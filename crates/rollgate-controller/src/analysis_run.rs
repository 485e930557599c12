//! Measuring AnalysisRuns: the imperative side of analysis.
//!
//! Each reconcile of a run asks the pure analysis engine ([`rollgate_engine::measure::plan`]) which
//! measurements are due, with their queries rendered; performs them against the run's
//! [`MetricSource`] (concurrently); hands the outcomes to [`rollgate_engine::measure::record`], which
//! decides the measurement and metric phases and the run's phase; and writes the status,
//! guarded by the `resourceVersion` read. The Rollout controller owns the runs, so a changed
//! run status wakes the rollout that waits for it.

use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use kube::api::PostParams;
use kube::{Api, Client};
use rollgate_api::AnalysisRun;
use rollgate_api::labels::FIELD_MANAGER;
use rollgate_engine::measure::{self, MetricValue, Outcome, Sample, Series};
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
        };
        async move {
            let outcome = match (&due.query, args_error) {
                (_, Some(e)) => Outcome::ProviderError(e),
                (Err(e), None) => Outcome::ProviderError(e.to_string()),
                (Ok(metric), None) => match build_request(&ctx.client, ns, metric, now).await {
                    Err(e) => Outcome::ProviderError(e),
                    Ok(req) => match ctx.source.query(about, &req).await {
                        Ok(result) => Outcome::Value(to_metric_value(result)),
                        Err(e) => Outcome::ProviderError(e),
                    },
                },
            };
            (due.metric.clone(), outcome)
        }
    });
    let outcomes = join_all(measurements).await;
    let measured: Vec<String> = outcomes.iter().map(|(m, _)| m.clone()).collect();
    let decision = measure::record(&spec, Some(&plan.status), outcomes, ctx.clock.now());
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
