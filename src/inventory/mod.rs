//! The inventory: which hosts make up a cluster and which nodes run where.
//!
//! Pure except for [`load`], which reads the file, and [`parse`], which reads the process
//! environment for `$VARIABLES` and `~/` ([`parse_with_env`] takes it as a lookup). The pipeline is
//! text -> `raw` (serde structs, spans kept) -> `validate` -> `model` ([`Inventory`]), and
//! [`select()`] turns a `--on` selector into targets. Every problem in a file is reported at
//! once as a [`Diagnostic`] with file:line:column and a hint. Commands call [`load`] first and
//! print the [`Error`] (exit 2) when it fails.

mod model;
mod raw;
pub mod replication;
pub mod roles;
mod select;
mod validate;

pub use model::*;
pub use select::{SelectError, Target, select};

use std::fmt;
use std::path::Path;

/// Read and validate an inventory file.
pub fn load(path: &Path) -> Result<Inventory, Error> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&text, path),
        Err(err) => Err(Error {
            diagnostics: vec![Diagnostic {
                file: path.display().to_string(),
                line: 0,
                column: 0,
                message: format!("cannot read inventory: {err}"),
                hint: Some("check the path given with --inventory".to_string()),
            }],
        }),
    }
}

/// Validate inventory text. `path` labels diagnostics, gives the default cluster name (its
/// stem) and the base for relative local paths; `~/` expands to `$HOME`, and `$NAME` / `${NAME}`
/// in string values to the process environment.
pub fn parse(text: &str, path: &Path) -> Result<Inventory, Error> {
    parse_with_env(text, path, &|name| std::env::var(name).ok())
}

/// [`parse`] with another environment: `env` looks up `$NAME` and `HOME` (`None`: not set).
pub fn parse_with_env(
    text: &str,
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Inventory, Error> {
    validate::validate(text, path, env)
}

/// Every problem found in an inventory, sorted by position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub diagnostics: Vec<Diagnostic>,
}

/// One problem at one place in the inventory file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The path as given to [`parse`] or [`load`].
    pub file: String,
    /// 1-based. 0 means the problem concerns the whole file (unreadable, no hosts, ...).
    pub line: usize,
    /// 1-based, in characters. 0 when `line` is 0.
    pub column: usize,
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: error: {}", self.file, self.message)?;
        } else {
            write!(f, "{}:{}:{}: error: {}", self.file, self.line, self.column, self.message)?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

/// One diagnostic after another, each on its own line(s), with no trailing newline.
impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, diagnostic) in self.diagnostics.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{diagnostic}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreadable_file_is_one_whole_file_diagnostic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing.toml");
        let err = load(&path).unwrap_err();
        assert_eq!(err.diagnostics.len(), 1);
        let shown = err.to_string();
        assert!(shown.starts_with(&format!("{}: error: cannot read inventory: ", path.display())));
        assert!(shown.ends_with("\n  hint: check the path given with --inventory"), "{shown}");
    }

    #[test]
    fn load_reads_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tiny.toml");
        std::fs::write(&path, "[hosts.db1]\naddress = \"127.0.0.1\"\n").unwrap();
        let inv = load(&path).unwrap();
        assert_eq!(inv.cluster.name, "tiny");
        assert_eq!(inv.path, path);
    }
}
