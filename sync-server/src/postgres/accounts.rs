//! Account rows on PostgreSQL: users and their password hashes, login
//! tokens (stored hashed), failed-login counters per name and per address.

use bilan_shared::doc::now_ms;
use bilan_shared::domain::Role;
use bilan_shared::ids::{DeviceId, TerritoryId, UserId};
use bilan_shared::protocol::UserInfo;
use tokio_postgres::Row;

use super::core::{Result, id};
use super::store::PgStore;
use crate::error::StoreError;
use crate::storage::{AccountStore, LockKey};

const USER_COLS: &str = "u.id, u.username, u.display_name, u.role, u.territory_id, u.office_id";

fn row_user(r: &Row) -> Result<UserInfo> {
    let role: String = r.get(3);
    Ok(UserInfo {
        id: id(r.get(0))?,
        username: r.get(1),
        display_name: r.get(2),
        role: Role::from_code(&role)
            .ok_or_else(|| StoreError::Corrupt(format!("rôle « {role} »")))?,
        territory_id: r.get::<_, Option<String>>(4).map(id).transpose()?,
        office_id: r.get::<_, Option<String>>(5).map(id).transpose()?,
    })
}

impl AccountStore for PgStore {
    fn insert_user(&self, u: &UserInfo, password_hash: &str) -> Result<()> {
        self.run(async {
            let n = self
                .client()
                .await?
                .execute(
                    "INSERT INTO users (id, username, display_name, role, territory_id, office_id, password_hash, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (username) DO NOTHING",
                    &[
                        &u.id.to_string(),
                        &u.username,
                        &u.display_name,
                        &u.role.code(),
                        &u.territory_id.map(|t| t.to_string()),
                        &u.office_id.map(|o| o.to_string()),
                        &password_hash,
                        &now_ms(),
                    ],
                )
                .await?;
            if n == 0 {
                return Err(StoreError::AlreadyExists(format!("utilisateur {}", u.username)));
            }
            Ok(())
        })
    }

    fn set_password_hash(&self, username: &str, hash: &str) -> Result<bool> {
        self.run(async {
            Ok(self
                .client()
                .await?
                .execute(
                    "UPDATE users SET password_hash = $1 WHERE username = $2",
                    &[&hash, &username],
                )
                .await?
                > 0)
        })
    }

    fn user_with_hash(&self, username: &str) -> Result<Option<(UserInfo, String)>> {
        self.run(async {
            self.client()
                .await?
                .query_opt(
                    &format!(
                        "SELECT {USER_COLS}, u.password_hash FROM users u WHERE u.username = $1"
                    ),
                    &[&username],
                )
                .await?
                .map(|r| Ok((row_user(&r)?, r.get(6))))
                .transpose()
        })
    }

    fn territory_users(&self, territory: TerritoryId) -> Result<Vec<UserInfo>> {
        self.run(async {
            self.client()
                .await?
                .query(
                    &format!(
                        "SELECT {USER_COLS} FROM users u WHERE u.territory_id = $1 ORDER BY u.role, u.display_name"
                    ),
                    &[&territory.to_string()],
                )
                .await?
                .iter()
                .map(row_user)
                .collect()
        })
    }

    fn insert_token(&self, token_hash: &str, user: UserId, device: Option<DeviceId>) -> Result<()> {
        self.run(async {
            self.client()
                .await?
                .execute(
                    "INSERT INTO tokens (token_hash, user_id, device_id, created_at) VALUES ($1, $2, $3, $4)",
                    &[
                        &token_hash,
                        &user.to_string(),
                        &device.map(|d| d.to_string()),
                        &now_ms(),
                    ],
                )
                .await?;
            Ok(())
        })
    }

