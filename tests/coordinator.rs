//! Losing a coordinator (needs `PGXC_HOME`, an installed Postgres-XC / Postgres-X2): GTM, two
//! coordinators and two datanodes over three lab hosts; coord2's processes are killed (its
//! machine is lost), DDL through coord1 fails, `remove INVENTORY coord2` drops it from
//! coord1's pgxc_node, and DDL works again; status says it was removed; every command leaves
//! it out. Tag `coordrm`, ports 37xxx.

use std::path::Path;

use crate::support::*;

const TAG: &str = "coordrm";
const COORD: u16 = 37432;

fn inventory(dir: &Path) -> String {
    let mut nodes = "[gtm]\nhost = \"h3\"\nport = 37666\n\n".to_string();
    for k in 1..=2 {
        nodes.push_str(&format!(
            "[[coordinators]]\nname = \"coord{k}\"\nhost = \"h{k}\"\nport = {COORD}\n\
             pooler_port = {}\n\n\
             [[datanodes]]\nname = \"dn{k}\"\nhost = \"h{k}\"\nport = 37442\n\n",
            37450 + k
        ));
    }
    write(dir, "coord.toml", &xc_toml(TAG, &pgxc_home(), "method = \"trust\"", &nodes))
}

fn coord1(query: &str) -> std::process::Output {
    psql_out(&lab_psql(TAG), &node_dir(TAG, 1, "coord1"), COORD, query, None)
}

fn coord1_ok(query: &str) -> String {
    let out = coord1(query);
    assert!(out.status.success(), "coord1: {query}: {}", text(&out.stderr));
    text(&out.stdout).trim().to_string()
}

#[test]
fn postgres_xc_remove_a_lost_coordinator_and_ddl_works_again() {
    reset(TAG);
    let dir = tempdir();
    let inv = inventory(dir.path());
    let out = pgxc(&["apply", &inv]);
    assert!(out.status.success(), "apply: {}", shown(&out));
    coord1_ok("create table before_loss (id int) distribute by hash(id)");
    coord1_ok("insert into before_loss select generate_series(1, 100)");

    // coord2's machine is lost: every process of it, at once.
    let data = node_dir(TAG, 2, "coord2");
    let pid = postmaster_pid(&data);
    kill("-KILL", pid);
    for orphan in processes_in(&data) {
        kill("-KILL", orphan);
    }
    wait_for("coord2 to die", || process_gone(pid));
    let out = coord1("create table during_loss (id int)");
    assert!(!out.status.success(), "DDL needs every coordinator: {}", shown(&out));

    let out = pgxc(&["remove", &inv, "coord2"]);
    assert!(out.status.success(), "remove: {}", shown(&out));
    let said = text(&out.stdout);
    eprintln!("{said}");
    assert!(said.contains("coord2 on h2: removed (recorded in "), "{said}");
    assert!(said.contains("coord1 on h1: pgxc_node = "), "{said}");
    assert!(said.contains("coord1 on h1: await: DDL through it works"), "{said}");
    assert!(said.contains("remove coord2: dropped from the pgxc_node of coord1"), "{said}");

    // DDL works again; the table from before the loss is whole; coord2 is in no pgxc_node.
    coord1_ok("create table after_loss (id int) distribute by hash(id)");
    coord1_ok("insert into after_loss select generate_series(1, 10)");
    assert_eq!(coord1_ok("select count(*) from before_loss"), "100");
    assert_eq!(coord1_ok("select count(*) from pgxc_node where node_name = 'coord2'"), "0");

    // status: healthy, coord2 said to be removed; start leaves it out.
    let (code, rows) = status(&inv);
    assert_eq!(code, 0, "{rows:#?}");
    assert_eq!(rows["coord2"]["removed"], true, "{rows:#?}");
    let out = pgxc(&["status", &inv]);
    assert!(
        text(&out.stdout).contains("coord2: removed by `pgxc-deploy remove`"),
        "{}",
        shown(&out)
    );
    let out = pgxc(&["start", &inv]);
    assert!(out.status.success(), "{}", shown(&out));
    assert!(process_gone(pid) && processes_in(&data).is_empty(), "coord2 stays down");
    let out = pgxc(&["remove", &inv, "coord1"]);
    assert_eq!(out.status.code(), Some(2), "the last coordinator stays: {}", shown(&out));
    assert!(text(&out.stderr).contains("it is the last coordinator"), "{}", shown(&out));

    // Its machine is back: apply rebuilds it from coord1's catalog (its own is stale: it lacks
    // after_loss) and registers it everywhere.
    let out = pgxc(&["apply", &inv]);
    assert!(out.status.success(), "apply: {}", shown(&out));
    let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
    eprintln!("{said}");
    assert!(said.contains("coord2 on h2: join: catalog from coord1"), "{said}");
    let coord2 = |q: &str| psql_out(&lab_psql(TAG), &data, COORD, q, None);
    let coord2_ok = |q: &str| {
        let out = coord2(q);
        assert!(out.status.success(), "coord2: {q}: {}", text(&out.stderr));
        text(&out.stdout).trim().to_string()
    };
    assert_eq!(coord2_ok("select count(*) from before_loss"), "100");
    assert_eq!(coord2_ok("select count(*) from after_loss"), "10");
    coord2_ok("create table after_readd (id int) distribute by hash(id)");
    coord2_ok("insert into after_readd values (1)");
    assert_eq!(coord1_ok("select count(*) from after_readd"), "1");
    coord1_ok("create table from_coord1 (id int)");
    assert_eq!(coord2_ok("select count(*) from from_coord1"), "0");
    let (code, rows) = status(&inv);
    assert_eq!(code, 0, "{rows:#?}");
    assert_eq!(rows["coord2"]["pgxc_node"], "matches", "{rows:#?}");
    assert!(rows["coord2"].get("removed").is_none(), "{rows:#?}");
    let out = pgxc(&["apply", &inv]);
    assert!(text(&out.stdout).contains("nothing to do"), "{}", shown(&out));

    reset(TAG);
}
