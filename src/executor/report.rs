//! Renders outcomes for people (identical outputs folded into one block, as `clush -b` does) or
//! for programs (`--json`: one object per target and line). All command output goes through here.

use std::collections::HashMap;
use std::io::{self, Write};

use super::Outcome;
use crate::inventory::Role;
use crate::plan::clean::CleanPlan;
use crate::plan::health::{NodeStatus, PgxcNodeCheck};
use crate::plan::step::{Action, Plan, Step};
use crate::transport::ExitStatus;

/// Print outcomes folded by identical output. Failures also get a summary line on `err`.
pub fn human(outcomes: &[Outcome], out: &mut dyn Write, err: &mut dyn Write) -> io::Result<()> {
    // Group targets whose result is byte-for-byte the same, in order of first appearance.
    let mut groups: Vec<(&Outcome, Vec<&str>)> = Vec::new();
    let mut index: HashMap<GroupKey<'_>, usize> = HashMap::new();
    for o in outcomes {
        let key = GroupKey::of(o);
        match index.get(&key) {
            Some(&i) => groups[i].1.push(o.target.label()),
            None => {
                index.insert(key, groups.len());
                groups.push((o, vec![o.target.label()]));
            }
        }
    }
    for (first, labels) in &groups {
        let mut header = format!("{} ({})", fold(labels), labels.len());
        match &first.result {
            Ok(output) if !output.status.success() => {
                header.push_str(&format!(": {}", output.status))
            }
            Err(e) => header.push_str(&format!(": {} failed", e.step)),
            Ok(_) => {}
        }
        writeln!(out, "---------------\n{header}\n---------------")?;
        match &first.result {
            Ok(output) => {
                out.write_all(&output.stdout)?;
                if !output.stderr.is_empty() {
                    out.write_all(&output.stderr)?;
                }
                if output.stdout.last().is_some_and(|b| *b != b'\n')
                    || output.stderr.last().is_some_and(|b| *b != b'\n')
                {
                    writeln!(out)?;
                }
            }
            Err(e) => writeln!(out, "{}", e.message)?,
        }
    }
    out.flush()?;
    summary(outcomes, err)
}

/// One line naming every failed target, or nothing when all succeeded.
pub fn summary(outcomes: &[Outcome], err: &mut dyn Write) -> io::Result<()> {
    let failed: Vec<String> = outcomes
        .iter()
        .filter(|o| !o.ok())
        .map(|o| match &o.result {
            Ok(output) => format!("{} ({})", o.target, output.status),
            Err(e) => format!("{} ({} failed)", o.target, e.step),
        })
        .collect();
    if !failed.is_empty() {
        writeln!(
            err,
            "error: {} of {} targets failed: {}",
            failed.len(),
            outcomes.len(),
            failed.join(", ")
        )?;
    }
    Ok(())
}

/// One JSON object per target, one per line.
pub fn json(outcomes: &[Outcome], out: &mut dyn Write) -> io::Result<()> {
    for o in outcomes {
        let (stdout, stderr, exit_code, signal, error) = match &o.result {
            Ok(output) => {
                let (code, signal) = match &output.status {
                    ExitStatus::Code(c) => (Some(*c), None),
                    ExitStatus::Signal(s) => (None, Some(s.as_str())),
                };
                let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
                (Some(text(&output.stdout)), Some(text(&output.stderr)), code, signal, None)
            }
            Err(e) => {
                let error = serde_json::json!({ "step": e.step, "message": e.message });
                (None, None, None, None, Some(error))
            }
        };
        let line = serde_json::json!({
            "host": o.target.host,
            "node": o.target.node,
            "ok": o.ok(),
            "exit_code": exit_code,
            "signal": signal,
            "stdout": stdout,
            "stderr": stderr,
            "error": error,
            "elapsed_ms": o.elapsed.as_millis() as u64,
        });
        writeln!(out, "{line}")?;
    }
    out.flush()
}

