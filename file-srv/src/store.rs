//! The drawings on disk: `{data_dir}/{id}.png`, written through temp files in
//! `{data_dir}/tmp/` and renamed into place, so a crash never leaves a partial
//! file under a servable name.
//!
//! An in-memory index (id → size, modification time) rebuilt from the folder
//! at start-up answers lookups and keeps the quota without walking the folder.
//! Index and folder change together under one lock; the slow part of a write
//! (writing and syncing the temp file) happens outside it.
//!
//! Every method does blocking file I/O: call them from `spawn_blocking`.

use std::collections::{BTreeSet, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use crate::file_id::FileId;
use crate::metrics::Metrics;

/// A stored drawing, as the index knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub size: u64,
    /// Time of the last upload of this content; the TTL counts from here.
    pub modified: SystemTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Put {
    Stored,
    /// The same content was there already; its TTL starts again.
    Duplicate,
}

pub struct Store {
    dir: PathBuf,
    tmp: PathBuf,
    ttl: Duration,
    quota: u64,
    index: Mutex<Index>,
    metrics: Metrics,
    temp_seq: AtomicU64,
}

#[derive(Default)]
struct Index {
    files: HashMap<FileId, Entry>,
    by_age: BTreeSet<(SystemTime, FileId)>,
    bytes: u64,
}

impl Index {
    fn insert(&mut self, id: FileId, entry: Entry) {
        self.remove(id);
        self.files.insert(id, entry);
        self.by_age.insert((entry.modified, id));
        self.bytes += entry.size;
    }

    fn remove(&mut self, id: FileId) -> Option<Entry> {
        let old = self.files.remove(&id)?;
        self.by_age.remove(&(old.modified, id));
        self.bytes -= old.size;
        Some(old)
    }
}

impl Store {
    /// Creates the folders, empties `tmp/` (leftovers of a crash), indexes
    /// the stored drawings and evicts the oldest if they exceed the quota.
    pub fn open(dir: &Path, ttl: Duration, quota: u64, metrics: Metrics) -> io::Result<Self> {
        let tmp = dir.join("tmp");
        fs::create_dir_all(&tmp)?;
        if !fs::symlink_metadata(&tmp)?.is_dir() {
            return Err(io::Error::other(format!("{} is not a folder", tmp.display())));
        }
        for entry in fs::read_dir(&tmp)? {
            let entry = entry?;
            if !entry.file_type()?.is_dir() {
                fs::remove_file(entry.path())?;
            }
        }
        let mut index = Index::default();
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let Some(id) =
                name.to_str().and_then(|n| n.strip_suffix(".png")).and_then(FileId::parse)
            else {
                continue;
            };
            // `DirEntry::metadata` does not follow symlinks: a link is never indexed.
            let meta = entry.metadata()?;
            if !meta.is_file() {
                tracing::warn!(file = %entry.path().display(), "ignoring a drawing that is not a regular file");
                continue;
            }
            index.insert(id, Entry { size: meta.len(), modified: meta.modified()? });
        }
        metrics.quota_bytes.set(quota as i64);
        let store = Self {
            dir: dir.to_owned(),
            tmp,
            ttl,
            quota,
            index: Mutex::new(index),
            metrics,
            temp_seq: AtomicU64::new(0),
        };
        let mut index = store.lock();
        let evicted = store.evict_over_quota(&mut index, None);
        store.metrics.swept("quota", evicted);
        store.publish(&index);
        tracing::info!(files = index.files.len(), bytes = index.bytes, evicted, "drawings indexed");
        drop(index);
        Ok(store)
    }

    /// Stores `png` under `id` unless it is there already.
    pub fn put(&self, id: FileId, png: &[u8]) -> io::Result<Put> {
        let now = SystemTime::now();
        let entry = Entry { size: png.len() as u64, modified: now };
        {
            let mut index = self.lock();
            if index.files.contains_key(&id) {
                match self.touch(id, now) {
                    Ok(()) => {
                        index.insert(id, entry);
                        return Ok(Put::Duplicate);
                    }
                    // Removed behind our back: write it anew.
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {
                        index.remove(id);
                        self.publish(&index);
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        let temp = self.write_temp(id, png)?;
        let mut index = self.lock();
        if let Err(e) = fs::rename(&temp, self.path_of(id)) {
            let _ = fs::remove_file(&temp);
            return Err(e);
        }
        index.insert(id, entry);
        let evicted = self.evict_over_quota(&mut index, Some(id));
        self.metrics.swept("quota", evicted);
        self.publish(&index);
        drop(index);
        // The rename is what makes the file visible; make it last.
        if let Err(e) = File::open(&self.dir).and_then(|d| d.sync_all()) {
            tracing::warn!(error = %e, "could not sync the data folder");
        }
        Ok(Put::Stored)
    }

    /// The drawing's index entry, unless it is unknown or expired.
    pub fn lookup(&self, id: FileId, now: SystemTime) -> Option<Entry> {
        let entry = *self.lock().files.get(&id)?;
        (!self.is_expired(&entry, now)).then_some(entry)
    }

    /// Opens a stored drawing for reading: never through a symlink, never
    /// anything but a regular file.
    pub fn open_file(&self, id: FileId) -> io::Result<Option<(File, u64)>> {
        let file = match OpenOptions::new()
            .read(true)
            // O_NONBLOCK: opening a FIFO planted in the folder must not hang.
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(self.path_of(id))
        {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                tracing::warn!(%id, "refusing to serve a symlink");
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let meta = file.metadata()?;
        if !meta.is_file() {
            tracing::warn!(%id, "refusing to serve something that is not a regular file");
            return Ok(None);
        }
        Ok(Some((file, meta.len())))
    }

    /// Removes every drawing older than the TTL; returns how many.
    pub fn sweep(&self, now: SystemTime) -> usize {
        let mut index = self.lock();
        let expired: Vec<FileId> = index
            .by_age
            .iter()
            .take_while(|(modified, _)| {
                self.is_expired(&Entry { size: 0, modified: *modified }, now)
            })
            .map(|(_, id)| *id)
            .collect();
        for id in &expired {
            index.remove(*id);
            self.unlink(*id);
        }
        self.metrics.swept("expired", expired.len());
        self.publish(&index);
        expired.len()
    }

    /// Number of drawings and their bytes.
    pub fn usage(&self) -> (usize, u64) {
        let index = self.lock();
        (index.files.len(), index.bytes)
    }

    fn evict_over_quota(&self, index: &mut Index, keep: Option<FileId>) -> usize {
        let mut evicted = 0;
        while index.bytes > self.quota {
            let victim = index.by_age.iter().map(|(_, id)| *id).find(|id| Some(*id) != keep);
            let Some(victim) = victim else { break };
            index.remove(victim);
            self.unlink(victim);
            evicted += 1;
        }
        if evicted > 0 {
            tracing::info!(
                evicted,
                quota = self.quota,
                "over the quota: removed the oldest drawings"
            );
        }
        evicted
    }

    fn write_temp(&self, id: FileId, png: &[u8]) -> io::Result<PathBuf> {
        let seq = self.temp_seq.fetch_add(1, Ordering::Relaxed);
        let path = self.tmp.join(format!("{id}.{}.{seq}.part", std::process::id()));
        let result = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .and_then(|mut file| {
                file.write_all(png)?;
                file.sync_all()
            });
        match result {
            Ok(()) => Ok(path),
            Err(e) => {
                let _ = fs::remove_file(&path);
                Err(e)
            }
        }
    }

    fn touch(&self, id: FileId, now: SystemTime) -> io::Result<()> {
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(self.path_of(id))?;
        file.set_modified(now)
    }

    fn unlink(&self, id: FileId) {
        match fs::remove_file(self.path_of(id)) {
            Ok(()) => tracing::debug!(%id, "drawing removed"),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => tracing::error!(%id, error = %e, "could not remove a drawing"),
        }
    }

    fn is_expired(&self, entry: &Entry, now: SystemTime) -> bool {
        now.duration_since(entry.modified).is_ok_and(|age| age >= self.ttl)
    }

    fn path_of(&self, id: FileId) -> PathBuf {
        self.dir.join(id.file_name())
    }

    fn publish(&self, index: &Index) {
        self.metrics.stored_files.set(index.files.len() as i64);
        self.metrics.stored_bytes.set(index.bytes as i64);
    }

    fn lock(&self) -> MutexGuard<'_, Index> {
        // The index stays consistent at every await-free step, so a panic
        // elsewhere while holding the lock does not spoil it.
        self.index.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
