//! The shell of plan steps: what [`crate::executor::steps`] runs on a host for each
//! [`Action`](crate::plan::step::Action) (install, init, start, stop, restart, promote, waits,
//! removal, fencing, registration). PURE: these functions only build the scripts; the executor
//! runs them as the cluster's user, guarded ([`crate::shell::Become::wrap_guarded`]), and
//! uploads files.
//!
//! Values (paths, argv, messages) reach the shell only through [`Cmd`] arguments and
//! [`Lines::set`] / [`Lines::function`]; the loops and conditions are constant text that refers
//! to them (`"$d"`, `is_running`).

use crate::plan::restart::{DOWN_MS_PREFIX, WAS_DOWN};
use crate::plan::state::{INIT_MARKER, INSTALL_MARKER, STREAMED_MARKER};
use crate::shell::{Cmd, Lines, Script};
use crate::source::LAYOUT_RECORD;

use super::probe::live_server;

/// Export what every step's commands need: the install's libraries, and the password file
/// (every server started then reads its password there).
pub fn in_host_env(script: &Script, lib_dir: &str, passfile: Option<&str>) -> Script {
    let script = script.clone().env("LD_LIBRARY_PATH", lib_dir);
    match passfile {
        Some(passfile) => script.env("PGPASSFILE", passfile),
        None => script,
    }
}

/// The whole install under `prefix`, as a tar archive on stdout.
pub fn pack_install(prefix: &str) -> Script {
    Script::new().cmd(Cmd::new("tar").arg("-C").arg(prefix).args(["-cf", "-", "."]))
}

/// Create directory `dir` and its parents.
pub fn make_dir(dir: &str) -> Script {
    Script::new().cmd(Cmd::new("mkdir").arg("-p").arg(dir))
}

/// Remove initdb's password file, written just before it ran.
pub fn remove_pwfile(path: &str) -> Script {
    Script::new().cmd(Cmd::new("rm").arg("-f").arg(path))
}

/// Remove one file, if it is there.
pub fn remove_file(path: &str) -> Script {
    Script::new().cmd(Cmd::new("rm").args(["-f", "--"]).arg(path))
}

/// Run `psql` (its argv) with `extra` arguments after it.
fn psql(psql: &[String], extra: &[&str]) -> Script {
    Script::new().cmd(argv_cmd(psql).args(extra))
}

/// Run the SQL on stdin with `psql`, stopping at the first error; `quiet` adds `-q`.
pub fn psql_stdin(argv: &[String], quiet: bool) -> Script {
    let stdin = ["-v", "ON_ERROR_STOP=1", "-f", "-"];
    if quiet { psql(argv, &[&["-q"][..], &stdin].concat()) } else { psql(argv, &stdin) }
}

/// A coordinator's pgxc_node as `node_name node_type node_host node_port primary preferred` lines
/// ([`crate::plan::state::PgxcNodeRow::parse`]).
pub fn read_pgxc_node(argv: &[String]) -> Script {
    psql(argv, &["-A", "-t", "-F", " ", "-c", crate::plan::sql::PGXC_NODE_ROWS])
}

/// Receive an install archive on stdin under `prefix`: whole into a file, checked against its
/// SHA-256 (`sha256`, hex) before anything is unpacked (tar takes an archive cut at a member's
/// end for a complete one); then the layout record, and the fingerprint last: an install with
/// its fingerprint recorded is complete.
pub fn ship_install(prefix: &str, sha256: &str, layout: &str, fingerprint: &str) -> Script {
    let file = format!("{prefix}/{INSTALL_MARKER}.tar");
    let check = format!("{sha256}  {file}\n");
    Script::new()
        .cmd(Cmd::new("mkdir").arg("-p").arg(prefix))
        // Constant redirections and control flow around quoted words, here and below.
        .cmd(Cmd::new("cat").raw(">").arg(&file))
        .cmd(
            Cmd::new("printf")
                .arg("%s")
                .arg(check)
                .raw("|")
                .arg("sha256sum")
                .args(["--check", "--quiet", "--status", "-"])
                // A constant message.
                .raw(
                    "|| { echo 'the install archive arrived incomplete or damaged (sha256 \
                     differs); run apply again' >&2; exit 1; }",
                ),
        )
        .cmd(Cmd::new("tar").arg("-xf").arg(&file).arg("-C").arg(prefix))
        .cmd(Cmd::new("rm").arg("-f").arg(&file))
        .cmd(
            Cmd::new("printf")
                .arg("%s")
                .arg(layout)
                .raw(">")
                .arg(format!("{prefix}/{LAYOUT_RECORD}")),
        )
        .cmd(
            Cmd::new("printf")
                .arg("%s")
                .arg(fingerprint)
                .raw(">")
                .arg(format!("{prefix}/{INSTALL_MARKER}")),
        )
}

/// Create a staging data directory: remove a leftover one, run `argv` (initdb, initgtm or
/// pg_basebackup) into it, make it durable and strip what a clone copies from its primary.
pub fn prepare_init(argv: &[String], staging: &str, parent: &str) -> Script {
    Script::new()
        // Only the staging directory of an interrupted run is ever removed.
        .cmd(Cmd::new("rm").arg("-rf").arg(staging))
        .cmd(Cmd::new("mkdir").arg("-p").arg(parent))
        .cmd(argv_cmd(argv))
        // initdb runs with --nosync: one sync makes the new directory durable.
        .cmd(Cmd::new("sync"))
        .cmd(Cmd::new("chmod").arg("700").arg(staging))
        .cmd(strip_copied(staging))
}

