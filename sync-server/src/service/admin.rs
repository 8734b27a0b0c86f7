//! Administration: territories, offices and complexes (created by the
//! console and by CSV imports), with the audit entry of each action. The
//! CSV parsing itself is [`crate::imports`].

use bilan_shared::domain::{Complex, Office, Territory};
use bilan_shared::ids::{OfficeId, TerritoryId};
use bilan_shared::protocol::UserInfo;

use super::access;
use super::core::{Actor, Result, Service};
use crate::audit::{AuditAction, AuditEntry};
use crate::error::{StoreError, refuse_nul};
use crate::imports::{self, ImportError};

impl Service {
    /// Appends an entry to the audit log (console commands done outside the
    /// service: backups).
    pub fn audit(&self, entry: &AuditEntry) -> Result<()> {
        self.store.append_audit(entry)
    }

    /// The newest `limit` audit entries: the manager's territory, or all of
    /// them for `None` (the operator's console).
    pub fn audit_log(&self, user: Option<&UserInfo>, limit: u32) -> Result<Vec<AuditEntry>> {
        let territory = match user {
            None => None,
            Some(u) => {
                access::require_manager(u)?;
                Some(access::territory_of(u)?)
            }
        };
        self.store.audit_entries(territory, limit)
    }

    /// Creates a territory (CS).
    pub fn create_territory(&self, name: &str) -> Result<TerritoryId> {
        let name = name.trim();
        if name.is_empty() {
            return Err(StoreError::BadRequest("nom de territoire requis".into()));
        }
        refuse_nul("le nom du territoire", name)?;
        let t = Territory {
            id: TerritoryId::new(),
            name: name.to_string(),
        };
        self.store.insert_territory(&t)?;
        Ok(t.id)
    }

    /// Creates a territory from the console, with its audit entry.
    pub fn console_create_territory(&self, name: &str) -> Result<TerritoryId> {
        let id = self.create_territory(name)?;
        self.store.append_audit(&Actor::Console.entry(
            Some(id),
            AuditAction::CreateTerritory,
            name,
        ))?;
        Ok(id)
    }

    pub fn territory_by_name(&self, name: &str) -> Result<Option<Territory>> {
        self.store.territory_by_name(name)
    }

    /// The territory named `name`, or a clear error.
    pub fn territory_named(&self, name: &str) -> Result<TerritoryId> {
        self.store
            .territory_by_name(name)?
            .map(|t| t.id)
            .ok_or_else(|| {
                StoreError::NotFound(format!(
                    "territoire « {name} » (créez-le avec create-territory)"
                ))
            })
    }

    /// Creates the office `code` of a territory, or renames it.
    pub fn create_office(
        &self,
        territory: TerritoryId,
        code: &str,
        name: &str,
    ) -> Result<OfficeId> {
        refuse_nul("le code de l'organisme", code)?;
        refuse_nul("le nom de l'organisme", name)?;
        self.store.upsert_office(&Office {
            id: OfficeId::new(),
            territory_id: territory,
            code: code.to_string(),
            name: name.to_string(),
        })
    }

    pub fn upsert_complex(&self, c: &Complex) -> Result<()> {
        for (what, text) in [
            ("le code de l'ensemble", &c.code),
            ("le nom de l'ensemble", &c.name),
            ("l'adresse de l'ensemble", &c.address),
            ("la ville de l'ensemble", &c.city),
        ] {
            refuse_nul(what, text)?;
        }
        self.store.upsert_complex(c)
    }

    pub fn offices(&self, territory: TerritoryId) -> Result<Vec<Office>> {
        self.store.offices(territory)
    }

    /// The offices of the user's territory (administration page).
    pub fn my_offices(&self, user: &bilan_shared::protocol::UserInfo) -> Result<Vec<Office>> {
        self.store.offices(access::territory_of(user)?)
    }

    /// The office of a territory with this code.
    pub fn office_by_code(&self, territory: TerritoryId, code: &str) -> Result<OfficeId> {
        self.store
            .offices(territory)?
            .into_iter()
            .find(|o| o.code == code)
            .map(|o| o.id)
            .ok_or_else(|| StoreError::BadRequest(format!("organisme « {code} » inconnu")))
    }

