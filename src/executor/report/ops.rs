//! The operations on a running cluster: start/stop, restart, failover, switchover, degrade,
//! clean, and the cluster lock.

use std::io::{self, Write};

use crate::inventory::Role;
use crate::plan::clean::CleanPlan;

/// `== start datanodes`: the tier start or stop is working on.
pub fn tier_header(verb: &str, role: Role, out: &mut dyn Write) -> io::Result<()> {
    let role = if role == Role::Gtm { "gtm".to_string() } else { format!("{role}s") };
    writeln!(out, "== {verb} {role}")
}

/// A node start or stop did not run a step for: `  ok    pg1 on h1: already running`.
pub fn lifecycle_node(label: &str, mark: &str, what: &str, out: &mut dyn Write) -> io::Result<()> {
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
    writeln!(out, "  ok    restarted {what} ({:.1} s{down})", elapsed.as_secs_f64())?;
    out.flush()
}

/// A node that did not come back, with the step that failed and why.
pub fn not_back(
    what: &str,
    elapsed: std::time::Duration,
    err: &crate::executor::StepError,
    out: &mut dyn Write,
) -> io::Result<()> {
    writeln!(out, "  FAIL  {what} did not come back ({:.1} s)", elapsed.as_secs_f64())?;
    writeln!(out, "        {}: {}", err.step, err.message.replace('\n', "\n        "))?;
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
