//! The name each attachment is saved under, beside the proof folder.
//!
//! An attachment keeps its own name unless that name is the proof folder's
//! (`lienthong-proof`, in any case) or, ignoring case, that of an attachment
//! before it: names a case-insensitive disk could not keep apart. Such an
//! attachment is saved as `NAME.attachment` (`NAME.attachment-2`, … when
//! that is taken too). The server refuses such names today; documents
//! stored before it did still save whole, and `verify` finds each
//! attachment where this says it was saved.

use std::collections::HashSet;

use super::PROOF_DIR;

/// The saved name of each of `names`, in their order.
pub fn saved_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let names: Vec<&str> = names.into_iter().collect();
    let mut taken: HashSet<String> = HashSet::from([PROOF_DIR.to_owned()]);
    // Names that can be kept first, so that a derived name never takes the
    // name of an attachment further down the list.
    let kept: Vec<bool> = names
        .iter()
        .map(|name| taken.insert(name.to_lowercase()))
        .collect();
    names
        .iter()
        .zip(kept)
        .map(|(name, kept)| {
            if kept {
                return (*name).to_owned();
            }
            let mut n = 1;
            loop {
                let candidate = match n {
                    1 => format!("{name}.attachment"),
                    _ => format!("{name}.attachment-{n}"),
                };
                if taken.insert(candidate.to_lowercase()) {
                    return candidate;
                }
                n += 1;
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_are_kept() {
        assert_eq!(saved_names(["a.pdf", "b.pdf"]), ["a.pdf", "b.pdf"]);
    }

    #[test]
    fn the_proof_folder_name_in_any_case_is_derived() {
        assert_eq!(
            saved_names(["LienThong-Proof", "a.pdf"]),
            ["LienThong-Proof.attachment", "a.pdf"]
        );
        assert_eq!(
            saved_names(["lienthong-proof"]),
            ["lienthong-proof.attachment"]
        );
    }

    #[test]
    fn names_differing_in_case_only_are_kept_apart() {
        assert_eq!(
            saved_names(["A.pdf", "a.pdf", "a.PDF"]),
            ["A.pdf", "a.pdf.attachment", "a.PDF.attachment-2"]
        );
    }

    #[test]
    fn a_derived_name_never_takes_a_later_attachment_s_name() {
        assert_eq!(
            saved_names(["lienthong-proof", "lienthong-proof.attachment"]),
            ["lienthong-proof.attachment-2", "lienthong-proof.attachment"]
        );
    }
}
