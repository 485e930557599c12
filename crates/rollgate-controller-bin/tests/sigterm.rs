//! The `rollgate-controller` binary as Kubernetes stops it: SIGTERM. Elected processes run
//! against the simulated cluster served on 127.0.0.1; a SIGTERM makes the leader finish,
//! release its Lease and exit 0, and a standby replica takes over at once, long before the
//! released claim would have run out.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use rollgate_local::Stack;
use rollgate_sim::SimConfig;
use tokio::time::Instant;

const BIN: &str = env!("CARGO_BIN_EXE_rollgate-controller");

/// Seconds a claim lasts: far longer than the tests wait, so only a release frees the Lease.
const LEASE_DURATION: &str = "60";

/// A simulated cluster on 127.0.0.1 and a kubeconfig for it, removed when dropped.
struct Cluster {
    stack: Stack,
    server: tokio::task::JoinHandle<()>,
    dir: PathBuf,
    kubeconfig: PathBuf,
}

impl Cluster {
    async fn start(name: &str) -> anyhow::Result<Self> {
        let stack = Stack::new(SimConfig {
            default_ready_delay: Duration::from_millis(200),
            ..Default::default()
        })
        .await?;
        let (addr, server) = stack.sim.serve("127.0.0.1:0".parse()?).await?;
        let dir = std::env::temp_dir().join(format!(
            "rollgate-controller-bin-{name}-{}-{}",
            std::process::id(),
            addr.port()
        ));
        std::fs::create_dir_all(&dir)?;
        let kubeconfig = dir.join("kubeconfig");
        std::fs::write(
            &kubeconfig,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: sim\n  cluster: {{server: http://{addr}}}\n\
                 users:\n- name: nobody\n  user: {{}}\ncontexts:\n- name: sim\n  context: {{cluster: sim, user: nobody}}\n\
                 current-context: sim\n"
            ),
        )?;
        Ok(Self {
            stack,
            server,
            dir,
            kubeconfig,
        })
    }

    /// The Lease, if it exists.
    async fn lease(&self) -> anyhow::Result<Option<Lease>> {
        Ok(
            Api::<Lease>::namespaced(self.stack.client.clone(), "default")
                .get_opt("rollgate-controller")
                .await?,
        )
    }

    /// Who holds the Lease (`None`: nobody, or no Lease).
    async fn holder(&self) -> anyhow::Result<Option<String>> {
        Ok(self
            .lease()
            .await?
            .and_then(|l| l.spec?.holder_identity)
            .filter(|h| !h.is_empty()))
    }

    /// Waits up to `limit` until `identity` holds the Lease.
    async fn until_held_by(&self, identity: &str, limit: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + limit;
        while self.holder().await?.as_deref() != Some(identity) {
            anyhow::ensure!(
                Instant::now() < deadline,
                "{identity} did not take the Lease within {limit:?} (holder: {:?})",
                self.holder().await?
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    /// Starts an elected controller process named `identity`, logging to `<identity>.log`.
    fn controller(&self, identity: &str) -> anyhow::Result<Controller> {
        self.controller_with(identity, &[])
    }

    /// [`Cluster::controller`] with more flags.
    fn controller_with(&self, identity: &str, flags: &[&str]) -> anyhow::Result<Controller> {
        let log = self.dir.join(format!("{identity}.log"));
        let child = Command::new(BIN)
            .args([
                "--metrics-addr",
                "127.0.0.1:0",
                "--lease-namespace",
                "default",
                "--lease-duration",
                LEASE_DURATION,
                "--lease-grace",
                "5",
            ])
            .args(flags)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("CONTROLLER_POD_NAME", identity)
            .env("RUST_LOG", "info")
            // Logs go to stdout; errors (and a panic) to stderr.
            .stdout(std::fs::File::create(&log)?)
            .stderr(std::fs::File::create(
                self.dir.join(format!("{identity}.err")),
            )?)
            .spawn()?;
        Ok(Controller {
            child,
            log,
            exited: None,
        })
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.server.abort();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A controller process, killed when dropped.
struct Controller {
    child: Child,
    log: PathBuf,
    exited: Option<ExitStatus>,
}

impl Controller {
    fn log(&self) -> String {
        read(&self.log) + &read(&self.log.with_extension("err"))
    }

    /// Waits up to `limit` until the log contains `line`.
    async fn until_logged(&self, line: &str, limit: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + limit;
        while !self.log().contains(line) {
            anyhow::ensure!(
                Instant::now() < deadline,
                "no {line:?} within {limit:?}:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    /// Sends SIGTERM (with the `kill` command) and waits up to `limit` for the exit.
    async fn terminate(&mut self, limit: Duration) -> anyhow::Result<ExitStatus> {
        let sent = Command::new("kill")
            .args(["-s", "TERM", &self.child.id().to_string()])
            .status()?;
        anyhow::ensure!(sent.success(), "kill -s TERM failed");
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait()? {
                self.exited = Some(status);
                return Ok(status);
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "still running {limit:?} after SIGTERM:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        if self.exited.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_leader_with_status_0_and_releases_the_lease() -> anyhow::Result<()> {
    let cluster = Cluster::start("alone").await?;
    let mut leader = cluster.controller("ctl-a")?;
    cluster
        .until_held_by("ctl-a", Duration::from_secs(20))
        .await?;
    // It reconciles: the controller runs, not only the Lease manager.
    leader
        .until_logged("leading: starting the controller", Duration::from_secs(10))
        .await?;

    let status = leader.terminate(Duration::from_secs(10)).await?;
    assert!(
        status.success(),
        "exit status 0 after SIGTERM, got {status:?}:\n{}",
        leader.log()
    );
    let lease = cluster
        .lease()
        .await?
        .ok_or_else(|| anyhow::anyhow!("the Lease is gone"))?;
    let spec = lease.spec.unwrap_or_default();
    assert_eq!(
        spec.holder_identity, None,
        "released: no holder left, long before the {LEASE_DURATION} s claim ends"
    );
    assert_eq!(spec.renew_time, None, "released: no renewal left");
    let log = leader.log();
    assert!(log.contains("SIGTERM"), "{log}");
    assert!(log.contains("leader Lease released"), "{log}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_takes_over_at_once_when_the_leader_gets_sigterm() -> anyhow::Result<()> {
    let cluster = Cluster::start("pair").await?;
    let mut a = cluster.controller("ctl-a")?;
    cluster
        .until_held_by("ctl-a", Duration::from_secs(20))
        .await?;
    let b = cluster.controller("ctl-b")?;
    // The standby is up and has seen ctl-a's claim.
    b.until_logged("leader election on", Duration::from_secs(10))
        .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(cluster.holder().await?.as_deref(), Some("ctl-a"));

    let status = a.terminate(Duration::from_secs(10)).await?;
    assert!(status.success(), "{status:?}:\n{}", a.log());
    // ctl-a's claim had most of a minute left: only its release lets ctl-b in this soon.
    cluster
        .until_held_by("ctl-b", Duration::from_secs(5))
        .await
        .map_err(|e| anyhow::anyhow!("{e}\nctl-b:\n{}", b.log()))?;
    b.until_logged("leading: starting the controller", Duration::from_secs(5))
        .await?;
    drop(b);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_an_unelected_controller_with_status_0() -> anyhow::Result<()> {
    let cluster = Cluster::start("unelected").await?;
    let mut controller = cluster.controller_with("ctl-a", &["--leader-elect=false"])?;
    controller
        .until_logged("rollgate controller starting", Duration::from_secs(20))
        .await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let status = controller.terminate(Duration::from_secs(10)).await?;
    assert!(status.success(), "{status:?}:\n{}", controller.log());
    assert!(
        controller.log().contains("rollgate controller stopped"),
        "{}",
        controller.log()
    );
    assert!(
        cluster.lease().await?.is_none(),
        "no Lease without election"
    );
    Ok(())
}
