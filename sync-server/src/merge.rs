//! Merging pushed changes into documents, with no database: each log row's
//! changes applied to its document as merged so far, duplicates (a push
//! retried after a cut) dropped, a row that does not parse, misses its
//! dependencies or makes the document invalid refused with the code its
//! device is told. Backends read the rows and documents, run
//! [`merge_group`] on the [`pool`], and write the outcome.

use std::collections::HashSet;

use automerge::{Change, ReadDoc};
use bilan_shared::Inspection;
use bilan_shared::doc::{bundle, changes_of_chunks, is_saved_document};
use bilan_shared::ids::{InspectionId, TerritoryId};
use bilan_shared::protocol::ErrorCode;

use crate::codec::{Merged, pack, unpack};
use crate::error::StoreError;

type Result<T> = std::result::Result<T, StoreError>;

/// Log bundles of a document after its snapshot beyond which a merge also
/// rewrites the snapshot, so that loading a document stays cheap.
pub const SNAPSHOT_AFTER: i64 = 16;

/// The merge pool: one thread per core, below the priority of the threads
/// that answer requests (nice 10, `SCHED_BATCH`, on Linux), so that merging,
/// a background job, does not slow down devices' pushes and pulls on a busy
/// server. It only computes: the writes happen on the merger thread.
pub fn pool() -> Result<rayon::ThreadPool> {
    rayon::ThreadPoolBuilder::new()
        .thread_name(|i| format!("bilan-merge-{i}"))
        .start_handler(|_| lower_priority())
        .build()
        .map_err(|e| StoreError::Backend(e.to_string()))
}

