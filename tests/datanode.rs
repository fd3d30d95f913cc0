//! Growing and shrinking a running Postgres-XC cluster (needs `PGXC_HOME`, an installed
//! Postgres-XC / Postgres-X2): GTM, two coordinators and three datanodes over three lab hosts,
//! tables of every distribution with 1000 rows each. A fourth datanode added to the inventory:
//! `apply` copies the catalog into it, registers it, spreads every table over it (killed
//! with SIGKILL in the middle, the next apply finishes), keeping every row, and clones its
//! standby. Then it is marked `state = "removed"`, and so is dn1, one of the first three: apply
//! moves their rows to the others, drops them from both coordinators and stops them (and the
//! standby); a table only on dn1 is refused first. Tag `dngrow`, ports 34xxx.

use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

const TAG: &str = "dngrow";
const COORD: u16 = 34432;

/// `datanodes` datanodes, those in `removed` marked `state = "removed"`.
fn inventory(dir: &Path, datanodes: usize, removed: &[usize]) -> String {
    let mut nodes = "[gtm]\nhost = \"h3\"\nport = 34666\n\n".to_string();
    for k in 1..=2 {
        nodes.push_str(&format!(
            "[[coordinators]]\nname = \"coord{k}\"\nhost = \"h{k}\"\nport = {COORD}\n\
             pooler_port = {}\n\n",
            34450 + k
        ));
    }
    for k in 1..=datanodes {
        let state = if removed.contains(&k) { "state = \"removed\"\n" } else { "" };
        // dn1-dn3 on h1-h3; the added dn4 on h1 with a standby, cloned by the apply that adds it.
        let (host, port) = if k == 4 { (1, 34444) } else { (k, 34442) };
        let standby =
            if k == 4 { "[datanodes.standby]\nhost = \"h2\"\nport = 34445\n" } else { "" };
        nodes.push_str(&format!(
            "[[datanodes]]\nname = \"dn{k}\"\nhost = \"h{host}\"\nport = {port}\n{state}{standby}\n"
        ));
    }
    write(dir, "grow.toml", &xc_toml(TAG, &pgxc_home(), "method = \"trust\"", &nodes))
}

/// `query` through coordinator `k`; its output, trimmed.
fn through(k: usize, query: &str) -> String {
    let out = psql_out(&lab_psql(TAG), &node_dir(TAG, k, &format!("coord{k}")), COORD, query, None);
    assert!(out.status.success(), "coord{k}: {query}: {}", text(&out.stderr));
    text(&out.stdout).trim().to_string()
}

/// The datanodes pgxc_class lists for `table`, through coordinator `k`.
fn nodes_of(k: usize, table: &str) -> String {
    through(
        k,
        &format!(
            "select string_agg(p.node_name::text, ',' order by p.node_name) from pgxc_class x \
             join pgxc_node p on p.oid = any(x.nodeoids) where x.pcrelid = '{table}'::regclass"
        ),
    )
}

/// Tables: name, how they are distributed.
const TABLES: [(&str, &str); 5] = [
    ("s1.h", "distribute by hash(id)"),
    ("m", "distribute by modulo(id)"),
    ("rr", "distribute by roundrobin"),
    ("r", "distribute by replication"),
    ("only1", "to node (dn1)"),
];

/// More hash tables, so that the redistribution lasts long enough to be killed in the middle.
const MORE: usize = 12;

