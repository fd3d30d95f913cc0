//! GTM failover and switchover (`pgxc-deploy failover INVENTORY gtm`, `switchover INVENTORY
//! gtm`): the GTM standby ([gtm.standby]) becomes the active GTM. In order, each step only
//! after the previous one succeeded: refuse unless the standby runs as a standby; say which
//! path the re-pointing takes ([`crate::plan::gtm::Handover::describe`]); fence the active GTM
//! if its host answers (failover: immediate stop) or stop it cleanly (switchover); promote
//! the standby; record the roles beside the inventory; rewrite the new active GTM's gtm.conf
//! (`startup = ACT`); re-point the gtm_proxies live (`gtm_ctl reconnect`, and gtm_proxy.conf
//! rewritten) and restart the nodes of hosts without a proxy with the new
//! `gtm_host`/`gtm_port`; check that a write through every running coordinator commits. A
//! switchover then starts the old GTM as the new one's standby; after a failover, `apply`
//! does (it is fenced until then). Run again after a failover whose re-pointing failed, it
//! redoes only the re-pointing and the checks. Decisions in [`crate::plan::gtm`].

use std::io::Write;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::executor::report;
use crate::flavors::StopMode;
use crate::flavors::postgres_xc;
use crate::inventory::roles::{self, Promotion, Roles};
use crate::inventory::{Inventory, Node, Role};
use crate::plan::desired::{DesiredNode, bin_dir, desired};
use crate::plan::failover::kill_leftovers;
use crate::plan::gtm;
use crate::plan::step::{Action, Step};

use super::cluster::{HostResults, LockScope};
use super::failover::node_facts;
use super::session::{Locked, Session, label};
use super::{Error, Status};

/// Which hand-over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The active GTM is lost (its machine may be unreachable): fence it if it answers.
    Failover,
    /// Planned: stop the active GTM cleanly, and make it the new one's standby.
    Switchover,
}

impl Kind {
    fn verb(self) -> &'static str {
        match self {
            Kind::Failover => "failover",
            Kind::Switchover => "switchover",
        }
    }
}

/// Whether `node` names the inventory's GTM or its standby (what `failover`/`switchover` then
/// hand over).
pub fn names_gtm(inv: &Inventory, node: &str) -> bool {
    inv.node(node).is_some_and(|n| matches!(n.role, Role::Gtm | Role::GtmStandby))
}

