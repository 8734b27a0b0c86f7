//! Inspections on the device: loading from snapshot plus changes, every
//! edit as one durable change queued for the server, list summaries,
//! conflicts, compaction.

use automerge::{Change, ChangeHash};
use bilan_shared::conflicts::{self, Conflict};
use bilan_shared::doc::{Finding, Recommendation, SiteVisit, changes_of_chunks, now_ms};
use bilan_shared::domain::{InspectionStatus, Rating};
use bilan_shared::ids::*;
use bilan_shared::{Catalogue, Inspection, InspectionDoc, NewInspection};
use rusqlite::{Connection, OptionalExtension, params};

use super::{DeviceStore, InspectionSummary, NewFinding, NewRecommendation, decoded};
use crate::error::{MobileError, Result};

/// Changes after a snapshot before the app compacts the document into a
/// new one, in the background ([`DeviceStore::compact_if_due`], called off
/// the window's thread after an edit).
const COMPACT_AFTER: i64 = 64;
/// Changes after a snapshot past which an edit compacts at once, before it
/// returns: a backstop for callers that never compact in the background
/// (the CLI, a library user). Compacting takes a few milliseconds (more on
/// a busy phone): paid inline at every 64th tap it was the p99 of saving a
/// rating during a sync.
const COMPACT_INLINE_AFTER: i64 = 1024;

