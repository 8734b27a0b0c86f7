//! The photo store: content-addressed by SHA-256, on any object store the
//! `object_store` crate speaks (a local folder by default, or an
//! S3-compatible bucket), so every server instance sees the same photos.
//!
//! Uploads are resumable by offset on any instance: the bytes received are
//! kept as parts (`parts/<hash>/<offset>`) in the store itself, never on an
//! instance's disk, so a device cut off from one instance resumes on another
//! from the last byte kept. When the parts reach the announced size they
//! are checked against the hash, the photo is written under its name
//! (`<2 first hex>/<hash>`), its JPEG thumbnail beside it
//! (`thumbs/<hash>.jpg`), and the parts are deleted. Nothing here knows who
//! may see a photo: that is the service's rule.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use bilan_shared::ids::PhotoHash;
use bytes::Bytes;
use futures_util::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use sha2::{Digest, Sha256};

use crate::config::PhotoBackend;
use crate::error::StoreError;

/// Longest side of a thumbnail, in pixels.
pub const THUMB_SIZE: u32 = 320;

/// Bytes of an upload kept in memory before they are written as a part:
/// a cut loses at most what was not yet written (the device resends it).
pub const PART_BYTES: usize = 1 << 20;

/// The photo store shared by the request handlers (cheap to clone).
#[derive(Clone, Debug)]
pub struct PhotoStore {
    store: Arc<dyn ObjectStore>,
    /// One upload of a given photo at a time on this instance: a resumed
    /// upload waits until the cut one has written everything it received.
    uploads: Arc<std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
}

/// What happened when an upload's parts were put together.
#[derive(Debug, PartialEq)]
pub enum ChunkOutcome {
    /// More bytes are expected; this many are held.
    Partial(u64),
    /// All bytes arrived and hash to the photo's name.
    Complete,
    /// All bytes arrived but hash to something else: the parts are deleted.
    HashMismatch,
}

/// An object store's failure as a storage error: a full or read-only disk,
/// or a remote store that does not answer, is "unavailable" (retry later).
fn store_error(e: object_store::Error) -> StoreError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return StoreError::from(std::io::Error::new(io.kind(), e.to_string()));
        }
        source = s.source();
    }
    StoreError::Unavailable(format!("photos : {e}"))
}

impl PhotoStore {
    /// Opens the store `backend` names (a local folder is created).
    pub fn open(backend: &PhotoBackend) -> Result<Self, StoreError> {
        let store: Arc<dyn ObjectStore> =
            match backend {
                PhotoBackend::Local(root) => {
                    std::fs::create_dir_all(root)?;
                    Arc::new(
                        object_store::local::LocalFileSystem::new_with_prefix(root)
                            .map_err(store_error)?
                            .with_fsync(true)
                            .with_automatic_cleanup(true),
                    )
                }
                PhotoBackend::S3 {
                    bucket,
                    endpoint,
                    region,
                    credentials,
                } => {
                    let mut b = object_store::aws::AmazonS3Builder::from_env()
                        .with_bucket_name(bucket)
                        .with_region(region);
                    if let Some((key, secret)) = credentials {
                        b = b.with_access_key_id(key).with_secret_access_key(&secret.0);
                    }
                    if let Some(url) = endpoint {
                        b = b
                            .with_endpoint(url)
                            .with_allow_http(url.starts_with("http://"))
                            .with_virtual_hosted_style_request(false);
                    }
                    Arc::new(b.build().map_err(|e| {
                        StoreError::BadRequest(format!("stockage des photos S3 : {e}"))
                    })?)
                }
            };
        Ok(Self {
            store,
            uploads: Default::default(),
        })
    }

    /// A store in a local folder.
    pub fn local(root: PathBuf) -> Result<Self, StoreError> {
        Self::open(&PhotoBackend::Local(root))
    }

    /// Takes the upload lock of one photo (on this instance).
    pub async fn lock_upload(&self, hash: &PhotoHash) -> tokio::sync::OwnedMutexGuard<()> {
        let m = {
            let mut map = self.uploads.lock().unwrap_or_else(|p| p.into_inner());
            map.retain(|_, m| Arc::strong_count(m) > 1);
            map.entry(hash.as_str().to_string()).or_default().clone()
        };
        m.lock_owned().await
    }

    /// Where a complete photo is (two-level fan-out).
    fn photo_path(hash: &PhotoHash) -> ObjectPath {
        ObjectPath::from(format!("{}/{}", &hash.as_str()[..2], hash.as_str()))
    }

    fn thumb_path(hash: &PhotoHash) -> ObjectPath {
        ObjectPath::from(format!("thumbs/{}.jpg", hash.as_str()))
    }

    fn parts_prefix(hash: &PhotoHash) -> ObjectPath {
        ObjectPath::from(format!("parts/{}", hash.as_str()))
    }

    /// True when the whole photo is stored.
    pub async fn is_complete(&self, hash: &PhotoHash) -> Result<bool, StoreError> {
        match self.store.head(&Self::photo_path(hash)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(store_error(e)),
        }
    }

