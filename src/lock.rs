//! I/O. The cluster lock: on every host, `flock` on `<data_root>/.pgxc-deploy.lock`, held by a
//! remote command that lives exactly as long as this process's SSH connection. Every command
//! that changes the cluster or the roles file takes it (apply, start, stop, restart, clean,
//! failover, switchover, degrade, and `status --heal` while it heals), so two of them never
//! interleave, and one that is killed (or whose connection drops) leaves no stale lock behind:
//! its sshd session ends, and the lock with it. That takes sshd a moment to notice (longer on
//! a busy host, or while it still receives an upload), so a lock whose holder is a pgxc-deploy
//! of this machine that no longer runs is waited for (up to 15 s), not refused.

use std::collections::BTreeMap;
use std::path::Path;

use futures::future::join_all;

use crate::executor::StepError;
pub use crate::remote::lock::LOCK_FILE;
use crate::remote::lock::{BUSY, lock_script};
use crate::shell::Become;
use crate::shell::Lines;
use crate::transport::{Fleet, Held};

/// Who this process is, for the owner file: `apply by USER@HOST (pid N)`.
pub fn owner(what: &str) -> String {
    let user = std::env::var("USER").unwrap_or_else(|_| "?".into());
    format!("{what} by {user}@{} (pid {})", this_host(), std::process::id())
}

fn this_host() -> String {
    std::fs::read_to_string("/etc/hostname").unwrap_or_default().trim().to_string()
}

/// How long a lock whose holder is a pgxc-deploy of this machine that no longer runs (killed a
/// moment ago) is waited for: its sshd sessions notice the closed connection and end the lock
/// within moments, later when the host is busy (more so while it receives an upload).
const GONE_HOLDER_WAIT: std::time::Duration = std::time::Duration::from_secs(15);

/// Whether `holder` (`locked by WHAT by USER@HOST (pid N)`, [`owner`]) names a process of this
/// machine (`this_host`) that is no longer running. A holder on another machine, or one that
/// cannot be read, is taken as alive.
fn holder_is_gone(holder: &str, this_host: &str) -> bool {
    let Some((rest, pid)) = holder.strip_suffix(')').and_then(|h| h.rsplit_once(" (pid ")) else {
        return false;
    };
    let Ok(pid) = pid.parse::<u32>() else { return false };
    let same_host = rest.rsplit_once('@').is_some_and(|(_, host)| host == this_host);
    same_host && pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists()
}

/// One host's try at the lock that was not refused.
enum Try {
    /// Held, with what its [`LockHost::then`] printed (when given).
    Locked(Held, Option<Result<Vec<u8>, StepError>>),
    /// Left unlocked: the host could not be connected to (see `skip_unreachable`); why, when
    /// it had a [`LockHost::then`] to run.
    Unlocked(Option<StepError>),
}
use Try::{Locked, Unlocked};

/// The lock, held on every host of the cluster.
pub struct ClusterLock {
    held: Vec<Held>,
    /// Per host whose [`LockHost::then`] was given: what it printed, or why that could not be
    /// read (the host left unlocked because it could not be connected to, too).
    pub outputs: BTreeMap<String, Result<Vec<u8>, StepError>>,
}

/// One host to lock: its name, data root and how to run as the cluster's user.
pub struct LockHost {
    pub host: String,
    pub data_root: String,
    pub as_user: Become,
    /// A read-only script to run once the lock is held (see [`lock_script`]).
    pub then: Option<Lines>,
}

