//! Server-side apply and field ownership (`metadata.managedFields`).
//!
//! Each manager owns a set of field paths, stored as `fieldsV1` (`f:name`, `k:{"name":"x"}`
//! for keyed list items, `v:"x"` for set members, `.` for an item itself). An apply:
//! - conflicts (409) when it sets a field another manager owns to a different value, unless
//!   forced, in which case it takes the field over;
//! - merges the applied configuration into the object (lists by their list type);
//! - removes fields this manager applied before but no longer applies and nobody else owns;
//! - records the manager's new field set.
//!
//! Other writes take ownership of the fields they change (operation `Update`).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use crate::patch::{ListType, Lists, strategic_merge};

/// One field path: `["f:spec", "f:replicas"]`.
pub type FieldPath = Vec<String>;

/// Which part of an object a write addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The main resource; `status` is excluded when the type has a status subresource.
    Main {
        /// Whether `status` is a separate subresource.
        status_subresource: bool,
    },
    /// The `/status` subresource: only `status`.
    Status,
}

/// Metadata fields the server owns; never part of a field set.
const SERVER_METADATA: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
    "generateName",
];

/// Leaf field paths of `obj` for `part`.
pub fn field_set(obj: &Value, lists: Lists<'_>, part: Part) -> BTreeSet<FieldPath> {
    let mut out = BTreeSet::new();
    let Some(m) = obj.as_object() else {
        return out;
    };
    for (k, v) in m {
        let keep = match part {
            Part::Status => k == "status",
            Part::Main { status_subresource } => {
                !(k == "apiVersion" || k == "kind" || (status_subresource && k == "status"))
            }
        };
        if !keep {
            continue;
        }
        let mut path = vec![format!("f:{k}")];
        if k == "metadata" {
            let Some(meta) = v.as_object() else { continue };
            for (mk, mv) in meta {
                if SERVER_METADATA.contains(&mk.as_str()) {
                    continue;
                }
                path.push(format!("f:{mk}"));
                collect(mv, Lists::Builtin, mk, &mut path, &mut out);
                path.pop();
            }
            continue;
        }
        collect(v, lists.field(k, true), k, &mut path, &mut out);
    }
    out
}

fn collect(
    v: &Value,
    lists: Lists<'_>,
    name: &str,
    path: &mut FieldPath,
    out: &mut BTreeSet<FieldPath>,
) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, child) in m {
                path.push(format!("f:{k}"));
                collect(child, lists.field(k, false), k, path, out);
                path.pop();
            }
        }
        Value::Array(items) if !items.is_empty() => match lists.list_type(name, items) {
            ListType::Map(keys) => {
                for item in items {
                    let Some(k) = item_key(item, &keys) else {
                        out.insert(path.clone());
                        return;
                    };
                    path.push(k);
                    path.push(".".into());
                    out.insert(path.clone());
                    path.pop();
                    if let Value::Object(m) = item {
                        for (f, child) in m {
                            path.push(format!("f:{f}"));
                            collect(child, lists.items().field(f, false), f, path, out);
                            path.pop();
                        }
                    }
                    path.pop();
                }
            }
            ListType::Set => {
                for item in items {
                    path.push(format!("v:{item}"));
                    out.insert(path.clone());
                    path.pop();
                }
            }
            ListType::Atomic => {
                out.insert(path.clone());
            }
        },
        _ => {
            out.insert(path.clone());
        }
    }
}

/// `k:{"name":"x"}` for a keyed list item (`None` when it lacks every key).
fn item_key(item: &Value, keys: &[String]) -> Option<String> {
    let mut m = Map::new();
    for k in keys {
        if let Some(v) = item.get(k) {
            m.insert(k.clone(), v.clone());
        }
    }
    (!m.is_empty()).then(|| format!("k:{}", Value::Object(m)))
}

/// The value at `path` in `doc`.
pub fn value_at<'a>(doc: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut cur = doc;
    for elem in path {
        cur = step(cur, elem)?;
    }
    Some(cur)
}

