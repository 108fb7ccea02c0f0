//! What makes a document acceptable: decoding the sender's bytes and checking
//! every header field against edXML's limits and Decree 30's clerical rules.
//!
//! The input is hostile. Every check names the field it rejects, as
//! `document.<field>`, so the sender's software can point at it.

pub mod paper;
pub mod text;
pub mod types;

use prost::Message;
use time::Date;

use crate::clock;
use crate::error::{quote, Error, Result};
use crate::pb;
pub use text::{check_exact_name, check_file_name, check_line, check_text};
pub use types::DocumentType;

/// A decoded document whose fields all passed the checks.
#[derive(Debug)]
pub struct CheckedDocument {
    pub document: pb::Document,
    pub document_type: &'static DocumentType,
    pub promulgation_date: Date,
}

/// Which of its issuer's number series a document takes (Decree 30):
/// secret documents (mật, tối mật, tuyệt mật) are numbered apart, so
/// `12/CT-UBND` secret and `12/CT-UBND` ordinary are two documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Series {
    Ordinary = 0,
    Secret = 1,
}

impl Series {
    /// How messages name the series.
    pub fn describe(self) -> &'static str {
        match self {
            Series::Ordinary => "ordinary series",
            Series::Secret => "secret series",
        }
    }
}

impl CheckedDocument {
    /// The year the number belongs to: numbers restart each 1 January.
    pub fn numbering_year(&self) -> u16 {
        self.promulgation_date.year() as u16
    }

    pub fn series(&self) -> Series {
        if self.document.secrecy == pb::Secrecy::None as i32 {
            Series::Ordinary
        } else {
            Series::Secret
        }
    }

    /// The number in the header, or `None` when it is 0: the sender asks
    /// the service to assign the next number of the series.
    pub fn number(&self) -> Option<u64> {
        (self.document.number != 0).then_some(self.document.number)
    }
}

/// Decodes a document as the sender sent it, without checking it. Used on
/// the way out, for bytes the server checked when they came in.
pub fn decode(bytes: &[u8]) -> Result<pb::Document> {
    pb::Document::decode(bytes).map_err(|e| {
        Error::invalid(
            "document",
            format!("not an encoded lienthong.v1.Document: {e}"),
        )
    })
}

/// Decodes signed bytes that just came in as a `type_name` message, and
/// refuses them unless they are exactly the canonical encoding of the
/// fields they decode to. A decoder drops fields it does not know, so
/// unknown fields (or a field written twice, or out of order) would be
/// signed into the record yet shown to no recipient: what recipients cannot
/// see must not be signed. Stored bytes are read with the plain decoders,
/// so records accepted before this rule still read.
pub fn decode_signed<M: Message + Default>(
    bytes: &[u8],
    field: &str,
    type_name: &str,
) -> Result<M> {
    let message = M::decode(bytes)
        .map_err(|e| Error::invalid(field, format!("not an encoded {type_name}: {e}")))?;
    let canonical = message.encoded_len();
    if canonical != bytes.len() || message.encode_to_vec() != bytes {
        return Err(Error::invalid(
            field,
            format!(
                "unknown or non-canonical fields: the {} signed bytes are not the {canonical} bytes that the fields of {type_name} encode to (each known field once, in field-number order, defaults left out); recipients could not see the difference, so it must not be signed",
                bytes.len()
            ),
        ));
    }
    Ok(message)
}

/// The header of a stored document, electronic or paper: the one way to
/// read what a stored record says. A paper record is not a `Document`; its
/// header is derived from it (see `paper::header`).
/// Stored documents call it with their `paper` flag and bytes.
pub fn header(paper: bool, bytes: &[u8]) -> Result<pb::Document> {
    if paper {
        paper::decode(bytes).map(|record| paper::header(&record))
    } else {
        decode(bytes)
    }
}

