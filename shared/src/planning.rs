//! The five-year cycle's planning: who visits which complex in which month
//! (an [`Assignment`], set by the CS manager and sent to devices with the
//! reference data), and where each complex stands in the cycle
//! ([`CycleState`], from its last approved BSI). Pure: the server's planning
//! page and the app's "Mes visites" classify with the same functions.

use jiff::ToSpan;
use serde::{Deserialize, Serialize};

use crate::calendar::{self, Date, TimeZone};
use crate::domain::InspectionStatus;
use crate::ids::{ComplexId, UserId};

/// A calendar month, `AAAA-MM` on the wire, in storage and in forms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Month {
    pub year: i16,
    /// 1 to 12.
    pub month: i8,
}

const MONTHS_FR: [&str; 12] = [
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
];

impl Month {
    /// Parses `AAAA-MM` (years 2000 to 2100), or says what is expected.
    pub fn parse(s: &str) -> Result<Month, String> {
        let s = s.trim();
        let bad = || format!("mois invalide « {s} » : écrivez AAAA-MM, par exemple 2027-03");
        let (y, m) = s.split_once('-').ok_or_else(bad)?;
        if y.len() != 4 || m.len() != 2 {
            return Err(bad());
        }
        let year: i16 = y.parse().map_err(|_| bad())?;
        let month: i8 = m.parse().map_err(|_| bad())?;
        if !(2000..=2100).contains(&year) || !(1..=12).contains(&month) {
            return Err(bad());
        }
        Ok(Month { year, month })
    }

    /// The month of a day.
    pub fn of_date(d: Date) -> Month {
        Month {
            year: d.year(),
            month: d.month(),
        }
    }

    /// The month an instant falls in, in the territory.
    pub fn of_ms(ms: i64, tz: &TimeZone) -> Month {
        Month::of_date(calendar::date(ms, tz))
    }

    /// The month `n` months later.
    pub fn plus(self, n: u32) -> Month {
        let index = i64::from(self.year) * 12 + i64::from(self.month) - 1 + i64::from(n);
        Month {
            year: (index / 12) as i16,
            month: (index % 12 + 1) as i8,
        }
    }

    /// "mars 2027".
    pub fn label_fr(self) -> String {
        let name = MONTHS_FR[(self.month.clamp(1, 12) - 1) as usize];
        format!("{name} {}", self.year)
    }
}

impl std::fmt::Display for Month {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

impl std::str::FromStr for Month {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Month::parse(s)
    }
}

