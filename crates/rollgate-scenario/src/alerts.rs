//! The alert source of a scenario: stands in for Alertmanager. Timeline entries fire and
//! resolve alerts; a rollout's pull gets those matching its `spec.alerts.matchers`, with the
//! pod-template hash of the alert's revision in its `revisionLabel`.

use std::collections::BTreeMap;
use std::sync::Mutex;

use k8s_openapi::jiff::Timestamp;
use kube::Client;
use rollgate_api::labels::{POD_TEMPLATE_HASH, REVISION};
use rollgate_api::matcher::Matcher;
use rollgate_controller::alert_source::{AlertSource, AlertsFor};
use rollgate_controller::metrics_source::BoxFuture;
use rollgate_engine::ObservedAlert;
use rollgate_sim::SimCluster;

use crate::file::AlertEvent;

/// One firing alert of the scenario.
#[derive(Debug, Clone)]
struct Firing {
    event: AlertEvent,
    since: Timestamp,
}

/// Fires and resolves the scenario's alerts.
pub struct ScenarioAlerts {
    sim: SimCluster,
    firing: Mutex<BTreeMap<String, Firing>>,
}

impl ScenarioAlerts {
    /// No alert fires yet.
    pub fn new(sim: SimCluster) -> Self {
        Self {
            sim,
            firing: Mutex::new(BTreeMap::new()),
        }
    }

    /// Applies a timeline entry: the alert fires (from the simulated cluster's now) or
    /// resolves.
    pub fn apply(&self, event: &AlertEvent) {
        let mut firing = self
            .firing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if event.resolved {
            firing.remove(&event.name);
        } else {
            firing.entry(event.name.clone()).or_insert(Firing {
                event: event.clone(),
                since: self.sim.now(),
            });
        }
    }

    /// Pod-template hash of `revision` of the rollout's ReplicaSets in `ns`.
    fn hash_of(&self, ns: &str, revision: i64) -> Option<String> {
        self.sim
            .list_objects("apps/v1", "replicasets", Some(ns))
            .into_iter()
            .find(|rs| {
                rs["metadata"]["annotations"][REVISION]
                    .as_str()
                    .and_then(|r| r.parse::<i64>().ok())
                    == Some(revision)
            })
            .and_then(|rs| {
                rs["metadata"]["labels"][POD_TEMPLATE_HASH]
                    .as_str()
                    .map(str::to_string)
            })
    }

    fn alerts(&self, about: AlertsFor<'_>) -> Result<Vec<ObservedAlert>, String> {
        let label = about
            .spec
            .revision_label
            .clone()
            .unwrap_or_else(|| rollgate_engine::alerts::DEFAULT_REVISION_LABEL.to_string());
        let matchers: Vec<Matcher> = about
            .spec
            .matchers
            .iter()
            .map(|m| m.parse::<Matcher>().map_err(|e| e.to_string()))
            .collect::<Result<_, _>>()?;
        let firing = self
            .firing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        Ok(firing
            .into_values()
            .filter_map(|f| {
                let mut labels = f.event.labels.clone();
                labels.insert("alertname".into(), f.event.name.clone());
                if let Some(rev) = f.event.revision {
                    labels.insert(label.clone(), self.hash_of(about.namespace, rev)?);
                }
                matchers
                    .iter()
                    .all(|m| m.matches(&labels))
                    .then(|| ObservedAlert {
                        fingerprint: rollgate_api::matcher::fingerprint(&labels),
                        name: f.event.name.clone(),
                        labels,
                        starts_at: f.since,
                    })
            })
            .collect())
    }
}

impl AlertSource for ScenarioAlerts {
    fn firing<'a>(
        &'a self,
        _client: &'a Client,
        about: AlertsFor<'a>,
    ) -> BoxFuture<'a, Result<Vec<ObservedAlert>, String>> {
        let answer = self.alerts(about);
        Box::pin(async move { answer })
    }
}
