//! How a client command reaches the server and who it acts as: the flags
//! every client command shares, and connecting with them.

use std::path::PathBuf;

use clap::Args;
use tonic::transport::Channel;

use super::error::{CliError, Result};
use super::settings::{resolve, Resolved};
use crate::client::{self, ClientConfig, ConnectError};
use crate::pb::exchange_client::ExchangeClient;
use crate::pki::{self, PkiPaths};

/// How a client command reaches the server and who it is. Each setting
/// left out comes from the environment, else from `lienthong login`'s
/// configuration, else the default (see `lienthong whoami`).
#[derive(Args, Clone)]
pub struct Connection {
    /// Server URL [env: LIENTHONG_SERVER; default: https://127.0.0.1:50051]
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// PKI folder holding ca.crt and clients.toml [env: LIENTHONG_PKI;
    /// default: ./data/pki]
    #[arg(long, value_name = "DIR")]
    pub pki: Option<PathBuf>,
    /// The organisation to act as (code or alias); its client certificate
    /// is looked up in the PKI folder [env: LIENTHONG_AS]
    #[arg(long = "as", value_name = "ORG")]
    pub as_org: Option<String>,
    /// Client certificate (PEM), instead of looking it up by --as.
    #[arg(long, requires = "key", value_name = "FILE")]
    pub cert: Option<PathBuf>,
    /// Client private key (PEM).
    #[arg(long, requires = "cert", value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// CA certificate of the server (PEM); default: ca.crt in the PKI folder.
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
    /// Print exactly one JSON document on stdout.
    #[arg(long)]
    pub json: bool,
}

impl Connection {
    /// The settings these flags leave to the environment, the per-user
    /// configuration and the defaults, resolved.
    pub fn settings(&self) -> Result<Resolved> {
        resolve(self.server.clone(), self.pki.clone(), self.as_org.clone())
    }
}

/// Connects as the organisation the settings name.
pub async fn connect(conn: &Connection) -> Result<ExchangeClient<Channel>> {
    Ok(ExchangeClient::new(channel(conn).await?)
        .max_decoding_message_size(client::MAX_RESPONSE_BYTES)
        .max_encoding_message_size(client::MAX_RESPONSE_BYTES))
}

/// A channel with the certificate of the organisation (or operator) the
/// settings name, for any service.
pub async fn channel(conn: &Connection) -> Result<Channel> {
    let settings = conn.settings()?;
    let paths = PkiPaths::new(&settings.pki.value);
    // A file of the PKI folder that is missing most often means the folder
    // is not the one meant: say which one it was and why.
    let pki_hint = |e: ConnectError| -> CliError {
        let names_pki = matches!(e, ConnectError::Pki(_) | ConnectError::Read { .. });
        let error = CliError::from(e);
        if !names_pki {
            return error;
        }
        error.with_hint(format!(
            "the PKI folder used is {} ({}); give --pki DIR, set LIENTHONG_PKI, or run `lienthong login --pki DIR --as ORG`",
            settings.pki.value.display(),
            settings.pki.source
        ))
    };
    let (cert, key) = match (&conn.cert, &conn.key, &settings.as_org) {
        (Some(cert), Some(key), _) => (cert.clone(), key.clone()),
        (_, _, Some(org)) => {
            pki::find_client(&paths, &org.value).map_err(|e| pki_hint(ConnectError::Pki(e)))?
        }
        _ => {
            return Err(CliError::new(
                tonic::Code::InvalidArgument,
                "say who you are: --as ORG (or LIENTHONG_AS, or `lienthong login`), or --cert and --key",
            ))
        }
    };
    let config = ClientConfig {
        server: settings.server.value.clone(),
        ca_cert: conn.ca_cert.clone().unwrap_or_else(|| paths.ca_cert()),
        cert,
        key,
    };
    client::channel(&config).await.map_err(pki_hint)
}
