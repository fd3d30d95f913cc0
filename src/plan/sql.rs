//! The one home of SQL text that pgxc-deploy sends: every statement it builds is a function
//! (or a constant) here, and a value reaches SQL only as a literal through [`literal`]. Node
//! names reach it as identifiers the inventory validated ([`crate::inventory::NodeName`]:
//! lowercase letters, digits and underscores, no reserved word), so they need no quoting. What
//! differs between flavors (WAL position functions, the setup of a new node) is the flavors'
//! own SQL, behind [`crate::flavors::Flavor`].
//!
//! Many checks are written to fail rather than to return false (`select 1 / (...)::int`
//! divides by zero): psql then exits non-zero, which a step reads as "not yet" or "failed".

use super::state::PgxcNodeRow;

/// `text` as an SQL string literal: quotes doubled, backslashes kept as they are, which is
/// what a literal means with `standard_conforming_strings` on (the default since PostgreSQL 9.1,
/// Postgres-XC's 9.4 base included; the templates never turn it off).
pub fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Fails while the server is in recovery, and succeeds on a primary.
pub const PRIMARY_CHECK: &str = "select 1 / (not pg_is_in_recovery())::int";

/// A write on a primary, given up after 5 s (a commit waiting for a synchronous standby that
/// is not there fails instead of hanging).
pub const WRITE_CHECK: &str = "set statement_timeout = '5s'; \
     create temp table pgxc_deploy_failover_check (x int); \
     insert into pgxc_deploy_failover_check values (1)";

/// Through a Postgres-XC coordinator: a write that commits, so it needs a transaction ID and a
/// snapshot from the GTM (a GTM handover's check). One statement: X2's psql runs only the last
/// `-c`, and a multi-statement query string through a coordinator runs oddly.
pub const GTM_WRITE_CHECK: &str = "create temp table pgxc_deploy_gtm_check as select 1 as x";

/// Locks DDL on the whole Postgres-XC cluster for as long as the session that ran it lives
/// (what adding a coordinator does while it copies the catalog).
pub const LOCK_FOR_BACKUP: &str = "select pgxc_lock_for_backup();";

/// On a coordinator that just received another's catalog (whose pgxc_node lists itself as
/// `localhost:5432`): its own entry `me`, then the pool reloaded.
pub fn join_self(me: &PgxcNodeRow) -> String {
    format!(
        "ALTER NODE {} WITH ({});
SELECT pgxc_pool_reload();
",
        me.name,
        endpoint(me)
    )
}

/// On every other coordinator, while a coordinator or datanode `me` joins: register it
/// (created, or, when an entry of that name is left, altered: run without stopping at the
/// first error), then reload the pool. `me` is the row as that coordinator must list it (its
/// marks are per catalog).
pub fn join_peer(me: &PgxcNodeRow) -> String {
    let with = format!("{}{}", endpoint(me), marks(me, None));
    format!(
        "CREATE NODE {name} WITH (TYPE = '{kind}', {with});
ALTER NODE {name} WITH          ({with});
SELECT pgxc_pool_reload();
",
        name = me.name,
        kind = me.kind.type_word(),
    )
}

/// `HOST = ..., PORT = ...` of a CREATE or ALTER NODE for `row`, and `, FORWARD = ...` when
/// it has a forward port (OpenTenBase).
fn endpoint(row: &PgxcNodeRow) -> String {
    let mut with = format!("HOST = {}, PORT = {}", literal(&row.host), row.port);
    if row.forward != 0 {
        with.push_str(&format!(", FORWARD = {}", row.forward));
    }
    with
}

