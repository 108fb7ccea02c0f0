//! `lienthong backup`: an online backup of a running server into a new
//! file, with a progress bar on stderr (when it is a terminal) and the
//! file's SHA-256 at the end; `lienthong restore`: a data directory
//! rebuilt from one, offline, then audited.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;
use serde_json::json;
use tonic::Code;

use super::connection::{self, Connection};
use super::error::{CliError, Result};
use super::output::{self, outln, print_json};
use crate::backup::format::{Counts, Reader};
use crate::pb;
use crate::pb::operations_client::OperationsClient;

#[derive(Args)]
pub struct BackupArgs {
    #[command(flatten)]
    pub conn: Connection,
    /// The backup file to create; an existing file is never overwritten.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Also take the private keys: the service's key that signs receipts
    /// and, with the development PKI, its CA's, server's and clients' keys.
    /// Keep such a file as safe as the server itself.
    #[arg(long)]
    pub include_secrets: bool,
}

#[derive(Args)]
pub struct RestoreArgs {
    /// The backup file.
    #[arg(long, value_name = "FILE")]
    pub from: PathBuf,
    /// The data directory to rebuild: it must not exist or be empty.
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    /// Print the summary as one JSON document.
    #[arg(long)]
    pub json: bool,
}

pub async fn backup(args: BackupArgs) -> Result {
    let channel = connection::channel(&args.conn).await?;
    let mut client = OperationsClient::new(channel);
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&args.out)
        .map_err(|e| {
            CliError::io(args.out.display(), &e)
                .with_hint("a backup never overwrites a file: give another --out")
        })?;
    let taken = download(&mut client, file, args.include_secrets).await;
    // Checked as restore would check it: what arrived is whole.
    let checked = match taken {
        Ok(taken) => verify(&args.out).await.map(|counts| (taken, counts)),
        Err(e) => Err(e),
    };
    let ((bytes, sha256), counts) = match checked {
        Ok(done) => done,
        Err(e) => {
            // Ours, and not a backup: leave nothing that looks like one.
            let _ = std::fs::remove_file(&args.out);
            return Err(e);
        }
    };
    let sha256 = hex::encode(sha256);
    if args.conn.json {
        print_json(&json!({
            "file": args.out,
            "bytes": bytes,
            "sha256": sha256,
            "entries": counts.entries,
            "attachments": counts.attachments,
            "files": counts.files,
            "include_secrets": args.include_secrets,
        }));
    } else {
        outln!(
            "{} ({bytes} bytes): {}; private keys {}",
            args.out.display(),
            holds(&counts),
            if args.include_secrets {
                "included: keep it as safe as the server"
            } else {
                "not included"
            }
        );
        outln!("sha256: {sha256}");
    }
    Ok(())
}

/// Streams the backup into `file`, synced; returns its size and SHA-256.
async fn download(
    client: &mut OperationsClient<tonic::transport::Channel>,
    file: std::fs::File,
    include_secrets: bool,
) -> Result<(u64, [u8; 32])> {
    let mut stream = client
        .backup(pb::BackupRequest { include_secrets })
        .await?
        .into_inner();
    let bar =
        indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{bar:40} {bytes} of at most ~{total_bytes}, {bytes_per_sec}",
    ) {
        bar.set_style(style);
    }
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
    let mut bytes = 0u64;
    let write_error = |e: std::io::Error| CliError::io("writing the backup file", &e);
    let received = async {
        while let Some(chunk) = stream.message().await? {
            if chunk.estimated_bytes > 0 {
                bar.set_length(chunk.estimated_bytes);
            }
            out.write_all(&chunk.data).map_err(write_error)?;
            digest.update(&chunk.data);
            bytes += chunk.data.len() as u64;
            // The estimate is the store's size on disk, which sled's log
            // makes two to four times its data: the bar ends early. Rarely,
            // the file may grow past it.
            if bar.length().is_some_and(|len| bytes > len) {
                bar.set_length(bytes);
            }
            bar.set_position(bytes);
        }
        Ok::<_, CliError>(())
    }
    .await;
    bar.finish_and_clear();
    received?;
    let file = out.into_inner().map_err(|e| write_error(e.into_error()))?;
    file.sync_all().map_err(write_error)?;
    let mut sha256 = [0u8; 32];
    sha256.copy_from_slice(digest.finish().as_ref());
    Ok((bytes, sha256))
}

