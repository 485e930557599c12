//! The rollgate-prometheus integration tests, in one binary (one build and link instead of one per
//! file): each module tests one area.

mod common;

mod backfill;
mod errors;
mod headers_auth;
mod live;
mod tls;
