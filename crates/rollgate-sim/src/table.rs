//! Server-side printing: `meta.k8s.io/v1` Tables for `kubectl get`, with the columns kubectl
//! shows for built-in kinds and a CRD's `additionalPrinterColumns`.

use jiff::Timestamp;
use serde_json::{Value, json};

use crate::registry::ResourceType;

/// What a Table row carries besides its cells (`includeObject`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Include {
    /// Nothing.
    None,
    /// `PartialObjectMetadata` (the default).
    Metadata,
    /// The whole object.
    Object,
}

impl Include {
    /// From the `includeObject` query parameter.
    pub fn parse(s: Option<&str>) -> Self {
        match s {
            Some("None") => Self::None,
            Some("Object") => Self::Object,
            _ => Self::Metadata,
        }
    }
}

/// Whether an `Accept` header asks for a Table.
pub fn wants_table(accept: &str) -> bool {
    accept
        .split(',')
        .next()
        .is_some_and(|first| first.contains("as=Table") && first.contains("g=meta.k8s.io"))
}

/// How a read shows objects, from its `Accept` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// The objects themselves.
    Object,
    /// A Table (`as=Table`).
    Table(Include),
    /// `PartialObjectMetadata` (`as=PartialObjectMetadata[List]`).
    Metadata,
}

impl Shape {
    /// From the `Accept` header and the `includeObject` parameter.
    pub fn from_accept(accept: &str, include_object: Option<&str>) -> Self {
        let first = accept.split(',').next().unwrap_or_default();
        if wants_table(accept) {
            Self::Table(Include::parse(include_object))
        } else if first.contains("as=PartialObjectMetadata") && first.contains("g=meta.k8s.io") {
            Self::Metadata
        } else {
            Self::Object
        }
    }
}

/// `PartialObjectMetadata` of an object.
pub fn partial_metadata(obj: &Value) -> Value {
    json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
           "metadata": obj["metadata"]})
}

struct Column {
    name: String,
    ty: &'static str,
    priority: i64,
    cell: Cell,
}

enum Cell {
    Path(String),
    Age(String),
    Fixed(fn(&Value, Timestamp) -> Value),
}

fn col(name: &str, ty: &'static str, priority: i64, f: fn(&Value, Timestamp) -> Value) -> Column {
    Column {
        name: name.into(),
        ty,
        priority,
        cell: Cell::Fixed(f),
    }
}

fn age_col() -> Column {
    Column {
        name: "Age".into(),
        ty: "string",
        priority: 0,
        cell: Cell::Age(".metadata.creationTimestamp".into()),
    }
}

fn count(v: &Value) -> Value {
    json!(v.as_i64().unwrap_or(0))
}

