//! The one render context: everything a template may use about one node, built from a
//! validated inventory. PURE: no I/O.
//!
//! Every template renders from a [`Context`] built by [`Context::new`] for one node, and
//! from nothing else; `docs/templates.md` documents the same fields for people who write their
//! own templates. Values are ready to paste: addresses as written in the inventory, setting
//! values already in postgresql.conf syntax, pg_hba.conf address columns already with their
//! `/32` or `/128`. Quoting for a configuration file or SQL is the template's job, with the
//! `conf_string` and `sql_literal` helpers of [`super::render`].
//!
//! Optional parts (`gtm`, `primary`, `standby`, `node.pooler_port`, `node.forward_port`) are always present, as
//! `null` when they do not apply, so that strict mode can tell a misspelt name from an absent
//! value.

use crate::flavors::{self, Features};
use crate::inventory::{Host, Inventory, Node, Role};
use serde::Serialize;
use std::net::IpAddr;

/// What every template renders from. Field names are the template variables.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Context {
    /// `cluster.name`, `cluster.flavor`.
    pub cluster: ClusterInfo,
    /// The node being configured.
    pub node: NodeInfo,
    /// Postgres-XC: the GTM this node connects to: the gtm_proxy on its host when there is one,
    /// else the active GTM (a GTM standby's and a proxy's: the active GTM; the GTM's: itself).
    /// `null` for PostgreSQL.
    pub gtm: Option<Endpoint>,
    /// Every coordinator, in inventory order (for `CREATE NODE`; empty for PostgreSQL).
    pub coordinators: Vec<Peer>,
    /// Every datanode (primary), in inventory order (for `CREATE NODE`). Never standbys.
    pub datanodes: Vec<Peer>,
    /// For a standby: the datanode it replicates. `null` otherwise.
    pub primary: Option<Primary>,
    /// For a datanode that has one: its standby. `null` otherwise.
    pub standby: Option<StandbyInfo>,
    /// Every host of the cluster, in inventory order (for pg_hba.conf).
    pub hosts: Vec<HostInfo>,
    /// How clients and nodes authenticate.
    pub auth: AuthInfo,
    /// The OS user that owns the cluster; also its database superuser and replication user.
    pub os_user: String,
    /// The node's settings from the inventory (`all`, its role's scope, its own; the narrowest
    /// wins), in name order. Templates write them last, so they override built-in defaults.
    pub settings: Vec<Setting>,
    /// Flavor switches (see [`Features`]).
    pub features: Features,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClusterInfo {
    /// `[cluster] name`.
    pub name: String,
    /// `postgres-xc` or `postgresql`.
    pub flavor: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeInfo {
    pub name: String,
    /// `gtm`, `gtm_standby`, `gtm_proxy`, `coordinator`, `datanode` or `standby`.
    pub role: String,
    /// Exactly one of these six is true; use them rather than comparing `role`, so that
    /// strict mode catches a misspelling.
    pub is_gtm: bool,
    pub is_gtm_standby: bool,
    pub is_gtm_proxy: bool,
    pub is_coordinator: bool,
    pub is_datanode: bool,
    pub is_standby: bool,
    /// The name of the node's host in the inventory.
    pub host: String,
    /// Its host's address (IP or DNS name): what the node listens on.
    pub address: String,
    pub port: u16,
    /// Coordinators (Postgres-XL and OpenTenBase: datanodes and standbys too): the pooler's
    /// port. `null` for other roles.
    pub pooler_port: Option<u16>,
    /// OpenTenBase's coordinators, datanodes and standbys: the forward process's port. `null`
    /// otherwise.
    pub forward_port: Option<u16>,
    /// Absolute path of the data directory.
    pub data_dir: String,
    /// Where the server puts its Unix sockets: its host's data_root
    /// ([`crate::inventory::socket_dir`]).
    pub socket_dir: String,
    /// Postgres-XC `pgxc_node_name`: the node's name, except for a standby, which carries its
    /// primary's name so that it can take the primary's place after a failover.
    pub pgxc_node_name: String,
}

/// A node other nodes connect to.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Endpoint {
    pub name: String,
    pub address: String,
    pub port: u16,
}

/// A coordinator or datanode, as registered on a coordinator.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Peer {
    pub name: String,
    pub address: String,
    pub port: u16,
    /// OpenTenBase: its forward process's port (`FORWARD =`); `null` for other flavors.
    pub forward_port: Option<u16>,
    /// This is the node being configured (a coordinator registers the others, and `ALTER`s
    /// itself).
    pub is_self: bool,
    /// A datanode: the inventory's `primary_datanode`.
    pub primary: bool,
    /// A datanode in the configured node's `preferred_datanodes`.
    pub preferred: bool,
}

