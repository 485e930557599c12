//! Invalid specs: Degraded, an InvalidSpec condition naming the field, one warning Event, and
//! not a single action, neither on a new rollout nor in the middle of a release.

use crate::support;

use rollgate_api::{AnalysisPhase, RolloutPhase};
use rollgate_engine::{AnalysisKind, Event};
use rollgate_test_support::merge;
use serde_json::{Value, json};
use support::{ACTIVE, PREVIEW, TEMPLATE, World, analysis, reasons};

/// Runs a new rollout built from `spec`/`bg` (minus `missing` Services) and checks that it is
/// reported invalid with exactly `text`, touching nothing, and reported only once.
fn assert_invalid(spec: Value, bg: Value, missing: &[&str], text: &str) {
    let mut w = World::new(spec, bg);
    for s in missing {
        w.observed.services.remove(*s);
    }
    assert_world_invalid(w, text);
}

/// Checks that the new rollout of `w` is reported invalid with exactly `text`, touching
/// nothing, and reported only once.
fn assert_world_invalid(mut w: World, text: &str) {
    let d = w.step();
    assert!(
        d.actions.is_empty(),
        "{text}: touches nothing: {:?}",
        d.actions
    );
    assert_eq!(
        d.events,
        [Event {
            warning: true,
            reason: rollgate_api::EventReason::InvalidSpec,
            note: text.to_string()
        }]
    );
    let s = w.status();
    assert_eq!(s.phase, Some(RolloutPhase::Degraded), "{text}");
    assert_eq!(s.message, Some(format!("InvalidSpec: {text}")));
    assert_eq!(s.observed_generation, Some(1));
    assert_eq!(s.stable_rs, None);
    assert_eq!(s.current_pod_hash, None, "no release started");
    let c = w.condition("InvalidSpec");
    assert_eq!(
        (c.status.as_str(), c.reason.as_str()),
        ("True", "InvalidSpec")
    );
    assert_eq!(c.message, text);
    assert_eq!(d.requeue_after, None);
    assert!(w.observed.replica_sets.is_empty());
    // Later reconciles stay silent.
    w.advance(3600);
    let d = w.step();
    assert!(d.actions.is_empty() && d.events.is_empty(), "{text}");
    assert_eq!(w.status().message, Some(format!("InvalidSpec: {text}")));
}

#[test]
fn both_strategies_are_invalid() {
    assert_invalid(
        json!({"strategy": {"canary": {}}}),
        json!({}),
        &[],
        "spec.strategy: exactly one of blueGreen or canary expected, found both",
    );
}

#[test]
fn no_strategy_is_invalid() {
    assert_invalid(
        json!({"strategy": {"blueGreen": null}}),
        json!({}),
        &[],
        "spec.strategy: exactly one of blueGreen or canary expected, found neither",
    );
}

#[test]
fn canary_with_an_experiment_without_templates_is_invalid() {
    assert_invalid(
        json!({"strategy": {"blueGreen": null, "canary": {"steps": [
            {"setWeight": 20}, {"experiment": {"duration": "1m", "templates": []}}]}}}),
        json!({}),
        &[],
        "spec.strategy.canary.steps[1].experiment.templates: at least one template expected",
    );
}

#[test]
fn missing_active_service_is_invalid() {
    for active in [Value::Null, json!(""), json!("  ")] {
        assert_invalid(
            json!({}),
            json!({"activeService": active}),
            &[],
            "spec.strategy.blueGreen.activeService: required, expected the name of a Service",
        );
    }
}

#[test]
fn preview_service_equal_to_active_service_is_invalid() {
    assert_invalid(
        json!({}),
        json!({"previewService": ACTIVE}),
        &[],
        "spec.strategy.blueGreen.previewService: must differ from activeService",
    );
}

#[test]
fn active_service_not_found_is_invalid() {
    assert_invalid(
        json!({}),
        json!({}),
        &[ACTIVE],
        "spec.strategy.blueGreen.activeService: Service \"web-active\" not found in the \
         rollout's namespace",
    );
}

#[test]
fn preview_service_not_found_is_invalid() {
    assert_invalid(
        json!({}),
        json!({}),
        &[PREVIEW],
        "spec.strategy.blueGreen.previewService: Service \"web-preview\" not found in the \
         rollout's namespace",
    );
}

