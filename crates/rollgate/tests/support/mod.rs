//! A `rollgate dev` cluster driven by the installed kubectl, for tests that act as a user
//! (the same approach as `tests/dev.rs`).
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_rollgate");
/// The first line `rollgate dev` prints.
const FIRST_LINE: &str = "rollgate dev: simulated cluster on http://127.0.0.1:";

/// The repository's root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A fresh directory for one test.
pub fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rollgate-dev-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// True when kubectl can be run (the tests using it are skipped otherwise).
pub fn kubectl_installed() -> bool {
    Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A running `rollgate dev` (with its controller) writing `dir/kubeconfig`; killed when
/// dropped.
pub struct Dev {
    child: Child,
    stderr: PathBuf,
    /// The kubeconfig it wrote.
    pub kubeconfig: PathBuf,
}

impl Dev {
    /// Starts `rollgate dev` on a free port and waits until it serves.
    pub fn start(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let stderr = dir.join("dev.stderr");
        let kubeconfig = dir.join("kubeconfig");
        let mut child = Command::new(BIN)
            .arg("dev")
            .args([
                "--addr",
                "127.0.0.1:0",
                "--ready-delay",
                "1s",
                "--kubeconfig",
            ])
            .arg(&kubeconfig)
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
        let dev = Self {
            child,
            stderr,
            kubeconfig,
        };
        let next = || {
            lines
                .recv_timeout(Duration::from_secs(60))
                .map_err(|e| anyhow::anyhow!("rollgate dev printed no line ({e}): {}", dev.log()))
        };
        let first = next()?;
        anyhow::ensure!(
            first.starts_with(FIRST_LINE),
            "unexpected first line {first:?}"
        );
        while next()? != "Ctrl-C stops it." {}
        // Keep draining stdout so that the server never blocks on a full pipe.
        std::thread::spawn(move || while lines.recv().is_ok() {});
        Ok(dev)
    }

    /// What it logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
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

/// The installed kubectl pointed at a [`Dev`] cluster, run from the repository.
pub struct Kubectl {
    kubeconfig: PathBuf,
    cache: PathBuf,
}

impl Kubectl {
    /// kubectl for `dev`, its cache in `dir`.
    pub fn new(dir: &Path, dev: &Dev) -> Self {
        Self {
            kubeconfig: dev.kubeconfig.clone(),
            cache: dir.join("cache"),
        }
    }

    /// Runs kubectl; returns whether it succeeded and its stdout and stderr.
    pub fn run(&self, args: &[&str]) -> anyhow::Result<(bool, String)> {
        let out = Command::new("kubectl")
            .args(args)
            .current_dir(repo())
            .env("KUBECONFIG", &self.kubeconfig)
            .env("KUBECACHEDIR", &self.cache)
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

    /// Runs kubectl and expects success; returns its output.
    pub fn ok(&self, args: &[&str]) -> anyhow::Result<String> {
        let (ok, out) = self.run(args)?;
        anyhow::ensure!(ok, "kubectl {args:?} failed:\n{out}");
        Ok(out)
    }

    /// Polls `kubectl args` until `done` holds for its output (at most 90 s, which only a
    /// broken controller reaches); returns that output.
    pub fn poll(&self, args: &[&str], done: impl Fn(&str) -> bool) -> anyhow::Result<String> {
        let limit = Duration::from_secs(90);
        let deadline = Instant::now() + limit;
        loop {
            let (ok, out) = self.run(args)?;
            if ok && done(&out) {
                return Ok(out);
            }
            if Instant::now() >= deadline {
                anyhow::bail!("kubectl {args:?} not as expected within {limit:?}; last:\n{out}");
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}
