//! `plan`: every command and every refusal, without a cluster.

use k8s_openapi::api::apps::v1::ReplicaSet;
use rollgate_api::Rollout;
use rollgate_ctl::{Command, ContainerImage, CtlError, PatchTarget, Plan, Timestamp, plan};
use serde_json::{Value, json};

const NOW: &str = "2025-03-01T12:00:00Z";

fn now() -> Timestamp {
    NOW.parse().expect("timestamp")
}

fn template(image: &str) -> Value {
    json!({
        "metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [{"name": "web", "image": image}]}
    })
}

/// A blue/green Rollout `default/web` at resourceVersion 7 with `status`.
fn bluegreen(status: Value) -> Value {
    json!({
        "apiVersion": "rollgate.dev/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": "web", "namespace": "default", "resourceVersion": "7", "generation": 3},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "template": template("web:2"),
            "strategy": {"blueGreen": {"activeService": "web-active"}}
        },
        "status": status
    })
}

/// A canary Rollout with steps setWeight 20, analysis, pause, setWeight 60.
fn canary(status: Value) -> Value {
    let mut r = bluegreen(status);
    r["spec"]["strategy"] = json!({"canary": {"steps": [
        {"setWeight": 20},
        {"analysis": {"templates": [{"templateName": "success-rate"}]}},
        {"pause": {}},
        {"setWeight": 60}
    ]}});
    r
}

fn in_flight() -> Value {
    json!({"currentPodHash": "new", "stableRS": "old", "currentRevision": 2, "phase": "Progressing"})
}

fn with(mut base: Value, extra: Value) -> Value {
    if let (Some(b), Value::Object(e)) = (base.as_object_mut(), extra) {
        b.extend(e);
    }
    base
}

fn rollout(v: Value) -> Rollout {
    serde_json::from_value(v).expect("a Rollout")
}

fn run(cmd: Command, r: Value) -> Result<Plan, CtlError> {
    plan(&cmd, &rollout(r), &[], now())
}

fn ok(cmd: Command, r: Value) -> Plan {
    run(cmd, r).expect("a plan")
}

fn err(cmd: Command, r: Value) -> CtlError {
    let e = run(cmd, r).expect_err("a refusal");
    assert!(e.to_string().contains("default/web"), "{e}");
    e
}

fn promote() -> Command {
    Command::Promote { full: false }
}

fn full() -> Command {
    Command::Promote { full: true }
}

// ---------------------------------------------------------------------------------------------
// promote

#[test]
fn promote_clears_the_pause_conditions_of_a_paused_bluegreen_release() {
    let status = with(
        in_flight(),
        json!({"controllerPause": true, "pauseConditions": [{"reason": "BlueGreenPause", "startTime": NOW}]}),
    );
    let p = ok(promote(), bluegreen(status));
    assert_eq!(p.target, PatchTarget::Status);
    assert_eq!(
        p.patch,
        json!({"metadata": {"resourceVersion": "7"}, "status": {"pauseConditions": null}})
    );
    assert_eq!(
        p.message,
        "rollout 'default/web' promoted (BlueGreenPause ended)"
    );
}

#[test]
fn promote_of_a_canary_pause_step_names_the_step() {
    let status = with(
        in_flight(),
        json!({"currentStepIndex": 2, "controllerPause": true,
               "pauseConditions": [{"reason": "CanaryPauseStep", "startTime": NOW}]}),
    );
    let p = ok(promote(), canary(status));
    assert_eq!(p.target, PatchTarget::Status);
    assert_eq!(p.patch["status"], json!({"pauseConditions": null}));
    assert_eq!(
        p.message,
        "rollout 'default/web' promoted (pause at step 3/4 skipped)"
    );
}

#[test]
fn promote_of_a_canary_analysis_step_advances_the_step_index() {
    let p = ok(
        promote(),
        canary(with(in_flight(), json!({"currentStepIndex": 1}))),
    );
    assert_eq!(p.target, PatchTarget::Status);
    assert_eq!(
        p.patch,
        json!({"metadata": {"resourceVersion": "7"}, "status": {"currentStepIndex": 2}})
    );
    assert_eq!(
        p.message,
        "rollout 'default/web' promoted (analysis at step 2/4 skipped)"
    );
}

