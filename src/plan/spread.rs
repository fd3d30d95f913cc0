//! Where the rows of a running Postgres-XC cluster live when its datanodes change. PURE: apply's
//! plan ([`super::diff::plan`]) calls this with the facts of its probe.
//!
//! - A datanode that joined (in this plan, or earlier with its
//!   [`REDISTRIBUTE_MARKER`](super::step::REDISTRIBUTE_MARKER) still there) gets every table that
//!   is on all the other datanodes (`ALTER TABLE ... ADD NODE`).
//! - A datanode marked `state = "removed"` in the inventory ([`Retiring`]) loses every table
//!   (`ALTER TABLE ... DELETE NODE`, which moves its rows to the table's other datanodes), then
//!   is dropped from every coordinator's pgxc_node, then stopped with its standby. Its
//!   directories stay for `clean`.
//!
//! One table per phase, through one running coordinator, so the cluster stays usable; each step
//! counts the table's rows before and after and checks where they are
//! ([`crate::remote::steps::redistribute`]). What would lose rows is refused before anything
//! runs ([`refusals`]): a table that is only on removed datanodes, and a datanode that
//! coordinators list but the inventory no longer names (dropping it would strand its rows).

use std::collections::BTreeMap;

use super::desired::DesiredNode;
pub use super::desired::Retiring;
use super::state::{HostFacts, NodeFacts, NodeKind, PgxcNodeRow};
use super::step::{Action, Plan, Redistribute, Step};
use crate::inventory::Role;

/// What [`plan`] needs to know about the cluster.
pub struct Cluster<'a> {
    /// The nodes the inventory keeps.
    pub nodes: &'a [DesiredNode],
    pub retiring: &'a [Retiring],
    /// The datanodes that join in this plan.
    pub joined: &'a [String],
    /// The running coordinator that DDL goes through, if any.
    pub source: Option<&'a DesiredNode>,
    pub facts: &'a BTreeMap<String, HostFacts>,
}

impl<'a> Cluster<'a> {
    /// The cluster as apply left it: nothing joins, DDL through the first running
    /// coordinator. For [`unretired`].
    pub fn after(
        nodes: &'a [DesiredNode],
        retiring: &'a [Retiring],
        facts: &'a BTreeMap<String, HostFacts>,
    ) -> Cluster<'a> {
        let source = Cluster { nodes, retiring, joined: &[], source: None, facts }
            .coordinators()
            .map(|(n, _)| n.name.clone())
            .next();
        let source = source.and_then(|name| nodes.iter().find(|n| n.name == name));
        Cluster { nodes, retiring, joined: &[], source, facts }
    }

    fn fact(&self, n: &DesiredNode) -> &NodeFacts {
        static EMPTY: std::sync::OnceLock<NodeFacts> = std::sync::OnceLock::new();
        let empty = EMPTY.get_or_init(NodeFacts::default);
        self.facts.get(&n.host).and_then(|h| h.nodes.get(&n.name)).unwrap_or(empty)
    }

    /// The datanodes that get tables: joined now, or whose redistribution is unfinished.
    fn new_datanodes(&self) -> Vec<&DesiredNode> {
        let joined = |n: &DesiredNode| self.joined.iter().any(|j| j == n.name.as_str());
        self.nodes
            .iter()
            .filter(|n| n.role == Role::Datanode && (joined(n) || self.fact(n).redistributing))
            .collect()
    }

    /// The coordinators as they run, with their facts.
    fn coordinators(&self) -> impl Iterator<Item = (&DesiredNode, &NodeFacts)> {
        self.nodes
            .iter()
            .filter(|n| n.role == Role::Coordinator)
            .map(|n| (n, self.fact(n)))
            .filter(|(_, f)| f.initialized && f.running)
    }

    /// The running nodes that keep a pgxc_node (coordinators; Postgres-XL datanodes too), with
    /// their facts.
    fn registering(&self) -> impl Iterator<Item = (&DesiredNode, &NodeFacts)> {
        self.nodes
            .iter()
            .filter(|n| n.pgxc_node.is_some())
            .map(|n| (n, self.fact(n)))
            .filter(|(_, f)| f.initialized && f.running)
    }

    /// The names (as coordinators know them) of the removed datanodes that some running node
    /// still lists in its pgxc_node, or whose name a table of the source still holds.
    fn still_in(&self) -> Vec<&str> {
        let tables = self.source.map(|s| &self.fact(s).tables);
        self.retiring
            .iter()
            .filter_map(|r| r.datanode.as_deref())
            .filter(|name| {
                let listed = self
                    .registering()
                    .any(|(_, f)| f.pgxc_node.iter().any(|row| row.name == *name));
                let used =
                    tables.is_some_and(|t| t.iter().any(|t| t.nodes.iter().any(|n| n == name)));
                listed || used
            })
            .collect()
    }
}

