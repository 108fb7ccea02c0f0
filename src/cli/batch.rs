//! `lienthong send`, and `send --batch DIR|MANIFEST`: many documents on one
//! `SendBatch` stream, each signed, numbered and receipted on its own, each
//! with its own result.
//!
//! A batch is a folder of JSON files, one document each (`*.json`, in name
//! order), or a manifest: one JSON file `{"documents": [...]}`. A document
//! is an object with the names of `send`'s options (`to`, `type`, `number`,
//! `notation`, `subject`, `date`, `attach`, …; see [`DocumentSpec`]); the
//! options given on the command line stand for what it leaves out, and its
//! `attach` paths are relative to its file's folder. Large attachments are
//! uploaded first, each once; a document that cannot be prepared (a file
//! missing, a field wrong) gets its error and is not sent; the others go.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use clap::Args;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::connection::connect;
use super::error::{CliError, Result};
use super::output::{self, outln, print_json};
use super::send::{self, DocumentSpec, SendArgs};
use crate::client;
use crate::pb;

#[derive(Args)]
pub struct SendCommand {
    #[command(flatten)]
    pub send: SendArgs,
    /// Send many documents on one stream: a folder of JSON files, one
    /// document each, or a manifest {"documents": [...]} (README, "Batch
    /// send"); the options above stand for what a document leaves out.
    #[arg(long, value_name = "DIR|MANIFEST")]
    pub batch: Option<PathBuf>,
}

pub async fn run(command: SendCommand) -> Result {
    match command.batch {
        None => send::run(command.send).await,
        Some(batch) => run_batch(command.send, &batch).await,
    }
}

/// One document of a batch, as read.
struct Entry {
    /// Where it came from: the file, or the manifest and its position.
    source: String,
    /// Its folder, for relative attachment paths.
    dir: PathBuf,
    spec: std::result::Result<DocumentSpec, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    documents: Vec<Value>,
}

/// The documents of a folder or a manifest, in order.
fn read_batch(path: &Path) -> Result<Vec<Entry>> {
    let read = |p: &Path| {
        std::fs::read(p).map_err(|e| CliError::io(format!("cannot read {}", p.display()), &e))
    };
    let parse =
        |value: Value| serde_json::from_value::<DocumentSpec>(value).map_err(|e| e.to_string());
    if path.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| CliError::io(format!("cannot read {}", path.display()), &e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json") && p.is_file())
            .collect();
        files.sort();
        return files
            .into_iter()
            .map(|file| {
                let spec = serde_json::from_slice::<Value>(&read(&file)?)
                    .map_err(|e| e.to_string())
                    .and_then(parse);
                Ok(Entry {
                    source: file.display().to_string(),
                    dir: path.to_owned(),
                    spec,
                })
            })
            .collect();
    }
    let manifest: Manifest = serde_json::from_slice(&read(path)?).map_err(|e| {
        format!(
            "{} is neither a folder nor a manifest {{\"documents\": [...]}}: {e}",
            path.display()
        )
    })?;
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    Ok(manifest
        .documents
        .into_iter()
        .enumerate()
        .map(|(i, value)| Entry {
            source: format!("{} document {}", path.display(), i + 1),
            dir: dir.clone(),
            spec: parse(value),
        })
        .collect())
}

/// What became of one document.
enum Outcome {
    Sent(pb::SendResponse),
    Refused(tonic::Code, String),
}

