//! The operations on a running cluster: start/stop, restart, failover, switchover, degrade,
//! clean, the cluster lock and the records kept beside the inventory.

use std::error::Error;
use std::io::{self, Write};
use std::path::Path;
use std::time::Duration;

use crate::inventory::roles::Roles;
use crate::inventory::{Node, NodeName, Role};
use crate::plan::clean::CleanPlan;

/// `== start datanodes`: the tier start or stop is working on.
pub fn tier_header(verb: &str, role: Role, out: &mut dyn Write) -> io::Result<()> {
    let role = match role {
        Role::Gtm => "gtm".to_string(),
        Role::GtmStandby => "gtm standby".to_string(),
        Role::GtmProxy => "gtm proxies".to_string(),
        _ => format!("{role}s"),
    };
    writeln!(out, "== {verb} {role}")
}

/// A node start or stop did not run a step for: `  ok    pg1 on h1: already running`.
pub fn lifecycle_node(label: &str, mark: &str, what: &str, out: &mut dyn Write) -> io::Result<()> {
    super::events::note(None, Some(label), &format!("{}: {what}", mark.trim()));
    writeln!(out, "  {mark:<4}  {label}: {what}")
}

/// The last line of start or stop: what was done, and what failed.
pub fn lifecycle_summary(
    verb: &str,
    ran: &crate::plan::lifecycle::Ran,
    elapsed: std::time::Duration,
    out: &mut dyn Write,
) -> io::Result<()> {
    let already = if verb == "start" { "already running" } else { "already stopped" };
    let done = if verb == "start" { "started" } else { "stopped" };
    write!(out, "{done} {}, {} {already}", ran.done.len(), ran.already.len())?;
    if !ran.failed.is_empty() {
        let failed: Vec<String> = ran.failed.iter().map(|h| h.to_string()).collect();
        write!(out, ", {} failed: {}", failed.len(), failed.join(", "))?;
    }
    if !ran.skipped.is_empty() {
        write!(out, ", {} not started", ran.skipped.len())?;
    }
    writeln!(out, " ({:.1} s)", elapsed.as_secs_f64())?;
    out.flush()
}

/// A node a rolling restart brought back: `  ok    restarted dn1 on h2 (1.3 s, down 0.9 s)`:
/// the whole of its restart and checks, and how long it did not accept connections.
pub fn restarted(
    what: &str,
    elapsed: std::time::Duration,
    down: Option<std::time::Duration>,
    out: &mut dyn Write,
) -> io::Result<()> {
    let down = down.map(|d| format!(", down {:.1} s", d.as_secs_f64())).unwrap_or_default();
    let line = format!("restarted {what} ({:.1} s{down})", elapsed.as_secs_f64());
    super::events::note(None, None, &line);
    writeln!(out, "  ok    {line}")?;
    out.flush()
}

/// A node that did not come back, with the step that failed and why.
pub fn not_back(
    what: &str,
    elapsed: std::time::Duration,
    err: &crate::executor::StepError,
    out: &mut dyn Write,
) -> io::Result<()> {
    let line = format!("{what} did not come back ({:.1} s)", elapsed.as_secs_f64());
    super::events::note(None, None, &format!("{line}: {}: {}", err.step, err.message()));
    writeln!(out, "  FAIL  {line}")?;
    writeln!(out, "        {}: {}", err.step, err.message().replace('\n', "\n        "))?;
    out.flush()
}

/// Why a rolling restart did not start.
pub fn roll_refused(refusals: &[String], out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "error: restart: refusing to start the roll, nothing was restarted:")?;
    for r in refusals {
        writeln!(out, "  {r}")?;
    }
    out.flush()
}

/// The last line of a rolling restart. `stopped_at`: the nodes that did not come back and the
/// ones left untouched after them.
pub fn roll_summary(
    restarted: usize,
    stopped_at: Option<&(Vec<String>, Vec<String>)>,
    elapsed: std::time::Duration,
    out: &mut dyn Write,
) -> io::Result<()> {
    let secs = elapsed.as_secs_f64();
    match stopped_at {
        None => writeln!(out, "rolled {restarted} nodes ({secs:.1} s)")?,
        Some((failed, untouched)) => {
            let rest = if untouched.is_empty() {
                "no node was left".to_string()
            } else {
                format!("not restarted: {}", untouched.join(", "))
            };
            writeln!(
                out,
                "error: restart: stopped at {}; restarted {restarted}; {rest} ({secs:.1} s)",
                failed.join(", ")
            )?;
        }
    }
    out.flush()
}

