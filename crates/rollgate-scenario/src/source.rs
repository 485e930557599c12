//! The metric source of a scenario: answers each measurement with the scenario's value for
//! the metric and the revision the AnalysisRun analyses, at the current virtual time.
//!
//! A `sequential` metric's counter queries are answered from counters this source keeps per
//! metric and ReplicaSet: between two queries, the metric's `requestsPerSecond` are split
//! between the rollout's ReplicaSets by their ready pods, and each revision's series gives the
//! fraction of its requests that are events. The canary's counters are those of the run's
//! pod-template hash, the baseline's those of the rollout's stable ReplicaSet.
//!
//! A `kayenta` metric's queries are answered with the scenario's values of each of its
//! metrics (by the kayenta metric's name, not the AnalysisTemplate metric's): the canary's
//! for the revision of the run's pod-template hash, the baseline's for the revision of the
//! rollout's stable ReplicaSet.
//!
//! A query that names the pod-template hash of an experiment's ReplicaSet (an argument
//! `{{templates.<name>.podTemplateHash}}` of a canary `experiment` step's analysis) reads the
//! values of the revision whose pod template that ReplicaSet runs: the release's for a
//! `specRef: canary` template, the stable ReplicaSet's for `specRef: stable`.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rollgate_api::labels::{
    EXPERIMENT, EXPERIMENT_RELEASE, EXPERIMENT_TEMPLATE, POD_TEMPLATE_HASH, REVISION, ROLLOUT_NAME,
};
use rollgate_controller::metrics_source::{BoxFuture, MetricSource, QueryFor};
use rollgate_engine::measure::{CounterSeries, SampleSide};
use rollgate_engine::pipeline::RELEASE_LABEL;
use rollgate_prometheus::{QueryResult, Request};
use rollgate_sim::SimCluster;
use tokio::time::Instant;

use crate::file::MetricValues;
use crate::series::{seed, value_at};

/// Answers queries from a scenario's `metrics`. It evaluates no PromQL: the value depends
/// on the metric's name and the revision of the run's pod-template hash.
pub struct ScenarioMetrics {
    start: Instant,
    sim: SimCluster,
    metrics: BTreeMap<String, MetricValues>,
    down: AtomicBool,
    counters: Mutex<Counters>,
}

/// The counters of `sequential` metrics.
#[derive(Debug, Default)]
struct Counters {
    /// When the traffic of (metric, namespace, rollout) was last added up.
    updated: BTreeMap<(String, String, String), Duration>,
    /// `(requests, events)` per (metric, namespace, pod-template hash).
    totals: BTreeMap<(String, String, String), (f64, f64)>,
}

impl ScenarioMetrics {
    /// A source whose time 0 is now.
    pub fn new(sim: SimCluster, metrics: BTreeMap<String, MetricValues>) -> Self {
        Self {
            start: Instant::now(),
            sim,
            metrics,
            down: AtomicBool::new(false),
            counters: Mutex::new(Counters::default()),
        }
    }

    /// The stable ReplicaSet's pod-template hash of the rollout `name` in `ns`.
    fn stable_hash(&self, ns: &str, name: &str) -> Option<String> {
        self.sim
            .list_objects("rollgate.dev/v1alpha1", "rollouts", Some(ns))
            .into_iter()
            .find(|r| r["metadata"]["name"] == name)
            .and_then(|r| r["status"]["stableRS"].as_str().map(str::to_string))
    }