    /// The parts of an unfinished upload, by offset, each with its size.
    async fn parts(&self, hash: &PhotoHash) -> Result<Vec<(u64, u64, ObjectPath)>, StoreError> {
        let listed: Vec<_> = self
            .store
            .list(Some(&Self::parts_prefix(hash)))
            .try_collect()
            .await
            .map_err(store_error)?;
        let mut parts: Vec<(u64, u64, ObjectPath)> = listed
            .into_iter()
            .filter_map(|m| {
                let offset = m.location.filename()?.parse().ok()?;
                Some((offset, m.size, m.location))
            })
            .collect();
        parts.sort_by_key(|p| p.0);
        Ok(parts)
    }

    /// Bytes already held for an unfinished upload: its parts that follow
    /// each other from 0 (a part that does not join is ignored, and
    /// replaced when the device resends from the offset answered).
    pub async fn received(&self, hash: &PhotoHash) -> Result<u64, StoreError> {
        let mut held = 0;
        for (offset, size, _) in self.parts(hash).await? {
            if offset == held {
                held += size;
            } else if offset > held {
                break;
            }
        }
        Ok(held)
    }

    /// Keeps `bytes`, received at `offset` of the photo, as a part.
    pub async fn write_part(
        &self,
        hash: &PhotoHash,
        offset: u64,
        bytes: Bytes,
    ) -> Result<(), StoreError> {
        if bytes.is_empty() {
            return Ok(());
        }
        let path = Self::parts_prefix(hash).join(format!("{offset:020}"));
        self.store
            .put(&path, PutPayload::from(bytes))
            .await
            .map_err(store_error)?;
        Ok(())
    }

    /// Puts the parts together once they reach `total` bytes: checks the
    /// hash, stores the photo and its thumbnail, deletes the parts.
    pub async fn finish(&self, hash: &PhotoHash, total: u64) -> Result<ChunkOutcome, StoreError> {
        let mut bytes = Vec::with_capacity(total as usize);
        let mut used = Vec::new();
        for (offset, _, path) in self.parts(hash).await? {
            if offset != bytes.len() as u64 {
                continue;
            }
            let part = self
                .store
                .get(&path)
                .await
                .map_err(store_error)?
                .bytes()
                .await
                .map_err(store_error)?;
            bytes.extend_from_slice(&part);
            used.push(path);
        }
        if (bytes.len() as u64) < total {
            return Ok(ChunkOutcome::Partial(bytes.len() as u64));
        }
        let ok =
            hex::encode(Sha256::digest(&bytes)) == hash.as_str() && bytes.len() as u64 == total;
        if ok {
            let bytes = Bytes::from(bytes);
            self.store
                .put(&Self::photo_path(hash), PutPayload::from(bytes.clone()))
                .await
                .map_err(store_error)?;
            let thumb = tokio::task::spawn_blocking(move || {
                bilan_shared::thumbnail::thumbnail_jpeg(&bytes, THUMB_SIZE)
            })
            .await;
            match thumb {
                Ok(Ok(jpeg)) => {
                    if let Err(e) = self
                        .store
                        .put(&Self::thumb_path(hash), PutPayload::from(jpeg))
                        .await
                    {
                        tracing::warn!(%hash, error = %e, "thumbnail not written");
                    }
                }
                Ok(Err(e)) => tracing::info!(%hash, error = %e, "photo without thumbnail"),
                Err(e) => tracing::error!(%hash, error = %e, "thumbnail task panicked"),
            }
        }
        self.delete_parts(hash).await?;
        Ok(if ok {
            ChunkOutcome::Complete
        } else {
            ChunkOutcome::HashMismatch
        })
    }

