//! What the engine asks the controller to do.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::jiff::Timestamp;
use rollgate_api::{AnalysisRun, PodMetadata, RolloutStatus};

/// The engine's answer for one reconcile.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// Changes to apply, in order. Empty when the world already matches.
    pub actions: Vec<Action>,
    /// Events to publish on the Rollout.
    pub events: Vec<Event>,
    /// The new status (write it only when it differs from the current one).
    pub status: RolloutStatus,
    /// When to reconcile again even if nothing changes (a timer is due).
    pub requeue_after: Option<Duration>,
}

/// One change to the cluster.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Create a ReplicaSet (complete object, owner reference included).
    CreateReplicaSet(Box<ReplicaSet>),
    /// Patch a ReplicaSet's replicas and/or rollgate annotations.
    UpdateReplicaSet {
        /// ReplicaSet name.
        name: String,
        /// New `spec.replicas`, if it changes.
        replicas: Option<i32>,
        /// Scale-down deadline annotation change.
        deadline: DeadlineChange,
        /// New revision annotation, if it changes.
        revision: Option<i64>,
    },
    /// Delete a ReplicaSet beyond the revision history limit.
    DeleteReplicaSet {
        /// ReplicaSet name.
        name: String,
    },
    /// Point a Service's selector at a pod-template hash.
    SwitchService {
        /// Service name.
        service: String,
        /// Its role for the rollout.
        role: ServiceRole,
        /// Hash it selected before, if any.
        from: Option<String>,
        /// Hash it selects after.
        to: String,
    },
    /// Give a Service its plain selector back: remove the pod-template hash the rollout pinned
    /// (and the rollout's mark), because the current strategy no longer names the Service.
    ReleaseService {
        /// Service name.
        service: String,
        /// Hash it selected before.
        from: String,
    },
    /// Delete a pod so that its ReplicaSet replaces it (`restartAt`).
    DeletePod {
        /// Pod name.
        name: String,
    },
    /// Create an AnalysisRun (complete object, owner reference included).
    CreateAnalysisRun(Box<AnalysisRun>),
    /// Set the weights of the canary and stable backends in every rule of a Gateway API
    /// HTTPRoute that names them (they always sum to 100).
    SetRouteWeights {
        /// Namespace of the HTTPRoute.
        namespace: String,
        /// Name of the HTTPRoute.
        route: String,
        /// The canary Service (backend) name.
        canary_service: String,
        /// The stable Service (backend) name.
        stable_service: String,
        /// Weight of the canary backend (0-100); the stable one gets `100 - canary_weight`.
        canary_weight: i32,
        /// Canary weight before, as observed.
        from: i32,
    },
    /// Make the managed routes of a Gateway API HTTPRoute `rules` (Argo Rollouts'
    /// `managedRoutes`): every rule named after one of `managed` is removed and `rules`,
    /// written by [`crate::routes::write`], put first; the route's other rules stay as they are.
    SetManagedRoutes {
        /// Namespace of the HTTPRoute.
        namespace: String,
        /// Name of the HTTPRoute.
        route: String,
        /// The canary Service (backend) name.
        canary_service: String,
        /// The stable Service (backend) name.
        stable_service: String,
        /// Every managed route name (`trafficRouting.managedRoutes`), in order.
        managed: Vec<String>,
        /// The managed routes wanted, in order (empty: all removed).
        rules: Vec<crate::routes::ManagedRule>,
    },
    /// Change the ephemeral (role) metadata of a ReplicaSet's pod template
    /// (`spec.template.metadata`) and record it in its
    /// [`EPHEMERAL_METADATA`](rollgate_api::labels::EPHEMERAL_METADATA) annotation. The pod
    /// template hash is not touched: pods are not replaced.
    SetReplicaSetMetadata {
        /// ReplicaSet name.
        name: String,
        /// Changes to `spec.template.metadata`.
        change: MetadataChange,
        /// What the annotation records afterwards (empty: the annotation is removed).
        record: PodMetadata,
    },
    /// Change a pod's labels and annotations in place (ephemeral metadata moving with its
    /// ReplicaSet's role); the pod keeps running.
    SetPodMetadata {
        /// Pod name.
        name: String,
        /// Changes to its `metadata`.
        change: MetadataChange,
    },
    /// Ask a running AnalysisRun to stop (`spec.terminate = true`).
    TerminateAnalysisRun {
        /// AnalysisRun name.
        name: String,
    },
    /// Set `spec.replicas` of the Deployment or ReplicaSet `spec.workloadRef` names (its
    /// `scaleDown` policy). Never a PodTemplate: it has no replicas.
    ScaleWorkload {
        /// Its kind (Deployment or ReplicaSet).
        kind: crate::observed::WorkloadKind,
        /// Its name.
        name: String,
        /// Its new `spec.replicas`.
        replicas: i32,
    },
}

/// Changes to the labels and annotations of an object: `Some` sets a key, `None` removes it.
/// Keys not named are left as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetadataChange {
    /// Label changes.
    pub labels: BTreeMap<String, Option<String>>,
    /// Annotation changes.
    pub annotations: BTreeMap<String, Option<String>>,
}

impl MetadataChange {
    /// True when it changes nothing.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty() && self.annotations.is_empty()
    }

    /// Applies the change to `labels` and `annotations`.
    pub fn apply_to(&self, meta: &mut PodMetadata) {
        for (changes, map) in [
            (&self.labels, &mut meta.labels),
            (&self.annotations, &mut meta.annotations),
        ] {
            for (k, v) in changes {
                match v {
                    Some(v) => {
                        map.insert(k.clone(), v.clone());
                    }
                    None => {
                        map.remove(k);
                    }
                }
            }
        }
    }
}

/// Change to a ReplicaSet's scale-down deadline annotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadlineChange {
    /// Leave it as it is.
    Keep,
    /// Set it.
    Set(Timestamp),
    /// Remove it.
    Clear,
}

/// What a Service is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceRole {
    /// Blue/green active Service (production traffic).
    Active,
    /// Blue/green preview Service.
    Preview,
    /// Canary: the Service selecting only the stable pods.
    Stable,
    /// Canary: the Service selecting only the canary pods.
    Canary,
}

impl ServiceRole {
    /// Lower-case name for messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Preview => "preview",
            Self::Stable => "stable",
            Self::Canary => "canary",
        }
    }
}

/// A Kubernetes Event to publish on the Rollout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Warning (true) or Normal.
    pub warning: bool,
    /// Reason.
    pub reason: rollgate_api::EventReason,
    /// Human-readable note.
    pub note: String,
}
