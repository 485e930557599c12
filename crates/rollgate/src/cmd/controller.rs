//! `rollgate controller`: the controller against a real cluster. The same flags and code as
//! the `rollgate-controller` binary ([`rollgate_controller_bin::run`]).

use crate::cli::ControllerArgs;

/// Runs the controller until SIGINT/SIGTERM.
pub fn run(args: &ControllerArgs) -> anyhow::Result<()> {
    rollgate_controller_bin::run(args)
}
