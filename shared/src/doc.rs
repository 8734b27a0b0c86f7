//! The automerge document of one inspection, mapped with autosurgeon.
//!
//! Stored format, versioned by `schema_version`: field names and value codes
//! must not change within a version. A newer build still loads every older
//! version (missing fields take their defaults); an older build refuses a newer
//! version instead of silently dropping fields.
//!
//! Merge rules that follow from the shape:
//! - every catalogue component's map is created with the inspection, so two
//!   devices rating different components, or different fields of one
//!   component, never collide;
//! - findings, recommendations, photos, visits and comments are lists whose
//!   items carry an id (`#[key]`), so concurrent inserts are both kept;
//! - one scalar field set to two values concurrently is a conflict, listed by
//!   [`crate::conflicts`] and resolved by writing one value for all.

use std::collections::BTreeMap;

use automerge::transaction::CommitOptions;
use automerge::{ActorId, Automerge, Change, ROOT, ReadDoc};
use autosurgeon::{Hydrate, Reconcile, hydrate, reconcile};

use crate::SharedError;
use crate::annotate::Annotation;
use crate::catalogue::Catalogue;
use crate::domain::{InspectionStatus, Rating, Severity, Urgency};
use crate::ids::*;
use crate::previous::PreviousBsi;

/// Schema version written by this build. 2: `previous` (the last approved
/// BSI carried over, see [`crate::previous`]); a version 1 document reads
/// with none.
pub const SCHEMA_VERSION: u64 = 2;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// One inspection, as the device and the server read it. Stored format v2.
#[derive(Clone, Debug, PartialEq, Reconcile, Hydrate, serde::Serialize, serde::Deserialize)]
pub struct InspectionDoc {
    pub schema_version: u64,
    pub inspection_id: InspectionId,
    pub territory_id: TerritoryId,
    pub office_id: OfficeId,
    pub complex_id: ComplexId,
    pub catalogue_version: String,
    pub created_at: i64,
    pub created_by: UserId,
    pub status: InspectionStatus,
    #[autosurgeon(missing = "String::new")]
    pub notes: String,
    /// Keyed by catalogue component code.
    pub components: BTreeMap<String, ComponentRecord>,
    pub findings: Vec<Finding>,
    #[autosurgeon(missing = "Vec::new")]
    pub visits: Vec<SiteVisit>,
    #[autosurgeon(missing = "Review::default")]
    pub review: Review,
    /// automerge actor (hex) -> who wrote with it, so conflicts can name people.
    #[autosurgeon(missing = "BTreeMap::new")]
    pub actors: BTreeMap<String, ActorInfo>,
    /// The complex's last approved BSI when this one started (schema 2).
    #[autosurgeon(missing = "Option::default")]
    pub previous: Option<PreviousBsi>,
}

/// Inventory and rating of one catalogue component.
#[derive(
    Clone, Debug, Default, PartialEq, Reconcile, Hydrate, serde::Serialize, serde::Deserialize,
)]
pub struct ComponentRecord {
    /// `None` until the inventory step says whether the building has it.
    pub present: Option<bool>,
    pub rating: Option<Rating>,
    pub note: String,
}

/// A finding (constat de désordre): what, where, how severe, photos, and the work it calls for.
#[derive(Clone, Debug, PartialEq, Reconcile, Hydrate, serde::Serialize, serde::Deserialize)]
pub struct Finding {
    #[key]
    pub id: FindingId,
    pub component: String,
    pub title: String,
    pub location: String,
    pub severity: Severity,
    pub description: String,
    pub photos: Vec<PhotoRef>,
    pub recommendations: Vec<Recommendation>,
    pub created_by: UserId,
    pub created_at: i64,
}

