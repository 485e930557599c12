//! Every kept crashing input (`fuzz/regressions/<target>/`) and every seed
//! (`fuzz/corpus/<target>/`) goes through its fuzz target without a panic.

use std::path::{Path, PathBuf};

use rollgate_fuzzing::TARGETS;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// The files of `dir` (none when it does not exist), sorted.
fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.file_name().is_none_or(|n| n != ".gitkeep"))
        .collect();
    out.sort();
    out
}

/// Runs every file of `fuzz/<kind>/<target>/` through its target; returns the files that
/// panicked, with the panic message, and how many ran.
fn run_all(kind: &str) -> (Vec<String>, usize) {
    let mut failed = Vec::new();
    let mut ran = 0;
    for (name, target) in TARGETS {
        for file in files(&fuzz_dir().join(kind).join(name)) {
            let data = std::fs::read(&file).expect("read an input");
            ran += 1;
            if let Err(panic) = std::panic::catch_unwind(|| target(&data)) {
                let why = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_string()))
                    .unwrap_or_default();
                failed.push(format!("{name}: {}: {why}", file.display()));
            }
        }
    }
    (failed, ran)
}

#[test]
fn kept_crashing_inputs_no_longer_panic() {
    let (failed, _) = run_all("regressions");
    assert!(failed.is_empty(), "panicked:\n{}", failed.join("\n"));
}

#[test]
fn the_seed_corpus_runs_without_a_panic() {
    let (failed, ran) = run_all("corpus");
    assert!(failed.is_empty(), "panicked:\n{}", failed.join("\n"));
    // Every target has seeds.
    for (name, _) in TARGETS {
        assert!(
            !files(&fuzz_dir().join("corpus").join(name)).is_empty(),
            "fuzz/corpus/{name} holds no seed"
        );
    }
    assert!(ran > 0);
}

#[test]
fn every_target_has_a_fuzz_target_file() {
    for (name, _) in TARGETS {
        let file = fuzz_dir().join("fuzz_targets").join(format!("{name}.rs"));
        assert!(file.is_file(), "{} is missing", file.display());
    }
}