pub const MAX_NUMBER: u64 = 99_999_999_999; // edXML CodeNumber: at most 11 digits
const MAX_ATTACHMENTS: usize = 100;
/// The printed recipient list ("nơi nhận") has a line per recipient; the
/// district directory has fewer than 200 organisations.
pub const MAX_TO_PLACES: usize = 200;
/// How far after the date of issue a handling deadline may lie: a plan of
/// five years is the longest horizon of a district's documents; 9999-12-31
/// is a typing error or worse.
pub const MAX_DUE_YEARS: i32 = 5;

fn check_media_type(field: &str, value: &str) -> Result<()> {
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    match value.split_once('/') {
        Some((kind, sub)) if value.len() <= 127 && token(kind) && token(sub) => Ok(()),
        _ => Err(Error::invalid(
            field,
            format!(
                "{} is not a media type such as application/pdf",
                quote(value)
            ),
        )),
    }
}

fn check_date(field: &str, value: &str) -> Result<Date> {
    clock::parse_date(value)
        .ok_or_else(|| Error::invalid(field, format!("{} is not a date YYYY-MM-DD", quote(value))))
}

/// The same day `years` later (28 February for 29 February in a common
/// year); `years` may be negative.
pub fn years_after(date: Date, years: i32) -> Date {
    let year = date.year() + years;
    Date::from_calendar_date(year, date.month(), date.day())
        .or_else(|_| Date::from_calendar_date(year, date.month(), 28))
        .unwrap_or(date)
}

/// A handling deadline (`due` in `field`) within its window: not before
/// `from` (`from_name`, e.g. "the date of issue") and at most
/// [`MAX_DUE_YEARS`] years after it.
pub fn check_deadline(field: &str, due: Date, from: Date, from_name: &str) -> Result<()> {
    let latest = years_after(from, MAX_DUE_YEARS);
    if due < from || due > latest {
        return Err(Error::invalid(
            field,
            format!(
                "{} must lie from {from_name} ({}) to {MAX_DUE_YEARS} years after it ({})",
                clock::format_date(due),
                clock::format_date(from),
                clock::format_date(latest)
            ),
        ));
    }
    Ok(())
}

const COMPETENCES: [&str; 6] = ["", "TM.", "KT.", "TL.", "TUQ.", "Q."];

