//! Receipts: what the service attests when it accepts a document (which
//! bytes, from whom, to whom with which arrival numbers, when, signed with
//! which key), signed with the service's own Ed25519 key so that anyone
//! holding its public half can check it offline.
//!
//! The key lives in `DATA/service-key.pem` (private, mode 0600) and
//! `DATA/service-key.pub.pem` (its public half, to publish). It is created
//! on first start; with the development PKI, the public half is also copied
//! into `DATA/pki/`, where `verify` looks for it. Keep a copy of every
//! public half the service ever used: receipts stay verifiable with it after
//! the key is replaced.

use std::path::Path;
use std::sync::Arc;

use prost::Message;

use crate::crypto::{self, PublicKey, SigningKey};
use crate::error::{Error, Result};
use crate::pb;
use crate::store::{Accepted, AcceptedStatus, Sealed, Sealer};

pub const PRIVATE_FILE: &str = "service-key.pem";
pub const PUBLIC_FILE: &str = "service-key.pub.pem";

pub struct ServiceKey {
    key: SigningKey,
    key_id: String,
}

impl ServiceKey {
    /// Loads the service key from `dir`, creating it on first start.
    pub fn load_or_create(dir: &Path) -> Result<ServiceKey, String> {
        let private = dir.join(PRIVATE_FILE);
        if !private.exists() {
            let text = SigningKey::generate_ed25519_pem().map_err(|e| e.to_string())?;
            // Several front ends may start together on one shared data
            // directory: the first key in place wins, whole, and the
            // others read it (see `write_private`).
            write_private(&private, &text)?;
        }
        let text = std::fs::read_to_string(&private)
            .map_err(|e| format!("cannot read {}: {e}", private.display()))?;
        let key = SigningKey::from_pem(&text).map_err(|e| format!("{}: {e}", private.display()))?;
        if key.algorithm() != crypto::Algorithm::Ed25519 {
            return Err(format!(
                "{}: the service key must be Ed25519",
                private.display()
            ));
        }
        let key_id = key.key_id();
        let service = ServiceKey { key, key_id };
        service.publish(&dir.join(PUBLIC_FILE))?;
        Ok(service)
    }

