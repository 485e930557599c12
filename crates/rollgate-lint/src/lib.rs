//! The checks of `rollgate lint`: Rollouts, analysis templates and promotion pipelines
//! validated offline with the same validation the controller applies (templates: durations, CEL
//! conditions, PromQL syntax, `rangeQuery`, enum-like fields), against the other objects in the
//! given files (Services, templates, Secrets, HTTPRoutes).
//!
//! [`lint`] is pure: it takes the files' names and texts and returns a [`Report`]; the CLI
//! (`rollgate lint`) reads the files and prints it, and the fuzz targets feed it any text.
//!
//! A Service, template, Secret or HTTPRoute that a Rollout names but the files do not hold may
//! already be in the cluster (a chart linted one file at a time): those problems are reported
//! apart, in [`Report::missing`], and the Rollout is checked as if it existed and were valid.

use std::collections::BTreeMap;

use rollgate_api::{
    AnalysisTemplate, AnalysisTemplateSpec, ClusterAnalysisTemplate, Metric, MetricProvider,
    PrometheusMetric, Rollout,
};
use rollgate_engine::validate::Problem;
use rollgate_engine::{Observed, ObservedRoute, ObservedService, ObservedWorkload, WorkloadKind};
use serde_json::Value;

/// What linting found.
#[derive(Debug, Default)]
pub struct Report {
    /// Rollouts and analysis templates checked.
    pub checked: usize,
    /// Problems, one line each.
    pub problems: Vec<String>,
    /// References to objects not in the files, one line each (`FILE: Rollout NAME: FIELD:
    /// ... not found`).
    pub missing: Vec<String>,
}

/// One object read from a file.
struct Doc {
    file: String,
    kind: String,
    name: String,
    value: Value,
}

