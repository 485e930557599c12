//! Small time helpers over `jiff::Timestamp`.

use k8s_openapi::jiff::{SignedDuration, Timestamp};

/// `t + secs`, saturating at the end of time.
pub fn add_secs(t: Timestamp, secs: i64) -> Timestamp {
    t.checked_add(SignedDuration::from_secs(secs))
        .unwrap_or(Timestamp::MAX)
}

/// Whole seconds from `earlier` to `later` (negative when `later` is before `earlier`).
pub fn secs_between(earlier: Timestamp, later: Timestamp) -> i64 {
    later.duration_since(earlier).as_secs()
}
