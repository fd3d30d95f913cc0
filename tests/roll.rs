//! `restart --rolling` under a continuous write load, on clusters that `apply` deploys on lab
//! hosts: the PostgreSQL flavor (three primaries with a standby each, pg2's synchronous; tag
//! `rolltest`, ports 29432/29433) always, and the Postgres-XC flavor (GTM, two coordinators,
//! three datanodes with standbys; tag `rollxc`, ports 29532-29668) from `PGXC_HOME` (required).
//! Every row whose INSERT returned success must be there afterwards, every rolled node must
//! have a new postmaster start time, and a node that cannot come back stops the roll.
//!
//! `--switchover` (tags `sroll`, ports 33432-33434, and `srollxc`, ports 33532-33668): each
//! datanode is handed over to its restarted standby while clients write to it (PostgreSQL:
//! libpq's `target_session_attrs=read-write` over both servers; Postgres-XC: through the
//! coordinators), the old primaries stream from the new ones, a datanode without a standby
//! restarts in place; rolled again, it switches back; `--switch-back` ends as it started.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use crate::support::*;

const TAG: &str = "rolltest";
const PORTS: (u16, u16) = (29432, 29433);

/// Start times by node, from `status --json`.
fn start_times(inv: &str) -> BTreeMap<String, String> {
    let (_, rows) = status(inv);
    rows.iter()
        .filter_map(|(n, r)| Some((n.clone(), r["start_time"].as_str()?.to_string())))
        .collect()
}

