//! Printing results: one JSON document with `--json`, else a table.

use std::io::Write;

use serde_json::{json, Value};

/// `println!` that ends the process quietly when stdout is closed (as by
/// `| head`) instead of panicking, as command-line tools conventionally do.
macro_rules! outln {
    ($($arg:tt)*) => { write_line(format_args!($($arg)*)) };
}

fn write_line(args: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    if out
        .write_fmt(args)
        .and_then(|_| out.write_all(b"\n"))
        .is_err()
    {
        std::process::exit(0);
    }
}

use crate::clock;
use crate::document::types;
use crate::pb;

fn org(o: &Option<pb::Organization>) -> Value {
    match o {
        Some(o) => json!({"code": o.code, "alias": o.alias, "name": o.name, "kind": o.kind}),
        None => Value::Null,
    }
}

fn org_short(o: &Option<pb::Organization>) -> String {
    o.as_ref()
        .map(|o| {
            if o.alias.is_empty() {
                o.code.clone()
            } else {
                o.alias.clone()
            }
        })
        .unwrap_or_default()
}

fn urgency(value: i32) -> &'static str {
    match pb::Urgency::try_from(value) {
        Ok(pb::Urgency::Khan) => "khan",
        Ok(pb::Urgency::ThuongKhan) => "thuong-khan",
        Ok(pb::Urgency::HoaToc) => "hoa-toc",
        _ => "normal",
    }
}

fn secrecy(value: i32) -> &'static str {
    match pb::Secrecy::try_from(value) {
        Ok(pb::Secrecy::Mat) => "mat",
        Ok(pb::Secrecy::ToiMat) => "toi-mat",
        Ok(pb::Secrecy::TuyetMat) => "tuyet-mat",
        _ => "none",
    }
}

fn type_code(name: &str) -> &str {
    types::find(name).map_or(name, |t| t.code)
}

fn delivery(d: &pb::Delivery) -> Value {
    json!({
        "recipient": org(&d.recipient),
        "arrival_year": d.arrival_year,
        "arrival_number": d.arrival_number,
    })
}

fn summary(s: &pb::DocumentSummary) -> Value {
    json!({
        "id": s.id,
        "sender": org(&s.sender),
        "number": s.number,
        "notation": s.notation,
        "document_type": type_code(&s.document_type),
        "subject": s.subject,
        "promulgation_date": s.promulgation_date,
        "due_date": s.due_date,
        "urgency": urgency(s.urgency),
        "secrecy": secrecy(s.secrecy),
        "accepted_at_ms": s.accepted_at_ms,
        "attachment_count": s.attachment_count,
    })
}

fn print_json(value: &Value) {
    outln!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
    );
}

/// Number and notation as printed on the document: `12/CT-UBND`.
fn so_ky_hieu(number: u64, notation: &str) -> String {
    format!("{number:02}/{notation}")
}

/// Cuts a summary line to `max` characters for a table cell.
fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let mut s: String = text.chars().take(max - 1).collect();
        s.push('…');
        s
    }
}

pub fn sent(r: &pb::SendResponse, as_json: bool) {
    if as_json {
        print_json(&json!({
            "id": r.id,
            "edxml_id": r.edxml_id,
            "accepted_at_ms": r.accepted_at_ms,
            "duplicate": r.duplicate,
            "deliveries": r.deliveries.iter().map(delivery).collect::<Vec<_>>(),
        }));
        return;
    }
    let what = if r.duplicate {
        "already sent (same idempotency key)"
    } else {
        "sent"
    };
    outln!("{what}: {}", r.id);
    outln!("edXML id: {}", r.edxml_id);
    outln!(
        "accepted: {} (Vietnam time)",
        clock::format_vietnam(r.accepted_at_ms)
    );
    outln!("{} recipients:", r.deliveries.len());
    for d in &r.deliveries {
        outln!(
            "  {:<20} arrival no. {}/{}",
            org_short(&d.recipient),
            d.arrival_number,
            d.arrival_year
        );
    }
}

