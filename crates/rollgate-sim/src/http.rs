//! The HTTP face of the simulated cluster: routing, verbs, the in-process tower service and
//! the HTTP/1.1 server.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use serde_json::{Value, json};

use crate::apply::{self, ApplyRequest};
use crate::convert::{from_storage, to_storage};
use crate::decode::{FieldValidation, Warnings};
use crate::error::{ApiError, qualified};
use crate::faults::{Fault, RequestFacts, Verb, whole_seconds};
use crate::gc::Propagation;
use crate::patch::{self, PatchKind};
use crate::registry::ResourceType;
use crate::selector::Selector;
use crate::store::{AuditEntry, Store, type_key};
use crate::table::{self, Shape};
use crate::watch::{self, WatchRequest};
use crate::write::{self, DeleteOptions, Target, WriteCtx};
use crate::{Inner, discovery, gc, kubelet, replicaset};

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
            if inner.is_partitioned(&parts.headers) {
                return Ok(partitioned());
            }
            let bytes = match body.collect().await {
                Ok(c) => c.to_bytes(),
                Err(e) => return Ok(error(&ApiError::bad_request(format!("reading body: {e}")))),
            };
            Ok(respond(&inner, &parts, &bytes).await)
        }
    })
}

/// Serves the API over plain HTTP/1.1 on `addr` until the returned task is aborted.
pub(crate) async fn serve(
    inner: Arc<Inner>,
    addr: SocketAddr,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let task = tokio::spawn(async move {
        // Connections live in this set: aborting the server task drops them all.
        let mut connections = tokio::task::JoinSet::new();
        loop {
            while connections.try_join_next().is_some() {}
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let inner = inner.clone();
            connections.spawn(async move {
                let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                    let inner = inner.clone();
                    async move {
                        let (parts, body) = req.into_parts();
                        let bytes = match body.collect().await {
                            Ok(c) => c.to_bytes(),
                            Err(e) => {
                                return Ok::<_, Infallible>(error(&ApiError::bad_request(
                                    format!("reading body: {e}"),
                                )));
                            }
                        };
                        Ok(respond(&inner, &parts, &bytes).await)
                    }
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, svc)
                    .await;
            });
        }
    });
    Ok((local, task))
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

fn json_response(code: StatusCode, v: &Value) -> Response<Body> {
    full(code, serde_json::to_vec(v).unwrap_or_default())
}

fn error(e: &ApiError) -> Response<Body> {
    let code = StatusCode::from_u16(e.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json_response(code, &e.to_status())
}

/// What a request addresses below a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sub {
    None,
    Status,
    Scale,
}

struct Route {
    rt: ResourceType,
    namespace: Option<String>,
    name: Option<String>,
    sub: Sub,
}

/// An answer before it becomes a response.
enum Reply {
    Json(StatusCode, Value),
    Stream(tokio::sync::mpsc::UnboundedReceiver<Bytes>),
}

type Query = HashMap<String, String>;

/// Answers one request.
pub(crate) fn handle(
    inner: &Arc<Inner>,
    parts: &http::request::Parts,
    body: &Bytes,
) -> Response<Body> {
    if inner.take_conflict(&parts.method, parts.uri.path()) {
        return error(&ApiError::injected_conflict());
    }
    let path = parts.uri.path().to_string();
    let query = parse_query(parts);
    let warnings = Warnings::default();
    let result = answer(
        inner,
        &parts.method,
        &path,
        &query,
        &parts.headers,
        body,
        &warnings,
    );
    let (mut response, rv) = match result {
        Ok(Reply::Json(code, v)) => {
            let rv = v["metadata"]["resourceVersion"].as_str().map(String::from);
            (json_response(code, &v), rv)
        }
        Ok(Reply::Stream(rx)) => (stream_response(rx), None),
        Err(e) => (error(&e), None),
    };
    for w in warnings.into_inner() {
        // `299 - "text"`, the text escaped as a quoted string.
        let quoted = serde_json::to_string(&w).unwrap_or_default();
        if let Ok(v) = http::HeaderValue::from_str(&format!("299 - {quoted}")) {
            response.headers_mut().append(http::header::WARNING, v);
        }
    }
    if !matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS) {
        audit(inner, parts, &query, response.status().as_u16(), rv);
    }
    response
}

/// Records a mutating request in the audit log.
fn audit(
    inner: &Inner,
    parts: &http::request::Parts,
    query: &Query,
    code: u16,
    resource_version: Option<String>,
) {
    let entry = AuditEntry {
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        content_type: parts
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(String::from),
        field_manager: query.get("fieldManager").cloned(),
        user_agent: user_agent(&parts.headers).map(String::from),
        code,
        resource_version,
    };
    inner.lock().audit.push(entry);
}

/// A watch response streaming the lines `rx` receives.
fn stream_response(rx: tokio::sync::mpsc::UnboundedReceiver<Bytes>) -> Response<Body> {
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
    r
}

/// The client's `User-Agent`.
fn user_agent(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
}

fn parse_query(parts: &http::request::Parts) -> Query {
    parts
        .uri
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default()
}

fn flag(query: &Query, key: &str) -> bool {
    query.get(key).is_some_and(|v| v == "true" || v == "1")
}

/// The answer to a client cut off from the server: it never reached it.
fn partitioned() -> Response<Body> {
    error(&ApiError::unavailable("connection refused (partitioned)"))
}

