//! The typed state of the current release, decoded from the Rollout's status once at the start
//! of a reconcile and encoded into it once at the end.
//!
//! ```text
//!                new revision                    all steps / analysis passed
//!   Healthy ───────────────────▶ Progressing{step} ─────────────────────────▶ Healthy
//!      ▲                          │    ▲      │                                (Completed)
//!      │ back to stable           │    │      │ failed analysis, deadline,
//!      │ (template = stable)      │    │      │ user abort
//!      │                 pause    ▼    │ promote / timer       ▼
//!      └──────────────── Paused{reason, since}        Aborted{reason, at} ──retry──▶ Progressing
//!                                                          │ promoteFull
//!                                                          └──────────────────────▶ Progressing (full)
//! ```
//!
//! The status keeps Argo Rollouts' request channels (`abort`, `promoteFull`,
//! `pauseConditions` + `controllerPause`) that `rollgate` / `kubectl` write; [`Lifecycle`] reads
//! them as typed requests. What the engine itself records (why and when it aborted, when the
//! release last made progress) is typed data in the status too (`abortReason`, `abortedAt`,
//! `progress`), never a message read back.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use rollgate_api::{AbortReason, PauseCondition, PauseReason, ProgressMark, RolloutStatus};
use sha2::{Digest, Sha256};

use crate::message::Waiting;

/// A recorded abort.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Aborted {
    /// Why.
    pub reason: AbortReason,
    /// When.
    pub at: Timestamp,
    /// The abort as rendered when it happened (shown, never interpreted).
    pub message: String,
}

/// The abort side of the release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AbortState {
    /// Not aborted.
    None,
    /// A human wrote `status.abort: true`; the engine has not acted on it yet.
    Requested {
        /// `abortedAt`, if a client set it.
        at: Option<Timestamp>,
    },
    /// Aborted (by the engine or a human); stays until retried or superseded.
    Aborted(Aborted),
    /// A human asked for a retry (`status.abort` false or removed) of an aborted release.
    Retry(Aborted),
}

/// One active pause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pause {
    /// Why.
    pub reason: PauseReason,
    /// Since when (whole seconds).
    pub since: Timestamp,
}

/// Where a release waiting for pods last made progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// Fingerprint of what it waited on.
    pub fingerprint: String,
    /// Since when.
    pub since: Timestamp,
    /// The deadline passed without progress.
    pub exceeded: bool,
}

/// The typed release state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lifecycle {
    /// Abort state.
    pub abort: AbortState,
    /// `status.abort` was written `false`: a retry was asked for in this reconcile (it also
    /// re-measures an analysis that could not measure).
    pub retry_asked: bool,
    /// `promoteFull`: skip the remaining steps, pauses and analysis.
    pub promote_full: bool,
    /// Active pauses.
    pub pauses: Vec<Pause>,
    /// A human promoted: cleared `pauseConditions` while the controller's pause stood.
    pub promoted: bool,
    /// Progress while waiting for pods (from the last reconcile, or this one's).
    pub progress: Option<Progress>,
    /// True once this reconcile waited for pods (else the progress mark is dropped).
    pub waited: bool,
}

impl Lifecycle {
    /// Reads the release state from a status.
    pub fn decode(status: &RolloutStatus) -> Self {
        let record = status.abort_reason.map(|reason| Aborted {
            reason,
            at: status
                .aborted_at
                .as_ref()
                .map_or(Timestamp::UNIX_EPOCH, |t| t.0),
            message: status.abort_message.clone().unwrap_or_default(),
        });
        let abort = match (status.abort, record) {
            (Some(true), Some(r)) => AbortState::Aborted(r),
            (Some(true), None) => AbortState::Requested {
                at: status.aborted_at.as_ref().map(|t| t.0),
            },
            (_, Some(r)) => AbortState::Retry(r),
            (_, None) => AbortState::None,
        };
        Self {
            abort,
            retry_asked: status.abort == Some(false),
            promote_full: status.promote_full == Some(true),
            pauses: status
                .pause_conditions
                .iter()
                .map(|p| Pause {
                    reason: p.reason,
                    since: p.start_time.0,
                })
                .collect(),
            promoted: status.controller_pause == Some(true) && status.pause_conditions.is_empty(),
            progress: status.progress.as_ref().map(|p| Progress {
                fingerprint: p.fingerprint.clone(),
                since: p.since.0,
                exceeded: p.deadline_exceeded,
            }),
            waited: false,
        }
    }

