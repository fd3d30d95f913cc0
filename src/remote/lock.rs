//! The cluster lock's remote script ([`lock_script`]): `flock` on
//! `<data_root>/.pgxc-deploy.lock`, held for as long as its input stays open. PURE: it only
//! writes the script; [`crate::lock`] runs it over each host's SSH connection and reads its
//! answer.

use crate::shell::{Cmd, Lines, STEPS_LOCK, quote};

/// The lock file under a host's data root; `.owner` beside it says who holds it.
pub const LOCK_FILE: &str = ".pgxc-deploy.lock";

/// How long the lock waits for the steps of an earlier command (killed, or cut off) to end:
/// their guard kills them within a fraction of a second of their connection's end.
const STEPS_WAIT: u32 = 30;

/// Exit status of the lock script when another holder has the lock.
pub const BUSY: u32 = 75;

/// The remote script: take the lock without waiting, record `owner`, wait until no step of an
/// earlier command runs on the host (the steps lock, [`STEPS_LOCK`], is free), print `locked`,
/// then run `then` if given (under the lock, in the same login: apply's probe, so that a host
/// pays one shell start-up instead of two) and print its output as a block (`block N`, then N
/// bytes; [`crate::transport::Held::read_block`]), then hold the lock until stdin closes.
/// Busy: print the holder on stderr and exit 75.
pub fn lock_script(data_root: &str, owner: &str, then: Option<Lines>) -> Lines {
    let file = format!("{data_root}/{LOCK_FILE}");
    let owner_file = format!("{file}.owner");
    let steps = format!("{data_root}/{STEPS_LOCK}");
    let lines = Lines::new()
        .set("lock", file)
        .set("owner_file", &owner_file)
        .set("steps", &steps)
        // Shown in a message as a command line to copy: quoted as a shell reads it back.
        .set("steps_shown", quote(&steps))
        // Constant control flow after the command.
        .cmd(Cmd::new("mkdir").arg("-p").arg(data_root).raw("|| exit 1"))
        // Constant from here, but for `then`; the numbers are constants.
        .raw("exec 9>>\"$lock\" || exit 1")
        .raw(&format!(
            "if ! flock -n 9; then echo \"locked by $(cat \"$owner_file\" 2>/dev/null || echo \
             'another apply')\" >&2; exit {BUSY}; fi"
        ))
        .cmd(Cmd::new("printf").arg("%s\\n").arg(owner).raw(">").arg(&owner_file))
        .raw("exec 8>>\"$steps\" || exit 1")
        .raw(&format!(
            "if ! flock -w {STEPS_WAIT} 8; then echo \"steps that an earlier pgxc-deploy started \
             still run after {STEPS_WAIT} s ($steps_shown is held); look for them with: fuser -v \
             $steps_shown\" >&2; exit 1; fi"
        ))
        .raw("exec 8>&-")
        .raw("echo locked");
    match then {
        Some(then) => lines.lines(run_as_block(then)),
        None => lines,
    }
    .raw("exec cat >/dev/null")
}

/// Shell that runs `script` in a subshell and prints what it printed on stdout as a block.
fn run_as_block(script: Lines) -> Lines {
    // Constant around `script` (the probe, from `remote::probe`, built as Lines there).
    Lines::new()
        .raw("t=$(mktemp) || exit 1")
        .raw("(")
        .lines(script)
        .raw(") >\"$t\" 2>/dev/null")
        .raw("printf 'block %s\\n' \"$(($(wc -c < \"$t\")))\"")
        .raw("cat \"$t\"; rm -f \"$t\"")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    /// The real script under /bin/sh: a second holder is refused, naming the first; once the
    /// first one's input closes, the lock is free again.
    #[test]
    fn a_second_holder_is_refused_until_the_first_ends() {
        let dir = tempfile::tempdir().unwrap();
        let root = format!("{}/data root", dir.path().display());
        let spawn = |owner: &str| {
            Command::new("/bin/sh")
                .arg("-c")
                .arg(lock_script(&root, owner, None).to_string())
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        };
        let mut first = spawn("apply by a@b (pid 1)");
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(first.stdout.as_mut().unwrap()),
            &mut line,
        )
        .unwrap();
        assert_eq!(line, "locked\n");

        let second = spawn("apply by c@d (pid 2)").wait_with_output().unwrap();
        assert_eq!(second.status.code(), Some(BUSY as i32));
        assert_eq!(String::from_utf8_lossy(&second.stderr), "locked by apply by a@b (pid 1)\n");

        drop(first.stdin.take());
        assert!(first.wait().unwrap().success());
        let mut third = spawn("apply by e@f (pid 3)");
        drop(third.stdin.take());
        let out = third.wait_with_output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "locked\n");
    }

    /// What runs under the lock prints one block, whatever it prints or fails with.
    #[test]
    fn a_script_run_under_the_lock_prints_one_block() {
        let dir = tempfile::tempdir().unwrap();
        let root = format!("{}/root", dir.path().display());
        let then = "echo 'block 99'; printf 'a\\nb'; echo oops >&2; exit 3";
        let out = Command::new("/bin/sh")
            .arg("-c")
            .arg(
                lock_script(&root, "apply by a@b (pid 1)", Some(Lines::new().raw(then)))
                    .to_string(),
            )
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(String::from_utf8_lossy(&out.stdout), "locked\nblock 12\nblock 99\na\nb");
    }

    /// A data root and an owner with quotes, spaces and `$` reach the script as they are.
    #[test]
    fn any_data_root_and_owner_reach_the_lock_as_they_are() {
        let dir = tempfile::tempdir().unwrap();
        let root = format!("{}/it's a \"root\" $HOME `id`", dir.path().display());
        let owner = "apply by 'me' \"$USER\" `id` (pid 1)";
        let mut first = Command::new("/bin/sh")
            .arg("-c")
            .arg(lock_script(&root, owner, None).to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(first.stdout.as_mut().unwrap()),
            &mut line,
        )
        .unwrap();
        assert_eq!(line, "locked\n");
        assert!(std::path::Path::new(&format!("{root}/{LOCK_FILE}")).exists());
        let second = Command::new("/bin/sh")
            .arg("-c")
            .arg(lock_script(&root, "apply by c@d (pid 2)", None).to_string())
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(second.status.code(), Some(BUSY as i32));
        assert_eq!(String::from_utf8_lossy(&second.stderr), format!("locked by {owner}\n"));
        drop(first.stdin.take());
        assert!(first.wait().unwrap().success());
    }
}
