//! What each address of the dashboard shows, for one viewer: the domain's
//! answers (report, deadlines, tracking) under the API's visibility rules,
//! made into a page and its HTTP status.

use std::sync::Arc;

use super::html::{escape, page};
use super::{document, overview};
use crate::deadlines::Deadlines;
use crate::directory::{Directory, Organization};
use crate::error::Error;
use crate::report::{Period, Reports};
use crate::tracking::Tracking;

/// A page and the HTTP status it goes with.
#[derive(Debug)]
pub struct Page {
    pub status: u16,
    pub html: String,
}

impl Page {
    fn ok(html: String) -> Page {
        Page { status: 200, html }
    }
}

/// The domain services the pages read, shared with the gRPC API.
pub struct Pages {
    reports: Arc<Reports>,
    deadlines: Arc<Deadlines>,
    tracking: Arc<Tracking>,
    directory: Arc<Directory>,
}

/// The overdue list shows at most this many; the count above it says how
/// many there are.
pub const OVERDUE_SHOWN: usize = 200;

impl Pages {
    pub fn new(
        reports: Arc<Reports>,
        deadlines: Arc<Deadlines>,
        tracking: Arc<Tracking>,
        directory: Arc<Directory>,
    ) -> Pages {
        Pages {
            reports,
            deadlines,
            tracking,
            directory,
        }
    }

    pub fn directory(&self) -> &Directory {
        &self.directory
    }

    /// `/` and `/?period=P`: the report of the period (the current year by
    /// default) as the viewer may see it — every organisation for the
    /// committee and its office, its own row for anyone else — with the
    /// trend through the period's year and what is overdue today.
    pub fn overview(&self, viewer: &Organization, period: &str) -> Page {
        match self.overview_html(viewer, period) {
            Ok(html) => Page::ok(html),
            Err(e) => error_page(&e),
        }
    }

    fn overview_html(&self, viewer: &Organization, period_text: &str) -> Result<String, Error> {
        let period = Period::parse(period_text, "", "", self.reports.today())?;
        let report = self.reports.report(viewer, period)?;
        let trend = self.reports.monthly(viewer, period.to.0)?;
        let district = report.district.is_some();
        let mut overdue = self.deadlines.list(viewer, 0, district)?.entries;
        overdue.retain(|d| d.overdue);
        Ok(overview::render(&overview::Overview {
            directory: &self.directory,
            viewer,
            period_text: period_text.trim(),
            report: &report,
            trend: &trend,
            overdue: &overdue,
        }))
    }

    /// `/document/ID`: the document's header, its deliveries and its
    /// history, by [`Tracking::follow`]'s rule. An id that is no id, an
    /// unknown one and another organisation's document give the same 404.
    pub fn document(&self, viewer: &Organization, id: &str) -> Page {
        match self.tracking.follow(viewer, id) {
            Ok(followed) => Page::ok(document::render(&self.directory, viewer, &followed)),
            Err(Error::InvalidArgument { .. } | Error::NotFound { .. }) => not_found(),
            Err(e) => error_page(&e),
        }
    }
}

/// What any unknown address shows.
pub fn not_found() -> Page {
    message(
        404,
        "Không tìm thấy",
        "Không có trang hoặc văn bản này, hoặc bạn không được xem văn bản này.",
    )
}

/// `e` as a page with the HTTP status of its kind. A failure of the
/// service is logged in full and shown in general terms.
pub fn error_page(e: &Error) -> Page {
    match e {
        Error::InvalidArgument { .. } => message(400, "Yêu cầu không hợp lệ", &e.to_string()),
        Error::NotFound { .. } => not_found(),
        Error::PermissionDenied(_) => message(403, "Không có quyền xem", &e.to_string()),
        Error::Unauthenticated(_) => message(401, "Chưa xác định được cơ quan", &e.to_string()),
        _ => {
            tracing::warn!(error = %e, "dashboard page");
            message(
                500,
                "Lỗi máy chủ",
                "Máy chủ chưa trả lời được yêu cầu này; nhật ký của máy chủ ghi nguyên nhân.",
            )
        }
    }
}

/// `405` for anything but GET and HEAD.
pub fn method_not_allowed() -> Page {
    message(405, "Không hỗ trợ", "Bảng tổng hợp chỉ để xem (GET).")
}

fn message(status: u16, title: &str, text: &str) -> Page {
    let body = format!(
        r#"<header><h1>{title}</h1></header><main><section class="error" data-status="{status}"><p>{text}</p><p><a href="/">← Về bảng tổng hợp</a></p></section></main>"#,
        title = escape(title),
        text = escape(text),
    );
    Page {
        status,
        html: page(title, &body),
    }
}
