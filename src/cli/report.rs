//! `report`: the electronic-exchange report of a period, as a table sorted
//! by rate with a bar per organisation and the target marked, as CSV, or as
//! one JSON document; with `--explain ORG`, the documents behind one
//! organisation's row; with `--svg FILE`, also the dashboard's bar chart of
//! the rates, drawn by the same function as the page.

use std::path::PathBuf;

use clap::Args;
use serde_json::{json, Value};

use super::connection::{connect, Connection};
use super::error::Result;
use super::files;
use super::output::{self, outln, print_json};
use crate::dashboard::chart::{self, Bar};
use crate::pb;

#[derive(Args)]
pub struct ReportArgs {
    #[command(flatten)]
    pub conn: Connection,
    /// The period, Vietnam time: a month (2026-11), a quarter (2026-Q4) or
    /// a year (2026); default: the current year.
    #[arg(long, value_name = "P", conflicts_with_all = ["from", "to"])]
    pub period: Option<String>,
    /// First day (YYYY-MM-DD), with --to; the report covers whole months.
    #[arg(long, value_name = "DATE", requires = "to")]
    pub from: Option<String>,
    /// Last day (YYYY-MM-DD), with --from.
    #[arg(long, value_name = "DATE", requires = "from")]
    pub to: Option<String>,
    /// One line per organisation and one for the district, comma-separated.
    #[arg(long, conflicts_with = "json")]
    pub csv: bool,
    /// List the documents behind each number of one organisation's row
    /// (its code or alias): the committee and its office may explain any,
    /// anyone else its own.
    #[arg(long, value_name = "ORG", conflicts_with = "csv")]
    pub explain: Option<String>,
    /// With --explain: skip the first N documents of each list.
    #[arg(long, value_name = "N", requires = "explain", default_value_t = 0)]
    pub offset: u32,
    /// With --explain: at most N documents per list (the server's default
    /// is 1000, its maximum 10000); each list's full length is the row's
    /// number.
    #[arg(long, value_name = "N", requires = "explain")]
    pub limit: Option<u32>,
    /// Also write the electronic rate per organisation as an SVG bar chart
    /// against the target to FILE: the dashboard's chart.
    #[arg(long, value_name = "FILE", conflicts_with = "explain")]
    pub svg: Option<PathBuf>,
    /// Overwrite the --svg FILE if it exists.
    #[arg(long, requires = "svg")]
    pub force: bool,
}

/// Width of the bar, in characters, for 100%.
const BAR: usize = 40;

const COLUMNS: [&str; 16] = [
    "organisation",
    "code",
    "sent_electronic",
    "sent_paper",
    "received_electronic",
    "received_paper",
    "electronic_percent",
    "meets_target",
    "registered_on_time",
    "registered_late",
    "median_registration_hours",
    "completed_on_time",
    "completed_late",
    "rejected",
    "overdue_registration",
    "overdue_handling",
];

pub async fn run(args: ReportArgs) -> Result {
    if let Some(file) = &args.svg {
        files::refuse_to_overwrite(std::slice::from_ref(file), args.force)?;
    }
    let mut client = connect(&args.conn).await?;
    if let Some(organization) = &args.explain {
        let response = client
            .explain_report(pb::ExplainReportRequest {
                organization: organization.clone(),
                period: args.period.clone().unwrap_or_default(),
                from: args.from.clone().unwrap_or_default(),
                to: args.to.clone().unwrap_or_default(),
                offset: args.offset,
                limit: args.limit.unwrap_or(0),
            })
            .await?
            .into_inner();
        super::explain::print(&response, args.conn.json);
        return Ok(());
    }
    let response = client
        .get_report(pb::GetReportRequest {
            period: args.period.clone().unwrap_or_default(),
            from: args.from.clone().unwrap_or_default(),
            to: args.to.clone().unwrap_or_default(),
        })
        .await?
        .into_inner();
    if let Some(file) = &args.svg {
        write_svg(file, &response)?;
    }
    if args.conn.json {
        print_json(&json!({
            "from_month": response.from_month,
            "to_month": response.to_month,
            "target_percent": response.target_percent,
            "today": response.today,
            "rows": response.rows.iter().map(row_json).collect::<Vec<_>>(),
            "district": response.district.as_ref().map(row_json),
        }));
        return Ok(());
    }
    if args.csv {
        let rows: Vec<Vec<String>> = response
            .rows
            .iter()
            .chain(response.district.as_ref())
            .map(csv_row)
            .collect();
        output::write_text(&super::register::csv(&COLUMNS, &rows));
        return Ok(());
    }
    print_table(&response);
    Ok(())
}

