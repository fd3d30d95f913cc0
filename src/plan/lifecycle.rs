//! What `start` and `stop` do, as values: the selected nodes in tiers (the flavor's start
//! order: GTM, datanodes, standbys, coordinators; stop in reverse), and for each node a
//! [`Decision`] from the probe's facts: a step to run, nothing (already so), or why it cannot
//! be done. PURE: `ops::lifecycle` probes, runs the steps tier by tier and reports.

use std::collections::BTreeMap;

use super::state::HostFacts;
use super::step::{Action, Step};
use crate::flavors::{NodeCommands, StopMode};
use crate::inventory::{Node, Role};

/// Start or stop, and how to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Start,
    Stop(StopMode),
}

/// What to do with one node.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Run(Step),
    /// Nothing to do: `already running` / `already stopped`.
    Already(&'static str),
    /// It cannot be done: the node's host is unreachable, or the node is not initialised.
    Cannot(String),
}

/// One selected node and what to do with it.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeDecision {
    pub node: String,
    pub host: String,
    pub decision: Decision,
}

/// Nodes of one role, handled at once; a tier starts when the previous one is done.
#[derive(Debug, Clone, PartialEq)]
pub struct Tier {
    pub role: Role,
    pub nodes: Vec<NodeDecision>,
}

/// What a start or stop did to each node.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Ran {
    pub done: Vec<Handled>,
    pub already: Vec<Handled>,
    pub failed: Vec<Handled>,
    /// Not started because an earlier tier failed.
    pub skipped: Vec<Handled>,
}

impl Ran {
    /// After a stop: `node` was seen stopped (stopped now, or down already). A node that
    /// failed, or that the run did not cover, may still run.
    pub fn stopped(&self, node: &str) -> bool {
        self.done.iter().chain(&self.already).any(|h| h.node == node)
    }
}

/// A node that start or stop handled, by identity (its name; `host` for reports).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handled {
    pub node: String,
    pub host: String,
}

impl std::fmt::Display for Handled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} on {}", self.node, self.host)
    }
}

impl NodeDecision {
    pub fn handled(&self) -> Handled {
        Handled { node: self.node.clone(), host: self.host.clone() }
    }
}

/// Tiers for `direction` over `nodes` (the selected nodes with their commands), in the
/// flavor's `start_order` (reversed to stop). `facts` per host: what the probe found, or why
/// the host could not be probed. `fenced`: nodes that must not start, and why (old primaries
/// whose standby a failover promoted).
pub fn tiers(
    direction: Direction,
    start_order: &[Role],
    nodes: &[(&Node, NodeCommands)],
    facts: &BTreeMap<String, Result<HostFacts, String>>,
    fenced: &BTreeMap<String, String>,
) -> Vec<Tier> {
    let mut order = start_order.to_vec();
    if direction != Direction::Start {
        order.reverse();
    }
    order
        .into_iter()
        .map(|role| Tier {
            role,
            nodes: nodes
                .iter()
                .filter(|(n, _)| n.role == role)
                .map(|(n, commands)| NodeDecision {
                    node: n.name.to_string(),
                    host: n.host.clone(),
                    decision: match fenced.get(n.name.as_str()) {
                        Some(why) if direction == Direction::Start => Decision::Cannot(why.clone()),
                        _ => decide(direction, n, commands, facts),
                    },
                })
                .collect(),
        })
        .filter(|tier| !tier.nodes.is_empty())
        .collect()
}

