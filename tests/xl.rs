//! Postgres-XL 10 (`flavor = "postgres-xl"`) on lab hosts, from the install that
//! `scripts/server-install xl` builds from ../shared/sources (`PGXL_HOME`; scripts/test and CI
//! set it). Without it each test prints a SKIPPED line and returns.

use std::path::Path;

use crate::support::*;

const TAG: &str = "xltest";

/// The install `PGXL_HOME` names, or `None` after a SKIPPED line naming what to run.
fn pgxl_home(test: &str) -> Option<String> {
    install_home(
        "PGXL_HOME",
        test,
        "PGXL_HOME=$(scripts/server-install xl) runs it (scripts/test and CI do)",
    )
}

/// GTM and coord1 on h1, coord2 and dn1 on h2, dn2 on h3 (the manual procedure's topology),
/// from port `base` up, in test directory `tag`; `standby`: dn1 has a streaming standby on h3.
/// dn1 is the primary datanode, and coord2 and dn2 prefer it (as pgxc_ctl and pg_regress mark
/// them).
fn inventory(dir: &Path, home: &str, tag: &str, base: u16, standby: bool) -> String {
    let (gtm, pooler, dn) = (base + 134, base + 135, base + 10);
    let mut nodes = format!(
        "[gtm]\nhost = \"h1\"\nport = {gtm}\n\n\
         [[coordinators]]\nname = \"coord1\"\nhost = \"h1\"\nport = {base}\npooler_port = {pooler}\n\n\
         [[coordinators]]\nname = \"coord2\"\nhost = \"h2\"\nport = {base}\npooler_port = {pooler}\n\
         preferred_datanodes = [\"dn1\"]\n\n\
         [[datanodes]]\nname = \"dn1\"\nhost = \"h2\"\nport = {dn}\npooler_port = {}\n",
        dn + 1
    );
    if standby {
        nodes.push_str(&format!(
            "[datanodes.standby]\nhost = \"h3\"\nport = {}\npooler_port = {}\n",
            dn + 2,
            dn + 3
        ));
    }
    nodes.push_str(&format!(
        "\n[[datanodes]]\nname = \"dn2\"\nhost = \"h3\"\nport = {dn}\npooler_port = {}\n\
         preferred_datanodes = [\"dn1\"]\n",
        dn + 1
    ));
    let flavor = "flavor = \"postgres-xl\"\nprimary_datanode = \"dn1\"";
    let text = xc_toml(tag, home, XC_MD5, &nodes).replace("flavor = \"postgres-xc\"", flavor);
    write(dir, "xc-password", "xc s3cret\n");
    write(dir, "xl.toml", &text)
}

/// A fresh cluster of [`inventory`] in test directory `tag`, applied: its directory and
/// inventory path.
fn deployed(home: &str, tag: &str, base: u16, standby: bool) -> (tempfile::TempDir, String) {
    reset(tag);
    let dir = tempdir();
    let inv = inventory(dir.path(), home, tag, base, standby);
    let out = pgxc(&["apply", &inv]);
    assert!(out.status.success(), "apply: {}", shown(&out));
    (dir, inv)
}

