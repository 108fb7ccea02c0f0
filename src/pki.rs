//! Certificates: the development PKI that `serve` creates on first start,
//! and how an organisation is read from a client certificate.
//!
//! # Security decisions
//!
//! - Identity is the client certificate, verified by TLS against the
//!   configured client CA, and nothing else: the organisation is the SAN URI
//!   `urn:lienthong:org:<code>` or, failing that, a subject CN that is a code.
//! - An operator (who takes backups and reloads certificates) is a separate
//!   kind of identity, the SAN URI `urn:lienthong:operator:<name>`, in its
//!   own namespace so that no organisation's certificate can be one by
//!   accident; the server also needs the name in its list of operators
//!   (`serve --operator`). A certificate naming both is refused for both:
//!   an operator reads no mailbox and sends nothing, and an organisation
//!   takes no backup (a backup holds every organisation's documents).
//! - The development PKI is for trying the service on one machine. Its CA key
//!   sits beside the certificates so that `serve` can issue certificates for
//!   organisations added later; a production deployment configures its own
//!   certificates by path (see `certs/README.md`) and keeps the CA offline.
//! - Each organisation's certificate and TLS key are also written as a
//!   PKCS#12 file (`clients/<code>.p12`) for a browser to import, under the
//!   published password [`P12_PASSWORD`]: the same key lies unencrypted
//!   beside it (`clients/<code>.key`), so a secret password would protect
//!   nothing and only be one more thing to hand out.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};
use x509_parser::extensions::GeneralName;

use crate::crypto::SigningKey;
use crate::directory::{Directory, OrgCode, Organization};
use crate::error::Error;

/// The SAN URI prefix that names an organisation in a client certificate.
pub const ORG_URI_PREFIX: &str = "urn:lienthong:org:";

/// The SAN URI prefix that names an operator in a client certificate.
pub const OPERATOR_URI_PREFIX: &str = "urn:lienthong:operator:";

/// The operator the development PKI issues a certificate for, listed in
/// `clients.toml` like an organisation (`--as admin`), and the operator a
/// server on the development PKI accepts unless told otherwise.
pub const DEV_OPERATOR: &str = "admin";

const CA_NAME: &str = "lienthong development CA";

/// The password of the development PKI's `.p12` files (see the module's
/// security decisions).
pub const P12_PASSWORD: &str = "lienthong";

/// PBKDF2 and MAC iterations of those files. The password is published, so
/// stretching it protects nothing; few iterations keep a PKI of thirty
/// organisations quick to make. Browsers and NSS import them as they are.
const P12_ITERATIONS: u32 = 1;
const CLIENT_INDEX: &str = "clients.toml";

#[derive(Debug)]
pub enum PkiError {
    Io(PathBuf, std::io::Error),
    Generate(rcgen::Error),
    Index(String),
    UnknownClient {
        name: String,
        index: PathBuf,
    },
    /// `reissue` needs the CA's key, which only the development PKI keeps.
    NoCaKey(PathBuf),
    Pkcs12(PathBuf, String),
}

impl fmt::Display for PkiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PkiError::Io(path, e) => write!(f, "{}: {e}", path.display()),
            PkiError::Generate(e) => write!(f, "cannot generate a certificate: {e}"),
            PkiError::Index(m) => f.write_str(m),
            PkiError::Pkcs12(path, e) => {
                write!(f, "cannot write the PKCS#12 file {}: {e}", path.display())
            }
            PkiError::UnknownClient { name, index } => write!(
                f,
                "no client certificate for {name:?} in {} (give an organisation code or alias listed there, or --cert and --key)",
                index.display()
            ),
            PkiError::NoCaKey(path) => write!(
                f,
                "{} does not exist: only a development PKI keeps its CA key; issue production certificates with certs/issue.sh",
                path.display()
            ),
        }
    }
}

impl std::error::Error for PkiError {}

impl From<rcgen::Error> for PkiError {
    fn from(e: rcgen::Error) -> Self {
        PkiError::Generate(e)
    }
}