/// The PRIMARY and PREFERRED options of a CREATE or ALTER NODE for `row`, each with its
/// leading `, `: written when set, and as `= false` when `have` (the row as the catalog has
/// it) has it set and `row` does not. Nothing for an unmarked row new to the catalog.
fn marks(row: &PgxcNodeRow, have: Option<&PgxcNodeRow>) -> String {
    let mut out = String::new();
    let had = |f: fn(&PgxcNodeRow) -> bool| have.is_some_and(f);
    for (word, want, had) in [
        ("PRIMARY", row.primary, had(|h| h.primary)),
        ("PREFERRED", row.preferred, had(|h| h.preferred)),
    ] {
        match (want, had) {
            (true, _) => out.push_str(&format!(", {word}")),
            (false, true) => out.push_str(&format!(", {word} = false")),
            (false, false) => {}
        }
    }
    out
}

/// The row count of `table` (a qualified, quoted name), through a coordinator.
pub fn count_rows(table: &str) -> String {
    format!("select count(*) from {table};")
}

/// Spread `table` (a qualified, quoted name) over the datanodes `add` (validated node names)
/// too, then move its rows off `delete`.
pub fn alter_nodes(table: &str, add: &[String], delete: &[String]) -> String {
    let mut sql = String::new();
    if !add.is_empty() {
        sql.push_str(&format!("ALTER TABLE {table} ADD NODE ({});\n", add.join(", ")));
    }
    if !delete.is_empty() {
        sql.push_str(&format!("ALTER TABLE {table} DELETE NODE ({});\n", delete.join(", ")));
    }
    sql
}

/// Through a Postgres-XC coordinator: `BYTES TABLE` lines, the size of each of `tables`
/// (qualified, quoted names) summed over its datanodes (`pg_total_relation_size`).
pub fn table_sizes(tables: &[&str]) -> String {
    let names: Vec<String> = tables.iter().map(|t| literal(t)).collect();
    format!(
        "select pg_total_relation_size(t::regclass) || ' ' || t from unnest(array[{}]::text[]) t",
        names.join(", ")
    )
}

/// Through a coordinator: the datanodes pgxc_class lists for `table` (a qualified, quoted
/// name), comma-separated in name order.
pub fn table_nodes(table: &str) -> String {
    format!(
        "select string_agg(p.node_name::text, ',' order by p.node_name) from pgxc_class x join \
         pgxc_node p on p.oid = any(x.nodeoids) where x.pcrelid = {}::regclass;",
        literal(table)
    )
}

/// Through a coordinator: `NODE COUNT` lines, the rows of `table` (a qualified, quoted name)
/// on each of `datanodes` (validated node names), with EXECUTE DIRECT.
pub fn rows_per_datanode(table: &str, datanodes: &[String]) -> String {
    datanodes
        .iter()
        .map(|d| {
            let inner = format!("select '{d} ' || count(*) from {table}");
            format!("execute direct on ({d}) {};\n", literal(&inner))
        })
        .collect()
}

/// DDL through a Postgres-XC coordinator, which runs on every coordinator it lists: create
/// `table` (a name made of node names and digits). [`ddl_check_drop`] drops it again. Both
/// may be tried again after a lost answer.
pub fn ddl_check_create(table: &str) -> String {
    format!("create table if not exists {table} (x int)")
}

/// See [`ddl_check_create`].
pub fn ddl_check_drop(table: &str) -> String {
    format!("drop table if exists {table}")
}

/// Through a coordinator: `datanode` answers, from a server that is not in recovery. One
/// statement: X2 runs a multi-statement query string sent through a coordinator oddly.
pub fn primary_through_coordinator(datanode: &str) -> String {
    format!("execute direct on ({datanode}) {}", literal(PRIMARY_CHECK))
}

/// Through a coordinator: a query reaches `datanode`.
pub fn reaches_through_coordinator(datanode: &str) -> String {
    format!("execute direct on ({datanode}) {}", literal("select 1"))
}

/// Fails unless this session's `synchronous_standby_names` is empty: run in a new session
/// after a reload, it tells that the server has read the new setting.
pub const SYNC_OFF: &str = "select 1 / (current_setting('synchronous_standby_names') = '')::int";

