//! The ValidatingAdmissionPolicy of manifests/approval-policy.yaml, evaluated as written: its
//! CEL expressions are read from the file and run with cel-rust against the variables the API
//! server gives a policy (`object`, `oldObject`, `request`), the way the API server decides:
//! every validation must be `true`; a `false` one denies with its rendered `messageExpression`
//! (or its `message`), and one that cannot be evaluated denies because the policy's
//! `failurePolicy` is `Fail`.
//!
//! The policy uses only what cel-rust evaluates like Kubernetes does: `has()`, `==`, `!=`,
//! `||`, `&&`, `? :` and string `+` (no Kubernetes library functions).

use std::path::PathBuf;

use serde_json::{Value, json};

fn policy_file() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../manifests/approval-policy.yaml")
}

/// The documents of manifests/approval-policy.yaml.
fn documents() -> Vec<Value> {
    let path = policy_file();
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let docs: Vec<Value> = serde_saphyr::from_multiple(&text)
        .unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", path.display()));
    docs.into_iter().filter(|d| !d.is_null()).collect()
}

fn find<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in approval-policy.yaml"))
}

/// The policy document.
fn policy() -> Value {
    find(&documents(), "ValidatingAdmissionPolicy").clone()
}

/// One admission request, as the variables a ValidatingAdmissionPolicy sees.
struct Admission {
    object: Value,
    old_object: Value,
    request: Value,
}

impl Admission {
    fn create(object: Value, user: &str) -> Self {
        Self {
            object,
            old_object: Value::Null,
            request: request("CREATE", user),
        }
    }

    fn update(old_object: Value, object: Value, user: &str) -> Self {
        Self {
            object,
            old_object,
            request: request("UPDATE", user),
        }
    }

    /// Evaluates one CEL expression over this request's variables.
    fn evaluate(&self, expression: &str) -> Result<cel::Value, String> {
        let program = cel::Program::compile(expression)
            .map_err(|e| format!("`{expression}` does not compile: {e}"))?;
        let mut context = cel::Context::default();
        for (name, value) in [
            ("object", &self.object),
            ("oldObject", &self.old_object),
            ("request", &self.request),
        ] {
            let value = cel::to_value(value).map_err(|e| format!("{name}: {e}"))?;
            context.add_variable_from_value(name, value);
        }
        program
            .execute(&context)
            .map_err(|e| format!("`{expression}` fails: {e}"))
    }
}

fn request(operation: &str, user: &str) -> Value {
    json!({
        "operation": operation,
        "namespace": "shop",
        "name": "approve-r42-production",
        "resource": {"group": "rollgate.dev", "version": "v1alpha1", "resource": "approvals"},
        "userInfo": {"username": user, "groups": ["system:authenticated", "release-managers"]},
    })
}

fn approval(spec: Value) -> Value {
    json!({
        "apiVersion": "rollgate.dev/v1alpha1",
        "kind": "Approval",
        "metadata": {"name": "approve-r42-production", "namespace": "shop"},
        "spec": spec,
    })
}

fn spec_by(approver: &str) -> Value {
    json!({
        "release": "web-r42",
        "stage": "production",
        "decision": "Approve",
        "approver": approver,
        "comment": "soak looked clean",
    })
}

/// Why a validation denied the request.
#[derive(Debug, PartialEq)]
enum Denial {
    /// The expression was `false`: the message the API server returns.
    Rejected(String),
    /// The expression could not be evaluated (denied by `failurePolicy: Fail`).
    Failed(String),
}

/// Runs every validation of `policy` like the API server: `Ok` when all are `true`, else the
/// denial of each one that is not.
fn admit(policy: &Value, admission: &Admission) -> Result<(), Vec<Denial>> {
    let validations = policy["spec"]["validations"]
        .as_array()
        .expect("spec.validations (list)");
    assert!(!validations.is_empty(), "spec.validations is empty");
    let mut denials = Vec::new();
    for validation in validations {
        let expression = validation["expression"]
            .as_str()
            .expect("validations[].expression (string)");
        match admission.evaluate(expression) {
            Ok(cel::Value::Bool(true)) => {}
            Ok(cel::Value::Bool(false)) => {
                denials.push(Denial::Rejected(message(validation, admission)))
            }
            Ok(other) => denials.push(Denial::Failed(format!(
                "`{expression}` gave {other:?}, expected a bool"
            ))),
            Err(e) => denials.push(Denial::Failed(e)),
        }
    }
    if denials.is_empty() {
        Ok(())
    } else {
        Err(denials)
    }
}

/// The message of a failed validation: its `messageExpression` rendered; its `message` when it
/// has none. A `messageExpression` that does not render a string fails the test (the API server
/// would fall back to `message`, hiding the mistake).
fn message(validation: &Value, admission: &Admission) -> String {
    let fallback = validation["message"].as_str().map(str::to_owned);
    let Some(expression) = validation["messageExpression"].as_str() else {
        return fallback.expect("a validation with neither messageExpression nor message");
    };
    match admission.evaluate(expression) {
        Ok(cel::Value::String(s)) => s.to_string(),
        other => panic!("messageExpression `{expression}` did not render a string: {other:?}"),
    }
}

