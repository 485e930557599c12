//! The pure side of analysis: everything about an AnalysisRun except the queries themselves.
//!
//! Per reconcile of a run the controller calls [`plan`] (which measurements are due, with
//! `{{args.NAME}}` substituted safely), performs them, and hands the outcomes to [`record`],
//! which classifies each measurement (conditions in CEL, no data by `noDataPolicy`, provider
//! errors), applies the limits, and decides the metric and run phases, with a message naming
//! the deciding metric, its value and the condition. [`validate_template`] reports broken
//! templates (unparsable durations, invalid CEL) before any traffic moves.

mod args;
mod condition;
mod run;
mod spec;
mod value;

pub use args::{render_plain, render_query};
pub use condition::{Condition, compile, evaluate};
pub use run::{Due, Outcome, Plan, RunDecision, plan, record};
pub use spec::{MetricSpec, NoDataPolicy, metric_spec, run_metrics, validate_template};
pub use value::{MetricValue, Sample, Series, number};
