//! A throwaway PostgreSQL cluster for the tests: Debian's `postgresql`
//! binaries (`initdb`, `pg_ctl`), a data folder in a temporary directory,
//! listening only on a Unix socket in that folder (and a free port number
//! naming it), stopped and deleted when dropped. Never the machine's own
//! cluster. `initdb` refuses root: as root the cluster runs as `postgres`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A running cluster.
pub struct PgCluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    pub port: u16,
}

fn bin_dir() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is installed (Debian's postgresql; scripts/install-deps.sh)")
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|b| b.join("initdb").is_file())
        .collect();
    versions.sort();
    versions
        .pop()
        .expect("an initdb under /usr/lib/postgresql/*/bin")
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0"))
        .unwrap_or(false)
}

/// Runs a PostgreSQL tool as the cluster's owner.
fn as_owner(tool: &Path, args: &[&str]) -> std::process::Output {
    let out = if is_root() {
        Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(tool)
            .args(args)
            .output()
    } else {
        Command::new(tool).args(args).output()
    }
    .unwrap_or_else(|e| panic!("run {}: {e}", tool.display()));
    assert!(
        out.status.success(),
        "{} {args:?} failed: {}",
        tool.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

impl PgCluster {
    /// Creates and starts a cluster; panics (the test fails) when it cannot.
    pub fn start() -> Self {
        let bin = bin_dir();
        let dir = tempfile::Builder::new()
            .prefix("bilan-pg-")
            .tempdir()
            .expect("a temporary folder");
        if is_root() {
            let ok = Command::new("chown")
                .args(["postgres:postgres"])
                .arg(dir.path())
                .status()
                .expect("chown");
            assert!(ok.success(), "chown the cluster's folder to postgres");
        }
        let data = dir.path().join("data");
        let data_s = data.to_string_lossy().to_string();
        as_owner(
            &bin.join("initdb"),
            &[
                "-D",
                &data_s,
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let opts = format!(
            "-p {port} -k {} -c listen_addresses='' -c fsync=off -c max_connections=400",
            dir.path().display()
        );
        let log = dir.path().join("log").to_string_lossy().to_string();
        as_owner(
            &bin.join("pg_ctl"),
            &["-D", &data_s, "-o", &opts, "-l", &log, "-w", "start"],
        );
        Self { dir, bin, port }
    }

    /// The connection settings of database `db` (created by [`Self::create_database`]).
    pub fn url(&self, db: &str) -> String {
        format!("{} dbname={db}", self.settings())
    }

    /// The cluster's connection settings, without a database name.
    pub fn settings(&self) -> String {
        format!(
            "host={} port={} user=postgres",
            self.dir.path().display(),
            self.port
        )
    }

    /// Creates an empty database.
    pub fn create_database(&self, db: &str) -> String {
        let out = Command::new("psql")
            .args(["-v", "ON_ERROR_STOP=1", "-q"])
            .arg(self.url("postgres"))
            .args(["-c", &format!("CREATE DATABASE \"{db}\"")])
            .output()
            .expect("psql");
        assert!(
            out.status.success(),
            "create database {db}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.url(db)
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let data = self.dir.path().join("data").to_string_lossy().to_string();
        let tool = self.bin.join("pg_ctl");
        let args = ["-D", data.as_str(), "-m", "immediate", "-w", "stop"];
        let _ = if is_root() {
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(&tool)
                .args(args)
                .output()
        } else {
            Command::new(&tool).args(args).output()
        };
    }
}
