//! Structural-schema handling of custom resources: defaulting and pruning of unknown fields,
//! as the API server does on every write.

use serde_json::Value;

/// Applies `default`s of the schema and removes fields the schema does not know (unless
/// `x-kubernetes-preserve-unknown-fields`). Nodes without `properties` or
/// `additionalProperties` are kept as they are.
pub fn default_and_prune(schema: &Value, obj: &mut Value) {
    walk(schema, obj, true);
}

fn walk(schema: &Value, v: &mut Value, root: bool) {
    match v {
        Value::Object(m) => {
            let props = schema["properties"].as_object();
            let additional = &schema["additionalProperties"];
            let preserve = schema["x-kubernetes-preserve-unknown-fields"].as_bool() == Some(true);
            let embedded = schema["x-kubernetes-embedded-resource"].as_bool() == Some(true);
            if let Some(props) = props {
                for (k, p) in props {
                    if !m.contains_key(k)
                        && let Some(d) = p.get("default")
                    {
                        m.insert(k.clone(), d.clone());
                    }
                }
            }
            let keep_meta = root || embedded;
            let mut prune = Vec::new();
            for (k, child) in m.iter_mut() {
                if keep_meta && matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                    continue;
                }
                if let Some(p) = props.and_then(|p| p.get(k)) {
                    walk(p, child, false);
                } else if additional.is_object() {
                    walk(additional, child, false);
                } else if props.is_some() && !preserve && additional.as_bool() != Some(true) {
                    prune.push(k.clone());
                }
            }
            for k in prune {
                m.remove(&k);
            }
        }
        Value::Array(items) if schema["items"].is_object() => {
            for item in items {
                walk(&schema["items"], item, false);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_and_prunes() {
        let schema = json!({"type": "object", "properties": {
            "spec": {"type": "object", "properties": {
                "replicas": {"type": "integer", "default": 1},
                "items": {"type": "array", "items": {"type": "object",
                    "properties": {"a": {"type": "string", "default": "x"}}}},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}}}},
            "status": {"type": "object", "properties": {"phase": {"type": "string"}}}}});
        let mut obj = json!({"apiVersion": "x/v1", "kind": "X", "metadata": {"name": "n"},
            "spec": {"items": [{"b": 1}], "free": {"z": 1}, "labels": {"k": "v"}, "junk": 1},
            "status": {"phase": "Ok", "extra": true}, "other": 1});
        default_and_prune(&schema, &mut obj);
        assert_eq!(
            obj,
            json!({"apiVersion": "x/v1", "kind": "X", "metadata": {"name": "n"},
                   "spec": {"replicas": 1, "items": [{"a": "x"}], "free": {"z": 1},
                            "labels": {"k": "v"}},
                   "status": {"phase": "Ok"}})
        );
    }
}
