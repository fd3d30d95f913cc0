//! Running the local helper programs of the lab (ssh-keygen, sshd, useradd, kill) with
//! `tokio::process`, and turning their failures into [`Error`]s that carry stderr.

use std::ffi::OsStr;
use std::io;
use std::process::{Output, Stdio};

use tokio::process::Command;

use super::error::{Error, Result};

/// Runs `program` with `args` to completion, stdin closed, capturing stdout and stderr.
///
/// Only a failure to start the program is an error here; see [`check`] for the exit status.
/// `missing` names the package to suggest when the program does not exist.
pub(crate) async fn output<P, I, S>(
    program: P,
    args: I,
    missing: Option<(&'static str, &'static str)>,
) -> Result<Output>
where
    P: AsRef<OsStr>,
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let program = program.as_ref();
    let result = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .await;
    match (result, missing) {
        (Ok(output), _) => Ok(output),
        (Err(e), Some((tool, package))) if e.kind() == io::ErrorKind::NotFound => {
            Err(Error::ToolNotFound { tool, package })
        }
        (Err(source), _) => {
            Err(Error::Spawn { program: program.to_string_lossy().into_owned(), source })
        }
    }
}

/// Turns a non-zero exit into [`Error::Command`], described by `what`.
pub(crate) fn check(output: Output, what: impl FnOnce() -> String) -> Result<Output> {
    if output.status.success() {
        Ok(output)
    } else {
        Err(Error::Command { what: what(), status: output.status, stderr: stderr_text(&output) })
    }
}

/// The trimmed stderr of `output`, or a placeholder when it printed nothing.
pub(crate) fn stderr_text(output: &Output) -> String {
    let text = String::from_utf8_lossy(&output.stderr).trim().to_string();
    if text.is_empty() { "(no output on stderr)".to_string() } else { text }
}
