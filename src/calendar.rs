//! Working days, as deadlines count them: Monday to Friday, less each year's
//! public holidays, plus the Saturdays worked in exchange for a weekday off.
//!
//! The holidays come from configuration, not from a formula: the
//! government's annual notice fixes the Tết days and the swaps, and the lunar
//! holidays need a table anyway. The built-in file is `deploy/holidays.toml`
//! (also the example of the format); `serve --holidays FILE` replaces it. A
//! year the configuration does not list counts only Saturdays and Sundays as
//! days off: [`Calendar::missing_year_warning`] says so, and the server logs
//! it at start.
//!
//! Conventions, all in calendar dates (Vietnam time, see [`crate::clock`]):
//! - a deadline date is met by anything done on or before that date;
//! - [`Calendar::working_days_between`] counts the working days after the
//!   first date up to and including the second, so that
//!   `working_days_between(d, add_working_days(d, n)) == n`;
//! - [`Calendar::registration_due`] is the first working day *after* the
//!   arrival date, whatever that date is (see there).

use std::collections::BTreeSet;
use std::fmt;
use std::ops::Bound;
use std::path::Path;

use serde::Deserialize;
use time::{Date, Weekday};
use toml::Spanned;

use crate::clock::parse_date;

/// The holidays shipped with the service (the current year's).
pub const BUILTIN_TOML: &str = include_str!("../deploy/holidays.toml");

/// How errors in [`BUILTIN_TOML`] name their file.
const BUILTIN_FILE: &str = "deploy/holidays.toml (built in)";

/// The working-day calendar: which years are configured, and their days off
/// and working Saturdays.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Calendar {
    /// The years the configuration lists.
    years: BTreeSet<i32>,
    /// Holidays falling Monday to Friday. One on a weekend changes nothing by
    /// itself: its compensatory day is listed as a holiday of its own.
    weekdays_off: BTreeSet<Date>,
    working_saturdays: BTreeSet<Date>,
}

/// Why a holidays file was refused. Each names the file; a bad value also
/// its line and key.
#[derive(Debug)]
pub enum CalendarError {
    Read {
        file: String,
        source: std::io::Error,
    },
    /// Not TOML, or not of the format (unknown key, wrong type, missing key):
    /// the TOML reader's own message, which names the key.
    Format {
        file: String,
        line: Option<usize>,
        message: String,
    },
    /// A value of the right type that is wrong.
    Invalid {
        file: String,
        line: usize,
        key: &'static str,
        value: String,
        reason: String,
    },
}

impl fmt::Display for CalendarError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CalendarError::Read { file, source } => {
                write!(f, "cannot read the holidays file {file}: {source}")
            }
            CalendarError::Format {
                file,
                line: Some(line),
                message,
            } => write!(f, "the holidays file {file}, line {line}: {message}"),
            CalendarError::Format {
                file,
                line: None,
                message,
            } => write!(f, "the holidays file {file}: {message}"),
            CalendarError::Invalid {
                file,
                line,
                key,
                value,
                reason,
            } => write!(
                f,
                "the holidays file {file}, line {line}: {key} = {value}: {reason}"
            ),
        }
    }
}

impl std::error::Error for CalendarError {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileFormat {
    year: Vec<YearRow>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct YearRow {
    year: Spanned<i64>,
    holidays: Vec<Spanned<toml::Value>>,
    #[serde(default)]
    working_saturdays: Vec<Spanned<toml::Value>>,
}

/// A date written as `"YYYY-MM-DD"` or as a bare TOML date.
fn date_value(value: &toml::Value) -> Option<Date> {
    match value {
        toml::Value::String(text) => parse_date(text),
        toml::Value::Datetime(at) if at.time.is_none() && at.offset.is_none() => {
            parse_date(&at.to_string())
        }
        _ => None,
    }
}

/// Reads one file's text into a [`Calendar`], with errors that point at it.
struct Reader<'a> {
    file: &'a str,
    text: &'a str,
}

impl Reader<'_> {
    fn line_at(&self, offset: usize) -> usize {
        let before = self.text.get(..offset).unwrap_or(self.text);
        before.matches('\n').count() + 1
    }

