//! GTM failover and switchover: which node is promoted, how the cluster is re-pointed at it,
//! and the steps that do it. PURE.
//!
//! Postgres-XC nodes reach the GTM at `gtm_host`/`gtm_port`, read only when a server starts.
//! A host with a gtm_proxy has its nodes reach the GTM through the proxy, and a running proxy
//! can be re-pointed live (`gtm_ctl reconnect -Z gtm_proxy`): no node restarts. The nodes of a
//! host without a proxy must restart with the new address. [`Handover::describe`] says which
//! path a handover takes, before it runs.

use std::collections::BTreeMap;

use crate::flavors::{NodeCommands, StopMode};
use crate::inventory::{Inventory, Node, Role};

use super::desired::DesiredNode;
use super::sql;
use super::state::{HostFacts, NodeFacts};
use super::step::{Action, Step};

/// How long the promoted GTM may take to say it is the active one (tenths of a second).
const ACTIVE_TENTHS: u32 = 100;

/// A GTM handover, in the cluster as it runs now (the roles file applied).
#[derive(Debug, Clone, PartialEq)]
pub struct Handover<'a> {
    /// The active GTM until now: fenced (failover) or stopped cleanly (switchover).
    pub old: &'a Node,
    /// Its standby, promoted.
    pub new: &'a Node,
    /// gtm_proxies: re-pointed live, and their gtm_proxy.conf rewritten.
    pub proxies: Vec<&'a Node>,
    /// Coordinators, datanodes and standbys on hosts without a proxy: their postgresql.conf
    /// rewritten, and restarted (gtm_host/gtm_port are read only at start).
    pub restarts: Vec<&'a Node>,
    /// Where the GTM's address is a pgxc_node row (OpenTenBase, no `gtm_host` setting): the
    /// coordinators and datanodes, whose row is altered live ([`repoint_catalog`]); no proxy,
    /// no restart.
    pub catalogs: Vec<&'a Node>,
}

/// The handover of `now`'s GTM to its standby. `Err`: there is none to hand over to.
pub fn handover(now: &Inventory) -> Result<Handover<'_>, String> {
    let old = now.node_of(Role::Gtm).ok_or("the inventory has no [gtm]")?;
    let new = now.node_of(Role::GtmStandby).ok_or_else(|| {
        format!(
            "{} has no standby to take over: add a [gtm.standby] table to the inventory and run \
             apply first",
            old.name
        )
    })?;
    let proxies = now.nodes.iter().filter(|n| n.role == Role::GtmProxy).collect();
    if !crate::flavors::of(now.cluster.flavor).features().gtm_setting {
        let catalogs = now
            .nodes
            .iter()
            .filter(|n| matches!(n.role, Role::Coordinator | Role::Datanode))
            .collect();
        return Ok(Handover { old, new, proxies, restarts: Vec::new(), catalogs });
    }
    let restarts = now
        .nodes
        .iter()
        .filter(|n| n.role.is_server() && now.gtm_proxy_on(&n.host).is_none())
        .collect();
    Ok(Handover { old, new, proxies, restarts, catalogs: Vec::new() })
}

