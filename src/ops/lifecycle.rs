//! Start and stop (`pgxc-deploy start|stop INVENTORY [--on SELECTOR] [--mode MODE]`): start the
//! selected nodes tier by tier in the flavor's dependency order (GTM, datanodes, standbys,
//! coordinators), or stop them in reverse; parallel within a tier. One probe per host first
//! decides what is already so ([`crate::plan::lifecycle`]); starting waits for readiness as
//! apply's start step does (the same step runs).

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Instant;

use crate::executor::report;
use crate::flavors::{self, NodeCommands};
use crate::inventory::{self, Inventory, Node, roles};
use crate::plan::lifecycle::{Decision, Direction, NodeDecision, Ran, tiers};
use crate::plan::state::HostFacts;
use crate::plan::step::Step;

use super::cluster::LockScope;
use super::session::Session;
use super::{Error, Status};

/// Start or stop the nodes `on` selects (all without it; `s.inv` is the cluster as it runs
/// now, so a promoted standby starts with the primaries) under the cluster lock, and say how
/// it ended. `started`: when the command started, for the last line.
pub async fn start_stop(
    s: &Session,
    on: Option<&str>,
    direction: Direction,
    started: Instant,
    out: &mut dyn Write,
) -> Result<Status, Error> {
    let selected = selected_nodes(&s.inv, on)?;
    let _lock = match s.lock(verb(direction), LockScope::Every).await {
        Ok(lock) => lock,
        Err(status) => return status,
    };
    let facts = s.probe(&selected).await;
    let fenced = fenced(&s.path)?;
    let ran = change(s, &selected, &facts, direction, &fenced, out).await?;
    report::lifecycle_summary(verb(direction), &ran, started.elapsed(), out)?;
    Ok(if ran.failed.is_empty() { Status::Ok } else { Status::Failed })
}

/// The nodes `--on` selects (a host selects its nodes), in inventory order; every node
/// without `--on`.
pub fn selected_nodes<'a>(inv: &'a Inventory, on: Option<&str>) -> Result<Vec<&'a Node>, Error> {
    let Some(on) = on else { return Ok(inv.nodes.iter().collect()) };
    let targets = inventory::select(inv, Some(on))
        .map_err(|e| Error::Usage(format!("--on: {e}\n  hint: {}", e.hint())))?;
    Ok(inv
        .nodes
        .iter()
        .filter(|n| {
            targets.iter().any(|t| match t {
                inventory::Target::Host(h) => &n.host == h,
                inventory::Target::Node(name) => &n.name == name,
            })
        })
        .collect())
}

/// Start or stop `nodes` tier by tier, reporting each node on `out`. A start stops at the first
/// tier with a failure (what depends on it is left alone); a stop goes on, so that as much as
/// possible is down.
pub async fn change(
    s: &Session,
    nodes: &[&Node],
    facts: &BTreeMap<String, Result<HostFacts, String>>,
    direction: Direction,
    fenced: &BTreeMap<String, String>,
    out: &mut dyn Write,
) -> Result<Ran, Error> {
    let flavor = flavors::of(s.inv.cluster.flavor);
    let mut with_commands: Vec<(&Node, NodeCommands)> = Vec::new();
    for n in nodes {
        with_commands.push((n, s.commands(n)?));
    }
    let mut ran = Ran::default();
    for tier in tiers(direction, flavor.start_order(), &with_commands, facts, fenced) {
        report::tier_header(verb(direction), tier.role, out)?;
        let label = |n: &NodeDecision| n.handled().to_string();
        if direction == Direction::Start && !ran.failed.is_empty() {
            for n in &tier.nodes {
                report::lifecycle_node(
                    &label(n),
                    "SKIP",
                    "not started: an earlier tier failed",
                    out,
                )?;
                ran.skipped.push(n.handled());
            }
            continue;
        }
        let steps: Vec<Step> = tier
            .nodes
            .iter()
            .filter_map(|n| match &n.decision {
                Decision::Run(step) => Some(step.clone()),
                _ => None,
            })
            .collect();
        let outcomes = s.outcomes(&steps).await;
        let mut outcomes = outcomes.iter();
        for n in &tier.nodes {
            match &n.decision {
                Decision::Run(step) => {
                    let outcome = outcomes.next().expect("one outcome per step");
                    report::progress(step, outcome, out)?;
                    let list = if outcome.result.is_ok() { &mut ran.done } else { &mut ran.failed };
                    list.push(n.handled());
                }
                Decision::Already(what) => {
                    report::lifecycle_node(&label(n), "ok", what, out)?;
                    ran.already.push(n.handled());
                }
                Decision::Cannot(why) => {
                    report::lifecycle_node(&label(n), "FAIL", why, out)?;
                    ran.failed.push(n.handled());
                }
            }
        }
    }
    Ok(ran)
}

