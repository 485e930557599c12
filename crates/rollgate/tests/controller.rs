//! `rollgate controller` as deployed: two processes with leader election against the
//! simulated cluster served on 127.0.0.1. One leads and releases; killing it (SIGKILL, no
//! clean-up) hands the Lease and the work to the other.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use rollgate_api::RolloutPhase;
use rollgate_local::Stack;
use rollgate_sim::SimConfig;

const BIN: &str = env!("CARGO_BIN_EXE_rollgate");

fn kubeconfig(dir: &Path, server: &str) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: sim\n  cluster: {{server: {server}}}\n\
             users:\n- name: nobody\n  user: {{}}\ncontexts:\n- name: sim\n  context: {{cluster: sim, user: nobody}}\n\
             current-context: sim\n"
        ),
    )?;
    Ok(path)
}

/// A controller process, killed when dropped.
struct Controller(Child);

impl Drop for Controller {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn controller(identity: &str, config: &Path, log: &Path) -> anyhow::Result<Controller> {
    Ok(Controller(
        Command::new(BIN)
            .args([
                "controller",
                "--metrics-addr",
                "127.0.0.1:0",
                "--lease-namespace",
                "default",
                "--lease-duration",
                "2",
                "--lease-grace",
                "1",
            ])
            .env("KUBECONFIG", config)
            .env("CONTROLLER_POD_NAME", identity)
            .env("RUST_LOG", "info")
            // Logs go to stdout.
            .stdout(std::fs::File::create(log)?)
            .stderr(Stdio::null())
            .spawn()?,
    ))
}

async fn holder(stack: &Stack) -> anyhow::Result<Option<String>> {
    Ok(Api::<Lease>::namespaced(stack.client.clone(), "default")
        .get_opt("rollgate-controller")
        .await?
        .and_then(|l| l.spec?.holder_identity))
}

fn rollout(image: &str) -> String {
    format!(
        "apiVersion: rollgate.dev/v1alpha1\nkind: Rollout\nmetadata: {{name: web}}\n\
         spec:\n  replicas: 2\n  selector: {{matchLabels: {{app: web}}}}\n\
         \x20 template:\n    metadata: {{labels: {{app: web}}}}\n    spec: {{containers: [{{name: web, image: \"{image}\"}}]}}\n\
         \x20 strategy: {{canary: {{steps: [{{setWeight: 50}}, {{pause: {{duration: 1}}}}]}}}}\n"
    )
}

async fn healthy_at(stack: &Stack, revision: i64) -> anyhow::Result<()> {
    stack
        .wait_for("default", "web", Duration::from_secs(40), "Healthy", |r| {
            let s = r.status.clone().unwrap_or_default();
            s.phase == Some(RolloutPhase::Healthy)
                && s.observed_generation == r.metadata.generation
                && s.current_revision == Some(revision)
        })
        .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_elected_controllers_one_leads_and_a_killed_leader_is_replaced() -> anyhow::Result<()> {
    let stack = Stack::new(SimConfig {
        default_ready_delay: Duration::from_millis(200),
        ..Default::default()
    })
    .await?;
    let (addr, server) = stack.sim.serve("127.0.0.1:0".parse()?).await?;
    let dir = std::env::temp_dir().join(format!(
        "rollgate-controller-{}-{}",
        std::process::id(),
        addr.port()
    ));
    let config = kubeconfig(&dir, &format!("http://{addr}"))?;
    let mut a = Some(controller("ctl-a", &config, &dir.join("a.log"))?);
    let mut b = Some(controller("ctl-b", &config, &dir.join("b.log"))?);

    stack.apply_yaml(&rollout("web:1"), "default").await?;
    healthy_at(&stack, 1).await?;
    let leader = holder(&stack)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no Lease holder"))?;
    assert!(leader == "ctl-a" || leader == "ctl-b", "{leader}");
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap_or_default();
    let (leader_log, other_log) = if leader == "ctl-a" {
        ("a.log", "b.log")
    } else {
        ("b.log", "a.log")
    };
    assert!(
        read(leader_log).contains("leading: starting the controller"),
        "{}",
        read(leader_log)
    );
    assert!(
        !read(other_log).contains("leading"),
        "one leader: {}",
        read(other_log)
    );

    // Kill the leader: no clean shutdown, no release.
    drop(if leader == "ctl-a" {
        a.take()
    } else {
        b.take()
    });
    let other = if leader == "ctl-a" { "ctl-b" } else { "ctl-a" };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while holder(&stack).await?.as_deref() != Some(other) {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "{other} never took the Lease"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The survivor does the next release.
    stack.apply_yaml(&rollout("web:2"), "default").await?;
    healthy_at(&stack, 2).await?;
    assert!(read(other_log).contains("leading: starting the controller"));
    drop((a, b));
    server.abort();
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
