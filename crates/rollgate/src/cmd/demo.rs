//! `rollgate demo [--strategy bluegreen|canary]`: a release on an embedded simulated cluster,
//! in virtual time.
//!
//! The real controller runs against the simulated API server; pods become ready 5 s after
//! they are created, and images tagged `crashloop` never do. The demo drives the rollout as a
//! user would (apply, new image, promote) and prints what happens.

use std::time::Duration;

use anyhow::{Context, bail};
use rollgate_api::{Rollout, RolloutPhase};
use rollgate_local::Stack;
use rollgate_local::snapshot::{EventFeed, Snapshot};
use rollgate_sim::SimConfig;
use tokio::time::Instant;

use crate::cli::{DemoArgs, DemoStrategy};

const EXAMPLE: &str = include_str!("../../../../manifests/examples/bluegreen.yaml");
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
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .context("starting the tokio runtime")?;
    match args.strategy {
        DemoStrategy::BlueGreen => runtime.block_on(demo()),
        DemoStrategy::Canary => runtime.block_on(canary_demo()),
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
async fn start(legend: &str) -> anyhow::Result<Timeline> {
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
    stack.start_controller("rollgate-demo");
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
    let mut t = start(
        "Each line shows: phase, step, requested and actual canary weight, the hash the stable and canary Services select, and ready/desired pods per ReplicaSet.",
    )
    .await?;
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

    section("Summary");
    println!(
        "  v2.0 ({}) went 20% -> 50% -> (promoted) -> 80% -> stable; v3.0 was aborted automatically.",
        promoted.stable.as_deref().unwrap_or("-")
    );
    println!("  Rollout web is {} : {}", aborted.phase, aborted.message);
    println!(
        "  Next: fix the image and apply again, or `kubectl rollgate retry web` to run the same release again."
    );
    t.stack.stop_controllers().await;
    Ok(())
}

async fn demo() -> anyhow::Result<()> {
    let mut t = start(
        "Each line shows: phase, the pod-template hash each Service selects, and ready/desired pods per ReplicaSet.",
    )
    .await?;

    section(
        "1. kubectl apply -f manifests/examples/bluegreen.yaml (Rollout web, 3 replicas, image demo-app:1.0)",
    );
    for obj in t.stack.apply_yaml(EXAMPLE, NS).await? {
        println!("  applied {obj}");
    }
    let v1 = t
        .follow("first deploy", Duration::from_secs(120), |r, _| {
            current_generation(r) && phase(r) == Some(RolloutPhase::Healthy)
        })
        .await?;

    section("2. New image demo-app:2.0: a preview ReplicaSet comes up beside the active one");
    println!(
        "  autoPromotionEnabled is false, so the rollout pauses for a human once the preview is ready."
    );
    t.stack
        .set_image(NS, NAME, "web", "ghcr.io/rollgate/demo-app:2.0")
        .await?;
    let paused = t
        .follow(
            "preview ready and paused",
            Duration::from_secs(300),
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
        .follow(
            "promotion, then the old ReplicaSet scaled down after scaleDownDelaySeconds (30s)",
            Duration::from_secs(300),
            |r, s| {
                phase(r) == Some(RolloutPhase::Healthy)
                    && s.active.is_some()
                    && s.active != v1_hash
                    && s.replica_sets.len() == 1
            },
        )
        .await?;

    section("4. New image demo-app:3.0-crashloop: its pods never become ready");
    println!(
        "  The active Service stays on the stable version; at progressDeadlineSeconds the release is aborted."
    );
    t.stack
        .set_image(NS, NAME, "web", "ghcr.io/rollgate/demo-app:3.0-crashloop")
        .await?;
    let aborted = t
        .follow(
            "automatic abort, then the failed preview scaled down",
            Duration::from_secs(900),
            |r, s| {
                current_generation(r)
                    && phase(r) == Some(RolloutPhase::Degraded)
                    && s.replica_sets.len() == 1
            },
        )
        .await?;
    if aborted.active != promoted.active {
        bail!("the active Service left the stable version during the failed release");
    }

    section("Summary");
    println!(
        "  v2.0 ({}) was promoted; v3.0 was aborted automatically and never received production traffic.",
        promoted.active.as_deref().unwrap_or("-")
    );
    println!("  Rollout web is {} : {}", aborted.phase, aborted.message);
    println!(
        "  Next: fix the image and apply again (a new revision starts a new release), or `retry` with status.abort=false."
    );
    t.stack.stop_controllers().await;
    Ok(())
}
