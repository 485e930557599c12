//! Defaulting and validation the API server does for particular kinds.

use serde_json::{Value, json};

use crate::error::{ApiError, Cause};
use crate::registry::ResourceType;
use crate::schema::{self, Scope};
use crate::selector::{
    dns_label_ok, dns_subdomain_ok, from_label_selector, label_key_problem, label_value_problem,
};
use crate::write::Target;

/// Checks an object name for its kind.
pub fn validate_name(rt: &ResourceType, name: &str) -> Result<(), ApiError> {
    let (ok, what) = match (rt.group.as_str(), rt.plural.as_str()) {
        ("", "namespaces") => (dns_label_ok(name), "a lowercase RFC 1123 label"),
        ("", "services") => (
            dns_label_ok(name) && name.starts_with(|c: char| c.is_ascii_lowercase()),
            "a DNS-1035 label",
        ),
        _ => (dns_subdomain_ok(name), "a lowercase RFC 1123 subdomain"),
    };
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(
            rt,
            name,
            "metadata.name",
            &format!(
                "Invalid value: \"{name}\": must be {what} (lowercase alphanumerics and '-', starting and ending with an alphanumeric)"
            ),
        ))
    }
}

/// Fills defaults into a new object and validates it. `next_ip` allocates a ClusterIP.
pub fn on_create(
    rt: &ResourceType,
    obj: &mut Value,
    next_ip: &mut dyn FnMut() -> String,
) -> Result<(), ApiError> {
    let name = obj["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut causes = metadata_causes(&obj["metadata"]);
    if let Some(s) = &rt.schema {
        schema::default_and_prune(s, obj);
        let scope = if rt.status_subresource {
            Scope::AllButStatus
        } else {
            Scope::All
        };
        causes.extend(schema::validate(s, obj, scope).into_iter().map(|i| i.cause));
    }
    match (rt.group.as_str(), rt.plural.as_str()) {
        ("", "namespaces") => {
            obj["spec"]["finalizers"] = json!(["kubernetes"]);
            obj["status"] = json!({"phase": "Active"});
        }
        ("", "services") => {
            let spec = &mut obj["spec"];
            if spec["type"].is_null() {
                spec["type"] = json!("ClusterIP");
            }
            if spec["sessionAffinity"].is_null() {
                spec["sessionAffinity"] = json!("None");
            }
            if spec["type"] != "ExternalName" {
                if spec["clusterIP"].as_str().is_none_or(str::is_empty) {
                    spec["clusterIP"] = json!(next_ip());
                }
                spec["clusterIPs"] = json!([spec["clusterIP"].clone()]);
                spec["ipFamilies"] = json!(["IPv4"]);
                spec["ipFamilyPolicy"] = json!("SingleStack");
                spec["internalTrafficPolicy"] = json!("Cluster");
            }
            default_service_ports(spec);
            causes.extend(label_map_causes("spec.selector", &obj["spec"]["selector"]));
            obj["status"] = json!({"loadBalancer": {}});
        }
        ("apps", "replicasets" | "deployments") => {
            if obj["spec"]["replicas"].is_null() {
                obj["spec"]["replicas"] = json!(1);
            }
            default_pod_spec(obj.pointer_mut("/spec/template/spec"));
            check_replicas_type(rt, obj)?;
            causes.extend(workload_causes(obj));
        }
        ("", "secrets") => {
            if obj["type"].as_str().is_none_or(str::is_empty) {
                obj["type"] = json!("Opaque");
            }
            fold_string_data(obj);
        }
        ("", "podtemplates") => {
            default_pod_spec(obj.pointer_mut("/template/spec"));
            causes.extend(pod_template_causes(obj));
        }
        ("", "pods") => {
            default_pod_spec(obj.pointer_mut("/spec"));
            causes.extend(pod_spec_causes("spec", &obj["spec"]));
            obj["status"] = json!({"phase": "Pending", "qosClass": "BestEffort"});
        }
        ("apiextensions.k8s.io", "customresourcedefinitions") => {
            validate_crd(rt, &name, obj)?;
            set_crd_status(obj);
        }
        _ => {}
    }
    refuse(rt, &name, &causes)
}

/// 422 Invalid naming every cause, if there are any.
fn refuse(rt: &ResourceType, name: &str, causes: &[Cause]) -> Result<(), ApiError> {
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid_causes(rt, name, causes))
    }
}

