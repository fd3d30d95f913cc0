//! `apply --on` and `plan --on` (with `-x`): the whole cluster's plan cut down to the selected
//! nodes, as Ansible's `--limit` cuts a play. PURE: [`limit`] takes the plan
//! [`super::diff::plan`] made for every node, the [`Selection`], the inventory and the probe's
//! facts, and returns the steps to run, a sentence for each thing kept although outside the
//! selection, and how many steps were left for a later apply. [`crate::ops::apply`] calls it;
//! it prints nothing.
//!
//! Kept:
//! - every step of a selected node;
//! - a host's own steps (build, install, password file) on the hosts of the selection only:
//!   never on another host because a coordinator there registers a selected node (that
//!   coordinator runs, with the install it has; an unselected host's binaries stay as they are);
//! - what the selection cannot do without, each said in [`Limited::unlimited`]:
//!   - every running coordinator's registration (pgxc_node) of the selected coordinators and
//!     datanodes: a node the coordinators do not list serves no query. The rows of the nodes
//!     left out stay as each coordinator has them ([`Scope::rows`]): a new node left out is not
//!     registered before it exists, a pending change of another node is not made;
//!   - a selected new datanode's join (it registers with every running coordinator) and the
//!     redistribution of tables onto it (or off a selected removed datanode), which runs
//!     through the coordinator DDL goes through; other datanodes' moves are left out;
//!   - the build on the build host when a selected host gets the install built there;
//!   - a password change: every server learns it and every host's password file gets it, or
//!     the nodes of the hosts left out could no longer connect.
//!
//! Refused (plan and apply change nothing, and the sentence says what to add to `--on`): a
//! selected node that this apply initialises, starts, clones or joins while a node it needs is
//! down and left out: a standby's primary (nothing to clone or stream from), a Postgres-XC
//! node's GTM or the gtm_proxy of its host. Bringing those up unasked would be a larger change
//! than the selection; planning a step that must fail would be worse.

use std::collections::{BTreeMap, BTreeSet};

use super::sql;
use super::state::{HostFacts, PgxcNodeRow};
use super::step::{Action, Plan, Redistribute, Step};
use crate::inventory::{self, Inventory, Node, Role, SelectError, Target};

/// What `--on` and `-x` select: nodes, and hosts (for the hosts' own steps).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// The selected nodes (named, or on a selected host), less the excluded ones.
    pub nodes: BTreeSet<String>,
    /// The hosts of the selected nodes, and the selected hosts that are not excluded.
    pub hosts: BTreeSet<String>,
}

impl Selection {
    /// `on` (every host when `None`) less `exclude`, with `exec`'s selectors. `None`: neither
    /// was given, nothing is limited. A selection with no node and no host is refused as
    /// `exec` refuses one.
    pub fn resolve(
        inv: &Inventory,
        on: Option<&str>,
        exclude: Option<&str>,
    ) -> Result<Option<Selection>, SelectError> {
        if on.is_none() && exclude.is_none() {
            return Ok(None);
        }
        let picked = inventory::select(inv, on)?;
        let excluded = match exclude {
            Some(exclude) => inventory::select(inv, Some(exclude))?,
            None => Vec::new(),
        };
        let selection = Selection::of(inv, &picked, &excluded);
        if selection.nodes.is_empty() && selection.hosts.is_empty() {
            let term = match (on, exclude) {
                (Some(on), Some(x)) => format!("{on} excluding {x}"),
                (None, Some(x)) => format!("every host excluding {x}"),
                (Some(on), None) => on.to_string(),
                (None, None) => unreachable!("returned above"),
            };
            return Err(SelectError::NoMatch {
                term,
                range: None,
                nodes: inv.nodes.iter().map(|n| n.name.to_string()).collect(),
                hosts: inv.hosts.iter().map(|h| h.name.clone()).collect(),
            });
        }
        Ok(Some(selection))
    }

    /// The nodes `picked` selects (a host selects its nodes) less those `excluded` selects, by
    /// node: `--on h1 -x pg1` is h1's other nodes, and h1's own steps.
    pub fn of(inv: &Inventory, picked: &[Target], excluded: &[Target]) -> Selection {
        let nodes_of = |targets: &[Target]| -> BTreeSet<String> {
            let selects = |n: &Node| {
                targets.iter().any(|t| match t {
                    Target::Host(h) => &n.host == h,
                    Target::Node(name) => &n.name == name,
                })
            };
            inv.nodes.iter().filter(|n| selects(n)).map(|n| n.name.to_string()).collect()
        };
        let hosts_of = |targets: &[Target]| -> BTreeSet<String> {
            let host = |t: &Target| match t {
                Target::Host(h) => Some(h.clone()),
                Target::Node(_) => None,
            };
            targets.iter().filter_map(host).collect()
        };
        let nodes: BTreeSet<String> =
            nodes_of(picked).difference(&nodes_of(excluded)).cloned().collect();
        let mut hosts: BTreeSet<String> =
            hosts_of(picked).difference(&hosts_of(excluded)).cloned().collect();
        hosts.extend(nodes.iter().filter_map(|n| inv.node(n)).map(|n| n.host.clone()));
        Selection { nodes, hosts }
    }
}

