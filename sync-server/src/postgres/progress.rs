//! How far the log is merged (`meta.merged_seq`, in the database, so every
//! instance reads the same progress), and the wait that lets a read see
//! everything committed before it, whichever instance merges, without
//! holding a connection while it waits.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use deadpool_postgres::GenericClient;

use super::core::{Cached, PgInner, Result};

/// How long a read waits for the merger before serving what is merged.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);

/// The log seq up to which everything is merged.
pub(super) async fn merged_seq(client: &impl GenericClient) -> Result<i64> {
    Ok(client
        .opt(
            "SELECT value::BIGINT FROM meta WHERE key = 'merged_seq'",
            &[],
        )
        .await?
        .map(|r| r.get(0))
        .unwrap_or(0))
}

/// The merged seq, locked until the end of the transaction: whoever moves
/// it (the merger, a server edit) holds this, so they take turns.
pub(super) async fn lock_merged_seq(client: &impl GenericClient) -> Result<i64> {
    client
        .exec(
            "INSERT INTO meta (key, value) VALUES ('merged_seq', '0') ON CONFLICT (key) DO NOTHING",
            &[],
        )
        .await?;
    Ok(client
        .one(
            "SELECT value::BIGINT FROM meta WHERE key = 'merged_seq' FOR UPDATE",
            &[],
        )
        .await?
        .get(0))
}

/// Records the merger's progress, in the transaction of what it merged.
pub(super) async fn set_merged_seq(client: &impl GenericClient, seq: i64) -> Result<()> {
    client
        .exec(
            "UPDATE meta SET value = $1 WHERE key = 'merged_seq'",
            &[&seq.to_string()],
        )
        .await?;
    Ok(())
}

/// The highest seq committed to the log.
pub(super) async fn committed_seq(client: &impl GenericClient) -> Result<i64> {
    Ok(client
        .one("SELECT COALESCE(MAX(seq), 0) FROM log", &[])
        .await?
        .get(0))
}

/// How often a read waiting for the merger looks at its progress.
const SETTLE_POLL: Duration = Duration::from_millis(10);

/// The merged seq as this instance last read it, shared by every read
/// waiting for the merger: one of them polls the database at a time,
/// without holding a connection between polls, and the others wait on
/// this. Fifty devices pulling at once used to hold sixteen pooled
/// connections in their waits, and a push queued behind them for one.
#[derive(Default)]
pub(super) struct MergedWatch {
    seen: tokio::sync::watch::Sender<i64>,
    polling: AtomicBool,
}

impl MergedWatch {
    fn saw(&self, seq: i64) {
        self.seen.send_if_modified(|m| {
            let newer = seq > *m;
            if newer {
                *m = seq;
            }
            newer
        });
    }
}

impl PgInner {
    /// Waits until the merger (on any instance) has reached every row
    /// committed before the call, at most [`SETTLE_TIMEOUT`]; then reads
    /// of the projection see what was pushed before them.
    pub(super) fn settle(&self) -> Result<()> {
        self.run(async {
            // Both figures in one round trip: when the merger is up to date
            // (nearly always), the wait costs one query.
            let row = self
                .client()
                .await?
                .one(
                    "SELECT COALESCE(MAX(seq), 0),
                       COALESCE((SELECT value::BIGINT FROM meta WHERE key = 'merged_seq'), 0)
                     FROM log",
                    &[],
                )
                .await?;
            let (target, merged): (i64, i64) = (row.get(0), row.get(1));
            let watch = &self.merged;
            watch.saw(merged);
            let mut seen = watch.seen.subscribe();
            let started = Instant::now();
            loop {
                if *seen.borrow_and_update() >= target {
                    return Ok(());
                }
                let left = SETTLE_TIMEOUT.saturating_sub(started.elapsed());
                if left.is_zero() {
                    tracing::warn!(
                        merged = *seen.borrow(),
                        target,
                        "merger behind: serving what is merged"
                    );
                    return Ok(());
                }
                if !watch.polling.swap(true, Ordering::SeqCst) {
                    let polled = async {
                        tokio::time::sleep(SETTLE_POLL).await;
                        merged_seq(&self.client().await?).await
                    }
                    .await;
                    watch.polling.store(false, Ordering::SeqCst);
                    watch.saw(polled?);
                } else {
                    // Woken by the poller's news; or, if it brought none,
                    // soon enough to take over its polling.
                    let _ = tokio::time::timeout(left.min(SETTLE_POLL * 5), seen.changed()).await;
                }
            }
        })
    }
}
