//! Managed routes on a Gateway API HTTPRoute: Argo Rollouts' `trafficRouting.managedRoutes`
//! with the `setHeaderRoute` and `setMirrorRoute` canary steps ("Traffic routing with managed
//! routes and route precedence" in Argo Rollouts' traffic management documentation).
//!
//! The engine decides which managed routes the release wants ([`ManagedRule`], typed); this
//! module turns one into the HTTPRoute rule that carries it, named after the route (the
//! Gateway API rule `name`), relative to the route's main rule (the first rule whose backends
//! are both the canary and the stable Service):
//!
//! - a header route copies the main rule's matches, each with one of the header conditions
//!   added (a request matching any of them goes to the canary), its filters, and has the
//!   canary Service as its only backend;
//! - a mirror route has the step's request conditions (a condition without a path takes the
//!   main rule's paths, so the mirror never captures what the main rule does not route), the
//!   stable Service as its only backend and a `RequestMirror` filter to the canary Service.
//!
//! Managed rules come first, in the order of `managedRoutes` (Gateway API gives the first
//! matching rule precedence among equally specific ones); the route's other rules are never
//! touched. [`write`] is what the controller applies (and the engine's test world too), and
//! [`in_sync`] is what the engine compares, with the defaults an API server fills in applied
//! to both sides.

use serde_json::{Map, Value, json};

use crate::observed::ObservedRoute;

/// Gateway API limit of matches in one rule.
pub const MAX_MATCHES: usize = 64;
/// Gateway API limit of header conditions in one match.
pub const MAX_HEADERS: usize = 16;

/// How a string (header value, path, method) matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StringMatch {
    /// Exactly this value.
    Exact(String),
    /// Values starting with this.
    Prefix(String),
    /// Values matching this regular expression.
    Regex(String),
}

/// One header condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderMatch {
    /// Header name.
    pub name: String,
    /// How its value matches.
    pub value: StringMatch,
}

/// One request condition of a mirror route: every part set must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestMatch {
    /// HTTP method (exact).
    pub method: Option<String>,
    /// Path.
    pub path: Option<StringMatch>,
    /// Header conditions.
    pub headers: Vec<HeaderMatch>,
}

/// What a managed route does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteKind {
    /// `setHeaderRoute`: requests matching any of the header conditions go to the canary.
    Header(Vec<HeaderMatch>),
    /// `setMirrorRoute`: `percent` of the requests matching any condition (all when `None`)
    /// are copied to the canary.
    Mirror {
        /// Percentage mirrored.
        percent: Option<i32>,
        /// Request conditions.
        matches: Vec<RequestMatch>,
    },
}

/// A managed route the release wants on the HTTPRoute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedRule {
    /// Its name (from `managedRoutes`): the rule's `name`.
    pub name: String,
    /// What it does.
    pub kind: RouteKind,
}

/// Why a managed route cannot be written as an HTTPRoute rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// No rule of the route has both Services as backends.
    #[error("the HTTPRoute has no rule with backendRefs to both \"{canary}\" and \"{stable}\"")]
    NoMainRule {
        /// Canary Service.
        canary: String,
        /// Stable Service.
        stable: String,
    },
    /// The rule would have more matches than the Gateway API allows.
    #[error(
        "the rule would have {count} matches (the main rule's matches times the conditions), \
         at most {MAX_MATCHES} expected"
    )]
    TooManyMatches {
        /// Matches it would have.
        count: usize,
    },
    /// A match of the rule would have more header conditions than the Gateway API allows.
    #[error(
        "a match of the rule would have {count} header conditions, at most {MAX_HEADERS} expected"
    )]
    TooManyHeaders {
        /// Header conditions it would have.
        count: usize,
    },
    /// Every condition contradicts the main rule's method: the rule would match nothing.
    #[error(
        "every condition names another method than the main rule's: the rule would match nothing"
    )]
    MatchesNothing,
}

/// The rules of an HTTPRoute (`spec.rules`) as JSON.
fn rule_name(rule: &Value) -> Option<&str> {
    rule.get("name").and_then(Value::as_str)
}

fn backend_named<'a>(rule: &'a Value, service: &str) -> Option<&'a Value> {
    rule.get("backendRefs")
        .and_then(Value::as_array)?
        .iter()
        .find(|b| {
            b.get("name").and_then(Value::as_str) == Some(service)
                && b.get("kind")
                    .and_then(Value::as_str)
                    .is_none_or(|k| k == "Service")
                && b.get("group")
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
        })
}