/// Mark a complete staging directory initialised and rename it into place.
pub fn finish_init(staging: &str, data_dir: &str) -> Script {
    Script::new()
        .cmd(Cmd::new("touch").arg(format!("{staging}/{INIT_MARKER}")))
        .cmd(Cmd::new("mv").arg("-T").arg(staging).arg(data_dir))
}

/// A rebuilt standby's complete staging directory replaces its old data directory: the old
/// one goes only now that its replacement is complete.
pub fn finish_rebuild(staging: &str, data_dir: &str) -> Script {
    Script::new()
        .cmd(Cmd::new("touch").arg(format!("{staging}/{INIT_MARKER}")))
        .lines(remove_data_dir(data_dir))
        .cmd(Cmd::new("mv").arg("-T").arg(staging).arg(data_dir))
}

/// Stop a server that a failover left behind, if it runs (stale PID files are cleared first:
/// they name no server), and wait until it is gone.
pub fn stop_if_running(data_dir: &str, stop: &[String], status: &[String]) -> Script {
    Script::new().lines(clear_stale_pid_files(data_dir)).lines(
        Lines::new()
            .function("is_running", argv_cmd(status))
            .function("stop_server", argv_cmd(stop))
            // Constant control flow around the functions.
            .raw("if is_running >/dev/null 2>&1; then stop_server || exit 1")
            .lines(wait_while(status))
            .raw("fi"),
    )
}

/// Rewind an old primary onto the new one: a checkpoint on the source, pg_rewind, then strip
/// what it copied that belongs to the source.
pub fn rewind(checkpoint: &[String], rewind: &[String], data_dir: &str) -> Script {
    Script::new().cmd(argv_cmd(checkpoint)).cmd(argv_cmd(rewind)).cmd(strip_copied(data_dir))
}

/// Start a server (`argv`) and wait until `ready` says it accepts connections. Stale PID files
/// in its data directory (`data_dir`) are cleared first.
pub fn start(data_dir: &str, argv: &[String], ready: &[String]) -> Script {
    Script::new()
        .lines(clear_stale_pid_files(data_dir))
        .lines(clear_leftovers(data_dir))
        .cmd(argv_cmd(argv))
        .lines(wait_until(ready))
}

/// Stop a server (`argv`), wait until `status` says it is gone, then remove the files in
/// `remove` and run `then`, if any. Stale PID files in its data directory (`data_dir`) are
/// cleared first: `pg_ctl stop` would signal whatever process has their PID now.
pub fn stop(
    data_dir: &str,
    argv: &[String],
    status: &[String],
    remove: &[String],
    then: &[String],
) -> Script {
    let mut script = Script::new()
        .lines(clear_stale_pid_files(data_dir))
        .cmd(argv_cmd(argv))
        .lines(wait_while(status));
    if !remove.is_empty() {
        script = script.cmd(Cmd::new("rm").args(["-f", "--"]).args(remove));
    }
    if !then.is_empty() {
        script = script.cmd(argv_cmd(then));
    }
    script
}

/// Promote a standby (`argv`, on `data_dir`) and wait until `primary` says it is out of
/// recovery ([`promote_wait`]); first, when `after` is given, wait until its check holds
/// ([`await_script`]).
pub fn promote(
    data_dir: &str,
    argv: &[String],
    primary: &[String],
    after: Option<(&[String], &str)>,
) -> Script {
    let mut script = Script::new();
    if let Some((argv, what)) = after {
        script = script.lines(await_script(argv, what, 600));
    }
    script.cmd(argv_cmd(argv)).lines(promote_wait(data_dir, argv, primary))
}

