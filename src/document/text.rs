//! The text rules of anything signed: what a field may contain so that what
//! a reader sees is exactly what was signed. A signed official document must
//! not hide text (invisible characters), reorder it on screen
//! (bidirectional controls), break a one-line field into several, or carry
//! a file name that disguises its type.
//!
//! Each refusal names the field and the character, as `U+XXXX`.

use crate::error::{quote, Error, Result};

/// The name under which `show --save` and `archive export` write a
/// document's proof beside its attachments (the `evidence` module's
/// `PROOF_DIR`); no attachment may take it, in any case.
pub const RESERVED_FILE_NAME: &str = "lienthong-proof";

/// A bidirectional control: it changes the order in which the text around
/// it is displayed, so that `a\u{202e}fdp.exe` shows as `aexe.pdf`.
fn bidirectional_control(c: char) -> Option<&'static str> {
    Some(match c {
        '\u{061C}' => "an Arabic letter mark",
        '\u{200E}' => "a left-to-right mark",
        '\u{200F}' => "a right-to-left mark",
        '\u{202A}' => "a left-to-right embedding",
        '\u{202B}' => "a right-to-left embedding",
        '\u{202C}' => "a pop directional formatting",
        '\u{202D}' => "a left-to-right override",
        '\u{202E}' => "a right-to-left override",
        '\u{2066}' => "a left-to-right isolate",
        '\u{2067}' => "a right-to-left isolate",
        '\u{2068}' => "a first strong isolate",
        '\u{2069}' => "a pop directional isolate",
        _ => return None,
    })
}

/// Any other format character (Unicode general category Cf): invisible,
/// so that two texts that differ look the same.
fn invisible_format_character(c: char) -> Option<&'static str> {
    Some(match c {
        '\u{00AD}' => "a soft hyphen",
        '\u{200B}' => "a zero-width space",
        '\u{200C}' => "a zero-width non-joiner",
        '\u{200D}' => "a zero-width joiner",
        '\u{2060}' => "a word joiner",
        '\u{FEFF}' => "a zero-width no-break space (byte order mark)",
        '\u{0600}'..='\u{0605}'
        | '\u{06DD}'
        | '\u{070F}'
        | '\u{0890}'..='\u{0891}'
        | '\u{08E2}'
        | '\u{180E}'
        | '\u{2061}'..='\u{2064}'
        | '\u{206A}'..='\u{206F}'
        | '\u{FFF9}'..='\u{FFFB}'
        | '\u{110BD}'
        | '\u{110CD}'
        | '\u{13430}'..='\u{1343F}'
        | '\u{1BCA0}'..='\u{1BCA3}'
        | '\u{1D173}'..='\u{1D17A}'
        | '\u{E0001}'
        | '\u{E0020}'..='\u{E007F}' => "an invisible format character",
        _ => return None,
    })
}

/// A character that ends a line, other than the line feed itself.
fn line_separator(c: char) -> Option<&'static str> {
    Some(match c {
        '\n' => "a line feed",
        '\r' => "a carriage return",
        '\u{000B}' => "a vertical tab",
        '\u{000C}' => "a form feed",
        '\u{0085}' => "a next-line character",
        '\u{2028}' => "a line separator",
        '\u{2029}' => "a paragraph separator",
        _ => return None,
    })
}

/// What is written in a field: one line, or text with line breaks (`\n`)
/// and tabs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Line,
    Text,
}

/// Why `c` may not stand in a field of `shape`; `hides` says what a
/// bidirectional control could do there.
fn refused(c: char, shape: Shape, hides: &str) -> Option<String> {
    let code = c as u32;
    if let Some(name) = line_separator(c) {
        return match shape {
            Shape::Line => Some(format!(
                "must be a single line; it contains {name} (U+{code:04X})"
            )),
            Shape::Text if c == '\n' => None,
            Shape::Text => Some(format!(
                "contains {name} (U+{code:04X}); a line break is written as a line feed (U+000A) only"
            )),
        };
    }
    if c == '\t' {
        return (shape == Shape::Line)
            .then(|| "must be a single line; it contains a tab (U+0009)".into());
    }
    if c.is_control() {
        return Some(format!(
            "must not contain the control character U+{code:04X}"
        ));
    }
    if let Some(name) = bidirectional_control(c) {
        return Some(format!("contains {name} (U+{code:04X}), which {hides}"));
    }
    invisible_format_character(c).map(|name| {
        format!("contains {name} (U+{code:04X}), which is invisible: two different texts would look the same")
    })
}

