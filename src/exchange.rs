//! The exchange: sending a document as the caller, and reading mailboxes.
//!
//! This is where the rules live: the sender is the caller and no one else;
//! recipients are expanded and de-duplicated; attachments must be exactly
//! what the document says; a document is readable by its sender and its
//! recipients only, and to anyone else it does not exist.

use std::sync::Arc;

use ring::digest::{Context, SHA256};

use crate::crypto;
use crate::directory::{Directory, Organization, UnknownName};
use crate::document::{self, CheckedDocument};
use crate::error::{quote, Error, Result};
use crate::keys::{KeyRegistry, RegisteredKey, SharedKeys};
use crate::pb;
use crate::receipt::ServiceKey;
use crate::store::{
    DocId, InboxItem, NewAttachment, NewDocument, Numbering, OutboxItem, SendOutcome, Store,
    StoredDocument, StoredStatus, Turn,
};

/// Configurable limits on what one send may carry.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Document bytes plus the attachments carried inside the request
    /// (uploaded ones have their own quotas: see `transfer`).
    pub max_document_bytes: usize,
    /// Recipients, both as named and after groups are expanded.
    pub max_recipients: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_document_bytes: crate::defaults::MAX_DOCUMENT_BYTES,
            max_recipients: crate::defaults::MAX_RECIPIENTS,
        }
    }
}

pub const DEFAULT_PAGE_SIZE: u32 = 50;
pub const MAX_PAGE_SIZE: u32 = 500;
const MAX_IDEMPOTENCY_KEY: usize = 128;

/// A send as it arrived, before any check.
#[derive(Debug, Default)]
pub struct SendInput {
    pub document_bytes: Vec<u8>,
    pub attachments: Vec<Content>,
    pub idempotency_key: String,
    pub signature: Option<pb::DocumentSignature>,
}

/// An attachment's content as a send carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// Inside the request.
    Inline(Vec<u8>),
    /// Uploaded beforehand by the sender's organisation (see `transfer`):
    /// the store checks that the upload is complete.
    Uploaded,
}

impl Content {
    /// Bytes carried inside the request.
    pub(crate) fn inline_len(&self) -> usize {
        match self {
            Content::Inline(bytes) => bytes.len(),
            Content::Uploaded => 0,
        }
    }
}

/// A document as stored, with its header decoded.
#[derive(Debug, Clone)]
pub struct DocumentView {
    pub id: DocId,
    pub stored: StoredDocument,
    pub header: pb::Document,
}

impl DocumentView {
    /// A stored document with its header decoded.
    pub fn new(id: DocId, stored: StoredDocument) -> Result<DocumentView> {
        let header = document::header(stored.paper, &stored.document_bytes)?;
        Ok(DocumentView::with_header(id, stored, header))
    }

    /// A number the service assigned stands in the header in place of the
    /// 0 that the sender signed, so every view shows the document's number.
    fn with_header(id: DocId, stored: StoredDocument, mut header: pb::Document) -> DocumentView {
        if header.number == 0 {
            header.number = stored.number;
        }
        DocumentView { id, stored, header }
    }
}

#[derive(Debug)]
pub struct Sent {
    pub view: DocumentView,
    /// The idempotency key matched an earlier send: nothing new was created.
    pub duplicate: bool,
}

#[derive(Debug)]
pub struct InboxView {
    pub arrival_year: u16,
    pub arrival_number: u64,
    pub view: DocumentView,
}

#[derive(Debug)]
pub struct Listing<T> {
    pub items: Vec<T>,
    pub next_page_token: String,
}

/// A document fetched by one of its parties, with its attachments.
#[derive(Debug)]
pub struct Fetched {
    pub view: DocumentView,
    /// One per attachment in the header; contents only when asked for.
    pub contents: Vec<Option<Vec<u8>>>,
    /// Its revocation, if its sender revoked it.
    pub revocation: Option<StoredStatus>,
    /// The replies to it that the caller may read.
    pub replies: Vec<DocId>,
}

