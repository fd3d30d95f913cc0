//! What `status` shows: one [`NodeStatus`] per node of the inventory, judged from the probe's
//! facts against the desired state. PURE: `ops::status` gathers the facts and prints
//! the rows; every judgement (running, streaming, pgxc_node, drift, healthy) is made here.
//!
//! A host that could not be probed does not hide the others: its nodes get
//! [`State::Unreachable`], and standbys whose primary sits there get replication `unknown`.
//!
//! Config drift (a managed file that differs from what apply would write) is shown but does not
//! make a node unhealthy: it says a change is pending, not that the server is in trouble.

use std::collections::BTreeMap;
use std::fmt;

use super::desired::DesiredNode;
use super::failover::repointed;
use super::state::{HostFacts, NodeFacts, PgxcNodeRow, ReplicaState, disk_cause};
use crate::inventory::roles::Roles;
use crate::inventory::{Inventory, Role};

/// Whether a node's server runs, as far as the probe could tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Accepting connections (the GTM: `gtm_ctl status` says it runs).
    Running,
    /// Its process runs (PID file) but it does not accept connections: starting, shutting
    /// down or stuck.
    NotAccepting,
    /// Initialised, no live process.
    Down,
    /// No initialised data directory: `apply` has not built it.
    NotInitialised,
    /// Its host could not be probed (connect, authentication, or the probe itself failed).
    Unreachable(String),
}

impl State {
    pub fn accepting(&self) -> bool {
        *self == State::Running
    }

    /// A server process exists (whether or not it accepts connections).
    pub fn process(&self) -> bool {
        matches!(self, State::Running | State::NotAccepting)
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            State::Running => f.write_str("running"),
            State::NotAccepting => f.write_str("not accepting connections"),
            State::Down => f.write_str("down"),
            State::NotInitialised => f.write_str("not initialised"),
            State::Unreachable(why) => write!(f, "down (host unreachable: {why})"),
        }
    }
}

/// A standby's replication, as its primary's pg_stat_replication shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replication {
    pub primary: String,
    pub state: Link,
    /// `async`, `sync`, `potential`, `quorum`.
    pub sync_state: Option<String>,
    /// WAL bytes the primary wrote that the standby has not replayed.
    pub lag_bytes: Option<u64>,
}

impl Replication {
    pub fn streaming(&self) -> bool {
        self.state == Link::Replica(ReplicaState::Streaming)
    }
}

/// What a standby's primary says of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Link {
    /// The primary lists it in pg_stat_replication, in this state.
    Replica(ReplicaState),
    /// The primary lists no such standby.
    NotConnected,
    /// The primary could not be read.
    Unknown,
}

impl fmt::Display for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Link::Replica(state) => state.fmt(f),
            Link::NotConnected => f.write_str("not connected"),
            Link::Unknown => f.write_str("unknown"),
        }
    }
}

/// A coordinator's (on Postgres-XL, a datanode's too) pgxc_node against the inventory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PgxcNodeCheck {
    Matches,
    /// What differs, one entry per node: `dn2 missing`, `dn1 at 10.0.0.9:5432, not ...`.
    Differs(Vec<String>),
    /// The coordinator could not be read (down, or its host unreachable).
    Unknown,
}

/// One row of `status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeStatus {
    pub node: String,
    pub role: Role,
    pub host: String,
    pub address: String,
    pub port: u16,
    pub data_dir: String,
    pub state: State,
    pub start_time: Option<String>,
    pub in_recovery: Option<bool>,
    /// Standbys only.
    pub replication: Option<Replication>,
    /// Coordinators of a Postgres-XC cluster only.
    pub pgxc_node: Option<PgxcNodeCheck>,
    /// Managed files that differ from what apply would write (`name`, or `name (missing)`).
    pub drift: Vec<String>,
    /// Why the node is unhealthy; empty when it is healthy.
    pub problems: Vec<String>,
    /// A standby a failover promoted: the datanode it serves now.
    pub promoted_for: Option<String>,
    /// An old primary a failover fenced: it must not run.
    pub fenced: bool,
    /// An old primary a switchover made a standby: the node it streams from now.
    pub follows: Option<String>,
}

