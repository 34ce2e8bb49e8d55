//! numcheck's blob store: uploads, per-chunk outputs and result zips.
//!
//! A thin wrapper over `object_store`, so the same code writes to a local folder (the
//! embedded default) or to an S3-compatible bucket. Writes stream in parts and become visible
//! only when finished; nothing here holds a whole upload or result in memory. Keys are built
//! by the caller from validated ids only, never from user-supplied text.

mod config;

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use object_store::aws::AmazonS3;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::prefix::PrefixStore;
use object_store::signer::{Method, Signer};
use object_store::{ObjectStore, ObjectStoreExt, WriteMultipart};

/// What can go wrong with blobs.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// The blob does not exist; carries its key.
    #[error("blob not found: {0}")]
    NotFound(String),
    /// The backend (local folder or bucket) failed.
    #[error("blob store error: {0}")]
    Store(#[from] object_store::Error),
    /// A local file could not be read or written.
    #[error("blob store I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// A blob store URL given to [`BlobStore::from_url`] is malformed or unsupported. The
    /// message names the offending part but never repeats a credential.
    #[error("invalid blob store URL: {0}")]
    InvalidUrl(String),
}

impl BlobError {
    fn from_store(key: &str, e: object_store::Error) -> Self {
        match e {
            object_store::Error::NotFound { .. } => BlobError::NotFound(key.to_owned()),
            other => BlobError::Store(other),
        }
    }
}

/// Results of blob operations.
pub type Result<T, E = BlobError> = std::result::Result<T, E>;

/// Size of the parts a streamed write is cut into.
const PART_BYTES: usize = 5 * 1024 * 1024;

/// A handle on the blob store; cheap to clone.
///
/// Its `Debug` output names the backend (folder, or bucket and endpoint) and never a
/// credential.
#[derive(Clone)]
pub struct BlobStore {
    inner: Arc<dyn ObjectStore>,
    /// Set for S3 buckets: signs presigned URLs.
    remote: Option<Remote>,
    /// What `Debug` shows: no secrets.
    label: Arc<str>,
}

/// The signing side of an S3 store.
#[derive(Clone)]
struct Remote {
    s3: Arc<AmazonS3>,
    /// Key prefix inside the bucket (from `s3://bucket/prefix`), if any.
    prefix: Option<ObjectPath>,
}

impl std::fmt::Debug for BlobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobStore")
            .field("backend", &self.label)
            .finish_non_exhaustive()
    }
}

impl BlobStore {
    /// Blobs in a local folder (created when missing).
    pub fn local(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        let fs = LocalFileSystem::new_with_prefix(dir)?.with_automatic_cleanup(true);
        Ok(BlobStore {
            inner: Arc::new(fs),
            remote: None,
            label: format!("local:{}", dir.display()).into(),
        })
    }

    /// Wraps any `object_store` backend. Such a store is treated as local: it has no
    /// presigned URLs.
    pub fn from_store(inner: Arc<dyn ObjectStore>) -> Self {
        BlobStore {
            inner,
            remote: None,
            label: "custom".into(),
        }
    }

    /// Opens a blob store from a URL:
    ///
    /// - `file:///srv/numcheck/blobs`, or a plain path: a local folder, as [`BlobStore::local`];
    /// - `s3://bucket[/prefix]?endpoint=http://127.0.0.1:9000&region=us-east-1`: an
    ///   S3-compatible bucket. Optional query parameters: `access_key_id` and
    ///   `secret_access_key` (together), `session_token`, `allow_http=true` (required for an
    ///   `http://` endpoint). Without keys in the URL, credentials come from the standard AWS
    ///   environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, ...). Without `endpoint`,
    ///   AWS itself is used; `region` defaults to `AWS_REGION` or `us-east-1`.
    ///
    /// Unknown query parameters are refused, so a typo does not silently fall back to a default.
    pub fn from_url(url: &str) -> Result<Self> {
        match config::parse(url)? {
            config::Parsed::Local(dir) => BlobStore::local(&dir),
            config::Parsed::S3(cfg) => {
                let label = cfg.label();
                let s3 = Arc::new(cfg.builder().build()?);
                let prefix = cfg.prefix.map(ObjectPath::from);
                let inner: Arc<dyn ObjectStore> = match &prefix {
                    Some(p) => Arc::new(PrefixStore::new(Arc::clone(&s3), p.clone())),
                    None => s3.clone(),
                };
                Ok(BlobStore {
                    inner,
                    remote: Some(Remote { s3, prefix }),
                    label: label.into(),
                })
            }
        }
    }

    /// Whether blobs live in a remote bucket (whose links are presigned by the bucket) rather
    /// than in a local folder (whose links the server signs itself).
    pub fn is_remote(&self) -> bool {
        self.remote.is_some()
    }

