//! PURE. What apply should do, as values: desired state (from the inventory, flavor and
//! templates) vs the facts observed on the hosts -> an ordered [`step::Plan`].
//!
//! - [`context`] turns one node of a validated
//!   [`Inventory`](crate::inventory::Inventory) into the one documented [`Context`] every template
//!   renders from, and [`render`] fills the handlebars templates of `templates/` (or the user's
//!   overrides) with it. The files a node gets and the commands that manage it come from
//!   [`crate::flavors`]. Rendered text is part of the plan, so it can be shown as a diff and
//!   compared with golden files (`tests/golden/render/`).
//! - [`desired`] builds every node's desired files and commands; [`state`] holds what a host
//!   looks like (read from what [`crate::remote::probe`] prints); [`diff`] compares the two into
//!   a [`step::Plan`]; [`limit`] cuts it down to the nodes `--on` selects.
//! - For the commands that operate a deployed cluster: [`pair`] says which node of a datanode's
//!   pair serves now; [`health`] judges the probe's facts
//!   for `status` (running, streaming, pgxc_node, drift); [`lifecycle`] decides which node
//!   `start`/`stop` handle in which tier; [`clean`] which directories `clean` may delete
//!   (only apply's own); [`failover`] whether a standby may be promoted and what follows;
//!   [`restart`] the order of a rolling restart and what each node must pass before the next.
//!   [`degrade`] how a primary stops waiting for a dead synchronous standby.
//!
//! [`sql`] is where a value becomes SQL text.
//!
//! Commands call this; the executor moves the results to hosts.

pub mod clean;
pub mod context;
pub mod degrade;
pub mod desired;
pub mod diff;
pub mod failover;
pub mod gtm;
pub mod health;
pub mod lifecycle;
pub mod limit;
pub mod pair;
pub mod render;
pub mod restart;
pub mod spread;
pub mod sql;
pub mod state;
pub mod step;
pub mod switchover;

pub use context::{Context, ContextError};
pub use render::{RenderError, RenderedFile, Renderer};

/// Inventories built by hand for tests: they use `[auth]` and `[settings]`, which the inventory
/// parser does not read yet. Golden files under `tests/golden/render/` are rendered from them.
#[cfg(test)]
pub(crate) mod fixtures {
    use crate::inventory::*;
    use std::path::PathBuf;
    use std::time::Duration;

    fn host(name: &str, address: &str, install_prefix: &str, data_root: &str) -> Host {
        Host {
            name: name.to_string(),
            address: address.to_string(),
            ssh: SshTarget {
                user: None,
                port: 22,
                identity_file: None,
                known_hosts: PathBuf::from("/home/admin/.ssh/known_hosts"),
                global_known_hosts: PathBuf::from("/etc/ssh/ssh_known_hosts"),
                connect_timeout: Duration::from_secs(10),
                command_timeout: Duration::from_secs(600),
                proxy_jump: Vec::new(),
                config: Vec::new(),
                written: Default::default(),
            },
            install_prefix: install_prefix.to_string(),
            data_root: data_root.to_string(),
        }
    }

    fn node(inv_hosts: &[Host], name: &str, role: Role, host: &str, port: u16) -> Node {
        let data_root = &inv_hosts.iter().find(|h| h.name == host).unwrap().data_root;
        Node {
            name: NodeName::new(name).unwrap(),
            role,
            host: host.to_string(),
            port,
            pooler_port: None,
            forward_port: None,
            data_dir: format!("{data_root}/{name}"),
            primary: None,
            synchronous: false,
            serves: None,
            preferred: Vec::new(),
            settings: SettingMap::new(),
            removed: false,
        }
    }

    fn standby(hosts: &[Host], name: &str, host: &str, port: u16, of: &str, sync: bool) -> Node {
        Node {
            primary: Some(NodeName::new(of).unwrap()),
            synchronous: sync,
            ..node(hosts, name, Role::Standby, host, port)
        }
    }

    fn settings<const N: usize>(pairs: [(&str, SettingValue); N]) -> SettingMap {
        pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
    }