    /// The line holding `offset`, trimmed, if it is short enough to quote.
    fn line_text(&self, offset: usize) -> Option<&str> {
        let start = self.text.get(..offset)?.rfind('\n').map_or(0, |i| i + 1);
        let line = self.text.get(start..)?.lines().next()?.trim();
        (!line.is_empty() && line.chars().count() <= 80).then_some(line)
    }

    fn invalid<T: fmt::Display>(
        &self,
        key: &'static str,
        value: &Spanned<T>,
        reason: String,
    ) -> CalendarError {
        CalendarError::Invalid {
            file: self.file.to_owned(),
            line: self.line_at(value.span().start),
            key,
            value: value.get_ref().to_string(),
            reason,
        }
    }

    /// The dates of one list of a year, each a date of that year, none twice.
    fn dates(
        &self,
        key: &'static str,
        year: i32,
        values: &[Spanned<toml::Value>],
    ) -> Result<BTreeSet<Date>, CalendarError> {
        let mut dates = BTreeSet::new();
        for value in values {
            let Some(date) = date_value(value.get_ref()) else {
                return Err(self.invalid(key, value, "not a date YYYY-MM-DD".into()));
            };
            if date.year() != year {
                return Err(self.invalid(key, value, format!("not in year {year}")));
            }
            if !dates.insert(date) {
                return Err(self.invalid(key, value, "listed twice".into()));
            }
        }
        Ok(dates)
    }

    fn calendar(&self) -> Result<Calendar, CalendarError> {
        let file: FileFormat = toml::from_str(self.text).map_err(|e| {
            let message = e.message().trim_end();
            // The reader's message names an unknown key, but not the key of
            // a value of the wrong type: quote the line, which has both.
            let at = e.span().map(|span| (self.line_at(span.start), span.start));
            let message = match at.and_then(|(_, start)| self.line_text(start)) {
                Some(line) => format!("`{line}`: {message}"),
                None => message.to_owned(),
            };
            CalendarError::Format {
                file: self.file.to_owned(),
                line: at.map(|(line, _)| line),
                message,
            }
        })?;
        let mut calendar = Calendar::weekends_only();
        for row in &file.year {
            let year = match i32::try_from(*row.year.get_ref()) {
                Ok(year) if (1900..=9999).contains(&year) => year,
                _ => {
                    return Err(self.invalid("year", &row.year, "not a year 1900-9999".into()));
                }
            };
            if !calendar.years.insert(year) {
                return Err(self.invalid("year", &row.year, "listed twice".into()));
            }
            let holidays = self.dates("holidays", year, &row.holidays)?;
            let saturdays = self.dates("working_saturdays", year, &row.working_saturdays)?;
            for (value, date) in row.working_saturdays.iter().zip(&saturdays) {
                if date.weekday() != Weekday::Saturday {
                    let reason = format!("a {}, not a Saturday", date.weekday());
                    return Err(self.invalid("working_saturdays", value, reason));
                }
                if holidays.contains(date) {
                    let reason = "also listed in holidays".to_owned();
                    return Err(self.invalid("working_saturdays", value, reason));
                }
            }
            let weekdays = holidays.into_iter().filter(|d| !is_weekend(*d));
            calendar.weekdays_off.extend(weekdays);
            calendar.working_saturdays.extend(saturdays);
        }
        Ok(calendar)
    }
}

fn is_weekend(date: Date) -> bool {
    matches!(date.weekday(), Weekday::Saturday | Weekday::Sunday)
}

/// Monday to Friday from Julian day 0 (a Monday) up to and including `day`;
/// a difference of two is the weekdays between them.
fn weekdays_through(day: i64) -> i64 {
    day.div_euclid(7) * 5 + (day.rem_euclid(7) + 1).min(5)
}

fn julian(date: Date) -> i64 {
    i64::from(date.to_julian_day())
}

impl Calendar {
    /// No year configured: every Saturday and Sunday off, nothing else.
    pub fn weekends_only() -> Calendar {
        Calendar::default()
    }