#[test]
fn missing_template_is_invalid() {
    assert_invalid(
        json!({"template": null}),
        json!({}),
        &[],
        "spec.template: required, expected a pod template (or spec.workloadRef naming a \
         Deployment, ReplicaSet or PodTemplate)",
    );
}

#[test]
fn template_without_containers_is_invalid() {
    assert_invalid(
        json!({"template": {"spec": {"containers": []}}}),
        json!({}),
        &[],
        "spec.template.spec.containers: at least one container expected",
    );
}

#[test]
fn missing_selector_is_invalid() {
    assert_invalid(
        json!({"selector": null}),
        json!({}),
        &[],
        "spec.selector: required, expected a label selector matching spec.template.metadata.labels",
    );
}

#[test]
fn selector_not_matching_the_template_labels_is_invalid() {
    assert_invalid(
        json!({"selector": {"matchLabels": {"app": "api"}}}),
        json!({}),
        &[],
        "spec.selector.matchLabels: app=api must also be a label of spec.template.metadata.labels",
    );
}

#[test]
fn empty_selector_is_invalid() {
    assert_invalid(
        json!({"selector": {"matchLabels": null}}),
        json!({}),
        &[],
        "spec.selector: a non-empty selector expected (it would select every pod)",
    );
}

#[test]
fn negative_replicas_are_invalid() {
    assert_invalid(
        json!({"replicas": -1}),
        json!({}),
        &[],
        "spec.replicas: must be >= 0, got -1",
    );
}

#[test]
fn a_progress_deadline_not_above_min_ready_seconds_is_invalid() {
    assert_invalid(
        json!({"minReadySeconds": 700}),
        json!({}),
        &[],
        "spec.progressDeadlineSeconds: must be greater than spec.minReadySeconds (700), got 600",
    );
    assert_invalid(
        json!({"minReadySeconds": 30, "progressDeadlineSeconds": 30}),
        json!({}),
        &[],
        "spec.progressDeadlineSeconds: must be greater than spec.minReadySeconds (30), got 30",
    );
}

#[test]
fn non_positive_progress_deadline_is_invalid() {
    assert_invalid(
        json!({"progressDeadlineSeconds": 0}),
        json!({}),
        &[],
        "spec.progressDeadlineSeconds: must be > 0, got 0",
    );
}

#[test]
fn negative_blue_green_durations_and_counts_are_invalid() {
    for (field, text) in [
        (
            "previewReplicaCount",
            "previewReplicaCount: must be >= 0, got -2",
        ),
        (
            "autoPromotionSeconds",
            "autoPromotionSeconds: must be >= 0, got -2",
        ),
        (
            "scaleDownDelaySeconds",
            "scaleDownDelaySeconds: must be >= 0, got -2",
        ),
        (
            "scaleDownDelayRevisionLimit",
            "scaleDownDelayRevisionLimit: must be >= 0, got -2",
        ),
        (
            "abortScaleDownDelaySeconds",
            "abortScaleDownDelaySeconds: must be >= 0, got -2",
        ),
    ] {
        assert_invalid(
            json!({}),
            json!({field: -2}),
            &[],
            &format!("spec.strategy.blueGreen.{text}"),
        );
    }
}

#[test]
fn missing_analysis_template_is_invalid() {
    assert_invalid(
        json!({}),
        json!({"prePromotionAnalysis": {"templates": [{"templateName": "missing"}]}}),
        &[],
        "spec.strategy.blueGreen.prePromotionAnalysis.templates[0].templateName: \
         AnalysisTemplate \"missing\" not found",
    );
}

#[test]
fn missing_cluster_analysis_template_is_invalid() {
    // A namespaced template of the same name does not count.
    assert_invalid(
        json!({}),
        json!({"postPromotionAnalysis": {"templates": [
            {"templateName": "error-rate"}, {"templateName": "error-rate", "clusterScope": true}]}}),
        &[],
        "spec.strategy.blueGreen.postPromotionAnalysis.templates[1].templateName: \
         ClusterAnalysisTemplate \"error-rate\" not found",
    );
}

#[test]
fn analysis_without_templates_is_invalid() {
    assert_invalid(
        json!({}),
        json!({"prePromotionAnalysis": {"templates": []}}),
        &[],
        "spec.strategy.blueGreen.prePromotionAnalysis.templates: at least one template \
         reference expected",
    );
}

