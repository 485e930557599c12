//! Every message and Event note the engine writes, as typed data, and their English rendering.
//!
//! The engine decides from typed state only; a [`Msg`] is built from that state and turned into
//! text by a [`Wording`] at the last moment. [`crate::reconcile_worded`] takes another wording:
//! the engine tests render every message differently and check that the decisions stay the
//! same.

use std::fmt;

use k8s_openapi::jiff::Timestamp;
use rollgate_api::{AnalysisPhase, PauseReason};
use serde::Serialize;

use crate::action::ServiceRole;
use crate::observed::{AnalysisKind, ObservedAlert};

/// Turns typed messages into text.
pub trait Wording {
    /// The text of `msg`.
    fn text(&self, msg: &Msg) -> String;
}

/// The wording of rollgate's status messages and Events.
#[derive(Debug, Clone, Copy, Default)]
pub struct English;

impl Wording for English {
    fn text(&self, msg: &Msg) -> String {
        msg.to_string()
    }
}

/// Which strategy a message speaks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum StrategyKind {
    /// Blue/green.
    BlueGreen,
    /// Canary.
    Canary,
}

/// An analysis point of a release, as messages name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Point {
    /// Blue/green pre-promotion analysis.
    PrePromotion,
    /// Blue/green post-promotion analysis.
    PostPromotion,
    /// Canary background analysis.
    Background,
    /// Canary analysis step `no` (1-based) of `of`.
    Step {
        /// Step number, from 1.
        no: usize,
        /// Number of steps.
        of: usize,
    },
    /// An analysis of canary `experiment` step `no` (1-based) of `of`.
    Experiment {
        /// Step number, from 1.
        no: usize,
        /// Number of steps.
        of: usize,
        /// The analysis's name in the step.
        analysis: String,
    },
}

impl fmt::Display for Point {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PrePromotion => f.write_str("pre-promotion"),
            Self::PostPromotion => f.write_str("post-promotion"),
            Self::Background => f.write_str("background"),
            Self::Step { no, of } => write!(f, "step {no}/{of}"),
            Self::Experiment { no, of, analysis } => {
                write!(f, "step {no}/{of} experiment's {analysis:?}")
            }
        }
    }
}

/// What a release waits for while pods become ready. Its fingerprint is what the progress
/// deadline compares: any change of a count or size is progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Waiting {
    /// The very first revision.
    FirstDeploy {
        /// ReplicaSet name.
        rs: String,
        /// Available pods.
        ready: i32,
        /// Pods wanted.
        replicas: i32,
    },
    /// Blue/green preview pods.
    Preview {
        /// ReplicaSet name.
        rs: String,
        /// Available pods.
        ready: i32,
        /// `previewReplicaCount`.
        target: i32,
    },
    /// Blue/green promotion: the new revision at full size.
    Promoting {
        /// ReplicaSet name.
        rs: String,
        /// Available pods.
        ready: i32,
        /// Pods wanted.
        replicas: i32,
        /// True when the active Service already selects it.
        switched: bool,
    },
    /// A canary `setWeight` / `setCanaryScale` step.
    Step {
        /// Step number, from 1.
        no: usize,
        /// Number of steps.
        of: usize,
        /// The step's weight, or `None` for `setCanaryScale`.
        weight: Option<i32>,
        /// Canary ReplicaSet name.
        rs: String,
        /// Canary pods available.
        ready: i32,
        /// Canary pods wanted.
        canary_pods: i32,
        /// Stable pods available.
        stable_ready: i32,
        /// Stable ReplicaSet size.
        stable_size: i32,
    },
    /// A canary `experiment` step: its ReplicaSets becoming available.
    Experiment {
        /// Step number, from 1.
        no: usize,
        /// Number of steps.
        of: usize,
        /// The experiment.
        experiment: String,
        /// Its pods available (all ReplicaSets).
        ready: i32,
        /// Its pods wanted.
        replicas: i32,
    },
    /// After the last canary step.
    Finishing {
        /// Canary ReplicaSet name.
        rs: String,
        /// Canary pods available.
        ready: i32,
        /// Pods wanted.
        replicas: i32,
        /// Stable pods available.
        stable_ready: i32,
        /// Stable ReplicaSet size.
        stable_size: i32,
    },
}

