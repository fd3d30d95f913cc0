//! `pgxc-deploy switchover INVENTORY NODE`: the operation is [`crate::ops::switchover`], or
//! [`crate::ops::gtm`] when NODE is the GTM.

use std::time::Instant;

use crate::cli::SwitchoverArgs;
use crate::ops::{Session, cluster, gtm, switchover};

use super::{Error, Status, fleet};

pub async fn run(args: SwitchoverArgs) -> Result<Status, Error> {
    let (yes, args) = (args.yes, args.pair);
    let started = Instant::now();
    let inv = cluster::load(&args.inventory)?;
    let gtm = gtm::names_gtm(&inv, &args.node);
    if !gtm {
        switchover::precheck(&args.inventory, &inv, &args.node)?;
    }
    let what = format!("switch {} over to its standby", args.node);
    super::confirm(&what, yes)?;
    let fleet = fleet::fleet(&inv, &args.ssh)?;
    let session = Session::open(&args.inventory, inv, fleet, args.ssh.forks).await?;
    let out = &mut crate::executor::report::people();
    let done = if gtm {
        gtm::handover(&session, gtm::Kind::Switchover, started, out).await
    } else {
        switchover::switchover(&session, &args.node, started, out).await
    };
    session.close().await;
    done
}
