//! Remove a coordinator (`pgxc-deploy remove INVENTORY COORDINATOR`): its machine is lost, or
//! it is retired. While a coordinator that other coordinators list in pgxc_node is down, every
//! DDL statement fails on every coordinator (DDL runs on all of them), until it is dropped
//! from their pgxc_node. In order: refuse the last coordinator, or when no other coordinator
//! runs; record it as removed beside the inventory (every command but apply then leaves it
//! out); at once, stop it if its host answers (so that it takes no client with a stale
//! catalog) and drop it from every other running coordinator's pgxc_node, reloading their
//! pools (the same registration apply runs, with the inventory as it runs now); check that DDL
//! works through every one of them. Its data directory stays: apply re-adds it from a running
//! coordinator's catalog once its host answers, `clean` removes it.

use std::io::Write;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::executor::report;
use crate::flavors::StopMode;
use crate::inventory::roles::{self, Removed};
use crate::inventory::{Inventory, Node, Role};
use crate::plan::desired::desired;
use crate::plan::failover::kill_leftovers;
use crate::plan::gtm;
use crate::plan::sql;
use crate::plan::step::{Action, Step};

use super::cluster::LockScope;
use super::failover::node_facts;
use super::session::{Locked, Session, label};
use super::{Error, Status};

/// How long the DDL check after a removal is tried, in tenths of a second.
const DDL_WAIT_TENTHS: u32 = 300;

/// Refuse, before connecting, what the inventory and the roles file beside it rule out: not a
/// Postgres-XC coordinator, or the last one.
pub fn precheck(inv: &Inventory, roles: &roles::Roles, node: &str) -> Result<(), Error> {
    let usage = |why: String| Err(Error::Usage(format!("remove {node}: {why}")));
    if !inv.cluster.flavor.is_pgxc() {
        return usage("only Postgres-XC coordinators can be removed".into());
    }
    if roles.removed.contains_key(node) {
        return usage("it was removed already (roles file)".into());
    }
    match inv.node(node) {
        Some(n) if n.role == Role::Coordinator => {}
        Some(n) => {
            return usage(format!(
                "it is a {}; only coordinators can be removed (a lost datanode fails over to \
                 its standby: `pgxc-deploy failover INVENTORY {node}`)",
                n.role
            ));
        }
        None => return usage("the inventory has no such node".into()),
    }
    let others = inv
        .nodes
        .iter()
        .filter(|n| n.role == Role::Coordinator && n.name.as_str() != node)
        .filter(|n| !roles.removed.contains_key(n.name.as_str()))
        .count();
    if others == 0 {
        return usage("it is the last coordinator: the cluster would take no client".into());
    }
    Ok(())
}