/// `pgxc-deploy apply INV` killed with SIGKILL once its stderr (a file in `dir`) shows the
/// third redistribution phase; what it printed.
fn apply_killed_while_redistributing(dir: &Path, inv: &str) -> String {
    let path = dir.join("killed.err");
    let mut apply = Command::new(bin())
        .args(["apply", inv])
        .env_remove("SSH_AUTH_SOCK")
        .stdout(Stdio::null())
        .stderr(Stdio::from(File::create(&path).unwrap()))
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        let said = std::fs::read_to_string(&path).unwrap_or_default();
        if said.contains("== redistribute (3/") {
            apply.kill().unwrap();
            apply.wait().unwrap();
            return said;
        }
        if let Some(status) = apply.try_wait().unwrap() {
            panic!("apply ended ({status}) before its third redistribution phase:\n{said}");
        }
        assert!(start.elapsed() < Duration::from_secs(300), "apply hangs:\n{said}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn postgres_xc_apply_adds_and_removes_datanodes_keeping_every_row() {
    reset(TAG);
    let dir = tempdir();
    let out = pgxc(&["apply", &inventory(dir.path(), 3, &[])]);
    assert!(out.status.success(), "apply: {}", shown(&out));
    through(1, "create schema s1");
    let more: Vec<(String, &str)> =
        (1..=MORE).map(|i| (format!("more{i}"), "distribute by hash(id)")).collect();
    let all = TABLES.iter().map(|(t, how)| (t.to_string(), *how)).chain(more.iter().cloned());
    let all: Vec<(String, &str)> = all.collect();
    for (table, how) in &all {
        through(1, &format!("create table {table} (id int, v text) {how}"));
        through(
            1,
            &format!("insert into {table} select g, 'row ' || g from generate_series(1, 1000) g"),
        );
    }

    let inv = inventory(dir.path(), 4, &[]);
    let out = pgxc(&["plan", &inv]);
    assert!(out.status.success(), "plan: {}", shown(&out));
    let plan = text(&out.stdout);
    assert!(plan.contains("dn4 on h1: join: catalog from dn1"), "{plan}");
    for table in ["s1.h", "public.m", "public.rr", "public.r"] {
        let line = plan.lines().find(|l| l.contains(&format!("redistribute {table} (")));
        let line = line.unwrap_or_else(|| panic!("no step for {table}: {plan}"));
        assert!(line.ends_with("B): ADD NODE (dn4), row count and spread checked"), "{line}");
    }
    assert!(!plan.contains("public.only1"), "a table placed on dn1 only stays there: {plan}");

    // A backup holds the DDL lock: the join fails at once and dn4 stays initialised, not
    // joined; the next apply joins it (rather than starting it with an empty catalog).
    let coord1 = node_dir(TAG, 1, "coord1");
    let hold = "select pgxc_lock_for_backup(); select pg_sleep(12)";
    let holder = std::thread::spawn(move || psql_out(&lab_psql(TAG), &coord1, COORD, hold, None));
    std::thread::sleep(Duration::from_secs(2));
    let out = pgxc(&["apply", &inv]);
    assert_eq!(out.status.code(), Some(1), "{}", shown(&out));
    assert!(text(&out.stderr).contains("lock is already held"), "{}", shown(&out));
    let held = holder.join().unwrap();
    assert!(held.status.success(), "{}", text(&held.stderr));
    let out = pgxc(&["plan", &inv]);
    let plan = text(&out.stdout);
    assert!(plan.contains("dn4 on h1: join: catalog from dn1"), "{plan}");
    assert!(!plan.contains("dn4 on h1: initialise"), "{plan}");

    // Killed in the middle of the redistribution; the next apply finishes it.
    let killed = apply_killed_while_redistributing(dir.path(), &inv);
    assert!(killed.contains("redistribute (1/"), "{killed}");
    let out = pgxc(&["apply", &inv]);
    assert!(out.status.success(), "apply after the kill: {}", shown(&out));
    let resumed = text(&out.stderr);
    assert!(resumed.contains("== redistribute (1/"), "resumed: {resumed}");
    assert!(!resumed.contains("== join the running cluster"), "joined once: {resumed}");
    assert!(killed.contains("== join the running cluster"), "joined then: {killed}");
    assert!(resumed.contains("== redistribution done"), "{resumed}");

    // Every row kept, through both coordinators; pgxc_class lists dn4; rows on dn4.
    let on = |node: &str, table: &str| {
        through(1, &format!("execute direct on ({node}) 'select count(*) from {table}'"))
    };
    for (table, _) in &all {
        let table = table.as_str();
        for k in 1..=2 {
            assert_eq!(through(k, &format!("select count(*) from {table}")), "1000", "{table}");
        }
        let nodes = nodes_of(2, table);
        let (want_nodes, on_dn4) = match table {
            "only1" => ("dn1", 0),
            "r" => ("dn1,dn2,dn3,dn4", 1000),
            _ => ("dn1,dn2,dn3,dn4", -1),
        };
        assert_eq!(nodes, want_nodes, "{table}");
        let rows: i64 = on("dn4", table).parse().unwrap();
        match on_dn4 {
            -1 => assert!(rows > 100 && rows < 500, "{table}: {rows} rows on dn4"),
            n => assert_eq!(rows, n, "{table}"),
        }
    }
    // Its standby, cloned by the same apply, streams (status checks it).
    let (code, rows) = status(&inv);
    assert_eq!(code, 0, "{rows:?}");
    assert_eq!(rows["dn4_standby"]["role"], "standby", "{rows:?}");
    // The new datanode has the catalog: a new table spreads over it; the re-apply is a no-op.
    through(2, "create table after_grow (id int) distribute by hash(id)");
    through(2, "insert into after_grow select generate_series(1, 300)");
    let rows: i64 = on("dn4", "after_grow").parse().unwrap();
    assert!(rows > 0, "after_grow on dn4: {rows}");
    let out = pgxc(&["apply", &inv]);
    assert!(text(&out.stdout).starts_with("nothing to do"), "{}", shown(&out));

    // Its entry deleted: refused, nothing changed (its rows would be stranded).
    let out = pgxc(&["apply", &inventory(dir.path(), 3, &[])]);
    assert!(!out.status.success(), "{}", shown(&out));
    assert!(
        text(&out.stderr).contains("datanode dn4 is registered on coord1 but the inventory"),
        "{}",
        shown(&out)
    );
    assert_eq!(nodes_of(1, "public.m"), "dn1,dn2,dn3,dn4");

    // Marked removed: its rows move to dn1-dn3, both coordinators drop it, it stops.
    let shrink = |removed: &[usize]| inventory(dir.path(), 4, removed);
    let out = pgxc(&["plan", &shrink(&[4])]);
    let plan = text(&out.stdout);
    assert!(plan.contains("DELETE NODE (dn4), row count and spread checked"), "{}", shown(&out));
    let out = pgxc(&["apply", &shrink(&[4])]);
    assert!(out.status.success(), "apply: {}", shown(&out));
    let pgxc_node = "select string_agg(node_name::text, ',' order by node_name) from pgxc_node";
    for k in 1..=2 {
        assert_eq!(through(k, pgxc_node), "coord1,coord2,dn1,dn2,dn3", "coord{k}");
    }
    for (k, node) in [(1, "dn4"), (2, "dn4_standby")] {
        let running = processes_in(&node_dir(TAG, k, node));
        assert!(running.is_empty(), "{node} still runs: {running:?}");
    }
    let after_grow = ("after_grow".to_string(), "");
    for (table, _) in all.iter().chain([&after_grow]) {
        let rows = if table == "after_grow" { "300" } else { "1000" };
        for k in 1..=2 {
            assert_eq!(through(k, &format!("select count(*) from {table}")), rows, "{table}");
        }
        let nodes = if table == "only1" { "dn1" } else { "dn1,dn2,dn3" };
        assert_eq!(nodes_of(1, table), nodes, "{table}");
    }
    let out = pgxc(&["apply", &shrink(&[4])]);
    assert!(text(&out.stdout).starts_with("nothing to do"), "{}", shown(&out));
    let out = pgxc(&["status", &shrink(&[4])]);
    assert!(out.status.success(), "status: {}", shown(&out));

    // dn1, one of the first datanodes: refused while a table is only on it.
    let out = pgxc(&["apply", &shrink(&[1, 4])]);
    assert!(!out.status.success(), "{}", shown(&out));
    assert!(text(&out.stderr).contains("table public.only1 is only on dn1"), "{}", shown(&out));
    assert_eq!(nodes_of(1, "public.m"), "dn1,dn2,dn3", "nothing changed");
    through(1, "drop table only1");
    let out = pgxc(&["apply", &shrink(&[1, 4])]);
    assert!(out.status.success(), "apply: {}", shown(&out));
    for (table, _) in all.iter().filter(|(t, _)| t != "only1") {
        for k in 1..=2 {
            assert_eq!(through(k, &format!("select count(*) from {table}")), "1000", "{table}");
        }
        assert_eq!(nodes_of(2, table), "dn2,dn3", "{table}");
    }
    for k in 1..=2 {
        assert_eq!(through(k, pgxc_node), "coord1,coord2,dn2,dn3", "coord{k}");
        // DDL and DML through every coordinator.
        through(k, &format!("create table after_shrink{k} (id int) distribute by hash(id)"));
        through(k, &format!("insert into after_shrink{k} select generate_series(1, 10)"));
        assert_eq!(through(3 - k, &format!("select count(*) from after_shrink{k}")), "10");
    }
    let out = pgxc(&["apply", &shrink(&[1, 4])]);
    assert!(text(&out.stdout).starts_with("nothing to do"), "{}", shown(&out));
    reset(TAG);
}

const PAIR_TAG: &str = "pgpair";

/// The PostgreSQL flavor's equivalent: a second primary/standby pair added beside a running
/// one, then marked `state = "removed"`: it and its standby stop, the first pair is never
/// touched, every other command leaves the removed pair out, and the re-apply is a no-op.
/// Tag `pgpair`, ports 3454x and 3455x.
#[test]
fn postgresql_apply_adds_a_primary_standby_pair_and_removes_it() {
    reset(PAIR_TAG);
    let dir = tempdir();
    let second = |state: &str| {
        format!(
            "\n[[datanodes]]\nname = \"pg2\"\nhost = \"h2\"\nport = 34552\n{state}\
             [datanodes.standby]\nhost = \"h3\"\nport = 34553\n"
        )
    };
    let inv = |more: &str| {
        write(dir.path(), "pair.toml", &pair_toml(PAIR_TAG, (34542, 34543), false, more))
    };
    let out = pgxc(&["apply", &inv("")]);
    assert!(out.status.success(), "apply: {}", shown(&out));
    let root = |k: usize| format!("{LAB_DIR}/hosts/h{k}/data/{PAIR_TAG}");
    let psql = find_ctl(&root(1), "psql");
    let pg1 = format!("{}/pg1", root(1));
    sql(&psql, &pg1, 34542, "create table t as select generate_series(1, 100) g");
    let pid = postmaster_pid(&pg1);

    let out = pgxc(&["apply", &inv(&second(""))]);
    assert!(out.status.success(), "apply with pg2: {}", shown(&out));
    let (code, rows) = status(&inv(&second("")));
    assert_eq!(code, 0, "{rows:?}");
    assert!(rows.contains_key("pg2") && rows.contains_key("pg2_standby"), "{rows:?}");
    let pg2 = format!("{}/pg2", root(2));
    let standby = format!("{}/pg2_standby", root(3));
    assert!(!processes_in(&pg2).is_empty() && !processes_in(&standby).is_empty());

    let removed = inv(&second("state = \"removed\"\n"));
    let out = pgxc(&["plan", &removed]);
    let plan = text(&out.stdout);
    assert!(plan.contains("== stop removed datanodes (2 steps)"), "{}", shown(&out));
    let out = pgxc(&["apply", &removed]);
    assert!(out.status.success(), "apply with pg2 removed: {}", shown(&out));
    assert!(processes_in(&pg2).is_empty(), "pg2 still runs");
    assert!(processes_in(&standby).is_empty(), "pg2_standby still runs");
    assert!(Path::new(&format!("{pg2}/PG_VERSION")).exists(), "its directory stays for clean");
    assert_eq!(postmaster_pid(&pg1), pid, "pg1 was not restarted");
    assert_eq!(sql(&psql, &pg1, 34542, "select count(*) from t"), "100");
    let (code, rows) = status(&removed);
    assert_eq!(code, 0, "{rows:?}");
    assert!(!rows.contains_key("pg2") && rows.contains_key("pg1_standby"), "{rows:?}");
    let out = pgxc(&["apply", &removed]);
    assert!(text(&out.stdout).starts_with("nothing to do"), "{}", shown(&out));
    reset(PAIR_TAG);
}
