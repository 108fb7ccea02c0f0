//! The mailbox: `inbox`, `outbox` and `show`.

use std::path::PathBuf;

use clap::Args;
use serde_json::{json, Value};

use super::connection::{connect, Connection};
use super::error::Result;
use super::files;
use super::output::{self, outln, print_json};
use super::transfers;
use crate::client::{inbox_pages, outbox_pages, unread_pages};
use crate::clock;
use crate::document::types;
use crate::evidence::{self, Saved};
use crate::pb;
use crate::pb::exchange_client::ExchangeClient;
use tonic::transport::Channel;

#[derive(Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub conn: Connection,
    /// Entries per page (at most 500).
    #[arg(long, default_value_t = crate::exchange::DEFAULT_PAGE_SIZE)]
    pub page_size: u32,
    /// Continue from the next_page_token of an earlier listing.
    #[arg(long, default_value = "")]
    pub page_token: String,
    /// Follow every page to the end.
    #[arg(long)]
    pub all: bool,
}

#[derive(Args)]
pub struct InboxArgs {
    #[command(flatten)]
    pub list: ListArgs,
    /// Only what you have not acted on yet (status 01, not revoked),
    /// most urgent first (hỏa tốc, thượng khẩn, khẩn), then oldest first.
    #[arg(long)]
    pub unread: bool,
}

#[derive(Args)]
pub struct ShowArgs {
    #[command(flatten)]
    pub conn: Connection,
    /// Document id.
    pub id: String,
    /// Write each attachment into DIR under its own name, and the proof
    /// into DIR/lienthong-proof/ (check it with `lienthong verify DIR`).
    /// Symbolic links in DIR are never written through. Attachments are
    /// downloaded in chunks; an interrupted save resumes when run again.
    #[arg(long, value_name = "DIR")]
    pub save: Option<PathBuf>,
    /// With --save, replace files an earlier save left in DIR (never a
    /// symbolic link).
    #[arg(long, requires = "save")]
    pub force: bool,
}

pub async fn inbox(args: InboxArgs) -> Result {
    let InboxArgs { list: args, unread } = args;
    let client = connect(&args.conn).await?;
    let (token, size) = (args.page_token.clone(), args.page_size);
    let (entries, next) = if unread {
        unread_pages(&client, token, size, args.all).await?
    } else {
        inbox_pages(&client, token, size, args.all).await?
    };
    print_inbox(&entries, &next, args.conn.json);
    Ok(())
}

pub async fn outbox(args: ListArgs) -> Result {
    let client = connect(&args.conn).await?;
    let (entries, next) =
        outbox_pages(&client, args.page_token.clone(), args.page_size, args.all).await?;
    print_outbox(&entries, &next, args.conn.json);
    Ok(())
}

pub async fn show(args: ShowArgs) -> Result {
    let mut client = connect(&args.conn).await?;
    let request = pb::GetDocumentRequest {
        id: args.id.clone(),
        include_content: false,
    };
    let document = client.get_document(request).await?.into_inner();
    let mut saved = Vec::new();
    if let Some(dir) = &args.save {
        files::refuse_to_overwrite(&evidence::targets(dir, &document), args.force)?;
        let existing = files::existing(args.force);
        saved = transfers::save_document(&client, &document, dir, existing).await?;
    }
    let reply_to = match document.document.as_ref().map(|h| h.reply_to.as_str()) {
        Some(id) if !id.is_empty() && !args.conn.json => Some(name_reply_to(&mut client, id).await),
        _ => None,
    };
    print_document(&document, reply_to.as_deref(), &saved, args.conn.json);
    Ok(())
}

