//! Manual control of rollgate Rollouts: what `rollgate promote`, `abort`, `retry`, `pause`,
//! `resume`, `undo`, `set image` and `restart` do; and the read-only `status` (wait for a
//! verdict, for CI) and `list rollouts`.
//!
//! Two layers, as in the controller:
//!
//! * [`plan()`] is pure: given a [`Command`], the Rollout (and for `undo` its ReplicaSets) and
//!   the time, it refuses with a [`CtlError`] that names the rollout and the problem, or returns
//!   a [`Plan`]: one JSON merge patch, for the status subresource or for the Rollout itself,
//!   carrying the Rollout's `metadata.resourceVersion`, and the message to print.
//! * [`run()`] reads the Rollout (and its ReplicaSets when needed), plans, and sends the patch;
//!   when the API server answers 409 Conflict (the Rollout changed after it was read) it reads
//!   and plans again, up to [`MAX_ATTEMPTS`] times.
//!
//! The CLI only writes what the engine reads: `status.pauseConditions` cleared (promote),
//! `status.currentStepIndex` advanced (promote a canary step), `status.promoteFull`,
//! `status.abort`, `spec.paused`, `spec.template` and `spec.restartAt`. Every decision about
//! what happens next stays in the engine.

pub mod approval;
mod command;
mod error;
mod experiment;
mod history;
mod image;
mod merge_patch;
pub mod pipeline;
mod plan;
pub mod release_status;
mod run;
mod status;
pub mod tree;

pub use command::{Command, ContainerImage};
pub use error::CtlError;
pub use k8s_openapi::jiff::Timestamp;
pub use plan::{PatchTarget, Plan, plan};
pub use run::{FIELD_MANAGER, MAX_ATTEMPTS, run};
pub use status::{RolloutRow, Verdict, list, read_rollout, render_table, wait_status};
