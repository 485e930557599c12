//! The canary strategy.
//!
//! A release of hash `H` over stable hash `S` walks `steps`: `setWeight` moves traffic, `pause`
//! waits for a timer or a human, `analysis` waits for an AnalysisRun, `setCanaryScale` sizes
//! the canary apart from its weight. Traffic moves either by replica counts (one Service selects
//! both ReplicaSets; every move stays within `maxSurge` / `maxUnavailable`) or through a Gateway
//! API HTTPRoute whose backend weights are set exactly, once the canary has the pods for it.
//! After the last step `H` is scaled to full and becomes stable. An abort puts the canary's
//! weight back to 0 at once (with `dynamicStableScale`, as fast as the stable's ready pods take
//! the traffic back).
//!
//! Invariants: a route never gives the canary Service a weight its ready pods cannot carry
//! (weights only rise once the pods are ready); without a router, available pods never drop
//! below `replicas - maxUnavailable` through a scale-down of ours.

mod sizing;

use rollgate_api::{
    AnalysisPhase, ConditionReason, EventReason, PauseReason, RolloutPhase, TrafficWeights,
};

use crate::action::{Action, ServiceRole};
use crate::analysis;
use crate::context::Ctx;
use crate::hash::pod_template_hash;
use crate::lifecycle::AbortState;
use crate::message::{Msg, Point, StrategyKind, Waiting};
use crate::observed::AnalysisKind;
use crate::release::{
    self, Flow, Strategy, abort_on_error, analysis_gate, end_pause, has_ready, pause_started,
    promoted_by_user, ready_counts, service_hash, start_release_if_new, waiting_for_pods,
};
use crate::replicasets::{self, replica_set_name};
use crate::routes::{self, ManagedRule, RouteKind};
use crate::time::add_secs;
use crate::validate::{CanaryScale, CanarySpec, Step};

pub use sizing::{percent_of, pods_for_percent, split_for_weight};

/// What the replica sets and the route should look like for one stage of the release.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// Traffic weight the stage asks for.
    weight: i32,
    /// Canary pods the stage asks for.
    canary_pods: i32,
    /// New `spec.replicas` per hash after one bounded move (canary, stable, others), applied
    /// with the route and the Services ([`emit`]).
    moves: Vec<(String, i32)>,
    /// Sizes applied only after the Services and the route have moved (on completion:
    /// superseded canaries that may still have route weight through the canary Service).
    late: Vec<(String, i32)>,
    /// Hashes the move manages besides canary and stable (superseded canaries).
    others: Vec<String>,
    /// Canary weight of the route before this reconcile (0 when the canary Service is about
    /// to select another hash), and the weight to set now.
    route: Option<(i32, i32)>,
    /// True when the world already matches the stage.
    at_target: bool,
    /// The canary Service selects the stable hash (aborted, as Argo Rollouts does: whatever
    /// still sends to it reaches serving pods) instead of the canary's.
    canary_service_on_stable: bool,
    /// The managed routes the stage wants on the HTTPRoute, in order of precedence: those the
    /// `setHeaderRoute` / `setMirrorRoute` steps so far set (none before the release, after
    /// it and once aborted).
    managed: Vec<ManagedRule>,
}

/// What the release wants of the ReplicaSets and the route now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// The first revision: all its pods at once, the route on the stable backend.
    FirstDeploy,
    /// Nothing in flight: the stable revision at full size, everything else going away, the
    /// route on the stable backend.
    Steady,
    /// Step `i` of the release (`steps.len()`: after the last step, at full size).
    Step(usize),
    /// Aborted: canary weight 0, the stable side at full size at once.
    Aborted,
    /// The canary becomes stable.
    Complete,
}

/// How the stage treats the stable side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Moving forward: every bound applies.
    Forward,
    /// Going back to stable (abort, rollback): the stable side scales up at once.
    Back,
}

pub fn reconcile(cx: &mut Ctx<'_>, spec: &CanarySpec) {
    let hash = pod_template_hash(&spec.common.template);
    cx.status.strategy = Some("Canary".into());
    cx.status.canary.get_or_insert_with(Default::default);
    cx.status.blue_green = None;
    start_release_if_new(cx, &hash, StrategyKind::Canary);

    let stable = cx.status.stable_rs.clone();
    let plan = match stable.clone() {
        None => first_deploy(cx, spec, &hash),
        Some(s) if s == hash => steady(cx, spec, &hash),
        Some(s) => in_flight(cx, spec, &hash, &s),
    };

    // ReplicaSets that the plan does not manage: scaled down after their deadline, pruned
    // beyond the history limit.
    let mut protected: Vec<&str> = Vec::new();
    protected.extend(stable.as_deref());
    protected.extend(plan.moves.iter().map(|(h, _)| h.as_str()));
    protected.extend(plan.late.iter().map(|(h, _)| h.as_str()));
    protected.extend(plan.others.iter().map(String::as_str));
    // Protected ReplicaSets already waiting for their delayed scale-down (the previous stable
    // a completion just scheduled) are the newest waiting ones: they count against
    // `scaleDownDelayRevisionLimit` before the older ones the clean-up sees.
    let waiting_protected = cx
        .observed
        .replica_sets
        .iter()
        .filter(|rs| {
            protected.contains(&rs.hash.as_str())
                && cx.status.stable_rs.as_deref() != Some(rs.hash.as_str())
        })
        .filter(|rs| replicasets::planned_size(cx, &rs.name).unwrap_or(rs.replicas) > 0)
        .filter(|rs| rs.scale_down_deadline.is_some() || cx.deadlines.contains_key(&rs.name))
        .count();
    let limit = spec
        .scale_down_delay_revision_limit
        .map(|l| l.saturating_sub(waiting_protected));
    replicasets::clean_up(cx, &protected, limit, spec.common.revision_history_limit);

    let mut keep: Vec<String> = Vec::new();
    if cx.release.abort_flagged() || cx.status.stable_rs.as_deref() == Some(hash.as_str()) {
        crate::experiment::forget(cx);
    }
    keep.extend(crate::experiment::runs(cx));
    crate::experiment::clean_up(cx, &hash);
    if !cx.release.abort_flagged()
        && stable.as_deref() != Some(hash.as_str())
        && let Some(c) = &cx.status.canary
    {
        keep.extend(
            [
                &c.current_step_analysis_run_status,
                &c.current_background_analysis_run_status,
            ]
            .into_iter()
            .flatten()
            .map(|s| s.name.clone()),
        );
    }
    keep.extend(crate::alerts::guard_run(cx));
    let keep: Vec<&str> = keep.iter().map(String::as_str).collect();
    // A run started by this very reconcile that the release no longer follows (a background
    // run restarted by a retry or an accepted result, in a reconcile that then completed or
    // aborted the release) is not created at all: the next reconcile would only terminate it.
    analysis::drop_created_except(cx, &keep);
    analysis::terminate_others(cx, &keep);

    replicasets::count(cx, &spec.common, &hash);
    let actual = actual_weight(cx, spec, &hash, &plan);
    if let Some(c) = cx.status.canary.as_mut() {
        c.weights = Some(TrafficWeights {
            set_weight: plan.weight,
            actual_weight: actual,
        });
    }
    let stable_now = cx.status.stable_rs.clone();
    let replicas = spec.common.replicas;
    let available = pods_available(cx) >= (replicas - spec.max_unavailable).max(1).min(replicas);
    let completed = release::completed(cx, stable_now.as_deref(), &hash);
    if let Some(o) = cx.outcome.as_mut() {
        o.available = available;
        o.completed = completed;
    }
}