pub fn inbox(entries: &[pb::InboxEntry], next: &str, as_json: bool) {
    if as_json {
        print_json(&json!({
            "entries": entries.iter().map(|e| {
                let mut v = e.document.as_ref().map(summary).unwrap_or(Value::Null);
                if let Value::Object(m) = &mut v {
                    m.insert("arrival_year".into(), json!(e.arrival_year));
                    m.insert("arrival_number".into(), json!(e.arrival_number));
                }
                v
            }).collect::<Vec<_>>(),
            "next_page_token": next,
        }));
        return;
    }
    outln!(
        "{:<10} {:<32} {:<16} {:<14} {:<10} SUBJECT",
        "ARRIVAL",
        "ID",
        "FROM",
        "NUMBER",
        "URGENCY"
    );
    for e in entries {
        let Some(s) = &e.document else { continue };
        outln!(
            "{:<10} {:<32} {:<16} {:<14} {:<10} {}",
            format!("{}/{}", e.arrival_number, e.arrival_year),
            s.id,
            org_short(&s.sender),
            so_ky_hieu(s.number, &s.notation),
            urgency(s.urgency),
            cut(&s.subject, 60)
        );
    }
    if !next.is_empty() {
        outln!("more: --page-token {next}");
    }
}

pub fn outbox(entries: &[pb::OutboxEntry], next: &str, as_json: bool) {
    if as_json {
        print_json(&json!({
            "entries": entries.iter().map(|e| {
                let mut v = e.document.as_ref().map(summary).unwrap_or(Value::Null);
                if let Value::Object(m) = &mut v {
                    m.insert("deliveries".into(), e.deliveries.iter().map(delivery).collect());
                }
                v
            }).collect::<Vec<_>>(),
            "next_page_token": next,
        }));
        return;
    }
    outln!(
        "{:<32} {:<16} {:<11} {:<6} SUBJECT",
        "ID",
        "SENT",
        "NUMBER",
        "TO"
    );
    for e in entries {
        let Some(s) = &e.document else { continue };
        outln!(
            "{:<32} {:<16} {:<11} {:<6} {}",
            s.id,
            clock::format_vietnam(s.accepted_at_ms),
            so_ky_hieu(s.number, &s.notation),
            e.deliveries.len(),
            cut(&s.subject, 60)
        );
    }
    if !next.is_empty() {
        outln!("more: --page-token {next}");
    }
}

pub fn document(d: &pb::GetDocumentResponse, saved: &[String], as_json: bool) {
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
            "sender": org(&d.sender),
            "accepted_at_ms": d.accepted_at_ms,
            "number": header.number,
            "notation": header.notation,
            "document_type": type_code(&header.document_type),
            "subject": header.subject,
            "content": header.content,
            "place": header.place,
            "promulgation_date": header.promulgation_date,
            "due_date": header.due_date,
            "urgency": urgency(header.urgency),
            "secrecy": secrecy(header.secrecy),
            "reply_to": header.reply_to,
            "to": header.to,
            "to_places": header.to_places,
            "signer": {"competence": signer.competence, "position": signer.position, "full_name": signer.full_name},
            "deliveries": d.deliveries.iter().map(delivery).collect::<Vec<_>>(),
            "my_delivery": d.my_delivery.as_ref().map(delivery),
            "attachments": attachments,
            "saved": saved,
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
        so_ky_hieu(header.number, &header.notation)
    );
    outln!("type:        {type_name}");
    outln!("date:        {} {}", header.place, header.promulgation_date);
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
        urgency(header.urgency),
        secrecy(header.secrecy)
    );
    if !header.due_date.is_empty() {
        outln!("due:         {}", header.due_date);
    }
    if !header.reply_to.is_empty() {
        outln!("replies to:  {}", header.reply_to);
    }
    outln!(
        "accepted:    {} (Vietnam time)",
        clock::format_vietnam(d.accepted_at_ms)
    );
    if let Some(m) = &d.my_delivery {
        outln!("arrival no.: {}/{}", m.arrival_number, m.arrival_year);
    }
    outln!("recipients:  {}", d.deliveries.len());
    for a in d.attachments.iter().filter_map(|a| a.r#ref.as_ref()) {
        outln!(
            "attachment:  {} ({}, {} bytes, sha256 {})",
            a.name,
            a.media_type,
            a.size,
            hex::encode(&a.sha256)
        );
    }
    for path in saved {
        outln!("saved:       {path}");
    }
}

