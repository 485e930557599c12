//! Spec validation: every problem names the field and what was expected.
//!
//! An invalid Rollout never touches traffic: the engine reports the problems in status and
//! events and emits no action.

use std::fmt;

use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use rollgate_api::{RolloutAnalysis, RolloutSpec};

use crate::observed::Observed;

/// Default `revisionHistoryLimit`.
pub const DEFAULT_REVISION_HISTORY_LIMIT: i32 = 10;
/// Default `progressDeadlineSeconds`.
pub const DEFAULT_PROGRESS_DEADLINE_SECONDS: i64 = 600;
/// Default `scaleDownDelaySeconds` and `abortScaleDownDelaySeconds`.
pub const DEFAULT_SCALE_DOWN_DELAY_SECONDS: i64 = 30;

/// One problem with a spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// JSON path of the field, e.g. `spec.strategy.blueGreen.activeService`.
    pub field: String,
    /// What was expected and what was found.
    pub expected: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.expected)
    }
}

fn problem(field: impl Into<String>, expected: impl Into<String>) -> Problem {
    Problem {
        field: field.into(),
        expected: expected.into(),
    }
}

/// Fields shared by both strategies, with defaults applied.
#[derive(Debug, Clone, PartialEq)]
pub struct CommonSpec {
    /// Desired pods.
    pub replicas: i32,
    /// Pod template.
    pub template: PodTemplateSpec,
    /// Pod selector.
    pub selector: LabelSelector,
    /// `minReadySeconds`.
    pub min_ready_seconds: i32,
    /// `revisionHistoryLimit`.
    pub revision_history_limit: i32,
    /// `paused`.
    pub paused: bool,
    /// `progressDeadlineSeconds`.
    pub progress_deadline_seconds: i64,
    /// `progressDeadlineAbort` (rollgate default: true).
    pub progress_deadline_abort: bool,
}

/// A valid blue/green spec with defaults applied.
#[derive(Debug, Clone, PartialEq)]
pub struct BlueGreenSpec {
    /// Shared fields.
    pub common: CommonSpec,
    /// Active Service name.
    pub active_service: String,
    /// Preview Service name.
    pub preview_service: Option<String>,
    /// Replicas before promotion (at most `replicas`).
    pub preview_replica_count: i32,
    /// `autoPromotionEnabled`.
    pub auto_promotion_enabled: bool,
    /// `autoPromotionSeconds`.
    pub auto_promotion_seconds: Option<i64>,
    /// `scaleDownDelaySeconds`.
    pub scale_down_delay_seconds: i64,
    /// `scaleDownDelayRevisionLimit`.
    pub scale_down_delay_revision_limit: Option<usize>,
    /// `abortScaleDownDelaySeconds`.
    pub abort_scale_down_delay_seconds: i64,
    /// `prePromotionAnalysis`.
    pub pre_promotion_analysis: Option<RolloutAnalysis>,
    /// `postPromotionAnalysis`.
    pub post_promotion_analysis: Option<RolloutAnalysis>,
}

/// A valid spec, by strategy.
#[derive(Debug, Clone, PartialEq)]
pub enum Valid {
    /// Blue/green.
    BlueGreen(Box<BlueGreenSpec>),
}

/// Checks a Rollout spec against itself and the observed cluster (Services, templates).
pub fn validate(
    rollout: &rollgate_api::Rollout,
    observed: &Observed,
) -> Result<Valid, Vec<Problem>> {
    let spec = &rollout.spec;
    let mut problems = Vec::new();
    let common = common(spec, &mut problems);
    let strategy = &spec.strategy;
    let valid = match (&strategy.blue_green, &strategy.canary) {
        (Some(_), Some(_)) => {
            problems.push(problem(
                "spec.strategy",
                "exactly one of blueGreen or canary expected, found both",
            ));
            None
        }
        (None, None) => {
            problems.push(problem(
                "spec.strategy",
                "exactly one of blueGreen or canary expected, found neither",
            ));
            None
        }
        (None, Some(_)) => {
            problems.push(problem(
                "spec.strategy.canary",
                "the canary strategy is not supported by this rollgate version; use blueGreen",
            ));
            None
        }
        (Some(bg), None) => blue_green(bg, observed, common.as_ref(), &mut problems),
    };
    match (valid, problems.is_empty()) {
        (Some(v), true) => Ok(v),
        _ => Err(problems),
    }
}

