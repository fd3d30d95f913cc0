//! The shell of plan steps: what [`crate::executor::steps`] runs on a host for each
//! [`Action`](crate::plan::step::Action) (start, stop, restart, promote, waits, removal,
//! fencing). PURE: these functions only build the scripts; the executor runs them as the
//! cluster's user, guarded ([`crate::shell::Become::wrap_guarded`]).

use crate::plan::restart::{DOWN_MS_PREFIX, WAS_DOWN};
use crate::plan::state::{INIT_MARKER, STREAMED_MARKER};
use crate::shell::{Cmd, Script, quote};

use super::probe::live_server;

/// Create a staging data directory: remove a leftover one, run `argv` (initdb, initgtm or
/// pg_basebackup) into it, make it durable and strip what a clone copies from its primary.
pub fn prepare_init(argv: &[String], staging: &str, parent: &str) -> Script {
    Script::new()
        // Only the staging directory of an interrupted run is ever removed.
        .cmd(Cmd::new("rm").arg("-rf").arg(staging))
        .cmd(Cmd::new("mkdir").arg("-p").arg(parent))
        .cmd(Cmd::new(&argv[0]).args(&argv[1..]))
        // initdb runs with --nosync: one sync makes the new directory durable.
        .cmd(Cmd::new("sync"))
        .cmd(Cmd::new("chmod").arg("700").arg(staging))
        .cmd(strip_copied(staging))
}

/// Shell that removes a server's PID file (postmaster.pid, gtm.pid) in `data_dir`, and the
/// socket lock file of its port when it names the same process, when no live server of that
/// directory holds them ([`live_server`]): the process is gone, a zombie, or another program
/// that got the PID after a reboot. pg_ctl and the server's own lock checks would take a
/// zombie's files for a live server's and refuse to start, and `pg_ctl stop` would signal
/// whatever process now has the PID. Only the port's lock (line 4 of postmaster.pid): the
/// socket directory is shared by the host's nodes, and after a reboot the PID may be another
/// node's new postmaster. An empty PID file (a server writing it this instant) is left alone.
pub fn clear_stale_pid_files(data_dir: &str) -> String {
    let dir = quote(data_dir);
    let files = ["postmaster.pid", "gtm.pid"].map(|f| quote(&format!("{data_dir}/{f}")));
    format!(
        "for f in {}; do [ -s \"$f\" ] || continue; {} && continue; \
         [ -n \"$p\" ] || continue; port=$(sed -n 4p \"$f\"); \
         case $port in ''|*[!0-9]*) ;; *) l={}/.s.PGSQL.$port.lock; \
         [ \"$(head -n 1 \"$l\" 2>/dev/null)\" = \"$p\" ] && rm -f -- \"$l\";; esac; \
         rm -f -- \"$f\"; done; true",
        files.join(" "),
        live_server("\"$f\"", &dir),
        quote(crate::inventory::socket_dir(data_dir))
    )
}

/// Remove what pg_basebackup and pg_rewind copy from the primary's data directory but
/// belongs to the primary: its log, socket lock files, postmaster.opts and the marker that it
/// once streamed as a standby.
pub fn strip_copied(dir: &str) -> Cmd {
    Cmd::new("find").arg(dir).args(["-maxdepth", "1"]).args([
        "(",
        "-name",
        "server.log",
        "-o",
        "-name",
        ".s.PGSQL.*",
        "-o",
        "-name",
        "postmaster.opts",
        "-o",
        "-name",
        STREAMED_MARKER,
        ")",
        "-delete",
    ])
}

/// Remove `staging`, and `data_dir` only if it carries apply's init marker.
pub fn remove_script(data_dir: Option<&str>, staging: Option<&str>) -> Script {
    let mut script = Script::new();
    if let Some(staging) = staging {
        script = script.cmd(Cmd::new("rm").args(["-rf", "--"]).arg(staging));
    }
    if let Some(dir) = data_dir {
        // Shell control flow around quoted values: the marker is checked on the host at the
        // moment of removal, so a directory that is not ours is never removed.
        let refuse = format!("{dir} has no {INIT_MARKER}: not removed");
        script = script.raw(&format!(
            "if [ -f {marker} ]; then rm -rf -- {d}; elif [ -e {d} ]; then echo {refuse} >&2; exit 3; fi",
            marker = quote(&format!("{dir}/{INIT_MARKER}")),
            d = quote(dir),
            refuse = quote(&refuse),
        ));
    }
    script
}

