//! The cycle's planning: where each complex of the scope stands in the
//! five-year cycle (from its last approved BSI), who visits it and in which
//! month, counted per office and per inspector; and the manager's
//! assignments, one complex or many at once, checked and audited. The
//! devices receive the assignments with the reference data.

use std::collections::BTreeMap;

use bilan_shared::calendar::{self, Date, TimeZone};
use bilan_shared::domain::{Condition, ConditionThresholds, Role};
use bilan_shared::ids::{ComplexId, OfficeId, UserId};
use bilan_shared::planning::{self, Assignment, CycleState, Month};
use bilan_shared::protocol::UserInfo;

use super::access;
use super::core::{Result, Service};
use crate::audit::{AuditAction, AuditEntry};
use crate::error::StoreError;
use crate::storage::ComplexRow;

/// The line of the complexes planned for nobody, among the inspectors.
pub const NOBODY: &str = "Personne (non planifiés)";

/// At most this many complexes in one assignment (a territory's whole list).
pub const MAX_ASSIGNED_AT_ONCE: usize = 5_000;

/// One complex on the planning page.
#[derive(Clone, Debug, PartialEq)]
pub struct PlanningLine {
    pub complex_id: ComplexId,
    pub code: String,
    pub name: String,
    pub office_id: OfficeId,
    pub office: String,
    pub last_approved: Option<i64>,
    /// The building's condition: its last approved BSI's.
    pub condition: Option<Condition>,
    /// When its next BSI is due (none: never approved, due now).
    pub due: Option<Date>,
    pub state: CycleState,
    pub inspector_id: Option<UserId>,
    pub inspector: String,
    pub planned: Option<Month>,
    /// Planned after its cycle ends.
    pub late: bool,
}

/// Counts of one office or one inspector.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Tally {
    pub label: String,
    pub complexes: u32,
    pub overdue: u32,
    pub due: u32,
    pub in_progress: u32,
    pub done: u32,
    pub planned: u32,
}

impl Tally {
    fn count(&mut self, l: &PlanningLine) {
        self.complexes += 1;
        match l.state {
            CycleState::Overdue => self.overdue += 1,
            CycleState::Due => self.due += 1,
            CycleState::InProgress => self.in_progress += 1,
            CycleState::Done => self.done += 1,
            CycleState::UpToDate => {}
        }
        if l.planned.is_some() {
            self.planned += 1;
        }
    }
}

/// Which lines the page lists (the counts are always the scope's).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PlanningFilter {
    pub office: Option<OfficeId>,
    /// `Some(None)`: complexes planned for nobody.
    pub inspector: Option<Option<UserId>>,
    pub state: Option<CycleState>,
}

/// What the planning page shows.
#[derive(Clone, Debug)]
pub struct PlanningView {
    /// The year "due" and "done" count in (the territory's current year).
    pub year: i64,
    pub lines: Vec<PlanningLine>,
    pub by_office: Vec<Tally>,
    pub by_inspector: Vec<Tally>,
    /// Who may be assigned: the territory's inspectors and managers.
    pub inspectors: Vec<(UserId, String)>,
    pub offices: Vec<(OfficeId, String)>,
    pub tz: TimeZone,
}

/// Each complex's line at `now_ms` in the territory's zone, its condition
/// graded with `thresholds`.
pub fn planning_lines(
    rows: &[ComplexRow],
    thresholds: &ConditionThresholds,
    now_ms: i64,
    tz: &TimeZone,
) -> Vec<PlanningLine> {
    rows.iter()
        .map(|r| {
            let last_approved = r.approved.as_ref().map(|a| a.created_at);
            let due = planning::due_date(last_approved, tz);
            let a = r.assignment.as_ref();
            let planned = a.and_then(|a| a.planned);
            PlanningLine {
                complex_id: r.complex_id,
                code: r.code.clone(),
                name: r.name.clone(),
                office_id: r.office_id,
                office: r.office.clone(),
                last_approved,
                condition: r.approved.as_ref().map(|a| {
                    thresholds.condition_for(crate::reports::ivp(a.cost_5y, r.replacement_value))
                }),
                due,
                state: planning::cycle_state(
                    last_approved,
                    r.latest.as_ref().map(|l| (l.created_at, l.status)),
                    now_ms,
                    tz,
                ),
                inspector_id: a.and_then(|a| a.inspector_id),
                inspector: a.map(|a| a.inspector_name.clone()).unwrap_or_default(),
                planned,
                late: planned.is_some_and(|m| planning::planned_late(m, due)),
            }
        })
        .collect()
}