#[test]
fn postgres_xl_apply_registers_every_node_everywhere_and_rows_spread_over_its_datanodes() {
    let Some(home) = pgxl_home("postgres_xl_apply") else { return };
    let (_dir, inv) = deployed(&home, TAG, 41532, false);
    let on = |k: usize, node: &str, port: u16, query: &str| on_node(TAG, k, node, port, query);
    let version = on(1, "coord1", 41532, "select version()");
    assert!(version.contains("(Postgres-XL 10r1.1)"), "{version}");

    // Every coordinator and every datanode lists every node at its real address, each typed
    // as what it is (a fresh XL datanode lists itself as a coordinator on localhost:5432); dn1
    // is primary everywhere and preferred where the inventory says so.
    let want = |preferred: &str| {
        let dn1 = format!("dn1|D|127.0.10.2|41542|t|{preferred}");
        format!(
            "coord1|C|127.0.10.1|41532|f|f\ncoord2|C|127.0.10.2|41532|f|f\n{dn1}\ndn2|D|127.0.10.3|41542|f|f"
        )
    };
    let query = "select node_name, node_type, node_host, node_port, nodeis_primary, \
                 nodeis_preferred from pgxc_node order by 1";
    assert_eq!(on(1, "coord1", 41532, query), want("f"));
    assert_eq!(on(2, "coord2", 41532, query), want("t"));
    assert_eq!(on(2, "dn1", 41542, query), want("f"));
    assert_eq!(on(3, "dn2", 41542, query), want("t"));

    // Written through coord1, read through coord2, spread over both datanodes; a replicated
    // table on both.
    on(1, "coord1", 41532, "create table t (id int, v text) distribute by hash(id)");
    on(1, "coord1", 41532, "insert into t select g, 'row ' || g from generate_series(1, 1000) g");
    on(1, "coord1", 41532, "create table r (id int) distribute by replication");
    on(1, "coord1", 41532, "insert into r select generate_series(1, 10)");
    assert_eq!(on(2, "coord2", 41532, "select count(*) from t"), "1000");
    let mut total = 0;
    for dn in ["dn1", "dn2"] {
        let direct =
            |table: &str| format!("execute direct on ({dn}) 'select count(*) from {table}'");
        let n: u32 = on(2, "coord2", 41532, &direct("t")).parse().unwrap();
        assert!(n > 300, "{dn} holds {n} of 1000 rows");
        total += n;
        assert_eq!(on(2, "coord2", 41532, &direct("r")), "10", "{dn}");
    }
    assert_eq!(total, 1000);
    // A join across datanodes (XL datanodes exchange rows with each other).
    let joined = "select count(*) from t join r on t.id = r.id";
    assert_eq!(on(2, "coord2", 41532, joined), "10");

    // The second apply changes nothing; status sees every node healthy, pgxc_node matching.
    let out = pgxc(&["apply", &inv]);
    assert!(out.status.success(), "{}", shown(&out));
    assert!(
        text(&out.stdout).starts_with("nothing to do: xltest already matches"),
        "{}",
        shown(&out)
    );
    let (code, rows) = status(&inv);
    assert_eq!(code, 0, "{rows:#?}");
    assert_eq!(rows.len(), 5);
    for (name, row) in &rows {
        assert_eq!(row["healthy"], true, "{name}: {row}");
        assert_eq!(row["state"], "running", "{name}: {row}");
    }
    for node in ["coord1", "coord2", "dn1", "dn2"] {
        assert_eq!(rows[node]["pgxc_node"], "matches", "{node}: {}", rows[node]);
    }

    // The primary moves to dn2 and coord1 comes to prefer it: status sees the drift, apply
    // unmarks dn1 before it marks dn2 (a server takes one primary at a time), and a replicated
    // table is still written and read.
    let moved = std::fs::read_to_string(&inv)
        .unwrap()
        .replace("primary_datanode = \"dn1\"", "primary_datanode = \"dn2\"");
    let moved = moved.replacen(
        "pooler_port = 41667\n",
        "pooler_port = 41667\npreferred_datanodes = [\"dn2\"]\n",
        1,
    );
    std::fs::write(&inv, moved).unwrap();
    let (code, rows) = status(&inv);
    assert_ne!(code, 0, "{rows:#?}");
    let differs = rows["coord1"]["pgxc_node_differences"].to_string();
    assert!(differs.contains("dn1 primary, the inventory says unmarked"), "{}", rows["coord1"]);
    assert!(differs.contains("dn2 unmarked, the inventory says primary, preferred"), "{differs}");
    let out = pgxc(&["apply", &inv]);
    assert!(out.status.success(), "{}", shown(&out));
    let marks = "select string_agg(node_name || ':' || nodeis_primary || nodeis_preferred, ' ' \
                 order by node_name) from pgxc_node where node_type = 'D'";
    assert_eq!(on(1, "coord1", 41532, marks), "dn1:falsefalse dn2:truetrue");
    assert_eq!(on(2, "coord2", 41532, marks), "dn1:falsetrue dn2:truefalse");
    assert_eq!(on(2, "dn1", 41542, marks), "dn1:falsefalse dn2:truefalse");
    assert_eq!(on(3, "dn2", 41542, marks), "dn1:falsetrue dn2:truefalse");
    on(2, "coord2", 41532, "insert into r values (11)");
    assert_eq!(on(1, "coord1", 41532, "select count(*) from r"), "11");
    let out = pgxc(&["apply", &inv]);
    assert!(text(&out.stdout).starts_with("nothing to do"), "{}", shown(&out));

    reset(TAG);
}

const FAILOVER_TAG: &str = "xlfailover";

