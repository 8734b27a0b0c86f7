//! Documents as stored: a snapshot and the merged log bundles after it.
//! Loading one back, and writing a new snapshot that folds the bundles in.

use bilan_shared::Inspection;
use bilan_shared::doc::changes_of_chunks;
use bilan_shared::ids::{InspectionId, TerritoryId};
use rusqlite::{Connection, OptionalExtension, params};

use super::core::{Result, merged_seq};
use crate::codec::unpack;
use crate::error::StoreError;

/// A document as merged: its snapshot, then its merged log bundles after
/// it (rows the merger has not reached yet, or refused, are left out).
pub(super) fn load_doc(
    tx: &Connection,
    doc_id: InspectionId,
) -> Result<Option<(TerritoryId, Inspection)>> {
    let upto = merged_seq(tx)?;
    Ok(load_doc_counted(tx, doc_id, upto)?.map(|(t, insp, _)| (t, insp)))
}

/// Like [`load_doc`] as of log row `upto`, also counting the log bundles
/// after the snapshot.
pub(super) fn load_doc_counted(
    tx: &Connection,
    doc_id: InspectionId,
    upto: i64,
) -> Result<Option<(TerritoryId, Inspection, i64)>> {
    let row: Option<(String, Option<Vec<u8>>, i64)> = tx
        .prepare_cached("SELECT territory_id, snapshot, snap_seq FROM documents WHERE doc_id = ?1")?
        .query_row([doc_id.to_string()], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .optional()?;
    let Some((t, snap, snap_seq)) = row else {
        return Ok(None);
    };
    let mut insp = match snap {
        Some(bytes) => Inspection::load(&bytes)?,
        None => Inspection::empty(),
    };
    let mut stmt = tx.prepare_cached(
        "SELECT bytes FROM log WHERE doc_id = ?1 AND seq > ?2 AND seq <= ?3
           AND bytes IS NOT NULL AND rejected IS NULL ORDER BY seq",
    )?;
    let mut rows = stmt.query(params![doc_id.to_string(), snap_seq, upto])?;
    let mut changes = Vec::new();
    let mut behind = 0;
    while let Some(r) = rows.next()? {
        let bytes = unpack(r.get(0)?)?;
        changes.extend(changes_of_chunks(&bytes)?);
        behind += 1;
    }
    insp.apply_changes(changes)?;
    Ok(Some((
        t.parse()
            .map_err(|_| StoreError::Corrupt(format!("identifiant de territoire « {t} »")))?,
        insp,
        behind,
    )))
}

/// Stores a snapshot of the document as of log row `upto` (the merged
/// rows up to there are folded into it).
pub(super) fn write_snapshot(
    tx: &Connection,
    doc_id: InspectionId,
    snapshot: &[u8],
    upto: i64,
) -> Result<()> {
    tx.prepare_cached("UPDATE documents SET snapshot = ?2, snap_seq = ?3 WHERE doc_id = ?1")?
        .execute(params![doc_id.to_string(), snapshot, upto])?;
    Ok(())
}
