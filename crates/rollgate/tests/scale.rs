//! The Rollout's scale subresource through the installed kubectl against `rollgate dev`, as an
//! Argo Rollouts user relies on it: `kubectl scale rollout/NAME` and an HPA. Argo's CRD serves
//! `/scale` with `specReplicasPath: .spec.replicas`, `statusReplicasPath: .status.HPAReplicas`
//! and `labelSelectorPath: .status.selector` (`pkg/apis/rollouts/v1alpha1/types.go`); for
//! blue/green the selector is the active ReplicaSet's, with its pod-template hash
//! (`rollout/bluegreen.go` `syncRolloutStatusBlueGreen`). An HPA reads exactly that Scale:
//! `status.replicas` as the current count and `status.selector` to list the pods it measures,
//! and writes `spec.replicas` back through it.
#![cfg(unix)]

use crate::support;

use serde_json::Value;
use support::{Dev, Kubectl, kubectl_installed, temp_dir};

const SCALE: &str = "/apis/rollgate.dev/v1alpha1/namespaces/shop/rollouts/web/scale";

fn scale(k: &Kubectl) -> anyhow::Result<Value> {
    Ok(serde_json::from_str(&k.ok(&["get", "--raw", SCALE])?)?)
}

#[test]
fn kubectl_scale_and_the_scale_an_hpa_reads() -> anyhow::Result<()> {
    if !kubectl_installed() {
        eprintln!("kubectl not installed: skipping");
        return Ok(());
    }
    let dir = temp_dir("scale");
    let dev = Dev::start(&dir)?;
    let k = Kubectl::new(&dir, &dev);
    k.ok(&["apply", "-f", "manifests/crds"])?;
    k.ok(&["create", "namespace", "shop"])?;
    k.ok(&[
        "apply",
        "-n",
        "shop",
        "-f",
        "manifests/examples/analysis-template-success-rate.yaml",
        "-f",
        "manifests/examples/bluegreen.yaml",
    ])?;
    let healthy = |out: &str| out.trim() == "Healthy 3";
    k.poll(
        &[
            "get",
            "rollout",
            "web",
            "-n",
            "shop",
            "-o",
            "jsonpath={.status.phase} {.status.HPAReplicas}",
        ],
        healthy,
    )?;
    let active = k.ok(&[
        "get",
        "rollout",
        "web",
        "-n",
        "shop",
        "-o",
        "jsonpath={.status.blueGreen.activeSelector}",
    ])?;
    let selector = format!("app=web,rollgate.dev/pod-template-hash={}", active.trim());
    let s = scale(&k)?;
    assert_eq!(s["kind"], "Scale", "{s}");
    assert_eq!(s["apiVersion"], "autoscaling/v1", "{s}");
    assert_eq!(s["spec"]["replicas"], 3, "{s}");
    assert_eq!(s["status"]["replicas"], 3, "{s}");
    assert_eq!(s["status"]["selector"], selector.as_str(), "{s}");

    // `kubectl scale` writes spec.replicas through /scale; the controller scales the active
    // ReplicaSet.
    let out = k.ok(&["scale", "rollout/web", "-n", "shop", "--replicas=5"])?;
    assert!(out.contains("rollout.rollgate.dev/web scaled"), "{out}");
    let spec = k.ok(&[
        "get",
        "rollout",
        "web",
        "-n",
        "shop",
        "-o",
        "jsonpath={.spec.replicas}",
    ])?;
    assert_eq!(spec.trim(), "5");
    let rs = format!("web-{}", active.trim());
    k.poll(
        &[
            "get",
            "rs",
            &rs,
            "-n",
            "shop",
            "-o",
            "jsonpath={.spec.replicas} {.status.readyReplicas}",
        ],
        |out| out.trim() == "5 5",
    )?;
    k.poll(&["get", "--raw", SCALE], |out| {
        serde_json::from_str::<Value>(out)
            .is_ok_and(|s| s["spec"]["replicas"] == 5 && s["status"]["replicas"] == 5)
    })?;
    // The pods an HPA would measure: those the Scale's selector lists.
    let pods = k.ok(&["get", "pods", "-n", "shop", "-l", &selector, "-o", "name"])?;
    assert_eq!(pods.lines().count(), 5, "{pods}");

    // With a precondition kubectl reads the Scale and writes it back whole (PUT), as an HPA
    // does; a stale one is refused.
    let out = k.ok(&[
        "scale",
        "rollout/web",
        "-n",
        "shop",
        "--current-replicas=5",
        "--replicas=4",
    ])?;
    assert!(out.contains("rollout.rollgate.dev/web scaled"), "{out}");
    let (ok, out) = k.run(&[
        "scale",
        "rollout/web",
        "-n",
        "shop",
        "--current-replicas=5",
        "--replicas=2",
    ])?;
    assert!(!ok, "a stale precondition is refused: {out}");
    k.poll(&["get", "--raw", SCALE], |out| {
        serde_json::from_str::<Value>(out)
            .is_ok_and(|s| s["spec"]["replicas"] == 4 && s["status"]["replicas"] == 4)
    })?;
    drop(dev);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
