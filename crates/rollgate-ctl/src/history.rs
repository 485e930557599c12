//! `undo`: the revisions kept as ReplicaSets, and putting one's pod template back.

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use rollgate_api::labels::{POD_TEMPLATE_HASH, REVISION, ROLLOUT_NAME, TEMPLATE};
use serde_json::json;

use crate::error::CtlError;
use crate::experiment::is_experiment_replica_set;
use crate::merge_patch;
use crate::plan::{Plan, Subject};

/// A ReplicaSet of the rollout with its revision number.
struct Revision<'a> {
    number: i64,
    replica_set: &'a ReplicaSet,
}

/// The rollout's ReplicaSets that carry a revision, by ascending revision. ReplicaSets of
/// other rollouts, ones without a readable revision annotation, and the ReplicaSets of
/// `experiment` steps (copies of a template beside a release, never a revision, whatever
/// annotations they carry) are left out.
fn revisions<'a>(name: &str, replica_sets: &'a [ReplicaSet]) -> Vec<Revision<'a>> {
    let mut out: Vec<Revision<'a>> = replica_sets
        .iter()
        .filter(|rs| !is_experiment_replica_set(rs))
        .filter(|rs| {
            rs.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(ROLLOUT_NAME))
                .is_some_and(|owner| owner == name)
        })
        .filter_map(|rs| {
            let number = rs
                .metadata
                .annotations
                .as_ref()?
                .get(REVISION)?
                .trim()
                .parse()
                .ok()?;
            Some(Revision {
                number,
                replica_set: rs,
            })
        })
        .collect();
    out.sort_by_key(|r| r.number);
    out
}

/// A ReplicaSet's pod template as the Rollout had it: without the pod-template-hash label
/// (and without the label map or metadata when that leaves them empty).
pub(crate) fn rollout_template(replica_set: &ReplicaSet) -> Option<PodTemplateSpec> {
    let mut template = replica_set.spec.template.clone()?;
    if let Some(meta) = template.metadata.as_mut() {
        if let Some(labels) = meta.labels.as_mut() {
            labels.remove(POD_TEMPLATE_HASH);
            if labels.is_empty() {
                meta.labels = None;
            }
        }
        if *meta == ObjectMeta::default() {
            template.metadata = None;
        }
    }
    Some(template)
}

/// The pod template to write back for a revision: the Rollout's template as the controller
/// kept it in the ReplicaSet's [`TEMPLATE`] annotation (it hashes to the ReplicaSet's
/// pod-template-hash, so the engine takes the fast rollback), else the ReplicaSet's own
/// template. The flag is `false` for the fallback: on a real API server that template carries
/// the pod defaults the server filled in, so it may hash differently.
fn kept_template(replica_set: &ReplicaSet) -> (Option<PodTemplateSpec>, bool) {
    let sent = replica_set
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(TEMPLATE))
        .and_then(|t| serde_json::from_str::<PodTemplateSpec>(t).ok());
    match sent {
        Some(t) => (Some(t), true),
        None => (rollout_template(replica_set), false),
    }
}

/// Plans `undo [--to-revision N]`.
pub(crate) fn undo(
    s: &Subject<'_>,
    to_revision: Option<i64>,
    replica_sets: &[ReplicaSet],
) -> Result<Plan, CtlError> {
    let revisions = revisions(&s.name, replica_sets);
    let available: Vec<i64> = {
        let mut v: Vec<i64> = revisions.iter().map(|r| r.number).collect();
        v.dedup();
        v
    };
    let status = s.status();
    let target = match to_revision {
        Some(n) => {
            revisions
                .iter()
                .find(|r| r.number == n)
                .ok_or_else(|| CtlError::NoRevision {
                    rollout: s.id.clone(),
                    revision: n,
                    available: available.clone(),
                })?
        }
        None => {
            let current = status
                .current_revision
                .or_else(|| available.last().copied())
                .unwrap_or(0);
            revisions
                .iter()
                .rev()
                .find(|r| r.number < current)
                .ok_or_else(|| CtlError::NoPreviousRevision {
                    rollout: s.id.clone(),
                    current,
                    available: available.clone(),
                })?
        }
    };
    let rs_name = target.replica_set.metadata.name.clone().unwrap_or_default();
    let (template, as_sent) = kept_template(target.replica_set);
    let template = template
        .filter(|t| t.spec.is_some())
        .ok_or_else(|| CtlError::NoTemplate {
            rollout: s.id.clone(),
            what: format!("ReplicaSet {rs_name}"),
        })?;
    let current = s.rollout.spec.template.as_ref();
    let rs_hash = target
        .replica_set
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(POD_TEMPLATE_HASH));
    // The status describes the spec as it is now, and its current hash is the target's.
    let reported_current = status.observed_generation.is_some()
        && status.observed_generation == s.rollout.metadata.generation
        && rs_hash.is_some()
        && status.current_pod_hash.as_ref() == rs_hash;
    if current == Some(&template) || reported_current {
        return Err(CtlError::AlreadyCurrent {
            rollout: s.id.clone(),
            revision: target.number,
        });
    }
    let before = match current {
        Some(t) => s.encode(t)?,
        None => json!({}),
    };
    let after = s.encode(&template)?;
    let images = images(&template);
    let mut message = s.done(&format!(
        "rolled back to revision {} (ReplicaSet {rs_name}{images})",
        target.number
    ));
    if !as_sent {
        message.push_str(&format!(
            "; warning: ReplicaSet {rs_name} has no readable {TEMPLATE} annotation, so its own \
             template was written back: if the API server filled defaults into it, this starts \
             a new release instead of a fast rollback"
        ));
    }
    Ok(s.spec_plan(
        json!({ "template": merge_patch::diff(&before, &after) }),
        message,
    ))
}

/// `, image web:1` / `, images web:1, side:2` for the message.
fn images(template: &PodTemplateSpec) -> String {
    let images: Vec<&str> = template
        .spec
        .iter()
        .flat_map(|s| &s.containers)
        .filter_map(|c| c.image.as_deref())
        .collect();
    match images.as_slice() {
        [] => String::new(),
        [one] => format!(", image {one}"),
        many => format!(", images {}", many.join(", ")),
    }
}
