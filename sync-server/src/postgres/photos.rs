//! Photo rows on PostgreSQL: each photo received (size, type) and the
//! territories that sent it.

use bilan_shared::doc::now_ms;
use bilan_shared::ids::{PhotoHash, TerritoryId};

use super::core::Result;
use super::store::PgStore;
use crate::storage::{PhotoIndex, Scope};

impl PhotoIndex for PgStore {
    fn photo_received(
        &self,
        hash: &PhotoHash,
        size: u64,
        mime: &str,
        territory: TerritoryId,
    ) -> Result<()> {
        self.run(async {
            let client = self.client().await?;
            client
                .execute(
                    "INSERT INTO photos (hash, size, mime, created_at) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (hash) DO NOTHING",
                    &[&hash.as_str(), &(size as i64), &mime, &now_ms()],
                )
                .await?;
            client
                .execute(
                    "INSERT INTO photo_access (hash, territory_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                    &[&hash.as_str(), &territory.to_string()],
                )
                .await?;
            Ok(())
        })
    }

    fn photo_meta(&self, scope: &Scope, hash: &PhotoHash) -> Result<Option<(u64, String)>> {
        self.run(async {
            let client = self.client().await?;
            let territory = scope.territory.to_string();
            let allowed = match scope.office {
                // A document can name any hash: the photo must also have
                // been sent by the territory (photo_access).
                Some(office) => client
                    .query_opt(
                        "SELECT 1 FROM photo_refs r JOIN photo_access a ON a.hash = r.hash AND a.territory_id = r.territory_id
                         WHERE r.hash = $1 AND r.territory_id = $2 AND r.office_id = $3",
                        &[&hash.as_str(), &territory, &office.to_string()],
                    )
                    .await?
                    .is_some(),
                None => client
                    .query_opt(
                        "SELECT 1 FROM photo_access WHERE hash = $1 AND territory_id = $2",
                        &[&hash.as_str(), &territory],
                    )
                    .await?
                    .is_some(),
            };
            if !allowed {
                return Ok(None);
            }
            Ok(client
                .query_opt("SELECT size, mime FROM photos WHERE hash = $1", &[&hash.as_str()])
                .await?
                .map(|r| (r.get::<_, i64>(0) as u64, r.get(1))))
        })
    }
}
