//! Read queries of the CS review pages, on the projection tables (never on
//! automerge documents), always scoped to the caller's territory and, for
//! office readers, to their office.

use bilan_shared::calendar;
use bilan_shared::domain::{ConditionThresholds, InspectionStatus, Role};
use bilan_shared::protocol::UserInfo;
use rusqlite::{params_from_iter, types::Value};

use crate::StoreError;

/// One served office on the territory overview.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct OfficeOverview {
    pub office_id: String,
    pub office: String,
    pub complexes: u32,
    pub inspected: u32,
    pub approved: u32,
    pub overdue: u32,
    /// Complexes by building condition A..E (from their latest inspection's IVP).
    pub conditions: [u32; 5],
}

/// Filters of the inspections page (all optional).
#[derive(Clone, Debug, Default, serde::Deserialize)]
pub struct InspectionFilter {
    pub office: Option<String>,
    pub status: Option<String>,
    pub condition: Option<String>,
    pub conflicts: Option<String>,
    pub inspector: Option<String>,
    /// `YYYY-MM-DD`, on the inspection's start.
    pub from: Option<String>,
    pub to: Option<String>,
    /// `date`, `complex`, `office`, `status`, `cost`, `conflicts`; `-` prefix for descending.
    pub sort: Option<String>,
    pub page: Option<u32>,
}

/// Sort keys of the inspections page.
const SORT_KEYS: [&str; 6] = ["date", "complex", "office", "status", "cost", "conflicts"];

/// An ISO date (`AAAA-MM-JJ`) of a filter or a form; a clear error for
/// anything else.
pub fn parse_day(d: &str) -> Result<calendar::Date, StoreError> {
    calendar::parse_date(d).ok_or_else(|| {
        StoreError::BadRequest(format!("date invalide « {d} » : attendu AAAA-MM-JJ"))
    })
}

impl InspectionFilter {
    /// Refuses a value outside each filter's vocabulary, so a typo or a
    /// forged query gets a 400 saying what is expected instead of an empty page.
    pub fn check(&self) -> Result<(), StoreError> {
        let bad = |what: &str, v: &str| {
            Err(StoreError::BadRequest(format!(
                "filtre {what} invalide : « {v} »"
            )))
        };
        fn set(o: &Option<String>) -> Option<&str> {
            o.as_deref().map(str::trim).filter(|s| !s.is_empty())
        }
        for (what, v) in [("organisme", &self.office), ("inspecteur", &self.inspector)] {
            if let Some(v) = set(v)
                && uuid::Uuid::parse_str(v).is_err()
            {
                return bad(what, v);
            }
        }
        if let Some(v) = set(&self.status)
            && InspectionStatus::from_code(v).is_none()
        {
            return bad("statut", v);
        }
        if let Some(v) = set(&self.condition)
            && !["A", "B", "C", "D", "E"].contains(&v)
        {
            return bad("état", v);
        }
        if let Some(v) = set(&self.conflicts)
            && v != "oui"
        {
            return bad("conflits", v);
        }
        for d in [set(&self.from), set(&self.to)].into_iter().flatten() {
            parse_day(d)?;
        }
        if let Some(v) = set(&self.sort)
            && !SORT_KEYS.contains(&v.strip_prefix('-').unwrap_or(v))
        {
            return bad("tri", v);
        }
        Ok(())
    }
}

/// One row of the inspections page.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct InspectionRow {
    pub id: String,
    pub complex: String,
    pub address: String,
    pub office: String,
    pub status: InspectionStatus,
    pub inspector: String,
    pub created_at: i64,
    pub rated: u32,
    pub present: u32,
    pub findings: u32,
    pub cost_5y: f64,
    pub ivp: f64,
    pub condition: &'static str,
    pub conflicts: u32,
}

/// (id, name) of the offices and of the inspectors a user may filter on.
pub type FilterOptions = (Vec<(String, String)>, Vec<(String, String)>);

/// Rows per page.
pub const PAGE_SIZE: u32 = 50;