    /// The holidays compiled into the binary ([`BUILTIN_TOML`]). A test
    /// keeps that file valid; were it not, this logs why and counts weekends
    /// only rather than refusing to start.
    pub fn builtin() -> Calendar {
        Calendar::from_toml(BUILTIN_TOML, BUILTIN_FILE).unwrap_or_else(|e| {
            tracing::error!("{e}; counting only weekends as days off");
            Calendar::weekends_only()
        })
    }

    /// The built-in holidays, or the file at `path` when one is given.
    pub fn load(path: Option<&Path>) -> Result<Calendar, CalendarError> {
        let Some(path) = path else {
            return Ok(Calendar::builtin());
        };
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| CalendarError::Read {
            file: file.clone(),
            source,
        })?;
        Calendar::from_toml(&text, &file)
    }

    /// Reads the holidays format; `file` names the text in errors.
    pub fn from_toml(text: &str, file: &str) -> Result<Calendar, CalendarError> {
        Reader { file, text }.calendar()
    }

    /// Whether the configuration lists `year` (otherwise only weekends are
    /// days off in it).
    pub fn covers(&self, year: i32) -> bool {
        self.years.contains(&year)
    }

    /// The years the configuration lists, in order.
    pub fn years(&self) -> impl Iterator<Item = i32> + '_ {
        self.years.iter().copied()
    }

    /// What to tell the operator when `today`'s year has no holidays
    /// configured, so that deadlines would count weekends only.
    pub fn missing_year_warning(&self, today: Date) -> Option<String> {
        let year = today.year();
        (!self.covers(year)).then(|| {
            format!(
                "no public holidays are configured for {year}: deadlines count only Saturdays and Sundays as days off; give serve --holidays FILE with this year's (see deploy/holidays.toml)"
            )
        })
    }

    pub fn is_working_day(&self, date: Date) -> bool {
        if is_weekend(date) {
            self.working_saturdays.contains(&date)
        } else {
            !self.weekdays_off.contains(&date)
        }
    }

    /// The first working day strictly after `date` (`date` itself on the
    /// last day `time` can represent, 31 December 9999).
    pub fn next_working_day(&self, date: Date) -> Date {
        let mut day = date;
        while let Some(next) = day.next_day() {
            if self.is_working_day(next) {
                return next;
            }
            day = next;
        }
        day
    }

    /// The `n`th working day after `date`: `date` itself for 0, else
    /// [`Calendar::next_working_day`] applied `n` times (so 1 working day
    /// after a Friday is the Monday). Saturates at 31 December 9999.
    pub fn add_working_days(&self, date: Date, n: u32) -> Date {
        if n == 0 {
            return date;
        }
        let target = i64::from(n);
        let start = julian(date);
        let last = julian(Date::MAX);
        let count = |day: i64| self.count(start, day);
        // Widen (low, high] until it holds the answer, then halve it: the
        // count grows by one on each working day, so the first day where it
        // reaches n is that working day. n may come from a request: no loop
        // over n.
        let (mut low, mut high) = (start, start.saturating_add(1).min(last));
        while count(high) < target {
            if high == last {
                return Date::MAX;
            }
            low = high;
            high = start.saturating_add((high - start) * 2).min(last);
        }
        while high - low > 1 {
            let middle = low + (high - low) / 2;
            if count(middle) >= target {
                high = middle;
            } else {
                low = middle;
            }
        }
        i32::try_from(high)
            .ok()
            .and_then(|day| Date::from_julian_day(day).ok())
            .unwrap_or(Date::MAX)
    }

    /// The working days after `from` up to and including `to`; negative, the
    /// same count, when `to` is before `from`. So a document due on `to` is
    /// `working_days_between(today, to)` working days away, 0 on the day, and
    /// that many late when negative.
    pub fn working_days_between(&self, from: Date, to: Date) -> i64 {
        if to < from {
            return -self.count(julian(to), julian(from));
        }
        self.count(julian(from), julian(to))
    }

    /// The working days in the Julian days (`from`, `to`], `from <= to`.
    fn count(&self, from: i64, to: i64) -> i64 {
        let weekdays = weekdays_through(to) - weekdays_through(from);
        let in_range = |dates: &BTreeSet<Date>| -> i64 {
            let (Some(low), Some(high)) = (day(from), day(to)) else {
                return 0;
            };
            let range = dates.range((Bound::Excluded(low), Bound::Included(high)));
            range.count() as i64
        };
        weekdays - in_range(&self.weekdays_off) + in_range(&self.working_saturdays)
    }

    /// When a document that arrived on `arrival` must be registered at the
    /// latest. Decree 30: "the same day or, at the latest, the next working
    /// day", so the first working day after the arrival date. The arrival
    /// date's own kind does not matter: one that arrives on a Saturday, a
    /// Sunday or a holiday is due on the first working day after it (the
    /// day the office reopens), not the working day after that.
    pub fn registration_due(&self, arrival: Date) -> Date {
        self.next_working_day(arrival)
    }
}

