//! Audit log rows: appended (in the transaction of what they describe when
//! there is one), read newest first.

use bilan_shared::doc::now_ms;
use bilan_shared::ids::TerritoryId;
use rusqlite::{Connection, params};

use super::core::Result;
use super::store::SqliteStore;
use crate::audit::{AuditAction, AuditEntry};
use crate::storage::AuditLog;

/// Appends `e`, stamped now, on `conn` (or the transaction it is in).
pub(super) fn write_audit(conn: &Connection, e: &AuditEntry) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO audit (at, territory_id, actor, action, target, detail)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        now_ms(),
        e.territory_id.map(|t| t.to_string()),
        e.actor,
        e.action.code(),
        e.target,
        e.detail
    ])?;
    Ok(())
}

impl AuditLog for SqliteStore {
    fn append_audit(&self, entry: &AuditEntry) -> Result<()> {
        write_audit(&self.lock(), entry)
    }

    fn audit_entries(&self, territory: Option<TerritoryId>, limit: u32) -> Result<Vec<AuditEntry>> {
        let conn = self.reader()?;
        let mut stmt = conn.prepare_cached(
            "SELECT at, territory_id, actor, action, target, detail FROM audit
             WHERE ?1 IS NULL OR territory_id = ?1 ORDER BY seq DESC LIMIT ?2",
        )?;
        let rows = stmt
            .query_map(params![territory.map(|t| t.to_string()), limit], |r| {
                let code: String = r.get(3)?;
                let territory: Option<String> = r.get(1)?;
                Ok((
                    code,
                    AuditEntry {
                        at: r.get(0)?,
                        territory_id: territory.and_then(|t| t.parse().ok()),
                        actor: r.get(2)?,
                        action: AuditAction::Review,
                        target: r.get(4)?,
                        detail: r.get(5)?,
                    },
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        // Codes are only written from AuditAction (and a newer server's
        // database is refused), so an unknown one is damage: skipped, logged.
        Ok(rows
            .into_iter()
            .filter_map(|(code, e)| match AuditAction::from_code(&code) {
                Some(action) => Some(AuditEntry { action, ..e }),
                None => {
                    tracing::warn!(code, "unknown audit action skipped");
                    None
                }
            })
            .collect())
    }
}
