//! `degrade` on a PostgreSQL-flavor cluster that `apply` deploys on lab hosts: pg1 (h1) with a
//! synchronous standby (h2), pg2 (h3) without one. Its own directory (`synctest`) and ports
//! (30432, 30433), so it runs beside the other tests.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::*;

const TAG: &str = "synctest";
const PRIMARY_PORT: u16 = 30432;
const STANDBY_PORT: u16 = 30433;

fn inventory(dir: &Path) -> String {
    let pg2 = format!("\n[[datanodes]]\nname = \"pg2\"\nhost = \"h3\"\nport = {PRIMARY_PORT}\n");
    write(dir, "sync.toml", &pair_toml(TAG, (PRIMARY_PORT, STANDBY_PORT), true, &pg2))
}

fn data(k: usize, node: &str) -> String {
    node_dir(TAG, k, node)
}

fn psql() -> String {
    lab_psql(TAG)
}

/// SQL on pg1.
fn on_pg1(query: &str) -> String {
    sql(&psql(), &data(1, "pg1"), PRIMARY_PORT, query)
}

/// A write on pg1, given up after `timeout_ms` (psql killed: statement_timeout does not cover
/// a commit's wait for a synchronous standby): how long it took, and whether it committed.
fn write_on_pg1(timeout_ms: u64) -> (Duration, bool) {
    let started = Instant::now();
    let secs = format!("{:.1}", timeout_ms as f64 / 1000.0);
    let insert = "insert into t values (1)";
    let out = psql_out(&psql(), &data(1, "pg1"), PRIMARY_PORT, insert, Some(&secs));
    (started.elapsed(), out.status.success())
}

