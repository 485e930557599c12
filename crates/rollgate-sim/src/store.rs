//! The object store: resourceVersions, generations, watch history, owner index, garbage
//! collection. Every write of the simulated cluster goes through [`Store::commit`].

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::registry::{Registry, ResourceType};

/// Storage key of a resource type: `(group, plural)` (all versions share storage).
pub type TypeKey = (String, String);
/// Address of one object: type, namespace (`""` when cluster-scoped), name.
pub type ObjKey = (TypeKey, String, String);

/// A change, as sent to watchers.
#[derive(Debug, Clone)]
pub struct Change {
    /// resourceVersion of the change.
    pub rv: u64,
    /// Type of the object.
    pub ty: TypeKey,
    /// Namespace (`""` for cluster-scoped).
    pub namespace: String,
    /// ADDED, MODIFIED or DELETED.
    pub kind: &'static str,
    /// The object after the change (before, for DELETED).
    pub object: Arc<Value>,
}

/// One mutating request, for tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// HTTP method.
    pub method: String,
    /// Request path.
    pub path: String,
    /// Content-Type of the body, if any.
    pub content_type: Option<String>,
    /// `fieldManager` query parameter, if any.
    pub field_manager: Option<String>,
    /// Response status code.
    pub code: u16,
}

/// All objects and the bookkeeping around them.
pub struct Store {
    /// Last resourceVersion handed out.
    pub rv: u64,
    uid_seq: u64,
    /// Served types.
    pub registry: Registry,
    objects: HashMap<TypeKey, BTreeMap<(String, String), Value>>,
    /// owner uid -> dependents.
    owners: HashMap<String, BTreeSet<ObjKey>>,
    /// uid -> object.
    uids: HashMap<String, ObjKey>,
    history: VecDeque<Arc<Change>>,
    history_limit: usize,
    /// Oldest resourceVersion a watch may resume from.
    pub oldest_rv: u64,
    tx: broadcast::Sender<Arc<Change>>,
    /// Mutating requests.
    pub audit: Vec<AuditEntry>,
}

/// The type key of a resource type.
pub fn type_key(t: &ResourceType) -> TypeKey {
    (t.group.clone(), t.plural.clone())
}

fn owner_uids(obj: &Value) -> Vec<String> {
    obj["metadata"]["ownerReferences"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| o["uid"].as_str().map(String::from))
        .collect()
}

impl Store {
    /// An empty store with the built-in types.
    pub fn new(history_limit: usize, tx: broadcast::Sender<Arc<Change>>) -> Self {
        Self {
            rv: 1,
            uid_seq: 0,
            registry: Registry::default(),
            objects: HashMap::new(),
            owners: HashMap::new(),
            uids: HashMap::new(),
            history: VecDeque::new(),
            history_limit: history_limit.max(1),
            oldest_rv: 1,
            tx,
            audit: Vec::new(),
        }
    }

    /// A new uid; uids sort in creation order.
    pub fn next_uid(&mut self) -> String {
        self.uid_seq += 1;
        format!("00000000-0000-4000-8000-{:012}", self.uid_seq)
    }

    /// Reads an object.
    pub fn get(&self, ty: &TypeKey, ns: &str, name: &str) -> Option<&Value> {
        self.objects
            .get(ty)?
            .get(&(ns.to_string(), name.to_string()))
    }

    /// Objects of a type, optionally in one namespace, in (namespace, name) order.
    pub fn list(&self, ty: &TypeKey, ns: Option<&str>) -> Vec<&Value> {
        let Some(objects) = self.objects.get(ty) else {
            return Vec::new();
        };
        match ns {
            Some(ns) => objects
                .range((ns.to_string(), String::new())..)
                .take_while(|((n, _), _)| n == ns)
                .map(|(_, v)| v)
                .collect(),
            None => objects.values().collect(),
        }
    }