/// Answers one request from a client as the server and the network in front of it do: waits
/// while the server is unresponsive, refuses a client cut off, then draws the injected faults
/// (see [`crate::faults`]), waits out their latency and answers with the fault or with
/// [`handle`]. A watch stream is held back while the server is unresponsive, cut when a fault
/// says so, and ended when its client is killed.
pub(crate) async fn respond(
    inner: &Arc<Inner>,
    parts: &http::request::Parts,
    body: &Bytes,
) -> Response<Body> {
    if inner.is_partitioned(&parts.headers) {
        return partitioned();
    }
    let mut net = inner.net.subscribe();
    // The sender lives as long as `inner`: this only waits for the server to answer again.
    let _ = net.wait_for(|n| !n.unresponsive).await.is_ok();
    let agent = user_agent(&parts.headers).map(String::from);
    let query = parse_query(parts);
    let watch = parts.method == Method::GET && flag(&query, "watch");
    let active = inner.injector().active();
    let classified = if active {
        classify(inner, &parts.method, parts.uri.path(), &query)
    } else {
        None
    };
    let drawn = classified
        .as_ref()
        .map(|c| inner.injector().draw(&c.facts(agent.as_deref())))
        .unwrap_or_default();
    if !drawn.latency.is_zero() {
        tokio::time::sleep(drawn.latency).await;
    }
    let response = match (drawn.answer, &classified) {
        (Some(Fault::LostResponse), Some(_)) => {
            // Handled (and audited with its real code inside `handle`); the answer is lost.
            let _handled = handle_counted(inner, parts, body, agent.as_deref());
            error(&ApiError::timeout(
                "Timeout: request did not complete within requested timeout - the response was lost",
            ))
        }
        (Some(fault), Some(c)) => injected(inner, parts, &query, body, fault, c, watch),
        _ => handle_counted(inner, parts, body, agent.as_deref()),
    };
    if watch {
        gate_watch(inner.clone(), agent, drawn.cut_watch, response)
    } else {
        response
    }
}

/// [`handle`], and for a write from a named client, counted in the write book under its lock
/// (see [`crate::SimCluster::kill_after_writes`]).
fn handle_counted(
    inner: &Arc<Inner>,
    parts: &http::request::Parts,
    body: &Bytes,
    agent: Option<&str>,
) -> Response<Body> {
    let write = matches!(
        parts.method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    );
    let Some(agent) = agent.filter(|_| write) else {
        return handle(inner, parts, body);
    };
    let mut book = inner.book();
    if inner.is_partitioned(&parts.headers) {
        // Killed while this request was on its way.
        return partitioned();
    }
    let response = handle(inner, parts, body);
    if response.status().as_u16() < 400 && book.record(agent) {
        inner.cut_off_killed(agent);
    }
    response
}

/// What the fault rules know of a request to a resource.
struct Classified {
    verb: Verb,
    rt: ResourceType,
    name: Option<String>,
    sub: Option<&'static str>,
    resumes: Option<u64>,
}

impl Classified {
    fn facts<'a>(&'a self, agent: Option<&'a str>) -> RequestFacts<'a> {
        RequestFacts {
            verb: self.verb,
            resource: &self.rt.plural,
            subresource: self.sub,
            resumes: self.resumes.is_some(),
            agent,
        }
    }
}

/// The verb and resource of a request, if it addresses a resource.
fn classify(inner: &Arc<Inner>, method: &Method, path: &str, query: &Query) -> Option<Classified> {
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let route = match segs.as_slice() {
        ["api", v, rest @ ..] => route(inner, "", v, rest)?,
        ["apis", g, v, rest @ ..] => route(inner, g, v, rest)?,
        _ => return None,
    };
    let verb = match (method, route.name.is_some()) {
        (&Method::GET, true) => Verb::Get,
        (&Method::GET, false) if flag(query, "watch") => Verb::Watch,
        (&Method::GET, false) => Verb::List,
        (&Method::POST, _) => Verb::Create,
        (&Method::PUT, _) => Verb::Update,
        (&Method::PATCH, _) => Verb::Patch,
        (&Method::DELETE, _) => Verb::Delete,
        _ => return None,
    };
    let sub = match route.sub {
        Sub::None => None,
        Sub::Status => Some("status"),
        Sub::Scale => Some("scale"),
    };
    let resumes = query
        .get("resourceVersion")
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|v| *v > 0);
    Some(Classified {
        verb,
        rt: route.rt,
        name: route.name,
        sub,
        resumes,
    })
}

/// The answer a fault gives instead of handling the request; a write's is audited (it reached
/// the server).
fn injected(
    inner: &Arc<Inner>,
    parts: &http::request::Parts,
    query: &Query,
    body: &Bytes,
    fault: Fault,
    c: &Classified,
    watch: bool,
) -> Response<Body> {
    let response = match fault {
        Fault::Conflict => {
            let name = c.name.clone().unwrap_or_else(|| {
                serde_json::from_slice::<Value>(body)
                    .ok()
                    .and_then(|v| v["metadata"]["name"].as_str().map(String::from))
                    .unwrap_or_default()
            });
            error(&ApiError::conflict(&c.rt, &name))
        }
        Fault::TooManyRequests { retry_after } => {
            let seconds = whole_seconds(retry_after);
            let mut r = error(&ApiError::too_many_requests(seconds));
            r.headers_mut()
                .insert(http::header::RETRY_AFTER, http::HeaderValue::from(seconds));
            r
        }
        Fault::InternalError => error(&ApiError::internal_cause("etcdserver: leader changed")),
        Fault::GoneOnResume => {
            let compacted = inner.lock().rv;
            let gone = ApiError::gone(format!(
                "too old resource version: {} ({compacted})",
                c.resumes.unwrap_or_default()
            ));
            if watch {
                let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
                let _ = tx.send(watch::error_line(&gone));
                stream_response(rx)
            } else {
                error(&gone)
            }
        }
        Fault::Unavailable | Fault::Latency(_) | Fault::CutWatch { .. } | Fault::LostResponse => {
            error(&ApiError::unavailable(
                "the server is currently unable to handle the request",
            ))
        }
    };
    if c.verb.is_write() {
        audit(inner, parts, query, response.status().as_u16(), None);
    }
    response
}

