//! Promotion pipelines from the command line: `rollgate get pipeline NAME` (stages and the
//! newest releases), `rollgate list releases` and `rollgate pipeline pause|resume NAME`.
//! [`render_pipeline`] and [`render_release_table`] are pure; the rest reads or patches.

use std::fmt::Write as _;

use k8s_openapi::jiff::Timestamp;
use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, Client, ResourceExt};
use rollgate_api::pipeline::{StagePhase, StageRollout};
use rollgate_api::{PromotionPipeline, Release};
use serde_json::json;

use crate::error::CtlError;
use crate::run::FIELD_MANAGER;
use crate::tree::age;

/// How many releases `rollgate get pipeline` shows without `--all`.
pub const RELEASES_SHOWN: usize = 5;

/// A pipeline and its releases, newest (highest `spec.number`) first.
#[derive(Debug, Clone)]
pub struct PipelineObjects {
    /// The PromotionPipeline.
    pub pipeline: PromotionPipeline,
    /// Its releases, newest first.
    pub releases: Vec<Release>,
}

fn kube_err(what: String) -> impl FnOnce(kube::Error) -> CtlError {
    move |source| CtlError::Kube { what, source }
}

/// Reads the PromotionPipeline `namespace/name` (404: [`CtlError::PipelineNotFound`]).
pub async fn read_pipeline(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<PromotionPipeline, CtlError> {
    Api::<PromotionPipeline>::namespaced(client.clone(), namespace)
        .get_opt(name)
        .await
        .map_err(kube_err(format!("reading pipeline {namespace}/{name}")))?
        .ok_or_else(|| CtlError::PipelineNotFound {
            namespace: namespace.to_string(),
            name: name.to_string(),
        })
}

/// Reads the Release `namespace/name` (404: [`CtlError::ReleaseNotFound`]).
pub async fn read_release(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<Release, CtlError> {
    Api::<Release>::namespaced(client.clone(), namespace)
        .get_opt(name)
        .await
        .map_err(kube_err(format!("reading release {namespace}/{name}")))?
        .ok_or_else(|| CtlError::ReleaseNotFound {
            namespace: namespace.to_string(),
            name: name.to_string(),
        })
}

/// The releases of `namespace` (only those of `pipeline` when given), newest first: highest
/// `spec.number`, then by name.
pub async fn list_releases(
    client: &Client,
    namespace: &str,
    pipeline: Option<&str>,
) -> Result<Vec<Release>, CtlError> {
    let mut releases: Vec<Release> = Api::<Release>::namespaced(client.clone(), namespace)
        .list(&ListParams::default())
        .await
        .map_err(kube_err(format!("listing releases in {namespace}")))?
        .items
        .into_iter()
        .filter(|r| pipeline.is_none_or(|p| r.spec.pipeline == p))
        .collect();
    sort_newest_first(&mut releases);
    Ok(releases)
}

fn sort_newest_first(releases: &mut [Release]) {
    releases.sort_by(|a, b| {
        b.spec
            .number
            .cmp(&a.spec.number)
            .then_with(|| a.name_any().cmp(&b.name_any()))
    });
}

/// Reads the pipeline `namespace/name` and its releases.
pub async fn fetch_pipeline(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<PipelineObjects, CtlError> {
    let pipeline = read_pipeline(client, namespace, name).await?;
    let releases = list_releases(client, namespace, Some(name)).await?;
    Ok(PipelineObjects { pipeline, releases })
}

/// A table: columns aligned, the last one unpadded, trailing blanks trimmed.
pub(crate) fn table(header: &[&str], rows: &[Vec<String>], indent: &str) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut out = indent.to_string();
        let cells: Vec<&str> = cells.collect();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(c);
            } else {
                let pad = widths[i].saturating_sub(c.chars().count());
                out.push_str(c);
                out.push_str(&" ".repeat(pad + 2));
            }
        }
        out.trim_end().to_string()
    };
    let mut out = line(&mut header.iter().copied());
    for row in rows {
        out.push('\n');
        out.push_str(&line(&mut row.iter().map(String::as_str)));
    }
    out
}

/// `NAMESPACE/NAME` of a stage's Rollout (its namespace defaults to the pipeline's).
fn rollout_id(rollout: &StageRollout, pipeline_namespace: &str) -> String {
    let ns = rollout.namespace.as_deref().unwrap_or(pipeline_namespace);
    format!("{ns}/{}", rollout.name)
}

