//! From an inventory and the command line's SSH options to [`transport::Endpoint`]s: the
//! defaults OpenSSH users expect (login user = local user) filled in, CLI flags over inventory.

use std::time::Duration;

use crate::cli::SshArgs;
use crate::inventory::{Host, Inventory};
use crate::transport::known_hosts::Files;
use crate::transport::{Endpoint, Fleet, UnknownKeys, local_user_name};

/// A fleet holding every host of the inventory (connections are made on first use).
pub fn fleet(inv: &Inventory, args: &SshArgs) -> Fleet {
    let local_user = local_user_name();
    Fleet::new(inv.hosts.iter().map(|h| endpoint(h, args, &local_user)))
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
    }
}