    /// Writes the public half to `path`, for those who check receipts.
    pub fn publish(&self, path: &Path) -> Result<(), String> {
        std::fs::write(path, self.public_pem())
            .map_err(|e| format!("cannot write {}: {e}", path.display()))
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    pub fn public(&self) -> PublicKey {
        self.key.public_key()
    }

    pub fn public_pem(&self) -> String {
        pem::encode(&pem::Pem::new("PUBLIC KEY", self.key.spki_der().to_vec()))
    }

    pub fn to_pb(&self) -> pb::ServiceKey {
        pb::ServiceKey {
            key_id: self.key_id.clone(),
            algorithm: self.key.algorithm().name().into(),
            public_key: self.key.spki_der().to_vec(),
        }
    }
}

/// Writes a new private key file at `path`, readable by its owner only,
/// unless one is there already (then that one stands). Written whole to a
/// file of its own, synced, then linked into place: a link never replaces
/// a file, and nobody ever reads a half-written key.
fn write_private(path: &Path, text: &str) -> Result<(), String> {
    use std::io::Write;
    // Unique to this process and call: several may be writing at once.
    static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = path.with_extension(format!("new-{}-{call}", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let written = options
        .open(&tmp)
        .map_err(|e| format!("cannot create {}: {e}", tmp.display()))
        .and_then(|mut file| {
            file.write_all(text.as_bytes())
                .and_then(|_| file.sync_all())
                .map_err(|e| format!("cannot write {}: {e}", tmp.display()))
        });
    let linked = written.and_then(|()| match std::fs::hard_link(&tmp, path) {
        Ok(()) => Ok(()),
        // Another process put its key there first: it stands.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(format!("cannot create {}: {e}", path.display())),
    });
    let _ = std::fs::remove_file(&tmp);
    linked
}

/// Seals receipts inside the store's commit.
pub struct Notary {
    key: Arc<ServiceKey>,
}

impl Notary {
    pub fn new(key: Arc<ServiceKey>) -> Notary {
        Notary { key }
    }
}

impl Notary {
    /// Signs receipt bytes and makes the archive leaf that holds them.
    fn sealed(
        &self,
        receipt: Vec<u8>,
        kind: pb::ArchiveEntryKind,
        document_id: String,
    ) -> Result<Sealed> {
        let signature = self
            .key
            .key
            .sign(&crypto::receipt_message(&self.key.key_id, &receipt))
            .map_err(|e| Error::storage(format!("cannot sign a receipt: {e}")))?;
        let archive_leaf = pb::ArchiveEntry {
            kind: kind as i32,
            document_id,
            receipt: Some(pb::SealedReceipt {
                receipt: receipt.clone(),
                signature: signature.clone(),
            }),
        }
        .encode_to_vec();
        Ok(Sealed {
            receipt,
            signature,
            archive_leaf,
        })
    }
}

impl Sealer for Notary {
    fn seal(&self, accepted: &Accepted<'_>) -> Result<Sealed> {
        let new = accepted.new;
        let receipt = pb::Receipt {
            document_id: new.id.to_string(),
            document_sha256: crypto::sha256(&new.document_bytes).to_vec(),
            sender: new.sender.to_string(),
            deliveries: accepted
                .deliveries
                .iter()
                .map(|d| pb::ReceiptDelivery {
                    recipient: d.recipient.clone(),
                    arrival_year: d.arrival_year,
                    arrival_number: d.arrival_number,
                })
                .collect(),
            accepted_at_ms: accepted.accepted_at_ms,
            service_key_id: self.key.key_id.clone(),
            signing_key_id: new.signing_key_id.clone(),
            signature_sha256: crypto::sha256(&new.signature).to_vec(),
            number: accepted.number,
        };
        // The archive's leaf commits to the sealed receipt, which names the
        // document's digest, sender, recipients, time and signature.
        let kind = if new.paper {
            pb::ArchiveEntryKind::PaperRecorded
        } else {
            pb::ArchiveEntryKind::DocumentAccepted
        };
        self.sealed(receipt.encode_to_vec(), kind, new.id.to_string())
    }

    fn seal_status(&self, accepted: &AcceptedStatus<'_>) -> Result<Sealed> {
        let new = accepted.new;
        let receipt = pb::StatusReceipt {
            document_id: new.document.to_string(),
            from: new.from.to_string(),
            change: accepted.change,
            code: new.code.map_or(0, |c| c as i32),
            operation: if new.code.is_none() {
                pb::Operation::Revoke as i32
            } else {
                pb::Operation::New as i32
            },
            status_sha256: crypto::sha256(&new.status_bytes).to_vec(),
            signing_key_id: new.signing_key_id.clone(),
            signature_sha256: crypto::sha256(&new.signature).to_vec(),
            accepted_at_ms: accepted.accepted_at_ms,
            service_key_id: self.key.key_id.clone(),
        };
        let kind = if new.code.is_none() {
            pb::ArchiveEntryKind::DocumentRevoked
        } else {
            pb::ArchiveEntryKind::StatusChanged
        };
        self.sealed(receipt.encode_to_vec(), kind, new.document.to_string())
    }

    fn seal_checkpoint(&self, size: u64, root: [u8; 32], at_ms: i64) -> Result<Vec<u8>> {
        let checkpoint = pb::Checkpoint {
            tree_size: size,
            root_hash: root.to_vec(),
            timestamp_ms: at_ms,
            service_key_id: self.key.key_id.clone(),
        };
        let bytes = checkpoint.encode_to_vec();
        let signature = self
            .key
            .key
            .sign(&crypto::checkpoint_message(&self.key.key_id, &bytes))
            .map_err(|e| Error::storage(format!("cannot sign the checkpoint: {e}")))?;
        Ok(pb::SignedCheckpoint {
            checkpoint: bytes,
            signature,
        }
        .encode_to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::ServiceKey;

    /// Front ends starting together on one shared data directory end up
    /// with one service key, whoever wrote it.
    #[test]
    fn front_ends_starting_together_share_one_service_key() {
        for _ in 0..20 {
            let dir = tempfile::tempdir().expect("tmp");
            let ids: Vec<String> = std::thread::scope(|scope| {
                let starts: Vec<_> = (0..4)
                    .map(|_| {
                        scope.spawn(|| {
                            ServiceKey::load_or_create(dir.path())
                                .expect("service key")
                                .key_id()
                                .to_string()
                        })
                    })
                    .collect();
                starts
                    .into_iter()
                    .map(|s| s.join().expect("thread"))
                    .collect()
            });
            assert!(ids.windows(2).all(|w| w[0] == w[1]), "{ids:?}");
            let left: Vec<_> = std::fs::read_dir(dir.path())
                .expect("dir")
                .filter_map(|e| e.ok())
                .map(|e| e.file_name())
                .filter(|n| n.to_string_lossy().contains(".new-"))
                .collect();
            assert!(left.is_empty(), "{left:?}");
        }
    }
}
