//! A pipeline's spec, validated: every mistake names its field.

use std::collections::BTreeSet;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use rollgate_api::pipeline::SecretKey;
use rollgate_api::{PromotionPipeline, PromotionPipelineStatus, RolloutAnalysis};

use super::PipelineDecision;
use crate::validate::Problem;

/// One stage, validated.
#[derive(Debug, Clone)]
pub struct Stage {
    /// Name.
    pub name: String,
    /// Position in the pipeline.
    pub index: usize,
    /// The Rollout's name.
    pub rollout: String,
    /// Its namespace.
    pub namespace: String,
    /// Another cluster's kubeconfig Secret.
    pub cluster: Option<SecretKey>,
    /// Verification after Healthy.
    pub verification: Option<RolloutAnalysis>,
    /// Indexes of the stages that must verify a release first (none for the first stage).
    pub after: Vec<usize>,
    /// Soak in every `after` stage, seconds.
    pub soak_secs: i64,
    /// Distinct approvals needed.
    pub approvals: i32,
    /// Promotion windows.
    pub windows: crate::window::Windows,
    /// Promote when the gates open.
    pub auto_promote: bool,
}

/// A valid pipeline.
#[derive(Debug, Clone)]
pub struct ValidPipeline {
    /// Containers whose images travel (empty: all of the first stage's Rollout).
    pub containers: Vec<String>,
    /// Stages in order.
    pub stages: Vec<Stage>,
    /// Nothing is promoted.
    pub paused: bool,
}

fn problem(field: impl Into<String>, expected: impl Into<String>) -> Problem {
    Problem {
        field: field.into(),
        expected: expected.into(),
    }
}

