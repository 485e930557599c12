//! Command-line interface.
//!
//! The same binary is also installed as `kubectl-rollgate`, which kubectl runs for
//! `kubectl rollgate ...`. The command is then the same; only the usage lines say
//! `kubectl rollgate` instead of `rollgate`.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use rollgate_ctl::ContainerImage;

/// File name (without extension) under which kubectl finds the binary as a plugin.
pub const KUBECTL_PLUGIN: &str = "kubectl-rollgate";

/// Progressive delivery for Kubernetes: blue/green and canary releases gated by analysis.
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
    /// Run a release on an embedded simulated cluster and print its timeline.
    Demo(DemoArgs),
    /// Run a local simulated cluster, with the controller inside, for kubectl (until Ctrl-C).
    Dev(DevArgs),
    /// Wait until a rollout is Healthy (exit 0) or Degraded (exit 1), or the timeout (exit 2).
    Status(StatusArgs),
    /// List resources.
    #[command(subcommand)]
    List(ListCommand),
    /// Show one resource in detail.
    #[command(subcommand)]
    Get(GetCommand),
    /// Check Rollouts and analysis templates offline. A Service, template or HTTPRoute a
    /// Rollout names but the files do not hold is a warning (it may already be in the
    /// cluster); with --strict it is a problem too. Exit 0: no problem (warnings allowed);
    /// 1: problems; 3: a file could not be read (missing, not UTF-8).
    Lint(LintArgs),
    /// Run scenario files (rollout, templates, metric timeline, expectations) against the real
    /// controller on a simulated cluster in virtual time; exit 1 when an expectation fails.
    Simulate(SimulateArgs),
    /// End the pause of a release, or skip the current canary step (--full: skip them all).
    Promote(PromoteArgs),
    /// Abort the release in flight: traffic goes back to the stable version.
    Abort(RolloutArgs),
    /// Start an aborted release again.
    Retry(RolloutArgs),
    /// Pause a rollout (spec.paused): no step advances until it is resumed.
    Pause(RolloutArgs),
    /// Resume a rollout paused with `pause`.
    Resume(RolloutArgs),
    /// Roll back to the pod template of an earlier revision (default: the previous one).
    Undo(UndoArgs),
    /// Change part of a rollout's pod template.
    #[command(subcommand)]
    Set(SetCommand),
    /// Restart every pod of a rollout (sets spec.restartAt to now).
    Restart(RolloutArgs),
}

/// Where the cluster is and which namespace to use, for the commands on one rollout.
#[derive(Debug, Args)]
pub struct ClusterArgs {
    /// Namespace of the rollout (default: the kubeconfig context's namespace, else `default`).
    #[arg(long, short = 'n')]
    pub namespace: Option<String>,
    /// Path of the kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or in-cluster).
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context to use (default: the current context).
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
    /// How long one request to the API server may take (connect, send, answer) before the
    /// command fails, as kubectl's `--request-timeout`; `0` waits for ever.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_timeout)]
    pub request_timeout: std::time::Duration,
}

/// One rollout, and how to reach its cluster.
#[derive(Debug, Args)]
pub struct RolloutArgs {
    /// Name of the Rollout.
    pub name: String,
    /// The cluster and namespace.
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// `rollgate status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The rollout.
    #[command(flatten)]
    pub rollout: RolloutArgs,
    /// Longest wait, e.g. `10m`, `90s` (default 10m).
    #[arg(long, default_value = "10m", value_parser = parse_timeout)]
    pub timeout: std::time::Duration,
}

fn parse_timeout(text: &str) -> Result<std::time::Duration, String> {
    rollgate_api::duration::parse(text).map_err(|e| e.to_string())
}

/// `rollgate lint`.
#[derive(Debug, Args)]
pub struct LintArgs {
    /// Files to check (Rollouts, AnalysisTemplates, and the Services and HTTPRoutes they name).
    #[arg(short = 'f', long = "filename", required = true, num_args = 1..)]
    pub files: Vec<PathBuf>,
    /// Also fail (exit 1) when a Rollout names a Service, analysis template or HTTPRoute that
    /// is not in the files (without it that is a warning, exit 0).
    #[arg(long)]
    pub strict: bool,
}

