//! The registers' lines as `lienthong.v1` messages.

use super::convert::{delivery, issuer, status_code};
use crate::clock;
use crate::directory::Directory;
use crate::document::Series;
use crate::exchange::DocumentView;
use crate::pb;
use crate::register::{IncomingLine, OutgoingLine, RegisterLines, RegisterPage};

pub fn response(directory: &Directory, page: RegisterPage) -> pb::GetRegisterResponse {
    let (incoming, outgoing) = match &page.lines {
        RegisterLines::Incoming(lines) => (
            lines.iter().map(|l| incoming(directory, l)).collect(),
            Vec::new(),
        ),
        RegisterLines::Outgoing(lines) => (
            Vec::new(),
            lines.iter().map(|l| outgoing(directory, l)).collect(),
        ),
    };
    pb::GetRegisterResponse {
        year: u32::from(page.year),
        incoming,
        outgoing,
        next_page_token: page.next_page_token,
    }
}

/// Revoked, updated or replaced, as the edXML operation.
fn frozen_by(view: &DocumentView) -> i32 {
    match view.stored.frozen_by {
        1 => pb::Operation::Revoke as i32,
        2 => pb::Operation::Update as i32,
        3 => pb::Operation::Replace as i32,
        _ => pb::Operation::New as i32,
    }
}

fn incoming(directory: &Directory, line: &IncomingLine) -> pb::RegisterEntry {
    let view = &line.arrival.view;
    let h = &view.header;
    pb::RegisterEntry {
        document_id: view.id.to_string(),
        arrival_date: clock::format_date(clock::vietnam_date(view.stored.accepted_at_ms)),
        arrived_at_ms: view.stored.accepted_at_ms,
        arrival_year: u32::from(line.arrival.arrival_year),
        arrival_number: line.arrival.arrival_number,
        issuer: Some(issuer(directory, view)),
        number: h.number,
        notation: h.notation.clone(),
        promulgation_date: h.promulgation_date.clone(),
        document_type: h.document_type.clone(),
        subject: h.subject.clone(),
        assigned_to: line.delivery.assigned_to.clone(),
        passed_on_date: line
            .passed_on_at_ms
            .map(|at| clock::format_date(clock::vietnam_date(at)))
            .unwrap_or_default(),
        passed_on_at_ms: line.passed_on_at_ms.unwrap_or(0),
        status: status_code(line.delivery.status),
        answer: line.delivery.answer as i32,
        urgency: h.urgency,
        secrecy: h.secrecy,
        frozen_by: frozen_by(view),
        notes: line.notes.clone(),
        paper: view.stored.paper,
    }
}

fn outgoing(directory: &Directory, line: &OutgoingLine) -> pb::OutgoingRegisterEntry {
    let view = &line.view;
    let h = &view.header;
    let signer = h
        .signer
        .as_ref()
        .map(|s| {
            [s.competence.as_str(), &s.position, &s.full_name]
                .iter()
                .filter(|part| !part.is_empty())
                .copied()
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();
    pb::OutgoingRegisterEntry {
        document_id: view.id.to_string(),
        number: h.number,
        notation: h.notation.clone(),
        secret: line.series == Series::Secret,
        promulgation_date: h.promulgation_date.clone(),
        document_type: h.document_type.clone(),
        subject: h.subject.clone(),
        signer,
        deliveries: view
            .stored
            .deliveries
            .iter()
            .map(|d| delivery(directory, d, view.stored.accepted_at_ms))
            .collect(),
        accepted_at_ms: view.stored.accepted_at_ms,
        urgency: h.urgency,
        secrecy: h.secrecy,
        frozen_by: frozen_by(view),
        notes: line.notes.clone(),
        paper: view.stored.paper,
        paper_recipient: if view.stored.paper {
            h.to.join(", ")
        } else {
            String::new()
        },
    }
}
