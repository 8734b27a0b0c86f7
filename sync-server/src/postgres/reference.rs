//! Reference rows on PostgreSQL: territories, offices, complexes and the
//! visits planned (each change takes the next value of the `ref_rev`
//! sequence, the revision devices pull from), and each territory's settings.

use bilan_shared::doc::now_ms;
use bilan_shared::domain::{Complex, CsSettings, Office, Territory};
use bilan_shared::ids::{ComplexId, OfficeId, TerritoryId};
use bilan_shared::planning::Assignment;
use tokio_postgres::Row;

use super::audit::write_audit;
use super::core::{Result, id};
use super::store::PgStore;
use crate::audit::AuditEntry;
use crate::codec::{decode_settings, encode_settings, settings_key};
use crate::error::StoreError;
use crate::storage::{ReferenceData, ReferenceStore, Scope};

fn row_territory(r: &Row) -> Result<Territory> {
    Ok(Territory {
        id: id(r.get(0))?,
        name: r.get(1),
    })
}

fn row_office(r: &Row) -> Result<Office> {
    Ok(Office {
        id: id(r.get(0))?,
        territory_id: id(r.get(1))?,
        code: r.get(2),
        name: r.get(3),
    })
}

fn row_complex(r: &Row) -> Result<Complex> {
    Ok(Complex {
        id: id(r.get(0))?,
        territory_id: id(r.get(1))?,
        office_id: id(r.get(2))?,
        code: r.get(3),
        name: r.get(4),
        address: r.get(5),
        city: r.get(6),
        dwellings: r.get::<_, i32>(7) as u32,
        year_built: r.get::<_, i32>(8) as u32,
        replacement_value: r.get(9),
    })
}

impl ReferenceStore for PgStore {
    fn insert_territory(&self, t: &Territory) -> Result<()> {
        self.run(async {
            self.client()
                .await?
                .execute(
                    "INSERT INTO territories (id, name, created_at) VALUES ($1, $2, $3)",
                    &[&t.id.to_string(), &t.name, &now_ms()],
                )
                .await?;
            Ok(())
        })
    }

    fn territory(&self, tid: TerritoryId) -> Result<Option<Territory>> {
        self.run(async {
            self.client()
                .await?
                .query_opt(
                    "SELECT id, name FROM territories WHERE id = $1",
                    &[&tid.to_string()],
                )
                .await?
                .map(|r| row_territory(&r))
                .transpose()
        })
    }

    fn territory_by_name(&self, name: &str) -> Result<Option<Territory>> {
        self.run(async {
            self.client()
                .await?
                .query_opt("SELECT id, name FROM territories WHERE name = $1", &[&name])
                .await?
                .map(|r| row_territory(&r))
                .transpose()
        })
    }

    fn upsert_office(&self, office: &Office) -> Result<OfficeId> {
        self.run(async {
            let row = self
                .client()
                .await?
                .query_one(
                    "INSERT INTO offices (id, territory_id, code, name, rev)
                     VALUES ($1, $2, $3, $4, nextval('ref_rev'))
                     ON CONFLICT (territory_id, code) DO UPDATE SET name = excluded.name, rev = excluded.rev
                     RETURNING id",
                    &[
                        &office.id.to_string(),
                        &office.territory_id.to_string(),
                        &office.code,
                        &office.name,
                    ],
                )
                .await?;
            id(row.get(0))
        })
    }