fn print_inbox(entries: &[pb::InboxEntry], next: &str, as_json: bool) {
    if as_json {
        print_json(&json!({
            "entries": entries.iter().map(|e| {
                let mut v = e.document.as_ref().map(output::summary).unwrap_or(Value::Null);
                if let Value::Object(m) = &mut v {
                    m.insert("arrival_year".into(), json!(e.arrival_year));
                    m.insert("arrival_number".into(), json!(e.arrival_number));
                    m.insert("status".into(), json!(output::status_name(e.status)));
                }
                v
            }).collect::<Vec<_>>(),
            "next_page_token": next,
        }));
        return;
    }
    outln!(
        "{:<10} {:<32} {:<16} {:<14} {:<11} {:<9} {:<16} SUBJECT",
        "ARRIVAL",
        "ID",
        "FROM",
        "NUMBER",
        "URGENCY",
        "SECRECY",
        "STATUS"
    );
    for e in entries {
        let Some(s) = &e.document else { continue };
        outln!(
            "{:<10} {:<32} {:<16} {:<14} {:<11} {:<9} {:<16} {}{}",
            format!("{}/{}", e.arrival_number, e.arrival_year),
            s.id,
            output::org_short(&s.sender),
            output::so_ky_hieu(s.number, &s.notation),
            output::urgency(s.urgency),
            output::secrecy(s.secrecy),
            output::status_name(e.status),
            frozen_mark(s),
            output::cut(&s.subject, 60)
        );
    }
    if !next.is_empty() {
        outln!("more: --page-token {next}");
    }
}

/// `[paper] ` for a paper record, then `[revoked] `, `[superseded] ` or
/// nothing, before a subject.
fn frozen_mark(s: &pb::DocumentSummary) -> String {
    let paper = if s.paper { "[paper] " } else { "" };
    let frozen = if s.revoked {
        "[revoked] "
    } else if !s.superseded_by.is_empty() {
        "[superseded] "
    } else {
        ""
    };
    format!("{paper}{frozen}")
}

fn print_outbox(entries: &[pb::OutboxEntry], next: &str, as_json: bool) {
    if as_json {
        print_json(&json!({
            "entries": entries.iter().map(|e| {
                let mut v = e.document.as_ref().map(output::summary).unwrap_or(Value::Null);
                if let Value::Object(m) = &mut v {
                    m.insert("deliveries".into(), e.deliveries.iter().map(output::delivery).collect());
                }
                v
            }).collect::<Vec<_>>(),
            "next_page_token": next,
        }));
        return;
    }
    outln!(
        "{:<32} {:<22} {:<14} {:<9} SUBJECT",
        "ID",
        "SENT",
        "NUMBER",
        "SECRECY"
    );
    for e in entries {
        let Some(s) = &e.document else { continue };
        outln!(
            "{:<32} {:<22} {:<14} {:<9} {}",
            s.id,
            clock::format_vietnam(s.accepted_at_ms),
            output::so_ky_hieu(s.number, &s.notation),
            output::secrecy(s.secrecy),
            format!("{}{}", frozen_mark(s), output::cut(&s.subject, 60))
        );
        // To whom, each with the arrival number it got.
        for d in &e.deliveries {
            outln!("    to {}", output::delivery_line(d));
        }
    }
    if !next.is_empty() {
        outln!("more: --page-token {next}");
    }
}

/// The document a reply answers, as a clerk names it: its number and
/// notation, date and sender; its id if the caller cannot read it.
async fn name_reply_to(client: &mut ExchangeClient<Channel>, id: &str) -> String {
    let request = pb::GetDocumentRequest {
        id: id.to_owned(),
        include_content: false,
    };
    match client.get_document(request).await {
        Ok(original) => {
            let original = original.into_inner();
            let header = original.document.unwrap_or_default();
            format!(
                "{} of {} from {} (id {id})",
                output::so_ky_hieu(header.number, &header.notation),
                header.promulgation_date,
                output::org_short(&original.sender)
            )
        }
        // Not the caller's to see (or gone): the id is all there is to say.
        Err(_) => id.to_owned(),
    }
}

