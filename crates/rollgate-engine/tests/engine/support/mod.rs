//! A pure test world for the engine.
//!
//! [`World`] holds a Rollout, what a controller would observe (ReplicaSets, Services,
//! AnalysisRuns, templates) and a virtual clock. [`World::step`] runs the engine once, applies
//! its actions the way the controller does, writes the status back and then checks:
//!
//! - the traffic invariant: once a stable ReplicaSet exists, the active Service only selects a
//!   ReplicaSet with at least `spec.replicas` ready and available pods;
//! - consistency: `status.blueGreen` selectors match the Services, no Service selects a deleted
//!   ReplicaSet, every action's target exists;
//! - idempotence: a second reconcile of the unchanged world has no action, no event, the same
//!   status and the same requeue.
//!
//! Pods never change by themselves: as in a cluster, ready counts follow a scale-down only when
//! the ReplicaSet controller reports it, here when a test calls [`World::make_ready`] (or the
//! other readiness helpers); pods added by a scale-up start unready. The ReplicaSet's pod
//! count (`status.replicas`, [`ObservedReplicaSet::pods`]) likewise follows `spec.replicas`
//! only when a readiness helper reports it (a new ReplicaSet reports 0 pods until then). The invariant also requires the active ReplicaSet's `spec.replicas` to
//! be at least `spec.replicas` of the rollout, so scaling down what the active Service selects
//! is caught at once.

#![allow(dead_code, missing_docs)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{OwnerReference, Time};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use rollgate_api::{
    AnalysisPhase, AnalysisTemplateSpec, PauseCondition, Rollout, RolloutCondition, RolloutPhase,
    RolloutStatus,
};
use rollgate_engine::{
    Action, AnalysisKind, DeadlineChange, Decision, Event, Input, Observed, ObservedAnalysisRun,
    ObservedReplicaSet, ObservedRoute, ObservedService, reconcile,
};
use rollgate_test_support as fixtures;
use serde_json::{Value, json};

/// A table of named cases, one `#[test]` each: `cases! { check; name: (args), ... }` defines
/// `fn name()` calling `check(args)`, so a failing case is named by its test.
#[allow(unused_macros)]
macro_rules! cases {
    ($check:path; $($name:ident: ($($arg:expr),* $(,)?)),+ $(,)?) => {
        $(
            #[test]
            fn $name() {
                $check($($arg),*)
            }
        )+
    };
}
#[allow(unused_imports)]
pub(crate) use cases;

/// Name of the rollout every world holds.
pub const NAME: &str = "web";
/// Its active Service.
pub const ACTIVE: &str = "web-active";
/// Its preview Service.
pub const PREVIEW: &str = "web-preview";
/// Canary worlds: the canary Service.
pub const CANARY_SVC: &str = "web-canary";
/// Canary worlds: the stable Service.
pub const STABLE_SVC: &str = "web-stable";
/// Canary worlds: the HTTPRoute.
pub const ROUTE: &str = "web-route";

/// `trafficRouting` naming the canary worlds' HTTPRoute.
pub fn route_routing() -> Value {
    fixtures::route_routing(ROUTE)
}

/// The analysis template every world knows.
pub const TEMPLATE: &str = "error-rate";
/// Start of the virtual clock.
pub const T0: &str = "2026-11-22T10:00:00Z";

#[derive(Debug, Clone)]
pub struct World {
    pub rollout: Rollout,
    pub observed: Observed,
    pub now: Timestamp,
    /// Hashes whose pods never become ready.
    pub crashing: BTreeSet<String>,
    /// Pods of experiment ReplicaSets never get ready.
    pub crashing_experiments: bool,
    /// Every event so far, in order.
    pub events: Vec<Event>,
    /// Every action so far, in order.
    pub actions: Vec<Action>,
    /// Reconciles run by [`World::step`].
    pub steps: usize,
    /// Check the traffic invariant after each step (on by default).
    pub check_invariant: bool,
    /// The texts of the last status (message, abort message, condition messages) in English
    /// and as [`Reworded`] put them: each step also decides with every text reworded.
    pub reworded: Vec<(String, String)>,
    /// Model pods (off by default): after each step's actions, the ReplicaSet controller gives
    /// every ReplicaSet `spec.replicas` pods, new ones created from its pod template's labels
    /// and annotations (see [`World::sync_pods`]).
    pub model_pods: bool,
}

/// Another wording of every message: its typed data, debug-printed. Deciding with it must give
/// the same actions, Event reasons, timers and status apart from the texts.
pub struct Reworded;

impl rollgate_engine::message::Wording for Reworded {
    fn text(&self, msg: &rollgate_engine::message::Msg) -> String {
        format!("<{msg:?}>")
    }
}

/// The texts of a status, in the order [`reword`] visits them.
fn texts(s: &RolloutStatus) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    out.extend(s.message.clone());
    out.extend(s.abort_message.clone());
    out.extend(s.conditions.iter().map(|c| c.message.clone()));
    out
}

/// A status without its texts (and without the times at which texts last changed).
fn without_texts(s: &RolloutStatus) -> RolloutStatus {
    let mut s = s.clone();
    s.message = None;
    s.abort_message = None;
    for c in &mut s.conditions {
        c.message.clear();
        c.last_update_time = None;
    }
    s
}

