//! What the nodes do to pods: start them, make them ready after their image's delay, or
//! crash-loop them with back-off restarts. All timers are tokio timers.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::store::{Store, TypeKey};
use crate::{ImageBehavior, Inner, replicaset};

/// Name of the (only) simulated node.
pub const NODE: &str = "sim-node-1";

/// Longest back-off between restarts of a crash-looping container.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

fn pod_key() -> TypeKey {
    (String::new(), "pods".into())
}

/// Whether a pod's Ready condition is True.
pub fn is_ready(pod: &Value) -> bool {
    pod["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

/// The behaviour of a pod: crash-looping if any container's image crash-loops, otherwise
/// ready after its slowest image's delay.
fn behavior(inner: &Inner, pod: &Value) -> ImageBehavior {
    let mut slowest = Duration::ZERO;
    for c in pod["spec"]["containers"].as_array().into_iter().flatten() {
        match inner.image_behavior(c["image"].as_str().unwrap_or_default()) {
            ImageBehavior::CrashLoop => return ImageBehavior::CrashLoop,
            ImageBehavior::Ready { after } => slowest = slowest.max(after),
        }
    }
    ImageBehavior::Ready { after: slowest }
}

fn condition(kind: &str, status: bool, now: &str) -> Value {
    json!({"type": kind, "status": if status { "True" } else { "False" },
           "lastProbeTime": null, "lastTransitionTime": now})
}

fn container_statuses(pod: &Value, state: &Value, ready: bool, restarts: u64) -> Value {
    let list: Vec<Value> = pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            let image = c["image"].as_str().unwrap_or_default();
            // Known once the image is pulled and the container started, as a kubelet reports it.
            let image_id = if ready {
                image_id(image)
            } else {
                String::new()
            };
            json!({"name": c["name"], "image": c["image"], "imageID": image_id,
                   "ready": ready, "started": ready, "restartCount": restarts, "state": state})
        })
        .collect();
    Value::Array(list)
}

/// The `imageID` a kubelet reports for `image`: the repository and the digest the registry
/// resolved it to, with the runtime's prefix.
fn image_id(image: &str) -> String {
    let pinned = crate::pinned_image(image);
    format!("docker-pullable://{pinned}")
}

fn owner_rs(pod: &Value) -> Option<String> {
    pod["metadata"]["ownerReferences"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|o| o["kind"] == "ReplicaSet" && o["controller"].as_bool() == Some(true))
        .and_then(|o| o["name"].as_str())
        .map(String::from)
}

/// Schedules a newly created pod on the node and starts its containers.
pub(crate) fn start_pod(inner: &Arc<Inner>, st: &mut Store, ns: &str, name: &str) {
    let Some((uid, how)) = schedule(inner, st, ns, name) else {
        return;
    };
    let inner2 = inner.clone();
    let (ns, name) = (ns.to_string(), name.to_string());
    match how {
        ImageBehavior::Ready { after } => {
            tokio::spawn(async move {
                tokio::time::sleep(after).await;
                let mut st = inner2.lock();
                if let Some(rs) = mark_ready(&inner2, &mut st, &ns, &name, &uid) {
                    replicaset::reconcile(&inner2, &mut st, &ns, &rs);
                }
            });
        }
        ImageBehavior::CrashLoop => crash_loop(inner, ns, name, uid),
    }
}

/// Starts pods that ReplicaSet `rs` created in one sync: the ones that get ready together
/// are marked ready together, followed by one sync of the ReplicaSet (not one per pod).
pub(crate) fn start_pods(inner: &Arc<Inner>, st: &mut Store, ns: &str, rs: &str, names: &[String]) {
    let mut ready: Vec<(Duration, Vec<(String, String)>)> = Vec::new();
    for name in names {
        let Some((uid, how)) = schedule(inner, st, ns, name) else {
            continue;
        };
        match how {
            ImageBehavior::Ready { after } => match ready.iter_mut().find(|(d, _)| *d == after) {
                Some((_, group)) => group.push((name.clone(), uid)),
                None => ready.push((after, vec![(name.clone(), uid)])),
            },
            ImageBehavior::CrashLoop => crash_loop(inner, ns.to_string(), name.clone(), uid),
        }
    }
    for (after, group) in ready {
        let inner = inner.clone();
        let (ns, rs) = (ns.to_string(), rs.to_string());
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            let mut st = inner.lock();
            for (name, uid) in &group {
                mark_ready(&inner, &mut st, &ns, name, uid);
            }
            // A ReplicaSet still being filled in bursts syncs within a burst interval anyway.
            if !replicaset::filling(&inner, &ns, &rs) {
                replicaset::reconcile(&inner, &mut st, &ns, &rs);
            }
        });
    }
}