fn day(julian: i64) -> Option<Date> {
    Date::from_julian_day(i32::try_from(julian).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(text: &str) -> Date {
        parse_date(text).unwrap_or_else(|| panic!("{text} is a date"))
    }

    fn builtin() -> Calendar {
        Calendar::from_toml(BUILTIN_TOML, BUILTIN_FILE).unwrap_or_else(|e| panic!("{e}"))
    }

    fn refused(text: &str) -> String {
        match Calendar::from_toml(text, "h.toml") {
            Ok(calendar) => panic!("accepted: {calendar:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn the_builtin_file_has_2026_and_its_days_off() {
        let calendar = builtin();
        assert_eq!(Calendar::builtin(), calendar);
        assert_eq!(calendar.years().collect::<Vec<_>>(), vec![2026]);
        let off = [
            "2026-01-01",
            "2026-01-02",
            "2026-02-16",
            "2026-02-17",
            "2026-02-18",
            "2026-02-19",
            "2026-02-20",
            "2026-04-26",
            "2026-04-27",
            "2026-04-30",
            "2026-05-01",
            "2026-08-31",
            "2026-09-01",
            "2026-09-02",
        ];
        for day in off {
            assert!(!calendar.is_working_day(d(day)), "{day} is a day off");
        }
        for day in ["2026-01-10", "2026-08-22"] {
            assert!(
                calendar.is_working_day(d(day)),
                "{day} is a working Saturday"
            );
        }
        assert!(calendar.is_working_day(d("2026-02-23")), "back after Tết");
        assert!(
            !calendar.is_working_day(d("2026-02-21")),
            "an ordinary Saturday"
        );
        // 2026: 261 weekdays, 13 of them holidays, and 2 Saturdays worked.
        let year = calendar.working_days_between(d("2025-12-31"), d("2026-12-31"));
        assert_eq!(year, 250);
    }

    #[test]
    fn registration_after_a_friday_is_due_on_monday() {
        let calendar = builtin();
        assert_eq!(calendar.registration_due(d("2026-03-06")), d("2026-03-09"));
        // Monday to Thursday: the next day.
        assert_eq!(calendar.registration_due(d("2026-03-09")), d("2026-03-10"));
        assert_eq!(calendar.registration_due(d("2026-03-12")), d("2026-03-13"));
    }

    #[test]
    fn registration_on_a_weekend_is_due_on_the_first_working_day() {
        let calendar = builtin();
        assert_eq!(calendar.registration_due(d("2026-03-07")), d("2026-03-09"));
        assert_eq!(calendar.registration_due(d("2026-03-08")), d("2026-03-09"));
    }

    #[test]
    fn registration_skips_holidays() {
        let calendar = builtin();
        // The day before 30 April and 1 May (then the weekend).
        assert_eq!(calendar.registration_due(d("2026-04-29")), d("2026-05-04"));
        // Friday before the Hùng Kings' compensatory Monday: Tuesday.
        assert_eq!(calendar.registration_due(d("2026-04-24")), d("2026-04-28"));
        // On a holiday itself: the first working day after it.
        assert_eq!(calendar.registration_due(d("2026-04-30")), d("2026-05-04"));
        // Before National Day: Monday 31 August was swapped away.
        assert_eq!(calendar.registration_due(d("2026-08-28")), d("2026-09-03"));
    }

    #[test]
    fn registration_across_tet() {
        let calendar = builtin();
        assert_eq!(calendar.registration_due(d("2026-02-13")), d("2026-02-23"));
        assert_eq!(calendar.registration_due(d("2026-02-17")), d("2026-02-23"));
        assert_eq!(
            calendar.working_days_between(d("2026-02-13"), d("2026-02-23")),
            1
        );
    }

    #[test]
    fn a_swapped_saturday_is_a_working_day() {
        let calendar = builtin();
        assert_eq!(calendar.registration_due(d("2026-01-09")), d("2026-01-10"));
        assert_eq!(calendar.registration_due(d("2026-01-10")), d("2026-01-12"));
        assert_eq!(calendar.registration_due(d("2026-08-21")), d("2026-08-22"));
        // From a year not configured into one that is: 2025-12-31 is a
        // Wednesday, 1 and 2 January are off.
        assert_eq!(calendar.registration_due(d("2025-12-31")), d("2026-01-05"));
    }

    #[test]
    fn adding_working_days() {
        let calendar = builtin();
        let friday = d("2026-02-13");
        assert_eq!(calendar.add_working_days(friday, 0), friday);
        assert_eq!(calendar.add_working_days(friday, 1), d("2026-02-23"));
        assert_eq!(calendar.add_working_days(friday, 5), d("2026-02-27"));
        // A Saturday start: 0 stays, 1 is the Monday.
        assert_eq!(
            calendar.add_working_days(d("2026-03-07"), 0),
            d("2026-03-07")
        );
        assert_eq!(
            calendar.add_working_days(d("2026-03-07"), 1),
            d("2026-03-09")
        );
        // 250 working days after New Year's Eve is the last of 2026.
        assert_eq!(
            calendar.add_working_days(d("2025-12-31"), 250),
            d("2026-12-31")
        );
    }

    #[test]
    fn between_counts_after_the_first_date_through_the_second() {
        let calendar = builtin();
        let (thursday, friday) = (d("2026-03-05"), d("2026-03-06"));
        assert_eq!(calendar.working_days_between(thursday, thursday), 0);
        assert_eq!(calendar.working_days_between(thursday, friday), 1);
        assert_eq!(calendar.working_days_between(friday, thursday), -1);
        assert_eq!(calendar.working_days_between(friday, d("2026-03-09")), 1);
        assert_eq!(
            calendar.working_days_between(d("2026-03-07"), d("2026-03-08")),
            0
        );
        // A working Saturday counts.
        assert_eq!(
            calendar.working_days_between(d("2026-01-09"), d("2026-01-12")),
            2
        );
    }

    #[test]
    fn arithmetic_agrees_with_counting_day_by_day() {
        let calendar = builtin();
        let start = d("2025-12-01");
        let mut naive = 0;
        let mut day = start;
        for _ in 0..800 {
            // 2025 and 2027 are not configured: weekends only there.
            day = day.next_day().unwrap();
            if calendar.is_working_day(day) {
                naive += 1;
                let n = u32::try_from(naive).unwrap();
                assert_eq!(calendar.add_working_days(start, n), day);
                assert_eq!(calendar.next_working_day(day.previous_day().unwrap()), day);
            }
            assert_eq!(calendar.working_days_between(start, day), naive, "to {day}");
            assert_eq!(calendar.working_days_between(day, start), -naive);
        }
    }

    #[test]
    fn julian_day_zero_is_a_monday() {
        for day in ["2026-02-16", "2026-02-17", "2026-02-21", "1900-01-01"] {
            let date = d(day);
            assert_eq!(
                julian(date).rem_euclid(7),
                i64::from(date.weekday().number_days_from_monday())
            );
        }
    }

    #[test]
    fn the_ends_of_time_do_not_panic_or_spin() {
        let calendar = builtin();
        assert_eq!(calendar.next_working_day(Date::MAX), Date::MAX);
        assert_eq!(calendar.add_working_days(Date::MAX, 3), Date::MAX);
        assert_eq!(
            calendar.add_working_days(d("2026-01-05"), u32::MAX),
            Date::MAX
        );
        let far = calendar.working_days_between(Date::MIN, Date::MAX);
        assert!(far > 0);
        assert_eq!(calendar.working_days_between(Date::MAX, Date::MIN), -far);
    }

    #[test]
    fn a_year_not_configured_has_only_weekends_off() {
        let calendar = builtin();
        assert!(!calendar.covers(2027));
        assert!(calendar.is_working_day(d("2027-01-01")));
        assert_eq!(calendar.registration_due(d("2027-01-01")), d("2027-01-04"));
        let warning = calendar.missing_year_warning(d("2027-03-01")).unwrap();
        assert!(
            warning.contains("2027") && warning.contains("--holidays"),
            "{warning}"
        );
        assert_eq!(calendar.missing_year_warning(d("2026-03-01")), None);
        assert!(Calendar::weekends_only().is_working_day(d("2026-01-01")));
    }

    #[test]
    fn dates_may_be_bare_toml_dates() {
        let text = "[[year]]\nyear = 2030\nholidays = [2030-01-01, \"2030-04-30\"]\n";
        let calendar = Calendar::from_toml(text, "h.toml").unwrap();
        assert!(!calendar.is_working_day(d("2030-01-01")));
        assert!(!calendar.is_working_day(d("2030-04-30")));
        assert!(calendar.working_saturdays.is_empty());
    }

    #[test]
    fn bad_files_are_refused_naming_file_line_key_and_value() {
        let year = "[[year]]\nyear = 2026\n";
        let cases = [
            (
                format!("{year}holidays = []\nholiday = [\"2026-01-01\"]\n"),
                "the holidays file h.toml, line 4: `holiday = [\"2026-01-01\"]`: unknown field `holiday`",
            ),
            (
                format!("{year}holidays = [\"2026-01-01\",\n  \"2026-02-30\"]\n"),
                "the holidays file h.toml, line 4: holidays = \"2026-02-30\": not a date YYYY-MM-DD",
            ),
            (
                format!("{year}holidays = [\"2025-12-31\"]\n"),
                "line 3: holidays = \"2025-12-31\": not in year 2026",
            ),
            (
                format!("{year}holidays = [\"2026-01-01\", \"2026-01-01\"]\n"),
                "line 3: holidays = \"2026-01-01\": listed twice",
            ),
            (
                format!("{year}holidays = [5]\n"),
                "line 3: holidays = 5: not a date YYYY-MM-DD",
            ),
            (
                format!("{year}holidays = []\nworking_saturdays = [\"2026-01-11\"]\n"),
                "line 4: working_saturdays = \"2026-01-11\": a Sunday, not a Saturday",
            ),
            (
                format!("{year}holidays = [\"2026-01-10\"]\nworking_saturdays = [\"2026-01-10\"]\n"),
                "line 4: working_saturdays = \"2026-01-10\": also listed in holidays",
            ),
            (
                format!("{year}holidays = []\n{year}holidays = []\n"),
                "line 5: year = 2026: listed twice",
            ),
            (
                "[[year]]\nyear = 26000\nholidays = []\n".to_owned(),
                "line 2: year = 26000: not a year 1900-9999",
            ),
            (
                "[[year]]\nyear = \"2026\"\nholidays = []\n".to_owned(),
                "line 2: `year = \"2026\"`: invalid type: string \"2026\", expected i64",
            ),
            (
                "[[year]]\nyear = 2026\n".to_owned(),
                "missing field `holidays`",
            ),
            (String::new(), "missing field `year`"),
            ("[[year]\n".to_owned(), "the holidays file h.toml, line 1:"),
        ];
        for (text, expected) in cases {
            let error = refused(&text);
            assert!(error.contains(expected), "{text:?}: {error}");
        }
    }

    #[test]
    fn loading_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.toml");
        let error = Calendar::load(Some(&missing)).unwrap_err().to_string();
        assert!(error.starts_with(&format!(
            "cannot read the holidays file {}",
            missing.display()
        )));
        let bad = dir.path().join("bad.toml");
        std::fs::write(&bad, "[[year]]\nyear = 2026\nholidays = [\"2026-13-01\"]\n").unwrap();
        let error = Calendar::load(Some(&bad)).unwrap_err().to_string();
        assert!(error.contains(&bad.display().to_string()), "{error}");
        assert!(error.contains("holidays = \"2026-13-01\""), "{error}");
        assert_eq!(Calendar::load(None).unwrap(), builtin());
    }
}
