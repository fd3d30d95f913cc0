//! Postgres-XL 10 (`flavor = "postgres-xl"`) on lab hosts, from the install that
//! `scripts/server-install xl` builds from ../shared/sources (`PGXL_HOME`; scripts/test and CI
//! set it). Without it each test prints a SKIPPED line and returns.

use std::path::Path;

use crate::support::*;

const TAG: &str = "xltest";

/// The Postgres-XL install, or `None` after a SKIPPED line naming what to run.
fn pgxl_home(test: &str) -> Option<String> {
    match std::env::var("PGXL_HOME") {
        Ok(home) if !home.is_empty() => Some(home),
        _ => {
            eprintln!(
                "SKIPPED {test}: PGXL_HOME is not set; PGXL_HOME=$(scripts/server-install xl) \
                 runs it (scripts/test and CI do)"
            );
            None
        }
    }
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

/// `query` through psql on `node` (lab host `k`, `port`) of test directory `tag`.
fn on(tag: &str, k: usize, node: &str, port: u16, query: &str) -> String {
    sql(&lab_psql(tag), &node_dir(tag, k, node), port, query)
}

#[test]
fn postgres_xl_apply_registers_every_node_everywhere_and_rows_spread_over_its_datanodes() {
    let Some(home) = pgxl_home("postgres_xl_apply") else { return };
    let (_dir, inv) = deployed(&home, TAG, 41532, false);
    let on = |k: usize, node: &str, port: u16, query: &str| on(TAG, k, node, port, query);
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
    let on = |k: usize, node: &str, port: u16, query: &str| on(FAILOVER_TAG, k, node, port, query);
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

    reset(FAILOVER_TAG);
}
