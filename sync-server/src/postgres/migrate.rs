//! The PostgreSQL schema: version 1 (`schema.sql`) then each later
//! version's step, applied at start in one transaction under an advisory
//! lock (instances starting together apply it once); a database newer than
//! this build is refused, untouched.

use deadpool_postgres::Pool;

use super::core::Result;
use crate::error::StoreError;

/// Schema version of the PostgreSQL database written by this build.
pub const PG_SCHEMA_VERSION: i32 = 5;

/// The step to each version after 1, in order: (version, SQL). A new
/// database goes through them too, so there is one path to test.
const STEPS: &[(i32, &str)] = &[
    (2, include_str!("migrate_v2.sql")),
    (3, include_str!("migrate_v3.sql")),
    (4, include_str!("migrate_v4.sql")),
    (5, include_str!("migrate_v5.sql")),
];

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

/// Creates the schema or brings the one found to [`PG_SCHEMA_VERSION`], in
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
    if let Some(v) = found
        && v > PG_SCHEMA_VERSION
    {
        return Err(StoreError::DatabaseTooNew {
            found: i64::from(v),
            supported: i64::from(PG_SCHEMA_VERSION),
        });
    }
    let created = found.is_none();
    if created {
        tx.batch_execute(include_str!("schema.sql")).await?;
        tx.execute("INSERT INTO schema_version (version) VALUES (1)", &[])
            .await?;
    }
    let from = found.unwrap_or(1);
    let mut version = from;
    for (step, sql) in STEPS.iter().filter(|(v, _)| *v > from) {
        tx.batch_execute(sql).await?;
        tx.execute("UPDATE schema_version SET version = $1", &[step])
            .await?;
        version = *step;
    }
    if created {
        tracing::info!(version, "PostgreSQL schema created");
    } else if found != Some(version) {
        tracing::info!(from = found, to = version, "PostgreSQL schema migrated");
    }
    Ok(created)
}
