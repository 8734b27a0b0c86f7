//! The merger: folds accepted pushes into the documents and the projection.
//!
//! A push is answered as soon as its changes parse and are durable in the log
//! (`store.rs`); the merging itself (automerge apply, conflict count, the
//! projection rows the review pages read) runs here, on one background
//! thread, in log order, a batch of rows at a time under the write lock. So a
//! device is not kept waiting for the merges of every other device that
//! pushed at the same moment.
//!
//! The merger's progress is `merged_seq` (in `meta`): every log row up to it
//! is merged, refused or dropped as a duplicate, in the same transaction as
//! its projection. Pulls serve rows up to it only, so a change the merger
//! refuses (it breaks its author's order, depends on changes never sent, or
//! makes the inspection invalid for the territory) is kept aside with its
//! reason and never reaches another device; its own device is told on its
//! next sync. Reads of the projection call [`StoreCore::settle`] to see
//! everything committed before them.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use automerge::{Change, ReadDoc};
use bilan_shared::Inspection;
use bilan_shared::doc::{bundle, changes_of_chunks};
use bilan_shared::ids::{InspectionId, TerritoryId};
use bilan_shared::protocol::ErrorCode;
use rayon::prelude::*;
use rusqlite::{Connection, OptionalExtension, params};

use crate::error::StoreError;
use crate::store::{Merged, SNAPSHOT_AFTER, SqliteStore, StoreCore, pack, unpack};

type Result<T> = std::result::Result<T, StoreError>;

/// Log rows merged per batch. The write lock is held for one batch, so a
/// push waits at most that long for the merger (about 70 ms on this 2-core
/// machine for rows of new 60-component inspections).
const MERGE_BATCH: i64 = 64;

/// How long a read waits for the merger before serving what is merged.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);
/// The same while the merger is failing (it retries every second).
const SETTLE_WHILE_FAILING: Duration = Duration::from_secs(2);

/// How far the log is committed and merged; guarded by `StoreCore::progress`.
#[derive(Debug, Default)]
pub(crate) struct Progress {
    /// Highest log seq committed.
    committed: i64,
    /// Highest log seq merged (`meta.merged_seq`).
    merged: i64,
    /// The last batch failed (disk full, read-only database): reads stop
    /// waiting for the merger until a batch succeeds again.
    failing: bool,
    stop: bool,
}

impl Progress {
    /// The progress stored in the database (at open).
    pub(crate) fn read(conn: &Connection) -> Result<Self> {
        let merged = merged_seq(conn)?;
        let committed: i64 =
            conn.query_row("SELECT COALESCE(MAX(seq), 0) FROM log", [], |r| r.get(0))?;
        Ok(Self {
            committed: committed.max(merged),
            merged,
            ..Self::default()
        })
    }
}

/// The log seq up to which everything is merged.
pub(crate) fn merged_seq(conn: &Connection) -> Result<i64> {
    Ok(conn
        .prepare_cached("SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'merged_seq'")?
        .query_row([], |r| r.get(0))
        .optional()?
        .unwrap_or(0))
}

/// Records the merger's progress, in the transaction of what it merged.
pub(crate) fn set_merged_seq(conn: &Connection, seq: i64) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO meta (key, value) VALUES ('merged_seq', ?1)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
    )?
    .execute([seq.to_string()])?;
    Ok(())
}

/// Starts the merger thread; it stops when the store is dropped.
pub(crate) fn spawn(core: Arc<StoreCore>) -> Result<std::thread::JoinHandle<()>> {
    Ok(std::thread::Builder::new()
        .name("bilan-merger".into())
        .spawn(move || run(&core))?)
}

