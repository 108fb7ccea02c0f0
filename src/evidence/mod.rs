//! Offline evidence: what `show --save DIR` writes beside the attachments,
//! and how `verify DIR` checks it with no server.
//!
//! `DIR/lienthong-proof/` holds:
//!
//! | file | content |
//! |---|---|
//! | `document.pb` | the document bytes exactly as signed and stored (an encoded `lienthong.v1.Document`) |
//! | `document.sig` | the sender's signature over them, raw bytes |
//! | `record.pb`, `record.sig` | instead of the two above for a paper record: the signed `lienthong.v1.PaperRecord` and the recorder's signature |
//! | `receipt.pb` | the service's receipt (an encoded `lienthong.v1.Receipt`) |
//! | `receipt.sig` | the service's Ed25519 signature over it, raw 64 bytes |
//! | `keys.json` | the public keys the server offered: the sender's signing key and the service key |
//!
//! The attachments are in `DIR` under their own names, except a name that
//! would clash with the proof folder or, ignoring case, with another
//! attachment ([`saved_names`]). The checks, in the order `verify` makes
//! them, are described in the README. They are made
//! against keys the user trusts ([`TrustedKeys`]), never against the
//! service key saved with the document.
//!
//! A paper record is saved under names of its own rather than recognised
//! by its bytes: its signature is made in another context (`crypto`), and
//! which context applies must never be guessed from what verifies.

mod file;
mod names;
mod trust;

pub use file::{
    check_free, create_dir_all, open_partial, partial_path, publish, read as read_file,
    write as write_file, Existing, FileError,
};
pub use names::saved_names;
pub use trust::{read_public_key, TrustError, TrustedKeys};

use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine;
use prost::Message;
use serde::{Deserialize, Serialize};

use crate::crypto::{self, PublicKey};
use crate::directory::OrgCode;
use crate::keys::{self, RegisteredKey};
use crate::pb;

pub const PROOF_DIR: &str = "lienthong-proof";
const KEYS_FILE: &str = "keys.json";

/// The names of the signed bytes and their signature in the proof folder.
fn signed_files(paper: bool) -> (&'static str, &'static str) {
    if paper {
        ("record.pb", "record.sig")
    } else {
        ("document.pb", "document.sig")
    }
}

/// Why evidence could not be saved or read (a check that fails is a
/// [`Check`], not an error).
#[derive(Debug)]
pub enum EvidenceError {
    File(FileError),
    /// `keys.json` is not the file `show --save` writes.
    KeysFile {
        path: PathBuf,
        source: serde_json::Error,
    },
    /// A key in `keys.json` cannot be used.
    SavedKey {
        path: PathBuf,
        field: &'static str,
        problem: String,
    },
    /// The server's answer lacks a part of the evidence.
    Missing(&'static str),
    /// An attachment's name is not a plain file name.
    AttachmentName(String),
    /// The proof folder holds both a document's and a paper record's
    /// signed bytes: which one it proves cannot be told.
    BothSigned(PathBuf),
}

impl fmt::Display for EvidenceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EvidenceError::File(e) => e.fmt(f),
            EvidenceError::KeysFile { path, source } => write!(
                f,
                "{} is not the keys file `show --save` writes: {source}",
                path.display()
            ),
            EvidenceError::SavedKey {
                path,
                field,
                problem,
            } => write!(f, "{}: {field}: {problem}", path.display()),
            EvidenceError::Missing(what) => write!(
                f,
                "the server's answer has no {what}, so no evidence can be saved"
            ),
            EvidenceError::AttachmentName(problem) => write!(f, "refusing to save: {problem}"),
            EvidenceError::BothSigned(proof) => write!(
                f,
                "{} holds both document.pb and record.pb: a saved proof holds one \
                 (a document's, or a paper record's); save it again into a new folder",
                proof.display()
            ),
        }
    }
}

impl std::error::Error for EvidenceError {}

impl From<FileError> for EvidenceError {
    fn from(e: FileError) -> Self {
        EvidenceError::File(e)
    }
}

fn read(path: &Path) -> Result<Vec<u8>, EvidenceError> {
    Ok(file::read(path)?)
}