    fn upsert_complex(&self, c: &Complex) -> Result<()> {
        self.run(async {
            let client = self.client().await?;
            let office_ok = client
                .query_opt(
                    "SELECT 1 FROM offices WHERE id = $1 AND territory_id = $2",
                    &[&c.office_id.to_string(), &c.territory_id.to_string()],
                )
                .await?
                .is_some();
            if !office_ok {
                return Err(StoreError::BadRequest(format!(
                    "organisme inconnu pour l'ensemble {}",
                    c.code
                )));
            }
            client
                .execute(
                    "INSERT INTO complexes (id, territory_id, office_id, code, name, address, city, dwellings,
                       year_built, replacement_value, rev)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, nextval('ref_rev'))
                     ON CONFLICT (territory_id, code) DO UPDATE SET office_id = excluded.office_id,
                       name = excluded.name, address = excluded.address, city = excluded.city,
                       dwellings = excluded.dwellings, year_built = excluded.year_built,
                       replacement_value = excluded.replacement_value, rev = excluded.rev",
                    &[
                        &c.id.to_string(),
                        &c.territory_id.to_string(),
                        &c.office_id.to_string(),
                        &c.code,
                        &c.name,
                        &c.address,
                        &c.city,
                        &(c.dwellings as i32),
                        &(c.year_built as i32),
                        &c.replacement_value,
                    ],
                )
                .await?;
            Ok(())
        })
    }

    fn offices(&self, territory: TerritoryId) -> Result<Vec<Office>> {
        self.run(async {
            self.client()
                .await?
                .query(
                    "SELECT id, territory_id, code, name FROM offices WHERE territory_id = $1 ORDER BY name",
                    &[&territory.to_string()],
                )
                .await?
                .iter()
                .map(row_office)
                .collect()
        })
    }

    fn complex(&self, scope: &Scope, id: ComplexId) -> Result<Option<(Complex, String)>> {
        let (t, office) = scope.as_text();
        self.run(async {
            self.client()
                .await?
                .query_opt(
                    "SELECT c.id, c.territory_id, c.office_id, c.code, c.name, c.address, c.city, c.dwellings,
                       c.year_built, c.replacement_value, o.name
                     FROM complexes c JOIN offices o ON o.id = c.office_id
                     WHERE c.id = $1 AND c.territory_id = $2 AND ($3::TEXT IS NULL OR c.office_id = $3)",
                    &[&id.to_string(), &t, &office],
                )
                .await?
                .map(|r| Ok((row_complex(&r)?, r.get(10))))
                .transpose()
        })
    }

    fn reference(&self, scope: &Scope, since: u64) -> Result<ReferenceData> {
        self.run(async {
            let client = self.client().await?;
            let t = scope.territory.to_string();
            let office = scope.office.map(|o| o.to_string());
            let since = since as i64;
            let territory = client
                .query_opt("SELECT id, name FROM territories WHERE id = $1", &[&t])
                .await?
                .map(|r| row_territory(&r))
                .transpose()?
                .ok_or_else(|| StoreError::NotFound(format!("territoire {t}")))?;
            let offices = client
                .query(
                    "SELECT id, territory_id, code, name FROM offices
                     WHERE territory_id = $1 AND rev > $2 AND ($3::TEXT IS NULL OR id = $3) ORDER BY rev",
                    &[&t, &since, &office],
                )
                .await?
                .iter()
                .map(row_office)
                .collect::<Result<Vec<_>>>()?;
            let complexes = client
                .query(
                    "SELECT id, territory_id, office_id, code, name, address, city, dwellings, year_built,
                       replacement_value
                     FROM complexes WHERE territory_id = $1 AND rev > $2 AND ($3::TEXT IS NULL OR office_id = $3)
                     ORDER BY rev",
                    &[&t, &since, &office],
                )
                .await?
                .iter()
                .map(row_complex)
                .collect::<Result<Vec<_>>>()?;
            let assignments = client
                .query(
                    "SELECT a.complex_id, a.inspector_id, COALESCE(u.display_name, ''), a.planned, a.at
                     FROM assignments a JOIN complexes c ON c.id = a.complex_id
                     LEFT JOIN users u ON u.id = a.inspector_id
                     WHERE a.territory_id = $1 AND a.rev > $2 AND ($3::TEXT IS NULL OR c.office_id = $3)
                     ORDER BY a.rev",
                    &[&t, &since, &office],
                )
                .await?
                .iter()
                .map(|r| {
                    Ok(Assignment {
                        complex_id: id(r.get(0))?,
                        inspector_id: r.get::<_, Option<String>>(1).map(id).transpose()?,
                        inspector_name: r.get(2),
                        planned: r.get::<_, Option<String>>(3).map(id).transpose()?,
                        at: r.get(4),
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            let revision: i64 = client
                .query_one(
                    "SELECT GREATEST(
                       COALESCE((SELECT MAX(rev) FROM offices WHERE territory_id = $1), 0),
                       COALESCE((SELECT MAX(rev) FROM complexes WHERE territory_id = $1), 0),
                       COALESCE((SELECT MAX(rev) FROM assignments WHERE territory_id = $1), 0))",
                    &[&t],
                )
                .await?
                .get(0);
            Ok(ReferenceData {
                territory,
                offices,
                complexes,
                assignments,
                revision: (revision.max(0) as u64).max(since as u64),
            })
        })
    }

    fn set_assignments(
        &self,
        territory: TerritoryId,
        rows: &[Assignment],
        audit: &AuditEntry,
    ) -> Result<()> {
        self.run(async {
            let mut client = self.client().await?;
            let tx = client.transaction().await?;
            let t = territory.to_string();
            for a in rows {
                tx.execute(
                    "INSERT INTO assignments (complex_id, territory_id, inspector_id, planned, assigned_by, at, rev)
                     VALUES ($1, $2, $3, $4, $5, $6, nextval('ref_rev'))
                     ON CONFLICT (complex_id) DO UPDATE SET inspector_id = excluded.inspector_id,
                       planned = excluded.planned, assigned_by = excluded.assigned_by, at = excluded.at,
                       rev = excluded.rev",
                    &[
                        &a.complex_id.to_string(),
                        &t,
                        &a.inspector_id.map(|i| i.to_string()),
                        &a.planned.map(|m| m.to_string()),
                        &audit.actor,
                        &a.at,
                    ],
                )
                .await?;
            }
            write_audit(&tx, audit).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn settings(&self, territory: TerritoryId) -> Result<CsSettings> {
        self.run(async {
            let json: Option<String> = self
                .client()
                .await?
                .query_opt(
                    "SELECT value FROM meta WHERE key = $1",
                    &[&settings_key(territory)],
                )
                .await?
                .map(|r| r.get(0));
            Ok(json.map_or_else(CsSettings::default, |j| decode_settings(&j, territory)))
        })
    }

    fn set_settings(
        &self,
        territory: TerritoryId,
        settings: &CsSettings,
        audit: &AuditEntry,
    ) -> Result<()> {
        let json = encode_settings(settings)?;
        self.run(async {
            let mut client = self.client().await?;
            let tx = client.transaction().await?;
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ($1, $2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                &[&settings_key(territory), &json],
            )
            .await?;
            write_audit(&tx, audit).await?;
            tx.commit().await?;
            Ok(())
        })
    }
}
