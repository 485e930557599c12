//! Ephemeral metadata: the labels and annotations of a role (Argo Rollouts'
//! `blueGreen.activeMetadata` / `previewMetadata`, `canary.stableMetadata` / `canaryMetadata`)
//! put on the pod template of the ReplicaSet holding that role and, in place, on its pods.
//!
//! As in Argo Rollouts: while a release is in flight the new ReplicaSet carries the preview
//! (canary) metadata and the stable one the active (stable) metadata; once the new revision is
//! the stable one (or before any is), it carries the active (stable) metadata. Every other
//! ReplicaSet carries none. When a role changes, the keys of the old role are taken off and
//! those of the new one put on, without replacing a pod: the pod-template hash is computed from
//! the Rollout's `spec.template` only, so it does not change. Other labels are never touched.
//!
//! What was put on a ReplicaSet is recorded in its
//! [`EPHEMERAL_METADATA`](rollgate_api::labels::EPHEMERAL_METADATA) annotation, so exactly those
//! keys come off later, even when the spec no longer names them.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use rollgate_api::labels::{EPHEMERAL_METADATA, POD_TEMPLATE_HASH};
use rollgate_api::{PodMetadata, Rollout, RolloutSpec};

use crate::action::{Action, MetadataChange};
use crate::context::Ctx;
use crate::observed::ObservedReplicaSet;
use crate::validate::{Problem, problem};

