//! The AnalysisRun state machine: which measurements are due, and what they add up to.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use rollgate_api::{AnalysisPhase, AnalysisRunSpec, AnalysisRunStatus, Measurement, MetricResult};

use crate::judge::kayenta::Verdict;
use crate::judge::sequential::Decision;

use super::condition;
use super::kayenta::{self, Judged, SamplePair, SampleQueries, render_samples};
use super::provider::PrometheusQuery;
use super::sequential::{self, CounterQueries, CounterReadings, render_counters};
use super::spec::{ERROR_RETRY, MetricSpec, run_args, run_metrics};
use super::value::MetricValue;

/// A measurement to take now.
#[derive(Debug, Clone, PartialEq)]
pub struct Due {
    /// The metric.
    pub metric: String,
    /// Its query with every placeholder substituted, or why that failed (the measurement
    /// is then an error). For a sequential metric whose queries rendered, the canary's events
    /// query (measure [`Due::counters`] instead); for a kayenta metric, its first metric's
    /// canary query (measure [`Due::samples`] instead).
    pub query: Result<PrometheusQuery, String>,
    /// A sequential metric's four counter queries, rendered: read each (an instant query) and
    /// record [`Outcome::Counters`]. `None` for other metrics and when rendering failed.
    pub counters: Option<CounterQueries>,
    /// A kayenta metric's queries, rendered for the canary and the baseline of each of its
    /// metrics: read each (an instant query, [`super::sample_reading`]) and record
    /// [`Outcome::Samples`]. `None` for other metrics and when rendering failed.
    pub samples: Option<Vec<SampleQueries>>,
}

/// What [`plan`] decided.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Measurements due now.
    pub due: Vec<Due>,
    /// The status to start from (initialised, or finished when terminated).
    pub status: AnalysisRunStatus,
    /// When the next measurement is due if none is now.
    pub requeue_after: Option<Duration>,
}

/// How one measurement went.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The provider answered.
    Value(MetricValue),
    /// The provider failed (unreachable, timeout, rejected query): an Error measurement.
    ProviderError(String),
    /// The four counter readings of a sequential metric, taken by [`Due::counters`] (each
    /// answer read with [`super::counter_reading`], `None` where it held no series; one that
    /// could not be read makes the measurement a [`Outcome::ProviderError`] naming its query).
    Counters(CounterReadings),
    /// The readings of a kayenta metric, taken by [`Due::samples`]: one pair per metric, in
    /// the same order, NaN where a query returned no data (an answer that could not be read
    /// makes the measurement a [`Outcome::ProviderError`] naming its query).
    Samples(Vec<SamplePair>),
}

/// One measurement taken: its metric, how it went, and when.
#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    /// The metric.
    pub metric: String,
    /// How it went.
    pub outcome: Outcome,
    /// When the query was sent (the measurement's `startedAt`).
    pub started_at: Timestamp,
    /// When the answer (or the failure) came (its `finishedAt`).
    pub finished_at: Timestamp,
}

/// Longest message kept in a measurement or metric result, in characters (a provider's error
/// or a condition quoted at length is cut there, with `…`).
pub const MAX_MESSAGE: usize = 1024;

/// `text` cut to [`MAX_MESSAGE`] characters.
fn bounded(text: String) -> String {
    if text.chars().count() <= MAX_MESSAGE {
        return text;
    }
    let mut cut: String = text.chars().take(MAX_MESSAGE).collect();
    cut.push('…');
    cut
}

/// What [`record`] decided.
#[derive(Debug, Clone, PartialEq)]
pub struct RunDecision {
    /// The new status.
    pub status: AnalysisRunStatus,
    /// When to measure next (`None`: the run is finished).
    pub requeue_after: Option<Duration>,
}

fn add(t: Timestamp, d: Duration) -> Timestamp {
    SignedDuration::try_from(d)
        .ok()
        .and_then(|d| t.checked_add(d).ok())
        .unwrap_or(Timestamp::MAX)
}

/// The status a run works from: started now if new, one result per metric.
fn init(
    spec: &AnalysisRunSpec,
    metrics: &[Result<MetricSpec, String>],
    status: Option<&AnalysisRunStatus>,
    now: Timestamp,
) -> AnalysisRunStatus {
    let mut s = status.cloned().unwrap_or_default();
    if s.started_at.is_none() {
        s.started_at = Some(Time(now));
    }
    if s.phase.is_none_or(|p| p == AnalysisPhase::Pending) {
        s.phase = Some(AnalysisPhase::Running);
    }
    for (m, parsed) in spec.metrics.iter().zip(metrics) {
        if !s.metric_results.iter().any(|r| r.name == m.name) {
            s.metric_results.push(MetricResult {
                name: m.name.clone(),
                phase: Some(AnalysisPhase::Pending),
                dry_run: parsed.as_ref().ok().filter(|p| p.dry_run).map(|_| true),
                ..Default::default()
            });
        }
    }
    s
}

