//! What makes a document acceptable: decoding the sender's bytes and checking
//! every header field against edXML's limits and Decree 30's clerical rules.
//!
//! The input is hostile. Every check names the field it rejects, as
//! `document.<field>`, so the sender's software can point at it.

pub mod paper;
pub mod types;

use prost::Message;
use time::Date;

use crate::clock;
use crate::error::{Error, Result};
use crate::pb;
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

/// Counts characters, not bytes: the limits of edXML are in characters, and
/// Vietnamese letters take 2 or 3 bytes each.
fn check_text(field: &str, value: &str, max_chars: usize, required: bool) -> Result<()> {
    if required && value.trim().is_empty() {
        return Err(Error::invalid(field, "is required"));
    }
    let chars = value.chars().count();
    if chars > max_chars {
        return Err(Error::invalid(
            field,
            format!("must be at most {max_chars} characters (got {chars})"),
        ));
    }
    if let Some(c) = value
        .chars()
        .find(|c| c.is_control() && *c != '\n' && *c != '\t')
    {
        return Err(Error::invalid(
            field,
            format!("must not contain the control character U+{:04X}", c as u32),
        ));
    }
    Ok(())
}

/// One line: no line breaks either.
fn check_line(field: &str, value: &str, max_chars: usize, required: bool) -> Result<()> {
    check_text(field, value, max_chars, required)?;
    if value.contains(['\n', '\t']) {
        return Err(Error::invalid(field, "must be a single line"));
    }
    Ok(())
}

/// A file name that is safe to create in any directory on any system: the
/// recipient's `show --save` writes attachments under these names.
pub fn check_file_name(field: &str, name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::invalid(field, "is required"));
    }
    if name.len() > 255 {
        return Err(Error::invalid(field, "must be at most 255 bytes"));
    }
    if name == "." || name == ".." || name.starts_with(' ') || name.ends_with([' ', '.']) {
        return Err(Error::invalid(
            field,
            format!("{name:?} is not a usable file name"),
        ));
    }
    if let Some(c) = name.chars().find(|c| {
        c.is_control() || matches!(c, '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|')
    }) {
        return Err(Error::invalid(
            field,
            format!("must not contain {c:?} (a file name, not a path)"),
        ));
    }
    Ok(())
}

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
            format!("{value:?} is not a media type such as application/pdf"),
        )),
    }
}

fn check_date(field: &str, value: &str) -> Result<Date> {
    clock::parse_date(value)
        .ok_or_else(|| Error::invalid(field, format!("{value:?} is not a date YYYY-MM-DD")))
}

const COMPETENCES: [&str; 6] = ["", "TM.", "KT.", "TL.", "TUQ.", "Q."];

/// Checks every field of a document that was just decoded from a sender.
/// Recipients and the sender are resolved by the exchange, which knows the
/// directory; here they are only checked for shape.
pub fn check(document: pb::Document) -> Result<CheckedDocument> {
    let d = &document;
    check_line("document.from", &d.from, 64, true)?;
    if d.to.is_empty() {
        return Err(Error::invalid(
            "document.to",
            "at least one recipient is required",
        ));
    }
    for (i, to) in d.to.iter().enumerate() {
        check_line(&format!("document.to[{i}]"), to, 64, true)?;
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
                "is parts joined by single hyphens, without spaces (e.g. \"QĐ-UBND\" or \"UBND-VX\"), got {:?}",
                d.notation
            ),
        ));
    }
    let document_type = types::find(&d.document_type).ok_or_else(|| {
        Error::invalid(
            "document.document_type",
            format!(
                "{:?} is not one of the 29 types of Decree 30 (a code such as \"chi-thi\" or an abbreviation such as \"CT\")",
                d.document_type
            ),
        )
    })?;
    if !document_type.abbreviation.is_empty() {
        let prefix = format!("{}-", document_type.abbreviation);
        if !d.notation.starts_with(&prefix) {
            return Err(Error::invalid(
                "document.notation",
                format!(
                    "a {}'s notation begins with {prefix:?} (Decree 30), got {:?}",
                    document_type.name, d.notation
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
                    "{:?} is not one of TM., KT., TL., TUQ., Q. or empty",
                    signer.competence
                ),
            ));
        }
        check_line("document.signer.position", &signer.position, 100, false)?;
        check_line("document.signer.full_name", &signer.full_name, 100, false)?;
    }
    if !d.due_date.is_empty() {
        let due = check_date("document.due_date", &d.due_date)?;
        if due < promulgation_date {
            return Err(Error::invalid(
                "document.due_date",
                format!(
                    "{} is before the date of issue {}",
                    d.due_date,
                    clock::format_date(promulgation_date)
                ),
            ));
        }
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
    for (i, place) in d.to_places.iter().enumerate() {
        check_line(&format!("document.to_places[{i}]"), place, 150, true)?;
    }

    if d.attachments.len() > MAX_ATTACHMENTS {
        return Err(Error::exhausted(
            "document.attachments",
            format!(
                "at most {MAX_ATTACHMENTS} attachments (got {})",
                d.attachments.len()
            ),
        ));
    }
    for (i, a) in d.attachments.iter().enumerate() {
        check_file_name(&format!("document.attachments[{i}].name"), &a.name)?;
        if d.attachments[..i].iter().any(|b| b.name == a.name) {
            return Err(Error::invalid(
                format!("document.attachments[{i}].name"),
                format!("{:?} is used by another attachment", a.name),
            ));
        }
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

/// A công văn's summary line says what it is about: "V/v …" ("về việc").
fn check_official_letter_subject(subject: &str) -> Result<()> {
    match subject.trim_start().strip_prefix("V/v") {
        Some(rest) if !rest.trim().is_empty() => Ok(()),
        _ => Err(Error::invalid(
            "document.subject",
            format!(
                "a Công văn's subject starts with \"V/v\" and says what it is about (Decree 30), e.g. \"V/v triển khai kế hoạch\"; got {subject:?}"
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
            "{issuer} issues as {abbreviation:?}, so a {}'s notation is {expected:?}, optionally followed by \"-UNIT\" (got {notation:?}){hint}",
            kind.name
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
    let year = today.year() - MAX_YEARS_BACK;
    let earliest = Date::from_calendar_date(year, today.month(), today.day())
        .or_else(|_| Date::from_calendar_date(year, today.month(), 28))
        .unwrap_or(today);
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

    #[test]
    fn attachment_names_cannot_escape_the_save_directory() {
        for bad in ["../x.pdf", "a/b.pdf", "..", "c:\\x", "x\u{0}.pdf", ""] {
            assert!(check_file_name("n", bad).is_err(), "{bad:?}");
        }
        assert!(check_file_name("n", "Kế hoạch 2026.pdf").is_ok());
    }

    #[test]
    fn edxml_id_follows_the_standard() {
        assert_eq!(
            edxml_id("000.00.04.G14", "2012-08-06", 267, "VPCP-TTĐT"),
            "000.00.04.G14,2012/08/06,267/VPCP-TTĐT"
        );
    }
}