/// Appends a local change and queues it for the server (a change already
/// stored is neither duplicated nor queued again).
pub(super) fn queue_local(conn: &Connection, id: InspectionId, c: &Change) -> Result<()> {
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

/// Writes the list row of an inspection (the conflict count is kept as it was).
pub(super) fn write_summary(conn: &Connection, id: InspectionId, d: &InspectionDoc) -> Result<()> {
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

/// A document's stored bytes (snapshot and the changes after it), read from
/// SQLite so that turning them into a document can happen elsewhere.
pub(super) struct RawDoc {
    snapshot: Option<Vec<u8>>,
    changes: Vec<Vec<u8>>,
}

pub(super) fn raw_doc(conn: &Connection, id: InspectionId) -> Result<Option<RawDoc>> {
    raw_doc_upto(conn, id, i64::MAX)
}

/// Like [`raw_doc`], with only the change rows up to `last_row`.
pub(super) fn raw_doc_upto(
    conn: &Connection,
    id: InspectionId,
    last_row: i64,
) -> Result<Option<RawDoc>> {
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
    /// Nothing stored yet: no snapshot, no change.
    pub(super) fn is_empty(&self) -> bool {
        self.snapshot.is_none() && self.changes.is_empty()
    }

    pub(super) fn build_with(self, more: Vec<Change>) -> Result<Inspection> {
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

    pub(super) fn build(self) -> Result<Inspection> {
        self.build_with(Vec::new())
    }
}

/// A list row's content with its conflict count, computed from a document.
pub(super) fn summary_of(insp: &Inspection) -> Result<(InspectionDoc, i64)> {
    Ok((insp.read()?, conflicts::list(insp)?.len() as i64))
}

pub(super) fn write_summary_with_conflicts(
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
    pub(super) fn load(&self, conn: &Connection, id: InspectionId) -> Result<Option<Inspection>> {
        raw_doc(conn, id)?.map(RawDoc::build).transpose()
    }

    /// Runs `f` on the loaded document (loading it from SQLite if needed).
    pub(super) fn with_doc<T>(
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
    pub(super) fn persist_local(
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
    pub(super) fn refresh_summary(
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
                let (id, c, st): (String, String, String) = (r.get(0)?, r.get(1)?, r.get(2)?);
                let row = format!("{id} {c} {st}");
                let status = InspectionStatus::from_code(&st).ok_or("unknown status");
                Ok(
                    match (
                        decoded("summaries.doc_id", &row, id.parse()),
                        decoded("summaries.complex_id", &row, c.parse()),
                        decoded("summaries.status", &row, status),
                    ) {
                        (Some(id), Some(complex_id), Some(status)) => Some(InspectionSummary {
                            id,
                            complex_id,
                            status,
                            created_at: r.get(3)?,
                            rated: r.get(4)?,
                            present: r.get(5)?,
                            findings: r.get(6)?,
                            cost_5y: r.get(7)?,
                            conflicts: r.get(8)?,
                            comments: r.get(9)?,
                            updated_at: r.get(10)?,
                        }),
                        _ => None,
                    },
                )
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?
            .into_iter()
            .flatten()
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
            self.compact_after(id, COMPACT_INLINE_AFTER)?;
        }
        Ok(())
    }

    /// Starts an inspection of a complex, from its last approved BSI when
    /// the device holds one (see [`bilan_shared::previous`]).
    pub fn start_inspection(&self, complex: ComplexId) -> Result<InspectionId> {
        let c = self.complex(complex)?;
        let author = self.author()?;
        let previous = self.previous_bsi(complex)?;
        let id = InspectionId::new();
        let (insp, change) = Inspection::create_following(
            &author,
            NewInspection {
                inspection_id: id,
                territory_id: c.territory_id,
                office_id: c.office_id,
                complex_id: c.id,
            },
            Catalogue::current(),
            previous.as_ref(),
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
                    planned_year: None,
                });
            Ok(())
        })?;
        Ok(rid)
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

    /// Folds an inspection's changes into a new snapshot once enough of
    /// them wait ([`COMPACT_AFTER`]): its load stays quick. Safe beside
    /// edits and syncs on other threads (compactions take turns and build
    /// the snapshot from the stored rows).
    pub fn compact_if_due(&self, id: InspectionId) -> Result<()> {
        self.compact_after(id, COMPACT_AFTER).map(|_| ())
    }

    /// The inspector left this inspection: its snapshot is brought up to
    /// date now, while nobody waits (a few milliseconds), so that the next
    /// sync sends a never-synced inspection as that snapshot instead of
    /// building its saved form while the inspector watches the sync bar.
    /// The document leaves the memory cache (it reloads from the snapshot
    /// in one step when opened again).
    pub fn put_away(&self, id: InspectionId) -> Result<()> {
        if let Some(heads) = self.compact_after(id, 1)? {
            // Dropped only if nothing was edited in it meanwhile.
            let mut docs = self.docs();
            if docs
                .get(&id)
                .is_some_and(|d| d.automerge().get_heads() == heads)
            {
                docs.remove(&id);
            }
        }
        Ok(())
    }

    /// Folds a document's changes into its snapshot when at least `min`
    /// of them are outside it; returns the heads of the new snapshot. The
    /// snapshot is built from the rows it replaces, read in one go, never
    /// from the document in memory: a sync storing received changes on
    /// another thread commits them before it updates that document, and a
    /// snapshot of it would mark those rows as folded in without holding
    /// them.
    fn compact_after(&self, id: InspectionId, min: i64) -> Result<Option<Vec<ChangeHash>>> {
        let _turn = self.compacting.lock().unwrap_or_else(|p| p.into_inner());
        let (raw, last) = {
            let conn = self.lock();
            let (n, last): (i64, i64) = conn.query_row(
                "SELECT COUNT(*), COALESCE(MAX(id), 0) FROM changes WHERE doc_id = ?1 AND in_snapshot = 0",
                [id.to_string()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            if n < min {
                return Ok(None);
            }
            match raw_doc_upto(&conn, id, last)? {
                Some(raw) => (raw, last),
                None => return Ok(None),
            }
        };
        let insp = raw.build()?;
        // A snapshot that would not load back is not written: the document
        // keeps being built from its changes (see `Inspection::checked_save`).
        let snapshot = match insp.checked_save() {
            Ok(bytes) => bytes,
            Err(e) => {
                tracing::warn!(%id, error = %e, "snapshot skipped");
                return Ok(None);
            }
        };
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        tx.execute(
            "UPDATE docs SET snapshot = ?2 WHERE doc_id = ?1",
            params![id.to_string(), snapshot],
        )?;
        tx.execute(
            "UPDATE changes SET in_snapshot = 1 WHERE doc_id = ?1 AND id <= ?2",
            params![id.to_string(), last],
        )?;
        tx.execute(
            "DELETE FROM changes WHERE doc_id = ?1 AND in_snapshot = 1 AND id <= ?2
               AND id NOT IN (SELECT id FROM outbox)",
            params![id.to_string(), last],
        )?;
        tx.commit()?;
        Ok(Some(insp.automerge().get_heads()))
    }
}
