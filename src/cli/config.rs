//! Which server, PKI folder and organisation a client command uses, and
//! why: a flag, else an environment variable, else the per-user
//! configuration that `lienthong login` writes, else the built-in default.
//! So a clerk can run `lienthong send` from the folder holding the PDF.

use std::fmt;
use std::path::{Path, PathBuf};

use clap::Args;
use serde::{Deserialize, Serialize};

use super::connection::{Connection, Result};
use super::error::CliError;
use super::output::{outln, print_json};
use crate::defaults;

/// The per-user configuration file, `$XDG_CONFIG_HOME/lienthong/client.toml`
/// (by default `~/.config/lienthong/client.toml`).
pub fn config_file() -> Option<PathBuf> {
    let base = match std::env::var_os("XDG_CONFIG_HOME") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from(std::env::var_os("HOME")?).join(".config"),
    };
    Some(base.join("lienthong").join("client.toml"))
}

/// What `lienthong login` saves.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct ClientFile {
    pub server: Option<String>,
    pub pki: Option<PathBuf>,
    #[serde(rename = "as")]
    pub as_org: Option<String>,
}

fn read_config(file: &Path) -> Result<Option<ClientFile>> {
    match std::fs::read_to_string(file) {
        Ok(text) => toml::from_str(&text).map(Some).map_err(|e| {
            format!(
                "{} is not a valid client configuration: {e}",
                file.display()
            )
            .into()
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(CliError::io(
            format_args!("cannot read {}", file.display()),
            &e,
        )),
    }
}

/// Where a setting came from.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    Flag,
    Environment(&'static str),
    ConfigFile(PathBuf),
    Default,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Flag => f.write_str("from the command line"),
            Source::Environment(var) => write!(f, "from ${var}"),
            Source::ConfigFile(file) => write!(f, "from {} (lienthong login)", file.display()),
            Source::Default => f.write_str("the built-in default"),
        }
    }
}

/// A setting and where it came from.
#[derive(Debug, Clone, Serialize)]
pub struct Setting<T> {
    pub value: T,
    pub source: Source,
}

/// The settings a client command runs with.
#[derive(Debug, Clone, Serialize)]
pub struct Resolved {
    pub server: Setting<String>,
    pub pki: Setting<PathBuf>,
    #[serde(rename = "as")]
    pub as_org: Option<Setting<String>>,
}

fn pick<T>(
    flag: Option<T>,
    var: &'static str,
    parse: impl Fn(String) -> T,
    file: &Option<(PathBuf, ClientFile)>,
    from_file: impl Fn(&ClientFile) -> Option<T>,
) -> Option<Setting<T>> {
    if let Some(value) = flag {
        return Some(Setting {
            value,
            source: Source::Flag,
        });
    }
    if let Some(value) = std::env::var(var).ok().filter(|v| !v.is_empty()) {
        return Some(Setting {
            value: parse(value),
            source: Source::Environment(var),
        });
    }
    let (path, config) = file.as_ref()?;
    from_file(config).map(|value| Setting {
        value,
        source: Source::ConfigFile(path.clone()),
    })
}

/// Resolves the connection flags against the environment, the per-user
/// configuration and the defaults.
pub fn resolve(conn: &Connection) -> Result<Resolved> {
    let file = match config_file() {
        Some(path) => read_config(&path)?.map(|config| (path, config)),
        None => None,
    };
    let server = pick(
        conn.server.clone(),
        "LIENTHONG_SERVER",
        |v| v,
        &file,
        |c| c.server.clone(),
    )
    .unwrap_or(Setting {
        value: defaults::SERVER_URL.to_owned(),
        source: Source::Default,
    });
    let pki = pick(
        conn.pki.clone(),
        "LIENTHONG_PKI",
        PathBuf::from,
        &file,
        |c| c.pki.clone(),
    )
    .unwrap_or(Setting {
        value: PathBuf::from(defaults::PKI_DIR),
        source: Source::Default,
    });
    let as_org = pick(
        conn.as_org.clone(),
        "LIENTHONG_AS",
        |v| v,
        &file,
        |c| c.as_org.clone(),
    );
    Ok(Resolved {
        server,
        pki,
        as_org,
    })
}

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
    let resolved = resolve(&args.conn)?;
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
