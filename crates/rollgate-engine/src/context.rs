//! Working state of one engine run: inputs, the status being built, collected actions.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use rollgate_api::{Rollout, RolloutCondition, RolloutPhase, RolloutStatus};

use crate::Input;
use crate::action::{Action, Decision, Event};
use crate::observed::Observed;
use crate::validate::Problem;

/// Condition types.
pub mod cond {
    /// A release is moving (or why it is not).
    pub const PROGRESSING: &str = "Progressing";
    /// The Service with production traffic selects enough available pods.
    pub const AVAILABLE: &str = "Available";
    /// Waiting for a human or a timer.
    pub const PAUSED: &str = "Paused";
    /// The current revision is stable.
    pub const COMPLETED: &str = "Completed";
    /// Phase is Healthy.
    pub const HEALTHY: &str = "Healthy";
    /// The spec is invalid.
    pub const INVALID_SPEC: &str = "InvalidSpec";
}

/// Reason of the Progressing condition while a release is aborted.
pub const REASON_ABORTED: &str = "RolloutAborted";
/// Reason of the Progressing condition when the deadline passed without abort.
pub const REASON_DEADLINE: &str = "ProgressDeadlineExceeded";

/// Where the state machine ended this reconcile.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// Phase.
    pub phase: RolloutPhase,
    /// Message (also the Progressing condition's message).
    pub message: String,
    /// Progressing condition status and reason.
    pub progressing: (&'static str, &'static str),
    /// Whether production traffic is served by enough available pods.
    pub available: bool,
    /// Whether the current revision is the stable one.
    pub completed: bool,
}

pub struct Ctx<'a> {
    pub rollout: &'a Rollout,
    pub observed: &'a Observed,
    pub now: Timestamp,
    pub old: RolloutStatus,
    pub status: RolloutStatus,
    pub actions: Vec<Action>,
    pub events: Vec<Event>,
    wake: Option<Timestamp>,
    /// Scale-down deadlines set during this run, by ReplicaSet name.
    pub deadlines: BTreeMap<String, Timestamp>,
    pub outcome: Option<Outcome>,
    /// `status.abort` was written `false`: a user asked for a retry (`rollgate retry`).
    pub retry: bool,
}

impl<'a> Ctx<'a> {
    pub fn new(input: Input<'a>) -> Self {
        let old = input.rollout.status.clone().unwrap_or_default();
        let retry = old.abort == Some(false);
        Self {
            rollout: input.rollout,
            observed: input.observed,
            now: input.now,
            status: old.clone(),
            old,
            actions: Vec::new(),
            events: Vec::new(),
            wake: None,
            deadlines: BTreeMap::new(),
            outcome: None,
            retry,
        }
    }

    pub fn name(&self) -> &str {
        self.rollout.metadata.name.as_deref().unwrap_or_default()
    }

    pub fn event(&mut self, warning: bool, reason: &'static str, note: impl Into<String>) {
        self.events.push(Event {
            warning,
            reason,
            note: note.into(),
        });
    }

    /// Reconcile again no later than `at`.
    pub fn wake_at(&mut self, at: Timestamp) {
        self.wake = Some(self.wake.map_or(at, |w| w.min(at)));
    }

    pub fn old_condition(&self, type_: &str) -> Option<&RolloutCondition> {
        self.old.conditions.iter().find(|c| c.type_ == type_)
    }

    pub fn set_outcome(
        &mut self,
        phase: RolloutPhase,
        message: impl Into<String>,
        progressing: (&'static str, &'static str),
    ) {
        self.outcome = Some(Outcome {
            phase,
            message: message.into(),
            progressing,
            available: false,
            completed: false,
        });
    }

    /// Reports an invalid spec: Degraded, InvalidSpec condition, an Event; no action.
    pub fn invalid(&mut self, problems: &[Problem]) {
        let text = problems
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ");
        let message = format!("InvalidSpec: {text}");
        if self.old_condition(cond::INVALID_SPEC).map(|c| &c.message) != Some(&text) {
            self.event(true, "InvalidSpec", text.clone());
        }
        set_condition(
            &mut self.status.conditions,
            cond::INVALID_SPEC,
            "True",
            "InvalidSpec",
            &text,
            self.now,
        );
        self.status.phase = Some(RolloutPhase::Degraded);
        self.status.message = Some(message);
        self.status.observed_generation = self.rollout.metadata.generation;
        self.outcome = None;
    }

    /// Builds the decision: conditions, phase and message from the outcome.
    pub fn finish(mut self) -> Decision {
        if let Some(o) = self.outcome.take() {
            let now = self.now;
            let conds = &mut self.status.conditions;
            conds.retain(|c| c.type_ != cond::INVALID_SPEC);
            set_condition(
                conds,
                cond::PROGRESSING,
                o.progressing.0,
                o.progressing.1,
                &o.message,
                now,
            );
            let avail = if o.available { "True" } else { "False" };
            let avail_reason = if o.available {
                "AvailableReason"
            } else {
                "NotAvailable"
            };
            set_condition(conds, cond::AVAILABLE, avail, avail_reason, "", now);
            let paused = o.phase == RolloutPhase::Paused;
            set_condition(
                conds,
                cond::PAUSED,
                if paused { "True" } else { "False" },
                if paused {
                    "RolloutPaused"
                } else {
                    "RolloutResumed"
                },
                "",
                now,
            );
            set_condition(
                conds,
                cond::COMPLETED,
                if o.completed { "True" } else { "False" },
                if o.completed {
                    "RolloutCompleted"
                } else {
                    "RolloutNotCompleted"
                },
                "",
                now,
            );
            let healthy = o.phase == RolloutPhase::Healthy;
            set_condition(
                conds,
                cond::HEALTHY,
                if healthy { "True" } else { "False" },
                if healthy {
                    "RolloutHealthy"
                } else {
                    "RolloutNotHealthy"
                },
                "",
                now,
            );
            self.status.phase = Some(o.phase);
            self.status.message = Some(if o.progressing.1 == REASON_DEADLINE {
                format!("{REASON_DEADLINE}: {}", o.message)
            } else {
                o.message
            });
            self.status.observed_generation = self.rollout.metadata.generation;
        }
        let requeue_after = self.wake.map(|at| {
            let secs = at.duration_since(self.now).as_secs_f64().max(0.0);
            // Wake slightly after the deadline so that `now >= deadline` holds then.
            Duration::from_secs_f64(secs) + Duration::from_millis(100)
        });
        Decision {
            actions: self.actions,
            events: self.events,
            status: self.status,
            requeue_after,
        }
    }
}

/// Sets a condition, keeping `lastTransitionTime` while the status is unchanged and
/// `lastUpdateTime` while nothing about it changes.
pub fn set_condition(
    conditions: &mut Vec<RolloutCondition>,
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    now: Timestamp,
) {
    let new = |transition: Timestamp| RolloutCondition {
        type_: type_.to_string(),
        status: status.to_string(),
        reason: reason.to_string(),
        message: message.to_string(),
        last_transition_time: Some(Time(transition)),
        last_update_time: Some(Time(now)),
    };
    match conditions.iter_mut().find(|c| c.type_ == type_) {
        None => conditions.push(new(now)),
        Some(c) if c.status == status && c.reason == reason && c.message == message => {}
        Some(c) => {
            let transition = match (&c.last_transition_time, c.status == status) {
                (Some(t), true) => t.0,
                _ => now,
            };
            *c = new(transition);
        }
    }
}
