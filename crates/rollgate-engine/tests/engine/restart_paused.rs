//! `spec.restartAt` while a release is paused. Argo Rollouts (docs: features/restart.md,
//! "Rollout Pod Restarts") restarts every ReplicaSet's old pods whatever the rollout is doing:
//! the stable ReplicaSet first, then the new one, one pod at a time within availability, and
//! sets `status.restartedAt` once no pod is older than `restartAt`. A paused release stays
//! paused (nothing is promoted, no traffic moves).
//!
//! Every `World::step` also checks the traffic invariant, consistency and idempotence.

use crate::support;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::SignedDuration;
use rollgate_api::RolloutPhase;
use rollgate_engine::{Action, ObservedPod};
use serde_json::json;
use support::{World, reasons};

/// Gives `hash` `n` ready pods created an hour before now.
fn old_pods(w: &mut World, hash: &str, n: usize) {
    let hour_ago = w
        .now
        .checked_sub(SignedDuration::from_hours(1))
        .expect("time");
    for i in 0..n {
        w.observed.pods.push(ObservedPod {
            name: format!("web-{hash}-old{i}"),
            hash: hash.to_string(),
            created: Some(hour_ago),
            ready: true,
            terminating: false,
            metadata: Default::default(),
        });
    }
}

/// The names of the pods deleted by `actions`.
fn deleted(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::DeletePod { name } => Some(name.clone()),
            _ => None,
        })
        .collect()
}

/// The ReplicaSet replaces each deleted pod with a fresh, ready one.
fn replace(w: &mut World, names: &[String], hash: &str) {
    for name in names {
        w.observed.pods.push(ObservedPod {
            name: format!("{name}-new"),
            hash: hash.to_string(),
            created: Some(w.now),
            ready: true,
            terminating: false,
            metadata: Default::default(),
        });
    }
}

#[test]
fn a_blue_green_release_waiting_for_promotion_restarts_stable_then_preview_one_pod_at_a_time() {
    let (mut w, v1) = World::deployed(json!({}), json!({"autoPromotionEnabled": false}));
    let v2 = w.set_image("app:2");
    w.step();
    w.make_ready(&v2);
    w.step();
    assert_eq!(w.phase(), Some(RolloutPhase::Paused));
    old_pods(&mut w, &v1, 3);
    old_pods(&mut w, &v2, 3);
    w.advance(1);
    w.rollout.spec.restart_at = Some(Time(w.now));

    eprintln!("v1 {v1} v2 {v2} first: {:?}", w.decide().actions);
    let mut order = Vec::new();
    for _ in 0..10 {
        let d = w.step();
        let gone = deleted(&d.actions);
        assert!(gone.len() <= 1, "one pod at a time: {gone:?}");
        assert!(
            d.actions
                .iter()
                .all(|a| matches!(a, Action::DeletePod { .. })),
            "a restart moves nothing else: {:?}",
            d.actions
        );
        assert_eq!(w.phase(), Some(RolloutPhase::Paused), "still paused");
        if let Some(name) = gone.first() {
            let hash = if name.contains(&v1) { &v1 } else { &v2 };
            order.push(hash.clone());
            replace(&mut w, &gone, &hash.clone());
        }
        if w.status().restarted_at.is_some() {
            assert_eq!(reasons(&d), ["RolloutRestarted"]);
            break;
        }
        w.advance(1);
    }
    assert_eq!(
        order,
        [&v1, &v1, &v1, &v2, &v2, &v2].map(String::clone),
        "stable first, then the new one"
    );
    assert_eq!(w.status().restarted_at, w.rollout.spec.restart_at);
    assert_eq!(w.active(), Some(v1));
    assert_eq!(w.preview(), Some(v2));
}

