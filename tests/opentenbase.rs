//! OpenTenBase (`flavor = "opentenbase"`) on lab hosts, from the install that
//! `scripts/opentenbase-build` builds (`OTB_HOME`). Its source is not in ../shared/sources, so
//! CI cannot build it: without `OTB_HOME` each test prints a SKIPPED line and returns.
//! Ports 23xxx and 24xxx: below the ephemeral range, where a server's port is never taken by
//! a client connection's source port (docs/opentenbase.md).

use std::path::Path;

use crate::support::*;

/// The install `OTB_HOME` names, or `None` after a SKIPPED line naming what to run.
fn otb_home(test: &str) -> Option<String> {
    install_home(
        "OTB_HOME",
        test,
        "OTB_HOME=$(scripts/opentenbase-build) runs it (OpenTenBase's source is not in ../shared/sources, so CI cannot build it)",
    )
}

/// GTM and coord1 on h1, coord2 and dn1 on h2, dn2 on h3, from port `base` up, in test
/// directory `tag`; `standby`: dn1 has a streaming standby on h3. Every coordinator and
/// datanode has a pooler and a forward process; dn1 is the primary datanode.
fn inventory(dir: &Path, home: &str, tag: &str, base: u16, standby: bool) -> String {
    let (gtm, pooler, forward, dn) = (base + 134, base + 135, base + 136, base + 10);
    let coordinator = |k: u16| {
        format!(
            "[[coordinators]]\nname = \"coord{k}\"\nhost = \"h{k}\"\nport = {base}\n\
             pooler_port = {pooler}\nforward_port = {forward}\n\n"
        )
    };
    let datanode = |name: &str, host: &str| {
        format!(
            "[[datanodes]]\nname = \"{name}\"\nhost = \"{host}\"\nport = {dn}\n\
             pooler_port = {}\nforward_port = {}\n",
            dn + 1,
            dn + 4
        )
    };
    let mut nodes = format!("[gtm]\nhost = \"h1\"\nport = {gtm}\n\n") + &coordinator(1);
    nodes += &coordinator(2);
    nodes += &datanode("dn1", "h2");
    if standby {
        nodes.push_str(&format!(
            "[datanodes.standby]\nhost = \"h3\"\nport = {}\npooler_port = {}\nforward_port = {}\n",
            dn + 2,
            dn + 3,
            dn + 5
        ));
    }
    nodes += "\n";
    nodes += &datanode("dn2", "h3");
    let flavor = "flavor = \"opentenbase\"\nprimary_datanode = \"dn1\"";
    let text = xc_toml(tag, home, XC_MD5, &nodes).replace("flavor = \"postgres-xc\"", flavor);
    write(dir, "xc-password", "xc s3cret\n");
    write(dir, "otb.toml", &text)
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

const TAG: &str = "otbtest";

/// Writers through coord1 (h1) and coord2 (h2), both at `port`, with the install's psql.
fn writers(home: &str, port: u16) -> Load {
    let lib = format!("{home}/lib");
    let coordinators = [("127.0.10.1", port), ("127.0.10.2", port)];
    let env = [("LD_LIBRARY_PATH", lib.as_str()), ("PGPASSWORD", "xc s3cret")];
    Load::start(&format!("{home}/bin/psql"), &coordinators, &env)
}

#[test]
fn opentenbase_apply_registers_every_node_with_its_forward_port_and_shards_over_the_datanodes() {
    let Some(home) = otb_home("opentenbase_apply") else { return };
    let (dir, inv) = deployed(&home, TAG, 23532, false);
    let on = |k: usize, node: &str, port: u16, query: &str| on_node(TAG, k, node, port, query);
    let version = on(1, "coord1", 23532, "select version()");
    assert!(version.contains("OpenTenBase"), "{version}");

    // Every coordinator and every datanode lists every node at its real address with its
    // forward port, dn1 primary; the GTM's row, which initdb wrote, names the GTM's address.
    let want = "coord1|C|127.0.10.1|23532|23668|f\ncoord2|C|127.0.10.2|23532|23668|f\n\
                dn1|D|127.0.10.2|23542|23546|t\ndn2|D|127.0.10.3|23542|23546|f\n\
                gtm|G|127.0.10.1|23666|0|t";
    let query = "select node_name, node_type, node_host, node_port, node_forward_port, \
                 nodeis_primary from pgxc_node order by 1";
    for (k, node, port) in
        [(1, "coord1", 23532), (2, "coord2", 23532), (2, "dn1", 23542), (3, "dn2", 23542)]
    {
        assert_eq!(on(k, node, port, query), want, "{node}");
    }
    // The default node group holds both datanodes, and the shard map is spread over them.
    let group = "select group_name || ' ' || default_group || ' ' || (select string_agg(node_name, \
                 ',' order by node_name) from pgxc_node n where n.oid = any(g.group_members)) \
                 from pgxc_group g";
    assert_eq!(on(2, "coord2", 23532, group), "default_group 1 dn1,dn2");
    let shards = "select count(distinct primarycopy) || ' ' || count(*) from pgxc_shard_map";
    assert_eq!(on(2, "dn1", 23542, shards), "2 4096");

    // Written through coord1, read through coord2, sharded over both datanodes; a replicated
    // table on both; a join that moves rows between datanodes (through the forward
    // processes).
    on(1, "coord1", 23532, "create table t (id int, v text) distribute by shard(id)");
    on(1, "coord1", 23532, "insert into t select g, 'row ' || g from generate_series(1, 1000) g");
    on(1, "coord1", 23532, "create table r (id int) distribute by replication");
    on(1, "coord1", 23532, "insert into r select generate_series(1, 10)");
    assert_eq!(on(2, "coord2", 23532, "select count(*), sum(id) from t"), "1000|500500");
    let mut total = 0;
    for (k, dn) in [(2, "dn1"), (3, "dn2")] {
        let n: u32 = on(k, dn, 23542, "select count(*) from t").parse().unwrap();
        assert!(n > 300, "{dn} holds {n} of 1000 rows");
        total += n;
        assert_eq!(on(k, dn, 23542, "select count(*) from r"), "10", "{dn}");
    }
    assert_eq!(total, 1000);
    let joined = "select count(*) from t a join t b on a.v = b.v";
    assert_eq!(on(2, "coord2", 23532, joined), "1000");

    // The second apply changes nothing; status sees every node healthy, pgxc_node matching.
    let out = pgxc(&["apply", &inv]);
    assert!(out.status.success(), "{}", shown(&out));
    assert!(
        text(&out.stdout).starts_with("nothing to do: otbtest already matches"),
        "{}",
        shown(&out)
    );
    let (code, rows) = status(&inv);
    assert_eq!(code, 0, "{rows:#?}");
    assert_eq!(rows.len(), 5);
    for (name, row) in &rows {
        assert_eq!(row["healthy"], true, "{name}: {row}");
    }
    for node in ["coord1", "coord2", "dn1", "dn2"] {
        assert_eq!(rows[node]["pgxc_node"], "matches", "{node}: {}", rows[node]);
    }

    // A moved forward port is drift that status names and apply fixes everywhere.
    let text_now = std::fs::read_to_string(&inv).unwrap();
    let moved = text_now.replacen("forward_port = 23546\n", "forward_port = 23547\n", 1);
    std::fs::write(&inv, &moved).unwrap();
    let out = pgxc(&["apply", &inv]);
    assert!(out.status.success(), "{}", shown(&out));
    let dn1_row = "select node_port || ':' || node_forward_port from pgxc_node where node_name = \
                   'dn1'";
    for (k, node, port) in
        [(1, "coord1", 23532), (2, "coord2", 23532), (2, "dn1", 23542), (3, "dn2", 23542)]
    {
        assert_eq!(on(k, node, port, dn1_row), "23542:23547", "{node}");
    }
    assert_eq!(on(1, "coord1", 23532, joined), "1000");

    // Another datanode is refused before anything changes: OpenTenBase's node group cannot
    // take it with its rows.
    let grown = format!(
        "{moved}\n[[datanodes]]\nname = \"dn3\"\nhost = \"h1\"\nport = 23542\npooler_port = \
         23543\nforward_port = 23546\n"
    );
    let grown_inv = write(dir.path(), "grown.toml", &grown);
    let out = pgxc(&["apply", &grown_inv]);
    assert!(!out.status.success(), "{}", shown(&out));
    assert!(
        shown(&out).contains("does not add or remove opentenbase datanodes"),
        "{}",
        shown(&out)
    );
    assert!(!Path::new(&node_dir(TAG, 1, "dn3")).exists());

    // coord2 is lost and removed: DDL works through coord1 and no node lists coord2. apply
    // refuses to re-add it (OpenTenBase's catalog copy fails), changing nothing; without it in
    // the inventory, the cluster runs on.
    let pid = postmaster_pid(&node_dir(TAG, 2, "coord2"));
    kill("-KILL", pid);
    wait_for("coord2's postmaster to die", || process_gone(pid));
    let out = pgxc(&["remove", &inv, "coord2"]);
    assert!(out.status.success(), "remove: {}", shown(&out));
    on(1, "coord1", 23532, "create table after_remove (x int) distribute by shard(x)");
    let names = "select string_agg(node_name::text, ',' order by node_name) from pgxc_node";
    for (k, node, port) in [(1, "coord1", 23532), (2, "dn1", 23542), (3, "dn2", 23542)] {
        assert_eq!(on(k, node, port, names), "coord1,dn1,dn2,gtm", "{node}");
    }
    let out = pgxc(&["apply", &inv]);
    assert!(!out.status.success(), "{}", shown(&out));
    assert!(
        shown(&out).contains("coord2 would join the running opentenbase cluster"),
        "{}",
        shown(&out)
    );
    let coordinator2 = "[[coordinators]]\nname = \"coord2\"\nhost = \"h2\"\nport = 23532\n\
                        pooler_port = 23667\nforward_port = 23668\n\n";
    assert!(moved.contains(coordinator2), "{moved}");
    std::fs::write(&inv, moved.replace(coordinator2, "")).unwrap();
    let out = pgxc(&["apply", &inv]);
    assert!(out.status.success(), "apply without coord2: {}", shown(&out));
    let (code, rows) = status(&inv);
    assert_eq!(code, 0, "{rows:#?}");
    assert_eq!(on(1, "coord1", 23532, joined), "1000");

    reset(TAG);
}

const FAILOVER_TAG: &str = "otbfailover";

#[test]
fn opentenbase_failover_switchover_and_rolls_keep_every_committed_row() {
    let Some(home) = otb_home("opentenbase_failover") else { return };
    let (_dir, inv) = deployed(&home, FAILOVER_TAG, 24532, true);
    let on =
        |k: usize, node: &str, port: u16, query: &str| on_node(FAILOVER_TAG, k, node, port, query);
    let (code, rows) = status(&inv);
    assert_eq!(code, 0, "{rows:#?}");
    assert_eq!(rows["dn1_standby"]["in_recovery"], true, "{}", rows["dn1_standby"]);

    // Switchover and back under writes through both coordinators.
    on(1, "coord1", 24532, "create table roll (id bigint) distribute by shard(id)");
    let load = writers(&home, 24532);
    std::thread::sleep(std::time::Duration::from_secs(1));
    let dn1_row = "select node_host || ':' || node_port || ':' || node_forward_port from \
                   pgxc_node where node_name = 'dn1'";
    let everywhere = [(1, "coord1", 24532), (2, "coord2", 24532), (3, "dn2", 24542)];
    for (to, at) in [("dn1_standby", "127.0.10.3:24544:24547"), ("dn1", "127.0.10.2:24542:24546")] {
        let out = pgxc(&["switchover", "--yes", &inv, "dn1"]);
        assert!(out.status.success(), "switchover to {to}: {}", shown(&out));
        for (k, node, port) in everywhere {
            assert_eq!(on(k, node, port, dn1_row), at, "{node} after the switchover to {to}");
        }
        let (code, rows) = status(&inv);
        assert_eq!(code, 0, "after the switchover to {to}: {rows:#?}");
    }
    std::thread::sleep(std::time::Duration::from_secs(1));
    let written = load.finish();
    assert_committed_rows_present(&written, &ids(|q| on(2, "coord2", 24532, q)));

    // kill -9 of dn1, failover: every committed row, dn1 re-pointed with its forward port on
    // every node that lists it, the new primary included.
    on(1, "coord1", 24532, "create table t (id int, v text) distribute by shard(id)");
    on(1, "coord1", 24532, "insert into t select g, 'row ' || g from generate_series(1, 1000) g");
    wait_for("dn1_standby to replay every row", || {
        let (_, rows) = status(&inv);
        rows["dn1_standby"]["replication"]["lag_bytes"] == 0
    });
    let pid = postmaster_pid(&node_dir(FAILOVER_TAG, 2, "dn1"));
    kill("-KILL", pid);
    wait_for("dn1's postmaster to die", || process_gone(pid));
    let out = pgxc(&["failover", "--yes", &inv, "dn1"]);
    assert!(out.status.success(), "failover: {}", shown(&out));
    let said = text(&out.stdout);
    assert!(said.contains("dn1_standby on h3 (127.0.10.3:24544) is the primary"), "{said}");
    for (k, node, port) in
        [(1, "coord1", 24532), (2, "coord2", 24532), (3, "dn2", 24542), (3, "dn1_standby", 24544)]
    {
        assert_eq!(on(k, node, port, dn1_row), "127.0.10.3:24544:24547", "{node}");
    }
    assert_eq!(on(2, "coord2", 24532, "select count(*) from t"), "1000");
    let joined = "select count(*) from t a join t b on a.v = b.v";
    assert_eq!(on(2, "coord2", 24532, joined), "1000");
    on(2, "coord2", 24532, "insert into t values (1001, 'after')");
    assert_eq!(on(1, "coord1", 24532, "select count(*) from t"), "1001");

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
    assert_eq!(rows["dn1_standby"]["pgxc_node"], "matches", "{}", rows["dn1_standby"]);
    let out = pgxc(&["apply", &inv]);
    assert!(text(&out.stdout).starts_with("nothing to do"), "{}", shown(&out));

    // A rolling restart under writes, then one by switchover that hands dn1 back.
    for how in [&["--rolling"][..], &["--rolling", "--switchover"][..]] {
        let load = writers(&home, 24532);
        std::thread::sleep(std::time::Duration::from_secs(1));
        let mut args = vec!["restart", inv.as_str()];
        args.extend(how);
        let out = pgxc(&args);
        std::thread::sleep(std::time::Duration::from_secs(1));
        let written = load.finish();
        assert!(out.status.success(), "restart {how:?}: {}", shown(&out));
        let (code, rows) = status(&inv);
        assert_eq!(code, 0, "healthy after restart {how:?}: {rows:#?}");
        assert_committed_rows_present(&written, &ids(|q| on(1, "coord1", 24532, q)));
    }
    for (k, node, port) in everywhere {
        assert_eq!(on(k, node, port, dn1_row), "127.0.10.2:24542:24546", "{node} after the roll");
    }
    assert_eq!(on(2, "coord2", 24532, joined), "1001");

    // stop, then apply starts the stopped cluster (its node group unread until it runs), then
    // changes nothing; stop, start: every row; clean: every node's data directory gone, no
    // server left.
    let out = pgxc(&["stop", &inv]);
    assert!(out.status.success(), "stop: {}", shown(&out));
    let out = pgxc(&["apply", &inv]);
    assert!(out.status.success(), "apply on the stopped cluster: {}", shown(&out));
    let out = pgxc(&["apply", &inv]);
    assert!(text(&out.stdout).starts_with("nothing to do"), "{}", shown(&out));
    let out = pgxc(&["stop", &inv]);
    assert!(out.status.success(), "stop: {}", shown(&out));
    let out = pgxc(&["start", &inv]);
    assert!(out.status.success(), "start: {}", shown(&out));
    assert_eq!(on(1, "coord1", 24532, joined), "1001");
    let out = pgxc(&["clean", &inv, "--yes"]);
    assert!(out.status.success(), "clean: {}", shown(&out));
    for (k, node) in
        [(1, "gtm"), (1, "coord1"), (2, "coord2"), (2, "dn1"), (3, "dn2"), (3, "dn1_standby")]
    {
        assert!(!Path::new(&node_dir(FAILOVER_TAG, k, node)).exists(), "{node}");
    }
    let (code, rows) = status(&inv);
    assert_ne!(code, 0);
    for (name, row) in &rows {
        assert_ne!(row["state"], "running", "{name}: {row}");
    }

    reset(FAILOVER_TAG);
}

const GTM_TAG: &str = "otbgtm";

/// A GTM standby on h2: kill -9 of the active GTM under writes through both coordinators,
/// failover (the GTM's pgxc_node row re-pointed live on every coordinator and datanode, no
/// restart), every committed row kept; apply makes the old GTM the standby; switchover back.
#[test]
fn opentenbase_gtm_failover_repoints_every_catalog_and_loses_no_commit() {
    let Some(home) = otb_home("opentenbase_gtm_failover") else { return };
    reset(GTM_TAG);
    let dir = tempdir();
    let inv = inventory(dir.path(), &home, GTM_TAG, 19532, false);
    let text_now = std::fs::read_to_string(&inv).unwrap();
    let gtm = "[gtm]\nhost = \"h1\"\nport = 19666\n";
    assert!(text_now.contains(gtm), "{text_now}");
    let with_standby = format!("{gtm}[gtm.standby]\nhost = \"h2\"\nport = 19666\n");
    std::fs::write(&inv, text_now.replace(gtm, &with_standby)).unwrap();
    let out = pgxc(&["apply", &inv]);
    assert!(out.status.success(), "apply: {}", shown(&out));
    let on = |k: usize, node: &str, port: u16, query: &str| on_node(GTM_TAG, k, node, port, query);
    let (code, rows) = status(&inv);
    assert_eq!(code, 0, "{rows:#?}");
    assert_eq!(rows["gtm_standby"]["in_recovery"], true, "{rows:#?}");
    assert_eq!(rows["gtm"]["in_recovery"], false, "{rows:#?}");

    on(1, "coord1", 19532, "create table roll (id bigint) distribute by shard(id)");
    let load = writers(&home, 19532);
    std::thread::sleep(std::time::Duration::from_secs(2));
    let pid_file = format!("{}/gtm.pid", node_dir(GTM_TAG, 1, "gtm"));
    let pid: i32 =
        std::fs::read_to_string(&pid_file).unwrap().lines().next().unwrap().parse().unwrap();
    kill("-KILL", pid);
    wait_for("the GTM to die", || process_gone(pid));
    let out = pgxc(&["failover", "--yes", &inv, "gtm"]);
    std::thread::sleep(std::time::Duration::from_secs(1));
    let written = load.finish();
    assert!(out.status.success(), "failover gtm: {}", shown(&out));
    let said = text(&out.stdout);
    assert!(said.contains("re-point the GTM's row in the pgxc_node"), "{said}");
    let gtm_row = "select node_host || ':' || node_port from pgxc_node where node_type = 'G'";
    let everywhere =
        [(1, "coord1", 19532), (2, "coord2", 19532), (2, "dn1", 19542), (3, "dn2", 19542)];
    for (k, node, port) in everywhere {
        assert_eq!(on(k, node, port, gtm_row), "127.0.10.2:19666", "{node}");
    }
    assert_committed_rows_present(&written, &ids(|q| on(2, "coord2", 19532, q)));
    for (k, id) in [(1, -1), (2, -2)] {
        on(k, &format!("coord{k}"), 19532, &format!("insert into roll values ({id})"));
    }
    let after = "select count(*) from roll where id < 0";
    assert_eq!(on(1, "coord1", 19532, after), "2");

    // apply makes the old GTM the standby of the new one; a second apply does nothing.
    let out = pgxc(&["apply", &inv]);
    assert!(out.status.success(), "apply: {}", shown(&out));
    let (code, rows) = status(&inv);
    assert_eq!(code, 0, "{rows:#?}");
    assert_eq!(rows["gtm"]["in_recovery"], true, "the old GTM runs as the standby: {rows:#?}");
    let out = pgxc(&["apply", &inv]);
    assert!(text(&out.stdout).contains("nothing to do"), "{}", shown(&out));

    // Switchover: the GTM goes back to h1, losing nothing.
    let out = pgxc(&["switchover", "--yes", &inv, "gtm"]);
    assert!(out.status.success(), "switchover gtm: {}", shown(&out));
    for (k, node, port) in everywhere {
        assert_eq!(on(k, node, port, gtm_row), "127.0.10.1:19666", "{node}");
    }
    for (k, id) in [(1, -3), (2, -4)] {
        on(k, &format!("coord{k}"), 19532, &format!("insert into roll values ({id})"));
    }
    assert_eq!(on(2, "coord2", 19532, after), "4");
    let (code, rows) = status(&inv);
    assert_eq!(code, 0, "{rows:#?}");
    assert_eq!(rows["gtm_standby"]["in_recovery"], true, "{rows:#?}");

    reset(GTM_TAG);
}