fn scope(user: &UserInfo) -> Result<(String, Option<String>), StoreError> {
    let t = user.territory_id.ok_or_else(|| {
        StoreError::Forbidden("ce compte n'est rattaché à aucun territoire".into())
    })?;
    let office = match user.role {
        Role::OfficeReader => Some(
            user.office_id
                .map(|o| o.to_string())
                .unwrap_or_else(|| "-".into()),
        ),
        _ => None,
    };
    Ok((t.to_string(), office))
}

/// SQL for the condition band of an IVP expression, from the thresholds.
fn condition_sql(ivp: &str, t: &ConditionThresholds) -> String {
    let b = t.upper_bounds;
    format!(
        "CASE WHEN {ivp} <= {} THEN 'A' WHEN {ivp} <= {} THEN 'B' WHEN {ivp} <= {} THEN 'C' WHEN {ivp} <= {} THEN 'D' ELSE 'E' END",
        b[0], b[1], b[2], b[3]
    )
}

/// Per-office progress and condition distribution.
pub fn overview(
    conn: &rusqlite::Connection,
    user: &UserInfo,
    settings: &CsSettings,
    now_ms: i64,
) -> Result<Vec<OfficeOverview>, StoreError> {
    let (territory, office) = scope(user)?;
    let cond = condition_sql(
        "CAST(l.cost_5y AS REAL) / c.replacement_value",
        &settings.thresholds,
    );
    let sql = format!(
        "WITH latest AS (
           SELECT s.*, ROW_NUMBER() OVER (PARTITION BY s.complex_id ORDER BY s.created_at DESC) AS rn
           FROM inspection_summary s WHERE s.territory_id = ?1)
         SELECT o.id, o.name, c.id,
                COALESCE(l.doc_id IS NOT NULL AND l.created_at >= ?2, 0),
                COALESCE(l.status = 'approuvee' AND l.created_at >= ?2, 0),
                CASE WHEN l.doc_id IS NULL THEN NULL ELSE {cond} END
         FROM complexes c JOIN offices o ON o.id = c.office_id
         LEFT JOIN latest l ON l.complex_id = c.id AND l.rn = 1
         WHERE c.territory_id = ?1 AND (?3 IS NULL OR c.office_id = ?3)
         ORDER BY o.name"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(rusqlite::params![
        territory,
        calendar::cycle_cutoff_ms(now_ms, &settings.zone()),
        office
    ])?;
    let mut out: Vec<OfficeOverview> = Vec::new();
    while let Some(r) = rows.next()? {
        let id: String = r.get(0)?;
        if out.last().map(|o| o.office_id != id).unwrap_or(true) {
            out.push(OfficeOverview {
                office_id: id.clone(),
                office: r.get(1)?,
                complexes: 0,
                inspected: 0,
                approved: 0,
                overdue: 0,
                conditions: [0; 5],
            });
        }
        let o = out.last_mut().expect("pushed above");
        o.complexes += 1;
        let inspected: bool = r.get(3)?;
        if inspected {
            o.inspected += 1;
        } else {
            o.overdue += 1;
        }
        if r.get::<_, bool>(4)? {
            o.approved += 1;
        }
        if let Some(c) = r.get::<_, Option<String>>(5)? {
            let i = (c.as_bytes()[0] - b'A') as usize;
            o.conditions[i.min(4)] += 1;
        }
    }
    Ok(out)
}

