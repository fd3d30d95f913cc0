//! Operating a Postgres-XC cluster that apply deployed (needs `PGXC_HOME`, an installed
//! Postgres-XC / Postgres-X2; the test fails without it): GTM, two coordinators and three
//! datanodes with standbys over three lab hosts, md5 between nodes. status, stop and start,
//! then failover of a datanode whose postmaster was killed with SIGKILL (its orphaned backends
//! are fenced too): every row committed before the kill is
//! readable, and writes succeed, through every coordinator. Its own directory (`xcops`) and
//! ports (31xxx).

use std::path::Path;
use std::process::Output;

use crate::support::*;

const TAG: &str = "xcops";
const COORD_PORT: u16 = 31532;
const DN_PORT: u16 = 31542;
const STANDBY_PORT: u16 = 31543;

fn inventory(dir: &Path, pgxc_home: &str) -> String {
    let mut nodes = format!(
        "[gtm]\nhost = \"h1\"\nport = 31666\n\n\
         [[coordinators]]\nname = \"coord1\"\nhost = \"h1\"\nport = {COORD_PORT}\npooler_port = 31667\n\n\
         [[coordinators]]\nname = \"coord2\"\nhost = \"h2\"\nport = {COORD_PORT}\npooler_port = 31668\n\n"
    );
    for (k, standby) in [(1, 2), (2, 3), (3, 1)] {
        nodes.push_str(&format!(
            "[[datanodes]]\nname = \"dn{k}\"\nhost = \"h{k}\"\nport = {DN_PORT}\n\
             [datanodes.standby]\nhost = \"h{standby}\"\nport = {STANDBY_PORT}\n\n"
        ));
    }
    write(dir, "xc-password", "xc ops s3cret\n");
    write(dir, "xc.toml", &xc_toml(TAG, pgxc_home, XC_MD5, &nodes))
}

fn data(k: usize, node: &str) -> String {
    node_dir(TAG, k, node)
}

/// SQL through coordinator `k` (on host hK), one statement (X2's psql runs only the last -c).
fn through(k: usize, query: &str) -> Output {
    let psql = lab_psql(TAG);
    psql_out(&psql, &data(k, &format!("coord{k}")), COORD_PORT, query, None)
}

fn through_ok(k: usize, query: &str) -> String {
    let out = through(k, query);
    assert!(out.status.success(), "coord{k}: {query}: {}", text(&out.stderr));
    text(&out.stdout).trim().to_string()
}

fn shown(out: &Output) -> String {
    format!("stdout:\n{}stderr:\n{}", text(&out.stdout), text(&out.stderr))
}

fn postmaster_pid(data_dir: &str) -> i32 {
    let pid = std::fs::read_to_string(format!("{data_dir}/postmaster.pid")).unwrap();
    pid.lines().next().unwrap().trim().parse().unwrap()
}

