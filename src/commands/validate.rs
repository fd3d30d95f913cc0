//! `pgxc-deploy validate INVENTORY`: read and check the inventory, contacting no host; its
//! problems are the inventory error every command reports, its warnings go to stderr.

use crate::cli::ValidateArgs;
use crate::executor::report;
use crate::ops::cluster;

use super::{Error, Status};

pub fn run(args: ValidateArgs) -> Result<Status, Error> {
    let inv = cluster::load(&args.inventory)?;
    report::valid(&args.inventory, inv.hosts.len(), inv.nodes.len(), &mut std::io::stdout())?;
    Ok(Status::Ok)
}