    async fn delete_parts(&self, hash: &PhotoHash) -> Result<(), StoreError> {
        for (_, _, path) in self.parts(hash).await? {
            match self.store.delete(&path).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(store_error(e)),
            }
        }
        Ok(())
    }

    /// Every complete photo: its hash and size.
    pub async fn list_photos(&self) -> Result<Vec<(PhotoHash, u64)>, StoreError> {
        let listed: Vec<_> = self
            .store
            .list(None)
            .try_collect()
            .await
            .map_err(store_error)?;
        let mut out: Vec<(PhotoHash, u64)> = listed
            .into_iter()
            .filter_map(|m| {
                let mut parts = m.location.parts();
                let fan = parts.next()?;
                let name = parts.next()?;
                if parts.next().is_some() || !name.as_ref().starts_with(fan.as_ref()) {
                    return None;
                }
                Some((name.as_ref().parse().ok()?, m.size))
            })
            .collect();
        out.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
        Ok(out)
    }

    /// Stores a photo whose bytes were checked against its name (a restore),
    /// with its thumbnail when there is one.
    pub async fn put_checked(
        &self,
        hash: &PhotoHash,
        bytes: Bytes,
        thumb: Option<Bytes>,
    ) -> Result<(), StoreError> {
        self.store
            .put(&Self::photo_path(hash), PutPayload::from(bytes))
            .await
            .map_err(store_error)?;
        if let Some(t) = thumb {
            self.store
                .put(&Self::thumb_path(hash), PutPayload::from(t))
                .await
                .map_err(store_error)?;
        }
        Ok(())
    }

    /// Removes a photo and its thumbnail (a migration undoing what it
    /// copied); a missing one is not an error.
    pub async fn remove(&self, hash: &PhotoHash) -> Result<(), StoreError> {
        for path in [Self::photo_path(hash), Self::thumb_path(hash)] {
            match self.store.delete(&path).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(store_error(e)),
            }
        }
        Ok(())
    }

    /// A stored photo's bytes.
    pub async fn photo(&self, hash: &PhotoHash) -> Result<Option<Bytes>, StoreError> {
        self.read(&Self::photo_path(hash)).await
    }

    /// A stored photo's thumbnail (JPEG).
    pub async fn thumbnail(&self, hash: &PhotoHash) -> Result<Option<Bytes>, StoreError> {
        self.read(&Self::thumb_path(hash)).await
    }

    async fn read(&self, path: &ObjectPath) -> Result<Option<Bytes>, StoreError> {
        match self.store.get(path).await {
            Ok(r) => Ok(Some(r.bytes().await.map_err(store_error)?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(store_error(e)),
        }
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

/// The range a device sends when the server already holds every byte but
/// has not put them together (it failed to, a full disk for one): `bytes
/// TOTAL-(TOTAL-1)/TOTAL`, nothing in the body. Read as (TOTAL, TOTAL - 1,
/// TOTAL), so the upload resumes at its end and finishes.
pub fn parse_finishing_range(v: &str) -> Option<(u64, u64, u64)> {
    let rest = v.trim().strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let (start, end) = range.split_once('-')?;
    let (start, end, total): (u64, u64, u64) =
        (start.parse().ok()?, end.parse().ok()?, total.parse().ok()?);
    (total > 0 && start == total && end == total - 1).then_some((start, end, total))
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
        assert_eq!(parse_finishing_range("bytes 10-9/10"), Some((10, 9, 10)));
        assert_eq!(parse_finishing_range("bytes 9-8/10"), None);
        assert_eq!(
            parse_finishing_range("bytes 0-18446744073709551615/0"),
            None
        );
    }

    fn png() -> Vec<u8> {
        let mut png = Vec::new();
        image::RgbImage::new(640, 480)
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        png
    }

    #[tokio::test]
    async fn wrong_bytes_are_refused_and_right_bytes_are_kept_with_a_thumbnail() {
        let dir = tempfile::tempdir().unwrap();
        let store = PhotoStore::local(dir.path().to_path_buf()).unwrap();
        let png = png();
        let hash = PhotoHash::of(&png);
        let wrong = Bytes::from(vec![7u8; png.len()]);
        store.write_part(&hash, 0, wrong).await.unwrap();
        assert_eq!(
            store.finish(&hash, png.len() as u64).await.unwrap(),
            ChunkOutcome::HashMismatch
        );
        assert_eq!(store.received(&hash).await.unwrap(), 0);
        assert!(!store.is_complete(&hash).await.unwrap());
        store
            .write_part(&hash, 0, Bytes::from(png.clone()))
            .await
            .unwrap();
        assert_eq!(
            store.finish(&hash, png.len() as u64).await.unwrap(),
            ChunkOutcome::Complete
        );
        assert!(store.is_complete(&hash).await.unwrap());
        assert_eq!(store.photo(&hash).await.unwrap().unwrap(), png);
        let thumb = store.thumbnail(&hash).await.unwrap().unwrap();
        assert_eq!(image::load_from_memory(&thumb).unwrap().width(), THUMB_SIZE);
        assert_eq!(store.received(&hash).await.unwrap(), 0, "parts deleted");
    }

    /// Parts written by one instance are seen by another on the same
    /// store: the second resumes from the first's offset and completes.
    #[tokio::test]
    async fn an_upload_begun_on_one_instance_resumes_on_another() {
        let dir = tempfile::tempdir().unwrap();
        let a = PhotoStore::local(dir.path().to_path_buf()).unwrap();
        let b = PhotoStore::local(dir.path().to_path_buf()).unwrap();
        let png = png();
        let hash = PhotoHash::of(&png);
        let half = png.len() / 2;
        a.write_part(&hash, 0, Bytes::copy_from_slice(&png[..half]))
            .await
            .unwrap();
        assert_eq!(
            a.finish(&hash, png.len() as u64).await.unwrap(),
            ChunkOutcome::Partial(half as u64)
        );
        let held = b.received(&hash).await.unwrap();
        assert_eq!(held, half as u64);
        b.write_part(&hash, held, Bytes::copy_from_slice(&png[half..]))
            .await
            .unwrap();
        assert_eq!(
            b.finish(&hash, png.len() as u64).await.unwrap(),
            ChunkOutcome::Complete
        );
        assert_eq!(a.photo(&hash).await.unwrap().unwrap(), png);
    }
}
