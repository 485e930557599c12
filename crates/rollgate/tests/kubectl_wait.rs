//! `kubectl wait` on Argo Rollouts' names, as an Argo user's release script runs it: the built
//! `rollgate dev` serves the simulated cluster on 127.0.0.1 with the controller inside, and
//! the installed kubectl (the test is skipped when it is missing) waits on the pause reason,
//! the Completed condition, the phase and an Argo condition reason, and reads Argo's Event
//! reasons.
//!
//! Where the names come from (argoproj/argo-rollouts): `pkg/apis/rollouts/v1alpha1/types.go`
//! (`PauseReasonBlueGreenPause` = `BlueGreenPause`, `PauseReasonCanaryPauseStep` =
//! `CanaryPauseStep`, `RolloutCompleted` = the `Completed` condition type, phase `Healthy`),
//! `utils/conditions/conditions.go` (`NewRSAvailableReason` = `NewReplicaSetAvailable`,
//! `RolloutPausedReason`, `RolloutCompletedReason`), `rollout/service.go` (`SwitchService`).
#![cfg(unix)]

use crate::support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use support::{Dev, kubectl_installed, repo};

const BIN: &str = env!("CARGO_BIN_EXE_rollgate");
/// How long one `kubectl wait` may wait: a bound on a hang, not a measured duration.
const WAIT: &str = "--timeout=90s";

/// The installed kubectl against the dev cluster, with the `kubectl-rollgate` plugin first on
/// `PATH`.
struct Kubectl {
    kubeconfig: PathBuf,
    dir: PathBuf,
}

impl Kubectl {
    fn new(dir: &Path, kubeconfig: &Path) -> anyhow::Result<Self> {
        let bin = dir.join("bin");
        std::fs::create_dir_all(&bin)?;
        std::os::unix::fs::symlink(BIN, bin.join("kubectl-rollgate"))?;
        Ok(Self {
            kubeconfig: kubeconfig.to_path_buf(),
            dir: dir.to_path_buf(),
        })
    }

    /// Runs kubectl with `args` (and `stdin`, if any); expects success and returns stdout and
    /// stderr.
    fn ok(&self, args: &[&str], stdin: Option<&str>) -> anyhow::Result<String> {
        let path = std::env::join_paths(std::iter::once(self.dir.join("bin")).chain(
            std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
        ))?;
        let mut child = Command::new("kubectl")
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("KUBECACHEDIR", self.dir.join("cache"))
            .env("PATH", path)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
            std::io::Write::write_all(&mut pipe, text.as_bytes())?;
        }
        let out = child.wait_with_output()?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "kubectl {args:?} failed:\n{text}");
        Ok(text)
    }

    /// `kubectl wait` on rollout `web` in `ns` for `condition`, as a release script would.
    fn wait(&self, ns: &str, condition: &str) -> anyhow::Result<String> {
        self.ok(
            &["wait", "-n", ns, "rollout/web", "--for", condition, WAIT],
            None,
        )
    }

    /// Sets the image of rollout `web` in `ns`.
    fn set_image(&self, ns: &str, image: &str) -> anyhow::Result<()> {
        let patch = format!(
            r#"{{"spec":{{"template":{{"spec":{{"containers":[{{"name":"web","image":"{image}"}}]}}}}}}}}"#
        );
        self.ok(
            &[
                "patch", "rollout", "web", "-n", ns, "--type", "merge", "-p", &patch,
            ],
            None,
        )?;
        Ok(())
    }

    /// The reasons of the Events on rollout `web` in `ns`.
    fn event_reasons(&self, ns: &str) -> anyhow::Result<Vec<String>> {
        let out = self.ok(
            &[
                "get",
                "events",
                "-n",
                ns,
                "-o",
                "jsonpath={range .items[?(@.involvedObject.name==\"web\")]}{.reason}{\"\\n\"}{end}",
            ],
            None,
        )?;
        Ok(out.lines().map(str::to_string).collect())
    }
}

fn manifest(services: &[&str], strategy: &str) -> String {
    let mut text = String::new();
    for name in services {
        text.push_str(&format!(
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\nspec:\n  selector:\n    \
             app: web\n  ports:\n    - port: 80\n---\n"
        ));
    }
    text.push_str(&format!(
        "apiVersion: rollgate.dev/v1alpha1\nkind: Rollout\nmetadata:\n  name: web\nspec:\n  \
         replicas: 2\n  selector:\n    matchLabels:\n      app: web\n  template:\n    metadata:\n      \
         labels:\n        app: web\n    spec:\n      containers:\n        - name: web\n          \
         image: app:1\n  strategy:\n{strategy}"
    ));
    text
}

