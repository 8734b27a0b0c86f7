//! Inspections for the API and the review pages: reading one (with the
//! reader's rights), the list, the manager's review decisions and conflict
//! resolutions written into the document by the server's actor (so they
//! reach devices at their next sync), and photos' access.

use bilan_shared::Inspection;
use bilan_shared::doc::{ActorInfo, Approval, Author, ReviewComment, now_ms};
use bilan_shared::domain::InspectionStatus;
use bilan_shared::ids::{
    CommentId, DeviceId, InspectionId, PhotoHash, RecommendationId, TerritoryId,
};
use bilan_shared::protocol::UserInfo;

use super::access;
use super::core::{Result, Service};
use crate::audit::{AuditAction, AuditEntry};
use crate::error::{StoreError, refuse_nul};
use crate::storage::{InspectionSummary, ServerEdit};

impl Service {
    /// An inspection the user may read, as merged.
    pub fn inspection(&self, user: &UserInfo, id: InspectionId) -> Result<Inspection> {
        access::check_reader(user, id, self.store.place(id)?)?;
        self.store
            .load(id)?
            .ok_or_else(|| StoreError::NotFound(format!("inspection {id}")))
    }

    /// The inspections the user may read, newest first.
    pub fn summaries(&self, user: &UserInfo) -> Result<Vec<InspectionSummary>> {
        self.store.summaries(&access::scope_of(user)?)
    }

    /// An edit by the server's actor in the name of `user` (a manager who
    /// may read the inspection), with its audit entry in the same
    /// transaction.
    fn edit_as_manager(
        &self,
        user: &UserInfo,
        id: InspectionId,
        audit: &AuditEntry,
        edit: &mut ServerEdit<'_>,
    ) -> Result<()> {
        access::require_manager(user)?;
        let territory = access::check_reader(user, id, self.store.place(id)?)?;
        let actor = self.store.server_actor();
        let author = Author {
            info: ActorInfo {
                user_id: user.id,
                user_name: user.display_name.clone(),
                device_id: DeviceId(uuid::Uuid::from_slice(actor.to_bytes()).unwrap_or_default()),
            },
            actor,
        };
        self.store.server_edit(territory, id, &author, audit, edit)
    }

    /// Approves or returns an inspection and/or adds a CS comment.
    pub fn review(
        &self,
        user: &UserInfo,
        id: InspectionId,
        status: Option<InspectionStatus>,
        comment: Option<String>,
    ) -> Result<()> {
        access::require_manager(user)?;
        if let Some(s) = status
            && !matches!(s, InspectionStatus::Approved | InspectionStatus::Returned)
        {
            return Err(StoreError::BadRequest(
                "statut de révision attendu : approuvee ou retournee".into(),
            ));
        }
        let comment = comment.filter(|c| !c.trim().is_empty());
        if let Some(c) = &comment {
            refuse_nul("le commentaire", c)?;
        }
        if status.is_none() && comment.is_none() {
            return Err(StoreError::BadRequest(
                "rien à enregistrer : donnez un statut ou un commentaire".into(),
            ));
        }
        let mut detail = status.map(|s| s.label_fr().to_string()).unwrap_or_default();
        if let Some(c) = &comment {
            detail = format!("{detail} « {c} »").trim().to_string();
        }
        let audit = AuditEntry::by(user, AuditAction::Review, id.to_string()).with_detail(detail);
        self.edit_as_manager(user, id, &audit, &mut |insp, author| {
            let change = insp.edit(author, |d| {
                if let Some(st) = status {
                    d.status = st;
                    d.review.approval = (st == InspectionStatus::Approved).then(|| Approval {
                        by: user.id,
                        by_name: user.display_name.clone(),
                        at: now_ms(),
                    });
                }
                if let Some(text) = &comment {
                    d.review.comments.push(ReviewComment {
                        id: CommentId::new(),
                        author: user.id,
                        author_name: user.display_name.clone(),
                        at: now_ms(),
                        text: text.clone(),
                    });
                }
                Ok(())
            })?;
            Ok(change.into_iter().collect())
        })
    }

    /// Moves a recommended (or carried) work of an inspection to another
    /// year of the works plan (the manager): a review edit, synced to
    /// devices and audited like the others.
    pub fn move_work(
        &self,
        user: &UserInfo,
        id: InspectionId,
        work: RecommendationId,
        year: i64,
    ) -> Result<()> {
        access::require_manager(user)?;
        if !(2000..=2100).contains(&year) {
            return Err(StoreError::BadRequest(format!(
                "année {year} : choisissez une année entre 2000 et 2100"
            )));
        }
        let doc = self.inspection(user, id)?.read()?;
        let own = doc
            .findings
            .iter()
            .flat_map(|f| &f.recommendations)
            .find(|r| r.id == work);
        let carried = doc
            .previous
            .iter()
            .flat_map(|p| &p.works)
            .find(|w| w.id == work);
        let what = match (own, carried) {
            (Some(r), _) => r.work.clone(),
            (None, Some(w)) => w.work.clone(),
            (None, None) => {
                return Err(StoreError::NotFound(format!(
                    "travaux {work} absents de l'inspection {id}"
                )));
            }
        };
        let audit = AuditEntry::by(user, AuditAction::MoveWork, id.to_string())
            .with_detail(format!("« {what} » en {year}"));
        self.edit_as_manager(user, id, &audit, &mut |insp, author| {
            let change = insp.edit(author, |d| {
                for r in d
                    .findings
                    .iter_mut()
                    .flat_map(|f| f.recommendations.iter_mut())
                {
                    if r.id == work {
                        r.planned_year = Some(year);
                    }
                }
                for w in d.previous.iter_mut().flat_map(|p| p.works.iter_mut()) {
                    if w.id == work {
                        w.planned_year = Some(year);
                    }
                }
                Ok(())
            })?;
            Ok(change.into_iter().collect())
        })
    }

    /// Resolves a conflict: keeps `value_id` at `path`.
    pub fn resolve(
        &self,
        user: &UserInfo,
        id: InspectionId,
        path: &[String],
        value_id: &str,
    ) -> Result<()> {
        let audit = AuditEntry::by(user, AuditAction::ResolveConflict, id.to_string())
            .with_detail(format!("{} : {value_id}", path.join("/")));
        self.edit_as_manager(user, id, &audit, &mut |insp, author| {
            let before = insp.automerge().get_heads();
            bilan_shared::conflicts::resolve(insp, author, path, value_id)?;
            Ok(insp.changes_since(&before))
        })
    }

    /// The territory a user sends photos for: inspectors and managers only.
    /// No I/O: the upload handler calls it before taking the upload lock.
    pub fn photo_uploader(&self, user: &UserInfo) -> Result<TerritoryId> {
        access::require_field_role(user)
            .map_err(|_| StoreError::Forbidden("ce rôle ne peut pas envoyer de photos".into()))
    }

    /// A photo's bytes are stored: it is `territory`'s from now on.
    pub fn photo_received(
        &self,
        hash: &PhotoHash,
        size: u64,
        mime: &str,
        territory: TerritoryId,
    ) -> Result<()> {
        self.store.photo_received(hash, size, mime, territory)
    }

    /// Size and type of a photo the user may see (their territory sent it;
    /// for an office reader, one of the office's inspections names it).
    pub fn photo_meta(&self, user: &UserInfo, hash: &PhotoHash) -> Result<Option<(u64, String)>> {
        self.store.photo_meta(&access::scope_of(user)?, hash)
    }
}
