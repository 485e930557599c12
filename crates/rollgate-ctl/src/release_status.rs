//! `rollgate status release R --stage S`, for CI: waits until the release is Verified in the
//! stage (exit 0), is Bad or Failed/RolledBack there (exit 1), or the timeout passes (exit 2).
//! [`judge`] is the pure decision on one reading of the Release.

use std::time::Duration;

use kube::{Client, ResourceExt};
use rollgate_api::Release;
use rollgate_api::pipeline::{StagePhase, Verdict};

use crate::approval::check_stage;
use crate::error::CtlError;
use crate::pipeline::{read_pipeline, read_release, verdict_text};

/// One reading of a release in one stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Judgement {
    /// Verified in the stage.
    Verified,
    /// The release is Bad, or failed in the stage: why.
    Failed(String),
    /// Neither yet: the phase (`-` before the controller wrote one) and its message.
    Pending {
        /// The stage's phase.
        phase: String,
        /// Its rendered message (empty when none).
        message: String,
    },
}

/// How `rollgate status release` ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReleaseOutcome {
    /// Verified in the stage.
    Verified,
    /// Bad, or Failed/RolledBack in the stage: why.
    Failed(String),
    /// Neither within the timeout: the phase and message last seen.
    TimedOut {
        /// Phase last seen.
        phase: String,
        /// Message last seen.
        message: String,
    },
}

impl ReleaseOutcome {
    /// Process exit code: 0 Verified, 1 Bad or failed, 2 timed out.
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Verified => 0,
            Self::Failed(_) => 1,
            Self::TimedOut { .. } => 2,
        }
    }
}

/// Judges the release in `stage`. A Bad release is a failure even where it was Verified (it is
/// never promoted again); otherwise Verified in the stage is success and Failed or RolledBack
/// there a failure; anything else is pending (Superseded included: a person may still promote
/// it).
pub fn judge(release: &Release, stage: &str) -> Judgement {
    let status = release.status.clone().unwrap_or_default();
    let st = status.stages.iter().find(|s| s.name == stage);
    let name = release.name_any();
    if status.verdict == Some(Verdict::Bad) {
        return Judgement::Failed(format!("release {name} is {}", verdict_text(release)));
    }
    match st.map(|s| s.phase) {
        Some(StagePhase::Verified) => Judgement::Verified,
        Some(phase @ (StagePhase::Failed | StagePhase::RolledBack)) => {
            let mut reason = format!("release {name} {phase} in stage {stage}");
            if let Some(f) = status.failure.as_ref().filter(|f| f.stage == stage) {
                reason.push_str(&format!(": {}", f.cause));
                if !f.message.is_empty() {
                    reason.push_str(&format!(": {}", f.message));
                }
            } else if let Some(m) = st
                .and_then(|s| s.message.as_deref())
                .filter(|m| !m.is_empty())
            {
                reason.push_str(&format!(": {m}"));
            }
            Judgement::Failed(reason)
        }
        Some(phase) => Judgement::Pending {
            phase: phase.to_string(),
            message: st.and_then(|s| s.message.clone()).unwrap_or_default(),
        },
        None => Judgement::Pending {
            phase: "-".into(),
            message: String::new(),
        },
    }
}

