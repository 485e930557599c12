//! `rollgate approve|reject RELEASE --stage S` and `rollgate promote --pipeline P --release R
//! --stage S`: each creates one Approval (they are create-only; the newest per approver
//! counts). [`plan_approval`] is pure: it refuses a release that does not exist or a stage
//! its pipeline does not have; [`decide`] reads, plans and creates.

use kube::api::{ObjectMeta, PostParams};
use kube::config::Kubeconfig;
use kube::{Api, Client, ResourceExt};
use rollgate_api::pipeline::Decision;
use rollgate_api::{Approval, ApprovalSpec, PromotionPipeline, Release};

use crate::error::CtlError;
use crate::pipeline::{read_pipeline, read_release};
use crate::run::FIELD_MANAGER;

/// One decision to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decide {
    /// The Release.
    pub release: String,
    /// The stage of its pipeline.
    pub stage: String,
    /// Approve, Reject or Promote.
    pub decision: Decision,
    /// Who decides.
    pub approver: String,
    /// `-m TEXT`.
    pub comment: Option<String>,
    /// `promote --pipeline P`: the release must belong to P.
    pub pipeline: Option<String>,
}

/// Checks that `stage` is a stage of the release's pipeline.
pub fn check_stage(
    release_id: &str,
    pipeline: &PromotionPipeline,
    stage: &str,
) -> Result<(), CtlError> {
    if pipeline.spec.stages.iter().any(|s| s.name == stage) {
        return Ok(());
    }
    Err(CtlError::NoSuchStage {
        release: release_id.to_string(),
        pipeline: pipeline.name_any(),
        stage: stage.to_string(),
        stages: pipeline
            .spec
            .stages
            .iter()
            .map(|s| s.name.clone())
            .collect(),
    })
}

/// The Approval to create for `d` in `namespace`, given the release and its pipeline as read.
/// Refuses when `d.approver` is empty, when the release belongs to another pipeline than
/// `d.pipeline`, or when its pipeline has no stage `d.stage`. The Approval is named by the API
/// server from `<release>-<stage>-`.
pub fn plan_approval(
    namespace: &str,
    d: &Decide,
    release: &Release,
    pipeline: &PromotionPipeline,
) -> Result<Approval, CtlError> {
    let release_id = format!("{namespace}/{}", d.release);
    if d.approver.trim().is_empty() {
        return Err(CtlError::NoApprover {
            problem: "the approver is empty".into(),
        });
    }
    if let Some(asked) = d
        .pipeline
        .as_deref()
        .filter(|p| *p != release.spec.pipeline)
    {
        return Err(CtlError::WrongPipeline {
            release: release_id,
            asked: asked.to_string(),
            actual: release.spec.pipeline.clone(),
        });
    }
    check_stage(&release_id, pipeline, &d.stage)?;
    Ok(Approval {
        metadata: ObjectMeta {
            generate_name: Some(format!("{}-{}-", d.release, d.stage)),
            namespace: Some(namespace.to_string()),
            ..Default::default()
        },
        spec: ApprovalSpec {
            release: d.release.clone(),
            stage: d.stage.clone(),
            decision: d.decision,
            approver: d.approver.clone(),
            comment: d.comment.clone().filter(|c| !c.is_empty()),
        },
    })
}

/// Reads the Release `namespace/d.release` and its pipeline, plans, and creates the Approval.
/// Returns the message to print.
pub async fn decide(client: &Client, namespace: &str, d: &Decide) -> Result<String, CtlError> {
    let release = read_release(client, namespace, &d.release).await?;
    let pipeline = read_pipeline(client, namespace, &release.spec.pipeline).await?;
    let approval = plan_approval(namespace, d, &release, &pipeline)?;
    let params = PostParams {
        field_manager: Some(FIELD_MANAGER.to_string()),
        ..Default::default()
    };
    let created = Api::<Approval>::namespaced(client.clone(), namespace)
        .create(&params, &approval)
        .await
        .map_err(|source| CtlError::Kube {
            what: format!(
                "creating an Approval for release {namespace}/{} in stage {}",
                d.release, d.stage
            ),
            source,
        })?;
    let what = match d.decision {
        Decision::Approve => "approves",
        Decision::Reject => "rejects",
        Decision::Promote => "promotes",
    };
    Ok(format!(
        "approval '{namespace}/{}' created: {} {what} release {} {} stage {}",
        created.name_any(),
        d.approver,
        d.release,
        if d.decision == Decision::Promote {
            "into"
        } else {
            "for"
        },
        d.stage
    ))
}

