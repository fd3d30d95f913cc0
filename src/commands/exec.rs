//! `pgxc-deploy exec INVENTORY [--on SELECTOR] -- COMMAND...`: the operation is
//! [`crate::ops::exec`].

use crate::cli::ExecArgs;
use crate::executor::report;
use crate::ops::{cluster, exec};

use super::{Error, Status, fleet};

pub async fn run(args: ExecArgs) -> Result<Status, Error> {
    // The cluster as it runs now: `@datanodes` and `@standbys` select the current ones, and a
    // node's PGXC_ROLE is its current role.
    let (inv, roles) = cluster::load_now(&args.inventory)?;
    let targets = exec::targets(&inv, &roles, args.on.as_deref())?;
    let fleet = fleet::fleet(&inv, &args.ssh);
    let outcomes = exec::exec(&inv, &fleet, targets, &args.command, args.ssh.forks).await;
    fleet.close().await;
    let outcomes = outcomes?;
    let (mut out, mut err) = (std::io::stdout(), std::io::stderr());
    if args.json {
        report::json(&outcomes, &mut out)?;
        report::summary(&outcomes, &mut err)?;
    } else {
        report::human(&outcomes, &mut out, &mut err)?;
    }
    Ok(if outcomes.iter().all(|o| o.ok()) { Status::Ok } else { Status::Failed })
}
