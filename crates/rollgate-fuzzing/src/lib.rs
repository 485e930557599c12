//! The bodies of rollgate's fuzz targets, as plain functions from bytes.
//!
//! `fuzz/` (a cargo-fuzz project, outside the workspace) wraps each of [`TARGETS`] in a
//! `fuzz_target!`; this crate's tests run every file of `fuzz/regressions/<target>/` (crashing
//! inputs, kept forever) and of the seed corpus `fuzz/corpus/<target>/` through the same
//! function. A target never catches a panic: a panic is a bug of the code it drives.
//!
//! | target | input | drives |
//! | --- | --- | --- |
//! | `rollout` | a Rollout and what the controller observes, YAML or JSON | `decode::rollout`, `validate`, `reconcile` |
//! | `analysis_template` | a template or an AnalysisRun | `validate_template`, `plan`, `record` (CEL) |
//! | `pipeline` | a PromotionPipeline, its Releases, Approvals and stage Rollouts | `pipeline::validate`, windows, `pipeline::reconcile` |
//! | `lint` | files, each starting at a line `#=== NAME` | `rollgate_lint::lint` |
//! | `scenario` | a scenario file | `Scenario::parse` and what is read from it before running |
//! | `sim_request` | HTTP requests, separated by a line `=====` | `SimCluster::respond` |

mod input;
mod lint;
mod pipeline;
mod rollout;
mod scenario;
mod sim;
mod template;

pub use lint::lint;
pub use pipeline::pipeline;
pub use rollout::rollout;
pub use scenario::scenario;
pub use sim::sim_request;
pub use template::analysis_template;

/// A target's body: it returns for any input, and panics only on a bug.
pub type Target = fn(&[u8]);

/// Every target, by the name of its directory under `fuzz/corpus/` and `fuzz/regressions/`
/// and of its binary under `fuzz/fuzz_targets/`.
pub const TARGETS: &[(&str, Target)] = &[
    ("rollout", rollout),
    ("analysis_template", analysis_template),
    ("pipeline", pipeline),
    ("lint", lint),
    ("scenario", scenario),
    ("sim_request", sim_request),
];