/// Where the files of a PKI folder are.
#[derive(Debug, Clone)]
pub struct PkiPaths {
    pub dir: PathBuf,
}

impl PkiPaths {
    pub fn new(dir: impl Into<PathBuf>) -> PkiPaths {
        PkiPaths { dir: dir.into() }
    }
    pub fn ca_cert(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }
    pub fn ca_key(&self) -> PathBuf {
        self.dir.join("ca.key")
    }
    pub fn server_cert(&self) -> PathBuf {
        self.dir.join("server.crt")
    }
    pub fn server_key(&self) -> PathBuf {
        self.dir.join("server.key")
    }
    fn index(&self) -> PathBuf {
        self.dir.join(CLIENT_INDEX)
    }
    /// The registry of the organisations' public signing keys.
    pub fn signing_keys(&self) -> PathBuf {
        self.dir.join("signing-keys.toml")
    }
    /// `code`'s certificate and TLS key as one PKCS#12 file, for a browser.
    pub fn client_p12(&self, code: &str) -> PathBuf {
        self.dir.join(format!("clients/{code}.p12"))
    }
    /// The service's public key, which `serve` copies here when it makes the
    /// development PKI, so that `verify` has a trusted copy to check
    /// receipts and checkpoints with.
    pub fn service_key(&self) -> PathBuf {
        self.dir.join("service-key.pub.pem")
    }
}

/// One organisation's client credentials, as listed in `clients.toml`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClientEntry {
    pub code: String,
    pub alias: String,
    /// Relative to the PKI folder.
    pub cert: String,
    pub key: String,
    /// The organisation's document signing key (PKCS#8 PEM), not its TLS key.
    #[serde(default)]
    pub signing_key: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct ClientIndex {
    #[serde(default)]
    client: Vec<ClientEntry>,
}

fn read(path: &Path) -> Result<String, PkiError> {
    fs::read_to_string(path).map_err(|e| PkiError::Io(path.to_owned(), e))
}

fn write(path: &Path, contents: impl AsRef<[u8]>, private: bool) -> Result<(), PkiError> {
    let contents = contents.as_ref();
    let io = |e| PkiError::Io(path.to_owned(), e);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(io)?;
    }
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut file = options.open(path).map_err(io)?;
    std::io::Write::write_all(&mut file, contents).map_err(io)
}

fn validity(params: &mut CertificateParams, days: i64) {
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::days(1);
    params.not_after = now + Duration::days(days);
}

fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, CA_NAME);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params
}

/// What [`ensure_dev_pki`] did.
#[derive(Debug, Default)]
pub struct DevPkiReport {
    pub created_ca: bool,
    pub issued_clients: usize,
    /// The operator certificate ([`DEV_OPERATOR`]) was issued.
    pub issued_operator: bool,
}