#[test]
fn degrade_lets_writes_through_when_a_synchronous_standby_dies_and_apply_restores_it() {
    reset(TAG);
    let dir = tempdir();
    let inv = inventory(dir.path());
    let out = pgxc(&["apply", &inv]);
    assert!(out.status.success(), "apply: {}", shown(&out));
    let sync_state = "select sync_state from pg_stat_replication \
                      where application_name = 'pg1_standby'";
    assert_eq!(on_pg1(sync_state), "sync");
    on_pg1("create table t (x int)");
    assert!(write_on_pg1(5000).1, "a write with the standby streaming");

    // Nothing to degrade on a datanode without a synchronous standby.
    let out = pgxc(&["degrade", &inv, "pg2"]);
    assert_eq!(out.status.code(), Some(2), "{}", shown(&out));
    assert!(
        text(&out.stderr).contains("has no standby: commits wait for nobody"),
        "{}",
        shown(&out)
    );

    // kill -9 the standby: every commit on pg1 waits for it.
    let pid = postmaster_pid(&data(2, "pg1_standby"));
    kill("-KILL", pid);
    wait_for("the standby's postmaster to die", || process_gone(pid));
    wait_for("pg1 to see its standby gone", || {
        on_pg1("select count(*) from pg_stat_replication") == "0"
    });
    let (took, committed) = write_on_pg1(3000);
    assert!(!committed && took >= Duration::from_millis(2900), "blocked: {took:?} {committed}");
    eprintln!("a write on pg1 with its synchronous standby dead: still waiting after {took:?}");

    let out = pgxc(&["status", &inv]);
    assert_eq!(out.status.code(), Some(1), "{}", shown(&out));
    let said = text(&out.stdout);
    assert!(
        said.contains(
            "pg1 on h1: commits wait for the synchronous standby pg1_standby, which is \
                       not streaming: `pgxc-deploy degrade INVENTORY pg1`"
        ),
        "{said}"
    );

    // While another command holds the cluster lock, degrade is refused and changes nothing.
    let lock = format!("{LAB_DIR}/hosts/h1/data/{TAG}/.pgxc-deploy.lock");
    std::fs::write(format!("{lock}.owner"), "switchover by someone@elsewhere (pid 7)\n").unwrap();
    let mut holder =
        std::process::Command::new("flock").args(["-o", &lock, "sleep", "60"]).spawn().unwrap();
    wait_for("the lock held", || {
        assert!(holder.try_wait().unwrap().is_none(), "the lock's holder ended early");
        let probe = std::process::Command::new("flock").args(["-n", &lock, "true"]).status();
        !probe.unwrap().success()
    });
    let out = pgxc(&["degrade", &inv, "pg1"]);
    holder.kill().unwrap();
    holder.wait().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", shown(&out));
    assert!(
        text(&out.stderr).contains("h1: lock: locked by switchover by someone@elsewhere"),
        "{}",
        shown(&out)
    );
    assert!(!write_on_pg1(1000).1, "a refused degrade switched nothing off");

    // degrade (by the standby's name): writes go through within seconds.
    let started = Instant::now();
    let out = pgxc(&["degrade", &inv, "pg1_standby"]);
    assert!(out.status.success(), "degrade: {}", shown(&out));
    let mut first = None;
    while first.is_none() && started.elapsed() < Duration::from_secs(10) {
        if write_on_pg1(1000).1 {
            first = Some(started.elapsed());
        }
    }
    let first = first.expect("a write within 10 s of degrade");
    eprintln!("degrade: {}first write on pg1 {first:?} after degrade started", text(&out.stdout));
    assert!(first < Duration::from_secs(5), "{first:?}");
    let said = text(&out.stdout);
    assert!(said.contains("pg1 on h1: update synchronous_standby.conf"), "{said}");
    assert!(said.contains("pg1 on h1: await: commits no longer wait for pg1_standby"), "{said}");
    let file =
        std::fs::read_to_string(format!("{}/synchronous_standby.conf", data(1, "pg1"))).unwrap();
    assert!(file.contains("synchronous_standby_names = ''  # off until pg1_standby streams"));
    let (code, rows) = status(&inv);
    assert_eq!(code, 1, "the standby is still down");
    assert_eq!(rows["pg1"]["healthy"], true, "{}", rows["pg1"]);
    assert_eq!(rows["pg1"]["drift"], serde_json::json!(["synchronous_standby.conf (degraded)"]));

    // Again: nothing to write.
    let out = pgxc(&["degrade", &inv, "pg1"]);
    assert!(out.status.success(), "{}", shown(&out));
    assert!(text(&out.stdout).contains("already off until pg1_standby streams"), "{}", shown(&out));
    assert!(!text(&out.stdout).contains("update synchronous_standby.conf"), "{}", shown(&out));

    // The standby back, then apply: synchronous again.
    let out = pgxc(&["start", &inv, "--on", "pg1_standby"]);
    assert!(out.status.success(), "start: {}", shown(&out));
    let out = pgxc(&["apply", &inv]);
    assert!(out.status.success(), "apply: {}", shown(&out));
    let said = text(&out.stderr);
    assert!(said.contains("pg1 on h1: update synchronous_standby.conf"), "{said}");
    assert!(said.contains("pg1 on h1: reload (synchronous_standby.conf)"), "{said}");
    assert_eq!(on_pg1(sync_state), "sync");
    let (code, rows) = status(&inv);
    assert_eq!(code, 0, "{rows:#?}");
    assert_eq!(rows["pg1"]["drift"], serde_json::json!([]));
    assert!(write_on_pg1(5000).1);

    reset(TAG);
}

