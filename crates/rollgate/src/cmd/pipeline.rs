//! Promotion pipelines: `rollgate get pipeline`, `list releases`, `approve`, `reject`,
//! `promote --pipeline`, `pipeline pause|resume` and `status release` (see
//! `rollgate_ctl::pipeline`, `approval` and `release_status`).

use anyhow::Context;
use kube::Client;
use kube::config::Kubeconfig;
use rollgate_api::pipeline::Decision;
use rollgate_ctl::Timestamp;
use rollgate_ctl::approval::{Decide, decide, kubeconfig_user};
use rollgate_ctl::pipeline::{
    ReleaseRow, fetch_pipeline, list_releases, render_pipeline, render_release_table, set_paused,
};
use rollgate_ctl::release_status::{ReleaseOutcome, wait_release};

use crate::cli::{
    ClusterArgs, DecideArgs, GetPipelineArgs, ListReleasesArgs, PipelineArgs, PromoteArgs,
    StatusReleaseArgs,
};
use crate::cmd::ctl::connect;

/// Runs `f` with a client and the namespace (`-n`, else the context's, else `default`) on a
/// fresh single-threaded runtime.
fn with_client<T>(
    cluster: &ClusterArgs,
    f: impl AsyncFnOnce(Client, String) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(async {
        let client = connect(cluster).await?;
        let namespace = cluster
            .namespace
            .clone()
            .unwrap_or_else(|| client.default_namespace().to_string());
        f(client, namespace).await
    })
}

/// `rollgate get pipeline NAME [--all]`.
pub fn get(args: &GetPipelineArgs) -> anyhow::Result<()> {
    let text = with_client(&args.pipeline.cluster, async |client, namespace| {
        let objects = fetch_pipeline(&client, &namespace, &args.pipeline.name).await?;
        anyhow::Ok(render_pipeline(&objects, Timestamp::now(), args.all))
    })?;
    print!("{text}");
    Ok(())
}

/// `rollgate list releases [--pipeline P]`.
pub fn list(args: &ListReleasesArgs) -> anyhow::Result<()> {
    let table = with_client(&args.cluster, async |client, namespace| {
        let releases = list_releases(&client, &namespace, args.pipeline.as_deref()).await?;
        let now = Timestamp::now();
        let rows: Vec<ReleaseRow> = releases.iter().map(|r| ReleaseRow::of(r, now)).collect();
        anyhow::Ok(render_release_table(&rows))
    })?;
    println!("{table}");
    Ok(())
}

/// `rollgate pipeline pause|resume NAME`.
pub fn set_pause(args: &PipelineArgs, paused: bool) -> anyhow::Result<()> {
    let message = with_client(&args.cluster, async |client, namespace| {
        anyhow::Ok(set_paused(&client, &namespace, &args.name, paused).await?)
    })?;
    println!("{message}");
    Ok(())
}

/// Who decides: `--approver`, else the user entry of the kubeconfig context.
fn approver(given: Option<&str>, cluster: &ClusterArgs) -> anyhow::Result<String> {
    if let Some(a) = given {
        return Ok(a.to_string());
    }
    let config = match &cluster.kubeconfig {
        Some(path) => Kubeconfig::read_from(path).with_context(|| {
            format!(
                "reading kubeconfig {} (or pass --approver NAME)",
                path.display()
            )
        })?,
        None => Kubeconfig::read()
            .context("reading the kubeconfig to find who decides (or pass --approver NAME)")?,
    };
    Ok(kubeconfig_user(&config, cluster.context.as_deref())?)
}

fn record(cluster: &ClusterArgs, d: Decide) -> anyhow::Result<()> {
    let message = with_client(cluster, async |client, namespace| {
        anyhow::Ok(decide(&client, &namespace, &d).await?)
    })?;
    println!("{message}");
    Ok(())
}

/// `rollgate approve|reject RELEASE --stage S`.
pub fn approve_or_reject(args: &DecideArgs, decision: Decision) -> anyhow::Result<()> {
    let d = Decide {
        release: args.release.clone(),
        stage: args.stage.clone(),
        decision,
        approver: approver(args.approver.as_deref(), &args.cluster)?,
        comment: args.comment.clone(),
        pipeline: None,
    };
    record(&args.cluster, d)
}

/// `rollgate promote --pipeline P --release R --stage S`.
pub fn promote(args: &PromoteArgs) -> anyhow::Result<()> {
    let (Some(pipeline), Some(release), Some(stage)) = (&args.pipeline, &args.release, &args.stage)
    else {
        anyhow::bail!("promote --pipeline needs --release and --stage");
    };
    let d = Decide {
        release: release.clone(),
        stage: stage.clone(),
        decision: Decision::Promote,
        approver: approver(args.approver.as_deref(), &args.cluster)?,
        comment: args.comment.clone(),
        pipeline: Some(pipeline.clone()),
    };
    record(&args.cluster, d)
}

/// `rollgate status release R --stage S`: prints each change of phase, then returns the exit
/// code: 0 Verified, 1 Bad or failed there, 2 timed out.
pub fn status(args: &StatusReleaseArgs) -> anyhow::Result<i32> {
    let (id, outcome) = with_client(&args.cluster, async |client, namespace| {
        let id = format!("{namespace}/{}", args.release);
        let outcome = wait_release(
            &client,
            &namespace,
            &args.release,
            &args.stage,
            args.timeout,
            |line| println!("release {id} in {}: {line}", args.stage),
        )
        .await?;
        anyhow::Ok((id, outcome))
    })?;
    match &outcome {
        ReleaseOutcome::Verified => println!("release {id} is Verified in {}", args.stage),
        ReleaseOutcome::Failed(why) => eprintln!("{why}"),
        ReleaseOutcome::TimedOut { phase, message } => {
            let message = if message.is_empty() {
                String::new()
            } else {
                format!(": {message}")
            };
            eprintln!(
                "release {id}: timed out after {:?}, still {phase} in {}{message}",
                args.timeout, args.stage
            );
        }
    }
    Ok(outcome.exit_code())
}
