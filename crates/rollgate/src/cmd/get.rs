//! `rollgate get rollout NAME [-w]`: the rollout's header and tree, once or redrawn on change.

use std::io::IsTerminal;
use std::time::Duration;

use anyhow::Context;
use rollgate_ctl::Timestamp;
use rollgate_ctl::tree::{fetch, render};

use crate::cli::GetRolloutArgs;
use crate::cmd::ctl::connect;

/// Prints the rollout; with `--watch`, again whenever it changes.
pub fn rollout(args: &GetRolloutArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(async {
        let client = connect(&args.rollout.cluster).await?;
        let namespace = args
            .rollout
            .cluster
            .namespace
            .clone()
            .unwrap_or_else(|| client.default_namespace().to_string());
        let name = &args.rollout.name;
        let objects = fetch(&client, &namespace, name).await?;
        print!("{}", render(&objects, Timestamp::now(), true));
        if !args.watch {
            return Ok(());
        }
        let terminal = std::io::stdout().is_terminal();
        let mut last = render(&objects, Timestamp::now(), false);
        let deadline = args.timeout.map(|t| tokio::time::Instant::now() + t);
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => return Ok(()),
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
                return Ok(());
            }
            let objects = fetch(&client, &namespace, name).await?;
            let now = Timestamp::now();
            // Ages alone do not make a new frame.
            let frame = render(&objects, now, false);
            if frame == last {
                continue;
            }
            last = frame;
            if terminal {
                // Clear the screen, cursor home.
                print!("\x1b[2J\x1b[H");
            } else {
                println!();
            }
            print!("{}", render(&objects, now, true));
        }
    })
}
