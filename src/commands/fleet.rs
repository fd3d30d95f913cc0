//! From an inventory, the OpenSSH client configuration and the command line's SSH options to
//! [`transport::Endpoint`]s. Precedence, per value: the command line (`--connect-timeout`,
//! `--accept-new`), then what the inventory wrote, then the OpenSSH client configuration
//! (`~/.ssh/config` and `/etc/ssh/ssh_config`, or `[ssh] config`), then the defaults OpenSSH
//! users expect (login user = local user, port 22, ~/.ssh/known_hosts).

use std::path::PathBuf;
use std::time::Duration;

use crate::cli::SshArgs;
use crate::inventory::{Host, Inventory, Jump};
use crate::transport::known_hosts::Files;
use crate::transport::ssh_config::{self, HostConfig, StrictHostKeyChecking};
use crate::transport::{Endpoint, Fleet, UnknownKeys, local_user_name};

use super::Error;

/// A fleet holding every host of the inventory (connections are made on first use). Fails
/// when the OpenSSH client configuration cannot be read.
pub fn fleet(inv: &Inventory, args: &SshArgs) -> Result<Fleet, Error> {
    let local_user = local_user_name();
    let config = match inv.hosts.first().map(|h| h.ssh.config.as_slice()) {
        None | Some([]) => None,
        Some(files) => {
            let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
            let loaded = ssh_config::load(files, &home).map_err(|e| {
                Error::Usage(format!(
                    "OpenSSH client configuration: {e}\n  hint: fix it, or set `config = \
                         false` in the inventory's [ssh] table (and write there what the hosts \
                         need) to do without it"
                ))
            })?;
            Some(loaded)
        }
    };
    let resolve = |alias: &str| -> HostConfig {
        config.as_ref().map(|c| c.resolve(alias, &local_user)).unwrap_or_default()
    };
    Ok(Fleet::new(inv.hosts.iter().map(|h| {
        let own = resolve(&h.address);
        let mut ep = endpoint(h, &own, args, &local_user);
        ep.via = via(inv, h, &own, args, &local_user, &resolve);
        ep
    })))
}

/// `host`'s endpoint, with `config` (its OpenSSH client configuration) under the inventory's
/// values.
fn endpoint(host: &Host, config: &HostConfig, args: &SshArgs, local_user: &str) -> Endpoint {
    let ssh = &host.ssh;
    let written = ssh.written;
    let user = match (&ssh.user, config.user.clone().filter(|_| !written.user)) {
        (Some(user), _) if written.user => user.clone(),
        (_, Some(user)) => user,
        (user, None) => user.clone().unwrap_or_else(|| local_user.to_string()),
    };
    // StrictHostKeyChecking no learns unknown keys too; a changed key is refused whatever it says.
    let learn = args.accept_new
        || matches!(
            config.strict_host_key_checking,
            Some(StrictHostKeyChecking::AcceptNew | StrictHostKeyChecking::No)
        );
    let known_hosts = match (&config.user_known_hosts_files, written.known_hosts) {
        (Some(files), false) if !files.is_empty() => files[0].clone(),
        _ => ssh.known_hosts.clone(),
    };
    Endpoint {
        name: host.name.clone(),
        address: config.hostname.clone().unwrap_or_else(|| host.address.clone()),
        port: config.port.filter(|_| !written.port).unwrap_or(ssh.port),
        user,
        identity_files: match (&ssh.identity_file, written.identity_file) {
            (Some(file), true) => vec![file.clone()],
            _ => config.identity_files.clone(),
        },
        identities_only: config.identities_only.unwrap_or(false),
        known_hosts: Files { user: known_hosts, global: ssh.global_known_hosts.clone() },
        unknown_keys: if args.accept_new || learn {
            UnknownKeys::Learn
        } else {
            UnknownKeys::Refuse
        },
        connect_timeout: args
            .connect_timeout
            .map(Duration::from_secs)
            .or(config.connect_timeout.filter(|_| !written.connect_timeout))
            .unwrap_or(ssh.connect_timeout),
        command_timeout: args
            .command_timeout
            .map(Duration::from_secs)
            .unwrap_or(ssh.command_timeout),
        via: None,
        proxy_command: match written.proxy_jump {
            true => None,
            false => config.proxy_command.clone(),
        },
        keepalive: config.server_alive_interval,
    }
}

/// The jump host chain of `host`, the last hop nearest to it: the inventory's `proxy_jump`,
/// else its OpenSSH client configuration's ProxyJump. A hop that names a host of the inventory
/// without user or port is that host as the inventory describes it; any other is
/// `[user@]address[:port]` with its own OpenSSH client configuration, else `host`'s key,
/// known_hosts and timeouts. Every hop is connected through the ones before it.
fn via(
    inv: &Inventory,
    host: &Host,
    config: &HostConfig,
    args: &SshArgs,
    local_user: &str,
    resolve: &dyn Fn(&str) -> HostConfig,
) -> Option<Box<Endpoint>> {
    let hops: Vec<Jump> = match (&config.proxy_jump, host.ssh.written.proxy_jump) {
        (Some(hops), false) => hops.clone(),
        _ => host.ssh.proxy_jump.clone(),
    };
    let mut via: Option<Box<Endpoint>> = None;
    for hop in &hops {
        let named = inv.host(&hop.host).filter(|_| hop.user.is_none() && hop.port.is_none());
        let mut ep = match named {
            Some(h) => endpoint(h, &resolve(&h.address), args, local_user),
            None => {
                let own = resolve(&hop.host);
                let base = endpoint(host, &HostConfig::default(), args, local_user);
                Endpoint {
                    name: hop.to_string(),
                    address: own.hostname.clone().unwrap_or_else(|| hop.host.clone()),
                    port: hop.port.or(own.port).unwrap_or(22),
                    user: hop.user.clone().or(own.user.clone()).unwrap_or(base.user.clone()),
                    identity_files: match own.identity_files.is_empty() {
                        true => base.identity_files.clone(),
                        false => own.identity_files.clone(),
                    },
                    known_hosts: Files {
                        user: own
                            .user_known_hosts_files
                            .as_ref()
                            .and_then(|f| f.first().cloned())
                            .unwrap_or(base.known_hosts.user.clone()),
                        ..base.known_hosts.clone()
                    },
                    proxy_command: None,
                    ..base
                }
            }
        };
        ep.via = via;
        ep.proxy_command = None;
        via = Some(Box::new(ep));
    }
    via
}
