//! `set image`: new images for named containers of the pod template.

use serde_json::{Map, Value};

use crate::command::ContainerImage;
use crate::error::CtlError;
use crate::plan::{Plan, Subject};

/// Plans `set image NAME CONTAINER=IMAGE...`. The patch carries the complete list of
/// containers (and of init containers, when one of them changes): a merge patch replaces
/// lists whole.
pub(crate) fn set_image(s: &Subject<'_>, images: &[ContainerImage]) -> Result<Plan, CtlError> {
    if images.is_empty() {
        return Err(CtlError::NoImages);
    }
    let pod = s
        .rollout
        .spec
        .template
        .as_ref()
        .and_then(|t| t.spec.as_ref())
        .ok_or_else(|| CtlError::NoTemplate {
            rollout: s.id.clone(),
            what: "the Rollout".to_string(),
        })?;
    let mut containers = pod.containers.clone();
    let mut init_containers = pod.init_containers.clone().unwrap_or_default();
    let (mut containers_touched, mut init_touched) = (false, false);
    let mut changed = Vec::new();
    for ci in images {
        let slot = if let Some(c) = containers.iter_mut().find(|c| c.name == ci.container) {
            containers_touched = true;
            c
        } else if let Some(c) = init_containers.iter_mut().find(|c| c.name == ci.container) {
            init_touched = true;
            c
        } else {
            let existing = pod
                .containers
                .iter()
                .map(|c| c.name.clone())
                .chain(init_containers.iter().map(|c| format!("{} (init)", c.name)))
                .collect();
            return Err(CtlError::UnknownContainer {
                rollout: s.id.clone(),
                container: ci.container.clone(),
                existing,
            });
        };
        if slot.image.as_deref() != Some(ci.image.as_str()) {
            changed.push(ci.to_string());
        }
        slot.image = Some(ci.image.clone());
    }
    let mut pod_patch = Map::new();
    if containers_touched {
        pod_patch.insert("containers".to_string(), s.encode(&containers)?);
    }
    if init_touched {
        pod_patch.insert("initContainers".to_string(), s.encode(&init_containers)?);
    }
    let mut template = Map::new();
    template.insert("spec".to_string(), Value::Object(pod_patch));
    let mut spec = Map::new();
    spec.insert("template".to_string(), Value::Object(template));
    let message = if changed.is_empty() {
        let all: Vec<String> = images.iter().map(ToString::to_string).collect();
        s.done(&format!("unchanged (already {})", all.join(", ")))
    } else {
        s.done(&format!("image updated: {}", changed.join(", ")))
    };
    Ok(s.spec_plan(Value::Object(spec), message))
}