#[test]
fn a_canary_paused_at_a_step_restarts_within_max_unavailable() {
    let (mut w, v1) = World::canary_deployed(
        json!({}),
        json!({"maxUnavailable": 2, "maxSurge": 0, "steps": [{"setWeight": 20}, {"pause": {}}]}),
    );
    let v2 = w.set_image("app:2");
    w.run_until_settled();
    w.make_all_ready();
    w.run_until_settled();
    assert_eq!(w.phase(), Some(RolloutPhase::Paused));
    let stable_pods = usize::try_from(w.size(&v1)).expect("size");
    let canary_pods = usize::try_from(w.size(&v2)).expect("size");
    old_pods(&mut w, &v1, stable_pods);
    old_pods(&mut w, &v2, canary_pods);
    w.advance(1);
    w.rollout.spec.restart_at = Some(Time(w.now));
    let d = w.step();
    assert_eq!(deleted(&d.actions).len(), 2, "maxUnavailable 2 at once");
    assert!(deleted(&d.actions).iter().all(|n| n.contains(&v1)));
    replace(&mut w, &deleted(&d.actions), &v1);
    let mut total = 0;
    for _ in 0..20 {
        let gone = deleted(&w.decide().actions);
        let d = w.step();
        total += gone.len();
        for name in &gone {
            let hash = if name.contains(&v1) {
                v1.clone()
            } else {
                v2.clone()
            };
            replace(&mut w, std::slice::from_ref(name), &hash);
        }
        assert_eq!(w.phase(), Some(RolloutPhase::Paused));
        if w.status().restarted_at.is_some() {
            assert!(reasons(&d).contains(&"RolloutRestarted"));
            break;
        }
    }
    assert_eq!(total + 2, stable_pods + canary_pods, "every old pod once");
    assert_eq!(w.status().restarted_at, w.rollout.spec.restart_at);
}

/// Argo Rollouts computes the phase from the pause conditions first (rolloututil
/// `GetRolloutPhase`: a rollout with a pause condition is `Paused`, whatever its pods do), so
/// a blue/green release waiting for promotion stays Paused while `restartAt` replaces its
/// preview pods, each new pod not ready at first: it does not go back to waiting for the
/// preview (Progressing), found by the e2e test `argo_semantics`.
#[test]
fn a_blue_green_release_waiting_for_promotion_stays_paused_while_preview_pods_restart() {
    let (mut w, v1) = World::deployed(json!({}), json!({"autoPromotionEnabled": false}));
    let v2 = w.set_image("app:2");
    w.step();
    w.make_ready(&v2);
    w.step();
    assert_eq!(w.phase(), Some(RolloutPhase::Paused));
    old_pods(&mut w, &v1, 3);
    old_pods(&mut w, &v2, 3);
    w.advance(1);
    w.rollout.spec.restart_at = Some(Time(w.now));
    let mut restarted = 0;
    for _ in 0..30 {
        let d = w.step();
        assert_eq!(w.phase(), Some(RolloutPhase::Paused), "{}", w.message());
        if w.status().restarted_at.is_some() {
            break;
        }
        // A stable pod comes back ready at once (the World's invariant wants the active
        // Service's pods all ready); a preview pod comes back not ready yet, its ReplicaSet
        // one pod short for a while.
        for name in deleted(&d.actions) {
            if name.contains(&v1) {
                replace(&mut w, &[name], &v1);
                continue;
            }
            w.observed.pods.push(ObservedPod {
                name: format!("{name}-new"),
                hash: v2.clone(),
                created: Some(w.now),
                ready: false,
                terminating: false,
                metadata: Default::default(),
            });
            w.set_ready(&v2, 2);
            restarted += 1;
            w.advance(1);
            w.step();
            assert_eq!(
                w.phase(),
                Some(RolloutPhase::Paused),
                "a preview pod restarting: {}",
                w.message()
            );
            for p in w.observed.pods.iter_mut().filter(|p| !p.ready) {
                p.ready = true;
            }
            w.make_ready(&v2);
        }
        w.advance(1);
    }
    assert_eq!(w.status().restarted_at, w.rollout.spec.restart_at);
    assert_eq!(restarted, 3, "every preview pod restarted");
    assert_eq!(w.active(), Some(v1));
    assert_eq!(w.preview(), Some(v2));
}
