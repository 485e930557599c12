//! A compact view of one rollout and what it manages, for timelines.

use std::fmt;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::events::v1::Event;
use kube::api::ListParams;
use kube::{Api, Client};
use rollgate_api::Rollout;
use rollgate_api::labels::{EXPERIMENT_TEMPLATE, POD_TEMPLATE_HASH, ROLLOUT_NAME};

use crate::LocalError;

/// One ReplicaSet in a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RsView {
    /// Pod-template hash.
    pub hash: String,
    /// Ready pods.
    pub ready: i32,
    /// Desired pods.
    pub desired: i32,
    /// For a ReplicaSet of a canary `experiment` step: its template's name.
    pub experiment: Option<String>,
}

/// The state of a rollout at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Phase (`-` before the first status).
    pub phase: String,
    /// Status message.
    pub message: String,
    /// Hash the active Service selects.
    pub active: Option<String>,
    /// Hash the preview Service selects.
    pub preview: Option<String>,
    /// Stable hash.
    pub stable: Option<String>,
    /// Canary only: the step index and the number of steps.
    pub step: Option<(i32, usize)>,
    /// Canary only: the requested and actual canary weight.
    pub weights: Option<(i32, i32)>,
    /// Canary only: hashes the stable and canary Services select.
    pub canary_services: Option<(Option<String>, Option<String>)>,
    /// Canary only: the phase of the experiment the status records
    /// (`status.canary.experiment`), while one runs or after it failed.
    pub experiment: Option<String>,
    /// ReplicaSets that still have pods or want some, oldest first.
    pub replica_sets: Vec<RsView>,
}

impl Snapshot {
    /// Reads the rollout, its ReplicaSets and its blue/green Services.
    pub async fn take(client: &Client, ns: &str, name: &str) -> Result<Self, LocalError> {
        let rollout = Api::<Rollout>::namespaced(client.clone(), ns)
            .get(name)
            .await
            .map_err(crate::kube_err(format!("reading Rollout {ns}/{name}")))?;
        let status = rollout.status.clone().unwrap_or_default();
        let services = Api::<Service>::namespaced(client.clone(), ns);
        let selected = |svc: Option<Service>| {
            svc.and_then(|s| s.spec)
                .and_then(|s| s.selector)
                .and_then(|s| s.get(POD_TEMPLATE_HASH).cloned())
        };
        let bg = rollout.spec.strategy.blue_green.as_ref();
        let mut active = None;
        let mut preview = None;
        if let Some(svc) = bg.and_then(|b| b.active_service.as_deref()) {
            active = selected(services.get_opt(svc).await.ok().flatten());
        }
        if let Some(svc) = bg.and_then(|b| b.preview_service.as_deref()) {
            preview = selected(services.get_opt(svc).await.ok().flatten());
        }
        let mut canary_services = None;
        let mut step = None;
        let mut weights = None;
        let mut experiment = None;
        if let Some(c) = rollout.spec.strategy.canary.as_ref() {
            let pick = async |name: Option<&str>| match name {
                Some(n) => selected(services.get_opt(n).await.ok().flatten()),
                None => None,
            };
            let stable_svc = pick(c.stable_service.as_deref()).await;
            let canary_svc = pick(c.canary_service.as_deref()).await;
            canary_services = Some((stable_svc, canary_svc));
            step = status.current_step_index.map(|i| (i, c.steps.len()));
            weights = status
                .canary
                .as_ref()
                .and_then(|c| c.weights.as_ref())
                .map(|w| (w.set_weight, w.actual_weight));
            experiment = status
                .canary
                .as_ref()
                .and_then(|c| c.experiment.as_ref())
                .map(|e| e.phase.clone());
        }
        let mut sets = Api::<ReplicaSet>::namespaced(client.clone(), ns)
            .list(&ListParams::default().labels(&format!("{ROLLOUT_NAME}={name}")))
            .await
            .map_err(crate::kube_err(format!(
                "listing ReplicaSets of {ns}/{name}"
            )))?
            .items;
        sets.sort_by_key(|rs| rs.metadata.creation_timestamp.as_ref().map(|t| t.0));
        let replica_sets = sets
            .iter()
            .filter_map(|rs| {
                let labels = rs.metadata.labels.as_ref()?;
                let hash = labels.get(POD_TEMPLATE_HASH)?.clone();
                let experiment = labels.get(EXPERIMENT_TEMPLATE).cloned();
                let ready = rs
                    .status
                    .as_ref()
                    .and_then(|s| s.ready_replicas)
                    .unwrap_or(0);
                let desired = rs.spec.replicas.unwrap_or(0);
                (ready > 0 || desired > 0).then_some(RsView {
                    hash,
                    ready,
                    desired,
                    experiment,
                })
            })
            .collect();
        Ok(Self {
            phase: status
                .phase
                .map_or_else(|| "-".to_string(), |p| p.to_string()),
            message: status.message.unwrap_or_default(),
            active,
            preview,
            stable: status.stable_rs,
            step,
            weights,
            canary_services,
            experiment,
            replica_sets,
        })
    }
}

