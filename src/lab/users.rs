//! Who runs the lab and who logs in to it.
//!
//! The SSH login is the invoking user. The *cluster user* owns the install and data directories:
//! PostgreSQL refuses to run as root, so when the lab runs as root it provides `pgxc`, creating
//! it with `useradd` and unlocking it (sshd with `UsePAM no` refuses locked accounts). As an
//! ordinary user, sshd can only log that user in, so the cluster user is the invoking user.
//!
//! Parsing of /proc/self/status, /etc/passwd and /etc/shadow is pure and tested here; the rest
//! reads those files or runs useradd/usermod.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use tokio::sync::Mutex;

use super::command;
use super::error::{Error, Result, io_at};
use super::files;

/// The non-root login provided when the lab runs as root.
pub(crate) const CLUSTER_USER_WHEN_ROOT: &str = "pgxc";

/// A local account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Account {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

impl Account {
    pub fn is_root(&self) -> bool {
        self.uid == 0
    }

    /// Name of the account that owns install and data directories in a lab run by `self`.
    pub fn cluster_user_name(&self) -> String {
        if self.is_root() { CLUSTER_USER_WHEN_ROOT.to_string() } else { self.name.clone() }
    }
}

/// The account whose effective uid runs this process.
pub(crate) fn invoking() -> Result<Account> {
    let status =
        std::fs::read_to_string("/proc/self/status").map_err(io_at("read", "/proc/self/status"))?;
    let (uid, gid) = effective_ids(&status).ok_or_else(|| Error::Io {
        action: "find Uid/Gid lines in",
        path: "/proc/self/status".into(),
        source: std::io::Error::from(std::io::ErrorKind::InvalidData),
    })?;
    if let Some(account) = passwd_lookup(|a| a.uid == uid)? {
        return Ok(account);
    }
    // Accounts from LDAP and the like are not in /etc/passwd; their sessions still set $USER.
    match std::env::var("USER") {
        Ok(name) if !name.is_empty() => Ok(Account { name, uid, gid }),
        _ => Err(Error::UnknownUser { uid }),
    }
}

/// Makes sure the cluster user exists and can log in with a key. Root only.
pub(crate) async fn ensure_cluster_user(name: &str) -> Result<Account> {
    // Parallel `up`s in one process (tests) would race on useradd; serialise them.
    static USERADD: Mutex<()> = Mutex::const_new(());
    let _guard = USERADD.lock().await;

    let mut created = false;
    if passwd_lookup(|a| a.name == name)?.is_none() {
        tracing::info!(user = name, "creating the lab's non-root login");
        let out = command::output("useradd", ["-m", "-s", "/bin/bash", name], None).await?;
        // Exit 9: the name is taken, i.e. another process created it meanwhile. Fine.
        if out.status.code() != Some(9) {
            command::check(out, || format!("useradd {name}"))?;
            created = true;
        }
    }
    let account = passwd_lookup(|a| a.name == name)?.ok_or_else(|| Error::LoginUser {
        user: name.to_string(),
        reason: "useradd succeeded but the user is not in /etc/passwd".to_string(),
    })?;

    let shadow = files::read_opt(Path::new("/etc/shadow"))?.unwrap_or_default();
    match shadow_password(&shadow, name).map(lock_state) {
        Some(Lock::LockedPassword) => Err(Error::LoginUser {
            user: name.to_string(),
            reason: "the account is locked (password starts with '!') and sshd refuses it: \
                     unlock it (usermod -U) or delete it to let the lab recreate it"
                .to_string(),
        }),
        Some(Lock::LockedEmpty) => {
            unlock(name).await?;
            Ok(account)
        }
        // A user we just created is locked too; if /etc/shadow said otherwise, be sure anyway.
        _ if created => {
            unlock(name).await?;
            Ok(account)
        }
        _ => Ok(account),
    }
}

/// Sets the password field to `*`: no password can match, but the account is no longer locked.
async fn unlock(name: &str) -> Result<()> {
    let out = command::output("usermod", ["-p", "*", name], None).await?;
    command::check(out, || format!("usermod -p '*' {name}"))?;
    Ok(())
}

