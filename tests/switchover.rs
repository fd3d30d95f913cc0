//! `switchover` on a PostgreSQL-flavor cluster that `apply` deploys on lab hosts: pg1 (h1) with
//! a streaming standby (h2). Its own directory (`switchtest`) and ports (30442, 30443); failover
//! after a switchover in `healfailover` (32442, 32443).

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use crate::support::*;

const TAG: &str = "switchtest";
const PRIMARY_PORT: u16 = 30442;
const STANDBY_PORT: u16 = 30443;

fn inventory(dir: &Path) -> String {
    write(dir, "switch.toml", &pair_toml(TAG, (PRIMARY_PORT, STANDBY_PORT), true, ""))
}

/// SQL on pg1 (h1) or pg1_standby (h2) of a [`pair_toml`] cluster.
fn pair_sql(tag: &str, (primary, standby): (u16, u16), node: &str, query: &str) -> String {
    let (k, port) = if node == "pg1" { (1, primary) } else { (2, standby) };
    sql(&lab_psql(tag), &node_dir(tag, k, node), port, query)
}

/// SQL on pg1 (h1) or pg1_standby (h2).
fn on(node: &str, query: &str) -> String {
    pair_sql(TAG, (PRIMARY_PORT, STANDBY_PORT), node, query)
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
    let out = pgxc(&["switchover", "--yes", &inv, "pg1"]);
    let took = started.elapsed();
    assert!(out.status.success(), "switchover: {}", shown(&out));
    let said = text(&out.stdout);
    eprintln!("switchover ({took:?}):\n{said}");
    assert!(said.contains("pg1 on h1: stop (fast)"), "{said}");
    assert!(
        said.contains("pg1_standby on h2: promote once it replayed pg1's final checkpoint"),
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
    // exec: `pg1` and `@datanodes` mean the node serving pg1 now (once), `@standbys` pg1.
    let env = "echo $PGXC_NODE $PGXC_ROLE";
    let out = pgxc(&["exec", &inv, "--on", "pg1,@datanodes", "--json", "--", env]);
    assert!(out.status.success(), "{}", shown(&out));
    assert_eq!(text(&out.stdout).matches("pg1_standby datanode").count(), 1, "{}", shown(&out));
    let out = pgxc(&["exec", &inv, "--on", "@standbys", "--", env]);
    assert!(text(&out.stdout).contains("pg1 standby"), "{}", shown(&out));

    // apply deploys the swapped roles: pg1_standby gets a primary's files (a reload, no
    // restart), and pg1, the inventory's synchronous standby, is its synchronous standby now.
    let before = rows["pg1_standby"]["start_time"].clone();
    let out = pgxc(&["apply", &inv]);
    assert!(out.status.success(), "apply while swapped: {}", shown(&out));
    assert!(!text(&out.stderr).contains("restart"), "{}", shown(&out));
    assert_eq!(
        on("pg1_standby", "select application_name || ' ' || sync_state from pg_stat_replication"),
        "pg1 sync"
    );
    on("pg1_standby", "insert into t values (1002)");
    let (code, rows) = status(&inv);
    assert_eq!(code, 0, "{rows:#?}");
    assert_eq!(rows["pg1_standby"]["start_time"], before);
    assert!(rows.values().all(|r| r["drift"] == serde_json::json!([])), "{rows:#?}");
    let out = pgxc(&["apply", &inv]);
    assert!(text(&out.stdout).contains("nothing to do"), "{}", shown(&out));

    // Its synchronous standby pg1 dies: degrade (named by the datanode) lets pg1_standby's
    // commits through; pg1 started again, apply switches synchronous replication back on.
    let pid = postmaster_pid(&format!("{LAB_DIR}/hosts/h1/data/{TAG}/pg1"));
    kill("-KILL", pid);
    wait_for("pg1 to die", || process_gone(pid));
    let out = pgxc(&["degrade", &inv, "pg1"]);
    assert!(out.status.success(), "degrade: {}", shown(&out));
    assert!(
        text(&out.stdout).contains("pg1_standby on h2: update synchronous_standby.conf"),
        "{}",
        shown(&out)
    );
    on("pg1_standby", "insert into t values (1003)");
    let out = pgxc(&["start", &inv, "--on", "pg1"]);
    assert!(out.status.success(), "start: {}", shown(&out));
    wait_for("pg1 to stream again", || on("pg1_standby", STREAMING) == "pg1 streaming");
    let out = pgxc(&["apply", &inv]);
    assert!(out.status.success(), "apply: {}", shown(&out));
    assert_eq!(
        on("pg1_standby", "select application_name || ' ' || sync_state from pg_stat_replication"),
        "pg1 sync"
    );

    // Again: back to the inventory's roles, the roles file empty, apply usable again.
    let out = pgxc(&["switchover", "--yes", &inv, "pg1"]);
    assert!(out.status.success(), "switchover back: {}", shown(&out));
    assert!(text(&out.stdout).contains("pg1 on h1 (127.0.10.1:30442) is the primary"));
    assert_eq!(on("pg1", "select count(*) from t"), "1003");
    on("pg1", "insert into t values (1004)");
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

const FO_TAG: &str = "healfailover";
const FO_PRIMARY_PORT: u16 = 32442;
const FO_STANDBY_PORT: u16 = 32443;

/// SQL on pg1 (h1) or pg1_standby (h2) of the `healfailover` cluster.
fn fo(node: &str, query: &str) -> String {
    pair_sql(FO_TAG, (FO_PRIMARY_PORT, FO_STANDBY_PORT), node, query)
}

/// kill -9 every process of the server in `data_dir`, as a dying machine would lose them.
fn kill_server(data_dir: &str) {
    let pid = postmaster_pid(data_dir);
    Command::new("pkill").args(["-KILL", "-P", &pid.to_string()]).status().unwrap();
    kill("-KILL", pid);
    wait_for("the postmaster to die", || process_gone(pid));
}

#[test]
fn failover_after_a_switchover_promotes_the_old_primary_back_and_fences_the_new_one() {
    reset(FO_TAG);
    let dir = tempdir();
    let text_inv = pair_toml(FO_TAG, (FO_PRIMARY_PORT, FO_STANDBY_PORT), false, "");
    let inv = write(dir.path(), "fo.toml", &text_inv);
    let data = |k: usize, node: &str| node_dir(FO_TAG, k, node);
    let out = pgxc(&["apply", &inv]);
    assert!(out.status.success(), "apply: {}", shown(&out));
    fo("pg1", "create table t (id int)");
    fo("pg1", "insert into t select generate_series(1, 1000)");
    let out = pgxc(&["switchover", "--yes", &inv, "pg1"]);
    assert!(out.status.success(), "switchover: {}", shown(&out));
    fo("pg1_standby", "insert into t values (1001)");
    wait_for("pg1 to replay the new row", || fo("pg1", "select count(*) from t") == "1001");

    // The new primary's machine dies: failover promotes pg1 back and fences pg1_standby.
    kill_server(&data(2, "pg1_standby"));
    let out = pgxc(&["failover", "--yes", &inv, "pg1"]);
    assert!(out.status.success(), "failover: {}", shown(&out));
    let said = text(&out.stdout);
    eprintln!("failover after a switchover:\n{said}");
    assert!(
        said.contains("pg1_standby serves pg1 since a switchover (roles file) and pg1 streams"),
        "{said}"
    );
    assert!(said.contains("pg1_standby on h2: already down"), "{said}");
    assert!(said.contains("pg1 on h1: promote"), "{said}");
    assert!(said.contains("pg1 on h1: check: it takes writes"), "{said}");
    assert!(said.contains("pg1 on h1 (127.0.10.1:32442) is the primary"), "{said}");
    assert_eq!(fo("pg1", "select pg_is_in_recovery()"), "f");
    assert_eq!(fo("pg1", "select count(*) from t"), "1001");
    fo("pg1", "insert into t values (1002)");
    assert_eq!(fo("pg1", "select count(*) from t"), "1002");

    // Recorded: pg1 serves itself, pg1_standby fenced; every command reads it so.
    let roles = std::fs::read_to_string(dir.path().join("fo.roles.toml")).unwrap();
    assert!(
        roles.contains("[datanodes.pg1]\nprimary = \"pg1\"\nold_primary = \"pg1_standby\""),
        "{roles}"
    );
    assert!(!roles.contains("old_primary_follows"), "{roles}");
    let (code, rows) = status(&inv);
    assert_eq!(code, 1, "pg1_standby is fenced: {rows:#?}");
    assert_eq!(rows["pg1"]["healthy"], true, "{}", rows["pg1"]);
    assert_eq!(rows["pg1"]["promoted_for"], "pg1");
    assert_eq!(rows["pg1"]["in_recovery"], false);
    assert_eq!(rows["pg1_standby"]["fenced"], true);
    assert!(
        rows["pg1_standby"]["problems"][0]
            .as_str()
            .unwrap()
            .starts_with("fenced by failover: pg1 is the primary of pg1 now"),
        "{}",
        rows["pg1_standby"]
    );
    let out = pgxc(&["start", &inv]);
    assert_eq!(out.status.code(), Some(1), "{}", shown(&out));
    let said = text(&out.stdout);
    assert!(said.contains("pg1 on h1: already running"), "{said}");
    assert!(said.contains("pg1_standby on h2: fenced"), "{said}");
    assert!(process_gone(postmaster_pid(&data(2, "pg1_standby"))));
    let out = pgxc(&["exec", &inv, "--on", "pg1", "--", "echo $PGXC_NODE $PGXC_ROLE $PGPORT"]);
    assert!(out.status.success(), "{}", shown(&out));
    assert!(text(&out.stdout).contains("pg1 datanode 32442"), "{}", shown(&out));
    let out = pgxc(&["restart", &inv, "--rolling"]);
    assert!(out.status.success(), "restart: {}", shown(&out));
    let said = text(&out.stdout);
    assert!(said.contains("restarted pg1 on h1"), "{said}");
    assert!(!said.contains("restarted pg1_standby"), "{said}");
    assert_eq!(fo("pg1", "select count(*) from t"), "1002");

    // Again with pg1 running: only the coordinator part and the check are redone.
    let out = pgxc(&["failover", "--yes", &inv, "pg1"]);
    assert!(out.status.success(), "{}", shown(&out));
    assert!(text(&out.stdout).contains("pg1 already failed over to pg1"), "{}", shown(&out));
    // pg1 dies too: there is no standby left to promote; refused, nothing changed.
    kill_server(&data(1, "pg1"));
    let out = pgxc(&["failover", "--yes", &inv, "pg1_standby"]);
    assert_eq!(out.status.code(), Some(1), "{}", shown(&out));
    assert!(
        text(&out.stdout).contains(
            "error: failover pg1: pg1 already failed over to pg1 (roles file), and pg1_standby \
             is fenced, not a standby: there is no standby left to promote. pg1 on h1 is not \
             running"
        ),
        "{}",
        shown(&out)
    );
    assert_eq!(std::fs::read_to_string(dir.path().join("fo.roles.toml")).unwrap(), roles);
    assert!(process_gone(postmaster_pid(&data(2, "pg1_standby"))));

    // pg1 back: apply rewinds the fenced pg1_standby into pg1's standby, and with the
    // inventory's roles restored, the roles file has nothing left to say.
    let out = pgxc(&["start", &inv, "--on", "pg1"]);
    assert!(out.status.success(), "start: {}", shown(&out));
    let out = pgxc(&["apply", &inv]);
    assert!(out.status.success(), "apply: {}", shown(&out));
    assert!(
        text(&out.stderr).contains("pg1_standby on h2: rewound with pg_rewind"),
        "{}",
        shown(&out)
    );
    let roles = std::fs::read_to_string(dir.path().join("fo.roles.toml")).unwrap();
    assert!(!roles.contains("[datanodes.pg1]"), "{roles}");
    wait_for("pg1_standby to replay every row", || {
        fo("pg1_standby", "select count(*) from t") == "1002"
    });
    let (code, rows) = status(&inv);
    assert_eq!(code, 0, "{rows:#?}");
    assert_eq!(rows["pg1_standby"]["replication"]["state"], "streaming");

    reset(FO_TAG);
}

const XC_TAG: &str = "xcswitchtest";

/// Postgres-XC: GTM and coord1 on h1, dn1 on h1 with a standby on h2, dn2 on h2.
fn xc_inventory(dir: &Path, pgxc_home: &str) -> String {
    let text = xc_toml(XC_TAG, pgxc_home, XC_MD5, &xc_pair_nodes(30452, false));
    write(dir, "xc-password", "xc s3cret\n");
    write(dir, "xcswitch.toml", &text)
}

#[test]
fn postgres_xc_switchover_re_points_the_coordinator_and_the_old_datanode_follows() {
    let pgxc_home = pgxc_home();
    reset(XC_TAG);
    let dir = tempdir();
    let inv = xc_inventory(dir.path(), &pgxc_home);
    let data = |k: usize, node: &str| node_dir(XC_TAG, k, node);
    let psql = lab_psql(XC_TAG);
    let coord = |query: &str| sql(&psql, &data(1, "coord1"), 30452, query);
    let out = pgxc(&["apply", &inv]);
    assert!(out.status.success(), "apply: {}", shown(&out));
    coord("create table t(id int) distribute by hash(id)");
    coord("insert into t select generate_series(1, 200)");
    let on_dn1 = coord("execute direct on (dn1) 'select count(*) from t'");

    let out = pgxc(&["switchover", "--yes", &inv, "dn1"]);
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
    // apply deploys the swapped roles: the coordinator keeps dn1 where it is, both nodes keep
    // the name dn1, and nothing needs a restart.
    let out = pgxc(&["apply", &inv]);
    assert!(out.status.success(), "apply while swapped: {}", shown(&out));
    assert!(!text(&out.stderr).contains("restart"), "{}", shown(&out));
    assert!(!text(&out.stderr).contains("pgxc_node ="), "{}", shown(&out));
    assert_eq!(coord(query), "127.0.10.2:30463");
    let (code, rows) = status(&inv);
    assert_eq!(code, 0, "{rows:#?}");
    assert!(rows.values().all(|r| r["drift"] == serde_json::json!([])), "{rows:#?}");
    let out = pgxc(&["apply", &inv]);
    assert!(text(&out.stdout).contains("nothing to do"), "{}", shown(&out));

    // A coordinator that stopped meanwhile (an X2 postmaster exits about 5 s after a crash
    // recovery, which a datanode vanishing can cause) is started before it is re-pointed. Its
    // postmaster alone goes, as there: its pooler stays, holding the pooler's lock file.
    let coord1 = postmaster_pid(&data(1, "coord1"));
    kill("-KILL", coord1);
    wait_for("coord1's postmaster to die", || process_gone(coord1));
    let out = pgxc(&["switchover", "--yes", &inv, "dn1"]);
    assert!(out.status.success(), "switchover back: {}", shown(&out));
    assert!(
        text(&out.stdout).contains("coord1 on h1: not running: started first"),
        "{}",
        shown(&out)
    );
    assert_eq!(coord(query), "127.0.10.1:30462");
    assert_eq!(coord("select count(*) from t"), "220");
    assert_eq!(sql(&psql, &data(1, "dn1"), 30462, replicas), "dn1_standby streaming");
    let (code, rows) = status(&inv);
    assert_eq!(code, 0, "{rows:#?}");

    reset(XC_TAG);
}

const XC_FO_TAG: &str = "healxcfailover";

#[test]
fn postgres_xc_failover_after_a_switchover_points_the_coordinator_back_at_the_old_datanode() {
    let pgxc_home = pgxc_home();
    reset(XC_FO_TAG);
    let dir = tempdir();
    let text_inv = xc_toml(XC_FO_TAG, &pgxc_home, XC_MD5, &xc_pair_nodes(32472, false));
    write(dir.path(), "xc-password", "xc s3cret\n");
    let inv = write(dir.path(), "xcfo.toml", &text_inv);
    let data = |k: usize, node: &str| node_dir(XC_FO_TAG, k, node);
    let psql = lab_psql(XC_FO_TAG);
    let coord = |query: &str| sql(&psql, &data(1, "coord1"), 32472, query);
    let out = pgxc(&["apply", &inv]);
    assert!(out.status.success(), "apply: {}", shown(&out));
    coord("create table t(id int) distribute by hash(id)");
    coord("insert into t select generate_series(1, 200)");
    let out = pgxc(&["switchover", "--yes", &inv, "dn1"]);
    assert!(out.status.success(), "switchover: {}", shown(&out));
    coord("insert into t select generate_series(201, 220)");
    let on_dn1 = coord("execute direct on (dn1) 'select count(*) from t'");
    let replicas = "select application_name || ' ' || state || ' ' || \
                    pg_xlog_location_diff(sent_location, replay_location) from pg_stat_replication";
    wait_for("dn1 to replay everything", || {
        sql(&psql, &data(2, "dn1_standby"), 32483, replicas) == "dn1 streaming 0"
    });

    kill_server(&data(2, "dn1_standby"));
    let out = pgxc(&["failover", "--yes", &inv, "dn1"]);
    assert!(out.status.success(), "failover: {}", shown(&out));
    eprintln!("{}", text(&out.stdout));
    let query = "select node_host || ':' || node_port from pgxc_node where node_name = 'dn1'";
    assert_eq!(coord(query), "127.0.10.1:32482");
    assert_eq!(coord("execute direct on (dn1) 'select count(*) from t'"), on_dn1);
    assert_eq!(coord("select count(*) from t"), "220");
    coord("insert into t select generate_series(221, 240)");
    assert_eq!(coord("select count(*) from t"), "240");
    let (code, rows) = status(&inv);
    assert_eq!(code, 1, "dn1_standby is fenced: {rows:#?}");
    assert_eq!(rows["dn1"]["healthy"], true, "{}", rows["dn1"]);
    assert_eq!(rows["coord1"]["healthy"], true, "{}", rows["coord1"]);
    assert_eq!(rows["dn1_standby"]["fenced"], true);

    reset(XC_FO_TAG);
}
