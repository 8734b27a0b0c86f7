//! The PostgreSQL store's machinery: its own small tokio runtime driving
//! `tokio-postgres` through a `deadpool-postgres` pool, and the bridge that
//! lets the synchronous storage traits (called from the server's blocking
//! pool, a merger thread or a test's body alike) run a query on it.

use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64};

use automerge::ActorId;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::NoTls;

use crate::error::StoreError;

pub(super) type Result<T> = std::result::Result<T, StoreError>;

/// What the PostgreSQL store and its merger thread share: a small tokio
/// runtime, the connection pool, the server's actor, the settings.
pub struct PgInner {
    pub(super) rt: Rt,
    pub(super) pool: Pool,
    pub(super) server_actor: ActorId,
    /// Log rows younger than this keep their bytes through compaction.
    pub(super) log_retention_ms: AtomicI64,
    /// Set when the store is dropped: the merger thread ends.
    pub(super) stop: AtomicBool,
    /// Wakes this instance's merger when the store is dropped, so it ends
    /// now rather than at its next poll.
    pub(super) wake: tokio::sync::Notify,
    /// Pushes waiting for this instance's next group commit.
    pub(super) pushes: std::sync::Mutex<Vec<crate::storage::PushJob>>,
    /// Held by the thread writing a group of pushes.
    pub(super) push_writer: std::sync::Mutex<()>,
    /// How far this instance last saw the log merged, shared by every
    /// read waiting for the merger.
    pub(super) merged: super::progress::MergedWatch,
    /// Where the database is: the merger opens its own connection there.
    pub(super) config: tokio_postgres::Config,
    /// The merge pool, below the priority of the threads answering
    /// requests ([`crate::merge::pool`]), as on SQLite.
    pub(super) merge_pool: Arc<rayon::ThreadPool>,
}

impl std::fmt::Debug for PgInner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PgInner")
    }
}

/// The store's runtime. Dropped without waiting (a store may be dropped
/// inside another runtime, where blocking is not allowed).
pub(super) struct Rt(Option<tokio::runtime::Runtime>);

impl std::ops::Deref for Rt {
    type Target = tokio::runtime::Runtime;
    fn deref(&self) -> &tokio::runtime::Runtime {
        self.0
            .as_ref()
            .expect("the runtime lives as long as the store")
    }
}

impl Drop for Rt {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

/// Connections kept by the pool.
const POOL_SIZE: usize = 16;

/// A runtime and a pool for the database `url`, and its parsed settings.
pub(super) fn connect(url: &str) -> Result<(Rt, Pool, tokio_postgres::Config)> {
    let config = tokio_postgres::Config::from_str(url)
        .map_err(|e| StoreError::BadRequest(format!("adresse de la base PostgreSQL : {e}")))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("bilan-pg")
        .enable_all()
        .build()?;
    let manager = Manager::from_config(
        config.clone(),
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    let pool = Pool::builder(manager)
        .max_size(POOL_SIZE)
        .build()
        .map_err(|e| StoreError::Backend(format!("pool PostgreSQL : {e}")))?;
    Ok((Rt(Some(rt)), pool, config))
}

impl PgInner {
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

/// One connection of its own to `url`, outside the pool, driven on the
/// caller's runtime (the commands that run once: a move, a backup).
pub(super) async fn connect_one(url: &str) -> Result<tokio_postgres::Client> {
    let config = tokio_postgres::Config::from_str(url)
        .map_err(|e| StoreError::BadRequest(format!("adresse de la base PostgreSQL : {e}")))?;
    let (client, connection) = config
        .connect(NoTls)
        .await
        .map_err(|e| StoreError::Unavailable(format!("base PostgreSQL : {e}")))?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %e, "PostgreSQL connection ended");
        }
    });
    Ok(client)
}

/// An id stored as text, read back.
pub(super) fn id<T: FromStr>(s: String) -> Result<T> {
    s.parse()
        .map_err(|_| StoreError::Corrupt(format!("identifiant « {s} »")))
}

/// A statement's parameters, as tokio-postgres takes them.
type Params<'a> = &'a [&'a (dyn tokio_postgres::types::ToSql + Sync)];

/// Statements prepared once per connection (deadpool keeps each
/// connection's cache): PostgreSQL parses and plans a hot statement once
/// instead of at every call, and a call is one round trip instead of two.
/// For the statements the merger, pushes and pulls run many times. (Each
/// returns a `Send` future, as [`PgInner::run`] needs.)
pub(super) trait Cached: deadpool_postgres::GenericClient {
    fn exec<'a>(
        &'a self,
        sql: &'a str,
        params: Params<'a>,
    ) -> impl Future<Output = Result<u64>> + Send + 'a {
        async move {
            let statement = self.prepare_cached(sql).await?;
            Ok(self.execute(&statement, params).await?)
        }
    }

    fn rows<'a>(
        &'a self,
        sql: &'a str,
        params: Params<'a>,
    ) -> impl Future<Output = Result<Vec<tokio_postgres::Row>>> + Send + 'a {
        async move {
            let statement = self.prepare_cached(sql).await?;
            Ok(self.query(&statement, params).await?)
        }
    }

    fn one<'a>(
        &'a self,
        sql: &'a str,
        params: Params<'a>,
    ) -> impl Future<Output = Result<tokio_postgres::Row>> + Send + 'a {
        async move {
            let statement = self.prepare_cached(sql).await?;
            Ok(self.query_one(&statement, params).await?)
        }
    }

    fn opt<'a>(
        &'a self,
        sql: &'a str,
        params: Params<'a>,
    ) -> impl Future<Output = Result<Option<tokio_postgres::Row>>> + Send + 'a {
        async move {
            let statement = self.prepare_cached(sql).await?;
            Ok(self.query_opt(&statement, params).await?)
        }
    }
}

impl<T: deadpool_postgres::GenericClient> Cached for T {}