fn non_negative(field: &str, value: Option<i32>, problems: &mut Vec<Problem>) -> Option<i32> {
    match value {
        Some(v) if v < 0 => {
            problems.push(problem(field, format!("must be >= 0, got {v}")));
            None
        }
        v => v,
    }
}

fn common(spec: &RolloutSpec, problems: &mut Vec<Problem>) -> Option<CommonSpec> {
    let replicas = non_negative("spec.replicas", spec.replicas, problems).unwrap_or(1);
    let min_ready_seconds =
        non_negative("spec.minReadySeconds", spec.min_ready_seconds, problems).unwrap_or(0);
    let revision_history_limit = non_negative(
        "spec.revisionHistoryLimit",
        spec.revision_history_limit,
        problems,
    )
    .unwrap_or(DEFAULT_REVISION_HISTORY_LIMIT);
    let progress_deadline_seconds = match spec.progress_deadline_seconds {
        Some(v) if v <= 0 => {
            problems.push(problem(
                "spec.progressDeadlineSeconds",
                format!("must be > 0, got {v}"),
            ));
            DEFAULT_PROGRESS_DEADLINE_SECONDS
        }
        Some(v) => i64::from(v),
        None => DEFAULT_PROGRESS_DEADLINE_SECONDS,
    };
    let template = match &spec.template {
        None => {
            problems.push(problem(
                "spec.template",
                "required, expected a pod template",
            ));
            None
        }
        Some(t) => {
            if t.spec.as_ref().is_none_or(|s| s.containers.is_empty()) {
                problems.push(problem(
                    "spec.template.spec.containers",
                    "at least one container expected",
                ));
            }
            Some(t.clone())
        }
    };
    let selector = match &spec.selector {
        None => {
            problems.push(problem(
                "spec.selector",
                "required, expected a label selector matching spec.template.metadata.labels",
            ));
            None
        }
        Some(s) => Some(s.clone()),
    };
    if let (Some(t), Some(s)) = (&template, &selector) {
        let labels = t
            .metadata
            .as_ref()
            .and_then(|m| m.labels.clone())
            .unwrap_or_default();
        let match_labels = s.match_labels.clone().unwrap_or_default();
        if match_labels.is_empty() && s.match_expressions.as_ref().is_none_or(Vec::is_empty) {
            problems.push(problem(
                "spec.selector",
                "a non-empty selector expected (it would select every pod)",
            ));
        }
        for (k, v) in &match_labels {
            if labels.get(k) != Some(v) {
                problems.push(problem(
                    "spec.selector.matchLabels",
                    format!("{k}={v} must also be a label of spec.template.metadata.labels"),
                ));
            }
        }
    }
    Some(CommonSpec {
        replicas,
        template: template?,
        selector: selector?,
        min_ready_seconds,
        revision_history_limit,
        paused: spec.paused.unwrap_or(false),
        progress_deadline_seconds,
        progress_deadline_abort: spec.progress_deadline_abort.unwrap_or(true),
    })
}

fn service_ref(
    field: &str,
    name: Option<&str>,
    required: bool,
    observed: &Observed,
    problems: &mut Vec<Problem>,
) -> Option<String> {
    match name.map(str::trim) {
        None | Some("") if required => {
            problems.push(problem(field, "required, expected the name of a Service"));
            None
        }
        None | Some("") => None,
        Some(n) if !observed.services.contains_key(n) => {
            problems.push(problem(
                field,
                format!("Service \"{n}\" not found in the rollout's namespace"),
            ));
            None
        }
        Some(n) => Some(n.to_string()),
    }
}