fn step<'a>(cur: &'a Value, elem: &str) -> Option<&'a Value> {
    if elem == "." {
        return Some(cur);
    }
    if let Some(f) = elem.strip_prefix("f:") {
        return cur.get(f);
    }
    let items = cur.as_array()?;
    if let Some(k) = elem.strip_prefix("k:") {
        let key: Map<String, Value> = serde_json::from_str(k).ok()?;
        return items
            .iter()
            .find(|i| key.iter().all(|(kk, kv)| i.get(kk) == Some(kv)));
    }
    if let Some(v) = elem.strip_prefix("v:") {
        let want: Value = serde_json::from_str(v).ok()?;
        return items.iter().find(|i| **i == want);
    }
    None
}

/// Removes what `path` addresses from `doc`.
fn remove_at(doc: &mut Value, path: &[String]) {
    let Some((last, parent_path)) = path.split_last() else {
        return;
    };
    if last == "." {
        // The item itself: remove it from its list.
        let Some((item, list_path)) = parent_path.split_last() else {
            return;
        };
        if let Some(list) = value_at_mut(doc, list_path).and_then(Value::as_array_mut)
            && let Some(k) = item.strip_prefix("k:")
            && let Ok(key) = serde_json::from_str::<Map<String, Value>>(k)
        {
            list.retain(|i| !key.iter().all(|(kk, kv)| i.get(kk) == Some(kv)));
        }
        return;
    }
    let Some(parent) = value_at_mut(doc, parent_path) else {
        return;
    };
    if let Some(f) = last.strip_prefix("f:") {
        if let Some(m) = parent.as_object_mut() {
            m.remove(f);
        }
    } else if let Some(v) = last.strip_prefix("v:")
        && let Ok(want) = serde_json::from_str::<Value>(v)
        && let Some(list) = parent.as_array_mut()
    {
        list.retain(|i| *i != want);
    }
}

fn value_at_mut<'a>(doc: &'a mut Value, path: &[String]) -> Option<&'a mut Value> {
    let mut cur = doc;
    for elem in path {
        if elem == "." {
            continue;
        }
        if let Some(f) = elem.strip_prefix("f:") {
            cur = cur.get_mut(f)?;
        } else if let Some(k) = elem.strip_prefix("k:") {
            let key: Map<String, Value> = serde_json::from_str(k).ok()?;
            cur = cur
                .as_array_mut()?
                .iter_mut()
                .find(|i| key.iter().all(|(kk, kv)| i.get(kk) == Some(kv)))?;
        } else if let Some(v) = elem.strip_prefix("v:") {
            let want: Value = serde_json::from_str(v).ok()?;
            cur = cur.as_array_mut()?.iter_mut().find(|i| **i == want)?;
        } else {
            return None;
        }
    }
    Some(cur)
}

/// A field set as `fieldsV1`.
pub fn to_fields_v1(set: &BTreeSet<FieldPath>) -> Value {
    let mut root = Map::new();
    for path in set {
        let mut cur = &mut root;
        for elem in path {
            let next = cur
                .entry(elem.clone())
                .or_insert_with(|| Value::Object(Map::new()));
            let Value::Object(m) = next else { break };
            cur = m;
        }
    }
    Value::Object(root)
}

