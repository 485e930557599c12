//! Structural-schema handling of custom resources, as the API server does on every write:
//! pruning of unknown fields (reported, for `fieldValidation`), pruning of non-nullable nulls,
//! defaulting, and validation of the values against the schema (`type`, `format`, bounds,
//! `required`, `enum`, lengths, `allOf`/`anyOf`/`oneOf`).

use serde_json::Value;

use crate::error::Cause;

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    /// An object field.
    Key(String),
    /// An array item.
    Index(usize),
}

/// `spec.steps[0].setWeight`, as the API server names fields in messages.
pub fn path_string(path: &[Seg]) -> String {
    let mut s = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            Seg::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

/// The value at `path` in `v`.
pub fn value_at<'a>(v: &'a Value, path: &[Seg]) -> Option<&'a Value> {
    path.iter().try_fold(v, |cur, seg| match seg {
        Seg::Key(k) => cur.get(k),
        Seg::Index(i) => cur.get(i),
    })
}

/// Removes the field at `path` from `v` (nothing when it is not there).
pub fn remove_at(v: &mut Value, path: &[Seg]) {
    let Some((last, parent)) = path.split_last() else {
        return;
    };
    let mut cur = v;
    for seg in parent {
        let next = match seg {
            Seg::Key(k) => cur.get_mut(k),
            Seg::Index(i) => cur.get_mut(*i),
        };
        let Some(next) = next else { return };
        cur = next;
    }
    match (last, cur) {
        (Seg::Key(k), Value::Object(m)) => {
            m.remove(k);
        }
        (Seg::Index(i), Value::Array(items)) if *i < items.len() => {
            items.remove(*i);
        }
        _ => {}
    }
}

/// Applies `default`s of the schema, removes nulls the schema does not allow (`nullable`
/// unset) and fields the schema does not know (unless
/// `x-kubernetes-preserve-unknown-fields`). Nodes without `properties` or
/// `additionalProperties` are kept as they are. Returns the paths of the unknown fields
/// removed.
pub fn default_and_prune(schema: &Value, obj: &mut Value) -> Vec<Vec<Seg>> {
    let mut unknown = Vec::new();
    walk(schema, obj, true, &mut Vec::new(), &mut unknown);
    unknown
}

/// The paths of the fields of `obj` that the schema does not know (what
/// [`default_and_prune`] would remove).
pub fn unknown_fields(schema: &Value, obj: &Value) -> Vec<Vec<Seg>> {
    let mut probe = obj.clone();
    default_and_prune(schema, &mut probe)
}

fn nullable(schema: &Value) -> bool {
    schema["nullable"].as_bool() == Some(true)
}