/// The checks a send must pass before anything is stored. Pure: no store,
/// no clock but the key validity, so it can be fuzzed on its own.
pub struct Rules {
    pub directory: Arc<Directory>,
    pub keys: SharedKeys,
    pub limits: Limits,
    /// Key validity, and later the plausibility of dates, are judged by it.
    pub clock: crate::clock::Clock,
}

/// A send that passed [`Rules::check_send`].
#[derive(Debug)]
pub struct CheckedSend {
    pub document: CheckedDocument,
    pub recipients: Vec<crate::directory::OrgCode>,
    pub key_usable_until_ms: Option<i64>,
    pub idempotency_key: Option<String>,
}

pub struct Exchange {
    pub(crate) store: Arc<Store>,
    rules: Rules,
    service_key: Arc<ServiceKey>,
}

impl Exchange {
    pub fn new(
        store: Arc<Store>,
        directory: Arc<Directory>,
        keys: Arc<KeyRegistry>,
        service_key: Arc<ServiceKey>,
        limits: Limits,
    ) -> Exchange {
        let clock = store.clock().clone();
        Exchange {
            store,
            rules: Rules {
                clock: clock.clone(),
                directory,
                keys: SharedKeys::new(keys),
                limits,
            },
            service_key,
        }
    }

    pub fn directory(&self) -> &Directory {
        &self.rules.directory
    }

    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    /// The registry of signing keys as it stands now.
    pub fn keys(&self) -> Arc<KeyRegistry> {
        self.rules.keys.current()
    }

    /// Replaces the registry of signing keys (on a reload): checks that
    /// start after this see the new one.
    pub fn replace_keys(&self, keys: KeyRegistry) {
        self.rules.keys.replace(keys);
    }

    pub fn service_key(&self) -> &ServiceKey {
        &self.service_key
    }

    /// Sends a document as `caller`. Returns only once it is durable.
    pub async fn send(&self, caller: &Organization, input: SendInput) -> Result<Sent> {
        self.send_in_turn(caller, input, None).await
    }

    /// [`Exchange::send`], committed in `turn` (see [`Turn`]): the sends of
    /// a batch are checked at once and committed in order.
    pub async fn send_in_turn(
        &self,
        caller: &Organization,
        input: SendInput,
        turn: Option<Turn>,
    ) -> Result<Sent> {
        let CheckedSend {
            document: checked,
            recipients,
            key_usable_until_ms,
            idempotency_key,
        } = self.rules.check_send(caller, &input)?;
        let header = &checked.document;
        // Whether they exist, may be named by the caller and are not frozen
        // is checked in the commit, against the state it finds there.
        let reply_to = match header.reply_to.as_str() {
            "" => None,
            id => Some(DocId::parse(id).ok_or_else(|| {
                Error::invalid(
                    "document.reply_to",
                    format!(
                        "{} is not a document id (32 hexadecimal characters)",
                        quote(id)
                    ),
                )
            })?),
        };
        let supersedes = header
            .supersedes
            .as_ref()
            .map(check_supersedes)
            .transpose()?;

        let content_digest = content_digest(&input.document_bytes, &checked);
        let new = NewDocument {
            id: DocId::random()?,
            sender: caller.code,
            recipients,
            document_bytes: input.document_bytes,
            // check_attachments made sure of each content's digest.
            attachments: new_attachments(&checked, input.attachments),
            content_digest,
            idempotency_key,
            numbering: Numbering {
                year: checked.numbering_year(),
                series: checked.series(),
                number: checked.number(),
                notation: header.notation.clone(),
            },
            signing_key_id: input
                .signature
                .as_ref()
                .map(|s| s.key_id.clone())
                .unwrap_or_default(),
            signature: input.signature.map(|s| s.signature).unwrap_or_default(),
            key_usable_until_ms,
            reply_to,
            supersedes,
            due_date: crate::clock::parse_date(&header.due_date),
            urgency: u8::try_from(header.urgency).unwrap_or(0),
            paper: false,
            claims: None,
        };
        let taken = number_taken(caller, &checked);
        match self.store.send_in_turn(new, turn).await? {
            SendOutcome::Accepted(id, stored) => Ok(Sent {
                view: DocumentView::with_header(id, stored, checked.document),
                duplicate: false,
            }),
            SendOutcome::Duplicate(id, stored) => Ok(Sent {
                view: DocumentView::new(id, stored)?,
                duplicate: true,
            }),
            SendOutcome::KeyReused(id) => Err(Error::exists(
                "idempotency_key",
                format!("was already used for document {id}, whose content differs"),
            )),
            SendOutcome::KeyNoLongerUsable => Err(Error::invalid(
                "signature.key_id",
                "the key stopped being usable while the document was being accepted; sign with a current key",
            )),
            SendOutcome::NumberTaken(id) => Err(taken(id)),
        }
    }

