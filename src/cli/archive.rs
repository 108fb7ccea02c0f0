//! `lienthong archive`: inclusion and consistency proofs, checkpoints,
//! search and export of the caller's documents, and the offline audit.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use serde_json::{json, Value};
use tonic::transport::Channel;

use super::connection::{connect, Connection};
use super::error::{CliError, Result};
use super::files;
use super::output::{self, outln, print_json};
use crate::archive::proof::{ConsistencyFile, InclusionFile, ProofFile};
use crate::client::{inbox_pages, outbox_pages};
use crate::evidence::Existing;
use crate::exchange::MAX_PAGE_SIZE;
use crate::pb;
use crate::pb::exchange_client::ExchangeClient;

#[derive(Subcommand)]
pub enum ArchiveCommand {
    /// Write the inclusion proof of a document you sent or received.
    Prove {
        #[command(flatten)]
        conn: Connection,
        /// Document id.
        id: String,
        /// Prove it in the checkpoint of this size; default the latest.
        #[arg(long, default_value_t = 0)]
        tree_size: u64,
        /// Prove this leaf about the document instead of the document's own:
        /// a status change or the revocation (its leaf, as `history` shows).
        #[arg(long, value_name = "INDEX")]
        leaf: Option<u64>,
        /// Where to write the proof (JSON), to check with `lienthong verify FILE`.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Overwrite FILE if it exists.
        #[arg(long)]
        force: bool,
    },
    /// Write the proof that the checkpoint of NEW leaves extends that of OLD.
    Consistency {
        #[command(flatten)]
        conn: Connection,
        /// Size (leaves) of the older checkpoint.
        old: u64,
        /// Size (leaves) of the newer checkpoint.
        new: u64,
        /// Where to write the proof (JSON), to check with `lienthong verify FILE`.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Overwrite FILE if it exists.
        #[arg(long)]
        force: bool,
    },
    /// Show the latest signed checkpoint, or make one now with --fresh.
    Checkpoint {
        #[command(flatten)]
        conn: Connection,
        /// Sign a checkpoint of the archive as it is now, instead of showing
        /// the latest one.
        #[arg(long)]
        fresh: bool,
    },
    /// Find documents you sent or received.
    Search {
        #[command(flatten)]
        conn: Connection,
        #[command(flatten)]
        filter: ArchiveFilter,
    },
    /// Export documents you sent or received (attachments, signatures,
    /// receipts, inclusion proofs) as a self-contained folder.
    Export {
        #[command(flatten)]
        conn: Connection,
        #[command(flatten)]
        filter: ArchiveFilter,
        /// The folder to create; it must not exist, or be empty.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Write into DIR even if it holds files (an earlier export's are
        /// replaced; a symbolic link never is, nor written through).
        #[arg(long)]
        force: bool,
    },
    /// Recompute the whole archive of a stopped server's data directory (or
    /// a copy), or of a PostgreSQL store, and report the first mismatch.
    Audit {
        /// The data directory of a stopped server, or a copy of it (with
        /// --store: the directory whose service key signed the archive).
        #[arg(long, default_value = crate::defaults::DATA_DIR)]
        data: PathBuf,
        /// The PostgreSQL database the servers keep the store in
        /// (postgres://…), as given to `serve --store`; it may be audited
        /// while they run.
        #[arg(long, value_name = "URL")]
        store: Option<String>,
    },
}

/// Which documents: every condition given must hold.
#[derive(Args, Clone, Default)]
pub struct ArchiveFilter {
    /// Sent by this organisation (code or alias).
    #[arg(long)]
    pub sender: Option<String>,
    /// Received by this organisation (code or alias).
    #[arg(long)]
    pub recipient: Option<String>,
    /// Number (số).
    #[arg(long)]
    pub number: Option<u64>,
    /// Notation (ký hiệu), e.g. CT-UBND.
    #[arg(long)]
    pub notation: Option<String>,
    /// Document type: code, abbreviation or Vietnamese name (see `lienthong types`).
    #[arg(long = "type")]
    pub document_type: Option<String>,
    /// Date of issue from (YYYY-MM-DD, inclusive).
    #[arg(long)]
    pub from: Option<String>,
    /// Date of issue until (YYYY-MM-DD, inclusive).
    #[arg(long)]
    pub until: Option<String>,
}

