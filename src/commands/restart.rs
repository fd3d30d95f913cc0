//! `pgxc-deploy restart INVENTORY --rolling [--on SELECTOR] [--batch N] [--switchover]`: the
//! operation is [`crate::ops::restart`].

use std::time::Instant;

use crate::cli::RestartArgs;
use crate::inventory;
use crate::ops::restart::{self, Opts};
use crate::ops::{Session, cluster};

use super::{Error, Status, fleet};

pub async fn run(args: RestartArgs) -> Result<Status, Error> {
    let started = Instant::now();
    let path = &args.target.inventory;
    // The inventory as written, without its warnings: `load_now` below prints them.
    let inv = inventory::load(path)?;
    let (now, roles) = cluster::load_now(path)?;
    let opts = Opts {
        on: args.target.on.clone(),
        batch: usize::from(args.batch),
        switchover: args.switchover,
        switch_back: args.switch_back,
    };
    let mut out = crate::executor::report::people();
    if restart::nothing_to_do(&inv, &now, &roles, &opts, &mut out)? {
        return Ok(Status::Ok);
    }
    let fleet = fleet::fleet(&inv, &args.target.ssh)?;
    let session = Session::open(path, inv, fleet, args.target.ssh.forks).await?;
    let done = restart::restart(&session, &now, &opts, started, &mut out).await;
    session.close().await;
    done
}