    /// The document `id` (the request's field `field`), if `caller` sent or
    /// received it. Unknown ids and other organisations' documents give the
    /// same NOT_FOUND, so the answer reveals nothing about documents the
    /// caller may not see.
    pub(crate) fn readable(
        &self,
        caller: &Organization,
        field: &'static str,
        id: &str,
    ) -> Result<DocumentView> {
        let view = self.stored(field, id)?;
        if !view.stored.is_party(caller.code.as_str()) {
            return Err(not_found(id));
        }
        Ok(view)
    }

    /// The document `id`, whoever asks: for callers that apply their own
    /// rule of who may see it (the dashboard's district view).
    pub(crate) fn stored(&self, field: &'static str, id: &str) -> Result<DocumentView> {
        let doc_id = DocId::parse(id).ok_or_else(|| {
            Error::invalid(
                field,
                format!(
                    "{} is not a document id (32 hexadecimal characters)",
                    quote(id)
                ),
            )
        })?;
        let stored = self.store.document(&doc_id)?.ok_or_else(|| not_found(id))?;
        DocumentView::new(doc_id, stored)
    }

    /// One document and, if asked, its attachments' contents.
    pub fn get(&self, caller: &Organization, id: &str, include_content: bool) -> Result<Fetched> {
        let view = self.readable(caller, "id", id)?;
        if include_content {
            // Contents travel in the one answer only while they fit in it.
            let total: u64 = view.header.attachments.iter().map(|a| a.size).sum();
            if total > self.rules.limits.max_document_bytes as u64 {
                return Err(Error::precondition(
                    "include_content",
                    format!(
                        "the attachments of document {} take {total} bytes, more than one answer carries ({}); fetch each with DownloadAttachment",
                        view.id, self.rules.limits.max_document_bytes
                    ),
                ));
            }
        }
        let mut contents = Vec::with_capacity(view.header.attachments.len());
        for (index, declared) in view.header.attachments.iter().enumerate() {
            contents.push(if include_content {
                let content = self.store.attachment(&declared.sha256)?;
                Some(content.ok_or_else(|| {
                    Error::storage(format!("attachment {index} of {} is missing", view.id))
                })?)
            } else {
                None
            });
        }
        let revocation = if view.stored.revoked_at_ms != 0 {
            self.store
                .statuses(&view.id)?
                .into_iter()
                .find(|s| s.revocation)
        } else {
            None
        };
        // Listing a reply the caller may not read would reveal that it
        // exists: only those it is a party to.
        let mut replies = Vec::new();
        for reply in &view.stored.replies {
            let id = DocId(reply.as_slice().try_into().map_err(|_| {
                Error::storage(format!("a reply id of {} is not 16 bytes", view.id))
            })?);
            if self.readable(caller, "id", &id.to_string()).is_ok() {
                replies.push(id);
            }
        }
        Ok(Fetched {
            view,
            contents,
            revocation,
            replies,
        })
    }

    pub fn inbox(
        &self,
        caller: &Organization,
        page_size: u32,
        page_token: &str,
    ) -> Result<Listing<InboxView>> {
        let limit = page_limit(page_size)?;
        let before = match decode_token(page_token, TOKEN_INBOX)? {
            None => None,
            Some(b) if b.len() == 10 => Some((
                u16::from_be_bytes([b[0], b[1]]),
                u64::from_be_bytes(b[2..10].try_into().map_err(|_| bad_token())?),
            )),
            Some(_) => return Err(bad_token()),
        };
        let page = self.store.inbox_page(&caller.code, before, limit)?;
        let items = page
            .items
            .into_iter()
            .map(|item: InboxItem| {
                Ok(InboxView {
                    arrival_year: item.arrival_year,
                    arrival_number: item.arrival_number,
                    view: DocumentView::new(item.id, item.document)?,
                })
            })
            .collect::<Result<_>>()?;
        let next_page_token = page.next.map_or(String::new(), |(year, number)| {
            let mut b = year.to_be_bytes().to_vec();
            b.extend_from_slice(&number.to_be_bytes());
            encode_token(TOKEN_INBOX, &b)
        });
        Ok(Listing {
            items,
            next_page_token,
        })
    }

