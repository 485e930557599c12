//! The `rollgate` binary: controller, CRD generation, demo. Installed as `kubectl-rollgate` too.

mod cli;
mod cmd;

fn main() -> anyhow::Result<()> {
    let cli = cli::parse();
    match cli.command {
        cli::Command::Crds(args) => cmd::crds::run(&args),
        cli::Command::Controller(args) => cmd::controller::run(&args),
        cli::Command::Demo(args) => cmd::demo::run(&args),
    }
}
