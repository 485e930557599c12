//! `rollgate promote|abort|retry|pause|resume|undo|set image|restart`: manual control of one
//! Rollout through the API server of the kubeconfig (see `rollgate_ctl`).

use anyhow::Context;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use rollgate_ctl::{Command, Timestamp};

use crate::cli::{ClusterArgs, RolloutArgs};

/// Runs `command` on the rollout named in `args` and prints what was done.
pub fn run(args: &RolloutArgs, command: &Command) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    let message = runtime.block_on(async {
        let client = connect(&args.cluster).await?;
        let namespace = args
            .cluster
            .namespace
            .clone()
            .unwrap_or_else(|| client.default_namespace().to_string());
        anyhow::Ok(
            rollgate_ctl::run(&client, &namespace, &args.name, command, Timestamp::now()).await?,
        )
    })?;
    println!("{message}");
    Ok(())
}

/// `rollgate status`: prints each change of phase, then exits 0 (Healthy), 1 (Degraded) or 2
/// (timed out), with the reason.
pub fn status(args: &crate::cli::StatusArgs) -> anyhow::Result<i32> {
    let Some(name) = args.name.as_deref() else {
        anyhow::bail!("status: the name of the rollout (or `release`) is required");
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    let verdict = runtime.block_on(async {
        let client = connect(&args.cluster).await?;
        let namespace = args
            .cluster
            .namespace
            .clone()
            .unwrap_or_else(|| client.default_namespace().to_string());
        let id = format!("{namespace}/{name}");
        let verdict = rollgate_ctl::wait_status(&client, &namespace, name, args.timeout, |line| {
            println!("rollout {id}: {line}");
        })
        .await?;
        anyhow::Ok((id, verdict))
    })?;
    let (id, verdict) = verdict;
    match &verdict {
        rollgate_ctl::Verdict::Healthy(_) => println!("rollout {id} is Healthy"),
        rollgate_ctl::Verdict::Degraded(m) => eprintln!("rollout {id} is Degraded: {m}"),
        rollgate_ctl::Verdict::TimedOut { phase, message } => eprintln!(
            "rollout {id}: timed out after {:?}, still {phase}: {message}",
            args.timeout
        ),
    }
    Ok(verdict.exit_code())
}

/// `rollgate list rollouts`.
pub fn list(args: &crate::cli::ListArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    let table = runtime.block_on(async {
        let client = connect(&args.cluster).await?;
        let namespace = if args.all_namespaces {
            None
        } else {
            Some(
                args.cluster
                    .namespace
                    .clone()
                    .unwrap_or_else(|| client.default_namespace().to_string()),
            )
        };
        let rows = rollgate_ctl::list(&client, namespace.as_deref()).await?;
        anyhow::Ok(rollgate_ctl::render_table(&rows))
    })?;
    println!("{table}");
    Ok(())
}

/// A client for `--kubeconfig`/`--context` when given, else for the inferred configuration
/// (`$KUBECONFIG`, `~/.kube/config`, then in-cluster). Its default namespace is the
/// context's, else `default`.
pub(crate) async fn connect(args: &ClusterArgs) -> anyhow::Result<Client> {
    let options = KubeConfigOptions {
        context: args.context.clone(),
        ..Default::default()
    };
    let mut config = match (&args.kubeconfig, &args.context) {
        (Some(path), _) => {
            let kubeconfig = Kubeconfig::read_from(path)
                .with_context(|| format!("reading kubeconfig {}", path.display()))?;
            Config::from_custom_kubeconfig(kubeconfig, &options)
                .await
                .with_context(|| format!("loading kubeconfig {}", path.display()))?
        }
        (None, Some(context)) => Config::from_kubeconfig(&options)
            .await
            .with_context(|| format!("loading context {context} of the kubeconfig"))?,
        (None, None) => Config::infer()
            .await
            .context("finding a Kubernetes configuration (kubeconfig or in-cluster)")?,
    };
    if !args.request_timeout.is_zero() {
        let limit = Some(args.request_timeout);
        config.connect_timeout = limit;
        config.read_timeout = limit;
        config.write_timeout = limit;
    }
    Client::try_from(config).context("creating the Kubernetes client")
}
