//! Bilan's territory sync server, as a library: [`router`] builds the axum app
//! and [`launch`] serves it on a bound listener until a shutdown future
//! resolves. The binary only parses configuration.
//!
//! Layers, each calling only the ones below it:
//! - entries: [`http`] (the API), [`web`] (the CS review pages), the binary;
//! - [`service`]: every rule (access, validation, lockouts, tokens, audit
//!   entries, the sync, review and report use-cases);
//! - [`storage`]: the traits a backend implements, in plain types;
//!   [`sqlite`] is the embedded default, [`postgres`] the one for several
//!   instances (chosen by `database_url`);
//! - leaves any layer may use: [`codec`] (stored formats), [`merge`]
//!   (merging pushed changes, no I/O), [`sql`] (query text both backends
//!   share), [`reports`] (figures), [`imports`] (CSV parsing), [`audit`],
//!   [`error`], [`config`], [`transfer`] (the move from SQLite to
//!   PostgreSQL), [`photos`] (the photo store: a local folder or
//!   an S3-compatible bucket), [`backup`], [`admin`] (the demo territory).

pub mod admin;
pub mod audit;
pub mod backup;
pub mod bsi_report;
pub mod codec;
pub mod config;
pub mod demo_history;
pub mod demo_photos;
pub mod error;
pub mod exports;
pub mod http;
pub mod imports;
pub mod merge;
pub mod pdf;
pub mod photos;
pub mod postgres;
pub mod reports;
pub mod service;
pub mod sql;
pub mod sqlite;
pub mod storage;
pub mod transfer;
pub mod web;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use tokio::net::TcpListener;
use tower_http::trace::TraceLayer;

pub use config::Config;
pub use error::{ApiError, StoreError};
pub use service::Service;
pub use sqlite::SqliteStore;
pub use storage::Backend;

/// Everything a request handler needs.
pub struct Inner {
    pub config: Config,
    pub service: Service,
    pub photos: photos::PhotoStore,
}

/// Shared application state (cheap to clone).
#[derive(Clone)]
pub struct AppState(pub Arc<Inner>);

/// Opens the storage backend the configuration names: PostgreSQL at
/// `database_url`, or embedded SQLite in `data_dir` without one.
pub fn open_backend(config: &Config) -> Result<Arc<dyn Backend>, StoreError> {
    let retention =
        std::time::Duration::from_secs(config.log_retention_days.saturating_mul(24 * 3600));
    if !config.database_url.0.trim().is_empty() {
        let store = postgres::PgStore::open(&config.database_url.0)?;
        store.set_log_retention(retention);
        return Ok(Arc::new(store));
    }
    let store = SqliteStore::open(&config.db_path())?;
    store.set_log_retention(retention);
    Ok(Arc::new(store))
}

/// A service over a fresh in-memory SQLite database (tests, tools).
pub fn in_memory_service() -> Result<Service, StoreError> {
    Ok(Service::new(Arc::new(SqliteStore::in_memory()?)))
}

impl AppState {
    /// Opens the backend and photo folder named by the config.
    pub fn open(config: Config) -> Result<Self, StoreError> {
        std::fs::create_dir_all(&config.data_dir)?;
        let backend = open_backend(&config)?;
        tracing::debug!(backend = backend.name(), "storage open");
        let service = Service::new(backend).with_token_ttl(std::time::Duration::from_secs(
            config.token_ttl_days.saturating_mul(24 * 3600),
        ));
        let photos = photos::PhotoStore::open(&config.photo_backend())?;
        Ok(Self(Arc::new(Inner {
            config,
            service,
            photos,
        })))
    }

    /// Another instance beside a running one: the same service (one
    /// database), its own photo store handle and settings (tests of several
    /// instances).
    pub fn beside(config: Config, service: Service) -> Result<Self, StoreError> {
        let photos = photos::PhotoStore::open(&config.photo_backend())?;
        Ok(Self(Arc::new(Inner {
            config,
            service,
            photos,
        })))
    }

    /// The service layer.
    pub fn service(&self) -> &Service {
        &self.0.service
    }
}

/// The whole HTTP application.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .nest("/api/v1", http::api_routes())
        .merge(web::routes())
        // Bodies are limited per route (sync, photos) with JSON errors.
        .layer(DefaultBodyLimit::disable())
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Serves `router(state)` on `listener` until `shutdown` resolves, then lets
/// requests in flight finish.
pub async fn launch(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    tracing::info!(addr = %listener.local_addr()?, "serving");
    let every = state.0.config.compact_every_s;
    let compactor = (every > 0).then(|| tokio::spawn(compact_periodically(state.clone(), every)));
    let app = router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
    if let Some(task) = compactor {
        task.abort();
    }
    served
}

/// Log compaction in the background: keeps storage per inspection near one
/// snapshot however many edits it saw. Pushes interleave (one document per
/// transaction).
async fn compact_periodically(state: AppState, every_s: u64) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(every_s));
    tick.tick().await;
    loop {
        tick.tick().await;
        let s = state.clone();
        match tokio::task::spawn_blocking(move || s.service().compact()).await {
            Ok(Ok(r)) if r.documents > 0 || r.rows_cleared > 0 => tracing::info!(
                documents = r.documents,
                rows_cleared = r.rows_cleared,
                "log compacted"
            ),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "log compaction failed; retried next time"),
            Err(e) => tracing::error!(error = %e, "log compaction task panicked"),
        }
    }
}