/// Available pods across all of the rollout's ReplicaSets once this reconcile's scales apply
/// (the Available condition then stays the same when the next reconcile observes the result).
fn pods_available(cx: &Ctx<'_>) -> i32 {
    cx.observed
        .replica_sets
        .iter()
        .map(|rs| {
            rs.ready
                .min(rs.available)
                .min(rs.replicas)
                .min(desired_replicas(cx, &rs.name, rs.replicas))
                .max(0)
        })
        .sum()
}

/// `spec.replicas` of the ReplicaSet `name` once this reconcile's scales and deletes apply.
fn desired_replicas(cx: &Ctx<'_>, name: &str, observed: i32) -> i32 {
    replicasets::planned_size(cx, name).unwrap_or(observed)
}

/// The canary's real share of traffic: the route's weight once this reconcile's change is
/// applied, or its share of the available pods once this reconcile's scales apply (the status
/// then stays the same when the next reconcile observes the result).
fn actual_weight(cx: &Ctx<'_>, spec: &CanarySpec, hash: &str, plan: &Plan) -> i32 {
    // Checked before the route: once the release is complete the route is back at canary 0,
    // but the canary Service then selects the stable revision, which has all the traffic.
    if cx.status.stable_rs.as_deref() == Some(hash) && !cx.release.abort_flagged() {
        // Nothing in flight: the current revision is the stable one.
        return if spec.common.replicas > 0 { 100 } else { 0 };
    }
    if let Some((_, to)) = plan.route {
        return to;
    }
    let desired = |name: &str, observed: i32| desired_replicas(cx, name, observed);
    let mut canary = 0;
    let mut total = 0;
    for rs in &cx.observed.replica_sets {
        let kept = rs
            .ready
            .min(rs.available)
            .min(rs.replicas)
            .min(desired(&rs.name, rs.replicas))
            .max(0);
        total += kept;
        if rs.hash == hash {
            canary = kept;
        }
    }
    percent_of(canary, total)
}

/// Weight and canary scale in force at step `index` (`steps.len()` means: all done).
fn stage(spec: &CanarySpec, index: usize) -> (i32, Option<CanaryScale>) {
    if index >= spec.steps.len() {
        return (100, None);
    }
    let mut weight = 0;
    let mut scale = None;
    for step in spec.steps.iter().take(index + 1) {
        match step {
            Step::SetWeight(w) => weight = *w,
            Step::SetCanaryScale(CanaryScale::MatchTrafficWeight) => scale = None,
            Step::SetCanaryScale(s) => scale = Some(*s),
            Step::Pause(_)
            | Step::Analysis(_)
            | Step::ManagedRoute { .. }
            | Step::Experiment(_) => {}
        }
    }
    (weight, scale)
}

/// The managed routes in force at step `index` (`steps.len()`: after the last step): each
/// `setHeaderRoute` / `setMirrorRoute` step so far sets its route or, without `match`, removes
/// it; ordered as `managedRoutes` lists them.
fn managed_at(spec: &CanarySpec, index: usize) -> Vec<ManagedRule> {
    let mut set: std::collections::BTreeMap<&str, &RouteKind> = Default::default();
    for step in spec.steps.iter().take(index.saturating_add(1)) {
        if let Step::ManagedRoute { name, kind } = step {
            match kind {
                Some(k) => set.insert(name, k),
                None => set.remove(name.as_str()),
            };
        }
    }
    spec.managed_routes
        .iter()
        .filter_map(|n| {
            set.get(n.as_str()).map(|k| ManagedRule {
                name: n.clone(),
                kind: (*k).clone(),
            })
        })
        .collect()
}

/// Hashes of ReplicaSets that still have pods and are neither canary nor stable nor waiting for
/// a scale-down deadline: superseded canaries, which still serve traffic until scaled down.
fn others(cx: &Ctx<'_>, canary: &str, stable: &str) -> Vec<String> {
    cx.observed
        .replica_sets
        .iter()
        .filter(|rs| {
            rs.hash != canary
                && rs.hash != stable
                && rs.replicas > 0
                && rs.scale_down_deadline.is_none()
                && !cx.deadlines.contains_key(&rs.name)
        })
        .map(|rs| rs.hash.clone())
        .collect()
}

