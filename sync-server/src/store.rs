//! Storage: the [`Storage`] trait the HTTP layer talks to, and its embedded
//! SQLite implementation (WAL, `synchronous=FULL`: what the server
//! acknowledges survives a power cut). A PostgreSQL backend would implement
//! the same trait. Every method that touches inspection data takes the
//! caller's territory and filters on it.

use std::path::Path;
use std::sync::Mutex;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use automerge::{ActorId, Change};
use bilan_shared::doc::{Author, now_ms};
use bilan_shared::doc::{bundle, changes_of_chunks, count_chunks};
use bilan_shared::domain::{Complex, InspectionStatus, Office, Role, Territory};
use bilan_shared::ids::*;
use bilan_shared::protocol::{
    DocChanges, ErrorCode, PROTOCOL_VERSION, ReferenceResponse, Rejection, SyncRequest,
    SyncResponse, UserInfo,
};
use bilan_shared::{Inspection, InspectionDoc, conflicts};
use rand::RngCore;
use rayon::prelude::*;
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde_bytes::ByteBuf;
use sha2::{Digest, Sha256};

use crate::audit::{AuditAction, AuditEntry};
use crate::error::StoreError;

type Result<T> = std::result::Result<T, StoreError>;

/// A user account to create.
#[derive(Clone, Debug)]
pub struct NewUser {
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub territory_id: Option<TerritoryId>,
    pub office_id: Option<OfficeId>,
    pub password: String,
}

/// One row of the inspection summary projection.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct InspectionSummary {
    pub inspection_id: InspectionId,
    pub office_id: OfficeId,
    pub complex_id: ComplexId,
    pub status: InspectionStatus,
    pub rated: u32,
    pub present: u32,
    pub findings: u32,
    pub total_cost: f64,
    pub cost_5y: f64,
    pub conflicts: u32,
    pub updated_at: i64,
}

/// An edit the server makes to a document (review, resolution): returns the changes it made.
pub type ServerEdit<'a> = dyn FnMut(&mut Inspection, &Author) -> std::result::Result<Vec<Change>, bilan_shared::SharedError>
    + 'a;

/// Limits a sync request is checked against.
#[derive(Clone, Copy, Debug)]
pub struct SyncLimits {
    pub max_docs: usize,
    pub page_bytes: u64,
}

/// What the HTTP layer needs from storage.
pub trait Storage: Send + Sync + 'static {
    fn create_territory(&self, name: &str) -> Result<TerritoryId>;
    fn territory_by_name(&self, name: &str) -> Result<Option<Territory>>;
    fn create_office(&self, territory: TerritoryId, code: &str, name: &str) -> Result<OfficeId>;
    fn upsert_complex(&self, c: &Complex) -> Result<()>;
    fn offices(&self, territory: TerritoryId) -> Result<Vec<Office>>;
    fn reference(&self, user: &UserInfo, since: u64) -> Result<ReferenceResponse>;
    fn create_user(&self, u: &NewUser) -> Result<UserId>;
    fn set_password(&self, username: &str, password: &str) -> Result<()>;
    fn login(
        &self,
        username: &str,
        password: &str,
        device: Option<DeviceId>,
    ) -> Result<(String, UserInfo)>;
    fn user_for_token(&self, token: &str) -> Result<Option<UserInfo>>;
    fn revoke_token(&self, token: &str) -> Result<()>;
    /// Refuses a client address that failed too many logins lately, whatever
    /// the names it tried (the per-name lockout does not see spraying).
    fn check_address(&self, address: &str) -> Result<()>;
    /// Counts a failed login from `address`.
    fn address_failed(&self, address: &str) -> Result<()>;
    fn revoke_user_tokens(&self, username: &str) -> Result<usize>;
    fn sync(&self, user: &UserInfo, req: SyncRequest, limits: SyncLimits) -> Result<SyncResponse>;
    fn inspection(&self, user: &UserInfo, id: InspectionId) -> Result<Inspection>;
    fn summaries(&self, user: &UserInfo) -> Result<Vec<InspectionSummary>>;
    /// Edits a document on the server (review, resolution) and records
    /// `audit` in the same transaction.
    fn server_edit(
        &self,
        user: &UserInfo,
        id: InspectionId,
        audit: &AuditEntry,
        edit: &mut ServerEdit<'_>,
    ) -> Result<()>;
    fn photo_received(
        &self,
        hash: &PhotoHash,
        size: u64,
        mime: &str,
        territory: TerritoryId,
    ) -> Result<()>;
    fn photo_meta(&self, user: &UserInfo, hash: &PhotoHash) -> Result<Option<(u64, String)>>;
    /// Whether this account may send photos at all. Must not block (no
    /// I/O): the upload handler calls it before taking the upload lock.
    fn photo_may_upload(&self, user: &UserInfo, hash: &PhotoHash) -> Result<bool>;
    fn change_count(&self, territory: TerritoryId) -> Result<u64>;
    /// Territory overview for the review pages; conditions use the CS's thresholds.
    fn overview(&self, user: &UserInfo) -> Result<Vec<crate::queries::OfficeOverview>>;
    /// Folds each document's log into its snapshot (see [`SqliteStore::compact`]).
    fn compact(&self) -> Result<CompactReport>;
    /// Filtered inspections for the review pages, with the total count;
    /// conditions use the CS's thresholds.
    fn search_inspections(
        &self,
        user: &UserInfo,
        filter: &crate::queries::InspectionFilter,
    ) -> Result<(Vec<crate::queries::InspectionRow>, u32)>;
    /// Accounts of the user's territory (administration page).
    fn territory_users(&self, user: &UserInfo) -> Result<Vec<UserInfo>>;
    /// The works plan (PPI draft) lines.
    fn works_plan(&self, user: &UserInfo) -> Result<Vec<crate::queries::PlanLine>>;
    /// The activity statement between two ISO dates.
    fn activity(
        &self,
        user: &UserInfo,
        from: &str,
        to: &str,
    ) -> Result<(
        Vec<crate::queries::ActivityLine>,
        crate::queries::CsSettings,
    )>;
    /// The CS's settings (rates and condition thresholds).
    fn settings(&self, user: &UserInfo) -> Result<crate::queries::CsSettings>;
    /// Changes the CS's settings (managers).
    fn set_settings(&self, user: &UserInfo, settings: &crate::queries::CsSettings) -> Result<()>;
    /// Offices and inspectors the user may filter on.
    fn filter_options(&self, user: &UserInfo) -> Result<crate::queries::FilterOptions>;
    /// Appends to the audit log (after an administrative action succeeded).
    fn audit(&self, entry: &AuditEntry) -> Result<()>;
    /// The newest `limit` audit entries: the manager's territory, or all of
    /// them for `None` (the operator's console).
    fn audit_log(&self, user: Option<&UserInfo>, limit: u32) -> Result<Vec<AuditEntry>>;
}

/// Embedded SQLite storage. One connection behind a mutex: writes are
/// serialised, so log sequence numbers become visible in order and a cursor
/// never skips a change committed late.
/// The embedded SQLite store.
///
/// A push is answered once its items are checked (whole automerge chunks, of
/// the caller's territory) and durable in the log; a background thread, the
/// merger (`merge.rs`), then parses and folds the log into the documents and the projection the
/// review pages read, in log order. Reads of the projection wait for the
/// merger to reach what was committed before them (read your writes); pulls
/// serve only merged rows, so a change the merger refuses never reaches
/// another device.
pub struct SqliteStore {
    core: std::sync::Arc<StoreCore>,
    merger: Option<std::thread::JoinHandle<()>>,
}

impl std::ops::Deref for SqliteStore {
    type Target = StoreCore;
    fn deref(&self) -> &StoreCore {
        &self.core
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.core.stop_merger();
        if let Some(merger) = self.merger.take() {
            let _ = merger.join();
        }
    }
}

/// What the store and its merger thread share.
pub struct StoreCore {
    conn: Mutex<Connection>,
    /// Pushes waiting for the write lock (group commit, see `push`).
    pushes: Mutex<Vec<PushJob>>,
    /// Idle read-only connections (file databases only): pulls read the log
    /// from one of them, outside the write lock, so a slow pull never holds
    /// up another device's push. WAL readers see whole commits, and commits
    /// happen in `seq` order under the write lock, so a reader never sees a
    /// gap that fills in later.
    readers: Mutex<Vec<Connection>>,
    path: Option<std::path::PathBuf>,
    server_actor: ActorId,
    /// Tokens older than this are refused (see [`SqliteStore::set_token_ttl`]).
    token_ttl_ms: std::sync::atomic::AtomicI64,
    /// Log rows younger than this keep their bytes through compaction (see
    /// [`SqliteStore::set_log_retention`]).
    log_retention_ms: std::sync::atomic::AtomicI64,
    /// How far the log is committed and merged (see `merge.rs`).
    pub(crate) progress: Mutex<crate::merge::Progress>,
    pub(crate) progress_changed: std::sync::Condvar,
    /// Where the merger merges documents (see [`crate::merge::pool`]).
    pub(crate) merge_pool: rayon::ThreadPool,
}

/// Failed logins in a row that lock a user name.
const MAX_LOGIN_FAILURES: i64 = 5;
/// How long a locked user name stays locked.
const LOCKOUT_MS: i64 = 15 * 60 * 1000;
/// Failed logins from one address, within [`ADDRESS_WINDOW_MS`], that lock it.
const MAX_ADDRESS_FAILURES: i64 = 20;
const ADDRESS_WINDOW_MS: i64 = 15 * 60 * 1000;
/// Default log retention: a month, longer than an inspector stays offline.
pub const DEFAULT_LOG_RETENTION: std::time::Duration =
    std::time::Duration::from_secs(30 * 24 * 3600);
/// Default token lifetime: 90 days, so a device offline for a season still syncs.
pub const DEFAULT_TOKEN_TTL: std::time::Duration = std::time::Duration::from_secs(90 * 24 * 3600);

/// A push waiting in the group-commit queue, with where to send its outcome.
struct PushJob {
    territory: TerritoryId,
    device: String,
    docs: Vec<PreparedDoc>,
    reply: std::sync::mpsc::SyncSender<Result<u32>>,
}

/// What a pull sends back.
#[derive(Default)]
struct Pulled {
    changes: Vec<DocChanges>,
    cursor: u64,
    more: bool,
    rejected: Vec<Rejection>,
}

/// Bytes of others' changes (uncompressed bundles) that the answer to a push
/// carries at most: a few new inspections, or hundreds of small edits. The
/// answer to a pull alone carries up to [`SyncLimits::page_bytes`].
const PUSH_ANSWER_PAGE_BYTES: u64 = 256 << 10;

/// A pull's walk of the territory's log (see the index `log_pull`).
const PULL_WALK: &str = "SELECT seq, device_id, rejected FROM log
     WHERE territory_id = ?1 AND seq > ?2 AND seq <= ?3 ORDER BY seq";

/// Read connections kept open between pulls.
const IDLE_READERS: usize = 8;

/// Schema version of the server database written by this build.
pub const DB_SCHEMA_VERSION: i64 = 4;

