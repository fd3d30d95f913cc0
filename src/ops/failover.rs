//! Failover (`pgxc-deploy failover INVENTORY NODE`): a datanode's primary is lost (its machine may be
//! unreachable); its standby takes over. In order, each step only after the previous one
//! succeeded: refuse a standby that is not a complete, streamed copy; fence the old primary
//! if its host answers (immediate stop); promote the standby; record the new roles beside the
//! inventory ([`crate::inventory::roles`]); point every coordinator's pgxc_node at the
//! standby and reload its pool (Postgres-XC); check that the datanode takes writes (through
//! every coordinator for Postgres-XC). A fence or promote step that fails, or whose outcome is
//! unknown (timed out after it was sent), is followed by a new probe of that node, never by a
//! retry. Run again after a partial failure, failover redoes only the coordinator part.

use std::io::Write;
use std::path::Path;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::executor::report;
use crate::inventory::replication;
use crate::inventory::roles::{self, Promotion, Roles};
use crate::inventory::{Inventory, Node, Role};
use crate::plan::desired::{bin_dir, desired, psql};
use crate::plan::diff::{self, SYNC_FILE};
use crate::plan::failover::{self, Fence, Loss, LossFacts, Takeover};
use crate::plan::pair;
use crate::plan::sql;
use crate::plan::state::NodeFacts;
use crate::plan::step::{Action, Step};

use super::cluster::{HostResults, LockScope};
use super::session::{Session, label};
use super::{Error, Status};

/// What to fail over, and how.
#[derive(Debug, Clone)]
pub struct Opts {
    /// The datanode, or its standby (either names the pair).
    pub node: String,
    /// Promote a standby that may lack commits the primary acknowledged.
    pub accept_data_loss: bool,
}

/// Refuse up front, before connecting, a failover that the inventory and the roles file beside
/// it (`path`) already rule out.
pub fn precheck(path: &Path, inv: &Inventory, node: &str) -> Result<(), Error> {
    let roles = roles::load(path).map_err(Error::from)?;
    let pair = pair::pair(inv, node).map_err(|e| Error::Usage(format!("failover: {e}")))?;
    failover::takeover(inv, &roles, pair).map_err(|e| Error::Usage(format!("failover: {e}")))?;
    Ok(())
}

