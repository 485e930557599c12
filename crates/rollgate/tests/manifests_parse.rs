//! Every YAML file under `manifests/` parses, and each document in it is a Kubernetes object.
//! The blue/green example reads as a `rollgate_api::Rollout` with the strategy the README uses.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use clap::Parser;
use serde_json::Value;

fn manifests_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../manifests")
}

/// Every `.yaml`/`.yml` file below `dir`, sorted.
fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries =
            std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if path
                .extension()
                .is_some_and(|ext| ext == "yaml" || ext == "yml")
            {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The non-empty documents of one file, each checked to carry `apiVersion` and `kind`.
fn documents(path: &Path) -> Vec<Value> {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let docs: Vec<Value> = serde_saphyr::from_multiple(&text)
        .unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", path.display()));
    let docs: Vec<Value> = docs.into_iter().filter(|d| !d.is_null()).collect();
    assert!(!docs.is_empty(), "{} holds no document", path.display());
    for (index, doc) in docs.iter().enumerate() {
        for field in ["apiVersion", "kind"] {
            assert!(
                doc[field].as_str().is_some_and(|s| !s.is_empty()),
                "{} document {index}: `{field}` (string) missing",
                path.display()
            );
        }
    }
    docs
}

/// The flags of the `rollgate-controller` binary.
#[derive(Debug, clap::Parser)]
struct ControllerFlags {
    #[command(flatten)]
    args: rollgate_controller::ControllerArgs,
}

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("{kind} {name} not found"))
}

#[test]
fn every_manifest_parses_into_kubernetes_objects() {
    let files = yaml_files(&manifests_dir());
    let names: BTreeSet<String> = files
        .iter()
        .map(|f| {
            f.strip_prefix(manifests_dir())
                .expect("below manifests/")
                .to_string_lossy()
                .replace('\\', "/")
        })
        .collect();
    for expected in [
        "namespace.yaml",
        "rbac.yaml",
        "controller.yaml",
        "kustomization.yaml",
        "examples/bluegreen.yaml",
        "crds/rollouts.rollgate.dev.yaml",
    ] {
        assert!(names.contains(expected), "manifests/{expected} missing");
    }
    for file in &files {
        documents(file);
    }
}

#[test]
fn kustomization_lists_existing_files_and_every_crd() {
    let dir = manifests_dir();
    let docs = documents(&dir.join("kustomization.yaml"));
    let resources: BTreeSet<&str> = docs[0]["resources"]
        .as_array()
        .expect("resources list")
        .iter()
        .map(|r| r.as_str().expect("resource path"))
        .collect();
    for resource in &resources {
        assert!(
            dir.join(resource).is_file(),
            "kustomization names missing {resource}"
        );
    }
    for crd in yaml_files(&dir.join("crds")) {
        let name = format!(
            "crds/{}",
            crd.file_name().expect("file name").to_string_lossy()
        );
        assert!(
            resources.contains(name.as_str()),
            "{name} not in kustomization"
        );
    }
    for file in ["namespace.yaml", "rbac.yaml", "controller.yaml"] {
        assert!(resources.contains(file), "{file} not in kustomization");
    }
}

#[test]
fn controller_runs_as_the_rbac_service_account() {
    let dir = manifests_dir();
    let namespace = &documents(&dir.join("namespace.yaml"))[0];
    let rbac = documents(&dir.join("rbac.yaml"));
    let controller = documents(&dir.join("controller.yaml"));
    let ns = namespace["metadata"]["name"]
        .as_str()
        .expect("namespace name");
    assert_eq!(ns, "rollgate-system");

    let account = find(&rbac, "ServiceAccount", "rollgate-controller");
    assert_eq!(account["metadata"]["namespace"], ns);
    let binding = find(&rbac, "ClusterRoleBinding", "rollgate-controller");
    assert_eq!(binding["roleRef"]["name"], "rollgate-controller");
    assert_eq!(binding["subjects"][0]["name"], "rollgate-controller");
    assert_eq!(binding["subjects"][0]["namespace"], ns);
    find(&rbac, "ClusterRole", "rollgate-controller");

    let deployment = find(&controller, "Deployment", "rollgate-controller");
    assert_eq!(deployment["metadata"]["namespace"], ns);
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "rollgate-controller");
    // The controller-only binary, with flags it accepts.
    let container = &pod["containers"][0];
    assert_eq!(container["command"][0], "rollgate-controller");
    let args: Vec<&str> = container["args"]
        .as_array()
        .expect("args")
        .iter()
        .map(|a| a.as_str().expect("string arg"))
        .collect();
    let args = ControllerFlags::try_parse_from(std::iter::once("rollgate-controller").chain(args))
        .unwrap_or_else(|e| panic!("controller.yaml args: {e}"))
        .args;
    assert!(args.json_logs);
    assert!(args.leader_elect);

    // Two replicas, one leader: each knows its name and namespace, and may use Leases.
    assert_eq!(deployment["spec"]["replicas"], 2);
    let env = pod["containers"][0]["env"].as_array().expect("env");
    for (var, field) in [
        ("CONTROLLER_POD_NAME", "metadata.name"),
        ("POD_NAMESPACE", "metadata.namespace"),
    ] {
        assert!(
            env.iter()
                .any(|e| e["name"] == var && e["valueFrom"]["fieldRef"]["fieldPath"] == field),
            "{var} from {field}"
        );
    }
    let role = find(&rbac, "ClusterRole", "rollgate-controller");
    let rules = role["rules"].as_array().expect("rules");
    let leases = rules
        .iter()
        .find(|r| {
            r["resources"]
                .as_array()
                .is_some_and(|rs| rs.iter().any(|x| x == "leases"))
        })
        .expect("a rule for leases");
    assert_eq!(leases["apiGroups"][0], "coordination.k8s.io");
    for verb in ["get", "create", "patch"] {
        assert!(
            leases["verbs"]
                .as_array()
                .is_some_and(|v| v.iter().any(|x| x == verb)),
            "leases: {verb}"
        );
    }
}

