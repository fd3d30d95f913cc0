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

/// GTM and coord1 on h1, coord2 and dn1 on h2, dn2 on h3: the manual procedure's topology,
/// with the datanode names XL's regression suite expects.
fn inventory(dir: &Path, home: &str) -> String {
    let nodes = "[gtm]\nhost = \"h1\"\nport = 27666\n\n\
         [[coordinators]]\nname = \"coord1\"\nhost = \"h1\"\nport = 27532\npooler_port = 27667\n\n\
         [[coordinators]]\nname = \"coord2\"\nhost = \"h2\"\nport = 27532\npooler_port = 27668\n\n\
         [[datanodes]]\nname = \"dn1\"\nhost = \"h2\"\nport = 27542\npooler_port = 27543\n\n\
         [[datanodes]]\nname = \"dn2\"\nhost = \"h3\"\nport = 27542\npooler_port = 27543\n";
    let text = xc_toml(TAG, home, XC_MD5, nodes).replace("\"postgres-xc\"", "\"postgres-xl\"");
    write(dir, "xc-password", "xc s3cret\n");
    write(dir, "xl.toml", &text)
}

#[test]
fn postgres_xl_apply_registers_every_node_everywhere_and_rows_spread_over_its_datanodes() {
    let Some(home) = pgxl_home("postgres_xl_apply") else { return };
    reset(TAG);
    let dir = tempdir();
    let inv = inventory(dir.path(), &home);
    let out = pgxc(&["apply", &inv]);
    assert!(out.status.success(), "apply: {}", shown(&out));
    let psql = lab_psql(TAG);
    let on = |k: usize, node: &str, port: u16, query: &str| {
        sql(&psql, &node_dir(TAG, k, node), port, query)
    };
    let version = on(1, "coord1", 27532, "select version()");
    assert!(version.contains("(Postgres-XL 10r1.1)"), "{version}");

    // Every coordinator and every datanode lists every node at its real address, each typed
    // as what it is (a fresh XL datanode lists itself as a coordinator on localhost:5432).
    let want = "coord1|C|127.0.10.1|27532\ncoord2|C|127.0.10.2|27532\n\
                dn1|D|127.0.10.2|27542\ndn2|D|127.0.10.3|27542";
    let query = "select node_name, node_type, node_host, node_port from pgxc_node order by 1";
    assert_eq!(on(1, "coord1", 27532, query), want);
    assert_eq!(on(2, "coord2", 27532, query), want);
    assert_eq!(on(2, "dn1", 27542, query), want);
    assert_eq!(on(3, "dn2", 27542, query), want);

    // Written through coord1, read through coord2, spread over both datanodes; a replicated
    // table on both.
    on(1, "coord1", 27532, "create table t (id int, v text) distribute by hash(id)");
    on(1, "coord1", 27532, "insert into t select g, 'row ' || g from generate_series(1, 1000) g");
    on(1, "coord1", 27532, "create table r (id int) distribute by replication");
    on(1, "coord1", 27532, "insert into r select generate_series(1, 10)");
    assert_eq!(on(2, "coord2", 27532, "select count(*) from t"), "1000");
    let mut total = 0;
    for dn in ["dn1", "dn2"] {
        let direct =
            |table: &str| format!("execute direct on ({dn}) 'select count(*) from {table}'");
        let n: u32 = on(2, "coord2", 27532, &direct("t")).parse().unwrap();
        assert!(n > 300, "{dn} holds {n} of 1000 rows");
        total += n;
        assert_eq!(on(2, "coord2", 27532, &direct("r")), "10", "{dn}");
    }
    assert_eq!(total, 1000);
    // A join across datanodes (XL datanodes exchange rows with each other).
    let joined = "select count(*) from t join r on t.id = r.id";
    assert_eq!(on(2, "coord2", 27532, joined), "10");

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

    reset(TAG);
}