/// Filtered, sorted, paginated inspections with their total count.
pub fn inspections(
    conn: &rusqlite::Connection,
    user: &UserInfo,
    f: &InspectionFilter,
    settings: &CsSettings,
) -> Result<(Vec<InspectionRow>, u32), StoreError> {
    f.check()?;
    let (territory, office) = scope(user)?;
    let thresholds = &settings.thresholds;
    let tz = settings.zone();
    let ivp = "(s.cost_5y / c.replacement_value)";
    let cond = condition_sql(ivp, thresholds);
    let mut wh = vec!["s.territory_id = ?".to_string()];
    let mut args: Vec<Value> = vec![Value::Text(territory)];
    let mut add = |clause: &str, v: Value| {
        wh.push(clause.to_string());
        args.push(v);
    };
    if let Some(o) = office {
        add("s.office_id = ?", Value::Text(o));
    }
    let nonempty = |o: &Option<String>| {
        o.as_ref()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    };
    if let Some(o) = nonempty(&f.office) {
        add("s.office_id = ?", Value::Text(o));
    }
    if let Some(s) = nonempty(&f.status) {
        add("s.status = ?", Value::Text(s));
    }
    if let Some(c) = nonempty(&f.condition) {
        add(&format!("({cond}) = ?"), Value::Text(c));
    }
    if nonempty(&f.conflicts).as_deref() == Some("oui") {
        add("s.conflicts > ?", Value::Integer(0));
    }
    if let Some(i) = nonempty(&f.inspector) {
        add("s.created_by = ?", Value::Text(i));
    }
    if let Some(d) = nonempty(&f.from) {
        let day = parse_day(&d)?;
        add(
            "s.created_at >= ?",
            Value::Integer(calendar::day_start_ms(day, &tz)),
        );
    }
    if let Some(d) = nonempty(&f.to) {
        let day = parse_day(&d)?;
        add(
            "s.created_at < ?",
            Value::Integer(calendar::day_end_ms(day, &tz)),
        );
    }
    let sort = f.sort.clone().unwrap_or_else(|| "-date".into());
    let (key, desc) = match sort.strip_prefix('-') {
        Some(k) => (k.to_string(), true),
        None => (sort.clone(), false),
    };
    let order = match key.as_str() {
        "complex" => "c.name",
        "office" => "o.name",
        "status" => "s.status",
        "cost" => "s.cost_5y",
        "conflicts" => "s.conflicts",
        _ => "s.created_at",
    };
    let from = "FROM inspection_summary s JOIN complexes c ON c.id = s.complex_id JOIN offices o ON o.id = s.office_id
                LEFT JOIN users u ON u.id = s.created_by";
    let where_sql = wh.join(" AND ");
    let total: u32 = conn.query_row(
        &format!("SELECT COUNT(*) {from} WHERE {where_sql}"),
        params_from_iter(args.iter()),
        |r| r.get(0),
    )?;
    let page = f.page.unwrap_or(1).max(1);
    let sql = format!(
        "SELECT s.doc_id, c.name, c.address || ', ' || c.city, o.name, s.status, COALESCE(u.display_name, ''), s.created_at,
                s.rated, s.present, s.findings, s.cost_5y, {ivp}, {cond}, s.conflicts
         {from} WHERE {where_sql} ORDER BY {order} {}, s.doc_id LIMIT {PAGE_SIZE} OFFSET {}",
        if desc { "DESC" } else { "ASC" },
        (page - 1) * PAGE_SIZE
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt
        .query_map(params_from_iter(args.iter()), |r| {
            let status: String = r.get(4)?;
            let cond: String = r.get(12)?;
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
                cost_5y: r.get(10)?,
                ivp: r.get(11)?,
                condition: match cond.as_str() {
                    "A" => "A",
                    "B" => "B",
                    "C" => "C",
                    "D" => "D",
                    _ => "E",
                },
                conflicts: r.get(13)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok((rows, total))
}

/// Inspectors of the territory (for the filter).
pub fn inspectors(
    conn: &rusqlite::Connection,
    user: &UserInfo,
) -> Result<Vec<(String, String)>, StoreError> {
    let (territory, _) = scope(user)?;
    let mut stmt = conn.prepare_cached(
        "SELECT id, display_name FROM users WHERE territory_id = ?1 AND role IN ('inspecteur', 'responsable') ORDER BY display_name",
    )?;
    let rows = stmt
        .query_map([territory], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(rows)
}

/// Offices visible to the user (for the filter).
pub fn offices(
    conn: &rusqlite::Connection,
    user: &UserInfo,
) -> Result<Vec<(String, String)>, StoreError> {
    let (territory, office) = scope(user)?;
    let mut stmt = conn.prepare_cached(
        "SELECT id, name FROM offices WHERE territory_id = ?1 AND (?2 IS NULL OR id = ?2) ORDER BY name",
    )?;
    let rows = stmt
        .query_map(rusqlite::params![territory, office], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(rows)
}

pub use bilan_shared::domain::CsSettings;

/// Reads the territory's settings (defaults where unset).
pub fn settings(conn: &rusqlite::Connection, user: &UserInfo) -> Result<CsSettings, StoreError> {
    let (territory, _) = scope(user)?;
    let json: Option<String> = rusqlite::OptionalExtension::optional(conn.query_row(
        "SELECT value FROM meta WHERE key = ?1",
        [format!("rates:{territory}")],
        |r| r.get(0),
    ))?;
    let Some(json) = json else {
        return Ok(CsSettings::default());
    };
    Ok(serde_json::from_str(&json).unwrap_or_else(|e| {
        tracing::warn!(%territory, stored = %json, error = %e, "CS settings do not decode; defaults used until a manager saves them");
        CsSettings {
            unreadable: true,
            ..CsSettings::default()
        }
    }))
}

/// Saves the territory's settings once they pass [`CsSettings::check`].
pub fn set_settings(
    conn: &rusqlite::Connection,
    user: &UserInfo,
    r: &CsSettings,
) -> Result<(), StoreError> {
    let (territory, _) = scope(user)?;
    r.check().map_err(StoreError::BadRequest)?;
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        rusqlite::params![format!("rates:{territory}"), serde_json::to_string(r).unwrap_or_default()],
    )?;
    Ok(())
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
}

/// Recommended work of the latest inspection of each complex, placed in the
/// year its urgency gives (year of the inspection + years until due).
pub fn works_plan(
    conn: &rusqlite::Connection,
    user: &UserInfo,
) -> Result<Vec<PlanLine>, StoreError> {
    let (territory, office) = scope(user)?;
    let tz = settings(conn, user)?.zone();
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
        .query_map(rusqlite::params![territory, office], |r| {
            let urgency: String = r.get(4)?;
            let offset = bilan_shared::domain::Urgency::from_code(&urgency)
                .map(|u| u.years_until_due())
                .unwrap_or(0);
            Ok(PlanLine {
                office: r.get(0)?,
                complex: r.get(1)?,
                year: calendar::year(r.get(2)?, &tz) + i64::from(offset),
                work: r.get(3)?,
                urgency: bilan_shared::domain::Urgency::from_code(&urgency)
                    .map(|u| u.label_fr().to_string())
                    .unwrap_or(urgency),
                cost: r.get(5)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
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

/// The activity statement (relevé des activités) for visits dated in `[from, to]` (ISO dates).
pub fn activity(
    conn: &rusqlite::Connection,
    user: &UserInfo,
    from: &str,
    to: &str,
    rates: &CsSettings,
) -> Result<Vec<ActivityLine>, StoreError> {
    let (territory, office) = scope(user)?;
    let mut stmt = conn.prepare_cached(
        "SELECT o.name, COUNT(*), SUM(v.hours_on_site), SUM(v.travel_hours), SUM(v.km), SUM(v.expenses)
         FROM site_visits v JOIN inspection_summary s ON s.doc_id = v.doc_id JOIN offices o ON o.id = s.office_id
         WHERE v.territory_id = ?1 AND (?2 IS NULL OR s.office_id = ?2) AND v.date >= ?3 AND v.date <= ?4
         GROUP BY o.id ORDER BY o.name",
    )?;
    let rows = stmt
        .query_map(rusqlite::params![territory, office, from, to], |r| {
            let visits = crate::reports::VisitTotals {
                visits: r.get(1)?,
                hours: r.get(2)?,
                travel_hours: r.get(3)?,
                km: r.get(4)?,
                expenses: r.get(5)?,
            };
            Ok(crate::reports::activity_line(r.get(0)?, &visits, rates))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}