/// Fail `opts.node`'s datanode over to its standby, under the cluster lock (the hosts that
/// answer); see the module doc. `started`: when the command started, for the last line.
pub async fn failover(
    s: &Session,
    opts: &Opts,
    started: Instant,
    out: &mut dyn Write,
) -> Result<Status, Error> {
    let inv = &s.inv;
    let pair = pair::pair(inv, &opts.node).map_err(|e| Error::Usage(format!("failover: {e}")))?;
    let _lock = match s.lock("failover", LockScope::Reachable).await {
        Ok(lock) => lock,
        Err(status) => return status,
    };
    // Read again under the lock: another command may have changed the roles meanwhile.
    let mut roles = roles::load(&s.path).map_err(Error::from)?;
    let takeover = failover::takeover(inv, &roles, pair)
        .map_err(|e| Error::Usage(format!("failover: {e}")))?;
    let datanode = pair.datanode;
    let fail = |out: &mut dyn Write, message: String| -> Result<Status, Error> {
        report::refused("failover", datanode.name.as_str(), &message, out)?;
        Ok(Status::Failed)
    };

    // `old`: the node serving the datanode until now; `new`: the one that serves it after.
    let new = match takeover {
        Takeover::Done { primary, fenced, .. } => {
            let facts = s.probe(&[primary]).await;
            if let Some(why) =
                failover::again_refusal(datanode, primary, fenced, node_facts(&facts, primary))
            {
                return fail(out, why.to_string());
            }
            let recorded = roles::path_for(&s.path);
            report::failed_over_before(&datanode.name, &primary.name, &recorded, out)?;
            primary
        }
        Takeover::Promote { current, .. } => {
            let (old, new) = (current.datanode, current.standby);
            if old.name != datanode.name {
                report::failing_over_from(&old.name, &datanode.name, &new.name, out)?;
            }
            let probe = [old, new];
            let facts = s.probe_reading(&probe, &[SYNC_FILE]).await;
            if let Some(why) = failover::refusal(
                new,
                node_facts(&facts, new),
                node_facts(&facts, old).ok().flatten(),
            ) {
                let status = fail(
                    out,
                    format!(
                        "refusing to promote {} on {}: {why}; nothing was changed",
                        new.name, new.host
                    ),
                );
                return status;
            }

            // Whatever the primary acknowledged and the standby may not have: refused, or said.
            let synchronous = pair.standby.synchronous;
            let loss = data_loss(&s.path, inv, old, new, synchronous, &facts);
            match loss {
                Ok(Loss::None) => {}
                Ok(Loss::May { refuse: true, why }) if !opts.accept_data_loss => {
                    let status = fail(
                        out,
                        format!(
                            "refusing to promote {} on {}: {why}. Nothing was changed. To \
                             promote it anyway and lose those commits, run failover again with \
                             --accept-data-loss",
                            new.name, new.host
                        ),
                    );
                    return status;
                }
                Ok(Loss::May { refuse, why }) => {
                    let accepted = if refuse { " (accepted with --accept-data-loss)" } else { "" };
                    report::warning(&format!("{why}{accepted}"), out)?;
                }
                Err(e) => {
                    return Err(e);
                }
            }

            report::phase_header(&format!("fence {}", old.name), out)?;
            match failover::fence(old, &s.commands(old)?, node_facts(&facts, old)) {
                Fence::Stop(step) => {
                    let outcome = s.run_one(&step).await;
                    report::progress(&step, &outcome, out)?;
                    if outcome.result.is_err() {
                        // Unknown outcome: read the node again rather than retry.
                        let facts = s.probe(&[old]).await;
                        let down = matches!(node_facts(&facts, old),
                            Ok(Some(f)) if !f.running && !f.alive);
                        if !down {
                            let status = fail(
                                out,
                                format!(
                                    "could not stop {} on {}, and it cannot be read as down: \
                                     nothing was promoted; stop it by hand (or make sure its \
                                     machine is off), then run failover again",
                                    old.name, old.host
                                ),
                            );
                            return status;
                        }
                        report::lifecycle_node(&label(old), "ok", "down now (read again)", out)?;
                    }
                }
                Fence::Down => report::lifecycle_node(&label(old), "ok", "already down", out)?,
                Fence::Unreachable(why) => report::lifecycle_node(
                    &label(old),
                    "WARN",
                    &format!(
                        "not fenced, its host is unreachable ({why}): make sure it never comes \
                         back as a primary (pgxc-deploy start refuses to start it)"
                    ),
                    out,
                )?,
            }

            // A postmaster that died (or was stopped) can leave backends serving pooled
            // connections, which go on committing: none may be left before the promote.
            if node_facts(&facts, old).is_ok() {
                let step = failover::kill_leftovers(old);
                let outcome = s.run_one(&step).await;
                report::progress(&step, &outcome, out)?;
                if let Ok(o) = &outcome.result {
                    for line in String::from_utf8_lossy(&o.stdout).lines() {
                        let what = format!("{line} (left by its postmaster)");
                        report::lifecycle_node(&label(old), "ok", &what, out)?;
                    }
                }
                if outcome.result.is_err() {
                    let status = fail(
                        out,
                        format!(
                            "processes of {} still run in {} on {}: nothing was promoted; stop                              them by hand (or make sure its machine is off), then run failover                              again",
                            old.name, old.data_dir, old.host
                        ),
                    );
                    return status;
                }
            }

            report::phase_header(&format!("promote {}", new.name), out)?;
            if !promote(s, new, None, out).await? {
                let status = fail(
                    out,
                    format!(
                        "{} on {} is still a standby (read again after the promote step \
                         failed); {} stays fenced. See {}/server.log, then run failover again",
                        new.name, new.host, old.name, new.data_dir
                    ),
                );
                return status;
            }
            let fenced = node_facts(&facts, old).is_ok();
            // After a switchover this records the inventory's datanode as serving itself
            // (`primary` = its own name) and the standby the switchover had promoted as fenced.
            record(&s.path, &mut roles, datanode.name.as_str(), new, old, fenced, out)?;
            new
        }
    };

    // Coordinators get every datanode where it is served now, other swapped pairs included.
    let serving = roles.effective(inv).map_err(Error::Usage)?;
    let ok = finish(s, &serving, datanode, new, out).await?;
    let address = inv.host(&new.host).map(|h| h.address.as_str()).unwrap_or_default();
    if ok {
        report::failed_over(&datanode.name, new, address, started.elapsed(), out)?;
        Ok(Status::Ok)
    } else {
        fail(
            out,
            format!(
                "{} is promoted and recorded, but the steps above failed: fix their cause and run \
                 failover again (it redoes only these steps)",
                new.name
            ),
        )
    }
}

