//! Backups of a server's data, and restoring one. A backup is a folder: a
//! consistent copy of the database taken while the server keeps serving
//! (SQLite's `VACUUM INTO`, which reads one snapshot of the database in a
//! single read transaction; on PostgreSQL, `pg_dump`, one snapshot too)
//! plus every complete photo of the photo store
//! (a local folder or an S3-compatible bucket), each checked against its
//! SHA-256 name, with its thumbnail, and a manifest. Photos are copied after the database, and
//! a photo's row is only written once its file is complete, so every photo the
//! copied database knows is in the backup.
//!
//! Restoring checks everything (manifest, database hash and integrity, every
//! photo's hash) before writing anything, and only into a data folder without
//! a database (on PostgreSQL, a database without tables, restored in one
//! transaction): a restore never overwrites live data. A backup restores
//! into the engine it was taken from; moving from SQLite to PostgreSQL is
//! `migrate-to-postgres`.

use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use bilan_shared::ids::PhotoHash;
use bytes::Bytes;

use crate::Config;
use crate::photos::PhotoStore;

/// Name of the manifest inside a backup folder.
pub const MANIFEST: &str = "bilan-backup.json";
/// Name of the database copy inside a backup folder.
const DB_FILE: &str = "bilan.sqlite";
/// Name of the PostgreSQL dump inside a backup folder.
const PG_DUMP_FILE: &str = "bilan.pgdump";
/// The manifest's `engine` of a PostgreSQL backup.
const POSTGRESQL: &str = "postgresql";
/// Folder of the photos inside a backup folder.
const PHOTO_DIR: &str = "photos";

/// What a backup holds. Stored format v1 (`bilan-backup.json`): add only
/// optional fields.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Manifest {
    pub format: u32,
    /// Milliseconds since the Unix epoch.
    pub created_at: i64,
    /// `PRAGMA user_version` of the copied database.
    pub db_schema: i64,
    pub db_bytes: u64,
    /// SHA-256 of the database copy, hex.
    pub db_sha256: String,
    pub photos: u64,
    pub photo_bytes: u64,
    /// The database engine: absent for SQLite (the first backups), or
    /// `postgresql`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<String>,
}

impl Manifest {
    /// The database file's name inside the backup folder.
    pub fn db_file(&self) -> &'static str {
        if self.is_postgresql() {
            PG_DUMP_FILE
        } else {
            DB_FILE
        }
    }

    fn is_postgresql(&self) -> bool {
        self.engine.as_deref() == Some(POSTGRESQL)
    }
}

