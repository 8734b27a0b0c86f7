//! Audit log rows on PostgreSQL: appended, read newest first.

use bilan_shared::doc::now_ms;
use bilan_shared::ids::TerritoryId;
use deadpool_postgres::GenericClient;

use super::core::Result;
use super::store::PgStore;
use crate::audit::{AuditAction, AuditEntry};
use crate::storage::AuditLog;

/// Appends `e`, stamped now, on `client` (or the transaction it is in).
pub(super) async fn write_audit(client: &impl GenericClient, e: &AuditEntry) -> Result<()> {
    client
        .execute(
            "INSERT INTO audit (at, territory_id, actor, action, target, detail)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &now_ms(),
                &e.territory_id.map(|t| t.to_string()),
                &e.actor,
                &e.action.code(),
                &e.target,
                &e.detail,
            ],
        )
        .await?;
    Ok(())
}

impl AuditLog for PgStore {
    fn append_audit(&self, entry: &AuditEntry) -> Result<()> {
        self.run(async { write_audit(&self.client().await?, entry).await })
    }

    fn audit_entries(&self, territory: Option<TerritoryId>, limit: u32) -> Result<Vec<AuditEntry>> {
        self.run(async {
            let rows = self
                .client()
                .await?
                .query(
                    "SELECT at, territory_id, actor, action, target, detail FROM audit
                     WHERE $1::TEXT IS NULL OR territory_id = $1 ORDER BY seq DESC LIMIT $2",
                    &[&territory.map(|t| t.to_string()), &i64::from(limit)],
                )
                .await?;
            // Codes are only written from AuditAction (and a newer server's
            // database is refused), so an unknown one is damage: skipped, logged.
            Ok(rows
                .into_iter()
                .filter_map(|r| {
                    let code: String = r.get(3);
                    let Some(action) = AuditAction::from_code(&code) else {
                        tracing::warn!(code, "unknown audit action skipped");
                        return None;
                    };
                    let territory: Option<String> = r.get(1);
                    Some(AuditEntry {
                        at: r.get(0),
                        territory_id: territory.and_then(|t| t.parse().ok()),
                        actor: r.get(2),
                        action,
                        target: r.get(4),
                        detail: r.get(5),
                    })
                })
                .collect())
        })
    }
}