/// A photo referenced by hash; its bytes travel apart from the document.
#[derive(Clone, Debug, PartialEq, Reconcile, Hydrate, serde::Serialize, serde::Deserialize)]
pub struct PhotoRef {
    #[key]
    pub hash: PhotoHash,
    pub size: u64,
    pub mime: String,
    pub caption: String,
    pub taken_at: i64,
    /// Annotated versions of this photo (arrows, circles, text drawn on a
    /// new photo; this one is never altered), oldest first as made.
    /// Added within schema 2: an older build reads the photo without them
    /// and leaves them as they are (a struct's reconcile never deletes a
    /// field it does not know).
    #[autosurgeon(missing = "Vec::new")]
    #[serde(default)]
    pub annotations: Vec<Annotation>,
}

/// Work recommended for a finding.
#[derive(Clone, Debug, PartialEq, Reconcile, Hydrate, serde::Serialize, serde::Deserialize)]
pub struct Recommendation {
    #[key]
    pub id: RecommendationId,
    pub work: String,
    pub urgency: Urgency,
    pub quantity: f64,
    pub unit: String,
    pub unit_cost: f64,
    /// The year the CS moved the work to in its works plan (a review
    /// edit), instead of the year its urgency gives.
    #[autosurgeon(missing = "Option::default")]
    pub planned_year: Option<i64>,
}

impl Recommendation {
    /// Estimated cost: quantity × unit cost (never stored, so it cannot disagree).
    pub fn estimated_cost(&self) -> f64 {
        self.quantity * self.unit_cost
    }
}

/// A site visit: feeds the CS's activity statement.
#[derive(Clone, Debug, PartialEq, Reconcile, Hydrate, serde::Serialize, serde::Deserialize)]
pub struct SiteVisit {
    #[key]
    pub id: VisitId,
    /// ISO date, `YYYY-MM-DD`.
    pub date: String,
    pub inspector: UserId,
    pub hours_on_site: f64,
    pub travel_hours: f64,
    pub km: f64,
    pub expenses: f64,
}

/// The CS's review thread.
#[derive(
    Clone, Debug, Default, PartialEq, Reconcile, Hydrate, serde::Serialize, serde::Deserialize,
)]
pub struct Review {
    pub comments: Vec<ReviewComment>,
    /// Who approved the inspection and when (none until approved, and
    /// again none once returned).
    #[autosurgeon(missing = "Option::default")]
    pub approval: Option<Approval>,
}

/// The CS's approval of an inspection.
#[derive(Clone, Debug, PartialEq, Reconcile, Hydrate, serde::Serialize, serde::Deserialize)]
pub struct Approval {
    pub by: UserId,
    pub by_name: String,
    pub at: i64,
}

/// One comment of the review thread.
#[derive(Clone, Debug, PartialEq, Reconcile, Hydrate, serde::Serialize, serde::Deserialize)]
pub struct ReviewComment {
    #[key]
    pub id: CommentId,
    pub author: UserId,
    pub author_name: String,
    pub at: i64,
    pub text: String,
}

/// Who writes with an automerge actor.
#[derive(
    Clone, Debug, Default, PartialEq, Reconcile, Hydrate, serde::Serialize, serde::Deserialize,
)]
pub struct ActorInfo {
    pub user_id: UserId,
    pub user_name: String,
    pub device_id: DeviceId,
}

/// Identity of the writer of an edit: its automerge actor plus the person.
#[derive(Clone, Debug, PartialEq)]
pub struct Author {
    pub actor: ActorId,
    pub info: ActorInfo,
}

impl Author {
    /// A device's author: the actor id is the device id's bytes, so every
    /// device has its own actor and (actor, seq) pairs never collide.
    pub fn device(device_id: DeviceId, user_id: UserId, user_name: &str) -> Self {
        Self {
            actor: ActorId::from(device_id.0.as_bytes().as_slice()),
            info: ActorInfo {
                user_id,
                user_name: user_name.to_string(),
                device_id,
            },
        }
    }
}

/// What identifies a new inspection.
#[derive(Clone, Debug)]
pub struct NewInspection {
    pub inspection_id: InspectionId,
    pub territory_id: TerritoryId,
    pub office_id: OfficeId,
    pub complex_id: ComplexId,
}

/// An inspection's automerge document plus the typed operations on it.
#[derive(Debug, Clone)]
pub struct Inspection {
    doc: Automerge,
}