/// Log bundles of a document after its snapshot beyond which a push also
/// rewrites the snapshot, so that loading a document stays cheap.
pub(crate) const SNAPSHOT_AFTER: i64 = 16;

/// What a compaction did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CompactReport {
    /// Documents whose snapshot was rewritten.
    pub documents: u64,
    /// Log rows whose bytes now live only in a snapshot.
    pub rows_cleared: u64,
}

fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn parse_id<T: std::str::FromStr>(s: String) -> rusqlite::Result<T> {
    s.parse().map_err(|_| {
        rusqlite::Error::InvalidColumnType(0, "id".into(), rusqlite::types::Type::Text)
    })
}

/// Magic bytes of a zstd frame (automerge chunks start differently).
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// Log bundles are stored zstd-compressed: a fifth of the bytes to write,
/// fsync and keep. Compressed on the merging threads, not under the lock.
pub(crate) fn pack(bundle: &[u8]) -> Result<Vec<u8>> {
    Ok(zstd::bulk::compress(bundle, 1)?)
}

/// Reads a log row's bytes back: compressed bundles (schema 2) or raw
/// changes (rows migrated from schema 1).
pub(crate) fn unpack(bytes: Vec<u8>) -> Result<Vec<u8>> {
    if !bytes.starts_with(&ZSTD_MAGIC) {
        return Ok(bytes);
    }
    let mut out = Vec::new();
    zstd::stream::copy_decode(bytes.as_slice(), &mut out)?;
    Ok(out)
}

/// A pushed document ready for the log: its chunks counted and packed.
struct PreparedDoc {
    doc_id: InspectionId,
    chunks: usize,
    packed: Vec<u8>,
}

/// Prepares a push's documents for the log, on the request's thread before
/// it joins the group commit: every item must be whole automerge chunks
/// (magic, type, length; microseconds), and each document's items become one
/// packed bundle. Parsing the changes (about 0.4 ms per inspection) is the
/// merger's work: a change that does not parse or apply is refused then and
/// reported to its device. Documents sent with no items are skipped.
fn prepare_push(docs: Vec<DocChanges>) -> Result<Vec<PreparedDoc>> {
    docs.into_par_iter()
        .filter(|d| !d.changes.is_empty())
        .map(|d| {
            let mut chunks = 0;
            for item in &d.changes {
                chunks += count_chunks(item).map_err(|e| StoreError::MalformedChange {
                    doc: d.doc_id.to_string(),
                    reason: e.to_string(),
                })?;
            }
            let raw = d
                .changes
                .iter()
                .map(|i| i.as_slice())
                .collect::<Vec<_>>()
                .concat();
            Ok(PreparedDoc {
                doc_id: d.doc_id,
                chunks,
                packed: pack(&raw)?,
            })
        })
        .collect()
}

/// A snapshot of `insp`, or none when it would not load back (the document
/// then keeps being built from its log, which always applies).
pub(crate) fn checked_snapshot(doc_id: InspectionId, insp: &Inspection) -> Option<Vec<u8>> {
    insp.checked_save()
        .map_err(|e| tracing::warn!(%doc_id, error = %e, "snapshot skipped"))
        .ok()
}

/// A merged document with what its projection needs; computed away from the
/// database so that documents merge in parallel.
pub(crate) struct Merged {
    pub(crate) doc_id: InspectionId,
    /// A new snapshot, when enough log bundles follow the stored one.
    pub(crate) snapshot: Option<Vec<u8>>,
    doc: InspectionDoc,
    conflicts: usize,
}

impl Merged {
    /// Reads the merged document back for the projection.
    pub(crate) fn derive(
        doc_id: InspectionId,
        insp: &Inspection,
        snapshot_due: bool,
    ) -> Result<Self> {
        let doc: InspectionDoc = insp.read().map_err(|e| match e {
            e @ bilan_shared::SharedError::SchemaTooNew { .. } => StoreError::from(e),
            other => StoreError::InvalidDocument {
                doc: doc_id.to_string(),
                reason: other.to_string(),
            },
        })?;
        Ok(Self {
            doc_id,
            conflicts: conflicts::list(insp)?.len(),
            snapshot: snapshot_due
                .then(|| checked_snapshot(doc_id, insp))
                .flatten(),
            doc,
        })
    }
}

/// A read connection borrowed from the pool (the writer's, under its lock,
/// for an in-memory database); back to the pool when dropped.
pub(crate) enum ReadConn<'a> {
    Pooled {
        conn: Option<Connection>,
        pool: &'a Mutex<Vec<Connection>>,
    },
    Writer(std::sync::MutexGuard<'a, Connection>),
}

impl std::ops::Deref for ReadConn<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        match self {
            ReadConn::Pooled { conn, .. } => conn.as_ref().expect("read connection"),
            ReadConn::Writer(guard) => guard,
        }
    }
}

impl Drop for ReadConn<'_> {
    fn drop(&mut self) {
        if let ReadConn::Pooled { conn, pool } = self
            && let Some(conn) = conn.take()
        {
            let mut idle = pool.lock().unwrap_or_else(|p| p.into_inner());
            // A burst of reads opens as many connections as it needs; a few stay open.
            if idle.len() < IDLE_READERS {
                idle.push(conn);
            }
        }
    }
}

impl StoreCore {
    /// A read connection: reads of committed data (tokens, the projection,
    /// the log) do not wait for the write lock, which the merger holds for
    /// a batch at a time.
    pub(crate) fn reader(&self) -> Result<ReadConn<'_>> {
        let Some(path) = &self.path else {
            return Ok(ReadConn::Writer(self.lock()));
        };
        let idle = self.readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let conn = match idle {
            Some(c) => c,
            None => {
                let c = Connection::open_with_flags(
                    path,
                    rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
                        | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                c.busy_timeout(std::time::Duration::from_secs(5))?;
                c
            }
        };
        Ok(ReadConn::Pooled {
            conn: Some(conn),
            pool: &self.readers,
        })
    }

    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (the
        // transaction rolls back on drop), so a poisoned lock is still usable.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        Self::init(Connection::open(path)?, Some(path.to_path_buf()))
    }

    /// An in-memory database, for unit tests.
    pub fn in_memory() -> Result<Self> {
        Self::init(Connection::open_in_memory()?, None)
    }

