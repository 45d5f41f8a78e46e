//! The embedded object store: a directory. Objects live under `<root>/objects/<key>`;
//! writes go to `<root>/tmp/` first, are fsynced, and are then published atomically —
//! `rename` for a put, `link` for a put-if-absent (link fails on an existing name where
//! rename would silently replace it) — followed by an fsync of the parent directory so
//! the new name survives a power cut. A reader therefore never sees half an object, and
//! a crash leaves at most an orphan temp file, swept at start-up.

use crate::{validate_key, validate_prefix, ByteStream, ObjectMeta, ObjectStore, PutOutcome, StoreError, Upload};
use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
use tokio_util::io::ReaderStream;

#[derive(Debug, Clone)]
pub struct LocalStore {
    inner: Arc<Dirs>,
}

#[derive(Debug)]
struct Dirs {
    objects: PathBuf,
    tmp: PathBuf,
}

impl LocalStore {
    /// Opens (creating if needed) a store rooted at `root`.
    pub fn open(root: impl AsRef<Path>) -> Result<Self, StoreError> {
        let root = root.as_ref();
        let objects = root.join("objects");
        let tmp = root.join("tmp");
        for dir in [&objects, &tmp] {
            fs::create_dir_all(dir).map_err(|e| StoreError::io("open", &dir.display().to_string(), e))?;
        }
        sweep_stale_temp_files(&tmp);
        Ok(Self { inner: Arc::new(Dirs { objects, tmp }) })
    }

    fn path_of(&self, key: &str) -> Result<PathBuf, StoreError> {
        validate_key(key)?;
        Ok(self.inner.objects.join(key))
    }

    fn temp_path(&self) -> PathBuf {
        self.inner.tmp.join(format!(".tmp-{:032x}", rand::random::<u128>()))
    }
}

/// Temp files older than a day belong to writers that crashed; younger ones may belong to
/// another process's upload in progress.
fn sweep_stale_temp_files(tmp: &Path) {
    let Ok(entries) = fs::read_dir(tmp) else {
        return;
    };
    let day = std::time::Duration::from_secs(24 * 3600);
    for entry in entries.flatten() {
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > day);
        if old {
            let _ = fs::remove_file(entry.path());
        }
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn write_temp(path: &Path, body: &[u8]) -> io::Result<()> {
    let mut file = File::create(path)?;
    file.write_all(body)?;
    file.sync_all()
}

/// How a temp file becomes the object.
#[derive(Clone, Copy)]
enum Publish {
    Replace,
    IfAbsent,
}

/// Moves a finished temp file to its key. Retries when a concurrent delete removed the
/// (empty) parent directory between our `create_dir_all` and the rename.
fn publish(temp: &Path, dest: &Path, mode: Publish) -> io::Result<PutOutcome> {
    let parent = dest.parent().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "key has no parent"))?;
    let mut attempts = 0;
    loop {
        fs::create_dir_all(parent)?;
        let result = match mode {
            Publish::Replace => fs::rename(temp, dest).map(|()| PutOutcome::Created),
            Publish::IfAbsent => match fs::hard_link(temp, dest) {
                Ok(()) => Ok(PutOutcome::Created),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(PutOutcome::AlreadyExists),
                Err(e) => Err(e),
            },
        };
        match result {
            Err(e) if e.kind() == io::ErrorKind::NotFound && attempts < 5 => attempts += 1,
            Err(e) => return Err(e),
            Ok(outcome) => {
                if matches!(mode, Publish::IfAbsent) {
                    let _ = fs::remove_file(temp);
                }
                if outcome == PutOutcome::Created {
                    sync_dir(parent)?;
                }
                return Ok(outcome);
            }
        }
    }
}

async fn blocking<T: Send + 'static>(
    operation: &'static str,
    key: &str,
    work: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> Result<T, StoreError> {
    let owned_key = key.to_owned();
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result.map_err(|e| StoreError::io(operation, &owned_key, e)),
        Err(join) => Err(StoreError::Unavailable { operation, message: format!("blocking task failed: {join}") }),
    }
}

impl LocalStore {
    async fn put_with(&self, key: &str, body: Bytes, mode: Publish) -> Result<PutOutcome, StoreError> {
        let dest = self.path_of(key)?;
        let temp = self.temp_path();
        blocking("put", key, move || {
            let result = write_temp(&temp, &body).and_then(|()| publish(&temp, &dest, mode));
            if result.is_err() || matches!(mode, Publish::IfAbsent) {
                let _ = fs::remove_file(&temp);
            }
            result
        })
        .await
    }
}

#[async_trait]
impl ObjectStore for LocalStore {
    async fn put(&self, key: &str, body: Bytes, _content_type: &str) -> Result<(), StoreError> {
        self.put_with(key, body, Publish::Replace).await.map(|_| ())
    }

    async fn put_if_absent(&self, key: &str, body: Bytes, _content_type: &str) -> Result<PutOutcome, StoreError> {
        self.put_with(key, body, Publish::IfAbsent).await
    }

    async fn start_upload(&self, key: &str, _content_type: &str) -> Result<Box<dyn Upload>, StoreError> {
        let dest = self.path_of(key)?;
        let temp = self.temp_path();
        let file = tokio::fs::File::create(&temp).await.map_err(|e| StoreError::io("upload", key, e))?;
        Ok(Box::new(LocalUpload { key: key.to_owned(), dest, temp: Some(temp), file: Some(file), size: 0 }))
    }