/// A watch response whose stream is held back while the server is unresponsive, ends when
/// `cut` has passed (a dropped connection) and ends when `agent` is killed.
fn gate_watch(
    inner: Arc<Inner>,
    agent: Option<String>,
    cut: Option<Duration>,
    response: Response<Body>,
) -> Response<Body> {
    struct Gate {
        inner: Arc<Inner>,
        agent: Option<String>,
        net: tokio::sync::watch::Receiver<crate::faults::NetState>,
        cut: Option<(Duration, tokio::time::Instant)>,
        body: Body,
    }
    let (head, body) = response.into_parts();
    let gate = Gate {
        net: inner.net.subscribe(),
        cut: cut.map(|after| (after, tokio::time::Instant::now() + after)),
        inner,
        agent,
        body,
    };
    let stream = futures::stream::unfold(gate, |mut g| async move {
        loop {
            if g.agent.as_deref().is_some_and(|a| g.inner.is_killed(a)) {
                return None;
            }
            let unresponsive = g.net.borrow_and_update().unresponsive;
            let cut = g.cut;
            let deadline = async move {
                match cut {
                    Some((_, at)) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = deadline => {
                    if let Some((after, _)) = cut {
                        g.inner.injector().count(&Fault::CutWatch { after });
                    }
                    return None;
                }
                changed = g.net.changed() => {
                    if changed.is_err() {
                        return None;
                    }
                }
                frame = g.body.frame(), if !unresponsive => {
                    return match frame {
                        Some(Ok(f)) => Some((Ok::<_, Infallible>(f), g)),
                        _ => None,
                    };
                }
            }
        }
    });
    Response::from_parts(head, StreamBody::new(stream.boxed()).boxed_unsync())
}

fn answer(
    inner: &Arc<Inner>,
    method: &Method,
    path: &str,
    query: &Query,
    headers: &HeaderMap,
    body: &[u8],
    warnings: &Warnings,
) -> Result<Reply, ApiError> {
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let ok = |v: Value| Ok(Reply::Json(StatusCode::OK, v));
    let is_get = *method == Method::GET;
    match segs.as_slice() {
        ["version"] if is_get => ok(discovery::version()),
        ["healthz" | "livez" | "readyz"] if is_get => Ok(Reply::Json(StatusCode::OK, json!("ok"))),
        ["api"] if is_get => ok(discovery::api_versions()),
        ["apis"] if is_get => ok(discovery::api_group_list(&inner.lock().registry)),
        ["api", v] if is_get => discovery::resource_list(&inner.lock().registry, "", v)
            .map_or_else(|| Err(ApiError::no_route(path)), ok),
        ["apis", g] if is_get => discovery::api_group(&inner.lock().registry, g)
            .map_or_else(|| Err(ApiError::no_route(path)), ok),
        ["apis", g, v] if is_get => discovery::resource_list(&inner.lock().registry, g, v)
            .map_or_else(|| Err(ApiError::no_route(path)), ok),
        ["openapi", "v3"] if is_get => ok(discovery::openapi_index(&inner.lock().registry)),
        ["openapi", "v3", "api", v] if is_get => {
            discovery::openapi_group_version(&inner.lock().registry, "", v)
                .map_or_else(|| Err(ApiError::no_route(path)), ok)
        }
        ["openapi", "v3", "apis", g, v] if is_get => {
            discovery::openapi_group_version(&inner.lock().registry, g, v)
                .map_or_else(|| Err(ApiError::no_route(path)), ok)
        }
        ["api", v, rest @ ..] => {
            let route = route(inner, "", v, rest).ok_or_else(|| ApiError::no_route(path))?;
            dispatch(inner, method, query, headers, body, &route, warnings)
        }
        ["apis", g, v, rest @ ..] => {
            let route = route(inner, g, v, rest).ok_or_else(|| ApiError::no_route(path))?;
            dispatch(inner, method, query, headers, body, &route, warnings)
        }
        _ => Err(ApiError::no_route(path)),
    }
}

fn route(inner: &Arc<Inner>, group: &str, version: &str, rest: &[&str]) -> Option<Route> {
    let st = inner.lock();
    let lookup = |plural: &str| st.registry.get(group, version, plural).cloned();
    let (namespace, rt, tail) = match rest {
        ["namespaces", ns, plural, tail @ ..] if lookup(plural).is_some_and(|t| t.namespaced) => {
            (Some((*ns).to_string()), lookup(plural)?, tail)
        }
        [plural, tail @ ..] => (None, lookup(plural)?, tail),
        [] => return None,
    };
    let (name, sub) = match tail {
        [] => (None, Sub::None),
        [name] => (Some((*name).to_string()), Sub::None),
        [name, "status"] if rt.status_subresource => (Some((*name).to_string()), Sub::Status),
        [name, "scale"] if rt.scale.is_some() => (Some((*name).to_string()), Sub::Scale),
        _ => return None,
    };
    Some(Route {
        rt,
        namespace,
        name,
        sub,
    })
}

fn parse_json(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
}

/// Parses a create/update body: JSON or YAML; other encodings (protobuf, CBOR) get 415 so that
/// clients fall back to JSON.
fn parse_object(headers: &HeaderMap, body: &[u8]) -> Result<Value, ApiError> {
    let ct = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    let media = ct.split(';').next().unwrap_or_default().trim();
    match media {
        "" | "application/json" | "*/*" => parse_json(body),
        "application/yaml" => {
            let text = std::str::from_utf8(body)
                .map_err(|e| ApiError::bad_request(format!("invalid YAML body: {e}")))?;
            serde_saphyr::from_str(text)
                .map_err(|e| ApiError::bad_request(format!("invalid YAML body: {e}")))
        }
        "application/vnd.kubernetes.protobuf" => match crate::proto::decode(body) {
            Ok(Some(v)) => Ok(v),
            Ok(None) => Err(ApiError::unsupported_media_type(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml (protobuf only for Namespace, ConfigMap, Secret, ServiceAccount)",
            )),
            Err(e) => Err(ApiError::bad_request(format!("invalid protobuf body: {e}"))),
        },
        other => Err(ApiError::unsupported_media_type(format!(
            "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml (got {other})"
        ))),
    }
}

fn dry_run(query: &Query) -> Result<bool, ApiError> {
    match query.get("dryRun").map(String::as_str) {
        None | Some("") => Ok(false),
        Some("All") => Ok(true),
        Some(other) => Err(ApiError::bad_request(format!(
            "dryRun: Unsupported value: \"{other}\": supported values: \"All\""
        ))),
    }
}

/// The field manager of a non-apply write: `fieldManager`, else the User-Agent's program.
fn update_manager(query: &Query, headers: &HeaderMap) -> Result<String, ApiError> {
    if let Some(m) = query.get("fieldManager").filter(|m| !m.is_empty()) {
        if m.len() > 128 {
            return Err(ApiError::invalid_request(
                "fieldManager: Too long: may not be longer than 128",
            ));
        }
        return Ok(m.clone());
    }
    Ok(headers
        .get(http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .and_then(|ua| ua.split('/').next())
        .filter(|s| !s.is_empty())
        .unwrap_or("unknown")
        .to_string())
}

fn label_selector(query: &Query) -> Result<Selector, ApiError> {
    Selector::parse_labels(query.get("labelSelector").map_or("", String::as_str))
        .map_err(|e| ApiError::bad_request(e.to_string()))
}

/// Field labels the API server supports for a type, besides `metadata.name/namespace`.
fn field_label_ok(rt: &ResourceType, key: &str) -> bool {
    if matches!(key, "metadata.name" | "metadata.namespace") {
        return true;
    }
    match (rt.group.as_str(), rt.plural.as_str()) {
        ("", "pods") => matches!(
            key,
            "spec.nodeName"
                | "spec.restartPolicy"
                | "spec.schedulerName"
                | "spec.serviceAccountName"
                | "spec.hostNetwork"
                | "status.phase"
                | "status.podIP"
                | "status.nominatedNodeName"
        ),
        ("" | "events.k8s.io", "events") => {
            key.starts_with("involvedObject.")
                || matches!(
                    key,
                    "reason" | "reportingComponent" | "source" | "type" | "message"
                )
        }
        ("", "secrets") => key == "type",
        ("", "namespaces") => key == "status.phase",
        ("apps", "replicasets") => key == "status.replicas",
        _ => rt.selectable_fields.iter().any(|f| f == key),
    }
}

fn field_selector(rt: &ResourceType, query: &Query) -> Result<Selector, ApiError> {
    let raw = query.get("fieldSelector").map_or("", String::as_str);
    let raw = if rt.group == "events.k8s.io" {
        raw.replace("regarding.", "involvedObject.")
            .replace("reportingController", "reportingComponent")
    } else {
        raw.to_string()
    };
    let sel = Selector::parse_fields(&raw).map_err(|e| ApiError::bad_request(e.to_string()))?;
    if let Some(bad) = sel.keys().find(|k| !field_label_ok(rt, k)) {
        return Err(ApiError::bad_request(format!(
            "\"{bad}\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
        )));
    }
    Ok(sel)
}

/// The `fieldValidation` of a write.
fn field_validation(query: &Query) -> Result<FieldValidation, ApiError> {
    FieldValidation::parse(query.get("fieldValidation").map(String::as_str))
}

fn dispatch(
    inner: &Arc<Inner>,
    method: &Method,
    query: &Query,
    headers: &HeaderMap,
    body: &[u8],
    route: &Route,
    warnings: &Warnings,
) -> Result<Reply, ApiError> {
    let rt = &route.rt;
    if rt.namespaced && route.name.is_some() && route.namespace.is_none() {
        return Err(ApiError::not_found(
            rt,
            route.name.as_deref().unwrap_or_default(),
        ));
    }
    let ns = route.namespace.as_deref().unwrap_or_default();
    let now = inner.clock.stamp();
    let target = if route.sub == Sub::Status {
        Target::Status
    } else {
        Target::Main
    };
    match (method, route.name.as_deref()) {
        (&Method::GET, None) => {
            let labels = label_selector(query)?;
            let fields = field_selector(rt, query)?;
            let shape = shape(headers, query);
            if matches!(query.get("watch").map(String::as_str), Some("true" | "1")) {
                return start_watch(
                    inner,
                    rt,
                    route.namespace.clone(),
                    labels,
                    fields,
                    query,
                    shape,
                );
            }
            let reply = list(
                inner,
                rt,
                route.namespace.as_deref(),
                &labels,
                &fields,
                query,
            )?;
            let Reply::Json(code, list) = reply else {
                return Ok(reply);
            };
            let items = list["items"].as_array().cloned().unwrap_or_default();
            match shape {
                Shape::Object => Ok(Reply::Json(code, list)),
                Shape::Table(include) => {
                    let rv = list["metadata"]["resourceVersion"]
                        .as_str()
                        .unwrap_or_default();
                    let mut t = table::render(rt, &items, rv, include, inner.clock.now());
                    t["metadata"] = list["metadata"].clone();
                    Ok(Reply::Json(code, t))
                }
                Shape::Metadata => {
                    let items: Vec<Value> = items.iter().map(table::partial_metadata).collect();
                    Ok(Reply::Json(
                        code,
                        json!({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1",
                               "metadata": list["metadata"], "items": items}),
                    ))
                }
            }
        }
        (&Method::GET, Some(name)) => {
            let st = inner.lock();
            let obj = st
                .get(&type_key(rt), if rt.namespaced { ns } else { "" }, name)
                .ok_or_else(|| ApiError::not_found(rt, name))?;
            if route.sub == Sub::Scale {
                return Ok(Reply::Json(StatusCode::OK, scale_to_serve(rt, obj)?));
            }
            let shown = from_storage(rt, obj);
            let body = match shape(headers, query) {
                Shape::Object => shown,
                Shape::Metadata => table::partial_metadata(&shown),
                Shape::Table(include) => {
                    let rv = st.rv.to_string();
                    table::render(rt, &[shown], &rv, include, inner.clock.now())
                }
            };
            Ok(Reply::Json(StatusCode::OK, body))
        }
        (&Method::POST, None) => {
            if rt.namespaced && route.namespace.is_none() {
                return Err(ApiError::method_not_allowed(format!(
                    "POST on all {} needs a namespace in the path",
                    qualified(rt)
                )));
            }
            let obj = to_storage(rt, parse_object(headers, body)?);
            let manager = update_manager(query, headers)?;
            let ctx = WriteCtx {
                now: &now,
                dry_run: dry_run(query)?,
                manager: Some(&manager),
                validation: field_validation(query)?,
                warnings: Some(warnings),
            };
            let mut st = inner.lock();
            let created = write::create(&mut st, rt, ns, obj, &ctx)?;
            if !ctx.dry_run {
                after_create(inner, &mut st, rt, &created);
            }
            Ok(Reply::Json(StatusCode::CREATED, from_storage(rt, &created)))
        }
        (&Method::PUT, Some(name)) => {
            let body = parse_object(headers, body)?;
            let manager = update_manager(query, headers)?;
            let ctx = WriteCtx {
                now: &now,
                dry_run: dry_run(query)?,
                manager: Some(&manager),
                validation: field_validation(query)?,
                warnings: Some(warnings),
            };
            let mut st = inner.lock();
            if route.sub == Sub::Scale {
                return write_scale(inner, &mut st, rt, ns, name, &body, &ctx);
            }
            let updated = write::update(&mut st, rt, ns, name, to_storage(rt, body), target, &ctx)?;
            if !ctx.dry_run {
                after_update(inner, &mut st, rt, &updated);
            }
            Ok(Reply::Json(StatusCode::OK, from_storage(rt, &updated)))
        }
        (&Method::PATCH, Some(name)) => patch(
            inner, rt, ns, name, route.sub, query, headers, body, &now, warnings,
        ),
        (&Method::DELETE, Some(name)) => {
            let opts = delete_options(query, body)?;
            let ctx = WriteCtx {
                dry_run: dry_run(query)? || opts.1,
                ..WriteCtx::internal(&now)
            };
            let mut st = inner.lock();
            let deleted = write::delete(&mut st, rt, ns, name, &opts.0, &ctx)?;
            if !ctx.dry_run {
                after_delete(inner, rt, &deleted);
            }
            Ok(Reply::Json(StatusCode::OK, from_storage(rt, &deleted)))
        }
        (&Method::DELETE, None) => {
            let labels = label_selector(query)?;
            let fields = field_selector(rt, query)?;
            let opts = delete_options(query, body)?;
            let ctx = WriteCtx {
                dry_run: dry_run(query)? || opts.1,
                ..WriteCtx::internal(&now)
            };
            let mut st = inner.lock();
            let scope = if rt.namespaced {
                route.namespace.as_deref()
            } else {
                None
            };
            let names: Vec<(String, String)> = st
                .list(&type_key(rt), scope)
                .into_iter()
                .filter(|o| labels.matches_labels(o) && fields.matches_fields(o))
                .map(|o| {
                    (
                        o["metadata"]["namespace"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                        o["metadata"]["name"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                    )
                })
                .collect();
            let mut items = Vec::new();
            for (ons, oname) in names {
                if let Ok(d) = write::delete(&mut st, rt, &ons, &oname, &opts.0, &ctx) {
                    if !ctx.dry_run {
                        after_delete(inner, rt, &d);
                    }
                    items.push(from_storage(rt, &d));
                }
            }
            Ok(Reply::Json(
                StatusCode::OK,
                json!({"kind": format!("{}List", rt.kind), "apiVersion": rt.api_version(),
                       "metadata": {"resourceVersion": st.rv.to_string()}, "items": items}),
            ))
        }
        _ => Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({method})"
        ))),
    }
}

/// DeleteOptions from the body or query: the options and whether it is a dry run.
fn delete_options(query: &Query, body: &[u8]) -> Result<(DeleteOptions, bool), ApiError> {
    let options: Value = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        parse_json(body)?
    };
    let mut policy = options["propagationPolicy"]
        .as_str()
        .map(String::from)
        .or_else(|| query.get("propagationPolicy").cloned());
    let orphan_flag = options["orphanDependents"]
        .as_bool()
        .or_else(|| query.get("orphanDependents").map(|v| v == "true"));
    if policy.is_none() && orphan_flag == Some(true) {
        policy = Some("Orphan".into());
    }
    let propagation = Propagation::parse(policy.as_deref()).map_err(ApiError::bad_request)?;
    let dry = options["dryRun"]
        .as_array()
        .is_some_and(|d| d.iter().any(|x| x == "All"));
    Ok((
        DeleteOptions {
            propagation,
            uid: options["preconditions"]["uid"].as_str().map(String::from),
            resource_version: options["preconditions"]["resourceVersion"]
                .as_str()
                .map(String::from),
        },
        dry,
    ))
}

