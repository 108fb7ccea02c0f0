//! From domain values to the protobuf messages of `lienthong.v1`.

use crate::directory::{Directory, Group, OrgCode, Organization};
use crate::document;
use crate::exchange::{DocumentView, Exchange, Fetched, InboxView, Sent};
use crate::keys::RegisteredKey;
use crate::pb;
use crate::store::StoredDelivery;

pub fn organization(org: &Organization) -> pb::Organization {
    pb::Organization {
        code: org.code.to_string(),
        alias: org.alias.clone(),
        name: org.name.clone(),
        kind: org.kind.clone(),
        abbreviation: org.abbreviation().unwrap_or_default().to_owned(),
    }
}

/// An organisation by code. One removed from the directory since it sent or
/// received still shows by its code.
pub fn organization_by_code(directory: &Directory, code: &str) -> pb::Organization {
    OrgCode::parse(code)
        .and_then(|c| directory.org_by_code(&c))
        .map(organization)
        .unwrap_or_else(|| pb::Organization {
            code: code.to_owned(),
            ..Default::default()
        })
}

pub fn group(g: &Group) -> pb::Group {
    pb::Group {
        alias: g.alias.clone(),
        name: g.name.clone(),
        kinds: g.kinds.clone(),
    }
}

fn delivery(directory: &Directory, d: &StoredDelivery) -> pb::Delivery {
    pb::Delivery {
        recipient: Some(organization_by_code(directory, &d.recipient)),
        arrival_year: d.arrival_year,
        arrival_number: d.arrival_number,
    }
}

fn deliveries(directory: &Directory, view: &DocumentView) -> Vec<pb::Delivery> {
    view.stored
        .deliveries
        .iter()
        .map(|d| delivery(directory, d))
        .collect()
}

pub fn edxml_id(view: &DocumentView) -> String {
    let h = &view.header;
    document::edxml_id(
        &view.stored.sender,
        &h.promulgation_date,
        h.number,
        &h.notation,
    )
}

pub fn summary(directory: &Directory, view: &DocumentView) -> pb::DocumentSummary {
    let h = &view.header;
    pb::DocumentSummary {
        id: view.id.to_string(),
        sender: Some(organization_by_code(directory, &view.stored.sender)),
        number: h.number,
        notation: h.notation.clone(),
        document_type: h.document_type.clone(),
        subject: h.subject.clone(),
        promulgation_date: h.promulgation_date.clone(),
        due_date: h.due_date.clone(),
        urgency: h.urgency,
        secrecy: h.secrecy,
        accepted_at_ms: view.stored.accepted_at_ms,
        attachment_count: view.stored.attachment_count,
    }
}

pub fn signing_key(key: &RegisteredKey) -> pb::SigningKey {
    pb::SigningKey {
        key_id: key.key_id.clone(),
        org: key.org.to_string(),
        algorithm: key.public.algorithm.name().into(),
        public_key: key.public.spki_der.clone(),
        not_before_ms: key.not_before_ms,
        not_after_ms: key.not_after_ms,
        revoked_at_ms: key.revoked_at_ms,
    }
}

fn sealed_receipt(view: &DocumentView) -> pb::SealedReceipt {
    pb::SealedReceipt {
        receipt: view.stored.receipt.clone(),
        signature: view.stored.receipt_signature.clone(),
    }
}

pub fn send_response(directory: &Directory, sent: &Sent) -> pb::SendResponse {
    pb::SendResponse {
        id: sent.view.id.to_string(),
        edxml_id: edxml_id(&sent.view),
        accepted_at_ms: sent.view.stored.accepted_at_ms,
        deliveries: deliveries(directory, &sent.view),
        duplicate: sent.duplicate,
        receipt: Some(sealed_receipt(&sent.view)),
        number: sent.view.header.number,
    }
}

pub fn inbox_entry(directory: &Directory, item: &InboxView) -> pb::InboxEntry {
    pb::InboxEntry {
        document: Some(summary(directory, &item.view)),
        arrival_year: u32::from(item.arrival_year),
        arrival_number: item.arrival_number,
    }
}

pub fn outbox_entry(directory: &Directory, view: &DocumentView) -> pb::OutboxEntry {
    pb::OutboxEntry {
        document: Some(summary(directory, view)),
        deliveries: deliveries(directory, view),
    }
}

pub fn get_response(
    exchange: &Exchange,
    caller: &Organization,
    fetched: Fetched,
) -> pb::GetDocumentResponse {
    let directory = exchange.directory();
    let view = &fetched.view;
    let my_delivery = view
        .stored
        .deliveries
        .iter()
        .find(|d| d.recipient == caller.code.as_str())
        .map(|d| delivery(directory, d));
    let attachments = view
        .header
        .attachments
        .iter()
        .cloned()
        .zip(fetched.contents)
        .map(|(r, content)| pb::Attachment {
            r#ref: Some(r),
            content: content.unwrap_or_default(),
        })
        .collect();
    pb::GetDocumentResponse {
        id: view.id.to_string(),
        edxml_id: edxml_id(view),
        document_bytes: view.stored.document_bytes.clone(),
        document: Some(view.header.clone()),
        sender: Some(organization_by_code(directory, &view.stored.sender)),
        deliveries: deliveries(directory, view),
        attachments,
        accepted_at_ms: view.stored.accepted_at_ms,
        my_delivery,
        signature: Some(pb::DocumentSignature {
            key_id: view.stored.signing_key_id.clone(),
            signature: view.stored.signature.clone(),
        }),
        receipt: Some(sealed_receipt(view)),
        // A key removed from the registry since is no longer offered; the
        // receipt still names it.
        signing_key: exchange
            .keys()
            .get(&view.stored.signing_key_id)
            .map(signing_key),
        service_key: Some(exchange.service_key().to_pb()),
    }
}
