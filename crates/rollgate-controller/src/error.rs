//! Controller errors.

/// Errors of one reconcile.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A Kubernetes API call failed.
    #[error("{action}: {source}")]
    Kube {
        /// What was being done.
        action: String,
        /// The client's error.
        #[source]
        source: kube::Error,
    },
    /// Leader election cannot go on (the Lease cannot be read or created).
    #[error("leader election: {0}")]
    Lease(String),
    /// The Rollout has no namespace or name.
    #[error("rollout object without namespace or name")]
    MissingIdentity,
    /// Serializing an object failed.
    #[error("serializing {what}: {source}")]
    Serialize {
        /// What was serialized.
        what: String,
        /// The serializer's error.
        #[source]
        source: serde_json::Error,
    },
}

impl Error {
    /// Wraps a kube error with what was being done.
    pub fn kube(action: impl Into<String>, source: kube::Error) -> Self {
        Self::Kube {
            action: action.into(),
            source,
        }
    }

    /// True for a `409 Conflict` (stale resourceVersion): retry soon with fresh reads.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::Kube { source: kube::Error::Api(s), .. } if s.code == 409)
    }

    /// How long the server asked the client to wait before trying again (a 429's
    /// `Retry-After`, which the Status carries as `details.retryAfterSeconds`).
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            Self::Kube {
                source: kube::Error::Api(s),
                ..
            } => s
                .details
                .as_ref()
                .map(|d| d.retry_after_seconds)
                .filter(|secs| *secs > 0)
                .map(|secs| std::time::Duration::from_secs(u64::from(secs))),
            _ => None,
        }
    }

    /// Short label for metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Kube { .. } if self.is_conflict() => "conflict",
            Self::Kube { .. } => "kube",
            Self::MissingIdentity => "identity",
            Self::Serialize { .. } => "serialize",
            Self::Lease(_) => "lease",
        }
    }
}

/// True when the error is an API error with this HTTP code.
pub fn has_code(err: &kube::Error, code: u16) -> bool {
    matches!(err, kube::Error::Api(s) if s.code == code)
}
