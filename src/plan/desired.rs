//! Inventory + flavor + templates -> what every host and node should look like
//! ([`DesiredHost`], [`DesiredNode`]), with the commands that get them there. PURE.

use crate::flavors::{self, StopMode, StopWait};
use crate::inventory::{BuildMode, Host, Inventory, Node, NodeName, Role, Source};

use super::context::Context;
use super::render::{RenderError, Renderer};
use super::state::{NodeKind, PASSFILE, PgxcNodeRow, STAGING_SUFFIX};
use super::step::FileContent;
use crate::secret::Secret;

/// What one host should look like.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredHost {
    pub name: String,
    /// `None`: the install is not ours to manage (no `[source]`).
    pub install: Option<String>,
    /// This host builds the install from source (else it is shipped one).
    pub build: bool,
    /// The password file the host should have, when the inventory has a password.
    pub passfile: Option<Passfile>,
}

/// A host's libpq password file: where, and the SHA-256 of its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Passfile {
    pub path: String,
    pub sha256: String,
    /// The servers keep the password as a SCRAM-SHA-256 verifier (else md5).
    pub scram: bool,
}

/// What one node should look like, with the commands that get it there.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredNode {
    pub name: NodeName,
    pub role: Role,
    pub host: String,
    /// Every managed file with its desired content.
    pub files: Vec<FileContent>,
    pub data_dir: String,
    /// Where init builds the data directory before renaming it into place.
    pub staging: String,
    /// initdb / initgtm / pg_basebackup argv, targeting `staging`.
    pub init: Vec<String>,
    /// The password file `init` reads (beside `staging`), when it is initdb and the inventory
    /// has a password.
    pub pwfile: Option<String>,
    pub start: Vec<String>,
    /// The server's log, which `start` names (`-l`).
    pub log: String,
    /// Exits 0 once the server accepts connections.
    pub ready: Vec<String>,
    /// `None`: the server cannot reload (the GTM): a change restarts it.
    pub reload: Option<Vec<String>>,
    /// Stop, status (runs while it succeeds), start.
    pub restart: (Vec<String>, Vec<String>, Vec<String>),
    /// Coordinators of a Postgres-XC cluster: the pgxc_node rows they must hold, and how to
    /// run SQL on them (psql argv reading SQL from stdin).
    pub pgxc_node: Option<Vec<PgxcNodeRow>>,
    /// The registration SQL for a fresh coordinator (the rendered `register_nodes.sql.hbs`).
    pub register_sql: String,
    /// An OpenTenBase coordinator ([`flavors::Flavor::default_group`]): the datanodes (as
    /// pgxc_node names them) its default node group must hold, sharded.
    pub default_group: Option<Vec<String>>,
    pub psql: Vec<String>,
    /// A primary with a synchronous standby: the standby's name. Until that standby streams,
    /// the primary runs with synchronous replication off (every commit would wait for it).
    pub sync_standby: Option<String>,
    /// Standbys: pg_rewind of the data directory from the primary, when the flavor has it.
    pub rewind: Option<crate::flavors::Rewind>,
    /// An old primary that a failover fenced, whose data directory holds its own diverged
    /// history: rebuilt ([`Action::Rejoin`](super::step::Action::Rejoin)) before it starts as this standby.
    /// A coordinator that `remove` took out: its stale catalog is removed, and it joins again.
    pub rejoin: bool,
    /// Postgres-XC coordinators: how this one joins a running cluster, from another
    /// coordinator's catalog ([`Action::JoinNode`](super::step::Action::JoinNode)).
    pub join: Option<Join>,
}

/// How a new coordinator or datanode joins a running Postgres-XC cluster: its catalog copied
/// from a running node of its kind, under `pgxc_lock_for_backup()` on a coordinator, then
/// registered with every coordinator.
#[derive(Debug, Clone, PartialEq)]
pub struct Join {
    /// Its start in restore mode (`pg_ctl -Z restoremode`), to receive the catalog.
    pub restore_start: Vec<String>,
    /// On it, once it runs again: its own pgxc_node entry, the pool reloaded (a coordinator;
    /// empty for a datanode).
    pub self_sql: String,
    /// Every other coordinator, as reached from its host.
    pub peers: Vec<JoinPeer>,
    /// The nodes whose catalog it may copy (the other coordinators, or the other datanodes'
    /// primaries), each with its pg_dumpall as run from the new node's host.
    pub dumps: Vec<(NodeName, Vec<String>)>,
    /// A datanode: its [`REDISTRIBUTE_MARKER`](super::step::REDISTRIBUTE_MARKER) file.
    pub marker: Option<String>,
}

