//! The projection on PostgreSQL: the rows the review pages and reports
//! query, rewritten from each merged document in the transaction that
//! merges it.

use std::borrow::Cow;

use bilan_shared::doc::now_ms;
use bilan_shared::ids::TerritoryId;
use deadpool_postgres::GenericClient;

use super::core::{Cached, Result};
use crate::codec::Merged;
use crate::error::StoreError;

/// Text as PostgreSQL can hold it: a NUL character (which its text type
/// cannot keep, and an inspector's device may have pasted) becomes U+FFFD
/// in the projection; the document itself keeps every byte.
fn kept(s: &str) -> Cow<'_, str> {
    if s.contains('\0') {
        Cow::Owned(s.replace('\0', "\u{FFFD}"))
    } else {
        Cow::Borrowed(s)
    }
}

/// Validates a merged document and rewrites its projection rows.
pub(super) async fn project(
    tx: &impl GenericClient,
    territory: TerritoryId,
    m: &Merged,
) -> Result<()> {
    m.check_place(territory)?;
    let (doc_id, d) = (m.doc_id, &m.doc);
    let t = territory.to_string();
    let id = doc_id.to_string();
    let office = d.office_id.to_string();
    let complex_ok: Option<String> = tx
        .opt(
            "SELECT office_id FROM complexes WHERE id = $1 AND territory_id = $2",
            &[&d.complex_id.to_string(), &t],
        )
        .await?
        .map(|r| r.get(0));
    if complex_ok.as_deref() != Some(office.as_str()) {
        return Err(StoreError::InvalidDocument {
            doc: id,
            reason: "ensemble immobilier ou organisme inconnu dans ce territoire".into(),
        });
    }
    // One statement clears the document's rows; each table's new rows go in
    // one statement of unnested arrays, so a document with a hundred
    // findings costs a handful of round trips, not hundreds.
    tx.exec(
        "WITH c AS (DELETE FROM component_ratings WHERE doc_id = $1),
              f AS (DELETE FROM findings WHERE doc_id = $1),
              r AS (DELETE FROM recommendations WHERE doc_id = $1),
              v AS (DELETE FROM site_visits WHERE doc_id = $1),
              w AS (DELETE FROM carried_works WHERE doc_id = $1)
         DELETE FROM photo_refs WHERE doc_id = $1",
        &[&id],
    )
    .await?;
    let (rated, present) = d.progress();
    let (total, five) = d.costs();
    tx.exec(
        "INSERT INTO inspection_summary (doc_id, territory_id, office_id, complex_id, status, created_by,
           created_at, updated_at, rated, present, findings, total_cost, cost_5y, conflicts)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
         ON CONFLICT (doc_id) DO UPDATE SET office_id = excluded.office_id, complex_id = excluded.complex_id,
           status = excluded.status, created_by = excluded.created_by, created_at = excluded.created_at,
           updated_at = excluded.updated_at, rated = excluded.rated, present = excluded.present,
           findings = excluded.findings, total_cost = excluded.total_cost, cost_5y = excluded.cost_5y,
           conflicts = excluded.conflicts",
        &[
            &id,
            &t,
            &office,
            &d.complex_id.to_string(),
            &d.status.code(),
            &d.created_by.to_string(),
            &d.created_at,
            &now_ms(),
            &(rated as i32),
            &(present as i32),
            &(d.findings.len() as i32),
            &total,
            &five,
            &(m.conflicts as i32),
        ],
    )
    .await?;
    let rated: Vec<_> = d
        .components
        .iter()
        .filter(|(_, c)| c.rating.is_some() || c.present.is_some() || !c.note.is_empty())
        .collect();
    tx.exec(
        "INSERT INTO component_ratings (doc_id, territory_id, code, rating, present, note)
         SELECT $1, $2, * FROM UNNEST($3::TEXT[], $4::TEXT[], $5::BOOLEAN[], $6::TEXT[])",
        &[
            &id,
            &t,
            &rated.iter().map(|(code, _)| kept(code)).collect::<Vec<_>>(),
            &rated
                .iter()
                .map(|(_, c)| c.rating.map(|r| r.code()))
                .collect::<Vec<_>>(),
            &rated.iter().map(|(_, c)| c.present).collect::<Vec<_>>(),
            &rated.iter().map(|(_, c)| kept(&c.note)).collect::<Vec<_>>(),
        ],
    )
    .await?;
    let finding_ids: Vec<String> = d.findings.iter().map(|f| f.id.to_string()).collect();
    let costs: Vec<(f64, f64)> = d.findings.iter().map(crate::codec::finding_costs).collect();
    tx.exec(
        "INSERT INTO findings (doc_id, territory_id, finding_id, component, title, location, severity, photos, cost, cost_5y)
         SELECT $1, $2, * FROM UNNEST($3::TEXT[], $4::TEXT[], $5::TEXT[], $6::TEXT[], $7::TEXT[],
           $8::INTEGER[], $9::DOUBLE PRECISION[], $10::DOUBLE PRECISION[])
         ON CONFLICT DO NOTHING",
        &[
            &id,
            &t,
            &finding_ids,
            &d.findings.iter().map(|f| kept(&f.component)).collect::<Vec<_>>(),
            &d.findings.iter().map(|f| kept(&f.title)).collect::<Vec<_>>(),
            &d.findings.iter().map(|f| kept(&f.location)).collect::<Vec<_>>(),
            &d.findings.iter().map(|f| f.severity.code()).collect::<Vec<_>>(),
            &d.findings.iter().map(|f| f.photos.len() as i32).collect::<Vec<_>>(),
            &costs.iter().map(|c| c.0).collect::<Vec<_>>(),
            &costs.iter().map(|c| c.1).collect::<Vec<_>>(),
        ],
    )
    .await?;
    let recs: Vec<_> = d
        .findings
        .iter()
        .zip(&finding_ids)
        .flat_map(|(f, fid)| f.recommendations.iter().map(move |r| (fid, r)))
        .collect();
    tx.exec(
        "INSERT INTO recommendations (doc_id, territory_id, finding_id, rec_id, work, urgency, quantity, unit, unit_cost, cost,
           planned_year)
         SELECT $1, $2, * FROM UNNEST($3::TEXT[], $4::TEXT[], $5::TEXT[], $6::TEXT[],
           $7::DOUBLE PRECISION[], $8::TEXT[], $9::DOUBLE PRECISION[], $10::DOUBLE PRECISION[], $11::BIGINT[])
         ON CONFLICT DO NOTHING",
        &[
            &id,
            &t,
            &recs.iter().map(|(fid, _)| fid.as_str()).collect::<Vec<_>>(),
            &recs.iter().map(|(_, r)| r.id.to_string()).collect::<Vec<_>>(),
            &recs.iter().map(|(_, r)| kept(&r.work)).collect::<Vec<_>>(),
            &recs.iter().map(|(_, r)| r.urgency.code()).collect::<Vec<_>>(),
            &recs.iter().map(|(_, r)| r.quantity).collect::<Vec<_>>(),
            &recs.iter().map(|(_, r)| kept(&r.unit)).collect::<Vec<_>>(),
            &recs.iter().map(|(_, r)| r.unit_cost).collect::<Vec<_>>(),
            &recs.iter().map(|(_, r)| r.estimated_cost()).collect::<Vec<_>>(),
            &recs.iter().map(|(_, r)| r.planned_year).collect::<Vec<_>>(),
        ],
    )
    .await?;
    let hashes: Vec<&str> = d
        .findings
        .iter()
        .flat_map(|f| f.photos.iter().flat_map(|p| p.hashes()).map(|h| h.as_str()))
        .collect();
    tx.exec(
        "INSERT INTO photo_refs (doc_id, territory_id, office_id, hash)
         SELECT $1, $2, $3, * FROM UNNEST($4::TEXT[]) ON CONFLICT DO NOTHING",
        &[&id, &t, &office, &hashes],
    )
    .await?;
    let v = &d.visits;
    tx.exec(
        "INSERT INTO site_visits (doc_id, territory_id, visit_id, date, inspector, hours_on_site, travel_hours, km, expenses)
         SELECT $1, $2, * FROM UNNEST($3::TEXT[], $4::TEXT[], $5::TEXT[], $6::DOUBLE PRECISION[],
           $7::DOUBLE PRECISION[], $8::DOUBLE PRECISION[], $9::DOUBLE PRECISION[])
         ON CONFLICT DO NOTHING",
        &[
            &id,
            &t,
            &v.iter().map(|v| v.id.to_string()).collect::<Vec<_>>(),
            &v.iter().map(|v| kept(&v.date)).collect::<Vec<_>>(),
            &v.iter().map(|v| v.inspector.to_string()).collect::<Vec<_>>(),
            &v.iter().map(|v| v.hours_on_site).collect::<Vec<_>>(),
            &v.iter().map(|v| v.travel_hours).collect::<Vec<_>>(),
            &v.iter().map(|v| v.km).collect::<Vec<_>>(),
            &v.iter().map(|v| v.expenses).collect::<Vec<_>>(),
        ],
    )
    .await?;
    let w: Vec<_> = d.previous.iter().flat_map(|p| &p.works).collect();
    tx.exec(
        "INSERT INTO carried_works (doc_id, territory_id, rec_id, component, work, urgency, cost, recommended_at,
           status, done_year, done_cost, planned_year)
         SELECT $1, $2, * FROM UNNEST($3::TEXT[], $4::TEXT[], $5::TEXT[], $6::TEXT[], $7::DOUBLE PRECISION[],
           $8::BIGINT[], $9::TEXT[], $10::BIGINT[], $11::DOUBLE PRECISION[], $12::BIGINT[])
         ON CONFLICT DO NOTHING",
        &[
            &id,
            &t,
            &w.iter().map(|w| w.id.to_string()).collect::<Vec<_>>(),
            &w.iter().map(|w| kept(&w.component)).collect::<Vec<_>>(),
            &w.iter().map(|w| kept(&w.work)).collect::<Vec<_>>(),
            &w.iter().map(|w| w.urgency.code()).collect::<Vec<_>>(),
            &w.iter().map(|w| w.cost).collect::<Vec<_>>(),
            &w.iter().map(|w| w.recommended_at).collect::<Vec<_>>(),
            &w.iter().map(|w| w.status.map(|s| s.code())).collect::<Vec<_>>(),
            &w.iter().map(|w| w.done_year).collect::<Vec<_>>(),
            &w.iter().map(|w| w.done_cost).collect::<Vec<_>>(),
            &w.iter().map(|w| w.planned_year).collect::<Vec<_>>(),
        ],
    )
    .await?;
    Ok(())
}