/// Checks every field of a document that was just decoded from a sender.
/// Recipients and the sender are resolved by the exchange, which knows the
/// directory; here they are only checked for shape.
pub fn check(document: pb::Document) -> Result<CheckedDocument> {
    let d = &document;
    check_line("document.from", &d.from, 64, true)?;
    check_exact_name("document.from", &d.from)?;
    if d.to.is_empty() {
        return Err(Error::invalid(
            "document.to",
            "at least one recipient is required",
        ));
    }
    for (i, to) in d.to.iter().enumerate() {
        let field = format!("document.to[{i}]");
        check_line(&field, to, 64, true)?;
        check_exact_name(&field, to)?;
    }

    if d.number > MAX_NUMBER {
        return Err(Error::invalid(
            "document.number",
            format!(
                "must be from 1 to {MAX_NUMBER}, or 0 for the service to assign the next one (got {})",
                d.number
            ),
        ));
    }
    check_line("document.notation", &d.notation, 30, true)?;
    if d.notation.contains('/') {
        return Err(Error::invalid(
            "document.notation",
            "is the part after the number and must not contain '/' (e.g. \"QĐ-UBND\")",
        ));
    }
    if d.notation
        .split('-')
        .any(|part| part.is_empty() || part.contains(char::is_whitespace))
    {
        return Err(Error::invalid(
            "document.notation",
            format!(
                "is parts joined by single hyphens, without spaces (e.g. \"QĐ-UBND\" or \"UBND-VX\"), got {}",
                quote(&d.notation)
            ),
        ));
    }
    let document_type = types::find(&d.document_type).ok_or_else(|| {
        Error::invalid(
            "document.document_type",
            format!(
                "{} is not one of the 29 types of Decree 30 (a code such as \"chi-thi\" or an abbreviation such as \"CT\")",
                quote(&d.document_type)
            ),
        )
    })?;
    if !document_type.abbreviation.is_empty() {
        let prefix = format!("{}-", document_type.abbreviation);
        if !d.notation.starts_with(&prefix) {
            return Err(Error::invalid(
                "document.notation",
                format!(
                    "a {}'s notation begins with {prefix:?} (Decree 30), got {}",
                    document_type.name,
                    quote(&d.notation)
                ),
            ));
        }
    }

    check_line("document.place", &d.place, 150, false)?;
    if d.promulgation_date.is_empty() {
        return Err(Error::invalid(
            "document.promulgation_date",
            "is required (YYYY-MM-DD)",
        ));
    }
    let promulgation_date = check_date("document.promulgation_date", &d.promulgation_date)?;
    check_line("document.subject", &d.subject, 500, true)?;
    if document_type.code == "cong-van" {
        check_official_letter_subject(&d.subject)?;
    }
    check_text("document.content", &d.content, 500, false)?;
    if let Some(signer) = &d.signer {
        if !COMPETENCES.contains(&signer.competence.as_str()) {
            return Err(Error::invalid(
                "document.signer.competence",
                format!(
                    "{} is not one of TM., KT., TL., TUQ., Q. or empty",
                    quote(&signer.competence)
                ),
            ));
        }
        check_line("document.signer.position", &signer.position, 100, false)?;
        check_line("document.signer.full_name", &signer.full_name, 100, false)?;
    }
    if !d.due_date.is_empty() {
        let due = check_date("document.due_date", &d.due_date)?;
        check_deadline(
            "document.due_date",
            due,
            promulgation_date,
            "the date of issue",
        )?;
    }
    if pb::Urgency::try_from(d.urgency).is_err() {
        return Err(Error::invalid(
            "document.urgency",
            format!("{} is not an urgency (0 to 3)", d.urgency),
        ));
    }
    if pb::Secrecy::try_from(d.secrecy).is_err() {
        return Err(Error::invalid(
            "document.secrecy",
            format!("{} is not a secrecy level (0 to 3)", d.secrecy),
        ));
    }
    check_to_places(&d.to_places)?;

    if d.attachments.len() > MAX_ATTACHMENTS {
        return Err(Error::exhausted(
            "document.attachments",
            format!(
                "at most {MAX_ATTACHMENTS} attachments (got {})",
                d.attachments.len()
            ),
        ));
    }
    text::check_file_names(d.attachments.iter().map(|a| a.name.as_str()), |i| {
        format!("document.attachments[{i}].name")
    })?;
    for (i, a) in d.attachments.iter().enumerate() {
        check_media_type(
            &format!("document.attachments[{i}].media_type"),
            &a.media_type,
        )?;
        if a.sha256.len() != 32 {
            return Err(Error::invalid(
                format!("document.attachments[{i}].sha256"),
                format!("must be 32 bytes (got {})", a.sha256.len()),
            ));
        }
    }

    Ok(CheckedDocument {
        document,
        document_type,
        promulgation_date,
    })
}

/// The printed recipient list: at most [`MAX_TO_PLACES`] lines, each one
/// line of up to 150 characters, none empty, none twice.
fn check_to_places(places: &[String]) -> Result<()> {
    if places.len() > MAX_TO_PLACES {
        return Err(Error::invalid(
            "document.to_places",
            format!("at most {MAX_TO_PLACES} lines (got {})", places.len()),
        ));
    }
    for (i, place) in places.iter().enumerate() {
        let field = format!("document.to_places[{i}]");
        check_line(&field, place, 150, true)?;
        if let Some(j) = places[..i].iter().position(|p| p == place) {
            return Err(Error::invalid(
                field,
                format!("{} is document.to_places[{j}] again", quote(place)),
            ));
        }
    }
    Ok(())
}

/// A công văn's summary line says what it is about: "V/v …" ("về việc").
fn check_official_letter_subject(subject: &str) -> Result<()> {
    match subject.trim_start().strip_prefix("V/v") {
        Some(rest) if !rest.trim().is_empty() => Ok(()),
        _ => Err(Error::invalid(
            "document.subject",
            format!(
                "a Công văn's subject starts with \"V/v\" and says what it is about (Decree 30), e.g. \"V/v triển khai kế hoạch\"; got {}",
                quote(subject)
            ),
        )),
    }
}