/// Makes sure `paths.dir` holds a development PKI for `directory`: creates
/// the CA and the server certificate if there are none, a client
/// certificate for every organisation that has none yet, and the operator
/// certificate ([`DEV_OPERATOR`]) if there is none.
pub fn ensure_dev_pki(paths: &PkiPaths, directory: &Directory) -> Result<DevPkiReport, PkiError> {
    let mut report = DevPkiReport::default();
    let ca_key = if paths.ca_cert().exists() {
        KeyPair::from_pem(&read(&paths.ca_key())?)?
    } else {
        let key = KeyPair::generate()?;
        let mut params = ca_params();
        validity(&mut params, 3650);
        let cert = params.self_signed(&key)?;
        write(&paths.ca_key(), key.serialize_pem().as_bytes(), true)?;
        write(&paths.ca_cert(), cert.pem().as_bytes(), false)?;
        report.created_ca = true;
        key
    };
    // The issuer is rebuilt from the same name and key, which is all that
    // goes into the certificates it signs.
    let issuer = Issuer::new(ca_params(), ca_key);

    if !paths.server_cert().exists() {
        let (cert, key) = issue(server_params()?, &issuer)?;
        write(&paths.server_key(), &key, true)?;
        write(&paths.server_cert(), &cert, false)?;
    }

    let mut index: ClientIndex = if paths.index().exists() {
        toml::from_str(&read(&paths.index())?)
            .map_err(|e| PkiError::Index(format!("{}: {e}", paths.index().display())))?
    } else {
        ClientIndex::default()
    };
    let mut new_keys = String::new();
    for org in directory.organizations() {
        if index.client.iter().any(|c| c.code == org.code.as_str()) {
            continue;
        }
        let (entry, key_row) = issue_client(paths, &issuer, org)?;
        index.client.push(entry);
        new_keys.push_str(&key_row);
        report.issued_clients += 1;
    }
    if !index.client.iter().any(|c| c.code == DEV_OPERATOR) {
        let entry = ClientEntry {
            code: DEV_OPERATOR.into(),
            alias: DEV_OPERATOR.into(),
            cert: format!("clients/{DEV_OPERATOR}.crt"),
            key: format!("clients/{DEV_OPERATOR}.key"),
            signing_key: None,
        };
        let (cert, key) = issue(operator_params(DEV_OPERATOR)?, &issuer)?;
        write(&paths.dir.join(&entry.key), &key, true)?;
        write(&paths.dir.join(&entry.cert), &cert, false)?;
        index.client.push(entry);
        report.issued_operator = true;
    }
    if !new_keys.is_empty() {
        let file = paths.signing_keys();
        let mut text = if file.exists() {
            read(&file)?
        } else {
            "# Public signing keys of the organisations (development PKI).
             # Format: see src/keys.rs or the README.

"
            .to_owned()
        };
        text.push_str(&new_keys);
        write(&file, text.as_bytes(), false)?;
    }
    // Every organisation's `.p12`, also for a PKI made before they were.
    let ca_der = certificate_der(&paths.ca_cert())?;
    for entry in &index.client {
        let p12 = paths.client_p12(&entry.code);
        if !p12.exists() {
            write_p12(paths, entry, &ca_der, &p12)?;
        }
    }
    if report.issued_clients > 0 || report.issued_operator {
        let text = toml::to_string(&index).map_err(|e| PkiError::Index(e.to_string()))?;
        let header = "# Client certificates of this PKI folder, one per organisation.\n\
                      # `lienthong <command> --as CODE-OR-ALIAS` finds its certificate here;\n\
                      # `admin` is the operator (backup, reload), not an organisation.\n\n";
        write(&paths.index(), format!("{header}{text}"), false)?;
    }
    Ok(report)
}

/// A client certificate and a document signing key for `org`; returns its
/// index entry and its row for the signing key registry.
fn issue_client(
    paths: &PkiPaths,
    issuer: &Issuer<'_, KeyPair>,
    org: &Organization,
) -> Result<(ClientEntry, String), PkiError> {
    let (cert, key) = issue(org_params(org)?, issuer)?;
    let signing_pem =
        SigningKey::generate_ed25519_pem().map_err(|e| PkiError::Index(e.to_string()))?;
    let signing = SigningKey::from_pem(&signing_pem).map_err(|e| PkiError::Index(e.to_string()))?;
    let entry = ClientEntry {
        code: org.code.to_string(),
        alias: org.alias.clone(),
        cert: format!("clients/{}.crt", org.code),
        key: format!("clients/{}.key", org.code),
        signing_key: Some(format!("clients/{}.signing.pem", org.code)),
    };
    write(&paths.dir.join(&entry.key), &key, true)?;
    write(&paths.dir.join(&entry.cert), &cert, false)?;
    write(
        &paths.dir.join(format!("clients/{}.signing.pem", org.code)),
        signing_pem.as_bytes(),
        true,
    )?;
    let now = crate::clock::now_ms();
    let day = 86_400_000;
    let row = crate::keys::key_row(&org.code, signing.spki_der(), now - day, now + 825 * day);
    Ok((entry, row))
}

