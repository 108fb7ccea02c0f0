//! The one way the command line prints: results on stdout (one JSON
//! document with `--json`, else readable text; a stream prints one JSON
//! object per line), errors and notes on stderr. Nothing else in `src/`
//! prints, except the server's log (`tracing`, on stderr) and the progress
//! bars of `fill`, `backup` and large attachments (`transfers`; on stderr,
//! when it is a terminal).
//!
//! Writing never panics: when stdout is closed (as by `| head`) the process
//! ends quietly with status 0, as command-line tools conventionally do.

use std::io::Write;

use serde_json::{json, Value};

/// `println!` through [`write_line`].
macro_rules! outln {
    ($($arg:tt)*) => { $crate::cli::output::write_line(format_args!($($arg)*)) };
}
pub(crate) use outln;

/// Writes one line on stdout; ends the process if stdout is closed.
pub fn write_line(args: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    if out
        .write_fmt(args)
        .and_then(|_| out.write_all(b"\n"))
        .and_then(|_| out.flush())
        .is_err()
    {
        std::process::exit(0);
    }
}

/// Writes text as it is (it ends with its own newline) on stdout.
pub fn write_text(text: &str) {
    write_bytes(text.as_bytes());
}

/// Writes bytes as they are on stdout; ends the process if stdout is closed.
pub fn write_bytes(bytes: &[u8]) {
    let mut out = std::io::stdout().lock();
    if out.write_all(bytes).and_then(|_| out.flush()).is_err() {
        std::process::exit(0);
    }
}

/// One JSON line on stdout for a long-running process (`serve`), which
/// must not end because nobody reads its stdout.
pub fn announce(value: &Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{value}").and_then(|_| out.flush());
}

/// A line on stderr; a closed stderr is ignored (there is nowhere to say so).
fn write_err(args: std::fmt::Arguments<'_>) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_fmt(args).and_then(|_| err.write_all(b"\n"));
}

/// The line a failed command ends with, `error: CODE: message`, and the
/// hint if there is one.
pub fn error(e: &super::error::CliError) {
    write_err(format_args!("error: {e}"));
    if let Some(hint) = &e.hint {
        write_err(format_args!("hint: {hint}"));
    }
}

/// Something the user should know that is not the result: progress,
/// retries, notes. On stderr, so that stdout stays the result alone.
pub fn note(message: &str) {
    write_err(format_args!("{message}"));
}

use crate::clock;
use crate::document::types;
use crate::pb;

pub fn org(o: &Option<pb::Organization>) -> Value {
    match o {
        Some(o) => json!({"code": o.code, "alias": o.alias, "name": o.name, "kind": o.kind}),
        None => Value::Null,
    }
}

pub fn org_short(o: &Option<pb::Organization>) -> String {
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

pub fn urgency(value: i32) -> &'static str {
    match pb::Urgency::try_from(value) {
        Ok(pb::Urgency::Khan) => "khan",
        Ok(pb::Urgency::ThuongKhan) => "thuong-khan",
        Ok(pb::Urgency::HoaToc) => "hoa-toc",
        _ => "normal",
    }
}

pub fn secrecy(value: i32) -> &'static str {
    match pb::Secrecy::try_from(value) {
        Ok(pb::Secrecy::Mat) => "mat",
        Ok(pb::Secrecy::ToiMat) => "toi-mat",
        Ok(pb::Secrecy::TuyetMat) => "tuyet-mat",
        _ => "none",
    }
}

pub fn type_code(name: &str) -> &str {
    types::find(name).map_or(name, |t| t.code)
}

pub fn delivery(d: &pb::Delivery) -> Value {
    let mut value = json!({
        "recipient": org(&d.recipient),
        "arrival_year": d.arrival_year,
        "arrival_number": d.arrival_number,
    });
    // Only the sender and the recipient itself see a recipient's status.
    if d.status != 0 {
        value["status"] = json!(status_name(d.status));
        value["status_at"] = at(d.status_at_ms);
        if d.answer != 0 {
            value["answer"] = json!(status_name(d.answer));
        }
    }
    value
}

/// A status code as a clerk reads it: `03 registered`.
pub fn status_name(code: i32) -> String {
    u32::try_from(code)
        .ok()
        .and_then(crate::lifecycle::Code::from_number)
        .map_or_else(|| format!("{code:02}"), |c| c.to_string())
}

pub fn summary(s: &pb::DocumentSummary) -> Value {
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
        "accepted_at": at(s.accepted_at_ms),
        "accepted_at_ms": s.accepted_at_ms,
        "attachment_count": s.attachment_count,
        "revoked": s.revoked,
        "superseded_by": s.superseded_by,
        "paper": s.paper,
    })
}

/// Prints exactly one JSON document, pretty.
pub fn print_json(value: &Value) {
    // A `Value` always serialises (its keys are strings).
    outln!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
    );
}

/// Prints one JSON object on one line: an item of a stream.
pub fn print_json_line(value: &Value) {
    outln!("{value}");
}

/// `1 recipient`, `2 recipients`: a count with its noun in the right number.
pub fn plural(n: impl Into<u64>, one: &str, many: &str) -> String {
    let n = n.into();
    format!("{n} {}", if n == 1 { one } else { many })
}

/// A recipient and its arrival number, for text output.
pub fn delivery_line(d: &pb::Delivery) -> String {
    let mut line = format!(
        "{:<20} arrival no. {}/{}",
        org_short(&d.recipient),
        d.arrival_number,
        d.arrival_year
    );
    if d.status != 0 {
        line.push_str(&format!(
            "  {} since {}",
            status_name(d.status),
            clock::format_vietnam(d.status_at_ms)
        ));
        if d.answer != 0 {
            line.push_str(&format!(", answered {}", status_name(d.answer)));
        }
    }
    line
}

/// An instant in JSON: RFC 3339 with the Vietnam offset.
pub fn at(unix_ms: i64) -> Value {
    json!(clock::rfc3339(unix_ms))
}

/// Number and notation as printed on the document: `12/CT-UBND`.
pub fn so_ky_hieu(number: u64, notation: &str) -> String {
    format!("{number:02}/{notation}")
}

/// Cuts a summary line to `max` characters for a table cell.
pub fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let mut s: String = text.chars().take(max - 1).collect();
        s.push('…');
        s
    }
}