/// Hand the GTM over to its standby, under the cluster lock; see the module doc. `started`:
/// when the command started, for the last line.
pub async fn handover(
    s: &Session,
    kind: Kind,
    started: Instant,
    out: &mut dyn Write,
) -> Result<Status, Error> {
    let verb = kind.verb();
    let scope = match kind {
        Kind::Failover => LockScope::Reachable,
        Kind::Switchover => LockScope::Every,
    };
    // Every node, read in the lock's login without SQL (every new session of a server waits
    // while its GTM is gone).
    let every = |now: &Inventory| now.nodes.clone();
    let locked = s.lock_and_probe_now(verb, scope, &every, &managed, false).await;
    let Locked { lock: _lock, mut roles, now, facts } = match locked {
        Ok(locked) => locked,
        Err(status) => return status,
    };
    let fail = |out: &mut dyn Write, why: String| -> Result<Status, Error> {
        report::refused(verb, "gtm", &why, out)?;
        Ok(Status::Failed)
    };
    let h = gtm::handover(&now).map_err(|e| Error::Usage(format!("{verb} gtm: {e}")))?;
    let gtm_name = s.inv.node_of(Role::Gtm).expect("a handover has a GTM").name.to_string();

    // A failover whose re-pointing failed: the standby is promoted and the old GTM fenced.
    let again = roles.fenced(h.new.name.as_str()).is_some();
    let (active, old) = if again { (h.old, h.new) } else { (h.new, h.old) };
    if again && kind == Kind::Switchover {
        return fail(
            out,
            format!(
                "{} is fenced since a failover: `pgxc-deploy apply INVENTORY` makes it {}'s \
                 standby first; nothing was changed",
                old.name, active.name
            ),
        );
    }
    if again {
        let recorded = roles::path_for(&s.path);
        writeln!(
            out,
            "gtm already failed over to {} (recorded in {}): re-pointing the cluster at it again \
             and checking",
            active.name,
            recorded.display()
        )?;
    } else if kind == Kind::Failover && promoted_before(&facts, active, old) {
        // A failover that promoted the standby but was stopped before it recorded that (its
        // check of the promotion gave up): carry on from there.
        writeln!(
            out,
            "{} runs as the active GTM already and {} is down: recording it, then re-pointing \
             the cluster at it",
            active.name, old.name
        )?;
        let fenced = node_facts(&facts, old).is_ok();
        record(s, &mut roles, &gtm_name, active, old, fenced, out)?;
    } else {
        let address = s.inv.host(&active.host).map_or("", |h| h.address.as_str());
        if let Some(why) = gtm::refusal(active, address, node_facts(&facts, active)) {
            return fail(out, why);
        }
        let old_facts = node_facts(&facts, old);
        if kind == Kind::Switchover && !matches!(old_facts, Ok(Some(f)) if f.running) {
            return fail(
                out,
                format!(
                    "{} on {} is not running: a switchover hands over from a running GTM; \
                     `pgxc-deploy failover INVENTORY gtm` promotes {} without it. Nothing was \
                     changed",
                    old.name, old.host, active.name
                ),
            );
        }
        report::phase_header(&format!("{verb} gtm: the plan"), out)?;
        for line in h.describe() {
            writeln!(out, "  {line}")?;
        }
        if !stop_old(s, kind, old, &facts, out).await? {
            return fail(
                out,
                format!(
                    "could not stop {} on {}, and it cannot be read as down: nothing was \
                     promoted; stop it by hand (or make sure its machine is off), then run {verb} \
                     again",
                    old.name, old.host
                ),
            );
        }
        report::phase_header(&format!("promote {}", active.name), out)?;
        if !s.run(&gtm::promote(active, &s.commands(active)?), out).await? {
            return fail(
                out,
                format!(
                    "{} on {} did not become the active GTM; {} is stopped. See {}/server.log, \
                     then run {verb} again, or start {} again",
                    active.name, active.host, old.name, active.data_dir, old.name
                ),
            );
        }
        let fenced = node_facts(&facts, old).is_ok();
        record(s, &mut roles, &gtm_name, active, old, fenced, out)?;
    }

    let after = roles.effective(&s.inv).map_err(Error::Usage)?;
    let ok = repoint(s, &after, &facts, &gtm_name, out).await?;
    if !ok {
        return fail(
            out,
            format!(
                "{} is the active GTM and recorded, but the steps above failed: fix their cause \
                 and run {verb} gtm again (a failover redoes only these steps)",
                active.name
            ),
        );
    }
    let first_write = started.elapsed();
    if kind == Kind::Switchover && !follow(s, &after, old, &mut roles, &gtm_name, out).await? {
        return fail(
            out,
            format!(
                "{} is the active GTM, but {} did not start as its standby: it is recorded as \
                 fenced; `pgxc-deploy apply INVENTORY` makes it the standby",
                active.name, old.name
            ),
        );
    }
    let address = s.inv.host(&active.host).map(|h| h.address.as_str()).unwrap_or_default();
    writeln!(
        out,
        "{verb} gtm: {} on {} ({address}:{}) is the active GTM; writes through every running \
         coordinator committed {:.2} s after {verb} started ({:.2} s in all)",
        active.name,
        active.host,
        active.port,
        first_write.as_secs_f64(),
        started.elapsed().as_secs_f64()
    )?;
    Ok(Status::Ok)
}

/// The managed files a handover rewrites, by node name: read first, to say what changes.
fn managed(_: &str) -> Vec<String> {
    ["gtm.conf", "gtm_proxy.conf", "postgresql.conf"].map(String::from).to_vec()
}

