//! `rollgate lint`: offline checks with file, object and field in every message.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_rollgate");

fn lint(files: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(BIN)
        .arg("lint")
        .arg("-f")
        .args(files)
        .output()
        .expect("runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn examples(name: &str) -> String {
    format!(
        "{}/../../manifests/examples/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

#[test]
fn the_examples_pass() {
    let (code, out) = lint(&[
        &examples("analysis-template-success-rate.yaml"),
        &examples("bluegreen.yaml"),
        &examples("canary.yaml"),
        &examples("canary-gateway-api.yaml"),
    ]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("ok: 4 Rollouts and analysis templates checked"),
        "{out}"
    );
}

#[test]
fn problems_name_the_file_the_object_and_the_field() {
    let dir = std::env::temp_dir().join(format!("rollgate-lint-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("broken.yaml");
    std::fs::write(
        &file,
        r#"
apiVersion: rollgate.dev/v1alpha1
kind: AnalysisTemplate
metadata: {name: errors}
spec:
  metrics:
    - name: errors
      successCondition: "result[0] <"
      provider: {prometheus: {address: "http://prometheus:9090", query: "up"}}
---
apiVersion: rollgate.dev/v1alpha1
kind: Rollout
metadata: {name: web}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: "web:1"}]}
  strategy:
    canary:
      stableService: web-stable
      steps:
        - setWeight: 120
        - analysis: {templates: [{templateName: errors}, {templateName: missing}]}
"#,
    )
    .expect("write");
    let path = file.display().to_string();
    let (code, out) = lint(&[&path]);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(code, Some(1), "{out}");
    for expected in [
        format!(
            "{path}: AnalysisTemplate errors: metrics[0].successCondition: invalid CEL expression \"result[0] <\""
        ),
        format!(
            "{path}: Rollout web: spec.strategy.canary.stableService: Service \"web-stable\" not found"
        ),
        format!(
            "{path}: Rollout web: spec.strategy.canary.steps[0].setWeight: expected a percentage between 0 and 100, got 120"
        ),
        format!(
            "{path}: Rollout web: spec.strategy.canary.steps[1].analysis.templates[1].templateName: AnalysisTemplate \"missing\" not found"
        ),
    ] {
        assert!(out.contains(&expected), "missing {expected:?} in:\n{out}");
    }
}

#[test]
fn promql_that_does_not_parse_is_reported_with_its_field() {
    let dir = std::env::temp_dir().join(format!("rollgate-lint-promql-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("templates.yaml");
    std::fs::write(
        &file,
        r#"apiVersion: rollgate.dev/v1alpha1
kind: AnalysisTemplate
metadata: {name: good}
spec:
  args: [{name: hash}, {name: window}]
  metrics:
    - name: errors
      successCondition: "result[0] < 0.05"
      provider:
        prometheus:
          address: http://prometheus:9090
          query: sum(rate(errors_total{hash="{{args.hash}}"}[{{args.window}}])) / sum(rate(requests_total{hash="{{args.hash}}"}[{{args.window}}]))
---
apiVersion: rollgate.dev/v1alpha1
kind: ClusterAnalysisTemplate
metadata: {name: broken}
spec:
  metrics:
    - name: ok
      successCondition: "result[0] < 1"
      provider: {prometheus: {address: "http://p:9090", query: "vector(1)"}}
    - name: latency
      successCondition: "result[0] < 1"
      provider:
        prometheus:
          address: http://prometheus:9090
          query: sum(rate(http_requests_total[5m]) by (
"#,
    )
    .expect("write");
    let path = file.display().to_string();
    let (code, out) = lint(&[&path]);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(code, Some(1), "{out}");
    let want = format!(
        "{path}: ClusterAnalysisTemplate broken: metrics[1].provider.prometheus.query: invalid PromQL: "
    );
    assert!(out.contains(&want), "missing {want:?} in:\n{out}");
    assert_eq!(
        out.matches("invalid PromQL").count(),
        1,
        "the good template passes:\n{out}"
    );
}
