//! The merger on PostgreSQL: every instance runs this thread, and the one
//! holding the merge lock (a session advisory lock on a connection of its
//! own) folds the log into the documents and the projection, in `seq`
//! order, a batch at a time, with [`crate::merge`]'s pure merging. When
//! that instance dies its connection closes, the lock is free, and another
//! instance's merger takes it within a second: nothing is merged twice
//! (each batch commits with the progress it reached, checked under
//! `FOR UPDATE`) and nothing is skipped (rows become visible in `seq`
//! order, see `log.rs`).
//!
//! The working merger `LISTEN`s on `bilan_log`: every push `NOTIFY`s it at
//! commit, whichever instance took the push, so an idle merger costs no
//! queries and starts within a round trip of a push. It still looks every
//! [`IDLE_POLL`] in case a notification was lost with a connection.
//!
//! The merger gives way to a burst of pushes (see [`Pushes::give_way`]):
//! its writes run in PostgreSQL's processes, at the priority of the
//! pushes' own, where SQLite's run on the merge pool's lowered threads.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::Instant;

use deadpool_postgres::GenericClient;
use futures_util::future::{join_all, try_join_all};

use super::core::{Cached, PgInner, Result};
use super::progress::{lock_merged_seq, merged_seq, set_merged_seq};
use super::{projection, snapshots};
use crate::codec::code_name;
use crate::error::StoreError;
use crate::merge::{Base, DocOutcome, RowOutcome, group_rows, merge_group};

/// Log rows merged per batch (one commit each).
const MERGE_BATCH: i64 = 64;
/// Key of the session advisory lock the working merger holds: in
/// `pg_locks` (classid: the high 32 bits, objid: the low ones) it tells
/// which instance's connection merges.
pub const MERGE_LOCK: i64 = 0x6269_6c61_6e00_0003;
/// How often a merger without the lock tries to take it.
const TAKEOVER_EVERY: Duration = Duration::from_millis(500);
/// How often the working merger looks for new rows with no notification.
const IDLE_POLL: Duration = Duration::from_secs(1);
/// A batch waits until no push has committed for this long...
const GIVE_WAY_QUIET: Duration = Duration::from_millis(30);
/// ...but never longer than this, so a steady stream of pushes is merged
/// too.
const GIVE_WAY_AT_MOST: Duration = Duration::from_millis(200);

/// Starts this instance's merger thread; it stops when the store is dropped.
pub(super) fn spawn(inner: Arc<PgInner>) -> Result<std::thread::JoinHandle<()>> {
    Ok(std::thread::Builder::new()
        .name("bilan-pg-merger".into())
        .spawn(move || inner.rt.block_on(run(&inner)))?)
}

async fn run(inner: &PgInner) {
    while !inner.stop.load(Ordering::SeqCst) {
        // A connection of its own for as long as it holds the lock (a
        // session lock: it ends with the connection if the instance dies).
        let mut conn = match inner.pool.get().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "merger: no connection; retrying");
                pause(inner, TAKEOVER_EVERY).await;
                continue;
            }
        };
        let held: bool = match conn
            .query_one("SELECT pg_try_advisory_lock($1)", &[&MERGE_LOCK])
            .await
        {
            Ok(r) => r.get(0),
            Err(e) => {
                tracing::warn!(error = %e, "merger: lock not asked; retrying");
                false
            }
        };
        if !held {
            drop(conn);
            pause(inner, TAKEOVER_EVERY).await;
            continue;
        }
        tracing::info!("this instance merges the log");
        let mut pushed = None;
        while !inner.stop.load(Ordering::SeqCst) && !conn.is_closed() {
            if pushed.is_none() {
                pushed = listen(inner)
                    .await
                    .inspect_err(|e| tracing::warn!(error = %e, "merger: not listening; polling"))
                    .ok();
            }
            // Lets pushes still committing go first; the notifications so
            // far are covered by this batch.
            if let Some(l) = &mut pushed {
                l.pushes.give_way().await;
            }
            match merge_batch(&mut conn, &inner.merge_pool).await {
                Ok(true) => {}
                Ok(false) => match &mut pushed {
                    Some(l) => tokio::select! {
                        got = l.pushes.next() => if !got { pushed = None },
                        _ = pause(inner, IDLE_POLL) => {}
                    },
                    None => pause(inner, IDLE_POLL).await,
                },
                Err(e) => {
                    tracing::warn!(error = %e, "merge failed; retrying in a second");
                    pause(inner, Duration::from_secs(1)).await;
                }
            }
        }
        let _ = conn
            .execute("SELECT pg_advisory_unlock($1)", &[&MERGE_LOCK])
            .await;
    }
}

