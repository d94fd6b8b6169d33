//! The media file store: bytes on disk under `<data_dir>/media/ab/cd/<sha256>`, named by their
//! SHA-256, so identical uploads share one file. A file is written under `media/tmp/`, hashed as
//! it is written, synced, then renamed into place: a reader never sees half a file, and a failed
//! upload leaves nothing behind.

use std::path::{Path, PathBuf};

use anyhow::Context;
use rand::{Rng, distributions::Alphanumeric};
use sha2::{Digest, Sha256};
use tokio::{
    fs::File,
    io::{AsyncWriteExt, BufWriter},
};

/// Writes to the temporary file go through a buffer this large, so a stream of small body chunks
/// does not become as many trips to the blocking thread pool.
const WRITE_BUFFER: usize = 256 << 10;

/// The directory of media files.
pub struct MediaStore {
    root: PathBuf,
}

/// A file now in the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stored {
    /// Lower-case hex SHA-256 of the bytes, the file's name.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
}

impl MediaStore {
    /// Creates `<data_dir>/media` and its `tmp` directory if needed.
    pub fn open(data_dir: &Path) -> anyhow::Result<MediaStore> {
        let root = data_dir.join("media");
        std::fs::create_dir_all(root.join("tmp"))
            .with_context(|| format!("creating the media directory {}", root.display()))?;
        Ok(MediaStore { root })
    }

    /// Where the file with this hash lives. `sha256` comes from the database, which only ever
    /// holds hashes this store computed; anything else is refused rather than joined to a path.
    pub fn path(&self, sha256: &str) -> anyhow::Result<PathBuf> {
        anyhow::ensure!(
            sha256.len() == 64 && sha256.bytes().all(|b| b.is_ascii_hexdigit()),
            "not a SHA-256 digest: {sha256:?}"
        );
        Ok(self.root.join(&sha256[0..2]).join(&sha256[2..4]).join(sha256))
    }

    /// Opens a stored file for reading.
    pub async fn open_file(&self, sha256: &str) -> anyhow::Result<File> {
        let path = self.path(sha256)?;
        File::open(&path).await.with_context(|| format!("opening media file {}", path.display()))
    }

    /// Starts writing a new file.
    pub async fn incoming(&self) -> anyhow::Result<Incoming> {
        let name: String = rand::thread_rng().sample_iter(&Alphanumeric).take(24).map(char::from).collect();
        let path = self.root.join("tmp").join(name);
        let file = File::create(&path)
            .await
            .with_context(|| format!("creating temporary media file {}", path.display()))?;
        Ok(Incoming {
            file: BufWriter::with_capacity(WRITE_BUFFER, file),
            temp: TempPath(Some(path)),
            hasher: Sha256::new(),
            size: 0,
        })
    }

    /// Stores `bytes` (a generated thumbnail) in one go.
    pub async fn put(&self, bytes: &[u8]) -> anyhow::Result<Stored> {
        let mut incoming = self.incoming().await?;
        incoming.write(bytes).await?;
        incoming.persist(self).await
    }
}

/// A file being written to the store: hashed and counted as it goes, deleted if dropped before
/// [`persist`](Incoming::persist).
pub struct Incoming {
    file: BufWriter<File>,
    temp: TempPath,
    hasher: Sha256,
    size: u64,
}

impl Incoming {
    /// Appends a chunk.
    pub async fn write(&mut self, chunk: &[u8]) -> anyhow::Result<()> {
        self.hasher.update(chunk);
        self.size += chunk.len() as u64;
        self.file.write_all(chunk).await.context("writing a temporary media file")
    }

    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Syncs the file and moves it to its content address. If a file with the same bytes is
    /// there already, that one is kept and this one dropped.
    pub async fn persist(mut self, store: &MediaStore) -> anyhow::Result<Stored> {
        self.file.flush().await.context("flushing a temporary media file")?;
        self.file.get_ref().sync_all().await.context("syncing a temporary media file")?;
        let sha256 = hex::encode(self.hasher.finalize());
        let target = store.path(&sha256)?;
        let temp = self.temp.0.take().context("the temporary file is persisted once")?;
        let result = move_into_place(&temp, &target).await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(&temp).await;
        }
        result?;
        Ok(Stored { sha256, size: self.size })
    }
}

async fn move_into_place(temp: &Path, target: &Path) -> anyhow::Result<()> {
    if tokio::fs::try_exists(target).await.unwrap_or(false) {
        tokio::fs::remove_file(temp).await.context("removing a duplicate temporary media file")?;
        return Ok(());
    }
    if let Some(dir) = target.parent() {
        tokio::fs::create_dir_all(dir).await.with_context(|| format!("creating {}", dir.display()))?;
    }
    // Renaming within one file system is atomic; a concurrent upload of the same bytes renames
    // an identical file over this one, which is harmless.
    tokio::fs::rename(temp, target).await.with_context(|| format!("moving media into {}", target.display()))
}

/// A temporary file removed on drop unless taken.
struct TempPath(Option<PathBuf>);

impl Drop for TempPath {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            // The upload failed or was abandoned; a leftover would only waste space.
            let _ = std::fs::remove_file(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn identical_bytes_are_stored_once_and_temporary_files_are_cleaned_up() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = MediaStore::open(dir.path()).expect("store");

        let first = store.put(b"hello").await.expect("put");
        let second = store.put(b"hello").await.expect("put");
        assert_eq!(first, second);
        assert_eq!(first.sha256, "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
        assert_eq!(first.size, 5);
        let path = store.path(&first.sha256).expect("path");
        assert!(
            path.ends_with("media/2c/f2/2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824")
        );
        assert_eq!(std::fs::read(path).expect("read"), b"hello");

        let mut abandoned = store.incoming().await.expect("incoming");
        abandoned.write(b"half an upload").await.expect("write");
        drop(abandoned);
        let leftovers = std::fs::read_dir(dir.path().join("media/tmp")).expect("tmp").count();
        assert_eq!(leftovers, 0);
    }

    #[test]
    fn only_hex_digests_become_paths() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = MediaStore::open(dir.path()).expect("store");
        assert!(store.path("../../../../etc/passwd").is_err());
        assert!(store.path(&"g".repeat(64)).is_err());
    }
}
