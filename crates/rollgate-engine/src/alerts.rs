//! Firing alerts as an input of the engine: which of them a release is to blame for, and the
//! guard window after full promotion, inside which a blamed alert still sends traffic back
//! to the previous revision.
//!
//! Attribution: an alert whose revision label is the release's pod-template hash blames it;
//! one carrying the stable (previous) hash never does, nor one of another revision; one
//! without the label (service-level) follows `serviceLevelAlerts`: with
//! `IfStartedDuringRelease` it blames the release only if it started after the release began
//! (minus [`CLOCK_SKEW_GRACE_SECS`]). One occurrence (fingerprint and start) acts once per
//! revision: after `rollgate retry`, the alert that aborted the release does not abort it
//! again; a new occurrence does. An unknown source (unreachable, garbage) blames nothing.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use rollgate_api::{
    AbortReason, AlertsSpec, AnalysisPhase, BlamedAlert, ConditionReason, ConditionType,
    EventReason, GuardSpec, GuardStatus, RolloutAnalysis,
};

use crate::context::Ctx;
use crate::lifecycle::{AbortState, Aborted};
use crate::message::Msg;
use crate::observed::{AnalysisKind, ObservedAlert, ObservedAlerts};
use crate::time::add_secs;
use crate::validate::Problem;

/// Default alert label carrying a pod-template hash.
pub const DEFAULT_REVISION_LABEL: &str = "pod_template_hash";
/// Default pull interval, in seconds.
pub const DEFAULT_INTERVAL_SECS: i64 = 15;
/// A service-level alert that started this long before the release began still counts
/// (clocks of Prometheus and of the controller may differ a little).
pub const CLOCK_SKEW_GRACE_SECS: i64 = 30;

/// What to do with alerts that carry no revision label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceLevel {
    /// They blame the release when they started after it began.
    IfStartedDuringRelease,
    /// They never blame a release.
    Ignore,
}

/// `spec.alerts` and `spec.guard`, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertPolicy {
    /// Label carrying a pod-template hash.
    pub revision_label: String,
    /// Alerts without that label.
    pub service_level: ServiceLevel,
    /// Pull interval, seconds.
    pub interval_secs: i64,
    /// Whether `spec.alerts` names a source (a guard with only an analysis has none).
    pub source: bool,
    /// Guard window after full promotion, seconds (none: no guard).
    pub guard_secs: Option<i64>,
    /// `spec.guard.analysis`: run against the promoted revision inside the window.
    pub guard_analysis: Option<RolloutAnalysis>,
}

fn problem(field: &str, expected: impl Into<String>) -> Problem {
    Problem {
        field: field.to_string(),
        expected: expected.into(),
    }
}

