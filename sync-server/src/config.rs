//! Server settings, each written once: a field of [`Config`] with its
//! default. Layers, each overriding the one before: the defaults, the TOML
//! file (`--config`), `BILAN_<SETTING>` environment variables, then the
//! command line (`--data-dir`, `--listen`, `--set setting=value`). The
//! layering is generic over the fields (serde), so a new setting needs no
//! code here but its field and default.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// A setting that must not reach the log: shown as `***`.
#[derive(Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { "***" })
    }
}

/// Where photos are kept.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum PhotoStoreKind {
    /// `photos/` in `data_dir`.
    #[default]
    Local,
    /// An S3-compatible bucket (`s3_bucket`, `s3_endpoint`, `s3_region`;
    /// credentials from `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`).
    S3,
}

/// Where photos live: a local folder or an S3-compatible bucket.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub enum PhotoBackend {
    /// A folder of this machine.
    Local(PathBuf),
    /// An S3-compatible bucket; credentials come from the environment
    /// (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`) unless given.
    S3 {
        bucket: String,
        /// The store's address for a self-hosted one (MinIO, Ceph RGW,
        /// Garage...): requests then use path-style addresses.
        endpoint: Option<String>,
        region: String,
        /// Access key and secret; `None`: from the environment.
        credentials: Option<(String, Secret)>,
    },
}

/// Every server setting, with its default.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address and port to listen on.
    pub listen: SocketAddr,
    /// Folder holding `bilan.sqlite` and the photo store.
    pub data_dir: PathBuf,
    /// PostgreSQL database of inspections, accounts and the log
    /// (`postgres://user:password@host/db` or `host=... dbname=...`);
    /// empty: embedded SQLite in `data_dir`. Never logged.
    pub database_url: Secret,
    /// Where photos are kept: `local` (in `data_dir`) or `s3`.
    pub photo_store: PhotoStoreKind,
    /// The S3 bucket of the photos (with `photo_store = "s3"`).
    pub s3_bucket: String,
    /// The address of a self-hosted S3-compatible store (MinIO, Ceph RGW,
    /// Garage...); empty for Amazon S3 itself.
    pub s3_endpoint: String,
    /// The bucket's region.
    pub s3_region: String,
    /// The store's access key; empty: `AWS_ACCESS_KEY_ID` from the environment.
    pub s3_access_key_id: String,
    /// The store's secret key; empty: `AWS_SECRET_ACCESS_KEY` from the environment.
    pub s3_secret_access_key: Secret,
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
            database_url: Secret::default(),
            photo_store: PhotoStoreKind::Local,
            s3_bucket: String::new(),
            s3_endpoint: String::new(),
            s3_region: "us-east-1".into(),
            s3_access_key_id: String::new(),
            s3_secret_access_key: Secret::default(),
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

/// Why the settings could not be read; says which layer and setting.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("réglage inconnu « {0} » : voir la liste des réglages (bilan-server --help)")]
    Unknown(String),
    #[error("réglage {key} ({layer}) : « {value} » n'est pas {expected}")]
    Value {
        key: String,
        layer: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("réglage attendu sous la forme nom=valeur, reçu « {0} »")]
    Pair(String),
    #[error("fichier de configuration : {0}")]
    File(String),
    #[error("réglages : {0}")]
    Invalid(String),
}

/// Settings as a TOML table, one layer at a time.
pub struct Layers {
    table: toml::Table,
}

impl Layers {
    /// The defaults.
    pub fn defaults() -> Self {
        let table = toml::Table::try_from(Config::default()).expect("defaults serialize");
        Self { table }
    }

    /// The setting names.
    pub fn keys(&self) -> Vec<String> {
        self.table.keys().cloned().collect()
    }

    /// A TOML file's settings over the current ones (unknown names refused).
    pub fn file(mut self, text: &str) -> Result<Self, ConfigError> {
        let file: toml::Table =
            toml::from_str(text).map_err(|e| ConfigError::File(e.to_string()))?;
        for (k, v) in file {
            if !self.table.contains_key(&k) {
                return Err(ConfigError::Unknown(k));
            }
            self.table.insert(k, v);
        }
        Ok(self)
    }

    /// One setting given as text (environment, command line), read as the
    /// type of its default.
    pub fn set(mut self, key: &str, value: &str, layer: &'static str) -> Result<Self, ConfigError> {
        let key = key.trim().replace('-', "_");
        let Some(current) = self.table.get(&key) else {
            return Err(ConfigError::Unknown(key));
        };
        let bad = |expected| ConfigError::Value {
            key: key.clone(),
            layer,
            value: value.to_string(),
            expected,
        };
        let v = match current {
            toml::Value::Integer(_) => toml::Value::Integer(
                value
                    .trim()
                    .replace('_', "")
                    .parse()
                    .map_err(|_| bad("un entier"))?,
            ),
            toml::Value::Boolean(_) => toml::Value::Boolean(match value.trim() {
                "true" | "1" | "oui" => true,
                "false" | "0" | "non" => false,
                _ => return Err(bad("true ou false")),
            }),
            _ => toml::Value::String(value.to_string()),
        };
        self.table.insert(key, v);
        Ok(self)
    }

