//! The pod-template hash that names a revision.

use k8s_openapi::api::core::v1::PodTemplateSpec;
use sha2::{Digest, Sha256};

/// Length of the hash in characters.
const HASH_LEN: usize = 10;
/// Characters used: no vowels (no accidental words) and no look-alike digits, as Kubernetes does.
const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// Stable hash of a pod template. The rollgate hash label is ignored, so the template of a
/// ReplicaSet hashes to the same value as the Rollout template it was made from.
pub fn pod_template_hash(template: &PodTemplateSpec) -> String {
    let mut template = template.clone();
    if let Some(labels) = template.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
        labels.remove(rollgate_api::labels::POD_TEMPLATE_HASH);
    }
    // k8s-openapi serializes fields in declaration order and maps sorted: the bytes are stable.
    let bytes = serde_json::to_vec(&template).unwrap_or_default();
    let digest = Sha256::digest(&bytes);
    digest
        .iter()
        .take(HASH_LEN)
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, PodSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn template(image: &str) -> PodTemplateSpec {
        PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some([("app".to_string(), "web".to_string())].into()),
                ..Default::default()
            }),
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "web".into(),
                    image: Some(image.into()),
                    ..Default::default()
                }],
                ..Default::default()
            }),
        }
    }

    #[test]
    fn same_template_same_hash_and_image_change_changes_it() {
        let a = pod_template_hash(&template("web:1"));
        assert_eq!(a, pod_template_hash(&template("web:1")));
        assert_ne!(a, pod_template_hash(&template("web:2")));
        assert_eq!(a.len(), HASH_LEN);
    }

    #[test]
    fn hash_label_is_ignored() {
        let mut t = template("web:1");
        let plain = pod_template_hash(&t);
        if let Some(labels) = t.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
            labels.insert(
                rollgate_api::labels::POD_TEMPLATE_HASH.into(),
                plain.clone(),
            );
        }
        assert_eq!(plain, pod_template_hash(&t));
    }
}
