//! One module per subcommand. Each loads what it needs (inventory), picks targets, runs the work
//! through [`crate::executor`], and reports. [`run`] dispatches; `main` maps its result to an
//! exit status: 0 all good, 1 some target failed, 2 invalid inventory or usage, 130 cut
//! short by Ctrl-C.
//!
//! Output goes through the unlocked `std::io::stdout()` / `stderr()` handles, which lock per
//! write: a lock held across an `.await` deadlocks the runtime once tracing (`-vv`) writes to
//! stderr from another task.

mod apply;
mod clean;
mod completions;
mod degrade;
mod exec;
mod failover;
mod fleet;
mod lab;
mod lifecycle;
mod nodes;
mod remove;
mod restart;
mod status;
mod switchover;
mod validate;

use crate::cli::{Cli, Command};
use crate::executor::report;
pub use crate::ops::{Error, Status};

/// Run the subcommand the user asked for.
pub async fn run(cli: Cli) -> Result<Status, Error> {
    let started = std::time::Instant::now();
    let reporting = cli.reporting();
    let events = reporting.and_then(|(name, json)| json.then_some(name));
    if events.is_some() {
        report::json_events();
    }
    if reporting.is_some() {
        report::live_line(cli.verbose > 0 || events.is_some());
    }
    // Ctrl-C is how `status --watch` ends: its status is the last refresh's.
    let watch = matches!(&cli.command, Command::Status(_));
    // Work that Ctrl-C kept from starting was reported as not started.
    let done = dispatch(cli).await.map(|status| match status {
        Status::Failed if !watch && crate::interrupt::interrupted() => Status::Interrupted,
        status => status,
    });
    if let Some(command) = events {
        let (code, error) = match &done {
            Ok(status) => (status.code(), None),
            Err(e) => (e.exit_status().code(), Some(crate::errors::chain(e))),
        };
        report::json_summary(command, code, error.as_deref(), started.elapsed());
    }
    done
}

async fn dispatch(cli: Cli) -> Result<Status, Error> {
    match cli.command {
        Command::Exec(args) => exec::run(args).await,
        Command::Apply(args) => apply::run(args, false, false).await,
        Command::Plan(args) => {
            let json = args.apply.json;
            let status = apply::run(args.apply, true, json).await?;
            Ok(match status {
                Status::Pending if !args.detailed_exitcode => Status::Ok,
                status => status,
            })
        }
        Command::Validate(args) => validate::run(args),
        Command::Nodes(args) => nodes::run(args),
        Command::Completions { shell } => completions::completions(shell),
        Command::Man => completions::man(),
        Command::Status(args) => status::run(args).await,
        Command::Start(args) => lifecycle::start(args).await,
        Command::Stop(args) => lifecycle::stop(args).await,
        Command::Restart(args) => restart::run(args).await,
        Command::Clean(args) => clean::run(args).await,
        Command::Failover(args) => failover::run(args).await,
        Command::Degrade(args) => degrade::run(args).await,
        Command::Switchover(args) => switchover::run(args).await,
        Command::Remove(args) => remove::run(args).await,
        Command::Lab(cmd) => lab::run(cmd).await,
    }
}

/// Whether to go on with `what` (a destructive operation): `--yes`, or `y`/`yes` answered on
/// the terminal. Without a terminal and without `--yes`, a usage error that says so; a `no`
/// is one too: nothing was changed.
fn confirm(what: &str, yes: bool) -> Result<(), Error> {
    use std::io::IsTerminal;
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(Error::Usage(format!(
            "{what}: confirm with --yes (there is no terminal to ask on); nothing was changed"
        )));
    }
    report::ask(&format!("{what}?"), &mut std::io::stderr())?;
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    match answer.trim().to_ascii_lowercase().as_str() {
        "y" | "yes" => Ok(()),
        _ => Err(Error::Usage(format!("{what}: not confirmed; nothing was changed"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errors::chain;
    use crate::inventory::roles::{self, Error as RolesError};

    #[test]
    fn a_file_beside_the_inventory_that_cannot_be_written_is_a_failure_not_bad_usage() {
        let dir = tempfile::tempdir().unwrap();
        let inventory = dir.path().join("lab.toml");
        std::fs::write(dir.path().join("lab.roles.toml"), "datanodes = 3").unwrap();
        let bad = roles::load(&inventory).unwrap_err();
        assert!(matches!(bad, RolesError::Parse { .. }));
        assert_eq!(Error::from(bad).exit_status(), Status::Invalid);

        let unwritable = RolesError::Write {
            path: dir.path().join("lab.roles.toml"),
            source: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        };
        let err =
            Error::Unrecorded { done: "dn1_standby serves dn1 now".into(), source: unwritable };
        assert_eq!(err.exit_status(), Status::Failed);
        assert_eq!(
            chain(&err),
            format!(
                "dn1_standby serves dn1 now, but the roles file does not say so: cannot write {}: \
                 permission denied",
                dir.path().join("lab.roles.toml").display()
            )
        );
    }
}
