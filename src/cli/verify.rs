//! `lienthong verify`: checks offline, with no server, a document saved
//! with `show --save` or a proof file written by `archive prove` or
//! `archive consistency`.

use std::path::PathBuf;

use clap::Args;
use serde_json::json;

use super::connection::Result;
use super::output::{outln, print_json};

#[derive(Args)]
pub struct VerifyArgs {
    /// A folder written by `show --save`, or a proof file written by
    /// `archive prove` or `archive consistency`.
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
    /// signing-keys.toml), used when --service-key (--keys) is not given.
    #[arg(long, env = "LIENTHONG_PKI", default_value = "./data/pki")]
    pub pki: PathBuf,
    /// Print the checks as one JSON document.
    #[arg(long)]
    pub json: bool,
}

/// `verify DIR` (saved evidence) or `verify FILE` (a proof file), against
/// the keys the user trusts; never those inside what is checked.
pub fn run(args: VerifyArgs) -> Result {
    let trusted = crate::evidence::TrustedKeys::resolve(
        args.service_key.as_deref(),
        args.keys.as_deref(),
        &args.pki,
    )
    .map_err(|e| e.to_string())?;
    let proof_file = args.dir.is_file();
    let checks = if proof_file {
        crate::archive::proof::ProofFile::read(&args.dir)
            .map_err(|e| e.to_string())?
            .check(&trusted.service_key)
    } else {
        crate::evidence::verify(&args.dir, &trusted).map_err(|e| e.to_string())?
    };
    print_checks(
        &checks,
        !proof_file && trusted.registry.is_none(),
        args.json,
    );
    match checks.iter().filter(|c| !c.ok).count() {
        0 => Ok(()),
        n => Err(format!(
            "verification failed: {n} of {} checks ({})",
            checks.len(),
            checks
                .iter()
                .filter(|c| !c.ok)
                .map(|c| c.subject.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
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
        outln!("note: the sender's key is the one saved with the document, which the receipt names by its digest; --keys FILE checks it against your copy of the registry");
    }
}
