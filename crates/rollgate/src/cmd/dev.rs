//! `rollgate dev`: a local development cluster for kubectl.
//!
//! The simulated cluster (with rollgate's CRDs and an HTTPRoute CRD installed) is served over
//! plain HTTP on a loopback address, the real controller runs inside it in real time and
//! measures analyses against the Prometheus servers the AnalysisTemplates name, and a
//! kubeconfig for it is written. Everything lives in memory until SIGINT or SIGTERM.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use rollgate_controller::metrics_source::PrometheusSource;
use rollgate_local::Stack;
use rollgate_local::kubeconfig::Kubeconfig;
use rollgate_sim::SimConfig;
use tracing_subscriber::EnvFilter;

use crate::cli::DevArgs;

/// Name of the kubeconfig's context, cluster and user, and of the controller instance.
const NAME: &str = "rollgate-dev";

/// How long the controller may take to finish its reconciles once asked to stop.
const STOP_GRACE: Duration = Duration::from_secs(15);

/// Runs the dev cluster until SIGINT or SIGTERM.
pub fn run(args: &DevArgs) -> anyhow::Result<()> {
    if !args.addr.ip().is_loopback() {
        bail!(
            "--addr {}: expected a loopback address such as 127.0.0.1:0 (the simulated cluster has no authentication)",
            args.addr
        );
    }
    // The controller's log (each rollout event) on stderr; RUST_LOG overrides.
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("warn,rollgate_controller=info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = tokio::runtime::Runtime::new().context("starting the tokio runtime")?;
    runtime.block_on(serve(args))
}

async fn serve(args: &DevArgs) -> anyhow::Result<()> {
    // Listen for signals before announcing anything: one sent right after the first line
    // must not be lost.
    let mut stop = Signals::new()?;
    let mut stack = Stack::new(SimConfig {
        default_ready_delay: args.ready_delay,
        ..Default::default()
    })
    .await
    .context("starting the simulated cluster")?;
    let (addr, server) = stack
        .sim
        .serve(args.addr)
        .await
        .with_context(|| format!("serving the simulated cluster on {}", args.addr))?;
    stack.start_controller_with(NAME, Some(Arc::new(PrometheusSource)));
    let kubeconfig = std::path::absolute(&args.kubeconfig)
        .with_context(|| format!("kubeconfig path {}", args.kubeconfig.display()))?;
    let server_url = format!("http://{addr}");
    Kubeconfig::new(NAME, &server_url)
        .write(&kubeconfig)
        .with_context(|| format!("writing the kubeconfig {}", kubeconfig.display()))?;
    print_usage(&server_url, &kubeconfig, args.ready_delay);

    let signal = stop.next().await;
    println!("rollgate dev: {signal}: stopping the controller");
    let stopped = tokio::time::timeout(STOP_GRACE, stack.stop_controllers()).await;
    server.abort();
    if stopped.is_err() {
        bail!("the controller did not stop within {STOP_GRACE:?}");
    }
    println!(
        "rollgate dev: stopped (the cluster's objects are gone; the kubeconfig {} is kept)",
        kubeconfig.display()
    );
    Ok(())
}

fn print_usage(server: &str, kubeconfig: &Path, ready_delay: Duration) {
    // The first line says the server accepts connections: the listener is bound already.
    println!("rollgate dev: simulated cluster on {server} (controller running)");
    println!("  export KUBECONFIG={}", kubeconfig.display());
    println!("  kubectl apply -f manifests/examples/canary.yaml   (the CRDs are installed)");
    println!("  kubectl get rollouts");
    println!("  kubectl rollgate get rollout NAME   (or: rollgate status NAME)");
    println!(
        "Pods become ready {ready_delay:?} after they start; analyses query the Prometheus their AnalysisTemplate names."
    );
    println!("Ctrl-C stops it.");
}

/// SIGINT and SIGTERM (Ctrl-C elsewhere).
struct Signals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    #[cfg(unix)]
    fn new() -> anyhow::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            interrupt: signal(SignalKind::interrupt()).context("listening for SIGINT")?,
            terminate: signal(SignalKind::terminate()).context("listening for SIGTERM")?,
        })
    }

    #[cfg(not(unix))]
    fn new() -> anyhow::Result<Self> {
        Ok(Self {})
    }

    /// Waits for the next signal and names it.
    #[cfg(unix)]
    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.interrupt.recv() => "SIGINT",
            _ = self.terminate.recv() => "SIGTERM",
        }
    }

    #[cfg(not(unix))]
    async fn next(&mut self) -> &'static str {
        let _ = tokio::signal::ctrl_c().await;
        "Ctrl-C"
    }
}
