//! `rollgate demo --strategy pipeline`: a promotion pipeline from staging to production on
//! the embedded simulated cluster, in virtual time. CI applies v2 to staging, it is verified
//! there, soaks, a person approves it, production's canary with analysis releases it; then
//! v3 fails production's analysis: it is rolled back there, marked Bad and never promoted
//! again.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use kube::Api;
use kube::api::{ListParams, PostParams};
use rollgate_api::pipeline::{Decision, StagePhase, Verdict};
use rollgate_api::{Approval, ApprovalSpec, Release, Rollout, RolloutPhase};
use rollgate_local::Stack;
use rollgate_local::simulated_metrics::SimulatedMetrics;
use rollgate_local::snapshot::EventFeed;
use rollgate_sim::SimConfig;
use tokio::time::Instant;

const SHOP: &str = "shop";
const STAGING: &str = "shop-staging";
const PROD: &str = "shop-prod";
const APP: &str = "ghcr.io/rollgate/demo-app";

/// The analysis both stages use: the share of requests that did not fail.
const TEMPLATE: &str = r#"apiVersion: rollgate.dev/v1alpha1
kind: AnalysisTemplate
metadata: {name: success-rate}
spec:
  args: [{name: hash}]
  metrics:
  - name: success-rate
    interval: 30s
    count: 3
    successCondition: "result[0] >= 0.95"
    provider:
      prometheus:
        address: http://prometheus.monitoring:9090
        query: |
          sum(rate(http_requests_total{code!~"5..",pod_template_hash="{{args.hash}}"}[1m]))
          / sum(rate(http_requests_total{pod_template_hash="{{args.hash}}"}[1m]))
"#;

const STAGING_ROLLOUT: &str = r#"apiVersion: rollgate.dev/v1alpha1
kind: Rollout
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: "ghcr.io/rollgate/demo-app:1.0"}]
  strategy:
    canary:
      steps: [{setWeight: 50}, {pause: {duration: 30s}}]
"#;

/// Production's Rollout, running `IMAGE`: its own replicas and env, a canary with analysis.
const PRODUCTION_ROLLOUT: &str = r#"apiVersion: rollgate.dev/v1alpha1
kind: Rollout
metadata: {name: web}
spec:
  replicas: 4
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: "IMAGE"
        env: [{name: ENVIRONMENT, value: production}]
  strategy:
    canary:
      steps:
      - setWeight: 25
      - analysis:
          templates: [{templateName: success-rate}]
          args: [{name: hash, valueFrom: {podTemplateHashValue: Latest}}]
      - setWeight: 75
      - pause: {duration: 1m}
"#;

const PIPELINE: &str = "apiVersion: rollgate.dev/v1alpha1
kind: PromotionPipeline
metadata: {name: web}
spec:
  containers: [web]
  stages:
  - name: staging
    rollout: {name: web, namespace: shop-staging}
    verification:
      templates: [{templateName: success-rate}]
      args: [{name: hash, valueFrom: {podTemplateHashValue: Latest}}]
  - name: production
    rollout: {name: web, namespace: shop-prod}
    soak: 10m
    approvals: 1
";

/// What the demo shows as time passes: the pipeline's Events and each release's phase per
/// stage.
struct Watch {
    stack: Stack,
    start: Instant,
    events: EventFeed,
    prod_events: EventFeed,
    phases: BTreeMap<(i64, String), (StagePhase, String)>,
}

impl Watch {
    fn clock(&self) -> String {
        let s = self.start.elapsed().as_secs();
        format!("{:02}:{:02}", s / 60, s % 60)
    }

    async fn releases(&self) -> anyhow::Result<Vec<Release>> {
        let mut r = Api::<Release>::namespaced(self.stack.client.clone(), SHOP)
            .list(&ListParams::default())
            .await?
            .items;
        r.sort_by_key(|r| r.spec.number);
        Ok(r)
    }

    async fn release(&self, number: i64) -> anyhow::Result<Release> {
        self.releases()
            .await?
            .into_iter()
            .find(|r| r.spec.number == number)
            .with_context(|| format!("release #{number} not recorded"))
    }

