//! `rollgate get rollout NAME`: a header (phase, step, weights, images, replicas) and a tree
//! of revisions -> ReplicaSets -> pods, and the AnalysisRuns of each revision with their
//! last measurements. [`render`] is pure; [`fetch`] reads what it needs.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::api::ListParams;
use kube::{Api, Client, ResourceExt};
use rollgate_api::labels::{
    EXPERIMENT_TEMPLATE, POD_TEMPLATE_HASH, REVISION, ROLLOUT_NAME, SCALE_DOWN_DEADLINE,
};
use rollgate_api::{AnalysisPhase, AnalysisRun, Rollout, RolloutPhase};

use crate::error::CtlError;
use crate::experiment::{self, is_experiment_replica_set};

/// A rollout and what it owns.
#[derive(Debug, Clone)]
pub struct Objects {
    /// The Rollout.
    pub rollout: Rollout,
    /// Its ReplicaSets.
    pub replica_sets: Vec<ReplicaSet>,
    /// The pods of those ReplicaSets.
    pub pods: Vec<Pod>,
    /// Its AnalysisRuns.
    pub runs: Vec<AnalysisRun>,
}

/// Reads the rollout `namespace/name`, its ReplicaSets, their pods and its AnalysisRuns.
pub async fn fetch(client: &Client, namespace: &str, name: &str) -> Result<Objects, CtlError> {
    let kube_err = |what: String| move |source| CtlError::Kube { what, source };
    let rollout = crate::status::read_rollout(client, namespace, name).await?;
    let owned = ListParams::default().labels(&format!("{ROLLOUT_NAME}={name}"));
    let replica_sets = Api::<ReplicaSet>::namespaced(client.clone(), namespace)
        .list(&owned)
        .await
        .map_err(kube_err(format!(
            "listing ReplicaSets of {namespace}/{name}"
        )))?
        .items;
    let runs = Api::<AnalysisRun>::namespaced(client.clone(), namespace)
        .list(&owned)
        .await
        .map_err(kube_err(format!(
            "listing AnalysisRuns of {namespace}/{name}"
        )))?
        .items;
    let hashes: Vec<String> = replica_sets.iter().filter_map(hash_of).collect();
    let mut pods = Vec::new();
    if !hashes.is_empty() {
        let selector = format!("{POD_TEMPLATE_HASH} in ({})", hashes.join(","));
        pods = Api::<Pod>::namespaced(client.clone(), namespace)
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(kube_err(format!("listing pods of {namespace}/{name}")))?
            .items;
    }
    Ok(Objects {
        rollout,
        replica_sets,
        pods,
        runs,
    })
}

fn hash_of(rs: &ReplicaSet) -> Option<String> {
    rs.labels().get(POD_TEMPLATE_HASH).cloned()
}

fn revision_of(rs: &ReplicaSet) -> i64 {
    rs.annotations()
        .get(REVISION)
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

/// A phase with its symbol.
pub fn phase_symbol(phase: Option<RolloutPhase>) -> String {
    match phase {
        Some(RolloutPhase::Healthy) => "✔ Healthy".into(),
        Some(RolloutPhase::Progressing) => "◌ Progressing".into(),
        Some(RolloutPhase::Paused) => "॥ Paused".into(),
        Some(RolloutPhase::Degraded) => "✖ Degraded".into(),
        None => "- Unknown".into(),
    }
}

fn run_symbol(phase: Option<AnalysisPhase>) -> &'static str {
    match phase {
        Some(AnalysisPhase::Successful) => "✔",
        Some(AnalysisPhase::Failed) => "✖",
        Some(AnalysisPhase::Inconclusive) => "?",
        Some(AnalysisPhase::Error) => "⚠",
        _ => "◌",
    }
}

