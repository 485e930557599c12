//! API errors as Kubernetes `Status` objects.

use serde_json::{Value, json};

use crate::registry::ResourceType;

/// An error answer of the API server, sent as a `Status` body.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{code} {reason}: {message}")]
pub struct ApiError {
    /// HTTP status code.
    pub code: u16,
    /// Status reason (`NotFound`, `Conflict`, ...).
    pub reason: &'static str,
    /// Human-readable message.
    pub message: String,
    /// `details` of the Status (`Null` when there are none).
    pub details: Value,
}

/// `replicasets.apps`, or `pods` for the core group: how the API server names a resource in
/// messages.
pub fn qualified(rt: &ResourceType) -> String {
    if rt.group.is_empty() {
        rt.plural.clone()
    } else {
        format!("{}.{}", rt.plural, rt.group)
    }
}

fn details(rt: &ResourceType, name: &str) -> Value {
    let mut d = json!({"name": name, "kind": rt.plural});
    if !rt.group.is_empty() {
        d["group"] = json!(rt.group);
    }
    d
}

/// One reason an object is invalid: a `details.causes` entry of a 422 `Status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    /// `FieldValueInvalid`, `FieldValueRequired`, `FieldValueNotSupported`,
    /// `FieldValueTypeInvalid`, `FieldValueTooLong`, `FieldValueTooMany`, `FieldValueForbidden`.
    pub reason: &'static str,
    /// The field's path: `spec.replicas`, `spec.template.spec.containers[0].image`.
    pub field: String,
    /// What is wrong: `Required value`, `Invalid value: 3: ...`.
    pub message: String,
}

/// A value as the API server shows it in messages: strings quoted, numbers as they are.
pub fn shown(v: &Value) -> String {
    v.to_string()
}

impl Cause {
    fn new(reason: &'static str, field: &str, message: String) -> Self {
        Self {
            reason,
            field: field.to_string(),
            message,
        }
    }

    /// `field: Invalid value: <value>: <detail>`.
    pub fn invalid(field: &str, value: &Value, detail: &str) -> Self {
        Self::new(
            "FieldValueInvalid",
            field,
            format!("Invalid value: {}: {detail}", shown(value)),
        )
    }

    /// `field: Invalid value: "<type>": <detail>` for a value of the wrong type.
    pub fn type_invalid(field: &str, type_name: &str, detail: &str) -> Self {
        Self::new(
            "FieldValueTypeInvalid",
            field,
            format!("Invalid value: \"{type_name}\": {detail}"),
        )
    }

    /// `field: Required value` (with an optional explanation).
    pub fn required(field: &str, detail: &str) -> Self {
        let message = if detail.is_empty() {
            "Required value".to_string()
        } else {
            format!("Required value: {detail}")
        };
        Self::new("FieldValueRequired", field, message)
    }

    /// `field: Unsupported value: <value>: supported values: "a", "b"`.
    pub fn not_supported(field: &str, value: &Value, supported: &[Value]) -> Self {
        let list: Vec<String> = supported.iter().map(shown).collect();
        Self::new(
            "FieldValueNotSupported",
            field,
            format!(
                "Unsupported value: {}: supported values: {}",
                shown(value),
                list.join(", ")
            ),
        )
    }

    /// `field: Forbidden: <detail>`.
    pub fn forbidden(field: &str, detail: &str) -> Self {
        Self::new("FieldValueForbidden", field, format!("Forbidden: {detail}"))
    }

    /// `field: Too long: may not be more than <max> bytes`.
    pub fn too_long(field: &str, max: u64) -> Self {
        Self::new(
            "FieldValueTooLong",
            field,
            format!("Too long: may not be more than {max} bytes"),
        )
    }