    /// Prints what changed until `done` holds for the releases (or `limit` passes).
    async fn until(
        &mut self,
        what: &str,
        limit: Duration,
        done: impl Fn(&[Release]) -> bool,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + limit;
        loop {
            for e in self.events.next(&self.stack.client, SHOP, "web").await? {
                let mark = if e.type_ == "Warning" { "!" } else { " " };
                println!(
                    "  {}  {mark} pipeline {:<17} {}",
                    self.clock(),
                    e.reason,
                    e.note
                );
            }
            for e in self
                .prod_events
                .next(&self.stack.client, PROD, "web")
                .await?
            {
                if matches!(
                    e.reason.as_str(),
                    "RolloutAborted" | "RolloutCompleted" | "RolloutUpdated"
                ) {
                    let mark = if e.type_ == "Warning" { "!" } else { " " };
                    println!(
                        "  {}  {mark} production {:<15} {}",
                        self.clock(),
                        e.reason,
                        e.note
                    );
                }
            }
            let releases = self.releases().await?;
            for r in &releases {
                for s in r.status.iter().flat_map(|s| s.stages.iter()) {
                    let key = (r.spec.number, s.name.clone());
                    let now = (s.phase, s.message.clone().unwrap_or_default());
                    if self.phases.get(&key) != Some(&now) {
                        let msg = if now.1.is_empty() {
                            String::new()
                        } else {
                            format!(": {}", now.1)
                        };
                        println!(
                            "  {}    release #{} in {:<10} {}{msg}",
                            self.clock(),
                            r.spec.number,
                            s.name,
                            s.phase
                        );
                        self.phases.insert(key, now);
                    }
                }
            }
            if done(&releases) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!("demo step did not finish within {limit:?}: {what}");
            }
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
    }

    /// `rollgate approve`: an Approval by `alice`.
    async fn approve(&self, number: i64, comment: &str) -> anyhow::Result<()> {
        let release = self.release(number).await?;
        let name = release.metadata.name.clone().unwrap_or_default();
        Api::<Approval>::namespaced(self.stack.client.clone(), SHOP)
            .create(
                &PostParams::default(),
                &Approval {
                    metadata: kube::api::ObjectMeta {
                        generate_name: Some(format!("{name}-production-")),
                        ..Default::default()
                    },
                    spec: ApprovalSpec {
                        release: name.clone(),
                        stage: "production".into(),
                        decision: Decision::Approve,
                        approver: "alice".into(),
                        comment: Some(comment.into()),
                    },
                },
            )
            .await?;
        println!(
            "  {}    $ rollgate approve {name} --stage production -m \"{comment}\"   (as alice)",
            self.clock()
        );
        Ok(())
    }

    /// CI applies `version` to staging.
    async fn ci(&self, version: &str) -> anyhow::Result<()> {
        self.stack
            .set_image(STAGING, "web", "web", &format!("{APP}:{version}"))
            .await?;
        println!(
            "  {}    CI: kubectl apply -n {STAGING} (web image {APP}:{version})",
            self.clock()
        );
        Ok(())
    }
}

fn phase_in(r: &Release, stage: &str) -> StagePhase {
    r.status
        .as_ref()
        .and_then(|s| s.stages.iter().find(|x| x.name == stage))
        .map_or(StagePhase::Waiting, |s| s.phase)
}

fn verdict(r: &Release) -> Verdict {
    r.status
        .as_ref()
        .and_then(|s| s.verdict)
        .unwrap_or(Verdict::Unknown)
}

fn numbered(rs: &[Release], n: i64) -> Option<&Release> {
    rs.iter().find(|r| r.spec.number == n)
}

