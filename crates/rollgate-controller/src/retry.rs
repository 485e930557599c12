//! When to try an object again after a failed reconcile: per-object exponential backoff with
//! jitter (`backon`), reset by the object's next successful reconcile, and never sooner than
//! the server asked for (`Retry-After` of a 429, carried in the Status as
//! `details.retryAfterSeconds`).
//!
//! Each object has its own sequence, so one Rollout whose writes keep failing backs off
//! without slowing the others; the jitter (seeded by the object's key, so a run under virtual
//! time stays reproducible) keeps many objects failing together from retrying in lockstep.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Mutex;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};

use crate::error::Error;

/// The first retry comes after this (plus jitter of up to as much again).
pub const FIRST_RETRY: Duration = Duration::from_millis(200);

/// Retries stop growing at this (plus jitter of up to as much again).
pub const LONGEST_RETRY: Duration = Duration::from_secs(60);

/// Retry delays of the objects whose last reconcile failed.
#[derive(Debug)]
pub struct Retries {
    builder: ExponentialBuilder,
    failing: Mutex<HashMap<String, ExponentialBackoff>>,
}

impl Default for Retries {
    fn default() -> Self {
        Self::new(FIRST_RETRY, LONGEST_RETRY)
    }
}

impl Retries {
    /// Delays that start at `first` and double up to `longest`, each with jitter of up to as
    /// much again.
    pub fn new(first: Duration, longest: Duration) -> Self {
        Self {
            builder: ExponentialBuilder::default()
                .with_min_delay(first)
                .with_max_delay(longest)
                .with_factor(2.0)
                .with_jitter()
                .without_max_times(),
            failing: Mutex::default(),
        }
    }

    /// The reconcile of `key` failed with `error`: how long to wait before the next one.
    pub fn failed(&self, key: &str, error: &Error) -> Duration {
        let mut failing = self.failing.lock().unwrap_or_else(|p| p.into_inner());
        let backoff = failing.entry(key.to_string()).or_insert_with(|| {
            let mut h = DefaultHasher::new();
            key.hash(&mut h);
            self.builder.with_jitter_seed(h.finish()).build()
        });
        let delay = backoff.next().unwrap_or(LONGEST_RETRY);
        error.retry_after().map_or(delay, |asked| delay.max(asked))
    }

    /// The reconcile of `key` succeeded (or the object is gone): its next failure starts the
    /// sequence again.
    pub fn succeeded(&self, key: &str) {
        let mut failing = self.failing.lock().unwrap_or_else(|p| p.into_inner());
        if !failing.is_empty() {
            failing.remove(key);
        }
    }

    /// How many objects are backing off now.
    pub fn failing(&self) -> usize {
        self.failing.lock().map(|f| f.len()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api_error(code: u16, retry_after: Option<u32>) -> Error {
        let mut status = kube::core::Status::failure("refused", "TooManyRequests").with_code(code);
        if let Some(secs) = retry_after {
            status.details =
                serde_json::from_value(serde_json::json!({"retryAfterSeconds": secs})).ok();
            assert!(status.details.is_some());
        }
        Error::kube("writing", kube::Error::Api(Box::new(status)))
    }

    #[test]
    fn delays_grow_per_object_with_jitter_and_reset_on_success() {
        let r = Retries::default();
        let e = api_error(500, None);
        let mut last = Duration::ZERO;
        let mut delays = Vec::new();
        for _ in 0..12 {
            let d = r.failed("ns/a", &e);
            delays.push(d);
            last = d;
        }
        // Each delay lies in [base, 2 * base) with base = 200 ms * 2^n, capped at 60 s.
        for (n, d) in delays.iter().enumerate() {
            let base = FIRST_RETRY
                .saturating_mul(1 << n.min(20))
                .min(LONGEST_RETRY);
            assert!(
                *d >= base && *d <= base * 2,
                "retry {n}: {d:?} not in [{base:?}, 2x]"
            );
        }
        assert!(last >= LONGEST_RETRY);
        // Another object starts at the beginning.
        assert!(r.failed("ns/b", &e) <= FIRST_RETRY * 2);
        assert_eq!(r.failing(), 2);
        r.succeeded("ns/a");
        assert!(r.failed("ns/a", &e) <= FIRST_RETRY * 2);
    }

    #[test]
    fn the_same_key_gets_the_same_delays() {
        let e = api_error(503, None);
        let (a, b) = (Retries::default(), Retries::default());
        let first: Vec<_> = (0..6).map(|_| a.failed("ns/web", &e)).collect();
        let second: Vec<_> = (0..6).map(|_| b.failed("ns/web", &e)).collect();
        assert_eq!(first, second);
        // Jitter: not exactly the base delays.
        assert!(
            first
                .iter()
                .enumerate()
                .any(|(n, d)| *d != FIRST_RETRY * (1 << n))
        );
    }

    #[test]
    fn a_servers_retry_after_is_a_floor() {
        let r = Retries::default();
        let d = r.failed("ns/a", &api_error(429, Some(7)));
        assert!(d >= Duration::from_secs(7), "{d:?}");
        // Later, longer backoffs are not shortened by a smaller Retry-After.
        for _ in 0..10 {
            r.failed("ns/a", &api_error(500, None));
        }
        assert!(r.failed("ns/a", &api_error(429, Some(1))) >= LONGEST_RETRY);
    }
}
