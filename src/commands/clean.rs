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
    let done = clean::clean(&session, args.yes, started, &mut std::io::stdout()).await;
    session.close().await;
    done
}
