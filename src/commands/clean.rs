//! `pgxc-deploy clean INVENTORY [--yes]`: the operation is [`crate::ops::clean`].

use std::time::Instant;

use crate::cli::CleanArgs;
use crate::ops::{Session, clean, cluster};

use super::{Error, Status, fleet};

pub async fn run(args: CleanArgs) -> Result<Status, Error> {
    let started = Instant::now();
    let inv = cluster::load(&args.inventory)?;
    let fleet = fleet::fleet(&inv, &args.ssh)?;
    let session = Session::open(&args.inventory, inv, fleet, args.ssh.forks).await?;
    let out = &mut crate::executor::report::people();
    let mut done = clean::clean(&session, args.yes, started, out).await;
    // On a terminal, the listing is followed by the question (patronictl's habit).
    if !args.yes
        && std::io::IsTerminal::is_terminal(&std::io::stdin())
        && matches!(done, Ok(Status::Ok))
    {
        done = match super::confirm("delete the data directories listed above", false) {
            Ok(()) => clean::clean(&session, true, started, out).await,
            Err(e) => Err(e),
        };
    }
    session.close().await;
    done
}
