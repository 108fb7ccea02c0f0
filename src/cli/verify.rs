//! `lienthong verify`: checks offline, with no server, a document saved
//! with `show --save`, a proof file written by `archive prove` or
//! `archive consistency`, or a whole folder written by `archive export`.

use std::path::{Path, PathBuf};

use clap::Args;
use serde_json::json;

use super::error::{CliError, Result};
use super::output::{outln, print_json};
use crate::client::read_public_key;
use crate::evidence::Check;

#[derive(Args)]
pub struct VerifyArgs {
    /// A folder written by `show --save` or `archive export`, or a proof
    /// file written by `archive prove` or `archive consistency`.
    pub dir: PathBuf,
    /// Check the sender's key against this registry (the server's
    /// signing-keys.toml) instead of the key saved with the document.
    #[arg(long, value_name = "FILE")]
    pub keys: Option<PathBuf>,
    /// Check the receipt against this service public key (PEM, the server's
    /// service-key.pub.pem) instead of the one saved with the document.
    #[arg(long, value_name = "FILE")]
    pub service_key: Option<PathBuf>,
    /// Print the checks as one JSON document.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: VerifyArgs) -> Result {
    if args.dir.join("index.json").is_file() {
        return verify_export(&args);
    }
    if args.dir.is_file() {
        return verify_proof_file(&args);
    }
    let checks = document_checks(&args.dir, &args)?;
    print_checks(
        &checks,
        args.keys.is_none() || args.service_key.is_none(),
        args.json,
    );
    fail_unless_all_ok(&checks)
}

/// The checks of a folder written by `show --save`.
fn document_checks(dir: &Path, args: &VerifyArgs) -> Result<Vec<Check>> {
    let mut trusted = crate::evidence::TrustedKeys::default();
    if let Some(file) = &args.keys {
        trusted.registry = Some(crate::keys::KeyRegistry::load(file).map_err(|e| e.to_string())?);
    }
    if let Some(file) = &args.service_key {
        trusted.service_key = Some(read_public_key(file)?);
    }
    Ok(crate::evidence::verify(dir, &trusted)?)
}

/// The checks of a proof file written by `archive prove` or `consistency`.
fn proof_checks(file: &Path, args: &VerifyArgs) -> Result<Vec<Check>> {
    let text = std::fs::read(file)
        .map_err(|e| CliError::io(format_args!("cannot read {}", file.display()), &e))?;
    let file: serde_json::Value = serde_json::from_slice(&text)
        .map_err(|e| format!("{} is not a proof file (JSON): {e}", file.display()))?;
    let trusted = args
        .service_key
        .as_deref()
        .map(read_public_key)
        .transpose()?;
    Ok(crate::archive::proof::verify(&file, trusted.as_ref()))
}

fn fail_unless_all_ok(checks: &[Check]) -> Result {
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

/// `verify FILE` for an archive proof file.
fn verify_proof_file(args: &VerifyArgs) -> Result {
    let checks = proof_checks(&args.dir, args)?;
    print_checks(&checks, args.service_key.is_none(), args.json);
    match checks
        .iter()
        .filter(|c| !c.ok)
        .map(|c| c.subject.as_str())
        .collect::<Vec<_>>()
    {
        failed if failed.is_empty() => Ok(()),
        failed => Err(self::failed(format!(
            "verification failed: {}",
            failed.join(", ")
        ))),
    }
}

/// `verify DIR` for a folder written by `archive export`: every document
/// in its index, and its inclusion proof, each checked as on its own.
fn verify_export(args: &VerifyArgs) -> Result {
    let index_file = args.dir.join("index.json");
    let text = std::fs::read(&index_file)
        .map_err(|e| CliError::io(format_args!("cannot read {}", index_file.display()), &e))?;
    let index: serde_json::Value = serde_json::from_slice(&text).map_err(|e| {
        format!(
            "{} is not an export index (JSON): {e}",
            index_file.display()
        )
    })?;
    let ids: Vec<&str> = index["documents"]
        .as_array()
        .map(|docs| docs.iter().filter_map(|d| d["id"].as_str()).collect())
        .unwrap_or_default();
    let mut checks = Vec::new();
    for id in ids {
        // An id is a folder name only if it is a plain name.
        crate::document::check_file_name("documents[].id", id)
            .map_err(|e| format!("{}: {e}", index_file.display()))?;
        let dir = args.dir.join(id);
        let mut of_document = document_checks(&dir, args)?;
        of_document.extend(proof_checks(&dir.join("inclusion.json"), args)?);
        checks.extend(of_document.into_iter().map(|c| Check {
            subject: format!("{id}: {}", c.subject),
            ..c
        }));
    }
    print_checks(
        &checks,
        args.keys.is_none() || args.service_key.is_none(),
        args.json,
    );
    fail_unless_all_ok(&checks)
}

/// The error a failed check ends the command with.
fn failed(message: String) -> CliError {
    CliError::new(tonic::Code::DataLoss, message)
}

fn print_checks(checks: &[Check], used_saved_keys: bool, as_json: bool) {
    if as_json {
        print_json(&json!({
            "ok": checks.iter().all(|c| c.ok),
            "checks": checks.iter().map(|c| json!({"subject": c.subject, "ok": c.ok, "detail": c.detail})).collect::<Vec<_>>(),
            "used_saved_keys": used_saved_keys,
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
    if used_saved_keys {
        outln!("note: checked with keys saved beside the document; --keys and --service-key check them against your own trusted copies");
    }
}
