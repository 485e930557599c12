//! The promotion-pipeline commands of the built binary (`get pipeline`, `list releases`,
//! `approve`, `reject`, `promote --pipeline`, `pipeline pause|resume`, `status release`)
//! against the simulated cluster served over HTTP on 127.0.0.1, reached through a kubeconfig
//! file. The pipeline and releases are created with the statuses each case needs.

use std::path::{Path, PathBuf};
use std::process::Output;

use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use rollgate_api::pipeline::Decision;
use rollgate_api::{Approval, PromotionPipeline, Release};
use rollgate_local::kubeconfig::Kubeconfig;
use rollgate_sim::{SimCluster, SimConfig};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_rollgate");
/// Namespace of the kubeconfig's current context; its user entry is named `sim`.
const NS: &str = "shop";

struct Cli {
    kubeconfig: PathBuf,
}

impl Cli {
    /// Runs the binary with `args` and `--kubeconfig`, off the runtime that serves the cluster.
    async fn run(&self, args: &[&str]) -> anyhow::Result<Output> {
        let mut cmd = std::process::Command::new(BIN);
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

    /// Runs and expects exit code `code`; returns (stdout, stderr).
    async fn exits(&self, code: i32, args: &[&str]) -> anyhow::Result<(String, String)> {
        let out = self.run(args).await?;
        assert_eq!(out.status.code(), Some(code), "{args:?}: {out:?}");
        Ok((
            String::from_utf8(out.stdout)?,
            String::from_utf8(out.stderr)?,
        ))
    }
}

fn kubeconfig(dir: &Path, server: &str) -> anyhow::Result<PathBuf> {
    let path = dir.join("kubeconfig");
    Kubeconfig::new("sim", server).namespace(NS).write(&path)?;
    Ok(path)
}

/// The simulated cluster with rollgate's CRDs, served on 127.0.0.1, holding pipeline `web`
/// (staging -> production) and releases `web-1` (Good), `web-2` (Bad: failed in production),
/// `web-3` (Verified in staging, Blocked for production), and `api-1` of pipeline `api`.
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
    std::fs::create_dir_all(&dir)?;
    let cli = Cli {
        kubeconfig: kubeconfig(&dir, &format!("http://{addr}"))?,
    };

    let pipelines = Api::<PromotionPipeline>::namespaced(client.clone(), NS);
    for (name, status) in [
        (
            "web",
            json!({"stages": [
                {"name": "staging", "current": "web-3", "lastGood": "web-1", "reachable": true},
                {"name": "production", "current": "web-1", "lastGood": "web-1", "reachable": true,
                 "hold": {"reason": "Restored", "release": "web-2", "since": "2026-01-01T00:00:00Z"}}
            ]}),
        ),
        ("api", json!({})),
    ] {
        let p: PromotionPipeline = serde_json::from_value(json!({
            "apiVersion": "rollgate.dev/v1alpha1", "kind": "PromotionPipeline",
            "metadata": {"name": name},
            "spec": {"stages": [
                {"name": "staging", "rollout": {"name": format!("{name}-staging")}},
                {"name": "production", "rollout": {"name": name, "namespace": "prod"}}
            ]}
        }))?;
        pipelines.create(&PostParams::default(), &p).await?;
        pipelines
            .patch_status(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({ "status": status })),
            )
            .await?;
    }
    for (pipeline, number, status) in [
        (
            "web",
            1,
            json!({"verdict": "Good", "stages": [
                {"name": "staging", "phase": "Verified"},
                {"name": "production", "phase": "Verified"}
            ]}),
        ),
        (
            "web",
            2,
            json!({"verdict": "Bad",
            "failure": {"stage": "production", "cause": "VerificationFailed",
                "message": "run web-2-production-1 failed", "at": "2026-01-01T00:00:00Z"},
            "stages": [
                {"name": "staging", "phase": "Verified"},
                {"name": "production", "phase": "RolledBack", "attempt": 1}
            ]}),
        ),
        (
            "web",
            3,
            json!({"verdict": "Unknown", "stages": [
                {"name": "staging", "phase": "Verified"},
                {"name": "production", "phase": "Blocked", "blocked": [{"kind": "Approvals",
                    "needed": 1, "have": 0}], "message": "needs 1 approval (0 of 1)"}
            ]}),
        ),
        ("api", 1, json!({})),
    ] {
        create_release(&client, pipeline, number, status).await?;
    }
    Ok((client, cli, server, dir))
}

