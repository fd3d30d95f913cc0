//! `pgxc-deploy failover INVENTORY NODE`: the operation is [`crate::ops::failover`].

use std::time::Instant;

use crate::cli::FailoverArgs;
use crate::ops::failover::{self, Opts};
use crate::ops::{Session, cluster};

use super::{Error, Status, fleet};

pub async fn run(args: FailoverArgs) -> Result<Status, Error> {
    let started = Instant::now();
    let inv = cluster::load(&args.inventory)?;
    failover::precheck(&args.inventory, &inv, &args.node)?;
    let fleet = fleet::fleet(&inv, &args.ssh);
    let session = Session::open(&args.inventory, inv, fleet, args.ssh.forks).await?;
    let opts = Opts { node: args.node.clone(), accept_data_loss: args.accept_data_loss };
    let done = failover::failover(&session, &opts, started, &mut std::io::stdout()).await;
    session.close().await;
    done
}
