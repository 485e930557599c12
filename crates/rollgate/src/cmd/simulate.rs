//! `rollgate simulate FILE...`: runs scenarios and checks their expectations.

use rollgate_scenario::{Scenario, check, run_blocking};

use crate::cli::SimulateArgs;

/// Runs every file; exit code 0 when every expectation held, 1 when one did not, 2 when a
/// file is not a valid scenario or could not run (the others still run).
pub fn run(args: &SimulateArgs) -> anyhow::Result<u8> {
    let (mut passed, mut failed, mut broken) = (0, 0, 0);
    for path in &args.files {
        let scenario = match Scenario::load(path) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: {e}");
                broken += 1;
                continue;
            }
        };
        println!("== {}: {}", path.display(), scenario.name);
        if !args.quiet && !scenario.description.is_empty() {
            for line in scenario.description.trim().lines() {
                println!("   {line}");
            }
        }
        let quiet = args.quiet;
        let mut out = |line: String| {
            if !quiet || line.starts_with("end at") {
                println!("{line}");
            }
        };
        let outcome = match run_blocking(&scenario, &mut out) {
            Ok(o) => o,
            Err(e) => {
                eprintln!("error: {}: {e}", path.display());
                broken += 1;
                continue;
            }
        };
        let Some(expect) = &scenario.expect else {
            println!("(no expect: nothing checked)\n");
            passed += 1;
            continue;
        };
        let checks = check(expect, &outcome);
        let bad = checks.iter().filter(|c| !c.ok).count();
        println!("expect:");
        for c in &checks {
            println!("  {c}");
        }
        if bad == 0 {
            println!("PASS {} ({} checks)\n", path.display(), checks.len());
            passed += 1;
        } else {
            println!(
                "FAIL {}: {bad} of {} expectations did not hold\n",
                path.display(),
                checks.len()
            );
            failed += 1;
        }
    }
    println!("{passed} passed, {failed} failed, {broken} could not run");
    Ok(if broken > 0 {
        2
    } else if failed > 0 {
        1
    } else {
        0
    })
}
