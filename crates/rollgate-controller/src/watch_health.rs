//! Whether the controller's watches work, for `/readyz`.
//!
//! Every watch of a running controller registers here ([`Watches::register`]) and reports the
//! watcher's events ([`WatchHealth::saw`]). The controller is ready only once each of them has
//! completed its initial list, and not while one keeps failing. kube's watcher retries a
//! failed request with a backoff of at most 30 s (plus jitter), and a watch that resumes
//! successfully reports nothing until an object changes: a watch counts as failing from an
//! error until an event arrives or [`FAILING_FOR`] passes without another error.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::runtime::watcher;
use tokio::time::Instant;

/// How long after its last error a watch that reported nothing since still counts as failing.
/// Longer than the watcher's longest retry delay (30 s, doubled by jitter) plus a request's
/// connect timeout, so a watch that keeps failing never looks healthy in between.
pub const FAILING_FOR: Duration = Duration::from_secs(120);

/// The watches of the running controllers.
#[derive(Debug, Default)]
pub struct Watches {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    next: u64,
    streams: BTreeMap<u64, Stream>,
}

#[derive(Debug)]
struct Stream {
    name: &'static str,
    listed: bool,
    last_error: Option<Instant>,
}

impl Watches {
    /// Registers a watch called `name` (not listed yet) until the returned handle is dropped.
    pub fn register(self: &Arc<Self>, name: &'static str) -> WatchHealth {
        let id = self.update(|inner| {
            inner.next += 1;
            inner.streams.insert(
                inner.next,
                Stream {
                    name,
                    listed: false,
                    last_error: None,
                },
            );
            inner.next
        });
        WatchHealth {
            watches: self.clone(),
            id,
        }
    }

    /// Names of the registered watches that have not listed their objects yet or are failing,
    /// sorted (empty: every watch works, or none runs).
    pub fn unready(&self) -> Vec<&'static str> {
        let now = Instant::now();
        let mut names: Vec<&'static str> = self.update(|inner| {
            inner
                .streams
                .values()
                .filter(|s| {
                    !s.listed
                        || s.last_error
                            .is_some_and(|t| now.duration_since(t) < FAILING_FOR)
                })
                .map(|s| s.name)
                .collect()
        });
        names.sort_unstable();
        names.dedup();
        names
    }

    fn update<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut inner)
    }
}

/// One registered watch; unregisters it when dropped.
#[derive(Debug)]
pub struct WatchHealth {
    watches: Arc<Watches>,
    id: u64,
}

impl WatchHealth {
    /// Records one item of the watcher's stream.
    pub fn saw<K>(&self, event: &Result<watcher::Event<K>, watcher::Error>) {
        let now = Instant::now();
        self.watches.update(|inner| {
            let Some(s) = inner.streams.get_mut(&self.id) else {
                return;
            };
            match event {
                // A (re)list starts: nothing is known yet about how it goes.
                Ok(watcher::Event::Init) => {}
                Ok(watcher::Event::InitDone) => {
                    s.listed = true;
                    s.last_error = None;
                }
                Ok(_) => s.last_error = None,
                Err(_) => s.last_error = Some(now),
            }
        });
    }
}

impl Drop for WatchHealth {
    fn drop(&mut self) {
        self.watches.update(|inner| inner.streams.remove(&self.id));
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::Service;

    use super::*;

    type Item = Result<watcher::Event<Service>, watcher::Error>;

    fn failed() -> Item {
        Err(watcher::Error::NoResourceVersion)
    }

    fn ok(event: watcher::Event<Service>) -> Item {
        Ok(event)
    }

    #[tokio::test(start_paused = true)]
    async fn ready_once_listed_not_while_failing_and_not_after_unregistering() {
        let watches = Arc::new(Watches::default());
        assert!(watches.unready().is_empty(), "nothing runs");
        let services = watches.register("services");
        let rollouts = watches.register("rollouts");
        assert_eq!(watches.unready(), ["rollouts", "services"]);
        services.saw(&ok(watcher::Event::Init));
        services.saw(&failed());
        assert_eq!(watches.unready(), ["rollouts", "services"]);
        services.saw(&ok(watcher::Event::Init));
        services.saw(&ok(watcher::Event::InitApply(Service::default())));
        services.saw(&ok(watcher::Event::InitDone));
        assert_eq!(watches.unready(), ["rollouts"]);
        rollouts.saw(&ok(watcher::Event::InitDone));
        assert!(watches.unready().is_empty());

        // A watch that keeps failing is not ready; an event shows it works again.
        rollouts.saw(&failed());
        assert_eq!(watches.unready(), ["rollouts"]);
        tokio::time::advance(Duration::from_secs(30)).await;
        rollouts.saw(&failed());
        tokio::time::advance(FAILING_FOR - Duration::from_secs(1)).await;
        assert_eq!(watches.unready(), ["rollouts"]);
        rollouts.saw(&ok(watcher::Event::Apply(Service::default())));
        assert!(watches.unready().is_empty());

        // A watch resumed without any event since its last error is taken to work once the
        // watcher would have failed again.
        services.saw(&failed());
        tokio::time::advance(FAILING_FOR).await;
        assert!(watches.unready().is_empty());

        drop(services);
        let fresh = watches.register("services");
        assert_eq!(watches.unready(), ["services"]);
        drop(fresh);
        drop(rollouts);
        assert!(watches.unready().is_empty());
    }
}