/// The canary weight the route has now, as the canary Service will see it: 0 when that
/// Service is about to select another hash.
fn route_weight_now(cx: &Ctx<'_>, spec: &CanarySpec, canary: &str) -> Option<i32> {
    let r = spec.route.as_ref()?;
    let observed = cx.observed.route.as_ref()?;
    let (w, _) = observed.weights(&r.canary_service, &r.stable_service)?;
    let selects = service_hash(cx.observed, &r.canary_service);
    Some(if selects.as_deref() == Some(canary) {
        w
    } else {
        0
    })
}

/// The plan for `target`, canary `canary` over stable `stable`: final, applied as it is.
fn plan(cx: &Ctx<'_>, spec: &CanarySpec, canary: &str, stable: &str, target: Target) -> Plan {
    let routed = spec.route.is_some();
    let stage = match target {
        Target::FirstDeploy | Target::Steady => (100, None, Mode::Back),
        Target::Step(i) => {
            let (weight, scale) = stage(spec, i);
            (weight, scale, Mode::Forward)
        }
        Target::Complete => {
            let (weight, scale) = stage(spec, spec.steps.len());
            (weight, scale, Mode::Forward)
        }
        Target::Aborted => {
            // Behind a router the aborted canary keeps its pods until its delayed scale-down
            // (for good with `abortScaleDownDelaySeconds: 0`, as in Argo Rollouts); without
            // one its pods are traffic, so they go as fast as availability allows.
            let keep = if routed {
                cx.observed.replica_set(canary).map_or(0, |rs| rs.replicas)
            } else {
                0
            };
            (0, Some(CanaryScale::Replicas(keep)), Mode::Back)
        }
    };
    let mut p = size(cx, spec, canary, stable, stage);
    let to_stable_backend = |route: Option<(i32, i32)>| route.map(|(now, _)| (now, 0));
    match target {
        Target::Step(i) => p.managed = managed_at(spec, i),
        Target::FirstDeploy => {
            // All pods at once when nothing else exists; beside an earlier revision that never
            // became ready (and a second one arrives) the moves stay within the surge: that
            // earlier revision's unready pods go first, its ready ones as the new pods serve.
            p.route = to_stable_backend(p.route);
        }
        Target::Steady => p.route = to_stable_backend(p.route),
        Target::Aborted => {
            // The canary's delayed scale-down starts only once the stable ReplicaSet is fully
            // available again (it may be short of pods, as with dynamicStableScale): until
            // then the canary keeps its pods, so that available pods never drop through a
            // scale-down of ours. And no canary ReplicaSet is ever created while aborted.
            // With `abortScaleDownDelaySeconds: 0` (Argo: "does not scale down") it stays in
            // the plan at its size, which also protects it from the clean-up.
            let missing = cx.observed.replica_set(canary).is_none();
            let kept_for_good = routed && spec.abort_scale_down_delay_seconds == 0;
            if (routed && !kept_for_good && !aborted_canary_held(cx, spec, canary, stable))
                || missing
            {
                p.moves.retain(|(h, _)| h != canary);
            }
            // Once the route gives the canary no weight (with dynamicStableScale the fall may
            // be held back while the stable side is short of pods).
            p.canary_service_on_stable = p.route.is_none_or(|(_, to)| to == 0);
        }
        Target::Complete => {
            // Route back to the stable backend, which selects the new pods once the stable
            // Service has moved.
            p.route = to_stable_backend(p.route);
            if routed {
                // The previous stable serves until the stable Service and the route have
                // moved: it is not scaled with the plan (dynamicStableScale would shrink it
                // before the switch) but after them.
                p.moves.retain(|(h, _)| h != stable);
            }
            // Superseded canaries may still have route weight through the canary Service:
            // they are scaled after the Services and the route have moved too.
            let (late, moves): (Vec<_>, Vec<_>) =
                p.moves.drain(..).partition(|(h, _)| p.others.contains(h));
            p.moves = moves;
            p.late = late;
        }
    }
    p
}

/// Behind a router, an aborted canary keeps its pods while the stable ReplicaSet is short of
/// ready pods and the canary's scale-down is not scheduled yet.
fn aborted_canary_held(cx: &Ctx<'_>, spec: &CanarySpec, canary: &str, stable: &str) -> bool {
    spec.route.is_some()
        && !has_ready(cx, stable, spec.common.replicas)
        && cx
            .observed
            .replica_set(canary)
            .is_some_and(|rs| rs.scale_down_deadline.is_none())
}

