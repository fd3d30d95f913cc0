//! Growing a running Postgres-XC cluster (needs `PGXC_HOME`, an installed Postgres-XC /
//! Postgres-X2): GTM, two coordinators and two datanodes over three lab hosts, tables of every
//! distribution with 1000 rows each; a third datanode added to the inventory, and one `apply`
//! copies the catalog into it, registers it and spreads every table over it, keeping every row.
//! Tag `dngrow`, ports 34xxx.

use std::path::Path;

use crate::support::*;

const TAG: &str = "dngrow";
const COORD: u16 = 34432;

fn inventory(dir: &Path, datanodes: usize) -> String {
    let mut nodes = "[gtm]\nhost = \"h3\"\nport = 34666\n\n".to_string();
    for k in 1..=2 {
        nodes.push_str(&format!(
            "[[coordinators]]\nname = \"coord{k}\"\nhost = \"h{k}\"\nport = {COORD}\n\
             pooler_port = {}\n\n",
            34450 + k
        ));
    }
    for k in 1..=datanodes {
        nodes.push_str(&format!(
            "[[datanodes]]\nname = \"dn{k}\"\nhost = \"h{k}\"\nport = 34442\n\n"
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

/// Tables: name, how they are distributed.
const TABLES: [(&str, &str); 5] = [
    ("s1.h", "distribute by hash(id)"),
    ("m", "distribute by modulo(id)"),
    ("rr", "distribute by roundrobin"),
    ("r", "distribute by replication"),
    ("only1", "to node (dn1)"),
];

#[test]
fn postgres_xc_apply_adds_a_datanode_and_spreads_every_table_over_it() {
    reset(TAG);
    let dir = tempdir();
    let out = pgxc(&["apply", &inventory(dir.path(), 2)]);
    assert!(out.status.success(), "apply: {}", shown(&out));
    through(1, "create schema s1");
    for (table, how) in TABLES {
        through(1, &format!("create table {table} (id int, v text) {how}"));
        through(
            1,
            &format!("insert into {table} select g, 'row ' || g from generate_series(1, 1000) g"),
        );
    }

    let inv = inventory(dir.path(), 3);
    let out = pgxc(&["plan", &inv]);
    assert!(out.status.success(), "plan: {}", shown(&out));
    let plan = text(&out.stdout);
    assert!(plan.contains("dn3 on h3: join: catalog from dn1"), "{plan}");
    for table in ["s1.h", "public.m", "public.rr", "public.r"] {
        assert!(plan.contains(&format!("redistribute {table}: ADD NODE (dn3)")), "{plan}");
    }
    assert!(!plan.contains("public.only1"), "a table placed on dn1 only stays there: {plan}");

    let out = pgxc(&["apply", &inv]);
    assert!(out.status.success(), "apply: {}", shown(&out));
    eprintln!("{}", text(&out.stdout));

    // Every row kept, through both coordinators; pgxc_class lists dn3; rows on dn3.
    let on = |node: &str, table: &str| {
        through(1, &format!("execute direct on ({node}) 'select count(*) from {table}'"))
    };
    for (table, _) in TABLES {
        for k in 1..=2 {
            assert_eq!(through(k, &format!("select count(*) from {table}")), "1000", "{table}");
        }
        let nodes = through(
            2,
            &format!(
                "select string_agg(p.node_name::text, ',' order by p.node_name) from pgxc_class x \
                 join pgxc_node p on p.oid = any(x.nodeoids) where x.pcrelid = '{table}'::regclass"
            ),
        );
        let (want_nodes, on_dn3) = match table {
            "only1" => ("dn1", 0),
            "r" => ("dn1,dn2,dn3", 1000),
            _ => ("dn1,dn2,dn3", -1),
        };
        assert_eq!(nodes, want_nodes, "{table}");
        let rows: i64 = on("dn3", table).parse().unwrap();
        match on_dn3 {
            -1 => assert!(rows > 100 && rows < 900, "{table}: {rows} rows on dn3"),
            n => assert_eq!(rows, n, "{table}"),
        }
    }
    // The new datanode has the catalog: a new table spreads over it; the re-apply is a no-op.
    through(2, "create table after_grow (id int) distribute by hash(id)");
    through(2, "insert into after_grow select generate_series(1, 300)");
    let rows: i64 = on("dn3", "after_grow").parse().unwrap();
    assert!(rows > 0, "after_grow on dn3: {rows}");
    let out = pgxc(&["apply", &inv]);
    assert!(text(&out.stdout).starts_with("nothing to do"), "{}", shown(&out));
    reset(TAG);
}
