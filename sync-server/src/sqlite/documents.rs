//! Inspections as merged and their summary rows, read for the API and the
//! review pages, and the server's own edits (review decisions, conflict
//! resolutions): the [`DocumentStore`] implementation.

use automerge::ActorId;
use bilan_shared::Inspection;
use bilan_shared::doc::{Author, bundle};
use bilan_shared::domain::InspectionStatus;
use bilan_shared::ids::{InspectionId, OfficeId, TerritoryId};
use rusqlite::{OptionalExtension, params};

use super::core::{Result, parse_id, set_merged_seq};
use super::store::SqliteStore;
use super::{audit, log, projection, snapshots};
use crate::audit::AuditEntry;
use crate::codec::{Merged, pack};
use crate::error::StoreError;
use crate::storage::{DocumentStore, InspectionSummary, Scope, ServerEdit};

impl DocumentStore for SqliteStore {
    fn place(&self, id: InspectionId) -> Result<Option<(TerritoryId, OfficeId)>> {
        self.settle();
        let row: Option<(String, String)> = self
            .reader()?
            .query_row(
                "SELECT territory_id, office_id FROM inspection_summary WHERE doc_id = ?1",
                [id.to_string()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        row.map(|(t, o)| {
            let corrupt = || StoreError::Corrupt(format!("emplacement de l'inspection {id}"));
            Ok((
                t.parse().map_err(|_| corrupt())?,
                o.parse().map_err(|_| corrupt())?,
            ))
        })
        .transpose()
    }

    fn load(&self, id: InspectionId) -> Result<Option<Inspection>> {
        self.settle();
        Ok(snapshots::load_doc(&*self.reader()?, id)?.map(|(_, insp)| insp))
    }

    fn summaries(&self, scope: &Scope) -> Result<Vec<InspectionSummary>> {
        self.settle();
        let conn = self.reader()?;
        let mut stmt = conn.prepare_cached(
            "SELECT doc_id, office_id, complex_id, status, rated, present, findings, total_cost, cost_5y, conflicts, updated_at
             FROM inspection_summary WHERE territory_id = ?1 AND (?2 IS NULL OR office_id = ?2) ORDER BY updated_at DESC",
        )?;
        let rows = stmt.query_map(
            params![
                scope.territory.to_string(),
                scope.office.map(|o| o.to_string())
            ],
            |r| {
                let status: String = r.get(3)?;
                Ok(InspectionSummary {
                    inspection_id: parse_id(r.get(0)?)?,
                    office_id: parse_id(r.get(1)?)?,
                    complex_id: parse_id(r.get(2)?)?,
                    status: InspectionStatus::from_code(&status)
                        .unwrap_or(InspectionStatus::InProgress),
                    rated: r.get(4)?,
                    present: r.get(5)?,
                    findings: r.get(6)?,
                    total_cost: r.get(7)?,
                    cost_5y: r.get(8)?,
                    conflicts: r.get(9)?,
                    updated_at: r.get(10)?,
                })
            },
        )?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn server_actor(&self) -> ActorId {
        self.server_actor.clone()
    }

    fn server_edit(
        &self,
        territory: TerritoryId,
        id: InspectionId,
        author: &Author,
        audit: &AuditEntry,
        edit: &mut ServerEdit<'_>,
    ) -> Result<()> {
        let mut conn = self.lock();
        // Everything pushed so far is merged first (under the lock, so no
        // push slips in): the edit sees it, and its row is merged as written.
        self.drain(&mut conn)?;
        let tx = conn.transaction()?;
        let (owner, mut insp) = snapshots::load_doc(&tx, id)?
            .ok_or_else(|| StoreError::NotFound(format!("inspection {id}")))?;
        if owner != territory {
            return Err(StoreError::Forbidden(
                "cette inspection appartient à un autre territoire".into(),
            ));
        }
        let changes = edit(&mut insp, author)?;
        if changes.is_empty() {
            return Ok(());
        }
        let m = Merged::derive(id, &insp, false)?;
        projection::project(&tx, territory, &m)?;
        let packed = pack(&bundle(&changes))?;
        let seq = log::append(&tx, territory, "server", id, changes.len(), &packed)?;
        set_merged_seq(&tx, seq)?;
        audit::write_audit(&tx, audit)?;
        tx.commit()?;
        self.note_committed(seq);
        self.note_merged(seq);
        Ok(())
    }
}