/// Checks that `account` can traverse every directory from `/` down to `dir`, so that sshd,
/// reading authorized_keys as that user, and the user's own processes can reach the lab.
pub(crate) fn check_reachable(dir: &Path, account: &Account) -> Result<()> {
    for ancestor in dir.ancestors() {
        let meta = std::fs::metadata(ancestor).map_err(io_at("inspect", ancestor))?;
        let mode = meta.mode();
        let bit = if meta.uid() == account.uid {
            0o100
        } else if meta.gid() == account.gid {
            0o010
        } else {
            0o001
        };
        if mode & bit == 0 {
            return Err(Error::BadDir {
                dir: dir.to_path_buf(),
                reason: format!(
                    "`{}` (mode {:o}) cannot be entered by {}, who must log in with the lab's \
                     keys: run `chmod o+x {}` or choose another --dir",
                    ancestor.display(),
                    mode & 0o7777,
                    account.name,
                    ancestor.display()
                ),
            });
        }
    }
    Ok(())
}

/// Gives `path` to `account`. Only the directory itself, never its contents.
pub(crate) fn chown(path: &Path, account: &Account) -> Result<()> {
    std::os::unix::fs::chown(path, Some(account.uid), Some(account.gid))
        .map_err(io_at("change the owner of", path))
}

fn passwd_lookup(matches: impl Fn(&Account) -> bool) -> Result<Option<Account>> {
    let text = files::read_opt(Path::new("/etc/passwd"))?.unwrap_or_default();
    Ok(text.lines().filter_map(parse_passwd_line).find(|a| matches(a)))
}

/// The effective uid and gid from the text of /proc/self/status.
fn effective_ids(status: &str) -> Option<(u32, u32)> {
    let field = |key: &str| -> Option<u32> {
        let line = status.lines().find(|l| l.starts_with(key))?;
        // "Uid:\treal\teffective\tsaved\tfs"
        line[key.len()..].split_whitespace().nth(1)?.parse().ok()
    };
    Some((field("Uid:")?, field("Gid:")?))
}

fn parse_passwd_line(line: &str) -> Option<Account> {
    let mut fields = line.split(':');
    let name = fields.next()?;
    let _password = fields.next()?;
    let uid = fields.next()?.parse().ok()?;
    let gid = fields.next()?.parse().ok()?;
    (!name.is_empty()).then(|| Account { name: name.to_string(), uid, gid })
}

/// The password field of `user` in /etc/shadow text.
fn shadow_password<'a>(shadow: &'a str, user: &str) -> Option<&'a str> {
    shadow.lines().find_map(|line| {
        let mut fields = line.split(':');
        (fields.next()? == user).then(|| fields.next()).flatten()
    })
}

#[derive(Debug, PartialEq, Eq)]
enum Lock {
    Unlocked,
    /// `!`, `!!` or `!*`: locked with no password behind it, as useradd leaves it.
    LockedEmpty,
    /// `!` before a real hash: someone locked it on purpose.
    LockedPassword,
}

fn lock_state(password: &str) -> Lock {
    match password.strip_prefix('!') {
        None => Lock::Unlocked,
        Some("" | "!" | "*") => Lock::LockedEmpty,
        Some(_) => Lock::LockedPassword,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn effective_ids_come_from_the_second_column() {
        let status = "Name:\tx\nUid:\t1000\t0\t0\t0\nGid:\t100\t5\t5\t5\n";
        assert_eq!(effective_ids(status), Some((0, 5)));
        assert_eq!(effective_ids("Name:\tx\n"), None);
    }

    #[test]
    fn passwd_lines_parse() {
        let a = parse_passwd_line("pgxc:x:1001:1002:,,,:/home/pgxc:/bin/bash").unwrap();
        assert_eq!(a, Account { name: "pgxc".into(), uid: 1001, gid: 1002 });
        assert_eq!(a.cluster_user_name(), "pgxc");
        assert!(parse_passwd_line("+::::::").is_none());
        assert!(parse_passwd_line("").is_none());
        let root = Account { name: "root".into(), uid: 0, gid: 0 };
        assert_eq!(root.cluster_user_name(), CLUSTER_USER_WHEN_ROOT);
    }

    #[test]
    fn shadow_lock_states() {
        let shadow = "root:*:19000:0:99999:7:::\npgxc:!:19000:0:99999:7:::\n";
        assert_eq!(shadow_password(shadow, "pgxc"), Some("!"));
        assert_eq!(shadow_password(shadow, "nobody"), None);
        assert_eq!(lock_state("*"), Lock::Unlocked);
        assert_eq!(lock_state(""), Lock::Unlocked);
        assert_eq!(lock_state("$y$j9T$abc"), Lock::Unlocked);
        for s in ["!", "!!", "!*"] {
            assert_eq!(lock_state(s), Lock::LockedEmpty, "{s}");
        }
        assert_eq!(lock_state("!$y$j9T$abc"), Lock::LockedPassword);
    }
}
