//! `rollgate get rollout NAME [-w]` against a canary in flight: the real controller on the
//! simulated cluster (real time), served on 127.0.0.1, read through a kubeconfig.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use rollgate_api::RolloutPhase;
use rollgate_controller::metrics_source::{BoxFuture, MetricSource, QueryFor};
use rollgate_local::Stack;
use rollgate_prometheus::{QueryResult, Request};
use rollgate_sim::SimConfig;

const BIN: &str = env!("CARGO_BIN_EXE_rollgate");

/// Answers 0.01 to every query.
struct Constant;

impl MetricSource for Constant {
    fn query<'a>(
        &'a self,
        _: QueryFor<'a>,
        _: &'a Request,
    ) -> BoxFuture<'a, Result<QueryResult, String>> {
        Box::pin(async { Ok(QueryResult::Vector(vec![(BTreeMap::new(), 0.01)])) })
    }
}

const OBJECTS: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: web}
spec: {selector: {app: web}, ports: [{port: 80}]}
---
apiVersion: rollgate.dev/v1alpha1
kind: AnalysisTemplate
metadata: {name: errors}
spec:
  metrics:
    - name: error-rate
      interval: 1s
      count: 2
      successCondition: "result[0] < 0.05"
      provider: {prometheus: {address: "http://127.0.0.1:9", query: "vector(0)"}}
"#;

fn rollout(image: &str) -> String {
    format!(
        r#"
apiVersion: rollgate.dev/v1alpha1
kind: Rollout
metadata: {{name: web}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec: {{containers: [{{name: web, image: "{image}"}}]}}
  strategy:
    canary:
      steps:
        - setWeight: 50
        - analysis: {{templates: [{{templateName: errors}}]}}
        - pause: {{}}
"#
    )
}

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

async fn wait_phase(stack: &Stack, want: RolloutPhase) -> anyhow::Result<()> {
    stack
        .wait_for("default", "web", Duration::from_secs(30), "phase", |r| {
            r.status.as_ref().and_then(|s| s.phase) == Some(want)
                && r.status.as_ref().and_then(|s| s.observed_generation) == r.metadata.generation
        })
        .await?;
    Ok(())
}

async fn run(program: &Path, args: &[&str], kubeconfig: &Path) -> anyhow::Result<Output> {
    let mut cmd = std::process::Command::new(program);
    cmd.args(args).arg("--kubeconfig").arg(kubeconfig);
    Ok(tokio::task::spawn_blocking(move || cmd.output()).await??)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_rollout_shows_the_release_and_watch_redraws_on_change() -> anyhow::Result<()> {
    let mut stack = Stack::new(SimConfig {
        default_ready_delay: Duration::from_millis(200),
        ..Default::default()
    })
    .await?;
    stack.start_controller_with("ctl", Some(Arc::new(Constant)));
    let (addr, server) = stack.sim.serve("127.0.0.1:0".parse()?).await?;
    let dir = std::env::temp_dir().join(format!(
        "rollgate-get-{}-{}",
        std::process::id(),
        addr.port()
    ));
    let config = kubeconfig(&dir, &format!("http://{addr}"))?;
    stack.apply_yaml(OBJECTS, "default").await?;
    stack.apply_yaml(&rollout("web:1"), "default").await?;
    wait_phase(&stack, RolloutPhase::Healthy).await?;
    stack.apply_yaml(&rollout("web:2"), "default").await?;
    wait_phase(&stack, RolloutPhase::Paused).await?;

    let out = run(Path::new(BIN), &["get", "rollout", "web"], &config).await?;
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout)?;
    for want in [
        "Name:            web",
        "Namespace:       default",
        "Status:          ॥ Paused",
        "Strategy:        Canary",
        "  Step:          3/3",
        "  SetWeight:     50",
        "  ActualWeight:  50",
        "Images:          web:2 (canary)",
        "                 web:1 (stable)",
        "  Desired:       2",
        "NAME ",
        "⟳ web ",
        "├──# revision:2",
        "└──# revision:1",
        "AnalysisRun  ✔ Successful",
        "· error-rate",
        "Metric       ✔ Successful",
        "✔ 2  last: [0.01] [0.01]",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
    let line = |needle: &str| {
        text.lines()
            .find(|l| l.contains(needle))
            .unwrap_or_default()
            .to_string()
    };
    // The revision-2 ReplicaSet is the canary with one ready pod; revision 1 the stable.
    let canary_rs = line("ReplicaSet   ✔ Healthy");
    assert!(canary_rs.starts_with("│  ├──⧉ web-"), "{text}");
    assert!(canary_rs.ends_with("canary"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.contains("⧉ web-") && l.ends_with("stable")),
        "{text}"
    );
    assert_eq!(text.matches("Pod          ✔ Running").count(), 2, "{text}");
    assert!(text.contains("ready:1/1"), "{text}");

    // As a kubectl plugin: the same program under the name kubectl-rollgate.
    let plugin = dir.join("kubectl-rollgate");
    let _ = std::fs::remove_file(&plugin);
    std::os::unix::fs::symlink(BIN, &plugin)?;
    let out = run(&plugin, &["get", "rollout", "web"], &config).await?;
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8(out.stdout)?.contains("Status:          ॥ Paused"));

    // A missing rollout: an error naming it.
    let out = run(Path::new(BIN), &["get", "rollout", "nope"], &config).await?;
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr)?;
    assert!(err.contains("rollout default/nope not found"), "{err}");

    // --watch: a frame now, another once the promotion has moved the rollout.
    let mut watch = tokio::process::Command::new(BIN)
        .args([
            "get",
            "rollout",
            "web",
            "-w",
            "--timeout",
            "8s",
            "--kubeconfig",
        ])
        .arg(&config)
        .stdout(Stdio::piped())
        .spawn()?;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    rollgate_ctl::run(
        &stack.client,
        "default",
        "web",
        &rollgate_ctl::Command::Promote { full: false },
        stack.sim.now(),
    )
    .await?;
    wait_phase(&stack, RolloutPhase::Healthy).await?;
    let out = tokio::time::timeout(Duration::from_secs(20), async {
        let status = watch.wait().await?;
        let mut text = String::new();
        if let Some(mut stdout) = watch.stdout.take() {
            tokio::io::AsyncReadExt::read_to_string(&mut stdout, &mut text).await?;
        }
        anyhow::Ok((status, text))
    })
    .await??;
    assert!(out.0.success(), "watch ends at its timeout with 0");
    let frames = out.1.matches("Name:            web").count();
    assert!(frames >= 2, "{frames} frames:\n{}", out.1);
    assert!(out.1.starts_with("Name:"), "the first frame at once");
    assert!(
        out.1.trim_end().contains("Status:          ✔ Healthy"),
        "the last frame shows the promotion's result:\n{}",
        out.1
    );

    server.abort();
    stack.stop_controllers().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
