//! The canary `experiment` step in `rollgate get rollout` (header and tree) and in `undo`: an
//! experiment's ReplicaSets and AnalysisRuns are shown under their experiment, beneath the
//! revision of the release that ran it, and never count as revisions.

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use rollgate_api::{AnalysisRun, Rollout};
use rollgate_ctl::tree::{Objects, render};
use rollgate_ctl::{Command, CtlError, Timestamp, plan};
use serde_json::{Value, json};

const T0: &str = "2026-01-01T00:00:00Z";

fn at(minute: u32) -> String {
    format!("2026-01-01T00:{minute:02}:00Z")
}

fn now() -> Timestamp {
    at(10).parse().expect("time")
}

fn from<T: serde::de::DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).expect("a valid object")
}

fn template(image: &str) -> Value {
    json!({"metadata": {"labels": {"app": "web"}},
           "spec": {"containers": [{"name": "web", "image": image}]}})
}

/// Canary `shop/web`: setWeight 20, an experiment (10m; baseline of the stable template,
/// canary of the release's with 2 pods; analyses smoke, required, and latency), setWeight 50.
fn rollout(status: Value) -> Rollout {
    from(json!({
        "apiVersion": "rollgate.dev/v1alpha1", "kind": "Rollout",
        "metadata": {"name": "web", "namespace": "shop", "creationTimestamp": T0,
                     "generation": 2, "resourceVersion": "7"},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
            "template": template("web:2"),
            "strategy": {"canary": {"steps": [
                {"setWeight": 20},
                {"experiment": {"duration": "10m",
                    "templates": [{"name": "baseline", "specRef": "stable"},
                                  {"name": "canary", "specRef": "canary", "replicas": 2}],
                    "analyses": [{"name": "smoke", "templateName": "smoke",
                                  "requiredForCompletion": true},
                                 {"name": "latency", "templateName": "latency"}]}},
                {"setWeight": 50}]}}},
        "status": status
    }))
}

/// Revision 2 (`h2`) in flight over revision 1 (`h1`), at the experiment step.
fn in_flight(experiment: Value) -> Value {
    json!({"phase": "Progressing", "currentStepIndex": 1, "stableRS": "h1",
           "currentPodHash": "h2", "currentRevision": 2, "observedGeneration": 2,
           "canary": {"weights": {"setWeight": 20, "actualWeight": 20},
                      "currentExperiment": experiment["name"].clone(),
                      "experiment": experiment}})
}

/// The running experiment (after a retry, hence `-1`), available since 00:06.
fn running() -> Value {
    json!({"name": "web-h2-2-1-1", "step": 1, "phase": "Running",
           "availableAt": at(6),
           "templates": [
               {"name": "baseline", "replicaSet": "web-h2-2-1-1-baseline", "podTemplateHash": "e3"},
               {"name": "canary", "replicaSet": "web-h2-2-1-1-canary", "podTemplateHash": "e4"}],
           "analysisRuns": [
               {"analysis": "smoke", "name": "web-h2-experiment-1-smoke-2", "status": "Running"}]})
}

/// A revision's ReplicaSet `web-<hash>`, as the controller makes it.
fn revision_rs(hash: &str, revision: i64, image: &str, desired: i32, ready: i32) -> ReplicaSet {
    let mut t = template(image);
    t["metadata"]["labels"]["rollgate.dev/pod-template-hash"] = json!(hash);
    from(json!({
        "metadata": {"name": format!("web-{hash}"), "namespace": "shop", "creationTimestamp": T0,
            "labels": {"rollgate.dev/rollout": "web", "rollgate.dev/pod-template-hash": hash},
            "annotations": {"rollgate.dev/revision": revision.to_string(),
                            "rollgate.dev/template": template(image).to_string()}},
        "spec": {"replicas": desired, "selector": {"matchLabels": {"app": "web"}}, "template": t},
        "status": {"replicas": desired, "readyReplicas": ready}
    }))
}

/// ReplicaSet `<experiment>-<name>` of the experiment step of release `h2`, as the engine
/// makes it: no revision annotation, its own hash.
fn experiment_rs(
    experiment: &str,
    name: &str,
    hash: &str,
    image: &str,
    created: &str,
    (desired, ready): (i32, i32),
) -> ReplicaSet {
    let mut t = template(image);
    t["metadata"]["labels"]["rollgate.dev/pod-template-hash"] = json!(hash);
    t["metadata"]["labels"]["rollgate.dev/experiment-template"] = json!(name);
    from(json!({
        "metadata": {"name": format!("{experiment}-{name}"), "namespace": "shop",
            "creationTimestamp": created,
            "labels": {"rollgate.dev/rollout": "web", "rollgate.dev/pod-template-hash": hash,
                       "rollgate.dev/experiment-template": name,
                       "rollgate.dev/experiment-release": "h2"},
            "annotations": {"rollgate.dev/experiment": experiment}},
        "spec": {"replicas": desired, "selector": {"matchLabels": {"app": "web"}}, "template": t},
        "status": {"replicas": desired, "readyReplicas": ready}
    }))
}

