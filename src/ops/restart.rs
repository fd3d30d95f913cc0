//! Rolling restart (`pgxc-deploy restart INVENTORY --rolling [--on SELECTOR] [--batch N]`):
//! restart the selected nodes a batch at a time (standbys, primaries, coordinators, the GTM
//! last and only when `--on` selects it), each one checked before the next batch starts. One probe first: every node to
//! restart must run, and what checks it (a standby's primary, a coordinator) too, or nothing is
//! restarted. The roll stops at the first node that does not come back and leaves the rest
//! alone. Order, checks and refusals are [`crate::plan::restart`]'s.
//!
//! `--switchover`: a datanode's primary whose standby streams from it is handed over to that
//! standby ([`super::switchover::hand_over`], one datanode at a time) instead of restarting;
//! the old primary restarts as the new one's standby. `--switch-back` hands it back at once.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};

use crate::executor::{self, StepError, Target, report};
use crate::inventory::roles::Roles;
use crate::inventory::{Inventory, Node, Role, roles};
use crate::plan::desired::bin_dir;
use crate::plan::pair::Pair;
use crate::plan::restart::{self, RollNode};
use crate::plan::state;
use crate::plan::step::Step;
use crate::transport::{ExitStatus, Output};

use super::cluster::LockScope;
use super::session::{Session, label};
use super::switchover::hand_over;
use super::{Error, Status, lifecycle};

/// What to restart, and how.
#[derive(Debug, Clone)]
pub struct Opts {
    /// `--on`: the selector (every node without it; the GTM only when it selects it).
    pub on: Option<String>,
    /// How many nodes of a tier restart at once.
    pub batch: usize,
    /// Hand a datanode's primary over to its streaming standby instead of restarting it.
    pub switchover: bool,
    /// ... and hand it back at once.
    pub switch_back: bool,
}

/// The nodes `opts.on` selects, as the inventory `inv` names them: selected as the cluster
/// runs now (`now`: `@datanodes` are today's primaries, as for start and stop); the roll itself
/// works on the inventory's nodes and the roles file.
pub fn selected<'a>(
    inv: &'a Inventory,
    now: &Inventory,
    opts: &Opts,
) -> Result<Vec<&'a Node>, Error> {
    Ok(lifecycle::selected_nodes(now, opts.on.as_deref())?
        .iter()
        .map(|n| inv.node(n.name.as_str()).expect("the roles only swap the inventory's nodes"))
        .collect())
}

/// Say which selected nodes are left alone and why; `Ok(true)` when that is all of them
/// (nothing to restart, said on `out`): the command need not connect.
pub fn nothing_to_do(
    inv: &Inventory,
    now: &Inventory,
    roles: &Roles,
    opts: &Opts,
    out: &mut dyn Write,
) -> Result<bool, Error> {
    let selected = selected(inv, now, opts)?;
    let roll = restart::roll(&selected, roles, opts.on.is_some(), opts.batch);
    if !roll.batches.is_empty() {
        return Ok(false);
    }
    for (node, why) in &roll.left_alone {
        report::lifecycle_node(&label(node), "skip", why, out)?;
    }
    report::nothing_to_restart(out)?;
    Ok(true)
}