/// `rollgate simulate FILE...`.
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Scenario files (see `scenarios/`).
    #[arg(required = true, num_args = 1..)]
    pub files: Vec<PathBuf>,
    /// Print only the outcome and the expectations, not the timeline.
    #[arg(short, long)]
    pub quiet: bool,
}

/// `rollgate list ...`.
#[derive(Debug, Subcommand)]
pub enum ListCommand {
    /// Rollouts of a namespace (or of all with -A): phase, step, weights, ready pods, message.
    Rollouts(ListArgs),
}

/// `rollgate get ...`.
#[derive(Debug, Subcommand)]
pub enum GetCommand {
    /// A rollout: phase, step, weights, images, replicas, and the tree of its revisions,
    /// ReplicaSets, pods and AnalysisRuns (with their last measurements).
    Rollout(GetRolloutArgs),
}

/// `rollgate get rollout`.
#[derive(Debug, Args)]
pub struct GetRolloutArgs {
    /// The rollout.
    #[command(flatten)]
    pub rollout: RolloutArgs,
    /// Redraw whenever something changes (Ctrl-C stops).
    #[arg(long, short = 'w')]
    pub watch: bool,
    /// With --watch: stop after this long, e.g. `5m` (default: never).
    #[arg(long, value_parser = parse_timeout)]
    pub timeout: Option<std::time::Duration>,
}

/// `rollgate list rollouts`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Every namespace.
    #[arg(long, short = 'A')]
    pub all_namespaces: bool,
    /// The cluster and namespace.
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// `rollgate promote`.
#[derive(Debug, Args)]
pub struct PromoteArgs {
    /// The rollout.
    #[command(flatten)]
    pub rollout: RolloutArgs,
    /// Skip every remaining step, pause and analysis (status.promoteFull).
    #[arg(long)]
    pub full: bool,
}

/// `rollgate undo`.
#[derive(Debug, Args)]
pub struct UndoArgs {
    /// The rollout.
    #[command(flatten)]
    pub rollout: RolloutArgs,
    /// Revision to go back to (see the `rollgate.dev/revision` annotation of its ReplicaSets).
    #[arg(long, value_name = "N")]
    pub to_revision: Option<i64>,
}

/// `rollgate set ...`.
#[derive(Debug, Subcommand)]
pub enum SetCommand {
    /// Set the image of containers (or init containers): a new revision.
    Image(SetImageArgs),
}

/// `rollgate set image`.
#[derive(Debug, Args)]
pub struct SetImageArgs {
    /// The rollout.
    #[command(flatten)]
    pub rollout: RolloutArgs,
    /// New images, as CONTAINER=IMAGE.
    #[arg(required = true, value_name = "CONTAINER=IMAGE")]
    pub images: Vec<ContainerImage>,
}

/// `rollgate crds`.
#[derive(Debug, Args)]
pub struct CrdsArgs {
    /// Write one file per CRD into this directory instead of printing them.
    #[arg(long)]
    pub out_dir: Option<PathBuf>,
}

/// `rollgate controller`: the flags of the `rollgate-controller` binary, defined once in
/// the controller library.
pub use rollgate_controller::ControllerArgs;

/// `rollgate demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Also print the controller's own log lines.
    #[arg(long)]
    pub verbose: bool,
    /// Which release strategy to show.
    #[arg(long, value_enum, default_value_t = DemoStrategy::BlueGreen)]
    pub strategy: DemoStrategy,
}

/// `rollgate dev`.
#[derive(Debug, Args)]
pub struct DevArgs {
    /// Where to serve the cluster's API: a loopback address (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub addr: std::net::SocketAddr,
    /// Where to write the kubeconfig for the cluster (context `rollgate-dev`).
    #[arg(long, value_name = "PATH", default_value = "rollgate-dev.kubeconfig")]
    pub kubeconfig: PathBuf,
    /// How long a new pod takes to become ready, e.g. `3s`, `500ms`.
    #[arg(long, default_value = "3s", value_parser = parse_timeout)]
    pub ready_delay: std::time::Duration,
}

