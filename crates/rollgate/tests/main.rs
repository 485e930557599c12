//! The rollgate integration tests, in one binary (one build and link instead of one per
//! file): each module tests one area.

mod support;

mod approval_policy;
mod cli;
mod controller;
mod crds_up_to_date;
mod ctl;
mod demo;
mod dev;
mod get;
mod kubectl_wait;
mod lint;
mod manifests_parse;
mod pipeline;
mod request_timeout;
mod scale;
mod simulate;
