//! Moving a deployment from embedded SQLite to PostgreSQL and its photos to
//! another photo store (`bilan-server migrate-to-postgres`).
//!
//! What belongs here is the part neither engine owns: the tables to move and
//! their order, a row as plain [`Cell`]s, the order-free digest both sides
//! are compared by, and the sequence of the move. Reading SQLite is
//! `sqlite::export`, writing PostgreSQL is `postgres::import`.
//!
//! The move reads a consistent copy of the SQLite database (taken while the
//! server may still be serving), writes every table into PostgreSQL in one
//! transaction that also creates the schema, reads each table back and
//! compares row counts and digests, copies every photo (checked against its
//! SHA-256 name before and after), and only then commits. A failed check
//! rolls the transaction back and removes the photos it had copied: the
//! target is left as it was.

use std::path::Path;

use bilan_shared::ids::PhotoHash;
use sha2::{Digest, Sha256};

use crate::config::PhotoBackend;
use crate::error::StoreError;
use crate::photos::PhotoStore;

/// One value of a row, as both engines can hold it.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

/// The tables moved, parents before children. Both backends' schemas hold
/// exactly these (checked: a table missing on either side stops the move).
pub const TABLES: &[&str] = &[
    "territories",
    "offices",
    "complexes",
    "users",
    "tokens",
    "login_failures",
    "address_failures",
    "meta",
    "documents",
    "log",
    "photos",
    "photo_access",
    "inspection_summary",
    "component_ratings",
    "findings",
    "recommendations",
    "site_visits",
    "photo_refs",
    "audit",
];

/// Keys of SQLite's `meta` that PostgreSQL keeps elsewhere: the reference
/// revision counter is the `ref_rev` sequence there.
pub const SQLITE_ONLY_META: &[&str] = &["ref_rev"];

/// What was moved: each table's rows and digest, and the photos.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TransferReport {
    pub tables: Vec<(String, u64, String)>,
    pub photos: u64,
    pub photo_bytes: u64,
}

