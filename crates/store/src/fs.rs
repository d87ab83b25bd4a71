//! The filesystem seam: every file operation the store makes goes through
//! [`FileSystem`] and [`FsFile`], so tests can put a filesystem that fails
//! on purpose ([`crate::fault::FaultyFs`]) under a real store and check
//! that a full disk, a failed fsync or a torn write never costs an
//! acknowledged entry nor serves an unacknowledged one.
//!
//! A handle is a trait object: one dynamic call per read or write, which
//! against a 64 KiB positional read costs nothing measurable, and no
//! allocation per call (the handle is boxed once, when the file is opened).
//! (measured: bench/RESULTS.md, "Layout (issue 16)")

use std::ffi::OsString;
use std::fmt::Debug;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// An open file, read and written only by position, so one handle serves
/// any number of threads without a shared seek offset.
pub trait FsFile: Send + Sync + Debug {
    /// Reads up to `buf.len()` bytes at `offset`; returns how many were read
    /// (0 at the end of the file).
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;

    /// Writes up to `buf.len()` bytes at `offset`; returns how many were
    /// written.
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<usize>;

    /// Fills `buf` from `offset`, failing with `UnexpectedEof` if the file
    /// ends first.
    fn read_exact_at(&self, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
        while !buf.is_empty() {
            match self.read_at(buf, offset) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => {
                    buf = &mut buf[n..];
                    offset += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Writes all of `buf` at `offset`. On failure, some prefix of `buf`
    /// may have reached the file.
    fn write_all_at(&self, mut buf: &[u8], mut offset: u64) -> io::Result<()> {
        while !buf.is_empty() {
            match self.write_at(buf, offset) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    buf = &buf[n..];
                    offset += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Truncates or extends the file to `len` bytes.
    fn set_len(&self, len: u64) -> io::Result<()>;

    /// The file's current length in bytes.
    fn len(&self) -> io::Result<u64>;

    /// Whether the file is empty.
    fn is_empty(&self) -> io::Result<bool> {
        self.len().map(|len| len == 0)
    }

    /// Forces the file's data (and the metadata needed to read it, such as
    /// its length) to disk.
    fn sync_data(&self) -> io::Result<()>;

    /// Forces the file's data and all its metadata to disk.
    fn sync_all(&self) -> io::Result<()>;
}

/// The file operations of a store, one data directory's worth. Implemented
/// by [`StdFileSystem`] for real use and by [`crate::fault::FaultyFs`] in
/// tests.
pub trait FileSystem: Send + Sync + Debug + 'static {
    /// Creates `dir` and any missing parents.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;

    /// The names of the entries in `dir` (not full paths), in no order.
    fn read_dir(&self, dir: &Path) -> io::Result<Vec<OsString>>;

    /// The whole contents of the file at `path`.
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;

    /// Opens an existing file for reading.
    fn open_read(&self, path: &Path) -> io::Result<Box<dyn FsFile>>;

    /// Opens an existing file for reading and writing.
    fn open_write(&self, path: &Path) -> io::Result<Box<dyn FsFile>>;

    /// Creates a file for reading and writing, emptying it if it exists.
    fn create(&self, path: &Path) -> io::Result<Box<dyn FsFile>>;

    /// Removes the file at `path`. Open handles on it stay readable.
    fn remove_file(&self, path: &Path) -> io::Result<()>;

    /// Renames `from` to `to` atomically, replacing `to` if it exists
    /// (durable once the directory is synced).
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;

    /// Makes the creation and removal of `dir`'s entries durable: a file's
    /// directory entry is data too.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;

    /// Opens (creating, never emptying) the file at `path` for reading and
    /// writing and takes an exclusive advisory lock on it, held until the
    /// returned handle is dropped. Fails at once, with
    /// `io::ErrorKind::WouldBlock`, while another handle (in this process
    /// or another) holds it.
    fn lock(&self, path: &Path) -> io::Result<Box<dyn FsFile>>;
}

/// The real filesystem, through `std::fs`: what a store uses unless its
/// config says otherwise.
#[derive(Debug, Clone, Copy, Default)]
pub struct StdFileSystem;

impl FileSystem for StdFileSystem {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)
    }

    fn read_dir(&self, dir: &Path) -> io::Result<Vec<OsString>> {
        std::fs::read_dir(dir)?
            .map(|entry| entry.map(|entry| entry.file_name()))
            .collect()
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        std::fs::read(path)
    }

    fn open_read(&self, path: &Path) -> io::Result<Box<dyn FsFile>> {
        Ok(Box::new(StdFile(File::open(path)?)))
    }

    fn open_write(&self, path: &Path) -> io::Result<Box<dyn FsFile>> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        Ok(Box::new(StdFile(file)))
    }

    fn create(&self, path: &Path) -> io::Result<Box<dyn FsFile>> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(path)?;
        Ok(Box::new(StdFile(file)))
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }

    fn lock(&self, path: &Path) -> io::Result<Box<dyn FsFile>> {
        // Not truncated on open: while another process holds the lock, the
        // file holds that process's pid, which the refusal names.
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(path)?;
        file.try_lock()?;
        Ok(Box::new(StdFile(file)))
    }
}

/// A `std::fs::File` behind [`FsFile`].
#[derive(Debug)]
struct StdFile(File);

impl FsFile for StdFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.0.read_at(buf, offset)
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<usize> {
        self.0.write_at(buf, offset)
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.0.read_exact_at(buf, offset)
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.0.write_all_at(buf, offset)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }

    fn len(&self) -> io::Result<u64> {
        self.0.metadata().map(|m| m.len())
    }

    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }

    fn sync_all(&self) -> io::Result<()> {
        self.0.sync_all()
    }
}