    fn init(mut conn: Connection, path: Option<std::path::PathBuf>) -> Result<Self> {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        Self::migrate(&mut conn)?;
        let actor: Option<String> = conn
            .query_row("SELECT value FROM meta WHERE key='server_actor'", [], |r| {
                r.get(0)
            })
            .optional()?;
        let actor = match actor {
            Some(hex) => ActorId::try_from(hex.as_str())
                .map_err(|e| StoreError::BadRequest(e.to_string()))?,
            None => {
                let a = ActorId::from(DeviceId::new().0.as_bytes().as_slice());
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('server_actor', ?1)",
                    [a.to_hex_string()],
                )?;
                a
            }
        };
        let progress = crate::merge::Progress::read(&conn)?;
        let core = std::sync::Arc::new(StoreCore {
            conn: Mutex::new(conn),
            pushes: Mutex::new(Vec::new()),
            readers: Mutex::new(Vec::new()),
            path,
            server_actor: actor,
            token_ttl_ms: std::sync::atomic::AtomicI64::new(DEFAULT_TOKEN_TTL.as_millis() as i64),
            log_retention_ms: std::sync::atomic::AtomicI64::new(
                DEFAULT_LOG_RETENTION.as_millis() as i64
            ),
            progress: Mutex::new(progress),
            progress_changed: std::sync::Condvar::new(),
            merge_pool: crate::merge::pool()?,
        });
        let merger = crate::merge::spawn(core.clone())?;
        Ok(Self {
            core,
            merger: Some(merger),
        })
    }

    /// Brings the database to [`DB_SCHEMA_VERSION`] in one transaction:
    /// creates a new one, migrates an older one, refuses a newer one.
    fn migrate(conn: &mut Connection) -> Result<()> {
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version > DB_SCHEMA_VERSION {
            return Err(StoreError::DatabaseTooNew {
                found: version,
                supported: DB_SCHEMA_VERSION,
            });
        }
        let tx = conn.transaction()?;
        if version == 1 {
            tx.execute_batch(include_str!("migrate_v1_before.sql"))?;
        }
        tx.execute_batch(include_str!("schema.sql"))?;
        if version == 1 {
            tx.execute_batch(include_str!("migrate_v1_after.sql"))?;
            tracing::info!("database migrated from schema 1 to 2");
        }
        if version == 1 || version == 2 {
            // Rows written before: as old as can be (cleared by the next compaction).
            tx.execute_batch("ALTER TABLE log ADD COLUMN at INTEGER NOT NULL DEFAULT 0")?;
            tracing::info!(from = version, "database migrated to schema 3");
        }
        if (1..=3).contains(&version) {
            // Rows written before were merged when pushed.
            tx.execute_batch(
                "ALTER TABLE log ADD COLUMN rejected TEXT;
                 ALTER TABLE log ADD COLUMN reason TEXT;
                 INSERT OR REPLACE INTO meta (key, value)
                   SELECT 'merged_seq', COALESCE(MAX(seq), 0) FROM log;",
            )?;
            tracing::info!(from = version, "database migrated to schema 4");
        }
        // Pulls walk a territory's log on this covering index: who wrote each
        // row and whether it was refused are read without touching the row,
        // whose bundle (kilobytes, in overflow pages) comes before `rejected`.
        // It replaces the (territory, seq) index of earlier builds, which can
        // still open the database (an index is not part of the format).
        tx.execute_batch(
            "DROP INDEX IF EXISTS log_territory_seq;
             CREATE INDEX IF NOT EXISTS log_pull ON log (territory_id, seq, device_id, rejected);",
        )?;
        tx.pragma_update(None, "user_version", DB_SCHEMA_VERSION)?;
        tx.commit()?;
        Ok(())
    }

    /// Runs `f` on the raw connection (admin commands, backups, tests).
    pub fn with_conn<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        f(&self.lock())
    }

    fn next_rev(tx: &Transaction) -> Result<u64> {
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('ref_rev', '1')
             ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1",
            [],
        )?;
        let v: String = tx.query_row("SELECT value FROM meta WHERE key='ref_rev'", [], |r| {
            r.get(0)
        })?;
        v.parse()
            .map_err(|_| StoreError::Corrupt(format!("compteur de révision « {v} »")))
    }

    /// A document as merged: its snapshot, then its merged log bundles after
    /// it (rows the merger has not reached yet, or refused, are left out).
    pub(crate) fn load_doc(
        tx: &Connection,
        doc_id: InspectionId,
    ) -> Result<Option<(TerritoryId, Inspection)>> {
        let upto = crate::merge::merged_seq(tx)?;
        Ok(Self::load_doc_counted(tx, doc_id, upto)?.map(|(t, insp, _)| (t, insp)))
    }

    /// Like [`Self::load_doc`] as of log row `upto`, also counting the log
    /// bundles after the snapshot.
    pub(crate) fn load_doc_counted(
        tx: &Connection,
        doc_id: InspectionId,
        upto: i64,
    ) -> Result<Option<(TerritoryId, Inspection, i64)>> {
        let row: Option<(String, Option<Vec<u8>>, i64)> = tx
            .prepare_cached(
                "SELECT territory_id, snapshot, snap_seq FROM documents WHERE doc_id = ?1",
            )?
            .query_row([doc_id.to_string()], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()?;
        let Some((t, snap, snap_seq)) = row else {
            return Ok(None);
        };
        let mut insp = match snap {
            Some(bytes) => Inspection::load(&bytes)?,
            None => Inspection::empty(),
        };
        let mut stmt = tx.prepare_cached(
            "SELECT bytes FROM log WHERE doc_id = ?1 AND seq > ?2 AND seq <= ?3
               AND bytes IS NOT NULL AND rejected IS NULL ORDER BY seq",
        )?;
        let mut rows = stmt.query(params![doc_id.to_string(), snap_seq, upto])?;
        let mut changes = Vec::new();
        let mut behind = 0;
        while let Some(r) = rows.next()? {
            let bytes = unpack(r.get(0)?)?;
            changes.extend(changes_of_chunks(&bytes)?);
            behind += 1;
        }
        insp.apply_changes(changes)?;
        Ok(Some((
            t.parse()
                .map_err(|_| StoreError::Corrupt(format!("identifiant de territoire « {t} »")))?,
            insp,
            behind,
        )))
    }

    /// Validates a merged document and rewrites its projection rows.
    pub(crate) fn project(tx: &Connection, territory: TerritoryId, m: &Merged) -> Result<()> {
        let (doc_id, d) = (m.doc_id, &m.doc);
        let invalid = |reason: &str| StoreError::InvalidDocument {
            doc: doc_id.to_string(),
            reason: reason.into(),
        };
        if d.inspection_id != doc_id {
            return Err(invalid("l'identifiant du document ne correspond pas"));
        }
        if d.territory_id != territory {
            return Err(invalid("le document appartient à un autre territoire"));
        }
        let complex_ok: Option<String> = tx
            .query_row(
                "SELECT office_id FROM complexes WHERE id = ?1 AND territory_id = ?2",
                params![d.complex_id.to_string(), territory.to_string()],
                |r| r.get(0),
            )
            .optional()?;
        if complex_ok.as_deref() != Some(d.office_id.to_string().as_str()) {
            return Err(invalid(
                "ensemble immobilier ou organisme inconnu dans ce territoire",
            ));
        }
        let id = doc_id.to_string();
        let t = territory.to_string();
        for table in [
            "component_ratings",
            "findings",
            "recommendations",
            "site_visits",
            "photo_refs",
        ] {
            tx.prepare_cached(&format!("DELETE FROM {table} WHERE doc_id = ?1"))?
                .execute([&id])?;
        }
        let (rated, present) = d.progress();
        let (total, five) = d.costs();
        let n_conflicts = m.conflicts;
        tx.prepare_cached(
            "INSERT OR REPLACE INTO inspection_summary (doc_id, territory_id, office_id, complex_id, status, created_by,
               created_at, updated_at, rated, present, findings, total_cost, cost_5y, conflicts)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        )?
        .execute(params![
                id, t, d.office_id.to_string(), d.complex_id.to_string(), d.status.code(),
                d.created_by.to_string(), d.created_at, now_ms(), rated as i64, present as i64,
                d.findings.len() as i64, total, five, n_conflicts as i64
            ])?;
        let mut ins = tx.prepare_cached(
            "INSERT INTO component_ratings (doc_id, territory_id, code, rating, present, note) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for (code, c) in &d.components {
            if c.rating.is_some() || c.present.is_some() || !c.note.is_empty() {
                ins.execute(params![
                    id,
                    t,
                    code,
                    c.rating.map(|r| r.code()),
                    c.present,
                    c.note
                ])?;
            }
        }
        for f in &d.findings {
            let cost: f64 = f.recommendations.iter().map(|r| r.estimated_cost()).sum();
            let five: f64 = f
                .recommendations
                .iter()
                .filter(|r| r.urgency.within_five_years())
                .map(|r| r.estimated_cost())
                .sum();
            tx.prepare_cached(
                "INSERT OR REPLACE INTO findings (doc_id, territory_id, finding_id, component, title, location, severity, photos, cost, cost_5y)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )?
            .execute(params![id, t, f.id.to_string(), f.component, f.title, f.location, f.severity.code(), f.photos.len() as i64, cost, five])?;
            for r in &f.recommendations {
                tx.prepare_cached(
                    "INSERT OR REPLACE INTO recommendations (doc_id, territory_id, finding_id, rec_id, work, urgency, quantity, unit, unit_cost, cost)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                )?
                .execute(params![id, t, f.id.to_string(), r.id.to_string(), r.work, r.urgency.code(), r.quantity, r.unit, r.unit_cost, r.estimated_cost()])?;
            }
            for p in &f.photos {
                tx.prepare_cached(
                    "INSERT OR IGNORE INTO photo_refs (doc_id, territory_id, office_id, hash) VALUES (?1, ?2, ?3, ?4)",
                )?
                .execute(params![id, t, d.office_id.to_string(), p.hash.as_str()])?;
            }
        }
        for v in &d.visits {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO site_visits (doc_id, territory_id, visit_id, date, inspector, hours_on_site, travel_hours, km, expenses)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?
            .execute(params![id, t, v.id.to_string(), v.date, v.inspector.to_string(), v.hours_on_site, v.travel_hours, v.km, v.expenses])?;
        }
        Ok(())
    }

    /// Appends changes to the log as one packed bundle (a push's, waiting
    /// for the merger, or a server edit's, already merged). Returns its seq.
    fn append(
        tx: &Connection,
        territory: TerritoryId,
        device: &str,
        doc_id: InspectionId,
        changes: usize,
        packed: &[u8],
    ) -> Result<i64> {
        let id = doc_id.to_string();
        tx.prepare_cached(
            "INSERT INTO documents (doc_id, territory_id, snapshot, snap_seq, updated_at) VALUES (?1, ?2, NULL, 0, ?3)
             ON CONFLICT(doc_id) DO UPDATE SET updated_at = excluded.updated_at",
        )?
        .execute(params![id, territory.to_string(), now_ms()])?;
        tx.prepare_cached(
            "INSERT INTO log (territory_id, doc_id, device_id, changes, bytes, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![
            territory.to_string(),
            id,
            device,
            changes as i64,
            packed,
            now_ms()
        ])?;
        Ok(tx.last_insert_rowid())
    }

    /// Stores a snapshot of the document as of log row `upto` (the merged
    /// rows up to there are folded into it).
    pub(crate) fn write_snapshot(
        tx: &Connection,
        doc_id: InspectionId,
        snapshot: &[u8],
        upto: i64,
    ) -> Result<()> {
        tx.prepare_cached("UPDATE documents SET snapshot = ?2, snap_seq = ?3 WHERE doc_id = ?1")?
            .execute(params![doc_id.to_string(), snapshot, upto])?;
        Ok(())
    }

    /// Log compaction: folds every document's log into its snapshot and
    /// clears the bytes of the rows it covers once they are older than the
    /// retention (pulls of those rows then send the snapshot). One
    /// transaction per document, so pushes interleave.
    fn compact_all(&self) -> Result<CompactReport> {
        self.settle();
        let cutoff = now_ms().saturating_sub(
            self.log_retention_ms
                .load(std::sync::atomic::Ordering::Relaxed),
        );
        let docs: Vec<String> = self
            .lock()
            .prepare(
                "SELECT DISTINCT l.doc_id FROM log l JOIN documents d ON d.doc_id = l.doc_id
                 WHERE l.seq > d.snap_seq OR (l.bytes IS NOT NULL AND l.at < ?1)",
            )?
            .query_map([cutoff], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let mut report = CompactReport::default();
        for doc in docs {
            let doc_id: InspectionId = parse_id(doc)?;
            let mut conn = self.lock();
            let tx = conn.transaction()?;
            let behind: i64 = tx.query_row(
                "SELECT COUNT(*) FROM log l JOIN documents d ON d.doc_id = l.doc_id
                 WHERE l.doc_id = ?1 AND l.seq > d.snap_seq",
                [doc_id.to_string()],
                |r| r.get(0),
            )?;
            let upto = crate::merge::merged_seq(&tx)?;
            if behind > 0
                && let Some((_, insp, _)) = Self::load_doc_counted(&tx, doc_id, upto)?
                && let Some(snapshot) = checked_snapshot(doc_id, &insp)
            {
                Self::write_snapshot(&tx, doc_id, &snapshot, upto)?;
                report.documents += 1;
            }
            report.rows_cleared += tx.execute(
                "UPDATE log SET bytes = NULL WHERE doc_id = ?1 AND bytes IS NOT NULL AND at < ?2
                   AND seq <= (SELECT snap_seq FROM documents WHERE doc_id = ?1)",
                params![doc_id.to_string(), cutoff],
            )? as u64;
            tx.commit()?;
        }
        Ok(report)
    }

    /// The write half of a sync, with group commit: the push joins the
    /// queue; whoever holds the write lock next writes every queued push in
    /// one transaction (each in its own savepoint, so one bad request fails
    /// alone) and one commit, one fsync, then answers each. Devices syncing at
    /// the same moment share the fsync instead of queueing behind each other's.
    fn push(&self, territory: TerritoryId, device: &str, docs: Vec<DocChanges>) -> Result<u32> {
        let docs = prepare_push(docs)?;
        if docs.is_empty() {
            return Ok(0);
        }
        let (reply, answer) = std::sync::mpsc::sync_channel(1);
        self.pushes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(PushJob {
                territory,
                device: device.to_string(),
                docs,
                reply,
            });
        let mut conn = self.lock();
        // A leader that held the lock before us answers before releasing it.
        if let Ok(done) = answer.try_recv() {
            return done;
        }
        let jobs = std::mem::take(&mut *self.pushes.lock().unwrap_or_else(|p| p.into_inner()));
        Self::write_group(self, &mut conn, jobs);
        drop(conn);
        answer
            .recv()
            .unwrap_or_else(|_| Err(StoreError::Backend("push not answered".into())))
    }

    /// Writes queued pushes in one transaction and answers each.
    fn write_group(core: &StoreCore, conn: &mut Connection, jobs: Vec<PushJob>) {
        let group = jobs.len();
        let started = std::time::Instant::now();
        let mut tx = match conn.transaction() {
            Ok(tx) => tx,
            Err(e) => {
                let e = StoreError::from(e);
                for job in jobs {
                    let _ = job.reply.send(Err(e.duplicate()));
                }
                return;
            }
        };
        let mut answers = Vec::with_capacity(group);
        let mut last_seq = 0i64;
        let mut queue = jobs.into_iter();
        while let Some(job) = queue.next() {
            let outcome = tx.savepoint().map_err(StoreError::from).and_then(|sp| {
                let (n, last) = Self::write_push(&sp, job.territory, &job.device, job.docs)?;
                sp.commit()?;
                last_seq = last_seq.max(last);
                Ok(n)
            });
            match outcome {
                // SQLite rolled the whole transaction back (disk full, I/O
                // error): the pushes written before are gone too, so every
                // push of the group fails with this error and is retried.
                Err(e) if tx.is_autocommit() => {
                    let replies = answers
                        .into_iter()
                        .map(|(reply, _)| reply)
                        .chain(std::iter::once(job.reply))
                        .chain(queue.map(|j| j.reply));
                    for reply in replies {
                        let _ = reply.send(Err(e.duplicate()));
                    }
                    tracing::warn!(group, error = %e, "push group rolled back by SQLite");
                    return;
                }
                outcome => answers.push((job.reply, outcome)),
            }
        }
        let written = started.elapsed();
        match tx.commit() {
            Ok(()) => {
                core.note_committed(last_seq);
                for (reply, outcome) in answers {
                    let _ = reply.send(outcome);
                }
            }
            Err(e) => {
                let e = StoreError::from(e);
                for (reply, _) in answers {
                    let _ = reply.send(Err(e.duplicate()));
                }
            }
        }
        let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
        tracing::debug!(
            group,
            write_ms = ms(written),
            commit_ms = ms(started.elapsed() - written),
            "push group"
        );
    }

    /// One push inside the group's transaction: every document must belong
    /// to the caller's territory (or be new); each goes to the log as one
    /// packed bundle, for the merger. The first error rolls this push back.
    /// Returns the chunks stored and the seq of the last row written.
    fn write_push(
        tx: &Connection,
        territory: TerritoryId,
        device: &str,
        docs: Vec<PreparedDoc>,
    ) -> Result<(u32, i64)> {
        for d in &docs {
            let owner: Option<String> = tx
                .prepare_cached("SELECT territory_id FROM documents WHERE doc_id = ?1")?
                .query_row([d.doc_id.to_string()], |r| r.get(0))
                .optional()?;
            if owner.is_some_and(|t| t != territory.to_string()) {
                return Err(StoreError::Forbidden(format!(
                    "l'inspection {} appartient à un autre territoire",
                    d.doc_id
                )));
            }
        }
        let (mut accepted, mut last) = (0u32, 0i64);
        for d in docs {
            last = Self::append(tx, territory, device, d.doc_id, d.chunks, &d.packed)?;
            accepted += d.chunks as u32;
        }
        Ok((accepted, last))
    }

    /// The read half of a sync: merged log bundles after `cursor` (up to
    /// `upto`, the merger's progress), the device's own left out, within
    /// about `page_bytes`. A row whose bytes compaction cleared is sent as the
    /// document's snapshot (once per response). The device's own rows that
    /// the merger refused are reported, so it can tell its user (or resend).
    /// With `look_ahead`, `more` is also set while another device's rows wait
    /// for the merger.
    fn pull(
        conn: &Connection,
        territory: TerritoryId,
        device: &str,
        cursor: u64,
        upto: i64,
        page_bytes: u64,
        look_ahead: bool,
    ) -> Result<Pulled> {
        let mut out = Pulled {
            cursor,
            ..Pulled::default()
        };
        let mut budget = 0u64;
        let mut snapshots_sent = std::collections::HashSet::new();
        // The walk reads the covering index `log_pull` only; a row's document
        // and bundle (or reason) are read for the rows that need them.
        let mut stmt = conn.prepare_cached(PULL_WALK)?;
        let mut row_of = conn.prepare_cached(
            "SELECT doc_id, CASE WHEN rejected IS NULL THEN bytes END, reason FROM log WHERE seq = ?1",
        )?;
        let mut rows = stmt.query(params![territory.to_string(), cursor as i64, upto])?;
        while let Some(r) = rows.next()? {
            let seq: i64 = r.get(0)?;
            let from: String = r.get(1)?;
            let rejected: Option<String> = r.get(2)?;
            let mine = from == device;
            if mine == rejected.is_none() {
                // Its own merged rows, or another device's refused ones.
                out.cursor = seq as u64;
                continue;
            }
            let (doc, stored, reason): (String, Option<Vec<u8>>, Option<String>) =
                row_of.query_row([seq], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            match rejected {
                Some(code) => out.rejected.push(Rejection {
                    doc_id: parse_id(doc)?,
                    code: serde_json::from_value(serde_json::Value::String(code))
                        .unwrap_or(ErrorCode::InvalidDocument),
                    message: reason.unwrap_or_default(),
                }),
                None => {
                    let bytes: Option<Vec<u8>> = match stored {
                        Some(b) => Some(unpack(b)?),
                        None if snapshots_sent.insert(doc.clone()) => conn
                            .prepare_cached("SELECT snapshot FROM documents WHERE doc_id = ?1")?
                            .query_row([&doc], |r| r.get(0))
                            .optional()?
                            .flatten(),
                        None => None,
                    };
                    if let Some(bytes) = bytes {
                        if budget > 0 && budget + bytes.len() as u64 > page_bytes {
                            out.more = true;
                            break;
                        }
                        budget += bytes.len() as u64;
                        let doc_id: InspectionId = parse_id(doc)?;
                        match out.changes.last_mut() {
                            Some(last) if last.doc_id == doc_id => {
                                last.changes.push(ByteBuf::from(bytes))
                            }
                            _ => out.changes.push(DocChanges {
                                doc_id,
                                changes: vec![ByteBuf::from(bytes)],
                            }),
                        }
                    }
                }
            }
            out.cursor = seq as u64;
        }
        if !out.more && look_ahead {
            out.more = conn
                .prepare_cached(
                    "SELECT EXISTS(SELECT 1 FROM log WHERE territory_id = ?1 AND seq > ?2 AND device_id != ?3)",
                )?
                .query_row(params![territory.to_string(), upto, device], |r| r.get(0))?;
        }
        Ok(out)
    }

    /// Counts a failed login; the fifth in a row locks the name for 15
    /// minutes. Returns the error to answer.
    fn login_failed(&self, username: &str) -> Result<StoreError> {
        let locked = self.lock().query_row(
            "INSERT INTO login_failures (username, failures, locked_until) VALUES (?1, 1, 0)
             ON CONFLICT(username) DO UPDATE SET failures = failures + 1
             RETURNING failures",
            [username],
            |r| r.get::<_, i64>(0),
        )? >= MAX_LOGIN_FAILURES;
        if locked {
            self.lock().execute(
                "UPDATE login_failures SET failures = 0, locked_until = ?2 WHERE username = ?1",
                params![username, now_ms() + LOCKOUT_MS],
            )?;
            tracing::warn!(username, "login locked after repeated failures");
            let conn = self.lock();
            let territory: Option<String> = conn
                .query_row(
                    "SELECT territory_id FROM users WHERE username = ?1",
                    [username],
                    |r| r.get(0),
                )
                .optional()?
                .flatten();
            let entry = AuditEntry {
                territory_id: territory.and_then(|t| t.parse().ok()),
                actor: username.to_string(),
                ..AuditEntry::console(None, AuditAction::LoginLocked, username)
            };
            Self::write_audit(
                &conn,
                &entry.with_detail(format!(
                    "{MAX_LOGIN_FAILURES} échecs de suite : verrouillée {} minutes",
                    LOCKOUT_MS / 60_000
                )),
            )?;
        }
        Ok(StoreError::InvalidCredentials)
    }

    /// How long compaction keeps the bytes of log rows: a device that was
    /// behind by less than this gets the few changes it misses, not the whole
    /// snapshot of each document that changed. Older rows are cleared and
    /// their space reclaimed.
    pub fn set_log_retention(&self, keep: std::time::Duration) {
        self.log_retention_ms.store(
            i64::try_from(keep.as_millis()).unwrap_or(i64::MAX),
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    /// How long a token stays valid after its login (sessions and devices).
    pub fn set_token_ttl(&self, ttl: std::time::Duration) {
        self.token_ttl_ms.store(
            i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX),
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    /// `TooManyAttempts` while the lock `sql` reads for `key` (a user name or
    /// a client address) is in the future.
    fn refuse_if_locked(&self, sql: &str, key: &str) -> Result<()> {
        let until: Option<i64> = self.lock().query_row(sql, [key], |r| r.get(0)).optional()?;
        match until.filter(|&u| u > now_ms()) {
            Some(u) => Err(StoreError::TooManyAttempts {
                minutes: (u - now_ms() + 59_999) / 60_000,
            }),
            None => Ok(()),
        }
    }

    fn write_audit(conn: &Connection, e: &AuditEntry) -> Result<()> {
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

    fn user_territory(user: &UserInfo) -> Result<TerritoryId> {
        user.territory_id.ok_or_else(|| {
            StoreError::Forbidden("ce compte n'est rattaché à aucun territoire".into())
        })
    }

    fn check_reader(tx: &Connection, user: &UserInfo, id: InspectionId) -> Result<()> {
        let territory = Self::user_territory(user)?;
        let row: Option<(String, String)> = tx
            .query_row(
                "SELECT territory_id, office_id FROM inspection_summary WHERE doc_id = ?1",
                [id.to_string()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let Some((t, office)) = row else {
            return Err(StoreError::NotFound(format!("inspection {id}")));
        };
        if t != territory.to_string() {
            return Err(StoreError::Forbidden(
                "cette inspection appartient à un autre territoire".into(),
            ));
        }
        if user.role == Role::OfficeReader && user.office_id.map(|o| o.to_string()) != Some(office)
        {
            return Err(StoreError::Forbidden(
                "cette inspection concerne un autre organisme".into(),
            ));
        }
        Ok(())
    }
}

fn row_user(r: &rusqlite::Row) -> rusqlite::Result<UserInfo> {
    let role: String = r.get(3)?;
    Ok(UserInfo {
        id: parse_id(r.get(0)?)?,
        username: r.get(1)?,
        display_name: r.get(2)?,
        role: Role::from_code(&role).unwrap_or(Role::OfficeReader),
        territory_id: r.get::<_, Option<String>>(4)?.map(parse_id).transpose()?,
        office_id: r.get::<_, Option<String>>(5)?.map(parse_id).transpose()?,
    })
}

const USER_COLS: &str = "u.id, u.username, u.display_name, u.role, u.territory_id, u.office_id";

impl Storage for SqliteStore {
    fn create_territory(&self, name: &str) -> Result<TerritoryId> {
        let id = TerritoryId::new();
        self.lock().execute(
            "INSERT INTO territories (id, name, created_at) VALUES (?1, ?2, ?3)",
            params![id.to_string(), name, now_ms()],
        )?;
        Ok(id)
    }

    fn territory_by_name(&self, name: &str) -> Result<Option<Territory>> {
        Ok(self
            .lock()
            .query_row(
                "SELECT id, name FROM territories WHERE name = ?1",
                [name],
                |r| {
                    Ok(Territory {
                        id: parse_id(r.get(0)?)?,
                        name: r.get(1)?,
                    })
                },
            )
            .optional()?)
    }

    fn create_office(&self, territory: TerritoryId, code: &str, name: &str) -> Result<OfficeId> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let existing: Option<String> = tx
            .query_row(
                "SELECT id FROM offices WHERE territory_id = ?1 AND code = ?2",
                params![territory.to_string(), code],
                |r| r.get(0),
            )
            .optional()?;
        let rev = Self::next_rev(&tx)?;
        let id = match existing {
            Some(id) => {
                tx.execute(
                    "UPDATE offices SET name = ?1, rev = ?2 WHERE id = ?3",
                    params![name, rev as i64, id],
                )?;
                id.parse()
                    .map_err(|_| StoreError::Corrupt(format!("identifiant d'organisme « {id} »")))?
            }
            None => {
                let id = OfficeId::new();
                tx.execute(
                    "INSERT INTO offices (id, territory_id, code, name, rev) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![id.to_string(), territory.to_string(), code, name, rev as i64],
                )?;
                id
            }
        };
        tx.commit()?;
        Ok(id)
    }

    fn upsert_complex(&self, c: &Complex) -> Result<()> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let office_ok: bool = tx
            .query_row(
                "SELECT 1 FROM offices WHERE id = ?1 AND territory_id = ?2",
                params![c.office_id.to_string(), c.territory_id.to_string()],
                |_| Ok(true),
            )
            .optional()?
            .unwrap_or(false);
        if !office_ok {
            return Err(StoreError::BadRequest(format!(
                "organisme inconnu pour l'ensemble {}",
                c.code
            )));
        }
        let rev = Self::next_rev(&tx)?;
        tx.execute(
            "INSERT INTO complexes (id, territory_id, office_id, code, name, address, city, dwellings, year_built, replacement_value, rev)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
             ON CONFLICT(territory_id, code) DO UPDATE SET office_id = excluded.office_id, name = excluded.name,
               address = excluded.address, city = excluded.city, dwellings = excluded.dwellings,
               year_built = excluded.year_built, replacement_value = excluded.replacement_value, rev = excluded.rev",
            params![
                c.id.to_string(), c.territory_id.to_string(), c.office_id.to_string(), c.code, c.name, c.address,
                c.city, c.dwellings, c.year_built, c.replacement_value, rev as i64
            ],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn offices(&self, territory: TerritoryId) -> Result<Vec<Office>> {
        let conn = self.lock();
        let mut stmt = conn.prepare("SELECT id, territory_id, code, name FROM offices WHERE territory_id = ?1 ORDER BY name")?;
        let rows = stmt.query_map([territory.to_string()], |r| {
            Ok(Office {
                id: parse_id(r.get(0)?)?,
                territory_id: parse_id(r.get(1)?)?,
                code: r.get(2)?,
                name: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn reference(&self, user: &UserInfo, since: u64) -> Result<ReferenceResponse> {
        let territory = Self::user_territory(user)?;
        let conn = self.lock();
        let t = territory.to_string();
        let office_filter = match (user.role, user.office_id) {
            (Role::OfficeReader, Some(o)) => o.to_string(),
            (Role::OfficeReader, None) => {
                return Err(StoreError::Forbidden("aucun organisme".into()));
            }
            _ => String::new(),
        };
        let territory_row = conn.query_row(
            "SELECT id, name FROM territories WHERE id = ?1",
            [&t],
            |r| {
                Ok(Territory {
                    id: parse_id(r.get(0)?)?,
                    name: r.get(1)?,
                })
            },
        )?;
        let mut stmt = conn.prepare_cached(
            "SELECT id, territory_id, code, name FROM offices
             WHERE territory_id = ?1 AND rev > ?2 AND (?3 = '' OR id = ?3) ORDER BY rev",
        )?;
        let offices = stmt
            .query_map(params![t, since as i64, office_filter], |r| {
                Ok(Office {
                    id: parse_id(r.get(0)?)?,
                    territory_id: parse_id(r.get(1)?)?,
                    code: r.get(2)?,
                    name: r.get(3)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let mut stmt = conn.prepare_cached(
            "SELECT id, territory_id, office_id, code, name, address, city, dwellings, year_built, replacement_value
             FROM complexes WHERE territory_id = ?1 AND rev > ?2 AND (?3 = '' OR office_id = ?3) ORDER BY rev",
        )?;
        let complexes = stmt
            .query_map(params![t, since as i64, office_filter], |r| {
                Ok(Complex {
                    id: parse_id(r.get(0)?)?,
                    territory_id: parse_id(r.get(1)?)?,
                    office_id: parse_id(r.get(2)?)?,
                    code: r.get(3)?,
                    name: r.get(4)?,
                    address: r.get(5)?,
                    city: r.get(6)?,
                    dwellings: r.get(7)?,
                    year_built: r.get(8)?,
                    replacement_value: r.get(9)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let revision: i64 = conn.query_row(
            "SELECT MAX(COALESCE((SELECT MAX(rev) FROM offices WHERE territory_id = ?1), 0),
                        COALESCE((SELECT MAX(rev) FROM complexes WHERE territory_id = ?1), 0))",
            [&t],
            |r| r.get(0),
        )?;
        let settings = crate::queries::settings(&conn, user)?;
        Ok(ReferenceResponse {
            territory: territory_row,
            offices,
            complexes,
            revision: (revision as u64).max(since),
            catalogue_version: bilan_shared::Catalogue::current().version.clone(),
            settings,
        })
    }

    fn create_user(&self, u: &NewUser) -> Result<UserId> {
        // User names are typed on phones and appear in URLs, logs and the
        // audit log: a small alphabet, no look-alikes, no markup.
        let name_ok = (2..=64).contains(&u.username.len())
            && u.username
                .starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && u.username.chars().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')
            });
        if !name_ok {
            return Err(StoreError::BadRequest(
                "nom d'utilisateur invalide : 2 à 64 caractères parmi a-z, 0-9, « . », « _ » et « - »".into(),
            ));
        }
        if u.password.len() < 8 || u.display_name.trim().is_empty() {
            return Err(StoreError::BadRequest(
                "nom affiché requis et mot de passe d'au moins 8 caractères".into(),
            ));
        }
        match u.role {
            Role::Admin => {}
            Role::OfficeReader if u.office_id.is_none() => {
                return Err(StoreError::BadRequest(
                    "un lecteur d'organisme doit être rattaché à un organisme".into(),
                ));
            }
            _ if u.territory_id.is_none() => {
                return Err(StoreError::BadRequest(
                    "ce rôle doit être rattaché à un territoire".into(),
                ));
            }
            _ => {}
        }
        let hash = hash_password(&u.password)?;
        let id = UserId::new();
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
                id.to_string(), u.username, u.display_name, u.role.code(),
                u.territory_id.map(|t| t.to_string()), u.office_id.map(|o| o.to_string()), hash, now_ms()
            ],
        )?;
        Ok(id)
    }

    fn set_password(&self, username: &str, password: &str) -> Result<()> {
        if password.len() < 8 {
            return Err(StoreError::BadRequest(
                "mot de passe d'au moins 8 caractères".into(),
            ));
        }
        let hash = hash_password(password)?;
        let conn = self.lock();
        let n = conn.execute(
            "UPDATE users SET password_hash = ?1 WHERE username = ?2",
            params![hash, username],
        )?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("utilisateur {username}")));
        }
        Ok(())
    }

    fn check_address(&self, address: &str) -> Result<()> {
        self.refuse_if_locked(
            "SELECT locked_until FROM address_failures WHERE address = ?1",
            address,
        )
    }

    fn address_failed(&self, address: &str) -> Result<()> {
        let now = now_ms();
        let conn = self.lock();
        let failures: i64 = conn.query_row(
            "INSERT INTO address_failures (address, failures, window_start, locked_until)
             VALUES (?1, 1, ?2, 0)
             ON CONFLICT(address) DO UPDATE SET
               failures = CASE WHEN window_start < ?2 - ?3 THEN 1 ELSE failures + 1 END,
               window_start = CASE WHEN window_start < ?2 - ?3 THEN ?2 ELSE window_start END
             RETURNING failures",
            params![address, now, ADDRESS_WINDOW_MS],
            |r| r.get(0),
        )?;
        if failures >= MAX_ADDRESS_FAILURES {
            conn.execute(
                "UPDATE address_failures SET failures = 0, window_start = ?2, locked_until = ?3
                 WHERE address = ?1",
                params![address, now, now + LOCKOUT_MS],
            )?;
            tracing::warn!(
                address,
                "logins from this address locked after repeated failures"
            );
            let entry = AuditEntry::console(None, AuditAction::LoginLocked, address);
            Self::write_audit(
                &conn,
                &AuditEntry {
                    actor: address.to_string(),
                    ..entry.with_detail(format!(
                        "{MAX_ADDRESS_FAILURES} échecs depuis cette adresse : bloquée {} minutes",
                        LOCKOUT_MS / 60_000
                    ))
                },
            )?;
        }
        Ok(())
    }

    fn login(
        &self,
        username: &str,
        password: &str,
        device: Option<DeviceId>,
    ) -> Result<(String, UserInfo)> {
        self.refuse_if_locked(
            "SELECT locked_until FROM login_failures WHERE username = ?1",
            username,
        )?;
        let row = {
            let conn = self.lock();
            conn.query_row(
                &format!("SELECT {USER_COLS}, u.password_hash FROM users u WHERE u.username = ?1"),
                [username],
                |r| Ok((row_user(r)?, r.get::<_, String>(6)?)),
            )
            .optional()?
        };
        // Verify even for unknown users so timing does not reveal which names exist.
        let (user, stored) = match row {
            Some(r) => r,
            None => {
                let _ = verify_password(password, DUMMY_HASH);
                return Err(self.login_failed(username)?);
            }
        };
        if !verify_password(password, &stored) {
            return Err(self.login_failed(username)?);
        }
        self.lock()
            .execute("DELETE FROM login_failures WHERE username = ?1", [username])?;
        let mut raw = [0u8; 32];
        rand::rng().fill_bytes(&mut raw);
        let token = hex::encode(raw);
        self.lock().execute(
            "INSERT INTO tokens (token_hash, user_id, device_id, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![hash_token(&token), user.id.to_string(), device.map(|d| d.to_string()), now_ms()],
        )?;
        Ok((token, user))
    }

    fn user_for_token(&self, token: &str) -> Result<Option<UserInfo>> {
        let oldest = now_ms() - self.token_ttl_ms.load(std::sync::atomic::Ordering::Relaxed);
        Ok(self
            .reader()?
            .query_row(
                &format!(
                    "SELECT {USER_COLS} FROM tokens t JOIN users u ON u.id = t.user_id
                     WHERE t.token_hash = ?1 AND t.revoked_at IS NULL AND t.created_at > ?2"
                ),
                params![hash_token(token), oldest],
                row_user,
            )
            .optional()?)
    }

    fn revoke_token(&self, token: &str) -> Result<()> {
        self.lock().execute(
            "UPDATE tokens SET revoked_at = ?1 WHERE token_hash = ?2 AND revoked_at IS NULL",
            params![now_ms(), hash_token(token)],
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

    fn sync(&self, user: &UserInfo, req: SyncRequest, limits: SyncLimits) -> Result<SyncResponse> {
        if !matches!(user.role, Role::Inspector | Role::Manager) {
            return Err(StoreError::Forbidden(
                "seuls les inspecteurs et responsables du CS synchronisent".into(),
            ));
        }
        let territory = Self::user_territory(user)?;
        crate::service::check_document_count(req.docs.len(), limits.max_docs)?;
        let device = req.device_id.to_string();
        let started = std::time::Instant::now();
        let docs = req.docs.len();
        let accepted = if docs == 0 {
            0
        } else {
            self.push(territory, &device, req.docs)?
        };
        let pushed = started.elapsed();
        if docs == 0 {
            // A pull alone (the device came back for more): wait for the
            // merger to reach what is committed, so it gets everything.
            self.settle();
        }
        let upto = self.merged();
        // A failing merger (disk full) would make devices come back forever.
        let look_ahead = !self.merger_failing();
        // A push is answered with a small page of the others' changes: the
        // device learns at once that its own are safe, and comes back for
        // the rest (`more`) with a pull.
        let page_bytes = if docs == 0 {
            limits.page_bytes
        } else {
            limits.page_bytes.min(PUSH_ANSWER_PAGE_BYTES)
        };
        let conn = self.reader()?;
        let reader = started.elapsed();
        let pulled = Self::pull(
            &conn, territory, &device, req.cursor, upto, page_bytes, look_ahead,
        )?;
        drop(conn);
        let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
        tracing::debug!(
            docs,
            accepted,
            push_ms = ms(pushed),
            reader_ms = ms(reader - pushed),
            pull_ms = ms(started.elapsed() - reader),
            "sync phases"
        );
        Ok(SyncResponse {
            protocol: PROTOCOL_VERSION,
            cursor: pulled.cursor,
            more: pulled.more,
            accepted,
            changes: pulled.changes,
            rejected: pulled.rejected,
        })
    }

    fn inspection(&self, user: &UserInfo, id: InspectionId) -> Result<Inspection> {
        self.settle();
        let conn = self.reader()?;
        Self::check_reader(&conn, user, id)?;
        let doc = Self::load_doc(&conn, id)?
            .ok_or_else(|| StoreError::NotFound(format!("inspection {id}")))?;
        Ok(doc.1)
    }

    fn summaries(&self, user: &UserInfo) -> Result<Vec<InspectionSummary>> {
        self.settle();
        let territory = Self::user_territory(user)?;
        let office = match user.role {
            Role::OfficeReader => user
                .office_id
                .map(|o| o.to_string())
                .unwrap_or_else(|| "-".into()),
            _ => String::new(),
        };
        let conn = self.reader()?;
        let mut stmt = conn.prepare_cached(
            "SELECT doc_id, office_id, complex_id, status, rated, present, findings, total_cost, cost_5y, conflicts, updated_at
             FROM inspection_summary WHERE territory_id = ?1 AND (?2 = '' OR office_id = ?2) ORDER BY updated_at DESC",
        )?;
        let rows = stmt.query_map(params![territory.to_string(), office], |r| {
            let status: String = r.get(3)?;
            Ok(InspectionSummary {
                inspection_id: parse_id(r.get(0)?)?,
                office_id: parse_id(r.get(1)?)?,
                complex_id: parse_id(r.get(2)?)?,
                status: InspectionStatus::from_code(&status)
                    .unwrap_or(InspectionStatus::InProgress),
                rated: r.get(4)?,
                present: r.get(5)?,
                findings: r.get(6)?,
                total_cost: r.get(7)?,
                cost_5y: r.get(8)?,
                conflicts: r.get(9)?,
                updated_at: r.get(10)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn server_edit(
        &self,
        user: &UserInfo,
        id: InspectionId,
        audit: &AuditEntry,
        edit: &mut ServerEdit<'_>,
    ) -> Result<()> {
        let territory = Self::user_territory(user)?;
        let mut conn = self.lock();
        // Everything pushed so far is merged first (under the lock, so no
        // push slips in): the edit sees it, and its row is merged as written.
        self.drain(&mut conn)?;
        Self::check_reader(&conn, user, id)?;
        let tx = conn.transaction()?;
        let (_, mut insp) = Self::load_doc(&tx, id)?
            .ok_or_else(|| StoreError::NotFound(format!("inspection {id}")))?;
        let author = Author {
            actor: self.server_actor.clone(),
            info: bilan_shared::doc::ActorInfo {
                user_id: user.id,
                user_name: user.display_name.clone(),
                device_id: DeviceId(
                    uuid::Uuid::from_slice(self.server_actor.to_bytes()).unwrap_or_default(),
                ),
            },
        };
        let changes = edit(&mut insp, &author)?;
        if changes.is_empty() {
            return Ok(());
        }
        let m = Merged::derive(id, &insp, false)?;
        Self::project(&tx, territory, &m)?;
        let packed = pack(&bundle(&changes))?;
        let seq = Self::append(&tx, territory, "server", id, changes.len(), &packed)?;
        crate::merge::set_merged_seq(&tx, seq)?;
        Self::write_audit(&tx, audit)?;
        tx.commit()?;
        self.note_committed(seq);
        self.note_merged(seq);
        Ok(())
    }

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

    fn photo_meta(&self, user: &UserInfo, hash: &PhotoHash) -> Result<Option<(u64, String)>> {
        self.settle();
        let territory = Self::user_territory(user)?;
        let conn = self.reader()?;
        let allowed: bool = match user.role {
            Role::OfficeReader => conn
                .query_row(
                    // A document can name any hash: the photo must also have
                    // been sent by the territory (photo_access).
                    "SELECT 1 FROM photo_refs r JOIN photo_access a ON a.hash = r.hash AND a.territory_id = r.territory_id
                     WHERE r.hash = ?1 AND r.territory_id = ?2 AND r.office_id = ?3",
                    params![hash.as_str(), territory.to_string(), user.office_id.map(|o| o.to_string())],
                    |_| Ok(true),
                )
                .optional()?
                .unwrap_or(false),
            _ => conn
                .query_row(
                    "SELECT 1 FROM photo_access WHERE hash = ?1 AND territory_id = ?2",
                    params![hash.as_str(), territory.to_string()],
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

    fn photo_may_upload(&self, user: &UserInfo, _hash: &PhotoHash) -> Result<bool> {
        Ok(matches!(user.role, Role::Inspector | Role::Manager) && user.territory_id.is_some())
    }

    fn overview(&self, user: &UserInfo) -> Result<Vec<crate::queries::OfficeOverview>> {
        self.settle();
        let conn = self.reader()?;
        let settings = crate::queries::settings(&conn, user)?;
        crate::queries::overview(&conn, user, &settings, now_ms())
    }

    fn search_inspections(
        &self,
        user: &UserInfo,
        filter: &crate::queries::InspectionFilter,
    ) -> Result<(Vec<crate::queries::InspectionRow>, u32)> {
        self.settle();
        let conn = self.reader()?;
        let settings = crate::queries::settings(&conn, user)?;
        crate::queries::inspections(&conn, user, filter, &settings)
    }

    fn filter_options(&self, user: &UserInfo) -> Result<crate::queries::FilterOptions> {
        self.settle();
        let conn = self.reader()?;
        Ok((
            crate::queries::offices(&conn, user)?,
            crate::queries::inspectors(&conn, user)?,
        ))
    }

    fn territory_users(&self, user: &UserInfo) -> Result<Vec<UserInfo>> {
        let territory = Self::user_territory(user)?;
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {USER_COLS} FROM users u WHERE u.territory_id = ?1 ORDER BY u.role, u.display_name"
        ))?;
        let rows = stmt
            .query_map([territory.to_string()], row_user)?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    fn works_plan(&self, user: &UserInfo) -> Result<Vec<crate::queries::PlanLine>> {
        self.settle();
        crate::queries::works_plan(&*self.reader()?, user)
    }

    fn activity(
        &self,
        user: &UserInfo,
        from: &str,
        to: &str,
    ) -> Result<(
        Vec<crate::queries::ActivityLine>,
        crate::queries::CsSettings,
    )> {
        self.settle();
        let conn = self.reader()?;
        let rates = crate::queries::settings(&conn, user)?;
        Ok((
            crate::queries::activity(&conn, user, from, to, &rates)?,
            rates,
        ))
    }

    fn settings(&self, user: &UserInfo) -> Result<crate::queries::CsSettings> {
        crate::queries::settings(&self.lock(), user)
    }

    fn set_settings(&self, user: &UserInfo, settings: &crate::queries::CsSettings) -> Result<()> {
        crate::service::require_manager(user)?;
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        crate::queries::set_settings(&tx, user, settings)?;
        let detail = serde_json::to_string(settings).unwrap_or_default();
        let audit = AuditEntry::by(user, AuditAction::ChangeSettings, "tarifs et seuils");
        Self::write_audit(&tx, &audit.with_detail(detail))?;
        tx.commit()?;
        Ok(())
    }

    fn audit(&self, entry: &AuditEntry) -> Result<()> {
        Self::write_audit(&self.lock(), entry)
    }

    fn audit_log(&self, user: Option<&UserInfo>, limit: u32) -> Result<Vec<AuditEntry>> {
        let territory = match user {
            None => None,
            Some(u) => {
                crate::service::require_manager(u)?;
                Some(Self::user_territory(u)?.to_string())
            }
        };
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT at, territory_id, actor, action, target, detail FROM audit
             WHERE ?1 IS NULL OR territory_id = ?1 ORDER BY seq DESC LIMIT ?2",
        )?;
        let rows = stmt
            .query_map(params![territory, limit], |r| {
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

    fn compact(&self) -> Result<CompactReport> {
        self.compact_all()
    }

    fn change_count(&self, territory: TerritoryId) -> Result<u64> {
        self.settle();
        Ok(self.lock().query_row(
            "SELECT COALESCE(SUM(changes), 0) FROM log WHERE territory_id = ?1 AND rejected IS NULL",
            [territory.to_string()],
            |r| r.get::<_, i64>(0),
        )? as u64)
    }
}

const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$J1Lp1Gm8qZ5KcTn2W9rYbA8m1l9PMvYV1v0e0gN2mS0";

fn hash_password(password: &str) -> Result<String> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| StoreError::Password(e.to_string()))?;
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| StoreError::Password(e.to_string()))?
        .to_string())
}

fn verify_password(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bilan_shared::catalogue::Catalogue;
    use bilan_shared::domain::Rating;
    use bilan_shared::{Author, NewInspection};

    /// A schema-1 database (one log row per change, snapshots required,
    /// projection tables with rowids) opens migrated: its changes are still
    /// counted and served to devices, its projection rows are kept, and a
    /// push on top of it works.
    #[test]
    fn a_schema_1_database_is_migrated_and_keeps_serving_its_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bilan.sqlite");
        let (territory, office, complex) = (TerritoryId::new(), OfficeId::new(), ComplexId::new());
        let author = Author::device(DeviceId::new(), UserId::new(), "Julie");
        let (mut insp, _) = Inspection::create(
            &author,
            NewInspection {
                inspection_id: InspectionId::new(),
                territory_id: territory,
                office_id: office,
                complex_id: complex,
            },
            Catalogue::current(),
        )
        .unwrap();
        insp.edit(&author, |d| d.rate("B3010", Rating::D)).unwrap();
        let doc_id = insp.read().unwrap().inspection_id;
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(include_str!("testdata/schema_v1.sql"))
                .unwrap();
            conn.pragma_update(None, "user_version", 1).unwrap();
            let (t, o, c, d) = (
                territory.to_string(),
                office.to_string(),
                complex.to_string(),
                doc_id.to_string(),
            );
            conn.execute("INSERT INTO territories VALUES (?1, 'CS test', 0)", [&t])
                .unwrap();
            conn.execute(
                "INSERT INTO offices VALUES (?1, ?2, 'O1', 'Office', 1)",
                [&o, &t],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO complexes VALUES (?1, ?2, ?3, 'C1', 'Complexe', '1 rue', 'Québec', 10, 1980, 1000000.0, 1)",
                [&c, &t, &o],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO documents VALUES (?1, ?2, ?3, 0)",
                params![d, t, insp.save()],
            )
            .unwrap();
            for ch in insp.changes_since(&[]) {
                conn.execute(
                    "INSERT INTO changes (territory_id, doc_id, hash, device_id, bytes) VALUES (?1, ?2, ?3, 'dev', ?4)",
                    params![t, d, ch.hash().0.as_slice(), ch.raw_bytes()],
                )
                .unwrap();
            }
            conn.execute(
                "INSERT INTO component_ratings VALUES (?1, ?2, 'B3010', 'D', 1, '')",
                [&d, &t],
            )
            .unwrap();
        }

        let store = SqliteStore::open(&path).unwrap();
        let version: i64 = store
            .with_conn(|c| Ok(c.pragma_query_value(None, "user_version", |r| r.get(0))?))
            .unwrap();
        assert_eq!(version, DB_SCHEMA_VERSION);
        assert_eq!(store.change_count(territory).unwrap(), 2);
        let ratings = |store: &SqliteStore| -> i64 {
            store
                .with_conn(|c| {
                    Ok(c.query_row("SELECT COUNT(*) FROM component_ratings", [], |r| r.get(0))?)
                })
                .unwrap()
        };
        assert_eq!(ratings(&store), 1, "projection rows kept");

        let user = UserInfo {
            id: UserId::new(),
            username: "inspecteur".into(),
            display_name: "Inspecteur".into(),
            role: Role::Inspector,
            territory_id: Some(territory),
            office_id: None,
        };
        let limits = SyncLimits {
            max_docs: 10,
            page_bytes: 1 << 20,
        };
        let request = |docs| SyncRequest {
            protocol: PROTOCOL_VERSION,
            device_id: DeviceId::new(),
            cursor: 0,
            docs,
        };
        let pulled = store.sync(&user, request(vec![]), limits).unwrap();
        let mut copy = Inspection::empty();
        for item in &pulled.changes[0].changes {
            copy.apply_changes(changes_of_chunks(item).unwrap())
                .unwrap();
        }
        assert_eq!(copy.automerge().get_heads(), insp.automerge().get_heads());

        let heads = insp.automerge().get_heads();
        insp.edit(&author, |d| d.rate("B2020", Rating::C)).unwrap();
        let new = insp.changes_since(&heads);
        let pushed = store
            .sync(
                &user,
                request(vec![DocChanges {
                    doc_id,
                    changes: vec![ByteBuf::from(bundle(&new))],
                }]),
                limits,
            )
            .unwrap();
        assert_eq!(pushed.accepted, 1);
        store.settle();
        assert_eq!(
            ratings(&store),
            2,
            "projection rewritten from the merged document"
        );
    }

    /// An in-memory store with the demo territory, an inspector and a complex.
    fn demo_store() -> (SqliteStore, UserInfo, bilan_shared::domain::Complex) {
        let store = SqliteStore::in_memory().unwrap();
        crate::admin::seed_demo(&store).unwrap();
        let (_, user) = store
            .login("inspecteur1", crate::admin::DEMO_PASSWORD, None)
            .unwrap();
        let complex = store.reference(&user, 0).unwrap().complexes[0].clone();
        (store, user, complex)
    }

    /// An inspection started at 20:00 on 31 December in Quebec (01:00 on
    /// 1 January in UTC) belongs to that year and that day: its work due
    /// within a year is planned in that year, and a filter ending on
    /// 31 December lists it (both were counted in UTC before).
    #[test]
    fn dates_are_grouped_in_the_territory_time_zone_at_the_year_boundary() {
        let (store, _, complex) = demo_store();
        let (_, manager) = store
            .login("responsable", crate::admin::DEMO_PASSWORD, None)
            .unwrap();
        let new_years_eve_evening: i64 = 1_798_765_200_000; // 2027-01-01T01:00:00Z
        let doc = InspectionId::new().to_string();
        store
            .with_conn(|c| {
                c.execute(
                    "INSERT INTO inspection_summary (doc_id, territory_id, office_id, complex_id, status, created_by,
                       created_at, updated_at, rated, present, findings, total_cost, cost_5y, conflicts)
                     VALUES (?1, ?2, ?3, ?4, 'soumise', ?5, ?6, ?6, 1, 1, 1, 1000.0, 1000.0, 0)",
                    params![doc, complex.territory_id.to_string(), complex.office_id.to_string(),
                        complex.id.to_string(), manager.id.to_string(), new_years_eve_evening],
                )?;
                c.execute(
                    "INSERT INTO recommendations (doc_id, territory_id, finding_id, rec_id, work, urgency, quantity, unit, unit_cost, cost)
                     VALUES (?1, ?2, 'f', 'r', 'Réfection', 'moins_1_an', 1, 'u', 1000, 1000)",
                    params![doc, complex.territory_id.to_string()],
                )?;
                Ok(())
            })
            .unwrap();
        let plan = store.works_plan(&manager).unwrap();
        assert_eq!(plan.iter().map(|l| l.year).collect::<Vec<_>>(), vec![2026]);
        let day = |from: &str, to: &str| crate::queries::InspectionFilter {
            from: Some(from.into()),
            to: Some(to.into()),
            ..Default::default()
        };
        let (rows, _) = store
            .search_inspections(&manager, &day("2026-12-31", "2026-12-31"))
            .unwrap();
        assert_eq!(rows.len(), 1, "listed on 31 December");
        let (rows, _) = store
            .search_inspections(&manager, &day("2027-01-01", "2027-01-01"))
            .unwrap();
        assert!(rows.is_empty(), "not on 1 January");
    }

    /// A new inspection of `complex`, claiming `territory`, as a push sends it.
    fn new_doc(
        user: &UserInfo,
        complex: &bilan_shared::domain::Complex,
        territory: TerritoryId,
    ) -> DocChanges {
        let author = Author::device(DeviceId::new(), user.id, "Julie");
        let id = InspectionId::new();
        let (insp, _) = Inspection::create(
            &author,
            NewInspection {
                inspection_id: id,
                territory_id: territory,
                office_id: complex.office_id,
                complex_id: complex.id,
            },
            Catalogue::current(),
        )
        .unwrap();
        DocChanges {
            doc_id: id,
            changes: vec![ByteBuf::from(bundle(&insp.changes_since(&[])))],
        }
    }

    const LIMITS: SyncLimits = SyncLimits {
        max_docs: 10,
        page_bytes: 1 << 20,
    };

    /// A pull walks the log on the covering index alone: rows it skips (the
    /// device's own, others' refused ones) cost no read of their bundle.
    #[test]
    fn a_pull_walks_the_log_on_its_covering_index() {
        let (store, _, _) = demo_store();
        let plan: String = store
            .with_conn(|c| {
                Ok(c.query_row(
                    &format!("EXPLAIN QUERY PLAN {PULL_WALK}"),
                    params!["t", 0, 1],
                    |r| r.get(3),
                )?)
            })
            .unwrap();
        assert!(plan.contains("COVERING INDEX log_pull"), "{plan}");
    }

    /// A push is answered while the merger is busy merging: with every
    /// thread of the merge pool held, a second push still commits and
    /// answers (the merger holds no lock while it computes), and both
    /// inspections are listed once the pool is free.
    #[test]
    fn a_push_commits_while_the_merger_is_computing() {
        let (store, user, complex) = demo_store();
        let push = |store: &SqliteStore| {
            let req = SyncRequest {
                protocol: PROTOCOL_VERSION,
                device_id: DeviceId::new(),
                cursor: 0,
                docs: vec![new_doc(&user, &complex, complex.territory_id)],
            };
            store.sync(&user, req, LIMITS).map(|r| r.accepted)
        };
        let gate = std::sync::Arc::new(std::sync::RwLock::new(()));
        let held = gate.write().unwrap();
        let (started, running) = std::sync::mpsc::channel();
        let threads = store.merge_pool.current_num_threads();
        for _ in 0..threads {
            let (gate, started) = (gate.clone(), started.clone());
            store.merge_pool.spawn(move || {
                started.send(()).unwrap();
                drop(gate.read());
            });
        }
        for _ in 0..threads {
            running.recv().unwrap();
        }
        assert_eq!(push(&store).unwrap(), 1);
        let (done, answered) = std::sync::mpsc::channel();
        std::thread::scope(|s| {
            s.spawn(|| done.send(push(&store)).unwrap());
            let second = answered
                .recv_timeout(std::time::Duration::from_secs(30))
                .expect("the second push waited for the merger");
            assert_eq!(second.unwrap(), 1);
            assert_eq!(store.merged(), 0, "nothing merged while the pool is held");
            drop(held);
        });
        assert_eq!(store.summaries(&user).unwrap().len(), 2);
    }

    /// A full disk (SQLite's page limit reached) or a read-only database
    /// refuses a push whole with an error the HTTP layer answers 503
    /// `unavailable`; nothing of it is kept, and the same push is accepted
    /// once space or write access is back.
    #[test]
    fn a_full_or_read_only_database_refuses_pushes_whole_and_recovers() {
        use crate::error::ApiError;
        use bilan_shared::protocol::ErrorCode;
        let (store, user, complex) = demo_store();
        let territory = complex.territory_id;
        let push = |store: &SqliteStore| {
            let req = SyncRequest {
                protocol: PROTOCOL_VERSION,
                device_id: DeviceId::new(),
                cursor: 0,
                docs: (0..5)
                    .map(|_| new_doc(&user, &complex, territory))
                    .collect(),
            };
            store.sync(&user, req, LIMITS)
        };
        let faults: [(&str, &str, &str); 2] = [
            ("disk full", "max_page_count", "1073741823"),
            ("read-only", "query_only", "0"),
        ];
        let mut stored = 0;
        for (what, pragma, healthy) in faults {
            store
                .with_conn(|c| {
                    if pragma == "max_page_count" {
                        let pages: i64 = c.query_row("PRAGMA page_count", [], |r| r.get(0))?;
                        c.pragma_update(None, pragma, pages)?;
                    } else {
                        c.pragma_update(None, pragma, 1)?;
                    }
                    Ok(())
                })
                .unwrap();
            let err = push(&store).unwrap_err();
            assert!(err.is_unavailable(), "{what}: {err}");
            let api = ApiError::from(err);
            assert_eq!(
                (api.status.as_u16(), api.code),
                (503, ErrorCode::Unavailable),
                "{what}"
            );
            assert_eq!(
                store.change_count(territory).unwrap(),
                stored,
                "{what}: nothing kept"
            );
            assert_eq!(store.summaries(&user).unwrap().len() as u64, stored);
            store
                .with_conn(|c| Ok(c.pragma_update(None, pragma, healthy)?))
                .unwrap();
            assert_eq!(push(&store).unwrap().accepted, 5, "{what}: recovered");
            stored += 5;
            // Merged before the next fault is set.
            store.settle();
            assert_eq!(store.summaries(&user).unwrap().len() as u64, stored);
        }
    }

    /// Pushes that arrive while another holds the write lock are written
    /// together, in one transaction with one commit; a document that is not
    /// valid for the territory, and one whose bytes are whole chunks that do
    /// not parse (a flipped byte: the push only checks the framing), are each
    /// refused alone when merged, kept out of the projection and of other
    /// devices' pulls, and reported to their device.
    #[test]
    fn concurrent_pushes_share_one_commit_and_a_bad_document_is_refused_alone() {
        let (store, user, complex) = demo_store();
        let doc = |territory| new_doc(&user, &complex, territory);
        let devices: Vec<DeviceId> = (0..6).map(|_| DeviceId::new()).collect();
        let held = store.lock();
        let outcomes = std::thread::scope(|s| {
            let handles: Vec<_> = (0..6)
                .map(|i| {
                    let territory = if i == 3 {
                        TerritoryId::new()
                    } else {
                        complex.territory_id
                    };
                    let mut d = doc(territory);
                    if i == 4 {
                        let bytes = &mut d.changes[0];
                        let last = bytes.len() - 1;
                        bytes[last] ^= 0xff;
                    }
                    let req = SyncRequest {
                        protocol: PROTOCOL_VERSION,
                        device_id: devices[i],
                        cursor: 0,
                        docs: vec![d],
                    };
                    let (store, user) = (&store, &user);
                    s.spawn(move || store.sync(user, req, LIMITS).map(|r| r.accepted))
                })
                .collect();
            // Every push is queued behind the held lock before it is released.
            while store.pushes.lock().unwrap().len() < 6 {
                std::thread::yield_now();
            }
            drop(held);
            handles
                .into_iter()
                .map(|h| h.join().unwrap())
                .collect::<Vec<_>>()
        });
        for outcome in &outcomes {
            assert_eq!(outcome.as_ref().unwrap(), &1, "stored for the merger");
        }
        assert_eq!(store.change_count(complex.territory_id).unwrap(), 4);
        assert_eq!(store.summaries(&user).unwrap().len(), 4);
        let pull = |device: DeviceId| {
            let req = SyncRequest {
                protocol: PROTOCOL_VERSION,
                device_id: device,
                cursor: 0,
                docs: vec![],
            };
            store.sync(&user, req, LIMITS).unwrap()
        };
        let bad = pull(devices[3]);
        assert_eq!(bad.changes.len(), 4, "the four good documents");
        assert_eq!(bad.rejected.len(), 1);
        assert_eq!(bad.rejected[0].code, ErrorCode::InvalidDocument);
        assert!(bad.rejected[0].message.contains("autre territoire"));
        let garbled = pull(devices[4]);
        assert_eq!(garbled.changes.len(), 4, "the four good documents");
        assert_eq!(garbled.rejected.len(), 1);
        assert_eq!(garbled.rejected[0].code, ErrorCode::MalformedChange);
        let good = pull(devices[0]);
        assert_eq!(
            good.changes.len(),
            3,
            "the refused documents are not served"
        );
        assert!(good.rejected.is_empty());
    }

    /// Five failed logins in a row lock a user name for 15 minutes, even
    /// against the right password, and unknown names the same way (no
    /// probing for accounts); once the lock is over the right password works
    /// and the count starts again.
    #[test]
    fn five_failed_logins_lock_the_name_for_a_while() {
        let (store, _, _) = demo_store();
        let pw = crate::admin::DEMO_PASSWORD;
        for name in ["inspecteur1", "personne"] {
            for _ in 0..5 {
                assert!(matches!(
                    store.login(name, "mauvais", None),
                    Err(StoreError::InvalidCredentials)
                ));
            }
            assert!(matches!(
                store.login(name, pw, None),
                Err(StoreError::TooManyAttempts { minutes: 15 })
            ));
        }
        store
            .with_conn(|c| Ok(c.execute("UPDATE login_failures SET locked_until = 0", [])?))
            .unwrap();
        assert!(store.login("inspecteur1", pw, None).is_ok());
        let left: i64 = store
            .with_conn(|c| {
                Ok(c.query_row(
                    "SELECT COUNT(*) FROM login_failures WHERE username = 'inspecteur1'",
                    [],
                    |r| r.get(0),
                )?)
            })
            .unwrap();
        assert_eq!(left, 0);
    }

    /// A token stops working once older than the configured lifetime.
    #[test]
    fn tokens_expire_after_their_lifetime() {
        let (store, _, _) = demo_store();
        let (token, user) = store
            .login("responsable", crate::admin::DEMO_PASSWORD, None)
            .unwrap();
        assert_eq!(store.user_for_token(&token).unwrap(), Some(user.clone()));
        store.set_token_ttl(std::time::Duration::ZERO);
        assert_eq!(store.user_for_token(&token).unwrap(), None);
        store.set_token_ttl(DEFAULT_TOKEN_TTL);
        assert_eq!(store.user_for_token(&token).unwrap(), Some(user));
    }

    /// A review decision is written to the audit log in the same
    /// transaction as the edit: a refused edit leaves no entry, an accepted
    /// one exactly one. Managers read their own territory's entries only,
    /// other roles none; the console reads all of them, newest first.
    #[test]
    fn review_decisions_and_admin_actions_reach_the_audit_log_with_their_edit() {
        let (store, inspector, complex) = demo_store();
        let territory = complex.territory_id;
        let doc = new_doc(&inspector, &complex, territory);
        let id = doc.doc_id;
        let req = SyncRequest {
            protocol: PROTOCOL_VERSION,
            device_id: DeviceId::new(),
            cursor: 0,
            docs: vec![doc],
        };
        store.sync(&inspector, req, LIMITS).unwrap();
        let (_, manager) = store
            .login("responsable", crate::admin::DEMO_PASSWORD, None)
            .unwrap();
        let audit =
            AuditEntry::by(&manager, AuditAction::Review, id.to_string()).with_detail("Approuvée");
        // An edit that fails writes neither the change nor the entry.
        let failed = store.server_edit(&manager, id, &audit, &mut |_, _| {
            Err(bilan_shared::SharedError::UnknownComponent("X9999".into()))
        });
        assert!(failed.is_err());
        assert!(store.audit_log(Some(&manager), 10).unwrap().is_empty());
        let changes_before = store.change_count(territory).unwrap();
        store
            .server_edit(&manager, id, &audit, &mut |insp, author| {
                let c = insp.edit(author, |d| {
                    d.status = InspectionStatus::Approved;
                    Ok(())
                })?;
                Ok(c.into_iter().collect())
            })
            .unwrap();
        assert_eq!(store.change_count(territory).unwrap(), changes_before + 1);
        let settings = store.settings(&manager).unwrap();
        store.set_settings(&manager, &settings).unwrap();
        // Another territory's manager and its console action.
        let other = store.create_territory("CS ailleurs").unwrap();
        store
            .create_user(&NewUser {
                username: "autre".into(),
                display_name: "Autre".into(),
                role: Role::Manager,
                territory_id: Some(other),
                office_id: None,
                password: "motdepasse-long".into(),
            })
            .unwrap();
        store
            .audit(&AuditEntry::console(
                Some(other),
                AuditAction::CreateUser,
                "autre",
            ))
            .unwrap();
        let mine = store.audit_log(Some(&manager), 10).unwrap();
        let actions: Vec<_> = mine.iter().map(|e| e.action).collect();
        assert_eq!(actions, [AuditAction::ChangeSettings, AuditAction::Review]);
        assert_eq!(mine[1].actor, "responsable");
        assert_eq!(mine[1].target, id.to_string());
        assert_eq!(mine[1].detail, "Approuvée");
        assert!(mine[1].at > 0);
        let (_, theirs) = store.login("autre", "motdepasse-long", None).unwrap();
        let theirs = store.audit_log(Some(&theirs), 10).unwrap();
        assert_eq!(theirs.len(), 1);
        assert_eq!(theirs[0].actor, crate::audit::CONSOLE_ACTOR);
        assert!(matches!(
            store.audit_log(Some(&inspector), 10),
            Err(StoreError::Forbidden(_))
        ));
        assert_eq!(store.audit_log(None, 10).unwrap().len(), 3);
        // A lockout is an entry of the account's territory.
        for _ in 0..MAX_LOGIN_FAILURES {
            let _ = store.login("inspecteur1", "mauvais", None);
        }
        let newest = &store.audit_log(Some(&manager), 1).unwrap()[0];
        assert_eq!(
            (newest.action, newest.actor.as_str()),
            (AuditAction::LoginLocked, "inspecteur1")
        );
    }

    /// A schema-2 database (log rows without a write time) opens migrated:
    /// its rows count as old, so the next compaction clears them, and its
    /// changes are still served.
    #[test]
    fn a_schema_2_database_is_migrated_with_old_rows_as_old() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bilan.sqlite");
        let (territory, changes) = {
            let store = SqliteStore::open(&path).unwrap();
            crate::admin::seed_demo(&store).unwrap();
            let (_, user) = store
                .login("inspecteur1", crate::admin::DEMO_PASSWORD, None)
                .unwrap();
            let complex = store.reference(&user, 0).unwrap().complexes[0].clone();
            let req = SyncRequest {
                protocol: PROTOCOL_VERSION,
                device_id: DeviceId::new(),
                cursor: 0,
                docs: vec![new_doc(&user, &complex, complex.territory_id)],
            };
            store.sync(&user, req, LIMITS).unwrap();
            let changes = store.change_count(complex.territory_id).unwrap();
            // Back to schema 2: no write time, no merger (pushes were merged).
            store
                .with_conn(|c| {
                    c.execute_batch(
                        "DROP INDEX log_pull; CREATE INDEX log_territory_seq ON log (territory_id, seq);
                         ALTER TABLE log DROP COLUMN at; ALTER TABLE log DROP COLUMN rejected;
                         ALTER TABLE log DROP COLUMN reason; DELETE FROM meta WHERE key = 'merged_seq';
                         PRAGMA user_version = 2;",
                    )?;
                    Ok(())
                })
                .unwrap();
            (complex.territory_id, changes)
        };
        let store = SqliteStore::open(&path).unwrap();
        let at: i64 = store
            .with_conn(|c| Ok(c.query_row("SELECT MAX(at) FROM log", [], |r| r.get(0))?))
            .unwrap();
        assert_eq!(at, 0);
        assert_eq!(store.change_count(territory).unwrap(), changes);
        let r = store.compact().unwrap();
        assert_eq!((r.documents, r.rows_cleared), (1, 1), "old rows cleared");
    }

    /// A database written by a newer server is refused, untouched.
    #[test]
    fn a_newer_database_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bilan.sqlite");
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", DB_SCHEMA_VERSION + 1)
            .unwrap();
        assert!(matches!(
            SqliteStore::open(&path),
            Err(StoreError::DatabaseTooNew { .. })
        ));
    }
}
