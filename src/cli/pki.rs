//! `lienthong pki`: certificates for a deployment.

use std::path::PathBuf;

use clap::Subcommand;

use super::error::Result;
use super::output::outln;
use crate::directory::Directory;
use crate::pki::{self, PkiPaths};

#[derive(Subcommand)]
pub enum PkiCommand {
    /// Create a development PKI (CA, server and client certificates) in DIR,
    /// or add client certificates for organisations that have none.
    Init {
        /// The PKI folder to create (or complete), e.g. DATA/pki.
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// Directory of organisations (TOML); default: the built-in one.
        #[arg(long)]
        directory: Option<PathBuf>,
    },
}

pub fn run(command: PkiCommand) -> Result {
    let PkiCommand::Init { dir, directory } = command;
    let directory = Directory::load(directory.as_deref()).map_err(|e| e.to_string())?;
    let paths = PkiPaths::new(&dir);
    let report = pki::ensure_dev_pki(&paths, &directory).map_err(|e| e.to_string())?;
    outln!(
        "{}: {} CA, {}",
        dir.display(),
        if report.created_ca {
            "created the"
        } else {
            "kept the existing"
        },
        super::output::plural(
            report.issued_clients as u64,
            "new client certificate",
            "new client certificates"
        )
    );
    Ok(())
}