impl NodeStatus {
    pub fn healthy(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Judge every node of the inventory, in inventory order. `facts` holds, per host, what the
/// probe found or why the host could not be probed.
///
/// `roles`: failovers recorded beside the inventory. A promoted standby is judged as the
/// primary it now is, its fenced old primary as a node that must not run, and coordinators'
/// pgxc_node against the promoted addresses.
pub fn assess(
    inv: &Inventory,
    nodes: &[DesiredNode],
    facts: &BTreeMap<String, Result<HostFacts, String>>,
    roles: &Roles,
) -> Vec<NodeStatus> {
    let node_facts = |host: &str, node: &str| super::state::node_facts(facts, host, node);
    let mut rows = Vec::new();
    for n in nodes {
        let node = inv.node(&n.name).expect("desired nodes come from the inventory");
        let address = inv.host(&n.host).map(|h| h.address.clone()).unwrap_or_default();
        let f = node_facts(&n.host, &n.name);
        let state = match &f {
            Err(why) => State::Unreachable(why.clone()),
            Ok(None) => State::Unreachable("the probe did not report this node".into()),
            Ok(Some(f)) => state(f),
        };
        let f = f.ok().flatten();
        let mut row = NodeStatus {
            node: n.name.to_string(),
            role: n.role,
            host: n.host.clone(),
            address,
            port: node.port,
            data_dir: n.data_dir.clone(),
            start_time: f.and_then(|f| f.start_time.clone()),
            in_recovery: f.and_then(|f| f.in_recovery),
            replication: None,
            pgxc_node: None,
            drift: f.filter(|f| f.initialized).map(|f| drift(n, f)).unwrap_or_default(),
            problems: Vec::new(),
            promoted_for: None,
            fenced: false,
            follows: None,
            state,
        };
        let running = row.state.accepting();
        if let Some((datanode, p)) = roles.fenced(&n.name) {
            row.fenced = true;
            row.problems.push(if let State::Unreachable(why) = &row.state {
                // Cut off from here, not known to be down: failover could not stop it.
                format!(
                    "fenced by failover ({} is the primary of {datanode} now), but its host \
                     cannot be reached ({why}): it may not have been stopped and may still take \
                     writes from clients that reach it. Make sure it is down (or its machine \
                     off); once its host answers, `pgxc-deploy stop INVENTORY --on {}`",
                    p.primary, n.name
                )
            } else if row.state.process() {
                format!(
                    "fenced by failover ({} is the primary of {datanode} now) but running: two \
                     primaries! Stop it: `pgxc-deploy stop INVENTORY --on {}`",
                    p.primary, n.name
                )
            } else {
                format!(
                    "fenced by failover: {} is the primary of {datanode} now and has no standby \
                     until `pgxc-deploy apply INVENTORY` rebuilds this node as its standby",
                    p.primary
                )
            });
            rows.push(row);
            continue;
        }
        if let Some(problem) = state_problem(&row) {
            row.problems.push(problem);
        }
        if running && f.is_some_and(|f| f.sql_stuck) {
            row.problems.push(format!(
                "it accepts connections, but a session did not answer within {} s{}",
                super::state::SQL_SECS,
                if inv.cluster.flavor.is_pgxc() {
                    " (its GTM, or its host's gtm_proxy, may be gone: see the GTM rows)"
                } else {
                    ""
                }
            ));
        }
        if let Some(cause) = f.and_then(|f| disk_cause(f, &n.data_dir)) {
            row.problems.push(format!("{cause}: free space on {}", n.host));
        }
        // Before the early ends below: a promoted Postgres-XL datanode keeps a pgxc_node too.
        if let Some(want) = &n.pgxc_node {
            let mut want = want.clone();
            for (datanode, p) in &roles.datanodes {
                if let Some(new) = inv.node(&p.primary) {
                    let address = inv.host(&new.host).map(|h| h.address.as_str()).unwrap_or("");
                    want = repointed(&want, datanode, address, new);
                }
            }
            let check = match f {
                Some(f) if running && !f.sql_stuck => {
                    let diff = pgxc_node_differences(&want, &f.pgxc_node);
                    if diff.is_empty() {
                        PgxcNodeCheck::Matches
                    } else {
                        PgxcNodeCheck::Differs(diff)
                    }
                }
                _ => PgxcNodeCheck::Unknown,
            };
            if let PgxcNodeCheck::Differs(d) = &check {
                row.problems.push(format!(
                    "pgxc_node differs from the inventory: {} (apply re-registers)",
                    d.join("; ")
                ));
            }
            row.pgxc_node = Some(check);
        }
        if let Some(problem) = f.and_then(|f| unreachable_standby(&row, f)) {
            row.problems.push(problem);
        }
        if let Some((_, p)) = roles.follower(&n.name).filter(|_| n.role.is_gtm_kind()) {
            // A GTM that a switchover (or apply) made the new active GTM's standby.
            if running && row.in_recovery != Some(true) {
                row.problems.push(format!(
                    "runs as an active GTM, but {} is the active GTM now: two active GTMs!",
                    p.primary
                ));
            }
            row.follows = Some(p.primary.clone());
            rows.push(row);
            continue;
        }
        if let Some((_, p)) = roles.follower(&n.name) {
            // A switchover made this old primary a standby of the promoted node.
            let primary_host = inv.node(&p.primary).map(|p| p.host.clone()).unwrap_or_default();
            let repl = replication(&p.primary, node_facts(&primary_host, &p.primary), &n.name);
            if running && row.in_recovery != Some(true) {
                row.problems.push(format!(
                    "not in recovery, but a switchover made it a standby of {}: two primaries!",
                    p.primary
                ));
            } else if running && !repl.streaming() {
                row.problems.push(format!("not streaming from {} ({})", p.primary, repl.state));
            }
            row.follows = Some(p.primary.clone());
            row.replication = Some(repl);
            rows.push(row);
            continue;
        }
        if let Some((datanode, _)) = roles.promoted(&n.name) {
            row.promoted_for = Some(datanode.to_string());
            if running && row.in_recovery != Some(false) {
                row.problems
                    .push(format!("promoted by failover for {datanode}, but still in recovery"));
            }
            rows.push(row);
            continue;
        }
        match n.role {
            Role::Standby => {
                let primary = node.primary.as_ref().map(|p| p.to_string()).unwrap_or_default();
                let primary_host = inv.node(&primary).map(|p| p.host.clone()).unwrap_or_default();
                let repl = replication(&primary, node_facts(&primary_host, &primary), &n.name);
                if running && row.in_recovery != Some(true) {
                    row.problems.push("not in recovery: it is no longer a standby".into());
                }
                if running && repl.state == Link::Unknown {
                    row.problems.push(format!(
                        "replication unknown: its primary {primary} is down or unreachable"
                    ));
                } else if running && !repl.streaming() {
                    row.problems.push(format!("not streaming from {primary} ({})", repl.state));
                }
                row.replication = Some(repl);
            }
            Role::Datanode if running && row.in_recovery == Some(true) => {
                row.problems.push("in recovery, but the inventory has it as a primary".into());
            }
            // `gtm_ctl status` says `0 slave` only once the standby has connected to the
            // active GTM and copied its state.
            Role::GtmStandby if running && row.in_recovery != Some(true) => {
                let active = node.primary.as_ref().map(|p| p.to_string()).unwrap_or_default();
                row.problems.push(format!(
                    "runs as an active GTM, not as the standby of {active}: two active GTMs!"
                ));
            }
            Role::Gtm if running && row.in_recovery == Some(true) => {
                row.problems.push(
                    "runs as a GTM standby, but the inventory has it as the active GTM".into(),
                );
            }
            _ => {}
        }
        if let Some(standby) = f.and_then(|f| super::degrade::blocking_standby(n, f))
            && running
        {
            // The standby's own trouble first, when its disk is the cause.
            let cause = inv.node(standby).and_then(|s| {
                let facts = node_facts(&s.host, s.name.as_str()).ok().flatten()?;
                let cause = disk_cause(facts, &s.data_dir)?;
                Some(format!(" ({} on {}: {cause})", s.name, s.host))
            });
            row.problems.push(format!(
                "commits wait for the synchronous standby {standby}, which is not streaming{}: \
                 `pgxc-deploy degrade INVENTORY {}` lets them through until it streams again",
                cause.unwrap_or_default(),
                n.name
            ));
        }
        rows.push(row);
    }
    rows
}

/// A GTM running as a standby whose host reaches the active GTM from another address than the
/// one it listens on ([`NodeFacts::reach_from`]): the active GTM sends its standby every
/// transaction ID at the address the standby connected from, so this one is never in sync.
fn unreachable_standby(row: &NodeStatus, f: &NodeFacts) -> Option<String> {
    if !(row.state.accepting() && row.in_recovery == Some(true)) {
        return None;
    }
    f.unreached(&row.host, &row.address)
}

fn state(f: &NodeFacts) -> State {
    if f.running {
        State::Running
    } else if f.alive {
        State::NotAccepting
    } else if f.initialized {
        State::Down
    } else {
        State::NotInitialised
    }
}

fn state_problem(row: &NodeStatus) -> Option<String> {
    let log = format!("{}/server.log", row.data_dir);
    match &row.state {
        State::Running => None,
        State::NotAccepting => Some(format!(
            "its process runs but it does not accept connections (starting or stuck; see {log})"
        )),
        State::Down => Some(format!(
            "not running (`pgxc-deploy start INVENTORY --on {}` starts it; see {log})",
            row.node
        )),
        State::NotInitialised => {
            Some(format!("{} is not initialised (`pgxc-deploy apply` builds it)", row.data_dir))
        }
        State::Unreachable(why) => Some(format!("host {} unreachable: {why}", row.host)),
    }
}

/// The standby `name` as its primary sees it.
fn replication(
    primary: &str,
    facts: Result<Option<&NodeFacts>, String>,
    name: &str,
) -> Replication {
    let mut repl = Replication {
        primary: primary.to_string(),
        state: Link::Unknown,
        sync_state: None,
        lag_bytes: None,
    };
    let Ok(Some(pf)) = facts else { return repl };
    // Its SQL did not answer: nothing is known of its standbys.
    if !pf.running || pf.sql_stuck {
        return repl;
    }
    match pf.replicas.iter().find(|r| r.application_name == name) {
        Some(r) => {
            repl.state = Link::Replica(r.state.clone());
            repl.sync_state = Some(r.sync_state.clone()).filter(|s| !s.is_empty());
            repl.lag_bytes = r.lag_bytes;
        }
        None => repl.state = Link::NotConnected,
    }
    repl
}

/// Managed files whose deployed content differs from the desired one.
pub fn drift(n: &DesiredNode, f: &NodeFacts) -> Vec<String> {
    n.files
        .iter()
        .filter_map(|file| match f.files.get(&file.name) {
            None => Some(format!("{} (missing)", file.name)),
            Some(have)
                if n.sync_standby
                    .as_deref()
                    .is_some_and(|s| super::degrade::is_held(n, s, have)) =>
            {
                Some(format!("{} (degraded)", file.name))
            }
            Some(have) if have.as_slice() != file.content.as_bytes() => Some(file.name.clone()),
            Some(_) => None,
        })
        .collect()
}

/// How a coordinator's pgxc_node (`have`) differs from the inventory (`want`), one entry per
/// node; empty when they match (row order does not matter).
pub fn pgxc_node_differences(want: &[PgxcNodeRow], have: &[PgxcNodeRow]) -> Vec<String> {
    let mut out = Vec::new();
    for w in want {
        match have.iter().find(|h| h.name == w.name) {
            None => out.push(format!("{} missing", w.name)),
            Some(h) if h.address() != w.address() => out.push(format!(
                "{} at {}, the inventory says {}",
                w.name,
                h.address(),
                w.address()
            )),
            Some(h) if h != w => {
                out.push(format!("{} {}, the inventory says {}", w.name, h.marks(), w.marks()))
            }
            Some(_) => {}
        }
    }
    let unwanted = |h: &&PgxcNodeRow| h.kind.registered() && !want.iter().any(|w| w.name == h.name);
    for h in have.iter().filter(unwanted) {
        out.push(format!("{} not in the inventory", h.name));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::desired::desired;
    use crate::plan::diff::SYNC_FILE;
    use crate::plan::fixtures;
    use crate::plan::render::Renderer;
    use crate::plan::state::Replica;

    /// Desired nodes of the PostgreSQL fixture: pg1 (on pg-a) with synchronous standby
    /// pg1_standby (on pg-b), pg2 (on pg-b).
    fn pg() -> (Inventory, Vec<DesiredNode>) {
        let inv = fixtures::postgresql();
        let (_, nodes) = desired(&inv, &Renderer::new(), "bin", None, None).unwrap();
        (inv, nodes)
    }

    /// Facts of a node as apply leaves it: initialised, running, files as desired.
    fn healthy(n: &DesiredNode) -> NodeFacts {
        NodeFacts {
            dir_exists: true,
            initialized: true,
            running: true,
            alive: true,
            start_time: Some("2026-11-27 10:00:00+00".into()),
            in_recovery: (n.role != Role::GtmProxy)
                .then_some(matches!(n.role, Role::Standby | Role::GtmStandby)),
            files: n
                .files
                .iter()
                .map(|f| (f.name.clone(), f.content.clone().into_bytes()))
                .collect(),
            ..Default::default()
        }
    }

    fn replica(name: &str, state: &str, sync: &str, lag: Option<u64>) -> Replica {
        Replica {
            application_name: name.into(),
            state: ReplicaState::parse(state),
            sync_state: sync.into(),
            lag_bytes: lag,
        }
    }

    fn all_healthy(nodes: &[DesiredNode]) -> BTreeMap<String, Result<HostFacts, String>> {
        let mut facts: BTreeMap<String, Result<HostFacts, String>> = BTreeMap::new();
        for n in nodes {
            let mut f = healthy(n);
            if n.name == "pg1" {
                f.replicas.push(replica("pg1_standby", "streaming", "sync", Some(0)));
            }
            let host = facts.entry(n.host.clone()).or_insert_with(|| Ok(HostFacts::default()));
            host.as_mut().unwrap().nodes.insert(n.name.clone(), f);
        }
        facts
    }

    fn node_facts<'a>(
        facts: &'a mut BTreeMap<String, Result<HostFacts, String>>,
        host: &str,
        node: &str,
    ) -> &'a mut NodeFacts {
        facts.get_mut(host).unwrap().as_mut().unwrap().nodes.get_mut(node).unwrap()
    }

    fn row<'a>(rows: &'a [NodeStatus], node: &str) -> &'a NodeStatus {
        rows.iter().find(|r| r.node == node).unwrap()
    }

    #[test]
    fn a_cluster_as_apply_leaves_it_is_healthy_with_no_drift() {
        let (inv, nodes) = pg();
        let rows = assess(&inv, &nodes, &all_healthy(&nodes), &Roles::default());
        assert_eq!(rows.len(), 3);
        for r in &rows {
            assert!(r.healthy(), "{}: {:?}", r.node, r.problems);
            assert!(r.drift.is_empty(), "{}: {:?}", r.node, r.drift);
            assert_eq!(r.state, State::Running);
        }
        let s = row(&rows, "pg1_standby");
        assert_eq!(
            s.replication,
            Some(Replication {
                primary: "pg1".into(),
                state: Link::Replica(ReplicaState::Streaming),
                sync_state: Some("sync".into()),
                lag_bytes: Some(0)
            })
        );
        assert_eq!((s.address.as_str(), s.port), ("192.168.1.11", 5432));
        assert_eq!(row(&rows, "pg1").replication, None);
    }

    #[test]
    fn a_killed_primary_is_down_and_the_others_still_show() {
        let (inv, nodes) = pg();
        let mut facts = all_healthy(&nodes);
        let pg1 = node_facts(&mut facts, "pg-a", "pg1");
        (pg1.running, pg1.alive, pg1.replicas) = (false, false, vec![]);
        let rows = assess(&inv, &nodes, &facts, &Roles::default());
        let p = row(&rows, "pg1");
        assert_eq!(p.state, State::Down);
        assert!(p.problems[0].starts_with("not running"), "{:?}", p.problems);
        // Its standby runs but no longer streams: replication unknown, since pg1 is down.
        let s = row(&rows, "pg1_standby");
        assert_eq!(s.replication.as_ref().unwrap().state, Link::Unknown);
        assert_eq!(s.problems, ["replication unknown: its primary pg1 is down or unreachable"]);
        assert!(row(&rows, "pg2").healthy());
    }

    #[test]
    fn an_unreachable_host_marks_its_nodes_down_not_the_rest() {
        let (inv, nodes) = pg();
        let mut facts = all_healthy(&nodes);
        facts.insert("pg-b".into(), Err("connect: connection refused".into()));
        let rows = assess(&inv, &nodes, &facts, &Roles::default());
        let s = row(&rows, "pg1_standby");
        assert_eq!(s.state.to_string(), "down (host unreachable: connect: connection refused)");
        assert_eq!(s.problems, ["host pg-b unreachable: connect: connection refused"]);
        assert!(!row(&rows, "pg2").healthy());
        // pg1 still streams to its standby as far as pg1 knows: healthy.
        assert!(row(&rows, "pg1").healthy());
    }

    #[test]
    fn a_standby_that_does_not_stream_blocks_its_synchronous_primary() {
        let (inv, nodes) = pg();
        let mut facts = all_healthy(&nodes);
        node_facts(&mut facts, "pg-a", "pg1").replicas.clear();
        let s = node_facts(&mut facts, "pg-b", "pg1_standby");
        (s.running, s.alive) = (false, false);
        let rows = assess(&inv, &nodes, &facts, &Roles::default());
        assert_eq!(
            row(&rows, "pg1").problems,
            ["commits wait for the synchronous standby pg1_standby, which is not streaming: \
                 `pgxc-deploy degrade INVENTORY pg1` lets them through until it streams again"]
        );
        assert_eq!(
            row(&rows, "pg1_standby").replication.as_ref().unwrap().state,
            Link::NotConnected
        );

        // Degraded: pg1 is healthy again, its file shown as degraded (apply switches it back).
        let pg1 = nodes.iter().find(|n| n.name == "pg1").unwrap();
        let on = &pg1.files.iter().find(|f| f.name == SYNC_FILE).unwrap().content;
        let held = super::super::diff::hold_sync(on, "pg1_standby");
        node_facts(&mut facts, "pg-a", "pg1").files.insert(SYNC_FILE.into(), held.into_bytes());
        let rows = assess(&inv, &nodes, &facts, &Roles::default());
        assert!(row(&rows, "pg1").healthy(), "{:?}", row(&rows, "pg1").problems);
        assert_eq!(row(&rows, "pg1").drift, ["synchronous_standby.conf (degraded)"]);
    }

    #[test]
    fn after_a_failover_the_promoted_standby_is_a_primary_and_the_old_one_fenced() {
        let (inv, nodes) = pg();
        let mut facts = all_healthy(&nodes);
        let pg1 = node_facts(&mut facts, "pg-a", "pg1");
        (pg1.running, pg1.alive, pg1.replicas) = (false, false, vec![]);
        node_facts(&mut facts, "pg-b", "pg1_standby").in_recovery = Some(false);
        let roles = Roles::handed_over("pg1", "pg1_standby", false);
        let rows = assess(&inv, &nodes, &facts, &roles);
        let s = row(&rows, "pg1_standby");
        assert!(s.healthy(), "{:?}", s.problems);
        assert_eq!(s.promoted_for.as_deref(), Some("pg1"));
        let p = row(&rows, "pg1");
        assert!(p.fenced);
        assert!(p.problems[0].starts_with("fenced by failover: pg1_standby is the primary"));
        // Started again by hand: two primaries.
        let pg1 = node_facts(&mut facts, "pg-a", "pg1");
        (pg1.running, pg1.alive) = (true, true);
        let rows = assess(&inv, &nodes, &facts, &roles);
        assert!(row(&rows, "pg1").problems[0].contains("two primaries"));
        // Cut off from here: not known to be stopped, and said so.
        facts.insert("pg-a".into(), Err("connect: timed out".into()));
        let rows = assess(&inv, &nodes, &facts, &roles);
        let problem = &row(&rows, "pg1").problems[0];
        assert!(problem.contains("cannot be reached (connect: timed out)"), "{problem}");
        assert!(problem.contains("may still take writes"), "{problem}");
    }

    #[test]
    fn after_a_switchover_the_old_primary_is_judged_as_the_new_one_s_standby() {
        let (inv, nodes) = pg();
        let mut facts = all_healthy(&nodes);
        let pg1 = node_facts(&mut facts, "pg-a", "pg1");
        (pg1.in_recovery, pg1.replicas) = (Some(true), vec![]);
        let s = node_facts(&mut facts, "pg-b", "pg1_standby");
        s.in_recovery = Some(false);
        s.replicas.push(replica("pg1", "streaming", "async", Some(0)));
        let roles = Roles::handed_over("pg1", "pg1_standby", true);
        let rows = assess(&inv, &nodes, &facts, &roles);
        let p = row(&rows, "pg1");
        assert!(p.healthy(), "{:?}", p.problems);
        assert!(!p.fenced);
        assert_eq!(p.follows.as_deref(), Some("pg1_standby"));
        assert!(p.replication.as_ref().unwrap().streaming());
        assert!(row(&rows, "pg1_standby").healthy());
        // Not streaming any more: unhealthy, saying from whom.
        node_facts(&mut facts, "pg-b", "pg1_standby").replicas.clear();
        let rows = assess(&inv, &nodes, &facts, &roles);
        assert_eq!(row(&rows, "pg1").problems, ["not streaming from pg1_standby (not connected)"]);
    }

    #[test]
    fn drift_names_changed_and_missing_files() {
        let (_, nodes) = pg();
        let n = &nodes[0];
        let mut f = healthy(n);
        assert!(drift(n, &f).is_empty());
        f.files.insert("postgresql.conf".into(), b"port = 1\n".to_vec());
        f.files.remove("pg_hba.conf");
        f.files.insert("unmanaged.conf".into(), b"x".to_vec());
        assert_eq!(drift(n, &f), ["postgresql.conf", "pg_hba.conf (missing)"]);
    }

    #[test]
    fn pgxc_node_differences_one_entry_per_node() {
        let row = |name: &str, host: &str, port| PgxcNodeRow {
            name: name.into(),
            kind: crate::plan::state::NodeKind::Datanode,
            host: host.into(),
            port,
            primary: false,
            preferred: false,
            forward: 0,
        };
        let want = [row("dn1", "10.0.0.1", 5432), row("dn2", "10.0.0.2", 5432)];
        assert!(pgxc_node_differences(&want, &[want[1].clone(), want[0].clone()]).is_empty());
        let have = [row("dn1", "10.0.0.9", 5432), row("old", "x", 1)];
        assert_eq!(
            pgxc_node_differences(&want, &have),
            [
                "dn1 at 10.0.0.9:5432, the inventory says 10.0.0.1:5432",
                "dn2 missing",
                "old not in the inventory"
            ]
        );
        let gtm = PgxcNodeRow {
            kind: crate::plan::state::NodeKind::Other("G".into()),
            ..row("gtm", "x", 1)
        };
        assert!(pgxc_node_differences(&want, &[want[0].clone(), want[1].clone(), gtm]).is_empty());
        let primary = PgxcNodeRow { primary: true, ..want[0].clone() };
        assert_eq!(
            pgxc_node_differences(&[primary], &want[..1]),
            ["dn1 unmarked, the inventory says primary"]
        );
    }

    /// Facts of `nodes` as apply leaves them (standbys in recovery), every pgxc_node as
    /// desired except `short`'s, which lacks its last row.
    fn registered_but(
        nodes: &[DesiredNode],
        short: &str,
    ) -> BTreeMap<String, Result<HostFacts, String>> {
        let mut facts = BTreeMap::new();
        for n in nodes {
            let mut f = healthy(n);
            f.in_recovery = Some(n.role == Role::Standby);
            if let Some(want) = &n.pgxc_node {
                f.pgxc_node = want.clone();
                if n.name == short {
                    f.pgxc_node.pop();
                }
            }
            let host = facts.entry(n.host.clone()).or_insert_with(|| Ok(HostFacts::default()));
            host.as_mut().unwrap().nodes.insert(n.name.clone(), f);
        }
        facts
    }

    /// A Postgres-XL datanode's standby promoted by failover keeps a pgxc_node of its own,
    /// checked like any datanode's.
    #[test]
    fn a_promoted_xl_datanode_checks_its_pgxc_node() {
        let mut inv = fixtures::postgres_xc();
        inv.cluster.flavor = crate::inventory::Flavor::PostgresXl;
        let mut roles = Roles::default();
        roles.datanodes.insert(
            "dn1".into(),
            crate::inventory::roles::Promotion {
                primary: "dn1_standby".into(),
                old_primary: "dn1".into(),
                old_primary_fenced: true,
                old_primary_follows: true,
                failed_over_at_unix: 1,
            },
        );
        let now = roles.effective(&inv).unwrap();
        let (_, nodes) = desired(&now, &Renderer::new(), "bin", None, None).unwrap();
        let rows = assess(&inv, &nodes, &registered_but(&nodes, "dn1_standby"), &roles);
        let promoted = row(&rows, "dn1_standby");
        assert_eq!(promoted.promoted_for.as_deref(), Some("dn1"));
        assert_eq!(promoted.pgxc_node, Some(PgxcNodeCheck::Differs(vec!["dn2 missing".into()])));
        assert_eq!(row(&rows, "dn2").pgxc_node, Some(PgxcNodeCheck::Matches));
    }

    #[test]
    fn xc_coordinators_check_pgxc_node() {
        let inv = fixtures::postgres_xc();
        let (_, nodes) = desired(&inv, &Renderer::new(), "bin", None, None).unwrap();
        let rows = assess(&inv, &nodes, &registered_but(&nodes, "coord2"), &Roles::default());
        assert_eq!(row(&rows, "coord1").pgxc_node, Some(PgxcNodeCheck::Matches));
        assert_eq!(
            row(&rows, "coord2").pgxc_node,
            Some(PgxcNodeCheck::Differs(vec!["dn2 missing".into()]))
        );
        assert_eq!(row(&rows, "gtm").pgxc_node, None);
        assert_eq!(row(&rows, "gtm").in_recovery, Some(false));
    }

    #[test]
    fn a_gtm_standby_must_run_as_a_standby_and_the_gtm_as_the_active_one() {
        let inv = fixtures::postgres_xc_ha();
        let (_, nodes) = desired(&inv, &Renderer::new(), "bin", None, None).unwrap();
        let mut facts = all_healthy(&nodes);
        let rows = assess(&inv, &nodes, &facts, &Roles::default());
        for gtm_kind in ["gtm", "gtm_standby", "proxy2"] {
            assert!(row(&rows, gtm_kind).healthy(), "{gtm_kind}: {rows:?}");
        }
        // `gtm_ctl status` says `1 master` on the standby: it was promoted behind our back.
        let db2 = facts.get_mut("db2").unwrap().as_mut().unwrap();
        db2.nodes.get_mut("gtm_standby").unwrap().in_recovery = Some(false);
        let db1 = facts.get_mut("db1").unwrap().as_mut().unwrap();
        db1.nodes.get_mut("gtm").unwrap().in_recovery = Some(true);
        let rows = assess(&inv, &nodes, &facts, &Roles::default());
        assert_eq!(
            row(&rows, "gtm_standby").problems,
            ["runs as an active GTM, not as the standby of gtm: two active GTMs!"]
        );
        assert_eq!(
            row(&rows, "gtm").problems,
            ["runs as a GTM standby, but the inventory has it as the active GTM"]
        );
        assert!(row(&rows, "proxy2").healthy());
    }

    #[test]
    fn a_gtm_standby_whose_connections_come_from_another_address_is_not_in_sync() {
        let mut inv = fixtures::postgres_xc_ha();
        let standby_host = inv.node("gtm_standby").unwrap().host.clone();
        let gtm_host = inv.node("gtm").unwrap().host.clone();
        let address = "10.0.0.2";
        inv.hosts.iter_mut().find(|h| h.name == standby_host).unwrap().address = address.into();
        let (_, nodes) = desired(&inv, &Renderer::new(), "bin", None, None).unwrap();
        let mut facts = all_healthy(&nodes);
        let mut reach_from = |host: &str, node: &str, from: &str| {
            let h = facts.get_mut(host).unwrap().as_mut().unwrap();
            h.nodes.get_mut(node).unwrap().reach_from = Some(from.into());
            assess(&inv, &nodes, &facts, &Roles::default())
        };
        assert!(row(&reach_from(&standby_host, "gtm_standby", address), "gtm_standby").healthy());
        // The active GTM is not judged by where its own connections come from.
        let rows = reach_from(&gtm_host, "gtm", "127.0.0.1");
        assert!(row(&rows, "gtm").healthy(), "{rows:?}");

        let rows = reach_from(&standby_host, "gtm_standby", "127.0.0.1");
        let problems = &row(&rows, "gtm_standby").problems;
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].starts_with("never in sync: the active GTM sends"), "{problems:?}");
        let said = format!("which is 127.0.0.1 on {standby_host}, but it listens on {address}");
        assert!(problems[0].contains(&said), "{problems:?}");
        let rows = reach_from(&standby_host, "gtm_standby", "?");
        let problems = &row(&rows, "gtm_standby").problems;
        assert!(problems[0].starts_with("not known to be in sync"), "{problems:?}");
        assert!(problems[0].contains("install iproute2"), "{problems:?}");
    }
}
