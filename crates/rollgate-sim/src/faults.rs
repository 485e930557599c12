//! Fault injection: the failures a real API server and the network in front of it produce,
//! injected by rate and scoped per verb, resource and client, from a seeded random source.
//!
//! A [`FaultPlan`] is a seed and a list of [`FaultRule`]s. For each request a client sends
//! (the cluster's own ReplicaSet controller and kubelet are never faulted), every rule that
//! applies to it draws one number from the plan's random source, in rule order; the rule fires
//! when the number is below its rate. So the same seed and the same order of requests inject
//! the same faults. Of the rules that fire, latencies add up, the shortest watch cut wins,
//! and the first rule whose fault replaces the answer (a conflict, a 429/500/503, a 410 on
//! resume, a lost response) decides it; the others are drawn but not applied or counted.
//!
//! Besides the plan, [`crate::SimCluster::set_unresponsive`] stops the server answering and
//! [`crate::SimCluster::kill_after_writes`] cuts a client off right after its k-th write.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};

/// What a request does, as RBAC names it (`DELETE` of a collection is [`Verb::Delete`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verb {
    /// `GET` of one object.
    Get,
    /// `GET` of a collection.
    List,
    /// `GET` of a collection with `watch=true`.
    Watch,
    /// `POST`.
    Create,
    /// `PUT`.
    Update,
    /// `PATCH` (server-side apply included).
    Patch,
    /// `DELETE` of one object or of a collection.
    Delete,
}

impl Verb {
    /// Whether the verb changes state.
    pub fn is_write(self) -> bool {
        matches!(
            self,
            Verb::Create | Verb::Update | Verb::Patch | Verb::Delete
        )
    }
}

/// One kind of failure, as a real API server or network produces it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fault {
    /// A write is answered 409 Conflict (reason `Conflict`) and not handled, as when the
    /// object changed since the client read it. Writes only.
    Conflict,
    /// The request is answered 429 (reason `TooManyRequests`) with a `Retry-After` header
    /// (whole seconds, rounded up) and `details.retryAfterSeconds`, and not handled.
    TooManyRequests {
        /// How long the server asks the client to wait.
        retry_after: Duration,
    },
    /// The request is answered 500 (reason `InternalError`) and not handled.
    InternalError,
    /// The request is answered 503 (reason `ServiceUnavailable`) and not handled.
    Unavailable,
    /// The request is answered this long later (tokio time: virtual under a paused clock),
    /// and handled normally.
    Latency(Duration),
    /// A watch stream ends cleanly this long after it starts, as when a connection drops; the
    /// client must watch again. Watches only.
    CutWatch {
        /// How long the stream lasts.
        after: Duration,
    },
    /// A watch or list asking for a `resourceVersion` above 0 gets 410 Gone (reason
    /// `Expired`), as when the history was compacted; the client must list again. A watch
    /// gets it as an `ERROR` event, as a real server sends it.
    GoneOnResume,
    /// A write is handled (and audited with its real code) but its answer is lost: the client
    /// gets 504 (reason `Timeout`) instead. Writes only.
    LostResponse,
}

impl Fault {
    /// Whether the fault can happen to a request with this verb (`resumes`: it asks for a
    /// `resourceVersion` above 0).
    fn applies_to(&self, verb: Verb, resumes: bool) -> bool {
        match self {
            Fault::Conflict | Fault::LostResponse => verb.is_write(),
            Fault::CutWatch { .. } => verb == Verb::Watch,
            Fault::GoneOnResume => resumes && matches!(verb, Verb::Watch | Verb::List),
            Fault::TooManyRequests { .. }
            | Fault::InternalError
            | Fault::Unavailable
            | Fault::Latency(_) => true,
        }
    }
}

/// When a fault is injected: at `rate`, into the requests that match every non-empty scope.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultRule {
    /// The fault.
    pub fault: Fault,
    /// The share of matching requests that get it, from 0 (never) to 1 (always).
    pub rate: f64,
    /// The verbs it applies to (empty: all the verbs the fault can happen to).
    pub verbs: Vec<Verb>,
    /// The resources it applies to, by plural name: `rollouts` (with its subresources) or
    /// `rollouts/status` (that subresource only). Empty: all.
    pub resources: Vec<String>,
    /// The clients it applies to, by `User-Agent` (see [`crate::SimCluster::client_as`]).
    /// Empty: all, including clients without one.
    pub agents: Vec<String>,
}

