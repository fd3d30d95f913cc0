//! `pgxc-deploy nodes INVENTORY [--on SELECTOR] [-x SELECTOR]`: what a selector selects, one
//! name per line (hosts first, then nodes, in inventory order), contacting no host.

use crate::cli::NodesArgs;
use crate::executor::report;
use crate::inventory::{self, Target};
use crate::ops::cluster;

use super::{Error, Status};

pub fn run(args: NodesArgs) -> Result<Status, Error> {
    let (inv, _) = cluster::load_now(&args.inventory)?;
    let selected = inventory::select_excluding(&inv, args.on.as_deref(), args.exclude.as_deref())
        .map_err(|e| Error::Usage(format!("--on: {e}\n  hint: {}", e.hint())))?;
    let names: Vec<String> = selected
        .into_iter()
        .map(|t| match t {
            Target::Host(h) => h,
            Target::Node(n) => n.to_string(),
        })
        .collect();
    report::names(&names, &mut std::io::stdout())?;
    Ok(Status::Ok)
}
