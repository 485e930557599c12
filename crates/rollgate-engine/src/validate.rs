//! Spec validation: every problem names the field and what was expected.
//!
//! An invalid Rollout never touches traffic: the engine reports the problems in status and
//! events and emits no action.

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use rollgate_api::{AnalysisArg, CanaryStrategy, RolloutAnalysis, RolloutSpec};

use crate::observed::{Observed, WorkloadKind};
use crate::routes::{self, HeaderMatch, ManagedRule, RequestMatch, RouteKind, StringMatch};

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

pub(crate) fn problem(field: impl Into<String>, expected: impl Into<String>) -> Problem {
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
    /// `restartAt`: pods created before it are restarted.
    pub restart_at: Option<k8s_openapi::jiff::Timestamp>,
    /// `alerts` and `guard`.
    pub alerts: Option<crate::alerts::AlertPolicy>,
    /// Blue/green `antiAffinity`: new pods avoid the nodes of the stable revision's pods.
    pub anti_affinity: Option<AntiAffinityRule>,
    /// `workloadRef`: the object the template comes from, and its `scaleDown` policy.
    pub workload: Option<Workload>,
}

/// How a new revision's pods avoid the nodes of the stable revision's pods (Argo Rollouts'
/// `antiAffinity`: a pod anti-affinity term on `kubernetes.io/hostname` against the stable
/// pod-template hash, added to the new ReplicaSet's pod template).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AntiAffinityRule {
    /// `preferredDuringSchedulingIgnoredDuringExecution` with this weight (1-100).
    Preferred(i32),
    /// `requiredDuringSchedulingIgnoredDuringExecution`.
    Required,
}

/// A valid `spec.workloadRef` (Argo Rollouts' "Reference Deployment From Rollout"; Argo also
/// reads a ReplicaSet or a PodTemplate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    /// Kind of the referenced object.
    pub kind: WorkloadKind,
    /// Its name.
    pub name: String,
    /// `scaleDown`. It scales a Deployment or a ReplicaSet; a PodTemplate runs no pods, so
    /// for one it changes nothing (Argo accepts it there too and has nothing to scale).
    pub scale_down: ScaleDown,
}

/// `spec.workloadRef.scaleDown`: what happens to the referenced Deployment's (or
/// ReplicaSet's) own pods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScaleDown {
    /// `never` (default): the Deployment is left alone.
    Never,
    /// `onsuccess`: scaled to zero once the rollout is Healthy.
    OnSuccess,
    /// `progressively`: scaled down as the rollout's pods become available (and back up if
    /// they stop being available before the rollout is Healthy).
    Progressively,
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

/// A valid canary spec with defaults applied and sizes resolved against `replicas`.
#[derive(Debug, Clone, PartialEq)]
pub struct CanarySpec {
    /// Shared fields.
    pub common: CommonSpec,
    /// Service selecting only canary pods.
    pub canary_service: Option<String>,
    /// Service selecting only stable pods.
    pub stable_service: Option<String>,
    /// The steps.
    pub steps: Vec<Step>,
    /// `maxSurge` in pods.
    pub max_surge: i32,
    /// `maxUnavailable` in pods.
    pub max_unavailable: i32,
    /// Background analysis and the step index it starts at.
    pub background: Option<(RolloutAnalysis, i32)>,
    /// The Gateway API HTTPRoute, when traffic is routed.
    pub route: Option<RouteRef>,
    /// `trafficRouting.managedRoutes`: the names of the routes the steps may add, in order of
    /// precedence.
    pub managed_routes: Vec<String>,
    /// `dynamicStableScale`.
    pub dynamic_stable_scale: bool,
    /// `scaleDownDelaySeconds`.
    pub scale_down_delay_seconds: i64,
    /// `scaleDownDelayRevisionLimit`: how many old ReplicaSets may wait for their delayed
    /// scale-down at once (the oldest beyond it go at once).
    pub scale_down_delay_revision_limit: Option<usize>,
    /// `abortScaleDownDelaySeconds`.
    pub abort_scale_down_delay_seconds: i64,
}

/// A Gateway API HTTPRoute and the two Services whose backend weights it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteRef {
    /// Namespace of the route.
    pub namespace: String,
    /// Name of the route.
    pub name: String,
    /// `canaryService`.
    pub canary_service: String,
    /// `stableService`.
    pub stable_service: String,
}

/// One validated canary step.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// `setWeight`: percentage of traffic for the canary.
    SetWeight(i32),
    /// `pause`: seconds, or until promoted.
    Pause(Option<i64>),
    /// `analysis`: wait for an AnalysisRun's outcome.
    Analysis(RolloutAnalysis),
    /// `setCanaryScale`.
    SetCanaryScale(CanaryScale),
    /// `setHeaderRoute` or `setMirrorRoute`: the managed route `name` does `Some(kind)` from
    /// now on, or is removed (`None`: the step has no `match`).
    ManagedRoute {
        /// Name of the route (one of `managedRoutes`).
        name: String,
        /// What it does, or `None` to remove it.
        kind: Option<RouteKind>,
    },
    /// `experiment`: run ReplicaSets of the stable and/or canary template with analyses.
    Experiment(Box<crate::experiment::ExperimentSpec>),
}

/// How many canary pods to run, independently of the traffic weight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CanaryScale {
    /// An absolute number of pods.
    Replicas(i32),
    /// A percentage of `spec.replicas`.
    Weight(i32),
    /// Back to matching the traffic weight.
    MatchTrafficWeight,
}

/// A valid spec, by strategy.
#[derive(Debug, Clone, PartialEq)]
pub enum Valid {
    /// Blue/green.
    BlueGreen(Box<BlueGreenSpec>),
    /// Canary.
    Canary(Box<CanarySpec>),
}