/// Sizes one stage, `(weight, scale, mode)`, within every bound: one bounded move.
fn size(
    cx: &Ctx<'_>,
    spec: &CanarySpec,
    canary: &str,
    stable: &str,
    (weight, scale, mode): (i32, Option<CanaryScale>, Mode),
) -> Plan {
    let replicas = spec.common.replicas;
    let routed = spec.route.is_some();
    let canary_pods = match scale {
        Some(CanaryScale::Replicas(n)) => n,
        Some(CanaryScale::Weight(p)) => pods_for_percent(replicas, p),
        Some(CanaryScale::MatchTrafficWeight) | None => pods_for_percent(replicas, weight),
    };
    let (canary_ready, canary_spec) = ready_counts(cx, canary);
    let canary_ready_all = cx
        .observed
        .replica_set(canary)
        .map_or(0, |rs| rs.ready.min(rs.available));

    // With dynamicStableScale the stable side only has the pods for its share: the share of
    // traffic its ready pods carry.
    let stable_carries = if spec.dynamic_stable_scale && replicas > 0 {
        let (ready, _) = ready_counts(cx, stable);
        ready.clamp(0, replicas).saturating_mul(100) / replicas
    } else {
        100
    };

    // Route: the weight rises only once the canary has the pods for it; it falls at once (with
    // dynamicStableScale only as far as the stable's ready pods carry the rest, then further
    // as they come up: at weight 100 the stable has no pod left).
    // Without any pod (`replicas: 0`) no backend can carry traffic: the route stays on the
    // stable backend and a step's weight counts as reached.
    let route_weight = if replicas == 0 { 0 } else { weight };
    let route = route_weight_now(cx, spec, canary).map(|now| {
        let carries = canary_spec >= canary_pods && canary_ready_all >= canary_pods;
        let to = if route_weight <= now {
            route_weight.max((100 - stable_carries).min(now))
        } else if carries {
            route_weight
        } else {
            now
        };
        (now, to)
    });
    // A fall held back that way keeps the canary's pods for the weight it still has (never
    // more than it runs).
    let canary_pods = match route {
        Some((_, to)) if to > weight => {
            canary_pods.max(pods_for_percent(replicas, to).min(canary_spec.max(canary_pods)))
        }
        _ => canary_pods,
    };

    let stable_pods = if routed {
        match (spec.dynamic_stable_scale, route) {
            // Sized for the lower of the route's weight and the step's: a rise waits for the
            // canary's pods, a fall for the stable's.
            (true, Some((_, to))) if mode == Mode::Forward => {
                pods_for_percent(replicas, 100 - to.min(weight))
            }
            _ => replicas,
        }
    } else {
        split_for_weight(replicas, weight, spec.max_surge).1
    };

    let others = others(cx, canary, stable);
    let mut sets: Vec<sizing::Set> = Vec::new();
    let observed_set = |hash: &str, target: i32| {
        let (available, spec) = ready_counts(cx, hash);
        sizing::Set {
            key: hash.to_string(),
            spec,
            available,
            target,
        }
    };
    for o in &others {
        sets.push(observed_set(o, 0));
    }
    let canary_index = sets.len();
    sets.push(observed_set(canary, canary_pods));
    let stable_index = sets.len();
    if stable != canary {
        sets.push(observed_set(stable, stable_pods));
    }
    let limits = sizing::Limits {
        min_available: (replicas - spec.max_unavailable).max(0),
        // Going back (abort, a template back to stable) is bounded too: the canary's pods
        // that do not serve go first, and the stable side grows within the surge.
        max_total: (!routed).then(|| replicas + spec.max_surge),
    };
    let up_order: Vec<usize> = match mode {
        Mode::Forward => vec![canary_index, stable_index],
        Mode::Back => vec![stable_index, canary_index],
    };
    let next = sizing::step(&sets, limits, &up_order);
    let moves: Vec<(String, i32)> = sets
        .iter()
        .zip(&next)
        .map(|(s, n)| (s.key.clone(), *n))
        .collect();

    // At target once this reconcile's moves apply: every set at its size, the canary's pods
    // ready, the route at the weight.
    let settled = sets.iter().zip(&next).all(|(s, n)| *n == s.target);
    let at_target = settled
        && canary_ready.min(canary_pods) >= canary_pods
        && route.is_none_or(|(_, to)| to == route_weight);
    Plan {
        weight,
        canary_pods,
        moves,
        late: Vec::new(),
        others,
        route,
        at_target,
        canary_service_on_stable: false,
        managed: Vec::new(),
    }
}

/// Applies a plan: the route when traffic may move first (see below), scales, Services, then
/// the route (lowered before the canary Service moves to a new hash, raised only after).
fn emit(cx: &mut Ctx<'_>, spec: &CanarySpec, canary: &str, stable: &str, plan: &Plan) {
    let revision = cx.status.current_revision;
    let mut current = match (&spec.route, cx.observed.route.as_ref()) {
        (Some(r), Some(o)) => o.weights(&r.canary_service, &r.stable_service).map(|w| w.0),
        _ => None,
    };
    // Traffic moves before pods go: a falling canary weight falls before any scale-down (a
    // lower setWeight, a superseded canary whose Service is about to move), and a rising one
    // (the canary already has the ready pods for it) rises before dynamicStableScale shrinks
    // the stable side. Not when the stable Service moves in this reconcile (completion): the
    // stable side may only get the traffic once that Service selects the new pods; and a rise
    // for a canary Service that is about to move waits until it has.
    let observed = cx.observed;
    let selects_other = |svc: &Option<String>, hash: &str| {
        svc.as_deref()
            .is_some_and(|s| service_hash(observed, s).as_deref() != Some(hash))
    };
    // The canary Service only moves to a hash whose ReplicaSet exists or is created now (a
    // release aborted in its first reconcile, by an alert already firing, never has one).
    // After an abort it selects the stable hash (Argo Rollouts: canary Service back on stable).
    let canary_exists = cx.observed.replica_set(canary).is_some()
        || cx.created.iter().any(|(_, (h, _))| h == canary);
    let svc_target = if plan.canary_service_on_stable {
        stable
    } else {
        canary
    };
    let canary_svc = spec
        .canary_service
        .as_ref()
        .filter(|_| canary_exists || plan.canary_service_on_stable);
    // Managed routes only removed go first (an abort takes the header routes off the canary at
    // once); routes added or changed go last, once the canary Service selects the canary.
    if plan.managed.is_empty() {
        set_managed(cx, spec, &plan.managed);
    }
    // A canary Service the route gives no weight moves first, before anything else (a retry
    // after an abort brings it back from the stable hash): then a rise of the weight need
    // not wait for it, and so neither does dynamicStableScale's shrinking of the stable side.
    let mut canary_svc_moved = false;
    if let Some(svc) = canary_svc
        && current == Some(0)
        && cx.observed.replica_set(svc_target).is_some()
        && service_hash(observed, svc).as_deref() != Some(svc_target)
    {
        switch(cx, ServiceRole::Canary, svc, svc_target);
        canary_svc_moved = true;
    }
    if !selects_other(&spec.stable_service, stable)
        && let (Some(r), Some(from)) = (spec.route.clone(), current)
    {
        let to = if !canary_svc_moved && selects_other(&spec.canary_service, canary) {
            Some(0).filter(|to| *to < from)
        } else {
            plan.route.map(|(_, to)| to)
        };
        if let Some(to) = to.filter(|to| *to != from) {
            set_route(cx, &r, from, to);
            current = Some(to);
        }
    }
    // Scale-downs first: applied in order, the pods asked for never exceed the surge bound
    // between two requests (a scale-up is only planned within what the scale-downs free).
    let shrinks = |(hash, replicas): &(String, i32)| {
        cx.observed
            .replica_set(hash)
            .is_some_and(|rs| *replicas < rs.replicas)
    };
    let down = plan.moves.iter().filter(|m| shrinks(m));
    let up = plan.moves.iter().filter(|m| !shrinks(m));
    for (hash, replicas) in down.chain(up) {
        let unchanged = cx
            .observed
            .replica_set(hash)
            .is_some_and(|rs| rs.replicas == *replicas && rs.scale_down_deadline.is_none());
        if unchanged && hash != canary {
            continue;
        }
        let rev = if hash == canary { revision } else { None };
        replicasets::ensure(cx, &spec.common, hash, *replicas, rev);
    }
    if let Some(svc) = spec.stable_service.clone() {
        switch(cx, ServiceRole::Stable, &svc, stable);
    }
    // Created by this reconcile's scales, perhaps.
    let canary_exists = canary_exists || cx.created.iter().any(|(_, (h, _))| h == canary);
    if let Some(svc) = spec
        .canary_service
        .clone()
        .filter(|_| !canary_svc_moved && (canary_exists || plan.canary_service_on_stable))
    {
        let moves = service_hash(cx.observed, &svc).as_deref() != Some(svc_target);
        if moves
            && let (Some(r), Some(w)) = (spec.route.clone(), current)
            && w > 0
        {
            set_route(cx, &r, w, 0);
            current = Some(0);
        }
        switch(cx, ServiceRole::Canary, &svc, svc_target);
    }
    if let (Some(r), Some(from), Some((_, to))) = (spec.route.clone(), current, plan.route)
        && from != to
    {
        set_route(cx, &r, from, to);
    }
    // Header routes send to the canary Service: only once it selects the canary's pods.
    let on_canary = spec.canary_service.as_deref().is_some_and(|svc| {
        service_hash(cx.observed, svc).as_deref() == Some(canary)
            || cx.actions.iter().any(|a| {
                matches!(a, Action::SwitchService { service, to, .. } if service == svc && to == canary)
            })
    });
    if !plan.managed.is_empty() && on_canary {
        set_managed(cx, spec, &plan.managed);
    }
}