/// The DER of the (first) certificate of a PEM file.
fn certificate_der(path: &Path) -> Result<Vec<u8>, PkiError> {
    let text = read(path)?;
    pem::parse(&text)
        .map(|block| block.into_contents())
        .map_err(|e| PkiError::Index(format!("{}: {e}", path.display())))
}

/// `entry`'s certificate, with the CA's after it, and its TLS key as a
/// PKCS#12 file at `out`, under [`P12_PASSWORD`].
fn write_p12(
    paths: &PkiPaths,
    entry: &ClientEntry,
    ca_der: &[u8],
    out: &Path,
) -> Result<(), PkiError> {
    use p12_keystore::{Certificate, KeyStore, KeyStoreEntry, PrivateKey, PrivateKeyChain};
    let failed = |e: &dyn fmt::Display| PkiError::Pkcs12(out.to_owned(), e.to_string());
    let key = KeyPair::from_pem(&read(&paths.dir.join(&entry.key))?)?;
    let key = PrivateKey::from_der(&key.serialize_der()).map_err(|e| failed(&e))?;
    let cert = certificate_der(&paths.dir.join(&entry.cert))?;
    let chain = [cert.as_slice(), ca_der]
        .into_iter()
        .map(Certificate::from_der)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| failed(&e))?;
    let mut store = KeyStore::new();
    // The alias is the name a browser lists the certificate under.
    store.add_entry(
        &format!("{} ({})", entry.alias, entry.code),
        KeyStoreEntry::PrivateKeyChain(PrivateKeyChain::new(entry.code.as_bytes(), key, chain)),
    );
    let bytes = store
        .writer(P12_PASSWORD)
        .encryption_iterations(P12_ITERATIONS)
        .mac_iterations(P12_ITERATIONS)
        .write()
        .map_err(|e| failed(&e))?;
    write(out, &bytes, true)
}

/// The server's certificate: for this machine's loopback names.
fn server_params() -> Result<CertificateParams, PkiError> {
    let mut params =
        CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into(), "::1".into()])?;
    params
        .distinguished_name
        .push(DnType::CommonName, "lienthong server");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    Ok(params)
}

/// A client certificate named by the SAN URI `uri` and the CN `cn`.
fn client_params(cn: &str, uri: String) -> Result<CertificateParams, PkiError> {
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, cn);
    params.subject_alt_names = vec![SanType::URI(uri.try_into()?)];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    Ok(params)
}

/// An organisation's client certificate: its code in the SAN URI and CN.
fn org_params(org: &Organization) -> Result<CertificateParams, PkiError> {
    let mut params = client_params(org.code.as_str(), format!("{ORG_URI_PREFIX}{}", org.code))?;
    params
        .distinguished_name
        .push(DnType::OrganizationName, org.name.as_str());
    Ok(params)
}

/// An operator's client certificate: its name in the SAN URI only (the CN
/// is not an organisation code, so it can never be read as one).
fn operator_params(name: &str) -> Result<CertificateParams, PkiError> {
    client_params(
        &format!("lienthong operator {name}"),
        format!("{OPERATOR_URI_PREFIX}{name}"),
    )
}

