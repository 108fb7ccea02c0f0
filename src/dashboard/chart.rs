//! The dashboard's charts as SVG: the electronic rate per organisation as
//! horizontal bars against the target line, and a rate month by month.
//! Pure functions of their figures, shared by the web page and `lienthong
//! report --svg`, so the file and the page always draw the same chart.
//!
//! Colours and fonts are SVG attributes, not page CSS, so that a chart
//! saved on its own looks as it does on the page. Every text from data is
//! escaped. Stable markers for tests and scripts: each organisation's bar is
//! a `g class="bar"` with `data-org` (its code), `data-percent` and
//! `data-below`; the target is the `line class="target-line"`; each month of
//! the trend a `g class="month"` with `data-month`.

use std::fmt::Write;

use super::html::{escape, percent};

/// One organisation's bar.
#[derive(Debug, Clone)]
pub struct Bar {
    pub code: String,
    pub name: String,
    /// Electronic / all, in percent; `None` when it exchanged nothing.
    pub percent: Option<f64>,
    /// The documents the rate is over.
    pub documents: u64,
}

/// One month of the trend.
#[derive(Debug, Clone)]
pub struct Month {
    /// `YYYY-MM`.
    pub key: String,
    /// Its number, 1–12.
    pub month: u8,
    pub percent: Option<f64>,
    pub documents: u64,
    /// In the period the page shows (the others are drawn lighter).
    pub selected: bool,
    /// Where a click on it leads, if anywhere.
    pub link: Option<String>,
}

const FONT: &str =
    "system-ui, -apple-system, 'Segoe UI', Roboto, 'Noto Sans', 'DejaVu Sans', Arial, sans-serif";
const INK: &str = "#17212b";
const MUTED: &str = "#5b6773";
const TRACK: &str = "#e8edf2";
const MET: &str = "#7cc79a";
const BELOW: &str = "#f2a093";
const TARGET: &str = "#b42318";

/// The rate chart's width, in its own units; the page scales it.
const WIDTH: f64 = 396.0;
/// The bar's track: from `LEFT` over `TRACK_WIDTH` units; the rate is
/// written right of it.
const LEFT: f64 = 4.0;
const TRACK_WIDTH: f64 = 340.0;
const TOP: f64 = 30.0;
const ROW: f64 = 24.0;
const BAR_HEIGHT: f64 = 19.0;

fn x_of(percent: f64) -> f64 {
    LEFT + TRACK_WIDTH * percent.clamp(0.0, 100.0) / 100.0
}

/// Whether a rate is below the target (no rate: nothing to flag).
pub fn below(percent: Option<f64>, target: f64) -> bool {
    percent.is_some_and(|p| p < target)
}

/// "Ủy ban nhân dân xã X" as a chart has room for: "UBND xã X".
pub fn short_name(name: &str) -> String {
    match name.strip_prefix("Ủy ban nhân dân ") {
        Some(rest) => format!("UBND {rest}"),
        None => name.to_owned(),
    }
}

