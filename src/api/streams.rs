//! The streamed calls of large attachments: `BeginUpload`,
//! `UploadAttachment` (a client stream) and `DownloadAttachment` (a server
//! stream). The rules are in [`crate::transfer`]; here, the streams.

use std::sync::Arc;

use prost::Message;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Response, Status, Streaming};

use super::Admitted;
use crate::directory::Organization;
use crate::pb;
use crate::transfer::{shutting_down, Opened, Transfers, UploadStatus};

/// Bytes per chunk of a download.
const DOWNLOAD_CHUNK: usize = 1024 * 1024;
/// Chunks of a download read ahead of the network.
const DOWNLOAD_AHEAD: usize = 2;

pub type DownloadStream = ReceiverStream<Result<pb::AttachmentChunk, Status>>;

/// A message's bytes as the request body carried them: its 5-byte gRPC
/// frame header and its encoding.
fn framed_len(message: &impl Message) -> usize {
    message.encoded_len() + 5
}

pub fn upload_status(status: &UploadStatus) -> pb::UploadStatus {
    pb::UploadStatus {
        sha256: status.key.sha256.to_vec(),
        size: status.key.size,
        offset: status.offset,
        complete: status.complete,
        expires_at_ms: status.expires_at_ms,
    }
}

/// `UploadAttachment`: the first message names the upload; each chunk is
/// handed on as it comes, and its bytes given back to the budgets once
/// queued for the disk.
pub async fn upload(
    transfers: &Arc<Transfers>,
    caller: &Organization,
    admitted: Admitted,
    mut chunks: Streaming<pb::UploadChunk>,
) -> Result<Response<pb::UploadStatus>, Status> {
    let first = chunks.message().await?.ok_or_else(|| {
        Status::invalid_argument(
            "request: the stream holds no message; the first names the upload (sha256, size, offset)",
        )
    })?;
    let mut given = framed_len(&first);
    let mut session = match transfers
        .open(caller, &first.sha256, first.size, first.offset)
        .await?
    {
        Opened::Complete(done) => return Ok(Response::new(upload_status(&done))),
        Opened::Writing(session) => session,
    };
    let mut data = first.data;
    loop {
        session.write(std::mem::take(&mut data)).await?;
        (admitted.give_back)(given);
        let next = tokio::select! {
            next = chunks.message() => next,
            () = session.stopped() => {
                session.leave().await;
                if transfers.closing() {
                    return Err(shutting_down().into());
                }
                return Err(Status::aborted(
                    "another stream of this upload took over (the client resumed it); this one stopped",
                ));
            }
        };
        match next {
            Ok(Some(chunk)) => {
                given = framed_len(&chunk);
                data = chunk.data;
            }
            Ok(None) => return Ok(Response::new(upload_status(&session.finish().await?))),
            Err(status) => {
                // The client went away, or its body stalled: what arrived
                // is kept for a resumption.
                session.leave().await;
                return Err(status);
            }
        }
    }
}

/// `DownloadAttachment`: checks the caller and the range, then reads the
/// file on a blocking thread, a chunk or two ahead of the network.
pub async fn download(
    transfers: Arc<Transfers>,
    caller: Organization,
    request: pb::DownloadAttachmentRequest,
) -> Result<Response<DownloadStream>, Status> {
    let download = tokio::task::spawn_blocking(move || {
        transfers.download(
            &caller,
            &request.document_id,
            request.index,
            request.offset,
            request.length,
        )
    })
    .await
    .map_err(|e| Status::internal(format!("the read did not start: {e}")))??;
    let (tx, rx) = mpsc::channel(DOWNLOAD_AHEAD);
    tokio::task::spawn_blocking(move || {
        let read = download.read(DOWNLOAD_CHUNK, &mut |offset, data| {
            tx.blocking_send(Ok(pb::AttachmentChunk { offset, data }))
                .is_ok()
        });
        if let Err(e) = read {
            let _ = tx.blocking_send(Err(Status::from(e)));
        }
    });
    Ok(Response::new(ReceiverStream::new(rx)))
}
