//! What the server stores and reads, and nothing else: one trait per
//! concern (accounts and sessions, reference data, the sync log, documents
//! and their projection, report queries, photos' metadata, the audit log),
//! in plain types. A backend implements all of them ([`Backend`]); the
//! SQLite one lives in [`crate::sqlite`].
//!
//! What must not be here: any rule. Who may read what, lockout thresholds,
//! token lifetimes, validation and the audit entries to write are the
//! service layer's ([`crate::service`]); it hands the storage a [`Scope`]
//! (territory, and office for office readers) already decided, and the
//! storage filters on it.

use automerge::{ActorId, Change};
use bilan_shared::Inspection;
use bilan_shared::doc::Author;
use bilan_shared::domain::{
    Complex, ConditionThresholds, CsSettings, InspectionStatus, Office, Territory,
};
use bilan_shared::ids::*;
use bilan_shared::planning::Assignment;
use bilan_shared::protocol::{DocChanges, Rejection, UserInfo};

use crate::audit::AuditEntry;
use crate::error::StoreError;

pub type Result<T> = std::result::Result<T, StoreError>;

/// What a caller may see: a territory, and within it one office (office
/// readers) or all of them. Decided by the service layer from the account.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scope {
    pub territory: TerritoryId,
    pub office: Option<OfficeId>,
}

impl Scope {
    /// The territory and the office (none: all of them) as the text both
    /// backends store ids as, ready to bind to a query.
    pub fn as_text(&self) -> (String, Option<String>) {
        (
            self.territory.to_string(),
            self.office.map(|o| o.to_string()),
        )
    }
}

