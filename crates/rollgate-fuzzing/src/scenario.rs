//! `scenario`: a scenario file parsed and checked as `rollgate simulate` does before it
//! runs anything, and everything read from it before the run (its Rollouts, pipelines,
//! namespaces, the metric series at a few instants).

use std::time::Duration;

use rollgate_scenario::Scenario;
use rollgate_scenario::file::Series;
use rollgate_scenario::series::{seed, value_at};

use crate::input::text;

/// Instants the metric series are read at, in seconds since the start.
const PROBES: [u64; 5] = [0, 1, 59, 600, 86_400];

/// The input: a scenario file. Checks that parsing and checking it, and reading what the
/// runner reads from a valid one, never panic. The scenario is never run.
pub fn scenario(data: &[u8]) {
    let Some(text) = text(data) else { return };
    let Ok(s) = Scenario::parse(text) else { return };
    let _ = s.rollout();
    let _ = s.rollouts();
    let _ = s.namespaces();
    let _ = s.pipeline(None);
    let _ = s.max_duration();
    for o in &s.objects {
        let _ = s.namespace_of(o);
    }
    for (metric, values) in &s.metrics {
        let keyed = values
            .revisions
            .iter()
            .chain(&values.releases)
            .map(|(k, series)| (k.parse::<i64>().unwrap_or(0), series));
        let all: Vec<(i64, &Series)> = values.default.iter().map(|d| (0, d)).chain(keyed).collect();
        for (n, series) in all {
            for t in PROBES {
                let _ = value_at(series, Duration::from_secs(t), seed(metric, n));
            }
        }
    }
}