/// What apply must refuse before it changes anything, each a sentence that says what to do.
pub fn refusals(c: &Cluster) -> Vec<String> {
    let mut refused = Vec::new();
    let wanted = |name: &str| {
        c.nodes.iter().any(|n| n.pgxc_node.iter().flatten().any(|row| row.name == name))
    };
    let retiring = |name: &str| c.retiring.iter().any(|r| r.datanode.as_deref() == Some(name));
    let mut vanished: BTreeMap<&str, &str> = BTreeMap::new();
    for (coordinator, f) in c.coordinators() {
        for row in f.pgxc_node.iter().filter(|r| r.kind == NodeKind::Datanode) {
            if !wanted(&row.name) && !retiring(&row.name) {
                vanished.entry(row.name.as_str()).or_insert(coordinator.name.as_str());
            }
        }
    }
    for (datanode, coordinator) in vanished {
        refused.push(format!(
            "datanode {datanode} is registered on {coordinator} but the inventory no longer has \
             it: dropping it would strand the rows it holds. To take it out of the cluster with \
             its rows moved to the other datanodes, put its [[datanodes]] entry back with \
             `state = \"removed\"`; to keep it, put the entry back as it was"
        ));
    }
    let still_in = c.still_in();
    if still_in.is_empty() {
        return refused;
    }
    let names = still_in.join(", ");
    let Some(source) = c.source else {
        refused.push(format!(
            "{names}: `state = \"removed\"`, but no coordinator runs to move its rows: start the \
             coordinators (`pgxc-deploy start INVENTORY`), then apply again"
        ));
        return refused;
    };
    for t in &c.fact(source).tables {
        let kept: Vec<&String> =
            t.nodes.iter().filter(|n| !still_in.contains(&n.as_str())).collect();
        if kept.is_empty() && !t.nodes.is_empty() {
            refused.push(format!(
                "table {} is only on {}, which is `state = \"removed\"`: its rows would be lost; \
                 spread it first (`ALTER TABLE {} ADD NODE (...)` with a datanode that stays) or \
                 drop it",
                t.name,
                t.nodes.join(", "),
                t.name
            ));
        }
    }
    let joining_coordinator = c
        .nodes
        .iter()
        .any(|n| n.role == Role::Coordinator && (!c.fact(n).initialized || c.fact(n).join_pending));
    if joining_coordinator {
        refused.push(format!(
            "a coordinator joins while {names} is removed: apply the removal first (leave the new \
             coordinator out of the inventory for that apply), then add it"
        ));
    }
    refused
}

/// The rows [`Action::Register`] must keep on `coordinator` until its removed datanodes hold no
/// table any more: their pgxc_node rows as it has them, but neither primary nor preferred (the
/// inventory's primary is another datanode, and a datanode on its way out is read from last).
pub fn kept_rows(c: &Cluster, coordinator: &DesiredNode) -> Vec<PgxcNodeRow> {
    let still_in = c.still_in();
    let f = c.fact(coordinator);
    let unmarked = |r: &PgxcNodeRow| PgxcNodeRow { primary: false, preferred: false, ..r.clone() };
    f.pgxc_node.iter().filter(|r| still_in.contains(&r.name.as_str())).map(unmarked).collect()
}

