//! Postgres-XC (Postgres-X2, on PostgreSQL 9.4): a GTM, coordinators, datanodes and their
//! streaming standbys. PURE: values only.
//!
//! What is particular here, checked on Postgres-X2 1.3devel: `initdb --nodename` and
//! `pg_ctl -Z coordinator|datanode`; the GTM has its own `initgtm -Z gtm` and `gtm_ctl -Z gtm`,
//! no reload, and no PostgreSQL protocol to probe; standbys use recovery.conf (9.4).

use super::{
    ConfigFile, Error, Features, Flavor, NodeCommands, StopCommand, argv, basebackup, bin,
    initdb_args, initdb_pwfile, pg_ctl_commands, server_log,
};
use crate::inventory::{self, Inventory, Node, Role};

/// The Postgres-XC flavor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PostgresXc;

/// The GTM before everything (each node registers with it when it starts), then its standby
/// (which copies the GTM's state as it starts), then the gtm_proxies (nodes connect to the GTM
/// through them), datanodes before coordinators (which connect to them), standbys right after
/// their primaries.
const START_ORDER: &[Role] = &[
    Role::Gtm,
    Role::GtmStandby,
    Role::GtmProxy,
    Role::Datanode,
    Role::Standby,
    Role::Coordinator,
];

impl Flavor for PostgresXc {
    fn kind(&self) -> inventory::Flavor {
        inventory::Flavor::PostgresXc
    }

    fn features(&self) -> Features {
        Features {
            gtm_setting: true,
            pgxc: true,
            recovery_conf: true,
            wal_keep_size: false,
            wal_level: "hot_standby",
            pg_rewind: false,
            gtm_standby_dialed: true,
        }
    }

    fn start_order(&self) -> &'static [Role] {
        START_ORDER
    }

    fn config_files(&self, node: &Node) -> Result<Vec<ConfigFile>, Error> {
        let postgresql_conf = ConfigFile::rendered("postgresql.conf", "postgresql.conf.hbs");
        let pg_hba_conf = ConfigFile::rendered("pg_hba.conf", "pg_hba.conf.hbs");
        Ok(match node.role {
            Role::Gtm | Role::GtmStandby => vec![ConfigFile::rendered("gtm.conf", "gtm.conf.hbs")],
            Role::GtmProxy => vec![ConfigFile::rendered("gtm_proxy.conf", "gtm_proxy.conf.hbs")],
            Role::Coordinator => vec![postgresql_conf, pg_hba_conf],
            Role::Datanode => vec![
                postgresql_conf,
                pg_hba_conf,
                ConfigFile::rendered("synchronous_standby.conf", "synchronous_standby.conf.hbs"),
            ],
            Role::Standby => vec![
                postgresql_conf,
                pg_hba_conf,
                ConfigFile::rendered("recovery.conf", "recovery.conf.hbs"),
            ],
        })
    }

    fn setup_sql(&self, node: &Node) -> Option<&'static str> {
        (node.role == Role::Coordinator).then_some("register_nodes.sql.hbs")
    }

    fn replay_lag_sql(&self) -> &'static str {
        "pg_xlog_location_diff(pg_current_xlog_location(), replay_location)::bigint"
    }

    fn positions_sql(&self) -> &'static str {
        "select 'wal ' || pg_current_xlog_location() where not pg_is_in_recovery();\n\
         select 'received ' || pg_last_xlog_receive_location() where pg_is_in_recovery();\n\
         select 'replayed ' || pg_last_xlog_replay_location() where pg_is_in_recovery();\n"
    }

    fn replayed_past_sql(&self, lsn: &str) -> String {
        format!("pg_xlog_location_diff(pg_last_xlog_replay_location(), '{lsn}') > 0")
    }

    fn commands(&self, inv: &Inventory, node: &Node, bin_dir: &str) -> Result<NodeCommands, Error> {
        Ok(match node.role {
            Role::Gtm | Role::GtmStandby => gtm_commands(node, bin_dir, "gtm"),
            Role::GtmProxy => gtm_commands(node, bin_dir, "gtm_proxy"),
            Role::Coordinator => {
                let mut init = argv([&bin(bin_dir, "initdb"), "--nodename", node.name.as_str()]);
                init.extend(initdb_args(inv, node));
                let pwfile = initdb_pwfile(inv, node);
                pg_ctl_commands(inv, node, bin_dir, Some("coordinator"), init, pwfile)
            }
            Role::Datanode => {
                let mut init = argv([&bin(bin_dir, "initdb"), "--nodename", node.name.as_str()]);
                init.extend(initdb_args(inv, node));
                let pwfile = initdb_pwfile(inv, node);
                pg_ctl_commands(inv, node, bin_dir, Some("datanode"), init, pwfile)
            }
            Role::Standby => {
                let init = basebackup(inv, node, bin_dir)?;
                pg_ctl_commands(inv, node, bin_dir, Some("datanode"), init, None)
            }
        })
    }
}

