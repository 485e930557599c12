//! Watch streams: newline-delimited JSON events from a resourceVersion (history, then live),
//! bookmarks, streaming lists, `410 Gone` for versions older than the history, and timeouts
//! in tokio (virtual) time.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;

use crate::Inner;
use crate::convert::from_storage;
use crate::error::ApiError;
use crate::registry::ResourceType;
use crate::selector::Selector;
use crate::store::{Change, TypeKey, type_key};
use crate::table::{self, Shape};

/// How often a watch with `allowWatchBookmarks` gets a bookmark.
const BOOKMARK_EVERY: Duration = Duration::from_secs(60);

/// What a watch request asks for.
#[derive(Debug, Clone)]
pub struct WatchRequest {
    /// Namespace, or all.
    pub namespace: Option<String>,
    /// Label selector.
    pub labels: Selector,
    /// Field selector.
    pub fields: Selector,
    /// `resourceVersion` (`None` or 0: start with the current state).
    pub from: Option<u64>,
    /// `allowWatchBookmarks`.
    pub bookmarks: bool,
    /// `sendInitialEvents`.
    pub initial_events: bool,
    /// `timeoutSeconds`.
    pub timeout: Duration,
    /// How objects are shown: themselves, one-row Tables (`kubectl get -w`), or metadata.
    pub shape: Shape,
}

struct Filter {
    ty: TypeKey,
    namespace: Option<String>,
    labels: Selector,
    fields: Selector,
}

impl Filter {
    fn matches(&self, ty: &TypeKey, ns: &str, obj: &Value) -> bool {
        *ty == self.ty
            && self.namespace.as_deref().is_none_or(|n| n == ns)
            && self.labels.matches_labels(obj)
            && self.fields.matches_fields(obj)
    }

    /// The event a watcher with this filter sees for a change, if any: an object entering
    /// the selection is ADDED, one leaving it DELETED (in its previous state).
    fn event<'a>(&self, c: &'a Change) -> Option<(&'static str, &'a Value)> {
        let now = self.matches(&c.ty, &c.namespace, &c.object);
        let before = c
            .previous
            .as_deref()
            .map(|p| self.matches(&c.ty, &c.namespace, p));
        match (c.kind, now, before) {
            ("MODIFIED", true, Some(false)) => Some(("ADDED", &c.object)),
            ("MODIFIED", false, Some(true)) => c.previous.as_deref().map(|p| ("DELETED", p)),
            (kind, true, _) => Some((kind, &c.object)),
            _ => None,
        }
    }
}

/// An `ERROR` event carrying `e` as a `Status`, as a watch stream sends it.
pub(crate) fn error_line(e: &ApiError) -> Bytes {
    line("ERROR", &e.to_status())
}

fn line(kind: &str, object: &Value) -> Bytes {
    let mut v = serde_json::to_vec(&json!({"type": kind, "object": object})).unwrap_or_default();
    v.push(b'\n');
    Bytes::from(v)
}

/// How a watch shows objects: in the requested version, optionally as one-row Tables.
struct Presenter {
    rt: ResourceType,
    shape: Shape,
    clock: crate::clock::Clock,
}

impl Presenter {
    fn show(&self, stored: &Value) -> Value {
        let obj = from_storage(&self.rt, stored);
        match self.shape {
            Shape::Object => obj,
            Shape::Metadata => table::partial_metadata(&obj),
            Shape::Table(include) => {
                let rv = obj["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                table::render(&self.rt, &[obj], &rv, include, self.clock.now())
            }
        }
    }
}

fn bookmark(rt: &ResourceType, rv: u64, initial_end: bool) -> Bytes {
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if initial_end {
        meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    line(
        "BOOKMARK",
        &json!({"kind": rt.kind, "apiVersion": rt.api_version(), "metadata": meta}),
    )
}

/// Starts a watch: returns a receiver of the stream's lines. The stream ends at the timeout,
/// after an ERROR event, or when the receiver is dropped.
pub fn start(
    inner: &Arc<Inner>,
    rt: &ResourceType,
    req: WatchRequest,
) -> mpsc::UnboundedReceiver<Bytes> {
    let (tx, rx) = mpsc::unbounded_channel::<Bytes>();
    let filter = Filter {
        ty: type_key(rt),
        namespace: if rt.namespaced {
            req.namespace.clone()
        } else {
            None
        },
        labels: req.labels,
        fields: req.fields,
    };
    let presenter = Presenter {
        rt: rt.clone(),
        shape: req.shape,
        clock: inner.clock,
    };
    let (mut sub, snapshot_rv) = {
        let st = inner.lock();
        let sub = st.subscribe();
        let send = |b: Bytes| {
            let _ = tx.send(b);
        };
        match req.from {
            Some(rv) if !req.initial_events && rv < st.oldest_rv => {
                let gone =
                    ApiError::gone(format!("too old resource version: {rv} ({})", st.oldest_rv));
                send(error_line(&gone));
                return rx;
            }
            Some(rv) if !req.initial_events => {
                for c in st.history_after(rv) {
                    if let Some((kind, obj)) = filter.event(c) {
                        send(line(kind, &presenter.show(obj)));
                    }
                }
            }
            _ => {
                for o in st.list(&filter.ty, filter.namespace.as_deref()) {
                    let ns = o["metadata"]["namespace"].as_str().unwrap_or_default();
                    if filter.matches(&filter.ty, ns, o) {
                        send(line("ADDED", &presenter.show(o)));
                    }
                }
                if req.initial_events {
                    send(bookmark(rt, st.rv, true));
                }
            }
        }
        (sub, st.rv)
    };
    let rt = rt.clone();
    let bookmarks = req.bookmarks;
    let timeout = req.timeout;
    tokio::spawn(async move {
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut ticks =
            tokio::time::interval_at(tokio::time::Instant::now() + BOOKMARK_EVERY, BOOKMARK_EVERY);
        let mut last_rv = snapshot_rv;
        loop {
            tokio::select! {
                () = &mut deadline => {
                    if bookmarks {
                        let _ = tx.send(bookmark(&rt, last_rv, false));
                    }
                    return;
                }
                () = tx.closed() => return,
                _ = ticks.tick(), if bookmarks => {
                    if tx.send(bookmark(&rt, last_rv, false)).is_err() {
                        return;
                    }
                }
                msg = sub.recv() => match msg {
                    Ok(c) => {
                        let c: Arc<Change> = c;
                        if c.rv <= snapshot_rv {
                            continue;
                        }
                        last_rv = c.rv;
                        if let Some((kind, obj)) = filter.event(&c)
                            && tx.send(line(kind, &presenter.show(obj))).is_err()
                        {
                            return;
                        }
                    }
                    Err(RecvError::Lagged(_)) => {
                        let gone = ApiError::gone("the watch fell behind; too old resource version");
                        let _ = tx.send(error_line(&gone));
                        return;
                    }
                    Err(RecvError::Closed) => return,
                }
            }
        }
    });
    rx
}
