//! Virtual time that always moves on.
//!
//! Under tokio's paused clock, time advances only while every task is idle. A controller
//! that never goes idle (a reconcile that requeues at once, forever) would stop virtual time,
//! and a scenario would never reach its `duration`. The [`Ticker`] sleeps one virtual step at a
//! time; a watchdog thread notices when a step has not ended after [`STALL`] of real time and
//! moves the clock on by force. Each forced step is counted: it means something kept the
//! controller busy, which a scenario reports.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

/// Real time a virtual step may take before the clock is moved on by force.
pub const STALL: Duration = Duration::from_secs(5);

/// State shared with the watchdog thread.
#[derive(Default)]
struct Shared {
    /// Odd while a step is being slept, incremented on entering and on leaving it.
    beat: AtomicU64,
    /// The beat the watchdog found stalled (0: none).
    stalled: AtomicU64,
    wake: Notify,
    stop: AtomicBool,
}

/// Sleeps virtual steps; see the module documentation.
pub struct Ticker {
    shared: Arc<Shared>,
    forced: u32,
}

impl Ticker {
    /// Starts the watchdog thread (stopped when the ticker is dropped).
    pub fn start() -> Self {
        Self::with_stall(STALL)
    }

    fn with_stall(stall: Duration) -> Self {
        let shared = Arc::new(Shared::default());
        let watched = shared.clone();
        std::thread::spawn(move || {
            let poll = (stall / 5).max(Duration::from_millis(10));
            let mut last = (0u64, std::time::Instant::now());
            while !watched.stop.load(Ordering::Relaxed) {
                std::thread::sleep(poll);
                let beat = watched.beat.load(Ordering::Acquire);
                if beat != last.0 {
                    last = (beat, std::time::Instant::now());
                } else if beat % 2 == 1 && last.1.elapsed() >= stall {
                    watched.stalled.store(beat, Ordering::Release);
                    watched.wake.notify_one();
                    last.1 = std::time::Instant::now();
                }
            }
        });
        Self { shared, forced: 0 }
    }

    /// Sleeps `step` of virtual time; returns true when the clock had to be moved on by force.
    pub async fn sleep(&mut self, step: Duration) -> bool {
        let beat = self.shared.beat.fetch_add(1, Ordering::AcqRel) + 1;
        let tick = tokio::time::sleep(step);
        tokio::pin!(tick);
        let forced = loop {
            tokio::select! {
                () = &mut tick => break false,
                () = self.shared.wake.notified() => {
                    // A wake-up meant for an earlier step is ignored.
                    if self.shared.stalled.load(Ordering::Acquire) == beat {
                        tokio::time::advance(step).await;
                        break true;
                    }
                }
            }
        };
        self.shared.beat.fetch_add(1, Ordering::AcqRel);
        if forced {
            self.forced += 1;
        }
        forced
    }

    /// Steps whose clock was moved on by force so far.
    pub fn forced(&self) -> u32 {
        self.forced
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A task that never goes idle stops paused time; the ticker still gets through.
    #[tokio::test(start_paused = true)]
    async fn a_busy_runtime_does_not_stop_the_ticker() {
        let spinning = tokio::spawn(async {
            loop {
                tokio::task::yield_now().await;
            }
        });
        let mut ticker = Ticker::with_stall(Duration::from_millis(100));
        let start = tokio::time::Instant::now();
        for _ in 0..3 {
            ticker.sleep(Duration::from_secs(1)).await;
        }
        assert!(start.elapsed() >= Duration::from_secs(3));
        assert_eq!(ticker.forced(), 3);
        spinning.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_runtime_is_never_forced() {
        let mut ticker = Ticker::with_stall(Duration::from_millis(100));
        for _ in 0..50 {
            assert!(!ticker.sleep(Duration::from_secs(1)).await);
        }
        assert_eq!(ticker.forced(), 0);
    }
}