/// Re-point the running gtm_proxy in `data_dir` at the GTM at `address:port`, live:
/// `gtm_ctl reconnect -Z gtm_proxy -o "-s ADDRESS -t PORT"`. It writes the new address to the
/// proxy's `newgtm` file only, not to gtm_proxy.conf (checked on Postgres-X2): the caller
/// rewrites gtm_proxy.conf too, or a restarted proxy would go back to the old GTM.
pub fn reconnect(bin_dir: &str, data_dir: &str, address: &str, port: u16) -> Vec<String> {
    let target = format!("-s {address} -t {port}");
    argv([&bin(bin_dir, "gtm_ctl"), "-Z", "gtm_proxy", "-D", data_dir, "-o", &target, "reconnect"])
}

/// The commands of a GTM, a GTM standby (the same server, `startup = STANDBY` in its gtm.conf)
/// or a gtm_proxy (`kind` `gtm_proxy`): `initgtm -Z KIND`, `gtm_ctl -Z KIND`.
fn gtm_commands(node: &Node, bin_dir: &str, kind: &str) -> NodeCommands {
    let dir = node.data_dir.as_str();
    let gtm_ctl = bin(bin_dir, "gtm_ctl");
    let status = argv([&gtm_ctl, "-Z", kind, "-D", dir, "status"]);
    let log = server_log(node);
    NodeCommands {
        init: argv([&bin(bin_dir, "initgtm"), "-Z", kind, "-D", dir]),
        pwfile: None,
        data_dir: dir.to_string(),
        // No -w: gtm_ctl would probe localhost, where the GTM does not listen.
        start: argv([&gtm_ctl, "-Z", kind, "-D", dir, "-l", &log, "start"]),
        log,
        stop: match kind {
            "gtm_proxy" => StopCommand::gtm_proxy(argv([&gtm_ctl, "-Z", kind, "-D", dir]), dir),
            _ => StopCommand::gtm_ctl(argv([&gtm_ctl, "-Z", kind, "-D", dir])),
        },
        reload: None,
        // gtm_ctl status only reads the PID file: the best probe the GTM offers.
        ready: status.clone(),
        status,
        promote: match kind {
            "gtm" => argv([&gtm_ctl, "-Z", kind, "-D", dir, "promote"]),
            _ => Vec::new(),
        },
        // Stale registrations would make restarting nodes fail to register (the GTM's; a proxy
        // keeps none).
        remove_after_stop: match kind {
            "gtm" => vec![format!("{}/register.node", dir.trim_end_matches('/'))],
            _ => Vec::new(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flavors::{StopMode, StopWait};
    use crate::plan::fixtures;

    fn commands(name: &str) -> NodeCommands {
        let inv = fixtures::postgres_xc();
        let node = inv.node(name).unwrap();
        PostgresXc.commands(&inv, node, "/opt/pgxc/bin").unwrap()
    }

    fn joined(argv: &[String]) -> String {
        argv.join(" ")
    }

    #[test]
    fn gtm_commands() {
        let c = commands("gtm");
        assert_eq!(joined(&c.init), "/opt/pgxc/bin/initgtm -Z gtm -D /var/lib/pgxc/gtm");
        assert_eq!(
            joined(&c.start),
            "/opt/pgxc/bin/gtm_ctl -Z gtm -D /var/lib/pgxc/gtm -l /var/lib/pgxc/gtm/server.log start"
        );
        assert_eq!(
            joined(&c.stop.argv(StopMode::Fast, StopWait::Wait)),
            "/opt/pgxc/bin/gtm_ctl -Z gtm -D /var/lib/pgxc/gtm -m fast stop"
        );
        assert_eq!(c.reload, None);
        assert_eq!(joined(&c.status), "/opt/pgxc/bin/gtm_ctl -Z gtm -D /var/lib/pgxc/gtm status");
        assert_eq!(c.ready, c.status);
        assert_eq!(c.remove_after_stop, ["/var/lib/pgxc/gtm/register.node"]);
        assert_eq!(
            joined(&c.stop.argv(StopMode::Immediate, StopWait::NoWait)),
            "/opt/pgxc/bin/gtm_ctl -Z gtm -D /var/lib/pgxc/gtm -m immediate stop"
        );
    }

    /// A proxy that ignores its stop is killed: the real argv under /bin/sh, with a stand-in
    /// gtm_ctl that fails as X2's does when the proxy's GTM is gone.
    #[test]
    fn a_proxy_that_does_not_stop_is_killed() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let gtm_ctl = bin.join("gtm_ctl");
        std::fs::write(
            &gtm_ctl,
            "#!/bin/sh\necho 'gtm_ctl: server does not shut down' >&2\nexit 1\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&gtm_ctl, std::fs::Permissions::from_mode(0o755)).unwrap();
        let data = dir.path().join("proxy1");
        std::fs::create_dir(&data).unwrap();
        let mut stuck = std::process::Command::new("sleep").arg("60").spawn().unwrap();
        std::fs::write(data.join("gtm_proxy.pid"), format!("{}\n", stuck.id())).unwrap();
        let mut inv = fixtures::postgres_xc_ha();
        inv.nodes.iter_mut().find(|n| n.name == "proxy2").unwrap().data_dir =
            data.display().to_string();
        let node = inv.node("proxy2").unwrap();
        let commands = PostgresXc.commands(&inv, node, &bin.display().to_string()).unwrap();
        let argv = commands.stop.argv(StopMode::Fast, StopWait::Wait);
        assert!(argv.ends_with(&["-m", "fast", "-w", "-t", "5", "stop"].map(String::from)));
        let out = std::process::Command::new(&argv[0]).args(&argv[1..]).output().unwrap();
        assert!(out.status.success(), "{out:?}");
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(said.contains("the gtm_proxy did not stop (is its GTM gone?): killed"), "{said}");
        assert!(!stuck.wait().unwrap().success(), "killed");
    }

    #[test]
    fn coordinator_commands() {
        let c = commands("coord1");
        assert_eq!(
            joined(&c.init),
            "/opt/pgxc/bin/initdb --nodename coord1 -D /var/lib/pgxc/coord1 -U postgres \
             --encoding=UTF8 --locale=C --auth-local=trust --auth-host=reject --nosync"
        );
        assert_eq!(
            joined(&c.start),
            "/opt/pgxc/bin/pg_ctl -Z coordinator -D /var/lib/pgxc/coord1 \
             -l /var/lib/pgxc/coord1/server.log start"
        );
        assert_eq!(
            joined(&c.stop.argv(StopMode::Fast, StopWait::Wait)),
            "/opt/pgxc/bin/pg_ctl -D /var/lib/pgxc/coord1 -m fast -w -t 60 stop"
        );
        assert_eq!(
            joined(&c.stop.argv(StopMode::Immediate, StopWait::NoWait)),
            "/opt/pgxc/bin/pg_ctl -D /var/lib/pgxc/coord1 -m immediate -W -t 60 stop"
        );
        assert_eq!(
            joined(c.reload.as_ref().unwrap()),
            "/opt/pgxc/bin/pg_ctl -D /var/lib/pgxc/coord1 reload"
        );
        assert_eq!(joined(&c.status), "/opt/pgxc/bin/pg_ctl -D /var/lib/pgxc/coord1 status");
        assert_eq!(
            joined(&c.ready),
            "/opt/pgxc/bin/pg_isready -h /var/lib/pgxc -p 5432 -U postgres -d dbname=postgres"
        );
    }

    #[test]
    fn datanode_commands() {
        let c = commands("dn1");
        assert_eq!(
            joined(&c.init),
            "/opt/pgxc/bin/initdb --nodename dn1 -D /var/lib/pgxc/dn1 -U postgres \
             --encoding=UTF8 --locale=C --auth-local=trust --auth-host=reject --nosync"
        );
        assert_eq!(
            joined(&c.start),
            "/opt/pgxc/bin/pg_ctl -Z datanode -D /var/lib/pgxc/dn1 \
             -l /var/lib/pgxc/dn1/server.log start"
        );
    }

    #[test]
    fn standby_is_a_base_backup_of_its_primary_started_as_a_datanode() {
        let c = commands("dn1_standby");
        assert_eq!(
            joined(&c.init),
            "/opt/pgxc/bin/pg_basebackup -h db2.example.com -p 15432 -U postgres \
             -D /data/pgxc/dn1_standby -X stream --checkpoint=fast --status-interval=1 \
             --progress -w"
        );
        assert_eq!(
            joined(&c.start),
            "/opt/pgxc/bin/pg_ctl -Z datanode -D /data/pgxc/dn1_standby \
             -l /data/pgxc/dn1_standby/server.log start"
        );
    }

    #[test]
    fn standby_without_primary_is_an_error() {
        let mut inv = fixtures::postgres_xc();
        let standby = inv.nodes.iter_mut().find(|n| n.role == Role::Standby).unwrap();
        standby.primary = None;
        let standby = standby.clone();
        let err = PostgresXc.commands(&inv, &standby, "/bin").unwrap_err();
        assert_eq!(err.to_string(), "standby `dn1_standby` has no primary in the inventory");
    }

    #[test]
    fn config_files_per_role() {
        let inv = fixtures::postgres_xc();
        let names = |name: &str| -> Vec<&str> {
            let files = PostgresXc.config_files(inv.node(name).unwrap()).unwrap();
            files.iter().map(|f| f.name).collect()
        };
        assert_eq!(names("gtm"), ["gtm.conf"]);
        assert_eq!(names("coord1"), ["postgresql.conf", "pg_hba.conf"]);
        assert_eq!(names("dn1"), ["postgresql.conf", "pg_hba.conf", "synchronous_standby.conf"]);
        assert_eq!(names("dn1_standby"), ["postgresql.conf", "pg_hba.conf", "recovery.conf"]);
        let setup: Vec<_> = inv.nodes.iter().filter_map(|n| PostgresXc.setup_sql(n)).collect();
        assert_eq!(setup, ["register_nodes.sql.hbs", "register_nodes.sql.hbs"]);
    }

    #[test]
    fn start_tiers_gtm_datanodes_standbys_coordinators() {
        let inv = fixtures::postgres_xc();
        let tiers: Vec<Vec<&str>> = PostgresXc
            .start_tiers(&inv)
            .iter()
            .map(|tier| tier.iter().map(|n| n.name.as_str()).collect())
            .collect();
        assert_eq!(
            tiers,
            [
                vec!["gtm"],
                vec!["dn1", "dn2"],
                vec!["dn1_standby", "dn2_replica"],
                vec!["coord1", "coord2"]
            ]
        );
    }
}
