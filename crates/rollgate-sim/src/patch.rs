//! Patch formats: JSON merge patch, JSON patch and strategic merge patch, and the list
//! semantics (atomic, set, map keyed by fields) that strategic merge and server-side apply
//! share.

use serde_json::{Map, Value};

/// A patch that cannot be applied.
#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    /// The body is not valid for its content type.
    #[error("invalid patch body: {0}")]
    Body(String),
    /// A JSON patch operation failed.
    #[error("JSON patch failed: {0}")]
    Apply(String),
}

/// Patch content types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    /// `application/merge-patch+json`.
    Merge,
    /// `application/json-patch+json`.
    Json,
    /// `application/strategic-merge-patch+json`.
    Strategic,
    /// `application/apply-patch+yaml` (server-side apply).
    Apply,
}

impl PatchKind {
    /// From a Content-Type header value.
    pub fn from_content_type(ct: &str) -> Option<Self> {
        match ct.split(';').next().unwrap_or_default().trim() {
            "application/merge-patch+json" => Some(Self::Merge),
            "application/json-patch+json" => Some(Self::Json),
            "application/strategic-merge-patch+json" => Some(Self::Strategic),
            "application/apply-patch+yaml"
            | "application/apply-patch+json"
            | "application/apply-patch+cbor" => Some(Self::Apply),
            _ => None,
        }
    }
}

/// Parses a patch body (YAML accepted for apply).
pub fn parse_body(kind: PatchKind, body: &[u8]) -> Result<Value, PatchError> {
    let text = std::str::from_utf8(body).map_err(|e| PatchError::Body(e.to_string()))?;
    match kind {
        PatchKind::Apply => serde_json::from_str(text)
            .or_else(|_| serde_saphyr::from_str::<Value>(text))
            .map_err(|e| PatchError::Body(e.to_string())),
        _ => serde_json::from_str(text).map_err(|e| PatchError::Body(e.to_string())),
    }
}

/// Applies a merge, JSON or strategic merge patch to `doc`.
pub fn apply(kind: PatchKind, doc: &mut Value, patch: &Value) -> Result<(), PatchError> {
    match kind {
        PatchKind::Merge => {
            if !patch.is_object() {
                return Err(PatchError::Body(
                    "a merge patch must be a JSON object".into(),
                ));
            }
            json_patch::merge(doc, patch);
            Ok(())
        }
        PatchKind::Json => {
            let ops: json_patch::Patch = serde_json::from_value(patch.clone())
                .map_err(|e| PatchError::Body(e.to_string()))?;
            json_patch::patch(doc, &ops).map_err(|e| PatchError::Apply(e.to_string()))
        }
        PatchKind::Strategic | PatchKind::Apply => {
            if !patch.is_object() {
                return Err(PatchError::Body(
                    "a strategic merge patch must be a JSON object".into(),
                ));
            }
            strategic_merge(doc, patch, Lists::Builtin, "");
            Ok(())
        }
    }
}

/// How a list merges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListType {
    /// Replaced as a whole.
    Atomic,
    /// A set of scalars: merged by union.
    Set,
    /// A list of objects keyed by these fields: merged element by element.
    Map(Vec<String>),
}

/// Where list semantics come from at some position of a document: the built-in types'
/// patch strategies (by field name), a custom resource's OpenAPI schema node, or nothing
/// known (all lists atomic).
#[derive(Debug, Clone, Copy)]
pub enum Lists<'a> {
    /// Built-in Kubernetes types.
    Builtin,
    /// The schema node of the current value.
    Schema(&'a Value),
    /// No knowledge.
    Unknown,
}

impl<'a> Lists<'a> {
    /// The context of a custom resource with this root schema (`None`: no schema).
    pub fn for_schema(schema: Option<&'a Value>) -> Self {
        schema.map_or(Self::Builtin, Self::Schema)
    }

    /// Context of field `name` of the current object.
    pub fn field(self, name: &str, at_root: bool) -> Self {
        match self {
            Self::Builtin => Self::Builtin,
            Self::Unknown => Self::Unknown,
            Self::Schema(_) if at_root && name == "metadata" => Self::Builtin,
            Self::Schema(s) => {
                if let Some(p) = s["properties"].get(name) {
                    Self::Schema(p)
                } else if s["additionalProperties"].is_object() {
                    Self::Schema(&s["additionalProperties"])
                } else {
                    Self::Unknown
                }
            }
        }
    }

    /// Context of the items of the current list.
    pub fn items(self) -> Self {
        match self {
            Self::Schema(s) if s["items"].is_object() => Self::Schema(&s["items"]),
            Self::Schema(_) => Self::Unknown,
            other => other,
        }
    }