/// The cluster of a stage: `-` for this one, else `secret/NAME` (`:KEY` when not `value`).
fn cluster_text(rollout: &StageRollout) -> String {
    match &rollout.cluster {
        None => "-".into(),
        Some(c) => {
            let s = &c.kubeconfig_secret;
            match s.key.as_deref().filter(|k| *k != "value") {
                Some(key) => format!("secret/{}:{key}", s.name),
                None => format!("secret/{}", s.name),
            }
        }
    }
}

/// What a release's stage line says after the stage name.
fn stage_line(st: &rollgate_api::pipeline::ReleaseStageStatus, now: Timestamp) -> String {
    let ago = |t: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time| age(now, Some(t.0));
    let mut out = st.phase.to_string();
    match st.phase {
        StagePhase::Waiting | StagePhase::Blocked => {
            match st.message.as_deref().filter(|m| !m.is_empty()) {
                Some(m) => {
                    let _ = write!(out, ": {m}");
                }
                None if !st.blocked.is_empty() => {
                    let kinds: Vec<&str> = st.blocked.iter().map(|g| g.kind.as_str()).collect();
                    let _ = write!(out, " ({})", kinds.join(", "));
                }
                None => {}
            }
        }
        StagePhase::Verified => {
            let mut notes = Vec::new();
            if let Some(t) = &st.verified_since {
                // Once it left, it was verified there until it left.
                let until = st.left_at.as_ref().map_or(now, |l| l.0);
                notes.push(format!("for {}", age(until, Some(t.0))));
            }
            if let Some(t) = &st.left_at {
                notes.push(format!("left {} ago", ago(t)));
            }
            if !notes.is_empty() {
                let _ = write!(out, " ({})", notes.join(", "));
            }
        }
        StagePhase::Superseded => {}
        StagePhase::Promoting
        | StagePhase::Progressing
        | StagePhase::Verifying
        | StagePhase::Failed
        | StagePhase::RolledBack => {
            let mut notes = Vec::new();
            if st.attempt > 0 {
                notes.push(format!("attempt {}", st.attempt));
            }
            if let Some(t) = &st.promoted_at {
                notes.push(format!("promoted {} ago", ago(t)));
            }
            if let Some(a) = &st.promoted_by {
                notes.push(format!("by approval {a}"));
            }
            if let Some(run) = st
                .verification_run
                .as_ref()
                .filter(|_| st.phase == StagePhase::Verifying)
            {
                notes.push(format!("run {run}"));
            }
            if !notes.is_empty() {
                let _ = write!(out, " ({})", notes.join(", "));
            }
        }
    }
    out
}

/// A release's verdict, with the failure when Bad.
pub fn verdict_text(release: &Release) -> String {
    let status = release.status.clone().unwrap_or_default();
    let verdict = status.verdict.map_or_else(|| "-".into(), |v| v.to_string());
    match status.failure {
        Some(f) if status.verdict == Some(rollgate_api::pipeline::Verdict::Bad) => {
            let mut out = format!("{verdict}: failed in {}: {}", f.stage, f.cause);
            if !f.message.is_empty() {
                let _ = write!(out, ": {}", f.message);
            }
            out
        }
        _ => verdict,
    }
}