/// The metadata of the new revision while it is not stable (preview / canary) and of the
/// stable one (active / stable), with the spec field naming each.
fn roles(spec: &RolloutSpec) -> [(&'static str, Option<&PodMetadata>); 2] {
    if let Some(c) = &spec.strategy.canary {
        [
            (
                "spec.strategy.canary.canaryMetadata",
                c.canary_metadata.as_ref(),
            ),
            (
                "spec.strategy.canary.stableMetadata",
                c.stable_metadata.as_ref(),
            ),
        ]
    } else if let Some(b) = &spec.strategy.blue_green {
        [
            (
                "spec.strategy.blueGreen.previewMetadata",
                b.preview_metadata.as_ref(),
            ),
            (
                "spec.strategy.blueGreen.activeMetadata",
                b.active_metadata.as_ref(),
            ),
        ]
    } else {
        [("", None), ("", None)]
    }
}

fn configured(spec: &RolloutSpec) -> bool {
    roles(spec).iter().any(|(_, m)| m.is_some())
}

fn is_empty(m: &PodMetadata) -> bool {
    m.labels.is_empty() && m.annotations.is_empty()
}

/// True when the controller must read the rollout's pods: a `restartAt` is pending, or
/// ephemeral metadata is configured or still recorded on one of `replica_sets`.
pub fn pods_wanted(rollout: &Rollout, replica_sets: &[ObservedReplicaSet]) -> bool {
    crate::restart_pending(rollout)
        || configured(&rollout.spec)
        || replica_sets.iter().any(|rs| !is_empty(&rs.ephemeral))
}

/// Checks that no role metadata sets a label the rollout selects its pods by: a key of
/// `spec.selector` or the pod-template hash label.
pub fn validate(spec: &RolloutSpec, selector: &LabelSelector, problems: &mut Vec<Problem>) {
    let mut selected: BTreeSet<&str> = selector
        .match_labels
        .iter()
        .flatten()
        .map(|(k, _)| k.as_str())
        .collect();
    selected.extend(
        selector
            .match_expressions
            .iter()
            .flatten()
            .map(|e| e.key.as_str()),
    );
    for (field, meta) in roles(spec) {
        let Some(meta) = meta else { continue };
        check(field, meta, &selected, problems);
    }
}

/// Checks labels and annotations to be put on pods at `field`: keys and values Kubernetes
/// accepts, neither the pod-template hash nor a label of the selector (`selected`: its keys).
pub(crate) fn check(
    field: &str,
    meta: &PodMetadata,
    selected: &BTreeSet<&str>,
    problems: &mut Vec<Problem>,
) {
    for (key, value) in &meta.labels {
        if !is_qualified_name(key) {
            problems.push(problem(
                format!("{field}.labels"),
                format!("key {key:?}: {QUALIFIED_NAME}"),
            ));
        }
        if !is_label_value(value) {
            problems.push(problem(
                format!("{field}.labels.{key}"),
                format!(
                    "{value:?}: a label value expected (at most 63 characters: letters, \
                     digits, '-', '_' or '.', starting and ending with a letter or digit)"
                ),
            ));
        }
    }
    for key in meta.annotations.keys() {
        if !is_qualified_name(key) {
            problems.push(problem(
                format!("{field}.annotations"),
                format!("key {key:?}: {QUALIFIED_NAME}"),
            ));
        }
    }
    for key in meta.labels.keys() {
        if key == POD_TEMPLATE_HASH {
            problems.push(problem(
                format!("{field}.labels"),
                format!(
                    "must not set {POD_TEMPLATE_HASH}, the label rollgate tells revisions \
                     apart by"
                ),
            ));
        } else if selected.contains(key.as_str()) {
            problems.push(problem(
                format!("{field}.labels"),
                format!(
                    "must not set {key}, a label of spec.selector (the pods would leave \
                     their ReplicaSet)"
                ),
            ));
        }
    }
}

const QUALIFIED_NAME: &str = "a qualified name expected (NAME or PREFIX/NAME: NAME at most 63 \
     characters of letters, digits, '-', '_' or '.', starting and ending with a letter or digit; \
     PREFIX a lowercase DNS subdomain)";

/// A label value: empty, or at most 63 of `[A-Za-z0-9-_.]` starting and ending alphanumeric.
fn is_label_value(v: &str) -> bool {
    v.is_empty() || is_name(v)
}

fn is_name(v: &str) -> bool {
    let alnum = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    !v.is_empty()
        && v.len() <= 63
        && alnum(v.chars().next())
        && alnum(v.chars().last())
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// A label or annotation key: `name` or `prefix/name`, the prefix a DNS subdomain.
fn is_qualified_name(k: &str) -> bool {
    match k.split_once('/') {
        None => is_name(k),
        Some((prefix, name)) => {
            let lower_alnum =
                |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
            is_name(name)
                && !prefix.is_empty()
                && prefix.len() <= 253
                && lower_alnum(prefix.chars().next())
                && lower_alnum(prefix.chars().last())
                && prefix
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.'))
        }
    }
}

/// The changes that make `current` carry `want` and none of `drop` (keys of `want` win).
fn diff(current: &PodMetadata, want: &PodMetadata, drop: &PodMetadata) -> MetadataChange {
    let one = |cur: &BTreeMap<String, String>,
               want: &BTreeMap<String, String>,
               drop: &BTreeMap<String, String>| {
        let mut out = BTreeMap::new();
        for (k, v) in want {
            if cur.get(k) != Some(v) {
                out.insert(k.clone(), Some(v.clone()));
            }
        }
        for k in drop.keys() {
            if !want.contains_key(k) && cur.contains_key(k) {
                out.insert(k.clone(), None);
            }
        }
        out
    };
    MetadataChange {
        labels: one(&current.labels, &want.labels, &drop.labels),
        annotations: one(&current.annotations, &want.annotations, &drop.annotations),
    }
}

/// Puts each ReplicaSet's role metadata on its pod template and pods, after the strategy has
/// decided this reconcile (`hash`: the pod-template hash of `spec.template`).
pub fn sync(cx: &mut Ctx<'_>, hash: &str) {
    let spec = &cx.rollout.spec;
    let [(_, new_role), (_, stable_role)] = roles(spec);
    if !configured(spec)
        && cx
            .observed
            .replica_sets
            .iter()
            .all(|r| is_empty(&r.ephemeral))
    {
        return;
    }
    let stable = cx.status.stable_rs.clone();
    // Argo Rollouts: "fully rolled out" when there is no stable ReplicaSet yet or it is the
    // new one; the new ReplicaSet then carries the stable (active) metadata.
    let rolled_out = stable.as_deref().is_none_or(|s| s == hash);
    let want = |h: &str| -> PodMetadata {
        let role = if h == hash {
            if rolled_out { stable_role } else { new_role }
        } else if stable.as_deref() == Some(h) {
            stable_role
        } else {
            None
        };
        role.cloned().unwrap_or_default()
    };
    // Keys any role may have put on, except those of the pod template itself.
    let template = spec.template.as_ref().and_then(|t| t.metadata.as_ref());
    let own_labels = template.and_then(|m| m.labels.as_ref());
    let own_annotations = template.and_then(|m| m.annotations.as_ref());
    let droppable = |recorded: &PodMetadata| {
        let mut d = recorded.clone();
        for m in [new_role, stable_role].into_iter().flatten() {
            d.labels.extend(m.labels.clone());
            d.annotations.extend(m.annotations.clone());
        }
        d.labels
            .retain(|k, _| k != POD_TEMPLATE_HASH && own_labels.is_none_or(|l| !l.contains_key(k)));
        d.annotations
            .retain(|k, _| own_annotations.is_none_or(|a| !a.contains_key(k)));
        d
    };

    // A ReplicaSet created by this reconcile starts with its role's metadata.
    for action in &mut cx.actions {
        let Action::CreateReplicaSet(rs) = action else {
            continue;
        };
        let Some(h) = rs
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(POD_TEMPLATE_HASH))
        else {
            continue;
        };
        let want = want(h);
        if is_empty(&want) {
            continue;
        }
        if let Some(t) = rs.spec.template.as_mut() {
            let meta = t.metadata.get_or_insert_with(Default::default);
            meta.labels
                .get_or_insert_with(Default::default)
                .extend(want.labels.clone());
            if !want.annotations.is_empty() {
                meta.annotations
                    .get_or_insert_with(Default::default)
                    .extend(want.annotations.clone());
            }
        }
        if let Ok(record) = serde_json::to_string(&want) {
            rs.metadata
                .annotations
                .get_or_insert_with(Default::default)
                .insert(EPHEMERAL_METADATA.to_string(), record);
        }
    }

    // Pods this reconcile deletes (`restartAt`) are left alone.
    let deleting: BTreeSet<&str> = cx
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::DeletePod { name } => Some(name.as_str()),
            _ => None,
        })
        .collect();
    let mut actions = Vec::new();
    for rs in &cx.observed.replica_sets {
        if cx.deleted.contains(&rs.name) {
            continue;
        }
        let want = want(&rs.hash);
        let drop = droppable(&rs.ephemeral);
        // The template first, so that a pod created meanwhile already carries the new role.
        let change = diff(&rs.template_metadata, &want, &drop);
        if !change.is_empty() || rs.ephemeral != want {
            actions.push(Action::SetReplicaSetMetadata {
                name: rs.name.clone(),
                change,
                record: want.clone(),
            });
        }
        for pod in &cx.observed.pods {
            if pod.hash != rs.hash || pod.terminating || deleting.contains(pod.name.as_str()) {
                continue;
            }
            let change = diff(&pod.metadata, &want, &drop);
            if !change.is_empty() {
                actions.push(Action::SetPodMetadata {
                    name: pod.name.clone(),
                    change,
                });
            }
        }
    }
    cx.actions.extend(actions);
}
