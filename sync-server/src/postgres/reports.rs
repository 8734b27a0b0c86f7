//! The review pages' queries on PostgreSQL, on the projection tables,
//! filtered on the scope the service layer decided: the [`ReportStore`]
//! implementation (the same statements as the SQLite backend's).

use bilan_shared::domain::{ConditionThresholds, InspectionStatus};
use tokio_postgres::types::ToSql;

use super::core::{Result, id};
use super::store::PgStore;
use crate::sql::Arg;
use crate::storage::{
    ComplexHistory, ComplexRow, DoneWork, FilterOptions, HistoryRow, InspectionQuery,
    InspectionRow, LatestInspection, PlanRow, ReportStore, Scope, VisitTotals,
};
use bilan_shared::ids::{ComplexId, TerritoryId};
use bilan_shared::planning::Assignment;

impl ReportStore for PgStore {
    fn complex_rows(&self, scope: &Scope) -> Result<Vec<ComplexRow>> {
        self.settle()?;
        let (territory, office) = scope.as_text();
        self.run(async {
            self.client()
                .await?
                .query(
                    &crate::sql::complex_rows("$1", "$2::TEXT"),
                    &[&territory, &office],
                )
                .await?
                .iter()
                .map(|r| {
                    let latest = |at: usize, status: Option<String>, cost: usize| {
                        Some(LatestInspection {
                            created_at: r.get::<_, Option<i64>>(at)?,
                            status: InspectionStatus::from_code(&status?)
                                .unwrap_or(InspectionStatus::InProgress),
                            cost_5y: r.get(cost),
                        })
                    };
                    Ok(ComplexRow {
                        office_id: id(r.get(0))?,
                        office: r.get(1),
                        replacement_value: r.get(2),
                        latest: latest(3, r.get(4), 5),
                        approved: latest(6, Some(InspectionStatus::Approved.code().into()), 7),
                        complex_id: id(r.get(8))?,
                        code: r.get(9),
                        name: r.get(10),
                        assignment: match r.get::<_, Option<String>>(11) {
                            Some(inspector) => Some(Assignment {
                                complex_id: id(r.get(8))?,
                                inspector_id: Some(id(inspector)?),
                                inspector_name: r.get::<_, Option<String>>(12).unwrap_or_default(),
                                planned: r.get::<_, Option<String>>(13).map(id).transpose()?,
                                at: r.get(14),
                            }),
                            None => None,
                        },
                    })
                })
                .collect()
        })
    }