/// Renders `rollgate get pipeline`: the pipeline, one row per stage, then the releases newest
/// first (the [`RELEASES_SHOWN`] newest unless `all`), each with its phase per stage.
pub fn render_pipeline(o: &PipelineObjects, now: Timestamp, all: bool) -> String {
    let p = &o.pipeline;
    let ns = p.namespace().unwrap_or_else(|| "default".into());
    let status = p.status.clone().unwrap_or_default();
    let mut out = String::new();
    let line = |out: &mut String, k: &str, v: &str| {
        let _ = writeln!(out, "{}", format!("{k:<11} {v}").trim_end());
    };
    line(&mut out, "Name:", &p.name_any());
    line(&mut out, "Namespace:", &ns);
    line(
        &mut out,
        "Paused:",
        if p.spec.paused {
            "yes (nothing is promoted anywhere)"
        } else {
            "no"
        },
    );
    if !p.spec.containers.is_empty() {
        line(&mut out, "Containers:", &p.spec.containers.join(", "));
    }
    if let Some(n) = &status.newest_release {
        line(&mut out, "Newest:", n);
    }
    if let Some(m) = status.message.as_deref().filter(|m| !m.is_empty()) {
        line(&mut out, "Message:", m);
    }
    for c in status.conditions.iter().filter(|c| c.status != "True") {
        let mut text = format!("{}={} {}", c.type_, c.status, c.reason);
        if !c.message.is_empty() {
            let _ = write!(text, ": {}", c.message);
        }
        line(&mut out, "Condition:", &text);
    }

    let _ = writeln!(out, "Stages:");
    let rows: Vec<Vec<String>> = p
        .spec
        .stages
        .iter()
        .map(|stage| {
            let st = status.stages.iter().find(|s| s.name == stage.name);
            let dash = || "-".to_string();
            let reachable = match st.and_then(|s| s.reachable) {
                Some(true) => "yes".into(),
                Some(false) => "no".into(),
                None => dash(),
            };
            let hold = st.and_then(|s| s.hold.as_ref()).map_or_else(dash, |h| {
                format!(
                    "{} by {} ({} ago)",
                    h.reason,
                    h.release,
                    age(now, Some(h.since.0))
                )
            });
            vec![
                stage.name.clone(),
                rollout_id(&stage.rollout, &ns),
                cluster_text(&stage.rollout),
                reachable,
                st.and_then(|s| s.current.clone()).unwrap_or_else(dash),
                st.and_then(|s| s.last_good.clone()).unwrap_or_else(dash),
                hold,
                st.and_then(|s| s.problem.clone()).unwrap_or_default(),
            ]
        })
        .collect();
    let _ = writeln!(
        out,
        "{}",
        table(
            &[
                "STAGE",
                "ROLLOUT",
                "CLUSTER",
                "REACHABLE",
                "CURRENT",
                "LAST GOOD",
                "HOLD",
                "PROBLEM",
            ],
            &rows,
            "  ",
        )
    );

    let total = o.releases.len();
    let shown = if all {
        total
    } else {
        total.min(RELEASES_SHOWN)
    };
    if total == 0 {
        let _ = writeln!(out, "Releases: none yet");
        return out;
    }
    if shown < total {
        let _ = writeln!(
            out,
            "Releases (newest first; {shown} of {total}, --all for every one):"
        );
    } else {
        let _ = writeln!(out, "Releases (newest first):");
    }
    // Stage names in pipeline order, then any the release knows that the spec no longer has.
    let mut stage_names: Vec<String> = p.spec.stages.iter().map(|s| s.name.clone()).collect();
    for r in &o.releases[..shown] {
        for st in r.status.iter().flat_map(|s| &s.stages) {
            if !stage_names.contains(&st.name) {
                stage_names.push(st.name.clone());
            }
        }
    }
    let width = stage_names
        .iter()
        .map(|n| n.chars().count())
        .chain(["images".len()])
        .max()
        .unwrap_or(0);
    for r in &o.releases[..shown] {
        let _ = writeln!(
            out,
            "  #{} {}  {}  created {} ago",
            r.spec.number,
            r.name_any(),
            verdict_text(r),
            age(now, Some(r.spec.created.0))
        );
        if !r.spec.images.is_empty() {
            let images: Vec<String> = r
                .spec
                .images
                .iter()
                .map(|(c, i)| format!("{c}={i}"))
                .collect();
            let _ = writeln!(out, "      {:<width$}  {}", "images", images.join(" "));
        }
        let stages = r
            .status
            .as_ref()
            .map(|s| s.stages.as_slice())
            .unwrap_or(&[]);
        for name in &stage_names {
            let text = stages
                .iter()
                .find(|s| &s.name == name)
                .map_or_else(|| "-".to_string(), |st| stage_line(st, now));
            let _ = writeln!(
                out,
                "{}",
                format!("      {name:<width$}  {text}").trim_end()
            );
        }
    }
    out
}

/// One line of `rollgate list releases`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseRow {
    /// Name.
    pub name: String,
    /// `spec.number`.
    pub number: i64,
    /// `spec.pipeline`.
    pub pipeline: String,
    /// Verdict (`-` before the controller wrote one).
    pub verdict: String,
    /// `stage:Phase` per stage (the status summary), `-` when none.
    pub stages: String,
    /// Since `spec.created`.
    pub age: String,
}