pub async fn run(command: ArchiveCommand) -> Result {
    match command {
        ArchiveCommand::Prove {
            conn,
            id,
            tree_size,
            leaf,
            out,
            force,
        } => {
            let mut client = connect(&conn).await?;
            let proof = client
                .get_inclusion_proof(pb::GetInclusionProofRequest {
                    document_id: id.clone(),
                    tree_size,
                    leaf_index: leaf,
                })
                .await?
                .into_inner();
            let key = service_key(&mut client).await?;
            files::refuse_to_overwrite(std::slice::from_ref(&out), force)?;
            ProofFile::Inclusion(
                InclusionFile::new(&id, &proof, Some(&key)).map_err(|e| e.to_string())?,
            )
            .write(&out, files::existing(force))?;
            if conn.json {
                print_json(&json!({
                    "document_id": id,
                    "leaf_index": proof.leaf_index,
                    "tree_size": proof.tree_size,
                    "out": out.display().to_string(),
                }));
            } else {
                outln!(
                    "leaf {} of {} written to {}",
                    proof.leaf_index,
                    proof.tree_size,
                    out.display()
                );
            }
            Ok(())
        }
        ArchiveCommand::Consistency {
            conn,
            old,
            new,
            out,
            force,
        } => {
            let mut client = connect(&conn).await?;
            let proof = client
                .get_consistency_proof(pb::GetConsistencyProofRequest {
                    first_size: old,
                    second_size: new,
                })
                .await?
                .into_inner();
            let key = service_key(&mut client).await?;
            files::refuse_to_overwrite(std::slice::from_ref(&out), force)?;
            ProofFile::Consistency(
                ConsistencyFile::new(&proof, Some(&key)).map_err(|e| e.to_string())?,
            )
            .write(&out, files::existing(force))?;
            if conn.json {
                print_json(&json!({
                    "old_size": old,
                    "new_size": new,
                    "out": out.display().to_string(),
                }));
            } else {
                outln!("consistency {old} -> {new} written to {}", out.display());
            }
            Ok(())
        }
        ArchiveCommand::Checkpoint { conn, fresh } => {
            let mut client = connect(&conn).await?;
            let signed = client
                .get_checkpoint(pb::GetCheckpointRequest {
                    tree_size: 0,
                    fresh,
                })
                .await?
                .into_inner();
            let c = <pb::Checkpoint as prost::Message>::decode(signed.checkpoint.as_slice())
                .map_err(|e| e.to_string())?;
            let json = json!({
                "tree_size": c.tree_size,
                "root_hash": hex::encode(&c.root_hash),
                "timestamp": output::at(c.timestamp_ms),
                "timestamp_ms": c.timestamp_ms,
                "service_key_id": c.service_key_id,
                "signature": hex::encode(&signed.signature),
            });
            if conn.json {
                print_json(&json);
            } else {
                outln!(
                    "tree size {}, root {}, signed at {} by service key {}",
                    c.tree_size,
                    hex::encode(&c.root_hash),
                    crate::clock::format_vietnam(c.timestamp_ms),
                    c.service_key_id
                );
            }
            Ok(())
        }
        ArchiveCommand::Search { conn, filter } => {
            let mut client = connect(&conn).await?;
            let found = search(&mut client, &filter).await?;
            print_found(&found, conn.json);
            Ok(())
        }
        ArchiveCommand::Export {
            conn,
            filter,
            out,
            force,
        } => {
            files::refuse_to_merge(&out, force)?;
            let mut client = connect(&conn).await?;
            let found = search(&mut client, &filter).await?;
            let failed = export(&mut client, &found, &out, files::existing(force)).await?;
            let exported = found.len() - failed.len();
            if conn.json {
                print_json(&json!({
                    "documents": exported,
                    "failed": failed.iter().map(|(id, e)| json!({"id": id, "error": e})).collect::<Vec<_>>(),
                    "out": out.display().to_string(),
                }));
            } else {
                outln!(
                    "{} exported to {}",
                    output::plural(exported as u64, "document", "documents"),
                    out.display()
                );
            }
            export_outcome(&failed, &out)
        }
        ArchiveCommand::Audit { data, store } => {
            let engine = super::serve::store_engine(store.as_deref())?;
            let report =
                crate::archive::audit::audit_store(&data, &engine).map_err(|e| e.to_string())?;
            match report.problem {
                None => {
                    outln!(
                        "ok: {} and {} recomputed; everything stored matches",
                        output::plural(report.leaves, "leaf", "leaves"),
                        output::plural(report.checkpoints, "checkpoint", "checkpoints")
                    );
                    Ok(())
                }
                Some(problem) => Err(CliError::new(
                    tonic::Code::DataLoss,
                    format!(
                        "audit failed after {} good leaves: {problem}",
                        report.leaves
                    ),
                )),
            }
        }
    }
}

