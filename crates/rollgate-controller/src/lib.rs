//! Rollgate's controller: the imperative shell around the pure engine.
//!
//! Each reconcile [observes](observe) the cluster, asks [`rollgate_engine::reconcile`] what to
//! do, [applies](apply) the actions with precise patches, publishes the events and writes the
//! status (guarded by `resourceVersion`). It makes no rollout decision of its own.

pub mod alert_receiver;
pub mod alert_source;
pub mod analysis_run;
pub mod apply;
pub mod clock;
pub mod error;
pub mod event_budget;
pub mod leader;
pub mod metrics_source;
pub mod observe;
pub mod pipeline;
pub mod retry;
pub mod run;
pub mod serve;
pub mod telemetry;
pub mod watch_health;

pub use clock::Clock;
pub use error::Error;
pub use leader::{LeaderSettings, run_elected};
pub use run::{Config, run};
pub use serve::{ControllerArgs, ServeError, serve, serve_until_signal};
