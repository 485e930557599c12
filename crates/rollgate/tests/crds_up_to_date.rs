//! The committed CRDs under `manifests/crds/` are exactly what `rollgate crds` generates.

use std::collections::BTreeSet;
use std::path::PathBuf;

#[test]
fn committed_crds_match_the_rust_types() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../manifests/crds");
    let hint = "run `cargo run -p rollgate -- crds --out-dir manifests/crds` and commit the result";
    let generated = rollgate_api::crds::render().expect("CRDs render");
    let mut expected = BTreeSet::new();
    for (name, yaml) in &generated {
        expected.insert(name.clone());
        let committed = std::fs::read_to_string(dir.join(name))
            .unwrap_or_else(|e| panic!("manifests/crds/{name} unreadable ({e}): {hint}"));
        assert!(
            committed == *yaml,
            "manifests/crds/{name} differs from the Rust types: {hint}"
        );
    }
    let present: BTreeSet<String> = std::fs::read_dir(&dir)
        .expect("manifests/crds exists")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    let stale: Vec<_> = present.difference(&expected).collect();
    assert!(
        stale.is_empty(),
        "stale files in manifests/crds: {stale:?}: delete them, then {hint}"
    );
}