fn walk(schema: &Value, v: &mut Value, root: bool, path: &mut Vec<Seg>, out: &mut Vec<Vec<Seg>>) {
    match v {
        Value::Object(m) => {
            let props = schema["properties"].as_object();
            let additional = &schema["additionalProperties"];
            let preserve = schema["x-kubernetes-preserve-unknown-fields"].as_bool() == Some(true);
            let embedded = schema["x-kubernetes-embedded-resource"].as_bool() == Some(true);
            // Nulls of fields that may not be null go (a default then fills them in).
            m.retain(|k, child| {
                let field_schema = props
                    .and_then(|p| p.get(k))
                    .or_else(|| additional.is_object().then_some(additional));
                !(child.is_null() && field_schema.is_some_and(|s| !nullable(s)))
            });
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
                path.push(Seg::Key(k.clone()));
                if let Some(p) = props.and_then(|p| p.get(k)) {
                    walk(p, child, false, path, out);
                } else if additional.is_object() {
                    walk(additional, child, false, path, out);
                } else if props.is_some() && !preserve && additional.as_bool() != Some(true) {
                    prune.push(k.clone());
                    out.push(path.clone());
                }
                path.pop();
            }
            for k in prune {
                m.remove(&k);
            }
        }
        Value::Array(items) if schema["items"].is_object() => {
            for (i, item) in items.iter_mut().enumerate() {
                path.push(Seg::Index(i));
                walk(&schema["items"], item, false, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

/// Which part of an object a validation looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Everything but `apiVersion`, `kind` and `metadata`.
    All,
    /// Everything but those and `status` (a write to the main resource of a type with a
    /// status subresource).
    AllButStatus,
    /// Only `status` (a write to the status subresource).
    Status,
}

/// A value that breaks the schema: the cause, and the path of the value it is about (for a
/// missing required field, the object that lacks it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// The path of the value the cause is about.
    pub subject: Vec<Seg>,
    /// Field path, reason and message.
    pub cause: Cause,
}

/// Validates `obj` (already pruned and defaulted) against the structural schema.
pub fn validate(schema: &Value, obj: &Value, scope: Scope) -> Vec<Issue> {
    let mut out = Vec::new();
    let in_scope = |k: &str| match scope {
        Scope::All => true,
        Scope::AllButStatus => k != "status",
        Scope::Status => k == "status",
    };
    let mut path = Vec::new();
    if let Some(m) = obj.as_object() {
        for r in schema["required"].as_array().into_iter().flatten() {
            if let Some(r) = r.as_str()
                && in_scope(r)
                && !m.contains_key(r)
            {
                out.push(Issue {
                    subject: Vec::new(),
                    cause: Cause::required(r, ""),
                });
            }
        }
        for (k, child) in m {
            if matches!(k.as_str(), "apiVersion" | "kind" | "metadata") || !in_scope(k) {
                continue;
            }
            if let Some(p) = schema["properties"].get(k) {
                path.push(Seg::Key(k.clone()));
                check(p, child, &mut path, &mut out);
                path.pop();
            }
        }
    }
    out.dedup();
    out
}

/// Drops the issues about values that the update did not change (validation ratcheting: an
/// object stored before its schema tightened can still be updated elsewhere).
pub fn ratchet(issues: Vec<Issue>, old: &Value, new: &Value) -> Vec<Issue> {
    issues
        .into_iter()
        .filter(|i| {
            let before = value_at(old, &i.subject);
            before.is_none() || before != value_at(new, &i.subject)
        })
        .collect()
}

/// The JSON type of a value, as schema messages name it.
fn type_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if is_integer(n) => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Integers, including floats without a fraction (`1.0`), as the API server counts them.
fn is_integer(n: &serde_json::Number) -> bool {
    n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
}

fn has_type(want: &str, v: &Value) -> bool {
    match want {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "boolean" => v.is_boolean(),
        "number" => v.is_number(),
        "integer" => matches!(v, Value::Number(n) if is_integer(n)),
        _ => true,
    }
}

/// A bound as the API server prints it: `100`, not `100.0`.
fn bound(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{}", f as i64)
    } else {
        f.to_string()
    }
}

fn check(schema: &Value, v: &Value, path: &mut Vec<Seg>, out: &mut Vec<Issue>) {
    let field = path_string(path);
    let mut push = |cause: Cause| {
        out.push(Issue {
            subject: path.clone(),
            cause,
        });
    };
    if v.is_null() {
        if !nullable(schema) && schema["type"].is_string() {
            let want = schema["type"].as_str().unwrap_or_default();
            push(Cause::type_invalid(
                &field,
                "null",
                &format!("{field} in body must be of type {want}: \"null\""),
            ));
        }
        return;
    }
    if schema["x-kubernetes-int-or-string"].as_bool() == Some(true) {
        if !(v.is_string() || has_type("integer", v)) {
            push(Cause::type_invalid(
                &field,
                type_of(v),
                &format!(
                    "{field} in body must be of type integer or string: \"{}\"",
                    type_of(v)
                ),
            ));
            return;
        }
    } else if let Some(want) = schema["type"].as_str()
        && !has_type(want, v)
    {
        push(Cause::type_invalid(
            &field,
            type_of(v),
            &format!("{field} in body must be of type {want}: \"{}\"", type_of(v)),
        ));
        return;
    }
    if let Some(allowed) = schema["enum"].as_array()
        && !allowed.iter().any(|a| a == v || same_number(a, v))
    {
        push(Cause::not_supported(&field, v, allowed));
    }
    match v {
        Value::Number(n) => check_number(schema, v, n, &field, &mut push),
        Value::String(s) => {
            let len = s.chars().count() as u64;
            if let Some(max) = schema["maxLength"].as_u64()
                && len > max
            {
                push(Cause::too_long(&field, max));
            }
            if let Some(min) = schema["minLength"].as_u64()
                && len < min
            {
                push(Cause::invalid(
                    &field,
                    v,
                    &format!("{field} in body should be at least {min} chars long"),
                ));
            }
        }
        Value::Array(items) => {
            if let Some(max) = schema["maxItems"].as_u64()
                && items.len() as u64 > max
            {
                push(Cause::too_many(&field, items.len(), max));
            }
            if let Some(min) = schema["minItems"].as_u64()
                && (items.len() as u64) < min
            {
                push(Cause::invalid(
                    &field,
                    v,
                    &format!("{field} in body should have at least {min} items"),
                ));
            }
        }
        Value::Object(m) => {
            for r in schema["required"].as_array().into_iter().flatten() {
                if let Some(r) = r.as_str()
                    && !m.contains_key(r)
                {
                    let at = if field.is_empty() {
                        r.to_string()
                    } else {
                        format!("{field}.{r}")
                    };
                    push(Cause::required(&at, ""));
                }
            }
        }
        _ => {}
    }
    match v {
        Value::Array(items) if schema["items"].is_object() => {
            for (i, item) in items.iter().enumerate() {
                path.push(Seg::Index(i));
                check(&schema["items"], item, path, out);
                path.pop();
            }
        }
        Value::Object(m) => {
            let props = schema["properties"].as_object();
            let additional = &schema["additionalProperties"];
            for (k, child) in m {
                let sub = props
                    .and_then(|p| p.get(k))
                    .or_else(|| additional.is_object().then_some(additional));
                if let Some(sub) = sub {
                    path.push(Seg::Key(k.clone()));
                    check(sub, child, path, out);
                    path.pop();
                }
            }
        }
        _ => {}
    }
    check_combinators(schema, v, path, out);
}

fn same_number(a: &Value, b: &Value) -> bool {
    matches!((a.as_f64(), b.as_f64()), (Some(x), Some(y)) if x == y)
}

fn check_number(
    schema: &Value,
    v: &Value,
    n: &serde_json::Number,
    field: &str,
    push: &mut impl FnMut(Cause),
) {
    let too_big = |max: &str| format!("{field} in body should be less than or equal to {max}");
    let too_small = |min: &str| format!("{field} in body should be greater than or equal to {min}");
    match schema["format"].as_str() {
        Some("int32") => {
            if let Some(i) = n.as_i64() {
                if i > i64::from(i32::MAX) {
                    push(Cause::invalid(field, v, &too_big(&i32::MAX.to_string())));
                } else if i < i64::from(i32::MIN) {
                    push(Cause::invalid(field, v, &too_small(&i32::MIN.to_string())));
                }
            } else if n.is_u64() {
                push(Cause::invalid(field, v, &too_big(&i32::MAX.to_string())));
            }
        }
        Some("int64") if n.is_u64() && !n.is_i64() => {
            push(Cause::invalid(field, v, &too_big(&i64::MAX.to_string())));
        }
        _ => {}
    }
    let Some(x) = n.as_f64() else { return };
    if let Some(max) = schema["maximum"].as_f64() {
        let exclusive = schema["exclusiveMaximum"].as_bool() == Some(true);
        if exclusive && x >= max {
            push(Cause::invalid(
                field,
                v,
                &format!("{field} in body should be less than {}", bound(max)),
            ));
        } else if x > max {
            push(Cause::invalid(field, v, &too_big(&bound(max))));
        }
    }
    if let Some(min) = schema["minimum"].as_f64() {
        let exclusive = schema["exclusiveMinimum"].as_bool() == Some(true);
        if exclusive && x <= min {
            push(Cause::invalid(
                field,
                v,
                &format!("{field} in body should be greater than {}", bound(min)),
            ));
        } else if x < min {
            push(Cause::invalid(field, v, &too_small(&bound(min))));
        }
    }
}

fn check_combinators(schema: &Value, v: &Value, path: &mut Vec<Seg>, out: &mut Vec<Issue>) {
    let field = path_string(path);
    let passes = |s: &Value, path: &mut Vec<Seg>| {
        let mut sub = Vec::new();
        check(s, v, path, &mut sub);
        sub.is_empty()
    };
    for s in schema["allOf"].as_array().into_iter().flatten() {
        check(s, v, path, out);
    }
    if let Some(any) = schema["anyOf"].as_array()
        && !any.is_empty()
        && !any.iter().any(|s| passes(s, path))
    {
        out.push(Issue {
            subject: path.clone(),
            cause: Cause::invalid(
                &field,
                v,
                &format!("{field} in body must validate at least one schema (anyOf)"),
            ),
        });
    }
    if let Some(one) = schema["oneOf"].as_array()
        && !one.is_empty()
        && one.iter().filter(|s| passes(s, path)).count() != 1
    {
        out.push(Issue {
            subject: path.clone(),
            cause: Cause::invalid(
                &field,
                v,
                &format!("{field} in body must validate one and only one schema (oneOf)"),
            ),
        });
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
        let unknown = default_and_prune(&schema, &mut obj);
        let mut unknown: Vec<String> = unknown.iter().map(|p| path_string(p)).collect();
        unknown.sort();
        assert_eq!(
            unknown,
            ["other", "spec.items[0].b", "spec.junk", "status.extra"]
        );
        assert_eq!(
            obj,
            json!({"apiVersion": "x/v1", "kind": "X", "metadata": {"name": "n"},
                   "spec": {"replicas": 1, "items": [{"a": "x"}], "free": {"z": 1},
                            "labels": {"k": "v"}},
                   "status": {"phase": "Ok"}})
        );
    }

    fn rollout_schema() -> Value {
        json!({"type": "object", "required": ["spec"], "properties": {
            "spec": {"type": "object", "required": ["selector"], "properties": {
                "replicas": {"type": "integer", "format": "int32", "minimum": 0.0,
                             "nullable": true},
                "size": {"type": "integer", "format": "int32", "minimum": 0.0,
                         "maximum": 2147483647.0},
                "selector": {"type": "string", "maxLength": 5},
                "weight": {"type": "number", "exclusiveMaximum": true, "maximum": 1.0},
                "port": {"x-kubernetes-int-or-string": true},
                "strategy": {"type": "string", "enum": ["a", "b"], "default": "a"},
                "hidden": {"type": "boolean"},
                "steps": {"type": "array", "maxItems": 2, "items": {"type": "object",
                    "required": ["w"], "properties": {"w": {"type": "integer"}}}},
                "tags": {"type": "object", "additionalProperties": {"type": "string"}},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}},
            "status": {"type": "object", "properties": {"count": {"type": "integer"}}}}})
    }

    /// The causes as messages, sorted (fields are visited in map order).
    fn fields(issues: &[Issue]) -> Vec<String> {
        let mut all: Vec<String> = issues.iter().map(|i| i.cause.to_string()).collect();
        all.sort();
        all
    }

    #[test]
    fn valid_objects_pass() {
        let schema = rollout_schema();
        let mut obj = json!({"apiVersion": "x/v1", "kind": "X", "metadata": {"name": "n"},
            "spec": {"replicas": null, "size": 2147483647, "selector": "ab", "weight": 0.5,
                     "port": "http", "hidden": false, "steps": [{"w": 1.0}],
                     "tags": {"a": "b"}, "free": {"anything": [1, "x"]}},
            "status": {"count": 1}});
        default_and_prune(&schema, &mut obj);
        assert_eq!(obj["spec"]["strategy"], "a", "defaulted");
        assert!(validate(&schema, &obj, Scope::All).is_empty());
    }

    #[test]
    fn types_bounds_required_enums_and_lengths_are_enforced() {
        let schema = rollout_schema();
        let obj = json!({"spec": {"replicas": -1, "size": 2147483648_u64, "selector": "abcdef",
            "weight": 1, "port": true, "strategy": "c", "hidden": "yes",
            "steps": [{"w": "x"}, {}, {"w": 1}], "tags": {"a": 1}},
            "status": {"count": "many"}});
        assert_eq!(
            fields(&validate(&schema, &obj, Scope::AllButStatus)),
            [
                "spec.hidden: Invalid value: \"string\": spec.hidden in body must be of type boolean: \"string\"",
                "spec.port: Invalid value: \"boolean\": spec.port in body must be of type integer or string: \"boolean\"",
                "spec.replicas: Invalid value: -1: spec.replicas in body should be greater than or equal to 0",
                "spec.selector: Too long: may not be more than 5 bytes",
                "spec.size: Invalid value: 2147483648: spec.size in body should be less than or equal to 2147483647",
                "spec.steps: Too many: 3: must have at most 2 items",
                "spec.steps[0].w: Invalid value: \"string\": spec.steps[0].w in body must be of type integer: \"string\"",
                "spec.steps[1].w: Required value",
                "spec.strategy: Unsupported value: \"c\": supported values: \"a\", \"b\"",
                "spec.tags.a: Invalid value: \"integer\": spec.tags.a in body must be of type string: \"integer\"",
                "spec.weight: Invalid value: 1: spec.weight in body should be less than 1",
            ]
        );
        let status = validate(&schema, &obj, Scope::Status);
        assert_eq!(
            fields(&status),
            [
                "status.count: Invalid value: \"string\": status.count in body must be of type integer: \"string\""
            ]
        );
        assert_eq!(status[0].cause.reason, "FieldValueTypeInvalid");
        assert_eq!(status[0].cause.field, "status.count");
        let missing = validate(&schema, &json!({"metadata": {}}), Scope::All);
        assert_eq!(fields(&missing), ["spec: Required value"]);
    }

    #[test]
    fn non_nullable_nulls_are_pruned_and_defaulted() {
        let schema = rollout_schema();
        let mut obj = json!({"spec": {"selector": "a", "strategy": null, "size": null,
                                      "replicas": null, "steps": [null]}});
        default_and_prune(&schema, &mut obj);
        assert_eq!(
            obj["spec"],
            json!({"selector": "a", "strategy": "a", "replicas": null, "steps": [null]})
        );
        assert_eq!(
            fields(&validate(&schema, &obj, Scope::All)),
            [
                "spec.steps[0]: Invalid value: \"null\": spec.steps[0] in body must be of type object: \"null\""
            ]
        );
    }

    #[test]
    fn unchanged_values_ratchet() {
        let schema = rollout_schema();
        let old = json!({"spec": {"selector": "toolong", "size": -1}});
        let new = json!({"spec": {"selector": "toolong", "size": -2}});
        let issues = ratchet(validate(&schema, &new, Scope::All), &old, &new);
        assert_eq!(
            fields(&issues),
            [
                "spec.size: Invalid value: -2: spec.size in body should be greater than or equal to 0"
            ]
        );
    }

    #[test]
    fn combinators() {
        let schema = json!({"type": "object", "properties": {"x": {"type": "object",
            "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
            "oneOf": [{"required": ["a"]}, {"required": ["b"]}],
            "anyOf": [{"required": ["a"]}, {"required": ["b"]}]}}});
        assert!(validate(&schema, &json!({"x": {"a": "1"}}), Scope::All).is_empty());
        let both = validate(&schema, &json!({"x": {"a": "1", "b": "2"}}), Scope::All);
        assert_eq!(both.len(), 1);
        assert!(both[0].cause.message.contains("oneOf"), "{both:?}");
        let neither = validate(&schema, &json!({"x": {}}), Scope::All);
        assert_eq!(neither.len(), 2, "{neither:?}");
    }
}