/// What a limited apply changes and verifies.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    /// The selected nodes and the nodes a kept step runs on: what apply verifies afterwards.
    pub nodes: BTreeSet<String>,
    /// The pgxc_node names of the selected coordinators and datanodes.
    rows: BTreeSet<String>,
    /// The pgxc_node names of every coordinator and datanode of the inventory.
    known: BTreeSet<String>,
    /// Those of the nodes the whole plan initialises or joins: not members of the cluster yet.
    new: BTreeSet<String>,
}

impl Scope {
    pub fn contains(&self, node: &str) -> bool {
        self.nodes.contains(node)
    }

    /// The pgxc_node rows a coordinator gets from a limited apply, from `want` (the whole
    /// inventory's) and `have` (what it lists now; `None`: not known, it does not run): the
    /// rows of the selected nodes as `want` has them (and of names the inventory does not
    /// have: dropped, as without `--on`); the others as `have` has them, or, unknown, as `want`
    /// has them unless the node is new. Verification compares a coordinator's rows with these.
    pub fn rows(&self, want: &[PgxcNodeRow], have: Option<&[PgxcNodeRow]>) -> Vec<PgxcNodeRow> {
        let ours = |name: &str| self.rows.contains(name) || !self.known.contains(name);
        let mut rows = Vec::new();
        for row in want {
            let kept = match have {
                _ if ours(&row.name) => Some(row),
                Some(have) => have.iter().find(|h| h.name == row.name),
                None => (!self.new.contains(&row.name)).then_some(row),
            };
            rows.extend(kept.cloned());
        }
        for row in have.unwrap_or_default() {
            if !ours(&row.name) && !want.iter().any(|w| w.name == row.name) {
                rows.push(row.clone());
            }
        }
        rows
    }
}

/// The plan for the selection.
#[derive(Debug, Clone, PartialEq)]
pub struct Limited {
    /// The steps to run; its `refused` holds the selection's own refusals too.
    pub plan: Plan,
    /// What is kept although outside the selection (or reaches outside it), one sentence each:
    /// what and why.
    pub unlimited: Vec<String>,
    /// How many steps of the whole plan were left for a later apply.
    pub left_out: usize,
    /// The nodes (or hosts, for their own steps) of the steps left out, in plan order.
    pub elsewhere: Vec<String>,
    pub scope: Scope,
}

/// Cut `plan` (made for the whole cluster of `inv`, from `facts`) down to `selection`; see the
/// module doc.
pub fn limit(
    plan: Plan,
    selection: &Selection,
    inv: &Inventory,
    facts: &BTreeMap<String, HostFacts>,
) -> Limited {
    let steps: Vec<&Step> = plan.phases.iter().flat_map(|p| &p.steps).collect();
    let has = |name: &str, what: &dyn Fn(&Action) -> bool| {
        steps.iter().any(|s| s.node.as_deref() == Some(name) && what(&s.action))
    };
    let registered = |n: &&Node| matches!(n.role, Role::Coordinator | Role::Datanode);
    let row_name = |n: &Node| n.datanode_name().to_string();
    let new = |n: &&Node| has(&n.name, &|a| matches!(a, Action::Init { .. } | Action::JoinNode(_)));
    let selected = |node: &str| selection.nodes.contains(node);
    let mut scope = Scope {
        nodes: selection.nodes.clone(),
        rows: inv
            .nodes
            .iter()
            .filter(registered)
            .filter(|n| selected(&n.name))
            .map(row_name)
            .collect(),
        known: inv.nodes.iter().filter(registered).map(row_name).collect(),
        new: inv.nodes.iter().filter(registered).filter(new).map(row_name).collect(),
    };
    if !plan.refused.is_empty() {
        return Limited { plan, unlimited: Vec::new(), left_out: 0, elsewhere: Vec::new(), scope };
    }
    let refused = refusals(&steps, selection, inv);
    if !refused.is_empty() {
        let plan = Plan { phases: Vec::new(), refused };
        return Limited { plan, unlimited: Vec::new(), left_out: 0, elsewhere: Vec::new(), scope };
    }

    let total = steps.len();
    let password = steps.iter().any(|s| matches!(s.action, Action::SetPassword { .. }));
    let ships = steps.iter().any(|s| {
        matches!(s.action, Action::ShipInstall { .. }) && selection.hosts.contains(&s.host)
    });
    let have = |step: &Step| -> Option<Vec<PgxcNodeRow>> {
        let f = facts.get(&step.host)?.nodes.get(step.node.as_deref()?)?;
        // A running coordinator lists at least itself: an empty list was not read.
        (f.running && !f.pgxc_node.is_empty()).then(|| f.pgxc_node.clone())
    };
    let cx = Cx { selection, scope: &scope, password, ships };
    let mut limited = Plan::default();
    let (mut whys, mut elsewhere) = (Vec::new(), Vec::new());
    for phase in plan.phases {
        let mut kept = Vec::new();
        for step in phase.steps {
            let owners = owners(&step);
            let have = have(&step);
            match cx.decide(step, have.as_deref()) {
                Some((step, why)) => {
                    whys.extend(why);
                    kept.push(step);
                }
                None => {
                    for owner in owners {
                        if !elsewhere.contains(&owner) {
                            elsewhere.push(owner);
                        }
                    }
                }
            }
        }
        limited.push(phase.name, kept);
    }
    renumber(&mut limited);
    let kept_nodes = limited.phases.iter().flat_map(|p| &p.steps).filter_map(|s| s.node.as_ref());
    scope.nodes.extend(kept_nodes.map(|n| n.to_string()));
    let left_out = total - limited.step_count();
    Limited { plan: limited, unlimited: sentences(whys), left_out, elsewhere, scope }
}

