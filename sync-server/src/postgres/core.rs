//! The PostgreSQL store's machinery: its own small tokio runtime driving
//! `tokio-postgres` through a `deadpool-postgres` pool, and the bridge that
//! lets the synchronous storage traits (called from the server's blocking
//! pool, a merger thread or a test's body alike) run a query on it.

use std::future::Future;
use std::str::FromStr;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::NoTls;

use crate::error::StoreError;

pub(super) type Result<T> = std::result::Result<T, StoreError>;

/// Connections kept by the pool.
const POOL_SIZE: usize = 16;

/// A PostgreSQL database, as the storage traits use it.
pub struct PgStore {
    rt: tokio::runtime::Runtime,
    pub(super) pool: Pool,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PgStore")
    }
}

impl PgStore {
    /// Connects to the database `url` (`postgres://...` or `host=... dbname=...`)
    /// and brings its schema to this build's version.
    pub fn open(url: &str) -> Result<Self> {
        let config = tokio_postgres::Config::from_str(url)
            .map_err(|e| StoreError::BadRequest(format!("adresse de la base PostgreSQL : {e}")))?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("bilan-pg")
            .enable_all()
            .build()?;
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .build()
            .map_err(|e| StoreError::Backend(format!("pool PostgreSQL : {e}")))?;
        let store = Self { rt, pool };
        store.run(super::migrate::migrate(&store.pool))?;
        Ok(store)
    }

    /// Runs `work` on the store's runtime and waits for it. A scoped thread
    /// carries the wait, so the caller may be anywhere (even inside another
    /// runtime) and `work` may borrow from it.
    pub(super) fn run<T: Send>(&self, work: impl Future<Output = Result<T>> + Send) -> Result<T> {
        std::thread::scope(|s| {
            s.spawn(|| self.rt.block_on(work))
                .join()
                .unwrap_or_else(|_| {
                    Err(StoreError::Backend("requête PostgreSQL interrompue".into()))
                })
        })
    }

    /// A connection from the pool.
    pub(super) async fn client(&self) -> Result<deadpool_postgres::Object> {
        self.pool
            .get()
            .await
            .map_err(|e| StoreError::Unavailable(format!("base PostgreSQL : {e}")))
    }
}

/// An id stored as text, read back.
pub(super) fn id<T: FromStr>(s: String) -> Result<T> {
    s.parse()
        .map_err(|_| StoreError::Corrupt(format!("identifiant « {s} »")))
}