impl Inspection {
    /// Creates the document with every catalogue component present in the map.
    pub fn create(
        author: &Author,
        new: NewInspection,
        catalogue: &Catalogue,
    ) -> Result<(Self, Change), SharedError> {
        Self::create_following(author, new, catalogue, None)
    }

    /// Creates the document of a new inspection of a complex whose last
    /// approved BSI is `previous`: its inventory carried over (present /
    /// sans objet), its ratings, notes and recommended work kept beside
    /// (see [`crate::previous`]); every rating starts unset.
    pub fn create_following(
        author: &Author,
        new: NewInspection,
        catalogue: &Catalogue,
        previous: Option<&InspectionDoc>,
    ) -> Result<(Self, Change), SharedError> {
        let previous = previous.map(PreviousBsi::of);
        let components = catalogue
            .components()
            .map(|(_, c)| {
                let present = previous
                    .as_ref()
                    .and_then(|p| p.components.get(&c.code))
                    .and_then(|p| p.present);
                (
                    c.code.clone(),
                    ComponentRecord {
                        present,
                        ..ComponentRecord::default()
                    },
                )
            })
            .collect();
        let value = InspectionDoc {
            schema_version: SCHEMA_VERSION,
            inspection_id: new.inspection_id,
            territory_id: new.territory_id,
            office_id: new.office_id,
            complex_id: new.complex_id,
            catalogue_version: catalogue.version.clone(),
            created_at: now_ms(),
            created_by: author.info.user_id,
            status: InspectionStatus::InProgress,
            notes: String::new(),
            components,
            findings: Vec::new(),
            visits: Vec::new(),
            review: Review::default(),
            actors: BTreeMap::from([(author.actor.to_hex_string(), author.info.clone())]),
            previous,
        };
        let mut insp = Self {
            doc: Automerge::new().with_actor(author.actor.clone()),
        };
        let mut tx = insp.doc.transaction();
        reconcile(&mut tx, &value)?;
        tx.commit_with(CommitOptions::default().with_time(now_ms()));
        let change = insp
            .doc
            .get_last_local_change()
            .cloned()
            .ok_or(SharedError::NoChange)?;
        Ok((insp, change))
    }

    /// Loads a saved document (snapshot, possibly followed by incremental changes).
    pub fn load(bytes: &[u8]) -> Result<Self, SharedError> {
        contain_panics(|| {
            Ok(Self {
                doc: Automerge::load(bytes)?,
            })
        })
    }

    /// An empty document, to be filled by [`Self::apply_changes`].
    pub fn empty() -> Self {
        Self {
            doc: Automerge::new(),
        }
    }

    /// Wraps an automerge document.
    pub fn from_automerge(doc: Automerge) -> Self {
        Self { doc }
    }

    /// The automerge document, for sync layers that need its changes or heads.
    pub fn automerge(&self) -> &Automerge {
        &self.doc
    }

    /// Mutable access for layers that apply remote changes.
    pub fn automerge_mut(&mut self) -> &mut Automerge {
        &mut self.doc
    }

    /// Owned copies of the changes made after `heads` (all of them for `&[]`),
    /// in an order that applies cleanly elsewhere: what travels in a sync.
    pub fn changes_since(&self, heads: &[automerge::ChangeHash]) -> Vec<Change> {
        self.doc.get_changes(heads).into_iter().cloned().collect()
    }

