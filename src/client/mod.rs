//! Client side: connecting over mutual TLS and building a send request from
//! a document header and files. Used by the command line, the tests and the
//! benchmarks, so that all of them speak to the server the same way.
//! Uploads and downloads of large attachments, resumable, are in
//! [`transfer`].

pub mod transfer;

use std::path::{Path, PathBuf};

use prost::Message;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::crypto::SigningKey;
use crate::pb;
use crate::pb::exchange_client::ExchangeClient;

/// Where a client finds its server and its credentials.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub server: String,
    pub ca_cert: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The largest response a client accepts (a document of the default 32 MiB
/// limit and then some).
pub const MAX_RESPONSE_BYTES: usize = 256 * 1024 * 1024;

/// The HTTP/2 window a client grants the server, per stream and per
/// connection.
const RECEIVE_WINDOW: u32 = 4 * 1024 * 1024;

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// Why a client could not connect.
#[derive(Debug)]
pub enum ConnectError {
    /// A certificate or key file could not be read.
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The organisation's certificate is not in the PKI folder.
    Pki(crate::pki::PkiError),
    Url(String),
    Tls(String),
    /// Nothing answered at the server's address, or the handshake failed.
    Unreachable {
        server: String,
        detail: String,
    },
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectError::Read { path, source } => {
                write!(f, "cannot read {}: {source}", path.display())
            }
            ConnectError::Pki(e) => write!(f, "{e}"),
            ConnectError::Url(m) | ConnectError::Tls(m) => f.write_str(m),
            ConnectError::Unreachable { server, detail } => {
                write!(f, "cannot connect to {server}: {detail}")
            }
        }
    }
}

impl std::error::Error for ConnectError {}

impl From<ConnectError> for String {
    fn from(e: ConnectError) -> String {
        e.to_string()
    }
}

fn read_pem(path: &Path) -> Result<Vec<u8>, ConnectError> {
    std::fs::read(path).map_err(|source| ConnectError::Read {
        path: path.to_owned(),
        source,
    })
}

/// What went wrong in a transport error, in a user's words: the innermost
/// I/O error when there is one ("connection refused"), else the chain.
fn transport_detail(e: &(dyn std::error::Error + 'static)) -> String {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return match io.kind() {
                std::io::ErrorKind::ConnectionRefused => {
                    "connection refused (no server is listening there)".into()
                }
                _ => io.to_string(),
            };
        }
        source = s.source();
    }
    error_chain(e)
}

/// Opens a channel to the server, presenting the client certificate.
pub async fn connect(config: &ClientConfig) -> Result<ExchangeClient<Channel>, ConnectError> {
    Ok(ExchangeClient::new(channel(config).await?)
        .max_decoding_message_size(MAX_RESPONSE_BYTES)
        .max_encoding_message_size(MAX_RESPONSE_BYTES))
}

/// A channel to the server with the client certificate, for any service
/// (`Exchange`, `Operations`).
pub async fn channel(config: &ClientConfig) -> Result<Channel, ConnectError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(read_pem(&config.ca_cert)?))
        .identity(Identity::from_pem(
            read_pem(&config.cert)?,
            read_pem(&config.key)?,
        ));
    let endpoint = Endpoint::from_shared(config.server.clone())
        .map_err(|e| ConnectError::Url(format!("{:?} is not a server URL: {e}", config.server)))?
        .tls_config(tls)
        .map_err(|e| ConnectError::Tls(format!("TLS configuration: {e}")))?
        .tcp_nodelay(true)
        // Downloads of large attachments: room for a few chunks in flight
        // (the HTTP/2 default of 64 KiB would wait on the network).
        .initial_stream_window_size(Some(RECEIVE_WINDOW))
        .initial_connection_window_size(Some(RECEIVE_WINDOW));
    endpoint
        .connect()
        .await
        .map_err(|e| ConnectError::Unreachable {
            server: config.server.clone(),
            detail: transport_detail(&e),
        })
}

