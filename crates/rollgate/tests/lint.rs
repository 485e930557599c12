//! `rollgate lint`: offline checks with file, object and field in every message.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_rollgate");

fn lint(files: &[&str]) -> (Option<i32>, String) {
    lint_with(&[], files)
}

fn lint_with(flags: &[&str], files: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(BIN)
        .arg("lint")
        .args(flags)
        .arg("-f")
        .args(files)
        .output()
        .expect("runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// Writes `text` to a fresh file; returns its path and the directory to remove.
fn write(test: &str, text: &str) -> (String, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("rollgate-lint-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("objects.yaml");
    std::fs::write(&file, text).expect("write");
    (file.display().to_string(), dir)
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
        &examples("workload-ref.yaml"),
        &examples("rollout-canary-experiment.yaml"),
    ]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("ok: 7 Rollouts and analysis templates checked"),
        "{out}"
    );
}

/// Every file in `manifests/examples/` passes, linted together: a new example cannot be
/// forgotten.
#[test]
fn every_example_in_the_directory_passes() {
    let dir = examples("");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .expect("manifests/examples")
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .map(|p| p.display().to_string())
        .collect();
    files.sort();
    assert!(
        files
            .iter()
            .any(|f| f.ends_with("rollout-canary-experiment.yaml")),
        "{files:?}"
    );
    let args: Vec<&str> = files.iter().map(String::as_str).collect();
    let (code, out) = lint(&args);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.starts_with("ok: "), "{out}");
}

/// The experiment example's step is checked: its templates' specRef, the
/// `{{templates.<name>.podTemplateHash}}` placeholders of its analyses' arguments against the
/// step's templates, and those arguments against the AnalysisTemplate's.
#[test]
fn an_experiment_step_is_checked_field_by_field() {
    let text = std::fs::read_to_string(examples("rollout-canary-experiment.yaml"))
        .expect("the experiment example");
    let wrong = text
        .replace("specRef: stable", "specRef: stabel")
        .replace(
            "{{templates.canary.podTemplateHash}}",
            "{{templates.canry.podTemplateHash}}",
        )
        .replace(
            "- name: baseline-hash\n                    value",
            "- name: baseline\n                    value",
        );
    assert_ne!(wrong, text);
    let (file, dir) = write("experiment", &wrong);
    let (code, out) = lint(&[&file]);
    let _ = std::fs::remove_dir_all(dir);
    assert_eq!(code, Some(1), "{out}");
    for want in [
        "Rollout web: spec.strategy.canary.steps[0].experiment.templates[0].specRef: expected \
         stable or canary, got \"stabel\"",
        "Rollout web: spec.strategy.canary.steps[0].experiment.analyses[0].args[1].value: \
         {{templates.canry.podTemplateHash}}: expected {{templates.<name>.podTemplateHash}} \
         naming a template of the step (baseline, canary)",
        "Rollout web: spec.strategy.canary.steps[0].experiment.analyses[0]: AnalysisTemplate \
         \"error-ratio-vs-baseline\": args[0]: argument \"baseline-hash\" has no value",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
}

#[test]
fn a_sequential_template_is_checked_field_by_field() {
    let (code, out) = lint(&[&examples("analysis-template-sequential.yaml")]);
    assert_eq!(code, Some(0), "{out}");
    let (file, dir) = write(
        "sequential",
        r#"
apiVersion: rollgate.dev/v1alpha1
kind: AnalysisTemplate
metadata: {name: errors}
spec:
  args: [{name: hash}]
  metrics:
    - name: errors
      interval: 30s
      provider: {prometheus: {address: "http://prometheus:9090"}}
      sequential:
        events: 'sum(errors_total{hash="{{args.hash}}"}'
        requests: 'sum(requests_total{hash="{{args.hash}}"})'
        alpha: 0
"#,
    );
    let (code, out) = lint(&[&file]);
    let _ = std::fs::remove_dir_all(dir);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("metrics[0].sequential.events: invalid PromQL"),
        "{out}"
    );
    assert!(
        out.contains(
            "metrics[0].sequential.alpha: expected a number strictly between 0 and 1, got 0"
        ),
        "{out}"
    );
}

