//! The sync log's write side: pushes appended durably with group commit
//! (devices syncing at the same moment share one fsync), server edits'
//! bundles, and log compaction; with the [`SyncLog`] implementation.

use bilan_shared::doc::now_ms;
use bilan_shared::ids::{InspectionId, TerritoryId};
use rusqlite::{Connection, OptionalExtension, params};

use super::core::{Result, StoreCore, merged_seq, parse_id};
use super::store::SqliteStore;
use super::{pull, snapshots};
use crate::codec::checked_snapshot;
use crate::error::StoreError;
use crate::storage::{CompactReport, PreparedDoc, PullPage, PushJob, SyncLog};

impl SyncLog for SqliteStore {
    fn push(&self, territory: TerritoryId, device: &str, docs: Vec<PreparedDoc>) -> Result<u32> {
        if docs.is_empty() {
            return Ok(0);
        }
        push(self, territory, device, docs)
    }

    fn pull(
        &self,
        territory: TerritoryId,
        device: &str,
        cursor: u64,
        page_bytes: u64,
        settle: bool,
    ) -> Result<PullPage> {
        if settle {
            self.settle();
        }
        let upto = self.merged();
        // A failing merger (disk full) would make devices come back forever.
        let look_ahead = !self.merger_failing();
        let conn = self.reader()?;
        pull::pull(
            &conn, territory, device, cursor, upto, page_bytes, look_ahead,
        )
    }

    fn change_count(&self, territory: TerritoryId) -> Result<u64> {
        self.settle();
        Ok(self.lock().query_row(
            "SELECT COALESCE(SUM(changes), 0) FROM log WHERE territory_id = ?1 AND rejected IS NULL",
            [territory.to_string()],
            |r| r.get::<_, i64>(0),
        )? as u64)
    }

    fn compact(&self) -> Result<CompactReport> {
        compact_all(self)
    }
}

/// The write half of a sync, with group commit: the push joins the
/// queue; whoever holds the write lock next writes every queued push in
/// one transaction (each in its own savepoint, so one bad request fails
/// alone) and one commit, one fsync, then answers each. Devices syncing at
/// the same moment share the fsync instead of queueing behind each other's.
fn push(
    core: &StoreCore,
    territory: TerritoryId,
    device: &str,
    docs: Vec<PreparedDoc>,
) -> Result<u32> {
    if docs.is_empty() {
        return Ok(0);
    }
    let answer = PushJob::enqueue(&core.pushes, territory, device, docs);
    let mut conn = core.lock();
    // A leader that held the lock before us answers before releasing it.
    if let Ok(done) = answer.try_recv() {
        return done;
    }
    write_group(core, &mut conn, PushJob::take_all(&core.pushes));
    drop(conn);
    PushJob::outcome(answer)
}

/// Writes queued pushes in one transaction and answers each.
fn write_group(core: &StoreCore, conn: &mut Connection, jobs: Vec<PushJob>) {
    let group = jobs.len();
    let started = std::time::Instant::now();
    let mut tx = match conn.transaction() {
        Ok(tx) => tx,
        Err(e) => {
            let e = StoreError::from(e);
            for job in jobs {
                let _ = job.reply.send(Err(e.duplicate()));
            }
            return;
        }
    };
    let mut answers = Vec::with_capacity(group);
    let mut last_seq = 0i64;
    let mut queue = jobs.into_iter();
    while let Some(job) = queue.next() {
        let outcome = tx.savepoint().map_err(StoreError::from).and_then(|sp| {
            let (n, last) = write_push(&sp, job.territory, &job.device, job.docs)?;
            sp.commit()?;
            last_seq = last_seq.max(last);
            Ok(n)
        });
        match outcome {
            // SQLite rolled the whole transaction back (disk full, I/O
            // error): the pushes written before are gone too, so every
            // push of the group fails with this error and is retried.
            Err(e) if tx.is_autocommit() => {
                let replies = answers
                    .into_iter()
                    .map(|(reply, _)| reply)
                    .chain(std::iter::once(job.reply))
                    .chain(queue.map(|j| j.reply));
                for reply in replies {
                    let _ = reply.send(Err(e.duplicate()));
                }
                tracing::warn!(group, error = %e, "push group rolled back by SQLite");
                return;
            }
            outcome => answers.push((job.reply, outcome)),
        }
    }
    let written = started.elapsed();
    match tx.commit() {
        Ok(()) => {
            core.note_committed(last_seq);
            for (reply, outcome) in answers {
                let _ = reply.send(outcome);
            }
        }
        Err(e) => {
            let e = StoreError::from(e);
            for (reply, _) in answers {
                let _ = reply.send(Err(e.duplicate()));
            }
        }
    }
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
    tracing::debug!(
        group,
        write_ms = ms(written),
        commit_ms = ms(started.elapsed() - written),
        "push group"
    );
}