/// Connects to `server` as `org`, with its client certificate from the
/// development PKI in `pki_dir` and that folder's CA.
pub async fn connect_as(
    server: &str,
    pki_dir: &Path,
    org: &str,
) -> Result<ExchangeClient<Channel>, ConnectError> {
    let paths = crate::pki::PkiPaths::new(pki_dir);
    let (cert, key) = crate::pki::find_client(&paths, org).map_err(ConnectError::Pki)?;
    connect(&ClientConfig {
        server: server.to_owned(),
        ca_cert: paths.ca_cert(),
        cert,
        key,
    })
    .await
}

/// Pages through a mailbox listing from `token`: one page, or every page
/// with `all`. Returns the entries and the token to continue from ("" at
/// the end).
async fn pages<T, Fut>(
    mut token: String,
    page_size: u32,
    all: bool,
    fetch: impl Fn(pb::ListMailboxRequest) -> Fut,
) -> Result<(Vec<T>, String), tonic::Status>
where
    Fut: std::future::Future<Output = Result<(Vec<T>, String), tonic::Status>>,
{
    let mut entries = Vec::new();
    loop {
        let request = pb::ListMailboxRequest {
            page_size,
            page_token: token,
        };
        let (page, next) = fetch(request).await?;
        entries.extend(page);
        token = next;
        if !all || token.is_empty() {
            return Ok((entries, token));
        }
    }
}

/// The caller's inbox from `token`: one page, or every page with `all`.
pub async fn inbox_pages(
    client: &ExchangeClient<Channel>,
    token: String,
    page_size: u32,
    all: bool,
) -> Result<(Vec<pb::InboxEntry>, String), tonic::Status> {
    inbox_listing(client, token, page_size, all, false).await
}

/// The unread part of the caller's inbox, most urgent first, from `token`:
/// one page, or every page with `all`.
pub async fn unread_pages(
    client: &ExchangeClient<Channel>,
    token: String,
    page_size: u32,
    all: bool,
) -> Result<(Vec<pb::InboxEntry>, String), tonic::Status> {
    inbox_listing(client, token, page_size, all, true).await
}

async fn inbox_listing(
    client: &ExchangeClient<Channel>,
    token: String,
    page_size: u32,
    all: bool,
    unread: bool,
) -> Result<(Vec<pb::InboxEntry>, String), tonic::Status> {
    pages(token, page_size, all, |request| {
        let mut client = client.clone();
        async move {
            let page = if unread {
                client.list_unread(request).await?
            } else {
                client.list_inbox(request).await?
            };
            let page = page.into_inner();
            Ok((page.entries, page.next_page_token))
        }
    })
    .await
}

/// The caller's outbox from `token`: one page, or every page with `all`.
pub async fn outbox_pages(
    client: &ExchangeClient<Channel>,
    token: String,
    page_size: u32,
    all: bool,
) -> Result<(Vec<pb::OutboxEntry>, String), tonic::Status> {
    pages(token, page_size, all, |request| {
        let mut client = client.clone();
        async move {
            let page = client.list_outbox(request).await?.into_inner();
            Ok((page.entries, page.next_page_token))
        }
    })
    .await
}

/// Reads a public key from a PEM file (`PUBLIC KEY`, a DER SubjectPublicKeyInfo).
pub fn read_public_key(file: &Path) -> Result<crate::crypto::PublicKey, String> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    crate::crypto::PublicKey::from_pem(&text).map_err(|e| format!("{}: {e}", file.display()))
}

/// The message of an error and of every error that caused it.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// An attachment to send.
#[derive(Debug, Clone)]
pub struct AttachmentFile {
    pub name: String,
    pub media_type: String,
    pub content: Vec<u8>,
}

impl AttachmentFile {
    /// Reads a file; the media type is guessed from its extension.
    pub fn read(path: &Path) -> Result<AttachmentFile, String> {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| format!("{} has no usable file name", path.display()))?
            .to_owned();
        Ok(AttachmentFile {
            media_type: media_type_for(&name).to_owned(),
            name,
            content: read(path)?,
        })
    }
}