/// A new session sees synchronous replication off, then commits a write (given up after 5 s).
/// A commit cancelled while it waits for a standby only warns, so the first statement is what
/// makes this fail while the old setting holds.
pub fn sync_off_then_write() -> String {
    format!(
        "{SYNC_OFF}; set statement_timeout = '5s'; \
         create temp table pgxc_deploy_degrade_check (x int); \
         insert into pgxc_deploy_degrade_check values (1)"
    )
}

/// On a primary: fails until `standby` is its synchronous standby (`sync_state`).
pub fn synchronous_again(standby: &str) -> String {
    format!(
        "select 1 / count(*)::int from pg_stat_replication where application_name = {} and \
         sync_state = 'sync'",
        literal(standby)
    )
}

/// On a primary: fails until `standby` streams from it.
pub fn streaming(standby: &str) -> String {
    format!(
        "select 1 / count(*)::int from pg_stat_replication where application_name = {} and \
         state = 'streaming'",
        literal(standby)
    )
}

/// Fails until `past` (a flavor's test of the replayed WAL position) is true.
pub fn replayed(past: &str) -> String {
    format!("select 1 / ({past})::int")
}

/// Fails (division by zero) until the server started after `before` (a timestamp it reported).
pub fn started_after(before: &str) -> String {
    format!("select 1 / (pg_postmaster_start_time() > {}::timestamptz)::int", literal(before))
}

/// The probe's queries on a server that accepts connections, one per line (psql reads them
/// from a here-document), each printing lines that start with the fact's name
/// ([`crate::plan::state`] parses them): start time, recovery, every setting's context (which
/// settings need a restart), the replicas with their lag (`replay_lag`, the flavor's
/// expression), the flavor's WAL positions (`positions`, lines of its own), and with
/// `pgxc_node`, a coordinator's pgxc_node.
pub fn probe(replay_lag: &str, positions: &str, pgxc_node: bool, groups: bool) -> Vec<String> {
    let mut queries = vec![
        "select 'start ' || pg_postmaster_start_time();".to_string(),
        "select 'recovery ' || pg_is_in_recovery();".to_string(),
        "select 'context ' || name || ' ' || context from pg_settings;".to_string(),
        format!(
            "select 'replica ' || coalesce(application_name, '') || ' ' || \
             coalesce(state, '') || ' ' || coalesce(sync_state, '') || ' ' || \
             coalesce(({replay_lag})::text, '') from pg_stat_replication;"
        ),
    ];
    // The flavor's lines, without the newline they end with.
    let positions = positions.trim_end_matches('\n');
    if !positions.is_empty() {
        queries.push(positions.to_string());
    }
    if pgxc_node {
        queries.push(format!(
            "select 'pgxc_node ' || node_name || ' ' || node_type || ' ' || node_host || ' ' || \
             node_port || ' ' || nodeis_primary || ' ' || nodeis_preferred || ' ' || \
             {FORWARD_PORT} from pgxc_node p;"
        ));
        queries.push(TABLES.to_string());
    }
    if groups {
        queries.push(GROUPS.to_string());
        queries.push("select 'shards ' || count(*) from pgxc_shard_map;".to_string());
    }
    queries
}

/// An OpenTenBase coordinator's node groups ([`crate::plan::state::GroupRow`]): `group NAME
/// DEFAULT MEMBERS`, DEFAULT 1 for the default group, its members' names comma-separated in
/// name order.
const GROUPS: &str = "select 'group ' || group_name || ' ' || default_group || ' ' || \
     coalesce((select string_agg(n.node_name::text, ',' order by n.node_name) from pgxc_node n \
     where n.oid = any(g.group_members)), '') from pgxc_group g;";