    fn search(
        &self,
        scope: &Scope,
        q: &InspectionQuery,
        thresholds: &ConditionThresholds,
    ) -> Result<(Vec<InspectionRow>, u32)> {
        self.settle()?;
        let q = crate::sql::search(scope, q, thresholds, |n, a| match a {
            Arg::Text(_) => format!("${n}"),
            Arg::Int(_) => format!("${n}::BIGINT"),
        });
        let args: Vec<Box<dyn ToSql + Sync + Send>> = q
            .args
            .into_iter()
            .map(|a| -> Box<dyn ToSql + Sync + Send> {
                match a {
                    Arg::Text(t) => Box::new(t),
                    Arg::Int(i) => Box::new(i),
                }
            })
            .collect();
        let (count, sql) = (q.count, q.page);
        self.run(async {
            let client = self.client().await?;
            let params: Vec<&(dyn ToSql + Sync)> = args
                .iter()
                .map(|a| a.as_ref() as &(dyn ToSql + Sync))
                .collect();
            let total: i64 = client.query_one(&count, &params).await?.get(0);
            let rows = client
                .query(&sql, &params)
                .await?
                .iter()
                .map(|r| {
                    let status: String = r.get(4);
                    let cost_5y: f64 = r.get(10);
                    let ivp = crate::reports::ivp(cost_5y, r.get(11));
                    Ok(InspectionRow {
                        id: r.get(0),
                        complex: r.get(1),
                        address: r.get(2),
                        office: r.get(3),
                        status: InspectionStatus::from_code(&status)
                            .unwrap_or(InspectionStatus::InProgress),
                        inspector: r.get(5),
                        created_at: r.get(6),
                        rated: r.get::<_, i32>(7) as u32,
                        present: r.get::<_, i32>(8) as u32,
                        findings: r.get::<_, i32>(9) as u32,
                        cost_5y,
                        ivp,
                        condition: thresholds.condition_for(ivp).code(),
                        conflicts: r.get::<_, i32>(12) as u32,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            Ok((rows, total as u32))
        })
    }

    fn filter_options(&self, scope: &Scope) -> Result<FilterOptions> {
        self.settle()?;
        let (territory, office) = scope.as_text();
        self.run(async {
            let client = self.client().await?;
            let offices = client
                .query(
                    "SELECT id, name FROM offices WHERE territory_id = $1 AND ($2::TEXT IS NULL OR id = $2) ORDER BY name",
                    &[&territory, &office],
                )
                .await?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect();
            let inspectors = client
                .query(
                    "SELECT id, display_name FROM users WHERE territory_id = $1
                       AND role IN ('inspecteur', 'responsable') ORDER BY display_name",
                    &[&territory],
                )
                .await?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect();
            Ok((offices, inspectors))
        })
    }

    fn plan_rows(&self, scope: &Scope, complex: Option<ComplexId>) -> Result<Vec<PlanRow>> {
        self.settle()?;
        let (territory, office) = scope.as_text();
        let complex = complex.map(|c| c.to_string());
        self.run(async {
            Ok(self
                .client()
                .await?
                .query(
                    &crate::sql::plan_rows("$1", "$2::TEXT", "$3::TEXT"),
                    &[&territory, &office, &complex],
                )
                .await?
                .iter()
                .map(|r| PlanRow {
                    office: r.get(0),
                    complex: r.get(1),
                    inspected_at: r.get(2),
                    recommended_at: r.get(3),
                    work: r.get(4),
                    urgency: r.get(5),
                    cost: r.get(6),
                    doc_id: r.get(7),
                    rec_id: r.get(8),
                    planned_year: r.get(9),
                })
                .collect())
        })
    }

    fn complex_history(
        &self,
        territory: TerritoryId,
        complex: ComplexId,
    ) -> Result<ComplexHistory> {
        self.settle()?;
        let (t, c) = (territory.to_string(), complex.to_string());
        self.run(async {
            let client = self.client().await?;
            let inspections = client
                .query(&crate::sql::complex_history("$1", "$2"), &[&t, &c])
                .await?
                .iter()
                .map(|r| HistoryRow {
                    doc_id: r.get(0),
                    created_at: r.get(1),
                    status: r.get(2),
                    inspector: r.get(3),
                    findings: r.get::<_, i32>(4) as u32,
                    total_cost: r.get(5),
                    cost_5y: r.get(6),
                })
                .collect();
            let done = client
                .query(&crate::sql::done_works("$1", "$2"), &[&t, &c])
                .await?
                .iter()
                .map(|r| DoneWork {
                    work: r.get(0),
                    year: r.get(1),
                    cost: r.get(2),
                    reported_at: r.get(3),
                })
                .collect();
            Ok(ComplexHistory { inspections, done })
        })
    }

    fn visit_totals(&self, scope: &Scope, from: &str, to: &str) -> Result<Vec<VisitTotals>> {
        self.settle()?;
        let (territory, office) = scope.as_text();
        self.run(async {
            Ok(self
                .client()
                .await?
                .query(
                    "SELECT o.name, COUNT(*), SUM(v.hours_on_site), SUM(v.travel_hours), SUM(v.km), SUM(v.expenses)
                     FROM site_visits v JOIN inspection_summary s ON s.doc_id = v.doc_id
                     JOIN offices o ON o.id = s.office_id
                     WHERE v.territory_id = $1 AND ($2::TEXT IS NULL OR s.office_id = $2)
                       AND v.date >= $3 AND v.date <= $4
                     GROUP BY o.id, o.name ORDER BY o.name",
                    &[&territory, &office, &from, &to],
                )
                .await?
                .iter()
                .map(|r| VisitTotals {
                    office: r.get(0),
                    visits: r.get::<_, i64>(1) as u32,
                    hours: r.get(2),
                    travel_hours: r.get(3),
                    km: r.get(4),
                    expenses: r.get(5),
                })
                .collect())
        })
    }
}