fn duration_secs(field: &str, text: Option<&str>, problems: &mut Vec<Problem>) -> Option<i64> {
    let text = text?;
    match rollgate_api::duration::parse(text) {
        Ok(d) if d.is_zero() => {
            problems.push(problem(field, "a duration above 0 expected"));
            None
        }
        Ok(d) => Some(i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
        Err(e) => {
            problems.push(problem(field, e.to_string()));
            None
        }
    }
}

fn http_address(field: &str, address: Option<&str>, problems: &mut Vec<Problem>) {
    match address.map(str::trim) {
        None | Some("") => problems.push(problem(field, "an http(s) URL expected, none given")),
        Some(a) if !(a.starts_with("http://") || a.starts_with("https://")) => {
            problems.push(problem(
                field,
                format!("an absolute http(s) URL expected, got {a:?}"),
            ))
        }
        Some(_) => {}
    }
}

/// Validates `spec.alerts` and `spec.guard`; `None` when neither is set.
pub fn policy(
    alerts: Option<&AlertsSpec>,
    guard: Option<&GuardSpec>,
    problems: &mut Vec<Problem>,
) -> Option<AlertPolicy> {
    let guard_analysis = guard.and_then(|g| g.analysis.clone());
    let guard_secs = guard.and_then(|g| {
        if g.duration.is_none() {
            problems.push(problem(
                "spec.guard.duration",
                "a duration expected (how long after full promotion the release stays guarded)",
            ));
        }
        duration_secs("spec.guard.duration", g.duration.as_deref(), problems)
    });
    let Some(a) = alerts else {
        if guard.is_some() && guard_analysis.is_none() {
            problems.push(problem(
                "spec.guard",
                "spec.alerts or spec.guard.analysis expected: the guard window acts on alerts \
                 or on an analysis",
            ));
        }
        return guard.map(|_| AlertPolicy {
            revision_label: DEFAULT_REVISION_LABEL.to_string(),
            service_level: ServiceLevel::IfStartedDuringRelease,
            interval_secs: DEFAULT_INTERVAL_SECS,
            source: false,
            guard_secs,
            guard_analysis,
        });
    };
    match (&a.alertmanager, &a.prometheus) {
        (Some(_), Some(_)) => problems.push(problem(
            "spec.alerts",
            "exactly one of alertmanager or prometheus expected, found both",
        )),
        (None, None) => problems.push(problem(
            "spec.alerts",
            "exactly one of alertmanager or prometheus expected, found neither",
        )),
        (Some(s), None) => http_address(
            "spec.alerts.alertmanager.address",
            s.address.as_deref(),
            problems,
        ),
        (None, Some(s)) => http_address(
            "spec.alerts.prometheus.address",
            s.address.as_deref(),
            problems,
        ),
    }
    for (i, m) in a.matchers.iter().enumerate() {
        if let Err(e) = m.parse::<rollgate_api::matcher::Matcher>() {
            problems.push(problem(
                &format!("spec.alerts.matchers[{i}]"),
                e.to_string(),
            ));
        }
    }
    let service_level = match a.service_level_alerts.as_deref() {
        None | Some("IfStartedDuringRelease") => ServiceLevel::IfStartedDuringRelease,
        Some("Ignore") => ServiceLevel::Ignore,
        Some(other) => {
            problems.push(problem(
                "spec.alerts.serviceLevelAlerts",
                format!("IfStartedDuringRelease or Ignore expected, got {other:?}"),
            ));
            ServiceLevel::IfStartedDuringRelease
        }
    };
    let revision_label = match a.revision_label.as_deref() {
        None => DEFAULT_REVISION_LABEL.to_string(),
        Some(l) if is_label_name(l) => l.to_string(),
        Some(l) => {
            problems.push(problem(
                "spec.alerts.revisionLabel",
                format!("a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*) expected, got {l:?}"),
            ));
            DEFAULT_REVISION_LABEL.to_string()
        }
    };
    let interval_secs = duration_secs("spec.alerts.interval", a.interval.as_deref(), problems)
        .unwrap_or(DEFAULT_INTERVAL_SECS);
    Some(AlertPolicy {
        revision_label,
        service_level,
        interval_secs,
        source: true,
        guard_secs,
        guard_analysis,
    })
}

fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The firing alert that `release` (over `previous`, begun at `started`) is to blame for, if
/// any.
pub fn to_blame<'o>(
    cx: &Ctx<'o>,
    policy: &AlertPolicy,
    release: &str,
    previous: &str,
    started: Option<Timestamp>,
) -> Option<&'o ObservedAlert> {
    let ObservedAlerts::Firing(alerts) = &cx.observed.alerts else {
        return None;
    };
    let acted = cx.status.alert.as_ref();
    alerts.iter().find(|a| {
        let already = acted.is_some_and(|b| {
            b.revision == release
                && b.fingerprint == a.fingerprint
                && b.starts_at.as_ref().map(|t| t.0) == Some(a.starts_at)
        });
        if already {
            return false;
        }
        match a.labels.get(&policy.revision_label) {
            Some(h) if h == release => true,
            Some(h) if h == previous => false,
            Some(_) => false,
            None => match policy.service_level {
                ServiceLevel::Ignore => false,
                ServiceLevel::IfStartedDuringRelease => {
                    started.is_some_and(|s| a.starts_at >= add_secs(s, -CLOCK_SKEW_GRACE_SECS))
                }
            },
        }
    })
}

/// The status record of a blamed alert.
pub fn record(alert: &ObservedAlert, revision: &str) -> BlamedAlert {
    BlamedAlert {
        name: alert.name.clone(),
        labels: alert.labels.clone(),
        starts_at: Some(Time(alert.starts_at)),
        fingerprint: alert.fingerprint.clone(),
        revision: revision.to_string(),
    }
}

/// When to look again inside a window ending at `until`: at the next pull when alerts are
/// pulled, else at its end (a guard analysis run wakes the controller when it changes).
fn next_look(cx: &Ctx<'_>, until: Timestamp) -> Timestamp {
    match cx.alerts.as_ref().filter(|p| p.source) {
        Some(p) => add_secs(cx.now, p.interval_secs).min(until),
        None => until,
    }
}

/// Opens the guard window of `hash`, which just became stable over `previous`, and starts its
/// analysis, if any.
pub fn open_guard(cx: &mut Ctx<'_>, hash: &str, previous: &str) {
    let Some(secs) = cx.alerts.as_ref().and_then(|p| p.guard_secs) else {
        return;
    };
    if hash == previous {
        return;
    }
    let until = add_secs(cx.now, secs);
    cx.wake_at(next_look(cx, until));
    cx.status.guard = Some(GuardStatus {
        revision: hash.to_string(),
        previous: previous.to_string(),
        release_started_at: cx.status.release_started_at.clone(),
        until: Time(until),
        analysis_run: None,
    });
    if let Some(analysis) = cx.alerts.as_ref().and_then(|p| p.guard_analysis.clone()) {
        follow_analysis(cx, &analysis, hash);
    }
}

/// Name of the guard analysis run the open window follows: the strategies keep it running.
pub fn guard_run(cx: &Ctx<'_>) -> Option<String> {
    cx.status
        .guard
        .as_ref()
        .and_then(|g| g.analysis_run.as_ref())
        .map(|r| r.name.clone())
}

