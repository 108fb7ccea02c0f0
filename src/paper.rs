//! Paper documents: a clerk records a document that came or went on paper,
//! so that it counts (Decree 30 gives paper and electronic documents one
//! arrival numbering, and the electronic rate is counted over both).
//!
//! A record is stored like a document: a `StoredDocument` with `paper` set
//! whose `document_bytes` are the signed `PaperRecord`, byte for byte. The
//! rest of the service reads it through `document::header`, a `Document` derived from the record, so views,
//! registers, deadlines and events need not know paper from electronic.
//!
//! Who is who. An incoming record delivers to the caller (one delivery:
//! arrival number, inbox, unread, statuses 03..06); its `sender` is the
//! counterpart's code when the counterpart is in the directory — so that
//! counts by sender see it — and else the caller's own code, the
//! counterpart's name staying in the record. Either way that sender takes
//! no part in it (`StoredDocument::is_party`): it never sent it through the
//! service, so it can neither read nor revoke the clerk's record. An
//! outgoing record is the caller's own: its sender, its number in the
//! caller's series, its outbox, and no deliveries (the recipient records
//! its own incoming copy).

use crate::crypto;
use crate::directory::Organization;
use crate::document::paper::header;
use crate::document::{self, CheckedDocument};
use crate::error::{quote, Error, Result};
use crate::exchange::{self, Content, DocumentView, Exchange, Sent};
use crate::pb;
use crate::store::{DocId, NewDocument, Numbering, SendOutcome, Series};

/// At most this many characters name a counterpart outside the directory.
pub const MAX_COUNTERPART_CHARS: usize = 200;

/// A RecordPaper call as it arrived, before any check.
#[derive(Debug, Default)]
pub struct PaperInput {
    pub record: Vec<u8>,
    pub signature: Option<pb::DocumentSignature>,
    /// The scan: inside the call, or uploaded beforehand by the caller
    /// (BeginUpload, UploadAttachment), as a send's attachments are.
    pub scan: Vec<Content>,
}

/// A field of the document checks, renamed as the record's.
fn record_field(error: Error) -> Error {
    match error {
        Error::InvalidArgument { field, reason } => Error::InvalidArgument {
            field: field
                .replace("document.attachments[0]", "record.scan")
                .replacen("document", "record", 1),
            reason,
        },
        other => other,
    }
}

impl Exchange {
    /// Records a paper document for the caller's own organisation. Returns
    /// only once it is durable.
    pub async fn record_paper(&self, caller: &Organization, input: PaperInput) -> Result<Sent> {
        let rules = self.rules();
        let total = input.record.len() + input.scan.iter().map(Content::inline_len).sum::<usize>();
        if total > rules.limits.max_document_bytes {
            return Err(Error::exhausted(
                "max_document_bytes",
                format!(
                    "the record and its scan take {total} bytes; the limit is {}",
                    rules.limits.max_document_bytes
                ),
            ));
        }
        let record: pb::PaperRecord =
            document::decode_signed(&input.record, "record", "lienthong.v1.PaperRecord")?;
        let incoming = match pb::PaperDirection::try_from(record.direction) {
            Ok(pb::PaperDirection::Incoming) => true,
            Ok(pb::PaperDirection::Outgoing) => false,
            _ => {
                return Err(Error::invalid(
                    "record.direction",
                    "must be PAPER_DIRECTION_INCOMING (1) or PAPER_DIRECTION_OUTGOING (2)",
                ))
            }
        };
        self.check_organization(caller, &record, incoming)?;
        let counterpart = self.counterpart(caller, &record.counterpart)?;

        // The document rules, on the header the record stands for; the
        // parties were checked above, so they stand in as the caller.
        let mut shape = header(&record);
        shape.from = caller.code.to_string();
        shape.to = vec![caller.code.to_string()];
        let checked = document::check(shape).map_err(record_field)?;
        document::check_date_of_issue(checked.promulgation_date, rules.clock.today())
            .map_err(record_field)?;
        if incoming && record.number == 0 {
            return Err(Error::invalid(
                "record.number",
                "is required for an incoming document: the number printed on it",
            ));
        }
        if !incoming {
            document::check_issuer(&checked, &caller.label(), caller.abbreviation())
                .map_err(record_field)?;
        }
        let key = rules.check_signed(
            caller,
            &input.record,
            input.signature.as_ref(),
            crypto::paper_message,
            "the paper record",
        )?;
        let key_usable_until_ms = key.usable_until_ms();
        check_scan(&checked, &input.scan)?;

        let (sender, recipients) = if incoming {
            (
                counterpart.map_or(caller.code, |o| o.code),
                vec![caller.code],
            )
        } else {
            (caller.code, Vec::new())
        };
        // Checked above: present and verified.
        let signature = input.signature.unwrap_or_default();
        let new = NewDocument {
            id: DocId::random()?,
            sender,
            recipients,
            content_digest: exchange::content_digest(&input.record, &checked),
            document_bytes: input.record,
            // check_scan made sure of an inline scan's digest; the store
            // checks that an uploaded one is a complete upload of the
            // caller's (`NewDocument::submitted_by`).
            attachments: exchange::new_attachments(&checked, input.scan),
            idempotency_key: None,
            numbering: Numbering {
                year: checked.numbering_year(),
                series: Series::Ordinary,
                number: checked.number(),
                notation: checked.document.notation.clone(),
            },
            signing_key_id: signature.key_id,
            signature: signature.signature,
            key_usable_until_ms,
            reply_to: None,
            supersedes: None,
            due_date: None,
            urgency: 0,
            paper: true,
            claims: None,
        };
        match self.store.send(new).await.map_err(scan_field)? {
            SendOutcome::Accepted(id, stored) | SendOutcome::Duplicate(id, stored) => Ok(Sent {
                view: DocumentView::new(id, stored)?,
                duplicate: false,
            }),
            SendOutcome::NumberTaken(id) => Err(Error::exists(
                "record.number",
                format!(
                    "{:02}/{} was already issued by {} in {} (document {id}); number and notation are unique per issuer and year",
                    record.number,
                    record.notation,
                    caller.alias,
                    checked.numbering_year()
                ),
            )),
            SendOutcome::KeyReused(id) => Err(Error::storage(format!(
                "a paper record without idempotency key met key reuse ({id})"
            ))),
            SendOutcome::KeyNoLongerUsable => Err(Error::invalid(
                "signature.key_id",
                "the key stopped being usable while the record was being accepted; sign with a current key",
            )),
        }
    }