/// `5s`, `3m`, `2h`, `4d`.
pub(crate) fn age(now: Timestamp, since: Option<Timestamp>) -> String {
    let Some(since) = since else {
        return "-".into();
    };
    let s = now.duration_since(since).as_secs().max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86_400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

/// What the last judged measurement of a `sequential` metric says: its e-value, rate ratio
/// and counts (`e-value: 142.3 ratio: 3.1 canary: 30/1000 baseline: 90/9000`). `None` for
/// other metrics.
fn sequential_info(m: &rollgate_api::MetricResult) -> Option<String> {
    let last = m
        .measurements
        .iter()
        .rev()
        .find(|x| x.metadata.contains_key("eValue"))?;
    let get = |k: &str| last.metadata.get(k).map_or("-", String::as_str);
    Some(format!(
        "e-value: {} ratio: {} canary: {}/{} baseline: {}/{}",
        get("eValue"),
        get("rateRatio"),
        get("canaryEvents"),
        get("canaryRequests"),
        get("baselineEvents"),
        get("baselineRequests"),
    ))
}

/// One line of the tree.
struct Node {
    prefix: String,
    name: String,
    kind: &'static str,
    status: String,
    age: String,
    info: String,
}

/// `(branch, continuation)` of a child: the last one closes its parent.
fn branch(last: bool) -> (&'static str, &'static str) {
    if last {
        ("└──", "   ")
    } else {
        ("├──", "│  ")
    }
}

/// A ReplicaSet's node under `indent` with `info`, and its pods under it.
fn push_replica_set(
    nodes: &mut Vec<Node>,
    o: &Objects,
    rs: &ReplicaSet,
    indent: &str,
    last: bool,
    now: Timestamp,
    info: Vec<String>,
) {
    let (b, sub) = branch(last);
    let desired = rs.spec.replicas.unwrap_or(0);
    let ready = rs
        .status
        .as_ref()
        .and_then(|s| s.ready_replicas)
        .unwrap_or(0);
    let hash = hash_of(rs).unwrap_or_default();
    let state = if desired == 0 {
        "• ScaledDown".to_string()
    } else if ready >= desired {
        "✔ Healthy".to_string()
    } else {
        format!("◌ Progressing ({ready}/{desired})")
    };
    nodes.push(Node {
        prefix: format!("{indent}{b}⧉ "),
        name: rs.name_any(),
        kind: "ReplicaSet",
        status: state,
        age: age(now, rs.metadata.creation_timestamp.as_ref().map(|t| t.0)),
        info: info.join(","),
    });
    let mut pods: Vec<&Pod> = o
        .pods
        .iter()
        .filter(|p| p.labels().get(POD_TEMPLATE_HASH) == Some(&hash))
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect();
    pods.sort_by_key(|p| p.name_any());
    for (pi, pod) in pods.iter().enumerate() {
        let (pb, _) = branch(pi + 1 == pods.len());
        let statuses = pod
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.clone())
            .unwrap_or_default();
        let total = pod.spec.as_ref().map_or(0, |s| s.containers.len());
        let ready_n = statuses.iter().filter(|c| c.ready).count();
        let restarts: i32 = statuses.iter().map(|c| c.restart_count).sum();
        let waiting = statuses
            .iter()
            .find_map(|c| c.state.as_ref()?.waiting.as_ref()?.reason.clone());
        let state = if total > 0 && ready_n == total {
            "✔ Running".to_string()
        } else {
            format!("◌ {}", waiting.unwrap_or_else(|| "NotReady".into()))
        };
        let mut info = format!("ready:{ready_n}/{total}");
        if restarts > 0 {
            let _ = write!(info, ",restarts:{restarts}");
        }
        nodes.push(Node {
            prefix: format!("{indent}{sub}{pb}□ "),
            name: pod.name_any(),
            kind: "Pod",
            status: state,
            age: age(now, pod.metadata.creation_timestamp.as_ref().map(|t| t.0)),
            info,
        });
    }
}