impl Serialize for Month {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Month {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Month::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Who visits a complex and when, as the CS manager planned it. Stored
/// format (v1): a row per complex on the server; on the wire, in the
/// reference data (only those changed since the device's revision).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Assignment {
    pub complex_id: ComplexId,
    /// `None`: the complex was taken off everyone's plan (kept so devices
    /// learn it and drop the visit).
    pub inspector_id: Option<UserId>,
    /// The inspector's name as the pages and devices show it.
    #[serde(default)]
    pub inspector_name: String,
    pub planned: Option<Month>,
    /// When it was last set (milliseconds).
    pub at: i64,
}

vocabulary!(
    /// Where a complex stands in the five-year cycle, from its last
    /// approved BSI (see [`cycle_state`]).
    CycleState {
        Overdue => "en_retard", "En retard";
        Due => "a_faire", "À faire cette année";
        InProgress => "en_cours", "En cours";
        Done => "fait", "Fait cette année";
        UpToDate => "a_jour", "À jour";
    }
);

/// The day a complex's next BSI is due: five years after its last approved
/// one (none: never approved, due now).
pub fn due_date(last_approved_ms: Option<i64>, tz: &TimeZone) -> Option<Date> {
    let last = calendar::date(last_approved_ms?, tz);
    Some(
        last.checked_add(calendar::CYCLE_YEARS.years())
            .unwrap_or(last),
    )
}

/// A complex's state in the cycle at `now_ms`, in the territory's zone,
/// from its last approved BSI and its latest inspection (start, status):
/// done when the last approved BSI is of this year; in progress when a
/// later inspection is under way (started, submitted or returned); overdue
/// when its cycle has run out (or it was never approved); due when its
/// cycle ends this year; up to date otherwise.
pub fn cycle_state(
    last_approved_ms: Option<i64>,
    latest: Option<(i64, InspectionStatus)>,
    now_ms: i64,
    tz: &TimeZone,
) -> CycleState {
    let later_inspection = latest.is_some_and(|(at, status)| {
        status != InspectionStatus::Approved && last_approved_ms.is_none_or(|a| at > a)
    });
    let this_year = calendar::year(now_ms, tz);
    if last_approved_ms.is_some_and(|a| calendar::year(a, tz) == this_year) {
        return CycleState::Done;
    }
    if later_inspection {
        return CycleState::InProgress;
    }
    if calendar::is_due(last_approved_ms, now_ms, tz) {
        return CycleState::Overdue;
    }
    match due_date(last_approved_ms, tz) {
        Some(d) if i64::from(d.year()) == this_year => CycleState::Due,
        _ => CycleState::UpToDate,
    }
}

/// Whether a visit planned in `planned` comes after the cycle's end (the
/// planning page and "Mes visites" mark it).
pub fn planned_late(planned: Month, due: Option<Date>) -> bool {
    due.is_some_and(|d| planned > Month::of_date(d))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(y: i16, mo: i8, d: i8, h: i8, tz: &TimeZone) -> i64 {
        jiff::civil::date(y, mo, d)
            .at(h, 0, 0, 0)
            .to_zoned(tz.clone())
            .unwrap()
            .timestamp()
            .as_millisecond()
    }

    #[test]
    fn a_month_reads_and_writes_as_year_dash_month_and_refuses_anything_else() {
        let m = Month::parse(" 2027-03 ").unwrap();
        assert_eq!((m.year, m.month), (2027, 3));
        assert_eq!(m.to_string(), "2027-03");
        assert_eq!(m.label_fr(), "mars 2027");
        assert_eq!(m.plus(10).to_string(), "2028-01");
        assert_eq!(m.plus(0), m);
        assert_eq!(serde_json::to_string(&m).unwrap(), "\"2027-03\"");
        assert_eq!(serde_json::from_str::<Month>("\"2027-03\"").unwrap(), m);
        for bad in [
            "2027-13", "2027-00", "27-03", "2027/03", "1999-01", "", "2027-3",
        ] {
            let e = Month::parse(bad).unwrap_err();
            assert!(e.contains("AAAA-MM"), "{bad}: {e}");
        }
        assert!(serde_json::from_str::<Month>("\"mars\"").is_err());
    }

    #[test]
    fn the_cycle_state_counts_years_in_the_territory_not_in_utc() {
        let qc = calendar::default_zone();
        // 31 December 2026 at 20:00 in Quebec is already 2027 in UTC.
        let new_years_eve = at(2026, 12, 31, 20, &qc);
        let approved_2021_eve = at(2021, 12, 31, 20, &qc);
        // Approved on 2021-12-31 (Quebec): due on 2026-12-31, which is today.
        assert_eq!(
            cycle_state(Some(approved_2021_eve), None, new_years_eve, &qc),
            CycleState::Overdue
        );
        // The day before, it is still due this year, not overdue.
        let day_before = at(2026, 12, 30, 12, &qc);
        assert_eq!(
            cycle_state(Some(approved_2021_eve), None, day_before, &qc),
            CycleState::Due
        );
        // Approved that evening: done this year (2026 in Quebec).
        assert_eq!(
            cycle_state(Some(new_years_eve), None, new_years_eve + 1, &qc),
            CycleState::Done
        );
        // Read in UTC, the same evening is 2027: a UTC-counted state would
        // call a 2026 approval "done" in 2027.
        let next_morning = at(2027, 1, 1, 9, &qc);
        assert_ne!(
            cycle_state(Some(new_years_eve), None, next_morning, &qc),
            CycleState::Done
        );
    }

    #[test]
    fn a_complex_never_approved_is_overdue_unless_an_inspection_is_under_way() {
        let qc = calendar::default_zone();
        let now = at(2026, 6, 1, 12, &qc);
        assert_eq!(cycle_state(None, None, now, &qc), CycleState::Overdue);
        assert_eq!(
            cycle_state(None, Some((now, InspectionStatus::Submitted)), now, &qc),
            CycleState::InProgress
        );
        let recent = at(2024, 5, 1, 12, &qc);
        assert_eq!(
            cycle_state(Some(recent), None, now, &qc),
            CycleState::UpToDate
        );
        // The approved BSI itself is not "a later inspection under way".
        assert_eq!(
            cycle_state(
                Some(recent),
                Some((recent, InspectionStatus::Approved)),
                now,
                &qc
            ),
            CycleState::UpToDate
        );
        assert_eq!(
            due_date(Some(recent), &qc).unwrap().to_string(),
            "2029-05-01"
        );
    }

    #[test]
    fn a_visit_planned_after_the_cycle_ends_is_late() {
        let qc = calendar::default_zone();
        let due = due_date(Some(at(2022, 3, 15, 12, &qc)), &qc);
        assert!(!planned_late(Month::parse("2027-03").unwrap(), due));
        assert!(planned_late(Month::parse("2027-04").unwrap(), due));
        assert!(!planned_late(Month::parse("2030-01").unwrap(), None));
    }
}
