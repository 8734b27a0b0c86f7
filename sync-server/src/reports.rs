//! Figures the review pages and their exports compute from storage rows,
//! as pure functions with their own tests (no storage, no HTML): the IVP
//! and building condition, the overview's counts per office, the works
//! plan's years and totals, the activity statement's amounts.

use std::collections::BTreeMap;

use bilan_shared::calendar;
use bilan_shared::domain::{ConditionThresholds, CsSettings, Urgency};

use crate::storage::{ComplexRow, LatestInspection, PlanRow, VisitTotals};

/// The IVP (indice de vétusté physique): work due within five years over
/// the replacement value; 0 for a complex without a replacement value.
pub fn ivp(cost_5y: f64, replacement_value: f64) -> f64 {
    if replacement_value > 0.0 {
        cost_5y / replacement_value
    } else {
        0.0
    }
}

/// One served office on the territory overview.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct OfficeOverview {
    pub office_id: String,
    pub office: String,
    pub complexes: u32,
    pub inspected: u32,
    pub approved: u32,
    pub overdue: u32,
    /// Complexes by building condition A..E: their last approved BSI's IVP
    /// (a complex with none is not counted).
    pub conditions: [u32; 5],
}

/// Per office: complexes, those inspected since `cycle_start_ms` (the rest
/// are overdue), those with a BSI approved in the cycle, and the
/// conditions of their last approved BSIs. `rows` come grouped by office.
pub fn overview(
    rows: &[ComplexRow],
    thresholds: &ConditionThresholds,
    cycle_start_ms: i64,
) -> Vec<OfficeOverview> {
    let mut out: Vec<OfficeOverview> = Vec::new();
    for r in rows {
        let id = r.office_id.to_string();
        if out.last().is_none_or(|o| o.office_id != id) {
            out.push(OfficeOverview {
                office_id: id,
                office: r.office.clone(),
                complexes: 0,
                inspected: 0,
                approved: 0,
                overdue: 0,
                conditions: [0; 5],
            });
        }
        let Some(o) = out.last_mut() else { continue };
        o.complexes += 1;
        let in_cycle = |l: &&LatestInspection| l.created_at >= cycle_start_ms;
        match r.latest.as_ref().filter(in_cycle) {
            Some(_) => o.inspected += 1,
            None => o.overdue += 1,
        }
        if r.approved.as_ref().filter(in_cycle).is_some() {
            o.approved += 1;
        }
        if let Some(l) = &r.approved {
            let c = thresholds.condition_for(ivp(l.cost_5y, r.replacement_value));
            let i = (c.code().as_bytes()[0] - b'A') as usize;
            o.conditions[i.min(4)] += 1;
        }
    }
    out
}

/// One line of the works plan: recommended work of a complex due in a year.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct PlanLine {
    pub office: String,
    pub complex: String,
    pub year: i64,
    pub work: String,
    pub urgency: String,
    pub cost: f64,
    /// Where the work is, for moving it to another year.
    pub doc_id: String,
    pub rec_id: String,
    /// Moved by the CS to `year` (instead of the year its urgency gives).
    pub moved: bool,
}

/// The year a work recommended at `recommended_at` is due: that year (in
/// the territory's zone) plus its urgency's delay.
pub fn due_year(recommended_at: i64, urgency: Option<Urgency>, tz: &calendar::TimeZone) -> i64 {
    calendar::year(recommended_at, tz)
        + i64::from(urgency.map(|u| u.years_until_due()).unwrap_or(0))
}

/// A recommendation placed in the year its urgency gives: the year it was
/// recommended (in the territory's zone) plus the years until due; work
/// carried over from an earlier BSI and overdue falls in the year of the
/// inspection carrying it, and work overdue today in `this_year` (a plan
/// looks ahead); work the CS moved falls in the year it chose.
pub fn plan_line(r: PlanRow, tz: &calendar::TimeZone, this_year: i64) -> PlanLine {
    let urgency = Urgency::from_code(&r.urgency);
    let due = due_year(r.recommended_at, urgency, tz);
    PlanLine {
        year: r
            .planned_year
            .unwrap_or_else(|| due.max(calendar::year(r.inspected_at, tz)).max(this_year)),
        moved: r.planned_year.is_some(),
        doc_id: r.doc_id,
        rec_id: r.rec_id,
        urgency: urgency
            .map(|u| u.label_fr().to_string())
            .unwrap_or(r.urgency),
        office: r.office,
        complex: r.complex,
        work: r.work,
        cost: r.cost,
    }
}