/// An AnalysisRun's node under `indent`, and its metrics under it.
fn push_run(nodes: &mut Vec<Node>, run: &AnalysisRun, indent: &str, last: bool, now: Timestamp) {
    let (b, sub) = branch(last);
    let rs = run.status.clone().unwrap_or_default();
    nodes.push(Node {
        prefix: format!("{indent}{b}α "),
        name: run.name_any(),
        kind: "AnalysisRun",
        status: format!(
            "{} {}",
            run_symbol(rs.phase),
            rs.phase.map_or_else(|| "Pending".into(), |p| p.to_string())
        ),
        age: age(now, run.metadata.creation_timestamp.as_ref().map(|t| t.0)),
        info: String::new(),
    });
    let metrics = &rs.metric_results;
    for (mi, m) in metrics.iter().enumerate() {
        let (mb, _) = branch(mi + 1 == metrics.len());
        let last_values: Vec<String> = m
            .measurements
            .iter()
            .rev()
            .take(3)
            .rev()
            .map(|x| x.value.clone().unwrap_or_else(|| "-".into()))
            .collect();
        let mut counts = Vec::new();
        for (sym, n) in [
            ("✔", m.successful),
            ("✖", m.failed),
            ("?", m.inconclusive),
            ("⚠", m.error),
        ] {
            if n > 0 {
                counts.push(format!("{sym} {n}"));
            }
        }
        let info = match sequential_info(m) {
            Some(judged) => format!("{}  {judged}", counts.join(" ")),
            None => format!("{}  last: {}", counts.join(" "), last_values.join(" ")),
        };
        nodes.push(Node {
            prefix: format!("{indent}{sub}{mb}· "),
            name: m.name.clone(),
            kind: "Metric",
            status: format!(
                "{} {}",
                run_symbol(m.phase),
                m.phase.map_or_else(|| "Running".into(), |p| p.to_string())
            ),
            age: String::new(),
            info,
        });
    }
}

