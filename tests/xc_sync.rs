//! `degrade` on a Postgres-XC cluster that apply deployed (needs `PGXC_HOME`, an installed
//! Postgres-XC / Postgres-X2; the test fails without it): GTM, coord1 and dn1 on h1, dn1's
//! synchronous standby on h2, dn2 on h2. The standby dies: writes through the coordinator to
//! dn1 wait; degrade lets them through; the standby back, apply makes it synchronous again.
//! Then the same by itself: `status --watch 1 --heal` degrades dn1 when its standby dies again
//! and switches synchronous replication back on once it is back. Its own directory
//! (`healxcsync`) and ports (32452-32467).

use std::path::Path;
use std::process::Output;

use crate::heal::Watch;
use crate::support::*;

const TAG: &str = "healxcsync";
const COORD_PORT: u16 = 32452;
/// dn1's port (`xc_pair_nodes`: the coordinator's + 10).
const DN_PORT: u16 = COORD_PORT + 10;

fn inventory(dir: &Path, pgxc_home: &str) -> String {
    let text = xc_toml(TAG, pgxc_home, XC_MD5, &xc_pair_nodes(COORD_PORT, true));
    write(dir, "xc-password", "xc sync s3cret\n");
    write(dir, "xcsync.toml", &text)
}

fn data(k: usize, node: &str) -> String {
    node_dir(TAG, k, node)
}

fn psql() -> String {
    lab_psql(TAG)
}

/// One statement through coord1 under `timeout SECONDS` (a commit waiting for a synchronous
/// standby ignores statement_timeout).
fn through(seconds: &str, query: &str) -> Output {
    psql_out(&psql(), &data(1, "coord1"), COORD_PORT, query, Some(seconds))
}

fn through_ok(query: &str) -> String {
    let out = through("30", query);
    assert!(out.status.success(), "coord1: {query}: {}", shown(&out));
    text(&out.stdout).trim().to_string()
}

/// SQL on dn1 itself (its Unix socket).
fn on_dn1(query: &str) -> String {
    sql(&psql(), &data(1, "dn1"), DN_PORT, query)
}

#[test]
fn postgres_xc_degrade_and_heal_let_writes_through_the_coordinator_and_restore_sync() {
    let pgxc_home = pgxc_home();
    reset(TAG);
    let dir = tempdir();
    let inv = inventory(dir.path(), &pgxc_home);
    let out = pgxc(&["apply", &inv]);
    assert!(out.status.success(), "apply: {}", shown(&out));
    let sync_state = "select sync_state from pg_stat_replication \
                      where application_name = 'dn1_standby'";
    assert_eq!(on_dn1(sync_state), "sync");
    // Rows only on dn1, so that every write below commits there.
    through_ok("create table t (id int) distribute by hash(id) to node (dn1)");
    through_ok("insert into t values (1)");

    // kill -9 the standby: every commit on dn1 waits for it, through the coordinator too.
    let pid = postmaster_pid(&data(2, "dn1_standby"));
    kill("-KILL", pid);
    wait_for("the standby's postmaster to die", || process_gone(pid));
    wait_for("dn1 to see its standby gone", || {
        on_dn1("select count(*) from pg_stat_replication") == "0"
    });
    let out = through("3", "insert into t values (2)");
    assert_eq!(out.status.code(), Some(124), "the write waits: {}", shown(&out));
    let out = pgxc(&["status", &inv]);
    assert_eq!(out.status.code(), Some(1), "{}", shown(&out));
    assert!(
        text(&out.stdout).contains(
            "dn1 on h1: commits wait for the synchronous standby dn1_standby, which is not \
             streaming: `pgxc-deploy degrade INVENTORY dn1`"
        ),
        "{}",
        shown(&out)
    );

    let out = pgxc(&["degrade", &inv, "dn1"]);
    assert!(out.status.success(), "degrade: {}", shown(&out));
    let said = text(&out.stdout);
    eprintln!("degrade:\n{said}");
    assert!(said.contains("dn1 on h1: update synchronous_standby.conf"), "{said}");
    assert!(said.contains("dn1 on h1: await: commits no longer wait for dn1_standby"), "{said}");
    through_ok("insert into t values (3)");
    // The write whose client gave up goes through too: its coordinator session waited on.
    wait_for("the waiting write to commit", || through_ok("select count(*) from t") == "3");
    let (code, rows) = status(&inv);
    assert_eq!(code, 1, "the standby is still down");
    assert_eq!(rows["dn1"]["healthy"], true, "{}", rows["dn1"]);
    assert_eq!(rows["dn1"]["drift"], serde_json::json!(["synchronous_standby.conf (degraded)"]));

    // The standby back, then apply: synchronous again, writes through the coordinator.
    let out = pgxc(&["start", &inv, "--on", "dn1_standby"]);
    assert!(out.status.success(), "start: {}", shown(&out));
    let out = pgxc(&["apply", &inv]);
    assert!(out.status.success(), "apply: {}", shown(&out));
    assert!(text(&out.stderr).contains("dn1 on h1: update synchronous_standby.conf"));
    assert_eq!(on_dn1(sync_state), "sync");
    through_ok("insert into t values (4)");
    assert_eq!(through_ok("select count(*) from t"), "4");
    let (code, rows) = status(&inv);
    assert_eq!(code, 0, "{rows:#?}");
    assert_eq!(rows["dn1"]["drift"], serde_json::json!([]));

    // The standby dies again, with a watch healing: a write through the coordinator that
    // waits goes through once the watch degraded dn1.
    let pid = postmaster_pid(&data(2, "dn1_standby"));
    kill("-KILL", pid);
    wait_for("the standby's postmaster to die", || process_gone(pid));
    wait_for("dn1 to see its standby gone", || {
        on_dn1("select count(*) from pg_stat_replication") == "0"
    });
    let mut watch = Watch::start(&inv, dir.path().join("watch.log"));
    let out = through("60", "insert into t values (5)");
    assert!(out.status.success(), "a write once the watch healed dn1: {}", shown(&out));
    wait_for("the watch to report the heal", || {
        watch.output().contains("heal: degraded dn1 on h1")
    });
    assert_eq!(watch.interrupt(), Some(1), "the standby is still down");
    let said = watch.output();
    eprintln!("status --watch 1 --heal:\n{said}");
    assert!(said.contains("dn1 on h1: await: commits no longer wait for dn1_standby"), "{said}");
    assert!(!said.contains("FAILED"), "{said}");

    // The standby back: the watch switches synchronous replication on again.
    let out = pgxc(&["start", &inv, "--on", "dn1_standby"]);
    assert!(out.status.success(), "start: {}", shown(&out));
    let mut watch = Watch::start(&inv, dir.path().join("watch2.log"));
    wait_for("the watch to switch synchronous replication back on", || {
        watch.output().contains("heal: synchronous replication back on for dn1 on h1")
    });
    assert_eq!(watch.interrupt(), Some(0), "{}", watch.output());
    assert_eq!(on_dn1(sync_state), "sync");
    through_ok("insert into t values (6)");
    assert_eq!(through_ok("select count(*) from t"), "6");
    let (code, rows) = status(&inv);
    assert_eq!(code, 0, "{rows:#?}");
    assert_eq!(rows["dn1"]["drift"], serde_json::json!([]));

    reset(TAG);
}
