//! The `Operations` service: what the people who run the service call —
//! an online backup, a reload of certificates and keys — and only they.
//!
//! Security decision: an operator is a client certificate naming an
//! operator (SAN URI `urn:lienthong:operator:<name>`, see `pki`) whose name
//! the server was told to accept (`serve --operator`). Both are needed, so
//! that a CA that also issues certificates for other purposes does not make
//! operators by accident. A backup holds every organisation's documents,
//! so no organisation may take one; and an operator's certificate is
//! refused by the `Exchange` service, so an operator cannot read a mailbox
//! or send.

use std::io::Write;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use crate::backup::BackupSource;
use crate::error::Error;
use crate::pb;
use crate::pki;
use crate::reload::Reloader;

pub use pb::operations_server::OperationsServer;

/// Bytes of the backup file per message.
const CHUNK: usize = 256 * 1024;

pub struct OperationsApi {
    operators: Vec<String>,
    backup: Arc<BackupSource>,
    reloader: Arc<Reloader>,
}

impl OperationsApi {
    pub fn new(
        operators: Vec<String>,
        backup: Arc<BackupSource>,
        reloader: Arc<Reloader>,
    ) -> OperationsApi {
        OperationsApi {
            operators,
            backup,
            reloader,
        }
    }

    /// The operator calling, from the client certificate that TLS verified
    /// against the client CA, if this server accepts it.
    fn operator<T>(&self, request: &Request<T>) -> Result<String, Error> {
        match pki::operator_from_certificate(&super::client_certificate(request)?) {
            Ok(Some(name)) if self.operators.contains(&name) => Ok(name),
            Ok(Some(name)) if self.operators.is_empty() => Err(Error::PermissionDenied(format!(
                "operator {name:?}: this server accepts no operator (start it with --operator NAME)"
            ))),
            Ok(Some(name)) => Err(Error::PermissionDenied(format!(
                "operator {name:?} is not one this server accepts (serve --operator)"
            ))),
            Ok(None) => Err(Error::PermissionDenied(format!(
                "only an operator may call the Operations service (a certificate with the SAN URI {}<name>); this certificate names none",
                pki::OPERATOR_URI_PREFIX
            ))),
            Err(e) => Err(Error::PermissionDenied(e.to_string())),
        }
    }
}

type Chunks = mpsc::Sender<Result<pb::BackupChunk, Status>>;

/// The backup file as a stream of messages: what is written goes out in
/// chunks, waiting while the client reads slowly; a client that went away
/// makes the write fail, which ends the backup and its snapshot.
struct ChunkWriter {
    tx: Chunks,
    buffer: Vec<u8>,
}

impl ChunkWriter {
    fn send(&mut self) -> std::io::Result<()> {
        let data = std::mem::replace(&mut self.buffer, Vec::with_capacity(CHUNK));
        self.tx
            .blocking_send(Ok(pb::BackupChunk {
                data,
                estimated_bytes: 0,
            }))
            .map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client went away")
            })
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        if self.buffer.len() >= CHUNK {
            self.send()?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        self.send()
    }
}

#[tonic::async_trait]
impl pb::operations_server::Operations for OperationsApi {
    type BackupStream = ReceiverStream<Result<pb::BackupChunk, Status>>;

    async fn backup(
        &self,
        request: Request<pb::BackupRequest>,
    ) -> Result<Response<Self::BackupStream>, Status> {
        let operator = self.operator(&request)?;
        let include_secrets = request.into_inner().include_secrets;
        let source = self.backup.clone();
        let snapshot = source.begin().await?;
        tracing::info!(operator, include_secrets, "backup started");
        let (tx, rx) = mpsc::channel(4);
        tokio::task::spawn_blocking(move || {
            let estimated_bytes = source.estimate().unwrap_or(0);
            let first = pb::BackupChunk {
                data: Vec::new(),
                estimated_bytes,
            };
            if tx.blocking_send(Ok(first)).is_err() {
                return;
            }
            let out = ChunkWriter {
                tx: tx.clone(),
                buffer: Vec::with_capacity(CHUNK),
            };
            match source.write(snapshot, include_secrets, out) {
                Ok(counts) => tracing::info!(
                    operator,
                    entries = counts.entries,
                    attachments = counts.attachments,
                    files = counts.files,
                    "backup sent"
                ),
                Err(e) => {
                    tracing::warn!(operator, error = %e, "backup stopped");
                    let _ = tx.blocking_send(Err(Status::from(e)));
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn reload(
        &self,
        request: Request<pb::ReloadRequest>,
    ) -> Result<Response<pb::ReloadResponse>, Status> {
        let operator = self.operator(&request)?;
        tracing::info!(operator, "reload asked");
        let reloader = self.reloader.clone();
        let reloaded = tokio::task::spawn_blocking(move || reloader.reload())
            .await
            .map_err(|e| Status::internal(format!("the reload did not complete: {e}")))?
            .map_err(|e| {
                Error::precondition(
                    "reload",
                    format!("refused, the server keeps the certificates and keys in use: {e}"),
                )
            })?;
        Ok(Response::new(pb::ReloadResponse {
            server_certificate: reloaded.server_certificate,
            not_after: reloaded.not_after,
            client_cas: u32::try_from(reloaded.client_cas).unwrap_or(u32::MAX),
            signing_keys: u32::try_from(reloaded.signing_keys).unwrap_or(u32::MAX),
        }))
    }
}