/// Makes the HTTPRoute's managed routes `desired` (no-op when they already are, or without
/// `managedRoutes`).
fn set_managed(cx: &mut Ctx<'_>, spec: &CanarySpec, desired: &[ManagedRule]) {
    let (Some(r), Some(observed)) = (&spec.route, cx.observed.route.as_ref()) else {
        return;
    };
    if spec.managed_routes.is_empty()
        || routes::in_sync(
            observed,
            desired,
            &spec.managed_routes,
            &r.canary_service,
            &r.stable_service,
        )
    {
        return;
    }
    cx.event(
        EventReason::TrafficWeightUpdated,
        Msg::ManagedRoutes {
            namespace: r.namespace.clone(),
            route: r.name.clone(),
            from: routes::present(observed, &spec.managed_routes),
            to: desired.iter().map(|d| d.name.clone()).collect(),
        },
    );
    cx.actions.push(Action::SetManagedRoutes {
        namespace: r.namespace.clone(),
        route: r.name.clone(),
        canary_service: r.canary_service.clone(),
        stable_service: r.stable_service.clone(),
        managed: spec.managed_routes.clone(),
        rules: desired.to_vec(),
    });
}

fn set_route(cx: &mut Ctx<'_>, r: &crate::validate::RouteRef, from: i32, to: i32) {
    cx.event(
        EventReason::TrafficWeightUpdated,
        Msg::RouteWeights {
            namespace: r.namespace.clone(),
            route: r.name.clone(),
            canary: r.canary_service.clone(),
            stable: r.stable_service.clone(),
            from,
            to,
        },
    );
    cx.actions.push(Action::SetRouteWeights {
        namespace: r.namespace.clone(),
        route: r.name.clone(),
        canary_service: r.canary_service.clone(),
        stable_service: r.stable_service.clone(),
        canary_weight: to,
        from,
    });
}

/// Points a Service at `to` (no-op when it already is).
fn switch(cx: &mut Ctx<'_>, role: ServiceRole, service: &str, to: &str) {
    let from = service_hash(cx.observed, service);
    if from.as_deref() == Some(to) {
        return;
    }
    release::switch_service(cx, role, service, from, to);
}

fn first_deploy(cx: &mut Ctx<'_>, spec: &CanarySpec, hash: &str) -> Plan {
    let replicas = spec.common.replicas;
    cx.release.abort = AbortState::None;
    cx.status.current_step_index = i32::try_from(spec.steps.len()).ok();
    if spec.common.paused {
        return paused_first_deploy(cx, spec, hash);
    }
    let p = plan(cx, spec, hash, hash, Target::FirstDeploy);
    emit(cx, spec, hash, hash, &p);
    if has_ready(cx, hash, replicas) {
        release::complete(cx, hash);
        cx.event(
            EventReason::RolloutCompleted,
            Msg::FirstRevisionAvailable {
                hash: hash.to_string(),
                replicas,
            },
        );
        healthy(cx, hash, replicas);
    } else {
        let (ready, _) = ready_counts(cx, hash);
        let waiting = Waiting::FirstDeploy {
            rs: replica_set_name(cx.name(), hash),
            ready,
            replicas,
        };
        let _ = waiting_for_pods(cx, &spec.common, waiting, false);
    }
    p
}