/// A blue/green world whose pre-promotion analysis uses the template `error-rate` with
/// `patch` merged over its only metric (and `args`, when given, as its arguments).
fn with_broken_template(patch: Value, args: Option<Value>) -> World {
    let mut w = World::new(json!({}), json!({"prePromotionAnalysis": analysis()}));
    let key = (false, TEMPLATE.to_string());
    let mut t = serde_json::to_value(&w.observed.templates[&key]).expect("template json");
    merge(&mut t["metrics"][0], patch);
    if let Some(args) = args {
        t["args"] = args;
    }
    w.observed
        .templates
        .insert(key, serde_json::from_value(t).expect("template"));
    w
}

const TEMPLATE_FIELD: &str =
    "spec.strategy.blueGreen.prePromotionAnalysis.templates[0]: AnalysisTemplate \"error-rate\"";

#[test]
fn unknown_pod_template_hash_value_is_invalid() {
    // In the template's arguments...
    assert_world_invalid(
        with_broken_template(
            json!({}),
            Some(
                json!([{"name": "hash", "valueFrom": {"podTemplateHashValue": "Stabel"}},
                        {"name": "window", "value": "5m"}]),
            ),
        ),
        &format!(
            "{TEMPLATE_FIELD}: args[0].valueFrom.podTemplateHashValue: expected Stable or \
             Latest, got \"Stabel\""
        ),
    );
    // ... and in the Rollout's.
    assert_invalid(
        json!({}),
        json!({"prePromotionAnalysis": {"templates": [{"templateName": TEMPLATE}],
            "args": [{"name": "hash", "valueFrom": {"podTemplateHashValue": "latest"}}]}}),
        &[],
        "spec.strategy.blueGreen.prePromotionAnalysis.args[0].valueFrom.podTemplateHashValue: \
         expected Stable or Latest, got \"latest\"",
    );
}

#[test]
fn unknown_no_data_policy_is_invalid() {
    assert_world_invalid(
        with_broken_template(json!({"noDataPolicy": "Ignore"}), None),
        &format!(
            "{TEMPLATE_FIELD}: metrics[0].noDataPolicy: expected Inconclusive, Fail or Pass, \
             got \"Ignore\""
        ),
    );
}

#[test]
fn a_bad_range_query_is_invalid() {
    assert_world_invalid(
        with_broken_template(
            json!({"provider": {"prometheus": {"rangeQuery":
                {"start": "an hour ago", "end": "now()", "step": "0s"}}}}),
            None,
        ),
        &format!(
            "{TEMPLATE_FIELD}: metrics[0].provider.prometheus.rangeQuery.start: expected now(), \
             now() - DURATION or a DURATION ago such as 5m, got \"an hour ago\"; \
             {TEMPLATE_FIELD}: metrics[0].provider.prometheus.rangeQuery.step: must be more \
             than 0, got \"0s\""
        ),
    );
}

#[test]
fn a_promql_syntax_error_is_invalid() {
    let w = with_broken_template(
        json!({"provider": {"prometheus": {"query":
            "sum(rate(errors{hash=\"{{args.hash}}\"}[{{args.window}}]) by ("}}}),
        None,
    );
    let d = w.decide();
    assert!(d.actions.is_empty(), "{:?}", d.actions);
    let note = d.events.first().map(|e| e.note.clone()).unwrap_or_default();
    let prefix =
        format!("{TEMPLATE_FIELD}: metrics[0].provider.prometheus.query: invalid PromQL: ");
    assert!(note.starts_with(&prefix), "{note}");
    assert_world_invalid(w, &note);
}

#[test]
fn every_problem_is_reported_at_once() {
    assert_invalid(
        json!({"replicas": -3, "template": null}),
        json!({"previewService": "nope"}),
        &[],
        "spec.replicas: must be >= 0, got -3; spec.template: required, expected a pod template \
         (or spec.workloadRef naming a Deployment, ReplicaSet or PodTemplate); spec.strategy.blueGreen.previewService: Service \"nope\" not found in the rollout's \
         namespace",
    );
}