/// Counts per office (in the rows' order) and per inspector (by name; the
/// complexes planned for nobody last, labelled so).
pub fn tallies(lines: &[PlanningLine]) -> (Vec<Tally>, Vec<Tally>) {
    let mut offices: Vec<Tally> = Vec::new();
    let mut inspectors: BTreeMap<(bool, String), Tally> = BTreeMap::new();
    for l in lines {
        if offices.last().is_none_or(|t| t.label != l.office) {
            offices.push(Tally {
                label: l.office.clone(),
                ..Tally::default()
            });
        }
        if let Some(t) = offices.last_mut() {
            t.count(l);
        }
        let key = match l.inspector_id {
            Some(_) => (false, l.inspector.clone()),
            None => (true, NOBODY.to_string()),
        };
        let t = inspectors.entry(key.clone()).or_insert_with(|| Tally {
            label: key.1.clone(),
            ..Tally::default()
        });
        t.count(l);
    }
    (offices, inspectors.into_values().collect())
}

impl Service {
    /// The planning of the user's scope (an office reader: their office).
    pub fn planning(&self, user: &UserInfo, filter: &PlanningFilter) -> Result<PlanningView> {
        let scope = access::scope_of(user)?;
        let settings = self.store.settings(scope.territory)?;
        let tz = settings.zone();
        let now = bilan_shared::doc::now_ms();
        let rows = self.store.complex_rows(&scope)?;
        let all = planning_lines(&rows, &settings.thresholds, now, &tz);
        let (by_office, by_inspector) = tallies(&all);
        let mut offices: Vec<(OfficeId, String)> = Vec::new();
        for l in &all {
            if offices.last().is_none_or(|o| o.0 != l.office_id) {
                offices.push((l.office_id, l.office.clone()));
            }
        }
        let lines = all
            .into_iter()
            .filter(|l| filter.office.is_none_or(|o| o == l.office_id))
            .filter(|l| filter.inspector.is_none_or(|i| i == l.inspector_id))
            .filter(|l| filter.state.is_none_or(|s| s == l.state))
            .collect();
        Ok(PlanningView {
            year: calendar::year(now, &tz),
            lines,
            by_office,
            by_inspector,
            inspectors: self.assignable(scope.territory)?,
            offices,
            tz,
        })
    }

    /// Who may be assigned visits: the territory's inspectors and managers.
    fn assignable(
        &self,
        territory: bilan_shared::ids::TerritoryId,
    ) -> Result<Vec<(UserId, String)>> {
        Ok(self
            .store
            .territory_users(territory)?
            .into_iter()
            .filter(|u| matches!(u.role, Role::Inspector | Role::Manager))
            .map(|u| (u.id, u.display_name))
            .collect())
    }