/// apply never lowers durability: with pg1's synchronous standby down and unable to start (its
/// port taken), apply fails at the standby's start and leaves pg1 synchronous (commits still
/// wait); once the standby can start, apply starts it and commits go through. Its own
/// directory (`synckeep`) and ports (38862, 38863; 35432 is tests/gtm.rs's).
#[test]
fn apply_keeps_a_primary_synchronous_while_its_standby_cannot_start() {
    let tag = "synckeep";
    let (primary, standby) = (38862, 38863);
    reset(tag);
    let dir = tempdir();
    let inv = write(dir.path(), "keep.toml", &pair_toml(tag, (primary, standby), true, ""));
    let out = pgxc(&["apply", &inv]);
    assert!(out.status.success(), "apply: {}", shown(&out));
    let pg1 = node_dir(tag, 1, "pg1");
    let on_pg1 = |q: &str| sql(&lab_psql(tag), &pg1, primary, q);
    on_pg1("create table t (x int)");

    let pid = postmaster_pid(&node_dir(tag, 2, "pg1_standby"));
    kill("-KILL", pid);
    wait_for("the standby's postmaster to die", || process_gone(pid));
    let taken = std::net::TcpListener::bind(("127.0.10.2", standby)).expect("take the port");
    let out = pgxc(&["apply", &inv]);
    assert_eq!(out.status.code(), Some(1), "{}", shown(&out));
    assert!(text(&out.stderr).contains("pg1_standby on h2: start"), "{}", shown(&out));
    assert_eq!(on_pg1("show synchronous_standby_names"), "pg1_standby", "{}", shown(&out));
    let write = || {
        let out = psql_out(&lab_psql(tag), &pg1, primary, "insert into t values (1)", Some("2"));
        out.status.success()
    };
    assert!(!write(), "a commit waits for the synchronous standby");

    drop(taken);
    let out = pgxc(&["apply", &inv]);
    assert!(out.status.success(), "apply: {}", shown(&out));
    assert!(write(), "a commit once the standby streams again");
    reset(tag);
}