#[allow(clippy::too_many_arguments)]
fn patch(
    inner: &Arc<Inner>,
    rt: &ResourceType,
    ns: &str,
    name: &str,
    sub: Sub,
    query: &Query,
    headers: &HeaderMap,
    body: &[u8],
    now: &str,
    warnings: &Warnings,
) -> Result<Reply, ApiError> {
    let ct = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let accepted = "accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml";
    let kind = PatchKind::from_content_type(ct).ok_or_else(|| {
        ApiError::unsupported_media_type(format!(
            "the body of the request was in an unknown format - {accepted}"
        ))
    })?;
    if kind == PatchKind::Strategic && rt.is_custom() {
        return Err(ApiError::unsupported_media_type(format!(
            "the body of the request was in an unknown format - {accepted}"
        )));
    }
    let mut patch_body =
        patch::parse_body(kind, body).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let dry = dry_run(query)?;
    let validation = field_validation(query)?;
    let target = if sub == Sub::Status {
        Target::Status
    } else {
        Target::Main
    };
    let mut st = inner.lock();
    let scope_ns = if rt.namespaced { ns } else { "" };
    let current = st
        .get(&type_key(rt), scope_ns, name)
        .map(|o| from_storage(rt, o));
    if kind == PatchKind::Apply {
        let manager = query
            .get("fieldManager")
            .filter(|m| !m.is_empty())
            .cloned()
            .ok_or_else(|| {
                ApiError::bad_request(
                    "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
                )
            })?;
        let force = query.get("force").is_some_and(|f| f == "true" || f == "1");
        if sub == Sub::Scale {
            return Err(ApiError::method_not_allowed(
                "apply is not supported on /scale",
            ));
        }
        check_apply_config(rt, name, &patch_body)?;
        // The configuration is decoded before it is applied: its unknown fields are judged
        // (and dropped) before any conflict.
        let unknown = crate::decode::unknown_fields(rt, &to_storage(rt, patch_body.clone()));
        crate::decode::judge(rt, &unknown, validation, Some(warnings))?;
        for path in &unknown {
            crate::schema::remove_at(&mut patch_body, path);
        }
        let req = ApplyRequest {
            manager: &manager,
            force,
            lists: write::lists(rt),
            part: write::part(rt, target),
            api_version: &rt.api_version(),
            now,
        };
        let ctx = WriteCtx {
            now,
            dry_run: dry,
            manager: None,
            validation,
            warnings: Some(warnings),
        };
        return match current {
            None if sub == Sub::Status => Err(ApiError::not_found(rt, name)),
            None => {
                let mut obj = apply::server_side_apply(&json!({}), &patch_body, &req)
                    .map_err(|c| apply_conflict(rt, name, &c))?;
                obj["metadata"]["name"] = json!(name);
                obj["apiVersion"] = json!(rt.api_version());
                obj["kind"] = json!(rt.kind);
                let created = write::create(&mut st, rt, ns, to_storage(rt, obj), &ctx)?;
                if !dry {
                    after_create(inner, &mut st, rt, &created);
                }
                Ok(Reply::Json(StatusCode::CREATED, from_storage(rt, &created)))
            }
            Some(live) => {
                let obj = apply::server_side_apply(&live, &patch_body, &req)
                    .map_err(|c| apply_conflict(rt, name, &c))?;
                let updated =
                    write::update(&mut st, rt, ns, name, to_storage(rt, obj), target, &ctx)?;
                if !dry {
                    after_update(inner, &mut st, rt, &updated);
                }
                Ok(Reply::Json(StatusCode::OK, from_storage(rt, &updated)))
            }
        };
    }
    let Some(mut obj) = current else {
        return Err(ApiError::not_found(rt, name));
    };
    let manager = update_manager(query, headers)?;
    let ctx = WriteCtx {
        now,
        dry_run: dry,
        manager: Some(&manager),
        validation,
        warnings: Some(warnings),
    };
    if sub == Sub::Scale {
        let mut scale = scale_of(
            rt,
            st.get(&type_key(rt), scope_ns, name)
                .unwrap_or(&Value::Null),
        );
        patch::apply(kind, &mut scale, &patch_body).map_err(|e| patch_error(rt, name, &e))?;
        return write_scale(inner, &mut st, rt, ns, name, &scale, &ctx);
    }
    patch::apply(kind, &mut obj, &patch_body).map_err(|e| patch_error(rt, name, &e))?;
    let updated = write::update(&mut st, rt, ns, name, to_storage(rt, obj), target, &ctx)?;
    if !dry {
        after_update(inner, &mut st, rt, &updated);
    }
    Ok(Reply::Json(StatusCode::OK, from_storage(rt, &updated)))
}

