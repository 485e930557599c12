//! The metric source of a scenario: answers each measurement with the scenario's value for
//! the metric and the revision the AnalysisRun analyses, at the current virtual time.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

use rollgate_api::labels::{POD_TEMPLATE_HASH, REVISION};
use rollgate_controller::metrics_source::{BoxFuture, MetricSource, QueryFor};
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
}

impl ScenarioMetrics {
    /// A source whose time 0 is now.
    pub fn new(sim: SimCluster, metrics: BTreeMap<String, MetricValues>) -> Self {
        Self {
            start: Instant::now(),
            sim,
            metrics,
            down: AtomicBool::new(false),
        }
    }

    /// Prometheus stops (`true`) or starts (`false`) answering.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// Revision of the ReplicaSet with pod-template hash `hash` in `ns`.
    fn revision_of(&self, ns: &str, hash: &str) -> Option<i64> {
        self.sim
            .list_objects("apps/v1", "replicasets", Some(ns))
            .into_iter()
            .find(|rs| rs["metadata"]["labels"][POD_TEMPLATE_HASH] == hash)
            .and_then(|rs| {
                rs["metadata"]["annotations"][REVISION]
                    .as_str()
                    .and_then(|r| r.parse().ok())
            })
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

    /// The value for `about` now (`Ok(None)`: no data).
    fn value(&self, about: QueryFor<'_>) -> Result<Option<f64>, String> {
        if self.down.load(Ordering::SeqCst) {
            return Err("connection refused (the scenario has Prometheus down)".into());
        }
        let Some(values) = self.metrics.get(about.metric) else {
            return Ok(None);
        };
        let revision = about
            .labels
            .get(POD_TEMPLATE_HASH)
            .and_then(|h| self.revision_of(about.namespace, h));
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
        _request: &'a Request,
    ) -> BoxFuture<'a, Result<QueryResult, String>> {
        let answer = self
            .value(about)
            .map(|v| QueryResult::Vector(v.map(|v| (BTreeMap::new(), v)).into_iter().collect()));
        Box::pin(async move { answer })
    }
}