impl fmt::Display for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let short = |h: &Option<String>| h.clone().unwrap_or_else(|| "-".into());
        let sets = self
            .replica_sets
            .iter()
            .map(|rs| match &rs.experiment {
                Some(t) => format!("{} {}/{} (experiment {t})", rs.hash, rs.ready, rs.desired),
                None => format!("{} {}/{}", rs.hash, rs.ready, rs.desired),
            })
            .collect::<Vec<_>>()
            .join(", ");
        if let Some((stable, canary)) = &self.canary_services {
            // The step being worked on, 1-based; "done" once every step is.
            let step = match self.step {
                Some((i, n)) if usize::try_from(i).is_ok_and(|i| i < n) => format!("{}/{n}", i + 1),
                Some(_) => "done".to_string(),
                None => "-".to_string(),
            };
            let weight = self
                .weights
                .map_or_else(|| "-".to_string(), |(w, a)| format!("{w}% (actual {a}%)"));
            // Services that select one version each, when the rollout names them.
            let services = if stable.is_none() && canary.is_none() {
                String::new()
            } else {
                format!("stable={:<10} canary={:<10} ", short(stable), short(canary))
            };
            let experiment = self
                .experiment
                .as_ref()
                .map(|phase| format!(" experiment {phase}"))
                .unwrap_or_default();
            return write!(
                f,
                "{:<11} step {step:<5} weight {weight:<18} {services}pods[{}]{experiment}",
                self.phase, sets
            );
        }
        write!(
            f,
            "{:<11} active={:<10} preview={:<10} pods[{}]",
            self.phase,
            short(&self.active),
            short(&self.preview),
            sets
        )
    }
}

/// Events about one object, in the order they happened; remembers which were already seen.
#[derive(Debug, Default)]
pub struct EventFeed {
    seen: std::collections::BTreeSet<String>,
}

/// One event line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventLine {
    /// Normal or Warning.
    pub type_: String,
    /// Reason.
    pub reason: String,
    /// Note.
    pub note: String,
}

impl EventFeed {
    /// Events about `name` in `ns` not returned before.
    pub async fn next(
        &mut self,
        client: &Client,
        ns: &str,
        name: &str,
    ) -> Result<Vec<EventLine>, LocalError> {
        let mut events = Api::<Event>::namespaced(client.clone(), ns)
            .list(&ListParams::default())
            .await
            .map_err(crate::kube_err(format!("listing events in {ns}")))?
            .items;
        events.retain(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name));
        events.sort_by_key(|e| {
            (
                e.event_time.as_ref().map(|t| t.0),
                e.metadata
                    .resource_version
                    .as_ref()
                    .and_then(|v| v.parse::<u64>().ok()),
            )
        });
        let mut out = Vec::new();
        for e in events {
            let key = e.metadata.name.clone().unwrap_or_default();
            if self.seen.insert(key) {
                out.push(EventLine {
                    type_: e.type_.unwrap_or_default(),
                    reason: e.reason.unwrap_or_default(),
                    note: e.note.unwrap_or_default(),
                });
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canary(experiment: Option<&str>, sets: Vec<RsView>) -> Snapshot {
        Snapshot {
            phase: "Progressing".into(),
            message: String::new(),
            active: None,
            preview: None,
            stable: Some("aaa".into()),
            step: Some((0, 3)),
            weights: Some((0, 0)),
            canary_services: Some((None, None)),
            experiment: experiment.map(str::to_string),
            replica_sets: sets,
        }
    }

    fn rs(hash: &str, ready: i32, experiment: Option<&str>) -> RsView {
        RsView {
            hash: hash.into(),
            ready,
            desired: 1,
            experiment: experiment.map(str::to_string),
        }
    }

    #[test]
    fn experiment_replica_sets_and_phase_are_shown() {
        let snap = canary(
            Some("Running"),
            vec![
                rs("aaa", 1, None),
                rs("bbb", 1, Some("baseline")),
                rs("ccc", 0, Some("canary")),
            ],
        );
        assert_eq!(
            snap.to_string(),
            "Progressing step 1/3   weight 0% (actual 0%)     pods[aaa 1/1, bbb 1/1 \
             (experiment baseline), ccc 0/1 (experiment canary)] experiment Running"
        );
    }

    #[test]
    fn without_an_experiment_the_line_is_unchanged() {
        let snap = canary(None, vec![rs("aaa", 1, None)]);
        assert_eq!(
            snap.to_string(),
            "Progressing step 1/3   weight 0% (actual 0%)     pods[aaa 1/1]"
        );
    }
}
