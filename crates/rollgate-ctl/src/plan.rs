//! What a command does to a Rollout: the patch to send and the message to print. Pure: no
//! I/O, no clock (`now` is an input).
//!
//! Every patch is a JSON merge patch that carries the `metadata.resourceVersion` of the
//! Rollout it was planned from, so the API server refuses it (409 Conflict) when the Rollout
//! changed in between, and the command is planned again on fresh data.

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use rollgate_api::{CanaryStep, PauseReason, Rollout, RolloutStatus};
use serde_json::{Value, json};

use crate::command::Command;
use crate::error::CtlError;
use crate::{history, image};

/// Which endpoint a patch goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchTarget {
    /// The `status` subresource (`abort`, `promoteFull`, `pauseConditions`,
    /// `currentStepIndex`).
    Status,
    /// The Rollout itself (`spec`; `metadata` for the resourceVersion).
    Spec,
}

/// What a command does: one merge patch, and what to tell the user once it is applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Where the patch is sent.
    pub target: PatchTarget,
    /// The JSON merge patch, `metadata.resourceVersion` included when the Rollout had one.
    pub patch: Value,
    /// The line to print on success.
    pub message: String,
}

/// Plans `cmd` on `rollout`. `replica_sets` are the Rollout's ReplicaSets (only `undo` reads
/// them; see [`Command::needs_replica_sets`]); `now` is the time `restart` writes.
pub fn plan(
    cmd: &Command,
    rollout: &Rollout,
    replica_sets: &[ReplicaSet],
    now: Timestamp,
) -> Result<Plan, CtlError> {
    let s = Subject::new(rollout);
    match cmd {
        Command::Promote { full: false } => promote(&s),
        Command::Promote { full: true } => promote_full(&s),
        Command::Abort => abort(&s),
        Command::Retry => retry(&s),
        Command::Pause => pause(&s),
        Command::Resume => resume(&s),
        Command::Undo { to_revision } => history::undo(&s, *to_revision, replica_sets),
        Command::SetImage { images } => image::set_image(&s, images),
        Command::Restart => restart(&s, now),
    }
}

/// The Rollout a command works on, with the names used in messages.
pub(crate) struct Subject<'a> {
    /// The Rollout as read.
    pub rollout: &'a Rollout,
    /// `NAMESPACE/NAME`.
    pub id: String,
    /// `NAME`.
    pub name: String,
}

impl<'a> Subject<'a> {
    fn new(rollout: &'a Rollout) -> Self {
        let name = rollout.metadata.name.clone().unwrap_or_default();
        let namespace = rollout.metadata.namespace.as_deref().unwrap_or("default");
        Self {
            rollout,
            id: format!("{namespace}/{name}"),
            name,
        }
    }

    /// The status, or an empty one when the controller has not written any yet.
    pub fn status(&self) -> RolloutStatus {
        self.rollout.status.clone().unwrap_or_default()
    }

    fn patch(&self, key: &str, body: Value) -> Value {
        let mut patch = json!({ key: body });
        if let Some(rv) = &self.rollout.metadata.resource_version {
            patch["metadata"] = json!({ "resourceVersion": rv });
        }
        patch
    }

    /// A status-subresource plan.
    pub fn status_plan(&self, status: Value, message: String) -> Plan {
        Plan {
            target: PatchTarget::Status,
            patch: self.patch("status", status),
            message,
        }
    }

    /// A plan patching the Rollout's spec.
    pub fn spec_plan(&self, spec: Value, message: String) -> Plan {
        Plan {
            target: PatchTarget::Spec,
            patch: self.patch("spec", spec),
            message,
        }
    }

    /// The success message: `rollout 'NAMESPACE/NAME' <what>`.
    pub fn done(&self, what: &str) -> String {
        format!("rollout '{}' {what}", self.id)
    }

    /// Serializes part of a patch.
    pub fn encode<T: serde::Serialize>(&self, value: &T) -> Result<Value, CtlError> {
        serde_json::to_value(value).map_err(|source| CtlError::Encode {
            rollout: self.id.clone(),
            source,
        })
    }

    fn aborted(&self) -> bool {
        self.rollout.status.as_ref().and_then(|s| s.abort) == Some(true)
    }

    fn spec_paused(&self) -> bool {
        self.rollout.spec.paused == Some(true)
    }

    /// Fails unless a release is in flight: the current pod-template hash is not the stable one.
    fn require_in_flight(&self, action: &'static str) -> Result<(), CtlError> {
        let status = self.status();
        let state = match (&status.current_pod_hash, &status.stable_rs) {
            (None, _) => "the controller has not reported a current revision yet".to_string(),
            (Some(current), Some(stable)) if current == stable => {
                let phase = status
                    .phase
                    .map(|p| format!(", phase {p}"))
                    .unwrap_or_default();
                format!("the current template {current} is the stable one{phase}")
            }
            _ => return Ok(()),
        };
        Err(CtlError::NothingInFlight {
            rollout: self.id.clone(),
            action,
            state,
        })
    }
}

