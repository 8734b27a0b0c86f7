//! Photo rows: each photo received (size, type) and the territories that
//! sent it; the bytes are in the photo store, not here.

use bilan_shared::doc::now_ms;
use bilan_shared::ids::{PhotoHash, TerritoryId};
use rusqlite::{OptionalExtension, params};

use super::core::Result;
use super::store::SqliteStore;
use crate::storage::{PhotoIndex, Scope};

impl PhotoIndex for SqliteStore {
    fn photo_received(
        &self,
        hash: &PhotoHash,
        size: u64,
        mime: &str,
        territory: TerritoryId,
    ) -> Result<()> {
        let conn = self.lock();
        conn.execute(
            "INSERT OR IGNORE INTO photos (hash, size, mime, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![hash.as_str(), size as i64, mime, now_ms()],
        )?;
        conn.execute(
            "INSERT OR IGNORE INTO photo_access (hash, territory_id) VALUES (?1, ?2)",
            params![hash.as_str(), territory.to_string()],
        )?;
        Ok(())
    }

    fn photo_meta(&self, scope: &Scope, hash: &PhotoHash) -> Result<Option<(u64, String)>> {
        self.settle();
        let conn = self.reader()?;
        let territory = scope.territory.to_string();
        let allowed: bool = match scope.office {
            Some(office) => conn
                .query_row(
                    // A document can name any hash: the photo must also have
                    // been sent by the territory (photo_access).
                    "SELECT 1 FROM photo_refs r JOIN photo_access a ON a.hash = r.hash AND a.territory_id = r.territory_id
                     WHERE r.hash = ?1 AND r.territory_id = ?2 AND r.office_id = ?3",
                    params![hash.as_str(), territory, office.to_string()],
                    |_| Ok(true),
                )
                .optional()?
                .unwrap_or(false),
            None => conn
                .query_row(
                    "SELECT 1 FROM photo_access WHERE hash = ?1 AND territory_id = ?2",
                    params![hash.as_str(), territory],
                    |_| Ok(true),
                )
                .optional()?
                .unwrap_or(false),
        };
        if !allowed {
            return Ok(None);
        }
        Ok(conn
            .query_row(
                "SELECT size, mime FROM photos WHERE hash = ?1",
                [hash.as_str()],
                |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?)),
            )
            .optional()?)
    }
}