    /// Applies changes received from elsewhere; changes already present are ignored.
    /// Also checks, cheaply, one thing automerge's loader demands and
    /// `apply_changes` does not (found by the fuzz tests): each actor's
    /// changes numbered 1, 2, 3... in history order, their operation counters
    /// never going back; on an error, drop this document. Other such gaps
    /// (an operation on something that is not an object, a change not in
    /// canonical form) are caught where they would do harm, when a snapshot
    /// is saved ([`Self::checked_save`]): the changes still apply.
    pub fn apply_changes(&mut self, changes: Vec<Change>) -> Result<(), SharedError> {
        let actors: std::collections::HashSet<ActorId> =
            changes.iter().map(|c| c.actor_id().clone()).collect();
        contain_panics(|| {
            self.doc.apply_changes(changes)?;
            Ok(())
        })?;
        let mut last: std::collections::HashMap<&ActorId, (u64, u64)> = Default::default();
        for c in self.doc.get_changes(&[]) {
            if !actors.contains(c.actor_id()) {
                continue;
            }
            let (seq, max_op) = last.get(c.actor_id()).copied().unwrap_or((0, 0));
            if c.seq() != seq + 1 || c.max_op() < max_op {
                return Err(SharedError::BadChunk(format!(
                    "historique incohérent : modification {} de l'acteur {} après la {seq}",
                    c.seq(),
                    c.actor_id()
                )));
            }
            last.insert(c.actor_id(), (c.seq(), c.max_op()));
        }
        Ok(())
    }