/// Restarts a crash-looping pod's containers with back-off until the pod is gone.
fn crash_loop(inner: &Arc<Inner>, ns: String, name: String, uid: String) {
    let inner = inner.clone();
    tokio::spawn(async move {
        let mut backoff = Duration::from_secs(10);
        let mut restarts = 0u64;
        loop {
            tokio::time::sleep(backoff).await;
            restarts += 1;
            if !restart(&inner, &ns, &name, &uid, restarts) {
                return;
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    });
}

/// Puts a new pod on the node and gives it its starting status. Returns its uid and how it
/// behaves (`None` when it is gone).
fn schedule(
    inner: &Arc<Inner>,
    st: &mut Store,
    ns: &str,
    name: &str,
) -> Option<(String, ImageBehavior)> {
    let mut pod = st.get(&pod_key(), ns, name).cloned()?;
    let uid = pod["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let now = inner.clock.stamp();
    let how = behavior(inner, &pod);
    let ip = inner.next_pod_ip();
    if pod["spec"]["nodeName"].is_null() {
        pod["spec"]["nodeName"] = json!(NODE);
    }
    let crash = matches!(how, ImageBehavior::CrashLoop);
    let state = if crash {
        json!({"waiting": {"reason": "CrashLoopBackOff",
                           "message": "back-off 10s restarting failed container"}})
    } else {
        json!({"waiting": {"reason": "ContainerCreating"}})
    };
    pod["status"] = json!({
        "phase": if crash { "Running" } else { "Pending" },
        "conditions": [
            condition("PodScheduled", true, &now),
            condition("Initialized", true, &now),
            condition("ContainersReady", false, &now),
            condition("Ready", false, &now),
        ],
        "containerStatuses": container_statuses(&pod, &state, false, 0),
        "hostIP": "10.0.0.1", "podIP": ip, "podIPs": [{"ip": ip}],
        "qosClass": "BestEffort", "startTime": now,
    });
    st.commit(&pod_key(), ns, name, Some(pod));
    Some((uid, how))
}

/// Whether the stored pod `ns/name` is still the one with `uid` (and not being deleted).
fn current(st: &Store, ns: &str, name: &str, uid: &str) -> Option<Value> {
    st.get(&pod_key(), ns, name)
        .filter(|p| p["metadata"]["uid"].as_str() == Some(uid))
        .filter(|p| p["metadata"].get("deletionTimestamp").is_none())
        .cloned()
}

/// Marks pod `ns/name` (if it is still the one with `uid`) ready. Returns the ReplicaSet
/// that controls it, which the caller syncs.
fn mark_ready(
    inner: &Arc<Inner>,
    st: &mut Store,
    ns: &str,
    name: &str,
    uid: &str,
) -> Option<String> {
    let mut pod = current(st, ns, name, uid)?;
    let now = inner.clock.stamp();
    let started = json!({"running": {"startedAt": now}});
    if !pod["status"].is_object() {
        pod["status"] = json!({});
    }
    pod["status"]["phase"] = json!("Running");
    pod["status"]["conditions"] = json!([
        condition(
            "PodScheduled",
            true,
            pod["status"]["startTime"].as_str().unwrap_or(&now)
        ),
        condition(
            "Initialized",
            true,
            pod["status"]["startTime"].as_str().unwrap_or(&now)
        ),
        condition("ContainersReady", true, &now),
        condition("Ready", true, &now),
    ]);
    pod["status"]["containerStatuses"] = container_statuses(&pod, &started, true, 0);
    let rs = owner_rs(&pod);
    st.commit(&pod_key(), ns, name, Some(pod));
    rs
}

/// Records another failed start. Returns false once the pod is gone.
fn restart(inner: &Arc<Inner>, ns: &str, name: &str, uid: &str, restarts: u64) -> bool {
    let mut st = inner.lock();
    let Some(mut pod) = current(&st, ns, name, uid) else {
        return false;
    };
    let now = inner.clock.stamp();
    let state = json!({"waiting": {"reason": "CrashLoopBackOff",
        "message": format!("back-off restarting failed container ({restarts} restarts)")}});
    let mut statuses = container_statuses(&pod, &state, false, restarts);
    if !pod["status"].is_object() {
        pod["status"] = json!({});
    }
    if let Some(list) = statuses.as_array_mut() {
        for c in list {
            c["lastState"] = json!({"terminated": {"exitCode": 1, "reason": "Error",
                                                    "startedAt": now, "finishedAt": now}});
        }
    }
    pod["status"]["containerStatuses"] = statuses;
    st.commit(&pod_key(), ns, name, Some(pod));
    true
}
