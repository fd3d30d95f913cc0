//! What `restart --rolling` does, as values: the order in which the selected nodes restart
//! ([`roll`]: standbys, then datanodes' primaries, then coordinators, the GTM last and only when
//! `--on` selects it, `--batch` nodes at once within a tier), why a roll must not start
//! ([`refusals`]), and for each node the restart step and the checks that must pass before the
//! roll moves on ([`steps`]). PURE: `ops::restart` probes, runs the steps batch by batch
//! and stops at the first node that does not come back.
//!
//! The roles file is respected: a standby that a failover promoted restarts with the primaries
//! (and is checked as the datanode it serves), its fenced old primary is never restarted.
//!
//! With `--switchover`, a datanode's primary whose standby streams from it is not restarted:
//! it hands the datanode over to that standby (restarted already, in the standbys' tier), which
//! restarts the old primary as a standby ([`hand_over_to`]); the datanode is never down.

use super::desired::psql;
use super::pair::{self, Pair};
use super::sql;
use super::state::NodeFacts;
use super::step::{Action, Step};
use super::switchover;
use crate::flavors::{NodeCommands, StopMode, StopWait};
use crate::inventory::roles::Roles;
use crate::inventory::{Inventory, Node, Role};

/// The order of a rolling restart: what goes first depends on nothing that goes later. A
/// standby's restart costs its primary nothing (unless it is synchronous: commits wait for it
/// a moment); a primary's costs its datanode's writes; a coordinator's, the sessions on it;
/// the GTM's, every transaction of the cluster.
/// A gtm_proxy's restart costs its host's nodes their GTM connection; a GTM standby's, the
/// copy of the GTM's state (it copies it again as it starts, so after the GTM).
pub const ROLL_ORDER: [Role; 6] =
    [Role::Standby, Role::Datanode, Role::Coordinator, Role::GtmProxy, Role::Gtm, Role::GtmStandby];

/// How long each check may take to pass after the node accepts connections again.
pub const CHECK_TENTHS: u32 = 300;

/// What must hold for a restarted node before the roll moves on (besides accepting connections
/// and a new postmaster start time).
#[derive(Debug, Clone, PartialEq)]
pub enum Verify<'a> {
    /// A standby: its primary lists it as streaming again.
    Streaming { primary: &'a Node },
    /// A Postgres-XC datanode's primary: a query through a running coordinator reaches it (by
    /// its datanode name: the inventory's, also for a promoted standby).
    ThroughCoordinator { coordinator: &'a Node, datanode: String },
    /// A PostgreSQL primary: a query on it, out of recovery.
    Primary,
    /// A coordinator or the GTM: accepting connections is what it must do.
    Nothing,
}

/// One node of the roll.
#[derive(Debug, Clone, PartialEq)]
pub struct RollNode<'a> {
    pub node: &'a Node,
    /// The tier it restarts in: [`Role::Datanode`] for a promoted standby.
    pub tier: Role,
    /// The datanode a promoted standby serves now.
    pub serves: Option<String>,
    /// The node an old primary streams from since a switchover made it a standby.
    pub follows: Option<String>,
}

/// Nodes restarted at once; the next batch starts when each of them came back.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch<'a> {
    pub tier: Role,
    pub nodes: Vec<RollNode<'a>>,
}

/// The whole roll: batches in order, and selected nodes left alone with why.
#[derive(Debug, Clone, PartialEq)]
pub struct Roll<'a> {
    pub batches: Vec<Batch<'a>>,
    pub left_alone: Vec<(&'a Node, String)>,
}

impl Roll<'_> {
    pub fn nodes(&self) -> impl Iterator<Item = &RollNode<'_>> {
        self.batches.iter().flat_map(|b| &b.nodes)
    }
}

