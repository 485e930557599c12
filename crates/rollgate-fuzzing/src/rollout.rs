//! `rollout`: a Rollout decoded as the controller decodes it, validated, and reconciled by
//! the engine against what the other documents say the controller observed.

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::jiff::Timestamp;
use rollgate_api::{
    AnalysisPhase, AnalysisRun, AnalysisTemplate, ClusterAnalysisTemplate, Rollout,
};
use rollgate_ctl::Command;
use rollgate_engine::{
    Action, DeadlineChange, Input, Observed, ObservedAlert, ObservedAlerts, ObservedAnalysisRun,
    ObservedPod, ObservedReplicaSet, ObservedRoute, ObservedService,
};
use serde_json::Value;

use crate::input::{documents, kind, name, now, text};

/// Reconciles run in a row, each from the status the previous one wrote and in the world its
/// actions made.
const ROUNDS: usize = 10;

/// The round before which a new revision is applied (the first container's image changes), so
/// that every input releases one.
const NEW_REVISION: usize = 2;

/// The input: YAML documents or one JSON object. The first `Rollout` is the one reconciled;
/// `Service`, `ReplicaSet`, `Pod`, `AnalysisRun`, `(Cluster)AnalysisTemplate`, `Secret` and
/// `HTTPRoute` documents are what the controller observed (anything the Rollout names that
/// they lack is filled in with a valid stand-in, as `rollgate lint` does), and `Alert`
/// documents (`name`, `labels`, `startsAt`, `fingerprint`) the firing alerts. An optional
/// `Outcomes` document lists the phases the AnalysisRuns the engine creates end in, in turn
/// (`analysis: [Successful, Failed, Running]`; default all Successful).
///
/// Between reconciles the actions are carried out on what is observed, simply: ReplicaSets
/// created or scaled have all their pods ready, Services select what they are switched to,
/// routes take the weights set, AnalysisRuns are created in the next phase of `Outcomes`.
///
/// Checks that nothing panics and that each status the engine writes decodes again as the
/// Rollout's status (the controller reads it back on the next reconcile).
pub fn rollout(data: &[u8]) {
    let Some(text) = text(data) else { return };
    let docs = documents(text);
    let Some(raw) = docs.iter().find(|d| kind(d) == "Rollout") else {
        return;
    };
    let Ok(mut rollout) = rollgate_api::decode::rollout(raw) else {
        return;
    };
    if rollout.metadata.namespace.is_none() {
        rollout.metadata.namespace = Some("default".into());
    }
    let mut observed = observe(&docs, &rollout);
    observed = rollgate_lint::with_stand_ins(&rollout, observed);
    let _ = rollgate_engine::references(&rollout);
    let _ = rollgate_engine::validate::validate(&rollout, &observed);
    let phases = outcomes(&docs);
    let mut outcomes = phases.iter().copied().cycle();
    let given = commands(&docs);
    let mut commands = given.iter().cloned().cycle();
    let mut at = now();
    for round in 0..ROUNDS {
        if round == NEW_REVISION {
            new_revision(&mut rollout);
        }
        if round > NEW_REVISION
            && let Some(cmd) = commands.next().flatten()
        {
            rollout = command(&rollout, &cmd, at);
        }
        if rollgate_engine::alerts_wanted(&rollout) {
            observed.alerts = ObservedAlerts::Firing(alerts(&docs));
        }
        let decision = rollgate_engine::reconcile(Input {
            rollout: &rollout,
            observed: &observed,
            now: at,
        });
        carry_out(&mut observed, decision.actions, &mut outcomes);
        let mut written = match serde_json::to_value(&rollout) {
            Ok(v) => v,
            Err(e) => panic!("a decoded Rollout does not encode: {e}"),
        };
        written["status"] = match serde_json::to_value(&decision.status) {
            Ok(v) => v,
            Err(e) => panic!("the engine's status does not encode: {e}"),
        };
        rollout = match rollgate_api::decode::rollout(&written) {
            Ok(r) => r,
            Err(e) => panic!("the status the engine wrote does not decode again: {e}"),
        };
        let step = decision
            .requeue_after
            .and_then(|d| k8s_openapi::jiff::SignedDuration::try_from(d).ok())
            .unwrap_or(k8s_openapi::jiff::SignedDuration::from_secs(30));
        at = at.checked_add(step).unwrap_or(at);
    }
}

/// Changes the image of the first container of the template (a new revision).
fn new_revision(rollout: &mut Rollout) {
    let container = rollout
        .spec
        .template
        .as_mut()
        .and_then(|t| t.spec.as_mut())
        .and_then(|s| s.containers.first_mut());
    if let Some(c) = container {
        c.image = Some(format!("{}-next", c.image.as_deref().unwrap_or("image")));
    }
}

