//! Rollgate's API: the `rollgate.dev/v1alpha1` custom resources.
//!
//! * [`Rollout`]: a workload released progressively with a blue/green or canary strategy.
//! * [`AnalysisTemplate`] / [`ClusterAnalysisTemplate`]: reusable metric checks.
//! * [`AnalysisRun`]: one execution of those checks for one analysis point of a rollout.
//!
//! Field names follow Argo Rollouts where the concept is the same. Fields that a user must set
//! are still `Option`s in Rust: an object missing them must deserialize so that the controller
//! can report *which* field is wrong instead of failing to read the object at all.

// kube's `printcolumn(...)` attributes repeat keys such as `type_` by design.
#![allow(clippy::duplicated_attributes)]

pub mod alerts;
pub mod analysis;
pub mod crds;
pub mod decode;
pub mod duration;
pub mod labels;
pub mod matcher;
pub mod pipeline;
pub mod reasons;
pub mod rollout;

pub use alerts::*;
pub use analysis::*;
pub use pipeline::{
    Approval, ApprovalSpec, PromotionPipeline, PromotionPipelineSpec, PromotionPipelineStatus,
    Release, ReleaseSpec, ReleaseStatus,
};
pub use reasons::{
    AbortReason, ConditionReason, ConditionType, EventReason, PauseReason, UnknownValue,
};
pub use rollout::*;

/// API group of every rollgate resource.
pub const GROUP: &str = "rollgate.dev";
/// API version of every rollgate resource.
pub const VERSION: &str = "v1alpha1";
