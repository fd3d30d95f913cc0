//! `pgxc-deploy status INVENTORY [--json] [--watch SECONDS]`: one row per node, from one probe
//! per host (in parallel), once or refreshed until Ctrl-C. A host that cannot be reached shows its nodes as down and hides nothing else.
//! Exit status 1 when any node is unhealthy ([`crate::plan::health`] decides which).

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};

use crate::cli::StatusArgs;
use crate::executor::report;
use crate::inventory::{self, roles};
use crate::plan::desired::desired;
use crate::plan::health;

use super::{Error, Status, cluster, fleet};

pub async fn run(args: StatusArgs) -> Result<Status, Error> {
    let Some(seconds) = args.watch else { return once(&args, false).await };
    let interval = std::time::Duration::from_secs(seconds);
    // Created once, so that a Ctrl-C during a refresh is not lost: it ends the watch after it.
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    loop {
        let status = once(&args, true).await?;
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = interrupt.recv() => return Ok(status),
        }
    }
}

/// One probe of every host and one report. `watching`: each report is a fresh screen on a
/// terminal, or a time-stamped block otherwise. The inventory and the roles file are read
/// again each time (a failover may have happened), and so is every host (a host that was
/// down may be back).
async fn once(args: &StatusArgs, watching: bool) -> Result<Status, Error> {
    let inv = inventory::load(&args.inventory)?;
    let roles = roles::load(&args.inventory).map_err(|e| Error::Usage(e.to_string()))?;
    let layout = cluster::layout(&inv).await?;
    let renderer = cluster::renderer(&inv)?;
    // What apply would write, for the roles the cluster has now.
    let now = roles.effective(&inv).map_err(Error::Usage)?;
    let (_, nodes) = desired(&now, &renderer, &layout.bin, None, None)
        .map_err(|e| Error::Usage(format!("templates: {e}")))?;
    let fleet = fleet::fleet(&inv, &args.ssh);
    let envs = cluster::host_envs(&inv, &layout);
    let files = |node: &str| -> Vec<String> {
        let desired = nodes.iter().find(|n| n.name == node);
        desired.map(|n| n.files.iter().map(|f| f.name.clone()).collect()).unwrap_or_default()
    };
    let facts = cluster::probe(&inv, &fleet, args.ssh.forks, &envs, &layout.bin, &files).await;
    fleet.close().await;
    let facts: BTreeMap<_, _> = facts
        .into_iter()
        .map(|(host, f)| (host, f.map_err(|e| format!("{}: {}", e.step, e.message))))
        .collect();

    let rows = health::assess(&inv, &nodes, &facts, &roles);
    let mut out = std::io::stdout().lock();
    if watching && !args.json {
        report::watch_header(std::io::stdout().is_terminal(), &mut out)?;
    }
    if args.json {
        report::status_json(&rows, &mut out)?;
    } else {
        report::status_table(&inv.cluster.name, &rows, &mut out)?;
    }
    out.flush()?;
    Ok(if rows.iter().all(|r| r.healthy()) { Status::Ok } else { Status::Failed })
}
