//! Rollgate's rollout engine.
//!
//! One pure function, [`reconcile`], decides everything: given a [`Rollout`](rollgate_api::Rollout),
//! what the controller observed in the cluster ([`Observed`]) and the current time, it returns the
//! [`Action`]s to apply, the [`Event`]s to publish, the new status and when to look again. It does
//! no I/O and reads no clock, so every transition is unit-tested directly.

pub mod action;
pub mod alerts;
pub mod analysis;
mod bluegreen;
mod canary;
mod context;
pub mod experiment;
pub mod hash;
pub mod judge;
pub mod lifecycle;
pub mod measure;
pub mod message;
mod metadata;
pub mod observed;
pub mod pipeline;
mod release;
mod replicasets;
mod restart;
pub mod routes;
pub mod time;
pub mod validate;
pub mod window;
mod workload;

pub use action::{Action, DeadlineChange, Decision, Event, MetadataChange, ServiceRole};
pub use metadata::pods_wanted;
pub use observed::{
    AnalysisKind, ConditionStatus, Observed, ObservedAlert, ObservedAlerts, ObservedAnalysisRun,
    ObservedExperimentSet, ObservedPod, ObservedReplicaSet, ObservedRoute, ObservedService,
    ObservedWorkload, ReplicaFailure, WorkloadController, WorkloadKind,
};

use context::Ctx;
use k8s_openapi::jiff::Timestamp;
use rollgate_api::Rollout;

/// Everything the engine decides from.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    /// The Rollout as last read (spec, status, metadata).
    pub rollout: &'a Rollout,
    /// What the controller observed in the cluster.
    pub observed: &'a Observed,
    /// The current time.
    pub now: Timestamp,
}

/// Decides the next actions and status of a rollout. Pure and deterministic.
pub fn reconcile(input: Input<'_>) -> Decision {
    reconcile_worded(input, &message::English)
}

/// [`reconcile`] with messages and Event notes in another wording. Decisions never depend on
/// the wording: only the texts in the status and the Events differ.
pub fn reconcile_worded(input: Input<'_>, wording: &dyn message::Wording) -> Decision {
    let mut cx = Ctx::new(input, wording);
    match validate::validate(input.rollout, input.observed) {
        Err(problems) => cx.invalid(&problems),
        Ok(validate::Valid::BlueGreen(spec)) => {
            release::release_unnamed_services(&mut cx);
            let hash = hash::pod_template_hash(&spec.common.template);
            cx.alerts = spec.common.alerts.clone();
            alerts::guard(&mut cx, &hash);
            bluegreen::reconcile(&mut cx, &spec);
            metadata::sync(&mut cx, &hash);
            workload::scale(&mut cx, &spec.common);
            alerts::report_source(&mut cx);
        }
        Ok(validate::Valid::Canary(spec)) => {
            release::release_unnamed_services(&mut cx);
            let hash = hash::pod_template_hash(&spec.common.template);
            cx.alerts = spec.common.alerts.clone();
            alerts::guard(&mut cx, &hash);
            canary::reconcile(&mut cx, &spec);
            metadata::sync(&mut cx, &hash);
            workload::scale(&mut cx, &spec.common);
            alerts::report_source(&mut cx);
        }
    }
    cx.finish()
}

/// Names of the objects a rollout refers to, which the controller must read for [`Observed`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct References {
    /// Service names.
    pub services: Vec<String>,
    /// Analysis templates as `(cluster_scope, name)`.
    pub templates: Vec<(bool, String)>,
    /// The Gateway API HTTPRoute as `(namespace, name)`.
    pub route: Option<(String, String)>,
    /// The object `spec.workloadRef` names (in the rollout's namespace), as `(kind, name)`;
    /// `None` unless its `apiVersion` and `kind` are an accepted pair.
    pub workload: Option<(WorkloadKind, String)>,
}

/// True when the controller must read the firing alerts of `spec.alerts` for this reconcile:
/// a release is in flight and not aborted, or a fully promoted one is inside its guard window.
pub fn alerts_wanted(rollout: &Rollout) -> bool {
    if rollout.spec.alerts.is_none() {
        return false;
    }
    let Some(s) = rollout.status.as_ref() else {
        return false;
    };
    let in_flight = s.current_pod_hash.is_some() && s.current_pod_hash != s.stable_rs;
    let aborted = s.abort_reason.is_some() || s.abort == Some(true);
    (in_flight && !aborted) || s.guard.is_some()
}

/// True when a `restartAt` waits to be acted upon: the controller then reads the pods.
pub fn restart_pending(rollout: &Rollout) -> bool {
    let done = rollout
        .status
        .as_ref()
        .and_then(|s| s.restarted_at.as_ref());
    rollout
        .spec
        .restart_at
        .as_ref()
        .is_some_and(|at| Some(at) != done)
}

/// The Services and templates a rollout's spec names.
pub fn references(rollout: &Rollout) -> References {
    let mut refs = References::default();
    let strategy = &rollout.spec.strategy;
    let mut analyses = Vec::new();
    if let Some(bg) = &strategy.blue_green {
        refs.services.extend(
            [&bg.active_service, &bg.preview_service]
                .into_iter()
                .flatten()
                .cloned(),
        );
        analyses.extend(bg.pre_promotion_analysis.iter());
        analyses.extend(bg.post_promotion_analysis.iter());
    }
    if let Some(c) = &strategy.canary {
        refs.services.extend(
            [&c.canary_service, &c.stable_service]
                .into_iter()
                .flatten()
                .cloned(),
        );
        analyses.extend(c.analysis.iter().map(|a| &a.analysis));
        analyses.extend(c.steps.iter().filter_map(|s| s.analysis.as_ref()));
        refs.route = c
            .traffic_routing
            .as_ref()
            .and_then(|t| t.gateway_api.as_ref())
            .and_then(|g| {
                let name = g.http_route.clone().filter(|n| !n.trim().is_empty())?;
                let ns = g
                    .namespace
                    .clone()
                    .filter(|n| !n.trim().is_empty())
                    .or_else(|| rollout.metadata.namespace.clone())
                    .unwrap_or_default();
                Some((ns, name))
            });
    }
    analyses.extend(
        rollout
            .spec
            .guard
            .iter()
            .filter_map(|g| g.analysis.as_ref()),
    );
    let experiments = experiment::analyses_of(rollout);
    analyses.extend(experiments.iter());
    for a in analyses {
        for t in &a.templates {
            refs.templates
                .push((t.cluster_scope.unwrap_or(false), t.template_name.clone()));
        }
    }
    refs.workload = rollout.spec.workload_ref.as_ref().and_then(|w| {
        let kind = WorkloadKind::from_ref(w.api_version.as_deref()?, w.kind.as_deref()?)?;
        let name = w.name.as_deref().map(str::trim).filter(|n| !n.is_empty())?;
        Some((kind, name.to_string()))
    });
    refs.services.retain(|s| !s.trim().is_empty());
    refs.services.sort();
    refs.services.dedup();
    refs.templates.sort();
    refs.templates.dedup();
    refs
}
