//! Figures the review pages and their exports compute from query rows,
//! as pure functions with their own tests (no storage, no HTML): the works
//! plan's totals by office and year.

use std::collections::BTreeMap;

use crate::queries::PlanLine;

/// The works plan's totals: by office and year, by office, by year, all.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PlanTotals {
    /// Years with work, ascending.
    pub years: Vec<i64>,
    /// Offices with work, in the order of the lines (by name).
    pub offices: Vec<String>,
    cells: BTreeMap<(String, i64), f64>,
}

impl PlanTotals {
    /// Sums the lines' costs.
    pub fn of(lines: &[PlanLine]) -> Self {
        let mut t = PlanTotals::default();
        for l in lines {
            if !t.offices.contains(&l.office) {
                t.offices.push(l.office.clone());
            }
            if let Err(i) = t.years.binary_search(&l.year) {
                t.years.insert(i, l.year);
            }
            *t.cells.entry((l.office.clone(), l.year)).or_default() += l.cost;
        }
        t
    }

    /// Work of one office (all offices: `None`) in one year (all years: `None`).
    pub fn total(&self, office: Option<&str>, year: Option<i64>) -> f64 {
        self.cells
            .iter()
            .filter(|((o, y), _)| office.is_none_or(|x| o == x) && year.is_none_or(|x| *y == x))
            .map(|(_, c)| c)
            .sum()
    }

    /// The largest year's total (at least 1, to scale a chart).
    pub fn largest_year(&self) -> f64 {
        self.years
            .iter()
            .map(|y| self.total(None, Some(*y)))
            .fold(0.0, f64::max)
            .max(1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(office: &str, year: i64, cost: f64) -> PlanLine {
        PlanLine {
            office: office.into(),
            complex: "E".into(),
            year,
            work: "Travaux".into(),
            urgency: "Moins d'un an".into(),
            cost,
        }
    }

    #[test]
    fn plan_totals_add_up_by_office_by_year_and_overall() {
        let t = PlanTotals::of(&[
            line("OH A", 2027, 100.0),
            line("OH A", 2026, 50.0),
            line("OH A", 2027, 25.0),
            line("OH B", 2029, 10.0),
        ]);
        assert_eq!(t.years, vec![2026, 2027, 2029]);
        assert_eq!(t.offices, vec!["OH A", "OH B"]);
        assert_eq!(t.total(Some("OH A"), Some(2027)), 125.0);
        assert_eq!(t.total(Some("OH A"), None), 175.0);
        assert_eq!(t.total(None, Some(2029)), 10.0);
        assert_eq!(t.total(Some("OH B"), Some(2026)), 0.0);
        assert_eq!(t.total(None, None), 185.0);
        assert_eq!(t.largest_year(), 125.0);
        assert_eq!(PlanTotals::of(&[]).largest_year(), 1.0);
    }
}
