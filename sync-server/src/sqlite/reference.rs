//! Reference rows: territories, offices, complexes and the visits planned
//! (each change bumps the reference revision devices pull from), and each
//! territory's settings.

use bilan_shared::doc::now_ms;
use bilan_shared::domain::{Complex, CsSettings, Office, Territory};
use bilan_shared::ids::{ComplexId, OfficeId, TerritoryId};
use bilan_shared::planning::Assignment;
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::audit::write_audit;
use super::core::{Result, parse_id};
use super::store::SqliteStore;
use crate::audit::AuditEntry;
use crate::codec::{decode_settings, encode_settings, settings_key};
use crate::error::StoreError;
use crate::storage::{ReferenceData, ReferenceStore, Scope};

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

fn row_territory(r: &rusqlite::Row) -> rusqlite::Result<Territory> {
    Ok(Territory {
        id: parse_id(r.get(0)?)?,
        name: r.get(1)?,
    })
}

fn row_office(r: &rusqlite::Row) -> rusqlite::Result<Office> {
    Ok(Office {
        id: parse_id(r.get(0)?)?,
        territory_id: parse_id(r.get(1)?)?,
        code: r.get(2)?,
        name: r.get(3)?,
    })
}

fn row_complex(r: &rusqlite::Row) -> rusqlite::Result<Complex> {
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
}

/// The territory's settings as stored; defaults where never saved, and
/// defaults marked unreadable (logged) where the stored value does not decode.
fn read_settings(conn: &Connection, territory: TerritoryId) -> Result<CsSettings> {
    let json: Option<String> = conn
        .query_row(
            "SELECT value FROM meta WHERE key = ?1",
            [settings_key(territory)],
            |r| r.get(0),
        )
        .optional()?;
    Ok(json.map_or_else(CsSettings::default, |j| decode_settings(&j, territory)))
}

impl ReferenceStore for SqliteStore {
    fn insert_territory(&self, t: &Territory) -> Result<()> {
        self.lock().execute(
            "INSERT INTO territories (id, name, created_at) VALUES (?1, ?2, ?3)",
            params![t.id.to_string(), t.name, now_ms()],
        )?;
        Ok(())
    }

    fn territory(&self, id: TerritoryId) -> Result<Option<Territory>> {
        Ok(self
            .reader()?
            .query_row(
                "SELECT id, name FROM territories WHERE id = ?1",
                [id.to_string()],
                row_territory,
            )
            .optional()?)
    }

    fn territory_by_name(&self, name: &str) -> Result<Option<Territory>> {
        Ok(self
            .lock()
            .query_row(
                "SELECT id, name FROM territories WHERE name = ?1",
                [name],
                row_territory,
            )
            .optional()?)
    }