/// A new Postgres-XC coordinator or datanode joins the running cluster
/// ([`JoinNode`](crate::plan::step::JoinNode)): lock DDL cluster-wide in a psql session on the
/// source coordinator (it waits, inside psql, until a release file appears, and gives up after
/// 600 s), dump the catalog of the node to copy, restore it in restore mode, restart, write the
/// datanode's redistribution marker, register it on itself and every other coordinator, then
/// release the lock. Every failure releases the lock, says which stage failed and exits 1.
pub fn join_node(j: &crate::plan::step::JoinNode) -> Lines {
    let d = j.data_dir.trim_end_matches('/');
    let release = format!("{d}.pgxc-deploy-release");
    let wait = format!(
        "\\! timeout 600 sh -c 'until [ -e \"$0\" ]; do sleep 0.1; done' {}",
        crate::shell::quote(&release)
    );
    let mut lines = Lines::new()
        .set("d", d)
        .set("release", &release)
        .set("lockout", format!("{d}.pgxc-deploy-lock.out"))
        .set("dump", format!("{d}.pgxc-deploy-catalog.sql"))
        .set("source", &j.source)
        .set("dump_from", &j.dump_from)
        .set("lock_sql", crate::plan::sql::LOCK_FOR_BACKUP)
        .set("wait_line", wait)
        .set("self_sql", &j.self_sql)
        .set("pending", &j.pending)
        // Ends at once when the lock cannot be taken (held by a backup), instead of going on to
        // wait for the release.
        .function(
            "lock_session",
            argv_cmd(&j.source_psql).args(["-A", "-t", "-v", "ON_ERROR_STOP=1"]),
        )
        .function("dumpall", argv_cmd(&j.dumpall))
        .function("restore_start", argv_cmd(&j.restore_start))
        .function("restore", argv_cmd(&j.psql).args(["-f", "-"]))
        .function("local_sql", argv_cmd(&j.psql).args(["-v", "ON_ERROR_STOP=1", "-f", "-"]))
        .function("stop_it", argv_cmd(&j.stop))
        .function("start_it", argv_cmd(&j.start))
        .function("is_ready", argv_cmd(&j.ready));
    for (i, (psql, sql)) in j.peers.iter().enumerate() {
        // Not stopping at an error: CREATE NODE fails where an entry of that name is left,
        // and the ALTER after it sets its address.
        lines = lines.function(&format!("peer_{i}"), argv_cmd(psql).args(["-f", "-"]));
        lines = lines.set(&format!("peer_sql_{i}"), sql);
    }
    // Constant from here, over the variables and functions above (and loop indexes).
    lines = lines
        // An earlier attempt may have left it running (in restore mode).
        .raw("stop_it >/dev/null 2>&1 || true")
        .raw("rm -f \"$release\" \"$lockout\"")
        .raw("printf '%s\\n' \"$lock_sql\" \"$wait_line\" | lock_session >\"$lockout\" 2>&1 &")
        .raw("lockpid=$!")
        .raw("release() { touch \"$release\"; wait \"$lockpid\" 2>/dev/null; rm -f \"$release\" \"$lockout\" \"$dump\"; }")
        .raw("fail() { echo \"$1\" >&2; release; exit 1; }")
        .raw(
            "i=0; until grep -qx t \"$lockout\" 2>/dev/null; do i=$((i+1)); if ! kill -0 \
             \"$lockpid\" 2>/dev/null || [ $i -ge 300 ]; then fail \"could not lock DDL with \
             pgxc_lock_for_backup() on $source: $(tr '\\n' ' ' < \"$lockout\")\"; fi; sleep 0.1; \
             done",
        )
        .raw("dumpall >\"$dump\" 2>\"$dump.err\" || fail \"pg_dumpall of $dump_from failed: $(tail -n 3 \"$dump.err\")\"")
        .raw("rm -f \"$dump.err\"")
        .raw("restore_start >/dev/null || fail 'the start in restore mode failed'")
        .raw(&format!(
            "i=0; until is_ready >/dev/null 2>&1; do i=$((i+1)); [ $i -ge {READY_TENTHS} ] && \
             fail 'started in restore mode, but not accepting connections after 60 s'; sleep 0.1; \
             done"
        ))
        // The source's own role exists already here (initdb made it): that error is expected.
        .raw(
            "out=$(restore < \"$dump\" 2>&1 | grep 'ERROR:' | grep -v 'already exists'); [ -z \
             \"$out\" ] || { stop_it >/dev/null 2>&1; fail \"restoring the catalog of $dump_from \
             failed: $out\"; }",
        )
        .raw("stop_it >/dev/null || fail 'the stop after the restore failed'")
        .raw("start_it >/dev/null || fail 'the start after the restore failed'")
        .raw(&format!(
            "i=0; until is_ready >/dev/null 2>&1; do i=$((i+1)); [ $i -ge {READY_TENTHS} ] && \
             fail 'started, but not accepting connections after 60 s'; sleep 0.1; done"
        ))
        .raw("[ -z \"$self_sql\" ] || printf '%s' \"$self_sql\" | local_sql >/dev/null || fail 'registering itself failed'");
    if let Some(marker) = &j.marker {
        lines = lines
            .set("marker", marker)
            .raw("touch \"$marker\" || fail 'writing the redistribution marker failed'");
    }
    // Tried for up to 30 s: a coordinator may be restarting (an X2 coordinator can crash and
    // recover under a pool reload while a client runs DDL).
    for i in 0..j.peers.len() {
        lines = lines.raw(&format!(
            "n=0; until printf '%s' \"$peer_sql_{i}\" | peer_{i} >\"$d.pgxc-deploy-peer.out\" \
             2>&1; do n=$((n+1)); [ $n -ge 30 ] && fail \"registering it with another coordinator \
             failed: $(tail -n 2 \"$d.pgxc-deploy-peer.out\" | tr '\\n' ' ')\"; sleep 1; done; \
             rm -f \"$d.pgxc-deploy-peer.out\"",
        ));
    }
    lines
        .raw("rm -f \"$pending\" || fail 'removing the join marker failed'")
        .raw("release")
        .raw("echo \"catalog copied from $dump_from\"")
}