/// The primary a standby streams from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Primary {
    pub name: String,
    pub address: String,
    pub port: u16,
    /// libpq connection string to it, as `os_user`, with `application_name` set to the
    /// standby's name (what `synchronous_standby_names` matches): the value of
    /// `primary_conninfo`, still to be quoted with `conf_string`.
    pub conninfo: String,
}

/// The standby of a datanode.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StandbyInfo {
    pub name: String,
    pub address: String,
    pub port: u16,
    /// Commits on the datanode wait for this standby.
    pub synchronous: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HostInfo {
    pub name: String,
    pub address: String,
    /// The pg_hba.conf ADDRESS column for this host: `10.0.0.1/32`, `fd00::3/128`, or a DNS
    /// name as written.
    pub hba_address: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuthInfo {
    /// The pg_hba.conf method: `trust`, `scram-sha-256` or `md5`.
    pub method: String,
    /// The method is `trust`.
    pub is_trust: bool,
    /// Client networks (CIDR) allowed besides the cluster's own hosts.
    pub allow: Vec<String>,
}

/// One `name = value` line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Setting {
    pub name: String,
    /// Already in configuration file syntax: strings quoted, booleans `on`/`off`.
    pub value: String,
}

/// A node whose context cannot be built. The inventory's validation rules these out, so
/// seeing one means a caller built an [`Inventory`] by hand.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ContextError {
    #[error("node `{node}` is on host `{host}`, which is not in the inventory")]
    UnknownHost { node: String, host: String },
    #[error("standby `{node}` replicates `{primary}`, which is not in the inventory")]
    UnknownPrimary { node: String, primary: String },
}

impl Context {
    /// The context for `node`, one of `inv`'s nodes.
    pub fn new(inv: &Inventory, node: &Node) -> Result<Context, ContextError> {
        let flavor = flavors::of(inv.cluster.flavor);
        let host = host_of(inv, node)?;
        let endpoint = |n: &Node| -> Result<Endpoint, ContextError> {
            Ok(Endpoint {
                name: n.name.to_string(),
                address: host_of(inv, n)?.address.clone(),
                port: n.port,
            })
        };
        // Only a coordinator registers its peers; giving every node the whole list made
        // rendering a large cluster quadratic (4,000 nodes: minutes).
        let registers = node.role == Role::Coordinator;
        let peers = |role: Role| -> Result<Vec<Peer>, ContextError> {
            let of_role = inv.nodes.iter().filter(|n| registers && n.role == role);
            of_role
                .map(|n| {
                    let Endpoint { address, port, .. } = endpoint(n)?;
                    // After a failover a datanode keeps its name on the coordinators.
                    let name = n.datanode_name();
                    let datanode = role == Role::Datanode;
                    Ok(Peer {
                        name: name.to_string(),
                        address,
                        port,
                        forward_port: n.forward_port,
                        is_self: n.name == node.name,
                        primary: datanode && inv.cluster.primary_datanode.as_ref() == Some(name),
                        preferred: datanode && node.preferred.contains(name),
                    })
                })
                .collect()
        };

        // The active GTM, or the gtm_proxy on the node's host, which speaks for it.
        let active = inv.node_of(Role::Gtm);
        let gtm = match node.role {
            Role::Gtm | Role::GtmStandby | Role::GtmProxy => active,
            _ => inv.gtm_proxy_on(&node.host).or(active),
        };
        let gtm = gtm.map(endpoint).transpose()?;

        let primary_node = match (&node.role, &node.primary) {
            (Role::Standby, Some(name)) => {
                Some(inv.node(name.as_str()).ok_or_else(|| ContextError::UnknownPrimary {
                    node: node.name.to_string(),
                    primary: name.to_string(),
                })?)
            }
            _ => None,
        };
        let primary = match primary_node {
            Some(p) => {
                let Endpoint { name, address, port } = endpoint(p)?;
                let conninfo = conninfo(&[
                    ("host", &address),
                    ("port", &port.to_string()),
                    ("user", &inv.cluster.os_user),
                    ("application_name", node.name.as_str()),
                ]);
                Some(Primary { name, address, port, conninfo })
            }
            None => None,
        };

        let standby = match node.role {
            Role::Datanode => inv
                .nodes
                .iter()
                .find(|s| s.role == Role::Standby && s.primary.as_ref() == Some(&node.name))
                .map(|s| -> Result<StandbyInfo, ContextError> {
                    let Endpoint { name, address, port } = endpoint(s)?;
                    Ok(StandbyInfo { name, address, port, synchronous: s.synchronous })
                })
                .transpose()?,
            _ => None,
        };

        let settings = inv
            .node_settings(node)
            .iter()
            .map(|(name, value)| Setting { name: name.clone(), value: value.to_conf() })
            .collect();

        Ok(Context {
            cluster: ClusterInfo {
                name: inv.cluster.name.clone(),
                flavor: inv.cluster.flavor.to_string(),
            },
            node: NodeInfo {
                name: node.name.to_string(),
                role: node.role.to_string(),
                is_gtm: node.role == Role::Gtm,
                is_gtm_standby: node.role == Role::GtmStandby,
                is_gtm_proxy: node.role == Role::GtmProxy,
                is_coordinator: node.role == Role::Coordinator,
                is_datanode: node.role == Role::Datanode,
                is_standby: node.role == Role::Standby,
                host: node.host.clone(),
                address: host.address.clone(),
                port: node.port,
                pooler_port: node.pooler_port,
                forward_port: node.forward_port,
                data_dir: node.data_dir.clone(),
                socket_dir: node.socket_dir().to_string(),
                pgxc_node_name: node.datanode_name().to_string(),
            },
            gtm,
            coordinators: peers(Role::Coordinator)?,
            datanodes: peers(Role::Datanode)?,
            primary,
            standby,
            hosts: inv
                .hosts
                .iter()
                .map(|h| HostInfo {
                    name: h.name.clone(),
                    address: h.address.clone(),
                    hba_address: hba_address(&h.address),
                })
                .collect(),
            auth: AuthInfo {
                method: inv.auth.method.to_string(),
                is_trust: inv.auth.method == crate::inventory::AuthMethod::Trust,
                allow: inv.auth.allow.clone(),
            },
            os_user: inv.cluster.os_user.clone(),
            settings,
            features: flavor.features(),
        })
    }
}

