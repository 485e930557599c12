//! A budget of Events per Rollout, so that no release can flood the API server with them.
//!
//! Each Rollout may publish a burst of [`BURST`] Normal Events, then one per
//! [`REFILL`] (a token bucket, as client-go's Event spam filter). Events beyond the budget
//! are not published but counted; the next Event published for that Rollout is preceded by
//! one `EventsThrottled` Event saying how many were left out. Warning Events (an abort, an
//! invalid spec, a missed deadline) are rare and always published. The status carries the
//! same facts as the Events, so nothing is lost.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;

/// Normal Events a Rollout may publish at once.
pub const BURST: u32 = 100;
/// Time for one more Event of budget.
pub const REFILL: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Timestamp,
    dropped: u64,
}

/// What to do with one Normal Event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Publish it; first publish a note that `dropped` Events were left out (when not 0).
    Publish {
        /// Events left out since the last one published.
        dropped: u64,
    },
    /// Over budget: leave it out.
    Drop,
}

/// Per-Rollout Event budgets, keyed by the Rollout's UID (or `namespace/name`).
#[derive(Debug, Default)]
pub struct EventBudget {
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl EventBudget {
    /// Takes one Event from the budget of `key` at `now`.
    pub fn take(&self, key: &str, now: Timestamp) -> Verdict {
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let b = buckets.entry(key.to_string()).or_insert(Bucket {
            tokens: f64::from(BURST),
            at: now,
            dropped: 0,
        });
        let elapsed = now.duration_since(b.at).as_secs_f64().max(0.0);
        b.tokens = (b.tokens + elapsed / REFILL.as_secs_f64()).min(f64::from(BURST));
        b.at = now;
        // A note about left-out Events costs a token too.
        let cost = if b.dropped > 0 { 2.0 } else { 1.0 };
        if b.tokens >= cost {
            b.tokens -= cost;
            let dropped = std::mem::take(&mut b.dropped);
            Verdict::Publish { dropped }
        } else {
            b.dropped += 1;
            Verdict::Drop
        }
    }

    /// Forgets the budget of a Rollout that is gone.
    pub fn forget(&self, key: &str) {
        self.buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + secs).expect("time")
    }

    #[test]
    fn a_burst_then_one_per_refill_and_a_count_of_what_was_left_out() {
        let budget = EventBudget::default();
        for _ in 0..BURST {
            assert_eq!(budget.take("r", at(0)), Verdict::Publish { dropped: 0 });
        }
        assert_eq!(budget.take("r", at(0)), Verdict::Drop);
        assert_eq!(budget.take("r", at(0)), Verdict::Drop);
        // Another rollout has its own budget.
        assert_eq!(budget.take("other", at(0)), Verdict::Publish { dropped: 0 });
        // Two seconds later: the note and the Event.
        assert_eq!(budget.take("r", at(2)), Verdict::Publish { dropped: 2 });
        assert_eq!(budget.take("r", at(2)), Verdict::Drop);
        assert_eq!(
            budget.take("r", at(3)),
            Verdict::Drop,
            "a note is due first"
        );
        assert_eq!(budget.take("r", at(4)), Verdict::Publish { dropped: 2 });
        // Quiet for long: the whole burst again, no more.
        let published = (0..2 * BURST)
            .filter(|_| matches!(budget.take("r", at(10_000)), Verdict::Publish { .. }))
            .count();
        assert_eq!(published, BURST as usize);
        budget.forget("r");
        assert_eq!(
            budget.take("r", at(10_000)),
            Verdict::Publish { dropped: 0 }
        );
    }

    #[test]
    fn twenty_thousand_events_in_a_minute_publish_a_bounded_number() {
        let budget = EventBudget::default();
        let published = (0..20_000i64)
            .filter(|i| {
                matches!(
                    budget.take("r", at(i * 60 / 20_000)),
                    Verdict::Publish { .. }
                )
            })
            .count();
        assert!(published <= BURST as usize + 60, "{published}");
        assert!(published >= BURST as usize, "{published}");
    }
}