#[test]
fn kubectl_wait_works_on_argo_s_pause_reasons_conditions_and_phase() -> anyhow::Result<()> {
    if !kubectl_installed() {
        eprintln!("kubectl not installed: skipping");
        return Ok(());
    }
    let dir = std::env::temp_dir().join(format!("rollgate-kubectl-wait-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let dev = Dev::start(&dir)?;
    let k = Kubectl::new(&dir, &dev.kubeconfig)?;
    let crds = repo().join("manifests/crds");
    k.ok(&["apply", "-f", &crds.to_string_lossy()], None)?;

    // ----- blue/green, promoted by hand -----
    k.ok(&["create", "namespace", "bg"], None)?;
    let bg = manifest(
        &["web-active", "web-preview"],
        "    blueGreen:\n      activeService: web-active\n      previewService: web-preview\n      \
         autoPromotionEnabled: false\n",
    );
    k.ok(&["apply", "-n", "bg", "-f", "-"], Some(&bg))?;
    // Argo's phase and Completed condition (`RolloutCompleted` condition type).
    k.wait("bg", "jsonpath={.status.phase}=Healthy")?;
    k.wait("bg", "condition=Completed")?;
    // Argo's Progressing reason once the revision is available (`NewRSAvailableReason`).
    k.wait(
        "bg",
        "jsonpath={.status.conditions[?(@.type==\"Progressing\")].reason}=NewReplicaSetAvailable",
    )?;

    k.set_image("bg", "app:2")?;
    // Argo's `PauseReasonBlueGreenPause`: the preview waits for promotion.
    k.wait(
        "bg",
        "jsonpath={.status.pauseConditions[0].reason}=BlueGreenPause",
    )?;
    k.wait("bg", "condition=Paused")?;
    k.wait("bg", "condition=Completed=False")?;
    // Argo's one reason for the Completed condition, False too (`RolloutCompletedReason`).
    let reason = k.ok(
        &[
            "get",
            "rollout",
            "web",
            "-n",
            "bg",
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Completed\")].reason}",
        ],
        None,
    )?;
    assert_eq!(reason.trim(), "RolloutCompleted");
    k.ok(&["rollgate", "promote", "web", "-n", "bg"], None)?;
    k.wait("bg", "condition=Completed")?;
    k.wait("bg", "jsonpath={.status.phase}=Healthy")?;
    // The Event reasons Argo's notification triggers key on (`on-rollout-paused`,
    // `on-rollout-completed`, ...): one `SwitchService` for every Service.
    let reasons = k.event_reasons("bg")?;
    for expected in [
        "NewReplicaSetCreated",
        "ScalingReplicaSet",
        "SwitchService",
        "RolloutUpdated",
        "RolloutNotCompleted",
        "RolloutPaused",
        "RolloutCompleted",
    ] {
        assert!(
            reasons.iter().any(|r| r == expected),
            "no {expected} Event in {reasons:?}"
        );
    }
    assert!(
        !reasons.iter().any(|r| r.ends_with("ServiceSwitched")),
        "{reasons:?}"
    );

    // ----- canary, a pause step -----
    k.ok(&["create", "namespace", "canary"], None)?;
    let canary = manifest(
        &["web-canary", "web-stable"],
        "    canary:\n      canaryService: web-canary\n      stableService: web-stable\n      \
         steps:\n        - setWeight: 50\n        - pause: {}\n",
    );
    k.ok(&["apply", "-n", "canary", "-f", "-"], Some(&canary))?;
    k.wait("canary", "jsonpath={.status.phase}=Healthy")?;
    k.set_image("canary", "app:2")?;
    // Argo's `PauseReasonCanaryPauseStep`.
    k.wait(
        "canary",
        "jsonpath={.status.pauseConditions[0].reason}=CanaryPauseStep",
    )?;
    k.wait("canary", "jsonpath={.status.phase}=Paused")?;
    k.ok(&["rollgate", "promote", "web", "-n", "canary"], None)?;
    k.wait("canary", "condition=Completed")?;
    k.wait("canary", "condition=Healthy")?;
    let reasons = k.event_reasons("canary")?;
    for expected in ["RolloutStepCompleted", "RolloutCompleted", "SwitchService"] {
        assert!(
            reasons.iter().any(|r| r == expected),
            "no {expected} Event in {reasons:?}"
        );
    }
    drop(dev);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