fn promote(s: &Subject<'_>) -> Result<Plan, CtlError> {
    if s.aborted() {
        return Err(CtlError::Aborted {
            rollout: s.id.clone(),
            name: s.name.clone(),
        });
    }
    if s.spec_paused() {
        return Err(CtlError::PausedBySpec {
            rollout: s.id.clone(),
            name: s.name.clone(),
        });
    }
    s.require_in_flight("promote")?;
    let status = s.status();
    let canary = s.rollout.spec.strategy.canary.as_ref();
    let step_index = status.current_step_index.unwrap_or(0);
    let step = |i: i32| {
        let steps = &canary?.steps;
        usize::try_from(i).ok().and_then(|i| steps.get(i))
    };
    // Steps are numbered from 1 in messages, as in the controller's ("step 2/6").
    let total = canary.map_or(0, |c| c.steps.len());
    let label = format!("step {}/{total}", step_index.saturating_add(1));
    if !status.pause_conditions.is_empty() {
        let reasons: Vec<PauseReason> = status.pause_conditions.iter().map(|p| p.reason).collect();
        let detail = match step(step_index) {
            Some(st) if st.pause.is_some() && reasons.contains(&PauseReason::CanaryPauseStep) => {
                format!("pause at {label} skipped")
            }
            _ => {
                let names: Vec<&str> = reasons.iter().map(|r| r.as_str()).collect();
                format!("{} ended", names.join(", "))
            }
        };
        return Ok(s.status_plan(
            json!({ "pauseConditions": null }),
            s.done(&format!("promoted ({detail})")),
        ));
    }
    if let Some(st) = step(step_index) {
        return Ok(s.status_plan(
            json!({ "currentStepIndex": step_index.saturating_add(1) }),
            s.done(&format!("promoted ({} at {label} skipped)", describe(st))),
        ));
    }
    Err(CtlError::NotPaused {
        rollout: s.id.clone(),
    })
}

/// What a canary step does, in a few words.
fn describe(step: &CanaryStep) -> String {
    if let Some(w) = step.set_weight {
        format!("setWeight {w}")
    } else if step.pause.is_some() {
        "pause".to_string()
    } else if step.analysis.is_some() {
        "analysis".to_string()
    } else if step.set_canary_scale.is_some() {
        "setCanaryScale".to_string()
    } else {
        "step".to_string()
    }
}

fn promote_full(s: &Subject<'_>) -> Result<Plan, CtlError> {
    if s.aborted() {
        return Err(CtlError::Aborted {
            rollout: s.id.clone(),
            name: s.name.clone(),
        });
    }
    s.require_in_flight("promote")?;
    let mut message = s.done("fully promoted (remaining steps, pauses and analysis skipped)");
    if s.spec_paused() {
        message.push_str(&format!(
            "; spec.paused is set: it takes effect after `rollgate resume {}`",
            s.name
        ));
    }
    Ok(s.status_plan(json!({ "promoteFull": true }), message))
}

fn abort(s: &Subject<'_>) -> Result<Plan, CtlError> {
    if s.aborted() {
        return Err(CtlError::AlreadyAborted {
            rollout: s.id.clone(),
            name: s.name.clone(),
        });
    }
    s.require_in_flight("abort")?;
    Ok(s.status_plan(
        json!({ "abort": true }),
        s.done("aborted (traffic goes back to the stable version)"),
    ))
}

fn retry(s: &Subject<'_>) -> Result<Plan, CtlError> {
    // Paused because an analysis could not measure (its metric source failed): retry measures
    // again with a new AnalysisRun; the release stays where it is meanwhile.
    let analysis_error = s
        .status()
        .pause_conditions
        .iter()
        .any(|p| p.reason == PauseReason::AnalysisError);
    if analysis_error && !s.aborted() {
        return Ok(s.status_plan(
            json!({ "abort": false }),
            s.done("retried (the analysis that could not measure runs again)"),
        ));
    }
    if !s.aborted() {
        return Err(CtlError::NotAborted {
            rollout: s.id.clone(),
        });
    }
    Ok(s.status_plan(
        json!({ "abort": false }),
        s.done("retried (the release starts again)"),
    ))
}

fn pause(s: &Subject<'_>) -> Result<Plan, CtlError> {
    if s.spec_paused() {
        return Err(CtlError::AlreadyPaused {
            rollout: s.id.clone(),
        });
    }
    Ok(s.spec_plan(json!({ "paused": true }), s.done("paused")))
}

fn resume(s: &Subject<'_>) -> Result<Plan, CtlError> {
    if !s.spec_paused() {
        return Err(CtlError::NotPausedBySpec {
            rollout: s.id.clone(),
        });
    }
    Ok(s.spec_plan(json!({ "paused": false }), s.done("resumed")))
}

fn restart(s: &Subject<'_>, now: Timestamp) -> Result<Plan, CtlError> {
    // `restartAt` is written in whole seconds and pods older than it restart: round up, so a
    // pod started earlier in the same second is not missed.
    let at = match now.subsec_nanosecond() {
        n if n > 0 => Timestamp::from_second(now.as_second().saturating_add(1)).unwrap_or(now),
        _ => now,
    };
    let at = s.encode(&Time(at))?;
    let shown = at.as_str().unwrap_or_default().to_string();
    Ok(s.spec_plan(
        json!({ "restartAt": at }),
        s.done(&format!(
            "restarting (pods created before {shown} are replaced)"
        )),
    ))
}
