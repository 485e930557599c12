//! The resource types the simulated API server serves: built-in ones and those of
//! CustomResourceDefinitions.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

/// Where a `/scale` subresource finds its numbers (JSON paths like `.spec.replicas`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScaleSpec {
    /// Path of the desired replica count.
    pub spec_replicas_path: String,
    /// Path of the observed replica count.
    pub status_replicas_path: String,
    /// Path of the label selector string, if any.
    pub label_selector_path: Option<String>,
}

/// One served resource type (one version of it).
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceType {
    /// API group (`""` for the core group).
    pub group: String,
    /// Version.
    pub version: String,
    /// Plural name used in paths.
    pub plural: String,
    /// Singular name.
    pub singular: String,
    /// Kind.
    pub kind: String,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// Whether `/status` is a separate subresource.
    pub status_subresource: bool,
    /// The `/scale` subresource, if served.
    pub scale: Option<ScaleSpec>,
    /// Short names for kubectl.
    pub short_names: Vec<String>,
    /// Categories (`all`).
    pub categories: Vec<String>,
    /// Defined by a CustomResourceDefinition (named here) rather than built in.
    pub crd: Option<String>,
    /// The version's OpenAPI v3 schema (custom resources only).
    pub schema: Option<Arc<Value>>,
    /// Position of the version in its CRD (0 = preferred).
    pub priority: usize,
    /// Extra field selectors (`selectableFields` of a CRD), as dotted paths.
    pub selectable_fields: Vec<String>,
    /// Storage `(group, plural)`: versions and representations of a resource share it.
    pub storage: (String, String),
    /// `additionalPrinterColumns` of a CRD version.
    pub printer_columns: Vec<Value>,
}

impl ResourceType {
    /// `group/version`, or `version` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// Whether this is a custom resource.
    pub fn is_custom(&self) -> bool {
        self.crd.is_some()
    }

    fn builtin(
        group: &str,
        version: &str,
        plural: &str,
        kind: &str,
        namespaced: bool,
        status: bool,
        short_names: &[&str],
    ) -> Self {
        Self {
            group: group.into(),
            version: version.into(),
            plural: plural.into(),
            singular: kind.to_lowercase(),
            kind: kind.into(),
            namespaced,
            status_subresource: status,
            scale: None,
            short_names: short_names.iter().map(|s| (*s).to_string()).collect(),
            categories: Vec::new(),
            crd: None,
            schema: None,
            priority: 0,
            selectable_fields: Vec::new(),
            storage: (group.into(), plural.into()),
            printer_columns: Vec::new(),
        }
    }
}

/// All served resource types, keyed by `(group, version, plural)`.
#[derive(Debug, Clone)]
pub struct Registry {
    types: BTreeMap<(String, String, String), ResourceType>,
}

impl Default for Registry {
    fn default() -> Self {
        let mut r = Self {
            types: BTreeMap::new(),
        };
        let all = vec!["all".to_string()];
        let mut pods = ResourceType::builtin("", "v1", "pods", "Pod", true, true, &["po"]);
        pods.categories.clone_from(&all);
        let mut services =
            ResourceType::builtin("", "v1", "services", "Service", true, true, &["svc"]);
        services.categories.clone_from(&all);
        let mut replicasets = ResourceType::builtin(
            "apps",
            "v1",
            "replicasets",
            "ReplicaSet",
            true,
            true,
            &["rs"],
        );
        replicasets.categories = all;
        replicasets.scale = Some(ScaleSpec {
            spec_replicas_path: ".spec.replicas".into(),
            status_replicas_path: ".status.replicas".into(),
            label_selector_path: None,
        });
        let mut deployments = ResourceType::builtin(
            "apps",
            "v1",
            "deployments",
            "Deployment",
            true,
            true,
            &["deploy"],
        );
        deployments.categories.clone_from(&replicasets.categories);
        deployments.scale.clone_from(&replicasets.scale);
        let mut events = ResourceType::builtin(
            "events.k8s.io",
            "v1",
            "events",
            "Event",
            true,
            false,
            &["ev"],
        );
        events.storage = (String::new(), "events".into());
        for t in [
            pods,
            services,
            replicasets,
            ResourceType::builtin("", "v1", "secrets", "Secret", true, false, &[]),
            // Read by a Rollout's `spec.workloadRef` (Argo Rollouts: a pod template only).
            ResourceType::builtin("", "v1", "podtemplates", "PodTemplate", true, false, &[]),
            ResourceType::builtin("", "v1", "configmaps", "ConfigMap", true, false, &["cm"]),
            ResourceType::builtin("", "v1", "events", "Event", true, false, &["ev"]),
            ResourceType::builtin("", "v1", "namespaces", "Namespace", false, true, &["ns"]),
            ResourceType::builtin(
                "",
                "v1",
                "serviceaccounts",
                "ServiceAccount",
                true,
                false,
                &["sa"],
            ),
            events,
            deployments,
            ResourceType::builtin(
                "rbac.authorization.k8s.io",
                "v1",
                "roles",
                "Role",
                true,
                false,
                &[],
            ),
            ResourceType::builtin(
                "rbac.authorization.k8s.io",
                "v1",
                "rolebindings",
                "RoleBinding",
                true,
                false,
                &[],
            ),
            ResourceType::builtin(
                "rbac.authorization.k8s.io",
                "v1",
                "clusterroles",
                "ClusterRole",
                false,
                false,
                &[],
            ),
            ResourceType::builtin(
                "rbac.authorization.k8s.io",
                "v1",
                "clusterrolebindings",
                "ClusterRoleBinding",
                false,
                false,
                &[],
            ),
            ResourceType::builtin(
                "coordination.k8s.io",
                "v1",
                "leases",
                "Lease",
                true,
                false,
                &[],
            ),
            ResourceType::builtin(
                "apiextensions.k8s.io",
                "v1",
                "customresourcedefinitions",
                "CustomResourceDefinition",
                false,
                true,
                &["crd", "crds"],
            ),
        ] {
            r.insert(t);
        }
        r
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

impl Registry {
    /// Adds or replaces a resource type.
    pub fn insert(&mut self, t: ResourceType) {
        self.types
            .insert((t.group.clone(), t.version.clone(), t.plural.clone()), t);
    }

    /// Looks up a resource type.
    pub fn get(&self, group: &str, version: &str, plural: &str) -> Option<&ResourceType> {
        self.types
            .get(&(group.to_string(), version.to_string(), plural.to_string()))
    }

    /// Every served type.
    pub fn all(&self) -> impl Iterator<Item = &ResourceType> {
        self.types.values()
    }

    /// Every type of a group/version.
    pub fn of_group_version<'a>(
        &'a self,
        group: &'a str,
        version: &'a str,
    ) -> impl Iterator<Item = &'a ResourceType> {
        self.types
            .values()
            .filter(move |t| t.group == group && t.version == version)
    }

