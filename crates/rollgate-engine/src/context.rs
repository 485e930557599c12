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
            self.resumed_event();
        }
        if let Some(mut o) = self.outcome.take() {
            o.reason = self.progressing_reason(o.reason);
            self.not_completed_event(o.completed);
            let now = self.now;
            let message = self.text(&o.message);
            let status_message = match &o.message {
                Msg::Waiting(w) if o.reason == ConditionReason::ProgressDeadlineExceeded => {
                    self.text(&Msg::DeadlineExceeded(w.clone()))
                }
                _ => message.clone(),
            };
            let failure = self
                .observed
                .replica_failure(self.status.current_pod_hash.as_deref());
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
            // As Argo: one reason per condition type, whichever way its status is.
            let status = |b: bool| if b { "True" } else { "False" };
            set_condition(
                conds,
                ConditionType::Available,
                status(o.available),
                ConditionReason::AvailableReason,
                "",
                now,
            );
            set_condition(
                conds,
                ConditionType::Paused,
                status(o.phase == RolloutPhase::Paused),
                ConditionReason::RolloutPaused,
                "",
                now,
            );
            set_condition(
                conds,
                ConditionType::Completed,
                status(o.completed),
                ConditionReason::RolloutCompleted,
                "",
                now,
            );
            set_condition(
                conds,
                ConditionType::Healthy,
                status(o.phase == RolloutPhase::Healthy),
                ConditionReason::RolloutHealthy,
                "",
                now,
            );
            // As Argo Rollouts (and the Deployment controller it follows): a ReplicaSet's
            // failure to create or delete pods, copied from the new one else an older one, and
            // gone once none reports one.
            // Its times are the ReplicaSet condition's transition time (Argo's
            // `ReplicaSetToRolloutCondition`), else the first reconcile that saw it.
            match failure {
                Some(f) => {
                    put_condition(
                        conds,
                        ConditionType::ReplicaFailure.as_str(),
                        f.status.as_str(),
                        f.reason.map_or("", ConditionReason::as_str),
                        &f.message,
                        now,
                    );
                    if let Some(at) = f.since
                        && let Some(c) = conds
                            .iter_mut()
                            .find(|c| c.type_ == ConditionType::ReplicaFailure.as_str())
                    {
                        c.last_transition_time = Some(Time(at));
                        c.last_update_time = Some(Time(at));
                    }
                }
                None => conds.retain(|c| c.type_ != ConditionType::ReplicaFailure.as_str()),
            }
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

impl Ctx<'_> {
    /// The reason of the Progressing condition. Instead of `ReplicaSetUpdated`, Argo's names
    /// for a release whose ReplicaSet this reconcile created (`NewReplicaSetCreated`), or
    /// found already there when no Progressing condition was recorded (`FoundNewReplicaSet`);
    /// as in Argo, either stays until the release makes progress (its progress fingerprint
    /// changes).
    fn progressing_reason(&self, reason: ConditionReason) -> ConditionReason {
        if reason != ConditionReason::ReplicaSetUpdated {
            return reason;
        }
        let Some(hash) = self.status.current_pod_hash.as_deref() else {
            return reason;
        };
        if self.created.iter().any(|(_, (h, _))| h == hash) {
            return ConditionReason::NewReplicaSetCreated;
        }
        let read = self.rollout.status.as_ref();
        let recorded = read.and_then(|s| {
            s.conditions
                .iter()
                .find(|c| c.type_ == ConditionType::Progressing.as_str())
        });
        let Some(recorded) = recorded else {
            return if self.observed.replica_set(hash).is_some() {
                ConditionReason::FoundNewReplicaSet
            } else {
                reason
            };
        };
        let same_release = read.and_then(|s| s.current_pod_hash.as_deref()) == Some(hash);
        let no_progress = read
            .and_then(|s| s.progress.as_ref())
            .map(|p| &p.fingerprint)
            == self.status.progress.as_ref().map(|p| &p.fingerprint);
        [
            ConditionReason::NewReplicaSetCreated,
            ConditionReason::FoundNewReplicaSet,
        ]
        .into_iter()
        .find(|r| recorded.reason == r.as_str() && same_release && no_progress)
        .unwrap_or(reason)
    }

    /// `RolloutResumed` when the pauses the status read had are all gone and the release was
    /// not aborted (an abort ends the pauses too), as Argo publishes it.
    fn resumed_event(&mut self) {
        let was_paused = self
            .rollout
            .status
            .as_ref()
            .is_some_and(|s| !s.pause_conditions.is_empty());
        if was_paused && self.status.pause_conditions.is_empty() && self.status.aborted_at.is_none()
        {
            self.event(EventReason::RolloutResumed, Msg::Resumed);
        }
    }

    /// `RolloutNotCompleted` when the Completed condition becomes False (it was True, or is
    /// set for the first time), as Argo publishes it.
    fn not_completed_event(&mut self, completed: bool) {
        if completed {
            return;
        }
        let was_false = self
            .status
            .conditions
            .iter()
            .any(|c| c.type_ == ConditionType::Completed.as_str() && c.status == "False");
        if was_false {
            return;
        }
        let msg = Msg::NotCompleted {
            revision: self.status.current_revision,
            hash: self.status.current_pod_hash.clone().unwrap_or_default(),
        };
        self.event(EventReason::RolloutNotCompleted, msg);
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
    put_condition(
        conditions,
        type_.as_str(),
        status,
        reason.as_str(),
        message,
        now,
    );
}

/// [`set_condition`] with the type and reason as written (a reason copied from a ReplicaSet's
/// condition may be none of ours).
fn put_condition(
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
