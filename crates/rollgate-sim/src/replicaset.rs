//! The cluster's own ReplicaSet controller: keeps each ReplicaSet's pods at `spec.replicas`
//! and its status current. Event-driven: it runs when a ReplicaSet changes, when one of its
//! pods changes (through a queue, so that many pod changes at one moment make one sync, as
//! the real controller's work queue does), and at the moment a ready pod becomes available
//! (`minReadySeconds`).
//!
//! One sync creates at most `BURST` (500) pods (the real controller's `burstReplicas`; its
//! slow-start batches of 1, 2, 4, ... add up to that when no creation fails, and none fails
//! here), and a ReplicaSet missing more gets one burst per `BURST_INTERVAL` (1 s), so a huge
//! `replicas` never keeps the server from answering.

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

/// What a sync needs to know of a pod.
struct PodInfo {
    name: String,
    ready: bool,
    seq: u64,
    /// Carries every label of the template.
    labeled: bool,
    /// When it became ready (read only when `minReadySeconds` asks for it).
    ready_since: Option<Timestamp>,
}

/// The active (not deleting) pods a ReplicaSet controls, in one pass.
fn active_pods(st: &Store, uid: &str, labels: &Value, min_ready: i64) -> Vec<PodInfo> {
    let pods = pod_key();
    st.dependents(uid)
        .into_iter()
        .filter(|(ty, _, _)| *ty == pods)
        .filter_map(|(ty, pns, pname)| st.get(&ty, &pns, &pname))
        .filter(|p| controlled_by(p, uid))
        .filter(|p| p["metadata"].get("deletionTimestamp").is_none())
        .map(|p| {
            let ready = is_ready(p);
            PodInfo {
                name: p["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                ready,
                seq: uid_seq(p["metadata"]["uid"].as_str().unwrap_or_default()),
                labeled: labels.as_object().is_none_or(|want| {
                    want.iter()
                        .all(|(k, v)| p["metadata"]["labels"].get(k) == Some(v))
                }),
                ready_since: if ready && min_ready > 0 {
                    ready_since(p)
                } else {
                    None
                },
            }
        })
        .collect()
}

/// Queues a sync of ReplicaSet `ns/name` behind the work already due now: every pod change
/// until it runs is handled by that one sync.
pub(crate) fn enqueue(inner: &Arc<Inner>, ns: &str, name: &str) {
    let key = (ns.to_string(), name.to_string());
    let fresh = inner
        .queued
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(key.clone());
    if !fresh {
        return;
    }
    let inner = inner.clone();
    tokio::spawn(async move {
        tokio::task::yield_now().await;
        let mut st = inner.lock();
        inner
            .queued
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&key);
        reconcile(&inner, &mut st, &key.0, &key.1);
    });
}

/// Whether ReplicaSet `ns/name` is being filled in bursts: a sync is due within a burst
/// interval anyway, and its pods' readiness waits for it.
pub(crate) fn filling(inner: &Inner, ns: &str, name: &str) -> bool {
    inner
        .bursts
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .contains_key(&(ns.to_string(), name.to_string()))
}

/// What a sync found about creating pods, for the `ReplicaFailure` condition.
enum Creation {
    /// Nothing tried: the condition stays as it is.
    Untried,
    /// Every pod wanted was created, or none was missing: no failure.
    Succeeded,
    /// The cluster refused pods (its pod capacity or the namespace's pod quota is used up).
    Refused(String),
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
    let template = &rs["spec"]["template"];
    let min_ready = rs["spec"]["minReadySeconds"].as_i64().unwrap_or(0);
    let mut pods = active_pods(st, &uid, &template["metadata"]["labels"], min_ready);
    let mut creation = Creation::Untried;
    if deleting {
    } else if pods.len() < desired {
        if may_create(inner, ns, name, desired - pods.len()) {
            let wanted = (desired - pods.len()).min(BURST);
            let room = st.pod_room(ns);
            let mut started = Vec::new();
            for _ in 0..wanted.min(room) {
                let (pod_name, seq) = create_pod(inner, st, &rs, ns, name, &uid);
                pods.push(PodInfo {
                    name: pod_name.clone(),
                    ready: false,
                    seq,
                    labeled: true,
                    ready_since: None,
                });
                started.push(pod_name);
            }
            kubelet::start_pods(inner, st, ns, name, &started);
            creation = match st.pod_refusal(ns, &format!("{name}-")) {
                // The pod capacity or the namespace's quota: retried a burst interval later.
                Some(why) if room < wanted => {
                    keep_filling(inner, ns, name);
                    Creation::Refused(why)
                }
                _ => Creation::Succeeded,
            };
        }
    } else {
        creation = Creation::Succeeded;
        inner
            .bursts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&(ns.to_string(), name.to_string()));
        if pods.len() > desired {
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
    }
    update_status(inner, st, &rs, &pods, &creation);
}

/// Creates one pod of ReplicaSet `rs` from its template. Returns its name and uid sequence.
fn create_pod(
    inner: &Arc<Inner>,
    st: &mut Store,
    rs: &Value,
    ns: &str,
    name: &str,
    uid: &str,
) -> (String, u64) {
    let template = &rs["spec"]["template"];
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
    (pod_name, uid_seq(&pod_uid))
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

/// Records a burst now and re-checks a burst interval later (creation goes on in bursts).
fn keep_filling(inner: &Arc<Inner>, ns: &str, name: &str) {
    inner
        .bursts
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(
            (ns.to_string(), name.to_string()),
            tokio::time::Instant::now(),
        );
    schedule_recheck(inner, ns, name, BURST_INTERVAL);
}

fn update_status(
    inner: &Arc<Inner>,
    st: &mut Store,
    rs: &Value,
    pods: &[PodInfo],
    creation: &Creation,
) {
    let ns = rs["metadata"]["namespace"].as_str().unwrap_or_default();
    let name = rs["metadata"]["name"].as_str().unwrap_or_default();
    let min_ready = rs["spec"]["minReadySeconds"].as_i64().unwrap_or(0);
    let now = inner.clock.now();
    let fully_labeled = pods.iter().filter(|p| p.labeled).count();
    let mut ready = 0;
    let mut available = 0;
    let mut next_check: Option<Duration> = None;
    for p in pods.iter().filter(|p| p.ready) {
        ready += 1;
        let Some(since) = p.ready_since.filter(|_| min_ready > 0) else {
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
    // Keep conditions others may have written; ours is ReplicaFailure.
    let mut conditions = current["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    match creation {
        Creation::Untried => {}
        Creation::Succeeded => conditions.retain(|c| c["type"] != "ReplicaFailure"),
        Creation::Refused(message) => {
            // As the real controller: set when there is none, kept as it is while creations
            // keep failing (its message names the first refusal), removed once they succeed.
            if !conditions.iter().any(|c| c["type"] == "ReplicaFailure") {
                conditions.push(json!({"type": "ReplicaFailure", "status": "True",
                    "reason": "FailedCreate", "message": message,
                    "lastTransitionTime": inner.clock.stamp()}));
            }
        }
    }
    if !conditions.is_empty() {
        status["conditions"] = Value::Array(conditions);
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