    pub fn outbox(
        &self,
        caller: &Organization,
        page_size: u32,
        page_token: &str,
    ) -> Result<Listing<DocumentView>> {
        let limit = page_limit(page_size)?;
        let before = match decode_token(page_token, TOKEN_OUTBOX)? {
            None => None,
            Some(b) => Some(u64::from_be_bytes(b.try_into().map_err(|_| bad_token())?)),
        };
        let page = self.store.outbox_page(&caller.code, before, limit)?;
        let items = page
            .items
            .into_iter()
            .map(|item: OutboxItem| DocumentView::new(item.id, item.document))
            .collect::<Result<_>>()?;
        let next_page_token = page.next.map_or(String::new(), |seq| {
            encode_token(TOKEN_OUTBOX, &seq.to_be_bytes())
        });
        Ok(Listing {
            items,
            next_page_token,
        })
    }
}

impl Rules {
    /// Every check of a send that needs no stored document: sizes, the
    /// header, the sender, the signature, the recipients, the attachments.
    pub fn check_send(&self, caller: &Organization, input: &SendInput) -> Result<CheckedSend> {
        let total: usize = input.document_bytes.len()
            + input
                .attachments
                .iter()
                .map(Content::inline_len)
                .sum::<usize>();
        if total > self.limits.max_document_bytes {
            return Err(Error::exhausted(
                "max_document_bytes",
                format!(
                    "the document and the attachments it carries take {total} bytes; the limit is {}; upload larger attachments first (UploadAttachment)",
                    self.limits.max_document_bytes
                ),
            ));
        }
        let idempotency_key = check_idempotency_key(&input.idempotency_key)?.map(str::to_owned);
        let checked = document::check(document::decode_signed(
            &input.document_bytes,
            "document",
            "lienthong.v1.Document",
        )?)?;
        document::check_date_of_issue(checked.promulgation_date, self.clock.today())?;
        let header = &checked.document;

        // Identity comes from the certificate; the document's own "from" must
        // agree with it, so a signed document can never claim another sender.
        let from = self.directory.org(&header.from).ok_or_else(|| {
            Error::invalid(
                "document.from",
                format!(
                    "{} is not an organisation in the directory",
                    quote(&header.from)
                ),
            )
        })?;
        if from.code != caller.code {
            return Err(Error::PermissionDenied(format!(
                "document.from: your certificate identifies {}; you cannot send as {}",
                caller.label(),
                from.label()
            )));
        }
        document::check_issuer(&checked, &from.label(), from.abbreviation())?;
        let key = self.check_signature(caller, &input.document_bytes, input.signature.as_ref())?;
        let key_usable_until_ms = key.usable_until_ms();
        let recipients = self
            .route(caller, &header.to)?
            .iter()
            .map(|o| o.code)
            .collect();
        check_attachments(&checked, &input.attachments)?;
        Ok(CheckedSend {
            document: checked,
            recipients,
            key_usable_until_ms,
            idempotency_key,
        })
    }

    /// Checks the sender's signature over the exact bytes received: the key
    /// must be registered to the caller and usable now, and the signature
    /// must verify with the key's own algorithm.
    fn check_signature(
        &self,
        caller: &Organization,
        document_bytes: &[u8],
        signature: Option<&pb::DocumentSignature>,
    ) -> Result<RegisteredKey> {
        self.check_signed(
            caller,
            document_bytes,
            signature,
            crypto::document_message,
            "the document",
        )
    }

