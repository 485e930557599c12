//! `rollgate-controller`: the rollgate controller and nothing else, as deployed by
//! `manifests/controller.yaml`.
//!
//! It takes the same flags as `rollgate controller` and runs the same code
//! ([`rollgate_controller::serve`](mod@rollgate_controller::serve)), but links none of the
//! CLI, the demo, the simulated cluster or the test harnesses (`scripts/check-deps` checks
//! that with `cargo tree`). SIGINT and SIGTERM stop it cleanly: reconciles in flight finish,
//! a leader releases its Lease, exit status 0.

use std::process::ExitCode;

use clap::Parser;
use rollgate_controller::ControllerArgs;

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
    match rollgate_controller_bin::run(&cli.args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // The whole chain on one line: `what failed: why: ...`.
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