/// A plan, phase by phase: one line per step, and a unified diff for every changed file.
pub fn plan(plan: &Plan, out: &mut dyn Write) -> io::Result<()> {
    for phase in &plan.phases {
        writeln!(
            out,
            "== {} ({} step{})",
            phase.name,
            phase.steps.len(),
            plural(phase.steps.len())
        )?;
        for step in &phase.steps {
            writeln!(out, "  {step}")?;
            if let Action::WriteFile { data_dir, file, old } = &step.action {
                let old = old.as_deref().unwrap_or("");
                let path = format!("{data_dir}/{}", file.name);
                let diff = similar::TextDiff::from_lines(old, &file.content);
                let text = diff.unified_diff().context_radius(2).header(&path, &path).to_string();
                for line in text.lines() {
                    writeln!(out, "    {line}")?;
                }
            }
        }
    }
    out.flush()
}

/// The inventory's warnings (a standby on its primary's host), on stderr before any work.
pub fn inventory_warnings(
    warnings: &[crate::inventory::Diagnostic],
    err: &mut dyn Write,
) -> io::Result<()> {
    for warning in warnings {
        writeln!(err, "{warning}")?;
    }
    Ok(())
}

/// A long step's live progress (a build's stage), on stderr as it happens.
pub fn build_stage(host: &str, stage: &str) {
    let _ = writeln!(io::stderr().lock(), "  ..    {host}: build: {stage}");
}

/// Something a running step found worth saying: `  ..    dn1 on h2: rewound with pg_rewind`.
pub fn note(host: &str, node: &str, what: &str) {
    let _ = writeln!(io::stderr().lock(), "  ..    {node} on {host}: {what}");
}

/// One finished step, as apply goes: `ok   dn1 on h2: start (1.2 s)`.
pub fn progress(step: &Step, outcome: &Outcome, err: &mut dyn Write) -> io::Result<()> {
    let secs = outcome.elapsed.as_secs_f64();
    match &outcome.result {
        Ok(_) => writeln!(err, "  ok    {step} ({secs:.1} s)"),
        Err(e) => writeln!(err, "  FAIL  {step} ({secs:.1} s)\n        {}: {}", e.step, e.message),
    }
}

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
                (Some(datanode), _, _) => format!("primary of {datanode} (roles file)"),
                (None, true, _) => format!("{} (fenced)", r.role),
                (None, false, Some(primary)) => format!("standby of {primary} (roles file)"),
                (None, false, None) => r.role.to_string(),
            },
            format!("{}:{}", r.address, r.port),
            r.state.to_string().lines().next().unwrap_or_default().to_string(),
            r.in_recovery.map_or_else(dash, |x| if x { "yes" } else { "no" }.to_string()),
            repl.map_or_else(dash, |x| match &x.sync_state {
                Some(sync) => format!("{} ({sync})", x.state),
                None => x.state.to_string(),
            }),
            repl.and_then(|x| x.lag_bytes).map_or_else(dash, |b| b.to_string()),
            r.pgxc_node.as_ref().map_or_else(dash, |c| pgxc_node_word(c).to_string()),
            if r.drift.is_empty() { dash() } else { r.drift.join(",") },
        ]);
    }
    // PostgreSQL clusters have no coordinators: no PGXC_NODE column.
    if rows.iter().all(|r| r.pgxc_node.is_none()) {
        for row in &mut table {
            row.remove(7);
        }
    }
    let widths: Vec<usize> = (0..table[0].len())
        .map(|c| table.iter().map(|row| row[c].len()).max().unwrap_or(0))
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

/// `status --json`: one object per node, one per line.
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

/// `== start datanodes`: the tier start or stop is working on.
pub fn tier_header(verb: &str, role: Role, out: &mut dyn Write) -> io::Result<()> {
    let role = if role == Role::Gtm { "gtm".to_string() } else { format!("{role}s") };
    writeln!(out, "== {verb} {role}")
}

/// Why an operation on one subject did not do its work (it ends the command, exit 1):
/// `error: failover dn1: ...`.
pub fn refused(operation: &str, subject: &str, why: &str, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "error: {operation} {subject}: {why}")
}

/// A risk the operation takes on, stated before it acts: `warning: ...`.
pub fn warning(what: &str, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "warning: {what}")
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

/// `== NAME`: a phase of a command.
pub fn phase_header(name: &str, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "== {name}")
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

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

#[derive(PartialEq, Eq, Hash)]
enum GroupKey<'a> {
    Output(&'a [u8], &'a [u8], &'a ExitStatus),
    Error(&'a str, &'a str),
}