/// Order `selected` (inventory order) into batches of at most `batch` nodes. `gtm_named`: the
/// user's `--on` selected the GTM; without it, the GTM is left alone (its restart interrupts
/// every transaction of the cluster, which a rolling restart exists to avoid).
pub fn roll<'a>(selected: &[&'a Node], roles: &Roles, gtm_named: bool, batch: usize) -> Roll<'a> {
    let mut left_alone = Vec::new();
    let mut rolled = Vec::new();
    for &node in selected {
        if let Some((datanode, p)) = roles.fenced(node.name.as_str()) {
            left_alone.push((
                node,
                format!(
                    "fenced by failover ({} is the primary of {datanode} now): not restarted",
                    p.primary
                ),
            ));
            continue;
        }
        if node.role.is_gtm_kind() && !gtm_named {
            left_alone.push((
                node,
                format!(
                    "not restarted: {}; select it with --on to restart it after the others",
                    match node.role {
                        Role::GtmProxy =>
                            "a gtm_proxy restart interrupts the transactions of \
                                           its host's nodes",
                        Role::GtmStandby => "a GTM standby restart copies the GTM's state again",
                        _ => "a GTM restart interrupts every transaction of the cluster",
                    }
                ),
            ));
            continue;
        }
        let serves = roles.promoted(node.name.as_str()).map(|(d, _)| d.to_string());
        let follows = roles.follower(node.name.as_str()).map(|(_, p)| p.primary.clone());
        let tier = match (&serves, &follows) {
            (Some(_), _) => Role::Datanode,
            (None, Some(_)) => Role::Standby,
            (None, None) => node.role,
        };
        rolled.push(RollNode { node, tier, serves, follows });
    }
    let mut batches = Vec::new();
    for tier in ROLL_ORDER {
        let nodes: Vec<RollNode> = rolled.iter().filter(|n| n.tier == tier).cloned().collect();
        for chunk in nodes.chunks(batch.max(1)) {
            batches.push(Batch { tier, nodes: chunk.to_vec() });
        }
    }
    Roll { batches, left_alone }
}

/// What each rolled node is checked with. `inv`'s coordinators and the standbys' primaries
/// come from the inventory (a standby's primary cannot have been failed over while the standby
/// is still a standby). `facts(node)`: the probe's facts for a node, when its host answered.
pub fn verify<'a>(
    inv: &'a Inventory,
    n: &RollNode<'a>,
    facts: &dyn Fn(&Node) -> Option<&'a NodeFacts>,
) -> Result<Verify<'a>, String> {
    let running = |node: &Node| facts(node).is_some_and(|f| f.running);
    match n.tier {
        Role::Standby => {
            let primary = match &n.follows {
                Some(p) => inv.node(p),
                None => n.node.primary.as_ref().and_then(|p| inv.node(p.as_str())),
            };
            let primary = primary.ok_or_else(|| {
                format!("standby {} has no primary in the inventory", n.node.name)
            })?;
            if !running(primary) {
                return Err(format!(
                    "its primary {} on {} is not running, so it could not be seen streaming \
                     again",
                    primary.name, primary.host
                ));
            }
            Ok(Verify::Streaming { primary })
        }
        Role::Datanode if inv.cluster.flavor.is_pgxc() => {
            let coordinator = inv
                .nodes
                .iter()
                .find(|c| c.role == Role::Coordinator && running(c))
                .ok_or("no coordinator is running to check that queries reach it again")?;
            let datanode = n.serves.clone().unwrap_or_else(|| n.node.name.to_string());
            Ok(Verify::ThroughCoordinator { coordinator, datanode })
        }
        Role::Datanode => Ok(Verify::Primary),
        Role::Coordinator | Role::Gtm | Role::GtmStandby | Role::GtmProxy => Ok(Verify::Nothing),
    }
}

/// A datanode primary's standbys that ran before the roll: the roll moves on only once they
/// stream from the restarted primary again, so that it leaves the cluster as healthy as it
/// found it, and because every commit on a primary waits for its synchronous standby (a
/// walreceiver retries every 5 s by default: `wal_retrieve_retry_interval` on PostgreSQL).
/// For a promoted standby, its standby is the old primary that follows it (rebuilt by apply,
/// or made a standby by a switchover): running and in recovery.
pub fn standbys<'a>(
    inv: &'a Inventory,
    n: &RollNode<'a>,
    facts: &dyn Fn(&Node) -> Option<&'a NodeFacts>,
) -> Vec<&'a Node> {
    if n.tier != Role::Datanode {
        return Vec::new();
    }
    inv.nodes
        .iter()
        .filter(|s| match &n.serves {
            None => {
                s.role == Role::Standby
                    && s.primary.as_ref() == Some(&n.node.name)
                    && facts(s).is_some_and(|f| f.running)
            }
            Some(datanode) => {
                s.role == Role::Datanode
                    && s.name.as_str() == datanode
                    && facts(s).is_some_and(|f| f.running && f.in_recovery == Some(true))
            }
        })
        .collect()
}

