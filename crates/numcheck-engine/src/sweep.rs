//! The start-up sweep: files that no task will ever read again, left behind by a process
//! that stopped without cleaning up (`kill -9`, a power cut, a full disk):
//!
//! - `tmp/` in the data folder: uploads being received and results being assembled;
//! - `uploads/<task>…` blobs whose task row was never committed (the create was cut off);
//! - `work/<task>/` chunk outputs of a task that has ended (exported, failed, cancelled) or
//!   does not exist;
//! - `results/<task>…` of a task that no longer exists (deleted while the process died);
//! - in a local blob folder, the staging files of a cut-off streamed write (`<name>#<n>`).
//!
//! A node that holds the data folder's lock (the embedded default) owns every file in it, so
//! nothing is in flight when it starts and everything above goes. A node of a shared
//! database and bucket cannot tell another node's upload in progress from a dead one, so it
//! only removes what is older than [`SHARED_GRACE`]. (A bucket's own unfinished multipart
//! uploads are left to the bucket's lifecycle rules: see `docs/scaling.md`.)

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, SystemTime};

use numcheck_core::TaskId;

use crate::blob_keys::Area;
use crate::datadir::DataDir;

/// How old a file must be before a node of a shared deployment removes it.
pub const SHARED_GRACE: Duration = Duration::from_secs(24 * 3600);

/// What a sweep removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Swept {
    pub files: u64,
    pub bytes: u64,
}

impl Swept {
    fn add(&mut self, bytes: u64) {
        self.files += 1;
        self.bytes += bytes;
    }
}

/// Whether a task, by id, still needs its files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Need {
    /// No such task.
    Gone,
    /// Ended: its upload and result stay, its chunk outputs do not.
    Ended,
    /// Pending or processing: everything stays.
    Open,
}

/// Sweeps the data folder and the blob store. `exclusive` says this process holds the
/// folder's lock. Errors on single files are logged and skipped: a sweep never stops a start.
pub async fn sweep(data: &DataDir, exclusive: bool, now: SystemTime) -> anyhow::Result<Swept> {
    let grace = if exclusive {
        Duration::ZERO
    } else {
        SHARED_GRACE
    };
    let old_enough = |modified: SystemTime| {
        now.duration_since(modified)
            .map(|age| age >= grace)
            .unwrap_or(grace.is_zero())
    };
    let mut swept = Swept::default();

    // tmp/ holds nothing a new process can use.
    let tmp = data.tmp_dir();
    let removed = tokio::task::spawn_blocking({
        let tmp = tmp.clone();
        move || remove_old_files(&tmp, grace, now, &|_| true)
    })
    .await??;
    swept.files += removed.files;
    swept.bytes += removed.bytes;

    let mut needs: HashMap<String, Need> = HashMap::new();
    for area in Area::ALL {
        for blob in data.blobs.list(area.prefix()).await? {
            let Some(id) = area.task_of(&blob.key) else {
                continue; // not a name numcheck writes: not ours to judge
            };
            let need = match needs.get(id) {
                Some(n) => *n,
                None => {
                    let n = match id.parse::<TaskId>() {
                        // Not a name numcheck writes: not ours to judge.
                        Err(_) => Need::Open,
                        Ok(task) => match data.store.task(&task).await? {
                            None => Need::Gone,
                            Some(t) if t.status.is_terminal() => Need::Ended,
                            Some(_) => Need::Open,
                        },
                    };
                    needs.insert(id.to_owned(), n);
                    n
                }
            };
            let leftover = match (area, need) {
                (_, Need::Open) => false,
                (Area::Work, _) => true,
                (_, Need::Gone) => true,
                (_, Need::Ended) => false,
            };
            if leftover && old_enough(blob.modified) {
                match data.blobs.delete(&blob.key).await {
                    Ok(()) => swept.add(blob.size),
                    Err(e) => {
                        tracing::warn!(key = %blob.key, error = %e, "cannot remove a leftover blob")
                    }
                }
            }
        }
    }

    // A local blob folder's staging files (`<name>#<digits>`) are invisible to listings.
    if let Some(dir) = data.local_blob_dir() {
        let removed = tokio::task::spawn_blocking(move || {
            remove_old_files(&dir, grace, now, &|name| {
                name.rsplit_once('#')
                    .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            })
        })
        .await??;
        swept.files += removed.files;
        swept.bytes += removed.bytes;
    }
    Ok(swept)
}

/// Removes, under `dir`, the files whose name `pick` accepts and that are at least `grace`
/// old, then the folders left empty (never `dir` itself).
fn remove_old_files(
    dir: &Path,
    grace: Duration,
    now: SystemTime,
    pick: &dyn Fn(&str) -> bool,
) -> std::io::Result<Swept> {
    let mut swept = Swept::default();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(swept),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let path = entry.path();
        let meta = match entry.metadata() {
            Ok(m) => m,
            Err(_) => continue,
        };
        if meta.is_dir() {
            let below = remove_old_files(&path, grace, now, pick)?;
            swept.files += below.files;
            swept.bytes += below.bytes;
            // Only empties; a folder with anything left in it stays.
            let _ = std::fs::remove_dir(&path);
            continue;
        }
        let name = entry.file_name();
        if !pick(&name.to_string_lossy()) {
            continue;
        }
        let age = meta
            .modified()
            .ok()
            .and_then(|m| now.duration_since(m).ok())
            .unwrap_or(Duration::ZERO);
        if age < grace {
            continue;
        }
        match std::fs::remove_file(&path) {
            Ok(()) => swept.add(meta.len()),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot remove a leftover file")
            }
        }
    }
    Ok(swept)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_picked_files_past_the_grace_go_and_empty_folders_with_them() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::write(root.join("a/b/x.txt#1"), b"12345").unwrap();
        std::fs::write(root.join("a/keep.txt"), b"1").unwrap();
        std::fs::write(root.join("a/y#2x"), b"1").unwrap();
        let staging = |n: &str| {
            n.rsplit_once('#')
                .is_some_and(|(_, d)| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
        };
        // Within the grace: nothing goes.
        let now = SystemTime::now();
        let none = remove_old_files(root, Duration::from_secs(3600), now, &staging).unwrap();
        assert_eq!(none, Swept::default());
        let swept = remove_old_files(root, Duration::ZERO, now, &staging).unwrap();
        assert_eq!(swept, Swept { files: 1, bytes: 5 });
        assert!(!root.join("a/b").exists(), "the emptied folder is removed");
        assert!(root.join("a/keep.txt").exists() && root.join("a/y#2x").exists());
        // Later, past the grace.
        let later = now + Duration::from_secs(7200);
        let all = remove_old_files(root, Duration::from_secs(3600), later, &|_| true).unwrap();
        assert_eq!(all.files, 2);
        assert!(root.exists() && std::fs::read_dir(root).unwrap().next().is_none());
    }
}
