//! Downloads: an attachment's content, or a byte range of it, read from
//! disk in chunks, for a party of its document only.

use std::io::{Read, Seek, SeekFrom};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use ring::digest::{Context, SHA256};

use super::Transfers;
use crate::directory::Organization;
use crate::error::{Error, Result};
use crate::store::AttachmentSource;

/// A range of one attachment, ready to be read.
pub struct Download {
    pub document_id: String,
    pub index: u32,
    /// The attachment's size, and the range `offset..offset + length`.
    pub size: u64,
    pub offset: u64,
    pub length: u64,
    source: AttachmentSource,
    sha256: [u8; 32],
    closing: Arc<AtomicBool>,
}

impl Transfers {
    /// Attachment `index` of document `document_id`, from `offset`,
    /// `length` bytes (0: to the end), if `caller` may read the document:
    /// its sender or a recipient. Anyone else gets the NOT_FOUND of an
    /// unknown id. Blocking (opens a file).
    pub fn download(
        &self,
        caller: &Organization,
        document_id: &str,
        index: u32,
        offset: u64,
        length: u64,
    ) -> Result<Download> {
        let view = self.exchange.readable(caller, "document_id", document_id)?;
        let count = view.header.attachments.len();
        let declared = view.header.attachments.get(index as usize).ok_or_else(|| {
            Error::invalid(
                "index",
                format!("document {document_id} has {count} attachments; the first is 0"),
            )
        })?;
        let size = declared.size;
        if offset > size {
            return Err(Error::OutOfRange {
                field: "offset".into(),
                reason: format!(
                    "{offset} is past the end of attachment {index}, which has {size} bytes"
                ),
            });
        }
        let length = match length {
            0 => size - offset,
            n if n <= size - offset => n,
            n => {
                return Err(Error::OutOfRange {
                    field: "length".into(),
                    reason: format!(
                        "{n} bytes from {offset} go past the end of attachment {index}, which has {size} bytes"
                    ),
                })
            }
        };
        let missing = || Error::storage(format!("attachment {index} of {} is missing", view.id));
        let source = self
            .store
            .attachment_source(&declared.sha256)?
            .ok_or_else(missing)?;
        let stored = match &source {
            AttachmentSource::Inline(bytes) => bytes.len() as u64,
            AttachmentSource::File(_, len) => *len,
        };
        if stored != size {
            return Err(Error::storage(format!(
                "attachment {index} of {} has {stored} bytes on disk, its document says {size}",
                view.id
            )));
        }
        Ok(Download {
            document_id: document_id.to_owned(),
            index,
            size,
            offset,
            length,
            sha256: declared.sha256.as_slice().try_into().unwrap_or([0; 32]),
            source,
            closing: self.closing.clone(),
        })
    }
}

impl Download {
    /// Reads the range in chunks of at most `chunk` bytes, handing each to
    /// `each` with its offset; stops early when `each` says so (the
    /// client went away). A range that covers the whole attachment is
    /// checked against its SHA-256 before its last chunk is handed over,
    /// so that a file damaged on disk is reported, never served whole.
    /// Blocking.
    pub fn read(self, chunk: usize, each: &mut dyn FnMut(u64, Vec<u8>) -> bool) -> Result<()> {
        let whole = self.offset == 0 && self.length == self.size;
        let mut hash = whole.then(|| Context::new(&SHA256));
        let end = self.offset + self.length;
        let mut at = self.offset;
        let mut reader: Box<dyn Read> = match self.source {
            AttachmentSource::Inline(bytes) => {
                let start = usize::try_from(self.offset).unwrap_or(usize::MAX);
                Box::new(std::io::Cursor::new(
                    bytes.get(start..).unwrap_or_default().to_vec(),
                ))
            }
            AttachmentSource::File(mut file, _) => {
                file.seek(SeekFrom::Start(self.offset))
                    .map_err(|e| Error::storage_from("seeking in an attachment file", e))?;
                Box::new(file)
            }
        };
        while at < end {
            if self.closing.load(Ordering::Acquire) {
                return Err(Error::Unavailable(format!(
                    "the server is shutting down; download the rest from offset {at} after it restarts"
                )));
            }
            let want = usize::try_from(end - at)
                .unwrap_or(usize::MAX)
                .min(chunk.max(1));
            let mut data = vec![0u8; want];
            reader
                .read_exact(&mut data)
                .map_err(|e| Error::storage_from("reading an attachment file", e))?;
            if let Some(hash) = &mut hash {
                hash.update(&data);
            }
            let last = at + want as u64 == end;
            if last {
                if let Some(hash) = hash.take() {
                    if hash.finish().as_ref() != self.sha256 {
                        return Err(Error::storage(format!(
                            "attachment {} of {} does not match its SHA-256 on disk: the file was changed or damaged",
                            self.index, self.document_id
                        )));
                    }
                }
            }
            if !each(at, data) {
                return Ok(());
            }
            at += want as u64;
        }
        Ok(())
    }
}
