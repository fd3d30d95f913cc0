//! Status (`pgxc-deploy status INVENTORY [--json] [--watch SECONDS [--heal]]`): one row per node, from
//! one probe per host (in parallel), once or refreshed until Ctrl-C. A host that cannot be
//! reached shows its nodes as down and hides nothing else. Exit status 1 when any node is
//! unhealthy ([`crate::plan::health`] decides which).
//!
//! `--heal` (with `--watch`): after each refresh, degrade the primaries whose commits waited
//! for a synchronous standby that did not stream at two refreshes in a row (the same work as
//! `degrade`, [`super::degrade::degrade`]), and switch synchronous replication back on for the
//! degraded ones whose standby streams again. What to heal is decided in
//! [`crate::plan::degrade::heal`].

use std::collections::BTreeSet;
use std::io::{IsTerminal, Write};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::executor::report;
use crate::inventory::{Inventory, roles};
use crate::plan::degrade::{self, Heal};
use crate::plan::desired::DesiredNode;
use crate::plan::desired::desired;
use crate::plan::health;

use super::cluster::{self, LockScope};
use super::degrade::{Degraded, degrade};
use super::session::{Session, label};
use super::{Error, Status};

/// How to show status.
#[derive(Debug, Clone, Copy)]
pub struct Opts {
    /// JSON lines instead of a table.
    pub json: bool,
    /// One of a series of refreshes (`--watch`): each report is a fresh screen on a terminal,
    /// or a time-stamped block otherwise.
    pub watching: bool,
}

/// What `--heal` remembers from one refresh to the next.
#[derive(Debug, Default)]
pub struct Healer {
    /// Datanodes whose commits waited for a synchronous standby at the last refresh.
    blocked: BTreeSet<crate::inventory::NodeName>,
    /// One line per heal done, latest last (shown under the table on a terminal, whose screen
    /// each refresh clears).
    log: Vec<String>,
}

/// How many heal lines a terminal keeps showing.
const HEAL_LOG_LINES: usize = 8;

/// One probe of every host of `s` (the inventory as written, read again for each refresh: a
/// failover may have happened) and one report on `out`. `healer`: heal after the report
/// (`--heal`).
pub async fn refresh(
    s: &Session,
    opts: Opts,
    healer: Option<&mut Healer>,
    out: &mut dyn Write,
) -> Result<Status, Error> {
    let inv = &s.inv;
    let roles = roles::load(&s.path).map_err(Error::from)?;
    // What apply would write, for the roles the cluster has now.
    let now = roles.effective(inv).map_err(Error::Usage)?;
    let (_, nodes) = desired(&now, &s.renderer, &s.layout.bin, None, None)
        .map_err(|e| Error::Usage(format!("templates: {e}")))?;
    let files = |node: &str| -> Vec<String> {
        let desired = nodes.iter().find(|n| n.name == node);
        desired.map(|n| n.files.iter().map(|f| f.name.clone()).collect()).unwrap_or_default()
    };
    // Not a removed coordinator: its machine may be gone for good.
    let every: Vec<&crate::inventory::Node> = now.nodes.iter().collect();
    let facts = s.probe_reading_each(&every, &files).await;

    cluster::remember_replication(&s.path, &now, &facts);
    let rows = health::assess(inv, &nodes, &facts, &roles);
    let terminal = std::io::stdout().is_terminal();
    if opts.watching && !opts.json {
        report::watch_header(terminal, out)?;
    }
    if opts.json {
        report::status_json(&rows, out)?;
    } else {
        report::status_table(&inv.cluster.name, &rows, out)?;
    }
    report::removed(&roles.removed, opts.json, out)?;
    out.flush()?;
    let status = if rows.iter().all(|r| r.healthy()) { Status::Ok } else { Status::Failed };
    let Some(healer) = healer else {
        return Ok(status);
    };

    let (heals, blocked) = degrade::heal(&now, &nodes, &facts, &healer.blocked);
    healer.blocked = blocked;
    // Heal reports go where the table goes; with --json, to stderr (stdout stays JSON lines).
    let mut err = std::io::stderr();
    let to: &mut dyn Write = if opts.json { &mut err } else { &mut *out };
    // Heals change the cluster: under the lock, or (another command holds it, and said so
    // above) not at this refresh.
    let lock = match heals.is_empty() {
        true => None,
        false => s.lock("status --heal", LockScope::Every).await.ok(),
    };
    let heals = if lock.is_some() { heals } else { Vec::new() };
    let healed = heal(s, &now, &nodes, &heals, to).await;
    if let Some(Some(lock)) = lock {
        lock.release().await;
    }
    let healed = healed?;
    if !healed.is_empty() {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        healer.log.extend(healed.into_iter().map(|line| format!("{now}: {line}")));
        let excess = healer.log.len().saturating_sub(HEAL_LOG_LINES);
        healer.log.drain(..excess);
    }
    if terminal && !opts.json && !healer.log.is_empty() {
        report::heal_log(&healer.log, out)?;
    }
    out.flush()?;
    Ok(status)
}