/// Restart the nodes `opts` selects (`s.inv`: the inventory as written; `now`: the cluster as
/// it runs now) a batch at a time under the cluster lock; see the module doc. `started`: when
/// the command started, for the last line.
pub async fn restart(
    s: &Session,
    now: &Inventory,
    opts: &Opts,
    started: Instant,
    out: &mut dyn Write,
) -> Result<Status, Error> {
    let (inv, path) = (&s.inv, &s.path);
    let _lock = match s.lock("restart", LockScope::Every).await {
        Ok(lock) => lock,
        Err(status) => return status,
    };
    // Read under the lock: another command may have changed the roles since the command read
    // them to see whether anything is to restart.
    let mut roles = roles::load(path).map_err(Error::from)?;
    let selected = selected(inv, now, opts)?;
    let roll = restart::roll(&selected, &roles, opts.on.is_some(), opts.batch);
    for (node, why) in &roll.left_alone {
        report::lifecycle_node(&label(node), "skip", why, out)?;
    }
    if roll.batches.is_empty() {
        report::nothing_to_restart(out)?;
        return Ok(Status::Ok);
    }
    let probed = probed(inv, &roll);
    let facts = s.probe(&probed).await;
    let of = |n: &Node| state::node_facts(&facts, &n.host, n.name.as_str());
    let refusals = restart::refusals(inv, &roll, &of);
    if !refusals.is_empty() {
        report::roll_refused(&refusals, out)?;
        return Ok(Status::Failed);
    }

    // Every node's steps, made before anything restarts.
    let bin = |n: &Node| bin_dir(inv.host(&n.host).expect("validated inventory"), &s.layout.bin);
    let reachable = |n: &Node| of(n).ok().flatten();
    let mut planned: BTreeMap<String, Vec<Step>> = BTreeMap::new();
    for n in roll.nodes() {
        let commands = s.commands(n.node)?;
        let verify = restart::verify(inv, n, &reachable).map_err(Error::Usage)?;
        let before = reachable(n.node).and_then(restart::Before::of);
        let before = if n.node.role.is_gtm_kind() { None } else { before };
        let standbys = restart::standbys(inv, n, &reachable);
        let steps = restart::steps(inv, n, &commands, &verify, before.as_ref(), &standbys, &bin);
        planned.insert(n.node.name.to_string(), steps);
    }

    // With --switchover, the primaries that hand over instead of restarting; the others say
    // why they restart in place.
    let mut hand_overs: BTreeMap<String, Pair> = BTreeMap::new();
    if opts.switchover {
        for n in roll.nodes().filter(|n| n.tier == Role::Datanode) {
            match restart::hand_over_to(inv, &roles, n, &reachable) {
                Ok(pair) => {
                    hand_overs.insert(n.node.name.to_string(), pair);
                }
                Err(why) => report::lifecycle_node(
                    &describe(n),
                    "note",
                    &format!("restarts in place, no switchover: {why}"),
                    out,
                )?,
            }
        }
    }

    let mut restarted = 0;
    let mut stopped_at = None;
    let mut tier = None;
    for (b, batch) in roll.batches.iter().enumerate() {
        if tier != Some(batch.tier) {
            report::tier_header("restart", batch.tier, out)?;
            tier = Some(batch.tier);
        }
        let (handing, plain): (Vec<&RollNode>, Vec<&RollNode>) =
            batch.nodes.iter().partition(|n| hand_overs.contains_key(n.node.name.as_str()));
        let mut failed = Vec::new();
        if !plain.is_empty() {
            let items = plain
                .iter()
                .map(|&n| {
                    (Target { host: n.node.host.clone(), node: Some(n.node.name.to_string()) }, n)
                })
                .collect();
            let outcomes = executor::run_items(items, plain.len(), |_, n: &RollNode| {
                let steps = &planned[n.node.name.as_str()];
                roll_one(s, steps)
            })
            .await;
            for (n, outcome) in plain.iter().zip(&outcomes) {
                let what = describe(n);
                match &outcome.result {
                    Ok(output) => {
                        let stdout = String::from_utf8_lossy(&output.stdout);
                        let down = restart::down_ms(&stdout).map(Duration::from_millis);
                        let what = match stdout.contains(restart::WAS_DOWN) {
                            true => format!("{what} (it was not running: started)"),
                            false => what,
                        };
                        report::restarted(&what, outcome.elapsed, down, out)?;
                        restarted += 1;
                    }
                    Err(e) => {
                        report::not_back(&what, outcome.elapsed, e, out)?;
                        failed.push(format!("{} (did not come back)", label(n.node)));
                    }
                }
            }
        }
        // Hand-overs one at a time: each changes the roles file and the coordinators.
        let mut pending = handing.into_iter();
        if failed.is_empty() {
            for n in pending.by_ref() {
                let pair = hand_overs[n.node.name.as_str()];
                if roll_over(s, &mut roles, pair, n, opts.switch_back, out).await? {
                    restarted += 1;
                } else {
                    failed.push(format!("{} (switchover failed)", label(n.node)));
                    break;
                }
            }
        }
        if !failed.is_empty() {
            let untouched: Vec<String> = pending
                .map(|n| label(n.node))
                .chain(roll.batches[b + 1..].iter().flat_map(|b| &b.nodes).map(|n| label(n.node)))
                .collect();
            stopped_at = Some((failed, untouched));
            break;
        }
    }
    report::roll_summary(restarted, stopped_at.as_ref(), started.elapsed(), out)?;
    if !hand_overs.is_empty() && !roles.is_empty() {
        report::roles_after_roll(&roles, &roles::path_for(path), out)?;
    }
    Ok(if stopped_at.is_none() { Status::Ok } else { Status::Failed })
}

