//! What each command does. Errors are returned as the one line the user
//! reads on stderr.

use std::path::Path;

use tonic::transport::Channel;

use super::output;
use super::{
    ArchiveCommand, ArchiveFilter, BenchArgs, Connection, DirectoryArgs, ListArgs, SecrecyArg,
    SendArgs, ServeArgs, ShowArgs, UrgencyArg, VerifyArgs, WatchArgs,
};
use crate::client::{self, AttachmentFile, ClientConfig};
use crate::directory::Directory;
use crate::exchange::Limits;
use crate::pb;
use crate::pb::exchange_client::ExchangeClient;
use crate::pki::{self, PkiPaths};
use crate::server::{self, ServerConfig, TlsFiles};
use crate::store::StoreOptions;

type Result<T = ()> = std::result::Result<T, String>;

fn status(e: tonic::Status) -> String {
    format!("{:?}: {}", e.code(), e.message())
}

pub async fn serve(args: ServeArgs) -> Result {
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        // A log line that cannot be written (stderr closed) is dropped; the
        // default would report it with eprintln!, which panics.
        .log_internal_errors(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let tls = match (args.tls_cert, args.tls_key, args.client_ca) {
        (Some(cert), Some(key), Some(client_ca)) => Some(TlsFiles {
            cert,
            key,
            client_ca,
        }),
        _ => None,
    };
    let config = ServerConfig {
        data_dir: args.data,
        listen: args.listen,
        directory: args.directory,
        tls,
        signing_keys: args.signing_keys,
        limits: Limits {
            max_document_bytes: args.max_document_bytes,
            max_recipients: args.max_recipients,
        },
        store: StoreOptions {
            cache_bytes: args.cache_mib * 1024 * 1024,
            events_kept: args.events_kept,
            checkpoint_every: args.checkpoint_every,
        },
        checkpoint_interval: std::time::Duration::from_secs_f64(args.checkpoint_seconds.max(0.1)),
        notify: crate::notify::NotifyOptions {
            heartbeat: std::time::Duration::from_secs_f64(args.heartbeat_seconds.max(0.01)),
            buffer: args.event_buffer,
        },
    };
    let running = server::start(config).await.map_err(|e| e.to_string())?;
    if let Some(dir) = &running.dev_pki {
        tracing::info!(
            "development PKI: {} (clients: lienthong <command> --pki {} --as <org>)",
            dir.display(),
            dir.display()
        );
    }
    wait_for_signal().await;
    tracing::info!("shutting down: finishing requests in flight, then flushing");
    running.shutdown().await.map_err(|e| e.to_string())?;
    tracing::info!("stopped");
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

async fn connect(conn: &Connection) -> Result<ExchangeClient<Channel>> {
    let paths = PkiPaths::new(&conn.pki);
    let (cert, key) = match (&conn.cert, &conn.key, &conn.as_org) {
        (Some(cert), Some(key), _) => (cert.clone(), key.clone()),
        (_, _, Some(org)) => pki::find_client(&paths, org).map_err(|e| e.to_string())?,
        _ => return Err("say who you are: --as ORG (or LIENTHONG_AS), or --cert and --key".into()),
    };
    let config = ClientConfig {
        server: conn.server.clone(),
        ca_cert: conn.ca_cert.clone().unwrap_or_else(|| paths.ca_cert()),
        cert,
        key,
    };
    client::connect(&config).await
}

pub async fn send(args: SendArgs) -> Result {
    let from = match (&args.conn.as_org, &args.conn.cert) {
        (Some(org), _) => org.clone(),
        (None, Some(cert)) => org_of_certificate(cert)?,
        (None, None) => {
            return Err("send needs --as ORG (or LIENTHONG_AS): the organisation sending".into())
        }
    };
    let mut attachments = Vec::with_capacity(args.attach.len());
    for path in &args.attach {
        attachments.push(AttachmentFile::read(path)?);
    }
    let header = pb::Document {
        from: from.clone(),
        to: args.to,
        number: args.number,
        notation: args.notation,
        place: args.place,
        promulgation_date: args
            .date
            .unwrap_or_else(|| crate::clock::format_date(crate::clock::today())),
        document_type: args.document_type,
        subject: args.subject,
        content: args.content,
        signer: Some(pb::Signer {
            competence: args.competence,
            position: args.signer_position,
            full_name: args.signer_name,
        }),
        due_date: args.due.unwrap_or_default(),
        urgency: match args.urgency {
            UrgencyArg::Normal => pb::Urgency::Normal,
            UrgencyArg::Khan => pb::Urgency::Khan,
            UrgencyArg::ThuongKhan => pb::Urgency::ThuongKhan,
            UrgencyArg::HoaToc => pb::Urgency::HoaToc,
        } as i32,
        secrecy: match args.secrecy {
            SecrecyArg::None => pb::Secrecy::None,
            SecrecyArg::Mat => pb::Secrecy::Mat,
            SecrecyArg::ToiMat => pb::Secrecy::ToiMat,
            SecrecyArg::TuyetMat => pb::Secrecy::TuyetMat,
        } as i32,
        reply_to: args.reply_to.unwrap_or_default(),
        to_places: args.to_place,
        attachments: Vec::new(),
    };
    let signer = match &args.signing_key {
        Some(file) => {
            let text = std::fs::read_to_string(file)
                .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
            crate::crypto::SigningKey::from_pem(&text)
                .map_err(|e| format!("{}: {e}", file.display()))?
        }
        None => pki::find_signing_key(&PkiPaths::new(&args.conn.pki), &from)
            .map_err(|e| format!("{e} (or give --signing-key FILE)"))?,
    };
    let request = client::send_request(header, attachments, args.idempotency_key, &signer)?;
    let mut client = connect(&args.conn).await?;
    let response = client.send(request).await.map_err(status)?.into_inner();
    output::sent(&response, args.conn.json);
    Ok(())
}

/// The organisation a PEM client certificate names, for `send --cert` without `--as`.
fn org_of_certificate(path: &Path) -> Result<String> {
    use rustls::pki_types::{pem::PemObject, CertificateDer};
    let cert = CertificateDer::from_pem_file(path)
        .map_err(|e| format!("cannot read a certificate from {}: {e}", path.display()))?;
    pki::org_from_certificate(&cert)
        .map(|code| code.to_string())
        .map_err(|e| format!("{}: {e}; give --as ORG", path.display()))
}

/// Pages through a listing from `token`: one page, or every page with
/// `all`. Returns the entries and the token to continue from ("" at the end).
async fn pages<T, Fut>(
    mut token: String,
    page_size: u32,
    all: bool,
    fetch: impl Fn(pb::ListMailboxRequest) -> Fut,
) -> Result<(Vec<T>, String)>
where
    Fut: std::future::Future<Output = std::result::Result<(Vec<T>, String), tonic::Status>>,
{
    let mut entries = Vec::new();
    loop {
        let request = pb::ListMailboxRequest {
            page_size,
            page_token: token,
        };
        let (page, next) = fetch(request).await.map_err(status)?;
        entries.extend(page);
        token = next;
        if !all || token.is_empty() {
            return Ok((entries, token));
        }
    }
}

async fn inbox_pages(
    client: &ExchangeClient<Channel>,
    token: String,
    page_size: u32,
    all: bool,
) -> Result<(Vec<pb::InboxEntry>, String)> {
    pages(token, page_size, all, |request| {
        let mut client = client.clone();
        async move {
            let page = client.list_inbox(request).await?.into_inner();
            Ok((page.entries, page.next_page_token))
        }
    })
    .await
}

async fn outbox_pages(
    client: &ExchangeClient<Channel>,
    token: String,
    page_size: u32,
    all: bool,
) -> Result<(Vec<pb::OutboxEntry>, String)> {
    pages(token, page_size, all, |request| {
        let mut client = client.clone();
        async move {
            let page = client.list_outbox(request).await?.into_inner();
            Ok((page.entries, page.next_page_token))
        }
    })
    .await
}

pub async fn inbox(args: ListArgs) -> Result {
    let client = connect(&args.conn).await?;
    let (entries, next) =
        inbox_pages(&client, args.page_token.clone(), args.page_size, args.all).await?;
    output::inbox(&entries, &next, args.conn.json);
    Ok(())
}

pub async fn outbox(args: ListArgs) -> Result {
    let client = connect(&args.conn).await?;
    let (entries, next) =
        outbox_pages(&client, args.page_token.clone(), args.page_size, args.all).await?;
    output::outbox(&entries, &next, args.conn.json);
    Ok(())
}

pub async fn show(args: ShowArgs) -> Result {
    let mut client = connect(&args.conn).await?;
    let request = pb::GetDocumentRequest {
        id: args.id.clone(),
        include_content: args.save.is_some(),
    };
    let document = client
        .get_document(request)
        .await
        .map_err(status)?
        .into_inner();
    let mut saved = Vec::new();
    if let Some(dir) = &args.save {
        saved = save_attachments(dir, &document)?;
        let proof = crate::evidence::save(dir, &document).map_err(|e| e.to_string())?;
        saved.push(proof.display().to_string());
    }
    output::document(&document, &saved, args.conn.json);
    Ok(())
}

/// Writes each attachment under its own name, after checking again that the
/// name is a plain file name: the server checks it too, but a client does
/// not write outside DIR on anyone's word.
fn save_attachments(dir: &Path, document: &pb::GetDocumentResponse) -> Result<Vec<String>> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut saved = Vec::new();
    for (i, attachment) in document.attachments.iter().enumerate() {
        let name = attachment
            .r#ref
            .as_ref()
            .map(|r| r.name.as_str())
            .unwrap_or_default();
        crate::document::check_file_name(&format!("attachments[{i}].name"), name)
            .map_err(|e| format!("refusing to save: {e}"))?;
        if name == crate::evidence::PROOF_DIR {
            return Err(format!(
                "refusing to save: an attachment is named {name:?}, the folder the proof goes in"
            ));
        }
        let path = dir.join(name);
        std::fs::write(&path, &attachment.content)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        saved.push(path.display().to_string());
    }
    Ok(saved)
}

pub async fn directory(args: DirectoryArgs) -> Result {
    let mut client = connect(&args.conn).await?;
    let response = client
        .get_directory(pb::GetDirectoryRequest {})
        .await
        .map_err(status)?
        .into_inner();
    output::directory(&response, args.conn.json);
    Ok(())
}

pub fn pki_init(dir: &Path, directory: Option<&Path>) -> Result {
    let directory = Directory::load(directory).map_err(|e| e.to_string())?;
    let paths = PkiPaths::new(dir);
    let report = pki::ensure_dev_pki(&paths, &directory).map_err(|e| e.to_string())?;
    println!(
        "{}: {} CA, {} new client certificates",
        dir.display(),
        if report.created_ca {
            "created the"
        } else {
            "kept the existing"
        },
        report.issued_clients
    );
    Ok(())
}

pub async fn bench(args: BenchArgs) -> Result {
    if args.compare_jetstream {
        #[cfg(feature = "jetstream")]
        {
            let report = crate::compare::run(args.rounds, args.seconds).await?;
            println!(
                "{}",
                serde_json::to_string_pretty(&report).unwrap_or_default()
            );
            return Ok(());
        }
        #[cfg(not(feature = "jetstream"))]
        return Err("this build has no JetStream client: run `cargo run --release --features jetstream -- bench --compare-jetstream`".into());
    }
    if args.archive_costs {
        let dir = tempfile::tempdir_in(&args.ceiling_dir).map_err(|e| e.to_string())?;
        let engine = crate::store::open_engine(dir.path(), &StoreOptions::default())
            .map_err(|e| e.to_string())?;
        let rows = crate::store::archive_costs(engine.as_ref(), &[1_000, 100_000, 1_000_000])
            .map_err(|e| e.to_string())?;
        let json: Vec<_> = rows
            .iter()
            .map(|c| {
                serde_json::json!({
                    "leaves": c.leaves,
                    "append_us": c.append_us,
                    "inclusion_proof_us": c.inclusion_proof_us,
                    "inclusion_proof_node_reads": c.inclusion_proof_node_reads,
                    "consistency_proof_us": c.consistency_proof_us,
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json).unwrap_or_default()
        );
        return Ok(());
    }
    if args.ceiling {
        let rsa = match &args.rsa_key {
            Some(file) => Some(
                std::fs::read_to_string(file)
                    .map_err(|e| format!("cannot read {}: {e}", file.display()))?,
            ),
            None => None,
        };
        let figures = crate::bench::ceilings(&args.ceiling_dir, rsa.as_deref())?;
        println!(
            "{}",
            serde_json::to_string_pretty(&figures).unwrap_or_default()
        );
        return Ok(());
    }
    let options = crate::bench::BenchOptions {
        server: args.server,
        pki: args.pki,
        clients: args.clients,
        duration: std::time::Duration::from_secs_f64(args.seconds.max(0.1)),
        count: args.count,
        size: args.size,
        to: args.to,
        senders: args.senders,
        subscribers: args.subscribers,
        inbox_pages: args.operation == "inbox",
        server_pid: args.server_pid,
    };
    let report = crate::bench::run(&options).await?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report.to_json(&options)).unwrap_or_default()
        );
    } else {
        print!("{}", report.to_text(&options));
    }
    Ok(())
}