impl FaultRule {
    /// `fault` at `rate` for every request it can happen to.
    pub fn new(fault: Fault, rate: f64) -> Self {
        Self {
            fault,
            rate,
            verbs: Vec::new(),
            resources: Vec::new(),
            agents: Vec::new(),
        }
    }

    /// Restricted to these verbs.
    #[must_use]
    pub fn verbs(mut self, verbs: impl IntoIterator<Item = Verb>) -> Self {
        self.verbs = verbs.into_iter().collect();
        self
    }

    /// Restricted to these resources (plural names, optionally `/subresource`).
    #[must_use]
    pub fn resources<S: Into<String>>(mut self, resources: impl IntoIterator<Item = S>) -> Self {
        self.resources = resources.into_iter().map(Into::into).collect();
        self
    }

    /// Restricted to the clients with these `User-Agent`s.
    #[must_use]
    pub fn agents<S: Into<String>>(mut self, agents: impl IntoIterator<Item = S>) -> Self {
        self.agents = agents.into_iter().map(Into::into).collect();
        self
    }

    fn matches(&self, req: &RequestFacts<'_>) -> bool {
        self.fault.applies_to(req.verb, req.resumes)
            && (self.verbs.is_empty() || self.verbs.contains(&req.verb))
            && (self.resources.is_empty()
                || self.resources.iter().any(|r| match r.split_once('/') {
                    Some((plural, sub)) => plural == req.resource && Some(sub) == req.subresource,
                    None => r == req.resource,
                }))
            && (self.agents.is_empty()
                || req
                    .agent
                    .is_some_and(|a| self.agents.iter().any(|x| x == a)))
    }
}

/// The faults a cluster injects: a seed for the random draws and the rules.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultPlan {
    /// Seed of the random source the rules draw from.
    pub seed: u64,
    /// The rules, drawn in this order for each request.
    pub rules: Vec<FaultRule>,
}

impl FaultPlan {
    /// A plan without rules.
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            rules: Vec::new(),
        }
    }

    /// The plan with one more rule.
    #[must_use]
    pub fn rule(mut self, rule: FaultRule) -> Self {
        self.rules.push(rule);
        self
    }

    /// Checks that every rate is a number from 0 to 1.
    pub fn validate(&self) -> Result<(), FaultPlanError> {
        match self
            .rules
            .iter()
            .position(|r| !(0.0..=1.0).contains(&r.rate))
        {
            Some(index) => Err(FaultPlanError::Rate {
                index,
                rate: self.rules[index].rate,
            }),
            None => Ok(()),
        }
    }
}

/// Why a [`FaultPlan`] was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FaultPlanError {
    /// A rate outside 0..=1 (or not a number).
    #[error("rules[{index}].rate: expected a number from 0 to 1, got {rate}")]
    Rate {
        /// Index of the rule.
        index: usize,
        /// The rate given.
        rate: f64,
    },
}

/// How many times each fault was injected (see [`crate::SimCluster::fault_counts`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultCounts {
    /// [`Fault::Conflict`] answers.
    pub conflict: u64,
    /// [`Fault::TooManyRequests`] answers.
    pub too_many_requests: u64,
    /// [`Fault::InternalError`] answers.
    pub internal_error: u64,
    /// [`Fault::Unavailable`] answers.
    pub unavailable: u64,
    /// Requests delayed by [`Fault::Latency`].
    pub latency: u64,
    /// Watch streams ended by [`Fault::CutWatch`] (counted when the stream is cut).
    pub cut_watch: u64,
    /// [`Fault::GoneOnResume`] answers.
    pub gone_on_resume: u64,
    /// Writes whose answer was lost ([`Fault::LostResponse`]).
    pub lost_response: u64,
}