/// Stop the active GTM: fence it at once (failover; not when its host cannot be reached, said)
/// or stop it cleanly (switchover). `Ok(false)`: it could not be stopped.
async fn stop_old(
    s: &Session,
    kind: Kind,
    old: &Node,
    facts: &HostResults,
    out: &mut dyn Write,
) -> Result<bool, Error> {
    report::phase_header(&format!("stop {}", old.name), out)?;
    let f = match node_facts(facts, old) {
        Ok(f) => f,
        Err(why) => {
            let what = format!(
                "not fenced, its host is unreachable ({why}): make sure it never comes back as \
                 the active GTM (pgxc-deploy start refuses to start it)"
            );
            report::lifecycle_node(&label(old), "WARN", &what, out)?;
            return Ok(true);
        }
    };
    if f.is_some_and(|f| f.running || f.alive) {
        let mode = match kind {
            Kind::Failover => StopMode::Immediate,
            Kind::Switchover => StopMode::Fast,
        };
        let step = gtm::stop(old, &s.commands(old)?, mode);
        if !s.run(&[step], out).await? {
            let again = s.probe(&[old]).await;
            if !matches!(node_facts(&again, old), Ok(Some(f)) if !f.running && !f.alive) {
                return Ok(false);
            }
            report::lifecycle_node(&label(old), "ok", "down now (read again)", out)?;
        }
    } else {
        report::lifecycle_node(&label(old), "ok", "already down", out)?;
    }
    // Nothing may be left running in its directory to hand out transaction IDs.
    s.run(&[kill_leftovers(old)], out).await
}

/// Record beside the inventory that `active` is the active GTM now, in place of `old` (fenced:
/// it was stopped).
fn record(
    s: &Session,
    roles: &mut Roles,
    gtm: &str,
    active: &Node,
    old: &Node,
    fenced: bool,
    out: &mut dyn Write,
) -> Result<(), Error> {
    let promotion = Promotion {
        primary: active.name.to_string(),
        old_primary: old.name.to_string(),
        old_primary_fenced: fenced,
        old_primary_follows: false,
        failed_over_at_unix: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    };
    roles.gtm.insert(gtm.to_string(), promotion);
    let path = roles::save(&s.path, roles).map_err(|source| Error::Unrecorded {
        done: format!("{} is the active GTM now ({} is fenced)", active.name, old.name),
        source,
    })?;
    let what = format!("the active GTM now (recorded in {})", path.display());
    report::lifecycle_node(&label(active), "ok", &what, out)?;
    Ok(())
}

