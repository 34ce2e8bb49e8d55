//! The data folder: `numcheck.db` (SQLite), `blobs/` (uploads, chunk outputs, results),
//! `tmp/` (results being assembled), `secret.key` (signs result links) and `numcheck.lock`
//! (held by the one `serve` that owns the folder). A missing folder is created and migrated.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use numcheck_blob::BlobStore;
use numcheck_store::{PgStore, SqliteStore, Store};

use crate::keys::random_bytes;
use crate::signing::LinkSigner;

/// An opened data folder.
#[derive(Debug)]
pub struct DataDir {
    pub path: PathBuf,
    pub store: Arc<dyn Store>,
    /// The same store, when it is the folder's own SQLite database (its knobs: the evidence
    /// presence filter).
    pub embedded: Option<Arc<SqliteStore>>,
    /// The database is shared with other nodes (PostgreSQL): no folder lock, and leases are
    /// taken back only when they expire.
    pub shared: bool,
    pub blobs: BlobStore,
    pub signer: LinkSigner,
    /// The folder of a local blob store, where one is used.
    local_blobs: Option<PathBuf>,
    lock: Option<File>,
}

impl DataDir {
    /// Opens the folder, creating and migrating what is missing.
    pub async fn open(path: &Path) -> anyhow::Result<DataDir> {
        std::fs::create_dir_all(path)
            .with_context(|| format!("cannot create data folder {}", path.display()))?;
        std::fs::create_dir_all(path.join("tmp"))?;
        let store = Arc::new(open_sqlite(path).await?);
        let blobs = BlobStore::local(&path.join("blobs"))?;
        let signer = LinkSigner::new(load_or_create_secret(&path.join("secret.key"))?);
        Ok(DataDir {
            path: path.to_owned(),
            store: store.clone(),
            embedded: Some(store),
            shared: false,
            blobs,
            signer,
            local_blobs: Some(path.join("blobs")),
            lock: None,
        })
    }

    /// Opens what the configuration names: the folder's SQLite and blobs by default, or a
    /// shared PostgreSQL (`database_url`) and S3-compatible bucket (`blob_url`). The folder
    /// still holds `tmp/` (results being assembled) and the link-signing secret.
    pub async fn open_config(config: &crate::Config) -> anyhow::Result<DataDir> {
        if config.database_url.is_none() && config.blob_url.is_none() {
            return Self::open(&config.data_dir).await;
        }
        let path = &config.data_dir;
        std::fs::create_dir_all(path.join("tmp"))
            .with_context(|| format!("cannot create data folder {}", path.display()))?;
        let (store, embedded): (Arc<dyn Store>, _) = match &config.database_url {
            Some(url) => (
                Arc::new(
                    PgStore::connect(url)
                        .await
                        .context("cannot open the PostgreSQL database (database_url)")?,
                ),
                None,
            ),
            None => {
                let sqlite = Arc::new(open_sqlite(path).await?);
                (sqlite.clone(), Some(sqlite))
            }
        };
        let shared = embedded.is_none();
        let (blobs, local_blobs) = match &config.blob_url {
            Some(url) => {
                let blobs =
                    BlobStore::from_url(url).context("cannot open the blob store (blob_url)")?;
                (blobs, numcheck_blob::local_dir(url))
            }
            None => (
                BlobStore::local(&path.join("blobs"))?,
                Some(path.join("blobs")),
            ),
        };
        let signer = LinkSigner::new(load_or_create_secret(&path.join("secret.key"))?);
        Ok(DataDir {
            path: path.to_owned(),
            store,
            embedded,
            shared,
            blobs,
            signer,
            local_blobs,
            lock: None,
        })
    }

    /// Takes the folder for one server process. A second `serve` on the same folder stops
    /// here instead of racing the first one's workers.
    pub fn lock(&mut self) -> anyhow::Result<()> {
        let path = self.path.join("numcheck.lock");
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
                "another numcheck server is using the data folder {}",
                self.path.display()
            ),
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(e).context("cannot lock the data folder");
            }
        }
        self.lock = Some(file);
        Ok(())
    }

    /// Whether this process holds the folder's lock (see [`DataDir::lock`]).
    pub fn is_locked(&self) -> bool {
        self.lock.is_some()
    }

    /// The folder of a local blob store (`None` for a bucket).
    pub fn local_blob_dir(&self) -> Option<PathBuf> {
        self.local_blobs.clone()
    }

    /// Where results are assembled before they are published.
    pub fn tmp_dir(&self) -> PathBuf {
        self.path.join("tmp")
    }
}

async fn open_sqlite(folder: &Path) -> anyhow::Result<SqliteStore> {
    SqliteStore::open(&folder.join("numcheck.db"))
        .await
        .with_context(|| format!("cannot open the database in {}", folder.display()))
}

fn load_or_create_secret(path: &Path) -> anyhow::Result<[u8; 32]> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let bytes = hex::decode(text.trim()).context("secret.key is not hex")?;
            bytes
                .try_into()
                .map_err(|_| anyhow::anyhow!("secret.key must hold 32 bytes in hex"))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let secret = random_bytes::<32>()?;
            let tmp = path.with_extension("key.tmp");
            {
                let mut f = File::create(&tmp)?;
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt;
                    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
                }
                f.write_all(hex::encode(secret).as_bytes())?;
                f.sync_all()?;
            }
            // Two processes starting at once: the first rename wins, both read the winner.
            if std::fs::hard_link(&tmp, path).is_err() {
                std::fs::remove_file(&tmp)?;
                return load_or_create_secret(path);
            }
            std::fs::remove_file(&tmp)?;
            Ok(secret)
        }
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_fresh_folder_is_created_and_its_secret_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new").join("data");
        let a = DataDir::open(&path).await.unwrap();
        assert!(path.join("numcheck.db").exists());
        let secret = std::fs::read_to_string(path.join("secret.key")).unwrap();
        drop(a);
        let _b = DataDir::open(&path).await.unwrap();
        assert_eq!(
            std::fs::read_to_string(path.join("secret.key")).unwrap(),
            secret
        );
    }

    #[tokio::test]
    async fn only_one_server_can_lock_a_folder() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = DataDir::open(dir.path()).await.unwrap();
        let mut b = DataDir::open(dir.path()).await.unwrap();
        a.lock().unwrap();
        assert!(b.lock().is_err());
    }
}