/// Waits `d`, or less if the store is being dropped.
async fn pause(inner: &PgInner, d: Duration) {
    tokio::select! {
        _ = inner.wake.notified() => inner.wake.notify_one(),
        _ = tokio::time::sleep(d) => {}
    }
}

/// A connection of its own (outside the pool, whose connections do not
/// hand out notifications) listening on `bilan_log`.
struct Listener {
    /// Keeps the connection open.
    _client: tokio_postgres::Client,
    pushes: Pushes,
}

/// The pushes committed, as their notifications come.
struct Pushes {
    /// When each notification arrived; closed when the connection is lost.
    arrived: tokio::sync::mpsc::UnboundedReceiver<Instant>,
    /// When the latest notification seen arrived.
    last: Option<Instant>,
}

impl Pushes {
    fn new(arrived: tokio::sync::mpsc::UnboundedReceiver<Instant>) -> Self {
        Self {
            arrived,
            last: None,
        }
    }

    /// Waits for the next notification; false when the connection is lost.
    async fn next(&mut self) -> bool {
        match self.arrived.recv().await {
            Some(at) => {
                self.last = Some(at);
                true
            }
            None => false,
        }
    }

    /// Waits while pushes are committing (one less than
    /// [`GIVE_WAY_QUIET`] ago, on any instance), at most
    /// [`GIVE_WAY_AT_MOST`], and takes every notification so far. A batch
    /// written in the middle of a burst of pushes competes with each of
    /// them for the database's processors: fifty devices pushing at once
    /// on two instances were answered in up to 170 to 330 ms with the
    /// merger writing meanwhile, 57 to 207 ms with it giving way
    /// (BENCHMARKS.md, eighth session).
    async fn give_way(&mut self) {
        let started = Instant::now();
        loop {
            while let Ok(at) = self.arrived.try_recv() {
                self.last = Some(at);
            }
            let Some(since) = self.last.map(|at| at.elapsed()) else {
                return;
            };
            let waited = started.elapsed();
            if since >= GIVE_WAY_QUIET || waited >= GIVE_WAY_AT_MOST {
                return;
            }
            tokio::time::sleep((GIVE_WAY_QUIET - since).min(GIVE_WAY_AT_MOST - waited)).await;
        }
    }
}

async fn listen(inner: &PgInner) -> Result<Listener> {
    let (client, mut connection) = inner.config.connect(tokio_postgres::NoTls).await?;
    let (tx, arrived) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(message) = std::future::poll_fn(|cx| connection.poll_message(cx)).await {
            match message {
                Ok(tokio_postgres::AsyncMessage::Notification(_)) => {
                    let _ = tx.send(Instant::now());
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "merger: listening connection lost");
                    break;
                }
            }
        }
    });
    client.batch_execute("LISTEN bilan_log").await?;
    Ok(Listener {
        _client: client,
        pushes: Pushes::new(arrived),
    })
}