    /// The record's own organisation must be the caller's, by its
    /// certificate: a clerk records only for its own body.
    fn check_organization(
        &self,
        caller: &Organization,
        record: &pb::PaperRecord,
        incoming: bool,
    ) -> Result<()> {
        document::check_exact_name("record.organization", &record.organization)?;
        let named = self.directory().org(&record.organization).ok_or_else(|| {
            Error::invalid(
                "record.organization",
                format!(
                    "{} is not an organisation in the directory",
                    quote(&record.organization)
                ),
            )
        })?;
        if named.code != caller.code {
            let role = if incoming { "recipient" } else { "issuer" };
            return Err(Error::PermissionDenied(format!(
                "record.organization: your certificate identifies {}; you cannot record a paper document as its {role}, {}",
                caller.label(),
                named.label()
            )));
        }
        Ok(())
    }

    /// The counterpart: an organisation of the directory, or `None` for a
    /// body outside it, named by at most 200 characters of text.
    fn counterpart(&self, caller: &Organization, text: &str) -> Result<Option<&Organization>> {
        let field = "record.counterpart";
        document::check_line(field, text, MAX_COUNTERPART_CHARS, true)?;
        document::check_exact_name(field, text)?;
        match self.directory().org(text) {
            Some(org) if org.code == caller.code => Err(Error::invalid(
                field,
                "names your own organisation; the counterpart is the other side",
            )),
            found => Ok(found),
        }
    }
}

/// The store's word on the document's one attachment, said of the scan.
fn scan_field(error: Error) -> Error {
    match error {
        Error::FailedPrecondition { field, reason } if field == "attachments[0]" => {
            Error::FailedPrecondition {
                field: "scan".into(),
                reason,
            }
        }
        other => other,
    }
}

/// The scan's content must be exactly what the record declares; an
/// uploaded one is checked against its upload by the store.
fn check_scan(checked: &CheckedDocument, contents: &[Content]) -> Result<()> {
    let declared = checked.document.attachments.first();
    match (declared, contents) {
        (None, []) => Ok(()),
        (Some(declared), [Content::Uploaded]) => {
            if declared.size == 0 {
                return Err(Error::invalid(
                    "scan",
                    "is marked uploaded, but record.scan.size is 0: an empty scan travels inline",
                ));
            }
            Ok(())
        }
        (Some(declared), [Content::Inline(content)]) => {
            if declared.size != content.len() as u64 {
                return Err(Error::invalid(
                    "scan",
                    format!(
                        "has {} bytes but record.scan.size says {}",
                        content.len(),
                        declared.size
                    ),
                ));
            }
            if crypto::sha256(content).as_slice() != declared.sha256.as_slice() {
                return Err(Error::invalid(
                    "scan",
                    "its SHA-256 does not match record.scan.sha256",
                ));
            }
            Ok(())
        }
        (declared, contents) => Err(Error::invalid(
            "scan",
            format!(
                "the record declares {} scan(s) but {} content(s) were sent",
                usize::from(declared.is_some()),
                contents.len()
            ),
        )),
    }
}
