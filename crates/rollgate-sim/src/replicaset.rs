//! The cluster's own ReplicaSet controller: keeps each ReplicaSet's pods at `spec.replicas`
//! and its status current. Event-driven: it runs when a ReplicaSet or one of its pods
//! changes, and at the moment a ready pod becomes available (`minReadySeconds`).

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

use crate::gc::{self, Propagation};
use crate::kubelet::{self, is_ready};
use crate::store::{Store, TypeKey, uid_seq};
use crate::{Inner, kubelet::NODE};

/// Most pods created for one ReplicaSet in one pass.
const BURST: usize = 500;

/// Time between bursts of pod creations.
const BURST_INTERVAL: Duration = Duration::from_secs(1);

fn rs_key() -> TypeKey {
    ("apps".into(), "replicasets".into())
}

fn pod_key() -> TypeKey {
    (String::new(), "pods".into())
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

fn controlled_by(pod: &Value, uid: &str) -> bool {
    pod["metadata"]["ownerReferences"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|o| o["uid"].as_str() == Some(uid) && o["controller"].as_bool() == Some(true))
}

/// What scale-down needs to know of a pod.
struct PodInfo {
    name: String,
    ready: bool,
    seq: u64,
}

/// The active (not deleting) pods a ReplicaSet controls.
fn active_pods<'a>(st: &'a Store, uid: &str) -> Vec<&'a Value> {
    st.dependents(uid)
        .into_iter()
        .filter(|(ty, _, _)| *ty == pod_key())
        .filter_map(|(ty, pns, pname)| st.get(&ty, &pns, &pname))
        .filter(|p| controlled_by(p, uid))
        .filter(|p| p["metadata"].get("deletionTimestamp").is_none())
        .collect()
}

/// Brings the pods of ReplicaSet `ns/name` to its desired count and refreshes its status.
pub(crate) fn reconcile(inner: &Arc<Inner>, st: &mut Store, ns: &str, name: &str) {
    let Some(rs) = st.get(&rs_key(), ns, name).cloned() else {
        return;
    };
    let uid = rs["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let deleting = rs["metadata"].get("deletionTimestamp").is_some();
    let desired = usize::try_from(rs["spec"]["replicas"].as_i64().unwrap_or(1)).unwrap_or(0);
    let mut pods: Vec<PodInfo> = active_pods(st, &uid)
        .into_iter()
        .map(|p| PodInfo {
            name: p["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            ready: is_ready(p),
            seq: uid_seq(p["metadata"]["uid"].as_str().unwrap_or_default()),
        })
        .collect();
    if !deleting && pods.len() < desired && may_create(inner, ns, name, desired - pods.len()) {
        let template = &rs["spec"]["template"];
        for _ in 0..(desired - pods.len()).min(BURST) {
            let prefix = format!("{name}-");
            let pod_name = format!("{prefix}{}", st.name_suffix(&pod_key(), ns, &prefix));
            let pod_uid = st.next_uid();
            let mut metadata = json!({
                "name": pod_name, "generateName": prefix, "namespace": ns, "uid": pod_uid,
                "creationTimestamp": inner.clock.stamp(), "generation": 1,
                "ownerReferences": [{"apiVersion": rs["apiVersion"].as_str().unwrap_or("apps/v1"),
                                     "kind": "ReplicaSet", "name": name, "uid": uid,
                                     "controller": true, "blockOwnerDeletion": true}],
            });
            for f in ["labels", "annotations"] {
                if template["metadata"][f].is_object() {
                    metadata[f] = template["metadata"][f].clone();
                }
            }
            let mut spec = template["spec"].clone();
            if !spec.is_object() {
                spec = json!({});
            }
            spec["nodeName"] = json!(NODE);
            let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": metadata,
                             "spec": spec, "status": {"phase": "Pending"}});
            st.commit(&pod_key(), ns, &pod_name, Some(pod));
            kubelet::start_pod(inner, st, ns, &pod_name);
        }
    } else if !deleting && pods.len() > desired {
        // Not-ready pods go first, then the newest.
        pods.sort_by(|a, b| a.ready.cmp(&b.ready).then_with(|| b.seq.cmp(&a.seq)));
        let excess = pods.len() - desired;
        let now = inner.clock.stamp();
        for pod in pods.drain(..excess) {
            gc::delete(
                st,
                &(pod_key(), ns.to_string(), pod.name),
                Propagation::Background,
                &now,
            );
        }
    }
    update_status(inner, st, &rs, &uid);
}

