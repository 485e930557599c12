//! Patch formats: JSON merge patch, JSON patch, strategic merge patch, server-side apply.

use serde_json::Value;

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
    /// `application/apply-patch+yaml`.
    Apply,
}

impl PatchKind {
    /// From a Content-Type header value.
    pub fn from_content_type(ct: &str) -> Option<Self> {
        match ct.split(';').next().unwrap_or_default().trim() {
            "application/merge-patch+json" => Some(Self::Merge),
            "application/json-patch+json" => Some(Self::Json),
            "application/strategic-merge-patch+json" => Some(Self::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+json" => Some(Self::Apply),
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

/// Applies a parsed patch to `doc`.
pub fn apply(kind: PatchKind, doc: &mut Value, patch: &Value) -> Result<(), PatchError> {
    match kind {
        PatchKind::Merge => {
            json_patch::merge(doc, patch);
            Ok(())
        }
        PatchKind::Json => {
            let ops: json_patch::Patch = serde_json::from_value(patch.clone())
                .map_err(|e| PatchError::Body(e.to_string()))?;
            json_patch::patch(doc, &ops).map_err(|e| PatchError::Apply(e.to_string()))
        }
        PatchKind::Strategic | PatchKind::Apply => {
            strategic_merge(doc, patch, "");
            Ok(())
        }
    }
}

/// The merge key of lists that strategic merge patches merge element-wise.
fn merge_key(field: &str) -> Option<&'static str> {
    match field {
        "containers" | "initContainers" | "env" | "volumes" | "volumeMounts"
        | "imagePullSecrets" => Some("name"),
        "ports" => Some("port"),
        "ownerReferences" => Some("uid"),
        "conditions" => Some("type"),
        _ => None,
    }
}

/// Strategic merge: objects merge recursively (`null` deletes), keyed lists merge by key,
/// other lists are replaced.
pub fn strategic_merge(doc: &mut Value, patch: &Value, field: &str) {
    match (doc, patch) {
        (Value::Object(d), Value::Object(p)) => {
            for (k, v) in p {
                if k == "$patch" || k.starts_with("$setElementOrder") {
                    continue;
                }
                if v.is_null() {
                    d.remove(k);
                } else {
                    strategic_merge(d.entry(k.clone()).or_insert(Value::Null), v, k);
                }
            }
        }
        (Value::Array(d), Value::Array(p)) if merge_key(field).is_some() => {
            let key = merge_key(field).unwrap_or("name");
            for item in p {
                let id = item.get(key);
                match id.and_then(|id| d.iter_mut().find(|x| x.get(key) == Some(id))) {
                    Some(existing) => strategic_merge(existing, item, ""),
                    None => d.push(item.clone()),
                }
            }
        }
        (d, p) => *d = p.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strategic_merge_merges_containers_by_name_and_replaces_other_lists() {
        let mut doc = json!({"spec": {"containers": [{"name": "a", "image": "1"}, {"name": "b", "image": "1"}],
                                       "args": ["x"]}});
        let patch = json!({"spec": {"containers": [{"name": "b", "image": "2"}], "args": ["y"]}});
        strategic_merge(&mut doc, &patch, "");
        assert_eq!(doc["spec"]["containers"][0]["image"], "1");
        assert_eq!(doc["spec"]["containers"][1]["image"], "2");
        assert_eq!(doc["spec"]["args"], json!(["y"]));
    }

    #[test]
    fn apply_body_may_be_yaml() {
        let v = parse_body(PatchKind::Apply, b"metadata:\n  name: x\n").expect("yaml");
        assert_eq!(v["metadata"]["name"], "x");
    }
}
