//! A filesystem that fails on purpose, for tests: [`FaultyFs`] wraps the
//! real one and, at a point the test chooses, makes a write tear or fail
//! with a full disk, an fsync fail, or the process "crash" mid-write. Put it
//! in [`StoreConfig::fs`](crate::StoreConfig::fs) and the real store runs
//! on real files in a temporary directory while the test decides when the
//! disk misbehaves.
//!
//! ```
//! # fn main() -> Result<(), logtap_core::StoreError> {
//! use logtap_store::fault::{Fault, FaultyFs};
//! use logtap_core::{Level, NewEntry};
//! use logtap_store::{Store, StoreConfig};
//! use std::sync::Arc;
//!
//! let dir = tempfile::tempdir().unwrap();
//! let fs = Arc::new(FaultyFs::new());
//! let mut config = StoreConfig::new(dir.path());
//! config.fs = fs.clone();
//! let store = Store::open(config)?;
//! let entry = NewEntry {
//!     timestamp: 1,
//!     level: Level::Info,
//!     message: "hello".into(),
//!     labels: Vec::new(),
//! };
//! fs.fail_writes_after_bytes(10, Fault::NoSpace);
//! let error = store.append(&[entry.clone()]).unwrap_err();
//! assert!(error.is_disk_full());
//! assert_eq!(fs.faults_fired(), 1);
//! fs.clear(); // space returns
//! store.append(&[entry])?;
//! # Ok(())
//! # }
//! ```

use crate::fs::{FileSystem, FsFile, StdFileSystem};
use std::ffi::OsString;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// What happens when an armed write fault fires. In every case the bytes
/// up to the chosen point reach the file: a real write that fails part-way
/// leaves its prefix behind too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The disk fills: the write fails with ENOSPC
    /// (`io::ErrorKind::StorageFull`, raw os error 28, "No space left on
    /// device"), and so does every later write until [`FaultyFs::clear`]
    /// (space returned).
    NoSpace,
    /// One torn write: the write fails with EIO; later writes succeed.
    TornWrite,
    /// The process dies mid-write: the write fails with EIO, and so does
    /// every later operation that would change a file (write, `set_len`,
    /// fsync, create, remove) until [`FaultyFs::clear`], so the store can
    /// neither finish nor undo it. Drop the store and reopen (with the
    /// real filesystem, or after `clear`) to see what a restart finds.
    Crash,
}

impl Fault {
    fn error(self) -> io::Error {
        match self {
            Fault::NoSpace => no_space(),
            Fault::TornWrite | Fault::Crash => eio(),
        }
    }
}

/// ENOSPC, as the kernel reports it.
fn no_space() -> io::Error {
    io::Error::from_raw_os_error(28)
}

/// EIO, as the kernel reports it.
fn eio() -> io::Error {
    io::Error::from_raw_os_error(5)
}

/// The real filesystem with faults injected on demand; see the
/// [module](self) documentation. Every handle it opens shares its plan, so
/// a fault armed after the store opened still reaches the files it holds.
/// Without an armed fault it behaves exactly like the filesystem it wraps.
#[derive(Debug)]
pub struct FaultyFs {
    inner: Arc<dyn FileSystem>,
    state: Arc<State>,
}

#[derive(Debug, Default)]
struct State {
    plan: Mutex<Plan>,
    bytes_written: AtomicU64,
    syncs: AtomicU64,
    operations: AtomicU64,
    faults_fired: AtomicU64,
}

#[derive(Debug, Default)]
struct Plan {
    /// Bytes that may still be written before `Fault` fires.
    write_fault: Option<(u64, Fault)>,
    fail_next_sync: bool,
    /// A fault that, once fired, lasts until `clear`.
    stuck: Option<Fault>,
    /// Operations that change files (writes, fsyncs, creations, renames,
    /// removals) still allowed before the process "crashes".
    operations_left: Option<u64>,
}

impl Default for FaultyFs {
    fn default() -> Self {
        FaultyFs::new()
    }
}

impl FaultyFs {
    /// The real filesystem ([`StdFileSystem`]), with no fault armed.
    pub fn new() -> FaultyFs {
        FaultyFs::wrapping(Arc::new(StdFileSystem))
    }

    /// `inner`, with no fault armed.
    pub fn wrapping(inner: Arc<dyn FileSystem>) -> FaultyFs {
        FaultyFs {
            inner,
            state: Arc::default(),
        }
    }