/// With `--switchover`: the datanode pair (as the inventory writes it) that the primary `n`
/// hands over to its standby instead of restarting, or why it restarts in place: a datanode
/// with no standby, a standby fenced by a failover, or one that does not stream from it now
/// (`facts`: the probe's, before the roll; the hand-over reads the pair again when its turn
/// comes). Only for nodes of the datanodes' tier.
pub fn hand_over_to<'a>(
    inv: &'a Inventory,
    roles: &Roles,
    n: &RollNode<'a>,
    facts: &dyn Fn(&Node) -> Option<&'a NodeFacts>,
) -> Result<Pair<'a>, String> {
    let datanode = n.serves.as_deref().unwrap_or(n.node.name.as_str());
    let pair = pair::pair(inv, datanode).map_err(|_| "it has no standby".to_string())?;
    let now = pair::current(inv, roles, pair)?;
    match switchover::refusal(now.datanode, now.standby, facts(now.datanode), facts(now.standby)) {
        Some(why) => Err(why.to_string()),
        None => Ok(pair),
    }
}

/// Why the roll must not start, one line per node: every node to restart must run (a roll
/// never takes down more than it restarts), and what checks it must be there.
pub fn refusals<'a>(
    inv: &'a Inventory,
    roll: &Roll<'a>,
    facts: &dyn Fn(&Node) -> Result<Option<&'a NodeFacts>, String>,
) -> Vec<String> {
    let mut out = Vec::new();
    let reachable = |node: &Node| facts(node).ok().flatten();
    for n in roll.nodes() {
        let label = format!("{} on {}", n.node.name, n.node.host);
        match facts(n.node) {
            Err(why) => out.push(format!("{label}: its host is unreachable: {why}")),
            Ok(None) => out.push(format!("{label}: the probe did not report it")),
            Ok(Some(f)) if !f.running => out.push(format!(
                "{label}: it is not running; a rolling restart restarts running nodes only \
                 (`pgxc-deploy start INVENTORY --on {}` starts it)",
                n.node.name
            )),
            Ok(Some(f))
                if n.node.role != Role::Gtm && f.start_time.is_none() && f.pid.is_none() =>
            {
                out.push(format!("{label}: its postmaster start time could not be read"))
            }
            Ok(Some(_)) => {
                if let Err(why) = verify(inv, n, &reachable) {
                    out.push(format!("{label}: {why}"));
                }
            }
        }
    }
    out
}

/// What tells that a node restarted: its postmaster start time before the restart, or, for a
/// server that answers no SQL (a Postgres-XL standby), its postmaster's PID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Before {
    StartTime(String),
    Pid(u32),
}

impl Before {
    /// From the node's facts: its start time, else its PID.
    pub fn of(f: &NodeFacts) -> Option<Before> {
        f.start_time.clone().map(Before::StartTime).or(f.pid.map(Before::Pid))
    }
}

