//! The end-to-end tests, in one binary (one build and link instead of one per file): each
//! module runs the real controller against the simulated cluster for one area.

mod alert_rules;
mod alerts;
mod analysis;
mod argo_semantics;
mod bluegreen;
mod canary;
mod events;
mod experiment;
mod harness;
mod header_mirror_routes;
mod kayenta;
mod leader;
mod pipeline;
mod replica_failure;
mod sequential;
mod undecodable;
mod workload_ref;