#[test]
fn rolling_restart_of_a_postgresql_cluster_under_write_load() {
    reset(TAG);
    let dir = tempdir();
    let inv = cluster_inventory(dir.path(), "roll.toml", TAG, PORTS, "");
    let data = |k: usize, node: &str| node_dir(TAG, k, node);
    let out = pgxc(&["apply", &inv]);
    assert!(out.status.success(), "apply: {}", shown(&out));
    let psql = lab_psql(TAG);
    let on_primary = |k: usize, q: &str| sql(&psql, &data(k, &format!("pg{k}")), PORTS.0, q);
    for k in 1..=3 {
        on_primary(k, "create table roll (id bigint primary key)");
    }

    // --on restricts the roll: only pg1_standby restarts.
    let before = start_times(&inv);
    assert_eq!(before.len(), 6);
    let out = pgxc(&["restart", &inv, "--rolling", "--on", "pg1_standby"]);
    assert!(out.status.success(), "{}", shown(&out));
    let said = text(&out.stdout);
    assert!(said.contains("== restart standbys\n  ok    restarted pg1_standby on h2 ("), "{said}");
    assert!(said.contains(", down "), "{said}");
    assert!(said.contains("rolled 1 nodes"), "{said}");
    let after = start_times(&inv);
    for (node, t) in &before {
        assert_eq!(after[node] != *t, node == "pg1_standby", "{node}: {t} -> {}", after[node]);
    }

    // The whole cluster under a write load on every primary: standbys first, then primaries,
    // every node back with a new start time, every committed row there.
    let before = after;
    let addresses: Vec<(String, u16)> =
        (1..=3).map(|k| (format!("127.0.10.{k}"), PORTS.0)).collect();
    let targets: Vec<(&str, u16)> = addresses.iter().map(|(a, p)| (a.as_str(), *p)).collect();
    let load = Load::start(&format!("{PG_PREBUILT}/bin/psql"), &targets, &[]);
    std::thread::sleep(Duration::from_secs(1));
    let out = pgxc(&["restart", &inv, "--rolling"]);
    std::thread::sleep(Duration::from_secs(1));
    let written = load.finish();
    assert!(out.status.success(), "{}", shown(&out));
    let said = text(&out.stdout);
    eprintln!("{said}");
    let order: Vec<&str> = said
        .lines()
        .filter_map(|l| l.strip_prefix("  ok    restarted "))
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    assert_eq!(order, ["pg1_standby", "pg2_standby", "pg3_standby", "pg1", "pg2", "pg3"], "{said}");
    assert!(said.contains("rolled 6 nodes"), "{said}");
    let after = start_times(&inv);
    for (node, t) in &before {
        assert_ne!(&after[node], t, "{node} was restarted");
    }
    let (code, rows) = status(&inv);
    assert_eq!(code, 0, "healthy after the roll: {rows:#?}");
    let mut present = BTreeSet::new();
    for k in 1..=3 {
        present.extend(ids(|q| on_primary(k, q)));
    }
    assert_committed_rows_present(&written, &present);

    // A node that cannot come back (its configuration broken) stops the roll, named with its
    // host and why; the nodes after it are left alone.
    let conf = format!("{}/postgresql.conf", data(2, "pg2"));
    let good = std::fs::read_to_string(&conf).unwrap();
    std::fs::write(&conf, format!("{good}\nthis is not a setting\n")).unwrap();
    let before = start_times(&inv);
    let out = pgxc(&["restart", &inv, "--rolling", "--on", "@datanodes"]);
    assert_eq!(out.status.code(), Some(1), "{}", shown(&out));
    let said = text(&out.stdout);
    assert!(said.contains("  ok    restarted pg1 on h1 ("), "{said}");
    assert!(said.contains("  FAIL  pg2 on h2 did not come back ("), "{said}");
    assert!(said.contains("pg2 on h2: restart: exit 1: pg_ctl: could not start server"), "{said}");
    assert!(
        said.contains(&format!("see the server's log on the host: {}", data(2, "pg2"))),
        "{said}"
    );
    assert!(
        said.contains("error: restart: stopped at pg2 on h2 (did not come back); restarted 1; not restarted: pg3 on h3"),
        "{said}"
    );
    assert!(!said.contains("restarted pg3 on h3 ("), "{said}");
    let after = start_times(&inv);
    assert_ne!(after["pg1"], before["pg1"]);
    assert_eq!(after["pg3"], before["pg3"], "pg3 kept running");
    assert_eq!(after["pg3_standby"], before["pg3_standby"]);
    assert!(!after.contains_key("pg2"), "pg2 is down: {after:?}");

    // A roll never starts while a node it would restart is down, and says so.
    let out = pgxc(&["restart", &inv, "--rolling"]);
    assert_eq!(out.status.code(), Some(1), "{}", shown(&out));
    let said = text(&out.stdout);
    assert!(said.contains("refusing to start the roll, nothing was restarted"), "{said}");
    assert!(said.contains("pg2 on h2: it is not running"), "{said}");
    assert_eq!(start_times(&inv)["pg3"], after["pg3"]);

    std::fs::write(&conf, good).unwrap();
    let out = pgxc(&["start", &inv, "--on", "pg2"]);
    assert!(out.status.success(), "{}", shown(&out));
    let out = pgxc(&["restart", &inv, "--on", "pg9", "--rolling"]);
    assert_eq!(out.status.code(), Some(2), "{}", shown(&out));
    let out = pgxc(&["restart", &inv]);
    assert_eq!(out.status.code(), Some(2), "--rolling is required: {}", shown(&out));

    reset(TAG);
}

const XC_TAG: &str = "rollxc";

/// GTM, coord1 (h1) and coord2 (h2) on port `port`, dn1-dn3 on `port + 10` with a standby each
/// on the next host at `port + 11`; the GTM and poolers at `port + 134..=136`.
fn xc_inventory(dir: &Path, pgxc_home: &str, tag: &str, port: u16) -> String {
    let (gtm, pooler1, pooler2) = (port + 134, port + 135, port + 136);
    let mut nodes = format!(
        "[gtm]\nhost = \"h1\"\nport = {gtm}\n\n\
         [[coordinators]]\nname = \"coord1\"\nhost = \"h1\"\nport = {port}\npooler_port = {pooler1}\n\n\
         [[coordinators]]\nname = \"coord2\"\nhost = \"h2\"\nport = {port}\npooler_port = {pooler2}\n\n",
    );
    for (k, standby) in PAIRS {
        nodes.push_str(&format!(
            "[[datanodes]]\nname = \"dn{k}\"\nhost = \"h{k}\"\nport = {}\n\
             [datanodes.standby]\nhost = \"h{standby}\"\nport = {}\n\n",
            port + 10,
            port + 11
        ));
    }
    let text = xc_toml(tag, pgxc_home, "method = \"trust\"", &nodes);
    write(dir, &format!("{tag}.toml"), &text)
}

