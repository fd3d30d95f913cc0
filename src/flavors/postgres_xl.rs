//! Postgres-XL 10 (10r1.1, on PostgreSQL 10.6): Postgres-XC's layout (a GTM, its standby and
//! proxies, coordinators, datanodes and their streaming standbys), with the same `initdb
//! --nodename`, `pg_ctl -Z coordinator|datanode`, `initgtm`/`gtm_ctl -Z gtm` and recovery.conf.
//! PURE: values only.
//!
//! What differs from Postgres-X2, checked on Postgres-XL 10r1.1 (../shared/flavors-facts.md,
//! docs/flavors.md): PostgreSQL 10's names (`pg_current_wal_lsn()`, `replay_lsn`,
//! `wal_level = replica`) and its pg_rewind; datanodes talk to each other, so every datanode
//! keeps the whole pgxc_node table too (a fresh datanode lists only itself, typed as a
//! coordinator) and has a pooler of its own.

use super::postgres_xc::PostgresXc;
use super::{ConfigFile, Error, Features, Flavor, NodeCommands};
use crate::inventory::{self, Inventory, Node, Role};

/// The Postgres-XL flavor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PostgresXl;

impl Flavor for PostgresXl {
    fn kind(&self) -> inventory::Flavor {
        inventory::Flavor::PostgresXl
    }

    fn features(&self) -> Features {
        Features {
            pgxc: true,
            gtm_setting: true,
            recovery_conf: true,
            wal_keep_size: false,
            wal_level: "replica",
            pg_rewind: true,
            gtm_standby_dialed: true,
        }
    }

    fn start_order(&self) -> &'static [Role] {
        PostgresXc.start_order()
    }

    fn config_files(&self, node: &Node) -> Result<Vec<ConfigFile>, Error> {
        PostgresXc.config_files(node)
    }

    fn setup_sql(&self, node: &Node) -> Option<&'static str> {
        PostgresXc.setup_sql(node)
    }

    fn registers(&self, node: &Node) -> bool {
        matches!(node.role, Role::Coordinator | Role::Datanode)
    }

    fn standby_answers_sql(&self) -> bool {
        false
    }

    fn commands(&self, inv: &Inventory, node: &Node, bin_dir: &str) -> Result<NodeCommands, Error> {
        let mut commands = PostgresXc.commands(inv, node, bin_dir)?;
        if matches!(node.role, Role::Gtm | Role::GtmStandby | Role::GtmProxy) {
            // XL's gtm_ctl runs `gtm` (or `gtm_proxy`) from PATH unless -p names its directory
            // ("sh: gtm: Permission denied", or nothing at all with -l, and no server).
            commands.start.splice(1..1, ["-p".to_string(), bin_dir.to_string()]);
        }
        if node.role == Role::GtmProxy {
            // XL's `gtm_ctl status` reads a third line (master or slave) that its gtm_proxy
            // never writes to gtm_proxy.pid ("invalid data in PID file"): the proxy runs while
            // the process its PID file names lives.
            let status = super::pid_file_says(&format!("{}/gtm_proxy.pid", node.data_dir), None);
            commands.ready = status.clone();
            commands.status = status;
        }
        Ok(commands)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_xl_is_postgres_xc_on_postgresql_10() {
        let f = PostgresXl.features();
        assert!(f.pgxc && f.recovery_conf && f.pg_rewind && !f.wal_keep_size);
        assert_eq!(f.wal_level, "replica");
        assert!(PostgresXl.replay_lag_sql().contains("replay_lsn"));
        assert_eq!(PostgresXl.start_order(), PostgresXc.start_order());
    }

    #[test]
    fn gtm_ctl_is_told_where_the_gtm_binary_is() {
        let inv = crate::plan::fixtures::postgres_xc();
        let gtm = inv.nodes.iter().find(|n| n.role == Role::Gtm).unwrap();
        let c = PostgresXl.commands(&inv, gtm, "/opt/xl/bin").unwrap();
        assert_eq!(&c.start[..3], ["/opt/xl/bin/gtm_ctl", "-p", "/opt/xl/bin"]);
        assert!(c.start.ends_with(&["start".to_string()]));
        let coord = inv.nodes.iter().find(|n| n.role == Role::Coordinator).unwrap();
        let c = PostgresXl.commands(&inv, coord, "/opt/xl/bin").unwrap();
        assert_eq!(c.start, PostgresXc.commands(&inv, coord, "/opt/xl/bin").unwrap().start);
    }

    /// A gtm_proxy's status and readiness come from its PID file, run by a real sh.
    #[test]
    fn a_gtm_proxy_runs_while_its_pid_file_names_a_live_process() {
        let inv = crate::plan::fixtures::postgres_xc_ha();
        let proxy = inv.nodes.iter().find(|n| n.role == Role::GtmProxy).unwrap();
        let c = PostgresXl.commands(&inv, proxy, "/opt/xl/bin").unwrap();
        assert_eq!(c.status, c.ready);
        let dir = tempfile::tempdir().unwrap();
        let run = |pid: &str| {
            std::fs::write(dir.path().join("gtm_proxy.pid"), pid).unwrap();
            let mut argv = c.status.clone();
            argv[3] = dir.path().join("gtm_proxy.pid").to_str().unwrap().to_string();
            std::process::Command::new(&argv[0]).args(&argv[1..]).status().unwrap().success()
        };
        assert!(run(&format!("{}\n/data/proxy2\n", std::process::id())));
        assert!(!run("999999999\n/data/proxy2\n"));
        assert!(!run(""));
    }
}
