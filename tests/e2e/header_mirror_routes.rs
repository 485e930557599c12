//! Header and mirror routes end to end (Argo Rollouts' traffic management documentation:
//! "Traffic routing with managed routes and route precedence", "Traffic routing based on a
//! header values for Canary", "Traffic routing mirroring traffic to canary"): the real
//! controller writes each `setHeaderRoute` / `setMirrorRoute` step as a rule of the HTTPRoute
//! named after its managed route, leaves the route's own rules alone, and removes every managed
//! route when the release completes or aborts.

use std::time::Duration;

use rollgate_api::{Rollout, RolloutPhase};
use rollgate_e2e::*;
use rollgate_test_support::{canary_rollout, documents, service};
use serde_json::{Value, json};

type R = anyhow::Result<()>;

/// The user's own rule of the route: another path to another Service.
fn own_rule() -> Value {
    json!({"name": "static", "matches": [{"path": {"type": "PathPrefix", "value": "/static"}}],
           "backendRefs": [{"name": "assets", "port": 80}]})
}

/// Services and an HTTPRoute `web-route` whose main rule sends `/` to the stable Service,
/// plus the user's own rule.
fn fixtures() -> String {
    let route = json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": {"name": "web-route"},
        "spec": {"parentRefs": [{"name": "gateway"}], "rules": [
            {"matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
             "backendRefs": [{"name": "web-stable", "port": 80, "weight": 100},
                             {"name": "web-canary", "port": 80, "weight": 0}]},
            own_rule(),
        ]}
    });
    documents(&[
        service("web", "web"),
        service("web-canary", "web"),
        service("web-stable", "web"),
        route,
    ])
}

/// A routed canary with managed routes `hdr` and `mirror`: 20%, the header route, a pause,
/// the mirror route (35% of GETs), a pause.
fn canary() -> Value {
    json!({
        "trafficRouting": {"gatewayAPI": {"httpRoute": "web-route"},
                           "managedRoutes": [{"name": "hdr"}, {"name": "mirror"}]},
        "steps": [
            {"setWeight": 20},
            {"setHeaderRoute": {"name": "hdr", "match": [
                {"headerName": "X-Canary", "headerValue": {"exact": "yes"}}]}},
            {"pause": {}},
            {"setMirrorRoute": {"name": "mirror", "percentage": 35, "match": [
                {"method": {"exact": "GET"}}]}},
            {"pause": {}},
        ],
    })
}

/// The rules of `web-route`.
async fn rules(stack: &Stack) -> anyhow::Result<Vec<Value>> {
    let route = route_api(stack).get("web-route").await?;
    Ok(route.data["spec"]["rules"]
        .as_array()
        .cloned()
        .unwrap_or_default())
}

/// The names of the rules of `web-route`, in order (`-` for the unnamed main rule).
async fn rule_names(stack: &Stack) -> anyhow::Result<Vec<String>> {
    Ok(rules(stack)
        .await?
        .iter()
        .map(|r| r["name"].as_str().unwrap_or("-").to_string())
        .collect())
}

async fn rule(stack: &Stack, name: &str) -> anyhow::Result<Value> {
    rules(stack)
        .await?
        .into_iter()
        .find(|r| r["name"] == name)
        .ok_or_else(|| anyhow::anyhow!("no rule {name}"))
}

async fn wait_step(stack: &Stack, index: i32) -> anyhow::Result<Rollout> {
    Ok(stack
        .wait_for(
            NS,
            "web",
            Duration::from_secs(300),
            &format!("paused at step index {index}"),
            |r| {
                r.status.as_ref().and_then(|s| s.current_step_index) == Some(index)
                    && phase(r) == Some(RolloutPhase::Paused)
            },
        )
        .await?)
}