/// `spec.paused` before the first revision is up ([`release::paused_first_deploy`]): nothing
/// moves; the plan only keeps the revision and whatever still has pods from clean-up.
fn paused_first_deploy(cx: &mut Ctx<'_>, spec: &CanarySpec, hash: &str) -> Plan {
    let size = release::paused_first_deploy(cx, &spec.common, hash);
    let others = cx
        .observed
        .replica_sets
        .iter()
        .filter(|rs| rs.hash != hash && rs.replicas > 0)
        .map(|rs| rs.hash.clone())
        .collect();
    Plan {
        weight: 100,
        canary_pods: size,
        moves: vec![(hash.to_string(), size)],
        late: Vec::new(),
        others,
        route: None,
        at_target: false,
        canary_service_on_stable: false,
        managed: Vec::new(),
    }
}

fn healthy(cx: &mut Ctx<'_>, hash: &str, replicas: i32) {
    let msg = Msg::Healthy {
        hash: hash.to_string(),
        replicas,
    };
    cx.set_outcome(
        RolloutPhase::Healthy,
        msg,
        ConditionReason::NewReplicaSetAvailable,
    );
}

/// Nothing in flight (or back to stable): stable at full size, everything else going away.
fn steady(cx: &mut Ctx<'_>, spec: &CanarySpec, hash: &str) -> Plan {
    let replicas = spec.common.replicas;
    cx.release.abort = AbortState::None;
    cx.release.promote_full = false;
    end_pause(cx);
    cx.status.current_step_index = i32::try_from(spec.steps.len()).ok();
    let p = plan(cx, spec, hash, hash, Target::Steady);
    emit(cx, spec, hash, hash, &p);
    let (ready, _) = ready_counts(cx, hash);
    if ready >= replicas && p.moves.iter().all(|(h, n)| h == hash || *n == 0) {
        healthy(cx, hash, replicas);
        crate::restart::restart(cx, &spec.common, spec.max_unavailable);
        release::paused_when_steady(cx, &spec.common, hash);
    } else {
        let msg = Msg::WaitingForStable {
            rs: replica_set_name(cx.name(), hash),
            ready,
            replicas,
        };
        cx.set_outcome(
            RolloutPhase::Progressing,
            msg,
            ConditionReason::ReplicaSetUpdated,
        );
    }
    p
}

fn in_flight(cx: &mut Ctx<'_>, spec: &CanarySpec, hash: &str, stable: &str) -> Plan {
    release::in_flight(cx, spec, hash, stable)
}

impl Strategy for CanarySpec {
    type Plan = Plan;
    const KIND: StrategyKind = StrategyKind::Canary;

    fn aborted(&self, cx: &mut Ctx<'_>, hash: &str, stable: &str) -> (Plan, bool) {
        aborted(cx, self, hash, stable)
    }

    fn progress(&self, cx: &mut Ctx<'_>, hash: &str, stable: &str) -> (Flow, Plan) {
        progress(cx, self, hash, stable)
    }

    fn restart_budget(&self) -> (&crate::validate::CommonSpec, i32) {
        (&self.common, self.max_unavailable)
    }
}

/// The aborted state: canary weight 0 at once, stable at full size, the canary scaled down
/// (after `abortScaleDownDelaySeconds` behind a router, where it no longer gets traffic;
/// without one its pods are traffic, so they go as fast as availability allows). True once
/// the stable ReplicaSet is fully available again.
fn aborted(cx: &mut Ctx<'_>, spec: &CanarySpec, hash: &str, stable: &str) -> (Plan, bool) {
    // The route falls to 0 at once; with dynamicStableScale only as far as the stable's ready
    // pods carry the traffic (see `size`).
    let held = aborted_canary_held(cx, spec, hash, stable);
    let p = plan(cx, spec, hash, stable, Target::Aborted);
    emit(cx, spec, hash, stable, &p);
    // `abortScaleDownDelaySeconds: 0` keeps the aborted canary's pods for good (Argo
    // Rollouts, "Scaledown New Replicaset on Aborted Rollout").
    if spec.route.is_some() && !held && spec.abort_scale_down_delay_seconds > 0 {
        replicasets::schedule_scale_down(cx, hash, spec.abort_scale_down_delay_seconds);
    }
    let (ready, _) = ready_counts(cx, stable);
    (p, ready >= spec.common.replicas)
}

