//! `rollgate lint -f FILE...`: checks Rollouts and analysis templates offline, with the same
//! validation the controller applies (templates: durations, CEL conditions, PromQL syntax,
//! `rangeQuery`, enum-like fields), against the other objects in the given files (Services,
//! templates, Secrets, HTTPRoutes). Every problem is printed as `FILE: KIND NAME: FIELD: what was
//! expected`; the exit code is 1 when there is any.
//!
//! A Service, template, Secret or HTTPRoute that a Rollout names but the files do not hold may
//! already be in the cluster (a chart linted one file at a time): that is a warning, and the
//! Rollout is checked as if it existed and were valid. `--strict` makes those warnings
//! problems.

use rollgate_lint::{Report, lint};

use crate::cli::LintArgs;

/// Why a reference is only a warning.
const NOT_IN_FILES: &str = "(not in the linted files: it must already be in the cluster)";

/// Runs `rollgate lint`; returns the exit code.
pub fn run(args: &LintArgs) -> anyhow::Result<i32> {
    let mut files = Vec::new();
    for path in &args.files {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
        files.push((path.display().to_string(), text));
    }
    let Report {
        checked,
        mut problems,
        missing,
    } = lint(&files);
    let mut warnings = Vec::new();
    for line in missing {
        if args.strict {
            problems.push(format!("{line} {NOT_IN_FILES}"));
        } else {
            warnings.push(format!("warning: {line} {NOT_IN_FILES}"));
        }
    }
    for line in problems.iter().chain(&warnings) {
        println!("{line}");
    }
    let warned = match warnings.len() {
        0 => String::new(),
        n => format!(", {n} warning(s)"),
    };
    if problems.is_empty() {
        println!("ok: {checked} Rollouts and analysis templates checked{warned}");
        Ok(0)
    } else {
        println!("{} problem(s){warned}", problems.len());
        Ok(1)
    }
}
