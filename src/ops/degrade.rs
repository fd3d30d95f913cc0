//! Degrade (`pgxc-deploy degrade INVENTORY NODE`): a datanode's synchronous standby is dead
//! and every commit on the primary waits for it. Write the primary's synchronous_standby.conf with
//! `synchronous_standby_names` emptied (the text apply holds while a standby does not stream,
//! so a later apply switches it back on by itself once the standby streams again), reload,
//! and wait until a commit goes through. Safe to repeat: the file is written only when it
//! differs. Decisions in [`crate::plan::degrade`]; the work in [`degrade()`], which
//! `status --watch --heal` calls too.

use std::io::Write;
use std::path::Path;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::executor::report;
use crate::inventory::Node;
use crate::inventory::replication::{self, Lsn};
use crate::plan::degrade;
use crate::plan::desired::DesiredNode;
use crate::plan::desired::desired;
use crate::plan::diff::SYNC_FILE;

use super::cluster::LockScope;
use super::failover::node_facts;
use super::session::{Session, label};
use super::{Error, Status};

/// Refuse up front, before connecting, a node that names no pair with a standby.
pub fn pair_of(inv: &crate::inventory::Inventory, node: &str) -> Result<(), Error> {
    degrade::pair(inv, node).map(|_| ()).map_err(|e| Error::Usage(format!("degrade: {e}")))
}

/// Degrade `node`'s pair (the datanode or its standby names it; `s.inv` is the cluster as it
/// runs now) under the cluster lock, and say how it ended. `started`: when the command
/// started, for the last line.
pub async fn degrade_pair(
    s: &Session,
    node: &str,
    started: Instant,
    out: &mut dyn Write,
) -> Result<Status, Error> {
    let inv = &s.inv;
    let pair = degrade::pair(inv, node).map_err(|e| Error::Usage(format!("degrade: {e}")))?;
    let (primary, standby) = (pair.datanode, pair.standby);
    let (_, nodes) = desired(inv, &s.renderer, &s.layout.bin, None, None)
        .map_err(|e| Error::Usage(format!("templates: {e}")))?;
    let want = nodes.iter().find(|n| n.name == primary.name.as_str()).expect("desired node");
    let _lock = match s.lock("degrade", LockScope::Every).await {
        Ok(lock) => lock,
        Err(status) => return status,
    };
    match degrade(s, want, primary, standby, false, out).await? {
        Degraded::Done => {
            report::degraded(primary, &standby.name, started.elapsed(), out)?;
            Ok(Status::Ok)
        }
        Degraded::NotBlocked(why) | Degraded::Failed(why) => {
            report::refused("degrade", primary.name.as_str(), &why, out)?;
            Ok(Status::Failed)
        }
    }
}

/// How [`degrade()`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Degraded {
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
pub async fn degrade(
    s: &Session,
    want: &DesiredNode,
    primary: &Node,
    standby: &Node,
    only_if_blocked: bool,
    out: &mut dyn Write,
) -> Result<Degraded, Error> {
    let facts = s.probe_reading(&[primary, standby], &[SYNC_FILE]).await;
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
    let check = degrade::check(s.inv.cluster.flavor, want);
    let steps = match degrade::steps(want, standby.name.as_str(), primary_facts, check) {
        Ok(steps) => steps,
        Err(why) => return Ok(Degraded::Failed(format!("{}: {why}", label(primary)))),
    };
    if streams {
        report::degrading_streaming(standby, &primary.name, out)?;
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
    remember_degraded(&s.path, primary, standby, primary_facts.and_then(|f| f.wal));
    for step in &steps {
        let outcome = s.run_one(step).await;
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
        let _ = report::degrade_unrecorded(&e, &standby.name, &mut report::stderr());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::scripted::{Scripted, healthy, node_mut, streaming};
    use crate::plan::fixtures;

    #[tokio::test]
    async fn degrade_writes_the_held_file_reloads_and_checks_a_commit_and_records_it() {
        let inv = fixtures::postgresql();
        let (pg1, standby) = (inv.node("pg1").unwrap(), inv.node("pg1_standby").unwrap());
        let mut world = healthy(&inv);
        node_mut(&mut world, pg1).unwrap().in_recovery = Some(false);
        node_mut(&mut world, standby).unwrap().running = false;
        let dir = tempfile::tempdir().unwrap();
        let hosts = Scripted::new(world);
        let path = dir.path().join("shop.toml");
        let s = hosts.session(&path, inv.clone());
        let mut out = Vec::new();
        let status = degrade_pair(&s, "pg1", Instant::now(), &mut out).await.unwrap();
        let out = String::from_utf8(out).unwrap();
        assert_eq!(status, Status::Ok, "{out}");
        assert_eq!(
            hosts.log(),
            [
                "lock degrade",
                "pg1: create synchronous_standby.conf",
                "pg1: reload (synchronous_standby_names)",
                "pg1: await: commits no longer wait for pg1_standby",
            ]
        );
        let record = replication::load(&path).unwrap();
        assert!(record.datanodes["pg1"].asynchronous_since_unix.is_some(), "{record:?}");
    }

    #[tokio::test]
    async fn a_heal_finds_the_standby_streaming_again_and_leaves_the_primary_alone() {
        let inv = fixtures::postgresql();
        let (pg1, standby) = (inv.node("pg1").unwrap(), inv.node("pg1_standby").unwrap());
        let mut world = healthy(&inv);
        streaming(&mut world, pg1, standby);
        let dir = tempfile::tempdir().unwrap();
        let hosts = Scripted::new(world);
        let s = hosts.session(&dir.path().join("shop.toml"), inv.clone());
        let (_, nodes) = desired(&inv, &s.renderer, &s.layout.bin, None, None).unwrap();
        let want = nodes.iter().find(|n| n.name == "pg1").unwrap();
        let mut out = Vec::new();
        let done = degrade(&s, want, pg1, standby, true, &mut out).await.unwrap();
        assert!(matches!(done, Degraded::NotBlocked(_)), "{done:?}");
        assert!(hosts.log().is_empty(), "{:?}", hosts.log());
    }
}