/// The electronic rate of each organisation as a horizontal bar, lowest
/// first (who is furthest from the target leads; those with nothing to
/// count last), with the target as a dashed vertical line.
pub fn rate_chart(bars: &[Bar], target: f64) -> String {
    let mut bars: Vec<&Bar> = bars.iter().collect();
    bars.sort_by(|a, b| {
        let key = |bar: &Bar| bar.percent.unwrap_or(f64::INFINITY);
        key(a).total_cmp(&key(b)).then_with(|| a.name.cmp(&b.name))
    });
    let rows = bars.len() as f64;
    let bottom = TOP + rows * ROW;
    let height = bottom + 46.0;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="chart rate-chart" viewBox="0 0 {WIDTH} {height}" width="{w}" height="{h}" font-family="{FONT}" role="img" aria-label="{title}"><title>{title}</title>"#,
        w = WIDTH * 1.5,
        h = height * 1.5,
        title = escape(&format!(
            "Tỷ lệ văn bản điện tử theo cơ quan, mục tiêu {}",
            percent(target)
        )),
    );
    for (i, bar) in bars.iter().enumerate() {
        let y = TOP + i as f64 * ROW;
        let is_below = below(bar.percent, target);
        let fill = if is_below { BELOW } else { MET };
        let width = bar.percent.map_or(0.0, |p| x_of(p) - LEFT);
        let value = bar.percent.map_or("–".to_owned(), percent);
        let note = match bar.percent {
            None => "chưa có văn bản".to_owned(),
            Some(_) if is_below => format!("dưới mục tiêu {}", percent(target)),
            Some(_) => "đạt mục tiêu".to_owned(),
        };
        let _ = write!(
            svg,
            r#"<g class="bar" data-org="{code}" data-percent="{data}" data-below="{is_below}"><title>{tip}</title><rect x="{LEFT}" y="{y}" width="{TRACK_WIDTH}" height="{BAR_HEIGHT}" rx="3" fill="{TRACK}"/><rect x="{LEFT}" y="{y}" width="{width:.1}" height="{BAR_HEIGHT}" rx="3" fill="{fill}"/><text x="{lx}" y="{ty}" font-size="13" fill="{INK}">{name}</text><text x="{vx}" y="{ty}" font-size="13" text-anchor="end" fill="{vfill}" font-weight="{weight}">{value}</text></g>"#,
            code = escape(&bar.code),
            data = bar.percent.map_or(String::new(), |p| format!("{p:.1}")),
            tip = escape(&format!(
                "{}: {} điện tử trên {} văn bản, {note}",
                bar.name, value, bar.documents
            )),
            lx = LEFT + 6.0,
            ty = y + 14.0,
            name = escape(&short_name(&bar.name)),
            vx = WIDTH - 2.0,
            vfill = if is_below { TARGET } else { INK },
            weight = if is_below { "bold" } else { "normal" },
        );
    }
    let tx = x_of(target);
    let _ = write!(
        svg,
        r#"<line class="target-line" data-percent="{target}" x1="{tx:.1}" y1="{y1}" x2="{tx:.1}" y2="{bottom}" stroke="{TARGET}" stroke-width="1.5" stroke-dasharray="4 3"/><text x="{tx:.1}" y="16" font-size="11" text-anchor="middle" fill="{TARGET}">Mục tiêu {label}</text>"#,
        y1 = TOP - 8.0,
        label = escape(&percent(target)),
    );
    for (tick, anchor) in [(0.0, "start"), (50.0, "middle"), (100.0, "end")] {
        let _ = write!(
            svg,
            r#"<text x="{x:.1}" y="{y}" font-size="10" text-anchor="{anchor}" fill="{MUTED}">{t}%</text>"#,
            x = x_of(tick),
            y = bottom + 12.0,
            t = tick as u32,
        );
    }
    let legend = bottom + 32.0;
    let _ = write!(
        svg,
        r#"<rect x="{LEFT}" y="{sy}" width="12" height="10" rx="2" fill="{MET}"/><text x="{t1}" y="{legend}" font-size="11" fill="{INK}">đạt mục tiêu</text><rect x="{s2}" y="{sy}" width="12" height="10" rx="2" fill="{BELOW}"/><text x="{t2}" y="{legend}" font-size="11" fill="{INK}">dưới mục tiêu</text></svg>"#,
        sy = legend - 9.0,
        t1 = LEFT + 17.0,
        s2 = LEFT + 110.0,
        t2 = LEFT + 127.0,
    );
    svg
}

/// The trend's size and plot area, in its own units.
const TREND_WIDTH: f64 = 440.0;
const TREND_HEIGHT: f64 = 176.0;
const PLOT_LEFT: f64 = 34.0;
const PLOT_TOP: f64 = 18.0;
const PLOT_BOTTOM: f64 = 148.0;

fn y_of(percent: f64) -> f64 {
    PLOT_BOTTOM - (PLOT_BOTTOM - PLOT_TOP) * percent.clamp(0.0, 100.0) / 100.0
}

