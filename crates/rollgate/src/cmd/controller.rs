//! `rollgate controller`: the controller against a real cluster. The same flags and code as
//! the `rollgate-controller` binary
//! ([`rollgate_controller::serve`](mod@rollgate_controller::serve)).

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
    runtime.block_on(rollgate_controller::serve_until_signal(args))?;
    Ok(())
}
