//! Prints Ferry's CRDs as YAML, or writes them to a directory.
//!
//! `crdgen` prints every CRD as one multi-document stream (for
//! `crdgen | kubectl apply -f -`); `crdgen --write crds` rewrites the
//! committed files, one per CRD. A test fails when those files differ from
//! what the types generate.

use std::path::PathBuf;

use clap::Parser;
use ferry::api::{all_crds, crd_file_name, crd_yaml};

#[derive(Parser)]
#[command(about = "Print or write Ferry's CustomResourceDefinitions")]
struct Args {
    /// Write one file per CRD into this directory instead of printing.
    #[arg(long, value_name = "DIR")]
    write: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let crds = all_crds();
    match args.write {
        None => {
            for crd in &crds {
                print!("---\n{}", crd_yaml(crd));
            }
        }
        Some(dir) => {
            std::fs::create_dir_all(&dir)?;
            for crd in &crds {
                let path = dir.join(crd_file_name(crd));
                std::fs::write(&path, crd_yaml(crd))?;
                eprintln!("wrote {}", path.display());
            }
        }
    }
    Ok(())
}
