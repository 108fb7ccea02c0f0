//! The server's side of TLS: a rustls configuration built from the
//! certificate, key and client CA files, held so that a reload replaces it
//! for new connections while open ones keep theirs. The admission layer's
//! accept loop (`admission::accept`) does each handshake with the
//! configuration current when the connection arrives.
//!
//! tonic's own TLS cannot be replaced once the server runs, so the server
//! hands tonic connections whose handshake is done; tonic still reads the
//! peer's certificate from them (`Request::peer_certs`).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};

/// The files TLS is configured from.
#[derive(Debug, Clone)]
pub struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// The CA that client certificates must chain to.
    pub client_ca: PathBuf,
}

/// Why the files do not make a usable configuration.
#[derive(Debug)]
pub enum TlsError {
    Read(PathBuf, std::io::Error),
    /// No PEM certificate (or private key) in the file.
    Missing {
        path: PathBuf,
        what: &'static str,
    },
    /// The server certificate is outside its validity period now.
    NotValidNow {
        path: PathBuf,
        detail: String,
    },
    /// rustls refused it: a key that does not match the certificate, an
    /// unsupported key, an unusable CA.
    Refused {
        what: String,
        source: rustls::Error,
    },
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::Read(path, e) => write!(f, "cannot read {}: {e}", path.display()),
            TlsError::Missing { path, what } => {
                write!(f, "{} holds no {what} in PEM form", path.display())
            }
            TlsError::NotValidNow { path, detail } => write!(f, "{}: {detail}", path.display()),
            TlsError::Refused { what, source } => write!(f, "{what}: {source}"),
        }
    }
}

impl std::error::Error for TlsError {}

/// A configuration built from the files, and what it presents.
pub struct Loaded {
    pub config: Arc<ServerConfig>,
    /// The server certificate's subject and last day, for the log.
    pub subject: String,
    pub not_after: String,
    /// How many CA certificates client certificates may chain to.
    pub client_cas: usize,
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| TlsError::Read(path.to_owned(), e))
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&read(path)?)
        .filter_map(std::result::Result::ok)
        .collect();
    if certs.is_empty() {
        return Err(TlsError::Missing {
            path: path.to_owned(),
            what: "certificate",
        });
    }
    Ok(certs)
}

/// Reads and checks the three files; any fault is an error and nothing is
/// half loaded.
pub fn load(files: &CertFiles) -> Result<Loaded, TlsError> {
    let chain = certificates(&files.cert)?;
    let key = PrivateKeyDer::from_pem_slice(&read(&files.key)?).map_err(|_| TlsError::Missing {
        path: files.key.clone(),
        what: "private key",
    })?;
    let (subject, not_after) = check_validity(&files.cert, &chain[0])?;

    let mut roots = RootCertStore::empty();
    let cas = certificates(&files.client_ca)?;
    let client_cas = cas.len();
    for ca in cas {
        roots.add(ca).map_err(|source| TlsError::Refused {
            what: format!("client CA {}", files.client_ca.display()),
            source,
        })?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    // Every client must present a certificate that chains to the client
    // CA: a connection without one never gets past the handshake.
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| TlsError::Refused {
            what: format!("client CA {}", files.client_ca.display()),
            source: rustls::Error::General(e.to_string()),
        })?;
    let refused = |source| TlsError::Refused {
        what: format!(
            "server certificate {} with key {}",
            files.cert.display(),
            files.key.display()
        ),
        source,
    };
    // rustls checks here that the key is the certificate's.
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(refused)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(refused)?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Loaded {
        config: Arc::new(config),
        subject,
        not_after,
        client_cas,
    })
}

/// The certificate's subject and end of validity; an error if it is not
/// valid now (rustls would serve an expired certificate without a word).
fn check_validity(path: &Path, der: &CertificateDer<'_>) -> Result<(String, String), TlsError> {
    let (_, cert) =
        x509_parser::parse_x509_certificate(der).map_err(|e| TlsError::NotValidNow {
            path: path.to_owned(),
            detail: format!("the certificate does not parse: {e}"),
        })?;
    let validity = cert.validity();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let not_after = validity.not_after.to_string();
    if validity.not_after.timestamp() < now {
        return Err(TlsError::NotValidNow {
            path: path.to_owned(),
            detail: format!("the certificate expired on {not_after}"),
        });
    }
    if validity.not_before.timestamp() > now {
        return Err(TlsError::NotValidNow {
            path: path.to_owned(),
            detail: format!("the certificate is valid only from {}", validity.not_before),
        });
    }
    Ok((cert.subject().to_string(), not_after))
}

/// The configuration new connections get; replaced whole on a reload.
pub struct LiveTls(RwLock<Arc<ServerConfig>>);

impl LiveTls {
    pub fn new(config: Arc<ServerConfig>) -> LiveTls {
        LiveTls(RwLock::new(config))
    }

    /// A panic cannot leave the lock's content half changed (it is one
    /// `Arc`), so a poisoned lock is taken over.
    pub fn current(&self) -> Arc<ServerConfig> {
        self.0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub fn replace(&self, config: Arc<ServerConfig>) {
        *self
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = config;
    }
}
