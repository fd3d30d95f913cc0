//! OpenTenBase (the open-sourced TBase, on PostgreSQL 10): Postgres-XL's layout, commands and
//! catalogs, with what OpenTenBase changed. PURE: values only.
//!
//! What differs from Postgres-XL, checked on OpenTenBase v5.21 (commit 73494be4,
//! docs/opentenbase.md): the GTM's address is not a setting (there is no `gtm_host`) but given
//! to initdb (`--master_gtm_nodename/--master_gtm_ip/--master_gtm_port`), which writes it into
//! pgxc_node as a row of type `G`; every coordinator and datanode runs a forward process on
//! `forward_port`, which pgxc_node lists (`FORWARD =` in CREATE/ALTER NODE); tables are
//! sharded over a node group that one coordinator creates once every node is registered
//! (`CREATE DEFAULT NODE GROUP`, `CREATE SHARDING GROUP`, `CLEAN SHARDING`); pg_rewind needs
//! the node's name (`--node-name`); `gtm_ctl status` needs the GTM's address, so the GTM's
//! status comes from its PID file. A streaming standby answers SQL, as in PostgreSQL.

use super::postgres_xl::PostgresXl;
use super::{
    ConfigFile, Error, Features, Flavor, NodeCommands, Rewind, argv, pid_file_says, rewind,
};
use crate::inventory::{self, Inventory, Node, Role};

/// The OpenTenBase flavor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Opentenbase;

impl Flavor for Opentenbase {
    fn kind(&self) -> inventory::Flavor {
        inventory::Flavor::Opentenbase
    }

    fn features(&self) -> Features {
        Features { gtm_setting: false, gtm_standby_dialed: false, ..PostgresXl.features() }
    }