/// Point the cluster at the active GTM of `after` (the roles file applied): its own gtm.conf
/// (`startup = ACT`, so that a restart keeps it active), then every gtm_proxy (file, then
/// `gtm_ctl reconnect`, or a start if it is down), then the nodes of hosts without a proxy
/// (file, restart), all at once; then a write through every
/// coordinator that runs. Nodes whose host does not answer are said and left to `apply`.
/// `Ok(false)`: a step failed (each is reported).
async fn repoint(
    s: &Session,
    after: &Inventory,
    facts: &HostResults,
    gtm_name: &str,
    out: &mut dyn Write,
) -> Result<bool, Error> {
    let h = gtm::handover(after).map_err(Error::Usage)?;
    let active = h.old;
    let (_, nodes) = desired(after, &s.renderer, &s.layout.bin, None, None)
        .map_err(|e| Error::Usage(format!("templates: {e}")))?;
    let desired_of = |n: &Node| nodes.iter().find(|d| d.name == n.name).expect("desired node");
    // Its process, not pg_isready: a Postgres-XL server's sessions cannot start while it has
    // no GTM, so pg_isready times out on a server that is up and waiting for the new one.
    let running = |n: &Node| matches!(node_facts(facts, n), Ok(Some(f)) if f.running || f.alive);
    let mut ok = true;

    // Round trips are what a handover costs: the live moves first (with the new GTM's
    // gtm.conf), then the files that only matter at a proxy's next start, with the checks.
    report::phase_header("re-point", out)?;
    let active_host = after.host(&active.host).expect("validated inventory");
    let mut first = writes(desired_of(active), facts);
    if h.restarts_gtm() {
        // With its new gtm.conf (`startup = ACT`) first, and before the proxies reconnect.
        ok &= s.run(&first, out).await?;
        for step in gtm::restart_fresh(active, &s.commands(active)?) {
            if ok {
                ok = s.run(&[step], out).await?;
            }
        }
        first = Vec::new();
    }
    let mut second = Vec::new();
    let proxies = reachable(&h.proxies, facts, out)?;
    let all_running = proxies.iter().all(|p| running(p));
    for proxy in proxies {
        let files = writes(desired_of(proxy), facts);
        if running(proxy) {
            let host = after.host(&proxy.host).expect("validated inventory");
            let argv = postgres_xc::reconnect(
                &bin_dir(host, &s.layout.bin),
                &proxy.data_dir,
                &active_host.address,
                active.port,
            );
            first.push(gtm::reconnect(proxy, argv, &active_host.address, active.port));
            second.extend(files);
        } else {
            first.extend(files);
            second.push(step(proxy, Action::start(&s.commands(proxy)?)));
        }
    }
    ok &= s.run(&first, out).await?;
    if !h.catalogs.is_empty() {
        // The row is named after the inventory's GTM: the active one when initdb ran.
        let catalogs = reachable(&h.catalogs, facts, out)?;
        let steps: Vec<Step> = catalogs
            .iter()
            .filter(|n| running(n))
            .map(|n| {
                let psql = &desired_of(n).psql;
                gtm::repoint_catalog(n, psql, gtm_name, &active_host.address, active.port)
            })
            .collect();
        ok &= s.run(&steps, out).await?;
    }
    let coordinators: Vec<&Node> =
        after.nodes.iter().filter(|n| n.role == Role::Coordinator && running(n)).collect();
    let checks: Vec<Step> =
        coordinators.iter().map(|c| gtm::write_check(c, &desired_of(c).psql)).collect();
    if checks.is_empty() {
        writeln!(out, "  no coordinator was running to check writes through")?;
        ok = false;
    }
    if h.restarts.is_empty() && all_running {
        second.extend(checks);
        ok &= s.run(&second, out).await?;
        return Ok(ok);
    }
    ok &= s.run(&second, out).await?;

    if !h.restarts.is_empty() {
        report::phase_header("restart the nodes of hosts without a gtm_proxy", out)?;
        let reachable = reachable(&h.restarts, facts, out)?;
        // All at once: a coordinator needs no datanode to start.
        let files: Vec<Step> =
            reachable.iter().flat_map(|n| writes(desired_of(n), facts)).collect();
        ok &= s.run(&files, out).await?;
        let restarts: Vec<Step> =
            reachable.iter().filter(|n| running(n)).map(|n| restart(desired_of(n))).collect();
        ok &= s.run(&restarts, out).await?;
    }

    report::phase_header("check", out)?;
    ok &= s.run(&checks, out).await?;
    Ok(ok)
}

/// The nodes of `nodes` whose host answered the probe; the others are said, and left to apply.
fn reachable<'a>(
    nodes: &[&'a Node],
    facts: &HostResults,
    out: &mut dyn Write,
) -> Result<Vec<&'a Node>, Error> {
    let mut answered = Vec::new();
    for &n in nodes {
        match node_facts(facts, n) {
            Ok(Some(_)) => answered.push(n),
            Ok(None) => {
                report::lifecycle_node(&label(n), "WARN", "not reported by the probe", out)?
            }
            Err(why) => report::lifecycle_node(
                &label(n),
                "WARN",
                &format!(
                    "its host is unreachable ({why}): left as it is; `pgxc-deploy apply \
                     INVENTORY` re-points it once its host answers"
                ),
                out,
            )?,
        }
    }
    Ok(answered)
}

/// Write the node's managed files that differ from what its host has ([`managed`] only).
fn writes(n: &DesiredNode, facts: &HostResults) -> Vec<Step> {
    let have = facts.get(&n.host).and_then(|h| h.as_ref().ok()).and_then(|h| h.nodes.get(&n.name));
    n.files
        .iter()
        .filter(|f| managed("").contains(&f.name))
        .filter_map(|file| {
            let old = have.and_then(|f| f.files.get(&file.name));
            if old.is_some_and(|o| o == file.content.as_bytes()) {
                return None;
            }
            let old = old.map(|o| String::from_utf8_lossy(o).into_owned());
            let data_dir = n.data_dir.clone();
            Some(desired_step(n, Action::WriteFile { data_dir, file: file.clone(), old }))
        })
        .collect()
}

