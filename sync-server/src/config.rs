//! Server settings. Layers, each overriding the one before: built-in defaults,
//! then the TOML file (`--config`), then environment variables (`BILAN_*`),
//! then command-line flags.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

/// Every server setting, with its default.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address and port to listen on.
    pub listen: SocketAddr,
    /// Folder holding `bilan.sqlite` and the photo store.
    pub data_dir: PathBuf,
    /// Largest accepted request body, compressed, in bytes.
    pub max_body_bytes: u64,
    /// Largest sync body once decompressed, in bytes.
    pub max_decompressed_bytes: u64,
    /// Most documents in one sync request.
    pub max_docs_per_request: usize,
    /// Largest photo, in bytes.
    pub max_photo_bytes: u64,
    /// Budget of change bytes in one sync response; more waits for the next page.
    pub response_page_bytes: u64,
    /// Seconds between two log compactions while serving (0: never; the
    /// `compact` command does it by hand).
    pub compact_every_s: u64,
    /// Days a login (app or review pages) stays valid; then the person logs in again.
    pub token_ttl_days: u64,
    /// A reverse proxy on this host forwards the requests: take the client's
    /// address (for the failed-login limit) from the last `X-Forwarded-For`
    /// entry instead of the connection's. Leave off when clients connect
    /// directly, or anyone could pick the address they are counted under.
    pub behind_proxy: bool,
    /// Days log compaction keeps each change bundle beside the snapshot: a
    /// device offline for less than this still receives small bundles
    /// instead of whole documents. 0 reclaims everything at once.
    pub log_retention_days: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".parse().expect("valid default address"),
            data_dir: PathBuf::from("bilan-data"),
            max_body_bytes: 64 << 20,
            max_decompressed_bytes: 256 << 20,
            max_docs_per_request: 5_000,
            max_photo_bytes: 20_000_000,
            response_page_bytes: 8 << 20,
            compact_every_s: 3600,
            token_ttl_days: 90,
            behind_proxy: false,
            log_retention_days: 30,
        }
    }
}

impl Config {
    /// Loads the TOML file over the defaults.
    pub fn from_toml(text: &str) -> Result<Self, toml::de::Error> {
        toml::from_str(text)
    }

    /// Path of the SQLite database.
    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join("bilan.sqlite")
    }

    /// Folder of the photo store.
    pub fn photo_dir(&self) -> PathBuf {
        self.data_dir.join("photos")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_overrides_only_what_it_names_and_rejects_unknown_keys() {
        let c = Config::from_toml("max_photo_bytes = 1000\n").unwrap();
        assert_eq!(c.max_photo_bytes, 1000);
        assert_eq!(c.listen, Config::default().listen);
        assert!(Config::from_toml("nope = 1").is_err());
    }
}
