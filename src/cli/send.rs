//! `lienthong send`: signs a document as its sender's organisation and
//! sends it with its attachments.

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};

use super::connection::{connect, Connection};
use super::error::{CliError, Result};
use super::output::{self, outln, print_json};
use crate::client::{self, AttachmentFile};
use crate::clock;
use crate::pb;
use crate::pki::{self, PkiPaths};
use serde_json::json;

#[derive(Clone, Copy, ValueEnum)]
pub enum UrgencyArg {
    Normal,
    Khan,
    ThuongKhan,
    HoaToc,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum SecrecyArg {
    None,
    Mat,
    ToiMat,
    TuyetMat,
}

#[derive(Args)]
pub struct SendArgs {
    #[command(flatten)]
    pub conn: Connection,
    /// Recipients: organisation codes or aliases, or groups such as all-communes.
    #[arg(long, required = true, value_delimiter = ',', value_name = "R[,R...]")]
    pub to: Vec<String>,
    /// Document type: a code (chi-thi), an abbreviation (CT) or the
    /// Vietnamese name (Chỉ thị, or chi thi); `lienthong types` lists them.
    #[arg(long = "type", value_name = "TYPE")]
    pub document_type: String,
    /// Number (số), restarting each year; `auto`: the server assigns the
    /// next number of your series (secret documents have their own).
    #[arg(long, value_name = "N|auto", value_parser = parse_number)]
    pub number: u64,
    /// Notation (ký hiệu): type abbreviation, your organisation's (see
    /// `lienthong directory`), then optionally a unit: CT-UBND, UBND-VX.
    #[arg(long)]
    pub notation: String,
    /// Summary line (trích yếu).
    #[arg(long)]
    pub subject: String,
    /// Date of issue, YYYY-MM-DD; default today (Vietnam time).
    #[arg(long)]
    pub date: Option<String>,
    /// Place of issue.
    #[arg(long, default_value = "")]
    pub place: String,
    /// Short content.
    #[arg(long, default_value = "")]
    pub content: String,
    /// Full name of the person who signs (người ký), e.g. "Nguyễn Văn A".
    #[arg(long, default_value = "", value_name = "NAME")]
    pub signer_name: String,
    /// Position of the person who signs, e.g. "Chủ tịch".
    #[arg(long, default_value = "", value_name = "POSITION")]
    pub signer_position: String,
    /// Signing authority: TM., KT., TL., TUQ. or Q.
    #[arg(long, default_value = "")]
    pub competence: String,
    /// Urgency (độ khẩn): khan (khẩn), thuong-khan (thượng khẩn), hoa-toc (hỏa tốc).
    #[arg(long, value_enum, default_value = "normal")]
    pub urgency: UrgencyArg,
    /// Secrecy (độ mật): mat (mật), toi-mat (tối mật), tuyet-mat (tuyệt mật).
    #[arg(long, value_enum, default_value = "none")]
    pub secrecy: SecrecyArg,
    /// Deadline for handling, YYYY-MM-DD.
    #[arg(long)]
    pub due: Option<String>,
    /// Id of the document this one answers.
    #[arg(long)]
    pub reply_to: Option<String>,
    /// A file to attach; repeat for several.
    #[arg(long, value_name = "FILE")]
    pub attach: Vec<PathBuf>,
    /// A line of the printed "nơi nhận" list; repeat for several.
    #[arg(long, value_name = "TEXT")]
    pub to_place: Vec<String>,
    /// Makes retries safe: the same key and content returns the first send.
    #[arg(long)]
    pub idempotency_key: Option<String>,
    /// The largest document the server takes, attachments included, in MiB
    /// (its --max-document-bytes): checked here before anything is uploaded.
    #[arg(long, value_name = "MIB", default_value_t = crate::defaults::MAX_DOCUMENT_MIB as f64)]
    pub max_document_mib: f64,
    /// The organisation's document signing key (PKCS#8 PEM); default: the
    /// one listed for --as in the PKI folder's clients.toml.
    #[arg(long, value_name = "FILE")]
    pub signing_key: Option<PathBuf>,
}

pub async fn run(args: SendArgs) -> Result {
    send(args, None).await
}

/// Sends a document; `supersedes` makes it an update or replacement of an
/// earlier one (`lienthong update|replace`).
pub async fn send(args: SendArgs, supersedes: Option<pb::Supersedes>) -> Result {
    let settings = args.conn.settings()?;
    let from = match (&settings.as_org, &args.conn.cert) {
        (Some(org), _) => org.value.clone(),
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
        // `--to "a, b"` splits into "a" and " b": sign the names the user
        // meant, since the server refuses blanks around a recipient.
        to: args.to.iter().map(|t| t.trim().to_owned()).collect(),
        number: args.number,
        notation: args.notation,
        place: args.place,
        promulgation_date: args
            .date
            .unwrap_or_else(|| clock::format_date(clock::today())),
        document_type: super::types::code_of("--type", &args.document_type)?.to_owned(),
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
        supersedes,
    };
    let signer = signing_key(args.signing_key.as_deref(), &settings, &from)?;
    let request = client::send_request(header, attachments, args.idempotency_key, &signer)?;
    // As the server counts: the document's bytes and every attachment.
    let total = request.document.len()
        + request
            .attachments
            .iter()
            .map(|a| a.content.len())
            .sum::<usize>();
    let limit = args.max_document_mib * MIB;
    if total as f64 > limit {
        return Err(too_large(total, limit));
    }
    let mut client = connect(&args.conn).await?;
    let response = client
        .send(request)
        .await
        .map_err(|status| {
            // The server's limit is lower than the one checked here.
            if status.code() == tonic::Code::ResourceExhausted
                && status.message().starts_with("max_document_bytes")
            {
                let limit = server_limit(status.message()).unwrap_or(limit);
                return too_large(total, limit);
            }
            CliError::from(status)
        })?
        .into_inner();
    print_sent(&response, args.number == 0, args.conn.json, "sent");
    Ok(())
}

/// `--number`: a number, or `auto`, sent as 0 ("to be assigned").
pub(super) fn parse_number(text: &str) -> std::result::Result<u64, String> {
    if text.eq_ignore_ascii_case("auto") {
        return Ok(0);
    }
    match text.parse::<u64>() {
        Ok(0) => Err("numbers start at 1; give `auto` to have the server assign one".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("{text:?} is neither a number nor `auto`")),
    }
}

const MIB: f64 = 1024.0 * 1024.0;

/// A document over the size limit, in the units a clerk reads.
fn too_large(total: usize, limit: f64) -> CliError {
    CliError::new(
        tonic::Code::ResourceExhausted,
        format!(
            "max_document_bytes: the document and its attachments are {:.1} MiB; the limit is {:.1} MiB",
            total as f64 / MIB,
            limit / MIB
        ),
    )
    .with_hint("send the attachments in several documents, or compress them")
}

/// The limit, in bytes, that the server's message names ("… the limit is N").
fn server_limit(message: &str) -> Option<f64> {
    message.rsplit(' ').find_map(|word| {
        word.trim_end_matches(|c: char| !c.is_ascii_digit())
            .parse::<f64>()
            .ok()
    })
}

/// The organisation a PEM client certificate names, for `send --cert` without `--as`.
fn org_of_certificate(path: &Path) -> Result<String> {
    use rustls::pki_types::{pem::PemObject, CertificateDer};
    let cert = CertificateDer::from_pem_file(path)
        .map_err(|e| format!("cannot read a certificate from {}: {e}", path.display()))?;
    pki::org_from_certificate(&cert)
        .map(|code| code.to_string())
        .map_err(|e| format!("{}: {e}; give --as ORG", path.display()).into())
}

/// What the server accepted; `verb` says how ("sent", "recorded").
pub(super) fn print_sent(r: &pb::SendResponse, auto: bool, as_json: bool, verb: &str) {
    if as_json {
        print_json(&json!({
            "id": r.id,
            "number": r.number,
            "number_assigned": auto,
            "edxml_id": r.edxml_id,
            "accepted_at": output::at(r.accepted_at_ms),
            "accepted_at_ms": r.accepted_at_ms,
            "duplicate": r.duplicate,
            "deliveries": r.deliveries.iter().map(output::delivery).collect::<Vec<_>>(),
        }));
        return;
    }
    let what = if r.duplicate {
        "already sent (same idempotency key)"
    } else {
        verb
    };
    outln!("{what}: {}", r.id);
    if auto {
        outln!("number: {:02} (assigned by the server)", r.number);
    }
    outln!("edXML id: {}", r.edxml_id);
    outln!("accepted: {}", clock::format_vietnam(r.accepted_at_ms));
    outln!(
        "{}:",
        output::plural(r.deliveries.len() as u64, "recipient", "recipients")
    );
    for d in &r.deliveries {
        outln!("  {}", output::delivery_line(d));
    }
}

/// The key `from` signs with: `file` if given, else the one the PKI folder
/// lists for it.
pub fn signing_key(
    file: Option<&Path>,
    settings: &super::settings::Resolved,
    from: &str,
) -> Result<crate::crypto::SigningKey> {
    match file {
        Some(file) => {
            let text = std::fs::read_to_string(file)
                .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
            Ok(crate::crypto::SigningKey::from_pem(&text)
                .map_err(|e| format!("{}: {e}", file.display()))?)
        }
        None => pki::find_signing_key(&PkiPaths::new(&settings.pki.value), from).map_err(|e| {
            CliError::new(tonic::Code::NotFound, e.to_string()).with_hint(format!(
                "the PKI folder ({}, {}) holds the signing keys; give --pki DIR, set LIENTHONG_PKI or run `lienthong login`, or give --signing-key FILE",
                settings.pki.value.display(),
                settings.pki.source
            ))
        }),
    }
}
