//! Carrying a command out against the API server: read, plan, patch; again on a conflict.

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::jiff::Timestamp;
use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, Client};
use rollgate_api::Rollout;
use rollgate_api::labels::ROLLOUT_NAME;

use crate::command::Command;
use crate::error::CtlError;
use crate::plan::{PatchTarget, plan};

/// Field manager of every patch the CLI sends.
pub const FIELD_MANAGER: &str = "rollgate-cli";

/// How many times a command is read, planned and sent before a run of 409 Conflicts makes
/// it give up.
pub const MAX_ATTEMPTS: usize = 5;

/// Runs `cmd` on the Rollout `namespace/name` and returns the message to print.
///
/// Reads the Rollout (404: [`CtlError::NotFound`]) and, for `undo`, its ReplicaSets (label
/// `rollgate.dev/rollout=<name>`), plans, and sends the plan's merge patch (to the status
/// subresource or to the Rollout) with field manager [`FIELD_MANAGER`]. The patch carries the
/// resourceVersion that was read, so a concurrent change makes the API server answer 409; the
/// command is then read and planned again, at most [`MAX_ATTEMPTS`] times in all.
pub async fn run(
    client: &Client,
    namespace: &str,
    name: &str,
    cmd: &Command,
    now: Timestamp,
) -> Result<String, CtlError> {
    let rollouts = Api::<Rollout>::namespaced(client.clone(), namespace);
    let replica_sets = Api::<ReplicaSet>::namespaced(client.clone(), namespace);
    let id = format!("{namespace}/{name}");
    let not_found = || CtlError::NotFound {
        namespace: namespace.to_string(),
        name: name.to_string(),
    };
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.to_string()),
        ..Default::default()
    };
    for _ in 0..MAX_ATTEMPTS {
        let rollout = rollouts
            .get_opt(name)
            .await
            .map_err(kube_err(format!("reading rollout {id}")))?
            .ok_or_else(not_found)?;
        let owned = if cmd.needs_replica_sets() {
            let selector = format!("{ROLLOUT_NAME}={name}");
            replica_sets
                .list(&ListParams::default().labels(&selector))
                .await
                .map_err(kube_err(format!("listing the ReplicaSets of rollout {id}")))?
                .items
        } else {
            Vec::new()
        };
        let plan = plan(cmd, &rollout, &owned, now)?;
        let patch = Patch::Merge(&plan.patch);
        let sent = match plan.target {
            PatchTarget::Status => rollouts.patch_status(name, &params, &patch).await,
            PatchTarget::Spec => rollouts.patch(name, &params, &patch).await,
        };
        match sent {
            Ok(_) => return Ok(plan.message),
            Err(kube::Error::Api(status)) if status.code == 409 => {}
            Err(kube::Error::Api(status)) if status.code == 404 => return Err(not_found()),
            Err(source) => {
                let what = match plan.target {
                    PatchTarget::Status => format!("patching the status of rollout {id}"),
                    PatchTarget::Spec => format!("patching rollout {id}"),
                };
                return Err(CtlError::Kube { what, source });
            }
        }
    }
    Err(CtlError::Conflict {
        rollout: id,
        attempts: MAX_ATTEMPTS,
    })
}

fn kube_err(what: String) -> impl FnOnce(kube::Error) -> CtlError {
    move |source| CtlError::Kube { what, source }
}
