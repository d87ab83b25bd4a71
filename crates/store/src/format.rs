//! The data directory's `FORMAT` file: which layout of segment files the
//! directory holds, so that a logtap never misreads a directory a newer
//! one wrote.
//!
//! The file holds one decimal number and a newline. A directory without it
//! is in the layout of the logtaps before the file existed, which is
//! format 1: opening it writes the file (the migration, since format 1 is
//! that layout unchanged). A newer number is refused, naming both
//! versions; an older one would be migrated here, step by step, and the
//! file rewritten.

use crate::fs::FileSystem;
use logtap_core::StoreError;
use std::io::ErrorKind;
use std::path::Path;

/// The store format this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;

/// The name of the file, in the data directory.
pub const FORMAT_FILE: &str = "FORMAT";

/// Checks the directory's format, writing the file when it is missing.
/// Runs with the directory locked, before any segment is read.
pub(crate) fn check(fs: &dyn FileSystem, dir: &Path) -> Result<(), StoreError> {
    let path = dir.join(FORMAT_FILE);
    let found = match fs.read(&path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_string(),
        Err(error) if error.kind() == ErrorKind::NotFound => {
            let held = fs
                .read_dir(dir)
                .map_err(|e| StoreError::io("listing the data directory", dir, e))?
                .iter()
                .any(|name| name != "LOCK");
            write(fs, dir)?;
            if held {
                tracing::info!(
                    dir = %dir.display(),
                    format = FORMAT_VERSION,
                    "The data directory had no FORMAT file (the layout before it existed); wrote one."
                );
            }
            return Ok(());
        }
        Err(error) => return Err(StoreError::io("reading the format file", &path, error)),
    };
    match found.parse::<u32>() {
        Ok(version) if version == FORMAT_VERSION => Ok(()),
        // No older numbered format exists yet; an older version written
        // by hand is the same layout, so it is brought up to date.
        Ok(version) if version < FORMAT_VERSION => write(fs, dir),
        _ => Err(StoreError::Format {
            path,
            found,
            supported: FORMAT_VERSION,
        }),
    }
}

/// Writes the file whole or not at all: a temporary file, synced, renamed
/// into place, and the directory synced.
fn write(fs: &dyn FileSystem, dir: &Path) -> Result<(), StoreError> {
    let path = dir.join(FORMAT_FILE);
    let temporary = dir.join("FORMAT.tmp");
    let file = fs
        .create(&temporary)
        .map_err(|e| StoreError::io("writing the format file", &temporary, e))?;
    file.write_all_at(format!("{FORMAT_VERSION}\n").as_bytes(), 0)
        .and_then(|()| file.sync_all())
        .map_err(|e| StoreError::io("writing the format file", &temporary, e))?;
    drop(file);
    fs.rename(&temporary, &path)
        .map_err(|e| StoreError::io("writing the format file", &path, e))?;
    fs.sync_dir(dir)
        .map_err(|e| StoreError::io("syncing the data directory", dir, e))
}
