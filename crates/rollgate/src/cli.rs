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
    /// Wait until a rollout is Healthy (exit 0) or Degraded (exit 1), or the timeout (exit 2);
    /// `status release R --stage S`: until a release is Verified in a stage (exit 0), Bad or
    /// failed there (exit 1), or the timeout (exit 2).
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
    /// With --pipeline: promote a release of a promotion pipeline into a stage now (creates an
    /// Approval with decision Promote).
    Promote(PromoteArgs),
    /// Approve a release for a stage of its promotion pipeline (creates an Approval).
    Approve(DecideArgs),
    /// Reject a release for a stage of its promotion pipeline: it is never promoted there
    /// (creates an Approval).
    Reject(DecideArgs),
    /// Control a promotion pipeline.
    #[command(subcommand)]
    Pipeline(PipelineCommand),
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
    /// Namespace of the rollout, pipeline or release (default: the kubeconfig context's
    /// namespace, else `default`).
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

/// `rollgate status NAME` (a rollout) or `rollgate status release R --stage S`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct StatusArgs {
    /// Name of the Rollout.
    #[arg(required = true)]
    pub name: Option<String>,
    /// The cluster and namespace.
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Longest wait, e.g. `10m`, `90s` (default 10m).
    #[arg(long, default_value = "10m", value_parser = parse_timeout)]
    pub timeout: std::time::Duration,
    /// What else to wait for.
    #[command(subcommand)]
    pub of: Option<StatusCommand>,
}

/// `rollgate status ...` on something other than a rollout.
#[derive(Debug, Subcommand)]
pub enum StatusCommand {
    /// Wait until a release is Verified in a stage (exit 0), is Bad or Failed/RolledBack there
    /// (exit 1, with the reason), or the timeout passes (exit 2, with the phase and message
    /// last seen).
    Release(StatusReleaseArgs),
}

/// `rollgate status release`.
#[derive(Debug, Args)]
pub struct StatusReleaseArgs {
    /// Name of the Release.
    pub release: String,
    /// The stage of its pipeline to wait for.
    #[arg(long)]
    pub stage: String,
    /// Longest wait, e.g. `1h`, `30m` (default 1h).
    #[arg(long, default_value = "1h", value_parser = parse_timeout)]
    pub timeout: std::time::Duration,
    /// The cluster and namespace.
    #[command(flatten)]
    pub cluster: ClusterArgs,
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
    /// Releases of promotion pipelines, newest first: number, pipeline, verdict, phase per
    /// stage, age.
    Releases(ListReleasesArgs),
}

/// `rollgate list releases`.
#[derive(Debug, Args)]
pub struct ListReleasesArgs {
    /// Only the releases of this pipeline.
    #[arg(long, value_name = "NAME")]
    pub pipeline: Option<String>,
    /// The cluster and namespace.
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// `rollgate get ...`.
#[derive(Debug, Subcommand)]
pub enum GetCommand {
    /// A rollout: phase, step, weights, images, replicas, and the tree of its revisions,
    /// ReplicaSets, pods and AnalysisRuns (with their last measurements).
    Rollout(GetRolloutArgs),
    /// A promotion pipeline: per stage its Rollout, reachability, hold, current and last good
    /// release; then the newest releases with their verdict and phase per stage.
    Pipeline(GetPipelineArgs),
}

/// `rollgate get pipeline`.
#[derive(Debug, Args)]
pub struct GetPipelineArgs {
    /// The pipeline.
    #[command(flatten)]
    pub pipeline: PipelineArgs,
    /// Show every release (default: the 5 newest).
    #[arg(long)]
    pub all: bool,
}

/// One promotion pipeline, and how to reach its cluster.
#[derive(Debug, Args)]
pub struct PipelineArgs {
    /// Name of the PromotionPipeline.
    pub name: String,
    /// The cluster and namespace.
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// `rollgate pipeline ...`.
#[derive(Debug, Subcommand)]
pub enum PipelineCommand {
    /// Stop the line (spec.paused): nothing is promoted anywhere until it is resumed.
    Pause(PipelineArgs),
    /// Resume a pipeline paused with `pipeline pause`.
    Resume(PipelineArgs),
}

/// `rollgate approve|reject`.
#[derive(Debug, Args)]
pub struct DecideArgs {
    /// Name of the Release.
    pub release: String,
    /// The stage of its pipeline the decision is for.
    #[arg(long)]
    pub stage: String,
    /// A comment recorded with the decision.
    #[arg(short = 'm', long = "message", value_name = "TEXT")]
    pub comment: Option<String>,
    /// Who decides (default: the user of the kubeconfig context).
    #[arg(long, value_name = "NAME")]
    pub approver: Option<String>,
    /// The cluster and namespace.
    #[command(flatten)]
    pub cluster: ClusterArgs,
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

/// `rollgate promote NAME` (a rollout) or `rollgate promote --pipeline P --release R --stage S`.
#[derive(Debug, Args)]
pub struct PromoteArgs {
    /// Name of the Rollout (not with --pipeline).
    #[arg(required_unless_present = "pipeline", conflicts_with = "pipeline")]
    pub name: Option<String>,
    /// The cluster and namespace.
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Skip every remaining step, pause and analysis (status.promoteFull).
    #[arg(long, conflicts_with = "pipeline")]
    pub full: bool,
    /// Promote a release of this PromotionPipeline (with --release and --stage) instead of
    /// a rollout's step.
    #[arg(long, value_name = "NAME", requires_all = ["release", "stage"])]
    pub pipeline: Option<String>,
    /// With --pipeline: the Release to promote.
    #[arg(long, value_name = "NAME", requires = "pipeline")]
    pub release: Option<String>,
    /// With --pipeline: the stage to promote it into.
    #[arg(long, value_name = "NAME", requires = "pipeline")]
    pub stage: Option<String>,
    /// With --pipeline: a comment recorded with the decision.
    #[arg(
        short = 'm',
        long = "message",
        value_name = "TEXT",
        requires = "pipeline"
    )]
    pub comment: Option<String>,
    /// With --pipeline: who decides (default: the user of the kubeconfig context).
    #[arg(long, value_name = "NAME", requires = "pipeline")]
    pub approver: Option<String>,
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
        assert_eq!(a.name.as_deref(), Some("web"));
        assert_eq!(a.pipeline, None);
        assert_eq!(a.cluster.namespace.as_deref(), Some("shop"));
        assert_eq!(a.cluster.kubeconfig, Some(PathBuf::from("/tmp/kc")));
        assert_eq!(a.cluster.context.as_deref(), Some("prod"));