/// A new key and a certificate for it, valid 825 days from yesterday,
/// signed by `issuer`: (certificate, key) as PEM.
fn issue(
    mut params: CertificateParams,
    issuer: &Issuer<'_, KeyPair>,
) -> Result<(String, String), PkiError> {
    let key = KeyPair::generate()?;
    params.use_authority_key_identifier_extension = true;
    validity(&mut params, 825);
    let cert = params.signed_by(&key, issuer)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// What [`reissue`] replaced.
#[derive(Debug)]
pub struct Reissued {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub not_after: OffsetDateTime,
}

/// Replaces one certificate of a development PKI with a new key and a new
/// certificate from its CA: `name` is `server`, [`DEV_OPERATOR`], or an
/// organisation (code or alias) that has a certificate in `clients.toml`.
/// The organisation's document signing key is kept. Each file is replaced
/// by a rename, so a server reloading meanwhile reads an old file or a new
/// one, never half of one (between the two renames, a new key with the old
/// certificate, which the reload refuses, keeping the certificate it has).
pub fn reissue(paths: &PkiPaths, directory: &Directory, name: &str) -> Result<Reissued, PkiError> {
    if !paths.ca_key().exists() {
        return Err(PkiError::NoCaKey(paths.ca_key()));
    }
    let issuer = Issuer::new(ca_params(), KeyPair::from_pem(&read(&paths.ca_key())?)?);
    let (params, cert, key) = if name == "server" {
        (server_params()?, paths.server_cert(), paths.server_key())
    } else {
        let (cert, key) = find_client(paths, name)?;
        let params = match directory.org(name) {
            Some(org) => org_params(org)?,
            None if name == DEV_OPERATOR => operator_params(DEV_OPERATOR)?,
            None => {
                return Err(PkiError::Index(format!(
                    "{name} is listed in {} but is not in the directory",
                    paths.index().display()
                )))
            }
        };
        (params, cert, key)
    };
    let (cert_pem, key_pem) = issue(params, &issuer)?;
    replace(&key, &key_pem, true)?;
    replace(&cert, &cert_pem, false)?;
    let not_after = OffsetDateTime::now_utc() + Duration::days(825);
    Ok(Reissued {
        cert,
        key,
        not_after,
    })
}

/// Writes `path` whole through a temporary file and a rename.
fn replace(path: &Path, contents: &str, private: bool) -> Result<(), PkiError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".new");
    let tmp = PathBuf::from(tmp);
    write(&tmp, contents, private)?;
    fs::rename(&tmp, path).map_err(|e| PkiError::Io(path.to_owned(), e))
}

/// An organisation's document signing key from a PKI folder's
/// `clients.toml`.
pub fn find_signing_key(paths: &PkiPaths, name: &str) -> Result<SigningKey, PkiError> {
    let index: ClientIndex = toml::from_str(&read(&paths.index())?)
        .map_err(|e| PkiError::Index(format!("{}: {e}", paths.index().display())))?;
    let entry = index
        .client
        .iter()
        .find(|c| c.code == name || c.alias == name)
        .ok_or_else(|| PkiError::UnknownClient {
            name: name.into(),
            index: paths.index(),
        })?;
    let file = entry.signing_key.as_ref().ok_or_else(|| {
        PkiError::Index(format!(
            "{} lists no signing key for {name}; give --signing-key FILE",
            paths.index().display()
        ))
    })?;
    let path = paths.dir.join(file);
    SigningKey::from_pem(&read(&path)?)
        .map_err(|e| PkiError::Index(format!("{}: {e}", path.display())))
}

/// The certificate and key files of the organisation `name` (code or alias)
/// in a PKI folder's `clients.toml`.
pub fn find_client(paths: &PkiPaths, name: &str) -> Result<(PathBuf, PathBuf), PkiError> {
    let index: ClientIndex = toml::from_str(&read(&paths.index())?)
        .map_err(|e| PkiError::Index(format!("{}: {e}", paths.index().display())))?;
    index
        .client
        .iter()
        .find(|c| c.code == name || c.alias == name)
        .map(|c| (paths.dir.join(&c.cert), paths.dir.join(&c.key)))
        .ok_or_else(|| PkiError::UnknownClient {
            name: name.into(),
            index: paths.index(),
        })
}