/// The name of the user entry of the kubeconfig's `context` (default: its current context):
/// who is recorded as the approver when `--approver` is not given.
pub fn kubeconfig_user(config: &Kubeconfig, context: Option<&str>) -> Result<String, CtlError> {
    let name = context
        .or(config.current_context.as_deref())
        .filter(|c| !c.is_empty())
        .ok_or_else(|| CtlError::NoApprover {
            problem: "the kubeconfig has no current-context".into(),
        })?;
    let entry = config
        .contexts
        .iter()
        .find(|c| c.name == name)
        .ok_or_else(|| CtlError::NoApprover {
            problem: format!("the kubeconfig has no context '{name}'"),
        })?;
    entry
        .context
        .as_ref()
        .and_then(|c| c.user.clone())
        .filter(|u| !u.is_empty())
        .ok_or_else(|| CtlError::NoApprover {
            problem: format!("context '{name}' of the kubeconfig names no user"),
        })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pipeline() -> PromotionPipeline {
        serde_json::from_value(json!({
            "apiVersion": "rollgate.dev/v1alpha1", "kind": "PromotionPipeline",
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"stages": [
                {"name": "staging", "rollout": {"name": "web-staging"}},
                {"name": "production", "rollout": {"name": "web"}}
            ]}
        }))
        .expect("pipeline")
    }

    fn release() -> Release {
        serde_json::from_value(json!({
            "apiVersion": "rollgate.dev/v1alpha1", "kind": "Release",
            "metadata": {"name": "web-3", "namespace": "shop"},
            "spec": {"pipeline": "web", "images": {"web": "web@sha256:3"},
                "sourceImages": {"web": "web:3"}, "entered": "staging", "number": 3,
                "created": "2026-01-01T00:00:00Z"}
        }))
        .expect("release")
    }

    fn decide(stage: &str, decision: Decision) -> Decide {
        Decide {
            release: "web-3".into(),
            stage: stage.into(),
            decision,
            approver: "alice".into(),
            comment: Some("looks good".into()),
            pipeline: None,
        }
    }

    #[test]
    fn approval_names_release_stage_decision_and_approver() {
        let a = plan_approval(
            "shop",
            &decide("production", Decision::Reject),
            &release(),
            &pipeline(),
        )
        .expect("planned");
        assert_eq!(
            a.metadata.generate_name.as_deref(),
            Some("web-3-production-")
        );
        assert_eq!(a.metadata.name, None);
        assert_eq!(a.metadata.namespace.as_deref(), Some("shop"));
        assert_eq!(
            a.spec,
            ApprovalSpec {
                release: "web-3".into(),
                stage: "production".into(),
                decision: Decision::Reject,
                approver: "alice".into(),
                comment: Some("looks good".into()),
            }
        );
    }

    #[test]
    fn a_stage_the_pipeline_does_not_have_is_refused_with_the_stages() {
        let err = plan_approval(
            "shop",
            &decide("prod", Decision::Approve),
            &release(),
            &pipeline(),
        )
        .expect_err("no such stage");
        assert!(matches!(&err, CtlError::NoSuchStage { stage, .. } if stage == "prod"));
        assert_eq!(
            err.to_string(),
            "release shop/web-3 has no stage 'prod': its pipeline web has the stages staging, production"
        );
    }

    #[test]
    fn promote_checks_the_pipeline_named() {
        let mut d = decide("production", Decision::Promote);
        d.pipeline = Some("api".into());
        let err = plan_approval("shop", &d, &release(), &pipeline()).expect_err("other pipeline");
        assert!(matches!(err, CtlError::WrongPipeline { .. }), "{err}");
        assert!(err.to_string().contains("'web' (spec.pipeline)"), "{err}");
        d.pipeline = Some("web".into());
        let a = plan_approval("shop", &d, &release(), &pipeline()).expect("same pipeline");
        assert_eq!(a.spec.decision, Decision::Promote);
    }

    #[test]
    fn an_empty_approver_is_refused() {
        let mut d = decide("production", Decision::Approve);
        d.approver = " ".into();
        let err = plan_approval("shop", &d, &release(), &pipeline()).expect_err("empty");
        assert!(err.to_string().contains("--approver"), "{err}");
    }

    fn kubeconfig() -> Kubeconfig {
        Kubeconfig::from_yaml(
            "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'http://127.0.0.1:1'}}]\n\
             users: [{name: alice, user: {}}, {name: bob, user: {}}]\n\
             contexts:\n- {name: dev, context: {cluster: c, user: alice}}\n\
             - {name: prod, context: {cluster: c, user: bob}}\n\
             - {name: anon, context: {cluster: c}}\n\
             current-context: dev\n",
        )
        .expect("kubeconfig")
    }

    #[test]
    fn the_approver_is_the_user_of_the_context() {
        let k = kubeconfig();
        assert_eq!(kubeconfig_user(&k, None).expect("current"), "alice");
        assert_eq!(kubeconfig_user(&k, Some("prod")).expect("prod"), "bob");
        let err = kubeconfig_user(&k, Some("anon")).expect_err("no user");
        assert!(err.to_string().contains("names no user"), "{err}");
        let err = kubeconfig_user(&k, Some("missing")).expect_err("no context");
        assert!(err.to_string().contains("no context 'missing'"), "{err}");
        let mut k = k;
        k.current_context = None;
        assert!(kubeconfig_user(&k, None).is_err());
    }
}
