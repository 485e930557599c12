//! `rollgate demo [--strategy bluegreen|canary]`: a release on an embedded simulated cluster,
//! in virtual time.
//!
//! The real controller runs against the simulated API server; pods become ready 5 s after
//! they are created, and images tagged `crashloop` never do. The demo drives the rollout as a
//! user would (apply, new image, promote) and prints what happens.

use std::time::Duration;

use anyhow::{Context, bail};
use rollgate_api::{AbortReason, Rollout, RolloutPhase};
use std::sync::Arc;

use rollgate_controller::alert_source::AlertSource;
use rollgate_controller::metrics_source::{MetricSource, PrometheusSource};
use rollgate_local::Stack;
use rollgate_local::simulated_metrics::SimulatedMetrics;
use rollgate_local::snapshot::{EventFeed, Snapshot};
use rollgate_scenario::alerts::ScenarioAlerts;
use rollgate_scenario::file::AlertEvent;
use rollgate_sim::SimConfig;
use tokio::time::Instant;

use super::demo_alerts::DemoAlerts;
use crate::cli::{DemoArgs, DemoStrategy};

const EXAMPLE: &str = include_str!("../../../../manifests/examples/bluegreen.yaml");
const SUCCESS_RATE: &str =
    include_str!("../../../../manifests/examples/analysis-template-success-rate.yaml");
const CANARY_EXAMPLE: &str = include_str!("../../../../manifests/examples/canary.yaml");
const NS: &str = "default";
const NAME: &str = "web";

/// Runs the demo on a single-threaded runtime whose clock is virtual.
pub fn run(args: &DemoArgs) -> anyhow::Result<()> {
    if args.verbose {
        tracing_subscriber::fmt()
            .with_env_filter("rollgate_controller=debug,info")
            .init();
    }
    // The canary demo runs in virtual time; the blue/green one in real time, because its
    // analysis reads a real Prometheus.
    let paused = matches!(args.strategy, DemoStrategy::Canary | DemoStrategy::Pipeline);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(paused)
        .build()
        .context("starting the tokio runtime")?;
    match args.strategy {
        DemoStrategy::BlueGreen => runtime.block_on(demo()),
        DemoStrategy::Canary => runtime.block_on(canary_demo()),
        DemoStrategy::Pipeline => runtime.block_on(crate::cmd::demo_pipeline::pipeline_demo()),
    }
}

struct Timeline {
    stack: Stack,
    start: Instant,
    last: Option<Snapshot>,
    events: EventFeed,
}

impl Timeline {
    fn clock(&self) -> String {
        let s = self.start.elapsed().as_secs();
        format!("{:02}:{:02}", s / 60, s % 60)
    }