/// Checks a Rollout spec against itself and the observed cluster (Services, templates).
pub fn validate(
    rollout: &rollgate_api::Rollout,
    observed: &Observed,
) -> Result<Valid, Vec<Problem>> {
    let spec = &rollout.spec;
    let mut problems = Vec::new();
    let name = rollout.metadata.name.as_deref().unwrap_or_default();
    let common = common(spec, name, observed, &mut problems);
    analysis_refs(
        "spec.guard.analysis",
        spec.guard.as_ref().and_then(|g| g.analysis.as_ref()),
        rollout,
        observed,
        &mut problems,
    );
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
        (None, Some(c)) => canary(rollout, c, observed, common.as_ref(), &mut problems),
        (Some(bg), None) => blue_green(rollout, bg, observed, common.as_ref(), &mut problems),
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

fn common(
    spec: &RolloutSpec,
    rollout_name: &str,
    observed: &Observed,
    problems: &mut Vec<Problem>,
) -> Option<CommonSpec> {
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
    if i64::from(min_ready_seconds) >= progress_deadline_seconds {
        // A pod is not available before minReadySeconds: the deadline would always pass first.
        problems.push(problem(
            "spec.progressDeadlineSeconds",
            format!(
                "must be greater than spec.minReadySeconds ({min_ready_seconds}), got \
                 {progress_deadline_seconds}"
            ),
        ));
    }
    let workload = workload(spec, problems);
    let (template, deployment_selector) = match &spec.workload_ref {
        None => (own_template(spec.template.as_ref(), problems), None),
        Some(_) => workload_template(spec, rollout_name, workload.as_ref(), observed, problems),
    };
    let selector = match (&spec.selector, deployment_selector) {
        (Some(s), _) => Some(s.clone()),
        // Argo Rollouts takes the Deployment's selector when the rollout has none.
        (None, Some(s)) => Some(s),
        (None, None) if spec.workload_ref.is_some() => {
            // The object is missing (already reported), has no selector, or is a PodTemplate,
            // which never has one (Argo: the rollout's own selector is then required).
            match (&workload, &template) {
                (Some(w), Some(_)) if w.kind == WorkloadKind::PodTemplate => {
                    problems.push(problem(
                        "spec.selector",
                        "required, expected a label selector (a PodTemplate named by \
                         spec.workloadRef has none)",
                    ));
                }
                (Some(w), Some(_)) => {
                    problems.push(problem(
                        "spec.selector",
                        format!(
                            "required, expected a label selector (the {} of spec.workloadRef \
                             has none)",
                            w.kind
                        ),
                    ));
                }
                _ => {}
            }
            None
        }
        (None, None) => {
            problems.push(problem(
                "spec.selector",
                "required, expected a label selector matching spec.template.metadata.labels",
            ));
            None
        }
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
    if let Some(s) = &selector {
        crate::metadata::validate(spec, s, problems);
    }
    let alerts = crate::alerts::policy(spec.alerts.as_ref(), spec.guard.as_ref(), problems);
    Some(CommonSpec {
        alerts,
        replicas,
        template: template?,
        selector: selector?,
        min_ready_seconds,
        revision_history_limit,
        paused: spec.paused.unwrap_or(false),
        progress_deadline_seconds,
        progress_deadline_abort: spec.progress_deadline_abort.unwrap_or(true),
        restart_at: spec.restart_at.as_ref().map(|t| t.0),
        anti_affinity: None,
        workload,
    })
}

/// `antiAffinity`: exactly one of the preferred (weight 1-100) and required forms.
fn anti_affinity(
    field: &str,
    a: &rollgate_api::AntiAffinity,
    problems: &mut Vec<Problem>,
) -> Option<AntiAffinityRule> {
    let preferred = a
        .preferred_during_scheduling_ignored_during_execution
        .as_ref();
    let required = a
        .required_during_scheduling_ignored_during_execution
        .is_some();
    match (preferred, required) {
        (Some(p), false) if (1..=100).contains(&p.weight) => {
            Some(AntiAffinityRule::Preferred(p.weight))
        }
        (Some(p), false) => {
            problems.push(problem(
                format!("{field}.preferredDuringSchedulingIgnoredDuringExecution.weight"),
                format!("expected a weight from 1 to 100, got {}", p.weight),
            ));
            None
        }
        (None, true) => Some(AntiAffinityRule::Required),
        _ => {
            problems.push(problem(
                field,
                "expected exactly one of preferredDuringSchedulingIgnoredDuringExecution and \
                 requiredDuringSchedulingIgnoredDuringExecution",
            ));
            None
        }
    }
}

/// `spec.template` of a rollout without `workloadRef`.
fn own_template(
    template: Option<&PodTemplateSpec>,
    problems: &mut Vec<Problem>,
) -> Option<PodTemplateSpec> {
    let Some(t) = template else {
        problems.push(problem(
            "spec.template",
            "required, expected a pod template (or spec.workloadRef naming a Deployment, \
             ReplicaSet or PodTemplate)",
        ));
        return None;
    };
    template_problems(t, problems);
    Some(t.clone())
}

fn template_problems(t: &PodTemplateSpec, problems: &mut Vec<Problem>) {
    if t.spec.as_ref().is_none_or(|s| s.containers.is_empty()) {
        problems.push(problem(
            "spec.template.spec.containers",
            "at least one container expected",
        ));
    }
    images(t, problems);
}

/// Checks `spec.workloadRef` itself (Argo Rollouts' fields: `apiVersion` and `kind`, one of
/// `apps/v1` Deployment, `apps/v1` ReplicaSet and `v1` PodTemplate; `name`; `scaleDown`).
fn workload(spec: &RolloutSpec, problems: &mut Vec<Problem>) -> Option<Workload> {
    let r = spec.workload_ref.as_ref()?;
    let before = problems.len();
    let api_version = r.api_version.as_deref().unwrap_or_default();
    let kind_text = r.kind.as_deref().unwrap_or_default();
    let kind = WorkloadKind::from_kind(kind_text);
    match kind {
        Some(k) if k.api_version() != api_version => problems.push(problem(
            "spec.workloadRef.apiVersion",
            format!(
                "{} expected for kind {k}, got {api_version:?}",
                k.api_version()
            ),
        )),
        Some(_) => {}
        None => {
            let accepted: Vec<String> = WorkloadKind::ALL
                .iter()
                .map(|k| format!("{k} ({})", k.api_version()))
                .collect();
            problems.push(problem(
                "spec.workloadRef.kind",
                format!("one of {} expected, got {kind_text:?}", accepted.join(", ")),
            ));
        }
    }
    let name = r.name.as_deref().map(str::trim).unwrap_or_default();
    if name.is_empty() {
        let what = kind.map_or("the referenced object".to_string(), |k| format!("a {k}"));
        problems.push(problem(
            "spec.workloadRef.name",
            format!("required, expected the name of {what} in the rollout's namespace"),
        ));
    }
    let scale_down = match r.scale_down.as_deref() {
        None | Some("never") => ScaleDown::Never,
        Some("onsuccess") => ScaleDown::OnSuccess,
        Some("progressively") => ScaleDown::Progressively,
        Some(other) => {
            problems.push(problem(
                "spec.workloadRef.scaleDown",
                format!("one of never, onsuccess, progressively expected, got {other:?}"),
            ));
            ScaleDown::Never
        }
    };
    let kind = kind?;
    (problems.len() == before).then(|| Workload {
        kind,
        name: name.to_string(),
        scale_down,
    })
}

/// The template (and selector) of a rollout with `workloadRef`: `spec.template` must be empty
/// (Argo Rollouts: "template must be empty for workload reference rollout") and the template is
/// the referenced object's.
///
/// A referenced ReplicaSet must not be one of the rollout's own (it would be its own template,
/// and `scaleDown` would fight the strategy), and `scaleDown` must not scale an object another
/// controller sizes (a Deployment's ReplicaSet: the Deployment would scale it back).
fn workload_template(
    spec: &RolloutSpec,
    rollout_name: &str,
    workload: Option<&Workload>,
    observed: &Observed,
    problems: &mut Vec<Problem>,
) -> (Option<PodTemplateSpec>, Option<LabelSelector>) {
    if spec
        .template
        .as_ref()
        .is_some_and(|t| *t != PodTemplateSpec::default())
    {
        problems.push(problem(
            "spec.template",
            "must be empty when spec.workloadRef is set (the pod template comes from the \
             referenced object)",
        ));
    }
    let Some(w) = workload else {
        return (None, None);
    };
    let Some(d) = observed
        .workload
        .as_ref()
        .filter(|d| d.name == w.name && d.kind == w.kind)
    else {
        problems.push(problem(
            "spec.workloadRef.name",
            format!(
                "{} {:?} not found in the rollout's namespace",
                w.kind, w.name
            ),
        ));
        return (None, None);
    };
    let own_controller = d
        .controller
        .as_ref()
        .is_some_and(|c| c.kind == "Rollout" && c.name == rollout_name);
    let own_set = w.kind == WorkloadKind::ReplicaSet
        && observed.replica_sets.iter().any(|rs| rs.name == w.name);
    if own_controller || own_set {
        problems.push(problem(
            "spec.workloadRef.name",
            format!(
                "{} {:?} is one of this rollout's own ReplicaSets, expected an object the \
                 rollout does not manage",
                w.kind, w.name
            ),
        ));
        return (None, None);
    }
    if let Some(c) = d
        .controller
        .as_ref()
        .filter(|_| w.kind.scalable() && w.scale_down != ScaleDown::Never)
    {
        problems.push(problem(
            "spec.workloadRef.scaleDown",
            format!(
                "never expected: {} {:?} is controlled by {} {:?}, which would undo its scale \
                 (or refer to the {})",
                w.kind, w.name, c.kind, c.name, c.kind
            ),
        ));
    }
    // The template is checked like spec.template; a problem names the object and the path
    // of the template in it.
    let mut own = Vec::new();
    template_problems(&d.template, &mut own);
    for p in own {
        let field = p
            .field
            .strip_prefix("spec.template")
            .map_or(p.field.clone(), |rest| {
                format!("{}{rest}", w.kind.template_path())
            });
        problems.push(problem(
            "spec.workloadRef.name",
            format!("{} {:?}: {field}: {}", w.kind, w.name, p.expected),
        ));
    }
    (Some(d.template.clone()), d.selector.clone())
}

/// Every container of the template needs an image: the API server refuses a ReplicaSet
/// whose pod template has a container without one.
fn images(template: &PodTemplateSpec, problems: &mut Vec<Problem>) {
    let Some(spec) = template.spec.as_ref() else {
        return;
    };
    let lists = [
        ("containers", spec.containers.as_slice()),
        (
            "initContainers",
            spec.init_containers.as_deref().unwrap_or_default(),
        ),
    ];
    for (list, containers) in lists {
        for (i, c) in containers.iter().enumerate() {
            if c.image.as_deref().is_none_or(|i| i.trim().is_empty()) {
                problems.push(problem(
                    format!("spec.template.spec.{list}[{i}].image"),
                    format!(
                        "required, expected a container image for container \"{}\"",
                        c.name
                    ),
                ));
            }
        }
    }
}

/// The decision for a Rollout whose problems are known without validating it (it could not be
/// decoded at all, say): the same as for an invalid spec (Degraded, an `InvalidSpec` condition
/// naming the problems, one Warning Event per generation) and no action.
pub fn reject(input: crate::Input<'_>, problems: &[Problem]) -> crate::Decision {
    let mut cx = crate::context::Ctx::new(input, &crate::message::English);
    cx.invalid(problems);
    cx.finish()
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

pub(crate) fn analysis_refs(
    field: &str,
    analysis: Option<&RolloutAnalysis>,
    rollout: &rollgate_api::Rollout,
    observed: &Observed,
    problems: &mut Vec<Problem>,
) {
    let Some(analysis) = analysis else { return };
    if let Some(policy) = analysis.error_policy.as_deref()
        && !matches!(policy, "Pause" | "Abort")
    {
        problems.push(problem(
            format!("{field}.errorPolicy"),
            format!("expected Pause or Abort, got \"{policy}\""),
        ));
    }
    for p in crate::measure::validate_args(&format!("{field}.args"), &analysis.args) {
        let (f, expected) = p.split_once(": ").unwrap_or((p.as_str(), ""));
        problems.push(problem(f, expected));
    }
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
        } else {
            match observed.templates.get(&(cluster, t.template_name.clone())) {
                None => problems.push(problem(
                    format!("{field}.templates[{i}].templateName"),
                    format!("{kind} \"{}\" not found", t.template_name),
                )),
                // A broken template stops the release before any traffic moves.
                Some(spec) => {
                    for p in crate::measure::validate_template(spec) {
                        problems.push(problem(
                            format!("{field}.templates[{i}]"),
                            format!("{kind} \"{}\": {p}", t.template_name),
                        ));
                    }
                }
            }
        }
    }
    for p in crate::measure::validate_retention(
        &format!("{field}.measurementRetention"),
        &analysis.measurement_retention,
    ) {
        let (f, expected) = p.split_once(": ").unwrap_or((p.as_str(), ""));
        problems.push(problem(f, expected));
    }
    run_inputs(field, analysis, rollout, observed, problems);
}

/// The Secrets the Rollout's analyses need, by name, with the keys they read: Secrets named
/// by `valueFrom.secretKeyRef` of the arguments a run gets (the Rollout's, and the
/// templates' it does not override) and by `authentication.secretName` of the templates'
/// metrics. Templates are those in `observed`. The controller reads these Secrets (their key
/// names, into [`Observed::secrets`]) so that validation can report a missing one.
pub fn secret_references(
    rollout: &rollgate_api::Rollout,
    observed: &Observed,
) -> BTreeMap<String, std::collections::BTreeSet<String>> {
    let strategy = &rollout.spec.strategy;
    let mut analyses: Vec<&RolloutAnalysis> = Vec::new();
    if let Some(bg) = &strategy.blue_green {
        analyses.extend(bg.pre_promotion_analysis.iter());
        analyses.extend(bg.post_promotion_analysis.iter());
    }
    if let Some(c) = &strategy.canary {
        analyses.extend(c.analysis.iter().map(|a| &a.analysis));
        analyses.extend(c.steps.iter().filter_map(|s| s.analysis.as_ref()));
    }
    analyses.extend(
        rollout
            .spec
            .guard
            .iter()
            .filter_map(|g| g.analysis.as_ref()),
    );
    let experiments = crate::experiment::analyses_of(rollout);
    analyses.extend(experiments.iter());
    let mut out: BTreeMap<String, std::collections::BTreeSet<String>> = BTreeMap::new();
    for a in analyses {
        let mut args: BTreeMap<&str, &AnalysisArg> = BTreeMap::new();
        for t in &a.templates {
            let key = (t.cluster_scope.unwrap_or(false), t.template_name.clone());
            let Some(spec) = observed.templates.get(&key) else {
                continue;
            };
            for arg in &spec.args {
                args.entry(arg.name.as_str()).or_insert(arg);
            }
            for m in &spec.metrics {
                if let Some(auth) = m
                    .provider
                    .prometheus
                    .as_ref()
                    .and_then(|p| p.authentication.as_ref())
                    && !auth.secret_name.trim().is_empty()
                {
                    out.entry(auth.secret_name.trim().to_string()).or_default();
                }
            }
        }
        for arg in &a.args {
            args.insert(arg.name.as_str(), arg);
        }
        for arg in args.values() {
            if arg.value.is_none()
                && let Some(r) = arg
                    .value_from
                    .as_ref()
                    .and_then(|v| v.secret_key_ref.as_ref())
                && !r.name.trim().is_empty()
            {
                out.entry(r.name.trim().to_string())
                    .or_default()
                    .insert(r.key.clone());
            }
        }
    }
    out
}

/// Where an argument of an analysis comes from: a template's `args[j]` or the Rollout's.
struct ArgAt<'a> {
    arg: &'a AnalysisArg,
    /// `Some((i, "AnalysisTemplate \"name\""))` for `templates[i]`'s, `None` for the Rollout's.
    template: Option<(usize, String)>,
    /// Index in its list.
    index: usize,
}

