//! The one read-only probe a host runs ([`probe_script`]): what is installed, initialised,
//! running. PURE: it writes the script; [`crate::plan::state::parse_probe`] reads what it
//! prints into [`HostFacts`](crate::plan::state::HostFacts), and [`crate::observe`] runs it,
//! one round trip per host (or [`crate::lock`] runs it under the cluster lock).
//!
//! The probe prints one fact per line (`key value`), and files as `file NAME LENGTH` followed by
//! exactly LENGTH bytes, so any file content parses back unchanged.

use crate::inventory::Role;
use crate::plan::sql;
use crate::plan::state::{
    INIT_MARKER, INSTALL_MARKER, SQL_SECS, STAGING_SUFFIX, STREAMED_MARKER, UNKNOWN_SOURCE,
};
use crate::plan::step::{JOIN_MARKER, REDISTRIBUTE_MARKER};
use crate::shell::{Cmd, Lines};

/// What the probe needs to know about one node on the host.
#[derive(Debug, Clone)]
pub struct ProbeNode {
    pub name: String,
    pub role: Role,
    pub data_dir: String,
    pub port: u16,
    /// Files (relative to the data directory) whose content is compared with the desired one.
    pub files: Vec<String>,
    /// Ask the running server SQL (recovery, replication, pgxc_node, settings); else only
    /// whether it accepts connections. A Postgres-XC server's new sessions wait for the GTM.
    pub sql: bool,
    /// Coordinators of a Postgres-XC cluster: read pgxc_node.
    pub read_pgxc_node: bool,
    /// A coordinator of a cluster sharded over a default node group (OpenTenBase,
    /// [`crate::flavors::Flavor::default_group`]): read its node groups and shard map.
    pub read_groups: bool,
    /// A server that refuses every session while it is a standby (Postgres-XL's datanodes):
    /// pg_controldata says whether it is in recovery, and only a server that is not is asked
    /// SQL.
    pub refuses_sql: bool,
    /// The flavor's SQL for a standby's replay lag in bytes, over a row of pg_stat_replication
    /// ([`crate::flavors::Flavor::replay_lag_sql`]).
    pub replay_lag_sql: &'static str,
    /// The flavor's SQL that prints the node's WAL positions
    /// ([`crate::flavors::Flavor::positions_sql`]).
    pub positions_sql: &'static str,
    /// A GTM or GTM standby the other of the pair connects back to
    /// ([`crate::flavors::Features::gtm_standby_dialed`]): the other's address, whose route's
    /// source address (`ip route get`) the probe prints as `reach_from`.
    pub route_to: Option<String>,
}

