//! The review pages' queries, on the projection tables (never on automerge
//! documents), always filtered on the scope the service layer decided: the
//! [`ReportStore`] implementation. The figures made from these rows are
//! computed in [`crate::reports`].

use bilan_shared::domain::{ConditionThresholds, InspectionStatus};
use rusqlite::{params, params_from_iter, types::Value};

use super::core::{Result, parse_id};
use super::store::SqliteStore;
use crate::sql::{IVP_SQL, condition_sql};
use crate::storage::{
    ComplexRow, FilterOptions, InspectionQuery, InspectionRow, LatestInspection, PAGE_SIZE,
    PlanRow, ReportStore, Scope, SortKey, VisitTotals,
};

fn scope_args(scope: &Scope) -> (String, Option<String>) {
    (
        scope.territory.to_string(),
        scope.office.map(|o| o.to_string()),
    )
}

impl ReportStore for SqliteStore {
    fn complex_rows(&self, scope: &Scope) -> Result<Vec<ComplexRow>> {
        self.settle();
        let conn = self.reader()?;
        let (territory, office) = scope_args(scope);
        let mut stmt = conn.prepare_cached(
            "WITH latest AS (
               SELECT s.*, ROW_NUMBER() OVER (PARTITION BY s.complex_id ORDER BY s.created_at DESC) AS rn
               FROM inspection_summary s WHERE s.territory_id = ?1)
             SELECT o.id, o.name, c.replacement_value, l.created_at, l.status, l.cost_5y
             FROM complexes c JOIN offices o ON o.id = c.office_id
             LEFT JOIN latest l ON l.complex_id = c.id AND l.rn = 1
             WHERE c.territory_id = ?1 AND (?2 IS NULL OR c.office_id = ?2)
             ORDER BY o.name, o.id",
        )?;
        let rows = stmt
            .query_map(params![territory, office], |r| {
                let created_at: Option<i64> = r.get(3)?;
                let status: Option<String> = r.get(4)?;
                Ok(ComplexRow {
                    office_id: parse_id(r.get(0)?)?,
                    office: r.get(1)?,
                    replacement_value: r.get(2)?,
                    latest: match (created_at, status) {
                        (Some(created_at), Some(status)) => Some(LatestInspection {
                            created_at,
                            status: InspectionStatus::from_code(&status)
                                .unwrap_or(InspectionStatus::InProgress),
                            cost_5y: r.get(5)?,
                        }),
                        _ => None,
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
        let (territory, office) = scope_args(scope);
        let cond = condition_sql(IVP_SQL, thresholds);
        let mut wh = vec!["s.territory_id = ?".to_string()];
        let mut args: Vec<Value> = vec![Value::Text(territory)];
        let mut add = |clause: &str, v: Value| {
            wh.push(clause.to_string());
            args.push(v);
        };
        if let Some(o) = office {
            add("s.office_id = ?", Value::Text(o));
        }
        if let Some(o) = q.office {
            add("s.office_id = ?", Value::Text(o.to_string()));
        }
        if let Some(s) = q.status {
            add("s.status = ?", Value::Text(s.code().to_string()));
        }
        if let Some(c) = q.condition {
            add(&format!("({cond}) = ?"), Value::Text(c.to_string()));
        }
        if q.conflicts_only {
            add("s.conflicts > ?", Value::Integer(0));
        }
        if let Some(i) = q.inspector {
            add("s.created_by = ?", Value::Text(i.to_string()));
        }
        if let Some(ms) = q.from_ms {
            add("s.created_at >= ?", Value::Integer(ms));
        }
        if let Some(ms) = q.before_ms {
            add("s.created_at < ?", Value::Integer(ms));
        }
        let order = match q.sort {
            SortKey::Complex => "c.name",
            SortKey::Office => "o.name",
            SortKey::Status => "s.status",
            SortKey::Cost => "s.cost_5y",
            SortKey::Conflicts => "s.conflicts",
            SortKey::Date => "s.created_at",
        };
        let from = "FROM inspection_summary s JOIN complexes c ON c.id = s.complex_id JOIN offices o ON o.id = s.office_id
                    LEFT JOIN users u ON u.id = s.created_by";
        let where_sql = wh.join(" AND ");
        let total: u32 = conn.query_row(
            &format!("SELECT COUNT(*) {from} WHERE {where_sql}"),
            params_from_iter(args.iter()),
            |r| r.get(0),
        )?;
        let page = q.page.max(1);
        let sql = format!(
            "SELECT s.doc_id, c.name, c.address || ', ' || c.city, o.name, s.status, COALESCE(u.display_name, ''), s.created_at,
                    s.rated, s.present, s.findings, s.cost_5y, c.replacement_value, s.conflicts
             {from} WHERE {where_sql} ORDER BY {order} {}, s.doc_id LIMIT {PAGE_SIZE} OFFSET {}",
            if q.descending { "DESC" } else { "ASC" },
            (page - 1) * PAGE_SIZE
        );
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
        let (territory, office) = scope_args(scope);
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

    fn plan_rows(&self, scope: &Scope) -> Result<Vec<PlanRow>> {
        self.settle();
        let conn = self.reader()?;
        let (territory, office) = scope_args(scope);
        let mut stmt = conn.prepare_cached(
            "WITH latest AS (
               SELECT s.doc_id, s.created_at, ROW_NUMBER() OVER (PARTITION BY s.complex_id ORDER BY s.created_at DESC) AS rn
               FROM inspection_summary s WHERE s.territory_id = ?1 AND (?2 IS NULL OR s.office_id = ?2))
             SELECT o.name, c.name, l.created_at, r.work, r.urgency, r.cost
             FROM latest l JOIN inspection_summary s ON s.doc_id = l.doc_id
             JOIN recommendations r ON r.doc_id = l.doc_id
             JOIN complexes c ON c.id = s.complex_id JOIN offices o ON o.id = s.office_id
             WHERE l.rn = 1 ORDER BY o.name, c.name",
        )?;
        let rows = stmt
            .query_map(params![territory, office], |r| {
                Ok(PlanRow {
                    office: r.get(0)?,
                    complex: r.get(1)?,
                    inspected_at: r.get(2)?,
                    work: r.get(3)?,
                    urgency: r.get(4)?,
                    cost: r.get(5)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    fn visit_totals(&self, scope: &Scope, from: &str, to: &str) -> Result<Vec<VisitTotals>> {
        self.settle();
        let conn = self.reader()?;
        let (territory, office) = scope_args(scope);
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