/// The main rule: the first rule (not a managed one) whose backends are both Services.
pub fn main_rule<'a>(
    rules: &'a [Value],
    canary: &str,
    stable: &str,
    managed: &[String],
) -> Option<&'a Value> {
    rules.iter().find(|r| {
        rule_name(r).is_none_or(|n| !managed.iter().any(|m| m == n))
            && backend_named(r, canary).is_some()
            && backend_named(r, stable).is_some()
    })
}

/// A backend reference copied from the main rule, without its weight (the only backend).
fn sole_backend(main: &Value, service: &str) -> Value {
    let mut b = backend_named(main, service)
        .cloned()
        .unwrap_or_else(|| json!({ "name": service }));
    if let Some(o) = b.as_object_mut() {
        o.remove("weight");
    }
    b
}

/// The main rule's matches (the Gateway API default, everything under `/`, when it has none).
fn main_matches(main: &Value) -> Vec<Value> {
    match main.get("matches").and_then(Value::as_array) {
        Some(m) if !m.is_empty() => m.clone(),
        _ => vec![json!({})],
    }
}

/// Characters with a meaning in a regular expression (RE2 and PCRE alike).
fn escape_regex(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A Gateway API header (or query) condition: `Exact` or `RegularExpression` (a prefix is a
/// regular expression: the Gateway API has no prefix type for headers).
fn header_json(h: &HeaderMatch) -> Value {
    let (kind, value) = match &h.value {
        StringMatch::Exact(v) => ("Exact", v.clone()),
        StringMatch::Prefix(p) => ("RegularExpression", format!("^{}.*", escape_regex(p))),
        StringMatch::Regex(r) => ("RegularExpression", r.clone()),
    };
    json!({ "name": h.name, "type": kind, "value": value })
}

fn path_json(p: &StringMatch) -> Value {
    let (kind, value) = match p {
        StringMatch::Exact(v) => ("Exact", v),
        StringMatch::Prefix(v) => ("PathPrefix", v),
        StringMatch::Regex(v) => ("RegularExpression", v),
    };
    json!({ "type": kind, "value": value })
}

fn push_headers(m: &mut Value, headers: impl IntoIterator<Item = Value>) -> usize {
    let Some(o) = m.as_object_mut() else {
        return 0;
    };
    let list = o
        .entry("headers")
        .or_insert_with(|| Value::Array(Vec::new()));
    if !list.is_array() {
        *list = Value::Array(Vec::new());
    }
    let Some(list) = list.as_array_mut() else {
        return 0;
    };
    list.extend(headers);
    list.len()
}

/// The HTTPRoute rule that carries `rule`, relative to the route's main rule.
pub fn render(
    rule: &ManagedRule,
    main: &Value,
    canary: &str,
    stable: &str,
) -> Result<Value, RenderError> {
    let mains = main_matches(main);
    let mut matches = Vec::new();
    let mut headers_max = 0;
    let mut out = Map::new();
    out.insert("name".into(), json!(rule.name));
    match &rule.kind {
        RouteKind::Header(conditions) => {
            // A request with any of the headers goes to the canary ("Custom-Header1 ... or
            // Custom-Header2" in Argo Rollouts' example): one match per condition.
            for m in &mains {
                for h in conditions {
                    let mut m = m.clone();
                    headers_max = headers_max.max(push_headers(&mut m, [header_json(h)]));
                    matches.push(m);
                }
            }
            let filters = main.get("filters").cloned();
            out.insert("matches".into(), Value::Array(matches));
            if let Some(f) = filters.filter(|f| f.as_array().is_some_and(|a| !a.is_empty())) {
                out.insert("filters".into(), f);
            }
            out.insert(
                "backendRefs".into(),
                Value::Array(vec![sole_backend(main, canary)]),
            );
        }
        RouteKind::Mirror {
            percent,
            matches: conditions,
        } => {
            for c in conditions {
                for m in &mains {
                    let mut m = m.clone();
                    if let Some(method) = &c.method {
                        match m.get("method").and_then(Value::as_str) {
                            Some(own) if own != method => continue,
                            _ => m["method"] = json!(method),
                        }
                    }
                    if let Some(p) = &c.path {
                        m["path"] = path_json(p);
                    }
                    headers_max =
                        headers_max.max(push_headers(&mut m, c.headers.iter().map(header_json)));
                    matches.push(m);
                }
            }
            if matches.is_empty() {
                return Err(RenderError::MatchesNothing);
            }
            let mut filters: Vec<Value> = main
                .get("filters")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let mut target = sole_backend(main, canary);
            if let Some(o) = target.as_object_mut() {
                o.remove("filters");
            }
            let mut mirror = json!({ "backendRef": target });
            if let Some(p) = percent {
                mirror["percent"] = json!(p);
            }
            filters.push(json!({ "type": "RequestMirror", "requestMirror": mirror }));
            out.insert("matches".into(), Value::Array(matches));
            out.insert("filters".into(), Value::Array(filters));
            out.insert(
                "backendRefs".into(),
                Value::Array(vec![sole_backend(main, stable)]),
            );
        }
    }
    let count = out
        .get("matches")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    if count > MAX_MATCHES {
        return Err(RenderError::TooManyMatches { count });
    }
    if headers_max > MAX_HEADERS {
        return Err(RenderError::TooManyHeaders { count: headers_max });
    }
    Ok(normalize(&Value::Object(out)))
}

/// A backend reference with the API server's defaults (`group: ""`, `kind: Service`, and
/// `weight: 1` where weights apply).
fn normalize_backend(b: &mut Value, weighted: bool) {
    let Some(o) = b.as_object_mut() else {
        return;
    };
    o.entry("group").or_insert_with(|| json!(""));
    o.entry("kind").or_insert_with(|| json!("Service"));
    if weighted {
        o.entry("weight").or_insert_with(|| json!(1));
    }
    if let Some(filters) = o.get_mut("filters").and_then(Value::as_array_mut) {
        filters.iter_mut().for_each(normalize_filter);
    }
}

fn normalize_filter(f: &mut Value) {
    if let Some(b) = f.pointer_mut("/requestMirror/backendRef") {
        normalize_backend(b, false);
    }
}

fn normalize_conditions(list: Option<&mut Value>) {
    if let Some(list) = list.and_then(Value::as_array_mut) {
        for h in list.iter_mut().filter_map(Value::as_object_mut) {
            h.entry("type").or_insert_with(|| json!("Exact"));
        }
    }
}

/// A rule with the defaults the Gateway API CRD gives an HTTPRoute applied (match path
/// `PathPrefix /`, header and query types `Exact`, backend group, kind and weight), so that
/// what was written and what an API server stored compare equal.
pub fn normalize(rule: &Value) -> Value {
    let mut r = rule.clone();
    let Some(o) = r.as_object_mut() else {
        return r;
    };
    let matches = o
        .entry("matches")
        .or_insert_with(|| Value::Array(Vec::new()));
    if matches.as_array().is_some_and(Vec::is_empty) {
        *matches = json!([{}]);
    }
    if let Some(list) = matches.as_array_mut() {
        for m in list.iter_mut() {
            let Some(mo) = m.as_object_mut() else {
                continue;
            };
            let path = mo
                .entry("path")
                .or_insert_with(|| json!({ "type": "PathPrefix", "value": "/" }));
            if let Some(p) = path.as_object_mut() {
                p.entry("type").or_insert_with(|| json!("PathPrefix"));
                p.entry("value").or_insert_with(|| json!("/"));
            }
            normalize_conditions(mo.get_mut("headers"));
            normalize_conditions(mo.get_mut("queryParams"));
            if mo
                .get("headers")
                .and_then(Value::as_array)
                .is_some_and(Vec::is_empty)
            {
                mo.remove("headers");
            }
        }
    }
    if let Some(filters) = o.get_mut("filters").and_then(Value::as_array_mut) {
        filters.iter_mut().for_each(normalize_filter);
    }
    if o.get("filters")
        .and_then(Value::as_array)
        .is_some_and(Vec::is_empty)
    {
        o.remove("filters");
    }
    if let Some(refs) = o.get_mut("backendRefs").and_then(Value::as_array_mut) {
        for b in refs.iter_mut() {
            normalize_backend(b, true);
        }
    }
    r
}

/// The rules of `rules` once the managed routes are `desired`: every rule named after one of
/// `managed` is removed and `desired`, rendered against the main rule, put first in order.
/// A desired route that cannot be rendered (the main rule is gone) is left out: the engine
/// reports that on its next reconcile. The other rules are kept as they are.
pub fn write(
    rules: &[Value],
    desired: &[ManagedRule],
    managed: &[String],
    canary: &str,
    stable: &str,
) -> Vec<Value> {
    let main = main_rule(rules, canary, stable, managed);
    let mut out: Vec<Value> = desired
        .iter()
        .filter_map(|d| main.and_then(|m| render(d, m, canary, stable).ok()))
        .collect();
    out.extend(
        rules
            .iter()
            .filter(|r| rule_name(r).is_none_or(|n| !managed.iter().any(|m| m == n)))
            .cloned(),
    );
    out
}

/// Names of the managed rules the route has now, in its order.
pub fn present(route: &ObservedRoute, managed: &[String]) -> Vec<String> {
    route
        .spec_rules
        .iter()
        .filter_map(rule_name)
        .filter(|n| managed.iter().any(|m| m == n))
        .map(str::to_string)
        .collect()
}

/// True when the route already has exactly the `desired` managed rules, first and in order
/// (nothing for [`write`] to change).
pub fn in_sync(
    route: &ObservedRoute,
    desired: &[ManagedRule],
    managed: &[String],
    canary: &str,
    stable: &str,
) -> bool {
    let rules = &route.spec_rules;
    let written = write(rules, desired, managed, canary, stable);
    written.len() == rules.len()
        && written
            .iter()
            .zip(rules)
            .all(|(w, r)| normalize(w) == normalize(r))
}

/// Sets the weights of the canary and stable backends in every rule whose backends are both
/// (the managed rules, with one of them only, are left alone): the stable one gets
/// `100 - canary_weight`.
pub fn set_weights(rules: &mut [Value], canary: &str, stable: &str, canary_weight: i32) {
    for rule in rules {
        if backend_named(rule, canary).is_none() || backend_named(rule, stable).is_none() {
            continue;
        }
        let Some(refs) = rule.get_mut("backendRefs").and_then(Value::as_array_mut) else {
            continue;
        };
        for b in refs {
            let weight = match b.get("name").and_then(Value::as_str) {
                Some(n) if n == canary => canary_weight,
                Some(n) if n == stable => 100 - canary_weight,
                _ => continue,
            };
            b["weight"] = json!(weight);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn main() -> Value {
        json!({
            "matches": [{"path": {"type": "PathPrefix", "value": "/api"}}],
            "backendRefs": [
                {"name": "stable", "port": 80, "weight": 90},
                {"name": "canary", "port": 80, "weight": 10},
            ],
        })
    }

    #[test]
    fn a_header_route_adds_each_condition_to_the_main_rules_matches() {
        let rule = ManagedRule {
            name: "h".into(),
            kind: RouteKind::Header(vec![
                HeaderMatch {
                    name: "X-Canary".into(),
                    value: StringMatch::Exact("yes".into()),
                },
                HeaderMatch {
                    name: "User-Agent".into(),
                    value: StringMatch::Prefix("Moz.".into()),
                },
            ]),
        };
        let r = render(&rule, &main(), "canary", "stable").expect("renders");
        assert_eq!(r["name"], "h");
        assert_eq!(r["matches"].as_array().map(Vec::len), Some(2));
        assert_eq!(r["matches"][0]["path"]["value"], "/api");
        assert_eq!(r["matches"][0]["headers"][0]["value"], "yes");
        assert_eq!(r["matches"][1]["headers"][0]["type"], "RegularExpression");
        assert_eq!(r["matches"][1]["headers"][0]["value"], "^Moz\\..*");
        assert_eq!(
            r["backendRefs"],
            json!([{"name": "canary", "port": 80, "group": "", "kind": "Service", "weight": 1}])
        );
    }

    #[test]
    fn a_mirror_route_sends_to_stable_and_mirrors_to_canary() {
        let rule = ManagedRule {
            name: "m".into(),
            kind: RouteKind::Mirror {
                percent: Some(35),
                matches: vec![RequestMatch {
                    method: Some("GET".into()),
                    ..Default::default()
                }],
            },
        };
        let r = render(&rule, &main(), "canary", "stable").expect("renders");
        assert_eq!(r["matches"][0]["method"], "GET");
        assert_eq!(
            r["matches"][0]["path"]["value"], "/api",
            "main rule's path kept"
        );
        assert_eq!(r["backendRefs"][0]["name"], "stable");
        assert_eq!(r["filters"][0]["type"], "RequestMirror");
        assert_eq!(
            r["filters"][0]["requestMirror"]["backendRef"]["name"],
            "canary"
        );
        assert_eq!(r["filters"][0]["requestMirror"]["percent"], 35);
    }

    /// What an API server stores for `rule` under the Gateway API's standard HTTPRoute CRD
    /// (v1): every `default:` of its schema that a rule can hold, as listed in
    /// `config/crd/standard/gateway.networking.k8s.io_httproutes.yaml` (checked against
    /// kubernetes-sigs/gateway-api at 4564255): matches `[{path: PathPrefix /}]`, path type
    /// and value, header and query parameter type `Exact`, backend group `""`, kind `Service`,
    /// weight 1, a mirror's backend group and kind, a mirror `fraction`'s denominator 100, a
    /// redirect's status code 302 and a CORS filter's maxAge 5.
    fn stored(rule: &Value) -> Value {
        fn backend(b: &mut Value, weighted: bool) {
            let o = b.as_object_mut().expect("backend object");
            o.entry("group").or_insert(json!(""));
            o.entry("kind").or_insert(json!("Service"));
            if weighted {
                o.entry("weight").or_insert(json!(1));
            }
            for f in o
                .get_mut("filters")
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                filter(f);
            }
        }
        fn filter(f: &mut Value) {
            if let Some(b) = f.pointer_mut("/requestMirror/backendRef") {
                backend(b, false);
            }
            if let Some(fr) = f
                .pointer_mut("/requestMirror/fraction")
                .and_then(Value::as_object_mut)
            {
                fr.entry("denominator").or_insert(json!(100));
            }
            if let Some(r) = f.get_mut("requestRedirect").and_then(Value::as_object_mut) {
                r.entry("statusCode").or_insert(json!(302));
            }
            if let Some(c) = f.get_mut("cors").and_then(Value::as_object_mut) {
                c.entry("maxAge").or_insert(json!(5));
            }
        }
        let mut r = rule.clone();
        let o = r.as_object_mut().expect("rule object");
        o.entry("matches")
            .or_insert(json!([{"path": {"type": "PathPrefix", "value": "/"}}]));
        for m in o["matches"].as_array_mut().into_iter().flatten() {
            let mo = m.as_object_mut().expect("match object");
            let p = mo
                .entry("path")
                .or_insert(json!({"type": "PathPrefix", "value": "/"}));
            p.as_object_mut()
                .expect("path")
                .entry("type")
                .or_insert(json!("PathPrefix"));
            p.as_object_mut()
                .expect("path")
                .entry("value")
                .or_insert(json!("/"));
            for key in ["headers", "queryParams"] {
                for h in mo
                    .get_mut(key)
                    .and_then(Value::as_array_mut)
                    .into_iter()
                    .flatten()
                {
                    h.as_object_mut()
                        .expect("condition")
                        .entry("type")
                        .or_insert(json!("Exact"));
                }
            }
        }
        for f in o
            .get_mut("filters")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            filter(f);
        }
        for b in o
            .get_mut("backendRefs")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            backend(b, true);
        }
        r
    }

    #[test]
    fn managed_routes_stay_in_sync_once_an_api_server_applied_the_crds_defaults() {
        // A sparse main rule, as a user writes it: no match, no types, no group or kind.
        let main = json!({
            "backendRefs": [{"name": "stable", "port": 80, "weight": 100},
                            {"name": "canary", "port": 80, "weight": 0}],
        });
        let desired = vec![
            ManagedRule {
                name: "h".into(),
                kind: RouteKind::Header(vec![HeaderMatch {
                    name: "X-Canary".into(),
                    value: StringMatch::Exact("yes".into()),
                }]),
            },
            ManagedRule {
                name: "m".into(),
                kind: RouteKind::Mirror {
                    percent: Some(10),
                    matches: vec![RequestMatch {
                        method: Some("GET".into()),
                        ..Default::default()
                    }],
                },
            },
        ];
        let managed = vec!["h".to_string(), "m".to_string()];
        let written = write(&[main], &desired, &managed, "canary", "stable");
        // The server stores every rule with the defaults filled in.
        let route = ObservedRoute::from_rules("shop", "web", written.iter().map(stored).collect());
        assert!(
            in_sync(&route, &desired, &managed, "canary", "stable"),
            "a defaulted route must not be written again"
        );
        // And a change is still seen.
        assert!(!in_sync(
            &route,
            &desired[..1],
            &managed,
            "canary",
            "stable"
        ));
    }

    #[test]
    fn write_puts_managed_rules_first_and_keeps_the_others() {
        let user = json!({"name": "mine", "backendRefs": [{"name": "other"}]});
        let stale = json!({"name": "h", "backendRefs": [{"name": "canary"}]});
        let rules = vec![stale, main(), user.clone()];
        let managed = vec!["h".to_string(), "m".to_string()];
        let out = write(&rules, &[], &managed, "canary", "stable");
        assert_eq!(out, vec![main(), user]);
    }

    #[test]
    fn set_weights_leaves_rules_with_one_of_the_services_alone() {
        let header = json!({"name": "h", "backendRefs": [{"name": "canary"}]});
        let mut rules = vec![header.clone(), main()];
        set_weights(&mut rules, "canary", "stable", 30);
        assert_eq!(rules[0], header);
        assert_eq!(rules[1]["backendRefs"][1]["weight"], 30);
        assert_eq!(rules[1]["backendRefs"][0]["weight"], 70);
    }
}
