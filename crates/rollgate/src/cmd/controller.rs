//! `rollgate controller`: the controller against a real cluster.

use anyhow::Context;
use tracing_subscriber::EnvFilter;

use crate::cli::ControllerArgs;

/// Runs the controller until SIGINT/SIGTERM.
pub fn run(args: &ControllerArgs) -> anyhow::Result<()> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt().with_env_filter(filter);
    if args.json_logs {
        logs.json().init();
    } else {
        logs.init();
    }
    let runtime = tokio::runtime::Runtime::new().context("starting the tokio runtime")?;
    runtime.block_on(async {
        let client = kube::Client::try_default()
            .await
            .context("connecting to Kubernetes (kubeconfig or in-cluster service account)")?;
        let config = rollgate_controller::Config {
            namespace: args.namespace.clone(),
            instance: std::env::var("CONTROLLER_POD_NAME")
                .unwrap_or_else(|_| "rollgate-controller".into()),
            ..Default::default()
        };
        let (bound, _http) =
            rollgate_controller::telemetry::serve(args.metrics_addr, config.telemetry.clone())
                .await
                .with_context(|| format!("serving /metrics on {}", args.metrics_addr))?;
        tracing::info!(namespace = ?config.namespace, http = %bound,
            "rollgate controller starting (/metrics, /healthz, /readyz)");
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        rollgate_controller::run(client, config, shutdown).await?;
        Ok(())
    })
}