/// Whom a step is for: its node, or its host for the host's own; a redistribution is for the
/// datanodes whose rows it moves (it runs on a coordinator).
fn owners(step: &Step) -> Vec<String> {
    match (&step.action, &step.node) {
        (Action::Redistribute(r), _) => r.add.iter().chain(&r.delete).cloned().collect(),
        (_, Some(node)) => vec![node.to_string()],
        (_, None) => vec![step.host.clone()],
    }
}

/// Why a step runs although its node or host is not selected, or reaches outside it.
#[derive(Debug, Clone, PartialEq)]
enum Why {
    /// `at` (a coordinator) registers `names`.
    Registers { at: String, names: Vec<String> },
    /// A table is redistributed through the coordinator `at`.
    Redistributes { at: String, add: Vec<String>, delete: Vec<String> },
    /// A selected node's join registers it with every running coordinator.
    Joins { at: String },
    /// The password change reaches `at` (a node or a host).
    Password { at: String },
    /// The build host builds the install a selected host gets.
    Builds { host: String },
}

/// What [`Cx::decide`] needs besides the step.
struct Cx<'a> {
    selection: &'a Selection,
    scope: &'a Scope,
    /// The cluster's password changes (the plan has `SetPassword` steps).
    password: bool,
    /// A selected host gets an install shipped.
    ships: bool,
}

impl Cx<'_> {
    /// Keep `step` (as it is or cut down, and why, when outside the selection), or `None`:
    /// leave it out. `have`: its node's pgxc_node, when it runs and it was read.
    fn decide(&self, step: Step, have: Option<&[PgxcNodeRow]>) -> Option<(Step, Option<Why>)> {
        let at = match &step.node {
            Some(node) => format!("{node} on {}", step.host),
            None => step.host.clone(),
        };
        let selected = step.node.as_deref().is_some_and(|n| self.selection.nodes.contains(n));
        let outside = |why: Why| (!selected).then_some(why);
        let on_host = self.selection.hosts.contains(&step.host);
        match (&step.node, step.action) {
            (Some(node), Action::Register { psql, want, fresh_sql }) => {
                let rows = self.scope.rows(&want, have);
                if have.is_some_and(|have| same(have, &rows)) || (!selected && have.is_none()) {
                    return None;
                }
                let names = changed(have.unwrap_or_default(), &rows);
                // The template registers every node; a fresh coordinator gets only these rows.
                let fresh_sql = if same(&want, &rows) {
                    fresh_sql
                } else {
                    sql::registration(node, &rows, &[])
                };
                let action = Action::Register { psql, want: rows, fresh_sql };
                Some((Step { action, ..step }, outside(Why::Registers { at, names })))
            }
            (Some(_), Action::Redistribute(r)) => {
                let r = self.redistribution(*r)?;
                let why = Why::Redistributes { at, add: r.add.clone(), delete: r.delete.clone() };
                Some((Step { action: Action::Redistribute(Box::new(r)), ..step }, outside(why)))
            }
            (Some(_), action @ Action::SetPassword { .. }) => {
                let why = outside(Why::Password { at });
                Some((Step { action, ..step }, why))
            }
            (Some(_), Action::JoinNode(join)) if selected => {
                let why = (!join.peers.is_empty()).then_some(Why::Joins { at });
                Some((Step { action: Action::JoinNode(join), ..step }, why))
            }
            (Some(_), action) => selected.then_some((Step { action, ..step }, None)),
            (None, action @ Action::WritePassfile { .. }) if self.password => {
                let why = (!on_host).then_some(Why::Password { at });
                Some((Step { action, ..step }, why))
            }
            (None, action @ Action::Build { .. }) if !on_host && self.ships => {
                let why = Why::Builds { host: step.host.clone() };
                Some((Step { action, ..step }, Some(why)))
            }
            (None, action) => on_host.then_some((Step { action, ..step }, None)),
        }
    }

    /// `r` moving only the selected datanodes' rows; `None` when it moves nothing then.
    fn redistribution(&self, r: Redistribute) -> Option<Redistribute> {
        let ours = |name: &String| self.scope.rows.contains(name);
        let (add, later_add): (Vec<String>, Vec<String>) = r.add.iter().cloned().partition(ours);
        let (delete, later_delete): (Vec<String>, Vec<String>) =
            r.delete.iter().cloned().partition(ours);
        if add.is_empty() && delete.is_empty() {
            return None;
        }
        let mut after: Vec<String> = r
            .after
            .iter()
            .filter(|n| !later_add.contains(n))
            .cloned()
            .chain(later_delete)
            .collect();
        after.sort();
        after.dedup();
        Some(Redistribute { add, delete, after, ..r })
    }
}

