//! `rollgate dev` as a user runs it: the built binary serves the simulated cluster on
//! 127.0.0.1 with the controller inside, and the installed kubectl (the kubectl test is skipped
//! when it is missing) applies the CRDs and the examples, releases a new canary revision,
//! promotes it through the `kubectl rollgate` plugin and deletes it.
#![cfg(unix)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_rollgate");
const FIRST_LINE: &str = "rollgate dev: simulated cluster on http://127.0.0.1:";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rollgate-dev-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// A running `rollgate dev`; killed when dropped (a failed test leaves nothing behind).
struct Dev {
    child: Child,
    lines: mpsc::Receiver<String>,
    stderr: PathBuf,
    /// `http://127.0.0.1:PORT`.
    server: String,
    /// What it printed up to `Ctrl-C stops it.`, after the first line.
    intro: Vec<String>,
}

impl Dev {
    /// Starts `rollgate dev` with `args` and waits for its first line.
    fn start(dir: &Path, args: &[&str]) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let stderr = dir.join("dev.stderr");
        let mut child = Command::new(BIN)
            .arg("dev")
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr)?)
            .spawn()?;
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut dev = Self {
            child,
            lines,
            stderr,
            server: String::new(),
            intro: Vec::new(),
        };
        let first = dev.next_line()?;
        let port = first
            .strip_prefix(FIRST_LINE)
            .and_then(|rest| rest.strip_suffix(" (controller running)"))
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"));
        dev.server = format!("http://127.0.0.1:{port}");
        loop {
            let line = dev.next_line()?;
            let last = line == "Ctrl-C stops it.";
            dev.intro.push(line);
            if last {
                return Ok(dev);
            }
        }
    }

    fn next_line(&self) -> anyhow::Result<String> {
        self.lines
            .recv_timeout(Duration::from_secs(60))
            .map_err(|e| anyhow::anyhow!("rollgate dev printed no line ({e}): {}", self.log()))
    }

    /// The lines printed so far after the introduction.
    fn printed(&self) -> Vec<String> {
        self.lines.try_iter().collect()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Sends `signal` (`INT`, `TERM`) and waits for the exit.
    fn stop(&mut self, signal: &str, limit: Duration) -> anyhow::Result<ExitStatus> {
        let sent = Command::new("kill")
            .args(["-s", signal, &self.child.id().to_string()])
            .status()?;
        assert!(sent.success(), "kill -s {signal} failed");
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                anyhow::bail!("rollgate dev still running {limit:?} after SIG{signal}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The installed kubectl with `KUBECONFIG` set, its cache in the test's directory, the
/// repository as working directory, and the `kubectl-rollgate` plugin first on `PATH`.
struct Kubectl {
    kubeconfig: PathBuf,
    dir: PathBuf,
}

impl Kubectl {
    fn new(dir: &Path, kubeconfig: &Path) -> anyhow::Result<Self> {
        let bin = dir.join("bin");
        std::fs::create_dir_all(&bin)?;
        std::os::unix::fs::symlink(BIN, bin.join("kubectl-rollgate"))?;
        Ok(Self {
            kubeconfig: kubeconfig.to_path_buf(),
            dir: dir.to_path_buf(),
        })
    }

    fn run(&self, args: &[&str]) -> anyhow::Result<(bool, String)> {
        let path = std::env::join_paths(std::iter::once(self.dir.join("bin")).chain(
            std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
        ))?;
        let out = Command::new("kubectl")
            .args(args)
            .current_dir(repo())
            .env("KUBECONFIG", &self.kubeconfig)
            .env("KUBECACHEDIR", self.dir.join("cache"))
            .env("PATH", path)
            .stdin(Stdio::null())
            .output()?;
        Ok((
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        ))
    }

    /// Runs and expects success; returns the output.
    fn ok(&self, args: &[&str]) -> anyhow::Result<String> {
        let (ok, out) = self.run(args)?;
        assert!(ok, "kubectl {args:?} failed:\n{out}");
        Ok(out)
    }

    /// `{.status.phase} {.status.currentStepIndex}` of a rollout whose status describes its
    /// current generation (else `stale`).
    fn state(&self, ns: &str, name: &str) -> anyhow::Result<String> {
        let out = self.ok(&[
            "get",
            "rollout",
            name,
            "-n",
            ns,
            "-o",
            "jsonpath={.metadata.generation} {.status.observedGeneration} {.status.phase} {.status.currentStepIndex}",
        ])?;
        let fields: Vec<&str> = out.split_whitespace().collect();
        Ok(match fields.as_slice() {
            [generation, observed, rest @ ..] if generation == observed => rest.join(" "),
            _ => "stale".into(),
        })
    }

    /// Polls the rollout's state until it is `expected` (see [`Kubectl::state`]).
    fn wait_state(&self, ns: &str, name: &str, expected: &str) -> anyhow::Result<()> {
        self.wait_until(ns, name, expected, |s| s == expected)
    }

    /// Polls the rollout's state until `done` holds.
    fn wait_until(
        &self,
        ns: &str,
        name: &str,
        expected: &str,
        done: impl Fn(&str) -> bool,
    ) -> anyhow::Result<()> {
        let limit = Duration::from_secs(90);
        let deadline = Instant::now() + limit;
        loop {
            let state = self.state(ns, name)?;
            if done(&state) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let (_, describe) = self.run(&["get", "rollout", name, "-n", ns, "-o", "yaml"])?;
                anyhow::bail!(
                    "rollout {ns}/{name} not {expected:?} within {limit:?} (last {state:?}):\n{describe}"
                );
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

fn kubectl_installed() -> bool {
    Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// `NAME` and the upper-cased names of the CRD's printer columns shown without `-o wide`.
fn rollout_columns() -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(repo().join("manifests/crds/rollouts.rollgate.dev.yaml"))?;
    let crd: serde_json::Value = serde_saphyr::from_str(&text)?;
    let columns = crd["spec"]["versions"][0]["additionalPrinterColumns"]
        .as_array()
        .expect("printer columns");
    Ok(std::iter::once("NAME".to_string())
        .chain(
            columns
                .iter()
                .filter(|c| c["priority"].as_i64().unwrap_or(0) == 0)
                .map(|c| c["name"].as_str().expect("column name").to_uppercase()),
        )
        .collect())
}

/// Every example in `manifests/examples/`, each applied into a namespace named after its file.
fn examples() -> anyhow::Result<Vec<(String, PathBuf)>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join("manifests/examples"))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    files.retain(|p| p.extension().is_some_and(|e| e == "yaml"));
    files.sort();
    Ok(files
        .into_iter()
        .map(|p| {
            let stem = p.file_stem().expect("stem").to_string_lossy().into_owned();
            (stem, p)
        })
        .collect())
}

#[test]
fn kubectl_drives_the_dev_cluster() -> anyhow::Result<()> {
    if !kubectl_installed() {
        eprintln!("kubectl not installed: skipping");
        return Ok(());
    }
    let dir = temp_dir("kubectl");
    let kubeconfig = dir.join("kubeconfig");
    let kubeconfig_arg = kubeconfig.to_string_lossy().into_owned();
    let mut dev = Dev::start(
        &dir,
        &[
            "--addr",
            "127.0.0.1:0",
            "--kubeconfig",
            &kubeconfig_arg,
            "--ready-delay",
            "1s",
        ],
    )?;
    let k = Kubectl::new(&dir, &kubeconfig)?;

    // The CRDs, client-side (kubectl validates against /openapi/v3).
    let out = k.ok(&["apply", "-f", "manifests/crds"])?;
    assert_eq!(
        out.lines()
            .filter(|l| l.starts_with("customresourcedefinition.apiextensions.k8s.io/"))
            .count(),
        7,
        "{out}"
    );

    // Every example in its own namespace (they all name their Rollout `web`), after the
    // AnalysisTemplate that the blue/green example's pre-promotion analysis names.
    let template = "manifests/examples/analysis-template-success-rate.yaml";
    let mut with_rollout = Vec::new();
    for (ns, file) in examples()? {
        k.ok(&["create", "namespace", &ns])?;
        let file = file.to_string_lossy().into_owned();
        let out = k.ok(&["apply", "-n", &ns, "-f", template, "-f", &file])?;
        assert!(
            out.contains("analysistemplate.rollgate.dev/success-rate"),
            "{out}"
        );
        if out.contains("rollout.rollgate.dev/web created") {
            with_rollout.push(ns);
        }
    }
    assert_eq!(
        with_rollout,
        [
            "bluegreen",
            "canary-gateway-api",
            "canary",
            "rollout-canary-experiment",
            "workload-ref"
        ],
        "the examples with a Rollout"
    );
    // Each first revision becomes Healthy through the controller inside `rollgate dev`, the
    // blue/green one too: its pre-promotion analysis (against a Prometheus that does not
    // exist here) only gates later revisions.
    for ns in &with_rollout {
        k.wait_until(ns, "web", "Healthy", |s| s.starts_with("Healthy"))?;
    }

    // The pipeline example: staging's first release is recorded, pinned by the digest its
    // pods run, and `kubectl get promotionpipelines,releases` shows the columns.
    let deadline = Instant::now() + Duration::from_secs(90);
    let releases = loop {
        let out = k.ok(&["get", "releases", "-n", "pipeline"])?;
        if out.contains("staging:Verified") {
            break out;
        }
        assert!(
            Instant::now() < deadline,
            "no verified release in staging:\n{out}"
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    let header: Vec<&str> = releases
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        ["NAME", "PIPELINE", "NUMBER", "VERDICT", "STAGES", "AGE"],
        "{releases}"
    );
    assert!(releases.contains("production:Blocked"), "{releases}");
    let out = k.ok(&["get", "promotionpipelines,approvals", "-n", "pipeline"])?;
    assert!(
        out.lines().next().is_some_and(|h| h
            .split_whitespace()
            .eq(["NAME", "STAGES", "PAUSED", "NEWEST", "AGE"])),
        "{out}"
    );
    let out = k.ok(&[
        "get",
        "pp",
        "web",
        "-n",
        "pipeline",
        "-o",
        "jsonpath={.status.stages[1].name}",
    ])?;
    assert_eq!(out.trim(), "production");

    // Server-side apply of an example again.
    let out = k.ok(&[
        "apply",
        "--server-side",
        "-n",
        "canary",
        "-f",
        "manifests/examples/canary.yaml",
    ])?;
    assert!(
        out.contains("rollout.rollgate.dev/web serverside-applied"),
        "{out}"
    );

    // `kubectl get rollouts`: the CRD's printer columns.
    let out = k.ok(&["get", "rollouts", "-n", "canary"])?;
    let mut lines = out.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(header, rollout_columns()?, "{out}");
    let row: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(row[..5], ["web", "Healthy", "Canary", "10", "10"], "{out}");
    let out = k.ok(&["get", "rollouts", "-A"])?;
    for ns in &with_rollout {
        assert!(
            out.lines().any(|l| l
                .split_whitespace()
                .take(3)
                .eq([ns.as_str(), "web", "Healthy"])),
            "{ns}/web missing:\n{out}"
        );
    }
    let stable_before = k.ok(&[
        "get",
        "rollout",
        "web",
        "-n",
        "canary",
        "-o",
        "jsonpath={.status.stableRS}",
    ])?;

    // A new image: the canary walks its steps (setWeight 20, pause 1m, setWeight 50, pause {},
    // setWeight 80, pause 30s); `kubectl rollgate promote` skips the timed pause and ends the
    // indefinite one.
    k.ok(&[
        "patch",
        "rollout",
        "web",
        "-n",
        "canary",
        "--type=json",
        "-p",
        r#"[{"op":"replace","path":"/spec/template/spec/containers/0/image","value":"ghcr.io/rollgate/demo-app:2.0"}]"#,
    ])?;
    k.wait_state("canary", "web", "Paused 1")?;
    let out = k.ok(&["rollgate", "promote", "web", "-n", "canary"])?;
    assert!(out.contains("rollout 'canary/web' promoted"), "{out}");
    k.wait_state("canary", "web", "Paused 3")?;
    let out = k.ok(&["rollgate", "promote", "web", "-n", "canary"])?;
    assert!(out.contains("rollout 'canary/web' promoted"), "{out}");
    k.wait_state("canary", "web", "Paused 5")?;
    let weights = k.ok(&[
        "get",
        "rollout",
        "web",
        "-n",
        "canary",
        "-o",
        "jsonpath={.status.canary.weights.setWeight}/{.status.canary.weights.actualWeight}",
    ])?;
    assert_eq!(weights, "80/80");
    let out = k.ok(&["rollgate", "promote", "web", "-n", "canary", "--full"])?;
    assert!(out.contains("fully promoted"), "{out}");
    k.wait_state("canary", "web", "Healthy 6")?;
    let stable_after = k.ok(&[
        "get",
        "rollout",
        "web",
        "-n",
        "canary",
        "-o",
        "jsonpath={.status.stableRS} {.status.currentPodHash}",
    ])?;
    let hashes: Vec<&str> = stable_after.split_whitespace().collect();
    assert!(
        hashes.len() == 2 && hashes[0] == hashes[1] && hashes[0] != stable_before,
        "stable before {stable_before:?}, after (stable current) {stable_after:?}"
    );

    // Deleting the rollout: its ReplicaSets and their pods are garbage-collected.
    let out = k.ok(&["get", "rs", "-n", "canary", "-o", "name"])?;
    assert!(out.lines().count() >= 1, "{out}");
    let out = k.ok(&["delete", "rollout", "web", "-n", "canary"])?;
    assert!(
        out.contains("rollout.rollgate.dev \"web\" deleted"),
        "{out}"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = k.ok(&["get", "rs,pods", "-n", "canary", "-o", "name"])?;
        if left.trim().is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "not collected:\n{left}");
        std::thread::sleep(Duration::from_millis(100));
    }

    // Ctrl-C: the controller stops, the process exits 0, the kubeconfig stays.
    let status = dev.stop("INT", Duration::from_secs(20))?;
    let printed = dev.printed().join("\n");
    assert!(status.success(), "{status}\n{printed}\n{}", dev.log());
    assert!(
        printed.contains("rollgate dev: SIGINT: stopping the controller"),
        "{printed}"
    );
    assert!(printed.contains("kubeconfig"), "{printed}");
    assert!(kubeconfig.exists());
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

#[test]
fn dev_serves_writes_its_kubeconfig_and_stops_on_sigterm() -> anyhow::Result<()> {
    let dir = temp_dir("sigterm");
    // The default kubeconfig path is relative to the working directory.
    let mut dev = Dev::start(&dir, &["--ready-delay", "1s"])?;
    let printed = dev.intro.clone();
    let kubeconfig = dir.join("rollgate-dev.kubeconfig");
    let export = format!("  export KUBECONFIG={}", kubeconfig.display());
    assert!(printed.contains(&export), "{printed:?}");
    assert!(
        printed.iter().any(|l| l.contains("kubectl get rollouts")),
        "{printed:?}"
    );
    assert_eq!(printed.last().map(String::as_str), Some("Ctrl-C stops it."));

    let config = kube::config::Kubeconfig::read_from(&kubeconfig)?;
    assert_eq!(config.current_context.as_deref(), Some("rollgate-dev"));
    let context = config.contexts[0].context.as_ref().expect("context");
    assert_eq!(
        (context.cluster.as_str(), context.user.as_deref()),
        ("rollgate-dev", Some("rollgate-dev"))
    );
    let cluster = config.clusters[0].cluster.as_ref().expect("cluster");
    assert_eq!(cluster.server.as_deref(), Some(dev.server.as_str()));

    // The announced server answers.
    let addr = dev.server.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr)?;
    stream.write_all(b"GET /version HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("gitVersion"), "{response}");

    let status = dev.stop("TERM", Duration::from_secs(20))?;
    let printed = dev.printed().join("\n");
    assert!(status.success(), "{status}\n{printed}\n{}", dev.log());
    assert!(
        printed.contains(&format!(
            "stopped (the cluster's objects are gone; the kubeconfig {} is kept)",
            kubeconfig.display()
        )),
        "{printed}"
    );
    assert!(kubeconfig.exists());
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

#[test]
fn dev_refuses_an_address_other_machines_can_reach() -> anyhow::Result<()> {
    let out = Command::new(BIN)
        .args(["dev", "--addr", "0.0.0.0:0", "--kubeconfig"])
        .arg(std::env::temp_dir().join("rollgate-dev-refused.kubeconfig"))
        .output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("--addr 0.0.0.0:0: expected a loopback address"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
    Ok(())
}