/// Deploys `app:1`, then releases `app:2` up to the first pause; returns the first hash.
async fn release_to_the_header_route(stack: &Stack) -> anyhow::Result<String> {
    stack.apply_yaml(&fixtures(), NS).await?;
    stack
        .apply_yaml(
            &canary_rollout("web", "app:1", json!({}), canary()).to_string(),
            NS,
        )
        .await?;
    let r = wait_phase(stack, "web", RolloutPhase::Healthy, 120).await?;
    assert_eq!(
        rule_names(stack).await?,
        ["-", "static"],
        "nothing managed yet"
    );
    // Someone else changes the route between the controller's read and its write once: the
    // write is refused (resourceVersion) and done again from a fresh read.
    stack.sim.conflict_once(
        http::Method::PUT,
        &format!("/apis/gateway.networking.k8s.io/v1/namespaces/{NS}/httproutes/web-route"),
    );
    stack.set_image(NS, "web", "app", "app:2").await?;
    wait_step(stack, 2).await?;
    Ok(r.status.and_then(|s| s.stable_rs).unwrap_or_default())
}

#[tokio::test(start_paused = true)]
async fn header_then_mirror_route_are_named_rules_at_their_steps_and_gone_after_promotion() -> R {
    let stack = stack().await?;
    let v1 = release_to_the_header_route(&stack).await?;
    assert_eq!(stack.sim.armed_conflicts(), 0, "the conflict was answered");

    // Step 2: the header route, first (managedRoutes precedence), ahead of the route's rules.
    assert_eq!(rule_names(&stack).await?, ["hdr", "-", "static"]);
    let hdr = rule(&stack, "hdr").await?;
    assert_eq!(
        hdr["backendRefs"],
        json!([{"name": "web-canary", "port": 80, "group": "", "kind": "Service", "weight": 1}]),
        "the canary Service is its only backend"
    );
    assert_eq!(
        hdr["matches"],
        json!([{"path": {"type": "PathPrefix", "value": "/"},
                "headers": [{"name": "X-Canary", "type": "Exact", "value": "yes"}]}]),
        "the main rule's match plus the header"
    );
    let main = &rules(&stack).await?[1];
    assert_eq!(main["backendRefs"][0]["weight"], 80);
    assert_eq!(main["backendRefs"][1]["weight"], 20);

    // Step 4: the mirror route after it.
    promote(&stack).await?;
    wait_step(&stack, 4).await?;
    assert_eq!(rule_names(&stack).await?, ["hdr", "mirror", "-", "static"]);
    let mirror = rule(&stack, "mirror").await?;
    assert_eq!(mirror["backendRefs"][0]["name"], "web-stable");
    assert_eq!(mirror["backendRefs"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        mirror["filters"],
        json!([{"type": "RequestMirror", "requestMirror": {
            "backendRef": {"name": "web-canary", "port": 80, "group": "", "kind": "Service"},
            "percent": 35}}])
    );
    assert_eq!(mirror["matches"][0]["method"], "GET");

    // Promotion: the release completes and every managed route is gone; the user's rule is
    // as it was.
    promote(&stack).await?;
    let done = stack
        .wait_for(NS, "web", Duration::from_secs(300), "app:2 stable", |r| {
            phase(r) == Some(RolloutPhase::Healthy)
                && r.status.as_ref().and_then(|s| s.stable_rs.as_deref()) != Some(v1.as_str())
        })
        .await?;
    assert!(done.status.is_some());
    assert_eq!(rule_names(&stack).await?, ["-", "static"]);
    let all = rules(&stack).await?;
    assert_eq!(all[1], own_rule(), "the user's own rule is never touched");
    assert_eq!(all[0]["backendRefs"][1]["weight"], 0);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn an_abort_removes_the_header_and_mirror_routes() -> R {
    let stack = stack().await?;
    release_to_the_header_route(&stack).await?;
    promote(&stack).await?;
    wait_step(&stack, 4).await?;
    assert_eq!(rule_names(&stack).await?, ["hdr", "mirror", "-", "static"]);

    stack
        .patch_rollout_status(NS, "web", json!({"abort": true}))
        .await?;
    wait_phase(&stack, "web", RolloutPhase::Degraded, 30).await?;
    assert_eq!(rule_names(&stack).await?, ["-", "static"]);
    let all = rules(&stack).await?;
    assert_eq!(
        all[0]["backendRefs"][1]["weight"], 0,
        "canary weight back to 0"
    );
    assert_eq!(all[1], own_rule());
    Ok(())
}