/// Whether two lists of pgxc_node rows hold the same rows, in any order.
fn same(a: &[PgxcNodeRow], b: &[PgxcNodeRow]) -> bool {
    let (mut a, mut b) = (a.to_vec(), b.to_vec());
    a.sort();
    b.sort();
    a == b
}

/// The names whose row differs between `have` and `rows` (added, changed or dropped).
fn changed(have: &[PgxcNodeRow], rows: &[PgxcNodeRow]) -> Vec<String> {
    let mut names: Vec<String> = rows
        .iter()
        .filter(|r| !have.contains(r))
        .chain(have.iter().filter(|h| !rows.iter().any(|r| r.name == h.name)))
        .map(|r| r.name.clone())
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Steps that bring a node up: it does not run (or is rebuilt) before they have run.
fn brings_up(action: &Action) -> bool {
    matches!(
        action,
        Action::Init { .. } | Action::Start { .. } | Action::JoinNode(_) | Action::Rejoin(_)
    )
}

/// The nodes `node` needs running to come up, each with what it is to it.
fn needs<'a>(inv: &'a Inventory, node: &Node) -> Vec<(&'a Node, &'static str)> {
    let mut needs: Vec<(&Node, &str)> = Vec::new();
    if let Some(primary) = node.primary.as_ref().and_then(|p| inv.node(p)) {
        needs.push((primary, "its primary"));
    }
    if inv.cluster.flavor.is_pgxc() && node.role != Role::Gtm {
        let proxy = match node.role {
            Role::Coordinator | Role::Datanode | Role::Standby => inv.gtm_proxy_on(&node.host),
            _ => None,
        };
        let gtm = match proxy {
            Some(proxy) => Some((proxy, "the gtm_proxy of its host")),
            None => inv.node_of(Role::Gtm).map(|gtm| (gtm, "the GTM")),
        };
        needs.extend(gtm.filter(|(g, _)| !needs.iter().any(|(n, _)| n.name == g.name)));
    }
    needs
}

/// A selected node brought up while a node it needs is down and left out: one sentence each.
fn refusals(steps: &[&Step], selection: &Selection, inv: &Inventory) -> Vec<String> {
    let of = |name: &str, what: fn(&Action) -> bool| {
        steps.iter().any(|s| s.node.as_deref() == Some(name) && what(&s.action))
    };
    let mut refused = Vec::new();
    let mut seen = BTreeSet::new();
    for step in steps.iter().filter(|s| brings_up(&s.action)) {
        let Some(node) = step.node.as_deref().filter(|n| selection.nodes.contains(*n)) else {
            continue;
        };
        let Some(node) = inv.node(node) else { continue };
        for (dep, what) in needs(inv, node) {
            let name = dep.name.as_str();
            if selection.nodes.contains(name) || !of(name, brings_up) {
                continue;
            }
            if !seen.insert((node.name.to_string(), name.to_string())) {
                continue;
            }
            let state = if of(name, |a| matches!(a, Action::Init { .. })) {
                "is not initialised yet"
            } else {
                "does not run"
            };
            refused.push(format!(
                "{} on {}: {what} {name} {state}, and --on leaves {name} out: add {name} to --on \
                 (or apply without --on)",
                node.name, node.host
            ));
        }
    }
    refused
}

