//! Measurement helpers shared by the benchmark binaries (Linux `/proc`), and the canary-judge
//! quality benchmark ([`judge_quality`]), which the tests run in a short version.

pub mod judge_quality;

use std::time::Duration;

/// CPU time (user + system) consumed by this process so far.
pub fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses and may contain spaces).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of the full line: 11 and 12 after the name.
    let total = ticks(11) + ticks(12);
    // Linux reports in clock ticks of 1/100 s on every mainstream configuration.
    Duration::from_millis(total * 10)
}

/// Resident memory of this process in bytes.
pub fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// When each ReplicaSet of `namespace` was first seen scaled to 0, as the API server publishes
/// it (a rollback without a router: the canary's pods are its traffic). Fed by a watch task
/// until the handle is dropped.
pub struct ScaledToZero {
    seen: std::sync::Arc<std::sync::Mutex<Vec<(String, std::time::Instant)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl ScaledToZero {
    /// Starts watching the ReplicaSets of `namespace`.
    pub fn watch(client: kube::Client, namespace: &str) -> Self {
        use futures::StreamExt;
        use kube::runtime::{WatchStreamExt, watcher};
        let seen: std::sync::Arc<std::sync::Mutex<Vec<(String, std::time::Instant)>>> =
            std::sync::Arc::default();
        let noted = seen.clone();
        let sets =
            kube::Api::<k8s_openapi::api::apps::v1::ReplicaSet>::namespaced(client, namespace);
        let task = tokio::spawn(async move {
            let mut events = watcher(sets, watcher::Config::default())
                .applied_objects()
                .boxed();
            while let Some(Ok(rs)) = events.next().await {
                if rs.spec.replicas == Some(0)
                    && let (Some(name), Ok(mut noted)) = (rs.metadata.name.clone(), noted.lock())
                    && !noted.iter().any(|(n, _)| *n == name)
                {
                    noted.push((name, std::time::Instant::now()));
                }
            }
        });
        Self { seen, task }
    }

    /// When `name` was scaled to 0, polling for at most `within`.
    pub async fn wait_for(&self, name: &str, within: Duration) -> Option<std::time::Instant> {
        let deadline = std::time::Instant::now() + within;
        loop {
            let found = self
                .seen
                .lock()
                .ok()
                .and_then(|s| s.iter().find(|(n, _)| n == name).map(|(_, t)| *t));
            if found.is_some() || std::time::Instant::now() >= deadline {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

impl Drop for ScaledToZero {
    fn drop(&mut self) {
        self.task.abort();
    }
}