#[test]
fn bluegreen_example_is_a_valid_rollout_with_its_services() {
    let docs = documents(&manifests_dir().join("examples/bluegreen.yaml"));
    let raw = find(&docs, "Rollout", "web");
    assert_eq!(raw["apiVersion"], "rollgate.dev/v1alpha1");
    let rollout: rollgate_api::Rollout =
        serde_json::from_value(raw.clone()).expect("the example deserializes as a Rollout");

    let spec = &rollout.spec;
    assert_eq!(spec.replicas, Some(3));
    assert!(spec.strategy.canary.is_none());
    let bg = spec
        .strategy
        .blue_green
        .as_ref()
        .expect("blueGreen strategy");
    assert_eq!(bg.active_service.as_deref(), Some("web-active"));
    assert_eq!(bg.preview_service.as_deref(), Some("web-preview"));
    assert_eq!(bg.auto_promotion_enabled, Some(false));
    assert_eq!(bg.scale_down_delay_seconds, Some(30));

    let selector = spec
        .selector
        .as_ref()
        .and_then(|s| s.match_labels.as_ref())
        .expect("selector.matchLabels");
    assert_eq!(selector.get("app").map(String::as_str), Some("web"));
    let template = spec.template.as_ref().expect("template");
    let labels = template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.as_ref())
        .expect("template labels");
    assert_eq!(labels.get("app").map(String::as_str), Some("web"));
    let containers = &template.spec.as_ref().expect("pod spec").containers;
    assert_eq!(containers.len(), 1);
    assert_eq!(containers[0].name, "web");
    assert_eq!(
        containers[0].image.as_deref(),
        Some("ghcr.io/rollgate/demo-app:1.0")
    );
    let ports = containers[0].ports.as_ref().expect("container ports");
    assert_eq!(ports[0].container_port, 8080);

    for name in ["web-active", "web-preview"] {
        let service = find(&docs, "Service", name);
        assert_eq!(service["apiVersion"], "v1");
        assert_eq!(service["spec"]["selector"]["app"], "web");
        assert_eq!(service["spec"]["ports"][0]["port"], 80);
        assert_eq!(service["spec"]["ports"][0]["targetPort"], 8080);
    }
}