/// The probe script for one host: read-only, one line of output per fact.
pub fn probe_script(
    install_prefix: &str,
    bin_dir: &str,
    os_user: &str,
    passfile: Option<&str>,
    nodes: &[ProbeNode],
) -> Lines {
    let mut s = Lines::new()
        .set("m", format!("{install_prefix}/{INSTALL_MARKER}"))
        .set("postgres", format!("{bin_dir}/postgres"))
        // Constant: the marker counts only while the install's server binary is still there.
        .raw("[ -f \"$m\" ] && [ -x \"$postgres\" ] && printf 'install %s\\n' \"$(cat \"$m\")\"");
    if let Some(p) = passfile {
        // Constant, over `$p`.
        s = s.set("p", p).raw(
            "[ -f \"$p\" ] && printf 'passfile %s\\n' \"$(sha256sum < \"$p\" | cut -d' ' -f1)\"",
        );
    }
    // Constant from here on, but for the values set as variables, the markers' and the server
    // log's names, the flavor's SQL (constants) and the nodes' numbers (loop indexes).
    s = s.set("bin", bin_dir).set("user", os_user);
    // Nodes are probed at once, each into its own file, printed in order afterwards.
    s = s.raw("t=$(mktemp -d) || exit 1");
    for (i, n) in nodes.iter().enumerate() {
        let mut sec = Lines::new()
            .cmd(Cmd::new("printf").arg("node %s\\n").arg(&n.name))
            .set("d", &n.data_dir)
            .set("s", crate::inventory::socket_dir(&n.data_dir))
            .raw("[ -d \"$d\" ] && echo dir")
            .raw(&format!("[ -f \"$d\"/{INIT_MARKER} ] && echo initialized"))
            .raw(&format!("[ -d \"$d\"{STAGING_SUFFIX} ] && echo staging"))
            .raw(&format!("[ -f \"$d\"/{STREAMED_MARKER} ] && echo streamed"))
            .raw(&format!("[ -f \"$d\"/{REDISTRIBUTE_MARKER} ] && echo redistributing"))
            .raw(&format!("[ -f \"$d\"/{JOIN_MARKER} ] && echo join_pending"))
            // A full disk explains a server that stopped, or a standby that stopped streaming.
            .raw(
                "[ -d \"$d\" ] && df -Pk \"$d\" 2>/dev/null | awk 'NR == 2 { print \"free\", $4 }'",
            )
            .raw(&format!(
                "[ -f \"$d\"/{log} ] && tail -n {DISK_LOG_LINES} \"$d\"/{log} | grep -i 'no space \
                 left on device' | tail -n 1 | sed 's/^/diskerror /'",
                log = crate::flavors::SERVER_LOG
            ));
        let pid_file = match n.role {
            Role::Gtm | Role::GtmStandby => "gtm.pid",
            Role::GtmProxy => "gtm_proxy.pid",
            _ => "postmaster.pid",
        };
        sec = sec.raw(&format!(
            "{} && echo alive && echo \"pid $p\"",
            live_server(&format!("\"$d\"/{pid_file}"), "\"$d\"")
        ));
        for f in &n.files {
            sec = sec.set("f", f).raw(
                "[ -f \"$d/$f\" ] && { printf 'file %s %s\\n' \"$f\" \"$(wc -c < \"$d/$f\")\"; cat \
                 \"$d/$f\"; echo; }",
            );
        }
        if let Some(address) = &n.route_to {
            // The address a connection to the other GTM comes from: the one a standby here
            // registers under, and so where the active GTM sends it transaction IDs.
            sec = sec.set("r", address).raw(&format!(
                "r=$(ip -o route get \"$r\" 2>/dev/null | sed -n 's/.* src \\([^ ]*\\).*/\\1/p'); \
                 echo \"reach_from ${{r:-{UNKNOWN_SOURCE}}}\""
            ));
        }
        if n.role.is_gtm_kind() {
            // The GTM's PID file says in its third line whether it runs as the active GTM
            // (`1`) or as a standby (`0`): printed as `recovery t|f`, as a standby server's is.
            // (Postgres-X2's `gtm_ctl status` prints that line as `1 master`/`0 slave`,
            // Postgres-XL's not at all; a gtm_proxy is neither.)
            let pid = format!("\"$d\"/{pid_file}");
            let live = live_server(&pid, "\"$d\"");
            sec = sec.raw(&if n.role == Role::GtmProxy {
                format!("{live} && echo running")
            } else {
                format!(
                    "{live} && echo running && case $(sed -n 3p {pid} 2>/dev/null) in 0) echo \
                     recovery t;; 1) echo recovery f;; esac"
                )
            });
        } else {
            // A user and database that exist keep the probe out of the server log as a failed
            // login; 9.4's pg_isready reads -d only as a connection string.
            sec = sec
                .set("port", n.port.to_string())
                .raw(
                    "if \"$bin\"/pg_isready -q -h \"$s\" -p \"$port\" -U \"$user\" -d \
                     dbname=postgres 2>/dev/null; then",
                )
                .raw("echo running");
            if n.refuses_sql {
                // `in archive recovery` while a standby (then no SQL), else asked as usual.
                sec = sec.raw(
                    "if [ \"$(\"$bin\"/pg_controldata \"$d\" 2>/dev/null | sed -n 's/^Database \
                     cluster state: *//p')\" = 'in archive recovery' ]; then echo recovery t",
                );
                sec = sec.raw(if n.sql { "else" } else { "fi" });
            }
            if n.sql {
                // Bounded: a Postgres-XC session cannot start while its GTM is gone.
                sec = sec.raw(&format!(
                    "timeout {SQL_SECS} \"$bin\"/psql -X -A -t -q -h \"$s\" -p \"$port\" -U \
                     \"$user\" -d postgres <<'PGXC_SQL'"
                ));
                for query in
                    sql::probe(n.replay_lag_sql, n.positions_sql, n.read_pgxc_node, n.read_groups)
                {
                    sec = sec.raw(&query);
                }
                sec = sec.raw("PGXC_SQL").raw("[ $? -eq 124 ] && echo sqlstuck");
                if n.refuses_sql {
                    sec = sec.raw("fi");
                }
            }
            sec = sec.raw("fi");
        }
        s = s.raw("{").lines(sec).raw(&format!("}} >\"$t\"/{i} 2>/dev/null &"));
    }
    s = s.raw("wait");
    for i in 0..nodes.len() {
        s = s.raw(&format!("cat \"$t\"/{i}"));
    }
    s.raw("rm -rf \"$t\"")
}