    /// Writes the release state into a status.
    pub fn encode(&self, status: &mut RolloutStatus) {
        let (flag, record, at) = match &self.abort {
            AbortState::None => (None, None, None),
            AbortState::Requested { at } => (Some(true), None, *at),
            AbortState::Aborted(r) => (Some(true), Some(r), Some(r.at)),
            AbortState::Retry(r) => (None, Some(r), Some(r.at)),
        };
        status.abort = flag;
        status.aborted_at = at.map(Time);
        status.abort_reason = record.map(|r| r.reason);
        status.abort_message = record.map(|r| r.message.clone());
        status.promote_full = self.promote_full.then_some(true);
        status.pause_conditions = self
            .pauses
            .iter()
            .map(|p| PauseCondition {
                reason: p.reason,
                start_time: Time(p.since),
            })
            .collect();
        status.controller_pause = (self.promoted || !self.pauses.is_empty()).then_some(true);
        status.progress = self
            .progress
            .as_ref()
            .filter(|_| self.waited)
            .map(|p| ProgressMark {
                fingerprint: p.fingerprint.clone(),
                since: Time(p.since),
                deadline_exceeded: p.exceeded,
            });
    }

    /// The recorded abort, if the release is aborted (or asked to retry one).
    pub fn record(&self) -> Option<&Aborted> {
        match &self.abort {
            AbortState::Aborted(r) | AbortState::Retry(r) => Some(r),
            _ => None,
        }
    }

    /// True when `status.abort` stands: aborted, or asked to abort.
    pub fn abort_flagged(&self) -> bool {
        matches!(
            self.abort,
            AbortState::Aborted(_) | AbortState::Requested { .. }
        )
    }

    /// The start of the pause with `reason`, if it is active.
    pub fn pause(&self, reason: PauseReason) -> Option<Timestamp> {
        self.pauses
            .iter()
            .find(|p| p.reason == reason)
            .map(|p| p.since)
    }

    /// Ends every pause (promoted, no longer needed, or the release moved on).
    pub fn end_pauses(&mut self) {
        self.pauses.clear();
        self.promoted = false;
    }

    /// Clears the state of the current release (new revision or retry).
    pub fn reset(&mut self) {
        self.end_pauses();
        self.abort = AbortState::None;
        self.promote_full = false;
    }
}

/// The fingerprint of what a release waits for: equal exactly when every count and size is.
pub fn fingerprint(waiting: &Waiting) -> String {
    let canonical = serde_json::to_vec(waiting).unwrap_or_default();
    let digest = Sha256::digest(&canonical);
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: i64) -> Timestamp {
        Timestamp::from_second(s).unwrap_or(Timestamp::UNIX_EPOCH)
    }

    #[test]
    fn decode_then_encode_keeps_the_status() {
        let mut status = RolloutStatus {
            abort: Some(true),
            aborted_at: Some(Time(ts(100))),
            abort_reason: Some(AbortReason::AnalysisFailed),
            abort_message: Some("Aborted: step 2/4 analysis r-1 Failed".into()),
            promote_full: None,
            pause_conditions: vec![],
            controller_pause: None,
            ..Default::default()
        };
        let mut copy = status.clone();
        Lifecycle::decode(&status).encode(&mut copy);
        assert_eq!(copy, status);

        status.abort = None;
        status.abort_reason = None;
        status.abort_message = None;
        status.aborted_at = None;
        status.pause_conditions = vec![PauseCondition {
            reason: PauseReason::CanaryPauseStep,
            start_time: Time(ts(50)),
        }];
        status.controller_pause = Some(true);
        let mut copy = status.clone();
        let mut l = Lifecycle::decode(&status);
        l.waited = true;
        l.encode(&mut copy);
        assert_eq!(copy, status);
    }

    #[test]
    fn a_user_promote_and_a_retry_are_typed_requests() {
        let status = RolloutStatus {
            controller_pause: Some(true),
            abort: Some(false),
            abort_reason: Some(AbortReason::User),
            aborted_at: Some(Time(ts(7))),
            ..Default::default()
        };
        let l = Lifecycle::decode(&status);
        assert!(l.promoted);
        assert!(l.retry_asked);
        assert!(matches!(l.abort, AbortState::Retry(ref r) if r.reason == AbortReason::User));
        assert!(!l.abort_flagged());
    }

    #[test]
    fn fingerprints_follow_counts_not_words() {
        let w = |ready| Waiting::Preview {
            rs: "web-abc".into(),
            ready,
            target: 3,
        };
        assert_eq!(fingerprint(&w(1)), fingerprint(&w(1)));
        assert_ne!(fingerprint(&w(1)), fingerprint(&w(2)));
    }
}
