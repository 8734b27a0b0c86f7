//! Calendar dates of a territory. Every date a person reads, and every year
//! or day a report groups by, is computed in the territory's time zone (a CS
//! setting, `America/Montreal` unless the CS says otherwise), never in UTC by
//! accident: a visit at 20:00 on 31 December in Quebec belongs to that year.
//! The BSI's five-year cycle is counted here too, in calendar years.
//! Instants stay milliseconds since the epoch everywhere else.

pub use jiff::civil::Date;
use jiff::{Timestamp, ToSpan, Zoned};

pub use jiff::tz::TimeZone;

/// The time zone of a territory that has not chosen one (all of Quebec's
/// CS but the Magdalen Islands).
pub const DEFAULT_TIME_ZONE: &str = "America/Montreal";

/// Years between two BSI of a complex.
pub const CYCLE_YEARS: i16 = 5;

/// The time zone of an IANA name (`America/Montreal`), or why not, in French.
pub fn zone(name: &str) -> Result<TimeZone, String> {
    TimeZone::get(name.trim()).map_err(|_| {
        format!(
            "fuseau horaire inconnu « {name} » : donnez un nom IANA comme {DEFAULT_TIME_ZONE} ou America/Halifax"
        )
    })
}

/// The default territory time zone (built in: cannot fail).
pub fn default_zone() -> TimeZone {
    TimeZone::get(DEFAULT_TIME_ZONE).expect("the built-in tz database has America/Montreal")
}

fn zoned(ms: i64, tz: &TimeZone) -> Zoned {
    Timestamp::from_millisecond(ms)
        .unwrap_or(Timestamp::UNIX_EPOCH)
        .to_zoned(tz.clone())
}

/// The day of an instant in the territory.
pub fn date(ms: i64, tz: &TimeZone) -> Date {
    zoned(ms, tz).date()
}

/// The day of an instant in the territory: `AAAA-MM-JJ`.
pub fn iso_date(ms: i64, tz: &TimeZone) -> String {
    date(ms, tz).to_string()
}

/// When something was done, in the territory's time: `AAAA-MM-JJ HH:MM`.
pub fn iso_datetime(ms: i64, tz: &TimeZone) -> String {
    zoned(ms, tz).strftime("%Y-%m-%d %H:%M").to_string()
}

/// The time of day of an instant in the territory, as Quebec writes it:
/// `14 h 05`.
pub fn clock(ms: i64, tz: &TimeZone) -> String {
    zoned(ms, tz).strftime("%-H h %M").to_string()
}

/// The same with the UTC offset, for output read away from the territory
/// (the server's command line): `AAAA-MM-JJ HH:MM -05:00`.
pub fn iso_datetime_offset(ms: i64, tz: &TimeZone) -> String {
    zoned(ms, tz).strftime("%Y-%m-%d %H:%M %:z").to_string()
}

/// The year an instant falls in, in the territory.
pub fn year(ms: i64, tz: &TimeZone) -> i64 {
    i64::from(zoned(ms, tz).date().year())
}

/// Parses an ISO date (`AAAA-MM-JJ`); `None` for anything else.
pub fn parse_date(d: &str) -> Option<Date> {
    let d = d.trim();
    // jiff also reads other shapes; the pages and the API promise this one.
    (d.len() == 10).then(|| d.parse::<Date>().ok()).flatten()
}

/// The first millisecond of a day in the territory (the day starts at the
/// first instant that exists on it, across a DST change).
pub fn day_start_ms(day: Date, tz: &TimeZone) -> i64 {
    day.to_zoned(tz.clone())
        .map(|z| z.timestamp().as_millisecond())
        .unwrap_or(i64::MIN)
}

/// The first millisecond of the next day: `[day_start, day_end)` is the day.
pub fn day_end_ms(day: Date, tz: &TimeZone) -> i64 {
    day.tomorrow()
        .map(|d| day_start_ms(d, tz))
        .unwrap_or(i64::MAX)
}