fn check_characters(field: &str, value: &str, shape: Shape, hides: &str) -> Result<()> {
    match value.chars().find_map(|c| refused(c, shape, hides)) {
        Some(reason) => Err(Error::invalid(field, reason)),
        None => Ok(()),
    }
}

fn check_shaped(
    field: &str,
    value: &str,
    max_chars: usize,
    required: bool,
    shape: Shape,
) -> Result<()> {
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
    check_characters(
        field,
        value,
        shape,
        "can make the text display in another order than it is signed",
    )
}

/// Text that may run over several lines (`\n`) and hold tabs, but no other
/// control character, no other line separator, and nothing that hides or
/// reorders text. Counts characters, not bytes: the limits of edXML are in
/// characters, and Vietnamese letters take 2 or 3 bytes each.
pub fn check_text(field: &str, value: &str, max_chars: usize, required: bool) -> Result<()> {
    check_shaped(field, value, max_chars, required, Shape::Text)
}

/// One line: as [`check_text`], without line breaks or tabs of any kind.
pub fn check_line(field: &str, value: &str, max_chars: usize, required: bool) -> Result<()> {
    check_shaped(field, value, max_chars, required, Shape::Line)
}

/// A name looked up in the directory, written exactly: a signed document
/// must say exactly what was signed, so `" xa-van-nham"` is refused rather
/// than quietly trimmed.
pub fn check_exact_name(field: &str, value: &str) -> Result<()> {
    if value.trim() != value {
        return Err(Error::invalid(
            field,
            format!(
                "{} starts or ends with a space or other blank; write it without: a signed document says exactly what was signed",
                quote(value)
            ),
        ));
    }
    Ok(())
}

/// A file name that is safe to create in any directory on any system and
/// shows its real type: the recipient's `show --save` writes attachments
/// under these names.
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
            format!("{} is not a usable file name", quote(name)),
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| matches!(c, '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|'))
    {
        return Err(Error::invalid(
            field,
            format!("must not contain {c:?} (a file name, not a path)"),
        ));
    }
    check_characters(field, name, Shape::Line, "can disguise a file's type")?;
    Ok(())
}

/// An attachment name a new document may use: a usable file name
/// ([`check_file_name`], which the client applies to what it saves) that is
/// not the name the client saves the proof under. The client keeps such a
/// name apart if an older document has one (`evidence::names`); the server
/// refuses it in anything new.
pub fn check_attachment_name(field: &str, name: &str) -> Result<()> {
    check_file_name(field, name)?;
    if name.to_lowercase() == RESERVED_FILE_NAME {
        return Err(Error::invalid(
            field,
            format!(
                "{} is reserved: the recipient's software saves the document's proof under that name beside the attachments",
                quote(name)
            ),
        ));
    }
    Ok(())
}

