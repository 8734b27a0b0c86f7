//! The projection on PostgreSQL: the rows the review pages and reports
//! query, rewritten from each merged document in the transaction that
//! merges it.

use bilan_shared::doc::now_ms;
use bilan_shared::ids::TerritoryId;
use deadpool_postgres::GenericClient;

use super::core::Result;
use crate::codec::Merged;
use crate::error::StoreError;

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
        .query_opt(
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
    for table in [
        "component_ratings",
        "findings",
        "recommendations",
        "site_visits",
        "photo_refs",
    ] {
        tx.execute(&format!("DELETE FROM {table} WHERE doc_id = $1"), &[&id])
            .await?;
    }
    let (rated, present) = d.progress();
    let (total, five) = d.costs();
    tx.execute(
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
    for (code, c) in &d.components {
        if c.rating.is_some() || c.present.is_some() || !c.note.is_empty() {
            tx.execute(
                "INSERT INTO component_ratings (doc_id, territory_id, code, rating, present, note)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[
                    &id,
                    &t,
                    code,
                    &c.rating.map(|r| r.code()),
                    &c.present,
                    &c.note,
                ],
            )
            .await?;
        }
    }
    for f in &d.findings {
        let (cost, five) = crate::codec::finding_costs(f);
        tx.execute(
            "INSERT INTO findings (doc_id, territory_id, finding_id, component, title, location, severity, photos, cost, cost_5y)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING",
            &[
                &id,
                &t,
                &f.id.to_string(),
                &f.component,
                &f.title,
                &f.location,
                &f.severity.code(),
                &(f.photos.len() as i32),
                &cost,
                &five,
            ],
        )
        .await?;
        for r in &f.recommendations {
            tx.execute(
                "INSERT INTO recommendations (doc_id, territory_id, finding_id, rec_id, work, urgency, quantity, unit, unit_cost, cost)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING",
                &[
                    &id,
                    &t,
                    &f.id.to_string(),
                    &r.id.to_string(),
                    &r.work,
                    &r.urgency.code(),
                    &r.quantity,
                    &r.unit,
                    &r.unit_cost,
                    &r.estimated_cost(),
                ],
            )
            .await?;
        }
        for p in &f.photos {
            tx.execute(
                "INSERT INTO photo_refs (doc_id, territory_id, office_id, hash) VALUES ($1, $2, $3, $4)
                 ON CONFLICT DO NOTHING",
                &[&id, &t, &office, &p.hash.as_str()],
            )
            .await?;
        }
    }
    for v in &d.visits {
        tx.execute(
            "INSERT INTO site_visits (doc_id, territory_id, visit_id, date, inspector, hours_on_site, travel_hours, km, expenses)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
            &[
                &id,
                &t,
                &v.id.to_string(),
                &v.date,
                &v.inspector.to_string(),
                &v.hours_on_site,
                &v.travel_hours,
                &v.km,
                &v.expenses,
            ],
        )
        .await?;
    }
    Ok(())
}