/// The media type for a file name's extension; `application/octet-stream`
/// when unknown.
pub fn media_type_for(name: &str) -> &'static str {
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    match ext.as_deref() {
        Some("pdf") => "application/pdf",
        Some("doc") => "application/msword",
        Some("docx") => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        Some("xls") => "application/vnd.ms-excel",
        Some("xlsx") => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        Some("odt") => "application/vnd.oasis.opendocument.text",
        Some("txt") => "text/plain",
        Some("xml") => "application/xml",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("zip") => "application/zip",
        _ => "application/octet-stream",
    }
}

/// A RecordPaper request: `record` with its scan (if any) declared by
/// digest and size, encoded and signed by `signer`.
pub fn paper_request(
    record: pb::PaperRecord,
    scan: Option<AttachmentFile>,
    signer: &SigningKey,
) -> Result<pb::RecordPaperRequest, String> {
    signed_paper_request(record, scan.map(Outgoing::inline), signer)
}

/// Declares `scan` in the record, signs the record's bytes, and puts the
/// scan's content beside them unless it was uploaded beforehand.
pub fn signed_paper_request(
    mut record: pb::PaperRecord,
    scan: Option<Outgoing>,
    signer: &SigningKey,
) -> Result<pb::RecordPaperRequest, String> {
    record.scan = scan.as_ref().map(|a| a.declared.clone());
    let bytes = record.encode_to_vec();
    let (key_id, signature) = signer
        .sign_paper(&bytes)
        .map_err(|e| format!("cannot sign: {e}"))?;
    Ok(pb::RecordPaperRequest {
        record: bytes,
        signature: Some(pb::DocumentSignature { key_id, signature }),
        scan: scan.into_iter().map(Outgoing::into_content).collect(),
    })
}

/// A send of `header` with `attachments` inside: each declared in the
/// header (name, media type, size, SHA-256), signed by `signer`.
pub fn send_request(
    header: pb::Document,
    attachments: Vec<AttachmentFile>,
    idempotency_key: Option<String>,
    signer: &SigningKey,
) -> Result<pb::SendRequest, String> {
    let attachments = attachments.into_iter().map(Outgoing::inline).collect();
    signed_request(header, attachments, idempotency_key, signer)
}

/// One attachment of a send: as the document declares it, and its content
/// inside the request, or `None` when it was uploaded beforehand
/// ([`transfer::upload_file`]).
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub declared: pb::AttachmentRef,
    pub content: Option<Vec<u8>>,
}

impl Outgoing {
    /// A file read whole, to travel inside the request.
    pub fn inline(a: AttachmentFile) -> Outgoing {
        Outgoing {
            declared: pb::AttachmentRef {
                name: a.name,
                media_type: a.media_type,
                size: a.content.len() as u64,
                sha256: crate::crypto::sha256(&a.content).to_vec(),
            },
            content: Some(a.content),
        }
    }

    /// What the request carries of it.
    fn into_content(self) -> pb::AttachmentContent {
        pb::AttachmentContent {
            uploaded: self.content.is_none(),
            content: self.content.unwrap_or_default(),
        }
    }
}

/// Declares `attachments` in the header, encodes the header once, signs
/// exactly those bytes, and puts the contents carried inside beside them.
pub fn signed_request(
    mut header: pb::Document,
    attachments: Vec<Outgoing>,
    idempotency_key: Option<String>,
    signer: &SigningKey,
) -> Result<pb::SendRequest, String> {
    header.attachments = attachments.iter().map(|a| a.declared.clone()).collect();
    let document = header.encode_to_vec();
    let (key_id, signature) = signer
        .sign_document(&document)
        .map_err(|e| format!("cannot sign: {e}"))?;
    Ok(pb::SendRequest {
        document,
        attachments: attachments
            .into_iter()
            .map(Outgoing::into_content)
            .collect(),
        idempotency_key: idempotency_key.unwrap_or_default(),
        signature: Some(pb::DocumentSignature { key_id, signature }),
    })
}