fn analysis_refs(
    field: &str,
    analysis: Option<&RolloutAnalysis>,
    observed: &Observed,
    problems: &mut Vec<Problem>,
) {
    let Some(analysis) = analysis else { return };
    if analysis.templates.is_empty() {
        problems.push(problem(
            format!("{field}.templates"),
            "at least one template reference expected",
        ));
    }
    for (i, t) in analysis.templates.iter().enumerate() {
        let cluster = t.cluster_scope.unwrap_or(false);
        let kind = if cluster {
            "ClusterAnalysisTemplate"
        } else {
            "AnalysisTemplate"
        };
        if t.template_name.is_empty() {
            problems.push(problem(
                format!("{field}.templates[{i}].templateName"),
                "required, expected a template name",
            ));
        } else if !observed
            .templates
            .contains_key(&(cluster, t.template_name.clone()))
        {
            problems.push(problem(
                format!("{field}.templates[{i}].templateName"),
                format!("{kind} \"{}\" not found", t.template_name),
            ));
        }
    }
}

fn blue_green(
    bg: &rollgate_api::BlueGreenStrategy,
    observed: &Observed,
    common: Option<&CommonSpec>,
    problems: &mut Vec<Problem>,
) -> Option<Valid> {
    const F: &str = "spec.strategy.blueGreen";
    let active = service_ref(
        &format!("{F}.activeService"),
        bg.active_service.as_deref(),
        true,
        observed,
        problems,
    );
    let preview = service_ref(
        &format!("{F}.previewService"),
        bg.preview_service.as_deref(),
        false,
        observed,
        problems,
    );
    if active.is_some() && active == preview {
        problems.push(problem(
            format!("{F}.previewService"),
            "must differ from activeService",
        ));
    }
    let preview_count = non_negative(
        &format!("{F}.previewReplicaCount"),
        bg.preview_replica_count,
        problems,
    );
    let auto_secs = non_negative(
        &format!("{F}.autoPromotionSeconds"),
        bg.auto_promotion_seconds,
        problems,
    );
    let delay = non_negative(
        &format!("{F}.scaleDownDelaySeconds"),
        bg.scale_down_delay_seconds,
        problems,
    );
    let delay_limit = non_negative(
        &format!("{F}.scaleDownDelayRevisionLimit"),
        bg.scale_down_delay_revision_limit,
        problems,
    );
    let abort_delay = non_negative(
        &format!("{F}.abortScaleDownDelaySeconds"),
        bg.abort_scale_down_delay_seconds,
        problems,
    );
    analysis_refs(
        &format!("{F}.prePromotionAnalysis"),
        bg.pre_promotion_analysis.as_ref(),
        observed,
        problems,
    );
    analysis_refs(
        &format!("{F}.postPromotionAnalysis"),
        bg.post_promotion_analysis.as_ref(),
        observed,
        problems,
    );
    let common = common?.clone();
    let replicas = common.replicas;
    Some(Valid::BlueGreen(Box::new(BlueGreenSpec {
        common,
        active_service: active?,
        preview_service: preview,
        preview_replica_count: preview_count.unwrap_or(replicas).min(replicas),
        auto_promotion_enabled: bg.auto_promotion_enabled.unwrap_or(true),
        auto_promotion_seconds: auto_secs.map(i64::from),
        scale_down_delay_seconds: delay
            .map(i64::from)
            .unwrap_or(DEFAULT_SCALE_DOWN_DELAY_SECONDS),
        scale_down_delay_revision_limit: delay_limit.and_then(|v| usize::try_from(v).ok()),
        abort_scale_down_delay_seconds: abort_delay
            .map(i64::from)
            .unwrap_or(DEFAULT_SCALE_DOWN_DELAY_SECONDS),
        pre_promotion_analysis: bg.pre_promotion_analysis.clone(),
        post_promotion_analysis: bg.post_promotion_analysis.clone(),
    })))
}
