//! The review pages' queries, on the projection tables (never on automerge
//! documents), always filtered on the scope the service layer decided: the
//! [`ReportStore`] implementation. The figures made from these rows are
//! computed in [`crate::reports`].

use bilan_shared::domain::{ConditionThresholds, InspectionStatus};
use rusqlite::{params, params_from_iter, types::Value};

use super::core::{Result, parse_id};
use super::store::SqliteStore;
use crate::sql::Arg;
use crate::storage::{
    ComplexHistory, ComplexRow, DoneWork, FilterOptions, HistoryRow, InspectionQuery,
    InspectionRow, LatestInspection, PlanRow, ReportStore, Scope, VisitTotals,
};
use bilan_shared::ids::{ComplexId, TerritoryId};
use bilan_shared::planning::Assignment;

impl ReportStore for SqliteStore {
    fn complex_rows(&self, scope: &Scope) -> Result<Vec<ComplexRow>> {
        self.settle();
        let conn = self.reader()?;
        let (territory, office) = scope.as_text();
        let mut stmt = conn.prepare_cached(&crate::sql::complex_rows("?1", "?2"))?;
        let rows = stmt
            .query_map(params![territory, office], |r| {
                let latest = |at: usize, status: Option<String>, cost: usize| {
                    Ok::<_, rusqlite::Error>(match (r.get::<_, Option<i64>>(at)?, status) {
                        (Some(created_at), Some(status)) => Some(LatestInspection {
                            created_at,
                            status: InspectionStatus::from_code(&status)
                                .unwrap_or(InspectionStatus::InProgress),
                            cost_5y: r.get(cost)?,
                        }),
                        _ => None,
                    })
                };
                Ok(ComplexRow {
                    office_id: parse_id(r.get(0)?)?,
                    office: r.get(1)?,
                    replacement_value: r.get(2)?,
                    latest: latest(3, r.get(4)?, 5)?,
                    approved: latest(6, Some(InspectionStatus::Approved.code().into()), 7)?,
                    complex_id: parse_id(r.get(8)?)?,
                    code: r.get(9)?,
                    name: r.get(10)?,
                    assignment: match r.get::<_, Option<String>>(11)? {
                        Some(inspector) => Some(Assignment {
                            complex_id: parse_id(r.get(8)?)?,
                            inspector_id: Some(parse_id(inspector)?),
                            inspector_name: r.get::<_, Option<String>>(12)?.unwrap_or_default(),
                            planned: r.get::<_, Option<String>>(13)?.map(parse_id).transpose()?,
                            at: r.get(14)?,
                        }),
                        None => None,
                    },
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    fn search(
        &self,
        scope: &Scope,
        q: &InspectionQuery,
        thresholds: &ConditionThresholds,
    ) -> Result<(Vec<InspectionRow>, u32)> {
        self.settle();
        let conn = self.reader()?;
        let q = crate::sql::search(scope, q, thresholds, |n, _| format!("?{n}"));
        let args: Vec<Value> = q
            .args
            .into_iter()
            .map(|a| match a {
                Arg::Text(t) => Value::Text(t),
                Arg::Int(i) => Value::Integer(i),
            })
            .collect();
        let total: u32 = conn.query_row(&q.count, params_from_iter(args.iter()), |r| r.get(0))?;
        let sql = q.page;
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt
            .query_map(params_from_iter(args.iter()), |r| {
                let status: String = r.get(4)?;
                let cost_5y: f64 = r.get(10)?;
                let ivp = crate::reports::ivp(cost_5y, r.get(11)?);
                Ok(InspectionRow {
                    id: r.get(0)?,
                    complex: r.get(1)?,
                    address: r.get(2)?,
                    office: r.get(3)?,
                    status: InspectionStatus::from_code(&status)
                        .unwrap_or(InspectionStatus::InProgress),
                    inspector: r.get(5)?,
                    created_at: r.get(6)?,
                    rated: r.get(7)?,
                    present: r.get(8)?,
                    findings: r.get(9)?,
                    cost_5y,
                    ivp,
                    condition: thresholds.condition_for(ivp).code(),
                    conflicts: r.get(12)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok((rows, total))
    }

    fn filter_options(&self, scope: &Scope) -> Result<FilterOptions> {
        self.settle();
        let conn = self.reader()?;
        let (territory, office) = scope.as_text();
        let offices = conn
            .prepare_cached(
                "SELECT id, name FROM offices WHERE territory_id = ?1 AND (?2 IS NULL OR id = ?2) ORDER BY name",
            )?
            .query_map(params![territory, office], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        let inspectors = conn
            .prepare_cached(
                "SELECT id, display_name FROM users WHERE territory_id = ?1 AND role IN ('inspecteur', 'responsable') ORDER BY display_name",
            )?
            .query_map([territory], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        Ok((offices, inspectors))
    }

    fn plan_rows(&self, scope: &Scope, complex: Option<ComplexId>) -> Result<Vec<PlanRow>> {
        self.settle();
        let conn = self.reader()?;
        let (territory, office) = scope.as_text();
        let complex = complex.map(|c| c.to_string());
        let mut stmt = conn.prepare_cached(&crate::sql::plan_rows("?1", "?2", "?3"))?;
        let rows = stmt
            .query_map(params![territory, office, complex], |r| {
                Ok(PlanRow {
                    office: r.get(0)?,
                    complex: r.get(1)?,
                    inspected_at: r.get(2)?,
                    recommended_at: r.get(3)?,
                    work: r.get(4)?,
                    urgency: r.get(5)?,
                    cost: r.get(6)?,
                    doc_id: r.get(7)?,
                    rec_id: r.get(8)?,
                    planned_year: r.get(9)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    fn complex_history(
        &self,
        territory: TerritoryId,
        complex: ComplexId,
    ) -> Result<ComplexHistory> {
        self.settle();
        let conn = self.reader()?;
        let args = params![territory.to_string(), complex.to_string()];
        let inspections = conn
            .prepare_cached(&crate::sql::complex_history("?1", "?2"))?
            .query_map(args, |r| {
                Ok(HistoryRow {
                    doc_id: r.get(0)?,
                    created_at: r.get(1)?,
                    status: r.get(2)?,
                    inspector: r.get(3)?,
                    findings: r.get(4)?,
                    total_cost: r.get(5)?,
                    cost_5y: r.get(6)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let done = conn
            .prepare_cached(&crate::sql::done_works("?1", "?2"))?
            .query_map(args, |r| {
                Ok(DoneWork {
                    work: r.get(0)?,
                    year: r.get(1)?,
                    cost: r.get(2)?,
                    reported_at: r.get(3)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(ComplexHistory { inspections, done })
    }

    fn visit_totals(&self, scope: &Scope, from: &str, to: &str) -> Result<Vec<VisitTotals>> {
        self.settle();
        let conn = self.reader()?;
        let (territory, office) = scope.as_text();
        let mut stmt = conn.prepare_cached(
            "SELECT o.name, COUNT(*), SUM(v.hours_on_site), SUM(v.travel_hours), SUM(v.km), SUM(v.expenses)
             FROM site_visits v JOIN inspection_summary s ON s.doc_id = v.doc_id JOIN offices o ON o.id = s.office_id
             WHERE v.territory_id = ?1 AND (?2 IS NULL OR s.office_id = ?2) AND v.date >= ?3 AND v.date <= ?4
             GROUP BY o.id ORDER BY o.name",
        )?;
        let rows = stmt
            .query_map(params![territory, office, from, to], |r| {
                Ok(VisitTotals {
                    office: r.get(0)?,
                    visits: r.get(1)?,
                    hours: r.get(2)?,
                    travel_hours: r.get(3)?,
                    km: r.get(4)?,
                    expenses: r.get(5)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }
}
