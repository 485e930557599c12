//! A stand-in metric source for demos on machines without Prometheus: it answers any query
//! that names a pod-template hash it knows with that revision's configured value.
//! It evaluates no PromQL: it is a demo harness, never a provider.

use std::collections::BTreeMap;
use std::sync::Mutex;

use rollgate_controller::metrics_source::{BoxFuture, MetricSource, QueryFor};
use rollgate_prometheus::{QueryResult, Request};

/// Values per pod-template hash.
#[derive(Debug, Default)]
pub struct SimulatedMetrics {
    values: Mutex<BTreeMap<String, f64>>,
}

impl SimulatedMetrics {
    /// Queries naming `hash` answer `value` from now on.
    pub fn set(&self, hash: &str, value: f64) {
        if let Ok(mut v) = self.values.lock() {
            v.insert(hash.to_string(), value);
        }
    }
}

impl MetricSource for SimulatedMetrics {
    fn query<'a>(
        &'a self,
        _about: QueryFor<'a>,
        request: &'a Request,
    ) -> BoxFuture<'a, Result<QueryResult, String>> {
        let found = self.values.lock().ok().and_then(|v| {
            v.iter()
                .find(|(hash, _)| request.query.contains(hash.as_str()))
                .map(|(_, value)| *value)
        });
        Box::pin(async move {
            Ok(match found {
                Some(value) => QueryResult::Vector(vec![(BTreeMap::new(), value)]),
                None => QueryResult::Vector(Vec::new()),
            })
        })
    }
}