fn decide(
    direction: Direction,
    node: &Node,
    commands: &NodeCommands,
    facts: &BTreeMap<String, Result<HostFacts, String>>,
) -> Decision {
    let f = match facts.get(&node.host) {
        Some(Ok(h)) => h.nodes.get(node.name.as_str()),
        Some(Err(why)) => return Decision::Cannot(format!("host unreachable: {why}")),
        None => return Decision::Cannot("host not probed".into()),
    };
    let Some(f) = f else { return Decision::Cannot("the probe did not report this node".into()) };
    let step = |action| {
        Decision::Run(Step { host: node.host.clone(), node: Some(node.name.clone()), action })
    };
    match direction {
        Direction::Start if f.running => Decision::Already("already running"),
        Direction::Start if !f.initialized => Decision::Cannot(format!(
            "{} is not initialised; `pgxc-deploy apply` builds it",
            node.data_dir
        )),
        // A live process that does not answer yet is starting: the start step's wait covers it.
        Direction::Start => step(Action::start(commands)),
        Direction::Stop(_) if !f.running && !f.alive => Decision::Already("already stopped"),
        Direction::Stop(mode) => step(Action::stop(commands, mode)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flavors;
    use crate::inventory::Inventory;
    use crate::plan::fixtures;
    use crate::plan::state::NodeFacts;

    fn commands(inv: &Inventory) -> Vec<(&Node, NodeCommands)> {
        let flavor = flavors::of(inv.cluster.flavor);
        inv.nodes.iter().map(|n| (n, flavor.commands(inv, n, "/b").unwrap())).collect()
    }

    /// Every node initialised; `running` ones run.
    fn facts(inv: &Inventory, running: &[&str]) -> BTreeMap<String, Result<HostFacts, String>> {
        let mut facts: BTreeMap<String, Result<HostFacts, String>> = BTreeMap::new();
        for n in &inv.nodes {
            let up = running.contains(&n.name.as_str());
            let f = NodeFacts {
                dir_exists: true,
                initialized: true,
                running: up,
                alive: up,
                ..Default::default()
            };
            let host = facts.entry(n.host.clone()).or_insert_with(|| Ok(HostFacts::default()));
            host.as_mut().unwrap().nodes.insert(n.name.clone(), f);
        }
        facts
    }

    fn names(tiers: &[Tier]) -> Vec<Vec<&str>> {
        tiers.iter().map(|t| t.nodes.iter().map(|n| n.node.as_str()).collect()).collect()
    }

    fn shown(tiers: &[Tier]) -> Vec<String> {
        let mut out = Vec::new();
        for t in tiers {
            for n in &t.nodes {
                out.push(match &n.decision {
                    Decision::Run(step) => step.to_string(),
                    Decision::Already(what) => format!("{} on {}: {what}", n.node, n.host),
                    Decision::Cannot(why) => format!("{} on {}: cannot: {why}", n.node, n.host),
                });
            }
        }
        out
    }

    #[test]
    fn start_in_dependency_order_and_stop_in_reverse() {
        let inv = fixtures::postgres_xc();
        let order = flavors::of(inv.cluster.flavor).start_order();
        let nodes = commands(&inv);
        let start = tiers(Direction::Start, order, &nodes, &facts(&inv, &[]), &BTreeMap::new());
        assert_eq!(
            names(&start),
            [
                vec!["gtm"],
                vec!["dn1", "dn2"],
                vec!["dn1_standby", "dn2_replica"],
                vec!["coord1", "coord2"]
            ]
        );
        let all: Vec<&str> = inv.nodes.iter().map(|n| n.name.as_str()).collect();
        let stop = tiers(
            Direction::Stop(StopMode::Fast),
            order,
            &nodes,
            &facts(&inv, &all),
            &BTreeMap::new(),
        );
        let mut reversed = names(&start);
        reversed.reverse();
        assert_eq!(names(&stop), reversed);
        assert_eq!(stop[0].role, Role::Coordinator);
        assert_eq!(shown(&stop)[6], "gtm on db1: stop (fast)");
        let Decision::Run(Step { action: Action::Stop { remove, .. }, .. }) =
            &stop[3].nodes[0].decision
        else {
            panic!("gtm stops");
        };
        assert_eq!(remove, &["/var/lib/pgxc/gtm/register.node"]);
    }

    #[test]
    fn only_selected_nodes_and_only_what_is_not_already_so() {
        let inv = fixtures::postgresql();
        let order = flavors::of(inv.cluster.flavor).start_order();
        let all = commands(&inv);
        let selected: Vec<_> = all.into_iter().filter(|(n, _)| n.name.as_str() != "pg2").collect();
        let f = facts(&inv, &["pg1"]);
        assert_eq!(
            shown(&tiers(Direction::Start, order, &selected, &f, &BTreeMap::new())),
            ["pg1 on pg-a: already running", "pg1_standby on pg-b: start"]
        );
        assert_eq!(
            shown(&tiers(
                Direction::Stop(StopMode::Immediate),
                order,
                &selected,
                &f,
                &BTreeMap::new()
            )),
            ["pg1_standby on pg-b: already stopped", "pg1 on pg-a: stop (immediate)"]
        );
    }

    #[test]
    fn a_fenced_old_primary_is_never_started_but_may_be_stopped() {
        let inv = fixtures::postgresql();
        let order = flavors::of(inv.cluster.flavor).start_order();
        let nodes = commands(&inv);
        let fenced = BTreeMap::from([("pg1".to_string(), "fenced by failover".to_string())]);
        let start = tiers(Direction::Start, order, &nodes, &facts(&inv, &[]), &fenced);
        assert_eq!(shown(&start)[0], "pg1 on pg-a: cannot: fenced by failover");
        let stop =
            tiers(Direction::Stop(StopMode::Fast), order, &nodes, &facts(&inv, &["pg1"]), &fenced);
        assert_eq!(shown(&stop)[1], "pg1 on pg-a: stop (fast)");
    }

    #[test]
    fn a_live_process_that_does_not_answer_is_stopped_and_a_missing_node_is_not_started() {
        let inv = fixtures::postgresql();
        let order = flavors::of(inv.cluster.flavor).start_order();
        let nodes = commands(&inv);
        let mut f = facts(&inv, &[]);
        let h = f.get_mut("pg-a").unwrap().as_mut().unwrap();
        h.nodes.get_mut("pg1").unwrap().alive = true;
        f.insert("pg-b".into(), Err("connect: refused".into()));
        assert_eq!(
            shown(&tiers(Direction::Stop(StopMode::Fast), order, &nodes, &f, &BTreeMap::new())),
            [
                "pg1_standby on pg-b: cannot: host unreachable: connect: refused",
                "pg1 on pg-a: stop (fast)",
                "pg2 on pg-b: cannot: host unreachable: connect: refused"
            ]
        );
        let h = f.get_mut("pg-a").unwrap().as_mut().unwrap();
        h.nodes.get_mut("pg1").unwrap().initialized = false;
        h.nodes.get_mut("pg1").unwrap().alive = false;
        assert_eq!(
            shown(&tiers(Direction::Start, order, &nodes, &f, &BTreeMap::new()))[0],
            "pg1 on pg-a: cannot: /srv/pg/pg1 is not initialised; `pgxc-deploy apply` builds it"
        );
    }

    #[test]
    fn only_a_node_seen_stopped_counts_as_stopped_whatever_its_label() {
        let h = |node: &str, host: &str| Handled { node: node.into(), host: host.into() };
        let ran = Ran {
            done: vec![h("pg1", "h1")],
            already: vec![h("pg2", "h2")],
            // A node named like another's label must not stand for it.
            failed: vec![h("pg3", "h3"), h("pg1 on h1", "h1")],
            skipped: vec![h("pg4", "h1")],
        };
        assert!(ran.stopped("pg1") && ran.stopped("pg2"));
        assert!(!ran.stopped("pg3") && !ran.stopped("pg4") && !ran.stopped("pg5"));
        assert_eq!(ran.failed[0].to_string(), "pg3 on h3");
    }
}