/// When the metric's next measurement is due; `None` when it takes no more.
fn next_due(ms: &MetricSpec, r: &MetricResult, started: Timestamp) -> Option<Timestamp> {
    if r.phase.is_some_and(AnalysisPhase::is_completed) {
        return None;
    }
    let first = add(started, ms.initial_delay);
    let Some(last) = r.measurements.last() else {
        return Some(first);
    };
    let last_at = last.finished_at.as_ref().map_or(started, |t| t.0);
    let at = if last.phase == Some(AnalysisPhase::Error) {
        add(last_at, ms.interval.unwrap_or(ERROR_RETRY))
    } else {
        if ms.count.is_some_and(|c| r.count >= c) {
            return None;
        }
        ms.interval.map_or(last_at, |iv| add(last_at, iv))
    };
    Some(at.max(first))
}

fn requeue(
    metrics: &[Result<MetricSpec, String>],
    s: &AnalysisRunStatus,
    now: Timestamp,
) -> Option<Duration> {
    if s.phase.is_some_and(AnalysisPhase::is_completed) {
        return None;
    }
    let started = s.started_at.as_ref().map_or(now, |t| t.0);
    metrics
        .iter()
        .filter_map(|m| m.as_ref().ok())
        .filter_map(|ms| {
            let r = s.metric_results.iter().find(|r| r.name == ms.name)?;
            next_due(ms, r, started)
        })
        .min()
        .map(|at| Duration::try_from(at.duration_since(now)).unwrap_or_default())
}

/// Which measurements of the run are due at `now`, with their queries rendered.
pub fn plan(spec: &AnalysisRunSpec, status: Option<&AnalysisRunStatus>, now: Timestamp) -> Plan {
    let metrics = run_metrics(spec);
    let mut s = init(spec, &metrics, status, now);
    if s.phase.is_some_and(AnalysisPhase::is_completed) {
        return Plan {
            due: Vec::new(),
            status: s,
            requeue_after: None,
        };
    }
    if spec.terminate == Some(true) {
        conclude(&metrics, &mut s, true);
        return Plan {
            due: Vec::new(),
            status: s,
            requeue_after: None,
        };
    }
    // A metric that cannot even be parsed is an error at once.
    for (m, parsed) in spec.metrics.iter().zip(&metrics) {
        if let Err(e) = parsed
            && let Some(r) = s.metric_results.iter_mut().find(|r| r.name == m.name)
        {
            r.phase = Some(AnalysisPhase::Error);
            r.message = Some(e.clone());
        }
    }
    conclude(&metrics, &mut s, false);
    let args = run_args(spec);
    let baseline: BTreeMap<String, String> = spec
        .baseline_args
        .iter()
        .filter_map(|a| Some((a.name.clone(), a.value.clone()?)))
        .collect();
    let started = s.started_at.as_ref().map_or(now, |t| t.0);
    let mut due = Vec::new();
    if !s.phase.is_some_and(AnalysisPhase::is_completed) {
        for ms in metrics.iter().filter_map(|m| m.as_ref().ok()) {
            let Some(r) = s.metric_results.iter().find(|r| r.name == ms.name) else {
                continue;
            };
            if next_due(ms, r, started).is_some_and(|at| at <= now) {
                let failed = |e: String| Due {
                    metric: ms.name.clone(),
                    query: Err(e),
                    counters: None,
                    samples: None,
                };
                due.push(match (&ms.sequential, &ms.kayenta) {
                    (Some(sq), _) => match render_counters(&ms.provider, sq, &args, &baseline) {
                        Ok(c) => Due {
                            metric: ms.name.clone(),
                            query: Ok(c.canary_events.clone()),
                            counters: Some(c),
                            samples: None,
                        },
                        Err(e) => failed(e),
                    },
                    (None, Some(k)) => match render_samples(&ms.provider, k, &args, &baseline) {
                        Ok(q) => Due {
                            metric: ms.name.clone(),
                            query: q
                                .first()
                                .map(|q| q.canary.clone())
                                .ok_or_else(|| "kayenta.metrics: none".to_string()),
                            counters: None,
                            samples: Some(q),
                        },
                        Err(e) => failed(e),
                    },
                    (None, None) => Due {
                        metric: ms.name.clone(),
                        query: ms.provider.render(&args),
                        counters: None,
                        samples: None,
                    },
                });
            }
        }
    }
    let requeue_after = requeue(&metrics, &s, now);
    Plan {
        due,
        status: s,
        requeue_after,
    }
}

