//! Reloading a running server's files without a restart — its TLS
//! certificate and key, the client CA, the registry of signing keys — on
//! SIGHUP or an operator's `Reload` call.
//!
//! All or nothing: every file is read and checked first, and only if all of
//! them are good are the new TLS configuration and registry put in place;
//! otherwise the server keeps what it had, and says why in the log (and to
//! the caller). New connections get the new certificate; open connections,
//! and the notification streams on them, keep the one they started with.

use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::exchange::Exchange;
use crate::keys::{KeyRegistry, KeyRegistryError};
use crate::tls::{self, CertFiles, LiveTls, TlsError};

/// Why a reload was refused (the server keeps what it had).
#[derive(Debug)]
pub enum ReloadError {
    Tls(TlsError),
    Keys(PathBuf, KeyRegistryError),
}

impl fmt::Display for ReloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReloadError::Tls(e) => write!(f, "{e}"),
            // A read error names the file already.
            ReloadError::Keys(path, e) if e.0.contains(&*path.to_string_lossy()) => {
                write!(f, "{e}")
            }
            ReloadError::Keys(path, e) => write!(f, "{e} (in {})", path.display()),
        }
    }
}

impl std::error::Error for ReloadError {}

/// What the server uses after a reload.
#[derive(Debug, Clone)]
pub struct Reloaded {
    pub server_certificate: String,
    pub not_after: String,
    pub client_cas: usize,
    pub signing_keys: usize,
}

impl fmt::Display for Reloaded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "server certificate {} (valid until {}), {} client CA certificate(s), {} signing key(s)",
            self.server_certificate, self.not_after, self.client_cas, self.signing_keys
        )
    }
}

pub struct Reloader {
    files: CertFiles,
    keys_file: PathBuf,
    tls: Arc<LiveTls>,
    exchange: Arc<Exchange>,
    /// One reload at a time, so two cannot interleave their swaps.
    running: Mutex<()>,
}

impl Reloader {
    pub fn new(
        files: CertFiles,
        keys_file: PathBuf,
        tls: Arc<LiveTls>,
        exchange: Arc<Exchange>,
    ) -> Reloader {
        Reloader {
            files,
            keys_file,
            tls,
            exchange,
            running: Mutex::new(()),
        }
    }

    /// Reads every file again and puts them in place, or none of them.
    /// Logs the outcome either way. Blocking (reads files).
    pub fn reload(&self) -> Result<Reloaded, ReloadError> {
        let _one = self
            .running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let outcome = tls::load(&self.files)
            .map_err(ReloadError::Tls)
            .and_then(|loaded| {
                let keys = KeyRegistry::load(&self.keys_file)
                    .map_err(|e| ReloadError::Keys(self.keys_file.clone(), e))?;
                Ok((loaded, keys))
            });
        match outcome {
            Ok((loaded, keys)) => {
                for key in keys.orphans(self.exchange.directory()) {
                    tracing::warn!(
                        "signing key {} belongs to {}, which is not in the directory; kept to check its old documents",
                        key.key_id,
                        key.org
                    );
                }
                let reloaded = Reloaded {
                    server_certificate: loaded.subject,
                    not_after: loaded.not_after,
                    client_cas: loaded.client_cas,
                    signing_keys: keys.keys().count(),
                };
                self.tls.replace(loaded.config);
                self.exchange.replace_keys(keys);
                tracing::info!("reloaded: {reloaded}");
                Ok(reloaded)
            }
            Err(e) => {
                tracing::error!("reload refused, keeping the certificates and keys in use: {e}");
                Err(e)
            }
        }
    }
}