/// Restart a node so that it reads its new gtm_host/gtm_port.
/// Restart `n` for its changed `gtm_host`/`gtm_port`.
fn restart(n: &DesiredNode) -> Step {
    let (stop, status, start) = n.restart.clone();
    let settings = vec!["gtm_host".to_string(), "gtm_port".to_string()];
    let (data_dir, log, ready) = (n.data_dir.clone(), n.log.clone(), n.ready.clone());
    desired_step(n, Action::Restart { stop, data_dir, status, start, log, ready, settings })
}

/// A switchover's end: start the old GTM as the standby of the new one (its gtm.conf of
/// `after`: `startup = STANDBY`), wait until it says so, and record that it follows.
/// `Ok(false)`: it did not.
async fn follow(
    s: &Session,
    after: &Inventory,
    old: &Node,
    roles: &mut Roles,
    gtm: &str,
    out: &mut dyn Write,
) -> Result<bool, Error> {
    let (_, nodes) = desired(after, &s.renderer, &s.layout.bin, None, None)
        .map_err(|e| Error::Usage(format!("templates: {e}")))?;
    let d = nodes.iter().find(|d| d.name == old.name).expect("desired node");
    let node = after.node(&old.name).expect("the old GTM");
    let commands = s.commands(node)?;
    report::phase_header(&format!("start {} as the standby", old.name), out)?;
    let facts = s.probe_reading(&[node], &["gtm.conf"]).await;
    let mut steps = writes(d, &facts);
    steps.push(step(node, Action::start(&commands)));
    if !s.run(&steps, out).await? || !s.run(&[gtm::runs_as_standby(node, &commands)], out).await? {
        return Ok(false);
    }
    if let Some(p) = roles.gtm.get_mut(gtm) {
        p.old_primary_follows = true;
    }
    // Handed back to the inventory's GTM: nothing left to record.
    roles.gtm.retain(|gtm, p| &p.primary != gtm);
    let path = roles::save(&s.path, roles).map_err(|source| Error::Unrecorded {
        done: format!("{} is the standby of the active GTM", old.name),
        source,
    })?;
    let what = format!("standby of the active GTM (recorded in {})", path.display());
    report::lifecycle_node(&label(old), "ok", &what, out)?;
    Ok(true)
}

fn step(node: &Node, action: Action) -> Step {
    Step { host: node.host.clone(), node: Some(node.name.clone()), action }
}

fn desired_step(n: &DesiredNode, action: Action) -> Step {
    Step { host: n.host.clone(), node: Some(n.name.clone()), action }
}

/// Whether an earlier failover promoted `new` already: it runs as the active GTM, and `old`
/// is seen down.
fn promoted_before(facts: &HostResults, new: &Node, old: &Node) -> bool {
    let active =
        matches!(node_facts(facts, new), Ok(Some(f)) if f.running && f.in_recovery == Some(false));
    let old_down = matches!(node_facts(facts, old), Ok(Some(f)) if !f.running);
    active && old_down
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::scripted::{self, healthy, node_mut};
    use crate::plan::fixtures;

    /// A failover whose promotion check gave up left the standby active and the GTM down: run
    /// again, it records the standby as the active GTM and carries on, promoting nothing.
    #[tokio::test]
    async fn a_failover_run_again_after_the_promotion_carries_on() {
        let inv = fixtures::postgres_xc_ha();
        let mut world = healthy(&inv);
        let gtm = inv.node("gtm").unwrap();
        let standby = inv.node("gtm_standby").unwrap();
        let old = node_mut(&mut world, gtm).unwrap();
        (old.running, old.alive) = (false, false);
        node_mut(&mut world, standby).unwrap().in_recovery = Some(false);
        let ran = scripted::run(
            &inv,
            world,
            |_| {},
            async |s, out| handover(s, Kind::Failover, Instant::now(), out).await,
        )
        .await;
        assert!(ran.out.contains("gtm_standby runs as the active GTM already"), "{}", ran.out);
        let log = ran.hosts.log();
        assert!(!log.iter().any(|l| l.contains("promote")), "{log:?}");
        let roles = roles::load(&ran.dir.path().join("lab.toml")).unwrap();
        assert!(roles.fenced("gtm").is_some(), "{:?}", ran.out);
    }
}