/// Puts the reworded texts of the last status back, field by field, where the status still
/// holds that status's English text (a test may have changed a field in between).
fn reword(s: &mut RolloutStatus, pairs: &[(String, String)]) {
    let mut fields: Vec<&mut String> = Vec::new();
    if let Some(m) = s.message.as_mut() {
        fields.push(m);
    }
    if let Some(m) = s.abort_message.as_mut() {
        fields.push(m);
    }
    fields.extend(s.conditions.iter_mut().map(|c| &mut c.message));
    for (field, (en, alt)) in fields.into_iter().zip(pairs) {
        if field == en {
            *field = alt.clone();
        }
    }
}

/// `{"templates": [{"templateName": TEMPLATE}]}`: an analysis on the known template.
pub fn analysis() -> Value {
    fixtures::analysis_ref(TEMPLATE)
}

pub fn ts(s: &str) -> Timestamp {
    s.parse().expect("timestamp")
}

/// The name of the ReplicaSet of `hash`.
pub fn rs_name(hash: &str) -> String {
    format!("{NAME}-{hash}")
}

/// The name the engine gives the `n`th AnalysisRun of `kind` for `hash`.
pub fn run_name(hash: &str, kind: AnalysisKind, n: usize) -> String {
    format!("{NAME}-{hash}-{}-{n}", kind.as_str())
}

impl World {
    /// A blue/green rollout `web` in namespace `shop` (3 replicas, image `app:1`) with Services
    /// `web-active` and `web-preview` (selecting nothing yet) and the analysis template
    /// `error-rate`. `spec` is merge-patched over the spec, `bg` over `strategy.blueGreen`.
    pub fn new(spec: Value, bg: Value) -> Self {
        let mut w = Self::of(fixtures::blue_green_rollout(NAME, "app:1", spec, bg));
        for name in [ACTIVE, PREVIEW] {
            w.add_service(name);
        }
        w
    }

    /// A world holding `rollout` (put in namespace `shop`, generation 1) and the analysis
    /// template `error-rate`, with no Service yet.
    fn of(mut rollout: Value) -> Self {
        fixtures::merge(
            &mut rollout,
            json!({"metadata": {"namespace": "shop", "uid": "6f1c0d2e-uid", "generation": 1}}),
        );
        let rollout: Rollout = serde_json::from_value(rollout).expect("valid rollout json");
        let mut observed = Observed::default();
        let template: AnalysisTemplateSpec = serde_json::from_value(json!({
            "args": [{"name": "hash", "valueFrom": {"podTemplateHashValue": "Latest"}},
                     {"name": "window", "value": "5m"}],
            "metrics": [fixtures::prometheus_metric(
                "errors",
                "http://prometheus:9090",
                "rate(errors{hash=\"{{args.hash}}\"}[{{args.window}}])",
            )]
        }))
        .expect("template json");
        observed
            .templates
            .insert((false, TEMPLATE.into()), template);
        Self {
            rollout,
            observed,
            now: ts(T0),
            crashing: BTreeSet::new(),
            crashing_experiments: false,
            events: Vec::new(),
            actions: Vec::new(),
            steps: 0,
            check_invariant: true,
            reworded: Vec::new(),
            model_pods: false,
        }
    }

    /// A canary rollout `web` in namespace `shop` (image `app:1`, 10 replicas unless `spec`
    /// says otherwise) with Services `web-canary` and `web-stable`, and an HTTPRoute
    /// `web-route` whose one rule has both as backends (stable 100, canary 0). `canary` is
    /// merge-patched over `strategy.canary`; the route is used only when `canary` names it in
    /// `trafficRouting` (see [`route_routing`]).
    pub fn canary(spec: Value, canary: Value) -> Self {
        let mut w = Self::of(fixtures::canary_rollout(NAME, "app:1", spec, canary));
        for name in [CANARY_SVC, STABLE_SVC] {
            w.add_service(name);
        }
        w.observed.route = Some(ObservedRoute::from_rules(
            "shop",
            ROUTE,
            vec![json!({
                "backendRefs": [
                    {"name": STABLE_SVC, "port": 80, "weight": 100},
                    {"name": CANARY_SVC, "port": 80, "weight": 0},
                ],
            })],
        ));
        w
    }

    /// A canary world whose first revision (`app:1`) is deployed; returns its hash.
    pub fn canary_deployed(spec: Value, canary: Value) -> (Self, String) {
        let mut w = Self::canary(spec, canary);
        w.run_until_settled();
        let h = w.status().stable_rs.expect("stable after the first deploy");
        (w, h)
    }

    /// The route's `(canary, stable)` weights.
    pub fn route_weights(&self) -> (i32, i32) {
        self.observed
            .route
            .as_ref()
            .and_then(|r| r.weights(CANARY_SVC, STABLE_SVC))
            .expect("route with both backends")
    }

    /// Hash the Service `name` selects.
    pub fn selects(&self, name: &str) -> Option<String> {
        self.observed
            .services
            .get(name)
            .and_then(|s| s.selected_hash.clone())
    }

    /// A world whose first revision (`app:1`) is deployed, ready and stable; returns its hash.
    pub fn deployed(spec: Value, bg: Value) -> (Self, String) {
        let mut w = Self::new(spec, bg);
        w.run_until_settled();
        let h = w.status().stable_rs.expect("stable after the first deploy");
        assert_eq!(h, w.hash_of("app:1"));
        (w, h)
    }

