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

/// A client for `--kubeconfig`/`--context` when given, else for the inferred configuration
/// (`$KUBECONFIG`, `~/.kube/config`, then in-cluster). Its default namespace is the
/// context's, else `default`.
async fn connect(args: &ClusterArgs) -> anyhow::Result<Client> {
    let options = KubeConfigOptions {
        context: args.context.clone(),
        ..Default::default()
    };
    let config = match (&args.kubeconfig, &args.context) {
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
    Client::try_from(config).context("creating the Kubernetes client")
}
