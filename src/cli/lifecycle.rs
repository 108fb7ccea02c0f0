//! A document's life after sending: `status` and `answer` (a recipient's
//! signed status changes), `revoke`, `update` and `replace` (its sender's),
//! and `history`.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use prost::Message;
use serde_json::{json, Value};

use super::connection::{connect, Connection};
use super::error::Result;
use super::output::{self, outln, print_json};
use super::send::{self, SendArgs};
use crate::clock;
use crate::lifecycle::Code;
use crate::pb;

/// Who made a change, and with which key (shared by status, answer, revoke).
#[derive(Args)]
pub struct Signed {
    #[command(flatten)]
    pub conn: Connection,
    /// The staff member making the change (edXML StaffInfo): full name.
    #[arg(long, default_value = "", value_name = "NAME")]
    pub staff: String,
    /// The staff member's unit (department).
    #[arg(long, default_value = "", value_name = "UNIT")]
    pub unit: String,
    /// The staff member's phone.
    #[arg(long, default_value = "")]
    pub phone: String,
    /// The staff member's e-mail.
    #[arg(long, default_value = "")]
    pub email: String,
    /// Sign with this private key (PKCS#8 PEM) instead of the one the PKI
    /// folder lists for the organisation.
    #[arg(long, value_name = "FILE")]
    pub signing_key: Option<PathBuf>,
}

#[derive(Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub signed: Signed,
    /// The document's id.
    pub id: String,
    /// The new status, by number or name: 02 rejected, 03 registered,
    /// 04 assigned, 05 in-progress, 06 completed.
    pub code: String,
    /// Why (required to reject), or a note.
    #[arg(long, default_value = "")]
    pub reason: String,
    /// For 04: the unit or person the document is assigned to.
    #[arg(long, value_name = "UNIT_OR_PERSON", default_value = "")]
    pub assign_to: String,
    /// For 04: the handling deadline, YYYY-MM-DD.
    #[arg(long, value_name = "DATE", default_value = "")]
    pub deadline: String,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum AnswerArg {
    /// 15: agree to the revocation, update or replacement.
    Agree,
    /// 16: refuse it.
    Refuse,
}

#[derive(Args)]
pub struct AnswerArgs {
    #[command(flatten)]
    pub signed: Signed,
    /// The revoked, updated or replaced document's id.
    pub id: String,
    /// agree (15) or refuse (16).
    #[arg(value_enum)]
    pub answer: AnswerArg,
    /// A note.
    #[arg(long, default_value = "")]
    pub reason: String,
}

#[derive(Args)]
pub struct RevokeArgs {
    #[command(flatten)]
    pub signed: Signed,
    /// The id of the document to revoke (one you sent).
    pub id: String,
    /// Why it is revoked.
    #[arg(long)]
    pub reason: String,
}

#[derive(Args)]
pub struct SupersedeArgs {
    /// The id of the document to update or replace (one you sent).
    pub id: String,
    /// Why.
    #[arg(long)]
    pub reason: String,
    #[command(flatten)]
    pub send: SendArgs,
    /// Not taken here: `send --batch` only (the options of `send` name it).
    #[arg(long, hide = true, value_name = "DIR|MANIFEST")]
    pub batch: Option<std::path::PathBuf>,
}

#[derive(Args)]
pub struct HistoryArgs {
    #[command(flatten)]
    pub conn: Connection,
    /// The document's id.
    pub id: String,
}

/// A code typed as `3`, `03` or `registered`.
fn parse_code(text: &str) -> Result<Code> {
    let by_number = text.parse::<u32>().ok().and_then(Code::from_number);
    let by_name = Code::ALL
        .into_iter()
        .find(|c| c.name().eq_ignore_ascii_case(text.trim()));
    by_number.or(by_name).ok_or_else(|| {
        format!(
            "{text:?} is not a status: give 02 rejected, 03 registered, 04 assigned, 05 in-progress or 06 completed (by number or name)"
        )
        .into()
    })
}

/// Signs `message` as the organisation of `signed` and hands it to `call`.
async fn sign_and_send(
    signed: &Signed,
    mut message: pb::StatusMessage,
    revoke: bool,
) -> Result<pb::StatusChange> {
    let settings = signed.conn.settings()?;
    let from = settings
        .as_org
        .as_ref()
        .map(|s| s.value.clone())
        .ok_or("this needs --as ORG (or LIENTHONG_AS): the organisation that signs")?;
    message.from = from.clone();
    message.staff = Some(pb::StaffInfo {
        department: signed.unit.clone(),
        name: signed.staff.clone(),
        mobile: signed.phone.clone(),
        email: signed.email.clone(),
    });
    message.timestamp_ms = clock::now_ms();
    let key = send::signing_key(signed.signing_key.as_deref(), &settings, &from)?;
    let bytes = message.encode_to_vec();
    let (key_id, signature) = key.sign_status(&bytes).map_err(|e| e.to_string())?;
    let signature = Some(pb::DocumentSignature { key_id, signature });
    let mut client = connect(&signed.conn).await?;
    let change = if revoke {
        client
            .revoke(pb::RevokeRequest {
                status: bytes,
                signature,
            })
            .await?
    } else {
        client
            .change_status(pb::ChangeStatusRequest {
                status: bytes,
                signature,
            })
            .await?
    };
    Ok(change.into_inner())
}

