//! The rollgate-promtest integration tests, in one binary (one build and link instead of one per
//! file): each module tests one area.

mod alertmanager;
mod harness;