/// How long a started server has to accept connections, and a stopped one to go away.
const READY_TENTHS: u32 = 600;

/// Shell that polls `ready` ten times a second until it succeeds, or fails after 60 s.
pub fn wait_until(ready: &[String]) -> String {
    poll("until", ready, "started, but not accepting connections after 60 s")
}

/// How long a server may show no process while it is being started before the start counts
/// as failed: it writes its PID file early (before any recovery), so only a server that exited
/// (a broken configuration, say) stays without one this long.
const GONE_TENTHS: u32 = 50;

/// Like [`wait_until`], but fails as soon as `status` has said for 5 s that no server runs:
/// a server that exits while starting is reported then, not after the whole minute.
pub fn wait_until_started(ready: &[String], status: &[String]) -> String {
    format!(
        "i=0; gone=0; until {} >/dev/null 2>&1; do i=$((i+1)); if {} >/dev/null 2>&1; then \
         gone=0; else gone=$((gone+1)); fi; if [ $gone -ge {GONE_TENTHS} ]; then echo {} >&2; \
         exit 1; fi; if [ $i -ge {READY_TENTHS} ]; then echo {} >&2; exit 1; fi; sleep 0.1; done",
        argv_cmd(ready),
        argv_cmd(status),
        quote("the server exited while starting (no server process for 5 s)"),
        quote("started, but not accepting connections after 60 s")
    )
}

/// Shell that polls `status` ten times a second until it fails (the server is gone), or fails
/// after 60 s. `gtm_ctl stop` may return before the GTM has exited.
pub fn wait_while(status: &[String]) -> String {
    poll("while", status, "stop sent, but the server still runs after 60 s")
}

/// Shell that polls `primary` ten times a second until the server is out of recovery,
/// sending the promote (`argv`) again every half second meanwhile, then removes the promote
/// signal files that a repeated promote may leave. Why again: a 9.4-based standby (Postgres-X2)
/// whose primary went away less than 5 s ago sleeps out the rest of those 5 s after it saw the
/// promote and before it finishes recovery, and only a signal ends that sleep early. A
/// leftover signal file would promote the server at the postmaster's next signal, should it
/// ever run as a standby again.
pub fn promote_wait(argv: &[String], primary: &[String]) -> String {
    let dir = data_dir_arg(argv).unwrap_or(".");
    // It is a primary now: the marker that said it streamed as a standby goes too.
    let files = ["promote", "fast_promote", STREAMED_MARKER].map(|f| quote(&format!("{dir}/{f}")));
    format!(
        "i=0; until {} >/dev/null 2>&1; do i=$((i+1)); if [ $i -ge {READY_TENTHS} ]; then echo {} \
         >&2; exit 1; fi; if [ $((i % 5)) -eq 0 ]; then {} >/dev/null 2>&1; fi; sleep 0.1; done; \
         rm -f -- {}",
        argv_cmd(primary),
        quote("promote sent, but still in recovery after 60 s"),
        argv_cmd(argv),
        files.join(" ")
    )
}

/// `until`/`while` `argv` succeeds, ten times a second, giving up with `timeout` after 60 s.
fn poll(keyword: &str, argv: &[String], timeout: &str) -> String {
    format!(
        "i=0; {keyword} {} >/dev/null 2>&1; do i=$((i+1)); if [ $i -ge {READY_TENTHS} ]; then \
         echo {} >&2; exit 1; fi; sleep 0.1; done",
        argv_cmd(argv),
        quote(timeout)
    )
}

