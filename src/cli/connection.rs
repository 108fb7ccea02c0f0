//! How a client command reaches the server and who it acts as: the flags
//! every client command shares, and connecting with them.

use std::path::PathBuf;

use clap::Args;
use tonic::transport::Channel;

use crate::client::{self, ClientConfig};
use crate::pb::exchange_client::ExchangeClient;
use crate::pki::{self, PkiPaths};

/// What a command returns: `Err` is the line the user reads on stderr.
pub type Result<T = ()> = std::result::Result<T, String>;

/// The error line for a status the server returned.
pub fn status(e: tonic::Status) -> String {
    format!("{:?}: {}", e.code(), e.message())
}

/// How a client command reaches the server and who it is.
#[derive(Args, Clone)]
pub struct Connection {
    /// Server URL.
    #[arg(long, env = "LIENTHONG_SERVER", default_value = crate::defaults::SERVER_URL)]
    pub server: String,
    /// PKI folder holding ca.crt and clients.toml.
    #[arg(long, env = "LIENTHONG_PKI", default_value = crate::defaults::PKI_DIR)]
    pub pki: PathBuf,
    /// The organisation to act as (code or alias); its client certificate
    /// is looked up in the PKI folder.
    #[arg(long = "as", env = "LIENTHONG_AS", value_name = "ORG")]
    pub as_org: Option<String>,
    /// Client certificate (PEM), instead of looking it up by --as.
    #[arg(long, requires = "key")]
    pub cert: Option<PathBuf>,
    /// Client private key (PEM).
    #[arg(long, requires = "cert")]
    pub key: Option<PathBuf>,
    /// CA certificate of the server (PEM); default: ca.crt in the PKI folder.
    #[arg(long)]
    pub ca_cert: Option<PathBuf>,
    /// Print exactly one JSON document on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Connects as the organisation the flags name.
pub async fn connect(conn: &Connection) -> Result<ExchangeClient<Channel>> {
    let paths = PkiPaths::new(&conn.pki);
    let (cert, key) = match (&conn.cert, &conn.key, &conn.as_org) {
        (Some(cert), Some(key), _) => (cert.clone(), key.clone()),
        (_, _, Some(org)) => pki::find_client(&paths, org).map_err(|e| e.to_string())?,
        _ => return Err("say who you are: --as ORG (or LIENTHONG_AS), or --cert and --key".into()),
    };
    let config = ClientConfig {
        server: conn.server.clone(),
        ca_cert: conn.ca_cert.clone().unwrap_or_else(|| paths.ca_cert()),
        cert,
        key,
    };
    client::connect(&config).await
}
