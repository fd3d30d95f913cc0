//! `switchover` on a PostgreSQL-flavor cluster that `apply` deploys on lab hosts: pg1 (h1) with
//! a streaming standby (h2). Its own directory (`switchtest`) and ports (30442, 30443).

use std::path::Path;
use std::time::Instant;

use crate::apply::{find_ctl, pg_toml, reset, sql, test_hosts, wait_for};
use crate::ops::{shown, status};
use crate::support::*;

const TAG: &str = "switchtest";
const PRIMARY_PORT: u16 = 30442;
const STANDBY_PORT: u16 = 30443;

fn inventory(dir: &Path) -> String {
    let text = pg_toml(
        TAG,
        "",
        &format!(
            "[[datanodes]]\nname = \"pg1\"\nhost = \"h1\"\nport = {PRIMARY_PORT}\n\
             [datanodes.standby]\nhost = \"h2\"\nport = {STANDBY_PORT}\n"
        ),
    );
    write(dir, "switch.toml", &text)
}

/// SQL on pg1 (h1) or pg1_standby (h2).
fn on(node: &str, query: &str) -> String {
    let (k, port) = if node == "pg1" { (1, PRIMARY_PORT) } else { (2, STANDBY_PORT) };
    let root = format!("{LAB_DIR}/hosts/h{k}/data/{TAG}");
    sql(&find_ctl(&root, "psql"), &format!("{root}/{node}"), port, query)
}

const STREAMING: &str =
    "select application_name || ' ' || state from pg_stat_replication order by 1";

#[test]
fn switchover_loses_nothing_and_the_old_primary_streams_from_the_new_one_then_back() {
    reset(TAG);
    let dir = tempdir();
    let inv = inventory(dir.path());
    let out = pgxc(&["apply", &inv]);
    assert!(out.status.success(), "apply: {}", shown(&out));
    on("pg1", "create table t (id int)");
    on("pg1", "insert into t select generate_series(1, 1000)");

    let started = Instant::now();
    let out = pgxc(&["switchover", &inv, "pg1"]);
    let took = started.elapsed();
    assert!(out.status.success(), "switchover: {}", shown(&out));
    let said = text(&out.stdout);
    eprintln!("switchover ({took:?}):\n{said}");
    assert!(said.contains("pg1 on h1: stop (fast)"), "{said}");
    assert!(
        said.contains("pg1_standby on h2: await: replayed up to pg1's final checkpoint"),
        "{said}"
    );
    assert!(said.contains("pg1_standby on h2: promote"), "{said}");
    assert!(said.contains("pg1_standby on h2: check: it takes writes"), "{said}");
    assert!(said.contains("pg1 on h1: update standby.signal"), "{said}");
    assert!(said.contains("pg1_standby on h2: await: pg1 streams from it"), "{said}");
    assert!(said.contains("pg1_standby on h2 (127.0.10.2:30443) is the primary"), "{said}");

    // Nothing lost, writes accepted, the old primary streams from the new one.
    assert_eq!(on("pg1_standby", "select count(*) from t"), "1000");
    on("pg1_standby", "insert into t values (1001)");
    assert_eq!(on("pg1_standby", STREAMING), "pg1 streaming");
    assert_eq!(on("pg1", "select pg_is_in_recovery()"), "t");
    wait_for("the new row on pg1", || on("pg1", "select count(*) from t") == "1001");

    let roles = std::fs::read_to_string(dir.path().join("switch.roles.toml")).unwrap();
    assert!(roles.contains("primary = \"pg1_standby\"\nold_primary = \"pg1\""), "{roles}");
    assert!(roles.contains("old_primary_follows = true"), "{roles}");
    let (code, rows) = status(&inv);
    assert_eq!(code, 0, "{rows:#?}");
    assert_eq!(rows["pg1_standby"]["promoted_for"], "pg1");
    assert_eq!(rows["pg1_standby"]["in_recovery"], false);
    assert_eq!(rows["pg1"]["follows"], "pg1_standby");
    assert_eq!(rows["pg1"]["in_recovery"], true);
    assert_eq!(rows["pg1"]["replication"]["state"], "streaming", "{}", rows["pg1"]);
    let out = pgxc(&["status", &inv]);
    assert!(out.status.success(), "{}", shown(&out));
    let table = text(&out.stdout);
    assert!(table.contains("standby of pg1_standby (roles file)"), "{table}");
    assert!(table.contains("primary of pg1 (roles file)"), "{table}");

    // Again: back to the inventory's roles, the roles file empty, apply usable again.
    let out = pgxc(&["switchover", &inv, "pg1"]);
    assert!(out.status.success(), "switchover back: {}", shown(&out));
    assert!(text(&out.stdout).contains("pg1 on h1 (127.0.10.1:30442) is the primary"));
    assert_eq!(on("pg1", "select count(*) from t"), "1001");
    on("pg1", "insert into t values (1002)");
    assert_eq!(on("pg1", STREAMING), "pg1_standby streaming");
    let roles = std::fs::read_to_string(dir.path().join("switch.roles.toml")).unwrap();
    assert!(!roles.contains("[datanodes.pg1]"), "{roles}");
    let out = pgxc(&["apply", &inv]);
    assert!(out.status.success(), "apply after switching back: {}", shown(&out));
    let (code, rows) = status(&inv);
    assert_eq!(code, 0, "{rows:#?}");
    assert_eq!(rows["pg1_standby"]["replication"]["state"], "streaming");
    assert_eq!(rows["pg1"]["drift"], serde_json::json!([]));

    reset(TAG);
}

