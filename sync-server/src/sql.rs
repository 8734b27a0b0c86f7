//! SQL fragments both SQL backends share (SQLite and PostgreSQL speak them
//! alike): the IVP of a summary row joined with its complex, and the
//! building condition of an IVP. Held to the pure functions of
//! [`crate::reports`] by the SQLite backend's tests.

use bilan_shared::domain::{ConditionThresholds, InspectionStatus, WorkStatus};

use crate::storage::{InspectionQuery, PAGE_SIZE, Scope, SortKey};

/// The building condition of an IVP expression, as SQL: the same bands as
/// [`ConditionThresholds::condition_for`] (the tests hold them together).
pub fn condition_sql(ivp: &str, t: &ConditionThresholds) -> String {
    let b = t.upper_bounds;
    format!(
        "CASE WHEN {ivp} <= {} THEN 'A' WHEN {ivp} <= {} THEN 'B' WHEN {ivp} <= {} THEN 'C' WHEN {ivp} <= {} THEN 'D' ELSE 'E' END",
        b[0], b[1], b[2], b[3]
    )
}

/// The IVP of a summary row joined with its complex, as SQL: the same as
/// [`crate::reports::ivp`].
pub const IVP_SQL: &str =
    "(CASE WHEN c.replacement_value > 0 THEN s.cost_5y / c.replacement_value ELSE 0.0 END)";

/// Every complex of a scope, grouped by office, with its latest inspection
/// and its latest approved one; columns: office id, office name,
/// replacement value, then the latest's created_at, status and cost_5y,
/// then the approved one's created_at and cost_5y (NULL when none), then
/// the complex's id, code and name, and its assignment's inspector id and
/// name, planned month and time set (NULL when not planned).
/// `territory` and `office` are how the backend writes the scope's two
/// arguments (`?1`, `$2::TEXT`...).
pub fn complex_rows(territory: &str, office: &str) -> String {
    let approved = InspectionStatus::Approved.code();
    // One pass: each complex's two rows picked and folded into one (a CTE
    // joined twice is scanned once per complex on SQLite).
    format!(
        "WITH ranked AS (
           SELECT s.complex_id, s.created_at, s.status, s.cost_5y,
             ROW_NUMBER() OVER (PARTITION BY s.complex_id ORDER BY s.created_at DESC) AS rn,
             ROW_NUMBER() OVER (PARTITION BY s.complex_id, s.status = '{approved}' ORDER BY s.created_at DESC) AS rn_status
           FROM inspection_summary s WHERE s.territory_id = {territory}),
         picked AS (
           SELECT complex_id,
             MAX(CASE WHEN rn = 1 THEN created_at END) AS l_at,
             MAX(CASE WHEN rn = 1 THEN status END) AS l_status,
             MAX(CASE WHEN rn = 1 THEN cost_5y END) AS l_cost,
             MAX(CASE WHEN status = '{approved}' AND rn_status = 1 THEN created_at END) AS a_at,
             MAX(CASE WHEN status = '{approved}' AND rn_status = 1 THEN cost_5y END) AS a_cost
           FROM ranked WHERE rn = 1 OR (status = '{approved}' AND rn_status = 1)
           GROUP BY complex_id)
         SELECT o.id, o.name, c.replacement_value, p.l_at, p.l_status, p.l_cost, p.a_at, p.a_cost,
           c.id, c.code, c.name, a.inspector_id, u.display_name, a.planned, a.at
         FROM complexes c JOIN offices o ON o.id = c.office_id
         LEFT JOIN picked p ON p.complex_id = c.id
         LEFT JOIN assignments a ON a.complex_id = c.id AND a.inspector_id IS NOT NULL
         LEFT JOIN users u ON u.id = a.inspector_id
         WHERE c.territory_id = {territory} AND ({office} IS NULL OR c.office_id = {office})
         ORDER BY o.name, o.id, c.name, c.code"
    )
}

/// The territory's approved inspections that a later approved one of the
/// same complex supersedes (one column: the document id). Pulls leave
/// them out: a device needs a complex's latest approved BSI (the next
/// inspection starts from it), not every old one; the server keeps them
/// all. `territory` as for [`complex_rows`].
pub fn superseded(territory: &str) -> String {
    let approved = InspectionStatus::Approved.code();
    format!(
        "SELECT s.doc_id FROM inspection_summary s
         WHERE s.territory_id = {territory} AND s.status = '{approved}'
           AND EXISTS (SELECT 1 FROM inspection_summary n
             WHERE n.territory_id = s.territory_id AND n.complex_id = s.complex_id
               AND n.status = '{approved}' AND n.created_at > s.created_at)"
    )
}