impl Handover<'_> {
    /// What the handover will do, one line each, said before it starts.
    pub fn describe(&self) -> Vec<String> {
        let names = |nodes: &[&Node]| {
            nodes.iter().map(|n| format!("{} on {}", n.name, n.host)).collect::<Vec<_>>().join(", ")
        };
        let mut lines =
            vec![format!("promote {} on {} (gtm_ctl promote)", self.new.name, self.new.host)];
        if !self.proxies.is_empty() {
            lines.push(format!(
                "re-point the gtm_proxies live, no node restarts for their hosts (gtm_ctl \
                 reconnect): {}",
                names(&self.proxies)
            ));
        }
        if !self.catalogs.is_empty() {
            lines.push(format!(
                "re-point the GTM's row in the pgxc_node of every coordinator and datanode, live \
                 (ALTER NODE), no node restarts: {}",
                names(&self.catalogs)
            ));
        } else if self.restarts.is_empty() {
            lines.push("restart no node: every node reaches the GTM through a gtm_proxy".into());
        } else {
            lines.push(format!(
                "restart {} once promoted, cleanly: it forgets the transactions that nodes \
                 connected to the lost GTM without a proxy left open, which would stay open on \
                 it for good and hide their rows (a commit the lost GTM never heard of is \
                 acknowledged all the same)",
                self.new.name
            ));
            lines.push(format!(
                "restart the nodes of hosts without a gtm_proxy with the new gtm_host/gtm_port \
                 (read only at a server's start; their writes fail meanwhile): {}",
                names(&self.restarts)
            ));
        }
        lines
    }

    /// The promoted GTM restarts before the nodes do: nodes without a proxy may have left
    /// transactions open on it that no client will ever end ([`Handover::describe`]). Through
    /// a proxy a client keeps its identity across the handover and ends its own.
    pub fn restarts_gtm(&self) -> bool {
        !self.restarts.is_empty()
    }
}

/// Why `new` (the GTM standby, listening on `address`) cannot be promoted, from what its probe
/// found; `None`: it runs as a standby that the active GTM could reach, so it holds the active
/// GTM's state.
pub fn refusal(
    new: &Node,
    address: &str,
    facts: Result<Option<&NodeFacts>, String>,
) -> Option<String> {
    let why = match facts {
        Err(why) => format!("its host cannot be reached ({why})"),
        Ok(None) => "the probe did not report it".into(),
        Ok(Some(f)) if !f.initialized => "it was never set up: run apply first".into(),
        Ok(Some(f)) if !f.running => "it is not running, so it holds no copy of the GTM's \
                                      state to carry on from"
            .into(),
        Ok(Some(f)) if f.in_recovery != Some(true) => {
            "it does not run as a standby (its gtm.pid does not say so)".into()
        }
        Ok(Some(f)) if let Some(why) = f.unreached(&new.host, address) => why,
        Ok(Some(_)) => return None,
    };
    Some(format!("refusing to promote {} on {}: {why}; nothing was changed", new.name, new.host))
}

/// Apply's refusals of GTM standbys (`nodes` as apply would leave them) that the active GTM
/// could never reach: their host's connections to it come from another address than the one
/// they listen on, or from an address that could not be read ([`NodeFacts::unreached`]).
pub fn unreachable_standbys(
    inv: &Inventory,
    nodes: &[DesiredNode],
    facts: &BTreeMap<String, HostFacts>,
) -> Vec<String> {
    nodes
        .iter()
        .filter(|n| n.role == Role::GtmStandby)
        .filter_map(|n| {
            let f = facts.get(&n.host)?.nodes.get(&n.name)?;
            let why = f.unreached(&n.host, &inv.host(&n.host)?.address)?;
            Some(format!("GTM standby {} on {}: {why}", n.name, n.host))
        })
        .collect()
}

/// Stop the active GTM: at once to fence it (failover), or cleanly (switchover).
pub fn stop(old: &Node, commands: &NodeCommands, mode: StopMode) -> Step {
    step(old, Action::stop(commands, mode))
}

/// Restart the promoted GTM ([`Handover::restarts_gtm`]) in two steps, run one after the
/// other: a fast stop, which also removes its register.node (the GTM's `remove_after_stop`),
/// then a start. A stop saves its next transaction ID; the transactions it held open are not
/// kept. Without the removal, Postgres-X2's GTM found itself among the GTMs its register.node
/// lists, connected to itself as its own standby and hung (Postgres-XL skips its own name);
/// nodes register again as they connect.
pub fn restart_fresh(new: &Node, commands: &NodeCommands) -> [Step; 2] {
    let stop = Action::stop(commands, StopMode::Fast);
    [step(new, stop), step(new, Action::start(commands))]
}