/// Shell that runs `argv` ten times a second until it succeeds; after `tenths` tries it fails
/// saying `what` does not hold, with what the last try printed.
pub fn await_script(argv: &[String], what: &str, tenths: u32) -> String {
    let secs = f64::from(tenths) / 10.0;
    format!(
        "i=0; until out=$({} 2>&1); do i=$((i+1)); if [ $i -ge {tenths} ]; then printf '%s\\n' \
         {} \"$out\" >&2; exit 1; fi; sleep 0.1; done",
        argv_cmd(argv),
        quote(&format!("not so after {secs:.0} s: {what}; the last try said:"))
    )
}

/// The data directory a `pg_ctl`/`gtm_ctl` argv works on (the word after `-D`).
pub fn data_dir_arg(argv: &[String]) -> Option<&str> {
    argv.iter().skip_while(|w| *w != "-D").nth(1).map(String::as_str)
}

/// Stop the server if it runs, start it, and wait until it accepts connections, printing how
/// long it was down. The node is down from the stop command until it accepts connections again.
/// One that is down already (an X2 postmaster can exit after a crash-restart) is only started,
/// as `pg_ctl restart` and `systemctl restart` do, saying so ([`WAS_DOWN`]).
pub fn restart_script(
    stop: &[String],
    status: &[String],
    start: &[String],
    ready: &[String],
) -> Script {
    let mut script = Script::new();
    if let Some(dir) = data_dir_arg(stop) {
        script = script.raw(&clear_stale_pid_files(dir));
    }
    script
        .raw("t0=$(date +%s%N)")
        .raw(&format!(
            "if {} >/dev/null 2>&1; then {}; else echo {}; fi",
            argv_cmd(status),
            argv_cmd(stop),
            quote(WAS_DOWN)
        ))
        .raw(&wait_while(status))
        .cmd(argv_cmd(start))
        .raw(&wait_until_started(ready, status))
        .raw(&format!("echo {}$(( ($(date +%s%N) - t0) / 1000000 ))", quote(DOWN_MS_PREFIX)))
}

pub fn argv_cmd(argv: &[String]) -> Cmd {
    Cmd::new(&argv[0]).args(&argv[1..])
}