/// How many of the server log's last lines the probe searches for a full disk.
const DISK_LOG_LINES: u32 = 30;

/// Shell condition: the first line of the PID file `pid_file` (postmaster.pid, gtm.pid) names a
/// live server of the data directory `dir`. Both are shell words, constant text over variables
/// the caller set (`"$d"/gtm.pid`, `"$d"`). Sets `p` to the PID read, if any, whatever the
/// answer.
///
/// A PID that exists is not enough. A server killed on a host whose init does not reap orphans
/// (a container, this lab) stays a zombie. After a reboot, the PID of a server that died with
/// the machine can belong to any process, and pg_ctl would signal it. postgres and gtm change
/// to their data directory before they write the PID file, so the process must also run there.
/// A working directory that cannot be read (a security module's rule) is not held against it:
/// a live server's files must never be taken for stale ones.
pub fn live_server(pid_file: &str, dir: &str) -> String {
    format!(
        "p=$(head -n 1 {pid_file} 2>/dev/null) && [ -n \"$p\" ] && kill -0 \"$p\" 2>/dev/null \
         && ! grep -qs '^State:[[:space:]]*Z' /proc/\"$p\"/status \
         && {{ c=$(readlink /proc/\"$p\"/cwd 2>/dev/null); [ -z \"$c\" ] \
         || [ \"$c\" = \"$(cd {dir} 2>/dev/null && pwd -P)\" ]; }}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::state::parse_probe;

    fn node(name: &str, role: Role, files: &[&str]) -> ProbeNode {
        ProbeNode {
            name: name.into(),
            role,
            data_dir: format!("/data/{name}"),
            port: 5432,
            sql: true,
            files: files.iter().map(|f| f.to_string()).collect(),
            read_pgxc_node: role == Role::Coordinator,
            read_groups: false,
            refuses_sql: false,
            replay_lag_sql: "0",
            positions_sql: "",
            route_to: None,
        }
    }

    /// The script itself, run by a real /bin/sh over a fake data directory, parses back.
    #[test]
    fn probe_script_runs_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().display().to_string();
        let d = format!("{root}/dn 1");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(format!("{d}/{INIT_MARKER}"), "").unwrap();
        std::fs::write(format!("{d}/pg_hba.conf"), "local all all trust\n'quoted' $x\n").unwrap();
        std::fs::write(format!("{root}/{INSTALL_MARKER}"), "f00d").unwrap();
        // The marker counts only with the server binary in place.
        std::fs::create_dir_all(format!("{root}/bin")).unwrap();
        std::fs::write(format!("{root}/bin/postgres"), "").unwrap();
        use std::os::unix::fs::PermissionsExt;
        let exe = std::fs::Permissions::from_mode(0o755);
        std::fs::set_permissions(format!("{root}/bin/postgres"), exe).unwrap();
        let mut n = node("dn1", Role::Datanode, &["pg_hba.conf", "postgresql.conf"]);
        n.data_dir = d.clone();
        n.port = 1; // nothing listens: pg_isready fails, not running
        let script = probe_script(&root, &format!("{root}/bin"), "pgxc", None, &[n.clone()]);
        let out = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(script.to_string())
            .output()
            .unwrap();
        let facts = parse_probe(&out.stdout).unwrap();
        assert_eq!(facts.install.as_deref(), Some("f00d"));
        let f = &facts.nodes["dn1"];
        assert!(f.dir_exists && f.initialized && !f.running);
        assert!(!f.alive && !f.staging);
        assert_eq!(f.files.keys().collect::<Vec<_>>(), ["pg_hba.conf"]);
        assert_eq!(f.files["pg_hba.conf"], b"local all all trust\n'quoted' $x\n");
        assert_eq!(f.reach_from, None);

        // A GTM standby's host says where its connections to the active GTM come from: on this
        // machine's loopback, 127.0.0.1 whichever 127.x address the active has.
        let mut standby = node("gtm_standby", Role::GtmStandby, &[]);
        standby.route_to = Some("127.0.10.1".into());
        let script = probe_script(&root, &format!("{root}/bin"), "pgxc", None, &[standby]);
        let out = std::process::Command::new("/bin/sh").arg("-c").arg(script.to_string()).output();
        let facts = parse_probe(&out.unwrap().stdout).unwrap();
        assert_eq!(facts.nodes["gtm_standby"].reach_from.as_deref(), Some("127.0.0.1"));
        // No route (or no `ip`): said, not left out.
        let mut standby = node("gtm_standby", Role::GtmStandby, &[]);
        standby.route_to = Some("no.such.host.invalid".into());
        let script = probe_script(&root, &format!("{root}/bin"), "pgxc", None, &[standby]);
        let out = std::process::Command::new("/bin/sh").arg("-c").arg(script.to_string()).output();
        let facts = parse_probe(&out.unwrap().stdout).unwrap();
        assert_eq!(facts.nodes["gtm_standby"].reach_from.as_deref(), Some(UNKNOWN_SOURCE));

        // A live PID in postmaster.pid is a live server process, even one that does not
        // answer, when that process runs in the data directory; a staging directory left by an
        // interrupted init is seen.
        let mut server =
            std::process::Command::new("sleep").arg("30").current_dir(&d).spawn().unwrap();
        std::fs::write(format!("{d}/postmaster.pid"), format!("{}\n{d}\n", server.id())).unwrap();
        std::fs::create_dir_all(format!("{d}.pgxc-deploy-tmp")).unwrap();
        let probe = |n: &ProbeNode| {
            let script =
                probe_script(&root, &format!("{root}/bin"), "pgxc", None, std::slice::from_ref(n));
            let out =
                std::process::Command::new("/bin/sh").arg("-c").arg(script.to_string()).output();
            parse_probe(&out.unwrap().stdout).unwrap().nodes["dn1"].clone()
        };
        let f = probe(&n);
        server.kill().unwrap();
        server.wait().unwrap();
        assert!(f.alive && f.staging && !f.running);
        // A PID that another process got after a reboot (this test's own, which runs
        // elsewhere) names no server.
        std::fs::write(format!("{d}/postmaster.pid"), format!("{}\n{d}\n", std::process::id()))
            .unwrap();
        assert!(!probe(&n).alive);

        // Without the binaries, the install does not count as there.
        std::fs::remove_file(format!("{root}/bin/postgres")).unwrap();
        let script = probe_script(&root, &format!("{root}/bin"), "pgxc", None, &[n]);
        let out = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(script.to_string())
            .output()
            .unwrap();
        assert_eq!(parse_probe(&out.stdout).unwrap().install, None);
    }

    /// A Postgres-XL standby refuses every session: pg_controldata says it is in recovery and
    /// no SQL is sent; once promoted (in production) it is asked SQL as usual.
    #[test]
    fn a_server_that_refuses_sql_while_a_standby_is_read_with_pg_controldata() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().display().to_string();
        let d = format!("{root}/dn1");
        std::fs::create_dir_all(format!("{root}/bin")).unwrap();
        std::fs::create_dir_all(&d).unwrap();
        let tool = |name: &str, body: &str| {
            let path = format!("{root}/bin/{name}");
            std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        };
        tool("pg_isready", "exit 0");
        tool("psql", "cat >/dev/null; echo 'recovery f'; echo 'wal 0/3000060'");
        let mut n = node("dn1", Role::Standby, &[]);
        n.data_dir = d.clone();
        n.refuses_sql = true;
        let probe = || {
            let script = probe_script(&root, &format!("{root}/bin"), "pgxc", None, &[n.clone()]);
            let out =
                std::process::Command::new("/bin/sh").arg("-c").arg(script.to_string()).output();
            parse_probe(&out.unwrap().stdout).unwrap().nodes["dn1"].clone()
        };
        tool("pg_controldata", "echo 'Database cluster state:               in archive recovery'");
        let f = probe();
        assert!(f.running);
        assert_eq!(f.in_recovery, Some(true));
        assert_eq!(f.wal, None, "no SQL was sent");
        tool("pg_controldata", "echo 'Database cluster state:               in production'");
        let f = probe();
        assert_eq!(f.in_recovery, Some(false));
        assert!(f.wal.is_some(), "asked SQL once promoted");
    }

    /// Paths and file names with quotes, spaces and `$` reach the probe as they are.
    #[test]
    fn the_probe_takes_any_path_and_file_name() {
        let dir = tempfile::tempdir().unwrap();
        let root = format!("{}/it's a \"root\" $HOME `id`", dir.path().display());
        let d = format!("{root}/dn 1's");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(format!("{d}/{INIT_MARKER}"), "").unwrap();
        std::fs::write(format!("{d}/my 'hba' $x.conf"), "local all all trust\n").unwrap();
        std::fs::write(format!("{root}/{INSTALL_MARKER}"), "f00d").unwrap();
        let bin = format!("{root}/bin $PATH");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::write(format!("{bin}/postgres"), "").unwrap();
        use std::os::unix::fs::PermissionsExt;
        let exe = std::fs::Permissions::from_mode(0o755);
        std::fs::set_permissions(format!("{bin}/postgres"), exe).unwrap();
        let passfile = format!("{root}/pass 'file'");
        std::fs::write(&passfile, "secret").unwrap();
        let mut n = node("dn1", Role::Datanode, &["my 'hba' $x.conf", "postgresql.conf"]);
        n.data_dir = d.clone();
        n.port = 1;
        let script = probe_script(&root, &bin, "it's me", Some(&passfile), &[n]);
        let out = std::process::Command::new("/bin/sh").arg("-c").arg(script.to_string()).output();
        let facts = parse_probe(&out.unwrap().stdout).unwrap();
        assert_eq!(facts.install.as_deref(), Some("f00d"));
        assert_eq!(facts.passfile.as_deref().map(str::len), Some(64), "a SHA-256");
        let f = &facts.nodes["dn1"];
        assert!(f.dir_exists && f.initialized && !f.running && !f.alive);
        assert_eq!(f.files.keys().collect::<Vec<_>>(), ["my 'hba' $x.conf"]);
        assert_eq!(f.files["my 'hba' $x.conf"], b"local all all trust\n");
    }

    /// Nested in the lock script, the probe prints one block that parses back.
    #[test]
    fn the_probe_runs_under_the_lock_as_one_block() {
        let dir = tempfile::tempdir().unwrap();
        let root = format!("{}/data 'root'", dir.path().display());
        let mut n = node("dn1", Role::Datanode, &["pg_hba.conf"]);
        n.data_dir = format!("{root}/dn1");
        n.port = 1;
        std::fs::create_dir_all(&n.data_dir).unwrap();
        std::fs::write(format!("{}/pg_hba.conf", n.data_dir), "a\n'b'\n").unwrap();
        let probe = probe_script(&root, &format!("{root}/bin"), "pgxc", None, &[n]);
        let script = crate::remote::lock::lock_script(&root, "apply by a@b (pid 1)", Some(probe));
        let out = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(script.to_string())
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let rest = text.strip_prefix("locked\nblock ").expect("locked, then a block");
        let (len, block) = rest.split_once('\n').unwrap();
        assert_eq!(len.parse::<usize>().unwrap(), block.len());
        let facts = parse_probe(block.as_bytes()).unwrap();
        assert_eq!(facts.nodes["dn1"].files["pg_hba.conf"], b"a\n'b'\n");
    }
}