/// Promote the GTM standby, then wait until its PID file says it is the active one.
pub fn promote(new: &Node, commands: &NodeCommands) -> Vec<Step> {
    let promoted = "it was told to run as the active GTM".to_string();
    vec![
        step(new, Action::Check { argv: commands.promote.clone(), what: promoted }),
        step(
            new,
            Action::Await {
                argv: gtm_mode_is(&commands.data_dir, ACTIVE),
                what: "its gtm.pid says it runs as the active GTM".into(),
                tenths: ACTIVE_TENTHS,
            },
        ),
    ]
}

/// Wait until the PID file of a GTM started as a standby says so.
pub fn runs_as_standby(node: &Node, commands: &NodeCommands) -> Step {
    step(
        node,
        Action::Await {
            argv: gtm_mode_is(&commands.data_dir, STANDBY),
            what: "its gtm.pid says it runs as a standby".into(),
            tenths: ACTIVE_TENTHS,
        },
    )
}

/// Re-point a running gtm_proxy at the active GTM at `address:port` with `reconnect` (its
/// `gtm_ctl ... reconnect` argv, [`crate::flavors::postgres_xc::reconnect`]).
pub fn reconnect(proxy: &Node, reconnect: Vec<String>, address: &str, port: u16) -> Step {
    let what = format!("it was told to use the GTM at {address}:{port}");
    step(proxy, Action::Check { argv: reconnect, what })
}

/// Re-point the GTM's row `gtm` (its name in pgxc_node) at `address:port` in the pgxc_node of
/// `node` (`psql`: its psql argv), live: where the GTM's address is a catalog row, not a
/// setting (OpenTenBase). Tried again until it commits, for [`WRITE_TENTHS`]: a promoted
/// OpenTenBase GTM refuses timestamps for a few seconds ("could not obtain global timestamp").
pub fn repoint_catalog(node: &Node, psql: &[String], gtm: &str, address: &str, port: u16) -> Step {
    let mut argv = psql.to_vec();
    argv.extend(["-v".to_string(), "ON_ERROR_STOP=1".to_string()]);
    for statement in sql::repoint_gtm(gtm, address, port) {
        argv.extend(["-c".to_string(), statement]);
    }
    let what = format!("its pgxc_node has GTM {gtm} at {address}:{port}");
    step(node, Action::Await { argv, what, tenths: WRITE_TENTHS })
}

/// How long a write through a coordinator may keep failing after a handover (tenths of a
/// second): an OpenTenBase GTM refuses timestamps for about 3 s after its promotion ("sync
/// time exceeded").
pub const WRITE_TENTHS: u32 = 300;

/// A write that commits through `coordinator` (`psql`: its psql argv, which stops at the first
/// error): it needs a transaction ID and a snapshot from the GTM. Each try is given up after
/// 5 s; tried again until it commits, for [`WRITE_TENTHS`].
pub fn write_check(coordinator: &Node, psql: &[String]) -> Step {
    let mut argv = vec!["env".to_string(), "PGOPTIONS=-c statement_timeout=5s".to_string()];
    argv.extend(psql.iter().cloned());
    argv.extend(["-c".to_string(), sql::GTM_WRITE_CHECK.to_string()]);
    let what = "a write through it commits".into();
    step(coordinator, Action::Await { argv, what, tenths: WRITE_TENTHS })
}

/// `status` (a `gtm_ctl status` argv), succeeding only when its last line contains `word`.
/// The third line of gtm.pid: how the GTM runs, `1` the active one, `0` a standby (written at
/// start and again at promotion; Postgres-X2's `gtm_ctl status` prints it as `1 master` or
/// `0 slave`, Postgres-XL's not at all).
const ACTIVE: &str = "1";
const STANDBY: &str = "0";

