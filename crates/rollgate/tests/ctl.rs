//! The built binary's manual-control commands against the simulated cluster served over HTTP
//! on 127.0.0.1, reached through a kubeconfig file.

use std::path::{Path, PathBuf};
use std::process::Output;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use rollgate_api::{Rollout, RolloutStatus};
use rollgate_local::kubeconfig::Kubeconfig;
use rollgate_sim::{SimCluster, SimConfig};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_rollgate");
/// Namespace of the kubeconfig's current context.
const NS: &str = "shop";

fn template(image: &str) -> Value {
    json!({
        "metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [{"name": "web", "image": image}]}
    })
}

/// ReplicaSet `web-<hash>` as the controller creates it: the Rollout's template as sent kept
/// in `rollgate.dev/template` (the server fills pod defaults into the ReplicaSet's own).
fn replica_set(hash: &str, revision: i64, image: &str) -> anyhow::Result<ReplicaSet> {
    let mut t = template(image);
    t["metadata"]["labels"]["rollgate.dev/pod-template-hash"] = json!(hash);
    let sent = serde_json::to_string(&serde_json::from_value::<PodTemplateSpec>(template(image))?)?;
    Ok(serde_json::from_value(json!({
        "metadata": {
            "name": format!("web-{hash}"),
            "labels": {"rollgate.dev/rollout": "web", "rollgate.dev/pod-template-hash": hash},
            "annotations": {"rollgate.dev/revision": revision.to_string(),
                            "rollgate.dev/template": sent}
        },
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": "web", "rollgate.dev/pod-template-hash": hash}},
            "template": t
        }
    }))?)
}

/// A kubeconfig with two contexts on the served cluster: `sim` (current, namespace `shop`)
/// and `other` (no namespace: `default`).
fn write_kubeconfig(dir: &Path, server: &str) -> anyhow::Result<PathBuf> {
    let path = dir.join("kubeconfig");
    Kubeconfig::new("sim", server)
        .namespace(NS)
        .with_context("other", None)
        .write(&path)?;
    Ok(path)
}

struct Cli {
    program: PathBuf,
    kubeconfig: PathBuf,
}

impl Cli {
    /// Runs the binary with `args` and `--kubeconfig`, off the runtime that serves the cluster.
    async fn run(&self, args: &[&str]) -> anyhow::Result<Output> {
        let mut cmd = std::process::Command::new(&self.program);
        cmd.args(args)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .env_remove("KUBECONFIG");
        Ok(tokio::task::spawn_blocking(move || cmd.output()).await??)
    }

