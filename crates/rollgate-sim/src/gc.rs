//! Deletion and garbage collection: owner references, finalizers, propagation policies,
//! namespace and CustomResourceDefinition cleanup.

use serde_json::{Value, json};

use crate::store::{ObjKey, Store, TypeKey, owner_uids};

/// How dependents of a deleted object are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Propagation {
    /// Dependents are deleted (after the owner is gone).
    #[default]
    Background,
    /// Dependents are deleted before the owner.
    Foreground,
    /// Dependents lose their owner reference and stay.
    Orphan,
}

impl Propagation {
    /// From `propagationPolicy` (default background).
    pub fn parse(s: Option<&str>) -> Result<Self, String> {
        match s {
            None | Some("") | Some("Background") => Ok(Self::Background),
            Some("Foreground") => Ok(Self::Foreground),
            Some("Orphan") => Ok(Self::Orphan),
            Some(other) => Err(format!(
                "propagationPolicy: Unsupported value: \"{other}\": supported values: \"Foreground\", \"Background\", \"Orphan\""
            )),
        }
    }
}

fn namespaces() -> TypeKey {
    (String::new(), "namespaces".into())
}

fn crds() -> TypeKey {
    (
        "apiextensions.k8s.io".into(),
        "customresourcedefinitions".into(),
    )
}

fn has_finalizers(obj: &Value) -> bool {
    obj["metadata"]["finalizers"]
        .as_array()
        .is_some_and(|f| !f.is_empty())
}

/// Deletes an object the way the API server does when asked: an object with finalizers is
/// only marked (`deletionTimestamp`); otherwise it goes, with its dependents per `policy`.
/// Returns the object as last seen (marked, or deleted).
pub fn delete(st: &mut Store, key: &ObjKey, policy: Propagation, now: &str) -> Option<Value> {
    let (ty, ns, name) = key;
    let obj = st.get(ty, ns, name)?.clone();
    if *ty == namespaces() {
        return Some(delete_namespace(st, name, now));
    }
    if has_finalizers(&obj) {
        if obj["metadata"].get("deletionTimestamp").is_some() {
            return Some(obj);
        }
        let mut marked = obj;
        mark(&mut marked, now);
        if policy == Propagation::Orphan {
            orphan_dependents(st, &marked);
        }
        return st.commit(ty, ns, name, Some(marked));
    }
    Some(delete_now(st, key, policy, now).unwrap_or(obj))
}

fn mark(obj: &mut Value, now: &str) {
    obj["metadata"]["deletionTimestamp"] = json!(now);
    obj["metadata"]["deletionGracePeriodSeconds"] = json!(0);
    let g = obj["metadata"]["generation"].as_i64().unwrap_or(0);
    obj["metadata"]["generation"] = json!(g + 1);
}

fn orphan_dependents(st: &mut Store, owner: &Value) {
    let Some(uid) = owner["metadata"]["uid"].as_str() else {
        return;
    };
    for (dty, dns, dname) in st.dependents(uid) {
        if let Some(mut dep) = st.get(&dty, &dns, &dname).cloned() {
            if let Some(refs) = dep["metadata"]["ownerReferences"].as_array_mut() {
                refs.retain(|o| o["uid"].as_str() != Some(uid));
            }
            st.commit(&dty, &dns, &dname, Some(dep));
        }
    }
}

/// Removes an object now and handles its dependents.
pub fn delete_now(st: &mut Store, key: &ObjKey, policy: Propagation, now: &str) -> Option<Value> {
    let (ty, ns, name) = key;
    let old = st.get(ty, ns, name)?.clone();
    let uid = old["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if policy == Propagation::Orphan {
        orphan_dependents(st, &old);
    }
    if policy == Propagation::Foreground {
        collect_dependents(st, &uid, now);
    }
    st.commit(ty, ns, name, None);
    if policy == Propagation::Background {
        collect_dependents(st, &uid, now);
    }
    if *ty == crds() {
        remove_crd_objects(st, &old);
    }
    if !ns.is_empty() {
        finish_namespace_if_empty(st, ns);
    }
    Some(old)
}

/// Deletes (or strips dangling references from) the dependents of a gone owner.
fn collect_dependents(st: &mut Store, owner_uid: &str, now: &str) {
    for dkey in st.dependents(owner_uid) {
        let (dty, dns, dname) = &dkey;
        let Some(dep) = st.get(dty, dns, dname).cloned() else {
            continue;
        };
        let owners = owner_uids(&dep);
        let alive: Vec<&String> = owners
            .iter()
            .filter(|o| *o != owner_uid && st.uid_exists(o))
            .collect();
        if alive.is_empty() {
            delete(st, &dkey, Propagation::Background, now);
        } else {
            let mut dep = dep;
            if let Some(refs) = dep["metadata"]["ownerReferences"].as_array_mut() {
                refs.retain(|o| o["uid"].as_str() != Some(owner_uid));
            }
            st.commit(dty, dns, dname, Some(dep));
        }
    }
}

/// Whether every owner reference of `obj` points to an object that does not exist.
pub fn is_orphaned(st: &Store, obj: &Value) -> bool {
    let owners = owner_uids(obj);
    !owners.is_empty() && owners.iter().all(|o| !st.uid_exists(o))
}

/// Called after a finalizer was removed: an object marked for deletion whose finalizers are
/// all gone is removed.
pub fn finish_if_finalized(st: &mut Store, key: &ObjKey, now: &str) {
    let (ty, ns, name) = key;
    let Some(obj) = st.get(ty, ns, name) else {
        return;
    };
    if obj["metadata"].get("deletionTimestamp").is_some() && !has_finalizers(obj) {
        if *ty == namespaces() {
            finish_namespace_if_empty(st, name);
        } else {
            delete_now(st, key, Propagation::Background, now);
        }
    }
}

fn delete_namespace(st: &mut Store, name: &str, now: &str) -> Value {
    let ty = namespaces();
    let Some(mut ns) = st.get(&ty, "", name).cloned() else {
        return Value::Null;
    };
    if ns["metadata"].get("deletionTimestamp").is_none() {
        mark(&mut ns, now);
        ns["status"]["phase"] = json!("Terminating");
        if let Some(stored) = st.commit(&ty, "", name, Some(ns.clone())) {
            ns = stored;
        }
    }
    for key in st.keys_in_namespace(name) {
        delete(st, &key, Propagation::Background, now);
    }
    finish_namespace_if_empty(st, name);
    st.get(&ty, "", name).cloned().unwrap_or(ns)
}

fn finish_namespace_if_empty(st: &mut Store, name: &str) {
    let ty = namespaces();
    let Some(ns) = st.get(&ty, "", name) else {
        return;
    };
    if ns["metadata"].get("deletionTimestamp").is_none() || has_finalizers(ns) {
        return;
    }
    if st.keys_in_namespace(name).is_empty() {
        st.commit(&ty, "", name, None);
    }
}

fn remove_crd_objects(st: &mut Store, crd: &Value) {
    let removed = st.registry.unregister_crd(crd);
    let Some(t) = removed.first() else {
        return;
    };
    let ty = (t.group.clone(), t.plural.clone());
    for (kty, kns, kname) in st.keys_of_type(&ty) {
        st.commit(&kty, &kns, &kname, None);
    }
}