async fn run_batch(args: SendArgs, path: &Path) -> Result {
    let entries = read_batch(path)?;
    if entries.is_empty() {
        return Err(format!("{} holds no document (*.json)", path.display()).into());
    }
    let settings = args.conn.settings()?;
    let from = send::sender(&args, &settings)?;
    let signer = send::signing_key(args.signing_key.as_deref(), &settings, &from)?;
    let defaults = args.spec();
    let signer = Arc::new(signer);
    let client = connect(&args.conn).await?;
    let mut outcomes: Vec<Option<Outcome>> = entries.iter().map(|_| None).collect();
    // Prepared first: headers checked, large attachments uploaded.
    let mut ready = Vec::new();
    for (index, entry) in entries.iter().enumerate() {
        let prepared = match &entry.spec {
            Err(e) => Err(CliError::from(format!("{}: {e}", entry.source))),
            Ok(spec) => prepare(&client, spec.clone().or(&defaults), entry, &from, &args).await,
        };
        match prepared {
            Ok(request) => ready.push((index, request)),
            Err(e) => outcomes[index] = Some(Outcome::Refused(e.code, e.message)),
        }
    }
    // Then streamed: each read, signed and sent in turn; each result comes
    // in the order sent.
    let (requests, stream) = mpsc::channel(4);
    let order: Arc<Mutex<Vec<usize>>> = Arc::default();
    let unsent: Arc<Mutex<Vec<(usize, CliError)>>> = Arc::default();
    let feeder = {
        let (order, unsent) = (order.clone(), unsent.clone());
        tokio::spawn(async move {
            for (index, (header, planned, key)) in ready {
                let request = send::gather(planned).and_then(|attachments| {
                    Ok(client::signed_request(header, attachments, key, &signer)?)
                });
                match request {
                    Ok(request) => {
                        lock(&order).push(index);
                        if requests.send(request).await.is_err() {
                            return;
                        }
                    }
                    Err(e) => lock(&unsent).push((index, e)),
                }
            }
        })
    };
    let mut results = client
        .clone()
        .send_batch(ReceiverStream::new(stream))
        .await?
        .into_inner();
    let ended = loop {
        match results.message().await {
            Ok(Some(result)) => {
                let index = usize::try_from(result.index)
                    .ok()
                    .and_then(|k| lock(&order).get(k).copied());
                let Some(index) = index else { continue };
                outcomes[index] = Some(match result.outcome {
                    Some(pb::send_batch_result::Outcome::Sent(r)) => Outcome::Sent(r),
                    Some(pb::send_batch_result::Outcome::Error(e)) => {
                        Outcome::Refused(tonic::Code::from(e.code), e.message)
                    }
                    None => Outcome::Refused(tonic::Code::Unknown, "no outcome".into()),
                });
            }
            Ok(None) => break None,
            Err(status) => break Some(status),
        }
    };
    let _ = feeder.await;
    for (index, e) in lock(&unsent).drain(..) {
        outcomes[index] = Some(Outcome::Refused(e.code, e.message));
    }
    report(&entries, outcomes, ended, args.conn.json)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The header, attachments and idempotency key of one document, its large
/// attachments uploaded.
async fn prepare(
    client: &pb::exchange_client::ExchangeClient<tonic::transport::Channel>,
    spec: DocumentSpec,
    entry: &Entry,
    from: &str,
    args: &SendArgs,
) -> Result<(pb::Document, Vec<send::Planned>, Option<String>)> {
    let named = |e: CliError| CliError::new(e.code, format!("{}: {}", entry.source, e.message));
    let header = spec.header(from, None).map_err(named)?;
    let paths: Vec<PathBuf> = spec
        .attach
        .iter()
        .flatten()
        .map(|p| entry.dir.join(p))
        .collect();
    let planned = send::plan_attachments(client, &paths, args.sizes.bytes())
        .await
        .map_err(named)?;
    Ok((header, planned, spec.idempotency_key))
}

/// Prints each document's outcome; fails if any was refused or never
/// answered.
fn report(
    entries: &[Entry],
    outcomes: Vec<Option<Outcome>>,
    ended: Option<tonic::Status>,
    as_json: bool,
) -> Result {
    let mut refused = 0usize;
    let mut rows = Vec::new();
    for (entry, outcome) in entries.iter().zip(outcomes) {
        let outcome = outcome.unwrap_or_else(|| match &ended {
            Some(status) => {
                Outcome::Refused(status.code(), format!("not answered: {}", status.message()))
            }
            None => Outcome::Refused(tonic::Code::Unknown, "not answered".into()),
        });
        match outcome {
            Outcome::Sent(r) => {
                if as_json {
                    rows.push(json!({
                        "document": entry.source,
                        "id": r.id,
                        "number": r.number,
                        "edxml_id": r.edxml_id,
                        "accepted_at": output::at(r.accepted_at_ms),
                        "duplicate": r.duplicate,
                        "deliveries": r.deliveries.iter().map(output::delivery).collect::<Vec<_>>(),
                    }));
                } else {
                    outln!(
                        "sent: {} {} ({}, {} recipients){}",
                        r.id,
                        entry.source,
                        r.edxml_id,
                        r.deliveries.len(),
                        if r.duplicate { ", already sent" } else { "" }
                    );
                }
            }
            Outcome::Refused(code, message) => {
                refused += 1;
                let code = super::error::code_name(code);
                if as_json {
                    rows.push(json!({
                        "document": entry.source,
                        "error": {"code": code, "message": message},
                    }));
                } else {
                    outln!("refused: {} {code}: {message}", entry.source);
                }
            }
        }
    }
    if as_json {
        print_json(&json!({
            "sent": entries.len() - refused,
            "refused": refused,
            "results": rows,
        }));
    }
    if refused > 0 {
        return Err(CliError::new(
            tonic::Code::Aborted,
            format!("{refused} of {} documents were not sent", entries.len()),
        )
        .with_hint("fix those and send them again; give each an \"idempotency_key\" to make sending a batch again safe"));
    }
    Ok(())
}
