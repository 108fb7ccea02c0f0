//! Time as the clerical rules count it: Vietnam time (UTC+7, no daylight
//! saving), whatever the server's own time zone. Arrival numbers restart on
//! 1 January in Vietnam, not in UTC.

use time::{Date, Month, OffsetDateTime, UtcOffset};

/// Indochina Time. Vietnam has not observed daylight saving since 1975.
const VIETNAM: UtcOffset = match UtcOffset::from_hms(7, 0, 0) {
    Ok(offset) => offset,
    Err(_) => panic!("UTC+7 is a valid offset"),
};

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// The service's clock: the system's, shifted by an offset that tests set
/// to stand just before midnight on 31 December (or any other instant)
/// without touching the machine's clock. Each server has its own, so tests
/// running side by side do not see each other's shift. Everything that
/// fixes an acceptance time or a date reads this clock, not [`now_ms`].
#[derive(Debug, Clone, Default)]
pub struct Clock {
    offset_ms: std::sync::Arc<std::sync::atomic::AtomicI64>,
}

impl Clock {
    /// The system's clock, unshifted.
    pub fn system() -> Clock {
        Clock::default()
    }

    /// A clock that reads `at_ms` now and runs on from there.
    pub fn starting_at(at_ms: i64) -> Clock {
        let clock = Clock::default();
        clock.set(at_ms);
        clock
    }

    /// Moves the clock so that it reads `at_ms` now (for tests).
    pub fn set(&self, at_ms: i64) {
        self.offset_ms
            .store(at_ms - now_ms(), std::sync::atomic::Ordering::Relaxed);
    }

    pub fn now_ms(&self) -> i64 {
        now_ms() + self.offset_ms.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Today's date in Vietnam by this clock.
    pub fn today(&self) -> Date {
        vietnam_date(self.now_ms())
    }
}

/// The calendar date in Vietnam at the given instant.
pub fn vietnam_date(unix_ms: i64) -> Date {
    let at = OffsetDateTime::from_unix_timestamp_nanos(unix_ms as i128 * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    at.to_offset(VIETNAM).date()
}

/// Today's date in Vietnam.
pub fn today() -> Date {
    vietnam_date(now_ms())
}

/// Parses `YYYY-MM-DD` (a four-digit year from 1900 to 9999).
pub fn parse_date(text: &str) -> Option<Date> {
    let bytes = text.as_bytes();
    if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return None;
    }
    let digits = |range: std::ops::Range<usize>| -> Option<u32> {
        let part = text.get(range)?;
        if !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    let year = digits(0..4)?;
    let month = Month::try_from(digits(5..7)? as u8).ok()?;
    let day = digits(8..10)? as u8;
    if year < 1900 {
        return None;
    }
    Date::from_calendar_date(year as i32, month, day).ok()
}

/// Formats a date as `YYYY-MM-DD`.
pub fn format_date(date: Date) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

fn in_vietnam(unix_ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(unix_ms as i128 * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
        .to_offset(VIETNAM)
}

/// The one way a person reads an instant: `YYYY-MM-DD HH:MM UTC+7`, in
/// Vietnam time with the zone written.
pub fn format_vietnam(unix_ms: i64) -> String {
    let at = in_vietnam(unix_ms);
    format!(
        "{} {:02}:{:02} UTC+7",
        format_date(at.date()),
        at.hour(),
        at.minute()
    )
}

/// An instant for machines (JSON, files): RFC 3339 in Vietnam time with
/// its offset, `2026-11-20T14:05:03.250+07:00`.
pub fn rfc3339(unix_ms: i64) -> String {
    in_vietnam(unix_ms)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| format!("{unix_ms} ms"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_year_comes_at_midnight_vietnam_time() {
        // 2025-12-31T16:59:59Z is 23:59:59 in Hanoi; one second later it is 2026.
        let before = 1_767_200_399_000;
        assert_eq!(vietnam_date(before).year(), 2025);
        assert_eq!(vietnam_date(before + 1000).year(), 2026);
    }

    #[test]
    fn instants_are_written_in_vietnam_time_with_the_zone() {
        let at = 1_767_200_399_000; // 2025-12-31T16:59:59Z
        assert_eq!(format_vietnam(at), "2025-12-31 23:59 UTC+7");
        assert_eq!(rfc3339(at), "2025-12-31T23:59:59+07:00");
    }

    #[test]
    fn dates_parse_strictly() {
        assert!(parse_date("2026-02-28").is_some());
        assert!(parse_date("2026-02-29").is_none());
        assert!(parse_date("2026-2-28").is_none());
        assert!(parse_date("2026-02-28x").is_none());
        assert!(parse_date("+026-02-28").is_none());
        assert!(parse_date("0999-01-01").is_none());
        assert_eq!(
            format_date(parse_date("2024-02-29").unwrap_or(today())),
            "2024-02-29"
        );
    }
}