/// Waits until [`judge`] decides for the Release `namespace/name` in `stage`, or `timeout`
/// passes; reads it once a second. Refuses a release that does not exist or a stage its
/// pipeline does not have. `progress` is called with each new phase and message.
pub async fn wait_release(
    client: &Client,
    namespace: &str,
    name: &str,
    stage: &str,
    timeout: Duration,
    mut progress: impl FnMut(&str),
) -> Result<ReleaseOutcome, CtlError> {
    let deadline = tokio::time::Instant::now() + timeout;
    let release = read_release(client, namespace, name).await?;
    let pipeline = read_pipeline(client, namespace, &release.spec.pipeline).await?;
    check_stage(&format!("{namespace}/{name}"), &pipeline, stage)?;
    let mut release = release;
    let mut last = String::new();
    loop {
        let (phase, message) = match judge(&release, stage) {
            Judgement::Verified => return Ok(ReleaseOutcome::Verified),
            Judgement::Failed(why) => return Ok(ReleaseOutcome::Failed(why)),
            Judgement::Pending { phase, message } => (phase, message),
        };
        let line = if message.is_empty() {
            phase.clone()
        } else {
            format!("{phase}: {message}")
        };
        if line != last {
            progress(&line);
            last = line;
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok(ReleaseOutcome::TimedOut { phase, message });
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        release = read_release(client, namespace, name).await?;
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn release(status: Value) -> Release {
        serde_json::from_value(json!({
            "apiVersion": "rollgate.dev/v1alpha1", "kind": "Release",
            "metadata": {"name": "web-3", "namespace": "shop"},
            "spec": {"pipeline": "web", "images": {"web": "web@sha256:3"},
                "sourceImages": {"web": "web:3"}, "entered": "staging", "number": 3,
                "created": "2026-01-01T00:00:00Z"},
            "status": status
        }))
        .expect("release")
    }

    #[test]
    fn verified_in_the_stage_is_success_and_exit_0() {
        let r = release(json!({"verdict": "Unknown", "stages": [
            {"name": "staging", "phase": "Verified"},
            {"name": "production", "phase": "Blocked", "message": "soak 12m left"}
        ]}));
        assert_eq!(judge(&r, "staging"), Judgement::Verified);
        assert_eq!(ReleaseOutcome::Verified.exit_code(), 0);
        assert_eq!(
            judge(&r, "production"),
            Judgement::Pending {
                phase: "Blocked".into(),
                message: "soak 12m left".into()
            }
        );
    }

    #[test]
    fn a_bad_release_fails_even_where_it_was_verified() {
        let r = release(json!({
            "verdict": "Bad",
            "failure": {"stage": "production", "cause": "RolloutAborted",
                "message": "AnalysisFailed: error-rate", "at": "2026-01-01T00:05:00Z"},
            "stages": [
                {"name": "staging", "phase": "Verified"},
                {"name": "production", "phase": "RolledBack"}
            ]
        }));
        let Judgement::Failed(why) = judge(&r, "staging") else {
            panic!("failure expected");
        };
        assert_eq!(
            why,
            "release web-3 is Bad: failed in production: RolloutAborted: AnalysisFailed: error-rate"
        );
        assert_eq!(ReleaseOutcome::Failed(why).exit_code(), 1);
    }

    #[test]
    fn failed_or_rolled_back_in_the_stage_fails_before_the_verdict() {
        for phase in ["Failed", "RolledBack"] {
            let r = release(json!({"stages": [{"name": "staging", "phase": phase}]}));
            assert_eq!(
                judge(&r, "staging"),
                Judgement::Failed(format!("release web-3 {phase} in stage staging"))
            );
        }
        let r = release(json!({
            "failure": {"stage": "staging", "cause": "VerificationFailed",
                "message": "run web-3-staging-1 failed", "at": "2026-01-01T00:05:00Z"},
            "stages": [{"name": "staging", "phase": "Failed"}]
        }));
        assert_eq!(
            judge(&r, "staging"),
            Judgement::Failed(
                "release web-3 Failed in stage staging: VerificationFailed: run web-3-staging-1 failed"
                    .into()
            )
        );
    }

    #[test]
    fn anything_else_is_pending_and_times_out_with_exit_2() {
        for phase in [
            "Waiting",
            "Blocked",
            "Promoting",
            "Progressing",
            "Verifying",
            "Superseded",
        ] {
            let r = release(json!({"stages": [{"name": "production", "phase": phase}]}));
            assert!(
                matches!(judge(&r, "production"), Judgement::Pending { phase: p, .. } if p == phase),
                "{phase}"
            );
        }
        let r = release(Value::Null);
        assert_eq!(
            judge(&r, "production"),
            Judgement::Pending {
                phase: "-".into(),
                message: String::new()
            }
        );
        let t = ReleaseOutcome::TimedOut {
            phase: "Blocked".into(),
            message: String::new(),
        };
        assert_eq!(t.exit_code(), 2);
    }
}
