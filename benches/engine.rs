//! Engine decision time per rollout, for the states a blue/green release goes through.

use std::hint::black_box;
use std::time::Instant;

use k8s_openapi::jiff::Timestamp;
use rollgate_api::Rollout;
use rollgate_engine::{Input, Observed, ObservedReplicaSet, ObservedService, reconcile};
use serde_json::json;

fn rollout(image: &str, status: serde_json::Value) -> Rollout {
    serde_json::from_value(json!({
        "apiVersion": "rollgate.dev/v1alpha1", "kind": "Rollout",
        "metadata": {"name": "web", "namespace": "default", "uid": "u1", "generation": 2},
        "spec": {
            "replicas": 10,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                         "spec": {"containers": [{"name": "web", "image": image}]}},
            "strategy": {"blueGreen": {"activeService": "web-active", "previewService": "web-preview",
                                       "autoPromotionEnabled": false}}
        },
        "status": status
    }))
    .unwrap_or_default()
}

fn rs(hash: &str, revision: i64, replicas: i32, ready: i32) -> ObservedReplicaSet {
    ObservedReplicaSet {
        name: format!("web-{hash}"),
        hash: hash.into(),
        revision,
        replicas,
        pods: replicas,
        ready,
        available: ready,
        scale_down_deadline: None,
        template_metadata: Default::default(),
        ephemeral: Default::default(),
        failure: None,
        template: None,
    }
}

fn main() {
    let now: Timestamp = "2026-11-22T12:00:00Z"
        .parse()
        .unwrap_or(Timestamp::UNIX_EPOCH);
    // Learn the hashes from the engine itself.
    let v1 = rollgate_engine::hash::pod_template_hash(
        rollout("web:1", json!({}))
            .spec
            .template
            .as_ref()
            .unwrap_or(&Default::default()),
    );
    let v2 = rollgate_engine::hash::pod_template_hash(
        rollout("web:2", json!({}))
            .spec
            .template
            .as_ref()
            .unwrap_or(&Default::default()),
    );
    let services = |active: &str, preview: &str| {
        [("web-active", active), ("web-preview", preview)]
            .into_iter()
            .map(|(n, h)| {
                (
                    n.to_string(),
                    ObservedService {
                        name: n.into(),
                        selected_hash: Some(h.into()),
                    },
                )
            })
            .collect()
    };
    let cases: Vec<(&str, Rollout, Observed)> = vec![
        (
            "steady (healthy, nothing to do)",
            rollout(
                "web:1",
                json!({"stableRS": v1, "currentPodHash": v1, "phase": "Healthy"}),
            ),
            Observed {
                replica_sets: vec![rs(&v1, 1, 10, 10)],
                services: services(&v1, &v1),
                ..Default::default()
            },
        ),
        (
            "new revision detected (creates preview)",
            rollout(
                "web:2",
                json!({"stableRS": v1, "currentPodHash": v1, "phase": "Healthy"}),
            ),
            Observed {
                replica_sets: vec![rs(&v1, 1, 10, 10)],
                services: services(&v1, &v1),
                ..Default::default()
            },
        ),
        (
            "preview ready, paused",
            rollout(
                "web:2",
                json!({"stableRS": v1, "currentPodHash": v2, "phase": "Progressing"}),
            ),
            Observed {
                replica_sets: vec![rs(&v1, 1, 10, 10), rs(&v2, 2, 10, 10)],
                services: services(&v1, &v2),
                ..Default::default()
            },
        ),
    ];
    println!("engine decision time (blue/green, 10 replicas)");
    for (name, rollout, observed) in &cases {
        let iterations = 20_000u32;
        let start = Instant::now();
        for _ in 0..iterations {
            black_box(reconcile(Input {
                rollout: black_box(rollout),
                observed: black_box(observed),
                now,
            }));
        }
        let per = start.elapsed() / iterations;
        println!("  {name:<42} {:>8.2} µs/decision", per.as_secs_f64() * 1e6);
    }
}