impl ArgAt<'_> {
    /// A problem with `sub` (e.g. `.valueFrom.fieldRef.fieldPath`) of this argument.
    fn problem(&self, field: &str, sub: &str, expected: String) -> Problem {
        match &self.template {
            Some((i, desc)) => problem(
                format!("{field}.templates[{i}]"),
                format!("{desc}: args[{}]{sub}: {expected}", self.index),
            ),
            None => problem(format!("{field}.args[{}]{sub}", self.index), expected),
        }
    }
}

/// The `fieldRef` paths an analysis argument may use: the Rollout's name, namespace, a label
/// or an annotation, or a field under `spec` holding a string, number or bool. Other metadata
/// and the status change while a release runs.
fn field_ref_problem(rollout: &rollgate_api::Rollout, path: &str) -> Option<String> {
    let p = path.trim();
    let supported = matches!(p, "metadata.name" | "metadata.namespace")
        || ["metadata.labels", "metadata.annotations"].iter().any(|m| {
            p.strip_prefix(m).is_some_and(|rest| {
                (rest.starts_with("['") && rest.ends_with("']") && rest.len() > 4)
                    || rest.strip_prefix('.').is_some_and(|k| !k.is_empty())
            })
        })
        || p.strip_prefix("spec.").is_some_and(|rest| !rest.is_empty());
    if !supported {
        return Some(format!(
            "expected metadata.name, metadata.namespace, metadata.labels['KEY'], \
             metadata.annotations['KEY'] or a field under spec, got \"{path}\""
        ));
    }
    if crate::analysis::field_value(rollout, p).is_none() {
        return Some(format!(
            "\"{path}\" has no string, number or bool value in this Rollout, so the argument \
             would have none"
        ));
    }
    None
}