    /// Runs and expects success; returns stdout.
    async fn ok(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = self.run(args).await?;
        assert!(
            out.status.success(),
            "{args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8(out.stdout)?.trim_end().to_string())
    }

    /// Runs and expects failure; returns stderr.
    async fn fails(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = self.run(args).await?;
        assert!(!out.status.success(), "{args:?} succeeded: {out:?}");
        assert!(out.stdout.is_empty(), "{out:?}");
        Ok(String::from_utf8(out.stderr)?)
    }
}

/// The simulated cluster with rollgate's CRDs, served on 127.0.0.1, and the binary pointed at
/// it through a kubeconfig in a fresh directory (`tag` names it).
async fn served(tag: &str) -> anyhow::Result<(Client, Cli, tokio::task::JoinHandle<()>, PathBuf)> {
    let sim = SimCluster::new(SimConfig {
        namespaces: ["default", "kube-system", "kube-public", NS]
            .map(String::from)
            .to_vec(),
        ..Default::default()
    });
    for crd in rollgate_api::crds::all() {
        sim.register_crd(&crd);
    }
    let client = sim.client();
    let (addr, server) = sim.serve("127.0.0.1:0".parse()?).await?;
    let dir = std::env::temp_dir().join(format!(
        "rollgate-{tag}-test-{}-{}",
        std::process::id(),
        addr.port()
    ));
    let cli = Cli {
        program: BIN.into(),
        kubeconfig: write_kubeconfig(&dir, &format!("http://{addr}"))?,
    };
    Ok((client, cli, server, dir))
}

async fn rollout(client: &Client) -> anyhow::Result<Rollout> {
    Ok(Api::<Rollout>::namespaced(client.clone(), NS)
        .get("web")
        .await?)
}

async fn status(client: &Client) -> anyhow::Result<RolloutStatus> {
    Ok(rollout(client).await?.status.unwrap_or_default())
}

async fn image(client: &Client) -> anyhow::Result<Option<String>> {
    Ok(rollout(client)
        .await?
        .spec
        .template
        .and_then(|t| t.spec)
        .and_then(|s| s.containers.into_iter().next())
        .and_then(|c| c.image))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_control_commands_through_a_kubeconfig() -> anyhow::Result<()> {
    let (client, cli, server, dir) = served("ctl").await?;

    // Rollout shop/web: revision 2 (web:2) paused for promotion; revision 1 (web:1) is stable.
    let rollouts = Api::<Rollout>::namespaced(client.clone(), NS);
    let web: Rollout = serde_json::from_value(json!({
        "apiVersion": "rollgate.dev/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": template("web:2"),
            "strategy": {"blueGreen": {"activeService": "web-active"}}
        }
    }))?;
    rollouts.create(&PostParams::default(), &web).await?;
    rollouts
        .patch_status(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {
                "currentPodHash": "bbb", "stableRS": "aaa", "currentRevision": 2,
                "phase": "Paused", "controllerPause": true,
                "pauseConditions": [{"reason": "BlueGreenPause", "startTime": "2025-03-01T11:00:00Z"}]
            }})),
        )
        .await?;
    let sets = Api::<ReplicaSet>::namespaced(client.clone(), NS);
    for rs in [
        replica_set("aaa", 1, "web:1")?,
        replica_set("bbb", 2, "web:2")?,
    ] {
        sets.create(&PostParams::default(), &rs).await?;
    }

    // promote: the namespace comes from the kubeconfig context.
    let out = cli.ok(&["promote", "web"]).await?;
    assert_eq!(out, "rollout 'shop/web' promoted (BlueGreenPause ended)");
    let s = status(&client).await?;
    assert!(s.pause_conditions.is_empty(), "{s:?}");
    assert_eq!(s.controller_pause, Some(true));

    // promote again: refused, and the message names the rollout.
    let err = cli.fails(&["promote", "web", "-n", NS]).await?;
    assert!(
        err.contains("rollout shop/web is not paused: nothing to promote"),
        "{err}"
    );

    // abort, retry.
    let out = cli.ok(&["abort", "web"]).await?;
    assert!(out.starts_with("rollout 'shop/web' aborted"), "{out}");
    assert_eq!(status(&client).await?.abort, Some(true));
    let out = cli.ok(&["retry", "web"]).await?;
    assert!(out.starts_with("rollout 'shop/web' retried"), "{out}");
    assert_eq!(status(&client).await?.abort, Some(false));

    // pause, resume.
    assert_eq!(
        cli.ok(&["pause", "web"]).await?,
        "rollout 'shop/web' paused"
    );
    assert_eq!(rollout(&client).await?.spec.paused, Some(true));
    assert_eq!(
        cli.ok(&["resume", "web"]).await?,
        "rollout 'shop/web' resumed"
    );
    assert_eq!(rollout(&client).await?.spec.paused, Some(false));

    // set image.
    let out = cli.ok(&["set", "image", "web", "web=web:3"]).await?;
    assert_eq!(out, "rollout 'shop/web' image updated: web=web:3");
    assert_eq!(image(&client).await?.as_deref(), Some("web:3"));
    let err = cli
        .fails(&["set", "image", "web", "db=postgres:17"])
        .await?;
    assert!(
        err.contains("rollout shop/web has no container 'db'; its containers are: web"),
        "{err}"
    );

    // undo: the revision before the current one (2) is 1; then explicitly back to 2.
    let out = cli.ok(&["undo", "web"]).await?;
    assert_eq!(
        out,
        "rollout 'shop/web' rolled back to revision 1 (ReplicaSet web-aaa, image web:1)"
    );
    assert_eq!(image(&client).await?.as_deref(), Some("web:1"));
    let labels = rollout(&client)
        .await?
        .spec
        .template
        .and_then(|t| t.metadata)
        .and_then(|m| m.labels)
        .unwrap_or_default();
    assert_eq!(
        labels,
        [("app".to_string(), "web".to_string())].into(),
        "the hash label is not copied"
    );
    cli.ok(&["undo", "web", "--to-revision", "2"]).await?;
    assert_eq!(image(&client).await?.as_deref(), Some("web:2"));
    let err = cli.fails(&["undo", "web", "--to-revision", "9"]).await?;
    assert!(
        err.contains("rollout shop/web has no revision 9; revisions available: 1, 2"),
        "{err}"
    );

    // restart.
    let before = jiff_now();
    let out = cli.ok(&["restart", "web"]).await?;
    assert!(out.starts_with("rollout 'shop/web' restarting"), "{out}");
    let at = rollout(&client)
        .await?
        .spec
        .restart_at
        .map(|t| t.0)
        .expect("restartAt written");
    // The time of the command, rounded up to a whole second.
    assert!(
        at >= before && at.as_second() <= jiff_now().as_second() + 1,
        "{at}"
    );

    // Not found: non-zero exit, the rollout named with its namespace.
    let err = cli.fails(&["abort", "nope", "-n", NS]).await?;
    assert!(err.contains("rollout shop/nope not found"), "{err}");
    // --context picks another context, with its namespace (none: `default`).
    let err = cli.fails(&["abort", "web", "--context", "other"]).await?;
    assert!(err.contains("rollout default/web not found"), "{err}");

    // Run as the kubectl plugin.
    #[cfg(unix)]
    {
        let plugin = dir.join("kubectl-rollgate");
        let _ = std::fs::remove_file(&plugin);
        std::os::unix::fs::symlink(BIN, &plugin)?;
        let as_plugin = Cli {
            program: plugin,
            kubeconfig: cli.kubeconfig.clone(),
        };
        assert_eq!(
            as_plugin.ok(&["pause", "web"]).await?,
            "rollout 'shop/web' paused"
        );
        assert_eq!(rollout(&client).await?.spec.paused, Some(true));
    }

    server.abort();
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn jiff_now() -> k8s_openapi::jiff::Timestamp {
    k8s_openapi::jiff::Timestamp::now()
}