/// `keys.json`: the keys the server offered with the document.
#[derive(Serialize, Deserialize)]
struct SavedKeys {
    signing_key: Option<SavedSigningKey>,
    /// Kept for the reader; `verify` checks against a trusted copy only.
    service_key: Option<SavedServiceKey>,
}

#[derive(Serialize, Deserialize)]
struct SavedSigningKey {
    key_id: String,
    org: String,
    algorithm: String,
    /// DER SubjectPublicKeyInfo, base64.
    public_key: String,
    not_before_ms: Option<i64>,
    not_after_ms: Option<i64>,
    revoked_at_ms: Option<i64>,
}

#[derive(Serialize, Deserialize)]
struct SavedServiceKey {
    key_id: String,
    algorithm: String,
    public_key: String,
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A file or folder [`save`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Saved {
    pub path: PathBuf,
    /// The attachment's own name, when it was saved under another.
    pub renamed_from: Option<String>,
}

fn attachment_names(document: &pb::GetDocumentResponse) -> Vec<&str> {
    document
        .attachments
        .iter()
        .map(|a| a.r#ref.as_ref().map_or("", |r| r.name.as_str()))
        .collect()
}

/// Everything [`save`] writes into `dir`: each attachment, then the proof
/// folder.
pub fn targets(dir: &Path, document: &pb::GetDocumentResponse) -> Vec<PathBuf> {
    let mut targets: Vec<PathBuf> = saved_names(attachment_names(document))
        .iter()
        .map(|name| dir.join(name))
        .collect();
    targets.push(dir.join(PROOF_DIR));
    targets
}

/// Writes a fetched document into `dir`: each attachment under its saved
/// name ([`saved_names`]) and the evidence into `dir/lienthong-proof/`.
/// Nothing is written through a link; what is there already is refused
/// unless `existing` says to replace it. The last entry is the proof folder.
pub fn save(
    dir: &Path,
    document: &pb::GetDocumentResponse,
    existing: Existing,
) -> Result<Vec<Saved>, EvidenceError> {
    let mut saved = prepare(dir, document)?;
    for (attachment, target) in document.attachments.iter().zip(&saved) {
        file::write(&target.path, &attachment.content, existing)?;
    }
    saved.push(save_proof(dir, document, existing)?);
    Ok(saved)
}

/// Before a save: checks that the answer holds the evidence and that each
/// attachment's name is a plain file name, and makes `dir`. Returns where
/// each attachment is to be saved, in order.
pub fn prepare(
    dir: &Path,
    document: &pb::GetDocumentResponse,
) -> Result<Vec<Saved>, EvidenceError> {
    proof_parts(document)?;
    let names = attachment_names(document);
    // The server checks names too, but a client does not write outside DIR
    // on anyone's word.
    for (index, name) in names.iter().enumerate() {
        crate::document::check_file_name(&format!("attachments[{index}].name"), name)
            .map_err(|e| EvidenceError::AttachmentName(e.to_string()))?;
    }
    file::create_dir_all(dir)?;
    Ok(names
        .iter()
        .zip(saved_names(names.iter().copied()))
        .map(|(name, saved_as)| Saved {
            path: dir.join(&saved_as),
            renamed_from: (saved_as != *name).then(|| (*name).to_owned()),
        })
        .collect())
}

fn proof_parts(
    document: &pb::GetDocumentResponse,
) -> Result<(&pb::DocumentSignature, &pb::SealedReceipt), EvidenceError> {
    Ok((
        document
            .signature
            .as_ref()
            .ok_or(EvidenceError::Missing("sender's signature"))?,
        document
            .receipt
            .as_ref()
            .ok_or(EvidenceError::Missing("receipt"))?,
    ))
}

/// Writes the evidence of a document into `dir/lienthong-proof/` (the
/// attachments are saved apart, see [`prepare`]).
pub fn save_proof(
    dir: &Path,
    document: &pb::GetDocumentResponse,
    existing: Existing,
) -> Result<Saved, EvidenceError> {
    let (signature, receipt) = proof_parts(document)?;
    let proof = dir.join(PROOF_DIR);
    file::create_dir(&proof)?;
    let write = |name: &str, bytes: &[u8]| file::write(&proof.join(name), bytes, existing);
    let (signed, signature_file) = signed_files(document.paper);
    write(signed, &document.document_bytes)?;
    write(signature_file, &signature.signature)?;
    write("receipt.pb", &receipt.receipt)?;
    write("receipt.sig", &receipt.signature)?;
    let keys = SavedKeys {
        signing_key: document.signing_key.as_ref().map(|k| SavedSigningKey {
            key_id: k.key_id.clone(),
            org: k.org.clone(),
            algorithm: k.algorithm.clone(),
            public_key: b64(&k.public_key),
            not_before_ms: k.not_before_ms,
            not_after_ms: k.not_after_ms,
            revoked_at_ms: k.revoked_at_ms,
        }),
        service_key: document.service_key.as_ref().map(|k| SavedServiceKey {
            key_id: k.key_id.clone(),
            algorithm: k.algorithm.clone(),
            public_key: b64(&k.public_key),
        }),
    };
    let path = proof.join(KEYS_FILE);
    let text = serde_json::to_string_pretty(&keys).map_err(|source| EvidenceError::KeysFile {
        path: path.clone(),
        source,
    })?;
    write(KEYS_FILE, text.as_bytes())?;
    Ok(Saved {
        path: proof,
        renamed_from: None,
    })
}

/// One check and its outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// What was checked: "receipt", "document", "signature", "attachment NAME".
    pub subject: String,
    pub ok: bool,
    pub detail: String,
}

fn pass(subject: &str, detail: String) -> Check {
    Check {
        subject: subject.into(),
        ok: true,
        detail,
    }
}

fn fail(subject: &str, detail: String) -> Check {
    Check {
        subject: subject.into(),
        ok: false,
        detail,
    }
}

/// The sender's key saved in `keys.json`, if the server offered one.
fn saved_signing_key(path: &Path) -> Result<Option<RegisteredKey>, EvidenceError> {
    let text = read(path)?;
    let keys: SavedKeys =
        serde_json::from_slice(&text).map_err(|source| EvidenceError::KeysFile {
            path: path.to_owned(),
            source,
        })?;
    let Some(k) = keys.signing_key else {
        return Ok(None);
    };
    let bad = |problem: String| EvidenceError::SavedKey {
        path: path.to_owned(),
        field: "signing_key",
        problem,
    };
    let der = base64::engine::general_purpose::STANDARD
        .decode(&k.public_key)
        .map_err(|e| bad(format!("public_key is not base64: {e}")))?;
    let public = PublicKey::from_spki_der(&der).map_err(|e| bad(format!("public_key: {e}")))?;
    let org = OrgCode::parse(&k.org)
        .ok_or_else(|| bad(format!("org {:?} is not an organisation code", k.org)))?;
    Ok(Some(RegisteredKey {
        // Derived from the key, never taken from the file.
        key_id: public.key_id(),
        org,
        public,
        not_before_ms: k.not_before_ms,
        not_after_ms: k.not_after_ms,
        revoked_at_ms: k.revoked_at_ms,
    }))
}

/// The proof of one document, as saved.
#[derive(Debug, Clone, Default)]
pub struct Evidence {
    /// A paper record (`record.pb`): `document` is a `PaperRecord`, signed
    /// by the organisation that recorded it.
    pub paper: bool,
    pub document: Vec<u8>,
    pub signature: Vec<u8>,
    pub receipt: Vec<u8>,
    pub receipt_signature: Vec<u8>,
    /// The sender's key saved beside it (`keys.json`).
    pub signing_key: Option<RegisteredKey>,
}

/// Reads the proof saved in `dir`.
pub fn load(dir: &Path) -> Result<Evidence, EvidenceError> {
    let proof = dir.join(PROOF_DIR);
    let paper = proof.join(signed_files(true).0).exists();
    if paper && proof.join(signed_files(false).0).exists() {
        return Err(EvidenceError::BothSigned(proof));
    }
    let (signed, signature) = signed_files(paper);
    Ok(Evidence {
        paper,
        document: read(&proof.join(signed))?,
        signature: read(&proof.join(signature))?,
        receipt: read(&proof.join("receipt.pb"))?,
        receipt_signature: read(&proof.join("receipt.sig"))?,
        signing_key: saved_signing_key(&proof.join(KEYS_FILE))?,
    })
}

/// Checks the evidence in `dir` against the keys the user trusts. Every
/// check is made and reported, so that one changed byte is reported against
/// the file it is in.
pub fn verify(dir: &Path, trusted: &TrustedKeys) -> Result<Vec<Check>, EvidenceError> {
    let evidence = load(dir)?;
    Ok(check(&evidence, trusted, &|name| read(&dir.join(name))))
}

/// The checks themselves, on evidence in memory; `attachment` reads an
/// attachment by the name it was saved under.
pub fn check(
    evidence: &Evidence,
    trusted: &TrustedKeys,
    attachment: &dyn Fn(&str) -> Result<Vec<u8>, EvidenceError>,
) -> Vec<Check> {
    let mut checks = Vec::new();
    match pb::Receipt::decode(evidence.receipt.as_slice()) {
        Err(e) => {
            checks.push(fail(
                "receipt",
                format!("receipt.pb is not an encoded Receipt: {e}"),
            ));
            // Without the receipt nothing says which document and which
            // signature the service accepted.
            for subject in ["document", "signature"] {
                checks.push(fail(
                    subject,
                    "not checked: it is checked against the receipt, which does not decode".into(),
                ));
            }
        }
        Ok(receipt) => {
            checks.push(check_receipt(evidence, &receipt, &trusted.service_key));
            checks.push(check_document(evidence, &receipt));
            checks.push(check_signature(evidence, &receipt, trusted));
        }
    }
    check_attachments(evidence, attachment, &mut checks);
    checks
}

/// What the checks read of the signed bytes, a document's or a paper
/// record's.
struct Signed {
    number: u64,
    attachments: Vec<pb::AttachmentRef>,
    /// A paper record of a document that came in: the organisation that
    /// recorded it is the receipt's one recipient, not its sender.
    incoming_paper: bool,
}

fn decode_signed(evidence: &Evidence) -> Result<Signed, prost::DecodeError> {
    let bytes = evidence.document.as_slice();
    if evidence.paper {
        let record = pb::PaperRecord::decode(bytes)?;
        Ok(Signed {
            number: record.number,
            incoming_paper: record.direction == pb::PaperDirection::Incoming as i32,
            attachments: record.scan.into_iter().collect(),
        })
    } else {
        let document = pb::Document::decode(bytes)?;
        Ok(Signed {
            number: document.number,
            attachments: document.attachments,
            incoming_paper: false,
        })
    }
}

/// 1. The receipt: signed by the service key the user trusts.
fn check_receipt(evidence: &Evidence, receipt: &pb::Receipt, trusted: &PublicKey) -> Check {
    let trusted_id = trusted.key_id();
    if receipt.service_key_id != trusted_id {
        return fail(
            "receipt",
            format!(
                "signed with service key {}, but the key you trust is {trusted_id}: \
                 a forgery, or the receipt of another service or of a key since replaced \
                 (give that key's public half with --service-key)",
                receipt.service_key_id
            ),
        );
    }
    let message = crypto::receipt_message(&receipt.service_key_id, &evidence.receipt);
    if !trusted.verify(&message, &evidence.receipt_signature) {
        return fail(
            "receipt",
            "the service's signature does not verify: receipt.pb or receipt.sig was changed".into(),
        );
    }
    pass(
        "receipt",
        format!(
            "signed by service key {}: document {} from {} accepted at {}",
            receipt.service_key_id,
            receipt.document_id,
            receipt.sender,
            keys::format_ms(receipt.accepted_at_ms)
        ),
    )
}

/// 2. The document: the bytes the receipt attests.
fn check_document(evidence: &Evidence, receipt: &pb::Receipt) -> Check {
    let file = signed_files(evidence.paper).0;
    if crypto::sha256(&evidence.document).as_slice() == receipt.document_sha256.as_slice() {
        // A document signed with number 0 asked the service for one: the
        // number is then the receipt's, under the service's signature.
        let signed_number = decode_signed(evidence).map(|d| d.number);
        let assigned = match signed_number {
            Ok(0) if receipt.number != 0 => format!(
                "; signed with number 0, it was numbered {:02} by the service",
                receipt.number
            ),
            _ => String::new(),
        };
        pass(
            "document",
            format!("{file} is the document the receipt attests{assigned}"),
        )
    } else {
        fail(
            "document",
            format!("{file} differs from the document the receipt attests"),
        )
    }
}

/// 3. The sender's signature, with its key as of the acceptance time.
fn check_signature(evidence: &Evidence, receipt: &pb::Receipt, trusted: &TrustedKeys) -> Check {
    let (file, signature_file) = signed_files(evidence.paper);
    // Who must have signed: the sender, or the organisation that recorded
    // a paper document (for one that came in, its one recipient: the
    // receipt's sender then only says where the paper came from).
    let (signer, role) = match decode_signed(evidence) {
        Ok(signed) if signed.incoming_paper => match receipt.deliveries.as_slice() {
            [recorder] => (recorder.recipient.as_str(), "recorder"),
            _ => {
                return fail(
                    "signature",
                    "the receipt of an incoming paper record names no single recorder".into(),
                )
            }
        },
        _ if evidence.paper => (receipt.sender.as_str(), "recorder"),
        _ => (receipt.sender.as_str(), "sender"),
    };
    let key = match &trusted.registry {
        Some(registry) => registry.get(&receipt.signing_key_id),
        None => evidence.signing_key.as_ref(),
    };
    let Some(key) = key else {
        return fail(
            "signature",
            format!("no key {:?} to check it with", receipt.signing_key_id),
        );
    };
    if key.key_id != receipt.signing_key_id {
        return fail(
            "signature",
            format!(
                "the receipt names key {}, the key at hand is {}",
                receipt.signing_key_id, key.key_id
            ),
        );
    }
    if key.org.as_str() != signer {
        return fail(
            "signature",
            format!(
                "key {} belongs to {}, not to the {role} {signer}",
                key.key_id, key.org
            ),
        );
    }
    let message = if evidence.paper {
        crypto::paper_message(&key.key_id, &evidence.document)
    } else {
        crypto::document_message(&key.key_id, &evidence.document)
    };
    if crypto::sha256(&evidence.signature).as_slice() != receipt.signature_sha256.as_slice() {
        return fail(
            "signature",
            format!("{signature_file} is not the signature the receipt attests"),
        );
    }
    if !key.public.verify(&message, &evidence.signature) {
        return fail(
            "signature",
            format!("does not verify with key {} over {file}", key.key_id),
        );
    }
    if let Err(problem) = key.usable_at(receipt.accepted_at_ms) {
        return fail(
            "signature",
            format!(
                "{problem} (the document was accepted at {})",
                keys::format_ms(receipt.accepted_at_ms)
            ),
        );
    }
    pass(
        "signature",
        format!(
            "signed by {} with key {} ({})",
            key.org, key.key_id, key.public.algorithm
        ),
    )
}

/// 4. Each attachment: the bytes the signed document declares.
fn check_attachments(
    evidence: &Evidence,
    attachment: &dyn Fn(&str) -> Result<Vec<u8>, EvidenceError>,
    checks: &mut Vec<Check>,
) {
    let signed = match decode_signed(evidence) {
        Ok(signed) => signed,
        Err(e) => {
            let file = signed_files(evidence.paper).0;
            checks.push(fail("document", format!("{file} does not decode: {e}")));
            return;
        }
    };
    let saved = saved_names(signed.attachments.iter().map(|a| a.name.as_str()));
    for (a, saved_as) in signed.attachments.iter().zip(saved) {
        let subject = format!("attachment {:?}", a.name);
        if crate::document::check_file_name("name", &a.name).is_err() {
            checks.push(fail(&subject, "is not a plain file name".into()));
            continue;
        }
        let renamed = if saved_as == a.name {
            String::new()
        } else {
            format!(", saved as {saved_as:?}")
        };
        checks.push(match attachment(&saved_as) {
            Err(e) => fail(&subject, format!("cannot read it: {e}")),
            Ok(content) if crypto::sha256(&content).as_slice() == a.sha256.as_slice() => pass(
                &subject,
                format!("{} bytes, SHA-256 as signed{renamed}", content.len()),
            ),
            Ok(_) => fail(
                &subject,
                "its SHA-256 differs from the one in the signed document".into(),
            ),
        });
    }
}
