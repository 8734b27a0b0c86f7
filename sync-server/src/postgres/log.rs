//! The sync log on PostgreSQL: pushes appended durably (under the log's
//! advisory lock, so rows become visible in `seq` order and a device's
//! cursor never skips a row committed late), server edits' bundles, pulls
//! and compaction: the [`SyncLog`] implementation.

use std::sync::atomic::Ordering;

use bilan_shared::doc::now_ms;
use bilan_shared::ids::{InspectionId, TerritoryId};
use deadpool_postgres::GenericClient;

use super::core::{Result, id};
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
    /// Writes queued pushes in one transaction and answers each: a push
    /// for another territory's inspection fails alone (checked before it
    /// writes); a database failure fails the group, whose devices retry.
    fn write_group(&self, jobs: Vec<PushJob>) {
        let written = self.run(async {
            let mut client = self.client().await?;
            let tx = client.transaction().await?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOG_LOCK])
                .await?;
            let mut outcomes = Vec::with_capacity(jobs.len());
            for job in &jobs {
                outcomes.push(match append_push(&tx, job).await {
                    Err(StoreError::Forbidden(m)) => Err(StoreError::Forbidden(m)),
                    other => Ok(other?),
                });
            }
            // Delivered at commit to the merger, whichever instance runs it.
            tx.execute("NOTIFY bilan_log", &[]).await?;
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

/// One push inside a group's transaction: every document must belong to
/// the push's territory (checked before anything is written); then three
/// statements whatever the number of documents. Returns the changes accepted.
async fn append_push(tx: &impl GenericClient, job: &PushJob) -> Result<u32> {
    let (territory, device, docs) = (job.territory, job.device.as_str(), &job.docs);
    // The log rows go in the request's order, so seqs follow it.
    let t = territory.to_string();
    let ids: Vec<String> = docs.iter().map(|d| d.doc_id.to_string()).collect();
    let foreign: Option<String> = tx
        .query_opt(
            "SELECT doc_id FROM documents WHERE doc_id = ANY($1) AND territory_id != $2 LIMIT 1",
            &[&ids, &t],
        )
        .await?
        .map(|r| r.get(0));
    if let Some(doc) = foreign {
        return Err(StoreError::Forbidden(format!(
            "l'inspection {doc} appartient à un autre territoire"
        )));
    }
    let now = now_ms();
    tx.execute(
        "INSERT INTO documents (doc_id, territory_id, snapshot, snap_seq, updated_at)
         SELECT DISTINCT d, $2::TEXT, NULL::BYTEA, 0::BIGINT, $3::BIGINT FROM UNNEST($1::TEXT[]) d
         ON CONFLICT (doc_id) DO UPDATE SET updated_at = excluded.updated_at",
        &[&ids, &t, &now],
    )
    .await?;
    let chunks: Vec<i64> = docs.iter().map(|d| d.chunks as i64).collect();
    let packed: Vec<&[u8]> = docs.iter().map(|d| d.packed.as_slice()).collect();
    tx.execute(
        "INSERT INTO log (territory_id, doc_id, device_id, changes, bytes, at)
         SELECT $1::TEXT, u.d, $2::TEXT, u.c, u.b, $3::BIGINT
         FROM UNNEST($4::TEXT[], $5::BIGINT[], $6::BYTEA[]) WITH ORDINALITY AS u(d, c, b, o)
         ORDER BY u.o",
        &[&t, &device, &now, &ids, &chunks, &packed],
    )
    .await?;
    let accepted: u32 = docs.iter().map(|d| d.chunks as u32).sum();
    Ok(accepted)
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