impl FaultCounts {
    /// How many times `fault` (any parameters) was injected.
    pub fn of(&self, fault: &Fault) -> u64 {
        match fault {
            Fault::Conflict => self.conflict,
            Fault::TooManyRequests { .. } => self.too_many_requests,
            Fault::InternalError => self.internal_error,
            Fault::Unavailable => self.unavailable,
            Fault::Latency(_) => self.latency,
            Fault::CutWatch { .. } => self.cut_watch,
            Fault::GoneOnResume => self.gone_on_resume,
            Fault::LostResponse => self.lost_response,
        }
    }

    /// All faults injected.
    pub fn total(&self) -> u64 {
        self.conflict
            + self.too_many_requests
            + self.internal_error
            + self.unavailable
            + self.latency
            + self.cut_watch
            + self.gone_on_resume
            + self.lost_response
    }

    fn add(&mut self, fault: &Fault) {
        let slot = match fault {
            Fault::Conflict => &mut self.conflict,
            Fault::TooManyRequests { .. } => &mut self.too_many_requests,
            Fault::InternalError => &mut self.internal_error,
            Fault::Unavailable => &mut self.unavailable,
            Fault::Latency(_) => &mut self.latency,
            Fault::CutWatch { .. } => &mut self.cut_watch,
            Fault::GoneOnResume => &mut self.gone_on_resume,
            Fault::LostResponse => &mut self.lost_response,
        };
        *slot += 1;
    }
}

/// What the rules see of a request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RequestFacts<'a> {
    pub verb: Verb,
    /// Plural name of the resource.
    pub resource: &'a str,
    /// `status` or `scale`, when the request addresses one.
    pub subresource: Option<&'a str>,
    /// Whether it asks for a `resourceVersion` above 0.
    pub resumes: bool,
    /// The client's `User-Agent`.
    pub agent: Option<&'a str>,
}

/// The faults drawn for one request.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Drawn {
    /// How long to wait before answering.
    pub latency: Duration,
    /// When to end the watch stream, if it is to be cut.
    pub cut_watch: Option<Duration>,
    /// The fault that replaces the answer, if any.
    pub answer: Option<Fault>,
}

/// The plan in force, its random source and what it injected.
pub(crate) struct Injector {
    plan: Option<FaultPlan>,
    rng: Xoshiro256PlusPlus,
    counts: FaultCounts,
}

impl Default for Injector {
    fn default() -> Self {
        Self {
            plan: None,
            rng: Xoshiro256PlusPlus::seed_from_u64(0),
            counts: FaultCounts::default(),
        }
    }
}

impl Injector {
    /// Puts `plan` in force with a fresh random source and fresh counts.
    pub fn set(&mut self, plan: FaultPlan) {
        self.rng = Xoshiro256PlusPlus::seed_from_u64(plan.seed);
        self.plan = Some(plan);
        self.counts = FaultCounts::default();
    }

    /// Stops injecting (the counts stay).
    pub fn clear(&mut self) {
        self.plan = None;
    }

    /// Whether a plan is in force.
    pub fn active(&self) -> bool {
        self.plan.as_ref().is_some_and(|p| !p.rules.is_empty())
    }

    /// Draws the faults for one request and counts the latency and the answer it gets (a
    /// watch cut is counted when it happens: [`Injector::count`]).
    pub fn draw(&mut self, req: &RequestFacts<'_>) -> Drawn {
        let mut drawn = Drawn::default();
        let Some(plan) = &self.plan else {
            return drawn;
        };
        for rule in plan.rules.iter().filter(|r| r.matches(req)) {
            let fires = self.rng.random::<f64>() < rule.rate;
            if !fires {
                continue;
            }
            match rule.fault {
                Fault::Latency(d) => drawn.latency = drawn.latency.saturating_add(d),
                Fault::CutWatch { after } => {
                    drawn.cut_watch = Some(drawn.cut_watch.map_or(after, |c| c.min(after)));
                }
                fault => {
                    if drawn.answer.is_none() {
                        drawn.answer = Some(fault);
                    }
                }
            }
        }
        if !drawn.latency.is_zero() {
            self.counts.add(&Fault::Latency(drawn.latency));
        }
        if let Some(fault) = &drawn.answer {
            self.counts.add(fault);
        }
        drawn
    }

    /// Counts one injected fault.
    pub fn count(&mut self, fault: &Fault) {
        self.counts.add(fault);
    }