#[test]
fn rolling_restart_of_a_postgres_xc_cluster_under_write_load_through_coordinators() {
    let pgxc_home = pgxc_home();
    reset(XC_TAG);
    let dir = tempdir();
    let inv = xc_inventory(dir.path(), &pgxc_home, XC_TAG, 29532);
    let data = |k: usize, node: &str| node_dir(XC_TAG, k, node);
    let out = pgxc(&["apply", &inv]);
    assert!(out.status.success(), "apply: {}", shown(&out));
    let psql = lab_psql(XC_TAG);
    let coord1 = |q: &str| sql(&psql, &data(1, "coord1"), 29532, q);
    // One statement per psql: X2 1.3devel mishandles several in one query string.
    coord1("create table roll (id bigint) distribute by hash(id)");

    // The GTM has no start time to read: its PID tells a restart.
    let gtm_pid = || std::fs::read_to_string(format!("{}/gtm.pid", data(1, "gtm"))).unwrap();
    let gtm_before = gtm_pid();
    let before = start_times(&inv);
    assert_eq!(before.len(), 8, "{before:?}");
    let lib = format!("{pgxc_home}/lib");
    let load = Load::start(
        &format!("{pgxc_home}/bin/psql"),
        &[("127.0.10.1", 29532), ("127.0.10.2", 29532)],
        &[("LD_LIBRARY_PATH", &lib)],
    );
    std::thread::sleep(Duration::from_secs(1));
    let out = pgxc(&["restart", &inv, "--rolling"]);
    std::thread::sleep(Duration::from_secs(1));
    let written = load.finish();
    assert!(out.status.success(), "{}", shown(&out));
    let said = text(&out.stdout);
    eprintln!("{said}");
    assert!(said.contains("  skip  gtm on h1: not restarted: a GTM restart interrupts"), "{said}");
    let order: Vec<&str> = said
        .lines()
        .filter_map(|l| l.strip_prefix("  ok    restarted "))
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    assert_eq!(
        order,
        ["dn1_standby", "dn2_standby", "dn3_standby", "dn1", "dn2", "dn3", "coord1", "coord2"],
        "{said}"
    );
    let after = start_times(&inv);
    for (node, t) in &before {
        assert_ne!(&after[node], t, "{node} was restarted");
    }
    assert_eq!(gtm_pid(), gtm_before, "the GTM was left alone");
    let (code, rows) = status(&inv);
    assert_eq!(code, 0, "healthy after the roll: {rows:#?}");
    assert_committed_rows_present(&written, &ids(coord1));

    // The GTM only when named, last, and the cluster takes writes afterwards.
    let out = pgxc(&["restart", &inv, "--rolling", "--on", "gtm,coord2", "--batch", "2"]);
    assert!(out.status.success(), "{}", shown(&out));
    let said = text(&out.stdout);
    assert!(said.contains("== restart coordinators\n  ok    restarted coord2 on h2"), "{said}");
    assert!(said.contains("== restart gtm\n  ok    restarted gtm on h1 ("), "{said}");
    assert_ne!(gtm_pid(), gtm_before, "the GTM was restarted");
    coord1("insert into roll values (1)");
    assert_eq!(
        sql(&psql, &data(2, "coord2"), 29532, "select count(*) from roll where id = 1"),
        "1"
    );

    reset(XC_TAG);
}

const SW_TAG: &str = "sroll";
const SW_PORTS: (u16, u16) = (33432, 33433);
/// The PostgreSQL clusters' datanodes: pgK on hK, its standby on hS.
const PAIRS: [(usize, usize); 3] = [(1, 2), (2, 3), (3, 1)];

/// (old primary, new primary) of each hand-over a roll printed, in order.
fn switched(said: &str) -> Vec<(&str, &str)> {
    said.lines()
        .filter_map(|l| l.strip_prefix("  ok    ")?.split_once(": switched over to "))
        .map(|(old, new)| (old.split(' ').next().unwrap(), new.split(' ').next().unwrap()))
        .collect()
}

/// The nodes a roll restarted in place, in order.
fn restarted(said: &str) -> Vec<&str> {
    said.lines()
        .filter_map(|l| l.strip_prefix("  ok    restarted "))
        .map(|l| l.split(' ').next().unwrap())
        .collect()
}