/// An argv that succeeds when the GTM of `data_dir` runs (its PID file names a live process)
/// and its PID file says `mode` ([`ACTIVE`] or [`STANDBY`]).
fn gtm_mode_is(data_dir: &str, mode: &str) -> Vec<String> {
    crate::flavors::pid_file_says(&format!("{data_dir}/gtm.pid"), Some(mode))
}

fn step(node: &Node, action: Action) -> Step {
    Step { host: node.host.clone(), node: Some(node.name.clone()), action }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flavors::{self, Flavor};
    use crate::plan::fixtures;

    fn commands(inv: &Inventory, name: &str) -> NodeCommands {
        let node = inv.node(name).unwrap();
        flavors::postgres_xc::PostgresXc.commands(inv, node, "/opt/pgxc/bin").unwrap()
    }

    #[test]
    fn proxies_are_re_pointed_and_the_nodes_of_hosts_without_one_restarted() {
        let inv = fixtures::postgres_xc_ha();
        let h = handover(&inv).unwrap();
        assert_eq!((h.old.name.as_str(), h.new.name.as_str()), ("gtm", "gtm_standby"));
        let names = |nodes: &[&Node]| nodes.iter().map(|n| n.name.to_string()).collect::<Vec<_>>();
        assert_eq!(names(&h.proxies), ["proxy2"]);
        // db2 has the proxy: coord2 and dn1 stay up; db1's and db3's nodes restart.
        assert_eq!(names(&h.restarts), ["coord1", "dn1_standby", "dn2", "dn2_replica"]);
        let said = h.describe().join("\n");
        assert!(said.contains("promote gtm_standby on db2"), "{said}");
        assert!(said.contains("re-point the gtm_proxies live") && said.contains("proxy2 on db2"));
        assert!(said.contains("restart the nodes of hosts without a gtm_proxy"), "{said}");
        // Before them, the promoted GTM, which forgets what their clients left open.
        assert!(h.restarts_gtm());
        let gtm_restart = said.find("restart gtm_standby once promoted").expect("said");
        assert!(gtm_restart < said.find("restart the nodes").unwrap(), "{said}");

        let mut all_proxied = inv.clone();
        for host in ["db1", "db3"] {
            let mut proxy = inv.node("proxy2").unwrap().clone();
            proxy.name = format!("proxy_{host}").parse().unwrap();
            proxy.host = host.into();
            all_proxied.nodes.push(proxy);
        }
        let h = handover(&all_proxied).unwrap();
        assert!(h.restarts.is_empty() && !h.restarts_gtm());
        assert!(h.describe().join("\n").contains("restart no node"));
    }

    /// OpenTenBase: the GTM's pgxc_node row is altered on every coordinator and datanode,
    /// again until it commits; no node restarts.
    #[test]
    fn opentenbase_re_points_the_catalogs_and_restarts_nothing() {
        let mut inv = fixtures::opentenbase();
        let gtm_standby = crate::inventory::Node {
            primary: Some(crate::inventory::NodeName::new("gtm").unwrap()),
            pooler_port: None,
            forward_port: None,
            ..inv.node("coord2").unwrap().clone()
        };
        let gtm_standby = crate::inventory::Node {
            name: crate::inventory::NodeName::new("gtm_standby").unwrap(),
            role: Role::GtmStandby,
            port: 6666,
            ..gtm_standby
        };
        inv.nodes.insert(1, gtm_standby);
        let h = handover(&inv).unwrap();
        assert!(h.restarts.is_empty() && h.proxies.is_empty());
        let names: Vec<&str> = h.catalogs.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["coord1", "coord2", "dn1", "dn2"]);
        assert!(h.describe()[1].contains("re-point the GTM's row"), "{:?}", h.describe());
        let step = repoint_catalog(h.catalogs[0], &["psql".to_string()], "gtm", "10.0.0.2", 6666);
        let Action::Await { argv, tenths, .. } = &step.action else { panic!("{step:?}") };
        assert_eq!(*tenths, WRITE_TENTHS);
        assert_eq!(
            argv.join(" "),
            "psql -v ON_ERROR_STOP=1 -c ALTER NODE gtm WITH (HOST = '10.0.0.2', PORT = 6666) -c \
             SELECT pgxc_pool_reload()"
        );
    }

    #[test]
    fn no_standby_no_handover() {
        let err = handover(&fixtures::postgres_xc()).unwrap_err();
        assert!(err.contains("gtm has no standby") && err.contains("[gtm.standby]"), "{err}");
    }

    #[test]
    fn only_a_running_standby_is_promoted() {
        let inv = fixtures::postgres_xc_ha();
        let new = inv.node("gtm_standby").unwrap();
        let standby = NodeFacts {
            initialized: true,
            running: true,
            in_recovery: Some(true),
            ..NodeFacts::default()
        };
        assert_eq!(refusal(new, "10.0.0.2", Ok(Some(&standby))), None);
        let active = NodeFacts { in_recovery: Some(false), ..standby.clone() };
        let stopped = NodeFacts { running: false, ..standby.clone() };
        let reached = NodeFacts { reach_from: Some("10.0.0.2".into()), ..standby.clone() };
        assert_eq!(refusal(new, "10.0.0.2", Ok(Some(&reached))), None);
        let elsewhere = NodeFacts { reach_from: Some("127.0.0.1".into()), ..standby.clone() };
        let unknown = NodeFacts { reach_from: Some("?".into()), ..standby.clone() };
        let cases = [
            (Err("timed out".to_string()), "its host cannot be reached (timed out)"),
            (Ok(Some(&stopped)), "it is not running"),
            (Ok(Some(&active)), "does not run as a standby"),
            (Ok(Some(&elsewhere)), "which is 127.0.0.1 on db2, but it listens on 10.0.0.2"),
            (Ok(Some(&unknown)), "install iproute2 on db2"),
        ];
        for (facts, why) in cases {
            let said = refusal(new, "10.0.0.2", facts).unwrap();
            assert!(said.starts_with("refusing to promote gtm_standby on db2: "), "{said}");
            assert!(said.contains(why) && said.ends_with("nothing was changed"), "{said}");
        }
    }

    #[test]
    fn promote_then_wait_for_the_active_role() {
        let inv = fixtures::postgres_xc_ha();
        let steps = promote(inv.node("gtm_standby").unwrap(), &commands(&inv, "gtm_standby"));
        let Action::Check { argv, .. } = &steps[0].action else { panic!("{steps:?}") };
        assert_eq!(
            argv.join(" "),
            "/opt/pgxc/bin/gtm_ctl -Z gtm -D /var/lib/pgxc/gtm_standby promote"
        );
        let Action::Await { argv, .. } = &steps[1].action else { panic!("{steps:?}") };
        assert_eq!(argv[3..], ["/var/lib/pgxc/gtm_standby/gtm.pid", "1"]);
    }
    /// The mode check under a real /bin/sh, over PID files written here.
    #[test]
    fn the_mode_check_reads_the_pid_file() {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().to_str().unwrap();
        let run = |contents: &str, mode: &str| {
            std::fs::write(dir.path().join("gtm.pid"), contents).unwrap();
            let argv = gtm_mode_is(data_dir, mode);
            std::process::Command::new(&argv[0]).args(&argv[1..]).status().unwrap().success()
        };
        let me = std::process::id();
        assert!(run(&format!("{me}\n{data_dir}\n1\n"), ACTIVE));
        assert!(!run(&format!("{me}\n{data_dir}\n0\n"), ACTIVE));
        assert!(run(&format!("{me}\n{data_dir}\n0\n"), STANDBY));
        assert!(!run(&format!("999999999\n{data_dir}\n1\n"), ACTIVE), "a dead GTM");
        assert!(!run("", STANDBY));
    }
}