/// Add the phases that move rows: one per table (ADD NODE for new datanodes, DELETE NODE for
/// removed ones), the markers of the new ones removed, the removed ones dropped from every
/// coordinator, then stopped. Call [`refusals`] first: this assumes it found nothing.
pub fn plan(plan: &mut Plan, c: &Cluster) {
    let datanodes: Vec<&DesiredNode> =
        c.nodes.iter().filter(|n| n.role == Role::Datanode).collect();
    let new = c.new_datanodes();
    let still_in = c.still_in();
    if let Some(source) = c.source.filter(|_| !new.is_empty() || !still_in.is_empty()) {
        let old: Vec<&str> = datanodes
            .iter()
            .filter(|n| !new.iter().any(|m| m.name == n.name))
            .map(|n| n.name.as_str())
            .collect();
        let mut moves = Vec::new();
        for t in &c.fact(source).tables {
            let on_all_old = old.iter().all(|o| t.nodes.iter().any(|n| n == o));
            let add: Vec<String> = new
                .iter()
                .map(|n| n.name.to_string())
                .filter(|n| on_all_old && !t.nodes.contains(n))
                .collect();
            let delete: Vec<String> =
                t.nodes.iter().filter(|n| still_in.contains(&n.as_str())).cloned().collect();
            if add.is_empty() && delete.is_empty() {
                continue;
            }
            let mut after: Vec<String> = t
                .nodes
                .iter()
                .filter(|n| !delete.contains(n))
                .cloned()
                .chain(add.clone())
                .collect();
            after.sort();
            moves.push(Action::Redistribute(Box::new(Redistribute {
                psql: source.psql.clone(),
                table: t.name.clone(),
                kind: t.kind,
                add,
                delete,
                after,
                bytes: None,
            })));
        }
        let total = moves.len();
        for (k, action) in moves.into_iter().enumerate() {
            plan.push(format!("redistribute ({}/{total})", k + 1), vec![step(source, action)]);
        }
    }
    let done = new
        .iter()
        .filter_map(|n| {
            let path = n.join.as_ref()?.marker.clone()?;
            Some(step(n, Action::RemoveFile { path }))
        })
        .collect();
    plan.push("redistribution done", done);

    let drops = c
        .registering()
        .filter(|(_, f)| f.pgxc_node.iter().any(|r| still_in.contains(&r.name.as_str())))
        .map(|(n, _)| {
            let want = n.pgxc_node.clone().unwrap_or_default();
            let fresh_sql = n.register_sql.clone();
            step(n, Action::Register { psql: n.psql.clone(), want, fresh_sql })
        })
        .collect();
    plan.push("drop removed datanodes from every pgxc_node", drops);

    let stops = c
        .retiring
        .iter()
        .filter(|r| c.fact(&r.node).running || c.fact(&r.node).alive)
        .map(|r| {
            let n = &r.node;
            let (argv, status, _) = n.restart.clone();
            let data_dir = n.data_dir.clone();
            let mode = crate::flavors::StopMode::Fast;
            let (remove, then) = (Vec::new(), Vec::new());
            step(n, Action::Stop { argv, mode, data_dir, status, remove, then })
        })
        .collect();
    plan.push("stop removed datanodes", stops);
}

/// What is still wrong after apply took the removed datanodes out: one sentence each.
pub fn unretired(c: &Cluster) -> Vec<String> {
    let mut problems: Vec<String> = c
        .still_in()
        .into_iter()
        .map(|name| {
            format!("{name}: `state = \"removed\"`, but still registered or holding tables")
        })
        .collect();
    for r in c.retiring.iter().filter(|r| c.fact(&r.node).running) {
        problems.push(format!("{} on {}: removed, but still running", r.node.name, r.node.host));
    }
    problems
}