/// On an OpenTenBase coordinator or datanode: its pgxc_node row of the GTM, `gtm` (a
/// validated node name), moved to `address:port`, then the pool reloaded; each statement run
/// on its own.
pub fn repoint_gtm(gtm: &str, address: &str, port: u16) -> Vec<String> {
    vec![
        format!("ALTER NODE {gtm} WITH (HOST = {}, PORT = {port})", literal(address)),
        "SELECT pgxc_pool_reload()".to_string(),
    ]
}

/// The name of the node group pgxc-deploy makes the default one on OpenTenBase (the name its
/// regression suite and pgxc_ctl use).
pub const DEFAULT_GROUP: &str = "default_group";

/// On one OpenTenBase coordinator, once every node lists every other: the statements, each run
/// on its own (psql `-c` each), that make `datanodes` (validated node names) the default node
/// group, unless `exists`, and shard the tables over it. The coordinator passes them on to
/// every other node.
pub fn default_group(datanodes: &[String], exists: bool) -> Vec<String> {
    let mut sql = Vec::new();
    if !exists {
        sql.push(format!(
            "CREATE DEFAULT NODE GROUP {DEFAULT_GROUP} WITH ({})",
            datanodes.join(", ")
        ));
    }
    sql.push(format!("CREATE SHARDING GROUP TO GROUP {DEFAULT_GROUP}"));
    sql.push("CLEAN SHARDING".to_string());
    sql
}

/// A coordinator's distributed tables ([`crate::plan::state::TableRow`]): `table KIND NODES
/// NAME`, the locator type (H hash, M modulo, N round robin, R replicated), the datanodes it
/// is on (comma-separated) and its qualified, quoted name last.
const TABLES: &str = "select 'table ' || x.pclocatortype || ' ' || coalesce((select \
     string_agg(p.node_name::text, ',' order by p.node_name) from pgxc_node p where p.oid = \
     any(x.nodeoids)), '') || ' ' || quote_ident(n.nspname) || '.' || quote_ident(c.relname) \
     from pgxc_class x join pg_class c on c.oid = x.pcrelid join pg_namespace n on n.oid = \
     c.relnamespace;";

/// A pgxc_node row's (`p`) forward port, or 0: OpenTenBase's `node_forward_port`, a column the
/// other flavors lack, so it is read by name from the row as JSON (9.3+), on every flavor.
pub const FORWARD_PORT: &str = "coalesce(row_to_json(p)->>'node_forward_port', '0')";

/// A coordinator's pgxc_node rows (psql prints them as `name type host port primary preferred
/// forward` lines with `-A -t -F ' '`, [`crate::plan::state::PgxcNodeRow::parse`]); the last
/// column is [`FORWARD_PORT`].
pub const PGXC_NODE_ROWS: &str = "select node_name, node_type, node_host, node_port, \
     nodeis_primary, nodeis_preferred, coalesce(row_to_json(p)->>'node_forward_port', '0') \
     from pgxc_node p";

