//! Rollgate's rollout engine.
//!
//! One pure function, [`reconcile`], decides everything: given a [`Rollout`](rollgate_api::Rollout),
//! what the controller observed in the cluster ([`Observed`]) and the current time, it returns the
//! [`Action`]s to apply, the [`Event`]s to publish, the new status and when to look again. It does
//! no I/O and reads no clock, so every transition is unit-tested directly.

pub mod action;
pub mod analysis;
mod bluegreen;
mod context;
pub mod hash;
pub mod observed;
mod replicasets;
pub mod time;
pub mod validate;

pub use action::{Action, Decision, DeadlineChange, Event, ServiceRole};
pub use observed::{AnalysisKind, Observed, ObservedAnalysisRun, ObservedReplicaSet, ObservedService};

use context::Ctx;
use k8s_openapi::jiff::Timestamp;
use rollgate_api::Rollout;

/// Everything the engine decides from.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    /// The Rollout as last read (spec, status, metadata).
    pub rollout: &'a Rollout,
    /// What the controller observed in the cluster.
    pub observed: &'a Observed,
    /// The current time.
    pub now: Timestamp,
}

/// Decides the next actions and status of a rollout. Pure and deterministic.
pub fn reconcile(input: Input<'_>) -> Decision {
    let mut cx = Ctx::new(input);
    match validate::validate(input.rollout, input.observed) {
        Err(problems) => cx.invalid(&problems),
        Ok(validate::Valid::BlueGreen(spec)) => bluegreen::reconcile(&mut cx, &spec),
    }
    cx.finish()
}
