//! The `rollgate` binary: controller, CRD generation, demo, and manual control of rollouts.
//! Installed as `kubectl-rollgate` too.

mod cli;
mod cmd;

use std::process::ExitCode;

use rollgate_ctl::Command as Ctl;

fn main() -> ExitCode {
    // kube talks TLS through rustls, which needs a process-wide crypto provider. An error
    // only means one is installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
    match run(cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // The whole chain on one line: `what failed: why: ...`.
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: cli::Cli) -> anyhow::Result<()> {
    match cli.command {
        cli::Command::Crds(args) => cmd::crds::run(&args),
        cli::Command::Controller(args) => cmd::controller::run(&args),
        cli::Command::Demo(args) => cmd::demo::run(&args),
        cli::Command::Promote(args) => {
            cmd::ctl::run(&args.rollout, &Ctl::Promote { full: args.full })
        }
        cli::Command::Abort(args) => cmd::ctl::run(&args, &Ctl::Abort),
        cli::Command::Retry(args) => cmd::ctl::run(&args, &Ctl::Retry),
        cli::Command::Pause(args) => cmd::ctl::run(&args, &Ctl::Pause),
        cli::Command::Resume(args) => cmd::ctl::run(&args, &Ctl::Resume),
        cli::Command::Undo(args) => cmd::ctl::run(
            &args.rollout,
            &Ctl::Undo {
                to_revision: args.to_revision,
            },
        ),
        cli::Command::Set(cli::SetCommand::Image(args)) => cmd::ctl::run(
            &args.rollout,
            &Ctl::SetImage {
                images: args.images,
            },
        ),
        cli::Command::Restart(args) => cmd::ctl::run(&args, &Ctl::Restart),
    }
}
