//! `pgxc-deploy status INVENTORY [--json] [--watch SECONDS [--heal]]`: the operation is
//! [`crate::ops::status`]; this file refreshes it once, or until Ctrl-C.

use crate::cli::StatusArgs;
use crate::ops::status::{self, Healer, Opts};
use crate::ops::{Session, cluster};

use super::{Error, Status, fleet};

pub async fn run(args: StatusArgs) -> Result<Status, Error> {
    let Some(seconds) = args.watch else { return once(&args, false, None).await };
    let interval = std::time::Duration::from_secs(seconds);
    let mut healer = args.heal.then(Healer::default);
    // Created once, so that a Ctrl-C during a refresh is not lost: it ends the watch after it.
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    loop {
        let status = once(&args, true, healer.as_mut()).await?;
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = interrupt.recv() => return Ok(status),
        }
    }
}

/// One refresh. The inventory and the roles file are read again each time (a failover may have
/// happened), and every host is connected to again (a host that was down may be back).
async fn once(
    args: &StatusArgs,
    watching: bool,
    healer: Option<&mut Healer>,
) -> Result<Status, Error> {
    let inv = cluster::load(&args.inventory)?;
    let fleet = fleet::fleet(&inv, &args.ssh)?;
    let session = Session::open(&args.inventory, inv, fleet, args.ssh.forks).await?;
    let opts = Opts { json: args.json, watching };
    let done = status::refresh(&session, opts, healer, &mut std::io::stdout()).await;
    session.close().await;
    done
}
