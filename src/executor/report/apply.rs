//! `apply` and `plan`: the plan's summary, each phase as it starts, what stopped it, and the
//! verification from the servers at the end.

use std::io::{self, Write};
use std::path::Path;
use std::time::Duration;

use crate::executor::StepError;
use crate::plan::step::{Phase, Plan};

/// The last line of `plan`: what apply would do, or that the cluster matches its inventory
/// (`left_out`: the steps `--on` left out; some: only the selection matches).
pub fn plan_summary(
    plan: &Plan,
    cluster: &str,
    left_out: usize,
    out: &mut dyn Write,
) -> io::Result<()> {
    if plan.is_empty() && left_out > 0 {
        return writeln!(
            out,
            "nothing to do on the selection (--on); {cluster} has {left_out} step(s) pending on \
             other nodes"
        );
    }
    if plan.is_empty() {
        return writeln!(out, "nothing to do: {cluster} matches its inventory");
    }
    let (steps, phases) = (plan.step_count(), plan.phases.len());
    writeln!(out, "apply would run {steps} step(s) in {phases} phase(s); nothing was changed")
}

/// `nodes`: one name per line.
pub fn names(names: &[String], out: &mut dyn Write) -> io::Result<()> {
    for name in names {
        writeln!(out, "{name}")?;
    }
    Ok(())
}

/// `validate`'s line for a valid inventory.
pub fn valid(path: &Path, hosts: usize, nodes: usize, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "{}: valid ({hosts} host(s), {nodes} node(s))", path.display())
}

/// `plan --json`: one object per step (`phase`, `host`, `node`, `action`, `text`, and for a
/// file's change its `diff`), then `{"summary": ...}` (docs/json.md); `limited_out` and
/// `unlimited`: what `--on` left out, and kept although outside the selection.
pub fn plan_json(
    plan: &Plan,
    cluster: &str,
    unreachable: &[String],
    limited_out: usize,
    unlimited: &[String],
    out: &mut dyn Write,
) -> io::Result<()> {
    for phase in &plan.phases {
        for step in &phase.steps {
            let mut line = serde_json::json!({
                "phase": phase.name,
                "host": step.host,
                "node": step.node.as_ref().map(|n| n.to_string()),
                "action": step.action.kind(),
                "text": step.to_string(),
            });
            if let crate::plan::step::Action::WriteFile { data_dir, file, old } = &step.action {
                let path = format!("{data_dir}/{}", file.name);
                let diff =
                    similar::TextDiff::from_lines(old.as_deref().unwrap_or(""), &file.content);
                line["diff"] = diff.unified_diff().header(&path, &path).to_string().into();
            }
            writeln!(out, "{line}")?;
        }
    }
    let summary = serde_json::json!({
        "summary": {
            "cluster": cluster,
            "steps": plan.step_count(),
            "phases": plan.phases.len(),
            "pending": !plan.is_empty(),
            "refused": plan.refused,
            "unreachable": unreachable,
            "limited_out": limited_out,
            "unlimited": unlimited,
        }
    });
    writeln!(out, "{summary}")?;
    out.flush()
}

/// What `--on` did to the plan: the steps kept although outside the selection, each with why,
/// then how many it left out and whose (`elsewhere`).
pub fn plan_limited(
    unlimited: &[String],
    left_out: usize,
    elsewhere: &[String],
    out: &mut dyn Write,
) -> io::Result<()> {
    if !unlimited.is_empty() {
        writeln!(out, "kept although outside --on:")?;
        for why in unlimited {
            writeln!(out, "  {why}")?;
        }
    }
    if left_out > 0 {
        writeln!(out, "{left_out} step(s) on other nodes left out (--on): {}", few(elsewhere))?;
    }
    Ok(())
}

/// Why apply must not run (nothing was changed), each a sentence that says what to do.
pub fn plan_refused(refused: &[String], err: &mut dyn Write) -> io::Result<()> {
    writeln!(err, "error: apply refuses to run; nothing was changed:")?;
    for why in refused {
        writeln!(err, "  {why}")?;
    }
    Ok(())
}