/// What a run of this analysis will need, checked now rather than after traffic has moved:
/// every argument gets a value (from the Rollout's arguments, which override the templates'),
/// `fieldRef` paths are supported fields with a value, the Secrets named by `secretKeyRef` and
/// by `authentication.secretName` exist (with the key), and addresses and header values are
/// still valid once this Rollout's argument values are in them.
fn run_inputs(
    field: &str,
    analysis: &RolloutAnalysis,
    rollout: &rollgate_api::Rollout,
    observed: &Observed,
    problems: &mut Vec<Problem>,
) {
    use crate::measure::ArgSource;
    let mut templates = Vec::new();
    for (i, t) in analysis.templates.iter().enumerate() {
        let cluster = t.cluster_scope.unwrap_or(false);
        if let Some(spec) = observed.templates.get(&(cluster, t.template_name.clone())) {
            let kind = if cluster {
                "ClusterAnalysisTemplate"
            } else {
                "AnalysisTemplate"
            };
            templates.push((i, format!("{kind} \"{}\"", t.template_name), spec));
        }
    }
    // The arguments a run gets: the first template's of each name, unless the Rollout's.
    let mut args: BTreeMap<&str, ArgAt<'_>> = BTreeMap::new();
    for (i, desc, spec) in &templates {
        for (j, a) in spec.args.iter().enumerate() {
            args.entry(a.name.as_str()).or_insert(ArgAt {
                arg: a,
                template: Some((*i, desc.clone())),
                index: j,
            });
        }
    }
    for (j, a) in analysis.args.iter().enumerate() {
        args.insert(
            a.name.as_str(),
            ArgAt {
                arg: a,
                template: None,
                index: j,
            },
        );
    }
    let secret = |name: &str, key: Option<&str>| -> Option<String> {
        match (observed.secrets.get(name), key) {
            (None, _) => Some(format!(
                "Secret \"{name}\" not found in the rollout's namespace"
            )),
            (Some(keys), Some(k)) if !keys.contains(k) => {
                Some(format!("Secret \"{name}\" has no key \"{k}\""))
            }
            _ => None,
        }
    };
    // Values known now, to check addresses and headers with.
    let mut known: BTreeMap<String, String> = BTreeMap::new();
    let mut hashes = Vec::new();
    for (name, at) in &args {
        // Arguments that do not parse are reported already.
        let Ok(spec) = crate::measure::arg_spec(name, at.arg) else {
            continue;
        };
        match spec.source {
            ArgSource::Unset => problems.push(at.problem(
                field,
                "",
                format!(
                    "argument \"{name}\" has no value: expected value or valueFrom, here or in \
                     {field}.args"
                ),
            )),
            ArgSource::Value(v) => {
                known.insert(name.to_string(), v);
            }
            ArgSource::FieldRef(path) => match field_ref_problem(rollout, &path) {
                Some(e) => problems.push(at.problem(field, ".valueFrom.fieldRef.fieldPath", e)),
                None => {
                    if let Some(v) = crate::analysis::field_value(rollout, path.trim()) {
                        known.insert(name.to_string(), v);
                    }
                }
            },
            ArgSource::SecretKeyRef(r) => {
                if let Some(e) = secret(r.name.trim(), Some(&r.key)) {
                    problems.push(at.problem(field, ".valueFrom.secretKeyRef", e));
                }
            }
            ArgSource::PodTemplateHash(_) => {
                // A hash is a lowercase word: fine in an address or a header.
                known.insert(name.to_string(), "0123456789".to_string());
                hashes.push(name.to_string());
            }
        }
    }
    // Metric settings such as `count: "{{args.count}}"` with this Rollout's values (a hash is
    // only known when the run is created).
    let mut settled = known.clone();
    settled.retain(|name, _| !hashes.contains(name));
    for (i, desc, spec) in &templates {
        let at = |sub: String, expected: String| {
            problem(
                format!("{field}.templates[{i}]"),
                format!("{desc}: {sub}: {expected}"),
            )
        };
        for p in crate::measure::validate_settings(spec, &settled) {
            let (sub, expected) = p.split_once(": ").unwrap_or((p.as_str(), ""));
            problems.push(at(
                sub.to_string(),
                format!("with this Rollout's arguments, {expected}"),
            ));
        }
        for (k, m) in spec.metrics.iter().enumerate() {
            let Some(p) = &m.provider.prometheus else {
                continue;
            };
            let base = format!("metrics[{k}].provider.prometheus");
            if let Some(a) = &p.authentication
                && !a.secret_name.trim().is_empty()
                && let Some(e) = secret(a.secret_name.trim(), None)
            {
                problems.push(at(format!("{base}.authentication.secretName"), e));
            }
            // Checked with this Rollout's values when they are all known now.
            if let Ok(address) = crate::measure::render_plain(&p.address, &known)
                && p.address.contains("{{")
                && let Err(e) = crate::measure::check_address(address.trim())
            {
                problems.push(at(
                    format!("{base}.address"),
                    format!("with this Rollout's arguments, {e}"),
                ));
            }
            for (h, header) in p.headers.iter().enumerate() {
                if let Ok(value) = crate::measure::render_plain(&header.value, &known)
                    && header.value.contains("{{")
                    && let Err(e) = crate::measure::check_header_value(&value)
                {
                    problems.push(at(
                        format!("{base}.headers[{h}].value"),
                        format!("with this Rollout's arguments, {e}"),
                    ));
                }
            }
        }
    }
}