/// The caller's organisation, from the leaf of the client certificate
/// chain that TLS verified against the client CA (gRPC and the dashboard
/// alike): nothing else can say who the caller is.
pub fn caller(directory: &Directory, leaf: Option<&[u8]>) -> Result<Organization, Error> {
    let leaf =
        leaf.ok_or_else(|| Error::Unauthenticated("a client certificate is required".into()))?;
    // An operator is known, but may not act for an organisation.
    let code = org_from_certificate(leaf).map_err(|e| match e {
        IdentityError::Operator(_) | IdentityError::Both => Error::PermissionDenied(e.to_string()),
        _ => Error::Unauthenticated(e.to_string()),
    })?;
    directory.org_by_code(&code).cloned().ok_or_else(|| {
        Error::PermissionDenied(format!(
            "the client certificate names {code}, which is not in the directory"
        ))
    })
}

/// Why a verified client certificate names no organisation.
#[derive(Debug, PartialEq, Eq)]
pub enum IdentityError {
    Unparsable,
    NoOrganization,
    BadUri(String),
    /// More than one SAN URI names an organisation: how many.
    SeveralOrganizations(usize),
    /// The certificate names an operator, who acts for no organisation.
    Operator(String),
    /// The certificate names both an operator and an organisation.
    Both,
}

impl fmt::Display for IdentityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdentityError::Unparsable => f.write_str("the client certificate cannot be parsed"),
            IdentityError::NoOrganization => write!(
                f,
                "the client certificate names no organisation (expected a SAN URI {ORG_URI_PREFIX}<code> or a subject CN that is an organisation code)"
            ),
            IdentityError::BadUri(uri) => write!(
                f,
                "the client certificate's SAN URI {} does not end in an organisation code NNN.NN.NN.Xnn",
                crate::error::quote(uri)
            ),
            IdentityError::SeveralOrganizations(n) => write!(
                f,
                "the client certificate names {n} organisations (SAN URIs {ORG_URI_PREFIX}<code>); exactly one is required"
            ),
            IdentityError::Operator(name) => write!(
                f,
                "the client certificate is operator {name:?}'s: an operator may call only the Operations service (backup, reload), never act for an organisation"
            ),
            IdentityError::Both => f.write_str(
                "the client certificate names both an organisation and an operator; a certificate stands for exactly one of them",
            ),
        }
    }
}

/// The organisation a (TLS-verified) client certificate stands for. A SAN URI
/// with our prefix wins over the CN; a certificate with more than one such
/// URI is refused, since it must stand for exactly one organisation.
pub fn org_from_certificate(der: &[u8]) -> Result<OrgCode, IdentityError> {
    let (_, cert) =
        x509_parser::parse_x509_certificate(der).map_err(|_| IdentityError::Unparsable)?;
    if let Some(name) = operator_uris(&cert).next() {
        return Err(IdentityError::Operator(name.to_owned()));
    }
    let mut org_uris = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            if let GeneralName::URI(uri) = name {
                if let Some(code) = uri.strip_prefix(ORG_URI_PREFIX) {
                    org_uris.push((*uri, code));
                }
            }
        }
    }
    match org_uris.as_slice() {
        [] => {}
        [(uri, code)] => {
            return OrgCode::parse(code).ok_or_else(|| IdentityError::BadUri(uri.to_string()))
        }
        several => return Err(IdentityError::SeveralOrganizations(several.len())),
    }
    let from_cn = cert
        .subject()
        .iter_common_name()
        .filter_map(|cn| cn.as_str().ok())
        .find_map(OrgCode::parse);
    from_cn.ok_or(IdentityError::NoOrganization)
}

/// When the first of the certificates in a PEM file expires, in seconds
/// since the Unix epoch: for a chain or a bundle of CAs, the day something
/// in it stops working.
pub fn first_expiry(pem: &[u8]) -> Result<i64, String> {
    use rustls::pki_types::{pem::PemObject, CertificateDer};
    let mut first: Option<i64> = None;
    for der in CertificateDer::pem_slice_iter(pem) {
        let der = der.map_err(|e| e.to_string())?;
        let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref())
            .map_err(|e| format!("a certificate does not parse: {e}"))?;
        let not_after = cert.validity().not_after.timestamp();
        first = Some(first.map_or(not_after, |f| f.min(not_after)));
    }
    first.ok_or_else(|| "no certificate in the file".to_owned())
}