/// Strategies `rollgate demo` can show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DemoStrategy {
    /// Blue/green, in real time: preview beside active, promotion, automatic abort, and an
    /// alert inside a guard window (real Prometheus and Alertmanager when installed).
    #[value(name = "bluegreen", alias = "blue-green")]
    BlueGreen,
    /// Canary: steps moving traffic by replica ratio, promotion, automatic abort.
    Canary,
    /// A promotion pipeline, staging -> production, in virtual time: verification, soak, an
    /// approval, production's canary; a release failing in production is rolled back there,
    /// marked Bad and never promoted again.
    Pipeline,
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

    fn parse(args: &[&str]) -> Command {
        parse_from(args.iter().map(OsString::from).collect()).command
    }

    #[test]
    fn promote_takes_full_and_cluster_options_after_the_name() {
        let Command::Promote(a) = parse(&[
            "rollgate",
            "promote",
            "web",
            "--full",
            "-n",
            "shop",
            "--kubeconfig",
            "/tmp/kc",
            "--context",
            "prod",
        ]) else {
            panic!("promote expected");
        };
        assert!(a.full);
        assert_eq!(a.rollout.name, "web");
        assert_eq!(a.rollout.cluster.namespace.as_deref(), Some("shop"));
        assert_eq!(a.rollout.cluster.kubeconfig, Some(PathBuf::from("/tmp/kc")));
        assert_eq!(a.rollout.cluster.context.as_deref(), Some("prod"));

        let Command::Promote(a) = parse(&["rollgate", "promote", "web"]) else {
            panic!("promote expected");
        };
        assert!(!a.full);
        assert_eq!(a.rollout.cluster.namespace, None);
    }

    #[test]
    fn undo_and_set_image_arguments() {
        let Command::Undo(a) = parse(&["rollgate", "undo", "web", "--to-revision", "3"]) else {
            panic!("undo expected");
        };
        assert_eq!(a.to_revision, Some(3));
        let Command::Set(SetCommand::Image(a)) = parse(&[
            "rollgate",
            "set",
            "image",
            "web",
            "web=web:2",
            "proxy=envoy:1",
        ]) else {
            panic!("set image expected");
        };
        let images: Vec<String> = a.images.iter().map(ToString::to_string).collect();
        assert_eq!(images, ["web=web:2", "proxy=envoy:1"]);
    }

    #[test]
    fn set_image_rejects_arguments_without_an_equals_sign() {
        let args: Vec<OsString> = ["rollgate", "set", "image", "web", "web:2"]
            .iter()
            .map(OsString::from)
            .collect();
        let err = Cli::try_parse_from(args).expect_err("invalid");
        assert!(err.to_string().contains("CONTAINER=IMAGE"), "{err}");
        let args: Vec<OsString> = ["rollgate", "set", "image", "web"]
            .iter()
            .map(OsString::from)
            .collect();
        assert!(Cli::try_parse_from(args).is_err());
    }

    #[test]
    fn dev_defaults_and_options() {
        let Command::Dev(a) = parse(&["rollgate", "dev"]) else {
            panic!("dev expected");
        };
        assert_eq!(a.addr, "127.0.0.1:0".parse().expect("addr"));
        assert_eq!(a.kubeconfig, PathBuf::from("rollgate-dev.kubeconfig"));
        assert_eq!(a.ready_delay, std::time::Duration::from_secs(3));
        let Command::Dev(a) = parse(&[
            "rollgate",
            "dev",
            "--addr",
            "127.0.0.1:8001",
            "--kubeconfig",
            "/tmp/dev.kubeconfig",
            "--ready-delay",
            "500ms",
        ]) else {
            panic!("dev expected");
        };
        assert_eq!(a.addr.port(), 8001);
        assert_eq!(a.kubeconfig, PathBuf::from("/tmp/dev.kubeconfig"));
        assert_eq!(a.ready_delay, std::time::Duration::from_millis(500));
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