/// Through a coordinator (`r.psql`, reading SQL from stdin): count the table's rows, `ALTER
/// TABLE ... ADD NODE / DELETE NODE` unless pgxc_class already lists `r.after`, count again;
/// fail unless both counts agree, pgxc_class
/// lists `r.after`, and the rows are where the table's kind puts them: every datanode holds
/// them all (replicated), or none is empty (distributed, from 1000 rows). Prints `ROWS rows:
/// NODE COUNT, ...`.
pub fn redistribute(r: &crate::plan::step::Redistribute) -> Lines {
    use crate::plan::sql;
    Lines::new()
        .set("count_sql", sql::count_rows(&r.table))
        .set("alter_sql", sql::alter_nodes(&r.table, &r.add, &r.delete))
        .set("nodes_sql", sql::table_nodes(&r.table))
        .set("spread_sql", sql::rows_per_datanode(&r.table, &r.after))
        .set("want", r.after.join(","))
        .set("kind", r.kind.to_string())
        .set("table", &r.table)
        .function("sql", argv_cmd(&r.psql).args(["-A", "-t", "-v", "ON_ERROR_STOP=1", "-f", "-"]))
        // Constant from here, over the variables and the function above.
        // The count waits for an ALTER still running on the table (left by an apply that was
        // killed: the remote psql goes on without its client); when that ALTER did this
        // step's work, there is nothing to alter, only the checks.
        .raw("before=$(printf '%s' \"$count_sql\" | sql) || exit 1")
        .raw("nodes=$(printf '%s' \"$nodes_sql\" | sql) || exit 1")
        .raw(
            "[ \"$nodes\" = \"$want\" ] || { printf '%s' \"$alter_sql\" | sql >/dev/null || exit \
             1; }",
        )
        .raw("after=$(printf '%s' \"$count_sql\" | sql) || exit 1")
        .raw(
            "[ \"$before\" = \"$after\" ] || { echo \"$table had $before rows before, $after \
             after\" >&2; exit 1; }",
        )
        .raw("nodes=$(printf '%s' \"$nodes_sql\" | sql) || exit 1")
        .raw(
            "[ \"$nodes\" = \"$want\" ] || { echo \"$table: pgxc_class lists $nodes, not $want\" \
             >&2; exit 1; }",
        )
        .raw("spread=$(printf '%s' \"$spread_sql\" | sql) || exit 1")
        .raw(
            "bad=$(printf '%s\\n' \"$spread\" | awk -v kind=\"$kind\" -v total=\"$after\" \
             '(kind == \"R\" && $2 != total) || (kind != \"R\" && total >= 1000 && $2 == 0) \
             { printf \" %s\", $1 }')",
        )
        .raw(
            "[ -z \"$bad\" ] || { echo \"$table ($after rows, kind $kind): wrong row count on$bad: \
             $(echo $spread)\" >&2; exit 1; }",
        )
        .raw("echo \"$after rows:\" $(printf '%s\\n' \"$spread\" | sed 's/ /=/')")
}

/// Run `argv` once.
pub fn run(argv: &[String]) -> Script {
    Script::new().cmd(argv_cmd(argv))
}

/// Run `argv` until it succeeds ([`await_script`]).
pub fn wait_for(argv: &[String], what: &str, tenths: u32) -> Script {
    Script::new().lines(await_script(argv, what, tenths))
}

/// Kill what runs in `data_dir` ([`kill_leftovers`]).
pub fn fence(data_dir: &str) -> Script {
    Script::new().lines(kill_leftovers(data_dir))
}

/// Shell that removes a server's PID file (postmaster.pid, gtm.pid) in `data_dir`, and the
/// socket lock file of its port when it names the same process, when no live server of that
/// directory holds them ([`live_server`]): the process is gone, a zombie, or another program
/// that got the PID after a reboot. pg_ctl and the server's own lock checks would take a
/// zombie's files for a live server's and refuse to start, and `pg_ctl stop` would signal
/// whatever process now has the PID. Only the port's lock (line 4 of postmaster.pid): the
/// socket directory is shared by the host's nodes, and after a reboot the PID may be another
/// node's new postmaster. An empty PID file (a server writing it this instant) is left alone.
pub fn clear_stale_pid_files(data_dir: &str) -> Lines {
    Lines::new()
        .set("d", data_dir)
        .set("sock", crate::inventory::socket_dir(data_dir))
        // Constant, but for `live_server`'s condition (constant too, over `$f` and `$d`).
        .raw(&format!(
            "for f in \"$d\"/postmaster.pid \"$d\"/gtm.pid; do [ -s \"$f\" ] || continue; {} && \
             continue; [ -n \"$p\" ] || continue; port=$(sed -n 4p \"$f\"); \
             case $port in ''|*[!0-9]*) ;; *) l=\"$sock\"/.s.PGSQL.$port.lock; \
             [ \"$(head -n 1 \"$l\" 2>/dev/null)\" = \"$p\" ] && rm -f -- \"$l\";; esac; \
             rm -f -- \"$f\"; done; true",
            live_server("\"$f\"", "\"$d\"")
        ))
}