    /// `BILAN_<SETTING>` variables of `env` over the current settings.
    pub fn env(mut self, env: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        for key in self.keys() {
            if let Some(v) = env(&format!("BILAN_{}", key.to_uppercase())) {
                self = self.set(&key, &v, "environnement")?;
            }
        }
        Ok(self)
    }

    /// `setting=value` pairs of the command line over the current settings.
    pub fn pairs(mut self, pairs: &[String]) -> Result<Self, ConfigError> {
        for p in pairs {
            let (k, v) = p
                .split_once('=')
                .ok_or_else(|| ConfigError::Pair(p.clone()))?;
            self = self.set(k, v, "ligne de commande")?;
        }
        Ok(self)
    }

    /// The settings, checked.
    pub fn build(self) -> Result<Config, ConfigError> {
        let c = Config::deserialize(self.table).map_err(|e| ConfigError::Invalid(e.to_string()))?;
        if c.photo_store == PhotoStoreKind::S3 && c.s3_bucket.trim().is_empty() {
            return Err(ConfigError::Invalid(
                "photo_store = \"s3\" demande s3_bucket".into(),
            ));
        }
        Ok(c)
    }
}

impl Config {
    /// Loads the TOML file over the defaults.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        Layers::defaults().file(text)?.build()
    }

    /// Path of the SQLite database.
    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join("bilan.sqlite")
    }

    /// Folder of the photo store (`photo_store = "local"`).
    pub fn photo_dir(&self) -> PathBuf {
        self.data_dir.join("photos")
    }

    /// Where the photos are, as the photo store opens it.
    pub fn photo_backend(&self) -> PhotoBackend {
        match self.photo_store {
            PhotoStoreKind::Local => PhotoBackend::Local(self.photo_dir()),
            PhotoStoreKind::S3 => PhotoBackend::S3 {
                bucket: self.s3_bucket.clone(),
                endpoint: Some(self.s3_endpoint.clone()).filter(|e| !e.trim().is_empty()),
                region: self.s3_region.clone(),
                credentials: (!self.s3_access_key_id.is_empty()).then(|| {
                    (
                        self.s3_access_key_id.clone(),
                        self.s3_secret_access_key.clone(),
                    )
                }),
            },
        }
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
        assert!(matches!(
            Config::from_toml("nope = 1"),
            Err(ConfigError::Unknown(k)) if k == "nope"
        ));
    }

    #[test]
    fn each_layer_overrides_the_one_before_and_bad_values_say_where() {
        let env = |k: &str| match k {
            "BILAN_MAX_PHOTO_BYTES" => Some("2000".to_string()),
            "BILAN_TOKEN_TTL_DAYS" => Some("7".to_string()),
            "BILAN_LOG" => Some("debug".to_string()),
            _ => None,
        };
        let c = Layers::defaults()
            .file("max_photo_bytes = 1000\nbehind_proxy = true\n")
            .unwrap()
            .env(env)
            .unwrap()
            .pairs(&["token-ttl-days=3".into(), "listen=127.0.0.1:0".into()])
            .unwrap()
            .build()
            .unwrap();
        assert_eq!(c.max_photo_bytes, 2000, "environment over file");
        assert_eq!(c.token_ttl_days, 3, "command line over environment");
        assert!(c.behind_proxy, "file over defaults");
        assert_eq!(c.listen.port(), 0);
        assert!(
            c.database_url.0.is_empty(),
            "SQLite unless a database is named"
        );
        let e = Layers::defaults()
            .pairs(&["max_docs_per_request=beaucoup".into()])
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("max_docs_per_request") && e.contains("entier"),
            "{e}"
        );
        let e = Layers::defaults()
            .pairs(&["photo_store=disquette".into()])
            .unwrap()
            .build()
            .err()
            .unwrap();
        assert!(matches!(e, ConfigError::Invalid(_)), "{e}");
        let e = Layers::defaults()
            .pairs(&["photo_store=s3".into()])
            .unwrap()
            .build()
            .err()
            .unwrap();
        assert!(e.to_string().contains("s3_bucket"), "{e}");
        let c = Layers::defaults()
            .pairs(&[
                "photo_store=s3".into(),
                "s3_bucket=photos".into(),
                "s3_endpoint=http://127.0.0.1:9000".into(),
            ])
            .unwrap()
            .build()
            .unwrap();
        assert_eq!(
            c.photo_backend(),
            PhotoBackend::S3 {
                bucket: "photos".into(),
                endpoint: Some("http://127.0.0.1:9000".into()),
                region: "us-east-1".into(),
                credentials: None,
            }
        );
        let secret = Secret("abc".into());
        assert_eq!(
            format!("{secret:?}"),
            "***",
            "a secret never reaches the log"
        );
    }
}
