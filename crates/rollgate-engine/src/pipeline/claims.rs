//! Which pipeline drives a Rollout when two name the same one as a later stage: the one created
//! first. Two pipelines never write the same Rollout.

use std::collections::BTreeMap;

use rollgate_api::PromotionPipeline;

/// Where a stage writes: its kubeconfig Secret (`namespace/name`; none: this cluster), the
/// Rollout's namespace and name.
type Target = (Option<String>, String, String);

/// The targets of the later stages of `p`, with their stage names.
fn targets(p: &PromotionPipeline) -> Vec<(String, Target)> {
    let ns = p.metadata.namespace.clone().unwrap_or_default();
    p.spec
        .stages
        .iter()
        .skip(1)
        .map(|s| {
            let cluster = s
                .rollout
                .cluster
                .as_ref()
                .map(|c| format!("{ns}/{}", c.kubeconfig_secret.name));
            let rollout_ns = s
                .rollout
                .namespace
                .clone()
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| ns.clone());
            (
                s.name.clone(),
                (cluster, rollout_ns, s.rollout.name.clone()),
            )
        })
        .collect()
}

/// The later stages of `p` whose Rollout a pipeline created before it also writes: stage
/// name -> that pipeline.
pub fn claims(p: &PromotionPipeline, all: &[PromotionPipeline]) -> BTreeMap<String, String> {
    let key = |q: &PromotionPipeline| {
        (
            q.metadata.creation_timestamp.as_ref().map(|t| t.0),
            q.metadata.namespace.clone().unwrap_or_default(),
            q.metadata.name.clone().unwrap_or_default(),
        )
    };
    let mine = key(p);
    let mut out = BTreeMap::new();
    for q in all.iter().filter(|q| key(q) < mine) {
        let theirs: Vec<_> = targets(q).into_iter().map(|(_, t)| t).collect();
        for (stage, target) in targets(p) {
            if theirs.contains(&target) {
                out.entry(stage).or_insert_with(|| {
                    format!(
                        "{}/{}",
                        q.metadata.namespace.clone().unwrap_or_default(),
                        q.metadata.name.clone().unwrap_or_default()
                    )
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::claims;
    use rollgate_api::PromotionPipeline;
    use serde_json::json;

    fn pipeline(name: &str, created: &str, prod: serde_json::Value) -> PromotionPipeline {
        serde_json::from_value(json!({
            "apiVersion": "rollgate.dev/v1alpha1", "kind": "PromotionPipeline",
            "metadata": {"name": name, "namespace": "shop", "creationTimestamp": created},
            "spec": {"stages": [
                {"name": "staging", "rollout": {"name": "web", "namespace": "shop-staging"}},
                {"name": "production", "rollout": prod}]}
        }))
        .expect("pipeline")
    }

    #[test]
    fn the_pipeline_created_first_keeps_a_shared_target() {
        let first = pipeline(
            "web-a",
            "2026-01-01T00:00:00Z",
            json!({"name": "web", "namespace": "shop-prod"}),
        );
        let second = pipeline(
            "web-b",
            "2026-01-02T00:00:00Z",
            json!({"name": "web", "namespace": "shop-prod"}),
        );
        let elsewhere = pipeline(
            "web-c",
            "2026-01-03T00:00:00Z",
            json!({"name": "web", "namespace": "shop-prod",
                   "cluster": {"kubeconfigSecret": {"name": "eu"}}}),
        );
        let all = [first.clone(), second.clone(), elsewhere.clone()];
        assert!(claims(&first, &all).is_empty());
        assert_eq!(
            claims(&second, &all).get("production").map(String::as_str),
            Some("shop/web-a")
        );
        assert!(claims(&elsewhere, &all).is_empty(), "another cluster");
        // Sharing the first stage (fan-out from one staging) is no claim.
        let fan_out = pipeline(
            "web-d",
            "2026-01-04T00:00:00Z",
            json!({"name": "web-us", "namespace": "shop-prod"}),
        );
        assert!(claims(&fan_out, &[first, fan_out.clone()]).is_empty());
    }
}