fn pod(name: &str, hash: &str, ready: bool) -> Pod {
    from(json!({
        "metadata": {"name": name, "creationTimestamp": T0,
                     "labels": {"rollgate.dev/pod-template-hash": hash}},
        "spec": {"containers": [{"name": "web"}]},
        "status": {"containerStatuses": [{"name": "web", "ready": ready, "restartCount": 0,
            "image": "x", "imageID": "", "state": {"running": {}}}]}
    }))
}

/// An AnalysisRun of release `h2` of kind `kind` (`experiment` ones for step 1's `smoke`).
fn run(name: &str, kind: &str, phase: &str, created: &str) -> AnalysisRun {
    let mut labels = json!({"rollgate.dev/rollout": "web", "rollgate.dev/pod-template-hash": "h2",
                            "rollgate.dev/analysis": kind});
    if kind == "experiment" {
        labels["rollgate.dev/step-index"] = json!("1");
        labels["rollgate.dev/experiment-analysis"] = json!("smoke");
    }
    from(json!({
        "apiVersion": "rollgate.dev/v1alpha1", "kind": "AnalysisRun",
        "metadata": {"name": name, "namespace": "shop", "creationTimestamp": created,
                     "labels": labels},
        "spec": {"metrics": []},
        "status": {"phase": phase}
    }))
}

/// Revisions 1 and 2; the experiment that errored (`web-h2-2-1`, scaled down, its run
/// `smoke-1`) and the one run after the retry (`web-h2-2-1-1`, its run `smoke-2`); a
/// background run of revision 2.
fn objects(status: Value) -> Objects {
    Objects {
        rollout: rollout(status),
        replica_sets: vec![
            experiment_rs("web-h2-2-1", "baseline", "e1", "web:1", &at(1), (0, 0)),
            revision_rs("h1", 1, "web:1", 3, 3),
            experiment_rs("web-h2-2-1-1", "canary", "e4", "web:2", &at(5), (2, 1)),
            experiment_rs("web-h2-2-1", "canary", "e2", "web:2", &at(1), (0, 0)),
            revision_rs("h2", 2, "web:2", 1, 1),
            experiment_rs("web-h2-2-1-1", "baseline", "e3", "web:1", &at(5), (1, 1)),
        ],
        pods: vec![
            pod("web-h2-2-1-1-baseline-a", "e3", true),
            pod("web-h2-2-1-1-canary-a", "e4", true),
            pod("web-h2-2-1-1-canary-b", "e4", false),
        ],
        runs: vec![
            run(
                "web-h2-experiment-1-smoke-2",
                "experiment",
                "Running",
                &at(6),
            ),
            run("web-h2-background-1", "background", "Running", &at(2)),
            run("web-h2-experiment-1-smoke-1", "experiment", "Error", &at(2)),
        ],
    }
}

