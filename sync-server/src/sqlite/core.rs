//! What the SQLite store and its merger thread share: the writer connection
//! behind its lock, the pool of read connections, the group-commit queue,
//! and the merger's progress (how far the log is committed and merged) with
//! the wait that lets a read see everything committed before it. Nothing
//! here reads or writes a table but `meta`'s progress counter.

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use automerge::ActorId;
use rusqlite::{Connection, OptionalExtension};

use crate::error::StoreError;

pub(super) type Result<T> = std::result::Result<T, StoreError>;

/// Read connections kept open between pulls.
const IDLE_READERS: usize = 8;

/// How long a read waits for the merger before serving what is merged.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);
/// The same while the merger is failing (it retries every second).
const SETTLE_WHILE_FAILING: Duration = Duration::from_secs(2);

/// What the store and its merger thread share.
pub struct StoreCore {
    pub(super) conn: Mutex<Connection>,
    /// Pushes waiting for the write lock (group commit, see `log.rs`).
    pub(super) pushes: Mutex<Vec<crate::storage::PushJob>>,
    /// Idle read-only connections (file databases only): pulls read the log
    /// from one of them, outside the write lock, so a slow pull never holds
    /// up another device's push. WAL readers see whole commits, and commits
    /// happen in `seq` order under the write lock, so a reader never sees a
    /// gap that fills in later.
    pub(super) readers: Mutex<Vec<Connection>>,
    pub(super) path: Option<std::path::PathBuf>,
    pub(super) server_actor: ActorId,
    /// Log rows younger than this keep their bytes through compaction (see
    /// [`super::SqliteStore::set_log_retention`]).
    pub(super) log_retention_ms: std::sync::atomic::AtomicI64,
    /// How far the log is committed and merged (see `merger.rs`).
    pub(super) progress: Mutex<Progress>,
    pub(super) progress_changed: Condvar,
    /// Where the merger merges documents (see [`crate::merge::pool`]).
    pub(super) merge_pool: rayon::ThreadPool,
}

/// How far the log is committed and merged; guarded by `StoreCore::progress`.
#[derive(Debug, Default)]
pub(super) struct Progress {
    /// Highest log seq committed.
    pub(super) committed: i64,
    /// Highest log seq merged (`meta.merged_seq`).
    pub(super) merged: i64,
    /// The last batch failed (disk full, read-only database): reads stop
    /// waiting for the merger until a batch succeeds again.
    pub(super) failing: bool,
    pub(super) stop: bool,
}

impl Progress {
    /// The progress stored in the database (at open).
    pub(super) fn read(conn: &Connection) -> Result<Self> {
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
pub(super) fn merged_seq(conn: &Connection) -> Result<i64> {
    Ok(conn
        .prepare_cached("SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'merged_seq'")?
        .query_row([], |r| r.get(0))
        .optional()?
        .unwrap_or(0))
}

/// Records the merger's progress, in the transaction of what it merged.
pub(super) fn set_merged_seq(conn: &Connection, seq: i64) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO meta (key, value) VALUES ('merged_seq', ?1)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
    )?
    .execute([seq.to_string()])?;
    Ok(())
}

/// An id stored as text, read back.
pub(super) fn parse_id<T: std::str::FromStr>(s: String) -> rusqlite::Result<T> {
    s.parse().map_err(|_| {
        rusqlite::Error::InvalidColumnType(0, "id".into(), rusqlite::types::Type::Text)
    })
}

/// A read connection borrowed from the pool (the writer's, under its lock,
/// for an in-memory database); back to the pool when dropped.
pub(super) enum ReadConn<'a> {
    Pooled {
        conn: Option<Connection>,
        pool: &'a Mutex<Vec<Connection>>,
    },
    Writer(MutexGuard<'a, Connection>),
}

impl std::ops::Deref for ReadConn<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        match self {
            ReadConn::Pooled { conn, .. } => conn.as_ref().expect("read connection"),
            ReadConn::Writer(guard) => guard,
        }
    }
}

impl Drop for ReadConn<'_> {
    fn drop(&mut self) {
        if let ReadConn::Pooled { conn, pool } = self
            && let Some(conn) = conn.take()
        {
            let mut idle = pool.lock().unwrap_or_else(|p| p.into_inner());
            // A burst of reads opens as many connections as it needs; a few stay open.
            if idle.len() < IDLE_READERS {
                idle.push(conn);
            }
        }
    }
}

impl StoreCore {
    /// A read connection: reads of committed data (tokens, the projection,
    /// the log) do not wait for the write lock, which the merger holds for
    /// a batch at a time.
    pub(super) fn reader(&self) -> Result<ReadConn<'_>> {
        let Some(path) = &self.path else {
            return Ok(ReadConn::Writer(self.lock()));
        };
        let idle = self.readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let conn = match idle {
            Some(c) => c,
            None => {
                let c = Connection::open_with_flags(
                    path,
                    rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
                        | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                c.busy_timeout(Duration::from_secs(5))?;
                c
            }
        };
        Ok(ReadConn::Pooled {
            conn: Some(conn),
            pool: &self.readers,
        })
    }

    /// The writer connection.
    pub(super) fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (the
        // transaction rolls back on drop), so a poisoned lock is still usable.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn progress(&self) -> MutexGuard<'_, Progress> {
        self.progress.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A commit of log rows up to `seq`: wakes the merger.
    pub(super) fn note_committed(&self, seq: i64) {
        let mut p = self.progress();
        if seq > p.committed {
            p.committed = seq;
            self.progress_changed.notify_all();
        }
    }

    /// A commit of the merger's progress: wakes the readers waiting for it.
    pub(super) fn note_merged(&self, seq: i64) {
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

    pub(super) fn merger_failing(&self) -> bool {
        self.progress().failing
    }

    pub(super) fn stop_merger(&self) {
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
}