/// Shell that, when no server of `data_dir` holds a PID file there (postmaster.pid, gtm.pid,
/// gtm_proxy.pid; run after [`clear_stale_pid_files`], which removes a postmaster.pid or
/// gtm.pid that names no live server), kills what still
/// runs in the directory and removes the socket lock files that name the directory and a
/// process that is gone or a zombie. What a server that died leaves: a Postgres-X2
/// coordinator's pooler outlives its postmaster, and its `.s.PGPOOL.N.lock` makes the next
/// pooler refuse to start ("lock file ... already exists"), as a zombie's PID does, so the
/// coordinator cannot start again. A lock file's second line is the data directory of the
/// server that wrote it (postmaster.pid's format).
pub fn clear_leftovers(data_dir: &str) -> Lines {
    Lines::new()
        .set("d", data_dir)
        .set("given", data_dir)
        .set("sock", crate::inventory::socket_dir(data_dir))
        // Constant. Only server processes (postgres, gtm) are killed: a shell someone left in
        // the directory is not a leftover. SIGKILL is delivered at once; the loop after it
        // waits (2 s at most) until each is gone or a zombie.
        .raw(
            "if [ ! -s \"$d\"/postmaster.pid ] && [ ! -s \"$d\"/gtm.pid ] \\\n\
             \x20 && [ ! -s \"$d\"/gtm_proxy.pid ] \\\n\
             \x20 && d=$(cd \"$d\" 2>/dev/null && pwd -P); then\n\
             \x20 killed=\n\
             \x20 for p in /proc/[0-9]*; do\n\
             \x20   [ \"$(readlink \"$p/cwd\" 2>/dev/null)\" = \"$d\" ] || continue\n\
             \x20   case \"$(cat \"$p/comm\" 2>/dev/null)\" in postgres|gtm|gtm_proxy) ;; *) continue ;; esac\n\
             \x20   kill -KILL \"${p#/proc/}\" 2>/dev/null && killed=\"$killed ${p#/proc/}\"\n\
             \x20 done\n\
             \x20 [ -n \"$killed\" ] && echo \"killed$killed (left by a server that is gone)\"\n\
             \x20 gone() { ! kill -0 \"$1\" 2>/dev/null || grep -qs '^State:[[:space:]]*Z' /proc/\"$1\"/status; }\n\
             \x20 for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31 32 33 34 35 36 37 38 39 40; do\n\
             \x20   left=; for p in $killed; do gone \"$p\" || left=1; done\n\
             \x20   [ -z \"$left\" ] && break; sleep 0.05\n\
             \x20 done\n\
             \x20 for l in \"$sock\"/.s.*.lock; do\n\
             \x20   [ -f \"$l\" ] || continue\n\
             \x20   o=$(sed -n 2p \"$l\" 2>/dev/null)\n\
             \x20   [ -n \"$o\" ] && { [ \"$o\" = \"$d\" ] || [ \"$o\" = \"$given\" ]; } || continue\n\
             \x20   p=$(head -n 1 \"$l\" 2>/dev/null); p=${p#-}\n\
             \x20   case $p in ''|*[!0-9]*) continue ;; esac\n\
             \x20   gone \"$p\" && rm -f -- \"$l\"\n\
             \x20 done\n\
             fi",
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
        script = script.lines(remove_data_dir(dir));
    }
    script
}

/// Shell that removes `dir` if it carries apply's init marker, checked on the host at the
/// moment of removal, so that a directory that is not ours is never removed: one without it
/// fails with exit 3.
fn remove_data_dir(dir: &str) -> Lines {
    Lines::new()
        .set("d", dir)
        .set("refuse", format!("{dir} has no {INIT_MARKER}: not removed"))
        // Constant: the marker's name is.
        .raw(&format!(
            "if [ -f \"$d\"/{INIT_MARKER} ]; then rm -rf -- \"$d\"; elif [ -e \"$d\" ]; then \
             echo \"$refuse\" >&2; exit 3; fi"
        ))
}

/// How long a started server has to accept connections, and a stopped one to go away.
const READY_TENTHS: u32 = 600;

/// Shell that polls `ready` ten times a second until it succeeds, or fails after 60 s.
pub fn wait_until(ready: &[String]) -> Lines {
    poll("until", ready, "started, but not accepting connections after 60 s")
}

/// How long a server may show no process while it is being started before the start counts
/// as failed: it writes its PID file early (before any recovery), so only a server that exited
/// (a broken configuration, say) stays without one this long.
const GONE_TENTHS: u32 = 50;

/// Like [`wait_until`], but fails as soon as `status` has said for 5 s that no server runs:
/// a server that exits while starting is reported then, not after the whole minute.
pub fn wait_until_started(ready: &[String], status: &[String]) -> Lines {
    Lines::new()
        .function("is_ready", argv_cmd(ready))
        .function("is_running", argv_cmd(status))
        // Constant: the limits are, and the messages.
        .raw(&format!(
            "i=0; gone=0; until is_ready >/dev/null 2>&1; do i=$((i+1)); if is_running \
             >/dev/null 2>&1; then gone=0; else gone=$((gone+1)); fi; if [ $gone -ge \
             {GONE_TENTHS} ]; then echo 'the server exited while starting (no server process \
             for 5 s)' >&2; exit 1; fi; if [ $i -ge {READY_TENTHS} ]; then echo 'started, but \
             not accepting connections after 60 s' >&2; exit 1; fi; sleep 0.1; done"
        ))
}

/// Shell that polls `status` ten times a second until it fails (the server is gone), or fails
/// after 60 s. `gtm_ctl stop` may return before the GTM has exited.
pub fn wait_while(status: &[String]) -> Lines {
    poll("while", status, "stop sent, but the server still runs after 60 s")
}