/// A `fieldsV1` tree as a field set.
pub fn from_fields_v1(v: &Value) -> BTreeSet<FieldPath> {
    fn walk(v: &Value, path: &mut FieldPath, out: &mut BTreeSet<FieldPath>) {
        match v.as_object() {
            Some(m) if !m.is_empty() => {
                for (k, child) in m {
                    path.push(k.clone());
                    walk(child, path, out);
                    path.pop();
                }
            }
            _ => {
                if !path.is_empty() {
                    out.insert(path.clone());
                }
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(v, &mut Vec::new(), &mut out);
    out
}

/// One `managedFields` entry.
#[derive(Debug, Clone, PartialEq)]
struct Entry {
    manager: String,
    operation: String,
    subresource: String,
    api_version: String,
    time: String,
    fields: BTreeSet<FieldPath>,
}

fn entries(obj: &Value) -> Vec<Entry> {
    obj["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| Entry {
            manager: e["manager"].as_str().unwrap_or_default().into(),
            operation: e["operation"].as_str().unwrap_or_default().into(),
            subresource: e["subresource"].as_str().unwrap_or_default().into(),
            api_version: e["apiVersion"].as_str().unwrap_or_default().into(),
            time: e["time"].as_str().unwrap_or_default().into(),
            fields: from_fields_v1(&e["fieldsV1"]),
        })
        .collect()
}

fn store_entries(obj: &mut Value, list: Vec<Entry>) {
    let list: Vec<Value> = list
        .into_iter()
        .filter(|e| !e.fields.is_empty())
        .map(|e| {
            let mut v = json!({"manager": e.manager, "operation": e.operation,
                "apiVersion": e.api_version, "time": e.time, "fieldsType": "FieldsV1",
                "fieldsV1": to_fields_v1(&e.fields)});
            if !e.subresource.is_empty() {
                v["subresource"] = json!(e.subresource);
            }
            v
        })
        .collect();
    if list.is_empty() {
        if let Some(m) = obj["metadata"].as_object_mut() {
            m.remove("managedFields");
        }
    } else {
        obj["metadata"]["managedFields"] = Value::Array(list);
    }
}

fn subresource(part: Part) -> &'static str {
    match part {
        Part::Status => "status",
        Part::Main { .. } => "",
    }
}

/// An apply that sets fields other managers own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflicts(pub Vec<(String, String)>);

impl Conflicts {
    /// `Apply failed with 1 conflict: conflict with "x": .spec.replicas`.
    pub fn message(&self) -> String {
        let n = self.0.len();
        let list: Vec<String> = self
            .0
            .iter()
            .map(|(m, f)| format!("conflict with \"{m}\": {f}"))
            .collect();
        format!(
            "Apply failed with {n} conflict{}: {}",
            if n == 1 { "" } else { "s" },
            list.join("\n")
        )
    }
}

/// `.spec.containers[name="a"].image` for messages.
pub fn display_path(path: &[String]) -> String {
    let mut s = String::new();
    for elem in path {
        if let Some(f) = elem.strip_prefix("f:") {
            s.push('.');
            s.push_str(f);
        } else if let Some(k) = elem.strip_prefix("k:") {
            let key: Map<String, Value> = serde_json::from_str(k).unwrap_or_default();
            let inner: Vec<String> = key.iter().map(|(k, v)| format!("{k}={v}")).collect();
            s.push_str(&format!("[{}]", inner.join(",")));
        } else if let Some(v) = elem.strip_prefix("v:") {
            s.push_str(&format!("[={v}]"));
        }
    }
    s
}

/// What an apply request asks for.
#[derive(Debug, Clone, Copy)]
pub struct ApplyRequest<'a> {
    /// The field manager.
    pub manager: &'a str,
    /// Take over conflicting fields.
    pub force: bool,
    /// List semantics of the type.
    pub lists: Lists<'a>,
    /// Main resource or status.
    pub part: Part,
    /// apiVersion recorded in managedFields.
    pub api_version: &'a str,
    /// Time recorded in managedFields.
    pub now: &'a str,
}

