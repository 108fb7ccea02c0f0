//! `lienthong send`: signs a document as its sender's organisation and
//! sends it with its attachments. Attachments over `--upload-above-mib`,
//! and the largest others while those carried would pass
//! `--max-document-mib`, are uploaded first, in chunks and resumably
//! (`transfers`); the rest travel inside the send. `send --batch` is in
//! `batch`, which builds each document with [`DocumentSpec`].

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use serde::Deserialize;
use tonic::transport::Channel;

use super::connection::{connect, Connection};
use super::error::{CliError, Result};
use super::output::{self, outln, print_json};
use super::transfers;
use crate::client::{self, Outgoing};
use crate::clock;
use crate::pb;
use crate::pb::exchange_client::ExchangeClient;
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
    #[arg(
        long,
        required_unless_present = "batch",
        value_delimiter = ',',
        value_name = "R[,R...]"
    )]
    pub to: Vec<String>,
    /// Document type: a code (chi-thi), an abbreviation (CT) or the
    /// Vietnamese name (Chỉ thị, or chi thi); `lienthong types` lists them.
    #[arg(long = "type", value_name = "TYPE", required_unless_present = "batch")]
    pub document_type: Option<String>,
    /// Number (số), restarting each year; `auto`: the server assigns the
    /// next number of your series (secret documents have their own).
    #[arg(long, value_name = "N|auto", value_parser = parse_number, required_unless_present = "batch")]
    pub number: Option<u64>,
    /// Notation (ký hiệu): type abbreviation, your organisation's (see
    /// `lienthong directory`), then optionally a unit: CT-UBND, UBND-VX.
    #[arg(long, required_unless_present = "batch")]
    pub notation: Option<String>,
    /// Summary line (trích yếu).
    #[arg(long, required_unless_present = "batch")]
    pub subject: Option<String>,
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
    #[command(flatten)]
    pub sizes: UploadSizes,
    /// The organisation's document signing key (PKCS#8 PEM); default: the
    /// one listed for --as in the PKI folder's clients.toml.
    #[arg(long, value_name = "FILE")]
    pub signing_key: Option<PathBuf>,
}

/// Which files travel inside a call and which are uploaded first: a send's
/// attachments, a paper record's scan.
#[derive(Args, Debug, Clone)]
pub struct UploadSizes {
    /// The largest call the server takes, in MiB (its --max-document-bytes):
    /// attachments (or a scan) that would take the call over it are
    /// uploaded first.
    #[arg(long, value_name = "MIB", default_value_t = crate::defaults::MAX_DOCUMENT_MIB as f64)]
    pub max_document_mib: f64,
    /// Attachments (or a scan) larger than this, in MiB, are uploaded in
    /// chunks first, resuming after a broken connection (or when run
    /// again); smaller ones travel inside the call.
    #[arg(long, value_name = "MIB", default_value_t = UPLOAD_ABOVE_MIB)]
    pub upload_above_mib: f64,
}

impl UploadSizes {
    /// Bytes over which an attachment is uploaded, and the room for those
    /// carried inside a send (the limit, less the document's own share).
    pub fn bytes(&self) -> (u64, u64) {
        let room = (self.max_document_mib * MIB) as u64;
        (
            (self.upload_above_mib * MIB) as u64,
            room.saturating_sub(DOCUMENT_SHARE),
        )
    }
}

/// Attachments above this many MiB are uploaded by default.
pub const UPLOAD_ABOVE_MIB: f64 = 4.0;

/// A document's fields as a send gives them: from the flags of `send`, or
/// from one document of a batch (a JSON object with the same names, the
/// flags standing for what it leaves out). Attachment paths of a batch
/// file are relative to the file's folder.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocumentSpec {
    pub to: Option<Vec<String>>,
    #[serde(rename = "type")]
    pub document_type: Option<String>,
    /// A number, or "auto".
    pub number: Option<serde_json::Value>,
    pub notation: Option<String>,
    pub subject: Option<String>,
    pub date: Option<String>,
    pub place: Option<String>,
    pub content: Option<String>,
    pub signer_name: Option<String>,
    pub signer_position: Option<String>,
    pub competence: Option<String>,
    pub urgency: Option<String>,
    pub secrecy: Option<String>,
    pub due: Option<String>,
    pub reply_to: Option<String>,
    pub attach: Option<Vec<PathBuf>>,
    pub to_place: Option<Vec<String>>,
    pub idempotency_key: Option<String>,
}