/// One measurement's phase and message, from its outcome.
fn judge(ms: &MetricSpec, outcome: &Outcome) -> (AnalysisPhase, Option<String>, Option<String>) {
    let value = match outcome {
        Outcome::ProviderError(e) => return (AnalysisPhase::Error, None, Some(e.clone())),
        Outcome::Counters(_) => {
            let e = format!(
                "metric \"{}\": counter readings recorded for a metric that is not sequential",
                ms.name
            );
            return (AnalysisPhase::Error, None, Some(e));
        }
        Outcome::Samples(_) => {
            let e = format!(
                "metric \"{}\": kayenta samples recorded for a metric that is not kayenta",
                ms.name
            );
            return (AnalysisPhase::Error, None, Some(e));
        }
        Outcome::Value(v) => v,
    };
    let shown = Some(value.display());
    if value.is_empty() {
        let phase = ms.no_data.phase();
        let msg = format!(
            "no data: the query returned nothing (noDataPolicy {})",
            ms.no_data.as_str()
        );
        return (phase, shown, Some(msg));
    }
    let eval = |c: &Option<String>| -> Result<Option<bool>, String> {
        match c {
            None => Ok(None),
            Some(src) => condition::evaluate(&condition::compile(src)?, value).map(Some),
        }
    };
    let (success, failure) = match (eval(&ms.success), eval(&ms.failure)) {
        (Ok(s), Ok(f)) => (s, f),
        (Err(e), _) | (_, Err(e)) => {
            let e = format!("metric \"{}\": {e}", ms.name);
            return (AnalysisPhase::Error, shown, Some(e));
        }
    };
    let v = value.display();
    let quote = |c: &Option<String>| c.clone().unwrap_or_default();
    match (success, failure) {
        (_, Some(true)) => (
            AnalysisPhase::Failed,
            shown,
            Some(format!(
                "value {v} met failureCondition \"{}\"",
                quote(&ms.failure)
            )),
        ),
        (Some(false), None) => (
            AnalysisPhase::Failed,
            shown,
            Some(format!(
                "value {v} did not meet successCondition \"{}\"",
                quote(&ms.success)
            )),
        ),
        (Some(true), _) | (None, Some(false)) | (None, None) => {
            (AnalysisPhase::Successful, shown, None)
        }
        (Some(false), Some(false)) => (
            AnalysisPhase::Inconclusive,
            shown,
            Some(format!(
                "value {v} met neither successCondition \"{}\" nor failureCondition \"{}\"",
                quote(&ms.success),
                quote(&ms.failure)
            )),
        ),
    }
}