/// Applies `config` to `live` (`{}` when creating). Returns the new object with its
/// managedFields updated.
pub fn server_side_apply(
    live: &Value,
    config: &Value,
    req: &ApplyRequest<'_>,
) -> Result<Value, Conflicts> {
    let applied = field_set(config, req.lists, req.part);
    let sub = subresource(req.part);
    let mut list = entries(live);
    let previous: BTreeSet<FieldPath> = list
        .iter()
        .find(|e| e.manager == req.manager && e.operation == "Apply" && e.subresource == sub)
        .map(|e| e.fields.clone())
        .unwrap_or_default();
    // Conflicts with other managers.
    let mut conflicts = Vec::new();
    for e in list
        .iter_mut()
        .filter(|e| !(e.manager == req.manager && e.operation == "Apply" && e.subresource == sub))
    {
        let clashing: Vec<FieldPath> = e
            .fields
            .intersection(&applied)
            .filter(|p| p.last().is_some_and(|l| l != "."))
            .filter(|p| value_at(live, p) != value_at(config, p))
            .cloned()
            .collect();
        if clashing.is_empty() {
            continue;
        }
        if req.force {
            for p in &clashing {
                e.fields.remove(p);
            }
        } else {
            conflicts.extend(
                clashing
                    .iter()
                    .map(|p| (e.manager.clone(), display_path(p))),
            );
        }
    }
    if !conflicts.is_empty() {
        return Err(Conflicts(conflicts));
    }
    // Merge the configuration.
    let mut out = live.clone();
    let mut patch = config.clone();
    if let Some(m) = patch.as_object_mut() {
        m.remove("apiVersion");
        m.remove("kind");
        if let Some(meta) = m.get_mut("metadata").and_then(Value::as_object_mut) {
            for f in SERVER_METADATA {
                meta.remove(*f);
            }
        }
        match req.part {
            Part::Status => m.retain(|k, _| k == "status"),
            Part::Main {
                status_subresource: true,
            } => {
                m.remove("status");
            }
            Part::Main { .. } => {}
        }
    }
    strategic_merge(&mut out, &patch, req.lists, "");
    // Prune what this manager no longer applies and nobody else owns.
    let others: BTreeSet<&FieldPath> = list
        .iter()
        .filter(|e| !(e.manager == req.manager && e.operation == "Apply" && e.subresource == sub))
        .flat_map(|e| e.fields.iter())
        .collect();
    let mut dropped: Vec<&FieldPath> = previous
        .iter()
        .filter(|p| !applied.contains(*p) && !others.contains(p))
        .collect();
    dropped.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in dropped {
        // A whole keyed item goes only when none of its fields is still applied.
        if p.last().is_some_and(|l| l == ".") {
            let prefix = &p[..p.len() - 1];
            if applied.iter().any(|a| a.starts_with(prefix)) {
                continue;
            }
        }
        remove_at(&mut out, p);
    }
    // Record ownership.
    list.retain(|e| !(e.manager == req.manager && e.operation == "Apply" && e.subresource == sub));
    list.push(Entry {
        manager: req.manager.to_string(),
        operation: "Apply".into(),
        subresource: sub.into(),
        api_version: req.api_version.to_string(),
        time: req.now.to_string(),
        fields: applied,
    });
    store_entries(&mut out, list);
    Ok(out)
}

/// Records that `manager` wrote `new` over `old` (`None`: created) with a non-apply write:
/// it takes the fields it changed; fields that disappeared leave every manager.
pub fn track_update(
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    lists: Lists<'_>,
    part: Part,
    api_version: &str,
    now: &str,
) {
    // An explicitly empty list resets ownership.
    if new["metadata"]["managedFields"]
        .as_array()
        .is_some_and(Vec::is_empty)
    {
        if let Some(m) = new["metadata"].as_object_mut() {
            m.remove("managedFields");
        }
        return;
    }
    if new["metadata"].get("managedFields").is_none()
        && let Some(mf) = old.and_then(|o| o["metadata"].get("managedFields"))
    {
        new["metadata"]["managedFields"] = mf.clone();
    }
    let now_set = field_set(new, lists, part);
    let before = old.map(|o| field_set(o, lists, part)).unwrap_or_default();
    let changed: BTreeSet<FieldPath> = now_set
        .iter()
        .filter(|p| !before.contains(*p) || old.and_then(|o| value_at(o, p)) != value_at(new, p))
        .cloned()
        .collect();
    let gone: BTreeSet<&FieldPath> = before.difference(&now_set).collect();
    if changed.is_empty() && gone.is_empty() {
        return;
    }
    let sub = subresource(part);
    let mut list = entries(new);
    for e in &mut list {
        e.fields.retain(|p| !gone.contains(p));
        let is_self = e.manager == manager && e.operation == "Update" && e.subresource == sub;
        if !is_self {
            e.fields.retain(|p| !changed.contains(p));
        }
    }
    match list
        .iter_mut()
        .find(|e| e.manager == manager && e.operation == "Update" && e.subresource == sub)
    {
        Some(e) => {
            e.fields.extend(changed);
            e.time = now.to_string();
            e.api_version = api_version.to_string();
        }
        None if !changed.is_empty() => list.push(Entry {
            manager: manager.to_string(),
            operation: "Update".into(),
            subresource: sub.into(),
            api_version: api_version.to_string(),
            time: now.to_string(),
            fields: changed,
        }),
        None => {}
    }
    store_entries(new, list);
}

