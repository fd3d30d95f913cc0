//! Renders outcomes for people (identical outputs folded into one block, as `clush -b` does) or
//! for programs (`--json`: one object per target and line). All command output goes through here:
//! the operations and commands hand typed values (nodes, counts, durations, paths) to a function
//! here, which writes the line to the stream it is given.
//!
//! - `mod.rs`: outcomes of steps, plans, and the lines every operation shares;
//! - `apply.rs`: apply's and plan's phases, interruptions and verification;
//! - `lab.rs`: `pgxc-deploy lab`'s tables and counts;
//! - `ops.rs`: start/stop, restart, failover, switchover, degrade, clean, the lock;
//! - `status.rs`: the status table, `--json` and `--watch`.
//!
//! Its files are one module to callers: `report::X` whichever file `X` is in.

use std::collections::HashMap;
use std::io::{self, Write};

use super::Outcome;
use crate::plan::step::{Action, Plan, Step};
use crate::transport::ExitStatus;

mod apply;
mod events;
mod lab;
mod live;
mod ops;
mod status;

pub use apply::*;
pub use events::{json_events, json_summary, people};
pub use lab::*;
pub use live::{Lines, Running, eta, live_line, running, stderr};
pub use ops::*;
pub use status::*;

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
            Err(e) => writeln!(out, "{}", e.message())?,
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
                let error = serde_json::json!({ "step": e.step, "message": e.message() });
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
    let _ = writeln!(stderr(), "  ..    {host}: build: {stage}");
    events::note(Some(host), None, &format!("build: {stage}"));
}

/// Something a running step found worth saying: `  ..    dn1 on h2: rewound with pg_rewind`.
pub fn note(host: &str, node: &str, what: &str) {
    let _ = writeln!(stderr(), "  ..    {node} on {host}: {what}");
    events::note(Some(host), Some(node), what);
}

/// One finished step, as apply goes: `ok   dn1 on h2: start (1.2 s)`.
pub fn progress(step: &Step, outcome: &Outcome, err: &mut dyn Write) -> io::Result<()> {
    events::step(step, outcome);
    let secs = outcome.elapsed.as_secs_f64();
    match &outcome.result {
        Ok(_) => writeln!(err, "  ok    {step} ({secs:.1} s)"),
        Err(e) => {
            writeln!(err, "  FAIL  {step} ({secs:.1} s)\n        {}: {}", e.step, e.message())
        }
    }
}

/// Why an operation on one subject did not do its work (it ends the command, exit 1):
/// `error: failover dn1: ...`.
pub fn refused(operation: &str, subject: &str, why: &str, out: &mut dyn Write) -> io::Result<()> {
    events::note(None, None, &format!("error: {operation} {subject}: {why}"));
    writeln!(out, "error: {operation} {subject}: {why}")
}

/// A risk the operation takes on, stated before it acts: `warning: ...`.
pub fn warning(what: &str, out: &mut dyn Write) -> io::Result<()> {
    events::note(None, None, &format!("warning: {what}"));
    writeln!(out, "warning: {what}")
}

/// One line a target printed, as it arrived: `LABEL: line` on stdout (its stderr's on
/// stderr). Each line is written at once, so lines of targets running together do not mix.
pub fn stream_line(label: &str, stderr: bool, line: &[u8]) -> io::Result<()> {
    let mut text = Vec::with_capacity(label.len() + line.len() + 3);
    text.extend_from_slice(label.as_bytes());
    text.extend_from_slice(b": ");
    text.extend_from_slice(line);
    text.push(b'\n');
    if stderr {
        let mut err = io::stderr().lock();
        err.write_all(&text)?;
        err.flush()
    } else {
        let mut out = io::stdout().lock();
        out.write_all(&text)?;
        out.flush()
    }
}

/// After streamed output: each target that did not run its command, and why, on stderr.
pub fn stream_errors(outcomes: &[Outcome], err: &mut dyn Write) -> io::Result<()> {
    for o in outcomes {
        if let Err(e) = &o.result {
            writeln!(err, "{}: {} failed: {}", o.target.label(), e.step, e.message())?;
        }
    }
    Ok(())
}

/// Generated text (a completion script, a man page), as it is.
pub fn generated(text: &str, out: &mut dyn Write) -> io::Result<()> {
    out.write_all(text.as_bytes())?;
    out.flush()
}

/// A question on the terminal, answered on its own line: `QUESTION [y/N] `.
pub fn ask(question: &str, err: &mut dyn Write) -> io::Result<()> {
    write!(err, "{question} [y/N] ")?;
    err.flush()
}

/// `== NAME`: a phase of a command.
pub fn phase_header(name: &str, out: &mut dyn Write) -> io::Result<()> {
    events::phase(name);
    writeln!(out, "== {name}")
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

#[derive(PartialEq, Eq, Hash)]
enum GroupKey<'a> {
    Output(&'a [u8], &'a [u8], &'a ExitStatus),
    /// A failed step and its rendered message.
    Error(&'a str, String),
}

impl<'a> GroupKey<'a> {
    fn of(o: &'a Outcome) -> GroupKey<'a> {
        match &o.result {
            Ok(out) => GroupKey::Output(&out.stdout, &out.stderr, &out.status),
            Err(e) => GroupKey::Error(&e.step, e.message()),
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

/// What `write` writes, as text (for tests of the lines).
#[cfg(test)]
pub(crate) fn text(write: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> String {
    let mut out = Vec::new();
    write(&mut out).unwrap();
    String::from_utf8(out).unwrap()
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
            outcome("h5", None, Err(StepError::found("connect", "h5: down"))),
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