    /// List type of the current list, which is field `name` holding `items`.
    pub fn list_type(self, name: &str, items: &[Value]) -> ListType {
        match self {
            Self::Unknown => ListType::Atomic,
            Self::Schema(s) => match s["x-kubernetes-list-type"].as_str() {
                Some("set") => ListType::Set,
                Some("map") => ListType::Map(
                    s["x-kubernetes-list-map-keys"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|k| k.as_str().map(String::from))
                        .collect(),
                ),
                _ => ListType::Atomic,
            },
            Self::Builtin => builtin_list_type(name, items),
        }
    }
}

/// Patch strategies of the built-in types, by field name.
fn builtin_list_type(field: &str, items: &[Value]) -> ListType {
    let key = |k: &str| ListType::Map(vec![k.to_string()]);
    match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets"
        | "resourceClaims" => key("name"),
        "volumeMounts" => key("mountPath"),
        "volumeDevices" => key("devicePath"),
        "hostAliases" => key("ip"),
        "ports" => {
            if items.iter().any(|i| i.get("containerPort").is_some()) {
                key("containerPort")
            } else {
                key("port")
            }
        }
        "ownerReferences" => key("uid"),
        "conditions" => key("type"),
        "topologySpreadConstraints" => key("topologyKey"),
        "finalizers" => ListType::Set,
        _ => ListType::Atomic,
    }
}

/// Whether list element `item` has the same key fields as `other`.
pub fn same_key(item: &Value, other: &Value, keys: &[String]) -> bool {
    !keys.is_empty()
        && keys.iter().all(|k| item.get(k) == other.get(k))
        && keys.iter().any(|k| item.get(k).is_some())
}

/// Strategic merge of `patch` into `doc`: objects merge recursively (`null` deletes), lists
/// merge as their type says, `$patch`, `$retainKeys` and `$deleteFromPrimitiveList`
/// directives are honoured, `$setElementOrder` is ignored.
pub fn strategic_merge(doc: &mut Value, patch: &Value, lists: Lists<'_>, field: &str) {
    match patch {
        Value::Object(p) => {
            match p.get("$patch").and_then(Value::as_str) {
                Some("replace") => {
                    *doc = Value::Object(without_directives(p));
                    return;
                }
                Some("delete") => {
                    *doc = Value::Null;
                    return;
                }
                _ => {}
            }
            if !doc.is_object() {
                *doc = Value::Object(Map::new());
            }
            let at_root = field.is_empty();
            let Some(d) = doc.as_object_mut() else {
                return;
            };
            for (k, v) in p {
                if let Some(list) = k.strip_prefix("$deleteFromPrimitiveList/") {
                    if let (Some(existing), Some(remove)) =
                        (d.get_mut(list).and_then(Value::as_array_mut), v.as_array())
                    {
                        existing.retain(|x| !remove.contains(x));
                    }
                    continue;
                }
                if k.starts_with('$') {
                    continue;
                }
                let delete_me =
                    v.is_null() || v.get("$patch").and_then(Value::as_str) == Some("delete");
                if delete_me {
                    d.remove(k);
                } else {
                    let child = d.entry(k.clone()).or_insert(Value::Null);
                    strategic_merge(child, v, lists.field(k, at_root), k);
                }
            }
            if let Some(retain) = p.get("$retainKeys").and_then(Value::as_array) {
                d.retain(|k, _| retain.iter().any(|r| r.as_str() == Some(k.as_str())));
            }
        }
        Value::Array(p) => {
            let ty = lists.list_type(field, p);
            let replace = p
                .iter()
                .any(|i| i.get("$patch").and_then(Value::as_str) == Some("replace"));
            match (ty, doc.as_array_mut()) {
                (ListType::Map(keys), Some(d)) if !replace => {
                    for item in p {
                        if item.get("$patch").and_then(Value::as_str) == Some("delete") {
                            d.retain(|x| !same_key(x, item, &keys));
                            continue;
                        }
                        match d.iter_mut().find(|x| same_key(x, item, &keys)) {
                            Some(existing) => strategic_merge(existing, item, lists.items(), ""),
                            None => d.push(strip_nested_directives(item)),
                        }
                    }
                }
                (ListType::Set, Some(d)) => {
                    for item in p {
                        if !d.contains(item) {
                            d.push(item.clone());
                        }
                    }
                }
                _ => {
                    *doc = Value::Array(
                        p.iter()
                            .filter(|i| i.get("$patch").is_none())
                            .map(strip_nested_directives)
                            .collect(),
                    );
                }
            }
        }
        other => *doc = other.clone(),
    }
}