pub async fn status(args: StatusArgs) -> Result {
    let code = parse_code(&args.code)?;
    let message = pb::StatusMessage {
        document_id: args.id,
        code: code as i32,
        description: args.reason,
        assigned_to: args.assign_to,
        deadline: args.deadline,
        ..Default::default()
    };
    let change = sign_and_send(&args.signed, message, false).await?;
    print_change(&change, args.signed.conn.json);
    Ok(())
}

pub async fn answer(args: AnswerArgs) -> Result {
    let code = match args.answer {
        AnswerArg::Agree => Code::Agreed,
        AnswerArg::Refuse => Code::Refused,
    };
    let message = pb::StatusMessage {
        document_id: args.id,
        code: code as i32,
        description: args.reason,
        ..Default::default()
    };
    let change = sign_and_send(&args.signed, message, false).await?;
    print_change(&change, args.signed.conn.json);
    Ok(())
}

pub async fn revoke(args: RevokeArgs) -> Result {
    let message = pb::StatusMessage {
        document_id: args.id,
        operation: pb::Operation::Revoke as i32,
        description: args.reason,
        ..Default::default()
    };
    let change = sign_and_send(&args.signed, message, true).await?;
    print_change(&change, args.signed.conn.json);
    Ok(())
}

/// `update` (`replace`): sends a new document that updates (replaces) `id`.
pub async fn supersede(args: SupersedeArgs, operation: pb::Operation) -> Result {
    if args.batch.is_some() {
        return Err("--batch sends many new documents (`send --batch`); an update or replacement is one document".into());
    }
    let supersedes = pb::Supersedes {
        document_id: args.id,
        operation: operation as i32,
        reason: args.reason,
    };
    send::send(args.send, Some(supersedes)).await
}

pub async fn history(args: HistoryArgs) -> Result {
    let mut client = connect(&args.conn).await?;
    let changes = client
        .get_history(pb::GetHistoryRequest {
            document_id: args.id,
        })
        .await?
        .into_inner()
        .changes;
    if args.conn.json {
        print_json(&json!({"changes": changes.iter().map(change_json).collect::<Vec<_>>()}));
        return Ok(());
    }
    outln!(
        "{:<22} {:<20} {:<22} {:>6}  NOTE",
        "WHEN",
        "BY",
        "STATUS",
        "LEAF"
    );
    for c in &changes {
        let message = c.message.clone().unwrap_or_default();
        let mut note = message.description.clone();
        if !message.assigned_to.is_empty() {
            note = format!("to {} {}", message.assigned_to, note);
        }
        if !message.deadline.is_empty() {
            note = format!("{note} (deadline {})", message.deadline);
        }
        outln!(
            "{:<22} {:<20} {:<22} {:>6}  {}",
            clock::format_vietnam(c.accepted_at_ms),
            output::org_short(&c.by),
            what(c),
            c.leaf_index
                .map_or_else(|| "-".to_owned(), |l| l.to_string()),
            output::cut(note.trim(), 60)
        );
    }
    Ok(())
}

/// `03 registered`, or `revoked`.
fn what(c: &pb::StatusChange) -> String {
    if c.operation == pb::Operation::Revoke as i32 {
        "revoked".to_owned()
    } else {
        output::status_name(c.code)
    }
}

fn change_json(c: &pb::StatusChange) -> Value {
    let message = c.message.clone().unwrap_or_default();
    let staff = message.staff.unwrap_or_default();
    json!({
        "document_id": c.document_id,
        "by": output::org(&c.by),
        "change": c.change,
        "status": what(c),
        "code": c.code,
        "revocation": c.operation == pb::Operation::Revoke as i32,
        "description": message.description,
        "assigned_to": message.assigned_to,
        "deadline": message.deadline,
        "staff": {"department": staff.department, "name": staff.name, "mobile": staff.mobile, "email": staff.email},
        "at": output::at(c.accepted_at_ms),
        "at_ms": c.accepted_at_ms,
        "leaf_index": c.leaf_index,
    })
}

fn print_change(c: &pb::StatusChange, as_json: bool) {
    if as_json {
        print_json(&change_json(c));
        return;
    }
    outln!(
        "{} by {} at {}: change {} of document {}, archive leaf {}",
        what(c),
        output::org_short(&c.by),
        clock::format_vietnam(c.accepted_at_ms),
        c.change,
        c.document_id,
        c.leaf_index
            .map_or_else(|| "-".to_owned(), |l| l.to_string())
    );
}