#[test]
fn postgres_xl_failover_after_kill_keeps_every_committed_row_and_apply_rebuilds_the_old_primary() {
    let Some(home) = pgxl_home("postgres_xl_failover") else { return };
    let (_dir, inv) = deployed(&home, FAILOVER_TAG, 42532, true);
    let on =
        |k: usize, node: &str, port: u16, query: &str| on_node(FAILOVER_TAG, k, node, port, query);
    // An XL standby refuses every session; status reads it from pg_controldata and from its
    // primary's pg_stat_replication.
    let (code, rows) = status(&inv);
    assert_eq!(code, 0, "{rows:#?}");
    assert_eq!(rows["dn1_standby"]["in_recovery"], true, "{}", rows["dn1_standby"]);

    // Switchover and back under writes through both coordinators: the standby refuses SQL,
    // so its own WAL must hold the old primary's final checkpoint before it is promoted.
    on(1, "coord1", 42532, "create table roll (id bigint) distribute by hash(id)");
    let lib = format!("{home}/lib");
    let coordinators = [("127.0.10.1", 42532), ("127.0.10.2", 42532)];
    let env = [("LD_LIBRARY_PATH", lib.as_str()), ("PGPASSWORD", "xc s3cret")];
    let load = Load::start(&format!("{home}/bin/psql"), &coordinators, &env);
    std::thread::sleep(std::time::Duration::from_secs(1));
    let dn1_row = "select node_host || ':' || node_port from pgxc_node where node_name = 'dn1'";
    let everywhere = [(1, "coord1", 42532), (2, "coord2", 42532), (3, "dn2", 42542)];
    for (to, at) in [("dn1_standby", "127.0.10.3:42544"), ("dn1", "127.0.10.2:42542")] {
        let out = pgxc(&["switchover", "--yes", &inv, "dn1"]);
        assert!(out.status.success(), "switchover to {to}: {}", shown(&out));
        let said = text(&out.stdout);
        assert!(said.contains("its WAL holds dn1"), "{said}");
        for (k, node, port) in everywhere {
            assert_eq!(on(k, node, port, dn1_row), at, "{node} after the switchover to {to}");
        }
        let (code, rows) = status(&inv);
        assert_eq!(code, 0, "after the switchover to {to}: {rows:#?}");
    }
    std::thread::sleep(std::time::Duration::from_secs(1));
    let written = load.finish();
    assert_committed_rows_present(&written, &ids(|q| on(2, "coord2", 42532, q)));
    assert_eq!(on(2, "dn1", 42542, "select pg_is_in_recovery()"), "f");

    on(1, "coord1", 42532, "create table t (id int, v text) distribute by hash(id)");
    on(1, "coord1", 42532, "insert into t select g, 'row ' || g from generate_series(1, 1000) g");
    wait_for("dn1_standby to replay every row", || {
        let (_, rows) = status(&inv);
        rows["dn1_standby"]["replication"]["lag_bytes"] == 0
    });
    let dn1 = node_dir(FAILOVER_TAG, 2, "dn1");
    let pid = postmaster_pid(&dn1);
    kill("-KILL", pid);
    wait_for("dn1's postmaster to die", || process_gone(pid));

    // A switchover needs a running primary: refused, nothing changed.
    let out = pgxc(&["switchover", "--yes", &inv, "dn1"]);
    assert!(!out.status.success(), "{}", shown(&out));
    assert!(text(&out.stdout).contains("use failover when it is lost"), "{}", shown(&out));

    let out = pgxc(&["failover", "--yes", &inv, "dn1"]);
    assert!(out.status.success(), "failover: {}", shown(&out));
    let said = text(&out.stdout);
    assert!(said.contains("dn1_standby on h3 (127.0.10.3:42544) is the primary"), "{said}");
    // Every node that lists dn1 lists it at its new address: both coordinators, dn2, and the
    // new primary itself (its copy of pgxc_node came from dn1).
    for (k, node, port) in
        [(1, "coord1", 42532), (2, "coord2", 42532), (3, "dn2", 42542), (3, "dn1_standby", 42544)]
    {
        assert_eq!(on(k, node, port, dn1_row), "127.0.10.3:42544", "{node}");
    }
    // Every committed row, through the other coordinator; rows cross between datanodes.
    assert_eq!(on(2, "coord2", 42532, "select count(*) from t"), "1000");
    let self_join = "select count(*) from t a join t b on a.id = b.id + 1";
    assert_eq!(on(2, "coord2", 42532, self_join), "999");
    on(2, "coord2", 42532, "insert into t values (1001, 'after')");
    assert_eq!(on(1, "coord1", 42532, "select count(*) from t"), "1001");

    // The next apply rebuilds the old primary as a standby of the new one.
    let out = pgxc(&["apply", &inv]);
    assert!(out.status.success(), "apply: {}", shown(&out));
    assert!(
        text(&out.stderr).contains("dn1 on h2: rebuild the fenced old primary"),
        "{}",
        shown(&out)
    );
    let (code, rows) = status(&inv);
    assert_eq!(code, 0, "{rows:#?}");
    assert_eq!(rows["dn1"]["in_recovery"], true, "{}", rows["dn1"]);
    assert_eq!(rows["dn1_standby"]["promoted_for"], "dn1", "{}", rows["dn1_standby"]);
    // The promoted datanode's own pgxc_node is checked too.
    assert_eq!(rows["dn1_standby"]["pgxc_node"], "matches", "{}", rows["dn1_standby"]);
    let out = pgxc(&["apply", &inv]);
    assert!(text(&out.stdout).starts_with("nothing to do"), "{}", shown(&out));

    // A rolling restart under writes through both coordinators: the standby (dn1 now, which
    // answers no SQL: its new postmaster PID tells the restart), the datanodes, the
    // coordinators; every committed row is there afterwards.
    let load = Load::start(&format!("{home}/bin/psql"), &coordinators, &env);
    std::thread::sleep(std::time::Duration::from_secs(1));
    let out = pgxc(&["restart", &inv, "--rolling"]);
    std::thread::sleep(std::time::Duration::from_secs(1));
    let written = load.finish();
    assert!(out.status.success(), "{}", shown(&out));
    let said = text(&out.stdout);
    for node in ["dn1 on h2", "dn1_standby on h3", "dn2 on h3", "coord1 on h1", "coord2 on h2"] {
        assert!(said.contains(&format!("  ok    restarted {node} (")), "{node}: {said}");
    }
    let (code, rows) = status(&inv);
    assert_eq!(code, 0, "healthy after the roll: {rows:#?}");
    assert_committed_rows_present(&written, &ids(|q| on(1, "coord1", 42532, q)));

    // A rolling restart by switchover under the same writers: dn1_standby, the primary since
    // the failover, hands dn1 back to dn1, whose WAL must hold its final checkpoint first.
    let load = Load::start(&format!("{home}/bin/psql"), &coordinators, &env);
    std::thread::sleep(std::time::Duration::from_secs(1));
    let out = pgxc(&["restart", &inv, "--rolling", "--switchover"]);
    std::thread::sleep(std::time::Duration::from_secs(1));
    let written = load.finish();
    assert!(out.status.success(), "{}", shown(&out));
    let (code, rows) = status(&inv);
    assert_eq!(code, 0, "healthy after the switchover roll: {rows:#?}");
    assert_eq!(rows["dn1"]["in_recovery"], false, "{}", rows["dn1"]);
    assert_eq!(rows["dn1_standby"]["in_recovery"], true, "{}", rows["dn1_standby"]);
    for (k, node, port) in everywhere {
        assert_eq!(on(k, node, port, dn1_row), "127.0.10.2:42542", "{node} after the roll");
    }
    assert_committed_rows_present(&written, &ids(|q| on(1, "coord1", 42532, q)));

    reset(FAILOVER_TAG);
}