    /// Plans `complexes` for `inspector` in `planned` (the manager); no
    /// inspector withdraws them from the plan. Every complex must be of the
    /// territory (another's is not found) and the inspector one of its
    /// inspectors: otherwise nothing changes. Returns how many were set.
    pub fn plan_visits(
        &self,
        user: &UserInfo,
        complexes: &[ComplexId],
        inspector: Option<UserId>,
        planned: Option<Month>,
    ) -> Result<usize> {
        access::require_manager(user)?;
        let territory = access::territory_of(user)?;
        if complexes.is_empty() {
            return Err(StoreError::BadRequest(
                "aucun ensemble choisi : cochez les ensembles à planifier".into(),
            ));
        }
        if complexes.len() > MAX_ASSIGNED_AT_ONCE {
            return Err(StoreError::BadRequest(format!(
                "au plus {MAX_ASSIGNED_AT_ONCE} ensembles à la fois"
            )));
        }
        if inspector.is_none() && planned.is_some() {
            return Err(StoreError::BadRequest(
                "un mois sans inspecteur : choisissez un inspecteur, ou retirez la visite sans mois"
                    .into(),
            ));
        }
        let name = match inspector {
            Some(id) => Some(
                self.assignable(territory)?
                    .into_iter()
                    .find(|(u, _)| *u == id)
                    .map(|(_, n)| n)
                    .ok_or_else(|| {
                        StoreError::BadRequest(
                            "cet inspecteur n'est pas un inspecteur du territoire".into(),
                        )
                    })?,
            ),
            None => None,
        };
        let known: std::collections::HashSet<ComplexId> = self
            .store
            .reference(
                &crate::storage::Scope {
                    territory,
                    office: None,
                },
                0,
            )?
            .complexes
            .into_iter()
            .map(|c| c.id)
            .collect();
        if let Some(c) = complexes.iter().find(|c| !known.contains(c)) {
            return Err(StoreError::NotFound(format!("ensemble immobilier {c}")));
        }
        let at = bilan_shared::doc::now_ms();
        let rows: Vec<Assignment> = complexes
            .iter()
            .map(|c| Assignment {
                complex_id: *c,
                inspector_id: inspector,
                inspector_name: name.clone().unwrap_or_default(),
                planned,
                at,
            })
            .collect();
        let detail = match (&name, planned) {
            (Some(n), Some(m)) => format!("{} ensemble(s) à {n}, {}", rows.len(), m.label_fr()),
            (Some(n), None) => format!("{} ensemble(s) à {n}, mois à fixer", rows.len()),
            (None, _) => format!("{} ensemble(s) retirés du plan", rows.len()),
        };
        let target = match complexes {
            [one] => one.to_string(),
            _ => format!("{} ensembles", complexes.len()),
        };
        let audit = AuditEntry::by(user, AuditAction::PlanVisits, target).with_detail(detail);
        self.store.set_assignments(territory, &rows, &audit)?;
        Ok(rows.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::LatestInspection;
    use bilan_shared::domain::InspectionStatus;

    fn row(
        office: &str,
        code: &str,
        approved: Option<i64>,
        latest: Option<(i64, InspectionStatus)>,
    ) -> ComplexRow {
        ComplexRow {
            complex_id: ComplexId::new(),
            code: code.into(),
            name: format!("Ensemble {code}"),
            office_id: OfficeId::new(),
            office: office.into(),
            replacement_value: 1_000_000.0,
            latest: latest.map(|(created_at, status)| LatestInspection {
                created_at,
                status,
                cost_5y: 0.0,
            }),
            approved: approved.map(|created_at| LatestInspection {
                created_at,
                status: InspectionStatus::Approved,
                cost_5y: 0.0,
            }),
            assignment: None,
        }
    }

    /// Noon of a day in the territory.
    fn at(y: i16, mo: i8, d: i8, tz: &TimeZone) -> i64 {
        let day = calendar::parse_date(&format!("{y:04}-{mo:02}-{d:02}")).unwrap();
        calendar::day_start_ms(day, tz) + 12 * 3_600_000
    }

    #[test]
    fn each_office_and_inspector_counts_its_overdue_due_in_progress_done_and_planned_complexes() {
        let tz = calendar::default_zone();
        let now = at(2026, 6, 1, &tz);
        let mut rows = vec![
            row("A", "1", None, None),
            row("A", "2", Some(at(2021, 9, 1, &tz)), None),
            row(
                "A",
                "3",
                Some(at(2026, 2, 1, &tz)),
                Some((at(2026, 2, 1, &tz), InspectionStatus::Approved)),
            ),
            row(
                "B",
                "4",
                Some(at(2020, 1, 1, &tz)),
                Some((at(2026, 5, 1, &tz), InspectionStatus::Submitted)),
            ),
            row("B", "5", Some(at(2024, 1, 1, &tz)), None),
        ];
        let marie = UserId::new();
        rows[1].assignment = Some(Assignment {
            complex_id: rows[1].complex_id,
            inspector_id: Some(marie),
            inspector_name: "Marie".into(),
            planned: Some(Month::parse("2027-01").unwrap()),
            at: now,
        });
        let lines = planning_lines(&rows, &ConditionThresholds::default(), now, &tz);
        let states: Vec<CycleState> = lines.iter().map(|l| l.state).collect();
        assert_eq!(
            states,
            [
                CycleState::Overdue,
                CycleState::Due,
                CycleState::Done,
                CycleState::InProgress,
                CycleState::UpToDate
            ]
        );
        // Due on 2026-09-01, planned in January 2027: late.
        assert!(lines[1].late);
        // Graded from the last approved BSI only (cost 0: A); none without one.
        assert_eq!(lines[1].condition, Some(Condition::A));
        assert_eq!(lines[0].condition, None);
        let (offices, inspectors) = tallies(&lines);
        assert_eq!(offices.len(), 2);
        let a = &offices[0];
        assert_eq!(
            (a.complexes, a.overdue, a.due, a.done, a.planned),
            (3, 1, 1, 1, 1)
        );
        let b = &offices[1];
        assert_eq!((b.complexes, b.in_progress, b.overdue), (2, 1, 0));
        assert_eq!(inspectors[0].label, "Marie");
        assert_eq!((inspectors[0].complexes, inspectors[0].due), (1, 1));
        assert_eq!(inspectors[1].label, NOBODY);
        assert_eq!(inspectors[1].complexes, 4);
    }
}