/// The works plan's rows of a scope: the work recommended by each
/// complex's latest inspection, and the previous BSI's work it carries
/// still open; columns: office name, complex name, the inspection's start,
/// when the work was recommended, work, urgency code, cost, the
/// inspection's id, the work's id, the year the CS moved it to. Placeholders
/// as for [`complex_rows`], and `complex` for an optional complex.
pub fn plan_rows(territory: &str, office: &str, complex: &str) -> String {
    let open: Vec<String> = WorkStatus::ALL
        .iter()
        .filter(|s| WorkStatus::is_open(Some(**s)))
        .map(|s| format!("'{}'", s.code()))
        .collect();
    let open = open.join(", ");
    format!(
        "WITH latest AS (
           SELECT s.doc_id, s.complex_id, s.office_id, s.created_at,
             ROW_NUMBER() OVER (PARTITION BY s.complex_id ORDER BY s.created_at DESC) AS rn
           FROM inspection_summary s WHERE s.territory_id = {territory} AND ({office} IS NULL OR s.office_id = {office})
             AND ({complex} IS NULL OR s.complex_id = {complex})),
         work AS (
           SELECT r.doc_id, r.rec_id, r.work, r.urgency, r.cost, NULL AS recommended_at, r.planned_year
           FROM recommendations r WHERE r.territory_id = {territory}
           UNION ALL
           SELECT w.doc_id, w.rec_id, w.work, w.urgency, w.cost, w.recommended_at, w.planned_year
           FROM carried_works w WHERE w.territory_id = {territory} AND (w.status IS NULL OR w.status IN ({open})))
         SELECT o.name, c.name, l.created_at, COALESCE(w.recommended_at, l.created_at), w.work, w.urgency, w.cost,
           w.doc_id, w.rec_id, w.planned_year
         FROM latest l JOIN work w ON w.doc_id = l.doc_id
         JOIN complexes c ON c.id = l.complex_id JOIN offices o ON o.id = l.office_id
         WHERE l.rn = 1 ORDER BY o.name, c.name, w.work"
    )
}

/// A complex's inspections, newest first; columns: doc id, start, status
/// code, inspector's name, findings, total cost, five-year cost.
pub fn complex_history(territory: &str, complex: &str) -> String {
    format!(
        "SELECT s.doc_id, s.created_at, s.status, COALESCE(u.display_name, s.created_by), s.findings,
           s.total_cost, s.cost_5y
         FROM inspection_summary s LEFT JOIN users u ON u.id = s.created_by
         WHERE s.territory_id = {territory} AND s.complex_id = {complex}
         ORDER BY s.created_at DESC"
    )
}

/// The work reported done in a complex's inspections, latest year first;
/// columns: work, year, cost, the reporting inspection's start.
pub fn done_works(territory: &str, complex: &str) -> String {
    format!(
        "SELECT w.work, w.done_year, w.done_cost, s.created_at
         FROM carried_works w JOIN inspection_summary s ON s.doc_id = w.doc_id
         WHERE w.territory_id = {territory} AND s.complex_id = {complex} AND w.status = '{done}'
         ORDER BY w.done_year DESC, w.work",
        done = WorkStatus::Done.code()
    )
}

/// A value bound to a statement.
#[derive(Clone, Debug, PartialEq)]
pub enum Arg {
    Text(String),
    Int(i64),
}

/// The inspections page as SQL: the count, the page (columns: id, complex,
/// address, office, status, inspector, created_at, rated, present,
/// findings, cost_5y, replacement_value, conflicts) and their arguments,
/// written by `placeholder` from their number and value (`?1` for SQLite,
/// `$1::BIGINT` for a PostgreSQL integer).
#[derive(Clone, Debug, PartialEq)]
pub struct SearchSql {
    pub count: String,
    pub page: String,
    pub args: Vec<Arg>,
}

/// Builds the inspections page's statements for `scope` and `q`.
pub fn search(
    scope: &Scope,
    q: &InspectionQuery,
    thresholds: &ConditionThresholds,
    placeholder: fn(usize, &Arg) -> String,
) -> SearchSql {
    let cond = condition_sql(IVP_SQL, thresholds);
    let mut wh: Vec<String> = Vec::new();
    let mut args: Vec<Arg> = Vec::new();
    let mut add = |clause: &str, v: Arg| {
        wh.push(clause.replace('?', &placeholder(args.len() + 1, &v)));
        args.push(v);
    };
    add("s.territory_id = ?", Arg::Text(scope.territory.to_string()));
    if let Some(o) = scope.office {
        add("s.office_id = ?", Arg::Text(o.to_string()));
    }
    if let Some(o) = q.office {
        add("s.office_id = ?", Arg::Text(o.to_string()));
    }
    if let Some(s) = q.status {
        add("s.status = ?", Arg::Text(s.code().to_string()));
    }
    if let Some(c) = q.condition {
        add(&format!("({cond}) = ?"), Arg::Text(c.to_string()));
    }
    if q.conflicts_only {
        add("s.conflicts > ?", Arg::Int(0));
    }
    if let Some(i) = q.inspector {
        add("s.created_by = ?", Arg::Text(i.to_string()));
    }
    if let Some(ms) = q.from_ms {
        add("s.created_at >= ?", Arg::Int(ms));
    }
    if let Some(ms) = q.before_ms {
        add("s.created_at < ?", Arg::Int(ms));
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
    let page = q.page.max(1);
    SearchSql {
        count: format!("SELECT COUNT(*) {from} WHERE {where_sql}"),
        page: format!(
            "SELECT s.doc_id, c.name, c.address || ', ' || c.city, o.name, s.status, COALESCE(u.display_name, ''),
                    s.created_at, s.rated, s.present, s.findings, s.cost_5y, c.replacement_value, s.conflicts
             {from} WHERE {where_sql} ORDER BY {order} {}, s.doc_id LIMIT {PAGE_SIZE} OFFSET {}",
            if q.descending { "DESC" } else { "ASC" },
            (page - 1) * PAGE_SIZE
        ),
        args,
    }
}
