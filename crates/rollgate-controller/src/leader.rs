//! Leader election: several controller replicas, one reconciling.
//!
//! The replicas compete for a `coordination.k8s.io/v1` Lease through `kube-lease-manager`,
//! which acquires it and renews it `grace` seconds before it expires. Only the holder runs
//! the controllers of [`crate::run`].
//!
//! # Stepping down in time
//!
//! Another replica may take the Lease once `renewTime + leaseDurationSeconds` has passed. The
//! holder writes `renewTime` from its own clock, so it knows, on that same clock, when its
//! claim ends. `kube-lease-manager` keeps reporting "leader" while its renewals fail (it
//! retries with back-off), so this module does not rely on it to step down: it reads the
//! Lease itself every `grace / 4` and keeps a local deadline, `renewTime + duration - grace/2`,
//! that only a successful read showing a fresh renewal by this identity extends. At the
//! deadline the controller task is aborted at once, without waiting for any API answer, so
//! it has stopped before another replica can acquire the Lease. (A request already on the
//! wire when the task is aborted may still reach the server; clock rates, not offsets,
//! matter across replicas, as with Kubernetes' own leader election.)
//!
//! After stepping down the replica is a candidate again: when a later renewal succeeds, or
//! the Lease is won again, its controller starts afresh.
//!
//! # Shutdown and hand-over
//!
//! On shutdown the holder stops its controller gracefully (reconciles in flight finish, but
//! not past its own claim deadline) and releases the Lease (clears `holderIdentity`).
//! `kube-lease-manager` makes a candidate sleep until the claim it last saw would have ended,
//! so it would not notice the release; this module's own reads of the Lease do: a candidate
//! that reads a Lease without holder starts a fresh manager, which takes the Lease at once.
//! A non-leader reports ready on `/readyz` (it is healthy and waiting); the
//! `rollgate_leader` gauge tells which replica leads.

use std::future::Future;
use std::time::{Duration, SystemTime};

use k8s_openapi::api::coordination::v1::Lease;
use kube::{Api, Client};
use kube_lease_manager::{LeaseManager, LeaseManagerBuilder, LeaseManagerError};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{info, warn};

use crate::error::Error;
use crate::run::{Config, run};

/// Leader election settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderSettings {
    /// Name of the Lease.
    pub lease_name: String,
    /// Namespace of the Lease.
    pub namespace: String,
    /// This replica's identity (unique among the replicas; the pod name).
    pub identity: String,
    /// Seconds a claim lasts after its last renewal (`leaseDurationSeconds`).
    pub duration_secs: u64,
    /// Seconds before the end of a claim at which the holder renews it.
    pub grace_secs: u64,
}

impl LeaderSettings {
    /// Default settings for `identity`: Lease `rollgate-controller` in `namespace`, 15 s
    /// claims renewed 5 s before they end.
    pub fn new(identity: impl Into<String>, namespace: impl Into<String>) -> Self {
        Self {
            lease_name: "rollgate-controller".into(),
            namespace: namespace.into(),
            identity: identity.into(),
            duration_secs: 15,
            grace_secs: 5,
        }
    }

    /// How long before the end of a claim the holder stops reconciling: half the grace.
    fn margin(&self) -> Duration {
        Duration::from_millis(self.grace_secs * 500)
    }

    /// How often the holder reads the Lease.
    fn check_every(&self) -> Duration {
        Duration::from_millis(self.grace_secs * 250)
            .clamp(Duration::from_millis(100), Duration::from_secs(1))
    }
}

/// Aborts a task when dropped: the controller and the lease renewals die with their owner
/// (a crash must not leave a headless controller running or a Lease renewed).
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A running controller and the switch that stops it gracefully.
struct Running {
    stop: oneshot::Sender<()>,
    task: AbortOnDrop<Result<(), Error>>,
}