    /// Reads the whole inspection; fields with concurrent values read as the
    /// deterministic winner (see [`crate::conflicts`] for all of them).
    pub fn read(&self) -> Result<InspectionDoc, SharedError> {
        let v = self.doc.get(ROOT, "schema_version")?;
        let version = match v {
            Some((automerge::Value::Scalar(s), _)) => match s.as_ref() {
                automerge::ScalarValue::Uint(u) => *u,
                automerge::ScalarValue::Int(i) => *i as u64,
                _ => 0,
            },
            _ => return Err(SharedError::NotAnInspection),
        };
        if version > SCHEMA_VERSION {
            return Err(SharedError::SchemaTooNew {
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        Ok(hydrate(&self.doc)?)
    }

    /// Applies one edit as one automerge change, stamped with its author.
    /// Only fields that differ are written, so concurrent edits of other fields
    /// merge. Returns `None` when the edit changed nothing.
    pub fn edit<F>(&mut self, author: &Author, f: F) -> Result<Option<Change>, SharedError>
    where
        F: FnOnce(&mut InspectionDoc) -> Result<(), SharedError>,
    {
        Ok(self.edit_returning(author, f)?.0)
    }

    /// Like [`Self::edit`], also returning the inspection as written, so callers
    /// that keep derived data (list summaries) need not read it again.
    pub fn edit_returning<F>(
        &mut self,
        author: &Author,
        f: F,
    ) -> Result<(Option<Change>, InspectionDoc), SharedError>
    where
        F: FnOnce(&mut InspectionDoc) -> Result<(), SharedError>,
    {
        let mut value = self.read()?;
        f(&mut value)?;
        let key = author.actor.to_hex_string();
        if value.actors.get(&key) != Some(&author.info) {
            value.actors.insert(key, author.info.clone());
        }
        self.doc.set_actor(author.actor.clone());
        let mut tx = self.doc.transaction();
        if let Err(e) = reconcile(&mut tx, &value) {
            tx.rollback();
            return Err(e.into());
        }
        let (hash, _) = tx.commit_with(CommitOptions::default().with_time(now_ms()));
        let change = match hash {
            None => None,
            Some(h) => Some(
                self.doc
                    .get_change_by_hash(&h)
                    .cloned()
                    .ok_or(SharedError::NoChange)?,
            ),
        };
        Ok((change, value))
    }

    /// The full document, compressed.
    pub fn save(&self) -> Vec<u8> {
        self.doc.save()
    }

    /// The document saved as a snapshot, only if automerge loads those bytes
    /// back to the same heads. automerge 0.6 applies some changes its loader
    /// refuses (a change whose bytes are not in canonical form, for one: its
    /// hash differs once saved; found by the fuzz tests); a snapshot of such
    /// a document could never be opened again. On an error, keep the changes
    /// instead: they still apply.
    pub fn checked_save(&self) -> Result<Vec<u8>, SharedError> {
        let bytes = self.doc.save();
        let back = contain_panics(|| Ok(Automerge::load(&bytes)?))?;
        if back.get_heads() != self.doc.get_heads() {
            return Err(SharedError::BadChunk(
                "l'enregistrement ne redonne pas le même document".into(),
            ));
        }
        Ok(bytes)
    }
}

/// Magic bytes that open every automerge chunk.
const CHUNK_MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
/// Chunk type of a saved document (changes are 1, compressed changes 2).
const CHUNK_DOCUMENT: u8 = 0;
/// Highest chunk type automerge writes (a compressed change).
const CHUNK_COMPRESSED_CHANGE: u8 = 2;

/// Whether `bytes` are one saved automerge document (not changes).
pub fn is_saved_document(bytes: &[u8]) -> bool {
    bytes.len() > 8 && bytes[..4] == CHUNK_MAGIC && bytes[8] == CHUNK_DOCUMENT
}

/// Splits automerge bytes holding one or more chunks (a single change,
/// changes concatenated as [`bundle`] writes them, or a saved document) into
/// changes, refusing anything malformed or truncated. Bundles are the unit of
/// the sync protocol and of the server's log: one row per document per push
/// instead of one per change.
pub fn changes_of_chunks(bytes: &[u8]) -> Result<Vec<Change>, SharedError> {
    contain_panics(|| split_chunks(bytes))
}

/// Runs automerge on bytes from the network. automerge 0.6 panics on some
/// malformed documents instead of returning an error (an `unreachable!` on
/// an unknown operation, found by the fuzz tests): such bytes are refused
/// like any other bad input, and the server thread survives.
pub fn contain_panics<T>(f: impl FnOnce() -> Result<T, SharedError>) -> Result<T, SharedError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|_| {
        Err(SharedError::BadChunk(
            "données automerge incohérentes (refusées)".into(),
        ))
    })
}

/// Checks that `bytes` are whole automerge chunks (magic, type, length)
/// without parsing them, and counts them: what a server can check in
/// microseconds before storing bytes that [`changes_of_chunks`] parses later.
pub fn count_chunks(bytes: &[u8]) -> Result<usize, SharedError> {
    let mut n = 0;
    for_each_chunk(bytes, |_, _| {
        n += 1;
        Ok(())
    })?;
    Ok(n)
}

/// Calls `f` with each chunk's type and bytes; refuses bytes that are not
/// whole chunks.
fn for_each_chunk(
    bytes: &[u8],
    mut f: impl FnMut(u8, &[u8]) -> Result<(), SharedError>,
) -> Result<(), SharedError> {
    let bad = |why: &str| SharedError::BadChunk(why.to_string());
    let mut rest = bytes;
    if rest.is_empty() {
        return Err(bad("aucun octet"));
    }
    while !rest.is_empty() {
        // Header: magic (4), checksum (4), chunk type (1), data length (uLEB128).
        if rest.len() < 9 || rest[..4] != CHUNK_MAGIC {
            return Err(bad("en-tête de bloc absent"));
        }
        let chunk_type = rest[8];
        if chunk_type > CHUNK_COMPRESSED_CHANGE {
            return Err(bad("type de bloc inconnu"));
        }
        let mut len_field = &rest[9..];
        let before = len_field.len();
        let len = leb128::read::unsigned(&mut len_field).map_err(|_| bad("longueur illisible"))?;
        let header = 9 + before - len_field.len();
        let end = usize::try_from(len)
            .ok()
            .and_then(|l| header.checked_add(l))
            .filter(|&end| end <= rest.len())
            .ok_or_else(|| bad("bloc tronqué"))?;
        let (chunk, tail) = rest.split_at(end);
        f(chunk_type, chunk)?;
        rest = tail;
    }
    Ok(())
}

fn split_chunks(bytes: &[u8]) -> Result<Vec<Change>, SharedError> {
    let bad = |why: &str| SharedError::BadChunk(why.to_string());
    let mut out = Vec::new();
    for_each_chunk(bytes, |chunk_type, chunk| {
        if chunk_type == CHUNK_DOCUMENT {
            let doc = Automerge::load(chunk)?;
            out.extend(doc.get_changes(&[]).into_iter().cloned());
        } else {
            let change = Change::try_from(chunk).map_err(|e| bad(&e.to_string()))?;
            // The header's checksum is the start of the change's hash: a
            // flipped byte that still parses is caught here.
            if change.hash().0[..4] != chunk[4..8] {
                return Err(bad("somme de contrôle incorrecte"));
            }
            out.push(change);
        }
        Ok(())
    })?;
    Ok(out)
}

/// Concatenates changes into one bundle that [`changes_of_chunks`] reads back.
pub fn bundle<'a>(changes: impl IntoIterator<Item = &'a Change>) -> Vec<u8> {
    let mut out = Vec::new();
    for c in changes {
        out.extend_from_slice(c.raw_bytes());
    }
    out
}

