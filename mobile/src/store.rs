//! The device store: everything the app holds, in one SQLite file (WAL,
//! `synchronous=FULL`). Each edit is one automerge change appended to the
//! `changes` table in the same transaction that makes it durable, before the
//! call returns; the `outbox` table lists the rows the server has not
//! acknowledged (a separate table, so acknowledging thousands of rows does
//! not rewrite their bytes).
//! Documents load from their last snapshot plus the changes after it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use automerge::Change;
use bilan_shared::conflicts::{self, Conflict};
use bilan_shared::doc::{Finding, PhotoRef, Recommendation, SiteVisit, changes_of_chunks, now_ms};
use bilan_shared::domain::{Complex, InspectionStatus, Office, Rating, Severity, Urgency};
use bilan_shared::ids::*;
use bilan_shared::protocol::{DocChanges, ReferenceResponse, UserInfo};
use bilan_shared::{Author, Catalogue, Inspection, InspectionDoc, NewInspection};
use rayon::prelude::*;
use rusqlite::{Connection, OptionalExtension, params};
use serde_bytes::ByteBuf;
use sha2::{Digest, Sha256};

use crate::error::{MobileError, Result};

/// Schema version of the device database written by this build.
const DEVICE_SCHEMA_VERSION: i64 = 2;

/// Changes after a snapshot before the document is compacted into a new one.
const COMPACT_AFTER: i64 = 64;

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
    photo_dir: PathBuf,
    /// Who edits on this device (read from settings once per login).
    author: Mutex<Option<Author>>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS offices (id TEXT PRIMARY KEY, json TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS complexes (id TEXT PRIMARY KEY, json TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS docs (doc_id TEXT PRIMARY KEY, snapshot BLOB, updated_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS changes (
  id INTEGER PRIMARY KEY AUTOINCREMENT, doc_id TEXT NOT NULL, hash BLOB NOT NULL, bytes BLOB NOT NULL,
  local INTEGER NOT NULL, acked INTEGER NOT NULL, in_snapshot INTEGER NOT NULL DEFAULT 0,
  UNIQUE (doc_id, hash));
CREATE INDEX IF NOT EXISTS changes_outbox ON changes (acked, id);
-- Rows of `changes` not yet acknowledged by the server (schema 2; in schema 1
-- the `acked` column was the queue, now it only says where a row came from).
CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY);
CREATE INDEX IF NOT EXISTS changes_doc ON changes (doc_id, in_snapshot);
CREATE TABLE IF NOT EXISTS summaries (
  doc_id TEXT PRIMARY KEY, complex_id TEXT NOT NULL, status TEXT NOT NULL, created_at INTEGER NOT NULL,
  rated INTEGER NOT NULL, present INTEGER NOT NULL, findings INTEGER NOT NULL, cost_5y REAL NOT NULL,
  conflicts INTEGER NOT NULL DEFAULT 0, comments INTEGER NOT NULL DEFAULT 0, updated_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS summaries_complex ON summaries (complex_id, created_at);
CREATE TABLE IF NOT EXISTS photos (
  hash TEXT PRIMARY KEY, path TEXT NOT NULL, size INTEGER NOT NULL, mime TEXT NOT NULL,
  uploaded INTEGER NOT NULL DEFAULT 0, attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_ms INTEGER NOT NULL DEFAULT 0, last_error TEXT);
";

/// Appends a local change and queues it for the server (a change already
/// stored is neither duplicated nor queued again).
fn queue_local(conn: &Connection, id: InspectionId, c: &Change) -> Result<()> {
    let inserted = conn
        .prepare_cached(
            "INSERT OR IGNORE INTO changes (doc_id, hash, bytes, local, acked) VALUES (?1, ?2, ?3, 1, 0)",
        )?
        .execute(params![id.to_string(), c.hash().0.as_slice(), c.raw_bytes()])?;
    if inserted == 1 {
        conn.prepare_cached("INSERT INTO outbox (id) VALUES (?1)")?
            .execute([conn.last_insert_rowid()])?;
    }
    Ok(())
}

/// Runs of consecutive row ids, as (first, last): acknowledging a cold push
/// of thousands of changes takes a handful of statements.
fn id_runs(ids: &[i64]) -> Vec<(i64, i64)> {
    let mut sorted = ids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut runs: Vec<(i64, i64)> = Vec::new();
    for id in sorted {
        match runs.last_mut() {
            Some((_, last)) if *last + 1 == id => *last = id,
            _ => runs.push((id, id)),
        }
    }
    runs
}

/// Writes the list row of an inspection (the conflict count is kept as it was).
fn write_summary(conn: &Connection, id: InspectionId, d: &InspectionDoc) -> Result<()> {
    let (rated, present) = d.progress();
    let (_, five) = d.costs();
    conn.prepare_cached(
        "INSERT INTO summaries (doc_id, complex_id, status, created_at, rated, present, findings, cost_5y, comments, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
         ON CONFLICT(doc_id) DO UPDATE SET status = excluded.status, rated = excluded.rated, present = excluded.present,
           findings = excluded.findings, cost_5y = excluded.cost_5y, comments = excluded.comments, updated_at = excluded.updated_at",
    )?
    .execute(params![
        id.to_string(),
        d.complex_id.to_string(),
        d.status.code(),
        d.created_at,
        rated as i64,
        present as i64,
        d.findings.len() as i64,
        five,
        d.review.comments.len() as i64,
        now_ms()
    ])?;
    Ok(())
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

/// A document's stored bytes (snapshot and the changes after it), read from
/// SQLite so that turning them into a document can happen elsewhere.
struct RawDoc {
    snapshot: Option<Vec<u8>>,
    changes: Vec<Vec<u8>>,
}

fn raw_doc(conn: &Connection, id: InspectionId) -> Result<Option<RawDoc>> {
    raw_doc_upto(conn, id, i64::MAX)
}

/// Like [`raw_doc`], with only the change rows up to `last_row`.
fn raw_doc_upto(conn: &Connection, id: InspectionId, last_row: i64) -> Result<Option<RawDoc>> {
    let snap: Option<Option<Vec<u8>>> = conn
        .query_row(
            "SELECT snapshot FROM docs WHERE doc_id = ?1",
            [id.to_string()],
            |r| r.get(0),
        )
        .optional()?;
    let Some(snapshot) = snap else {
        return Ok(None);
    };
    let mut stmt = conn.prepare_cached(
        "SELECT bytes FROM changes WHERE doc_id = ?1 AND in_snapshot = 0 AND id <= ?2 ORDER BY id",
    )?;
    let changes = stmt
        .query_map(params![id.to_string(), last_row], |r| {
            r.get::<_, Vec<u8>>(0)
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(Some(RawDoc { snapshot, changes }))
}

impl RawDoc {
    /// The document, with `more` changes applied on top.
    fn build_with(self, more: Vec<Change>) -> Result<Inspection> {
        let mut insp = match self.snapshot {
            Some(bytes) => Inspection::load(&bytes)?,
            None => Inspection::empty(),
        };
        let mut changes = Vec::new();
        for row in &self.changes {
            changes
                .extend(changes_of_chunks(row).map_err(|e| MobileError::Invalid(e.to_string()))?);
        }
        changes.extend(more);
        insp.apply_changes(changes)?;
        Ok(insp)
    }

    fn build(self) -> Result<Inspection> {
        self.build_with(Vec::new())
    }
}

/// A list row's content with its conflict count, computed from a document.
fn summary_of(insp: &Inspection) -> Result<(InspectionDoc, i64)> {
    Ok((insp.read()?, conflicts::list(insp)?.len() as i64))
}

fn write_summary_with_conflicts(
    conn: &Connection,
    id: InspectionId,
    d: &InspectionDoc,
    conflicts: i64,
) -> Result<()> {
    write_summary(conn, id, d)?;
    conn.prepare_cached("UPDATE summaries SET conflicts = ?2 WHERE doc_id = ?1")?
        .execute(params![id.to_string(), conflicts])?;
    Ok(())
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
        if version == 1 {
            conn.execute(
                "INSERT OR IGNORE INTO outbox (id) SELECT id FROM changes WHERE acked = 0",
                [],
            )?;
        }
        conn.pragma_update(None, "user_version", DEVICE_SCHEMA_VERSION)?;
        let store = Self {
            conn: Mutex::new(conn),
            docs: Mutex::new(HashMap::new()),
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

    fn author(&self) -> Result<Author> {
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

    // ---- reference data ----

    /// Stores reference data received from the server.
    pub fn apply_reference(&self, r: &ReferenceResponse) -> Result<()> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let put = |table: &str, id: String, json: String| {
            tx.execute(
                &format!("INSERT OR REPLACE INTO {table} (id, json) VALUES (?1, ?2)"),
                params![id, json],
            )
        };
        for o in &r.offices {
            put(
                "offices",
                o.id.to_string(),
                serde_json::to_string(o).unwrap_or_default(),
            )?;
        }
        for c in &r.complexes {
            put(
                "complexes",
                c.id.to_string(),
                serde_json::to_string(c).unwrap_or_default(),
            )?;
        }
        tx.execute(
            "INSERT INTO settings (key, value) VALUES ('ref_revision', ?1) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [r.revision.to_string()],
        )?;
        tx.execute(
            "INSERT INTO settings (key, value) VALUES ('territory', ?1) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [serde_json::to_string(&r.territory).unwrap_or_default()],
        )?;
        tx.execute(
            "INSERT INTO settings (key, value) VALUES ('cs_settings', ?1) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [serde_json::to_string(&r.settings).unwrap_or_default()],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// The CS's settings from the last reference data (thresholds, rates,
    /// time zone); the defaults before the first fetch.
    pub fn cs_settings(&self) -> Result<bilan_shared::domain::CsSettings> {
        Ok(self
            .setting("cs_settings")?
            .and_then(|j| decoded("settings.cs_settings", &j, serde_json::from_str(&j)))
            .unwrap_or_default())
    }

    /// The territory of the reference data, once it has been fetched.
    pub fn territory(&self) -> Result<Option<bilan_shared::domain::Territory>> {
        Ok(self
            .setting("territory")?
            .and_then(|j| decoded("settings.territory", &j, serde_json::from_str(&j))))
    }

    /// Every cached reference row of a table (`offices` or `complexes`).
    fn json_rows<T: serde::de::DeserializeOwned>(&self, table: &str) -> Result<Vec<T>> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(&format!("SELECT json FROM {table}"))?;
        let mut rows = Vec::new();
        for json in stmt.query_map([], |r| r.get::<_, String>(0))? {
            let json = json?;
            if let Some(v) = decoded(table, &json, serde_json::from_str(&json)) {
                rows.push(v);
            }
        }
        Ok(rows)
    }

    /// Cached offices, by name.
    pub fn offices(&self) -> Result<Vec<Office>> {
        let mut v: Vec<Office> = self.json_rows("offices")?;
        v.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(v)
    }

    /// Cached complexes, by office then code.
    pub fn complexes(&self) -> Result<Vec<Complex>> {
        let mut v: Vec<Complex> = self.json_rows("complexes")?;
        v.sort_by(|a, b| (a.office_id, &a.code).cmp(&(b.office_id, &b.code)));
        Ok(v)
    }

    /// One complex.
    pub fn complex(&self, id: ComplexId) -> Result<Complex> {
        let json: Option<String> = self
            .lock()
            .query_row(
                "SELECT json FROM complexes WHERE id = ?1",
                [id.to_string()],
                |r| r.get(0),
            )
            .optional()?;
        json.and_then(|j| decoded("complexes", &j, serde_json::from_str(&j)))
            .ok_or_else(|| MobileError::UnknownComplex(id.to_string()))
    }

    // ---- documents ----

    fn load(&self, conn: &Connection, id: InspectionId) -> Result<Option<Inspection>> {
        raw_doc(conn, id)?.map(RawDoc::build).transpose()
    }

    /// Runs `f` on the loaded document (loading it from SQLite if needed).
    fn with_doc<T>(
        &self,
        id: InspectionId,
        f: impl FnOnce(&mut Inspection) -> Result<T>,
    ) -> Result<T> {
        let mut docs = self.docs();
        if let std::collections::hash_map::Entry::Vacant(slot) = docs.entry(id) {
            let insp = self
                .load(&self.lock(), id)?
                .ok_or_else(|| MobileError::UnknownInspection(id.to_string()))?;
            slot.insert(insp);
        }
        let insp = docs
            .get_mut(&id)
            .ok_or_else(|| MobileError::UnknownInspection(id.to_string()))?;
        f(insp)
    }

    /// Persists local changes in one transaction; on failure the cached
    /// document is dropped so it reloads from what SQLite really holds.
    fn persist_local(
        &self,
        id: InspectionId,
        changes: &[Change],
        snapshot: Option<Vec<u8>>,
        summary: Option<&InspectionDoc>,
    ) -> Result<()> {
        let res = (|| -> Result<()> {
            let mut conn = self.lock();
            let tx = conn.transaction()?;
            if let Some(s) = snapshot {
                tx.execute(
                    "INSERT INTO docs (doc_id, snapshot, updated_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT(doc_id) DO UPDATE SET snapshot = excluded.snapshot, updated_at = excluded.updated_at",
                    params![id.to_string(), s, now_ms()],
                )?;
            } else {
                tx.execute(
                    "UPDATE docs SET updated_at = ?2 WHERE doc_id = ?1",
                    params![id.to_string(), now_ms()],
                )?;
            }
            for c in changes {
                queue_local(&tx, id, c)?;
            }
            if let Some(d) = summary {
                write_summary(&tx, id, d)?;
            }
            // One commit (one fsync) for the change and its list row.
            tx.commit()?;
            Ok(())
        })();
        if res.is_err() {
            self.docs().remove(&id);
        }
        res
    }

    /// Rewrites the list row of an inspection. Conflicts are counted only when
    /// asked (after merges and resolutions): a local edit cannot create one.
    fn refresh_summary(
        &self,
        id: InspectionId,
        insp: &Inspection,
        count_conflicts: bool,
    ) -> Result<()> {
        if count_conflicts {
            let (d, n) = summary_of(insp)?;
            write_summary_with_conflicts(&self.lock(), id, &d, n)
        } else {
            write_summary(&self.lock(), id, &insp.read()?)
        }
    }

    /// List rows of every inspection, newest first; of one complex if given.
    pub fn summaries(&self, complex: Option<ComplexId>) -> Result<Vec<InspectionSummary>> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT doc_id, complex_id, status, created_at, rated, present, findings, cost_5y, conflicts, comments, updated_at
             FROM summaries WHERE (?1 = '' OR complex_id = ?1) ORDER BY created_at DESC",
        )?;
        let rows = stmt
            .query_map([complex.map(|c| c.to_string()).unwrap_or_default()], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, u32>(4)?,
                    r.get::<_, u32>(5)?,
                    r.get::<_, u32>(6)?,
                    r.get::<_, f64>(7)?,
                    r.get::<_, u32>(8)?,
                    r.get::<_, u32>(9)?,
                    r.get::<_, i64>(10)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?
            .into_iter()
            .filter_map(
                |(
                    id,
                    c,
                    st,
                    created_at,
                    rated,
                    present,
                    findings,
                    cost_5y,
                    conflicts,
                    comments,
                    updated_at,
                )| {
                    let row = format!("{id} {c} {st}");
                    Some(InspectionSummary {
                        id: decoded("summaries.doc_id", &row, id.parse())?,
                        complex_id: decoded("summaries.complex_id", &row, c.parse())?,
                        status: decoded(
                            "summaries.status",
                            &row,
                            InspectionStatus::from_code(&st).ok_or("unknown status"),
                        )?,
                        created_at,
                        rated,
                        present,
                        findings,
                        cost_5y,
                        conflicts,
                        comments,
                        updated_at,
                    })
                },
            )
            .collect();
        Ok(rows)
    }

    /// Applies one edit to an inspection; returns once it is durable.
    pub fn edit(
        &self,
        id: InspectionId,
        f: impl FnOnce(&mut InspectionDoc) -> std::result::Result<(), bilan_shared::SharedError>,
    ) -> Result<()> {
        let author = self.author()?;
        let (change, doc) = self.with_doc(id, |insp| Ok(insp.edit_returning(&author, f)?))?;
        if let Some(c) = change {
            self.persist_local(id, &[c], None, Some(&doc))?;
            self.maybe_compact(id)?;
        }
        Ok(())
    }

    /// Starts an inspection of a complex.
    pub fn start_inspection(&self, complex: ComplexId) -> Result<InspectionId> {
        let c = self.complex(complex)?;
        let author = self.author()?;
        let id = InspectionId::new();
        let (insp, change) = Inspection::create(
            &author,
            NewInspection {
                inspection_id: id,
                territory_id: c.territory_id,
                office_id: c.office_id,
                complex_id: c.id,
            },
            Catalogue::current(),
        )?;
        self.lock().execute(
            "INSERT INTO docs (doc_id, snapshot, updated_at) VALUES (?1, NULL, ?2)",
            params![id.to_string(), now_ms()],
        )?;
        self.persist_local(id, &[change], None, Some(&insp.read()?))?;
        self.docs().insert(id, insp);
        Ok(id)
    }

    /// Records inspections built outside the store (an import, a generated
    /// workload) as local changes not yet sent, all in one transaction: their
    /// whole history goes out at the next sync like edits made here.
    pub fn import_local(&self, inspections: &[(InspectionId, &Inspection)]) -> Result<()> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        {
            let mut doc_row = tx.prepare_cached(
                "INSERT OR IGNORE INTO docs (doc_id, snapshot, updated_at) VALUES (?1, NULL, ?2)",
            )?;
            for (id, insp) in inspections {
                let d = insp.read()?;
                if d.inspection_id != *id {
                    return Err(MobileError::Invalid(format!(
                        "l'inspection importée {id} porte l'identifiant {}",
                        d.inspection_id
                    )));
                }
                doc_row.execute(params![id.to_string(), now_ms()])?;
                for c in insp.automerge().get_changes(&[]) {
                    queue_local(&tx, *id, c)?;
                }
                write_summary(&tx, *id, &d)?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Rates a component.
    pub fn rate(&self, id: InspectionId, component: &str, rating: Rating) -> Result<()> {
        self.edit(id, |d| d.rate(component, rating))
    }

    /// Rates a component record that may not be in the catalogue (per-dwelling entries).
    pub fn rate_any(&self, id: InspectionId, key: &str, rating: Rating) -> Result<()> {
        self.edit(id, |d| {
            let c = d.components.entry(key.to_string()).or_default();
            c.rating = Some(rating);
            c.present = Some(rating != Rating::NotApplicable);
            Ok(())
        })
    }

    /// Sets a component's note.
    pub fn set_component_note(&self, id: InspectionId, component: &str, note: &str) -> Result<()> {
        self.edit(id, |d| {
            d.components
                .get_mut(component)
                .ok_or_else(|| bilan_shared::SharedError::UnknownComponent(component.into()))?
                .note = note.to_string();
            Ok(())
        })
    }

    /// Adds a finding.
    pub fn add_finding(&self, id: InspectionId, f: NewFinding) -> Result<FindingId> {
        let user = self.user()?.ok_or(MobileError::NotLoggedIn)?;
        if Catalogue::current().component(&f.component).is_none() {
            return Err(bilan_shared::SharedError::UnknownComponent(f.component).into());
        }
        let fid = FindingId::new();
        self.edit(id, |d| {
            d.findings.push(Finding {
                id: fid,
                component: f.component,
                title: f.title,
                location: f.location,
                severity: f.severity,
                description: f.description,
                photos: vec![],
                recommendations: vec![],
                created_by: user.id,
                created_at: now_ms(),
            });
            Ok(())
        })?;
        Ok(fid)
    }

    /// Adds a recommendation to a finding.
    pub fn add_recommendation(
        &self,
        id: InspectionId,
        finding: FindingId,
        r: NewRecommendation,
    ) -> Result<RecommendationId> {
        if !(r.quantity >= 0.0 && r.unit_cost >= 0.0) {
            return Err(MobileError::Invalid(
                "quantité et coût unitaire doivent être positifs".into(),
            ));
        }
        let rid = RecommendationId::new();
        self.edit(id, |d| {
            d.finding_mut(finding)?
                .recommendations
                .push(Recommendation {
                    id: rid,
                    work: r.work,
                    urgency: r.urgency,
                    quantity: r.quantity,
                    unit: r.unit,
                    unit_cost: r.unit_cost,
                });
            Ok(())
        })?;
        Ok(rid)
    }

    /// Copies a photo into the store (durable before returning), queues it for
    /// upload and references it from the finding.
    pub fn attach_photo(
        &self,
        id: InspectionId,
        finding: FindingId,
        bytes: &[u8],
        mime: &str,
        caption: &str,
    ) -> Result<PhotoHash> {
        let hash = PhotoHash::of(bytes);
        let path = self.photo_dir.join(hash.as_str());
        if !path.exists() {
            let tmp = self.photo_dir.join(format!("{}.tmp", hash.as_str()));
            {
                use std::io::Write;
                let mut f = std::fs::File::create(&tmp)?;
                f.write_all(bytes)?;
                f.sync_all()?;
            }
            std::fs::rename(&tmp, &path)?;
        }
        let thumb = self.photo_dir.join(format!("{}.thumb.jpg", hash.as_str()));
        if !thumb.exists()
            && let Ok(img) = image::load_from_memory(bytes)
        {
            // A thumbnail for the screens; a photo that does not decode simply has none.
            if let Err(e) = img
                .thumbnail(240, 240)
                .to_rgb8()
                .save_with_format(&thumb, image::ImageFormat::Jpeg)
            {
                tracing::warn!(%hash, error = %e, "thumbnail not written; the photo is kept");
            }
        }
        self.lock().execute(
            "INSERT OR IGNORE INTO photos (hash, path, size, mime) VALUES (?1, ?2, ?3, ?4)",
            params![
                hash.as_str(),
                path.to_string_lossy(),
                bytes.len() as i64,
                mime
            ],
        )?;
        let photo = PhotoRef {
            hash: hash.clone(),
            size: bytes.len() as u64,
            mime: mime.to_string(),
            caption: caption.to_string(),
            taken_at: now_ms(),
        };
        self.edit(id, |d| {
            let f = d.finding_mut(finding)?;
            if !f.photos.iter().any(|p| p.hash == photo.hash) {
                f.photos.push(photo);
            }
            Ok(())
        })?;
        Ok(hash)
    }

    /// Records a site visit.
    pub fn add_visit(&self, id: InspectionId, visit: SiteVisit) -> Result<()> {
        self.edit(id, |d| {
            d.visits.push(visit);
            Ok(())
        })
    }

    /// Submits the inspection for the CS's review.
    pub fn submit(&self, id: InspectionId) -> Result<()> {
        self.edit(id, |d| {
            d.status = InspectionStatus::Submitted;
            Ok(())
        })
    }

    /// The merged inspection.
    pub fn inspection(&self, id: InspectionId) -> Result<InspectionDoc> {
        self.with_doc(id, |insp| Ok(insp.read()?))
    }

    /// Every inspection on the device.
    pub fn inspection_ids(&self) -> Result<Vec<InspectionId>> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached("SELECT doc_id FROM docs ORDER BY updated_at DESC")?;
        let ids = stmt
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?
            .into_iter()
            .filter_map(|s| decoded("docs.doc_id", &s, s.parse()))
            .collect();
        Ok(ids)
    }

    /// Conflicted fields of an inspection.
    pub fn conflicts(&self, id: InspectionId) -> Result<Vec<Conflict>> {
        self.with_doc(id, |insp| Ok(conflicts::list(insp)?))
    }

    /// Resolves a conflict with the chosen value.
    pub fn resolve(&self, id: InspectionId, path: &[String], value_id: &str) -> Result<()> {
        let author = self.author()?;
        let changes = self.with_doc(id, |insp| {
            let before = insp.automerge().get_heads();
            conflicts::resolve(insp, &author, path, value_id)?;
            Ok(insp.changes_since(&before))
        })?;
        self.persist_local(id, &changes, None, None)?;
        self.with_doc(id, |insp| self.refresh_summary(id, insp, true))
    }

    /// Full automerge save of a document (for comparisons and exports).
    pub fn save_doc(&self, id: InspectionId) -> Result<Vec<u8>> {
        self.with_doc(id, |insp| Ok(insp.save()))
    }

    /// Heads of a document (for convergence checks).
    pub fn heads(&self, id: InspectionId) -> Result<Vec<automerge::ChangeHash>> {
        self.with_doc(id, |insp| Ok(insp.automerge().get_heads()))
    }

    fn maybe_compact(&self, id: InspectionId) -> Result<()> {
        let n: i64 = self.lock().query_row(
            "SELECT COUNT(*) FROM changes WHERE doc_id = ?1 AND in_snapshot = 0",
            [id.to_string()],
            |r| r.get(0),
        )?;
        if n < COMPACT_AFTER {
            return Ok(());
        }
        // A snapshot that would not load back is not written: the document
        // keeps being built from its changes (see `Inspection::checked_save`).
        let snapshot = match self.with_doc(id, |insp| Ok(insp.checked_save()))? {
            Ok(bytes) => bytes,
            Err(e) => {
                tracing::warn!(%id, error = %e, "snapshot skipped");
                return Ok(());
            }
        };
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        tx.execute(
            "UPDATE docs SET snapshot = ?2 WHERE doc_id = ?1",
            params![id.to_string(), snapshot],
        )?;
        tx.execute(
            "UPDATE changes SET in_snapshot = 1 WHERE doc_id = ?1",
            [id.to_string()],
        )?;
        tx.execute(
            "DELETE FROM changes WHERE doc_id = ?1 AND in_snapshot = 1
               AND id NOT IN (SELECT id FROM outbox)",
            [id.to_string()],
        )?;
        tx.commit()?;
        Ok(())
    }

    // ---- sync support ----

    /// Every change the server has not acknowledged, grouped by document, with the row ids to ack.
    pub fn outbox(&self) -> Result<(Vec<DocChanges>, Vec<i64>)> {
        let page = self.outbox_page(usize::MAX, u64::MAX)?;
        Ok((page.docs, page.ids))
    }

    /// The first unacknowledged changes, whole documents at a time, within
    /// `max_docs` documents and about `max_bytes` of change bytes (a single
    /// larger document still goes alone), so that a request stays under the
    /// server's limits however long the device was offline.
    pub fn outbox_page(&self, max_docs: usize, max_bytes: u64) -> Result<OutboxPage> {
        let conn = self.lock();
        // CROSS JOIN makes SQLite walk the (small) outbox and sort it: with a
        // plain JOIN it walked every change of the device through the
        // `changes_doc` index to avoid the sort, so one edit's sync cost grew
        // with the device's history (57 ms of 73 at 10,000 inspections).
        let mut stmt = conn.prepare_cached(
            "SELECT c.id, c.doc_id, c.bytes FROM outbox o CROSS JOIN changes c ON c.id = o.id ORDER BY c.doc_id, c.id",
        )?;
        let mut page = OutboxPage::default();
        let mut bytes_in_page = 0u64;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let doc_id: InspectionId = r
                .get::<_, String>(1)?
                .parse()
                .map_err(|_| MobileError::Invalid("identifiant de document corrompu".into()))?;
            let bytes: Vec<u8> = r.get(2)?;
            let same_doc = page.docs.last().is_some_and(|d| d.doc_id == doc_id);
            if !same_doc
                && !page.docs.is_empty()
                && (page.docs.len() >= max_docs || bytes_in_page >= max_bytes)
            {
                page.more = true;
                break;
            }
            page.ids.push(r.get::<_, i64>(0)?);
            bytes_in_page += bytes.len() as u64;
            match page.docs.last_mut() {
                Some(d) if same_doc => d.changes.push(ByteBuf::from(bytes)),
                _ => page.docs.push(DocChanges {
                    doc_id,
                    changes: vec![ByteBuf::from(bytes)],
                }),
            }
        }
        Ok(page)
    }

    /// Applies a server response: stores remote chunks, acknowledges what was
    /// sent and moves the cursor, all in one transaction; then rewrites the
    /// list rows of the documents it touched. Returns how many changes came.
    pub fn apply_sync(&self, acked: &[i64], remote: Vec<DocChanges>, cursor: u64) -> Result<u64> {
        self.apply_sync_then(acked, remote, cursor, || {})
    }

    /// [`Self::apply_sync`], calling `checked` once every chunk has parsed and
    /// before anything is written: the sync engine sends its next pull then,
    /// so that the server prepares it while this device waits for its disk
    /// rather than while it parses on every core.
    pub fn apply_sync_then(
        &self,
        acked: &[i64],
        remote: Vec<DocChanges>,
        cursor: u64,
        checked: impl FnOnce(),
    ) -> Result<u64> {
        let started = std::time::Instant::now();
        // Every chunk is checked before anything is stored (on every core).
        let parsed: Vec<(InspectionId, Vec<ByteBuf>, Vec<Change>)> = remote
            .into_par_iter()
            .map(|d| {
                let mut changes = Vec::new();
                for item in &d.changes {
                    changes.extend(changes_of_chunks(item).map_err(MobileError::protocol)?);
                }
                Ok((d.doc_id, d.changes, changes))
            })
            .collect::<Result<_>>()?;
        // A document may come in several runs of one response: one entry each.
        let mut index: HashMap<InspectionId, usize> = HashMap::new();
        let mut grouped: Vec<(InspectionId, Vec<ByteBuf>, Vec<Change>)> = Vec::new();
        for (doc_id, items, changes) in parsed {
            match index.get(&doc_id) {
                Some(&i) => {
                    grouped[i].1.extend(items);
                    grouped[i].2.extend(changes);
                }
                None => {
                    index.insert(doc_id, grouped.len());
                    grouped.push((doc_id, items, changes));
                }
            }
        }
        let parsed = grouped;
        checked();
        let received = parsed.iter().map(|p| p.2.len() as u64).sum();
        let parsed_at = started.elapsed();
        let before: i64;
        {
            let mut conn = self.lock();
            let tx = conn.transaction()?;
            before = tx.query_row("SELECT COALESCE(MAX(id), 0) FROM changes", [], |r| r.get(0))?;
            {
                let mut ack = tx.prepare_cached("DELETE FROM outbox WHERE id BETWEEN ?1 AND ?2")?;
                for (first, last) in id_runs(acked) {
                    ack.execute([first, last])?;
                }
                // One row per received chunk (a bundle of changes or a snapshot).
                let mut ins = tx.prepare_cached(
                    "INSERT OR IGNORE INTO changes (doc_id, hash, bytes, local, acked) VALUES (?1, ?2, ?3, 0, 1)",
                )?;
                let mut doc = tx.prepare_cached(
                    "INSERT INTO docs (doc_id, snapshot, updated_at) VALUES (?1, NULL, ?2)
                     ON CONFLICT(doc_id) DO UPDATE SET updated_at = excluded.updated_at",
                )?;
                for (doc_id, items, _) in &parsed {
                    doc.execute(params![doc_id.to_string(), now_ms()])?;
                    for item in items {
                        ins.execute(params![
                            doc_id.to_string(),
                            Sha256::digest(item.as_slice()).as_slice(),
                            item.as_slice()
                        ])?;
                    }
                }
            }
            tx.execute(
                "INSERT INTO settings (key, value) VALUES ('cursor', ?1) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [cursor.to_string()],
            )?;
            let written_at = started.elapsed();
            tx.commit()?;
            tracing::debug!(
                parse_ms = parsed_at.as_secs_f64() * 1000.0,
                write_ms = (written_at - parsed_at).as_secs_f64() * 1000.0,
                commit_ms = (started.elapsed() - written_at).as_secs_f64() * 1000.0,
                "apply_sync stored"
            );
        }
        // Open documents take the changes as they are; the others are built
        // from what SQLite held before plus the parsed changes, on every core,
        // and not kept in memory (a first sync may bring thousands).
        let mut rows: Vec<(InspectionId, Result<(InspectionDoc, i64)>)> = Vec::new();
        let mut raws = Vec::new();
        {
            let mut docs = self.docs();
            let conn = self.lock();
            for (doc_id, _, changes) in parsed {
                match docs.get_mut(&doc_id) {
                    Some(insp) => {
                        if insp.apply_changes(changes).is_err() {
                            docs.remove(&doc_id);
                        } else {
                            rows.push((doc_id, summary_of(insp)));
                        }
                    }
                    None => {
                        if let Some(raw) = raw_doc_upto(&conn, doc_id, before)? {
                            raws.push((doc_id, raw, changes));
                        }
                    }
                }
            }
        }
        rows.par_extend(raws.into_par_iter().map(|(id, raw, changes)| {
            (
                id,
                raw.build_with(changes).and_then(|insp| summary_of(&insp)),
            )
        }));
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        // A document whose first changes have not all arrived yet stays unlisted.
        for (id, (d, n)) in rows.into_iter().filter_map(|(id, r)| Some((id, r.ok()?))) {
            write_summary_with_conflicts(&tx, id, &d, n)?;
        }
        tx.commit()?;
        tracing::debug!(
            total_ms = started.elapsed().as_secs_f64() * 1000.0,
            "apply_sync listed"
        );
        Ok(received)
    }

    /// Marks every change of a document unacknowledged, so the next sync resends
    /// its whole history (after the server reported missing dependencies).
    pub fn resend_all(&self, doc_id: InspectionId) -> Result<()> {
        let all: Vec<Change> = self.with_doc(doc_id, |insp| Ok(insp.changes_since(&[])))?;
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        for c in &all {
            tx.execute(
                "INSERT OR IGNORE INTO changes (doc_id, hash, bytes, local, acked, in_snapshot) VALUES (?1, ?2, ?3, 0, 0, 1)",
                params![doc_id.to_string(), c.hash().0.as_slice(), c.raw_bytes()],
            )?;
        }
        tx.execute(
            "INSERT OR IGNORE INTO outbox (id) SELECT id FROM changes WHERE doc_id = ?1",
            [doc_id.to_string()],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Photos not yet on the server whose retry time has come.
    pub fn photos_to_upload(&self, now: i64) -> Result<Vec<PendingPhoto>> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT hash, path, size, mime, attempts FROM photos WHERE uploaded = 0 AND next_attempt_ms <= ?1 ORDER BY rowid",
        )?;
        let rows = stmt
            .query_map([now], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, i64>(4)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?
            .into_iter()
            .filter_map(|(h, p, s, m, a)| {
                Some(PendingPhoto {
                    hash: decoded("photos.hash", &h, h.parse())?,
                    path: PathBuf::from(p),
                    size: s as u64,
                    mime: m,
                    attempts: a as u32,
                })
            })
            .collect();
        Ok(rows)
    }

    /// Records an upload outcome. A failure pushes the next attempt back
    /// exponentially (2 s, 4 s, ... up to 5 minutes).
    pub fn photo_outcome(
        &self,
        hash: &PhotoHash,
        result: std::result::Result<(), String>,
    ) -> Result<()> {
        let conn = self.lock();
        match result {
            Ok(()) => conn.execute(
                "UPDATE photos SET uploaded = 1, last_error = NULL WHERE hash = ?1",
                [hash.as_str()],
            )?,
            Err(e) => {
                let attempts: i64 = conn.query_row(
                    "SELECT attempts FROM photos WHERE hash = ?1",
                    [hash.as_str()],
                    |r| r.get(0),
                )?;
                let delay = (2_000i64 << attempts.min(8)).min(300_000);
                conn.execute(
                    "UPDATE photos SET attempts = attempts + 1, next_attempt_ms = ?2, last_error = ?3 WHERE hash = ?1",
                    params![hash.as_str(), now_ms() + delay, e],
                )?
            }
        };
        Ok(())
    }

    /// The sync bar's figures.
    pub fn status(&self) -> Result<SyncStatus> {
        let conn = self.lock();
        let pending_changes: i64 =
            conn.query_row("SELECT COUNT(*) FROM outbox", [], |r| r.get(0))?;
        let (pending_photos, bytes): (i64, i64) = conn.query_row(
            "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM photos WHERE uploaded = 0",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        drop(conn);
        Ok(SyncStatus {
            pending_changes: pending_changes as u64,
            pending_photos: pending_photos as u64,
            pending_photo_bytes: bytes as u64,
            last_sync_ms: self.setting("last_sync_ms")?.and_then(|s| s.parse().ok()),
            last_error: self.setting("last_error")?,
        })
    }

    /// The photo's thumbnail as a `data:` URL the screens can show offline.
    pub fn thumbnail_data_url(&self, hash: &PhotoHash) -> Option<String> {
        use base64::Engine;
        let bytes =
            std::fs::read(self.photo_dir.join(format!("{}.thumb.jpg", hash.as_str()))).ok()?;
        Some(format!(
            "data:image/jpeg;base64,{}",
            base64::engine::general_purpose::STANDARD.encode(bytes)
        ))
    }

    /// Reads a stored photo.
    pub fn photo_bytes(&self, hash: &PhotoHash) -> Result<Vec<u8>> {
        Ok(std::fs::read(self.photo_dir.join(hash.as_str()))?)
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
mod tests {
    use super::*;
    use bilan_shared::domain::Role;

    fn logged_in(dir: &Path) -> (DeviceStore, ComplexId) {
        let store = DeviceStore::open(dir).unwrap();
        let territory = TerritoryId::new();
        let office = OfficeId::new();
        let complex = Complex {
            id: ComplexId::new(),
            territory_id: territory,
            office_id: office,
            code: "C1".into(),
            name: "Les Pins".into(),
            address: "1 rue A".into(),
            city: "Trois-Rivières".into(),
            dwellings: 24,
            year_built: 1975,
            replacement_value: 4_000_000.0,
        };
        store
            .save_login(
                "http://x",
                "t",
                &UserInfo {
                    id: UserId::new(),
                    username: "j".into(),
                    display_name: "Julie".into(),
                    role: Role::Inspector,
                    territory_id: Some(territory),
                    office_id: None,
                },
            )
            .unwrap();
        store
            .apply_reference(&ReferenceResponse {
                territory: bilan_shared::domain::Territory {
                    id: territory,
                    name: "T".into(),
                },
                offices: vec![],
                complexes: vec![complex.clone()],
                revision: 1,
                catalogue_version: "x".into(),
                settings: Default::default(),
            })
            .unwrap();
        (store, complex.id)
    }

    #[test]
    fn every_edit_is_in_the_outbox_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let (store, complex) = logged_in(dir.path());
        let id = store.start_inspection(complex).unwrap();
        store.rate(id, "B3010", Rating::D).unwrap();
        let fid = store
            .add_finding(
                id,
                NewFinding {
                    component: "B3010".into(),
                    title: "Membrane fissurée".into(),
                    location: "Toit, côté nord".into(),
                    severity: Severity::Major,
                    description: String::new(),
                },
            )
            .unwrap();
        store
            .add_recommendation(
                id,
                fid,
                NewRecommendation {
                    work: "Réfection de la membrane".into(),
                    urgency: Urgency::WithinYear,
                    quantity: 120.0,
                    unit: "m²".into(),
                    unit_cost: 95.0,
                },
            )
            .unwrap();
        let hash = store
            .attach_photo(id, fid, b"jpeg bytes", "image/jpeg", "Vue du toit")
            .unwrap();
        assert_eq!(store.status().unwrap().pending_changes, 5);
        assert_eq!(store.status().unwrap().pending_photo_bytes, 10);
        drop(store);
        let store = DeviceStore::open(dir.path()).unwrap();
        let d = store.inspection(id).unwrap();
        assert_eq!(d.components["B3010"].rating, Some(Rating::D));
        assert_eq!(d.findings[0].recommendations[0].estimated_cost(), 11_400.0);
        assert_eq!(d.findings[0].photos[0].hash, hash);
        assert_eq!(store.photo_bytes(&hash).unwrap(), b"jpeg bytes");
        let (outbox, ids) = store.outbox().unwrap();
        assert_eq!((outbox.len(), ids.len()), (1, 5));
        store.apply_sync(&ids, vec![], 7).unwrap();
        assert_eq!(store.status().unwrap().pending_changes, 0);
        assert_eq!(store.cursor().unwrap(), 7);
    }

    /// A schema-1 device database (the `acked` column was the queue) opens
    /// with its unsent changes still queued.
    #[test]
    fn a_schema_1_device_keeps_its_unsent_changes_queued() {
        let dir = tempfile::tempdir().unwrap();
        let (store, complex) = logged_in(dir.path());
        let id = store.start_inspection(complex).unwrap();
        store.rate(id, "B3010", Rating::D).unwrap();
        drop(store);
        {
            let conn = Connection::open(dir.path().join("device.sqlite")).unwrap();
            conn.execute_batch("DELETE FROM outbox; PRAGMA user_version = 1;")
                .unwrap();
        }
        let store = DeviceStore::open(dir.path()).unwrap();
        assert_eq!(store.status().unwrap().pending_changes, 2);
    }

    #[test]
    fn acknowledged_ids_collapse_into_runs() {
        assert_eq!(id_runs(&[7, 3, 4, 5, 9, 8, 4]), vec![(3, 5), (7, 9)]);
        assert!(id_runs(&[]).is_empty());
    }

    #[test]
    fn the_outbox_pages_by_whole_documents_within_the_limits() {
        let dir = tempfile::tempdir().unwrap();
        let (store, complex) = logged_in(dir.path());
        let ids: Vec<_> = (0..3)
            .map(|_| {
                let id = store.start_inspection(complex).unwrap();
                store.rate(id, "B3010", Rating::C).unwrap();
                id
            })
            .collect();
        let page = store.outbox_page(2, u64::MAX).unwrap();
        assert_eq!(page.docs.len(), 2);
        assert!(page.more);
        assert!(
            page.docs.iter().all(|d| d.changes.len() == 2),
            "whole documents"
        );
        // A byte budget smaller than one document still sends that document.
        let page = store.outbox_page(100, 1).unwrap();
        assert_eq!((page.docs.len(), page.ids.len(), page.more), (1, 2, true));
        let all = store.outbox_page(100, u64::MAX).unwrap();
        assert_eq!((all.docs.len(), all.ids.len(), all.more), (3, 6, false));
        assert_eq!(ids.len(), 3);
    }

    #[test]
    fn many_edits_compact_into_a_snapshot_without_losing_any() {
        let dir = tempfile::tempdir().unwrap();
        let (store, complex) = logged_in(dir.path());
        let id = store.start_inspection(complex).unwrap();
        let codes: Vec<String> = Catalogue::current()
            .components()
            .map(|(_, c)| c.code.clone())
            .collect();
        for (i, code) in codes.iter().cycle().take(150).enumerate() {
            store
                .rate(id, code, [Rating::A, Rating::B, Rating::C][i % 3])
                .unwrap();
        }
        let expected = store.inspection(id).unwrap();
        drop(store);
        let store = DeviceStore::open(dir.path()).unwrap();
        assert_eq!(store.inspection(id).unwrap(), expected);
        assert_eq!(store.integrity_check().unwrap(), "ok");
    }

    /// A cached row that no longer decodes (damaged file, buggy version) is
    /// left out of the list, not silently: a `warn` line names the table and
    /// the row; a row of SQL that cannot be read at all fails the call.
    #[test]
    fn a_stored_row_that_does_not_decode_is_logged_with_the_row_and_left_out() {
        #[derive(Clone, Default)]
        struct Lines(std::sync::Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Lines {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = logged_in(dir.path());
        store
            .lock()
            .execute(
                "INSERT INTO complexes (id, json) VALUES ('abîmé', '{\"name\": 3}')",
                [],
            )
            .unwrap();
        let lines = Lines::default();
        let writer = lines.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let complexes =
            tracing::subscriber::with_default(subscriber, || store.complexes()).unwrap();
        assert_eq!(complexes.len(), 1, "the good row is still listed");
        let logged = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        assert!(
            logged.contains("WARN")
                && logged.contains(r#"table="complexes""#)
                && logged.contains(r#"row="{\"name\": 3}""#),
            "{logged}"
        );
    }
}
