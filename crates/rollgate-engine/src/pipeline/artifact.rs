//! What identifies an artifact: its images pinned by digest.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

/// Characters of a release name's hash part (as for pod-template hashes).
const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// The Release name of an artifact: `{pipeline}-{10 characters of the images' hash}`. The
/// same images always give the same name, so an artifact is recorded once.
pub fn release_name(pipeline: &str, images: &BTreeMap<String, String>) -> String {
    let mut hasher = Sha256::new();
    for (container, image) in images {
        hasher.update(container.as_bytes());
        hasher.update([0]);
        hasher.update(image.as_bytes());
        hasher.update([0]);
    }
    let hash: String = hasher
        .finalize()
        .iter()
        .take(10)
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect();
    // Names are at most 253 characters; keep room for the hash.
    let prefix: String = pipeline.chars().take(200).collect();
    format!("{prefix}-{hash}")
}

/// True when an image reference is pinned by digest.
pub fn is_pinned(image: &str) -> bool {
    image.contains("@sha256:")
}

/// The digest (`sha256:...`) of a container status `imageID`, which may carry a runtime prefix
/// (`docker-pullable://repo@sha256:...`) or be a bare digest.
pub fn digest_of_image_id(image_id: &str) -> Option<String> {
    let at = image_id.rfind("sha256:")?;
    let digest = &image_id[at..];
    let hex = &digest["sha256:".len()..];
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then(|| digest.to_string())
}

/// `image` pinned to `digest`: the repository without its tag, then `@digest`.
pub fn pin(image: &str, digest: &str) -> String {
    let repo = image.split('@').next().unwrap_or(image);
    // A tag is after the last ':' that follows the last '/' (a registry port is before it).
    let name_start = repo.rfind('/').map_or(0, |i| i + 1);
    let repo = match repo[name_start..].rfind(':') {
        Some(colon) => &repo[..name_start + colon],
        None => repo,
    };
    format!("{repo}@{digest}")
}

/// The artifact of `images` (as the first stage runs them): every image pinned, from
/// `running` (container -> digest of what the ready pods run) for those that are tags.
/// `None` while a digest is unknown.
pub fn pinned_images(
    images: &BTreeMap<String, String>,
    running: &BTreeMap<String, String>,
) -> Option<BTreeMap<String, String>> {
    images
        .iter()
        .map(|(c, image)| {
            if is_pinned(image) {
                Some((c.clone(), image.clone()))
            } else {
                running.get(c).map(|d| (c.clone(), pin(image, d)))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn image_ids_with_or_without_runtime_prefix_give_the_digest() {
        for id in [
            format!("docker-pullable://ghcr.io/shop/web@{D}"),
            format!("ghcr.io/shop/web@{D}"),
            D.to_string(),
        ] {
            assert_eq!(digest_of_image_id(&id).as_deref(), Some(D), "{id}");
        }
        assert_eq!(digest_of_image_id("ghcr.io/shop/web:1.2"), None);
        assert_eq!(digest_of_image_id("sha256:abc"), None);
    }

    #[test]
    fn pinning_drops_the_tag_but_keeps_a_registry_port() {
        assert_eq!(
            pin("ghcr.io/shop/web:1.2", D),
            format!("ghcr.io/shop/web@{D}")
        );
        assert_eq!(
            pin("registry:5000/shop/web:1.2", D),
            format!("registry:5000/shop/web@{D}")
        );
        assert_eq!(pin("web", D), format!("web@{D}"));
        assert_eq!(pin(&format!("web@{D}"), D), format!("web@{D}"));
    }

    #[test]
    fn tags_wait_for_running_digests_and_pinned_images_do_not() {
        let images = BTreeMap::from([("web".to_string(), "shop/web:2".to_string())]);
        assert_eq!(pinned_images(&images, &BTreeMap::new()), None);
        let running = BTreeMap::from([("web".to_string(), D.to_string())]);
        assert_eq!(
            pinned_images(&images, &running),
            Some(BTreeMap::from([(
                "web".to_string(),
                format!("shop/web@{D}")
            )]))
        );
        let pinned = BTreeMap::from([("web".to_string(), format!("shop/web@{D}"))]);
        assert_eq!(
            pinned_images(&pinned, &BTreeMap::new()),
            Some(pinned.clone())
        );
    }

    #[test]
    fn release_names_follow_the_images_only() {
        let a = BTreeMap::from([("web".to_string(), format!("shop/web@{D}"))]);
        let b = BTreeMap::from([("web".to_string(), "shop/web@sha256:ff".to_string())]);
        assert_eq!(release_name("web", &a), release_name("web", &a.clone()));
        assert_ne!(release_name("web", &a), release_name("web", &b));
        assert!(release_name("web", &a).starts_with("web-"));
    }
}
