//! Moving a deployment from embedded SQLite to PostgreSQL and its photos to
//! another photo store (`bilan-server migrate-to-postgres`).
//!
//! What belongs here is the sequence of the move; `cells` holds what the
//! engines' sides share (the tables to move and their order, a row as plain
//! [`Cell`]s, the order-free digest both sides are compared by, the
//! errors). Reading SQLite is `sqlite::export`, writing PostgreSQL is
//! `postgres::import`; both depend on `cells`, not on this module.
//!
//! The move reads a consistent copy of the SQLite database (taken while the
//! server may still be serving), writes every table into PostgreSQL in one
//! transaction that also creates the schema, reads each table back and
//! compares row counts and digests, copies every photo (checked against its
//! SHA-256 name before and after), and only then commits. A failed check
//! rolls the transaction back and removes the photos it had copied: the
//! target is left as it was.

pub mod cells;

use std::path::Path;

use bilan_shared::ids::PhotoHash;

pub use cells::{Cell, SQLITE_ONLY_META, TABLES, TransferError, TransferReport, digest};

use crate::config::PhotoBackend;
use crate::photos::PhotoStore;

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