/// What promoting `new` in place of `old` may lose ([`failover::data_loss`]), from `facts`
/// (their probe, with `old`'s synchronous_standby.conf) and the replication record beside the
/// inventory `path`.
fn data_loss(
    path: &Path,
    inv: &Inventory,
    old: &Node,
    new: &Node,
    synchronous: bool,
    facts: &HostResults,
) -> Result<Loss, Error> {
    let record = replication::load(path).map_err(Error::from)?;
    let old_facts = node_facts(facts, old).ok().flatten();
    let new_facts = node_facts(facts, new).ok().flatten();
    let datanode = new.datanode_name().as_str();
    Ok(failover::data_loss(LossFacts {
        primary: old,
        standby: new,
        synchronous,
        seen: record.datanodes.get(datanode).filter(|s| s.standby == new.name.as_str()),
        primary_now: old_facts
            .filter(|f| f.running && f.in_recovery == Some(false))
            .and_then(|f| f.wal),
        degraded_on_host: old_facts
            .and_then(|f| f.files.get(SYNC_FILE))
            .is_some_and(|c| diff::sync_held(c)),
        standby_has: new_facts.and_then(|f| f.received.max(f.replayed)),
        maximum_lag: inv.cluster.maximum_lag_on_failover,
        now_unix: SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
    }))
}

/// Promote `new` (then wait until it leaves recovery). A promote step that fails, or whose
/// outcome is unknown, is followed by a new probe, never by a retry. `Ok(true)`: it is out of
/// recovery.
pub async fn promote(
    s: &Session,
    new: &Node,
    after: Option<(Vec<String>, String)>,
    out: &mut dyn Write,
) -> Result<bool, Error> {
    let host = s.inv.host(&new.host).expect("validated inventory");
    let step = failover::promote(
        new,
        &s.commands(new)?,
        &psql(&s.inv, new, &bin_dir(host, &s.layout.bin)),
        after,
    );
    let outcome = s.run_one(&step).await;
    report::progress(&step, &outcome, out)?;
    if outcome.result.is_ok() {
        return Ok(true);
    }
    let facts = s.probe(&[new]).await;
    let promoted =
        matches!(node_facts(&facts, new), Ok(Some(f)) if f.running && f.in_recovery == Some(false));
    if promoted {
        report::lifecycle_node(&label(new), "ok", "out of recovery (read again)", out)?;
    }
    Ok(promoted)
}

/// Record beside the inventory that `new` serves `datanode` now and `old` must not run as its
/// primary (`fenced`: it was stopped).
pub fn record(
    inventory: &Path,
    roles: &mut Roles,
    datanode: &str,
    new: &Node,
    old: &Node,
    fenced: bool,
    out: &mut dyn Write,
) -> Result<(), Error> {
    roles.datanodes.insert(
        datanode.to_string(),
        Promotion {
            primary: new.name.to_string(),
            old_primary: old.name.to_string(),
            old_primary_fenced: fenced,
            old_primary_follows: false,
            failed_over_at_unix: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        },
    );
    let path = roles::save(inventory, roles).map_err(|source| Error::Unrecorded {
        done: format!("{} serves {datanode} now ({} is fenced)", new.name, old.name),
        source,
    })?;
    report::lifecycle_node(
        &label(new),
        "ok",
        &format!("serves {datanode} now (recorded in {})", path.display()),
        out,
    )?;
    Ok(())
}

