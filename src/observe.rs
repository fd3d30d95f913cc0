//! I/O. Gathers facts from every host in parallel, one read-only probe (one round trip) per
//! host, into [`HostFacts`]. It decides nothing: `plan` compares these facts with the inventory.

use std::collections::BTreeMap;

use crate::executor::{self, Cause, StepError, Target};
use crate::flavors;
use crate::inventory::{Inventory, Node, Role};
use crate::plan::desired::passfile_path;
use crate::plan::state::{HostFacts, parse_probe};
use crate::remote::probe::{ProbeNode, probe_script};
use crate::shell::Become;
use crate::shell::Lines;
use crate::transport::{ExitStatus, Fleet, Output};

/// Facts per host name, or why the host could not be probed.
pub type Facts = BTreeMap<String, Result<HostFacts, StepError>>;

/// Probe every host of the inventory. `bin_dir(host)` is where the install's binaries are;
/// `files(node)` the node's managed files; `sql`: ask each running server what its SQL tells
/// (recovery, replication, pgxc_node, settings), else only whether it accepts connections;
/// `as_user(host)` how to run as the cluster's user.
pub async fn observe(
    inv: &Inventory,
    fleet: &Fleet,
    forks: usize,
    bin_dir: &(dyn Fn(&str) -> String + Sync),
    files: &(dyn Fn(&str) -> Vec<String> + Sync),
    sql: bool,
    as_user: &(dyn Fn(&str) -> Become + Sync),
) -> Facts {
    let targets: Vec<Target> =
        inv.hosts.iter().map(|h| Target { host: h.name.clone(), node: None }).collect();
    let outcomes = executor::run_all(targets, forks, |target| async move {
        let host = inv.host(&target.host).expect("inventory host");
        let script = host_script(inv, &host.name, bin_dir, files, sql).to_string();
        let session = fleet.session(&host.name).await.map_err(|e| StepError::new("connect", e))?;
        let out = session.run(&as_user(&host.name).wrap(&script)).await;
        out.map_err(|e| StepError::new("probe", e))
    })
    .await;
    outcomes
        .into_iter()
        .map(|o| {
            let facts = o.result.and_then(|out| parse(&out));
            (o.target.host, facts)
        })
        .collect()
}

/// The probe script for one host of the inventory (run it as the cluster's user).
pub fn host_script(
    inv: &Inventory,
    host: &str,
    bin_dir: &(dyn Fn(&str) -> String + Sync),
    files: &(dyn Fn(&str) -> Vec<String> + Sync),
    sql: bool,
) -> Lines {
    let host = inv.host(host).expect("inventory host");
    let flavor = flavors::of(inv.cluster.flavor);
    let nodes: Vec<ProbeNode> = inv
        .nodes
        .iter()
        .filter(|n| n.host == host.name)
        .map(|n| ProbeNode {
            name: n.name.to_string(),
            role: n.role,
            data_dir: n.data_dir.clone(),
            port: n.port,
            files: files(n.name.as_str()),
            sql,
            read_pgxc_node: flavor.registers(n),
            read_groups: flavor.default_group() && n.role == Role::Coordinator,
            refuses_sql: matches!(n.role, Role::Datanode | Role::Standby)
                && !flavor.standby_answers_sql(),
            replay_lag_sql: flavor.replay_lag_sql(),
            positions_sql: flavor.positions_sql(),
            route_to: gtm_peer(inv, n).filter(|_| flavor.features().gtm_standby_dialed),
        })
        .collect();
    let passfile = passfile_path(inv, host);
    probe_script(
        &host.install_prefix,
        &bin_dir(&host.name),
        &inv.cluster.os_user,
        passfile.as_deref(),
        &nodes,
    )
}

/// For the GTM, its standby's host address, and for the standby the GTM's (either may be the
/// standby after a failover).
fn gtm_peer(inv: &Inventory, n: &Node) -> Option<String> {
    let pair = [Role::Gtm, Role::GtmStandby];
    if !pair.contains(&n.role) {
        return None;
    }
    let peer = inv.nodes.iter().find(|m| pair.contains(&m.role) && m.name != n.name)?;
    inv.host(&peer.host).map(|h| h.address.clone())
}

/// What the probe printed, run under the cluster lock ([`crate::remote::lock::lock_script`]).
pub fn parse_block(block: &[u8]) -> Result<HostFacts, StepError> {
    parse_probe(block).map_err(|e| StepError::new("probe", Cause::found(&e)))
}

fn parse(out: &Output) -> Result<HostFacts, StepError> {
    // The probe's last command may fail harmlessly (a stopped node); what matters is its output,
    // unless it could not run at all (e.g. sudo refused).
    if out.stdout.is_empty() && out.status != ExitStatus::Code(0) && !out.stderr.is_empty() {
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        return Err(StepError::new(
            "probe",
            Cause::Exit { status: out.status.clone(), tail: stderr },
        ));
    }
    parse_probe(&out.stdout).map_err(|e| StepError::new("probe", Cause::found(&e)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::fixtures;

    /// The probe of `host` as apply runs it.
    fn script(inv: &Inventory, host: &str) -> String {
        host_script(inv, host, &|_| "bin".to_string(), &|_| Vec::new(), true).to_string()
    }

    #[test]
    fn both_gtm_hosts_read_where_their_connections_to_the_other_come_from() {
        let mut inv = fixtures::postgres_xc_ha();
        let host_of = |name: &str| inv.node(name).unwrap().host.clone();
        let (gtm_host, standby_host) = (host_of("gtm"), host_of("gtm_standby"));
        let address_of = |host: &str| inv.host(host).unwrap().address.clone();
        let standby = script(&inv, &standby_host);
        assert!(standby.contains("ip -o route get"), "{standby}");
        assert!(standby.contains(&address_of(&gtm_host)), "{standby}");
        assert!(script(&inv, &gtm_host).contains(&address_of(&standby_host)));
        // OpenTenBase's standby streams the GTM's WAL over its own connection: nothing to read.
        inv.cluster.flavor = crate::inventory::Flavor::Opentenbase;
        assert!(!script(&inv, &standby_host).contains("ip -o route get"));
    }
}