#[test]
fn a_different_problem_is_reported_again_and_a_fix_clears_the_condition() {
    let mut w = World::new(json!({}), json!({}));
    w.observed.services.remove(ACTIVE);
    w.step();
    w.edit_spec(|s| s.replicas = Some(-1));
    let d = w.step();
    assert_eq!(reasons(&d), ["InvalidSpec"]);
    assert_eq!(
        d.events[0].note,
        "spec.replicas: must be >= 0, got -1; spec.strategy.blueGreen.activeService: Service \
         \"web-active\" not found in the rollout's namespace"
    );
    assert_eq!(w.status().observed_generation, Some(2));

    w.edit_spec(|s| s.replicas = Some(2));
    w.add_service(ACTIVE);
    let d = w.step();
    assert_eq!(d.actions.len(), 3, "create, switch active, switch preview");
    assert!(!w.has_condition("InvalidSpec"));
    assert_eq!(w.phase(), Some(RolloutPhase::Progressing));
    assert_eq!(w.status().observed_generation, Some(3));
    w.run_until_settled();
    assert_eq!(w.phase(), Some(RolloutPhase::Healthy));
}

#[test]
fn an_invalid_spec_mid_release_freezes_traffic_replica_sets_and_timers() {
    let (mut w, v1) = World::deployed(
        json!({}),
        json!({"autoPromotionEnabled": false, "prePromotionAnalysis": analysis()}),
    );
    let v2 = w.set_image("app:2");
    w.step();
    w.make_ready(&v2);
    w.step();
    w.set_run_phase(AnalysisKind::PrePromotion, AnalysisPhase::Failed);
    w.step();
    assert_eq!(w.rs(&v2).scale_down_deadline, Some(w.at(30)));
    let before = w.status();

    // A typo in the template reference while the aborted preview waits for its scale-down.
    w.edit_spec(|s| {
        if let Some(bg) = s.strategy.blue_green.as_mut() {
            bg.pre_promotion_analysis = Some(
                serde_json::from_value(json!({"templates": [{"templateName": "eror-rate"}]}))
                    .expect("analysis"),
            );
        }
    });
    w.advance(120);
    let d = w.step();
    assert!(d.actions.is_empty(), "{:?}", d.actions);
    assert_eq!(reasons(&d), ["InvalidSpec"]);
    assert_eq!(
        w.rs(&v2).replicas,
        3,
        "the deadline passed, but nothing is touched"
    );
    assert_eq!(w.active(), Some(v1.clone()));
    let s = w.status();
    assert_eq!(s.phase, Some(RolloutPhase::Degraded));
    assert_eq!(s.stable_rs, before.stable_rs);
    assert_eq!(s.current_pod_hash, before.current_pod_hash);
    assert_eq!(s.abort, Some(true));
    assert_eq!(s.observed_generation, Some(3));

    w.edit_spec(|s| {
        if let Some(bg) = s.strategy.blue_green.as_mut() {
            bg.pre_promotion_analysis = Some(serde_json::from_value(analysis()).expect("analysis"));
        }
    });
    let d = w.step();
    assert!(!w.has_condition("InvalidSpec"));
    assert_eq!(d.actions.len(), 1, "{:?}", d.actions);
    assert_eq!(w.rs(&v2).replicas, 0, "the overdue scale-down happens");
    assert_eq!(w.phase(), Some(RolloutPhase::Degraded), "still aborted");
    assert_eq!(w.active(), Some(v1));
}

// ----- analysis inputs knowable before anything moves -----

/// The problems of a blue/green world whose pre-promotion analysis is `analysis`, the template
/// `error-rate` having `patch` merged over its only metric and `args` (when given) as its
/// arguments.
fn analysis_problems(patch: Value, args: Option<Value>, analysis: Value) -> String {
    let mut w = with_broken_template(patch, args);
    w.edit_spec(|s| {
        if let Some(bg) = s.strategy.blue_green.as_mut() {
            bg.pre_promotion_analysis = Some(serde_json::from_value(analysis).expect("analysis"));
        }
    });
    let d = w.decide();
    let invalid = d
        .events
        .iter()
        .find(|e| e.reason == rollgate_api::EventReason::InvalidSpec);
    match invalid {
        Some(e) => {
            assert!(d.actions.is_empty(), "{:?}", d.actions);
            e.note.clone()
        }
        // Valid: the release starts.
        None => {
            assert!(!d.actions.is_empty());
            String::new()
        }
    }
}

const A: &str = "spec.strategy.blueGreen.prePromotionAnalysis";

fn template_ref() -> Value {
    json!({"templates": [{"templateName": TEMPLATE}]})
}