/// Shell that polls `primary` ten times a second until the server is out of recovery,
/// sending the promote (`argv`) again every half second meanwhile, then removes the promote
/// signal files that a repeated promote may leave in `data_dir`. Why again: a 9.4-based standby (Postgres-X2)
/// whose primary went away less than 5 s ago sleeps out the rest of those 5 s after it saw the
/// promote and before it finishes recovery, and only a signal ends that sleep early. A
/// leftover signal file would promote the server at the postmaster's next signal, should it
/// ever run as a standby again.
pub fn promote_wait(data_dir: &str, argv: &[String], primary: &[String]) -> Lines {
    Lines::new()
        .function("is_primary", argv_cmd(primary))
        .function("promote", argv_cmd(argv))
        .set("d", data_dir)
        // Constant: the limit is, and the message. It is a primary now: the marker that said
        // it streamed as a standby goes too.
        .raw(&format!(
            "i=0; until is_primary >/dev/null 2>&1; do i=$((i+1)); if [ $i -ge {READY_TENTHS} ]; \
             then echo 'promote sent, but still in recovery after 60 s' >&2; exit 1; fi; \
             if [ $((i % 5)) -eq 0 ]; then promote >/dev/null 2>&1; fi; sleep 0.1; done; \
             rm -f -- \"$d\"/promote \"$d\"/fast_promote \"$d\"/{STREAMED_MARKER}"
        ))
}

/// `until`/`while` `argv` succeeds, ten times a second, giving up with `timeout` after 60 s.
fn poll(keyword: &str, argv: &[String], timeout: &str) -> Lines {
    Lines::new()
        .function("check", argv_cmd(argv))
        .set("timeout", timeout)
        // Constant: `keyword` is `until` or `while`, and the limit a constant.
        .raw(&format!(
            "i=0; {keyword} check >/dev/null 2>&1; do i=$((i+1)); if [ $i -ge {READY_TENTHS} ]; \
             then echo \"$timeout\" >&2; exit 1; fi; sleep 0.1; done"
        ))
}

/// Shell that runs `argv` ten times a second until it succeeds; after `tenths` tries it fails
/// saying `what` does not hold, with what the last try printed.
pub fn await_script(argv: &[String], what: &str, tenths: u32) -> Lines {
    let secs = f64::from(tenths) / 10.0;
    Lines::new()
        .function("check", argv_cmd(argv))
        .set("tries", tenths.to_string())
        .set("failed", format!("not so after {secs:.0} s: {what}; the last try said:"))
        .raw(
            "i=0; until out=$(check 2>&1); do i=$((i+1)); if [ $i -ge \"$tries\" ]; then \
             printf '%s\\n' \"$failed\" \"$out\" >&2; exit 1; fi; sleep 0.1; done",
        )
}

/// Stop the server if it runs, start it, and wait until it accepts connections, printing how
/// long it was down. The node is down from the stop command until it accepts connections again.
/// One that is down already (an X2 postmaster can exit after a crash-restart) is only started,
/// as `pg_ctl restart` and `systemctl restart` do, saying so ([`WAS_DOWN`]). Stale PID files
/// in its data directory (`data_dir`) are cleared first.
pub fn restart_script(
    data_dir: &str,
    stop: &[String],
    status: &[String],
    start: &[String],
    ready: &[String],
) -> Script {
    Script::new()
        .lines(clear_stale_pid_files(data_dir))
        // Constant: the start of the time the node is down.
        .raw("t0=$(date +%s%N)")
        .lines(
            Lines::new()
                .function("is_running", argv_cmd(status))
                .function("stop_server", argv_cmd(stop))
                .set("was_down", WAS_DOWN)
                // Constant control flow around the functions.
                .raw(
                    "if is_running >/dev/null 2>&1; then stop_server; else echo \"$was_down\"; fi",
                ),
        )
        .lines(wait_while(status))
        .lines(clear_leftovers(data_dir))
        .cmd(argv_cmd(start))
        .lines(wait_until_started(ready, status))
        .lines(
            Lines::new()
                .set("down_ms", DOWN_MS_PREFIX)
                // Constant: how long since `t0`, in ms, after the prefix restart reads.
                .raw("echo \"$down_ms$(( ($(date +%s%N) - t0) / 1000000 ))\""),
        )
}

/// An argv as one command, every word quoted.
pub fn argv_cmd(argv: &[String]) -> Cmd {
    Cmd::new(&argv[0]).args(&argv[1..])
}