impl InspectionDoc {
    /// Finds a finding by id.
    pub fn finding_mut(&mut self, id: FindingId) -> Result<&mut Finding, SharedError> {
        self.findings
            .iter_mut()
            .find(|f| f.id == id)
            .ok_or(SharedError::UnknownFinding(id))
    }

    /// Sets a component's rating (a rating means the component is present,
    /// unless it is "sans objet").
    pub fn rate(&mut self, code: &str, rating: Rating) -> Result<(), SharedError> {
        let c = self
            .components
            .get_mut(code)
            .ok_or_else(|| SharedError::UnknownComponent(code.to_string()))?;
        c.rating = Some(rating);
        c.present = Some(rating != Rating::NotApplicable);
        Ok(())
    }

    /// Count of (rated, present) components, for progress bars.
    pub fn progress(&self) -> (usize, usize) {
        let present = self
            .components
            .values()
            .filter(|c| c.present != Some(false))
            .count();
        let rated = self
            .components
            .values()
            .filter(|c| {
                c.present != Some(false) && c.rating.is_some_and(|r| r != Rating::NotInspected)
            })
            .count();
        (rated, present)
    }

    /// Total estimated cost of all recommended work, and of the work due
    /// within 5 years (the IVP's numerator): this inspection's
    /// recommendations and the previous BSI's work still open.
    pub fn costs(&self) -> (f64, f64) {
        let mut total = 0.0;
        let mut five = 0.0;
        for r in self.findings.iter().flat_map(|f| &f.recommendations) {
            total += r.estimated_cost();
            if r.urgency.within_five_years() {
                five += r.estimated_cost();
            }
        }
        for w in self.previous.iter().flat_map(|p| p.open_works()) {
            total += w.cost;
            if w.years_until_due(self.created_at) <= 5 {
                five += w.cost;
            }
        }
        (total, five)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Severity;
    use automerge::transaction::Transactable;

    pub(crate) fn sample(author: &Author) -> Inspection {
        let new = NewInspection {
            inspection_id: InspectionId::new(),
            territory_id: TerritoryId::new(),
            office_id: OfficeId::new(),
            complex_id: ComplexId::new(),
        };
        Inspection::create(author, new, Catalogue::current())
            .unwrap()
            .0
    }

    fn author(name: &str) -> Author {
        Author::device(DeviceId::new(), UserId::new(), name)
    }

    #[test]
    fn created_inspection_has_every_catalogue_component_and_reads_back() {
        let a = author("Julie");
        let insp = sample(&a);
        let d = insp.read().unwrap();
        assert_eq!(
            d.components.len(),
            Catalogue::current().components().count()
        );
        assert_eq!(d.status, InspectionStatus::InProgress);
        assert_eq!(d.actors.len(), 1);
    }

    #[test]
    fn edits_on_different_components_from_two_devices_merge_to_the_union() {
        let (a, b) = (author("Julie"), author("Marc"));
        let mut one = sample(&a);
        let mut two = Inspection::load(&one.save()).unwrap();
        one.edit(&a, |d| d.rate("B3010", Rating::D))
            .unwrap()
            .unwrap();
        two.edit(&b, |d| d.rate("D2021", Rating::B))
            .unwrap()
            .unwrap();
        let c2 = two.changes_since(&[]);
        one.apply_changes(c2).unwrap();
        let d = one.read().unwrap();
        assert_eq!(d.components["B3010"].rating, Some(Rating::D));
        assert_eq!(d.components["D2021"].rating, Some(Rating::B));
        assert_eq!(d.actors.len(), 2);
    }

    #[test]
    fn concurrent_findings_are_both_kept_and_unchanged_edit_makes_no_change() {
        let (a, b) = (author("Julie"), author("Marc"));
        let mut one = sample(&a);
        let mut two = Inspection::load(&one.save()).unwrap();
        for (insp, who, title) in [(&mut one, &a, "Fissure"), (&mut two, &b, "Infiltration")] {
            insp.edit(who, |d| {
                d.findings.push(Finding {
                    id: FindingId::new(),
                    component: "A1010".into(),
                    title: title.into(),
                    location: "Coin nord-est".into(),
                    severity: Severity::Major,
                    description: String::new(),
                    photos: vec![],
                    recommendations: vec![],
                    created_by: who.info.user_id,
                    created_at: now_ms(),
                });
                Ok(())
            })
            .unwrap();
        }
        one.apply_changes(two.changes_since(&[])).unwrap();
        assert_eq!(one.read().unwrap().findings.len(), 2);
        assert!(one.edit(&a, |_| Ok(())).unwrap().is_none());
    }

    #[test]
    fn bundles_and_saved_documents_split_back_into_the_same_changes() {
        let a = author("Julie");
        let mut insp = sample(&a);
        insp.edit(&a, |d| d.rate("B3010", Rating::D)).unwrap();
        let all = insp.changes_since(&[]);
        let hashes = |cs: &[Change]| {
            let mut h: Vec<_> = cs.iter().map(|c| c.hash()).collect();
            h.sort();
            h
        };
        let from_bundle = changes_of_chunks(&bundle(&all)).unwrap();
        assert_eq!(count_chunks(&bundle(&all)).unwrap(), all.len());
        assert_eq!(hashes(&from_bundle), hashes(&all));
        let from_doc = changes_of_chunks(&insp.save()).unwrap();
        assert_eq!(hashes(&from_doc), hashes(&all));
        let mut mixed = insp.save();
        mixed.extend_from_slice(all[1].raw_bytes());
        assert_eq!(changes_of_chunks(&mixed).unwrap().len(), 3);
    }

    #[test]
    fn truncated_or_foreign_bytes_are_refused_not_half_read() {
        let a = author("Julie");
        let mut insp = sample(&a);
        insp.edit(&a, |d| d.rate("B3010", Rating::D)).unwrap();
        let b = bundle(&insp.changes_since(&[]));
        for bad in [&b[..b.len() - 1], &b[..5], b"", b"not automerge at all"] {
            assert!(matches!(
                changes_of_chunks(bad),
                Err(SharedError::BadChunk(_) | SharedError::Automerge(_))
            ));
            // The server's cheap framing check refuses them too.
            assert!(count_chunks(bad).is_err());
        }
        let mut flipped = b.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 0xff;
        assert!(changes_of_chunks(&flipped).is_err());
    }

    #[test]
    fn an_older_schema_without_visits_review_or_actors_still_loads() {
        // Schema v0 (pre-release) had no visits, review, actors nor notes.
        let a = author("Julie");
        let mut insp = sample(&a);
        {
            let doc = insp.automerge_mut();
            let mut tx = doc.transaction();
            for key in ["visits", "review", "actors", "notes"] {
                tx.delete(ROOT, key).unwrap();
            }
            tx.put(ROOT, "schema_version", 0_u64).unwrap();
            tx.commit();
        }
        let d = insp.read().unwrap();
        assert!(d.visits.is_empty() && d.review.comments.is_empty() && d.actors.is_empty());
    }

    #[test]
    fn a_newer_schema_is_refused_with_a_clear_error() {
        let a = author("Julie");
        let mut insp = sample(&a);
        let mut tx = insp.automerge_mut().transaction();
        tx.put(ROOT, "schema_version", 99_u64).unwrap();
        tx.commit();
        assert!(matches!(
            insp.read(),
            Err(SharedError::SchemaTooNew { found: 99, .. })
        ));
    }
}