/// The service's public key, as the server offers it (proof files carry it
/// for reference; `verify` checks against the reader's own trusted copy).
async fn service_key(client: &mut ExchangeClient<Channel>) -> Result<pb::ServiceKey> {
    let keys = client.get_keys(pb::GetKeysRequest {}).await?.into_inner();
    keys.service_key
        .ok_or_else(|| "the server's answer has no service key; nothing was written".into())
}

/// A document found in the caller's mailboxes, with its recipients.
pub struct Found {
    pub summary: pb::DocumentSummary,
    pub recipients: Vec<pb::Organization>,
    pub received: bool,
}

fn names(o: &pb::Organization, name: &str) -> bool {
    o.code == name || o.alias == name
}

/// Walks the caller's inbox and outbox and keeps what matches. The server
/// only ever shows a caller its own documents, so this is the caller's
/// archive, not everyone's.
async fn search(
    client: &mut ExchangeClient<Channel>,
    filter: &ArchiveFilter,
) -> Result<Vec<Found>> {
    let me = client
        .get_directory(pb::GetDirectoryRequest {})
        .await?
        .into_inner()
        .caller;
    let mut found = Vec::new();
    for e in inbox_pages(client, String::new(), MAX_PAGE_SIZE, true)
        .await?
        .0
    {
        if let Some(summary) = e.document {
            found.push(Found {
                summary,
                recipients: me.clone().into_iter().collect(),
                received: true,
            });
        }
    }
    for e in outbox_pages(client, String::new(), MAX_PAGE_SIZE, true)
        .await?
        .0
    {
        if let Some(summary) = e.document {
            let recipients = e
                .deliveries
                .into_iter()
                .filter_map(|d| d.recipient)
                .collect();
            found.push(Found {
                summary,
                recipients,
                received: false,
            });
        }
    }
    let wanted_type = filter
        .document_type
        .as_deref()
        .map(|t| super::types::code_of("--type", t))
        .transpose()?;
    for (field, date) in [("--from", &filter.from), ("--until", &filter.until)] {
        if let Some(d) = date {
            crate::clock::parse_date(d)
                .ok_or_else(|| format!("{field} {d:?} is not a date YYYY-MM-DD"))?;
        }
    }
    found.retain(|f| {
        let s = &f.summary;
        filter
            .sender
            .as_ref()
            .is_none_or(|n| s.sender.as_ref().is_some_and(|o| names(o, n)))
            && filter
                .recipient
                .as_ref()
                .is_none_or(|n| f.recipients.iter().any(|o| names(o, n)))
            && filter.number.is_none_or(|n| s.number == n)
            && filter.notation.as_ref().is_none_or(|n| &s.notation == n)
            && wanted_type
                .as_ref()
                .is_none_or(|t| output::type_code(&s.document_type) == *t)
            && filter
                .from
                .as_ref()
                .is_none_or(|d| s.promulgation_date.as_str() >= d.as_str())
            && filter
                .until
                .as_ref()
                .is_none_or(|d| s.promulgation_date.as_str() <= d.as_str())
    });
    found.sort_by_key(|f| f.summary.accepted_at_ms);
    Ok(found)
}

