//! Everything that can stop a manual-control command, each naming the rollout as
//! `NAMESPACE/NAME` and what was wrong.

/// Why a command was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    /// The Rollout does not exist.
    #[error("rollout {namespace}/{name} not found")]
    NotFound {
        /// Namespace looked in.
        namespace: String,
        /// Name looked for.
        name: String,
    },
    /// `promote` on an aborted release.
    #[error("rollout {rollout} is aborted: use `rollgate retry {name}` to start the release again")]
    Aborted {
        /// `NAMESPACE/NAME`.
        rollout: String,
        /// The Rollout's name (for the hint).
        name: String,
    },
    /// `abort` on an already aborted release.
    #[error(
        "rollout {rollout} is already aborted: use `rollgate retry {name}` to start the release again"
    )]
    AlreadyAborted {
        /// `NAMESPACE/NAME`.
        rollout: String,
        /// The Rollout's name (for the hint).
        name: String,
    },
    /// `retry` on a release that is not aborted.
    #[error("rollout {rollout} is not aborted: nothing to retry")]
    NotAborted {
        /// `NAMESPACE/NAME`.
        rollout: String,
    },
    /// `promote` while `spec.paused` is set.
    #[error("rollout {rollout} is paused by spec.paused: use `rollgate resume {name}`")]
    PausedBySpec {
        /// `NAMESPACE/NAME`.
        rollout: String,
        /// The Rollout's name (for the hint).
        name: String,
    },
    /// `promote` or `abort` when the current revision is the stable one.
    #[error("rollout {rollout} has no release in flight ({state}): nothing to {action}")]
    NothingInFlight {
        /// `NAMESPACE/NAME`.
        rollout: String,
        /// What was asked (`promote`, `abort`).
        action: &'static str,
        /// What the status says instead, in words.
        state: String,
    },
    /// `promote` of a release that waits for nothing a promotion can skip.
    #[error(
        "rollout {rollout} is not paused: nothing to promote (use --full to skip all remaining steps and analysis)"
    )]
    NotPaused {
        /// `NAMESPACE/NAME`.
        rollout: String,
    },
    /// `pause` while `spec.paused` is already true.
    #[error("rollout {rollout} is already paused (spec.paused is true)")]
    AlreadyPaused {
        /// `NAMESPACE/NAME`.
        rollout: String,
    },
    /// `resume` while `spec.paused` is not true.
    #[error("rollout {rollout} is not paused (spec.paused is not true): nothing to resume")]
    NotPausedBySpec {
        /// `NAMESPACE/NAME`.
        rollout: String,
    },
    /// `undo --to-revision N` with no ReplicaSet of revision N.
    #[error(
        "rollout {rollout} has no revision {revision}; revisions available: {}",
        list(.available)
    )]
    NoRevision {
        /// `NAMESPACE/NAME`.
        rollout: String,
        /// The revision asked for.
        revision: i64,
        /// Revisions that have a ReplicaSet, ascending.
        available: Vec<i64>,
    },
    /// `undo` with no revision older than the current one.
    #[error(
        "rollout {rollout} has no revision before {current} to roll back to; revisions available: {}",
        list(.available)
    )]
    NoPreviousRevision {
        /// `NAMESPACE/NAME`.
        rollout: String,
        /// The current revision.
        current: i64,
        /// Revisions that have a ReplicaSet, ascending.
        available: Vec<i64>,
    },
    /// `undo` to the template the Rollout already has.
    #[error("rollout {rollout} already runs the template of revision {revision}: nothing to undo")]
    AlreadyCurrent {
        /// `NAMESPACE/NAME`.
        rollout: String,
        /// The revision asked for.
        revision: i64,
    },
    /// The Rollout (or the ReplicaSet to roll back to) has no pod template or pod spec.
    #[error("rollout {rollout}: {what} has no pod template (spec.template.spec)")]
    NoTemplate {
        /// `NAMESPACE/NAME`.
        rollout: String,
        /// `the Rollout` or `ReplicaSet NAME`.
        what: String,
    },
    /// `set image` naming a container the template does not have.
    #[error(
        "rollout {rollout} has no container '{container}'; its containers are: {}",
        names(.existing)
    )]
    UnknownContainer {
        /// `NAMESPACE/NAME`.
        rollout: String,
        /// The unknown name.
        container: String,
        /// Names of the containers and init containers of the template.
        existing: Vec<String>,
    },
    /// A `set image` argument that is not `CONTAINER=IMAGE`.
    #[error("invalid argument '{arg}': expected CONTAINER=IMAGE")]
    InvalidImageArgument {
        /// The argument as given.
        arg: String,
    },
    /// `set image` without any `CONTAINER=IMAGE`.
    #[error("no CONTAINER=IMAGE given")]
    NoImages,
    /// Part of the patch could not be built.
    #[error("rollout {rollout}: cannot build the patch")]
    Encode {
        /// `NAMESPACE/NAME`.
        rollout: String,
        /// The serializer's error.
        #[source]
        source: serde_json::Error,
    },
    /// Every attempt met a concurrent change (409 Conflict).
    #[error(
        "rollout {rollout} kept changing while the command was applied: gave up after {attempts} conflicts (409); try again"
    )]
    Conflict {
        /// `NAMESPACE/NAME`.
        rollout: String,
        /// Attempts made.
        attempts: usize,
    },
    /// The API server stores the Rollout, but it holds a value these types cannot represent
    /// (it was stored under an older or looser CRD).
    #[error("rollout {rollout} cannot be read: {problem} (correct it with `kubectl edit`)")]
    Undecodable {
        /// `NAMESPACE/NAME`.
        rollout: String,
        /// The field and what is wrong with it.
        problem: rollgate_api::decode::DecodeError,
    },
    /// The PromotionPipeline does not exist.
    #[error("pipeline {namespace}/{name} not found")]
    PipelineNotFound {
        /// Namespace looked in.
        namespace: String,
        /// Name looked for.
        name: String,
    },
    /// The Release does not exist.
    #[error("release {namespace}/{name} not found")]
    ReleaseNotFound {
        /// Namespace looked in.
        namespace: String,
        /// Name looked for.
        name: String,
    },
    /// A stage the release's pipeline does not have.
    #[error(
        "release {release} has no stage '{stage}': its pipeline {pipeline} has the stages {}",
        names(.stages)
    )]
    NoSuchStage {
        /// `NAMESPACE/NAME` of the release.
        release: String,
        /// The release's pipeline (`spec.pipeline`).
        pipeline: String,
        /// The stage asked for.
        stage: String,
        /// The pipeline's stages, in order.
        stages: Vec<String>,
    },
    /// `promote --pipeline P --release R` where R belongs to another pipeline.
    #[error("release {release} belongs to pipeline '{actual}' (spec.pipeline), not '{asked}'")]
    WrongPipeline {
        /// `NAMESPACE/NAME` of the release.
        release: String,
        /// The pipeline given with `--pipeline`.
        asked: String,
        /// The release's `spec.pipeline`.
        actual: String,
    },
    /// Nobody to record as the approver.
    #[error("cannot tell who decides: {problem}; pass --approver NAME")]
    NoApprover {
        /// Why the kubeconfig does not say.
        problem: String,
    },
    /// A request to the API server failed. The client's error is the [`source`](std::error::Error::source)
    /// (print the chain, e.g. with anyhow's `{:#}`).
    #[error("{what}")]
    Kube {
        /// What was being done.
        what: String,
        /// The client's error.
        #[source]
        source: kube::Error,
    },
}

fn list(revisions: &[i64]) -> String {
    if revisions.is_empty() {
        return "none".to_string();
    }
    revisions
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn names(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_read_as_words() {
        let e = CtlError::NoRevision {
            rollout: "default/web".into(),
            revision: 9,
            available: vec![3, 4, 5],
        };
        assert_eq!(
            e.to_string(),
            "rollout default/web has no revision 9; revisions available: 3, 4, 5"
        );
        let e = CtlError::NoPreviousRevision {
            rollout: "default/web".into(),
            current: 1,
            available: vec![],
        };
        assert!(e.to_string().ends_with("revisions available: none"), "{e}");
    }
}