fn patch_error(rt: &ResourceType, name: &str, e: &patch::PatchError) -> ApiError {
    match e {
        patch::PatchError::Body(m) => ApiError::bad_request(m.clone()),
        patch::PatchError::Apply(m) => ApiError::invalid(rt, name, "patch", m),
    }
}

fn check_apply_config(rt: &ResourceType, name: &str, config: &Value) -> Result<(), ApiError> {
    if !config.is_object() {
        return Err(ApiError::bad_request(
            "an apply configuration must be an object",
        ));
    }
    let (Some(av), Some(kind)) = (config["apiVersion"].as_str(), config["kind"].as_str()) else {
        return Err(ApiError::bad_request(
            "error decoding YAML: Object 'Kind' or 'apiVersion' is missing",
        ));
    };
    if kind != rt.kind || av.rsplit_once('/').map_or("", |(g, _)| g) != rt.group {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({av}) does not match the expected API version ({})",
            rt.api_version()
        )));
    }
    if !config["metadata"].is_null() && !config["metadata"].is_object() {
        return Err(ApiError::bad_request("metadata must be an object"));
    }
    if let Some(n) = config["metadata"]["name"].as_str()
        && n != name
    {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({n}) does not match the name on the URL ({name})"
        )));
    }
    Ok(())
}