impl fmt::Display for Waiting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::FirstDeploy {
                rs,
                ready,
                replicas,
            } => write!(
                f,
                "First deploy: waiting for ReplicaSet {rs}: {ready}/{replicas} pods available"
            ),
            Self::Preview { rs, ready, target } => write!(
                f,
                "Waiting for preview ReplicaSet {rs}: {ready}/{target} pods available"
            ),
            Self::Promoting {
                rs,
                ready,
                replicas,
                switched: true,
            } => write!(
                f,
                "Waiting for ReplicaSet {rs}, which the active Service selects: \
                 {ready}/{replicas} pods available"
            ),
            Self::Promoting {
                rs,
                ready,
                replicas,
                switched: false,
            } => write!(
                f,
                "Promoting: waiting for ReplicaSet {rs}: {ready}/{replicas} pods available \
                 before switching the active Service"
            ),
            Self::Step {
                no,
                of,
                weight,
                rs,
                ready,
                canary_pods,
                stable_ready,
                stable_size,
            } => {
                write!(f, "Step {no}/{of} ")?;
                match weight {
                    Some(w) => write!(f, "setWeight {w}")?,
                    None => f.write_str("setCanaryScale")?,
                }
                write!(
                    f,
                    ": canary ReplicaSet {rs} {ready}/{canary_pods} pods available, \
                     stable {stable_ready}/{stable_size}"
                )
            }
            Self::Experiment {
                no,
                of,
                experiment,
                ready,
                replicas,
            } => write!(
                f,
                "Step {no}/{of} experiment {experiment}: {ready}/{replicas} pods available"
            ),
            Self::Finishing {
                rs,
                ready,
                replicas,
                stable_ready,
                stable_size,
            } => write!(
                f,
                "Finishing: canary ReplicaSet {rs} {ready}/{replicas} pods available, \
                 stable {stable_ready}/{stable_size}"
            ),
        }
    }
}

/// Why the engine aborts a release by itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AbortCause {
    /// An AnalysisRun failed, or could not measure with `errorPolicy: Abort`.
    Analysis {
        /// Where in the release.
        point: Point,
        /// The run.
        run: String,
        /// `Failed` or `Error`.
        phase: AnalysisPhase,
        /// The run's message.
        detail: Option<String>,
    },
    /// No progress for `progressDeadlineSeconds`.
    Deadline {
        /// `progressDeadlineSeconds`.
        seconds: i64,
        /// What the release was waiting for.
        waiting: Waiting,
    },
    /// An alert the release is to blame for fired (`spec.alerts`).
    Alert {
        /// The alert.
        alert: ObservedAlert,
    },
}

impl AbortCause {
    /// The typed reason recorded in the status.
    pub fn reason(&self) -> rollgate_api::AbortReason {
        use rollgate_api::AbortReason;
        match self {
            Self::Analysis {
                phase: AnalysisPhase::Error,
                ..
            } => AbortReason::AnalysisError,
            Self::Analysis { .. } => AbortReason::AnalysisFailed,
            Self::Deadline { .. } => AbortReason::ProgressDeadline,
            Self::Alert { .. } => AbortReason::AlertFiring,
        }
    }
}

impl fmt::Display for AbortCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Analysis {
                point,
                run,
                phase,
                detail,
            } => {
                if *phase == AnalysisPhase::Error {
                    write!(
                        f,
                        "{point} analysis {run} could not measure (errorPolicy: Abort)"
                    )?;
                } else {
                    write!(f, "{point} analysis {run} {phase}")?;
                }
                if let Some(d) = detail {
                    write!(f, ": {d}")?;
                }
                Ok(())
            }
            Self::Deadline { seconds, waiting } => write!(
                f,
                "ProgressDeadlineExceeded: no progress for {seconds}s ({waiting})"
            ),
            Self::Alert { alert } => write!(f, "AlertFiring: {}", AlertText(alert)),
        }
    }
}

/// An alert in words: its name, labels and start.
struct AlertText<'a>(&'a ObservedAlert);

impl fmt::Display for AlertText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let a = self.0;
        let labels: Vec<String> = a
            .labels
            .iter()
            .filter(|(k, _)| k.as_str() != "alertname")
            .map(|(k, v)| format!("{k}={v:?}"))
            .collect();
        write!(
            f,
            "alert {} {{{}}} firing since {}",
            a.name,
            labels.join(", "),
            a.starts_at
        )
    }
}

/// Why a ReplicaSet is scaled to zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScaleDownWhy {
    /// Its scale-down deadline passed.
    DelayPassed,
    /// It never served production traffic and was superseded.
    NeverServed,
    /// More revisions wait for their scale-down than `scaleDownDelayRevisionLimit`.
    BeyondRevisionLimit,
}