/// Remove coordinator `node` under the cluster lock (the hosts that answer); see the module
/// doc. `started`: when the command started, for the last line.
pub async fn remove(
    s: &Session,
    node: &str,
    started: Instant,
    out: &mut dyn Write,
) -> Result<Status, Error> {
    // The nodes that keep a pgxc_node (the coordinators; Postgres-XL's datanodes too), read in
    // the lock's login without SQL (a node that lists a dead coordinator answers SQL, but the
    // probe needs nothing from it).
    let flavor = crate::flavors::of(s.inv.cluster.flavor);
    let coordinators = |now: &Inventory| -> Vec<Node> {
        now.nodes.iter().filter(|n| flavor.registers(n)).cloned().collect()
    };
    let no_files = |_: &str| Vec::new();
    let scope = LockScope::Reachable;
    let locked = s.lock_and_probe_now("remove", scope, &coordinators, &no_files, false).await;
    let Locked { lock: _lock, mut roles, now, facts } = match locked {
        Ok(locked) => locked,
        Err(status) => return status,
    };
    let fail = |out: &mut dyn Write, why: String| -> Result<Status, Error> {
        report::refused("remove", node, &why, out)?;
        Ok(Status::Failed)
    };
    precheck(&s.inv, &roles, node)?;
    let gone = now.node(node).expect("prechecked: a coordinator");

    // The others' pgxc_node as apply would make it once it is removed.
    let mut after_roles = roles.clone();
    after_roles.removed.insert(node.to_string(), Removed { stopped: false, removed_at_unix: 0 });
    let after = after_roles.effective(&s.inv).map_err(Error::Usage)?;
    let (_, nodes) = desired(&after, &s.renderer, &s.layout.bin, None, None)
        .map_err(|e| Error::Usage(format!("templates: {e}")))?;
    let running = |n: &Node| matches!(node_facts(&facts, n), Ok(Some(f)) if f.running);
    let survivors: Vec<_> = nodes
        .iter()
        .filter(|d| d.role == Role::Coordinator)
        .filter(|d| after.node(&d.name).is_some_and(running))
        .collect();
    // Every running node that keeps a pgxc_node: the coordinators, Postgres-XL's datanodes too.
    let listing: Vec<_> = nodes
        .iter()
        .filter(|d| d.pgxc_node.is_some())
        .filter(|d| after.node(&d.name).is_some_and(running))
        .collect();
    if survivors.is_empty() {
        return fail(
            out,
            "no other coordinator is running to drop it from: nothing was changed; start them \
             (`pgxc-deploy start INVENTORY`), then run remove again"
                .to_string(),
        );
    }

    // Stopping it and dropping it from the others go at once: neither needs the other, and
    // DDL waits for the second.
    let mut steps = Vec::new();
    let stopped = match node_facts(&facts, gone) {
        Err(why) => {
            let what = format!(
                "not stopped, its host is unreachable ({why}): make sure it stays down (every \
                 command but apply leaves it out from now on)"
            );
            report::lifecycle_node(&label(gone), "WARN", &what, out)?;
            false
        }
        Ok(f) => {
            if f.is_some_and(|f| f.running || f.alive) {
                steps.push(gtm::stop(gone, &s.commands(gone)?, StopMode::Immediate));
            }
            steps.push(kill_leftovers(gone));
            true
        }
    };
    let removed_at_unix = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    roles.removed.insert(node.to_string(), Removed { stopped, removed_at_unix });
    // Recorded before anything changes: a record that cannot be written stops here.
    let path = roles::save(&s.path, &roles).map_err(Error::from)?;
    let what = format!("removed (recorded in {})", path.display());
    report::lifecycle_node(&label(gone), "ok", &what, out)?;

    let step = |d: &crate::plan::desired::DesiredNode, action| Step {
        host: d.host.clone(),
        node: Some(d.name.clone()),
        action,
    };
    report::phase_header(&format!("stop {node}, drop it from every other node's pgxc_node"), out)?;
    let stop_steps = steps.clone();
    steps.extend(listing.iter().map(|d| {
        let want = d.pgxc_node.clone().unwrap_or_default();
        let fresh_sql = d.register_sql.clone();
        step(d, Action::Register { psql: d.psql.clone(), want, fresh_sql })
    }));
    let failed = s.failed(&steps, out).await?;
    if failed.iter().any(|f| stop_steps.contains(f)) {
        writeln!(
            out,
            "  {node} could not be stopped: stop it by hand (or make sure its machine is off)"
        )?;
    }
    let mut ok = failed.is_empty();

    // Tried for up to DDL_WAIT: an X2 coordinator may crash and restart under the pool reload
    // while a client runs DDL (seen once in scripts/bench-pgxc-ctl: "the database system is
    // in recovery mode" for a second or two).
    report::phase_header("check DDL through every coordinator", out)?;
    for ddl in [sql::ddl_check_create, sql::ddl_check_drop] {
        let checks: Vec<Step> = survivors
            .iter()
            .map(|d| {
                let table = format!("pgxc_deploy_ddl_check_{removed_at_unix}_{}", d.name);
                let mut argv = d.psql.clone();
                argv.extend(["-v", "ON_ERROR_STOP=1", "-c"].map(String::from));
                argv.push(ddl(&table));
                let what = "DDL through it works".to_string();
                step(d, Action::Await { argv, what, tenths: DDL_WAIT_TENTHS })
            })
            .collect();
        ok &= s.run(&checks, out).await?;
    }
    if !ok {
        return fail(
            out,
            format!(
                "{node} is recorded as removed, but the steps above failed: fix their cause, then \
                 `pgxc-deploy apply INVENTORY` drops it from the coordinators that still list it"
            ),
        );
    }
    let names: Vec<&str> = listing.iter().map(|d| d.name.as_str()).collect();
    writeln!(
        out,
        "remove {node}: dropped from the pgxc_node of {}; DDL works through every running \
         coordinator {:.2} s after remove started",
        names.join(", "),
        started.elapsed().as_secs_f64()
    )?;
    Ok(Status::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::fixtures;

    fn refused(inv: &Inventory, roles: &roles::Roles, node: &str) -> String {
        precheck(inv, roles, node).unwrap_err().to_string()
    }

    #[test]
    fn only_a_coordinator_that_is_not_the_last_one_is_removed() {
        let inv = fixtures::postgres_xc();
        let mut roles = roles::Roles::default();
        assert!(precheck(&inv, &roles, "coord2").is_ok());
        assert!(refused(&inv, &roles, "dn1").contains("it is a datanode; only coordinators"));
        assert!(refused(&inv, &roles, "dn9").contains("no such node"));
        roles.removed.insert("coord2".into(), Removed { stopped: true, removed_at_unix: 1 });
        assert!(refused(&inv, &roles, "coord2").contains("removed already"));
        assert!(refused(&inv, &roles, "coord1").contains("it is the last coordinator"));
        assert!(refused(&fixtures::postgresql(), &roles, "pg1").contains("only Postgres-XC"));

        // Every command then leaves it out: no node, no pgxc_node row for it.
        let now = roles.effective(&inv).unwrap();
        assert!(now.node("coord2").is_none() && now.node("coord1").is_some());
        let (_, nodes) =
            desired(&now, &crate::plan::render::Renderer::new(), "bin", None, None).unwrap();
        let coord1 = nodes.iter().find(|n| n.name == "coord1").unwrap();
        assert!(!coord1.pgxc_node.as_ref().unwrap().iter().any(|r| r.name == "coord2"));
        roles.removed.insert("dn1".into(), Removed { stopped: true, removed_at_unix: 1 });
        assert!(roles.effective(&inv).unwrap_err().contains("the inventory's `dn1` is a datanode"));
    }
}