/// Walks the steps as far as the observed world allows.
fn progress(cx: &mut Ctx<'_>, spec: &CanarySpec, hash: &str, stable: &str) -> (Flow, Plan) {
    let n = spec.steps.len();
    let total = i32::try_from(n).unwrap_or(i32::MAX);
    let mut i = usize::try_from(cx.status.current_step_index.unwrap_or(0).max(0))
        .unwrap_or(0)
        .min(n);
    let full = cx.release.promote_full;
    if full {
        i = n;
        // A full promotion skips the pauses too: none stays in the status while finishing.
        end_pause(cx);
    }
    // A step run belongs to an analysis step: once the release is elsewhere (the user skipped
    // the step), it is no longer followed, so it gets terminated.
    if !matches!(spec.steps.get(i), Some(Step::Analysis(_)))
        && let Some(c) = cx.status.canary.as_mut()
    {
        c.current_step_analysis_run_status = None;
    }
    // Likewise the experiment of an experiment step (its ReplicaSets are scaled down).
    if !matches!(spec.steps.get(i), Some(Step::Experiment(_))) {
        crate::experiment::forget(cx);
    }

    // Background analysis, from its starting step until the release completes.
    if !full && let Some((bg, start)) = &spec.background {
        let start = usize::try_from(*start).unwrap_or(0);
        if i >= start {
            let mut slot = cx
                .status
                .canary
                .as_mut()
                .and_then(|c| c.current_background_analysis_run_status.take());
            let (phase, run) =
                analysis::follow(cx, AnalysisKind::Background, None, bg, hash, &mut slot);
            if let Some(c) = cx.status.canary.as_mut() {
                c.current_background_analysis_run_status = slot.clone();
            }
            match phase {
                AnalysisPhase::Failed | AnalysisPhase::Error
                    if phase == AnalysisPhase::Failed || abort_on_error(bg) =>
                {
                    let p = plan_at(cx, spec, hash, stable, i);
                    let flow = analysis_gate(cx, Point::Background, bg, phase, &run, slot);
                    return (flow.unwrap_or(Flow::Wait), p);
                }
                AnalysisPhase::Inconclusive | AnalysisPhase::Error if !promoted_by_user(cx) => {
                    let flow = analysis_gate(cx, Point::Background, bg, phase, &run, slot);
                    cx.status.current_step_index = Some(i32::try_from(i).unwrap_or(total));
                    let p = plan_at(cx, spec, hash, stable, i);
                    emit(cx, spec, hash, stable, &p);
                    return (flow.unwrap_or(Flow::Wait), p);
                }
                AnalysisPhase::Inconclusive | AnalysisPhase::Error => {
                    // Promoted: the inconclusive result is accepted and a fresh run watches the
                    // rest of the release. Following the old (finished) run would pause again
                    // on the next reconcile, and a promote left pending would later skip a
                    // pause or an inconclusive step analysis unasked (a pause step that is the
                    // current step was promoted with it).
                    let mut fresh = None;
                    analysis::follow_fresh(
                        cx,
                        AnalysisKind::Background,
                        None,
                        bg,
                        hash,
                        &mut fresh,
                    );
                    if let Some(c) = cx.status.canary.as_mut() {
                        c.current_background_analysis_run_status = fresh;
                    }
                    if !matches!(spec.steps.get(i), Some(Step::Pause(_))) {
                        end_pause(cx);
                    }
                }
                _ => {}
            }
        }
    }

    let first = i;
    let mut completed = None;
    let flow = loop {
        if spec.common.paused {
            let msg = Msg::SpecPausedCanary {
                no: (i + 1).min(n.max(1)),
                of: n,
                rollout: cx.name().to_string(),
            };
            cx.set_outcome(RolloutPhase::Paused, msg, ConditionReason::RolloutPaused);
            break Flow::Wait;
        }
        if i >= n {
            let (flow, done) = finish(cx, spec, hash, stable);
            completed = done;
            break flow;
        }
        let step_no = i + 1;
        let done = match &spec.steps[i] {
            Step::SetWeight(_) | Step::SetCanaryScale(_) => {
                let p = plan_at(cx, spec, hash, stable, i);
                if p.at_target {
                    true
                } else {
                    let waiting = waiting_for_step(cx, spec, hash, stable, &p, step_no, n);
                    break waiting_for_pods(cx, &spec.common, waiting, true);
                }
            }
            // Instant: the plan of the step it leads to writes the route.
            Step::ManagedRoute { .. } => true,
            Step::Pause(duration) => {
                if promoted_by_user(cx) {
                    cx.event(
                        EventReason::RolloutPromoted,
                        Msg::PausePromoted { no: step_no, of: n },
                    );
                    true
                } else {
                    let start = pause_started(cx, PauseReason::CanaryPauseStep);
                    let rollout = cx.name().to_string();
                    match duration {
                        Some(secs) => {
                            let at = add_secs(start, *secs);
                            if cx.now >= at {
                                true
                            } else {
                                cx.wake_at(at);
                                let msg = Msg::TimedPause {
                                    no: step_no,
                                    of: n,
                                    seconds: *secs,
                                    at,
                                    rollout,
                                };
                                cx.set_outcome(
                                    RolloutPhase::Paused,
                                    msg,
                                    ConditionReason::RolloutPaused,
                                );
                                break Flow::Wait;
                            }
                        }
                        None => {
                            let msg = Msg::IndefinitePause {
                                no: step_no,
                                of: n,
                                rollout,
                            };
                            cx.set_outcome(
                                RolloutPhase::Paused,
                                msg,
                                ConditionReason::RolloutPaused,
                            );
                            break Flow::Wait;
                        }
                    }
                }
            }
            Step::Experiment(e) => match crate::experiment::run(cx, spec, e, i, hash, stable) {
                None => true,
                Some(flow) => break flow,
            },
            Step::Analysis(a) => {
                let step = i32::try_from(i).ok();
                // A run of another step (the user skipped a step) does not count here.
                let mut slot = cx
                    .status
                    .canary
                    .as_mut()
                    .and_then(|c| c.current_step_analysis_run_status.take())
                    .filter(|s| {
                        cx.observed
                            .analysis_runs
                            .iter()
                            .find(|r| r.name == s.name)
                            .is_none_or(|r| r.step == step)
                    });
                let (phase, run) =
                    analysis::follow(cx, AnalysisKind::Step, step, a, hash, &mut slot);
                if let Some(c) = cx.status.canary.as_mut() {
                    c.current_step_analysis_run_status = slot.clone();
                }
                let point = Point::Step { no: step_no, of: n };
                match analysis_gate(cx, point, a, phase, &run, slot) {
                    None => {
                        if let Some(c) = cx.status.canary.as_mut() {
                            c.current_step_analysis_run_status = None;
                        }
                        true
                    }
                    Some(flow) => break flow,
                }
            }
        };
        if done {
            end_pause(cx);
            i += 1;
            cx.status.current_step_index = Some(i32::try_from(i).unwrap_or(total));
            if i < n {
                cx.event(
                    EventReason::RolloutStepCompleted,
                    Msg::StepCompleted { done: i, of: n },
                );
            }
        }
    };
    cx.status.current_step_index = Some(i32::try_from(i).unwrap_or(total));
    if let Some(p) = completed {
        return (flow, p);
    }
    // A background analysis whose starting step was reached in this reconcile starts now:
    // the next reconcile must find nothing left to do.
    if !full
        && matches!(flow, Flow::Wait)
        && let Some((bg, start)) = &spec.background
        && let Ok(start) = usize::try_from(*start)
        && first < start
        && i >= start
    {
        let mut slot = cx
            .status
            .canary
            .as_mut()
            .and_then(|c| c.current_background_analysis_run_status.take());
        analysis::follow(cx, AnalysisKind::Background, None, bg, hash, &mut slot);
        if let Some(c) = cx.status.canary.as_mut() {
            c.current_background_analysis_run_status = slot;
        }
    }
    let p = plan_at(cx, spec, hash, stable, i);
    if matches!(flow, Flow::Wait) {
        emit(cx, spec, hash, stable, &p);
    }
    (flow, p)
}