/// Renders the header and the tree. `with_ages: false` leaves ages out (for comparing
/// frames in `--watch`).
pub fn render(o: &Objects, now: Timestamp, with_ages: bool) -> String {
    let r = &o.rollout;
    let status = r.status.clone().unwrap_or_default();
    let mut out = String::new();
    let name = r.name_any();
    let ns = r.namespace().unwrap_or_else(|| "default".into());
    let canary = r.spec.strategy.canary.as_ref();
    let bg = r.spec.strategy.blue_green.as_ref();
    let line = |out: &mut String, k: &str, v: &str| {
        let _ = writeln!(out, "{}", format!("{k:<16} {v}").trim_end());
    };
    line(&mut out, "Name:", &name);
    line(&mut out, "Namespace:", &ns);
    line(&mut out, "Status:", &phase_symbol(status.phase));
    if let Some(m) = status.message.as_deref().filter(|m| !m.is_empty()) {
        line(&mut out, "Message:", m);
    }
    if let Some(reason) = status.abort_reason {
        let at = status
            .aborted_at
            .as_ref()
            .map(|t| format!(" ({} ago)", age(now, Some(t.0))))
            .filter(|_| with_ages)
            .unwrap_or_default();
        line(&mut out, "Abort reason:", &format!("{reason}{at}"));
    }
    if let Some(a) = status
        .alert
        .as_ref()
        .filter(|_| status.abort_reason == Some(rollgate_api::AbortReason::AlertFiring))
    {
        let labels: Vec<String> = a
            .labels
            .iter()
            .filter(|(k, _)| k.as_str() != "alertname")
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let since = a
            .starts_at
            .as_ref()
            .map(|t| format!(", firing since {}", t.0))
            .unwrap_or_default();
        line(
            &mut out,
            "Alert:",
            &format!("{} {{{}}}{since}", a.name, labels.join(", ")),
        );
    }
    if let Some(g) = &status.guard {
        let left = if with_ages {
            format!(" ({} left)", age(g.until.0, Some(now)))
        } else {
            String::new()
        };
        line(
            &mut out,
            "Guard window:",
            &format!(
                "{} over {} until {}{left}",
                g.revision, g.previous, g.until.0
            ),
        );
        if let Some(run) = &g.analysis_run {
            line(
                &mut out,
                "Guard analysis:",
                &format!("{} {}", run.name, run.status),
            );
        }
    }
    if !status.pause_conditions.is_empty() {
        let reasons: Vec<&str> = status
            .pause_conditions
            .iter()
            .map(|p| p.reason.as_str())
            .collect();
        line(&mut out, "Pause reasons:", &reasons.join(", "));
    }
    line(
        &mut out,
        "Strategy:",
        if canary.is_some() {
            "Canary"
        } else {
            "BlueGreen"
        },
    );
    // Roles by pod-template hash.
    let stable = status.stable_rs.clone();
    let current = status.current_pod_hash.clone();
    let roles_of = |hash: &str| -> Vec<&'static str> {
        let mut roles = Vec::new();
        if let Some(b) = &status.blue_green {
            if b.active_selector.as_deref() == Some(hash) {
                roles.push("active");
            }
            // Between releases preview and active select the same hash: it is the active one.
            if b.preview_selector.as_deref() == Some(hash) && bg.is_some() && roles.is_empty() {
                roles.push("preview");
            }
        }
        if canary.is_some() {
            if stable.as_deref() == Some(hash) {
                roles.push("stable");
            } else if current.as_deref() == Some(hash) {
                roles.push("canary");
            }
        }
        roles
    };
    if let Some(c) = canary {
        let steps = c.steps.len();
        if let Some(i) = status.current_step_index {
            // 1-based, as in the status messages; all done once the index passed the end.
            let step = match usize::try_from(i) {
                Ok(i) if i < steps => format!("{}/{steps}", i + 1),
                _ => format!("{steps}/{steps} (done)"),
            };
            line(&mut out, "  Step:", &step);
        }
        if let Some(w) = status.canary.as_ref().and_then(|c| c.weights.as_ref()) {
            line(&mut out, "  SetWeight:", &w.set_weight.to_string());
            line(&mut out, "  ActualWeight:", &w.actual_weight.to_string());
        }
        for (k, v) in experiment::header(r, &o.replica_sets, now, with_ages) {
            line(&mut out, &k, &v);
        }
    }
    // Images of the revisions' ReplicaSets that have a role, newest revision first (an
    // experiment's ReplicaSets are no revision).
    let mut sets: Vec<&ReplicaSet> = o
        .replica_sets
        .iter()
        .filter(|rs| !is_experiment_replica_set(rs))
        .collect();
    sets.sort_by_key(|rs| std::cmp::Reverse(revision_of(rs)));
    let mut images: Vec<(String, Vec<&str>)> = Vec::new();
    for rs in &sets {
        let Some(hash) = hash_of(rs) else { continue };
        let roles = roles_of(&hash);
        if roles.is_empty() {
            continue;
        }
        let containers = rs
            .spec
            .template
            .as_ref()
            .and_then(|t| t.spec.as_ref())
            .map(|s| s.containers.clone())
            .unwrap_or_default();
        for c in containers {
            let image = c.image.unwrap_or_default();
            match images.iter_mut().find(|(i, _)| *i == image) {
                Some((_, rs_roles)) => rs_roles.extend(roles.iter().copied()),
                None => images.push((image, roles.clone())),
            }
        }
    }
    for (i, (image, roles)) in images.iter().enumerate() {
        let key = if i == 0 { "Images:" } else { "" };
        line(&mut out, key, &format!("{image} ({})", roles.join(", ")));
    }
    line(&mut out, "Replicas:", "");
    let n = |v: Option<i32>| v.unwrap_or(0).to_string();
    line(&mut out, "  Desired:", &n(r.spec.replicas.or(Some(1))));
    line(&mut out, "  Current:", &n(status.replicas));
    line(&mut out, "  Updated:", &n(status.updated_replicas));
    line(&mut out, "  Ready:", &n(status.ready_replicas));
    line(&mut out, "  Available:", &n(status.available_replicas));
    out.push('\n');

    // The tree.
    let mut nodes = vec![Node {
        prefix: "⟳ ".into(),
        name: name.clone(),
        kind: "Rollout",
        status: phase_symbol(status.phase),
        age: age(now, r.metadata.creation_timestamp.as_ref().map(|t| t.0)),
        info: String::new(),
    }];
    let experiments = experiment::groups(r, &o.replica_sets, &o.runs, |hash| {
        sets.iter()
            .find(|rs| hash_of(rs).as_deref() == Some(hash))
            .map(|rs| revision_of(rs))
    });
    // Experiment runs are shown under their experiment, not as the revision's.
    let grouped: BTreeSet<String> = experiments
        .iter()
        .flat_map(|g| g.runs.iter().map(|run| run.name_any()))
        .collect();
    let mut revisions: BTreeSet<i64> = sets.iter().map(|rs| revision_of(rs)).collect();
    revisions.extend(experiments.iter().map(|g| g.revision.unwrap_or(0)));
    let revisions: Vec<i64> = revisions.into_iter().rev().collect();
    for (ri, rev) in revisions.iter().enumerate() {
        let last_rev = ri + 1 == revisions.len();
        let (branch, indent) = if last_rev {
            ("└──", "   ")
        } else {
            ("├──", "│  ")
        };
        nodes.push(Node {
            prefix: format!("{branch}# "),
            name: format!("revision:{rev}"),
            kind: "",
            status: String::new(),
            age: String::new(),
            info: String::new(),
        });
        let rev_sets: Vec<&&ReplicaSet> =
            sets.iter().filter(|rs| revision_of(rs) == *rev).collect();
        let rev_experiments: Vec<&experiment::Group<'_>> = experiments
            .iter()
            .filter(|g| g.revision.unwrap_or(0) == *rev)
            .collect();
        let hashes: Vec<String> = rev_sets.iter().filter_map(|rs| hash_of(rs)).collect();
        let mut rev_runs: Vec<&AnalysisRun> = o
            .runs
            .iter()
            .filter(|run| {
                run.labels()
                    .get(POD_TEMPLATE_HASH)
                    .is_some_and(|h| hashes.contains(h))
            })
            .filter(|run| !grouped.contains(&run.name_any()))
            .collect();
        rev_runs.sort_by_key(|run| run.metadata.creation_timestamp.as_ref().map(|t| t.0));
        let children = rev_sets.len() + rev_experiments.len() + rev_runs.len();
        let mut child = 0;
        for rs in rev_sets {
            child += 1;
            let hash = hash_of(rs).unwrap_or_default();
            let mut info: Vec<String> = roles_of(&hash).iter().map(|s| s.to_string()).collect();
            if let Some(deadline) = rs.annotations().get(SCALE_DOWN_DEADLINE)
                && let Ok(t) = deadline.parse::<Timestamp>()
                && rs.spec.replicas.unwrap_or(0) > 0
            {
                let left = t.duration_since(now).as_secs().max(0);
                info.push(format!("delay:{left}s"));
            }
            push_replica_set(&mut nodes, o, rs, indent, child == children, now, info);
        }
        for g in rev_experiments {
            child += 1;
            let last = child == children;
            let (b, sub) = if last {
                ("└──", "   ")
            } else {
                ("├──", "│  ")
            };
            let status = match g.current {
                Some(x) => {
                    let phase = experiment::phase_of(&x.phase);
                    format!("{} {}", run_symbol(phase), x.phase)
                }
                None if g
                    .replica_sets
                    .iter()
                    .all(|rs| rs.spec.replicas.unwrap_or(0) == 0) =>
                {
                    "• ScaledDown".to_string()
                }
                None => "◌ ScalingDown".to_string(),
            };
            let created = g
                .replica_sets
                .iter()
                .filter_map(|rs| rs.metadata.creation_timestamp.as_ref().map(|t| t.0))
                .min();
            nodes.push(Node {
                prefix: format!("{indent}{b}Σ "),
                name: g.name.clone(),
                kind: "Experiment",
                status,
                age: age(now, created),
                info: String::new(),
            });
            let inner = format!("{indent}{sub}");
            let grandchildren = g.replica_sets.len() + g.runs.len();
            let mut k = 0;
            for rs in &g.replica_sets {
                k += 1;
                let info = rs
                    .labels()
                    .get(EXPERIMENT_TEMPLATE)
                    .map(|t| vec![format!("template:{t}")])
                    .unwrap_or_default();
                push_replica_set(&mut nodes, o, rs, &inner, k == grandchildren, now, info);
            }
            for run in &g.runs {
                k += 1;
                push_run(&mut nodes, run, &inner, k == grandchildren, now);
            }
        }
        for run in rev_runs {
            child += 1;
            push_run(&mut nodes, run, indent, child == children, now);
        }
    }
    let width = nodes
        .iter()
        .map(|n| n.prefix.chars().count() + n.name.chars().count())
        .max()
        .unwrap_or(0)
        + 2;
    let status_width = nodes
        .iter()
        .map(|n| n.status.chars().count())
        .max()
        .unwrap_or(0)
        .max(6)
        + 2;
    let pad = |s: &str, w: usize| format!("{s}{}", " ".repeat(w.saturating_sub(s.chars().count())));
    let header_age = if with_ages { "AGE  " } else { "" };
    let _ = writeln!(
        out,
        "{}{}{}{header_age}INFO",
        pad("NAME", width),
        pad("KIND", 13),
        pad("STATUS", status_width)
    );
    for n in nodes {
        let first = format!("{}{}", n.prefix, n.name);
        let age_col = if with_ages {
            pad(&n.age, 5)
        } else {
            String::new()
        };
        let row = format!(
            "{}{}{}{age_col}{}",
            pad(&first, width),
            pad(n.kind, 13),
            pad(&n.status, status_width),
            n.info
        );
        let _ = writeln!(out, "{}", row.trim_end());
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn from<T: serde::de::DeserializeOwned>(v: Value) -> T {
        serde_json::from_value(v).expect("valid object")
    }

    const T0: &str = "2026-01-01T00:00:00Z";

    fn now() -> Timestamp {
        "2026-01-01T00:10:00Z".parse().expect("time")
    }

    fn rs(hash: &str, rev: i64, image: &str, desired: i32, ready: i32, extra: Value) -> ReplicaSet {
        let mut v = json!({
            "metadata": {"name": format!("web-{hash}"), "creationTimestamp": T0,
                "labels": {POD_TEMPLATE_HASH: hash, ROLLOUT_NAME: "web"},
                "annotations": {REVISION: rev.to_string()}},
            "spec": {"replicas": desired, "selector": {},
                "template": {"spec": {"containers": [{"name": "web", "image": image}]}}},
            "status": {"replicas": desired, "readyReplicas": ready}
        });
        if let Some(a) = extra.get("annotations") {
            v["metadata"]["annotations"]
                .as_object_mut()
                .expect("map")
                .extend(a.as_object().expect("map").clone());
        }
        from(v)
    }

    fn pod(name: &str, hash: &str, ready: bool, restarts: i32, waiting: Option<&str>) -> Pod {
        let state = waiting.map_or(
            json!({"running": {}}),
            |r| json!({"waiting": {"reason": r}}),
        );
        from(json!({
            "metadata": {"name": name, "creationTimestamp": T0, "labels": {POD_TEMPLATE_HASH: hash}},
            "spec": {"containers": [{"name": "web"}]},
            "status": {"containerStatuses": [{"name": "web", "ready": ready, "restartCount": restarts,
                "image": "x", "imageID": "", "state": state}]}
        }))
    }

    fn bluegreen(status: Value) -> Rollout {
        from(json!({
            "apiVersion": "rollgate.dev/v1alpha1", "kind": "Rollout",
            "metadata": {"name": "web", "namespace": "shop", "creationTimestamp": T0},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                "strategy": {"blueGreen": {"activeService": "a", "previewService": "p"}}},
            "status": status
        }))
    }

    #[test]
    fn blue_green_marks_active_and_preview_and_scaled_down_sets() {
        let o = Objects {
            rollout: bluegreen(
                json!({"phase": "Paused", "message": "waiting for promotion",
                "blueGreen": {"activeSelector": "h2", "previewSelector": "h3"},
                "replicas": 4, "readyReplicas": 3}),
            ),
            replica_sets: vec![
                rs("h1", 1, "web:1", 0, 0, json!({})),
                rs("h2", 2, "web:2", 2, 2, json!({})),
                rs("h3", 3, "web:3", 2, 1, json!({})),
            ],
            pods: vec![
                pod("web-h3-a", "h3", true, 0, None),
                pod("web-h3-b", "h3", false, 4, Some("CrashLoopBackOff")),
            ],
            runs: vec![],
        };
        let text = render(&o, now(), true);
        assert!(
            text.contains("Status:          ॥ Paused\nMessage:         waiting for promotion"),
            "{text}"
        );
        assert!(text.contains("Strategy:        BlueGreen"), "{text}");
        assert!(
            text.contains("Images:          web:3 (preview)\n                 web:2 (active)"),
            "{text}"
        );
        assert!(!text.contains("Step:"), "{text}");
        let lines: Vec<&str> = text.lines().collect();
        let find = |s: &str| {
            lines
                .iter()
                .find(|l| l.contains(s))
                .copied()
                .unwrap_or_default()
        };
        assert!(
            find("web-h3 ").contains("◌ Progressing (1/2)") && find("web-h3 ").ends_with("preview")
        );
        assert!(find("web-h2 ").ends_with("active"));
        assert!(find("web-h1 ").contains("• ScaledDown"));
        assert!(find("web-h3-b").contains("◌ CrashLoopBackOff"), "{text}");
        assert!(find("web-h3-b").ends_with("ready:0/1,restarts:4"), "{text}");
        assert!(find("web-h3-a").contains("✔ Running"));
        // Revisions newest first, the last one closing the tree.
        let revs: Vec<&str> = lines
            .iter()
            .filter(|l| l.contains("# revision:"))
            .copied()
            .collect();
        assert_eq!(
            revs,
            ["├──# revision:3", "├──# revision:2", "└──# revision:1"]
        );
        assert!(find("⟳ web").contains("10m"), "age from now: {text}");
    }

    #[test]
    fn a_scale_down_delay_and_a_degraded_rollout_are_shown() {
        let deadline = "2026-01-01T00:10:30Z";
        let o = Objects {
            rollout: bluegreen(
                json!({"phase": "Degraded", "message": "Aborted: analysis failed",
                "blueGreen": {"activeSelector": "h1", "previewSelector": "h1"}}),
            ),
            replica_sets: vec![
                rs("h1", 1, "web:1", 2, 2, json!({})),
                rs(
                    "h2",
                    2,
                    "web:2",
                    2,
                    2,
                    json!({"annotations": {SCALE_DOWN_DEADLINE: deadline}}),
                ),
            ],
            pods: vec![],
            runs: vec![],
        };
        let text = render(&o, now(), true);
        assert!(
            text.contains("Status:          ✖ Degraded\nMessage:         Aborted: analysis failed")
        );
        assert!(
            text.contains("Images:          web:1 (active)\n"),
            "one role, active wins: {text}"
        );
        let h2 = text
            .lines()
            .find(|l| l.contains("web-h2"))
            .unwrap_or_default();
        assert!(h2.ends_with("delay:30s"), "{text}");
    }

    #[test]
    fn the_abort_and_pause_reasons_are_shown_from_status_data() {
        let aborted = Objects {
            rollout: bluegreen(json!({"phase": "Degraded", "message": "anything at all",
                "abort": true, "abortReason": "AnalysisFailed", "abortedAt": "2026-01-01T00:08:00Z"})),
            replica_sets: vec![],
            pods: vec![],
            runs: vec![],
        };
        let text = render(&aborted, now(), true);
        assert!(
            text.contains("\nAbort reason:    AnalysisFailed ("),
            "{text}"
        );
        let alerted = Objects {
            rollout: bluegreen(json!({"phase": "Degraded", "abortReason": "AlertFiring",
                "alert": {"name": "HighErrorRate", "revision": "h2",
                          "labels": {"alertname": "HighErrorRate", "pod_template_hash": "h2"},
                          "startsAt": "2026-01-01T00:07:00Z"}})),
            replica_sets: vec![],
            pods: vec![],
            runs: vec![],
        };
        let text = render(&alerted, now(), true);
        assert!(
            text.contains(
                "\nAlert:           HighErrorRate {pod_template_hash=h2}, firing since 2026-01-01T00:07:00Z\n"
            ),
            "{text}"
        );
        assert!(!render(&aborted, now(), false).contains(" ago)"));
        let guarded = Objects {
            rollout: bluegreen(json!({"phase": "Healthy", "guard": {
                "revision": "h2", "previous": "h1", "until": "2026-01-01T00:20:00Z",
                "analysisRun": {"name": "web-h2-guard-1", "status": "Running"}}})),
            replica_sets: vec![],
            pods: vec![],
            runs: vec![],
        };
        let text = render(&guarded, now(), false);
        assert!(
            text.contains("\nGuard window:    h2 over h1 until 2026-01-01T00:20:00Z\n")
                && text.contains("\nGuard analysis:  web-h2-guard-1 Running\n"),
            "{text}"
        );
        let paused = Objects {
            rollout: bluegreen(json!({"phase": "Paused", "controllerPause": true,
                "pauseConditions": [{"reason": "BlueGreenPause", "startTime": T0}]})),
            replica_sets: vec![],
            pods: vec![],
            runs: vec![],
        };
        let text = render(&paused, now(), true);
        assert!(
            text.contains("\nPause reasons:   BlueGreenPause\n"),
            "{text}"
        );
        assert!(!text.contains("Abort reason"), "{text}");
    }

    #[test]
    fn a_sequential_metric_shows_the_e_value_and_ratio_of_its_last_measurement() {
        let judged = |e: &str| {
            json!({"phase": "Successful", "value": e, "metadata": {"eValue": e,
                "rateRatio": "2.9", "canaryEvents": "29", "canaryRequests": "1000",
                "baselineEvents": "90", "baselineRequests": "9000", "pValue": "0.5"}})
        };
        let mut run: AnalysisRun = from(json!({
            "apiVersion": "rollgate.dev/v1alpha1", "kind": "AnalysisRun",
            "metadata": {"name": "web-h2-step-1-1", "creationTimestamp": T0},
            "spec": {"metrics": []},
            "status": {"phase": "Running", "metricResults": [
                {"name": "errors", "phase": "Running", "count": 3, "successful": 2, "error": 1,
                 "measurements": [judged("0.8"), judged("4.2"),
                                  {"phase": "Error", "message": "unreachable"}]},
                {"name": "latency", "phase": "Running", "count": 1, "successful": 1,
                 "measurements": [{"phase": "Successful", "value": "[0.2]"}]}]}
        }));
        run.metadata
            .labels
            .get_or_insert_with(Default::default)
            .insert(POD_TEMPLATE_HASH.to_string(), "h2".to_string());
        let o = Objects {
            rollout: bluegreen(json!({"phase": "Progressing"})),
            replica_sets: vec![rs("h2", 2, "app:2", 2, 2, json!({}))],
            pods: vec![],
            runs: vec![run],
        };
        let text = render(&o, now(), false);
        let errors = text
            .lines()
            .find(|l| l.contains("errors"))
            .unwrap_or_default();
        assert!(
            errors.ends_with("✔ 2 ⚠ 1  e-value: 4.2 ratio: 2.9 canary: 29/1000 baseline: 90/9000"),
            "{text}"
        );
        let latency = text
            .lines()
            .find(|l| l.contains("latency"))
            .unwrap_or_default();
        assert!(latency.ends_with("✔ 1  last: [0.2]"), "{text}");
    }

    #[test]
    fn a_rollout_without_status_renders() {
        let o = Objects {
            rollout: bluegreen(Value::Null),
            replica_sets: vec![],
            pods: vec![],
            runs: vec![],
        };
        let text = render(&o, now(), false);
        assert!(text.contains("Status:          - Unknown"), "{text}");
        assert!(text.contains("  Current:       0"), "{text}");
        assert!(
            text.lines().last().unwrap_or_default().starts_with("⟳ web"),
            "{text}"
        );
        assert!(!text.contains("AGE"), "no ages when asked: {text}");
    }
}