#[cfg(target_os = "linux")]
fn lower_priority() {
    use thread_priority::{
        NormalThreadSchedulePolicy, ThreadPriority, ThreadPriorityValue, ThreadSchedulePolicy,
        set_thread_priority_and_policy, thread_native_id,
    };
    // 22 of 0..=99 maps to nice 10 in thread-priority's scale.
    let lowered = ThreadPriorityValue::try_from(22u8)
        .map_err(|e| e.to_string())
        .and_then(|p| {
            set_thread_priority_and_policy(
                thread_native_id(),
                ThreadPriority::Crossplatform(p),
                ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Batch),
            )
            .map_err(|e| e.to_string())
        });
    if let Err(error) = lowered {
        tracing::debug!(%error, "merge thread keeps its priority");
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_priority() {}

/// A log row waiting for the merger.
pub struct Pending {
    pub seq: i64,
    pub bytes: Option<Vec<u8>>,
}

/// One document's rows of a batch, with the document as merged before them.
pub struct Group {
    pub doc_id: InspectionId,
    pub territory: TerritoryId,
    pub base: Base,
    pub rows: Vec<Pending>,
}

pub enum Base {
    New,
    Loaded {
        insp: Box<Inspection>,
        behind: i64,
    },
    /// The stored document does not load: its new rows cannot be merged.
    Broken(ErrorCode, String),
}

/// What the merger does with one log row.
pub enum RowOutcome {
    /// Merged as stored.
    Keep,
    /// Merged; some of its changes were already known (a push retried after
    /// a cut): the row keeps only the new ones.
    Rewrite { changes: usize, packed: Vec<u8> },
    /// Merged as stored; its bytes hold a saved document, whose changes
    /// the row now counts (it counted chunks when pushed).
    Recount { changes: usize },
    /// Every change was already known: the row goes.
    Duplicate,
    /// Refused, with the code and message its device is told.
    Rejected(ErrorCode, String),
}

impl RowOutcome {
    /// Its changes went into the document (kept, rewritten or recounted).
    pub fn applied(&self) -> bool {
        matches!(
            self,
            RowOutcome::Keep | RowOutcome::Rewrite { .. } | RowOutcome::Recount { .. }
        )
    }
}

pub struct DocOutcome {
    pub doc_id: InspectionId,
    pub territory: TerritoryId,
    pub merged: Option<Merged>,
    pub rows: Vec<(i64, RowOutcome)>,
}

/// The code and message a device is told for a refused row.
pub fn rejection(e: &StoreError) -> (ErrorCode, String) {
    (
        e.content_code().unwrap_or(ErrorCode::InvalidDocument),
        e.to_string(),
    )
}

/// Applies one row's changes to `insp`; on refusal `insp` is left as it was.
fn merge_row(insp: &mut Inspection, doc_id: InspectionId, row: Pending) -> RowOutcome {
    let merged = (|| -> Result<RowOutcome> {
        let raw = unpack(row.bytes.unwrap_or_default())?;
        if insp.automerge().get_heads().is_empty() && is_saved_document(&raw) {
            return take_saved(insp, doc_id, &raw);
        }
        let parsed = changes_of_chunks(&raw).map_err(|e| StoreError::MalformedChange {
            doc: doc_id.to_string(),
            reason: e.to_string(),
        })?;
        let total = parsed.len();
        // A saved document is one chunk holding many changes: the row
        // counts its changes once they are known.
        let chunks = bilan_shared::doc::count_chunks(&raw).unwrap_or(total);
        let mut seen = HashSet::new();
        let new: Vec<Change> = parsed
            .into_iter()
            .filter(|c| {
                insp.automerge().get_change_by_hash(&c.hash()).is_none() && seen.insert(c.hash())
            })
            .collect();
        if new.is_empty() {
            return Ok(RowOutcome::Duplicate);
        }
        let n = new.len();
        let repacked = if n < total {
            Some(pack(&bundle(&new))?)
        } else {
            None
        };
        let before = insp.clone();
        let applied = insp
            .apply_changes(new)
            .map_err(StoreError::from)
            .and_then(|()| {
                if insp.automerge().get_missing_deps(&[]).is_empty() {
                    Ok(())
                } else {
                    Err(StoreError::MissingDependencies(doc_id.to_string()))
                }
            });
        if let Err(e) = applied {
            *insp = before;
            return Err(e);
        }
        Ok(match repacked {
            Some(packed) => RowOutcome::Rewrite { changes: n, packed },
            None if chunks != total => RowOutcome::Recount { changes: total },
            None => RowOutcome::Keep,
        })
    })();
    merged.unwrap_or_else(|e| {
        let (code, message) = rejection(&e);
        RowOutcome::Rejected(code, message)
    })
}

/// A saved document for a document the server has none of yet (a cold
/// push): loaded as it is, which is the document its changes would build,
/// instead of split into changes and applied one by one (the load is
/// needed to split them anyway: this halves the merge of a cold push).
fn take_saved(insp: &mut Inspection, doc_id: InspectionId, raw: &[u8]) -> Result<RowOutcome> {
    let loaded = Inspection::load(raw).map_err(|e| StoreError::MalformedChange {
        doc: doc_id.to_string(),
        reason: e.to_string(),
    })?;
    let changes = loaded.automerge().get_changes(&[]).len();
    let chunks = bilan_shared::doc::count_chunks(raw).unwrap_or(changes);
    *insp = loaded;
    Ok(if chunks == changes {
        RowOutcome::Keep
    } else {
        RowOutcome::Recount { changes }
    })
}

impl Base {
    /// The base of a document as its backend loaded it (with the log
    /// bundles after its snapshot): none yet, loaded, or a stored document
    /// that does not load (its new rows are refused); a storage failure is
    /// returned as is.
    pub fn of(loaded: Result<Option<(TerritoryId, Inspection, i64)>>) -> Result<Base> {
        match loaded {
            Ok(None) => Ok(Base::New),
            Ok(Some((_, insp, behind))) => Ok(Base::Loaded {
                insp: Box::new(insp),
                behind,
            }),
            Err(e) if e.content_code().is_some() => {
                let (code, message) = rejection(&e);
                Ok(Base::Broken(code, message))
            }
            Err(e) => Err(e),
        }
    }
}

/// A batch of log rows `(seq, territory, document, bytes)`, in `seq`
/// order, grouped by document (bases still to load).
pub fn group_rows(
    rows: impl IntoIterator<Item = (i64, String, String, Option<Vec<u8>>)>,
) -> Result<Vec<Group>> {
    let mut groups: Vec<Group> = Vec::new();
    let mut by_doc: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for (seq, territory, doc, bytes) in rows {
        let i = match by_doc.get(&doc) {
            Some(&i) => i,
            None => {
                let doc_id: InspectionId = doc
                    .parse()
                    .map_err(|_| StoreError::Corrupt(format!("journal : document « {doc} »")))?;
                let territory: TerritoryId = territory.parse().map_err(|_| {
                    StoreError::Corrupt(format!("journal : territoire « {territory} »"))
                })?;
                groups.push(Group {
                    doc_id,
                    territory,
                    base: Base::New,
                    rows: Vec::new(),
                });
                by_doc.insert(doc, groups.len() - 1);
                groups.len() - 1
            }
        };
        groups[i].rows.push(Pending { seq, bytes });
    }
    Ok(groups)
}

/// Merges one document's rows of a batch (on a rayon thread).
pub fn merge_group(g: Group) -> DocOutcome {
    let mut out = DocOutcome {
        doc_id: g.doc_id,
        territory: g.territory,
        merged: None,
        rows: Vec::with_capacity(g.rows.len()),
    };
    let (mut insp, behind) = match g.base {
        Base::New => (Inspection::empty(), 0),
        Base::Loaded { insp, behind } => (*insp, behind),
        Base::Broken(code, message) => {
            out.rows = g
                .rows
                .into_iter()
                .map(|r| (r.seq, RowOutcome::Rejected(code, message.clone())))
                .collect();
            return out;
        }
    };
    let mut accepted = 0;
    for row in g.rows {
        let seq = row.seq;
        let outcome = merge_row(&mut insp, g.doc_id, row);
        if outcome.applied() {
            accepted += 1;
        }
        out.rows.push((seq, outcome));
    }
    if accepted > 0 {
        match Merged::derive(g.doc_id, &insp, behind + accepted >= SNAPSHOT_AFTER) {
            Ok(m) => out.merged = Some(m),
            Err(e) => out.reject_merged(&e),
        }
    }
    out
}

impl DocOutcome {
    /// The merged rows make the document invalid: all of them are refused.
    pub fn reject_merged(&mut self, e: &StoreError) {
        let (code, message) = rejection(e);
        self.merged = None;
        for (_, outcome) in &mut self.rows {
            if outcome.applied() {
                *outcome = RowOutcome::Rejected(code, message.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::pack;
    use bilan_shared::doc::{Author, NewInspection};
    use bilan_shared::domain::Rating;
    use bilan_shared::ids::*;

    /// A never-synced inspection pushed as its saved document (one chunk
    /// of several changes) is merged like its changes would be, and its row
    /// then counts the changes; pushed again, it is a duplicate.
    #[test]
    fn a_saved_document_row_merges_and_counts_its_changes() {
        let author = Author::device(DeviceId::new(), UserId::new(), "Julie");
        let new = NewInspection {
            inspection_id: InspectionId::new(),
            territory_id: TerritoryId::new(),
            office_id: OfficeId::new(),
            complex_id: ComplexId::new(),
        };
        let (mut insp, _) =
            Inspection::create(&author, new.clone(), bilan_shared::Catalogue::current()).unwrap();
        insp.edit(&author, |d| d.rate("B3010", Rating::D)).unwrap();
        let saved = insp.save();
        let changes = insp.automerge().get_changes(&[]).len();
        assert!(changes >= 2);
        let row = |seq| Pending {
            seq,
            bytes: Some(pack(&saved).unwrap()),
        };
        let out = merge_group(Group {
            doc_id: new.inspection_id,
            territory: new.territory_id,
            base: Base::New,
            rows: vec![row(1), row(2)],
        });
        let merged = out.merged.expect("the document is merged");
        assert_eq!(merged.doc.components["B3010"].rating, Some(Rating::D));
        assert!(matches!(out.rows[0].1, RowOutcome::Recount { changes: c } if c == changes));
        assert!(matches!(out.rows[1].1, RowOutcome::Duplicate));
    }
}
