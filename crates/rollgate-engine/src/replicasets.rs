//! ReplicaSet decisions shared by the strategies: creating the revision's ReplicaSet, scaling,
//! delayed scale-down of old revisions and history pruning.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetSpec};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::jiff::Timestamp;
use kube_core::Resource;
use rollgate_api::labels::{
    MAX_TEMPLATE_ANNOTATION, POD_TEMPLATE_HASH, REVISION, ROLLOUT_NAME, TEMPLATE,
};
use rollgate_api::{EventReason, Rollout};

use crate::action::{Action, DeadlineChange};
use crate::context::Ctx;
use crate::message::{Msg, ScaleDownWhy};
use crate::observed::{Observed, ObservedReplicaSet};
use crate::validate::{AntiAffinityRule, CommonSpec};

/// Owner reference pointing at the rollout (controller = true).
pub fn owner_reference(rollout: &Rollout) -> OwnerReference {
    OwnerReference {
        api_version: Rollout::api_version(&()).into_owned(),
        kind: Rollout::kind(&()).into_owned(),
        name: rollout.metadata.name.clone().unwrap_or_default(),
        uid: rollout.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// Name of the ReplicaSet of a revision.
pub fn replica_set_name(rollout: &str, hash: &str) -> String {
    format!("{rollout}-{hash}")
}

/// The newest revision number in use: any ReplicaSet's, or the current revision's (its
/// ReplicaSet may have been pruned, and numbers must never be handed out twice).
pub fn latest_revision(cx: &Ctx<'_>) -> i64 {
    cx.observed
        .replica_sets
        .iter()
        .map(|rs| rs.revision)
        .chain(cx.status.current_revision)
        .max()
        .unwrap_or(0)
}

/// The next revision number: one more than [`latest_revision`].
pub fn next_revision(cx: &Ctx<'_>) -> i64 {
    latest_revision(cx) + 1
}

/// The [`TEMPLATE`] annotation's value for a Rollout's pod template: compact JSON, or `None`
/// when it is larger than [`MAX_TEMPLATE_ANNOTATION`] (undo then falls back to the
/// ReplicaSet's own template and says so).
pub fn template_annotation(template: &PodTemplateSpec) -> Option<String> {
    serde_json::to_string(template)
        .ok()
        .filter(|s| s.len() <= MAX_TEMPLATE_ANNOTATION)
}

fn build(
    cx: &Ctx<'_>,
    common: &CommonSpec,
    hash: &str,
    replicas: i32,
    revision: i64,
) -> ReplicaSet {
    let name = replica_set_name(cx.name(), hash);
    let mut annotations: BTreeMap<String, String> =
        [(REVISION.to_string(), revision.to_string())].into();
    if let Some(sent) = template_annotation(&common.template) {
        annotations.insert(TEMPLATE.to_string(), sent);
    }
    let mut template = common.template.clone();
    let meta = template.metadata.get_or_insert_with(Default::default);
    meta.labels
        .get_or_insert_with(Default::default)
        .insert(POD_TEMPLATE_HASH.into(), hash.into());
    if let (Some(rule), Some(stable)) = (common.anti_affinity, cx.status.stable_rs.as_deref())
        && stable != hash
    {
        add_anti_affinity(&mut template, rule, stable);
    }
    let mut selector = common.selector.clone();
    selector
        .match_labels
        .get_or_insert_with(Default::default)
        .insert(POD_TEMPLATE_HASH.into(), hash.into());
    let labels: BTreeMap<String, String> = [
        (POD_TEMPLATE_HASH.to_string(), hash.to_string()),
        (ROLLOUT_NAME.to_string(), cx.name().to_string()),
    ]
    .into();
    ReplicaSet {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: cx.rollout.metadata.namespace.clone(),
            labels: Some(labels),
            annotations: Some(annotations),
            owner_references: Some(vec![owner_reference(cx.rollout)]),
            ..Default::default()
        },
        spec: ReplicaSetSpec {
            replicas: Some(replicas),
            min_ready_seconds: Some(common.min_ready_seconds),
            selector,
            template: Some(template),
        },
        status: None,
    }
}

/// Blue/green `antiAffinity` (Argo Rollouts): the new pods avoid the nodes running the stable
/// revision's pods, a pod anti-affinity term on `kubernetes.io/hostname` against the stable
/// pod-template hash, added to whatever affinity the template has. Only the ReplicaSet's
/// template changes, never the Rollout's (the revision's hash stays that of `spec.template`).
fn add_anti_affinity(template: &mut PodTemplateSpec, rule: AntiAffinityRule, stable: &str) {
    use k8s_openapi::api::core::v1::{
        Affinity, PodAffinityTerm, PodAntiAffinity, WeightedPodAffinityTerm,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
    let term = PodAffinityTerm {
        label_selector: Some(LabelSelector {
            match_labels: Some([(POD_TEMPLATE_HASH.to_string(), stable.to_string())].into()),
            ..Default::default()
        }),
        topology_key: "kubernetes.io/hostname".into(),
        ..Default::default()
    };
    let spec = template.spec.get_or_insert_with(Default::default);
    let anti = spec
        .affinity
        .get_or_insert_with(Affinity::default)
        .pod_anti_affinity
        .get_or_insert_with(PodAntiAffinity::default);
    match rule {
        AntiAffinityRule::Preferred(weight) => anti
            .preferred_during_scheduling_ignored_during_execution
            .get_or_insert_with(Vec::new)
            .push(WeightedPodAffinityTerm {
                weight,
                pod_affinity_term: term,
            }),
        AntiAffinityRule::Required => anti
            .required_during_scheduling_ignored_during_execution
            .get_or_insert_with(Vec::new)
            .push(term),
    }
}

/// Makes sure the ReplicaSet of `hash` exists with `replicas` pods (creating it, or scaling it
/// and clearing any scale-down deadline). `revision` is set when given and different.
pub fn ensure(
    cx: &mut Ctx<'_>,
    common: &CommonSpec,
    hash: &str,
    replicas: i32,
    revision: Option<i64>,
) {
    match cx.observed.replica_set(hash).cloned() {
        None => {
            let revision = revision.unwrap_or_else(|| next_revision(cx));
            let rs = build(cx, common, hash, replicas, revision);
            let name = replica_set_name(cx.name(), hash);
            cx.event(
                EventReason::NewReplicaSetCreated,
                Msg::ReplicaSetCreated {
                    rs: name.clone(),
                    revision,
                    replicas,
                },
            );
            // Argo creates it empty and then scales it: both Events, so that notifications on
            // either keep working.
            if replicas > 0 {
                cx.event(
                    EventReason::ScalingReplicaSet,
                    Msg::ReplicaSetScaled {
                        rs: name.clone(),
                        from: 0,
                        to: replicas,
                    },
                );
            }
            cx.sizes.insert(name.clone(), replicas);
            cx.created.push((name, (hash.to_string(), replicas)));
            cx.actions.push(Action::CreateReplicaSet(Box::new(rs)));
        }
        Some(rs) => {
            let scale = rs.replicas != replicas;
            let clear = replicas > 0 && rs.scale_down_deadline.is_some();
            let revision = revision.filter(|r| *r != rs.revision);
            if scale || clear || revision.is_some() {
                if scale {
                    cx.event(
                        EventReason::ScalingReplicaSet,
                        Msg::ReplicaSetScaled {
                            rs: rs.name.clone(),
                            from: rs.replicas,
                            to: replicas,
                        },
                    );
                    cx.sizes.insert(rs.name.clone(), replicas);
                }
                cx.actions.push(Action::UpdateReplicaSet {
                    name: rs.name.clone(),
                    replicas: scale.then_some(replicas),
                    deadline: if clear {
                        DeadlineChange::Clear
                    } else {
                        DeadlineChange::Keep
                    },
                    revision,
                });
            }
        }
    }
}

/// `spec.replicas` this reconcile gives the ReplicaSet `name` (0 once deleted), if it changes
/// it.
pub fn planned_size(cx: &Ctx<'_>, name: &str) -> Option<i32> {
    cx.sizes.get(name).copied()
}

/// Schedules the scale-down of a ReplicaSet `delay_secs` from now, unless one is scheduled.
pub fn schedule_scale_down(cx: &mut Ctx<'_>, hash: &str, delay_secs: i64) {
    let Some(rs) = cx.observed.replica_set(hash).cloned() else {
        return;
    };
    // Its size as this reconcile leaves it (scaled up a moment ago, say).
    let replicas = cx.sizes.get(&rs.name).copied().unwrap_or(rs.replicas);
    if replicas == 0 || rs.scale_down_deadline.is_some() || cx.deadlines.contains_key(&rs.name) {
        return;
    }
    let mut at = crate::time::add_secs(cx.now, delay_secs);
    // The previous revision of a guarded release keeps its pods for the whole window.
    if let Some(g) = cx.status.guard.as_ref().filter(|g| g.previous == hash) {
        at = at.max(g.until.0);
    }
    cx.deadlines.insert(rs.name.clone(), at);
    cx.actions.push(Action::UpdateReplicaSet {
        name: rs.name,
        replicas: None,
        deadline: DeadlineChange::Set(at),
        revision: None,
    });
}

fn scale_to_zero(cx: &mut Ctx<'_>, rs: &ObservedReplicaSet, why: ScaleDownWhy) {
    // A deadline set earlier in this run is already on its way: clear it too.
    let has_deadline = rs.scale_down_deadline.is_some() || cx.deadlines.contains_key(&rs.name);
    cx.event(
        EventReason::ScalingReplicaSet,
        Msg::ReplicaSetScaledToZero {
            rs: rs.name.clone(),
            from: rs.replicas,
            why,
        },
    );
    cx.sizes.insert(rs.name.clone(), 0);
    cx.actions.push(Action::UpdateReplicaSet {
        name: rs.name.clone(),
        replicas: Some(0),
        deadline: if has_deadline {
            DeadlineChange::Clear
        } else {
            DeadlineChange::Keep
        },
        revision: None,
    });
}

/// Scales down and prunes ReplicaSets that no longer serve: everything not in `protected`.
/// A ReplicaSet with a deadline is scaled down once it passes; one without is scaled down now
/// (it never served production traffic); at most `delay_limit` may wait at once.
pub fn clean_up(
    cx: &mut Ctx<'_>,
    protected: &[&str],
    delay_limit: Option<usize>,
    history_limit: i32,
) {
    let mut waiting: Vec<(ObservedReplicaSet, Timestamp)> = Vec::new();
    let mut idle: Vec<ObservedReplicaSet> = Vec::new();
    let observed: Vec<ObservedReplicaSet> = cx.observed.replica_sets.clone();
    for rs in observed {
        if protected.contains(&rs.hash.as_str()) {
            continue;
        }
        if rs.replicas == 0 {
            idle.push(rs);
            continue;
        }
        let deadline = cx
            .deadlines
            .get(&rs.name)
            .copied()
            .or(rs.scale_down_deadline);
        match deadline {
            Some(at) if cx.now >= at => {
                scale_to_zero(cx, &rs, ScaleDownWhy::DelayPassed);
                idle.push(rs);
            }
            Some(at) => waiting.push((rs, at)),
            None => {
                scale_to_zero(cx, &rs, ScaleDownWhy::NeverServed);
                idle.push(rs);
            }
        }
    }
    waiting.sort_by_key(|(rs, _)| std::cmp::Reverse(rs.revision));
    let limit = delay_limit.unwrap_or(usize::MAX);
    for (i, (rs, at)) in waiting.into_iter().enumerate() {
        if i < limit {
            cx.wake_at(at);
        } else {
            scale_to_zero(cx, &rs, ScaleDownWhy::BeyondRevisionLimit);
            idle.push(rs);
        }
    }
    idle.sort_by_key(|rs| std::cmp::Reverse(rs.revision));
    let keep = usize::try_from(history_limit).unwrap_or(0);
    // A ReplicaSet a Service selects once this reconcile's switches apply is not pruned (the
    // preview Service stays on an aborted revision): the history may then hold one more.
    let mut selects: BTreeMap<&str, &str> = cx
        .observed
        .services
        .values()
        .filter_map(|s| Some((s.name.as_str(), s.selected_hash.as_deref()?)))
        .collect();
    for a in &cx.actions {
        if let Action::SwitchService { service, to, .. } = a {
            selects.insert(service.as_str(), to.as_str());
        }
    }
    let selected = |rs: &ObservedReplicaSet| selects.values().any(|h| *h == rs.hash);
    let pruned: Vec<ObservedReplicaSet> = idle
        .iter()
        .skip(keep)
        .filter(|rs| !selected(rs))
        .cloned()
        .collect();
    for rs in &pruned {
        cx.event(
            EventReason::ReplicaSetPruned,
            Msg::ReplicaSetPruned {
                rs: rs.name.clone(),
                revision: rs.revision,
                limit: history_limit,
            },
        );
        cx.sizes.insert(rs.name.clone(), 0);
        cx.deleted.push(rs.name.clone());
        cx.actions.push(Action::DeleteReplicaSet {
            name: rs.name.clone(),
        });
    }
}

/// Fills the replica counts and the selector of the status with Argo Rollouts' meaning
/// (`rollout/sync.go` `calculateBaseStatus`, `rollout/bluegreen.go`
/// `syncRolloutStatusBlueGreen`, `rollout/canary.go` `syncRolloutStatusCanary`):
///
/// - `replicas`: non-terminated pods of every ReplicaSet (their `status.replicas`);
/// - `updatedReplicas`: those of the current revision's ReplicaSet;
/// - `readyReplicas`, `availableReplicas`, `HPAReplicas` (pods again) and `selector`: for
///   blue/green, of the ReplicaSet the active Service selects once this run is applied (the
///   selector then carries its pod-template hash); otherwise (a canary, or a blue/green
///   rollout whose active Service selects nothing yet) of every ReplicaSet, with the
///   rollout's own selector.
///
/// Everything is read from what the ReplicaSets report, so the status stays the same when
/// the next reconcile observes this run's result: a ReplicaSet deleted by this run counts
/// nothing (Argo deletes only ReplicaSets without pods), one created counts nothing yet, and
/// ready and available pods are counted only up to what the ReplicaSet keeps both as observed
/// and once this run's scales apply (a report that lags a scale-down counts no pod that is
/// going away).
pub fn count(cx: &mut Ctx<'_>, common: &CommonSpec, hash: &str) {
    #[derive(Clone, Copy, Default)]
    struct Counts {
        pods: i32,
        ready: i32,
        available: i32,
    }
    let observed: &Observed = cx.observed;
    let counted = |rs: &ObservedReplicaSet| {
        let keeps = cx.sizes.get(&rs.name).copied().unwrap_or(rs.replicas);
        let kept = |n: i32| n.min(rs.replicas).min(keeps).max(0);
        Counts {
            pods: rs.pods.max(0),
            ready: kept(rs.ready),
            available: kept(rs.available),
        }
    };
    let live: Vec<&ObservedReplicaSet> = observed
        .replica_sets
        .iter()
        .filter(|rs| !cx.deleted.contains(&rs.name))
        .collect();
    let all = live.iter().fold(Counts::default(), |acc, rs| {
        let c = counted(rs);
        Counts {
            pods: acc.pods + c.pods,
            ready: acc.ready + c.ready,
            available: acc.available + c.available,
        }
    });
    let updated = live
        .iter()
        .find(|rs| rs.hash == hash)
        .map_or(0, |rs| counted(rs).pods);
    // The hash the active Service selects once this run applies, when it has a ReplicaSet
    // (one created by this very run, as on a first deploy, reports no pod yet).
    let active = cx
        .rollout
        .spec
        .strategy
        .blue_green
        .as_ref()
        .and(cx.status.blue_green.as_ref())
        .and_then(|b| b.active_selector.as_deref())
        .filter(|h| {
            live.iter().any(|rs| rs.hash == *h) || cx.created.iter().any(|(_, (c, _))| c == h)
        });
    let (serving, selector) = match active {
        Some(h) => (
            live.iter()
                .find(|rs| rs.hash == h)
                .map_or_else(Counts::default, |rs| counted(rs)),
            format_selector(&common.selector, Some(h)),
        ),
        None => (all, format_selector(&common.selector, None)),
    };
    cx.status.replicas = Some(all.pods);
    cx.status.updated_replicas = Some(updated);
    cx.status.ready_replicas = Some(serving.ready);
    cx.status.available_replicas = Some(serving.available);
    cx.status.hpa_replicas = Some(serving.pods);
    cx.status.selector = selector;
}

/// A label selector in the string form of Kubernetes' `metav1.FormatLabelSelector`, which
/// Argo Rollouts writes to `status.selector` and an HPA parses: one requirement per
/// `matchLabels` entry (`k=v`) and per `matchExpressions` entry (`k in (a,b)`,
/// `k notin (a,b)`, `k`, `!k`; values sorted), sorted by key. `hash` adds the
/// [`POD_TEMPLATE_HASH`] label, as in the selector of that revision's ReplicaSet. `None` for
/// an empty selector (Kubernetes would print `<none>`, which selects nothing).
pub fn format_selector(selector: &LabelSelector, hash: Option<&str>) -> Option<String> {
    let mut labels = selector.match_labels.clone().unwrap_or_default();
    if let Some(h) = hash {
        labels.insert(POD_TEMPLATE_HASH.into(), h.into());
    }
    let mut requirements: Vec<(&str, String)> = labels
        .iter()
        .map(|(k, v)| (k.as_str(), format!("{k}={v}")))
        .collect();
    for e in selector.match_expressions.iter().flatten() {
        let mut values = e.values.clone().unwrap_or_default();
        values.sort();
        let k = e.key.as_str();
        let text = match e.operator.as_str() {
            "In" => format!("{k} in ({})", values.join(",")),
            "NotIn" => format!("{k} notin ({})", values.join(",")),
            "Exists" => k.to_string(),
            "DoesNotExist" => format!("!{k}"),
            // Validation rejects any other operator before a status is written.
            _ => continue,
        };
        requirements.push((k, text));
    }
    requirements.sort_by(|a, b| a.0.cmp(b.0));
    (!requirements.is_empty()).then(|| {
        requirements
            .into_iter()
            .map(|(_, text)| text)
            .collect::<Vec<_>>()
            .join(",")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, PodSpec};

    fn template(image: String) -> PodTemplateSpec {
        PodTemplateSpec {
            metadata: None,
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "web".into(),
                    image: Some(image),
                    ..Default::default()
                }],
                ..Default::default()
            }),
        }
    }

    #[test]
    fn the_template_annotation_is_compact_json_and_left_out_when_too_large() {
        let small = template("web:1".into());
        assert_eq!(
            template_annotation(&small).as_deref(),
            Some(r#"{"spec":{"containers":[{"image":"web:1","name":"web"}]}}"#)
        );
        let huge = template("w".repeat(MAX_TEMPLATE_ANNOTATION));
        assert_eq!(template_annotation(&huge), None);
    }
}
