//! The sync log on PostgreSQL: pushes appended durably (under the log's
//! advisory lock, so rows become visible in `seq` order and a device's
//! cursor never skips a row committed late), server edits' bundles, pulls
//! and compaction: the [`SyncLog`] implementation.

use std::sync::atomic::Ordering;

use bilan_shared::doc::now_ms;
use bilan_shared::ids::{InspectionId, TerritoryId};
use deadpool_postgres::GenericClient;

use super::core::{Cached, Result, id};
use super::progress::merged_seq;
use super::store::PgStore;
use super::{pull, snapshots};
use crate::codec::checked_snapshot;
use crate::error::StoreError;
use crate::storage::{CompactReport, PreparedDoc, PullPage, PushJob, SyncLog};

/// Key of the advisory lock every append to the log holds until it commits.
pub(super) const LOG_LOCK: i64 = 0x6269_6c61_6e00_0002;

/// Appends changes to the log as one packed bundle; returns its seq. The
/// caller holds [`LOG_LOCK`] in its transaction.
pub(super) async fn append(
    tx: &impl GenericClient,
    territory: TerritoryId,
    device: &str,
    doc_id: InspectionId,
    changes: usize,
    packed: &[u8],
) -> Result<i64> {
    let (t, d) = (territory.to_string(), doc_id.to_string());
    tx.execute(
        "INSERT INTO documents (doc_id, territory_id, snapshot, snap_seq, updated_at) VALUES ($1, $2, NULL, 0, $3)
         ON CONFLICT (doc_id) DO UPDATE SET updated_at = excluded.updated_at",
        &[&d, &t, &now_ms()],
    )
    .await?;
    Ok(tx
        .query_one(
            "INSERT INTO log (territory_id, doc_id, device_id, changes, bytes, at)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING seq",
            &[&t, &d, &device, &(changes as i64), &packed, &now_ms()],
        )
        .await?
        .get(0))
}

impl PgStore {
    /// Writes queued pushes in one transaction and answers each. Each push
    /// first adds the documents it creates and is checked for its
    /// territory (a push for another territory's inspection fails alone,
    /// its savepoint rolled back); only then is the log's lock taken, for
    /// the one statement that appends every accepted push's rows and the
    /// commit, so other instances wait for as little as possible. A
    /// database failure fails the group, whose devices retry.
    fn write_group(&self, jobs: Vec<PushJob>) {
        let written = self.run(async {
            let mut client = self.client().await?;
            let tx = client.transaction().await?;
            let mut outcomes = Vec::with_capacity(jobs.len());
            for job in &jobs {
                tx.execute("SAVEPOINT push", &[]).await?;
                outcomes.push(match admit_push(&tx, job).await {
                    Ok(()) => {
                        tx.execute("RELEASE SAVEPOINT push", &[]).await?;
                        Ok(job.docs.iter().map(|d| d.chunks as u32).sum())
                    }
                    Err(StoreError::Forbidden(m)) => {
                        tx.execute("ROLLBACK TO SAVEPOINT push", &[]).await?;
                        Err(StoreError::Forbidden(m))
                    }
                    Err(e) => return Err(e),
                });
            }
            let admitted = jobs
                .iter()
                .zip(&outcomes)
                .filter(|(_, o)| o.is_ok())
                .map(|(job, _)| job);
            let rows = LogRows::of(admitted);
            if !rows.doc.is_empty() {
                tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOG_LOCK])
                    .await?;
                rows.insert(&tx).await?;
                // Delivered at commit to the merger, whichever instance runs it.
                tx.execute("NOTIFY bilan_log", &[]).await?;
            }
            tx.commit().await?;
            Ok(outcomes)
        });
        match written {
            Ok(outcomes) => {
                for (job, outcome) in jobs.into_iter().zip(outcomes) {
                    let _ = job.reply.send(outcome);
                }
            }
            Err(e) => {
                tracing::warn!(group = jobs.len(), error = %e, "push group rolled back");
                for job in jobs {
                    let _ = job.reply.send(Err(e.duplicate()));
                }
            }
        }
    }
}

/// Adds the documents a push creates and checks that every document it
/// carries belongs to its territory. The check runs after the insert: an
/// insert racing another instance's uncommitted one waits for it, so the
/// check then sees that document's owner. An existing document's row is
/// left alone (no row lock, so pushes of the same documents on two
/// instances do not queue for each other here).
async fn admit_push(tx: &impl GenericClient, job: &PushJob) -> Result<()> {
    let t = job.territory.to_string();
    let mut ids: Vec<String> = job.docs.iter().map(|d| d.doc_id.to_string()).collect();
    // One order for every transaction's inserts: no two wait on each other.
    ids.sort_unstable();
    ids.dedup();
    tx.exec(
        "INSERT INTO documents (doc_id, territory_id, snapshot, snap_seq, updated_at)
         SELECT d, $2::TEXT, NULL::BYTEA, 0::BIGINT, $3::BIGINT FROM UNNEST($1::TEXT[]) d
         ON CONFLICT (doc_id) DO NOTHING",
        &[&ids, &t, &now_ms()],
    )
    .await?;
    let foreign: Option<String> = tx
        .opt(
            "SELECT doc_id FROM documents WHERE doc_id = ANY($1) AND territory_id != $2 LIMIT 1",
            &[&ids, &t],
        )
        .await?
        .map(|r| r.get(0));
    match foreign {
        Some(doc) => Err(StoreError::Forbidden(format!(
            "l'inspection {doc} appartient à un autre territoire"
        ))),
        None => Ok(()),
    }
}

