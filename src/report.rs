//! The report toward the district's electronic-exchange target: for a
//! period, per organisation and for the whole district, documents sent and
//! received (electronic and paper), the electronic rate against the target,
//! registrations and completions on time or late, and what is overdue now.
//!
//! Everything but "overdue now" comes from the store's per-organisation,
//! per-month counters (`store::counters`), which every commit keeps up to
//! date: a year's report reads O(organisations × months) records and never
//! scans documents. "Overdue now" is the deadlines service's judgement of
//! today, whatever the period.

mod explain;

use std::sync::Arc;

use time::Date;

use crate::deadlines::{Deadlines, DISTRICT_KINDS};
use crate::directory::{Directory, Organization};
use crate::error::{quote, Error, Result};
use crate::store::{self, Store, StoredReportMonth};

pub use explain::{Entry, Explanation, Lists, Window};

/// The target when `serve --target-percent` gives none: 90% of documents
/// exchanged electronically.
pub const DEFAULT_TARGET_PERCENT: f64 = 90.0;

/// A run of whole months, Vietnam time, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub from: (u16, u8),
    pub to: (u16, u8),
}

impl Period {
    /// From a request: `period` (`2026-11`, `2026-Q4`, `2026`), or `from`
    /// and `to` dates (YYYY-MM-DD; whole months: the counters are monthly),
    /// or neither: the year of `today`. Errors name the field.
    pub fn parse(period: &str, from: &str, to: &str, today: Date) -> Result<Period> {
        let (period, from, to) = (period.trim(), from.trim(), to.trim());
        match (period.is_empty(), from.is_empty(), to.is_empty()) {
            (true, true, true) => {
                let year = year_of(i64::from(today.year()), "period")?;
                Ok(Period {
                    from: (year, 1),
                    to: (year, 12),
                })
            }
            (false, true, true) => parse_period(period),
            (false, _, _) => Err(Error::invalid(
                "period",
                "give either a period or from and to dates, not both",
            )),
            (true, false, false) => {
                let from_date = date(from, "from")?;
                let to_date = date(to, "to")?;
                if to_date < from_date {
                    return Err(Error::invalid(
                        "to",
                        format!("{to} is before from ({from})"),
                    ));
                }
                Ok(Period {
                    from: month_of(from_date)?,
                    to: month_of(to_date)?,
                })
            }
            (true, true, false) => Err(Error::invalid("from", "is required with to")),
            (true, false, true) => Err(Error::invalid("to", "is required with from")),
        }
    }

    /// The months of the period, in order.
    pub fn months(&self) -> impl Iterator<Item = (u16, u8)> {
        let (mut year, mut month) = self.from;
        let to = self.to;
        std::iter::from_fn(move || {
            if (year, month) > to {
                return None;
            }
            let out = (year, month);
            (year, month) = if month == 12 {
                (year.checked_add(1)?, 1)
            } else {
                (year, month + 1)
            };
            Some(out)
        })
    }
}

/// `YYYY-MM` of a (year, month).
pub fn format_month((year, month): (u16, u8)) -> String {
    format!("{year:04}-{month:02}")
}

