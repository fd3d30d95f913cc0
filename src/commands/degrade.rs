//! `pgxc-deploy degrade INVENTORY NODE`: the operation is [`crate::ops::degrade`].

use std::time::Instant;

use crate::cli::PairArgs;
use crate::ops::{Session, cluster, degrade};

use super::{Error, Status, fleet};

pub async fn run(args: PairArgs) -> Result<Status, Error> {
    let started = Instant::now();
    // The cluster as it runs now: after a failover or switchover, the promoted node's standby.
    let (inv, _) = cluster::load_now(&args.inventory)?;
    degrade::pair_of(&inv, &args.node)?;
    let fleet = fleet::fleet(&inv, &args.ssh)?;
    let session = Session::open(&args.inventory, inv, fleet, args.ssh.forks).await?;
    let done = degrade::degrade_pair(
        &session,
        &args.node,
        started,
        &mut crate::executor::report::people(),
    )
    .await;
    session.close().await;
    done
}
