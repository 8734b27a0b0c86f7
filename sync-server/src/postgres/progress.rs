//! How far the log is merged (`meta.merged_seq`, in the database, so every
//! instance reads the same progress), and the wait that lets a read see
//! everything committed before it, whichever instance merges.

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

impl PgInner {
    /// Waits until the merger (on any instance) has reached every row
    /// committed before the call, at most [`SETTLE_TIMEOUT`]; then reads
    /// of the projection see what was pushed before them.
    pub(super) fn settle(&self) -> Result<()> {
        self.run(async {
            let client = self.client().await?;
            // Both figures in one round trip: when the merger is up to date
            // (nearly always), the wait costs one query.
            let row = client
                .one(
                    "SELECT COALESCE(MAX(seq), 0),
                       COALESCE((SELECT value::BIGINT FROM meta WHERE key = 'merged_seq'), 0)
                     FROM log",
                    &[],
                )
                .await?;
            let (target, mut merged): (i64, i64) = (row.get(0), row.get(1));
            let started = Instant::now();
            loop {
                if merged >= target {
                    return Ok(());
                }
                if started.elapsed() >= SETTLE_TIMEOUT {
                    tracing::warn!(merged, target, "merger behind: serving what is merged");
                    return Ok(());
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
                merged = merged_seq(&client).await?;
            }
        })
    }
}
