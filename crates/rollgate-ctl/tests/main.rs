//! The rollgate-ctl integration tests, in one binary (one build and link instead of one per
//! file): each module tests one area.

mod experiment;
mod plan;
mod run;
mod status;
