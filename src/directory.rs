//! The directory: which organisations exist, how they are named, and which
//! groups ("all-communes") expand to whom.
//!
//! The built-in default is the Hữu Lũng directory (`deploy/huu-lung.toml`);
//! `--directory FILE` replaces it with a TOML file of the same shape. Wherever
//! an organisation is named, its 13-character code or its alias is accepted.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::path::Path;

use serde::Deserialize;

/// The directory shipped with the service.
pub const BUILTIN_TOML: &str = include_str!("../deploy/huu-lung.toml");

/// An electronic identifier code (Decision 20/2020/QĐ-TTg): exactly 13 ASCII
/// characters `NNN.NN.NN.Xnn`, e.g. `000.02.09.H37`. Fixed width, so it can
/// prefix storage keys without a separator.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OrgCode([u8; 13]);

impl OrgCode {
    pub const LEN: usize = 13;

    /// Accepts exactly the `NNN.NN.NN.Xnn` shape (X an upper-case letter).
    pub fn parse(text: &str) -> Option<OrgCode> {
        let b: [u8; 13] = text.as_bytes().try_into().ok()?;
        let digit = |i: usize| b[i].is_ascii_digit();
        let shape = (0..3).all(digit)
            && b[3] == b'.'
            && (4..6).all(digit)
            && b[6] == b'.'
            && (7..9).all(digit)
            && b[9] == b'.'
            && b[10].is_ascii_uppercase()
            && (11..13).all(digit);
        shape.then_some(OrgCode(b))
    }

    /// From a storage key; the bytes were written by [`OrgCode::as_bytes`].
    pub fn from_key(bytes: &[u8]) -> Option<OrgCode> {
        OrgCode::parse(std::str::from_utf8(bytes.get(..Self::LEN)?).ok()?)
    }

    pub fn as_bytes(&self) -> &[u8; 13] {
        &self.0
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII is ever stored (checked in `parse`).
        std::str::from_utf8(&self.0).unwrap_or("?????????????")
    }
}

impl fmt::Display for OrgCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for OrgCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OrgCode({})", self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organization {
    pub code: OrgCode,
    pub alias: String,
    pub name: String,
    /// "committee", "office", "department", "commune", ... (data, not an enum:
    /// a province may have other kinds).
    pub kind: String,
    /// The issuer part of its notations (`UBND` in `15/QĐ-UBND`), when
    /// known: see [`Organization::abbreviation`].
    abbreviation: Option<String>,
}

/// The kinds whose issuer abbreviation is `UBND` when the directory gives
/// none: every People's Committee writes it.
const PEOPLES_COMMITTEES: [&str; 2] = ["committee", "commune"];

impl Organization {
    /// The issuer part of this organisation's notations: the directory's
    /// `abbreviation`, else `UBND` for a committee or a commune, else `None`
    /// (the notation's issuer part is then not checked).
    pub fn abbreviation(&self) -> Option<&str> {
        match &self.abbreviation {
            Some(a) => Some(a),
            None if PEOPLES_COMMITTEES.contains(&self.kind.as_str()) => Some("UBND"),
            None => None,
        }
    }

    /// `000.02.09.H37 (phong-noi-vu)`, for messages.
    pub fn label(&self) -> String {
        format!("{} ({})", self.code, self.alias)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub alias: String,
    pub name: String,
    /// Every organisation of one of these kinds is a member.
    pub kinds: Vec<String>,
}

/// Why a directory file was refused.
#[derive(Debug)]
pub enum DirectoryError {
    Read(std::io::Error),
    Toml(toml::de::Error),
    Invalid(String),
}

impl fmt::Display for DirectoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DirectoryError::Read(e) => write!(f, "cannot read the directory file: {e}"),
            DirectoryError::Toml(e) => write!(f, "the directory file is not valid TOML: {e}"),
            DirectoryError::Invalid(m) => write!(f, "the directory file is invalid: {m}"),
        }
    }
}

impl std::error::Error for DirectoryError {}

/// A recipient name that resolved to nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownName(pub String);

#[derive(Debug, Clone)]
pub struct Directory {
    orgs: Vec<Organization>,
    groups: Vec<Group>,
    by_name: HashMap<String, Entry>,
}