/// Failover never silently loses acknowledged commits (issue 10). A synchronous pair: the
/// standby dies, `degrade` lets commits through without it, 2,000 are acknowledged, the primary
/// dies, the standby comes back: failover refuses it, saying since when and from which WAL
/// position it is behind, and promotes it only with `--accept-data-loss`. Then an asynchronous
/// pair whose standby stopped streaming (seen by status) while its primary wrote over 1 MB:
/// refused the same way. Its own directory (`syncloss`) and ports (38832, 38833, 38842, 38843;
/// 36432 clashed with tests/gtm.rs's gtmdirect coordinators when both ran at once).
#[test]
fn failover_refuses_a_standby_that_may_lack_acknowledged_commits_unless_told_to_accept_it() {
    let tag = "syncloss";
    let (primary, standby) = (38832, 38833);
    reset(tag);
    let dir = tempdir();
    let pg2 = "\n[[datanodes]]\nname = \"pg2\"\nhost = \"h3\"\nport = 38842\n\
               [datanodes.standby]\nhost = \"h1\"\nport = 38843\n";
    let inv = write(dir.path(), "loss.toml", &pair_toml(tag, (primary, standby), true, pg2));
    let out = pgxc(&["apply", &inv]);
    assert!(out.status.success(), "apply: {}", shown(&out));
    let (pg1, pg1_standby) = (node_dir(tag, 1, "pg1"), node_dir(tag, 2, "pg1_standby"));
    let on = |dir: &str, port: u16, q: &str| sql(&lab_psql(tag), dir, port, q);
    on(&pg1, primary, "create table t (x int)");
    on(&pg1, primary, "insert into t select generate_series(1, 100)");
    let record = dir.path().join("loss.replication.toml");
    wait_for("the standby to replay the 100 rows", || {
        on(&pg1_standby, standby, "select count(*) from t") == "100"
    });

    // The synchronous standby dies and is degraded away; 2,000 commits are acknowledged.
    let pid = postmaster_pid(&pg1_standby);
    kill("-KILL", pid);
    wait_for("the standby's postmaster to die", || process_gone(pid));
    let out = pgxc(&["degrade", &inv, "pg1"]);
    assert!(out.status.success(), "degrade: {}", shown(&out));
    let kept = std::fs::read_to_string(&record).unwrap();
    assert!(kept.contains("asynchronous_since_unix"), "{kept}");
    for i in 0..20 {
        let insert = format!("insert into t select generate_series({}, {})", i * 100, i * 100 + 99);
        on(&pg1, primary, &insert);
    }
    assert_eq!(on(&pg1, primary, "select count(*) from t"), "2100");
    let pid = postmaster_pid(&pg1);
    kill("-KILL", pid);
    wait_for("pg1's postmaster to die", || process_gone(pid));
    let out = pgxc(&["start", &inv, "--on", "pg1_standby"]);
    assert!(out.status.success(), "start: {}", shown(&out));

    let out = pgxc(&["failover", "--yes", &inv, "pg1"]);
    assert_eq!(out.status.code(), Some(1), "{}", shown(&out));
    let said = text(&out.stdout);
    eprintln!("failover after degrade, refused: {said}");
    for want in [
        "refusing to promote pg1_standby on h2: pg1 has not replicated synchronously to \
         pg1_standby since ",
        "(from WAL position ",
        "pg1_standby has WAL up to ",
        "how much it wrote since is unknown",
        "Nothing was changed",
        "--accept-data-loss",
    ] {
        assert!(said.contains(want), "{want}: {said}");
    }
    assert!(!dir.path().join("loss.roles.toml").exists(), "nothing recorded: {said}");
    assert_eq!(on(&pg1_standby, standby, "select pg_is_in_recovery()"), "t");

    let out = pgxc(&["failover", "--yes", &inv, "pg1", "--accept-data-loss"]);
    assert!(out.status.success(), "failover: {}", shown(&out));
    let said = text(&out.stdout);
    assert!(said.contains("(accepted with --accept-data-loss)"), "{said}");
    assert!(said.contains("pg1_standby on h2 (127.0.10.2:38833) is the primary"), "{said}");
    // The loss it stated is real: the 2,000 rows committed without the standby are gone.
    assert_eq!(on(&pg1_standby, standby, "select count(*) from t"), "100");

    // pg2, asynchronous: its standby stops streaming, status sees it, pg2 writes ~4 MB of WAL.
    let (pg2, pg2_standby) = (node_dir(tag, 3, "pg2"), node_dir(tag, 1, "pg2_standby"));
    let pid = postmaster_pid(&pg2_standby);
    kill("-KILL", pid);
    wait_for("pg2's standby to die", || process_gone(pid));
    on(&pg2, 38842, "create table big as select generate_series(1, 100000) as x");
    let _ = pgxc(&["status", &inv]);
    let kept = std::fs::read_to_string(&record).unwrap();
    assert!(kept.contains("[datanodes.pg2]\nprimary = \"pg2\""), "{kept}");
    let pid = postmaster_pid(&pg2);
    kill("-KILL", pid);
    wait_for("pg2's postmaster to die", || process_gone(pid));
    let out = pgxc(&["start", &inv, "--on", "pg2_standby"]);
    assert!(out.status.success(), "start: {}", shown(&out));
    let out = pgxc(&["failover", "--yes", &inv, "pg2"]);
    assert_eq!(out.status.code(), Some(1), "{}", shown(&out));
    let said = text(&out.stdout);
    eprintln!("failover of an asynchronous standby that had stopped streaming: {said}");
    assert!(said.contains("pg2_standby is an asynchronous standby"), "{said}");
    assert!(said.contains("pg2_standby was not streaming when last seen"), "{said}");
    assert!(said.contains("more than maximum_lag_on_failover (1048576)"), "{said}");
    let out = pgxc(&["failover", "--yes", &inv, "pg2", "--accept-data-loss"]);
    assert!(out.status.success(), "failover: {}", shown(&out));
    let none = psql_out(&lab_psql(tag), &pg2_standby, 38843, "select count(*) from big", None);
    assert!(!none.status.success(), "the table pg2 wrote alone is lost, as stated");
    reset(tag);
}