/// Why a backup or a restore stopped. Nothing is left half-written at the
/// destination of a restore.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(
        "le dossier de sauvegarde {0} existe déjà et n'est pas vide : choisissez un dossier neuf"
    )]
    DestinationNotEmpty(PathBuf),
    #[error(
        "le dossier de données {0} contient déjà une base : arrêtez le serveur et restaurez dans un dossier de données vide"
    )]
    DataNotEmpty(PathBuf),
    #[error(
        "la base PostgreSQL cible contient déjà des tables : restaurez dans une base vide (rien n'a été restauré)"
    )]
    DatabaseNotEmpty,
    #[error("{0} (rien n'a été restauré)")]
    WrongEngine(String),
    #[error("sauvegarde incomplète ou abîmée, rien n'a été restauré : {0}")]
    Corrupt(String),
    #[error("base de données : {0}")]
    Database(#[from] crate::error::StoreError),
    #[error("stockage des photos : {0}")]
    Photos(crate::error::StoreError),
    #[error("fichier : {0}")]
    Io(#[from] std::io::Error),
    #[error("manifeste illisible : {0}")]
    Manifest(#[from] serde_json::Error),
}

type Result<T> = std::result::Result<T, BackupError>;

/// Copies the database named by `config` and every photo of `photos` into
/// `dest` (created; must be new or empty). Safe while the server runs.
pub async fn backup(config: &Config, photos: &PhotoStore, dest: &Path) -> Result<Manifest> {
    if dest.exists() && std::fs::read_dir(dest)?.next().is_some() {
        return Err(BackupError::DestinationNotEmpty(dest.to_path_buf()));
    }
    std::fs::create_dir_all(dest.join(PHOTO_DIR))?;
    let url = config.database_url.0.trim();
    let (db_copy, db_schema, engine) = if url.is_empty() {
        let copy = dest.join(DB_FILE);
        let schema = crate::sqlite::copy_database(&config.db_path(), &copy)?;
        (copy, schema, None)
    } else {
        let copy = dest.join(PG_DUMP_FILE);
        let schema = crate::postgres::dump::dump(url, &copy).await?;
        (copy, schema, Some(POSTGRESQL.to_string()))
    };
    sync_file(&db_copy)?;
    let (photos, photo_bytes) = export_photos(photos, &dest.join(PHOTO_DIR)).await?;
    let manifest = Manifest {
        format: 1,
        created_at: bilan_shared::doc::now_ms(),
        db_schema,
        db_bytes: std::fs::metadata(&db_copy)?.len(),
        db_sha256: sha256_file(&db_copy)?,
        photos,
        photo_bytes,
        engine,
    };
    let path = dest.join(MANIFEST);
    std::fs::write(&path, serde_json::to_vec_pretty(&manifest)?)?;
    sync_file(&path)?;
    Ok(manifest)
}

/// Restores the backup in `src` into the data folder and photo store named
/// by `config`; the data folder must hold no database. Everything is
/// checked before anything is written; photos go first and the database
/// last, so an interrupted restore leaves no database and can simply be run
/// again.
pub async fn restore(src: &Path, config: &Config) -> Result<Manifest> {
    let manifest: Manifest = serde_json::from_slice(
        &std::fs::read(src.join(MANIFEST))
            .map_err(|e| BackupError::Corrupt(format!("{MANIFEST} : {e}")))?,
    )?;
    let url = config.database_url.0.trim();
    match (manifest.is_postgresql(), url.is_empty()) {
        (true, true) => {
            return Err(BackupError::WrongEngine(
                "cette sauvegarde est celle d'une base PostgreSQL : donnez la base où la restaurer (database_url)".into(),
            ));
        }
        (false, false) => {
            return Err(BackupError::WrongEngine(
                "cette sauvegarde est celle d'une base SQLite : restaurez-la dans un dossier de données sans database_url, puis passez à PostgreSQL avec migrate-to-postgres".into(),
            ));
        }
        _ => {}
    }
    let db = src.join(manifest.db_file());
    if sha256_file(&db)? != manifest.db_sha256 {
        return Err(BackupError::Corrupt(
            "la base ne correspond pas à son empreinte".into(),
        ));
    }
    let readable = if manifest.is_postgresql() {
        crate::postgres::dump::check_dump(&db).await?
    } else {
        crate::sqlite::check_database(&db)?
    };
    if let Err(problem) = readable {
        return Err(BackupError::Corrupt(format!(
            "intégrité de la base : {problem}"
        )));
    }
    let (photos, bytes) = verify_photos(&src.join(PHOTO_DIR))?;
    if (photos, bytes) != (manifest.photos, manifest.photo_bytes) {
        return Err(BackupError::Corrupt(format!(
            "{photos} photo(s) ({bytes} octets) au lieu de {} ({} octets)",
            manifest.photos, manifest.photo_bytes
        )));
    }
    let target = config.db_path();
    if manifest.is_postgresql() {
        if !crate::postgres::dump::is_empty(url).await? {
            return Err(BackupError::DatabaseNotEmpty);
        }
    } else if target.exists() {
        return Err(BackupError::DataNotEmpty(config.data_dir.clone()));
    }
    let store = PhotoStore::open(&config.photo_backend()).map_err(BackupError::Photos)?;
    import_photos(&src.join(PHOTO_DIR), &store).await?;
    if manifest.is_postgresql() {
        // One transaction: a restore that stops leaves the database empty.
        crate::postgres::dump::restore(url, &db).await?;
        return Ok(manifest);
    }
    // The database appears under its name only once complete.
    std::fs::create_dir_all(&config.data_dir)?;
    let partial = config.data_dir.join("bilan.sqlite.restoring");
    std::fs::copy(&db, &partial)?;
    sync_file(&partial)?;
    std::fs::rename(&partial, &target)?;
    Ok(manifest)
}

/// Writes every complete photo of `photos` (`xx/<sha256>`) and its
/// thumbnail (`thumbs/<sha256>.jpg`) into the folder `to`, checking each
/// photo's bytes against its name. Returns the count and bytes of photos.
async fn export_photos(photos: &PhotoStore, to: &Path) -> Result<(u64, u64)> {
    let (mut count, mut bytes) = (0, 0);
    for (hash, _) in photos.list_photos().await.map_err(BackupError::Photos)? {
        let Some(data) = photos.photo(&hash).await.map_err(BackupError::Photos)? else {
            continue;
        };
        if PhotoHash::of(&data) != hash {
            return Err(BackupError::Corrupt(format!(
                "la photo {hash} ne correspond pas à son empreinte"
            )));
        }
        let dir = to.join(&hash.as_str()[..2]);
        std::fs::create_dir_all(&dir)?;
        let dest = dir.join(hash.as_str());
        std::fs::write(&dest, &data)?;
        sync_file(&dest)?;
        if let Some(thumb) = photos.thumbnail(&hash).await.map_err(BackupError::Photos)? {
            std::fs::create_dir_all(to.join("thumbs"))?;
            std::fs::write(to.join("thumbs").join(format!("{hash}.jpg")), &thumb)?;
        }
        count += 1;
        bytes += data.len() as u64;
    }
    Ok((count, bytes))
}

/// Puts every photo of a backup folder (checked before) and its thumbnail
/// into `store`.
async fn import_photos(from: &Path, store: &PhotoStore) -> Result<()> {
    for (path, name, _) in photo_files(from)? {
        let hash: PhotoHash = name
            .parse()
            .map_err(|_| BackupError::Corrupt(format!("nom de photo « {name} »")))?;
        let data = Bytes::from(std::fs::read(&path)?);
        let thumb = std::fs::read(from.join("thumbs").join(format!("{name}.jpg")))
            .ok()
            .map(Bytes::from);
        store
            .put_checked(&hash, data, thumb)
            .await
            .map_err(BackupError::Photos)?;
    }
    Ok(())
}

/// Checks every photo of a backup against its name, writing nothing.
fn verify_photos(dir: &Path) -> Result<(u64, u64)> {
    let (mut count, mut bytes) = (0, 0);
    for (path, name, _) in photo_files(dir)? {
        if sha256_file(&path)? != name {
            return Err(BackupError::Corrupt(format!(
                "la photo {name} ne correspond pas à son empreinte"
            )));
        }
        count += 1;
        bytes += std::fs::metadata(&path)?.len();
    }
    Ok((count, bytes))
}

/// Complete photos of a photo folder: `(path, hash, fan-out folder)`;
/// `partial/` (unfinished uploads) and `thumbs/` are left out.
fn photo_files(root: &Path) -> Result<Vec<(PathBuf, String, String)>> {
    let mut out = Vec::new();
    if !root.is_dir() {
        return Ok(out);
    }
    for fan in std::fs::read_dir(root)? {
        let fan = fan?;
        let fan_name = fan.file_name().to_string_lossy().to_string();
        if !fan.file_type()?.is_dir() || fan_name.len() != 2 {
            continue;
        }
        for f in std::fs::read_dir(fan.path())? {
            let f = f?;
            let name = f.file_name().to_string_lossy().to_string();
            if f.file_type()?.is_file() && name.len() == 64 && name.starts_with(&fan_name) {
                out.push((f.path(), name, fan_name.clone()));
            }
        }
    }
    out.sort();
    Ok(out)
}

fn sha256_file(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

fn sync_file(path: &Path) -> Result<()> {
    std::fs::File::open(path)?.sync_all()?;
    Ok(())
}
