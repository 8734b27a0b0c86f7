//! The PostgreSQL schema: created at its current version, refused when the
//! database is newer than this build. One transaction, under an advisory
//! lock, so instances starting together apply it once.

use deadpool_postgres::Pool;

use super::core::Result;
use crate::error::StoreError;

/// Schema version of the PostgreSQL database written by this build.
pub const PG_SCHEMA_VERSION: i32 = 1;

/// Key of the advisory lock held while migrating.
const MIGRATION_LOCK: i64 = 0x6269_6c61_6e00_0001;

pub(super) async fn migrate(pool: &Pool) -> Result<()> {
    let mut client = pool
        .get()
        .await
        .map_err(|e| StoreError::Unavailable(format!("base PostgreSQL : {e}")))?;
    let tx = client.transaction().await?;
    apply_schema(&*tx).await?;
    tx.commit().await?;
    Ok(())
}

/// Creates the schema at [`PG_SCHEMA_VERSION`] or checks the one found, in
/// the caller's transaction (under the migration lock until it ends);
/// true when it was created now.
pub(super) async fn apply_schema(tx: &impl tokio_postgres::GenericClient) -> Result<bool> {
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        .await?;
    let found: Option<i32> = tx
        .query_opt("SELECT version FROM schema_version", &[])
        .await?
        .map(|r| r.get(0));
    match found {
        Some(v) if v > PG_SCHEMA_VERSION => Err(StoreError::DatabaseTooNew {
            found: i64::from(v),
            supported: i64::from(PG_SCHEMA_VERSION),
        }),
        Some(_) => Ok(false),
        None => {
            tx.batch_execute(include_str!("schema.sql")).await?;
            tx.execute(
                "INSERT INTO schema_version (version) VALUES ($1)",
                &[&PG_SCHEMA_VERSION],
            )
            .await?;
            tracing::info!(version = PG_SCHEMA_VERSION, "PostgreSQL schema created");
            Ok(true)
        }
    }
}
