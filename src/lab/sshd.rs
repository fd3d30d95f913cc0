//! The sshd processes of the lab: find the binary, start one per host, wait until it accepts
//! connections, tell whether a recorded PID is still *our* sshd, and stop it.
//!
//! sshd daemonizes itself (the started process exits once the daemon is forked) and writes the
//! daemon's PID to the host's `PidFile` after binding its socket, so the hosts outlive
//! `pgxc-deploy`. A PID is only ever signalled after /proc shows it is an sshd started with that
//! host's config file, so a recycled PID is never killed.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::{Instant, sleep, timeout};

use super::command;
use super::error::{Error, Result};
use super::files;
use super::layout::HostLayout;

const POLL: Duration = Duration::from_millis(20);

/// Finds sshd. It must be an absolute path: sshd re-executes itself for every connection.
pub(crate) fn find() -> Result<PathBuf> {
    let fixed = ["/usr/sbin/sshd", "/usr/local/sbin/sshd", "/sbin/sshd"].map(PathBuf::from);
    let on_path = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).map(|d| d.join("sshd")).collect::<Vec<_>>())
        .unwrap_or_default();
    fixed
        .into_iter()
        .chain(on_path.into_iter().filter(|p| p.is_absolute()))
        .find(|p| p.is_file())
        .ok_or(Error::ToolNotFound { tool: "sshd", package: "openssh-server" })
}

/// Starts sshd for `host` from its config file; returns once the daemon has been forked.
///
/// Binding happens after the fork, so success here does not mean the host is up: see
/// [`wait_ready`].
pub(crate) async fn start(sshd: &Path, host: &HostLayout) -> Result<()> {
    let (config, log) = (host.config(), host.log());
    let args = ["-f".as_ref(), config.as_os_str(), "-E".as_ref(), log.as_os_str()];
    let log_offset = files::len(&log);
    let out = match &host.namespace {
        None => command::output(sshd, args, Some(("sshd", "openssh-server"))).await?,
        // sshd execs in the namespace, so /proc shows it as itself (see `is_lab_sshd`).
        Some(ns) => {
            let netns = ["netns".as_ref(), "exec".as_ref(), ns.as_ref(), sshd.as_os_str()];
            command::output("ip", netns.into_iter().chain(args), Some(("ip", "iproute2"))).await?
        }
    };
    if out.status.success() {
        return Ok(());
    }
    // With -E most messages go to the log, but some (a missing config file) go to stderr.
    let mut detail = format!("{}: {}", out.status, command::stderr_text(&out));
    let logged = files::read_from(&host.log(), log_offset);
    if !logged.trim().is_empty() {
        detail = format!("{detail}; {}", one_line(&logged));
    }
    Err(Error::SshdStart { host: host.name.clone(), detail, log: host.log() })
}

/// Waits until `host` accepts TCP connections and has written the PID of an sshd running its
/// config; returns that PID. `log_offset` is where the log ended before the start, so earlier
/// runs' messages are not mistaken for this one's.
pub(crate) async fn wait_ready(
    host: &HostLayout,
    port: u16,
    log_offset: u64,
    limit: Duration,
) -> Result<u32> {
    let deadline = Instant::now() + limit;
    let address: SocketAddr = format!("{}:{port}", host.address)
        .parse()
        .expect("lab addresses are IPv4 literals and ports are u16");
    loop {
        // Someone else's server (a system sshd on 0.0.0.0:22) could answer too, hence the PID.
        let connected = matches!(
            timeout(Duration::from_millis(500), TcpStream::connect(address)).await,
            Ok(Ok(_))
        );
        if connected
            && let Some(pid) = read_pid(&host.pid_file())?
            && is_lab_sshd(pid, &host.config())
        {
            return Ok(pid);
        }
        let logged = files::read_from(&host.log(), log_offset);
        if let Some(detail) = startup_failure(&logged, port) {
            return Err(Error::SshdStart { host: host.name.clone(), detail, log: host.log() });
        }
        if Instant::now() >= deadline {
            return Err(Error::NotListening {
                host: host.name.clone(),
                address: host.address.clone(),
                port,
                secs: limit.as_secs(),
                log: host.log(),
            });
        }
        sleep(POLL).await;
    }
}

/// The PID recorded in `pid_file`, if there is a readable one.
pub(crate) fn read_pid(pid_file: &Path) -> Result<Option<u32>> {
    Ok(files::read_opt(pid_file)?.and_then(|text| text.trim().parse().ok()))
}

/// True if `pid` is a live (not zombie) sshd started with `config`.
pub(crate) fn is_lab_sshd(pid: u32, config: &Path) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return false };
    // A killed daemon stays a zombie until its parent (init) reaps it; some inits never do.
    if !matches!(stat_state(&stat), Some(state) if state != 'Z' && state != 'X') {
        return false;
    }
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else { return false };
    cmdline_is_lab_sshd(&cmdline, config)
}

