//! The rollgate-alerts integration tests, in one binary (one build and link instead of one per
//! file): each module tests one area.

mod common;

mod alertmanager;
mod garbage;
mod prometheus;
