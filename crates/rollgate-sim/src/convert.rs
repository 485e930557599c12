//! Versions and representations sharing one storage: objects are stored in one shape and
//! shown in the shape of the version asked for. Custom resource versions differ only in
//! `apiVersion` (conversion strategy `None`); `events.k8s.io/v1` Events are stored as core
//! `v1` Events, as the API server does, so both APIs see the same events.

use serde_json::{Map, Value, json};

use crate::registry::ResourceType;

/// Field renames between `events.k8s.io/v1` (left) and core `v1` (right) Events.
const EVENT_FIELDS: &[(&str, &str)] = &[
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("reportingController", "reportingComponent"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
];

fn is_events_v1(rt: &ResourceType) -> bool {
    rt.group == "events.k8s.io" && rt.plural == "events"
}

fn rename(obj: &Value, pairs: impl Iterator<Item = (&'static str, &'static str)>) -> Value {
    let Some(m) = obj.as_object() else {
        return obj.clone();
    };
    let pairs: Vec<_> = pairs.collect();
    let mut out = Map::new();
    for (k, v) in m {
        let key = pairs
            .iter()
            .find(|(from, _)| from == k)
            .map_or(k.as_str(), |(_, to)| to);
        out.insert(key.to_string(), v.clone());
    }
    Value::Object(out)
}

/// The stored shape of an object written through `rt`.
pub fn to_storage(rt: &ResourceType, obj: Value) -> Value {
    if !is_events_v1(rt) || !obj.is_object() {
        return obj;
    }
    let mut core = rename(&obj, EVENT_FIELDS.iter().copied());
    core["apiVersion"] = json!("v1");
    core["kind"] = json!("Event");
    core
}

/// How `rt` shows a stored object.
pub fn from_storage(rt: &ResourceType, obj: &Value) -> Value {
    if !obj.is_object() {
        return obj.clone();
    }
    let mut out = if is_events_v1(rt) {
        rename(obj, EVENT_FIELDS.iter().map(|(a, b)| (*b, *a)))
    } else {
        obj.clone()
    };
    out["apiVersion"] = json!(rt.api_version());
    out["kind"] = json!(rt.kind);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;

    #[test]
    fn events_round_trip_between_apis() {
        let reg = Registry::default();
        let new = reg
            .get("events.k8s.io", "v1", "events")
            .expect("type")
            .clone();
        let core = reg.get("", "v1", "events").expect("type").clone();
        let ev = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "e"}, "regarding": {"name": "x"}, "note": "hi",
            "reportingController": "c", "series": {"count": 2}});
        let stored = to_storage(&new, ev.clone());
        assert_eq!(stored["involvedObject"]["name"], "x");
        assert_eq!(stored["message"], "hi");
        assert_eq!(from_storage(&core, &stored)["reportingComponent"], "c");
        assert_eq!(from_storage(&new, &stored), ev);
    }
}
