//! The SQLite store itself: opening the database (WAL, `synchronous=FULL`:
//! what the server acknowledges survives a power cut), the server's actor,
//! the merger thread's lifetime, and the backend's settings.

use std::path::Path;
use std::sync::{Arc, Mutex};

use automerge::ActorId;
use bilan_shared::ids::DeviceId;
use rusqlite::{Connection, OptionalExtension};

use super::core::{Progress, Result, StoreCore};
use super::{merger, migrate};
use crate::error::StoreError;

/// Default log retention: a month, longer than an inspector stays offline.
pub const DEFAULT_LOG_RETENTION: std::time::Duration =
    std::time::Duration::from_secs(30 * 24 * 3600);

/// The embedded SQLite store.
///
/// A push is answered once its items are checked (whole automerge chunks, of
/// the caller's territory) and durable in the log; a background thread, the
/// merger (`merger.rs`), then parses and folds the log into the documents
/// and the projection the review pages read, in log order. Reads of the
/// projection wait for the merger to reach what was committed before them
/// (read your writes); pulls serve only merged rows, so a change the merger
/// refuses never reaches another device. One writer connection behind a
/// mutex: log sequence numbers become visible in order and a cursor never
/// skips a change committed late.
pub struct SqliteStore {
    core: Arc<StoreCore>,
    merger: Option<std::thread::JoinHandle<()>>,
}

impl std::ops::Deref for SqliteStore {
    type Target = StoreCore;
    fn deref(&self) -> &StoreCore {
        &self.core
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.core.stop_merger();
        if let Some(merger) = self.merger.take() {
            let _ = merger.join();
        }
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        Self::init(Connection::open(path)?, Some(path.to_path_buf()))
    }

    /// An in-memory database, for unit tests.
    pub fn in_memory() -> Result<Self> {
        Self::init(Connection::open_in_memory()?, None)
    }

    fn init(mut conn: Connection, path: Option<std::path::PathBuf>) -> Result<Self> {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        migrate::migrate(&mut conn)?;
        let actor: Option<String> = conn
            .query_row("SELECT value FROM meta WHERE key='server_actor'", [], |r| {
                r.get(0)
            })
            .optional()?;
        let actor = match actor {
            Some(hex) => ActorId::try_from(hex.as_str())
                .map_err(|e| StoreError::Corrupt(format!("acteur du serveur : {e}")))?,
            None => {
                let a = ActorId::from(DeviceId::new().0.as_bytes().as_slice());
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('server_actor', ?1)",
                    [a.to_hex_string()],
                )?;
                a
            }
        };
        let progress = Progress::read(&conn)?;
        let core = Arc::new(StoreCore {
            conn: Mutex::new(conn),
            pushes: Mutex::new(Vec::new()),
            readers: Mutex::new(Vec::new()),
            path,
            server_actor: actor,
            log_retention_ms: std::sync::atomic::AtomicI64::new(
                DEFAULT_LOG_RETENTION.as_millis() as i64
            ),
            progress: Mutex::new(progress),
            progress_changed: std::sync::Condvar::new(),
            merge_pool: crate::merge::pool()?,
        });
        let merger = merger::spawn(core.clone())?;
        Ok(Self {
            core,
            merger: Some(merger),
        })
    }

    /// How long compaction keeps the bytes of log rows: a device that was
    /// behind by less than this gets the few changes it misses, not the whole
    /// snapshot of each document that changed. Older rows are cleared and
    /// their space reclaimed.
    pub fn set_log_retention(&self, keep: std::time::Duration) {
        self.log_retention_ms.store(
            i64::try_from(keep.as_millis()).unwrap_or(i64::MAX),
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    /// Runs `f` on the writer connection (this backend's own tests).
    #[cfg(test)]
    pub(super) fn with_conn<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        f(&self.lock())
    }
}