/// The issuer part of a notation: the part right after the type's
/// abbreviation (the first part for a công văn or thư công), which must be
/// the issuer's abbreviation exactly. Parts after it name the drafting unit
/// and are free: `CT-UBND`, `CT-UBND-VP`, `UBND-VX`. With no abbreviation
/// known for the issuer, nothing more is checked.
pub fn check_issuer(
    checked: &CheckedDocument,
    issuer: &str,
    abbreviation: Option<&str>,
) -> Result<()> {
    let Some(abbreviation) = abbreviation else {
        return Ok(());
    };
    let notation = &checked.document.notation;
    let kind = checked.document_type;
    let at = usize::from(!kind.abbreviation.is_empty());
    let found = notation.split('-').nth(at);
    if found == Some(abbreviation) {
        return Ok(());
    }
    let expected = if kind.abbreviation.is_empty() {
        abbreviation.to_owned()
    } else {
        format!("{}-{abbreviation}", kind.abbreviation)
    };
    let hint = if found == Some("UBND") {
        "; a document in the committee's name (TM. Ủy ban nhân dân) is issued by the committee itself"
    } else {
        ""
    };
    Err(Error::invalid(
        "document.notation",
        format!(
            "{issuer} issues as {abbreviation:?}, so a {}'s notation is {expected:?}, optionally followed by \"-UNIT\" (got {}){hint}",
            kind.name,
            quote(notation)
        ),
    ))
}

/// How far back a date of issue may lie. A clerk registering a document
/// issued years ago is doing something else (digitising an archive), and
/// a date decades back is a typing error.
pub const MAX_YEARS_BACK: i32 = 10;

/// A plausible date of issue: not after `today` (Vietnam time, by the
/// service's clock) and not more than [`MAX_YEARS_BACK`] years before it.
pub fn check_date_of_issue(date: Date, today: Date) -> Result<()> {
    let field = "document.promulgation_date";
    if date > today {
        return Err(Error::invalid(
            field,
            format!(
                "{} is after today ({} in Vietnam): a document is dated the day it is issued",
                clock::format_date(date),
                clock::format_date(today)
            ),
        ));
    }
    let earliest = years_after(today, -MAX_YEARS_BACK);
    if date < earliest {
        return Err(Error::invalid(
            field,
            format!(
                "{} is more than {MAX_YEARS_BACK} years before today ({}); check the year",
                clock::format_date(date),
                clock::format_date(today)
            ),
        ));
    }
    Ok(())
}

