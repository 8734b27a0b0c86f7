//! The reference data cached for offline work: territory, offices,
//! complexes, the CS's settings and the visits it planned.

use bilan_shared::domain::{Complex, Office};
use bilan_shared::ids::*;
use bilan_shared::planning::Assignment;
use bilan_shared::protocol::ReferenceResponse;
use rusqlite::{OptionalExtension, params};

use super::{DeviceStore, decoded};
use crate::error::{MobileError, Result};

impl DeviceStore {
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
        for a in &r.assignments {
            match a.inspector_id {
                Some(_) => put(
                    "assignments",
                    a.complex_id.to_string(),
                    serde_json::to_string(a).unwrap_or_default(),
                )?,
                None => tx.execute(
                    "DELETE FROM assignments WHERE id = ?1",
                    [a.complex_id.to_string()],
                )?,
            };
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
    pub(super) fn json_rows<T: serde::de::DeserializeOwned>(&self, table: &str) -> Result<Vec<T>> {
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

    /// The visits the CS planned for `inspector`, by planned month (the
    /// ones without a month last), then by complex.
    pub fn assignments_of(&self, inspector: UserId) -> Result<Vec<Assignment>> {
        let mut v: Vec<Assignment> = self.json_rows("assignments")?;
        v.retain(|a| a.inspector_id == Some(inspector));
        v.sort_by_key(|a| (a.planned.is_none(), a.planned, a.complex_id));
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
}
