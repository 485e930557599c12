//! The object store: resourceVersions, watch history, owner and uid indexes. Every write of
//! the simulated cluster goes through [`Store::commit`].

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
    /// The object after the change (its last state, for DELETED).
    pub object: Arc<Value>,
    /// The object before a MODIFIED change, stamped with this change's resourceVersion (so a
    /// watcher whose selector it leaves can be sent a DELETED event).
    pub previous: Option<Arc<Value>>,
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
    /// `User-Agent` of the client, if any: who wrote (as a real API server's audit log
    /// records the user).
    pub user_agent: Option<String>,
    /// Response status code.
    pub code: u16,
    /// resourceVersion of the object after the request (when it answered with one).
    pub resource_version: Option<String>,
}

/// All objects and the bookkeeping around them.
pub struct Store {
    /// Last resourceVersion handed out.
    pub rv: u64,
    seq: u64,
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
    /// Most pods the cluster holds (see [`crate::SimConfig::max_pods`]).
    pub max_pods: usize,
    /// Most pods a namespace holds, by namespace (see [`crate::SimCluster::set_pod_quota`]).
    pub pod_quotas: HashMap<String, usize>,
}

/// The type key of a resource type.
pub fn type_key(t: &ResourceType) -> TypeKey {
    t.storage.clone()
}

/// The uids an object's ownerReferences point to.
pub fn owner_uids(obj: &Value) -> Vec<String> {
    obj["metadata"]["ownerReferences"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| o["uid"].as_str().map(String::from))
        .collect()
}

/// The creation counter of a uid made by [`Store::next_uid`] (0 for foreign uids): larger
/// is newer.
pub fn uid_seq(uid: &str) -> u64 {
    uid.rsplit('-')
        .next()
        .and_then(|s| u64::from_str_radix(s, 16).ok())
        .unwrap_or(0)
}

/// Characters of generated name suffixes (as the API server uses: no vowels, no look-alikes).
const SUFFIX_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

impl Store {
    /// An empty store with the built-in types.
    pub fn new(history_limit: usize, tx: broadcast::Sender<Arc<Change>>) -> Self {
        Self {
            rv: 1,
            seq: 0,
            registry: Registry::default(),
            objects: HashMap::new(),
            owners: HashMap::new(),
            uids: HashMap::new(),
            history: VecDeque::new(),
            history_limit: history_limit.max(1),
            oldest_rv: 1,
            tx,
            audit: Vec::new(),
            max_pods: usize::MAX,
            pod_quotas: HashMap::new(),
        }
    }

