//! The files pgxc-deploy keeps beside an inventory, `<dir>/<stem>.<kind>.toml`: the roles file
//! ([`super::roles`]) and the replication record ([`super::replication`]). Read whole (absent:
//! the default), and written whole: a new file, synced, renamed over the old one, the directory
//! synced, so a crash leaves the old content or the new, never a part.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

/// Where the `kind` file of `inventory` is (`roles` -> `lab.roles.toml` for `lab.toml`).
pub fn path_for(inventory: &Path, kind: &str) -> PathBuf {
    let stem = inventory.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    inventory.with_file_name(format!("{stem}.{kind}.toml"))
}

/// Why a file beside the inventory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {path}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path} is not a {what} pgxc-deploy wrote: {message}")]
    Parse { path: PathBuf, what: &'static str, message: String },
    #[error("cannot write {path}")]
    Write { path: PathBuf, source: std::io::Error },
}

/// The `kind` file beside `inventory` (`what` names it in errors), or the default when there
/// is none.
pub fn load<T: DeserializeOwned + Default>(
    inventory: &Path,
    kind: &str,
    what: &'static str,
) -> Result<T, Error> {
    let path = path_for(inventory, kind);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            toml::from_str(&text).map_err(|e| Error::Parse { path, what, message: e.to_string() })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(T::default()),
        Err(source) => Err(Error::Read { path, source }),
    }
}

/// Write `text` as the `kind` file beside `inventory`, unless it holds that already.
pub fn save(inventory: &Path, kind: &str, text: &str) -> Result<PathBuf, Error> {
    let path = path_for(inventory, kind);
    if std::fs::read_to_string(&path).is_ok_and(|t| t == text) {
        return Ok(path);
    }
    // One temporary name per process: two commands that save at once never share one.
    let tmp = path.with_extension(format!("toml.{}.tmp", std::process::id()));
    let write = |source| Error::Write { path: path.clone(), source };
    let mut file = std::fs::File::create(&tmp).map_err(write)?;
    std::io::Write::write_all(&mut file, text.as_bytes()).map_err(write)?;
    file.sync_all().map_err(write)?;
    std::fs::rename(&tmp, &path).map_err(write)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(write)?;
    }
    Ok(path)
}
