//! The typed vocabulary every crate shares: pause reasons, abort reasons, Event reasons,
//! condition types and condition reasons.
//!
//! The engine decides with these values, the controller labels metrics with them, the CLI and
//! `rollgate get` read them back. Messages and Event notes are rendered from typed data and are
//! never parsed: only the values here carry meaning.
//!
//! Where a concept is Argo Rollouts' too, the value is Argo's name for it, so that scripts
//! (`kubectl wait --for=jsonpath=...`), alert rules and notification triggers written for Argo
//! keep working; the doc comment of each such value names where Argo uses it. Values without
//! such a note are rollgate's own concepts.

/// Defines a string-valued enum: serde, JSON schema `enum`, `as_str`, `Display`, `FromStr`,
/// `ALL` and comparison with `&str` (handy in tests and at the CLI's edges).
macro_rules! string_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident { $( $(#[$vmeta:meta])* $variant:ident ),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(serde::Serialize, serde::Deserialize, schemars::JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $( $(#[$vmeta])* $variant ),+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The value as written in the API.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => stringify!($variant)),+ }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::reasons::UnknownValue;
            fn from_str(s: &str) -> Result<Self, $crate::reasons::UnknownValue> {
                Self::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| $crate::reasons::UnknownValue {
                        kind: stringify!($name),
                        value: s.to_string(),
                        expected: Self::ALL.iter().map(|v| v.as_str()).collect(),
                    })
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl PartialEq<$name> for &str {
            fn eq(&self, other: &$name) -> bool {
                *self == other.as_str()
            }
        }
    };
}
pub(crate) use string_enum;

/// A string that is none of an enum's values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} {value:?}: expected one of {}", expected.join(", "))]
pub struct UnknownValue {
    /// The enum's name.
    pub kind: &'static str,
    /// What was given.
    pub value: String,
    /// The values allowed.
    pub expected: Vec<&'static str>,
}

string_enum! {
    /// Why a release waits (`status.pauseConditions[].reason`, Argo Rollouts' names).
    pub enum PauseReason {
        /// A canary `pause` step (Argo: `PauseReasonCanaryPauseStep`).
        CanaryPauseStep,
        /// A blue/green preview waits for promotion, manual or `autoPromotionSeconds` (Argo:
        /// `PauseReasonBlueGreenPause`).
        BlueGreenPause,
        /// An analysis was inconclusive: a human decides (Argo:
        /// `PauseReasonInconclusiveAnalysis`).
        InconclusiveAnalysisRun,
        /// An analysis could not measure (`errorPolicy: Pause`): retry, promote or abort.
        AnalysisError,
        /// An analysis of an `experiment` step was inconclusive: a human decides (Argo:
        /// `PauseReasonInconclusiveExperiment`).
        InconclusiveExperiment,
    }
}

string_enum! {
    /// Why a release was aborted (`status.abortReason`, label of `rollgate_aborts_total`).
    pub enum AbortReason {
        /// A human wrote `status.abort: true` (`rollgate abort`).
        User,
        /// No progress for `progressDeadlineSeconds` with `progressDeadlineAbort`.
        ProgressDeadline,
        /// An AnalysisRun failed.
        AnalysisFailed,
        /// An AnalysisRun could not measure and its `errorPolicy` is `Abort`.
        AnalysisError,
        /// An alert the release is to blame for fired (`spec.alerts`), during the release or
        /// inside its guard window.
        AlertFiring,
        /// The analysis of `spec.guard` failed inside the guard window.
        GuardAnalysisFailed,
    }
}

string_enum! {
    /// Reason of a Kubernetes Event the controller publishes on a Rollout.
    ///
    /// Argo Rollouts' notification triggers are named after these (`on-rollout-completed` for
    /// `RolloutCompleted`, `on-analysis-run-failed` for `AnalysisRunFailed`, ...).
    pub enum EventReason {
        /// A new revision starts a release (Argo: `RolloutUpdatedReason`).
        RolloutUpdated,
        /// A newer revision replaced the release in flight.
        RolloutSuperseded,
        /// The template is the stable revision again (back at once), or an older revision whose
        /// ReplicaSet exists (fast rollback): steps, pauses and analysis are skipped. The note
        /// says which (Argo: the canary's `SkipSteps` Event).
        SkipSteps,
        /// The release paused (Argo: `RolloutPausedReason`).
        RolloutPaused,
        /// Every pause ended, and not by an abort (Argo: `RolloutResumedReason`).
        RolloutResumed,
        /// The release was aborted (Argo: `RolloutAbortedReason`).
        RolloutAborted,
        /// An aborted release is retried (Argo: `RolloutRetryReason`).
        RolloutRetry,
        /// A pause ended by promotion, or blue/green promotion started.
        RolloutPromoted,
        /// `autoPromotionSeconds` elapsed.
        AutoPromotion,
        /// The new revision is stable (Argo: `RolloutCompletedReason`).
        RolloutCompleted,
        /// The Completed condition became False: a release started (Argo:
        /// `RolloutNotCompletedReason`).
        RolloutNotCompleted,
        /// A canary step is done (Argo: `RolloutStepCompletedReason`).
        RolloutStepCompleted,
        /// No progress for `progressDeadlineSeconds` (Argo: `TimedOutReason`).
        ProgressDeadlineExceeded,
        /// The spec is invalid (Argo: `InvalidSpecReason`).
        InvalidSpec,
        /// An AnalysisRun was started.
        AnalysisRunCreated,
        /// An AnalysisRun of the release measures (Argo: `"AnalysisRun" + phase`).
        AnalysisRunRunning,
        /// An AnalysisRun of the release succeeded (Argo: `"AnalysisRun" + phase`).
        AnalysisRunSuccessful,
        /// An AnalysisRun of the release failed (Argo: `"AnalysisRun" + phase`).
        AnalysisRunFailed,
        /// An AnalysisRun of the release could not measure (Argo: `"AnalysisRun" + phase`).
        AnalysisRunError,
        /// An AnalysisRun of the release was inconclusive (Argo: `"AnalysisRun" + phase`).
        AnalysisRunInconclusive,
        /// An analysis that could not measure measures again.
        AnalysisRetried,
        /// An `experiment` step started its ReplicaSets (the note names them).
        ExperimentCreated,
        /// Every ReplicaSet of an experiment is available: its analyses start and its
        /// duration counts (Argo's Experiment phase `Running`).
        ExperimentRunning,
        /// An experiment succeeded: its step is done.
        ExperimentSuccessful,
        /// An analysis of an experiment failed: the release is aborted.
        ExperimentFailed,
        /// An analysis of an experiment could not measure: the release waits.
        ExperimentError,
        /// An analysis of an experiment was inconclusive: the release waits for a human.
        ExperimentInconclusive,
        /// A ReplicaSet was created (Argo: `NewReplicaSetReason`).
        NewReplicaSetCreated,
        /// A ReplicaSet was scaled (Argo: `ScalingReplicaSetReason`).
        ScalingReplicaSet,
        /// A ReplicaSet beyond the history limit was deleted.
        ReplicaSetPruned,
        /// The Deployment or ReplicaSet `spec.workloadRef` names was scaled by its
        /// `scaleDown` policy; the note names it and the replica counts. (Argo scales it
        /// without an Event, only a log line, so the name is rollgate's, after
        /// `ScalingReplicaSet`.)
        ScalingWorkload,
        /// A Service of the strategy (active, preview, stable or canary: the note names the
        /// role) selects another revision (Argo: the `SwitchService` Event).
        SwitchService,
        /// A Service the current strategy no longer names got its plain selector back.
        ServiceReleased,
        /// Events of the Rollout were left out: it published more than its Event budget.
        EventsThrottled,
        /// The guard window of a fully promoted release ended without a blamed alert.
        GuardPassed,
        /// The analysis of `spec.guard` ended without a verdict (inconclusive, or it could not
        /// measure): nothing is rolled back, alerts still guard the window.
        GuardAnalysisInconclusive,
        /// HTTPRoute weights changed (Argo: `TrafficWeightUpdatedReason`).
        TrafficWeightUpdated,
        /// `restartAt`: a restart began.
        RolloutRestarted,
        /// `restartAt`: one pod was deleted to be replaced.
        PodRestarted,
        /// A pipeline recorded a new artifact (a Release).
        ReleaseRecorded,
        /// A pipeline wrote a release's images to a stage's Rollout.
        ReleasePromoted,
        /// A release is Healthy and verified in a stage.
        ReleaseVerified,
        /// A release failed in a stage: it is Bad.
        ReleaseFailed,
        /// A stage got its last good release back after a failure.
        LastGoodRestored,
    }
}

impl EventReason {
    /// True for Events of type Warning: something went wrong.
    pub fn is_warning(self) -> bool {
        matches!(
            self,
            Self::RolloutAborted
                | Self::ProgressDeadlineExceeded
                | Self::AnalysisRunFailed
                | Self::AnalysisRunError
                | Self::ExperimentFailed
                | Self::ExperimentError
                | Self::InvalidSpec
                | Self::GuardAnalysisInconclusive
                | Self::ReleaseFailed
        )
    }

    /// True for Events that report a change the controller makes to another object in the same
    /// reconcile (a Service switch, a scale, a route weight, a created run). They are published
    /// even when the status write that follows fails: the change is done and will not be
    /// decided again. Every other Event reports a transition recorded in the status and is
    /// published only once that status is written (a retry decides it again).
    pub fn reports_action(self) -> bool {
        matches!(
            self,
            Self::ScalingReplicaSet
                | Self::ScalingWorkload
                | Self::NewReplicaSetCreated
                | Self::ReplicaSetPruned
                | Self::SwitchService
                | Self::ServiceReleased
                | Self::TrafficWeightUpdated
                | Self::AnalysisRunCreated
                | Self::ExperimentCreated
                | Self::PodRestarted
        )
    }
}

string_enum! {
    /// Type of a Rollout condition (Argo: `RolloutConditionType`, the same names, except
    /// `AlertSource`).
    pub enum ConditionType {
        /// A release is moving (or why it is not).
        Progressing,
        /// The Service with production traffic selects enough available pods.
        Available,
        /// Waiting for a human or a timer.
        Paused,
        /// The current revision is stable.
        Completed,
        /// Phase is Healthy.
        Healthy,
        /// The spec is invalid.
        InvalidSpec,
        /// Whether the alert source of `spec.alerts` could be read at the last look.
        AlertSource,
        /// A ReplicaSet of the rollout cannot create or delete pods (a quota, an admission
        /// webhook): its own `ReplicaFailure` condition, copied, the new revision's first
        /// (Argo: `RolloutReplicaFailure`).
        ReplicaFailure,
    }
}

string_enum! {
    /// Reason of a Rollout condition.
    ///
    /// As in Argo, the Available, Paused, Completed and Healthy conditions keep one reason
    /// whatever their status (`AvailableReason`, `RolloutPaused`, `RolloutCompleted`,
    /// `RolloutHealthy`): the status says which way it is.
    pub enum ConditionReason {
        /// Progressing: ReplicaSets are being created or scaled (Argo:
        /// `ReplicaSetUpdatedReason`).
        ReplicaSetUpdated,
        /// Progressing: the reconcile created the ReplicaSet of the release (Argo:
        /// `NewReplicaSetReason`).
        NewReplicaSetCreated,
        /// Progressing: the first reconcile found the ReplicaSet of the release already there
        /// (Argo: `FoundNewRSReason`).
        FoundNewReplicaSet,
        /// Progressing: the current revision is available (Argo: `NewRSAvailableReason`).
        NewReplicaSetAvailable,
        /// Progressing: the release is paused; Paused, True or False (Argo:
        /// `RolloutPausedReason`).
        RolloutPaused,
        /// Progressing: waiting for an AnalysisRun.
        AnalysisRunning,
        /// Progressing: an `experiment` step runs.
        ExperimentRunning,
        /// Progressing: the release was aborted (Argo: `RolloutAbortedReason`).
        RolloutAborted,
        /// Progressing: no progress for `progressDeadlineSeconds` (Argo: `TimedOutReason`).
        ProgressDeadlineExceeded,
        /// Available, True or False (Argo: `AvailableReason`).
        AvailableReason,
        /// Completed, True or False (Argo: `RolloutCompletedReason`).
        RolloutCompleted,
        /// Healthy, True or False (Argo: `RolloutHealthyReason`).
        RolloutHealthy,
        /// InvalidSpec: the spec is invalid (Argo: `InvalidSpecReason`).
        InvalidSpec,
        /// Progressing: `restartAt` replaces pods.
        RolloutRestarting,
        /// AlertSource: the source answered.
        AlertSourceAvailable,
        /// AlertSource: unreachable or garbage: no alert acts, nothing is promoted on it.
        AlertSourceUnavailable,
        /// ReplicaFailure: the ReplicaSet controller could not create a pod (the reason the
        /// Kubernetes ReplicaSet controller gives, which Argo copies).
        FailedCreate,
        /// ReplicaFailure: the ReplicaSet controller could not delete a pod (likewise).
        FailedDelete,
    }
}

impl ConditionReason {
    /// The status of the Progressing condition with this reason: False once the release
    /// cannot go on by itself (aborted, out of time), Unknown while paused (as Argo Rollouts
    /// and Deployments report a paused rollout), True otherwise.
    pub fn progressing_status(self) -> &'static str {
        match self {
            Self::RolloutAborted | Self::ProgressDeadlineExceeded => "False",
            Self::RolloutPaused => "Unknown",
            _ => "True",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_through_text_and_json() {
        for r in PauseReason::ALL {
            assert_eq!(r.as_str().parse::<PauseReason>(), Ok(*r));
            let json = serde_json::to_value(r).unwrap_or_default();
            assert_eq!(json, serde_json::json!(r.as_str()));
        }
        for r in EventReason::ALL {
            assert_eq!(r.to_string().parse::<EventReason>(), Ok(*r));
        }
    }

    /// Argo Rollouts' own values, as its users' scripts, alert rules and notification triggers
    /// spell them: each must be one of ours. Sources (argoproj/argo-rollouts):
    /// `pkg/apis/rollouts/v1alpha1/types.go` (`PauseReason*`, `RolloutConditionType`),
    /// `utils/conditions/conditions.go` (`*Reason` constants), `rollout/service.go`
    /// (`SwitchService`), `rollout/analysis.go` (`"AnalysisRun" + phase`) and the built-in
    /// notification triggers of `docs/features/notifications.md`.
    #[test]
    fn argo_rollouts_names_parse() {
        for name in [
            "CanaryPauseStep",
            "BlueGreenPause",
            "InconclusiveAnalysisRun",
        ] {
            assert_eq!(
                name.parse::<PauseReason>().map(PauseReason::as_str),
                Ok(name)
            );
        }
        for name in [
            "RolloutUpdated",
            "NewReplicaSetCreated",
            "ScalingReplicaSet",
            "SwitchService",
            "SkipSteps",
            "RolloutPaused",
            "RolloutResumed",
            "RolloutAborted",
            "RolloutRetry",
            "RolloutCompleted",
            "RolloutNotCompleted",
            "RolloutStepCompleted",
            "TrafficWeightUpdated",
            "AnalysisRunRunning",
            "AnalysisRunSuccessful",
            "AnalysisRunFailed",
            "AnalysisRunError",
            "AnalysisRunInconclusive",
        ] {
            assert_eq!(
                name.parse::<EventReason>().map(EventReason::as_str),
                Ok(name)
            );
        }
        for name in [
            "Progressing",
            "Available",
            "Paused",
            "Completed",
            "Healthy",
            "InvalidSpec",
            "ReplicaFailure",
        ] {
            assert_eq!(
                name.parse::<ConditionType>().map(ConditionType::as_str),
                Ok(name)
            );
        }
        for name in [
            "ReplicaSetUpdated",
            "NewReplicaSetCreated",
            "FoundNewReplicaSet",
            "NewReplicaSetAvailable",
            "RolloutPaused",
            "RolloutAborted",
            "ProgressDeadlineExceeded",
            "AvailableReason",
            "RolloutCompleted",
            "RolloutHealthy",
            "InvalidSpec",
            "FailedCreate",
            "FailedDelete",
        ] {
            assert_eq!(
                name.parse::<ConditionReason>().map(ConditionReason::as_str),
                Ok(name)
            );
        }
    }

    /// The names rollgate used before it took Argo's are gone: one concept, one name.
    #[test]
    fn names_argo_spells_otherwise_are_not_values() {
        assert!("InconclusiveAnalysis".parse::<PauseReason>().is_err());
        for old in [
            "ActiveServiceSwitched",
            "PreviewServiceSwitched",
            "StableServiceSwitched",
            "CanaryServiceSwitched",
            "RolloutRetried",
            "RollbackToStable",
            "RollbackToRevision",
        ] {
            assert!(old.parse::<EventReason>().is_err(), "{old}");
        }
        for old in ["NotAvailable", "RolloutNotCompleted", "RolloutNotHealthy"] {
            assert!(old.parse::<ConditionReason>().is_err(), "{old}");
        }
    }

    /// Argo publishes a failed or errored AnalysisRun as a Warning (`rollout/analysis.go`).
    #[test]
    fn failed_and_errored_analysis_runs_are_warnings() {
        assert!(EventReason::AnalysisRunFailed.is_warning());
        assert!(EventReason::AnalysisRunError.is_warning());
        assert!(!EventReason::AnalysisRunInconclusive.is_warning());
        assert!(!EventReason::AnalysisRunSuccessful.is_warning());
        assert!(!EventReason::AnalysisRunRunning.is_warning());
    }

    #[test]
    fn an_unknown_value_names_what_was_expected() {
        let e = "Paused".parse::<AbortReason>().err();
        let text = e.map(|e| e.to_string()).unwrap_or_default();
        assert_eq!(
            text,
            "unknown AbortReason \"Paused\": expected one of User, ProgressDeadline, \
             AnalysisFailed, AnalysisError, AlertFiring, GuardAnalysisFailed"
        );
    }
}