/// The pod-template hash the Rollout `ns/web` gets once container `web` runs `image`.
async fn hash_with(stack: &Stack, ns: &str, image: &str) -> anyhow::Result<String> {
    let rollout = stack.rollout(ns, "web").await?;
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

/// The pipeline demo.
pub async fn pipeline_demo() -> anyhow::Result<()> {
    println!(
        "rollgate demo: a promotion pipeline, staging -> production, on an embedded simulated cluster."
    );
    println!("Time is virtual (mm:ss since start); pods become ready 5s after they start.");
    println!(
        "Analysis reads a simulated metric source (success rate per revision); Prometheus is not needed."
    );
    let metrics = Arc::new(SimulatedMetrics::default());
    let mut stack = Stack::new(SimConfig {
        default_ready_delay: Duration::from_secs(5),
        ..Default::default()
    })
    .await?;
    for ns in [SHOP, STAGING, PROD] {
        stack
            .apply_yaml(
                &format!("apiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}}}\n"),
                "default",
            )
            .await?;
    }
    stack.start_controller_with("rollgate-demo", Some(metrics.clone()));
    let v1 = rollgate_sim::pinned_image(&format!("{APP}:1.0"));

    println!(
        "\n== 1. The pipeline web: staging (verified by analysis) -> production (soak 10m, 1 approval)"
    );
    for (ns, yaml) in [
        (STAGING, TEMPLATE.to_string()),
        (PROD, TEMPLATE.to_string()),
        (STAGING, STAGING_ROLLOUT.to_string()),
        (PROD, PRODUCTION_ROLLOUT.replace("IMAGE", &v1)),
        (SHOP, PIPELINE.to_string()),
    ] {
        for obj in stack.apply_yaml(&yaml, ns).await? {
            println!("  applied {obj} in {ns}");
        }
    }
    println!(
        "  production's Rollout has its own replicas (4) and env; only the image of container web travels."
    );
    // Success rates per revision, as a metrics backend would answer them.
    for version in ["1.0", "2.0", "3.0"] {
        let staging = hash_with(&stack, STAGING, &format!("{APP}:{version}")).await?;
        metrics.set(&staging, 0.99);
        let pinned = rollgate_sim::pinned_image(&format!("{APP}:{version}"));
        let prod = hash_with(&stack, PROD, &pinned).await?;
        metrics.set(&prod, if version == "3.0" { 0.81 } else { 0.99 });
    }
    let mut w = Watch {
        stack,
        start: Instant::now(),
        events: EventFeed::default(),
        prod_events: EventFeed::default(),
        phases: BTreeMap::new(),
    };
    w.until(
        "release #1 (what runs today) recorded and Good",
        Duration::from_secs(600),
        |rs| numbered(rs, 1).is_some_and(|r| verdict(r) == Verdict::Good),
    )
    .await?;

    println!("\n== 2. CI applies demo-app:2.0 to staging");
    w.ci("2.0").await?;
    w.until(
        "release #2 blocked on its way to production",
        Duration::from_secs(900),
        |rs| {
            numbered(rs, 2).is_some_and(|r| {
                phase_in(r, "production") == StagePhase::Blocked
                    && r.status.as_ref().is_some_and(|s| {
                        s.stages.iter().any(|x| {
                            x.message
                                .as_deref()
                                .is_some_and(|m| m.contains("approval") && m.contains("soak"))
                        })
                    })
            })
        },
    )
    .await?;

    println!("\n== 3. A person approves release #2 for production; it goes once it has soaked");
    w.approve(2, "checked the staging dashboards").await?;
    w.until(
        "release #2 verified in production",
        Duration::from_secs(1800),
        |rs| numbered(rs, 2).is_some_and(|r| verdict(r) == Verdict::Good),
    )
    .await?;
    let prod: Rollout = w.stack.rollout(PROD, "web").await?;
    let image = rollgate_engine::pipeline::rollout_images(&prod, &["web".into()])
        .remove("web")
        .unwrap_or_default();
    println!("  production runs {image} (the same artifact staging verified, by digest)");

    println!(
        "\n== 4. CI applies demo-app:3.0: fine in staging, but its production canary fails analysis"
    );
    w.ci("3.0").await?;
    w.until(
        "release #3 blocked on its way to production",
        Duration::from_secs(900),
        |rs| numbered(rs, 3).is_some_and(|r| phase_in(r, "production") == StagePhase::Blocked),
    )
    .await?;
    w.approve(3, "ship it").await?;
    w.until(
        "release #3 Bad and production back on release #2",
        Duration::from_secs(1800),
        |rs| {
            numbered(rs, 3).is_some_and(|r| verdict(r) == Verdict::Bad)
                && numbered(rs, 2)
                    .is_some_and(|r| phase_in(r, "production") == StagePhase::Verified)
        },
    )
    .await?;
    let prod: Rollout = w.stack.rollout(PROD, "web").await?;
    if prod.status.as_ref().and_then(|s| s.phase) != Some(RolloutPhase::Healthy) {
        w.until("production Healthy", Duration::from_secs(300), |_| true)
            .await?;
    }
    let r3 = w.release(3).await?;
    let failure = r3
        .status
        .as_ref()
        .and_then(|s| s.failure.clone())
        .context("release #3 has no failure")?;

    println!("\n== Summary");
    println!(
        "  release #2 (demo-app:2.0): Good: verified in staging, soaked, approved, released by production's canary."
    );
    println!(
        "  release #3 (demo-app:3.0): Bad: failed in {} ({}: {}).",
        failure.stage, failure.cause, failure.message
    );
    println!(
        "  production got release #2 back (a fast rollback to its kept ReplicaSet); automatic promotion into production is held until a person promotes, and release #3 is never promoted again."
    );
    println!("  Next: `rollgate get pipeline web -n shop`, `rollgate list releases -n shop`.");
    w.stack.stop_controllers().await;
    Ok(())
}