/// One office's line of the activity statement.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct ActivityLine {
    pub office: String,
    pub visits: u32,
    pub hours: f64,
    pub travel_hours: f64,
    pub km: f64,
    pub expenses: f64,
    pub fees: f64,
    pub travel_fees: f64,
    pub travel_costs: f64,
    pub compensation: f64,
    pub total: f64,
}

/// An office's line of the activity statement: fees for hours on site and
/// travel at the CS's rates, travel costs (km and expenses), compensation
/// as a fraction of the fees, and the total.
pub fn activity_line(v: VisitTotals, rates: &CsSettings) -> ActivityLine {
    let fees = v.hours * rates.hourly;
    let travel_fees = v.travel_hours * rates.travel_hourly;
    let travel_costs = v.km * rates.per_km + v.expenses;
    let compensation = (fees + travel_fees) * rates.compensation;
    ActivityLine {
        office: v.office,
        visits: v.visits,
        hours: v.hours,
        travel_hours: v.travel_hours,
        km: v.km,
        expenses: v.expenses,
        fees,
        travel_fees,
        travel_costs,
        compensation,
        total: fees + travel_fees + travel_costs + compensation,
    }
}

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
    use bilan_shared::domain::InspectionStatus;

    fn line(office: &str, year: i64, cost: f64) -> PlanLine {
        PlanLine {
            office: office.into(),
            complex: "E".into(),
            year,
            work: "Travaux".into(),
            urgency: "Moins d'un an".into(),
            cost,
            doc_id: String::new(),
            rec_id: String::new(),
            moved: false,
        }
    }

    /// 10 h on site and 2 h of travel, 100 km and 20 $ of expenses, at the
    /// default rates (75 $/h, 45 $/h, 0,55 $/km, 10 %).
    #[test]
    fn an_activity_line_applies_the_cs_rates() {
        let v = VisitTotals {
            office: "OH A".into(),
            visits: 3,
            hours: 10.0,
            travel_hours: 2.0,
            km: 100.0,
            expenses: 20.0,
        };
        let l = activity_line(v, &CsSettings::default());
        assert_eq!((l.fees, l.travel_fees), (750.0, 90.0));
        assert!((l.travel_costs - 75.0).abs() < 1e-9, "{}", l.travel_costs);
        assert!((l.compensation - 84.0).abs() < 1e-9, "{}", l.compensation);
        assert!((l.total - 999.0).abs() < 1e-9, "{}", l.total);
        assert_eq!((l.office.as_str(), l.visits), ("OH A", 3));
    }

    #[test]
    fn the_ivp_is_five_year_work_over_replacement_value_and_zero_without_one() {
        assert_eq!(ivp(50_000.0, 1_000_000.0), 0.05);
        assert_eq!(ivp(50_000.0, 0.0), 0.0);
        assert_eq!(ivp(0.0, 1_000_000.0), 0.0);
    }

    /// Two offices. The first: a complex inspected this cycle and approved
    /// (IVP 2 %: A); one approved before the cycle (IVP 40 %: E, overdue);
    /// one never inspected; one whose only inspection is in progress this
    /// cycle with a high IVP (inspected, but no condition: not approved).
    /// The second: a complex approved this cycle with no replacement value
    /// (IVP 0: A) and a newer inspection submitted since.
    #[test]
    fn the_overview_counts_each_offices_cycle_and_the_conditions_of_approved_bsis() {
        let (o1, o2) = (
            bilan_shared::ids::OfficeId::new(),
            bilan_shared::ids::OfficeId::new(),
        );
        let at = |created_at, status, cost_5y| {
            Some(LatestInspection {
                created_at,
                status,
                cost_5y,
            })
        };
        let approved = |created_at, cost_5y| at(created_at, InspectionStatus::Approved, cost_5y);
        let row = |office_id, office: &str, replacement_value, latest, approved| ComplexRow {
            complex_id: bilan_shared::ids::ComplexId::new(),
            code: String::new(),
            name: String::new(),
            office_id,
            office: office.into(),
            replacement_value,
            latest,
            approved,
            assignment: None,
        };
        let cycle = 1_000;
        let rows = [
            row(
                o1,
                "OH A",
                1e6,
                approved(2_000, 20_000.0),
                approved(2_000, 20_000.0),
            ),
            row(
                o1,
                "OH A",
                1e6,
                approved(500, 400_000.0),
                approved(500, 400_000.0),
            ),
            row(o1, "OH A", 1e6, None, None),
            row(
                o1,
                "OH A",
                1e6,
                at(3_000, InspectionStatus::InProgress, 900_000.0),
                None,
            ),
            row(
                o2,
                "OH B",
                0.0,
                at(4_000, InspectionStatus::Submitted, 10.0),
                approved(1_000, 10.0),
            ),
        ];
        let o = overview(&rows, &ConditionThresholds::default(), cycle);
        assert_eq!(o.len(), 2);
        assert_eq!(
            (o[0].complexes, o[0].inspected, o[0].approved, o[0].overdue),
            (4, 2, 1, 2)
        );
        assert_eq!(
            o[0].conditions,
            [1, 0, 0, 0, 1],
            "in progress: no condition"
        );
        assert_eq!(
            (o[1].complexes, o[1].inspected, o[1].approved, o[1].overdue),
            (1, 1, 1, 0)
        );
        assert_eq!(o[1].conditions, [1, 0, 0, 0, 0]);
    }

    /// Work within a year of an inspection started on 31 December at 20:00
    /// in Quebec (1 January in UTC) is planned in that December's year.
    #[test]
    fn plan_lines_fall_in_the_year_of_the_inspection_plus_the_urgency() {
        let tz = calendar::zone("America/Montreal").unwrap();
        let row = |urgency: &str| PlanRow {
            office: "OH A".into(),
            complex: "E".into(),
            inspected_at: 1_798_765_200_000, // 2027-01-01T01:00:00Z
            recommended_at: 1_798_765_200_000,
            work: "Toiture".into(),
            urgency: urgency.into(),
            cost: 10.0,
            doc_id: String::new(),
            rec_id: String::new(),
            planned_year: None,
        };
        let l = plan_line(row("moins_1_an"), &tz, 2026);
        assert_eq!((l.year, l.urgency.as_str()), (2026, "Moins d'un an"));
        assert_eq!(plan_line(row("3_5_ans"), &tz, 2026).year, 2029);
        let unknown = plan_line(row("un_jour"), &tz, 2026);
        assert_eq!((unknown.year, unknown.urgency.as_str()), (2026, "un_jour"));
        // Carried from a BSI of June 2021: "3 à 5 ans" is due in 2024, which
        // has passed by the inspection carrying it: planned in its year.
        let carried = |urgency: &str| PlanRow {
            recommended_at: 1_623_715_200_000, // 2021-06-15
            ..row(urgency)
        };
        assert_eq!(plan_line(carried("3_5_ans"), &tz, 2026).year, 2026);
        assert_eq!(plan_line(carried("plus_5_ans"), &tz, 2026).year, 2027);
        // Looked at in 2030, work due in 2027 is overdue: planned in 2030.
        assert_eq!(plan_line(carried("plus_5_ans"), &tz, 2030).year, 2030);
        // Moved by the CS: the year it chose, marked so.
        let moved = plan_line(
            PlanRow {
                planned_year: Some(2031),
                ..row("moins_1_an")
            },
            &tz,
            2040,
        );
        assert_eq!(
            (moved.year, moved.moved),
            (2031, true),
            "a moved work stays where the CS put it"
        );
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