    // ----- running the engine -----

    /// The engine's decision for the current world, without applying it.
    pub fn decide(&self) -> Decision {
        reconcile(Input {
            rollout: &self.rollout,
            observed: &self.observed,
            now: self.now,
        })
    }

    /// One reconcile: apply actions and status as the controller does, then check the invariant,
    /// consistency and idempotence.
    pub fn step(&mut self) -> Decision {
        let d = self.decide();
        self.check_wording(&d);
        for a in &d.actions {
            self.apply(a);
        }
        if self.model_pods {
            self.sync_pods();
        }
        self.steps += 1;
        self.actions.extend(d.actions.iter().cloned());
        self.events.extend(d.events.iter().cloned());
        self.rollout.status = Some(d.status.clone());
        self.check_consistency(&d);
        if self.check_invariant && d.status.stable_rs.is_some() {
            self.assert_invariant();
        }
        let again = self.decide();
        assert!(
            again.actions.is_empty(),
            "not idempotent: second reconcile acts: {:?}",
            again.actions
        );
        assert!(
            again.events.is_empty(),
            "not idempotent: second reconcile emits: {:?}",
            again.events
        );
        assert_eq!(again.status, d.status, "not idempotent: status changed");
        assert_eq!(
            again.requeue_after, d.requeue_after,
            "not idempotent: requeue changed"
        );
        d
    }

    /// Decides again with every message reworded (the status read carrying the reworded texts
    /// of the previous steps): the decision must be `d` but for its texts.
    fn check_wording(&mut self, d: &Decision) {
        let mut rollout = self.rollout.clone();
        if let Some(s) = rollout.status.as_mut() {
            reword(s, &self.reworded);
        }
        let alt = rollgate_engine::reconcile_worded(
            Input {
                rollout: &rollout,
                observed: &self.observed,
                now: self.now,
            },
            &Reworded,
        );
        assert_eq!(alt.actions, d.actions, "rewording changed the actions");
        assert_eq!(reasons(&alt), reasons(d), "rewording changed the Events");
        assert_eq!(
            alt.requeue_after, d.requeue_after,
            "rewording changed the timers"
        );
        assert_eq!(
            without_texts(&alt.status),
            without_texts(&d.status),
            "rewording changed the status"
        );
        self.reworded = texts(&d.status)
            .into_iter()
            .zip(texts(&alt.status))
            .collect();
    }

    /// Steps and makes every (non-crashing) pod ready until a step changes nothing.
    pub fn run_until_settled(&mut self) -> Decision {
        let mut last = self.step();
        for _ in 0..30 {
            self.make_all_ready();
            let d = self.step();
            if d.actions.is_empty() && d.status == last.status {
                return d;
            }
            last = d;
        }
        panic!("world did not settle: {}", self.message());
    }

    /// [`World::run_until_settled`] under the name the test plan uses.
    pub fn run_until_stable(&mut self) -> Decision {
        self.run_until_settled()
    }

