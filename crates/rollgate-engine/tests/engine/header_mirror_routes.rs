//! Managed routes on the Gateway API HTTPRoute: `trafficRouting.managedRoutes` with the
//! `setHeaderRoute` and `setMirrorRoute` canary steps, as Argo Rollouts' traffic management
//! documentation describes them ("Traffic routing with managed routes and route precedence",
//! "Traffic routing based on a header values for Canary", "Traffic routing mirroring traffic
//! to canary"): a step sets its route (a step with only `name` removes it), and every managed
//! route is removed when the release completes or aborts.
//!
//! Every `World::step` also applies the `SetManagedRoutes` action to the observed HTTPRoute
//! (with `routes::write`, as the controller does) and checks that a second reconcile does
//! nothing (see `support`).

use crate::support;

use rollgate_api::RolloutPhase;
use rollgate_engine::Action;
use serde_json::{Value, json};
use support::{CANARY_SVC, ROUTE, STABLE_SVC, World};

/// `trafficRouting` through the worlds' HTTPRoute, with managed routes `hdr` and `mirror`.
fn routing() -> Value {
    json!({
        "gatewayAPI": {"httpRoute": ROUTE},
        "managedRoutes": [{"name": "hdr"}, {"name": "mirror"}],
    })
}

fn header_step() -> Value {
    json!({"setHeaderRoute": {"name": "hdr", "match": [
        {"headerName": "X-Canary", "headerValue": {"exact": "yes"}},
    ]}})
}

fn mirror_step() -> Value {
    json!({"setMirrorRoute": {"name": "mirror", "percentage": 35, "match": [
        {"method": {"exact": "GET"}, "path": {"prefix": "/"}},
    ]}})
}

/// The names of the HTTPRoute's rules, in order (`-` for an unnamed one).
fn rule_names(w: &World) -> Vec<String> {
    w.observed
        .route
        .as_ref()
        .expect("route")
        .spec_rules
        .iter()
        .map(|r| r["name"].as_str().unwrap_or("-").to_string())
        .collect()
}

/// The HTTPRoute rule named `name`.
fn rule(w: &World, name: &str) -> Value {
    w.observed
        .route
        .as_ref()
        .expect("route")
        .spec_rules
        .iter()
        .find(|r| r["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no rule {name} in {:?}", rule_names(w)))
}

fn managed_actions(w: &World) -> usize {
    w.actions
        .iter()
        .filter(|a| matches!(a, Action::SetManagedRoutes { .. }))
        .count()
}

/// A deployed world whose release of `app:2` walks `steps`.
fn released(steps: Value) -> (World, String, String) {
    let (mut w, v1) = World::canary_deployed(
        json!({}),
        json!({"trafficRouting": routing(), "steps": steps, "scaleDownDelaySeconds": 0}),
    );
    let v2 = w.set_image("app:2");
    w.run_until_settled();
    (w, v1, v2)
}

#[test]
fn a_header_route_then_a_mirror_route_are_named_rules_at_their_steps_and_go_at_completion() {
    let (mut w, _v1, v2) = released(json!([
        {"setWeight": 20},
        header_step(),
        {"pause": {}},
        mirror_step(),
        {"pause": {}},
        {"setHeaderRoute": {"name": "hdr"}},
        {"pause": {}},
    ]));
    // At the first pause: the header rule only, first, ahead of the route's own rule.
    assert_eq!(w.step_index(), 2, "{}", w.message());
    assert_eq!(rule_names(&w), ["hdr", "-"]);
    let hdr = rule(&w, "hdr");
    assert_eq!(hdr["backendRefs"].as_array().map(Vec::len), Some(1));
    assert_eq!(hdr["backendRefs"][0]["name"], CANARY_SVC);
    assert_eq!(hdr["matches"][0]["headers"][0]["name"], "X-Canary");
    assert_eq!(hdr["matches"][0]["headers"][0]["value"], "yes");
    assert_eq!(w.selects(CANARY_SVC).as_deref(), Some(v2.as_str()));
    // The weights still move on the route's own rule only.
    assert_eq!(w.route_weights(), (20, 80));

    w.promote();
    w.run_until_settled();
    assert_eq!(w.step_index(), 4, "{}", w.message());
    assert_eq!(
        rule_names(&w),
        ["hdr", "mirror", "-"],
        "managedRoutes order"
    );
    let mirror = rule(&w, "mirror");
    assert_eq!(mirror["backendRefs"][0]["name"], STABLE_SVC);
    assert_eq!(mirror["filters"][0]["type"], "RequestMirror");
    assert_eq!(
        mirror["filters"][0]["requestMirror"]["backendRef"]["name"],
        CANARY_SVC
    );
    assert_eq!(mirror["filters"][0]["requestMirror"]["percent"], 35);
    assert_eq!(mirror["matches"][0]["method"], "GET");

    // A step with only the name removes that route.
    w.promote();
    w.run_until_settled();
    assert_eq!(w.step_index(), 6, "{}", w.message());
    assert_eq!(rule_names(&w), ["mirror", "-"]);

    // Completion removes every managed route.
    w.promote();
    w.run_until_settled();
    assert_eq!(w.phase(), Some(RolloutPhase::Healthy), "{}", w.message());
    assert_eq!(w.status().stable_rs.as_deref(), Some(v2.as_str()));
    assert_eq!(rule_names(&w), ["-"]);
    assert_eq!(w.route_weights(), (0, 100));
}

