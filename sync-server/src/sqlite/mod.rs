//! The embedded SQLite backend, the default: one file per concern, each
//! implementing its trait of [`crate::storage`] on [`SqliteStore`].
//!
//! - `core`: the writer connection and its lock, the read pool, the merger's progress;
//! - `store`: opening the database, the server's actor, the merger thread;
//! - `migrate`: the schema and its migrations (`schema.sql`, `migrate_v1_*.sql`);
//! - `log`: pushes with group commit, server edits' bundles, compaction ([`crate::storage::SyncLog`]);
//! - `pull`: a page of the log for a device;
//! - `snapshots`: loading a document (snapshot + bundles) and writing snapshots;
//! - `merger`: the background thread folding the log into documents and projection;
//! - `projection`: the summary, ratings, findings... rows of a merged document;
//! - `documents`: inspections and summaries, server edits ([`crate::storage::DocumentStore`]);
//! - `reports`: the review pages' SQL ([`crate::storage::ReportStore`]);
//! - `accounts`, `reference`, `photos`, `audit`: their rows and traits;
//! - `files`: the database file for backups; `export`: its tables for the move to PostgreSQL;
//! - `error`: SQLite's failures as `StoreError`.
//!
//! Nothing outside this folder names `rusqlite` (tests aside), and no rule
//! lives here: the service layer decides scopes, limits and audit entries.

mod accounts;
mod audit;
mod core;
mod documents;
mod error;
pub mod export;
mod files;
mod log;
mod merger;
mod migrate;
mod photos;
mod projection;
mod pull;
mod reference;
mod reports;
mod snapshots;
mod store;
#[cfg(test)]
mod tests;

pub use self::core::StoreCore;
pub use files::{check_database, copy_database};
pub use migrate::DB_SCHEMA_VERSION;
pub use store::{DEFAULT_LOG_RETENTION, SqliteStore};

impl crate::storage::Backend for SqliteStore {
    fn name(&self) -> &'static str {
        "sqlite"
    }
}