fn print_document(
    d: &pb::GetDocumentResponse,
    reply_to: Option<&str>,
    saved: &[Saved],
    as_json: bool,
) {
    let header = d.document.clone().unwrap_or_default();
    let attachments: Vec<Value> = d
        .attachments
        .iter()
        .filter_map(|a| a.r#ref.as_ref())
        .map(|r| {
            json!({
                "name": r.name,
                "media_type": r.media_type,
                "size": r.size,
                "sha256": hex::encode(&r.sha256),
            })
        })
        .collect();
    if as_json {
        let signer = header.signer.clone().unwrap_or_default();
        print_json(&json!({
            "id": d.id,
            "edxml_id": d.edxml_id,
            "sender": output::org(&d.sender),
            "accepted_at": output::at(d.accepted_at_ms),
            "accepted_at_ms": d.accepted_at_ms,
            "number": header.number,
            "notation": header.notation,
            "document_type": output::type_code(&header.document_type),
            "subject": header.subject,
            "content": header.content,
            "place": header.place,
            "promulgation_date": header.promulgation_date,
            "due_date": header.due_date,
            "urgency": output::urgency(header.urgency),
            "secrecy": output::secrecy(header.secrecy),
            "reply_to": header.reply_to,
            "to": header.to,
            "to_places": header.to_places,
            "signer": {"competence": signer.competence, "position": signer.position, "full_name": signer.full_name},
            "deliveries": d.deliveries.iter().map(output::delivery).collect::<Vec<_>>(),
            "my_delivery": d.my_delivery.as_ref().map(output::delivery),
            "attachments": attachments,
            "revoked": d.revocation.as_ref().map(|r| json!({
                "at": output::at(r.accepted_at_ms),
                "reason": r.message.as_ref().map(|m| m.description.clone()).unwrap_or_default(),
            })),
            "supersedes": d.supersedes,
            "superseded_by": d.superseded_by,
            "replies": d.replies,
            "saved": saved.iter().map(|s| s.path.display().to_string()).collect::<Vec<_>>(),
            "renamed": saved.iter().filter_map(|s| s.renamed_from.as_ref().map(|name| json!({
                "name": name,
                "saved_as": s.path.display().to_string(),
            }))).collect::<Vec<_>>(),
        }));
        return;
    }
    let type_name = types::find(&header.document_type).map_or("", |t| t.name);
    outln!("id:          {}", d.id);
    outln!("edXML id:    {}", d.edxml_id);
    outln!(
        "from:        {}",
        d.sender
            .as_ref()
            .map(|o| format!("{} ({})", o.name, o.code))
            .unwrap_or_default()
    );
    outln!(
        "number:      {}",
        output::so_ky_hieu(header.number, &header.notation)
    );
    outln!("type:        {type_name}");
    outln!(
        "date:        {}",
        [header.place.as_str(), header.promulgation_date.as_str()]
            .iter()
            .filter(|p| !p.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join(" ")
    );
    outln!("subject:     {}", header.subject);
    if !header.content.is_empty() {
        outln!("content:     {}", header.content);
    }
    if let Some(s) = &header.signer {
        if !s.full_name.is_empty() {
            outln!(
                "signed:      {} {} {}",
                s.competence,
                s.position,
                s.full_name
            );
        }
    }
    outln!(
        "urgency:     {}   secrecy: {}",
        output::urgency(header.urgency),
        output::secrecy(header.secrecy)
    );
    if !header.due_date.is_empty() {
        outln!("due:         {}", header.due_date);
    }
    if let Some(original) = reply_to {
        outln!("replies to:  {original}");
    }
    outln!("accepted:    {}", clock::format_vietnam(d.accepted_at_ms));
    // Its life: frozen, superseded, answered.
    if let Some(r) = &d.revocation {
        let reason = r
            .message
            .as_ref()
            .map(|m| m.description.clone())
            .unwrap_or_default();
        outln!(
            "REVOKED:     {} by its sender: {reason}",
            clock::format_vietnam(r.accepted_at_ms)
        );
    }
    if !d.supersedes.is_empty() {
        outln!("supersedes:  {}", d.supersedes);
    }
    for newer in &d.superseded_by {
        outln!("superseded:  by {newer}");
    }
    for reply in &d.replies {
        outln!("reply:       {reply}");
    }
    if let Some(m) = &d.my_delivery {
        outln!("arrival no.: {}/{}", m.arrival_number, m.arrival_year);
    }
    for d in &d.deliveries {
        outln!("to:          {}", output::delivery_line(d));
    }
    for a in d.attachments.iter().filter_map(|a| a.r#ref.as_ref()) {
        outln!(
            "attachment:  {} ({}, {} bytes, sha256 {})",
            a.name,
            a.media_type,
            a.size,
            hex::encode(&a.sha256)
        );
    }
    for s in saved {
        match &s.renamed_from {
            None => outln!("saved:       {}", s.path.display()),
            Some(name) => outln!(
                "saved:       {} (attachment {name:?} under another name: its own is the \
                 proof folder's, or another attachment's but for case)",
                s.path.display()
            ),
        }
    }
}
