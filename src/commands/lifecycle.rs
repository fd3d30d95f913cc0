//! `pgxc-deploy start|stop INVENTORY [--on SELECTOR] [--mode smart|fast|immediate]`: the
//! operation is [`crate::ops::lifecycle`].

use std::time::Instant;

use crate::cli::{LifecycleArgs, StopArgs, StopModeArg};
use crate::flavors::StopMode;
use crate::ops::{Session, cluster, lifecycle};
use crate::plan::lifecycle::Direction;

use super::{Error, Status, fleet};

pub async fn start(args: LifecycleArgs) -> Result<Status, Error> {
    run(args, Direction::Start).await
}

pub async fn stop(args: StopArgs) -> Result<Status, Error> {
    let mode = match args.mode {
        StopModeArg::Smart => StopMode::Smart,
        StopModeArg::Fast => StopMode::Fast,
        StopModeArg::Immediate => StopMode::Immediate,
    };
    run(args.target, Direction::Stop(mode)).await
}

async fn run(args: LifecycleArgs, direction: Direction) -> Result<Status, Error> {
    let started = Instant::now();
    // Tiers by the roles nodes have now: a promoted standby starts with the primaries.
    let (inv, _) = cluster::load_now(&args.inventory)?;
    // A bad selector is refused before connecting.
    lifecycle::selected_nodes(&inv, args.on.as_deref())?;
    let fleet = fleet::fleet(&inv, &args.ssh)?;
    let session = Session::open(&args.inventory, inv, fleet, args.ssh.forks).await?;
    let on = args.on.as_deref();
    let mut out = crate::executor::report::people();
    let done = lifecycle::start_stop(&session, on, direction, started, &mut out).await;
    session.close().await;
    done
}