/// Checks the files, given as (name, text) pairs; names are only quoted in the report.
pub fn lint(files: &[(String, String)]) -> Report {
    let mut problems = Vec::new();
    let mut missing = Vec::new();
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
            // Only whether it exists and its keys, as the controller observes it.
            "Secret" => {
                let keys = ["data", "stringData"]
                    .iter()
                    .filter_map(|f| d.value[*f].as_object())
                    .flat_map(|m| m.keys().cloned())
                    .collect();
                observed.secrets.insert(d.name.clone(), keys);
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
                        for p in rollgate_engine::measure::validate_template(&spec) {
                            problems.push(format!("{}: {} {}: {p}", d.file, d.kind, d.name));
                        }
                        observed.templates.insert((cluster, d.name.clone()), spec);
                    }
                }
            }
            "PromotionPipeline" => {
                match rollgate_api::decode::decode::<rollgate_api::PromotionPipeline>(&d.value) {
                    Err(e) => problems.push(format!("{}: {} {}: {e}", d.file, d.kind, d.name)),
                    Ok(p) => {
                        if let Err(found) = rollgate_engine::pipeline::validate(&p) {
                            for p in found {
                                problems.push(format!("{}: {} {}: {p}", d.file, d.kind, d.name));
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
    let routes: BTreeMap<&str, &Value> = docs
        .iter()
        .filter(|d| d.kind == "HTTPRoute")
        .map(|d| (d.name.as_str(), &d.value))
        .collect();
    // The objects a `spec.workloadRef` may name, by kind and name.
    let workloads: BTreeMap<(WorkloadKind, &str), &Value> = docs
        .iter()
        .filter_map(|d| {
            Some((
                (WorkloadKind::from_kind(&d.kind)?, d.name.as_str()),
                &d.value,
            ))
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
        if rollout.metadata.namespace.is_none() {
            rollout.metadata.namespace = Some("default".into());
        }
        let mut observed = observed.clone();
        let refs = rollgate_engine::references(&rollout);
        // spec.workloadRef: the Deployment, ReplicaSet or PodTemplate of the files, if they
        // hold it.
        observed.workload = refs
            .workload
            .as_ref()
            .and_then(|(kind, name)| workloads.get(&(*kind, name.as_str())))
            .and_then(|v| ObservedWorkload::from_json(v));
        observed.route = refs.route.and_then(|(ns, name)| {
            let route = routes.get(name.as_str())?;
            Some(ObservedRoute::from_json(&ns, &name, route))
        });
        // Problems with what the files hold, and with what they lack assumed to be in the
        // cluster: those only in the first are missing references.
        let found = validate(&rollout, &observed);
        let assumed = validate(&rollout, &with_stand_ins(&rollout, observed));
        for p in &found {
            let line = format!("{}: Rollout {}: {p}", d.file, d.name);
            if assumed.contains(p) {
                problems.push(line);
            } else {
                missing.push(line);
            }
        }
        for p in assumed.iter().filter(|p| !found.contains(p)) {
            problems.push(format!("{}: Rollout {}: {p}", d.file, d.name));
        }
    }
    checked += docs
        .iter()
        .filter(|d| d.kind.ends_with("AnalysisTemplate"))
        .count();
    Report {
        checked,
        problems,
        missing,
    }
}

fn validate(rollout: &Rollout, observed: &Observed) -> Vec<Problem> {
    rollgate_engine::validate::validate(rollout, observed)
        .err()
        .unwrap_or_default()
}

/// `observed` plus a stand-in for each Service, template, Secret and HTTPRoute the rollout
/// names that it lacks: a Service selecting nothing, a template that is valid, a Secret with
/// the keys read from it, the object of `workloadRef` (of its kind) with a valid template, a route with one rule whose backends are the canary and stable
/// Services. (The fuzz targets complete what they observe with it too.)
pub fn with_stand_ins(rollout: &Rollout, mut observed: Observed) -> Observed {
    let refs = rollgate_engine::references(rollout);
    for name in refs.services {
        observed
            .services
            .entry(name.clone())
            .or_insert(ObservedService {
                name,
                selected_hash: None,
            });
    }
    for key in refs.templates {
        observed
            .templates
            .entry(key)
            .or_insert_with(|| AnalysisTemplateSpec {
                metrics: vec![Metric {
                    name: "stand-in".into(),
                    provider: MetricProvider {
                        prometheus: Some(PrometheusMetric {
                            address: "http://prometheus:9090".into(),
                            query: "vector(1)".into(),
                            ..Default::default()
                        }),
                    },
                    ..Default::default()
                }],
                ..Default::default()
            });
    }
    if let (Some((kind, name)), None) = (&refs.workload, &observed.workload) {
        // An object of the referenced kind whose pods carry the labels the rollout selects.
        let labels = rollout
            .spec
            .selector
            .as_ref()
            .and_then(|s| s.match_labels.clone())
            .unwrap_or_else(|| BTreeMap::from([("app".to_string(), name.clone())]));
        let template = serde_json::json!({
            "metadata": {"labels": labels},
            "spec": {"containers": [{"name": "stand-in", "image": "stand-in"}]},
        });
        let stand_in = match kind {
            WorkloadKind::PodTemplate => serde_json::json!({
                "kind": kind.as_str(),
                "metadata": {"name": name},
                "template": template,
            }),
            WorkloadKind::Deployment | WorkloadKind::ReplicaSet => serde_json::json!({
                "kind": kind.as_str(),
                "metadata": {"name": name},
                "spec": {"selector": {"matchLabels": labels}, "template": template},
            }),
        };
        observed.workload = ObservedWorkload::from_json(&stand_in);
    }
    for (name, keys) in rollgate_engine::validate::secret_references(rollout, &observed) {
        observed.secrets.entry(name).or_insert(keys);
    }
    if let (Some((namespace, name)), None, Some(c)) = (
        refs.route,
        &observed.route,
        rollout.spec.strategy.canary.as_ref(),
    ) {
        let backends: Vec<serde_json::Value> = [&c.canary_service, &c.stable_service]
            .into_iter()
            .flatten()
            .map(|s| serde_json::json!({ "name": s }))
            .collect();
        observed.route = Some(ObservedRoute::from_rules(
            &namespace,
            &name,
            vec![serde_json::json!({ "backendRefs": backends })],
        ));
    }
    observed
}