    /// Lets `bytes` more bytes be written (counted from now, over every
    /// file), then fires `fault` on the write that would pass the limit:
    /// only its part up to the limit reaches the file. `bytes` 0 fires on
    /// the next write, which leaves nothing behind.
    pub fn fail_writes_after_bytes(&self, bytes: u64, fault: Fault) {
        self.state.plan().write_fault = Some((bytes, fault));
    }

    /// Makes the next fsync (a file's `sync_data` or `sync_all`, or a
    /// directory's) fail with EIO, leaving the data written so far in the
    /// file (the page cache keeps it). Later fsyncs succeed.
    pub fn fail_next_sync(&self) {
        self.state.plan().fail_next_sync = true;
    }

    /// Lets `operations` more operations that change files (a write, an
    /// fsync, a creation, a rename, a removal: each counts one) succeed,
    /// then "crashes" on the next: it fails as [`Fault::Crash`] does, and
    /// so does everything after it until [`FaultyFs::clear`]. With
    /// [`FaultyFs::operations`] a test can crash a procedure at each of
    /// its steps in turn.
    pub fn crash_after_operations(&self, operations: u64) {
        self.state.plan().operations_left = Some(operations);
    }

    /// Operations that changed files so far (see
    /// [`FaultyFs::crash_after_operations`]).
    pub fn operations(&self) -> u64 {
        self.state.operations.load(Ordering::Relaxed)
    }

    /// Disarms every fault and ends any lasting one: the disk has room
    /// again, the "crashed" process may write. Counters are kept.
    pub fn clear(&self) {
        *self.state.plan() = Plan::default();
    }

    /// How many operations have failed on purpose so far (each failed
    /// write or fsync counts, including those refused while a fault lasts).
    pub fn faults_fired(&self) -> u64 {
        self.state.faults_fired.load(Ordering::Relaxed)
    }

    /// Bytes that reached files through this filesystem (torn prefixes
    /// included).
    pub fn bytes_written(&self) -> u64 {
        self.state.bytes_written.load(Ordering::Relaxed)
    }

    /// Fsyncs that succeeded (of files and directories).
    pub fn syncs(&self) -> u64 {
        self.state.syncs.load(Ordering::Relaxed)
    }

    fn wrap(&self, file: Box<dyn FsFile>) -> Box<dyn FsFile> {
        Box::new(FaultyFile {
            inner: file,
            state: Arc::clone(&self.state),
        })
    }
}

impl State {
    fn plan(&self) -> MutexGuard<'_, Plan> {
        self.plan.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn fired(&self, error: io::Error) -> io::Error {
        self.faults_fired.fetch_add(1, Ordering::Relaxed);
        error
    }

    /// Fails an operation that changes a file once the process "crashed".
    fn check_alive(&self) -> io::Result<()> {
        self.operation(&mut self.plan())
    }