/// Point every coordinator (on Postgres-XL every datanode too:
/// [`crate::flavors::Flavor::registers`]) at the new primary, then check that the datanode
/// takes writes through each coordinator. `inv`: the cluster as it runs now (every datanode
/// where it is served); `datanode`: the inventory's datanode (its name is what coordinators know). `Ok(false)`: a
/// step failed (each is reported).
pub async fn finish(
    s: &Session,
    inv: &Inventory,
    datanode: &Node,
    new: &Node,
    out: &mut dyn Write,
) -> Result<bool, Error> {
    let layout = &s.layout;
    let host = inv.host(&new.host).expect("validated inventory");
    let mut ok = true;
    if inv.cluster.flavor.is_pgxc() {
        let (_, nodes) = desired(inv, &s.renderer, &layout.bin, None, None)
            .map_err(|e| Error::Usage(format!("templates: {e}")))?;
        // The nodes that keep a pgxc_node: coordinators, and Postgres-XL's datanodes (the new
        // primary among them: its copy lists the old address).
        let steps: Vec<Step> = nodes
            .iter()
            .filter_map(|c| {
                let want = failover::repointed(
                    c.pgxc_node.as_ref()?,
                    datanode.name.as_str(),
                    &host.address,
                    new,
                );
                Some(Step {
                    host: c.host.clone(),
                    node: Some(c.name.clone()),
                    action: Action::Register {
                        psql: c.psql.clone(),
                        want,
                        fresh_sql: c.register_sql.clone(),
                    },
                })
            })
            .collect();
        // Register, then check, each coordinator; one that failed either is read again and,
        // if it stopped meanwhile, started first. Registration reads pgxc_node before it
        // writes, so running it again converges from whatever is there: a re-read, not a
        // blind retry.
        report::phase_header("point the nodes at the new primary", out)?;
        let mut pending = steps;
        for attempt in 1..=REGISTER_TRIES {
            if attempt > 1 {
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                report::phase_header("again, for the nodes that failed (read first)", out)?;
                start_stopped(s, &pending, out).await?;
            }
            let failed = s.failed(&pending, out).await?;
            let coordinator = |s: &Step| {
                let name = s.node.as_ref().and_then(|n| inv.node(n.as_str()));
                name.is_some_and(|n| n.role == Role::Coordinator)
            };
            let checks: Vec<Step> = pending
                .iter()
                .filter(|s| !failed.contains(s) && coordinator(s))
                .map(|s| through_coordinator_check(s, datanode))
                .collect();
            if !checks.is_empty() {
                report::phase_header("check", out)?;
            }
            let unchecked = s.failed(&checks, out).await?;
            pending.retain(|s| {
                failed.contains(s) || unchecked.iter().any(|c| c.host == s.host && c.node == s.node)
            });
            if pending.is_empty() {
                break;
            }
        }
        ok &= pending.is_empty();
    } else {
        let mut argv = psql(inv, new, &bin_dir(host, &layout.bin));
        argv.extend(["-v", "ON_ERROR_STOP=1", "-c", sql::WRITE_CHECK].map(String::from));
        let check = Step {
            host: new.host.clone(),
            node: Some(new.name.clone()),
            action: Action::Check { argv, what: "it takes writes".into() },
        };
        report::phase_header("check", out)?;
        ok &= s.run(&[check], out).await?;
    }
    Ok(ok)
}

/// How many times failover registers a datanode's new address on a coordinator.
const REGISTER_TRIES: u32 = 3;

/// The check that `datanode` answers through the coordinator of `register` (a register step).
fn through_coordinator_check(register: &Step, datanode: &Node) -> Step {
    let Action::Register { psql, .. } = &register.action else { unreachable!("a register step") };
    let mut argv = psql.clone();
    argv.extend(["-c".to_string(), sql::primary_through_coordinator(datanode.name.as_str())]);
    let what = format!("{} answers through it, not in recovery", datanode.name);
    Step { action: Action::Check { argv, what }, ..register.clone() }
}

/// Start the coordinators of `steps` that the probe finds stopped. A Postgres-X2 coordinator
/// restarts itself when a backend crashes (seen while a datanode it used vanished), and its
/// 9.4beta1 postmaster then exits about five seconds later: `DetermineSleepTime` gives
/// `select()` a negative timeout once `AbortStartTime`, never reset after a crash recovery, is
/// more than five seconds old ("select() failed in postmaster: Invalid argument"). The
/// inventory says it runs, so it is started as `start` would, and said so.
async fn start_stopped(s: &Session, steps: &[Step], out: &mut dyn Write) -> Result<(), Error> {
    let inv = &s.inv;
    let nodes: Vec<&Node> = steps.iter().filter_map(|s| inv.node(s.node.as_deref()?)).collect();
    let facts = s.probe(&nodes).await;
    let mut starts = Vec::new();
    for node in nodes {
        let Ok(Some(f)) = node_facts(&facts, node) else { continue };
        if f.running || f.alive || !f.initialized {
            continue;
        }
        let commands = s.commands(node)?;
        report::lifecycle_node(&label(node), "note", "not running: started first", out)?;
        starts.push(Step {
            host: node.host.clone(),
            node: Some(node.name.clone()),
            action: Action::start(&commands),
        });
    }
    s.run(&starts, out).await?;
    Ok(())
}