#[test]
fn an_abort_removes_the_managed_routes_first() {
    let (mut w, v1, _v2) = released(json!([
        {"setWeight": 20},
        header_step(),
        mirror_step(),
        {"pause": {}},
    ]));
    assert_eq!(rule_names(&w), ["hdr", "mirror", "-"]);
    w.abort();
    let d = w.step();
    assert!(
        matches!(d.actions.first(), Some(Action::SetManagedRoutes { rules, .. }) if rules.is_empty()),
        "managed routes go before anything else: {:?}",
        d.actions
    );
    w.run_until_settled();
    assert_eq!(w.phase(), Some(RolloutPhase::Degraded), "{}", w.message());
    assert_eq!(rule_names(&w), ["-"]);
    assert_eq!(w.route_weights(), (0, 100));
    assert_eq!(w.selects(STABLE_SVC).as_deref(), Some(v1.as_str()));
}

#[test]
fn a_full_promotion_removes_the_managed_routes() {
    let (mut w, _v1, v2) = released(json!([
        {"setWeight": 20},
        header_step(),
        {"pause": {}},
    ]));
    assert_eq!(rule_names(&w), ["hdr", "-"]);
    w.promote_full();
    w.run_until_settled();
    assert_eq!(w.status().stable_rs.as_deref(), Some(v2.as_str()));
    assert_eq!(rule_names(&w), ["-"]);
}

#[test]
fn a_route_written_once_is_not_written_again() {
    let (mut w, _v1, _v2) = released(json!([
        header_step(),
        {"setWeight": 20},
        {"pause": {}},
        {"setWeight": 40},
        {"pause": {}},
    ]));
    assert_eq!(rule_names(&w), ["hdr", "-"]);
    let writes = managed_actions(&w);
    w.promote();
    w.run_until_settled();
    assert_eq!(w.step_index(), 4, "{}", w.message());
    assert_eq!(
        managed_actions(&w),
        writes,
        "weights change, the header rule stays"
    );
    assert_eq!(w.route_weights(), (40, 60));
    assert_eq!(rule(&w, "hdr")["backendRefs"][0]["name"], CANARY_SVC);
}

#[test]
fn a_managed_rule_removed_by_someone_else_is_written_again() {
    let (mut w, _v1, _v2) = released(json!([header_step(), {"pause": {}}]));
    assert_eq!(rule_names(&w), ["hdr", "-"]);
    let r = w.observed.route.as_mut().expect("route");
    let rules: Vec<Value> = r.spec_rules.iter().skip(1).cloned().collect();
    *r = rollgate_engine::ObservedRoute::from_rules("shop", ROUTE, rules);
    w.run_until_settled();
    assert_eq!(rule_names(&w), ["hdr", "-"]);
}