impl ReleaseRow {
    /// The row of one release at `now`.
    pub fn of(r: &Release, now: Timestamp) -> Self {
        let status = r.status.clone().unwrap_or_default();
        let stages = status.summary.filter(|s| !s.is_empty()).unwrap_or_else(|| {
            let parts: Vec<String> = status
                .stages
                .iter()
                .map(|s| format!("{}:{}", s.name, s.phase))
                .collect();
            if parts.is_empty() {
                "-".into()
            } else {
                parts.join(" ")
            }
        });
        Self {
            name: r.name_any(),
            number: r.spec.number,
            pipeline: r.spec.pipeline.clone(),
            verdict: status.verdict.map_or_else(|| "-".into(), |v| v.to_string()),
            stages,
            age: age(now, Some(r.spec.created.0)),
        }
    }
}

/// `rollgate list releases`: NAME NUMBER PIPELINE VERDICT STAGES AGE, rows in the order given.
pub fn render_release_table(rows: &[ReleaseRow]) -> String {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.name.clone(),
                r.number.to_string(),
                r.pipeline.clone(),
                r.verdict.clone(),
                r.stages.clone(),
                r.age.clone(),
            ]
        })
        .collect();
    table(
        &["NAME", "NUMBER", "PIPELINE", "VERDICT", "STAGES", "AGE"],
        &cells,
        "",
    )
}

