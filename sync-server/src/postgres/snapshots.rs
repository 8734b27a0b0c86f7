//! Documents as stored on PostgreSQL: a snapshot and the merged log
//! bundles after it; loading one back, writing a new snapshot.

use bilan_shared::Inspection;
use bilan_shared::doc::changes_of_chunks;
use bilan_shared::ids::{InspectionId, TerritoryId};
use deadpool_postgres::GenericClient;

use super::core::{Cached, Result, id};
use super::progress::merged_seq;
use crate::codec::unpack;

/// A document as merged: its snapshot, then its merged log bundles.
pub(super) async fn load_doc(
    client: &impl GenericClient,
    doc_id: InspectionId,
) -> Result<Option<(TerritoryId, Inspection)>> {
    let upto = merged_seq(client).await?;
    Ok(load_doc_counted(client, doc_id, upto)
        .await?
        .map(|(t, insp, _)| (t, insp)))
}

/// Like [`load_doc`] as of log row `upto`, also counting the log bundles
/// after the snapshot.
pub(super) async fn load_doc_counted(
    client: &impl GenericClient,
    doc_id: InspectionId,
    upto: i64,
) -> Result<Option<(TerritoryId, Inspection, i64)>> {
    let Some(row) = client
        .opt(
            "SELECT territory_id, snapshot, snap_seq FROM documents WHERE doc_id = $1",
            &[&doc_id.to_string()],
        )
        .await?
    else {
        return Ok(None);
    };
    let (t, snap, snap_seq): (String, Option<Vec<u8>>, i64) = (row.get(0), row.get(1), row.get(2));
    let mut insp = match snap {
        Some(bytes) => Inspection::load(&bytes)?,
        None => Inspection::empty(),
    };
    let rows = client
        .rows(
            "SELECT bytes FROM log WHERE doc_id = $1 AND seq > $2 AND seq <= $3
               AND bytes IS NOT NULL AND rejected IS NULL ORDER BY seq",
            &[&doc_id.to_string(), &snap_seq, &upto],
        )
        .await?;
    let mut changes = Vec::new();
    for r in &rows {
        changes.extend(changes_of_chunks(&unpack(r.get(0))?)?);
    }
    insp.apply_changes(changes)?;
    Ok(Some((id(t)?, insp, rows.len() as i64)))
}

/// Stores a snapshot of the document as of log row `upto`.
pub(super) async fn write_snapshot(
    client: &impl GenericClient,
    doc_id: InspectionId,
    snapshot: &[u8],
    upto: i64,
) -> Result<()> {
    client
        .exec(
            "UPDATE documents SET snapshot = $2, snap_seq = $3 WHERE doc_id = $1",
            &[&doc_id.to_string(), &snapshot, &upto],
        )
        .await?;
    Ok(())
}