/// Old primaries that a failover fenced, and why they must not start (from the roles file).
fn fenced(inventory: &std::path::Path) -> Result<BTreeMap<String, String>, Error> {
    let roles = roles::load(inventory).map_err(Error::from)?;
    Ok(roles
        .datanodes
        .iter()
        .filter(|(_, p)| !p.old_primary_follows)
        .map(|(datanode, p)| {
            let why = format!(
                "fenced: failover made {} the primary of {datanode} ({}); {} must not run as a \
                 primary beside it (`pgxc-deploy apply` rebuilds it as its standby)",
                p.primary,
                roles::path_for(inventory).display(),
                p.old_primary
            );
            (p.old_primary.clone(), why)
        })
        .collect())
}

pub fn verb(direction: Direction) -> &'static str {
    match direction {
        Direction::Start => "start",
        Direction::Stop(_) => "stop",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::scripted::{Scripted, World, healthy, node_mut};
    use crate::plan::fixtures;

    /// Every node of `inv` initialised and stopped.
    fn all_stopped(inv: &Inventory) -> World {
        let mut world = healthy(inv);
        for n in &inv.nodes {
            let f = node_mut(&mut world, n).unwrap();
            (f.running, f.alive, f.in_recovery) = (false, false, None);
        }
        world
    }

    async fn start(inv: &Inventory, hosts: &Scripted) -> (Status, String) {
        let dir = tempfile::tempdir().unwrap();
        let s = hosts.session(&dir.path().join("lab.toml"), inv.clone());
        let mut out = Vec::new();
        let status =
            start_stop(&s, None, Direction::Start, Instant::now(), &mut out).await.unwrap();
        (status, String::from_utf8(out).unwrap())
    }

    #[tokio::test]
    async fn start_goes_tier_by_tier_and_stops_at_the_first_tier_that_fails() {
        let inv = fixtures::postgres_xc();
        let hosts = Scripted::new(all_stopped(&inv));
        let (status, out) = start(&inv, &hosts).await;
        assert_eq!(status, Status::Ok, "{out}");
        assert_eq!(
            hosts.log(),
            [
                "lock start",
                "gtm: start",
                "dn1: start",
                "dn2: start",
                "dn1_standby: start",
                "dn2_replica: start",
                "coord1: start",
                "coord2: start",
            ]
        );

        let hosts = Scripted::new(all_stopped(&inv));
        hosts.fail_while("dn2: start", |_| true);
        let (status, out) = start(&inv, &hosts).await;
        assert_eq!(status, Status::Failed);
        assert_eq!(hosts.log(), ["lock start", "gtm: start", "dn1: start", "dn2: start"]);
        assert!(out.contains("coord1 on db1: not started: an earlier tier failed"), "{out}");
    }

    #[tokio::test]
    async fn start_leaves_running_nodes_alone_and_refuses_a_fenced_old_primary() {
        let inv = fixtures::postgres_xc();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lab.toml");
        let mut roles = roles::Roles::default();
        roles.datanodes.insert(
            "dn1".into(),
            roles::Promotion {
                primary: "dn1_standby".into(),
                old_primary: "dn1".into(),
                old_primary_fenced: true,
                old_primary_follows: false,
                failed_over_at_unix: 0,
            },
        );
        roles::save(&path, &roles).unwrap();
        let mut world = healthy(&inv);
        let dn1 = inv.node("dn1").unwrap();
        let f = node_mut(&mut world, dn1).unwrap();
        (f.running, f.alive) = (false, false);
        let hosts = Scripted::new(world);
        let s = hosts.session(&path, inv.clone());
        let mut out = Vec::new();
        let status =
            start_stop(&s, None, Direction::Start, Instant::now(), &mut out).await.unwrap();
        let out = String::from_utf8(out).unwrap();
        assert_eq!(status, Status::Failed, "{out}");
        assert_eq!(hosts.log(), ["lock start"]);
        assert!(out.contains("dn1 on db2: fenced: failover made dn1_standby the primary"), "{out}");
        assert!(out.contains("dn2 on db3: already running"), "{out}");
        assert!(out.contains("coord1 on db1: not started: an earlier tier failed"), "{out}");
    }
}