    /// Applies one action as the controller does.
    pub fn apply(&mut self, action: &Action) {
        match action {
            Action::CreateReplicaSet(rs) => {
                if let Some(mut e) = rollgate_engine::ObservedExperimentSet::from_replica_set(rs) {
                    assert!(
                        !self
                            .observed
                            .experiment_sets
                            .iter()
                            .any(|s| s.name == e.name),
                        "experiment ReplicaSet created twice: {}",
                        e.name
                    );
                    assert!(
                        self.observed.replica_set(&e.hash).is_none(),
                        "experiment hash {} is a revision's",
                        e.hash
                    );
                    e.ready = 0;
                    e.available = 0;
                    self.observed.experiment_sets.push(e);
                    return;
                }
                let mut o = ObservedReplicaSet::from_replica_set(rs).expect("hash label");
                o.ready = 0;
                o.available = 0;
                assert!(
                    self.observed.replica_set(&o.hash).is_none(),
                    "ReplicaSet created twice: {}",
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
                if let Some(e) = self
                    .observed
                    .experiment_sets
                    .iter_mut()
                    .find(|r| &r.name == name)
                {
                    let r = replicas.expect("an experiment ReplicaSet is only scaled");
                    assert_ne!(e.replicas, r, "no-op scale of {name}");
                    assert_eq!(*deadline, DeadlineChange::Keep);
                    assert_eq!(*revision, None);
                    e.replicas = r;
                    e.ready = e.ready.min(r);
                    e.available = e.available.min(r);
                    return;
                }
                let rs = self
                    .observed
                    .replica_sets
                    .iter_mut()
                    .find(|r| &r.name == name)
                    .unwrap_or_else(|| panic!("update of a missing ReplicaSet {name}"));
                if let Some(r) = replicas {
                    // A scale-down shows in the ReplicaSet status only later (make_ready);
                    // a scale-up adds unready pods, and pods beyond the previous size were
                    // already going away.
                    if *r > rs.replicas {
                        rs.ready = rs.ready.min(rs.replicas);
                        rs.available = rs.available.min(rs.replicas);
                    }
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
                if let Some(i) = self
                    .observed
                    .experiment_sets
                    .iter()
                    .position(|r| &r.name == name)
                {
                    let e = self.observed.experiment_sets.remove(i);
                    assert_eq!(e.pods, 0, "experiment ReplicaSet {name} deleted with pods");
                    return;
                }
                let before = self.observed.replica_sets.len();
                self.observed.replica_sets.retain(|r| &r.name != name);
                assert_eq!(
                    before,
                    self.observed.replica_sets.len() + 1,
                    "delete of a missing ReplicaSet {name}"
                );
            }
            Action::SwitchService {
                service, from, to, ..
            } => {
                let svc = self
                    .observed
                    .services
                    .get_mut(service)
                    .unwrap_or_else(|| panic!("switch of a missing Service {service}"));
                assert_eq!(
                    &svc.selected_hash, from,
                    "switch `from` is what it selected"
                );
                assert_ne!(svc.selected_hash.as_ref(), Some(to), "no-op switch");
                svc.selected_hash = Some(to.clone());
            }
            Action::CreateAnalysisRun(run) => {
                let o = ObservedAnalysisRun::from_analysis_run(run).expect("run labels");
                assert!(
                    !self.observed.analysis_runs.iter().any(|r| r.name == o.name),
                    "AnalysisRun created twice: {}",
                    o.name
                );
                self.observed.analysis_runs.push(o);
            }
            Action::SetRouteWeights {
                namespace,
                route,
                canary_service,
                stable_service,
                canary_weight,
                from,
            } => {
                let r = self
                    .observed
                    .route
                    .as_mut()
                    .unwrap_or_else(|| panic!("weights of a missing route {route}"));
                assert_eq!((&r.namespace, &r.name), (namespace, route));
                assert!((0..=100).contains(canary_weight), "weight {canary_weight}");
                assert_ne!(from, canary_weight, "no-op route change");
                let mut rules = r.spec_rules.clone();
                rollgate_engine::routes::set_weights(
                    &mut rules,
                    canary_service,
                    stable_service,
                    *canary_weight,
                );
                *r = ObservedRoute::from_rules(namespace, route, rules);
            }
            Action::SetManagedRoutes {
                namespace,
                route,
                canary_service,
                stable_service,
                managed,
                rules,
            } => {
                let r = self
                    .observed
                    .route
                    .as_mut()
                    .unwrap_or_else(|| panic!("managed routes of a missing route {route}"));
                assert_eq!((&r.namespace, &r.name), (namespace, route));
                let written = rollgate_engine::routes::write(
                    &r.spec_rules,
                    rules,
                    managed,
                    canary_service,
                    stable_service,
                );
                assert_ne!(written, r.spec_rules, "no-op managed routes change");
                *r = ObservedRoute::from_rules(namespace, route, written);
            }
            Action::ReleaseService { service, from } => {
                let svc = self
                    .observed
                    .services
                    .get(service)
                    .unwrap_or_else(|| panic!("release of a missing Service {service}"));
                assert_eq!(svc.selected_hash.as_ref(), Some(from), "released Service");
                // Unlabelled, it is no longer observed unless the spec names it.
                self.observed.services.remove(service);
            }
            Action::DeletePod { name } => {
                let before = self.observed.pods.len();
                self.observed.pods.retain(|p| &p.name != name);
                assert_eq!(
                    before,
                    self.observed.pods.len() + 1,
                    "delete of a missing pod {name}"
                );
            }
            Action::SetReplicaSetMetadata {
                name,
                change,
                record,
            } => {
                let rs = self
                    .observed
                    .replica_sets
                    .iter_mut()
                    .find(|r| &r.name == name)
                    .unwrap_or_else(|| panic!("metadata of a missing ReplicaSet {name}"));
                let before = (rs.template_metadata.clone(), rs.ephemeral.clone());
                change.apply_to(&mut rs.template_metadata);
                rs.ephemeral = record.clone();
                assert_ne!(
                    before,
                    (rs.template_metadata.clone(), rs.ephemeral.clone()),
                    "no-op metadata change of {name}"
                );
            }
            Action::SetPodMetadata { name, change } => {
                let pod = self
                    .observed
                    .pods
                    .iter_mut()
                    .find(|p| &p.name == name)
                    .unwrap_or_else(|| panic!("metadata of a missing pod {name}"));
                assert!(!pod.terminating, "metadata of a terminating pod {name}");
                let before = pod.metadata.clone();
                change.apply_to(&mut pod.metadata);
                assert_ne!(before, pod.metadata, "no-op metadata change of pod {name}");
            }
            Action::TerminateAnalysisRun { name } => {
                let run = self
                    .observed
                    .analysis_runs
                    .iter_mut()
                    .find(|r| &r.name == name)
                    .unwrap_or_else(|| panic!("terminate of a missing run {name}"));
                assert!(!run.terminating, "terminated twice: {name}");
                run.terminating = true;
            }
            Action::ScaleWorkload {
                kind,
                name,
                replicas,
            } => {
                assert!(kind.scalable(), "scale of a {kind}, which has no replicas");
                let d = self
                    .observed
                    .workload
                    .as_mut()
                    .filter(|d| &d.name == name && d.kind == *kind)
                    .unwrap_or_else(|| panic!("scale of a missing {kind} {name}"));
                assert_ne!(d.replicas, *replicas, "no-op scale of {name}");
                d.replicas = *replicas;
            }
        }
    }

    fn check_consistency(&self, d: &Decision) {
        let named = rollgate_engine::references(&self.rollout).services;
        let invalid = d
            .status
            .conditions
            .iter()
            .any(|c| c.reason == rollgate_api::ConditionReason::InvalidSpec.as_str());
        for svc in self.observed.services.values() {
            assert!(
                invalid || named.contains(&svc.name) || svc.selected_hash.is_none(),
                "Service {} is no longer named by the spec but still pins {:?}",
                svc.name,
                svc.selected_hash
            );
            if let Some(h) = &svc.selected_hash {
                assert!(
                    self.observed.replica_set(h).is_some(),
                    "Service {} selects {h}, which has no ReplicaSet",
                    svc.name
                );
            }
        }
        if self.rollout.spec.strategy.blue_green.is_some()
            && let Some(bgs) = &d.status.blue_green
        {
            let active = self.rollout.spec.strategy.blue_green.as_ref();
            let active = active.and_then(|b| b.active_service.as_deref());
            let active = active.and_then(|name| self.selects(name));
            assert_eq!(bgs.active_selector, active, "status.activeSelector");
            if self.observed.services.contains_key(PREVIEW) {
                assert_eq!(
                    bgs.preview_selector,
                    self.preview(),
                    "status.previewSelector"
                );
            }
        }
    }

    /// The traffic invariant.
    pub fn assert_invariant(&self) {
        let replicas = self.replicas();
        if let Some(r) = &self.observed.route
            && let Some((c, s)) = r.weights(CANARY_SVC, STABLE_SVC)
        {
            assert_eq!(c + s, 100, "route weights sum to 100");
            if c > 0 {
                let h = self.selects(CANARY_SVC).expect("canary Service selects");
                let rs = self.observed.replica_set(&h).expect("its ReplicaSet");
                assert!(
                    rs.ready.min(rs.available) > 0,
                    "route sends {c}% to {h}, which has no ready pod"
                );
            }
        }
        let blue_green = self.rollout.spec.strategy.blue_green.is_some();
        if let Some(h) = self.active().filter(|_| blue_green) {
            let rs = self
                .observed
                .replica_set(&h)
                .expect("active selects an existing ReplicaSet");
            assert!(
                rs.has_ready(replicas),
                "active Service selects {h} with {}/{replicas} ready ({} available)",
                rs.ready,
                rs.available
            );
            assert!(
                rs.replicas >= replicas,
                "active Service selects {h}, scaled to {}/{replicas}",
                rs.replicas
            );
        }
    }

    // ----- the cluster -----

    /// The ReplicaSet controller, for pods: pods of a ReplicaSet gone are gone, pods beyond a
    /// ReplicaSet's `spec.replicas` are deleted (the newest first), and missing ones are created
    /// ready from its pod template's labels and annotations. Existing pods are never changed.
    pub fn sync_pods(&mut self) {
        let sets = self.observed.replica_sets.clone();
        self.observed
            .pods
            .retain(|p| sets.iter().any(|rs| rs.hash == p.hash));
        for rs in &sets {
            let mut have = self
                .observed
                .pods
                .iter()
                .filter(|p| p.hash == rs.hash && !p.terminating)
                .count();
            let want = usize::try_from(rs.replicas).unwrap_or(0);
            while have > want {
                let last = self
                    .observed
                    .pods
                    .iter()
                    .rposition(|p| p.hash == rs.hash && !p.terminating)
                    .expect("a pod to delete");
                self.observed.pods.remove(last);
                have -= 1;
            }
            for i in have..want {
                self.observed.pods.push(rollgate_engine::ObservedPod {
                    name: format!("{}-s{}-{i}", rs.name, self.steps),
                    hash: rs.hash.clone(),
                    created: Some(self.now),
                    ready: true,
                    terminating: false,
                    metadata: rs.template_metadata.clone(),
                });
            }
        }
    }

    /// The pods of `hash` (not terminating), by name.
    pub fn pods_of(&self, hash: &str) -> Vec<rollgate_engine::ObservedPod> {
        self.observed
            .pods
            .iter()
            .filter(|p| p.hash == hash && !p.terminating)
            .cloned()
            .collect()
    }

    /// The ReplicaSet controller catches up with `hash`: every pod is ready and available, and
    /// pods beyond `replicas` are gone. The pods of a crashing hash never become ready.
    pub fn make_ready(&mut self, hash: &str) {
        let crashing = self.crashing.contains(hash);
        let rs = self
            .observed
            .replica_sets
            .iter_mut()
            .find(|r| r.hash == hash)
            .unwrap_or_else(|| panic!("no ReplicaSet for {hash}"));
        rs.pods = rs.replicas;
        if crashing {
            rs.ready = rs.ready.min(rs.replicas);
            rs.available = rs.available.min(rs.replicas);
        } else {
            rs.ready = rs.replicas;
            rs.available = rs.replicas;
        }
    }

    /// `n` pods of `hash` are ready and available.
    pub fn set_ready(&mut self, hash: &str, n: i32) {
        let rs = self
            .observed
            .replica_sets
            .iter_mut()
            .find(|r| r.hash == hash)
            .unwrap_or_else(|| panic!("no ReplicaSet for {hash}"));
        assert!(n <= rs.replicas, "more ready pods than replicas");
        assert!(
            !self.crashing.contains(hash),
            "a crashing hash is never ready"
        );
        rs.pods = rs.replicas;
        rs.ready = n;
        rs.available = n;
    }

    /// The ReplicaSet controller catches up with every experiment ReplicaSet: each has its
    /// pods ready and available (none once scaled to zero). Those of a crashing pod template
    /// hash (`crash_experiments`) never get ready.
    pub fn make_experiments_ready(&mut self) {
        let crashing = self.crashing_experiments;
        for e in &mut self.observed.experiment_sets {
            e.pods = e.replicas;
            let ready = if crashing {
                e.ready.min(e.replicas)
            } else {
                e.replicas
            };
            e.ready = ready;
            e.available = ready;
        }
    }

    /// Every pod of every non-crashing ReplicaSet becomes ready.
    pub fn make_all_ready(&mut self) {
        let hashes: Vec<String> = self
            .observed
            .replica_sets
            .iter()
            .map(|r| r.hash.clone())
            .collect();
        for h in hashes {
            self.make_ready(&h);
        }
        self.make_experiments_ready();
    }

    /// Moves the virtual clock forward.
    pub fn advance(&mut self, secs: i64) {
        self.now = self
            .now
            .checked_add(SignedDuration::from_secs(secs))
            .expect("time");
    }

    /// `now + secs`.
    pub fn at(&self, secs: i64) -> Timestamp {
        self.now
            .checked_add(SignedDuration::from_secs(secs))
            .expect("time")
    }

    /// Sets the phase (and message) of the newest run of `kind`; returns its name.
    pub fn set_run_phase(&mut self, kind: AnalysisKind, phase: AnalysisPhase) -> String {
        self.set_run(kind, phase, None)
    }

    pub fn set_run(
        &mut self,
        kind: AnalysisKind,
        phase: AnalysisPhase,
        message: Option<&str>,
    ) -> String {
        let run = self
            .observed
            .analysis_runs
            .iter_mut()
            .rev()
            .find(|r| r.kind == kind)
            .unwrap_or_else(|| panic!("no {} run", kind.as_str()));
        run.phase = phase;
        run.message = message.map(str::to_string);
        run.name.clone()
    }

    pub fn add_service(&mut self, name: &str) {
        self.observed.services.insert(
            name.into(),
            ObservedService {
                name: name.into(),
                selected_hash: None,
            },
        );
    }

    // ----- the user -----

    /// The hash of the current template with `image`.
    pub fn hash_of(&self, image: &str) -> String {
        let t = self.rollout.spec.template.as_ref().expect("template");
        fixtures::hash_with_image(t, image)
    }

    /// Changes the image (a new revision); returns its hash. Bumps the generation.
    pub fn set_image(&mut self, image: &str) -> String {
        let hash = self.hash_of(image);
        self.edit_spec(|s| {
            if let Some(c) = s
                .template
                .as_mut()
                .and_then(|t| t.spec.as_mut())
                .and_then(|s| s.containers.first_mut())
            {
                c.image = Some(image.into());
            }
        });
        hash
    }

    /// [`World::set_image`] under the name the test plan uses.
    pub fn set_template_image(&mut self, image: &str) -> String {
        self.set_image(image)
    }

    /// Edits the spec as `kubectl apply` would: the generation is bumped.
    pub fn edit_spec(&mut self, f: impl FnOnce(&mut rollgate_api::RolloutSpec)) {
        let before = self.rollout.spec.clone();
        f(&mut self.rollout.spec);
        if self.rollout.spec != before {
            self.rollout.metadata.generation =
                Some(self.rollout.metadata.generation.unwrap_or(1) + 1);
        }
    }

    /// Pods of `image` never become ready; returns its hash.
    pub fn crash(&mut self, image: &str) -> String {
        let h = self.hash_of(image);
        self.crashing.insert(h.clone());
        h
    }

    fn status_mut(&mut self) -> &mut RolloutStatus {
        self.rollout.status.get_or_insert_with(Default::default)
    }

    /// `rollgate promote`: clears `status.pauseConditions`.
    pub fn promote(&mut self) {
        self.status_mut().pause_conditions.clear();
    }

    /// `rollgate promote --full`: `status.promoteFull = true`.
    pub fn promote_full(&mut self) {
        self.status_mut().promote_full = Some(true);
    }

    /// `rollgate abort`: `status.abort = true`.
    pub fn abort(&mut self) {
        self.status_mut().abort = Some(true);
    }

    /// `rollgate retry`: `status.abort = false`.
    pub fn retry(&mut self) {
        self.status_mut().abort = Some(false);
    }

    // ----- reading -----

    pub fn replicas(&self) -> i32 {
        self.rollout.spec.replicas.unwrap_or(1)
    }

    pub fn status(&self) -> RolloutStatus {
        self.rollout.status.clone().unwrap_or_default()
    }

    pub fn phase(&self) -> Option<RolloutPhase> {
        self.status().phase
    }

    pub fn message(&self) -> String {
        self.status().message.unwrap_or_default()
    }

    pub fn condition(&self, type_: &str) -> RolloutCondition {
        self.status()
            .conditions
            .into_iter()
            .find(|c| c.type_ == type_)
            .unwrap_or_else(|| panic!("no {type_} condition"))
    }

    pub fn has_condition(&self, type_: &str) -> bool {
        self.status().conditions.iter().any(|c| c.type_ == type_)
    }

    /// `(status, reason)` of a condition.
    pub fn cond(&self, type_: &str) -> (String, String) {
        let c = self.condition(type_);
        (c.status, c.reason)
    }

    pub fn active(&self) -> Option<String> {
        self.observed.services.get(ACTIVE)?.selected_hash.clone()
    }

    pub fn preview(&self) -> Option<String> {
        self.observed.services.get(PREVIEW)?.selected_hash.clone()
    }

    pub fn rs(&self, hash: &str) -> ObservedReplicaSet {
        self.observed
            .replica_set(hash)
            .cloned()
            .unwrap_or_else(|| panic!("no ReplicaSet for {hash}"))
    }

    pub fn has_rs(&self, hash: &str) -> bool {
        self.observed.replica_set(hash).is_some()
    }

    pub fn run(&self, name: &str) -> ObservedAnalysisRun {
        self.observed
            .analysis_runs
            .iter()
            .find(|r| r.name == name)
            .cloned()
            .unwrap_or_else(|| panic!("no run {name}"))
    }

    pub fn run_names(&self) -> Vec<String> {
        self.observed
            .analysis_runs
            .iter()
            .map(|r| r.name.clone())
            .collect()
    }

    pub fn reasons(&self) -> Vec<&'static str> {
        self.events.iter().map(|e| e.reason.as_str()).collect()
    }

    /// The notes of every event with `reason`, in order.
    pub fn notes(&self, reason: &str) -> Vec<String> {
        self.events
            .iter()
            .filter(|e| e.reason == reason)
            .map(|e| e.note.clone())
            .collect()
    }
}

/// Reasons of a decision's events.
pub fn reasons(d: &Decision) -> Vec<&'static str> {
    d.events.iter().map(|e| e.reason.as_str()).collect()
}

