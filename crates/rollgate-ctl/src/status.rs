//! Read-only views: `rollgate status NAME` (wait for a verdict, for CI scripts) and
//! `rollgate list rollouts`.

use std::time::Duration;

use kube::api::{ApiResource, DynamicObject, ListParams};
use kube::{Api, Client};
use rollgate_api::decode::{self, DecodeError};
use rollgate_api::{Rollout, RolloutPhase};

use crate::error::CtlError;

/// How `rollgate status` ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The current generation is Healthy.
    Healthy(String),
    /// The current generation is Degraded (aborted, invalid, deadline exceeded).
    Degraded(String),
    /// Neither within the timeout: the phase and message last seen.
    TimedOut {
        /// Phase last seen (`-` before any status).
        phase: String,
        /// Message last seen.
        message: String,
    },
}

impl Verdict {
    /// Process exit code: 0 Healthy, 1 Degraded, 2 timed out.
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Healthy(_) => 0,
            Self::Degraded(_) => 1,
            Self::TimedOut { .. } => 2,
        }
    }
}

/// Decodes a Rollout read untyped; on failure, names the field that does not decode.
pub fn decode_rollout(raw: &DynamicObject) -> Result<Rollout, DecodeError> {
    let value = serde_json::to_value(raw).map_err(|e| DecodeError {
        field: String::new(),
        problem: e.to_string(),
    })?;
    decode::rollout(&value)
}