/// A status message or Event note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Msg {
    // ---- Events
    /// The template is the stable one again.
    RollbackToStable {
        /// Stable hash.
        hash: String,
    },
    /// A newer revision replaced the release in flight.
    Superseded {
        /// The replaced revision's hash.
        previous: String,
    },
    /// Fast rollback to a revision whose ReplicaSet exists.
    RollbackToRevision {
        /// Its old revision number.
        old: i64,
        /// Its hash.
        hash: String,
        /// Its new revision number.
        revision: i64,
    },
    /// A new release starts.
    NewRevision {
        /// Revision number.
        revision: i64,
        /// Hash.
        hash: String,
        /// Strategy.
        strategy: StrategyKind,
    },
    /// A pause began.
    PauseStarted(PauseReason),
    /// The spec is invalid (problems already in words).
    InvalidSpec(String),
    /// The progress deadline passed (without abort).
    NoProgress {
        /// `progressDeadlineSeconds`.
        seconds: i64,
        /// What the release waits for.
        waiting: Waiting,
    },
    /// An analysis that could not measure starts again.
    AnalysisRetried {
        /// The run that could not measure.
        run: String,
    },
    /// An AnalysisRun of the release changed phase.
    AnalysisPhaseChanged {
        /// Its kind.
        kind: AnalysisKind,
        /// Its step index, for step runs.
        step: Option<i32>,
        /// Its name.
        run: String,
        /// The phase it has now.
        phase: AnalysisPhase,
        /// The phase the status recorded before, if any.
        previous: Option<String>,
    },
    /// Every pause of the release ended, and not by an abort.
    Resumed,
    /// The Completed condition became False: a release of `revision` started.
    NotCompleted {
        /// The current revision, if known.
        revision: Option<i64>,
        /// The current pod-template hash.
        hash: String,
    },
    /// An AnalysisRun was started.
    AnalysisStarted {
        /// Its kind.
        kind: AnalysisKind,
        /// Its step index, for step runs.
        step: Option<i32>,
        /// Its name.
        run: String,
    },
    /// A ReplicaSet was created.
    ReplicaSetCreated {
        /// Name.
        rs: String,
        /// Revision.
        revision: i64,
        /// Replicas.
        replicas: i32,
    },
    /// A ReplicaSet was scaled.
    ReplicaSetScaled {
        /// Name.
        rs: String,
        /// From.
        from: i32,
        /// To.
        to: i32,
    },
    /// A ReplicaSet was scaled to zero.
    ReplicaSetScaledToZero {
        /// Name.
        rs: String,
        /// From.
        from: i32,
        /// Why.
        why: ScaleDownWhy,
    },
    /// The object of `spec.workloadRef` was scaled by its `scaleDown` policy.
    WorkloadScaled {
        /// Its kind.
        kind: crate::observed::WorkloadKind,
        /// Its name.
        name: String,
        /// Replicas before.
        from: i32,
        /// Replicas after.
        to: i32,
        /// The policy that scaled it.
        policy: crate::validate::ScaleDown,
    },
    /// A ReplicaSet beyond the history limit was deleted.
    ReplicaSetPruned {
        /// Name.
        rs: String,
        /// Revision.
        revision: i64,
        /// `revisionHistoryLimit`.
        limit: i32,
    },
    /// `restartAt` is done.
    Restarted {
        /// `restartAt`.
        at: Timestamp,
    },
    /// A pod was deleted for `restartAt`.
    PodRestarted {
        /// Pod name.
        pod: String,
        /// `restartAt`.
        at: Timestamp,
    },
    /// A Service selects another revision.
    ServiceSwitched {
        /// Its role.
        role: ServiceRole,
        /// Its name.
        service: String,
        /// Hash before.
        from: Option<String>,
        /// Hash after.
        to: String,
    },
    /// Inside its guard window, an alert the fully promoted revision is to blame for fired:
    /// the previous revision is stable again.
    GuardRollback {
        /// The alert.
        alert: ObservedAlert,
        /// The guarded revision.
        hash: String,
        /// The previous revision, serving again.
        previous: String,
    },
    /// Inside its guard window, the guard analysis of the fully promoted revision failed: the
    /// previous revision is stable again.
    GuardAnalysisRollback {
        /// The failed AnalysisRun.
        run: String,
        /// The guarded revision.
        hash: String,
        /// The previous revision, serving again.
        previous: String,
    },
    /// The guard analysis ended without a verdict.
    GuardAnalysisInconclusive {
        /// The AnalysisRun.
        run: String,
        /// How it ended (Inconclusive or Error).
        phase: AnalysisPhase,
    },
    /// The alert source could not be read.
    AlertSourceUnavailable {
        /// Why.
        why: String,
    },
    /// The guard window ended without a blamed alert.
    GuardPassed {
        /// The guarded revision.
        hash: String,
        /// The previous revision, now scaled down as usual.
        previous: String,
    },
    /// A Service the strategy no longer names selects every pod of the rollout again.
    ServiceReleased {
        /// Its name.
        service: String,
        /// Hash it pinned.
        from: String,
    },
    /// The first revision is available.
    FirstRevisionAvailable {
        /// Hash.
        hash: String,
        /// Replicas.
        replicas: i32,
    },
    /// A human aborted the release.
    UserAbort {
        /// Strategy.
        strategy: StrategyKind,
        /// Stable hash.
        stable: String,
    },
    /// The engine aborted the release.
    Abort {
        /// Strategy.
        strategy: StrategyKind,
        /// Why.
        cause: AbortCause,
        /// Stable hash.
        stable: String,
    },
    /// An aborted release is retried.
    Retrying {
        /// Strategy.
        strategy: StrategyKind,
        /// Hash.
        hash: String,
        /// With `promoteFull`.
        full: bool,
    },
    /// Blue/green promotion starts.
    Promoting {
        /// Hash.
        hash: String,
        /// Replicas.
        replicas: i32,
    },
    /// `autoPromotionSeconds` elapsed.
    AutoPromotion {
        /// `autoPromotionSeconds`.
        seconds: i64,
    },
    /// Blue/green release complete.
    BlueGreenCompleted {
        /// New stable hash.
        hash: String,
        /// Previous stable hash.
        previous: String,
        /// `scaleDownDelaySeconds`.
        delay: i64,
    },
    /// Canary release complete.
    CanaryCompleted {
        /// New stable hash.
        hash: String,
        /// Previous stable hash.
        previous: String,
        /// `scaleDownDelaySeconds` behind a router; `None` without one (no pods left).
        delay: Option<i64>,
    },
    /// Route weights changed.
    RouteWeights {
        /// Route namespace.
        namespace: String,
        /// Route name.
        route: String,
        /// Canary backend.
        canary: String,
        /// Stable backend.
        stable: String,
        /// Canary weight before.
        from: i32,
        /// Canary weight after.
        to: i32,
    },
    /// The managed routes of an HTTPRoute changed.
    ManagedRoutes {
        /// Route namespace.
        namespace: String,
        /// Route name.
        route: String,
        /// Managed routes before, in order.
        from: Vec<String>,
        /// Managed routes after, in order.
        to: Vec<String>,
    },
    /// A canary pause step was promoted.
    PausePromoted {
        /// Step number, from 1.
        no: usize,
        /// Number of steps.
        of: usize,
    },
    /// An `experiment` step started its ReplicaSets.
    ExperimentCreated {
        /// The experiment.
        experiment: String,
        /// Its ReplicaSets.
        replica_sets: Vec<String>,
    },
    /// An experiment reached a phase (Running: every ReplicaSet available).
    ExperimentPhase {
        /// The experiment.
        experiment: String,
        /// The phase.
        phase: AnalysisPhase,
        /// The analysis that decided it (Failed, Error, Inconclusive) and its run.
        by: Option<(String, String)>,
    },
    /// A canary step is done.
    StepCompleted {
        /// The step done, from 1.
        done: usize,
        /// Number of steps.
        of: usize,
    },

    // ---- Status messages
    /// Paused: an analysis could not measure.
    AnalysisErrorPause {
        /// Where.
        point: Point,
        /// Run.
        run: String,
        /// Its message.
        detail: Option<String>,
        /// Rollout name.
        rollout: String,
    },
    /// Paused: an analysis was inconclusive.
    InconclusivePause {
        /// Where.
        point: Point,
        /// Run.
        run: String,
        /// Its message.
        detail: Option<String>,
        /// Rollout name.
        rollout: String,
    },
    /// Waiting for an AnalysisRun.
    AnalysisRunning {
        /// Where.
        point: Point,
        /// Run.
        run: String,
        /// Its phase.
        phase: AnalysisPhase,
    },
    /// A canary `experiment` step runs: until the analyses it needs succeed, else until its
    /// duration ends, else (neither) until a human promotes past it.
    ExperimentRunning {
        /// Step number, from 1.
        no: usize,
        /// Number of steps.
        of: usize,
        /// The experiment.
        experiment: String,
        /// The analyses marked `requiredForCompletion` that have not succeeded yet.
        required: Vec<String>,
        /// When its duration ends (none required).
        until: Option<Timestamp>,
        /// An analysis that cannot measure, holding an experiment otherwise over.
        blind: Option<String>,
        /// Rollout name (for the promote command, when it runs until promoted).
        rollout: String,
    },
    /// Waiting for pods.
    Waiting(Waiting),
    /// Waiting for pods past the progress deadline (status message).
    DeadlineExceeded(Waiting),
    /// Steady, but the stable ReplicaSet is short of pods.
    WaitingForStable {
        /// Name.
        rs: String,
        /// Available.
        ready: i32,
        /// Wanted.
        replicas: i32,
    },
    /// Healthy.
    Healthy {
        /// Hash.
        hash: String,
        /// Replicas.
        replicas: i32,
    },
    /// Blue/green `spec.paused`.
    SpecPausedBlueGreen,
    /// `spec.paused` before the first revision is up: its ReplicaSet is not scaled up.
    SpecPausedFirstDeploy {
        /// ReplicaSet name.
        rs: String,
        /// Its pods now.
        size: i32,
        /// `spec.replicas`.
        replicas: i32,
        /// Rollout name.
        rollout: String,
    },
    /// `spec.paused` with nothing in flight: the stable revision serves, nothing new is
    /// released.
    SpecPausedSteady {
        /// Stable hash.
        hash: String,
        /// Replicas.
        replicas: i32,
        /// Rollout name.
        rollout: String,
    },
    /// Canary `spec.paused`.
    SpecPausedCanary {
        /// Step number, from 1.
        no: usize,
        /// Number of steps.
        of: usize,
        /// Rollout name.
        rollout: String,
    },
    /// Blue/green preview waits for `autoPromotionSeconds`.
    AutoPromotionPause {
        /// Hash.
        hash: String,
        /// When it promotes.
        at: Timestamp,
        /// `autoPromotionSeconds`.
        seconds: i64,
        /// Rollout name.
        rollout: String,
    },
    /// Blue/green preview waits for a human.
    PromotionPause {
        /// Hash.
        hash: String,
        /// Rollout name.
        rollout: String,
    },
    /// A timed canary pause step.
    TimedPause {
        /// Step number, from 1.
        no: usize,
        /// Number of steps.
        of: usize,
        /// Its duration.
        seconds: i64,
        /// When it ends.
        at: Timestamp,
        /// Rollout name.
        rollout: String,
    },
    /// An indefinite canary pause step.
    IndefinitePause {
        /// Step number, from 1.
        no: usize,
        /// Number of steps.
        of: usize,
        /// Rollout name.
        rollout: String,
    },
    /// The aborted state: the abort as recorded, plus whether traffic is back on stable yet.
    Aborted {
        /// Strategy.
        strategy: StrategyKind,
        /// The abort message recorded in the status.
        recorded: String,
        /// True while stable cannot take the traffic back yet.
        waiting_for_stable: bool,
    },
    /// `restartAt` in progress.
    Restarting {
        /// `restartAt`.
        at: Timestamp,
        /// Pods still to restart.
        left: usize,
        /// Pods of the stable revision.
        of: usize,
    },
}