fn run(core: &StoreCore) {
    loop {
        {
            let mut p = core.progress();
            while !p.stop && p.merged >= p.committed {
                // The timeout is a safety net: commits notify.
                p = core
                    .progress_changed
                    .wait_timeout(p, Duration::from_secs(5))
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            if p.stop {
                return;
            }
        }
        let outcome = {
            let mut conn = core.lock();
            core.merge_batch(&mut conn)
        };
        let failing = outcome.is_err();
        if let Err(e) = outcome {
            tracing::warn!(error = %e, "merge failed; retrying in a second");
        }
        let mut p = core.progress();
        if p.failing != failing {
            p.failing = failing;
            core.progress_changed.notify_all();
        }
        if failing && !p.stop {
            drop(
                core.progress_changed
                    .wait_timeout(p, Duration::from_secs(1))
                    .unwrap_or_else(|e| e.into_inner()),
            );
        }
    }
}

/// A log row's seq and its changes as its push parsed them.
pub(crate) type ParsedRow = (i64, Vec<Change>);

/// Raw bytes of handed-over changes kept at most (beyond, the merger reads
/// and parses rows from the database, as after a restart).
const HANDED_OVER_MAX_BYTES: usize = 48 << 20;

/// Changes of committed rows, parsed by their push, waiting for the merger:
/// it would otherwise decompress and parse every row a second time.
#[derive(Default)]
pub(crate) struct HandedOver {
    rows: HashMap<i64, Vec<Change>>,
    bytes: usize,
}

/// A log row waiting for the merger.
struct Pending {
    seq: i64,
    bytes: Option<Vec<u8>>,
    parsed: Option<Vec<Change>>,
}

/// One document's rows of a batch, with the document as merged before them.
struct Group {
    doc_id: InspectionId,
    territory: TerritoryId,
    base: Base,
    rows: Vec<Pending>,
}

enum Base {
    New,
    Loaded {
        insp: Box<Inspection>,
        behind: i64,
    },
    /// The stored document does not load: its new rows cannot be merged.
    Broken(ErrorCode, String),
}

/// What the merger does with one log row.
enum RowOutcome {
    /// Merged as stored.
    Keep,
    /// Merged; some of its changes were already known (a push retried after
    /// a cut): the row keeps only the new ones.
    Rewrite { changes: usize, packed: Vec<u8> },
    /// Every change was already known: the row goes.
    Duplicate,
    /// Refused, with the code and message its device is told.
    Rejected(ErrorCode, String),
}

struct DocOutcome {
    doc_id: InspectionId,
    territory: TerritoryId,
    merged: Option<Merged>,
    rows: Vec<(i64, RowOutcome)>,
}

/// An error code as stored in `log.rejected` (its wire name).
fn code_name(code: ErrorCode) -> String {
    serde_json::to_value(code)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// The code and message a device is told for a refused row.
fn rejection(e: &StoreError) -> (ErrorCode, String) {
    (
        e.content_code().unwrap_or(ErrorCode::InvalidDocument),
        e.to_string(),
    )
}

/// Applies one row's changes to `insp`; on refusal `insp` is left as it was.
fn merge_row(insp: &mut Inspection, doc_id: InspectionId, row: Pending) -> RowOutcome {
    let merged = (|| -> Result<RowOutcome> {
        let parsed = match row.parsed {
            Some(parsed) => parsed,
            None => changes_of_chunks(&unpack(row.bytes.unwrap_or_default())?).map_err(|e| {
                StoreError::MalformedChange {
                    doc: doc_id.to_string(),
                    reason: e.to_string(),
                }
            })?,
        };
        let total = parsed.len();
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
            None => RowOutcome::Keep,
        })
    })();
    merged.unwrap_or_else(|e| {
        let (code, message) = rejection(&e);
        RowOutcome::Rejected(code, message)
    })
}