/// Reads the file through as a restore would; its counts.
async fn verify(path: &Path) -> Result<Counts> {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || {
        let file = std::fs::File::open(&path).map_err(|e| CliError::io(path.display(), &e))?;
        let damaged = |e: crate::backup::format::FormatError| {
            CliError::new(
                Code::DataLoss,
                format!("the backup received does not check out: {e}"),
            )
        };
        let mut reader =
            Reader::open(std::io::BufReader::with_capacity(1 << 20, file)).map_err(damaged)?;
        while reader.next_record().map_err(damaged)?.is_some() {}
        Ok(reader.counts())
    })
    .await
    .map_err(|e| CliError::new(Code::Internal, format!("checking the backup failed: {e}")))?
}

/// What a backup holds, in words.
fn holds(counts: &Counts) -> String {
    format!(
        "{}, {}, {}",
        output::plural(counts.entries, "store entry", "store entries"),
        output::plural(counts.attachments, "attachment file", "attachment files"),
        output::plural(
            counts.files,
            "key or certificate file",
            "key or certificate files"
        ),
    )
}

pub async fn restore(args: RestoreArgs) -> Result {
    let (from, data) = (args.from.clone(), args.data.clone());
    let restored = tokio::task::spawn_blocking(move || crate::backup::restore(&from, &data))
        .await
        .map_err(|e| CliError::new(Code::Internal, format!("the restore failed: {e}")))?
        .map_err(|e| {
            let code = match e {
                crate::backup::RestoreError::NotEmpty(_) => Code::AlreadyExists,
                crate::backup::RestoreError::Open(..) => Code::NotFound,
                crate::backup::RestoreError::Refused(..) => Code::DataLoss,
                crate::backup::RestoreError::Write(..) => Code::Internal,
            };
            CliError::new(code, e.to_string())
        })?;
    let counts = restored.counts;
    let audit = restored.audit.as_ref();
    if args.json {
        print_json(&json!({
            "data": args.data,
            "created_at": restored.header.created_at,
            "entries": counts.entries,
            "attachments": counts.attachments,
            "files": counts.files,
            "include_secrets": restored.header.include_secrets,
            "audit": match audit {
                Ok(report) => json!({
                    "leaves": report.leaves,
                    "checkpoints": report.checkpoints,
                    "problem": report.problem,
                }),
                Err(e) => json!({"error": e}),
            },
        }));
    } else {
        outln!(
            "restored {} into {}: {} (backup taken {})",
            args.from.display(),
            args.data.display(),
            holds(&counts),
            restored.header.created_at
        );
        if let Ok(report) = audit {
            if report.problem.is_none() {
                outln!(
                    "audit ok: {} and {} recomputed; everything stored matches",
                    output::plural(report.leaves, "leaf", "leaves"),
                    output::plural(report.checkpoints, "checkpoint", "checkpoints")
                );
            }
        }
    }
    if !restored.header.include_secrets {
        output::note(&format!(
            "note: the backup holds no private keys; before serving {}, put the service's key back as {}/{} (the server refuses to start without it), and give production certificates (--tls-cert, --tls-key, --client-ca)",
            args.data.display(),
            args.data.display(),
            crate::receipt::PRIVATE_FILE
        ));
    }
    match audit {
        Ok(report) => match &report.problem {
            None => Ok(()),
            Some(problem) => Err(CliError::new(
                Code::DataLoss,
                format!(
                    "restored, but the audit failed after {} good leaves: {problem}",
                    report.leaves
                ),
            )),
        },
        Err(e) => Err(CliError::new(
            Code::Internal,
            format!("restored, but the audit could not run: {e}"),
        )),
    }
}
