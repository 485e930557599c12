//! The HTTP face of the simulated cluster: routing, handlers, discovery and watch streams.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use http::{Method, Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use crate::error::ApiError;
use crate::ops::{self, Target};
use crate::patch::{self, PatchKind};
use crate::registry::ResourceType;
use crate::selector::Selector;
use crate::store::{AuditEntry, type_key};
use crate::{Inner, replicaset};

/// Response body type.
pub(crate) type Body = UnsyncBoxBody<Bytes, Infallible>;

/// The tower service handed to `kube::Client::new`.
pub(crate) fn service(
    inner: Arc<Inner>,
) -> impl tower::Service<
    Request<kube::client::Body>,
    Response = Response<Body>,
    Error = Infallible,
    Future = impl Future<Output = Result<Response<Body>, Infallible>> + Send,
> + Send
+ Clone
+ 'static {
    tower::service_fn(move |req: Request<kube::client::Body>| {
        let inner = inner.clone();
        async move {
            let (parts, body) = req.into_parts();
            let bytes = match body.collect().await {
                Ok(c) => c.to_bytes(),
                Err(e) => return Ok(error(&ApiError::bad_request(format!("reading body: {e}")))),
            };
            Ok(handle(&inner, &parts, bytes).await)
        }
    })
}

fn full(code: StatusCode, body: Vec<u8>) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(body)).boxed_unsync());
    *r.status_mut() = code;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    r
}

fn ok_json(code: StatusCode, v: &Value) -> Response<Body> {
    full(code, serde_json::to_vec(v).unwrap_or_default())
}

fn error(e: &ApiError) -> Response<Body> {
    let code = StatusCode::from_u16(e.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    ok_json(code, &e.to_status())
}

struct Route<'a> {
    rt: ResourceType,
    namespace: Option<&'a str>,
    name: Option<&'a str>,
    status: bool,
}

/// Answers one request.
pub(crate) async fn handle(
    inner: &Arc<Inner>,
    parts: &http::request::Parts,
    body: Bytes,
) -> Response<Body> {
    let path = parts.uri.path().to_string();
    let query: HashMap<String, String> = parts
        .uri
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let routed = match segs.as_slice() {
        ["version"] => {
            return ok_json(
                StatusCode::OK,
                &json!({"major": "1", "minor": "32", "gitVersion": "v1.32.0-rollgate-sim",
                        "gitCommit": "0000000", "gitTreeState": "clean",
                        "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.23",
                        "compiler": "gc", "platform": "linux/amd64"}),
            );
        }
        ["api"] => return ok_json(StatusCode::OK, &inner.lock().registry.api_versions()),
        ["apis"] => return ok_json(StatusCode::OK, &inner.lock().registry.api_group_list()),
        ["api", v] => return discovery(inner, "", v),
        ["apis", g, v] => return discovery(inner, g, v),
        ["api", v, rest @ ..] => route(inner, "", v, rest),
        ["apis", g, v, rest @ ..] => route(inner, g, v, rest),
        _ => Err(ApiError::not_found("path", &path)),
    };
    let response = match routed {
        Err(e) => error(&e),
        Ok(route) => {
            match dispatch(inner, &parts.method, &parts.headers, &query, &body, route).await {
                Ok(r) => r,
                Err(e) => error(&e),
            }
        }
    };
    if !matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS) {
        let entry = AuditEntry {
            method: parts.method.to_string(),
            path,
            content_type: parts
                .headers
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(String::from),
            field_manager: query.get("fieldManager").cloned(),
            code: response.status().as_u16(),
        };
        inner.lock().audit.push(entry);
    }
    response
}

fn discovery(inner: &Arc<Inner>, group: &str, version: &str) -> Response<Body> {
    match inner.lock().registry.resource_list(group, version) {
        Some(v) => ok_json(StatusCode::OK, &v),
        None => error(&ApiError::not_found(
            "group version",
            &format!("{group}/{version}"),
        )),
    }
}