/// Validates a pipeline.
///
/// # Errors
///
/// Every problem, each naming its field.
pub fn validate(p: &PromotionPipeline) -> Result<ValidPipeline, Vec<Problem>> {
    let mut problems = Vec::new();
    let namespace = p.metadata.namespace.clone().unwrap_or_default();
    if p.spec.stages.is_empty() {
        problems.push(problem("spec.stages", "at least one stage expected"));
    }
    for (i, c) in p.spec.containers.iter().enumerate() {
        if c.trim().is_empty() {
            problems.push(problem(
                format!("spec.containers[{i}]"),
                "a container name expected",
            ));
        }
    }
    let mut names: Vec<&str> = Vec::new();
    let mut rollouts = BTreeSet::new();
    let mut stages = Vec::new();
    for (i, s) in p.spec.stages.iter().enumerate() {
        let f = format!("spec.stages[{i}]");
        if s.name.trim().is_empty() {
            problems.push(problem(format!("{f}.name"), "a stage name expected"));
        } else if names.contains(&s.name.as_str()) {
            problems.push(problem(
                format!("{f}.name"),
                format!("unique stage names expected, {:?} is used twice", s.name),
            ));
        }
        if s.rollout.name.trim().is_empty() {
            problems.push(problem(
                format!("{f}.rollout.name"),
                "a Rollout name expected",
            ));
        }
        let ns = s
            .rollout
            .namespace
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| namespace.clone());
        let cluster = s
            .rollout
            .cluster
            .as_ref()
            .map(|c| c.kubeconfig_secret.clone());
        if let Some(c) = &cluster
            && c.name.trim().is_empty()
        {
            problems.push(problem(
                format!("{f}.rollout.cluster.kubeconfigSecret.name"),
                "a Secret name expected",
            ));
        }
        let key = (
            cluster.as_ref().map(|c| c.name.clone()),
            ns.clone(),
            s.rollout.name.clone(),
        );
        if !rollouts.insert(key) {
            problems.push(problem(
                format!("{f}.rollout"),
                format!(
                    "each stage drives its own Rollout: {ns}/{} is already a stage's",
                    s.rollout.name
                ),
            ));
        }
        let after: Vec<usize> = match (&s.after, i) {
            (Some(a), 0) if !a.is_empty() => {
                problems.push(problem(
                    format!("{f}.after"),
                    "none on the first stage (CI applies its Rollout)",
                ));
                Vec::new()
            }
            (_, 0) => Vec::new(),
            (None, _) => vec![i - 1],
            (Some(a), _) if a.is_empty() => {
                problems.push(problem(
                    format!("{f}.after"),
                    "at least one earlier stage expected (omit it for the stage before)",
                ));
                Vec::new()
            }
            (Some(a), _) => a
                .iter()
                .enumerate()
                .filter_map(|(j, name)| {
                    let found = names.iter().position(|n| n == name);
                    if found.is_none() {
                        problems.push(problem(
                            format!("{f}.after[{j}]"),
                            format!("the name of an earlier stage expected, got {name:?}"),
                        ));
                    }
                    found
                })
                .collect(),
        };
        let soak_secs = match s.soak.as_deref() {
            None => 0,
            Some(text) => match rollgate_api::duration::parse(text) {
                Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
                Err(e) => {
                    problems.push(problem(format!("{f}.soak"), e.to_string()));
                    0
                }
            },
        };
        if i == 0 && s.soak.is_some() {
            problems.push(problem(
                format!("{f}.soak"),
                "none on the first stage (nothing comes before it)",
            ));
        }
        let approvals = match s.approvals {
            Some(n) if n < 0 => {
                problems.push(problem(
                    format!("{f}.approvals"),
                    format!("must be >= 0, got {n}"),
                ));
                0
            }
            Some(n) => n,
            None => 0,
        };
        if i == 0 && (approvals > 0 || !s.windows.is_empty() || s.auto_promote.is_some()) {
            problems.push(problem(
                f.clone(),
                "no approvals, windows or autoPromote on the first stage: CI applies its \
                 Rollout, nothing is promoted into it",
            ));
        }
        if let Some(v) = &s.verification
            && v.templates.is_empty()
        {
            problems.push(problem(
                format!("{f}.verification.templates"),
                "at least one template reference expected",
            ));
        }
        let windows = match crate::window::parse(&format!("{f}.windows"), &s.windows) {
            Ok(w) => w,
            Err(p) => {
                problems.extend(p);
                crate::window::Windows::default()
            }
        };
        names.push(s.name.as_str());
        stages.push(Stage {
            name: s.name.clone(),
            index: i,
            rollout: s.rollout.name.clone(),
            namespace: ns,
            cluster,
            verification: s.verification.clone(),
            after,
            soak_secs,
            approvals,
            windows,
            auto_promote: s.auto_promote.unwrap_or(true),
        });
    }
    if problems.is_empty() {
        Ok(ValidPipeline {
            containers: p.spec.containers.clone(),
            stages,
            paused: p.spec.paused,
        })
    } else {
        Err(problems)
    }
}

/// The decision for an invalid pipeline: nothing moves, the status says why.
pub fn invalid(
    p: &PromotionPipeline,
    problems: &[Problem],
    now: k8s_openapi::jiff::Timestamp,
) -> PipelineDecision {
    let message = format!(
        "InvalidSpec: {}",
        problems
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    );
    let previous = p.status.clone().unwrap_or_default();
    let since = previous
        .conditions
        .iter()
        .find(|c| c.type_ == "InvalidSpec" && c.status == "True")
        .map(|c| c.last_transition_time.clone())
        .unwrap_or(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(now));
    let mut status = PromotionPipelineStatus {
        observed_generation: p.metadata.generation,
        message: Some(message.clone()),
        summary: Some("InvalidSpec".into()),
        ..previous
    };
    status.conditions = vec![Condition {
        type_: "InvalidSpec".into(),
        status: "True".into(),
        reason: "InvalidSpec".into(),
        message,
        observed_generation: p.metadata.generation,
        last_transition_time: since,
    }];
    PipelineDecision {
        status,
        ..Default::default()
    }
}
