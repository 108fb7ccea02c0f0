//! The keys `verify` trusts, and where they come from: files the user names
//! (`--service-key`, `--keys`), else the PKI folder. Never the keys inside
//! the evidence or proof file being checked: anyone can make a
//! self-consistent forgery with a key of their own, so checking a file
//! against the key it carries proves nothing.

use std::fmt;
use std::path::{Path, PathBuf};

use super::FileError;
use crate::crypto::{CryptoError, PublicKey};
use crate::keys::{KeyRegistry, KeyRegistryError};
use crate::pki::PkiPaths;

/// The user's own copies of the keys that evidence must be signed with.
#[derive(Debug)]
pub struct TrustedKeys {
    /// The service's public key: receipts and checkpoints must be signed
    /// with it.
    pub service_key: PublicKey,
    /// The organisations' signing key registry (the server's
    /// `signing-keys.toml`). Without it, the sender's key saved with the
    /// document is used: its id is a digest of the key and the receipt,
    /// signed with the trusted service key, names that id, so the key cannot
    /// be swapped; the service checked its validity when it accepted the
    /// document.
    pub registry: Option<KeyRegistry>,
}

impl TrustedKeys {
    pub fn new(service_key: PublicKey) -> TrustedKeys {
        TrustedKeys {
            service_key,
            registry: None,
        }
    }

    /// The keys named by the user, else those the PKI folder `pki` holds:
    /// `service-key.pub.pem` (required) and `signing-keys.toml` (if there).
    pub fn resolve(
        service_key: Option<&Path>,
        registry: Option<&Path>,
        pki: &Path,
    ) -> Result<TrustedKeys, TrustError> {
        let paths = PkiPaths::new(pki);
        let service_key = match service_key {
            Some(file) => read_public_key(file)?,
            None => {
                let file = paths.service_key();
                match read_public_key(&file) {
                    Err(TrustError::File(e)) if e.is_not_found() => {
                        return Err(TrustError::NoServiceKey { looked_at: file })
                    }
                    other => other?,
                }
            }
        };
        let registry = match registry {
            Some(file) => Some(load_registry(file)?),
            None => {
                let file = paths.signing_keys();
                if file.is_file() {
                    Some(load_registry(&file)?)
                } else {
                    None
                }
            }
        };
        Ok(TrustedKeys {
            service_key,
            registry,
        })
    }
}

/// Why the trusted keys could not be had.
#[derive(Debug)]
pub enum TrustError {
    /// No `--service-key` and none in the PKI folder.
    NoServiceKey {
        looked_at: PathBuf,
    },
    File(FileError),
    NotPem {
        path: PathBuf,
        source: pem::PemError,
    },
    NotAPublicKey {
        path: PathBuf,
        source: CryptoError,
    },
    Registry {
        path: PathBuf,
        source: KeyRegistryError,
    },
}

impl fmt::Display for TrustError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrustError::NoServiceKey { looked_at } => write!(
                f,
                "no trusted service key: give --service-key FILE (the service's public key, \
                 service-key.pub.pem, as its operator publishes it) or keep a copy at {}; \
                 the key inside the evidence is never trusted, since anyone can sign a forgery \
                 with a key of their own",
                looked_at.display()
            ),
            TrustError::File(e) => e.fmt(f),
            TrustError::NotPem { path, source } => write!(
                f,
                "{} is not a PEM public key (-----BEGIN PUBLIC KEY-----): {source}",
                path.display()
            ),
            TrustError::NotAPublicKey { path, source } => write!(f, "{}: {source}", path.display()),
            TrustError::Registry { path, source } => write!(f, "{}: {source}", path.display()),
        }
    }
}

impl std::error::Error for TrustError {}

/// A public key in a PEM file (`-----BEGIN PUBLIC KEY-----`, a DER
/// SubjectPublicKeyInfo), such as `service-key.pub.pem`.
pub fn read_public_key(path: &Path) -> Result<PublicKey, TrustError> {
    let text = super::file::read(path).map_err(TrustError::File)?;
    let block = pem::parse(text).map_err(|source| TrustError::NotPem {
        path: path.to_owned(),
        source,
    })?;
    PublicKey::from_spki_der(block.contents()).map_err(|source| TrustError::NotAPublicKey {
        path: path.to_owned(),
        source,
    })
}

fn load_registry(path: &Path) -> Result<KeyRegistry, TrustError> {
    KeyRegistry::load(path).map_err(|source| TrustError::Registry {
        path: path.to_owned(),
        source,
    })
}
