//! Building JSON merge patches (RFC 7386).

use serde_json::{Map, Value};

/// The merge patch that turns `old` into `new`: changed and added members with their new
/// value, removed members as `null`, equal members left out. Objects are compared member by
/// member; anything else (arrays included) is replaced whole.
///
/// A merge patch cannot set a member to `null`, so `new` should hold none (serialized Rust
/// types skip their `None`s).
pub fn diff(old: &Value, new: &Value) -> Value {
    match (old, new) {
        (Value::Object(old), Value::Object(new)) => {
            let mut patch = Map::new();
            for key in old.keys() {
                if !new.contains_key(key) {
                    patch.insert(key.clone(), Value::Null);
                }
            }
            for (key, value) in new {
                match old.get(key) {
                    Some(before) if before == value => {}
                    Some(before) => {
                        patch.insert(key.clone(), diff(before, value));
                    }
                    None => {
                        patch.insert(key.clone(), value.clone());
                    }
                }
            }
            Value::Object(patch)
        }
        _ => new.clone(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// RFC 7386 `MergePatch(target, patch)`.
    fn apply(target: &Value, patch: &Value) -> Value {
        let Value::Object(members) = patch else {
            return patch.clone();
        };
        let mut out = match target {
            Value::Object(t) => t.clone(),
            _ => Map::new(),
        };
        for (key, value) in members {
            if value.is_null() {
                out.remove(key);
            } else {
                let merged = apply(out.get(key).unwrap_or(&Value::Null), value);
                out.insert(key.clone(), merged);
            }
        }
        Value::Object(out)
    }

    #[test]
    fn removed_members_become_null_and_equal_ones_are_left_out() {
        let old = json!({
            "metadata": {"labels": {"app": "web"}, "annotations": {"a": "1"}},
            "spec": {"containers": [{"name": "web", "image": "web:2"}], "nodeSelector": {"x": "y"}}
        });
        let new = json!({
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "web:1"}]}
        });
        let patch = diff(&old, &new);
        assert_eq!(
            patch,
            json!({
                "metadata": {"annotations": null},
                "spec": {"containers": [{"name": "web", "image": "web:1"}], "nodeSelector": null}
            })
        );
        assert_eq!(apply(&old, &patch), new);
    }

    #[test]
    fn applying_the_diff_always_yields_new() {
        let cases = [
            (json!({}), json!({"a": {"b": 1}})),
            (json!({"a": 1}), json!({"a": {"b": [1, 2]}})),
            (json!({"a": {"b": 1, "c": 2}}), json!({"a": 3})),
            (json!({"a": [1]}), json!({"a": [1, 2]})),
            (json!({"a": {"b": {"c": 1}}}), json!({"a": {"b": {"d": 1}}})),
        ];
        for (old, new) in cases {
            assert_eq!(apply(&old, &diff(&old, &new)), new, "{old} -> {new}");
        }
        assert_eq!(diff(&json!({"a": 1}), &json!({"a": 1})), json!({}));
    }
}