/// A full disk is named as the cause (issue 10): pg1_standby's host h2 keeps its data on a
/// 200 MB tmpfs; once it is full, the standby cannot take pg1's WAL, and status says so on both
/// rows (pg1's commits wait for a standby whose disk is full), not only that it does not
/// stream. Freed again, the standby streams and commits go through. Its own directory
/// (`diskfull`) and ports (38852, 38853; 37432 is tests/coordinator.rs's).
#[test]
fn status_names_a_full_disk_as_the_cause() {
    let tag = "diskfull";
    let (primary, standby) = (38852, 38853);
    let mount = format!("{LAB_DIR}/hosts/h2/data/{tag}");
    let unmount = |mount: &str| {
        if std::fs::read_to_string("/proc/mounts").unwrap().contains(&format!(" {mount} ")) {
            stop_servers(mount, false);
            let out = std::process::Command::new("umount").arg(mount).output().unwrap();
            assert!(out.status.success(), "umount {mount}: {}", text(&out.stderr));
        }
    };
    lab();
    unmount(&mount);
    reset(tag);
    std::fs::create_dir_all(&mount).unwrap();
    let out = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=200m,mode=0755,uid=1001,gid=1001", "tmpfs", &mount])
        .output()
        .unwrap();
    assert!(out.status.success(), "mount a tmpfs at {mount}: {}", text(&out.stderr));
    let dir = tempdir();
    let inv = write(dir.path(), "full.toml", &pair_toml(tag, (primary, standby), true, ""));
    let out = pgxc(&["apply", &inv]);
    assert!(out.status.success(), "apply: {}", shown(&out));
    let pg1 = node_dir(tag, 1, "pg1");
    let on_pg1 = |q: &str, secs: Option<&str>| psql_out(&lab_psql(tag), &pg1, primary, q, secs);
    assert!(on_pg1("create table t (x int)", None).status.success());

    // Fill h2's disk, then write more WAL than a segment: the standby needs a new one.
    let fill = format!("{mount}/fill");
    let _ = std::process::Command::new("dd")
        .args(["if=/dev/zero", &format!("of={fill}"), "bs=1M"])
        .output()
        .unwrap();
    let _ = on_pg1("insert into t select generate_series(1, 600000)", Some("20"));
    let (code, rows) = wait_status(&inv, |rows| {
        rows["pg1"]["problems"].to_string().contains("no space left on device")
    });
    assert_eq!(code, 1, "{rows:#?}");
    let pg1_row = rows["pg1"]["problems"].to_string();
    assert!(
        pg1_row.contains(
            "commits wait for the synchronous standby pg1_standby, which is not \
                          streaming (pg1_standby on h2: no space left on device: "
        ),
        "{pg1_row}"
    );
    let standby_row = rows["pg1_standby"]["problems"].to_string();
    assert!(standby_row.contains("no space left on device"), "{standby_row}");
    assert!(standby_row.contains("free space on h2"), "{standby_row}");
    eprintln!("status with h2's disk full: pg1: {pg1_row}\n  pg1_standby: {standby_row}");

    // Freed: the standby streams again (started again if it stopped), commits go through.
    std::fs::remove_file(&fill).unwrap();
    let out = pgxc(&["apply", &inv]);
    assert!(out.status.success(), "apply after freeing the disk: {}", shown(&out));
    assert!(on_pg1("insert into t values (1)", Some("10")).status.success());
    let out = pgxc(&["clean", &inv, "--yes"]);
    assert!(out.status.success(), "clean: {}", shown(&out));
    unmount(&mount);
    reset(tag);
}

/// status --json rows by node, polled until `done` says so (or 30 s went by).
fn wait_status(
    inv: &str,
    done: impl Fn(&BTreeMap<String, serde_json::Value>) -> bool,
) -> (i32, BTreeMap<String, serde_json::Value>) {
    let started = Instant::now();
    loop {
        let (code, rows) = status(inv);
        if done(&rows) || started.elapsed() > Duration::from_secs(30) {
            return (code, rows);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}