/// Hand `n`'s datanode over to its standby (and back, with `switch_back`), reporting it.
/// `Ok(false)`: a step failed; what it left and what to do next is printed.
async fn roll_over<'a>(
    s: &'a Session,
    roles: &mut Roles,
    pair: Pair<'a>,
    n: &RollNode<'_>,
    switch_back: bool,
    out: &mut dyn Write,
) -> Result<bool, Error> {
    let what = describe(n);
    let started = Instant::now();
    let done = match hand_over(s, roles, pair, started, out).await? {
        Ok(done) => done,
        Err(why) => {
            report::lifecycle_node(&what, "FAIL", &format!("switchover failed: {why}"), out)?;
            return Ok(false);
        }
    };
    let summary = |new: &Node, started: Instant, first_write: Duration| {
        format!(
            "{} ({:.1} s, writes accepted {:.2} s after it started)",
            label(new),
            started.elapsed().as_secs_f64(),
            first_write.as_secs_f64()
        )
    };
    let line = format!("switched over to {}", summary(done.new, started, done.first_write));
    report::lifecycle_node(&what, "ok", &line, out)?;
    if switch_back {
        let started = Instant::now();
        let what = label(done.new);
        match hand_over(s, roles, pair, started, out).await? {
            Ok(back) => {
                let line =
                    format!("switched back to {}", summary(back.new, started, back.first_write));
                report::lifecycle_node(&what, "ok", &line, out)?;
            }
            Err(why) => {
                report::lifecycle_node(
                    &what,
                    "FAIL",
                    &format!("switching back failed: {why}"),
                    out,
                )?;
                return Ok(false);
            }
        }
    }
    out.flush()?;
    Ok(true)
}

/// Restart one node and run its checks, one after the other; the first failure ends it and is
/// named by its step (`pg1 on h1: check: pg1_standby streams from it again`). On success, the
/// restart step's output (it says how long the node was down).
async fn roll_one(s: &Session, steps: &[Step]) -> Result<Output, StepError> {
    let (cx, mut first) = (s.steps(), None);
    for step in steps {
        let output = s.hosts.run(&cx, step).await.map_err(|e| {
            // The step already says restart or check; a connect failure says so.
            let step = match e.step.as_str() {
                "restart" | "check" => step.to_string(),
                other => format!("{step}: {other}"),
            };
            StepError { step, ..e }
        })?;
        first.get_or_insert(output);
    }
    Ok(first.unwrap_or(Output { stdout: vec![], stderr: vec![], status: ExitStatus::Code(0) }))
}

/// The nodes to probe: those that roll, and those their checks run on or wait for (a standby's
/// primary, a primary's standbys, the coordinators of a Postgres-XC cluster).
fn probed<'a>(inv: &'a Inventory, roll: &'a restart::Roll<'a>) -> Vec<&'a Node> {
    let mut nodes: Vec<&Node> = Vec::new();
    let mut add = |n: &'a Node| {
        if !nodes.iter().any(|m| m.name == n.name) {
            nodes.push(n);
        }
    };
    for n in roll.nodes() {
        add(n.node);
        if let Some(p) = n.node.primary.as_ref().and_then(|p| inv.node(p.as_str())) {
            add(p);
        }
        inv.nodes.iter().filter(|s| s.primary.as_ref() == Some(&n.node.name)).for_each(&mut add);
    }
    if inv.cluster.flavor.is_pgxc() {
        inv.nodes.iter().filter(|n| n.role == Role::Coordinator).for_each(add);
    }
    nodes
}

