//! A real `kubectl` against the served cluster (skipped when kubectl is not installed).

use std::process::Command;
use std::time::Duration;

use rollgate_sim::{SimCluster, SimConfig};

const MANIFESTS: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gizmos.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: gizmos, singular: gizmo, kind: Gizmo, shortNames: [gz]}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer}
    additionalPrinterColumns:
    - {name: Size, type: integer, jsonPath: .spec.size}
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports:
  - port: 80
    targetPort: 8080
---
apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: web:1
"#;

struct Kubectl {
    server: String,
    dir: std::path::PathBuf,
}

impl Kubectl {
    fn run(&self, args: &[String], stdin: Option<&str>) -> (bool, String) {
        let mut cmd = Command::new("kubectl");
        cmd.arg(format!("--server={}", self.server))
            .arg(format!("--cache-dir={}", self.dir.join("cache").display()))
            .args(args)
            .env("KUBECONFIG", self.dir.join("none"))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let Ok(mut child) = cmd.spawn() else {
            return (false, "kubectl did not start".into());
        };
        if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
            use std::io::Write;
            let _ = pipe.write_all(text.as_bytes());
        }
        match child.wait_with_output() {
            Ok(out) => (
                out.status.success(),
                format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ),
            ),
            Err(e) => (false, e.to_string()),
        }
    }
}

fn kubectl_installed() -> bool {
    Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_applies_gets_creates_and_deletes() -> anyhow::Result<()> {
    if !kubectl_installed() {
        eprintln!("kubectl not installed: skipping");
        return Ok(());
    }
    let sim = SimCluster::new(SimConfig {
        default_ready_delay: Duration::from_millis(200),
        ..Default::default()
    });
    let (addr, server) = sim.serve("127.0.0.1:0".parse()?).await?;
    let dir = std::env::temp_dir().join(format!("rollgate-sim-kubectl-{}", addr.port()));
    let k = Kubectl {
        server: format!("http://{addr}"),
        dir,
    };
    let run = |args: &[&str], stdin: Option<&str>| {
        let k = Kubectl {
            server: k.server.clone(),
            dir: k.dir.clone(),
        };
        let args: Vec<String> = args.iter().map(|a| (*a).to_string()).collect();
        let stdin = stdin.map(String::from);
        tokio::task::spawn_blocking(move || k.run(&args, stdin.as_deref()))
    };

    let (ok, out) = run(&["apply", "-f", "-"], Some(MANIFESTS)).await?;
    assert!(ok, "{out}");
    assert!(out.contains("service/web created"), "{out}");
    assert!(out.contains("replicaset.apps/web created"), "{out}");

    // Client-side apply of a change: a strategic merge patch for the Service.
    let changed = MANIFESTS.replace("targetPort: 8080", "targetPort: 9090");
    let (ok, out) = run(&["apply", "-f", "-"], Some(&changed)).await?;
    assert!(ok && out.contains("service/web configured"), "{out}");
    let svc = sim
        .get_object("v1", "services", Some("default"), "web")
        .expect("service");
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], 9090);

    // A custom resource, served, printed with its columns, found by short name.
    let (ok, out) = run(
        &["apply", "-f", "-"],
        Some("apiVersion: example.com/v1\nkind: Gizmo\nmetadata: {name: g}\nspec: {size: 3}\n"),
    )
    .await?;
    assert!(ok, "{out}");
    let (ok, out) = run(&["get", "gz"], None).await?;
    assert!(ok, "{out}");
    let header: Vec<&str> = out
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(header, ["NAME", "SIZE"]);
    assert!(
        out.lines()
            .nth(1)
            .is_some_and(|l| l.split_whitespace().eq(["g", "3"])),
        "{out}"
    );

    // Pods come up; the table shows them ready.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (ok, out) = run(&["get", "pods", "-l", "app=web"], None).await?;
    assert!(ok, "{out}");
    assert_eq!(
        out.lines()
            .filter(|l| l.contains("1/1") && l.contains("Running"))
            .count(),
        2,
        "{out}"
    );

    // `kubectl create` sends protobuf.
    let (ok, out) = run(&["create", "namespace", "team"], None).await?;
    assert!(ok && out.contains("namespace/team created"), "{out}");
    let (ok, out) = run(
        &[
            "create",
            "configmap",
            "cfg",
            "-n",
            "team",
            "--from-literal=a=b",
        ],
        None,
    )
    .await?;
    assert!(ok, "{out}");
    assert_eq!(
        sim.get_object("v1", "configmaps", Some("team"), "cfg")
            .expect("cm")["data"]["a"],
        "b"
    );

    // Server-side apply and scale.
    let (ok, out) = run(&["apply", "--server-side", "-f", "-"], Some(&changed)).await?;
    assert!(ok && out.contains("serverside-applied"), "{out}");
    let (ok, out) = run(&["scale", "rs", "web", "--replicas=3"], None).await?;
    assert!(ok, "{out}");
    assert_eq!(sim.list_objects("v1", "pods", Some("default")).len(), 3);

    // Delete waits for the object to go; the pods go with it.
    let (ok, out) = run(&["delete", "rs", "web"], None).await?;
    assert!(ok && out.contains("deleted"), "{out}");
    assert!(sim.list_objects("v1", "pods", Some("default")).is_empty());
    let (ok, out) = run(&["delete", "namespace", "team"], None).await?;
    assert!(ok, "{out}");
    assert!(sim.get_object("v1", "namespaces", None, "team").is_none());
    server.abort();
    let _ = std::fs::remove_dir_all(&k.dir);
    Ok(())
}