    /// Counts an operation that changes a file, and fails it if the
    /// process "crashed" or crashes now.
    fn operation(&self, plan: &mut Plan) -> io::Result<()> {
        if plan.stuck == Some(Fault::Crash) {
            return Err(self.fired(eio()));
        }
        if let Some(left) = &mut plan.operations_left {
            if *left == 0 {
                plan.stuck = Some(Fault::Crash);
                return Err(self.fired(eio()));
            }
            *left -= 1;
        }
        self.operations.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn sync(&self, sync: impl FnOnce() -> io::Result<()>) -> io::Result<()> {
        {
            let mut plan = self.plan();
            self.operation(&mut plan)?;
            if std::mem::take(&mut plan.fail_next_sync) {
                return Err(self.fired(eio()));
            }
        }
        sync()?;
        self.syncs.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

impl FileSystem for FaultyFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.state.check_alive()?;
        self.inner.create_dir_all(dir)
    }

    fn read_dir(&self, dir: &Path) -> io::Result<Vec<OsString>> {
        self.inner.read_dir(dir)
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.inner.read(path)
    }

    fn open_read(&self, path: &Path) -> io::Result<Box<dyn FsFile>> {
        Ok(self.wrap(self.inner.open_read(path)?))
    }

    fn open_write(&self, path: &Path) -> io::Result<Box<dyn FsFile>> {
        self.state.check_alive()?;
        Ok(self.wrap(self.inner.open_write(path)?))
    }

    fn create(&self, path: &Path) -> io::Result<Box<dyn FsFile>> {
        self.state.check_alive()?;
        Ok(self.wrap(self.inner.create(path)?))
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.state.check_alive()?;
        self.inner.remove_file(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.state.check_alive()?;
        self.inner.rename(from, to)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.state.sync(|| self.inner.sync_dir(dir))
    }

    fn lock(&self, path: &Path) -> io::Result<Box<dyn FsFile>> {
        self.state.check_alive()?;
        Ok(self.wrap(self.inner.lock(path)?))
    }
}

/// A file opened through [`FaultyFs`]: consults the shared plan on every
/// write and fsync.
#[derive(Debug)]
struct FaultyFile {
    inner: Box<dyn FsFile>,
    state: Arc<State>,
}

impl FsFile for FaultyFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.inner.read_at(buf, offset)
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.inner.read_exact_at(buf, offset)
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<usize> {
        let mut plan = self.state.plan();
        if let Some(fault) = plan.stuck {
            return Err(self.state.fired(fault.error()));
        }
        self.state.operation(&mut plan)?;
        match plan.write_fault {
            Some((left, fault)) if buf.len() as u64 > left => {
                // Only the prefix up to the limit reaches the file.
                let prefix = &buf[..left as usize];
                self.inner.write_all_at(prefix, offset)?;
                self.state
                    .bytes_written
                    .fetch_add(prefix.len() as u64, Ordering::Relaxed);
                plan.write_fault = None;
                if fault != Fault::TornWrite {
                    plan.stuck = Some(fault);
                }
                Err(self.state.fired(fault.error()))
            }
            _ => {
                let written = self.inner.write_at(buf, offset)?;
                if let Some((left, _)) = &mut plan.write_fault {
                    *left -= written as u64;
                }
                self.state
                    .bytes_written
                    .fetch_add(written as u64, Ordering::Relaxed);
                Ok(written)
            }
        }
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.state.check_alive()?;
        self.inner.set_len(len)
    }

    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }

    fn sync_data(&self) -> io::Result<()> {
        self.state.sync(|| self.inner.sync_data())
    }

    fn sync_all(&self) -> io::Result<()> {
        self.state.sync(|| self.inner.sync_all())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_past_the_limit_leaves_its_prefix_and_fails_until_cleared() {
        let dir = tempfile::tempdir().unwrap();
        let fs = FaultyFs::new();
        let path = dir.path().join("f");
        let file = fs.create(&path).unwrap();
        fs.fail_writes_after_bytes(5, Fault::NoSpace);
        file.write_all_at(b"abc", 0).unwrap();
        let error = file.write_all_at(b"defgh", 3).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::StorageFull);
        assert!(error.to_string().contains("No space left on device"));
        assert_eq!(std::fs::read(&path).unwrap(), b"abcde");
        assert!(file.write_all_at(b"x", 5).is_err(), "the disk stays full");
        assert_eq!(fs.faults_fired(), 2);
        fs.clear();
        file.write_all_at(b"x", 5).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"abcdex");
        assert_eq!(fs.bytes_written(), 6);
    }

    #[test]
    fn a_torn_write_fails_once_and_a_failed_sync_once() {
        let dir = tempfile::tempdir().unwrap();
        let fs = FaultyFs::new();
        let file = fs.create(&dir.path().join("f")).unwrap();
        fs.fail_writes_after_bytes(0, Fault::TornWrite);
        assert!(file.write_all_at(b"abc", 0).is_err());
        file.write_all_at(b"abc", 0).unwrap();
        fs.fail_next_sync();
        assert!(file.sync_data().is_err());
        file.sync_data().unwrap();
        assert_eq!((fs.faults_fired(), fs.syncs()), (2, 1));
    }

    #[test]
    fn after_a_crash_nothing_changes_a_file_until_cleared() {
        let dir = tempfile::tempdir().unwrap();
        let fs = FaultyFs::new();
        let path = dir.path().join("f");
        let file = fs.create(&path).unwrap();
        fs.fail_writes_after_bytes(2, Fault::Crash);
        assert!(file.write_all_at(b"abcd", 0).is_err());
        assert!(file.set_len(0).is_err());
        assert!(file.sync_all().is_err());
        assert!(fs.create(&dir.path().join("g")).is_err());
        assert!(fs.remove_file(&path).is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"ab");
        fs.clear();
        file.set_len(0).unwrap();
    }
}
