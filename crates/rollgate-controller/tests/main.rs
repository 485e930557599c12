//! The rollgate-controller integration tests, in one binary (one build and link instead of one per
//! file): each module tests one area.

mod alert_receiver;
mod analysis_run;
mod readiness;
