//! Turning bytes into the JSON objects the code under test reads.

use k8s_openapi::jiff::Timestamp;
use serde_json::Value;

/// Largest input the targets read, in bytes: beyond it they return at once (libFuzzer's own
/// `-max_len` is usually smaller; this bounds inputs given by hand).
pub const MAX_INPUT: usize = 64 * 1024;

/// The instant the targets decide at: 2025-03-10T12:00:00Z, a Monday (fixed, so that every
/// run of an input does the same).
pub fn now() -> Timestamp {
    Timestamp::from_second(1_741_608_000).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// The input as text, when it is UTF-8 and not too long.
pub fn text(data: &[u8]) -> Option<&str> {
    if data.len() > MAX_INPUT {
        return None;
    }
    std::str::from_utf8(data).ok()
}

/// The objects of `text`: one JSON value, or every non-null document of a YAML stream, as
/// the controller (JSON from the API server) and `rollgate lint` (YAML files) read them.
pub fn documents(text: &str) -> Vec<Value> {
    if let Ok(v) = serde_json::from_str::<Value>(text) {
        return vec![v];
    }
    serde_saphyr::from_multiple::<Value>(text)
        .map(|docs| docs.into_iter().filter(|v| !v.is_null()).collect())
        .unwrap_or_default()
}

/// The `kind` of an object (empty when it has none).
pub fn kind(v: &Value) -> &str {
    v["kind"].as_str().unwrap_or_default()
}

/// The `metadata.name` of an object (empty when it has none).
pub fn name(v: &Value) -> &str {
    v["metadata"]["name"].as_str().unwrap_or_default()
}