fn blue_green(
    rollout: &rollgate_api::Rollout,
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
        rollout,
        observed,
        problems,
    );
    analysis_refs(
        &format!("{F}.postPromotionAnalysis"),
        bg.post_promotion_analysis.as_ref(),
        rollout,
        observed,
        problems,
    );
    let anti_affinity = bg
        .anti_affinity
        .as_ref()
        .and_then(|a| anti_affinity(&format!("{F}.antiAffinity"), a, problems));
    let mut common = common?.clone();
    common.anti_affinity = anti_affinity;
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

/// Default `maxSurge` and `maxUnavailable`.
pub const DEFAULT_SURGE_UNAVAILABLE: &str = "25%";

/// Resolves an absolute-or-percent size against `total`, rounding up (surge) or down.
fn resolve_size(
    field: &str,
    value: Option<&IntOrString>,
    total: i32,
    round_up: bool,
    problems: &mut Vec<Problem>,
) -> Option<i32> {
    let percent = |p: i64| {
        let scaled = i64::from(total) * p;
        let v = if round_up {
            (scaled + 99) / 100
        } else {
            scaled / 100
        };
        i32::try_from(v).ok()
    };
    match value {
        None => percent(25),
        Some(IntOrString::Int(v)) if *v < 0 => {
            problems.push(problem(field, format!("must be >= 0, got {v}")));
            None
        }
        Some(IntOrString::Int(v)) => Some(*v),
        Some(IntOrString::String(s)) => {
            // "25%": the number before the one trailing percent sign.
            let parsed = s
                .trim()
                .split_once('%')
                .filter(|(_, rest)| rest.is_empty())
                .and_then(|(p, _)| p.trim().parse::<i64>().ok())
                .filter(|p| (0..=100).contains(p));
            match parsed {
                Some(p) => percent(p),
                None => {
                    problems.push(problem(
                        field,
                        format!(
                            "expected a number of pods or a percentage between 0% and 100%, got \"{s}\""
                        ),
                    ));
                    None
                }
            }
        }
    }
}

/// Parses a duration: integer seconds, or a string such as `30s`, `5m`, `1h30m`
/// ([`rollgate_api::duration::parse`]); whole seconds.
pub fn parse_duration_secs(value: &IntOrString) -> Result<i64, String> {
    match value {
        IntOrString::Int(v) if *v < 0 => Err(format!("must be >= 0, got {v}")),
        IntOrString::Int(v) => Ok(i64::from(*v)),
        IntOrString::String(s) => rollgate_api::duration::parse(s)
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            .map_err(|e| e.to_string()),
    }
}