fn columns(rt: &ResourceType) -> Vec<Column> {
    let name = col("Name", "string", 0, |o, _| o["metadata"]["name"].clone());
    let mut cols = vec![name];
    match (rt.group.as_str(), rt.plural.as_str()) {
        ("", "pods") => {
            cols.push(col("Ready", "string", 0, |o, _| {
                let all = o["status"]["containerStatuses"]
                    .as_array()
                    .map_or(0, Vec::len);
                let ready = o["status"]["containerStatuses"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|c| c["ready"] == true)
                    .count();
                json!(format!(
                    "{ready}/{}",
                    all.max(o["spec"]["containers"].as_array().map_or(0, Vec::len))
                ))
            }));
            cols.push(col("Status", "string", 0, |o, _| {
                if o["metadata"].get("deletionTimestamp").is_some() {
                    return json!("Terminating");
                }
                let waiting = o["status"]["containerStatuses"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find_map(|c| c["state"]["waiting"]["reason"].as_str());
                json!(
                    waiting
                        .or(o["status"]["phase"].as_str())
                        .unwrap_or("Pending")
                )
            }));
            cols.push(col("Restarts", "integer", 0, |o, _| {
                json!(
                    o["status"]["containerStatuses"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|c| c["restartCount"].as_i64().unwrap_or(0))
                        .sum::<i64>()
                )
            }));
            cols.push(age_col());
            cols.push(col("IP", "string", 1, |o, _| o["status"]["podIP"].clone()));
            cols.push(col("Node", "string", 1, |o, _| {
                o["spec"]["nodeName"].clone()
            }));
        }
        ("apps", "replicasets") => {
            cols.push(col("Desired", "integer", 0, |o, _| {
                count(&o["spec"]["replicas"])
            }));
            cols.push(col("Current", "integer", 0, |o, _| {
                count(&o["status"]["replicas"])
            }));
            cols.push(col("Ready", "integer", 0, |o, _| {
                count(&o["status"]["readyReplicas"])
            }));
            cols.push(age_col());
            cols.push(col("Images", "string", 1, |o, _| images(o)));
            cols.push(col("Selector", "string", 1, |o, _| {
                json!(crate::selector::from_label_selector(&o["spec"]["selector"]).to_string())
            }));
        }
        ("apps", "deployments") => {
            cols.push(col("Ready", "string", 0, |o, _| {
                json!(format!(
                    "{}/{}",
                    o["status"]["readyReplicas"].as_i64().unwrap_or(0),
                    o["spec"]["replicas"].as_i64().unwrap_or(0)
                ))
            }));
            cols.push(col("Up-to-date", "integer", 0, |o, _| {
                count(&o["status"]["updatedReplicas"])
            }));
            cols.push(col("Available", "integer", 0, |o, _| {
                count(&o["status"]["availableReplicas"])
            }));
            cols.push(age_col());
        }
        ("", "services") => {
            cols.push(col("Type", "string", 0, |o, _| o["spec"]["type"].clone()));
            cols.push(col("Cluster-IP", "string", 0, |o, _| {
                o["spec"]["clusterIP"].clone()
            }));
            cols.push(col("External-IP", "string", 0, |_, _| json!("<none>")));
            cols.push(col("Port(s)", "string", 0, |o, _| {
                let ports: Vec<String> = o["spec"]["ports"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|p| {
                        format!(
                            "{}/{}",
                            p["port"].as_i64().unwrap_or(0),
                            p["protocol"].as_str().unwrap_or("TCP")
                        )
                    })
                    .collect();
                json!(if ports.is_empty() {
                    "<none>".to_string()
                } else {
                    ports.join(",")
                })
            }));
            cols.push(age_col());
            cols.push(col("Selector", "string", 1, |o, _| {
                let sel: Vec<String> = o["spec"]["selector"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                    .collect();
                json!(if sel.is_empty() {
                    "<none>".to_string()
                } else {
                    sel.join(",")
                })
            }));
        }
        ("", "namespaces") => {
            cols.push(col("Status", "string", 0, |o, _| {
                o["status"]["phase"].clone()
            }));
            cols.push(age_col());
        }
        ("", "configmaps") => {
            cols.push(col("Data", "integer", 0, |o, _| {
                json!(
                    o["data"].as_object().map_or(0, |m| m.len())
                        + o["binaryData"].as_object().map_or(0, |m| m.len())
                )
            }));
            cols.push(age_col());
        }
        ("", "secrets") => {
            cols.push(col("Type", "string", 0, |o, _| o["type"].clone()));
            cols.push(col("Data", "integer", 0, |o, _| {
                json!(o["data"].as_object().map_or(0, |m| m.len()))
            }));
            cols.push(age_col());
        }
        ("" | "events.k8s.io", "events") => {
            cols = vec![
                col("Last Seen", "string", 0, |o, now| {
                    let t = o["lastTimestamp"]
                        .as_str()
                        .or(o["series"]["lastObservedTime"].as_str())
                        .or(o["eventTime"].as_str())
                        .or(o["metadata"]["creationTimestamp"].as_str());
                    t.and_then(|t| t.parse::<Timestamp>().ok())
                        .map_or(Value::Null, |t| json!(age(now, t)))
                }),
                col("Type", "string", 0, |o, _| o["type"].clone()),
                col("Reason", "string", 0, |o, _| o["reason"].clone()),
                col("Object", "string", 0, |o, _| {
                    let r = &o["involvedObject"];
                    json!(format!(
                        "{}/{}",
                        r["kind"].as_str().unwrap_or_default().to_lowercase(),
                        r["name"].as_str().unwrap_or_default()
                    ))
                }),
                col("Message", "string", 0, |o, _| o["message"].clone()),
            ];
        }
        ("coordination.k8s.io", "leases") => {
            cols.push(col("Holder", "string", 0, |o, _| {
                o["spec"]["holderIdentity"].clone()
            }));
            cols.push(age_col());
        }
        ("apiextensions.k8s.io", "customresourcedefinitions") => {
            cols.push(col("Created At", "date", 0, |o, _| {
                o["metadata"]["creationTimestamp"].clone()
            }));
        }
        _ if !rt.printer_columns.is_empty() => {
            for c in &rt.printer_columns {
                let path = c["jsonPath"].as_str().unwrap_or_default().to_string();
                let ty = match c["type"].as_str() {
                    Some("integer") => "integer",
                    Some("number") => "number",
                    Some("boolean") => "boolean",
                    Some("date") => "date",
                    _ => "string",
                };
                cols.push(Column {
                    name: c["name"].as_str().unwrap_or_default().to_string(),
                    ty: if ty == "date" { "string" } else { ty },
                    priority: c["priority"].as_i64().unwrap_or(0),
                    cell: if ty == "date" {
                        Cell::Age(path)
                    } else {
                        Cell::Path(path)
                    },
                });
            }
        }
        _ => cols.push(age_col()),
    }
    cols
}

fn images(o: &Value) -> Value {
    let list: Vec<&str> = o["spec"]["template"]["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["image"].as_str())
        .collect();
    json!(list.join(","))
}

/// `5s`, `3m20s`, `2h`, `4d` as kubectl shows ages.
pub fn age(now: Timestamp, then: Timestamp) -> String {
    let s = now.duration_since(then).as_secs().max(0);
    let (m, h, d) = (s / 60, s / 3600, s / 86400);
    if s < 120 {
        format!("{s}s")
    } else if m < 10 {
        if s % 60 == 0 {
            format!("{m}m")
        } else {
            format!("{m}m{}s", s % 60)
        }
    } else if h < 3 {
        format!("{m}m")
    } else if h < 8 {
        if m % 60 == 0 {
            format!("{h}h")
        } else {
            format!("{h}h{}m", m % 60)
        }
    } else if h < 48 {
        format!("{h}h")
    } else if d < 8 {
        if h % 24 == 0 {
            format!("{d}d")
        } else {
            format!("{d}d{}h", h % 24)
        }
    } else {
        format!("{d}d")
    }
}

/// Evaluates a printer-column JSON path: `.a.b`, `.a[0].b`, `.a[?(@.type=="Ready")].status`.
pub fn eval_path(obj: &Value, path: &str) -> Value {
    let mut cur = vec![obj.clone()];
    let mut rest = path.trim().trim_start_matches('{').trim_end_matches('}');
    rest = rest.trim_start_matches('$');
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            let field = &r[..end];
            cur = cur
                .iter()
                .map(|v| v[field].clone())
                .filter(|v| !v.is_null())
                .collect();
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let Some(end) = r.find(']') else { break };
            let inner = &r[..end];
            rest = &r[end + 1..];
            if let Some(filter) = inner.strip_prefix("?(@.").and_then(|f| f.strip_suffix(')')) {
                let Some((field, want)) = filter.split_once("==") else {
                    return Value::Null;
                };
                let want = want.trim().trim_matches(|c| c == '"' || c == '\'');
                cur = cur
                    .iter()
                    .flat_map(|v| v.as_array().cloned().unwrap_or_default())
                    .filter(|item| {
                        let got = &item[field.trim()];
                        got.as_str().map_or_else(|| got.to_string(), String::from) == want
                    })
                    .collect();
            } else if inner == "*" {
                cur = cur
                    .iter()
                    .flat_map(|v| v.as_array().cloned().unwrap_or_default())
                    .collect();
            } else if let Ok(i) = inner.parse::<usize>() {
                cur = cur
                    .iter()
                    .map(|v| v[i].clone())
                    .filter(|v| !v.is_null())
                    .collect();
            } else {
                return Value::Null;
            }
        } else {
            return Value::Null;
        }
    }
    match cur.len() {
        0 => Value::Null,
        1 => cur.remove(0),
        _ => json!(
            cur.iter()
                .map(|v| v.as_str().map_or_else(|| v.to_string(), String::from))
                .collect::<Vec<_>>()
                .join(",")
        ),
    }
}

/// A Table of `objects` (shown through `rt`) at time `now`.
pub fn render(
    rt: &ResourceType,
    objects: &[Value],
    resource_version: &str,
    include: Include,
    now: Timestamp,
) -> Value {
    let cols = columns(rt);
    let defs: Vec<Value> = cols
        .iter()
        .map(|c| {
            json!({"name": c.name, "type": c.ty, "format": if c.name == "Name" { "name" } else { "" },
                   "description": "", "priority": c.priority})
        })
        .collect();
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            let cells: Vec<Value> = cols
                .iter()
                .map(|c| match &c.cell {
                    Cell::Fixed(f) => f(o, now),
                    Cell::Path(p) => eval_path(o, p),
                    Cell::Age(p) => eval_path(o, p)
                        .as_str()
                        .and_then(|t| t.parse::<Timestamp>().ok())
                        .map_or(Value::Null, |t| json!(age(now, t))),
                })
                .collect();
            let mut row = json!({"cells": cells});
            match include {
                Include::None => {}
                Include::Metadata => row["object"] = partial_metadata(o),
                Include::Object => row["object"] = o.clone(),
            }
            row
        })
        .collect();
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1",
           "metadata": {"resourceVersion": resource_version},
           "columnDefinitions": defs, "rows": rows})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_ages() {
        let o = json!({"status": {"conditions": [{"type": "A", "status": "False"},
                                                 {"type": "Ready", "status": "True"}],
                                  "n": 3}});
        assert_eq!(eval_path(&o, ".status.n"), json!(3));
        assert_eq!(
            eval_path(&o, ".status.conditions[?(@.type==\"Ready\")].status"),
            json!("True")
        );
        assert_eq!(eval_path(&o, ".status.conditions[0].type"), json!("A"));
        assert_eq!(eval_path(&o, ".status.missing"), Value::Null);
        let t0: Timestamp = "2026-01-01T00:00:00Z".parse().expect("time");
        let at = |s: i64| t0 + jiff::SignedDuration::from_secs(s);
        assert_eq!(age(at(59), t0), "59s");
        assert_eq!(age(at(200), t0), "3m20s");
        assert_eq!(age(at(3600), t0), "60m");
        assert_eq!(age(at(4 * 3600 + 60), t0), "4h1m");
        assert_eq!(age(at(86400 * 3), t0), "3d");
        assert!(wants_table(
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
        ));
        assert!(!wants_table("application/json"));
    }
}