/// Hosts apply could not probe (nothing was changed), with each one's failed step.
pub fn unprobed(failed: &[(String, StepError)], err: &mut dyn Write) -> io::Result<()> {
    let n = failed.len();
    writeln!(err, "error: cannot read the state of {n} host(s); nothing was changed:")?;
    for (host, e) in failed {
        writeln!(err, "  {host}: {}: {}", e.step, e.message())?;
    }
    Ok(())
}

/// Hosts plan could not probe: named first; their steps are left out.
pub fn unprobed_plan(failed: &[(String, StepError)], err: &mut dyn Write) -> io::Result<()> {
    let n = failed.len();
    writeln!(err, "warning: cannot read the state of {n} host(s); their steps are not shown:")?;
    for (host, e) in failed {
        writeln!(err, "  {host}: {}: {}", e.step, e.message())?;
    }
    Ok(())
}

/// plan's last line when some hosts did not answer.
pub fn plan_partial(unprobed: &[String], out: &mut dyn Write) -> io::Result<()> {
    writeln!(
        out,
        "partial plan: the steps of {} are not shown (unreachable); apply needs every host",
        unprobed.join(", ")
    )
}

/// The cluster already matches the inventory at `path`: apply's only line.
pub fn nothing_to_apply(
    cluster: &str,
    path: &Path,
    elapsed: Duration,
    out: &mut dyn Write,
) -> io::Result<()> {
    let (path, secs) = (path.display(), elapsed.as_secs_f64());
    writeln!(out, "nothing to do: {cluster} already matches {path} ({secs:.2} s)")
}

/// Under `--on`, nothing to do on the selection: apply's only line, with what is pending
/// elsewhere.
pub fn nothing_to_apply_on(
    path: &Path,
    left_out: usize,
    elsewhere: &[String],
    elapsed: Duration,
    out: &mut dyn Write,
) -> io::Result<()> {
    let (path, secs) = (path.display(), elapsed.as_secs_f64());
    writeln!(
        out,
        "nothing to do on the selection (--on): it matches {path}; {left_out} step(s) on other \
         nodes pending ({}): apply without --on ({secs:.2} s)",
        few(elsewhere)
    )
}

/// Apply's first line: how many steps in how many phases it is about to run.
pub fn apply_start(plan: &Plan, err: &mut dyn Write) -> io::Result<()> {
    writeln!(err, "apply: {} step(s) in {} phase(s)", plan.step_count(), plan.phases.len())
}

/// The prebuilt install at `path` changed between the plan and its shipping.
pub fn install_changed(path: &Path, err: &mut dyn Write) -> io::Result<()> {
    writeln!(
        err,
        "error: the install at {} changed while apply ran (its fingerprint is not the one the \
         plan was made with); nothing more was changed: run apply again",
        path.display()
    )
}

/// The built install could not be fetched from the build host.
pub fn fetch_failed(build_host: &str, e: &StepError, err: &mut dyn Write) -> io::Result<()> {
    writeln!(err, "error: {build_host}: {}: {}", e.step, e.message())
}

/// Ctrl-C cut phase `name` short; `left`: the phases after it, not run.
pub fn phase_interrupted(name: &str, left: &[Phase], err: &mut dyn Write) -> io::Result<()> {
    let later = match left {
        [] => String::new(),
        _ => format!("; {} later phase(s) not run: {}", left.len(), phase_names(left)),
    };
    writeln!(
        err,
        "interrupted: phase `{name}` was cut short (its steps marked `not started` did not \
         run){later}. Run apply again: it resumes from what is done."
    )
}

/// Phase `name` failed, so apply stops before the next.
pub fn phase_failed(name: &str, err: &mut dyn Write) -> io::Result<()> {
    writeln!(
        err,
        "error: phase `{name}` failed; later phases were not run. Fix the cause and run apply \
         again: it resumes from what is done."
    )
}

/// Ctrl-C came between phases: `left` (none: only the verification) will not run.
pub fn interrupted_before(left: &[Phase], err: &mut dyn Write) -> io::Result<()> {
    let what = match left {
        [] => "the verification was not run".to_string(),
        _ => format!("{} phase(s) not run: {}", left.len(), phase_names(left)),
    };
    writeln!(err, "interrupted: {what}. Run apply again: it resumes from what is done.")
}