/// Another coordinator, as a joining node reaches it over TCP.
#[derive(Debug, Clone, PartialEq)]
pub struct JoinPeer {
    pub name: NodeName,
    /// psql to it, as the cluster's user.
    pub psql: Vec<String>,
    /// On it: the joining node registered, the pool reloaded.
    pub sql: String,
}

/// A node of a datanode marked `state = "removed"`: the datanode, or its standby; see
/// [`crate::plan::spread`].
#[derive(Debug, Clone, PartialEq)]
pub struct Retiring {
    pub node: DesiredNode,
    /// The one that serves the datanode: the name coordinators know it by. `None`: its standby.
    pub datanode: Option<String>,
}

/// Where a host's install keeps its binaries: `<install_prefix>/<bin_rel>`.
pub fn bin_dir(host: &Host, bin_rel: &str) -> String {
    format!("{}/{}", host.install_prefix, bin_rel.trim_matches('/'))
}

/// Where the host's password file is, when the inventory has a password.
pub fn passfile_path(inv: &Inventory, host: &Host) -> Option<String> {
    inv.auth.password.as_ref().map(|_| format!("{}/{PASSFILE}", host.data_root))
}

/// Build the desired state. `bin_rel` is where binaries sit under an install prefix; `install`
/// the fingerprint of the install to ship or build, if the inventory manages one; `password`
/// the inventory's password, if it has one (only its password file's checksum is kept).
pub fn desired(
    inv: &Inventory,
    renderer: &Renderer,
    bin_rel: &str,
    install: Option<&str>,
    password: Option<&Secret>,
) -> Result<(Vec<DesiredHost>, Vec<DesiredNode>), RenderError> {
    let flavor = flavors::of(inv.cluster.flavor);
    let builds = |host: &str| match &inv.source {
        Some(Source::Build(b)) => b.mode == BuildMode::EveryHost || b.build_host == host,
        _ => false,
    };
    let hosts = inv
        .hosts
        .iter()
        .map(|h| DesiredHost {
            name: h.name.clone(),
            install: install.map(str::to_string),
            build: builds(&h.name),
            passfile: passfile_path(inv, h).zip(password).map(|(path, secret)| Passfile {
                path,
                sha256: secret.pgpass_sha256(&inv.cluster.os_user),
                scram: inv.auth.method == crate::inventory::AuthMethod::ScramSha256,
            }),
        })
        .collect();
    let mut nodes = Vec::new();
    for node in &inv.nodes {
        let host = inv.host(&node.host).expect("validated inventory");
        let bin = bin_dir(host, bin_rel);
        let commands = flavor.commands(inv, node, &bin)?;
        let staging = format!("{}{STAGING_SUFFIX}", node.data_dir);
        let staged = Node { data_dir: staging.clone(), ..node.clone() };
        let flavors::NodeCommands { init, pwfile, .. } = flavor.commands(inv, &staged, &bin)?;
        let files = renderer
            .node_files(inv, node)?
            .into_iter()
            .map(|f| FileContent { name: f.name.to_string(), content: f.contents, mode: f.mode })
            .collect();
        let pgxc_node = flavor.registers(node).then(|| registered_nodes(inv, node));
        let default_group = (flavor.default_group() && node.role == Role::Coordinator).then(|| {
            let rows = pgxc_node.iter().flatten();
            rows.filter(|r| r.kind == NodeKind::Datanode).map(|r| r.name.clone()).collect()
        });
        let register_sql = match flavor.setup_sql(node) {
            Some(template) => renderer.render(template, &Context::new(inv, node)?)?,
            None => String::new(),
        };
        let stop = commands.stop.argv(StopMode::Fast, StopWait::Wait);
        let commands_start = commands.start.clone();
        let restart = (stop, commands.status.clone(), commands.start.clone());
        nodes.push(DesiredNode {
            name: node.name.clone(),
            role: node.role,
            host: node.host.clone(),
            files,
            data_dir: node.data_dir.clone(),
            staging,
            init,
            pwfile,
            reload: commands.reload.clone(),
            start: commands.start,
            log: commands.log,
            ready: commands.ready,
            restart,
            pgxc_node,
            register_sql,
            default_group,
            psql: psql(inv, node, &bin),
            sync_standby: inv
                .nodes
                .iter()
                .find(|s| s.synchronous && s.primary.as_ref() == Some(&node.name))
                .map(|s| s.name.to_string()),
            rewind: match node.role {
                Role::Standby if flavor.features().pg_rewind => {
                    Some(flavor.rewind(inv, node, &bin)?)
                }
                _ => None,
            },
            rejoin: false,
            join: join(inv, node, &bin, &restart_start_argv(&commands_start, node)),
        });
    }
    Ok((hosts, nodes))
}