    /// Whether an object with this uid exists.
    pub fn uid_exists(&self, uid: &str) -> bool {
        self.uids.contains_key(uid)
    }

    /// Objects owned by `uid`.
    pub fn dependents(&self, uid: &str) -> Vec<ObjKey> {
        self.owners
            .get(uid)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// A receiver of every future change, subscribed now.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Change>> {
        self.tx.subscribe()
    }

    /// Changes after `rv` still in history.
    pub fn history_after(&self, rv: u64) -> Vec<Arc<Change>> {
        self.history.iter().filter(|c| c.rv > rv).cloned().collect()
    }

    /// Stores `new` (or deletes when `None`), stamping a new resourceVersion, and notifies
    /// watchers. Returns the stored object.
    pub fn commit(
        &mut self,
        ty: &TypeKey,
        ns: &str,
        name: &str,
        new: Option<Value>,
    ) -> Option<Value> {
        self.rv += 1;
        let rv = self.rv;
        let key = (ns.to_string(), name.to_string());
        let objects = self.objects.entry(ty.clone()).or_default();
        let old = objects.remove(&key);
        if let Some(old) = &old {
            let uid = old["metadata"]["uid"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            for owner in owner_uids(old) {
                if let Some(set) = self.owners.get_mut(&owner) {
                    set.remove(&(ty.clone(), ns.to_string(), name.to_string()));
                }
            }
            if new.is_none() {
                self.uids.remove(&uid);
            }
        }
        let (kind, object) = match new {
            Some(mut obj) => {
                obj["metadata"]["resourceVersion"] = json!(rv.to_string());
                let uid = obj["metadata"]["uid"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                for owner in owner_uids(&obj) {
                    self.owners.entry(owner).or_default().insert((
                        ty.clone(),
                        ns.to_string(),
                        name.to_string(),
                    ));
                }
                self.uids
                    .insert(uid, (ty.clone(), ns.to_string(), name.to_string()));
                let objects = self.objects.entry(ty.clone()).or_default();
                objects.insert(key, obj.clone());
                (if old.is_some() { "MODIFIED" } else { "ADDED" }, obj)
            }
            None => {
                let mut obj = old.clone().unwrap_or(Value::Null);
                if obj.is_object() {
                    obj["metadata"]["resourceVersion"] = json!(rv.to_string());
                }
                ("DELETED", obj)
            }
        };
        let change = Arc::new(Change {
            rv,
            ty: ty.clone(),
            namespace: ns.to_string(),
            kind,
            object: Arc::new(object.clone()),
        });
        self.history.push_back(change.clone());
        while self.history.len() > self.history_limit {
            if let Some(c) = self.history.pop_front() {
                self.oldest_rv = c.rv;
            }
        }
        let _ = self.tx.send(change);
        (kind != "DELETED").then_some(object)
    }

    /// Deletes an object and garbage-collects its dependents (background propagation), or
    /// removes the owner reference from them (`orphan`).
    pub fn delete_cascading(
        &mut self,
        ty: &TypeKey,
        ns: &str,
        name: &str,
        orphan: bool,
    ) -> Option<Value> {
        let old = self.get(ty, ns, name)?.clone();
        let uid = old["metadata"]["uid"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        self.commit(ty, ns, name, None);
        for (dty, dns, dname) in self.dependents(&uid) {
            let Some(dep) = self.get(&dty, &dns, &dname).cloned() else {
                continue;
            };
            if orphan {
                let mut dep = dep;
                if let Some(refs) = dep["metadata"]["ownerReferences"].as_array_mut() {
                    refs.retain(|o| o["uid"].as_str() != Some(uid.as_str()));
                }
                self.commit(&dty, &dns, &dname, Some(dep));
            } else if owner_uids(&dep).iter().all(|o| !self.uid_exists(o)) {
                self.delete_cascading(&dty, &dns, &dname, false);
            }
        }
        Some(old)
    }
}
