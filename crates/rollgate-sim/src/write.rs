//! Write semantics of the API server: create, update (main resource or status), delete, with
//! preconditions, generations, status isolation, finalizers and dry runs.

use serde_json::{Value, json};

use crate::apply::{Part, track_update};
use crate::decode::{self, FieldValidation, Warnings};
use crate::defaults;
use crate::error::ApiError;
use crate::gc::{self, Propagation};
use crate::patch::Lists;
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

/// Circumstances of a write.
#[derive(Debug, Clone, Copy)]
pub struct WriteCtx<'a> {
    /// Current time stamp.
    pub now: &'a str,
    /// Validate and compute, but store nothing.
    pub dry_run: bool,
    /// The manager to credit with changed fields (`None`: no tracking, e.g. apply did it).
    pub manager: Option<&'a str>,
    /// What unknown fields in the body lead to.
    pub validation: FieldValidation,
    /// Where warnings about the body go (`None`: nowhere).
    pub warnings: Option<&'a Warnings>,
}

impl<'a> WriteCtx<'a> {
    /// A write at `now` that stores, tracks no manager and drops unknown fields silently
    /// (the cluster's own writes).
    pub fn internal(now: &'a str) -> Self {
        Self {
            now,
            dry_run: false,
            manager: None,
            validation: FieldValidation::Ignore,
            warnings: None,
        }
    }
}

/// Finds the fields of a body its type does not know, applies the write's `fieldValidation`
/// to them and removes them.
fn drop_unknown(rt: &ResourceType, obj: &mut Value, ctx: &WriteCtx<'_>) -> Result<(), ApiError> {
    let unknown = decode::unknown_fields(rt, obj);
    decode::judge(rt, &unknown, ctx.validation, ctx.warnings)?;
    for path in &unknown {
        crate::schema::remove_at(obj, path);
    }
    Ok(())
}

/// List semantics of a type's objects.
pub fn lists(rt: &ResourceType) -> Lists<'_> {
    if rt.is_custom() {
        rt.schema.as_deref().map_or(Lists::Unknown, Lists::Schema)
    } else {
        Lists::Builtin
    }
}

/// The field-ownership part of a write target.
pub fn part(rt: &ResourceType, target: Target) -> Part {
    match target {
        Target::Status => Part::Status,
        Target::Main => Part::Main {
            status_subresource: rt.status_subresource,
        },
    }
}

/// What a change of `generation` looks at: everything but metadata (and status, when it is
/// a subresource).
fn spec_part(rt: &ResourceType, obj: &Value) -> Value {
    let mut v = obj.clone();
    if let Some(m) = v.as_object_mut() {
        m.remove("metadata");
        m.remove("apiVersion");
        m.remove("kind");
        if rt.status_subresource {
            m.remove("status");
        }
    }
    v
}

/// Top-level fields of built-in kinds that must be objects when present.
const OBJECT_FIELDS: &[&str] = &["spec", "status", "data", "stringData", "binaryData"];

/// Rejects bodies whose structure cannot be the kind's (what decoding does in the API
/// server): `metadata` must be an object, and so must `spec`, `status`, `data`... of
/// built-in kinds.
fn check_structure(rt: &ResourceType, obj: &Value) -> Result<(), ApiError> {
    let bad = |field: &str| {
        Err(ApiError::bad_request(format!(
            "json: cannot unmarshal {field} of {} into an object",
            rt.kind
        )))
    };
    if !obj["metadata"].is_null() && !obj["metadata"].is_object() {
        return bad("metadata");
    }
    if !rt.is_custom() {
        for f in OBJECT_FIELDS {
            if !obj[*f].is_null() && !obj[*f].is_object() {
                return bad(f);
            }
        }
    }
    Ok(())
}

fn check_type_meta(rt: &ResourceType, obj: &Value) -> Result<(), ApiError> {
    if let Some(kind) = obj["kind"].as_str()
        && !kind.is_empty()
        && kind != rt.kind
    {
        return Err(ApiError::bad_request(format!(
            "the kind in the data ({kind}) does not match the expected kind ({})",
            rt.kind
        )));
    }
    if let Some(av) = obj["apiVersion"].as_str()
        && !av.is_empty()
    {
        let group = av.rsplit_once('/').map_or("", |(g, _)| g);
        if group != rt.group && group != rt.storage.0 {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({av}) does not match the expected API version ({})",
                rt.api_version()
            )));
        }
    }
    Ok(())
}