/// A requeue of `secs` seconds as the engine reports it (it wakes 100 ms after a deadline).
pub fn requeue(secs: u64) -> Option<Duration> {
    Some(Duration::from_secs(secs) + Duration::from_millis(100))
}

/// A scale action as the engine emits it.
pub fn scale(hash: &str, replicas: i32) -> Action {
    Action::UpdateReplicaSet {
        name: rs_name(hash),
        replicas: Some(replicas),
        deadline: DeadlineChange::Keep,
        revision: None,
    }
}

/// A scale-down deadline action.
pub fn deadline(hash: &str, at: Timestamp) -> Action {
    Action::UpdateReplicaSet {
        name: rs_name(hash),
        replicas: None,
        deadline: DeadlineChange::Set(at),
        revision: None,
    }
}

/// A Service switch action.
pub fn switch(service: &str, from: Option<&str>, to: &str) -> Action {
    Action::SwitchService {
        service: service.into(),
        role: if service == ACTIVE {
            rollgate_engine::ServiceRole::Active
        } else {
            rollgate_engine::ServiceRole::Preview
        },
        from: from.map(str::to_string),
        to: to.into(),
    }
}

/// The actions of a decision with ReplicaSet and AnalysisRun creations reduced to their names.
pub fn summary(d: &Decision) -> Vec<String> {
    d.actions
        .iter()
        .map(|a| match a {
            Action::CreateReplicaSet(rs) => format!(
                "create rs {} x{}",
                rs.metadata.name.as_deref().unwrap_or_default(),
                rs.spec.replicas.unwrap_or(-1)
            ),
            Action::CreateAnalysisRun(r) => {
                format!(
                    "create run {}",
                    r.metadata.name.as_deref().unwrap_or_default()
                )
            }
            other => format!("{other:?}"),
        })
        .collect()
}