fn canary(
    rollout: &rollgate_api::Rollout,
    c: &CanaryStrategy,
    observed: &Observed,
    common: Option<&CommonSpec>,
    problems: &mut Vec<Problem>,
) -> Option<Valid> {
    const F: &str = "spec.strategy.canary";
    let canary_service = service_ref(
        &format!("{F}.canaryService"),
        c.canary_service.as_deref(),
        false,
        observed,
        problems,
    );
    let stable_service = service_ref(
        &format!("{F}.stableService"),
        c.stable_service.as_deref(),
        false,
        observed,
        problems,
    );
    if canary_service.is_some() && canary_service == stable_service {
        problems.push(problem(
            format!("{F}.canaryService"),
            "must differ from stableService",
        ));
    }
    let replicas = common.map_or(1, |c| c.replicas);
    let surge = resolve_size(
        &format!("{F}.maxSurge"),
        c.max_surge.as_ref(),
        replicas,
        true,
        problems,
    );
    let unavailable = resolve_size(
        &format!("{F}.maxUnavailable"),
        c.max_unavailable.as_ref(),
        replicas,
        false,
        problems,
    );
    // With `replicas: 0` every percentage resolves to 0 pods, yet nothing has to move (scaling
    // a Rollout to zero is ordinary, as in Argo Rollouts): only sizes written as 0 are refused
    // then, as Argo refuses them ("MaxSurge and MaxUnavailable both can not be zero").
    let written_zero = |v: Option<&IntOrString>| match v {
        Some(IntOrString::Int(0)) => true,
        Some(IntOrString::String(s)) => s.trim().trim_end_matches('%').trim() == "0",
        _ => false,
    };
    let stuck = replicas > 0
        || (written_zero(c.max_surge.as_ref()) && written_zero(c.max_unavailable.as_ref()));
    if stuck && surge == Some(0) && unavailable == Some(0) {
        problems.push(problem(
            format!("{F}.maxUnavailable"),
            format!(
                "maxSurge and maxUnavailable resolve to 0 pods each for {replicas} replicas: \
                 at least one must allow a pod, or the release could never move"
            ),
        ));
    }
    let delay = non_negative(
        &format!("{F}.scaleDownDelaySeconds"),
        c.scale_down_delay_seconds,
        problems,
    );
    let delay_limit = non_negative(
        &format!("{F}.scaleDownDelayRevisionLimit"),
        c.scale_down_delay_revision_limit,
        problems,
    );
    let abort_delay = non_negative(
        &format!("{F}.abortScaleDownDelaySeconds"),
        c.abort_scale_down_delay_seconds,
        problems,
    );

    // Traffic routing.
    let mut route = None;
    if let Some(tr) = &c.traffic_routing {
        match &tr.gateway_api {
            None => problems.push(problem(
                format!("{F}.trafficRouting"),
                "expected gatewayAPI (the only router this rollgate version supports)",
            )),
            Some(g) => {
                let field = format!("{F}.trafficRouting.gatewayAPI.httpRoute");
                let name = g.http_route.as_deref().map(str::trim).unwrap_or_default();
                let ns = g
                    .namespace
                    .as_deref()
                    .map(str::trim)
                    .filter(|n| !n.is_empty())
                    .or(rollout.metadata.namespace.as_deref())
                    .unwrap_or_default();
                if name.is_empty() {
                    problems.push(problem(
                        &field,
                        "required, expected the name of an HTTPRoute",
                    ));
                }
                for (svc, which) in [
                    (&c.canary_service, "canaryService"),
                    (&c.stable_service, "stableService"),
                ] {
                    if svc.as_deref().is_none_or(|s| s.trim().is_empty()) {
                        problems.push(problem(
                            format!("{F}.{which}"),
                            "required with trafficRouting: the route's backends are the canary and stable Services",
                        ));
                    }
                }
                if !name.is_empty() {
                    match &observed.route {
                        Some(r) if r.name == name && r.namespace == ns => {
                            if let (Some(cs), Some(ss)) = (&canary_service, &stable_service)
                                && r.weights(cs, ss).is_none()
                            {
                                problems.push(problem(
                                    &field,
                                    format!(
                                        "HTTPRoute {ns}/{name} has no rule with backendRefs to both \
                                         \"{cs}\" and \"{ss}\""
                                    ),
                                ));
                            }
                        }
                        _ => problems.push(problem(
                            &field,
                            format!(
                                "HTTPRoute {ns}/{name} (gateway.networking.k8s.io/v1) not found"
                            ),
                        )),
                    }
                }
                if let (Some(cs), Some(ss), false) =
                    (&canary_service, &stable_service, name.is_empty())
                {
                    route = Some(RouteRef {
                        namespace: ns.to_string(),
                        name: name.to_string(),
                        canary_service: cs.clone(),
                        stable_service: ss.clone(),
                    });
                }
            }
        }
    }
    let managed_routes = managed_route_names(c, problems);
    let routed = c.traffic_routing.is_some();
    if c.dynamic_stable_scale == Some(true) && !routed {
        problems.push(problem(
            format!("{F}.dynamicStableScale"),
            "only meaningful with trafficRouting (without a router the stable ReplicaSet is \
             always scaled down as the canary's share of pods grows)",
        ));
    }

    // Steps.
    let mut steps = Vec::new();
    for (i, step) in c.steps.iter().enumerate() {
        let field = format!("{F}.steps[{i}]");
        let members = [
            step.set_weight.is_some(),
            step.pause.is_some(),
            step.analysis.is_some(),
            step.set_canary_scale.is_some(),
            step.experiment.is_some(),
            step.set_header_route.is_some(),
            step.set_mirror_route.is_some(),
        ];
        if members.iter().filter(|m| **m).count() != 1 {
            problems.push(problem(
                &field,
                "exactly one of setWeight, pause, analysis, setCanaryScale, experiment, \
                 setHeaderRoute or setMirrorRoute expected",
            ));
            continue;
        }
        let gateway = routed_by_gateway(c);
        if let Some(h) = &step.set_header_route {
            let f = format!("{field}.setHeaderRoute");
            if let Some(step) = header_route_step(&f, h, gateway, &managed_routes, problems) {
                steps.push(step);
            }
            continue;
        }
        if let Some(m) = &step.set_mirror_route {
            let f = format!("{field}.setMirrorRoute");
            if let Some(step) = mirror_route_step(&f, m, gateway, &managed_routes, problems) {
                steps.push(step);
            }
            continue;
        }
        if let Some(w) = step.set_weight {
            if (0..=100).contains(&w) {
                steps.push(Step::SetWeight(w));
            } else {
                problems.push(problem(
                    format!("{field}.setWeight"),
                    format!("expected a percentage between 0 and 100, got {w}"),
                ));
            }
        } else if let Some(p) = &step.pause {
            match p.duration.as_ref().map(parse_duration_secs) {
                None => steps.push(Step::Pause(None)),
                Some(Ok(secs)) => steps.push(Step::Pause(Some(secs))),
                Some(Err(e)) => problems.push(problem(format!("{field}.pause.duration"), e)),
            }
        } else if let Some(a) = &step.analysis {
            analysis_refs(
                &format!("{field}.analysis"),
                Some(a),
                rollout,
                observed,
                problems,
            );
            steps.push(Step::Analysis(a.clone()));
        } else if let Some(sc) = &step.set_canary_scale {
            let f = format!("{field}.setCanaryScale");
            let set = [
                sc.replicas.is_some(),
                sc.weight.is_some(),
                sc.match_traffic_weight == Some(true),
            ];
            if !routed {
                problems.push(problem(
                    &f,
                    "requires trafficRouting: without a router the canary's share of pods is its traffic weight",
                ));
            } else if set.iter().filter(|m| **m).count() != 1 {
                problems.push(problem(
                    &f,
                    "exactly one of replicas, weight or matchTrafficWeight: true expected",
                ));
            } else if let Some(r) = sc.replicas {
                if r < 0 {
                    problems.push(problem(
                        format!("{f}.replicas"),
                        format!("must be >= 0, got {r}"),
                    ));
                } else {
                    steps.push(Step::SetCanaryScale(CanaryScale::Replicas(r)));
                }
            } else if let Some(w) = sc.weight {
                if (0..=100).contains(&w) {
                    steps.push(Step::SetCanaryScale(CanaryScale::Weight(w)));
                } else {
                    problems.push(problem(
                        format!("{f}.weight"),
                        format!("expected a percentage between 0 and 100, got {w}"),
                    ));
                }
            } else {
                steps.push(Step::SetCanaryScale(CanaryScale::MatchTrafficWeight));
            }
        } else if let Some(e) = &step.experiment {
            let selected: std::collections::BTreeSet<&str> = common
                .map(|c| &c.selector)
                .into_iter()
                .flat_map(|s| {
                    let labels = s.match_labels.iter().flatten().map(|(k, _)| k.as_str());
                    let exprs = s.match_expressions.iter().flatten().map(|e| e.key.as_str());
                    labels.chain(exprs)
                })
                .collect();
            let f = format!("{field}.experiment");
            if let Some(step) =
                crate::experiment::validate(&f, e, rollout, observed, &selected, problems)
            {
                steps.push(step);
            }
        }
    }
    // Each managed route a step sets must fit the HTTPRoute as it is (the rule it is written
    // as copies the route's main rule).
    if let (Some(r), Some(o)) = (&route, &observed.route) {
        let main = routes::main_rule(
            &o.spec_rules,
            &r.canary_service,
            &r.stable_service,
            &managed_routes,
        );
        for (i, step) in c.steps.iter().enumerate() {
            let Some(Step::ManagedRoute {
                name,
                kind: Some(kind),
            }) = steps_of(step, routed_by_gateway(c), &managed_routes)
            else {
                continue;
            };
            let which = if step.set_header_route.is_some() {
                "setHeaderRoute"
            } else {
                "setMirrorRoute"
            };
            let rule = ManagedRule { name, kind };
            if let Some(Err(e)) =
                main.map(|m| routes::render(&rule, m, &r.canary_service, &r.stable_service))
            {
                problems.push(problem(
                    format!("{F}.steps[{i}].{which}.match"),
                    e.to_string(),
                ));
            }
        }
    }

    let background = c.analysis.as_ref().and_then(|bg| {
        let field = format!("{F}.analysis");
        analysis_refs(&field, Some(&bg.analysis), rollout, observed, problems);
        let start = bg.starting_step.unwrap_or(0);
        let len = i32::try_from(c.steps.len()).unwrap_or(i32::MAX);
        if !(0..=len).contains(&start) {
            problems.push(problem(
                format!("{field}.startingStep"),
                format!("expected a step index between 0 and {len}, got {start}"),
            ));
            return None;
        }
        Some((bg.analysis.clone(), start))
    });

    let common = common?.clone();
    Some(Valid::Canary(Box::new(CanarySpec {
        common,
        canary_service,
        stable_service,
        steps,
        max_surge: surge?,
        max_unavailable: unavailable?,
        background,
        route,
        managed_routes,
        dynamic_stable_scale: c.dynamic_stable_scale.unwrap_or(false),
        scale_down_delay_seconds: delay
            .map(i64::from)
            .unwrap_or(DEFAULT_SCALE_DOWN_DELAY_SECONDS),
        scale_down_delay_revision_limit: delay_limit.and_then(|v| usize::try_from(v).ok()),
        abort_scale_down_delay_seconds: abort_delay
            .map(i64::from)
            .unwrap_or(DEFAULT_SCALE_DOWN_DELAY_SECONDS),
    })))
}

