//! Large attachments on the command line: `send` uploads the ones it does
//! not carry inside the send, and `show --save` and `archive export`
//! download every attachment, each with a progress bar on stderr (when it
//! is a terminal), a note when a transfer resumes or retries, and memory
//! bounded by a few chunks (see [`crate::client::transfer`]).

use std::path::Path;

use tonic::transport::Channel;

use super::error::{CliError, Result};
use super::output::note;
use crate::client::transfer::{self, Progress, TransferError};
use crate::client::{media_type_for, Outgoing};
use crate::evidence::{self, Existing, Saved};
use crate::pb;
use crate::pb::exchange_client::ExchangeClient;

impl From<TransferError> for CliError {
    fn from(e: TransferError) -> CliError {
        match e {
            TransferError::Server(status) => CliError::from(status),
            TransferError::File(e) => CliError::from(e),
            TransferError::Mismatch(m) => CliError::new(tonic::Code::DataLoss, m),
        }
    }
}

/// A byte count's bar on stderr, hidden when stderr is not a terminal.
fn bar(len: u64, what: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(len),
        indicatif::ProgressDrawTarget::stderr(),
    );
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{msg} {bar:30} {bytes}/{total_bytes} {bytes_per_sec} {eta} left",
    ) {
        bar.set_style(style);
    }
    bar.set_message(what.to_owned());
    bar
}

/// What a transfer reports, on `bar`, and in notes for what the user
/// should know whether or not a bar shows: a resumption, a retry.
fn reporter(bar: indicatif::ProgressBar, what: String) -> impl Fn(Progress) + Send + Sync {
    move |progress| match progress {
        Progress::From(0) => {}
        Progress::From(offset) => {
            bar.set_position(offset);
            // Made before `suspend`, which holds the bar until it returns.
            let line = format!(
                "{what}: resuming at byte {offset} of {}",
                bar.length().unwrap_or_default()
            );
            bar.suspend(|| note(&line));
        }
        Progress::Done(done) => bar.set_position(done),
        Progress::Retrying(status, wait) => {
            let line = format!(
                "{what}: {} ({}); trying again in {:.1} s",
                status.message(),
                super::error::code_name(status.code()),
                wait.as_secs_f64()
            );
            bar.suspend(|| note(&line));
        }
    }
}

/// The name an attachment file is declared under: its file name.
fn name_of(path: &Path) -> Result<String> {
    Ok(path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| format!("{} has no usable file name", path.display()))?
        .to_owned())
}

/// Hashes the file at `path` and uploads it, resuming what an earlier run
/// began. Returns it as a send declares it, its content uploaded.
pub async fn upload(client: &ExchangeClient<Channel>, path: &Path) -> Result<Outgoing> {
    let name = name_of(path)?;
    let len = std::fs::metadata(path)
        .map_err(|e| CliError::io(format!("cannot read {}", path.display()), &e))?
        .len();
    let hashing = bar(len, &format!("hashing {name}"));
    let (size, sha256) = transfer::hash_file(path, &mut |done| hashing.set_position(done))?;
    hashing.finish_and_clear();
    let uploading = bar(size, &format!("uploading {name}"));
    let report = reporter(uploading.clone(), format!("upload of {name}"));
    let done = transfer::upload_file(client, path, size, sha256, &report).await;
    uploading.finish_and_clear();
    done?;
    Ok(Outgoing {
        declared: pb::AttachmentRef {
            media_type: media_type_for(&name).to_owned(),
            name,
            size,
            sha256: sha256.to_vec(),
        },
        content: None,
    })
}

/// Reads the file at `path` whole, to travel inside the send.
pub fn inline(path: &Path) -> Result<Outgoing> {
    let name = name_of(path)?;
    let content = std::fs::read(path)
        .map_err(|e| CliError::io(format!("cannot read {}", path.display()), &e))?;
    Ok(Outgoing {
        declared: pb::AttachmentRef {
            media_type: media_type_for(&name).to_owned(),
            name,
            size: content.len() as u64,
            sha256: crate::crypto::sha256(&content).to_vec(),
        },
        content: Some(content),
    })
}

/// Which of the attachments of these sizes to upload rather than carry: those over `upload_above` bytes, and then the largest of the
/// rest until those carried fit in `room` bytes.
pub fn to_upload(sizes: &[u64], upload_above: u64, room: u64) -> Vec<bool> {
    let mut upload: Vec<bool> = sizes.iter().map(|&s| s > upload_above).collect();
    let mut carried: u64 = sizes
        .iter()
        .zip(&upload)
        .filter(|(_, up)| !**up)
        .map(|(s, _)| s)
        .sum();
    while carried > room {
        let largest = sizes
            .iter()
            .enumerate()
            .filter(|(i, _)| !upload[*i])
            .max_by_key(|(_, s)| **s);
        let Some((index, size)) = largest else { break };
        upload[index] = true;
        carried -= size;
    }
    upload
}

/// Saves document `id` into `dir` as `show --save` does: each attachment
/// downloaded under its saved name (resuming a partial download an earlier
/// save left), then the proof folder. Returns what was written, the proof
/// folder last.
pub async fn save_document(
    client: &ExchangeClient<Channel>,
    document: &pb::GetDocumentResponse,
    dir: &Path,
    existing: Existing,
) -> Result<Vec<Saved>> {
    let mut saved = evidence::prepare(dir, document)?;
    for (index, (attachment, target)) in document.attachments.iter().zip(&saved).enumerate() {
        let Some(declared) = attachment.r#ref.as_ref() else {
            continue;
        };
        let downloading = bar(declared.size, &format!("downloading {}", declared.name));
        let report = reporter(
            downloading.clone(),
            format!("download of {}", declared.name),
        );
        let done = transfer::download_file(
            client,
            &document.id,
            u32::try_from(index).unwrap_or(u32::MAX),
            declared,
            &target.path,
            existing,
            &report,
        )
        .await;
        downloading.finish_and_clear();
        done?;
    }
    saved.push(evidence::save_proof(dir, document, existing)?);
    Ok(saved)
}
