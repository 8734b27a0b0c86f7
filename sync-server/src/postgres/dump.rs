//! A PostgreSQL database as a file, for backups: `pg_dump` (custom format,
//! one consistent snapshot while the server keeps writing), the check of a
//! dump before it is restored (`pg_restore --list`), and its restore into
//! an empty database in one transaction (`pg_restore --single-transaction`):
//! a restore that fails leaves the database empty.
//!
//! The tools are PostgreSQL's own client programs (Debian's
//! `postgresql-client`), found on `PATH`; their major version must be the
//! server's or newer.

use super::core::{Result, connect_one};
use crate::error::StoreError;
use std::path::Path;

/// Writes the database `url` into the new file `dest`; returns its schema
/// version.
pub async fn dump(url: &str, dest: &Path) -> Result<i64> {
    let client = connect_one(url).await?;
    let version: i32 = client
        .query_one("SELECT version FROM schema_version", &[])
        .await?
        .get(0);
    run(
        "pg_dump",
        &[
            "--format=custom",
            "--no-owner",
            "--no-privileges",
            &format!("--file={}", dest.display()),
            &format!("--dbname={url}"),
        ],
    )
    .await?;
    Ok(i64::from(version))
}

/// `pg_restore`'s reading of the dump at `file`: `Ok(Err(what))` when it
/// cannot be read (damaged or not a dump).
pub async fn check_dump(file: &Path) -> Result<std::result::Result<(), String>> {
    let out = tokio::process::Command::new("pg_restore")
        .arg("--list")
        .arg(file)
        .output()
        .await
        .map_err(|e| tool_missing("pg_restore", e))?;
    Ok(if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    })
}

/// Whether the database `url` holds no table (a restore writes only there).
pub async fn is_empty(url: &str) -> Result<bool> {
    let client = connect_one(url).await?;
    let tables: i64 = client
        .query_one(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema()",
            &[],
        )
        .await?
        .get(0);
    Ok(tables == 0)
}

/// Restores the dump at `file` into the empty database `url`, all or nothing.
pub async fn restore(url: &str, file: &Path) -> Result<()> {
    run(
        "pg_restore",
        &[
            "--single-transaction",
            "--exit-on-error",
            "--no-owner",
            "--no-privileges",
            &format!("--dbname={url}"),
            &file.to_string_lossy(),
        ],
    )
    .await
}

async fn run(tool: &str, args: &[&str]) -> Result<()> {
    let out = tokio::process::Command::new(tool)
        .args(args)
        .output()
        .await
        .map_err(|e| tool_missing(tool, e))?;
    if !out.status.success() {
        return Err(StoreError::Backend(format!(
            "{tool} : {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

fn tool_missing(tool: &str, e: std::io::Error) -> StoreError {
    StoreError::Unavailable(format!(
        "{tool} introuvable ({e}) : installez les outils clients de PostgreSQL (paquet postgresql-client)"
    ))
}