fn routed_by_gateway(c: &CanaryStrategy) -> bool {
    c.traffic_routing
        .as_ref()
        .is_some_and(|t| t.gateway_api.is_some())
}

/// The managed-route step of `step`, validated quietly (its problems are reported once, by
/// the walk over the steps).
fn steps_of(step: &rollgate_api::CanaryStep, routed: bool, managed: &[String]) -> Option<Step> {
    let mut quiet = Vec::new();
    if let Some(h) = &step.set_header_route {
        return header_route_step("", h, routed, managed, &mut quiet);
    }
    step.set_mirror_route
        .as_ref()
        .and_then(|m| mirror_route_step("", m, routed, managed, &mut quiet))
}

/// True for a name the Gateway API accepts as a rule name (`SectionName`: lower-case DNS
/// labels separated by dots, at most 253 characters).
fn valid_rule_name(name: &str) -> bool {
    let label = |l: &str| {
        !l.is_empty()
            && l.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    !name.is_empty() && name.len() <= 253 && name.split('.').all(label)
}

/// True for a lower-case DNS label (RFC 1123): at most 63 of `a-z`, `0-9` and `-`, starting
/// and ending with a letter or digit.
pub(crate) fn is_dns_label(name: &str) -> bool {
    name.len() <= 63 && valid_rule_name(name) && !name.contains('.')
}

/// `trafficRouting.managedRoutes`: each a valid, distinct rule name.
fn managed_route_names(c: &CanaryStrategy, problems: &mut Vec<Problem>) -> Vec<String> {
    const F: &str = "spec.strategy.canary.trafficRouting.managedRoutes";
    let mut names: Vec<String> = Vec::new();
    let list = c
        .traffic_routing
        .as_ref()
        .map(|t| t.managed_routes.as_slice())
        .unwrap_or_default();
    for (i, r) in list.iter().enumerate() {
        let field = format!("{F}[{i}].name");
        let name = r.name.as_deref().map(str::trim).unwrap_or_default();
        if name.is_empty() {
            problems.push(problem(&field, "required, expected the name of a route"));
        } else if !valid_rule_name(name) {
            problems.push(problem(
                &field,
                format!(
                    "expected a Gateway API rule name (lower-case letters, digits, '-' and '.', \
                     at most 253 characters), got \"{name}\""
                ),
            ));
        } else if names.iter().any(|n| n == name) {
            problems.push(problem(&field, format!("\"{name}\" is listed twice")));
        } else {
            names.push(name.to_string());
        }
    }
    names
}

/// The checks a `setHeaderRoute` or `setMirrorRoute` step shares: a Gateway API router, and a
/// name among `managedRoutes`. Returns the name.
fn managed_route_name(
    field: &str,
    name: Option<&str>,
    routed: bool,
    managed: &[String],
    problems: &mut Vec<Problem>,
) -> Option<String> {
    let which = field.rsplit('.').next().unwrap_or(field);
    if !routed {
        problems.push(problem(
            field,
            format!(
                "{which} requires trafficRouting.gatewayAPI: the route is a rule of the \
                 HTTPRoute"
            ),
        ));
        return None;
    }
    let name = name.map(str::trim).unwrap_or_default();
    if name.is_empty() {
        problems.push(problem(
            format!("{field}.name"),
            "required, expected one of trafficRouting.managedRoutes",
        ));
        return None;
    }
    if !managed.iter().any(|m| m == name) {
        let listed = if managed.is_empty() {
            "none is declared".to_string()
        } else {
            format!("declared: {}", managed.join(", "))
        };
        problems.push(problem(
            format!("{field}.name"),
            format!(
                "expected a route listed in trafficRouting.managedRoutes ({listed}), got \
                 \"{name}\""
            ),
        ));
        return None;
    }
    Some(name.to_string())
}

/// A `StringMatch` with exactly one of `exact`, `prefix`, `regex` set (and allowed).
fn string_match(
    field: &str,
    m: Option<&rollgate_api::StringMatch>,
    problems: &mut Vec<Problem>,
) -> Option<StringMatch> {
    let Some(m) = m else {
        problems.push(problem(
            field,
            "required, expected one of exact, prefix or regex",
        ));
        return None;
    };
    let set: Vec<StringMatch> = [
        m.exact.clone().map(StringMatch::Exact),
        m.prefix.clone().map(StringMatch::Prefix),
        m.regex.clone().map(StringMatch::Regex),
    ]
    .into_iter()
    .flatten()
    .collect();
    match set.as_slice() {
        [one] => Some(one.clone()),
        _ => {
            problems.push(problem(
                field,
                format!(
                    "exactly one of exact, prefix or regex expected, found {}",
                    set.len()
                ),
            ));
            None
        }
    }
}

/// True for a valid HTTP header name (an RFC 7230 token, as the Gateway API requires).
fn valid_header_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 256
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn header_match(
    field: &str,
    name: Option<&str>,
    value: Option<&rollgate_api::StringMatch>,
    value_field: &str,
    problems: &mut Vec<Problem>,
) -> Option<HeaderMatch> {
    let name = name.map(str::trim).unwrap_or_default();
    let ok_name = valid_header_name(name);
    if !ok_name {
        problems.push(problem(
            field,
            format!(
                "expected an HTTP header name (letters, digits and !#$%&'*+-.^_`|~), got \"{name}\""
            ),
        ));
    }
    let value = string_match(value_field, value, problems);
    value.filter(|_| ok_name).map(|value| HeaderMatch {
        name: name.to_string(),
        value,
    })
}

fn header_route_step(
    field: &str,
    h: &rollgate_api::SetHeaderRoute,
    routed: bool,
    managed: &[String],
    problems: &mut Vec<Problem>,
) -> Option<Step> {
    let name = managed_route_name(field, h.name.as_deref(), routed, managed, problems);
    if h.matches.is_empty() {
        return name.map(|name| Step::ManagedRoute { name, kind: None });
    }
    let before = problems.len();
    let mut conditions = Vec::new();
    for (i, m) in h.matches.iter().enumerate() {
        let f = format!("{field}.match[{i}]");
        conditions.extend(header_match(
            &format!("{f}.headerName"),
            m.header_name.as_deref(),
            m.header_value.as_ref(),
            &format!("{f}.headerValue"),
            problems,
        ));
    }
    if problems.len() > before {
        return None;
    }
    name.map(|name| Step::ManagedRoute {
        name,
        kind: Some(RouteKind::Header(conditions)),
    })
}

/// The HTTP methods the Gateway API can match.
const METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];

