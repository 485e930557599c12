//! `--request-timeout`: against an API server that accepts connections and never answers, a
//! command fails after the timeout instead of hanging.

use std::net::TcpListener;
use std::process::Command;
use std::time::{Duration, Instant};

use rollgate_local::kubeconfig::Kubeconfig;

#[test]
fn a_silent_api_server_fails_the_command_after_the_request_timeout() -> anyhow::Result<()> {
    // Accepts every connection and never writes a byte.
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    let dir = std::env::temp_dir().join(format!("rollgate-request-timeout-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let kubeconfig = dir.join("kubeconfig");
    Kubeconfig::new("silent", &format!("http://{addr}")).write(&kubeconfig)?;

    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_rollgate"))
        .args([
            "status",
            "web",
            "--timeout",
            "1m",
            "--request-timeout",
            "1s",
        ])
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .output()?;
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "exit 3 (error): {stderr}");
    assert!(took < Duration::from_secs(20), "took {took:?}: {stderr}");
    assert!(
        stderr.to_lowercase().contains("timed out") || stderr.contains("timeout"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
