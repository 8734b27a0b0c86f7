//! Photos: attached to a finding (stored, thumbnailed, queued), the upload
//! queue with its retry times, and what the screens show of them.

use std::path::PathBuf;

use bilan_shared::annotate::{Annotation, Mark};
use bilan_shared::doc::{PhotoRef, now_ms};
use bilan_shared::ids::*;
use rusqlite::{OptionalExtension, params};

use super::{DeviceStore, PendingPhoto, decoded};
use crate::error::{MobileError, Result};

/// Side of the screens' thumbnails, in pixels.
const THUMB_SIZE: u32 = 240;

impl DeviceStore {
    /// Copies a photo into the store (durable before returning), queues it for
    /// upload and references it from the finding. A camera photo is first
    /// reduced as the CS asks ([`bilan_shared::photo_size`]): the reduced
    /// copy is what the finding references and the server gets; the
    /// original stays beside it until that copy is on the server.
    pub fn attach_photo(
        &self,
        id: InspectionId,
        finding: FindingId,
        bytes: &[u8],
        mime: &str,
        caption: &str,
    ) -> Result<PhotoHash> {
        let settings = self.photo_settings();
        let reduced = bilan_shared::photo_size::reduce(bytes, &settings).unwrap_or_else(|e| {
            tracing::info!(error = %e, "photo sent as it is");
            None
        });
        let (upload, mime) = match &reduced {
            Some(small) => (small.as_slice(), "image/jpeg"),
            None => (bytes, mime),
        };
        let original = reduced.as_ref().map(|_| bytes);
        let hash = self.keep_photo(upload, mime, original)?;
        let photo = PhotoRef {
            hash: hash.clone(),
            size: upload.len() as u64,
            mime: mime.to_string(),
            caption: caption.to_string(),
            taken_at: now_ms(),
            annotations: vec![],
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

    /// Draws `marks` on a finding's photo and keeps the drawing as a new
    /// photo (stored and queued for upload like any other), recorded as
    /// that photo's latest annotation. The photo itself is never altered:
    /// each annotation is drawn from it with all its marks. Bad marks, or a
    /// photo this device does not hold, change nothing.
    pub fn annotate_photo(
        &self,
        id: InspectionId,
        finding: FindingId,
        photo: &PhotoHash,
        marks: &[Mark],
    ) -> Result<PhotoHash> {
        let user = self.user()?.ok_or(MobileError::NotLoggedIn)?;
        let doc = self.inspection(id)?;
        let known = doc
            .findings
            .iter()
            .find(|f| f.id == finding)
            .ok_or(bilan_shared::SharedError::UnknownFinding(finding))?
            .photos
            .iter()
            .find(|p| &p.hash == photo)
            .ok_or_else(|| MobileError::Invalid(format!("photo {photo} absente de ce constat")))?;
        if !self.holds_photo(photo) {
            return Err(MobileError::Invalid(
                "cette photo n'est pas sur cette tablette (prise sur un autre appareil) : annotez-la depuis l'appareil qui l'a prise".into(),
            ));
        }
        let drawn = bilan_shared::annotate::render(
            &self.photo_bytes(photo)?,
            marks,
            self.photo_settings().quality,
        )
        .map_err(|e| MobileError::Invalid(e.to_string()))?;
        let hash = self.keep_photo(&drawn, "image/jpeg", None)?;
        if known.annotations.iter().any(|a| a.hash == hash) {
            // The same marks again: that annotation is already the photo's.
            return Ok(hash);
        }
        let annotation = Annotation {
            hash: hash.clone(),
            size: drawn.len() as u64,
            marks: marks.to_vec(),
            made_by: user.id,
            made_at: now_ms(),
        };
        self.edit(id, |d| {
            let p = d
                .finding_mut(finding)?
                .photos
                .iter_mut()
                .find(|p| &p.hash == photo)
                .ok_or(bilan_shared::SharedError::UnknownFinding(finding))?;
            p.annotations.push(annotation);
            Ok(())
        })?;
        Ok(hash)
    }

    /// Whether this device holds a photo's bytes (it took it, or annotated it).
    pub fn holds_photo(&self, hash: &PhotoHash) -> bool {
        self.photo_dir.join(hash.as_str()).is_file()
    }

    /// Stores a photo's bytes under their hash (durable before returning),
    /// with a thumbnail for the screens and, for a reduced photo, the
    /// camera's original beside it, and queues it for upload.
    fn keep_photo(&self, upload: &[u8], mime: &str, original: Option<&[u8]>) -> Result<PhotoHash> {
        let hash = PhotoHash::of(upload);
        let path = self.photo_dir.join(hash.as_str());
        write_durably(&path, upload)?;
        let original = match original {
            Some(bytes) => {
                let at = self.photo_dir.join(format!("{}.original", hash.as_str()));
                write_durably(&at, bytes)?;
                Some(at.to_string_lossy().into_owned())
            }
            None => None,
        };
        let thumb = self.photo_dir.join(format!("{}.thumb.jpg", hash.as_str()));
        if !thumb.exists() {
            // A thumbnail for the screens; a photo that does not decode simply has none.
            match bilan_shared::thumbnail::thumbnail_jpeg(upload, THUMB_SIZE) {
                Ok(jpeg) => {
                    if let Err(e) = std::fs::write(&thumb, jpeg) {
                        tracing::warn!(%hash, error = %e, "thumbnail not written; the photo is kept");
                    }
                }
                Err(e) => tracing::info!(%hash, error = %e, "photo without thumbnail"),
            }
        }
        self.lock().execute(
            "INSERT OR IGNORE INTO photos (hash, path, size, mime, original) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                hash.as_str(),
                path.to_string_lossy(),
                upload.len() as i64,
                mime,
                original
            ],
        )?;
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
            Ok(()) => {
                conn.execute(
                    "UPDATE photos SET uploaded = 1, last_error = NULL WHERE hash = ?1",
                    [hash.as_str()],
                )?;
                drop(conn);
                self.free_original(hash)?;
                return Ok(());
            }
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

    /// The CS's photo settings on this device (the defaults, logged, if
    /// they cannot be read).
    fn photo_settings(&self) -> bilan_shared::photo_size::PhotoSettings {
        match self.cs_settings() {
            Ok(s) => s.photos,
            Err(e) => {
                tracing::warn!(error = %e, "CS settings unreadable; default photo size used");
                Default::default()
            }
        }
    }

    /// The reduced copy of a photo is on the server: its original's space
    /// is freed, unless the CS keeps originals.
    fn free_original(&self, hash: &PhotoHash) -> Result<()> {
        if self.photo_settings().keep_originals {
            return Ok(());
        }
        let original: Option<String> = self
            .lock()
            .query_row(
                "SELECT original FROM photos WHERE hash = ?1",
                [hash.as_str()],
                |r| r.get(0),
            )
            .optional()?
            .flatten();
        let Some(path) = original else {
            return Ok(());
        };
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(%hash, %path, error = %e, "original photo not deleted");
                return Ok(());
            }
        }
        self.lock().execute(
            "UPDATE photos SET original = NULL WHERE hash = ?1",
            [hash.as_str()],
        )?;
        Ok(())
    }