/// Shell that kills (SIGKILL) every process whose working directory is `dir` (quoted), up to
/// forty rounds 0.05 s apart until none is left (a killed process is usually gone by the next
/// round), printing `killed PID...` for each round that killed
/// any, and fails naming those still there. postgres and gtm processes run in their data
/// directory; a zombie's working directory cannot be read, so it does not count. Only the
/// processes of the user running it can be read (the cluster's user: its servers).
pub fn kill_leftovers(dir: &str) -> String {
    format!(
        "d=$(cd {dir} 2>/dev/null && pwd -P) || exit 0\n\
         round=0 killed=\n\
         while [ \"$round\" -lt 40 ]; do\n\
         \x20 round=$((round + 1))\n\
         \x20 left= new=\n\
         \x20 for p in /proc/[0-9]*; do\n\
         \x20   [ \"$(readlink \"$p/cwd\" 2>/dev/null)\" = \"$d\" ] || continue\n\
         \x20   pid=${{p#/proc/}}\n\
         \x20   kill -KILL \"$pid\" 2>/dev/null || continue\n\
         \x20   left=\"$left $pid\"\n\
         \x20   case \" $killed \" in *\" $pid \"*) ;; *) new=\"$new $pid\" killed=\"$killed $pid\" ;; esac\n\
         \x20 done\n\
         \x20 [ -z \"$left\" ] && exit 0\n\
         \x20 [ -n \"$new\" ] && echo \"killed$new\"\n\
         \x20 sleep 0.05\n\
         done\n\
         echo \"processes still running in $d after 40 rounds of SIGKILL:$left\" >&2\n\
         exit 1",
        dir = quote(dir),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> std::process::Output {
        std::process::Command::new("/bin/sh").arg("-c").arg(script).output().unwrap()
    }

    #[test]
    fn pid_files_that_name_no_server_of_the_directory_are_cleared_with_their_socket_locks() {
        let root = tempfile::tempdir().unwrap();
        let d = root.path().join("dn 1").display().to_string();
        std::fs::create_dir_all(&d).unwrap();
        let sock = crate::inventory::socket_dir(&d).to_string();
        // Lock files as the server writes them: PID, data directory, start time, port.
        let write = |name: &str, pid: u32| {
            std::fs::write(name, format!("{pid}\n{d}\n1764000000\n5432\n")).unwrap()
        };
        let exists = |name: &str| std::path::Path::new(name).exists();
        let (pid_file, gtm_pid) = (format!("{d}/postmaster.pid"), format!("{d}/gtm.pid"));
        let (lock, sibling_lock) =
            (format!("{sock}/.s.PGSQL.5432.lock"), format!("{sock}/.s.PGSQL.5433.lock"));

        // A server running in the directory keeps its files.
        let mut server =
            std::process::Command::new("sleep").arg("30").current_dir(&d).spawn().unwrap();
        write(&pid_file, server.id());
        write(&lock, server.id());
        assert!(sh(&clear_stale_pid_files(&d)).status.success());
        assert!(exists(&pid_file) && exists(&lock));

        // Its PID, once another program has it (this test, running elsewhere), names no
        // server: its PID file and its port's socket lock go. The lock of another node on the
        // host stays, even when that node's new postmaster got the same PID.
        let me = std::process::id();
        write(&pid_file, me);
        write(&lock, me);
        write(&sibling_lock, me);
        // A dead PID (the server's, once reaped) is stale too.
        server.kill().unwrap();
        server.wait().unwrap();
        write(&gtm_pid, server.id());
        assert!(sh(&clear_stale_pid_files(&d)).status.success());
        assert!(!exists(&pid_file) && !exists(&lock) && !exists(&gtm_pid));
        assert!(exists(&sibling_lock));
        // An empty PID file is a server writing it: left alone. Nothing to clear is no failure.
        std::fs::write(&pid_file, "").unwrap();
        assert!(sh(&clear_stale_pid_files(&d)).status.success());
        assert!(exists(&pid_file));
    }

    #[test]
    fn remove_takes_only_a_marked_data_directory_and_any_staging_directory() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("dn 1");
        let (dir, staging) = (dir.display().to_string(), format!("{}.tmp", dir.display()));
        for d in [&dir, &staging] {
            std::fs::create_dir_all(format!("{d}/base")).unwrap();
        }
        let script = remove_script(Some(&dir), Some(&staging)).to_string();
        let out = sh(&script);
        assert_eq!(out.status.code(), Some(3));
        assert!(String::from_utf8_lossy(&out.stderr).contains("has no .pgxc-deploy-initialized"));
        assert!(std::path::Path::new(&dir).exists() && !std::path::Path::new(&staging).exists());

        std::fs::write(format!("{dir}/{INIT_MARKER}"), "").unwrap();
        assert!(sh(&script).status.success());
        assert!(!std::path::Path::new(&dir).exists());
        assert!(root.path().exists());
        assert!(sh(&script).status.success(), "nothing left: nothing to do");
    }

    #[test]
    fn a_promote_is_sent_again_until_the_server_is_out_of_recovery_then_its_files_go() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display().to_string();
        let (sent, polls) = (format!("{d}/sent"), format!("{d}/polls"));
        // The fake promote writes a signal file, as pg_ctl does; the server leaves recovery at
        // the twelfth poll.
        let promote = vec![
            "sh".to_string(),
            "-c".to_string(),
            format!("echo >> {sent}; touch {d}/fast_promote"),
            "-D".to_string(),
            d.clone(),
        ];
        let primary = vec![
            "sh".to_string(),
            "-c".to_string(),
            format!("echo >> {polls}; [ $(wc -l < {polls}) -ge 12 ]"),
        ];
        std::fs::write(format!("{d}/promote"), "").unwrap();
        std::fs::write(format!("{d}/{STREAMED_MARKER}"), "").unwrap();
        assert!(sh(&promote_wait(&promote, &primary)).status.success());
        let resent = std::fs::read_to_string(&sent).unwrap().lines().count();
        assert_eq!(resent, 2, "every half second while in recovery");
        assert!(!std::path::Path::new(&format!("{d}/fast_promote")).exists());
        assert!(!std::path::Path::new(&format!("{d}/promote")).exists());
        assert!(!std::path::Path::new(&format!("{d}/{STREAMED_MARKER}")).exists(), "a primary now");
    }

    /// A running server is stopped then started; one that is down is only started.
    #[test]
    fn a_restart_stops_a_running_server_and_starts_one_that_is_down() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display().to_string();
        let argv = |s: &str| vec!["sh".to_string(), "-c".to_string(), s.to_string()];
        let (up, log) = (format!("{d}/up"), format!("{d}/log"));
        let stop = argv(&format!("echo stop >> {log}; rm {up}"));
        let status = argv(&format!("test -f {up}"));
        let start = argv(&format!("echo start >> {log}; touch {up}"));
        let script = restart_script(&stop, &status, &start, &status).to_string();
        std::fs::write(&up, "").unwrap();
        let out = sh(&script);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "stop\nstart\n");
        assert!(!String::from_utf8_lossy(&out.stdout).contains(WAS_DOWN));
        std::fs::remove_file(&up).unwrap();
        let out = sh(&script);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "stop\nstart\nstart\n");
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(said.contains(WAS_DOWN) && said.contains(DOWN_MS_PREFIX), "{said}");
        assert!(std::path::Path::new(&up).exists());
    }

    #[test]
    fn waits_end_as_soon_as_the_condition_holds() {
        let argv = |w: &str| vec![w.to_string()];
        assert!(sh(&wait_until(&argv("true"))).status.success());
        assert!(sh(&wait_while(&argv("false"))).status.success());
        // Becomes ready on the third poll (a counter in a file).
        let dir = tempfile::tempdir().unwrap();
        let n = dir.path().join("n");
        let ready = vec![
            "sh".to_string(),
            "-c".to_string(),
            format!("echo >> {0}; [ $(wc -l < {0}) -ge 3 ]", n.display()),
        ];
        assert!(sh(&wait_until(&ready)).status.success());
        assert_eq!(std::fs::read_to_string(&n).unwrap().lines().count(), 3);

        std::fs::remove_file(&n).unwrap();
        assert!(sh(&wait_until_started(&ready, &argv("true"))).status.success());
        std::fs::remove_file(&n).unwrap();
        let out = sh(&wait_until_started(&argv("false"), &argv("false")));
        assert_eq!(out.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&out.stderr).contains("exited while starting"));
        std::fs::remove_file(&n).ok();
        assert!(sh(&await_script(&ready, "three", 10)).status.success());
        let never =
            vec!["sh".to_string(), "-c".to_string(), "echo 'it is not'; exit 1".to_string()];
        let out = sh(&await_script(&never, "it is", 3));
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            "not so after 0 s: it is; the last try said:\nit is not\n"
        );
    }

    #[test]
    fn kill_leftovers_kills_every_process_in_the_directory_and_no_other() {
        let dir = tempfile::tempdir().unwrap();
        let spawn = |cwd: &std::path::Path| {
            std::process::Command::new("sleep").arg("30").current_dir(cwd).spawn().unwrap()
        };
        let (mut inside, mut outside) = (spawn(dir.path()), spawn(std::path::Path::new("/")));
        let out = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(kill_leftovers(&dir.path().display().to_string()))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(String::from_utf8_lossy(&out.stdout), format!("killed {}\n", inside.id()));
        assert!(inside.wait().unwrap().code().is_none(), "killed by a signal");
        assert!(outside.try_wait().unwrap().is_none(), "a process elsewhere is left alone");
        outside.kill().unwrap();
        outside.wait().unwrap();
        // Nothing left: nothing printed. A missing directory: nothing to do.
        let again = |d: &str| {
            std::process::Command::new("/bin/sh").arg("-c").arg(kill_leftovers(d)).output().unwrap()
        };
        let out = again(&dir.path().display().to_string());
        assert!(out.status.success() && out.stdout.is_empty());
        assert!(again("/no/such/dir").status.success());
    }
}
