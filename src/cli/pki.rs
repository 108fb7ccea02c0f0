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
    /// Replace one certificate of a development PKI with a new key and a
    /// certificate from its CA: an organisation's (its document signing
    /// key is kept), the server's, or the operator's (admin). A running
    /// server takes a new server certificate on SIGHUP or `lienthong
    /// reload`.
    Reissue {
        /// The PKI folder, e.g. DATA/pki.
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// Directory of organisations (TOML); default: the built-in one.
        #[arg(long)]
        directory: Option<PathBuf>,
        /// An organisation (code or alias), `server`, or `admin`.
        #[arg(value_name = "NAME")]
        name: String,
    },
}

pub fn run(command: PkiCommand) -> Result {
    match command {
        PkiCommand::Init { dir, directory } => init(dir, directory),
        PkiCommand::Reissue {
            dir,
            directory,
            name,
        } => reissue(dir, directory, &name),
    }
}

fn reissue(dir: PathBuf, directory: Option<PathBuf>, name: &str) -> Result {
    let directory = Directory::load(directory.as_deref()).map_err(|e| e.to_string())?;
    let reissued =
        pki::reissue(&PkiPaths::new(&dir), &directory, name).map_err(|e| e.to_string())?;
    outln!(
        "{}: new certificate {} and key {}, valid until {}",
        name,
        reissued.cert.display(),
        reissued.key.display(),
        reissued.not_after.date()
    );
    Ok(())
}

fn init(dir: PathBuf, directory: Option<PathBuf>) -> Result {
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
