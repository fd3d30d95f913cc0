//! `pgxc-deploy failover INVENTORY NODE`: the operation is [`crate::ops::failover`], or
//! [`crate::ops::gtm`] when NODE is the GTM.

use std::time::Instant;

use crate::cli::FailoverArgs;
use crate::ops::failover::{self, Opts};
use crate::ops::gtm;
use crate::ops::{Session, cluster};

use super::{Error, Status, fleet};

pub async fn run(args: FailoverArgs) -> Result<Status, Error> {
    let started = Instant::now();
    let inv = cluster::load(&args.inventory)?;
    let gtm = gtm::names_gtm(&inv, &args.node);
    if !gtm {
        failover::precheck(&args.inventory, &inv, &args.node)?;
    }
    let what = format!("fail over {} (promote its standby, fence the old primary)", args.node);
    super::confirm(&what, args.yes)?;
    let fleet = fleet::fleet(&inv, &args.ssh)?;
    let session = Session::open(&args.inventory, inv, fleet, args.ssh.forks).await?;
    let out = &mut crate::executor::report::people();
    let done = if gtm {
        gtm::handover(&session, gtm::Kind::Failover, started, out).await
    } else {
        let opts = Opts { node: args.node.clone(), accept_data_loss: args.accept_data_loss };
        failover::failover(&session, &opts, started, out).await
    };
    session.close().await;
    done
}
