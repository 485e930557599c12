//! `rollgate crds`: the CRDs generated from the Rust types.

use std::io::{ErrorKind, Write};

use anyhow::Context;

use crate::cli::CrdsArgs;

/// Prints the CRDs as one YAML stream, or writes one file each into `--out-dir`.
pub fn run(args: &CrdsArgs) -> anyhow::Result<()> {
    let files = rollgate_api::crds::render()?;
    match &args.out_dir {
        None => {
            let docs: Vec<&str> = files.iter().map(|(_, yaml)| yaml.as_str()).collect();
            let mut out = std::io::stdout().lock();
            match out
                .write_all(docs.join("---\n").as_bytes())
                .and_then(|()| out.flush())
            {
                // The reader went away (`rollgate crds | head`): not an error of ours.
                Err(e) if e.kind() == ErrorKind::BrokenPipe => {}
                other => other.context("writing the CRDs to stdout")?,
            }
        }
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            for (name, yaml) in files {
                let path = dir.join(name);
                std::fs::write(&path, yaml)
                    .with_context(|| format!("writing {}", path.display()))?;
                println!("wrote {}", path.display());
            }
        }
    }
    Ok(())
}