/// Runs the controllers of [`crate::run`] only while this replica holds the Lease, until
/// `shutdown` completes; then releases the Lease.
pub async fn run_elected(
    client: Client,
    config: Config,
    settings: LeaderSettings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let (mut state, mut renewals) = start_manager(&client, &settings).await?;
    let mut manager_started = Instant::now();
    let leases = Api::<Lease>::namespaced(client.clone(), &settings.namespace);
    let telemetry = config.telemetry.clone();
    telemetry.set_ready(true);
    telemetry.set_leader(false);
    let mut valid_until: Option<Instant> = None;
    let mut running: Option<Running> = None;
    let mut check = tokio::time::interval(settings.check_every());
    tokio::pin!(shutdown);
    let far = || Instant::now() + Duration::from_secs(3600);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            () = tokio::time::sleep_until(valid_until.unwrap_or_else(far)) => {
                valid_until = None;
            }
            changed = state.changed() => {
                if changed.is_err() {
                    drop(running.take());
                    telemetry.set_leader(false);
                    return Err(Error::Lease("the Lease manager stopped".into()));
                }
                if !*state.borrow_and_update() {
                    valid_until = None;
                }
                check.reset_immediately();
            }
            _ = check.tick() => {
                match leases.get_opt(&settings.lease_name).await {
                    Ok(lease) => {
                        valid_until = claim_end(lease.as_ref(), &settings);
                        // Released by its last holder: compete now, not when that holder's
                        // claim would have ended (at most once a second).
                        if running.is_none()
                            && is_free(lease.as_ref())
                            && manager_started.elapsed() >= Duration::from_secs(1)
                        {
                            info!(identity = %settings.identity,
                                "the leader Lease is free: trying to take it");
                            let (fresh_state, fresh_renewals) =
                                start_manager(&client, &settings).await?;
                            // The old manager holds no claim. Abort it before its channel
                            // closes, which would make it write a release.
                            renewals.0.abort();
                            (state, renewals) = (fresh_state, fresh_renewals);
                            manager_started = Instant::now();
                        }
                    }
                    // Unknown: the deadline stands and is not extended.
                    Err(e) => warn!(error = %e, "reading the leader Lease failed"),
                }
            }
        }
        let leading = valid_until.is_some_and(|t| Instant::now() < t);
        match (leading, running.is_some()) {
            (true, false) => {
                info!(identity = %settings.identity, "leading: starting the controller");
                telemetry.set_leader(true);
                let (stop, stopped) = oneshot::channel::<()>();
                let task = tokio::spawn(run(client.clone(), config.clone(), async move {
                    let _ = stopped.await;
                }));
                running = Some(Running {
                    stop,
                    task: AbortOnDrop(task),
                });
            }
            (false, true) => {
                warn!(identity = %settings.identity,
                    "no confirmed claim on the leader Lease: controller stopped");
                // Dropping aborts the task now; no graceful drain past the claim.
                drop(running.take());
                telemetry.set_leader(false);
                telemetry.set_ready(true);
            }
            _ => {}
        }
    }
    // Shutdown: stop reconciling, then let the renewals release the Lease.
    if let Some(Running { stop, mut task }) = running.take() {
        let _ = stop.send(());
        // Reconciles in flight finish, but not past this replica's claim: after it another
        // replica may lead. (`running` implies a claim; none would mean stop now.)
        let claim = valid_until.unwrap_or_else(Instant::now);
        if !crate::telemetry::drain(&mut task.0, &telemetry, claim).await {
            warn!("the claim ended before the reconciles in flight did: aborted");
        }
    }
    telemetry.set_leader(false);
    drop(state);
    let mut renewals = renewals;
    match (&mut renewals.0).await {
        Ok(Ok(_)) => info!(identity = %settings.identity, "leader Lease released"),
        Ok(Err(e)) => warn!(error = %e, "releasing the leader Lease failed"),
        Err(e) => warn!(error = %e, "the Lease manager task failed"),
    }
    Ok(())
}

/// The receiving end of a Lease manager's state and its task.
type Manager = (
    watch::Receiver<bool>,
    AbortOnDrop<Result<LeaseManager, LeaseManagerError>>,
);