/// The restart of one node and the checks that follow it, in order. `commands`: the node's;
/// `bin(node)`: the server binaries' directory on that node's host; `before`: how to tell it
/// restarted (`None` for the GTM); `standbys`: see [`standbys`].
pub fn steps(
    inv: &Inventory,
    n: &RollNode<'_>,
    commands: &NodeCommands,
    verify: &Verify<'_>,
    before: Option<&Before>,
    standbys: &[&Node],
    bin: &dyn Fn(&Node) -> String,
) -> Vec<Step> {
    let node = n.node;
    let on = |target: &Node, action| Step {
        host: target.host.clone(),
        node: Some(target.name.clone()),
        action,
    };
    let check = |target: &Node, sql: String, what: String| {
        let mut argv = psql(inv, target, &bin(target));
        argv.extend(["-A".to_string(), "-t".to_string(), "-c".to_string(), sql]);
        on(target, Action::Await { argv, what, tenths: CHECK_TENTHS })
    };
    let mut steps = vec![on(
        node,
        Action::Restart {
            stop: commands.stop.argv(StopMode::Fast, StopWait::NoWait),
            data_dir: commands.data_dir.clone(),
            status: commands.status.clone(),
            start: commands.start.clone(),
            log: commands.log.clone(),
            ready: commands.ready.clone(),
            settings: Vec::new(),
        },
    )];
    match before {
        Some(Before::StartTime(t)) => {
            steps.push(check(node, sql::started_after(t), "a new postmaster start time".into()))
        }
        Some(Before::Pid(pid)) => {
            let argv = new_postmaster_pid(&commands.data_dir, *pid);
            let what = "a new postmaster PID".into();
            steps.push(on(node, Action::Await { argv, what, tenths: CHECK_TENTHS }));
        }
        None => {}
    }
    match verify {
        Verify::Streaming { primary } => steps.push(check(
            primary,
            sql::streaming(node.name.as_str()),
            format!("{} streams from it again", node.name),
        )),
        Verify::ThroughCoordinator { coordinator, datanode } => steps.push(check(
            coordinator,
            sql::reaches_through_coordinator(datanode),
            format!("a query through it reaches {datanode}"),
        )),
        Verify::Primary => {
            steps.push(check(node, sql::PRIMARY_CHECK.to_string(), "a query on it".into()))
        }
        Verify::Nothing => {}
    }
    for standby in standbys {
        let sync = if standby.synchronous { "synchronous " } else { "" };
        steps.push(check(
            node,
            sql::streaming(standby.name.as_str()),
            format!("its {sync}standby {} streams from it again", standby.name),
        ));
    }
    steps
}

/// argv that fails while the postmaster of `data_dir` is still the process `pid` (or none
/// runs): an Await that a restart happened, on a server that answers no SQL.
fn new_postmaster_pid(data_dir: &str, pid: u32) -> Vec<String> {
    let test =
        "p=$(head -n 1 \"$1\"/postmaster.pid 2>/dev/null) && [ -n \"$p\" ] && [ \"$p\" != \"$2\" ]";
    ["sh", "-c", test, "sh", data_dir, &pid.to_string()].map(String::from).to_vec()
}

/// The milliseconds a restart step's output says its node was down (from the stop command to
/// the first successful readiness probe); see the executor's restart script.
pub fn down_ms(stdout: &str) -> Option<u64> {
    stdout.lines().find_map(|l| l.strip_prefix(DOWN_MS_PREFIX)?.trim().parse().ok())
}

/// The line a restart step prints last: `pgxc-deploy-down-ms 912`.
pub const DOWN_MS_PREFIX: &str = "pgxc-deploy-down-ms ";

/// What the restart step prints when the node was not running (it is then only started).
pub const WAS_DOWN: &str = "was not running: starting it";

#[cfg(test)]
mod tests {
    use super::*;