/// One sentence per reason; a coordinator's redistributions in one.
fn sentences(whys: Vec<Why>) -> Vec<String> {
    let mut out = Vec::new();
    let mut moves: Vec<(String, usize, BTreeSet<String>)> = Vec::new();
    let mut password: Vec<String> = Vec::new();
    for why in whys {
        match why {
            Why::Registers { at, names } => out.push(format!(
                "{at}: pgxc_node updated for {}: every running coordinator must list the \
                 selected nodes",
                names.join(", ")
            )),
            Why::Redistributes { at, add, delete } => {
                let what = add
                    .iter()
                    .map(|n| format!("ADD NODE {n}"))
                    .chain(delete.iter().map(|n| format!("DELETE NODE {n}")));
                match moves.iter_mut().find(|(a, _, _)| *a == at) {
                    Some((_, tables, all)) => {
                        *tables += 1;
                        all.extend(what);
                    }
                    None => moves.push((at, 1, what.collect())),
                }
            }
            Why::Joins { at } => out.push(format!(
                "{at}: its join registers it with every running coordinator, selected or not"
            )),
            Why::Password { at } => password.push(at),
            Why::Builds { host } => {
                out.push(format!("{host}: builds the install that the selected hosts get"))
            }
        }
    }
    for (at, tables, what) in moves {
        out.push(format!(
            "{at}: {tables} table(s) redistributed through it ({}): DDL goes through a running \
             coordinator",
            what.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    if !password.is_empty() {
        out.push(format!(
            "the cluster's password changes on every server and host, here outside --on: {}; \
             the nodes of a host left out could no longer connect",
            password.join(", ")
        ));
    }
    out
}

/// Number again the phases named `... (k/n)` (one table redistributed, one join per phase)
/// among those kept.
fn renumber(plan: &mut Plan) {
    fn base(name: &str) -> Option<&str> {
        let (base, count) = name.strip_suffix(')')?.rsplit_once(" (")?;
        let (k, n) = count.split_once('/')?;
        (k.parse::<usize>().is_ok() && n.parse::<usize>().is_ok()).then_some(base)
    }
    let mut totals: BTreeMap<String, usize> = BTreeMap::new();
    for phase in &plan.phases {
        if let Some(base) = base(&phase.name) {
            *totals.entry(base.to_string()).or_default() += 1;
        }
    }
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for phase in &mut plan.phases {
        let Some(base) = base(&phase.name).map(str::to_string) else { continue };
        let k = seen.entry(base.clone()).or_default();
        *k += 1;
        phase.name = format!("{base} ({k}/{})", totals[&base]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::NodeName;
    use crate::plan::fixtures;
    use crate::plan::state::{NodeFacts, NodeKind};
    use crate::plan::step::{JoinNode, Phase};

    fn on(node: &str, host: &str, action: Action) -> Step {
        Step { host: host.into(), node: Some(NodeName::from(node)), action }
    }

    fn host_step(host: &str, action: Action) -> Step {
        Step { host: host.into(), node: None, action }
    }

    fn init() -> Action {
        Action::Init {
            argv: vec!["initdb".into()],
            pwfile: None,
            data_dir: "/d".into(),
            staging: "/d.tmp".into(),
            files: vec![],
            foreign: false,
        }
    }

    fn start() -> Action {
        Action::Start { argv: vec![], data_dir: "/d".into(), log: "/d/log".into(), ready: vec![] }
    }

    fn ship() -> Action {
        Action::ShipInstall { fingerprint: "f".repeat(16) }
    }

    fn plan(phases: Vec<(&str, Vec<Step>)>) -> Plan {
        let mut plan = Plan::default();
        for (name, steps) in phases {
            plan.phases.push(Phase { name: name.into(), steps });
        }
        plan
    }

    fn select(inv: &Inventory, on: &str) -> Selection {
        Selection::resolve(inv, Some(on), None).unwrap().unwrap()
    }

    /// What a plan runs, one `node: action` (or `host: action`) per step, by phase.
    fn shown(plan: &Plan) -> Vec<String> {
        let mut lines = Vec::new();
        for phase in &plan.phases {
            lines.push(format!("== {}", phase.name));
            for s in &phase.steps {
                let at = s.node.as_ref().map_or(s.host.clone(), |n| n.to_string());
                lines.push(format!("{at}: {}", s.action.kind()));
            }
        }
        lines
    }

    /// A fresh PostgreSQL cluster: pg1 (pg-a) with pg1_standby (pg-b), pg2 (pg-b).
    fn fresh_postgresql() -> Plan {
        plan(vec![
            ("install", vec![host_step("pg-a", ship()), host_step("pg-b", ship())]),
            ("initialise", vec![on("pg1", "pg-a", init()), on("pg2", "pg-b", init())]),
            ("start datanodes", vec![on("pg1", "pg-a", start()), on("pg2", "pg-b", start())]),
            ("clone standbys", vec![on("pg1_standby", "pg-b", init())]),
            ("start standbys", vec![on("pg1_standby", "pg-b", start())]),
        ])
    }

    #[test]
    fn a_selected_node_keeps_its_steps_and_its_host_s_and_names_the_rest() {
        let inv = fixtures::postgresql();
        let l = limit(fresh_postgresql(), &select(&inv, "pg2"), &inv, &BTreeMap::new());
        assert_eq!(
            shown(&l.plan),
            [
                "== install",
                "pg-b: ship_install",
                "== initialise",
                "pg2: init",
                "== start datanodes",
                "pg2: start"
            ]
        );
        assert_eq!(l.left_out, 5);
        assert_eq!(l.elsewhere, ["pg-a", "pg1", "pg1_standby"]);
        assert!(l.unlimited.is_empty(), "{:?}", l.unlimited);
        assert!(l.scope.contains("pg2") && !l.scope.contains("pg1"));

        // pg1 and its standby (a glob), with pg1 initialised first.
        let l = limit(fresh_postgresql(), &select(&inv, "pg1*"), &inv, &BTreeMap::new());
        assert_eq!(l.left_out, 2);
        assert_eq!(l.elsewhere, ["pg2"]);
        assert_eq!(l.plan.phases.len(), 5);
    }

    /// A standby cannot be cloned from a primary that this apply would set up but leaves out;
    /// once its primary runs, the standby alone is fine.
    #[test]
    fn a_standby_whose_primary_is_left_out_and_down_is_refused() {
        let inv = fixtures::postgresql();
        let l = limit(fresh_postgresql(), &select(&inv, "pg1_standby"), &inv, &BTreeMap::new());
        assert!(l.plan.phases.is_empty());
        assert_eq!(
            l.plan.refused,
            ["pg1_standby on pg-b: its primary pg1 is not initialised yet, and --on leaves pg1 \
              out: add pg1 to --on (or apply without --on)"]
        );

        let stopped = plan(vec![
            ("start datanodes", vec![on("pg1", "pg-a", start())]),
            ("clone standbys", vec![on("pg1_standby", "pg-b", init())]),
        ]);
        let l = limit(stopped, &select(&inv, "pg-b"), &inv, &BTreeMap::new());
        assert!(l.plan.refused[0].contains("its primary pg1 does not run"), "{:?}", l.plan);

        let running = plan(vec![
            ("clone standbys", vec![on("pg1_standby", "pg-b", init())]),
            ("start standbys", vec![on("pg1_standby", "pg-b", start())]),
        ]);
        let l = limit(running, &select(&inv, "pg1_standby"), &inv, &BTreeMap::new());
        assert!(l.plan.refused.is_empty());
        assert_eq!(l.plan.step_count(), 2);
        assert_eq!(l.left_out, 0);
    }

    #[test]
    fn selectors_select_nodes_and_a_selection_of_nothing_is_refused() {
        let inv = fixtures::postgresql();
        assert_eq!(Selection::resolve(&inv, None, None).unwrap(), None);
        let s = Selection::resolve(&inv, Some("pg-b"), Some("pg2")).unwrap().unwrap();
        assert_eq!(s.nodes, BTreeSet::from(["pg1_standby".to_string()]));
        assert_eq!(s.hosts, BTreeSet::from(["pg-b".to_string()]));
        let s = Selection::resolve(&inv, None, Some("pg1")).unwrap().unwrap();
        assert_eq!(s.nodes, BTreeSet::from(["pg1_standby".to_string(), "pg2".to_string()]));
        // Every host is selected, less a node: pg-a keeps its own steps.
        assert_eq!(s.hosts, BTreeSet::from(["pg-a".to_string(), "pg-b".to_string()]));
        let e = Selection::resolve(&inv, Some("pg2"), Some("pg-b")).unwrap_err();
        assert_eq!(e.to_string(), "selector `pg2 excluding pg-b` matches no node or host");
        let e = Selection::resolve(&inv, Some("nope"), None).unwrap_err();
        assert_eq!(e.to_string(), "selector `nope` matches no node or host");
    }

    fn row(name: &str, kind: NodeKind, port: u16) -> PgxcNodeRow {
        PgxcNodeRow {
            name: name.into(),
            kind,
            host: "10.0.0.9".into(),
            port,
            primary: false,
            preferred: false,
            forward: 0,
        }
    }

    fn coord(name: &str) -> PgxcNodeRow {
        row(name, NodeKind::Coordinator, 5432)
    }

    fn dn(name: &str) -> PgxcNodeRow {
        row(name, NodeKind::Datanode, 15432)
    }

    fn register(want: &[PgxcNodeRow]) -> Action {
        Action::Register { psql: vec!["psql".into()], want: want.to_vec(), fresh_sql: "T".into() }
    }

    fn redistribute(table: &str, add: &[&str], after: &[&str]) -> Action {
        let names = |n: &[&str]| n.iter().map(|n| n.to_string()).collect();
        Action::Redistribute(Box::new(Redistribute {
            psql: vec!["psql".into()],
            table: table.into(),
            kind: 'H',
            add: names(add),
            delete: vec![],
            after: names(after),
            bytes: None,
        }))
    }

    fn join(source: &str) -> Action {
        Action::JoinNode(Box::new(JoinNode {
            data_dir: "/d".into(),
            source: source.into(),
            source_psql: vec![],
            dump_from: "dn1".into(),
            dumpall: vec![],
            restore_start: vec![],
            stop: vec![],
            start: vec![],
            log: String::new(),
            ready: vec![],
            psql: vec![],
            self_sql: String::new(),
            peers: vec![(vec!["psql".into()], "CREATE NODE".into())],
            marker: None,
            pending: String::new(),
        }))
    }

    /// The Postgres-XC fixture with two new datanodes, dn3 on db1 and dn4 on db3.
    fn growing_xc() -> Inventory {
        let mut inv = fixtures::postgres_xc();
        let dn2 = inv.node("dn2").unwrap().clone();
        for (name, host) in [("dn3", "db1"), ("dn4", "db3")] {
            let data_dir = format!("/var/lib/pgxc/{name}");
            inv.nodes.push(Node { name: name.into(), host: host.into(), data_dir, ..dn2.clone() });
        }
        inv
    }

    /// Every coordinator running and listing the coordinators and dn1, dn2.
    fn running_coordinators() -> BTreeMap<String, HostFacts> {
        let mut facts: BTreeMap<String, HostFacts> = BTreeMap::new();
        let have = vec![coord("coord1"), coord("coord2"), dn("dn1"), dn("dn2")];
        for (node, host) in [("coord1", "db1"), ("coord2", "db2")] {
            let f = NodeFacts {
                initialized: true,
                running: true,
                pgxc_node: have.clone(),
                ..NodeFacts::default()
            };
            facts.entry(host.into()).or_default().nodes.insert(node.into(), f);
        }
        facts
    }

    /// dn3 and dn4 join a running cluster; `--on dn3` keeps dn3's steps, the coordinators'
    /// registration of dn3 (not of dn4, which does not exist yet) and the redistribution onto
    /// dn3, through coord1, each said.
    #[test]
    fn a_new_datanode_is_registered_everywhere_and_gets_its_tables_the_other_waits() {
        let inv = growing_xc();
        let want = [coord("coord1"), coord("coord2"), dn("dn1"), dn("dn2"), dn("dn3"), dn("dn4")];
        let full = plan(vec![
            ("initialise", vec![on("dn3", "db1", init()), on("dn4", "db3", init())]),
            ("join the running cluster (1/2)", vec![on("dn3", "db1", join("coord1"))]),
            ("join the running cluster (2/2)", vec![on("dn4", "db3", join("coord1"))]),
            (
                "register nodes",
                vec![on("coord1", "db1", register(&want)), on("coord2", "db2", register(&want))],
            ),
            (
                "redistribute (1/2)",
                vec![on("coord1", "db1", redistribute("public.a", &["dn3", "dn4"], &[]))],
            ),
            (
                "redistribute (2/2)",
                vec![on("coord1", "db1", redistribute("public.b", &["dn4"], &[]))],
            ),
            (
                "redistribution done",
                vec![
                    on("dn3", "db1", Action::RemoveFile { path: "m".into() }),
                    on("dn4", "db3", Action::RemoveFile { path: "m".into() }),
                ],
            ),
        ]);
        let l = limit(full, &select(&inv, "dn3"), &inv, &running_coordinators());
        assert_eq!(
            shown(&l.plan),
            [
                "== initialise",
                "dn3: init",
                "== join the running cluster (1/1)",
                "dn3: join",
                "== register nodes",
                "coord1: register",
                "coord2: register",
                "== redistribute (1/1)",
                "coord1: redistribute",
                "== redistribution done",
                "dn3: remove_file"
            ]
        );
        let steps: Vec<&Step> = l.plan.phases.iter().flat_map(|p| &p.steps).collect();
        let Action::Register { want: rows, fresh_sql, .. } = &steps[2].action else { panic!() };
        assert_eq!(rows, &want[..5]);
        assert!(fresh_sql.contains("CREATE NODE dn3") && !fresh_sql.contains("dn4"));
        let Action::Redistribute(r) = &steps[4].action else { panic!() };
        assert_eq!((&r.add[..], &r.after[..]), (&["dn3".to_string()][..], &[][..]));
        assert_eq!(l.left_out, 4);
        assert_eq!(l.elsewhere, ["dn4"]);
        assert_eq!(
            l.unlimited,
            [
                "dn3 on db1: its join registers it with every running coordinator, selected or not",
                "coord1 on db1: pgxc_node updated for dn3: every running coordinator must list \
                 the selected nodes",
                "coord2 on db2: pgxc_node updated for dn3: every running coordinator must list \
                 the selected nodes",
                "coord1 on db1: 1 table(s) redistributed through it (ADD NODE dn3): DDL goes \
                 through a running coordinator",
            ]
        );
        assert!(l.scope.contains("coord2") && !l.scope.contains("dn4"));
    }

    /// The rows of the nodes left out stay as the coordinator lists them (a pending port
    /// change of dn2 is not made, a datanode it lists is not dropped); a coordinator that does
    /// not run is left out (it registers everything once it runs).
    #[test]
    fn registration_changes_only_the_selected_rows() {
        let inv = growing_xc();
        let mut facts = running_coordinators();
        let moved = row("dn2", NodeKind::Datanode, 15999);
        let want = [coord("coord1"), coord("coord2"), dn("dn1"), moved.clone(), dn("dn3")];
        let full = plan(vec![
            ("start datanodes", vec![on("dn3", "db1", start())]),
            (
                "register nodes",
                vec![on("coord1", "db1", register(&want)), on("coord2", "db2", register(&want))],
            ),
        ]);
        facts.get_mut("db2").unwrap().nodes.get_mut("coord2").unwrap().running = false;
        let l = limit(full.clone(), &select(&inv, "dn3"), &inv, &facts);
        assert_eq!(
            shown(&l.plan),
            ["== start datanodes", "dn3: start", "== register nodes", "coord1: register"]
        );
        let Action::Register { want: rows, .. } = &l.plan.phases[1].steps[0].action else {
            panic!()
        };
        assert_eq!(rows, &[coord("coord1"), coord("coord2"), dn("dn1"), dn("dn2"), dn("dn3")]);

        // dn2 alone: its row changes, dn3's (started, so not new) stays as coord1 lists it:
        // absent.
        let l = limit(full, &select(&inv, "dn2"), &inv, &facts);
        let Action::Register { want: rows, .. } = &l.plan.phases[0].steps[0].action else {
            panic!()
        };
        assert_eq!(rows, &[coord("coord1"), coord("coord2"), dn("dn1"), moved]);
        assert_eq!(l.left_out, 2, "{:?}", l.plan);

        // A selected coordinator not running yet: established nodes as the inventory says, the
        // new ones left out not at all.
        let scope = limit(Plan::default(), &select(&inv, "coord2"), &inv, &facts).scope;
        let mut new = scope.clone();
        new.new.insert("dn3".into());
        assert_eq!(new.rows(&want, None), &want[..4]);
        assert_eq!(scope.rows(&want, None), want);
    }

    /// The build host builds for a selected host; a changed password reaches every server and
    /// password file.
    #[test]
    fn the_build_and_a_password_change_reach_outside_the_selection() {
        let inv = fixtures::postgres_xc();
        let full = plan(vec![
            (
                "change the password",
                vec![on("coord1", "db1", Action::SetPassword { psql: vec![], scram: false })],
            ),
            ("build", vec![host_step("db1", Action::Build { fingerprint: "f".repeat(16) })]),
            (
                "install",
                vec![
                    host_step("db2", ship()),
                    host_step("db3", ship()),
                    host_step("db1", Action::WritePassfile { path: "p".into() }),
                    host_step("db2", Action::WritePassfile { path: "p".into() }),
                ],
            ),
            ("configure", vec![on("dn1", "db2", Action::RemoveFile { path: "x".into() })]),
        ]);
        let l = limit(full, &select(&inv, "dn1"), &inv, &BTreeMap::new());
        assert_eq!(
            shown(&l.plan),
            [
                "== change the password",
                "coord1: set_password",
                "== build",
                "db1: build",
                "== install",
                "db2: ship_install",
                "db1: write_passfile",
                "db2: write_passfile",
                "== configure",
                "dn1: remove_file"
            ]
        );
        assert_eq!(l.elsewhere, ["db3"]);
        assert_eq!(
            l.unlimited,
            [
                "db1: builds the install that the selected hosts get",
                "the cluster's password changes on every server and host, here outside --on: \
                 coord1 on db1, db1; the nodes of a host left out could no longer connect"
            ]
        );
    }

    /// A Postgres-XC node needs its GTM (or its host's gtm_proxy) to come up.
    #[test]
    fn a_postgres_xc_node_brought_up_needs_its_gtm() {
        let inv = fixtures::postgres_xc_ha();
        let fresh = || {
            plan(vec![(
                "initialise",
                vec![
                    on("gtm", "db1", init()),
                    on("proxy2", "db2", init()),
                    on("coord1", "db1", init()),
                    on("coord2", "db2", init()),
                ],
            )])
        };
        let l = limit(fresh(), &select(&inv, "coord1,coord2"), &inv, &BTreeMap::new());
        assert_eq!(
            l.plan.refused,
            [
                "coord1 on db1: the GTM gtm is not initialised yet, and --on leaves gtm out: add \
                 gtm to --on (or apply without --on)",
                "coord2 on db2: the gtm_proxy of its host proxy2 is not initialised yet, and --on \
                 leaves proxy2 out: add proxy2 to --on (or apply without --on)"
            ]
        );
        let l = limit(fresh(), &select(&inv, "coord2,proxy2"), &inv, &BTreeMap::new());
        assert_eq!(l.plan.refused.len(), 1, "{:?}", l.plan.refused);
        assert!(l.plan.refused[0].starts_with("proxy2 on db2: the GTM gtm"));
        let l = limit(fresh(), &select(&inv, "@gtm,db2"), &inv, &BTreeMap::new());
        assert!(l.plan.refused.is_empty(), "{:?}", l.plan.refused);
        assert_eq!(l.left_out, 1);
    }

    #[test]
    fn a_refused_plan_stays_refused() {
        let inv = fixtures::postgresql();
        let refused = Plan { phases: vec![], refused: vec!["no".into()] };
        let l = limit(refused.clone(), &select(&inv, "pg2"), &inv, &BTreeMap::new());
        assert_eq!((l.plan, l.left_out), (refused, 0));
    }
}