/// Starts a Lease manager: it takes the Lease when it is free (creating it if missing) and
/// renews it while held; closing its channel releases it.
async fn start_manager(client: &Client, settings: &LeaderSettings) -> Result<Manager, Error> {
    let manager = LeaseManagerBuilder::new(client.clone(), &settings.lease_name)
        .with_namespace(&settings.namespace)
        .with_identity(&settings.identity)
        .with_duration(settings.duration_secs)
        .with_grace(settings.grace_secs)
        .build()
        .await
        .map_err(|e| {
            Error::Lease(format!(
                "Lease {}/{}: {e}",
                settings.namespace, settings.lease_name
            ))
        })?;
    let (state, renewals) = manager.watch().await;
    Ok((state, AbortOnDrop(renewals)))
}

/// Whether the Lease exists and nobody holds it (its holder released it).
fn is_free(lease: Option<&Lease>) -> bool {
    lease.is_some_and(|l| {
        l.spec
            .as_ref()
            .and_then(|s| s.holder_identity.as_deref())
            .is_none_or(str::is_empty)
    })
}

/// When this replica's claim ends, as an instant on its clock, minus the margin; `None` when
/// it holds no claim.
fn claim_end(lease: Option<&Lease>, settings: &LeaderSettings) -> Option<Instant> {
    let spec = lease?.spec.as_ref()?;
    if spec.holder_identity.as_deref() != Some(settings.identity.as_str()) {
        return None;
    }
    let renewed: SystemTime = spec.renew_time.as_ref()?.0.into();
    let secs = spec
        .lease_duration_seconds
        .and_then(|d| u64::try_from(d).ok())
        .unwrap_or(settings.duration_secs);
    let end = renewed + Duration::from_secs(secs);
    let left = end
        .duration_since(SystemTime::now())
        .unwrap_or_default()
        .saturating_sub(settings.margin());
    (!left.is_zero()).then(|| Instant::now() + left)
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::coordination::v1::LeaseSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
    use k8s_openapi::jiff::Timestamp;

    use super::*;

    fn lease(holder: &str, renewed_secs_ago: i64, duration: i32) -> Lease {
        let renewed =
            Timestamp::now() - k8s_openapi::jiff::SignedDuration::from_secs(renewed_secs_ago);
        Lease {
            spec: Some(LeaseSpec {
                holder_identity: Some(holder.into()),
                renew_time: Some(MicroTime(renewed)),
                lease_duration_seconds: Some(duration),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_claim_ends_half_a_grace_before_the_lease_expires() {
        let s = LeaderSettings {
            duration_secs: 15,
            grace_secs: 4,
            ..LeaderSettings::new("a", "default")
        };
        let end = claim_end(Some(&lease("a", 5, 15)), &s).expect("own fresh claim");
        let left = end - Instant::now();
        // 15 - 5 - 2 = 8 s (give or take the test's own time).
        assert!(
            left <= Duration::from_secs(8) && left > Duration::from_secs(7),
            "{left:?}"
        );
        assert_eq!(
            claim_end(Some(&lease("b", 0, 15)), &s),
            None,
            "someone else's"
        );
        assert_eq!(
            claim_end(Some(&lease("a", 14, 15)), &s),
            None,
            "inside the margin"
        );
        assert_eq!(claim_end(Some(&lease("a", 60, 15)), &s), None, "expired");
        assert_eq!(claim_end(None, &s), None);
    }

    #[test]
    fn a_lease_is_free_when_it_exists_without_holder() {
        assert!(!is_free(None), "missing: the manager creates it");
        assert!(!is_free(Some(&lease("a", 0, 15))));
        assert!(is_free(Some(&Lease::default())));
        let mut released = lease("a", 0, 15);
        if let Some(spec) = released.spec.as_mut() {
            spec.holder_identity = None;
        }
        assert!(is_free(Some(&released)));
        if let Some(spec) = released.spec.as_mut() {
            spec.holder_identity = Some(String::new());
        }
        assert!(is_free(Some(&released)));
    }

    #[test]
    fn checks_are_frequent_enough_to_renew_in_time() {
        let s = LeaderSettings::new("a", "default");
        assert!(s.check_every() < s.margin());
        let tight = LeaderSettings {
            duration_secs: 2,
            grace_secs: 1,
            ..s
        };
        assert!(tight.check_every() < tight.margin());
    }
}
