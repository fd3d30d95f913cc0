//! `pgxc-deploy start|stop INVENTORY [--on SELECTOR] [--mode smart|fast|immediate]`: start the
//! selected nodes tier by tier in the flavor's dependency order (GTM, datanodes, standbys,
//! coordinators), or stop them in reverse; parallel within a tier. One probe per host first
//! decides what is already so ([`crate::plan::lifecycle`]); starting waits for readiness as
//! apply's start step does (the same step runs).

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Instant;

use crate::cli::{LifecycleArgs, StopArgs, StopModeArg};
use crate::executor::steps::{HostEnv, StepContext, run_step};
use crate::executor::{self, Target, report};
use crate::flavors::{self, NodeCommands, StopMode};
use crate::inventory::{self, Inventory, Node, roles};
use crate::plan::desired::bin_dir;
use crate::plan::lifecycle::{Decision, Direction, NodeDecision, Ran, tiers};
use crate::plan::state::HostFacts;
use crate::source::Layout;
use crate::transport::Fleet;

use super::{Error, Status, cluster, fleet};

pub async fn start(args: LifecycleArgs) -> Result<Status, Error> {
    run(args, Direction::Start).await
}

pub async fn stop(args: StopArgs) -> Result<Status, Error> {
    let mode = match args.mode {
        StopModeArg::Smart => StopMode::Smart,
        StopModeArg::Fast => StopMode::Fast,
        StopModeArg::Immediate => StopMode::Immediate,
    };
    run(args.target, Direction::Stop(mode)).await
}

async fn run(args: LifecycleArgs, direction: Direction) -> Result<Status, Error> {
    let started = Instant::now();
    // Tiers by the roles nodes have now: a promoted standby starts with the primaries.
    let (inv, _) = cluster::load_now(&args.inventory)?;
    let selected = selected_nodes(&inv, args.on.as_deref())?;
    let fleet = fleet::fleet(&inv, &args.ssh);
    let layout = cluster::layout(&inv, &fleet, inv.hosts.iter().map(|h| h.name.as_str())).await?;
    let envs = cluster::host_envs(&inv, &layout);
    let _lock = match cluster::lock(&inv, &fleet, &envs, verb(direction), cluster::LockScope::Every)
        .await
    {
        Ok(lock) => lock,
        Err(status) => return status,
    };
    let forks = args.ssh.forks;
    let facts = cluster::probe_nodes(&inv, &selected, &fleet, forks, &envs, &layout).await;
    let mut out = std::io::stdout();
    let fenced = fenced(&args.inventory)?;
    let ran = change(
        &inv, &selected, &facts, direction, &layout, &fleet, &envs, forks, &fenced, &mut out,
    )
    .await;
    fleet.close().await;
    let ran = ran?;
    report::lifecycle_summary(verb(direction), &ran, started.elapsed(), &mut out)?;
    Ok(if ran.failed.is_empty() { Status::Ok } else { Status::Failed })
}

/// The nodes `--on` selects (a host selects its nodes), in inventory order; every node
/// without `--on`.
pub(super) fn selected_nodes<'a>(
    inv: &'a Inventory,
    on: Option<&str>,
) -> Result<Vec<&'a Node>, Error> {
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
#[allow(clippy::too_many_arguments)]
pub(super) async fn change(
    inv: &Inventory,
    nodes: &[&Node],
    facts: &BTreeMap<String, Result<HostFacts, String>>,
    direction: Direction,
    layout: &Layout,
    fleet: &Fleet,
    envs: &BTreeMap<String, HostEnv>,
    forks: usize,
    fenced: &BTreeMap<String, String>,
    out: &mut dyn Write,
) -> Result<Ran, Error> {
    let flavor = flavors::of(inv.cluster.flavor);
    let mut with_commands: Vec<(&Node, NodeCommands)> = Vec::new();
    for n in nodes {
        let host = inv.host(&n.host).expect("validated inventory");
        let commands = flavor
            .commands(inv, n, &bin_dir(host, &layout.bin))
            .map_err(|e| Error::Usage(format!("{} on {}: {e}", n.name, n.host)))?;
        with_commands.push((n, commands));
    }
    let cx = StepContext::plain(fleet, envs.clone());
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
        let steps: Vec<(Target, usize)> = tier
            .nodes
            .iter()
            .enumerate()
            .filter_map(|(i, n)| match &n.decision {
                Decision::Run(s) => {
                    Some((Target { host: s.host.clone(), node: s.node.clone() }, i))
                }
                _ => None,
            })
            .collect();
        let outcomes = executor::run_items(steps, forks, |_, i| {
            let (cx, decision) = (&cx, &tier.nodes[i].decision);
            async move {
                let Decision::Run(step) = decision else { unreachable!("only steps are run") };
                run_step(step, cx).await
            }
        })
        .await;
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

fn verb(direction: Direction) -> &'static str {
    match direction {
        Direction::Start => "start",
        Direction::Stop(_) => "stop",
    }
}