    /// Served groups (without the core group), each with its versions, preferred first.
    pub fn groups(&self) -> BTreeMap<String, Vec<String>> {
        let mut groups: BTreeMap<String, Vec<(usize, String)>> = BTreeMap::new();
        for t in self.types.values().filter(|t| !t.group.is_empty()) {
            let versions = groups.entry(t.group.clone()).or_default();
            if !versions.iter().any(|(_, v)| *v == t.version) {
                versions.push((t.priority, t.version.clone()));
            }
        }
        groups
            .into_iter()
            .map(|(g, mut vs)| {
                vs.sort();
                (g, vs.into_iter().map(|(_, v)| v).collect())
            })
            .collect()
    }

    /// Serves the versions of a CustomResourceDefinition object (replacing what an earlier
    /// version of it served).
    pub fn register_crd(&mut self, crd: &Value) {
        self.unregister_crd(crd);
        let spec = &crd["spec"];
        let crd_name = crd["metadata"]["name"].as_str().unwrap_or_default();
        let group = spec["group"].as_str().unwrap_or_default();
        let names = &spec["names"];
        let (Some(plural), Some(kind)) = (names["plural"].as_str(), names["kind"].as_str()) else {
            return;
        };
        let namespaced = spec["scope"].as_str() != Some("Cluster");
        let singular = names["singular"]
            .as_str()
            .filter(|s| !s.is_empty())
            .map_or_else(|| kind.to_lowercase(), String::from);
        let served = spec["versions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|v| v["served"].as_bool().unwrap_or(true));
        for (priority, v) in served.enumerate() {
            let Some(version) = v["name"].as_str() else {
                continue;
            };
            let sub = &v["subresources"];
            let scale = sub["scale"].as_object().map(|s| ScaleSpec {
                spec_replicas_path: s
                    .get("specReplicasPath")
                    .and_then(Value::as_str)
                    .unwrap_or(".spec.replicas")
                    .into(),
                status_replicas_path: s
                    .get("statusReplicasPath")
                    .and_then(Value::as_str)
                    .unwrap_or(".status.replicas")
                    .into(),
                label_selector_path: s
                    .get("labelSelectorPath")
                    .and_then(Value::as_str)
                    .map(String::from),
            });
            let schema = &v["schema"]["openAPIV3Schema"];
            self.insert(ResourceType {
                group: group.into(),
                version: version.into(),
                plural: plural.into(),
                singular: singular.clone(),
                kind: kind.into(),
                namespaced,
                status_subresource: sub["status"].is_object(),
                scale,
                short_names: strings(&names["shortNames"]),
                categories: strings(&names["categories"]),
                crd: Some(crd_name.to_string()),
                schema: schema.is_object().then(|| Arc::new(schema.clone())),
                priority,
                selectable_fields: v["selectableFields"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|f| f["jsonPath"].as_str())
                    .map(|p| p.trim_start_matches('.').to_string())
                    .collect(),
                storage: (group.into(), plural.into()),
                printer_columns: v["additionalPrinterColumns"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default(),
            });
        }
    }

    /// Stops serving what a CustomResourceDefinition served. Returns the removed types.
    pub fn unregister_crd(&mut self, crd: &Value) -> Vec<ResourceType> {
        let Some(name) = crd["metadata"]["name"].as_str() else {
            return Vec::new();
        };
        let keys: Vec<_> = self
            .types
            .iter()
            .filter(|(_, t)| t.crd.as_deref() == Some(name))
            .map(|(k, _)| k.clone())
            .collect();
        keys.into_iter()
            .filter_map(|k| self.types.remove(&k))
            .collect()
    }

    /// Whether a CRD would define names already served by another definition or built in.
    pub fn names_taken(&self, crd: &Value) -> bool {
        let spec = &crd["spec"];
        let name = crd["metadata"]["name"].as_str();
        let group = spec["group"].as_str().unwrap_or_default();
        let plural = spec["names"]["plural"].as_str().unwrap_or_default();
        self.types
            .values()
            .any(|t| t.group == group && t.plural == plural && t.crd.as_deref() != name)
    }
}
