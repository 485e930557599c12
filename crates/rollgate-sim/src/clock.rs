//! Virtual-time-friendly wall clock.

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use tokio::time::Instant;

/// `base + (tokio now - start)`: real time normally, virtual time under a paused tokio clock.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    base: Timestamp,
    start: Instant,
}

impl Clock {
    /// A clock reading `base` now.
    pub fn new(base: Timestamp) -> Self {
        Self {
            base,
            start: Instant::now(),
        }
    }

    /// The current time.
    pub fn now(&self) -> Timestamp {
        let elapsed = SignedDuration::try_from(self.start.elapsed()).unwrap_or(SignedDuration::MAX);
        self.base.checked_add(elapsed).unwrap_or(Timestamp::MAX)
    }

    /// The current time as a Kubernetes `Time` string (RFC 3339, seconds).
    pub fn stamp(&self) -> String {
        self.now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
    }
}
