//! `pgxc-deploy degrade INVENTORY NODE`: a datanode's synchronous standby is dead and every
//! commit on the primary waits for it. Write the primary's synchronous_standby.conf with
//! `synchronous_standby_names` emptied (the text apply holds while a standby does not stream,
//! so a later apply switches it back on by itself once the standby streams again), reload,
//! and wait until a commit goes through. Safe to repeat: the file is written only when it
//! differs. Decisions in [`crate::plan::degrade`]; the work in [`degrade`], which
//! `status --watch --heal` calls too.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::cli::PairArgs;
use crate::executor::report;
use crate::executor::steps::{HostEnv, StepContext};
use crate::inventory::replication::{self, Lsn};
use crate::inventory::{Inventory, Node};
use crate::plan::degrade;
use crate::plan::desired::DesiredNode;
use crate::plan::desired::desired;
use crate::plan::diff::SYNC_FILE;
use crate::source::Layout;
use crate::transport::Fleet;

use super::failover::{label, node_facts, run_one};
use super::{Error, Status, cluster, fleet};

pub async fn run(args: PairArgs) -> Result<Status, Error> {
    let started = Instant::now();
    // The cluster as it runs now: after a failover or switchover, the promoted node's standby.
    let (inv, _) = cluster::load_now(&args.inventory)?;
    let pair =
        degrade::pair(&inv, &args.node).map_err(|e| Error::Usage(format!("degrade: {e}")))?;
    let (primary, standby) = (pair.datanode, pair.standby);
    let fleet = fleet::fleet(&inv, &args.ssh);
    let layout = cluster::layout(&inv, &fleet, inv.hosts.iter().map(|h| h.name.as_str())).await?;
    let renderer = cluster::renderer(&inv)?;
    let (_, nodes) = desired(&inv, &renderer, &layout.bin, None, None)
        .map_err(|e| Error::Usage(format!("templates: {e}")))?;
    let want = nodes.iter().find(|n| n.name == primary.name.as_str()).expect("desired node");
    let envs = cluster::host_envs(&inv, &layout);
    let mut out = std::io::stdout();
    let _lock = match cluster::lock(&inv, &fleet, &envs, "degrade", cluster::LockScope::Every).await
    {
        Ok(lock) => lock,
        Err(status) => return status,
    };
    let cx = Cx {
        path: &args.inventory,
        inv: &inv,
        layout: &layout,
        fleet: &fleet,
        envs: &envs,
        forks: args.ssh.forks,
    };
    let done = degrade(&cx, want, primary, standby, false, &mut out).await;
    fleet.close().await;
    match done? {
        Degraded::Done => {
            writeln!(
                out,
                "degrade {}: synchronous replication off on {} until {} streams again (then \
                 `pgxc-deploy apply` switches it back on); commits went through {:.2} s after \
                 degrade started",
                primary.name,
                label(primary),
                standby.name,
                started.elapsed().as_secs_f64()
            )?;
            Ok(Status::Ok)
        }
        Degraded::NotBlocked(why) | Degraded::Failed(why) => {
            report::refused("degrade", primary.name.as_str(), &why, &mut out)?;
            Ok(Status::Failed)
        }
    }
}

/// What [`degrade`] works with: the cluster, its install layout, and the open connections.
pub(super) struct Cx<'a> {
    /// The inventory file: the replication record is kept beside it.
    pub path: &'a Path,
    pub inv: &'a Inventory,
    pub layout: &'a Layout,
    pub fleet: &'a Fleet,
    pub envs: &'a BTreeMap<String, HostEnv>,
    pub forks: usize,
}

/// How [`degrade`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Degraded {
    /// Synchronous replication is off on the primary and a commit went through.
    Done,
    /// Asked to act only on a blocked primary, and the new probe shows none: why not.
    NotBlocked(String),
    /// Why it could not be degraded (a step failed, the primary is down or unreachable).
    Failed(String),
}

/// Degrade `primary` (a datanode of the inventory, `want` its desired state) for its
/// synchronous standby `standby`: probe both again, then write the held
/// synchronous_standby.conf, reload and wait until commits go through, each step reported on
/// `out`. `only_if_blocked`: do nothing unless the probe shows the primary's commits waiting
/// for the standby (`status --watch --heal`, whose refresh may be a moment old).
pub(super) async fn degrade(
    cx: &Cx<'_>,
    want: &DesiredNode,
    primary: &Node,
    standby: &Node,
    only_if_blocked: bool,
    out: &mut dyn Write,
) -> Result<Degraded, Error> {
    let facts = cluster::probe_nodes_reading(
        cx.inv,
        &[primary, standby],
        cx.fleet,
        cx.forks,
        cx.envs,
        cx.layout,
        &[SYNC_FILE],
    )
    .await;
    let primary_facts = match node_facts(&facts, primary) {
        Ok(f) => f,
        Err(why) => {
            return Ok(Degraded::Failed(format!(
                "its host {} is unreachable: {why}",
                primary.host
            )));
        }
    };
    if only_if_blocked && primary_facts.and_then(|f| degrade::blocking_standby(want, f)).is_none() {
        return Ok(Degraded::NotBlocked(format!(
            "read again, {} no longer waits for {} (it streams again, or synchronous \
             replication is off already)",
            label(primary),
            standby.name
        )));
    }
    let streams = primary_facts.is_some_and(|f| f.streams_to(standby.name.as_str()));
    let check = degrade::check(cx.inv.cluster.flavor, want);
    let steps = match degrade::steps(want, standby.name.as_str(), primary_facts, check) {
        Ok(steps) => steps,
        Err(why) => return Ok(Degraded::Failed(format!("{}: {why}", label(primary)))),
    };
    if streams {
        writeln!(
            out,
            "note: {} streams from {}: its commits did not wait for a dead standby; \
             degrading anyway (the next apply switches synchronous replication back on)",
            label(standby),
            primary.name
        )?;
    }
    if steps.len() == 2 {
        report::lifecycle_node(
            &label(primary),
            "ok",
            &format!("{SYNC_FILE} already off until {} streams: reloading again", standby.name),
            out,
        )?;
    }
    report::phase_header(&format!("degrade {}", primary.name), out)?;
    // Before the file changes (a write whose outcome is unknown may have happened): from here
    // on commits may not wait for the standby.
    remember_degraded(cx.path, primary, standby, primary_facts.and_then(|f| f.wal));
    let step_cx = StepContext::plain(cx.fleet, cx.envs.clone());
    for step in &steps {
        let outcome = run_one(step, &step_cx).await;
        report::progress(step, &outcome, out)?;
        if outcome.result.is_err() {
            return Ok(Degraded::Failed(format!(
                "the step above failed on {}; fix its cause and run degrade again",
                primary.host
            )));
        }
    }
    Ok(Degraded::Done)
}

/// Record that `primary`'s commits no longer wait for `standby`, from `from` (its position
/// before the change), so that a failover to `standby` knows it may lack some.
fn remember_degraded(path: &Path, primary: &Node, standby: &Node, from: Option<Lsn>) {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let saved = replication::load(path).and_then(|mut record| {
        let datanode = primary.datanode_name().as_str();
        record.degraded(datanode, primary.name.as_str(), standby.name.as_str(), now, from);
        replication::save(path, &record)
    });
    if let Err(e) = saved {
        let _ = writeln!(
            std::io::stderr(),
            "warning: {}: a failover to {} will not know that it may lack commits",
            super::chain(&e),
            standby.name
        );
    }
}
