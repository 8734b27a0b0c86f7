//! The device store: everything the app holds, in one SQLite file (WAL,
//! `synchronous=FULL`). Each edit is one automerge change appended to the
//! `changes` table in the same transaction that makes it durable, before the
//! call returns; the `outbox` table lists the rows the server has not
//! acknowledged (a separate table, so acknowledging thousands of rows does
//! not rewrite their bytes).
//! Documents load from their last snapshot plus the changes after it.
//!
//! Here: the store itself (open, migrate, settings rows) and the types its
//! callers see. `schema` (tables and version), `session` (device id, login,
//! logout, author, cursor), `reference` (cached territory, offices,
//! complexes, CS settings, planned visits), `docs` (inspections and their edits, summaries,
//! conflicts, compaction), `previous` (the last approved BSI a new inspection
//! starts from, recommended work's statuses), `outbox` (what a sync sends and
//! stores), `photos` (attached photos and their upload queue).

mod docs;
mod outbox;
mod photos;
mod previous;
mod reference;
mod schema;
mod session;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use bilan_shared::domain::{InspectionStatus, Severity, Urgency};
use bilan_shared::ids::*;
use bilan_shared::protocol::DocChanges;
use bilan_shared::{Author, Inspection};
use rusqlite::{Connection, OptionalExtension, params};

use crate::error::{MobileError, Result};
pub use photos::PhotoView;
pub use previous::WorkUpdate;
use schema::{DEVICE_SCHEMA_VERSION, SCHEMA};

/// A photo waiting to be (or already) uploaded.
#[derive(Clone, Debug, PartialEq)]
pub struct PendingPhoto {
    pub hash: PhotoHash,
    pub path: PathBuf,
    pub size: u64,
    pub mime: String,
    pub attempts: u32,
}

/// What the sync bar shows.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SyncStatus {
    pub pending_changes: u64,
    pub pending_photos: u64,
    pub pending_photo_bytes: u64,
    pub last_sync_ms: Option<i64>,
    /// The last error, in French, until a sync succeeds.
    pub last_error: Option<String>,
}

/// One inspection as lists show it (kept in SQLite so lists never open documents).
#[derive(Clone, Debug, PartialEq)]
pub struct InspectionSummary {
    pub id: InspectionId,
    pub complex_id: ComplexId,
    pub status: InspectionStatus,
    pub created_at: i64,
    pub rated: u32,
    pub present: u32,
    pub findings: u32,
    /// Cost of recommended work due within 5 years (numerator of the IVP).
    pub cost_5y: f64,
    pub conflicts: u32,
    pub comments: u32,
    pub updated_at: i64,
}

/// A new finding.
#[derive(Clone, Debug)]
pub struct NewFinding {
    pub component: String,
    pub title: String,
    pub location: String,
    pub severity: Severity,
    pub description: String,
}

/// A new recommendation.
#[derive(Clone, Debug)]
pub struct NewRecommendation {
    pub work: String,
    pub urgency: Urgency,
    pub quantity: f64,
    pub unit: String,
    pub unit_cost: f64,
}

/// The device's local database plus its loaded documents.
pub struct DeviceStore {
    conn: Mutex<Connection>,
    docs: Mutex<HashMap<InspectionId, Inspection>>,
    /// Held while a document's snapshot is rewritten: two compactions (an
    /// edit's and a put-away's on another thread) take turns.
    compacting: Mutex<()>,
    photo_dir: PathBuf,
    /// Who edits on this device (read from settings once per login).
    author: Mutex<Option<Author>>,
}

/// One request's worth of unsent changes.
#[derive(Debug, Default)]
pub struct OutboxPage {
    pub docs: Vec<DocChanges>,
    /// Row ids to acknowledge once the server has them.
    pub ids: Vec<i64>,
    /// More unsent changes wait after this page.
    pub more: bool,
}

impl DeviceStore {
    /// Opens the store in `dir` (created if needed): `device.sqlite` and `photos/`.
    pub fn open(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir.join("photos"))?;
        let conn = Connection::open(dir.join("device.sqlite"))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version > DEVICE_SCHEMA_VERSION {
            return Err(MobileError::Invalid(format!(
                "données de l'appareil au schéma {version}, cette version de l'application connaît jusqu'au schéma {DEVICE_SCHEMA_VERSION} : mettez l'application à jour"
            )));
        }
        conn.execute_batch(SCHEMA)?;
        let has_original: bool = conn.query_row(
            "SELECT COUNT(*) > 0 FROM pragma_table_info('photos') WHERE name = 'original'",
            [],
            |r| r.get(0),
        )?;
        if !has_original {
            conn.execute("ALTER TABLE photos ADD COLUMN original TEXT", [])?;
        }
        if version == 1 {
            conn.execute(
                "INSERT OR IGNORE INTO outbox (id) SELECT id FROM changes WHERE acked = 0",
                [],
            )?;
        }
        if (1..=3).contains(&version) {
            // Reference data fetched before schema 3 left the assignments
            // out, before schema 4 the photo settings: fetch it all again.
            conn.execute("DELETE FROM settings WHERE key = 'ref_revision'", [])?;
        }
        conn.pragma_update(None, "user_version", DEVICE_SCHEMA_VERSION)?;
        let store = Self {
            conn: Mutex::new(conn),
            docs: Mutex::new(HashMap::new()),
            compacting: Mutex::new(()),
            photo_dir: dir.join("photos"),
            author: Mutex::new(None),
        };
        if store.setting("device_id")?.is_none() {
            store.set_setting("device_id", &DeviceId::new().to_string())?;
        }
        Ok(store)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn docs(&self) -> std::sync::MutexGuard<'_, HashMap<InspectionId, Inspection>> {
        self.docs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A setting (server URL, token, cursor...).
    pub fn setting(&self, key: &str) -> Result<Option<String>> {
        Ok(self
            .lock()
            .query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
                r.get(0)
            })
            .optional()?)
    }

    /// Writes a setting durably.
    pub fn set_setting(&self, key: &str, value: &str) -> Result<()> {
        self.lock().execute(
            "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            params![key, value],
        )?;
        Ok(())
    }

    /// Removes a setting.
    pub fn clear_setting(&self, key: &str) -> Result<()> {
        self.lock()
            .execute("DELETE FROM settings WHERE key = ?1", [key])?;
        Ok(())
    }

    /// SQLite's own integrity check ("ok" when sound).
    pub fn integrity_check(&self) -> Result<String> {
        Ok(self
            .lock()
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))?)
    }
}

/// A stored row that no longer decodes (a bug or a damaged file): logged with
/// the row at `warn` so it can be found and repaired, then left out of the
/// list instead of failing the whole screen.
fn decoded<T, E: std::fmt::Display>(
    what: &str,
    row: &str,
    r: std::result::Result<T, E>,
) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::warn!(table = what, row, error = %e, "stored row does not decode; left out");
            None
        }
    }
}

#[cfg(test)]
mod interleaving_tests;
#[cfg(test)]
mod tests;