    /// What was injected since the plan was set.
    pub fn counts(&self) -> FaultCounts {
        self.counts
    }
}

/// Successful writes per client, and the clients to cut off after so many.
#[derive(Debug, Default)]
pub(crate) struct WriteBook {
    /// Successful (code < 400) mutating requests per `User-Agent`.
    pub writes: HashMap<String, u64>,
    /// `User-Agent` -> the write count after which it is cut off.
    pub kill_at: HashMap<String, u64>,
    /// Clients cut off by [`crate::SimCluster::kill_after_writes`]: their watches end too.
    pub killed: HashSet<String>,
}

impl WriteBook {
    /// Records a successful write by `agent`; true when that write used up its budget (the
    /// caller cuts it off while still holding the book).
    pub fn record(&mut self, agent: &str) -> bool {
        let n = self.writes.entry(agent.to_string()).or_insert(0);
        *n += 1;
        let n = *n;
        if self.kill_at.get(agent).is_some_and(|k| n >= *k) {
            self.kill_at.remove(agent);
            self.killed.insert(agent.to_string());
            return true;
        }
        false
    }
}

/// What every open request and watch stream follows: whether the server answers, and a
/// counter bumped whenever a client is killed (so its open watches look).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct NetState {
    pub unresponsive: bool,
    pub epoch: u64,
}

/// `d` in whole seconds, rounded up (a `Retry-After` header).
pub(crate) fn whole_seconds(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(verb: Verb) -> RequestFacts<'static> {
        RequestFacts {
            verb,
            resource: "rollouts",
            subresource: None,
            resumes: false,
            agent: Some("ctl"),
        }
    }

    #[test]
    fn a_rate_outside_zero_to_one_names_the_rule() {
        let plan = FaultPlan::new(1)
            .rule(FaultRule::new(Fault::Conflict, 0.5))
            .rule(FaultRule::new(Fault::InternalError, 1.5));
        let err = plan.validate().expect_err("1.5 is refused");
        assert_eq!(
            err.to_string(),
            "rules[1].rate: expected a number from 0 to 1, got 1.5"
        );
        let nan = FaultPlan::new(1).rule(FaultRule::new(Fault::Conflict, f64::NAN));
        assert!(nan.validate().is_err());
    }

    #[test]
    fn scopes_select_the_requests_a_rule_applies_to() {
        let rule = FaultRule::new(Fault::Conflict, 1.0)
            .resources(["rollouts/status"])
            .agents(["ctl"]);
        let mut status = facts(Verb::Update);
        assert!(!rule.matches(&status), "main resource is not the status");
        status.subresource = Some("status");
        assert!(rule.matches(&status));
        assert!(!rule.matches(&RequestFacts {
            agent: None,
            ..status
        }));
        assert!(
            !FaultRule::new(Fault::Conflict, 1.0).matches(&facts(Verb::Get)),
            "a conflict never answers a read"
        );
        assert!(
            !FaultRule::new(Fault::GoneOnResume, 1.0).matches(&facts(Verb::Watch)),
            "no 410 for a watch from the current state"
        );
    }

    #[test]
    fn the_first_answer_wins_and_latencies_add_up() {
        let mut inj = Injector::default();
        inj.set(
            FaultPlan::new(7)
                .rule(FaultRule::new(Fault::Latency(Duration::from_secs(1)), 1.0))
                .rule(FaultRule::new(Fault::Unavailable, 1.0))
                .rule(FaultRule::new(Fault::Latency(Duration::from_secs(2)), 1.0))
                .rule(FaultRule::new(Fault::InternalError, 1.0)),
        );
        let d = inj.draw(&facts(Verb::Get));
        assert_eq!(d.latency, Duration::from_secs(3));
        assert_eq!(d.answer, Some(Fault::Unavailable));
        let c = inj.counts();
        assert_eq!((c.latency, c.unavailable, c.internal_error), (1, 1, 0));
    }

    #[test]
    fn whole_seconds_round_up() {
        assert_eq!(whole_seconds(Duration::from_millis(1500)), 2);
        assert_eq!(whole_seconds(Duration::from_secs(3)), 3);
        assert_eq!(whole_seconds(Duration::ZERO), 0);
    }
}
