//! Clean (`pgxc-deploy clean INVENTORY [--yes]`): delete the cluster's data. Without `--yes` it lists,
//! per host, the directories it would delete and changes nothing. With `--yes` it stops every
//! node immediately, then removes exactly the inventory's node data directories that apply
//! initialised, and their staging directories ([`crate::plan::clean`] decides which); never an
//! install prefix. Any directory it would refuse stops it before anything is stopped or deleted.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Instant;

use crate::executor::report;
use crate::flavors::StopMode;
use crate::inventory::{self, Node};
use crate::plan::clean::{Removal, clean_plan};
use crate::plan::desired::passfile_path;
use crate::plan::lifecycle::Direction;
use crate::plan::step::{Action, Step};

use super::cluster::LockScope;
use super::session::Session;
use super::{Error, Status, lifecycle};

/// List what cleaning `s`'s cluster would delete, or (`yes`) stop every node and delete it;
/// say how it ended. `started`: when the command started, for the last line.
pub async fn clean(
    s: &Session,
    yes: bool,
    started: Instant,
    out: &mut dyn Write,
) -> Result<Status, Error> {
    let inv = &s.inv;
    let nodes: Vec<&Node> = inv.nodes.iter().collect();
    let facts = s.probe(&nodes).await;
    let plan = clean_plan(inv, &facts);

    if !yes || !plan.refused.is_empty() || plan.removals.is_empty() {
        report::clean_listing(&plan, yes, out)?;
        let complete = plan.refused.is_empty() && plan.unreachable.is_empty();
        return Ok(if complete { Status::Ok } else { Status::Failed });
    }

    let _lock = match s.lock("clean", LockScope::Every).await {
        Ok(lock) => lock,
        Err(status) => return status,
    };
    let stop = Direction::Stop(StopMode::Immediate);
    let none = BTreeMap::new();
    let ran = lifecycle::change(s, &nodes, &facts, stop, &none, out).await?;
    // Only a node seen stopped loses its data directory; one that may still run keeps it.
    let (removals, kept): (Vec<&Removal>, Vec<&Removal>) =
        plan.removals.iter().partition(|r| ran.stopped(&r.node));
    report::phase_header("remove data directories", out)?;
    let steps: Vec<_> = removals.iter().map(|r| r.step()).collect();
    let outcomes = s.outcomes(&steps).await;
    for (step, outcome) in steps.iter().zip(&outcomes) {
        report::progress(step, outcome, out)?;
    }
    // The password files go with the last node of their host (a kept node still needs its own).
    let unreachable = |h: &str| plan.unreachable.iter().any(|(u, _)| u == h);
    let left = |h: &str| {
        kept.iter().any(|r| r.host == h)
            || outcomes.iter().any(|o| o.result.is_err() && o.target.host == h)
    };
    let secrets: Vec<Step> = inv
        .hosts
        .iter()
        .filter(|h| !unreachable(&h.name) && !left(&h.name))
        .filter_map(|h| {
            let path = passfile_path(inv, h)?;
            Some(Step { host: h.name.clone(), node: None, action: Action::RemoveFile { path } })
        })
        .collect();
    let mut secrets_failed = Vec::new();
    if !secrets.is_empty() {
        report::phase_header("remove password files", out)?;
        secrets_failed = s.failed(&secrets, out).await?;
    }
    let removed = outcomes.iter().filter(|o| o.result.is_ok()).count();
    let failed: Vec<String> = outcomes
        .iter()
        .filter(|o| o.result.is_err())
        .map(|o| o.target.to_string())
        .chain(kept.iter().map(|r| format!("{} on {} (its server did not stop)", r.node, r.host)))
        .chain(secrets_failed.iter().map(|s| format!("{} (password file)", s.host)))
        .collect();
    report::clean_summary(removed, &failed, &plan.unreachable, started.elapsed(), out)?;
    let clean = failed.is_empty() && ran.failed.is_empty() && plan.unreachable.is_empty();
    if clean {
        // The roles and replication record of a cluster that is gone must not steer the next
        // apply or failover.
        let files =
            [inventory::roles::path_for(&s.path), inventory::replication::path_for(&s.path)];
        for file in files {
            match std::fs::remove_file(&file) {
                Ok(()) => report::removed_file(&file, out)?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    report::not_removed_file(&file, &e, out)?;
                    return Ok(Status::Failed);
                }
            }
        }
    }
    Ok(if clean { Status::Ok } else { Status::Failed })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::scripted::{Scripted, healthy, node_mut};
    use crate::plan::fixtures;

    #[tokio::test]
    async fn clean_stops_every_node_and_removes_only_the_directories_of_nodes_seen_stopped() {
        let inv = fixtures::postgresql();
        let hosts = Scripted::new(healthy(&inv));
        // pg2's stop fails: its server may still run, so its directory stays.
        hosts.fail_while("pg2: stop", |_| true);
        for n in &inv.nodes {
            let node = n.clone();
            hosts.on(&format!("{}: stop", n.name), move |w| {
                let f = node_mut(w, &node).unwrap();
                (f.running, f.alive) = (false, false);
            });
        }
        let dir = tempfile::tempdir().unwrap();
        let s = hosts.session(&dir.path().join("shop.toml"), inv.clone());
        let mut out = Vec::new();
        let status = clean(&s, true, Instant::now(), &mut out).await.unwrap();
        let out = String::from_utf8(out).unwrap();
        assert_eq!(status, Status::Failed, "{out}");
        assert_eq!(
            hosts.log(),
            [
                "lock clean",
                "pg1_standby: stop (immediate)",
                "pg1: stop (immediate)",
                "pg2: stop (immediate)",
                "pg1: remove /srv/pg/pg1",
                "pg1_standby: remove /srv/pg/pg1_standby",
                "pg-a: remove /srv/pg/.pgxc-deploy.pgpass",
            ]
        );
        assert!(out.contains("pg2 on pg-b (its server did not stop)"), "{out}");
    }

    #[tokio::test]
    async fn without_yes_clean_lists_and_changes_nothing() {
        let inv = fixtures::postgresql();
        let hosts = Scripted::new(healthy(&inv));
        let dir = tempfile::tempdir().unwrap();
        let s = hosts.session(&dir.path().join("shop.toml"), inv.clone());
        let mut out = Vec::new();
        let status = clean(&s, false, Instant::now(), &mut out).await.unwrap();
        let out = String::from_utf8(out).unwrap();
        assert_eq!(status, Status::Ok, "{out}");
        assert!(hosts.log().is_empty(), "{:?}", hosts.log());
        assert!(out.contains("/srv/pg/pg1"), "{out}");
    }
}
