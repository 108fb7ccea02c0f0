//! A paper record read as a document header: the record a clerk signed
//! (`lienthong.v1.PaperRecord`) and the `Document` it stands for, so that
//! everything reading stored headers reads paper records too. Recording
//! them is the `paper` module's work.

use prost::Message;

use crate::error::{Error, Result};
use crate::pb;

/// Decodes a paper record, without checking it.
pub fn decode(bytes: &[u8]) -> Result<pb::PaperRecord> {
    pb::PaperRecord::decode(bytes).map_err(|e| {
        Error::invalid(
            "record",
            format!("not an encoded lienthong.v1.PaperRecord: {e}"),
        )
    })
}

fn incoming(record: &pb::PaperRecord) -> bool {
    record.direction == pb::PaperDirection::Incoming as i32
}

/// The header a record stands for: issued by the counterpart to the caller
/// if incoming, by the caller to the counterpart if outgoing, each as the
/// record names them.
pub fn header(record: &pb::PaperRecord) -> pb::Document {
    let (from, to) = if incoming(record) {
        (&record.counterpart, &record.organization)
    } else {
        (&record.organization, &record.counterpart)
    };
    pb::Document {
        from: from.clone(),
        to: vec![to.clone()],
        number: record.number,
        notation: record.notation.clone(),
        promulgation_date: record.promulgation_date.clone(),
        document_type: record.document_type.clone(),
        subject: record.subject.clone(),
        attachments: record.scan.iter().cloned().collect(),
        ..pb::Document::default()
    }
}
