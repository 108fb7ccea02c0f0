//! The gauges read when Prometheus scrapes, not kept up to date on the send
//! path: open notification streams, the archive's size and its latest
//! checkpoint, the store's size on disk and the space left beside it, and
//! the days left on the server's and the client CA's certificates. Each is
//! cheap: a few reads of the store, a walk of `DATA/store/` (a handful of
//! sled files), one `statvfs`, and two small PEM files, read again at each
//! scrape so that a certificate replaced on disk shows at once.
//!
//! Attachment files are not summed (one file each: a walk of them grows
//! with the archive); the filesystem's free space covers the disk filling.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};

use crate::archive::Archive;
use crate::notify::Notifier;
use crate::pki;
use crate::store::Store;

/// What the gauges are read from.
pub struct Sources {
    pub store: Arc<Store>,
    pub archive: Arc<Archive>,
    pub notifier: Arc<Notifier>,
    pub data_dir: PathBuf,
    /// The server's certificate (PEM), as configured.
    pub server_cert: PathBuf,
    /// The CA that client certificates must chain to (PEM).
    pub client_ca: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct Certificate {
    certificate: &'static str,
}

type FloatGauge = Gauge<f64, AtomicU64>;

/// The scraped gauges, registered with the others.
pub(super) struct Gauges {
    streams: Gauge,
    archive_leaves: Gauge,
    checkpoint_leaves: Gauge,
    checkpoint_age: FloatGauge,
    store_bytes: Gauge,
    filesystem_available: Gauge,
    filesystem_size: Gauge,
    certificate_days: Family<Certificate, FloatGauge>,
}

impl Gauges {
    pub(super) fn register(registry: &mut Registry) -> Gauges {
        let gauges = Gauges {
            streams: Gauge::default(),
            archive_leaves: Gauge::default(),
            checkpoint_leaves: Gauge::default(),
            checkpoint_age: FloatGauge::default(),
            store_bytes: Gauge::default(),
            filesystem_available: Gauge::default(),
            filesystem_size: Gauge::default(),
            certificate_days: Family::default(),
        };
        let r = registry;
        r.register(
            "lienthong_notification_streams_open",
            "Mailbox event streams (Subscribe, watch) open; one whose client left counts until its next heartbeat",
            gauges.streams.clone(),
        );
        r.register(
            "lienthong_archive_leaves",
            "Leaves in the archive log (documents and status changes)",
            gauges.archive_leaves.clone(),
        );
        r.register(
            "lienthong_archive_checkpoint_leaves",
            "Leaves covered by the latest signed checkpoint (below lienthong_archive_leaves until the next one)",
            gauges.checkpoint_leaves.clone(),
        );
        r.register_with_unit(
            "lienthong_archive_checkpoint_age",
            "Time since the latest signed checkpoint was made (NaN before the first)",
            Unit::Seconds,
            gauges.checkpoint_age.clone(),
        );
        r.register_with_unit(
            "lienthong_store",
            "Disk space taken by the database (DATA/store), attachment files not included",
            Unit::Bytes,
            gauges.store_bytes.clone(),
        );
        r.register_with_unit(
            "lienthong_data_filesystem_available",
            "Space left for the service on the filesystem of the data directory",
            Unit::Bytes,
            gauges.filesystem_available.clone(),
        );
        r.register_with_unit(
            "lienthong_data_filesystem_size",
            "Size of the filesystem of the data directory",
            Unit::Bytes,
            gauges.filesystem_size.clone(),
        );
        r.register(
            "lienthong_certificate_expiry_days",
            "Days until the first certificate in the file expires (negative: expired), for the server's certificate and the client CA",
            gauges.certificate_days.clone(),
        );
        gauges
    }

    /// Reads every gauge from `sources`. Blocking: off the async workers.
    /// A value that cannot be read keeps its last value, and the log says
    /// why (at debug: a scrape every few seconds must not flood it).
    pub(super) fn refresh(&self, sources: &Sources) {
        let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        self.streams
            .set(count(sources.notifier.open_streams() as u64));
        match sources.store.archive_size() {
            Ok(size) => {
                self.archive_leaves.set(count(size));
            }
            Err(e) => tracing::debug!(error = %e, "metrics: the archive's size"),
        }
        match sources.archive.latest() {
            Ok(Some(checkpoint)) => {
                self.checkpoint_leaves.set(count(checkpoint.tree_size));
                // Checkpoints are dated by the store's clock.
                let now_ms = sources.store.clock().now_ms();
                let age_ms = now_ms.saturating_sub(checkpoint.timestamp_ms).max(0);
                self.checkpoint_age.set(age_ms as f64 / 1000.0);
            }
            Ok(None) => {
                self.checkpoint_age.set(f64::NAN);
            }
            Err(e) => tracing::debug!(error = %e, "metrics: the latest checkpoint"),
        }
        self.store_bytes
            .set(count(disk_usage(&sources.data_dir.join("store"))));
        match filesystem(&sources.data_dir) {
            Ok((available, size)) => {
                self.filesystem_available.set(count(available));
                self.filesystem_size.set(count(size));
            }
            Err(e) => tracing::debug!(error = %e, "metrics: statvfs of the data directory"),
        }
        for (certificate, path) in [
            ("server", &sources.server_cert),
            ("client_ca", &sources.client_ca),
        ] {
            let label = Certificate { certificate };
            match std::fs::read(path)
                .map_err(|e| e.to_string())
                .and_then(|pem| pki::first_expiry(&pem))
            {
                Ok(not_after) => {
                    let now = crate::clock::now_ms() as f64 / 1000.0;
                    let days = (not_after as f64 - now) / 86_400.0;
                    self.certificate_days.get_or_create(&label).set(days);
                }
                Err(e) => {
                    tracing::debug!(error = %e, path = %path.display(), "metrics: certificate expiry");
                    self.certificate_days.remove(&label);
                }
            }
        }
    }
}

/// Bytes allocated on disk to the files under `dir` (sparse files count
/// what they hold). What cannot be read counts nothing.
fn disk_usage(dir: &Path) -> u64 {
    let mut total = 0u64;
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else {
                continue;
            };
            if meta.is_dir() {
                dirs.push(entry.path());
            } else {
                total = total.saturating_add(allocated(&meta));
            }
        }
    }
    total
}

#[cfg(unix)]
fn allocated(meta: &std::fs::Metadata) -> u64 {
    use std::os::unix::fs::MetadataExt;
    meta.blocks().saturating_mul(512)
}

#[cfg(not(unix))]
fn allocated(meta: &std::fs::Metadata) -> u64 {
    meta.len()
}

/// Bytes available to the service, and in all, on the filesystem of `dir`.
#[cfg(unix)]
fn filesystem(dir: &Path) -> std::io::Result<(u64, u64)> {
    let fs = rustix::fs::statvfs(dir)?;
    Ok((
        fs.f_bavail.saturating_mul(fs.f_frsize),
        fs.f_blocks.saturating_mul(fs.f_frsize),
    ))
}

#[cfg(not(unix))]
fn filesystem(_dir: &Path) -> std::io::Result<(u64, u64)> {
    Err(std::io::Error::other("not measured on this system"))
}