impl SendArgs {
    /// The document the flags describe.
    pub fn spec(&self) -> DocumentSpec {
        let some = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        DocumentSpec {
            to: (!self.to.is_empty()).then(|| self.to.clone()),
            document_type: self.document_type.clone(),
            number: self.number.map(|n| match n {
                0 => serde_json::Value::from("auto"),
                n => serde_json::Value::from(n),
            }),
            notation: self.notation.clone(),
            subject: self.subject.clone(),
            date: self.date.clone(),
            place: some(&self.place),
            content: some(&self.content),
            signer_name: some(&self.signer_name),
            signer_position: some(&self.signer_position),
            competence: some(&self.competence),
            urgency: self
                .urgency
                .to_possible_value()
                .map(|v| v.get_name().to_owned()),
            secrecy: self
                .secrecy
                .to_possible_value()
                .map(|v| v.get_name().to_owned()),
            due: self.due.clone(),
            reply_to: self.reply_to.clone(),
            attach: (!self.attach.is_empty()).then(|| self.attach.clone()),
            to_place: (!self.to_place.is_empty()).then(|| self.to_place.clone()),
            idempotency_key: self.idempotency_key.clone(),
        }
    }
}

/// What a send's own fields (document, signature, framing) take at most
/// of the size limit, besides the attachments it carries.
const DOCUMENT_SHARE: u64 = 64 * 1024;

impl DocumentSpec {
    /// This document, with `defaults` for what it leaves out.
    pub fn or(self, defaults: &DocumentSpec) -> DocumentSpec {
        let d = defaults.clone();
        DocumentSpec {
            to: self.to.or(d.to),
            document_type: self.document_type.or(d.document_type),
            number: self.number.or(d.number),
            notation: self.notation.or(d.notation),
            subject: self.subject.or(d.subject),
            date: self.date.or(d.date),
            place: self.place.or(d.place),
            content: self.content.or(d.content),
            signer_name: self.signer_name.or(d.signer_name),
            signer_position: self.signer_position.or(d.signer_position),
            competence: self.competence.or(d.competence),
            urgency: self.urgency.or(d.urgency),
            secrecy: self.secrecy.or(d.secrecy),
            due: self.due.or(d.due),
            reply_to: self.reply_to.or(d.reply_to),
            attach: self.attach.or(d.attach),
            to_place: self.to_place.or(d.to_place),
            // A key names one document: never shared by a batch.
            idempotency_key: self.idempotency_key,
        }
    }

    /// The number: 0 for `auto`.
    pub fn number(&self) -> Result<u64> {
        match &self.number {
            None => Err(missing("number")),
            Some(serde_json::Value::Number(n)) => n
                .as_u64()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("number {n} is not a whole number of at least 1").into()),
            Some(serde_json::Value::String(text)) => Ok(parse_number(text)?),
            Some(other) => Err(format!("number {other} is neither a number nor \"auto\"").into()),
        }
    }

    /// The header of the document `from` sends, attachments not declared
    /// yet.
    pub fn header(&self, from: &str, supersedes: Option<pb::Supersedes>) -> Result<pb::Document> {
        let required =
            |value: &Option<String>, name: &str| value.clone().ok_or_else(|| missing(name));
        let urgency = self.urgency.as_deref().unwrap_or("normal");
        let urgency = UrgencyArg::from_str(urgency, true).map_err(|_| {
            format!("urgency {urgency:?} is not normal, khan, thuong-khan or hoa-toc")
        })?;
        let secrecy = self.secrecy.as_deref().unwrap_or("none");
        let secrecy = SecrecyArg::from_str(secrecy, true)
            .map_err(|_| format!("secrecy {secrecy:?} is not none, mat, toi-mat or tuyet-mat"))?;
        let to = self
            .to
            .clone()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| missing("to"))?;
        Ok(pb::Document {
            from: from.to_owned(),
            // `--to "a, b"` splits into "a" and " b": sign the names the user
            // meant, since the server refuses blanks around a recipient.
            to: to.iter().map(|t| t.trim().to_owned()).collect(),
            number: self.number()?,
            notation: required(&self.notation, "notation")?,
            place: self.place.clone().unwrap_or_default(),
            promulgation_date: self
                .date
                .clone()
                .unwrap_or_else(|| clock::format_date(clock::today())),
            document_type: super::types::code_of(
                "--type",
                &required(&self.document_type, "type")?,
            )?
            .to_owned(),
            subject: required(&self.subject, "subject")?,
            content: self.content.clone().unwrap_or_default(),
            signer: Some(pb::Signer {
                competence: self.competence.clone().unwrap_or_default(),
                position: self.signer_position.clone().unwrap_or_default(),
                full_name: self.signer_name.clone().unwrap_or_default(),
            }),
            due_date: self.due.clone().unwrap_or_default(),
            urgency: match urgency {
                UrgencyArg::Normal => pb::Urgency::Normal,
                UrgencyArg::Khan => pb::Urgency::Khan,
                UrgencyArg::ThuongKhan => pb::Urgency::ThuongKhan,
                UrgencyArg::HoaToc => pb::Urgency::HoaToc,
            } as i32,
            secrecy: match secrecy {
                SecrecyArg::None => pb::Secrecy::None,
                SecrecyArg::Mat => pb::Secrecy::Mat,
                SecrecyArg::ToiMat => pb::Secrecy::ToiMat,
                SecrecyArg::TuyetMat => pb::Secrecy::TuyetMat,
            } as i32,
            reply_to: self.reply_to.clone().unwrap_or_default(),
            to_places: self.to_place.clone().unwrap_or_default(),
            attachments: Vec::new(),
            supersedes,
        })
    }
}