#[test]
fn promote_of_a_canary_without_a_step_index_skips_step_zero() {
    let p = ok(promote(), canary(in_flight()));
    assert_eq!(p.patch["status"], json!({"currentStepIndex": 1}));
    assert_eq!(
        p.message,
        "rollout 'default/web' promoted (setWeight 20 at step 1/4 skipped)"
    );
}

#[test]
fn promote_of_a_canary_past_its_last_step_is_refused() {
    let e = err(
        promote(),
        canary(with(in_flight(), json!({"currentStepIndex": 4}))),
    );
    assert!(matches!(e, CtlError::NotPaused { .. }), "{e:?}");
}

#[test]
fn promote_of_a_bluegreen_release_that_is_not_paused_is_refused() {
    let e = err(promote(), bluegreen(in_flight()));
    assert!(matches!(e, CtlError::NotPaused { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        "rollout default/web is not paused: nothing to promote (use --full to skip all remaining steps and analysis)"
    );
}

#[test]
fn promote_of_an_aborted_release_is_refused_with_a_retry_hint() {
    let status = with(
        in_flight(),
        json!({"abort": true, "pauseConditions": [{"reason": "BlueGreenPause", "startTime": NOW}]}),
    );
    let e = err(promote(), bluegreen(status));
    assert!(matches!(e, CtlError::Aborted { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        "rollout default/web is aborted: use `rollgate retry web` to start the release again"
    );
}

#[test]
fn promote_while_spec_paused_is_refused_with_a_resume_hint() {
    let mut r = bluegreen(with(
        in_flight(),
        json!({"pauseConditions": [{"reason": "BlueGreenPause", "startTime": NOW}]}),
    ));
    r["spec"]["paused"] = json!(true);
    let e = err(promote(), r);
    assert!(matches!(e, CtlError::PausedBySpec { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        "rollout default/web is paused by spec.paused: use `rollgate resume web`"
    );
}

#[test]
fn promote_with_nothing_in_flight_is_refused() {
    let healthy = json!({"currentPodHash": "old", "stableRS": "old", "phase": "Healthy"});
    let e = err(promote(), bluegreen(healthy));
    assert!(
        matches!(
            e,
            CtlError::NothingInFlight {
                action: "promote",
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "rollout default/web has no release in flight (the current template old is the stable one, phase Healthy): nothing to promote"
    );
    // No status at all: the controller has not seen the rollout yet.
    let e = err(promote(), bluegreen(Value::Null));
    assert!(matches!(e, CtlError::NothingInFlight { .. }), "{e:?}");
}

// ---------------------------------------------------------------------------------------------
// promote --full

#[test]
fn promote_full_sets_promote_full() {
    let p = ok(
        full(),
        canary(with(in_flight(), json!({"currentStepIndex": 1}))),
    );
    assert_eq!(p.target, PatchTarget::Status);
    assert_eq!(
        p.patch,
        json!({"metadata": {"resourceVersion": "7"}, "status": {"promoteFull": true}})
    );
    assert_eq!(
        p.message,
        "rollout 'default/web' fully promoted (remaining steps, pauses and analysis skipped)"
    );
}

#[test]
fn promote_full_while_spec_paused_says_when_it_takes_effect() {
    let mut r = bluegreen(in_flight());
    r["spec"]["paused"] = json!(true);
    let p = ok(full(), r);
    assert_eq!(p.patch["status"], json!({"promoteFull": true}));
    assert!(p.message.contains("`rollgate resume web`"), "{}", p.message);
}

#[test]
fn promote_full_is_refused_when_aborted_or_nothing_is_in_flight() {
    let e = err(full(), bluegreen(with(in_flight(), json!({"abort": true}))));
    assert!(matches!(e, CtlError::Aborted { .. }), "{e:?}");
    let e = err(
        full(),
        bluegreen(json!({"currentPodHash": "a", "stableRS": "a"})),
    );
    assert!(matches!(e, CtlError::NothingInFlight { .. }), "{e:?}");
}

// ---------------------------------------------------------------------------------------------
// abort, retry

#[test]
fn abort_sets_abort() {
    let p = ok(Command::Abort, bluegreen(in_flight()));
    assert_eq!(p.target, PatchTarget::Status);
    assert_eq!(
        p.patch,
        json!({"metadata": {"resourceVersion": "7"}, "status": {"abort": true}})
    );
    assert!(
        p.message.starts_with("rollout 'default/web' aborted"),
        "{}",
        p.message
    );
}

#[test]
fn abort_is_refused_when_already_aborted_or_nothing_is_in_flight() {
    let e = err(
        Command::Abort,
        bluegreen(with(in_flight(), json!({"abort": true}))),
    );
    assert!(matches!(e, CtlError::AlreadyAborted { .. }), "{e:?}");
    assert!(e.to_string().contains("already aborted"), "{e}");
    let e = err(
        Command::Abort,
        bluegreen(json!({"currentPodHash": "a", "stableRS": "a"})),
    );
    assert!(
        matches!(
            e,
            CtlError::NothingInFlight {
                action: "abort",
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().ends_with("nothing to abort"), "{e}");
}

#[test]
fn retry_clears_abort() {
    let p = ok(
        Command::Retry,
        bluegreen(with(in_flight(), json!({"abort": true}))),
    );
    assert_eq!(p.target, PatchTarget::Status);
    assert_eq!(
        p.patch,
        json!({"metadata": {"resourceVersion": "7"}, "status": {"abort": false}})
    );
    assert!(
        p.message.starts_with("rollout 'default/web' retried"),
        "{}",
        p.message
    );
}

#[test]
fn retry_is_refused_when_not_aborted() {
    for status in [in_flight(), with(in_flight(), json!({"abort": false}))] {
        let e = err(Command::Retry, bluegreen(status));
        assert!(matches!(e, CtlError::NotAborted { .. }), "{e:?}");
        assert_eq!(
            e.to_string(),
            "rollout default/web is not aborted: nothing to retry"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// pause, resume

#[test]
fn pause_sets_spec_paused_and_resume_clears_it() {
    let p = ok(Command::Pause, bluegreen(in_flight()));
    assert_eq!(p.target, PatchTarget::Spec);
    assert_eq!(
        p.patch,
        json!({"metadata": {"resourceVersion": "7"}, "spec": {"paused": true}})
    );
    assert_eq!(p.message, "rollout 'default/web' paused");

    let mut r = bluegreen(in_flight());
    r["spec"]["paused"] = json!(true);
    let p = ok(Command::Resume, r);
    assert_eq!(p.target, PatchTarget::Spec);
    assert_eq!(
        p.patch,
        json!({"metadata": {"resourceVersion": "7"}, "spec": {"paused": false}})
    );
    assert_eq!(p.message, "rollout 'default/web' resumed");
}

#[test]
fn pause_when_paused_and_resume_when_not_are_refused() {
    let mut r = bluegreen(in_flight());
    r["spec"]["paused"] = json!(true);
    let e = err(Command::Pause, r);
    assert!(matches!(e, CtlError::AlreadyPaused { .. }), "{e:?}");
    for paused in [Value::Null, json!(false)] {
        let mut r = bluegreen(in_flight());
        r["spec"]["paused"] = paused;
        let e = err(Command::Resume, r);
        assert!(matches!(e, CtlError::NotPausedBySpec { .. }), "{e:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// restart

#[test]
fn restart_writes_now_as_restart_at() {
    let p = ok(Command::Restart, bluegreen(Value::Null));
    assert_eq!(p.target, PatchTarget::Spec);
    assert_eq!(
        p.patch,
        json!({"metadata": {"resourceVersion": "7"}, "spec": {"restartAt": NOW}})
    );
    assert!(p.message.contains(NOW), "{}", p.message);
}

#[test]
fn restart_rounds_now_up_to_the_next_whole_second() {
    let now: Timestamp = "2025-03-01T12:00:00.25Z".parse().expect("timestamp");
    let p = plan(
        &Command::Restart,
        &rollout(bluegreen(Value::Null)),
        &[],
        now,
    )
    .expect("a plan");
    assert_eq!(
        p.patch["spec"],
        json!({"restartAt": "2025-03-01T12:00:01Z"})
    );
}

#[test]
fn without_a_resource_version_the_patch_has_no_metadata() {
    let mut r = bluegreen(Value::Null);
    r["metadata"]
        .as_object_mut()
        .expect("metadata")
        .remove("resourceVersion");
    let p = ok(Command::Pause, r);
    assert_eq!(p.patch, json!({"spec": {"paused": true}}));
}

// ---------------------------------------------------------------------------------------------
// set image

fn images(args: &[&str]) -> Command {
    Command::SetImage {
        images: args
            .iter()
            .map(|a| a.parse::<ContainerImage>().expect("C=I"))
            .collect(),
    }
}

fn two_containers() -> Value {
    let mut r = bluegreen(Value::Null);
    r["spec"]["template"]["spec"] = json!({
        "initContainers": [{"name": "migrate", "image": "migrate:1"}],
        "containers": [
            {"name": "web", "image": "web:1", "ports": [{"containerPort": 8080}]},
            {"name": "proxy", "image": "envoy:1"}
        ]
    });
    r
}

#[test]
fn set_image_patches_the_whole_container_list() {
    let p = ok(images(&["proxy=envoy:2"]), two_containers());
    assert_eq!(p.target, PatchTarget::Spec);
    assert_eq!(
        p.patch,
        json!({"metadata": {"resourceVersion": "7"}, "spec": {"template": {"spec": {"containers": [
            {"name": "web", "image": "web:1", "ports": [{"containerPort": 8080}]},
            {"name": "proxy", "image": "envoy:2"}
        ]}}}})
    );
    assert_eq!(
        p.message,
        "rollout 'default/web' image updated: proxy=envoy:2"
    );
}

#[test]
fn set_image_of_an_init_container_and_a_container() {
    let p = ok(
        images(&["migrate=migrate:2", "web=web:2"]),
        two_containers(),
    );
    let pod = &p.patch["spec"]["template"]["spec"];
    assert_eq!(
        pod["initContainers"],
        json!([{"name": "migrate", "image": "migrate:2"}])
    );
    assert_eq!(pod["containers"][0]["image"], "web:2");
    assert_eq!(pod["containers"][1]["image"], "envoy:1");
    assert_eq!(
        p.message,
        "rollout 'default/web' image updated: migrate=migrate:2, web=web:2"
    );
}

#[test]
fn set_image_to_the_same_image_says_so() {
    let p = ok(images(&["web=web:1"]), two_containers());
    assert!(p.message.contains("unchanged"), "{}", p.message);
}

#[test]
fn set_image_of_an_unknown_container_lists_the_existing_ones() {
    let e = err(images(&["web=web:2", "nginx=nginx:1"]), two_containers());
    match &e {
        CtlError::UnknownContainer {
            container,
            existing,
            ..
        } => {
            assert_eq!(container, "nginx");
            assert_eq!(existing, &["web", "proxy", "migrate (init)"]);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(
        e.to_string(),
        "rollout default/web has no container 'nginx'; its containers are: web, proxy, migrate (init)"
    );
}

#[test]
fn set_image_without_a_template_or_without_images_is_refused() {
    let mut r = bluegreen(Value::Null);
    r["spec"].as_object_mut().expect("spec").remove("template");
    let e = err(images(&["web=web:2"]), r);
    assert!(matches!(e, CtlError::NoTemplate { .. }), "{e:?}");
    let e = run(images(&[]), bluegreen(Value::Null)).expect_err("no images");
    assert!(matches!(e, CtlError::NoImages), "{e:?}");
}

// ---------------------------------------------------------------------------------------------
// undo

/// `template(image)` as a real API server stores it in a ReplicaSet: with pod defaults.
fn served(image: &str) -> Value {
    let mut t = template(image);
    t["spec"]["restartPolicy"] = json!("Always");
    t["spec"]["dnsPolicy"] = json!("ClusterFirst");
    t["spec"]["containers"][0]["imagePullPolicy"] = json!("IfNotPresent");
    t["spec"]["containers"][0]["terminationMessagePath"] = json!("/dev/termination-log");
    t
}

/// ReplicaSet `web-<hash>` of revision `revision` running `image`, as the controller creates
/// it from `template(image)` (kept in the `rollgate.dev/template` annotation) and the API
/// server stores it (its own template defaulted).
fn rs(hash: &str, revision: i64, image: &str) -> ReplicaSet {
    let mut r = legacy_rs(hash, revision, image);
    let sent = serde_json::to_string(&template(image)).expect("json");
    if let Some(a) = r.metadata.annotations.as_mut() {
        a.insert("rollgate.dev/template".into(), sent);
    }
    r
}

/// [`rs`] without the `rollgate.dev/template` annotation (made by an older controller, or
/// with a template too large for an annotation).
fn legacy_rs(hash: &str, revision: i64, image: &str) -> ReplicaSet {
    let mut t = served(image);
    t["metadata"]["labels"]["rollgate.dev/pod-template-hash"] = json!(hash);
    serde_json::from_value(json!({
        "metadata": {
            "name": format!("web-{hash}"),
            "namespace": "default",
            "labels": {"rollgate.dev/rollout": "web", "rollgate.dev/pod-template-hash": hash},
            "annotations": {"rollgate.dev/revision": revision.to_string()}
        },
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": "web", "rollgate.dev/pod-template-hash": hash}},
            "template": t
        }
    }))
    .expect("a ReplicaSet")
}

/// Revisions 3 (web:1), 4 (web:2, current in the spec) and 5 (web:3) kept; status at 4.
fn history() -> Vec<ReplicaSet> {
    vec![
        rs("ccc", 5, "web:3"),
        rs("aaa", 3, "web:1"),
        rs("bbb", 4, "web:2"),
    ]
}

fn undo_rollout() -> Rollout {
    rollout(bluegreen(json!({
        "currentPodHash": "bbb", "stableRS": "bbb", "currentRevision": 4, "observedGeneration": 2
    })))
}

fn undo(to: Option<i64>, r: &Rollout, sets: &[ReplicaSet]) -> Result<Plan, CtlError> {
    plan(&Command::Undo { to_revision: to }, r, sets, now())
}

#[test]
fn undo_goes_back_to_the_highest_revision_below_the_current_one() {
    let p = undo(None, &undo_rollout(), &history()).expect("a plan");
    assert_eq!(p.target, PatchTarget::Spec);
    // Only the image differs; the hash label of the ReplicaSet is not copied.
    assert_eq!(
        p.patch,
        json!({"metadata": {"resourceVersion": "7"}, "spec": {"template": {"spec": {"containers": [
            {"name": "web", "image": "web:1"}
        ]}}}})
    );
    assert_eq!(
        p.message,
        "rollout 'default/web' rolled back to revision 3 (ReplicaSet web-aaa, image web:1)"
    );
}

#[test]
fn undo_without_a_current_revision_starts_from_the_newest() {
    let mut r = undo_rollout();
    r.status = None;
    r.spec.template = Some(serde_json::from_value(template("web:3")).expect("template"));
    let p = undo(None, &r, &history()).expect("a plan");
    assert!(
        p.message.contains("revision 4 (ReplicaSet web-bbb"),
        "{}",
        p.message
    );
}

#[test]
fn undo_to_a_revision_removes_what_the_current_template_added() {
    let mut r = undo_rollout();
    let t = r.spec.template.as_mut().expect("template");
    t.metadata.as_mut().expect("metadata").annotations =
        Some([("note".to_string(), "v2".to_string())].into());
    let p = undo(Some(5), &r, &history()).expect("a plan");
    assert_eq!(
        p.patch["spec"]["template"],
        json!({
            "metadata": {"annotations": null},
            "spec": {"containers": [{"name": "web", "image": "web:3"}]}
        })
    );
    // Applying the patch to the current template gives the one revision 5 was made from.
    let mut current = serde_json::to_value(r.spec.template.as_ref().expect("t")).expect("json");
    merge(&mut current, &p.patch["spec"]["template"]);
    assert_eq!(current, template("web:3"));
}

#[test]
fn undo_writes_back_the_template_as_sent_not_the_server_defaulted_one() {
    // Only the image differs from the current template: none of the server's pod defaults
    // in the ReplicaSet's own template are copied, so the template hashes to web-aaa's again.
    let p = undo(Some(3), &undo_rollout(), &history()).expect("a plan");
    assert_eq!(
        p.patch["spec"]["template"],
        json!({"spec": {"containers": [{"name": "web", "image": "web:1"}]}})
    );
    assert!(!p.message.contains("warning"), "{}", p.message);
}

#[test]
fn undo_without_the_template_annotation_falls_back_to_the_replica_set_template_and_warns() {
    for annotation in [None, Some("{not json")] {
        let mut old = legacy_rs("aaa", 3, "web:1");
        if let (Some(a), Some(v)) = (old.metadata.annotations.as_mut(), annotation) {
            a.insert("rollgate.dev/template".into(), v.into());
        }
        let sets = vec![old, rs("bbb", 4, "web:2")];
        let p = undo(Some(3), &undo_rollout(), &sets).expect("a plan");
        let mut current = serde_json::to_value(undo_rollout().spec.template).expect("json");
        merge(&mut current, &p.patch["spec"]["template"]);
        assert_eq!(current, served("web:1"), "{annotation:?}");
        assert!(
            p.message.ends_with(
                "; warning: ReplicaSet web-aaa has no readable rollgate.dev/template \
                 annotation, so its own template was written back: if the API server filled \
                 defaults into it, this starts a new release instead of a fast rollback"
            ),
            "{}",
            p.message
        );
    }
}

fn merge(target: &mut Value, patch: &Value) {
    match (target.as_object_mut(), patch.as_object()) {
        (Some(t), Some(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        _ => *target = patch.clone(),
    }
}

#[test]
fn undo_to_a_missing_revision_lists_the_available_ones() {
    let e = undo(Some(9), &undo_rollout(), &history()).expect_err("no revision 9");
    assert!(
        matches!(&e, CtlError::NoRevision { revision: 9, available, .. } if available == &[3, 4, 5]),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "rollout default/web has no revision 9; revisions available: 3, 4, 5"
    );
}

#[test]
fn undo_with_no_older_revision_is_refused() {
    let sets = vec![rs("bbb", 4, "web:2")];
    let e = undo(None, &undo_rollout(), &sets).expect_err("nothing older");
    assert!(
        matches!(e, CtlError::NoPreviousRevision { current: 4, .. }),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "rollout default/web has no revision before 4 to roll back to; revisions available: 4"
    );
    let e = undo(None, &undo_rollout(), &[]).expect_err("no history");
    assert!(e.to_string().ends_with("revisions available: none"), "{e}");
}

#[test]
fn undo_to_the_current_template_is_refused() {
    let e = undo(Some(4), &undo_rollout(), &history()).expect_err("same template");
    assert!(
        matches!(e, CtlError::AlreadyCurrent { revision: 4, .. }),
        "{e:?}"
    );
    assert!(e.to_string().contains("nothing to undo"), "{e}");
}

#[test]
fn undo_to_the_revision_the_status_reports_current_is_refused() {
    // The API server defaulted the ReplicaSet's template, so the templates differ; the status
    // (up to date with the spec) says revision 5's hash is the current one.
    let mut r = undo_rollout();
    r.metadata.generation = Some(2);
    if let Some(s) = r.status.as_mut() {
        s.current_pod_hash = Some("ccc".into());
    }
    let e = undo(Some(5), &r, &history()).expect_err("current");
    assert!(
        matches!(e, CtlError::AlreadyCurrent { revision: 5, .. }),
        "{e:?}"
    );
    // A stale status (spec changed since) does not count.
    r.metadata.generation = Some(3);
    assert!(undo(Some(5), &r, &history()).is_ok());
}

#[test]
fn undo_ignores_replica_sets_of_other_rollouts_and_without_revision() {
    let mut other = rs("zzz", 3, "other:1");
    other.metadata.labels = Some([("rollgate.dev/rollout".into(), "api".into())].into());
    let mut unnumbered = rs("yyy", 1, "web:0");
    unnumbered.metadata.annotations = Some([("rollgate.dev/revision".into(), "x".into())].into());
    let sets = vec![other, unnumbered, rs("bbb", 4, "web:2")];
    let e = undo(Some(3), &undo_rollout(), &sets).expect_err("not ours");
    assert!(
        matches!(&e, CtlError::NoRevision { available, .. } if available == &[4]),
        "{e:?}"
    );
}

#[test]
fn undo_to_a_replica_set_without_a_template_is_refused() {
    let mut bare = legacy_rs("aaa", 3, "web:1");
    bare.spec.template = None;
    let e = undo(Some(3), &undo_rollout(), &[bare]).expect_err("no template");
    assert!(matches!(e, CtlError::NoTemplate { .. }), "{e:?}");
    assert!(e.to_string().contains("ReplicaSet web-aaa"), "{e}");
}
