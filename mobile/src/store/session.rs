//! The session on this device: its id, the logged-in user, login and
//! logout, the author of its edits, the territory cursor.

use bilan_shared::Author;
use bilan_shared::ids::*;
use bilan_shared::protocol::UserInfo;

use super::{DeviceStore, decoded};
use crate::error::{MobileError, Result};

impl DeviceStore {
    /// This installation's id (its automerge actor).
    pub fn device_id(&self) -> Result<DeviceId> {
        self.setting("device_id")?
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| MobileError::Invalid("identifiant d'appareil absent".into()))
    }

    /// The logged-in user, kept so the app works offline after one login.
    pub fn user(&self) -> Result<Option<UserInfo>> {
        Ok(self
            .setting("user")?
            .and_then(|j| decoded("settings.user", &j, serde_json::from_str(&j))))
    }

    /// Remembers a successful login.
    pub fn save_login(&self, server_url: &str, token: &str, user: &UserInfo) -> Result<()> {
        if let Some(previous) = self.user()?
            && previous.territory_id != user.territory_id
        {
            // Another territory: its cursor and reference data are meaningless here.
            self.set_setting("cursor", "0")?;
            self.set_setting("ref_revision", "0")?;
        }
        *self.author.lock().unwrap_or_else(|p| p.into_inner()) = None;
        self.set_setting("server_url", server_url.trim_end_matches('/'))?;
        self.set_setting("token", token)?;
        self.set_setting(
            "user",
            &serde_json::to_string(user).map_err(|e| MobileError::Invalid(e.to_string()))?,
        )?;
        Ok(())
    }

    /// Forgets the session and everything of the territory on this device
    /// (documents, reference data, photos), keeping the device's id and the
    /// server address, so the next person starts clean. Refused, changing
    /// nothing, while a change or a photo has not reached the server: checked
    /// inside the transaction, so an edit made meanwhile cannot be lost.
    pub fn logout(&self) -> Result<()> {
        let mut docs = self.docs.lock().unwrap_or_else(|p| p.into_inner());
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let changes: i64 = tx.query_row("SELECT COUNT(*) FROM outbox", [], |r| r.get(0))?;
        let photos: i64 =
            tx.query_row("SELECT COUNT(*) FROM photos WHERE uploaded = 0", [], |r| {
                r.get(0)
            })?;
        if changes > 0 || photos > 0 {
            return Err(MobileError::PendingBeforeLogout {
                changes: changes as u64,
                photos: photos as u64,
            });
        }
        tx.execute_batch(
            "DELETE FROM changes; DELETE FROM outbox; DELETE FROM docs; DELETE FROM summaries;
             DELETE FROM photos; DELETE FROM offices; DELETE FROM complexes;
             DELETE FROM settings WHERE key NOT IN ('device_id', 'server_url');",
        )?;
        tx.commit()?;
        drop(conn);
        docs.clear();
        *self.author.lock().unwrap_or_else(|p| p.into_inner()) = None;
        // Every photo is on the server: the local copies are only a cache now.
        if let Ok(entries) = std::fs::read_dir(&self.photo_dir) {
            for e in entries.flatten() {
                if let Err(err) = std::fs::remove_file(e.path()) {
                    tracing::warn!(path = %e.path().display(), error = %err, "photo file kept after logout");
                }
            }
        }
        Ok(())
    }

    pub(super) fn author(&self) -> Result<Author> {
        let user = self.user()?.ok_or(MobileError::NotLoggedIn)?;
        Ok(Author::device(
            self.device_id()?,
            user.id,
            &user.display_name,
        ))
    }

    /// Territory sync cursor.
    pub fn cursor(&self) -> Result<u64> {
        Ok(self
            .setting("cursor")?
            .and_then(|s| s.parse().ok())
            .unwrap_or(0))
    }
}
