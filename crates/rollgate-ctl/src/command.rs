//! The manual-control commands, as data.

use std::str::FromStr;

use crate::error::CtlError;

/// One manual-control command on one Rollout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// End the current pause (or skip the current canary step); with `full`, skip every
    /// remaining step, pause and analysis.
    Promote {
        /// `--full`: set `status.promoteFull`.
        full: bool,
    },
    /// Abort the release in flight: traffic goes back to the stable version.
    Abort,
    /// Start an aborted release again.
    Retry,
    /// Set `spec.paused`: no step advances.
    Pause,
    /// Clear `spec.paused`.
    Resume,
    /// Put back the pod template of an earlier revision (default: the one before the current).
    Undo {
        /// `--to-revision N`.
        to_revision: Option<i64>,
    },
    /// Change the image of containers (a new revision).
    SetImage {
        /// The changes, in the order given.
        images: Vec<ContainerImage>,
    },
    /// Restart every pod (sets `spec.restartAt`).
    Restart,
}

impl Command {
    /// True when planning needs the Rollout's ReplicaSets (only `undo` does).
    pub fn needs_replica_sets(&self) -> bool {
        matches!(self, Self::Undo { .. })
    }

    /// The command's name as typed on the command line.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Promote { .. } => "promote",
            Self::Abort => "abort",
            Self::Retry => "retry",
            Self::Pause => "pause",
            Self::Resume => "resume",
            Self::Undo { .. } => "undo",
            Self::SetImage { .. } => "set image",
            Self::Restart => "restart",
        }
    }
}

/// A `CONTAINER=IMAGE` argument of `set image`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerImage {
    /// Container (or init container) name.
    pub container: String,
    /// The new image.
    pub image: String,
}

impl FromStr for ContainerImage {
    type Err = CtlError;

    /// Parses `CONTAINER=IMAGE`; both parts must be non-empty.
    fn from_str(arg: &str) -> Result<Self, Self::Err> {
        match arg.split_once('=') {
            Some((container, image)) if !container.is_empty() && !image.is_empty() => Ok(Self {
                container: container.to_string(),
                image: image.to_string(),
            }),
            _ => Err(CtlError::InvalidImageArgument {
                arg: arg.to_string(),
            }),
        }
    }
}

impl std::fmt::Display for ContainerImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}={}", self.container, self.image)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_image_parses_the_first_equals_sign() {
        let ci: ContainerImage = "web=registry.local/web:2=x".parse().expect("valid");
        assert_eq!(ci.container, "web");
        assert_eq!(ci.image, "registry.local/web:2=x");
        assert_eq!(ci.to_string(), "web=registry.local/web:2=x");
    }

    #[test]
    fn container_image_rejects_missing_parts() {
        for bad in ["web", "=img", "web=", ""] {
            let err = bad.parse::<ContainerImage>().expect_err(bad);
            assert!(
                matches!(&err, CtlError::InvalidImageArgument { arg } if arg == bad),
                "{err:?}"
            );
            assert!(err.to_string().contains("CONTAINER=IMAGE"), "{err}");
        }
    }

    #[test]
    fn only_undo_needs_replica_sets() {
        assert!(Command::Undo { to_revision: None }.needs_replica_sets());
        for c in [
            Command::Promote { full: false },
            Command::Abort,
            Command::Retry,
            Command::Pause,
            Command::Resume,
            Command::SetImage { images: vec![] },
            Command::Restart,
        ] {
            assert!(!c.needs_replica_sets(), "{}", c.name());
        }
    }
}