    /// The counter `series` of a `sequential` metric for the run `about`, as a whole number.
    fn counter(&self, about: &QueryFor<'_>, series: CounterSeries) -> Result<f64, String> {
        let values = self
            .metrics
            .get(about.metric)
            .ok_or_else(|| format!("the scenario has no metrics.{} for a counter", about.metric))?;
        let rps = values.requests_per_second.ok_or_else(|| {
            format!(
                "metrics.{}.requestsPerSecond: required for the counters of a sequential metric",
                about.metric
            )
        })?;
        let rollout = about
            .labels
            .get(ROLLOUT_NAME)
            .ok_or("the run names no rollout")?;
        let hash = match series {
            CounterSeries::CanaryEvents | CounterSeries::CanaryRequests => about
                .labels
                .get(POD_TEMPLATE_HASH)
                .cloned()
                .ok_or("the run names no pod-template hash")?,
            CounterSeries::BaselineEvents | CounterSeries::BaselineRequests => self
                .stable_hash(about.namespace, rollout)
                .ok_or("the rollout has no stable ReplicaSet")?,
        };
        let now = self.start.elapsed();
        let replica_sets: Vec<(String, f64, Option<i64>)> = self
            .sim
            .list_objects("apps/v1", "replicasets", Some(about.namespace))
            .into_iter()
            .filter(|rs| rs["metadata"]["labels"][ROLLOUT_NAME] == rollout.as_str())
            .filter_map(|rs| {
                let hash = rs["metadata"]["labels"][POD_TEMPLATE_HASH].as_str()?;
                let ready = rs["status"]["readyReplicas"].as_f64().unwrap_or(0.0);
                let revision = rs["metadata"]["annotations"][REVISION]
                    .as_str()
                    .and_then(|r| r.parse().ok());
                Some((hash.to_string(), ready, revision))
            })
            .collect();
        let mut counters = self
            .counters
            .lock()
            .map_err(|_| "the scenario's counters are poisoned".to_string())?;
        let key = (
            about.metric.to_string(),
            about.namespace.to_string(),
            rollout.clone(),
        );
        let since = counters.updated.insert(key, now).unwrap_or(now);
        let elapsed = now.saturating_sub(since).as_secs_f64();
        let ready: f64 = replica_sets.iter().map(|(_, r, _)| r).sum();
        if elapsed > 0.0 && ready > 0.0 {
            for (h, pods, revision) in &replica_sets {
                let requests = rps * elapsed * pods / ready;
                let series = revision
                    .and_then(|r| values.revisions.get(&r.to_string()))
                    .or(values.default.as_ref());
                let fraction = series
                    .and_then(|s| value_at(s, now, seed(about.metric, revision.unwrap_or(0))))
                    .unwrap_or(0.0)
                    .clamp(0.0, 1.0);
                let total = counters
                    .totals
                    .entry((
                        about.metric.to_string(),
                        about.namespace.to_string(),
                        h.clone(),
                    ))
                    .or_default();
                total.0 += requests;
                total.1 += requests * fraction;
            }
        }
        let (requests, events) = counters
            .totals
            .get(&(about.metric.to_string(), about.namespace.to_string(), hash))
            .copied()
            .unwrap_or_default();
        Ok(match series {
            CounterSeries::CanaryEvents | CounterSeries::BaselineEvents => events.floor(),
            CounterSeries::CanaryRequests | CounterSeries::BaselineRequests => requests.floor(),
        })
    }

    /// Prometheus stops (`true`) or starts (`false`) answering.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// Revision of the ReplicaSet with pod-template hash `hash` in `ns`; for an experiment's
    /// ReplicaSet, that of the revision whose pod template it runs.
    fn revision_of(&self, ns: &str, hash: &str) -> Option<i64> {
        let rs = self
            .sim
            .list_objects("apps/v1", "replicasets", Some(ns))
            .into_iter()
            .find(|rs| rs["metadata"]["labels"][POD_TEMPLATE_HASH] == hash)?;
        if rs["metadata"]["labels"][EXPERIMENT_TEMPLATE].is_string() {
            return self.experiment_revision(ns, &rs);
        }
        rs["metadata"]["annotations"][REVISION]
            .as_str()
            .and_then(|r| r.parse().ok())
    }