const XC_TAG: &str = "xcswitchtest";

/// Postgres-XC: GTM and coord1 on h1, dn1 on h1 with a standby on h2, dn2 on h2.
fn xc_inventory(dir: &Path, pgxc_home: &str) -> String {
    let text = format!(
        "[cluster]\nname = \"{XC_TAG}\"\nflavor = \"postgres-xc\"\nos_user = \"pgxc\"\n\n\
         [auth]\nmethod = \"md5\"\npassword_file = \"xc-password\"\n\n\
         [source]\nprebuilt = \"{pgxc_home}\"\n\n\
         [settings.all]\nshared_buffers = \"16MB\"\n\n{}\n{}\n\
         [gtm]\nhost = \"h1\"\nport = 30466\n\n\
         [[coordinators]]\nname = \"coord1\"\nhost = \"h1\"\nport = 30452\npooler_port = 30467\n\n\
         [[datanodes]]\nname = \"dn1\"\nhost = \"h1\"\nport = 30462\n\
         [datanodes.standby]\nhost = \"h2\"\nport = 30463\n\n\
         [[datanodes]]\nname = \"dn2\"\nhost = \"h2\"\nport = 30462\n",
        ssh_table(None),
        test_hosts(XC_TAG),
    );
    write(dir, "xc-password", "xc s3cret\n");
    write(dir, "xcswitch.toml", &text)
}

#[test]
fn postgres_xc_switchover_re_points_the_coordinator_and_the_old_datanode_follows() {
    let Ok(pgxc_home) = std::env::var("PGXC_HOME") else {
        eprintln!("SKIPPED postgres_xc_switchover...: set PGXC_HOME (e.g. /opt/pgxc) to run it");
        return;
    };
    reset(XC_TAG);
    let dir = tempdir();
    let inv = xc_inventory(dir.path(), &pgxc_home);
    let data = |k: usize, node: &str| format!("{LAB_DIR}/hosts/h{k}/data/{XC_TAG}/{node}");
    let psql = find_ctl(&format!("{LAB_DIR}/hosts/h1/data/{XC_TAG}"), "psql");
    let coord = |query: &str| sql(&psql, &data(1, "coord1"), 30452, query);
    let out = pgxc(&["apply", &inv]);
    assert!(out.status.success(), "apply: {}", shown(&out));
    coord("create table t(id int) distribute by hash(id)");
    coord("insert into t select generate_series(1, 200)");
    let on_dn1 = coord("execute direct on (dn1) 'select count(*) from t'");

    let out = pgxc(&["switchover", &inv, "dn1"]);
    assert!(out.status.success(), "switchover: {}", shown(&out));
    eprintln!("{}", text(&out.stdout));
    assert_eq!(coord("select count(*) from t"), "200");
    assert_eq!(coord("execute direct on (dn1) 'select count(*) from t'"), on_dn1);
    coord("insert into t select generate_series(201, 220)");
    assert_eq!(coord("select count(*) from t"), "220");
    let query = "select node_host || ':' || node_port from pgxc_node where node_name = 'dn1'";
    assert_eq!(coord(query), "127.0.10.2:30463");
    let replicas = "select application_name || ' ' || state from pg_stat_replication";
    assert_eq!(sql(&psql, &data(2, "dn1_standby"), 30463, replicas), "dn1 streaming");
    let (code, rows) = status(&inv);
    assert_eq!(code, 0, "{rows:#?}");
    assert_eq!(rows["dn1"]["follows"], "dn1_standby");

    let out = pgxc(&["switchover", &inv, "dn1"]);
    assert!(out.status.success(), "switchover back: {}", shown(&out));
    assert_eq!(coord(query), "127.0.10.1:30462");
    assert_eq!(coord("select count(*) from t"), "220");
    assert_eq!(sql(&psql, &data(1, "dn1"), 30462, replicas), "dn1_standby streaming");
    let (code, rows) = status(&inv);
    assert_eq!(code, 0, "{rows:#?}");

    reset(XC_TAG);
}
