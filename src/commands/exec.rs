//! `pgxc-deploy exec INVENTORY [--on SELECTOR] -- COMMAND...`: the operation is
//! [`crate::ops::exec`].

use crate::cli::ExecArgs;
use crate::executor::report;
use crate::ops::{cluster, exec};
use crate::transport::ExitStatus;

use super::{Error, Status, fleet};

pub async fn run(args: ExecArgs) -> Result<Status, Error> {
    // The cluster as it runs now: `@datanodes` and `@standbys` select the current ones, and a
    // node's PGXC_ROLE is its current role.
    let (inv, roles) = cluster::load_now(&args.inventory)?;
    let targets = exec::targets(&inv, &roles, args.on.as_deref(), args.exclude.as_deref())?;
    let fleet = fleet::fleet(&inv, &args.ssh)?;
    // pdsh's and clush's default: every line as it arrives, after its target's name.
    let stream = !args.json && !args.fold;
    let print = |target: &crate::executor::Target, stderr: bool, line: &[u8]| {
        // A closed pipe (`| head`) ends the output, not the command.
        let _ = report::stream_line(target.label(), stderr, line);
    };
    let lines: Option<&exec::OnLine<'_>> = if stream { Some(&print) } else { None };
    let command = &args.command;
    let outcomes = exec::exec(&inv, &fleet, targets, command, args.ssh.forks, lines).await;
    fleet.close().await;
    let outcomes = outcomes?;
    let (mut out, mut err) = (std::io::stdout(), std::io::stderr());
    if args.json {
        report::json(&outcomes, &mut out)?;
        report::summary(&outcomes, &mut err)?;
    } else if stream {
        report::stream_errors(&outcomes, &mut err)?;
        report::summary(&outcomes, &mut err)?;
    } else {
        report::human(&outcomes, &mut out, &mut err)?;
    }
    Ok(exit_status(&outcomes))
}

/// The remote command's exit status, the highest of them with several targets (`clush -S`);
/// 255 for a target where it has none (no connection, killed by a signal), as `ssh` exits.
fn exit_status(outcomes: &[crate::executor::Outcome]) -> Status {
    let code = |o: &crate::executor::Outcome| match &o.result {
        Ok(out) => match out.status {
            ExitStatus::Code(code) => u8::try_from(code).unwrap_or(255),
            ExitStatus::Signal(_) => 255,
        },
        Err(_) => 255,
    };
    match outcomes.iter().map(code).max() {
        None | Some(0) => Status::Ok,
        Some(code) => Status::Exit(code),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::executor::{Outcome, StepError, Target};
    use crate::transport::Output;

    fn outcome(result: Result<ExitStatus, &str>) -> Outcome {
        let result = result
            .map(|status| Output { stdout: vec![], stderr: vec![], status })
            .map_err(|m| StepError::found("run", m.to_string()));
        let target = Target { host: "h".into(), node: None };
        Outcome { target, result, elapsed: std::time::Duration::ZERO }
    }

    #[test]
    fn exec_exits_with_the_highest_remote_status_and_255_without_one() {
        let ok = || outcome(Ok(ExitStatus::Code(0)));
        assert_eq!(exit_status(&[ok(), ok()]), Status::Ok);
        assert_eq!(exit_status(&[outcome(Ok(ExitStatus::Code(3)))]).code(), 3);
        let mixed = [ok(), outcome(Ok(ExitStatus::Code(7))), outcome(Ok(ExitStatus::Code(2)))];
        assert_eq!(exit_status(&mixed).code(), 7);
        assert_eq!(exit_status(&[ok(), outcome(Err("connect"))]).code(), 255);
        assert_eq!(exit_status(&[outcome(Ok(ExitStatus::Signal("KILL".into())))]).code(), 255);
    }
}