/// The nodes of the datanodes `inv` marks `state = "removed"` (and their standbys), with the
/// commands that stop them; see [`crate::plan::spread`].
pub fn retiring(
    inv: &Inventory,
    renderer: &Renderer,
    bin_rel: &str,
) -> Result<Vec<Retiring>, RenderError> {
    let removed: Vec<&Node> = inv.nodes.iter().filter(|n| n.removed).collect();
    if removed.is_empty() {
        return Ok(Vec::new());
    }
    let all = Inventory {
        nodes: inv.nodes.iter().map(|n| Node { removed: false, ..n.clone() }).collect(),
        ..inv.clone()
    };
    let (_, nodes) = desired(&all, renderer, bin_rel, None, None)?;
    Ok(nodes
        .into_iter()
        .filter_map(|d| {
            let node = removed.iter().find(|n| n.name == d.name)?;
            let datanode = (node.role == Role::Datanode).then(|| node.datanode_name().to_string());
            Some(Retiring { node: d, datanode })
        })
        .collect())
}

/// `start` (a coordinator's `pg_ctl -Z coordinator ... start`) in restore mode, for a
/// Postgres-XC coordinator; empty otherwise.
fn restart_start_argv(start: &[String], node: &Node) -> Vec<String> {
    let kind = match node.role {
        Role::Coordinator => "coordinator",
        Role::Datanode => "datanode",
        _ => return Vec::new(),
    };
    start.iter().map(|a| if a == kind { "restoremode".into() } else { a.clone() }).collect()
}

/// How coordinator or datanode `node` joins the others ([`Join`]); `None` for other nodes
/// and flavors.
fn join(inv: &Inventory, node: &Node, bin: &str, restore_start: &[String]) -> Option<Join> {
    let kinds = [Role::Coordinator, Role::Datanode];
    if !inv.cluster.flavor.is_pgxc() || !kinds.contains(&node.role) {
        return None;
    }
    let row_on = |owner: &Node| {
        registered_nodes(inv, owner).into_iter().find(|r| r.name == node.name.as_str())
    };
    let me = row_on(node)?;
    let tcp = |peer: &Node| -> Option<Vec<String>> {
        let address = &inv.host(&peer.host)?.address;
        let user = &inv.cluster.os_user;
        Some(
            ["-h", address.as_str(), "-p", &peer.port.to_string(), "-U", user]
                .map(String::from)
                .to_vec(),
        )
    };
    let others =
        |role: Role| inv.nodes.iter().filter(move |n| n.role == role && n.name != node.name);
    let peers = others(Role::Coordinator)
        .filter_map(|peer| {
            let mut psql = vec![format!("{bin}/psql"), "-X".into(), "-q".into()];
            psql.extend(tcp(peer)?);
            psql.extend(["-d".into(), "postgres".into()]);
            Some(JoinPeer {
                name: peer.name.clone(),
                psql,
                sql: super::sql::join_peer(&row_on(peer)?),
            })
        })
        .collect();
    // A coordinator's dump carries the distribution of every table and the node definitions;
    // a datanode keeps neither (Postgres-XC's own pgxc_ctl copies a datanode's catalog so).
    let (source_role, options): (Role, &[&str]) = match node.role {
        Role::Coordinator => (Role::Coordinator, &["-s", "--include-nodes", "--dump-nodes"]),
        _ => (Role::Datanode, &["-s"]),
    };
    let dumps = others(source_role)
        .filter_map(|peer| {
            let mut dumpall = vec![format!("{bin}/pg_dumpall")];
            dumpall.extend(tcp(peer)?);
            dumpall.extend(options.iter().map(|o| o.to_string()));
            Some((peer.name.clone(), dumpall))
        })
        .collect();
    let (self_sql, marker) = match node.role {
        Role::Coordinator => (super::sql::join_self(&me), None),
        _ => {
            let marker = format!("{}/{}", node.data_dir, super::step::REDISTRIBUTE_MARKER);
            (String::new(), Some(marker))
        }
    };
    Some(Join { restore_start: restore_start.to_vec(), self_sql, peers, dumps, marker })
}

