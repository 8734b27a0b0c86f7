//! Photos: attached to a finding (stored, thumbnailed, queued), the upload
//! queue with its retry times, and what the screens show of them.

use std::path::PathBuf;

use bilan_shared::doc::{PhotoRef, now_ms};
use bilan_shared::ids::*;
use rusqlite::params;

use super::{DeviceStore, PendingPhoto, decoded};
use crate::error::Result;

/// Side of the screens' thumbnails, in pixels.
const THUMB_SIZE: u32 = 240;

impl DeviceStore {
    /// Copies a photo into the store (durable before returning), queues it for
    /// upload and references it from the finding.
    pub fn attach_photo(
        &self,
        id: InspectionId,
        finding: FindingId,
        bytes: &[u8],
        mime: &str,
        caption: &str,
    ) -> Result<PhotoHash> {
        let hash = PhotoHash::of(bytes);
        let path = self.photo_dir.join(hash.as_str());
        if !path.exists() {
            let tmp = self.photo_dir.join(format!("{}.tmp", hash.as_str()));
            {
                use std::io::Write;
                let mut f = std::fs::File::create(&tmp)?;
                f.write_all(bytes)?;
                f.sync_all()?;
            }
            std::fs::rename(&tmp, &path)?;
        }
        let thumb = self.photo_dir.join(format!("{}.thumb.jpg", hash.as_str()));
        if !thumb.exists() {
            // A thumbnail for the screens; a photo that does not decode simply has none.
            match bilan_shared::thumbnail::thumbnail_jpeg(bytes, THUMB_SIZE) {
                Ok(jpeg) => {
                    if let Err(e) = std::fs::write(&thumb, jpeg) {
                        tracing::warn!(%hash, error = %e, "thumbnail not written; the photo is kept");
                    }
                }
                Err(e) => tracing::info!(%hash, error = %e, "photo without thumbnail"),
            }
        }
        self.lock().execute(
            "INSERT OR IGNORE INTO photos (hash, path, size, mime) VALUES (?1, ?2, ?3, ?4)",
            params![
                hash.as_str(),
                path.to_string_lossy(),
                bytes.len() as i64,
                mime
            ],
        )?;
        let photo = PhotoRef {
            hash: hash.clone(),
            size: bytes.len() as u64,
            mime: mime.to_string(),
            caption: caption.to_string(),
            taken_at: now_ms(),
        };
        self.edit(id, |d| {
            let f = d.finding_mut(finding)?;
            if !f.photos.iter().any(|p| p.hash == photo.hash) {
                f.photos.push(photo);
            }
            Ok(())
        })?;
        Ok(hash)
    }

    /// Photos not yet on the server whose retry time has come.
    pub fn photos_to_upload(&self, now: i64) -> Result<Vec<PendingPhoto>> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT hash, path, size, mime, attempts FROM photos WHERE uploaded = 0 AND next_attempt_ms <= ?1 ORDER BY rowid",
        )?;
        let rows = stmt
            .query_map([now], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, i64>(4)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?
            .into_iter()
            .filter_map(|(h, p, s, m, a)| {
                Some(PendingPhoto {
                    hash: decoded("photos.hash", &h, h.parse())?,
                    path: PathBuf::from(p),
                    size: s as u64,
                    mime: m,
                    attempts: a as u32,
                })
            })
            .collect();
        Ok(rows)
    }

    /// Records an upload outcome. A failure pushes the next attempt back
    /// exponentially (2 s, 4 s, ... up to 5 minutes).
    pub fn photo_outcome(
        &self,
        hash: &PhotoHash,
        result: std::result::Result<(), String>,
    ) -> Result<()> {
        let conn = self.lock();
        match result {
            Ok(()) => conn.execute(
                "UPDATE photos SET uploaded = 1, last_error = NULL WHERE hash = ?1",
                [hash.as_str()],
            )?,
            Err(e) => {
                let attempts: i64 = conn.query_row(
                    "SELECT attempts FROM photos WHERE hash = ?1",
                    [hash.as_str()],
                    |r| r.get(0),
                )?;
                let delay = (2_000i64 << attempts.min(8)).min(300_000);
                conn.execute(
                    "UPDATE photos SET attempts = attempts + 1, next_attempt_ms = ?2, last_error = ?3 WHERE hash = ?1",
                    params![hash.as_str(), now_ms() + delay, e],
                )?
            }
        };
        Ok(())
    }

    /// The photo's thumbnail as a `data:` URL the screens can show offline.
    pub fn thumbnail_data_url(&self, hash: &PhotoHash) -> Option<String> {
        use base64::Engine;
        let bytes =
            std::fs::read(self.photo_dir.join(format!("{}.thumb.jpg", hash.as_str()))).ok()?;
        Some(format!(
            "data:image/jpeg;base64,{}",
            base64::engine::general_purpose::STANDARD.encode(bytes)
        ))
    }

    /// Reads a stored photo.
    pub fn photo_bytes(&self, hash: &PhotoHash) -> Result<Vec<u8>> {
        Ok(std::fs::read(self.photo_dir.join(hash.as_str()))?)
    }
}