/// What `clean` would delete, per host, and what it refuses or cannot see. `yes`: it was asked
/// to delete, and refuses to because of the refusals listed.
pub fn clean_listing(plan: &CleanPlan, yes: bool, out: &mut dyn Write) -> io::Result<()> {
    if plan.removals.is_empty() {
        writeln!(out, "nothing to delete")?;
    } else if !yes {
        writeln!(
            out,
            "clean would stop every node immediately and delete (nothing was changed; add --yes):"
        )?;
    } else {
        writeln!(out, "clean would delete:")?;
    }
    // Per host, hosts in order of their first node.
    let mut hosts: Vec<&str> = Vec::new();
    for r in &plan.removals {
        if !hosts.contains(&r.host.as_str()) {
            hosts.push(&r.host);
        }
    }
    for host in hosts {
        writeln!(out, "{host}:")?;
        for r in plan.removals.iter().filter(|r| r.host == host) {
            for path in r.paths() {
                writeln!(out, "  {path}  ({})", r.node)?;
            }
        }
    }
    if !plan.refused.is_empty() {
        writeln!(out, "refused:")?;
        for r in &plan.refused {
            writeln!(out, "  {} on {}: {}: {}", r.node, r.host, r.path, r.reason)?;
        }
    }
    if !plan.unreachable.is_empty() {
        writeln!(out, "unreachable (nothing known there, nothing would be deleted there):")?;
        for (host, why) in &plan.unreachable {
            writeln!(out, "  {host}: {why}")?;
        }
    }
    if yes && !plan.refused.is_empty() {
        writeln!(
            out,
            "nothing was stopped or deleted: clean refuses while any directory is refused"
        )?;
    }
    out.flush()
}

/// The last lines of `clean --yes`.
pub fn clean_summary(
    removed: usize,
    failed: &[String],
    unreachable: &[(String, String)],
    elapsed: std::time::Duration,
    out: &mut dyn Write,
) -> io::Result<()> {
    for (host, why) in unreachable {
        writeln!(out, "  FAIL  {host}: unreachable, nothing deleted there: {why}")?;
    }
    write!(out, "removed {removed} node director{}", if removed == 1 { "y" } else { "ies" })?;
    if !failed.is_empty() {
        write!(out, "; not removed: {}", failed.join(", "))?;
    }
    writeln!(out, "; install prefixes left alone ({:.1} s)", elapsed.as_secs_f64())?;
    out.flush()
}

// The cluster lock and the records beside the inventory.

/// The lock was refused on some hosts (nothing was changed): why, per host.
pub fn lock_refused(
    cluster: &str,
    refused: &[(String, String)],
    err: &mut dyn Write,
) -> io::Result<()> {
    writeln!(err, "error: cannot lock {cluster}; nothing was changed:")?;
    for (host, why) in refused {
        writeln!(err, "  {host}: lock: {why}")?;
    }
    Ok(())
}