/// `verify DIR` (saved evidence) or `verify FILE` (a proof file), against
/// the keys the user trusts; never those inside what is checked.
pub fn verify(args: VerifyArgs) -> Result {
    let trusted = crate::evidence::TrustedKeys::resolve(
        args.service_key.as_deref(),
        args.keys.as_deref(),
        &args.pki,
    )
    .map_err(|e| e.to_string())?;
    let proof_file = args.dir.is_file();
    let checks = if proof_file {
        crate::archive::proof::ProofFile::read(&args.dir)
            .map_err(|e| e.to_string())?
            .check(&trusted.service_key)
    } else {
        crate::evidence::verify(&args.dir, &trusted).map_err(|e| e.to_string())?
    };
    output::checks(
        &checks,
        !proof_file && trusted.registry.is_none(),
        args.json,
    );
    match checks.iter().filter(|c| !c.ok).count() {
        0 => Ok(()),
        n => Err(format!(
            "verification failed: {n} of {} checks ({})",
            checks.len(),
            checks
                .iter()
                .filter(|c| !c.ok)
                .map(|c| c.subject.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// Follows the mailbox: on UNAVAILABLE (server restarting) or
/// RESOURCE_EXHAUSTED (we read too slowly) it resumes after the last event
/// printed, so nothing is printed twice or skipped; OUT_OF_RANGE ends it.
pub async fn watch(args: WatchArgs) -> Result {
    let mut last = args.after;
    let mut client: Option<ExchangeClient<Channel>> = None;
    loop {
        let mut c = match client.take() {
            Some(c) => c,
            None => match connect(&args.conn).await {
                Ok(c) => c,
                Err(e) if last.is_some() => {
                    eprintln!("watch: {e}; retrying");
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    continue;
                }
                Err(e) => return Err(e),
            },
        };
        let request = pb::SubscribeRequest {
            after_seq: last.unwrap_or(0),
            from_now: last.is_none(),
        };
        let outcome: std::result::Result<(), tonic::Status> = match c.subscribe(request).await {
            Ok(response) => {
                let mut stream = response.into_inner();
                loop {
                    match stream.message().await {
                        Ok(Some(item)) => match item.item {
                            Some(pb::subscribe_response::Item::Event(event)) => {
                                last = Some(event.seq);
                                output::event(&event, args.conn.json);
                            }
                            Some(pb::subscribe_response::Item::Heartbeat(beat)) => {
                                if last.is_none() {
                                    last = Some(beat.latest_seq);
                                }
                                if args.heartbeats {
                                    output::heartbeat(&beat, args.conn.json);
                                }
                            }
                            None => {}
                        },
                        Ok(None) => break Err(tonic::Status::unavailable("the stream ended")),
                        Err(status) => break Err(status),
                    }
                }
            }
            Err(status) => Err(status),
        };
        // The channel reconnects by itself; keep it.
        client = Some(c);
        let Err(status) = outcome else { continue };
        match status.code() {
            tonic::Code::Unavailable
            | tonic::Code::ResourceExhausted
            | tonic::Code::Unknown
            | tonic::Code::Cancelled => {
                eprintln!(
                    "watch: {}; resuming after {}",
                    status.message(),
                    last.unwrap_or(0)
                );
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
            _ => return Err(self::status(status)),
        }
    }
}

fn write_json(path: &Path, value: &serde_json::Value) -> Result {
    let text = serde_json::to_string_pretty(value).map_err(|e| e.to_string())?;
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

pub async fn archive(command: ArchiveCommand) -> Result {
    match command {
        ArchiveCommand::Prove {
            conn,
            id,
            tree_size,
            out,
        } => {
            let mut client = connect(&conn).await?;
            let proof = client
                .get_inclusion_proof(pb::GetInclusionProofRequest {
                    document_id: id.clone(),
                    tree_size,
                })
                .await
                .map_err(status)?
                .into_inner();
            let keys = client
                .get_keys(pb::GetKeysRequest {})
                .await
                .map_err(status)?
                .into_inner();
            crate::archive::proof::ProofFile::Inclusion(
                crate::archive::proof::InclusionFile::new(&id, &proof, keys.service_key.as_ref())
                    .map_err(|e| e.to_string())?,
            )
            .write(&out)
            .map_err(|e| e.to_string())?;
            println!(
                "leaf {} of {} written to {}",
                proof.leaf_index,
                proof.tree_size,
                out.display()
            );
            Ok(())
        }
        ArchiveCommand::Consistency {
            conn,
            old,
            new,
            out,
        } => {
            let mut client = connect(&conn).await?;
            let proof = client
                .get_consistency_proof(pb::GetConsistencyProofRequest {
                    first_size: old,
                    second_size: new,
                })
                .await
                .map_err(status)?
                .into_inner();
            let keys = client
                .get_keys(pb::GetKeysRequest {})
                .await
                .map_err(status)?
                .into_inner();
            crate::archive::proof::ProofFile::Consistency(
                crate::archive::proof::ConsistencyFile::new(&proof, keys.service_key.as_ref())
                    .map_err(|e| e.to_string())?,
            )
            .write(&out)
            .map_err(|e| e.to_string())?;
            println!("consistency {old} -> {new} written to {}", out.display());
            Ok(())
        }
        ArchiveCommand::Checkpoint { conn, fresh } => {
            let mut client = connect(&conn).await?;
            let signed = client
                .get_checkpoint(pb::GetCheckpointRequest {
                    tree_size: 0,
                    fresh,
                })
                .await
                .map_err(status)?
                .into_inner();
            let c = <pb::Checkpoint as prost::Message>::decode(signed.checkpoint.as_slice())
                .map_err(|e| e.to_string())?;
            let json = serde_json::json!({
                "tree_size": c.tree_size,
                "root_hash": hex::encode(&c.root_hash),
                "timestamp_ms": c.timestamp_ms,
                "service_key_id": c.service_key_id,
                "signature": hex::encode(&signed.signature),
            });
            if conn.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&json).unwrap_or_default()
                );
            } else {
                println!(
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
            output::found(&found, conn.json);
            Ok(())
        }
        ArchiveCommand::Export { conn, filter, out } => {
            let mut client = connect(&conn).await?;
            let found = search(&mut client, &filter).await?;
            export(&mut client, &found, &out).await?;
            println!("{} documents exported to {}", found.len(), out.display());
            Ok(())
        }
        ArchiveCommand::Audit { data } => {
            let report = crate::archive::audit::audit(&data).map_err(|e| e.to_string())?;
            match report.problem {
                None => {
                    println!(
                        "ok: {} leaves and {} checkpoints recomputed; everything stored matches",
                        report.leaves, report.checkpoints
                    );
                    Ok(())
                }
                Some(problem) => Err(format!(
                    "audit failed after {} good leaves: {problem}",
                    report.leaves
                )),
            }
        }
    }
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
        .await
        .map_err(status)?
        .into_inner()
        .caller;
    let mut found = Vec::new();
    for e in inbox_pages(client, String::new(), 500, true).await?.0 {
        if let Some(summary) = e.document {
            found.push(Found {
                summary,
                recipients: me.clone().into_iter().collect(),
                received: true,
            });
        }
    }
    for e in outbox_pages(client, String::new(), 500, true).await?.0 {
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
    let type_code = |t: &str| crate::document::types::find(t).map(|t| t.code.to_owned());
    let wanted_type = filter
        .document_type
        .as_deref()
        .map(|t| type_code(t).unwrap_or_else(|| t.to_owned()));
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
                .is_none_or(|t| type_code(&s.document_type).as_ref() == Some(t))
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
async fn export(client: &mut ExchangeClient<Channel>, found: &[Found], out: &Path) -> Result {
    std::fs::create_dir_all(out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let keys = client
        .get_keys(pb::GetKeysRequest {})
        .await
        .map_err(status)?
        .into_inner();
    let service_key = keys
        .service_key
        .ok_or("the server's answer has no service key; nothing was exported")?;
    let mut index = Vec::new();
    for f in found {
        let id = &f.summary.id;
        let dir = out.join(id);
        let document = client
            .get_document(pb::GetDocumentRequest {
                id: id.clone(),
                include_content: true,
            })
            .await
            .map_err(status)?
            .into_inner();
        save_attachments(&dir, &document)?;
        crate::evidence::save(&dir, &document).map_err(|e| e.to_string())?;
        let proof = client
            .get_inclusion_proof(pb::GetInclusionProofRequest {
                document_id: id.clone(),
                tree_size: 0,
            })
            .await
            .map_err(status)?
            .into_inner();
        crate::archive::proof::ProofFile::Inclusion(
            crate::archive::proof::InclusionFile::new(id, &proof, Some(&service_key))
                .map_err(|e| e.to_string())?,
        )
        .write(&dir.join("inclusion.json"))
        .map_err(|e| e.to_string())?;
        index.push(serde_json::json!({
            "id": id,
            "direction": if f.received { "received" } else { "sent" },
            "sender": f.summary.sender.as_ref().map(|o| o.code.clone()),
            "recipients": f.recipients.iter().map(|o| o.code.clone()).collect::<Vec<_>>(),
            "number": f.summary.number,
            "notation": f.summary.notation,
            "document_type": f.summary.document_type,
            "promulgation_date": f.summary.promulgation_date,
            "subject": f.summary.subject,
            "accepted_at_ms": f.summary.accepted_at_ms,
            "leaf_index": proof.leaf_index,
        }));
    }
    let checkpoint = client
        .get_checkpoint(pb::GetCheckpointRequest {
            tree_size: 0,
            fresh: false,
        })
        .await
        .map_err(status)?
        .into_inner();
    write_json(
        &out.join("index.json"),
        &serde_json::json!({"documents": index}),
    )?;
    write_json(
        &out.join("checkpoint.json"),
        &serde_json::json!({"bytes": hex::encode(&checkpoint.checkpoint), "signature": hex::encode(&checkpoint.signature)}),
    )?;
    let pem = pem::encode(&pem::Pem::new("PUBLIC KEY", service_key.public_key));
    std::fs::write(out.join("service-key.pub.pem"), pem).map_err(|e| e.to_string())?;
    Ok(())
}
