//! The PostgreSQL store itself: connecting, the schema, the server's actor
//! (shared by every instance: it is in the database), the merger thread's
//! lifetime and the backend's settings.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use automerge::ActorId;
use bilan_shared::ids::DeviceId;

use super::core::{PgInner, Result, connect};
use super::{merger, migrate};
use crate::error::StoreError;

/// Default log retention: a month, longer than an inspector stays offline.
const DEFAULT_LOG_RETENTION_MS: i64 = 30 * 24 * 3600 * 1000;

/// A PostgreSQL database as the server's storage. Several server
/// instances may open the same database: any answers any request, and one
/// merger at a time (an advisory lock) folds the log into the documents.
pub struct PgStore {
    inner: Arc<PgInner>,
    merger: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PgStore")
    }
}

impl std::ops::Deref for PgStore {
    type Target = PgInner;
    fn deref(&self) -> &PgInner {
        &self.inner
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        self.inner.stop.store(true, Ordering::SeqCst);
        self.inner.wake.notify_one();
        if let Some(m) = self.merger.take() {
            let _ = m.join();
        }
    }
}

impl PgStore {
    /// Connects to the database `url` (`postgres://...` or `host=... dbname=...`),
    /// brings its schema to this build's version and starts this instance's
    /// merger (which works whenever it holds the merge lock).
    pub fn open(url: &str) -> Result<Self> {
        let (rt, pool, config) = connect(url)?;
        // On a thread of its own: the caller may be inside another runtime.
        let setup = async {
            migrate::migrate(&pool).await?;
            let client = pool
                .get()
                .await
                .map_err(|e| StoreError::Unavailable(format!("base PostgreSQL : {e}")))?;
            let fresh = ActorId::from(DeviceId::new().0.as_bytes().as_slice()).to_hex_string();
            // The first instance's actor is everyone's.
            client
                .execute(
                    "INSERT INTO meta (key, value) VALUES ('server_actor', $1) ON CONFLICT (key) DO NOTHING",
                    &[&fresh],
                )
                .await?;
            let hex: String = client
                .query_one("SELECT value FROM meta WHERE key = 'server_actor'", &[])
                .await?
                .get(0);
            ActorId::try_from(hex.as_str())
                .map_err(|e| StoreError::Corrupt(format!("acteur du serveur : {e}")))
        };
        let actor = std::thread::scope(|s| {
            s.spawn(|| rt.block_on(setup)).join().unwrap_or_else(|_| {
                Err(StoreError::Backend(
                    "ouverture PostgreSQL interrompue".into(),
                ))
            })
        })?;
        let inner = Arc::new(PgInner {
            rt,
            pool,
            server_actor: actor,
            log_retention_ms: AtomicI64::new(DEFAULT_LOG_RETENTION_MS),
            stop: AtomicBool::new(false),
            wake: tokio::sync::Notify::new(),
            pushes: Default::default(),
            push_writer: Default::default(),
            merged: Default::default(),
            merge_pool: Arc::new(crate::merge::pool()?),
            config,
        });
        let merger = merger::spawn(inner.clone())?;
        Ok(Self {
            inner,
            merger: Some(merger),
        })
    }

    /// How long compaction keeps the bytes of log rows.
    pub fn set_log_retention(&self, keep: std::time::Duration) {
        self.log_retention_ms.store(
            i64::try_from(keep.as_millis()).unwrap_or(i64::MAX),
            Ordering::Relaxed,
        );
    }
}