    /// `field: Too many: <n>: must have at most <max> items`.
    pub fn too_many(field: &str, n: usize, max: u64) -> Self {
        Self::new(
            "FieldValueTooMany",
            field,
            format!("Too many: {n}: must have at most {max} items"),
        )
    }
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
            details: Value::Null,
        }
    }

    /// 404 for an object of a served type.
    pub fn not_found(rt: &ResourceType, name: &str) -> Self {
        Self {
            details: details(rt, name),
            ..Self::new(
                404,
                "NotFound",
                format!("{} \"{name}\" not found", qualified(rt)),
            )
        }
    }

    /// 404 for a path that names nothing the server serves.
    pub fn no_route(path: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("the server could not find the requested resource (path {path})"),
        )
    }

    /// 404 for a missing namespace.
    pub fn namespace_not_found(ns: &str) -> Self {
        Self {
            details: json!({"name": ns, "kind": "namespaces"}),
            ..Self::new(404, "NotFound", format!("namespaces \"{ns}\" not found"))
        }
    }

    /// 409 AlreadyExists.
    pub fn already_exists(rt: &ResourceType, name: &str) -> Self {
        Self {
            details: details(rt, name),
            ..Self::new(
                409,
                "AlreadyExists",
                format!("{} \"{name}\" already exists", qualified(rt)),
            )
        }
    }

    /// 409 Conflict: the object changed since the client read it.
    pub fn conflict(rt: &ResourceType, name: &str) -> Self {
        Self::conflict_because(
            rt,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// 409 Conflict injected by a test ([`crate::SimCluster::conflict_once`]).
    pub fn injected_conflict() -> Self {
        Self::new(
            409,
            "Conflict",
            "the object has been modified; please apply your changes to the latest version \
             and try again (injected)",
        )
    }

    /// 409 Conflict with a reason of its own (precondition failures, apply conflicts).
    pub fn conflict_because(rt: &ResourceType, name: &str, why: &str) -> Self {
        Self {
            details: details(rt, name),
            ..Self::new(
                409,
                "Conflict",
                format!(
                    "Operation cannot be fulfilled on {} \"{name}\": {why}",
                    qualified(rt)
                ),
            )
        }
    }

    /// 400.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    /// 422 for an object that fails validation; `field` and `why` become a cause.
    pub fn invalid(rt: &ResourceType, name: &str, field: &str, why: &str) -> Self {
        Self::invalid_causes(
            rt,
            name,
            &[Cause {
                reason: "FieldValueInvalid",
                field: field.to_string(),
                message: why.to_string(),
            }],
        )
    }

    /// 422 for an object that fails validation for every one of `causes`, worded as the API
    /// server words it: `Kind.group "name" is invalid: field: why` for one cause,
    /// `... is invalid: [a: why, b: why]` for several.
    pub fn invalid_causes(rt: &ResourceType, name: &str, causes: &[Cause]) -> Self {
        let kind = if rt.group.is_empty() {
            rt.kind.clone()
        } else {
            format!("{}.{}", rt.kind, rt.group)
        };
        let list: Vec<Value> = causes
            .iter()
            .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
            .collect();
        let mut d = json!({"name": name, "kind": rt.kind, "causes": list});
        if !rt.group.is_empty() {
            d["group"] = json!(rt.group);
        }
        let shown: Vec<String> = causes.iter().map(Cause::to_string).collect();
        let what = match shown.as_slice() {
            [one] => one.clone(),
            many => format!("[{}]", many.join(", ")),
        };
        Self {
            details: d,
            ..Self::new(
                422,
                "Invalid",
                format!("{kind} \"{name}\" is invalid: {what}"),
            )
        }
    }

    /// 422 without a particular object.
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(422, "Invalid", message)
    }

    /// 405.
    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(405, "MethodNotAllowed", message)
    }

    /// 410 Expired.
    pub fn gone(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    /// 415.
    pub fn unsupported_media_type(message: impl Into<String>) -> Self {
        Self::new(415, "UnsupportedMediaType", message)
    }

    /// 403.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, "Forbidden", message)
    }

    /// 503: the server cannot be reached (a simulated network partition).
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(503, "ServiceUnavailable", message)
    }

    /// 500.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "InternalError", message)
    }

    /// 500 as the API server words an internal failure: `Internal error occurred: <cause>`,
    /// the cause repeated in `details.causes`.
    pub fn internal_cause(cause: &str) -> Self {
        Self {
            details: json!({"causes": [{"message": cause}]}),
            ..Self::new(
                500,
                "InternalError",
                format!("Internal error occurred: {cause}"),
            )
        }
    }

    /// 429: the server is overloaded; `details.retryAfterSeconds` says when to try again
    /// (the response carries it in `Retry-After` too).
    pub fn too_many_requests(retry_after_seconds: u64) -> Self {
        Self {
            details: json!({"retryAfterSeconds": retry_after_seconds}),
            ..Self::new(
                429,
                "TooManyRequests",
                "Too many requests, please try again later.",
            )
        }
    }

    /// 504 Timeout: the request did not complete in time; it may or may not have been
    /// carried out.
    pub fn timeout(message: impl Into<String>) -> Self {
        Self::new(504, "Timeout", message)
    }

    /// The `Status` body.
    pub fn to_status(&self) -> Value {
        let mut s = json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Failure", "message": self.message, "reason": self.reason, "code": self.code,
        });
        if !self.details.is_null() {
            s["details"] = self.details.clone();
        }
        s
    }
}