/// The edXML DocumentId: `OrganId,yyyy/MM/dd,Number/Notation`.
pub fn edxml_id(sender: &str, promulgation_date: &str, number: u64, notation: &str) -> String {
    format!(
        "{sender},{},{number:02}/{notation}",
        promulgation_date.replace('-', "/")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> pb::Document {
        pb::Document {
            from: "phong-noi-vu".into(),
            to: vec!["all-communes".into()],
            number: 12,
            notation: "CT-UBND".into(),
            document_type: "CT".into(),
            subject: "Về việc tăng cường phòng cháy".into(),
            promulgation_date: "2026-11-20".into(),
            ..Default::default()
        }
    }

    fn field_of(doc: pb::Document) -> String {
        match check(doc) {
            Err(Error::InvalidArgument { field, .. }) => field,
            Err(Error::ResourceExhausted { limit, .. }) => limit,
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn a_valid_document_passes() {
        assert!(check(valid()).is_ok());
    }

    #[test]
    fn number_zero_asks_for_one() {
        let mut d = valid();
        d.number = 0;
        assert_eq!(check(d).ok().map(|c| c.number()), Some(None));
    }

    #[test]
    fn a_cong_van_is_about_something() {
        let mut d = valid();
        d.document_type = "cong-van".into();
        d.notation = "UBND-VX".into();
        d.subject = "V/v triển khai kế hoạch".into();
        assert!(check(d.clone()).is_ok());
        for bad in ["V/v", "V/v  ", "Về việc triển khai", "v/v triển khai"] {
            d.subject = bad.into();
            assert_eq!(field_of(d.clone()), "document.subject", "{bad:?}");
        }
    }

    #[test]
    fn the_issuer_part_follows_the_type() {
        let checked = |notation: &str, kind: &str| {
            let mut d = valid();
            d.notation = notation.into();
            d.document_type = kind.into();
            d.subject = "V/v phòng cháy".into();
            check(d).unwrap_or_else(|e| panic!("{notation}: {e}"))
        };
        let issuer = |c: &CheckedDocument, abbr: Option<&str>| check_issuer(c, "x", abbr).is_ok();
        assert!(issuer(&checked("CT-PNV", "CT"), Some("PNV")));
        assert!(issuer(&checked("CT-PNV-TCCB", "CT"), Some("PNV")));
        assert!(issuer(&checked("PNV", "cong-van"), Some("PNV")));
        assert!(issuer(&checked("PNV-VX", "cong-van"), Some("PNV")));
        assert!(!issuer(&checked("CT-UBND", "CT"), Some("PNV")));
        assert!(!issuer(&checked("CT-VX-PNV", "CT"), Some("PNV")));
        assert!(!issuer(&checked("CT-pnv", "CT"), Some("PNV")));
        assert!(!issuer(&checked("UBND-PNV", "cong-van"), Some("PNV")));
        assert!(!issuer(&checked("CT-PNV", "cong-van"), Some("PNV")));
        assert!(issuer(&checked("CT-ANY", "CT"), None));
    }

    #[test]
    fn dates_of_issue_are_plausible() {
        let day = |t: &str| clock::parse_date(t).unwrap_or_else(|| panic!("{t}"));
        let today = day("2026-11-20");
        assert!(check_date_of_issue(today, today).is_ok());
        assert!(check_date_of_issue(day("2016-11-20"), today).is_ok());
        assert!(check_date_of_issue(day("2016-11-19"), today).is_err());
        assert!(check_date_of_issue(day("2026-11-21"), today).is_err());
        // From 29 February, ten years back is 28 February.
        assert!(check_date_of_issue(day("2018-02-28"), day("2028-02-29")).is_ok());
        assert!(check_date_of_issue(day("2018-02-27"), day("2028-02-29")).is_err());
    }

    #[test]
    fn limits_count_characters_not_bytes() {
        let mut d = valid();
        d.subject = "ữ".repeat(500); // 1500 bytes, 500 characters
        assert!(check(d.clone()).is_ok());
        d.subject.push('a');
        assert_eq!(field_of(d), "document.subject");
    }

    #[test]
    fn each_field_is_named() {
        type Mutation = Box<dyn Fn(&mut pb::Document)>;
        let cases: Vec<(&str, Mutation)> = vec![
            ("document.from", Box::new(|d| d.from.clear())),
            ("document.to", Box::new(|d| d.to.clear())),
            ("document.number", Box::new(|d| d.number = MAX_NUMBER + 1)),
            (
                "document.notation",
                Box::new(|d| d.notation = "CT--UBND".into()),
            ),
            (
                "document.notation",
                Box::new(|d| d.notation = "CT-UBND ".into()),
            ),
            (
                "document.subject",
                Box::new(|d| {
                    d.document_type = "cong-van".into();
                    d.notation = "UBND-VX".into();
                }),
            ),
            (
                "document.notation",
                Box::new(|d| d.notation = "UBND".into()),
            ),
            (
                "document.notation",
                Box::new(|d| d.notation = "12/CT-UBND".into()),
            ),
            (
                "document.document_type",
                Box::new(|d| d.document_type = "XX".into()),
            ),
            ("document.subject", Box::new(|d| d.subject = "  ".into())),
            (
                "document.promulgation_date",
                Box::new(|d| d.promulgation_date = "20/11/2026".into()),
            ),
            (
                "document.due_date",
                Box::new(|d| d.due_date = "2026-11-01".into()),
            ),
            ("document.urgency", Box::new(|d| d.urgency = 9)),
            ("document.secrecy", Box::new(|d| d.secrecy = -1)),
            (
                "document.subject",
                Box::new(|d| d.subject = "a\u{7}b".into()),
            ),
        ];
        for (field, mutate) in cases {
            let mut d = valid();
            mutate(&mut d);
            assert_eq!(field_of(d), field);
        }
    }

    fn attachment(name: &str) -> pb::AttachmentRef {
        pb::AttachmentRef {
            name: name.into(),
            media_type: "application/pdf".into(),
            sha256: vec![0; 32],
            size: 1,
        }
    }

    fn reason_of(doc: pb::Document) -> String {
        match check(doc) {
            Err(e) => e.to_string(),
            Ok(_) => "accepted".into(),
        }
    }

    #[test]
    fn signed_bytes_are_exactly_the_fields_recipients_see() {
        let bytes = valid().encode_to_vec();
        let decoded: Result<pb::Document> = decode_signed(&bytes, "document", "D");
        assert!(decoded.is_ok());
        // An unknown field (99, bytes) of a megabyte: decoders drop it.
        let mut unknown = bytes.clone();
        unknown.extend_from_slice(&[0x9a, 0x06, 0x80, 0x80, 0x40]);
        unknown.extend(std::iter::repeat_n(0u8, 1 << 20));
        // The subject written twice: the last one wins, the first is hidden.
        let mut twice = bytes.clone();
        twice.extend(
            pb::Document {
                subject: "Khác".into(),
                ..Default::default()
            }
            .encode_to_vec(),
        );
        // The number as a varint with a needless continuation byte.
        let padded = {
            let mut b = pb::Document {
                number: 0,
                ..valid()
            }
            .encode_to_vec();
            b.extend_from_slice(&[0x18, 0x8c, 0x00]);
            b
        };
        for bad in [unknown, twice, padded] {
            let error = decode_signed::<pb::Document>(&bad, "document", "D").err();
            let message = error.map(|e| e.to_string()).unwrap_or_default();
            assert!(
                message.starts_with("document: unknown or non-canonical fields"),
                "{message}"
            );
        }
    }

    #[test]
    fn recipients_are_written_exactly() {
        for bad in [" xa-van-nham", "xa-van-nham ", "xa-van-nham\u{a0}"] {
            let mut d = valid();
            d.to.push(bad.into());
            assert_eq!(field_of(d), "document.to[1]", "{bad:?}");
        }
        let mut d = valid();
        d.from = "phong-noi-vu ".into();
        assert_eq!(field_of(d), "document.from");
    }

    #[test]
    fn the_printed_recipient_list_is_bounded() {
        let mut d = valid();
        d.to_places = (0..MAX_TO_PLACES)
            .map(|i| format!("Nơi nhận {i}"))
            .collect();
        assert!(check(d.clone()).is_ok());
        d.to_places.push("Lưu: VT".into());
        assert_eq!(field_of(d), "document.to_places");
        let mut d = valid();
        d.to_places = vec![String::new(); 100_000];
        assert!(reason_of(d).starts_with("document.to_places: at most 200 lines (got 100000)"));
        let mut d = valid();
        d.to_places = vec!["Như trên;".into(), "Lưu: VT".into(), "Như trên;".into()];
        assert!(reason_of(d)
            .starts_with("document.to_places[2]: \"Như trên;\" is document.to_places[0] again"));
        let mut d = valid();
        d.to_places = vec!["Như trên;\u{2028}Lưu: VT".into()];
        assert_eq!(field_of(d), "document.to_places[0]");
    }

    #[test]
    fn a_due_date_lies_within_five_years_of_issue() {
        let due = |text: &str| {
            let mut d = valid(); // issued 2026-11-20
            d.due_date = text.into();
            check(d).map(|_| ()).map_err(|e| e.to_string())
        };
        assert!(due("2026-11-20").is_ok());
        assert!(due("2031-11-20").is_ok());
        assert!(due("2031-11-21").is_err_and(|e| e.contains("5 years after")));
        assert!(due("9999-12-31").is_err());
        assert!(due("2026-11-19").is_err());
        // From 29 February, five years on is 28 February.
        let day = |t: &str| clock::parse_date(t).unwrap_or_else(|| panic!("{t}"));
        assert_eq!(years_after(day("2028-02-29"), 5), day("2033-02-28"));
    }

    #[test]
    fn every_text_field_refuses_hidden_and_reordering_characters() {
        type Mutation = Box<dyn Fn(&mut pb::Document, &str)>;
        let fields: Vec<(&str, Mutation)> = vec![
            (
                "document.subject",
                Box::new(|d, t| d.subject = format!("Về {t}")),
            ),
            ("document.content", Box::new(|d, t| d.content = t.into())),
            ("document.place", Box::new(|d, t| d.place = t.into())),
            (
                "document.notation",
                Box::new(|d, t| d.notation = format!("CT-UBND{t}")),
            ),
            (
                "document.to[0]",
                Box::new(|d, t| d.to = vec![format!("xa{t}")]),
            ),
            (
                "document.to_places[0]",
                Box::new(|d, t| d.to_places = vec![t.into()]),
            ),
            (
                "document.signer.full_name",
                Box::new(|d, t| {
                    d.signer = Some(pb::Signer {
                        full_name: t.into(),
                        ..Default::default()
                    })
                }),
            ),
            (
                "document.attachments[0].name",
                Box::new(|d, t| d.attachments = vec![attachment(&format!("{t}.pdf"))]),
            ),
        ];
        for (field, set) in &fields {
            for hidden in [
                "a\u{202e}b",
                "a\u{200b}b",
                "a\u{feff}b",
                "a\u{ad}b",
                "a\u{2066}b",
            ] {
                let mut d = valid();
                set(&mut d, hidden);
                let reason = reason_of(d);
                assert!(
                    reason.starts_with(&format!("{field}: contains ")),
                    "{hidden:?}: {reason}"
                );
            }
        }
    }

    #[test]
    fn attachments_are_named_apart_and_never_as_the_proof_folder() {
        let mut d = valid();
        d.attachments = vec![attachment("Kế hoạch.pdf"), attachment("KẾ HOẠCH.PDF")];
        assert_eq!(field_of(d), "document.attachments[1].name");
        let mut d = valid();
        d.attachments = vec![attachment("a.pdf"), attachment("Lienthong-Proof")];
        assert!(reason_of(d).contains("reserved"));
        let mut d = valid();
        d.attachments = vec![attachment("a\u{202e}fdp.exe")];
        assert_eq!(
            reason_of(d),
            "document.attachments[0].name: contains a right-to-left override (U+202E), which can disguise a file's type"
        );
    }

    #[test]
    fn refusals_quote_a_short_prefix_of_a_long_value() {
        let long = "x".repeat(100_000);
        type Mutation = Box<dyn Fn(&mut pb::Document, &str)>;
        let fields: Vec<(&str, Mutation)> = vec![
            (
                "document.document_type",
                Box::new(|d, t| d.document_type = t.into()),
            ),
            (
                "document.promulgation_date",
                Box::new(|d, t| d.promulgation_date = t.into()),
            ),
            ("document.due_date", Box::new(|d, t| d.due_date = t.into())),
            (
                "document.signer.competence",
                Box::new(|d, t| {
                    d.signer = Some(pb::Signer {
                        competence: t.into(),
                        ..Default::default()
                    })
                }),
            ),
            (
                "document.attachments[0].media_type",
                Box::new(|d, t| {
                    d.attachments = vec![pb::AttachmentRef {
                        media_type: t.into(),
                        ..attachment("a.pdf")
                    }]
                }),
            ),
        ];
        for (field, set) in &fields {
            let mut d = valid();
            set(&mut d, &long);
            let reason = reason_of(d);
            assert!(reason.starts_with(&format!("{field}: ")), "{reason}");
            assert!(reason.contains("(100000 characters)"), "{field}");
            assert!(reason.len() < 300, "{field}: {} bytes", reason.len());
        }
    }

    #[test]
    fn edxml_id_follows_the_standard() {
        assert_eq!(
            edxml_id("000.00.04.G14", "2012-08-06", 267, "VPCP-TTĐT"),
            "000.00.04.G14,2012/08/06,267/VPCP-TTĐT"
        );
    }
}
