//! Fixtures shared by rollgate's tests: the engine's tests (`crates/rollgate-engine/tests`) and
//! the end-to-end tests (`tests/`, package `rollgate-e2e`) build the same objects from these.
//!
//! - [`merge`]: JSON merge patch, how every builder takes its overrides;
//! - [`pod_template`], [`hash_with_image`], [`image_hash`]: a revision's pod template and the
//!   pod-template hash the engine gives it;
//! - [`rollout`], [`blue_green_rollout`], [`canary_rollout`]: Rollouts, with the conventions
//!   both test suites use (pods labelled `app=<name>`, one container `app`, Services named
//!   `<name>-active`, `<name>-preview`, `<name>-canary`, `<name>-stable`);
//! - [`analysis_ref`], [`prometheus_metric`], [`analysis_template`]: analysis;
//! - [`service`], [`blue_green_services`], [`route_routing`]: what a rollout refers to;
//!   [`documents`]: several objects as one multi-document YAML text.
//!
//! It is a dev-dependency only: nothing shipped links it (`scripts/check-deps` checks the
//! controller binary).

use k8s_openapi::api::core::v1::PodTemplateSpec;
use serde_json::{Value, json};

/// `apiVersion` of rollgate's custom resources.
pub const API_VERSION: &str = "rollgate.dev/v1alpha1";

/// JSON merge patch (RFC 7386) of `patch` into `base`: objects merge key by key, `null`
/// removes a key, anything else replaces.
pub fn merge(base: &mut Value, patch: Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    b.remove(&k);
                } else {
                    merge(b.entry(k).or_insert(Value::Null), v);
                }
            }
        }
        (b, p) => *b = p,
    }
}

/// The pod template of a revision: pods labelled `app=<app>`, one container `app` running
/// `image`.
pub fn pod_template(app: &str, image: &str) -> Value {
    json!({"metadata": {"labels": {"app": app}},
           "spec": {"containers": [{"name": "app", "image": image}]}})
}

/// The pod-template hash of `template` with its first container running `image`: the hash the
/// engine gives the revision that runs `image`.
pub fn hash_with_image(template: &PodTemplateSpec, image: &str) -> String {
    let mut t = template.clone();
    if let Some(c) = t.spec.as_mut().and_then(|s| s.containers.first_mut()) {
        c.image = Some(image.into());
    }
    rollgate_engine::hash::pod_template_hash(&t)
}

/// The pod-template hash of [`pod_template`]`(app, image)`.
///
/// # Panics
///
/// Never for the template [`pod_template`] builds (it is a valid `PodTemplateSpec`).
pub fn image_hash(app: &str, image: &str) -> String {
    let t: PodTemplateSpec =
        serde_json::from_value(pod_template(app, image)).expect("a valid pod template");
    rollgate_engine::hash::pod_template_hash(&t)
}

/// A Rollout `name` (no namespace) of 3 replicas selecting `app=<name>`, whose pods run `image`
/// (see [`pod_template`]), with `strategy` as `spec.strategy`; `spec` is merged over the spec.
pub fn rollout(name: &str, image: &str, strategy: Value, spec: Value) -> Value {
    let mut s = json!({
        "replicas": 3,
        "selector": {"matchLabels": {"app": name}},
        "template": pod_template(name, image),
        "strategy": strategy,
    });
    merge(&mut s, spec);
    json!({
        "apiVersion": API_VERSION, "kind": "Rollout",
        "metadata": {"name": name},
        "spec": s,
    })
}

/// A blue/green [`rollout`] with Services `<name>-active` and `<name>-preview`; `bg` is merged
/// over `strategy.blueGreen`, then `spec` over the spec.
pub fn blue_green_rollout(name: &str, image: &str, spec: Value, bg: Value) -> Value {
    let mut strategy = json!({
        "activeService": format!("{name}-active"),
        "previewService": format!("{name}-preview"),
    });
    merge(&mut strategy, bg);
    rollout(name, image, json!({"blueGreen": strategy}), spec)
}

/// A canary [`rollout`] of 10 replicas with Services `<name>-canary` and `<name>-stable`;
/// `canary` is merged over `strategy.canary`, then `spec` over the spec.
pub fn canary_rollout(name: &str, image: &str, spec: Value, canary: Value) -> Value {
    let mut strategy = json!({
        "canaryService": format!("{name}-canary"),
        "stableService": format!("{name}-stable"),
    });
    merge(&mut strategy, canary);
    let mut s = json!({"replicas": 10});
    merge(&mut s, spec);
    rollout(name, image, json!({"canary": strategy}), s)
}

