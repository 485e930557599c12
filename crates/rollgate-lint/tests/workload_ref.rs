//! `rollgate lint` and `spec.workloadRef`: the Deployment is read from the files when they hold
//! it, and is a missing reference (not a problem) when they do not.

use rollgate_lint::lint;

const ROLLOUT: &str = r"
apiVersion: rollgate.dev/v1alpha1
kind: Rollout
metadata: {name: web}
spec:
  replicas: 3
  workloadRef: {apiVersion: apps/v1, kind: Deployment, name: web-deploy, scaleDown: onsuccess}
  strategy: {blueGreen: {activeService: web-active}}
---
apiVersion: v1
kind: Service
metadata: {name: web-active}
spec: {selector: {app: web}}
";

fn deployment(image: &str) -> String {
    format!(
        r"
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web-deploy}}
spec:
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec: {{containers: [{{name: web, image: {image}}}]}}
"
    )
}

fn run(text: &str) -> rollgate_lint::Report {
    lint(&[("objects.yaml".to_string(), text.to_string())])
}

#[test]
fn a_rollout_with_its_deployment_in_the_files_passes() {
    let report = run(&format!("{ROLLOUT}{}", deployment("app:1")));
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert!(report.missing.is_empty(), "{:?}", report.missing);
}

#[test]
fn a_deployment_not_in_the_files_is_a_missing_reference() {
    let report = run(ROLLOUT);
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!(
        report.missing,
        [
            "objects.yaml: Rollout web: spec.workloadRef.name: Deployment \"web-deploy\" not found \
          in the rollout's namespace"
        ]
    );
}

#[test]
fn a_deployment_template_without_an_image_is_a_problem() {
    let report = run(&format!("{ROLLOUT}{}", deployment("\"\"")));
    assert_eq!(
        report.problems,
        [
            "objects.yaml: Rollout web: spec.workloadRef.name: Deployment \"web-deploy\": \
          spec.template.spec.containers[0].image: required, expected a container image for \
          container \"web\""
        ]
    );
}

/// A Rollout referring to `kind` `web-src` (`apiVersion`), with `selector` lines if any.
fn rollout_of(api_version: &str, kind: &str, selector: &str) -> String {
    format!(
        r"
apiVersion: rollgate.dev/v1alpha1
kind: Rollout
metadata: {{name: web}}
spec:
  replicas: 3
{selector}  workloadRef: {{apiVersion: {api_version}, kind: {kind}, name: web-src}}
  strategy: {{blueGreen: {{activeService: web-active}}}}
---
apiVersion: v1
kind: Service
metadata: {{name: web-active}}
spec: {{selector: {{app: web}}}}
"
    )
}

const REPLICA_SET: &str = r"
---
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: web-src}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: app:1}]}
";

const POD_TEMPLATE: &str = r"
---
apiVersion: v1
kind: PodTemplate
metadata: {name: web-src}
template:
  metadata: {labels: {app: web}}
  spec: {containers: [{name: web, image: app:1}]}
";

const SELECTOR: &str = "  selector: {matchLabels: {app: web}}\n";

#[test]
fn a_rollout_with_its_replica_set_in_the_files_passes() {
    let report = run(&format!(
        "{}{REPLICA_SET}",
        rollout_of("apps/v1", "ReplicaSet", "")
    ));
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert!(report.missing.is_empty(), "{:?}", report.missing);
}

#[test]
fn a_rollout_with_its_pod_template_in_the_files_passes_with_a_selector_of_its_own() {
    let report = run(&format!(
        "{}{POD_TEMPLATE}",
        rollout_of("v1", "PodTemplate", SELECTOR)
    ));
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert!(report.missing.is_empty(), "{:?}", report.missing);
    // Without one: a PodTemplate has no selector to take.
    let report = run(&format!(
        "{}{POD_TEMPLATE}",
        rollout_of("v1", "PodTemplate", "")
    ));
    assert_eq!(
        report.problems,
        [
            "objects.yaml: Rollout web: spec.selector: required, expected a label selector (a \
             PodTemplate named by spec.workloadRef has none)"
        ]
    );
}

#[test]
fn an_object_of_another_kind_with_the_name_is_a_missing_reference() {
    // The files hold a ReplicaSet `web-src`; the rollout names a PodTemplate.
    let report = run(&format!(
        "{}{REPLICA_SET}",
        rollout_of("v1", "PodTemplate", SELECTOR)
    ));
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!(
        report.missing,
        [
            "objects.yaml: Rollout web: spec.workloadRef.name: PodTemplate \"web-src\" not found in \
          the rollout's namespace"
        ]
    );
}

#[test]
fn a_kind_rollgate_does_not_read_is_a_problem_listing_the_accepted_ones() {
    let report = run(&rollout_of("apps/v1", "StatefulSet", SELECTOR));
    assert_eq!(
        report.problems,
        [
            "objects.yaml: Rollout web: spec.workloadRef.kind: one of Deployment (apps/v1), \
             ReplicaSet (apps/v1), PodTemplate (v1) expected, got \"StatefulSet\""
        ]
    );
}