/// The file names of one document: each usable, and no two the same
/// ignoring case, since many file systems would save them as one file.
/// `field(i)` names the i-th.
pub fn check_file_names<'a>(
    names: impl IntoIterator<Item = &'a str>,
    field: impl Fn(usize) -> String,
) -> Result<()> {
    let mut seen: Vec<(String, &str)> = Vec::new();
    for (i, name) in names.into_iter().enumerate() {
        check_attachment_name(&field(i), name)?;
        let folded = name.to_lowercase();
        if let Some(j) = seen.iter().position(|(other, _)| *other == folded) {
            let same = if seen[j].1 == name {
                "the same name".to_owned()
            } else {
                format!("{}, which differs only in case", quote(seen[j].1))
            };
            return Err(Error::invalid(
                field(i),
                format!(
                    "{} is used by {} already ({same}); names differ ignoring case, since many file systems save both as one file",
                    quote(name),
                    field(j)
                ),
            ));
        }
        seen.push((folded, name));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(result: Result<()>) -> String {
        match result {
            Err(Error::InvalidArgument { reason, .. }) => reason,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn bidirectional_controls_are_refused_and_named() {
        for c in [
            '\u{202A}', '\u{202E}', '\u{2066}', '\u{2069}', '\u{200E}', '\u{200F}', '\u{061C}',
        ] {
            let text = format!("a{c}b");
            let why = reason(check_line("f", &text, 100, true));
            assert!(why.contains(&format!("U+{:04X}", c as u32)), "{why}");
            assert!(check_text("f", &text, 100, true).is_err());
        }
        let why = reason(check_file_name("n", "a\u{202e}fdp.exe"));
        assert!(why.contains("right-to-left override (U+202E)"), "{why}");
        assert!(why.contains("disguise a file's type"), "{why}");
    }

    #[test]
    fn invisible_format_characters_are_refused() {
        for c in [
            '\u{00AD}',
            '\u{200B}',
            '\u{200C}',
            '\u{200D}',
            '\u{2060}',
            '\u{2063}',
            '\u{FEFF}',
            '\u{E0041}',
        ] {
            let text = format!("Kế{c}hoạch");
            let why = reason(check_line("f", &text, 100, true));
            assert!(why.contains("invisible"), "{c:?}: {why}");
            assert!(check_file_name("n", &format!("{text}.pdf")).is_err());
        }
    }

    #[test]
    fn one_line_fields_refuse_every_line_separator() {
        for c in [
            '\n', '\r', '\t', '\u{000B}', '\u{000C}', '\u{0085}', '\u{2028}', '\u{2029}',
        ] {
            let text = format!("a{c}b");
            assert!(
                reason(check_line("f", &text, 100, true)).starts_with("must be a single line"),
                "{c:?}"
            );
        }
    }

    #[test]
    fn text_keeps_line_feeds_and_tabs_only() {
        assert!(check_text("f", "Điều 1.\n\tKế hoạch", 100, true).is_ok());
        for c in [
            '\r', '\u{0085}', '\u{2028}', '\u{2029}', '\u{1b}', '\u{7f}', '\u{9b}',
        ] {
            assert!(
                check_text("f", &format!("a{c}b"), 100, true).is_err(),
                "{c:?}"
            );
        }
    }

    #[test]
    fn vietnamese_text_passes() {
        let subject = "Về việc tăng cường phòng cháy, chữa cháy mùa hanh khô (đợt 2)";
        assert!(check_line("f", subject, 500, true).is_ok());
        // Decomposed: combining marks are letters' accents, not format characters.
        assert!(check_line("f", "Hu\u{0303}u Lu\u{0303}ng", 100, true).is_ok());
    }

    #[test]
    fn names_are_written_exactly() {
        assert!(check_exact_name("to", "xa-van-nham").is_ok());
        for bad in [" xa-van-nham", "xa-van-nham ", "\u{3000}xa", "xa\u{a0}"] {
            assert!(
                reason(check_exact_name("to", bad)).contains("starts or ends"),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn the_proof_folder_is_no_attachment_name() {
        for bad in ["lienthong-proof", "LIENTHONG-PROOF", "Lienthong-Proof"] {
            assert!(
                reason(check_attachment_name("n", bad)).contains("reserved"),
                "{bad}"
            );
            // A client saving an older document keeps it apart instead.
            assert!(check_file_name("n", bad).is_ok(), "{bad}");
        }
        assert!(check_attachment_name("n", "lienthong-proof.pdf").is_ok());
    }

    #[test]
    fn attachment_names_are_unique_ignoring_case() {
        let field = |i| format!("attachments[{i}].name");
        assert!(check_file_names(["a.pdf", "b.pdf"], field).is_ok());
        let why = reason(check_file_names(
            ["Báo cáo.PDF", "x.pdf", "báo cáo.pdf"],
            field,
        ));
        assert!(why.contains("attachments[0].name"), "{why}");
        assert!(why.contains("differs only in case"), "{why}");
        let why = reason(check_file_names(["a.pdf", "a.pdf"], field));
        assert!(why.contains("the same name"), "{why}");
    }

    #[test]
    fn attachment_names_cannot_escape_the_save_directory() {
        for bad in ["../x.pdf", "a/b.pdf", "..", "c:\\x", "x\u{0}.pdf", ""] {
            assert!(check_file_name("n", bad).is_err(), "{bad:?}");
        }
        assert!(check_file_name("n", "Kế hoạch 2026.pdf").is_ok());
    }
}