/// Merges one document's rows of a batch (on a rayon thread).
fn merge_group(g: Group) -> DocOutcome {
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
        if matches!(outcome, RowOutcome::Keep | RowOutcome::Rewrite { .. }) {
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
    fn reject_merged(&mut self, e: &StoreError) {
        let (code, message) = rejection(e);
        self.merged = None;
        for (_, outcome) in &mut self.rows {
            if matches!(outcome, RowOutcome::Keep | RowOutcome::Rewrite { .. }) {
                *outcome = RowOutcome::Rejected(code, message.clone());
            }
        }
    }
}

impl StoreCore {
    /// Keeps committed rows' parsed changes for the merger, within
    /// [`HANDED_OVER_MAX_BYTES`].
    pub(crate) fn hand_over(&self, rows: Vec<ParsedRow>) {
        let mut h = self.handed_over.lock().unwrap_or_else(|p| p.into_inner());
        for (seq, changes) in rows {
            let bytes: usize = changes.iter().map(|c| c.raw_bytes().len()).sum();
            if h.bytes + bytes > HANDED_OVER_MAX_BYTES {
                break;
            }
            h.bytes += bytes;
            h.rows.insert(seq, changes);
        }
    }

    /// Takes a row's handed-over changes, and forgets any row at or before
    /// `merged` (merged by another process on the same database).
    fn take_handed_over(&self, seqs: &[i64], merged: i64) -> Vec<Option<Vec<Change>>> {
        let mut h = self.handed_over.lock().unwrap_or_else(|p| p.into_inner());
        let taken = seqs.iter().map(|s| h.rows.remove(s)).collect();
        h.rows.retain(|&s, _| s > merged);
        h.bytes = h.rows.values().flatten().map(|c| c.raw_bytes().len()).sum();
        taken
    }

    pub(crate) fn progress(&self) -> std::sync::MutexGuard<'_, Progress> {
        self.progress.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A commit of log rows up to `seq`: wakes the merger.
    pub(crate) fn note_committed(&self, seq: i64) {
        let mut p = self.progress();
        if seq > p.committed {
            p.committed = seq;
            self.progress_changed.notify_all();
        }
    }

    /// A commit of the merger's progress: wakes the readers waiting for it.
    pub(crate) fn note_merged(&self, seq: i64) {
        let mut p = self.progress();
        if seq > p.merged {
            p.merged = seq;
            p.committed = p.committed.max(seq);
            self.progress_changed.notify_all();
        }
    }

    /// The log seq up to which everything is merged.
    pub fn merged(&self) -> i64 {
        self.progress().merged
    }

    pub(crate) fn merger_failing(&self) -> bool {
        self.progress().failing
    }

    pub(crate) fn stop_merger(&self) {
        self.progress().stop = true;
        self.progress_changed.notify_all();
    }

    /// Waits until the merger has reached every row committed before the
    /// call (at most [`SETTLE_TIMEOUT`], or [`SETTLE_WHILE_FAILING`] while
    /// it fails), so a read of the projection sees what was pushed before it.
    pub fn settle(&self) {
        let started = Instant::now();
        let mut p = self.progress();
        let target = p.committed;
        while p.merged < target && !p.stop {
            let now = Instant::now();
            let deadline = started
                + if p.failing {
                    SETTLE_WHILE_FAILING
                } else {
                    SETTLE_TIMEOUT
                };
            if now >= deadline {
                tracing::warn!(
                    merged = p.merged,
                    target,
                    "merger behind: serving what is merged"
                );
                return;
            }
            p = self
                .progress_changed
                .wait_timeout(p, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Merges everything pending, holding the write lock throughout (a
    /// server edit needs the document with nothing left behind).
    pub(crate) fn drain(&self, conn: &mut Connection) -> Result<()> {
        while self.merge_batch(conn)? {}
        Ok(())
    }

    /// Merges the next batch of pending rows in one transaction. Its commit
    /// waits for the disk like a push's: committing without it
    /// (`synchronous=NORMAL`) left the next push's commit to write out
    /// everything the merger had written (one edit after a cold push of
    /// 10,000 inspections went from 44 to 81-95 ms). Returns false when
    /// nothing was pending.
    fn merge_batch(&self, conn: &mut Connection) -> Result<bool> {
        let started = Instant::now();
        match self.merge_batch_in(conn)? {
            Some((last, rows)) => {
                self.note_merged(last);
                tracing::debug!(
                    rows,
                    ms = started.elapsed().as_secs_f64() * 1000.0,
                    "merge batch"
                );
                Ok(true)
            }
            None => {
                // Nothing pending under the write lock: all committed is merged.
                let committed = self.progress().committed;
                let stored = merged_seq(conn)?;
                self.note_merged(committed.max(stored));
                Ok(false)
            }
        }
    }

    /// One batch: the pending rows (read in the transaction, which is taken
    /// for writing at once, so that a second process on the same database,
    /// a console command, never merges the same rows), their documents as
    /// merged so far, the merge on every core, then the writes. Returns the
    /// new progress and the rows merged, or `None` when nothing was pending.
    fn merge_batch_in(&self, conn: &mut Connection) -> Result<Option<(i64, usize)>> {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let from = merged_seq(&tx)?;
        let rows: Vec<(i64, String, String, Option<Vec<u8>>)> = tx
            .prepare_cached(
                "SELECT seq, territory_id, doc_id, bytes FROM log WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            )?
            .query_map(params![from, MERGE_BATCH], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?
            .collect::<rusqlite::Result<_>>()?;
        let Some(last) = rows.last().map(|r| r.0) else {
            return Ok(None);
        };
        let n_rows = rows.len();
        let seqs: Vec<i64> = rows.iter().map(|r| r.0).collect();
        let handed = self.take_handed_over(&seqs, from);
        let mut groups: Vec<Group> = Vec::new();
        let mut by_doc: HashMap<String, usize> = HashMap::new();
        for ((seq, territory, doc, bytes), parsed) in rows.into_iter().zip(handed) {
            let i = match by_doc.get(&doc) {
                Some(&i) => i,
                None => {
                    let doc_id: InspectionId = doc
                        .parse()
                        .map_err(|_| StoreError::BadRequest(format!("log: document {doc}")))?;
                    let territory: TerritoryId = territory.parse().map_err(|_| {
                        StoreError::BadRequest(format!("log: territory {territory}"))
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
            // Handed-over changes need not be read back from the database.
            let bytes = if parsed.is_some() { None } else { bytes };
            groups[i].rows.push(Pending { seq, bytes, parsed });
        }
        for g in &mut groups {
            g.base = match SqliteStore::load_doc_counted(&tx, g.doc_id, from) {
                Ok(None) => Base::New,
                Ok(Some((_, insp, behind))) => Base::Loaded {
                    insp: Box::new(insp),
                    behind,
                },
                Err(e) if e.content_code().is_some() => {
                    let (code, message) = rejection(&e);
                    Base::Broken(code, message)
                }
                Err(e) => return Err(e),
            };
        }
        // Documents merge on the rayon pool while this thread writes each
        // one as it comes: SQL overlaps with merging instead of following it.
        let (results, merged) = std::sync::mpsc::sync_channel::<DocOutcome>(16);
        let written = std::thread::scope(|s| {
            s.spawn(move || {
                groups
                    .into_par_iter()
                    .for_each_with(results, |out, g| drop(out.send(merge_group(g))));
            });
            let mut written = Ok(());
            for o in merged {
                if written.is_ok() {
                    written = write_outcome(&tx, o, last);
                }
            }
            written
        });
        written?;
        set_merged_seq(&tx, last)?;
        tx.commit()?;
        Ok(Some((last, n_rows)))
    }
}

/// Writes one document's merge: its projection and snapshot, then what
/// becomes of each of its rows.
fn write_outcome(tx: &Connection, mut o: DocOutcome, last: i64) -> Result<()> {
    if let Some(m) = &o.merged {
        match SqliteStore::project(tx, o.territory, m) {
            Ok(()) => {
                if let Some(snapshot) = &m.snapshot {
                    SqliteStore::write_snapshot(tx, o.doc_id, snapshot, last)?;
                }
            }
            Err(e) if e.content_code().is_some() => o.reject_merged(&e),
            Err(e) => return Err(e),
        }
    }
    for (seq, outcome) in o.rows {
        match outcome {
            RowOutcome::Keep => {}
            RowOutcome::Rewrite { changes, packed } => {
                tx.prepare_cached("UPDATE log SET changes = ?2, bytes = ?3 WHERE seq = ?1")?
                    .execute(params![seq, changes as i64, packed])?;
            }
            RowOutcome::Duplicate => {
                tx.prepare_cached("DELETE FROM log WHERE seq = ?1")?
                    .execute([seq])?;
            }
            RowOutcome::Rejected(code, message) => {
                let code = code_name(code);
                tracing::warn!(doc = %o.doc_id, seq, code, %message, "changes refused by the merger");
                tx.prepare_cached("UPDATE log SET rejected = ?2, reason = ?3 WHERE seq = ?1")?
                    .execute(params![seq, code, message])?;
            }
        }
    }
    Ok(())
}