/// Checks that namespace `ns` exists and is not terminating.
pub fn check_namespace(st: &Store, ns: &str) -> Result<(), ApiError> {
    let Some(n) = st.get(&(String::new(), "namespaces".into()), "", ns) else {
        return Err(ApiError::namespace_not_found(ns));
    };
    if n["metadata"].get("deletionTimestamp").is_some() {
        return Err(ApiError::forbidden(format!(
            "unable to create new content in namespace {ns} because it is being terminated"
        )));
    }
    Ok(())
}

/// Creates an object in `ns` (ignored for cluster-scoped types).
pub fn create(
    st: &mut Store,
    rt: &ResourceType,
    ns: &str,
    mut obj: Value,
    ctx: &WriteCtx<'_>,
) -> Result<Value, ApiError> {
    if !obj.is_object() {
        return Err(ApiError::bad_request(
            "the request body must be a JSON object",
        ));
    }
    check_type_meta(rt, &obj)?;
    check_structure(rt, &obj)?;
    drop_unknown(rt, &mut obj, ctx)?;
    let ns = if rt.namespaced { ns } else { "" };
    if !obj["metadata"].is_object() {
        obj["metadata"] = json!({});
    }
    let ty = type_key(rt);
    let name = match (
        obj["metadata"]["name"].as_str(),
        obj["metadata"]["generateName"].as_str(),
    ) {
        (Some(n), _) if !n.is_empty() => n.to_string(),
        (_, Some(prefix)) if !prefix.is_empty() => {
            format!("{prefix}{}", st.name_suffix(&ty, ns, prefix))
        }
        _ => {
            return Err(ApiError::invalid(
                rt,
                "",
                "metadata.name",
                "Required value: name or generateName is required",
            ));
        }
    };
    defaults::validate_name(rt, &name)?;
    if rt.namespaced {
        if let Some(body_ns) = obj["metadata"]["namespace"].as_str()
            && !body_ns.is_empty()
            && body_ns != ns
        {
            return Err(ApiError::bad_request(format!(
                "the namespace of the provided object ({body_ns}) does not match the namespace sent on the request ({ns})"
            )));
        }
        check_namespace(st, ns)?;
    }
    if st.get(&ty, ns, &name).is_some() {
        return Err(ApiError::already_exists(rt, &name));
    }
    if ty == (String::new(), "pods".to_string())
        && let Some(why) = st.pod_refusal(ns, &name)
    {
        return Err(ApiError::forbidden(why));
    }
    obj["apiVersion"] = json!(rt.api_version());
    obj["kind"] = json!(rt.kind);
    let uid = st.next_uid();
    let m = &mut obj["metadata"];
    m["name"] = json!(name);
    if rt.namespaced {
        m["namespace"] = json!(ns);
    }
    m["uid"] = json!(uid);
    m["creationTimestamp"] = json!(ctx.now);
    m["generation"] = json!(1);
    if let Some(o) = m.as_object_mut() {
        if !rt.namespaced {
            o.remove("namespace");
        }
        for f in [
            "resourceVersion",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "selfLink",
        ] {
            o.remove(f);
        }
    }
    if rt.status_subresource
        && let Some(o) = obj.as_object_mut()
    {
        o.remove("status");
    }
    let mut ip_seq = st.rv;
    let mut next_ip = move || {
        ip_seq += 1;
        format!("10.96.{}.{}", (ip_seq / 250) % 250, ip_seq % 250 + 2)
    };
    defaults::on_create(rt, &mut obj, &mut next_ip)?;
    if let Some(manager) = ctx.manager {
        track_update(
            None,
            &mut obj,
            manager,
            lists(rt),
            part(rt, Target::Main),
            &rt.api_version(),
            ctx.now,
        );
    }
    if ctx.dry_run {
        return Ok(obj);
    }
    st.commit(&ty, ns, &name, Some(obj))
        .ok_or_else(|| ApiError::internal("object vanished on create"))
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
    ctx: &WriteCtx<'_>,
) -> Result<Value, ApiError> {
    let ns = if rt.namespaced { ns } else { "" };
    let ty = type_key(rt);
    let Some(old) = st.get(&ty, ns, name).cloned() else {
        return Err(ApiError::not_found(rt, name));
    };
    if !new.is_object() {
        return Err(ApiError::bad_request(
            "the request body must be a JSON object",
        ));
    }
    check_type_meta(rt, &new)?;
    check_structure(rt, &new)?;
    drop_unknown(rt, &mut new, ctx)?;
    if !new["metadata"].is_object() {
        new["metadata"] = json!({});
    }
    if let Some(rv) = new["metadata"]["resourceVersion"].as_str()
        && !rv.is_empty()
        && Some(rv) != old["metadata"]["resourceVersion"].as_str()
    {
        return Err(ApiError::conflict(rt, name));
    }
    if let Some(uid) = new["metadata"]["uid"].as_str()
        && !uid.is_empty()
        && Some(uid) != old["metadata"]["uid"].as_str()
    {
        return Err(ApiError::conflict_because(
            rt,
            name,
            &format!(
                "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                old["metadata"]["uid"].as_str().unwrap_or_default()
            ),
        ));
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
            match new.get("status") {
                Some(s) if !s.is_null() => m["status"] = s.clone(),
                _ => {
                    if let Some(o) = m.as_object_mut() {
                        o.remove("status");
                    }
                }
            }
            // managedFields travel with the write for ownership tracking.
            if let Some(mf) = new["metadata"].get("managedFields") {
                m["metadata"]["managedFields"] = mf.clone();
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
                "deletionGracePeriodSeconds",
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
            new
        }
    };
    defaults::on_update(rt, &old, &mut merged, target)?;
    if target == Target::Main && spec_part(rt, &merged) != spec_part(rt, &old) {
        let g = old["metadata"]["generation"].as_i64().unwrap_or(1);
        merged["metadata"]["generation"] = json!(g + 1);
    }
    if old["metadata"].get("deletionTimestamp").is_some() {
        let before = old["metadata"]["finalizers"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let added = merged["metadata"]["finalizers"]
            .as_array()
            .is_some_and(|now| now.iter().any(|f| !before.contains(f)));
        if added {
            return Err(ApiError::invalid(
                rt,
                name,
                "metadata.finalizers",
                "Forbidden: no new finalizers can be added if the object is being deleted",
            ));
        }
    }
    if let Some(manager) = ctx.manager {
        track_update(
            Some(&old),
            &mut merged,
            manager,
            lists(rt),
            part(rt, target),
            &rt.api_version(),
            ctx.now,
        );
    } else if merged["metadata"].get("managedFields").is_none()
        && let Some(mf) = old["metadata"].get("managedFields")
    {
        merged["metadata"]["managedFields"] = mf.clone();
    }
    merged["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"].clone();
    if merged == old || ctx.dry_run {
        return Ok(merged);
    }
    let key = (ty.clone(), ns.to_string(), name.to_string());
    let stored = st
        .commit(&ty, ns, name, Some(merged))
        .ok_or_else(|| ApiError::internal("object vanished on update"))?;
    if stored["metadata"].get("deletionTimestamp").is_some() {
        gc::finish_if_finalized(st, &key, ctx.now);
    }
    Ok(stored)
}

/// Options of a delete.
#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    /// What happens to dependents.
    pub propagation: Propagation,
    /// Required uid.
    pub uid: Option<String>,
    /// Required resourceVersion.
    pub resource_version: Option<String>,
}