fn step(n: &DesiredNode, action: Action) -> Step {
    Step { host: n.host.clone(), node: Some(n.name.clone()), action }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::desired::{desired, retiring};
    use crate::plan::diff;
    use crate::plan::render::Renderer;
    use crate::plan::state::TableRow;

    fn table(name: &str, nodes: &[&str]) -> TableRow {
        TableRow {
            name: name.into(),
            kind: 'H',
            nodes: nodes.iter().map(|n| n.to_string()).collect(),
        }
    }

    /// Every node as apply left it, running; the coordinators list `extra` too, and hold
    /// `tables`.
    fn facts(
        nodes: &[DesiredNode],
        retiring: &[Retiring],
        extra: &[PgxcNodeRow],
        tables: &[TableRow],
    ) -> BTreeMap<String, HostFacts> {
        let mut facts: BTreeMap<String, HostFacts> = BTreeMap::new();
        let all = nodes.iter().chain(retiring.iter().map(|r| &r.node));
        for n in all {
            let mut pgxc_node = n.pgxc_node.clone().unwrap_or_default();
            let coordinator = n.role == Role::Coordinator;
            if coordinator {
                pgxc_node.extend(extra.iter().cloned());
            }
            let f = NodeFacts {
                dir_exists: true,
                initialized: true,
                running: true,
                files: n.files.iter().map(|f| (f.name.clone(), f.content.clone().into())).collect(),
                pgxc_node,
                tables: if coordinator { tables.to_vec() } else { Vec::new() },
                ..NodeFacts::default()
            };
            facts.entry(n.host.clone()).or_default().nodes.insert(n.name.clone(), f);
        }
        facts
    }

    fn moves(p: &Plan) -> Vec<String> {
        let steps = p.phases.iter().flat_map(|ph| &ph.steps);
        steps
            .filter_map(|s| match &s.action {
                Action::Redistribute(r) => {
                    Some(format!("{} -{} => {}", r.table, r.delete.join(","), r.after.join(",")))
                }
                _ => None,
            })
            .collect()
    }

    /// dn2 (with its standby dn2_replica) marked removed: its tables lose it one per phase,
    /// the coordinators keep listing it until then and drop it after, it and its standby stop;
    /// a table only on it is refused, and so is a registered datanode the inventory lost.
    #[test]
    fn a_removed_datanode_loses_its_tables_then_its_registration_then_stops() {
        let mut inv = crate::plan::fixtures::postgres_xc();
        for n in inv.nodes.iter_mut().filter(|n| n.name == "dn2" || n.name == "dn2_replica") {
            n.removed = true;
        }
        let (live, _) = inv.without_removed();
        let (hosts, nodes) = desired(&live, &Renderer::new(), "bin", None, None).unwrap();
        let gone = retiring(&inv, &Renderer::new(), "bin").unwrap();
        let names: Vec<(&str, Option<&str>)> =
            gone.iter().map(|r| (r.node.name.as_str(), r.datanode.as_deref())).collect();
        assert_eq!(names, [("dn2", Some("dn2")), ("dn2_replica", None)]);
        let (all_hosts, all_nodes) =
            desired(&crate::plan::fixtures::postgres_xc(), &Renderer::new(), "bin", None, None)
                .unwrap();
        assert_eq!(hosts, all_hosts);
        let dn2_row: Vec<PgxcNodeRow> =
            all_nodes[1].pgxc_node.iter().flatten().filter(|r| r.name == "dn2").cloned().collect();
        assert_eq!(dn2_row.len(), 1, "{all_nodes:?}");

        let only_on_dn2 = [table("public.a", &["dn1", "dn2"]), table("public.b", &["dn2"])];
        let f = facts(&nodes, &gone, &dn2_row, &only_on_dn2);
        let p = diff::plan(&hosts, &nodes, &gone, &f);
        assert!(p.phases.is_empty(), "{p:?}");
        assert_eq!(p.refused.len(), 1, "{:?}", p.refused);
        assert!(p.refused[0].starts_with("table public.b is only on dn2"), "{:?}", p.refused);

        let tables = [table("public.a", &["dn1", "dn2"]), table("public.c", &["dn1"])];
        let p = diff::plan(&hosts, &nodes, &gone, &facts(&nodes, &gone, &dn2_row, &tables));
        assert!(p.refused.is_empty(), "{:?}", p.refused);
        assert_eq!(moves(&p), ["public.a -dn2 => dn1"]);
        let phases: Vec<&str> = p.phases.iter().map(|ph| ph.name.as_str()).collect();
        assert_eq!(
            phases,
            [
                "redistribute (1/1)",
                "drop removed datanodes from every pgxc_node",
                "stop removed datanodes"
            ]
        );
        for s in &p.phases[1].steps {
            let Action::Register { want, .. } = &s.action else { panic!("{s:?}") };
            assert!(!want.iter().any(|r| r.name == "dn2"), "{want:?}");
        }
        let stopped: Vec<&str> =
            p.phases[2].steps.iter().map(|s| s.node.as_deref().unwrap()).collect();
        assert_eq!(stopped, ["dn2", "dn2_replica"]);

        // Its entry deleted instead: refused, the rows it holds would be stranded.
        let p = diff::plan(&hosts, &nodes, &[], &facts(&nodes, &[], &dn2_row, &tables));
        assert!(p.phases.is_empty());
        assert!(p.refused[0].contains("datanode dn2 is registered on coord1"), "{:?}", p.refused);

        // Done: nothing lists it, no table holds it, it is stopped.
        let mut f = facts(&nodes, &gone, &[], &[table("public.a", &["dn1"])]);
        for r in &gone {
            f.get_mut(&r.node.host).unwrap().nodes.get_mut(&r.node.name).unwrap().running = false;
        }
        let p = diff::plan(&hosts, &nodes, &gone, &f);
        assert!(p.is_empty() && p.refused.is_empty(), "{p:?}");
        assert!(unretired(&Cluster::after(&nodes, &gone, &f)).is_empty());
        f.get_mut("db3").unwrap().nodes.get_mut("dn2").unwrap().running = true;
        let left = unretired(&Cluster::after(&nodes, &gone, &f));
        assert_eq!(left, ["dn2 on db3: removed, but still running"]);
    }
}
