//! `register`: the incoming register (sổ đăng ký văn bản đến) or, with
//! `--outgoing`, the outgoing register (sổ văn bản đi) of a year, as a
//! table, as the clerk's spreadsheet (`--csv`), or as one JSON document.

use clap::Args;
use serde_json::{json, Value};

use super::connection::{connect, Connection};
use super::error::Result;
use super::output::{self, outln, print_json};
use crate::document::types;
use crate::lifecycle::Code;
use crate::pb;

#[derive(Args)]
pub struct RegisterArgs {
    #[command(flatten)]
    pub conn: Connection,
    /// Calendar year, Vietnam time: of arrival, or with --outgoing of issue
    /// [default: this year]
    #[arg(long, value_name = "YYYY")]
    pub year: Option<u32>,
    /// The outgoing register (sổ văn bản đi): what you issued that year.
    #[arg(long)]
    pub outgoing: bool,
    /// Print the register as CSV (RFC 4180, UTF-8) with a header row of the
    /// Vietnamese column names, for a spreadsheet.
    #[arg(long, conflicts_with = "json")]
    pub csv: bool,
}

/// The incoming register's columns (Decree 30).
pub const INCOMING_COLUMNS: [&str; 10] = [
    "Ngày đến",
    "Số đến",
    "Tác giả",
    "Số, ký hiệu",
    "Ngày tháng",
    "Tên loại và trích yếu nội dung",
    "Đơn vị hoặc người nhận",
    "Ngày chuyển",
    "Tình trạng",
    "Ghi chú",
];

/// The outgoing register's columns.
pub const OUTGOING_COLUMNS: [&str; 6] = [
    "Số, ký hiệu",
    "Ngày tháng",
    "Tên loại và trích yếu nội dung",
    "Người ký",
    "Nơi nhận",
    "Ghi chú",
];

pub async fn run(args: RegisterArgs) -> Result {
    let mut client = connect(&args.conn).await?;
    // A register is read whole: every page, in order.
    let mut incoming = Vec::new();
    let mut outgoing = Vec::new();
    let mut token = String::new();
    let year = loop {
        let page = client
            .get_register(pb::GetRegisterRequest {
                year: args.year.unwrap_or(0),
                outgoing: args.outgoing,
                page_size: crate::exchange::MAX_PAGE_SIZE,
                page_token: token,
            })
            .await?
            .into_inner();
        incoming.extend(page.incoming);
        outgoing.extend(page.outgoing);
        if page.next_page_token.is_empty() {
            break page.year;
        }
        token = page.next_page_token;
    };
    let (columns, rows): (&[&str], Vec<Vec<String>>) = if args.outgoing {
        (
            &OUTGOING_COLUMNS,
            outgoing.iter().map(outgoing_row).collect(),
        )
    } else {
        (
            &INCOMING_COLUMNS,
            incoming.iter().map(incoming_row).collect(),
        )
    };
    if args.conn.json {
        print_json(&json!({
            "year": year,
            "register": if args.outgoing { "outgoing" } else { "incoming" },
            "entries": rows.iter().map(|row| {
                columns.iter().zip(row).map(|(c, v)| ((*c).to_owned(), json!(v))).collect::<serde_json::Map<String, Value>>()
            }).collect::<Vec<_>>(),
        }));
    } else if args.csv {
        output::write_text(&csv(columns, &rows));
    } else {
        print_table(year, args.outgoing, columns, &rows);
    }
    Ok(())
}

fn type_and_subject(document_type: &str, subject: &str) -> String {
    match types::find(document_type) {
        Some(t) => format!("{} {subject}", t.name),
        None => subject.to_owned(),
    }
}

fn incoming_row(e: &pb::RegisterEntry) -> Vec<String> {
    let status = u32::try_from(e.status)
        .ok()
        .and_then(Code::from_number)
        .map_or(String::new(), |c| c.vietnamese().to_owned());
    vec![
        e.arrival_date.clone(),
        e.arrival_number.to_string(),
        e.issuer.as_ref().map_or(String::new(), |o| o.name.clone()),
        output::so_ky_hieu(e.number, &e.notation),
        e.promulgation_date.clone(),
        type_and_subject(&e.document_type, &e.subject),
        e.assigned_to.clone(),
        e.passed_on_date.clone(),
        status,
        with_paper(e.paper, &e.notes),
    ]
}

/// A paper record's notes begin with "Bản giấy" (on paper).
fn with_paper(paper: bool, notes: &str) -> String {
    match (paper, notes.is_empty()) {
        (false, _) => notes.to_owned(),
        (true, true) => "Bản giấy".to_owned(),
        (true, false) => format!("Bản giấy; {notes}"),
    }
}

fn outgoing_row(e: &pb::OutgoingRegisterEntry) -> Vec<String> {
    let mut recipients: Vec<String> = e
        .deliveries
        .iter()
        .map(|d| {
            d.recipient
                .as_ref()
                .map_or(String::new(), |o| o.name.clone())
        })
        .collect();
    if e.paper {
        recipients.push(e.paper_recipient.clone());
    }
    let mut notes = with_paper(e.paper, &e.notes);
    if e.secret {
        notes = [String::from("Sổ mật"), notes]
            .into_iter()
            .filter(|n| !n.is_empty())
            .collect::<Vec<_>>()
            .join("; ");
    }
    vec![
        output::so_ky_hieu(e.number, &e.notation),
        e.promulgation_date.clone(),
        type_and_subject(&e.document_type, &e.subject),
        e.signer.clone(),
        recipients.join(", "),
        notes,
    ]
}

/// RFC 4180: CRLF line ends; a field with a comma, a quote or a line break
/// is quoted, its quotes doubled.
pub fn csv(columns: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = String::new();
    let mut line = |fields: &mut dyn Iterator<Item = &str>| {
        let quoted: Vec<String> = fields.map(csv_field).collect();
        out.push_str(&quoted.join(","));
        out.push_str("\r\n");
    };
    line(&mut columns.iter().copied());
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
    out
}

fn csv_field(field: &str) -> String {
    if field.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_owned()
    }
}

fn print_table(year: u32, outgoing: bool, columns: &[&str], rows: &[Vec<String>]) {
    let title = if outgoing {
        "Sổ văn bản đi"
    } else {
        "Sổ đăng ký văn bản đến"
    };
    outln!(
        "{title} {year}: {}",
        output::plural(rows.len() as u64, "entry", "entries")
    );
    for row in rows {
        outln!("");
        for (column, value) in columns.iter().zip(row) {
            if !value.is_empty() {
                outln!("  {:<31} {}", column, output::cut(value, 100));
            }
        }
    }
}