    async fn get(&self, key: &str) -> Result<Bytes, StoreError> {
        let path = self.path_of(key)?;
        tokio::fs::read(&path).await.map(Bytes::from).map_err(|e| StoreError::io("get", key, e))
    }

    async fn get_stream(&self, key: &str) -> Result<(ObjectMeta, ByteStream), StoreError> {
        let path = self.path_of(key)?;
        let file = tokio::fs::File::open(&path).await.map_err(|e| StoreError::io("get", key, e))?;
        let size = file.metadata().await.map_err(|e| StoreError::io("get", key, e))?.len();
        let owned_key = key.to_owned();
        let stream = ReaderStream::with_capacity(file, 256 * 1024)
            .map(move |chunk| chunk.map_err(|e| StoreError::io("get", &owned_key, e)))
            .fuse()
            .boxed();
        Ok((ObjectMeta { key: key.to_owned(), size }, stream))
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>, StoreError> {
        let path = self.path_of(key)?;
        match tokio::fs::metadata(&path).await {
            Ok(meta) if meta.is_file() => Ok(Some(ObjectMeta { key: key.to_owned(), size: meta.len() })),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::io("head", key, e)),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StoreError> {
        validate_prefix(prefix)?;
        let root = self.inner.objects.clone();
        let owned_prefix = prefix.to_owned();
        blocking("list", prefix, move || {
            // Walk only the deepest directory the prefix names, then filter by the rest.
            let dir_part = owned_prefix.rfind('/').map_or("", |end| &owned_prefix[..end]);
            let mut found = Vec::new();
            walk(&root, &root.join(dir_part), &mut found)?;
            found.retain(|meta: &ObjectMeta| meta.key.starts_with(&owned_prefix));
            found.sort_by(|a, b| a.key.cmp(&b.key));
            Ok(found)
        })
        .await
    }

    async fn list_page(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        max: usize,
    ) -> Result<Vec<ObjectMeta>, StoreError> {
        // A directory walk cannot start in the middle: list, then cut out the page.
        let mut all = self.list(prefix).await?;
        if let Some(after) = start_after {
            all.retain(|object| object.key.as_str() > after);
        }
        all.truncate(max.clamp(1, crate::MAX_PAGE));
        Ok(all)
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let path = self.path_of(key)?;
        let root = self.inner.objects.clone();
        blocking("delete", key, move || {
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(e),
            }
            // Tidy directories the delete emptied; a concurrent put re-creates what it needs.
            let mut dir = path.parent();
            while let Some(current) = dir {
                if current == root || fs::remove_dir(current).is_err() {
                    break;
                }
                dir = current.parent();
            }
            Ok(())
        })
        .await
    }

    async fn check(&self) -> Result<(), StoreError> {
        let probe = self.temp_path();
        blocking("check", "tmp/", move || {
            write_temp(&probe, b"ok")?;
            fs::remove_file(&probe)
        })
        .await
    }
}

fn walk(root: &Path, dir: &Path, found: &mut Vec<ObjectMeta>) -> io::Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory) => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let file_type = match entry.file_type() {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let path = entry.path();
        if file_type.is_dir() {
            walk(root, &path, found)?;
        } else if file_type.is_file() {
            let Ok(relative) = path.strip_prefix(root) else {
                continue;
            };
            let Some(key) = relative.to_str() else {
                continue;
            };
            let size = match entry.metadata() {
                Ok(meta) => meta.len(),
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            found.push(ObjectMeta { key: key.to_owned(), size });
        }
    }
    Ok(())
}

struct LocalUpload {
    key: String,
    dest: PathBuf,
    temp: Option<PathBuf>,
    file: Option<tokio::fs::File>,
    size: u64,
}

#[async_trait]
impl Upload for LocalUpload {
    async fn write(&mut self, chunk: Bytes) -> Result<(), StoreError> {
        let file = self.file.as_mut().ok_or_else(|| StoreError::Unavailable {
            operation: "upload",
            message: "upload already finished".into(),
        })?;
        file.write_all(&chunk).await.map_err(|e| StoreError::io("upload", &self.key, e))?;
        self.size += chunk.len() as u64;
        Ok(())
    }

    async fn finish(mut self: Box<Self>) -> Result<u64, StoreError> {
        let key = self.key.clone();
        let (Some(mut file), Some(temp)) = (self.file.take(), self.temp.take()) else {
            return Err(StoreError::Unavailable { operation: "upload", message: "upload already finished".into() });
        };
        let synced = async {
            file.flush().await?;
            file.sync_all().await
        }
        .await;
        drop(file);
        if let Err(e) = synced {
            let _ = tokio::fs::remove_file(&temp).await;
            return Err(StoreError::io("upload", &key, e));
        }
        let dest = self.dest.clone();
        let size = self.size;
        blocking("upload", &key, move || {
            let result = publish(&temp, &dest, Publish::Replace);
            if result.is_err() {
                let _ = fs::remove_file(&temp);
            }
            result.map(|_| size)
        })
        .await
    }

    async fn abort(mut self: Box<Self>) {
        self.file.take();
        if let Some(temp) = self.temp.take() {
            let _ = tokio::fs::remove_file(&temp).await;
        }
    }
}

impl Drop for LocalUpload {
    fn drop(&mut self) {
        // A dropped, unfinished upload (the client went away) must not leak its temp file.
        if let Some(temp) = self.temp.take() {
            let _ = fs::remove_file(temp);
        }
    }
}