/// An https cluster needs rustls' crypto provider, which the binary installs at startup: an
/// unreachable https server is a clean error, not a panic.
#[test]
fn an_unreachable_https_cluster_is_an_error_not_a_panic() -> anyhow::Result<()> {
    // A port that was just free: nothing listens there any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let dir = std::env::temp_dir().join(format!(
        "rollgate-ctl-https-test-{}-{port}",
        std::process::id()
    ));
    let kubeconfig = write_kubeconfig(&dir, &format!("https://127.0.0.1:{port}"))?;
    let out = std::process::Command::new(BIN)
        .args(["promote", "web", "--kubeconfig"])
        .arg(&kubeconfig)
        .env_remove("KUBECONFIG")
        .output()?;
    let _ = std::fs::remove_dir_all(&dir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        stderr.starts_with("error: reading rollout shop/web: "),
        "{stderr}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_exits_with_the_verdict_and_list_shows_the_rollouts() -> anyhow::Result<()> {
    let (client, cli, server, dir) = served("status").await?;
    let rollouts = Api::<Rollout>::namespaced(client.clone(), NS);
    let web: Rollout = serde_json::from_value(json!({
        "apiVersion": "rollgate.dev/v1alpha1", "kind": "Rollout",
        "metadata": {"name": "web"},
        "spec": {"replicas": 4, "selector": {"matchLabels": {"app": "web"}},
                 "template": template("web:2"),
                 "strategy": {"canary": {"steps": [{"setWeight": 25}, {"pause": {}}]}}}
    }))?;
    rollouts.create(&PostParams::default(), &web).await?;
    let set_status = |status: Value| {
        let rollouts = rollouts.clone();
        async move {
            rollouts
                .patch_status(
                    "web",
                    &PatchParams::default(),
                    &Patch::Merge(json!({ "status": status })),
                )
                .await
        }
    };
    let code = |out: &Output| out.status.code();

    set_status(
        json!({"observedGeneration": 1, "phase": "Healthy", "message": "all good",
                      "readyReplicas": 4}),
    )
    .await?;
    let out = cli.run(&["status", "web", "--timeout", "5s"]).await?;
    assert_eq!(code(&out), Some(0), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("rollout shop/web is Healthy"));

    set_status(json!({"observedGeneration": 1, "phase": "Degraded",
                      "message": "Aborted: step 2/2 analysis failed"}))
    .await?;
    let out = cli.run(&["status", "web", "--timeout", "5s"]).await?;
    assert_eq!(code(&out), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("rollout shop/web is Degraded: Aborted: step 2/2 analysis failed"),
        "{out:?}"
    );

    set_status(
        json!({"observedGeneration": 1, "phase": "Paused", "currentStepIndex": 1,
                      "message": "Paused at step 2/2 until promoted",
                      "canary": {"weights": {"setWeight": 25, "actualWeight": 25}}}),
    )
    .await?;
    let out = cli.run(&["status", "web", "--timeout", "2s"]).await?;
    assert_eq!(code(&out), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("timed out after 2s, still Paused"),
        "{out:?}"
    );
    let out = cli.run(&["status", "nope", "--timeout", "2s"]).await?;
    assert_eq!(code(&out), Some(3), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("rollout shop/nope not found"));

    let table = cli.ok(&["list", "rollouts"]).await?;
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("NAMESPACE  NAME  STRATEGY  PHASE   STEP  WEIGHT  READY  MESSAGE"),
        "{table}"
    );
    assert!(
        lines[1].starts_with("shop       web   Canary    Paused  2/2   25/25   4/4"),
        "{table}"
    );
    assert!(
        lines[1].ends_with("Paused at step 2/2 until promoted"),
        "{table}"
    );
    let all = cli.ok(&["list", "rollouts", "-A"]).await?;
    assert_eq!(all.lines().count(), 2, "{all}");
    let other = cli.ok(&["list", "rollouts", "-n", "default"]).await?;
    assert_eq!(other.lines().count(), 1, "only the header: {other}");

    server.abort();
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
