//! `lienthong paper`: records a document that came or went on paper, for
//! the caller's own organisation, signed with its key.

use std::path::PathBuf;

use clap::Args;

use super::connection::{connect, Connection};
use super::error::Result;
use super::send::{self, parse_number, print_sent, signing_key, UploadSizes};
use crate::client;
use crate::clock;
use crate::pb;

#[derive(Args)]
#[command(group = clap::ArgGroup::new("direction").required(true).args(["incoming", "outgoing"]))]
pub struct PaperArgs {
    #[command(flatten)]
    pub conn: Connection,
    /// It came to your organisation on paper: it takes the next arrival number.
    #[arg(long = "in")]
    pub incoming: bool,
    /// Your organisation issued it on paper: it takes its number in your series.
    #[arg(long = "out")]
    pub outgoing: bool,
    /// The other side: an organisation code or alias, or the name of a body
    /// outside the directory (at most 200 characters).
    #[arg(long, value_name = "ORG_OR_TEXT")]
    pub counterpart: String,
    /// Number (số) as printed; `auto` (outgoing only): the next of your series.
    #[arg(long, value_name = "N|auto", value_parser = parse_number)]
    pub number: u64,
    /// Notation (ký hiệu) as printed, e.g. KH-UBND.
    #[arg(long)]
    pub notation: String,
    /// Document type: a code (ke-hoach), an abbreviation (KH) or the name.
    #[arg(long = "type", value_name = "TYPE")]
    pub document_type: String,
    /// Date of issue, YYYY-MM-DD; default today (Vietnam time).
    #[arg(long)]
    pub date: Option<String>,
    /// Summary line (trích yếu).
    #[arg(long)]
    pub subject: String,
    /// The scanned copy (a PDF), kept with the record. A large one is
    /// uploaded first, in chunks and resumably, as a send's attachments are
    /// (--upload-above-mib).
    #[arg(long, value_name = "FILE")]
    pub scan: Option<PathBuf>,
    #[command(flatten)]
    pub sizes: UploadSizes,
    /// The organisation's signing key (PKCS#8 PEM); default: the one listed
    /// for --as in the PKI folder's clients.toml.
    #[arg(long, value_name = "FILE")]
    pub signing_key: Option<PathBuf>,
}

pub async fn run(args: PaperArgs) -> Result {
    let settings = args.conn.settings()?;
    let Some(org) = settings.as_org.as_ref().map(|o| o.value.clone()) else {
        return Err("paper needs --as ORG (or LIENTHONG_AS): your organisation".into());
    };
    let direction = if args.incoming {
        pb::PaperDirection::Incoming
    } else {
        pb::PaperDirection::Outgoing
    };
    let record = pb::PaperRecord {
        direction: direction as i32,
        organization: org.clone(),
        counterpart: args.counterpart.trim().to_owned(),
        number: args.number,
        notation: args.notation,
        document_type: super::types::code_of("--type", &args.document_type)?.to_owned(),
        promulgation_date: args
            .date
            .unwrap_or_else(|| clock::format_date(clock::today())),
        subject: args.subject,
        scan: None,
    };
    let signer = signing_key(args.signing_key.as_deref(), &settings, &org)?;
    let client = connect(&args.conn).await?;
    let scans: Vec<PathBuf> = args.scan.into_iter().collect();
    let planned = send::plan_attachments(&client, &scans, args.sizes.bytes()).await?;
    let scan = send::gather(planned)?.into_iter().next();
    let request = client::signed_paper_request(record, scan, &signer)?;
    let response = client.clone().record_paper(request).await?.into_inner();
    print_sent(&response, args.number == 0, args.conn.json, "recorded");
    Ok(())
}
