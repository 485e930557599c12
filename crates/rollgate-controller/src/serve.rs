//! The controller as a process: the one implementation behind the `rollgate-controller`
//! binary (what `manifests/controller.yaml` deploys) and the `rollgate controller` subcommand.
//!
//! Both binaries parse [`ControllerArgs`], set up logging and a tokio runtime, and call
//! [`serve_until_signal`]: it listens for SIGINT and SIGTERM, connects with the kubeconfig
//! (or the in-cluster service account), serves `/metrics`, `/healthz` and `/readyz`, and runs
//! the controller, with or without leader election, until a signal arrives. Then the
//! reconciles in flight finish, the leader releases its Lease so another replica takes over
//! at once, and the function returns `Ok`.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use kube::Client;
use tokio::sync::oneshot;
use tracing::{info, warn};

use crate::error::Error;
use crate::leader::{LeaderSettings, run_elected};
use crate::run::{Config, run};

/// The controller's command-line flags.
///
/// The clap definition lives here, in the library, rather than in each binary: both
/// `rollgate-controller` and `rollgate controller` flatten this one struct, so their flags and
/// defaults cannot drift apart. (This is why the library depends on clap; it is a small,
/// runtime-free dependency that the binaries need anyway.)
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct ControllerArgs {
    /// Only manage Rollouts in this namespace (default: all namespaces).
    #[arg(long, short = 'n')]
    pub namespace: Option<String>,
    /// Log as JSON lines.
    #[arg(long)]
    pub json_logs: bool,
    /// Where to serve /metrics, /healthz and /readyz.
    #[arg(long, default_value = "0.0.0.0:8080")]
    pub metrics_addr: SocketAddr,
    /// Reconcile only while holding the leader Lease (run several replicas safely).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1,
          default_missing_value = "true")]
    pub leader_elect: bool,
    /// Namespace of the leader Lease (default: $POD_NAMESPACE, else `default`).
    #[arg(long)]
    pub lease_namespace: Option<String>,
    /// Seconds a leader's claim lasts after its last renewal.
    #[arg(long, default_value_t = 15)]
    pub lease_duration: u64,
    /// Seconds before the end of its claim at which the leader renews it (less than
    /// --lease-duration).
    #[arg(long, default_value_t = 5)]
    pub lease_grace: u64,
    /// Serve an Alertmanager webhook receiver (POST, payload version 4) on this address: a
    /// delivered firing alert wakes the rollouts whose `spec.alerts` it matches at once.
    #[arg(long, requires = "alert_receiver_token_file")]
    pub alert_receiver_addr: Option<SocketAddr>,
    /// File holding the bearer token Alertmanager must send to the receiver (a mounted
    /// Secret); required with --alert-receiver-addr.
    #[arg(long)]
    pub alert_receiver_token_file: Option<std::path::PathBuf>,
}