/// `DIR/<id>/`: attachments, `lienthong-proof/`, `inclusion.json`; and
/// `DIR/index.json`, `DIR/checkpoint.json`, `DIR/service-key.pub.pem`.
///
/// A document that cannot be exported does not stop the others: it is
/// reported on stderr and listed under `failed` in the index, which is
/// written in any case. Returns those documents and why.
async fn export(
    client: &mut ExchangeClient<Channel>,
    found: &[Found],
    out: &Path,
    existing: Existing,
) -> Result<Vec<(String, String)>> {
    crate::evidence::create_dir_all(out)?;
    let service_key = service_key(client).await?;
    let mut index = Vec::new();
    let mut failed = Vec::new();
    for f in found {
        match export_one(client, f, out, &service_key, existing).await {
            Ok(entry) => index.push(entry),
            Err(e) => {
                eprintln!(
                    "warning: document {} not exported: {}",
                    f.summary.id, e.message
                );
                failed.push((f.summary.id.clone(), e.message));
            }
        }
    }
    let checkpoint = client
        .get_checkpoint(pb::GetCheckpointRequest {
            tree_size: 0,
            fresh: false,
        })
        .await?
        .into_inner();
    let failed_json: Vec<Value> = failed
        .iter()
        .map(|(id, error)| json!({"id": id, "error": error}))
        .collect();
    files::write_json(
        &out.join("index.json"),
        &json!({"documents": index, "failed": failed_json}),
        existing,
    )?;
    files::write_json(
        &out.join("checkpoint.json"),
        &json!({"bytes": hex::encode(&checkpoint.checkpoint), "signature": hex::encode(&checkpoint.signature)}),
        existing,
    )?;
    let pem = pem::encode(&pem::Pem::new("PUBLIC KEY", service_key.public_key));
    crate::evidence::write_file(&out.join("service-key.pub.pem"), pem.as_bytes(), existing)?;
    Ok(failed)
}

/// One document into `out/<id>/`, and its entry in the index.
async fn export_one(
    client: &mut ExchangeClient<Channel>,
    f: &Found,
    out: &Path,
    service_key: &pb::ServiceKey,
    existing: Existing,
) -> Result<Value> {
    let id = &f.summary.id;
    // The id names a folder: a plain name only, whoever sent it.
    crate::document::check_file_name("id", id).map_err(|e| e.to_string())?;
    let dir = out.join(id);
    let document = client
        .get_document(pb::GetDocumentRequest {
            id: id.clone(),
            include_content: false,
        })
        .await?
        .into_inner();
    super::transfers::save_document(client, &document, &dir, existing).await?;
    let proof = client
        .get_inclusion_proof(pb::GetInclusionProofRequest {
            document_id: id.clone(),
            tree_size: 0,
            leaf_index: None,
        })
        .await?
        .into_inner();
    ProofFile::Inclusion(InclusionFile::new(id, &proof, Some(service_key))?)
        .write(&dir.join("inclusion.json"), existing)?;
    Ok(json!({
        "id": id,
        "direction": if f.received { "received" } else { "sent" },
        "sender": f.summary.sender.as_ref().map(|o| o.code.clone()),
        "recipients": f.recipients.iter().map(|o| o.code.clone()).collect::<Vec<_>>(),
        "number": f.summary.number,
        "notation": f.summary.notation,
        "document_type": output::type_code(&f.summary.document_type),
        "promulgation_date": f.summary.promulgation_date,
        "subject": f.summary.subject,
        "accepted_at": output::at(f.summary.accepted_at_ms),
        "accepted_at_ms": f.summary.accepted_at_ms,
        "leaf_index": proof.leaf_index,
    }))
}

/// The export's exit: an error naming the documents left out, if any.
fn export_outcome(failed: &[(String, String)], out: &Path) -> Result {
    if failed.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = failed.iter().map(|(id, _)| id.as_str()).collect();
    Err(CliError::new(
        tonic::Code::Aborted,
        format!(
            "{} not exported: {}; the others are in {}",
            output::plural(failed.len() as u64, "document was", "documents were"),
            ids.join(", "),
            out.display()
        ),
    )
    .with_hint(format!(
        "{} lists each under \"failed\" with the reason",
        out.join("index.json").display()
    )))
}

fn print_found(found: &[Found], as_json: bool) {
    if as_json {
        print_json(&json!({
            "documents": found.iter().map(|f| {
                let mut v = output::summary(&f.summary);
                if let Value::Object(m) = &mut v {
                    m.insert("direction".into(), json!(if f.received { "received" } else { "sent" }));
                    m.insert("recipients".into(), f.recipients.iter().map(|o| json!(o.code)).collect());
                }
                v
            }).collect::<Vec<_>>(),
        }));
        return;
    }
    outln!(
        "{:<32} {:<9} {:<11} {:<14} {:<16} SUBJECT",
        "ID",
        "",
        "DATE",
        "NUMBER",
        "FROM"
    );
    for f in found {
        let s = &f.summary;
        outln!(
            "{:<32} {:<9} {:<11} {:<14} {:<16} {}",
            s.id,
            if f.received { "received" } else { "sent" },
            s.promulgation_date,
            output::so_ky_hieu(s.number, &s.notation),
            output::org_short(&s.sender),
            output::cut(&s.subject, 50)
        );
    }
}