/// The lines of `text` from the one starting with `first`, runs of spaces collapsed to one.
fn lines_from(text: &str, first: &str) -> Vec<String> {
    text.lines()
        .skip_while(|l| !l.starts_with(first))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

#[test]
fn the_header_shows_the_running_experiment_with_its_replica_sets_and_analyses() {
    let text = render(&objects(in_flight(running())), now(), true);
    let expected = "  Step:          2/3\n\
                    \x20 SetWeight:     20\n\
                    \x20 ActualWeight:  20\n\
                    \x20 Experiment:    web-h2-2-1-1 (Running)\n\
                    \x20   Available:   2026-01-01T00:06:00Z\n\
                    \x20   Duration:    10m, until 2026-01-01T00:16:00Z, 6m left; ends once the required analyses succeed\n\
                    \x20   Templates:   baseline (stable)  web-h2-2-1-1-baseline  1/1 ready\n\
                    \x20                canary (canary)    web-h2-2-1-1-canary    1/2 ready\n\
                    \x20   Analyses:    smoke (required)  web-h2-experiment-1-smoke-2  Running\n\
                    \x20                latency           -                            not started\n\
                    Images:";
    assert!(text.contains(expected), "{text}");
    // The images are the revisions' only.
    assert!(
        text.contains(
            "Images:          web:2 (canary)\n                 web:1 (stable)\nReplicas:"
        ),
        "{text}"
    );
    // Without ages (watch frames) the time left is left out; the end time stays.
    let frame = render(&objects(in_flight(running())), now(), false);
    assert!(
        frame.contains(
            "\n    Duration:    10m, until 2026-01-01T00:16:00Z; ends once the required \
             analyses succeed\n"
        ),
        "{frame}"
    );
    // Once the duration is over.
    let late: Timestamp = "2026-01-01T00:20:00Z".parse().expect("time");
    let text = render(&objects(in_flight(running())), late, true);
    assert!(
        text.contains(
            "\n    Duration:    10m, until 2026-01-01T00:16:00Z, over; ends once the required \
             analyses succeed\n"
        ),
        "{text}"
    );
}

#[test]
fn a_pending_experiment_shows_its_templates_before_they_exist() {
    let pending = json!({"name": "web-h2-2-1", "step": 1, "phase": "Pending"});
    let mut o = objects(in_flight(pending));
    o.replica_sets.retain(|rs| {
        rs.metadata
            .name
            .as_deref()
            .is_some_and(|n| !n.starts_with("web-h2-2-1-1"))
    });
    o.replica_sets
        .retain(|rs| rs.metadata.name.as_deref() != Some("web-h2-2-1-canary"));
    let text = render(&o, now(), true);
    let expected = "  Experiment:    web-h2-2-1 (Pending)\n\
                    \x20   Duration:    10m (counts once every ReplicaSet is available); ends once the required analyses succeed\n\
                    \x20   Templates:   baseline (stable)  web-h2-2-1-baseline  0/0 ready\n\
                    \x20                canary (canary)    web-h2-2-1-canary    not created\n\
                    \x20   Analyses:    smoke (required)  -  not started\n\
                    \x20                latency           -  not started\n";
    assert!(text.contains(expected), "{text}");
    assert!(!text.contains("\n    Available:"), "{text}");
}

#[test]
fn only_the_experiment_name_when_the_status_has_no_more() {
    let mut status = in_flight(running());
    status["canary"]["experiment"] = Value::Null;
    let text = render(&objects(status), now(), true);
    assert!(
        text.contains("\n  Experiment:    web-h2-2-1-1\nImages:"),
        "{text}"
    );
    let mut status = in_flight(running());
    status["canary"] = json!({});
    let text = render(&objects(status), now(), true);
    assert!(!text.contains("Experiment:"), "{text}");
}

#[test]
fn the_tree_shows_experiments_under_the_revision_that_ran_them() {
    let text = render(&objects(in_flight(running())), now(), false);
    let tree = lines_from(&text, "NAME");
    let expected = [
        "NAME KIND STATUS INFO",
        "⟳ web Rollout ◌ Progressing",
        "├──# revision:2",
        "│ ├──⧉ web-h2 ReplicaSet ✔ Healthy canary",
        "│ ├──Σ web-h2-2-1-1 Experiment ◌ Running",
        "│ │ ├──⧉ web-h2-2-1-1-baseline ReplicaSet ✔ Healthy template:baseline",
        "│ │ │ └──□ web-h2-2-1-1-baseline-a Pod ✔ Running ready:1/1",
        "│ │ ├──⧉ web-h2-2-1-1-canary ReplicaSet ◌ Progressing (1/2) template:canary",
        "│ │ │ ├──□ web-h2-2-1-1-canary-a Pod ✔ Running ready:1/1",
        "│ │ │ └──□ web-h2-2-1-1-canary-b Pod ◌ NotReady ready:0/1",
        "│ │ └──α web-h2-experiment-1-smoke-2 AnalysisRun ◌ Running",
        "│ ├──Σ web-h2-2-1 Experiment • ScaledDown",
        "│ │ ├──⧉ web-h2-2-1-baseline ReplicaSet • ScaledDown template:baseline",
        "│ │ ├──⧉ web-h2-2-1-canary ReplicaSet • ScaledDown template:canary",
        "│ │ └──α web-h2-experiment-1-smoke-1 AnalysisRun ⚠ Error",
        "│ └──α web-h2-background-1 AnalysisRun ◌ Running",
        "└──# revision:1",
        "   └──⧉ web-h1 ReplicaSet ✔ Healthy stable",
    ];
    let expected: Vec<String> = expected
        .iter()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(tree, expected, "{text}");
}

#[test]
fn experiments_whose_release_has_no_replica_set_left_stay_out_of_other_revisions() {
    // Revision 2's own ReplicaSet is gone: the experiments still sit under revision 2 (from
    // their names), never under a revision 0 of their own.
    let mut o = objects(in_flight(running()));
    o.replica_sets
        .retain(|rs| rs.metadata.name.as_deref() != Some("web-h2"));
    let text = render(&o, now(), false);
    let revisions: Vec<&str> = text.lines().filter(|l| l.contains("# revision:")).collect();
    assert_eq!(revisions, ["├──# revision:2", "└──# revision:1"], "{text}");
    assert!(
        text.contains("├──Σ web-h2-2-1-1 ") && text.contains("└──Σ web-h2-2-1 "),
        "{text}"
    );
}

#[test]
fn a_finished_experiment_shows_its_phase() {
    for (phase, shown) in [
        ("Successful", "✔ Successful"),
        ("Failed", "✖ Failed"),
        ("Inconclusive", "? Inconclusive"),
        ("Error", "⚠ Error"),
        ("Pending", "◌ Pending"),
    ] {
        let mut x = running();
        x["phase"] = json!(phase);
        let text = render(&objects(in_flight(x)), now(), false);
        let node = text
            .lines()
            .find(|l| l.contains("Σ web-h2-2-1-1 "))
            .unwrap_or_default();
        assert!(node.ends_with(shown), "{phase}: {text}");
    }
}

// ---------------------------------------------------------------------------------------------
// undo

fn undo(to: Option<i64>, r: &Rollout, sets: &[ReplicaSet]) -> Result<rollgate_ctl::Plan, CtlError> {
    plan(&Command::Undo { to_revision: to }, r, sets, now())
}

/// Revisions 1 and 2 and an experiment ReplicaSet of each kind; one of them carrying a
/// revision annotation (as a copied or hand-edited object may): never a revision either way.
fn with_experiments() -> Vec<ReplicaSet> {
    let mut annotated = experiment_rs("web-h2-2-1", "canary", "e2", "web:3", &at(1), (0, 0));
    if let Some(a) = annotated.metadata.annotations.as_mut() {
        a.insert("rollgate.dev/revision".into(), "3".into());
        a.insert(
            "rollgate.dev/template".into(),
            template("web:3").to_string(),
        );
    }
    vec![
        revision_rs("h1", 1, "web:1", 0, 0),
        revision_rs("h2", 2, "web:2", 3, 3),
        annotated,
        experiment_rs("web-h2-2-1", "baseline", "e1", "web:1", &at(1), (0, 0)),
    ]
}

#[test]
fn undo_never_takes_an_experiment_replica_set_for_a_revision() {
    let r = rollout(json!({"currentPodHash": "h2", "stableRS": "h2", "currentRevision": 2}));
    let e = undo(Some(3), &r, &with_experiments()).expect_err("no revision 3");
    assert!(
        matches!(&e, CtlError::NoRevision { revision: 3, available, .. } if available == &[1, 2]),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "rollout shop/web has no revision 3; revisions available: 1, 2"
    );
    let p = undo(None, &r, &with_experiments()).expect("a plan");
    assert_eq!(
        p.message,
        "rollout 'shop/web' rolled back to revision 1 (ReplicaSet web-h1, image web:1)"
    );
    // Without a current revision in the status, the newest revision is 2, not the
    // experiment's 3: the undo goes to 1.
    let mut r = r;
    r.status = None;
    let p = undo(None, &r, &with_experiments()).expect("a plan");
    assert!(
        p.message.contains("revision 1 (ReplicaSet web-h1"),
        "{}",
        p.message
    );
}

#[test]
fn the_duration_line_says_who_ends_the_experiment() {
    // Argo's rule: required analyses decide when there are any, else the duration, else a
    // promotion past the step.
    let experiment_step = |duration: Value, required: bool| {
        let mut o = objects(in_flight(running()));
        let spec = &mut o
            .rollout
            .spec
            .strategy
            .canary
            .as_mut()
            .expect("canary")
            .steps[1];
        let step = spec.experiment.as_mut().expect("experiment step");
        step.duration = serde_json::from_value(duration).expect("duration");
        for a in &mut step.analyses {
            a.required_for_completion = Some(required);
        }
        render(&o, now(), true)
    };
    let text = experiment_step(Value::Null, false);
    assert!(
        text.contains("\n    Duration:    none (runs until promoted past the step)\n"),
        "{text}"
    );
    let text = experiment_step(Value::Null, true);
    assert!(
        text.contains("\n    Duration:    none; ends once the required analyses succeed\n"),
        "{text}"
    );
    let text = experiment_step(json!("10m"), false);
    assert!(
        text.contains("\n    Duration:    10m, until 2026-01-01T00:16:00Z, 6m left\n"),
        "{text}"
    );
}
