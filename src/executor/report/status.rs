//! `status`: the table for people, `--json` lines, the `--watch` header, heals.

use std::io::{self, Write};

use super::plural;
use crate::plan::health::{NodeStatus, PgxcNodeCheck};

/// Before each refresh of `status --watch`: a cleared screen on a terminal, else a line with
/// the time (seconds since the epoch), so a log of the output reads as a sequence.
pub fn watch_header(terminal: bool, out: &mut dyn Write) -> io::Result<()> {
    if terminal {
        return write!(out, "\x1b[H\x1b[2J");
    }
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    writeln!(out, "== status at {} (unix time)", now.map_or(0, |d| d.as_secs()))
}

/// `status` for people: a table, one row per node, then what is wrong with each unhealthy node
/// and a summary line.
pub fn status_table(cluster: &str, rows: &[NodeStatus], out: &mut dyn Write) -> io::Result<()> {
    let header =
        ["NODE", "ROLE", "ADDRESS", "STATE", "RECOVERY", "REPLICATION", "LAG", "PGXC_NODE"];
    let mut table: Vec<Vec<String>> =
        vec![header.iter().map(|h| h.to_string()).chain(["DRIFT".into()]).collect()];
    for r in rows {
        let dash = || "-".to_string();
        let repl = r.replication.as_ref();
        table.push(vec![
            r.node.clone(),
            match (&r.promoted_for, r.fenced, &r.follows) {
                (Some(_), _, _) if r.role.is_gtm_kind() => "gtm (roles file)".to_string(),
                (Some(datanode), _, _) => format!("primary of {datanode} (roles file)"),
                (None, true, _) => format!("{} (fenced)", r.role),
                (None, false, Some(active)) if r.role.is_gtm_kind() => {
                    format!("gtm_standby of {active} (roles file)")
                }
                (None, false, Some(primary)) => format!("standby of {primary} (roles file)"),
                (None, false, None) => r.role.to_string(),
            },
            format!("{}:{}", r.address, r.port),
            clip(r.state.to_string().lines().next().unwrap_or_default()),
            r.in_recovery.map_or_else(dash, |x| if x { "yes" } else { "no" }.to_string()),
            repl.map_or_else(dash, |x| match &x.sync_state {
                Some(sync) => format!("{} ({sync})", x.state),
                None => x.state.to_string(),
            }),
            repl.and_then(|x| x.lag_bytes).map_or_else(dash, |b| b.to_string()),
            r.pgxc_node.as_ref().map_or_else(dash, |c| pgxc_node_word(c).to_string()),
            if r.drift.is_empty() { dash() } else { clip(&r.drift.join(",")) },
        ]);
    }
    // PostgreSQL clusters have no coordinators: no PGXC_NODE column.
    if rows.iter().all(|r| r.pgxc_node.is_none()) {
        for row in &mut table {
            row.remove(7);
        }
    }
    let widths: Vec<usize> = (0..table[0].len())
        .map(|c| table.iter().map(|row| row[c].chars().count()).max().unwrap_or(0))
        .collect();
    for row in &table {
        let cells: Vec<String> =
            row.iter().zip(&widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
        writeln!(out, "{}", cells.join("  ").trim_end())?;
    }
    let unhealthy: Vec<&NodeStatus> = rows.iter().filter(|r| !r.healthy()).collect();
    if !unhealthy.is_empty() {
        writeln!(out)?;
    }
    for r in &unhealthy {
        for p in &r.problems {
            writeln!(out, "{} on {}: {p}", r.node, r.host)?;
        }
    }
    let drifted = rows.iter().filter(|r| !r.drift.is_empty()).count();
    writeln!(
        out,
        "{cluster}: {} node{}, {} unhealthy{}",
        rows.len(),
        plural(rows.len()),
        unhealthy.len(),
        if drifted > 0 {
            format!(", {drifted} with config drift (`pgxc-deploy plan` shows the diff)")
        } else {
            String::new()
        }
    )?;
    out.flush()
}

/// A cell's text, cut at [`CELL_MAX`] characters (`…` says so): the columns stay readable
/// when a state is a long error, whose whole text is under the table and in `--json`.
fn clip(text: &str) -> String {
    if text.chars().count() <= CELL_MAX {
        return text.to_string();
    }
    let cut: String = text.chars().take(CELL_MAX - 1).collect();
    format!("{cut}…")
}

/// The widest a state or drift cell gets in the status table.
const CELL_MAX: usize = 40;

/// `status --json`: one object per node, one per line.
/// The coordinators `remove` took out (the roles file): one line each under the table, or one
/// JSON line each (`"removed": true`).
pub fn removed(
    removed: &std::collections::BTreeMap<String, crate::inventory::roles::Removed>,
    json: bool,
    out: &mut dyn Write,
) -> io::Result<()> {
    for (node, r) in removed {
        if json {
            let line = serde_json::json!({
                "node": node,
                "role": "coordinator",
                "removed": true,
                "removed_at_unix": r.removed_at_unix,
                "healthy": true,
            });
            writeln!(out, "{line}")?;
        } else {
            writeln!(
                out,
                "{node}: removed by `pgxc-deploy remove` (roles file): out of every other \
                 coordinator's pgxc_node and left out of every command but apply, which re-adds it \
                 from a running coordinator's catalog once its host answers"
            )?;
        }
    }
    Ok(())
}

pub fn status_json(rows: &[NodeStatus], out: &mut dyn Write) -> io::Result<()> {
    for r in rows {
        let replication = r.replication.as_ref().map(|x| {
            serde_json::json!({
                "primary": x.primary,
                "state": x.state.to_string(),
                "sync_state": x.sync_state,
                "lag_bytes": x.lag_bytes,
            })
        });
        let differences = match &r.pgxc_node {
            Some(PgxcNodeCheck::Differs(d)) => d.clone(),
            _ => Vec::new(),
        };
        let line = serde_json::json!({
            "node": r.node,
            "role": r.role.to_string(),
            "host": r.host,
            "address": r.address,
            "port": r.port,
            "state": r.state.to_string(),
            "running": r.state.process(),
            "accepting_connections": r.state.accepting(),
            "in_recovery": r.in_recovery,
            "start_time": r.start_time,
            "replication": replication,
            "pgxc_node": r.pgxc_node.as_ref().map(pgxc_node_word),
            "pgxc_node_differences": differences,
            "drift": r.drift,
            "problems": r.problems,
            "healthy": r.healthy(),
            "promoted_for": r.promoted_for,
            "fenced": r.fenced,
            "follows": r.follows,
        });
        writeln!(out, "{line}")?;
    }
    out.flush()
}

fn pgxc_node_word(check: &PgxcNodeCheck) -> &'static str {
    match check {
        PgxcNodeCheck::Matches => "matches",
        PgxcNodeCheck::Differs(_) => "differs",
        PgxcNodeCheck::Unknown => "unknown",
    }
}

/// What a heal did, or why it failed, as it happens: `heal: ...`.
pub fn healed(what: &str, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "heal: {what}")
}

/// Below the table of `status --watch --heal` on a terminal: the last heals, oldest first.
pub fn heal_log(log: &[String], out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "\nhealed (unix time: what):")?;
    for line in log {
        writeln!(out, "  {line}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_cell_is_clipped_and_says_so() {
        assert_eq!(clip("running"), "running");
        let long = "unreachable: connect: cannot connect to 10.0.0.1:22: Connection refused";
        let cut = clip(long);
        assert_eq!(cut.chars().count(), CELL_MAX);
        assert!(cut.ends_with('…') && long.starts_with(cut.trim_end_matches('…')));
    }
}
