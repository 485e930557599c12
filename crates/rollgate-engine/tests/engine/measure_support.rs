//! What the measuring tests share: one reconcile of an AnalysisRun with every due measurement
//! given the same outcome, a single-value outcome, and reading a run's status.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use rollgate_api::{AnalysisPhase, AnalysisRunSpec, AnalysisRunStatus};
use rollgate_engine::measure::{Measured, MetricValue, Outcome, Sample, plan, record};

/// One reconcile of the run `s` at `now` ([`plan`] then [`record`]), every due measurement
/// getting `outcome`: the new status, when to look again and how many measurements were
/// taken.
pub fn measure_due(
    s: &AnalysisRunSpec,
    status: Option<&AnalysisRunStatus>,
    now: Timestamp,
    outcome: &Outcome,
) -> (AnalysisRunStatus, Option<Duration>, usize) {
    let p = plan(s, status, now);
    let n = p.due.len();
    let taken = p
        .due
        .iter()
        .map(|d| Measured {
            metric: d.metric.clone(),
            outcome: outcome.clone(),
            started_at: now,
            finished_at: now,
        })
        .collect();
    let d = record(s, Some(&p.status), taken, now);
    (d.status, d.requeue_after, n)
}

/// A one-sample vector answer of value `x`.
pub fn v(x: f64) -> Outcome {
    Outcome::Value(MetricValue::Vector(vec![Sample {
        labels: Default::default(),
        value: x,
    }]))
}

/// The run's phase (Pending until it has one).
pub fn phase(s: &AnalysisRunStatus) -> AnalysisPhase {
    s.phase.unwrap_or(AnalysisPhase::Pending)
}

/// The metadata of the first metric's last measurement.
pub fn last_metadata(s: &AnalysisRunStatus) -> BTreeMap<String, String> {
    s.metric_results[0]
        .measurements
        .last()
        .map(|m| m.metadata.clone())
        .unwrap_or_default()
}
