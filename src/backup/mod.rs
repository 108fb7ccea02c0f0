//! Online backup and offline restore of a data directory.
//!
//! A backup is taken from the running server ([`BackupSource`], behind the
//! operator's `Backup` call) while sends go on: a signed checkpoint of the
//! archive first, then a snapshot of the store (`Store::snapshot`: every
//! keyspace as committed at one instant between two sends, so every send
//! acknowledged before the call is in it and none is in it by halves),
//! then the attachment files (they never change once written, so those the
//! snapshot refers to are all there when listed after it), the service's
//! public key, the certificates and the signing-key registry in use, and
//! private keys only when asked. [`format`] is the file; `restore` rebuilds
//! a data directory from one.

pub mod format;
mod restore;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::store::engine::{Snapshot, Space};
use crate::store::{self, Store};
use format::{Counts, Header, Writer};
pub use restore::{restore, RestoreError, Restored};

/// Whether a file holds a private key: any PEM block whose label ends in
/// `PRIVATE KEY` (PKCS#8, SEC1, PKCS#1, encrypted). Judged by content, not
/// by name, so that a key under an unexpected name is still held back.
pub fn is_secret(content: &[u8]) -> bool {
    content
        .windows(b"PRIVATE KEY-----".len())
        .any(|w| w == b"PRIVATE KEY-----")
}

/// What a running server backs up, and from where.
pub struct BackupSource {
    store: Arc<Store>,
    data_dir: PathBuf,
    /// Files by their path in a restored data directory (`/`-separated),
    /// and where they are now.
    files: Vec<(String, PathBuf)>,
    /// A folder whose every file is taken too, under `pki/` (the
    /// development PKI).
    dev_pki: Option<PathBuf>,
}

impl BackupSource {
    pub fn new(
        store: Arc<Store>,
        data_dir: PathBuf,
        files: Vec<(String, PathBuf)>,
        dev_pki: Option<PathBuf>,
    ) -> BackupSource {
        BackupSource {
            store,
            data_dir,
            files,
            dev_pki,
        }
    }

    /// Begins a backup: signs a checkpoint of the archive as it stands (so
    /// that the backup's archive ends close to a signed tree head), then
    /// takes the store's snapshot.
    pub async fn begin(&self) -> Result<Snapshot> {
        if self.store.archive_grew()? {
            self.store.make_checkpoint().await?;
        }
        self.store.snapshot().await
    }

    /// The backup's expected size, for a progress bar: the store's size on
    /// disk (roughly what its entries take, give or take the engine's
    /// overhead) and the attachment files. Blocking.
    pub fn estimate(&self) -> Result<u64> {
        let mut total = store::size_on_disk(&self.data_dir);
        for sha256 in self.store.attachment_files()? {
            total += self.store.attachment_file_size(&sha256)?.unwrap_or(0);
        }
        Ok(total)
    }

    /// Writes the backup of `snapshot` to `out`. Blocking; `out` may be
    /// slow (the network): the snapshot holds meanwhile.
    pub fn write(
        &self,
        snapshot: Snapshot,
        include_secrets: bool,
        out: impl Write,
    ) -> Result<Counts> {
        let io = |e: std::io::Error| Error::storage_from("writing the backup", e);
        let header = Header {
            created_at: crate::clock::rfc3339(crate::clock::now_ms()),
            server_version: env!("CARGO_PKG_VERSION").into(),
            spaces: Space::ALL.iter().map(|s| s.name().to_owned()).collect(),
            include_secrets,
        };
        let mut writer = Writer::new(out, &header).map_err(io)?;
        for entry in snapshot {
            let (space, (key, value)) = entry?;
            let index = u8::try_from(space.index())
                .map_err(|_| Error::storage("more keyspaces than a backup can name"))?;
            writer.entry(index, &key, &value).map_err(io)?;
        }
        for sha256 in self.store.attachment_files()? {
            // A file that went away (no sweep removes any today) or that no
            // longer matches its digest is reported, not skipped.
            let content = self.store.attachment_file(&sha256)?.ok_or_else(|| {
                Error::storage(format!(
                    "attachment {} disappeared during the backup",
                    hex::encode(sha256)
                ))
            })?;
            writer.attachment(&sha256, &content).map_err(io)?;
        }
        for (name, path) in self.files()? {
            let content = match std::fs::read(&path) {
                Ok(content) => content,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::storage_from(path.display().to_string(), e)),
            };
            let secret = is_secret(&content);
            if secret && !include_secrets {
                continue;
            }
            writer.file(&name, secret, &content).map_err(io)?;
        }
        Ok(writer.finish().map_err(io)?.1)
    }

    /// The files to take: those named, then the rest of the development
    /// PKI's folder (not the temporary files of a `pki reissue`).
    fn files(&self) -> Result<Vec<(String, PathBuf)>> {
        let mut files = self.files.clone();
        let mut names: BTreeSet<String> = files.iter().map(|(n, _)| n.clone()).collect();
        if let Some(dir) = &self.dev_pki {
            let mut found = Vec::new();
            walk(dir, dir, &mut found)?;
            found.sort();
            for (name, path) in found {
                let name = format!("pki/{name}");
                if !name.ends_with(".new") && names.insert(name.clone()) {
                    files.push((name, path));
                }
            }
        }
        Ok(files)
    }
}

/// Every file under `dir`, by its `/`-separated path relative to `root`.
fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) -> Result<()> {
    let listing = |e| Error::storage_from(format!("listing {}", dir.display()), e);
    for entry in std::fs::read_dir(dir).map_err(listing)? {
        let path = entry.map_err(listing)?.path();
        if path.is_dir() {
            walk(root, &path, out)?;
        } else if let Ok(relative) = path.strip_prefix(root) {
            let name: Vec<String> = relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            out.push((name.join("/"), path));
        }
    }
    Ok(())
}