/// Deletes an object: marks it when finalizers remain, otherwise removes it and handles its
/// dependents.
pub fn delete(
    st: &mut Store,
    rt: &ResourceType,
    ns: &str,
    name: &str,
    opts: &DeleteOptions,
    ctx: &WriteCtx<'_>,
) -> Result<Value, ApiError> {
    let ns = if rt.namespaced { ns } else { "" };
    let ty = type_key(rt);
    let Some(old) = st.get(&ty, ns, name).cloned() else {
        return Err(ApiError::not_found(rt, name));
    };
    if let Some(uid) = &opts.uid
        && Some(uid.as_str()) != old["metadata"]["uid"].as_str()
    {
        return Err(ApiError::conflict_because(
            rt,
            name,
            &format!(
                "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                old["metadata"]["uid"].as_str().unwrap_or_default()
            ),
        ));
    }
    if let Some(rv) = &opts.resource_version
        && Some(rv.as_str()) != old["metadata"]["resourceVersion"].as_str()
    {
        return Err(ApiError::conflict_because(
            rt,
            name,
            &format!(
                "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                old["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap_or_default()
            ),
        ));
    }
    if ctx.dry_run {
        return Ok(old);
    }
    gc::delete(
        st,
        &(ty, ns.to_string(), name.to_string()),
        opts.propagation,
        ctx.now,
    )
    .ok_or_else(|| ApiError::not_found(rt, name))
}
