//! The engine's tests, in one binary (one build and link instead of one per file): each module
//! is one area of the engine; `support` holds the test World shared by them.

mod pipeline_support;
mod support;

mod abort_semantics;
mod alerts;
mod analysis_errors;
mod anti_affinity;
mod argo_reasons;
mod bluegreen;
mod bluegreen_analysis;
mod bluegreen_cleanup;
mod bluegreen_control;
mod bluegreen_deadline;
mod bluegreen_rollback;
mod canary;
mod canary_cleanup;
mod canary_control;
mod canary_properties;
mod canary_steps;
mod canary_traffic;
mod ephemeral_metadata;
mod experiment;
mod guard_analysis;
mod header_mirror_routes;
mod invalid_spec;
mod judge_kayenta;
mod judge_sequential;
mod measure;
mod measure_args;
mod measure_kayenta;
mod measure_sequential;
mod paused_spec;
mod pipeline;
mod pipeline_properties;
mod properties;
mod replica_failure;
mod restart_paused;
mod rollback_window;
mod scale_mid_update;
mod status_counts;
mod strategy_switch;
mod unsupported_fields;
mod windows;
mod workload_ref;
mod zero_replicas;
