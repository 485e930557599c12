//! Command-line interface.
//!
//! The same binary is also installed as `kubectl-rollgate`, which kubectl runs for
//! `kubectl rollgate ...`. The command is then the same; only the usage lines say
//! `kubectl rollgate` instead of `rollgate`.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

/// File name (without extension) under which kubectl finds the binary as a plugin.
pub const KUBECTL_PLUGIN: &str = "kubectl-rollgate";

/// Progressive delivery for Kubernetes: blue/green releases gated by analysis.
#[derive(Debug, Parser)]
#[command(name = "rollgate", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print (or write) the CustomResourceDefinitions.
    Crds(CrdsArgs),
    /// Run the controller against the cluster of the current kubeconfig (or in-cluster).
    Controller(ControllerArgs),
    /// Run a blue/green release on an embedded simulated cluster and print its timeline.
    Demo(DemoArgs),
}

/// `rollgate crds`.
#[derive(Debug, Args)]
pub struct CrdsArgs {
    /// Write one file per CRD into this directory instead of printing them.
    #[arg(long)]
    pub out_dir: Option<PathBuf>,
}

/// `rollgate controller`.
#[derive(Debug, Args)]
pub struct ControllerArgs {
    /// Only manage Rollouts in this namespace (default: all namespaces).
    #[arg(long, short = 'n')]
    pub namespace: Option<String>,
    /// Log as JSON lines.
    #[arg(long)]
    pub json_logs: bool,
}

/// `rollgate demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Also print the controller's own log lines.
    #[arg(long)]
    pub verbose: bool,
}

/// How usage lines name the program, given `argv[0]`.
pub fn bin_name(argv0: Option<&OsStr>) -> &'static str {
    let stem = argv0.and_then(|a| Path::new(a).file_stem());
    if stem == Some(OsStr::new(KUBECTL_PLUGIN)) {
        "kubectl rollgate"
    } else {
        "rollgate"
    }
}

/// Parses the given arguments (`argv[0]` first); on error or `--help`, prints and exits.
pub fn parse_from(args: Vec<OsString>) -> Cli {
    let command = Cli::command().bin_name(bin_name(args.first().map(OsString::as_os_str)));
    let matches = command.get_matches_from(args);
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

/// Parses the process's arguments.
pub fn parse() -> Cli {
    parse_from(std::env::args_os().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn kubectl_plugin_name_runs_the_same_cli() {
        for argv0 in [
            "kubectl-rollgate",
            "/usr/local/bin/kubectl-rollgate",
            "kubectl-rollgate.exe",
        ] {
            assert_eq!(bin_name(Some(OsStr::new(argv0))), "kubectl rollgate");
            let cli = parse_from(vec![argv0.into(), "crds".into()]);
            assert!(matches!(
                cli.command,
                Command::Crds(CrdsArgs { out_dir: None })
            ));
        }
        for argv0 in ["rollgate", "./target/release/rollgate", "kubectl"] {
            assert_eq!(bin_name(Some(OsStr::new(argv0))), "rollgate");
        }
        assert_eq!(bin_name(None), "rollgate");
    }

    #[test]
    fn usage_names_kubectl_rollgate_when_run_as_plugin() {
        let mut command = Cli::command().bin_name(bin_name(Some(OsStr::new(KUBECTL_PLUGIN))));
        assert_eq!(command.get_name(), "rollgate");
        let usage = command.render_usage().to_string();
        assert!(usage.contains("kubectl rollgate"), "{usage}");
    }

    #[test]
    fn crds_out_dir() {
        let cli = parse_from(vec![
            "rollgate".into(),
            "crds".into(),
            "--out-dir".into(),
            "manifests/crds".into(),
        ]);
        let Command::Crds(args) = cli.command else {
            panic!("crds expected");
        };
        assert_eq!(args.out_dir, Some(PathBuf::from("manifests/crds")));
    }
}
