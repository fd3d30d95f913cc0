//! `pgxc-deploy apply` and `plan`, end to end on lab hosts with real servers: the PostgreSQL
//! flavor with Debian's postgresql-15 binaries shipped as a prebuilt install, and the
//! Postgres-XC flavor with the install at `$PGXC_HOME` (skipped, saying so, when unset).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::*;

pub(crate) const PG_PREBUILT: &str = "/usr/lib/postgresql/15";

/// `[hosts.hK]` for a test whose installs and data live in their own directory `tag`.
pub(crate) fn test_hosts(tag: &str) -> String {
    (1..=3)
        .map(|k| {
            let root = format!("{LAB_DIR}/hosts/h{k}/data/{tag}");
            format!("[hosts.h{k}]\naddress = \"127.0.10.{k}\"\ninstall_prefix = \"{root}/install\"\ndata_root = \"{root}\"\n")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Stop every server left under the test's directories by an earlier run, then remove them.
pub(crate) fn reset(tag: &str) {
    lab();
    for k in 1..=3 {
        let root = format!("{LAB_DIR}/hosts/h{k}/data/{tag}");
        let Ok(entries) = std::fs::read_dir(&root) else { continue };
        for e in entries.flatten() {
            let dir = e.path();
            if dir.join("postmaster.pid").exists() {
                let ctl = find_ctl(&root, "pg_ctl");
                as_pgxc(&[&ctl, "-D", &dir.display().to_string(), "-m", "immediate", "stop"]);
            }
            if dir.join("gtm.pid").exists() {
                let ctl = find_ctl(&root, "gtm_ctl");
                as_pgxc(&[
                    &ctl,
                    "-Z",
                    "gtm",
                    "-D",
                    &dir.display().to_string(),
                    "-m",
                    "immediate",
                    "stop",
                ]);
            }
        }
        std::fs::remove_dir_all(&root).unwrap_or_else(|e| panic!("remove {root}: {e}"));
    }
}

/// A `pg_ctl`/`gtm_ctl` of the shipped install under `root` (wherever its layout put bin/).
pub(crate) fn find_ctl(root: &str, name: &str) -> String {
    let out = Command::new("find")
        .args([&format!("{root}/install"), "-name", name, "-type", "f"])
        .output()
        .unwrap();
    text(&out.stdout).lines().next().unwrap_or(name).to_string()
}

/// Run a command locally as the lab's cluster account (the lab hosts share this machine).
pub(crate) fn as_pgxc(args: &[&str]) -> std::process::Output {
    Command::new("runuser").args(["-u", "pgxc", "--"]).args(args).output().expect("runuser")
}

/// Run SQL on a node through its Unix socket (its data directory); returns stdout.
pub(crate) fn sql(psql: &str, data_dir: &str, port: u16, query: &str) -> String {
    let out = as_pgxc(&[
        psql,
        "-X",
        "-A",
        "-t",
        "-h",
        data_dir,
        "-p",
        &port.to_string(),
        "-U",
        "pgxc",
        "-d",
        "postgres",
        "-c",
        query,
    ]);
    assert!(out.status.success(), "{query}: {}", text(&out.stderr));
    text(&out.stdout).trim().to_string()
}

fn apply(inv: &str) -> std::process::Output {
    pgxc(&["apply", inv])
}

fn pg_inventory(dir: &Path, extra_settings: &str) -> String {
    let mut datanodes = String::new();
    for (k, standby) in [(1, 2), (2, 3), (3, 1)] {
        datanodes.push_str(&format!(
            "[[datanodes]]\nname = \"pg{k}\"\nhost = \"h{k}\"\nport = 25432\n\
             [datanodes.standby]\nhost = \"h{standby}\"\nport = 25433\n\n"
        ));
    }
    let text = format!(
        "[cluster]\nname = \"pgtest\"\nflavor = \"postgresql\"\nos_user = \"pgxc\"\n\n\
         [auth]\nmethod = \"trust\"\n\n[source]\nprebuilt = \"{PG_PREBUILT}\"\n\n\
         [settings.all]\nshared_buffers = \"16MB\"\n{extra_settings}\n\n{}\n{}\n{datanodes}",
        ssh_table(None),
        test_hosts("pgtest"),
    );
    write(dir, "pg.toml", &text)
}

pub(crate) fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < Duration::from_secs(20), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn postgresql_flavor_deploys_streams_reapplies_as_a_no_op_and_reloads_a_changed_setting() {
    reset("pgtest");
    let dir = tempdir();
    let inv = pg_inventory(dir.path(), "");
    let data = |k: usize, node: &str| format!("{LAB_DIR}/hosts/h{k}/data/pgtest/{node}");

    let out = apply(&inv);
    assert!(out.status.success(), "apply:\n{}{}", text(&out.stdout), text(&out.stderr));
    assert!(text(&out.stdout).starts_with("applied "), "{}", text(&out.stdout));
    let psql = find_ctl(&format!("{LAB_DIR}/hosts/h1/data/pgtest"), "psql");

    // Standbys stream from their primary's real address (lab connections leave from
    // 127.0.0.1, so the address is checked in the standby's primary_conninfo).
    let replicas = sql(
        &psql,
        &data(1, "pg1"),
        25432,
        "select application_name, state from pg_stat_replication",
    );
    assert_eq!(replicas, "pg1_standby|streaming");
    let conninfo =
        std::fs::read_to_string(format!("{}/postgresql.conf", data(2, "pg1_standby"))).unwrap();
    assert!(conninfo.contains("host=127.0.10.1 port=25432"), "{conninfo}");

    // A row written on a primary is readable on its standby.
    sql(
        &psql,
        &data(1, "pg1"),
        25432,
        "create table t(id int); insert into t select generate_series(1, 100)",
    );
    wait_for("the row on the standby", || {
        let out = as_pgxc(&[
            &psql,
            "-X",
            "-A",
            "-t",
            "-h",
            &data(2, "pg1_standby"),
            "-p",
            "25433",
            "-U",
            "pgxc",
            "-d",
            "postgres",
            "-c",
            "select count(*) from t",
        ]);
        text(&out.stdout).trim() == "100"
    });
    assert_eq!(sql(&psql, &data(2, "pg1_standby"), 25433, "select pg_is_in_recovery()"), "t");

    // A second apply changes nothing and restarts nothing.
    let started = |k: usize, node: &str, port: u16| {
        sql(&psql, &data(k, node), port, "select pg_postmaster_start_time()")
    };
    let before = (started(1, "pg1", 25432), started(3, "pg2_standby", 25433));
    let out = apply(&inv);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("nothing to do: pgtest already matches"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!((started(1, "pg1", 25432), started(3, "pg2_standby", 25433)), before);

    // A changed setting: plan shows the diff and a reload, apply writes and reloads it.
    let inv = pg_inventory(dir.path(), "work_mem = \"8MB\"");
    let out = pgxc(&["plan", &inv]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert!(shown.contains("+work_mem = '8MB'"), "{shown}");
    assert!(shown.contains("pg1 on h1: reload (work_mem)"), "{shown}");
    assert_eq!(sql(&psql, &data(1, "pg1"), 25432, "show work_mem"), "4MB", "plan changed nothing");
    let out = apply(&inv);
    assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(sql(&psql, &data(1, "pg1"), 25432, "show work_mem"), "8MB");
    assert_eq!(sql(&psql, &data(3, "pg2_standby"), 25433, "show work_mem"), "8MB");
    assert_eq!(started(1, "pg1", 25432), before.0, "a reload, not a restart");

    reset("pgtest");
}

fn xc_inventory(dir: &Path, pgxc_home: &str) -> String {
    let mut nodes = String::from(
        "[gtm]\nhost = \"h1\"\nport = 26666\n\n\
         [[coordinators]]\nname = \"coord1\"\nhost = \"h1\"\nport = 25532\npooler_port = 26667\n\n\
         [[coordinators]]\nname = \"coord2\"\nhost = \"h2\"\nport = 25532\npooler_port = 26668\n\n",
    );
    for (k, standby) in [(1, 2), (2, 3), (3, 1)] {
        nodes.push_str(&format!(
            "[[datanodes]]\nname = \"dn{k}\"\nhost = \"h{k}\"\nport = 25542\n\
             [datanodes.standby]\nhost = \"h{standby}\"\nport = 25543\n\n"
        ));
    }
    let text = format!(
        "[cluster]\nname = \"xctest\"\nflavor = \"postgres-xc\"\nos_user = \"pgxc\"\n\n\
         [auth]\nmethod = \"trust\"\n\n[source]\nprebuilt = \"{pgxc_home}\"\n\n\
         [settings.all]\nshared_buffers = \"16MB\"\n\n{}\n{}\n{nodes}",
        ssh_table(None),
        test_hosts("xctest"),
    );
    write(dir, "xc.toml", &text)
}

#[test]
fn postgres_xc_flavor_deploys_registers_every_node_and_distributes_rows() {
    let Ok(pgxc_home) = std::env::var("PGXC_HOME") else {
        eprintln!(
            "SKIPPED postgres_xc_flavor_deploys...: set PGXC_HOME to an installed Postgres-XC (e.g. /opt/pgxc) to run it"
        );
        return;
    };
    reset("xctest");
    let dir = tempdir();
    let inv = xc_inventory(dir.path(), &pgxc_home);
    let data = |k: usize, node: &str| format!("{LAB_DIR}/hosts/h{k}/data/xctest/{node}");

    let out = apply(&inv);
    assert!(out.status.success(), "apply:\n{}{}", text(&out.stdout), text(&out.stderr));
    let psql = find_ctl(&format!("{LAB_DIR}/hosts/h1/data/xctest"), "psql");
    assert!(
        sql(&psql, &data(1, "coord1"), 25532, "select pgxc_version()")
            .starts_with("Postgres-XC 1.")
    );

    // Every coordinator lists every coordinator and datanode at its real address, no standby.
    let want = "coord1|C|127.0.10.1|25532\ncoord2|C|127.0.10.2|25532\n\
                dn1|D|127.0.10.1|25542\ndn2|D|127.0.10.2|25542\ndn3|D|127.0.10.3|25542";
    let query = "select node_name, node_type, node_host, node_port from pgxc_node order by 1";
    assert_eq!(sql(&psql, &data(1, "coord1"), 25532, query), want);
    assert_eq!(sql(&psql, &data(2, "coord2"), 25532, query), want);

    // Rows spread over every datanode; both coordinators see them all.
    // One statement per query: sent as one string, `create ...; insert ... select` makes X2
    // (1.3devel) insert every row four times (seen by hand: 1200 rows, 300 distinct).
    let coord1 = data(1, "coord1");
    sql(&psql, &coord1, 25532, "create table t(id int) distribute by hash(id)");
    sql(&psql, &coord1, 25532, "insert into t select generate_series(1, 300)");
    assert_eq!(sql(&psql, &data(1, "coord1"), 25532, "select count(*) from t"), "300");
    assert_eq!(sql(&psql, &data(2, "coord2"), 25532, "select count(*) from t"), "300");
    let mut total = 0;
    for dn in ["dn1", "dn2", "dn3"] {
        let n: u32 = sql(
            &psql,
            &data(1, "coord1"),
            25532,
            &format!("execute direct on ({dn}) 'select count(*) from t'"),
        )
        .parse()
        .unwrap();
        assert!(n > 0, "{dn} holds no rows");
        total += n;
    }
    assert_eq!(total, 300);

    // Standbys stream from their datanode.
    let replicas = sql(
        &psql,
        &data(2, "dn2"),
        25542,
        "select application_name, state from pg_stat_replication",
    );
    assert_eq!(replicas, "dn2_standby|streaming");
    let recovery =
        std::fs::read_to_string(format!("{}/recovery.conf", data(3, "dn2_standby"))).unwrap();
    assert!(recovery.contains("host=127.0.10.2 port=25542"), "{recovery}");

    let out = apply(&inv);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("nothing to do: xctest already matches"),
        "{}",
        text(&out.stdout)
    );

    reset("xctest");
}
