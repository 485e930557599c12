//! Write semantics of the API server: create, update (main resource or status), delete.

use serde_json::{Value, json};

use crate::error::ApiError;
use crate::registry::ResourceType;
use crate::store::{Store, type_key};

/// Which part of an object a write may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The main resource (status ignored when the type has a status subresource).
    Main,
    /// The `/status` subresource (only status changes).
    Status,
}

fn spec_part(obj: &Value) -> Value {
    let mut v = obj.clone();
    if let Some(m) = v.as_object_mut() {
        m.remove("metadata");
        m.remove("status");
    }
    v
}

/// Creates an object in `ns` (ignored for cluster-scoped types).
pub fn create(
    st: &mut Store,
    rt: &ResourceType,
    ns: &str,
    mut obj: Value,
    now: &str,
) -> Result<Value, ApiError> {
    if !obj.is_object() {
        return Err(ApiError::bad_request(
            "the request body must be a JSON object",
        ));
    }
    let ns = if rt.namespaced { ns } else { "" };
    let meta = obj["metadata"].as_object().cloned().unwrap_or_default();
    let name = match (
        meta.get("name").and_then(Value::as_str),
        meta.get("generateName").and_then(Value::as_str),
    ) {
        (Some(n), _) if !n.is_empty() => n.to_string(),
        (_, Some(prefix)) => format!("{prefix}{}", &st.next_uid()[30..]),
        _ => {
            return Err(ApiError::invalid(format!(
                "{}: metadata.name: Required value",
                rt.kind
            )));
        }
    };
    if let Some(body_ns) = meta.get("namespace").and_then(Value::as_str)
        && rt.namespaced
        && body_ns != ns
    {
        return Err(ApiError::bad_request(format!(
            "the namespace of the provided object ({body_ns}) does not match the namespace sent on the request ({ns})"
        )));
    }
    let ty = type_key(rt);
    if st.get(&ty, ns, &name).is_some() {
        return Err(ApiError::already_exists(&rt.kind, &name));
    }
    obj["apiVersion"] = json!(rt.api_version());
    obj["kind"] = json!(rt.kind);
    let uid = st.next_uid();
    let m = &mut obj["metadata"];
    m["name"] = json!(name);
    if rt.namespaced {
        m["namespace"] = json!(ns);
    } else if let Some(o) = m.as_object_mut() {
        o.remove("namespace");
    }
    m["uid"] = json!(uid);
    m["creationTimestamp"] = json!(now);
    m["generation"] = json!(1);
    if let Some(o) = m.as_object_mut() {
        o.remove("resourceVersion");
        o.remove("deletionTimestamp");
    }
    if rt.status_subresource {
        // With a status subresource, status is not set by a create.
        if let Some(o) = obj.as_object_mut() {
            o.remove("status");
        }
    }
    st.commit(&ty, ns, &name, Some(obj))
        .ok_or_else(|| ApiError::invalid("object vanished on create"))
}

/// Replaces an object (or its status). A body `metadata.resourceVersion` that differs from the
/// stored one is a conflict. A write that changes nothing keeps the resourceVersion.
pub fn update(
    st: &mut Store,
    rt: &ResourceType,
    ns: &str,
    name: &str,
    mut new: Value,
    target: Target,
) -> Result<Value, ApiError> {
    let ns = if rt.namespaced { ns } else { "" };
    let ty = type_key(rt);
    let Some(old) = st.get(&ty, ns, name).cloned() else {
        return Err(ApiError::not_found(&rt.kind, name));
    };
    if !new.is_object() {
        return Err(ApiError::bad_request(
            "the request body must be a JSON object",
        ));
    }
    if let Some(rv) = new["metadata"]["resourceVersion"].as_str()
        && !rv.is_empty()
        && Some(rv) != old["metadata"]["resourceVersion"].as_str()
    {
        return Err(ApiError::conflict(&rt.kind, name));
    }
    if let Some(body_name) = new["metadata"]["name"].as_str()
        && body_name != name
    {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({name})"
        )));
    }
    let mut merged = match target {
        Target::Status => {
            let mut m = old.clone();
            m["status"] = new.get("status").cloned().unwrap_or(Value::Null);
            if m["status"].is_null()
                && let Some(o) = m.as_object_mut()
            {
                o.remove("status");
            }
            m
        }
        Target::Main => {
            if rt.status_subresource {
                match old.get("status") {
                    Some(s) => new["status"] = s.clone(),
                    None => {
                        if let Some(o) = new.as_object_mut() {
                            o.remove("status");
                        }
                    }
                }
            }
            // Fields the server owns.
            for f in [
                "uid",
                "creationTimestamp",
                "generation",
                "namespace",
                "deletionTimestamp",
            ] {
                match old["metadata"].get(f) {
                    Some(v) => new["metadata"][f] = v.clone(),
                    None => {
                        if let Some(o) = new["metadata"].as_object_mut() {
                            o.remove(f);
                        }
                    }
                }
            }
            new["metadata"]["name"] = json!(name);
            new["apiVersion"] = json!(rt.api_version());
            new["kind"] = json!(rt.kind);
            if spec_part(&new) != spec_part(&old) {
                let g = old["metadata"]["generation"].as_i64().unwrap_or(1);
                new["metadata"]["generation"] = json!(g + 1);
            }
            new
        }
    };
    merged["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"].clone();
    if merged == old {
        return Ok(old);
    }
    let finalizers_gone = merged["metadata"]["finalizers"]
        .as_array()
        .is_none_or(Vec::is_empty);
    if merged["metadata"].get("deletionTimestamp").is_some() && finalizers_gone {
        st.delete_cascading(&ty, ns, name, false);
        return Ok(merged);
    }
    st.commit(&ty, ns, name, Some(merged))
        .ok_or_else(|| ApiError::invalid("object vanished on update"))
}

/// Deletes an object: marks it when finalizers remain, otherwise removes it and collects its
/// dependents (or orphans them).
pub fn delete(
    st: &mut Store,
    rt: &ResourceType,
    ns: &str,
    name: &str,
    orphan: bool,
    now: &str,
) -> Result<Value, ApiError> {
    let ns = if rt.namespaced { ns } else { "" };
    let ty = type_key(rt);
    let Some(old) = st.get(&ty, ns, name).cloned() else {
        return Err(ApiError::not_found(&rt.kind, name));
    };
    let has_finalizers = old["metadata"]["finalizers"]
        .as_array()
        .is_some_and(|f| !f.is_empty());
    if has_finalizers {
        if old["metadata"].get("deletionTimestamp").is_some() {
            return Ok(old);
        }
        let mut marked = old;
        marked["metadata"]["deletionTimestamp"] = json!(now);
        return st
            .commit(&ty, ns, name, Some(marked))
            .ok_or_else(|| ApiError::invalid("object vanished on delete"));
    }
    st.delete_cascading(&ty, ns, name, orphan)
        .ok_or_else(|| ApiError::not_found(&rt.kind, name))
}