    fn upsert_office(&self, office: &Office) -> Result<OfficeId> {
        let (territory, code, name) = (office.territory_id, &office.code, &office.name);
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let existing: Option<String> = tx
            .query_row(
                "SELECT id FROM offices WHERE territory_id = ?1 AND code = ?2",
                params![territory.to_string(), code],
                |r| r.get(0),
            )
            .optional()?;
        let rev = next_rev(&tx)?;
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
                let id = office.id;
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
        let rev = next_rev(&tx)?;
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
        let mut stmt = conn.prepare_cached(
            "SELECT id, territory_id, code, name FROM offices WHERE territory_id = ?1 ORDER BY name",
        )?;
        let rows = stmt.query_map([territory.to_string()], row_office)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn complex(&self, scope: &Scope, id: ComplexId) -> Result<Option<(Complex, String)>> {
        let (t, office) = scope.as_text();
        Ok(self
            .reader()?
            .prepare_cached(
                "SELECT c.id, c.territory_id, c.office_id, c.code, c.name, c.address, c.city, c.dwellings,
                   c.year_built, c.replacement_value, o.name
                 FROM complexes c JOIN offices o ON o.id = c.office_id
                 WHERE c.id = ?1 AND c.territory_id = ?2 AND (?3 IS NULL OR c.office_id = ?3)",
            )?
            .query_row(params![id.to_string(), t, office], |r| {
                Ok((row_complex(r)?, r.get(10)?))
            })
            .optional()?)
    }

    fn reference(&self, scope: &Scope, since: u64) -> Result<ReferenceData> {
        let conn = self.lock();
        let t = scope.territory.to_string();
        let office = scope.office.map(|o| o.to_string());
        let territory = conn
            .query_row(
                "SELECT id, name FROM territories WHERE id = ?1",
                [&t],
                row_territory,
            )
            .optional()?
            .ok_or_else(|| StoreError::NotFound(format!("territoire {t}")))?;
        let offices = conn
            .prepare_cached(
                "SELECT id, territory_id, code, name FROM offices
                 WHERE territory_id = ?1 AND rev > ?2 AND (?3 IS NULL OR id = ?3) ORDER BY rev",
            )?
            .query_map(params![t, since as i64, office], row_office)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let complexes = conn
            .prepare_cached(
                "SELECT id, territory_id, office_id, code, name, address, city, dwellings, year_built, replacement_value
                 FROM complexes WHERE territory_id = ?1 AND rev > ?2 AND (?3 IS NULL OR office_id = ?3) ORDER BY rev",
            )?
            .query_map(params![t, since as i64, office], row_complex)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let assignments = conn
            .prepare_cached(
                "SELECT a.complex_id, a.inspector_id, COALESCE(u.display_name, ''), a.planned, a.at
                 FROM assignments a JOIN complexes c ON c.id = a.complex_id
                 LEFT JOIN users u ON u.id = a.inspector_id
                 WHERE a.territory_id = ?1 AND a.rev > ?2 AND (?3 IS NULL OR c.office_id = ?3) ORDER BY a.rev",
            )?
            .query_map(params![t, since as i64, office], |r| {
                Ok(Assignment {
                    complex_id: parse_id(r.get(0)?)?,
                    inspector_id: r.get::<_, Option<String>>(1)?.map(parse_id).transpose()?,
                    inspector_name: r.get(2)?,
                    planned: r.get::<_, Option<String>>(3)?.map(parse_id).transpose()?,
                    at: r.get(4)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let revision: i64 = conn.query_row(
            "SELECT MAX(COALESCE((SELECT MAX(rev) FROM offices WHERE territory_id = ?1), 0),
                        COALESCE((SELECT MAX(rev) FROM complexes WHERE territory_id = ?1), 0),
                        COALESCE((SELECT MAX(rev) FROM assignments WHERE territory_id = ?1), 0))",
            [&t],
            |r| r.get(0),
        )?;
        Ok(ReferenceData {
            territory,
            offices,
            complexes,
            assignments,
            revision: (revision as u64).max(since),
        })
    }

    fn set_assignments(
        &self,
        territory: TerritoryId,
        rows: &[Assignment],
        audit: &AuditEntry,
    ) -> Result<()> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        for a in rows {
            let rev = next_rev(&tx)?;
            tx.execute(
                "INSERT INTO assignments (complex_id, territory_id, inspector_id, planned, assigned_by, at, rev)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT(complex_id) DO UPDATE SET inspector_id = excluded.inspector_id,
                   planned = excluded.planned, assigned_by = excluded.assigned_by, at = excluded.at,
                   rev = excluded.rev",
                params![
                    a.complex_id.to_string(),
                    territory.to_string(),
                    a.inspector_id.map(|i| i.to_string()),
                    a.planned.map(|m| m.to_string()),
                    audit.actor,
                    a.at,
                    rev as i64
                ],
            )?;
        }
        write_audit(&tx, audit)?;
        tx.commit()?;
        Ok(())
    }

    fn settings(&self, territory: TerritoryId) -> Result<CsSettings> {
        read_settings(&*self.reader()?, territory)
    }

    fn set_settings(
        &self,
        territory: TerritoryId,
        settings: &CsSettings,
        audit: &AuditEntry,
    ) -> Result<()> {
        let json = encode_settings(settings)?;
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        tx.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            params![settings_key(territory), json],
        )?;
        write_audit(&tx, audit)?;
        tx.commit()?;
        Ok(())
    }
}
