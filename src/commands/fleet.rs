//! From an inventory and the command line's SSH options to [`transport::Endpoint`]s: the
//! defaults OpenSSH users expect (login user = local user) filled in, CLI flags over inventory.

use std::time::Duration;

use crate::cli::SshArgs;
use crate::inventory::{Host, Inventory, Jump};
use crate::transport::known_hosts::Files;
use crate::transport::{Endpoint, Fleet, UnknownKeys, local_user_name};

/// A fleet holding every host of the inventory (connections are made on first use).
pub fn fleet(inv: &Inventory, args: &SshArgs) -> Fleet {
    let local_user = local_user_name();
    Fleet::new(inv.hosts.iter().map(|h| {
        let mut ep = endpoint(h, args, &local_user);
        ep.via = via(inv, h, args, &local_user);
        ep
    }))
}

/// The jump host chain of `host` (its `proxy_jump` hops, the last one nearest to it): a hop
/// that names a host of the inventory without user or port is that host as the inventory
/// describes it (connected directly), any other is `[user@]address[:port]` with `host`'s key,
/// known_hosts and timeouts.
fn via(inv: &Inventory, host: &Host, args: &SshArgs, local_user: &str) -> Option<Box<Endpoint>> {
    let mut via: Option<Box<Endpoint>> = None;
    for hop in &host.ssh.proxy_jump {
        let named = inv.host(&hop.host).filter(|_| hop.user.is_none() && hop.port.is_none());
        let mut ep = match named {
            Some(h) => endpoint(h, args, local_user),
            None => Endpoint {
                name: jump_name(hop),
                address: hop.host.clone(),
                port: hop.port.unwrap_or(22),
                user: hop.user.clone().unwrap_or_else(|| {
                    host.ssh.user.clone().unwrap_or_else(|| local_user.to_string())
                }),
                ..endpoint(host, args, local_user)
            },
        };
        ep.via = via;
        via = Some(Box::new(ep));
    }
    via
}

/// How a jump host outside the inventory is named in messages: as written.
fn jump_name(hop: &Jump) -> String {
    let user = hop.user.as_ref().map(|u| format!("{u}@")).unwrap_or_default();
    let port = hop.port.map(|p| format!(":{p}")).unwrap_or_default();
    format!("{user}{}{port}", hop.host)
}

fn endpoint(host: &Host, args: &SshArgs, local_user: &str) -> Endpoint {
    let ssh = &host.ssh;
    Endpoint {
        name: host.name.clone(),
        address: host.address.clone(),
        port: ssh.port,
        user: ssh.user.clone().unwrap_or_else(|| local_user.to_string()),
        identity_file: ssh.identity_file.clone(),
        known_hosts: Files {
            user: ssh.known_hosts.clone(),
            global: ssh.global_known_hosts.clone(),
        },
        unknown_keys: if args.accept_new { UnknownKeys::Learn } else { UnknownKeys::Refuse },
        connect_timeout: args
            .connect_timeout
            .map(Duration::from_secs)
            .unwrap_or(ssh.connect_timeout),
        command_timeout: args
            .command_timeout
            .map(Duration::from_secs)
            .unwrap_or(ssh.command_timeout),
        via: None,
    }
}