/// An analysis (a step's, or `prePromotionAnalysis`/`postPromotionAnalysis`) on the
/// AnalysisTemplate `template`, without arguments.
pub fn analysis_ref(template: &str) -> Value {
    json!({"templates": [{"templateName": template}]})
}

/// A metric `name` that asks Prometheus at `address` for `query` and succeeds when the first
/// value is below 0.05.
pub fn prometheus_metric(name: &str, address: &str, query: &str) -> Value {
    json!({"name": name, "successCondition": "result[0] < 0.05",
           "provider": {"prometheus": {"address": address, "query": query}}})
}

/// An AnalysisTemplate `name` (no namespace) with `spec`.
pub fn analysis_template(name: &str, spec: Value) -> Value {
    json!({"apiVersion": API_VERSION, "kind": "AnalysisTemplate",
           "metadata": {"name": name}, "spec": spec})
}

/// A Service `name` (no namespace) selecting `app=<app>`, port 80 to 8080.
pub fn service(name: &str, app: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name},
        "spec": {"selector": {"app": app}, "ports": [{"port": 80, "targetPort": 8080}]}
    })
}

/// The Services of a [`blue_green_rollout`] `name`, `<name>-active` and `<name>-preview`, both
/// selecting `app=<name>` (the rollout adds the pod-template hash), as one YAML text.
pub fn blue_green_services(name: &str) -> String {
    documents(&[
        service(&format!("{name}-active"), name),
        service(&format!("{name}-preview"), name),
    ])
}

/// A canary's `trafficRouting` through the Gateway API HTTPRoute `route`.
pub fn route_routing(route: &str) -> Value {
    json!({"gatewayAPI": {"httpRoute": route}})
}

/// `docs` as one multi-document YAML text (JSON is YAML), as `kubectl apply -f` reads it.
pub fn documents(docs: &[Value]) -> String {
    docs.iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join("\n---\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_removes_nulls_merges_objects_and_replaces_the_rest() {
        let mut base = json!({"a": 1, "b": {"c": 2, "d": 3}, "e": [1, 2]});
        merge(
            &mut base,
            json!({"a": null, "b": {"c": 5, "f": 6}, "e": [3]}),
        );
        assert_eq!(base, json!({"b": {"c": 5, "d": 3, "f": 6}, "e": [3]}));
    }

    #[test]
    fn builders_take_their_overrides_in_order() {
        let r = blue_green_rollout(
            "web",
            "app:1",
            json!({"replicas": 2}),
            json!({"previewService": null, "autoPromotionEnabled": false}),
        );
        assert_eq!(r["spec"]["replicas"], 2);
        assert_eq!(
            r["spec"]["strategy"],
            json!({"blueGreen": {"activeService": "web-active", "autoPromotionEnabled": false}})
        );
        assert_eq!(r["spec"]["template"], pod_template("web", "app:1"));
        let c = canary_rollout("api", "app:2", json!({"replicas": 4}), json!({"steps": []}));
        assert_eq!(c["spec"]["replicas"], 4);
        assert_eq!(
            c["spec"]["strategy"]["canary"],
            json!({"canaryService": "api-canary", "stableService": "api-stable", "steps": []})
        );
        assert_eq!(
            canary_rollout("api", "app:2", json!({}), json!({}))["spec"]["replicas"],
            10
        );
    }

    #[test]
    fn hash_with_image_is_the_hash_of_the_template_running_that_image() {
        let t: PodTemplateSpec =
            serde_json::from_value(pod_template("web", "app:1")).expect("template");
        assert_eq!(hash_with_image(&t, "app:2"), image_hash("web", "app:2"));
        assert_ne!(image_hash("web", "app:1"), image_hash("web", "app:2"));
        assert_ne!(image_hash("web", "app:1"), image_hash("api", "app:1"));
    }

    #[test]
    fn documents_are_separated_by_three_dashes() {
        let text = documents(&[service("a", "x"), service("b", "x")]);
        let docs: Vec<Value> = text
            .split("\n---\n")
            .map(|d| serde_json::from_str(d).expect("json"))
            .collect();
        assert_eq!(docs, [service("a", "x"), service("b", "x")]);
        assert_eq!(
            blue_green_services("web"),
            documents(&[service("web-active", "web"), service("web-preview", "web")])
        );
    }
}
