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
            // Unique per replica: the pod name, else the host name and process id.
            instance: std::env::var("CONTROLLER_POD_NAME").unwrap_or_else(|_| {
                let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "rollgate".into());
                format!("{host}-{}", std::process::id())
            }),
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
        if !args.leader_elect {
            rollgate_controller::run(client, config, shutdown).await?;
            return Ok(());
        }
        anyhow::ensure!(
            args.lease_grace < args.lease_duration,
            "--lease-grace ({}) must be less than --lease-duration ({})",
            args.lease_grace,
            args.lease_duration
        );
        let namespace = args
            .lease_namespace
            .clone()
            .or_else(|| std::env::var("POD_NAMESPACE").ok())
            .unwrap_or_else(|| "default".into());
        let settings = rollgate_controller::LeaderSettings {
            duration_secs: args.lease_duration,
            grace_secs: args.lease_grace,
            ..rollgate_controller::LeaderSettings::new(config.instance.clone(), namespace)
        };
        tracing::info!(lease = %format!("{}/{}", settings.namespace, settings.lease_name),
            identity = %settings.identity, "leader election on");
        rollgate_controller::run_elected(client, config, settings, shutdown).await?;
        Ok(())
    })
}
