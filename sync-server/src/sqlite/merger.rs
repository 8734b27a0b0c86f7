//! The merger: folds accepted pushes into the documents and the projection.
//!
//! A push is answered as soon as its bytes are whole automerge chunks and
//! durable in the log (`log.rs`); the merging itself (parsing, automerge
//! apply, conflict count: [`crate::merge`]; the projection rows the review
//! pages read: `projection.rs`) is driven from here, in log order, a batch of rows at a time: computed on a low-priority
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

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rayon::prelude::*;
use rusqlite::{Connection, params};

use super::core::{Result, StoreCore, merged_seq, set_merged_seq};
use super::{projection, snapshots};
use crate::codec::code_name;
use crate::merge::{Base, DocOutcome, Group, RowOutcome, group_rows, merge_group};

/// Log rows merged per batch: one commit (one fsync) each. The write lock is
/// held only while a batch's outcome is written.
const MERGE_BATCH: i64 = 64;

/// Starts the merger thread; it stops when the store is dropped.
pub(super) fn spawn(core: Arc<StoreCore>) -> Result<std::thread::JoinHandle<()>> {
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

impl StoreCore {
    /// Merges everything pending, holding the write lock throughout (a
    /// server edit needs the document with nothing left behind).
    pub(super) fn drain(&self, conn: &mut Connection) -> Result<()> {
        loop {
            let started = Instant::now();
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let from = merged_seq(&tx)?;
            let Some(batch) = read_batch(&tx, from, &HashSet::new())? else {
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

    /// The merger thread's batches: the pending rows and their documents are
    /// read from a read connection and merged on the merge pool without the
    /// write lock, so pushes keep committing meanwhile; the lock is taken
    /// only to write the outcome (projection rows, snapshots, refusals) and
    /// the new progress. While one batch is written, the next is read and
    /// merged, as long as it touches none of the documents being written
    /// (their bases would be stale): a cold push of a thousand inspections
    /// keeps both cores merging instead of waiting for each write. If
    /// anything merged those rows in between (a server edit drains under
    /// the lock), the outcome is dropped and the batch starts again. Its
    /// commit waits for the disk like a push's: committing without it
    /// (`synchronous=NORMAL`) left the next push's commit to write out
    /// everything the merger had written. Returns false when nothing was
    /// pending.
    fn merge_in_background(&self) -> Result<bool> {
        let mut started = Instant::now();
        // Rows committed before the read below are all visible to it.
        let committed = self.progress().committed;
        let (from, batch) = {
            let conn = self.reader()?;
            let tx = conn.unchecked_transaction()?;
            let from = merged_seq(&tx)?;
            (from, read_batch(&tx, from, &HashSet::new())?)
        };
        let Some(mut batch) = batch else {
            self.note_merged(committed.max(from));
            return Ok(false);
        };
        let mut from = from;
        let mut outcomes = self.merge_groups(std::mem::take(&mut batch.groups));
        loop {
            let merged_at = started.elapsed();
            let mut next = {
                let conn = self.reader()?;
                let tx = conn.unchecked_transaction()?;
                read_batch(&tx, batch.last, &batch.docs)?
            };
            let next_groups = next.as_mut().map(|n| std::mem::take(&mut n.groups));
            let (written, next_outcomes) = std::thread::scope(|s| {
                let computing = next_groups.map(|g| s.spawn(move || self.merge_groups(g)));
                let written = self.write_locked(from, batch.last, outcomes);
                let next_outcomes = computing.map(|h| h.join().expect("merge thread"));
                (written, next_outcomes)
            });
            if !written? {
                return Ok(true);
            }
            self.note_merged(batch.last);
            log_batch(batch.rows, started, Some(merged_at));
            match (next, next_outcomes) {
                (Some(n), Some(o)) => {
                    started = Instant::now();
                    from = batch.last;
                    batch = n;
                    outcomes = o;
                }
                _ => return Ok(true),
            }
        }
    }

    /// Writes a batch's outcome under the write lock, if the merger's
    /// progress is still where the batch started; false if it moved.
    fn write_locked(&self, from: i64, last: i64, outcomes: Vec<DocOutcome>) -> Result<bool> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        if merged_seq(&tx)? != from {
            return Ok(false);
        }
        write_batch(&tx, last, outcomes)?;
        tx.commit()?;
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
    /// The documents of its rows.
    docs: HashSet<String>,
    groups: Vec<Group>,
}

/// Reads the next batch of rows after `from` and their documents' bases, in
/// one read transaction (or the write transaction that will store it). The
/// batch stops before the first row of a document in `busy` (a batch not
/// written yet): none if the very first row is one.
fn read_batch(tx: &Connection, from: i64, busy: &HashSet<String>) -> Result<Option<Batch>> {
    let mut rows: Vec<(i64, String, String, Option<Vec<u8>>)> = tx
        .prepare_cached(
            "SELECT seq, territory_id, doc_id, bytes FROM log WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        )?
        .query_map(params![from, MERGE_BATCH], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    if let Some(stop) = rows.iter().position(|r| busy.contains(&r.2)) {
        rows.truncate(stop);
    }
    let Some(last) = rows.last().map(|r| r.0) else {
        return Ok(None);
    };
    let n_rows = rows.len();
    let docs = rows.iter().map(|r| r.2.clone()).collect();
    let mut groups = group_rows(rows)?;
    for g in &mut groups {
        g.base = Base::of(snapshots::load_doc_counted(tx, g.doc_id, from))?;
    }
    Ok(Some(Batch {
        last,
        rows: n_rows,
        docs,
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
        match projection::project(tx, o.territory, m) {
            Ok(()) => {
                if let Some(snapshot) = &m.snapshot {
                    snapshots::write_snapshot(tx, o.doc_id, snapshot, last)?;
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
            RowOutcome::Recount { changes } => {
                tx.prepare_cached("UPDATE log SET changes = ?2 WHERE seq = ?1")?
                    .execute(params![seq, changes as i64])?;
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