/// Whether pods may be created now. Like the real controller, a ReplicaSet missing more than a
/// burst of pods gets one burst per second (the rest follow at the next re-check); smaller
/// gaps are filled at once.
fn may_create(inner: &Arc<Inner>, ns: &str, name: &str, missing: usize) -> bool {
    let key = (ns.to_string(), name.to_string());
    let now = tokio::time::Instant::now();
    let mut bursts = inner.bursts.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(last) = bursts.get(&key)
        && now.duration_since(*last) < BURST_INTERVAL
    {
        drop(bursts);
        schedule_recheck(inner, ns, name, BURST_INTERVAL);
        return false;
    }
    if missing > BURST {
        bursts.insert(key, now);
        drop(bursts);
        schedule_recheck(inner, ns, name, BURST_INTERVAL);
    } else {
        bursts.remove(&key);
    }
    true
}

fn update_status(inner: &Arc<Inner>, st: &mut Store, rs: &Value, uid: &str) {
    let ns = rs["metadata"]["namespace"].as_str().unwrap_or_default();
    let name = rs["metadata"]["name"].as_str().unwrap_or_default();
    let min_ready = rs["spec"]["minReadySeconds"].as_i64().unwrap_or(0);
    let now = inner.clock.now();
    let labels = &rs["spec"]["template"]["metadata"]["labels"];
    let pods = active_pods(st, uid);
    let fully_labeled = pods
        .iter()
        .filter(|p| {
            labels.as_object().is_none_or(|want| {
                want.iter()
                    .all(|(k, v)| p["metadata"]["labels"].get(k) == Some(v))
            })
        })
        .count();
    let mut ready = 0;
    let mut available = 0;
    let mut next_check: Option<Duration> = None;
    for p in pods.iter().filter(|p| is_ready(p)) {
        ready += 1;
        let Some(since) = ready_since(p) else {
            available += 1;
            continue;
        };
        let elapsed_ms = now.duration_since(since).as_millis();
        let need_ms = i128::from(min_ready) * 1000;
        if elapsed_ms >= need_ms {
            available += 1;
        } else {
            let wait =
                Duration::from_millis(u64::try_from(need_ms - elapsed_ms).unwrap_or(u64::MAX));
            next_check = Some(next_check.map_or(wait, |n| n.min(wait)));
        }
    }
    let total = pods.len();
    let Some(mut current) = st.get(&rs_key(), ns, name).cloned() else {
        return;
    };
    let mut status = json!({"replicas": total});
    let counts = [
        ("fullyLabeledReplicas", fully_labeled),
        ("readyReplicas", ready),
        ("availableReplicas", available),
    ];
    for (field, n) in counts {
        if n > 0 {
            status[field] = json!(n);
        }
    }
    status["observedGeneration"] = rs["metadata"]["generation"].clone();
    // Keep conditions others may have written.
    if let Some(c) = current["status"].get("conditions") {
        status["conditions"] = c.clone();
    }
    if let Some(wait) = next_check {
        schedule_recheck(inner, ns, name, wait);
    }
    if current["status"] != status {
        current["status"] = status;
        st.commit(&rs_key(), ns, name, Some(current));
    }
}

/// Reconciles `ns/name` again after `wait` (one timer per ReplicaSet and due time).
fn schedule_recheck(inner: &Arc<Inner>, ns: &str, name: &str, wait: Duration) {
    let Some(due) = tokio::time::Instant::now().checked_add(wait) else {
        return;
    };
    let key = (ns.to_string(), name.to_string());
    {
        let mut pending = inner.rechecks.lock().unwrap_or_else(|p| p.into_inner());
        if pending.get(&key).is_some_and(|d| *d <= due) {
            return;
        }
        pending.insert(key.clone(), due);
    }
    let inner = inner.clone();
    tokio::spawn(async move {
        tokio::time::sleep_until(due).await;
        {
            let mut pending = inner.rechecks.lock().unwrap_or_else(|p| p.into_inner());
            if pending.get(&key) == Some(&due) {
                pending.remove(&key);
            }
        }
        let mut st = inner.lock();
        reconcile(&inner, &mut st, &key.0, &key.1);
    });
}