/// `rollgate pipeline pause|resume NAME`: sets `spec.paused` by a merge patch and returns the
/// message to print. Nothing is sent when it already has that value (the message says so).
pub async fn set_paused(
    client: &Client,
    namespace: &str,
    name: &str,
    paused: bool,
) -> Result<String, CtlError> {
    let id = format!("{namespace}/{name}");
    let pipeline = read_pipeline(client, namespace, name).await?;
    let word = if paused { "paused" } else { "resumed" };
    if pipeline.spec.paused == paused {
        let state = if paused { "paused" } else { "not paused" };
        return Ok(format!("pipeline '{id}' is already {state}"));
    }
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.to_string()),
        ..Default::default()
    };
    Api::<PromotionPipeline>::namespaced(client.clone(), namespace)
        .patch(
            name,
            &params,
            &Patch::Merge(json!({"spec": {"paused": paused}})),
        )
        .await
        .map_err(|source| match source {
            kube::Error::Api(s) if s.code == 404 => CtlError::PipelineNotFound {
                namespace: namespace.to_string(),
                name: name.to_string(),
            },
            source => CtlError::Kube {
                what: format!("patching spec.paused of pipeline {id}"),
                source,
            },
        })?;
    Ok(format!("pipeline '{id}' {word}"))
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn now() -> Timestamp {
        "2026-01-01T01:00:00Z".parse().expect("time")
    }

    fn pipeline(paused: bool) -> PromotionPipeline {
        serde_json::from_value(json!({
            "apiVersion": "rollgate.dev/v1alpha1", "kind": "PromotionPipeline",
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"paused": paused, "stages": [
                {"name": "staging", "rollout": {"name": "web-staging"}},
                {"name": "production", "rollout": {"name": "web", "namespace": "prod",
                    "cluster": {"kubeconfigSecret": {"name": "prod-kubeconfig"}}}}
            ]},
            "status": {
                "newestRelease": "web-7",
                "message": "production: web-7 blocked",
                "stages": [
                    {"name": "staging", "current": "web-7", "lastGood": "web-6", "reachable": true},
                    {"name": "production", "current": "web-5", "lastGood": "web-5",
                     "reachable": false, "problem": "connection refused",
                     "hold": {"reason": "Restored", "release": "web-6",
                              "since": "2026-01-01T00:57:00Z"}}
                ]
            }
        }))
        .expect("pipeline")
    }

    fn release(number: i64, status: Value) -> Release {
        serde_json::from_value(json!({
            "apiVersion": "rollgate.dev/v1alpha1", "kind": "Release",
            "metadata": {"name": format!("web-{number}"), "namespace": "shop"},
            "spec": {"pipeline": "web", "images": {"web": format!("web@sha256:{number}")},
                "sourceImages": {"web": format!("web:{number}")}, "entered": "staging",
                "number": number, "created": format!("2026-01-01T00:{:02}:00Z", number * 5)},
            "status": status
        }))
        .expect("release")
    }

    fn releases() -> Vec<Release> {
        let mut v = vec![
            release(
                6,
                json!({
                    "verdict": "Bad",
                    "failure": {"stage": "production", "cause": "VerificationFailed",
                        "message": "run web-6-production-1 failed", "at": "2026-01-01T00:57:00Z"},
                    "stages": [
                        {"name": "staging", "phase": "Verified",
                         "verifiedSince": "2026-01-01T00:32:00Z", "leftAt": "2026-01-01T00:55:00Z"},
                        {"name": "production", "phase": "RolledBack", "attempt": 1,
                         "promotedAt": "2026-01-01T00:50:00Z"}
                    ]
                }),
            ),
            release(
                7,
                json!({
                    "verdict": "Unknown",
                    "summary": "staging:Verified production:Blocked",
                    "stages": [
                        {"name": "staging", "phase": "Verified", "attempt": 1,
                         "verifiedSince": "2026-01-01T00:40:00Z"},
                        {"name": "production", "phase": "Blocked",
                         "blocked": [{"kind": "Soak", "stage": "staging"}, {"kind": "Held"}],
                         "message": "soak in staging 10m left; held after web-6 was restored"}
                    ]
                }),
            ),
        ];
        sort_newest_first(&mut v);
        v
    }

    #[test]
    fn renders_stages_and_releases_newest_first() {
        let o = PipelineObjects {
            pipeline: pipeline(false),
            releases: releases(),
        };
        let text = render_pipeline(&o, now(), false);
        let expected = "\
Name:       web
Namespace:  shop
Paused:     no
Newest:     web-7
Message:    production: web-7 blocked
Stages:
  STAGE       ROLLOUT           CLUSTER                 REACHABLE  CURRENT  LAST GOOD  HOLD                        PROBLEM
  staging     shop/web-staging  -                       yes        web-7    web-6      -
  production  prod/web          secret/prod-kubeconfig  no         web-5    web-5      Restored by web-6 (3m ago)  connection refused
Releases (newest first):
  #7 web-7  Unknown  created 25m ago
      images      web=web@sha256:7
      staging     Verified (for 20m)
      production  Blocked: soak in staging 10m left; held after web-6 was restored
  #6 web-6  Bad: failed in production: VerificationFailed: run web-6-production-1 failed  created 30m ago
      images      web=web@sha256:6
      staging     Verified (for 23m, left 5m ago)
      production  RolledBack (attempt 1, promoted 10m ago)
";
        assert_eq!(text, expected, "\n{text}");
    }

    #[test]
    fn shows_the_five_newest_unless_all() {
        let mut rs: Vec<Release> = (1..=7)
            .map(|n| {
                release(
                    n,
                    json!({"stages": [{"name": "staging", "phase": "Waiting"}]}),
                )
            })
            .collect();
        sort_newest_first(&mut rs);
        let o = PipelineObjects {
            pipeline: pipeline(true),
            releases: rs,
        };
        let text = render_pipeline(&o, now(), false);
        assert!(
            text.contains("Paused:     yes (nothing is promoted anywhere)"),
            "{text}"
        );
        assert!(
            text.contains("Releases (newest first; 5 of 7, --all for every one):"),
            "{text}"
        );
        let shown: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("  #"))
            .map(|l| l.split_whitespace().nth(1).unwrap_or_default())
            .collect();
        assert_eq!(shown, ["web-7", "web-6", "web-5", "web-4", "web-3"]);
        // A stage the release has no status for yet shows `-`.
        assert!(text.contains("      production  -\n"), "{text}");
        let all = render_pipeline(&o, now(), true);
        assert_eq!(all.lines().filter(|l| l.starts_with("  #")).count(), 7);
        assert!(all.contains("Releases (newest first):"), "{all}");
    }

    #[test]
    fn a_pipeline_without_status_or_releases() {
        let mut p = pipeline(false);
        p.status = None;
        let text = render_pipeline(
            &PipelineObjects {
                pipeline: p,
                releases: vec![],
            },
            now(),
            false,
        );
        assert!(
            text.contains("  staging     shop/web-staging  -                       -          -        -          -\n"),
            "{text}"
        );
        assert!(text.ends_with("Releases: none yet\n"), "{text}");
    }

    #[test]
    fn release_rows_newest_first_with_the_stage_summary() {
        let rows: Vec<ReleaseRow> = releases()
            .iter()
            .map(|r| ReleaseRow::of(r, now()))
            .collect();
        let table = render_release_table(&rows);
        let expected = "\
NAME   NUMBER  PIPELINE  VERDICT  STAGES                                  AGE
web-7  7       web       Unknown  staging:Verified production:Blocked     25m
web-6  6       web       Bad      staging:Verified production:RolledBack  30m";
        assert_eq!(table, expected, "\n{table}");
        let bare = ReleaseRow::of(&release(1, Value::Null), now());
        assert_eq!((bare.verdict.as_str(), bare.stages.as_str()), ("-", "-"));
    }
}
