//! Working state of one engine run: inputs, the status being built, collected actions.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use rollgate_api::{
    ConditionReason, ConditionType, EventReason, Rollout, RolloutCondition, RolloutPhase,
    RolloutStatus,
};

use crate::Input;
use crate::action::{Action, Decision, Event};
use crate::lifecycle::Lifecycle;
use crate::message::{Msg, Wording};
use crate::observed::Observed;
use crate::validate::Problem;

/// Where the state machine ended this reconcile.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// Phase.
    pub phase: RolloutPhase,
    /// Message (also the Progressing condition's message).
    pub message: Msg,
    /// Reason of the Progressing condition (its status follows from it).
    pub reason: ConditionReason,
    /// Whether production traffic is served by enough available pods.
    pub available: bool,
    /// Whether the current revision is the stable one.
    pub completed: bool,
}

pub struct Ctx<'a> {
    pub rollout: &'a Rollout,
    pub observed: &'a Observed,
    pub now: Timestamp,
    pub status: RolloutStatus,
    /// The release state, decoded from the status read and encoded into the new one.
    pub release: Lifecycle,
    pub actions: Vec<Action>,
    pub events: Vec<Event>,
    wake: Option<Timestamp>,
    wording: &'a dyn Wording,
    /// Scale-down deadlines set during this run, by ReplicaSet name.
    pub deadlines: BTreeMap<String, Timestamp>,
    /// `spec.replicas` this run gives ReplicaSets (created or scaled; 0 when deleted), by name.
    pub sizes: BTreeMap<String, i32>,
    /// ReplicaSets this run creates: name, hash and replicas.
    pub created: Vec<(String, (String, i32))>,
    /// ReplicaSets this run deletes.
    pub deleted: Vec<String>,
    /// AnalysisRuns this run creates: name, and the index of the action and of the Event.
    pub created_runs: Vec<(String, usize, usize)>,
    pub outcome: Option<Outcome>,
    /// `spec.alerts` and `spec.guard` of a valid spec.
    pub alerts: Option<crate::alerts::AlertPolicy>,
    invalid: bool,
}

impl<'a> Ctx<'a> {
    pub fn new(input: Input<'a>, wording: &'a dyn Wording) -> Self {
        let status = input.rollout.status.clone().unwrap_or_default();
        Self {
            rollout: input.rollout,
            observed: input.observed,
            now: input.now,
            release: Lifecycle::decode(&status),
            status,
            actions: Vec::new(),
            events: Vec::new(),
            wake: None,
            wording,
            deadlines: BTreeMap::new(),
            sizes: BTreeMap::new(),
            created: Vec::new(),
            deleted: Vec::new(),
            created_runs: Vec::new(),
            outcome: None,
            alerts: None,
            invalid: false,
        }
    }

    pub fn name(&self) -> &str {
        self.rollout.metadata.name.as_deref().unwrap_or_default()
    }

    /// Renders a message with this run's wording.
    pub fn text(&self, msg: &Msg) -> String {
        self.wording.text(msg)
    }

    /// Publishes an Event (Warning or Normal follows from the reason).
    pub fn event(&mut self, reason: EventReason, msg: Msg) {
        let note = self.text(&msg);
        self.events.push(Event {
            warning: reason.is_warning(),
            reason,
            note,
        });
    }

    /// Reconcile again no later than `at`.
    pub fn wake_at(&mut self, at: Timestamp) {
        self.wake = Some(self.wake.map_or(at, |w| w.min(at)));
    }

    pub fn set_outcome(&mut self, phase: RolloutPhase, message: Msg, reason: ConditionReason) {
        self.outcome = Some(Outcome {
            phase,
            message,
            reason,
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
        // Reported once per generation: when the spec becomes invalid, or is changed and still
        // is (the condition carries the current problems meanwhile).
        let reported = self.status.observed_generation == self.rollout.metadata.generation
            && self
                .status
                .conditions
                .iter()
                .any(|c| c.type_ == ConditionType::InvalidSpec.as_str() && c.status == "True");
        if !reported {
            self.event(EventReason::InvalidSpec, Msg::InvalidSpec(text.clone()));
        }
        set_condition(
            &mut self.status.conditions,
            ConditionType::InvalidSpec,
            "True",
            ConditionReason::InvalidSpec,
            &text,
            self.now,
        );
        self.status.phase = Some(RolloutPhase::Degraded);
        self.status.message = Some(message);
        self.status.observed_generation = self.rollout.metadata.generation;
        self.outcome = None;
        self.invalid = true;
    }

    /// Builds the decision: the release state, conditions, phase and message from the outcome.
    pub fn finish(mut self) -> Decision {
        if !self.invalid {
            self.release.encode(&mut self.status);
        }
        if let Some(o) = self.outcome.take() {
            let now = self.now;
            let message = self.text(&o.message);
            let status_message = match &o.message {
                Msg::Waiting(w) if o.reason == ConditionReason::ProgressDeadlineExceeded => {
                    self.text(&Msg::DeadlineExceeded(w.clone()))
                }
                _ => message.clone(),
            };
            let conds = &mut self.status.conditions;
            conds.retain(|c| c.type_ != ConditionType::InvalidSpec.as_str());
            set_condition(
                conds,
                ConditionType::Progressing,
                o.reason.progressing_status(),
                o.reason,
                &message,
                now,
            );
            let (avail, avail_reason) = if o.available {
                ("True", ConditionReason::AvailableReason)
            } else {
                ("False", ConditionReason::NotAvailable)
            };
            set_condition(
                conds,
                ConditionType::Available,
                avail,
                avail_reason,
                "",
                now,
            );
            let (paused, paused_reason) = if o.phase == RolloutPhase::Paused {
                ("True", ConditionReason::RolloutPaused)
            } else {
                ("False", ConditionReason::RolloutResumed)
            };
            set_condition(conds, ConditionType::Paused, paused, paused_reason, "", now);
            let (completed, completed_reason) = if o.completed {
                ("True", ConditionReason::RolloutCompleted)
            } else {
                ("False", ConditionReason::RolloutNotCompleted)
            };
            set_condition(
                conds,
                ConditionType::Completed,
                completed,
                completed_reason,
                "",
                now,
            );
            let (healthy, healthy_reason) = if o.phase == RolloutPhase::Healthy {
                ("True", ConditionReason::RolloutHealthy)
            } else {
                ("False", ConditionReason::RolloutNotHealthy)
            };
            set_condition(
                conds,
                ConditionType::Healthy,
                healthy,
                healthy_reason,
                "",
                now,
            );
            self.status.phase = Some(o.phase);
            self.status.message = Some(status_message);
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
    type_: ConditionType,
    status: &str,
    reason: ConditionReason,
    message: &str,
    now: Timestamp,
) {
    let (type_, reason) = (type_.as_str(), reason.as_str());
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
        // Unchanged: both times stay (bookkeeping of the condition, not a decision).
        Some(c)
            if (c.status.as_str(), c.reason.as_str(), c.message.as_str())
                == (status, reason, message) => {}
        Some(c) => {
            let transition = match (&c.last_transition_time, c.status == status) {
                (Some(t), true) => t.0,
                _ => now,
            };
            *c = new(transition);
        }
    }
}