    /// The revision whose pod template the experiment ReplicaSet `rs` runs: its template's
    /// `specRef` in the rollout's step of the experiment (the step
    /// `status.canary.experiment` records for it; else every experiment template of that
    /// name in the spec, when they agree); `canary` is the revision of the release that ran
    /// it (its `experiment-release` label), `stable` the revision of the stable ReplicaSet.
    fn experiment_revision(&self, ns: &str, rs: &serde_json::Value) -> Option<i64> {
        let labels = &rs["metadata"]["labels"];
        let template = labels[EXPERIMENT_TEMPLATE].as_str()?;
        let rollout_name = labels[ROLLOUT_NAME].as_str()?;
        let rollout = self
            .sim
            .list_objects("rollgate.dev/v1alpha1", "rollouts", Some(ns))
            .into_iter()
            .find(|r| r["metadata"]["name"] == rollout_name)?;
        let steps = rollout["spec"]["strategy"]["canary"]["steps"].as_array()?;
        fn spec_ref_in<'v>(step: &'v serde_json::Value, template: &str) -> Option<&'v str> {
            step["experiment"]["templates"]
                .as_array()?
                .iter()
                .find(|t| t["name"] == template)?["specRef"]
                .as_str()
        }
        let recorded = &rollout["status"]["canary"]["experiment"];
        let spec_ref = if recorded["name"] == rs["metadata"]["annotations"][EXPERIMENT] {
            let step = usize::try_from(recorded["step"].as_i64()?).ok()?;
            spec_ref_in(steps.get(step)?, template)?
        } else {
            let mut refs = steps.iter().filter_map(|s| spec_ref_in(s, template));
            let first = refs.next()?;
            if !refs.all(|r| r == first) {
                return None;
            }
            first
        };
        let hash = match spec_ref {
            "canary" => labels[EXPERIMENT_RELEASE].as_str()?.to_string(),
            "stable" => rollout["status"]["stableRS"].as_str()?.to_string(),
            _ => return None,
        };
        let revision_rs = self
            .sim
            .list_objects("apps/v1", "replicasets", Some(ns))
            .into_iter()
            .find(|rs| {
                rs["metadata"]["labels"][POD_TEMPLATE_HASH] == hash.as_str()
                    && rs["metadata"]["labels"][EXPERIMENT_TEMPLATE].is_null()
            })?;
        revision_rs["metadata"]["annotations"][REVISION]
            .as_str()
            .and_then(|r| r.parse().ok())
    }

    /// The pod-template hash of an experiment ReplicaSet in `ns` that `query` names, if any.
    fn experiment_hash_in(&self, ns: &str, query: &str) -> Option<String> {
        self.sim
            .list_objects("apps/v1", "replicasets", Some(ns))
            .into_iter()
            .filter(|rs| rs["metadata"]["labels"][EXPERIMENT_TEMPLATE].is_string())
            .filter_map(|rs| {
                rs["metadata"]["labels"][POD_TEMPLATE_HASH]
                    .as_str()
                    .map(str::to_string)
            })
            .find(|hash| !hash.is_empty() && query.contains(hash.as_str()))
    }

    /// Number of the pipeline release a run analyses: the Release its verification label
    /// names, else the one whose images the pods of its pod-template hash run.
    fn release_of(&self, about: &QueryFor<'_>) -> Option<i64> {
        let releases = self
            .sim
            .list_objects("rollgate.dev/v1alpha1", "releases", None);
        let number = |r: &serde_json::Value| r["spec"]["number"].as_i64();
        if let Some(name) = about.labels.get(RELEASE_LABEL) {
            return releases
                .iter()
                .find(|r| r["metadata"]["name"] == name.as_str())
                .and_then(number);
        }
        let hash = about.labels.get(POD_TEMPLATE_HASH)?;
        let rs = self
            .sim
            .list_objects("apps/v1", "replicasets", Some(about.namespace))
            .into_iter()
            .find(|rs| rs["metadata"]["labels"][POD_TEMPLATE_HASH] == hash.as_str())?;
        let containers = rs["spec"]["template"]["spec"]["containers"]
            .as_array()?
            .clone();
        let image_of = |name: &str| {
            containers
                .iter()
                .find(|c| c["name"] == name)
                .and_then(|c| c["image"].as_str())
        };
        let runs = |images: &serde_json::Value| {
            images.as_object().is_some_and(|m| {
                !m.is_empty()
                    && m.iter()
                        .all(|(c, image)| image.as_str().is_some() && image_of(c) == image.as_str())
            })
        };
        releases
            .iter()
            .find(|r| runs(&r["spec"]["images"]) || runs(&r["spec"]["sourceImages"]))
            .and_then(number)
    }

    /// The value of the kayenta metric's metric `name` for the revision `side` of the run
    /// `about` now (`Ok(None)`: no data).
    fn sample(
        &self,
        about: &QueryFor<'_>,
        name: &str,
        side: SampleSide,
    ) -> Result<Option<f64>, String> {
        let Some(values) = self.metrics.get(name) else {
            return Ok(None);
        };
        let hash = match side {
            SampleSide::Canary => about
                .labels
                .get(POD_TEMPLATE_HASH)
                .cloned()
                .ok_or("the run names no pod-template hash")?,
            SampleSide::Baseline => {
                let rollout = about
                    .labels
                    .get(ROLLOUT_NAME)
                    .ok_or("the run names no rollout")?;
                self.stable_hash(about.namespace, rollout)
                    .ok_or("the rollout has no stable ReplicaSet")?
            }
        };
        let revision = self.revision_of(about.namespace, &hash);
        let series = revision
            .and_then(|r| values.revisions.get(&r.to_string()))
            .or(values.default.as_ref());
        let t = self.start.elapsed();
        Ok(series.and_then(|s| value_at(s, t, seed(name, revision.unwrap_or(0)))))
    }

    /// The value for `about` now (`Ok(None)`: no data): that of the revision of the
    /// experiment ReplicaSet `query` names, else of the run's pod-template hash.
    fn value(&self, about: QueryFor<'_>, query: &str) -> Result<Option<f64>, String> {
        if self.down.load(Ordering::SeqCst) {
            return Err("connection refused (the scenario has Prometheus down)".into());
        }
        let Some(values) = self.metrics.get(about.metric) else {
            return Ok(None);
        };
        let revision = self
            .experiment_hash_in(about.namespace, query)
            .or_else(|| about.labels.get(POD_TEMPLATE_HASH).cloned())
            .and_then(|h| self.revision_of(about.namespace, &h));
        let by_release = || {
            self.release_of(&about)
                .and_then(|r| values.releases.get(&r.to_string()))
        };
        let series = revision
            .and_then(|r| values.revisions.get(&r.to_string()))
            .or_else(|| {
                if values.releases.is_empty() {
                    None
                } else {
                    by_release()
                }
            })
            .or(values.default.as_ref());
        let t = self.start.elapsed();
        Ok(series.and_then(|s| value_at(s, t, seed(about.metric, revision.unwrap_or(0)))))
    }
}

impl MetricSource for ScenarioMetrics {
    fn query<'a>(
        &'a self,
        about: QueryFor<'a>,
        request: &'a Request,
    ) -> BoxFuture<'a, Result<QueryResult, String>> {
        let one = |v: Option<f64>| {
            QueryResult::Vector(v.map(|v| (BTreeMap::new(), v)).into_iter().collect())
        };
        let answer = match (about.counter, about.sample) {
            _ if self.down.load(Ordering::SeqCst) => {
                Err("connection refused (the scenario has Prometheus down)".into())
            }
            (Some(series), _) => self
                .counter(&about, series)
                .map(|v| QueryResult::Vector(vec![(BTreeMap::new(), v)])),
            (None, Some((name, side))) => self.sample(&about, name, side).map(one),
            (None, None) => self.value(about, &request.query).map(one),
        };
        Box::pin(async move { answer })
    }
}