    /// Checks a signature by the caller's registered key over `bytes`, as
    /// `message` frames them; `what` names the bytes in errors. Documents
    /// and statuses go through the same rules: a key unknown, not the
    /// caller's, not yet or no longer valid, or revoked is refused.
    pub fn check_signed(
        &self,
        caller: &Organization,
        document_bytes: &[u8],
        signature: Option<&pb::DocumentSignature>,
        message: fn(&str, &[u8]) -> Vec<u8>,
        what: &str,
    ) -> Result<RegisteredKey> {
        let signature = signature.ok_or_else(|| {
            Error::invalid(
                "signature",
                format!("is required: {what} carries its signer's signature over its bytes"),
            )
        })?;
        let key = self
            .keys
            .current()
            .check(&signature.key_id, &caller.code, self.clock.now_ms())
            .map_err(|problem| Error::invalid("signature.key_id", problem.to_string()))?
            .clone();
        let message = message(&signature.key_id, document_bytes);
        if !key.public.verify(&message, &signature.signature) {
            return Err(Error::invalid(
                "signature",
                format!(
                    "does not verify with key {} ({}) over {what}'s bytes: they or the signature were changed, or another key signed",
                    key.key_id, key.public.algorithm
                ),
            ));
        }
        Ok(key)
    }

    /// Expands the named recipients into organisations, without the sender.
    fn route<'d>(&'d self, caller: &Organization, to: &[String]) -> Result<Vec<&'d Organization>> {
        let limit = self.limits.max_recipients;
        if to.len() > limit {
            return Err(Error::exhausted(
                "max_recipients",
                format!(
                    "document.to names {} recipients; the limit is {limit}",
                    to.len()
                ),
            ));
        }
        let recipients =
            self.directory
                .resolve(to, &caller.code)
                .map_err(|(position, UnknownName(name))| {
                    Error::invalid(
                        format!("document.to[{position}]"),
                        format!(
                            "{} is neither an organisation nor a group in the directory",
                            quote(&name)
                        ),
                    )
                })?;
        if recipients.is_empty() {
            return Err(Error::invalid(
                "document.to",
                "no recipient is left once the sender is removed",
            ));
        }
        if recipients.len() > limit {
            return Err(Error::exhausted(
                "max_recipients",
                format!(
                    "document.to expands to {} organisations; the limit is {limit}",
                    recipients.len()
                ),
            ));
        }
        Ok(recipients)
    }
}

/// The edXML update or replacement a document declares.
fn check_supersedes(s: &pb::Supersedes) -> Result<(DocId, crate::lifecycle::Frozen)> {
    let id = DocId::parse(&s.document_id).ok_or_else(|| {
        Error::invalid(
            "document.supersedes.document_id",
            format!(
                "{} is not a document id (32 hexadecimal characters)",
                quote(&s.document_id)
            ),
        )
    })?;
    let how = match pb::Operation::try_from(s.operation) {
        Ok(pb::Operation::Update) => crate::lifecycle::Frozen::Updated,
        Ok(pb::Operation::Replace) => crate::lifecycle::Frozen::Replaced,
        _ => return Err(Error::invalid(
            "document.supersedes.operation",
            "must be OPERATION_UPDATE (2) or OPERATION_REPLACE (3); revoke with the Revoke call",
        )),
    };
    document::check_text("document.supersedes.reason", &s.reason, 500, true)?;
    Ok((id, how))
}

/// The error for a number and notation the sender already used in the
/// document's year and series; `id` is the document that holds them.
fn number_taken(caller: &Organization, checked: &CheckedDocument) -> impl FnOnce(DocId) -> Error {
    let header = &checked.document;
    let message = format!(
        "{:02}/{} was already issued by {} in {}, in its {}",
        header.number,
        header.notation,
        caller.alias,
        checked.numbering_year(),
        checked.series().describe()
    );
    move |id| {
        Error::exists(
            "document.number",
            format!("{message} (document {id}); number and notation are unique per issuer, year and series"),
        )
    }
}

fn check_idempotency_key(key: &str) -> Result<Option<&str>> {
    if key.is_empty() {
        return Ok(None);
    }
    if key.len() > MAX_IDEMPOTENCY_KEY || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::invalid(
            "idempotency_key",
            format!("must be 1 to {MAX_IDEMPOTENCY_KEY} printable ASCII characters without spaces"),
        ));
    }
    Ok(Some(key))
}

