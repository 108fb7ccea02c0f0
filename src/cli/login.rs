//! `lienthong login` and `lienthong whoami`: saving the client settings
//! for later commands, and showing which a command would use and why.

use std::path::PathBuf;

use clap::Args;

use super::connection::Connection;
use super::error::{CliError, Result};
use super::output::{outln, print_json};
use super::settings::{config_file, ClientFile};
use crate::defaults;

#[derive(Args)]
pub struct LoginArgs {
    /// The PKI folder holding ca.crt and clients.toml (kept as an absolute path).
    #[arg(long, value_name = "DIR")]
    pub pki: PathBuf,
    /// The organisation to act as (code or alias).
    #[arg(long = "as", value_name = "ORG")]
    pub as_org: String,
    /// The server URL.
    #[arg(long, default_value = defaults::SERVER_URL)]
    pub server: String,
}

/// `lienthong login`: checks that the PKI folder has a certificate for the
/// organisation, then saves the three settings for later commands.
pub fn login(args: LoginArgs) -> Result {
    let pki = std::path::absolute(&args.pki)
        .map_err(|e| CliError::io(format_args!("{}", args.pki.display()), &e))?;
    crate::pki::find_client(&crate::pki::PkiPaths::new(&pki), &args.as_org)
        .map_err(|e| CliError::new(tonic::Code::NotFound, e.to_string()))?;
    let file = config_file().ok_or(
        "cannot tell where your configuration goes: neither XDG_CONFIG_HOME nor HOME is set",
    )?;
    let config = ClientFile {
        server: Some(args.server),
        pki: Some(pki),
        as_org: Some(args.as_org),
    };
    let text = toml::to_string(&config).map_err(|e| e.to_string())?;
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| CliError::io(format_args!("cannot create {}", dir.display()), &e))?;
    }
    std::fs::write(&file, text)
        .map_err(|e| CliError::io(format_args!("cannot write {}", file.display()), &e))?;
    outln!("saved to {}", file.display());
    Ok(())
}

#[derive(Args)]
pub struct WhoamiArgs {
    #[command(flatten)]
    pub conn: Connection,
}

/// `lienthong whoami`: the identity and server a client command would use,
/// and where each setting came from. Local: it does not contact the server.
pub fn whoami(args: WhoamiArgs) -> Result {
    let resolved = args.conn.settings()?;
    if args.conn.json {
        print_json(&serde_json::to_value(&resolved).map_err(|e| e.to_string())?);
        return Ok(());
    }
    match (&resolved.as_org, &args.conn.cert) {
        (_, Some(cert)) => outln!("as:     the certificate {} (from --cert)", cert.display()),
        (Some(org), None) => outln!("as:     {} ({})", org.value, org.source),
        (None, None) => {
            outln!("as:     nobody yet: give --as ORG, set LIENTHONG_AS, or run `lienthong login`")
        }
    }
    outln!(
        "server: {} ({})",
        resolved.server.value,
        resolved.server.source
    );
    outln!(
        "pki:    {} ({})",
        resolved.pki.value.display(),
        resolved.pki.source
    );
    Ok(())
}
