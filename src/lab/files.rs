//! Filesystem helpers for the lab: every call names its action and path in the error, and sets
//! modes explicitly so the result does not depend on the caller's umask.
//!
//! Files are small, so plain `std::fs` is used even from async code.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::error::{Result, io_at};

/// Creates `path` (and missing parents) and sets its mode.
pub(crate) fn create_dir(path: &Path, mode: u32) -> Result<()> {
    fs::create_dir_all(path).map_err(io_at("create directory", path))?;
    set_mode(path, mode)
}

/// Sets the permission bits of `path`.
pub(crate) fn set_mode(path: &Path, mode: u32) -> Result<()> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(io_at("chmod", path))
}

/// Writes `contents` to `path` atomically (temporary file + rename) with the given mode, so a
/// reader such as ssh never sees a half-written known_hosts.
pub(crate) fn write(path: &Path, contents: &str, mode: u32) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = Path::new(&tmp);
    fs::write(tmp, contents).map_err(io_at("write", tmp))?;
    set_mode(tmp, mode)?;
    fs::rename(tmp, path).map_err(io_at("rename into place", path))
}

/// Reads `path`, or `None` if it does not exist.
pub(crate) fn read_opt(path: &Path) -> Result<Option<String>> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_at("read", path)(e)),
    }
}

/// Removes the file at `path` if it exists.
pub(crate) fn remove_opt(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_at("remove", path)(e)),
    }
}

/// Length of the file at `path`, 0 if it does not exist.
pub(crate) fn len(path: &Path) -> u64 {
    fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// The part of the file at `path` from byte `offset` on, lossily decoded; empty if unreadable.
pub(crate) fn read_from(path: &Path, offset: u64) -> String {
    let bytes = fs::read(path).unwrap_or_default();
    let start = usize::try_from(offset).unwrap_or(usize::MAX).min(bytes.len());
    String::from_utf8_lossy(&bytes[start..]).into_owned()
}
