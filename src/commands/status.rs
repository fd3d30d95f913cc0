//! `pgxc-deploy status INVENTORY [--json] [--watch SECONDS [--heal]]`: one row per node, from
//! one probe per host (in parallel), once or refreshed until Ctrl-C. A host that cannot be
//! reached shows its nodes as down and hides nothing else. Exit status 1 when any node is
//! unhealthy ([`crate::plan::health`] decides which).
//!
//! `--heal` (with `--watch`): after each refresh, degrade the primaries whose commits waited
//! for a synchronous standby that did not stream at two refreshes in a row (the same work as
//! `degrade`, [`super::degrade::degrade`]), and switch synchronous replication back on for the
//! degraded ones whose standby streams again. What to heal is decided in
//! [`crate::plan::degrade::heal`].

use std::collections::{BTreeMap, BTreeSet};
use std::io::{IsTerminal, Write};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::cli::StatusArgs;
use crate::executor::report;
use crate::executor::steps::StepContext;
use crate::inventory::roles;
use crate::plan::degrade::{self, Heal};
use crate::plan::desired::DesiredNode;
use crate::plan::desired::desired;
use crate::plan::health;

use super::degrade::{Cx, Degraded};
use super::failover::{label, run_one};
use super::{Error, Status, cluster, fleet};

pub async fn run(args: StatusArgs) -> Result<Status, Error> {
    let Some(seconds) = args.watch else { return once(&args, false, None).await };
    let interval = std::time::Duration::from_secs(seconds);
    let mut healer = args.heal.then(Healer::default);
    // Created once, so that a Ctrl-C during a refresh is not lost: it ends the watch after it.
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    loop {
        let status = once(&args, true, healer.as_mut()).await?;
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = interrupt.recv() => return Ok(status),
        }
    }
}

/// What `--heal` remembers from one refresh to the next.
#[derive(Debug, Default)]
struct Healer {
    /// Datanodes whose commits waited for a synchronous standby at the last refresh.
    blocked: BTreeSet<String>,
    /// One line per heal done, latest last (shown under the table on a terminal, whose screen
    /// each refresh clears).
    log: Vec<String>,
}

/// How many heal lines a terminal keeps showing.
const HEAL_LOG_LINES: usize = 8;

/// One probe of every host and one report. `watching`: each report is a fresh screen on a
/// terminal, or a time-stamped block otherwise. The inventory and the roles file are read
/// again each time (a failover may have happened), and so is every host (a host that was
/// down may be back). `healer`: heal after the report (`--heal`).
async fn once(
    args: &StatusArgs,
    watching: bool,
    healer: Option<&mut Healer>,
) -> Result<Status, Error> {
    let inv = cluster::load(&args.inventory)?;
    let roles = roles::load(&args.inventory).map_err(Error::from)?;
    let fleet = fleet::fleet(&inv, &args.ssh);
    let layout = cluster::layout(&inv, &fleet, inv.hosts.iter().map(|h| h.name.as_str())).await?;
    let renderer = cluster::renderer(&inv)?;
    // What apply would write, for the roles the cluster has now.
    let now = roles.effective(&inv).map_err(Error::Usage)?;
    let (_, nodes) = desired(&now, &renderer, &layout.bin, None, None)
        .map_err(|e| Error::Usage(format!("templates: {e}")))?;
    let envs = cluster::host_envs(&inv, &layout);
    let files = |node: &str| -> Vec<String> {
        let desired = nodes.iter().find(|n| n.name == node);
        desired.map(|n| n.files.iter().map(|f| f.name.clone()).collect()).unwrap_or_default()
    };
    let facts = cluster::probe(&inv, &fleet, args.ssh.forks, &envs, &layout.bin, &files).await;
    let facts: BTreeMap<_, _> = facts
        .into_iter()
        .map(|(host, f)| (host, f.map_err(|e| format!("{}: {}", e.step, e.message))))
        .collect();

    cluster::remember_replication(&args.inventory, &now, &facts);
    let rows = health::assess(&inv, &nodes, &facts, &roles);
    let terminal = std::io::stdout().is_terminal();
    let mut out = std::io::stdout();
    if watching && !args.json {
        report::watch_header(terminal, &mut out)?;
    }
    if args.json {
        report::status_json(&rows, &mut out)?;
    } else {
        report::status_table(&inv.cluster.name, &rows, &mut out)?;
    }
    out.flush()?;
    let status = if rows.iter().all(|r| r.healthy()) { Status::Ok } else { Status::Failed };
    let Some(healer) = healer else {
        fleet.close().await;
        return Ok(status);
    };

    let (heals, blocked) = degrade::heal(&now, &nodes, &facts, &healer.blocked);
    healer.blocked = blocked;
    // Heal reports go where the table goes; with --json, to stderr (stdout stays JSON lines).
    let mut err = std::io::stderr();
    let to: &mut dyn Write = if args.json { &mut err } else { &mut out };
    let cx = Cx {
        path: &args.inventory,
        inv: &now,
        layout: &layout,
        fleet: &fleet,
        envs: &envs,
        forks: args.ssh.forks,
    };
    // Heals change the cluster: under the lock, or (another command holds it, and said so
    // above) not at this refresh.
    let lock = match heals.is_empty() {
        true => None,
        false => cluster::lock(&inv, &fleet, &envs, "status --heal", cluster::LockScope::Every)
            .await
            .ok(),
    };
    let heals = if lock.is_some() { heals } else { Vec::new() };
    let healed = heal(&cx, &nodes, &heals, to).await;
    if let Some(lock) = lock {
        lock.release().await;
    }
    fleet.close().await;
    let healed = healed?;
    if !healed.is_empty() {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        healer.log.extend(healed.into_iter().map(|line| format!("{now}: {line}")));
        let excess = healer.log.len().saturating_sub(HEAL_LOG_LINES);
        healer.log.drain(..excess);
    }
    if terminal && !args.json && !healer.log.is_empty() {
        writeln!(out, "\nhealed (unix time: what):")?;
        for line in &healer.log {
            writeln!(out, "  {line}")?;
        }
    }
    out.flush()?;
    Ok(status)
}

