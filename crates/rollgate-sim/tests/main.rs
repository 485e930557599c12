//! The rollgate-sim integration tests, in one binary (one build and link instead of one per
//! file): each module tests one area.

mod api;
mod cluster;
mod controller;
mod defaulting;
mod faults;
mod http;
mod identity;
mod kubectl;
mod scale;
mod validation;