#[test]
fn postgres_xc_status_stop_start_and_failover_through_every_coordinator() {
    let pgxc_home = pgxc_home();
    reset(TAG);
    let dir = tempdir();
    let inv = inventory(dir.path(), &pgxc_home);
    let out = pgxc(&["apply", &inv]);
    assert!(out.status.success(), "apply: {}", shown(&out));

    // Healthy: every node running, standbys streaming, both coordinators' pgxc_node right.
    let out = pgxc(&["status", &inv, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    let rows = json_lines(&out.stdout);
    assert_eq!(rows.len(), 9, "gtm, 2 coordinators, 3 datanodes, 3 standbys");
    for row in &rows {
        assert_eq!(row["healthy"], true, "{row}");
    }

    through_ok(1, "create table t (id int) distribute by hash(id)");
    through_ok(1, "insert into t select generate_series(1, 300)");
    assert_eq!(through_ok(2, "select count(*) from t"), "300");

    // stop, then start: everything back in order, the rows still there.
    let out = pgxc(&["stop", &inv]);
    assert!(out.status.success(), "stop: {}", shown(&out));
    assert!(!Path::new(&format!("{}/register.node", data(1, "gtm"))).exists());
    let out = pgxc(&["status", &inv]);
    assert_eq!(out.status.code(), Some(1), "{}", shown(&out));
    // As after a reboot: the PID in a gtm.pid belongs to another program now (gtm_ctl status
    // alone would call the GTM running).
    let impostor = impostor();
    let gtm = data(1, "gtm");
    std::fs::write(format!("{gtm}/gtm.pid"), format!("{impostor}\n{gtm}\n1\n")).unwrap();
    let out = pgxc(&["start", &inv]);
    assert!(out.status.success(), "start: {}", shown(&out));
    assert!(text(&out.stdout).contains("gtm on h1: start"), "{}", shown(&out));
    assert!(!process_gone(impostor), "the other program still runs");
    kill("-KILL", impostor);
    let out = pgxc(&["status", &inv]);
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    wait_for("coord2 to answer", || through(2, "select count(*) from t").status.success());
    assert_eq!(through_ok(2, "select count(*) from t"), "300");

    // dn1 dies: queries through a coordinator fail until failover re-points them.
    wait_for("dn1's standby to replay everything", || {
        let out = pgxc(&["status", &inv, "--json"]);
        json_lines(&out.stdout)
            .iter()
            .any(|r| r["node"] == "dn1_standby" && r["replication"]["lag_bytes"] == 0)
    });
    // dn1's postmaster dies; the backends serving the coordinators' pooled connections outlive
    // it (X2 backends do not watch their postmaster) and could go on committing.
    let pid = postmaster_pid(&data(1, "dn1"));
    kill("-KILL", pid);
    wait_for("dn1's postmaster to die", || process_gone(pid));
    let orphans = processes_in(&data(1, "dn1"));
    eprintln!("dn1's processes left by its postmaster: {orphans:?}");

    let out = pgxc(&["failover", "--yes", &inv, "dn1"]);
    assert!(out.status.success(), "failover: {}", shown(&out));
    eprintln!("failover: {}", text(&out.stdout).lines().last().unwrap_or_default());
    // The fence stopped every one of them before the promote.
    let said = text(&out.stdout);
    assert!(said.contains("dn1 on h1: stop every process left in its data directory"), "{said}");
    if !orphans.is_empty() {
        assert!(said.contains("dn1 on h1: killed "), "{said}");
    }
    assert_eq!(processes_in(&data(1, "dn1")), Vec::<i32>::new(), "{said}");
    // Asynchronous, caught up: promoted, with the risk stated.
    assert!(said.contains("warning: dn1_standby is an asynchronous standby"), "{said}");
    assert!(said.contains("dn1_standby has WAL up to "), "{said}");

    // Every row committed before the kill, and new writes, through every coordinator.
    for k in [1, 2] {
        let node = through_ok(
            k,
            "select node_host || ':' || node_port from pgxc_node where node_name = 'dn1'",
        );
        assert_eq!(node, format!("127.0.10.2:{STANDBY_PORT}"), "coord{k}'s dn1");
        assert_eq!(through_ok(k, "select count(*) from t"), "300", "coord{k}");
    }
    through_ok(1, "insert into t select generate_series(301, 400)");
    through_ok(2, "insert into t select generate_series(401, 500)");
    assert_eq!(through_ok(1, "select count(*) from t"), "500");
    assert_eq!(through_ok(2, "select count(distinct id) from t"), "500");
    let on_dn1 = through_ok(1, "EXECUTE DIRECT ON (dn1) 'select count(*) from t'");
    assert!(on_dn1.parse::<u32>().unwrap() > 0, "dn1 (now its standby) holds rows: {on_dn1}");

    // `dn1` now means its promoted standby, for exec too.
    let out = pgxc(&["exec", &inv, "--on", "dn1", "--", "echo $PGXC_NODE $PGXC_ROLE $PGPORT"]);
    assert!(out.status.success(), "{}", shown(&out));
    assert!(
        text(&out.stdout).contains(&format!("dn1_standby datanode {STANDBY_PORT}")),
        "{}",
        shown(&out)
    );

    let out = pgxc(&["status", &inv, "--json"]);
    let rows = json_lines(&out.stdout);
    let row = |name: &str| rows.iter().find(|r| r["node"] == name).unwrap().clone();
    assert_eq!(row("dn1_standby")["healthy"], true, "{}", row("dn1_standby"));
    assert_eq!(row("coord1")["healthy"], true, "{}", row("coord1"));
    assert_eq!(row("dn1")["fenced"], true);

    // apply rebuilds dn1 as dn1_standby's standby (pg_basebackup: 9.4 has no pg_rewind) and
    // changes nothing the coordinators see; every row is still there.
    let out = pgxc(&["apply", &inv]);
    assert!(out.status.success(), "apply: {}", shown(&out));
    assert!(
        text(&out.stderr).contains("dn1 on h1: copied from the new primary with pg_basebackup"),
        "{}",
        shown(&out)
    );
    assert!(!text(&out.stderr).contains("pgxc_node ="), "{}", shown(&out));
    let out = pgxc(&["status", &inv, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    let rows = json_lines(&out.stdout);
    let row = |name: &str| rows.iter().find(|r| r["node"] == name).unwrap().clone();
    assert_eq!(row("dn1")["follows"], "dn1_standby", "{}", row("dn1"));
    assert_eq!(row("dn1")["replication"]["state"], "streaming", "{}", row("dn1"));
    assert!(rows.iter().all(|r| r["drift"] == serde_json::json!([])), "{rows:#?}");
    through_ok(1, "insert into t select generate_series(501, 600)");
    assert_eq!(through_ok(2, "select count(distinct id) from t"), "600");
    let out = pgxc(&["apply", &inv]);
    assert!(text(&out.stdout).contains("nothing to do"), "{}", shown(&out));

    // dn2's asynchronous standby dies; the coordinators go on writing to dn2 (status sees the
    // standby not streaming), then dn2 dies too and its standby comes back behind: failover
    // refuses it, and promotes it only when told to accept the loss, which is real.
    let pid = postmaster_pid(&data(3, "dn2_standby"));
    kill("-KILL", pid);
    wait_for("dn2's standby to die", || process_gone(pid));
    through_ok(1, "insert into t select generate_series(1001, 61000)");
    let out = pgxc(&["status", &inv]);
    assert_eq!(out.status.code(), Some(1), "{}", shown(&out));
    let pid = postmaster_pid(&data(2, "dn2"));
    kill("-KILL", pid);
    wait_for("dn2's postmaster to die", || process_gone(pid));
    let out = pgxc(&["start", &inv, "--on", "dn2_standby"]);
    assert!(out.status.success(), "start: {}", shown(&out));
    let out = pgxc(&["failover", "--yes", &inv, "dn2"]);
    assert_eq!(out.status.code(), Some(1), "{}", shown(&out));
    let said = text(&out.stdout);
    eprintln!("XC failover of a standby that had stopped streaming: {said}");
    assert!(said.contains("refusing to promote dn2_standby on h3"), "{said}");
    assert!(said.contains("dn2_standby was not streaming when last seen"), "{said}");
    assert!(said.contains("more than maximum_lag_on_failover"), "{said}");
    let out = pgxc(&["failover", "--yes", &inv, "dn2", "--accept-data-loss"]);
    assert!(out.status.success(), "failover: {}", shown(&out));
    assert!(text(&out.stdout).contains("(accepted with --accept-data-loss)"), "{}", shown(&out));
    let count: u32 = through_ok(2, "select count(*) from t").parse().unwrap();
    assert!(count < 60600 && count > 600, "dn2's share of the 60,000 rows is lost: {count}");
    reset(TAG);
}