/// Adds the measurements taken and decides metric and run phases. Each measurement keeps the
/// times it was taken between; its value text and messages are bounded
/// ([`super::value::MAX_VALUE_TEXT`], [`MAX_MESSAGE`]) and so is the number kept per metric
/// ([`super::spec::MAX_RETENTION`]), so the run's status stays small whatever the answers.
pub fn record(
    spec: &AnalysisRunSpec,
    status: Option<&AnalysisRunStatus>,
    measured: Vec<Measured>,
    now: Timestamp,
) -> RunDecision {
    let metrics = run_metrics(spec);
    let mut s = init(spec, &metrics, status, now);
    for m in measured {
        let name = m.metric;
        let Some(Ok(ms)) = metrics
            .iter()
            .find(|m| m.as_ref().is_ok_and(|m| m.name == name))
        else {
            continue;
        };
        let Some(r) = s.metric_results.iter_mut().find(|r| r.name == name) else {
            continue;
        };
        if r.phase.is_some_and(AnalysisPhase::is_completed) {
            continue;
        }
        let mut metadata = BTreeMap::new();
        let (phase, value, message) = match (&ms.sequential, &ms.kayenta) {
            (None, None) => judge(ms, &m.outcome),
            (None, Some(k)) => match &m.outcome {
                Outcome::ProviderError(e) => (AnalysisPhase::Error, None, Some(e.clone())),
                Outcome::Value(_) | Outcome::Counters(_) => (
                    AnalysisPhase::Error,
                    None,
                    Some(format!(
                        "metric \"{name}\": a kayenta metric records a canary and a baseline \
                         reading of each of its metrics, got another outcome"
                    )),
                ),
                Outcome::Samples(pairs) => {
                    let horizon = ms.count.unwrap_or(1);
                    let observed = kayenta::observe(k, r, pairs, horizon);
                    r.kayenta = observed.state;
                    match observed.outcome {
                        Err(e) => (
                            AnalysisPhase::Error,
                            None,
                            Some(format!("metric \"{name}\": {e}")),
                        ),
                        Ok(judged) => {
                            metadata = kayenta::metadata(&judged, horizon);
                            match &judged {
                                Judged::Sampled { .. } => (AnalysisPhase::Successful, None, None),
                                Judged::Judged {
                                    classifications,
                                    score,
                                    ..
                                } => {
                                    let phase = match score.result {
                                        Verdict::Pass => AnalysisPhase::Successful,
                                        Verdict::Marginal => AnalysisPhase::Inconclusive,
                                        Verdict::Fail => AnalysisPhase::Failed,
                                    };
                                    (
                                        phase,
                                        Some(sequential::figure(score.summary)),
                                        Some(kayenta::judgement(k, classifications, score)),
                                    )
                                }
                            }
                        }
                    }
                }
            },
            (Some(sq), _) => match &m.outcome {
                Outcome::ProviderError(e) => (AnalysisPhase::Error, None, Some(e.clone())),
                Outcome::Samples(_) | Outcome::Value(_) => (
                    AnalysisPhase::Error,
                    None,
                    Some(format!(
                        "metric \"{name}\": a sequential metric records four counter readings, \
                         got one value"
                    )),
                ),
                Outcome::Counters(readings) => {
                    let judged = sequential::observe(sq, r, *readings);
                    r.sequential = judged.state;
                    match judged.decision {
                        Err(e) => (
                            AnalysisPhase::Error,
                            None,
                            Some(format!("metric \"{name}\": {e}")),
                        ),
                        Ok(v) => {
                            metadata = sequential::metadata(&v);
                            let value = Some(sequential::figure(v.e_value));
                            // This measurement reaches `count`: the metric ends with it.
                            let ends = ms.count.is_some_and(|c| r.count.saturating_add(1) >= c);
                            match v.decision {
                                Decision::Continue if ends && sequential::without_evidence(&v) => (
                                    ms.no_data.phase(),
                                    value,
                                    Some(sequential::no_evidence(
                                        r.count.saturating_add(1),
                                        ms.no_data.as_str(),
                                    )),
                                ),
                                Decision::Continue => (AnalysisPhase::Successful, value, None),
                                Decision::Reject => (
                                    AnalysisPhase::Failed,
                                    value,
                                    Some(sequential::rejection(sq, &v)),
                                ),
                            }
                        }
                    }
                }
            },
        };
        match phase {
            AnalysisPhase::Error => {
                r.error += 1;
                r.consecutive_error += 1;
            }
            other => {
                r.count += 1;
                r.consecutive_error = 0;
                match other {
                    AnalysisPhase::Successful => r.successful += 1,
                    AnalysisPhase::Failed => r.failed += 1,
                    _ => r.inconclusive += 1,
                }
            }
        }
        r.measurements.push(Measurement {
            phase: Some(phase),
            value,
            message: message.map(bounded),
            started_at: Some(Time(m.started_at)),
            finished_at: Some(Time(m.finished_at.max(m.started_at))),
            metadata,
        });
        let excess = r.measurements.len().saturating_sub(ms.retention);
        r.measurements.drain(..excess);
        let (mp, mm) = metric_phase(ms, r);
        r.phase = Some(mp);
        r.message = mm.map(bounded);
    }
    // A terminated run ends with what it has (as `plan` concluded it): recording nothing
    // after that must not bring it back to Running, which would wait for measurements that
    // are never taken.
    conclude(&metrics, &mut s, spec.terminate == Some(true));
    let requeue_after = requeue(&metrics, &s, now);
    RunDecision {
        status: s,
        requeue_after,
    }
}

fn last_message(r: &MetricResult, phase: AnalysisPhase) -> String {
    r.measurements
        .iter()
        .rev()
        .find(|m| m.phase == Some(phase))
        .and_then(|m| m.message.clone())
        .unwrap_or_default()
}