/// The replication record could not be written: a warning, the command goes on.
pub fn replication_unrecorded(e: &(dyn Error + 'static), err: &mut dyn Write) -> io::Result<()> {
    let e = crate::errors::chain(e);
    writeln!(err, "warning: {e}: failover will know less about how far standbys had got")
}

/// The record of a degrade could not be written: a failover to `standby` will not know.
pub fn degrade_unrecorded(
    e: &(dyn Error + 'static),
    standby: &NodeName,
    err: &mut dyn Write,
) -> io::Result<()> {
    let e = crate::errors::chain(e);
    writeln!(err, "warning: {e}: a failover to {standby} will not know that it may lack commits")
}

// Failover, switchover, degrade.

/// `datanode` was failed over to `primary` before (the roles file at `path` says so).
pub fn failed_over_before(
    datanode: &NodeName,
    primary: &NodeName,
    path: &Path,
    out: &mut dyn Write,
) -> io::Result<()> {
    said(
        out,
        format!(
            "{datanode} already failed over to {primary} (recorded in {}): pointing coordinators \
             at it again and checking",
            path.display()
        ),
    )
}

/// `old` serves `datanode` since a switchover, so failover promotes `new`, its standby.
pub fn failing_over_from(
    old: &NodeName,
    datanode: &NodeName,
    new: &NodeName,
    out: &mut dyn Write,
) -> io::Result<()> {
    said(
        out,
        format!(
            "{old} serves {datanode} since a switchover (roles file) and {new} streams from it: \
             failing over to {new}"
        ),
    )
}

/// Failover's last line: `new` (at `address`) is `datanode`'s primary, writes accepted after
/// `elapsed`.
pub fn failed_over(
    datanode: &NodeName,
    new: &Node,
    address: &str,
    elapsed: Duration,
    out: &mut dyn Write,
) -> io::Result<()> {
    said(
        out,
        format!(
            "failover {datanode}: {} on {} ({address}:{}) is the primary; writes accepted {:.2} s \
             after failover started",
            new.name,
            new.host,
            new.port,
            elapsed.as_secs_f64()
        ),
    )
}

/// Switchover's last line: `new` (at `address`) is `datanode`'s primary and `old` streams from
/// it; writes accepted after `first_write`, done after `elapsed`.
pub fn switched_over(
    datanode: &str,
    new: &Node,
    old: &Node,
    address: &str,
    first_write: Duration,
    elapsed: Duration,
    out: &mut dyn Write,
) -> io::Result<()> {
    said(
        out,
        format!(
            "switchover {datanode}: {} on {} ({address}:{}) is the primary, {} streams from it; \
             writes accepted {:.2} s after switchover started ({:.2} s in all)",
            new.name,
            new.host,
            new.port,
            old.name,
            first_write.as_secs_f64(),
            elapsed.as_secs_f64()
        ),
    )
}

/// Degrade's last line: `primary`'s commits stop waiting for `standby` until it streams again.
pub fn degraded(
    primary: &Node,
    standby: &NodeName,
    elapsed: Duration,
    out: &mut dyn Write,
) -> io::Result<()> {
    said(
        out,
        format!(
            "degrade {}: synchronous replication off on {} on {} until {standby} streams again \
             (then `pgxc-deploy apply` switches it back on); commits went through {:.2} s after \
             degrade started",
            primary.name,
            primary.name,
            primary.host,
            elapsed.as_secs_f64()
        ),
    )
}

/// Degrade goes on although `standby` streams from `primary`.
pub fn degrading_streaming(
    standby: &Node,
    primary: &NodeName,
    out: &mut dyn Write,
) -> io::Result<()> {
    said(
        out,
        format!(
            "note: {} on {} streams from {primary}: its commits did not wait for a dead standby; \
             degrading anyway (the next apply switches synchronous replication back on)",
            standby.name, standby.host
        ),
    )
}

// Restart and clean.

/// No node of the selection is to restart.
pub fn nothing_to_restart(out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "nothing to restart")
}

/// After a roll that handed datanodes over: who serves which (`roles`, recorded at `path`).
pub fn roles_after_roll(roles: &Roles, path: &Path, out: &mut dyn Write) -> io::Result<()> {
    let serving: Vec<String> =
        roles.datanodes.iter().map(|(d, p)| format!("{} serves {d}", p.primary)).collect();
    writeln!(
        out,
        "roles: {} (recorded in {}); a switchover of a datanode, or this roll again, switches it \
         back",
        serving.join(", "),
        path.display()
    )
}

/// `clean` removed a file kept beside the inventory.
pub fn removed_file(path: &Path, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "removed {}", path.display())
}

/// `clean` could not remove a file kept beside the inventory.
pub fn not_removed_file(path: &Path, e: &io::Error, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "error: cannot remove {}: {e}; remove it by hand", path.display())
}

/// A result or a decision, for people and as a JSON note.
fn said(out: &mut dyn Write, line: String) -> io::Result<()> {
    super::events::note(None, None, &line);
    writeln!(out, "{line}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::executor::report::text;
    use crate::plan::fixtures;

    #[test]
    fn handovers_name_the_new_primary_its_address_and_the_times() {
        let inv = fixtures::postgresql();
        let (pg1, standby) = (inv.node("pg1").unwrap(), inv.node("pg1_standby").unwrap());
        let ms = Duration::from_millis;
        assert_eq!(
            text(|out| failed_over(&pg1.name, standby, "192.168.1.11", ms(1234), out)),
            "failover pg1: pg1_standby on pg-b (192.168.1.11:5432) is the primary; writes \
             accepted 1.23 s after failover started\n"
        );
        assert_eq!(
            text(|out| switched_over("pg1", standby, pg1, "192.168.1.11", ms(500), ms(2000), out)),
            "switchover pg1: pg1_standby on pg-b (192.168.1.11:5432) is the primary, pg1 streams \
             from it; writes accepted 0.50 s after switchover started (2.00 s in all)\n"
        );
        assert_eq!(
            text(|out| degraded(pg1, &standby.name, ms(10), out)),
            "degrade pg1: synchronous replication off on pg1 on pg-a until pg1_standby streams \
             again (then `pgxc-deploy apply` switches it back on); commits went through 0.01 s \
             after degrade started\n"
        );
        assert_eq!(
            text(|out| failing_over_from(&standby.name, &pg1.name, &pg1.name, out)),
            "pg1_standby serves pg1 since a switchover (roles file) and pg1 streams from it: \
             failing over to pg1\n"
        );
    }

    #[test]
    fn lock_refusal_lists_each_host() {
        let refused = [("h1".to_string(), "held by apply".to_string())];
        assert_eq!(
            text(|err| lock_refused("shop", &refused, err)),
            "error: cannot lock shop; nothing was changed:\n  h1: lock: held by apply\n"
        );
    }
}
