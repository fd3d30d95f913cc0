//! `pgxc-deploy exec INVENTORY [--on SELECTOR] -- COMMAND...`: an ad-hoc command on every
//! selected host, or once per selected node with that node's environment.

use crate::cli::ExecArgs;
use crate::executor::{self, StepError, Target};
use crate::inventory::roles::Roles;
use crate::inventory::{self, Inventory, Node};
use crate::plan::desired::{bin_dir, passfile_path};
use crate::shell::{Cmd, Script};
use crate::source::Layout;

use super::{Error, Status, fleet};
use crate::ops::cluster;

pub async fn run(args: ExecArgs) -> Result<Status, Error> {
    // The cluster as it runs now: `@datanodes` and `@standbys` select the current ones, and a
    // node's PGXC_ROLE is its current role.
    let (inv, roles) = cluster::load_now(&args.inventory)?;
    let selected = inventory::select(&inv, args.on.as_deref())
        .map_err(|e| Error::Usage(format!("--on: {e}\n  hint: {}", e.hint())))?;
    // A datanode named as such means the node serving it now; one a role or a pattern selected
    // is that node itself.
    let named: Vec<&str> =
        args.on.as_deref().map_or(Vec::new(), |on| on.split(',').map(str::trim).collect());
    let mut targets: Vec<Target> = Vec::new();
    for t in selected.iter().map(|t| target(&inv, &roles, &named, t)) {
        // `dn1` and `@datanodes` both select dn1's promoted standby: once.
        if !targets.contains(&t) {
            targets.push(t);
        }
    }
    let fleet = fleet::fleet(&inv, &args.ssh);
    // Only a command run on a node needs the install's directories (PATH, LD_LIBRARY_PATH).
    let node_hosts: Vec<&str> =
        targets.iter().filter(|t| t.node.is_some()).map(|t| t.host.as_str()).collect();
    let layout = match node_hosts.is_empty() {
        true => Layout::default(),
        false => cluster::layout(&inv, &fleet, node_hosts).await?,
    };

    let envs = cluster::host_envs(&inv, &layout);
    let outcomes = executor::run_all(targets, args.ssh.forks, |target| {
        let script = remote_script(&inv, &layout, &target, &args.command);
        // On a node: as the cluster's user, as its servers run (psql then authenticates the
        // way pg_hba expects of it: peer on the Unix socket), in /.
        let script = match &target.node {
            Some(_) => envs[&target.host].as_user.wrap(&script),
            None => script,
        };
        let fleet = &fleet;
        async move {
            let session =
                fleet.session(&target.host).await.map_err(|e| StepError::new("connect", &e))?;
            session.run(&script).await.map_err(|e| StepError::new("run", &e))
        }
    })
    .await;
    fleet.close().await;

    let (mut out, mut err) = (std::io::stdout(), std::io::stderr());
    if args.json {
        executor::report::json(&outcomes, &mut out)?;
        executor::report::summary(&outcomes, &mut err)?;
    } else {
        executor::report::human(&outcomes, &mut out, &mut err)?;
    }
    Ok(if outcomes.iter().all(|o| o.ok()) { Status::Ok } else { Status::Failed })
}

/// A selected node is run where its role is served now: after a failover, the datanode's name
/// (when `named`, one of the selector's terms) means its promoted standby (the roles file
/// beside the inventory says which).
fn target(inv: &Inventory, roles: &Roles, named: &[&str], t: &inventory::Target) -> Target {
    match t {
        inventory::Target::Host(host) => Target { host: host.clone(), node: None },
        inventory::Target::Node(name) => {
            let served =
                roles.datanodes.get(name.as_str()).filter(|_| named.contains(&name.as_str()));
            let name = served.map_or(name.as_str(), |p| &p.primary);
            let node = inv.node(name).expect("selected nodes and recorded primaries exist");
            Target { host: node.host.clone(), node: Some(name.to_string()) }
        }
    }
}

/// The remote command line: the user's words quoted one by one (or their one-word shell line),
/// preceded, for a node, by that node's environment.
fn remote_script(inv: &Inventory, layout: &Layout, target: &Target, command: &[String]) -> String {
    let mut script = Script::new();
    if let Some(node) = target.node.as_deref().and_then(|n| inv.node(n)) {
        script = node_env(inv, layout, node, script);
    }
    let script = match command {
        [line] => script.raw(line),
        [program, args @ ..] => script.cmd(Cmd::new(program).args(args)),
        [] => script,
    };
    script.to_string()
}

/// What a command run "on a node" can rely on. Remote shells are non-interactive and read no
/// profile, so the install's bin directory is put on PATH here.
fn node_env(inv: &Inventory, layout: &Layout, node: &Node, script: Script) -> Script {
    let host = inv.host(&node.host).expect("node hosts exist");
    let script = match passfile_path(inv, host) {
        // psql to another node over TCP finds the cluster's password there.
        Some(passfile) => script.env("PGPASSFILE", passfile),
        None => script,
    };
    script
        .env("PGDATA", &node.data_dir)
        .env("PGPORT", node.port.to_string())
        // Each host keeps its nodes' Unix sockets in its data_root (lab hosts share one /tmp).
        .env("PGHOST", node.socket_dir())
        .env("PGUSER", &inv.cluster.os_user)
        // The database every cluster has (psql would otherwise look for one named PGUSER).
        .env("PGDATABASE", "postgres")
        .env("PGXC_NODE", node.name.as_str())
        .env("PGXC_ROLE", node.role.to_string())
        .env("LD_LIBRARY_PATH", format!("{}/{}", host.install_prefix, layout.lib))
        .path_prepend(bin_dir(host, &layout.bin))
}