/// Why a move stopped; nothing was written to the target.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    #[error(
        "la base PostgreSQL cible contient déjà des données ({0}) : donnez une base vide, rien n'a été écrit"
    )]
    TargetNotEmpty(String),
    #[error(
        "la base SQLite source est au schéma {found}, celui de cette version est {expected} : démarrez une fois le serveur de cette version sur le dossier source, puis relancez"
    )]
    SourceSchema { found: i64, expected: i64 },
    #[error("vérification échouée, rien n'a été écrit dans la cible : {0}")]
    Mismatch(String),
    #[error("base de données : {0}")]
    Store(#[from] StoreError),
    #[error("fichier : {0}")]
    Io(#[from] std::io::Error),
}

/// A table's rows in an order-free digest: each row encoded with its
/// cells' types, the encodings sorted, then hashed. Equal digests mean the
/// same rows, whatever order each engine returned them in.
pub fn digest(rows: &[Vec<Cell>]) -> String {
    let mut encoded: Vec<Vec<u8>> = rows.iter().map(|r| encode_row(r)).collect();
    encoded.sort_unstable();
    let mut h = Sha256::new();
    for e in &encoded {
        h.update((e.len() as u64).to_le_bytes());
        h.update(e);
    }
    hex::encode(h.finalize())
}

fn encode_row(row: &[Cell]) -> Vec<u8> {
    let mut out = Vec::new();
    for c in row {
        match c {
            Cell::Null => out.push(0),
            Cell::Int(v) => {
                out.push(1);
                out.extend(v.to_le_bytes());
            }
            Cell::Real(v) => {
                out.push(2);
                out.extend(v.to_bits().to_le_bytes());
            }
            Cell::Text(s) => {
                out.push(3);
                out.extend((s.len() as u64).to_le_bytes());
                out.extend(s.as_bytes());
            }
            Cell::Blob(b) => {
                out.push(4);
                out.extend((b.len() as u64).to_le_bytes());
                out.extend(b);
            }
        }
    }
    out
}

/// Moves the SQLite deployment whose database is `source_db` and whose
/// photos are in `source_photos` to the PostgreSQL database `target_url`
/// (empty, or without Bilan's schema) and the photo store `target_photos`.
/// `scratch` is a folder for the consistent copy of the database.
pub async fn migrate_to_postgres(
    source_db: &Path,
    source_photos: &PhotoBackend,
    target_url: &str,
    target_photos: &PhotoBackend,
    scratch: &Path,
) -> Result<TransferReport, TransferError> {
    let copy = scratch.join("bilan-migration.sqlite");
    if copy.exists() {
        std::fs::remove_file(&copy)?;
    }
    crate::sqlite::copy_database(source_db, &copy)?;
    let result = move_all(&copy, source_photos, target_url, target_photos).await;
    std::fs::remove_file(&copy)?;
    result
}

async fn move_all(
    copy: &Path,
    source_photos: &PhotoBackend,
    target_url: &str,
    target_photos: &PhotoBackend,
) -> Result<TransferReport, TransferError> {
    let source = crate::sqlite::export::TableSource::open(copy)?;
    let target = crate::postgres::import::Importer::begin(target_url).await?;
    let mut report = TransferReport::default();
    for table in TABLES {
        let columns = target.columns(table).await?;
        let names: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
        let mut rows = source.rows(table, &names)?;
        if *table == "meta" {
            rows.retain(
                |r| !matches!(&r[0], Cell::Text(k) if SQLITE_ONLY_META.contains(&k.as_str())),
            );
        }
        // What PostgreSQL must hand back: each cell in its column's type.
        let expected = target.normalize(table, &columns, rows)?;
        target.insert(table, &columns, &expected).await?;
        let stored = target.read_back(table, &columns).await?;
        let (want, got) = (digest(&expected), digest(&stored));
        if expected.len() != stored.len() || want != got {
            return Err(TransferError::Mismatch(format!(
                "table {table} : {} ligne(s) lues, {} écrites (empreintes {want} / {got})",
                expected.len(),
                stored.len()
            )));
        }
        report
            .tables
            .push((table.to_string(), stored.len() as u64, got));
    }
    target
        .restart_sequences(source.meta_int("ref_rev")?)
        .await?;
    let photos = PhotoStore::open(target_photos)?;
    let same_store = source_photos == target_photos;
    let mut written = Vec::new();
    let copied = copy_photos(
        source_photos,
        same_store,
        &photos,
        &mut written,
        &mut report,
    )
    .await;
    if let Err(e) = copied {
        for hash in written {
            if let Err(err) = photos.remove(&hash).await {
                tracing::error!(%hash, error = %err, "photo copied by a failed migration left in the target store");
            }
        }
        return Err(e);
    }
    target.commit().await?;
    Ok(report)
}

/// Copies every complete photo (and its thumbnail) the target lacks, each
/// checked against its name before and after; `written` collects what was
/// put, for removal if the move fails. With the same store on both sides the
/// photos are only checked.
async fn copy_photos(
    from: &PhotoBackend,
    same_store: bool,
    target: &PhotoStore,
    written: &mut Vec<PhotoHash>,
    report: &mut TransferReport,
) -> Result<(), TransferError> {
    let source = PhotoStore::open(from)?;
    for (hash, _) in source.list_photos().await? {
        let Some(data) = source.photo(&hash).await? else {
            continue;
        };
        if PhotoHash::of(&data) != hash {
            return Err(TransferError::Mismatch(format!(
                "la photo {hash} de la source ne correspond pas à son empreinte"
            )));
        }
        report.photos += 1;
        report.photo_bytes += data.len() as u64;
        if same_store || target.is_complete(&hash).await? {
            continue;
        }
        let thumb = source.thumbnail(&hash).await?;
        target.put_checked(&hash, data, thumb).await?;
        written.push(hash.clone());
        let back = target.photo(&hash).await?;
        if back.as_deref().map(PhotoHash::of).as_ref() != Some(&hash) {
            return Err(TransferError::Mismatch(format!(
                "la photo {hash} relue dans la cible ne correspond pas à son empreinte"
            )));
        }
    }
    Ok(())
}