#[test]
fn switchover_roll_of_a_postgresql_cluster_under_write_load() {
    reset(SW_TAG);
    let dir = tempdir();
    // pg4 has no standby: it restarts in place.
    let pg4 = "[[datanodes]]\nname = \"pg4\"\nhost = \"h1\"\nport = 33434\n";
    let inv = cluster_inventory(dir.path(), "sroll.toml", SW_TAG, SW_PORTS, pg4);
    let data = |k: usize, node: &str| node_dir(SW_TAG, k, node);
    let out = pgxc(&["apply", &inv]);
    assert!(out.status.success(), "apply: {}", shown(&out));
    let psql = lab_psql(SW_TAG);
    let on = |k: usize, node: &str, q: &str| {
        let port = if node.ends_with("_standby") { SW_PORTS.1 } else { SW_PORTS.0 };
        sql(&psql, &data(k, node), port, q)
    };
    for k in 1..=3 {
        on(k, &format!("pg{k}"), "create table roll (id bigint)");
    }

    // A client of each datanode knows both of its servers and writes to whichever takes writes
    // (libpq's target_session_attrs), sending a failed row once more half a second later.
    let connections = PAIRS
        .iter()
        .map(|(k, s)| {
            format!(
                "host=127.0.10.{k},127.0.10.{s} port={},{} user=pgxc dbname=postgres \
                 target_session_attrs=read-write",
                SW_PORTS.0, SW_PORTS.1
            )
        })
        .collect();
    let before = start_times(&inv);
    assert_eq!(before.len(), 7, "{before:?}");
    let psql_bin = format!("{PG_PREBUILT}/bin/psql");
    let load = Load::writers(&psql_bin, connections, &[], Some(Duration::from_millis(500)));
    std::thread::sleep(Duration::from_secs(1));
    let out = pgxc(&["restart", &inv, "--rolling", "--switchover"]);
    std::thread::sleep(Duration::from_secs(1));
    let written = load.finish();
    assert!(out.status.success(), "{}", shown(&out));
    let said = text(&out.stdout);
    eprintln!("{said}");

    // The standbys restart, then each datanode is handed over to its standby; pg4 restarts.
    assert_eq!(restarted(&said), ["pg1_standby", "pg2_standby", "pg3_standby", "pg4"], "{said}");
    assert_eq!(
        switched(&said),
        [("pg1", "pg1_standby"), ("pg2", "pg2_standby"), ("pg3", "pg3_standby")],
        "{said}"
    );
    assert!(
        said.contains("  note  pg4 on h1: restarts in place, no switchover: it has no standby"),
        "{said}"
    );
    assert!(said.contains("rolled 7 nodes"), "{said}");
    assert!(
        said.contains(
            "roles: pg1_standby serves pg1, pg2_standby serves pg2, pg3_standby serves pg3 \
             (recorded in "
        ),
        "{said}"
    );
    let after = start_times(&inv);
    for (node, t) in &before {
        assert_ne!(&after[node], t, "{node} was restarted");
    }
    for (k, s) in PAIRS {
        let (old, new) = (format!("pg{k}"), format!("pg{k}_standby"));
        assert_eq!(on(s, &new, STREAMING), format!("{old} streaming"));
        assert_eq!(on(k, &old, "select pg_is_in_recovery()"), "t");
    }
    let (code, rows) = status(&inv);
    assert_eq!(code, 0, "healthy after the roll: {rows:#?}");
    assert_eq!(rows["pg1"]["follows"], "pg1_standby");
    let mut present = BTreeSet::new();
    for (k, s) in PAIRS {
        present.extend(ids(|q| on(s, &format!("pg{k}_standby"), q)));
    }
    assert_committed_rows_present(&written, &present);

    // Rolled again, a datanode goes back to the inventory's primary; with --switch-back it
    // goes there and back, ending as it started.
    let out = pgxc(&["restart", &inv, "--rolling", "--switchover", "--on", "pg1,pg1_standby"]);
    assert!(out.status.success(), "{}", shown(&out));
    let said = text(&out.stdout);
    assert_eq!(restarted(&said), ["pg1"], "{said}");
    assert_eq!(switched(&said), [("pg1_standby", "pg1")], "{said}");
    assert_eq!(on(1, "pg1", STREAMING), "pg1_standby streaming");
    let before = start_times(&inv);
    let out = pgxc(&[
        "restart",
        &inv,
        "--rolling",
        "--switchover",
        "--switch-back",
        "--on",
        "pg2_standby",
    ]);
    assert!(out.status.success(), "{}", shown(&out));
    let said = text(&out.stdout);
    assert_eq!(switched(&said), [("pg2_standby", "pg2")], "{said}");
    assert!(said.contains("  ok    pg2 on h2: switched back to pg2_standby on h3 ("), "{said}");
    assert_eq!(on(3, "pg2_standby", STREAMING), "pg2 streaming");
    let after = start_times(&inv);
    for node in ["pg2", "pg2_standby"] {
        assert_ne!(after[node], before[node], "{node} was restarted");
    }
    let roles_file = dir.path().join("sroll.roles.toml");
    let roles = std::fs::read_to_string(&roles_file).unwrap();
    assert!(!roles.contains("[datanodes.pg1]"), "{roles}");
    assert!(roles.contains("[datanodes.pg2]"), "{roles}");
    let (code, rows) = status(&inv);
    assert_eq!(code, 0, "healthy: {rows:#?}");

    // A hand-over that fails in the middle of a roll: pg2_standby, pg2's primary now, cannot
    // start again (a broken postgresql.auto.conf, which apply does not manage) once pg2 took
    // over. The roll stops there, fences it, and leaves pg3's pair and pg4 alone; pg2 takes
    // writes; apply then rebuilds pg2_standby as pg2's standby.
    let auto_conf = format!("{}/postgresql.auto.conf", data(3, "pg2_standby"));
    let good = std::fs::read_to_string(&auto_conf).unwrap();
    std::fs::write(&auto_conf, format!("{good}this is not a setting\n")).unwrap();
    let before = start_times(&inv);
    let out = pgxc(&["restart", &inv, "--rolling", "--switchover", "--on", "@datanodes"]);
    assert_eq!(out.status.code(), Some(1), "{}", shown(&out));
    let said = text(&out.stdout);
    eprintln!("{said}");
    assert_eq!(switched(&said), [("pg1", "pg1_standby")], "{said}");
    assert!(
        said.contains(
            "  FAIL  pg2_standby on h3 (primary of pg2): switchover failed: pg2 is the primary \
             now, but pg2_standby cannot follow it"
        ),
        "{said}"
    );
    assert!(
        said.contains(
            "error: restart: stopped at pg2_standby on h3 (switchover failed); restarted 1; not \
             restarted: pg3_standby on h1, pg4 on h1"
        ),
        "{said}"
    );
    let after = start_times(&inv);
    for node in ["pg3", "pg3_standby", "pg4"] {
        assert_eq!(after[node], before[node], "{node} was left alone");
    }
    assert!(!after.contains_key("pg2_standby"), "fenced: {after:?}");
    on(2, "pg2", "insert into roll values (-2)");
    let roles = std::fs::read_to_string(&roles_file).unwrap();
    assert!(roles.contains("[datanodes.pg2]") && roles.contains("old_primary = \"pg2_standby\""));
    std::fs::write(&auto_conf, good).unwrap();
    let out = pgxc(&["apply", &inv]);
    assert!(out.status.success(), "apply: {}", shown(&out));
    assert_eq!(on(2, "pg2", STREAMING), "pg2_standby streaming");
    assert_eq!(on(3, "pg2_standby", "select count(*) from roll where id = -2"), "1");
    let (code, rows) = status(&inv);
    assert_eq!(code, 0, "healthy: {rows:#?}");
    let roles = std::fs::read_to_string(&roles_file).unwrap();
    assert!(!roles.contains("[datanodes.pg2]"), "pg2 serves itself again: {roles}");

    reset(SW_TAG);
}

