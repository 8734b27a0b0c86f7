//! The end-to-end suite's backend parameter: one test body, run on the
//! server's embedded SQLite (the default) or on PostgreSQL.
//!
//! `BILAN_E2E_BACKEND=postgres` together with `BILAN_E2E_POSTGRES` (the
//! connection settings of a throwaway cluster, without a database name)
//! puts every server the harness starts on PostgreSQL: each server folder
//! gets a database of its own, named after the folder, so a server restarted
//! on the same folder finds its data again, as it does on SQLite. The
//! `e2e-on-postgres` binary starts such a cluster, sets both variables, runs
//! the command it is given and stops the cluster; `scripts/test.sh` runs the
//! suite that way after the SQLite run.

use std::path::Path;
use std::process::Command;

use sha2::{Digest, Sha256};

/// Selects the backend of the servers the harness starts.
pub const BACKEND_VAR: &str = "BILAN_E2E_BACKEND";
/// The cluster's connection settings when the backend is PostgreSQL.
pub const CLUSTER_VAR: &str = "BILAN_E2E_POSTGRES";

/// Where the servers of this test run keep their records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite in each server's folder.
    Sqlite,
    /// A database per server folder in the cluster these settings reach.
    Postgres { cluster: String },
}

/// The backend chosen by the environment; a misspelt choice fails the test
/// rather than silently running on SQLite.
pub fn current() -> Backend {
    match std::env::var(BACKEND_VAR).as_deref() {
        Err(_) | Ok("") | Ok("sqlite") => Backend::Sqlite,
        Ok("postgres") => Backend::Postgres {
            cluster: std::env::var(CLUSTER_VAR).unwrap_or_else(|_| {
                panic!("{BACKEND_VAR}=postgres needs {CLUSTER_VAR}: run the tests through e2e-on-postgres")
            }),
        },
        Ok(other) => panic!("{BACKEND_VAR}={other}: expected sqlite or postgres"),
    }
}

/// The `database_url` of the server whose folder is `dir`: empty on SQLite;
/// on PostgreSQL, the folder's own database, created the first time.
pub fn database_for(dir: &Path) -> String {
    let Backend::Postgres { cluster } = current() else {
        return String::new();
    };
    let path = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    let digest = Sha256::digest(path.to_string_lossy().as_bytes());
    let name = format!("srv_{}", &hex::encode(digest)[..20]);
    let admin = format!("{cluster} dbname=postgres");
    let exists = psql(
        &admin,
        &format!("SELECT 1 FROM pg_database WHERE datname = '{name}'"),
    );
    if exists.trim() != "1" {
        psql(&admin, &format!("CREATE DATABASE \"{name}\""));
    }
    format!("{cluster} dbname={name}")
}

/// Whether the database of the server whose settings are `config` holds
/// nothing yet: no SQLite file, or a PostgreSQL database without tables.
pub fn database_is_empty(config: &bilan_server::Config) -> bool {
    if config.database_url.0.is_empty() {
        return !config.db_path().exists();
    }
    psql(
        &config.database_url.0,
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema()",
    )
    .trim()
        == "0"
}

/// Runs one statement on the server whose settings are `config`, in its
/// own database (SQLite file or PostgreSQL database): for tests that put
/// the stored data in a state no request can (a damaged setting, say).
pub fn execute_sql(config: &bilan_server::Config, sql: &str) {
    if config.database_url.0.is_empty() {
        let db = rusqlite::Connection::open(config.db_path()).expect("open the server's SQLite");
        db.execute_batch(sql).expect("statement on SQLite");
    } else {
        psql(&config.database_url.0, sql);
    }
}

/// Runs `sql` with `psql` on `url`; its output, unaligned and bare. Panics
/// (the test fails) with psql's message when the statement fails.
pub fn psql(url: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args(["-v", "ON_ERROR_STOP=1", "-q", "-At"])
        .arg(url)
        .args(["-c", sql])
        .output()
        .expect("psql (Debian's postgresql-client)");
    assert!(
        out.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
