//! A document's page on the dashboard: its header, its recipients with
//! their arrival numbers and statuses, and its history — what `show` and
//! `history` give, as [`crate::tracking::Tracking::follow`] lets the viewer
//! see it. Marker for tests: `article class="document" data-id="ID"`.

use std::fmt::Write;

use super::chart::short_name;
use super::html::{escape, page};
use crate::clock;
use crate::directory::{Directory, Organization};
use crate::document::types;
use crate::lifecycle::Code;
use crate::pb;
use crate::tracking::Followed;

pub fn render(directory: &Directory, viewer: &Organization, followed: &Followed) -> String {
    let view = &followed.view;
    let header = &view.header;
    let stored = &view.stored;
    let name = |code: &str| {
        directory
            .org(code)
            .map_or_else(|| code.to_owned(), |o| o.name.clone())
    };
    let number = format!("{:02}/{}", header.number, header.notation);
    let mut body = String::new();
    let _ = write!(
        body,
        r#"<header><h1>Văn bản số {number}</h1><p><a href="/">← Bảng tổng hợp</a></p></header><main><article class="document" data-id="{id}"><section><p class="subject">{subject}</p><dl class="doc-header">"#,
        number = escape(&number),
        id = view.id,
        subject = escape(&header.subject),
    );
    let mut field = |label: &str, value: &str| {
        if !value.is_empty() {
            let _ = write!(body, "<dt>{}</dt><dd>{}</dd>", escape(label), escape(value));
        }
    };
    let kind = types::find(&header.document_type).map_or(header.document_type.as_str(), |t| t.name);
    field("Loại văn bản", kind);
    // A paper record names its issuer as written; an electronic document's
    // issuer is its sender.
    let issuer = if stored.paper {
        name(header.from.trim())
    } else {
        name(&stored.sender)
    };
    field("Cơ quan ban hành", &issuer);
    field("Nơi ban hành", &header.place);
    field("Ngày ban hành", &header.promulgation_date);
    if let Some(signer) = &header.signer {
        let who = [&signer.competence, &signer.position, &signer.full_name]
            .iter()
            .filter(|s| !s.is_empty())
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        field("Người ký", &who);
    }
    field("Hạn xử lý", &header.due_date);
    field("Độ khẩn", urgency(header.urgency));
    field("Độ mật", secrecy(header.secrecy));
    field(
        "Hình thức",
        if stored.paper {
            "văn bản giấy (đã ghi nhận)"
        } else {
            "văn bản điện tử"
        },
    );
    field(
        "Tiếp nhận lúc",
        &clock::format_vietnam(stored.accepted_at_ms),
    );
    if stored.revoked_at_ms != 0 {
        field("Thu hồi lúc", &clock::format_vietnam(stored.revoked_at_ms));
    }
    field("Mã văn bản", &view.id.to_string());
    body.push_str("</dl></section>");

    body.push_str(
        r#"<section id="deliveries"><h2>Nơi nhận</h2><div class="wide"><table><thead><tr><th>Cơ quan</th><th class="n">Số đến</th><th>Trạng thái</th><th>Xử lý</th><th>Hạn</th></tr></thead><tbody>"#,
    );
    for d in &stored.deliveries {
        let shown = followed.every_recipient || d.recipient == viewer.code.as_str();
        let status = if shown {
            let code = Code::from_number(d.status).unwrap_or(Code::Arrived);
            format!("{:02} {}", code as u32, code.vietnamese())
        } else {
            "—".to_owned()
        };
        let _ = write!(
            body,
            r#"<tr class="delivery" data-org="{code}"><td>{org}</td><td class="n">{arrival}</td><td>{status}</td><td>{assigned}</td><td>{deadline}</td></tr>"#,
            code = escape(&d.recipient),
            org = escape(&short_name(&name(&d.recipient))),
            arrival = d.arrival_number,
            status = escape(&status),
            assigned = escape(if shown { &d.assigned_to } else { "" }),
            deadline = escape(if shown { &d.deadline } else { "" }),
        );
    }
    body.push_str("</tbody></table></div></section>");

    body.push_str(
        r#"<section id="history"><h2>Lịch sử</h2><div class="wide"><table><thead><tr><th>Thời điểm</th><th>Cơ quan</th><th>Trạng thái</th></tr></thead><tbody>"#,
    );
    for entry in &followed.history {
        let what = match entry.code {
            Some(code) => format!("{:02} {}", code as u32, code.vietnamese()),
            None => "thu hồi".to_owned(),
        };
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&clock::format_vietnam(entry.at_ms)),
            escape(&short_name(&name(&entry.by))),
            escape(&what),
        );
    }
    body.push_str("</tbody></table></div></section></article></main>");
    page(&format!("Văn bản số {number}"), &body)
}

/// The urgency as Decree 30 writes it; nothing for a normal one.
fn urgency(value: i32) -> &'static str {
    match pb::Urgency::try_from(value) {
        Ok(pb::Urgency::Khan) => "khẩn",
        Ok(pb::Urgency::ThuongKhan) => "thượng khẩn",
        Ok(pb::Urgency::HoaToc) => "hỏa tốc",
        _ => "",
    }
}

/// The secrecy as Decree 30 writes it; nothing for none.
fn secrecy(value: i32) -> &'static str {
    match pb::Secrecy::try_from(value) {
        Ok(pb::Secrecy::Mat) => "mật",
        Ok(pb::Secrecy::ToiMat) => "tối mật",
        Ok(pb::Secrecy::TuyetMat) => "tuyệt mật",
        _ => "",
    }
}
