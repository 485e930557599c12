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