/// The names of the operator SAN URIs of a certificate.
fn operator_uris<'a>(
    cert: &'a x509_parser::certificate::X509Certificate<'_>,
) -> impl Iterator<Item = &'a str> {
    let names = match cert.subject_alternative_name() {
        Ok(Some(san)) => san.value.general_names.as_slice(),
        _ => &[],
    };
    names.iter().filter_map(|name| match name {
        GeneralName::URI(uri) => uri.strip_prefix(OPERATOR_URI_PREFIX),
        _ => None,
    })
}

/// The operator a (TLS-verified) client certificate stands for, or `None`
/// if it names none. A certificate that also names an organisation, or two
/// operators, is refused.
pub fn operator_from_certificate(der: &[u8]) -> Result<Option<String>, IdentityError> {
    let (_, cert) =
        x509_parser::parse_x509_certificate(der).map_err(|_| IdentityError::Unparsable)?;
    let mut names = operator_uris(&cert);
    let Some(name) = names.next() else {
        return Ok(None);
    };
    if names.any(|other| other != name) {
        return Err(IdentityError::BadUri(format!(
            "{OPERATOR_URI_PREFIX}{name}"
        )));
    }
    let names_org = match cert.subject_alternative_name() {
        Ok(Some(san)) => san
            .value
            .general_names
            .iter()
            .any(|n| matches!(n, GeneralName::URI(uri) if uri.starts_with(ORG_URI_PREFIX))),
        _ => false,
    };
    let cn_is_org = cert
        .subject()
        .iter_common_name()
        .filter_map(|cn| cn.as_str().ok())
        .any(|cn| OrgCode::parse(cn).is_some());
    if names_org || cn_is_org {
        return Err(IdentityError::Both);
    }
    Ok(Some(name.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_pki_issues_one_client_per_organisation_and_names_it() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let paths = PkiPaths::new(dir.path());
        let directory = Directory::builtin().unwrap_or_else(|e| panic!("{e}"));
        let report = ensure_dev_pki(&paths, &directory).unwrap_or_else(|e| panic!("{e}"));
        assert!(report.created_ca);
        assert_eq!(report.issued_clients, directory.organizations().len());
        assert!(report.issued_operator);

        let (cert, _key) = find_client(&paths, "xa-van-nham").unwrap_or_else(|e| panic!("{e}"));
        let pem = fs::read_to_string(cert).unwrap_or_default();
        let der = rustls_pem_der(&pem);
        let code = org_from_certificate(&der).ok().map(|c| c.to_string());
        assert_eq!(
            code.as_deref(),
            directory.org("xa-van-nham").map(|o| o.code.as_str())
        );

        // A second run issues nothing new.
        let again = ensure_dev_pki(&paths, &directory).unwrap_or_else(|e| panic!("{e}"));
        assert!(!again.created_ca);
        assert_eq!(again.issued_clients, 0);
        assert!(!again.issued_operator);

        // The operator's certificate names an operator and no organisation.
        let (cert, _key) = find_client(&paths, DEV_OPERATOR).unwrap_or_else(|e| panic!("{e}"));
        let der = rustls_pem_der(&fs::read_to_string(cert).unwrap_or_default());
        assert_eq!(
            operator_from_certificate(&der),
            Ok(Some(DEV_OPERATOR.to_owned()))
        );
        assert_eq!(
            org_from_certificate(&der),
            Err(IdentityError::Operator(DEV_OPERATOR.to_owned()))
        );

        // A PKI made before the `.p12` files were gets them on the next run.
        let code = code.unwrap_or_default();
        fs::remove_file(paths.client_p12(&code)).unwrap_or_else(|e| panic!("{e}"));
        ensure_dev_pki(&paths, &directory).unwrap_or_else(|e| panic!("{e}"));
        assert!(paths.client_p12(&code).exists());
    }

    #[test]
    fn each_organisation_has_a_p12_with_its_certificate_key_and_the_ca() {
        use p12_keystore::{KeyStore, Pkcs12ImportPolicy};
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let paths = PkiPaths::new(dir.path());
        let directory = Directory::builtin().unwrap_or_else(|e| panic!("{e}"));
        ensure_dev_pki(&paths, &directory).unwrap_or_else(|e| panic!("{e}"));
        for org in directory.organizations() {
            let code = org.code.to_string();
            let data = fs::read(paths.client_p12(&code)).unwrap_or_else(|e| panic!("{e}"));
            assert!(
                KeyStore::from_pkcs12(&data, "wrong", Pkcs12ImportPolicy::Strict).is_err(),
                "{code}: opened without its password"
            );
            let store = KeyStore::from_pkcs12(&data, P12_PASSWORD, Pkcs12ImportPolicy::Strict)
                .unwrap_or_else(|e| panic!("{code}: {e}"));
            let (_, chain) = store
                .private_key_chain()
                .unwrap_or_else(|| panic!("{code}: no key"));
            let (cert, key) = find_client(&paths, &code).unwrap_or_else(|e| panic!("{e}"));
            let pem_der = |path: &Path| certificate_der(path).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(
                chain.certs()[0].as_der(),
                pem_der(&cert).as_slice(),
                "{code}"
            );
            assert_eq!(
                chain.certs()[1].as_der(),
                pem_der(&paths.ca_cert()).as_slice()
            );
            let pem_key = KeyPair::from_pem(&read(&key).unwrap_or_else(|e| panic!("{e}")))
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(
                chain.key().as_der(),
                pem_key.serialize_der().as_slice(),
                "{code}"
            );
            assert_eq!(
                org_from_certificate(chain.certs()[0].as_der()).ok(),
                Some(org.code)
            );
        }
    }

    fn rustls_pem_der(pem: &str) -> Vec<u8> {
        use rustls::pki_types::pem::PemObject;
        rustls::pki_types::CertificateDer::from_pem_slice(pem.as_bytes())
            .map(|c| c.to_vec())
            .unwrap_or_default()
    }

    fn certificate_with_uris(uris: &[String]) -> Vec<u8> {
        let key = KeyPair::generate().unwrap_or_else(|e| panic!("{e}"));
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::CommonName, "000.32.09.H37");
        params.subject_alt_names = uris
            .iter()
            .map(|u| SanType::URI(u.clone().try_into().unwrap_or_else(|e| panic!("{e}"))))
            .collect();
        let cert = params.self_signed(&key).unwrap_or_else(|e| panic!("{e}"));
        cert.der().to_vec()
    }

    #[test]
    fn a_certificate_names_exactly_one_organisation() {
        let uri = |code: &str| format!("{ORG_URI_PREFIX}{code}");
        let one = certificate_with_uris(&[uri("000.32.09.H38")]);
        assert_eq!(
            org_from_certificate(&one).map(|c| c.to_string()),
            Ok("000.32.09.H38".to_owned())
        );
        for uris in [
            vec![uri("000.32.09.H37"), uri("000.32.09.H38")],
            vec![uri("000.32.09.H38"), uri("000.32.09.H38")],
        ] {
            let error = org_from_certificate(&certificate_with_uris(&uris));
            assert_eq!(error, Err(IdentityError::SeveralOrganizations(2)));
            let message = error.err().map(|e| e.to_string()).unwrap_or_default();
            assert!(
                message.contains("names 2 organisations")
                    && message.contains("exactly one is required"),
                "{message}"
            );
        }
        let bad = org_from_certificate(&certificate_with_uris(&[uri(&"x".repeat(1000))]));
        let message = bad.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(message.len() < 300, "{message}");
    }

    #[test]
    fn garbage_is_not_a_certificate() {
        assert_eq!(
            org_from_certificate(b"nope"),
            Err(IdentityError::Unparsable)
        );
    }
}
