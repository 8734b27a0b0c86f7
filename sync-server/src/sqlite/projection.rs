//! The projection: the rows the review pages and reports query (summary,
//! ratings, findings, recommendations, photo references, site visits,
//! carried work),
//! rewritten from each merged document in the transaction that merges it.

use bilan_shared::doc::now_ms;
use bilan_shared::ids::TerritoryId;
use rusqlite::{Connection, OptionalExtension, params};

use super::core::Result;
use crate::codec::Merged;
use crate::error::StoreError;

/// Validates a merged document and rewrites its projection rows.
pub(super) fn project(tx: &Connection, territory: TerritoryId, m: &Merged) -> Result<()> {
    m.check_place(territory)?;
    let (doc_id, d) = (m.doc_id, &m.doc);
    let complex_ok: Option<String> = tx
        .query_row(
            "SELECT office_id FROM complexes WHERE id = ?1 AND territory_id = ?2",
            params![d.complex_id.to_string(), territory.to_string()],
            |r| r.get(0),
        )
        .optional()?;
    if complex_ok.as_deref() != Some(d.office_id.to_string().as_str()) {
        return Err(StoreError::InvalidDocument {
            doc: doc_id.to_string(),
            reason: "ensemble immobilier ou organisme inconnu dans ce territoire".into(),
        });
    }
    let id = doc_id.to_string();
    let t = territory.to_string();
    for table in [
        "component_ratings",
        "findings",
        "recommendations",
        "site_visits",
        "photo_refs",
        "carried_works",
    ] {
        tx.prepare_cached(&format!("DELETE FROM {table} WHERE doc_id = ?1"))?
            .execute([&id])?;
    }
    let (rated, present) = d.progress();
    let (total, five) = d.costs();
    let n_conflicts = m.conflicts;
    tx.prepare_cached(
        "INSERT OR REPLACE INTO inspection_summary (doc_id, territory_id, office_id, complex_id, status, created_by,
           created_at, updated_at, rated, present, findings, total_cost, cost_5y, conflicts)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    )?
    .execute(params![
            id, t, d.office_id.to_string(), d.complex_id.to_string(), d.status.code(),
            d.created_by.to_string(), d.created_at, now_ms(), rated as i64, present as i64,
            d.findings.len() as i64, total, five, n_conflicts as i64
        ])?;
    let mut ins = tx.prepare_cached(
        "INSERT INTO component_ratings (doc_id, territory_id, code, rating, present, note) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for (code, c) in &d.components {
        if c.rating.is_some() || c.present.is_some() || !c.note.is_empty() {
            ins.execute(params![
                id,
                t,
                code,
                c.rating.map(|r| r.code()),
                c.present,
                c.note
            ])?;
        }
    }
    for f in &d.findings {
        let (cost, five) = crate::codec::finding_costs(f);
        tx.prepare_cached(
            "INSERT OR REPLACE INTO findings (doc_id, territory_id, finding_id, component, title, location, severity, photos, cost, cost_5y)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )?
        .execute(params![id, t, f.id.to_string(), f.component, f.title, f.location, f.severity.code(), f.photos.len() as i64, cost, five])?;
        for r in &f.recommendations {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO recommendations (doc_id, territory_id, finding_id, rec_id, work, urgency, quantity, unit, unit_cost, cost, planned_year)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )?
            .execute(params![id, t, f.id.to_string(), r.id.to_string(), r.work, r.urgency.code(), r.quantity, r.unit, r.unit_cost, r.estimated_cost(), r.planned_year])?;
        }
        for hash in f.photos.iter().flat_map(|p| p.hashes()) {
            tx.prepare_cached(
                "INSERT OR IGNORE INTO photo_refs (doc_id, territory_id, office_id, hash) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![id, t, d.office_id.to_string(), hash.as_str()])?;
        }
    }
    for v in &d.visits {
        tx.prepare_cached(
            "INSERT OR REPLACE INTO site_visits (doc_id, territory_id, visit_id, date, inspector, hours_on_site, travel_hours, km, expenses)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?
        .execute(params![id, t, v.id.to_string(), v.date, v.inspector.to_string(), v.hours_on_site, v.travel_hours, v.km, v.expenses])?;
    }
    for w in d.previous.iter().flat_map(|p| &p.works) {
        tx.prepare_cached(
            "INSERT OR REPLACE INTO carried_works (doc_id, territory_id, rec_id, component, work, urgency, cost,
               recommended_at, status, done_year, done_cost, planned_year)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        )?
        .execute(params![id, t, w.id.to_string(), w.component, w.work, w.urgency.code(), w.cost,
            w.recommended_at, w.status.map(|s| s.code()), w.done_year, w.done_cost, w.planned_year])?;
    }
    Ok(())
}
