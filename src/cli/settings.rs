//! Which server, PKI folder and organisation a client command uses, and
//! why: a flag, else an environment variable, else the per-user
//! configuration that `lienthong login` writes, else the built-in default.
//! So a clerk can run `lienthong send` from the folder holding the PDF.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::{CliError, Result};
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

/// Resolves the settings given as flags against the environment, the
/// per-user configuration and the defaults.
pub fn resolve(
    server: Option<String>,
    pki: Option<PathBuf>,
    as_org: Option<String>,
) -> Result<Resolved> {
    let file = match config_file() {
        Some(path) => read_config(&path)?.map(|config| (path, config)),
        None => None,
    };
    let server = pick(
        server,
        "LIENTHONG_SERVER",
        |v| v,
        &file,
        |c| c.server.clone(),
    )
    .unwrap_or(Setting {
        value: defaults::SERVER_URL.to_owned(),
        source: Source::Default,
    });
    let pki = pick(pki, "LIENTHONG_PKI", PathBuf::from, &file, |c| {
        c.pki.clone()
    })
    .unwrap_or(Setting {
        value: PathBuf::from(defaults::PKI_DIR),
        source: Source::Default,
    });
    let as_org = pick(as_org, "LIENTHONG_AS", |v| v, &file, |c| c.as_org.clone());
    Ok(Resolved {
        server,
        pki,
        as_org,
    })
}