    /// The territory an actor imports into: a manager's own, or the one
    /// the console names.
    fn import_territory(&self, actor: Actor<'_>, territory: TerritoryId) -> Result<TerritoryId> {
        match actor {
            Actor::User(u) => {
                access::require_manager(u)?;
                access::territory_of(u)
            }
            Actor::Console => Ok(territory),
        }
    }

    /// Checks a complexes CSV against the territory's offices (the preview).
    pub fn preview_complexes(
        &self,
        actor: Actor<'_>,
        territory: TerritoryId,
        csv_text: &str,
    ) -> std::result::Result<Vec<Complex>, ImportError> {
        let t = self.import_territory(actor, territory)?;
        imports::parse_complexes(&self.store.offices(t)?, t, csv_text)
    }

    /// Imports offices (`code,nom`; existing codes are renamed), every line
    /// checked first, with the audit entry. Returns the lines imported.
    pub fn import_offices(
        &self,
        actor: Actor<'_>,
        territory: TerritoryId,
        source: &str,
        csv_text: &str,
    ) -> std::result::Result<usize, ImportError> {
        let t = self.import_territory(actor, territory)?;
        let rows = imports::parse_offices(csv_text)?;
        for (code, name) in &rows {
            self.create_office(t, code, name)?;
        }
        let entry = actor.entry(Some(t), AuditAction::ImportOffices, source);
        self.store
            .append_audit(&entry.with_detail(format!("{} ligne(s)", rows.len())))?;
        Ok(rows.len())
    }

    /// Imports complexes, every line checked first, with the audit entry.
    pub fn import_complexes(
        &self,
        actor: Actor<'_>,
        territory: TerritoryId,
        source: &str,
        csv_text: &str,
    ) -> std::result::Result<usize, ImportError> {
        let rows = self.preview_complexes(actor, territory, csv_text)?;
        let t = self.import_territory(actor, territory)?;
        for c in &rows {
            self.store.upsert_complex(c)?;
        }
        let entry = actor.entry(Some(t), AuditAction::ImportComplexes, source);
        self.store
            .append_audit(&entry.with_detail(format!("{} ligne(s)", rows.len())))?;
        Ok(rows.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::Scope;

    #[test]
    fn csv_import_reports_every_bad_line_and_writes_nothing() {
        let store = crate::in_memory_service().unwrap();
        let t = store.create_territory("T").unwrap();
        assert_eq!(
            store
                .import_offices(Actor::Console, t, "f.csv", "code,nom\nOH1,Office un\n")
                .unwrap(),
            1
        );
        let bad = "code,nom,organisme,adresse,ville,logements,annee_construction,valeur_remplacement\n\
                   C1,Un,OH1,1 rue A,Ville,12,1975,2000000\n\
                   C2,Deux,OHX,2 rue B,Ville,douze,1975,2000000\n\
                   C3,Trois,OH1,3 rue C,Ville,12,75,-5\n";
        match store.import_complexes(Actor::Console, t, "f.csv", bad) {
            Err(ImportError::Lines(errs)) => {
                assert_eq!(errs.iter().map(|e| e.line).collect::<Vec<_>>(), [3, 4]);
                assert!(errs[0].message.contains("OHX") && errs[0].message.contains("logements"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            store
                .backend()
                .reference(
                    &Scope {
                        territory: t,
                        office: None
                    },
                    0
                )
                .unwrap()
                .complexes
                .len(),
            0
        );
        let good = "code,nom,organisme,adresse,ville,logements,annee_construction,valeur_remplacement\n\
                    C1,Un,OH1,1 rue A,Ville,12,1975,\"2 000 000,50\"\n";
        assert_eq!(
            store
                .import_complexes(Actor::Console, t, "f.csv", good)
                .unwrap(),
            1
        );
        assert!(matches!(
            store.import_offices(Actor::Console, t, "f.csv", "id,name\n"),
            Err(ImportError::Headers { .. })
        ));
    }
}
