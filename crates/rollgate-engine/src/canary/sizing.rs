//! Replica arithmetic of a canary: how many pods a weight needs, and one bounded move of a set
//! of ReplicaSets towards their targets that keeps availability within `maxUnavailable` and
//! the pod count within `maxSurge`.

/// Pods for `percent` of `replicas`, rounded up (any non-zero weight gets at least one pod).
pub fn pods_for_percent(replicas: i32, percent: i32) -> i32 {
    let scaled = i64::from(replicas.max(0)) * i64::from(percent.clamp(0, 100));
    i32::try_from((scaled + 99) / 100).unwrap_or(i32::MAX)
}

/// Canary and stable pod counts approximating `weight` by replica counts: both rounded up, so
/// each side keeps at least one pod while its weight is not 0, then the stable side trimmed so
/// that the total stays within `replicas + max_surge`.
pub fn split_for_weight(replicas: i32, weight: i32, max_surge: i32) -> (i32, i32) {
    let canary = pods_for_percent(replicas, weight);
    let mut stable = pods_for_percent(replicas, 100 - weight.clamp(0, 100));
    let ceiling = replicas.saturating_add(max_surge.max(0));
    if canary + stable > ceiling {
        stable = (ceiling - canary).max(0);
    }
    (canary, stable)
}

/// Share of `canary` among `total`, in percent rounded half up (0 when `total` is 0).
pub fn percent_of(canary: i32, total: i32) -> i32 {
    if total <= 0 {
        return 0;
    }
    let v = (i64::from(canary.max(0)) * 200 + i64::from(total)) / (2 * i64::from(total));
    i32::try_from(v).unwrap_or(100).min(100)
}

/// One ReplicaSet as the mover sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Set {
    /// Identifier (the pod-template hash).
    pub key: String,
    /// Current `spec.replicas`.
    pub spec: i32,
    /// Ready and available pods it keeps (at most `spec`).
    pub available: i32,
    /// Where it should end up.
    pub target: i32,
}

/// Limits of one move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Available pods that must remain (`replicas - maxUnavailable`).
    pub min_available: i32,
    /// Most pods all sets may ask for together (`replicas + maxSurge`); `None` for no bound.
    pub max_total: Option<i32>,
}

/// Moves every set one bounded step towards its target and returns the new `spec.replicas`,
/// in the order of `sets`.
///
/// Scale-downs come first, in the order given: removing pods that are not available is free
/// (ReplicaSets remove those first); removing available pods spends the budget of available
/// pods above `min_available`. Scale-ups follow, in the order of `up_order` (indices into
/// `sets`), within `max_total`.
pub fn step(sets: &[Set], limits: Limits, up_order: &[usize]) -> Vec<i32> {
    let available: i32 = sets.iter().map(|s| s.available.min(s.spec).max(0)).sum();
    let mut budget = (available - limits.min_available).max(0);
    let mut next: Vec<i32> = sets.iter().map(|s| s.spec).collect();
    for (i, s) in sets.iter().enumerate() {
        if s.target >= s.spec {
            continue;
        }
        let remove = s.spec - s.target;
        let unavailable = (s.spec - s.available.min(s.spec)).max(0);
        let free = remove.min(unavailable);
        let costly = (remove - free).min(budget);
        budget -= costly;
        next[i] = s.spec - free - costly;
    }
    let mut total: i32 = next.iter().sum();
    for &i in up_order {
        let Some(s) = sets.get(i) else { continue };
        if s.target <= next[i] {
            continue;
        }
        let want = s.target - next[i];
        let room = limits
            .max_total
            .map_or(want, |max| (max - total).max(0))
            .min(want);
        next[i] += room;
        total += room;
    }
    next
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(key: &str, spec: i32, available: i32, target: i32) -> Set {
        Set {
            key: key.into(),
            spec,
            available,
            target,
        }
    }

    #[test]
    fn any_non_zero_weight_gets_a_pod_at_small_replica_counts() {
        assert_eq!(split_for_weight(1, 10, 1), (1, 1));
        assert_eq!(split_for_weight(1, 10, 0), (1, 0));
        assert_eq!(split_for_weight(2, 10, 1), (1, 2));
        assert_eq!(split_for_weight(2, 50, 1), (1, 1));
        assert_eq!(split_for_weight(3, 50, 1), (2, 2));
        assert_eq!(split_for_weight(3, 50, 0), (2, 1));
        assert_eq!(split_for_weight(3, 34, 1), (2, 2));
        assert_eq!(split_for_weight(10, 25, 3), (3, 8));
        assert_eq!(split_for_weight(10, 0, 3), (0, 10));
        assert_eq!(split_for_weight(10, 100, 3), (10, 0));
        assert_eq!(split_for_weight(0, 50, 0), (0, 0));
    }

    #[test]
    fn percentages_round_half_up() {
        assert_eq!(percent_of(1, 2), 50);
        assert_eq!(percent_of(1, 3), 33);
        assert_eq!(percent_of(2, 3), 67);
        assert_eq!(percent_of(0, 0), 0);
        assert_eq!(percent_of(1, 8), 13);
    }

    #[test]
    fn scale_down_spends_only_the_unavailability_budget() {
        // 10 replicas, maxUnavailable 2, maxSurge 3: stable 10 -> 5, canary 0 -> 5.
        let limits = Limits {
            min_available: 8,
            max_total: Some(13),
        };
        let sets = [set("c", 0, 0, 5), set("s", 10, 10, 5)];
        assert_eq!(step(&sets, limits, &[0, 1]), [5, 8]);
        // Canary pods not ready yet: the stable side cannot shrink further.
        let sets = [set("c", 3, 0, 5), set("s", 8, 8, 5)];
        assert_eq!(step(&sets, limits, &[0, 1]), [5, 8]);
        // Canary ready: budget 3.
        let sets = [set("c", 5, 3, 5), set("s", 8, 8, 5)];
        assert_eq!(step(&sets, limits, &[0, 1]), [5, 5]);
    }

    #[test]
    fn unavailable_pods_are_removed_for_free() {
        let limits = Limits {
            min_available: 3,
            max_total: Some(5),
        };
        // A crash-looping set of 3 (none available) goes at once; availability is untouched.
        let sets = [set("c", 3, 0, 0), set("s", 3, 3, 4)];
        assert_eq!(step(&sets, limits, &[1, 0]), [0, 4]);
    }

    #[test]
    fn scale_up_respects_max_total_and_order() {
        let limits = Limits {
            min_available: 0,
            max_total: Some(4),
        };
        let sets = [set("a", 1, 1, 3), set("b", 1, 1, 3)];
        assert_eq!(step(&sets, limits, &[1, 0]), [1, 3]);
        let unbounded = Limits {
            min_available: 0,
            max_total: None,
        };
        assert_eq!(step(&sets, unbounded, &[0, 1]), [3, 3]);
    }
}
