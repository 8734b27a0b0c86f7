//! The database's schema: created at its current version, migrated from an
//! older one in one transaction, refused when newer than this build knows.

use rusqlite::Connection;

use super::core::Result;
use crate::error::StoreError;

/// Schema version of the server database written by this build.
pub const DB_SCHEMA_VERSION: i64 = 6;

/// Brings the database to [`DB_SCHEMA_VERSION`] in one transaction:
/// creates a new one, migrates an older one, refuses a newer one.
pub(super) fn migrate(conn: &mut Connection) -> Result<()> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version > DB_SCHEMA_VERSION {
        return Err(StoreError::DatabaseTooNew {
            found: version,
            supported: DB_SCHEMA_VERSION,
        });
    }
    let tx = conn.transaction()?;
    if version == 1 {
        tx.execute_batch(include_str!("migrate_v1_before.sql"))?;
    }
    tx.execute_batch(include_str!("schema.sql"))?;
    if version == 1 {
        tx.execute_batch(include_str!("migrate_v1_after.sql"))?;
        tracing::info!("database migrated from schema 1 to 2");
    }
    if version == 1 || version == 2 {
        // Rows written before: as old as can be (cleared by the next compaction).
        tx.execute_batch("ALTER TABLE log ADD COLUMN at INTEGER NOT NULL DEFAULT 0")?;
        tracing::info!(from = version, "database migrated to schema 3");
    }
    if (1..=3).contains(&version) {
        // Rows written before were merged when pushed.
        tx.execute_batch(
            "ALTER TABLE log ADD COLUMN rejected TEXT;
             ALTER TABLE log ADD COLUMN reason TEXT;
             INSERT OR REPLACE INTO meta (key, value)
               SELECT 'merged_seq', COALESCE(MAX(seq), 0) FROM log;",
        )?;
        tracing::info!(from = version, "database migrated to schema 4");
    }
    // Schema 5: the year the CS moved a work to (none before). Added where
    // missing: a schema 1 database gets its tables from schema.sql above.
    let planned: i64 = tx.query_row(
        "SELECT COUNT(*) FROM pragma_table_info('recommendations') WHERE name = 'planned_year'",
        [],
        |r| r.get(0),
    )?;
    if planned == 0 {
        tx.execute_batch("ALTER TABLE recommendations ADD COLUMN planned_year INTEGER")?;
        tracing::info!(from = version, "database migrated to schema 5");
    }
    // Schema 6 adds the assignments table (created by schema.sql above).
    // Pulls walk a territory's log on this covering index: who wrote each
    // row and whether it was refused are read without touching the row,
    // whose bundle (kilobytes, in overflow pages) comes before `rejected`.
    // It replaces the (territory, seq) index of earlier builds, which can
    // still open the database (an index is not part of the format).
    tx.execute_batch(
        "DROP INDEX IF EXISTS log_territory_seq;
         CREATE INDEX IF NOT EXISTS log_pull ON log (territory_id, seq, device_id, rejected);",
    )?;
    tx.pragma_update(None, "user_version", DB_SCHEMA_VERSION)?;
    tx.commit()?;
    Ok(())
}