/// A field a document must give.
fn missing(name: &str) -> CliError {
    CliError::new(
        tonic::Code::InvalidArgument,
        format!("the document gives no {name} (--{name} on the command line, \"{name}\" in a batch file)"),
    )
}

pub async fn run(args: SendArgs) -> Result {
    send(args, None).await
}

/// The organisation sending: `--as`, else the one a `--cert` names.
pub fn sender(args: &SendArgs, settings: &super::settings::Resolved) -> Result<String> {
    match (&settings.as_org, &args.conn.cert) {
        (Some(org), _) => Ok(org.value.clone()),
        (None, Some(cert)) => org_of_certificate(cert),
        (None, None) => {
            Err("send needs --as ORG (or LIENTHONG_AS): the organisation sending".into())
        }
    }
}

/// One attachment of a send, once planned: uploaded already, or to be
/// read and carried inside.
pub enum Planned {
    Uploaded(Outgoing),
    Carried(PathBuf),
}

/// Plans the attachments at `paths` as their sizes say (see
/// [`transfers::to_upload`]) and uploads those to upload, in their order.
pub async fn plan_attachments(
    client: &ExchangeClient<Channel>,
    paths: &[PathBuf],
    (upload_above, room): (u64, u64),
) -> Result<Vec<Planned>> {
    let mut sizes = Vec::with_capacity(paths.len());
    for path in paths {
        let meta = std::fs::metadata(path)
            .map_err(|e| CliError::io(format!("cannot read {}", path.display()), &e))?;
        sizes.push(meta.len());
    }
    let mut out = Vec::with_capacity(paths.len());
    for (path, upload) in paths
        .iter()
        .zip(transfers::to_upload(&sizes, upload_above, room))
    {
        out.push(if upload {
            Planned::Uploaded(transfers::upload(client, path).await?)
        } else {
            Planned::Carried(path.clone())
        });
    }
    Ok(out)
}

/// The attachments as a send declares them, those carried read now.
pub fn gather(planned: Vec<Planned>) -> Result<Vec<Outgoing>> {
    planned
        .into_iter()
        .map(|p| match p {
            Planned::Uploaded(outgoing) => Ok(outgoing),
            Planned::Carried(path) => transfers::inline(&path),
        })
        .collect()
}

/// Sends a document; `supersedes` makes it an update or replacement of an
/// earlier one (`lienthong update|replace`).
pub async fn send(args: SendArgs, supersedes: Option<pb::Supersedes>) -> Result {
    let settings = args.conn.settings()?;
    let from = sender(&args, &settings)?;
    let spec = args.spec();
    let header = spec.header(&from, supersedes)?;
    let signer = signing_key(args.signing_key.as_deref(), &settings, &from)?;
    let client = connect(&args.conn).await?;
    let planned = plan_attachments(&client, &args.attach, args.sizes.bytes()).await?;
    let outgoing = gather(planned)?;
    let request = client::signed_request(header, outgoing, args.idempotency_key, &signer)?;
    // As the server counts: the document's bytes and what it carries.
    let total = request.document.len()
        + request
            .attachments
            .iter()
            .map(|a| a.content.len())
            .sum::<usize>();
    let limit = args.sizes.max_document_mib * MIB;
    let response = client
        .clone()
        .send(request)
        .await
        .map_err(|status| {
            // The server's limit is lower than the one given here.
            if status.code() == tonic::Code::ResourceExhausted
                && status.message().starts_with("max_document_bytes")
            {
                let limit = server_limit(status.message()).unwrap_or(limit);
                return too_large(total, limit);
            }
            CliError::from(status)
        })?
        .into_inner();
    print_sent(&response, header_auto(&spec), args.conn.json, "sent");
    Ok(())
}

/// Whether the document asked the server for its number.
pub fn header_auto(spec: &DocumentSpec) -> bool {
    spec.number().is_ok_and(|n| n == 0)
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

/// A send over the server's size limit, in the units a clerk reads.
fn too_large(total: usize, limit: f64) -> CliError {
    CliError::new(
        tonic::Code::ResourceExhausted,
        format!(
            "max_document_bytes: the document and its attachments are {:.1} MiB; the limit is {:.1} MiB",
            total as f64 / MIB,
            limit / MIB
        ),
    )
    .with_hint(format!(
        "give --max-document-mib {:.1} (the server's limit), so that the attachments that do not fit are uploaded first",
        limit / MIB
    ))
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