/// SQL that turns `have` (a coordinator's current pgxc_node) into `want`: DROP what the
/// inventory no longer has, ALTER what differs or is the coordinator itself (initdb leaves it
/// as localhost:5432), CREATE what is missing, then reload the pooler. Hosts are quoted as
/// literals. A server allows one PRIMARY at a time, and Postgres-XL's session keeps the old
/// one in mind until it ends: when the primary moves, the old one is dropped or unmarked in a
/// transaction of its own, and the rest runs in a new session (psql's `\connect`).
pub fn registration(coordinator: &str, want: &[PgxcNodeRow], have: &[PgxcNodeRow]) -> String {
    let mut sql = String::from("BEGIN;\n");
    let wanted = |row: &PgxcNodeRow| want.iter().find(|w| w.name == row.name);
    let existing = |row: &PgxcNodeRow| have.iter().find(|h| h.name == row.name);
    // Rows of a kind pgxc-deploy does not register (OpenTenBase's GTM row, type `G`) stay.
    for row in have.iter().filter(|h| wanted(h).is_none() && h.kind.registered()) {
        sql.push_str(&format!("DROP NODE {};\n", row.name));
    }
    let unmarks_primary =
        |row: &&PgxcNodeRow| existing(row).is_some_and(|e| e.primary && !row.primary);
    let (first, rest): (Vec<&PgxcNodeRow>, Vec<&PgxcNodeRow>) =
        want.iter().partition(unmarks_primary);
    let loses = have.iter().any(|h| h.primary && wanted(h).is_none_or(|w| !w.primary));
    let gains = want.iter().any(|w| w.primary && existing(w).is_none_or(|e| !e.primary));
    let split = loses && gains;
    for (i, row) in first.iter().chain(&rest).enumerate() {
        if split && i == first.len() {
            sql.push_str("COMMIT;\n\\connect\nBEGIN;\n");
        }
        let kind = row.kind.type_word();
        let existing = existing(row);
        let with = endpoint(row);
        if row.name == coordinator || existing.is_some() {
            // A fresh Postgres-XL datanode lists itself as a coordinator: its type changes too.
            let with = match existing {
                Some(e) if e.kind != row.kind => format!("TYPE = '{kind}', {with}"),
                _ => with,
            };
            if existing != Some(row) || have.is_empty() {
                let marks = marks(row, existing);
                sql.push_str(&format!("ALTER NODE {} WITH ({with}{marks});\n", row.name));
            }
        } else {
            let marks = marks(row, None);
            sql.push_str(&format!(
                "CREATE NODE {} WITH (TYPE = '{kind}', {with}{marks});\n",
                row.name
            ));
        }
    }
    sql.push_str("COMMIT;\nSELECT pgxc_pool_reload();\n");
    sql
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::state::NodeKind;

    fn row(name: &str, kind: &str, host: &str, port: u16) -> PgxcNodeRow {
        PgxcNodeRow {
            name: name.into(),
            kind: NodeKind::from_code(kind),
            host: host.into(),
            port,
            primary: false,
            preferred: false,
            forward: 0,
        }
    }

    fn marked(row: PgxcNodeRow, primary: bool, preferred: bool) -> PgxcNodeRow {
        PgxcNodeRow { primary, preferred, ..row }
    }

    /// A fresh Postgres-XL datanode lists only itself, as a coordinator on localhost:5432.
    #[test]
    fn registration_of_a_fresh_xl_datanode_changes_its_own_type() {
        let want = vec![row("coord1", "C", "10.0.0.1", 5432), row("dn1", "D", "10.0.0.2", 15432)];
        let have = vec![row("dn1", "C", "localhost", 5432)];
        assert_eq!(
            registration("dn1", &want, &have),
            "BEGIN;\nCREATE NODE coord1 WITH (TYPE = 'coordinator', HOST = '10.0.0.1', PORT = \
             5432);\nALTER NODE dn1 WITH (TYPE = 'datanode', HOST = '10.0.0.2', PORT = 15432);\n\
             COMMIT;\nSELECT pgxc_pool_reload();\n"
        );
    }

    #[test]
    fn registration_alters_self_creates_missing_and_drops_extra() {
        let want = vec![
            row("coord1", "C", "10.0.0.1", 5432),
            row("dn1", "D", "10.0.0.2", 15432),
            row("dn2", "D", "10.0.0.3", 15432),
        ];
        let have = vec![
            row("coord1", "C", "localhost", 5432),
            row("dn1", "D", "10.0.0.2", 15432),
            row("old", "D", "x", 1),
        ];
        assert_eq!(
            registration("coord1", &want, &have),
            "BEGIN;\nDROP NODE old;\nALTER NODE coord1 WITH (HOST = '10.0.0.1', PORT = 5432);\n\
             CREATE NODE dn2 WITH (TYPE = 'datanode', HOST = '10.0.0.3', PORT = 15432);\n\
             COMMIT;\nSELECT pgxc_pool_reload();\n"
        );
    }

    /// One PRIMARY at a time: the old primary is unmarked (or dropped) before the new one is
    /// marked; marks already right are left alone; a new node is created with its marks.
    #[test]
    fn registration_moves_the_primary_mark_in_an_order_the_server_accepts() {
        let dn = |name: &str| row(name, "D", "10.0.0.2", 15432);
        let want = vec![
            row("coord1", "C", "10.0.0.1", 5432),
            marked(dn("dn1"), true, true),
            dn("dn2"),
            marked(dn("dn3"), false, true),
        ];
        let have = vec![
            row("coord1", "C", "10.0.0.1", 5432),
            marked(dn("dn1"), false, true),
            marked(dn("dn2"), true, true),
        ];
        assert_eq!(
            registration("coord1", &want, &have),
            "BEGIN;\nALTER NODE dn2 WITH (HOST = '10.0.0.2', PORT = 15432, PRIMARY = false, \
             PREFERRED = false);\nCOMMIT;\n\\connect\nBEGIN;\nALTER NODE dn1 WITH (HOST = '10.0.0.2', PORT = 15432, PRIMARY, PREFERRED);\n\
             CREATE NODE dn3 WITH (TYPE = 'datanode', HOST = '10.0.0.2', PORT = 15432, \
             PREFERRED);\nCOMMIT;\nSELECT pgxc_pool_reload();\n"
        );
        let gtm = row("gtm", "G", "10.0.0.1", 6666);
        let kept = registration("coord1", &[], std::slice::from_ref(&gtm));
        assert!(!kept.contains("DROP"), "a row of a kind not registered stays: {kept}");
        let have = vec![row("coord1", "C", "10.0.0.1", 5432), marked(dn("old"), true, false)];
        let want = vec![row("coord1", "C", "10.0.0.1", 5432), marked(dn("dn1"), true, false)];
        assert!(registration("coord1", &want, &have).starts_with(
            "BEGIN;\nDROP NODE old;\nCOMMIT;\n\\connect\nBEGIN;\nCREATE NODE dn1 WITH (TYPE = 'datanode', HOST = '10.0.0.2', PORT = 15432, PRIMARY);"
        ));
        assert_eq!(
            join_peer(&marked(dn("dn4"), false, true)).lines().next(),
            Some(
                "CREATE NODE dn4 WITH (TYPE = 'datanode', HOST = '10.0.0.2', PORT = 15432, PREFERRED);"
            )
        );
    }

    #[test]
    fn a_literal_doubles_quotes_and_keeps_backslashes() {
        assert_eq!(literal("127.0.10.1"), "'127.0.10.1'");
        assert_eq!(literal("o'brien"), "'o''brien'");
        assert_eq!(literal(r"a\b'c"), r"'a\b''c'");
    }

    #[test]
    fn statements_through_a_coordinator_quote_the_inner_query_as_a_literal() {
        assert_eq!(
            primary_through_coordinator("dn1"),
            "execute direct on (dn1) 'select 1 / (not pg_is_in_recovery())::int'"
        );
        assert_eq!(reaches_through_coordinator("dn2"), "execute direct on (dn2) 'select 1'");
        assert!(streaming("pg1_standby").contains("application_name = 'pg1_standby' and"));
        assert!(synchronous_again("o'x").contains("application_name = 'o''x' and"));
        // A table's name, quoted by the server, inside a literal.
        assert_eq!(
            rows_per_datanode("public.\"o'x\"", &["dn1".into()]),
            "execute direct on (dn1) 'select ''dn1 '' || count(*) from public.\"o''x\"';\n"
        );
        assert_eq!(
            table_sizes(&["s.a", "public.\"b'\""]),
            "select pg_total_relation_size(t::regclass) || ' ' || t from \
             unnest(array['s.a', 'public.\"b''\"']::text[]) t"
        );
        assert!(table_nodes("public.t").ends_with("where x.pcrelid = 'public.t'::regclass;"));
    }
}