/// The log rows of a group's admitted pushes, in the pushes' order and
/// each push's request order, so seqs follow them.
#[derive(Default)]
struct LogRows<'a> {
    territory: Vec<String>,
    device: Vec<&'a str>,
    doc: Vec<String>,
    changes: Vec<i64>,
    bytes: Vec<&'a [u8]>,
}

impl<'a> LogRows<'a> {
    fn of(jobs: impl Iterator<Item = &'a PushJob>) -> Self {
        let mut rows = Self::default();
        for job in jobs {
            for doc in &job.docs {
                rows.territory.push(job.territory.to_string());
                rows.device.push(job.device.as_str());
                rows.doc.push(doc.doc_id.to_string());
                rows.changes.push(doc.chunks as i64);
                rows.bytes.push(doc.packed.as_slice());
            }
        }
        rows
    }

    /// One statement for every row; the caller holds [`LOG_LOCK`].
    async fn insert(&self, tx: &impl GenericClient) -> Result<()> {
        tx.exec(
            "INSERT INTO log (territory_id, doc_id, device_id, changes, bytes, at)
             SELECT u.t, u.d, u.v, u.c, u.b, $6::BIGINT
             FROM UNNEST($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::BIGINT[], $5::BYTEA[])
               WITH ORDINALITY AS u(t, d, v, c, b, o)
             ORDER BY u.o",
            &[
                &self.territory,
                &self.doc,
                &self.device,
                &self.changes,
                &self.bytes,
                &now_ms(),
            ],
        )
        .await?;
        Ok(())
    }
}

impl SyncLog for PgStore {
    /// Group commit, as on SQLite: the push joins this instance's queue;
    /// whoever holds the instance's push lock next writes every queued push
    /// in one transaction (one turn of the log's advisory lock, one commit)
    /// and answers each. Pushes arriving together share the turn instead of
    /// queueing one by one for the lock.
    fn push(&self, territory: TerritoryId, device: &str, docs: Vec<PreparedDoc>) -> Result<u32> {
        if docs.is_empty() {
            return Ok(0);
        }
        let answer = PushJob::enqueue(&self.pushes, territory, device, docs);
        let writer = self.push_writer.lock().unwrap_or_else(|p| p.into_inner());
        // A writer that held the lock before us may have answered already.
        if let Ok(done) = answer.try_recv() {
            return done;
        }
        let jobs = PushJob::take_all(&self.pushes);
        if !jobs.is_empty() {
            self.write_group(jobs);
        }
        drop(writer);
        PushJob::outcome(answer)
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
            self.settle()?;
        }
        self.run(async {
            let client = self.client().await?;
            let upto = merged_seq(&client).await?;
            pull::pull(&client, territory, device, cursor, upto, page_bytes).await
        })
    }

    fn change_count(&self, territory: TerritoryId) -> Result<u64> {
        self.settle()?;
        self.run(async {
            let n: i64 = self
                .client()
                .await?
                .query_one(
                    "SELECT COALESCE(SUM(changes), 0)::BIGINT FROM log WHERE territory_id = $1 AND rejected IS NULL",
                    &[&territory.to_string()],
                )
                .await?
                .get(0);
            Ok(n as u64)
        })
    }

    /// Folds every document's log into its snapshot and clears the bytes
    /// of the rows it covers once older than the retention. One
    /// transaction per document, so pushes interleave.
    fn compact(&self) -> Result<CompactReport> {
        self.settle()?;
        let cutoff = now_ms().saturating_sub(self.log_retention_ms.load(Ordering::Relaxed));
        self.run(async {
            let mut client = self.client().await?;
            let docs: Vec<String> = client
                .query(
                    "SELECT DISTINCT l.doc_id FROM log l JOIN documents d ON d.doc_id = l.doc_id
                     WHERE l.seq > d.snap_seq OR (l.bytes IS NOT NULL AND l.at < $1)",
                    &[&cutoff],
                )
                .await?
                .iter()
                .map(|r| r.get(0))
                .collect();
            let mut report = CompactReport::default();
            for doc in docs {
                let doc_id: InspectionId = id(doc)?;
                let tx = client.transaction().await?;
                let behind: i64 = tx
                    .query_one(
                        "SELECT COUNT(*) FROM log l JOIN documents d ON d.doc_id = l.doc_id
                         WHERE l.doc_id = $1 AND l.seq > d.snap_seq",
                        &[&doc_id.to_string()],
                    )
                    .await?
                    .get(0);
                let upto = merged_seq(&tx).await?;
                if behind > 0
                    && let Some((_, insp, _)) = snapshots::load_doc_counted(&tx, doc_id, upto).await?
                    && let Some(snapshot) = checked_snapshot(doc_id, &insp)
                {
                    snapshots::write_snapshot(&tx, doc_id, &snapshot, upto).await?;
                    report.documents += 1;
                }
                report.rows_cleared += tx
                    .execute(
                        "UPDATE log SET bytes = NULL WHERE doc_id = $1 AND bytes IS NOT NULL AND at < $2
                           AND seq <= (SELECT snap_seq FROM documents WHERE doc_id = $1)",
                        &[&doc_id.to_string(), &cutoff],
                    )
                    .await?;
                tx.commit().await?;
            }
            Ok(report)
        })
    }
}