fn apply_conflict(rt: &ResourceType, name: &str, c: &apply::Conflicts) -> ApiError {
    let mut e = ApiError::conflict_because(rt, name, "");
    e.message = c.message();
    e.details["causes"] = Value::Array(
        c.0.iter()
            .map(|(m, f)| {
                json!({"reason": "FieldManagerConflict",
                       "message": format!("conflict with \"{m}\""), "field": f})
            })
            .collect(),
    );
    e
}

fn json_path<'a>(obj: &'a Value, path: &str) -> &'a Value {
    path.split('.')
        .filter(|p| !p.is_empty())
        .fold(obj, |v, p| &v[p])
}

/// What a Scale's `spec.replicas` holds when the object has no value at the spec replicas
/// path (the API server's marker: an update that leaves it there is refused).
const NO_SPEC_REPLICAS: i64 = i32::MIN as i64;

/// The `autoscaling/v1` Scale of an object, as the API server serves it: `spec.replicas` from
/// the spec replicas path ([`NO_SPEC_REPLICAS`] when it holds nothing: a custom resource's GET
/// then fails), `status.replicas` from the status replicas path (0 when it holds nothing) and
/// `status.selector` from the label selector path of a custom resource (left out when there is
/// none or it holds nothing), or a built-in object's `spec.selector` in string form. Zero
/// `spec.replicas` and an empty selector are left out (`omitempty` in `autoscaling/v1`).
fn scale_of(rt: &ResourceType, obj: &Value) -> Value {
    let Some(spec) = &rt.scale else {
        return Value::Null;
    };
    let selector = if rt.is_custom() {
        spec.label_selector_path
            .as_deref()
            .and_then(|p| json_path(obj, p).as_str())
            .map(String::from)
    } else {
        Some(crate::selector::from_label_selector(&obj["spec"]["selector"]).to_string())
    };
    let replicas = json_path(obj, &spec.spec_replicas_path)
        .as_i64()
        .unwrap_or(NO_SPEC_REPLICAS);
    let m = &obj["metadata"];
    let mut scale = json!({
        "kind": "Scale", "apiVersion": "autoscaling/v1",
        "metadata": {"name": m["name"], "namespace": m["namespace"], "uid": m["uid"],
                     "resourceVersion": m["resourceVersion"], "creationTimestamp": m["creationTimestamp"]},
        "spec": {},
        "status": {"replicas": json_path(obj, &spec.status_replicas_path).as_i64().unwrap_or(0)},
    });
    if replicas != 0 {
        scale["spec"]["replicas"] = json!(replicas);
    }
    if let Some(s) = selector.filter(|s| !s.is_empty()) {
        scale["status"]["selector"] = json!(s);
    }
    scale
}