#[test]
fn a_kayenta_template_is_checked_field_by_field() {
    let (code, out) = lint(&[&examples("analysis-template-kayenta.yaml")]);
    assert_eq!(code, Some(0), "{out}");
    let (file, dir) = write(
        "kayenta",
        r#"
apiVersion: rollgate.dev/v1alpha1
kind: AnalysisTemplate
metadata: {name: score}
spec:
  args: [{name: hash}]
  metrics:
    - name: score
      interval: 1m
      provider: {prometheus: {address: "http://prometheus:9090"}}
      kayenta:
        metrics:
          - name: errors
            query: 'sum(rate(errors_total{hash="{{args.hash}}"}[1m])'
          - name: latency
            query: 'sum(latency{hash="{{args.hash}}"})'
            allowedIncrease: 0.5
"#,
    );
    let (code, out) = lint(&[&file]);
    let _ = std::fs::remove_dir_all(dir);
    assert_eq!(code, Some(1), "{out}");
    for expected in [
        "metrics[0].kayenta.metrics[0].query: invalid PromQL",
        "metrics[0].kayenta.metrics[1].allowedIncrease: expected a finite ratio >= 1, got 0.5",
        "metrics[0].count: required for a kayenta metric",
    ] {
        assert!(out.contains(expected), "{expected} in {out}");
    }
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
            "warning: {path}: Rollout web: spec.strategy.canary.stableService: Service \"web-stable\" not found"
        ),
        format!(
            "{path}: Rollout web: spec.strategy.canary.steps[0].setWeight: expected a percentage between 0 and 100, got 120"
        ),
        format!(
            "warning: {path}: Rollout web: spec.strategy.canary.steps[1].analysis.templates[1].templateName: AnalysisTemplate \"missing\" not found"
        ),
    ] {
        assert!(out.contains(&expected), "missing {expected:?} in:\n{out}");
    }
    assert!(out.contains("3 problem(s), 2 warning(s)"), "{out}");
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

/// A Rollout of a chart, linted without the files holding its Services, template and route.
const ROLLOUT_ALONE: &str = r#"apiVersion: rollgate.dev/v1alpha1
kind: Rollout
metadata: {name: web, namespace: shop}
spec:
  replicas: 4
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: "web:1"}]}
  strategy:
    canary:
      canaryService: web-canary
      stableService: web-stable
      trafficRouting: {gatewayAPI: {httpRoute: web-route}}
      steps:
        - setWeight: 20
        - analysis: {templates: [{templateName: error-rate}]}
"#;

#[test]
fn references_outside_the_files_are_warnings_unless_strict() {
    let (path, dir) = write("alone", ROLLOUT_ALONE);
    let (code, out) = lint(&[&path]);
    let (strict_code, strict_out) = lint_with(&["--strict"], &[&path]);
    let _ = std::fs::remove_dir_all(&dir);
    let missing = [
        "spec.strategy.canary.canaryService: Service \"web-canary\" not found",
        "spec.strategy.canary.stableService: Service \"web-stable\" not found",
        "spec.strategy.canary.trafficRouting.gatewayAPI.httpRoute: HTTPRoute shop/web-route \
         (gateway.networking.k8s.io/v1) not found",
        "spec.strategy.canary.steps[1].analysis.templates[0].templateName: AnalysisTemplate \
         \"error-rate\" not found",
    ];

    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("ok: 1 Rollouts and analysis templates checked, 4 warning(s)"),
        "{out}"
    );
    for m in missing {
        let line = format!("warning: {path}: Rollout web: {m}");
        assert!(out.contains(&line), "missing {line:?} in:\n{out}");
    }
    assert_eq!(out.matches("warning: ").count(), 4, "{out}");
    assert!(out.contains("not in the linted files"), "{out}");

    assert_eq!(strict_code, Some(1), "{strict_out}");
    assert!(strict_out.contains("4 problem(s)"), "{strict_out}");
    assert!(!strict_out.contains("warning"), "{strict_out}");
    for m in missing {
        let line = format!("{path}: Rollout web: {m}");
        assert!(
            strict_out.contains(&line),
            "missing {line:?} in:\n{strict_out}"
        );
    }
}

#[test]
fn a_rollout_with_missing_references_is_still_checked() {
    // The Rollout's own mistake is a problem; what it names outside the file only warns.
    let broken = ROLLOUT_ALONE
        .replace("setWeight: 20", "setWeight: 20\n        - pause: {duration: soon}")
        .replace(
            "templateName: error-rate}]",
            "templateName: error-rate}], args: [{name: hash, valueFrom: {podTemplateHashValue: Stabel}}]",
        );
    let (path, dir) = write("still-checked", &broken);
    let (code, out) = lint(&[&path]);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(code, Some(1), "{out}");
    // Whole lines: problems, not warnings.
    for expected in [
        format!(
            "{path}: Rollout web: spec.strategy.canary.steps[1].pause.duration: expected \
             seconds or a duration such as 30s, 5m or 1h30m, got \"soon\""
        ),
        format!(
            "{path}: Rollout web: spec.strategy.canary.steps[2].analysis.args[0].valueFrom.\
             podTemplateHashValue: expected Stable or Latest, got \"Stabel\""
        ),
    ] {
        assert!(
            out.lines().any(|l| l == expected),
            "missing {expected:?} in:\n{out}"
        );
    }
    assert!(out.contains("2 problem(s), 4 warning(s)"), "{out}");
}

