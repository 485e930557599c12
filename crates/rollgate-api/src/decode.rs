//! Decoding one object at a time, with the path of the field that does not decode.
//!
//! The API server stores what its CRD schema allows, and an object stored under an older or
//! looser CRD may hold values the Rust types cannot represent (`replicas: 2147483648`,
//! `setWeight: "50%"`, `steps: [null]`, no `spec`). Readers decode such objects one by one
//! with [`decode`] (or [`rollout`]): a failure names the field, e.g.
//! `spec.replicas: invalid value: integer `2147483648`, expected i32`, so that one bad object
//! is reported instead of failing a whole list.

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::Rollout;

/// A value that does not decode, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.render())]
pub struct DecodeError {
    /// JSON path of the field, e.g. `spec.strategy.canary.steps[0]` (empty: the whole object).
    pub field: String,
    /// What is wrong with it and what was expected.
    pub problem: String,
}

impl DecodeError {
    fn render(&self) -> String {
        if self.field.is_empty() {
            self.problem.clone()
        } else {
            format!("{}: {}", self.field, self.problem)
        }
    }
}

/// Decodes `value` as a `T`; on failure, names the field that does not decode.
pub fn decode<T: DeserializeOwned>(value: &Value) -> Result<T, DecodeError> {
    match T::deserialize(value) {
        Ok(v) => Ok(v),
        Err(first) => Err(locate::<T>(value).unwrap_or_else(|| DecodeError {
            field: String::new(),
            problem: first.to_string(),
        })),
    }
}

/// Decodes a Rollout (its JSON as the API server returns it).
pub fn rollout(value: &Value) -> Result<Rollout, DecodeError> {
    if value.get("spec").is_none_or(Value::is_null) {
        return Err(DecodeError {
            field: "spec".into(),
            problem: "required, expected an object (the Rollout has no spec)".into(),
        });
    }
    decode(value)
}

/// Decodes again from a text written one field per line, and maps the line serde reports
/// back to the path of the field written there.
fn locate<T: DeserializeOwned>(value: &Value) -> Option<DecodeError> {
    let mut printer = Printer {
        out: String::new(),
        paths: vec![String::new()],
    };
    printer.value(value, "");
    let err = serde_json::from_str::<T>(&printer.out).err()?;
    let field = printer.paths.get(err.line().checked_sub(1)?)?.clone();
    let text = err.to_string();
    let position = format!(" at line {} column {}", err.line(), err.column());
    let problem = text.strip_suffix(&position).unwrap_or(&text).to_string();
    Some(DecodeError { field, problem })
}

/// Writes JSON with every member and element on its own line, recording each line's path.
struct Printer {
    out: String,
    /// The path of the field on each line (index 0: line 1).
    paths: Vec<String>,
}

impl Printer {
    fn line(&mut self, path: &str) {
        self.out.push('\n');
        self.paths.push(path.to_string());
    }

    fn value(&mut self, v: &Value, path: &str) {
        match v {
            Value::Object(m) if !m.is_empty() => {
                self.out.push('{');
                let n = m.len();
                for (i, (k, child)) in m.iter().enumerate() {
                    let child_path = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    self.line(&child_path);
                    self.out.push_str(&Value::String(k.clone()).to_string());
                    self.out.push(':');
                    self.value(child, &child_path);
                    if i + 1 < n {
                        self.out.push(',');
                    }
                }
                self.line(path);
                self.out.push('}');
            }
            Value::Array(items) if !items.is_empty() => {
                self.out.push('[');
                let n = items.len();
                for (i, child) in items.iter().enumerate() {
                    let child_path = format!("{path}[{i}]");
                    self.line(&child_path);
                    self.value(child, &child_path);
                    if i + 1 < n {
                        self.out.push(',');
                    }
                }
                self.line(path);
                self.out.push(']');
            }
            scalar => self.out.push_str(&scalar.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn good() -> Value {
        json!({
            "apiVersion": "rollgate.dev/v1alpha1",
            "kind": "Rollout",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {
                "replicas": 2,
                "paused": false,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "app", "image": "app:1"}]}
                },
                "strategy": {"canary": {"steps": [{"setWeight": 50}, {"pause": {}}]}}
            }
        })
    }

    fn with(pointer: &str, value: Value) -> Value {
        let mut v = good();
        match v.pointer_mut(pointer) {
            Some(slot) => *slot = value,
            None => panic!("no {pointer} in the fixture"),
        }
        v
    }

    fn fails(v: &Value) -> DecodeError {
        match rollout(v) {
            Ok(r) => panic!("decoded: {r:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn a_good_rollout_decodes() {
        let r = rollout(&good()).expect("decodes");
        assert_eq!(r.spec.replicas, Some(2));
    }

    #[test]
    fn each_undecodable_value_is_named_by_its_path() {
        let cases = [
            (
                "/spec/replicas",
                json!(2_147_483_648_i64),
                "spec.replicas",
                "2147483648",
            ),
            (
                "/spec/strategy/canary/steps/0/setWeight",
                json!("50%"),
                "spec.strategy.canary.steps[0].setWeight",
                "\"50%\"",
            ),
            ("/spec/paused", json!("yes"), "spec.paused", "\"yes\""),
            (
                "/spec/strategy/canary/steps/1",
                Value::Null,
                "spec.strategy.canary.steps[1]",
                "null",
            ),
            (
                "/spec/template/spec",
                json!("oops"),
                "spec.template.spec",
                "\"oops\"",
            ),
        ];
        for (pointer, bad, field, shown) in cases {
            let e = fails(&with(pointer, bad));
            assert_eq!(e.field, field, "{e}");
            assert!(e.problem.contains(shown), "{e}");
            assert!(e.problem.contains("expected"), "{e}");
            assert!(!e.problem.contains(" at line "), "{e}");
        }
    }

    #[test]
    fn a_rollout_without_spec_names_spec() {
        let mut v = good();
        if let Some(m) = v.as_object_mut() {
            m.remove("spec");
        }
        let e = fails(&v);
        assert_eq!(
            e.to_string(),
            "spec: required, expected an object (the Rollout has no spec)"
        );
    }

    #[test]
    fn a_missing_required_member_names_its_object() {
        // `weight` is required in a preferred anti-affinity.
        let v = with(
            "/spec/strategy",
            json!({"blueGreen": {"activeService": "a", "antiAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": {}}}}),
        );
        let e = fails(&v);
        assert_eq!(
            e.field,
            "spec.strategy.blueGreen.antiAffinity.preferredDuringSchedulingIgnoredDuringExecution"
        );
        assert!(e.problem.contains("missing field `weight`"), "{e}");
    }
}