const CHANGE_TAG: &str = "xlchange";

/// gtm_proxies on every host, datanodes added and removed with their rows moved, and a lost
/// coordinator removed and re-added, on Postgres-XL, whose datanodes keep a pgxc_node of their
/// own: every step must reach them too. Ports 43xxx.
#[test]
fn postgres_xl_grows_and_shrinks_online_through_gtm_proxies() {
    let Some(home) = pgxl_home("postgres_xl_grows_and_shrinks") else { return };
    reset(CHANGE_TAG);
    let dir = tempdir();
    let dn = |name: &str, host: &str, extra: &str| {
        format!(
            "[[datanodes]]\nname = \"{name}\"\nhost = \"{host}\"\nport = 43010\n\
             pooler_port = 43011\n{extra}\n"
        )
    };
    let nodes = |datanodes: &str| {
        let mut text = "[gtm]\nhost = \"h1\"\nport = 43100\n\n".to_string();
        for k in 1..=3 {
            text.push_str(&format!(
                "[[gtm_proxies]]\nname = \"proxy{k}\"\nhost = \"h{k}\"\nport = 43110\n\n"
            ));
        }
        for k in 1..=2 {
            text.push_str(&format!(
                "[[coordinators]]\nname = \"coord{k}\"\nhost = \"h{k}\"\nport = 43000\n\
                 pooler_port = 43001\n\n"
            ));
        }
        text + datanodes
    };
    let write_inventory = |primary: &str, datanodes: &str| {
        let flavor = format!("flavor = \"postgres-xl\"\nprimary_datanode = \"{primary}\"");
        let text = xc_toml(CHANGE_TAG, &home, "method = \"trust\"", &nodes(datanodes))
            .replace("flavor = \"postgres-xc\"", &flavor);
        write(dir.path(), "xl.toml", &text)
    };
    let two = dn("dn1", "h2", "") + &dn("dn2", "h3", "");
    let inv = write_inventory("dn1", &two);
    let out = pgxc(&["apply", &inv]);
    assert!(out.status.success(), "apply: {}", shown(&out));
    let on =
        |k: usize, node: &str, port: u16, query: &str| on_node(CHANGE_TAG, k, node, port, query);
    let coord = |k: usize, query: &str| on(k, &format!("coord{k}"), 43000, query);
    coord(1, "create table t (id int, v text) distribute by hash(id)");
    coord(1, "insert into t select g, 'row ' || g from generate_series(1, 1000) g");
    coord(1, "create table r (id int) distribute by replication");
    coord(1, "insert into r select generate_series(1, 10)");
    let self_join = "select count(*) from t a join t b on a.id = b.id + 1";
    let names = "select string_agg(node_name::text, ',' order by node_name) from pgxc_node";
    // Every node that keeps a pgxc_node lists `want`.
    let listed_everywhere = |want: &str, datanodes: &[(usize, &str)]| {
        for k in 1..=2 {
            assert_eq!(coord(k, names), want, "coord{k}");
        }
        for (k, name) in datanodes {
            assert_eq!(on(*k, name, 43010, names), want, "{name}");
        }
    };

    // dn3 joins: its share of t, all of r, and every node lists it.
    let three = two.clone() + &dn("dn3", "h1", "");
    write_inventory("dn1", &three);
    let out = pgxc(&["apply", &inv]);
    assert!(out.status.success(), "apply adding dn3: {}", shown(&out));
    assert_eq!(coord(2, "select count(*) from t"), "1000");
    let on_dn3: u32 = coord(1, "execute direct on (dn3) 'select count(*) from t'").parse().unwrap();
    assert!(on_dn3 > 200, "dn3 holds {on_dn3} of 1000 rows");
    assert_eq!(coord(1, "execute direct on (dn3) 'select count(*) from r'"), "10");
    assert_eq!(coord(2, self_join), "999");
    let datanodes = [(2, "dn1"), (3, "dn2"), (1, "dn3")];
    listed_everywhere("coord1,coord2,dn1,dn2,dn3", &datanodes);

    // dn1, the primary datanode, leaves (dn2 becomes the primary): its rows move, and no
    // node lists it afterwards.
    let shrunk =
        dn("dn1", "h2", "state = \"removed\"") + &dn("dn2", "h3", "") + &dn("dn3", "h1", "");
    write_inventory("dn2", &shrunk);
    let out = pgxc(&["apply", &inv]);
    assert!(out.status.success(), "apply removing dn1: {}", shown(&out));
    assert_eq!(coord(1, "select count(*) from t"), "1000");
    assert_eq!(coord(2, self_join), "999");
    let datanodes = [(3, "dn2"), (1, "dn3")];
    listed_everywhere("coord1,coord2,dn2,dn3", &datanodes);
    let primary = "select node_name from pgxc_node where nodeis_primary";
    assert_eq!(on(1, "dn3", 43010, primary), "dn2");
    let (code, rows) = status(&inv);
    assert_eq!(code, 0, "{rows:#?}");

    // coord2 is lost and removed: DDL works again through coord1, and the datanodes no longer
    // list it. apply re-adds it from coord1's catalog and every node lists it again.
    let pid = postmaster_pid(&node_dir(CHANGE_TAG, 2, "coord2"));
    kill("-KILL", pid);
    wait_for("coord2's postmaster to die", || process_gone(pid));
    let out = pgxc(&["remove", &inv, "coord2"]);
    assert!(out.status.success(), "remove: {}", shown(&out));
    assert!(
        text(&out.stdout).contains("dropped from the pgxc_node of coord1, dn2, dn3"),
        "{}",
        shown(&out)
    );
    coord(1, "create table after_remove (x int)");
    for (k, name) in datanodes {
        assert_eq!(on(k, name, 43010, names), "coord1,dn2,dn3", "{name}");
    }
    let out = pgxc(&["apply", &inv]);
    assert!(out.status.success(), "apply re-adding coord2: {}", shown(&out));
    listed_everywhere("coord1,coord2,dn2,dn3", &datanodes);
    assert_eq!(coord(2, "select count(*) from after_remove"), "0");
    assert_eq!(coord(2, self_join), "999");
    let (code, rows) = status(&inv);
    assert_eq!(code, 0, "{rows:#?}");
    let out = pgxc(&["apply", &inv]);
    assert!(text(&out.stdout).starts_with("nothing to do"), "{}", shown(&out));

    reset(CHANGE_TAG);
}