    fn start_order(&self) -> &'static [Role] {
        PostgresXl.start_order()
    }

    fn config_files(&self, node: &Node) -> Result<Vec<ConfigFile>, Error> {
        PostgresXl.config_files(node)
    }

    fn setup_sql(&self, node: &Node) -> Option<&'static str> {
        PostgresXl.setup_sql(node)
    }

    fn registers(&self, node: &Node) -> bool {
        PostgresXl.registers(node)
    }

    fn default_group(&self) -> bool {
        true
    }

    /// pg_rewind with `--node-name` (it refuses to run without), after crash recovery in
    /// single-user mode: OpenTenBase's pg_rewind takes a crashed old primary as it is and
    /// reads its WAL only up to its last checkpoint, so it says "no rewind required" even when
    /// the old primary wrote WAL past the fork. Recovery ends with a checkpoint after the
    /// fork, so pg_rewind then rewinds for real (checked by hand: docs/opentenbase.md).
    fn rewind(&self, inv: &Inventory, node: &Node, bin_dir: &str) -> Result<Rewind, Error> {
        let mut r = rewind(inv, node, bin_dir)?;
        r.rewind.extend(argv(["--node-name", node.datanode_name().as_str()]));
        let recover = "\"$0\" --single -D \"$1\" postgres </dev/null >/dev/null || exit 1; \
                       shift; exec \"$@\"";
        let postgres = super::bin(bin_dir, "postgres");
        let mut words = argv(["sh", "-c", recover, &postgres, &node.data_dir]);
        words.append(&mut r.rewind);
        r.rewind = words;
        Ok(r)
    }

    fn commands(&self, inv: &Inventory, node: &Node, bin_dir: &str) -> Result<NodeCommands, Error> {
        let mut commands = PostgresXl.commands(inv, node, bin_dir)?;
        match node.role {
            Role::Coordinator | Role::Datanode => {
                let gtm = inv
                    .node_of(Role::Gtm)
                    .ok_or_else(|| Error::NoGtm { node: node.name.to_string() })?;
                let address = inv.host(&gtm.host).map(|h| h.address.clone()).ok_or_else(|| {
                    Error::UnknownHost { node: gtm.name.to_string(), host: gtm.host.clone() }
                })?;
                let nodetype = match node.role {
                    Role::Coordinator => "coordinator",
                    _ => "datanode",
                };
                // After `initdb --nodename NAME`: the node's type and its GTM (initdb writes the
                // GTM's row into pgxc_node).
                let at = 3.min(commands.init.len());
                commands.init.splice(
                    at..at,
                    argv([
                        "--nodetype",
                        nodetype,
                        "--master_gtm_nodename",
                        gtm.name.as_str(),
                        "--master_gtm_ip",
                        &address,
                        "--master_gtm_port",
                        &gtm.port.to_string(),
                    ]),
                );
            }
            Role::Gtm | Role::GtmStandby => {
                // `gtm_ctl status` needs the GTM's address (-H, -P); its PID file tells as much.
                let status = pid_file_says(&format!("{}/gtm.pid", node.data_dir), None);
                commands.ready = status.clone();
                commands.status = status;
            }
            Role::Standby | Role::GtmProxy => {}
        }
        if matches!(node.role, Role::Coordinator | Role::Datanode | Role::Standby) {
            // A node reaches another on its own host (pgxc_node's host is its own) without a
            // host in the connection string, so libpq takes PGHOST or else /tmp: there, the
            // socket directory its servers listen on ([`Node::socket_dir`], the same for every
            // node of the host).
            let pghost = format!("PGHOST={}", node.socket_dir());
            commands.start.splice(0..0, argv(["env", &pghost]));
        }
        Ok(commands)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::fixtures;

    #[test]
    fn initdb_is_given_the_node_type_and_the_gtm() {
        let inv = fixtures::opentenbase();
        let coord = inv.node("coord1").unwrap();
        let c = Opentenbase.commands(&inv, coord, "/opt/otb/bin").unwrap();
        let init = c.init.join(" ");
        assert!(
            init.starts_with(
                "/opt/otb/bin/initdb --nodename coord1 --nodetype coordinator \
                 --master_gtm_nodename gtm --master_gtm_ip 10.0.0.1 --master_gtm_port 6666 -D "
            ),
            "{init}"
        );
        let dn = inv.node("dn1").unwrap();
        let init = Opentenbase.commands(&inv, dn, "/opt/otb/bin").unwrap().init.join(" ");
        assert!(init.contains(" --nodetype datanode "), "{init}");
        let pghost = format!("PGHOST={}", coord.socket_dir());
        assert_eq!(
            c.start[..5],
            argv(["env", &pghost, "/opt/otb/bin/pg_ctl", "-Z", "coordinator"])
        );
        let standby = inv.node("dn1_standby").unwrap();
        let c = Opentenbase.commands(&inv, standby, "/opt/otb/bin").unwrap();
        assert!(c.init[0].ends_with("/pg_basebackup"), "{:?}", c.init);
    }

    #[test]
    fn the_gtm_runs_while_its_pid_file_names_a_live_process() {
        let inv = fixtures::opentenbase();
        let gtm = inv.node("gtm").unwrap();
        let c = Opentenbase.commands(&inv, gtm, "/opt/otb/bin").unwrap();
        assert_eq!(c.status, c.ready);
        assert_eq!(c.status[..2], argv(["sh", "-c"]));
        assert!(c.status.contains(&format!("{}/gtm.pid", gtm.data_dir)), "{:?}", c.status);
        assert_eq!(&c.start[..3], ["/opt/otb/bin/gtm_ctl", "-p", "/opt/otb/bin"]);
    }

    #[test]
    fn pg_rewind_names_the_node_it_rewinds() {
        let inv = fixtures::opentenbase();
        let standby = inv.node("dn1_standby").unwrap();
        let r = Opentenbase.rewind(&inv, standby, "/b").unwrap();
        assert!(r.rewind.ends_with(&argv(["--node-name", "dn1"])), "{:?}", r.rewind);
        // Crash recovery in single-user mode first, then pg_rewind itself, run by a real sh
        // (with stand-ins for both programs that print what they were given).
        let dir = tempfile::tempdir().unwrap();
        let fake = |name: &str, body: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
            std::process::Command::new("chmod").arg("+x").arg(&path).status().unwrap();
        };
        fake("postgres", "echo \"postgres $*\" >> \"$(dirname \"$0\")/ran\"");
        fake("pg_rewind", "echo \"pg_rewind $*\" >> \"$(dirname \"$0\")/ran\"");
        let bin = dir.path().to_str().unwrap();
        let r = Opentenbase.rewind(&inv, standby, bin).unwrap();
        let ok = std::process::Command::new(&r.rewind[0]).args(&r.rewind[1..]).status().unwrap();
        assert!(ok.success());
        let ran = std::fs::read_to_string(dir.path().join("ran")).unwrap();
        let lines: Vec<&str> = ran.lines().collect();
        assert_eq!(lines[0], format!("postgres --single -D {} postgres", standby.data_dir));
        assert!(lines[1].starts_with(&format!("pg_rewind -D {}", standby.data_dir)), "{ran}");
        assert!(lines[1].ends_with("--node-name dn1"), "{ran}");
        assert!(!Opentenbase.features().gtm_setting);
        assert!(Opentenbase.default_group());
    }
}