fn none_or(hash: &Option<String>) -> &str {
    hash.as_deref().unwrap_or("<none>")
}

fn detail(d: &Option<String>) -> String {
    d.as_ref().map(|m| format!(": {m}")).unwrap_or_default()
}

impl fmt::Display for Msg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use StrategyKind::{BlueGreen, Canary};
        match self {
            Self::RollbackToStable { hash } => write!(
                f,
                "Template matches the stable revision ({hash}): back to stable at once, \
                 without steps or analysis"
            ),
            Self::Superseded { previous } => {
                write!(f, "Release of {previous} superseded by a newer revision")
            }
            Self::RollbackToRevision {
                old,
                hash,
                revision,
            } => write!(
                f,
                "Template matches revision {old} ({hash}), whose ReplicaSet still exists: fast \
                 rollback as revision {revision}, without steps or analysis"
            ),
            Self::NewRevision {
                revision,
                hash,
                strategy,
            } => {
                let s = match strategy {
                    BlueGreen => "blue/green",
                    Canary => "canary",
                };
                write!(
                    f,
                    "New revision {revision} (pod-template-hash {hash}): starting {s} release"
                )
            }
            Self::PauseStarted(reason) => write!(f, "Rollout paused ({reason})"),
            Self::InvalidSpec(text) => f.write_str(text),
            Self::NoProgress { seconds, waiting } => {
                write!(f, "No progress for {seconds}s: {waiting}")
            }
            Self::AnalysisRetried { run } => {
                write!(f, "Measuring again: {run} could not measure")
            }
            Self::AnalysisPhaseChanged {
                kind,
                step,
                run,
                phase,
                previous,
            } => {
                match step {
                    Some(i) => write!(f, "{}-{i} analysis {run}: {phase}", kind.as_str())?,
                    None => write!(f, "{} analysis {run}: {phase}", kind.as_str())?,
                }
                match previous {
                    Some(p) => write!(f, " (was {p})"),
                    None => Ok(()),
                }
            }
            Self::Resumed => f.write_str("Rollout resumed"),
            Self::NotCompleted { revision, hash } => match revision {
                Some(r) => write!(
                    f,
                    "Rollout not completed: update to revision {r} ({hash}) started"
                ),
                None => write!(f, "Rollout not completed: update to {hash} started"),
            },
            Self::AnalysisStarted { kind, step, run } => match step {
                Some(i) => write!(f, "Started {}-{i} analysis {run}", kind.as_str()),
                None => write!(f, "Started {} analysis {run}", kind.as_str()),
            },
            Self::ReplicaSetCreated {
                rs,
                revision,
                replicas,
            } => write!(
                f,
                "Created ReplicaSet {rs} (revision {revision}) with {replicas} replicas"
            ),
            Self::ReplicaSetScaled { rs, from, to } => {
                let dir = if to > from { "up" } else { "down" };
                write!(f, "Scaled {dir} ReplicaSet {rs} from {from} to {to}")
            }
            Self::ReplicaSetScaledToZero { rs, from, why } => {
                let why = match why {
                    ScaleDownWhy::DelayPassed => "scale-down delay passed",
                    ScaleDownWhy::NeverServed => "superseded, never served production traffic",
                    ScaleDownWhy::BeyondRevisionLimit => "beyond scaleDownDelayRevisionLimit",
                };
                write!(f, "Scaled down ReplicaSet {rs} from {from} to 0 ({why})")
            }
            Self::WorkloadScaled {
                kind,
                name,
                from,
                to,
                policy,
            } => {
                let dir = if to > from { "up" } else { "down" };
                let policy = match policy {
                    crate::validate::ScaleDown::Never => "never",
                    crate::validate::ScaleDown::OnSuccess => "onsuccess",
                    crate::validate::ScaleDown::Progressively => "progressively",
                };
                write!(
                    f,
                    "Scaled {dir} {kind} {name} from {from} to {to} (spec.workloadRef.scaleDown: \
                     {policy})"
                )
            }
            Self::ReplicaSetPruned {
                rs,
                revision,
                limit,
            } => write!(
                f,
                "Deleted ReplicaSet {rs} (revision {revision}) beyond revisionHistoryLimit {limit}"
            ),
            Self::Restarted { at } => {
                write!(f, "Every pod created before {at} (restartAt) was restarted")
            }
            Self::PodRestarted { pod, at } => {
                write!(f, "Deleted pod {pod} (created before restartAt {at})")
            }
            Self::ServiceSwitched {
                role,
                service,
                from,
                to,
            } => write!(
                f,
                "Switched {} Service {service} from {} to {to}",
                role.as_str(),
                none_or(from)
            ),
            Self::GuardRollback {
                alert,
                hash,
                previous,
            } => write!(
                f,
                "AlertFiring inside the guard window of {hash}: {}; production traffic goes back \
                 to the previous revision {previous}",
                AlertText(alert)
            ),
            Self::GuardAnalysisRollback {
                run,
                hash,
                previous,
            } => write!(
                f,
                "GuardAnalysisFailed inside the guard window of {hash}: AnalysisRun {run} \
                 failed; production traffic goes back to the previous revision {previous}"
            ),
            Self::GuardAnalysisInconclusive { run, phase } => write!(
                f,
                "Guard analysis {run} ended {phase} without a verdict: nothing is rolled back; \
                 alerts still guard the window"
            ),
            Self::AlertSourceUnavailable { why } => write!(
                f,
                "Alert source unavailable ({why}): no alert acts and nothing waits on it \
                 (retrying every interval)"
            ),
            Self::GuardPassed { hash, previous } => write!(
                f,
                "Guard window of {hash} passed without a blamed alert; previous revision \
                 {previous} is scaled down as usual"
            ),
            Self::ServiceReleased { service, from } => write!(
                f,
                "Released Service {service}: the strategy no longer names it, so its selector \
                 no longer pins {from}"
            ),
            Self::FirstRevisionAvailable { hash, replicas } => write!(
                f,
                "First revision ({hash}) is available with {replicas} pods"
            ),
            Self::UserAbort {
                strategy: BlueGreen,
                stable,
            } => write!(
                f,
                "Aborted by user (status.abort): production traffic stays on stable revision \
                 {stable}"
            ),
            Self::UserAbort {
                strategy: Canary,
                stable,
            } => write!(
                f,
                "Aborted by user (status.abort): canary weight back to 0, traffic on stable \
                 revision {stable}"
            ),
            Self::Abort {
                strategy: BlueGreen,
                cause,
                stable,
            } => write!(
                f,
                "Aborted: {cause}; production traffic returned to stable revision {stable}"
            ),
            Self::Abort {
                strategy: Canary,
                cause,
                stable,
            } => write!(
                f,
                "Aborted: {cause}; canary weight back to 0, traffic on stable revision {stable}"
            ),
            Self::Retrying {
                strategy,
                hash,
                full,
            } => {
                let how = match (strategy, full) {
                    (BlueGreen, true) => " with full promotion (no analysis, no pause)",
                    (BlueGreen, false) => "",
                    (Canary, true) => " with full promotion (no steps, no analysis)",
                    (Canary, false) => " from the first step",
                };
                write!(f, "Retrying the release of {hash}{how}")
            }
            Self::Promoting { hash, replicas } => write!(
                f,
                "Promoting {hash}: scaling to {replicas} pods, then switching the active Service"
            ),
            Self::AutoPromotion { seconds } => {
                write!(f, "autoPromotionSeconds ({seconds}s) elapsed: promoting")
            }
            Self::BlueGreenCompleted {
                hash,
                previous,
                delay,
            } => write!(
                f,
                "Revision {hash} is stable; previous revision {previous} scales down in {delay}s"
            ),
            Self::CanaryCompleted {
                hash,
                previous,
                delay: Some(delay),
            } => write!(
                f,
                "Revision {hash} is stable; previous revision {previous} scales down in {delay}s"
            ),
            Self::CanaryCompleted {
                hash,
                previous,
                delay: None,
            } => write!(
                f,
                "Revision {hash} is stable; previous revision {previous} has no pods left"
            ),
            Self::RouteWeights {
                namespace,
                route,
                canary,
                stable,
                from,
                to,
            } => write!(
                f,
                "HTTPRoute {namespace}/{route}: canary {canary} weight {from} -> {to}, stable \
                 {stable} weight {} -> {}",
                100 - from,
                100 - to
            ),
            Self::ManagedRoutes {
                namespace,
                route,
                from,
                to,
            } => {
                let list = |l: &[String]| {
                    if l.is_empty() {
                        "none".to_string()
                    } else {
                        l.join(", ")
                    }
                };
                write!(
                    f,
                    "HTTPRoute {namespace}/{route}: managed routes {} -> {}",
                    list(from),
                    list(to)
                )
            }
            Self::PausePromoted { no, of } => write!(f, "Pause at step {no}/{of} promoted"),
            Self::ExperimentCreated {
                experiment,
                replica_sets,
            } => write!(
                f,
                "Experiment {experiment} started: ReplicaSets {}",
                replica_sets.join(", ")
            ),
            Self::ExperimentPhase {
                experiment,
                phase,
                by,
            } => {
                match phase {
                    AnalysisPhase::Pending => write!(f, "Experiment {experiment} is pending")?,
                    AnalysisPhase::Running => write!(
                        f,
                        "Experiment {experiment} is running: every ReplicaSet is available"
                    )?,
                    AnalysisPhase::Successful => write!(f, "Experiment {experiment} succeeded")?,
                    AnalysisPhase::Failed => write!(f, "Experiment {experiment} failed")?,
                    AnalysisPhase::Error => {
                        write!(f, "Experiment {experiment} could not measure")?;
                    }
                    AnalysisPhase::Inconclusive => {
                        write!(f, "Experiment {experiment} is inconclusive")?;
                    }
                }
                if let Some((analysis, run)) = by {
                    write!(f, ": analysis {analysis:?} (AnalysisRun {run})")?;
                }
                Ok(())
            }
            Self::StepCompleted { done, of } => {
                write!(f, "Step {done}/{of} done: now at step {}", done + 1)
            }
            Self::AnalysisErrorPause {
                point,
                run,
                detail: d,
                rollout,
            } => write!(
                f,
                "Paused: {point} analysis {run} could not measure{}; traffic stays where it is. \
                 Once the metric source is back, `rollgate retry {rollout}` measures again (or \
                 `rollgate promote {rollout}` / `rollgate abort {rollout}`)",
                detail(d)
            ),
            Self::InconclusivePause {
                point,
                run,
                detail: d,
                rollout,
            } => write!(
                f,
                "Paused: {point} analysis {run} is inconclusive{}: `rollgate promote {rollout}` \
                 to continue, `rollgate abort {rollout}` to go back",
                detail(d)
            ),
            Self::AnalysisRunning { point, run, phase } => {
                write!(f, "Waiting for {point} analysis {run} ({phase})")
            }
            Self::ExperimentRunning {
                no,
                of,
                experiment,
                required,
                until,
                blind,
                rollout,
            } => {
                write!(f, "Step {no}/{of}: experiment {experiment} runs")?;
                if let Some(a) = blind {
                    write!(
                        f,
                        " on: it is over but its analysis {a:?} cannot measure; it ends once \
                         that analysis measures again"
                    )
                } else if !required.is_empty() {
                    let names: Vec<String> = required.iter().map(|r| format!("{r:?}")).collect();
                    write!(f, " until analyses {} succeed", names.join(", "))
                } else if let Some(t) = until {
                    write!(f, " until {t}")
                } else {
                    write!(
                        f,
                        " until promoted: `rollgate promote {rollout}` goes to the next step"
                    )
                }
            }
            Self::Waiting(w) => write!(f, "{w}"),
            Self::DeadlineExceeded(w) => write!(f, "ProgressDeadlineExceeded: {w}"),
            Self::WaitingForStable {
                rs,
                ready,
                replicas,
            } => write!(
                f,
                "Waiting for stable ReplicaSet {rs}: {ready}/{replicas} pods available"
            ),
            Self::Healthy { hash, replicas } => write!(
                f,
                "Healthy: revision {hash} serves with {replicas}/{replicas} pods"
            ),
            Self::SpecPausedBlueGreen => {
                f.write_str("Paused (spec.paused is true): set it to false to continue")
            }
            Self::SpecPausedFirstDeploy {
                rs,
                size,
                replicas,
                rollout,
            } => write!(
                f,
                "Paused (spec.paused is true): the first revision's ReplicaSet {rs} stays at \
                 {size}/{replicas} pods until `rollgate resume {rollout}`"
            ),
            Self::SpecPausedSteady {
                hash,
                replicas,
                rollout,
            } => write!(
                f,
                "Paused (spec.paused is true): revision {hash} serves with {replicas}/{replicas} \
                 pods; no new revision is released until `rollgate resume {rollout}`"
            ),
            Self::SpecPausedCanary { no, of, rollout } => write!(
                f,
                "Paused at step {no}/{of} (spec.paused is true): `rollgate resume {rollout}` to \
                 continue"
            ),
            Self::AutoPromotionPause {
                hash,
                at,
                seconds,
                rollout,
            } => write!(
                f,
                "Paused: preview {hash} is ready; promoting automatically at {at} \
                 (autoPromotionSeconds: {seconds}), or now with `rollgate promote {rollout}`"
            ),
            Self::PromotionPause { hash, rollout } => write!(
                f,
                "Paused: preview {hash} is ready and waiting for promotion (`rollgate promote \
                 {rollout}`)"
            ),
            Self::TimedPause {
                no,
                of,
                seconds,
                at,
                rollout,
            } => write!(
                f,
                "Paused at step {no}/{of} for {seconds}s: continuing at {at} (`rollgate promote \
                 {rollout}` continues now)"
            ),
            Self::IndefinitePause { no, of, rollout } => write!(
                f,
                "Paused at step {no}/{of} until promoted: `rollgate promote {rollout}` to \
                 continue, `rollgate abort {rollout}` to go back to stable"
            ),
            Self::Aborted {
                recorded,
                waiting_for_stable: false,
                ..
            } => f.write_str(recorded),
            Self::Aborted {
                strategy: BlueGreen,
                recorded,
                waiting_for_stable: true,
            } => write!(
                f,
                "{recorded} (waiting for stable pods to be ready before switching back)"
            ),
            Self::Aborted {
                strategy: Canary,
                recorded,
                waiting_for_stable: true,
            } => write!(
                f,
                "{recorded} (waiting for the stable ReplicaSet to be fully available)"
            ),
            Self::Restarting { at, left, of } => write!(
                f,
                "Restarting pods created before {at} (restartAt): {left} of {of} left"
            ),
        }
    }
}