/// What the pgxc_node of `owner` (a coordinator, or a Postgres-XL datanode) must list: every
/// coordinator and datanode (never a standby) at its host's real address, the inventory's
/// `primary_datanode` marked primary and the owner's `preferred_datanodes` preferred.
fn registered_nodes(inv: &Inventory, owner: &Node) -> Vec<PgxcNodeRow> {
    inv.nodes
        .iter()
        .filter_map(|n| {
            let kind = match n.role {
                Role::Coordinator => NodeKind::Coordinator,
                Role::Datanode => NodeKind::Datanode,
                _ => return None,
            };
            let host = inv.host(&n.host)?;
            let name = n.datanode_name();
            let datanode = kind == NodeKind::Datanode;
            Some(PgxcNodeRow {
                name: name.to_string(),
                kind,
                host: host.address.clone(),
                port: n.port,
                primary: datanode && inv.cluster.primary_datanode.as_ref() == Some(name),
                preferred: datanode && owner.preferred.contains(name),
                forward: n.forward_port.unwrap_or(0),
            })
        })
        .collect()
}

/// psql on the node's Unix socket, as the cluster's user, reading SQL from stdin or `-c`.
pub fn psql(inv: &Inventory, node: &Node, bin: &str) -> Vec<String> {
    let port = node.port.to_string();
    [
        &format!("{bin}/psql"),
        "-X",
        "-q",
        "-h",
        node.socket_dir(),
        "-p",
        &port,
        "-U",
        &inv.cluster.os_user,
        "-d",
        "postgres",
    ]
    .map(str::to_string)
    .to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::fixtures;

    /// The fields the steps take (`pwfile`, `data_dir`, `log`) hold what the argv they go with
    /// say, for the staged init too.
    #[test]
    fn desired_nodes_fields_say_what_their_argv_say() {
        let after = |argv: &[String], flag: &str| -> Option<String> {
            argv.iter().skip_while(|w| *w != flag).nth(1).cloned()
        };
        for inv in [fixtures::postgres_xc(), fixtures::postgresql()] {
            let (_, nodes) = desired(&inv, &Renderer::new(), "bin", None, None).unwrap();
            for n in &nodes {
                let pwfile = n.init.iter().find_map(|a| a.strip_prefix("--pwfile="));
                assert_eq!(pwfile, n.pwfile.as_deref(), "{}", n.name);
                assert_eq!(after(&n.start, "-D").as_ref(), Some(&n.data_dir), "{}", n.name);
                assert_eq!(after(&n.restart.0, "-D").as_ref(), Some(&n.data_dir), "{}", n.name);
                assert_eq!(after(&n.start, "-l").as_ref(), Some(&n.log), "{}", n.name);
            }
        }
        let inv = fixtures::postgresql();
        let (_, nodes) = desired(&inv, &Renderer::new(), "bin", None, None).unwrap();
        let pwfiles: Vec<_> = nodes.iter().map(|n| n.pwfile.as_deref()).collect();
        assert_eq!(
            pwfiles,
            [
                Some("/srv/pg/pg1.pgxc-deploy-tmp.pgxc-deploy-pw"),
                None,
                Some("/srv/pg/pg2.pgxc-deploy-tmp.pgxc-deploy-pw"),
            ]
        );
    }

    /// `primary_datanode` is marked in every catalog; `preferred_datanodes` only in the
    /// catalog of the coordinator that lists them, in the diff's rows and in the SQL a fresh
    /// coordinator runs alike.
    #[test]
    fn marks_are_per_catalog() {
        let mut inv = fixtures::postgres_xc();
        inv.cluster.primary_datanode = Some(NodeName::new("dn1").unwrap());
        let coord1 = inv.nodes.iter_mut().find(|n| n.name == "coord1").unwrap();
        coord1.preferred = vec![NodeName::new("dn2").unwrap()];
        let (_, nodes) = desired(&inv, &Renderer::new(), "bin", None, None).unwrap();
        let marks = |coordinator: &str| -> Vec<String> {
            let n = nodes.iter().find(|n| n.name == coordinator).unwrap();
            let rows = n.pgxc_node.as_ref().unwrap();
            rows.iter().map(|r| format!("{} {}", r.name, r.marks())).collect()
        };
        let unmarked = ["coord1 unmarked", "coord2 unmarked"];
        assert_eq!(marks("coord1")[..2], unmarked);
        assert_eq!(marks("coord1")[2..], ["dn1 primary", "dn2 preferred"]);
        assert_eq!(marks("coord2")[2..], ["dn1 primary", "dn2 unmarked"]);
        let sql = |coordinator: &str| {
            nodes.iter().find(|n| n.name == coordinator).unwrap().register_sql.clone()
        };
        assert!(sql("coord1").contains("PORT = 15432, PRIMARY);\n"), "{}", sql("coord1"));
        assert!(sql("coord1").contains("PORT = 15433, PREFERRED);\n"), "{}", sql("coord1"));
        assert!(!sql("coord2").contains("PREFERRED"), "{}", sql("coord2"));
    }
}