        let Command::Promote(a) = parse(&["rollgate", "promote", "web"]) else {
            panic!("promote expected");
        };
        assert!(!a.full);
        assert_eq!(a.cluster.namespace, None);
    }

    fn try_parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(args.iter().map(OsString::from))
    }

    #[test]
    fn promote_with_pipeline_needs_release_and_stage_and_no_rollout() {
        let Command::Promote(a) = parse(&[
            "rollgate",
            "promote",
            "--pipeline",
            "web",
            "--release",
            "web-7",
            "--stage",
            "production",
            "-m",
            "hotfix",
        ]) else {
            panic!("promote expected");
        };
        assert_eq!(a.name, None);
        assert_eq!(a.pipeline.as_deref(), Some("web"));
        assert_eq!(a.release.as_deref(), Some("web-7"));
        assert_eq!(a.stage.as_deref(), Some("production"));
        assert_eq!(a.comment.as_deref(), Some("hotfix"));
        for bad in [
            &["rollgate", "promote"][..],
            &[
                "rollgate",
                "promote",
                "--pipeline",
                "web",
                "--release",
                "web-7",
            ],
            &[
                "rollgate",
                "promote",
                "--pipeline",
                "web",
                "--stage",
                "production",
            ],
            &[
                "rollgate",
                "promote",
                "web",
                "--pipeline",
                "web",
                "--release",
                "r",
                "--stage",
                "s",
            ],
            &[
                "rollgate",
                "promote",
                "--full",
                "--pipeline",
                "web",
                "--release",
                "r",
                "--stage",
                "s",
            ],
            &["rollgate", "promote", "web", "--release", "web-7"],
        ] {
            assert!(try_parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn status_takes_a_rollout_or_the_release_subcommand() {
        let Command::Status(a) = parse(&["rollgate", "status", "web", "--timeout", "90s"]) else {
            panic!("status expected");
        };
        assert_eq!(a.name.as_deref(), Some("web"));
        assert_eq!(a.timeout, std::time::Duration::from_secs(90));
        assert!(a.of.is_none());
        let Command::Status(a) = parse(&[
            "rollgate",
            "status",
            "release",
            "web-7",
            "--stage",
            "production",
            "-n",
            "shop",
        ]) else {
            panic!("status expected");
        };
        let Some(StatusCommand::Release(r)) = a.of else {
            panic!("status release expected");
        };
        assert_eq!(r.release, "web-7");
        assert_eq!(r.stage, "production");
        assert_eq!(r.timeout, std::time::Duration::from_secs(3600));
        assert_eq!(r.cluster.namespace.as_deref(), Some("shop"));
        assert!(try_parse(&["rollgate", "status"]).is_err());
        assert!(try_parse(&["rollgate", "status", "release", "web-7"]).is_err());
    }

    #[test]
    fn approve_reject_pipeline_and_listing_arguments() {
        let Command::Approve(a) = parse(&[
            "rollgate",
            "approve",
            "web-7",
            "--stage",
            "production",
            "-m",
            "ok",
        ]) else {
            panic!("approve expected");
        };
        assert_eq!(
            (a.release.as_str(), a.stage.as_str()),
            ("web-7", "production")
        );
        assert_eq!(a.comment.as_deref(), Some("ok"));
        assert_eq!(a.approver, None);
        let Command::Reject(a) = parse(&[
            "rollgate",
            "reject",
            "web-7",
            "--stage",
            "staging",
            "--approver",
            "bob",
        ]) else {
            panic!("reject expected");
        };
        assert_eq!(a.approver.as_deref(), Some("bob"));
        assert!(try_parse(&["rollgate", "approve", "web-7"]).is_err());
        let Command::Pipeline(PipelineCommand::Pause(p)) =
            parse(&["rollgate", "pipeline", "pause", "web"])
        else {
            panic!("pipeline pause expected");
        };
        assert_eq!(p.name, "web");
        let Command::Get(GetCommand::Pipeline(g)) =
            parse(&["rollgate", "get", "pipeline", "web", "--all"])
        else {
            panic!("get pipeline expected");
        };
        assert!(g.all);
        let Command::List(ListCommand::Releases(l)) =
            parse(&["rollgate", "list", "releases", "--pipeline", "web"])
        else {
            panic!("list releases expected");
        };
        assert_eq!(l.pipeline.as_deref(), Some("web"));
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
