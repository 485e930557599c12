//! One module per subcommand.

pub mod controller;
pub mod crds;
pub mod ctl;
pub mod demo;
mod demo_alerts;
mod demo_pipeline;
pub mod dev;
pub mod get;
pub mod lint;
pub mod pipeline;
pub mod simulate;
