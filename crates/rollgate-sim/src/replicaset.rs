//! The cluster's own ReplicaSet controller: pods, their readiness, and ReplicaSet status.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

use crate::store::{Store, TypeKey};
use crate::{ImageBehavior, Inner};

fn rs_key() -> TypeKey {
    ("apps".into(), "replicasets".into())
}

fn pod_key() -> TypeKey {
    (String::new(), "pods".into())
}

fn is_ready(pod: &Value) -> bool {
    pod["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

fn ready_since(pod: &Value) -> Option<Timestamp> {
    pod["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "Ready" && c["status"] == "True")
        .and_then(|c| c["lastTransitionTime"].as_str())
        .and_then(|t| t.parse().ok())
}

fn behavior(inner: &Inner, template_spec: &Value) -> ImageBehavior {
    let mut worst = ImageBehavior::Ready {
        after: Duration::ZERO,
    };
    for c in template_spec["containers"].as_array().into_iter().flatten() {
        match inner.image_behavior(c["image"].as_str().unwrap_or_default()) {
            ImageBehavior::CrashLoop => return ImageBehavior::CrashLoop,
            ImageBehavior::Ready { after } => {
                if let ImageBehavior::Ready { after: w } = worst {
                    worst = ImageBehavior::Ready {
                        after: w.max(after),
                    };
                }
            }
        }
    }
    worst
}

/// Brings the pods of ReplicaSet `ns/name` to its desired count and refreshes its status.
pub(crate) fn reconcile(inner: &Arc<Inner>, st: &mut Store, ns: &str, name: &str) {
    let Some(rs) = st.get(&rs_key(), ns, name).cloned() else {
        return;
    };
    if rs["metadata"].get("deletionTimestamp").is_some() {
        return;
    }
    let uid = rs["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let desired = usize::try_from(rs["spec"]["replicas"].as_i64().unwrap_or(1)).unwrap_or(0);
    let mut pods: Vec<Value> = st
        .dependents(&uid)
        .into_iter()
        .filter(|(ty, _, _)| *ty == pod_key())
        .filter_map(|(ty, pns, pname)| st.get(&ty, &pns, &pname).cloned())
        .collect();
    let now = inner.clock.stamp();
    if pods.len() < desired {
        let template = &rs["spec"]["template"];
        let how = behavior(inner, &template["spec"]);
        for _ in pods.len()..desired {
            let pod_uid = st.next_uid();
            let pod_name = format!("{name}-{}", &pod_uid[pod_uid.len() - 5..]);
            let containers: Vec<Value> = template["spec"]["containers"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| {
                    let waiting = matches!(how, ImageBehavior::CrashLoop);
                    json!({
                        "name": c["name"], "image": c["image"], "ready": false, "restartCount": 0,
                        "state": if waiting { json!({"waiting": {"reason": "CrashLoopBackOff"}}) }
                                 else { json!({"waiting": {"reason": "ContainerCreating"}}) }
                    })
                })
                .collect();
            let pod = json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {
                    "name": pod_name, "namespace": ns, "uid": pod_uid, "creationTimestamp": now,
                    "generation": 1,
                    "labels": template["metadata"]["labels"].clone(),
                    "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": name,
                                         "uid": uid, "controller": true, "blockOwnerDeletion": true}],
                },
                "spec": template["spec"].clone(),
                "status": {
                    "phase": if matches!(how, ImageBehavior::CrashLoop) { "Running" } else { "Pending" },
                    "conditions": [{"type": "Ready", "status": "False", "lastTransitionTime": now}],
                    "containerStatuses": containers,
                    "startTime": now,
                },
            });
            if let Some(p) = st.commit(&pod_key(), ns, &pod_name, Some(pod)) {
                pods.push(p);
            }
            if let ImageBehavior::Ready { after } = how {
                let inner2 = inner.clone();
                let (ns, pod_name, rs_name) = (ns.to_string(), pod_name.clone(), name.to_string());
                tokio::spawn(async move {
                    tokio::time::sleep(after).await;
                    mark_ready(&inner2, &ns, &pod_name, &rs_name);
                });
            }
        }
    } else if pods.len() > desired {
        // Not-ready pods go first, then the newest.
        pods.sort_by(|a, b| {
            is_ready(a).cmp(&is_ready(b)).then_with(|| {
                b["metadata"]["uid"]
                    .as_str()
                    .cmp(&a["metadata"]["uid"].as_str())
            })
        });
        let excess = pods.len() - desired;
        for pod in pods.drain(..excess) {
            let pname = pod["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            st.commit(&pod_key(), ns, &pname, None);
        }
    }
    update_status(inner, st, ns, name, &pods);
}

fn mark_ready(inner: &Arc<Inner>, ns: &str, pod_name: &str, rs_name: &str) {
    let mut st = inner.lock();
    let Some(mut pod) = st.get(&pod_key(), ns, pod_name).cloned() else {
        return;
    };
    let now = inner.clock.stamp();
    pod["status"]["phase"] = json!("Running");
    pod["status"]["conditions"] =
        json!([{"type": "Ready", "status": "True", "lastTransitionTime": now}]);
    if let Some(cs) = pod["status"]["containerStatuses"].as_array_mut() {
        for c in cs {
            c["ready"] = json!(true);
            c["state"] = json!({"running": {"startedAt": now}});
        }
    }
    st.commit(&pod_key(), ns, pod_name, Some(pod));
    reconcile(inner, &mut st, ns, rs_name);
}

fn update_status(inner: &Arc<Inner>, st: &mut Store, ns: &str, name: &str, pods: &[Value]) {
    let Some(mut rs) = st.get(&rs_key(), ns, name).cloned() else {
        return;
    };
    let min_ready = rs["spec"]["minReadySeconds"].as_i64().unwrap_or(0);
    let now = inner.clock.now();
    let mut ready = 0;
    let mut available = 0;
    let mut next_check: Option<i64> = None;
    for p in pods.iter().filter(|p| is_ready(p)) {
        ready += 1;
        let since = ready_since(p).map_or(min_ready, |t| now.duration_since(t).as_secs());
        if since >= min_ready {
            available += 1;
        } else {
            let wait = min_ready - since;
            next_check = Some(next_check.map_or(wait, |n: i64| n.min(wait)));
        }
    }
    let status = json!({
        "replicas": pods.len(),
        "fullyLabeledReplicas": pods.len(),
        "readyReplicas": ready,
        "availableReplicas": available,
        "observedGeneration": rs["metadata"]["generation"],
    });
    if let Some(wait) = next_check {
        let inner2 = inner.clone();
        let (ns2, name2) = (ns.to_string(), name.to_string());
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(u64::try_from(wait).unwrap_or(0) + 1)).await;
            let mut st = inner2.lock();
            reconcile(&inner2, &mut st, &ns2, &name2);
        });
    }
    if rs["status"] != status {
        rs["status"] = status;
        st.commit(&rs_key(), ns, name, Some(rs));
    }
}