/// The one rejection message of a request the policy must deny by a `false` validation.
fn rejected(policy: &Value, admission: &Admission) -> String {
    match admit(policy, admission) {
        Ok(()) => panic!("admitted, expected a denial"),
        Err(denials) => match denials.as_slice() {
            [Denial::Rejected(message)] => message.clone(),
            other => panic!("expected one rejecting validation, got {other:?}"),
        },
    }
}

#[test]
fn the_policy_is_a_failing_closed_ga_policy_bound_with_deny_for_approvals() {
    let docs = documents();
    let policy = find(&docs, "ValidatingAdmissionPolicy");
    let binding = find(&docs, "ValidatingAdmissionPolicyBinding");
    for doc in [policy, binding] {
        assert_eq!(doc["apiVersion"], "admissionregistration.k8s.io/v1");
    }
    assert_eq!(policy["spec"]["failurePolicy"], "Fail");
    let rules = policy["spec"]["matchConstraints"]["resourceRules"]
        .as_array()
        .expect("matchConstraints.resourceRules");
    let rule = rules
        .iter()
        .find(|r| {
            r["resources"]
                .as_array()
                .is_some_and(|rs| rs.iter().any(|x| x == "approvals"))
        })
        .expect("a resource rule for approvals");
    assert_eq!(rule["apiGroups"], json!(["rollgate.dev"]));
    for operation in ["CREATE", "UPDATE"] {
        assert!(
            rule["operations"]
                .as_array()
                .is_some_and(|o| o.iter().any(|x| x == operation)),
            "approvals: operation {operation} not matched"
        );
    }
    assert_eq!(binding["spec"]["policyName"], policy["metadata"]["name"]);
    assert_eq!(binding["spec"]["validationActions"], json!(["Deny"]));

    let kustomization = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../manifests/kustomization.yaml"),
    )
    .expect("reading manifests/kustomization.yaml");
    let kustomization: Value = serde_saphyr::from_str(&kustomization).expect("kustomization YAML");
    assert!(
        kustomization["resources"]
            .as_array()
            .is_some_and(|r| r.iter().any(|x| x == "approval-policy.yaml")),
        "approval-policy.yaml not in kustomization resources"
    );
}

#[test]
fn the_approver_may_create_their_own_approval() {
    let policy = policy();
    let admission = Admission::create(approval(spec_by("alice@example.com")), "alice@example.com");
    assert_eq!(admit(&policy, &admission), Ok(()));
}

#[test]
fn an_approval_in_another_name_is_denied_with_both_names() {
    let policy = policy();
    let admission = Admission::create(
        approval(spec_by("alice@example.com")),
        "mallory@example.com",
    );
    let message = rejected(&policy, &admission);
    assert!(
        message.contains("\"alice@example.com\"") && message.contains("\"mallory@example.com\""),
        "the message names the recorded approver and the requesting user: {message}"
    );
    assert!(message.contains("spec.approver"), "{message}");
}

#[test]
fn an_approval_without_approver_is_denied_naming_the_user() {
    let policy = policy();
    let mut spec = spec_by("alice@example.com");
    spec.as_object_mut()
        .expect("spec object")
        .remove("approver");
    let admission = Admission::create(approval(spec), "alice@example.com");
    let message = rejected(&policy, &admission);
    assert!(message.contains("spec.approver"), "{message}");
    assert!(message.contains("\"alice@example.com\""), "{message}");

    // An empty approver is not the user either.
    let admission = Admission::create(approval(spec_by("")), "alice@example.com");
    let message = rejected(&policy, &admission);
    assert!(message.contains("\"alice@example.com\""), "{message}");
}

#[test]
fn an_update_keeping_the_spec_is_admitted_whoever_makes_it() {
    let policy = policy();
    let old = approval(spec_by("alice@example.com"));
    let mut new = old.clone();
    new["metadata"]["labels"] = json!({"team": "shop"});
    // A label added by another user (or the controller) is not a decision.
    let admission = Admission::update(old, new, "system:serviceaccount:ci:labeler");
    assert_eq!(admit(&policy, &admission), Ok(()));
}

#[test]
fn an_update_changing_the_spec_is_denied() {
    let policy = policy();
    let old = approval(spec_by("alice@example.com"));
    let changes: [(&str, Value); 4] = [
        ("decision", json!("Reject")),
        ("stage", json!("staging")),
        ("approver", json!("bob@example.com")),
        ("comment", Value::Null),
    ];
    for (field, value) in changes {
        let mut new = old.clone();
        if value.is_null() {
            new["spec"]
                .as_object_mut()
                .expect("spec object")
                .remove(field);
        } else {
            new["spec"][field] = value;
        }
        // Even by the approver named in the Approval.
        let admission = Admission::update(old.clone(), new, "alice@example.com");
        let message = rejected(&policy, &admission);
        assert!(
            message.contains("immutable"),
            "spec.{field} changed: {message}"
        );
    }
}
