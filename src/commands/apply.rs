//! `pgxc-deploy apply INVENTORY` and `pgxc-deploy plan INVENTORY` (`--on`/`-x`: only for
//! the selected nodes): the operation is [`crate::ops::apply`].

use std::time::Instant;

use crate::cli::ApplyArgs;
use crate::ops::{Session, apply, cluster};

use super::{Error, Status, fleet};

pub async fn run(args: ApplyArgs, dry_run: bool, json: bool) -> Result<Status, Error> {
    let started = Instant::now();
    let (inv, roles) = cluster::load_readding(&args.inventory)?;
    // A selector that selects nothing is refused before anything is read or connected.
    let on = apply::selection(&inv, args.on.as_deref(), args.exclude.as_deref())?;
    let (local, layout) = apply::prepare(&inv).await?;
    let fleet = fleet::fleet(&inv, &args.ssh)?;
    let session = Session::with_layout(&args.inventory, inv, fleet, args.ssh.forks, layout).await?;
    let mode = apply::Mode { dry_run, json, on: on.as_ref() };
    let done = apply::apply(&session, roles, local, mode, started).await;
    session.close().await;
    done
}