/// Hosts the verification could not probe, one line each.
pub fn verify_unprobed(failed: &[(String, StepError)], err: &mut dyn Write) -> io::Result<()> {
    for (host, e) in failed {
        writeln!(err, "error: verify: {host}: {}: {}", e.step, e.message())?;
    }
    Ok(())
}

/// One thing the verification found wrong with the cluster.
pub fn verify_problem(problem: &str, err: &mut dyn Write) -> io::Result<()> {
    writeln!(err, "error: verify: {problem}")
}

/// Apply's last line: `steps` ran and `cluster` is verified up.
pub fn applied(
    steps: usize,
    cluster: &str,
    elapsed: Duration,
    out: &mut dyn Write,
) -> io::Result<()> {
    let secs = elapsed.as_secs_f64();
    writeln!(out, "applied {steps} step(s): {cluster} is up ({secs:.1} s)")
}

/// Apply's last line under `--on`: `steps` ran, the selection is verified up, and
/// `left_out` steps on `elsewhere` are still to run.
pub fn applied_on(
    steps: usize,
    cluster: &str,
    left_out: usize,
    elsewhere: &[String],
    elapsed: Duration,
    out: &mut dyn Write,
) -> io::Result<()> {
    let secs = elapsed.as_secs_f64();
    writeln!(
        out,
        "applied {steps} step(s): the selection (--on) of {cluster} is up ({secs:.1} s); \
         {left_out} step(s) on other nodes pending ({}): apply without --on",
        few(elsewhere)
    )
}

/// `a, b, c`, or the first few of many and how many more.
fn few(names: &[String]) -> String {
    const SHOWN: usize = 8;
    match names.len() {
        n if n > SHOWN => format!("{}, and {} more", names[..SHOWN].join(", "), n - SHOWN),
        _ => names.join(", "),
    }
}

/// The roles file at `path` records that the old primaries `names` were rebuilt as standbys.
pub fn rebuilt(path: &Path, names: &[&str], out: &mut dyn Write) -> io::Result<()> {
    let (path, names) = (path.display(), names.join(", "));
    writeln!(
        out,
        "{path}: rebuilt {names} (old primaries as standbys of the nodes that took their place, \
         removed coordinators from a running coordinator's catalog)"
    )
}

/// `a, b`: the names of `phases`.
fn phase_names(phases: &[Phase]) -> String {
    phases.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::executor::report::text;

    #[test]
    fn interruptions_name_the_phases_not_run() {
        let phases = [
            Phase { name: "configure".into(), steps: vec![] },
            Phase { name: "start".into(), steps: vec![] },
        ];
        assert_eq!(
            text(|err| phase_interrupted("install", &phases, err)),
            "interrupted: phase `install` was cut short (its steps marked `not started` did not \
             run); 2 later phase(s) not run: configure, start. Run apply again: it resumes from \
             what is done.\n"
        );
        assert_eq!(
            text(|err| phase_interrupted("start", &[], err)),
            "interrupted: phase `start` was cut short (its steps marked `not started` did not \
             run). Run apply again: it resumes from what is done.\n"
        );
        assert_eq!(
            text(|err| interrupted_before(&[], err)),
            "interrupted: the verification was not run. Run apply again: it resumes from what \
             is done.\n"
        );
        assert_eq!(
            text(|err| interrupted_before(&phases[1..], err)),
            "interrupted: 1 phase(s) not run: start. Run apply again: it resumes from what is \
             done.\n"
        );
    }

    #[test]
    fn plan_summary_says_whether_anything_would_run() {
        let empty = Plan::default();
        assert_eq!(
            text(|out| plan_summary(&empty, "shop", 0, out)),
            "nothing to do: shop matches its inventory\n"
        );
        assert_eq!(
            text(|out| plan_summary(&empty, "shop", 3, out)),
            "nothing to do on the selection (--on); shop has 3 step(s) pending on other nodes\n"
        );
        assert_eq!(
            text(|out| applied(3, "shop", Duration::from_millis(2050), out)),
            "applied 3 step(s): shop is up (2.0 s)\n"
        );
    }
}