/// Stops the sshd of `host` recorded as `pid`: SIGTERM, wait, then SIGKILL.
pub(crate) async fn stop(host: &HostLayout, pid: u32) -> Result<()> {
    let config = host.config();
    if !is_lab_sshd(pid, &config) {
        return Ok(());
    }
    signal(host, pid, "TERM").await?;
    if wait_gone(pid, &config, Duration::from_secs(5)).await {
        return Ok(());
    }
    tracing::warn!(host = %host.name, pid, "sshd ignored SIGTERM for 5s; sending SIGKILL");
    signal(host, pid, "KILL").await?;
    if wait_gone(pid, &config, Duration::from_secs(2)).await {
        Ok(())
    } else {
        Err(Error::StopFailed { host: host.name.clone(), pid })
    }
}

async fn signal(host: &HostLayout, pid: u32, signal: &str) -> Result<()> {
    // The shell's builtin `kill` is always there; /usr/bin/kill (procps) is not. The script is
    // fixed and the values are positional parameters, so there is nothing to quote.
    let pid_text = pid.to_string();
    let args = ["-c", "kill -s \"$1\" \"$2\"", "sh", signal, &pid_text];
    let out = command::output("sh", args, None).await?;
    // A failure because it exited in the meantime is what we wanted anyway.
    if out.status.success() || !is_lab_sshd(pid, &host.config()) {
        Ok(())
    } else {
        Err(Error::Signal { host: host.name.clone(), pid, stderr: command::stderr_text(&out) })
    }
}

async fn wait_gone(pid: u32, config: &Path, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while is_lab_sshd(pid, config) {
        if Instant::now() >= deadline {
            return false;
        }
        sleep(POLL).await;
    }
    true
}

/// The state letter of a /proc/PID/stat line (the field after the parenthesised command name,
/// which may itself contain spaces and parentheses).
fn stat_state(stat: &str) -> Option<char> {
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// True if a /proc/PID/cmdline is an sshd with `config` as one of its words. The daemon
/// rewrites its title to `sshd: /usr/sbin/sshd -f CONFIG -E LOG [listener] ...`, a single
/// string, so split on spaces as well as NULs; lab paths contain no spaces. The program must be
/// sshd itself: `tail -f .../sshd_config` also mentions "sshd" and the config.
fn cmdline_is_lab_sshd(cmdline: &[u8], config: &Path) -> bool {
    let text = String::from_utf8_lossy(cmdline);
    let config = config.to_string_lossy();
    let mut words = text.split([' ', '\0']).filter(|w| !w.is_empty());
    let program = words.next().unwrap_or_default();
    let program = program.rsplit('/').next().unwrap_or_default();
    program.starts_with("sshd") && words.any(|word| word == config)
}

/// A fatal problem reported in the log of a starting sshd, with a hint where we have one.
fn startup_failure(logged: &str, port: u16) -> Option<String> {
    if !logged.contains("Cannot bind any address") {
        return None;
    }
    let mut detail = one_line(logged);
    if logged.contains("Address already in use") {
        detail.push_str(&format!(
            " (another server already listens there: another lab on port {port}, or a system \
             sshd on 0.0.0.0:{port}; stop it or pick another port with --port)"
        ));
    }
    Some(detail)
}

/// Log text as one line: its last few non-empty lines joined with "; ".
fn one_line(text: &str) -> String {
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    lines[lines.len().saturating_sub(3)..].join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_state_skips_odd_command_names() {
        assert_eq!(stat_state("42 (sshd) S 1 42 42 0"), Some('S'));
        assert_eq!(stat_state("42 (a) b) Z 1"), Some('Z'));
        assert_eq!(stat_state("garbage"), None);
    }

    #[test]
    fn cmdline_must_name_sshd_and_the_exact_config() {
        let config = Path::new("/tmp/lab/hosts/h1/sshd_config");
        let listener = b"sshd: /usr/sbin/sshd -f /tmp/lab/hosts/h1/sshd_config -E /tmp/lab/hosts/h1/sshd.log [listener] 0 of 1000-1000 startups\0";
        assert!(cmdline_is_lab_sshd(listener, config));
        let argv = b"/usr/sbin/sshd\0-f\0/tmp/lab/hosts/h1/sshd_config\0";
        assert!(cmdline_is_lab_sshd(argv, config));
        let other_host = b"/usr/sbin/sshd\0-f\0/tmp/lab/hosts/h11/sshd_config\0";
        assert!(!cmdline_is_lab_sshd(other_host, config));
        let prefixed = b"/usr/sbin/sshd\0-f\0/x/tmp/lab/hosts/h1/sshd_config\0";
        assert!(!cmdline_is_lab_sshd(prefixed, config));
        let tail = b"tail\0-f\0/tmp/lab/hosts/h1/sshd_config\0";
        assert!(!cmdline_is_lab_sshd(tail, config));
        let session = b"sshd: root@notty\0";
        assert!(!cmdline_is_lab_sshd(session, config));
    }

    #[test]
    fn bind_failures_are_reported_with_a_hint() {
        let log = "Bind to port 22 on 127.0.10.1 failed: Address already in use.\n\
                   Cannot bind any address.\n";
        let detail = startup_failure(log, 22).unwrap();
        assert!(detail.starts_with("Bind to port 22 on 127.0.10.1 failed"), "{detail}");
        assert!(detail.contains("--port"), "{detail}");
        assert_eq!(startup_failure("Server listening on 127.0.10.1 port 22.\n", 22), None);
    }
}
