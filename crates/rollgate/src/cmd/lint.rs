//! `rollgate lint -f FILE...`: checks Rollouts and analysis templates offline, with the same
//! validation the controller applies, against the other objects in the given files (Services,
//! templates, HTTPRoutes). Every problem is printed as `FILE: KIND NAME: FIELD: what was
//! expected`; the exit code is 1 when there is any.

use std::collections::BTreeMap;

use rollgate_api::{AnalysisTemplate, ClusterAnalysisTemplate, Rollout};
use rollgate_engine::{Observed, ObservedRoute, ObservedService};
use serde_json::Value;

use crate::cli::LintArgs;

/// One object read from a file.
struct Doc {
    file: String,
    kind: String,
    name: String,
    value: Value,
}

/// Checks the files; returns the problems, each on one line.
pub fn lint(files: &[(String, String)]) -> (usize, Vec<String>) {
    let mut problems = Vec::new();
    let mut docs = Vec::new();
    for (file, text) in files {
        match serde_saphyr::from_multiple::<Value>(text) {
            Err(e) => problems.push(format!("{file}: not valid YAML: {e}")),
            Ok(values) => {
                for value in values.into_iter().filter(|v| !v.is_null()) {
                    let kind = value["kind"].as_str().unwrap_or("").to_string();
                    let name = value["metadata"]["name"].as_str().unwrap_or("").to_string();
                    if kind.is_empty() || name.is_empty() {
                        problems.push(format!("{file}: an object without kind or metadata.name"));
                        continue;
                    }
                    docs.push(Doc {
                        file: file.clone(),
                        kind,
                        name,
                        value,
                    });
                }
            }
        }
    }
    // What the given files provide, as the controller would observe it.
    let mut observed = Observed::default();
    for d in &docs {
        match d.kind.as_str() {
            "Service" => {
                let selected = d.value["spec"]["selector"][rollgate_api::labels::POD_TEMPLATE_HASH]
                    .as_str()
                    .map(str::to_string);
                observed.services.insert(
                    d.name.clone(),
                    ObservedService {
                        name: d.name.clone(),
                        selected_hash: selected,
                    },
                );
            }
            "AnalysisTemplate" | "ClusterAnalysisTemplate" => {
                let cluster = d.kind == "ClusterAnalysisTemplate";
                let spec = if cluster {
                    serde_json::from_value::<ClusterAnalysisTemplate>(d.value.clone())
                        .map(|t| t.spec.template)
                } else {
                    serde_json::from_value::<AnalysisTemplate>(d.value.clone()).map(|t| t.spec)
                };
                match spec {
                    Err(e) => problems.push(format!("{}: {} {}: {e}", d.file, d.kind, d.name)),
                    Ok(spec) => {
                        for p in rollgate_engine::measure::validate_template(&spec)
                            .into_iter()
                            .chain(crate::cmd::promql::problems(&spec))
                        {
                            problems.push(format!("{}: {} {}: {p}", d.file, d.kind, d.name));
                        }
                        observed.templates.insert((cluster, d.name.clone()), spec);
                    }
                }
            }
            _ => {}
        }
    }
    let routes: BTreeMap<String, ObservedRoute> = docs
        .iter()
        .filter(|d| d.kind == "HTTPRoute")
        .map(|d| {
            let ns = d.value["metadata"]["namespace"]
                .as_str()
                .unwrap_or("default");
            (
                d.name.clone(),
                ObservedRoute::from_json(ns, &d.name, &d.value),
            )
        })
        .collect();
    let mut checked = 0;
    for d in docs.iter().filter(|d| d.kind == "Rollout") {
        checked += 1;
        let mut rollout: Rollout = match serde_json::from_value(d.value.clone()) {
            Ok(r) => r,
            Err(e) => {
                problems.push(format!("{}: Rollout {}: {e}", d.file, d.name));
                continue;
            }
        };
        let ns = rollout
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        rollout.metadata.namespace = Some(ns.clone());
        let mut observed = observed.clone();
        observed.route = rollgate_engine::references(&rollout)
            .route
            .and_then(|(_, name)| routes.get(&name).cloned())
            .map(|mut r| {
                r.namespace = ns.clone();
                r
            });
        if let Err(found) = rollgate_engine::validate::validate(&rollout, &observed) {
            for p in found {
                problems.push(format!("{}: Rollout {}: {p}", d.file, d.name));
            }
        }
    }
    checked += docs
        .iter()
        .filter(|d| d.kind.ends_with("AnalysisTemplate"))
        .count();
    (checked, problems)
}

/// Runs `rollgate lint`; returns the exit code.
pub fn run(args: &LintArgs) -> anyhow::Result<i32> {
    let mut files = Vec::new();
    for path in &args.files {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
        files.push((path.display().to_string(), text));
    }
    let (checked, problems) = lint(&files);
    for p in &problems {
        println!("{p}");
    }
    if problems.is_empty() {
        println!("ok: {checked} Rollouts and analysis templates checked");
        Ok(0)
    } else {
        println!("{} problem(s)", problems.len());
        Ok(1)
    }
}
