//! The `rollgate` binary: controller, CRD generation, demo, and manual control of rollouts.
//! Installed as `kubectl-rollgate` too.

mod cli;
mod cmd;

use std::process::ExitCode;

use rollgate_api::pipeline::Decision;
use rollgate_ctl::Command as Ctl;

fn main() -> ExitCode {
    // kube talks TLS through rustls, which needs a process-wide crypto provider. An error
    // only means one is installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = cli::parse();
    // `status` reports its verdict through the exit code: 0 Healthy (a release: Verified), 1
    // Degraded (Bad or failed), 2 timed out; 3 when it could not tell.
    if let cli::Command::Lint(args) = &cli.command {
        return match cmd::lint::run(args) {
            Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::from(3)
            }
        };
    }
    if let cli::Command::Simulate(args) = &cli.command {
        return match cmd::simulate::run(args) {
            Ok(code) => ExitCode::from(code),
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::from(2)
            }
        };
    }
    if let cli::Command::Status(args) = &cli.command {
        let verdict = match &args.of {
            Some(cli::StatusCommand::Release(r)) => cmd::pipeline::status(r),
            None => cmd::ctl::status(args),
        };
        return match verdict {
            Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::from(3)
            }
        };
    }
    match run(cli) {
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
        cli::Command::Dev(args) => cmd::dev::run(&args),
        // Handled in `main` (it exits with the verdict).
        cli::Command::Status(_) | cli::Command::Lint(_) | cli::Command::Simulate(_) => Ok(()),
        cli::Command::List(cli::ListCommand::Rollouts(args)) => cmd::ctl::list(&args),
        cli::Command::List(cli::ListCommand::Releases(args)) => cmd::pipeline::list(&args),
        cli::Command::Get(cli::GetCommand::Rollout(args)) => cmd::get::rollout(&args),
        cli::Command::Get(cli::GetCommand::Pipeline(args)) => cmd::pipeline::get(&args),
        cli::Command::Promote(args) if args.pipeline.is_some() => cmd::pipeline::promote(&args),
        cli::Command::Promote(args) => {
            let Some(name) = args.name else {
                anyhow::bail!(
                    "promote: give the name of a rollout, or --pipeline with --release and --stage"
                );
            };
            let rollout = cli::RolloutArgs {
                name,
                cluster: args.cluster,
            };
            cmd::ctl::run(&rollout, &Ctl::Promote { full: args.full })
        }
        cli::Command::Approve(args) => cmd::pipeline::approve_or_reject(&args, Decision::Approve),
        cli::Command::Reject(args) => cmd::pipeline::approve_or_reject(&args, Decision::Reject),
        cli::Command::Pipeline(cli::PipelineCommand::Pause(args)) => {
            cmd::pipeline::set_pause(&args, true)
        }
        cli::Command::Pipeline(cli::PipelineCommand::Resume(args)) => {
            cmd::pipeline::set_pause(&args, false)
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