async fn create_release(
    client: &Client,
    pipeline: &str,
    number: i64,
    status: Value,
) -> anyhow::Result<()> {
    let releases = Api::<Release>::namespaced(client.clone(), NS);
    let name = format!("{pipeline}-{number}");
    let r: Release = serde_json::from_value(json!({
        "apiVersion": "rollgate.dev/v1alpha1", "kind": "Release",
        "metadata": {"name": name},
        "spec": {"pipeline": pipeline, "images": {"app": format!("app@sha256:{number}")},
            "sourceImages": {"app": format!("app:{number}")}, "entered": "staging",
            "number": number, "created": "2026-01-01T00:00:00Z"}
    }))?;
    releases.create(&PostParams::default(), &r).await?;
    if status != json!({}) {
        releases
            .patch_status(
                &name,
                &PatchParams::default(),
                &Patch::Merge(json!({ "status": status })),
            )
            .await?;
    }
    Ok(())
}

async fn approvals(client: &Client) -> anyhow::Result<Vec<Approval>> {
    let mut items = Api::<Approval>::namespaced(client.clone(), NS)
        .list(&ListParams::default())
        .await?
        .items;
    items.sort_by_key(|a| a.creation_timestamp().map(|t| t.0));
    Ok(items)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approve_reject_and_promote_create_approvals() -> anyhow::Result<()> {
    let (client, cli, server, dir) = served("pipeline-approve").await?;

    // approve: the approver is the user entry of the kubeconfig's context (`sim`).
    let out = cli
        .ok(&[
            "approve",
            "web-3",
            "--stage",
            "production",
            "-m",
            "checked the canary",
        ])
        .await?;
    assert!(
        out.starts_with("approval 'shop/web-3-production-")
            && out.ends_with("created: sim approves release web-3 for stage production"),
        "{out}"
    );
    let a = approvals(&client).await?;
    assert_eq!(a.len(), 1);
    assert!(a[0].name_any().starts_with("web-3-production-"), "{a:?}");
    assert_eq!(a[0].spec.release, "web-3");
    assert_eq!(a[0].spec.stage, "production");
    assert_eq!(a[0].spec.decision, Decision::Approve);
    assert_eq!(a[0].spec.approver, "sim");
    assert_eq!(a[0].spec.comment.as_deref(), Some("checked the canary"));

    // reject with --approver.
    cli.ok(&["reject", "web-3", "--stage", "staging", "--approver", "bob"])
        .await?;
    let a = approvals(&client).await?;
    assert_eq!(a.len(), 2);
    let reject = a
        .iter()
        .find(|a| a.spec.decision == Decision::Reject)
        .expect("a Reject approval");
    assert_eq!(
        (reject.spec.stage.as_str(), reject.spec.approver.as_str()),
        ("staging", "bob")
    );
    assert_eq!(reject.spec.comment, None);

    // promote --pipeline: decision Promote.
    let out = cli
        .ok(&[
            "promote",
            "--pipeline",
            "web",
            "--release",
            "web-1",
            "--stage",
            "production",
        ])
        .await?;
    assert!(
        out.ends_with("created: sim promotes release web-1 into stage production"),
        "{out}"
    );
    let a = approvals(&client).await?;
    let promote = a
        .iter()
        .find(|a| a.spec.decision == Decision::Promote)
        .expect("a Promote approval");
    assert_eq!(
        (promote.spec.release.as_str(), promote.spec.stage.as_str()),
        ("web-1", "production")
    );
    assert!(promote.name_any().starts_with("web-1-production-"));

    // Refused, exit 1, nothing created: no such release, no such stage, another pipeline.
    let (_, err) = cli
        .exits(1, &["approve", "nope", "--stage", "production"])
        .await?;
    assert!(err.contains("release shop/nope not found"), "{err}");
    let (_, err) = cli
        .exits(1, &["reject", "web-3", "--stage", "prod"])
        .await?;
    assert!(
        err.contains(
            "release shop/web-3 has no stage 'prod': its pipeline web has the stages staging, production"
        ),
        "{err}"
    );
    let (_, err) = cli
        .exits(
            1,
            &[
                "promote",
                "--pipeline",
                "web",
                "--release",
                "api-1",
                "--stage",
                "production",
            ],
        )
        .await?;
    assert!(
        err.contains("release shop/api-1 belongs to pipeline 'api' (spec.pipeline), not 'web'"),
        "{err}"
    );
    assert_eq!(approvals(&client).await?.len(), 3);

    server.abort();
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_resume_list_and_get() -> anyhow::Result<()> {
    let (client, cli, server, dir) = served("pipeline-view").await?;
    let pipelines = Api::<PromotionPipeline>::namespaced(client.clone(), NS);

    assert_eq!(
        cli.ok(&["pipeline", "pause", "web"]).await?,
        "pipeline 'shop/web' paused"
    );
    assert!(pipelines.get("web").await?.spec.paused);
    assert_eq!(
        cli.ok(&["pipeline", "pause", "web"]).await?,
        "pipeline 'shop/web' is already paused"
    );
    assert_eq!(
        cli.ok(&["pipeline", "resume", "web"]).await?,
        "pipeline 'shop/web' resumed"
    );
    assert!(!pipelines.get("web").await?.spec.paused);
    let (_, err) = cli.exits(1, &["pipeline", "pause", "nope"]).await?;
    assert!(err.contains("pipeline shop/nope not found"), "{err}");

    // list releases: newest (highest number) first; --pipeline filters.
    let out = cli.ok(&["list", "releases"]).await?;
    let lines: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().take(4).collect())
        .collect();
    assert_eq!(
        lines,
        [
            vec!["NAME", "NUMBER", "PIPELINE", "VERDICT"],
            vec!["web-3", "3", "web", "Unknown"],
            vec!["web-2", "2", "web", "Bad"],
            vec!["api-1", "1", "api", "-"],
            vec!["web-1", "1", "web", "Good"],
        ],
        "{out}"
    );
    assert!(
        out.contains("staging:Verified production:RolledBack"),
        "{out}"
    );
    let out = cli.ok(&["list", "releases", "--pipeline", "api"]).await?;
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(
        out.lines().nth(1).is_some_and(|l| l.starts_with("api-1 ")),
        "{out}"
    );

    // get pipeline.
    let out = cli.ok(&["get", "pipeline", "web"]).await?;
    for expected in [
        "Name:       web",
        "Paused:     no",
        "  production  prod/web",
        "Restored by web-2",
        "  #3 web-3  Unknown",
        "      production  Blocked: needs 1 approval (0 of 1)",
        "  #2 web-2  Bad: failed in production: VerificationFailed: run web-2-production-1 failed",
    ] {
        assert!(out.contains(expected), "{expected:?} in\n{out}");
    }
    assert!(!out.contains("api-1"), "{out}");
    let (_, err) = cli.exits(1, &["get", "pipeline", "nope"]).await?;
    assert!(err.contains("pipeline shop/nope not found"), "{err}");

    server.abort();
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_release_exit_codes() -> anyhow::Result<()> {
    let (_client, cli, server, dir) = served("pipeline-status").await?;

    // 0: Verified in the stage.
    let (out, _) = cli
        .exits(0, &["status", "release", "web-3", "--stage", "staging"])
        .await?;
    assert!(
        out.contains("release shop/web-3 is Verified in staging"),
        "{out}"
    );

    // 1: Bad, with the failure.
    let (_, err) = cli
        .exits(1, &["status", "release", "web-2", "--stage", "production"])
        .await?;
    assert!(
        err.contains(
            "release web-2 is Bad: failed in production: VerificationFailed: run web-2-production-1 failed"
        ),
        "{err}"
    );

    // 2: still Blocked when the timeout passes: the phase and message last seen.
    let (out, err) = cli
        .exits(
            2,
            &[
                "status",
                "release",
                "web-3",
                "--stage",
                "production",
                "--timeout",
                "0s",
            ],
        )
        .await?;
    assert!(
        out.contains("release shop/web-3 in production: Blocked: needs 1 approval (0 of 1)"),
        "{out}"
    );
    assert!(
        err.contains("still Blocked in production: needs 1 approval (0 of 1)"),
        "{err}"
    );

    // 3: it cannot tell (no such stage, no such release).
    let (_, err) = cli
        .exits(3, &["status", "release", "web-3", "--stage", "prod"])
        .await?;
    assert!(err.contains("has no stage 'prod'"), "{err}");
    let (_, err) = cli
        .exits(3, &["status", "release", "nope", "--stage", "staging"])
        .await?;
    assert!(err.contains("release shop/nope not found"), "{err}");

    server.abort();
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
