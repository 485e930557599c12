//! The built binary, run as `rollgate` and as the kubectl plugin `kubectl-rollgate`.

use std::process::Command;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_rollgate");

#[test]
fn crds_without_out_dir_prints_every_crd_as_one_yaml_stream() {
    let output = Command::new(BIN).arg("crds").output().expect("runs");
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8(output.stdout).expect("UTF-8");
    let docs: Vec<Value> = serde_saphyr::from_multiple(&text).expect("a YAML stream");
    let names: Vec<&str> = docs
        .iter()
        .map(|d| {
            assert_eq!(d["kind"], "CustomResourceDefinition");
            d["metadata"]["name"].as_str().expect("CRD name")
        })
        .collect();
    let expected: Vec<String> = rollgate_api::crds::render()
        .expect("CRDs render")
        .into_iter()
        .map(|(file, _)| file.trim_end_matches(".yaml").to_string())
        .collect();
    assert_eq!(names, expected);
}

#[cfg(unix)]
#[test]
fn runs_as_kubectl_plugin_under_the_name_kubectl_rollgate() {
    let dir = std::env::temp_dir().join(format!("rollgate-plugin-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let plugin = dir.join("kubectl-rollgate");
    let _ = std::fs::remove_file(&plugin);
    std::os::unix::fs::symlink(BIN, &plugin).expect("symlink");

    let help = Command::new(&plugin).arg("--help").output().expect("runs");
    let version = Command::new(&plugin)
        .arg("--version")
        .output()
        .expect("runs");
    let crds = Command::new(&plugin).arg("crds").output().expect("runs");
    let _ = std::fs::remove_dir_all(&dir);

    assert!(help.status.success(), "{help:?}");
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("Usage: kubectl rollgate <COMMAND>"), "{help}");
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        format!("rollgate {}", env!("CARGO_PKG_VERSION"))
    );
    let direct = Command::new(BIN).arg("crds").output().expect("runs");
    assert!(crds.status.success() && !crds.stdout.is_empty(), "{crds:?}");
    assert_eq!(crds.stdout, direct.stdout);
}