/// Shell that kills (SIGKILL) every process whose working directory is `dir`, up to
/// forty rounds 0.05 s apart until none is left (a killed process is usually gone by the next
/// round), printing `killed PID...` for each round that killed
/// any, and fails naming those still there. postgres and gtm processes run in their data
/// directory; a zombie's working directory cannot be read, so it does not count. Only the
/// processes of the user running it can be read (the cluster's user: its servers).
pub fn kill_leftovers(dir: &str) -> Lines {
    Lines::new().set("dir", dir).raw(
        // Constant.
        "d=$(cd \"$dir\" 2>/dev/null && pwd -P) || exit 0\n\
         round=0 killed=\n\
         while [ \"$round\" -lt 40 ]; do\n\
         \x20 round=$((round + 1))\n\
         \x20 left= new=\n\
         \x20 for p in /proc/[0-9]*; do\n\
         \x20   [ \"$(readlink \"$p/cwd\" 2>/dev/null)\" = \"$d\" ] || continue\n\
         \x20   pid=${p#/proc/}\n\
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
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: impl std::fmt::Display) -> std::process::Output {
        std::process::Command::new("/bin/sh").arg("-c").arg(script.to_string()).output().unwrap()
    }

    /// What a dead server left in its directory: server processes are killed (a shell there is
    /// not), and socket lock files naming the directory and a gone process are removed; with a
    /// PID file in place nothing is touched.
    #[test]
    fn leftovers_of_a_server_that_is_gone_are_killed_and_their_lock_files_removed() {
        use std::os::unix::process::{CommandExt, ExitStatusExt};
        let root = tempfile::tempdir().unwrap();
        let d = root.path().join("coord 1").display().to_string();
        std::fs::create_dir_all(&d).unwrap();
        let sock = crate::inventory::socket_dir(&d).to_string();
        let gone = {
            let mut child = std::process::Command::new("true").spawn().unwrap();
            let pid = child.id();
            child.wait().unwrap();
            pid
        };
        let lock = |name: &str, pid: u32, dir: &str| {
            let path = format!("{sock}/{name}");
            std::fs::write(&path, format!("{pid}\n{dir}\n1764000000\n5432\n")).unwrap();
            path
        };
        let pooler_lock = lock(".s.PGPOOL.6667.lock", gone, &d);
        let other_node = lock(".s.PGSQL.5433.lock", gone, "/elsewhere/dn1");
        let live = lock(".s.PGSQL.5432.lock", std::process::id(), &d);
        // A "postgres" left running in the directory, and someone's process there too.
        let postgres = root.path().join("postgres");
        std::fs::copy("/bin/sleep", &postgres).unwrap();
        let spawn = |program: &std::path::Path| {
            std::process::Command::new(program).arg("30").current_dir(&d).process_group(0).spawn()
        };
        let mut server = spawn(&postgres).unwrap();
        let mut shell = spawn(std::path::Path::new("/bin/sleep")).unwrap();

        for pid_file in ["postmaster.pid", "gtm.pid", "gtm_proxy.pid"] {
            std::fs::write(format!("{d}/{pid_file}"), "1\n").unwrap();
            let out = sh(clear_leftovers(&d));
            assert!(out.status.success(), "{out:?}");
            assert!(std::path::Path::new(&pooler_lock).exists(), "{pid_file}: nothing is touched");
            assert!(server.try_wait().unwrap().is_none(), "{pid_file}: nothing is killed");
            std::fs::remove_file(format!("{d}/{pid_file}")).unwrap();
        }

        let out = sh(clear_leftovers(&d));
        assert!(out.status.success(), "{out:?}");
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(said.starts_with(&format!("killed {}", server.id())), "{said}");
        assert!(server.wait().unwrap().signal() == Some(9));
        assert!(shell.try_wait().unwrap().is_none(), "not a server: left alone");
        assert!(!std::path::Path::new(&pooler_lock).exists());
        assert!(std::path::Path::new(&other_node).exists());
        assert!(std::path::Path::new(&live).exists());
        shell.kill().unwrap();
        shell.wait().unwrap();
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
        assert!(sh(clear_stale_pid_files(&d)).status.success());
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
        assert!(sh(clear_stale_pid_files(&d)).status.success());
        assert!(!exists(&pid_file) && !exists(&lock) && !exists(&gtm_pid));
        assert!(exists(&sibling_lock));
        // An empty PID file is a server writing it: left alone. Nothing to clear is no failure.
        std::fs::write(&pid_file, "").unwrap();
        assert!(sh(clear_stale_pid_files(&d)).status.success());
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
        assert!(sh(promote_wait(&d, &promote, &primary)).status.success());
        let resent = std::fs::read_to_string(&sent).unwrap().lines().count();
        assert_eq!(resent, 2, "every half second while in recovery");
        assert!(!std::path::Path::new(&format!("{d}/fast_promote")).exists());
        assert!(!std::path::Path::new(&format!("{d}/promote")).exists());
        assert!(!std::path::Path::new(&format!("{d}/{STREAMED_MARKER}")).exists(), "a primary now");
    }

    /// The redistribution step, with a stand-in psql that answers from files in a directory:
    /// passes when counts agree and the rows are where the table's kind puts them, and names
    /// what is wrong otherwise.
    #[test]
    fn a_redistribution_checks_the_count_the_node_list_and_the_spread() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display().to_string();
        let psql = vec![
            "sh".to_string(),
            "-c".to_string(),
            format!(
                "sql=$(cat); case $sql in *'execute direct'*) cat {d}/spread;; *string_agg*) \
                 cat {d}/nodes;; *'count(*)'*) n=$(cat {d}/count); echo $n; echo 1000 > \
                 {d}/count;; ALTER*) echo \"$sql\" >> {d}/altered; cp {d}/altered-nodes \
                 {d}/nodes;; esac"
            ),
        ];
        let set = |name: &str, text: &str| std::fs::write(format!("{d}/{name}"), text).unwrap();
        let r = |kind: char| crate::plan::step::Redistribute {
            psql: psql.clone(),
            table: "public.t".into(),
            kind,
            add: vec!["dn3".into()],
            delete: vec!["dn1".into()],
            after: vec!["dn2".into(), "dn3".into()],
            bytes: None,
        };
        let run = |kind: char| {
            let out = sh(Script::new().lines(redistribute(&r(kind))));
            let said = [out.stdout, out.stderr].concat();
            (out.status.success(), String::from_utf8_lossy(&said).into_owned())
        };
        set("count", "1000");
        set("nodes", "dn1,dn2\n");
        set("altered-nodes", "dn2,dn3\n");
        set("spread", "dn2 480\ndn3 520\n");
        assert_eq!(run('H'), (true, "1000 rows: dn2=480 dn3=520\n".into()));
        let altered = std::fs::read_to_string(format!("{d}/altered")).unwrap();
        assert!(altered.contains("ALTER TABLE public.t ADD NODE (dn3);"), "{altered}");
        assert!(altered.contains("ALTER TABLE public.t DELETE NODE (dn1);"), "{altered}");
        // Done already (by the ALTER of an apply that was killed): checked, not altered again.
        std::fs::remove_file(format!("{d}/altered")).unwrap();
        assert_eq!(run('H'), (true, "1000 rows: dn2=480 dn3=520\n".into()));
        assert!(!std::path::Path::new(&format!("{d}/altered")).exists());

        set("spread", "dn2 1000\ndn3 0\n");
        let (ok, said) = run('H');
        assert!(!ok && said.contains("wrong row count on dn3"), "{said}");
        let (ok, said) = run('R');
        assert!(!ok && said.contains("wrong row count on dn3"), "{said}");
        set("spread", "dn2 1000\ndn3 1000\n");
        assert!(run('R').0);

        set("nodes", "dn1,dn2,dn3\n");
        set("altered-nodes", "dn1,dn2,dn3\n");
        let (ok, said) = run('H');
        assert!(!ok && said.contains("pgxc_class lists dn1,dn2,dn3, not dn2,dn3"), "{said}");
        set("nodes", "dn2,dn3\n");
        set("count", "999");
        let (ok, said) = run('H');
        assert!(!ok && said.contains("public.t had 999 rows before, 1000 after"), "{said}");
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
        let script = restart_script(&d, &stop, &status, &start, &status).to_string();
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
        assert!(sh(wait_until(&argv("true"))).status.success());
        assert!(sh(wait_while(&argv("false"))).status.success());
        // Becomes ready on the third poll (a counter in a file).
        let dir = tempfile::tempdir().unwrap();
        let n = dir.path().join("n");
        let ready = vec![
            "sh".to_string(),
            "-c".to_string(),
            format!("echo >> {0}; [ $(wc -l < {0}) -ge 3 ]", n.display()),
        ];
        assert!(sh(wait_until(&ready)).status.success());
        assert_eq!(std::fs::read_to_string(&n).unwrap().lines().count(), 3);

        std::fs::remove_file(&n).unwrap();
        assert!(sh(wait_until_started(&ready, &argv("true"))).status.success());
        std::fs::remove_file(&n).unwrap();
        let out = sh(wait_until_started(&argv("false"), &argv("false")));
        assert_eq!(out.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&out.stderr).contains("exited while starting"));
        std::fs::remove_file(&n).ok();
        assert!(sh(await_script(&ready, "three", 10)).status.success());
        let never =
            vec!["sh".to_string(), "-c".to_string(), "echo 'it is not'; exit 1".to_string()];
        let out = sh(await_script(&never, "it is", 3));
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
            .arg(kill_leftovers(&dir.path().display().to_string()).to_string())
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
            std::process::Command::new("/bin/sh")
                .arg("-c")
                .arg(kill_leftovers(d).to_string())
                .output()
                .unwrap()
        };
        let out = again(&dir.path().display().to_string());
        assert!(out.status.success() && out.stdout.is_empty());
        assert!(again("/no/such/dir").status.success());
    }

    /// Paths, argv and messages with quotes, spaces and `$` reach the scripts as they are.
    #[test]
    fn values_with_quotes_and_spaces_reach_the_step_scripts_verbatim() {
        let root = tempfile::tempdir().unwrap();
        let d = root.path().join("it's a \"dir\" $HOME `id`").display().to_string();
        std::fs::create_dir_all(&d).unwrap();
        let exists = |name: &str| std::path::Path::new(name).exists();

        // A PID file naming a dead process goes.
        let mut gone = std::process::Command::new("true").spawn().unwrap();
        gone.wait().unwrap();
        let pid_file = format!("{d}/postmaster.pid");
        std::fs::write(&pid_file, format!("{}\n{d}\n1764000000\n5432\n", gone.id())).unwrap();
        assert!(sh(clear_stale_pid_files(&d)).status.success());
        assert!(!exists(&pid_file));

        // An argv is run as its words: `test -f` on the odd path.
        let marker = format!("{d}/{INIT_MARKER}");
        let has_marker = vec!["test".to_string(), "-f".to_string(), marker.clone()];
        let out = sh(wait_until_started(&has_marker, &["false".to_string()]));
        assert_eq!(out.status.code(), Some(1), "no marker yet");
        let out = sh(await_script(&has_marker, "it's \"there\" $HOME", 2));
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            "not so after 0 s: it's \"there\" $HOME; the last try said:\n\n"
        );

        // Unmarked: refused, naming the directory as it is; marked: removed.
        let out = sh(remove_script(Some(&d), None));
        assert_eq!(out.status.code(), Some(3));
        let said = String::from_utf8_lossy(&out.stderr);
        assert_eq!(said, format!("{d} has no {INIT_MARKER}: not removed\n"));
        std::fs::write(&marker, "").unwrap();
        assert!(sh(wait_until(&has_marker)).status.success());
        let promote = vec!["true".to_string(), "-D".to_string(), d.clone()];
        std::fs::write(format!("{d}/promote"), "").unwrap();
        assert!(sh(promote_wait(&d, &promote, &["true".to_string()])).status.success());
        assert!(!exists(&format!("{d}/promote")) && exists(&marker));
        assert!(sh(kill_leftovers(&d)).status.success());
        assert!(sh(remove_script(Some(&d), None)).status.success());
        assert!(!exists(&d) && root.path().exists());
    }
}