/// Merges the next batch of rows; false when nothing was pending.
async fn merge_batch(
    conn: &mut deadpool_postgres::Client,
    pool: &Arc<rayon::ThreadPool>,
) -> Result<bool> {
    let from = merged_seq(&*conn).await?;
    let rows = conn
        .rows(
            "SELECT seq, territory_id, doc_id, bytes FROM log WHERE seq > $1 ORDER BY seq LIMIT $2",
            &[&from, &MERGE_BATCH],
        )
        .await?;
    let Some(last) = rows.last().map(|r| r.get::<_, i64>(0)) else {
        return Ok(false);
    };
    let (started, count) = (std::time::Instant::now(), rows.len());
    let mut groups = group_rows(
        rows.into_iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3))),
    )?;
    // The documents' loads, then their writes, are pipelined on the one
    // connection (sent together, answered in order): a batch costs a few
    // round trips' wait, not one per statement.
    let loads = join_all(
        groups
            .iter()
            .map(|g| snapshots::load_doc_counted(&*conn, g.doc_id, from)),
    )
    .await;
    for (g, loaded) in groups.iter_mut().zip(loads) {
        g.base = Base::of(loaded)?;
    }
    let (loaded, docs) = (started.elapsed(), groups.len());
    // On the merge pool: below the priority of the threads answering
    // devices, whose pushes wait for nothing the merge does.
    let pool = pool.clone();
    let outcomes = tokio::task::spawn_blocking(move || {
        use rayon::prelude::*;
        pool.install(|| groups.into_par_iter().map(merge_group).collect::<Vec<_>>())
    })
    .await
    .map_err(|e| StoreError::Backend(format!("fusion interrompue : {e}")))?;
    // The write: under the progress row's lock, and only if nobody merged
    // these rows meanwhile (a server edit).
    let tx = conn.transaction().await?;
    if lock_merged_seq(&tx).await? != from {
        return Ok(true);
    }
    let merged = started.elapsed();
    try_join_all(outcomes.into_iter().map(|o| write_outcome(&tx, o, last))).await?;
    set_merged_seq(&tx, last).await?;
    tx.commit().await?;
    tracing::debug!(
        rows = count,
        docs,
        load_ms = loaded.as_millis() as u64,
        merge_ms = (merged - loaded).as_millis() as u64,
        write_ms = (started.elapsed() - merged).as_millis() as u64,
        "merged a batch"
    );
    Ok(true)
}

/// Writes one document's merge: its projection and snapshot, then what
/// becomes of each of its rows.
async fn write_outcome(tx: &impl GenericClient, mut o: DocOutcome, last: i64) -> Result<()> {
    if let Some(m) = &o.merged {
        match projection::project(tx, o.territory, m).await {
            Ok(()) => {
                if let Some(snapshot) = &m.snapshot {
                    snapshots::write_snapshot(tx, o.doc_id, snapshot, last).await?;
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
                tx.exec(
                    "UPDATE log SET changes = $2, bytes = $3 WHERE seq = $1",
                    &[&seq, &(changes as i64), &packed],
                )
                .await?;
            }
            RowOutcome::Recount { changes } => {
                tx.exec(
                    "UPDATE log SET changes = $2 WHERE seq = $1",
                    &[&seq, &(changes as i64)],
                )
                .await?;
            }
            RowOutcome::Duplicate => {
                tx.exec("DELETE FROM log WHERE seq = $1", &[&seq]).await?;
            }
            RowOutcome::Rejected(code, message) => {
                let code = code_name(code);
                tracing::warn!(doc = %o.doc_id, seq, code, %message, "changes refused by the merger");
                tx.exec(
                    "UPDATE log SET rejected = $2, reason = $3 WHERE seq = $1",
                    &[&seq, &code, &message],
                )
                .await?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pushes() -> (tokio::sync::mpsc::UnboundedSender<Instant>, Pushes) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        (tx, Pushes::new(rx))
    }

    #[tokio::test(start_paused = true)]
    async fn with_no_push_committing_a_batch_starts_at_once() {
        let (_tx, mut p) = pushes();
        let t = Instant::now();
        p.give_way().await;
        assert_eq!(t.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_batch_waits_until_the_pushes_have_been_quiet_for_a_while() {
        let (tx, mut p) = pushes();
        let t = Instant::now();
        tx.send(Instant::now()).unwrap();
        p.give_way().await;
        assert_eq!(t.elapsed(), GIVE_WAY_QUIET);
        // An old notification does not hold the next batch.
        let t = Instant::now();
        p.give_way().await;
        assert_eq!(t.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_steady_stream_of_pushes_holds_a_batch_back_only_so_long() {
        let (tx, mut p) = pushes();
        tokio::spawn(async move {
            while tx.send(Instant::now()).is_ok() {
                tokio::time::sleep(GIVE_WAY_QUIET / 3).await;
            }
        });
        tokio::task::yield_now().await;
        let t = Instant::now();
        p.give_way().await;
        assert_eq!(t.elapsed(), GIVE_WAY_AT_MOST);
    }
}