/// `pg1_standby on h2`, or `pg1_standby on h2 (primary of pg1)` for a promoted standby.
fn describe(n: &RollNode) -> String {
    match &n.serves {
        Some(datanode) => format!("{} (primary of {datanode})", label(n.node)),
        None => label(n.node),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::scripted::{Scripted, World, healthy, streaming};
    use crate::plan::fixtures;

    fn pair_streaming(inv: &Inventory) -> World {
        let mut world = healthy(inv);
        streaming(&mut world, inv.node("pg1").unwrap(), inv.node("pg1_standby").unwrap());
        crate::ops::scripted::node_mut(&mut world, inv.node("pg2").unwrap()).unwrap().in_recovery =
            Some(false);
        world
    }

    async fn roll(inv: &Inventory, hosts: &Scripted, opts: Opts) -> (Status, String) {
        let dir = tempfile::tempdir().unwrap();
        let s = hosts.session(&dir.path().join("shop.toml"), inv.clone());
        let mut out = Vec::new();
        let status = restart(&s, inv, &opts, Instant::now(), &mut out).await.unwrap();
        (status, String::from_utf8(out).unwrap())
    }

    fn every_node() -> Opts {
        Opts { on: None, batch: 1, switchover: false, switch_back: false }
    }

    #[tokio::test]
    async fn standbys_restart_before_primaries_each_checked_before_the_next() {
        let inv = fixtures::postgresql();
        let hosts = Scripted::new(pair_streaming(&inv));
        let (status, out) = roll(&inv, &hosts, every_node()).await;
        assert_eq!(status, Status::Ok, "{out}");
        assert_eq!(
            hosts.log(),
            [
                "lock restart",
                "pg1_standby: restart",
                "pg1_standby: await: a new postmaster start time",
                "pg1: await: pg1_standby streams from it again",
                "pg1: restart",
                "pg1: await: a new postmaster start time",
                "pg1: await: a query on it",
                "pg1: await: its synchronous standby pg1_standby streams from it again",
                "pg2: restart",
                "pg2: await: a new postmaster start time",
                "pg2: await: a query on it",
            ]
        );
    }

    #[tokio::test]
    async fn a_standby_that_does_not_stream_again_stops_the_roll_before_its_primary_restarts() {
        let inv = fixtures::postgresql();
        let hosts = Scripted::new(pair_streaming(&inv));
        hosts.fail_while("pg1: await: pg1_standby streams from it again", |_| true);
        let (status, out) = roll(&inv, &hosts, every_node()).await;
        assert_eq!(status, Status::Failed);
        assert_eq!(hosts.log().last().unwrap(), "pg1: await: pg1_standby streams from it again");
        assert!(!hosts.log().iter().any(|l| l == "pg1: restart"), "{:?}", hosts.log());
        assert!(out.contains("pg1_standby on pg-b"), "{out}");
    }

    #[tokio::test]
    async fn the_roll_stops_at_the_first_node_that_does_not_come_back() {
        let inv = fixtures::postgresql();
        let hosts = Scripted::new(pair_streaming(&inv));
        hosts.fail_while("pg1_standby: restart", |_| true);
        let (status, out) = roll(&inv, &hosts, every_node()).await;
        assert_eq!(status, Status::Failed);
        assert_eq!(hosts.log(), ["lock restart", "pg1_standby: restart"]);
        assert!(out.contains("pg1_standby on pg-b"), "{out}");
    }

    #[tokio::test]
    async fn a_node_that_is_down_refuses_the_whole_roll_before_anything_restarts() {
        let inv = fixtures::postgresql();
        let mut world = pair_streaming(&inv);
        let pg2 = crate::ops::scripted::node_mut(&mut world, inv.node("pg2").unwrap()).unwrap();
        (pg2.running, pg2.alive) = (false, false);
        let hosts = Scripted::new(world);
        let (status, out) = roll(&inv, &hosts, every_node()).await;
        assert_eq!(status, Status::Failed);
        assert_eq!(hosts.log(), ["lock restart"]);
        assert!(out.contains("pg2"), "{out}");
    }
}