#[test]
fn range_queries_and_enum_like_fields_are_checked_like_the_controller_does() {
    let (path, dir) = write(
        "range",
        r#"apiVersion: rollgate.dev/v1alpha1
kind: AnalysisTemplate
metadata: {name: latency}
spec:
  args: [{name: hash, valueFrom: {podTemplateHashValue: Latset}}]
  metrics:
    - name: p99
      noDataPolicy: Ignore
      successCondition: "all(result, x, all(x, y, y < 0.5))"
      provider:
        prometheus:
          address: http://prometheus:9090
          query: histogram_quantile(0.99, rate(latency_bucket{hash="{{args.hash}}"}[1m]))
          rangeQuery: {start: "now() - 5m", end: "now() - 10m", step: 30s}
"#,
    );
    let (code, out) = lint(&[&path]);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(code, Some(1), "{out}");
    for expected in [
        "AnalysisTemplate latency: metrics[0].noDataPolicy: expected Inconclusive, Fail or Pass, \
         got \"Ignore\"",
        "AnalysisTemplate latency: metrics[0].provider.prometheus.rangeQuery.start: must not be \
         after end, got start \"now() - 5m\" and end \"now() - 10m\"",
        "AnalysisTemplate latency: args[0].valueFrom.podTemplateHashValue: expected Stable or \
         Latest, got \"Latset\"",
    ] {
        let line = format!("{path}: {expected}");
        assert!(out.contains(&line), "missing {line:?} in:\n{out}");
    }
    assert!(out.contains("3 problem(s)"), "{out}");
}

#[test]
fn an_unreadable_file_exits_3_as_the_help_says() {
    let help = Command::new(BIN)
        .args(["lint", "--help"])
        .output()
        .expect("runs");
    let help = String::from_utf8_lossy(&help.stdout).into_owned();
    assert!(
        help.contains("3: a file could not be read (missing, not UTF-8)"),
        "{help}"
    );
    let dir = std::env::temp_dir().join(format!("rollgate-lint-binary-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("binary.yaml");
    std::fs::write(&file, b"\xff\xfe\x00kind: Rollout").expect("write");
    let out = Command::new(BIN)
        .args(["lint", "-f"])
        .arg(&file)
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("binary.yaml") && stderr.contains("UTF-8"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn every_invalid_alerts_and_guard_field_is_reported() {
    let (file, dir) = write(
        "alerts",
        r#"apiVersion: rollgate.dev/v1alpha1
kind: Rollout
metadata: {name: web, namespace: shop}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: "web:1"}]
  alerts:
    alertmanager: {address: "alertmanager:9093"}
    matchers: ['app=web', 'severity=~"critical|page"']
    revisionLabel: pod-template-hash
    serviceLevelAlerts: Sometimes
    interval: soon
  guard:
    duration: "0s"
    analysis: {templates: [{templateName: ""}], args: [{name: hash}]}
  strategy:
    canary:
      steps: [{setWeight: 50}]
"#,
    );
    let (code, out) = lint(&[&file]);
    let _ = std::fs::remove_dir_all(dir);
    assert_eq!(code, Some(1), "{out}");
    for field in [
        "spec.alerts.alertmanager.address",
        "spec.alerts.matchers[0]",
        "spec.alerts.revisionLabel",
        "spec.alerts.serviceLevelAlerts",
        "spec.alerts.interval",
        "spec.guard.duration",
        "spec.guard.analysis.templates[0].templateName",
        "spec.guard.analysis.args[0]",
    ] {
        assert!(
            out.contains(&format!("Rollout web: {field}:")),
            "{field}: {out}"
        );
    }
    assert!(!out.contains("spec.alerts.matchers[1]"), "{out}");
}

#[test]
fn every_invalid_pipeline_field_is_reported() {
    let (file, dir) = write(
        "pipeline",
        r#"apiVersion: rollgate.dev/v1alpha1
kind: PromotionPipeline
metadata: {name: web, namespace: shop}
spec:
  stages:
  - name: staging
    rollout: {name: web, namespace: shop-staging}
    soak: 5m
  - name: production
    rollout: {name: web, namespace: shop-prod}
    after: [qa]
    soak: soon
    approvals: -1
    windows: [{kind: Sometimes, schedule: "0 9 * *", duration: 8h, timeZone: Mars/Olympus}]
"#,
    );
    let (code, out) = lint(&[&file]);
    let _ = std::fs::remove_dir_all(dir);
    assert_eq!(code, Some(1), "{out}");
    for field in [
        "spec.stages[0].soak",
        "spec.stages[1].after[0]",
        "spec.stages[1].soak",
        "spec.stages[1].approvals",
        "spec.stages[1].windows[0].kind",
        "spec.stages[1].windows[0].schedule",
        "spec.stages[1].windows[0].timeZone",
    ] {
        assert!(
            out.contains(&format!("PromotionPipeline web: {field}:")),
            "{field}: {out}"
        );
    }
}

#[test]
fn the_pipeline_example_lints_clean() {
    let (code, out) = lint(&[concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../manifests/examples/pipeline.yaml"
    )]);
    assert_eq!(code, Some(0), "{out}");
}
