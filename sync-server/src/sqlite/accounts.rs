//! Account rows: users and their password hashes, login tokens (stored
//! hashed), failed-login counters per user name and per client address.
//! The thresholds and lifetimes are the service layer's.

use bilan_shared::doc::now_ms;
use bilan_shared::domain::Role;
use bilan_shared::ids::{DeviceId, TerritoryId, UserId};
use bilan_shared::protocol::UserInfo;
use rusqlite::{OptionalExtension, params};

use super::core::{Result, parse_id};
use super::store::SqliteStore;
use crate::error::StoreError;
use crate::storage::{AccountStore, LockKey};

const USER_COLS: &str = "u.id, u.username, u.display_name, u.role, u.territory_id, u.office_id";

fn row_user(r: &rusqlite::Row) -> rusqlite::Result<UserInfo> {
    let role: String = r.get(3)?;
    Ok(UserInfo {
        id: parse_id(r.get(0)?)?,
        username: r.get(1)?,
        display_name: r.get(2)?,
        role: Role::from_code(&role).ok_or_else(|| {
            rusqlite::Error::InvalidColumnType(3, "role".into(), rusqlite::types::Type::Text)
        })?,
        territory_id: r.get::<_, Option<String>>(4)?.map(parse_id).transpose()?,
        office_id: r.get::<_, Option<String>>(5)?.map(parse_id).transpose()?,
    })
}

impl AccountStore for SqliteStore {
    fn insert_user(&self, u: &UserInfo, password_hash: &str) -> Result<()> {
        let conn = self.lock();
        let exists: bool = conn
            .query_row(
                "SELECT 1 FROM users WHERE username = ?1",
                [&u.username],
                |_| Ok(true),
            )
            .optional()?
            .unwrap_or(false);
        if exists {
            return Err(StoreError::AlreadyExists(format!(
                "utilisateur {}",
                u.username
            )));
        }
        conn.execute(
            "INSERT INTO users (id, username, display_name, role, territory_id, office_id, password_hash, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                u.id.to_string(), u.username, u.display_name, u.role.code(),
                u.territory_id.map(|t| t.to_string()), u.office_id.map(|o| o.to_string()), password_hash, now_ms()
            ],
        )?;
        Ok(())
    }

    fn set_password_hash(&self, username: &str, hash: &str) -> Result<bool> {
        Ok(self.lock().execute(
            "UPDATE users SET password_hash = ?1 WHERE username = ?2",
            params![hash, username],
        )? > 0)
    }

    fn user_with_hash(&self, username: &str) -> Result<Option<(UserInfo, String)>> {
        Ok(self
            .reader()?
            .query_row(
                &format!("SELECT {USER_COLS}, u.password_hash FROM users u WHERE u.username = ?1"),
                [username],
                |r| Ok((row_user(r)?, r.get::<_, String>(6)?)),
            )
            .optional()?)
    }

    fn territory_users(&self, territory: TerritoryId) -> Result<Vec<UserInfo>> {
        let conn = self.reader()?;
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {USER_COLS} FROM users u WHERE u.territory_id = ?1 ORDER BY u.role, u.display_name"
        ))?;
        let rows = stmt
            .query_map([territory.to_string()], row_user)?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    fn insert_token(&self, token_hash: &str, user: UserId, device: Option<DeviceId>) -> Result<()> {
        self.lock().execute(
            "INSERT INTO tokens (token_hash, user_id, device_id, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![token_hash, user.to_string(), device.map(|d| d.to_string()), now_ms()],
        )?;
        Ok(())
    }

    fn user_for_token(&self, token_hash: &str, issued_after: i64) -> Result<Option<UserInfo>> {
        Ok(self
            .reader()?
            .query_row(
                &format!(
                    "SELECT {USER_COLS} FROM tokens t JOIN users u ON u.id = t.user_id
                     WHERE t.token_hash = ?1 AND t.revoked_at IS NULL AND t.created_at > ?2"
                ),
                params![token_hash, issued_after],
                row_user,
            )
            .optional()?)
    }

    fn revoke_token(&self, token_hash: &str) -> Result<()> {
        self.lock().execute(
            "UPDATE tokens SET revoked_at = ?1 WHERE token_hash = ?2 AND revoked_at IS NULL",
            params![now_ms(), token_hash],
        )?;
        Ok(())
    }

    fn revoke_user_tokens(&self, username: &str) -> Result<usize> {
        Ok(self.lock().execute(
            "UPDATE tokens SET revoked_at = ?1 WHERE revoked_at IS NULL
             AND user_id = (SELECT id FROM users WHERE username = ?2)",
            params![now_ms(), username],
        )?)
    }

    fn locked_until(&self, key: LockKey<'_>) -> Result<Option<i64>> {
        let (sql, k) = match key {
            LockKey::User(n) => (
                "SELECT locked_until FROM login_failures WHERE username = ?1",
                n,
            ),
            LockKey::Address(a) => (
                "SELECT locked_until FROM address_failures WHERE address = ?1",
                a,
            ),
        };
        Ok(self.lock().query_row(sql, [k], |r| r.get(0)).optional()?)
    }

    fn count_failure(&self, key: LockKey<'_>, now: i64, window_ms: i64) -> Result<i64> {
        let conn = self.lock();
        Ok(match key {
            LockKey::User(name) => conn.query_row(
                "INSERT INTO login_failures (username, failures, locked_until) VALUES (?1, 1, 0)
                 ON CONFLICT(username) DO UPDATE SET failures = failures + 1
                 RETURNING failures",
                [name],
                |r| r.get(0),
            )?,
            LockKey::Address(address) => conn.query_row(
                "INSERT INTO address_failures (address, failures, window_start, locked_until)
                 VALUES (?1, 1, ?2, 0)
                 ON CONFLICT(address) DO UPDATE SET
                   failures = CASE WHEN window_start < ?2 - ?3 THEN 1 ELSE failures + 1 END,
                   window_start = CASE WHEN window_start < ?2 - ?3 THEN ?2 ELSE window_start END
                 RETURNING failures",
                params![address, now, window_ms],
                |r| r.get(0),
            )?,
        })
    }

    fn lock_out(&self, key: LockKey<'_>, now: i64, until: i64) -> Result<()> {
        let conn = self.lock();
        match key {
            LockKey::User(name) => conn.execute(
                "UPDATE login_failures SET failures = 0, locked_until = ?2 WHERE username = ?1",
                params![name, until],
            )?,
            LockKey::Address(address) => conn.execute(
                "UPDATE address_failures SET failures = 0, window_start = ?2, locked_until = ?3
                 WHERE address = ?1",
                params![address, now, until],
            )?,
        };
        Ok(())
    }

    fn clear_failures(&self, key: LockKey<'_>) -> Result<()> {
        let conn = self.lock();
        match key {
            LockKey::User(name) => {
                conn.execute("DELETE FROM login_failures WHERE username = ?1", [name])?
            }
            LockKey::Address(address) => {
                conn.execute("DELETE FROM address_failures WHERE address = ?1", [address])?
            }
        };
        Ok(())
    }
}
