//! Defaulting and validation the API server does for particular kinds.

use serde_json::{Value, json};

use crate::error::ApiError;
use crate::registry::ResourceType;
use crate::schema;
use crate::selector::{dns_label_ok, dns_subdomain_ok, from_label_selector};

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
    if let Some(s) = &rt.schema {
        schema::default_and_prune(s, obj);
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
            obj["status"] = json!({"loadBalancer": {}});
        }
        ("apps", "replicasets" | "deployments") => {
            if obj["spec"]["replicas"].is_null() {
                obj["spec"]["replicas"] = json!(1);
            }
            validate_workload(rt, &name, obj)?;
        }
        ("", "secrets") => {
            if obj["type"].as_str().is_none_or(str::is_empty) {
                obj["type"] = json!("Opaque");
            }
            fold_string_data(obj);
        }
        ("", "pods") => {
            if obj["spec"]["containers"]
                .as_array()
                .is_none_or(Vec::is_empty)
            {
                return Err(ApiError::invalid(
                    rt,
                    &name,
                    "spec.containers",
                    "Required value",
                ));
            }
            obj["status"] = json!({"phase": "Pending", "qosClass": "BestEffort"});
        }
        ("apiextensions.k8s.io", "customresourcedefinitions") => {
            validate_crd(rt, &name, obj)?;
            set_crd_status(obj);
        }
        _ => {}
    }
    Ok(())
}

/// Fills defaults into an updated object and validates it against the stored one.
pub fn on_update(rt: &ResourceType, old: &Value, new: &mut Value) -> Result<(), ApiError> {
    let name = old["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if let Some(s) = &rt.schema {
        schema::default_and_prune(s, new);
    }
    match (rt.group.as_str(), rt.plural.as_str()) {
        ("", "secrets") => fold_string_data(new),
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
        }
        ("apps", "replicasets" | "deployments") => {
            if new["spec"]["replicas"].is_null() {
                new["spec"]["replicas"] = json!(1);
            }
            validate_workload(rt, &name, new)?;
            if new["spec"]["selector"] != old["spec"]["selector"] {
                return Err(ApiError::invalid(
                    rt,
                    &name,
                    "spec.selector",
                    "Invalid value: field is immutable",
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
    Ok(())
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

fn validate_workload(rt: &ResourceType, name: &str, obj: &Value) -> Result<(), ApiError> {
    let selector = &obj["spec"]["selector"];
    if !selector.is_object() {
        return Err(ApiError::invalid(
            rt,
            name,
            "spec.selector",
            "Required value",
        ));
    }
    let sel = from_label_selector(selector);
    if sel.is_empty() {
        return Err(ApiError::invalid(
            rt,
            name,
            "spec.selector",
            "Invalid value: empty selector is invalid for deployment",
        ));
    }
    let template = &obj["spec"]["template"];
    let containers_ok = template["spec"]["containers"]
        .as_array()
        .is_some_and(|c| !c.is_empty() && c.iter().all(Value::is_object));
    let meta_ok = template["metadata"].is_null() || template["metadata"].is_object();
    if !containers_ok || !meta_ok {
        return Err(ApiError::invalid(
            rt,
            name,
            "spec.template.spec.containers",
            "Required value",
        ));
    }
    let labels = &template["metadata"]["labels"];
    if !sel.matches_label_map(labels) {
        return Err(ApiError::invalid(
            rt,
            name,
            "spec.template.metadata.labels",
            &format!("Invalid value: {labels}: `selector` does not match template `labels`"),
        ));
    }
    if obj["spec"]["replicas"].as_i64().is_some_and(|r| r < 0) {
        return Err(ApiError::invalid(
            rt,
            name,
            "spec.replicas",
            "Invalid value: must be greater than or equal to 0",
        ));
    }
    Ok(())
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