/// Reads the Rollout `namespace/name`. One that the API server stores but these types cannot
/// represent (stored under an older or looser CRD) is an error naming the field.
pub async fn read_rollout(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<Rollout, CtlError> {
    let api = Api::<DynamicObject>::namespaced_with(
        client.clone(),
        namespace,
        &ApiResource::erase::<Rollout>(&()),
    );
    let raw = api
        .get_opt(name)
        .await
        .map_err(|source| CtlError::Kube {
            what: format!("reading rollout {namespace}/{name}"),
            source,
        })?
        .ok_or_else(|| CtlError::NotFound {
            namespace: namespace.to_string(),
            name: name.to_string(),
        })?;
    decode_rollout(&raw).map_err(|problem| CtlError::Undecodable {
        rollout: format!("{namespace}/{name}"),
        problem,
    })
}

/// Phase and message of the status, when it describes the current generation.
fn current(r: &Rollout) -> Option<(RolloutPhase, String)> {
    let s = r.status.as_ref()?;
    if s.observed_generation != r.metadata.generation {
        return None;
    }
    Some((s.phase?, s.message.clone().unwrap_or_default()))
}

/// Waits until the rollout is Healthy or Degraded (its status describing the current
/// generation), or `timeout` passes. `progress` is called with each new phase and message.
pub async fn wait_status(
    client: &Client,
    namespace: &str,
    name: &str,
    timeout: Duration,
    mut progress: impl FnMut(&str),
) -> Result<Verdict, CtlError> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last = String::new();
    loop {
        let rollout = read_rollout(client, namespace, name).await?;
        let now = current(&rollout);
        let line = match &now {
            Some((phase, message)) => format!("{phase}: {message}"),
            None => "waiting for the controller to observe the latest spec".to_string(),
        };
        if line != last {
            progress(&line);
            last = line;
        }
        match now {
            Some((RolloutPhase::Healthy, m)) => return Ok(Verdict::Healthy(m)),
            Some((RolloutPhase::Degraded, m)) => return Ok(Verdict::Degraded(m)),
            _ => {}
        }
        if tokio::time::Instant::now() >= deadline {
            let (phase, message) = now.map_or_else(
                || ("-".to_string(), String::new()),
                |(p, m)| (p.to_string(), m),
            );
            return Ok(Verdict::TimedOut { phase, message });
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// One line of `rollgate list rollouts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolloutRow {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// `BlueGreen` or `Canary`.
    pub strategy: String,
    /// Phase (`-` before the controller wrote one).
    pub phase: String,
    /// Canary step as `n/m`, else `-`.
    pub step: String,
    /// Canary weight as `set/actual`, else `-`.
    pub weight: String,
    /// Ready pods / desired.
    pub ready: String,
    /// Status message (for a Rollout that does not decode: `invalid: FIELD: PROBLEM`).
    pub message: String,
}

impl RolloutRow {
    /// The row of one rollout.
    pub fn of(r: &Rollout) -> Self {
        let s = r.status.clone().unwrap_or_default();
        let strategy = if r.spec.strategy.canary.is_some() {
            "Canary"
        } else {
            "BlueGreen"
        };
        let steps = r.spec.strategy.canary.as_ref().map(|c| c.steps.len());
        let step = match (steps, s.current_step_index) {
            (Some(n), Some(i)) if usize::try_from(i).is_ok_and(|i| i < n) => {
                format!("{}/{n}", i + 1)
            }
            (Some(n), Some(_)) => format!("{n}/{n}"),
            _ => "-".into(),
        };
        let weight = s
            .canary
            .as_ref()
            .and_then(|c| c.weights.as_ref())
            .map_or_else(
                || "-".into(),
                |w| format!("{}/{}", w.set_weight, w.actual_weight),
            );
        Self {
            namespace: r.metadata.namespace.clone().unwrap_or_default(),
            name: r.metadata.name.clone().unwrap_or_default(),
            strategy: strategy.into(),
            phase: s.phase.map_or_else(|| "-".into(), |p| p.to_string()),
            step,
            weight,
            ready: format!(
                "{}/{}",
                s.ready_replicas.unwrap_or(0),
                r.spec.replicas.unwrap_or(1)
            ),
            message: s.message.unwrap_or_default(),
        }
    }
}

impl RolloutRow {
    /// The row of a Rollout that does not decode: its name, the phase its status may still
    /// show, and `invalid: FIELD: PROBLEM` as the message.
    pub fn undecodable(raw: &DynamicObject, problem: &DecodeError) -> Self {
        let phase = raw
            .data
            .get("status")
            .and_then(|s| s.get("phase"))
            .and_then(serde_json::Value::as_str)
            .unwrap_or("-");
        Self {
            namespace: raw.metadata.namespace.clone().unwrap_or_default(),
            name: raw.metadata.name.clone().unwrap_or_default(),
            strategy: "-".into(),
            phase: phase.into(),
            step: "-".into(),
            weight: "-".into(),
            ready: "-".into(),
            message: format!("invalid: {problem}"),
        }
    }
}

/// The rollouts of `namespace`, or of every namespace when `None`, sorted. Each is decoded on
/// its own: one that does not decode is listed with the field that is wrong.
pub async fn list(client: &Client, namespace: Option<&str>) -> Result<Vec<RolloutRow>, CtlError> {
    let resource = ApiResource::erase::<Rollout>(&());
    let api: Api<DynamicObject> = match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
        None => Api::all_with(client.clone(), &resource),
    };
    let items = api
        .list(&ListParams::default())
        .await
        .map_err(|source| CtlError::Kube {
            what: "listing rollouts".into(),
            source,
        })?
        .items;
    let mut rows: Vec<RolloutRow> = items
        .iter()
        .map(|raw| match decode_rollout(raw) {
            Ok(r) => RolloutRow::of(&r),
            Err(problem) => RolloutRow::undecodable(raw, &problem),
        })
        .collect();
    rows.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    Ok(rows)
}

/// A table of rows, columns aligned; the message column last and unpadded.
pub fn render_table(rows: &[RolloutRow]) -> String {
    let header = [
        "NAMESPACE",
        "NAME",
        "STRATEGY",
        "PHASE",
        "STEP",
        "WEIGHT",
        "READY",
        "MESSAGE",
    ];
    let cells: Vec<[String; 8]> = rows
        .iter()
        .map(|r| {
            [
                r.namespace.clone(),
                r.name.clone(),
                r.strategy.clone(),
                r.phase.clone(),
                r.step.clone(),
                r.weight.clone(),
                r.ready.clone(),
                r.message.clone(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |row: &[String]| {
        let mut out = String::new();
        for (i, c) in row.iter().enumerate() {
            if i + 1 == row.len() {
                out.push_str(c);
            } else {
                out.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        out.trim_end().to_string()
    };
    let mut out = line(&header.map(str::to_string));
    for row in &cells {
        out.push('\n');
        out.push_str(&line(row));
    }
    out
}