/// The Scale a GET of `/scale` returns: a custom resource without a value at its spec
/// replicas path has none (500, as the API server answers).
fn scale_to_serve(rt: &ResourceType, obj: &Value) -> Result<Value, ApiError> {
    let scale = scale_of(rt, obj);
    if scale["spec"]["replicas"].as_i64() == Some(NO_SPEC_REPLICAS) {
        let path = rt
            .scale
            .as_ref()
            .map_or("", |s| s.spec_replicas_path.as_str());
        return Err(ApiError::internal_cause(&format!(
            "the spec replicas field \"{path}\" does not exist"
        )));
    }
    Ok(scale)
}

fn write_scale(
    inner: &Arc<Inner>,
    st: &mut Store,
    rt: &ResourceType,
    ns: &str,
    name: &str,
    scale: &Value,
    ctx: &WriteCtx<'_>,
) -> Result<Reply, ApiError> {
    let scope_ns = if rt.namespaced { ns } else { "" };
    let Some(mut obj) = st.get(&type_key(rt), scope_ns, name).cloned() else {
        return Err(ApiError::not_found(rt, name));
    };
    let Some(spec) = rt.scale.clone() else {
        return Err(ApiError::no_route("scale"));
    };
    if let Some(named) = scale["metadata"]["name"].as_str()
        && named != name
    {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({named}) does not match the name on the URL ({name})"
        )));
    }
    // `spec.replicas` is `omitempty`: a Scale without it asks for 0, unless it still holds
    // the marker of an object that had no value there (a patch that did not set one).
    let replicas = match &scale["spec"]["replicas"] {
        Value::Null => 0,
        v => v.as_i64().unwrap_or(-1),
    };
    if replicas == NO_SPEC_REPLICAS {
        return Err(ApiError::bad_request(format!(
            "the spec replicas field \"{}\" cannot be empty",
            spec.spec_replicas_path
        )));
    }
    if !(0..=i64::from(i32::MAX)).contains(&replicas) {
        return Err(ApiError::invalid(
            rt,
            name,
            "spec.replicas",
            "Invalid value: must be a non-negative integer",
        ));
    }
    if let Some(rv) = scale["metadata"]["resourceVersion"].as_str()
        && !rv.is_empty()
        && Some(rv) != obj["metadata"]["resourceVersion"].as_str()
    {
        return Err(ApiError::conflict(rt, name));
    }
    let parts: Vec<&str> = spec
        .spec_replicas_path
        .split('.')
        .filter(|p| !p.is_empty())
        .collect();
    let mut cur = &mut obj;
    for p in &parts {
        if !(cur.is_object() || cur.is_null()) {
            return Err(ApiError::invalid(
                rt,
                name,
                &spec.spec_replicas_path,
                "Invalid value: not an object path",
            ));
        }
        cur = &mut cur[*p];
    }
    *cur = json!(replicas);
    if let Some(m) = obj["metadata"].as_object_mut() {
        m.remove("resourceVersion");
    }
    let updated = write::update(st, rt, ns, name, obj, Target::Main, ctx)?;
    if !ctx.dry_run {
        after_update(inner, st, rt, &updated);
    }
    Ok(Reply::Json(StatusCode::OK, scale_of(rt, &updated)))
}

