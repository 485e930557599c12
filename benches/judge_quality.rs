//! Canary-judge quality: thousands of generated canaries, good and bad, judged by a threshold
//! rule (Argo/Flagger style), Kayenta's fixed-horizon judge and the sequential judge; prints a
//! markdown table of false rollbacks and times to rollback, and the goal checked against
//! it. Seeded: the same run prints the same table. See `rollgate_benches::judge_quality`.
//!
//! `cargo bench -p rollgate-benches --bench judge_quality` (full: 2000 good canaries per metric,
//! 500 per bad ratio); add `-- --quick` or set `ROLLGATE_JUDGE_QUICK=1` for a short run.

use std::time::Instant;

use rollgate_benches::judge_quality::{Config, classes, run};

fn main() {
    let quick = std::env::args().any(|a| a == "--quick")
        || std::env::var("ROLLGATE_JUDGE_QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
    let config = if quick {
        Config::quick()
    } else {
        Config::full()
    };
    let started = Instant::now();
    let report = run(config, &classes());
    print!("{}", report.render());
    println!("({:.1} s)", started.elapsed().as_secs_f64());
}
