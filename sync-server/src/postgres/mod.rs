//! The PostgreSQL backend, for deployments past one machine. One file per
//! concern, each implementing its trait of [`crate::storage`] on
//! [`PgStore`]: `accounts`, `reference`, `photos` (metadata), `audit`, the
//! sync log (`log`, `pull`), documents (`snapshots`, `projection`,
//! `documents`), the merger (`merger`, with its progress in `progress`)
//! and the review pages' queries (`reports`); `migrate` keeps the schema
//! and `import` writes a SQLite deployment's tables (`crate::transfer`);
//! `dump` is the database as a backup file (`pg_dump`, `pg_restore`).
//! Chosen by the `database_url` setting.
//!
//! Why `tokio-postgres` with `deadpool-postgres`: the maintained async
//! driver of the tokio ecosystem the server already runs on, with plain SQL
//! (the same statements as the SQLite backend, in PostgreSQL's dialect) and
//! a small pool; `sqlx`'s compile-time checking would need a database at
//! build time.

mod accounts;
mod audit;
mod core;
mod documents;
pub mod dump;
mod error;
pub mod import;
mod log;
mod merger;
mod migrate;
mod photos;
mod progress;
mod projection;
mod pull;
mod reference;
mod reports;
mod snapshots;
mod store;

pub use merger::MERGE_LOCK;
pub use migrate::PG_SCHEMA_VERSION;
pub use store::PgStore;

impl crate::storage::Backend for PgStore {
    fn name(&self) -> &'static str {
        "postgresql"
    }
}