fn list(
    inner: &Arc<Inner>,
    rt: &ResourceType,
    ns: Option<&str>,
    labels: &Selector,
    fields: &Selector,
    query: &Query,
) -> Result<Reply, ApiError> {
    let st = inner.lock();
    let ns = if rt.namespaced { ns } else { None };
    let after = match query.get("continue").filter(|c| !c.is_empty()) {
        Some(token) => Some(
            token
                .split_once('/')
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .ok_or_else(|| {
                    ApiError::bad_request(format!("invalid continue token {token:?}"))
                })?,
        ),
        None => None,
    };
    let limit: usize = match query.get("limit").filter(|l| !l.is_empty()) {
        Some(l) => l
            .parse()
            .map_err(|_| ApiError::bad_request(format!("invalid limit {l:?}")))?,
        None => 0,
    };
    let limit = if limit == 0 { usize::MAX } else { limit };
    let matching = st.list(&type_key(rt), ns).into_iter().filter(|o| {
        let key = (
            o["metadata"]["namespace"].as_str().unwrap_or_default(),
            o["metadata"]["name"].as_str().unwrap_or_default(),
        );
        after
            .as_ref()
            .is_none_or(|(a, b)| (key.0, key.1) > (a.as_str(), b.as_str()))
            && labels.matches_labels(o)
            && fields.matches_fields(o)
    });
    let mut items = Vec::new();
    let mut remaining = 0usize;
    for o in matching {
        if items.len() < limit {
            items.push(from_storage(rt, o));
        } else {
            remaining += 1;
        }
    }
    let mut metadata = json!({"resourceVersion": st.rv.to_string()});
    if remaining > 0
        && let Some(last) = items.last()
    {
        metadata["continue"] = json!(format!(
            "{}/{}",
            last["metadata"]["namespace"].as_str().unwrap_or_default(),
            last["metadata"]["name"].as_str().unwrap_or_default()
        ));
        metadata["remainingItemCount"] = json!(remaining);
    }
    Ok(Reply::Json(
        StatusCode::OK,
        json!({"kind": format!("{}List", rt.kind), "apiVersion": rt.api_version(),
               "metadata": metadata, "items": items}),
    ))
}

/// How the request wants objects shown (`Accept`).
fn shape(headers: &HeaderMap, query: &Query) -> Shape {
    let accept = headers
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    Shape::from_accept(accept, query.get("includeObject").map(String::as_str))
}

fn start_watch(
    inner: &Arc<Inner>,
    rt: &ResourceType,
    namespace: Option<String>,
    labels: Selector,
    fields: Selector,
    query: &Query,
    shape: Shape,
) -> Result<Reply, ApiError> {
    let from = match query.get("resourceVersion").map(String::as_str) {
        None | Some("" | "0") => None,
        Some(v) => Some(
            v.parse()
                .map_err(|_| ApiError::bad_request(format!("invalid resourceVersion {v:?}")))?,
        ),
    };
    let initial_events = flag(query, "sendInitialEvents");
    if initial_events
        && query.get("resourceVersionMatch").map(String::as_str) != Some("NotOlderThan")
    {
        return Err(ApiError::invalid_request(
            "resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
        ));
    }
    let timeout = query
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .filter(|t| *t > 0)
        .map_or(Duration::from_secs(1800), |t| {
            Duration::from_secs(t.min(86_400))
        });
    let req = WatchRequest {
        namespace,
        labels,
        fields,
        from,
        bookmarks: flag(query, "allowWatchBookmarks"),
        initial_events,
        timeout,
        shape,
    };
    Ok(Reply::Stream(watch::start(inner, rt, req)))
}

/// Work the cluster does after an object was created through the API.
fn after_create(inner: &Arc<Inner>, st: &mut Store, rt: &ResourceType, obj: &Value) {
    let (ns, name) = ns_name(obj);
    if gc::is_orphaned(st, obj) {
        let key = (type_key(rt), ns.clone(), name.clone());
        let inner = inner.clone();
        // The garbage collector notices a little later.
        tokio::spawn(async move {
            tokio::task::yield_now().await;
            let now = inner.clock.stamp();
            let mut st = inner.lock();
            gc::delete(&mut st, &key, Propagation::Background, &now);
        });
    }
    match (rt.group.as_str(), rt.plural.as_str()) {
        ("apiextensions.k8s.io", "customresourcedefinitions") => st.registry.register_crd(obj),
        ("apps", "replicasets") => replicaset::reconcile(inner, st, &ns, &name),
        ("", "pods") => {
            kubelet::start_pod(inner, st, &ns, &name);
            pod_changed(inner, obj);
        }
        _ => {}
    }
}

/// Work the cluster does after an object was updated through the API.
fn after_update(inner: &Arc<Inner>, st: &mut Store, rt: &ResourceType, obj: &Value) {
    let (ns, name) = ns_name(obj);
    match (rt.group.as_str(), rt.plural.as_str()) {
        ("apiextensions.k8s.io", "customresourcedefinitions") => {
            let still = st.get(&type_key(rt), "", &name).is_some();
            if still {
                st.registry.register_crd(obj);
            }
        }
        ("apps", "replicasets") => replicaset::reconcile(inner, st, &ns, &name),
        ("", "pods") => pod_changed(inner, obj),
        _ => {}
    }
}

/// Work the cluster does after an object was deleted (or marked) through the API.
fn after_delete(inner: &Arc<Inner>, rt: &ResourceType, obj: &Value) {
    if (rt.group.as_str(), rt.plural.as_str()) == ("", "pods") {
        pod_changed(inner, obj);
    }
}

/// A pod changed through the API: its ReplicaSet syncs (once for all the pods one request
/// changes, a collection delete say).
fn pod_changed(inner: &Arc<Inner>, pod: &Value) {
    let (ns, _) = ns_name(pod);
    let owner = pod["metadata"]["ownerReferences"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|o| o["kind"] == "ReplicaSet" && o["controller"].as_bool() == Some(true))
        .and_then(|o| o["name"].as_str())
        .map(String::from);
    if let Some(rs) = owner {
        replicaset::enqueue(inner, &ns, &rs);
    }
}

fn ns_name(obj: &Value) -> (String, String) {
    (
        obj["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        obj["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}