fn mirror_route_step(
    field: &str,
    m: &rollgate_api::SetMirrorRoute,
    routed: bool,
    managed: &[String],
    problems: &mut Vec<Problem>,
) -> Option<Step> {
    let name = managed_route_name(field, m.name.as_deref(), routed, managed, problems);
    let before = problems.len();
    if let Some(p) = m.percentage.filter(|p| !(0..=100).contains(p)) {
        problems.push(problem(
            format!("{field}.percentage"),
            format!("expected a percentage between 0 and 100, got {p}"),
        ));
    }
    if m.matches.is_empty() {
        return name
            .filter(|_| problems.len() == before)
            .map(|name| Step::ManagedRoute { name, kind: None });
    }
    let mut conditions = Vec::new();
    for (i, rm) in m.matches.iter().enumerate() {
        let f = format!("{field}.match[{i}]");
        let method = rm.method.as_ref().and_then(|meth| {
            let f = format!("{f}.method");
            match string_match(&f, Some(meth), problems)? {
                StringMatch::Exact(v) if METHODS.contains(&v.as_str()) => Some(v),
                StringMatch::Exact(v) => {
                    problems.push(problem(
                        format!("{f}.exact"),
                        format!("expected one of {}, got \"{v}\"", METHODS.join(", ")),
                    ));
                    None
                }
                _ => {
                    problems.push(problem(
                        f,
                        "expected exact: the Gateway API matches methods exactly only",
                    ));
                    None
                }
            }
        });
        let path = rm.path.as_ref().and_then(|p| {
            let f = format!("{f}.path");
            match string_match(&f, Some(p), problems)? {
                StringMatch::Exact(v) | StringMatch::Prefix(v) if !v.starts_with('/') => {
                    problems.push(problem(
                        f,
                        format!("expected a path starting with /, got \"{v}\""),
                    ));
                    None
                }
                ok => Some(ok),
            }
        });
        let mut headers = Vec::new();
        for (name, value) in &rm.headers {
            let hf = format!("{f}.headers[{name}]");
            headers.extend(header_match(&hf, Some(name), Some(value), &hf, problems));
        }
        conditions.push(RequestMatch {
            method,
            path,
            headers,
        });
    }
    if problems.len() > before {
        return None;
    }
    name.map(|name| Step::ManagedRoute {
        name,
        kind: Some(RouteKind::Mirror {
            percent: m.percentage,
            matches: conditions,
        }),
    })
}