    /// A presigned `GET` URL for `key`, valid for `expires_in` (S3 allows at most 7 days):
    /// `Some(url)` for a bucket, `None` for a local store. The blob need not exist yet; the
    /// URL then answers 404.
    pub async fn presigned_get(&self, key: &str, expires_in: Duration) -> Result<Option<String>> {
        let Some(remote) = &self.remote else {
            return Ok(None);
        };
        let path = match &remote.prefix {
            Some(prefix) => prefix
                .parts()
                .chain(ObjectPath::from(key).parts())
                .collect(),
            None => ObjectPath::from(key),
        };
        let url = remote
            .s3
            .signed_url(Method::GET, &path, expires_in)
            .await
            .map_err(|e| BlobError::from_store(key, e))?;
        Ok(Some(url.into()))
    }

    /// Starts a streamed write; the blob appears under `key` only on [`BlobWriter::finish`].
    pub async fn writer(&self, key: &str) -> Result<BlobWriter> {
        let path = ObjectPath::from(key);
        let upload = self
            .inner
            .put_multipart(&path)
            .await
            .map_err(|e| BlobError::from_store(key, e))?;
        Ok(BlobWriter {
            inner: WriteMultipart::new_with_chunk_size(upload, PART_BYTES),
            written: 0,
        })
    }

    /// Writes a small blob in one go.
    pub async fn put(&self, key: &str, data: Bytes) -> Result<()> {
        self.inner
            .put(&ObjectPath::from(key), data.into())
            .await
            .map_err(|e| BlobError::from_store(key, e))?;
        Ok(())
    }

    /// Copies a local file into the store, streaming.
    pub async fn put_file(&self, key: &str, file: &Path) -> Result<u64> {
        use tokio::io::AsyncReadExt;
        let mut f = tokio::fs::File::open(file).await?;
        let mut w = self.writer(key).await?;
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = f.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            w.write(&buf[..n]).await?;
        }
        w.finish().await
    }

    /// Reads a whole blob (for small blobs: chunk outputs).
    pub async fn get(&self, key: &str) -> Result<Bytes> {
        let got = self
            .inner
            .get(&ObjectPath::from(key))
            .await
            .map_err(|e| BlobError::from_store(key, e))?;
        got.bytes().await.map_err(|e| BlobError::from_store(key, e))
    }

    /// Reads a byte range of a blob.
    pub async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes> {
        if range.is_empty() {
            return Ok(Bytes::new());
        }
        self.inner
            .get_range(&ObjectPath::from(key), range)
            .await
            .map_err(|e| BlobError::from_store(key, e))
    }

    /// Streams a blob: its size and its bytes.
    pub async fn stream(&self, key: &str) -> Result<(u64, BoxStream<'static, Result<Bytes>>)> {
        let got = self
            .inner
            .get(&ObjectPath::from(key))
            .await
            .map_err(|e| BlobError::from_store(key, e))?;
        let size = got.meta.size;
        let owned = key.to_owned();
        let stream = got
            .into_stream()
            .map_err(move |e| BlobError::from_store(&owned, e))
            .boxed();
        Ok((size, stream))
    }

    /// Size of a blob, or `None` when it does not exist.
    pub async fn size(&self, key: &str) -> Result<Option<u64>> {
        match self.inner.head(&ObjectPath::from(key)).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(BlobError::Store(e)),
        }
    }

    /// Deletes a blob; deleting a missing blob is not an error.
    pub async fn delete(&self, key: &str) -> Result<()> {
        match self.inner.delete(&ObjectPath::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(BlobError::Store(e)),
        }
    }

    /// Every blob under a prefix (whole path segments, as [`delete_prefix`](Self::delete_prefix)),
    /// with its size and when it was last written. Read in full: for the start-up sweep of
    /// folders whose size is bounded by the tasks in the database.
    pub async fn list(&self, prefix: &str) -> Result<Vec<BlobMeta>> {
        let prefix = ObjectPath::from(prefix);
        Ok(self
            .inner
            .list(Some(&prefix))
            .map_ok(|meta| BlobMeta {
                key: meta.location.to_string(),
                size: meta.size,
                modified: meta.last_modified.into(),
            })
            .try_collect()
            .await?)
    }

    /// Deletes every blob under a prefix (a folder such as `work/<task>/`; prefixes match
    /// whole path segments, so `work/t` does not touch `work/tt/`).
    ///
    /// The listing is read in full before deleting, so a paged bucket listing never races
    /// its own deletes; on S3 the deletes go out in bulk requests.
    pub async fn delete_prefix(&self, prefix: &str) -> Result<()> {
        let prefix = ObjectPath::from(prefix);
        let locations: Vec<ObjectPath> = self
            .inner
            .list(Some(&prefix))
            .map_ok(|meta| meta.location)
            .try_collect()
            .await?;
        if locations.is_empty() {
            return Ok(());
        }
        let mut deleted = self
            .inner
            .delete_stream(futures::stream::iter(locations.into_iter().map(Ok)).boxed());
        while let Some(done) = deleted.next().await {
            match done {
                Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(BlobError::Store(e)),
            }
        }
        Ok(())
    }
}