/// Do `heals`, one after the other, reporting each on `out`: what, why, every step, and how
/// it ended. Returns one summary line per heal attempted.
async fn heal(
    s: &Session,
    now: &Inventory,
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
                    now.node(datanode),
                    now.node(standby),
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
                match degrade(s, want, primary, standby_node, true, out).await? {
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
                let Some(primary) = now.node(datanode) else { continue };
                report::phase_header(
                    &format!(
                        "heal: synchronous replication back on for {datanode}: {standby} \
                         streams from it again"
                    ),
                    out,
                )?;
                restore(s, steps, out).await?.map_or_else(
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
        report::healed(&line, out)?;
        out.flush()?;
        summary.push(line);
    }
    Ok(summary)
}

/// Run a restore's steps in order, stopping at the first that fails: `Err` says which.
async fn restore(
    s: &Session,
    steps: &[crate::plan::step::Step],
    out: &mut dyn Write,
) -> Result<Result<(), String>, Error> {
    for step in steps {
        let outcome = s.run_one(step).await;
        report::progress(step, &outcome, out)?;
        if outcome.result.is_err() {
            return Ok(Err(format!("{step} failed")));
        }
    }
    Ok(Ok(()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::scripted::{Scripted, World, healthy, node_mut};
    use crate::plan::diff::SYNC_FILE;
    use crate::plan::fixtures;

    /// pg1's synchronous standby is dead and pg1's commits wait for it.
    fn blocked(inv: &Inventory) -> World {
        let mut world = healthy(inv);
        let pg1 = node_mut(&mut world, inv.node("pg1").unwrap()).unwrap();
        pg1.in_recovery = Some(false);
        let waits = b"synchronous_standby_names = 'pg1_standby'\n".to_vec();
        pg1.files.insert(SYNC_FILE.into(), waits);
        let standby = node_mut(&mut world, inv.node("pg1_standby").unwrap()).unwrap();
        (standby.running, standby.alive) = (false, false);
        world
    }

    #[tokio::test]
    async fn heal_degrades_a_primary_only_when_it_is_blocked_at_two_refreshes_in_a_row() {
        let inv = fixtures::postgresql();
        let hosts = Scripted::new(blocked(&inv));
        let dir = tempfile::tempdir().unwrap();
        let s = hosts.session(&dir.path().join("shop.toml"), inv.clone());
        let opts = Opts { json: false, watching: true };
        let mut healer = Healer::default();
        let mut out = Vec::new();
        let first = refresh(&s, opts, Some(&mut healer), &mut out).await.unwrap();
        assert_eq!(first, Status::Failed, "{}", String::from_utf8_lossy(&out));
        assert!(hosts.log().is_empty(), "one refresh is not enough: {:?}", hosts.log());

        let mut out = Vec::new();
        refresh(&s, opts, Some(&mut healer), &mut out).await.unwrap();
        let out = String::from_utf8(out).unwrap();
        assert_eq!(
            hosts.log(),
            [
                "lock status --heal",
                "pg1: update synchronous_standby.conf",
                "pg1: reload (synchronous_standby_names)",
                "pg1: await: commits no longer wait for pg1_standby",
            ]
        );
        assert!(out.contains("heal: degraded pg1 on pg-a"), "{out}");
    }

    #[tokio::test]
    async fn status_without_heal_runs_nothing_and_fails_on_a_node_that_is_down() {
        let inv = fixtures::postgresql();
        let hosts = Scripted::new(blocked(&inv));
        let dir = tempfile::tempdir().unwrap();
        let s = hosts.session(&dir.path().join("shop.toml"), inv.clone());
        let mut out = Vec::new();
        let opts = Opts { json: true, watching: false };
        let status = refresh(&s, opts, None, &mut out).await.unwrap();
        assert_eq!(status, Status::Failed);
        assert!(hosts.log().is_empty(), "{:?}", hosts.log());
        let rows: Vec<serde_json::Value> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let standby = rows.iter().find(|r| r["node"] == "pg1_standby").unwrap();
        assert_eq!(standby["running"], false, "{standby}");
    }
}