impl<'a> GroupKey<'a> {
    fn of(o: &'a Outcome) -> GroupKey<'a> {
        match &o.result {
            Ok(out) => GroupKey::Output(&out.stdout, &out.stderr, &out.status),
            Err(e) => GroupKey::Error(&e.step, &e.message),
        }
    }
}

/// `h1,h2,h3,db1` -> `db1,h[1-3]` when the names fold as a node set, else joined as they are.
fn fold(labels: &[&str]) -> String {
    let joined = labels.join(",");
    match joined.parse::<nodeset::NodeSet>() {
        Ok(set) if labels.len() > 1 => set.to_string(),
        _ => joined,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::executor::{StepError, Target};
    use crate::plan::state::ReplicaState;
    use crate::transport::Output;
    use std::time::Duration;

    fn outcome(host: &str, node: Option<&str>, result: Result<Output, StepError>) -> Outcome {
        let target = Target { host: host.into(), node: node.map(Into::into) };
        Outcome { target, result, elapsed: Duration::from_millis(7) }
    }

    fn ok(stdout: &str, code: u32) -> Result<Output, StepError> {
        let status = ExitStatus::Code(code);
        Ok(Output { stdout: stdout.into(), stderr: vec![], status })
    }

    #[test]
    fn folds_identical_output_and_summarises_failures() {
        let outcomes = vec![
            outcome("h1", None, ok("same\n", 0)),
            outcome("h2", None, ok("other\n", 0)),
            outcome("h3", None, ok("same\n", 0)),
            outcome("h4", None, ok("", 3)),
            outcome(
                "h5",
                None,
                Err(StepError { step: "connect".into(), message: "h5: down".into() }),
            ),
        ];
        let (mut out, mut err) = (Vec::new(), Vec::new());
        human(&outcomes, &mut out, &mut err).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert_eq!(
            out,
            "---------------\nh[1,3] (2)\n---------------\nsame\n\
             ---------------\nh2 (1)\n---------------\nother\n\
             ---------------\nh4 (1): exit 3\n---------------\n\
             ---------------\nh5 (1): connect failed\n---------------\nh5: down\n"
        );
        assert_eq!(
            String::from_utf8(err).unwrap(),
            "error: 2 of 5 targets failed: h4 (exit 3), h5 (connect failed)\n"
        );
    }

    #[test]
    fn status_table_aligns_columns_and_lists_problems() {
        use crate::inventory::Role;
        use crate::plan::health::{NodeStatus, Replication, State};
        let row = |node: &str, role, state, replication, problems: Vec<String>| NodeStatus {
            node: node.into(),
            role,
            host: "h1".into(),
            address: "10.0.0.1".into(),
            port: 5432,
            data_dir: format!("/d/{node}"),
            state,
            start_time: None,
            in_recovery: Some(role == Role::Standby),
            replication,
            pgxc_node: None,
            drift: vec![],
            problems,
            promoted_for: None,
            fenced: false,
            follows: None,
        };
        let repl = Replication {
            primary: "pg1".into(),
            state: crate::plan::health::Link::Replica(ReplicaState::Streaming),
            sync_state: Some("async".into()),
            lag_bytes: Some(128),
        };
        let rows = vec![
            row("pg1", Role::Datanode, State::Down, None, vec!["not running".into()]),
            row("pg1_standby", Role::Standby, State::Running, Some(repl), vec![]),
        ];
        let mut out = Vec::new();
        status_table("shop", &rows, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "NODE         ROLE      ADDRESS        STATE    RECOVERY  REPLICATION        LAG  DRIFT\n\
             pg1          datanode  10.0.0.1:5432  down     no        -                  -    -\n\
             pg1_standby  standby   10.0.0.1:5432  running  yes       streaming (async)  128  -\n\
             \n\
             pg1 on h1: not running\n\
             shop: 2 nodes, 1 unhealthy\n"
        );
    }

    #[test]
    fn json_has_one_object_per_target() {
        let outcomes = vec![outcome("h1", Some("dn1"), ok("x", 0))];
        let mut out = Vec::new();
        json(&outcomes, &mut out).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["host"], "h1");
        assert_eq!(v["node"], "dn1");
        assert_eq!(v["ok"], true);
        assert_eq!(v["exit_code"], 0);
        assert_eq!(v["stdout"], "x");
        assert_eq!(v["error"], serde_json::Value::Null);
    }
}
