//! The merger: folds accepted pushes into the documents and the projection.
//!
//! A push is answered as soon as its bytes are whole automerge chunks and
//! durable in the log (`store.rs`); the merging itself (parsing, automerge
//! apply, conflict count, the projection rows the review pages read) runs
//! here, in log order, a batch of rows at a time: computed on a low-priority
//! pool without the write lock, written under it. So a device is not kept
//! waiting for the merges of every other device that pushed at the same
//! moment, nor for the parsing of its own changes.
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

/// Log rows merged per batch: one commit (one fsync) each. The write lock is
/// held only while a batch's outcome is written.
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

/// The merge pool: one thread per core, below the priority of the threads
/// that answer requests (nice 10, `SCHED_BATCH`, on Linux), so that merging,
/// a background job, does not slow down devices' pushes and pulls on a busy
/// server. It only computes: the writes happen on the merger thread.
pub(crate) fn pool() -> Result<rayon::ThreadPool> {
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
        let outcome = core.merge_in_background();
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

/// A log row waiting for the merger.
struct Pending {
    seq: i64,
    bytes: Option<Vec<u8>>,
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
        let parsed = changes_of_chunks(&unpack(row.bytes.unwrap_or_default())?).map_err(|e| {
            StoreError::MalformedChange {
                doc: doc_id.to_string(),
                reason: e.to_string(),
            }
        })?;
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
        loop {
            let started = Instant::now();
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let from = merged_seq(&tx)?;
            let Some(batch) = read_batch(&tx, from)? else {
                // Nothing pending under the write lock: all committed is merged.
                drop(tx);
                let committed = self.progress().committed;
                self.note_merged(committed.max(from));
                return Ok(());
            };
            let (last, rows) = (batch.last, batch.rows);
            let outcomes = self.merge_groups(batch.groups);
            write_batch(&tx, last, outcomes)?;
            tx.commit()?;
            self.note_merged(last);
            log_batch(rows, started, None);
        }
    }

    /// The merger thread's batch: the pending rows and their documents are
    /// read from a read connection and merged on the merge pool without the
    /// write lock, so pushes keep committing meanwhile; the lock is taken
    /// only to write the outcome (projection rows, snapshots, refusals) and
    /// the new progress. If anything merged those rows in between (a server
    /// edit drains under the lock), the outcome is dropped and the batch
    /// starts again. Its commit waits for the disk like a push's: committing
    /// without it (`synchronous=NORMAL`) left the next push's commit to write
    /// out everything the merger had written. Returns false when nothing was
    /// pending.
    fn merge_in_background(&self) -> Result<bool> {
        let started = Instant::now();
        // Rows committed before the read below are all visible to it.
        let committed = self.progress().committed;
        let (from, batch) = {
            let conn = self.reader()?;
            let tx = conn.unchecked_transaction()?;
            let from = merged_seq(&tx)?;
            (from, read_batch(&tx, from)?)
        };
        let Some(batch) = batch else {
            self.note_merged(committed.max(from));
            return Ok(false);
        };
        let (last, rows) = (batch.last, batch.rows);
        let outcomes = self.merge_groups(batch.groups);
        let merged_at = started.elapsed();
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        if merged_seq(&tx)? != from {
            return Ok(true);
        }
        write_batch(&tx, last, outcomes)?;
        tx.commit()?;
        drop(conn);
        self.note_merged(last);
        log_batch(rows, started, Some(merged_at));
        Ok(true)
    }

    /// Merges a batch's documents on the merge pool (below the priority of
    /// request threads where the system allows it).
    fn merge_groups(&self, groups: Vec<Group>) -> Vec<DocOutcome> {
        self.merge_pool
            .install(|| groups.into_par_iter().map(merge_group).collect())
    }
}

fn log_batch(rows: usize, started: Instant, merged: Option<Duration>) {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    tracing::debug!(
        rows,
        ms = ms(started.elapsed()),
        unlocked_ms = merged.map(ms),
        "merge batch"
    );
}

/// Pending log rows of one batch, grouped by document with each document as
/// merged so far.
struct Batch {
    last: i64,
    rows: usize,
    groups: Vec<Group>,
}

/// Reads the next batch of rows after `from` and their documents' bases, in
/// one read transaction (or the write transaction that will store it).
fn read_batch(tx: &Connection, from: i64) -> Result<Option<Batch>> {
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
    let mut groups: Vec<Group> = Vec::new();
    let mut by_doc: HashMap<String, usize> = HashMap::new();
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
    for g in &mut groups {
        g.base = match SqliteStore::load_doc_counted(tx, g.doc_id, from) {
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
    Ok(Some(Batch {
        last,
        rows: n_rows,
        groups,
    }))
}

/// Writes a batch's outcome and the merger's new progress.
fn write_batch(tx: &Connection, last: i64, outcomes: Vec<DocOutcome>) -> Result<()> {
    for o in outcomes {
        write_outcome(tx, o, last)?;
    }
    set_merged_seq(tx, last)
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