/// One push inside the group's transaction: every document must belong
/// to the caller's territory (or be new); each goes to the log as one
/// packed bundle, for the merger. The first error rolls this push back.
/// Returns the chunks stored and the seq of the last row written.
fn write_push(
    tx: &Connection,
    territory: TerritoryId,
    device: &str,
    docs: Vec<PreparedDoc>,
) -> Result<(u32, i64)> {
    for d in &docs {
        let owner: Option<String> = tx
            .prepare_cached("SELECT territory_id FROM documents WHERE doc_id = ?1")?
            .query_row([d.doc_id.to_string()], |r| r.get(0))
            .optional()?;
        if owner.is_some_and(|t| t != territory.to_string()) {
            return Err(StoreError::Forbidden(format!(
                "l'inspection {} appartient à un autre territoire",
                d.doc_id
            )));
        }
    }
    let (mut accepted, mut last) = (0u32, 0i64);
    for d in docs {
        last = append(tx, territory, device, d.doc_id, d.chunks, &d.packed)?;
        accepted += d.chunks as u32;
    }
    Ok((accepted, last))
}

/// Appends changes to the log as one packed bundle (a push's, waiting
/// for the merger, or a server edit's, already merged). Returns its seq.
pub(super) fn append(
    tx: &Connection,
    territory: TerritoryId,
    device: &str,
    doc_id: InspectionId,
    changes: usize,
    packed: &[u8],
) -> Result<i64> {
    let id = doc_id.to_string();
    tx.prepare_cached(
        "INSERT INTO documents (doc_id, territory_id, snapshot, snap_seq, updated_at) VALUES (?1, ?2, NULL, 0, ?3)
         ON CONFLICT(doc_id) DO UPDATE SET updated_at = excluded.updated_at",
    )?
    .execute(params![id, territory.to_string(), now_ms()])?;
    tx.prepare_cached(
        "INSERT INTO log (territory_id, doc_id, device_id, changes, bytes, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        territory.to_string(),
        id,
        device,
        changes as i64,
        packed,
        now_ms()
    ])?;
    Ok(tx.last_insert_rowid())
}

/// Log compaction: folds every document's log into its snapshot and
/// clears the bytes of the rows it covers once they are older than the
/// retention (pulls of those rows then send the snapshot). One
/// transaction per document, so pushes interleave.
fn compact_all(core: &StoreCore) -> Result<CompactReport> {
    core.settle();
    let cutoff = now_ms().saturating_sub(
        core.log_retention_ms
            .load(std::sync::atomic::Ordering::Relaxed),
    );
    let docs: Vec<String> = core
        .lock()
        .prepare(
            "SELECT DISTINCT l.doc_id FROM log l JOIN documents d ON d.doc_id = l.doc_id
             WHERE l.seq > d.snap_seq OR (l.bytes IS NOT NULL AND l.at < ?1)",
        )?
        .query_map([cutoff], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut report = CompactReport::default();
    for doc in docs {
        let doc_id: InspectionId = parse_id(doc)?;
        let mut conn = core.lock();
        let tx = conn.transaction()?;
        let behind: i64 = tx.query_row(
            "SELECT COUNT(*) FROM log l JOIN documents d ON d.doc_id = l.doc_id
             WHERE l.doc_id = ?1 AND l.seq > d.snap_seq",
            [doc_id.to_string()],
            |r| r.get(0),
        )?;
        let upto = merged_seq(&tx)?;
        if behind > 0
            && let Some((_, insp, _)) = snapshots::load_doc_counted(&tx, doc_id, upto)?
            && let Some(snapshot) = checked_snapshot(doc_id, &insp)
        {
            snapshots::write_snapshot(&tx, doc_id, &snapshot, upto)?;
            report.documents += 1;
        }
        report.rows_cleared += tx.execute(
            "UPDATE log SET bytes = NULL WHERE doc_id = ?1 AND bytes IS NOT NULL AND at < ?2
               AND seq <= (SELECT snap_seq FROM documents WHERE doc_id = ?1)",
            params![doc_id.to_string(), cutoff],
        )? as u64;
        tx.commit()?;
    }
    Ok(report)
}