#[test]
fn an_argument_without_a_value_that_the_rollout_does_not_give_is_invalid() {
    let args = json!([{"name": "hash"}, {"name": "window", "value": "5m"}]);
    assert_world_invalid(
        with_broken_template(json!({}), Some(args.clone())),
        &format!(
            "{TEMPLATE_FIELD}: args[0]: argument \"hash\" has no value: expected value or \
             valueFrom, here or in {A}.args"
        ),
    );
    // Given by the Rollout: valid.
    let note = analysis_problems(
        json!({}),
        Some(args),
        json!({"templates": [{"templateName": TEMPLATE}],
            "args": [{"name": "hash", "valueFrom": {"podTemplateHashValue": "Latest"}}]}),
    );
    assert_eq!(note, "");
}

#[test]
fn a_placeholder_naming_no_argument_is_invalid() {
    assert_world_invalid(
        with_broken_template(
            json!({"provider": {"prometheus": {"query": "rate(errors{hash=\"{{args.nope}}\"}[5m])"}}}),
            None,
        ),
        &format!(
            "{TEMPLATE_FIELD}: metrics[0].provider.prometheus.query: {{{{args.nope}}}} names no \
             argument of the template, expected one of args[].name (hash, window)"
        ),
    );
}

#[test]
fn a_field_ref_must_name_a_supported_field_with_a_value() {
    let note = |path: &str| {
        analysis_problems(
            json!({}),
            None,
            json!({"templates": [{"templateName": TEMPLATE}],
                "args": [{"name": "window", "valueFrom": {"fieldRef": {"fieldPath": path}}}]}),
        )
    };
    assert_eq!(
        note("status.phase"),
        format!(
            "{A}.args[0].valueFrom.fieldRef.fieldPath: expected metadata.name, \
             metadata.namespace, metadata.labels['KEY'], metadata.annotations['KEY'] or a field \
             under spec, got \"status.phase\""
        )
    );
    assert_eq!(
        note("metadata.labels['team']"),
        format!(
            "{A}.args[0].valueFrom.fieldRef.fieldPath: \"metadata.labels['team']\" has no string, \
             number or bool value in this Rollout, so the argument would have none"
        )
    );
    assert_eq!(note("spec.replicas"), "");
    assert_eq!(note("metadata.name"), "");
}

#[test]
fn a_missing_secret_is_invalid_until_it_exists() {
    let mut w = with_broken_template(
        json!({"provider": {"prometheus": {"authentication": {"secretName": "prom-auth"}}}}),
        None,
    );
    w.edit_spec(|s| {
        if let Some(bg) = s.strategy.blue_green.as_mut() {
            bg.pre_promotion_analysis = Some(
                serde_json::from_value(json!({"templates": [{"templateName": TEMPLATE}],
                    "args": [{"name": "window",
                        "valueFrom": {"secretKeyRef": {"name": "limits", "key": "window"}}}]}))
                .expect("analysis"),
            );
        }
    });
    let note = w.decide().events[0].note.clone();
    assert_eq!(
        note,
        format!(
            "{A}.args[0].valueFrom.secretKeyRef: Secret \"limits\" not found in the rollout's \
             namespace; {TEMPLATE_FIELD}: metrics[0].provider.prometheus.authentication.\
             secretName: Secret \"prom-auth\" not found in the rollout's namespace"
        )
    );
    w.observed
        .secrets
        .insert("limits".into(), ["other".to_string()].into());
    w.observed
        .secrets
        .insert("prom-auth".into(), Default::default());
    assert_eq!(
        w.decide().events[0].note,
        format!("{A}.args[0].valueFrom.secretKeyRef: Secret \"limits\" has no key \"window\"")
    );
    w.observed
        .secrets
        .insert("limits".into(), ["window".to_string()].into());
    let d = w.step();
    assert!(!w.has_condition("InvalidSpec"), "{:?}", d.events);
    assert!(!d.actions.is_empty());
}

#[test]
fn a_condition_that_is_not_a_bool_or_names_another_variable_is_invalid() {
    assert_eq!(
        analysis_problems(
            json!({"successCondition": "errors < 0.05"}),
            None,
            template_ref()
        ),
        format!(
            "{TEMPLATE_FIELD}: metrics[0].successCondition: \"errors < 0.05\": unknown variable \
             \"errors\": a condition can only name result"
        )
    );
    let note = analysis_problems(
        json!({"failureCondition": "result[0]"}),
        None,
        template_ref(),
    );
    assert!(
        note.starts_with(&format!(
            "{TEMPLATE_FIELD}: metrics[0].failureCondition: \"result[0]\" evaluates to a number"
        )),
        "{note}"
    );
}