#[derive(Debug, Clone, Copy)]
enum Entry {
    Org(usize),
    Group(usize),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileFormat {
    #[serde(default)]
    org: Vec<OrgRow>,
    #[serde(default)]
    group: Vec<GroupRow>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OrgRow {
    code: String,
    alias: String,
    name: String,
    kind: String,
    #[serde(default)]
    abbreviation: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupRow {
    alias: String,
    name: String,
    kinds: Vec<String>,
}

/// Letters and digits only (Vietnamese letters included: `GDĐT`), since a
/// hyphen separates the parts of a notation.
fn valid_abbreviation(abbreviation: &str) -> bool {
    (1..=20).contains(&abbreviation.chars().count())
        && abbreviation.chars().all(char::is_alphanumeric)
}

fn valid_alias(alias: &str) -> bool {
    !alias.is_empty()
        && alias.len() <= 64
        && alias
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

impl Directory {
    /// The Hữu Lũng directory compiled into the binary.
    pub fn builtin() -> Result<Directory, DirectoryError> {
        Directory::from_toml(BUILTIN_TOML)
    }

    /// The built-in directory, or the file at `path` when one is given.
    pub fn load(path: Option<&Path>) -> Result<Directory, DirectoryError> {
        match path {
            None => Directory::builtin(),
            Some(p) => {
                Directory::from_toml(&std::fs::read_to_string(p).map_err(DirectoryError::Read)?)
            }
        }
    }

    pub fn from_toml(text: &str) -> Result<Directory, DirectoryError> {
        let file: FileFormat = toml::from_str(text).map_err(DirectoryError::Toml)?;
        let invalid = |m: String| Err(DirectoryError::Invalid(m));
        if file.org.is_empty() {
            return invalid("it lists no organisation ([[org]])".into());
        }
        let mut dir = Directory {
            orgs: Vec::with_capacity(file.org.len()),
            groups: Vec::with_capacity(file.group.len()),
            by_name: HashMap::new(),
        };
        for (i, row) in file.org.into_iter().enumerate() {
            let Some(code) = OrgCode::parse(&row.code) else {
                return invalid(format!(
                    "org {}: code {:?} is not of the form NNN.NN.NN.Xnn",
                    i + 1,
                    row.code
                ));
            };
            if !valid_alias(&row.alias) {
                return invalid(format!(
                    "org {code}: alias {:?} must be 1 to 64 of a-z, 0-9 and '-'",
                    row.alias
                ));
            }
            if row.name.trim().is_empty() || row.kind.trim().is_empty() {
                return invalid(format!("org {code}: name and kind must not be empty"));
            }
            if let Some(a) = row
                .abbreviation
                .as_deref()
                .filter(|a| !valid_abbreviation(a))
            {
                return invalid(format!(
                    "org {code}: abbreviation {a:?} must be 1 to 20 letters or digits (the issuer part of a notation, e.g. \"UBND\")"
                ));
            }
            for key in [row.code.clone(), row.alias.clone()] {
                if dir.by_name.insert(key.clone(), Entry::Org(i)).is_some() {
                    return invalid(format!("{key:?} names two entries"));
                }
            }
            dir.orgs.push(Organization {
                code,
                alias: row.alias,
                name: row.name,
                kind: row.kind,
                abbreviation: row.abbreviation,
            });
        }
        for (i, row) in file.group.into_iter().enumerate() {
            if !valid_alias(&row.alias) {
                return invalid(format!(
                    "group {:?}: alias must be 1 to 64 of a-z, 0-9 and '-'",
                    row.alias
                ));
            }
            if row.kinds.is_empty() {
                return invalid(format!("group {}: kinds must not be empty", row.alias));
            }
            if dir
                .by_name
                .insert(row.alias.clone(), Entry::Group(i))
                .is_some()
            {
                return invalid(format!("{:?} names two entries", row.alias));
            }
            dir.groups.push(Group {
                alias: row.alias,
                name: row.name,
                kinds: row.kinds,
            });
        }
        Ok(dir)
    }

    pub fn organizations(&self) -> &[Organization] {
        &self.orgs
    }

    pub fn groups(&self) -> &[Group] {
        &self.groups
    }

    /// The organisation named by code or alias (not a group).
    pub fn org(&self, name: &str) -> Option<&Organization> {
        match self.by_name.get(name)? {
            Entry::Org(i) => self.orgs.get(*i),
            Entry::Group(_) => None,
        }
    }

    /// The members of the group `alias`, or `None` if it is not a group.
    pub fn group(&self, alias: &str) -> Option<Vec<&Organization>> {
        match self.by_name.get(alias)? {
            Entry::Group(g) => {
                let kinds = &self.groups[*g].kinds;
                Some(
                    self.orgs
                        .iter()
                        .filter(|o| kinds.contains(&o.kind))
                        .collect(),
                )
            }
            Entry::Org(_) => None,
        }
    }

    pub fn org_by_code(&self, code: &OrgCode) -> Option<&Organization> {
        self.org(code.as_str())
    }

    /// Expands organisations and groups into distinct organisations, in
    /// directory order, without `sender`. The first unknown name is returned
    /// as the error, with its position in `names`.
    pub fn resolve(
        &self,
        names: &[String],
        sender: &OrgCode,
    ) -> Result<Vec<&Organization>, (usize, UnknownName)> {
        let mut picked = BTreeSet::new();
        for (position, name) in names.iter().enumerate() {
            match self.by_name.get(name.trim()) {
                Some(Entry::Org(i)) => {
                    picked.insert(*i);
                }
                Some(Entry::Group(g)) => {
                    let kinds = &self.groups[*g].kinds;
                    picked.extend(
                        self.orgs
                            .iter()
                            .enumerate()
                            .filter(|(_, o)| kinds.contains(&o.kind))
                            .map(|(i, _)| i),
                    );
                }
                None => return Err((position, UnknownName(name.clone()))),
            }
        }
        Ok(picked
            .into_iter()
            .map(|i| &self.orgs[i])
            .filter(|o| &o.code != sender)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn huu_lung() -> Directory {
        Directory::builtin().unwrap_or_else(|e| panic!("built-in directory: {e}"))
    }

    #[test]
    fn builtin_directory_has_the_district() {
        let dir = huu_lung();
        let count = |kind: &str| {
            dir.organizations()
                .iter()
                .filter(|o| o.kind == kind)
                .count()
        };
        assert_eq!(count("commune"), 23);
        assert_eq!(count("department"), 7);
        assert!(dir.org("xa-van-nham").is_some());
        assert!(dir.org("000.02.09.H37").is_some());
        assert!(
            dir.org("all-communes").is_none(),
            "a group is not an organisation"
        );
    }

    #[test]
    fn groups_expand_deduplicate_and_drop_the_sender() {
        let dir = huu_lung();
        let sender = dir.org("tt-huu-lung").map(|o| o.code);
        let sender = sender.unwrap_or_else(|| panic!("tt-huu-lung missing"));
        let names = ["all-communes", "xa-van-nham", "phong-noi-vu"].map(String::from);
        let got = dir.resolve(&names, &sender).unwrap_or_default();
        assert_eq!(got.len(), 22 + 1);
        assert!(got.iter().all(|o| o.code != sender));
    }

    #[test]
    fn unknown_names_are_reported_with_their_position() {
        let dir = huu_lung();
        let sender = dir.organizations()[0].code;
        let names = ["xa-van-nham", "xa-khong-co"].map(String::from);
        assert_eq!(
            dir.resolve(&names, &sender).err(),
            Some((1, UnknownName("xa-khong-co".into())))
        );
    }

    #[test]
    fn codes_must_have_the_decision_20_shape() {
        assert!(OrgCode::parse("000.02.09.H37").is_some());
        for bad in [
            "000.02.09.h37",
            "000.02.09H37",
            "0000.2.09.H37",
            "000.02.09.H3",
            "",
        ] {
            assert!(OrgCode::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn issuer_abbreviations_come_from_the_directory_or_the_kind() {
        let dir = huu_lung();
        let abbr = |name: &str| dir.org(name).and_then(Organization::abbreviation);
        assert_eq!(abbr("ubnd-huyen"), Some("UBND"));
        assert_eq!(abbr("phong-noi-vu"), Some("PNV"));
        assert_eq!(abbr("xa-van-nham"), Some("UBND"));
        let text = "[[org]]\ncode = \"000.01.01.H01\"\nalias = \"xa\"\nname = \"X\"\nkind = \"commune\"\n\
                    [[org]]\ncode = \"000.02.01.H01\"\nalias = \"so\"\nname = \"S\"\nkind = \"agency\"\n";
        let dir = Directory::from_toml(text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            dir.org("xa").and_then(Organization::abbreviation),
            Some("UBND")
        );
        assert_eq!(dir.org("so").and_then(Organization::abbreviation), None);
        let bad = text.replace(
            "kind = \"agency\"",
            "kind = \"agency\"\nabbreviation = \"P-NV\"",
        );
        let err = Directory::from_toml(&bad).err().map(|e| e.to_string());
        assert!(err.unwrap_or_default().contains("abbreviation \"P-NV\""));
    }

    #[test]
    fn a_bad_directory_file_says_what_is_wrong() {
        let text = "[[org]]\ncode = \"12\"\nalias = \"a\"\nname = \"A\"\nkind = \"commune\"\n";
        let err = Directory::from_toml(text).err().map(|e| e.to_string());
        assert!(err.unwrap_or_default().contains("NNN.NN.NN.Xnn"));
    }
}