    /// The camera's original of a reduced photo, while the device keeps it.
    pub fn original_of(&self, hash: &PhotoHash) -> Result<Option<PathBuf>> {
        Ok(self
            .lock()
            .query_row(
                "SELECT original FROM photos WHERE hash = ?1",
                [hash.as_str()],
                |r| r.get::<_, Option<String>>(0),
            )
            .optional()?
            .flatten()
            .map(PathBuf::from))
    }

    /// The photo's thumbnail as a `data:` URL the screens can show offline.
    pub fn thumbnail_data_url(&self, hash: &PhotoHash) -> Option<String> {
        let bytes =
            std::fs::read(self.photo_dir.join(format!("{}.thumb.jpg", hash.as_str()))).ok()?;
        Some(data_url("image/jpeg", &bytes))
    }

    /// A photo this device holds, to draw on: a `data:` URL of its bytes
    /// and its size in pixels (upright: the device's photos are).
    pub fn photo_view(&self, hash: &PhotoHash) -> Result<PhotoView> {
        let bytes = self.photo_bytes(hash)?;
        let (width, height) = image::ImageReader::new(std::io::Cursor::new(&bytes))
            .with_guessed_format()?
            .into_dimensions()
            .map_err(|e| MobileError::Invalid(format!("photo illisible : {e}")))?;
        let mime = self
            .lock()
            .query_row(
                "SELECT mime FROM photos WHERE hash = ?1",
                [hash.as_str()],
                |r| r.get::<_, String>(0),
            )
            .optional()?
            .unwrap_or_else(|| "image/jpeg".into());
        Ok(PhotoView {
            data_url: data_url(&mime, &bytes),
            width,
            height,
        })
    }

    /// Reads a stored photo.
    pub fn photo_bytes(&self, hash: &PhotoHash) -> Result<Vec<u8>> {
        Ok(std::fs::read(self.photo_dir.join(hash.as_str()))?)
    }
}

/// A photo as a screen draws it (see [`DeviceStore::photo_view`]).
#[derive(Clone, Debug, PartialEq)]
pub struct PhotoView {
    pub data_url: String,
    pub width: u32,
    pub height: u32,
}

fn data_url(mime: &str, bytes: &[u8]) -> String {
    use base64::Engine;
    format!(
        "data:{mime};base64,{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

/// Writes `bytes` to `path` durably (a temporary file synced, then
/// renamed), unless a file is there already (photos are named by hash).
fn write_durably(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    if path.exists() {
        return Ok(());
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    Ok(())
}
