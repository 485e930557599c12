//! What decoding a request body does in the API server: finding the fields the type does not
//! know, and what `fieldValidation` makes of them (`Strict`: 400 naming every one; `Warn`, the
//! default: dropped, one `Warning` header each; `Ignore`: dropped silently).
//!
//! Custom resources know their fields from the structural schema; built-in kinds from the
//! `k8s-openapi` types: a body that decodes into its type is encoded again, and what did not
//! survive the round trip is unknown. A body that does not decode (a number where the type has
//! a string, say) is left to validation.

use std::cell::RefCell;

use k8s_openapi::Resource;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::ApiError;
use crate::registry::ResourceType;
use crate::schema::{self, Seg, path_string};

/// The `fieldValidation` directive of a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FieldValidation {
    /// Unknown fields fail the request with 400 BadRequest.
    Strict,
    /// Unknown fields are dropped with a warning each (the default).
    #[default]
    Warn,
    /// Unknown fields are dropped silently.
    Ignore,
}

impl FieldValidation {
    /// Reads the query parameter (absent or empty: `Warn`).
    pub fn parse(value: Option<&str>) -> Result<Self, ApiError> {
        match value {
            None | Some("") | Some("Warn") => Ok(Self::Warn),
            Some("Strict") => Ok(Self::Strict),
            Some("Ignore") => Ok(Self::Ignore),
            Some(other) => Err(ApiError::bad_request(format!(
                "fieldValidation: Unsupported value: \"{other}\": supported values: \"Ignore\", \"Strict\", \"Warn\""
            ))),
        }
    }
}

/// Warnings collected while handling one request, sent back as `Warning` headers.
pub type Warnings = RefCell<Vec<String>>;

/// Paths of the fields of `obj` (a body for `rt`, in storage shape) that its type does not
/// know, in the order found.
pub fn unknown_fields(rt: &ResourceType, obj: &Value) -> Vec<Vec<Seg>> {
    let mut out = match &rt.schema {
        Some(schema) => schema::unknown_fields(schema, obj),
        None => builtin_unknown(rt, obj),
    };
    if rt.is_custom() && obj["metadata"].is_object() {
        let mut path = vec![Seg::Key("metadata".into())];
        if let Some(known) = round_trip::<k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta>(
            &obj["metadata"],
        ) {
            diff(&obj["metadata"], &known, &mut path, &mut out);
        }
    }
    out
}

/// Applies the directive to the unknown fields found: an error (`Strict`), warnings (`Warn`)
/// or nothing (`Ignore`). The caller removes the fields.
pub fn judge(
    rt: &ResourceType,
    unknown: &[Vec<Seg>],
    directive: FieldValidation,
    warnings: Option<&Warnings>,
) -> Result<(), ApiError> {
    if unknown.is_empty() {
        return Ok(());
    }
    let named: Vec<String> = unknown
        .iter()
        .map(|p| format!("unknown field \"{}\"", path_string(p)))
        .collect();
    match directive {
        FieldValidation::Strict => Err(ApiError::bad_request(format!(
            "{kind} in version \"{version}\" cannot be handled as a {kind}: strict decoding error: {}",
            named.join(", "),
            kind = rt.kind,
            version = rt.version,
        ))),
        FieldValidation::Warn => {
            if let Some(w) = warnings {
                w.borrow_mut().extend(named);
            }
            Ok(())
        }
        FieldValidation::Ignore => Ok(()),
    }
}

/// Decodes `obj` as `T` and encodes it again (`None` when it does not decode).
fn round_trip<T: DeserializeOwned + Serialize>(obj: &Value) -> Option<Value> {
    let typed: T = serde_json::from_value(obj.clone()).ok()?;
    serde_json::to_value(&typed).ok()
}

fn resource_round_trip<T: Resource + DeserializeOwned + Serialize>(obj: &Value) -> Option<Value> {
    let mut probe = obj.clone();
    probe["apiVersion"] = Value::from(T::API_VERSION);
    probe["kind"] = Value::from(T::KIND);
    round_trip::<T>(&probe)
}