/// The report's chart, as the dashboard draws it, into `file`.
fn write_svg(file: &std::path::Path, response: &pb::GetReportResponse) -> Result {
    let bars: Vec<Bar> = response
        .rows
        .iter()
        .filter_map(|row| {
            let org = row.organization.as_ref()?;
            Some(Bar {
                code: org.code.clone(),
                name: org.name.clone(),
                percent: row.electronic_percent,
                documents: row.sent_electronic
                    + row.sent_paper
                    + row.received_electronic
                    + row.received_paper,
            })
        })
        .collect();
    let svg = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{}\n",
        chart::rate_chart(&bars, response.target_percent)
    );
    std::fs::write(file, svg).map_err(|e| format!("cannot write {}: {e}", file.display()))?;
    output::note(&format!(
        "the chart of {} organisations written to {}",
        bars.len(),
        file.display()
    ));
    Ok(())
}

fn name(row: &pb::ReportRow) -> String {
    match &row.organization {
        Some(_) => output::org_short(&row.organization),
        None => "district".to_owned(),
    }
}

fn row_json(row: &pb::ReportRow) -> Value {
    json!({
        "organization": row.organization.as_ref().map(|_| output::org(&row.organization)),
        "sent_electronic": row.sent_electronic,
        "sent_paper": row.sent_paper,
        "received_electronic": row.received_electronic,
        "received_paper": row.received_paper,
        "electronic_percent": row.electronic_percent,
        "meets_target": row.meets_target,
        "registered_on_time": row.registered_on_time,
        "registered_late": row.registered_late,
        "median_registration_hours": row.median_registration_hours,
        "completed_on_time": row.completed_on_time,
        "completed_late": row.completed_late,
        "rejected": row.rejected,
        "overdue_registration": row.overdue_registration,
        "overdue_handling": row.overdue_handling,
    })
}

fn optional(value: Option<f64>) -> String {
    value.map(|v| format!("{v:.1}")).unwrap_or_default()
}

fn csv_row(row: &pb::ReportRow) -> Vec<String> {
    vec![
        name(row),
        row.organization
            .as_ref()
            .map(|o| o.code.clone())
            .unwrap_or_default(),
        row.sent_electronic.to_string(),
        row.sent_paper.to_string(),
        row.received_electronic.to_string(),
        row.received_paper.to_string(),
        optional(row.electronic_percent),
        row.meets_target.to_string(),
        row.registered_on_time.to_string(),
        row.registered_late.to_string(),
        optional(row.median_registration_hours),
        row.completed_on_time.to_string(),
        row.completed_late.to_string(),
        row.rejected.to_string(),
        row.overdue_registration.to_string(),
        row.overdue_handling.to_string(),
    ]
}

/// `█` up to the rate, `·` after it, `|` at the target.
fn bar(rate: Option<f64>, target: f64) -> String {
    let filled = rate.map_or(0, |r| ((r / 100.0) * BAR as f64).round() as usize);
    let mark = ((target / 100.0) * BAR as f64).round() as usize;
    (0..=BAR)
        .map(|i| match i {
            _ if i == mark => '|',
            _ if i < filled => '█',
            _ => '·',
        })
        .collect()
}

fn print_table(response: &pb::GetReportResponse) {
    let target = response.target_percent;
    outln!(
        "Report {} to {} (target {target:.0}% electronic; overdue as of {})",
        response.from_month,
        response.to_month,
        response.today
    );
    let mut rows: Vec<&pb::ReportRow> = response.rows.iter().collect();
    // Lowest rate first: who is furthest from the target leads.
    rows.sort_by(|a, b| {
        let rate = |r: &pb::ReportRow| r.electronic_percent.unwrap_or(-1.0);
        rate(a)
            .total_cmp(&rate(b))
            .then_with(|| name(a).cmp(&name(b)))
    });
    outln!(
        "{:<22} {:>6}  {:<41} {:>11} {:>11} {:>11} {:>7} {:>11} {:>7}",
        "ORGANISATION",
        "RATE",
        "ELECTRONIC",
        "SENT e/p",
        "RECV e/p",
        "REG ok/late",
        "MEDIAN",
        "DONE ok/late",
        "OVERDUE"
    );
    for row in rows.into_iter().chain(response.district.as_ref()) {
        let below = row.electronic_percent.is_some() && !row.meets_target;
        outln!(
            "{:<22} {:>6}  {} {:>11} {:>11} {:>11} {:>7} {:>11} {:>7}{}",
            output::cut(&name(row), 22),
            row.electronic_percent
                .map_or("-".to_owned(), |r| format!("{r:.1}%")),
            bar(row.electronic_percent, target),
            format!("{}/{}", row.sent_electronic, row.sent_paper),
            format!("{}/{}", row.received_electronic, row.received_paper),
            format!("{}/{}", row.registered_on_time, row.registered_late),
            row.median_registration_hours
                .map_or("-".to_owned(), |h| format!("{h:.1}h")),
            format!("{}/{}", row.completed_on_time, row.completed_late),
            row.overdue_registration + row.overdue_handling,
            if below { "  ! below target" } else { "" }
        );
    }
}
