//! Plain PostgreSQL 13 or later: primaries (written as `[[datanodes]]`) and their streaming
//! standbys. PURE: values only.
//!
//! What is particular here: no GTM or coordinators, no `-Z` or `--nodename`; a standby is a
//! data directory with a `standby.signal` file and `primary_conninfo` in postgresql.conf
//! (recovery.conf is gone since 12), and WAL is kept with `wal_keep_size` (13+).

use super::{
    ConfigFile, Error, Features, Flavor, NodeCommands, argv, basebackup, bin, initdb_args,
    initdb_pwfile, pg_ctl_commands,
};
use crate::inventory::{self, Inventory, Node, Role};

/// The PostgreSQL flavor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Postgresql;

const START_ORDER: &[Role] = &[Role::Datanode, Role::Standby];

impl Postgresql {
    fn unsupported(&self, node: &Node) -> Error {
        Error::UnsupportedRole { flavor: self.kind(), role: node.role, node: node.name.to_string() }
    }
}

impl Flavor for Postgresql {
    fn kind(&self) -> inventory::Flavor {
        inventory::Flavor::Postgresql
    }

    fn features(&self) -> Features {
        Features {
            gtm_setting: false,
            pgxc: false,
            recovery_conf: false,
            wal_keep_size: true,
            wal_level: "replica",
            pg_rewind: true,
            gtm_standby_dialed: false,
        }
    }

    fn start_order(&self) -> &'static [Role] {
        START_ORDER
    }

    fn config_files(&self, node: &Node) -> Result<Vec<ConfigFile>, Error> {
        let postgresql_conf = ConfigFile::rendered("postgresql.conf", "postgresql.conf.hbs");
        let pg_hba_conf = ConfigFile::rendered("pg_hba.conf", "pg_hba.conf.hbs");
        match node.role {
            Role::Datanode => Ok(vec![
                postgresql_conf,
                pg_hba_conf,
                ConfigFile::rendered("synchronous_standby.conf", "synchronous_standby.conf.hbs"),
            ]),
            Role::Standby => {
                Ok(vec![postgresql_conf, pg_hba_conf, ConfigFile::marker("standby.signal")])
            }
            Role::Gtm | Role::GtmStandby | Role::GtmProxy | Role::Coordinator => {
                Err(self.unsupported(node))
            }
        }
    }

    fn setup_sql(&self, _node: &Node) -> Option<&'static str> {
        None
    }

    fn commands(&self, inv: &Inventory, node: &Node, bin_dir: &str) -> Result<NodeCommands, Error> {
        let (init, pwfile) = match node.role {
            Role::Datanode => {
                let mut init = argv([&bin(bin_dir, "initdb")]);
                init.extend(initdb_args(inv, node));
                (init, initdb_pwfile(inv, node))
            }
            Role::Standby => (basebackup(inv, node, bin_dir)?, None),
            Role::Gtm | Role::GtmStandby | Role::GtmProxy | Role::Coordinator => {
                return Err(self.unsupported(node));
            }
        };
        Ok(pg_ctl_commands(inv, node, bin_dir, None, init, pwfile))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flavors::{StopMode, StopWait};
    use crate::plan::fixtures;

    fn commands(name: &str) -> NodeCommands {
        let inv = fixtures::postgresql();
        let node = inv.node(name).unwrap();
        Postgresql.commands(&inv, node, "/usr/lib/postgresql/16/bin").unwrap()
    }

    fn joined(argv: &[String]) -> String {
        argv.join(" ")
    }

    #[test]
    fn primary_commands() {
        let c = commands("pg1");
        assert_eq!(
            joined(&c.init),
            "/usr/lib/postgresql/16/bin/initdb -D /srv/pg/pg1 -U pgadmin \
             --encoding=UTF8 --locale=C --auth-local=trust --auth-host=reject --nosync \
             --pwfile=/srv/pg/pg1.pgxc-deploy-pw"
        );
        assert_eq!(
            joined(&c.start),
            "/usr/lib/postgresql/16/bin/pg_ctl -D /srv/pg/pg1 -l /srv/pg/pg1/server.log start"
        );
        assert_eq!(
            joined(&c.stop.argv(StopMode::Fast, StopWait::Wait)),
            "/usr/lib/postgresql/16/bin/pg_ctl -D /srv/pg/pg1 -m fast -w -t 60 stop"
        );
        assert_eq!(
            joined(&c.stop.argv(StopMode::Smart, StopWait::NoWait)),
            "/usr/lib/postgresql/16/bin/pg_ctl -D /srv/pg/pg1 -m smart -W -t 60 stop"
        );
        assert_eq!(
            joined(c.reload.as_ref().unwrap()),
            "/usr/lib/postgresql/16/bin/pg_ctl -D /srv/pg/pg1 reload"
        );
        assert_eq!(joined(&c.status), "/usr/lib/postgresql/16/bin/pg_ctl -D /srv/pg/pg1 status");
        assert_eq!(
            joined(&c.ready),
            "/usr/lib/postgresql/16/bin/pg_isready -h /srv/pg -p 5432 -U pgadmin -d dbname=postgres"
        );
    }

    #[test]
    fn standby_commands() {
        let c = commands("pg1_standby");
        assert_eq!(
            joined(&c.init),
            "/usr/lib/postgresql/16/bin/pg_basebackup -h 192.168.1.10 -p 5432 -U pgadmin \
             -D /srv/pg/pg1_standby -X stream --checkpoint=fast --status-interval=1 \
             --progress -w"
        );
        assert_eq!(
            joined(&c.start),
            "/usr/lib/postgresql/16/bin/pg_ctl -D /srv/pg/pg1_standby \
             -l /srv/pg/pg1_standby/server.log start"
        );
    }

    #[test]
    fn config_files_per_role() {
        let inv = fixtures::postgresql();
        let files = |name: &str| Postgresql.config_files(inv.node(name).unwrap()).unwrap();
        let names = |name: &str| -> Vec<&str> { files(name).iter().map(|f| f.name).collect() };
        assert_eq!(names("pg1"), ["postgresql.conf", "pg_hba.conf", "synchronous_standby.conf"]);
        assert_eq!(names("pg1_standby"), ["postgresql.conf", "pg_hba.conf", "standby.signal"]);
        assert_eq!(files("pg1_standby")[2].template, None);
        assert!(inv.nodes.iter().all(|n| Postgresql.setup_sql(n).is_none()));
    }

    #[test]
    fn xc_roles_are_refused() {
        let inv = fixtures::postgres_xc();
        let gtm = inv.node("gtm").unwrap();
        let err = Postgresql.config_files(gtm).unwrap_err();
        assert_eq!(err.to_string(), "postgresql clusters have no gtm nodes (node `gtm`)");
        assert!(Postgresql.commands(&inv, inv.node("coord1").unwrap(), "/bin").is_err());
    }

    #[test]
    fn start_tiers_primaries_then_standbys() {
        let inv = fixtures::postgresql();
        let tiers: Vec<Vec<&str>> = Postgresql
            .start_tiers(&inv)
            .iter()
            .map(|tier| tier.iter().map(|n| n.name.as_str()).collect())
            .collect();
        assert_eq!(tiers, [vec!["pg1", "pg2"], vec!["pg1_standby"]]);
    }
}