fn metric_phase(ms: &MetricSpec, r: &MetricResult) -> (AnalysisPhase, Option<String>) {
    let name = &ms.name;
    // A sequential test stops at its first rejection; a kayenta judgement, taken once at
    // the horizon, decides the metric.
    if (ms.sequential.is_some() || ms.kayenta.is_some()) && r.failed > 0 {
        let why = last_message(r, AnalysisPhase::Failed);
        return (
            AnalysisPhase::Failed,
            Some(format!("metric \"{name}\" failed: {why}")),
        );
    }
    if ms.kayenta.is_some() && r.inconclusive > 0 {
        let why = last_message(r, AnalysisPhase::Inconclusive);
        return (
            AnalysisPhase::Inconclusive,
            Some(format!("metric \"{name}\" inconclusive: {why}")),
        );
    }
    if r.failed > ms.failure_limit {
        let why = last_message(r, AnalysisPhase::Failed);
        return (
            AnalysisPhase::Failed,
            Some(format!(
                "metric \"{name}\" failed: {why} ({} failed > failureLimit {})",
                r.failed, ms.failure_limit
            )),
        );
    }
    if r.inconclusive > ms.inconclusive_limit {
        let why = last_message(r, AnalysisPhase::Inconclusive);
        return (
            AnalysisPhase::Inconclusive,
            Some(format!(
                "metric \"{name}\" inconclusive: {why} ({} inconclusive > inconclusiveLimit {})",
                r.inconclusive, ms.inconclusive_limit
            )),
        );
    }
    if r.consecutive_error > ms.consecutive_error_limit {
        let why = last_message(r, AnalysisPhase::Error);
        return (
            AnalysisPhase::Error,
            Some(format!(
                "metric \"{name}\" could not be measured: {why} ({} errors in a row > \
                 consecutiveErrorLimit {})",
                r.consecutive_error, ms.consecutive_error_limit
            )),
        );
    }
    if ms.kayenta.is_some() && ms.count.is_some_and(|c| r.count >= c) {
        let why = last_message(r, AnalysisPhase::Successful);
        return (
            AnalysisPhase::Successful,
            Some(format!("metric \"{name}\" passed: {why}")),
        );
    }
    if ms.count.is_some_and(|c| r.count >= c) {
        return (
            AnalysisPhase::Successful,
            Some(format!("metric \"{name}\" passed {} measurements", r.count)),
        );
    }
    (AnalysisPhase::Running, None)
}

/// Run phase: the worst phase of the metrics that decide (dry-run ones never do):
/// Failed > Error > Inconclusive > Running > Successful. A run that is not decided is
/// `Running` from its first reconcile on, also while a metric waits for its `initialDelay`
/// (as in Argo Rollouts: `Pending` only until the run is started). Terminated runs end with
/// what they have: Successful unless a metric already decided otherwise.
fn conclude(metrics: &[Result<MetricSpec, String>], s: &mut AnalysisRunStatus, terminated: bool) {
    let rank = |p: AnalysisPhase| match p {
        AnalysisPhase::Failed => 5,
        AnalysisPhase::Error => 4,
        AnalysisPhase::Inconclusive => 3,
        AnalysisPhase::Running | AnalysisPhase::Pending => 2,
        AnalysisPhase::Successful => 1,
    };
    let deciding = s.metric_results.iter().filter(|r| {
        let dry = metrics
            .iter()
            .filter_map(|m| m.as_ref().ok())
            .any(|m| m.name == r.name && m.dry_run);
        !dry
    });
    let worst = deciding
        .map(|r| (r.phase.unwrap_or(AnalysisPhase::Pending), r))
        .max_by_key(|(p, _)| rank(*p));
    let (phase, message) = match worst {
        None => (AnalysisPhase::Successful, None),
        Some((p, _)) if !p.is_completed() && terminated => (
            AnalysisPhase::Successful,
            Some("terminated before every measurement was taken".to_string()),
        ),
        Some((p, r)) if p.is_completed() => (p, r.message.clone()),
        // A metric still Pending (no measurement yet) or Running: the run is measuring.
        Some(_) => (AnalysisPhase::Running, None),
    };
    // A dry-run-only run still measures until its metrics are done.
    let all_done = s
        .metric_results
        .iter()
        .all(|r| r.phase.is_some_and(AnalysisPhase::is_completed));
    let phase = if phase == AnalysisPhase::Successful && !all_done && !terminated {
        AnalysisPhase::Running
    } else {
        phase
    };
    s.phase = Some(phase);
    s.message = if phase.is_completed() { message } else { None };
}