#[test]
fn an_address_that_is_not_an_absolute_http_url_is_invalid() {
    assert_eq!(
        analysis_problems(
            json!({"provider": {"prometheus": {"address": "prometheus:9090"}}}),
            None,
            template_ref()
        ),
        format!(
            "{TEMPLATE_FIELD}: metrics[0].provider.prometheus.address: expected an absolute \
             http:// or https:// URL such as http://prometheus:9090, got \"prometheus:9090\" \
             (no scheme)"
        )
    );
    // An address made of an argument is checked with the Rollout's value.
    assert_eq!(
        analysis_problems(
            json!({"provider": {"prometheus": {"address": "{{args.window}}"}}}),
            None,
            json!({"templates": [{"templateName": TEMPLATE}],
                "args": [{"name": "window", "value": "prometheus.monitoring:9090"}]}),
        ),
        format!(
            "{TEMPLATE_FIELD}: metrics[0].provider.prometheus.address: with this Rollout's \
             arguments, expected an absolute http:// or https:// URL such as \
             http://prometheus:9090, got \"prometheus.monitoring:9090\" (no scheme)"
        )
    );
}

#[test]
fn a_header_value_with_a_line_break_is_invalid() {
    assert_eq!(
        analysis_problems(
            json!({"provider": {"prometheus": {"headers": [
                {"key": "X-Scope-OrgID", "value": "team\r\nX-Admin: yes"}]}}}),
            None,
            template_ref()
        ),
        format!(
            "{TEMPLATE_FIELD}: metrics[0].provider.prometheus.headers[0].value: a header value \
             cannot contain control characters, found '\\r'"
        )
    );
    assert_eq!(
        analysis_problems(
            json!({"provider": {"prometheus": {"headers": [
                {"key": "X-Scope-OrgID", "value": "{{args.window}}"}]}}}),
            None,
            json!({"templates": [{"templateName": TEMPLATE}],
                "args": [{"name": "window", "value": "a\nb"}]}),
        ),
        format!(
            "{TEMPLATE_FIELD}: metrics[0].provider.prometheus.headers[0].value: with this \
             Rollout's arguments, a header value cannot contain control characters, found '\\n'"
        )
    );
}

#[test]
fn a_failure_limit_count_can_never_exceed_is_invalid() {
    assert_eq!(
        analysis_problems(
            json!({"count": 2, "interval": "1m", "failureLimit": 2}),
            None,
            template_ref()
        ),
        format!(
            "{TEMPLATE_FIELD}: metrics[0].failureLimit: must be less than count (2), got 2: 2 \
             measurements can never exceed it, so the metric could never be Failed"
        )
    );
}

#[test]
fn a_canary_whose_template_is_broken_never_starts_its_release() {
    let (mut w, v1) = World::canary_deployed(
        json!({}),
        json!({"steps": [{"setWeight": 50}, {"analysis": analysis()}, {"setWeight": 100}]}),
    );
    let stable = w.rs(&v1);
    // The template's query names an argument it does not declare.
    let key = (false, TEMPLATE.to_string());
    let mut t = serde_json::to_value(&w.observed.templates[&key]).expect("template json");
    t["metrics"][0]["provider"]["prometheus"]["query"] =
        json!("rate(errors{hash=\"{{args.revision}}\"}[5m])");
    w.observed
        .templates
        .insert(key, serde_json::from_value(t).expect("template"));
    let v2 = w.set_image("app:2");
    for _ in 0..3 {
        let d = w.step();
        assert!(d.actions.is_empty(), "{:?}", d.actions);
        w.advance(60);
    }
    assert!(w.has_condition("InvalidSpec"));
    assert_eq!(w.phase(), Some(RolloutPhase::Degraded));
    assert!(
        w.message().contains("{{args.revision}} names no argument"),
        "{}",
        w.message()
    );
    assert!(!w.has_rs(&v2), "no canary ReplicaSet, so no canary pod");
    assert_eq!(w.rs(&v1), stable, "the stable ReplicaSet is untouched");
    assert_eq!(w.status().stable_rs, Some(v1));
}