    /// Prints every change of the rollout and every new event until `done` holds.
    async fn follow(
        &mut self,
        what: &str,
        limit: Duration,
        done: impl Fn(&Rollout, &Snapshot) -> bool,
    ) -> anyhow::Result<Snapshot> {
        let deadline = Instant::now() + limit;
        loop {
            // The rollout first: when its status is current, the snapshot (read after) is too.
            let rollout = self.stack.rollout(NS, NAME).await?;
            let snap = Snapshot::take(&self.stack.client, NS, NAME).await?;
            for e in self.events.next(&self.stack.client, NS, NAME).await? {
                let mark = if e.type_ == "Warning" { "!" } else { " " };
                println!(
                    "  {}  {mark} event {:<22} {}",
                    self.clock(),
                    e.reason,
                    e.note
                );
            }
            // A status older than the spec describes the previous generation: not worth a line.
            if self.last.as_ref() != Some(&snap)
                && snap.phase != "-"
                && current_generation(&rollout)
            {
                println!("  {}    {snap}", self.clock());
                if self.last.as_ref().map(|l| &l.message) != Some(&snap.message)
                    && !snap.message.is_empty()
                {
                    println!("  {}      message: {}", self.clock(), snap.message);
                }
                self.last = Some(snap.clone());
            }
            if done(&rollout, &snap) {
                return Ok(snap);
            }
            if Instant::now() >= deadline {
                bail!("demo step did not finish within {limit:?}: {what}");
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

impl Timeline {
    /// `rollgate promote web`, through the same code as the CLI.
    async fn promote(&self) -> anyhow::Result<()> {
        let cmd = rollgate_ctl::Command::Promote { full: false };
        let said =
            rollgate_ctl::run(&self.stack.client, NS, NAME, &cmd, self.stack.sim.now()).await?;
        println!(
            "  {}    $ kubectl rollgate promote web: {said}",
            self.clock()
        );
        Ok(())
    }
}

fn section(title: &str) {
    println!("\n== {title}");
}

fn phase(r: &Rollout) -> Option<RolloutPhase> {
    r.status.as_ref().and_then(|s| s.phase)
}

fn current_generation(r: &Rollout) -> bool {
    r.status.as_ref().and_then(|s| s.observed_generation) == r.metadata.generation
}

/// Starts the stack with a controller and prints the demo's header.
/// Starts the demo's cluster and controller, pulling alerts from the source `alerts` makes for
/// the cluster (the canary demo's stand-in for Alertmanager).
async fn start_with<A: AlertSource + 'static>(
    legend: &str,
    alerts: impl FnOnce(&rollgate_sim::SimCluster) -> Option<Arc<A>>,
) -> anyhow::Result<Timeline> {
    println!(
        "rollgate demo: the real controller against an embedded simulated Kubernetes cluster."
    );
    println!("Time is virtual (mm:ss since start); pods become ready 5s after they start.");
    println!("{legend}");
    let mut stack = Stack::new(SimConfig {
        default_ready_delay: Duration::from_secs(5),
        ..Default::default()
    })
    .await?;
    let alerts = alerts(&stack.sim).map(|a| a as Arc<dyn AlertSource>);
    stack.start_controller_with_sources("rollgate-demo", None, alerts, None);
    Ok(Timeline {
        stack,
        start: Instant::now(),
        last: None,
        events: EventFeed::default(),
    })
}

fn stable_hash(r: &Rollout) -> Option<String> {
    r.status.as_ref().and_then(|s| s.stable_rs.clone())
}

/// The canary demo: a release through six steps, a human promotion, and an automatic abort.
async fn canary_demo() -> anyhow::Result<()> {
    let mut alerts = None;
    let mut t = start_with(
        "Each line shows: phase, step, requested and actual canary weight, the hash the stable and canary Services select, and ready/desired pods per ReplicaSet.",
        |sim| {
            let source = Arc::new(ScenarioAlerts::new(sim.clone()));
            alerts = Some(source.clone());
            Some(source)
        },
    )
    .await?;
    let alerts = alerts.context("the demo's alert source")?;
    section(
        "1. kubectl apply -f manifests/examples/canary.yaml (Rollout web, 10 replicas, image demo-app:1.0)",
    );
    for obj in t.stack.apply_yaml(CANARY_EXAMPLE, NS).await? {
        println!("  applied {obj}");
    }
    let v1 = t
        .follow("first deploy", Duration::from_secs(120), |r, _| {
            current_generation(r) && phase(r) == Some(RolloutPhase::Healthy)
        })
        .await?;

    section("2. New image demo-app:2.0: traffic moves by replica ratio, 20% then 50%");
    println!(
        "  No router: the Service `web` selects both versions, so the weight is the canary's share of ready pods."
    );
    println!(
        "  maxSurge 2 / maxUnavailable 1: never more than 12 pods, never fewer than 9 available."
    );
    t.stack
        .set_image(NS, NAME, "web", "ghcr.io/rollgate/demo-app:2.0")
        .await?;
    t.follow(
        "the indefinite pause at step 4",
        Duration::from_secs(600),
        |r, _| {
            current_generation(r)
                && phase(r) == Some(RolloutPhase::Paused)
                && r.status.as_ref().and_then(|s| s.current_step_index) == Some(3)
        },
    )
    .await?;

    section("3. Promote: `kubectl rollgate promote web` (it clears status.pauseConditions)");
    t.promote().await?;
    let v1_hash = v1.stable.clone();
    let promoted = t
        .follow(
            "setWeight 80, a 30s pause, then the canary becomes stable",
            Duration::from_secs(600),
            |r, s| {
                phase(r) == Some(RolloutPhase::Healthy)
                    && stable_hash(r).is_some()
                    && stable_hash(r) != v1_hash
                    && s.replica_sets.len() == 1
            },
        )
        .await?;

    section("4. New image demo-app:3.0-crashloop: its canary pods never become ready");
    println!(
        "  The stable version keeps serving; at progressDeadlineSeconds (600s) the release is aborted and the canary removed."
    );
    t.stack
        .set_image(NS, NAME, "web", "ghcr.io/rollgate/demo-app:3.0-crashloop")
        .await?;
    let aborted = t
        .follow(
            "automatic abort, canary weight back to 0",
            Duration::from_secs(900),
            |r, s| {
                current_generation(r)
                    && phase(r) == Some(RolloutPhase::Degraded)
                    && s.replica_sets.len() == 1
                    && s.replica_sets.iter().all(|rs| rs.ready == rs.desired)
            },
        )
        .await?;
    if aborted.stable != promoted.stable {
        bail!("the stable version changed during the failed release");
    }

    section(
        "5. demo-app:4.0 with spec.alerts and a 10-minute guard window: promoted, then it pages someone",
    );
    println!(
        "  Alerts come from a simulated Alertmanager here (the `rollgate simulate` alert source); spec.alerts points at a real one in a cluster."
    );
    println!(
        "  The previous ReplicaSet is scaled down as the canary grows (no router: its pods would be traffic)."
    );
    let patch = serde_json::json!({"spec": {
        "alerts": {"alertmanager": {"address": "http://alertmanager.monitoring:9093"},
                   "matchers": ["app=\"web\""]},
        "guard": {"duration": "10m"},
        "template": {"spec": {"containers": [{"name": "web", "image": "ghcr.io/rollgate/demo-app:4.0"}]}}}});
    kube::Api::<Rollout>::namespaced(t.stack.client.clone(), NS)
        .patch(
            NAME,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&patch),
        )
        .await?;
    t.follow(
        "the indefinite pause at step 4",
        Duration::from_secs(600),
        |r, _| {
            current_generation(r)
                && phase(r) == Some(RolloutPhase::Paused)
                && r.status.as_ref().and_then(|s| s.current_step_index) == Some(3)
        },
    )
    .await?;
    t.promote().await?;
    let guarded = t
        .follow(
            "v4.0 stable, inside its guard window",
            Duration::from_secs(600),
            |r, _| {
                phase(r) == Some(RolloutPhase::Healthy)
                    && r.status.as_ref().is_some_and(|s| s.guard.is_some())
            },
        )
        .await?;
    println!(
        "  {} alert HighErrorRate fires on revision 4 {{app=web, severity=critical}}",
        t.clock()
    );
    alerts.apply(&AlertEvent {
        name: "HighErrorRate".into(),
        revision: Some(4),
        labels: [
            ("app".to_string(), "web".to_string()),
            ("severity".to_string(), "critical".to_string()),
        ]
        .into(),
        resolved: false,
    });
    let back = t
        .follow(
            "traffic back on the previous revision",
            Duration::from_secs(600),
            |r, s| {
                phase(r) == Some(RolloutPhase::Degraded)
                    && stable_hash(r) == promoted.stable
                    && s.replica_sets.iter().all(|rs| rs.ready == rs.desired)
            },
        )
        .await?;

    section("Summary");
    println!(
        "  v2.0 ({}) went 20% -> 50% -> (promoted) -> 80% -> stable; v3.0 was aborted automatically.",
        promoted.stable.as_deref().unwrap_or("-")
    );
    println!("  v3.0 : {}", aborted.message);
    println!(
        "  v4.0 ({}) was promoted, then an alert inside its guard window sent traffic back to v2.0.",
        guarded.stable.as_deref().unwrap_or("-")
    );
    println!("  Rollout web is {} : {}", back.phase, back.message);
    println!(
        "  Next: fix the image and apply again, or `kubectl rollgate retry web` to run the same release again."
    );
    t.stack.stop_controllers().await;
    Ok(())
}

/// Where the demo's analysis reads its metrics: a real Prometheus scraping the demo app's
/// counters when `prometheus` is installed, else a simulated source (said so on screen).
enum DemoMetrics {
    Prometheus {
        prom: Box<rollgate_promtest::TestPrometheus>,
        handle: rollgate_promtest::MetricsHandle,
        _server: rollgate_promtest::MetricsServer,
    },
    Simulated(Arc<SimulatedMetrics>),
}

impl DemoMetrics {
    /// Also evaluates the demo's alerting rule and sends its alerts to `alertmanager`, when
    /// given.
    async fn start(alertmanager: Option<&rollgate_promtest::TestAlertmanager>) -> Self {
        if rollgate_promtest::is_installed() {
            rollgate_promtest::install_crypto_provider();
            match Self::start_prometheus(alertmanager).await {
                Ok(m) => return m,
                Err(e) => println!(
                    "  (could not start prometheus: {e:#}; using a simulated metric source)"
                ),
            }
        } else {
            println!(
                "  prometheus is not installed (Debian: apt-get install prometheus): the analysis \
                 reads a simulated metric source instead."
            );
        }
        Self::Simulated(Arc::new(SimulatedMetrics::default()))
    }

    async fn start_prometheus(
        alertmanager: Option<&rollgate_promtest::TestAlertmanager>,
    ) -> anyhow::Result<Self> {
        let server = rollgate_promtest::MetricsServer::start().await?;
        let mut config = rollgate_promtest::ScrapeConfig::new()
            .target(server.target())
            .interval(Duration::from_secs(1));
        if let Some(am) = alertmanager {
            config = DemoAlerts::prometheus_config(config, am);
        }
        let prom = rollgate_promtest::TestPrometheus::start(config).await?;
        println!(
            "  Prometheus is running on {} (its own data dir), scraping the demo app's request and \
             error counters at {} every second.",
            prom.address(),
            server.url()
        );
        Ok(Self::Prometheus {
            prom: Box::new(prom),
            handle: server.handle(),
            _server: server,
        })
    }

    /// The real Prometheus, if it runs.
    fn prometheus(&self) -> Option<&rollgate_promtest::TestPrometheus> {
        match self {
            Self::Prometheus { prom, .. } => Some(prom),
            Self::Simulated(_) => None,
        }
    }

    fn source(&self) -> Arc<dyn MetricSource> {
        match self {
            Self::Prometheus { .. } => Arc::new(PrometheusSource),
            Self::Simulated(s) => s.clone(),
        }
    }

    fn address(&self) -> String {
        match self {
            Self::Prometheus { prom, .. } => prom.address(),
            Self::Simulated(_) => "http://simulated-metrics.invalid".into(),
        }
    }

    /// The revision `hash` (image `version`) serves 50 requests/s of which `error_rate` fail;
    /// returns once the analysis can read it.
    async fn serve(&self, version: &str, hash: &str, error_rate: f64) -> anyhow::Result<()> {
        match self {
            Self::Prometheus { prom, handle, .. } => {
                handle.set_traffic(version, hash, 50.0, error_rate);
                let q =
                    format!("sum(rate(http_requests_total{{pod_template_hash=\"{hash}\"}}[1m]))");
                prom.wait_for_data(&q, Duration::from_secs(60)).await?;
            }
            Self::Simulated(s) => s.set(hash, 1.0 - error_rate),
        }
        Ok(())
    }
}

/// The pod-template hash the rollout will have once its container `web` runs `image`.
async fn hash_with_image(stack: &Stack, image: &str) -> anyhow::Result<String> {
    let rollout = stack.rollout(NS, NAME).await?;
    let mut template = rollout.spec.template.clone().unwrap_or_default();
    if let Some(c) = template
        .spec
        .as_mut()
        .and_then(|s| s.containers.iter_mut().find(|c| c.name == "web"))
    {
        c.image = Some(image.to_string());
    }
    Ok(rollgate_engine::hash::pod_template_hash(&template))
}

/// The blue/green demo, in real time (Prometheus scrapes on the wall clock).
async fn demo() -> anyhow::Result<()> {
    println!(
        "rollgate demo: the real controller against an embedded simulated Kubernetes cluster."
    );
    println!("Time is real (mm:ss since start); pods become ready 1s after they start.");
    println!(
        "Each line shows: phase, the pod-template hash each Service selects, and ready/desired pods per ReplicaSet."
    );
    let alertmanager = DemoAlerts::start_alertmanager().await;
    let metrics = DemoMetrics::start(alertmanager.as_ref().ok()).await;
    let mut stack = Stack::new(SimConfig {
        default_ready_delay: Duration::from_secs(1),
        ..Default::default()
    })
    .await?;
    let alerts = DemoAlerts::choose(alertmanager, metrics.prometheus().is_some(), &stack.sim);
    stack.start_controller_with_sources(
        "rollgate-demo",
        Some(metrics.source()),
        alerts.source(),
        None,
    );
    let mut t = Timeline {
        stack,
        start: Instant::now(),
        last: None,
        events: EventFeed::default(),
    };

    section(
        "1. kubectl apply -f manifests/examples/analysis-template-success-rate.yaml -f manifests/examples/bluegreen.yaml",
    );
    println!(
        "  (Rollout web: 3 replicas of demo-app:1.0; each release must keep a success rate >= 95% before promotion)"
    );
    let template =
        SUCCESS_RATE.replace("http://prometheus.monitoring.svc:9090", &metrics.address());
    for obj in t.stack.apply_yaml(&template, NS).await? {
        println!("  applied {obj}");
    }
    for obj in t.stack.apply_yaml(EXAMPLE, NS).await? {
        println!("  applied {obj}");
    }
    let v1 = t
        .follow("first deploy", Duration::from_secs(60), |r, _| {
            current_generation(r) && phase(r) == Some(RolloutPhase::Healthy)
        })
        .await?;

    section(
        "2. New image demo-app:2.0 (1% errors): preview beside active, then pre-promotion analysis",
    );
    let v2 = "ghcr.io/rollgate/demo-app:2.0";
    metrics
        .serve("2.0", &hash_with_image(&t.stack, v2).await?, 0.01)
        .await?;
    t.stack.set_image(NS, NAME, "web", v2).await?;
    let paused = t
        .follow(
            "analysis passed, paused for promotion",
            Duration::from_secs(120),
            |r, _| current_generation(r) && phase(r) == Some(RolloutPhase::Paused),
        )
        .await?;
    if paused.active != v1.active {
        bail!("the active Service moved before promotion");
    }

    section("3. Promote: `kubectl rollgate promote web` (it clears status.pauseConditions)");
    t.promote().await?;
    let v1_hash = v1.active.clone();
    let promoted = t
        .follow("promotion", Duration::from_secs(60), |r, s| {
            phase(r) == Some(RolloutPhase::Healthy) && s.active.is_some() && s.active != v1_hash
        })
        .await?;

    section("4. New image demo-app:3.0 (30% errors): its pre-promotion analysis fails");
    println!(
        "  The active Service stays on the stable version; the failing measurement aborts the release."
    );
    let v3 = "ghcr.io/rollgate/demo-app:3.0";
    metrics
        .serve("3.0", &hash_with_image(&t.stack, v3).await?, 0.3)
        .await?;
    t.stack.set_image(NS, NAME, "web", v3).await?;
    let aborted = t
        .follow("automatic abort", Duration::from_secs(120), |r, _| {
            current_generation(r) && phase(r) == Some(RolloutPhase::Degraded)
        })
        .await?;
    if aborted.active != promoted.active {
        bail!("the active Service left the stable version during the failed release");
    }

    section(
        "5. demo-app:4.0 with spec.alerts and a 2-minute guard window: promoted, then it pages someone",
    );
    println!(
        "  spec.alerts: the controller pulls {} every second for alerts labelled app=\"web\"; an alert carrying the new revision's pod_template_hash is the release's fault.",
        alerts.describe()
    );
    println!(
        "  spec.guard: for 2 minutes after full promotion such an alert still sends traffic back; the previous revision keeps its pods until then."
    );
    let patch = serde_json::json!({"spec": {
        "alerts": alerts.spec(),
        "guard": {"duration": "2m"},
        "strategy": {"blueGreen": {"autoPromotionEnabled": true}}}});
    kube::Api::<Rollout>::namespaced(t.stack.client.clone(), NS)
        .patch(
            NAME,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&patch),
        )
        .await?;
    println!(
        "  {}    $ kubectl patch rollout web: spec.alerts, spec.guard {{duration: 2m}}, autoPromotionEnabled: true",
        t.clock()
    );
    let v4 = "ghcr.io/rollgate/demo-app:4.0";
    let v4_hash = hash_with_image(&t.stack, v4).await?;
    metrics.serve("4.0", &v4_hash, 0.01).await?;
    t.stack.set_image(NS, NAME, "web", v4).await?;
    let guarded = t
        .follow(
            "v4.0 passes its analysis, is promoted and guarded",
            Duration::from_secs(120),
            |r, s| {
                phase(r) == Some(RolloutPhase::Healthy)
                    && stable_hash(r).as_deref() == Some(v4_hash.as_str())
                    && s.active.as_deref() == Some(v4_hash.as_str())
                    && r.status.as_ref().is_some_and(|s| s.guard.is_some())
            },
        )
        .await?;
    println!(
        "  {}    v4.0 ({v4_hash}) serves all production traffic and is inside its guard window; v2.0 ({}) keeps its pods.",
        t.clock(),
        promoted.active.as_deref().unwrap_or("-")
    );
    println!(
        "  {}    demo-app:4.0 starts failing 40% of its requests (a bug the analysis did not see)",
        t.clock()
    );
    metrics.serve("4.0", &v4_hash, 0.4).await?;
    alerts
        .fire(&t.stack.sim, metrics.prometheus(), &v4_hash, || t.clock())
        .await?;
    let back = t
        .follow("traffic back on v2.0", Duration::from_secs(60), |r, s| {
            current_generation(r)
                && phase(r) == Some(RolloutPhase::Degraded)
                && stable_hash(r) == promoted.active
                && s.active == promoted.active
        })
        .await?;
    let rollout = t.stack.rollout(NS, NAME).await?;
    let status = rollout.status.unwrap_or_default();
    if status.abort_reason != Some(AbortReason::AlertFiring) {
        bail!(
            "traffic went back to v2.0 for another reason than the alert: {:?}",
            status.abort_reason
        );
    }
    let blamed = status.alert.map(|a| a.name).unwrap_or_default();

    section("Summary");
    println!(
        "  v2.0 ({}) passed its analysis and was promoted; v3.0 failed it and was aborted automatically, never receiving production traffic.",
        promoted.active.as_deref().unwrap_or("-")
    );
    println!(
        "  v4.0 ({}) passed its analysis and was promoted; then {blamed} fired inside its guard window ({}) and traffic went back to v2.0.",
        guarded.active.as_deref().unwrap_or("-"),
        alerts.describe()
    );
    println!("  Rollout web is {} : {}", back.phase, back.message);
    println!(
        "  `rollgate demo --strategy canary` shows a canary, a crash-looping release and an alert inside a guard window; `--strategy pipeline` a release promoted from staging to production and a bad one stopped (both in virtual time)."
    );
    t.stack.stop_controllers().await;
    Ok(())
}
