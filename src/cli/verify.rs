//! `lienthong verify`: checks offline, with no server, a document saved
//! with `show --save` or a proof file written by `archive prove` or
//! `archive consistency`.

use std::path::PathBuf;

use clap::Args;
use serde_json::json;

use super::connection::Result;
use super::error::CliError;
use super::output::{outln, print_json};
use crate::client::read_public_key;

#[derive(Args)]
pub struct VerifyArgs {
    /// A folder written by `show --save`, or a proof file written by
    /// `archive prove` or `archive consistency`.
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
    if args.dir.is_file() {
        return verify_proof_file(&args);
    }
    let mut trusted = crate::evidence::TrustedKeys::default();
    if let Some(file) = &args.keys {
        trusted.registry = Some(crate::keys::KeyRegistry::load(file).map_err(|e| e.to_string())?);
    }
    if let Some(file) = &args.service_key {
        trusted.service_key = Some(read_public_key(file)?);
    }
    let checks = crate::evidence::verify(&args.dir, &trusted)?;
    print_checks(
        &checks,
        args.keys.is_none() || args.service_key.is_none(),
        args.json,
    );
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
    let text =
        std::fs::read(&args.dir).map_err(|e| format!("cannot read {}: {e}", args.dir.display()))?;
    let file: serde_json::Value = serde_json::from_slice(&text)
        .map_err(|e| format!("{} is not a proof file (JSON): {e}", args.dir.display()))?;
    let trusted = args
        .service_key
        .as_deref()
        .map(read_public_key)
        .transpose()?;
    let checks = crate::archive::proof::verify(&file, trusted.as_ref());
    print_checks(&checks, trusted.is_none(), args.json);
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

/// The error a failed check ends the command with.
fn failed(message: String) -> CliError {
    CliError::new(tonic::Code::DataLoss, message)
}

fn print_checks(checks: &[crate::evidence::Check], used_saved_keys: bool, as_json: bool) {
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
