//! Inspections as merged on PostgreSQL, their summary rows, and the
//! server's own edits: the [`DocumentStore`] implementation.

use automerge::ActorId;
use bilan_shared::Inspection;
use bilan_shared::doc::{Author, bundle};
use bilan_shared::domain::InspectionStatus;
use bilan_shared::ids::{InspectionId, OfficeId, TerritoryId};

use super::audit::write_audit;
use super::core::{Result, id};
use super::log::{LOG_LOCK, append};
use super::progress::{committed_seq, lock_merged_seq, set_merged_seq};
use super::store::PgStore;
use super::{projection, snapshots};
use crate::audit::AuditEntry;
use crate::codec::{Merged, pack};
use crate::error::StoreError;
use crate::storage::{DocumentStore, InspectionSummary, Scope, ServerEdit};

/// Attempts of a server edit while pushes keep arriving between its wait
/// for the merger and its lock.
const EDIT_ATTEMPTS: usize = 20;

impl DocumentStore for PgStore {
    fn place(&self, doc: InspectionId) -> Result<Option<(TerritoryId, OfficeId)>> {
        self.settle()?;
        self.run(async {
            self.client()
                .await?
                .query_opt(
                    "SELECT territory_id, office_id FROM inspection_summary WHERE doc_id = $1",
                    &[&doc.to_string()],
                )
                .await?
                .map(|r| Ok((id(r.get(0))?, id(r.get(1))?)))
                .transpose()
        })
    }

    fn load(&self, doc: InspectionId) -> Result<Option<Inspection>> {
        self.settle()?;
        self.run(async {
            Ok(snapshots::load_doc(&self.client().await?, doc)
                .await?
                .map(|(_, insp)| insp))
        })
    }

    fn summaries(&self, scope: &Scope) -> Result<Vec<InspectionSummary>> {
        self.settle()?;
        self.run(async {
            let rows = self
                .client()
                .await?
                .query(
                    "SELECT doc_id, office_id, complex_id, status, rated, present, findings, total_cost, cost_5y,
                       conflicts, updated_at
                     FROM inspection_summary WHERE territory_id = $1 AND ($2::TEXT IS NULL OR office_id = $2)
                     ORDER BY updated_at DESC",
                    &[&scope.territory.to_string(), &scope.office.map(|o| o.to_string())],
                )
                .await?;
            rows.iter()
                .map(|r| {
                    let status: String = r.get(3);
                    Ok(InspectionSummary {
                        inspection_id: id(r.get(0))?,
                        office_id: id(r.get(1))?,
                        complex_id: id(r.get(2))?,
                        status: InspectionStatus::from_code(&status)
                            .unwrap_or(InspectionStatus::InProgress),
                        rated: r.get::<_, i32>(4) as u32,
                        present: r.get::<_, i32>(5) as u32,
                        findings: r.get::<_, i32>(6) as u32,
                        total_cost: r.get(7),
                        cost_5y: r.get(8),
                        conflicts: r.get::<_, i32>(9) as u32,
                        updated_at: r.get(10),
                    })
                })
                .collect()
        })
    }

    fn server_actor(&self) -> ActorId {
        self.server_actor.clone()
    }

    /// With every push before it merged (it waits for the merger, then
    /// holds the log's lock, so no push slips in, and the progress row,
    /// so no merger batch does), the edit's bundle is appended and counted
    /// as merged in one transaction with its projection and audit entry.
    fn server_edit(
        &self,
        territory: TerritoryId,
        doc: InspectionId,
        author: &Author,
        audit: &AuditEntry,
        edit: &mut ServerEdit<'_>,
    ) -> Result<()> {
        for _ in 0..EDIT_ATTEMPTS {
            self.settle()?;
            let done = self.run(async {
                let mut client = self.client().await?;
                let tx = client.transaction().await?;
                tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOG_LOCK])
                    .await?;
                let merged = lock_merged_seq(&tx).await?;
                if merged < committed_seq(&tx).await? {
                    // A push came in after the wait: wait again.
                    return Ok(false);
                }
                let (owner, mut insp) = snapshots::load_doc(&tx, doc)
                    .await?
                    .ok_or_else(|| StoreError::NotFound(format!("inspection {doc}")))?;
                if owner != territory {
                    return Err(StoreError::Forbidden(
                        "cette inspection appartient à un autre territoire".into(),
                    ));
                }
                let changes = edit(&mut insp, author)?;
                if changes.is_empty() {
                    return Ok(true);
                }
                let m = Merged::derive(doc, &insp, false)?;
                projection::project(&tx, territory, &m).await?;
                let packed = pack(&bundle(&changes))?;
                let seq = append(&tx, territory, "server", doc, changes.len(), &packed).await?;
                set_merged_seq(&tx, seq).await?;
                write_audit(&tx, audit).await?;
                tx.commit().await?;
                Ok(true)
            })?;
            if done {
                return Ok(());
            }
        }
        Err(StoreError::Unavailable(
            "trop d'envois en cours pour modifier cette inspection : réessayez".into(),
        ))
    }
}