    /// A restart of a server that answers no SQL is seen by its postmaster's new PID.
    #[test]
    fn a_new_postmaster_pid_is_awaited() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display().to_string();
        let argv = new_postmaster_pid(&d, 1234);
        let run = || std::process::Command::new(&argv[0]).args(&argv[1..]).status().unwrap();
        assert!(!run().success(), "no postmaster.pid");
        std::fs::write(format!("{d}/postmaster.pid"), "1234\n/data\n").unwrap();
        assert!(!run().success(), "the same postmaster");
        std::fs::write(format!("{d}/postmaster.pid"), "5678\n/data\n").unwrap();
        assert!(run().success(), "a new postmaster");
    }

    use crate::flavors;
    use crate::plan::fixtures;
    use crate::plan::state::ReplicaState;

    fn names<'a>(roll: &'a Roll<'a>) -> Vec<Vec<&'a str>> {
        roll.batches
            .iter()
            .map(|b| b.nodes.iter().map(|n| n.node.name.as_str()).collect())
            .collect()
    }

    fn running(start: &str) -> NodeFacts {
        NodeFacts {
            initialized: true,
            running: true,
            alive: true,
            start_time: Some(start.into()),
            ..Default::default()
        }
    }

    #[test]
    fn standbys_then_primaries_then_coordinators_and_the_gtm_only_when_named() {
        let inv = fixtures::postgres_xc();
        let all: Vec<&Node> = inv.nodes.iter().collect();
        let r = roll(&all, &Roles::default(), false, 1);
        assert_eq!(
            names(&r),
            [
                vec!["dn1_standby"],
                vec!["dn2_replica"],
                vec!["dn1"],
                vec!["dn2"],
                vec!["coord1"],
                vec!["coord2"]
            ]
        );
        assert_eq!(r.left_alone.len(), 1);
        assert!(r.left_alone[0].1.contains("interrupts every transaction"), "{:?}", r.left_alone);

        let r = roll(&all, &Roles::default(), true, 2);
        assert_eq!(
            names(&r),
            [
                vec!["dn1_standby", "dn2_replica"],
                vec!["dn1", "dn2"],
                vec!["coord1", "coord2"],
                vec!["gtm"]
            ]
        );
        assert!(r.left_alone.is_empty());
        assert_eq!(r.batches[3].tier, Role::Gtm);
    }

    #[test]
    fn after_a_switchover_the_old_primary_rolls_as_a_standby_of_the_new_one() {
        let inv = fixtures::postgres_xc();
        let roles = Roles::handed_over("dn1", "dn1_standby", true);
        let all: Vec<&Node> = inv.nodes.iter().collect();
        let r = roll(&all, &roles, false, 1);
        let old = r.nodes().find(|n| n.node.name.as_str() == "dn1").expect("dn1 rolls");
        assert_eq!((old.tier, old.follows.as_deref()), (Role::Standby, Some("dn1_standby")));
        assert!(r.left_alone.iter().all(|(n, _)| n.name.as_str() != "dn1"));
        let facts = NodeFacts { running: true, ..Default::default() };
        let verified = verify(&inv, old, &|_| Some(&facts)).unwrap();
        assert_eq!(verified, Verify::Streaming { primary: inv.node("dn1_standby").unwrap() });
    }

    #[test]
    fn after_a_failover_the_promoted_standby_rolls_as_a_primary_and_the_old_one_is_left_alone() {
        let inv = fixtures::postgres_xc();
        let roles = Roles::handed_over("dn1", "dn1_standby", false);
        let all: Vec<&Node> = inv.nodes.iter().collect();
        let r = roll(&all, &roles, false, 1);
        assert_eq!(
            names(&r),
            [vec!["dn2_replica"], vec!["dn1_standby"], vec!["dn2"], vec!["coord1"], vec!["coord2"]]
        );
        let promoted = &r.batches[1].nodes[0];
        assert_eq!((promoted.tier, promoted.serves.as_deref()), (Role::Datanode, Some("dn1")));
        assert_eq!(r.left_alone[0].0.name.as_str(), "gtm");
        assert_eq!(r.left_alone[1].0.name.as_str(), "dn1");
        assert!(r.left_alone[1].1.starts_with("fenced by failover (dn1_standby"));

        // It is checked by its datanode's name, through the first running coordinator.
        let coord2 = inv.node("coord2").unwrap();
        let up = running("t");
        let facts = |n: &Node| (n.name.as_str() == "coord2").then_some(&up);
        assert_eq!(
            verify(&inv, promoted, &facts).unwrap(),
            Verify::ThroughCoordinator { coordinator: coord2, datanode: "dn1".into() }
        );
    }

    #[test]
    fn refuses_to_start_when_a_node_or_what_checks_it_is_not_there() {
        let inv = fixtures::postgresql();
        let all: Vec<&Node> = inv.nodes.iter().collect();
        let r = roll(&all, &Roles::default(), false, 1);
        assert_eq!(names(&r), [vec!["pg1_standby"], vec!["pg1"], vec!["pg2"]]);
        let up = running("2026-11-25 12:00:00+00");
        let down = NodeFacts { initialized: true, ..Default::default() };
        let all_up = |_: &Node| Ok(Some(&up));
        assert!(refusals(&inv, &r, &all_up).is_empty());
        let pg1_down = |n: &Node| Ok(Some(if n.name.as_str() == "pg1" { &down } else { &up }));
        assert_eq!(
            refusals(&inv, &r, &pg1_down),
            [
                "pg1_standby on pg-b: its primary pg1 on pg-a is not running, so it could not be \
                 seen streaming again",
                "pg1 on pg-a: it is not running; a rolling restart restarts running nodes only \
                 (`pgxc-deploy start INVENTORY --on pg1` starts it)"
            ]
        );
        let b_unreachable = |n: &Node| {
            if n.host == "pg-b" { Err("connect: refused".into()) } else { Ok(Some(&up)) }
        };
        assert_eq!(
            refusals(&inv, &r, &b_unreachable),
            [
                "pg1_standby on pg-b: its host is unreachable: connect: refused",
                "pg2 on pg-b: its host is unreachable: connect: refused"
            ]
        );

        let xc = fixtures::postgres_xc();
        let dn1: Vec<&Node> = vec![xc.node("dn1").unwrap()];
        let r = roll(&dn1, &Roles::default(), false, 1);
        let only_dn1 = |n: &Node| Ok(Some(if n.name.as_str() == "dn1" { &up } else { &down }));
        assert_eq!(
            refusals(&xc, &r, &only_dn1),
            ["dn1 on db2: no coordinator is running to check that queries reach it again"]
        );
    }

    #[test]
    fn a_node_restarts_then_shows_a_new_start_time_and_its_role_check() {
        let inv = fixtures::postgres_xc();
        let flavor = flavors::of(inv.cluster.flavor);
        let bin = |_: &Node| "/b".to_string();
        let all: Vec<&Node> = inv.nodes.iter().collect();
        let r = roll(&all, &Roles::default(), false, 1);
        let standby = &r.batches[0].nodes[0];
        let dn1 = inv.node("dn1").unwrap();
        let c = flavor.commands(&inv, standby.node, "/b").unwrap();
        let v = Verify::Streaming { primary: dn1 };
        let steps = steps(
            &inv,
            standby,
            &c,
            &v,
            Some(&Before::StartTime("2026-11-25 12:00:00.1+00".into())),
            &[],
            &bin,
        );
        let shown: Vec<String> = steps.iter().map(|s| s.to_string()).collect();
        assert_eq!(
            shown,
            [
                "dn1_standby on db3: restart",
                "dn1_standby on db3: await: a new postmaster start time",
                "dn1 on db2: await: dn1_standby streams from it again"
            ]
        );
        let Action::Restart { stop, status, .. } = &steps[0].action else { panic!("restart") };
        assert_eq!(stop.join(" "), "/b/pg_ctl -D /data/pgxc/dn1_standby -m fast -W -t 60 stop");
        assert_eq!(status, &c.status);
        let Action::Await { argv, .. } = &steps[1].action else { panic!("await") };
        assert_eq!(
            argv.last().unwrap(),
            "select 1 / (pg_postmaster_start_time() > '2026-11-25 12:00:00.1+00'::timestamptz)::int"
        );
        let Action::Await { argv, .. } = &steps[2].action else { panic!("await") };
        assert_eq!(argv[0], "/b/psql");
        assert!(argv.windows(2).any(|w| w == ["-p", "15432"]), "dn1: {argv:?}");
        assert_eq!(
            argv.last().unwrap(),
            "select 1 / count(*)::int from pg_stat_replication where application_name = \
             'dn1_standby' and state = 'streaming'"
        );

        let coord1 = inv.node("coord1").unwrap();
        let v = Verify::ThroughCoordinator { coordinator: coord1, datanode: "dn1".into() };
        let primary = RollNode { node: dn1, tier: Role::Datanode, serves: None, follows: None };
        let c = flavor.commands(&inv, dn1, "/b").unwrap();
        let s =
            super::steps(&inv, &primary, &c, &v, Some(&Before::StartTime("x'y".into())), &[], &bin);
        assert_eq!(s[2].to_string(), "coord1 on db1: await: a query through it reaches dn1");
        let Action::Await { argv, .. } = &s[2].action else { panic!("await") };
        assert_eq!(argv.last().unwrap(), "execute direct on (dn1) 'select 1'");
        let Action::Await { argv, .. } = &s[1].action else { panic!("await") };
        assert!(argv.last().unwrap().contains("> 'x''y'::timestamptz"));

        let gtm = RollNode {
            node: inv.node("gtm").unwrap(),
            tier: Role::Gtm,
            serves: None,
            follows: None,
        };
        let c = flavor.commands(&inv, gtm.node, "/b").unwrap();
        assert_eq!(super::steps(&inv, &gtm, &c, &Verify::Nothing, None, &[], &bin).len(), 1);

        // dn1's standby must stream again before the roll goes on.
        let up = running("t");
        let facts = |_: &Node| Some(&up);
        let standbys = standbys(&inv, &primary, &facts);
        assert_eq!(standbys.len(), 1);
        let s = super::steps(
            &inv,
            &primary,
            &c_dn1(&inv),
            &v,
            Some(&Before::StartTime("t".into())),
            &standbys,
            &bin,
        );
        assert_eq!(
            s[3].to_string(),
            "dn1 on db2: await: its synchronous standby dn1_standby streams from it again"
        );
        assert!(
            super::standbys(&inv, &primary, &|_| None).is_empty(),
            "not running: not waited for"
        );
        let standby = RollNode {
            node: inv.node("dn1_standby").unwrap(),
            tier: Role::Standby,
            serves: None,
            follows: None,
        };
        assert!(super::standbys(&inv, &standby, &facts).is_empty());
    }

    fn c_dn1(inv: &Inventory) -> NodeCommands {
        flavors::of(inv.cluster.flavor).commands(inv, inv.node("dn1").unwrap(), "/b").unwrap()
    }

    #[test]
    fn with_switchover_a_primary_hands_over_to_a_standby_that_streams_from_it() {
        use crate::plan::state::Replica;
        let inv = fixtures::postgresql();
        let streams = |standby: &str| Replica {
            application_name: standby.into(),
            state: ReplicaState::Streaming,
            sync_state: "async".into(),
            lag_bytes: Some(0),
        };
        let mut primary = running("t");
        primary.in_recovery = Some(false);
        primary.replicas.push(streams("pg1_standby"));
        let mut standby = running("t");
        standby.in_recovery = Some(true);
        let facts = |n: &Node| match n.name.as_str() {
            "pg1_standby" => Some(&standby),
            _ => Some(&primary),
        };
        let all: Vec<&Node> = inv.nodes.iter().collect();
        let r = roll(&all, &Roles::default(), false, 1);
        let [pg1, pg2] = [&r.batches[1].nodes[0], &r.batches[2].nodes[0]];
        let pair = hand_over_to(&inv, &Roles::default(), pg1, &facts).unwrap();
        assert_eq!(pair.standby.name.as_str(), "pg1_standby");
        assert_eq!(
            hand_over_to(&inv, &Roles::default(), pg2, &facts).unwrap_err(),
            "it has no standby"
        );
        let lagging = NodeFacts { replicas: Vec::new(), ..primary.clone() };
        let facts_lagging = |n: &Node| match n.name.as_str() {
            "pg1_standby" => Some(&standby),
            _ => Some(&lagging),
        };
        assert!(
            hand_over_to(&inv, &Roles::default(), pg1, &facts_lagging)
                .unwrap_err()
                .contains("pg1_standby does not stream from pg1"),
        );

        // Swapped by an earlier switchover: pg1_standby rolls as the primary and hands back.
        let roles = Roles::handed_over("pg1", "pg1_standby", true);
        let r = roll(&all, &roles, false, 1);
        let promoted = r.nodes().find(|n| n.serves.is_some()).unwrap();
        assert_eq!(promoted.node.name.as_str(), "pg1_standby");
        let mut old = running("t");
        old.in_recovery = Some(true);
        let mut new = running("t");
        new.in_recovery = Some(false);
        new.replicas.push(streams("pg1"));
        let swapped = |n: &Node| Some(if n.name.as_str() == "pg1" { &old } else { &new });
        assert_eq!(
            hand_over_to(&inv, &roles, promoted, &swapped).unwrap().datanode.name.as_str(),
            "pg1"
        );

        // After a failover, the old primary is fenced: nothing to hand over to.
        let roles = Roles::handed_over("pg1", "pg1_standby", false);
        let r = roll(&all, &roles, false, 1);
        let promoted = r.nodes().find(|n| n.serves.is_some()).unwrap();
        assert!(hand_over_to(&inv, &roles, promoted, &swapped).unwrap_err().contains("is fenced"));
    }

    #[test]
    fn reads_the_down_time_a_restart_printed() {
        assert_eq!(down_ms("waiting\npgxc-deploy-down-ms 912\n"), Some(912));
        assert_eq!(down_ms("nothing"), None);
    }
}