/// The folder a blob-store URL names when it names a local folder (`file://…` or a plain
/// path); `None` for a bucket or a URL that does not parse.
pub fn local_dir(url: &str) -> Option<std::path::PathBuf> {
    match config::parse(url) {
        Ok(config::Parsed::Local(dir)) => Some(dir),
        _ => None,
    }
}

/// One listed blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobMeta {
    /// Its key, as given to [`BlobStore::put`].
    pub key: String,
    pub size: u64,
    /// When it was last written.
    pub modified: std::time::SystemTime,
}

/// A streamed write in progress. Dropping it without [`finish`](Self::finish) leaves nothing
/// visible; call [`abort`](Self::abort) to clean up staged parts at once.
pub struct BlobWriter {
    inner: WriteMultipart,
    written: u64,
}

impl std::fmt::Debug for BlobWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobWriter")
            .field("written", &self.written)
            .finish()
    }
}

impl BlobWriter {
    /// Appends bytes, waiting when too many parts are in flight.
    pub async fn write(&mut self, data: &[u8]) -> Result<()> {
        self.inner.wait_for_capacity(2).await?;
        self.inner.write(data);
        self.written += data.len() as u64;
        Ok(())
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Completes the write and makes the blob visible; returns its size.
    pub async fn finish(self) -> Result<u64> {
        let n = self.written;
        self.inner.finish().await?;
        Ok(n)
    }

    /// Abandons the write.
    pub async fn abort(self) -> Result<()> {
        self.inner.abort().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store in a fresh folder, kept while the test holds it.
    fn local_store() -> (tempfile::TempDir, BlobStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::local(dir.path()).unwrap();
        (dir, store)
    }

    /// A store holding these blobs.
    async fn store_with(blobs: &[(&str, &'static str)]) -> (tempfile::TempDir, BlobStore) {
        let (dir, store) = local_store();
        for (key, text) in blobs {
            store
                .put(key, Bytes::from_static(text.as_bytes()))
                .await
                .unwrap();
        }
        (dir, store)
    }

    #[tokio::test]
    async fn streamed_writes_become_visible_only_when_finished() {
        let (_dir, store) = local_store();
        let mut w = store.writer("uploads/a.txt").await.unwrap();
        w.write(b"+1415").await.unwrap();
        assert_eq!(store.size("uploads/a.txt").await.unwrap(), None);
        w.write(b"5552671\n").await.unwrap();
        assert_eq!(w.finish().await.unwrap(), 13);
        assert_eq!(
            store.get("uploads/a.txt").await.unwrap(),
            Bytes::from_static(b"+14155552671\n")
        );
        assert_eq!(
            store.get_range("uploads/a.txt", 1..5).await.unwrap(),
            Bytes::from_static(b"1415")
        );
        assert_eq!(
            store.get_range("uploads/a.txt", 3..3).await.unwrap(),
            Bytes::new()
        );
    }

    #[tokio::test]
    async fn aborted_writes_leave_nothing_and_missing_blobs_are_not_found() {
        let (_dir, store) = local_store();
        let mut w = store.writer("uploads/b.txt").await.unwrap();
        w.write(b"x").await.unwrap();
        w.abort().await.unwrap();
        assert_eq!(store.size("uploads/b.txt").await.unwrap(), None);
        assert!(matches!(
            store.get("uploads/b.txt").await,
            Err(BlobError::NotFound(_))
        ));
        store.delete("uploads/b.txt").await.unwrap();
    }

    #[tokio::test]
    async fn list_names_every_blob_under_a_prefix_with_its_size() {
        let (_dir, store) = store_with(&[
            ("work/t/0.csv", "ab"),
            ("work/t/1.csv", "c"),
            ("work/tt/0.csv", "d"),
            ("uploads/x.txt", "e"),
        ])
        .await;
        let mut listed = store.list("work/t").await.unwrap();
        listed.sort_by(|a, b| a.key.cmp(&b.key));
        let keys: Vec<(&str, u64)> = listed.iter().map(|m| (m.key.as_str(), m.size)).collect();
        assert_eq!(keys, vec![("work/t/0.csv", 2), ("work/t/1.csv", 1)]);
        assert_eq!(store.list("work").await.unwrap().len(), 3);
        assert!(store.list("results").await.unwrap().is_empty());
        let age = listed[0].modified.elapsed().unwrap_or_default();
        assert!(age < Duration::from_secs(600), "{age:?}");
    }

    #[tokio::test]
    async fn delete_prefix_removes_a_folder() {
        let (_dir, store) = store_with(&[
            ("work/t/0.csv", "a"),
            ("work/t/1.csv", "b"),
            ("work/u/0.csv", "c"),
        ])
        .await;
        store.delete_prefix("work/t").await.unwrap();
        assert_eq!(store.size("work/t/0.csv").await.unwrap(), None);
        assert_eq!(store.size("work/u/0.csv").await.unwrap(), Some(1));
    }
}
