//! What `rollgate-controller` runs, shared with `rollgate controller` (the same flags, logs and
//! code): the logs set up, then [`rollgate_controller::serve_until_signal`] on a multi-threaded
//! runtime.

use anyhow::Context;
use rollgate_controller::ControllerArgs;
use tracing_subscriber::EnvFilter;

/// Runs the controller until SIGINT/SIGTERM: logs to stderr (`RUST_LOG` filters, default
/// `info`; JSON lines with `--json-logs`).
pub fn run(args: &ControllerArgs) -> anyhow::Result<()> {
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