/// A failed-login counter's key: a user name or a client address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockKey<'a> {
    User(&'a str),
    Address(&'a str),
}

/// Accounts, their password hashes, login tokens and failed-login counters.
pub trait AccountStore {
    /// Stores a new account; `AlreadyExists` when the name is taken.
    fn insert_user(&self, user: &UserInfo, password_hash: &str) -> Result<()>;
    /// Replaces an account's password hash; false for an unknown name.
    fn set_password_hash(&self, username: &str, hash: &str) -> Result<bool>;
    /// An account and its password hash.
    fn user_with_hash(&self, username: &str) -> Result<Option<(UserInfo, String)>>;
    /// A territory's accounts, by role then name.
    fn territory_users(&self, territory: TerritoryId) -> Result<Vec<UserInfo>>;
    fn insert_token(&self, token_hash: &str, user: UserId, device: Option<DeviceId>) -> Result<()>;
    /// The account of a token issued after `issued_after` and not revoked.
    fn user_for_token(&self, token_hash: &str, issued_after: i64) -> Result<Option<UserInfo>>;
    fn revoke_token(&self, token_hash: &str) -> Result<()>;
    /// Revokes every live token of an account; returns how many.
    fn revoke_user_tokens(&self, username: &str) -> Result<usize>;
    /// Until when `key` is locked (milliseconds), if it ever was.
    fn locked_until(&self, key: LockKey<'_>) -> Result<Option<i64>>;
    /// Counts a failed login for `key` and returns the failures counted:
    /// in a row for a user name; within the last `window_ms` for an address.
    fn count_failure(&self, key: LockKey<'_>, now: i64, window_ms: i64) -> Result<i64>;
    /// Locks `key` until `until` and restarts its count.
    fn lock_out(&self, key: LockKey<'_>, now: i64, until: i64) -> Result<()>;
    /// Forgets a user name's failures (after a successful login).
    fn clear_failures(&self, key: LockKey<'_>) -> Result<()>;
}

/// Territories, offices, complexes and each territory's settings: what
/// devices receive as reference data.
pub trait ReferenceStore {
    fn insert_territory(&self, t: &Territory) -> Result<()>;
    fn territory(&self, id: TerritoryId) -> Result<Option<Territory>>;
    fn territory_by_name(&self, name: &str) -> Result<Option<Territory>>;
    /// Creates the office (with its id) or, when its territory already has
    /// one with its code, renames that one; returns the stored office's id.
    fn upsert_office(&self, office: &Office) -> Result<OfficeId>;
    /// Creates or updates a complex (by territory and code); `BadRequest`
    /// when its office is not of its territory.
    fn upsert_complex(&self, c: &Complex) -> Result<()>;
    fn offices(&self, territory: TerritoryId) -> Result<Vec<Office>>;
    /// One complex of the scope and its office's name (none: not there, or
    /// not the scope's).
    fn complex(&self, scope: &Scope, id: ComplexId) -> Result<Option<(Complex, String)>>;
    /// Offices, complexes and assignments of the scope changed after
    /// revision `since`, and the revision reached.
    fn reference(&self, scope: &Scope, since: u64) -> Result<ReferenceData>;
    /// Sets who visits each complex and when (an assignment without an
    /// inspector withdraws the visit; its row stays so devices learn it),
    /// each a new reference revision, with `audit`, in one transaction.
    /// Complexes and inspectors are the caller's to have checked.
    fn set_assignments(
        &self,
        territory: TerritoryId,
        rows: &[Assignment],
        audit: &AuditEntry,
    ) -> Result<()>;
    /// The territory's settings, defaults where never saved.
    fn settings(&self, territory: TerritoryId) -> Result<CsSettings>;
    /// Saves the territory's settings and `audit` in one transaction.
    fn set_settings(
        &self,
        territory: TerritoryId,
        settings: &CsSettings,
        audit: &AuditEntry,
    ) -> Result<()>;
}

/// Reference data of a scope after a revision.
#[derive(Clone, Debug, PartialEq)]
pub struct ReferenceData {
    pub territory: Territory,
    pub offices: Vec<Office>,
    pub complexes: Vec<Complex>,
    pub assignments: Vec<Assignment>,
    pub revision: u64,
}

/// The sync log: pushes are appended durably, merged in log order, and
/// pulled by the territory's other devices.
pub trait SyncLog {
    /// Appends a push (documents already checked and packed, see
    /// [`crate::codec::prepare_push`]) durably; `Forbidden` when a document
    /// belongs to another territory. Returns the changes stored.
    fn push(&self, territory: TerritoryId, device: &str, docs: Vec<PreparedDoc>) -> Result<u32>;
    /// Merged changes of the territory after `cursor`, the device's own left
    /// out, within about `page_bytes`, with the device's refused rows. With
    /// `settle`, waits first for the merger to reach what is committed.
    fn pull(
        &self,
        territory: TerritoryId,
        device: &str,
        cursor: u64,
        page_bytes: u64,
        settle: bool,
    ) -> Result<PullPage>;
    /// Changes of the territory accepted so far.
    fn change_count(&self, territory: TerritoryId) -> Result<u64>;
    /// Folds each document's log into its snapshot past the retention.
    fn compact(&self) -> Result<CompactReport>;
}

/// A pushed document ready for the log: its chunks counted and packed.
#[derive(Clone, Debug)]
pub struct PreparedDoc {
    pub doc_id: InspectionId,
    pub chunks: usize,
    pub packed: Vec<u8>,
}

/// A push waiting in a backend's group-commit queue, with where to send
/// its outcome (both backends write pushes arriving together in one
/// transaction).
pub struct PushJob {
    pub territory: TerritoryId,
    pub device: String,
    pub docs: Vec<PreparedDoc>,
    pub reply: std::sync::mpsc::SyncSender<Result<u32>>,
}

impl PushJob {
    /// Queues a push in `queue`; the receiver gets its outcome.
    pub fn enqueue(
        queue: &std::sync::Mutex<Vec<PushJob>>,
        territory: TerritoryId,
        device: &str,
        docs: Vec<PreparedDoc>,
    ) -> std::sync::mpsc::Receiver<Result<u32>> {
        let (reply, answer) = std::sync::mpsc::sync_channel(1);
        queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(PushJob {
                territory,
                device: device.to_string(),
                docs,
                reply,
            });
        answer
    }

    /// Every push queued so far, for the writer that holds the write turn.
    pub fn take_all(queue: &std::sync::Mutex<Vec<PushJob>>) -> Vec<PushJob> {
        std::mem::take(&mut *queue.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// The outcome a writer sent (or an error if none ever will).
    pub fn outcome(answer: std::sync::mpsc::Receiver<Result<u32>>) -> Result<u32> {
        answer
            .recv()
            .unwrap_or_else(|_| Err(StoreError::Backend("push not answered".into())))
    }
}

/// One page of a pull.
#[derive(Clone, Debug, Default)]
pub struct PullPage {
    pub changes: Vec<DocChanges>,
    /// Bytes of the bundles in `changes`.
    pub bytes: u64,
    pub cursor: u64,
    pub more: bool,
    pub rejected: Vec<Rejection>,
}

impl PullPage {
    /// An empty page starting at `cursor`.
    pub fn at(cursor: u64) -> Self {
        Self {
            cursor,
            ..Self::default()
        }
    }

    /// Adds a bundle (or a snapshot) of `doc_id` read at log row `seq`,
    /// unless the page already holds `page_bytes` (then it says `more` and
    /// returns false: the walk stops there). Bundles of the same document
    /// in a row travel together.
    pub fn add(&mut self, seq: i64, doc_id: InspectionId, bytes: Vec<u8>, page_bytes: u64) -> bool {
        if self.bytes > 0 && self.bytes + bytes.len() as u64 > page_bytes {
            self.more = true;
            return false;
        }
        self.bytes += bytes.len() as u64;
        match self.changes.last_mut() {
            Some(last) if last.doc_id == doc_id => {
                last.changes.push(serde_bytes::ByteBuf::from(bytes))
            }
            _ => self.changes.push(DocChanges {
                doc_id,
                changes: vec![serde_bytes::ByteBuf::from(bytes)],
            }),
        }
        self.cursor = seq as u64;
        true
    }
}

/// What a compaction did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CompactReport {
    /// Documents whose snapshot was rewritten.
    pub documents: u64,
    /// Log rows whose bytes now live only in a snapshot.
    pub rows_cleared: u64,
}

/// An edit the server makes to a document (review, resolution): returns the changes it made.
pub type ServerEdit<'a> = dyn FnMut(&mut Inspection, &Author) -> std::result::Result<Vec<Change>, bilan_shared::SharedError>
    + Send
    + 'a;

/// Inspections as merged, and the summary rows projected from them.
pub trait DocumentStore {
    /// Where an inspection belongs (territory, office), once merged.
    fn place(&self, id: InspectionId) -> Result<Option<(TerritoryId, OfficeId)>>;
    /// An inspection as merged.
    fn load(&self, id: InspectionId) -> Result<Option<Inspection>>;
    /// The scope's inspections, newest first.
    fn summaries(&self, scope: &Scope) -> Result<Vec<InspectionSummary>>;
    /// The actor the server's own edits are written by.
    fn server_actor(&self) -> ActorId;
    /// Edits an inspection of `territory` on the server (with everything
    /// pushed before merged first) and records `audit` in the same
    /// transaction.
    fn server_edit(
        &self,
        territory: TerritoryId,
        id: InspectionId,
        author: &Author,
        audit: &AuditEntry,
        edit: &mut ServerEdit<'_>,
    ) -> Result<()>;
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

/// The review pages' queries, on the projection (never on documents).
pub trait ReportStore {
    /// Per office of the scope: complexes, and for each its latest
    /// inspection's start, status and five-year cost over replacement value.
    fn complex_rows(&self, scope: &Scope) -> Result<Vec<ComplexRow>>;
    /// A page of the scope's inspections matching `q`, with the total count.
    fn search(
        &self,
        scope: &Scope,
        q: &InspectionQuery,
        thresholds: &ConditionThresholds,
    ) -> Result<(Vec<InspectionRow>, u32)>;
    /// Offices and inspectors the scope may filter on.
    fn filter_options(&self, scope: &Scope) -> Result<FilterOptions>;
    /// Recommended work of the latest inspection of each complex (of one
    /// complex when `complex` is given), with its open carried work.
    fn plan_rows(&self, scope: &Scope, complex: Option<ComplexId>) -> Result<Vec<PlanRow>>;
    /// Every inspection of a complex of the territory, newest first, and
    /// the work reported done in them.
    fn complex_history(&self, territory: TerritoryId, complex: ComplexId)
    -> Result<ComplexHistory>;
    /// Site visits dated in `[from, to]` (ISO dates), summed by office.
    fn visit_totals(&self, scope: &Scope, from: &str, to: &str) -> Result<Vec<VisitTotals>>;
}

/// A complex's inspections and the work reported done, for its page.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ComplexHistory {
    pub inspections: Vec<HistoryRow>,
    pub done: Vec<DoneWork>,
}

/// One inspection of a complex, as its history lists it.
#[derive(Clone, Debug, PartialEq)]
pub struct HistoryRow {
    pub doc_id: String,
    pub created_at: i64,
    /// The stored status code.
    pub status: String,
    /// The inspector's name (their id if the account is gone).
    pub inspector: String,
    pub findings: u32,
    pub total_cost: f64,
    pub cost_5y: f64,
}

/// Work an inspector reported done (carried from an earlier BSI).
#[derive(Clone, Debug, PartialEq)]
pub struct DoneWork {
    pub work: String,
    pub year: Option<i64>,
    pub cost: Option<f64>,
    /// The inspection that reported it (its start).
    pub reported_at: i64,
}

/// A complex with its latest inspection and its latest approved one, for
/// the overview: a building's condition is its last approved BSI's, never
/// an inspection's still in progress.
#[derive(Clone, Debug, PartialEq)]
pub struct ComplexRow {
    pub complex_id: ComplexId,
    pub code: String,
    pub name: String,
    pub office_id: OfficeId,
    pub office: String,
    pub replacement_value: f64,
    pub latest: Option<LatestInspection>,
    pub approved: Option<LatestInspection>,
    /// Who visits it and when, if the CS planned it.
    pub assignment: Option<Assignment>,
}

/// A complex's latest inspection, as the overview counts it.
#[derive(Clone, Debug, PartialEq)]
pub struct LatestInspection {
    pub created_at: i64,
    pub status: InspectionStatus,
    pub cost_5y: f64,
}

/// The inspections page's query, checked and with dates as instants.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct InspectionQuery {
    pub office: Option<OfficeId>,
    pub status: Option<InspectionStatus>,
    /// A building condition, `A` to `E`.
    pub condition: Option<char>,
    pub conflicts_only: bool,
    pub inspector: Option<UserId>,
    /// Started at or after (milliseconds).
    pub from_ms: Option<i64>,
    /// Started before (milliseconds).
    pub before_ms: Option<i64>,
    pub sort: SortKey,
    pub descending: bool,
    /// From 1.
    pub page: u32,
}

/// Sort keys of the inspections page.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SortKey {
    #[default]
    Date,
    Complex,
    Office,
    Status,
    Cost,
    Conflicts,
}

/// Rows per page of the inspections page.
pub const PAGE_SIZE: u32 = 50;

/// One row of the inspections page.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct InspectionRow {
    pub id: String,
    pub complex: String,
    pub address: String,
    pub office: String,
    pub status: InspectionStatus,
    pub inspector: String,
    pub created_at: i64,
    pub rated: u32,
    pub present: u32,
    pub findings: u32,
    pub cost_5y: f64,
    pub ivp: f64,
    pub condition: &'static str,
    pub conflicts: u32,
}

/// (id, name) of the offices and of the inspectors a user may filter on.
pub type FilterOptions = (Vec<(String, String)>, Vec<(String, String)>);

/// A recommendation of a complex's latest inspection.
#[derive(Clone, Debug, PartialEq)]
pub struct PlanRow {
    pub office: String,
    pub complex: String,
    /// The inspection's start (milliseconds).
    pub inspected_at: i64,
    /// When the work was recommended: the inspection's start, or an
    /// earlier BSI's for work carried over.
    pub recommended_at: i64,
    pub work: String,
    /// The stored urgency code.
    pub urgency: String,
    pub cost: f64,
    /// The inspection holding the work, and the work's id (for moving it).
    pub doc_id: String,
    pub rec_id: String,
    /// The year the CS moved it to, if it did.
    pub planned_year: Option<i64>,
}

/// An office's site visits over a period, as the query sums them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct VisitTotals {
    pub office: String,
    pub visits: u32,
    pub hours: f64,
    pub travel_hours: f64,
    pub km: f64,
    pub expenses: f64,
}

/// Photos received: their size and type, and which territories sent them.
pub trait PhotoIndex {
    /// Records a photo whose bytes are stored, as sent by `territory`.
    fn photo_received(
        &self,
        hash: &PhotoHash,
        size: u64,
        mime: &str,
        territory: TerritoryId,
    ) -> Result<()>;
    /// Size and type of a photo the scope's territory sent; with an office
    /// in the scope, also named by one of that office's inspections.
    fn photo_meta(&self, scope: &Scope, hash: &PhotoHash) -> Result<Option<(u64, String)>>;
}

/// The audit log: appended, read newest first.
pub trait AuditLog {
    /// Appends `entry`, stamped with the time of writing.
    fn append_audit(&self, entry: &AuditEntry) -> Result<()>;
    /// The newest `limit` entries of a territory, or of all (`None`).
    fn audit_entries(&self, territory: Option<TerritoryId>, limit: u32) -> Result<Vec<AuditEntry>>;
}

/// A whole storage backend, as the service layer holds it.
pub trait Backend:
    AccountStore
    + ReferenceStore
    + SyncLog
    + DocumentStore
    + ReportStore
    + PhotoIndex
    + AuditLog
    + Send
    + Sync
    + 'static
{
    /// The backend's name, for the log (`sqlite`, ...).
    fn name(&self) -> &'static str;
}