/// The alert-receiver Component: the controller's flags with the receiver parse, the token
/// file is the mounted Secret's key, the Service reaches the named port; and, with kubectl
/// installed, kustomize builds the base with the Component.
#[test]
fn the_alert_receiver_component_adds_a_consistent_receiver() {
    let dir = manifests_dir().join("components/alert-receiver");
    let patch = documents(&dir.join("controller-patch.yaml"));
    let deployment = find(&patch, "Deployment", "rollgate-controller");
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    let args: Vec<&str> = container["args"]
        .as_array()
        .expect("args")
        .iter()
        .map(|a| a.as_str().expect("string arg"))
        .collect();
    let flags = ControllerFlags::try_parse_from(std::iter::once("rollgate-controller").chain(args))
        .unwrap_or_else(|e| panic!("controller-patch.yaml args: {e}"))
        .args;
    assert!(flags.json_logs, "the base's flags are kept");
    let addr = flags.alert_receiver_addr.expect("--alert-receiver-addr");
    let token = flags
        .alert_receiver_token_file
        .expect("--alert-receiver-token-file");
    let port = &container["ports"][0];
    assert_eq!(port["containerPort"], u64::from(addr.port()));
    let mount = &container["volumeMounts"][0];
    let mount_path = Path::new(mount["mountPath"].as_str().expect("mountPath"));
    let volume = &pod["volumes"][0];
    assert_eq!(mount["name"], volume["name"]);
    let item = &volume["secret"]["items"][0];
    assert_eq!(
        token,
        mount_path.join(item["path"].as_str().expect("item path"))
    );
    let service = &documents(&dir.join("service.yaml"))[0];
    assert_eq!(service["spec"]["ports"][0]["targetPort"], port["name"]);

    if std::process::Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .output()
        .is_err()
    {
        eprintln!("kubectl is not installed: kustomize build not checked");
        return;
    }
    // kustomize takes relative paths only: a kustomization under the target dir.
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("alert-receiver-kustomize");
    std::fs::create_dir_all(&root).expect("temp dir");
    let manifests = std::fs::canonicalize(manifests_dir()).expect("manifests dir");
    let root = std::fs::canonicalize(&root).expect("temp dir");
    let depth = root.components().count() - 1;
    let up = "../".repeat(depth);
    let rel = format!(
        "{up}{}",
        manifests
            .strip_prefix("/")
            .expect("absolute path")
            .display()
    );
    std::fs::write(
        root.join("kustomization.yaml"),
        format!(
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n\
             resources: [{rel}]\ncomponents: [{rel}/components/alert-receiver]\n"
        ),
    )
    .expect("write kustomization");
    let out = std::process::Command::new("kubectl")
        .arg("kustomize")
        .arg(&root)
        .output()
        .expect("kubectl kustomize");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let built: Vec<Value> =
        serde_saphyr::from_multiple(&String::from_utf8_lossy(&out.stdout)).expect("built YAML");
    let deployment = find(&built, "Deployment", "rollgate-controller");
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["command"][0], "rollgate-controller");
    assert!(
        container["args"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x == "--alert-receiver-addr=0.0.0.0:9094")),
        "{container}"
    );
    assert_eq!(
        deployment["spec"]["replicas"], 2,
        "the base's Deployment, patched"
    );
    find(&built, "Service", "rollgate-alert-receiver");
}

/// Whether `rules` grant `verb` on `resource` (`releases`, or a subresource such as
/// `releases/status`) of API group `group` (`""` is the core group), each named explicitly.
fn grants(rules: &[Value], group: &str, resource: &str, verb: &str) -> bool {
    let lists = |rule: &Value, field: &str, item: &str| {
        rule[field]
            .as_array()
            .is_some_and(|items| items.iter().any(|x| x == item))
    };
    rules.iter().any(|rule| {
        lists(rule, "apiGroups", group)
            && lists(rule, "resources", resource)
            && lists(rule, "verbs", verb)
    })
}

fn rules_of<'a>(docs: &'a [Value], name: &str) -> &'a [Value] {
    find(docs, "ClusterRole", name)["rules"]
        .as_array()
        .unwrap_or_else(|| panic!("ClusterRole {name}: rules"))
}