impl ClusterLock {
    /// Take the lock on every host at once. If any host refuses (busy or, unless
    /// `skip_unreachable`, unreachable), the others are released and every refusal comes back
    /// as `(host, why)`. With `skip_unreachable` (failover: its primary's machine may be gone),
    /// a host that cannot be connected to is left unlocked.
    pub async fn acquire(
        fleet: &Fleet,
        hosts: &[LockHost],
        owner: &str,
        skip_unreachable: bool,
    ) -> Result<ClusterLock, Vec<(String, String)>> {
        let tries = hosts.iter().map(|h| async move {
            let session = match fleet.session(&h.host).await {
                Ok(session) => session,
                // Its probe, if it had one, says why it could not run.
                Err(e) if skip_unreachable => {
                    return Ok(Unlocked(h.then.as_ref().map(|_| StepError::new("connect", e))));
                }
                Err(e) => return Err(crate::errors::chain(&e)),
            };
            let script = lock_script(&h.data_root, owner, h.then.clone()).to_string();
            let script = h.as_user.wrap(&script);
            let file = format!("{}/{LOCK_FILE}", h.data_root);
            let start = std::time::Instant::now();
            loop {
                let out = match session.hold(&script).await.map_err(|e| crate::errors::chain(&e))? {
                    Ok((mut held, line)) if line == "locked" => {
                        let output = match h.then {
                            Some(_) => Some(
                                held.read_block().await.map_err(|e| StepError::new("probe", e)),
                            ),
                            None => None,
                        };
                        return Ok(Locked(held, output));
                    }
                    Ok((held, line)) => {
                        held.release().await;
                        return Err(format!("unexpected answer from the lock: {line}"));
                    }
                    Err(out) => out,
                };
                let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
                if out.status != crate::transport::ExitStatus::Code(BUSY) {
                    return Err(format!("cannot take the lock {file}: {}: {stderr}", out.status));
                }
                let holder = holder(&stderr);
                if holder_is_gone(holder, &this_host()) && start.elapsed() < GONE_HOLDER_WAIT {
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
                return Err(format!(
                    "{holder}: another pgxc-deploy works on this cluster ({file}); \
                     try again once it has ended (the lock ends with its SSH connection)"
                ));
            }
        });
        let results = join_all(tries).await;
        let mut held = Vec::new();
        let mut outputs = BTreeMap::new();
        let mut refused = Vec::new();
        for (h, r) in hosts.iter().zip(results) {
            match r {
                Ok(Locked(lock, output)) => {
                    held.push(lock);
                    outputs.extend(output.map(|o| (h.host.clone(), o)));
                }
                Ok(Unlocked(why)) => outputs.extend(why.map(|e| (h.host.clone(), Err(e)))),
                Err(why) => refused.push((h.host.clone(), why)),
            }
        }
        if refused.is_empty() {
            return Ok(ClusterLock { held, outputs });
        }
        ClusterLock { held, outputs }.release().await;
        Err(refused)
    }

    /// Give the lock back on every host.
    pub async fn release(self) {
        join_all(self.held.into_iter().map(Held::release)).await;
    }
}

/// Who holds a busy lock, from the lock script's stderr: its own `locked by ...` line. A
/// login's noise (a `~/.bashrc` that writes to stderr) comes before it and is left out.
fn holder(stderr: &str) -> &str {
    stderr.lines().rev().find(|l| l.starts_with("locked by ")).unwrap_or(stderr)
}

#[cfg(test)]
mod tests {
    use super::{holder, holder_is_gone};

    #[test]
    fn the_holder_is_the_lock_scripts_own_line_whatever_a_login_printed_before() {
        let stderr = "rm: cannot remove '/root/.pyenv/shims/tmp.x': No such file or directory\n\
                      pyenv: cannot rehash: /root/.pyenv/shims isn't writable\n\
                      locked by apply by a@b (pid 7)";
        assert_eq!(holder(stderr), "locked by apply by a@b (pid 7)");
        assert_eq!(holder("something else"), "something else");
    }

    /// Only a holder of this machine whose process is gone is waited for.
    #[test]
    fn a_holder_is_gone_only_when_it_ran_here_and_its_process_ended() {
        let mut gone = std::process::Command::new("true").spawn().unwrap();
        let pid = gone.id();
        gone.wait().unwrap();
        let line = |host: &str, pid: u32| format!("locked by apply by me@{host} (pid {pid})");
        assert!(holder_is_gone(&line("vm", pid), "vm"));
        assert!(!holder_is_gone(&line("other", pid), "vm"), "another machine's process");
        assert!(!holder_is_gone(&line("vm", std::process::id()), "vm"), "a running process");
        assert!(!holder_is_gone("locked by another apply", "vm"));
        assert!(!holder_is_gone("locked by apply by me@vm (pid x)", "vm"));
    }
}
