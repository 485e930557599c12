//! The pure side of analysis: everything about an AnalysisRun except the queries themselves.
//!
//! Per reconcile of a run the controller calls [`plan`] (which measurements are due, with
//! `{{args.NAME}}` substituted safely into the query and into the metric's settings:
//! `interval`, `initialDelay`, `count` and the limits, as Argo Rollouts does), performs them,
//! and hands the outcomes to [`record`], which classifies each measurement (conditions in CEL,
//! no data by `noDataPolicy`, provider errors), applies the limits, and decides the metric and
//! run phases (`Running` from the first reconcile until decided), with a message naming the
//! deciding metric, its value and the condition. [`validate_template`] reports broken
//! templates (unparsable durations, invalid CEL, PromQL that does not parse, bad `rangeQuery`
//! bounds, unknown `noDataPolicy` or `podTemplateHashValue`, settings that are no number or
//! duration with the template's default arguments) before any traffic moves, and
//! [`validate_settings`] the settings with a Rollout's arguments; the controller's Rollout
//! validation and `rollgate lint` both go through them.
//!
//! A `sequential` metric (a rollgate extension) is judged by the anytime-valid test of
//! [`crate::judge::sequential`] on four counters (events and requests of the canary and of the
//! baseline): [`plan`] renders the four queries ([`Due::counters`]), the controller reads them
//! and hands [`Outcome::Counters`] to [`record`], which continues the test stored in the
//! metric's result. See `sequential.rs` for the rules (among them what a query without data
//! means, and `noDataPolicy` for a metric that ends without evidence).
//!
//! A `kayenta` metric (a rollgate extension) is judged by the fixed-horizon judge of
//! [`crate::judge::kayenta`]: [`plan`] renders each of its queries for the canary and the
//! baseline ([`Due::samples`]), the controller reads them and hands [`Outcome::Samples`] to
//! [`record`], which adds them to the samples stored in the metric's result and judges them
//! at the `count`-th measurement. See `kayenta.rs` for the rules.

mod args;
mod condition;
mod kayenta;
mod promql;
mod provider;
mod run;
mod sequential;
mod spec;
mod value;

pub use args::{render_plain, render_query};
pub use condition::{
    Condition, MAX_CONDITION_COST, MAX_CONDITION_LEN, ResultShape, check_type, compile, cost,
    evaluate,
};
pub use kayenta::{
    KayentaQuery, KayentaSpec, MAX_KAYENTA_METRICS, MAX_KAYENTA_SAMPLES, SamplePair, SampleQueries,
    SampleSide, kayenta_spec, render_samples, sample_reading,
};
pub use promql::check as check_promql;
pub use provider::{
    Credentials, PrometheusQuery, RangeSpec, SecretAuth, TimeRange, check_address,
    check_header_value, counter_provider, prometheus_query, range_spec, sample_provider,
    secret_auth,
};
pub use run::{Due, MAX_MESSAGE, Measured, Outcome, Plan, RunDecision, plan, record};
pub use sequential::{
    CounterQueries, CounterReadings, CounterSeries, SequentialSpec, counter_reading,
    render_counters, sequential_spec,
};
pub use spec::{
    ArgSource, ArgSpec, ArgValues, HashSource, MAX_RETENTION, MetricSpec, NoDataPolicy, arg_spec,
    metric_spec, run_metrics, validate_args, validate_retention, validate_settings,
    validate_template,
};
pub use value::{MAX_VALUE_TEXT, MetricValue, Sample, Series, number};