/// The commands of the `Commands` document (`None`: no command that round).
fn commands(docs: &[Value]) -> Vec<Option<Command>> {
    let given: Vec<Option<Command>> = docs
        .iter()
        .filter(|d| kind(d) == "Commands")
        .flat_map(|d| d["commands"].as_array().cloned().unwrap_or_default())
        .map(|c| match c.as_str() {
            Some("promote") => Some(Command::Promote { full: false }),
            Some("promoteFull") => Some(Command::Promote { full: true }),
            Some("abort") => Some(Command::Abort),
            Some("retry") => Some(Command::Retry),
            Some("pause") => Some(Command::Pause),
            Some("resume") => Some(Command::Resume),
            Some("restart") => Some(Command::Restart),
            _ => None,
        })
        .collect();
    if given.is_empty() {
        vec![Some(Command::Promote { full: false })]
    } else {
        given
    }
}

/// The Rollout after `cmd`, planned as the CLI plans it (unchanged when refused).
fn command(rollout: &Rollout, cmd: &Command, now: Timestamp) -> Rollout {
    let Ok(plan) = rollgate_ctl::plan(cmd, rollout, &[], now) else {
        return rollout.clone();
    };
    let mut value = match serde_json::to_value(rollout) {
        Ok(v) => v,
        Err(e) => panic!("a decoded Rollout does not encode: {e}"),
    };
    json_patch::merge(&mut value, &plan.patch);
    match rollgate_api::decode::rollout(&value) {
        Ok(r) => r,
        Err(e) => panic!(
            "`rollgate {}` makes a Rollout that does not decode: {e}",
            cmd.name()
        ),
    }
}

/// The phases created AnalysisRuns end in, in turn.
fn outcomes(docs: &[Value]) -> Vec<AnalysisPhase> {
    let given: Vec<AnalysisPhase> = docs
        .iter()
        .filter(|d| kind(d) == "Outcomes")
        .flat_map(|d| d["analysis"].as_array().cloned().unwrap_or_default())
        .filter_map(|p| serde_json::from_value(p).ok())
        .collect();
    if given.is_empty() {
        vec![AnalysisPhase::Successful]
    } else {
        given
    }
}

/// Carries out the engine's actions on what is observed (see [`rollout`]).
fn carry_out(
    observed: &mut Observed,
    actions: Vec<Action>,
    outcomes: &mut impl Iterator<Item = AnalysisPhase>,
) {
    for action in actions {
        match action {
            Action::CreateReplicaSet(rs) => {
                if let Some(mut e) = rollgate_engine::ObservedExperimentSet::from_replica_set(&rs) {
                    e.pods = e.replicas;
                    e.ready = e.replicas;
                    e.available = e.replicas;
                    observed.experiment_sets.retain(|r| r.name != e.name);
                    observed.experiment_sets.push(e);
                } else if let Some(mut rs) = ObservedReplicaSet::from_replica_set(&rs) {
                    rs.pods = rs.replicas;
                    rs.ready = rs.replicas;
                    rs.available = rs.replicas;
                    observed.replica_sets.retain(|r| r.name != rs.name);
                    observed.replica_sets.push(rs);
                }
            }
            Action::UpdateReplicaSet {
                name,
                replicas,
                deadline,
                revision,
            } => {
                for e in observed
                    .experiment_sets
                    .iter_mut()
                    .filter(|r| r.name == name)
                {
                    if let Some(n) = replicas {
                        e.replicas = n;
                        e.pods = n;
                        e.ready = n;
                        e.available = n;
                    }
                }
                for rs in observed.replica_sets.iter_mut().filter(|r| r.name == name) {
                    if let Some(n) = replicas {
                        rs.replicas = n;
                        rs.pods = n;
                        rs.ready = n;
                        rs.available = n;
                    }
                    match deadline {
                        DeadlineChange::Keep => {}
                        DeadlineChange::Set(t) => rs.scale_down_deadline = Some(t),
                        DeadlineChange::Clear => rs.scale_down_deadline = None,
                    }
                    if let Some(r) = revision {
                        rs.revision = r;
                    }
                }
            }
            Action::DeleteReplicaSet { name } => {
                observed.replica_sets.retain(|r| r.name != name);
                observed.experiment_sets.retain(|r| r.name != name);
            }
            Action::SwitchService { service, to, .. } => {
                if let Some(s) = observed.services.get_mut(&service) {
                    s.selected_hash = Some(to);
                }
            }
            Action::ReleaseService { service, .. } => {
                if let Some(s) = observed.services.get_mut(&service) {
                    s.selected_hash = None;
                }
            }
            Action::DeletePod { name } => observed.pods.retain(|p| p.name != name),
            Action::SetReplicaSetMetadata {
                name,
                change,
                record,
            } => {
                for rs in observed.replica_sets.iter_mut().filter(|r| r.name == name) {
                    change.apply_to(&mut rs.template_metadata);
                    rs.ephemeral = record.clone();
                }
            }
            Action::SetPodMetadata { name, change } => {
                for pod in observed.pods.iter_mut().filter(|p| p.name == name) {
                    change.apply_to(&mut pod.metadata);
                }
            }
            Action::CreateAnalysisRun(run) => {
                if let Some(mut run) = ObservedAnalysisRun::from_analysis_run(&run) {
                    run.phase = outcomes.next().unwrap_or(AnalysisPhase::Successful);
                    observed.analysis_runs.push(run);
                }
            }
            Action::TerminateAnalysisRun { name } => {
                for run in observed.analysis_runs.iter_mut().filter(|r| r.name == name) {
                    run.terminating = true;
                }
            }
            Action::SetRouteWeights {
                canary_service,
                stable_service,
                canary_weight,
                ..
            } => {
                for r in observed.route.iter_mut() {
                    let mut rules = r.spec_rules.clone();
                    rollgate_engine::routes::set_weights(
                        &mut rules,
                        &canary_service,
                        &stable_service,
                        canary_weight,
                    );
                    let (ns, name) = (r.namespace.clone(), r.name.clone());
                    *r = ObservedRoute::from_rules(&ns, &name, rules);
                }
            }
            Action::SetManagedRoutes {
                canary_service,
                stable_service,
                managed,
                rules,
                ..
            } => {
                for r in observed.route.iter_mut() {
                    let written = rollgate_engine::routes::write(
                        &r.spec_rules,
                        &rules,
                        &managed,
                        &canary_service,
                        &stable_service,
                    );
                    let (ns, name) = (r.namespace.clone(), r.name.clone());
                    *r = ObservedRoute::from_rules(&ns, &name, written);
                }
            }
            Action::ScaleWorkload {
                kind,
                name,
                replicas,
            } => {
                let named =
                    |d: &&mut rollgate_engine::ObservedWorkload| d.name == name && d.kind == kind;
                for d in observed.workload.iter_mut().filter(named) {
                    d.replicas = replicas;
                }
            }
        }
    }
}

