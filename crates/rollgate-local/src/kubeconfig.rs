//! A kubeconfig for the simulated cluster served over plain HTTP on 127.0.0.1 (no
//! credentials): what `rollgate dev` writes for kubectl, and what the binary's tests use.

use std::path::Path;

/// A kubeconfig with one cluster and one user, both named after the first context, which is
/// the current one; more contexts may point at the same cluster with another namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kubeconfig {
    server: String,
    /// `(name, namespace)`; the first is the current context.
    contexts: Vec<(String, Option<String>)>,
}

impl Kubeconfig {
    /// A kubeconfig whose cluster, user and current context are all named `name`, for the API
    /// server at `server` (e.g. `http://127.0.0.1:8001`).
    pub fn new(name: &str, server: &str) -> Self {
        Self {
            server: server.to_string(),
            contexts: vec![(name.to_string(), None)],
        }
    }

    /// Sets the namespace of the current context (default: none, so clients use `default`).
    #[must_use]
    pub fn namespace(mut self, namespace: &str) -> Self {
        if let Some(first) = self.contexts.first_mut() {
            first.1 = Some(namespace.to_string());
        }
        self
    }

    /// Adds another context on the same cluster and user, with `namespace` (or none).
    #[must_use]
    pub fn with_context(mut self, name: &str, namespace: Option<&str>) -> Self {
        self.contexts
            .push((name.to_string(), namespace.map(String::from)));
        self
    }

    /// The kubeconfig as YAML.
    pub fn render(&self) -> String {
        // JSON strings are YAML double-quoted scalars: any name or URL stays one value.
        let q = |s: &str| serde_json::Value::from(s).to_string();
        let name = self.contexts.first().map_or("", |c| c.0.as_str());
        let mut out = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: {n}\n  cluster:\n    server: {server}\nusers:\n- name: {n}\n  user: {{}}\ncontexts:\n",
            n = q(name),
            server = q(&self.server),
        );
        for (context, namespace) in &self.contexts {
            out.push_str(&format!(
                "- name: {}\n  context:\n    cluster: {n}\n    user: {n}\n",
                q(context),
                n = q(name)
            ));
            if let Some(ns) = namespace {
                out.push_str(&format!("    namespace: {}\n", q(ns)));
            }
        }
        out.push_str(&format!("current-context: {}\n", q(name)));
        out
    }

    /// Writes the kubeconfig to `path` (creating its directory).
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, self.render())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_a_cluster_a_user_and_the_contexts() {
        let text = Kubeconfig::new("sim", "http://127.0.0.1:4321")
            .namespace("shop")
            .with_context("other", None)
            .render();
        let v: serde_json::Value = serde_saphyr::from_str(&text).expect("valid YAML");
        assert_eq!(v["current-context"], "sim");
        assert_eq!(v["clusters"][0]["name"], "sim");
        assert_eq!(
            v["clusters"][0]["cluster"]["server"],
            "http://127.0.0.1:4321"
        );
        assert_eq!(v["users"][0]["name"], "sim");
        assert_eq!(
            v["contexts"],
            serde_json::json!([
                {"name": "sim", "context": {"cluster": "sim", "user": "sim", "namespace": "shop"}},
                {"name": "other", "context": {"cluster": "sim", "user": "sim"}}
            ])
        );
    }

    #[test]
    fn kube_reads_it() {
        let text = Kubeconfig::new("rollgate-dev", "http://127.0.0.1:4321").render();
        let config = kube::config::Kubeconfig::from_yaml(&text).expect("a kubeconfig");
        assert_eq!(config.current_context.as_deref(), Some("rollgate-dev"));
        let cluster = config.clusters[0].cluster.as_ref().expect("cluster");
        assert_eq!(cluster.server.as_deref(), Some("http://127.0.0.1:4321"));
    }
}