/// The rate month by month as columns, with the target as a dashed line;
/// a month with a link opens that month's report.
pub fn trend_chart(months: &[Month], target: f64) -> String {
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="chart trend-chart" viewBox="0 0 {TREND_WIDTH} {TREND_HEIGHT}" width="{w}" height="{h}" font-family="{FONT}" role="img" aria-label="{title}"><title>{title}</title>"#,
        w = TREND_WIDTH * 1.5,
        h = TREND_HEIGHT * 1.5,
        title = "Tỷ lệ văn bản điện tử theo tháng",
    );
    for tick in [0.0, 50.0, 100.0] {
        let y = y_of(tick);
        let _ = write!(
            svg,
            r#"<line x1="{PLOT_LEFT}" y1="{y}" x2="{TREND_WIDTH}" y2="{y}" stroke="{TRACK}"/><text x="{x}" y="{ty}" font-size="10" text-anchor="end" fill="{MUTED}">{t}%</text>"#,
            x = PLOT_LEFT - 4.0,
            ty = y + 3.5,
            t = tick as u32,
        );
    }
    let slot = (TREND_WIDTH - PLOT_LEFT) / months.len().max(1) as f64;
    for (i, month) in months.iter().enumerate() {
        let center = PLOT_LEFT + slot * (i as f64 + 0.5);
        let opacity = if month.selected { "1" } else { "0.45" };
        if let Some(link) = &month.link {
            let _ = write!(svg, r#"<a href="{}">"#, escape(link));
        }
        let _ = write!(
            svg,
            r#"<g class="month" data-month="{key}" data-percent="{data}" opacity="{opacity}"><title>{tip}</title>"#,
            key = escape(&month.key),
            data = month.percent.map_or(String::new(), |p| format!("{p:.1}")),
            tip = escape(&format!(
                "Tháng {}: {} điện tử trên {} văn bản",
                month.month,
                month.percent.map_or("–".to_owned(), percent),
                month.documents
            )),
        );
        // The whole column is the link's target, not only the bar.
        let _ = write!(
            svg,
            r#"<rect x="{x:.1}" y="{PLOT_TOP}" width="{slot:.1}" height="{h}" fill="transparent"/>"#,
            x = center - slot / 2.0,
            h = TREND_HEIGHT - PLOT_TOP,
        );
        if let Some(p) = month.percent {
            let top = y_of(p);
            let fill = if below(Some(p), target) { BELOW } else { MET };
            let _ = write!(
                svg,
                r#"<rect x="{x:.1}" y="{top:.1}" width="{w:.1}" height="{h:.1}" rx="2" fill="{fill}"/><text x="{center:.1}" y="{ty:.1}" font-size="9" text-anchor="middle" fill="{INK}">{p:.0}%</text>"#,
                x = center - slot * 0.33,
                w = slot * 0.66,
                h = PLOT_BOTTOM - top,
                ty = top - 3.0,
            );
        }
        let _ = write!(
            svg,
            r#"<text x="{center:.1}" y="{y}" font-size="10" text-anchor="middle" fill="{INK}" font-weight="{weight}">T{m}</text></g>"#,
            y = PLOT_BOTTOM + 14.0,
            m = month.month,
            weight = if month.selected { "bold" } else { "normal" },
        );
        if month.link.is_some() {
            svg.push_str("</a>");
        }
    }
    let ty = y_of(target);
    let _ = write!(
        svg,
        r#"<line class="target-line" data-percent="{target}" x1="{PLOT_LEFT}" y1="{ty:.1}" x2="{TREND_WIDTH}" y2="{ty:.1}" stroke="{TARGET}" stroke-width="1.2" stroke-dasharray="4 3"/></svg>"#,
    );
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bar(code: &str, name: &str, percent: Option<f64>) -> Bar {
        Bar {
            code: code.into(),
            name: name.into(),
            percent,
            documents: 10,
        }
    }

    #[test]
    fn one_bar_per_organisation_lowest_first_and_data_escaped() {
        let svg = rate_chart(
            &[
                bar("A", "Phòng <Nội> vụ & co", Some(95.0)),
                bar("B", "Ủy ban nhân dân xã Hữu Liên", Some(40.0)),
                bar("C", "UBND xã Yên Sơn", None),
            ],
            90.0,
        );
        assert_eq!(svg.matches(r#"class="bar""#).count(), 3);
        assert_eq!(svg.matches(r#"class="target-line""#).count(), 1);
        let (a, b, c) = (
            svg.find(r#"data-org="A""#).unwrap(),
            svg.find(r#"data-org="B""#).unwrap(),
            svg.find(r#"data-org="C""#).unwrap(),
        );
        assert!(b < a && a < c, "lowest first, nothing to count last");
        assert!(svg.contains("Phòng &lt;Nội&gt; vụ &amp; co"));
        assert!(!svg.contains("<Nội>"));
        assert!(svg.contains(">UBND xã Hữu Liên<"));
        assert!(svg.contains(r#"data-org="B" data-percent="40.0" data-below="true""#));
        assert!(svg.contains(r#"data-org="A" data-percent="95.0" data-below="false""#));
    }

    #[test]
    fn the_target_line_stands_at_the_target() {
        let svg = rate_chart(&[bar("A", "A", Some(50.0))], 90.0);
        let x = format!("x1=\"{:.1}\"", x_of(90.0));
        assert!(svg.contains(&x), "{svg}");
    }
}
