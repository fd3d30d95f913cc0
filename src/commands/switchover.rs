//! `pgxc-deploy switchover INVENTORY NODE`: the operation is [`crate::ops::switchover`].

use std::time::Instant;

use crate::cli::PairArgs;
use crate::ops::{Session, cluster, switchover};

use super::{Error, Status, fleet};

pub async fn run(args: PairArgs) -> Result<Status, Error> {
    let started = Instant::now();
    let inv = cluster::load(&args.inventory)?;
    switchover::precheck(&args.inventory, &inv, &args.node)?;
    let fleet = fleet::fleet(&inv, &args.ssh);
    let session = Session::open(&args.inventory, inv, fleet, args.ssh.forks).await?;
    let done = switchover::switchover(&session, &args.node, started, &mut std::io::stdout()).await;
    session.close().await;
    done
}
