//! The database as a file, for backups: a consistent copy taken while the
//! server writes, and the integrity check of a copy before it is restored.

use std::path::Path;

use super::core::Result;

/// Copies the database at `db` into the new file `dest` (`VACUUM INTO`:
/// consistent while the server writes); returns its schema version.
pub fn copy_database(db: &Path, dest: &Path) -> Result<i64> {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    conn.busy_timeout(std::time::Duration::from_secs(30))?;
    conn.execute("VACUUM INTO ?1", [dest.to_string_lossy()])?;
    Ok(conn.pragma_query_value(None, "user_version", |r| r.get(0))?)
}

/// SQLite's integrity check of the database file at `db`: `Ok(Err(what))`
/// when the file is damaged.
pub fn check_database(db: &Path) -> Result<std::result::Result<(), String>> {
    let check: String =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
    Ok(if check == "ok" { Ok(()) } else { Err(check) })
}
