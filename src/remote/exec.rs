//! The shell of `exec`: the user's command, and for a command run on a node, that node's
//! environment before it.

use crate::inventory::{Inventory, Node};
use crate::plan::desired::{bin_dir, passfile_path};
use crate::shell::{Cmd, Script};
use crate::source::Layout;

/// The remote command line: the user's words quoted one by one (or their one-word shell line,
/// which is the user's own shell, as with ssh), preceded, on `node`, by that node's environment.
pub fn script(inv: &Inventory, layout: &Layout, node: Option<&Node>, command: &[String]) -> String {
    let mut script = Script::new();
    if let Some(node) = node {
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