/// Do `heals`, one after the other, reporting each on `out`: what, why, every step, and how
/// it ended. Returns one summary line per heal attempted.
async fn heal(
    cx: &Cx<'_>,
    nodes: &[DesiredNode],
    heals: &[Heal],
    out: &mut dyn Write,
) -> Result<Vec<String>, Error> {
    let mut summary = Vec::new();
    for h in heals {
        let started = Instant::now();
        let line = match h {
            Heal::Degrade { datanode, standby } => {
                let (Some(want), Some(primary), Some(standby_node)) = (
                    nodes.iter().find(|n| &n.name == datanode),
                    cx.inv.node(datanode),
                    cx.inv.node(standby),
                ) else {
                    continue;
                };
                report::phase_header(
                    &format!(
                        "heal: degrade {datanode}: its commits wait for its synchronous standby \
                         {standby}, which did not stream at two refreshes in a row"
                    ),
                    out,
                )?;
                match super::degrade::degrade(cx, want, primary, standby_node, true, out).await? {
                    Degraded::Done => format!(
                        "degraded {}: synchronous replication off until {standby} streams \
                         again; commits went through {:.2} s after healing started",
                        label(primary),
                        started.elapsed().as_secs_f64()
                    ),
                    Degraded::NotBlocked(why) => format!("left {datanode} alone: {why}"),
                    Degraded::Failed(why) => format!(
                        "FAILED to degrade {datanode}: {why} (tried again at the next refresh \
                         while it stays blocked)"
                    ),
                }
            }
            Heal::Restore { datanode, standby, steps } => {
                let Some(primary) = cx.inv.node(datanode) else { continue };
                report::phase_header(
                    &format!(
                        "heal: synchronous replication back on for {datanode}: {standby} \
                         streams from it again"
                    ),
                    out,
                )?;
                restore(cx, steps, out).await?.map_or_else(
                    |why| format!("FAILED to switch synchronous replication back on: {why}"),
                    |()| {
                        format!(
                            "synchronous replication back on for {}: commits wait for \
                             {standby} again",
                            label(primary)
                        )
                    },
                )
            }
        };
        writeln!(out, "heal: {line}")?;
        out.flush()?;
        summary.push(line);
    }
    Ok(summary)
}

/// Run a restore's steps in order, stopping at the first that fails: `Err` says which.
async fn restore(
    cx: &Cx<'_>,
    steps: &[crate::plan::step::Step],
    out: &mut dyn Write,
) -> Result<Result<(), String>, Error> {
    let step_cx = StepContext::plain(cx.fleet, cx.envs.clone());
    for step in steps {
        let outcome = run_one(step, &step_cx).await;
        report::progress(step, &outcome, out)?;
        if outcome.result.is_err() {
            return Ok(Err(format!("{step} failed")));
        }
    }
    Ok(Ok(()))
}
