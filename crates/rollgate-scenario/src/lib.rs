//! Rollout scenarios: `rollgate simulate FILE...`.
//!
//! A scenario file (see `scenarios/` at the top of the repository) holds the objects a user
//! applies (one Rollout, its Services and AnalysisTemplates), the values the metric source
//! answers per metric and revision over time, a timeline (new images, manual commands,
//! applied manifests, Prometheus outages, deleted pods, approvals) and `expect`ations. With a
//! `PromotionPipeline` among the objects, it holds one Rollout per stage (in their
//! namespaces) and the pipeline's releases are followed and checked too. [`run_blocking`]
//! runs the real controller against the simulated cluster in virtual time and reports every
//! decision; [`expect::check`] compares the outcome with `expect`.

#[cfg(feature = "runner")]
pub mod alerts;
#[cfg(feature = "runner")]
pub mod expect;
pub mod file;
#[cfg(feature = "runner")]
pub mod pipeline;
#[cfg(feature = "runner")]
pub mod runner;
pub mod series;
#[cfg(feature = "runner")]
pub mod source;
#[cfg(feature = "runner")]
pub mod ticker;

#[cfg(feature = "runner")]
pub use expect::{Check, check};
pub use file::Scenario;
#[cfg(feature = "runner")]
pub use runner::{Outcome, run, run_blocking};

/// Errors of loading or running a scenario.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a valid scenario.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// The field and what was expected.
        message: String,
    },
    /// The simulated cluster refused something.
    #[cfg(feature = "runner")]
    #[error(transparent)]
    Local(#[from] rollgate_local::LocalError),
    /// Running the scenario failed.
    #[error("{0}")]
    Run(String),
}