/// Each attachment's content must be exactly what the document declares;
/// an uploaded one is checked against its upload by the store.
fn check_attachments(checked: &CheckedDocument, contents: &[Content]) -> Result<()> {
    let declared = &checked.document.attachments;
    if declared.len() != contents.len() {
        return Err(Error::invalid(
            "attachments",
            format!(
                "the document declares {} attachments but {} contents were sent",
                declared.len(),
                contents.len()
            ),
        ));
    }
    for (i, (declared, content)) in declared.iter().zip(contents).enumerate() {
        let Content::Inline(content) = content else {
            if declared.size == 0 {
                return Err(Error::invalid(
                    format!("attachments[{i}]"),
                    format!("is marked uploaded, but document.attachments[{i}].size is 0: an empty attachment travels inline"),
                ));
            }
            continue;
        };
        if declared.size != content.len() as u64 {
            return Err(Error::invalid(
                format!("attachments[{i}]"),
                format!(
                    "has {} bytes but document.attachments[{i}].size says {}",
                    content.len(),
                    declared.size
                ),
            ));
        }
        if ring::digest::digest(&SHA256, content).as_ref() != declared.sha256.as_slice() {
            return Err(Error::invalid(
                format!("attachments[{i}]"),
                format!("its SHA-256 does not match document.attachments[{i}].sha256"),
            ));
        }
    }
    Ok(())
}

/// The attachments to store: each content with the digest the document
/// declares for it, once the caller checked that they agree.
pub(crate) fn new_attachments(
    checked: &CheckedDocument,
    contents: Vec<Content>,
) -> Vec<NewAttachment> {
    checked
        .document
        .attachments
        .iter()
        .zip(contents)
        .map(|(declared, content)| NewAttachment {
            sha256: declared.sha256.as_slice().try_into().unwrap_or([0; 32]),
            uploaded: (content == Content::Uploaded).then_some(declared.size),
            content: match content {
                Content::Inline(bytes) => Some(bytes),
                Content::Uploaded => None,
            },
        })
        .collect()
}

/// What an idempotent retry must repeat exactly: the document bytes, and
/// through their declared digests (checked above), the attachments.
pub(crate) fn content_digest(document_bytes: &[u8], checked: &CheckedDocument) -> [u8; 32] {
    let mut ctx = Context::new(&SHA256);
    ctx.update(b"lienthong content v1\0");
    ctx.update(&(document_bytes.len() as u64).to_be_bytes());
    ctx.update(document_bytes);
    for a in &checked.document.attachments {
        ctx.update(&a.sha256);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

pub(crate) fn page_limit(page_size: u32) -> Result<usize> {
    match page_size {
        0 => Ok(DEFAULT_PAGE_SIZE as usize),
        n if n <= MAX_PAGE_SIZE => Ok(n as usize),
        n => Err(Error::invalid(
            "page_size",
            format!("must be at most {MAX_PAGE_SIZE} (got {n})"),
        )),
    }
}

// Page tokens are opaque to clients: a kind byte and a position, in hex.
const TOKEN_INBOX: u8 = b'i';
const TOKEN_OUTBOX: u8 = b'o';

pub(crate) fn bad_token() -> Error {
    Error::invalid(
        "page_token",
        "is not a token this listing returned; start again with an empty token",
    )
}

pub(crate) fn encode_token(kind: u8, position: &[u8]) -> String {
    let mut bytes = vec![kind];
    bytes.extend_from_slice(position);
    hex::encode(bytes)
}

pub(crate) fn decode_token(token: &str, kind: u8) -> Result<Option<Vec<u8>>> {
    if token.is_empty() {
        return Ok(None);
    }
    let bytes = hex::decode(token).map_err(|_| bad_token())?;
    match bytes.split_first() {
        Some((k, position)) if *k == kind => Ok(Some(position.to_vec())),
        _ => Err(bad_token()),
    }
}

/// Unknown, or not the caller's: the same answer.
fn not_found(id: &str) -> Error {
    Error::not_found(format!("document {}", quote(id)))
}