/// What `facts` (a probe of several hosts) say of `node`; see [`crate::plan::state::node_facts`].
pub fn node_facts<'a>(
    facts: &'a HostResults,
    node: &Node,
) -> Result<Option<&'a NodeFacts>, String> {
    crate::plan::state::node_facts(facts, &node.host, node.name.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::scripted::{self, Scripted, World, healthy, node_mut};
    use crate::plan::fixtures;

    fn running(world: &World, node: &Node) -> bool {
        let facts = crate::plan::state::node_facts(world, &node.host, node.name.as_str());
        matches!(facts, Ok(Some(f)) if f.running)
    }

    /// Fail `node` over in a session on `world`; its status, what it printed, the stand-in.
    async fn fail_over(
        inv: &Inventory,
        script: impl FnOnce(&Scripted),
        world: World,
        node: &str,
    ) -> (Status, String, Scripted, tempfile::TempDir) {
        let opts = Opts { node: node.into(), accept_data_loss: false };
        let op =
            async |s: &Session, out: &mut Vec<u8>| failover(s, &opts, Instant::now(), out).await;
        let ran = scripted::run(inv, world, script, op).await;
        (ran.status, ran.out, ran.hosts, ran.dir)
    }

    #[tokio::test]
    async fn a_lost_primary_is_replaced_and_a_stopped_coordinator_started_before_it_is_re_pointed()
    {
        let inv = fixtures::postgres_xc();
        let coord2 = inv.node("coord2").unwrap().clone();
        let mut world = healthy(&inv);
        // dn2's machine (db3) is gone; coord2 (db2) stopped, as an X2 coordinator does ~5 s
        // after a crash recovery.
        world.insert("db3".into(), Err("connect: connection refused".into()));
        let c2 = node_mut(&mut world, &coord2).unwrap();
        (c2.running, c2.alive) = (false, false);
        let stopped = coord2.clone();
        let started = coord2.clone();
        let (status, out, hosts, dir) = fail_over(
            &inv,
            move |h| {
                h.fail_while("coord2: register", move |w| !running(w, &stopped));
                h.on("coord2: start", move |w| node_mut(w, &started).unwrap().running = true);
            },
            world,
            "dn2",
        )
        .await;
        assert_eq!(status, Status::Ok, "{out}");
        let check = "check: dn2 answers through it, not in recovery";
        assert_eq!(
            hosts.log(),
            [
                "lock failover".to_string(),
                "dn2_replica: promote".into(),
                "coord1: register".into(),
                "coord2: register".into(),
                format!("coord1: {check}"),
                "coord2: start".into(),
                "coord2: register".into(),
                format!("coord2: {check}"),
            ]
        );
        assert!(out.contains("dn2 on db3: not fenced, its host is unreachable"), "{out}");
        assert!(out.contains("coord2 on db2: not running: started first"), "{out}");
        let roles = roles::load(&dir.path().join("lab.toml")).unwrap();
        let promotion = &roles.datanodes["dn2"];
        assert_eq!(promotion.primary, "dn2_replica");
        assert!(!promotion.old_primary_fenced, "its host was unreachable");
    }

    #[tokio::test]
    async fn a_standby_never_seen_streaming_is_refused_before_anything_runs() {
        let inv = fixtures::postgres_xc();
        let replica = inv.node("dn2_replica").unwrap().clone();
        let mut world = healthy(&inv);
        world.insert("db3".into(), Err("connect: connection refused".into()));
        node_mut(&mut world, &replica).unwrap().streamed = false;
        let (status, out, hosts, dir) = fail_over(&inv, |_| {}, world, "dn2").await;
        assert_eq!(status, Status::Failed);
        assert_eq!(hosts.log(), ["lock failover"]);
        assert!(out.contains("refusing to promote dn2_replica on db1"), "{out}");
        assert!(out.contains("never saw it stream"), "{out}");
        assert!(!dir.path().join("lab.roles.toml").exists());
    }

    #[tokio::test]
    async fn a_primary_that_cannot_be_stopped_and_still_runs_keeps_its_standby_a_standby() {
        let inv = fixtures::postgres_xc();
        let (status, out, hosts, dir) =
            fail_over(&inv, |h| h.fail_while("dn2: stop", |_| true), healthy(&inv), "dn2").await;
        assert_eq!(status, Status::Failed);
        assert_eq!(hosts.log(), ["lock failover", "dn2: stop (immediate)"]);
        assert!(out.contains("could not stop dn2 on db3, and it cannot be read as down"), "{out}");
        assert!(!dir.path().join("lab.roles.toml").exists());
    }
}
