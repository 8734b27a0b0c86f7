//! The photo store on disk: content-addressed by SHA-256, uploads resumable
//! (bytes are appended to `partial/<hash>` as they arrive, so a cut upload
//! keeps what was received), verified before they become visible, with a JPEG
//! thumbnail made on completion.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use bilan_shared::ids::PhotoHash;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

/// Where photos live.
#[derive(Clone, Debug)]
pub struct PhotoStore {
    root: PathBuf,
    /// One upload of a given photo at a time: a resumed upload waits until the
    /// cut one has written everything it received.
    uploads:
        std::sync::Arc<std::sync::Mutex<HashMap<String, std::sync::Arc<tokio::sync::Mutex<()>>>>>,
}

/// What happened to an upload chunk.
#[derive(Debug, PartialEq)]
pub enum ChunkOutcome {
    /// More bytes are expected; this many are held.
    Partial(u64),
    /// All bytes arrived and hash to the photo's name.
    Complete,
    /// All bytes arrived but hash to something else: the partial file is deleted.
    HashMismatch,
}

/// Longest side of a thumbnail, in pixels.
pub const THUMB_SIZE: u32 = 320;

impl PhotoStore {
    pub fn new(root: PathBuf) -> std::io::Result<Self> {
        std::fs::create_dir_all(root.join("partial"))?;
        std::fs::create_dir_all(root.join("thumbs"))?;
        Ok(Self {
            root,
            uploads: Default::default(),
        })
    }

    /// Takes the upload lock of one photo.
    pub async fn lock_upload(&self, hash: &PhotoHash) -> tokio::sync::OwnedMutexGuard<()> {
        let m = {
            let mut map = self.uploads.lock().unwrap_or_else(|p| p.into_inner());
            map.retain(|_, m| std::sync::Arc::strong_count(m) > 1);
            map.entry(hash.as_str().to_string()).or_default().clone()
        };
        m.lock_owned().await
    }

    /// Final path of a complete photo (two-level fan-out).
    pub fn path(&self, hash: &PhotoHash) -> PathBuf {
        self.root.join(&hash.as_str()[..2]).join(hash.as_str())
    }

    fn partial(&self, hash: &PhotoHash) -> PathBuf {
        self.root.join("partial").join(hash.as_str())
    }

    /// Thumbnail path (JPEG).
    pub fn thumb_path(&self, hash: &PhotoHash) -> PathBuf {
        self.root
            .join("thumbs")
            .join(format!("{}.jpg", hash.as_str()))
    }

    /// True when the whole photo is stored.
    pub fn is_complete(&self, hash: &PhotoHash) -> bool {
        self.path(hash).is_file()
    }

    /// Bytes already held for an unfinished upload.
    pub async fn received(&self, hash: &PhotoHash) -> u64 {
        tokio::fs::metadata(self.partial(hash))
            .await
            .map(|m| m.len())
            .unwrap_or(0)
    }

    /// Opens the partial file for appending.
    pub async fn open_append(&self, hash: &PhotoHash) -> std::io::Result<tokio::fs::File> {
        tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.partial(hash))
            .await
    }

    /// Writes a chunk durably.
    pub async fn write_chunk(file: &mut tokio::fs::File, chunk: &[u8]) -> std::io::Result<()> {
        file.write_all(chunk).await?;
        file.flush().await
    }

    /// Called when the partial file reached the announced total: checks the
    /// hash, moves the file into place and makes the thumbnail.
    pub async fn finish(&self, hash: &PhotoHash) -> std::io::Result<ChunkOutcome> {
        let partial = self.partial(hash);
        let (ok, bytes) = {
            let bytes = tokio::fs::read(&partial).await?;
            let digest = hex::encode(Sha256::digest(&bytes));
            (digest == hash.as_str(), bytes)
        };
        if !ok {
            tokio::fs::remove_file(&partial).await?;
            return Ok(ChunkOutcome::HashMismatch);
        }
        let dest = self.path(hash);
        if let Some(dir) = dest.parent() {
            tokio::fs::create_dir_all(dir).await?;
        }
        let f = tokio::fs::File::open(&partial).await?;
        f.sync_all().await?;
        tokio::fs::rename(&partial, &dest).await?;
        let thumb = self.thumb_path(hash);
        tokio::task::spawn_blocking(move || make_thumbnail(&bytes, &thumb))
            .await
            .ok();
        Ok(ChunkOutcome::Complete)
    }
}

/// Writes the photo's thumbnail; a photo that does not decode simply has none.
pub fn make_thumbnail(bytes: &[u8], dest: &Path) {
    match bilan_shared::thumbnail::thumbnail_jpeg(bytes, THUMB_SIZE) {
        Ok(jpeg) => {
            if let Err(e) = std::fs::write(dest, jpeg) {
                tracing::warn!(error = %e, "thumbnail not written");
            }
        }
        Err(e) => tracing::info!(error = %e, "photo is not a decodable image; no thumbnail"),
    }
}

/// Parses `Content-Range: bytes START-END/TOTAL` (END inclusive).
pub fn parse_content_range(v: &str) -> Option<(u64, u64, u64)> {
    let rest = v.trim().strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let (start, end) = range.split_once('-')?;
    let (start, end, total) = (start.parse().ok()?, end.parse().ok()?, total.parse().ok()?);
    (start <= end && end < total).then_some((start, end, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_parses_and_rejects_nonsense() {
        assert_eq!(parse_content_range("bytes 0-9/10"), Some((0, 9, 10)));
        assert_eq!(parse_content_range("bytes 5-9/10"), Some((5, 9, 10)));
        assert_eq!(parse_content_range("bytes 9-5/10"), None);
        assert_eq!(parse_content_range("bytes 0-10/10"), None);
        assert_eq!(parse_content_range("items 0-1/2"), None);
    }

    #[tokio::test]
    async fn wrong_bytes_are_refused_and_right_bytes_are_kept_with_a_thumbnail() {
        let dir = tempfile::tempdir().unwrap();
        let store = PhotoStore::new(dir.path().to_path_buf()).unwrap();
        let mut png = Vec::new();
        image::RgbImage::new(640, 480)
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        let hash = PhotoHash::of(&png);
        let mut f = store.open_append(&hash).await.unwrap();
        PhotoStore::write_chunk(&mut f, b"not the photo")
            .await
            .unwrap();
        assert_eq!(
            store.finish(&hash).await.unwrap(),
            ChunkOutcome::HashMismatch
        );
        assert_eq!(store.received(&hash).await, 0);
        let mut f = store.open_append(&hash).await.unwrap();
        PhotoStore::write_chunk(&mut f, &png).await.unwrap();
        assert_eq!(store.finish(&hash).await.unwrap(), ChunkOutcome::Complete);
        assert_eq!(std::fs::read(store.path(&hash)).unwrap(), png);
        let thumb = image::open(store.thumb_path(&hash)).unwrap();
        assert_eq!(thumb.width(), THUMB_SIZE);
    }
}
