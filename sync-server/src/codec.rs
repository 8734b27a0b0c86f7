//! Stored formats every backend shares, and the work on documents that
//! needs no database: log bundles (packed automerge chunks), a push's
//! documents checked and packed for the log, snapshots that load back, a
//! merged document read back for its projection, and refusal codes as
//! stored. What must not be here: SQL, or anything that waits on I/O.

use bilan_shared::doc::count_chunks;
use bilan_shared::domain::CsSettings;
use bilan_shared::ids::{InspectionId, TerritoryId};
use bilan_shared::protocol::{DocChanges, ErrorCode};
use bilan_shared::{Inspection, InspectionDoc, conflicts};
use rayon::prelude::*;

use crate::error::StoreError;
use crate::storage::PreparedDoc;

type Result<T> = std::result::Result<T, StoreError>;

/// Magic bytes of a zstd frame (automerge chunks start differently).
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// Log bundles are stored zstd-compressed: a fifth of the bytes to write,
/// fsync and keep. Compressed on the request's or merging threads, never
/// under a write lock.
pub fn pack(bundle: &[u8]) -> Result<Vec<u8>> {
    Ok(zstd::bulk::compress(bundle, 1)?)
}

/// Reads a log row's bytes back: compressed bundles (schema 2) or raw
/// changes (rows migrated from schema 1).
pub fn unpack(bytes: Vec<u8>) -> Result<Vec<u8>> {
    if !bytes.starts_with(&ZSTD_MAGIC) {
        return Ok(bytes);
    }
    let mut out = Vec::new();
    zstd::stream::copy_decode(bytes.as_slice(), &mut out)?;
    Ok(out)
}

/// Prepares a push's documents for the log, on the request's thread before
/// it joins the group commit: every item must be whole automerge chunks
/// (magic, type, length; microseconds), and each document's items become one
/// packed bundle. Parsing the changes (about 0.4 ms per inspection) is the
/// merger's work: a change that does not parse or apply is refused then and
/// reported to its device. Documents sent with no items are skipped.
pub fn prepare_push(docs: Vec<DocChanges>) -> Result<Vec<PreparedDoc>> {
    docs.into_par_iter()
        .filter(|d| !d.changes.is_empty())
        .map(|d| {
            let mut chunks = 0;
            for item in &d.changes {
                chunks += count_chunks(item).map_err(|e| StoreError::MalformedChange {
                    doc: d.doc_id.to_string(),
                    reason: e.to_string(),
                })?;
            }
            let raw = d
                .changes
                .iter()
                .map(|i| i.as_slice())
                .collect::<Vec<_>>()
                .concat();
            Ok(PreparedDoc {
                doc_id: d.doc_id,
                chunks,
                packed: pack(&raw)?,
            })
        })
        .collect()
}

/// A snapshot of `insp`, or none when it would not load back (the document
/// then keeps being built from its log, which always applies).
pub fn checked_snapshot(doc_id: InspectionId, insp: &Inspection) -> Option<Vec<u8>> {
    insp.checked_save()
        .map_err(|e| tracing::warn!(%doc_id, error = %e, "snapshot skipped"))
        .ok()
}

/// A merged document with what its projection needs; computed away from the
/// database so that documents merge in parallel.
pub struct Merged {
    pub doc_id: InspectionId,
    /// A new snapshot, when enough log bundles follow the stored one.
    pub snapshot: Option<Vec<u8>>,
    pub doc: InspectionDoc,
    pub conflicts: usize,
}

impl Merged {
    /// Reads the merged document back for the projection.
    pub fn derive(doc_id: InspectionId, insp: &Inspection, snapshot_due: bool) -> Result<Self> {
        let doc: InspectionDoc = insp.read().map_err(|e| match e {
            e @ bilan_shared::SharedError::SchemaTooNew { .. } => StoreError::from(e),
            other => StoreError::InvalidDocument {
                doc: doc_id.to_string(),
                reason: other.to_string(),
            },
        })?;
        Ok(Self {
            doc_id,
            conflicts: conflicts::list(insp)?.len(),
            snapshot: snapshot_due
                .then(|| checked_snapshot(doc_id, insp))
                .flatten(),
            doc,
        })
    }

    /// Checks that the document is the one stored under its id, of the
    /// territory it was pushed to.
    pub fn check_place(&self, territory: TerritoryId) -> Result<()> {
        let invalid = |reason: &str| StoreError::InvalidDocument {
            doc: self.doc_id.to_string(),
            reason: reason.into(),
        };
        if self.doc.inspection_id != self.doc_id {
            return Err(invalid("l'identifiant du document ne correspond pas"));
        }
        if self.doc.territory_id != territory {
            return Err(invalid("le document appartient à un autre territoire"));
        }
        Ok(())
    }
}

/// A finding's recommended work: in all, and due within five years (what
/// the projection stores beside it).
pub fn finding_costs(f: &bilan_shared::doc::Finding) -> (f64, f64) {
    let cost = f.recommendations.iter().map(|r| r.estimated_cost()).sum();
    let five = f
        .recommendations
        .iter()
        .filter(|r| r.urgency.within_five_years())
        .map(|r| r.estimated_cost())
        .sum();
    (cost, five)
}

/// An error code as stored beside a refused log row (its wire name).
pub fn code_name(code: ErrorCode) -> String {
    serde_json::to_value(code)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// A stored refusal code read back; an unknown one (written by a newer
/// build) reads as an invalid document.
pub fn code_of_name(name: String) -> ErrorCode {
    serde_json::from_value(serde_json::Value::String(name)).unwrap_or(ErrorCode::InvalidDocument)
}

/// The `meta` key a territory's settings are stored under (both backends).
pub fn settings_key(territory: TerritoryId) -> String {
    format!("rates:{territory}")
}

/// A territory's settings as they are stored (JSON), read back by
/// [`decode_settings`].
pub fn encode_settings(settings: &CsSettings) -> Result<String> {
    serde_json::to_string(settings).map_err(|e| StoreError::Backend(format!("paramètres : {e}")))
}

/// A territory's settings as stored (JSON). A value that does not decode
/// gives the defaults marked `unreadable` (the review pages say so) and a
/// log line, instead of failing every page of the territory.
pub fn decode_settings(json: &str, territory: TerritoryId) -> CsSettings {
    serde_json::from_str(json).unwrap_or_else(|e| {
        tracing::warn!(%territory, stored = %json, error = %e, "CS settings do not decode; defaults used until a manager saves them");
        CsSettings {
            unreadable: true,
            ..CsSettings::default()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_bundles_and_raw_rows_both_unpack() {
        let raw = b"\x85\x6f\x4a\x83 some change bytes".to_vec();
        assert_eq!(unpack(pack(&raw).unwrap()).unwrap(), raw);
        assert_eq!(unpack(raw.clone()).unwrap(), raw, "schema 1 rows are raw");
    }

    #[test]
    fn refusal_codes_read_back_as_written() {
        for code in [ErrorCode::MalformedChange, ErrorCode::MissingDependencies] {
            assert_eq!(code_of_name(code_name(code)), code);
        }
        assert_eq!(code_of_name("nope".into()), ErrorCode::InvalidDocument);
    }
}