fn builtin_unknown(rt: &ResourceType, obj: &Value) -> Vec<Vec<Seg>> {
    use k8s_openapi::api::{apps, coordination, core, rbac};
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiext;
    let known = match (rt.storage.0.as_str(), rt.storage.1.as_str()) {
        ("", "pods") => resource_round_trip::<core::v1::Pod>(obj),
        ("", "services") => resource_round_trip::<core::v1::Service>(obj),
        ("", "secrets") => resource_round_trip::<core::v1::Secret>(obj),
        ("", "podtemplates") => resource_round_trip::<core::v1::PodTemplate>(obj),
        ("", "configmaps") => resource_round_trip::<core::v1::ConfigMap>(obj),
        ("", "events") => resource_round_trip::<core::v1::Event>(obj),
        ("", "namespaces") => resource_round_trip::<core::v1::Namespace>(obj),
        ("", "serviceaccounts") => resource_round_trip::<core::v1::ServiceAccount>(obj),
        ("apps", "replicasets") => resource_round_trip::<apps::v1::ReplicaSet>(obj),
        ("apps", "deployments") => resource_round_trip::<apps::v1::Deployment>(obj),
        ("rbac.authorization.k8s.io", "roles") => resource_round_trip::<rbac::v1::Role>(obj),
        ("rbac.authorization.k8s.io", "rolebindings") => {
            resource_round_trip::<rbac::v1::RoleBinding>(obj)
        }
        ("rbac.authorization.k8s.io", "clusterroles") => {
            resource_round_trip::<rbac::v1::ClusterRole>(obj)
        }
        ("rbac.authorization.k8s.io", "clusterrolebindings") => {
            resource_round_trip::<rbac::v1::ClusterRoleBinding>(obj)
        }
        ("coordination.k8s.io", "leases") => resource_round_trip::<coordination::v1::Lease>(obj),
        ("apiextensions.k8s.io", "customresourcedefinitions") => {
            resource_round_trip::<apiext::CustomResourceDefinition>(obj)
        }
        _ => None,
    };
    let mut out = Vec::new();
    if let Some(known) = known {
        diff(obj, &known, &mut Vec::new(), &mut out);
    }
    out
}

/// Collects the paths of the non-null fields of `sent` that `kept` lacks.
fn diff(sent: &Value, kept: &Value, path: &mut Vec<Seg>, out: &mut Vec<Vec<Seg>>) {
    match (sent, kept) {
        (Value::Object(s), Value::Object(k)) => {
            for (key, v) in s {
                if v.is_null() || (path.is_empty() && matches!(key.as_str(), "apiVersion" | "kind"))
                {
                    continue;
                }
                path.push(Seg::Key(key.clone()));
                match k.get(key) {
                    Some(kv) => diff(v, kv, path, out),
                    None => out.push(path.clone()),
                }
                path.pop();
            }
        }
        (Value::Array(s), Value::Array(k)) => {
            for (i, (sv, kv)) in s.iter().zip(k).enumerate() {
                path.push(Seg::Index(i));
                diff(sv, kv, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;
    use serde_json::json;

    fn names(paths: &[Vec<Seg>]) -> Vec<String> {
        paths.iter().map(|p| path_string(p)).collect()
    }

    #[test]
    fn built_in_kinds_name_their_unknown_fields() {
        let reg = Registry::default();
        let rs = reg.get("apps", "v1", "replicasets").expect("type");
        let body = json!({"metadata": {"name": "r", "colour": "red"},
            "spec": {"replicas": 1, "replicaz": 2, "selector": {"matchLabels": {"a": "b"}},
                     "template": {"metadata": {"labels": {"a": "b"}},
                                  "spec": {"containers": [{"name": "c", "image": "i", "imagePullPolicy": null},
                                                          {"name": "d", "image": "i", "img": "x"}]}}}});
        assert_eq!(
            names(&unknown_fields(rs, &body)),
            [
                "metadata.colour",
                "spec.replicaz",
                "spec.template.spec.containers[1].img"
            ]
        );
        // What does not decode is left to validation.
        let undecodable = json!({"metadata": {"name": "r"}, "spec": {"replicas": "x", "junk": 1}});
        assert!(unknown_fields(rs, &undecodable).is_empty());
    }

    #[test]
    fn directives() {
        let reg = Registry::default();
        let cm = reg.get("", "v1", "configmaps").expect("type");
        let unknown = vec![
            vec![Seg::Key("spec".into())],
            vec![Seg::Key("x".into()), Seg::Key("y".into())],
        ];
        let err = judge(cm, &unknown, FieldValidation::Strict, None).expect_err("strict");
        assert_eq!((err.code, err.reason), (400, "BadRequest"));
        assert_eq!(
            err.message,
            "ConfigMap in version \"v1\" cannot be handled as a ConfigMap: strict decoding error: \
             unknown field \"spec\", unknown field \"x.y\""
        );
        let warnings = Warnings::default();
        judge(cm, &unknown, FieldValidation::Warn, Some(&warnings)).expect("warn");
        assert_eq!(
            *warnings.borrow(),
            ["unknown field \"spec\"", "unknown field \"x.y\""]
        );
        let quiet = Warnings::default();
        judge(cm, &unknown, FieldValidation::Ignore, Some(&quiet)).expect("ignore");
        assert!(quiet.borrow().is_empty());
        assert_eq!(
            FieldValidation::parse(None).ok(),
            Some(FieldValidation::Warn)
        );
        assert!(FieldValidation::parse(Some("strict")).is_err());
    }
}