/// Follows (or starts) the guard analysis run of `hash`; reports, once, a run that ended
/// without a verdict.
fn follow_analysis(
    cx: &mut Ctx<'_>,
    analysis: &RolloutAnalysis,
    hash: &str,
) -> (AnalysisPhase, String) {
    let mut slot = cx.status.guard.as_mut().and_then(|g| g.analysis_run.take());
    let before = slot.as_ref().map(|s| s.status.clone());
    let (phase, run) =
        crate::analysis::follow(cx, AnalysisKind::Guard, None, analysis, hash, &mut slot);
    if let Some(g) = cx.status.guard.as_mut() {
        g.analysis_run = slot;
    }
    let undecided = matches!(phase, AnalysisPhase::Inconclusive | AnalysisPhase::Error);
    if undecided && before.as_deref() != Some(phase.to_string().as_str()) {
        cx.event(
            EventReason::GuardAnalysisInconclusive,
            Msg::GuardAnalysisInconclusive {
                run: run.clone(),
                phase,
            },
        );
    }
    (phase, run)
}

/// The guard window, once per reconcile before the strategy runs: it ends at its time or
/// when another revision is released; inside it, a blamed alert or a failed guard analysis
/// makes the previous revision stable again and aborts the guarded release, whose strategy
/// then puts traffic back.
pub fn guard(cx: &mut Ctx<'_>, hash: &str) {
    let Some(g) = cx.status.guard.clone() else {
        return;
    };
    let policy = cx.alerts.clone();
    let over = cx.status.stable_rs.as_deref() != Some(g.revision.as_str())
        || hash != g.revision
        || cx.now >= g.until.0;
    let Some(policy) = policy.as_ref().filter(|_| !over) else {
        if cx.now >= g.until.0 && hash == g.revision {
            cx.event(
                EventReason::GuardPassed,
                Msg::GuardPassed {
                    hash: g.revision.clone(),
                    previous: g.previous.clone(),
                },
            );
        }
        // An unfinished guard analysis is no longer kept: the strategy terminates it.
        cx.status.guard = None;
        return;
    };
    // The previous revision is being scaled back up to take the traffic (it was shrunk during
    // the release): a rollback now would send production traffic to pods not ready yet. It
    // waits for the first ready pod (the ReplicaSet's change wakes the rollout).
    let returning = cx
        .observed
        .replica_set(&g.previous)
        .is_some_and(|rs| rs.replicas > 0 && rs.ready.min(rs.available) == 0);
    if returning {
        cx.wake_at(next_look(cx, g.until.0));
        return;
    }
    let started = g.release_started_at.as_ref().map(|t| t.0);
    if let Some(alert) = to_blame(cx, policy, &g.revision, &g.previous, started).cloned() {
        let msg = Msg::GuardRollback {
            alert: alert.clone(),
            hash: g.revision.clone(),
            previous: g.previous.clone(),
        };
        roll_back(cx, &g, AbortReason::AlertFiring, msg);
        cx.status.alert = Some(record(&alert, &g.revision));
        return;
    }
    if let Some(analysis) = &policy.guard_analysis {
        let (phase, run) = follow_analysis(cx, analysis, &g.revision);
        if phase == AnalysisPhase::Failed {
            let msg = Msg::GuardAnalysisRollback {
                run,
                hash: g.revision.clone(),
                previous: g.previous.clone(),
            };
            roll_back(cx, &g, AbortReason::GuardAnalysisFailed, msg);
            return;
        }
    }
    cx.wake_at(next_look(cx, g.until.0));
}

/// Makes the previous revision of the window `g` stable again and aborts the guarded release.
fn roll_back(cx: &mut Ctx<'_>, g: &GuardStatus, reason: AbortReason, msg: Msg) {
    let message = cx.text(&msg);
    cx.event(EventReason::RolloutAborted, msg);
    cx.status.stable_rs = Some(g.previous.clone());
    cx.status.guard = None;
    cx.release.promote_full = false;
    cx.release.abort = AbortState::Aborted(Aborted {
        reason,
        at: cx.now,
        message,
    });
}

/// The `AlertSource` condition: whether the alert source could be read at the last look (only
/// when it was asked).
pub fn report_source(cx: &mut Ctx<'_>) {
    if cx.alerts.is_none() {
        return;
    }
    let (status, reason, message) = match &cx.observed.alerts {
        ObservedAlerts::NotAsked => return,
        ObservedAlerts::Unknown(why) => (
            "False",
            ConditionReason::AlertSourceUnavailable,
            cx.text(&Msg::AlertSourceUnavailable { why: why.clone() }),
        ),
        ObservedAlerts::Firing(_) => ("True", ConditionReason::AlertSourceAvailable, String::new()),
    };
    let now = cx.now;
    crate::context::set_condition(
        &mut cx.status.conditions,
        ConditionType::AlertSource,
        status,
        reason,
        &message,
        now,
    );
}

/// Seconds the previous revision keeps its pods after a completion: the scale-down `delay`,
/// or the rest of the guard window when one is open and lasts longer.
pub fn kept_for(cx: &Ctx<'_>, delay: i64) -> i64 {
    cx.status.guard.as_ref().map_or(delay, |g| {
        delay.max(crate::time::secs_between(cx.now, g.until.0))
    })
}