/// The pipeline controller's permissions (PromotionPipeline, Release, Approval, kubeconfig
/// Secrets of remote stages, image promotion by server-side apply of Rollouts) and the two
/// roles for people; no wildcard in any rule, and the approver role never aggregated into
/// `edit`.
#[test]
fn rbac_grants_the_promotion_verbs_without_wildcards() {
    let rbac = documents(&manifests_dir().join("rbac.yaml"));
    let controller = rules_of(&rbac, "rollgate-controller");
    let needed: [(&str, &str, &[&str]); 8] = [
        (
            "rollgate.dev",
            "promotionpipelines",
            &["get", "list", "watch"],
        ),
        (
            "rollgate.dev",
            "promotionpipelines/status",
            &["get", "patch", "update"],
        ),
        (
            "rollgate.dev",
            "releases",
            &["get", "list", "watch", "create"],
        ),
        (
            "rollgate.dev",
            "releases/status",
            &["get", "patch", "update"],
        ),
        ("rollgate.dev", "approvals", &["get", "list", "watch"]),
        ("", "secrets", &["get"]),
        ("rollgate.dev", "rollouts", &["get", "patch"]),
        ("events.k8s.io", "events", &["create"]),
    ];
    for (group, resource, verbs) in needed {
        for verb in verbs {
            assert!(
                grants(controller, group, resource, verb),
                "rollgate-controller: {verb} on {group}/{resource} missing"
            );
        }
    }
    // People decide; the controller only reads their decisions.
    for verb in ["create", "update", "patch", "delete"] {
        assert!(
            !grants(controller, "rollgate.dev", "approvals", verb),
            "rollgate-controller must not {verb} approvals"
        );
    }

    let approver = rules_of(&rbac, "rollgate-release-approver");
    assert!(grants(approver, "rollgate.dev", "approvals", "create"));
    for resource in ["releases", "promotionpipelines"] {
        for verb in ["get", "list"] {
            assert!(
                grants(approver, "rollgate.dev", resource, verb),
                "rollgate-release-approver: {verb} {resource}"
            );
        }
        for verb in ["create", "update", "patch", "delete"] {
            assert!(
                !grants(approver, "rollgate.dev", resource, verb),
                "rollgate-release-approver must not {verb} {resource}"
            );
        }
    }

    let operator = rules_of(&rbac, "rollgate-pipeline-operator");
    assert!(grants(
        operator,
        "rollgate.dev",
        "promotionpipelines",
        "patch"
    ));
    for resource in ["promotionpipelines", "releases", "approvals"] {
        for verb in ["get", "list"] {
            assert!(
                grants(operator, "rollgate.dev", resource, verb),
                "rollgate-pipeline-operator: {verb} {resource}"
            );
        }
    }
    assert!(
        !grants(operator, "rollgate.dev", "approvals", "create"),
        "operating a pipeline is not approving"
    );

    // Aggregation: only read-only roles join the built-in roles; an approver or operator
    // role never joins `edit` (whoever may change a workload may not thereby promote it).
    for doc in rbac.iter().filter(|d| d["kind"] == "ClusterRole") {
        let name = doc["metadata"]["name"].as_str().expect("ClusterRole name");
        let labels = &doc["metadata"]["labels"];
        let aggregated = ["view", "edit", "admin"]
            .iter()
            .any(|r| labels[format!("rbac.authorization.k8s.io/aggregate-to-{r}")] == "true");
        if aggregated {
            let rules = doc["rules"].as_array().expect("rules");
            for rule in rules {
                for verb in rule["verbs"].as_array().expect("verbs") {
                    assert!(
                        ["get", "list", "watch"].iter().any(|v| verb == v),
                        "{name} is aggregated into built-in roles but grants {verb}"
                    );
                }
            }
        }
    }
    for name in ["rollgate-release-approver", "rollgate-pipeline-operator"] {
        let labels = &find(&rbac, "ClusterRole", name)["metadata"]["labels"];
        assert!(
            labels["rbac.authorization.k8s.io/aggregate-to-edit"] != "true",
            "{name} aggregated into edit"
        );
    }

    // No wildcard anywhere in a rule: every group, resource, verb and name is spelled out.
    for doc in rbac
        .iter()
        .filter(|d| d["kind"] == "ClusterRole" || d["kind"] == "Role")
    {
        let name = doc["metadata"]["name"].as_str().expect("role name");
        for rule in doc["rules"].as_array().expect("rules") {
            for field in [
                "apiGroups",
                "resources",
                "verbs",
                "resourceNames",
                "nonResourceURLs",
            ] {
                if let Some(items) = rule[field].as_array() {
                    for item in items {
                        let item = item.as_str().expect("string in rule");
                        assert!(!item.contains('*'), "{name}: `{item}` in {field}");
                    }
                }
            }
        }
    }
}

/// Ephemeral metadata (activeMetadata, canaryMetadata, ...) is moved between roles by patching
/// pods in place; `restartAt` deletes them. The controller may do both.
#[test]
fn rbac_lets_the_controller_patch_and_delete_pods() {
    let rbac = documents(&manifests_dir().join("rbac.yaml"));
    let controller = rules_of(&rbac, "rollgate-controller");
    for verb in ["get", "list", "patch", "delete"] {
        assert!(
            grants(controller, "", "pods", verb),
            "rollgate-controller: {verb} on pods missing"
        );
    }
}

/// `spec.workloadRef` names a Deployment, ReplicaSet or PodTemplate: the controller reads and
/// watches all three and patches the size of the first two (`scaleDown`); a PodTemplate is
/// only read.
#[test]
fn rbac_lets_the_controller_read_every_workload_ref_kind() {
    let rbac = documents(&manifests_dir().join("rbac.yaml"));
    let controller = rules_of(&rbac, "rollgate-controller");
    for (group, resource) in [
        ("apps", "deployments"),
        ("apps", "replicasets"),
        ("", "podtemplates"),
    ] {
        for verb in ["get", "list", "watch"] {
            assert!(
                grants(controller, group, resource, verb),
                "rollgate-controller: {verb} on {group}/{resource} missing"
            );
        }
    }
    for (group, resource) in [("apps", "deployments"), ("apps", "replicasets")] {
        assert!(
            grants(controller, group, resource, "patch"),
            "rollgate-controller: patch on {group}/{resource} missing"
        );
    }
    assert!(
        !grants(controller, "", "podtemplates", "patch"),
        "rollgate-controller must not patch podtemplates"
    );
}
