//! A pure test world for the engine: applies decisions as the controller would and checks,
//! after every step, the traffic invariant and that a reconcile of the result is a no-op.

#![allow(dead_code, missing_docs)]

use std::collections::BTreeSet;

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use rollgate_api::{AnalysisPhase, AnalysisTemplateSpec, Rollout};
use rollgate_engine::{
    Action, AnalysisKind, DeadlineChange, Decision, Event, Input, Observed, ObservedAnalysisRun,
    ObservedReplicaSet, ObservedService, reconcile,
};
use serde_json::{Value, json};

pub struct World {
    pub rollout: Rollout,
    pub observed: Observed,
    pub now: Timestamp,
    /// Hashes whose pods never become ready.
    pub crashing: BTreeSet<String>,
    /// Every event so far.
    pub events: Vec<Event>,
    /// Every action so far.
    pub actions: Vec<Action>,
}

pub fn merge(base: &mut Value, patch: Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    b.remove(&k);
                } else {
                    merge(b.entry(k).or_insert(Value::Null), v);
                }
            }
        }
        (b, p) => *b = p,
    }
}

impl World {
    /// A blue/green rollout `web` (3 replicas, image `app:1`) with Services `web-active` and
    /// `web-preview`; `spec` is merged over the spec, `bg` over `strategy.blueGreen`.
    pub fn new(spec: Value, bg: Value) -> Self {
        let mut strategy = json!({"activeService": "web-active", "previewService": "web-preview"});
        merge(&mut strategy, bg);
        let mut s = json!({
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                         "spec": {"containers": [{"name": "app", "image": "app:1"}]}},
            "strategy": {"blueGreen": strategy},
        });
        merge(&mut s, spec);
        let rollout: Rollout = serde_json::from_value(json!({
            "apiVersion": "rollgate.dev/v1alpha1", "kind": "Rollout",
            "metadata": {"name": "web", "namespace": "default", "uid": "uid-web", "generation": 1},
            "spec": s,
        }))
        .expect("valid rollout json");
        let mut observed = Observed::default();
        for name in ["web-active", "web-preview"] {
            observed.services.insert(
                name.into(),
                ObservedService {
                    name: name.into(),
                    selected_hash: None,
                },
            );
        }
        let mut w = Self {
            rollout,
            observed,
            now: "2026-11-22T10:00:00Z".parse().expect("time"),
            crashing: BTreeSet::new(),
            events: Vec::new(),
            actions: Vec::new(),
        };
        w.add_template("rate");
        w
    }

    pub fn replicas(&self) -> i32 {
        self.rollout.spec.replicas.unwrap_or(1)
    }

    pub fn status(&self) -> rollgate_api::RolloutStatus {
        self.rollout.status.clone().unwrap_or_default()
    }

    pub fn decide(&self) -> Decision {
        reconcile(Input {
            rollout: &self.rollout,
            observed: &self.observed,
            now: self.now,
        })
    }

    fn apply(&mut self, action: &Action) {
        match action {
            Action::CreateReplicaSet(rs) => {
                let mut o = ObservedReplicaSet::from_replica_set(rs).expect("hash label");
                o.ready = 0;
                o.available = 0;
                assert!(
                    self.observed.replica_set(&o.hash).is_none(),
                    "created twice: {}",
                    o.name
                );
                self.observed.replica_sets.push(o);
            }
            Action::UpdateReplicaSet {
                name,
                replicas,
                deadline,
                revision,
            } => {
                let rs = self
                    .observed
                    .replica_sets
                    .iter_mut()
                    .find(|r| &r.name == name)
                    .expect("updated RS exists");
                // Ready counts follow later, as the cluster's ReplicaSet controller reports them.
                if let Some(r) = replicas {
                    rs.replicas = *r;
                }
                match deadline {
                    DeadlineChange::Keep => {}
                    DeadlineChange::Set(t) => rs.scale_down_deadline = Some(*t),
                    DeadlineChange::Clear => rs.scale_down_deadline = None,
                }
                if let Some(r) = revision {
                    rs.revision = *r;
                }
            }
            Action::DeleteReplicaSet { name } => {
                self.observed.replica_sets.retain(|r| &r.name != name);
            }
            Action::SwitchService { service, to, .. } => {
                self.observed
                    .services
                    .get_mut(service)
                    .expect("service exists")
                    .selected_hash = Some(to.clone());
            }
            Action::CreateAnalysisRun(run) => {
                let o = ObservedAnalysisRun::from_analysis_run(run).expect("labels");
                self.observed.analysis_runs.push(o);
            }
            Action::TerminateAnalysisRun { name } => {
                if let Some(r) = self
                    .observed
                    .analysis_runs
                    .iter_mut()
                    .find(|r| &r.name == name)
                {
                    r.terminating = true;
                }
            }
        }
    }

    /// One reconcile: apply its actions and status, then check the invariant and that a second
    /// reconcile of the result changes nothing.
    pub fn step(&mut self) -> Decision {
        let stable_before = self.status().stable_rs.is_some();
        let d = self.decide();
        for a in &d.actions {
            self.apply(a);
        }
        self.actions.extend(d.actions.iter().cloned());
        self.events.extend(d.events.iter().cloned());
        self.rollout.status = Some(d.status.clone());
        if stable_before {
            self.check_invariant();
        }
        let again = self.decide();
        assert!(
            again.actions.is_empty(),
            "not idempotent, actions: {:?}",
            again.actions
        );
        assert!(
            again.events.is_empty(),
            "not idempotent, events: {:?}",
            again.events
        );
        assert_eq!(again.status, d.status, "not idempotent: status changed");
        d
    }

    pub fn check_invariant(&self) {
        let replicas = self.replicas();
        if let Some(h) = &self.observed.services["web-active"].selected_hash {
            let rs = self
                .observed
                .replica_set(h)
                .expect("active selects an existing RS");
            assert!(
                rs.has_ready(replicas),
                "active Service selects {h} with {}/{replicas} ready",
                rs.ready
            );
        }
    }

    /// Pods of every non-crashing ReplicaSet become ready; scaled-down pods are gone.
    pub fn pods_ready(&mut self) {
        for rs in &mut self.observed.replica_sets {
            if self.crashing.contains(&rs.hash) {
                rs.ready = rs.ready.min(rs.replicas);
                rs.available = rs.available.min(rs.replicas);
            } else {
                rs.ready = rs.replicas;
                rs.available = rs.replicas;
            }
        }
    }

    /// Steps and lets pods become ready until nothing changes (bounded).
    pub fn settle(&mut self) -> Decision {
        let mut last = self.step();
        for _ in 0..30 {
            self.pods_ready();
            let d = self.step();
            if d.actions.is_empty() && d.status == last.status {
                return d;
            }
            last = d;
        }
        panic!("world did not settle");
    }

    pub fn advance(&mut self, secs: i64) {
        self.now = self
            .now
            .checked_add(SignedDuration::from_secs(secs))
            .expect("time");
    }

    pub fn template_hash(&self, image: &str) -> String {
        let mut t = self.rollout.spec.template.clone().expect("template");
        if let Some(c) = t.spec.as_mut().and_then(|s| s.containers.first_mut()) {
            c.image = Some(image.into());
        }
        rollgate_engine::hash::pod_template_hash(&t)
    }

    /// A new revision with `image`; returns its hash.
    pub fn set_image(&mut self, image: &str) -> String {
        let hash = self.template_hash(image);
        if let Some(c) = self
            .rollout
            .spec
            .template
            .as_mut()
            .and_then(|t| t.spec.as_mut())
            .and_then(|s| s.containers.first_mut())
        {
            c.image = Some(image.into());
        }
        self.bump_generation();
        hash
    }

    pub fn bump_generation(&mut self) {
        self.rollout.metadata.generation = Some(self.rollout.metadata.generation.unwrap_or(1) + 1);
    }

    pub fn crash(&mut self, image: &str) -> String {
        let h = self.template_hash(image);
        self.crashing.insert(h.clone());
        h
    }

    /// What `rollgate promote` does.
    pub fn promote(&mut self) {
        if let Some(s) = self.rollout.status.as_mut() {
            s.pause_conditions.clear();
        }
    }

    pub fn abort(&mut self) {
        self.rollout
            .status
            .get_or_insert_with(Default::default)
            .abort = Some(true);
    }

    pub fn retry(&mut self) {
        self.rollout
            .status
            .get_or_insert_with(Default::default)
            .abort = Some(false);
    }

    pub fn set_run(&mut self, kind: AnalysisKind, phase: AnalysisPhase, message: &str) -> String {
        let run = self
            .observed
            .analysis_runs
            .iter_mut()
            .rev()
            .find(|r| r.kind == kind)
            .expect("run exists");
        run.phase = phase;
        run.message = Some(message.into());
        run.name.clone()
    }

    pub fn add_template(&mut self, name: &str) {
        let spec: AnalysisTemplateSpec = serde_json::from_value(json!({
            "args": [{"name": "hash"}],
            "metrics": [{"name": "errors", "successCondition": "result[0] < 0.05",
                         "provider": {"prometheus": {"address": "http://127.0.0.1:9090",
                                                     "query": "rate(errors{hash=\"{{args.hash}}\"}[1m])"}}}]
        }))
        .expect("template");
        self.observed.templates.insert((false, name.into()), spec);
    }

    pub fn active(&self) -> Option<String> {
        self.observed.services["web-active"].selected_hash.clone()
    }

    pub fn preview(&self) -> Option<String> {
        self.observed.services["web-preview"].selected_hash.clone()
    }

    pub fn rs(&self, hash: &str) -> ObservedReplicaSet {
        self.observed.replica_set(hash).cloned().expect("RS exists")
    }

    pub fn phase(&self) -> Option<rollgate_api::RolloutPhase> {
        self.status().phase
    }

    pub fn message(&self) -> String {
        self.status().message.unwrap_or_default()
    }

    pub fn reasons(&self) -> Vec<&'static str> {
        self.events.iter().map(|e| e.reason).collect()
    }

    pub fn condition(&self, type_: &str) -> Option<rollgate_api::RolloutCondition> {
        self.status()
            .conditions
            .into_iter()
            .find(|c| c.type_ == type_)
    }

    /// A deployed, healthy world with `app:1` stable; returns its hash.
    pub fn deployed(spec: Value, bg: Value) -> (Self, String) {
        let mut w = Self::new(spec, bg);
        w.settle();
        let h = w.status().stable_rs.expect("stable after first deploy");
        (w, h)
    }
}