// ----- blue/green helpers -----

/// `{"autoPromotionEnabled": false}`: a blue/green release that pauses until promoted.
pub fn manual() -> Value {
    json!({"autoPromotionEnabled": false})
}

/// The owner reference of everything the engine creates for the world's rollout.
pub fn owner() -> OwnerReference {
    OwnerReference {
        api_version: "rollgate.dev/v1alpha1".into(),
        kind: "Rollout".into(),
        name: "web".into(),
        uid: "6f1c0d2e-uid".into(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// A label (or annotation) map of `pairs`.
pub fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect()
}

/// A scale to 0 pods, clearing the scale-down deadline (`clear`) or keeping it.
pub fn scale_to_zero(hash: &str, clear: bool) -> Action {
    Action::UpdateReplicaSet {
        name: rs_name(hash),
        replicas: Some(0),
        deadline: if clear {
            DeadlineChange::Clear
        } else {
            DeadlineChange::Keep
        },
        revision: None,
    }
}

/// The termination of the run `name`.
pub fn terminate(name: &str) -> Action {
    Action::TerminateAnalysisRun { name: name.into() }
}

/// A pause condition of `reason` (its name in the API) started `at`.
pub fn pause(reason: &str, at: Timestamp) -> PauseCondition {
    PauseCondition {
        reason: reason.parse().expect("a pause reason"),
        start_time: Time(at),
    }
}

/// `status.blueGreen`.
pub fn bg_status(w: &World) -> rollgate_api::BlueGreenStatus {
    w.status().blue_green.expect("blueGreen status")
}

// ----- canary helpers -----

/// Limits a canary move must respect at every step: at least `min_available` ready and
/// available pods (`replicas - maxUnavailable`) and, without a router, at most `max_total`
/// pods asked for (`replicas + maxSurge`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    pub min_available: i32,
    pub max_total: Option<i32>,
}

impl World {
    /// Ready and available pods over every ReplicaSet, counting only the pods each keeps
    /// (pods beyond a ReplicaSet's `replicas` are going away).
    pub fn available_pods(&self) -> i32 {
        self.observed
            .replica_sets
            .iter()
            .map(|rs| rs.ready.min(rs.available).min(rs.replicas).max(0))
            .sum()
    }

    /// `spec.replicas` summed over every ReplicaSet.
    pub fn spec_pods(&self) -> i32 {
        self.observed
            .replica_sets
            .iter()
            .map(|rs| rs.replicas)
            .sum()
    }

    /// `spec.replicas` of the ReplicaSet of `hash`, 0 when it does not exist.
    pub fn size(&self, hash: &str) -> i32 {
        self.observed.replica_set(hash).map_or(0, |rs| rs.replicas)
    }

    /// Ready pods the ReplicaSet of `hash` keeps, 0 when it does not exist.
    pub fn ready_of(&self, hash: &str) -> i32 {
        self.observed
            .replica_set(hash)
            .map_or(0, |rs| rs.ready.min(rs.available).min(rs.replicas))
    }

    /// The ReplicaSet controller makes a little progress everywhere: pods beyond `replicas`
    /// are gone, and one more pod of each (non-crashing) ReplicaSet becomes ready.
    pub fn one_more_ready(&mut self) {
        for rs in &mut self.observed.replica_sets {
            let ready = rs.ready.min(rs.available).min(rs.replicas);
            let next = if self.crashing.contains(&rs.hash) || ready >= rs.replicas {
                ready
            } else {
                ready + 1
            };
            rs.pods = rs.replicas;
            rs.ready = next;
            rs.available = next;
        }
    }

    /// One more pod of `hash` becomes ready (pods beyond `replicas` are gone).
    pub fn one_more_ready_of(&mut self, hash: &str) {
        let crashing = self.crashing.contains(hash);
        let rs = self
            .observed
            .replica_sets
            .iter_mut()
            .find(|r| r.hash == hash)
            .unwrap_or_else(|| panic!("no ReplicaSet for {hash}"));
        let ready = rs.ready.min(rs.available).min(rs.replicas);
        let next = if crashing || ready >= rs.replicas {
            ready
        } else {
            ready + 1
        };
        rs.pods = rs.replicas;
        rs.ready = next;
        rs.available = next;
    }

    /// `rollgate promote` when nothing is paused: the current step is skipped
    /// (`status.currentStepIndex` + 1).
    pub fn skip_step(&mut self) {
        let s = self.status_mut();
        s.current_step_index = Some(s.current_step_index.unwrap_or(0) + 1);
    }

    /// `status.currentStepIndex`.
    pub fn step_index(&self) -> i32 {
        self.status().current_step_index.expect("currentStepIndex")
    }

    /// `(setWeight, actualWeight)` of `status.canary.weights`.
    pub fn canary_weights(&self) -> (i32, i32) {
        let w = self
            .status()
            .canary
            .and_then(|c| c.weights)
            .expect("status.canary.weights");
        (w.set_weight, w.actual_weight)
    }

    /// Asserts `bounds` on the current world.
    pub fn assert_bounds(&self, bounds: Bounds, what: &str) {
        let available = self.available_pods();
        assert!(
            available >= bounds.min_available,
            "{what}: {available} pods available, fewer than {}: {:?}",
            bounds.min_available,
            self.observed.replica_sets
        );
        if let Some(max) = bounds.max_total {
            let total = self.spec_pods();
            assert!(
                total <= max,
                "{what}: {total} pods asked for, more than {max}: {:?}",
                self.observed.replica_sets
            );
        }
    }

    /// Steps, letting one more pod of each ReplicaSet become ready between steps, and checks
    /// `bounds` after every step, until a step changes nothing (at most `max` steps).
    pub fn run_bounded(&mut self, bounds: Bounds, max: usize) -> Decision {
        let mut last = self.step();
        self.assert_bounds(bounds, "first step");
        for i in 0..max {
            self.one_more_ready();
            self.assert_bounds(bounds, "pods became ready");
            let d = self.step();
            self.assert_bounds(bounds, &format!("step {i}"));
            if d.actions.is_empty() && d.status == last.status {
                return d;
            }
            last = d;
        }
        panic!("world did not settle: {}", self.message());
    }

    /// The AnalysisRun creations among the actions so far.
    pub fn created_runs(&self) -> Vec<rollgate_api::AnalysisRun> {
        self.actions
            .iter()
            .filter_map(|a| match a {
                Action::CreateAnalysisRun(r) => Some((**r).clone()),
                _ => None,
            })
            .collect()
    }

    /// Names of the runs asked to terminate so far.
    pub fn terminated_runs(&self) -> Vec<String> {
        self.actions
            .iter()
            .filter_map(|a| match a {
                Action::TerminateAnalysisRun { name } => Some(name.clone()),
                _ => None,
            })
            .collect()
    }
}

/// The name of the `n`th AnalysisRun of canary step `index` for `hash`.
pub fn step_run_name(hash: &str, index: usize, n: usize) -> String {
    format!("{NAME}-{hash}-step-{index}-{n}")
}