const STREAMING: &str =
    "select application_name || ' ' || state from pg_stat_replication order by 1";

const SW_XC_TAG: &str = "srollxc";

#[test]
fn switchover_roll_of_a_postgres_xc_cluster_under_write_load_through_coordinators() {
    let pgxc_home = pgxc_home();
    reset(SW_XC_TAG);
    let dir = tempdir();
    let inv = xc_inventory(dir.path(), &pgxc_home, SW_XC_TAG, 33532);
    let data = |k: usize, node: &str| node_dir(SW_XC_TAG, k, node);
    let out = pgxc(&["apply", &inv]);
    assert!(out.status.success(), "apply: {}", shown(&out));
    let psql = lab_psql(SW_XC_TAG);
    let coord1 = |q: &str| sql(&psql, &data(1, "coord1"), 33532, q);
    coord1("create table roll (id bigint) distribute by hash(id)");
    let pgxc_node = "select node_name || ' ' || node_host || ':' || node_port from pgxc_node \
                     where node_type = 'D' order by 1";
    let deployed = coord1(pgxc_node);

    let before = start_times(&inv);
    assert_eq!(before.len(), 8, "{before:?}");
    let lib = format!("{pgxc_home}/lib");
    let connections = ["127.0.10.1", "127.0.10.2"]
        .iter()
        .map(|a| format!("host={a} port=33532 user=pgxc dbname=postgres"))
        .collect();
    let load = Load::writers(
        &format!("{pgxc_home}/bin/psql"),
        connections,
        &[("LD_LIBRARY_PATH", &lib)],
        Some(Duration::from_millis(500)),
    );
    std::thread::sleep(Duration::from_secs(1));
    let out = pgxc(&["restart", &inv, "--rolling", "--switchover"]);
    std::thread::sleep(Duration::from_secs(1));
    let written = load.finish();
    assert!(out.status.success(), "{}", shown(&out));
    let said = text(&out.stdout);
    eprintln!("{said}");
    assert_eq!(
        restarted(&said),
        ["dn1_standby", "dn2_standby", "dn3_standby", "coord1", "coord2"],
        "{said}"
    );
    assert_eq!(
        switched(&said),
        [("dn1", "dn1_standby"), ("dn2", "dn2_standby"), ("dn3", "dn3_standby")],
        "{said}"
    );

    // Both servers of every datanode restarted, every coordinator points at each datanode's
    // new primary (not only at the last one handed over), the old primaries stream from the
    // new ones, and every committed row is there.
    let after = start_times(&inv);
    for (node, t) in &before {
        assert_ne!(&after[node], t, "{node} was restarted");
    }
    let swapped = "dn1 127.0.10.2:33543\ndn2 127.0.10.3:33543\ndn3 127.0.10.1:33543";
    assert_eq!(coord1(pgxc_node), swapped);
    assert_eq!(sql(&psql, &data(2, "coord2"), 33532, pgxc_node), swapped);
    let replicas = "select application_name || ' ' || state from pg_stat_replication";
    for (k, s) in PAIRS {
        let on_new = sql(&psql, &data(s, &format!("dn{k}_standby")), 33543, replicas);
        assert_eq!(on_new, format!("dn{k} streaming"));
    }
    let (code, rows) = status(&inv);
    assert_eq!(code, 0, "healthy after the roll: {rows:#?}");
    assert_committed_rows_present(&written, &ids(coord1));

    // Rolled again, every datanode goes back to the inventory's primary.
    let out = pgxc(&["restart", &inv, "--rolling", "--switchover"]);
    assert!(out.status.success(), "{}", shown(&out));
    let said = text(&out.stdout);
    assert_eq!(
        switched(&said),
        [("dn1_standby", "dn1"), ("dn2_standby", "dn2"), ("dn3_standby", "dn3")],
        "{said}"
    );
    assert!(!said.contains("roles:"), "back to the inventory's roles: {said}");
    assert_eq!(coord1(pgxc_node), deployed);
    let roles = std::fs::read_to_string(dir.path().join(format!("{SW_XC_TAG}.roles.toml")));
    assert!(!roles.unwrap_or_default().contains("[datanodes."), "roles file emptied");
    for (k, _) in PAIRS {
        let on_dn = sql(&psql, &data(k, &format!("dn{k}")), 33542, replicas);
        assert_eq!(on_dn, format!("dn{k}_standby streaming"));
    }
    let (code, rows) = status(&inv);
    assert_eq!(code, 0, "healthy: {rows:#?}");

    reset(SW_XC_TAG);
}