pub fn directory(d: &pb::GetDirectoryResponse, as_json: bool) {
    if as_json {
        print_json(&json!({
            "caller": org(&d.caller),
            "organizations": d.organizations.iter().map(|o| org(&Some(o.clone()))).collect::<Vec<_>>(),
            "groups": d.groups.iter().map(|g| json!({"alias": g.alias, "name": g.name, "kinds": g.kinds})).collect::<Vec<_>>(),
        }));
        return;
    }
    outln!("you are: {}", org_short(&d.caller));
    outln!("{:<14} {:<16} {:<11} NAME", "CODE", "ALIAS", "KIND");
    for o in &d.organizations {
        outln!("{:<14} {:<16} {:<11} {}", o.code, o.alias, o.kind, o.name);
    }
    for g in &d.groups {
        outln!(
            "{:<14} {:<16} {:<11} {}",
            "(group)",
            g.alias,
            g.kinds.join(","),
            g.name
        );
    }
}

pub fn checks(checks: &[crate::evidence::Check], used_saved_keys: bool, as_json: bool) {
    if as_json {
        print_json(&json!({
            "ok": checks.iter().all(|c| c.ok),
            "checks": checks.iter().map(|c| json!({"subject": c.subject, "ok": c.ok, "detail": c.detail})).collect::<Vec<_>>(),
            "used_saved_keys": used_saved_keys,
        }));
        return;
    }
    for c in checks {
        outln!(
            "{:<6} {}: {}",
            if c.ok { "ok" } else { "FAILED" },
            c.subject,
            c.detail
        );
    }
    if used_saved_keys {
        outln!("note: the sender's key is the one saved with the document, which the receipt names by its digest; --keys FILE checks it against your copy of the registry");
    }
}

fn event_kind(kind: i32) -> &'static str {
    match pb::EventKind::try_from(kind) {
        Ok(pb::EventKind::DocumentArrived) => "document_arrived",
        Ok(pb::EventKind::StatusChanged) => "status_changed",
        Ok(pb::EventKind::DocumentRevoked) => "document_revoked",
        Ok(pb::EventKind::DocumentUpdated) => "document_updated",
        Ok(pb::EventKind::DocumentReplaced) => "document_replaced",
        _ => "unknown",
    }
}

/// One line per event: a JSON object with --json.
pub fn event(e: &pb::MailboxEvent, as_json: bool) {
    if as_json {
        let line = json!({
            "seq": e.seq,
            "kind": event_kind(e.kind),
            "document_id": e.document_id,
            "at_ms": e.at_ms,
            "sender": e.sender,
            "arrival_year": e.arrival_year,
            "arrival_number": e.arrival_number,
            "subject": e.subject,
            "urgency": urgency(e.urgency),
        });
        outln!("{line}");
        return;
    }
    outln!(
        "{:>6}  {}  {:<16} {}  from {}  no. {}/{}  {:<10} {}",
        e.seq,
        clock::format_vietnam(e.at_ms),
        event_kind(e.kind),
        e.document_id,
        e.sender,
        e.arrival_number,
        e.arrival_year,
        urgency(e.urgency),
        cut(&e.subject, 60)
    );
}

pub fn heartbeat(h: &pb::Heartbeat, as_json: bool) {
    if as_json {
        outln!(
            "{}",
            json!({"kind": "heartbeat", "latest_seq": h.latest_seq, "at_ms": h.at_ms})
        );
    } else {
        outln!(
            "        {}  heartbeat, latest event {}",
            clock::format_vietnam(h.at_ms),
            h.latest_seq
        );
    }
}

pub fn found(found: &[super::commands::Found], as_json: bool) {
    if as_json {
        print_json(&json!({
            "documents": found.iter().map(|f| {
                let mut v = summary(&f.summary);
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
            so_ky_hieu(s.number, &s.notation),
            org_short(&s.sender),
            cut(&s.subject, 50)
        );
    }
}
