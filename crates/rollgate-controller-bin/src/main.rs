//! `rollgate-controller`: the rollgate controller and nothing else, as deployed by
//! `manifests/controller.yaml`.
//!
//! It takes the same flags as `rollgate controller` and runs the same code
//! ([`rollgate_controller::serve`](mod@rollgate_controller::serve)), but links none of the
//! CLI, the demo, the simulated cluster or the test harnesses (`scripts/check-deps` checks
//! that with `cargo tree`). SIGINT and SIGTERM stop it cleanly: reconciles in flight finish,
//! a leader releases its Lease, exit status 0.

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use rollgate_controller::ControllerArgs;
use tracing_subscriber::EnvFilter;

/// Rollgate's controller: progressive delivery of Rollouts on the cluster of the current
/// kubeconfig, or in-cluster with the pod's service account. Runs until SIGINT or SIGTERM.
#[derive(Debug, Parser)]
#[command(name = "rollgate-controller", version, about)]
struct Cli {
    #[command(flatten)]
    args: ControllerArgs,
}

fn main() -> ExitCode {
    // kube talks TLS through rustls, which needs a process-wide crypto provider. An error
    // only means one is installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    match run(&cli.args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // The whole chain on one line: `what failed: why: ...`.
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &ControllerArgs) -> anyhow::Result<()> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt().with_env_filter(filter);
    if args.json_logs {
        logs.json().init();
    } else {
        logs.init();
    }
    let runtime = tokio::runtime::Runtime::new().context("starting the tokio runtime")?;
    runtime.block_on(rollgate_controller::serve_until_signal(args))?;
    Ok(())
}