    fn user_for_token(&self, token_hash: &str, issued_after: i64) -> Result<Option<UserInfo>> {
        self.run(async {
            self.client()
                .await?
                .query_opt(
                    &format!(
                        "SELECT {USER_COLS} FROM tokens t JOIN users u ON u.id = t.user_id
                         WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND t.created_at > $2"
                    ),
                    &[&token_hash, &issued_after],
                )
                .await?
                .map(|r| row_user(&r))
                .transpose()
        })
    }

    fn revoke_token(&self, token_hash: &str) -> Result<()> {
        self.run(async {
            self.client()
                .await?
                .execute(
                    "UPDATE tokens SET revoked_at = $1 WHERE token_hash = $2 AND revoked_at IS NULL",
                    &[&now_ms(), &token_hash],
                )
                .await?;
            Ok(())
        })
    }

    fn revoke_user_tokens(&self, username: &str) -> Result<usize> {
        self.run(async {
            Ok(self
                .client()
                .await?
                .execute(
                    "UPDATE tokens SET revoked_at = $1 WHERE revoked_at IS NULL
                     AND user_id = (SELECT id FROM users WHERE username = $2)",
                    &[&now_ms(), &username],
                )
                .await? as usize)
        })
    }

    fn locked_until(&self, key: LockKey<'_>) -> Result<Option<i64>> {
        let (sql, k) = match key {
            LockKey::User(n) => (
                "SELECT locked_until FROM login_failures WHERE username = $1",
                n,
            ),
            LockKey::Address(a) => (
                "SELECT locked_until FROM address_failures WHERE address = $1",
                a,
            ),
        };
        self.run(async {
            Ok(self
                .client()
                .await?
                .query_opt(sql, &[&k])
                .await?
                .map(|r| r.get(0)))
        })
    }

    fn count_failure(&self, key: LockKey<'_>, now: i64, window_ms: i64) -> Result<i64> {
        self.run(async {
            let client = self.client().await?;
            let row = match key {
                LockKey::User(name) => {
                    client
                        .query_one(
                            "INSERT INTO login_failures (username, failures, locked_until) VALUES ($1, 1, 0)
                             ON CONFLICT (username) DO UPDATE SET failures = login_failures.failures + 1
                             RETURNING failures",
                            &[&name],
                        )
                        .await?
                }
                LockKey::Address(address) => {
                    client
                        .query_one(
                            "INSERT INTO address_failures (address, failures, window_start, locked_until)
                             VALUES ($1, 1, $2, 0)
                             ON CONFLICT (address) DO UPDATE SET
                               failures = CASE WHEN address_failures.window_start < $2 - $3
                                          THEN 1 ELSE address_failures.failures + 1 END,
                               window_start = CASE WHEN address_failures.window_start < $2 - $3
                                          THEN $2 ELSE address_failures.window_start END
                             RETURNING failures",
                            &[&address, &now, &window_ms],
                        )
                        .await?
                }
            };
            Ok(row.get(0))
        })
    }

    fn lock_out(&self, key: LockKey<'_>, now: i64, until: i64) -> Result<()> {
        self.run(async {
            let client = self.client().await?;
            match key {
                LockKey::User(name) => {
                    client
                        .execute(
                            "UPDATE login_failures SET failures = 0, locked_until = $2 WHERE username = $1",
                            &[&name, &until],
                        )
                        .await?
                }
                LockKey::Address(address) => {
                    client
                        .execute(
                            "UPDATE address_failures SET failures = 0, window_start = $2, locked_until = $3
                             WHERE address = $1",
                            &[&address, &now, &until],
                        )
                        .await?
                }
            };
            Ok(())
        })
    }

    fn clear_failures(&self, key: LockKey<'_>) -> Result<()> {
        let (sql, k) = match key {
            LockKey::User(n) => ("DELETE FROM login_failures WHERE username = $1", n),
            LockKey::Address(a) => ("DELETE FROM address_failures WHERE address = $1", a),
        };
        self.run(async {
            self.client().await?.execute(sql, &[&k]).await?;
            Ok(())
        })
    }
}
