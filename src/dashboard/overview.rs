//! The dashboard's main page: a period's electronic rate per organisation
//! against the target, the rate month by month through the period's year,
//! registration on time, and what is overdue today, each overdue document
//! a link to its page. Stable markers for tests: the chart's (see
//! [`super::chart`]), `li class="overdue"` with an `a class="doc-link"`,
//! `section id="..."` per part.

use std::fmt::Write;

use super::chart::{self, Bar, Month};
use super::html::{count, escape, page, percent};
use super::pages::OVERDUE_SHOWN;
use crate::clock;
use crate::deadlines::Deadline;
use crate::directory::{Directory, Organization};
use crate::report::{format_month, Period, Report, Row};
use crate::store::DeadlineKind;

/// What the page is made of.
pub struct Overview<'a> {
    pub directory: &'a Directory,
    pub viewer: &'a Organization,
    /// The period as asked for, to keep in the form.
    pub period_text: &'a str,
    pub report: &'a Report,
    /// The viewer's months of the period's year (see `Reports::monthly`).
    pub trend: &'a [((u16, u8), Row)],
    /// Overdue today, most overdue first.
    pub overdue: &'a [Deadline],
}

pub fn render(o: &Overview<'_>) -> String {
    let report = o.report;
    let target = report.target_percent;
    let district = report.district.is_some();
    let mut body = String::new();
    let _ = write!(
        body,
        r#"<header><h1>Liên thông văn bản điện tử</h1><p>{period} · số liệu đến {today} · người xem: {viewer}{scope}</p></header><main>"#,
        period = escape(&describe(report.period)),
        today = clock::format_date(report.today),
        viewer = escape(&o.viewer.name),
        scope = if district { " (toàn huyện)" } else { "" },
    );
    period_form(&mut body, o.period_text, report.period);
    // The district's figures for the committee, the viewer's own otherwise.
    let summary = report.district.as_ref().or(report.rows.first());
    if let Some(row) = summary {
        cards(&mut body, row, target, district);
    }
    body.push_str(r#"<div class="grid"><div>"#);
    rates(&mut body, report);
    body.push_str("</div><div>");
    trend(&mut body, o.trend, report, district);
    registration(&mut body, report);
    body.push_str("</div></div>");
    overdue(&mut body, o.directory, o.overdue, report);
    body.push_str("</main>");
    page("Liên thông văn bản điện tử", &body)
}

/// `năm 2026`, `quý IV/2026`, `tháng 11/2026`, or `từ 01/2026 đến 03/2026`.
fn describe(period: Period) -> String {
    let ((y1, m1), (y2, m2)) = (period.from, period.to);
    match (y1 == y2, m1, m2) {
        (true, 1, 12) => format!("Năm {y1}"),
        (true, a, b) if a == b => format!("Tháng {a}/{y1}"),
        (true, a, b) if b == a + 2 && a % 3 == 1 => {
            let quarter = ["I", "II", "III", "IV"][usize::from(a / 3)];
            format!("Quý {quarter}/{y1}")
        }
        _ => format!("Từ {m1:02}/{y1} đến {m2:02}/{y2}"),
    }
}

fn period_form(body: &mut String, asked: &str, period: Period) {
    let year = period.to.0;
    let _ = write!(
        body,
        r#"<form class="period" method="get" action="/"><label for="period">Kỳ báo cáo</label><input id="period" name="period" value="{value}" placeholder="2026, 2026-Q4, 2026-11"><button type="submit">Xem</button><nav><a href="/?period={year}">Năm {year}</a>"#,
        value = if asked.is_empty() {
            year.to_string()
        } else {
            escape(asked)
        },
    );
    for (q, name) in ["I", "II", "III", "IV"].iter().enumerate() {
        let _ = write!(
            body,
            r#"<a href="/?period={year}-Q{n}">Quý {name}</a>"#,
            n = q + 1
        );
    }
    body.push_str("</nav></form>");
}

fn cards(body: &mut String, row: &Row, target: f64, district: bool) {
    let c = &row.counts;
    let rate = row.electronic_percent();
    let documents = if district {
        c.sent_electronic + c.sent_paper
    } else {
        c.sent_electronic + c.sent_paper + c.received_electronic + c.received_paper
    };
    let share = |part: u64, whole: u64| (whole > 0).then(|| 100.0 * part as f64 / whole as f64);
    let registered = c.registered_on_time + c.registered_late;
    let completed = c.completed_on_time + c.completed_late;
    let overdue = row.overdue_registration + row.overdue_handling;
    body.push_str(r#"<div class="cards">"#);
    let mut card = |key: &str, value: String, label: String, flagged: bool| {
        let _ = write!(
            body,
            r#"<div class="card{below}" data-key="{key}"><div class="value">{value}</div><div class="label">{label}</div></div>"#,
            below = if flagged { " below" } else { "" },
            value = escape(&value),
            label = escape(&label),
        );
    };
    card(
        "electronic",
        rate.map_or("–".into(), percent),
        format!("văn bản điện tử (mục tiêu {})", percent(target)),
        chart::below(rate, target),
    );
    card(
        "documents",
        count(documents),
        if district {
            "văn bản phát hành".into()
        } else {
            "văn bản gửi và nhận".into()
        },
        false,
    );
    let median = row.median_registration_hours().map_or(String::new(), |h| {
        format!(", trung vị {h:.1} giờ").replace('.', ",")
    });
    card(
        "registered",
        share(c.registered_on_time, registered).map_or("–".into(), percent),
        format!("vào sổ đúng hạn ({} văn bản{median})", count(registered)),
        false,
    );
    card(
        "completed",
        share(c.completed_on_time, completed).map_or("–".into(), percent),
        format!("hoàn thành đúng hạn ({} văn bản)", count(completed)),
        false,
    );
    card(
        "overdue",
        count(overdue),
        "quá hạn hôm nay".into(),
        overdue > 0,
    );
    body.push_str("</div>");
}

fn bar(row: &Row) -> Option<Bar> {
    let org = row.organization.as_ref()?;
    let c = &row.counts;
    Some(Bar {
        code: org.code.to_string(),
        name: org.name.clone(),
        percent: row.electronic_percent(),
        documents: c.sent_electronic + c.sent_paper + c.received_electronic + c.received_paper,
    })
}

/// Below the chart, the organisations under the target are named when
/// they are this few; more, and the chart says it better.
const NAMES_LISTED: usize = 8;

fn rates(body: &mut String, report: &Report) {
    let target = report.target_percent;
    let bars: Vec<Bar> = report.rows.iter().filter_map(bar).collect();
    let below: Vec<&Bar> = bars
        .iter()
        .filter(|b| chart::below(b.percent, target))
        .collect();
    let _ = write!(
        body,
        r#"<section id="rates"><h2>Tỷ lệ văn bản điện tử theo cơ quan</h2>{svg}<p class="note below-target" data-count="{n}">"#,
        svg = chart::rate_chart(&bars, target),
        n = below.len(),
    );
    if below.is_empty() {
        let _ = write!(body, "Không cơ quan nào dưới mục tiêu {}.", percent(target));
    } else if below.len() > NAMES_LISTED {
        let _ = write!(
            body,
            "Dưới mục tiêu {}: {} trên {} cơ quan.",
            percent(target),
            below.len(),
            bars.len()
        );
    } else {
        let names: Vec<String> = below.iter().map(|b| chart::short_name(&b.name)).collect();
        let _ = write!(
            body,
            "Dưới mục tiêu {}: {} cơ quan — {}.",
            percent(target),
            below.len(),
            escape(&names.join(", "))
        );
    }
    body.push_str(
        " Tỷ lệ = văn bản điện tử / (điện tử + giấy), gửi và nhận trong kỳ.</p></section>",
    );
}

fn trend(body: &mut String, months: &[((u16, u8), Row)], report: &Report, district: bool) {
    let period = report.period;
    let chart_months: Vec<Month> = months
        .iter()
        .map(|(month, row)| {
            let c = &row.counts;
            let documents = if district {
                c.sent_electronic + c.sent_paper
            } else {
                c.sent_electronic + c.sent_paper + c.received_electronic + c.received_paper
            };
            let key = format_month(*month);
            Month {
                link: Some(format!("/?period={key}")),
                key,
                month: month.1,
                percent: row.electronic_percent(),
                documents,
                selected: period.from <= *month && *month <= period.to,
            }
        })
        .collect();
    let year = months.first().map_or(period.to.0, |(m, _)| m.0);
    let _ = write!(
        body,
        r#"<section id="trend"><h2>Theo tháng, năm {year}{whose}</h2>{svg}<p class="note">Bấm vào một tháng để xem báo cáo tháng đó.</p></section>"#,
        whose = if district { " (toàn huyện)" } else { "" },
        svg = chart::trend_chart(&chart_months, report.target_percent),
    );
}

fn registration(body: &mut String, report: &Report) {
    let on_time = |row: &Row| {
        let c = &row.counts;
        let all = c.registered_on_time + c.registered_late;
        (all > 0).then(|| 100.0 * c.registered_on_time as f64 / all as f64)
    };
    let mut rows: Vec<&Row> = report
        .rows
        .iter()
        .filter(|r| r.counts.registered_on_time + r.counts.registered_late > 0)
        .collect();
    rows.sort_by(|a, b| {
        on_time(a)
            .unwrap_or(f64::INFINITY)
            .total_cmp(&on_time(b).unwrap_or(f64::INFINITY))
    });
    body.push_str(
        r#"<section id="registration"><h2>Vào sổ đúng hạn</h2><div class="wide"><table><thead><tr><th>Cơ quan</th><th class="n">Đúng hạn</th><th class="n">Trễ</th><th class="n">Tỷ lệ</th><th class="n">Trung vị</th></tr></thead><tbody>"#,
    );
    let line = |body: &mut String, row: &Row| {
        let c = &row.counts;
        let _ = write!(
            body,
            r#"<td class="n">{}</td><td class="n{late}">{}</td><td class="n">{}</td><td class="n">{}</td></tr>"#,
            count(c.registered_on_time),
            count(c.registered_late),
            on_time(row).map_or("–".into(), percent),
            row.median_registration_hours()
                .map_or("–".into(), |h| format!("{h:.1} giờ").replace('.', ",")),
            late = if c.registered_late > 0 { " late" } else { "" },
        );
    };
    for row in &rows {
        let name = row
            .organization
            .as_ref()
            .map_or(String::new(), |o| chart::short_name(&o.name));
        let _ = write!(body, "<tr><td>{}</td>", escape(&name));
        line(body, row);
    }
    if rows.is_empty() {
        body.push_str(r#"<tr><td colspan="5">Chưa có văn bản nào được vào sổ trong kỳ.</td></tr>"#);
    }
    body.push_str("</tbody>");
    if let Some(district) = &report.district {
        body.push_str("<tfoot><tr><td>Toàn huyện</td>");
        line(body, district);
        body.push_str("</tfoot>");
    }
    body.push_str(
        r#"</table></div><p class="note">Đúng hạn: vào sổ trong ngày làm việc văn bản đến hoặc ngày làm việc tiếp theo (Nghị định 30).</p></section>"#,
    );
}

fn overdue(body: &mut String, directory: &Directory, list: &[Deadline], report: &Report) {
    let name = |code: &str| {
        directory
            .org(code)
            .map_or_else(|| code.to_owned(), |o| chart::short_name(&o.name))
    };
    let _ = write!(
        body,
        r#"<section id="overdue"><h2>Văn bản quá hạn đến hôm nay ({today}): {n}</h2>"#,
        today = clock::format_date(report.today),
        n = count(list.len() as u64),
    );
    if list.is_empty() {
        body.push_str(r#"<p class="note">Không có văn bản quá hạn.</p></section>"#);
        return;
    }
    body.push_str(r#"<ol class="overdue-list">"#);
    for d in list.iter().take(OVERDUE_SHOWN) {
        let header = &d.view.header;
        let (kind, what) = match d.kind {
            DeadlineKind::Registration => ("registration", "chưa vào sổ"),
            DeadlineKind::Handling => ("handling", "chưa xử lý xong"),
        };
        let _ = write!(
            body,
            r#"<li class="overdue" data-kind="{kind}" data-id="{id}"><a class="doc-link" href="/document/{id}">Số {number}</a> {subject}<span class="meta">{sender} → {recipient} · {what} · hạn {due} · <span class="late">trễ {late} ngày làm việc</span></span></li>"#,
            id = d.view.id,
            number = escape(&format!("{:02}/{}", header.number, header.notation)),
            subject = escape(&header.subject),
            sender = escape(&name(&d.view.stored.sender)),
            recipient = escape(&name(d.recipient.as_str())),
            due = clock::format_date(d.due),
            late = -d.working_days_left,
        );
    }
    body.push_str("</ol>");
    if list.len() > OVERDUE_SHOWN {
        let _ = write!(
            body,
            r#"<p class="note">Hiển thị {OVERDUE_SHOWN} văn bản trễ lâu nhất; danh sách đủ: <code>lienthong overdue --district</code>.</p>"#
        );
    }
    body.push_str("</section>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_read_in_vietnamese() {
        let p = |from, to| describe(Period { from, to });
        assert_eq!(p((2026, 1), (2026, 12)), "Năm 2026");
        assert_eq!(p((2026, 11), (2026, 11)), "Tháng 11/2026");
        assert_eq!(p((2026, 10), (2026, 12)), "Quý IV/2026");
        assert_eq!(p((2026, 1), (2026, 3)), "Quý I/2026");
        assert_eq!(p((2026, 2), (2026, 4)), "Từ 02/2026 đến 04/2026");
    }
}