/// Groups field sets by manager, for tests and debugging.
pub fn owners(obj: &Value) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for e in entries(obj) {
        out.entry(e.manager)
            .or_default()
            .extend(e.fields.iter().map(|p| display_path(p)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAIN: Part = Part::Main {
        status_subresource: true,
    };

    fn req<'a>(manager: &'a str, force: bool) -> ApplyRequest<'a> {
        ApplyRequest {
            manager,
            force,
            lists: Lists::Builtin,
            part: MAIN,
            api_version: "v1",
            now: "2026-01-01T00:00:00Z",
        }
    }

    #[test]
    fn field_sets_round_trip_through_fields_v1() {
        let obj = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "x", "labels": {"a": "b"}, "finalizers": ["f"]},
            "spec": {"containers": [{"name": "c", "image": "i", "args": ["1"]}]},
            "status": {"phase": "Running"}});
        let set = field_set(&obj, Lists::Builtin, MAIN);
        let v1 = to_fields_v1(&set);
        assert_eq!(
            v1,
            json!({"f:metadata": {"f:labels": {"f:a": {}}, "f:finalizers": {"v:\"f\"": {}}},
                   "f:spec": {"f:containers": {"k:{\"name\":\"c\"}": {
                       ".": {}, "f:name": {}, "f:image": {}, "f:args": {}}}}})
        );
        assert_eq!(from_fields_v1(&v1), set);
    }

    #[test]
    fn apply_merges_prunes_and_detects_conflicts() {
        let first = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
                           "data": {"a": "1", "b": "2"}});
        let obj = server_side_apply(&json!({}), &first, &req("one", false)).expect("apply");
        assert_eq!(obj["data"], json!({"a": "1", "b": "2"}));
        // Re-applying without `b` removes it.
        let second = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
                            "data": {"a": "1"}});
        let obj = server_side_apply(&obj, &second, &req("one", false)).expect("apply");
        assert_eq!(obj["data"], json!({"a": "1"}));
        // Another manager setting `a` differently conflicts, unless forced.
        let other = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
                           "data": {"a": "9"}});
        let err = server_side_apply(&obj, &other, &req("two", false)).expect_err("conflict");
        assert_eq!(err.0, vec![("one".to_string(), ".data.a".to_string())]);
        let obj = server_side_apply(&obj, &other, &req("two", true)).expect("forced");
        assert_eq!(obj["data"]["a"], "9");
        let owners = owners(&obj);
        assert_eq!(owners.get("two"), Some(&vec![".data.a".to_string()]));
        assert!(!owners.contains_key("one"));
        // The same value is shared, not a conflict.
        let same = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
                          "data": {"a": "9"}});
        assert!(server_side_apply(&obj, &same, &req("three", false)).is_ok());
    }

    #[test]
    fn updates_take_the_fields_they_change() {
        let applied = server_side_apply(
            &json!({}),
            &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
                    "data": {"a": "1"}}),
            &req("applier", false),
        )
        .expect("apply");
        let mut updated = applied.clone();
        updated["data"]["a"] = json!("2");
        track_update(
            Some(&applied),
            &mut updated,
            "kubectl-edit",
            Lists::Builtin,
            MAIN,
            "v1",
            "t",
        );
        let owners = owners(&updated);
        assert_eq!(
            owners.get("kubectl-edit"),
            Some(&vec![".data.a".to_string()])
        );
        let err = server_side_apply(
            &updated,
            &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
                    "data": {"a": "1"}}),
            &req("applier", false),
        )
        .expect_err("conflict with the update");
        assert!(err.message().contains("kubectl-edit"), "{}", err.message());
    }

    #[test]
    fn keyed_items_are_removed_when_no_longer_applied() {
        let cfg = |containers: Value| {
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                   "spec": {"containers": containers}})
        };
        let obj = server_side_apply(
            &json!({}),
            &cfg(json!([{"name": "a", "image": "1"}, {"name": "b", "image": "1"}])),
            &req("m", false),
        )
        .expect("apply");
        let obj = server_side_apply(
            &obj,
            &cfg(json!([{"name": "b", "image": "2"}])),
            &req("m", false),
        )
        .expect("apply");
        assert_eq!(
            obj["spec"]["containers"],
            json!([{"name": "b", "image": "2"}])
        );
    }
}
