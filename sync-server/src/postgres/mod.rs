//! The PostgreSQL backend, for deployments past one machine (work in
//! progress: issue 13). One file per concern, each implementing its trait
//! of [`crate::storage`] on [`PgStore`]: `accounts`, `reference`, `photos`
//! (metadata) and `audit` so far; the sync log, documents and their
//! projection, the merger and the report queries come next, and only then
//! does the `backend` setting offer it.
//!
//! Why `tokio-postgres` with `deadpool-postgres`: the maintained async
//! driver of the tokio ecosystem the server already runs on, with plain SQL
//! (the same statements as the SQLite backend, in PostgreSQL's dialect) and
//! a small pool; `sqlx`'s compile-time checking would need a database at
//! build time.

mod accounts;
mod audit;
mod core;
mod error;
mod migrate;
mod photos;
mod reference;

pub use self::core::PgStore;
pub use migrate::PG_SCHEMA_VERSION;
