//! `lienthong verify`: checks offline, with no server, a document saved
//! with `show --save`, a folder written by `archive export` (every document
//! and proof in it), or a proof file written by `archive prove` or
//! `archive consistency`.
//!
//! It checks against keys the user trusts — `--service-key`, `--keys`, or
//! the copies in the PKI folder — and never against a key found inside what
//! it checks: anyone can make a self-consistent forgery with a key of their
//! own. With no trusted service key it checks nothing and fails.

use std::path::{Path, PathBuf};

use clap::Args;
use serde_json::json;

use super::error::{CliError, Result};
use super::output::{outln, print_json};
use super::settings;
use crate::archive::proof::ProofFile;
use crate::evidence::{Check, TrustedKeys};

#[derive(Args)]
pub struct VerifyArgs {
    /// A folder written by `show --save` or `archive export`, or a proof
    /// file written by `archive prove` or `archive consistency`.
    pub dir: PathBuf,
    /// The registry of organisations' signing keys you trust (the server's
    /// signing-keys.toml); default: signing-keys.toml in the PKI folder if
    /// there is one, else the sender's key saved with the document, which
    /// the receipt names by its digest.
    #[arg(long, value_name = "FILE")]
    pub keys: Option<PathBuf>,
    /// The service public key you trust (PEM, the service's
    /// service-key.pub.pem); default: service-key.pub.pem in the PKI folder.
    /// The key saved with the evidence is never trusted.
    #[arg(long, value_name = "FILE")]
    pub service_key: Option<PathBuf>,
    /// PKI folder holding the trusted service-key.pub.pem (and
    /// signing-keys.toml), used when --service-key (--keys) is not given
    /// [env: LIENTHONG_PKI; then `lienthong login`'s; default: ./data/pki]
    #[arg(long, value_name = "DIR")]
    pub pki: Option<PathBuf>,
    /// Print the checks as one JSON document.
    #[arg(long)]
    pub json: bool,
}

/// `verify DIR|FILE`, against the keys the user trusts.
pub fn run(args: VerifyArgs) -> Result {
    let pki = settings::resolve(None, args.pki.clone(), None)?.pki.value;
    let trusted = TrustedKeys::resolve(args.service_key.as_deref(), args.keys.as_deref(), &pki)
        .map_err(|e| e.to_string())?;
    let (checks, saved_sender_key) = if args.dir.join("index.json").is_file() {
        (
            export_checks(&args.dir, &trusted)?,
            trusted.registry.is_none(),
        )
    } else if args.dir.is_file() {
        (proof_checks(&args.dir, &trusted)?, false)
    } else {
        (
            document_checks(&args.dir, &trusted)?,
            trusted.registry.is_none(),
        )
    };
    print_checks(&checks, saved_sender_key, args.json);
    match checks.iter().filter(|c| !c.ok).count() {
        0 => Ok(()),
        n => Err(failed(format!(
            "verification failed: {n} of {} checks ({})",
            checks.len(),
            checks
                .iter()
                .filter(|c| !c.ok)
                .map(|c| c.subject.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// The checks of a folder written by `show --save`.
fn document_checks(dir: &Path, trusted: &TrustedKeys) -> Result<Vec<Check>> {
    Ok(crate::evidence::verify(dir, trusted).map_err(|e| e.to_string())?)
}

/// The checks of a proof file written by `archive prove` or `consistency`.
fn proof_checks(file: &Path, trusted: &TrustedKeys) -> Result<Vec<Check>> {
    Ok(ProofFile::read(file)
        .map_err(|e| e.to_string())?
        .check(&trusted.service_key))
}

/// A folder written by `archive export`: every document in its index, and
/// its inclusion proof, each checked as on its own; a document the export
/// lists as failed is a failed check. The service key the export carries is
/// not used.
fn export_checks(dir: &Path, trusted: &TrustedKeys) -> Result<Vec<Check>> {
    let index_file = dir.join("index.json");
    let text = std::fs::read(&index_file)
        .map_err(|e| CliError::io(format_args!("cannot read {}", index_file.display()), &e))?;
    let index: serde_json::Value = serde_json::from_slice(&text).map_err(|e| {
        format!(
            "{} is not an export index (JSON): {e}",
            index_file.display()
        )
    })?;
    let Some(documents) = index["documents"].as_array() else {
        return Err(format!("{}: no \"documents\" list", index_file.display()).into());
    };
    let mut checks = Vec::new();
    for (i, entry) in documents.iter().enumerate() {
        let Some(id) = entry["id"].as_str() else {
            return Err(format!("{}: documents[{i}] has no id", index_file.display()).into());
        };
        // An id is a folder name only if it is a plain name.
        crate::document::check_file_name("documents[].id", id)
            .map_err(|e| format!("{}: {e}", index_file.display()))?;
        let folder = dir.join(id);
        let mut of_document = document_checks(&folder, trusted)?;
        of_document.extend(proof_checks(&folder.join("inclusion.json"), trusted)?);
        checks.extend(of_document.into_iter().map(|c| Check {
            subject: format!("{id}: {}", c.subject),
            ..c
        }));
    }
    // What the export could not write is missing from it: the folder is not
    // the whole of what was asked for.
    for entry in index["failed"].as_array().into_iter().flatten() {
        let id = entry["id"].as_str().unwrap_or("?");
        let error = entry["error"].as_str().unwrap_or("no reason given");
        checks.push(Check {
            subject: format!("{id}: export"),
            ok: false,
            detail: format!("not in this export: {error}"),
        });
    }
    Ok(checks)
}

/// The error a failed check ends the command with.
fn failed(message: String) -> CliError {
    CliError::new(tonic::Code::DataLoss, message)
}

fn print_checks(checks: &[Check], saved_sender_key: bool, as_json: bool) {
    if as_json {
        print_json(&json!({
            "ok": checks.iter().all(|c| c.ok),
            "checks": checks.iter().map(|c| json!({"subject": c.subject, "ok": c.ok, "detail": c.detail})).collect::<Vec<_>>(),
            "used_saved_keys": saved_sender_key,
        }));
        return;
    }
    for c in checks {
        outln!(
            "{:<6} {}: {}",
            if c.ok { "ok" } else { "FAILED" },
            c.subject,
            c.detail
        );
    }
    if saved_sender_key {
        outln!("note: the sender's key is the one saved with the document, which the receipt names by its digest; --keys FILE checks it against your copy of the registry");
    }
}