/// What the documents say the controller observed.
fn observe(docs: &[Value], rollout: &Rollout) -> Observed {
    let mut observed = Observed::default();
    let route = rollgate_engine::references(rollout).route;
    for d in docs {
        match kind(d) {
            "Service" => {
                if let Ok(s) = serde_json::from_value::<Service>(d.clone()) {
                    let s = ObservedService::from_service(&s);
                    observed.services.insert(s.name.clone(), s);
                }
            }
            "ReplicaSet" => {
                if let Some(rs) = serde_json::from_value::<ReplicaSet>(d.clone())
                    .ok()
                    .as_ref()
                    .and_then(ObservedReplicaSet::from_replica_set)
                {
                    observed.replica_sets.push(rs);
                }
            }
            "Pod" => {
                if let Some(p) = serde_json::from_value::<Pod>(d.clone())
                    .ok()
                    .as_ref()
                    .and_then(ObservedPod::from_pod)
                {
                    observed.pods.push(p);
                }
            }
            "AnalysisRun" => {
                if let Some(r) = rollgate_api::decode::decode::<AnalysisRun>(d)
                    .ok()
                    .as_ref()
                    .and_then(ObservedAnalysisRun::from_analysis_run)
                {
                    observed.analysis_runs.push(r);
                }
            }
            "AnalysisTemplate" => {
                if let Ok(t) = rollgate_api::decode::decode::<AnalysisTemplate>(d) {
                    observed.templates.insert((false, name(d).into()), t.spec);
                }
            }
            "ClusterAnalysisTemplate" => {
                if let Ok(t) = rollgate_api::decode::decode::<ClusterAnalysisTemplate>(d) {
                    observed
                        .templates
                        .insert((true, name(d).into()), t.spec.template);
                }
            }
            "Secret" => {
                let keys = ["data", "stringData"]
                    .iter()
                    .filter_map(|f| d[*f].as_object())
                    .flat_map(|m| m.keys().cloned())
                    .collect();
                observed.secrets.insert(name(d).into(), keys);
            }
            "HTTPRoute" => {
                if let Some((ns, n)) = &route
                    && n == name(d)
                {
                    let ns = d["metadata"]["namespace"].as_str().unwrap_or(ns);
                    observed.route = Some(ObservedRoute::from_json(ns, n, d));
                }
            }
            _ => {}
        }
    }
    observed
}

/// The firing alerts among the documents.
fn alerts(docs: &[Value]) -> Vec<ObservedAlert> {
    docs.iter()
        .filter(|d| kind(d) == "Alert")
        .map(|d| ObservedAlert {
            name: d["name"].as_str().unwrap_or_default().into(),
            labels: d["labels"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                        .collect()
                })
                .unwrap_or_default(),
            starts_at: d["startsAt"]
                .as_str()
                .and_then(|s| s.parse::<Timestamp>().ok())
                .unwrap_or_else(now),
            fingerprint: d["fingerprint"].as_str().unwrap_or_default().into(),
        })
        .collect()
}