    /// tests/inventories/valid/full.toml (an IPv4, a DNS name and an IPv6 host; one synchronous
    /// standby), plus trust auth, an allowed network and settings in every scope.
    pub fn postgres_xc() -> Inventory {
        use SettingValue::*;
        let hosts = vec![
            host("db1", "10.0.0.1", "/opt/pgxc", "/var/lib/pgxc"),
            host("db2", "db2.example.com", "/opt/pgxc", "/var/lib/pgxc"),
            host("db3", "fd00::3", "/opt/pgxc", "/data/pgxc"),
        ];
        let coordinator = |name: &str, host: &str| Node {
            pooler_port: Some(6667),
            ..node(&hosts, name, Role::Coordinator, host, 5432)
        };
        let mut coord1 = coordinator("coord1", "db1");
        coord1.settings = settings([("log_line_prefix", String("%m [%p] coord1's ".into()))]);
        let nodes = vec![
            node(&hosts, "gtm", Role::Gtm, "db1", 6666),
            coord1,
            coordinator("coord2", "db2"),
            node(&hosts, "dn1", Role::Datanode, "db2", 15432),
            standby(&hosts, "dn1_standby", "db3", 15432, "dn1", true),
            node(&hosts, "dn2", Role::Datanode, "db3", 15433),
            standby(&hosts, "dn2_replica", "db1", 15433, "dn2", false),
        ];
        Inventory {
            path: PathBuf::from("lab.toml"),
            cluster: Cluster {
                name: "lab".to_string(),
                flavor: Flavor::PostgresXc,
                os_user: "postgres".to_string(),
                maximum_lag_on_failover: 1 << 20,
                primary_datanode: None,
            },
            hosts,
            nodes,
            source: None,
            auth: Auth {
                method: AuthMethod::Trust,
                password: None,
                allow: vec!["192.168.0.0/16".to_string()],
            },
            settings: Settings {
                all: settings([("shared_buffers", String("256MB".into()))]),
                coordinators: settings([("max_connections", Integer(200))]),
                datanodes: settings([
                    ("checkpoint_completion_target", Float(0.9)),
                    ("log_checkpoints", Bool(true)),
                ]),
                gtm: settings([("log_min_messages", String("WARNING".into()))]),
            },
            templates_dir: None,
            warnings: Vec::new(),
        }
    }

    /// [`postgres_xc`] with a GTM standby on db2 and a gtm_proxy on db2 (db1's nodes reach the
    /// GTM directly, db2's through the proxy).
    pub fn postgres_xc_ha() -> Inventory {
        let mut inv = postgres_xc();
        let gtm_standby = Node {
            primary: Some(NodeName::new("gtm").unwrap()),
            ..node(&inv.hosts, "gtm_standby", Role::GtmStandby, "db2", 6666)
        };
        let proxy = node(&inv.hosts, "proxy2", Role::GtmProxy, "db2", 6670);
        inv.nodes.splice(1..1, [gtm_standby, proxy]);
        inv
    }

    /// [`postgres_xc`] as OpenTenBase: every coordinator, datanode and standby with a pooler
    /// and a forward process (the forward port: the port plus 2), dn1 the primary datanode.
    pub fn opentenbase() -> Inventory {
        let mut inv = postgres_xc();
        inv.cluster.flavor = Flavor::Opentenbase;
        inv.cluster.primary_datanode = Some(NodeName::new("dn1").unwrap());
        inv.settings.gtm = crate::inventory::SettingMap::new();
        for n in &mut inv.nodes {
            if matches!(n.role, Role::Coordinator | Role::Datanode | Role::Standby) {
                n.pooler_port = Some(n.port + 1);
                n.forward_port = Some(n.port + 2);
            }
        }
        inv
    }

    /// Two primaries, one with a synchronous standby; scram-sha-256 and two allowed networks.
    pub fn postgresql() -> Inventory {
        use SettingValue::*;
        let hosts = vec![
            host("pg-a", "192.168.1.10", "/usr/lib/postgresql/16", "/srv/pg"),
            host("pg-b", "192.168.1.11", "/usr/lib/postgresql/16", "/srv/pg"),
        ];
        let nodes = vec![
            node(&hosts, "pg1", Role::Datanode, "pg-a", 5432),
            standby(&hosts, "pg1_standby", "pg-b", 5432, "pg1", true),
            node(&hosts, "pg2", Role::Datanode, "pg-b", 5433),
        ];
        Inventory {
            path: PathBuf::from("shop.toml"),
            cluster: Cluster {
                name: "shop".to_string(),
                flavor: Flavor::Postgresql,
                os_user: "pgadmin".to_string(),
                maximum_lag_on_failover: 1 << 20,
                primary_datanode: None,
            },
            hosts,
            nodes,
            source: None,
            auth: Auth {
                method: AuthMethod::ScramSha256,
                password: Some(PasswordSource::Env("PGXC_PASSWORD".to_string())),
                allow: vec!["10.20.0.0/16".to_string(), "2001:db8::/32".to_string()],
            },
            settings: Settings {
                all: settings([("max_connections", Integer(300))]),
                datanodes: settings([("wal_keep_size", String("2GB".into()))]),
                ..Settings::default()
            },
            templates_dir: None,
            warnings: Vec::new(),
        }
    }
}
