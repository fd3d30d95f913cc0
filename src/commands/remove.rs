//! `pgxc-deploy remove INVENTORY COORDINATOR`: the operation is [`crate::ops::remove`].

use std::time::Instant;

use crate::cli::RemoveArgs;
use crate::inventory::roles;
use crate::ops::{Session, cluster, remove};

use super::{Error, Status, fleet};

pub async fn run(args: RemoveArgs) -> Result<Status, Error> {
    let started = Instant::now();
    let inv = cluster::load(&args.inventory)?;
    remove::precheck(&inv, &roles::load(&args.inventory)?, &args.node)?;
    let fleet = fleet::fleet(&inv, &args.ssh)?;
    let session = Session::open(&args.inventory, inv, fleet, args.ssh.forks).await?;
    let done =
        remove::remove(&session, &args.node, started, &mut crate::executor::report::people()).await;
    session.close().await;
    done
}
