//! Command-line interface.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

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