    /// A new uid. Its last group is a creation counter: see [`uid_seq`].
    pub fn next_uid(&mut self) -> String {
        self.seq += 1;
        let s = self.seq;
        let h = mix(s);
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            h >> 32,
            (h >> 16) & 0xffff,
            h & 0xfff,
            0x8000 | ((h >> 12) & 0x3fff),
            s
        )
    }

    /// A 5-character name suffix that is free for `prefix` in `ty`/`ns`.
    pub fn name_suffix(&mut self, ty: &TypeKey, ns: &str, prefix: &str) -> String {
        loop {
            self.seq += 1;
            let mut x = mix(self.seq);
            let mut suffix = String::with_capacity(5);
            for _ in 0..5 {
                let i = usize::try_from(x % SUFFIX_ALPHABET.len() as u64).unwrap_or(0);
                suffix.push(char::from(SUFFIX_ALPHABET[i]));
                x /= SUFFIX_ALPHABET.len() as u64;
            }
            if self.get(ty, ns, &format!("{prefix}{suffix}")).is_none() {
                return suffix;
            }
        }
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

    /// Every object in a namespace, of any type.
    pub fn keys_in_namespace(&self, ns: &str) -> Vec<ObjKey> {
        let mut keys = Vec::new();
        for (ty, objects) in &self.objects {
            keys.extend(
                objects
                    .range((ns.to_string(), String::new())..)
                    .take_while(|((n, _), _)| n == ns)
                    .map(|((n, name), _)| (ty.clone(), n.clone(), name.clone())),
            );
        }
        keys
    }

    /// Names of every object of a type.
    pub fn keys_of_type(&self, ty: &TypeKey) -> Vec<ObjKey> {
        self.objects
            .get(ty)
            .map(|o| {
                o.keys()
                    .map(|(ns, name)| (ty.clone(), ns.clone(), name.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether an object with this uid exists.
    pub fn uid_exists(&self, uid: &str) -> bool {
        self.uids.contains_key(uid)
    }

    /// How many objects of type `ty` there are.
    pub fn count(&self, ty: &TypeKey) -> usize {
        self.objects.get(ty).map_or(0, BTreeMap::len)
    }

    /// How many more pods namespace `ns` may hold now: what is left of the cluster's pod
    /// capacity and of the namespace's pod quota.
    pub fn pod_room(&self, ns: &str) -> usize {
        let pods: TypeKey = (String::new(), "pods".into());
        let room = self.max_pods.saturating_sub(self.count(&pods));
        match self.pod_quotas.get(ns) {
            Some(limit) => room.min(limit.saturating_sub(self.list(&pods, Some(ns)).len())),
            None => room,
        }
    }

    /// Why pod `name` (a `generateName` prefix for a pod not yet named) cannot be created in
    /// `ns` now, in the words of a real API server's quota admission; `None` when it can.
    pub fn pod_refusal(&self, ns: &str, name: &str) -> Option<String> {
        let pods: TypeKey = (String::new(), "pods".into());
        if let Some(limit) = self.pod_quotas.get(ns) {
            let used = self.list(&pods, Some(ns)).len();
            if used >= *limit {
                return Some(format!(
                    "pods \"{name}\" is forbidden: exceeded quota: pods, requested: pods=1, \
                     used: pods={used}, limited: pods={limit}"
                ));
            }
        }
        (self.count(&pods) >= self.max_pods).then(|| {
            format!(
                "pods \"{name}\" is forbidden: exceeded quota: the simulated cluster holds at \
                 most {} pods",
                self.max_pods
            )
        })
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

    /// Changes after `rv` still in history, oldest first.
    pub fn history_after(&self, rv: u64) -> impl Iterator<Item = &Arc<Change>> {
        let start = self.history.partition_point(|c| c.rv <= rv);
        self.history.range(start..)
    }

    /// Stores `new` (or deletes when `None`), stamping a new resourceVersion, and notifies
    /// watchers. Returns the stored object (`None` after a delete).
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
        let okey: ObjKey = (ty.clone(), ns.to_string(), name.to_string());
        let objects = self.objects.entry(ty.clone()).or_default();
        let old = objects.remove(&key);
        if let Some(old) = &old {
            for owner in owner_uids(old) {
                if let Some(set) = self.owners.get_mut(&owner) {
                    set.remove(&okey);
                    if set.is_empty() {
                        self.owners.remove(&owner);
                    }
                }
            }
            if let Some(uid) = old["metadata"]["uid"].as_str() {
                self.uids.remove(uid);
            }
        }
        let previous = match (&old, &new) {
            (Some(o), Some(n)) if selection_may_change(o, n) => {
                let mut p = o.clone();
                p["metadata"]["resourceVersion"] = json!(rv.to_string());
                Some(Arc::new(p))
            }
            _ => None,
        };
        let (kind, object) = match new {
            Some(mut obj) => {
                obj["metadata"]["resourceVersion"] = json!(rv.to_string());
                for owner in owner_uids(&obj) {
                    self.owners.entry(owner).or_default().insert(okey.clone());
                }
                if let Some(uid) = obj["metadata"]["uid"].as_str() {
                    self.uids.insert(uid.to_string(), okey.clone());
                }
                let objects = self.objects.entry(ty.clone()).or_default();
                objects.insert(key, obj.clone());
                (if old.is_some() { "MODIFIED" } else { "ADDED" }, obj)
            }
            None => {
                let mut obj = old.unwrap_or(Value::Null);
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
            object: Arc::new(object),
            previous,
        });
        let result = (kind != "DELETED").then(|| (*change.object).clone());
        self.history.push_back(change.clone());
        while self.history.len() > self.history_limit {
            if let Some(c) = self.history.pop_front() {
                self.oldest_rv = c.rv;
            }
        }
        let _ = self.tx.send(change);
        result
    }
}

/// Whether a change may move an object into or out of a label or field selector: labels or a
/// commonly selected field changed.
fn selection_may_change(old: &Value, new: &Value) -> bool {
    let paths: [&[&str]; 5] = [
        &["metadata", "labels"],
        &["status", "phase"],
        &["spec", "nodeName"],
        &["status", "replicas"],
        &["type"],
    ];
    fn at<'a>(v: &'a Value, path: &[&str]) -> &'a Value {
        path.iter().fold(v, |acc, k| &acc[*k])
    }
    paths.iter().any(|p| at(old, p) != at(new, p))
}

/// A cheap 64-bit mixer (splitmix64 finaliser) for uids and name suffixes.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}