/// Why the controller process could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The lease timing flags contradict each other.
    #[error("--lease-grace ({grace}) must be less than --lease-duration ({duration})")]
    LeaseTiming {
        /// `--lease-grace`.
        grace: u64,
        /// `--lease-duration`.
        duration: u64,
    },
    /// The signal handlers could not be installed.
    #[error("listening for SIGINT and SIGTERM: {0}")]
    Signals(#[source] std::io::Error),
    /// No client could be built from the kubeconfig or the in-cluster environment.
    #[error("connecting to Kubernetes (kubeconfig or in-cluster service account): {0}")]
    Connect(#[source] kube::Error),
    /// The HTTP endpoints could not be served.
    #[error("serving /metrics on {addr}: {source}")]
    Telemetry {
        /// `--metrics-addr`.
        addr: SocketAddr,
        /// The bind error.
        #[source]
        source: std::io::Error,
    },
    /// The webhook receiver's token could not be read, or its address not bound.
    #[error("alert receiver: {0}")]
    AlertReceiver(String),
    /// The controller (or its leader election) stopped with an error.
    #[error(transparent)]
    Controller(#[from] Error),
}

/// This replica's identity: `CONTROLLER_POD_NAME` (the pod name), else the host name and the
/// process id. `env` looks a variable up (the process environment in [`serve`]).
pub fn instance_identity(env: impl Fn(&str) -> Option<String>) -> String {
    env("CONTROLLER_POD_NAME").unwrap_or_else(|| {
        let host = env("HOSTNAME").unwrap_or_else(|| "rollgate".into());
        format!("{host}-{}", std::process::id())
    })
}

/// The leader election settings the flags ask for; `None` when leader election is off.
/// `env` looks a variable up (`POD_NAMESPACE` is the Lease's default namespace).
pub fn leader_settings(
    args: &ControllerArgs,
    identity: &str,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Option<LeaderSettings>, ServeError> {
    if !args.leader_elect {
        return Ok(None);
    }
    if args.lease_grace >= args.lease_duration {
        return Err(ServeError::LeaseTiming {
            grace: args.lease_grace,
            duration: args.lease_duration,
        });
    }
    let namespace = args
        .lease_namespace
        .clone()
        .or_else(|| env("POD_NAMESPACE"))
        .unwrap_or_else(|| "default".into());
    Ok(Some(LeaderSettings {
        duration_secs: args.lease_duration,
        grace_secs: args.lease_grace,
        ..LeaderSettings::new(identity, namespace)
    }))
}

/// Binds the webhook receiver on `addr` with the token of --alert-receiver-token-file and
/// returns the inbox of what it receives.
async fn serve_alert_receiver(
    args: &ControllerArgs,
    addr: SocketAddr,
    leading: Option<std::sync::Arc<crate::telemetry::Telemetry>>,
) -> Result<crate::run::AlertInbox, ServeError> {
    let path = args.alert_receiver_token_file.as_ref().ok_or_else(|| {
        ServeError::AlertReceiver("--alert-receiver-token-file is required".into())
    })?;
    let mut receiver = crate::alert_receiver::ReceiverConfig::from_token_file(path)
        .map_err(|e| ServeError::AlertReceiver(e.to_string()))?;
    // With leader election, only the leader's controller acts on deliveries: a standby
    // answers 503 and Alertmanager retries (through the Service, reaching the leader).
    if let Some(telemetry) = leading {
        receiver = receiver.only_while(move || telemetry.is_leader());
    }
    let (tx, rx) = tokio::sync::mpsc::channel(1024);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| ServeError::AlertReceiver(format!("binding {addr}: {e}")))?;
    let bound = listener
        .local_addr()
        .map_err(|e| ServeError::AlertReceiver(e.to_string()))?;
    let app = crate::alert_receiver::router(receiver, tx);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    info!(addr = %bound, "Alertmanager webhook receiver listening");
    Ok(std::sync::Arc::new(tokio::sync::Mutex::new(rx)))
}

/// How long reconciles in flight may take to finish after the shutdown without leader
/// election (an elected leader stops at the end of its claim at the latest). Kubernetes waits
/// 30 s (`terminationGracePeriodSeconds`) before it kills the pod.
pub const DRAIN_LIMIT: Duration = Duration::from_secs(10);

/// Runs the controller on `client` as `args` say until `shutdown` completes; then lets the
/// reconciles in flight finish (for at most [`DRAIN_LIMIT`], or until the end of the claim
/// when elected) and, when elected, releases the Lease.
pub async fn serve(
    client: Client,
    args: &ControllerArgs,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    serve_with(client, args, shutdown, DRAIN_LIMIT).await
}

/// [`serve`] with another drain limit.
async fn serve_with(
    client: Client,
    args: &ControllerArgs,
    shutdown: impl Future<Output = ()> + Send + 'static,
    drain_limit: Duration,
) -> Result<(), ServeError> {
    let env = |name: &str| std::env::var(name).ok();
    let mut config = Config {
        namespace: args.namespace.clone(),
        instance: instance_identity(env),
        ..Default::default()
    };
    let elected = leader_settings(args, &config.instance, env)?;
    if let Some(addr) = args.alert_receiver_addr {
        let leading = elected.as_ref().map(|_| config.telemetry.clone());
        config.alert_deliveries = Some(serve_alert_receiver(args, addr, leading).await?);
    }
    let (bound, _http) = crate::telemetry::serve(args.metrics_addr, config.telemetry.clone())
        .await
        .map_err(|source| ServeError::Telemetry {
            addr: args.metrics_addr,
            source,
        })?;
    info!(namespace = ?config.namespace, http = %bound,
        "rollgate controller starting (/metrics, /healthz, /readyz)");
    match elected {
        None => {
            // `run` wants a `Sync` shutdown future (a signal listener need not be one), and
            // its graceful shutdown waits for a first complete list of the Rollouts, which
            // may never come (API server unreachable, CRD missing): hence the relay and the
            // limit.
            let (stop, stopped) = oneshot::channel::<()>();
            let telemetry = config.telemetry.clone();
            let controller = run(client, config, async move {
                let _ = stopped.await;
            });
            tokio::pin!(controller);
            tokio::select! {
                result = &mut controller => result?,
                () = shutdown => {
                    let _ = stop.send(());
                    let until = tokio::time::Instant::now() + drain_limit;
                    if !crate::telemetry::drain(&mut controller, &telemetry, until).await {
                        warn!(limit = ?drain_limit,
                            "reconciles still in flight at the drain limit: stopped without them");
                    }
                }
            }
        }
        Some(settings) => {
            info!(lease = %format!("{}/{}", settings.namespace, settings.lease_name),
                identity = %settings.identity, "leader election on");
            run_elected(client, config, settings, shutdown).await?;
        }
    }
    info!("rollgate controller stopped");
    Ok(())
}

/// [`serve`] with the default client (kubeconfig, else in-cluster service account), until
/// SIGINT or SIGTERM. The signal handlers are installed before anything else, so a signal
/// sent while the controller starts stops it cleanly too.
pub async fn serve_until_signal(args: &ControllerArgs) -> Result<(), ServeError> {
    let signal = shutdown_signal().map_err(ServeError::Signals)?;
    let client = Client::try_default().await.map_err(ServeError::Connect)?;
    serve(client, args, signal).await
}

/// Installs handlers for SIGINT and SIGTERM (Ctrl-C where there are no Unix signals) and
/// returns a future that completes at the first of them. Must be called inside a tokio
/// runtime; from then on these signals no longer kill the process.
pub fn shutdown_signal() -> std::io::Result<impl Future<Output = ()> + Send + 'static> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        Ok(async move {
            let name = tokio::select! {
                _ = interrupt.recv() => "SIGINT",
                _ = terminate.recv() => "SIGTERM",
            };
            info!(
                signal = name,
                "shutting down: finishing reconciles in flight"
            );
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
            info!(
                signal = "Ctrl-C",
                "shutting down: finishing reconciles in flight"
            );
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: ControllerArgs,
    }

    fn parse(argv: &[&str]) -> ControllerArgs {
        let argv = std::iter::once("rollgate-controller").chain(argv.iter().copied());
        match Cli::try_parse_from(argv) {
            Ok(cli) => cli.args,
            Err(e) => panic!("{e}"),
        }
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn defaults_elect_a_leader_in_the_pod_namespace() {
        let args = parse(&[]);
        assert!(args.leader_elect);
        assert_eq!(args.metrics_addr, "0.0.0.0:8080".parse().expect("addr"));
        let env = |name: &str| (name == "POD_NAMESPACE").then(|| "rollgate-system".to_string());
        let settings = leader_settings(&args, "pod-a", env)
            .expect("valid")
            .expect("elected");
        assert_eq!(settings.namespace, "rollgate-system");
        assert_eq!(settings.identity, "pod-a");
        assert_eq!((settings.duration_secs, settings.grace_secs), (15, 5));
        let settings = leader_settings(&args, "pod-a", no_env)
            .expect("valid")
            .expect("elected");
        assert_eq!(settings.namespace, "default");
    }

    #[test]
    fn flags_set_the_lease_or_turn_election_off() {
        let args = parse(&[
            "--lease-namespace",
            "ops",
            "--lease-duration",
            "4",
            "--lease-grace",
            "1",
        ]);
        let env = |_: &str| Some("ignored".to_string());
        let settings = leader_settings(&args, "a", env)
            .expect("valid")
            .expect("elected");
        assert_eq!(settings.namespace, "ops");
        assert_eq!((settings.duration_secs, settings.grace_secs), (4, 1));
        for off in [&["--leader-elect=false"][..], &["--leader-elect", "false"]] {
            let args = parse(off);
            assert!(!args.leader_elect, "{off:?}");
            assert!(matches!(leader_settings(&args, "a", no_env), Ok(None)));
        }
        assert!(parse(&["--leader-elect"]).leader_elect);
    }

    #[test]
    fn a_grace_not_below_the_duration_is_refused() {
        let args = parse(&["--lease-duration", "5", "--lease-grace", "5"]);
        let err = leader_settings(&args, "a", no_env).expect_err("grace == duration");
        assert_eq!(
            err.to_string(),
            "--lease-grace (5) must be less than --lease-duration (5)"
        );
        // Without election the timing does not matter.
        let args = parse(&[
            "--leader-elect=false",
            "--lease-duration",
            "5",
            "--lease-grace",
            "9",
        ]);
        assert!(matches!(leader_settings(&args, "a", no_env), Ok(None)));
    }

    #[test]
    fn the_identity_is_the_pod_name_else_host_and_pid() {
        let pod = |name: &str| (name == "CONTROLLER_POD_NAME").then(|| "pod-7".to_string());
        assert_eq!(instance_identity(pod), "pod-7");
        let host = |name: &str| (name == "HOSTNAME").then(|| "node".to_string());
        assert_eq!(
            instance_identity(host),
            format!("node-{}", std::process::id())
        );
        assert_eq!(
            instance_identity(no_env),
            format!("rollgate-{}", std::process::id())
        );
    }

    fn local(extra: &[&str]) -> ControllerArgs {
        let mut argv = vec!["--metrics-addr", "127.0.0.1:0"];
        argv.extend_from_slice(extra);
        parse(&argv)
    }

    async fn holder(client: &Client) -> Option<String> {
        kube::Api::<k8s_openapi::api::coordination::v1::Lease>::namespaced(
            client.clone(),
            "default",
        )
        .get_opt("rollgate-controller")
        .await
        .ok()
        .flatten()
        .and_then(|l| l.spec?.holder_identity)
    }

    /// A simulated cluster, with rollgate's CRDs or without.
    async fn cluster(crds: bool) -> rollgate_sim::SimCluster {
        let sim = rollgate_sim::SimCluster::new(rollgate_sim::SimConfig::default());
        if crds {
            let api = kube::Api::<
                k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
            >::all(sim.client());
            for crd in rollgate_api::crds::all() {
                if let Err(e) = api.create(&Default::default(), &crd).await {
                    panic!("installing {:?}: {e}", crd.metadata.name);
                }
            }
        }
        sim
    }

    /// Serves without election until shut down after 300 ms; how long the stop took.
    async fn stop_unelected(sim: &rollgate_sim::SimCluster, drain_limit: Duration) -> Duration {
        let (stop, stopped) = oneshot::channel::<()>();
        let args = local(&["--leader-elect=false"]);
        let serving = tokio::spawn({
            let client = sim.client();
            async move {
                serve_with(
                    client,
                    &args,
                    async move {
                        let _ = stopped.await;
                    },
                    drain_limit,
                )
                .await
            }
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!serving.is_finished(), "runs until shut down");
        let _ = stop.send(());
        let asked = tokio::time::Instant::now();
        let done = tokio::time::timeout(Duration::from_secs(20), serving)
            .await
            .expect("stopped")
            .expect("task");
        assert!(done.is_ok(), "{done:?}");
        assert_eq!(
            holder(&sim.client()).await,
            None,
            "no Lease without election"
        );
        asked.elapsed()
    }

    #[tokio::test]
    async fn without_election_it_stops_gracefully_when_shutdown_completes() {
        let sim = cluster(true).await;
        let took = stop_unelected(&sim, Duration::from_secs(30)).await;
        assert!(took < Duration::from_secs(5), "graceful stop took {took:?}");
    }

    #[tokio::test]
    async fn a_controller_that_never_listed_its_rollouts_stops_at_the_drain_limit() {
        // No CRDs: the Rollout list fails for ever, and kube-runtime's graceful stop waits for
        // it (without the limit, this test times out).
        let sim = cluster(false).await;
        let took = stop_unelected(&sim, Duration::from_secs(1)).await;
        assert!(took < Duration::from_secs(5), "stopped after {took:?}");
    }

    #[tokio::test]
    async fn an_elected_leader_releases_the_lease_on_shutdown() {
        let sim = rollgate_sim::SimConfig::default();
        let sim = rollgate_sim::SimCluster::new(sim);
        let identity = instance_identity(|name| std::env::var(name).ok());
        let (stop, stopped) = oneshot::channel::<()>();
        let args = local(&[
            "--lease-namespace",
            "default",
            "--lease-duration",
            "4",
            "--lease-grace",
            "1",
        ]);
        let serving = tokio::spawn({
            let client = sim.client();
            async move {
                serve(client, &args, async move {
                    let _ = stopped.await;
                })
                .await
            }
        });
        let client = sim.client();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while holder(&client).await.as_deref() != Some(identity.as_str()) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{identity} never took the Lease"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = stop.send(());
        let done = tokio::time::timeout(Duration::from_secs(10), serving)
            .await
            .expect("stopped in time")
            .expect("task");
        assert!(done.is_ok(), "{done:?}");
        assert_eq!(holder(&client).await, None, "released");
    }
}
