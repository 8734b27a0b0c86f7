//! Reading a SQLite database table by table as plain [`Cell`]s, for the
//! move to PostgreSQL (`crate::transfer`). Opened read-only, on a copy.

use std::path::Path;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, OptionalExtension};

use super::core::Result;
use super::migrate::DB_SCHEMA_VERSION;
use crate::error::StoreError;
use crate::transfer::cells::{Cell, TransferError};

/// A database file read for a move.
pub struct TableSource(Connection);

impl TableSource {
    /// Opens `db` read-only; refuses a database of another schema version
    /// (a server of this version migrates it when it opens it).
    pub fn open(db: &Path) -> std::result::Result<Self, TransferError> {
        let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(StoreError::from)?;
        let found: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(StoreError::from)?;
        if found != DB_SCHEMA_VERSION {
            return Err(TransferError::SourceSchema {
                found,
                expected: DB_SCHEMA_VERSION,
            });
        }
        Ok(Self(conn))
    }

    /// Every row of `table`, the cells in the order of `columns`.
    pub fn rows(&self, table: &str, columns: &[&str]) -> Result<Vec<Vec<Cell>>> {
        let sql = format!("SELECT {} FROM {table}", columns.join(", "));
        let mut stmt = self.0.prepare(&sql)?;
        let rows = stmt.query_map([], |r| {
            (0..columns.len())
                .map(|i| {
                    Ok(match r.get_ref(i)? {
                        ValueRef::Null => Cell::Null,
                        ValueRef::Integer(v) => Cell::Int(v),
                        ValueRef::Real(v) => Cell::Real(v),
                        ValueRef::Text(t) => Cell::Text(String::from_utf8_lossy(t).into_owned()),
                        ValueRef::Blob(b) => Cell::Blob(b.to_vec()),
                    })
                })
                .collect::<rusqlite::Result<Vec<Cell>>>()
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// An integer kept in `meta` (none: 0).
    pub fn meta_int(&self, key: &str) -> Result<i64> {
        let v: Option<String> = self
            .0
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()?;
        v.map_or(Ok(0), |v| {
            v.parse()
                .map_err(|_| StoreError::Corrupt(format!("meta {key} = « {v} »")))
        })
    }
}
