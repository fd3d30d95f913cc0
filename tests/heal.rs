//! `status --watch SECONDS --heal` on a PostgreSQL-flavor cluster that `apply` deploys on lab
//! hosts: pg1 (h1) with a synchronous standby (h2). Its own directory (`healtest`) and ports
//! (32432, 32433), so it runs beside the other tests.

use std::fs::File;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::support::*;

const TAG: &str = "healtest";
const PRIMARY_PORT: u16 = 32432;
const STANDBY_PORT: u16 = 32433;

fn inventory(dir: &Path) -> String {
    write(dir, "heal.toml", &pair_toml(TAG, (PRIMARY_PORT, STANDBY_PORT), true, ""))
}

fn data(k: usize, node: &str) -> String {
    node_dir(TAG, k, node)
}

fn psql() -> String {
    lab_psql(TAG)
}

fn on_pg1(query: &str) -> String {
    sql(&psql(), &data(1, "pg1"), PRIMARY_PORT, query)
}

/// A write on pg1 under `timeout SECONDS` (statement_timeout does not end a commit waiting for
/// a synchronous standby): psql's exit code, 124 when `timeout` killed it.
fn write_on_pg1(seconds: &str) -> Option<i32> {
    let insert = "insert into t values (1)";
    psql_out(&psql(), &data(1, "pg1"), PRIMARY_PORT, insert, Some(seconds)).status.code()
}

/// `status --watch 1 --heal` in the background, its output in `log`; interrupted (Ctrl-C)
/// when dropped, so that a failing test leaves no watch behind.
pub(crate) struct Watch {
    child: Option<Child>,
    log: std::path::PathBuf,
}

impl Watch {
    pub(crate) fn start(inv: &str, log: std::path::PathBuf) -> Watch {
        let file = File::create(&log).unwrap();
        let child = Command::new(bin())
            .args(["status", inv, "--watch", "1", "--heal"])
            .env_remove("SSH_AUTH_SOCK")
            .stdout(Stdio::from(file.try_clone().unwrap()))
            .stderr(Stdio::from(file))
            .spawn()
            .expect("start status --watch");
        Watch { child: Some(child), log }
    }

    pub(crate) fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Ctrl-C: the watch ends after its current refresh; its exit code.
    pub(crate) fn interrupt(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        kill("-INT", child.id() as i32);
        child.wait().unwrap().code()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[test]
fn status_watch_heal_degrades_a_primary_blocked_by_its_dead_synchronous_standby_and_restores_it() {
    // --heal only while watching: a usage error otherwise.
    let out = pgxc(&["status", "x.toml", "--heal"]);
    assert_eq!(out.status.code(), Some(2), "{}", shown(&out));
    assert!(text(&out.stderr).contains("--watch"), "{}", shown(&out));

    reset(TAG);
    let dir = tempdir();
    let inv = inventory(dir.path());
    let out = pgxc(&["apply", &inv]);
    assert!(out.status.success(), "apply: {}", shown(&out));
    on_pg1("create table t (x int)");
    assert_eq!(write_on_pg1("10"), Some(0), "a write with the standby streaming");

    // kill -9 the standby: every commit on pg1 waits for it.
    let pid = postmaster_pid(&data(2, "pg1_standby"));
    kill("-KILL", pid);
    wait_for("the standby's postmaster to die", || process_gone(pid));
    wait_for("pg1 to see its standby gone", || {
        on_pg1("select count(*) from pg_stat_replication") == "0"
    });
    assert_eq!(write_on_pg1("2"), Some(124), "the write waits for the dead standby");

    // The watch degrades pg1 by itself: a write that waits goes through.
    let mut watch = Watch::start(&inv, dir.path().join("watch.log"));
    assert_eq!(write_on_pg1("60"), Some(0), "a write once the watch healed pg1");
    wait_for("the watch to report the heal", || {
        watch.output().contains("heal: degraded pg1 on h1")
    });
    assert_eq!(watch.interrupt(), Some(1), "the standby is still down");
    let said = watch.output();
    eprintln!("status --watch 1 --heal:\n{said}");
    assert!(
        said.contains(
            "== heal: degrade pg1: its commits wait for its synchronous standby pg1_standby, \
             which did not stream at two refreshes in a row"
        ),
        "{said}"
    );
    assert!(said.contains("pg1 on h1: update synchronous_standby.conf"), "{said}");
    assert!(said.contains("pg1 on h1: await: commits no longer wait for pg1_standby"), "{said}");
    assert!(
        said.contains(
            "heal: degraded pg1 on h1: synchronous replication off until pg1_standby streams \
             again; commits went through"
        ),
        "{said}"
    );
    assert!(!said.contains("FAILED"), "{said}");
    let file =
        std::fs::read_to_string(format!("{}/synchronous_standby.conf", data(1, "pg1"))).unwrap();
    assert!(file.contains("synchronous_standby_names = ''  # off until pg1_standby streams"));
    let (code, rows) = status(&inv);
    assert_eq!(code, 1, "the standby is still down");
    assert_eq!(rows["pg1"]["healthy"], true, "{}", rows["pg1"]);

    // The standby back: the watch switches synchronous replication on again.
    let out = pgxc(&["start", &inv, "--on", "pg1_standby"]);
    assert!(out.status.success(), "start: {}", shown(&out));
    let mut watch = Watch::start(&inv, dir.path().join("watch2.log"));
    wait_for("the watch to switch synchronous replication back on", || {
        watch.output().contains("heal: synchronous replication back on for pg1 on h1")
    });
    assert_eq!(watch.interrupt(), Some(0), "{}", watch.output());
    let said = watch.output();
    eprintln!("status --watch 1 --heal, standby back:\n{said}");
    assert!(said.contains("pg1 on h1: await: pg1_standby is its synchronous standby again"));
    assert!(!said.contains("FAILED"), "{said}");
    let sync_state =
        "select sync_state from pg_stat_replication where application_name = 'pg1_standby'";
    assert_eq!(on_pg1(sync_state), "sync");
    let (code, rows) = status(&inv);
    assert_eq!(code, 0, "{rows:#?}");
    assert_eq!(rows["pg1"]["drift"], serde_json::json!([]));
    assert_eq!(write_on_pg1("10"), Some(0));

    reset(TAG);
}