fn route<'a>(
    inner: &Arc<Inner>,
    group: &str,
    version: &str,
    rest: &[&'a str],
) -> Result<Route<'a>, ApiError> {
    let st = inner.lock();
    let lookup = |plural: &str| st.registry.get(group, version, plural).cloned();
    let (namespace, plural, tail) = match rest {
        ["namespaces", ns, plural, tail @ ..] if lookup(plural).is_some_and(|t| t.namespaced) => {
            (Some(*ns), *plural, tail)
        }
        [plural, tail @ ..] => (None, *plural, tail),
        [] => return Err(ApiError::not_found("resource", "")),
    };
    let rt = lookup(plural).ok_or_else(|| ApiError::not_found("resource", plural))?;
    let (name, status) = match tail {
        [] => (None, false),
        [name] => (Some(*name), false),
        [name, "status"] => (Some(*name), true),
        _ => return Err(ApiError::not_found("subresource", &tail.join("/"))),
    };
    if status && !rt.status_subresource {
        return Err(ApiError::not_found("subresource", "status"));
    }
    Ok(Route {
        rt,
        namespace,
        name,
        status,
    })
}

fn parse_json(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
}

/// Work the cluster does after a write to an object of a given type.
fn after_write(inner: &Arc<Inner>, st: &mut crate::store::Store, rt: &ResourceType, obj: &Value) {
    let ns = obj["metadata"]["namespace"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let name = obj["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    match (rt.group.as_str(), rt.plural.as_str()) {
        ("apiextensions.k8s.io", "customresourcedefinitions") => st.registry.register_crd(obj),
        ("apps", "replicasets") => replicaset::reconcile(inner, st, &ns, &name),
        ("", "pods") => {
            // A pod gone or changed: its ReplicaSet catches up.
            let owner = obj["metadata"]["ownerReferences"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|o| o["kind"] == "ReplicaSet")
                .and_then(|o| o["name"].as_str())
                .map(String::from);
            if let Some(rs) = owner {
                replicaset::reconcile(inner, st, &ns, &rs);
            }
        }
        _ => {}
    }
}

async fn dispatch(
    inner: &Arc<Inner>,
    method: &Method,
    headers: &http::HeaderMap,
    query: &HashMap<String, String>,
    body: &[u8],
    route: Route<'_>,
) -> Result<Response<Body>, ApiError> {
    let rt = &route.rt;
    let ns = route.namespace.unwrap_or_default();
    if rt.namespaced && route.name.is_some() && route.namespace.is_none() {
        return Err(ApiError::not_found(
            &rt.kind,
            route.name.unwrap_or_default(),
        ));
    }
    let now = inner.clock.stamp();
    let target = if route.status {
        Target::Status
    } else {
        Target::Main
    };
    match (method, route.name) {
        (&Method::GET, None) => {
            let label = Selector::parse(query.get("labelSelector").map_or("", String::as_str))
                .map_err(|e| ApiError::bad_request(e.to_string()))?;
            let field = Selector::parse(query.get("fieldSelector").map_or("", String::as_str))
                .map_err(|e| ApiError::bad_request(e.to_string()))?;
            let watch = matches!(query.get("watch").map(String::as_str), Some("true" | "1"));
            if watch {
                return watch_stream(inner, rt, route.namespace, label, field, query);
            }
            Ok(list(inner, rt, route.namespace, &label, &field, query))
        }
        (&Method::GET, Some(name)) => {
            let st = inner.lock();
            let obj = st
                .get(&type_key(rt), if rt.namespaced { ns } else { "" }, name)
                .ok_or_else(|| ApiError::not_found(&rt.kind, name))?;
            Ok(ok_json(StatusCode::OK, obj))
        }
        (&Method::POST, None) => {
            if rt.namespaced && route.namespace.is_none() {
                return Err(ApiError::method_not_allowed(
                    "create needs a namespace in the path",
                ));
            }
            let obj = parse_json(body)?;
            let mut st = inner.lock();
            let created = ops::create(&mut st, rt, ns, obj, &now)?;
            after_write(inner, &mut st, rt, &created);
            Ok(ok_json(StatusCode::CREATED, &created))
        }
        (&Method::PUT, Some(name)) => {
            let obj = parse_json(body)?;
            let mut st = inner.lock();
            let updated = ops::update(&mut st, rt, ns, name, obj, target)?;
            after_write(inner, &mut st, rt, &updated);
            Ok(ok_json(StatusCode::OK, &updated))
        }
        (&Method::PATCH, Some(name)) => {
            let ct = headers
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            let kind = PatchKind::from_content_type(ct).ok_or_else(|| ApiError {
                code: 415,
                reason: "UnsupportedMediaType",
                message: format!("the body of the request was in an unknown format: {ct}"),
            })?;
            let patch_body =
                patch::parse_body(kind, body).map_err(|e| ApiError::bad_request(e.to_string()))?;
            let manager = query.get("fieldManager").cloned();
            if kind == PatchKind::Apply && manager.as_deref().is_none_or(str::is_empty) {
                return Err(ApiError::bad_request(
                    "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
                ));
            }
            let mut st = inner.lock();
            let ty = type_key(rt);
            let current = st
                .get(&ty, if rt.namespaced { ns } else { "" }, name)
                .cloned();
            let result = match current {
                None if kind == PatchKind::Apply && !route.status => {
                    let mut obj = patch_body;
                    obj["metadata"]["name"] = json!(name);
                    set_managed(&mut obj, manager.as_deref(), rt, &now);
                    let created = ops::create(&mut st, rt, ns, obj, &now)?;
                    after_write(inner, &mut st, rt, &created);
                    return Ok(ok_json(StatusCode::CREATED, &created));
                }
                None => return Err(ApiError::not_found(&rt.kind, name)),
                Some(mut obj) => {
                    patch::apply(kind, &mut obj, &patch_body)
                        .map_err(|e| ApiError::invalid(e.to_string()))?;
                    if kind == PatchKind::Apply {
                        set_managed(&mut obj, manager.as_deref(), rt, &now);
                    }
                    ops::update(&mut st, rt, ns, name, obj, target)?
                }
            };
            after_write(inner, &mut st, rt, &result);
            Ok(ok_json(StatusCode::OK, &result))
        }
        (&Method::DELETE, Some(name)) => {
            let options: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
            let policy = options["propagationPolicy"]
                .as_str()
                .map(String::from)
                .or_else(|| query.get("propagationPolicy").cloned());
            let orphan = policy.as_deref() == Some("Orphan");
            let mut st = inner.lock();
            let deleted = ops::delete(&mut st, rt, ns, name, orphan, &now)?;
            after_write(inner, &mut st, rt, &deleted);
            Ok(ok_json(StatusCode::OK, &deleted))
        }
        _ => Err(ApiError::method_not_allowed(format!(
            "{method} is not supported here"
        ))),
    }
}

fn set_managed(obj: &mut Value, manager: Option<&str>, rt: &ResourceType, now: &str) {
    let Some(manager) = manager else { return };
    let entry = json!({"manager": manager, "operation": "Apply", "apiVersion": rt.api_version(),
                       "time": now, "fieldsType": "FieldsV1"});
    let list = obj["metadata"]["managedFields"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut list: Vec<Value> = list
        .into_iter()
        .filter(|e| e["manager"] != manager)
        .collect();
    list.push(entry);
    obj["metadata"]["managedFields"] = Value::Array(list);
}

fn list(
    inner: &Arc<Inner>,
    rt: &ResourceType,
    ns: Option<&str>,
    label: &Selector,
    field: &Selector,
    query: &HashMap<String, String>,
) -> Response<Body> {
    let st = inner.lock();
    let ns = if rt.namespaced { ns } else { None };
    let all: Vec<&Value> = st
        .list(&type_key(rt), ns)
        .into_iter()
        .filter(|o| label.matches_labels(o) && field.matches_fields(o))
        .collect();
    let start: usize = query
        .get("continue")
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let limit: usize = query
        .get("limit")
        .and_then(|l| l.parse().ok())
        .filter(|l| *l > 0)
        .unwrap_or(usize::MAX);
    let items: Vec<&Value> = all.iter().skip(start).take(limit).copied().collect();
    let mut metadata = json!({"resourceVersion": st.rv.to_string()});
    if start.saturating_add(limit) < all.len() {
        metadata["continue"] = json!((start + limit).to_string());
        metadata["remainingItemCount"] = json!(all.len() - start - limit);
    }
    ok_json(
        StatusCode::OK,
        &json!({"kind": format!("{}List", rt.kind), "apiVersion": rt.api_version(),
                "metadata": metadata, "items": items}),
    )
}

fn line(kind: &str, object: &Value) -> Bytes {
    let mut v = serde_json::to_vec(&json!({"type": kind, "object": object})).unwrap_or_default();
    v.push(b'\n');
    Bytes::from(v)
}

fn watch_stream(
    inner: &Arc<Inner>,
    rt: &ResourceType,
    ns: Option<&str>,
    label: Selector,
    field: Selector,
    query: &HashMap<String, String>,
) -> Result<Response<Body>, ApiError> {
    let ty = type_key(rt);
    let ns = if rt.namespaced {
        ns.map(String::from)
    } else {
        None
    };
    let from: Option<u64> = match query.get("resourceVersion").map(String::as_str) {
        None | Some("") | Some("0") => None,
        Some(v) => Some(
            v.parse()
                .map_err(|_| ApiError::bad_request(format!("invalid resourceVersion {v:?}")))?,
        ),
    };
    let timeout = query
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map_or(Duration::from_secs(1800), Duration::from_secs);
    let matches = move |c_ty: &(String, String), c_ns: &str, obj: &Value| {
        *c_ty == ty
            && ns.as_deref().is_none_or(|n| n == c_ns)
            && label.matches_labels(obj)
            && field.matches_fields(obj)
    };
    let (mut sub, initial, snapshot_rv) = {
        let st = inner.lock();
        let sub = st.subscribe();
        let initial: Vec<Bytes> = match from {
            None => st
                .list(&type_key(rt), None)
                .into_iter()
                .filter(|o| {
                    matches(
                        &type_key(rt),
                        o["metadata"]["namespace"].as_str().unwrap_or_default(),
                        o,
                    )
                })
                .map(|o| line("ADDED", o))
                .collect(),
            Some(rv) if rv < st.oldest_rv => {
                let gone =
                    ApiError::gone(format!("too old resource version: {rv} ({})", st.oldest_rv));
                vec![line("ERROR", &gone.to_status())]
            }
            Some(rv) => st
                .history_after(rv)
                .into_iter()
                .filter(|c| matches(&c.ty, &c.namespace, &c.object))
                .map(|c| line(c.kind, &c.object))
                .collect(),
        };
        (sub, initial, st.rv)
    };
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Bytes>();
    tokio::spawn(async move {
        for l in initial {
            if tx.send(l).is_err() {
                return;
            }
        }
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                () = &mut deadline => return,
                () = tx.closed() => return,
                msg = sub.recv() => match msg {
                    Ok(c) => {
                        if c.rv > snapshot_rv && matches(&c.ty, &c.namespace, &c.object)
                            && tx.send(line(c.kind, &c.object)).is_err() {
                            return;
                        }
                    }
                    Err(RecvError::Lagged(_)) => {
                        let _ = tx.send(line("ERROR", &ApiError::gone("watch fell behind").to_status()));
                        return;
                    }
                    Err(RecvError::Closed) => return,
                }
            }
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, Infallible>(http_body::Frame::data(b)), rx))
    });
    let mut r = Response::new(StreamBody::new(stream.boxed()).boxed_unsync());
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    Ok(r)
}