fn without_directives(p: &Map<String, Value>) -> Map<String, Value> {
    p.iter()
        .filter(|(k, _)| !k.starts_with('$'))
        .map(|(k, v)| (k.clone(), strip_nested_directives(v)))
        .collect()
}

fn strip_nested_directives(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(without_directives(m)),
        Value::Array(a) => Value::Array(a.iter().map(strip_nested_directives).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn smp(mut doc: Value, patch: Value) -> Value {
        strategic_merge(&mut doc, &patch, Lists::Builtin, "");
        doc
    }

    #[test]
    fn keyed_lists_merge_and_other_lists_are_replaced() {
        let doc = json!({"spec": {"containers": [{"name": "a", "image": "1"}, {"name": "b", "image": "1"}],
                                   "args": ["x"]}});
        let out = smp(
            doc,
            json!({"spec": {"containers": [{"name": "b", "image": "2"}], "args": ["y"]}}),
        );
        assert_eq!(out["spec"]["containers"][0]["image"], "1");
        assert_eq!(out["spec"]["containers"][1]["image"], "2");
        assert_eq!(out["spec"]["args"], json!(["y"]));
    }

    #[test]
    fn ports_key_by_port_or_container_port() {
        let svc = smp(
            json!({"spec": {"ports": [{"port": 80, "name": "http"}]}}),
            json!({"spec": {"ports": [{"port": 443}, {"port": 80, "name": "web"}]}}),
        );
        assert_eq!(
            svc["spec"]["ports"],
            json!([{"port": 80, "name": "web"}, {"port": 443}])
        );
        let pod = smp(
            json!({"ports": [{"containerPort": 80}]}),
            json!({"ports": [{"containerPort": 80, "protocol": "TCP"}]}),
        );
        assert_eq!(
            pod["ports"],
            json!([{"containerPort": 80, "protocol": "TCP"}])
        );
    }

    #[test]
    fn directives() {
        let doc = json!({"metadata": {"finalizers": ["a", "b"], "labels": {"x": "1", "y": "2"}},
                         "spec": {"containers": [{"name": "a"}, {"name": "b"}],
                                  "selector": {"p": "1", "q": "2"}}});
        let out = smp(
            doc,
            json!({
                "metadata": {"finalizers": ["c"], "$deleteFromPrimitiveList/finalizers": ["a"],
                             "labels": {"x": null}},
                "spec": {"containers": [{"name": "a", "$patch": "delete"}],
                         "$setElementOrder/containers": [{"name": "b"}],
                         "selector": {"$patch": "replace", "r": "3"}}
            }),
        );
        assert_eq!(out["metadata"]["finalizers"], json!(["b", "c"]));
        assert_eq!(out["metadata"]["labels"], json!({"y": "2"}));
        assert_eq!(out["spec"]["containers"], json!([{"name": "b"}]));
        assert_eq!(out["spec"]["selector"], json!({"r": "3"}));
        let replaced = smp(
            json!({"env": [{"name": "A"}, {"name": "B"}]}),
            json!({"env": [{"$patch": "replace"}, {"name": "C"}]}),
        );
        assert_eq!(replaced["env"], json!([{"name": "C"}]));
    }

    #[test]
    fn schema_list_types() {
        let schema = json!({"properties": {"spec": {"properties": {
            "items": {"type": "array", "x-kubernetes-list-type": "map",
                      "x-kubernetes-list-map-keys": ["id"], "items": {"type": "object"}},
            "tags": {"type": "array", "x-kubernetes-list-type": "set"},
            "containers": {"type": "array"}}}}});
        let mut doc = json!({"spec": {"items": [{"id": 1, "v": 1}], "tags": ["a"],
                                       "containers": [{"name": "a"}]}});
        strategic_merge(
            &mut doc,
            &json!({"spec": {"items": [{"id": 1, "v": 2}, {"id": 2}], "tags": ["b"],
                             "containers": [{"name": "b"}]}}),
            Lists::Schema(&schema),
            "",
        );
        assert_eq!(doc["spec"]["items"], json!([{"id": 1, "v": 2}, {"id": 2}]));
        assert_eq!(doc["spec"]["tags"], json!(["a", "b"]));
        assert_eq!(doc["spec"]["containers"], json!([{"name": "b"}]));
    }

    #[test]
    fn apply_body_may_be_yaml() {
        let v = parse_body(PatchKind::Apply, b"metadata:\n  name: x\n").expect("yaml");
        assert_eq!(v["metadata"]["name"], "x");
    }
}