/// Fills defaults into an updated object and validates it against the stored one. Schema
/// violations that the update did not touch are let through (ratcheting), and a write to
/// the status subresource is validated against the status schema only.
pub fn on_update(
    rt: &ResourceType,
    old: &Value,
    new: &mut Value,
    target: Target,
) -> Result<(), ApiError> {
    let name = old["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut causes = metadata_causes(&new["metadata"]);
    if let Some(s) = &rt.schema {
        schema::default_and_prune(s, new);
        let scope = match target {
            Target::Status => Scope::Status,
            Target::Main if rt.status_subresource => Scope::AllButStatus,
            Target::Main => Scope::All,
        };
        let issues = schema::ratchet(schema::validate(s, new, scope), old, new);
        causes.extend(issues.into_iter().map(|i| i.cause));
    }
    match (rt.group.as_str(), rt.plural.as_str()) {
        ("", "secrets") => fold_string_data(new),
        ("", "pods") => default_pod_spec(new.pointer_mut("/spec")),
        ("", "podtemplates") => {
            default_pod_spec(new.pointer_mut("/template/spec"));
            causes.extend(pod_template_causes(new));
        }
        ("", "services") => {
            let old_ip = old["spec"]["clusterIP"].clone();
            let spec = &mut new["spec"];
            if spec["clusterIP"].as_str().is_none_or(str::is_empty) {
                spec["clusterIP"] = old_ip.clone();
                spec["clusterIPs"] = old["spec"]["clusterIPs"].clone();
            } else if spec["clusterIP"] != old_ip && !old_ip.is_null() {
                return Err(ApiError::invalid(
                    rt,
                    &name,
                    "spec.clusterIP",
                    "Invalid value: field is immutable",
                ));
            }
            for f in [
                "type",
                "sessionAffinity",
                "ipFamilies",
                "ipFamilyPolicy",
                "internalTrafficPolicy",
            ] {
                if spec[f].is_null() && !old["spec"][f].is_null() {
                    spec[f] = old["spec"][f].clone();
                }
            }
            default_service_ports(spec);
            causes.extend(label_map_causes("spec.selector", &new["spec"]["selector"]));
        }
        ("apps", "replicasets" | "deployments") => {
            if new["spec"]["replicas"].is_null() {
                new["spec"]["replicas"] = json!(1);
            }
            default_pod_spec(new.pointer_mut("/spec/template/spec"));
            check_replicas_type(rt, new)?;
            causes.extend(workload_causes(new));
            if new["spec"]["selector"] != old["spec"]["selector"] {
                causes.push(Cause::invalid(
                    "spec.selector",
                    &new["spec"]["selector"],
                    "field is immutable",
                ));
            }
        }
        ("apiextensions.k8s.io", "customresourcedefinitions") => {
            validate_crd(rt, &name, new)?;
            if new["spec"]["group"] != old["spec"]["group"] {
                return Err(ApiError::invalid(
                    rt,
                    &name,
                    "spec.group",
                    "Invalid value: field is immutable",
                ));
            }
            set_crd_status(new);
        }
        _ => {}
    }
    refuse(rt, &name, &causes)
}

/// Moves a Secret's `stringData` into `data` (base64), as the API server does.
fn fold_string_data(obj: &mut Value) {
    if let Some(string_data) = obj.get("stringData").and_then(Value::as_object).cloned() {
        for (k, v) in string_data {
            obj["data"][k] = json!(crate::proto::base64(
                v.as_str().unwrap_or_default().as_bytes()
            ));
        }
        if let Some(m) = obj.as_object_mut() {
            m.remove("stringData");
        }
    }
}

/// Fills the defaults a real API server gives a pod spec (a Pod's `spec`, a workload's
/// `spec.template.spec`): restart, DNS and scheduler policy, grace period, security context,
/// and per container the pull policy, termination message, resources and port protocol.
/// Fields already set are kept; a spec that is not an object is left for validation.
fn default_pod_spec(spec: Option<&mut Value>) {
    let Some(m) = spec.and_then(Value::as_object_mut) else {
        return;
    };
    for (field, value) in [
        ("restartPolicy", json!("Always")),
        ("terminationGracePeriodSeconds", json!(30)),
        ("dnsPolicy", json!("ClusterFirst")),
        ("schedulerName", json!("default-scheduler")),
        ("securityContext", json!({})),
    ] {
        if m.get(field).is_none_or(Value::is_null) {
            m.insert(field.to_string(), value);
        }
    }
    for list in ["initContainers", "containers"] {
        let Some(containers) = m.get_mut(list).and_then(Value::as_array_mut) else {
            continue;
        };
        for c in containers.iter_mut().filter_map(Value::as_object_mut) {
            let pull = match c.get("image").and_then(Value::as_str) {
                Some(image) if pulls_always(image) => "Always",
                _ => "IfNotPresent",
            };
            for (field, value) in [
                ("imagePullPolicy", json!(pull)),
                ("terminationMessagePath", json!("/dev/termination-log")),
                ("terminationMessagePolicy", json!("File")),
                ("resources", json!({})),
            ] {
                if c.get(field).is_none_or(Value::is_null) {
                    c.insert(field.to_string(), value);
                }
            }
            let ports = c.get_mut("ports").and_then(Value::as_array_mut);
            for p in ports.into_iter().flatten().filter_map(Value::as_object_mut) {
                if p.get("protocol").is_none_or(Value::is_null) {
                    p.insert("protocol".to_string(), json!("TCP"));
                }
            }
        }
    }
}

/// Whether an image's default pull policy is `Always`: its tag is `latest`, or it has neither
/// a tag nor a digest (which means `latest`).
fn pulls_always(image: &str) -> bool {
    if image.contains('@') {
        return false;
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.rsplit_once(':') {
        Some((_, tag)) => tag == "latest",
        None => true,
    }
}

fn default_service_ports(spec: &mut Value) {
    if let Some(ports) = spec["ports"].as_array_mut() {
        for p in ports.iter_mut().filter(|p| p.is_object()) {
            if p["protocol"].is_null() {
                p["protocol"] = json!("TCP");
            }
            if p["targetPort"].is_null() && !p["port"].is_null() {
                p["targetPort"] = p["port"].clone();
            }
        }
    }
}

/// `spec.replicas` of a workload must decode as an int32 (400 BadRequest otherwise, as the
/// API server's decoder answers).
fn check_replicas_type(rt: &ResourceType, obj: &Value) -> Result<(), ApiError> {
    let r = &obj["spec"]["replicas"];
    if r.is_null() || r.as_i64().is_some_and(|n| i32::try_from(n).is_ok()) {
        return Ok(());
    }
    Err(ApiError::bad_request(format!(
        "{kind} in version \"{version}\" cannot be handled as a {kind}: spec.replicas: \
         expected an int32, got {r}",
        kind = rt.kind,
        version = rt.version,
    )))
}

/// What is wrong with a ReplicaSet's or Deployment's spec.
fn workload_causes(obj: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let selector = &obj["spec"]["selector"];
    let template = &obj["spec"]["template"];
    let labels = &template["metadata"]["labels"];
    if selector.is_object() {
        let before = causes.len();
        causes.extend(selector_causes("spec.selector", selector));
        let sel = from_label_selector(selector);
        if causes.len() == before {
            if sel.is_empty() {
                causes.push(Cause::invalid(
                    "spec.selector",
                    selector,
                    "empty selector is invalid for deployment",
                ));
            } else if !sel.matches_label_map(labels) {
                causes.push(Cause::invalid(
                    "spec.template.metadata.labels",
                    labels,
                    "`selector` does not match template `labels`",
                ));
            }
        }
    } else {
        causes.push(Cause::required("spec.selector", ""));
    }
    if !(template["metadata"].is_null() || template["metadata"].is_object()) {
        causes.push(Cause::invalid(
            "spec.template.metadata",
            &template["metadata"],
            "must be an object",
        ));
    } else {
        causes.extend(label_map_causes("spec.template.metadata.labels", labels));
    }
    causes.extend(pod_spec_causes("spec.template.spec", &template["spec"]));
    let replicas = &obj["spec"]["replicas"];
    if replicas.as_i64().is_some_and(|r| r < 0) {
        causes.push(Cause::invalid(
            "spec.replicas",
            replicas,
            "must be greater than or equal to 0",
        ));
    }
    causes
}

/// What is wrong with a PodTemplate: its `template`'s labels and pod spec (a real API server
/// validates it as it does a ReplicaSet's template).
fn pod_template_causes(obj: &Value) -> Vec<Cause> {
    let template = &obj["template"];
    let mut causes = Vec::new();
    if !(template["metadata"].is_null() || template["metadata"].is_object()) {
        causes.push(Cause::invalid(
            "template.metadata",
            &template["metadata"],
            "must be an object",
        ));
    } else {
        causes.extend(label_map_causes(
            "template.metadata.labels",
            &template["metadata"]["labels"],
        ));
    }
    causes.extend(pod_spec_causes("template.spec", &template["spec"]));
    causes
}

/// What is wrong with a pod spec at `at` (`spec`, `spec.template.spec`): containers need a
/// unique DNS-label name and an image.
fn pod_spec_causes(at: &str, spec: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let containers = spec["containers"].as_array();
    if containers.is_none_or(Vec::is_empty) {
        causes.push(Cause::required(&format!("{at}.containers"), ""));
    }
    let mut seen = Vec::new();
    for list in ["initContainers", "containers"] {
        for (i, c) in spec[list].as_array().into_iter().flatten().enumerate() {
            let here = format!("{at}.{list}[{i}]");
            if !c.is_object() {
                causes.push(Cause::invalid(&here, c, "must be an object"));
                continue;
            }
            match c["name"].as_str() {
                None | Some("") => causes.push(Cause::required(&format!("{here}.name"), "")),
                Some(n) if !dns_label_ok(n) => causes.push(Cause::invalid(
                    &format!("{here}.name"),
                    &c["name"],
                    "must be a lowercase RFC 1123 label (lowercase alphanumerics and '-', \
                     starting and ending with an alphanumeric, at most 63 characters)",
                )),
                Some(n) if seen.contains(&n) => causes.push(Cause {
                    reason: "FieldValueDuplicate",
                    field: format!("{here}.name"),
                    message: format!("Duplicate value: \"{n}\""),
                }),
                Some(n) => seen.push(n),
            }
            if c["image"].as_str().is_none_or(|i| i.trim().is_empty()) {
                causes.push(Cause::required(&format!("{here}.image"), ""));
            }
        }
    }
    causes
}

/// What is wrong with an object's metadata that every kind checks: its labels.
fn metadata_causes(meta: &Value) -> Vec<Cause> {
    label_map_causes("metadata.labels", &meta["labels"])
}

/// What is wrong with a map of labels at `at` (keys: qualified names; values: label values).
fn label_map_causes(at: &str, labels: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    match labels {
        Value::Null => {}
        Value::Object(m) => {
            for (k, v) in m {
                if let Some(why) = label_key_problem(k) {
                    causes.push(Cause::invalid(at, &json!(k), &why));
                }
                match v.as_str() {
                    Some(s) => {
                        if let Some(why) = label_value_problem(s) {
                            causes.push(Cause::invalid(at, v, &why));
                        }
                    }
                    None => causes.push(Cause::invalid(
                        &format!("{at}.{k}"),
                        v,
                        "a label value must be a string",
                    )),
                }
            }
        }
        other => causes.push(Cause::invalid(at, other, "must be a map of strings")),
    }
    causes
}

/// What is wrong with a label selector object at `at`.
fn selector_causes(at: &str, sel: &Value) -> Vec<Cause> {
    let mut causes = label_map_causes(&format!("{at}.matchLabels"), &sel["matchLabels"]);
    let exprs = &sel["matchExpressions"];
    if !exprs.is_null() && !exprs.is_array() {
        causes.push(Cause::invalid(
            &format!("{at}.matchExpressions"),
            exprs,
            "must be a list",
        ));
    }
    for (i, e) in exprs.as_array().into_iter().flatten().enumerate() {
        let here = format!("{at}.matchExpressions[{i}]");
        match e["key"].as_str() {
            None | Some("") => causes.push(Cause::required(&format!("{here}.key"), "")),
            Some(k) => {
                if let Some(why) = label_key_problem(k) {
                    causes.push(Cause::invalid(&format!("{here}.key"), &e["key"], &why));
                }
            }
        }
        let values = e["values"].as_array();
        let n = values.map_or(0, Vec::len);
        match e["operator"].as_str() {
            Some("In" | "NotIn") if n == 0 => causes.push(Cause::required(
                &format!("{here}.values"),
                "must be specified when `operator` is 'In' or 'NotIn'",
            )),
            Some("Exists" | "DoesNotExist") if n > 0 => causes.push(Cause::forbidden(
                &format!("{here}.values"),
                "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
            )),
            Some("In" | "NotIn" | "Exists" | "DoesNotExist") => {}
            None => causes.push(Cause::required(&format!("{here}.operator"), "")),
            Some(_) => causes.push(Cause::invalid(
                &format!("{here}.operator"),
                &e["operator"],
                "not a valid selector operator (In, NotIn, Exists, DoesNotExist)",
            )),
        }
        for (j, v) in values.into_iter().flatten().enumerate() {
            let why = match v.as_str() {
                Some(s) => label_value_problem(s),
                None => Some("a label value must be a string".to_string()),
            };
            if let Some(why) = why {
                causes.push(Cause::invalid(&format!("{here}.values[{j}]"), v, &why));
            }
        }
    }
    causes
}

fn validate_crd(rt: &ResourceType, name: &str, crd: &Value) -> Result<(), ApiError> {
    let spec = &crd["spec"];
    let group = spec["group"].as_str().unwrap_or_default();
    let plural = spec["names"]["plural"].as_str().unwrap_or_default();
    if group.is_empty() || !group.contains('.') {
        return Err(ApiError::invalid(
            rt,
            name,
            "spec.group",
            "Invalid value: should be a domain with at least one dot",
        ));
    }
    if plural.is_empty() || spec["names"]["kind"].as_str().is_none_or(str::is_empty) {
        return Err(ApiError::invalid(
            rt,
            name,
            "spec.names",
            "Required value: plural and kind are required",
        ));
    }
    if name != format!("{plural}.{group}") {
        return Err(ApiError::invalid(
            rt,
            name,
            "metadata.name",
            &format!("Invalid value: \"{name}\": must be spec.names.plural+\".\"+spec.group"),
        ));
    }
    if spec["versions"].as_array().is_none_or(Vec::is_empty) {
        return Err(ApiError::invalid(
            rt,
            name,
            "spec.versions",
            "Invalid value: must have exactly one version marked as storage version",
        ));
    }
    Ok(())
}

/// The status the API server gives an accepted CRD: names accepted, established.
fn set_crd_status(crd: &mut Value) {
    let stored: Vec<Value> = crd["spec"]["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v["storage"].as_bool() == Some(true))
        .map(|v| v["name"].clone())
        .collect();
    let mut names = crd["spec"]["names"].clone();
    if names["singular"].as_str().is_none_or(str::is_empty) {
        names["singular"] = json!(names["kind"].as_str().unwrap_or_default().to_lowercase());
    }
    if names["listKind"].is_null() {
        names["listKind"] = json!(format!(
            "{}List",
            names["kind"].as_str().unwrap_or_default()
        ));
    }
    let time = crd["metadata"]["creationTimestamp"].clone();
    crd["status"] = json!({
        "acceptedNames": names,
        "storedVersions": stored,
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
             "message": "no conflicts found", "lastTransitionTime": time},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
             "message": "the initial names have been accepted", "lastTransitionTime": time},
        ],
    });
}