/// The instant before which a BSI is due again at `now_ms`: a complex last
/// inspected on a day five calendar years or more before today is due
/// (inspected 2021-12-02 → due from 2026-12-02; 29 February → 28 February).
/// The one definition of the cycle, for SQL (`created_at < cutoff`) and code.
pub fn cycle_cutoff_ms(now_ms: i64, tz: &TimeZone) -> i64 {
    let today = zoned(now_ms, tz).date();
    let due_on = |d: Date| d.checked_add(CYCLE_YEARS.years()).unwrap_or(d);
    // The first day whose cycle ends after today; one more step only when
    // the day before five years ago was 29 February (its cycle ends on the
    // 28th, like the 28th's).
    let mut first_not_due = today
        .checked_sub(CYCLE_YEARS.years())
        .and_then(|d| d.tomorrow())
        .unwrap_or(today);
    while due_on(first_not_due) <= today {
        match first_not_due.tomorrow() {
            Ok(next) => first_not_due = next,
            Err(_) => break,
        }
    }
    day_start_ms(first_not_due, tz)
}

/// Whether a complex whose last BSI started at `last_ms` (none: never
/// inspected) is due at `now_ms`.
pub fn is_due(last_ms: Option<i64>, now_ms: i64, tz: &TimeZone) -> bool {
    last_ms.is_none_or(|last| last < cycle_cutoff_ms(now_ms, tz))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Milliseconds of a UTC date and time.
    fn utc(y: i16, mo: i8, d: i8, h: i8, mi: i8) -> i64 {
        jiff::civil::date(y, mo, d)
            .at(h, mi, 0, 0)
            .to_zoned(TimeZone::UTC)
            .unwrap()
            .timestamp()
            .as_millisecond()
    }

    #[test]
    fn an_evening_visit_on_new_years_eve_in_quebec_stays_in_its_year_and_day() {
        let qc = default_zone();
        // 20:00 on 31 December in Montreal is 01:00 on 1 January in UTC.
        let visit = utc(2027, 1, 1, 1, 0);
        assert_eq!(iso_date(visit, &qc), "2026-12-31");
        assert_eq!(year(visit, &qc), 2026);
        assert_eq!(iso_datetime(visit, &qc), "2026-12-31 20:00");
        assert_eq!(iso_datetime_offset(visit, &qc), "2026-12-31 20:00 -05:00");
        assert_eq!(iso_date(visit, &TimeZone::UTC), "2027-01-01");
        // The day's bounds are local midnights.
        let day = parse_date("2026-12-31").unwrap();
        assert_eq!(day_start_ms(day, &qc), utc(2026, 12, 31, 5, 0));
        assert_eq!(day_end_ms(day, &qc), utc(2027, 1, 1, 5, 0));
        assert!((day_start_ms(day, &qc)..day_end_ms(day, &qc)).contains(&visit));
    }

    #[test]
    fn a_day_across_a_daylight_saving_change_has_its_real_length() {
        let qc = default_zone();
        // 8 March 2026: clocks go from 02:00 to 03:00 (23-hour day).
        let d = parse_date("2026-03-08").unwrap();
        assert_eq!(day_end_ms(d, &qc) - day_start_ms(d, &qc), 23 * 3_600_000);
        // 22:30 local on 7 March (EST) is 03:30 UTC on the 8th.
        assert_eq!(iso_date(utc(2026, 3, 8, 3, 30), &qc), "2026-03-07");
    }

    #[test]
    fn the_cycle_is_five_calendar_years_to_the_day() {
        let qc = default_zone();
        let now = utc(2026, 12, 2, 15, 0);
        // Inspected five years ago to the (local) day: due today.
        assert!(is_due(Some(utc(2021, 12, 2, 20, 0)), now, &qc));
        // The day after: not yet (5 × 365 days would have called it due).
        assert!(!is_due(Some(utc(2021, 12, 3, 14, 0)), now, &qc));
        assert!(utc(2021, 12, 3, 14, 0) < now - 5 * 365 * 86_400_000);
        // Late evening of 2 December 2021 in Quebec is 3 December in UTC: still due.
        assert!(is_due(Some(utc(2021, 12, 3, 3, 0)), now, &qc));
        assert!(is_due(None, now, &qc));
        // A BSI on 29 February is due on 28 February five years later.
        let leap = utc(2024, 2, 29, 15, 0);
        assert!(is_due(Some(leap), utc(2029, 2, 28, 15, 0), &qc));
        assert!(!is_due(Some(leap), utc(2029, 2, 27, 15, 0), &qc));
    }

    #[test]
    fn zone_names_are_checked_and_refused_in_french() {
        assert!(zone("America/Halifax").is_ok());
        let e = zone("Mars/Olympus").unwrap_err();
        assert!(e.contains("fuseau horaire inconnu"), "{e}");
        assert!(parse_date("2026-13-01").is_none() && parse_date("2026-1-1").is_none());
    }
}