fn parse_period(text: &str) -> Result<Period> {
    let bad = || {
        Error::invalid(
            "period",
            format!(
                "{} is not a period: write a month (2026-11), a quarter (2026-Q4) or a year (2026)",
                quote(text)
            ),
        )
    };
    let number = |s: &str| -> Option<i64> {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let (year_text, rest) = match text.split_once('-') {
        Some((year, rest)) => (year, Some(rest)),
        None => (text, None),
    };
    if year_text.len() != 4 {
        return Err(bad());
    }
    let year = year_of(number(year_text).ok_or_else(bad)?, "period")?;
    let (first, last) = match rest {
        None => (1, 12),
        Some(quarter) if quarter.starts_with(['Q', 'q']) => {
            match number(quarter.get(1..).unwrap_or("")).filter(|q| (1..=4).contains(q)) {
                Some(q) => {
                    let q = q as u8;
                    (3 * q - 2, 3 * q)
                }
                None => return Err(bad()),
            }
        }
        Some(month) if month.len() == 2 => match number(month).filter(|m| (1..=12).contains(m)) {
            Some(m) => (m as u8, m as u8),
            None => return Err(bad()),
        },
        Some(_) => return Err(bad()),
    };
    Ok(Period {
        from: (year, first),
        to: (year, last),
    })
}

fn year_of(year: i64, field: &str) -> Result<u16> {
    u16::try_from(year)
        .ok()
        .filter(|y| (2000..=9999).contains(y))
        .ok_or_else(|| Error::invalid(field, format!("the year {year} is out of range")))
}

fn date(text: &str, field: &str) -> Result<Date> {
    crate::clock::parse_date(text)
        .ok_or_else(|| Error::invalid(field, format!("{} is not a date YYYY-MM-DD", quote(text))))
}

fn month_of(date: Date) -> Result<(u16, u8)> {
    let year = year_of(i64::from(date.year()), "from")?;
    Ok((year, u8::from(date.month())))
}

/// One row of the report: an organisation's figures, or the district's.
#[derive(Debug, Clone, Default)]
pub struct Row {
    /// `None` for the district total.
    pub organization: Option<Organization>,
    /// The counters summed over the period's months.
    pub counts: StoredReportMonth,
    pub overdue_registration: u64,
    pub overdue_handling: u64,
}

impl Row {
    /// Electronic / (electronic + paper), in percent, over sent and received
    /// for an organisation, over sent only for the district (each document
    /// once, at its issuer); `None` when there is nothing to count.
    pub fn electronic_percent(&self) -> Option<f64> {
        let c = &self.counts;
        let (electronic, paper) = match self.organization {
            Some(_) => (
                c.sent_electronic + c.received_electronic,
                c.sent_paper + c.received_paper,
            ),
            None => (c.sent_electronic, c.sent_paper),
        };
        let total = electronic + paper;
        (total > 0).then(|| 100.0 * electronic as f64 / total as f64)
    }

    pub fn median_registration_hours(&self) -> Option<f64> {
        store::estimated_median_hours(&self.counts.registration_delays)
    }
}

/// A report as the caller may see it.
#[derive(Debug)]
pub struct Report {
    pub period: Period,
    pub target_percent: f64,
    pub today: Date,
    pub rows: Vec<Row>,
    /// For the committee and its office only.
    pub district: Option<Row>,
}

pub struct Reports {
    store: Arc<Store>,
    directory: Arc<Directory>,
    deadlines: Arc<Deadlines>,
    target_percent: f64,
}

impl Reports {
    pub fn new(
        store: Arc<Store>,
        directory: Arc<Directory>,
        deadlines: Arc<Deadlines>,
        target_percent: f64,
    ) -> Reports {
        Reports {
            store,
            directory,
            deadlines,
            target_percent,
        }
    }

    /// Today's date by the service's clock (a period's default year).
    pub fn today(&self) -> Date {
        self.store.clock().today()
    }

    /// The report of `period` for `caller`: every organisation and the
    /// district for the committee and its office, its own row for anyone
    /// else.
    pub fn report(&self, caller: &Organization, period: Period) -> Result<Report> {
        let district_view = DISTRICT_KINDS.contains(&caller.kind.as_str());
        let (today, overdue) = self.deadlines.overdue_now()?;
        let mut rows = Vec::new();
        for org in self.directory.organizations() {
            if !district_view && org.code != caller.code {
                continue;
            }
            let mut row = self.row(org, period)?;
            (row.overdue_registration, row.overdue_handling) =
                overdue.get(&org.code).copied().unwrap_or_default();
            rows.push(row);
        }
        if rows.is_empty() {
            return Err(Error::not_found(format!(
                "{} in the directory",
                caller.alias
            )));
        }
        let district = district_view.then(|| {
            let mut total = Row::default();
            for row in &rows {
                add(&mut total.counts, &row.counts);
                total.overdue_registration += row.overdue_registration;
                total.overdue_handling += row.overdue_handling;
            }
            total
        });
        Ok(Report {
            period,
            target_percent: self.target_percent,
            today,
            rows,
            district,
        })
    }
}

impl Reports {
    /// Month by month through `year`, the district's totals for the
    /// committee and its office, `caller`'s own row for anyone else (the
    /// same rule as [`Reports::report`]); without what is overdue. Reads
    /// O(organisations × 12) counter records.
    pub fn monthly(&self, caller: &Organization, year: u16) -> Result<Vec<((u16, u8), Row)>> {
        let district_view = DISTRICT_KINDS.contains(&caller.kind.as_str());
        let mut months: Vec<((u16, u8), Row)> = (1..=12)
            .map(|month| {
                let row = Row {
                    organization: (!district_view).then(|| caller.clone()),
                    ..Row::default()
                };
                ((year, month), row)
            })
            .collect();
        for org in self.directory.organizations() {
            if !district_view && org.code != caller.code {
                continue;
            }
            for ((_, month), counts) in
                self.store.report_months(&org.code, (year, 1), (year, 12))?
            {
                if let Some((_, row)) = months.get_mut(usize::from(month).saturating_sub(1)) {
                    add(&mut row.counts, &counts);
                }
            }
        }
        Ok(months)
    }

    /// `org`'s counters summed over the period, without what is overdue.
    fn row(&self, org: &Organization, period: Period) -> Result<Row> {
        let mut counts = StoredReportMonth::default();
        for (_, month) in self
            .store
            .report_months(&org.code, period.from, period.to)?
        {
            add(&mut counts, &month);
        }
        Ok(Row {
            organization: Some(org.clone()),
            counts,
            ..Row::default()
        })
    }
}

/// Adds the counts of `month` into `into`.
pub fn add(into: &mut StoredReportMonth, month: &StoredReportMonth) {
    into.sent_electronic += month.sent_electronic;
    into.sent_paper += month.sent_paper;
    into.received_electronic += month.received_electronic;
    into.received_paper += month.received_paper;
    into.registered_on_time += month.registered_on_time;
    into.registered_late += month.registered_late;
    into.completed_on_time += month.completed_on_time;
    into.completed_late += month.completed_late;
    into.rejected += month.rejected;
    if into.registration_delays.len() < month.registration_delays.len() {
        into.registration_delays
            .resize(month.registration_delays.len(), 0);
    }
    for (sum, count) in into
        .registration_delays
        .iter_mut()
        .zip(&month.registration_delays)
    {
        *sum += count;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::Month;

    fn today() -> Date {
        Date::from_calendar_date(2026, Month::November, 5).unwrap()
    }

    fn parse(period: &str) -> Result<Period> {
        Period::parse(period, "", "", today())
    }

    #[test]
    fn periods_parse() {
        let p = |from, to| Period { from, to };
        assert_eq!(parse("2026-11").unwrap(), p((2026, 11), (2026, 11)));
        assert_eq!(parse("2026-Q4").unwrap(), p((2026, 10), (2026, 12)));
        assert_eq!(parse("2026").unwrap(), p((2026, 1), (2026, 12)));
        assert_eq!(
            Period::parse("", "", "", today()).unwrap(),
            p((2026, 1), (2026, 12))
        );
        assert_eq!(
            Period::parse("", "2026-02-10", "2026-04-01", today()).unwrap(),
            p((2026, 2), (2026, 4))
        );
        assert_eq!(parse("2026-Q4").unwrap().months().count(), 3);
        assert_eq!(
            Period {
                from: (2025, 11),
                to: (2026, 2)
            }
            .months()
            .collect::<Vec<_>>(),
            vec![(2025, 11), (2025, 12), (2026, 1), (2026, 2)]
        );
    }

    #[test]
    fn bad_periods_name_the_field() {
        for bad in ["2026-13", "2026-Q5", "26", "2026-1", "november", "2026-Q"] {
            let e = parse(bad).unwrap_err().to_string();
            assert!(e.contains("period"), "{bad}: {e}");
        }
        let e = Period::parse("", "2026-02-30", "2026-03-01", today()).unwrap_err();
        assert!(e.to_string().contains("from"), "{e}");
        let e = Period::parse("", "2026-03-01", "2026-02-01", today()).unwrap_err();
        assert!(e.to_string().contains("to"), "{e}");
        let e = Period::parse("", "2026-03-01", "", today()).unwrap_err();
        assert!(e.to_string().contains("to"), "{e}");
        let e = Period::parse("2026", "2026-03-01", "", today()).unwrap_err();
        assert!(e.to_string().contains("period"), "{e}");
    }
}