/// A Rollout for the repository's CRD, with `spec` lines added.
fn rollout(extra: &str) -> String {
    format!(
        "apiVersion: rollgate.dev/v1alpha1
kind: Rollout
metadata:
  name: web
spec:
  replicas: 3
{extra}  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      containers:
      - name: web
        image: web:1
  strategy:
    canary:
      steps:
      - setWeight: 50
"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_apply_is_refused_what_a_real_server_refuses() -> anyhow::Result<()> {
    assert!(
        kubectl_installed(),
        "kubectl must be installed for this test"
    );
    let sim = SimCluster::new(SimConfig::default());
    let (addr, server) = sim.serve("127.0.0.1:0".parse()?).await?;
    let k = Kubectl {
        server: format!("http://{addr}"),
        dir: std::env::temp_dir().join(format!("rollgate-sim-kubectl-refused-{}", addr.port())),
    };
    let run = |args: &[&str], stdin: Option<String>| {
        let k = Kubectl {
            server: k.server.clone(),
            dir: k.dir.clone(),
        };
        let args: Vec<String> = args.iter().map(|a| (*a).to_string()).collect();
        tokio::task::spawn_blocking(move || k.run(&args, stdin.as_deref()))
    };
    let crd = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../manifests/crds/rollouts.rollgate.dev.yaml");
    let (ok, out) = run(&["apply", "-f", &crd.to_string_lossy()], None).await?;
    assert!(ok, "{out}");
    let apply = ["apply", "-f", "-"];

    // An unknown field: kubectl asks for strict field validation.
    let (ok, out) = run(&apply, Some(rollout("  replicaz: 3\n"))).await?;
    assert!(!ok, "{out}");
    assert!(
        out.contains("BadRequest") && out.contains("unknown field \"spec.replicaz\""),
        "{out}"
    );
    // ... unless told to only warn.
    let (ok, out) = run(
        &["apply", "--validate=warn", "-f", "-"],
        Some(rollout("  replicaz: 3\n")),
    )
    .await?;
    assert!(ok, "{out}");
    assert!(
        out.contains("Warning: unknown field \"spec.replicaz\""),
        "{out}"
    );
    let (ok, out) = run(&["delete", "rollout", "web"], None).await?;
    assert!(ok, "{out}");

    // Values the schema refuses, named by field.
    let negative = rollout("").replace("replicas: 3", "replicas: -1");
    let (ok, out) = run(&apply, Some(negative)).await?;
    assert!(!ok, "{out}");
    assert!(
        out.contains("is invalid")
            && out.contains("spec.replicas: Invalid value: -1")
            && out.contains("greater than or equal to 0"),
        "{out}"
    );
    let text = rollout("").replace("replicas: 3", "replicas: three");
    let (ok, out) = run(&apply, Some(text)).await?;
    assert!(!ok, "{out}");
    assert!(
        out.contains("spec.replicas") && out.contains("must be of type integer"),
        "{out}"
    );
    assert!(
        sim.get_object("rollgate.dev/v1alpha1", "rollouts", Some("default"), "web")
            .is_none()
    );

    // A valid one goes in; an invalid change to it is refused.
    let (ok, out) = run(&apply, Some(rollout(""))).await?;
    assert!(
        ok && out.contains("rollout.rollgate.dev/web created"),
        "{out}"
    );
    let huge = rollout("").replace("replicas: 3", "replicas: 2147483648");
    let (ok, out) = run(&apply, Some(huge)).await?;
    assert!(!ok, "{out}");
    assert!(
        out.contains("spec.replicas: Invalid value: 2147483648"),
        "{out}"
    );
    server.abort();
    let _ = std::fs::remove_dir_all(&k.dir);
    Ok(())
}