fn host_of<'a>(inv: &'a Inventory, node: &Node) -> Result<&'a Host, ContextError> {
    inv.host(&node.host).ok_or_else(|| ContextError::UnknownHost {
        node: node.name.to_string(),
        host: node.host.clone(),
    })
}

/// A host address as pg_hba.conf's ADDRESS column: one IP as a single-address CIDR block, a
/// DNS name as it is (the server matches it against the client's reverse lookup). A loopback
/// address (lab hosts) is the whole loopback block: connections between 127.0.10.x addresses
/// leave from 127.0.0.1, the loopback interface's first address.
fn hba_address(address: &str) -> String {
    match address.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) if ip.is_loopback() => "127.0.0.0/8".to_string(),
        Ok(IpAddr::V4(ip)) => format!("{ip}/32"),
        Ok(IpAddr::V6(ip)) => format!("{ip}/128"),
        Err(_) => address.to_string(),
    }
}

/// A libpq `key=value` connection string; values with spaces, quotes or backslashes (or
/// empty) are single-quoted with `\` escapes, as libpq reads them.
fn conninfo(pairs: &[(&str, &str)]) -> String {
    let value = |v: &str| {
        let plain =
            !v.is_empty() && !v.contains(|c: char| c.is_whitespace() || c == '\'' || c == '\\');
        if plain {
            v.to_string()
        } else {
            format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"))
        }
    };
    pairs.iter().map(|(k, v)| format!("{k}={}", value(v))).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::fixtures;

    fn context(inv: &Inventory, name: &str) -> Context {
        Context::new(inv, inv.node(name).unwrap()).unwrap()
    }

    #[test]
    fn hba_addresses() {
        assert_eq!(hba_address("10.0.0.1"), "10.0.0.1/32");
        assert_eq!(hba_address("fd00::3"), "fd00::3/128");
        assert_eq!(hba_address("127.0.10.2"), "127.0.0.0/8");
        assert_eq!(hba_address("db2.example.com"), "db2.example.com");
    }

    #[test]
    fn conninfo_quotes_only_what_needs_it() {
        assert_eq!(conninfo(&[("host", "10.0.0.1"), ("port", "5432")]), "host=10.0.0.1 port=5432");
        assert_eq!(
            conninfo(&[("a", ""), ("b", "x y"), ("c", r"it's\")]),
            r"a='' b='x y' c='it\'s\\'"
        );
    }

    #[test]
    fn nodes_reach_the_gtm_through_their_host_s_proxy_and_the_gtm_kinds_the_active_gtm() {
        let inv = fixtures::postgres_xc_ha();
        let gtm_of = |name: &str| {
            let g = context(&inv, name).gtm.unwrap();
            format!("{} {}:{}", g.name, g.address, g.port)
        };
        assert_eq!(gtm_of("coord1"), "gtm 10.0.0.1:6666", "db1 has no proxy");
        assert_eq!(gtm_of("coord2"), "proxy2 db2.example.com:6670");
        assert_eq!(gtm_of("dn1"), "proxy2 db2.example.com:6670");
        for gtm_kind in ["gtm", "gtm_standby", "proxy2"] {
            assert_eq!(gtm_of(gtm_kind), "gtm 10.0.0.1:6666", "{gtm_kind}");
        }
        let standby = context(&inv, "gtm_standby").node;
        assert!(standby.is_gtm_standby && !standby.is_gtm && !standby.is_gtm_proxy);
        assert!(context(&inv, "proxy2").node.is_gtm_proxy);
    }

    #[test]
    fn standby_knows_its_primary_and_carries_its_xc_name() {
        let inv = fixtures::postgres_xc();
        let ctx = context(&inv, "dn1_standby");
        let primary = ctx.primary.unwrap();
        assert_eq!((primary.name.as_str(), primary.address.as_str()), ("dn1", "db2.example.com"));
        assert_eq!(
            primary.conninfo,
            "host=db2.example.com port=15432 user=postgres application_name=dn1_standby"
        );
        assert_eq!(ctx.node.pgxc_node_name, "dn1");
        assert_eq!(ctx.node.address, "fd00::3");
        assert!(ctx.node.is_standby && !ctx.node.is_datanode);
        assert_eq!(ctx.standby, None);
    }

    #[test]
    fn datanode_knows_its_standby() {
        let inv = fixtures::postgres_xc();
        let ctx = context(&inv, "dn1");
        let standby = ctx.standby.unwrap();
        assert_eq!((standby.name.as_str(), standby.synchronous), ("dn1_standby", true));
        assert_eq!(ctx.primary, None);
        assert_eq!(ctx.node.pgxc_node_name, "dn1");
    }

    #[test]
    fn peers_are_coordinators_and_datanodes_never_standbys() {
        let inv = fixtures::postgres_xc();
        let ctx = context(&inv, "coord2");
        let names = |peers: &[Peer]| -> Vec<(String, bool)> {
            peers.iter().map(|p| (p.name.clone(), p.is_self)).collect()
        };
        assert_eq!(names(&ctx.coordinators), [("coord1".into(), false), ("coord2".into(), true)]);
        assert_eq!(names(&ctx.datanodes), [("dn1".into(), false), ("dn2".into(), false)]);
        let gtm = ctx.gtm.unwrap();
        assert_eq!((gtm.address.as_str(), gtm.port), ("10.0.0.1", 6666));
        assert_eq!(ctx.node.pooler_port, Some(6667));
    }

    #[test]
    fn settings_are_merged_and_already_in_conf_syntax() {
        let inv = fixtures::postgres_xc();
        let ctx = context(&inv, "coord1");
        let lines: Vec<String> =
            ctx.settings.iter().map(|s| format!("{} = {}", s.name, s.value)).collect();
        assert_eq!(
            lines,
            [
                "log_line_prefix = '%m [%p] coord1''s '",
                "max_connections = 200",
                "shared_buffers = '256MB'"
            ]
        );
        let gtm = context(&inv, "gtm");
        assert_eq!(
            gtm.settings,
            [Setting { name: "log_min_messages".into(), value: "'WARNING'".into() }]
        );
    }

    #[test]
    fn postgresql_has_no_gtm_and_no_coordinators() {
        let inv = fixtures::postgresql();
        let ctx = context(&inv, "pg1");
        assert_eq!(ctx.gtm, None);
        assert!(ctx.coordinators.is_empty());
        assert!(!ctx.features.pgxc && !ctx.features.recovery_conf);
        assert_eq!(ctx.auth.method, "scram-sha-256");
        assert!(!ctx.auth.is_trust);
    }

    #[test]
    fn unknown_host_is_an_error_not_a_panic() {
        let mut inv = fixtures::postgresql();
        inv.nodes[0].host = "gone".into();
        let node = inv.nodes[0].clone();
        assert_eq!(
            Context::new(&inv, &node).unwrap_err().to_string(),
            "node `pg1` is on host `gone`, which is not in the inventory"
        );
    }

    /// Absent parts are present as null, so strict mode tells "misspelt" from "not here".
    #[test]
    fn optional_parts_serialize_as_null() {
        let inv = fixtures::postgresql();
        let json = serde_json::to_value(context(&inv, "pg2")).unwrap();
        for key in ["gtm", "primary", "standby"] {
            assert_eq!(json[key], serde_json::Value::Null, "{key}");
        }
        assert_eq!(json["node"]["pooler_port"], serde_json::Value::Null);
    }
}