#[test]
fn a_prefix_header_value_is_an_escaped_regular_expression() {
    let (w, _v1, _v2) = released(json!([
        {"setHeaderRoute": {"name": "hdr", "match": [
            {"headerName": "User-Agent", "headerValue": {"prefix": "Mozilla/5.0 (X"}},
            {"headerName": "X-Beta", "headerValue": {"regex": "on|yes"}},
        ]}},
        {"pause": {}},
    ]));
    let hdr = rule(&w, "hdr");
    // Any of the headers sends to the canary: one match per condition.
    assert_eq!(hdr["matches"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        hdr["matches"][0]["headers"][0],
        json!({"name": "User-Agent", "type": "RegularExpression", "value": "^Mozilla/5\\.0 \\(X.*"})
    );
    assert_eq!(
        hdr["matches"][1]["headers"][0],
        json!({"name": "X-Beta", "type": "RegularExpression", "value": "on|yes"})
    );
}

// ----- invalid specs -----

/// The problems a canary spec with `canary` merged in is reported with.
fn problems(canary: Value) -> String {
    let mut w = World::canary(json!({}), canary);
    let d = w.step();
    assert!(
        d.actions.is_empty(),
        "an invalid spec acts: {:?}",
        d.actions
    );
    w.condition("InvalidSpec").message
}

#[test]
fn a_route_step_needs_the_gateway_api() {
    let msg = problems(json!({"steps": [header_step()]}));
    assert!(
        msg.contains("spec.strategy.canary.steps[0].setHeaderRoute: setHeaderRoute requires trafficRouting.gatewayAPI"),
        "{msg}"
    );
    let msg = problems(json!({"steps": [mirror_step()]}));
    assert!(
        msg.contains("spec.strategy.canary.steps[0].setMirrorRoute: setMirrorRoute requires trafficRouting.gatewayAPI"),
        "{msg}"
    );
}

#[test]
fn a_route_step_names_a_declared_managed_route() {
    let msg = problems(json!({
        "trafficRouting": {"gatewayAPI": {"httpRoute": ROUTE}},
        "steps": [header_step()],
    }));
    assert!(
        msg.contains("steps[0].setHeaderRoute.name: expected a route listed in trafficRouting.managedRoutes (none is declared), got \"hdr\""),
        "{msg}"
    );
    let msg = problems(json!({
        "trafficRouting": {"gatewayAPI": {"httpRoute": ROUTE}, "managedRoutes": [{"name": "other"}]},
        "steps": [mirror_step()],
    }));
    assert!(
        msg.contains("steps[0].setMirrorRoute.name: expected a route listed in trafficRouting.managedRoutes (declared: other), got \"mirror\""),
        "{msg}"
    );
}

#[test]
fn managed_route_names_are_gateway_api_rule_names() {
    let msg = problems(json!({
        "trafficRouting": {"gatewayAPI": {"httpRoute": ROUTE},
                           "managedRoutes": [{"name": "Set_Header"}, {"name": "a"}, {"name": "a"}]},
        "steps": [{"setWeight": 10}],
    }));
    assert!(
        msg.contains("trafficRouting.managedRoutes[0].name: expected a Gateway API rule name"),
        "{msg}"
    );
    assert!(
        msg.contains("trafficRouting.managedRoutes[2].name: \"a\" is listed twice"),
        "{msg}"
    );
}

#[test]
fn match_conditions_are_checked_field_by_field() {
    let msg = problems(json!({
        "trafficRouting": routing(),
        "steps": [
            {"setHeaderRoute": {"name": "hdr", "match": [
                {"headerName": "X-A", "headerValue": {"exact": "1", "regex": "2"}},
                {"headerName": "bad header", "headerValue": {"exact": "1"}},
            ]}},
            {"setMirrorRoute": {"name": "mirror", "percentage": 150, "match": [
                {"method": {"prefix": "G"}, "path": {"exact": "api"}},
                {"method": {"exact": "FETCH"}},
            ]}},
        ],
    }));
    for expected in [
        "steps[0].setHeaderRoute.match[0].headerValue: exactly one of exact, prefix or regex expected, found 2",
        "steps[0].setHeaderRoute.match[1].headerName: expected an HTTP header name",
        "steps[1].setMirrorRoute.percentage: expected a percentage between 0 and 100, got 150",
        "steps[1].setMirrorRoute.match[0].method: expected exact",
        "steps[1].setMirrorRoute.match[0].path: expected a path starting with /, got \"api\"",
        "steps[1].setMirrorRoute.match[1].method.exact: expected one of GET",
    ] {
        assert!(msg.contains(expected), "missing {expected:?} in {msg}");
    }
}

#[test]
fn a_route_step_that_cannot_fit_the_route_is_invalid() {
    // 65 header conditions: one match each, more than the Gateway API's 64 per rule.
    let conditions: Vec<Value> = (0..65)
        .map(|i| json!({"headerName": format!("X-{i}"), "headerValue": {"exact": "1"}}))
        .collect();
    let msg = problems(json!({
        "trafficRouting": routing(),
        "steps": [{"setHeaderRoute": {"name": "hdr", "match": conditions}}],
    }));
    assert!(
        msg.contains("steps[0].setHeaderRoute.match: the rule would have 65 matches"),
        "{msg}"
    );
}