fn plan_at(cx: &Ctx<'_>, spec: &CanarySpec, hash: &str, stable: &str, i: usize) -> Plan {
    plan(cx, spec, hash, stable, Target::Step(i))
}

/// Available pods and size of the ReplicaSet of `hash` once the plan's scales apply: messages
/// built from these change only when the world does (and with them the progress deadline).
fn after_moves(cx: &Ctx<'_>, p: &Plan, hash: &str) -> (i32, i32) {
    let (ready, now) = ready_counts(cx, hash);
    let size = p
        .moves
        .iter()
        .find(|(m, _)| m == hash)
        .map_or(now, |(_, n)| *n);
    (ready.min(size), size)
}

fn waiting_for_step(
    cx: &Ctx<'_>,
    spec: &CanarySpec,
    hash: &str,
    stable: &str,
    p: &Plan,
    step_no: usize,
    n: usize,
) -> Waiting {
    let (ready, _) = after_moves(cx, p, hash);
    let (stable_ready, stable_size) = after_moves(cx, p, stable);
    let weight = match spec.steps.get(step_no - 1) {
        Some(Step::SetCanaryScale(_)) => None,
        _ => Some(p.weight),
    };
    Waiting::Step {
        no: step_no,
        of: n,
        weight,
        rs: replica_set_name(cx.name(), hash),
        ready,
        canary_pods: p.canary_pods,
        stable_ready,
        stable_size,
    }
}

/// After the last step: the canary at full size, then it becomes stable (the plan of the
/// completion is returned when it happened).
fn finish(cx: &mut Ctx<'_>, spec: &CanarySpec, hash: &str, stable: &str) -> (Flow, Option<Plan>) {
    let n = spec.steps.len();
    let p = plan_at(cx, spec, hash, stable, n);
    let replicas = spec.common.replicas;
    let routed = spec.route.is_some();
    // Behind a router the stable side keeps its pods until the switch; without one the
    // canary has every pod and stable none.
    let ready = has_ready(cx, hash, replicas);
    let done = if routed { ready } else { p.at_target };
    if !done {
        let (ready, _) = after_moves(cx, &p, hash);
        let (stable_ready, stable_size) = after_moves(cx, &p, stable);
        let waiting = Waiting::Finishing {
            rs: replica_set_name(cx.name(), hash),
            ready,
            replicas,
            stable_ready,
            stable_size,
        };
        return (waiting_for_pods(cx, &spec.common, waiting, true), None);
    }
    (Flow::Wait, Some(complete(cx, spec, hash, stable)))
}

/// The canary becomes stable: stable Service switched, route back to the stable backend (which
/// now selects the new pods), the previous stable scaled down after `scaleDownDelaySeconds`.
fn complete(cx: &mut Ctx<'_>, spec: &CanarySpec, hash: &str, previous: &str) -> Plan {
    let p = plan(cx, spec, hash, previous, Target::Complete);
    // Inside a guard window the previous revision keeps its pods until the window ends
    // (behind a router; without one it has none left by now and is scaled up again if the
    // window sends traffic back).
    crate::alerts::open_guard(cx, hash, previous);
    release::complete(cx, hash);
    if let Some(c) = cx.status.canary.as_mut() {
        c.current_step_analysis_run_status = None;
        c.current_background_analysis_run_status = None;
    }
    emit(cx, spec, hash, hash, &p);
    for (h, n) in &p.late {
        replicasets::ensure(cx, &spec.common, h, *n, None);
    }
    let mut restored = None;
    if spec.route.is_some() && cx.status.guard.is_some() {
        // Inside a guard window the previous revision is kept at full size, ready to take the
        // traffic back at once (dynamicStableScale may have shrunk it during the release).
        let size = cx.observed.replica_set(previous).map(|rs| rs.replicas);
        if size.is_some_and(|n| n < spec.common.replicas) {
            replicasets::ensure(cx, &spec.common, previous, spec.common.replicas, None);
            restored = Some(spec.common.replicas);
        }
    }
    if spec.route.is_some() {
        // Without a router the previous stable is already down to 0 by now.
        let left = restored.unwrap_or_else(|| {
            cx.observed
                .replica_set(previous)
                .map_or(0, |rs| rs.replicas)
        });
        // The previous stable is still protected from this reconcile's clean-up (which acts on
        // and wakes for the deadlines it finds), so both are done here, as the next reconcile
        // would: without a delay it goes now, else we wake for its deadline.
        let no_wait =
            spec.scale_down_delay_seconds == 0 || spec.scale_down_delay_revision_limit == Some(0);
        if left > 0 && no_wait && cx.status.guard.is_none() {
            replicasets::ensure(cx, &spec.common, previous, 0, None);
        } else if left > 0 {
            replicasets::schedule_scale_down(cx, previous, spec.scale_down_delay_seconds);
            let name = replica_set_name(cx.name(), previous);
            if let Some(at) = cx.deadlines.get(&name).copied() {
                cx.wake_at(at);
            }
        }
    }
    cx.event(
        EventReason::RolloutCompleted,
        Msg::CanaryCompleted {
            hash: hash.to_string(),
            previous: previous.to_string(),
            delay: spec
                .route
                .is_some()
                .then(|| crate::alerts::kept_for(cx, spec.scale_down_delay_seconds)),
        },
    );
    healthy(cx, hash, spec.common.replicas);
    p
}
