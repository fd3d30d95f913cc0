//! The inventory: which hosts make up a cluster and which nodes run where.
//!
//! Pure except for [`load`], which reads the file, and [`parse`], which reads the process
//! environment for `$VARIABLES` and `~/` ([`parse_with_env`] takes it as a lookup). The pipeline is
//! text -> `raw` (serde structs, spans kept) -> `validate` -> `model` ([`Inventory`]), and
//! [`select()`] turns a `--on` selector into targets. Every problem in a file is reported at
//! once as a [`Diagnostic`] with file:line:column and a hint. Commands call [`load`] first and
//! print the [`Error`] (exit 2) when it fails.

mod beside;
mod diagnostic;
mod model;
mod raw;
pub mod replication;
pub mod roles;
mod select;
mod validate;

pub use diagnostic::{Diagnostic, Error, Severity, Snippet};
pub use model::*;
pub use select::{SelectError, Target, select, select_excluding};

use diagnostic::Lines;
use std::path::Path;

/// Read and validate an inventory file.
pub fn load(path: &Path) -> Result<Inventory, Error> {
    let file = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|err| Error {
        diagnostics: vec![Diagnostic {
            file: file.clone(),
            line: 0,
            column: 0,
            severity: Severity::Error,
            message: format!("cannot read inventory: {err}"),
            hint: Some("check the inventory path given on the command line".to_string()),
            snippet: None,
        }],
    })?;
    match String::from_utf8(bytes) {
        Ok(text) => parse(&text, path),
        Err(err) => Err(Error { diagnostics: vec![not_utf8(file, err)] }),
    }
}

/// Where the first byte that is not UTF-8 is: the text before it is, so its line and column
/// are those of the lossily decoded text.
fn not_utf8(file: String, err: std::string::FromUtf8Error) -> Diagnostic {
    let at = err.utf8_error().valid_up_to();
    let byte = err.as_bytes()[at];
    let text = String::from_utf8_lossy(err.as_bytes());
    let lines = Lines::new(&text);
    let (line, column) = lines.position(at);
    Diagnostic {
        file,
        line,
        column,
        severity: Severity::Error,
        message: format!("the inventory is not UTF-8 text: byte 0x{byte:02x} is not valid here"),
        hint: Some("save the file as UTF-8 (TOML files are UTF-8)".to_string()),
        snippet: Some(lines.snippet(&(at..at + 1))),
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
        assert!(
            shown.ends_with("\n  hint: check the inventory path given on the command line"),
            "{shown}"
        );
    }

    #[test]
    fn a_file_that_is_not_utf8_is_refused_at_its_first_bad_byte() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("latin1.toml");
        std::fs::write(&path, b"[hosts.db1]\naddress = \"caf\xe9\"\n").unwrap();
        let shown = load(&path).unwrap_err().to_string();
        let expected = format!(
            "{}:2:15: error: the inventory is not UTF-8 text: byte 0xe9 is not valid here\n  |\n\
             2 | address = \"caf\u{fffd}\"\n  |               ^\n  \
             hint: save the file as UTF-8 (TOML files are UTF-8)",
            path.display()
        );
        assert_eq!(shown, expected);
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
